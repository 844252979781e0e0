/* Renewal (pqm_pki_renew, pki/renew.c) end to end, each test with its own PKI: what is
 * due and what is not, the files at the same paths and the archive, the inventory's
 * links, a dry run, kept keys, encrypted keys, CSR certificates, and an interruption
 * at every rename of a renewal (in a child process that exits there), after which
 * recovery leaves the old set whole at the paths.
 *
 * rename and renameat2 are wrapped (tests/CMakeLists.txt: -Wl,--wrap) so that a child
 * can stop at the Nth one. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pqmtls/pki.h>

#include "pki/alg.h"
#include "pki/certbuild.h"
#include "pki/keyfile.h"
#include "pki/profile.h"
#include "unit_util.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* --- stopping at the Nth rename ------------------------------------------------------ */

static int stop_before, stop_after, renames; /* 0: never */

int __real_rename(const char *from, const char *to);
int __real_renameat2(int fromfd, const char *from, int tofd, const char *to, unsigned flags);

static void count_rename(int done)
{
    if (!done && ++renames == stop_before)
        _exit(99);
    if (done && renames == stop_after)
        _exit(98);
}

int __wrap_rename(const char *from, const char *to)
{
    count_rename(0);
    int rc = __real_rename(from, to);
    count_rename(1);
    return rc;
}

int __wrap_renameat2(int fromfd, const char *from, int tofd, const char *to, unsigned flags)
{
    count_rename(0);
    int rc = __real_renameat2(fromfd, from, tofd, to, flags);
    count_rename(1);
    return rc;
}

/* --- a PKI per test ------------------------------------------------------------------ */

struct rstate {
    char *tmp;
    char dir[PATH_MAX];
    struct pqm_pki *pki;
};

static int setup(void **state)
{
    struct rstate *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    t->tmp = tu_mkdtemp("renew");
    assert_non_null(t->tmp);
    snprintf(t->dir, sizeof(t->dir), "%s/pki", t->tmp);
    struct pqm_pki_config *cfg = pqm_pki_config_new();
    t->pki = pqm_pki_new();
    assert_non_null(cfg);
    assert_non_null(t->pki);
    pqm_pki_config_insecure_no_passphrase(cfg);
    assert_int_equal(pqm_pki_config_add_server_domain(cfg, "example.com"), 0);
    assert_int_equal(pqm_pki_config_set_org(cfg, "Unit"), 0);
    int rc = pqm_pki_create(t->pki, t->dir, cfg);
    pqm_pki_config_free(cfg);
    if (rc != 0)
        fail_msg("pqm_pki_create: %s", pqm_pki_error(t->pki));
    stop_before = stop_after = renames = 0;
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    struct rstate *t = *state;
    pqm_pki_free(t->pki);
    tu_rmtree(t->tmp);
    free(t->tmp);
    free(t);
    return 0;
}

/* DIR/issued/NAME + EXT into a rotating static buffer. */
static const char *issued(const struct rstate *t, const char *name, const char *ext)
{
    static char buf[8][PATH_MAX];
    static int next;
    char *b = buf[next++ % 8];
    snprintf(b, PATH_MAX, "%s/issued/%s%s", t->dir, name, ext);
    return b;
}

struct issue_opts {
    int server;
    int64_t lifetime;
    const char *key_pass; /* NULL: unencrypted */
    int p12;
    const unsigned char *csr;
    size_t csrlen;
};

static void issue(struct rstate *t, const char *name, const struct issue_opts *o)
{
    struct pqm_issue *q = pqm_issue_new(o->server ? PQM_PROFILE_SERVER : PQM_PROFILE_CLIENT);
    assert_non_null(q);
    assert_int_equal(pqm_issue_set_name(q, name), 0);
    if (o->lifetime > 0)
        assert_int_equal(pqm_issue_set_lifetime(q, o->lifetime), 0);
    if (o->key_pass != NULL)
        assert_int_equal(pqm_issue_set_key_passphrase(q, o->key_pass, strlen(o->key_pass)), 0);
    if (o->p12)
        assert_int_equal(pqm_issue_set_p12_passphrase(q, "p12 pass", 8), 0);
    if (o->csr != NULL)
        assert_int_equal(pqm_issue_set_csr(q, o->csr, o->csrlen), 0);
    int rc = pqm_pki_issue(t->pki, q, NULL, NULL);
    pqm_issue_free(q);
    if (rc != 0)
        fail_msg("issuing %s: %s", name, pqm_pki_error(t->pki));
}

