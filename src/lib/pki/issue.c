#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
/* Issuing server and client certificates from a PKI directory. */
#include "pki/pki_internal.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "pki/alg.h"
#include "pki/certbuild.h"
#include "pki/keyfile.h"
#include "pki/names.h"
#include "pki/profile.h"
#include "util/digest.h"
#include "util/fsutil.h"
#include "util/net.h"
#include "util/timeutil.h"

#define PQM_MAX_SANS 64
#define PQM_MAX_LEAF_DAYS 36500
#define PQM_MAX_COUNT 1000000
/* Certificates written and recorded per transaction: bounds memory for large batches. */
#define PQM_ISSUE_CHUNK 1000
/* Certificates signed per part of a transaction: one part is recorded and published
 * while the next is signed, and the last part, which nothing overlaps, stays short. */
#define PQM_ISSUE_PART 128
#define PQM_ISSUE_LAST_PART 32
#define PQM_CSR_MAX (256 * 1024)
#define PQM_RSA_MIN_BITS 2048
#define PQM_MAX_SIGNERS 16

struct pqm_issue {
    struct pqm_err err;
    enum pqm_profile profile;
    char name[PQM_NAME_MAX + 1];
    char *dns[PQM_MAX_SANS];
    size_t ndns;
    char *ip[PQM_MAX_SANS];
    size_t nip;
    char spiffe[PQM_SPIFFE_MAX + 1];
    int64_t lifetime; /* seconds; 0: the PKI's profile's */
    const struct pqm_alg *alg;
    char out_prefix[PATH_MAX];
    struct pqm_secret key_pass;
    int no_key_pass;
    struct pqm_secret p12_pass;
    unsigned char *csr;
    size_t csrlen;
    unsigned count;
};

struct pqm_issue *pqm_issue_new(enum pqm_profile profile)
{
    if (profile != PQM_PROFILE_SERVER && profile != PQM_PROFILE_CLIENT)
        return NULL;
    struct pqm_issue *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->profile = profile;
    r->count = 1;
    return r;
}

void pqm_issue_free(struct pqm_issue *r)
{
    if (r == NULL)
        return;
    pqm__strv_free(r->dns, r->ndns);
    pqm__strv_free(r->ip, r->nip);
    pqm__secret_clear(&r->key_pass);
    pqm__secret_clear(&r->p12_pass);
    free(r->csr);
    free(r);
}

const char *pqm_issue_error(const struct pqm_issue *r)
{
    return pqm__err_str(&r->err);
}

int pqm_issue_set_name(struct pqm_issue *r, const char *name)
{
    if (pqm__name_valid(name, &r->err) != 0)
        return -1;
    memcpy(r->name, name, strlen(name) + 1);
    return 0;
}

int pqm_issue_add_dns(struct pqm_issue *r, const char *dns)
{
    if (pqm__dns_valid(dns, &r->err) != 0)
        return pqm__err_copy(&r->err, "--dns", pqm__err_str(&r->err));
    return pqm__strv_push(r->dns, &r->ndns, PQM_MAX_SANS, dns, "DNS names", &r->err);
}

int pqm_issue_add_ip(struct pqm_issue *r, const char *ip)
{
    unsigned char buf[16];
    if (pqm__ip_parse(ip, buf) < 0)
        return pqm__err_set(&r->err, "--ip '%s' is not an IPv4 or IPv6 address", ip);
    return pqm__strv_push(r->ip, &r->nip, PQM_MAX_SANS, ip, "IP addresses", &r->err);
}

int pqm_issue_set_spiffe_id(struct pqm_issue *r, const char *uri)
{
    char td[256];
    if (pqm__spiffe_parse(uri, td, sizeof(td), &r->err) != 0)
        return pqm__err_copy(&r->err, "--spiffe-id", pqm__err_str(&r->err));
    memcpy(r->spiffe, uri, strlen(uri) + 1);
    return 0;
}

int pqm_issue_set_days(struct pqm_issue *r, int days)
{
    if (days < 1 || days > PQM_MAX_LEAF_DAYS)
        return pqm__err_set(&r->err, "--days must be 1 to %d", PQM_MAX_LEAF_DAYS);
    r->lifetime = (int64_t)days * PQM_DAY;
    return 0;
}

int pqm_issue_set_lifetime(struct pqm_issue *r, int64_t seconds)
{
    if (seconds < PQM_LIFETIME_MIN || seconds > PQM_LIFETIME_MAX)
        return pqm__err_set(&r->err, "the lifetime must be 1h to %dd", PQM_MAX_LEAF_DAYS);
    r->lifetime = seconds;
    return 0;
}

int pqm__ca_holds(const X509 *ca, const char *label, int64_t not_after, int64_t lifetime,
                  struct pqm_err *e)
{
    int64_t ca_end = 0;
    if (pqm__asn1_time_to_epoch(X509_get0_notAfter(ca), &ca_end) != 0)
        return pqm__err_set(e, "the %s's validity cannot be read", label);
    if (not_after <= ca_end)
        return 0;
    char when[32], life[32];
    pqm__format_time(ca_end, when, sizeof(when));
    pqm__format_duration(lifetime, life, sizeof(life));
    return pqm__err_set(e, "a lifetime of %s would outlive the %s, which expires %s", life,
                        label, when);
}

int pqm_issue_set_alg(struct pqm_issue *r, const char *alg)
{
    const struct pqm_alg *a = pqm__alg_find(alg);
    if (a == NULL)
        return pqm__err_set(&r->err, "unknown algorithm '%s' (one of: %s)", alg,
                            pqm__alg_names());
    r->alg = a;
    return 0;
}

/* Paths are recorded in the inventory and shown as JSON: UTF-8 only. */
static int utf8_valid(const unsigned char *s)
{
    while (*s != '\0') {
        int n = *s < 0x80 ? 0 : (*s & 0xe0) == 0xc0 ? 1 : (*s & 0xf0) == 0xe0 ? 2
                : (*s & 0xf8) == 0xf0 ? 3 : -1;
        if (n < 0 || (n == 1 && *s < 0xc2))
            return 0;
        s++;
        for (int i = 0; i < n; i++, s++)
            if ((*s & 0xc0) != 0x80)
                return 0;
    }
    return 1;
}

