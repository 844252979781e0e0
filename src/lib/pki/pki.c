/* A PKI directory: creating it whole, opening it, its lock, its recovery, its check. */
#include "pki/pki_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "pki/alg.h"
#include "pki/certbuild.h"
#include "pki/keyfile.h"
#include "pki/names.h"
#include "pki/profile.h"
#include "util/fsutil.h"
#include "util/timeutil.h"

#define PQM_MAX_DAYS 36500
#define PQM_MAX_SUBTREES 64

const char *pqm_version(void)
{
    return PQMTLS_VERSION;
}

struct pqm_pki_config {
    struct pqm_err err;
    const struct pqm_alg *alg, *root_alg;
    char org[PQM_NAME_MAX + 1];
    char root_cn[PQM_NAME_MAX + 1], server_ca_cn[PQM_NAME_MAX + 1],
        client_ca_cn[PQM_NAME_MAX + 1];
    int root_days, ca_days;
    int root_days_set, ca_days_set; /* given: the profile's defaults do not apply */
    const struct pqm_lifetime_profile *profile;
    char *domains[PQM_MAX_SUBTREES];
    size_t ndomains;
    char *ip_ranges[PQM_MAX_SUBTREES];
    size_t nip;
    int ip_none;
    char spiffe_td[256];
    char crl_url[PQM_URL_MAX], ocsp_url[PQM_URL_MAX];
    struct pqm_secret pass;
    int no_pass;
};

struct pqm_pki_config *pqm_pki_config_new(void)
{
    struct pqm_pki_config *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->alg = c->root_alg = pqm__alg_find("ml-dsa-65");
    c->profile = pqm__profile_find("default");
    c->root_days = c->profile->root_days;
    c->ca_days = c->profile->ca_days;
    return c;
}

void pqm_pki_config_free(struct pqm_pki_config *c)
{
    if (c == NULL)
        return;
    pqm__strv_free(c->domains, c->ndomains);
    pqm__strv_free(c->ip_ranges, c->nip);
    pqm__secret_clear(&c->pass);
    free(c);
}

const char *pqm_pki_config_error(const struct pqm_pki_config *c)
{
    return pqm__err_str(&c->err);
}

static int set_alg(struct pqm_pki_config *c, const struct pqm_alg **dst, const char *alg)
{
    const struct pqm_alg *a = pqm__alg_find(alg);
    if (a == NULL)
        return pqm__err_set(&c->err, "unknown algorithm '%s' (one of: %s)", alg,
                            pqm__alg_names());
    *dst = a;
    return 0;
}

int pqm_pki_config_set_alg(struct pqm_pki_config *c, const char *alg)
{
    const struct pqm_alg *a = NULL;
    if (set_alg(c, &a, alg) != 0)
        return -1;
    /* A root set on its own stays; otherwise it follows. */
    if (c->root_alg == c->alg)
        c->root_alg = a;
    c->alg = a;
    return 0;
}

int pqm_pki_config_set_root_alg(struct pqm_pki_config *c, const char *alg)
{
    return set_alg(c, &c->root_alg, alg);
}