/* What a renewal reported, by name. */
struct report {
    int n;
    struct {
        char name[64], reason[1024], old_serial[64], new_serial[64];
        enum pqm_renew_result result;
        int64_t new_not_after;
    } v[8];
};

static int on_renewed(const struct pqm_renewed *r, void *arg)
{
    struct report *g = arg;
    if (g->n < 8) {
        snprintf(g->v[g->n].name, sizeof(g->v[0].name), "%s", r->name);
        snprintf(g->v[g->n].reason, sizeof(g->v[0].reason), "%s", r->reason);
        snprintf(g->v[g->n].old_serial, sizeof(g->v[0].old_serial), "%s", r->old_serial);
        snprintf(g->v[g->n].new_serial, sizeof(g->v[0].new_serial), "%s", r->new_serial);
        g->v[g->n].result = r->result;
        g->v[g->n].new_not_after = r->new_not_after;
    }
    g->n++;
    return 0;
}

struct renew_opts {
    int64_t within; /* -1: the profile's */
    const char *name, *key_pass;
    int reuse, dry;
};

static int renew(struct pqm_pki *pki, const struct renew_opts *o, struct report *g)
{
    struct pqm_renew *r = pqm_renew_new();
    assert_non_null(r);
    if (o->within >= 0)
        assert_int_equal(pqm_renew_set_within(r, o->within), 0);
    if (o->name != NULL)
        assert_int_equal(pqm_renew_set_name(r, o->name), 0);
    if (o->key_pass != NULL)
        assert_int_equal(pqm_renew_set_key_passphrase(r, o->key_pass, strlen(o->key_pass)), 0);
    if (o->reuse)
        pqm_renew_reuse_key(r);
    if (o->dry)
        pqm_renew_dry_run(r);
    memset(g, 0, sizeof(*g));
    int rc = pqm_pki_renew(pki, r, on_renewed, g);
    pqm_renew_free(r);
    return rc;
}

/* The inventory row of SERIAL. */
struct row {
    char status[16], replaced_by[64], cert[PATH_MAX], key[PATH_MAX], fp[65], name[64];
};

static int copy_row(const struct pqm_cert_record *r, void *arg)
{
    struct row *w = arg;
    snprintf(w->status, sizeof(w->status), "%s", r->status);
    snprintf(w->replaced_by, sizeof(w->replaced_by), "%s", r->replaced_by);
    snprintf(w->cert, sizeof(w->cert), "%s", r->cert_path);
    snprintf(w->key, sizeof(w->key), "%s", r->key_path);
    snprintf(w->fp, sizeof(w->fp), "%s", r->fingerprint);
    snprintf(w->name, sizeof(w->name), "%s", r->name);
    return 0;
}

static struct row row_of(struct pqm_pki *pki, const char *serial)
{
    struct row w;
    memset(&w, 0, sizeof(w));
    if (pqm_pki_find(pki, serial, copy_row, &w) != 1)
        fail_msg("serial %s is not in the inventory", serial);
    return w;
}

/* The serial (inventory form) and SHA-256 fingerprint of the certificate in PATH. */
static void cert_id(const char *path, char serial[64], char fp[65])
{
    struct pqm_err e = {{0}};
    X509 *x = pqm__cert_load(path, &e);
    if (x == NULL)
        fail_msg("%s: %s", path, pqm__err_str(&e));
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    assert_int_equal(pqm__serial_hex(bn, serial, 64), 0);
    assert_int_equal(pqm__cert_fingerprint(x, fp), 0);
    BN_free(bn);
    X509_free(x);
}

