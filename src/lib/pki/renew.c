/* Renewing issued certificates (pqmtls pki renew): the same identity with a new key (or
 * the same one), the new files at the old paths, the old files kept in DIR/issued/archive,
 * all of it crash-safe through the intent log that issuance uses (docs/pki.md).
 *
 * One renewal, in order:
 *   1. staging rows for the two directories it writes in (the files' and the archive);
 *   2. the new certificate, key, chain (and PKCS#12) and copies of the old files, all
 *      under temporary names, made durable;
 *   3. one transaction: the old certificate becomes 'superseded', replaced by the new
 *      serial, its paths now the archive's (with the copies' SHA-256); the new one is
 *      recorded 'pending' at the live paths (with its files' SHA-256): the intent;
 *   4. the archive copies are published (never replacing a file), then the new files
 *      replace the old ones, certificates first and the key after them;
 *   5. the new certificate becomes 'valid' and the staging rows go.
 * Interrupted anywhere, the next writer's recovery (pqm__pki_recover) puts the old files
 * back at the live paths from the archive wherever the new ones already are, removes the
 * copies and the new files, and makes the old certificate valid again with its paths: the
 * old set complete at the paths, as before the renewal. After step 5 the new set is. */
#include "pki/pki_internal.h"

#include <errno.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "pki/alg.h"
#include "pki/certbuild.h"
#include "pki/keyfile.h"
#include "pki/pemfile.h"
#include "pki/profile.h"
#include "util/fsutil.h"
#include "util/timeutil.h"

enum { F_CERT, F_KEY, F_CHAIN, F_P12, F_N };
static const char *const ext[F_N] = {".crt.pem", ".key.pem", ".chain.pem", ".p12"};
static const mode_t mode_of[F_N] = {0644, 0600, 0644, 0600};
/* The order in which the new files replace the old: the certificates, then the key. A
 * reader that loads the certificate and then the key (nginx, the gateway, the tunnel)
 * can see a mismatch only if both its reads fall between two renames; it then keeps
 * what it runs with and tries again at the next change (docs/pki.md). */
static const int replace_order[F_N] = {F_CERT, F_CHAIN, F_KEY, F_P12};

struct pqm_renew {
    struct pqm_err err;
    int64_t within, lifetime; /* seconds; lifetime 0: the profile's */
    int has_within;
    char name[PQM_NAME_MAX + 1];
    int reuse_key, dry_run;
    struct pqm_secret key_pass, p12_pass;
};

struct pqm_renew *pqm_renew_new(void)
{
    return calloc(1, sizeof(struct pqm_renew));
}

void pqm_renew_free(struct pqm_renew *r)
{
    if (r == NULL)
        return;
    pqm__secret_clear(&r->key_pass);
    pqm__secret_clear(&r->p12_pass);
    free(r);
}

const char *pqm_renew_error(const struct pqm_renew *r)
{
    return pqm__err_str(&r->err);
}

int pqm_renew_set_within(struct pqm_renew *r, int64_t seconds)
{
    if (seconds < 0 || seconds > PQM_LIFETIME_MAX)
        return pqm__err_set(&r->err, "the renewal window must be 0 to 36500d");
    r->within = seconds;
    r->has_within = 1;
    return 0;
}

int pqm_renew_set_name(struct pqm_renew *r, const char *name)
{
    if (pqm__name_valid(name, &r->err) != 0)
        return -1;
    snprintf(r->name, sizeof(r->name), "%s", name);
    return 0;
}

int pqm_renew_set_lifetime(struct pqm_renew *r, int64_t seconds)
{
    if (seconds < PQM_LIFETIME_MIN || seconds > PQM_LIFETIME_MAX)
        return pqm__err_set(&r->err, "the lifetime must be 1h to 36500d");
    r->lifetime = seconds;
    return 0;
}

void pqm_renew_reuse_key(struct pqm_renew *r)
{
    r->reuse_key = 1;
}

int pqm_renew_set_key_passphrase(struct pqm_renew *r, const char *pass, size_t len)
{
    return pqm__secret_set(&r->key_pass, pass, len, &r->err);
}

int pqm_renew_set_p12_passphrase(struct pqm_renew *r, const char *pass, size_t len)
{
    return pqm__secret_set(&r->p12_pass, pass, len, &r->err);
}