static int set_short(struct pqm_pki_config *c, char *dst, size_t dstlen, const char *field,
                     const char *v)
{
    if (v == NULL || v[0] == '\0' || strlen(v) >= dstlen)
        return pqm__err_set(&c->err, "%s must be 1 to %zu characters", field, dstlen - 1);
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

int pqm_pki_config_set_org(struct pqm_pki_config *c, const char *org)
{
    return set_short(c, c->org, sizeof(c->org), "--org", org);
}

int pqm_pki_config_set_root_cn(struct pqm_pki_config *c, const char *cn)
{
    return set_short(c, c->root_cn, sizeof(c->root_cn), "the root CA common name", cn);
}

int pqm_pki_config_set_server_ca_cn(struct pqm_pki_config *c, const char *cn)
{
    return set_short(c, c->server_ca_cn, sizeof(c->server_ca_cn),
                     "the server intermediate CA common name", cn);
}

int pqm_pki_config_set_client_ca_cn(struct pqm_pki_config *c, const char *cn)
{
    return set_short(c, c->client_ca_cn, sizeof(c->client_ca_cn),
                     "the client intermediate CA common name", cn);
}

static int check_days(struct pqm_pki_config *c, const char *field, int days)
{
    if (days < 1 || days > PQM_MAX_DAYS)
        return pqm__err_set(&c->err, "%s must be 1 to %d days", field, PQM_MAX_DAYS);
    return 0;
}

int pqm_pki_config_set_root_days(struct pqm_pki_config *c, int days)
{
    if (check_days(c, "the root CA validity", days) != 0)
        return -1;
    c->root_days = days;
    c->root_days_set = 1;
    return 0;
}

int pqm_pki_config_set_ca_days(struct pqm_pki_config *c, int days)
{
    if (check_days(c, "the intermediate CA validity", days) != 0)
        return -1;
    c->ca_days = days;
    c->ca_days_set = 1;
    return 0;
}

int pqm_pki_config_set_profile(struct pqm_pki_config *c, const char *profile)
{
    const struct pqm_lifetime_profile *pr = pqm__profile_find(profile);
    if (pr == NULL)
        return pqm__err_set(&c->err, "unknown profile '%s' (one of: %s)",
                            profile != NULL ? profile : "", pqm__profile_names());
    c->profile = pr;
    return 0;
}

int pqm_pki_config_add_server_domain(struct pqm_pki_config *c, const char *domain)
{
    GENERAL_NAME *gn = pqm__gn_dns_subtree(domain, &c->err);
    if (gn == NULL)
        return pqm__err_copy(&c->err, "--server-domain", pqm__err_str(&c->err));
    GENERAL_NAME_free(gn);
    return pqm__strv_push(c->domains, &c->ndomains, PQM_MAX_SUBTREES, domain,
                          "--server-domain subtrees", &c->err);
}

int pqm_pki_config_add_server_ip_range(struct pqm_pki_config *c, const char *cidr)
{
    if (strcmp(cidr, "none") == 0) {
        c->ip_none = 1;
        return 0;
    }
    unsigned char a[16], m[16];
    if (pqm__cidr_parse(cidr, a, m) < 0)
        return pqm__err_set(&c->err,
                            "--server-ip-range '%s' is not ADDRESS/PREFIX (e.g. 127.0.0.1/32) "
                            "without host bits set",
                            cidr);
    return pqm__strv_push(c->ip_ranges, &c->nip, PQM_MAX_SUBTREES, cidr,
                          "--server-ip-range subtrees", &c->err);
}

int pqm_pki_config_set_spiffe_trust_domain(struct pqm_pki_config *c, const char *td)
{
    if (pqm__spiffe_td_valid(td, &c->err) != 0)
        return -1;
    return set_short(c, c->spiffe_td, sizeof(c->spiffe_td), "--spiffe-trust-domain", td);
}

/* A URL setting, trailing slashes removed ("" or "none" clears it). */
static int set_url(char *dst, size_t dstlen, const char *field, const char *url,
                   struct pqm_err *e)
{
    if (url == NULL || url[0] == '\0' || strcmp(url, "none") == 0) {
        dst[0] = '\0';
        return 0;
    }
    if (pqm__url_valid(url, field, e) != 0)
        return -1;
    snprintf(dst, dstlen, "%s", url);
    for (size_t n = strlen(dst); n > 0 && dst[n - 1] == '/'; n--)
        dst[n - 1] = '\0';
    return 0;
}

int pqm_pki_config_set_crl_url(struct pqm_pki_config *c, const char *url)
{
    return set_url(c->crl_url, sizeof(c->crl_url), "--crl-url", url, &c->err);
}

int pqm_pki_config_set_ocsp_url(struct pqm_pki_config *c, const char *url)
{
    return set_url(c->ocsp_url, sizeof(c->ocsp_url), "--ocsp-url", url, &c->err);
}

int pqm__pki_crl_url_for(const char *base, const char *ca_crt, char *out, size_t outlen)
{
    out[0] = '\0';
    if (base == NULL || base[0] == '\0')
        return 0;
    size_t n = strlen(ca_crt);
    const char *ext = ".crt.pem";
    size_t elen = strlen(ext);
    if (n <= elen || strcmp(ca_crt + n - elen, ext) != 0)
        return -1;
    int w = snprintf(out, outlen, "%s/%.*s.crl", base, (int)(n - elen), ca_crt);
    return w > 0 && (size_t)w < outlen ? 0 : -1;
}

int pqm_pki_config_set_passphrase(struct pqm_pki_config *c, const char *pass, size_t len)
{
    c->no_pass = 0;
    return pqm__secret_set(&c->pass, pass, len, &c->err);
}

void pqm_pki_config_insecure_no_passphrase(struct pqm_pki_config *c)
{
    pqm__secret_clear(&c->pass);
    c->no_pass = 1;
}

/* ---------------------------------------------------------------------------------- */

struct pqm_pki *pqm_pki_new(void)
{
    struct pqm_pki *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->lock_fd = -1;
    p->server_ca = (struct pqm_ca){"server intermediate CA", PQM_F_SERVER_CRT, PQM_F_SERVER_KEY,
                                   NULL, NULL, ""};
    p->client_ca = (struct pqm_ca){"client intermediate CA", PQM_F_CLIENT_CRT, PQM_F_CLIENT_KEY,
                                   NULL, NULL, ""};
    p->root_ca = (struct pqm_ca){"root CA", PQM_F_ROOT_CRT, PQM_F_ROOT_KEY, NULL, NULL, ""};
    return p;
}

static void ca_clear(struct pqm_ca *ca)
{
    X509_free(ca->cert);
    EVP_PKEY_free(ca->pkey);
    ca->cert = NULL;
    ca->pkey = NULL;
}

void pqm_pki_free(struct pqm_pki *p)
{
    if (p == NULL)
        return;
    pqm__pki_unlock(p);
    pqm__store_close(p->store);
    pqm__secret_clear(&p->pass);
    X509_free(p->root);
    ca_clear(&p->server_ca);
    ca_clear(&p->client_ca);
    ca_clear(&p->root_ca);
    free(p);
}

const char *pqm_pki_error(const struct pqm_pki *p)
{
    return pqm__err_str(&p->err);
}

int pqm__pki_path(const struct pqm_pki *p, const char *rel, char *out, size_t outlen)
{
    int n = rel[0] == '/' ? snprintf(out, outlen, "%s", rel)
                          : snprintf(out, outlen, "%s/%s", p->dir, rel);
    return (n < 0 || (size_t)n >= outlen) ? -1 : 0;
}

void pqm__name_string(const X509_NAME *n, char *out, size_t outlen)
{
    out[0] = '\0';
    BIO *b = BIO_new(BIO_s_mem());
    if (b == NULL)
        return;
    if (X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
        int len = BIO_read(b, out, (int)outlen - 1);
        out[len > 0 ? len : 0] = '\0';
    }
    BIO_free(b);
}

int pqm__name_valid(const char *name, struct pqm_err *e)
{
    size_t len = strlen(name);
    if (len == 0 || len > PQM_NAME_MAX)
        return pqm__err_set(e, "--name '%.70s' must be 1 to %d characters", name, PQM_NAME_MAX);
    if (name[0] == '.' || name[0] == '-')
        return pqm__err_set(e, "--name '%s' must not start with '.' or '-'", name);
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_'))
            return pqm__err_set(e,
                                "--name '%s': invalid character '%c' (it names files: only "
                                "A-Z, a-z, 0-9, '.', '-', '_')",
                                name, c);
    }
    return 0;
}

/* --- creating a PKI -------------------------------------------------------------- */


static int add_subtree(STACK_OF(GENERAL_SUBTREE) **st, GENERAL_NAME *gn, struct pqm_err *e)
{
    if (gn == NULL)
        return -1;
    GENERAL_SUBTREE *sub = GENERAL_SUBTREE_new();
    if (*st == NULL)
        *st = sk_GENERAL_SUBTREE_new_null();
    if (sub == NULL || *st == NULL || sk_GENERAL_SUBTREE_push(*st, sub) <= 0) {
        GENERAL_SUBTREE_free(sub);
        GENERAL_NAME_free(gn);
        return pqm__err_set(e, "out of memory");
    }
    GENERAL_NAME_free(sub->base);
    sub->base = gn;
    return 0;
}

