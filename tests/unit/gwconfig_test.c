/* Gateway configuration: values checked as they are set, YAML files refused with the
 * file, the line and the reason, and required options enforced. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "gateway/config.h"
#include "gateway/policy.h"
#include "unit_util.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static void test_set_values(void **state)
{
    (void)state;
    static const struct {
        const char *key, *value;
        int ok;
        const char *why;
    } rows[] = {
        {"listen", "127.0.0.1:8443", 1, NULL},
        {"listen", "[::1]:8443", 1, NULL},
        {"listen", "0.0.0.0:0", 0, "HOST:PORT"},
        {"listen", "127.0.0.1:65536", 0, "HOST:PORT"},
        {"listen", "127.0.0.1", 0, "HOST:PORT"},
        {"listen", "[::1:8443", 0, "HOST:PORT"},
        {"upstream", "localhost:8080", 1, NULL},
        {"verify_depth", "2", 1, NULL},
        {"verify_depth", "0", 0, "from 1 to 8"},
        {"verify_depth", "2.5", 0, "whole number"},
        {"verify_depth", "two", 0, "whole number"},
        {"require_pq", "true", 1, NULL},
        {"require_pq", "off", 1, NULL},
        {"require_pq", "maybe", 0, "true or false"},
        {"idle_timeout", "0.5", 0, "from 1 to 86400"},
        {"idle_timeout", "90", 1, NULL},
        {"watch_interval", "0", 1, NULL},
        {"cert", "", 0, "empty"},
        {"allow", "cn=client1 path=/api/", 1, NULL},
        {"allow", "user=x", 0, "unknown key 'user'"},
        {"deny", "method=get", 0, "upper-case"},
        {"allow_spiffe", "spiffe://cluster.local/ns/x/*", 1, NULL},
        {"allow_spiffe", "http://x", 0, "spiffe://"},
        {"no_such_option", "1", 0, "unknown option 'no_such_option'"},
    };
    int bad = 0;
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        struct pqm_gateway_config *c = pqm_gateway_config_new();
        assert_non_null(c);
        int rc = pqm_gateway_config_set(c, rows[i].key, rows[i].value);
        if ((rc == 0) != rows[i].ok)
            TU_ROW_FAIL(bad, "%s=%s: %s", rows[i].key, rows[i].value,
                        rc == 0 ? "accepted" : pqm_gateway_config_error(c));
        else if (!rows[i].ok && strstr(pqm_gateway_config_error(c), rows[i].why) == NULL)
            TU_ROW_FAIL(bad, "%s=%s: reason '%s' lacks '%s'", rows[i].key, rows[i].value,
                        pqm_gateway_config_error(c), rows[i].why);
        pqm_gateway_config_free(c);
    }
    TU_ROWS_DONE(bad);
}

static int load_text(const char *text, char *err, size_t errlen, struct pqm_gateway_config **out)
{
    char *dir = tu_mkdtemp("gwconf");
    assert_non_null(dir);
    char path[512];
    snprintf(path, sizeof(path), "%s/gw.yaml", dir);
    assert_int_equal(tu_write(path, text), 0);
    struct pqm_gateway_config *c = pqm_gateway_config_new();
    int rc = pqm_gateway_config_load_file(c, path);
    /* The message names the file: keep only what follows "gw.yaml" for the rows. */
    const char *m = strstr(pqm_gateway_config_error(c), "gw.yaml");
    snprintf(err, errlen, "%s", m != NULL ? m : pqm_gateway_config_error(c));
    tu_rmtree(dir);
    free(dir);
    *out = c;
    return rc;
}

static void test_yaml(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int ok;
        const char *why;
    } rows[] = {
        {"listen: 127.0.0.1:8443\nupstream: 127.0.0.1:8080\ncrl:\n  - a.pem\n  - b.pem\n"
         "allow:\n  - cn=client1\n  - namespace=production method=GET\n",
         1, NULL},
        {"# only a comment\n", 1, NULL},
        {"listen: 127.0.0.1:8443\nverify_depth: 0\n", 0, "gw.yaml:2: verify_depth"},
        {"listen: 127.0.0.1:8443\n\nlisten_on: x\n", 0, "gw.yaml:3: unknown option 'listen_on'"},
        {"crl:\n  - a.pem\n  - [b.pem]\n", 0, "gw.yaml:3: crl: list items"},
        {"cert:\n  file: x\n", 0, "gw.yaml:1: cert: a value or a list"},
        {"tls:\n  cert: x\n", 0, "gw.yaml:1: unknown option 'tls'"},
        {"- listen\n", 0, "gw.yaml:1: a mapping"},
        {"listen: [127.0.0.1:1\n", 0, "gw.yaml:"},
        {"allow:\n  - cn=a\n  - bogus\n", 0, "gw.yaml:1: allow 'bogus'"},
    };
    int bad = 0;
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        struct pqm_gateway_config *c = NULL;
        char err[512];
        int rc = load_text(rows[i].text, err, sizeof(err), &c);
        if ((rc == 0) != rows[i].ok)
            TU_ROW_FAIL(bad, "row %zu: %s", i, rc == 0 ? "accepted" : err);
        else if (!rows[i].ok && strstr(err, rows[i].why) == NULL)
            TU_ROW_FAIL(bad, "row %zu: '%s' lacks '%s'", i, err, rows[i].why);
        if (i == 0 && rc == 0) {
            if (c->ncrl != 2 || strcmp(c->crl[1], "b.pem") != 0)
                TU_ROW_FAIL(bad, "row 0: the CRL list was not read (%zu)", c->ncrl);
            if (c->policy == NULL || c->policy->nrules != 2)
                TU_ROW_FAIL(bad, "row 0: the allow list was not read");
        }
        pqm_gateway_config_free(c);
    }
    TU_ROWS_DONE(bad);
}

static void test_required(void **state)
{
    (void)state;
    struct pqm_gateway_config *c = pqm_gateway_config_new();
    assert_int_equal(pqm_gateway_config_check(c), -1);
    assert_non_null(strstr(pqm_gateway_config_error(c), "listen is required"));
    const char *const kv[][2] = {{"listen", "127.0.0.1:1"},
                                 {"upstream", "127.0.0.1:2"},
                                 {"cert", "c.pem"},
                                 {"key", "k.pem"}};
    for (size_t i = 0; i < ARRAY_LEN(kv); i++)
        assert_int_equal(pqm_gateway_config_set(c, kv[i][0], kv[i][1]), 0);
    assert_int_equal(pqm_gateway_config_check(c), -1);
    assert_non_null(strstr(pqm_gateway_config_error(c), "client_ca is required"));
    assert_int_equal(pqm_gateway_config_set(c, "client_ca", "ca.pem"), 0);
    assert_int_equal(pqm_gateway_config_check(c), 0);
    assert_int_equal(pqm_gateway_config_is_switch("require_pq"), 1);
    assert_int_equal(pqm_gateway_config_is_switch("listen"), 0);
    assert_int_equal(pqm_gateway_config_is_switch("nope"), -1);
    pqm_gateway_config_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_values),
        cmocka_unit_test(test_yaml),
        cmocka_unit_test(test_required),
    };
    return cmocka_run_group_tests_name("gwconfig", tests, NULL, NULL);
}