void pqm_renew_dry_run(struct pqm_renew *r)
{
    r->dry_run = 1;
}

/* --- what is due ------------------------------------------------------------------ */

/* A certificate to renew, copied out of its inventory row. */
struct due {
    char serial[64], name[PQM_NAME_MAX + 16], kind[16], fp[65], issuer_serial[64];
    char *rel[F_N]; /* paths as recorded; "" when none */
    int64_t not_after;
};

struct due_list {
    struct due *v;
    size_t n, cap;
    struct pqm_err *e;
};

static void due_list_free(struct due_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        for (int f = 0; f < F_N; f++)
            free(l->v[i].rel[f]);
    free(l->v);
}

static int add_due(const struct pqm_cert_record *r, void *arg)
{
    struct due_list *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        struct due *v = realloc(l->v, cap * sizeof(*v));
        if (v == NULL)
            return pqm__err_set(l->e, "out of memory");
        l->v = v;
        l->cap = cap;
    }
    struct due *d = &l->v[l->n];
    memset(d, 0, sizeof(*d));
    l->n++;
    snprintf(d->serial, sizeof(d->serial), "%s", r->serial);
    snprintf(d->name, sizeof(d->name), "%s", r->name);
    snprintf(d->kind, sizeof(d->kind), "%s", r->kind);
    snprintf(d->fp, sizeof(d->fp), "%s", r->fingerprint);
    snprintf(d->issuer_serial, sizeof(d->issuer_serial), "%s", r->issuer_serial);
    d->not_after = r->not_after;
    const char *paths[F_N] = {r->cert_path, r->key_path, r->chain_path, r->p12_path};
    for (int f = 0; f < F_N; f++)
        if ((d->rel[f] = strdup(paths[f])) == NULL)
            return pqm__err_set(l->e, "out of memory");
    return 0;
}

/* The certificates REQ selects: NAME, or everything due within the window. */
static int collect_due(struct pqm_pki *p, const struct pqm_renew *req, int64_t before,
                       struct due_list *l)
{
    l->e = &p->err;
    if (req->name[0] == '\0')
        return pqm__store_foreach_due(p->store, before, add_due, l, &p->err);
    int found = pqm__store_get_valid_name(p->store, req->name, add_due, l, &p->err);
    if (found == 0)
        return pqm__err_set(&p->err, "no valid certificate is named '%s' (see `pqmtls pki "
                                     "list`)",
                            req->name);
    return found < 0 ? -1 : 0;
}

/* --- one renewal -------------------------------------------------------------------- */

struct job {
    struct pqm_pki *p;
    const struct pqm_renew *req;
    const struct due *d;
    struct pqm_ca *ca;    /* the issuer: its certificate is loaded, its key unless dry */
    X509 *ca_cert;        /* the issuer's certificate, for planning */
    int64_t now, lifetime;
    char live[F_N][PATH_MAX]; /* absolute paths of the files; "" none */
    char arch[F_N][PATH_MAX]; /* where the old ones go; "" when not archived (none, or a key
                                 that stays) */
    char base[PATH_MAX];      /* the files' name without extension: NAME, or --out's */
    X509 *old;
    EVP_PKEY *key;            /* the key pair kept, the public key of a CSR's certificate,
                                 or NULL: a new one */
    int key_encrypted;
    const struct pqm_alg *alg;
    struct pqm_renewed out;
    /* made when signing */
    BIGNUM *serial;
    X509 *cert;
    struct pqm_filetx live_tx, arch_tx;
    char live_ids[4 * 66], arch_ids[4 * 66];
    struct pqm_record_buf rb;
    struct pqm_cert_record rec;
    int64_t staging[2];
};

static void job_clear(struct job *j)
{
    X509_free(j->old);
    EVP_PKEY_free(j->key);
    BN_free(j->serial);
    X509_free(j->cert);
    pqm__filetx_release(&j->live_tx);
    pqm__filetx_release(&j->arch_tx);
    pqm__record_buf_free(&j->rb);
}

/* Marks the job skipped with the reason; returns 1. */
__attribute__((format(printf, 2, 3))) static int skip(struct job *j, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->out.reason, sizeof(j->out.reason), fmt, ap);
    va_end(ap);
    j->out.result = PQM_RENEW_SKIPPED;
    j->out.new_not_after = 0;
    return 1;
}

