/* Authorization rules: parsing (refusals name the fault), matching, deny over allow,
 * and the normal-form check that keeps path prefixes meaningful. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "gateway/policy.h"
#include "unit_util.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static const char SVC[] = "spiffe://cluster.local/ns/production/sa/frontend-service";
static const char DNS2[] = "api.example.com\0node-1.example.com\0";

static struct pqm_policy_subject who(const char *spiffe, const char *cn, const char *method,
                                     const char *path)
{
    struct pqm_policy_subject s = {
        .spiffe = spiffe, .cn = cn, .o = "Example", .dns = DNS2, .method = method, .path = path,
    };
    return s;
}

/* Rules that must be refused, with a word of the reason. */
static void test_parse_refusals(void **state)
{
    (void)state;
    static const struct {
        const char *rule, *why;
    } rows[] = {
        {"", "empty rule"},
        {"   ", "empty rule"},
        {"cn", "not key=value"},
        {"user=alice", "unknown key"},
        {"cn=", "empty value"},
        {"cn=a,,b", "empty value"},
        {"path=api/", "must start with /"},
        {"path=/api/../admin", "normal form"},
        {"path=/a%2e%2e/b", "normal form"},
        {"spiffe=cluster.local/ns/x", "spiffe://"},
        {"method=get", "upper-case"},
        {"cn=a cn=b cn=c cn=d cn=e cn=f cn=g cn=h cn=i", "more than 8 terms"},
        {"cn=1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17", "more than 16 values"},
    };
    int bad = 0;
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        struct pqm_policy p;
        struct pqm_err e = {{0}};
        pqm__policy_init(&p);
        if (pqm__policy_add(&p, 0, rows[i].rule, &e) == 0)
            TU_ROW_FAIL(bad, "'%s' was accepted", rows[i].rule);
        else if (strstr(pqm__err_str(&e), rows[i].why) == NULL)
            TU_ROW_FAIL(bad, "'%s': reason '%s' lacks '%s'", rows[i].rule, pqm__err_str(&e),
                        rows[i].why);
        if (p.nrules != 0)
            TU_ROW_FAIL(bad, "'%s': a refused rule was kept", rows[i].rule);
        pqm__policy_free(&p);
    }
    TU_ROWS_DONE(bad);
}

/* One policy, many requests: each row says whether it passes. */
static void test_decisions(void **state)
{
    (void)state;
    struct pqm_policy p;
    struct pqm_err e = {{0}};
    pqm__policy_init(&p);
    assert_int_equal(pqm__policy_add(&p, 0,
                                     "principal=cluster.local/ns/production/sa/frontend-service "
                                     "path=/api/ method=GET,POST",
                                     &e),
                     0);
    assert_int_equal(pqm__policy_add(&p, 0, "cn=client1 path=/public", &e), 0);
    assert_int_equal(pqm__policy_add(&p, 0, "namespace=monitoring method=GET", &e), 0);
    assert_int_equal(pqm__policy_add(&p, 0, "dns=*.example.com path=/dns/", &e), 0);
    assert_int_equal(pqm__policy_add(&p, 0, "spiffe=spiffe://cluster.local/ns/batch/* ", &e), 0);
    assert_int_equal(pqm__policy_add(&p, 1, "path=/api/admin", &e), 0);
    assert_int_equal(pqm__policy_add(&p, 1, "cn=mallory", &e), 0);
    assert_true(p.uses_path);
    static const struct {
        const char *spiffe, *cn, *method, *path;
        int allowed;
    } rows[] = {
        {SVC, "svc", "GET", "/api/orders", 1},
        {SVC, "svc", "POST", "/api/orders", 1},
        {SVC, "svc", "DELETE", "/api/orders", 0},          /* method not listed */
        {SVC, "svc", "GET", "/apix", 0},                   /* /api/ is a whole segment */
        {SVC, "svc", "GET", "/api/admin/users", 0},        /* deny wins */
        {SVC, "svc", "GET", "/api/admin", 0},              /* deny: the path itself */
        {SVC, "svc", "GET", "/api/administrator", 1},      /* deny /api/admin: not this */
        {"spiffe://cluster.local/ns/production/sa/other", "x", "GET", "/api/a", 0},
        {"spiffe://evil.local/ns/production/sa/frontend-service", "x", "GET", "/api/a", 0},
        {"", "client1", "GET", "/public", 1},
        {"", "client1", "PUT", "/public/x", 1},
        {"", "client1", "GET", "/publicity", 0},
        {"", "client2", "GET", "/public", 0},
        {"", "mallory", "GET", "/public", 0},              /* deny by cn */
        {"spiffe://cluster.local/ns/monitoring/sa/prom", "p", "GET", "/metrics", 1},
        {"spiffe://cluster.local/ns/monitoring/sa/prom", "p", "POST", "/metrics", 0},
        {"spiffe://cluster.local/nsx/monitoring/sa/prom", "p", "GET", "/metrics", 0},
        {"", "anyone", "GET", "/dns/x", 1},                /* DNS SAN node-1.example.com */
        {"spiffe://cluster.local/ns/batch/sa/job", "j", "DELETE", "/anything", 1},
        {"spiffe://cluster.local/ns/batchy/sa/job", "j", "GET", "/x", 0},
        {"", "", "GET", "/", 0},                           /* nothing matches */
    };
    int bad = 0;
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        struct pqm_policy_subject s = who(rows[i].spiffe, rows[i].cn, rows[i].method,
                                          rows[i].path);
        char why[256];
        int got = pqm__policy_check(&p, &s, why, sizeof(why));
        if (got != rows[i].allowed)
            TU_ROW_FAIL(bad, "%s %s by '%s' (cn %s): %s (%s)", rows[i].method, rows[i].path,
                        rows[i].spiffe, rows[i].cn, got ? "allowed" : "refused", why);
    }
    pqm__policy_free(&p);
    TU_ROWS_DONE(bad);
}

