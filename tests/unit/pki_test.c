/* The public PKI API end to end (include/pqmtls/pki.h and x509.h), each test in its
 * own temporary directory. Keys are unencrypted (pqm_pki_config_insecure_no_passphrase)
 * to keep scrypt out of most tests; one test covers an encrypted PKI. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <pqmtls/pki.h>
#include <pqmtls/x509.h>

#include "pki/alg.h"
#include "pki/certbuild.h"
#include "pki/keyfile.h"
#include "pki/pki_internal.h"
#include "pki/store.h"
#include "unit_util.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static const char PASS[] = "correct horse battery staple";

struct pstate {
    char *tmp;          /* the test's temporary directory */
    char dir[PATH_MAX]; /* TMP/pki, made by pqm_pki_create */
    struct pqm_pki *pki;
};

static int setup(void **state)
{
    struct pstate *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    t->tmp = tu_mkdtemp("pki");
    assert_non_null(t->tmp);
    snprintf(t->dir, sizeof(t->dir), "%s/pki", t->tmp);
    t->pki = pqm_pki_new();
    assert_non_null(t->pki);
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    struct pstate *t = *state;
    pqm_pki_free(t->pki);
    tu_rmtree(t->tmp);
    free(t->tmp);
    free(t);
    return 0;
}

/* DIR/REL into a static buffer (one at a time). */
static const char *in(const char *dir, const char *rel)
{
    static char buf[8][PATH_MAX];
    static int next;
    char *b = buf[next++ % 8];
    snprintf(b, PATH_MAX, "%s/%s", dir, rel);
    return b;
}

/* A PKI in DIR: DOMAIN and TD may be NULL; PASS NULL means unencrypted keys. */
static void make_pki_in(struct pqm_pki *pki, const char *dir, const char *domain, const char *td,
                        const char *pass)
{
    struct pqm_pki_config *cfg = pqm_pki_config_new();
    assert_non_null(cfg);
    if (pass != NULL)
        assert_int_equal(pqm_pki_config_set_passphrase(cfg, pass, strlen(pass)), 0);
    else
        pqm_pki_config_insecure_no_passphrase(cfg);
    if (domain != NULL)
        assert_int_equal(pqm_pki_config_add_server_domain(cfg, domain), 0);
    if (td != NULL)
        assert_int_equal(pqm_pki_config_set_spiffe_trust_domain(cfg, td), 0);
    assert_int_equal(pqm_pki_config_set_org(cfg, "Unit"), 0);
    int rc = pqm_pki_create(pki, dir, cfg);
    pqm_pki_config_free(cfg);
    if (rc != 0)
        fail_msg("pqm_pki_create %s: %s", dir, pqm_pki_error(pki));
}

static void make_pki(struct pstate *t, const char *domain, const char *td, const char *pass)
{
    make_pki_in(t->pki, t->dir, domain, td, pass);
}

/* What pqm_pki_issue reported through its callback. */
struct issued {
    int n;
    char names[8][256];
    char cert[8][PATH_MAX];
};

static int on_issued(const struct pqm_issued *o, void *arg)
{
    struct issued *g = arg;
    if (g->n < 8) {
        snprintf(g->names[g->n], sizeof(g->names[0]), "%s", o->name);
        snprintf(g->cert[g->n], sizeof(g->cert[0]), "%s", o->cert_path);
    }
    g->n++;
    return 0;
}

struct req {
    enum pqm_profile profile;
    const char *name, *dns, *ip, *spiffe;
    unsigned count;
    int no_key_pass;
};

/* Issues REQ; returns pqm_pki_issue's result (setters must accept their input). */
static int issue(struct pqm_pki *pki, const struct req *r, struct issued *g)
{
    struct pqm_issue *q = pqm_issue_new(r->profile);
    assert_non_null(q);
    if (pqm_issue_set_name(q, r->name) != 0 ||
        (r->dns != NULL && pqm_issue_add_dns(q, r->dns) != 0) ||
        (r->ip != NULL && pqm_issue_add_ip(q, r->ip) != 0) ||
        (r->spiffe != NULL && pqm_issue_set_spiffe_id(q, r->spiffe) != 0) ||
        (r->count > 1 && pqm_issue_set_count(q, r->count) != 0)) {
        char msg[1024];
        snprintf(msg, sizeof(msg), "%s", pqm_issue_error(q));
        pqm_issue_free(q);
        fail_msg("request for '%s' refused: %s", r->name, msg);
    }
    if (r->no_key_pass)
        pqm_issue_insecure_no_key_passphrase(q);
    int rc = pqm_pki_issue(pki, q, on_issued, g);
    pqm_issue_free(q);
    return rc;
}

static void issue_ok(struct pqm_pki *pki, const struct req *r)
{
    struct issued g = {0};
    if (issue(pki, r, &g) != 0)
        fail_msg("issuing '%s': %s", r->name, pqm_pki_error(pki));
    assert_int_equal(g.n, r->count > 1 ? (int)r->count : 1);
}

/* The status of the newest record named NAME, or "" when there is none. */
struct find {
    const char *name;
    char status[16];
    char serial[64];
    int count;
};

static int find_cb(const struct pqm_cert_record *r, void *arg)
{
    struct find *f = arg;
    if (strcmp(r->name, f->name) == 0) {
        snprintf(f->status, sizeof(f->status), "%s", r->status);
        snprintf(f->serial, sizeof(f->serial), "%s", r->serial);
        f->count++;
    }
    return 0;
}

static struct find find_record(struct pqm_pki *pki, const char *name)
{
    struct find f = {.name = name};
    assert_int_equal(pqm_pki_foreach(pki, 1, find_cb, &f), 0);
    return f;
}

/* Entries of a directory, "." and ".." aside; -1 when it cannot be read. */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

/* --- creating and opening ------------------------------------------------------------ */

struct names_seen {
    char all[1024];
};

static int names_cb(const struct pqm_cert_record *r, void *arg)
{
    struct names_seen *s = arg;
    size_t used = strlen(s->all);
    snprintf(s->all + used, sizeof(s->all) - used, "%s%s:%s:%s", used ? "," : "", r->name,
             r->kind, r->status);
    return 0;
}

