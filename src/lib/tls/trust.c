/* Peer certificate verification shared by the gateway and the client (see trust.h). */
#include "tls/trust.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "pki/crlbuild.h"
#include "pki/pemfile.h"
#include "util/timeutil.h"

static void verdict(struct pqm_verdict *v, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void verdict(struct pqm_verdict *v, const char *code, const char *fmt, ...)
{
    if (v == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->reason, sizeof(v->reason), fmt, ap);
    va_end(ap);
    v->code = code;
}

void pqm__name_text(const X509_NAME *name, char *out, size_t outlen)
{
    out[0] = '\0';
    BIO *b = BIO_new(BIO_s_mem());
    if (b == NULL)
        return;
    if (X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) >= 0) {
        int n = BIO_read(b, out, (int)outlen - 1);
        out[n > 0 ? n : 0] = '\0';
    }
    BIO_free(b);
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
}

static void cert_who(X509 *x, const char *role, char *out, size_t outlen)
{
    if (x == NULL) {
        snprintf(out, outlen, "the %s certificate", role);
        return;
    }
    char subject[300];
    pqm__name_text(X509_get_subject_name(x), subject, sizeof(subject));
    snprintf(out, outlen, "'%s'", subject);
}

static const char *verify_code(int err)
{
    switch (err) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
        return "expired";
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return "not_yet_valid";
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_CERT_UNTRUSTED:
    case X509_V_ERR_CERT_CHAIN_TOO_LONG:
        return "unknown_ca";
    case X509_V_ERR_INVALID_PURPOSE:
        return "wrong_eku";
    case X509_V_ERR_PERMITTED_VIOLATION:
    case X509_V_ERR_EXCLUDED_VIOLATION:
    case X509_V_ERR_UNSUPPORTED_NAME_SYNTAX:
        return "name_constraints";
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
        return "name_mismatch";
    case X509_V_ERR_CERT_REVOKED:
        return "revoked";
    case X509_V_ERR_UNABLE_TO_GET_CRL:
        return "crl_missing";
    case X509_V_ERR_CRL_HAS_EXPIRED:
        return "crl_expired";
    default:
        return "bad_certificate";
    }
}

static const char *role_of(const struct pqm_trust *t)
{
    return t->purpose == X509_PURPOSE_SSL_CLIENT ? "client" : "server";
}

/* OpenSSL's purpose check lets a leaf without any EKU pass; here the purpose's EKU must
 * be stated. */
static int check_eku(const struct pqm_trust *t, X509 *leaf, struct pqm_verdict *v)
{
    uint32_t want = t->purpose == X509_PURPOSE_SSL_CLIENT ? XKU_SSL_CLIENT : XKU_SSL_SERVER;
    const char *name = t->purpose == X509_PURPOSE_SSL_CLIENT ? "clientAuth" : "serverAuth";
    char who[320];
    cert_who(leaf, role_of(t), who, sizeof(who));
    if ((X509_get_extension_flags(leaf) & EXFLAG_XKUSAGE) == 0) {
        verdict(v, "wrong_eku", "%s has no extended key usage; %s is required", who, name);
        return -1;
    }
    if ((X509_get_extended_key_usage(leaf) & want) == 0) {
        verdict(v, "wrong_eku", "%s lacks extended key usage %s", who, name);
        return -1;
    }
    return 0;
}

static const struct pqm_crl_entry *crl_for(const struct pqm_trust *t, const X509 *issuer)
{
    for (size_t i = 0; i < t->ncrl; i++)
        if (X509_cmp(t->crls[i].issuer, issuer) == 0)
            return &t->crls[i];
    return NULL;
}

X509 *pqm__trust_issuer_of(const struct pqm_trust *t, X509 *x)
{
    for (int i = 0; i < sk_X509_num(t->cas); i++) {
        X509 *ca = sk_X509_value(t->cas, i);
        if (X509_check_issued(ca, x) == X509_V_OK)
            return ca;
    }
    return NULL;
}

/* "keyCompromise, since 2026-11-26T18:00:00Z": a CRL entry's reason and date. */
static void revoked_why(const X509_REVOKED *rev, char *out, size_t outlen)
{
    int crit = 0;
    ASN1_ENUMERATED *r = X509_REVOKED_get_ext_d2i(rev, NID_crl_reason, &crit, NULL);
    long code = r != NULL ? ASN1_ENUMERATED_get(r) : CRL_REASON_UNSPECIFIED;
    ASN1_ENUMERATED_free(r);
    int64_t at = 0;
    char when[32] = "an unreadable date";
    if (pqm__asn1_time_to_epoch(X509_REVOKED_get0_revocationDate(rev), &at) == 0)
        pqm__format_time(at, when, sizeof(when));
    snprintf(out, outlen, "%s, since %s", pqm__crl_reason_name((int)code), when);
    ERR_clear_error();
}