int pqm_issue_set_out_prefix(struct pqm_issue *r, const char *prefix)
{
    if (prefix[0] == '\0' || strlen(prefix) + 16 >= sizeof(r->out_prefix))
        return pqm__err_set(&r->err, "--out: empty or too long");
    if (!utf8_valid((const unsigned char *)prefix))
        return pqm__err_set(&r->err, "--out: the path is not valid UTF-8");
    const char *last = strrchr(prefix, '/');
    last = last != NULL ? last + 1 : prefix;
    if (last[0] == '\0' || strcmp(last, ".") == 0 || strcmp(last, "..") == 0)
        return pqm__err_set(&r->err, "--out '%s': give DIR/NAME, the files are NAME.crt.pem ...",
                            prefix);
    memcpy(r->out_prefix, prefix, strlen(prefix) + 1);
    return 0;
}

int pqm_issue_set_key_passphrase(struct pqm_issue *r, const char *pass, size_t len)
{
    r->no_key_pass = 0;
    return pqm__secret_set(&r->key_pass, pass, len, &r->err);
}

void pqm_issue_insecure_no_key_passphrase(struct pqm_issue *r)
{
    pqm__secret_clear(&r->key_pass);
    r->no_key_pass = 1;
}

int pqm_issue_set_p12_passphrase(struct pqm_issue *r, const char *pass, size_t len)
{
    return pqm__secret_set(&r->p12_pass, pass, len, &r->err);
}

int pqm_issue_set_csr(struct pqm_issue *r, const unsigned char *data, size_t len)
{
    if (len == 0 || len > PQM_CSR_MAX)
        return pqm__err_set(&r->err, "a CSR must be 1 to %d bytes", PQM_CSR_MAX);
    unsigned char *c = malloc(len);
    if (c == NULL)
        return pqm__err_set(&r->err, "out of memory");
    memcpy(c, data, len);
    free(r->csr);
    r->csr = c;
    r->csrlen = len;
    return 0;
}

int pqm_issue_set_count(struct pqm_issue *r, unsigned count)
{
    if (count < 1 || count > PQM_MAX_COUNT)
        return pqm__err_set(&r->err, "--count must be 1 to %d", PQM_MAX_COUNT);
    r->count = count;
    return 0;
}

/* --- issuing --------------------------------------------------------------------- */

enum { F_CERT, F_KEY, F_CHAIN, F_P12, F_COUNT };

/* One certificate, built in memory, waiting to be recorded and written. Kept small:
 * a batch holds up to PQM_ISSUE_CHUNK of them. */
struct pending {
    char name[PQM_NAME_MAX + 16];
    char *path[F_COUNT];      /* absolute; NULL for a file not written */
    const char *rel[F_COUNT]; /* as recorded: a suffix of path[], "" when none */
    char sha[F_COUNT][PQM_SHA256_HEX]; /* of each file's bytes, computed by the signer */
    char staged[4 * 66];      /* SHA-256 of each staged file, for the inventory */
    struct pqm_filetx tx;     /* its files, staged under temporary names */
    struct pqm_err err;
    int failed;
    GENERAL_NAMES *sans;
    X509_NAME *subject;
    BIGNUM *serial_bn;
    char *cert_pem, *key_pem, *chain_pem;
    size_t cert_len, key_len, chain_len;
    unsigned char *p12;
    int p12_len;
    struct pqm_record_buf rb;
    struct pqm_cert_record rec;
};

static void pending_clear(struct pending *pd)
{
    pqm__filetx_release(&pd->tx);
    pqm__record_buf_free(&pd->rb);
    for (int i = 0; i < F_COUNT; i++)
        free(pd->path[i]);
    GENERAL_NAMES_free(pd->sans);
    X509_NAME_free(pd->subject);
    BN_free(pd->serial_bn);
    free(pd->cert_pem);
    if (pd->key_pem != NULL)
        OPENSSL_cleanse(pd->key_pem, pd->key_len);
    free(pd->key_pem);
    free(pd->chain_pem);
    OPENSSL_free(pd->p12);
    memset(pd, 0, sizeof(*pd));
}

/* What stays the same for every certificate of one request. */
struct issue_ctx {
    struct pqm_pki *p;
    const struct pqm_issue *req;
    struct pqm_ca *ca;
    NAME_CONSTRAINTS *nc;
    EVP_PKEY *csr_key;
    const struct pqm_alg *alg;
    const char *key_pass;
    size_t key_passlen;
    char out_dir[PATH_MAX];    /* absolute directory of the output files */
    char out_base[PATH_MAX];   /* NAME, or the --out prefix's last component */
    int64_t now, not_after;
    int width;
    char name[PQM_NAME_MAX + 1]; /* --name, or the CSR's subject CN */
    char stage_prefix[PATH_MAX]; /* what every staged file's name starts with */
    char *ca_pem;
    size_t ca_pem_len;
    char crl_url[PQM_URL_MAX + 32]; /* the issuing CA's CRL; "" when none is configured */
    unsigned checked; /* certificates 1 to CHECKED had their names checked by check_names */
};

static int digits(unsigned n)
{
    int d = 1;
    while (n >= 10) {
        n /= 10;
        d++;
    }
    return d;
}

/* A path under the PKI directory is recorded relative to it, others absolute. */
static const char *rel_path(const struct pqm_pki *p, const char *abs)
{
    size_t n = strlen(p->dir);
    if (strncmp(abs, p->dir, n) == 0 && abs[n] == '/')
        return abs + n + 1;
    return abs;
}

static const char *const file_ext[F_COUNT] = {".crt.pem", ".key.pem", ".chain.pem", ".p12"};