static void test_create_then_open(void **state)
{
    struct pstate *t = *state;
    make_pki(t, "example.com", NULL, NULL);
    static const char *const files[] = {
        "root-ca.crt.pem",       "root-ca.key.pem",       "server-int-ca.crt.pem",
        "server-int-ca.key.pem", "client-int-ca.crt.pem", "client-int-ca.key.pem",
        "server-ca-chain.pem",   "client-ca-chain.pem",   "pki.db",
        "issued",
    };
    for (size_t i = 0; i < ARRAY_LEN(files); i++)
        if (!tu_exists(in(t->dir, files[i])))
            fail_msg("%s is missing", files[i]);
    /* CA keys are private to their owner even unencrypted. */
    struct stat st;
    assert_int_equal(stat(in(t->dir, "root-ca.key.pem"), &st), 0);
    assert_int_equal(st.st_mode & 077, 0);
    assert_int_equal(pqm_pki_is_encrypted(t->pki), 0);
    assert_int_equal(count_entries(in(t->dir, "issued")), 0);
    /* No temporary directory is left beside it. */
    assert_int_equal(count_entries(t->tmp), 1);

    struct pqm_pki *again = pqm_pki_new();
    assert_non_null(again);
    if (pqm_pki_open(again, t->dir) != 0)
        fail_msg("pqm_pki_open: %s", pqm_pki_error(again));
    assert_int_equal(pqm_pki_is_encrypted(again), 0);
    struct names_seen s = {{0}};
    assert_int_equal(pqm_pki_foreach(again, 0, names_cb, &s), 0);
    /* Opening twice with one handle is refused. */
    assert_int_equal(pqm_pki_open(again, t->dir), -1);
    pqm_pki_free(again);
    assert_string_equal(s.all, "root-ca:root:valid,server-int-ca:intermediate:valid,"
                               "client-int-ca:intermediate:valid");
}

static void test_open_refusals(void **state)
{
    struct pstate *t = *state;
    struct {
        const char *why;
        const char *dir;
    } rows[] = {
        {"nonexistent", in(t->tmp, "nope")},
        {"empty directory", t->tmp},
    };
    int bad = 0;
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        struct pqm_pki *p = pqm_pki_new();
        assert_non_null(p);
        int rc = pqm_pki_open(p, rows[i].dir);
        if (rc != -1)
            TU_ROW_FAIL(bad, "%s: opened", rows[i].why);
        else if (strstr(pqm_pki_error(p), rows[i].dir) == NULL ||
                 strstr(pqm_pki_error(p), "not a pqmtls PKI") == NULL)
            TU_ROW_FAIL(bad, "%s: message '%s'", rows[i].why, pqm_pki_error(p));
        pqm_pki_free(p);
    }
    TU_ROWS_DONE(bad);
}

static void test_create_refuses_nonempty(void **state)
{
    struct pstate *t = *state;
    const char *keep = in(t->dir, "keep.txt");
    assert_int_equal(mkdir(t->dir, 0755), 0);
    assert_int_equal(tu_write(keep, "precious\n"), 0);
    struct pqm_pki_config *cfg = pqm_pki_config_new();
    pqm_pki_config_insecure_no_passphrase(cfg);
    int rc = pqm_pki_create(t->pki, t->dir, cfg);
    assert_int_equal(rc, -1);
    tu_assert_contains(pqm_pki_error(t->pki), "not empty");
    char *content = tu_read(keep);
    assert_non_null(content);
    assert_string_equal(content, "precious\n");
    free(content);
    assert_int_equal(count_entries(t->dir), 1);
    assert_int_equal(count_entries(t->tmp), 1);

    /* A regular file in the way is refused too, and left alone. */
    const char *file = in(t->tmp, "plain-file");
    assert_int_equal(tu_write(file, "x"), 0);
    struct pqm_pki *p = pqm_pki_new();
    assert_int_equal(pqm_pki_create(p, file, cfg), -1);
    tu_assert_contains(pqm_pki_error(p), "not a directory");
    pqm_pki_free(p);
    pqm_pki_config_free(cfg);
    content = tu_read(file);
    assert_non_null(content);
    assert_string_equal(content, "x");
    free(content);
}

static void test_create_into_empty_dir(void **state)
{
    struct pstate *t = *state;
    assert_int_equal(mkdir(t->dir, 0755), 0);
    make_pki(t, NULL, NULL, NULL);
    assert_true(tu_exists(in(t->dir, "pki.db")));
}

static void test_create_requires_passphrase(void **state)
{
    struct pstate *t = *state;
    struct pqm_pki_config *cfg = pqm_pki_config_new();
    assert_non_null(cfg);
    assert_int_equal(pqm_pki_create(t->pki, t->dir, cfg), -1);
    tu_assert_contains(pqm_pki_error(t->pki), "passphrase");
    assert_false(tu_exists(t->dir));
    /* An intermediate that would outlive the root is refused as well. */
    pqm_pki_config_insecure_no_passphrase(cfg);
    assert_int_equal(pqm_pki_config_set_root_days(cfg, 10), 0);
    assert_int_equal(pqm_pki_config_set_ca_days(cfg, 20), 0);
    assert_int_equal(pqm_pki_create(t->pki, t->dir, cfg), -1);
    tu_assert_contains(pqm_pki_error(t->pki), "longer than the root");
    assert_false(tu_exists(t->dir));
    pqm_pki_config_free(cfg);
    assert_int_equal(count_entries(t->tmp), 0);
}

enum setter {
    S_ALG,
    S_ROOT_ALG,
    S_ORG,
    S_ROOT_CN,
    S_ROOT_DAYS,
    S_CA_DAYS,
    S_DOMAIN,
    S_IP_RANGE,
    S_TD,
    S_PASS,
};

struct setter_row {
    enum setter which;
    const char *s;
    int n; /* days; for S_PASS the length (-1: strlen) */
    int ok;
    const char *msg; /* refused: in the message */
};

static int call_setter(struct pqm_pki_config *c, const struct setter_row *r)
{
    switch (r->which) {
    case S_ALG:
        return pqm_pki_config_set_alg(c, r->s);
    case S_ROOT_ALG:
        return pqm_pki_config_set_root_alg(c, r->s);
    case S_ORG:
        return pqm_pki_config_set_org(c, r->s);
    case S_ROOT_CN:
        return pqm_pki_config_set_root_cn(c, r->s);
    case S_ROOT_DAYS:
        return pqm_pki_config_set_root_days(c, r->n);
    case S_CA_DAYS:
        return pqm_pki_config_set_ca_days(c, r->n);
    case S_DOMAIN:
        return pqm_pki_config_add_server_domain(c, r->s);
    case S_IP_RANGE:
        return pqm_pki_config_add_server_ip_range(c, r->s);
    case S_TD:
        return pqm_pki_config_set_spiffe_trust_domain(c, r->s);
    case S_PASS:
        return pqm_pki_config_set_passphrase(c, r->s, r->n < 0 ? strlen(r->s) : (size_t)r->n);
    default:
        return -2;
    }
}