/* The key in KEY (unencrypted, or with PASS) belongs to the certificate in CERT. */
static int key_matches(const char *cert, const char *key, const char *pass)
{
    struct pqm_err e = {{0}};
    X509 *x = pqm__cert_load(cert, &e);
    EVP_PKEY *k = pqm__key_load(key, pass, pass != NULL ? strlen(pass) : 0, &e);
    int ok = x != NULL && k != NULL && X509_check_private_key(x, k) == 1;
    X509_free(x);
    EVP_PKEY_free(k);
    return ok;
}

static char *public_key_pem(const char *cert)
{
    struct pqm_err e = {{0}};
    X509 *x = pqm__cert_load(cert, &e);
    assert_non_null(x);
    BIO *b = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PUBKEY(b, X509_get0_pubkey(x)), 1);
    char *data = NULL;
    long n = BIO_get_mem_data(b, &data);
    char *out = strndup(data, (size_t)n);
    BIO_free(b);
    X509_free(x);
    return out;
}

static int find_result(const struct report *g, const char *name)
{
    for (int i = 0; i < g->n && i < 8; i++)
        if (strcmp(g->v[i].name, name) == 0)
            return i;
    fail_msg("no result for %s", name);
    return -1;
}

/* DIR/REL into a rotating static buffer. */
static const char *in(const struct rstate *t, const char *rel)
{
    static char buf[8][PATH_MAX];
    static int next;
    char *b = buf[next++ % 8];
    snprintf(b, PATH_MAX, "%s/%s", t->dir, rel);
    return b;
}

/* Every file under DIR/issued with its content, sorted: a picture of the files. */
static void snapshot(const struct rstate *t, const char *sub, char *out, size_t outlen)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/issued%s", t->dir, sub);
    struct dirent **list = NULL;
    int n = scandir(dir, &list, NULL, alphasort);
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", dir, list[i]->d_name);
        struct stat st;
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            char *data = tu_read(path);
            unsigned long h = 5381;
            for (const char *c = data; c != NULL && *c != '\0'; c++)
                h = h * 33 + (unsigned char)*c;
            free(data);
            used += (size_t)snprintf(out + used, used < outlen ? outlen - used : 0, "%s:%lx ",
                                     list[i]->d_name, h);
        }
        free(list[i]);
    }
    free(list);
}

static int row_text(const struct pqm_cert_record *r, void *arg)
{
    char *out = arg;
    size_t used = strlen(out);
    snprintf(out + used, 4096 - used, "%s:%s:%s:%s:%s ", r->serial, r->status, r->replaced_by,
             r->cert_path, r->key_path);
    return 0;
}

/* Every row of the inventory, aborted ones too, as text (OUT holds 4096 bytes). */
static void inventory(struct pqm_pki *pki, char *out)
{
    out[0] = '\0';
    assert_int_equal(pqm_pki_foreach(pki, 1, row_text, out), 0);
}

/* The old certificate of NAME, renewed: superseded by the new serial, its files in the
 * archive as they were; the new one at the paths with a matching key. */
static void assert_renewed(struct rstate *t, const char *name, const char *old_serial,
                           const char *old_fp, const char *new_serial, const char *key_pass)
{
    char serial[64], fp[65], rel[PATH_MAX];
    cert_id(issued(t, name, ".crt.pem"), serial, fp);
    assert_string_equal(serial, new_serial);
    assert_true(key_matches(issued(t, name, ".crt.pem"), issued(t, name, ".key.pem"), key_pass));
    struct row now = row_of(t->pki, new_serial);
    assert_string_equal(now.status, "valid");
    assert_string_equal(now.fp, fp);
    struct row old = row_of(t->pki, old_serial);
    assert_string_equal(old.status, "superseded");
    assert_string_equal(old.replaced_by, new_serial);
    snprintf(rel, sizeof(rel), "issued/archive/%s.%s.crt.pem", name, old_serial);
    assert_string_equal(old.cert, rel);
    cert_id(in(t, rel), serial, fp);
    assert_string_equal(fp, old_fp);
    snprintf(rel, sizeof(rel), "issued/archive/%s.%s.key.pem", name, old_serial);
    assert_true(key_matches(in(t, old.cert), in(t, rel), key_pass));
}