/* Whether this request writes file F: no key for a CSR, no PKCS#12 unless asked. */
static int writes_file(const struct issue_ctx *c, int f)
{
    return !((f == F_KEY && c->csr_key != NULL) || (f == F_P12 && c->req->p12_pass.buf == NULL));
}

static int set_paths(struct issue_ctx *c, struct pending *pd, const char *base)
{
    for (int i = 0; i < F_COUNT; i++) {
        pd->rel[i] = "";
        if (!writes_file(c, i))
            continue;
        size_t len = strlen(c->out_dir) + strlen(base) + strlen(file_ext[i]) + 2;
        if (len > PATH_MAX)
            return pqm__err_set(&c->p->err, "%s/%s: path too long", c->out_dir, base);
        if ((pd->path[i] = malloc(len)) == NULL)
            return pqm__err_set(&c->p->err, "out of memory");
        snprintf(pd->path[i], len, "%s/%s%s", c->out_dir, base, file_ext[i]);
        pd->rel[i] = rel_path(c->p, pd->path[i]);
    }
    return 0;
}

/* Refuses NAME when the inventory has it (pending or valid) and BASE when one of the
 * files it would write exists. Publishing never replaces a file either; this says so
 * before anything is signed. */
static int check_free(struct issue_ctx *c, const char *name, const char *base)
{
    struct pqm_err *e = &c->p->err;
    int live = pqm__store_name_live(c->p->store, name, e);
    if (live > 0)
        return pqm__err_set(e, "a certificate named '%s' already exists in the inventory", name);
    if (live < 0)
        return -1;
    for (int i = 0; i < F_COUNT; i++) {
        char path[PATH_MAX];
        if (!writes_file(c, i))
            continue;
        if (snprintf(path, sizeof(path), "%s/%s%s", c->out_dir, base, file_ext[i]) >=
            (int)sizeof(path))
            return pqm__err_set(e, "%s/%s: path too long", c->out_dir, base);
        if (access(path, F_OK) == 0)
            return pqm__err_set(e, "%s already exists; refusing to overwrite it", path);
    }
    return 0;
}

/* The public description of PD, for the caller's callback. */
static void issued_of(const struct pending *pd, struct pqm_issued *o)
{
    char *dst[F_COUNT] = {o->cert_path, o->key_path, o->chain_path, o->p12_path};
    memset(o, 0, sizeof(*o));
    snprintf(o->name, sizeof(o->name), "%s", pd->name);
    snprintf(o->serial, sizeof(o->serial), "%s", pd->rb.serial);
    snprintf(o->fingerprint, sizeof(o->fingerprint), "%s", pd->rb.fp);
    for (int i = 0; i < F_COUNT; i++)
        snprintf(dst[i], sizeof(o->cert_path), "%s", pd->path[i] != NULL ? pd->path[i] : "");
    o->not_after = pd->rec.not_after;
}

static int push_gn(GENERAL_NAMES *gens, GENERAL_NAME *gn, struct pqm_err *e)
{
    if (gn == NULL)
        return -1;
    if (sk_GENERAL_NAME_push(gens, gn) <= 0) {
        GENERAL_NAME_free(gn);
        return pqm__err_set(e, "out of memory");
    }
    return 0;
}

static GENERAL_NAMES *build_sans(struct issue_ctx *c, const char *name)
{
    const struct pqm_issue *r = c->req;
    struct pqm_err *e = &c->p->err;
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    if (gens == NULL) {
        pqm__err_set(e, "out of memory");
        return NULL;
    }
    int name_in_dns = 0;
    for (size_t i = 0; i < r->ndns; i++)
        if (strcasecmp(r->dns[i], name) == 0)
            name_in_dns = 1;
    if (r->profile == PQM_PROFILE_SERVER && !name_in_dns &&
        push_gn(gens, pqm__gn_dns(name, e), e) != 0)
        goto fail;
    for (size_t i = 0; i < r->ndns; i++)
        if (push_gn(gens, pqm__gn_dns(r->dns[i], e), e) != 0)
            goto fail;
    for (size_t i = 0; i < r->nip; i++)
        if (push_gn(gens, pqm__gn_ip(r->ip[i], e), e) != 0)
            goto fail;
    if (r->spiffe[0] != '\0' && push_gn(gens, pqm__gn_uri(r->spiffe, e), e) != 0)
        goto fail;
    return gens;
fail:
    GENERAL_NAMES_free(gens);
    return NULL;
}

/* Certificate and chain PEM from the DER made once; the CA's PEM is made once per
 * request (issuing is dominated by the signature; nothing else should be repeated). */
static int encode_certs(const struct issue_ctx *c, struct pending *pd, const unsigned char *der,
                        size_t derlen)
{
    struct pqm_err *e = &pd->err;
    if (pqm__pem_encode("CERTIFICATE", der, derlen, &pd->cert_pem, &pd->cert_len, e) != 0)
        return -1;
    pd->chain_len = pd->cert_len + c->ca_pem_len;
    pd->chain_pem = malloc(pd->chain_len + 1);
    if (pd->chain_pem == NULL)
        return pqm__err_set(e, "out of memory");
    memcpy(pd->chain_pem, pd->cert_pem, pd->cert_len);
    memcpy(pd->chain_pem + pd->cert_len, c->ca_pem, c->ca_pem_len + 1);
    return 0;
}

static int encode_outputs(const struct issue_ctx *c, struct pending *pd, X509 *x, EVP_PKEY *key)
{
    struct pqm_err *e = &pd->err;
    if (c->csr_key == NULL &&
        pqm__key_to_pem(key, c->key_pass, c->key_passlen, &pd->key_pem, &pd->key_len, e) != 0)
        return -1;
    if (c->req->p12_pass.buf == NULL)
        return 0;
    return pqm__p12_der(c->req->p12_pass.buf, pd->name, key, x, c->ca->cert, c->p->root,
                        &pd->p12, &pd->p12_len, e);
}