static void test_config_setters(void **state)
{
    (void)state;
    char long65[66], pass1025[1026];
    memset(long65, 'o', 65);
    long65[65] = '\0';
    memset(pass1025, 'p', 1025);
    pass1025[1025] = '\0';
    const struct setter_row rows[] = {
        {S_ALG, "ml-dsa-65", 0, 1, NULL},
        {S_ALG, "ecdsa-p256", 0, 1, NULL},
        {S_ALG, "ml-dsa-99", 0, 0, "ml-dsa-99"},
        {S_ALG, "", 0, 0, "unknown algorithm"},
        {S_ROOT_ALG, "slh-dsa-sha2-128s", 0, 1, NULL},
        {S_ROOT_ALG, "rsa", 0, 0, "unknown algorithm"},
        {S_IP_RANGE, "10.0.0.0/8", 0, 1, NULL},
        {S_IP_RANGE, "fd00::/8", 0, 1, NULL},
        {S_IP_RANGE, "none", 0, 1, NULL},
        {S_IP_RANGE, "10.0.0.1/8", 0, 0, "10.0.0.1/8"},
        {S_IP_RANGE, "10.0.0.0/33", 0, 0, "10.0.0.0/33"},
        {S_IP_RANGE, "10.0.0.0", 0, 0, "ADDRESS/PREFIX"},
        {S_IP_RANGE, "garbage", 0, 0, "garbage"},
        {S_TD, "cluster.local", 0, 1, NULL},
        {S_TD, "Cluster.local", 0, 0, "Cluster.local"},
        {S_TD, "td:80", 0, 0, "td:80"},
        {S_TD, "", 0, 0, "trust domain"},
        {S_ROOT_DAYS, NULL, 1, 1, NULL},
        {S_ROOT_DAYS, NULL, 36500, 1, NULL},
        {S_ROOT_DAYS, NULL, 0, 0, "days"},
        {S_ROOT_DAYS, NULL, -1, 0, "days"},
        {S_ROOT_DAYS, NULL, 36501, 0, "days"},
        {S_CA_DAYS, NULL, 365, 1, NULL},
        {S_CA_DAYS, NULL, 0, 0, "days"},
        {S_DOMAIN, "example.com", 0, 1, NULL},
        {S_DOMAIN, ".example.com", 0, 1, NULL},
        {S_DOMAIN, "*.example.com", 0, 0, "--server-domain"},
        {S_DOMAIN, "a..com", 0, 0, "a..com"},
        {S_DOMAIN, "evil_org", 0, 0, "evil_org"},
        {S_DOMAIN, "", 0, 0, "--server-domain"},
        {S_ORG, "Example Corp", 0, 1, NULL},
        {S_ORG, "", 0, 0, "--org"},
        {S_ORG, long65, 0, 0, "--org"},
        {S_ROOT_CN, "My Root", 0, 1, NULL},
        {S_ROOT_CN, "", 0, 0, "common name"},
        {S_PASS, "pw", -1, 1, NULL},
        {S_PASS, "", 0, 0, "empty"},
        {S_PASS, pass1025, -1, 0, "1024"},
    };
    int bad = 0;
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        struct pqm_pki_config *c = pqm_pki_config_new();
        assert_non_null(c);
        int rc = call_setter(c, &rows[i]);
        const char *msg = pqm_pki_config_error(c);
        if (rc != (rows[i].ok ? 0 : -1))
            TU_ROW_FAIL(bad, "row %zu (setter %d '%.20s' %d): rc %d (%s)", i, (int)rows[i].which,
                        rows[i].s != NULL ? rows[i].s : "", rows[i].n, rc, msg);
        else if (!rows[i].ok && strstr(msg, rows[i].msg) == NULL)
            TU_ROW_FAIL(bad, "row %zu: message '%s' lacks '%s'", i, msg, rows[i].msg);
        pqm_pki_config_free(c);
    }
    TU_ROWS_DONE(bad);
}

/* --- issuing -------------------------------------------------------------------------- */

struct server_row {
    const char *name, *dns, *ip;
    int ok;
    const char *msg; /* refused: in the message */
};

static void test_issue_server_constraints(void **state)
{
    struct pstate *t = *state;
    make_pki(t, "example.com", NULL, NULL);
    const struct server_row rows[] = {
        {"api.example.com", NULL, NULL, 1, NULL},
        {"example.com", NULL, NULL, 1, NULL},
        {"www.example.com", NULL, "127.0.0.1", 1, NULL},
        {"v6.example.com", NULL, "::1", 1, NULL},
        {"multi.example.com", "alt.example.com", NULL, 1, NULL},
        {"evil.org", NULL, NULL, 0, "example.com"},
        {"notexample.com", NULL, NULL, 0, "example.com"},
        {"api.example.com.evil.org", NULL, NULL, 0, "example.com"},
        {"ip.example.com", NULL, "10.0.0.1", 0, "10.0.0.1"},
        {"ip6.example.com", NULL, "fd00::1", 0, "fd00::1"},
        {"extra.example.com", "other.org", NULL, 0, "other.org"},
    };
    int bad = 0, ok_rows = 0;
    const char *issued_dir = in(t->dir, "issued");
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        const struct server_row *r = &rows[i];
        struct req q = {PQM_PROFILE_SERVER, r->name, r->dns, r->ip, NULL, 1, 0};
        struct issued g = {0};
        int rc = issue(t->pki, &q, &g);
        const char *msg = pqm_pki_error(t->pki);
        char crt[PATH_MAX];
        snprintf(crt, sizeof(crt), "%s/%s.crt.pem", issued_dir, r->name);
        struct find f = find_record(t->pki, r->name);
        if (r->ok) {
            ok_rows++;
            if (rc != 0)
                TU_ROW_FAIL(bad, "'%s': refused: %s", r->name, msg);
            else if (g.n != 1 || strcmp(g.cert[0], crt) != 0 || !tu_exists(crt))
                TU_ROW_FAIL(bad, "'%s': callback %d '%s'", r->name, g.n, g.cert[0]);
            else if (strcmp(f.status, "valid") != 0 || f.count != 1)
                TU_ROW_FAIL(bad, "'%s': record status '%s' (%d)", r->name, f.status, f.count);
            continue;
        }
        if (rc != -1)
            TU_ROW_FAIL(bad, "'%s': issued", r->name);
        else if (strstr(msg, r->msg) == NULL)
            TU_ROW_FAIL(bad, "'%s': message '%s' lacks '%s'", r->name, msg, r->msg);
        else if (g.n != 0 || tu_exists(crt))
            TU_ROW_FAIL(bad, "'%s': refused but a file was written", r->name);
        else if (f.count != 0)
            TU_ROW_FAIL(bad, "'%s': refused but recorded ('%s')", r->name, f.status);
    }
    /* Exactly the accepted certificates' files, nothing else (no temporaries either). */
    int n = count_entries(issued_dir);
    if (n != 3 * ok_rows)
        TU_ROW_FAIL(bad, "issued/ holds %d entries, want %d", n, 3 * ok_rows);
    TU_ROWS_DONE(bad);
}