static NAME_CONSTRAINTS *server_nc(const struct pqm_pki_config *c, struct pqm_err *e)
{
    static const char *const loopback[] = {"127.0.0.0/8", "::1/128"};
    NAME_CONSTRAINTS *nc = NAME_CONSTRAINTS_new();
    if (nc == NULL) {
        pqm__err_set(e, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < c->ndomains; i++)
        if (add_subtree(&nc->permittedSubtrees, pqm__gn_dns_subtree(c->domains[i], e), e) != 0)
            goto fail;
    /* IP addresses are always constrained: the ranges given, loopback by default, or
     * (with "none") an excluded everything, so that a DNS-constrained CA cannot
     * vouch for an arbitrary address. */
    if (c->ip_none) {
        if (add_subtree(&nc->excludedSubtrees, pqm__gn_ip_range("0.0.0.0/0", e), e) != 0 ||
            add_subtree(&nc->excludedSubtrees, pqm__gn_ip_range("::/0", e), e) != 0)
            goto fail;
    } else if (c->nip > 0) {
        for (size_t i = 0; i < c->nip; i++)
            if (add_subtree(&nc->permittedSubtrees, pqm__gn_ip_range(c->ip_ranges[i], e), e) != 0)
                goto fail;
    } else {
        for (size_t i = 0; i < 2; i++)
            if (add_subtree(&nc->permittedSubtrees, pqm__gn_ip_range(loopback[i], e), e) != 0)
                goto fail;
    }
    return nc;
fail:
    NAME_CONSTRAINTS_free(nc);
    return NULL;
}

static NAME_CONSTRAINTS *client_nc(const struct pqm_pki_config *c, struct pqm_err *e)
{
    return pqm__spiffe_nc(c->spiffe_td, e);
}

NAME_CONSTRAINTS *pqm__spiffe_nc(const char *td, struct pqm_err *e)
{
    if (td[0] == '\0')
        return NULL;
    NAME_CONSTRAINTS *nc = NAME_CONSTRAINTS_new();
    if (nc == NULL) {
        pqm__err_set(e, "out of memory");
        return NULL;
    }
    /* RFC 5280 4.2.1.10: a URI constraint without a leading '.' is the host exactly. */
    if (add_subtree(&nc->permittedSubtrees, pqm__gn_uri(td, e), e) != 0) {
        NAME_CONSTRAINTS_free(nc);
        return NULL;
    }
    return nc;
}

int pqm__ca_build(struct ca_build *b, const struct ca_build *issuer, const char *org,
                    const char *crl_url, int64_t now, struct pqm_err *e)
{
    int rc = -1;
    X509_NAME *subject = NULL;
    BIGNUM *serial = NULL;

    b->pkey = pqm__alg_keygen(b->alg, e);
    if (b->pkey == NULL)
        goto cleanup;
    subject = pqm__name_new(b->cn, org, e);
    serial = pqm__serial_new(e);
    if (subject == NULL || serial == NULL)
        goto cleanup;
    int64_t not_after = now + (int64_t)b->days * 86400;
    if (issuer != NULL) {
        int64_t issuer_end = 0;
        if (pqm__asn1_time_to_epoch(X509_get0_notAfter(issuer->cert), &issuer_end) == 0 && not_after > issuer_end)
            not_after = issuer_end;
    }
    struct pqm_cert_spec spec = {
        .kind = b->kind,
        .subject = subject,
        .subject_key = b->pkey,
        .issuer = issuer != NULL ? issuer->cert : NULL,
        .issuer_key = issuer != NULL ? issuer->pkey : b->pkey,
        .serial = serial,
        .not_before = now - PQM_BACKDATE_SECONDS,
        .not_after = not_after,
        .path_len = b->path_len,
        .nc = b->nc,
        .crl_url = crl_url,
    };
    b->cert = pqm__cert_build(&spec, e);
    if (b->cert == NULL)
        goto cleanup;
    GUARD_OSSL(pqm__serial_hex(serial, b->serial, sizeof(b->serial)) == 0, e, "serial");
    rc = 0;
cleanup:
    if (rc != 0)
        pqm__err_copy(e, b->label, pqm__err_str(e));
    X509_NAME_free(subject);
    BN_free(serial);
    return rc;
}

int pqm__write_pem_certs(const char *dir, const char *file, X509 *const *certs, size_t n,
                           struct pqm_err *e)
{
    char path[PATH_MAX], *pem = NULL;
    size_t len = 0;
    if (pqm__path_join(path, sizeof(path), dir, file) != 0)
        return pqm__err_set(e, "%s: path too long", dir);
    if (pqm__certs_to_pem(certs, n, &pem, &len, e) != 0)
        return -1;
    int rc = pqm__write_file_atomic(path, pem, len, 0644, e);
    free(pem);
    return rc;
}

int pqm__write_key(const char *dir, const char *file, EVP_PKEY *k, const char *pass,
                     size_t passlen, struct pqm_err *e)
{
    char path[PATH_MAX], *pem = NULL;
    size_t len = 0;
    if (pqm__path_join(path, sizeof(path), dir, file) != 0)
        return pqm__err_set(e, "%s: path too long", dir);
    if (pqm__key_to_pem(k, pass, passlen, &pem, &len, e) != 0)
        return -1;
    int rc = pqm__write_file_atomic(path, pem, len, 0600, e);
    OPENSSL_cleanse(pem, len);
    free(pem);
    return rc;
}

/* "DNS:a,IP:b,URI:c", whole: never cut to a shorter name that means something else. */
static int sans_text(const GENERAL_NAMES *gens, char **out, struct pqm_err *e)
{
    int n = sk_GENERAL_NAME_num(gens);
    size_t cap = (size_t)(n > 0 ? n : 0) * (PQM_GN_TEXT_MAX + 1) + 1, used = 0;
    char *buf = malloc(cap);
    if (buf == NULL)
        return pqm__err_set(e, "out of memory");
    buf[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (i > 0)
            buf[used++] = ',';
        pqm__gn_format(sk_GENERAL_NAME_value(gens, i), buf + used, PQM_GN_TEXT_MAX);
        used += strlen(buf + used);
    }
    free(*out);
    *out = buf;
    return 0;
}

void pqm__record_buf_free(struct pqm_record_buf *b)
{
    free(b->sans);
    b->sans = NULL;
}

int pqm__record_from_cert(X509 *x, const EVP_PKEY *key, const char *issuer_serial,
                          const char *fp, struct pqm_cert_record *r, struct pqm_record_buf *b,
                          struct pqm_err *e)
{
    const ASN1_INTEGER *sn = X509_get0_serialNumber(x);
    BIGNUM *bn = ASN1_INTEGER_to_BN(sn, NULL);
    int ok = bn != NULL && pqm__serial_hex(bn, b->serial, sizeof(b->serial)) == 0;
    BN_free(bn);
    if (fp != NULL)
        snprintf(b->fp, sizeof(b->fp), "%s", fp);
    if (!ok || (fp == NULL && pqm__cert_fingerprint(x, b->fp) != 0))
        return pqm__err_ossl(e, "cannot read back the certificate");
    pqm__name_string(X509_get_subject_name(x), b->subject, sizeof(b->subject));
    pqm__name_string(X509_get_issuer_name(x), b->issuer, sizeof(b->issuer));
    snprintf(b->issuer_serial, sizeof(b->issuer_serial), "%s", issuer_serial);
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    int rc = sans_text(gens, &b->sans, e);
    GENERAL_NAMES_free(gens);
    if (rc != 0)
        return -1;
    r->serial = b->serial;
    r->subject = b->subject;
    r->issuer = b->issuer;
    r->issuer_serial = b->issuer_serial;
    r->sans = b->sans;
    r->fingerprint = b->fp;
    if (key == NULL && (key = X509_get0_pubkey(x)) == NULL)
        return pqm__err_ossl(e, "cannot read the certificate's public key");
    r->key_alg = pqm__alg_name_of_key(key);
    if (pqm__asn1_time_to_epoch(X509_get0_notBefore(x), &r->not_before) != 0 ||
        pqm__asn1_time_to_epoch(X509_get0_notAfter(x), &r->not_after) != 0)
        return pqm__err_set(e, "cannot read the certificate's validity");
    return 0;
}

int pqm__record_ca(struct pqm_store *s, const struct ca_build *b, const char *issuer_serial,
                     int64_t now, struct pqm_err *e)
{
    struct pqm_cert_record r = {0};
    struct pqm_record_buf buf = {0};
    int rc = -1;
    if (pqm__record_from_cert(b->cert, NULL, issuer_serial, NULL, &r, &buf, e) == 0) {
        r.name = b->name;
        r.kind = b->kind == PQM_KIND_ROOT ? "root" : "intermediate";
        r.profile = b->profile;
        r.status = "valid";
        r.cert_path = b->crt;
        r.key_path = b->key;
        r.created_at = now;
        rc = pqm__store_insert(s, &r, e);
    }
    pqm__record_buf_free(&buf);
    return rc;
}

static int write_pki(const char *tmp, const struct pqm_pki_config *c, struct ca_build *cas,
                     int64_t now, struct pqm_err *e)
{
    const char *pass = c->no_pass ? NULL : c->pass.buf;
    size_t passlen = c->no_pass ? 0 : c->pass.len;
    X509 *server_chain[2] = {cas[1].cert, cas[0].cert};
    X509 *client_chain[2] = {cas[2].cert, cas[0].cert};
    char path[PATH_MAX];
    struct pqm_store *s = NULL;
    int rc = -1;

    for (int i = 0; i < 3; i++)
        if (pqm__write_pem_certs(tmp, cas[i].crt, &cas[i].cert, 1, e) != 0 ||
            pqm__write_key(tmp, cas[i].key, cas[i].pkey, pass, passlen, e) != 0)
            return -1;
    if (pqm__write_pem_certs(tmp, PQM_F_SERVER_CHAIN, server_chain, 2, e) != 0 ||
        pqm__write_pem_certs(tmp, PQM_F_CLIENT_CHAIN, client_chain, 2, e) != 0)
        return -1;
    if (pqm__path_join(path, sizeof(path), tmp, PQM_D_ISSUED) != 0 || mkdir(path, 0755) != 0)
        return pqm__err_set(e, "%s: cannot create: %s", path, strerror(errno));
    if (pqm__path_join(path, sizeof(path), tmp, PQM_F_DB) != 0)
        return pqm__err_set(e, "%s: path too long", tmp);
    s = pqm__store_open(path, 1, e);
    if (s == NULL)
        return -1;
    char created[32];
    snprintf(created, sizeof(created), "%lld", (long long)now);
    GUARD(pqm__store_begin(s, e));
    GUARD(pqm__store_meta_set(s, "alg", c->alg->name, e));
    GUARD(pqm__store_meta_set(s, "encrypted", pass != NULL ? "1" : "0", e));
    GUARD(pqm__store_meta_set(s, "org", c->org, e));
    GUARD(pqm__store_meta_set(s, "spiffe_trust_domain", c->spiffe_td, e));
    GUARD(pqm__store_meta_set(s, "created_at", created, e));
    GUARD(pqm__store_meta_set(s, "crl_url", c->crl_url, e));
    GUARD(pqm__store_meta_set(s, "ocsp_url", c->ocsp_url, e));
    GUARD(pqm__profile_store(s, c->profile, e));
    GUARD(pqm__record_ca(s, &cas[0], cas[0].serial, now, e));
    GUARD(pqm__record_ca(s, &cas[1], cas[0].serial, now, e));
    GUARD(pqm__record_ca(s, &cas[2], cas[0].serial, now, e));
    GUARD(pqm__store_commit(s, e));
    rc = 0;
cleanup:
    if (rc != 0)
        pqm__store_rollback(s);
    pqm__store_close(s);
    return rc;
}

/* DIR must not exist, or be an empty directory (rename(2) replaces an empty one). */
static int check_target(const char *dir, struct pqm_err *e)
{
    struct stat st;
    if (stat(dir, &st) != 0)
        return errno == ENOENT ? 0 : pqm__err_set(e, "%s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return pqm__err_set(e, "%s exists and is not a directory", dir);
    DIR *d = opendir(dir);
    if (d == NULL)
        return pqm__err_set(e, "%s: %s", dir, strerror(errno));
    struct dirent *de;
    int empty = 1;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            empty = 0;
    closedir(d);
    return empty ? 0 : pqm__err_set(e, "%s exists and is not empty; refusing to overwrite it", dir);
}

/* A `pki init` killed before its rename leaves .BASE.pqmtls-init-XXXXXX beside DIR, with
 * CA keys in it. The next init of the same DIR removes them. (Two inits of one DIR at
 * the same moment would disturb each other here; one of them fails, nothing is lost.) */
static void remove_stale_inits(const char *parent, const char *base)
{
    char prefix[PATH_MAX], path[PATH_MAX];
    int plen = snprintf(prefix, sizeof(prefix), ".%s.pqmtls-init-", base);
    if (plen < 0 || (size_t)plen >= sizeof(prefix))
        return;
    DIR *d = opendir(parent);
    if (d == NULL)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strncmp(de->d_name, prefix, (size_t)plen) == 0 &&
            strlen(de->d_name) == (size_t)plen + 6 &&
            pqm__path_join(path, sizeof(path), parent, de->d_name) == 0)
            pqm__rmtree(path);
    closedir(d);
}

static void default_cn(char *dst, size_t len, const char *org, const char *what)
{
    if (dst[0] == '\0')
        snprintf(dst, len, "%.*s %s", (int)(len - strlen(what) - 2), org, what);
}

int pqm_pki_create(struct pqm_pki *p, const char *dir, const struct pqm_pki_config *cfg)
{
    struct pqm_pki_config c = *cfg; /* shallow: only the names are completed below */
    struct pqm_err *e = &p->err;
    char tmp[PATH_MAX], parent[PATH_MAX], base[PATH_MAX];
    int rc = -1, made_tmp = 0;

    if (!c.no_pass && c.pass.buf == NULL)
        return pqm__err_set(e, "no passphrase for the CA keys: set one, or choose no passphrase "
                               "(keys unencrypted)");
    if (c.org[0] == '\0')
        snprintf(c.org, sizeof(c.org), "pqmtls");
    default_cn(c.root_cn, sizeof(c.root_cn), c.org, "Root CA");
    default_cn(c.server_ca_cn, sizeof(c.server_ca_cn), c.org, "Server Intermediate CA");
    default_cn(c.client_ca_cn, sizeof(c.client_ca_cn), c.org, "Client Intermediate CA");
    if (!c.root_days_set)
        c.root_days = c.profile->root_days;
    if (!c.ca_days_set)
        c.ca_days = c.profile->ca_days;
    if (c.root_days < c.ca_days)
        return pqm__err_set(e, "the intermediate CA validity (%d days) is longer than the root's "
                               "(%d days)",
                            c.ca_days, c.root_days);
    if (check_target(dir, e) != 0)
        return -1;

    struct ca_build cas[3] = {
        {"root CA", "root-ca", "root-ca", PQM_F_ROOT_CRT, PQM_F_ROOT_KEY, c.root_alg, c.root_cn,
         c.root_days, 2, PQM_KIND_ROOT, NULL, NULL, NULL, ""},
        {"server intermediate CA", "server-int-ca", "server-ca", PQM_F_SERVER_CRT,
         PQM_F_SERVER_KEY, c.alg, c.server_ca_cn, c.ca_days, 0, PQM_KIND_INTERMEDIATE, NULL, NULL,
         NULL, ""},
        {"client intermediate CA", "client-int-ca", "client-ca", PQM_F_CLIENT_CRT,
         PQM_F_CLIENT_KEY, c.alg, c.client_ca_cn, c.ca_days, 0, PQM_KIND_INTERMEDIATE, NULL, NULL,
         NULL, ""},
    };
    cas[1].nc = server_nc(&c, e);
    if (cas[1].nc == NULL)
        goto cleanup;
    if (c.spiffe_td[0] != '\0' && (cas[2].nc = client_nc(&c, e)) == NULL)
        goto cleanup;

    int64_t now = (int64_t)time(NULL);
    char root_crl[PQM_URL_MAX + 32];
    ENSURE(pqm__pki_crl_url_for(c.crl_url, PQM_F_ROOT_CRT, root_crl, sizeof(root_crl)) == 0, e,
           "--crl-url is too long");
    GUARD(pqm__ca_build(&cas[0], NULL, c.org, NULL, now, e));
    GUARD(pqm__ca_build(&cas[1], &cas[0], c.org, root_crl, now, e));
    GUARD(pqm__ca_build(&cas[2], &cas[0], c.org, root_crl, now, e));

    snprintf(parent, sizeof(parent), "%s", dir);
    snprintf(base, sizeof(base), "%s", dir);
    const char *pdir = dirname(parent), *pbase = basename(base);
    remove_stale_inits(pdir, pbase);
    int n = snprintf(tmp, sizeof(tmp), "%s/.%s.pqmtls-init-XXXXXX", pdir, pbase);
    ENSURE(n > 0 && (size_t)n < sizeof(tmp), e, "%s: path too long", dir);
    ENSURE(mkdtemp(tmp) != NULL, e, "%s: cannot create a directory beside it: %s", dir,
           strerror(errno));
    made_tmp = 1;
    ENSURE(chmod(tmp, 0700) == 0, e, "%s: chmod: %s", tmp, strerror(errno));
    GUARD(write_pki(tmp, &c, cas, now, e));
    GUARD(pqm__fsync_dir(tmp, e));
    ENSURE(rename(tmp, dir) == 0, e, "%s: cannot move the new PKI into place: %s", dir,
           strerror(errno));
    made_tmp = 0;
    snprintf(parent, sizeof(parent), "%s", dir);
    GUARD(pqm__fsync_dir(dirname(parent), e));
    rc = pqm_pki_open(p, dir);
    if (rc == 0 && !c.no_pass)
        rc = pqm_pki_set_passphrase(p, c.pass.buf, c.pass.len);
cleanup:
    if (made_tmp)
        pqm__rmtree(tmp);
    for (int i = 0; i < 3; i++) {
        NAME_CONSTRAINTS_free(cas[i].nc);
        EVP_PKEY_free(cas[i].pkey);
        X509_free(cas[i].cert);
    }
    return rc;
}

/* --- opening ------------------------------------------------------------------------ */

int pqm_pki_open(struct pqm_pki *p, const char *dir)
{
    struct pqm_err *e = &p->err;
    char path[PATH_MAX], v[16];
    if (p->store != NULL)
        return pqm__err_set(e, "this handle already has a PKI open");
    /* Absolute: paths recorded for recovery must not depend on where it runs from. */
    if (realpath(dir, p->dir) == NULL)
        return pqm__err_set(e, "%s: not a pqmtls PKI directory (%s: %s)", dir, PQM_F_DB,
                            strerror(errno));
    if (pqm__pki_path(p, PQM_F_DB, path, sizeof(path)) != 0)
        return pqm__err_set(e, "%s: path too long", dir);
    if (access(path, R_OK | W_OK) != 0)
        return pqm__err_set(e, "%s: not a pqmtls PKI directory (%s: %s)", dir, PQM_F_DB,
                            strerror(errno));
    p->store = pqm__store_open(path, 0, e);
    if (p->store == NULL)
        return -1;
    if (pqm__store_meta_get(p->store, "alg", p->alg, sizeof(p->alg), e) != 1 ||
        pqm__store_meta_get(p->store, "encrypted", v, sizeof(v), e) != 1 ||
        pqm__store_meta_get(p->store, "org", p->org, sizeof(p->org), e) < 0 ||
        pqm__store_meta_get(p->store, "spiffe_trust_domain", p->spiffe_td, sizeof(p->spiffe_td),
                            e) < 0 ||
        pqm__store_meta_get(p->store, "crl_url", p->crl_url, sizeof(p->crl_url), e) < 0 ||
        pqm__store_meta_get(p->store, "ocsp_url", p->ocsp_url, sizeof(p->ocsp_url), e) < 0) {
        if (strcmp(pqm__err_str(e), "no error") == 0)
            pqm__err_set(e, "%s: the inventory lacks its settings", path);
        return -1;
    }
    p->encrypted = strcmp(v, "1") == 0;
    return 0;
}

int pqm_pki_set_passphrase(struct pqm_pki *p, const char *pass, size_t len)
{
    return pqm__secret_set(&p->pass, pass, len, &p->err);
}

int pqm_pki_set_urls(struct pqm_pki *p, const char *crl_url, const char *ocsp_url)
{
    struct pqm_err *e = &p->err;
    char crl[PQM_URL_MAX], ocsp[PQM_URL_MAX];
    snprintf(crl, sizeof(crl), "%s", p->crl_url);
    snprintf(ocsp, sizeof(ocsp), "%s", p->ocsp_url);
    if ((crl_url != NULL && set_url(crl, sizeof(crl), "--crl-url", crl_url, e) != 0) ||
        (ocsp_url != NULL && set_url(ocsp, sizeof(ocsp), "--ocsp-url", ocsp_url, e) != 0))
        return -1;
    if (pqm__pki_lock(p) != 0)
        return -1;
    int rc = -1;
    if (pqm__store_begin(p->store, e) == 0) {
        if (pqm__store_meta_set(p->store, "crl_url", crl, e) == 0 &&
            pqm__store_meta_set(p->store, "ocsp_url", ocsp, e) == 0 &&
            pqm__store_commit(p->store, e) == 0)
            rc = 0;
        else
            pqm__store_rollback(p->store);
    }
    pqm__pki_unlock(p);
    if (rc == 0) {
        snprintf(p->crl_url, sizeof(p->crl_url), "%s", crl);
        snprintf(p->ocsp_url, sizeof(p->ocsp_url), "%s", ocsp);
    }
    return rc;
}

const char *pqm_pki_crl_url(const struct pqm_pki *p)
{
    return p->crl_url;
}

const char *pqm_pki_ocsp_url(const struct pqm_pki *p)
{
    return p->ocsp_url;
}

int pqm_pki_is_encrypted(const struct pqm_pki *p)
{
    return p->encrypted;
}

static int load_ca(struct pqm_pki *p, struct pqm_ca *ca)
{
    struct pqm_err *e = &p->err;
    char path[PATH_MAX];
    if (pqm__pki_path(p, ca->crt, path, sizeof(path)) != 0)
        return pqm__err_set(e, "path too long");
    ca->cert = pqm__cert_load(path, e);
    if (ca->cert == NULL)
        return -1;
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(ca->cert), NULL);
    int ok = bn != NULL && pqm__serial_hex(bn, ca->serial, sizeof(ca->serial)) == 0;
    BN_free(bn);
    if (!ok)
        return pqm__err_ossl(e, "%s: cannot read the serial number", path);
    if (pqm__pki_path(p, ca->key, path, sizeof(path)) != 0)
        return pqm__err_set(e, "path too long");
    ca->pkey = pqm__key_load(path, p->encrypted ? p->pass.buf : NULL, p->pass.len, e);
    if (ca->pkey == NULL)
        return -1;
    if (X509_check_private_key(ca->cert, ca->pkey) != 1)
        return pqm__err_ossl(e, "%s does not match the %s certificate", path, ca->label);
    return 0;
}