int pqm__trust_revocation(const struct pqm_trust *t, STACK_OF(X509) *chain, int *err,
                          struct pqm_verdict *v)
{
    time_t now = time(NULL);
    for (int i = 0; i < sk_X509_num(chain); i++) {
        X509 *x = sk_X509_value(chain, i);
        if (X509_check_issued(x, x) == X509_V_OK)
            break; /* a root is not revoked by a CRL */
        X509 *issuer = i + 1 < sk_X509_num(chain) ? sk_X509_value(chain, i + 1)
                                                   : pqm__trust_issuer_of(t, x);
        char who[320]; /* named only in a refusal: formatting costs more than the lookup */
        const struct pqm_crl_entry *c = issuer != NULL ? crl_for(t, issuer) : NULL;
        if (c == NULL) {
            if (t->crl_soft_fail)
                continue;
            cert_who(x, role_of(t), who, sizeof(who));
            *err = X509_V_ERR_UNABLE_TO_GET_CRL;
            verdict(v, "crl_missing", "no CRL is configured for the issuer of %s", who);
            return -1;
        }
        const ASN1_TIME *next = X509_CRL_get0_nextUpdate(c->crl);
        if (next != NULL && X509_cmp_time(next, &now) < 0 && !t->crl_soft_fail) {
            cert_who(x, role_of(t), who, sizeof(who));
            *err = X509_V_ERR_CRL_HAS_EXPIRED;
            verdict(v, "crl_expired", "the CRL %s (for the issuer of %s) has expired", c->file,
                    who);
            return -1;
        }
        X509_REVOKED *rev = NULL;
        if (X509_CRL_get0_by_cert(c->crl, &rev, x) == 1) {
            char why[96];
            revoked_why(rev, why, sizeof(why));
            cert_who(x, role_of(t), who, sizeof(who));
            *err = X509_V_ERR_CERT_REVOKED;
            verdict(v, "revoked", "%s is revoked (%s; CRL %s)", who, why, c->file);
            return -1;
        }
    }
    return 0;
}

/* --- the verified-leaf cache ----------------------------------------------------------- */

#define PQM_CACHE_CHAIN_MAX 8 /* issuers kept per leaf; a longer chain is not cached */

struct cache_slot {
    int used;
    unsigned char digest[32];    /* SHA-256 of the leaf's DER */
    int64_t valid_from, valid_to; /* when every certificate of the chain is valid */
    int nissuers;
    X509 *issuers[PQM_CACHE_CHAIN_MAX]; /* the chain above the leaf, referenced */
};

struct pqm_verify_cache {
    pthread_mutex_t lock;
    EVP_MD *sha256;
    size_t nslots;
    struct cache_slot *slots;
    struct pqm_verify_stats *stats;
};