/* The issued server certificate carries what was asked for. */
static void test_issued_server_cert(void **state)
{
    struct pstate *t = *state;
    make_pki(t, "example.com", NULL, NULL);
    struct req q = {PQM_PROFILE_SERVER, "api.example.com", "alt.example.com", "127.0.0.1", NULL,
                    1, 0};
    issue_ok(t->pki, &q);
    struct pqm_err e = {{0}};
    X509 *x = pqm__cert_load(in(t->dir, "issued/api.example.com.crt.pem"), &e);
    assert_non_null(x);
    GENERAL_NAMES *g = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    assert_non_null(g);
    assert_int_equal(sk_GENERAL_NAME_num(g), 3);
    GENERAL_NAMES_free(g);
    assert_int_equal(X509_get_extended_key_usage(x), XKU_SSL_SERVER);
    assert_int_equal(X509_check_ca(x), 0);
    assert_int_equal(X509_check_host(x, "api.example.com", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(x, "alt.example.com", 0, 0, NULL), 1);
    assert_int_equal(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
    assert_int_equal(X509_check_host(x, "evil.org", 0, 0, NULL), 0);
    EVP_PKEY *k = pqm__key_load(in(t->dir, "issued/api.example.com.key.pem"), NULL, 0, &e);
    assert_non_null(k);
    assert_int_equal(X509_check_private_key(x, k), 1);
    struct stat st;
    assert_int_equal(stat(in(t->dir, "issued/api.example.com.key.pem"), &st), 0);
    assert_int_equal(st.st_mode & 077, 0);
    EVP_PKEY_free(k);
    /* The files are exactly OpenSSL's PEM of the certificate, then of its issuer. */
    BIO *b = BIO_new(BIO_s_mem());
    assert_non_null(b);
    assert_int_equal(PEM_write_bio_X509(b, x), 1);
    X509_free(x);
    char *want = NULL;
    long wlen = BIO_get_mem_data(b, &want);
    char *crt = tu_read(in(t->dir, "issued/api.example.com.crt.pem"));
    char *chain = tu_read(in(t->dir, "issued/api.example.com.chain.pem"));
    char *ca = tu_read(in(t->dir, "server-int-ca.crt.pem"));
    int crt_ok = crt != NULL && (long)strlen(crt) == wlen && memcmp(crt, want, (size_t)wlen) == 0;
    int chain_ok = crt != NULL && chain != NULL && ca != NULL &&
                   strlen(chain) == strlen(crt) + strlen(ca) &&
                   strncmp(chain, crt, strlen(crt)) == 0 && strcmp(chain + strlen(crt), ca) == 0;
    BIO_free(b);
    free(crt);
    free(chain);
    free(ca);
    assert_true(crt_ok);
    assert_true(chain_ok);
}

struct client_row {
    enum pqm_profile profile;
    const char *name, *spiffe;
    int ok;
    const char *msg;
};

static void test_issue_client_spiffe(void **state)
{
    struct pstate *t = *state;
    make_pki(t, "example.com", "cluster.local", NULL);
    const struct client_row rows[] = {
        {PQM_PROFILE_CLIENT, "frontend", "spiffe://cluster.local/ns/production/sa/frontend", 1,
         NULL},
        {PQM_PROFILE_CLIENT, "plain-client", NULL, 1, NULL},
        {PQM_PROFILE_CLIENT, "outsider", "spiffe://other.local/ns/a", 0, "cluster.local"},
        {PQM_PROFILE_CLIENT, "sub", "spiffe://sub.cluster.local/x", 0, "cluster.local"},
        {PQM_PROFILE_CLIENT, "suffix", "spiffe://cluster.local.evil/x", 0, "cluster.local"},
        {PQM_PROFILE_SERVER, "api.example.com", "spiffe://cluster.local/x", 0,
         "client certificates"},
    };
    int bad = 0;
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        const struct client_row *r = &rows[i];
        struct req q = {r->profile, r->name, NULL, NULL, r->spiffe, 1, 0};
        struct issued g = {0};
        int rc = issue(t->pki, &q, &g);
        const char *msg = pqm_pki_error(t->pki);
        struct find f = find_record(t->pki, r->name);
        if (r->ok && rc != 0)
            TU_ROW_FAIL(bad, "'%s': refused: %s", r->name, msg);
        else if (!r->ok && rc != -1)
            TU_ROW_FAIL(bad, "'%s': issued", r->name);
        else if (!r->ok && strstr(msg, r->msg) == NULL)
            TU_ROW_FAIL(bad, "'%s': message '%s' lacks '%s'", r->name, msg, r->msg);
        else if (!r->ok && (f.count != 0 || g.n != 0))
            TU_ROW_FAIL(bad, "'%s': refused but recorded", r->name);
    }
    TU_ROWS_DONE(bad);

    /* The accepted SPIFFE certificate carries the ID as its URI SAN and clientAuth. */
    struct pqm_err e = {{0}};
    X509 *x = pqm__cert_load(in(t->dir, "issued/frontend.crt.pem"), &e);
    assert_non_null(x);
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    assert_non_null(gens);
    assert_int_equal(sk_GENERAL_NAME_num(gens), 1);
    int type = 0;
    const ASN1_STRING *uri = GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(gens, 0), &type);
    assert_int_equal(type, GEN_URI);
    char got[128];
    snprintf(got, sizeof(got), "%.*s", ASN1_STRING_length(uri),
             (const char *)ASN1_STRING_get0_data(uri));
    GENERAL_NAMES_free(gens);
    assert_int_equal(X509_get_extended_key_usage(x), XKU_SSL_CLIENT);
    X509_free(x);
    assert_string_equal(got, "spiffe://cluster.local/ns/production/sa/frontend");
}