int pqm__pki_load_root(struct pqm_pki *p)
{
    char path[PATH_MAX];
    if (p->root != NULL)
        return 0;
    if (pqm__pki_path(p, PQM_F_ROOT_CRT, path, sizeof(path)) != 0)
        return pqm__err_set(&p->err, "path too long");
    p->root = pqm__cert_load(path, &p->err);
    return p->root != NULL ? 0 : -1;
}

int pqm__pki_load_ca(struct pqm_pki *p, struct pqm_ca *ca)
{
    if (ca->pkey != NULL)
        return 0;
    if (p->encrypted && p->pass.buf == NULL)
        return pqm__err_set(&p->err, "the %s key is encrypted: a passphrase is needed",
                            ca->label);
    if (load_ca(p, ca) == 0)
        return 0;
    ca_clear(ca); /* all or nothing: a later call starts again */
    return -1;
}

/* --- lock and recovery ------------------------------------------------------------- */

struct recover_ctx {
    struct pqm_pki *p;
    char (*serials)[64];
    size_t n, cap;
    struct pqm_strlist dirs; /* directories whose entries changed: synced before the commit */
    int staging;              /* staging records seen */
};

static int note_dir(struct recover_ctx *c, const char *path)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof(buf), "%s", path);
    const char *dir = dirname(buf);
    if (pqm__strlist_has(&c->dirs, dir))
        return 0;
    return pqm__strlist_add(&c->dirs, dir, &c->p->err);
}