/* Only what expires within the window is renewed, each at its own paths, the old files
 * archived, the inventory linking old to new; a second run finds nothing. */
static void test_renews_what_is_due(void **state)
{
    struct rstate *t = *state;
    static const char *const names[] = {"soon", "tomorrow", "api.example.com", "later"};
    static const int64_t life[] = {2 * PQM_HOUR, PQM_DAY, 2 * PQM_DAY, 365 * PQM_DAY};
    char serial[4][64], fp[4][65];
    for (int i = 0; i < 4; i++) {
        issue(t, names[i], &(struct issue_opts){.server = i == 2, .lifetime = life[i]});
        cert_id(issued(t, names[i], ".crt.pem"), serial[i], fp[i]);
    }
    struct report g;
    int64_t now = (int64_t)time(NULL);
    assert_int_equal(renew(t->pki, &(struct renew_opts){.within = 3 * PQM_DAY}, &g), 0);
    assert_int_equal(g.n, 3);
    assert_string_equal(g.v[0].name, "soon"); /* the soonest first */
    for (int i = 0; i < 3; i++) {
        int k = find_result(&g, names[i]);
        assert_int_equal(g.v[k].result, PQM_RENEW_DONE);
        assert_string_equal(g.v[k].old_serial, serial[i]);
        assert_renewed(t, names[i], serial[i], fp[i], g.v[k].new_serial, NULL);
        /* The profile's 365 days, from now. */
        assert_true(g.v[k].new_not_after >= now + 365 * PQM_DAY - 5 &&
                    g.v[k].new_not_after <= now + 365 * PQM_DAY + 5);
    }
    assert_string_equal(row_of(t->pki, serial[3]).status, "valid");
    assert_int_equal(pqm_pki_check(t->pki, NULL, NULL), 0);
    /* Nothing is due any more. */
    assert_int_equal(renew(t->pki, &(struct renew_opts){.within = 3 * PQM_DAY}, &g), 0);
    assert_int_equal(g.n, 0);
}

/* A dry run says what would be done and changes no file and no row. */
static void test_dry_run_changes_nothing(void **state)
{
    struct rstate *t = *state;
    issue(t, "soon", &(struct issue_opts){.lifetime = 2 * PQM_HOUR});
    issue(t, "enc", &(struct issue_opts){.lifetime = 2 * PQM_HOUR, .key_pass = "kp"});
    char before[4096], after[4096], db_before[4096], db_after[4096];
    snapshot(t, "", before, sizeof(before));
    inventory(t->pki, db_before);
    struct report g;
    assert_int_equal(renew(t->pki, &(struct renew_opts){.within = PQM_DAY, .dry = 1}, &g), 1);
    assert_int_equal(g.n, 2);
    assert_int_equal(g.v[find_result(&g, "soon")].result, PQM_RENEW_PLANNED);
    assert_string_equal(g.v[find_result(&g, "soon")].new_serial, "");
    assert_int_equal(g.v[find_result(&g, "enc")].result, PQM_RENEW_SKIPPED);
    tu_assert_contains(g.v[find_result(&g, "enc")].reason, "is encrypted");
    snapshot(t, "", after, sizeof(after));
    assert_string_equal(before, after);
    assert_false(tu_exists(in(t, "issued/archive")));
    inventory(t->pki, db_after);
    assert_string_equal(db_before, db_after);
    char serial[64], fp[65];
    cert_id(issued(t, "soon", ".crt.pem"), serial, fp);
    assert_string_equal(row_of(t->pki, serial).status, "valid");
}