int pqm__pki_new_serial(struct pqm_pki *p, BIGNUM **out)
{
    char hex[64];
    for (int tries = 0; tries < 8; tries++) {
        BIGNUM *bn = pqm__serial_new(&p->err);
        if (bn == NULL)
            return -1;
        int used = pqm__serial_hex(bn, hex, sizeof(hex)) == 0
                       ? pqm__store_serial_used(p->store, hex, &p->err)
                       : -1;
        if (used == 0) {
            *out = bn;
            return 0;
        }
        BN_free(bn);
        if (used < 0)
            return -1;
    }
    return pqm__err_set(&p->err, "cannot draw an unused serial number");
}

/* The name of certificate number INDEX into NAME (PQM_NAME_MAX + 16 bytes) and the
 * prefix of its files into BASE (PATH_MAX bytes), checked as names. */
static int number_name(struct issue_ctx *c, unsigned index, char *name, char *base)
{
    const struct pqm_issue *r = c->req;
    struct pqm_err *e = &c->p->err;
    if (r->count > 1) {
        if (strlen(c->name) + 1 + (size_t)c->width > PQM_NAME_MAX)
            return pqm__err_set(e, "--name '%s' with --count %u gives names longer than %d "
                                   "characters",
                                c->name, r->count, PQM_NAME_MAX);
        /* A server's name is a DNS name: the number goes into its first label
         * (node.example.com -> node-0001.example.com), so it stays under the domain. */
        const char *rest = r->profile == PQM_PROFILE_SERVER ? strchr(c->name, '.') : NULL;
        int head = rest != NULL ? (int)(rest - c->name) : (int)strlen(c->name);
        snprintf(name, PQM_NAME_MAX + 16, "%.*s-%0*u%s", head, c->name, c->width, index,
                 rest != NULL ? rest : "");
        if (r->out_prefix[0] != '\0')
            snprintf(base, PATH_MAX, "%s-%0*u", c->out_base, c->width, index);
        else
            snprintf(base, PATH_MAX, "%s", name);
    } else {
        snprintf(name, PQM_NAME_MAX + 16, "%s", c->name);
        snprintf(base, PATH_MAX, "%s", c->out_base);
    }
    if (pqm__name_valid(name, e) != 0)
        return -1;
    if (r->profile == PQM_PROFILE_SERVER && pqm__dns_valid(name, e) != 0)
        return pqm__err_copy(e, "a server certificate's --name is its DNS name", pqm__err_str(e));
    return 0;
}

/* Checks the names and files of certificates FIRST to LAST (inclusive) in one read
 * transaction, so that a batch is refused whole for a name that is taken. */
static int check_names(struct issue_ctx *c, unsigned first, unsigned last)
{
    struct pqm_pki *p = c->p;
    char name[PQM_NAME_MAX + 16], base[PATH_MAX];
    if (pqm__store_begin_read(p->store, &p->err) != 0)
        return -1;
    for (unsigned i = first; i <= last; i++)
        if (number_name(c, i, name, base) != 0 || check_free(c, name, base) != 0) {
            pqm__store_rollback(p->store);
            return -1;
        }
    return pqm__store_commit(p->store, &p->err);
}

/* Everything about certificate INDEX that needs the inventory or the file system:
 * its name, paths, SANs (checked against the name constraints), subject and serial.
 * The name and files are checked here unless check_names did it already. */
static int plan_one(struct issue_ctx *c, unsigned index, struct pending *pd)
{
    struct pqm_pki *p = c->p;
    struct pqm_err *e = &p->err;
    char base[PATH_MAX];

    if (number_name(c, index, pd->name, base) != 0)
        return -1;
    const char *name = pd->name;
    if (index > c->checked && check_free(c, name, base) != 0)
        return -1;
    if (set_paths(c, pd, base) != 0)
        return -1;
    pd->sans = build_sans(c, name);
    if (pd->sans == NULL)
        return -1;
    /* Refused here, before anything is signed, with the constraint named. */
    if (pqm__nc_precheck(c->nc, pd->sans, c->ca->label, e) != 0)
        return -1;
    pd->subject = pqm__name_new(name, p->org, e);
    if (pd->subject == NULL)
        return -1;
    return pqm__pki_new_serial(c->p, &pd->serial_bn);
}

/* The SHA-256 of each file PD will write, computed where it was signed: recovery
 * recognises the files by it. The chain starts with the certificate, so the
 * certificate's bytes are hashed once for both. */
static int hash_outputs(const struct issue_ctx *c, struct pending *pd)
{
    struct pqm_err *e = &pd->err;
    if (pqm__sha256_hex_prefix(pd->cert_pem, pd->cert_len, c->ca_pem, c->ca_pem_len,
                               pd->sha[F_CERT], pd->sha[F_CHAIN]) != 0 ||
        (pd->key_pem != NULL && pqm__sha256_hex(pd->key_pem, pd->key_len, pd->sha[F_KEY]) != 0) ||
        (pd->p12 != NULL && pqm__sha256_hex(pd->p12, (size_t)pd->p12_len, pd->sha[F_P12]) != 0))
        return pqm__err_set(e, "cannot hash the certificate's files");
    return 0;
}

/* Writes PD's files under temporary names (invisible until published) and drops the
 * encodings. A crash before they are recorded leaves only temporary files, which
 * recovery removes. The calling thread writes them all, while the signers sign the
 * next part: creating files in one directory from several threads at once makes them
 * wait on the directory's lock, spinning. */
