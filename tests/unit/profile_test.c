/* Unit tests of pki/profile.c (lifetime profiles in the inventory's meta table), of
 * util/timeutil's duration format, and of the lifetimes a PKI made with a profile gives
 * the certificates it issues. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <string.h>

#include <openssl/x509.h>
#include <pqmtls/pki.h>

#include "pki/certbuild.h"
#include "pki/profile.h"
#include "store_util.h"
#include "util/timeutil.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Every profile of the industry table, and names that are not one. */
static void test_profile_find(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        int64_t lifetime, within; /* 0: refused */
        int root_days, ca_days;
    } rows[] = {
        {"default", 365 * PQM_DAY, 30 * PQM_DAY, 3650, 1825},
        {"cloud-native", 24 * PQM_HOUR, 8 * PQM_HOUR, 3650, 1825},
        {"financial", 90 * PQM_DAY, 30 * PQM_DAY, 3650, 1825},
        {"healthcare", 365 * PQM_DAY, 122 * PQM_DAY, 3650, 1825},
        {"iot", 1095 * PQM_DAY, 365 * PQM_DAY, 7300, 3650},
        {"Cloud-Native", 0, 0, 0, 0},
        {"cloud_native", 0, 0, 0, 0},
        {"iot ", 0, 0, 0, 0},
        {"", 0, 0, 0, 0},
        {NULL, 0, 0, 0, 0},
    };
    int nfail = 0;
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        const struct pqm_lifetime_profile *p = pqm__profile_find(rows[i].name);
        if (rows[i].lifetime == 0) {
            if (p != NULL)
                TU_ROW_FAIL(nfail, "row %zu: '%s' should be refused", i, rows[i].name);
            continue;
        }
        if (p == NULL || p->leaf_lifetime != rows[i].lifetime ||
            p->renew_within != rows[i].within || p->root_days != rows[i].root_days ||
            p->ca_days != rows[i].ca_days) {
            TU_ROW_FAIL(nfail, "row %zu: '%s' has other lifetimes", i, rows[i].name);
            continue;
        }
        /* Renewal happens before the end, and a CA can hold a leaf of the profile. */
        if (p->renew_within >= p->leaf_lifetime || (int64_t)p->ca_days * PQM_DAY < 2 * p->leaf_lifetime ||
            p->root_days < p->ca_days)
            TU_ROW_FAIL(nfail, "row %zu: '%s' is not self-consistent", i, rows[i].name);
        if (strstr(pqm__profile_names(), rows[i].name) == NULL)
            TU_ROW_FAIL(nfail, "row %zu: '%s' is missing from the names", i, rows[i].name);
    }
    TU_ROWS_DONE(nfail);
}

static void test_format_duration(void **state)
{
    (void)state;
    static const struct {
        int64_t seconds;
        const char *text;
    } rows[] = {
        {24 * 3600, "24h"}, {8 * 3600, "8h"},   {36 * 3600, "36h"}, {2 * 86400, "2d"},
        {90 * 86400, "90d"}, {1095 * 86400, "1095d"}, {1800, "30m"}, {90, "90s"},
        {0, "0s"},          {86400 + 1, "86401s"},
    };
    int nfail = 0;
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        char out[32];
        pqm__format_duration(rows[i].seconds, out, sizeof(out));
        if (strcmp(out, rows[i].text) != 0)
            TU_ROW_FAIL(nfail, "row %zu: %lld s is '%s', expected '%s'", i,
                        (long long)rows[i].seconds, out, rows[i].text);
    }
    TU_ROWS_DONE(nfail);
}

/* --- the meta table --------------------------------------------------------------------- */


/* An inventory made before profiles existed records none: the default applies. */
static void test_load_without_profile(void **state)
{
    struct tu_store *t = *state;
    struct pqm_err e = {{0}};
    struct pqm_lifetimes lt;
    assert_int_equal(pqm__profile_load(t->s, &lt, &e), 0);
    assert_string_equal(lt.profile, "default");
    assert_int_equal(lt.leaf_lifetime, 365 * PQM_DAY);
    assert_int_equal(lt.renew_within, 30 * PQM_DAY);
}

static void test_store_then_load(void **state)
{
    struct tu_store *t = *state;
    struct pqm_err e = {{0}};
    struct pqm_lifetimes lt;
    assert_int_equal(pqm__profile_store(t->s, pqm__profile_find("cloud-native"), &e), 0);
    assert_int_equal(pqm__profile_load(t->s, &lt, &e), 0);
    assert_string_equal(lt.profile, "cloud-native");
    assert_int_equal(lt.leaf_lifetime, 24 * PQM_HOUR);
    assert_int_equal(lt.renew_within, 8 * PQM_HOUR);
    /* Stored again with another profile: replaced, not duplicated. */
    assert_int_equal(pqm__profile_store(t->s, pqm__profile_find("iot"), &e), 0);
    assert_int_equal(pqm__profile_load(t->s, &lt, &e), 0);
    assert_string_equal(lt.profile, "iot");
    assert_int_equal(lt.leaf_lifetime, 1095 * PQM_DAY);
}