int pqm__trust_cache_enable(struct pqm_trust *t, size_t slots, struct pqm_verify_stats *stats)
{
    /* Client certificates only: a server certificate is also checked against the host
     * name of each connection, which the cache's key does not hold. */
    if (t->purpose != X509_PURPOSE_SSL_CLIENT)
        return -1;
    struct pqm_verify_cache *c = calloc(1, sizeof(*c));
    if (c == NULL || slots == 0 || stats == NULL || (c->slots = calloc(slots, sizeof(*c->slots))) == NULL ||
        (c->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL ||
        pthread_mutex_init(&c->lock, NULL) != 0) {
        if (c != NULL) {
            EVP_MD_free(c->sha256);
            free(c->slots);
        }
        free(c);
        return -1;
    }
    c->nslots = slots;
    c->stats = stats;
    t->cache = c;
    return 0;
}

static void slot_clear(struct cache_slot *s)
{
    for (int i = 0; i < s->nissuers; i++)
        X509_free(s->issuers[i]);
    memset(s, 0, sizeof(*s));
}

static void cache_free(struct pqm_verify_cache *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->nslots; i++)
        slot_clear(&c->slots[i]);
    free(c->slots);
    EVP_MD_free(c->sha256);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static struct cache_slot *slot_of(struct pqm_verify_cache *c, const unsigned char d[32])
{
    uint64_t h;
    memcpy(&h, d, sizeof(h));
    return &c->slots[h % c->nslots];
}

/* The verification time: the one XS was given, or now. */
static int64_t verify_time(X509_STORE_CTX *xs)
{
    const X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(xs);
    if (X509_VERIFY_PARAM_get_flags(param) & X509_V_FLAG_USE_CHECK_TIME)
        return (int64_t)X509_VERIFY_PARAM_get_time(param);
    return (int64_t)time(NULL);
}

/* A leaf verified before: 1 passes, 0 refused (revoked now: XS's error and V set), -1
 * not in the cache, or outside its chain's validity (the full verification says why).
 * XS gets the chain as its verified chain, as a full verification would leave it. */
static int cache_verify(const struct pqm_trust *t, X509_STORE_CTX *xs, X509 *leaf,
                        const unsigned char d[32], struct pqm_verdict *v)
{
    struct pqm_verify_cache *c = t->cache;
    X509 *held[PQM_CACHE_CHAIN_MAX];
    int nheld = 0, hit = 0;
    int64_t now = verify_time(xs);
    pthread_mutex_lock(&c->lock);
    struct cache_slot *s = slot_of(c, d);
    /* notAfter is the last valid second's end: at notAfter itself OpenSSL says expired. */
    if (s->used && memcmp(s->digest, d, 32) == 0 && now >= s->valid_from && now < s->valid_to) {
        hit = 1;
        for (int i = 0; i < s->nissuers && hit; i++) {
            if (X509_up_ref(s->issuers[i]) == 1)
                held[nheld++] = s->issuers[i];
            else
                hit = 0;
        }
    }
    pthread_mutex_unlock(&c->lock);
    STACK_OF(X509) *chain = hit ? sk_X509_new_reserve(NULL, nheld + 1) : NULL;
    if (chain == NULL || X509_up_ref(leaf) != 1) {
        for (int i = 0; i < nheld; i++)
            X509_free(held[i]);
        sk_X509_free(chain);
        return -1; /* not in the cache, or out of memory: verified in full */
    }
    sk_X509_push(chain, leaf); /* into reserved room: the pushes do not allocate */
    for (int i = 0; i < nheld; i++)
        sk_X509_push(chain, held[i]);
    atomic_fetch_add_explicit(&c->stats->hits, 1, memory_order_relaxed);
    int err = X509_V_OK, rc = 1;
    if (t->ncrl > 0 && pqm__trust_revocation(t, chain, &err, v) != 0) {
        X509_STORE_CTX_set_error(xs, err);
        rc = 0;
    }
    X509_STORE_CTX_set0_verified_chain(xs, chain);
    return rc;
}

/* After a full verification that passed: the leaf and its chain go in the cache. */
static void cache_add(const struct pqm_trust *t, STACK_OF(X509) *chain, const unsigned char d[32])
{
    struct cache_slot fresh = {.used = 1, .valid_from = INT64_MIN, .valid_to = INT64_MAX};
    int n = sk_X509_num(chain);
    if (n < 1 || n - 1 > PQM_CACHE_CHAIN_MAX)
        return;
    for (int i = 0; i < n; i++) {
        X509 *x = sk_X509_value(chain, i);
        int64_t nb, na;
        if (pqm__asn1_time_to_epoch(X509_get0_notBefore(x), &nb) != 0 ||
            pqm__asn1_time_to_epoch(X509_get0_notAfter(x), &na) != 0)
            return;
        fresh.valid_from = nb > fresh.valid_from ? nb : fresh.valid_from;
        fresh.valid_to = na < fresh.valid_to ? na : fresh.valid_to;
    }
    memcpy(fresh.digest, d, 32);
    for (int i = 1; i < n; i++) {
        X509 *x = sk_X509_value(chain, i);
        if (X509_up_ref(x) != 1) {
            slot_clear(&fresh);
            return;
        }
        fresh.issuers[fresh.nissuers++] = x;
    }
    pthread_mutex_lock(&t->cache->lock);
    struct cache_slot *s = slot_of(t->cache, d);
    slot_clear(s);
    *s = fresh;
    pthread_mutex_unlock(&t->cache->lock);
}

int pqm__trust_recheck(const struct pqm_trust *t, X509 *leaf, int *err, struct pqm_verdict *v)
{
    STACK_OF(X509) *chain = sk_X509_new_null();
    time_t now = time(NULL);
    int rc = -1;
    *err = X509_V_ERR_OUT_OF_MEM;
    verdict(v, "bad_certificate", "out of memory");
    for (X509 *x = leaf; chain != NULL && x != NULL && sk_X509_num(chain) <= t->depth + 1;) {
        if (sk_X509_push(chain, x) <= 0)
            goto done;
        int expired = X509_cmp_time(X509_get0_notAfter(x), &now) <= 0;
        if (expired || X509_cmp_time(X509_get0_notBefore(x), &now) > 0) {
            char who[320];
            cert_who(x, role_of(t), who, sizeof(who));
            *err = expired ? X509_V_ERR_CERT_HAS_EXPIRED : X509_V_ERR_CERT_NOT_YET_VALID;
            verdict(v, verify_code(*err), "%s: %s", who, X509_verify_cert_error_string(*err));
            goto done;
        }
        if (X509_check_issued(x, x) == X509_V_OK)
            break; /* a root */
        x = pqm__trust_issuer_of(t, x);
    }
    if (chain != NULL && sk_X509_num(chain) > 1) {
        *err = X509_V_OK;
        rc = t->ncrl > 0 ? pqm__trust_revocation(t, chain, err, v) : 0;
    } else if (chain != NULL) {
        *err = X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY;
        verdict(v, "unknown_ca", "its issuer is none of the %s CA certificates", role_of(t));
    }
done:
    sk_X509_free(chain);
    return rc;
}

int pqm__trust_verify(const struct pqm_trust *t, X509_STORE_CTX *xs, struct pqm_verdict *v)
{
    X509 *leaf = X509_STORE_CTX_get0_cert(xs);
    unsigned char d[32];
    unsigned int dlen = 0;
    int cached = t->cache != NULL && leaf != NULL &&
                 X509_digest(leaf, t->cache->sha256, d, &dlen) == 1 && dlen == sizeof(d);
    if (cached) {
        int rc = cache_verify(t, xs, leaf, d, v);
        if (rc >= 0)
            return rc;
        atomic_fetch_add_explicit(&t->cache->stats->misses, 1, memory_order_relaxed);
    }
    /* The path from the configured anchors alone, each of them an anchor (partial
     * chain): an intermediate already trusted is not verified again per handshake. */
    X509_STORE_CTX_set0_untrusted(xs, NULL);
    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(xs);
    X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_X509_STRICT | X509_V_FLAG_PARTIAL_CHAIN);
    X509_VERIFY_PARAM_set_depth(param, t->depth);
    if (X509_STORE_CTX_set_purpose(xs, t->purpose) != 1) {
        X509_STORE_CTX_set_error(xs, X509_V_ERR_APPLICATION_VERIFICATION);
        verdict(v, "bad_certificate", "cannot set the verification purpose");
        return 0;
    }
    if (X509_verify_cert(xs) != 1) {
        int err = X509_STORE_CTX_get_error(xs);
        char who[320];
        cert_who(X509_STORE_CTX_get_current_cert(xs), role_of(t), who, sizeof(who));
        if (err == X509_V_ERR_INVALID_PURPOSE && X509_STORE_CTX_get_error_depth(xs) == 0)
            verdict(v, "wrong_eku", "%s: its extended key usage does not allow %s", who,
                    t->purpose == X509_PURPOSE_SSL_CLIENT ? "clientAuth" : "serverAuth");
        else if (err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
                 err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT)
            verdict(v, verify_code(err), "%s: not trusted: its issuer is none of the %s CA "
                                         "certificates (depth %d)",
                    who, role_of(t), X509_STORE_CTX_get_error_depth(xs));
        else
            verdict(v, verify_code(err), "%s: %s (depth %d)", who,
                    X509_verify_cert_error_string(err), X509_STORE_CTX_get_error_depth(xs));
        return 0;
    }
    if (check_eku(t, leaf, v) != 0) {
        X509_STORE_CTX_set_error(xs, X509_V_ERR_INVALID_PURPOSE);
        return 0;
    }
    int err = X509_V_OK;
    if (t->ncrl > 0 && pqm__trust_revocation(t, X509_STORE_CTX_get0_chain(xs), &err, v) != 0) {
        X509_STORE_CTX_set_error(xs, err);
        return 0;
    }
    if (cached)
        cache_add(t, X509_STORE_CTX_get0_chain(xs), d);
    return 1;
}