/* --name renews one certificate however long it has left; an unknown name is refused. */
static void test_by_name(void **state)
{
    struct rstate *t = *state;
    issue(t, "far", &(struct issue_opts){.lifetime = 300 * PQM_DAY});
    issue(t, "other", &(struct issue_opts){.lifetime = 2 * PQM_HOUR});
    char serial[64], fp[65], other[64], ofp[65];
    cert_id(issued(t, "far", ".crt.pem"), serial, fp);
    cert_id(issued(t, "other", ".crt.pem"), other, ofp);
    struct report g;
    assert_int_equal(renew(t->pki, &(struct renew_opts){.within = -1, .name = "far"}, &g), 0);
    assert_int_equal(g.n, 1);
    assert_renewed(t, "far", serial, fp, g.v[0].new_serial, NULL);
    assert_string_equal(row_of(t->pki, other).status, "valid");
    assert_int_equal(renew(t->pki, &(struct renew_opts){.within = -1, .name = "nobody"}, &g), -1);
    tu_assert_contains(pqm_pki_error(t->pki), "no valid certificate is named 'nobody'");
}

/* --reuse-key: the same public key, the key file untouched, none archived. */
static void test_reuse_key(void **state)
{
    struct rstate *t = *state;
    issue(t, "svc", &(struct issue_opts){.lifetime = 2 * PQM_HOUR});
    char *pub = public_key_pem(issued(t, "svc", ".crt.pem"));
    char *key = tu_read(issued(t, "svc", ".key.pem"));
    char serial[64], fp[65];
    cert_id(issued(t, "svc", ".crt.pem"), serial, fp);
    struct report g;
    assert_int_equal(renew(t->pki, &(struct renew_opts){.within = PQM_DAY, .reuse = 1}, &g), 0);
    assert_int_equal(g.n, 1);
    char *pub2 = public_key_pem(issued(t, "svc", ".crt.pem"));
    char *key2 = tu_read(issued(t, "svc", ".key.pem"));
    assert_string_equal(pub, pub2);
    assert_string_equal(key, key2);
    struct row old = row_of(t->pki, serial);
    assert_string_equal(old.status, "superseded");
    assert_string_equal(old.key, "issued/svc.key.pem"); /* shared with the new one */
    char arch[PATH_MAX];
    snprintf(arch, sizeof(arch), "issued/archive/svc.%s.key.pem", serial);
    assert_false(tu_exists(in(t, arch)));
    assert_int_equal(pqm_pki_check(t->pki, NULL, NULL), 0);
    free(pub);
    free(pub2);
    free(key);
    free(key2);
}

/* An encrypted key: skipped without its passphrase or with a wrong one; with it, the
 * new key is encrypted with the same passphrase. */
static void test_encrypted_key(void **state)
{
    struct rstate *t = *state;
    issue(t, "enc", &(struct issue_opts){.lifetime = 2 * PQM_HOUR, .key_pass = "right"});
    char serial[64], fp[65];
    cert_id(issued(t, "enc", ".crt.pem"), serial, fp);
    struct report g;
    assert_int_equal(renew(t->pki, &(struct renew_opts){.within = PQM_DAY}, &g), 1);
    tu_assert_contains(g.v[0].reason, "enc.key.pem is encrypted");
    assert_int_equal(renew(t->pki, &(struct renew_opts){.within = PQM_DAY, .key_pass = "wrong"},
                           &g),
                     1);
    tu_assert_contains(g.v[0].reason, "wrong passphrase");
    assert_string_equal(row_of(t->pki, serial).status, "valid");
    assert_int_equal(renew(t->pki, &(struct renew_opts){.within = PQM_DAY, .key_pass = "right"},
                           &g),
                     0);
    struct pqm_err e = {{0}};
    assert_int_equal(pqm__key_file_is_encrypted(issued(t, "enc", ".key.pem"), &e), 1);
    assert_renewed(t, "enc", serial, fp, g.v[0].new_serial, "right");
}

/* A certificate made for a CSR has no key here: skipped, unless --reuse-key renews it
 * for the public key it certifies. */