const char *pqm__identity_at(const char *staged, int i, char *buf, size_t len)
{
    if (staged[0] == '\0')
        return NULL;
    const char *p = staged;
    for (int k = 0; k < i && p != NULL; k++)
        if ((p = strchr(p, ' ')) != NULL)
            p++;
    if (p == NULL)
        return "-";
    snprintf(buf, len, "%.*s", (int)strcspn(p, " "), p);
    return buf;
}

static int collect_pending(const struct pqm_cert_record *r, const char *staged, void *arg)
{
    struct recover_ctx *c = arg;
    const char *paths[] = {r->cert_path, r->key_path, r->chain_path, r->p12_path};
    char path[PATH_MAX], idbuf[80];
    /* A renewal puts the files it replaced back first: they go by content, not name. */
    if (pqm__renew_undo_files(c->p, r, staged) != 0)
        return -1;
    for (int i = 0; i < 4; i++) {
        if (paths[i][0] == '\0' || pqm__pki_path(c->p, paths[i], path, sizeof(path)) != 0)
            continue;
        /* Only the file this issuance wrote goes (recognised by its content): a file
         * someone else put at that name, which the rename refused to replace, stays.
         * A file that cannot be removed stops the recovery: the row stays pending. */
        const char *id = pqm__identity_at(staged, i, idbuf, sizeof(idbuf));
        if (id != NULL && strcmp(id, "-") == 0)
            continue;
        if (pqm__unlink_if_same(path, id, &c->p->err) < 0 || note_dir(c, path) != 0)
            return -1;
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        void *v = realloc(c->serials, cap * sizeof(*c->serials));
        if (v == NULL)
            return pqm__err_set(&c->p->err, "out of memory");
        c->serials = v;
        c->cap = cap;
    }
    snprintf(c->serials[c->n++], 64, "%s", r->serial);
    return 0;
}