static void test_issue_duplicate_name(void **state)
{
    struct pstate *t = *state;
    make_pki(t, NULL, NULL, NULL);
    struct req q = {PQM_PROFILE_SERVER, "api.example.com", NULL, NULL, NULL, 1, 0};
    issue_ok(t->pki, &q);
    char *before = tu_read(in(t->dir, "issued/api.example.com.crt.pem"));
    assert_non_null(before);
    struct issued g = {0};
    int rc = issue(t->pki, &q, &g);
    char msg[1024];
    snprintf(msg, sizeof(msg), "%s", pqm_pki_error(t->pki));
    char *after = tu_read(in(t->dir, "issued/api.example.com.crt.pem"));
    struct find f = find_record(t->pki, "api.example.com");
    int same = after != NULL && strcmp(before, after) == 0;
    free(before);
    free(after);
    assert_int_equal(rc, -1);
    tu_assert_contains(msg, "api.example.com");
    tu_assert_contains(msg, "already exists");
    assert_true(same);
    assert_int_equal(f.count, 1);
    /* A client may not take a server's name either: names are unique per PKI. */
    struct req c = {PQM_PROFILE_CLIENT, "api.example.com", NULL, NULL, NULL, 1, 0};
    assert_int_equal(issue(t->pki, &c, &g), -1);
}

struct list_seen {
    char names[1024];
    char serials[8][64];
    int n;
};

static int list_cb(const struct pqm_cert_record *r, void *arg)
{
    struct list_seen *s = arg;
    if (strcmp(r->kind, "client") != 0)
        return 0;
    size_t used = strlen(s->names);
    snprintf(s->names + used, sizeof(s->names) - used, "%s%s", used ? "," : "", r->name);
    if (s->n < 8)
        snprintf(s->serials[s->n], sizeof(s->serials[0]), "%s", r->serial);
    s->n++;
    return 0;
}

static void test_issue_count(void **state)
{
    struct pstate *t = *state;
    make_pki(t, NULL, NULL, NULL);
    struct req q = {PQM_PROFILE_CLIENT, "batch", NULL, NULL, NULL, 3, 0};
    struct issued g = {0};
    if (issue(t->pki, &q, &g) != 0)
        fail_msg("issue --count 3: %s", pqm_pki_error(t->pki));
    assert_int_equal(g.n, 3);
    assert_string_equal(g.names[0], "batch-0001");
    assert_string_equal(g.names[1], "batch-0002");
    assert_string_equal(g.names[2], "batch-0003");
    struct list_seen s = {{0}, {{0}}, 0};
    assert_int_equal(pqm_pki_foreach(t->pki, 0, list_cb, &s), 0);
    assert_string_equal(s.names, "batch-0001,batch-0002,batch-0003");
    assert_string_not_equal(s.serials[0], s.serials[1]);
    assert_string_not_equal(s.serials[1], s.serials[2]);
    assert_string_not_equal(s.serials[0], s.serials[2]);
    static const char *const exts[] = {".crt.pem", ".key.pem", ".chain.pem"};
    for (int i = 1; i <= 3; i++)
        for (size_t k = 0; k < ARRAY_LEN(exts); k++) {
            char rel[64];
            snprintf(rel, sizeof(rel), "issued/batch-%04d%s", i, exts[k]);
            if (!tu_exists(in(t->dir, rel)))
                fail_msg("%s is missing", rel);
        }
    assert_false(tu_exists(in(t->dir, "issued/batch.crt.pem")));
    assert_int_equal(count_entries(in(t->dir, "issued")), 9);
    /* The batch's names are now taken. */
    struct req dup = {PQM_PROFILE_CLIENT, "batch-0002", NULL, NULL, NULL, 1, 0};
    assert_int_equal(issue(t->pki, &dup, &g), -1);
}

/* --- checking and recovery -------------------------------------------------------------- */

struct lines {
    char all[4096];
    int n;
};

static void on_problem(const char *line, void *arg)
{
    struct lines *l = arg;
    size_t used = strlen(l->all);
    snprintf(l->all + used, sizeof(l->all) - used, "%s\n", line);
    l->n++;
}

enum mutation { M_NONE, M_DEL_CRT, M_FAKE_CRT, M_KEY_MODE, M_SWAP_CRT, M_DEL_CHAIN, M_DEL_KEY,
                M_DEL_CA_CRT };

struct check_row {
    const char *why;
    enum mutation m;
    int problems;
    const char *msg; /* in the problem lines */
};

static void mutate(const char *dir, enum mutation m)
{
    switch (m) {
    case M_NONE:
        return;
    case M_DEL_CRT:
        assert_int_equal(unlink(in(dir, "issued/api.example.com.crt.pem")), 0);
        return;
    case M_FAKE_CRT: {
        char *pem = tu_read(in(dir, "root-ca.crt.pem"));
        assert_non_null(pem);
        assert_int_equal(tu_write(in(dir, "issued/fake.crt.pem"), pem), 0);
        free(pem);
        return;
    }
    case M_KEY_MODE:
        assert_int_equal(chmod(in(dir, "issued/api.example.com.key.pem"), 0644), 0);
        return;
    case M_SWAP_CRT: {
        char *pem = tu_read(in(dir, "root-ca.crt.pem"));
        assert_non_null(pem);
        assert_int_equal(tu_write(in(dir, "issued/api.example.com.crt.pem"), pem), 0);
        free(pem);
        return;
    }
    case M_DEL_CHAIN:
        assert_int_equal(unlink(in(dir, "issued/api.example.com.chain.pem")), 0);
        return;
    case M_DEL_KEY:
        assert_int_equal(unlink(in(dir, "issued/api.example.com.key.pem")), 0);
        return;
    case M_DEL_CA_CRT:
        assert_int_equal(unlink(in(dir, "server-int-ca.crt.pem")), 0);
        return;
    default:
        fail_msg("unknown mutation %d", (int)m);
    }
}