static int plan_paths(struct job *j)
{
    struct pqm_pki *p = j->p;
    for (int f = 0; f < F_N; f++)
        if (j->d->rel[f][0] != '\0' &&
            pqm__pki_path(p, j->d->rel[f], j->live[f], sizeof(j->live[f])) != 0)
            return pqm__err_set(&p->err, "%s: path too long", j->d->rel[f]);
    char buf[PATH_MAX];
    snprintf(buf, sizeof(buf), "%s", j->live[F_CERT]);
    const char *b = basename(buf);
    size_t n = strlen(b), e = strlen(ext[F_CERT]);
    if (n > e && strcmp(b + n - e, ext[F_CERT]) == 0)
        n -= e;
    snprintf(j->base, sizeof(j->base), "%.*s", (int)n, b);
    char dir[PATH_MAX];
    int len = pqm__pki_path(p, PQM_D_ARCHIVE, dir, sizeof(dir)) == 0
                  ? snprintf(j->out.archive_prefix, sizeof(j->out.archive_prefix), "%s/%s.%s",
                             dir, j->base, j->d->serial)
                  : -1;
    if (len < 0 || (size_t)len + 16 > sizeof(j->arch[0]))
        return pqm__err_set(&p->err, "%s: path too long", j->live[F_CERT]);
    for (int f = 0; f < F_N; f++) {
        if (j->live[f][0] == '\0' || (f == F_KEY && j->req->reuse_key))
            continue;
        snprintf(j->arch[f], sizeof(j->arch[f]), "%s%s", j->out.archive_prefix, ext[f]);
        if (access(j->arch[f], F_OK) == 0)
            return skip(j, "%s already exists: the old files cannot be archived there",
                         j->arch[f]);
    }
    return 0;
}

/* The certificate on disk must be the one the inventory records: renewing copies its
 * identity, and a file changed by hand is not a certificate pqmtls vouches for. */
static int plan_old_cert(struct job *j)
{
    struct pqm_err e = {{0}};
    char fp[65];
    j->old = pqm__cert_load(j->live[F_CERT], &e);
    if (j->old == NULL)
        return skip(j, "%s", pqm__err_str(&e));
    if (pqm__cert_fingerprint(j->old, fp) != 0 || strcmp(fp, j->d->fp) != 0)
        return skip(j, "%s is not the certificate the inventory records (changed since it was "
                       "issued? see `pqmtls pki check`)",
                    j->live[F_CERT]);
    return 0;
}

/* A certificate issued for a CSR has no key file here: only its public key can stay. */
static int plan_csr_key(struct job *j)
{
    if (!j->req->reuse_key)
        return skip(j, "issued for a CSR: its private key is not here; renew it with "
                       "--reuse-key (a new certificate for the same public key) or sign a "
                       "new CSR");
    j->key = X509_get_pubkey(j->old);
    if (j->key == NULL)
        return skip(j, "%s: cannot read its public key", j->live[F_CERT]);
    return 0;
}

static int plan_key(struct job *j)
{
    const struct pqm_renew *r = j->req;
    struct pqm_err e = {{0}};
    const char *keytype = pqm__alg_name_of_key(X509_get0_pubkey(j->old));
    j->alg = pqm__alg_find(keytype);
    if (j->live[F_KEY][0] == '\0')
        return plan_csr_key(j);
    int enc = pqm__key_file_is_encrypted(j->live[F_KEY], &e);
    if (enc < 0)
        return skip(j, "%s", pqm__err_str(&e));
    j->key_encrypted = enc;
    if (enc && r->key_pass.buf == NULL)
        return skip(j, "%s is encrypted: give its passphrase (--key-passphrase-file), which "
                       "the new key gets too",
                    j->live[F_KEY]);
    if (!enc && !r->reuse_key)
        return j->alg != NULL ? 0 : skip(j, "its key type (%s) is not one pqmtls makes: "
                                            "--reuse-key keeps it", keytype);
    /* Read to keep it, or to know that the passphrase (which the service reading the key
     * has) is its: the new key is encrypted with it. */
    EVP_PKEY *key = pqm__key_load(j->live[F_KEY], enc ? r->key_pass.buf : NULL,
                                  r->key_pass.len, &e);
    if (key == NULL)
        return skip(j, "%s", pqm__err_str(&e));
    if (X509_check_private_key(j->old, key) != 1) {
        EVP_PKEY_free(key);
        return skip(j, "%s does not match %s", j->live[F_KEY], j->live[F_CERT]);
    }
    if (r->reuse_key)
        j->key = key;
    else
        EVP_PKEY_free(key);
    return j->key != NULL || j->alg != NULL
               ? 0
               : skip(j, "its key type (%s) is not one pqmtls makes: --reuse-key keeps it",
                      keytype);
}