static int sweep_staging(const char *dir, const char *prefix, void *arg)
{
    struct recover_ctx *c = arg;
    char probe[PATH_MAX];
    c->staging = 1;
    if (pqm__remove_tmp_files(dir, prefix, &c->p->err) < 0 ||
        pqm__path_join(probe, sizeof(probe), dir, "x") != 0)
        return -1;
    return note_dir(c, probe);
}

/* Rolls back every interrupted issuance: its files go, its serial stays used
 * ("aborted"), so that it is never issued again; temporary files it staged before
 * recording anything go too. The removals are made durable before the inventory says
 * so; a crash in between only means doing it again. */
int pqm__pki_recover(struct pqm_pki *p)
{
    struct recover_ctx c = {.p = p};
    char issued[PATH_MAX], probe[PATH_MAX];
    int rc = -1;
    ENSURE(pqm__pki_path(p, PQM_D_ISSUED, issued, sizeof(issued)) == 0 &&
               pqm__path_join(probe, sizeof(probe), issued, "x") == 0,
           &p->err, "path too long");
    GUARD(pqm__store_foreach_rows(p->store, PQM_STORE_PENDING, collect_pending, &c, &p->err));
    GUARD(pqm__store_staging_foreach(p->store, sweep_staging, &c, &p->err));
    int swept = pqm__remove_tmp_files(issued, "", &p->err);
    if (swept < 0)
        goto cleanup;
    if (c.n == 0 && !c.staging && swept == 0) {
        rc = 0; /* nothing was interrupted: the common case costs no write */
        goto cleanup;
    }
    GUARD(note_dir(&c, probe));
    for (size_t i = 0; i < c.dirs.n; i++)
        if (pqm__fsync_dir(c.dirs.v[i], &p->err) != 0 && access(c.dirs.v[i], F_OK) == 0)
            goto cleanup;
    GUARD(pqm__store_begin(p->store, &p->err));
    for (size_t i = 0; i < c.n; i++)
        if (pqm__store_mark(p->store, c.serials[i], "pending", "aborted", &p->err) != 0 ||
            pqm__store_unrenew(p->store, c.serials[i], &p->err) < 0) {
            pqm__store_rollback(p->store);
            goto cleanup;
        }
    if (pqm__store_staging_del(p->store, -1, &p->err) != 0) {
        pqm__store_rollback(p->store);
        goto cleanup;
    }
    GUARD(pqm__store_commit(p->store, &p->err));
    rc = 0;
cleanup:
    free(c.serials);
    pqm__strlist_free(&c.dirs);
    return rc;
}