static void test_check(void **state)
{
    struct pstate *t = *state;
    const struct check_row rows[] = {
        {"healthy", M_NONE, 0, NULL},
        {"issued certificate deleted", M_DEL_CRT, 1, "api.example.com.crt.pem"},
        {"unrecorded certificate", M_FAKE_CRT, 1, "fake.crt.pem: not in the inventory"},
        {"key readable by others", M_KEY_MODE, 1, "readable by group or others"},
        {"certificate replaced", M_SWAP_CRT, 1, "does not match the inventory"},
        {"chain deleted", M_DEL_CHAIN, 1, "chain file missing"},
        {"key deleted", M_DEL_KEY, 1, "key file missing"},
        {"CA certificate deleted", M_DEL_CA_CRT, 1, "server-int-ca.crt.pem"},
    };
    int bad = 0;
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        char dir[PATH_MAX];
        snprintf(dir, sizeof(dir), "%s/check-%zu", t->tmp, i);
        struct pqm_pki *p = pqm_pki_new();
        assert_non_null(p);
        make_pki_in(p, dir, NULL, NULL, NULL);
        struct req q = {PQM_PROFILE_SERVER, "api.example.com", NULL, NULL, NULL, 1, 0};
        issue_ok(p, &q);
        mutate(dir, rows[i].m);
        struct lines l = {{0}, 0};
        int rc = pqm_pki_check(p, on_problem, &l);
        if (rc != rows[i].problems || l.n != rc)
            TU_ROW_FAIL(bad, "%s: %d problems (%d lines), want %d: %s", rows[i].why, rc, l.n,
                        rows[i].problems, rc < 0 ? pqm_pki_error(p) : l.all);
        else if (rows[i].msg != NULL && strstr(l.all, rows[i].msg) == NULL)
            TU_ROW_FAIL(bad, "%s: problem lines '%s' lack '%s'", rows[i].why, l.all,
                        rows[i].msg);
        /* The callback is optional. */
        if (pqm_pki_check(p, NULL, NULL) != rc)
            TU_ROW_FAIL(bad, "%s: a second check without a callback disagrees", rows[i].why);
        pqm_pki_free(p);
    }
    TU_ROWS_DONE(bad);
}

static void test_recovery_of_pending(void **state)
{
    struct pstate *t = *state;
    make_pki(t, NULL, NULL, NULL);
    struct pqm_err e = {{0}};
    struct pqm_store *s = pqm__store_open(in(t->dir, "pki.db"), 0, &e);
    if (s == NULL)
        fail_msg("opening the inventory: %s", pqm__err_str(&e));
    struct pqm_cert_record r = {
        .serial = "7E57DEADBEEF01",
        .name = "ghost.example.com",
        .kind = "server",
        .profile = "server",
        .subject = "CN=ghost.example.com,O=Unit",
        .issuer = "CN=Unit Server Intermediate CA,O=Unit",
        .issuer_serial = "01",
        .sans = "DNS:ghost.example.com",
        .key_alg = "ml-dsa-65",
        .fingerprint = "0000000000000000000000000000000000000000000000000000000000000001",
        .status = "pending",
        .cert_path = "issued/ghost.example.com.crt.pem",
        .key_path = "issued/ghost.example.com.key.pem",
        .chain_path = "issued/ghost.example.com.chain.pem",
        .p12_path = "",
        .not_before = 1700000000,
        .not_after = 1800000000,
        .created_at = 1700000000,
    };
    int rc = pqm__store_insert(s, &r, &e);
    pqm__store_close(s);
    if (rc != 0)
        fail_msg("insert: %s", pqm__err_str(&e));
    /* What an interrupted issuance leaves: its published files, a temporary one. */
    const char *crt = in(t->dir, "issued/ghost.example.com.crt.pem");
    const char *key = in(t->dir, "issued/ghost.example.com.key.pem");
    const char *tmp = in(t->dir, "issued/.pqmtls-tmp-ghost.example.com.chain.pem-Ab12Cd");
    const char *other = in(t->dir, "issued/notes.txt");
    assert_int_equal(tu_write(crt, "half-written certificate\n"), 0);
    assert_int_equal(tu_write(key, "half-written key\n"), 0);
    assert_int_equal(tu_write(tmp, "temporary\n"), 0);
    assert_int_equal(tu_write(other, "not ours to remove\n"), 0);
    struct find f = find_record(t->pki, "ghost.example.com");
    assert_string_equal(f.status, "pending");

    struct lines l = {{0}, 0};
    rc = pqm_pki_check(t->pki, on_problem, &l);
    if (rc != 0)
        fail_msg("check after recovery: %d: %s %s", rc, l.all,
                 rc < 0 ? pqm_pki_error(t->pki) : "");
    assert_false(tu_exists(crt));
    assert_false(tu_exists(key));
    assert_false(tu_exists(tmp));
    assert_true(tu_exists(other));
    f = find_record(t->pki, "ghost.example.com");
    assert_string_equal(f.status, "aborted");
    assert_int_equal(f.count, 1);
    /* The serial stays used; the name is free again. */
    s = pqm__store_open(in(t->dir, "pki.db"), 0, &e);
    assert_non_null(s);
    int used = pqm__store_serial_used(s, "7E57DEADBEEF01", &e);
    int live = pqm__store_name_live(s, "ghost.example.com", &e);
    pqm__store_close(s);
    assert_int_equal(used, 1);
    assert_int_equal(live, 0);
    struct req q = {PQM_PROFILE_SERVER, "ghost.example.com", NULL, NULL, NULL, 1, 0};
    issue_ok(t->pki, &q);
    f = find_record(t->pki, "ghost.example.com");
    assert_string_equal(f.status, "valid");
    assert_int_equal(f.count, 2);
}