static int stage_one(struct pending *pd)
{
    struct pqm_filetx *tx = &pd->tx;
    struct pqm_err *e = &pd->err;
    if (pqm__filetx_stage_hashed(tx, pd->path[F_CERT], pd->cert_pem, pd->cert_len, 0644,
                                 pd->sha[F_CERT], e) != 0 ||
        pqm__filetx_stage_hashed(tx, pd->path[F_CHAIN], pd->chain_pem, pd->chain_len, 0644,
                                 pd->sha[F_CHAIN], e) != 0)
        return -1;
    if (pd->key_pem != NULL && pqm__filetx_stage_hashed(tx, pd->path[F_KEY], pd->key_pem,
                                                        pd->key_len, 0600, pd->sha[F_KEY], e) != 0)
        return -1;
    if (pd->p12 != NULL &&
        pqm__filetx_stage_hashed(tx, pd->path[F_P12], pd->p12, (size_t)pd->p12_len, 0600,
                                 pd->sha[F_P12], e) != 0)
        return -1;
    free(pd->cert_pem);
    free(pd->chain_pem);
    if (pd->key_pem != NULL)
        OPENSSL_cleanse(pd->key_pem, pd->key_len);
    free(pd->key_pem);
    OPENSSL_free(pd->p12);
    pd->cert_pem = pd->chain_pem = pd->key_pem = NULL;
    pd->p12 = NULL;
    /* In the order recovery reads them: cert, key, chain, p12. */
    pqm__filetx_identities(tx, pd->path, F_COUNT, pd->staged, sizeof(pd->staged));
    return 0;
}

/* Plans N certificates inside one read transaction: the inventory is locked and
 * unlocked once, not twice per certificate. */