/* Opens and flocks DIR/.lock; 1 when the locked file is still the one at that path, 0
 * when it was removed or replaced while this process waited (then lock again), -1 on
 * error. */
static int lock_once(struct pqm_pki *p, const char *path, int *fd_out)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return pqm__err_set(&p->err, "%s: cannot open the lock: %s", path, strerror(errno));
    while (flock(fd, LOCK_EX) != 0) {
        if (errno == EINTR)
            continue;
        int saved = errno;
        close(fd);
        return pqm__err_set(&p->err, "%s: cannot lock: %s", path, strerror(saved));
    }
    struct stat held, now;
    if (fstat(fd, &held) != 0 || stat(path, &now) != 0 || held.st_dev != now.st_dev ||
        held.st_ino != now.st_ino) {
        close(fd);
        return 0;
    }
    *fd_out = fd;
    return 1;
}

int pqm__pki_lock(struct pqm_pki *p)
{
    char path[PATH_MAX];
    if (p->lock_fd >= 0)
        return 0;
    if (pqm__pki_path(p, PQM_F_LOCK, path, sizeof(path)) != 0)
        return pqm__err_set(&p->err, "path too long");
    int fd = -1, rc = 0;
    for (int tries = 0; rc == 0 && tries < 16; tries++)
        rc = lock_once(p, path, &fd);
    if (rc <= 0)
        return rc < 0 ? -1 : pqm__err_set(&p->err, "%s: the lock file keeps being replaced", path);
    p->lock_fd = fd;
    if (pqm__pki_recover(p) != 0) {
        pqm__pki_unlock(p);
        return -1;
    }
    return 0;
}

