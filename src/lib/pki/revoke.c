/* Revocation: marking certificates revoked in the inventory and publishing CRLs. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "pki/certbuild.h"
#include "pki/crlbuild.h"
#include "pki/pki_internal.h"
#include "util/fsutil.h"
#include "util/timeutil.h"

/* The inventory's form of a serial: upper-case hex of its value, as pqm__serial_hex
 * writes it. Accepts any case, colons, and leading zeros. */
static int canonical_serial(const char *in, char *out, size_t outlen, struct pqm_err *e)
{
    char hex[128];
    size_t n = 0;
    for (const char *s = in; *s != '\0'; s++) {
        if (*s == ':')
            continue;
        if (!isxdigit((unsigned char)*s) || n + 1 >= sizeof(hex))
            return pqm__err_set(e, "'%s' is not a serial number (hexadecimal, as `pqmtls pki "
                                   "list` shows it)",
                                in);
        hex[n++] = *s;
    }
    hex[n] = '\0';
    if (n == 0)
        return pqm__err_set(e, "empty serial number");
    BIGNUM *bn = NULL;
    int ok = BN_hex2bn(&bn, hex) == (int)n && pqm__serial_hex(bn, out, outlen) == 0;
    BN_free(bn);
    return ok ? 0 : pqm__err_set(e, "'%s' is not a serial number", in);
}

struct row_copy {
    char status[16], kind[16], name[256];
};

static int copy_row(const struct pqm_cert_record *r, void *arg)
{
    struct row_copy *c = arg;
    snprintf(c->status, sizeof(c->status), "%s", r->status);
    snprintf(c->kind, sizeof(c->kind), "%s", r->kind);
    snprintf(c->name, sizeof(c->name), "%s", r->name);
    return 0;
}

int pqm_pki_find(struct pqm_pki *p, const char *serial, pqm_record_cb cb, void *arg)
{
    char canon[64];
    if (canonical_serial(serial, canon, sizeof(canon), &p->err) != 0)
        return -1;
    return pqm__store_get(p->store, canon, cb, arg, &p->err);
}

/* Why SERIAL cannot be revoked; -1 always. */
static int refusal(struct pqm_pki *p, const char *serial)
{
    struct row_copy row = {0};
    int found = pqm__store_get(p->store, serial, copy_row, &row, &p->err);
    if (found < 0)
        return -1;
    if (found == 0)
        return pqm__err_set(&p->err, "serial %s is not in this PKI's inventory (see `pqmtls pki "
                                     "list`)",
                            serial);
    if (strcmp(row.status, "revoked") == 0)
        return pqm__err_set(&p->err, "serial %s ('%s') is already revoked", serial, row.name);
    return pqm__err_set(&p->err, "serial %s ('%s') is %s, not a certificate in use", serial,
                        row.name, row.status);
}

int pqm_pki_revoke(struct pqm_pki *p, const char *serial, const char *reason)
{
    struct pqm_err *e = &p->err;
    char canon[64];
    struct row_copy row = {0};
    if (canonical_serial(serial, canon, sizeof(canon), e) != 0)
        return -1;
    if (reason == NULL)
        reason = "unspecified";
    if (pqm__crl_reason_code(reason) < 0)
        return pqm__err_set(e, "unknown revocation reason '%s' (one of: %s)", reason,
                            pqm__crl_reason_names());
    if (pqm__pki_lock(p) != 0)
        return -1;
    int found = pqm__store_get(p->store, canon, copy_row, &row, e);
    if (found < 0)
        goto fail;
    if (found == 1 && strcmp(row.kind, "root") == 0) {
        pqm__err_set(e, "serial %s is the root CA: a root is not revoked by a CRL; replace "
                        "the PKI and distribute the new root instead",
                     canon);
        goto fail;
    }
    if (pqm__store_begin(p->store, e) != 0)
        goto fail;
    int rc = pqm__store_revoke(p->store, canon, reason, (int64_t)time(NULL), e);
    if (rc == 0 && pqm__store_commit(p->store, e) == 0) {
        pqm__pki_unlock(p);
        return 0;
    }
    pqm__store_rollback(p->store);
    if (rc == 1)
        refusal(p, canon);
fail:
    pqm__pki_unlock(p);
    return -1;
}