int pqm__trust_add_cas(struct pqm_trust *t, const char *path, const char *what,
                       struct pqm_err *e)
{
    STACK_OF(X509) *certs = NULL;
    if (path == NULL || path[0] == '\0')
        return pqm__err_set(e, "a CA file is required (%s)", what);
    if (t->store == NULL && (t->store = X509_STORE_new()) == NULL)
        return pqm__err_ossl(e, "out of memory");
    if (t->cas == NULL && (t->cas = sk_X509_new_null()) == NULL)
        return pqm__err_ossl(e, "out of memory");
    if (pqm__pemfile_load(path, &certs, NULL, e) != 0)
        return -1;
    int rc = 0;
    if (sk_X509_num(certs) == 0)
        rc = pqm__err_set(e, "%s %s: no certificate", what, path);
    for (int i = 0; rc == 0 && i < sk_X509_num(certs); i++) {
        X509 *x = sk_X509_value(certs, i);
        if (!X509_check_ca(x))
            rc = pqm__err_set(e, "%s %s: certificate %d is not a CA certificate", what, path,
                              i + 1);
        else if (X509_STORE_add_cert(t->store, x) != 1)
            rc = pqm__err_ossl(e, "%s %s: cannot add certificate %d", what, path, i + 1);
        else if (sk_X509_push(t->cas, x) <= 0)
            rc = pqm__err_ossl(e, "out of memory");
        else
            sk_X509_set(certs, i, NULL); /* now owned by t->cas */
    }
    sk_X509_pop_free(certs, X509_free);
    return rc;
}