static int plan_all(struct issue_ctx *c, struct pending *pds, size_t n, unsigned first)
{
    struct pqm_pki *p = c->p;
    if (pqm__store_begin_read(p->store, &p->err) != 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (plan_one(c, first + (unsigned)i, &pds[i]) != 0) {
            pqm__store_rollback(p->store);
            return -1;
        }
    return pqm__store_commit(p->store, &p->err);
}

/* The work of one planned certificate: key, signature, encodings and their hashes.
 * Touches nothing shared but read-only state, so several run at once. Errors go to PD. */
static int sign_one(const struct issue_ctx *c, struct pending *pd)
{
    struct pqm_err *e = &pd->err;
    const struct pqm_issue *r = c->req;
    EVP_PKEY *own_key = NULL;
    X509 *x = NULL;
    unsigned char *der = NULL;
    char fp[65];
    int rc = -1;

    EVP_PKEY *key = c->csr_key;
    if (key == NULL) {
        own_key = pqm__alg_keygen(c->alg, e);
        if (own_key == NULL)
            goto cleanup;
        key = own_key;
    }
    struct pqm_cert_spec spec = {
        .kind = r->profile == PQM_PROFILE_SERVER ? PQM_KIND_SERVER : PQM_KIND_CLIENT,
        .subject = pd->subject,
        .subject_key = key,
        .issuer = c->ca->cert,
        .issuer_key = c->ca->pkey,
        .serial = pd->serial_bn,
        .not_before = c->now - PQM_BACKDATE_SECONDS,
        .not_after = c->not_after,
        .path_len = -1,
        .sans = pd->sans,
        .crl_url = c->crl_url[0] != '\0' ? c->crl_url : NULL,
        .ocsp_url = c->p->ocsp_url[0] != '\0' ? c->p->ocsp_url : NULL,
        /* Only PKCS#12 (which matches the key to the certificate) reads the key back. */
        .pubkey_only = r->p12_pass.buf == NULL,
    };
    x = pqm__cert_build(&spec, e);
    if (x == NULL)
        goto cleanup;
    /* The same checks a verifier makes, on the real certificate: its SANs and subject,
     * and its subject CN where that looks like a host name. */
    if (c->nc != NULL) {
        int v = NAME_CONSTRAINTS_check(x, c->nc);
        if (v == X509_V_OK)
            v = NAME_CONSTRAINTS_check_CN(x, c->nc);
        ENSURE(v == X509_V_OK, e, "'%s' violates the %s name constraints: %s", pd->name,
               c->ca->label, X509_verify_cert_error_string(v));
    }
    int derlen = i2d_X509(x, &der);
    GUARD_OSSL(derlen > 0, e, "cannot encode the certificate");
    ENSURE(pqm__sha256_hex(der, (size_t)derlen, fp) == 0, e, "cannot hash the certificate");
    GUARD(pqm__record_from_cert(x, key, c->ca->serial, fp, &pd->rec, &pd->rb, e));
    GUARD(encode_certs(c, pd, der, (size_t)derlen));
    GUARD(encode_outputs(c, pd, x, key));
    GUARD(hash_outputs(c, pd));
    struct pqm_cert_record *rec = &pd->rec;
    rec->name = pd->name;
    rec->kind = r->profile == PQM_PROFILE_SERVER ? "server" : "client";
    rec->profile = rec->kind;
    rec->status = "pending";
    rec->cert_path = pd->rel[F_CERT];
    rec->key_path = pd->rel[F_KEY];
    rec->chain_path = pd->rel[F_CHAIN];
    rec->p12_path = pd->rel[F_P12];
    rec->created_at = c->now;
    rc = 0;
cleanup:
    EVP_PKEY_free(own_key);
    X509_free(x);
    OPENSSL_free(der);
    return rc;
}

/* The signers of one part. They take its certificates in turn; the thread that started
 * them may record the previous part and plan the next meanwhile, then joins in
 * (sign_wait). */
struct signer {
    const struct issue_ctx *c;
    struct pending *pds;
    size_t n;
    atomic_size_t next;
    atomic_int failed;
    pthread_t tids[PQM_MAX_SIGNERS];
    size_t started;
};

static void *signer_main(void *arg)
{
    struct signer *s = arg;
    for (;;) {
        size_t i = atomic_fetch_add(&s->next, 1);
        if (i >= s->n || atomic_load(&s->failed))
            return NULL;
        if (sign_one(s->c, &s->pds[i]) != 0) {
            s->pds[i].failed = 1;
            atomic_store(&s->failed, 1);
        }
    }
}

/* Starts signing the N planned certificates of PDS on up to one thread per core and
 * returns at once: the signatures are independent, and a batch should take the time of
 * its cryptography divided by the cores. With OVERLAP the caller has other work to do
 * meanwhile, so every core gets a signer; without, the caller is the last one. A
 * thread that cannot be started leaves its share to the caller. */
static void sign_start(struct signer *s, const struct issue_ctx *c, struct pending *pds,
                       size_t n, int overlap)
{
    s->c = c;
    s->pds = pds;
    s->n = n;
    s->started = 0;
    atomic_init(&s->next, 0);
    atomic_init(&s->failed, 0);
    long cores = pqm__usable_cores();
    size_t want = cores > PQM_MAX_SIGNERS ? PQM_MAX_SIGNERS : (size_t)cores;
    if (want > n)
        want = n;
    if (!overlap)
        want--;
    for (; s->started < want; s->started++)
        if (pthread_create(&s->tids[s->started], NULL, signer_main, s) != 0)
            break;
}

/* The certificates not started yet are left unsigned. */
static void sign_stop(struct signer *s)
{
    atomic_store(&s->failed, 1);
}

/* Signs what is left on this thread, waits for the others, and returns the first
 * failure's error in P. */
static int sign_wait(struct signer *s, struct pqm_pki *p)
{
    signer_main(s);
    for (size_t i = 0; i < s->started; i++)
        pthread_join(s->tids[i], NULL);
    s->started = 0;
    for (size_t i = 0; i < s->n; i++)
        if (s->pds[i].failed)
            return pqm__err_copy(&p->err, s->pds[i].name, pqm__err_str(&s->pds[i].err));
    return atomic_load(&s->failed) ? -1 : 0;
}

/* Marks the transaction's N certificates valid and drops its staging record, in one
 * SQLite transaction. */
static int set_status_all(struct pqm_pki *p, size_t n, int64_t staging)
{
    if (pqm__store_begin(p->store, &p->err) != 0)
        return -1;
    /* Under the lock, after recovery, the transaction's rows are the only pending ones. */
    if (pqm__store_mark_all(p->store, "pending", "valid", n, &p->err) != 0 ||
        pqm__store_staging_del(p->store, staging, &p->err) != 0) {
        pqm__store_rollback(p->store);
        return -1;
    }
    return pqm__store_commit(p->store, &p->err);
}

/* Before any file is staged: where, and under which name prefix, so that recovery can
 * sweep temporary files that no row names yet (a crash while signing). */
static int record_staging(struct issue_ctx *c, int64_t *id)
{
    struct pqm_pki *p = c->p;
    if (pqm__store_begin(p->store, &p->err) != 0)
        return -1;
    if (pqm__store_staging_add(p->store, c->out_dir, c->stage_prefix, id, &p->err) != 0) {
        pqm__store_rollback(p->store);
        return -1;
    }
    return pqm__store_commit(p->store, &p->err);
}

/* Writes a signed part's files under temporary names, records the part as pending (the
 * intent, with the identity of every staged file), then publishes its staged files and
 * makes them durable. A crash
 * at any point leaves pending rows that recovery rolls back (removing what was
 * published, and only that), or temporary files that recovery sweeps; the transaction
 * becomes valid (settle) only once all of it is on disk.
 *
 * A large part renames first and syncs the file system once afterwards: renaming after
 * a sync waits for the directory blocks still under write-back, which on ext4 costs far
 * more than the sync itself. A small one syncs each file and directory. */
static int record_part(struct pqm_pki *p, struct pending *pds, size_t n)
{
    int batch = n * 3 > PQM_SYNCFS_THRESHOLD;

    for (size_t i = 0; i < n; i++)
        if (stage_one(&pds[i]) != 0)
            return pqm__err_copy(&p->err, pds[i].name, pqm__err_str(&pds[i].err));
    if (pqm__store_begin(p->store, &p->err) != 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (pqm__store_insert_staged(p->store, &pds[i].rec, pds[i].staged, &p->err) != 0) {
            pqm__store_rollback(p->store);
            return -1;
        }
    if (pqm__store_commit(p->store, &p->err) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (batch) {
            if (pqm__filetx_rename(&pds[i].tx, &p->err) != 0)
                return -1;
        } else if (pqm__filetx_sync(&pds[i].tx, &p->err) != 0 ||
                   pqm__filetx_publish(&pds[i].tx, &p->err) != 0) {
            return -1;
        }
    }
    return batch ? pqm__syncfs_of(pds[0].path[F_CERT], &p->err) : 0;
}

/* After a failure: roll back what this command left, keeping its error message. */
static void abandon(struct pqm_pki *p)
{
    struct pqm_err saved = p->err;
    pqm__pki_recover(p);
    p->err = saved;
}

/* The CSR's subject CN, read from the entry itself: a CN longer than a name may be, or
 * with an embedded NUL, is refused rather than cut to something else. */
static int csr_common_name(X509_REQ *req, char *out, size_t outlen, struct pqm_err *e)
{
    const X509_NAME *subject = X509_REQ_get_subject_name(req);
    int pos = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    if (pos < 0)
        return pqm__err_set(e, "the CSR has no subject CN: give --name");
    if (X509_NAME_get_index_by_NID(subject, NID_commonName, pos) >= 0)
        return pqm__err_set(e, "the CSR has more than one subject CN: give --name");
    const ASN1_STRING *cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, pos));
    int type = ASN1_STRING_type(cn), len = ASN1_STRING_length(cn);
    const unsigned char *d = ASN1_STRING_get0_data(cn);
    if (type != V_ASN1_UTF8STRING && type != V_ASN1_PRINTABLESTRING && type != V_ASN1_IA5STRING)
        return pqm__err_set(e, "the CSR's subject CN is not a text string: give --name");
    if (len <= 0 || (size_t)len >= outlen || memchr(d, '\0', (size_t)len) != NULL)
        return pqm__err_set(e, "the CSR's subject CN is empty, longer than %zu characters or "
                               "holds a NUL: give --name",
                            outlen - 1);
    memcpy(out, d, (size_t)len);
    out[len] = '\0';
    return pqm__name_valid(out, e);
}