static int plan_rest(struct job *j)
{
    const struct pqm_renew *r = j->req;
    struct pqm_err e = {{0}};
    if (j->live[F_P12][0] != '\0' && r->p12_pass.buf == NULL && r->key_pass.buf == NULL)
        return skip(j, "%s needs a passphrase: --p12-passphrase-file (or --key-passphrase-file)",
                    j->live[F_P12]);
    char serial[64] = "";
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(j->ca_cert), NULL);
    int ok = bn != NULL && pqm__serial_hex(bn, serial, sizeof(serial)) == 0;
    BN_free(bn);
    if (!ok || strcmp(serial, j->d->issuer_serial) != 0)
        return skip(j, "issued by a CA other than this PKI's %s", j->ca->label);
    j->out.new_not_after = j->now + j->lifetime;
    if (pqm__ca_holds(j->ca_cert, j->ca->label, j->out.new_not_after, j->lifetime, &e) != 0)
        return skip(j, "%s", pqm__err_str(&e));
    return 0;
}

/* Everything that decides whether the certificate can be renewed as asked: 0 when it
 * can, 1 when it is skipped (the reason in j->out), -1 on an error of the command. */
static int plan(struct job *j)
{
    struct pqm_renewed *o = &j->out;
    snprintf(o->name, sizeof(o->name), "%s", j->d->name);
    snprintf(o->old_serial, sizeof(o->old_serial), "%s", j->d->serial);
    o->old_not_after = j->d->not_after;
    o->key_reused = j->req->reuse_key;
    o->result = j->req->dry_run ? PQM_RENEW_PLANNED : PQM_RENEW_DONE;
    if (strcmp(j->d->kind, "server") != 0 && strcmp(j->d->kind, "client") != 0)
        return skip(j, "a %s certificate: only server and client certificates are renewed",
                    j->d->kind);
    int rc = plan_paths(j);
    char *dst[F_N] = {o->cert_path, o->key_path, o->chain_path, o->p12_path};
    for (int f = 0; f < F_N; f++)
        snprintf(dst[f], sizeof(o->cert_path), "%s", j->live[f]);
    if (rc == 0)
        rc = plan_old_cert(j);
    if (rc == 0)
        rc = plan_key(j);
    if (rc == 0)
        rc = plan_rest(j);
    return rc;
}

/* --- signing and writing -------------------------------------------------------------- */

static int build_cert(struct job *j, EVP_PKEY *key)
{
    struct pqm_err *e = &j->p->err;
    GENERAL_NAMES *sans = X509_get_ext_d2i(j->old, NID_subject_alt_name, NULL, NULL);
    if (pqm__pki_new_serial(j->p, &j->serial) != 0)
        goto cleanup;
    /* The same CA signed the old certificate (plan_rest), so its SANs are within the
     * CA's name constraints as they were. */
    /* The PKI's revocation pointers as they are now (pki configure may have changed them). */
    char crl_url[PQM_URL_MAX + 32];
    if (pqm__pki_crl_url_for(j->p->crl_url, j->ca->crt, crl_url, sizeof(crl_url)) != 0) {
        pqm__err_set(e, "the PKI's CRL URL is too long");
        goto cleanup;
    }
    struct pqm_cert_spec spec = {
        .kind = strcmp(j->d->kind, "server") == 0 ? PQM_KIND_SERVER : PQM_KIND_CLIENT,
        .subject = X509_get_subject_name(j->old),
        .subject_key = key,
        .issuer = j->ca->cert,
        .issuer_key = j->ca->pkey,
        .serial = j->serial,
        .not_before = j->now - PQM_BACKDATE_SECONDS,
        .not_after = j->out.new_not_after,
        .path_len = -1,
        .sans = sans,
        .crl_url = crl_url[0] != '\0' ? crl_url : NULL,
        .ocsp_url = j->p->ocsp_url[0] != '\0' ? j->p->ocsp_url : NULL,
        /* Only PKCS#12 (which matches the key to the certificate) reads the key back. */
        .pubkey_only = j->live[F_P12][0] == '\0',
    };
    j->cert = pqm__cert_build(&spec, e);
cleanup:
    GENERAL_NAMES_free(sans);
    return j->cert != NULL ? 0 : -1;
}