/* Issuing recovers first, too: a pending row does not block its name for ever. */
static void test_issue_recovers_first(void **state)
{
    struct pstate *t = *state;
    make_pki(t, NULL, NULL, NULL);
    struct pqm_err e = {{0}};
    struct pqm_store *s = pqm__store_open(in(t->dir, "pki.db"), 0, &e);
    assert_non_null(s);
    struct pqm_cert_record r = {
        .serial = "7E57DEADBEEF02", .name = "svc.example.com", .kind = "server",
        .profile = "server", .subject = "CN=svc.example.com", .issuer = "CN=x",
        .key_alg = "ml-dsa-65", .fingerprint = "fp-pending", .status = "pending",
        .cert_path = "issued/svc.example.com.crt.pem", .created_at = 1,
    };
    assert_int_equal(pqm__store_insert(s, &r, &e), 0);
    pqm__store_close(s);
    assert_int_equal(tu_write(in(t->dir, "issued/svc.example.com.crt.pem"), "partial\n"), 0);
    struct req q = {PQM_PROFILE_SERVER, "svc.example.com", NULL, NULL, NULL, 1, 0};
    issue_ok(t->pki, &q);
    struct pqm_err e2 = {{0}};
    X509 *x = pqm__cert_load(in(t->dir, "issued/svc.example.com.crt.pem"), &e2);
    assert_non_null(x);
    X509_free(x);
    assert_int_equal(pqm_pki_check(t->pki, NULL, NULL), 0);
}

/* --- an encrypted PKI --------------------------------------------------------------------- */

struct pass_row {
    const char *why;
    const char *pass; /* NULL: none set */
    int ok;
    const char *msg;
};

static void test_encrypted_pki(void **state)
{
    struct pstate *t = *state;
    make_pki(t, NULL, NULL, PASS);
    assert_int_equal(pqm_pki_is_encrypted(t->pki), 1);
    static const char *const keys[] = {"root-ca.key.pem", "server-int-ca.key.pem",
                                       "client-int-ca.key.pem"};
    for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
        struct pqm_err e = {{0}};
        assert_int_equal(pqm__key_file_is_encrypted(in(t->dir, keys[i]), &e), 1);
    }
    const struct pass_row rows[] = {
        {"no passphrase", NULL, 0, "passphrase"},
        {"wrong passphrase", "not the passphrase", 0, "wrong passphrase"},
        {"right passphrase", PASS, 1, NULL},
    };
    int bad = 0;
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        struct pqm_pki *p = pqm_pki_new();
        assert_non_null(p);
        assert_int_equal(pqm_pki_open(p, t->dir), 0);
        assert_int_equal(pqm_pki_is_encrypted(p), 1);
        if (rows[i].pass != NULL)
            assert_int_equal(pqm_pki_set_passphrase(p, rows[i].pass, strlen(rows[i].pass)), 0);
        char name[64];
        snprintf(name, sizeof(name), "host%zu.example.com", i);
        struct req q = {PQM_PROFILE_SERVER, name, NULL, NULL, NULL, 1, 0};
        struct issued g = {0};
        int rc = issue(p, &q, &g);
        if (rows[i].ok && rc != 0)
            TU_ROW_FAIL(bad, "%s: refused: %s", rows[i].why, pqm_pki_error(p));
        else if (!rows[i].ok && rc != -1)
            TU_ROW_FAIL(bad, "%s: issued", rows[i].why);
        else if (!rows[i].ok && strstr(pqm_pki_error(p), rows[i].msg) == NULL)
            TU_ROW_FAIL(bad, "%s: message '%s' lacks '%s'", rows[i].why, pqm_pki_error(p),
                        rows[i].msg);
        else if (!rows[i].ok && find_record(p, name).count != 0)
            TU_ROW_FAIL(bad, "%s: refused but recorded", rows[i].why);
        pqm_pki_free(p);
    }
    TU_ROWS_DONE(bad);

    /* By default the issued key is not encrypted with the PKI's passphrase: a service
     * must not hold the secret that protects the CAs. It is unencrypted (mode 0600). */
    struct pqm_err e = {{0}};
    const char *key = in(t->dir, "issued/host2.example.com.key.pem");
    assert_int_equal(pqm__key_file_is_encrypted(key, &e), 0);
    EVP_PKEY *k = pqm__key_load(key, NULL, 0, &e);
    assert_non_null(k);
    EVP_PKEY_free(k);
    /* The creating handle has the passphrase already; a key can be left unencrypted. */
    struct req q = {PQM_PROFILE_CLIENT, "plain-key", NULL, NULL, NULL, 1, 1};
    issue_ok(t->pki, &q);
    assert_int_equal(pqm__key_file_is_encrypted(in(t->dir, "issued/plain-key.key.pem"), &e), 0);
}

/* A wrong passphrase, then the right one, on one handle: the retry works (and, under
 * ASan, leaks nothing). */
static void test_passphrase_retry_same_handle(void **state)
{
    struct pstate *t = *state;
    make_pki(t, NULL, NULL, PASS);
    struct pqm_pki *p = pqm_pki_new();
    assert_non_null(p);
    assert_int_equal(pqm_pki_open(p, t->dir), 0);
    assert_int_equal(pqm_pki_set_passphrase(p, "wrong", 5), 0);
    struct req q = {PQM_PROFILE_SERVER, "retry.example.com", NULL, NULL, NULL, 1, 0};
    struct issued g = {0};
    int first = issue(p, &q, &g);
    char msg[1024];
    snprintf(msg, sizeof(msg), "%s", pqm_pki_error(p));
    assert_int_equal(pqm_pki_set_passphrase(p, PASS, strlen(PASS)), 0);
    int second = issue(p, &q, &g);
    if (second != 0)
        snprintf(msg, sizeof(msg), "%s", pqm_pki_error(p));
    pqm_pki_free(p);
    assert_int_equal(first, -1);
    if (second != 0)
        fail_msg("retry with the right passphrase: %s", msg);
}

/* A CA key that does not match its certificate is refused on every attempt, not
 * just the first. */