static int load_csr(struct issue_ctx *c)
{
    struct pqm_err *e = &c->p->err;
    const struct pqm_issue *r = c->req;
    BIO *b = BIO_new_mem_buf(r->csr, (int)r->csrlen);
    X509_REQ *req = NULL;
    int rc = -1;
    GUARD_OSSL(b != NULL, e, "out of memory");
    req = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL);
    if (req == NULL) {
        const unsigned char *d = r->csr;
        req = d2i_X509_REQ(NULL, &d, (long)r->csrlen);
    }
    if (req != NULL)
        ERR_clear_error(); /* the PEM attempt's errors must not color a later message */
    GUARD_OSSL(req != NULL, e, "the CSR is not a PEM or DER certificate request");
    EVP_PKEY *pub = X509_REQ_get0_pubkey(req);
    GUARD_OSSL(pub != NULL, e, "the CSR's public key cannot be read");
    GUARD_OSSL(X509_REQ_verify(req, pub) == 1, e,
               "the CSR's signature does not verify with its own public key (tampered or "
               "damaged)");
    if (EVP_PKEY_is_a(pub, "RSA")) {
        ENSURE(EVP_PKEY_get_bits(pub) >= PQM_RSA_MIN_BITS, e,
               "the CSR's RSA key has %d bits; at least %d are required", EVP_PKEY_get_bits(pub),
               PQM_RSA_MIN_BITS);
    } else {
        /* Only the key types pqmtls itself makes (no small or exotic curves). */
        ENSURE(pqm__alg_find(pqm__alg_name_of_key(pub)) != NULL, e,
               "the CSR's key (%s, %d bits) is not one pqmtls accepts (one of: %s; RSA of at "
               "least %d bits)",
               EVP_PKEY_get0_type_name(pub), EVP_PKEY_get_bits(pub), pqm__alg_names(),
               PQM_RSA_MIN_BITS);
    }
    c->csr_key = EVP_PKEY_dup(pub);
    GUARD_OSSL(c->csr_key != NULL, e, "out of memory");
    if (c->name[0] == '\0')
        GUARD(csr_common_name(req, c->name, sizeof(c->name), e));
    rc = 0;
cleanup:
    X509_REQ_free(req);
    BIO_free(b);
    return rc;
}

/* The start shared by the names of every file this request writes in out_dir:
 * "NAME." for one certificate, "NAME-" (or a server name's first label and "-") for a
 * batch. */
static void set_stage_prefix(struct issue_ctx *c)
{
    const struct pqm_issue *r = c->req;
    if (r->count == 1) {
        snprintf(c->stage_prefix, sizeof(c->stage_prefix), "%s.", c->out_base);
        return;
    }
    const char *base = c->out_base;
    int len = (int)strlen(base);
    if (r->out_prefix[0] == '\0' && r->profile == PQM_PROFILE_SERVER && strchr(base, '.'))
        len = (int)(strchr(base, '.') - base);
    snprintf(c->stage_prefix, sizeof(c->stage_prefix), "%.*s-", len, base);
}

static int resolve_output(struct issue_ctx *c)
{
    struct pqm_pki *p = c->p;
    const struct pqm_issue *r = c->req;
    if (r->out_prefix[0] == '\0') {
        if (pqm__pki_path(p, PQM_D_ISSUED, c->out_dir, sizeof(c->out_dir)) != 0)
            return pqm__err_set(&p->err, "path too long");
        snprintf(c->out_base, sizeof(c->out_base), "%s", c->name);
        return 0;
    }
    char d[PATH_MAX], b[PATH_MAX], real[PATH_MAX];
    snprintf(d, sizeof(d), "%s", r->out_prefix);
    snprintf(b, sizeof(b), "%s", r->out_prefix);
    if (realpath(dirname(d), real) == NULL)
        return pqm__err_set(&p->err, "--out %s: directory: %s", r->out_prefix, strerror(errno));
    snprintf(c->out_dir, sizeof(c->out_dir), "%s", real);
    snprintf(c->out_base, sizeof(c->out_base), "%s", basename(b));
    return 0;
}

static int prepare(struct issue_ctx *c)
{
    struct pqm_pki *p = c->p;
    const struct pqm_issue *r = c->req;
    struct pqm_err *e = &p->err;

    if (r->name[0] == '\0' && r->csr == NULL)
        return pqm__err_set(e, "--name is required");
    if (r->count > 1 && r->csr != NULL)
        return pqm__err_set(e, "--count cannot be used with a CSR");
    if (r->profile == PQM_PROFILE_CLIENT && (r->ndns > 0 || r->nip > 0))
        return pqm__err_set(e, "--dns and --ip belong in server certificates: a client "
                               "certificate names its workload with --spiffe-id, which the "
                               "client CA's constraints cover");
    if (r->profile == PQM_PROFILE_SERVER && r->spiffe[0] != '\0')
        return pqm__err_set(e, "--spiffe-id belongs in client certificates");
    if (r->spiffe[0] != '\0' && p->spiffe_td[0] != '\0') {
        char td[256];
        if (pqm__spiffe_parse(r->spiffe, td, sizeof(td), e) != 0)
            return -1;
        if (strcmp(td, p->spiffe_td) != 0)
            return pqm__err_set(e,
                                "--spiffe-id %s is outside this PKI's trust domain '%s' (the "
                                "client intermediate CA permits only URI:%s)",
                                r->spiffe, p->spiffe_td, p->spiffe_td);
    }
    c->alg = r->alg != NULL ? r->alg : pqm__alg_find(p->alg);
    if (c->alg == NULL)
        return pqm__err_set(e, "the inventory names an unknown algorithm '%s'", p->alg);
    /* Never the PKI passphrase by default: a service must be able to read its own key
     * without holding the secret that protects the CAs (docs/decisions.md). */
    if (r->key_pass.buf != NULL) {
        c->key_pass = r->key_pass.buf;
        c->key_passlen = r->key_pass.len;
    }
    if (pqm__pki_load_ca(p, c->ca) != 0)
        return -1;
    if (pqm__pki_load_root(p) != 0)
        return -1;
    if (pqm__pki_crl_url_for(p->crl_url, c->ca->crt, c->crl_url, sizeof(c->crl_url)) != 0)
        return pqm__err_set(e, "the PKI's CRL URL is too long");
    /* Fill the CA certificate's extension cache now, before signers share it. */
    X509_check_purpose(c->ca->cert, -1, 0);
    int crit = 0;
    c->nc = X509_get_ext_d2i(c->ca->cert, NID_name_constraints, &crit, NULL);
    if (c->nc == NULL && crit != -1)
        return pqm__err_ossl(e, "the %s's name constraints cannot be read", c->ca->label);
    int64_t lifetime = r->lifetime;
    if (lifetime == 0) {
        struct pqm_lifetimes lt;
        if (pqm__profile_load(p->store, &lt, e) != 0)
            return -1;
        lifetime = lt.leaf_lifetime;
    }
    c->now = (int64_t)time(NULL);
    c->not_after = c->now + lifetime;
    if (pqm__ca_holds(c->ca->cert, c->ca->label, c->not_after, lifetime, e) != 0)
        return -1;
    if (pqm__certs_to_pem(&c->ca->cert, 1, &c->ca_pem, &c->ca_pem_len, e) != 0)
        return -1;
    c->width = digits(r->count) < 4 ? 4 : digits(r->count);
    snprintf(c->name, sizeof(c->name), "%s", r->name);
    if (r->csr != NULL && load_csr(c) != 0)
        return -1;
    if (resolve_output(c) != 0)
        return -1;
    set_stage_prefix(c);
    return 0;
}