/* The new files under temporary names beside the old, each with the old one's owner
 * and permissions, staged in the order they will replace the old. */
static int stage_new(struct job *j, EVP_PKEY *key)
{
    struct pqm_err *e = &j->p->err;
    const struct pqm_renew *r = j->req;
    X509 *pair[2] = {j->cert, j->ca->cert};
    char *pem[F_N] = {NULL, NULL, NULL, NULL};
    size_t len[F_N] = {0, 0, 0, 0};
    unsigned char *p12 = NULL;
    int p12_len = 0, rc = -1;
    GUARD(pqm__certs_to_pem(pair, 1, &pem[F_CERT], &len[F_CERT], e));
    GUARD(pqm__certs_to_pem(pair, 2, &pem[F_CHAIN], &len[F_CHAIN], e));
    if (j->live[F_KEY][0] != '\0' && !r->reuse_key)
        GUARD(pqm__key_to_pem(key, j->key_encrypted ? r->key_pass.buf : NULL, r->key_pass.len,
                              &pem[F_KEY], &len[F_KEY], e));
    if (j->live[F_P12][0] != '\0') {
        const struct pqm_secret *pass = r->p12_pass.buf != NULL ? &r->p12_pass : &r->key_pass;
        GUARD(pqm__pki_load_root(j->p));
        GUARD(pqm__p12_der(pass->buf, j->d->name, key, j->cert, j->ca->cert, j->p->root, &p12,
                           &p12_len, e));
    }
    for (int i = 0; i < F_N; i++) {
        int f = replace_order[i];
        const void *data = f == F_P12 ? (const void *)p12 : (const void *)pem[f];
        size_t n = f == F_P12 ? (size_t)p12_len : len[f];
        if (data != NULL && pqm__filetx_stage_like(&j->live_tx, j->live[f], data, n, j->live[f],
                                                   mode_of[f], e) != 0)
            goto cleanup;
    }
    rc = 0;
cleanup:
    if (pem[F_KEY] != NULL)
        OPENSSL_cleanse(pem[F_KEY], len[F_KEY]);
    for (int f = 0; f < F_N; f++)
        free(pem[f]);
    OPENSSL_free(p12);
    return rc;
}

/* Copies of the old files under temporary names in the archive, as they are now; the
 * keys among them readable by their owner alone, whatever a service needed of the live
 * ones: nothing reads the archive but an operator. */