static void test_csr_certificate(void **state)
{
    struct rstate *t = *state;
    struct pqm_err e = {{0}};
    EVP_PKEY *key = pqm__alg_keygen(pqm__alg_find("ml-dsa-44"), &e);
    X509_REQ *req = X509_REQ_new();
    X509_NAME *subject = pqm__name_new("device-17", NULL, &e);
    assert_non_null(key);
    assert_non_null(req);
    assert_int_equal(X509_REQ_set_subject_name(req, subject), 1);
    assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
    assert_true(X509_REQ_sign(req, key, NULL) > 0);
    unsigned char *der = NULL;
    int len = i2d_X509_REQ(req, &der);
    assert_true(len > 0);
    issue(t, "device-17", &(struct issue_opts){.lifetime = 2 * PQM_HOUR, .csr = der,
                                               .csrlen = (size_t)len});
    OPENSSL_free(der);
    X509_REQ_free(req);
    X509_NAME_free(subject);
    EVP_PKEY_free(key);
    char *pub = public_key_pem(issued(t, "device-17", ".crt.pem"));
    char serial[64], fp[65];
    cert_id(issued(t, "device-17", ".crt.pem"), serial, fp);
    struct report g;
    assert_int_equal(renew(t->pki, &(struct renew_opts){.within = PQM_DAY}, &g), 1);
    tu_assert_contains(g.v[0].reason, "issued for a CSR");
    tu_assert_contains(g.v[0].reason, "--reuse-key");
    assert_int_equal(renew(t->pki, &(struct renew_opts){.within = PQM_DAY, .reuse = 1}, &g), 0);
    char *pub2 = public_key_pem(issued(t, "device-17", ".crt.pem"));
    assert_string_equal(pub, pub2);
    assert_false(tu_exists(issued(t, "device-17", ".key.pem")));
    assert_string_equal(row_of(t->pki, serial).replaced_by, g.v[0].new_serial);
    assert_int_equal(pqm_pki_check(t->pki, NULL, NULL), 0);
    free(pub);
    free(pub2);
}

/* The new files keep the permissions of those they replace (a key a service's group
 * may read stays readable by it); a PKCS#12 file is made again. */