void pqm__pki_unlock(struct pqm_pki *p)
{
    if (p->lock_fd < 0)
        return;
    close(p->lock_fd); /* releases the flock */
    p->lock_fd = -1;
}

/* --- listing and checking ---------------------------------------------------------- */

int pqm_pki_foreach(struct pqm_pki *p, int all, pqm_record_cb cb, void *arg)
{
    return pqm__store_foreach(p->store, all ? PQM_STORE_ALL : PQM_STORE_LIVE, cb, arg, &p->err);
}

static int count_pending(const struct pqm_cert_record *r, void *arg)
{
    *(int *)arg += strcmp(r->status, "pending") == 0;
    return 0;
}

int pqm_pki_interrupted(struct pqm_pki *p)
{
    if (p->lock_fd >= 0)
        return 0; /* this process is the writer: recovery ran, pending rows are its own */
    /* A shared hold on the lock while counting: no writer can start or finish meanwhile,
     * so rows a writer holds pending are never counted as interrupted. */
    char path[PATH_MAX];
    int fd = -1;
    if (pqm__pki_path(p, PQM_F_LOCK, path, sizeof(path)) == 0)
        fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0 && flock(fd, LOCK_SH | LOCK_NB) != 0) {
        int busy = errno == EWOULDBLOCK;
        close(fd);
        if (busy)
            return 0; /* a writer is at work: its pending rows are in progress */
        fd = -1;
    }
    int n = 0;
    int rc = pqm_pki_foreach(p, 1, count_pending, &n);
    if (fd >= 0)
        close(fd); /* releases the shared lock */
    return rc == 0 ? n : -1;
}

struct check_ctx {
    struct pqm_pki *p;
    void (*problem)(const char *, void *);
    void *arg;
    int problems;
    struct pqm_strlist recorded; /* every recorded certificate path, sorted at the end */
};

static void problem(struct check_ctx *c, const char *path, const char *what, const char *serial)
{
    char line[PATH_MAX * 2];
    if (serial != NULL)
        snprintf(line, sizeof(line), "%s: %s (serial %s)", path, what, serial);
    else
        snprintf(line, sizeof(line), "%s: %s", path, what);
    c->problems++;
    if (c->problem != NULL)
        c->problem(line, c->arg);
}

static int check_record(const struct pqm_cert_record *r, void *arg)
{
    struct check_ctx *c = arg;
    char path[PATH_MAX], fp[65];
    struct pqm_err e;
    struct stat st;

    if (pqm__pki_path(c->p, r->cert_path, path, sizeof(path)) != 0)
        return pqm__err_set(&c->p->err, "path too long");
    if (pqm__strlist_add(&c->recorded, path, &c->p->err) != 0)
        return -1;
    X509 *x = pqm__cert_load(path, &e);
    if (x == NULL) {
        problem(c, path, "certificate file missing or unreadable", r->serial);
        return 0;
    }
    if (pqm__cert_fingerprint(x, fp) != 0 || strcmp(fp, r->fingerprint) != 0)
        problem(c, path, "does not match the inventory", r->serial);
    X509_free(x);
    if (r->key_path[0] != '\0' && pqm__pki_path(c->p, r->key_path, path, sizeof(path)) == 0) {
        if (stat(path, &st) != 0)
            problem(c, path, "key file missing", r->serial);
        else if ((st.st_mode & 077) != 0)
            problem(c, path, "key file readable by group or others", r->serial);
    }
    if (r->chain_path[0] != '\0' && pqm__pki_path(c->p, r->chain_path, path, sizeof(path)) == 0 &&
        access(path, R_OK) != 0)
        problem(c, path, "chain file missing", r->serial);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int check_unrecorded(struct check_ctx *c)
{
    char issued[PATH_MAX], path[PATH_MAX];
    if (pqm__pki_path(c->p, PQM_D_ISSUED, issued, sizeof(issued)) != 0)
        return pqm__err_set(&c->p->err, "path too long");
    DIR *d = opendir(issued);
    if (d == NULL)
        return pqm__err_set(&c->p->err, "%s: %s", issued, strerror(errno));
    qsort(c->recorded.v, c->recorded.n, sizeof(char *), cmp_str);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!ends_with(de->d_name, ".crt.pem") ||
            pqm__path_join(path, sizeof(path), issued, de->d_name) != 0)
            continue;
        const char *key = path;
        if (bsearch(&key, c->recorded.v, c->recorded.n, sizeof(char *), cmp_str) == NULL)
            problem(c, path, "not in the inventory", NULL);
    }
    closedir(d);
    return 0;
}

int pqm_pki_check(struct pqm_pki *p, void (*cb)(const char *line, void *arg), void *arg)
{
    struct check_ctx c = {.p = p, .problem = cb, .arg = arg};
    int rc = -1, held = p->lock_fd >= 0;
    if (pqm__pki_lock(p) != 0)
        return -1;
    if (pqm__store_foreach(p->store, PQM_STORE_LIVE, check_record, &c, &p->err) != 0)
        goto cleanup;
    if (check_unrecorded(&c) != 0)
        goto cleanup;
    rc = c.problems;
cleanup:
    pqm__strlist_free(&c.recorded);
    if (!held)
        pqm__pki_unlock(p); /* a lock the caller held stays held */
    return rc;
}