/* A damaged setting is refused with its key, never read as something else. */
static void test_load_refuses_damage(void **state)
{
    struct tu_store *t = *state;
    static const struct {
        const char *key, *value;
    } rows[] = {
        {"leaf_lifetime_seconds", "abc"},   {"leaf_lifetime_seconds", "60"},
        {"leaf_lifetime_seconds", "86400x"}, {"leaf_lifetime_seconds", ""},
        {"leaf_lifetime_seconds", "-86400"}, {"leaf_lifetime_seconds", "99999999999999"},
        {"renew_within_seconds", "-1"},     {"renew_within_seconds", "1e9"},
    };
    int nfail = 0;
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        struct pqm_err e = {{0}};
        struct pqm_lifetimes lt;
        assert_int_equal(pqm__profile_store(t->s, pqm__profile_find("financial"), &e), 0);
        assert_int_equal(pqm__store_meta_set(t->s, rows[i].key, rows[i].value, &e), 0);
        if (pqm__profile_load(t->s, &lt, &e) != -1 || strstr(pqm__err_str(&e), rows[i].key) == NULL)
            TU_ROW_FAIL(nfail, "row %zu: %s='%s' was not refused by name (%s)", i, rows[i].key,
                        rows[i].value, pqm__err_str(&e));
    }
    TU_ROWS_DONE(nfail);
}

/* --- a PKI made with a profile ------------------------------------------------------ */

struct issued_na {
    int64_t not_after;
};

static int on_issued(const struct pqm_issued *o, void *arg)
{
    ((struct issued_na *)arg)->not_after = o->not_after;
    return 0;
}

static int64_t issue_client(struct pqm_pki *pki, const char *name, int64_t lifetime)
{
    struct pqm_issue *q = pqm_issue_new(PQM_PROFILE_CLIENT);
    struct issued_na got = {0};
    assert_non_null(q);
    assert_int_equal(pqm_issue_set_name(q, name), 0);
    if (lifetime > 0)
        assert_int_equal(pqm_issue_set_lifetime(q, lifetime), 0);
    int rc = pqm_pki_issue(pki, q, on_issued, &got);
    pqm_issue_free(q);
    if (rc != 0)
        fail_msg("issuing %s: %s", name, pqm_pki_error(pki));
    return got.not_after;
}

static void test_pki_profile_lifetimes(void **state)
{
    struct tu_store *t = *state;
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/pki", t->dir);
    struct pqm_pki_config *cfg = pqm_pki_config_new();
    struct pqm_pki *pki = pqm_pki_new();
    assert_non_null(cfg);
    assert_non_null(pki);
    pqm_pki_config_insecure_no_passphrase(cfg);
    assert_int_equal(pqm_pki_config_set_profile(cfg, "cloudnative"), -1);
    assert_non_null(strstr(pqm_pki_config_error(cfg), "cloud-native"));
    assert_int_equal(pqm_pki_config_set_profile(cfg, "cloud-native"), 0);
    assert_int_equal(pqm_pki_create(pki, dir, cfg), 0);
    pqm_pki_config_free(cfg);

    struct pqm_lifetimes lt;
    assert_int_equal(pqm_pki_get_lifetimes(pki, &lt), 0);
    assert_string_equal(lt.profile, "cloud-native");
    int64_t now = (int64_t)time(NULL);
    int64_t na = issue_client(pki, "short", 0);
    assert_true(na >= now + 24 * PQM_HOUR - 5 && na <= now + 24 * PQM_HOUR + 5);
    na = issue_client(pki, "two-hours", 2 * PQM_HOUR);
    assert_true(na >= now + 2 * PQM_HOUR - 5 && na <= now + 2 * PQM_HOUR + 5);

    struct pqm_issue *q = pqm_issue_new(PQM_PROFILE_CLIENT);
    assert_non_null(q);
    assert_int_equal(pqm_issue_set_lifetime(q, PQM_HOUR - 1), -1);
    assert_non_null(strstr(pqm_issue_error(q), "1h"));
    assert_int_equal(pqm_issue_set_lifetime(q, 36501 * PQM_DAY), -1);
    assert_int_equal(pqm_issue_set_name(q, "too-long"), 0);
    assert_int_equal(pqm_issue_set_days(q, 20 * 365), 0);
    assert_int_equal(pqm_pki_issue(pki, q, NULL, NULL), -1);
    assert_non_null(strstr(pqm_pki_error(pki), "a lifetime of 7300d would outlive the client "
                                               "intermediate CA"));
    pqm_issue_free(q);
    pqm_pki_free(pki);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, tu_store_setup, tu_store_teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_profile_find),
        cmocka_unit_test(test_format_duration),
        T(test_load_without_profile),
        T(test_store_then_load),
        T(test_load_refuses_damage),
        T(test_pki_profile_lifetimes),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