static int stage_archive(struct job *j)
{
    struct pqm_err *e = &j->p->err;
    for (int f = 0; f < F_N; f++) {
        if (j->arch[f][0] == '\0')
            continue;
        unsigned char *data = NULL;
        size_t len = 0;
        if (pqm__read_file(j->live[f], PQM_PEMFILE_MAX, &data, &len, e) != 0)
            return -1;
        int rc = pqm__filetx_stage(&j->arch_tx, j->arch[f], data, len, mode_of[f], e);
        OPENSSL_cleanse(data, len);
        free(data);
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* The new certificate's inventory row (pending) and the identities of both sets. */
static int describe(struct job *j, EVP_PKEY *key)
{
    char fp[65];
    if (pqm__cert_fingerprint(j->cert, fp) != 0 ||
        pqm__record_from_cert(j->cert, key, j->ca->serial, fp, &j->rec, &j->rb, &j->p->err) != 0)
        return pqm__err_ossl(&j->p->err, "cannot read back the new certificate");
    char *live[F_N], *arch[F_N];
    for (int f = 0; f < F_N; f++) {
        live[f] = j->live[f];
        arch[f] = j->arch[f];
    }
    pqm__filetx_identities(&j->live_tx, live, F_N, j->live_ids, sizeof(j->live_ids));
    pqm__filetx_identities(&j->arch_tx, arch, F_N, j->arch_ids, sizeof(j->arch_ids));
    struct pqm_cert_record *rec = &j->rec;
    rec->name = j->d->name;
    rec->kind = j->d->kind;
    rec->profile = j->d->kind;
    rec->status = "pending";
    rec->cert_path = j->d->rel[F_CERT];
    rec->key_path = j->d->rel[F_KEY];
    rec->chain_path = j->d->rel[F_CHAIN];
    rec->p12_path = j->d->rel[F_P12];
    rec->created_at = j->now;
    snprintf(j->out.new_serial, sizeof(j->out.new_serial), "%s", j->rb.serial);
    return 0;
}

/* Builds, signs, and stages everything; nothing is visible yet. */
static int sign(struct job *j)
{
    EVP_PKEY *own = NULL;
    EVP_PKEY *key = j->key;
    int rc = -1;
    if (key == NULL && (key = own = pqm__alg_keygen(j->alg, &j->p->err)) == NULL)
        return -1;
    if (build_cert(j, key) == 0 && stage_new(j, key) == 0 && stage_archive(j) == 0 &&
        describe(j, key) == 0)
        rc = 0;
    EVP_PKEY_free(own);
    return rc;
}

/* Paths of the archive as recorded, relative to the PKI directory; the kept key stays. */
static void archived_rel(const struct job *j, const char *rel[F_N])
{
    size_t n = strlen(j->p->dir);
    for (int f = 0; f < F_N; f++) {
        rel[f] = j->d->rel[f];
        if (j->arch[f][0] != '\0')
            rel[f] = j->arch[f] + n + 1;
    }
}

/* Step 3: the intent, in one transaction. */
static int record_intent(struct job *j)
{
    struct pqm_pki *p = j->p;
    const char *rel[F_N];
    archived_rel(j, rel);
    if (pqm__store_begin(p->store, &p->err) != 0)
        return -1;
    if (pqm__store_set_replaced_by(p->store, j->d->serial, j->out.new_serial, &p->err) != 0 ||
        pqm__store_set_files(p->store, j->d->serial, rel, j->arch_ids, &p->err) != 0 ||
        pqm__store_insert_staged(p->store, &j->rec, j->live_ids, &p->err) != 0) {
        pqm__store_rollback(p->store);
        return -1;
    }
    return pqm__store_commit(p->store, &p->err);
}

/* Step 1: where temporary files will be, so that recovery can sweep them. */
static int record_staging(struct job *j)
{
    struct pqm_pki *p = j->p;
    char dir[PATH_MAX], prefix[PATH_MAX], archive[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", j->live[F_CERT]);
    snprintf(prefix, sizeof(prefix), "%s.", j->base);
    if (pqm__pki_path(p, PQM_D_ARCHIVE, archive, sizeof(archive)) != 0)
        return pqm__err_set(&p->err, "path too long");
    if (pqm__store_begin(p->store, &p->err) != 0)
        return -1;
    if (pqm__store_staging_add(p->store, dirname(dir), prefix, &j->staging[0], &p->err) != 0 ||
        pqm__store_staging_add(p->store, archive, prefix, &j->staging[1], &p->err) != 0) {
        pqm__store_rollback(p->store);
        return -1;
    }
    return pqm__store_commit(p->store, &p->err);
}

/* Step 5: the new certificate is valid, and nothing is staged any more. */
static int record_done(struct job *j)
{
    struct pqm_pki *p = j->p;
    if (pqm__store_begin(p->store, &p->err) != 0)
        return -1;
    if (pqm__store_mark(p->store, j->out.new_serial, "pending", "valid", &p->err) != 0 ||
        pqm__store_staging_del(p->store, j->staging[0], &p->err) != 0 ||
        pqm__store_staging_del(p->store, j->staging[1], &p->err) != 0) {
        pqm__store_rollback(p->store);
        return -1;
    }
    return pqm__store_commit(p->store, &p->err);
}

/* DIR/issued/archive, made durable before anything is staged in it. Mode 0700: it keeps
 * old private keys. */
static int make_archive_dir(struct pqm_pki *p)
{
    char dir[PATH_MAX], issued[PATH_MAX];
    if (pqm__pki_path(p, PQM_D_ARCHIVE, dir, sizeof(dir)) != 0 ||
        pqm__pki_path(p, PQM_D_ISSUED, issued, sizeof(issued)) != 0)
        return pqm__err_set(&p->err, "path too long");
    if (mkdir(dir, 0700) != 0) {
        struct stat st;
        if (errno != EEXIST || stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
            return pqm__err_set(&p->err, "%s: cannot create: %s", dir,
                                errno == EEXIST ? "not a directory" : strerror(errno));
        return 0;
    }
    return pqm__fsync_dir(issued, &p->err);
}

/* After a failure: roll back what this renewal left, keeping its error message. */
static void abandon(struct pqm_pki *p)
{
    struct pqm_err saved = p->err;
    pqm__pki_recover(p);
    p->err = saved;
}

static int renew_one(struct job *j)
{
    struct pqm_pki *p = j->p;
    if (pqm__pki_load_ca(p, j->ca) != 0 || make_archive_dir(p) != 0 || record_staging(j) != 0)
        return -1;
    if (sign(j) != 0 || pqm__filetx_sync(&j->live_tx, &p->err) != 0 ||
        pqm__filetx_sync(&j->arch_tx, &p->err) != 0 || record_intent(j) != 0 ||
        pqm__filetx_publish(&j->arch_tx, &p->err) != 0 ||
        pqm__filetx_replace(&j->live_tx, &p->err) != 0 || record_done(j) != 0) {
        /* Recovery first: it finds the temporary files by the staging rows. */
        abandon(p);
        return -1;
    }
    return 0;
}

/* --- the command ---------------------------------------------------------------------- */

struct run {
    struct pqm_pki *p;
    const struct pqm_renew *req;
    int64_t now, lifetime;
    X509 *plan_ca[2]; /* dry run: the CA certificates, read without their keys */
    int skipped;
};

static int ca_cert_for_plan(struct run *r, struct pqm_ca *ca, X509 **out)
{
    struct pqm_pki *p = r->p;
    int i = ca == &p->server_ca ? 0 : 1;
    if (!r->req->dry_run) {
        if (pqm__pki_load_ca(p, ca) != 0)
            return -1;
        *out = ca->cert;
        return 0;
    }
    if (r->plan_ca[i] == NULL) {
        char path[PATH_MAX];
        if (pqm__pki_path(p, ca->crt, path, sizeof(path)) != 0)
            return pqm__err_set(&p->err, "path too long");
        if ((r->plan_ca[i] = pqm__cert_load(path, &p->err)) == NULL)
            return -1;
    }
    *out = r->plan_ca[i];
    return 0;
}

static int process(struct run *r, const struct due *d, pqm_renewed_cb cb, void *arg)
{
    struct job j;
    memset(&j, 0, sizeof(j));
    j.p = r->p;
    j.req = r->req;
    j.d = d;
    j.now = r->now;
    j.lifetime = r->lifetime;
    j.ca = strcmp(d->kind, "server") == 0 ? &r->p->server_ca : &r->p->client_ca;
    pqm__filetx_init(&j.live_tx);
    pqm__filetx_init(&j.arch_tx);
    int rc = ca_cert_for_plan(r, j.ca, &j.ca_cert);
    if (rc == 0)
        rc = plan(&j);
    if (rc == 0 && !r->req->dry_run)
        rc = renew_one(&j);
    if (rc == 1)
        r->skipped++;
    if (rc >= 0 && cb != NULL)
        cb(&j.out, arg);
    job_clear(&j);
    return rc < 0 ? -1 : 0;
}

/* The lifetime of the new certificates and the end of the window: REQ's, or the
 * profile's. */
static int window(struct run *r, int64_t *before)
{
    struct pqm_lifetimes lt;
    if (pqm__profile_load(r->p->store, &lt, &r->p->err) != 0)
        return -1;
    r->lifetime = r->req->lifetime != 0 ? r->req->lifetime : lt.leaf_lifetime;
    r->now = (int64_t)time(NULL);
    *before = r->now + (r->req->has_within ? r->req->within : lt.renew_within);
    return 0;
}

int pqm_pki_renew(struct pqm_pki *p, const struct pqm_renew *req, pqm_renewed_cb cb, void *arg)
{
    struct run r = {.p = p, .req = req};
    struct due_list l = {0};
    int rc = -1;
    pqm__err_clear(&p->err);
    if (!req->dry_run && pqm__pki_lock(p) != 0)
        return -1;
    int64_t before = 0;
    GUARD(window(&r, &before));
    GUARD(collect_due(p, req, before, &l));
    for (size_t i = 0; i < l.n; i++)
        GUARD(process(&r, &l.v[i], cb, arg));
    rc = r.skipped > 0 ? 1 : 0;
cleanup:
    due_list_free(&l);
    X509_free(r.plan_ca[0]);
    X509_free(r.plan_ca[1]);
    pqm__pki_unlock(p);
    return rc;
}

/* --- recovery ------------------------------------------------------------------------- */

struct undo {
    struct pqm_pki *p;
    const struct pqm_cert_record *r; /* the interrupted renewal */
    const char *staged;              /* its files' identities */
};

/* Puts OLD_ID's content back at LIVE from the archived copy ARCH, unless LIVE holds
 * something else than the renewal's file NEW_ID (the old file still, or someone's). The
 * file put back takes the permissions and owner of the renewal's, which took the old
 * file's. */
static int restore(struct pqm_pki *p, const char *live, const char *arch, const char *old_id,
                   const char *new_id)
{
    struct pqm_err *e = &p->err;
    char have[65];
    int there = pqm__file_identity(live, have, e);
    if (there < 0)
        return -1;
    if (there && (strcmp(have, old_id) == 0 || strcmp(have, new_id) != 0))
        return 0;
    unsigned char *data = NULL;
    size_t len = 0;
    struct stat st;
    if (stat(arch, &st) != 0 || pqm__file_identity(arch, have, e) != 1 ||
        strcmp(have, old_id) != 0)
        return pqm__err_set(e, "%s: cannot put the renewed file back: its archived copy %s is "
                               "missing or changed",
                            live, arch);
    if (pqm__read_file(arch, (size_t)st.st_size + 1, &data, &len, e) != 0)
        return -1;
    struct pqm_filetx tx;
    pqm__filetx_init(&tx);
    int rc = pqm__filetx_stage_like(&tx, live, data, len, there ? live : arch,
                                    st.st_mode & 07777, e) == 0 &&
                     pqm__filetx_sync(&tx, e) == 0 && pqm__filetx_replace(&tx, e) == 0
                 ? 0
                 : -1;
    pqm__filetx_release(&tx);
    OPENSSL_cleanse(data, len);
    free(data);
    return rc;
}

static int undo_files(const struct pqm_cert_record *old, const char *old_staged, void *arg)
{
    struct undo *u = arg;
    struct pqm_pki *p = u->p;
    const char *live_rel[F_N] = {u->r->cert_path, u->r->key_path, u->r->chain_path,
                                 u->r->p12_path};
    const char *arch_rel[F_N] = {old->cert_path, old->key_path, old->chain_path, old->p12_path};
    char live[F_N][PATH_MAX], arch[F_N][PATH_MAX], old_id[F_N][80], new_id[80];
    int archived[F_N] = {0};
    for (int f = 0; f < F_N; f++) {
        const char *oid = pqm__identity_at(old_staged, f, old_id[f], sizeof(old_id[f]));
        const char *nid = pqm__identity_at(u->staged, f, new_id, sizeof(new_id));
        archived[f] = live_rel[f][0] != '\0' && arch_rel[f][0] != '\0' &&
                      strcmp(live_rel[f], arch_rel[f]) != 0 && oid != NULL &&
                      strcmp(oid, "-") != 0 && nid != NULL;
        if (!archived[f])
            continue;
        if (pqm__pki_path(p, live_rel[f], live[f], sizeof(live[f])) != 0 ||
            pqm__pki_path(p, arch_rel[f], arch[f], sizeof(arch[f])) != 0)
            return pqm__err_set(&p->err, "path too long");
        if (restore(p, live[f], arch[f], oid, nid) != 0)
            return -1;
    }
    /* The files are back (and durable): their copies go. */
    for (int f = 0; f < F_N; f++) {
        if (!archived[f])
            continue;
        if (pqm__unlink_if_same(arch[f], old_id[f], &p->err) < 0)
            return -1;
        char dir[PATH_MAX];
        snprintf(dir, sizeof(dir), "%s", arch[f]);
        if (pqm__fsync_dir(dirname(dir), &p->err) != 0)
            return -1;
    }
    return 0;
}

int pqm__renew_undo_files(struct pqm_pki *p, const struct pqm_cert_record *r, const char *staged)
{
    struct undo u = {p, r, staged};
    return pqm__store_renewal_of(p->store, r->serial, undo_files, &u, &p->err) < 0 ? -1 : 0;
}