int pqm__trust_add_crls(struct pqm_trust *t, const char *const *files, size_t n, const char *what,
                     struct pqm_err *e)
{
    for (size_t f = 0; f < n; f++) {
        STACK_OF(X509_CRL) *crls = NULL;
        if (pqm__pemfile_load(files[f], NULL, &crls, e) != 0)
            return -1;
        int rc = 0;
        if (sk_X509_CRL_num(crls) == 0)
            rc = pqm__err_set(e, "%s: no CRL", files[f]);
        for (int i = 0; rc == 0 && i < sk_X509_CRL_num(crls); i++) {
            X509_CRL *crl = sk_X509_CRL_value(crls, i);
            X509 *issuer = NULL;
            for (int j = 0; j < sk_X509_num(t->cas) && issuer == NULL; j++) {
                X509 *ca = sk_X509_value(t->cas, j);
                if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca)) == 0 &&
                    X509_CRL_verify(crl, X509_get0_pubkey(ca)) == 1)
                    issuer = ca;
            }
            ERR_clear_error();
            if (issuer == NULL) {
                char iss[300];
                pqm__name_text(X509_CRL_get_issuer(crl), iss, sizeof(iss));
                rc = pqm__err_set(e, "%s: CRL %d (issuer '%s') is not signed by any CA of %s",
                                  files[f], i + 1, iss, what);
                break;
            }
            struct pqm_crl_entry *grown = realloc(t->crls, (t->ncrl + 1) * sizeof(*grown));
            if (grown == NULL) {
                rc = pqm__err_set(e, "out of memory");
                break;
            }
            t->crls = grown;
            if (X509_CRL_up_ref(crl) != 1) {
                rc = pqm__err_set(e, "out of memory");
                break;
            }
            t->crls[t->ncrl].crl = crl;
            t->crls[t->ncrl].issuer = issuer;
            snprintf(t->crls[t->ncrl].file, sizeof(t->crls[t->ncrl].file), "%s", files[f]);
            t->ncrl++;
        }
        sk_X509_CRL_pop_free(crls, X509_CRL_free);
        if (rc != 0)
            return -1;
    }
    return 0;
}

int pqm__trust_load(struct pqm_trust *t, const char *ca_file, const char *const *crl_files,
                    size_t ncrl, const char *what, struct pqm_err *e)
{
    if (pqm__trust_add_cas(t, ca_file, what, e) != 0 ||
        pqm__trust_add_crls(t, crl_files, ncrl, what, e) != 0)
        return -1;
    return 0;
}

void pqm__trust_free(struct pqm_trust *t)
{
    for (size_t i = 0; i < t->ncrl; i++)
        X509_CRL_free(t->crls[i].crl);
    free(t->crls);
    sk_X509_pop_free(t->cas, X509_free);
    X509_STORE_free(t->store);
    cache_free(t->cache);
    memset(t, 0, sizeof(*t));
}