static void test_mismatched_ca_key_refused_every_time(void **state)
{
    struct pstate *t = *state;
    make_pki(t, NULL, NULL, NULL);
    struct pqm_err e = {{0}};
    EVP_PKEY *k = pqm__alg_keygen(pqm__alg_find("ml-dsa-65"), &e);
    assert_non_null(k);
    char *pem = NULL;
    size_t len = 0;
    assert_int_equal(pqm__key_to_pem(k, NULL, 0, &pem, &len, &e), 0);
    EVP_PKEY_free(k);
    assert_int_equal(tu_write(in(t->dir, "server-int-ca.key.pem"), pem), 0);
    free(pem);
    struct pqm_pki *p = pqm_pki_new();
    assert_non_null(p);
    assert_int_equal(pqm_pki_open(p, t->dir), 0);
    int rc[2];
    char msg[2][1024];
    for (int i = 0; i < 2; i++) {
        char name[64];
        snprintf(name, sizeof(name), "try%d.example.com", i);
        struct req q = {PQM_PROFILE_SERVER, name, NULL, NULL, NULL, 1, 0};
        struct issued g = {0};
        rc[i] = issue(p, &q, &g);
        snprintf(msg[i], sizeof(msg[i]), "%s", pqm_pki_error(p));
    }
    pqm_pki_free(p);
    assert_int_equal(rc[0], -1);
    tu_assert_contains(msg[0], "does not match");
    if (rc[1] != -1) {
        /* Say what came out: a certificate its issuer's public key does not verify. */
        X509 *ca = pqm__cert_load(in(t->dir, "server-int-ca.crt.pem"), &e);
        X509 *x = pqm__cert_load(in(t->dir, "issued/try1.example.com.crt.pem"), &e);
        int v = ca != NULL && x != NULL ? X509_verify(x, X509_get0_pubkey(ca)) : -2;
        X509_free(ca);
        X509_free(x);
        ERR_clear_error();
        fail_msg("second attempt with the mismatched CA key: rc %d; the certificate it wrote "
                 "verifies with the CA's public key: %s",
                 rc[1], v == 1 ? "yes" : "no");
    }
    tu_assert_contains(msg[1], "does not match");
}

/* --- the verifier ----------------------------------------------------------------------- */

struct verify_row {
    const char *why;
    enum pqm_purpose purpose;
    const char *ca;   /* relative to the PKI */
    const char *leaf; /* relative to the PKI */
    const char *msg;  /* NULL: verifies; else in the refusal */
};

static void test_verifier(void **state)
{
    struct pstate *t = *state;
    make_pki(t, "example.com", "cluster.local", NULL);
    struct req c = {PQM_PROFILE_CLIENT, "client1", NULL, NULL,
                    "spiffe://cluster.local/ns/a/sa/client1", 1, 0};
    struct req s = {PQM_PROFILE_SERVER, "api.example.com", NULL, "127.0.0.1", NULL, 1, 0};
    issue_ok(t->pki, &c);
    issue_ok(t->pki, &s);
    static const char not_trusted[] = "is not one of the trusted CA certificates";
    const struct verify_row rows[] = {
        {"client for client", PQM_PURPOSE_CLIENT, "client-ca-chain.pem",
         "issued/client1.crt.pem", NULL},
        {"client chain file for client", PQM_PURPOSE_CLIENT, "client-ca-chain.pem",
         "issued/client1.chain.pem", NULL},
        {"client under its intermediate alone", PQM_PURPOSE_CLIENT, "client-int-ca.crt.pem",
         "issued/client1.crt.pem", NULL},
        {"server for server", PQM_PURPOSE_SERVER, "server-ca-chain.pem",
         "issued/api.example.com.crt.pem", NULL},
        {"client for server", PQM_PURPOSE_SERVER, "client-ca-chain.pem",
         "issued/client1.crt.pem", "purpose"},
        {"client against the server chain", PQM_PURPOSE_CLIENT, "server-ca-chain.pem",
         "issued/client1.crt.pem", not_trusted},
        {"server for client", PQM_PURPOSE_CLIENT, "server-ca-chain.pem",
         "issued/api.example.com.crt.pem", "purpose"},
        {"server against the client chain", PQM_PURPOSE_SERVER, "client-ca-chain.pem",
         "issued/api.example.com.crt.pem", not_trusted},
        {"client under the root, no intermediate", PQM_PURPOSE_CLIENT, "root-ca.crt.pem",
         "issued/client1.crt.pem", not_trusted},
        /* x509.h: the intermediate in the leaf's file is ignored; only CA files count. */
        {"client under the root, intermediate offered", PQM_PURPOSE_CLIENT, "root-ca.crt.pem",
         "issued/client1.chain.pem", not_trusted},
        {"a CA as a client", PQM_PURPOSE_CLIENT, "client-ca-chain.pem", "client-int-ca.crt.pem",
         "purpose"},
    };
    int bad = 0;
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        struct pqm_verifier *v = pqm_verifier_new(rows[i].purpose);
        assert_non_null(v);
        if (pqm_verifier_add_ca_file(v, in(t->dir, rows[i].ca)) != 0)
            fail_msg("%s: add_ca_file: %s", rows[i].why, pqm_verifier_error(v));
        const char *leaf = in(t->dir, rows[i].leaf);
        int rc = pqm_verifier_verify_file(v, leaf);
        const char *msg = pqm_verifier_error(v);
        if (rc != (rows[i].msg == NULL ? 0 : -1))
            TU_ROW_FAIL(bad, "%s: rc %d: %s", rows[i].why, rc, msg);
        else if (rows[i].msg != NULL && (strstr(msg, rows[i].msg) == NULL ||
                                         strstr(msg, leaf) == NULL))
            TU_ROW_FAIL(bad, "%s: message '%s' should name the file and say '%s'", rows[i].why,
                        msg, rows[i].msg);
        pqm_verifier_free(v);
    }
    ERR_clear_error();
    TU_ROWS_DONE(bad);

    /* No anchor, no verification. */
    struct pqm_verifier *v = pqm_verifier_new(PQM_PURPOSE_CLIENT);
    assert_int_equal(pqm_verifier_verify_file(v, in(t->dir, "issued/client1.crt.pem")), -1);
    tu_assert_contains(pqm_verifier_error(v), "no trust anchor");
    /* A leaf is not a trust anchor. */
    assert_int_equal(pqm_verifier_add_ca_file(v, in(t->dir, "issued/client1.crt.pem")), -1);
    tu_assert_contains(pqm_verifier_error(v), "not a CA");
    pqm_verifier_free(v);
    assert_null(pqm_verifier_new((enum pqm_purpose)0));
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_create_then_open),
        T(test_open_refusals),
        T(test_create_refuses_nonempty),
        T(test_create_into_empty_dir),
        T(test_create_requires_passphrase),
        cmocka_unit_test(test_config_setters),
        T(test_issue_server_constraints),
        T(test_issued_server_cert),
        T(test_issue_client_spiffe),
        T(test_issue_duplicate_name),
        T(test_issue_count),
        T(test_check),
        T(test_recovery_of_pending),
        T(test_issue_recovers_first),
        T(test_encrypted_pki),
        T(test_passphrase_retry_same_handle),
        T(test_mismatched_ca_key_refused_every_time),
        T(test_verifier),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