/* --- CRLs ------------------------------------------------------------------------ */

struct crl_ctx {
    struct pqm_crl_builder b;
    size_t entries;
};

static int add_revoked(const struct pqm_cert_record *r, void *arg)
{
    struct crl_ctx *c = arg;
    if (strcmp(r->status, "revoked") != 0)
        return 0;
    int code = pqm__crl_reason_code(r->revocation_reason);
    if (pqm__crl_add(&c->b, r->serial, r->revoked_at, code > 0 ? code : 0) != 0)
        return -1;
    c->entries++;
    return 0;
}

static int next_crl_number(struct pqm_pki *p, uint64_t *out)
{
    char v[32] = "0";
    struct pqm_err *e = &p->err;
    if (pqm__store_begin(p->store, e) != 0)
        return -1;
    if (pqm__store_meta_get(p->store, "crl_number", v, sizeof(v), e) < 0)
        goto fail;
    char *end = NULL;
    unsigned long long n = strtoull(v, &end, 10);
    if (end == v || *end != '\0' || n >= UINT64_MAX / 2) {
        pqm__err_set(e, "inventory: the CRL number '%s' is damaged", v);
        goto fail;
    }
    snprintf(v, sizeof(v), "%llu", n + 1);
    if (pqm__store_meta_set(p->store, "crl_number", v, e) != 0 ||
        pqm__store_commit(p->store, e) != 0)
        goto fail;
    *out = n + 1;
    return 0;
fail:
    pqm__store_rollback(p->store);
    return -1;
}

struct crl_out {
    char *pem;
    size_t pem_len;
    unsigned char *der;
    int der_len;
};

static void crl_out_free(struct crl_out *o)
{
    OPENSSL_free(o->pem);
    OPENSSL_free(o->der);
    memset(o, 0, sizeof(*o));
}

static int encode_crl(X509_CRL *crl, struct crl_out *o, struct pqm_err *e)
{
    o->der_len = i2d_X509_CRL(crl, &o->der);
    if (o->der_len <= 0)
        return pqm__err_ossl(e, "cannot encode the CRL");
    return pqm__pem_encode("X509 CRL", o->der, (size_t)o->der_len, &o->pem, &o->pem_len, e);
}

static int write_in_crl_dir(struct pqm_pki *p, const char *file, const void *data, size_t len)
{
    char dir[PATH_MAX], path[PATH_MAX];
    if (pqm__pki_path(p, PQM_D_CRL, dir, sizeof(dir)) != 0 ||
        pqm__path_join(path, sizeof(path), dir, file) != 0)
        return pqm__err_set(&p->err, "%s: path too long", p->dir);
    return pqm__write_file_atomic(path, data, len, 0644, &p->err);
}

/* Signs the CRL of CA and writes BASE.crl.pem and BASE.crl (DER, for HTTP distribution). */
static int one_crl(struct pqm_pki *p, struct pqm_ca *ca, const char *base, uint64_t number,
                   int64_t now, int64_t validity, struct crl_out *o, struct pqm_crl_info *info)
{
    struct pqm_err *e = &p->err;
    if (pqm__pki_load_ca(p, ca) != 0)
        return -1;
    struct pqm_crl_spec spec = {ca->cert, ca->pkey, now - PQM_BACKDATE_SECONDS, now + validity,
                                number};
    struct crl_ctx c = {{0}, 0};
    if (pqm__crl_begin(&c.b, &spec, e) != 0)
        return -1;
    if (pqm__store_foreach_issued_by(p->store, ca->serial, add_revoked, &c, e) != 0) {
        pqm__crl_abandon(&c.b);
        return -1;
    }
    X509_CRL *crl = pqm__crl_finish(&c.b, &spec);
    if (crl == NULL)
        return -1;
    char name[128];
    int rc = encode_crl(crl, o, e);
    X509_CRL_free(crl);
    snprintf(name, sizeof(name), "%s.crl.pem", base);
    if (rc == 0)
        rc = write_in_crl_dir(p, name, o->pem, o->pem_len);
    snprintf(name, sizeof(name), "%s.crl", base);
    if (rc == 0)
        rc = write_in_crl_dir(p, name, o->der, (size_t)o->der_len);
    if (rc != 0)
        return -1;
    *info = (struct pqm_crl_info){.ca = ca->label, .number = number, .entries = c.entries,
                                  .this_update = now, .next_update = now + validity,
                                  .present = 1, .signature_ok = 1};
    snprintf(info->ca_serial, sizeof(info->ca_serial), "%s", ca->serial);
    snprintf(info->path, sizeof(info->path), "%s/%s/%s.crl.pem", p->dir, PQM_D_CRL, base);
    return 0;
}