/* Without allow rules every verified client passes, unless a deny rule says otherwise. */
static void test_deny_only_and_empty(void **state)
{
    (void)state;
    struct pqm_policy p;
    struct pqm_err e = {{0}};
    char why[256];
    pqm__policy_init(&p);
    struct pqm_policy_subject s = who(SVC, "svc", "GET", "/x");
    assert_int_equal(pqm__policy_check(&p, &s, why, sizeof(why)), 1);
    assert_int_equal(pqm__policy_add(&p, 1, "namespace=production method=DELETE", &e), 0);
    assert_int_equal(pqm__policy_check(&p, &s, why, sizeof(why)), 1);
    s.method = "DELETE";
    assert_int_equal(pqm__policy_check(&p, &s, why, sizeof(why)), 0);
    assert_non_null(strstr(why, "namespace=production method=DELETE"));
    pqm__policy_free(&p);
}

static void test_path_normal_form(void **state)
{
    (void)state;
    static const struct {
        const char *path;
        int normal;
    } rows[] = {
        {"/", 1},           {"/api/orders", 1},  {"/api/orders/", 1}, {"/a%20b", 1},
        {"/a.b/c..d", 1},   {"/.well-known/x", 1},
        {"", 0},            {"api", 0},          {"//api", 0},        {"/api//x", 0},
        {"/api/./x", 0},    {"/api/../x", 0},    {"/api/..", 0},      {"/api/.", 0},
        {"/%2e%2e/x", 0},   {"/%2E/x", 0},       {"/a%2fb", 0},       {"/a%5Cb", 0},
        {"/a\\b", 0},       {"/a%2", 0},         {"/a%zz", 0},        {"/a%00", 0},
    };
    int bad = 0;
    for (size_t i = 0; i < ARRAY_LEN(rows); i++)
        if (pqm__path_is_normal(rows[i].path, strlen(rows[i].path)) != rows[i].normal)
            TU_ROW_FAIL(bad, "'%s' should %sbe normal", rows[i].path, rows[i].normal ? "" : "not ");
    TU_ROWS_DONE(bad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_refusals),
        cmocka_unit_test(test_decisions),
        cmocka_unit_test(test_deny_only_and_empty),
        cmocka_unit_test(test_path_normal_form),
    };
    return cmocka_run_group_tests_name("policy", tests, NULL, NULL);
}