/* The size of the part of a transaction of N that starts at AT: PQM_ISSUE_PART, except
 * at the end, where a part of PQM_ISSUE_LAST_PART comes last. Nothing overlaps the last
 * part's recording, so it is kept short; it still signs for long enough to cover the
 * recording of the part before it. */
static size_t part_len(size_t n, size_t at)
{
    size_t left = n - at;
    if (left <= 2 * PQM_ISSUE_LAST_PART)
        return left;
    if (left <= PQM_ISSUE_PART + PQM_ISSUE_LAST_PART)
        return left - PQM_ISSUE_LAST_PART;
    return PQM_ISSUE_PART;
}

/* Issues the N certificates numbered from FIRST + 1 as one transaction: all valid, or
 * (after a failure, once recovered) none. Signing goes part by part: while one part is
 * signed, the calling thread records and publishes the part before and plans the part
 * after, then signs beside the others. */
static int issue_transaction(struct issue_ctx *c, struct pending *pds, size_t n, unsigned first)
{
    struct pqm_pki *p = c->p;
    const struct pqm_issue *r = c->req;
    int64_t staging = -1;
    if (record_staging(c, &staging) != 0)
        return -1;
    if (plan_all(c, pds, part_len(n, 0), first + 1) != 0)
        goto fail;
    size_t recorded = 0;
    for (size_t at = 0; at < n;) {
        size_t now = part_len(n, at), next = at + now < n ? part_len(n, at + now) : 0;
        struct signer s;
        sign_start(&s, c, pds + at, now, recorded < at || next > 0);
        int other = 0;
        if (first == 0 && at == 0 && r->count > now) /* the whole request, once */
            other = check_names(c, (unsigned)now + 1, r->count);
        if (other == 0 && first == 0 && at == 0)
            c->checked = r->count;
        if (other == 0 && recorded < at)
            other = record_part(p, pds + recorded, at - recorded);
        recorded = at;
        if (other == 0 && next > 0)
            other = plan_all(c, pds + at + now, next, first + (unsigned)(at + now) + 1);
        if (other != 0)
            sign_stop(&s);
        struct pqm_err why = p->err;
        int signed_ok = sign_wait(&s, p);
        if (other != 0 || signed_ok != 0) {
            if (other != 0)
                p->err = why;
            goto fail;
        }
        at += now;
    }
    if (record_part(p, pds + recorded, n - recorded) == 0 && set_status_all(p, n, staging) == 0)
        return 0;
fail:
    /* Recovery first: it sweeps the temporary files by the staging record. Removing
     * them before would free names (and inodes) for others to take meanwhile. */
    abandon(p);
    return -1;
}

int pqm_pki_issue(struct pqm_pki *p, const struct pqm_issue *req, pqm_issued_cb cb, void *arg)
{
    struct issue_ctx c = {.p = p, .req = req};
    struct pending *pds = NULL;
    size_t chunk = req->count < PQM_ISSUE_CHUNK ? req->count : PQM_ISSUE_CHUNK;
    int rc = -1;
    pqm__err_clear(&p->err);

    c.ca = req->profile == PQM_PROFILE_SERVER ? &p->server_ca : &p->client_ca;
    GUARD(pqm__pki_lock(p));
    GUARD(prepare(&c));
    pds = calloc(chunk, sizeof(*pds));
    ENSURE(pds != NULL, &p->err, "out of memory");
    for (unsigned done = 0; done < req->count;) {
        size_t n = req->count - done < chunk ? req->count - done : chunk;
        GUARD(issue_transaction(&c, pds, n, done));
        for (size_t i = 0; i < n && cb != NULL; i++) {
            struct pqm_issued o;
            issued_of(&pds[i], &o);
            if (cb(&o, arg) != 0)
                break;
        }
        for (size_t i = 0; i < n; i++)
            pending_clear(&pds[i]);
        done += (unsigned)n;
    }
    rc = 0;
cleanup:
    for (size_t i = 0; pds != NULL && i < chunk; i++)
        pending_clear(&pds[i]);
    free(pds);
    NAME_CONSTRAINTS_free(c.nc);
    EVP_PKEY_free(c.csr_key);
    free(c.ca_pem);
    pqm__pki_unlock(p);
    return rc;
}