/* The CRLs a verifier of one side needs: the intermediate's and the root's, concatenated
 * (nginx's ssl_crl takes one file holding the CRL of every CA of the chain). */
static int write_chain(struct pqm_pki *p, const char *file, const struct crl_out *a,
                       const struct crl_out *root)
{
    size_t len = a->pem_len + root->pem_len;
    char *buf = malloc(len);
    if (buf == NULL)
        return pqm__err_set(&p->err, "out of memory");
    memcpy(buf, a->pem, a->pem_len);
    memcpy(buf + a->pem_len, root->pem, root->pem_len);
    int rc = write_in_crl_dir(p, file, buf, len);
    free(buf);
    return rc;
}

static int make_crl_dir(struct pqm_pki *p)
{
    char dir[PATH_MAX];
    if (pqm__pki_path(p, PQM_D_CRL, dir, sizeof(dir)) != 0)
        return pqm__err_set(&p->err, "%s: path too long", p->dir);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return pqm__err_set(&p->err, "%s: cannot create: %s", dir, strerror(errno));
    return pqm__fsync_dir(p->dir, &p->err);
}

static const struct crl_file {
    const char *label, *crt, *base;
} crl_files[] = {
    {"root CA", PQM_F_ROOT_CRT, "root-ca"},
    {"server intermediate CA", PQM_F_SERVER_CRT, "server-int-ca"},
    {"client intermediate CA", PQM_F_CLIENT_CRT, "client-int-ca"},
};

struct unpublished_ctx {
    X509_CRL *crl; /* NULL: every revocation is unpublished */
    size_t n;
};

static int count_unpublished(const struct pqm_cert_record *r, void *arg)
{
    struct unpublished_ctx *u = arg;
    if (strcmp(r->status, "revoked") != 0)
        return 0;
    BIGNUM *bn = NULL;
    ASN1_INTEGER *serial = NULL;
    X509_REVOKED *rev = NULL;
    int listed = u->crl != NULL && BN_hex2bn(&bn, r->serial) > 0 &&
                 (serial = BN_to_ASN1_INTEGER(bn, NULL)) != NULL &&
                 X509_CRL_get0_by_serial(u->crl, &rev, serial) == 1;
    ASN1_INTEGER_free(serial);
    BN_free(bn);
    if (!listed)
        u->n++;
    return 0;
}