static void test_modes_and_p12(void **state)
{
    struct rstate *t = *state;
    issue(t, "svc", &(struct issue_opts){.lifetime = 2 * PQM_HOUR, .key_pass = "kp", .p12 = 1});
    assert_int_equal(chmod(issued(t, "svc", ".key.pem"), 0640), 0);
    char serial[64], fp[65];
    cert_id(issued(t, "svc", ".crt.pem"), serial, fp);
    struct report g;
    assert_int_equal(renew(t->pki, &(struct renew_opts){.within = PQM_DAY, .key_pass = "kp"}, &g),
                     0);
    struct stat st;
    assert_int_equal(stat(issued(t, "svc", ".key.pem"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
    assert_int_equal(stat(issued(t, "svc", ".p12"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char arch[PATH_MAX];
    snprintf(arch, sizeof(arch), "issued/archive/svc.%s.p12", serial);
    assert_true(tu_exists(in(t, arch)));
    /* The archive's copy of the key is its owner's alone: no service reads it. */
    snprintf(arch, sizeof(arch), "issued/archive/svc.%s.key.pem", serial);
    assert_int_equal(stat(in(t, arch), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_renewed(t, "svc", serial, fp, g.v[0].new_serial, "kp");
}

/* A lifetime beyond the issuing CA is skipped with the CA's end, as pki issue refuses it. */
static void test_lifetime_beyond_ca(void **state)
{
    struct rstate *t = *state;
    issue(t, "svc", &(struct issue_opts){.lifetime = 2 * PQM_HOUR});
    struct pqm_renew *r = pqm_renew_new();
    assert_non_null(r);
    assert_int_equal(pqm_renew_set_lifetime(r, 59 * 60), -1);
    assert_int_equal(pqm_renew_set_within(r, -1), -1);
    assert_int_equal(pqm_renew_set_lifetime(r, 3650 * PQM_DAY), 0);
    assert_int_equal(pqm_renew_set_within(r, PQM_DAY), 0);
    struct report g = {0};
    assert_int_equal(pqm_pki_renew(t->pki, r, on_renewed, &g), 1);
    pqm_renew_free(r);
    tu_assert_contains(g.v[0].reason, "a lifetime of 3650d would outlive the client "
                                      "intermediate CA");
}

static void other_problem(const char *line, void *arg)
{
    if (strstr(line, "svc.key.pem: key file readable by group or others") == NULL) {
        print_error("%s\n", line);
        (*(int *)arg)++;
    }
}

/* A renewal stopped before (or after) each of its renames: the next command's recovery
 * leaves the old certificate, key and chain whole at the paths, the old certificate
 * valid again, no copy in the archive, no temporary file; a renewal then succeeds. */
static void test_interrupted_at_each_rename(void **state)
{
    struct rstate *t = *state;
    issue(t, "svc", &(struct issue_opts){.lifetime = 2 * PQM_HOUR});
    assert_int_equal(chmod(issued(t, "svc", ".key.pem"), 0640), 0); /* a service's group reads it */
    char serial[64], fp[65];
    cert_id(issued(t, "svc", ".crt.pem"), serial, fp);
    char before[4096];
    snapshot(t, "", before, sizeof(before));
    /* 3 copies published in the archive, then 3 files replaced (cert, chain, key). */
    for (int point = 1; point <= 7; point++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            struct pqm_pki *pki = pqm_pki_new();
            if (pki == NULL || pqm_pki_open(pki, t->dir) != 0)
                _exit(2);
            renames = 0;
            stop_before = point <= 6 ? point : 0;
            stop_after = point == 7 ? 6 : 0;
            struct report g;
            renew(pki, &(struct renew_opts){.within = PQM_DAY}, &g);
            _exit(3); /* not reached: the renewal stops at a rename */
        }
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFEXITED(status) || WEXITSTATUS(status) < 98)
            fail_msg("point %d: the child did not stop at a rename (status %d)", point, status);
        /* Stopped where meant: the certificate is replaced by the 4th rename. */
        char mid_serial[64], mid_fp[65];
        cert_id(issued(t, "svc", ".crt.pem"), mid_serial, mid_fp);
        if ((strcmp(mid_fp, fp) != 0) != (point >= 5))
            fail_msg("point %d: the certificate is %s", point,
                     point >= 5 ? "not replaced yet" : "replaced already");
        /* The next command (check) recovers; the old set is whole at the paths. The one
         * problem check sees is the key the test made group-readable. */
        int other = 0;
        assert_int_equal(pqm_pki_check(t->pki, other_problem, &other), 1);
        assert_int_equal(other, 0);
        char now[4096], got_serial[64], got_fp[65];
        snapshot(t, "", now, sizeof(now));
        if (strcmp(now, before) != 0)
            fail_msg("point %d: the files are not the old set:\n%s\n%s", point, before, now);
        cert_id(issued(t, "svc", ".crt.pem"), got_serial, got_fp);
        assert_string_equal(got_fp, fp);
        struct stat st;
        assert_int_equal(stat(issued(t, "svc", ".key.pem"), &st), 0);
        if ((st.st_mode & 0777) != 0640)
            fail_msg("point %d: the key put back has mode %o, not the old 0640", point,
                     st.st_mode & 0777);
        struct row old = row_of(t->pki, serial);
        assert_string_equal(old.status, "valid");
        assert_string_equal(old.replaced_by, "");
        assert_string_equal(old.cert, "issued/svc.crt.pem");
        char arch[4096];
        snapshot(t, "/archive", arch, sizeof(arch));
        if (arch[0] != '\0')
            fail_msg("point %d: left in the archive: %s", point, arch);
    }
    struct report g;
    assert_int_equal(renew(t->pki, &(struct renew_opts){.within = PQM_DAY}, &g), 0);
    assert_renewed(t, "svc", serial, fp, g.v[0].new_serial, NULL);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_renews_what_is_due),        T(test_dry_run_changes_nothing),
        T(test_by_name),                   T(test_reuse_key),
        T(test_encrypted_key),             T(test_csr_certificate),
        T(test_modes_and_p12),             T(test_lifetime_beyond_ca),
        T(test_interrupted_at_each_rename),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