/* What the CRL file of one CA says; INFO->present stays 0 when it cannot be read. */
static int read_crl_info(struct pqm_pki *p, const struct crl_file *f, struct pqm_crl_info *info)
{
    struct pqm_err *e = &p->err;
    char path[PATH_MAX];
    *info = (struct pqm_crl_info){.ca = f->label};
    if (pqm__pki_path(p, f->crt, path, sizeof(path)) != 0)
        return pqm__err_set(e, "%s: path too long", p->dir);
    X509 *ca = pqm__cert_load(path, e);
    if (ca == NULL)
        return -1;
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(ca), NULL);
    int ok = bn != NULL && pqm__serial_hex(bn, info->ca_serial, sizeof(info->ca_serial)) == 0;
    BN_free(bn);
    snprintf(info->path, sizeof(info->path), "%s/%s/%s.crl.pem", p->dir, PQM_D_CRL, f->base);
    struct stat st;
    int dir = ok && stat(info->path, &st) == 0 && S_ISDIR(st.st_mode);
    errno = 0;
    BIO *b = ok && !dir ? BIO_new_file(info->path, "r") : NULL;
    if (dir)
        snprintf(info->unreadable, sizeof(info->unreadable), "it is a directory");
    else if (ok && b == NULL && errno != ENOENT)
        snprintf(info->unreadable, sizeof(info->unreadable), "%s",
                 errno != 0 ? strerror(errno) : "cannot open it");
    X509_CRL *crl = b != NULL ? PEM_read_bio_X509_CRL(b, NULL, NULL, NULL) : NULL;
    const char *why = ERR_peek_last_error() != 0 ? ERR_reason_error_string(ERR_peek_last_error())
                                                 : NULL;
    if (b != NULL && crl == NULL)
        snprintf(info->unreadable, sizeof(info->unreadable), "no PEM CRL in it (%s)",
                 why != NULL ? why : "empty");
    BIO_free(b);
    ERR_clear_error();
    if (crl != NULL) {
        ASN1_INTEGER *num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
        uint64_t n = 0;
        if (num != NULL && ASN1_INTEGER_get_uint64(&n, num) == 1)
            info->number = n;
        ASN1_INTEGER_free(num);
        STACK_OF(X509_REVOKED) *revs = X509_CRL_get_REVOKED(crl);
        info->entries = revs != NULL ? (size_t)sk_X509_REVOKED_num(revs) : 0;
        const ASN1_TIME *next = X509_CRL_get0_nextUpdate(crl);
        info->present = pqm__asn1_time_to_epoch(X509_CRL_get0_lastUpdate(crl),
                                                &info->this_update) == 0 &&
                        (next == NULL || pqm__asn1_time_to_epoch(next, &info->next_update) == 0);
        if (!info->present)
            snprintf(info->unreadable, sizeof(info->unreadable), "its update times cannot be read");
        info->signature_ok = X509_CRL_verify(crl, X509_get0_pubkey(ca)) == 1;
        ERR_clear_error();
    }
    struct unpublished_ctx u = {info->present ? crl : NULL, 0};
    int rc = ok ? pqm__store_foreach_issued_by(p->store, info->ca_serial, count_unpublished, &u, e)
                : pqm__err_set(e, "%s: cannot read the serial number", path);
    info->unpublished = u.n;
    X509_CRL_free(crl);
    X509_free(ca);
    return rc;
}

int pqm_pki_crl_status(struct pqm_pki *p, pqm_crl_cb cb, void *arg)
{
    for (size_t i = 0; i < sizeof(crl_files) / sizeof(crl_files[0]); i++) {
        struct pqm_crl_info info;
        if (read_crl_info(p, &crl_files[i], &info) != 0)
            return -1;
        if (cb(&info, arg) != 0)
            return -1;
    }
    return 0;
}

int pqm_pki_gen_crls(struct pqm_pki *p, int64_t validity_seconds, pqm_crl_cb cb, void *arg)
{
    struct pqm_err *e = &p->err;
    if (validity_seconds < 60 || validity_seconds > 366LL * 86400)
        return pqm__err_set(e, "CRL validity %lld s is outside 1 minute .. 366 days",
                            (long long)validity_seconds);
    struct pqm_ca *cas[] = {&p->root_ca, &p->server_ca, &p->client_ca};
    struct crl_out out[3] = {{0}};
    struct pqm_crl_info info[3];
    uint64_t number = 0;
    int rc = -1;
    if (pqm__pki_lock(p) != 0)
        return -1;
    int64_t now = (int64_t)time(NULL);
    GUARD(make_crl_dir(p));
    GUARD(next_crl_number(p, &number));
    for (int i = 0; i < 3; i++)
        GUARD(one_crl(p, cas[i], crl_files[i].base, number, now, validity_seconds, &out[i],
                      &info[i]));
    GUARD(write_chain(p, "client-ca-chain.crl.pem", &out[2], &out[0]));
    GUARD(write_chain(p, "server-ca-chain.crl.pem", &out[1], &out[0]));
    rc = 0;
    /* The CRLs are written: a callback that fails (its report could not be made) still
     * makes the call fail, so that the caller does not say all went well. */
    for (int i = 0; i < 3 && cb != NULL; i++)
        if (cb(&info[i], arg) != 0) {
            rc = pqm__err_set(e, "the CRLs are written, but reporting them failed");
            break;
        }
cleanup:
    for (int i = 0; i < 3; i++)
        crl_out_free(&out[i]);
    pqm__pki_unlock(p);
    return rc;
}
