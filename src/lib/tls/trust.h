/* What a TLS peer's certificate is checked against, for the gateway (client certificates)
 * and the client (server certificates) alike: trust anchors from one file and nothing else
 * (the path is built from them alone, certificates the peer sends besides its leaf are
 * ignored), strict X.509, a depth limit, name constraints, the purpose's extended key
 * usage stated explicitly, and revocation from CRLs whose signatures are checked once,
 * when they are loaded. */
#ifndef PQM_TLS_TRUST_H
#define PQM_TLS_TRUST_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "util/err.h"

struct pqm_crl_entry {
    X509_CRL *crl;
    X509 *issuer;
    char file[256];
};

struct pqm_verify_cache;

/* Counters of a verify cache, kept by its owner so that they outlive the trust (a
 * reload makes a new trust and cache; the counts go on). */
struct pqm_verify_stats {
    _Atomic uint64_t hits, misses;
};

struct pqm_trust {
    X509_STORE *store;
    STACK_OF(X509) *cas;
    struct pqm_crl_entry *crls;
    size_t ncrl;
    int depth;         /* certificates between the leaf and its anchor */
    int purpose;       /* X509_PURPOSE_SSL_CLIENT or X509_PURPOSE_SSL_SERVER */
    int crl_soft_fail; /* a missing or expired CRL passes */
    struct pqm_verify_cache *cache; /* NULL: every certificate is verified in full */
};

/* Why a verification refused: a short code for metrics and logs, and the text. */
struct pqm_verdict {
    const char *code;
    char reason[256];
};

/* Loads the anchors of CA_FILE (each must be a CA) and the CRLs of CRL_FILES (each must
 * be signed by one of them). WHAT names the CA file's role in errors ("client_ca"). */
int pqm__trust_load(struct pqm_trust *t, const char *ca_file, const char *const *crl_files,
                    size_t ncrl, const char *what, struct pqm_err *e);
/* The two halves of pqm__trust_load, for a caller that adds several CA files: CRLs are
 * added after the CAs that signed them. */
int pqm__trust_add_cas(struct pqm_trust *t, const char *ca_file, const char *what,
                       struct pqm_err *e);
int pqm__trust_add_crls(struct pqm_trust *t, const char *const *crl_files, size_t n,
                        const char *what, struct pqm_err *e);
void pqm__trust_free(struct pqm_trust *t);
/* Remembers the leaves that verified (by the SHA-256 of their DER) with the chain built
 * for them, in SLOTS slots (direct-mapped: a newer leaf takes an older one's slot). A
 * leaf seen again skips what cannot have changed for the same bytes against the same
 * anchors (path building, its signature, purpose, EKU, name constraints, depth, strict
 * checks) and is checked again for what can: every certificate of its chain valid now,
 * and revocation by the CRLs. T's anchors and CRLs never change (a reload makes a new
 * trust), so neither can the cached answer. Thread-safe. STATS counts the verifications
 * answered from the cache (those then refused as revoked included) and those made in
 * full. For client certificates only (X509_PURPOSE_SSL_CLIENT): a server certificate is
 * also checked against each connection's host name, which the key does not hold. 0, or
 * -1 (another purpose, or out of memory). */
int pqm__trust_cache_enable(struct pqm_trust *t, size_t slots, struct pqm_verify_stats *stats);
/* A certificate verify callback's work (SSL_CTX_set_cert_verify_callback): verifies XS's
 * leaf against T. Returns 1, or 0 with XS's error set and V filled. */
int pqm__trust_verify(const struct pqm_trust *t, X509_STORE_CTX *xs, struct pqm_verdict *v);
/* Revocation of the certificates of CHAIN by T's CRLs; 0, or -1 with *ERR and V set. */
int pqm__trust_revocation(const struct pqm_trust *t, STACK_OF(X509) *chain, int *err,
                          struct pqm_verdict *v);
/* The anchor of T that issued X (by name and key identifier), NULL when none. Borrowed. */
X509 *pqm__trust_issuer_of(const struct pqm_trust *t, X509 *x);
/* LEAF (a certificate verified before, such as a resumed session's) checked again for
 * what may have changed since: every certificate from it up through T's anchors valid
 * now, and none revoked by T's CRLs (each of them current). 0, or -1 with V set. */
int pqm__trust_recheck(const struct pqm_trust *t, X509 *leaf, int *err, struct pqm_verdict *v);
/* RFC 2253 text of NAME, control characters replaced. */
void pqm__name_text(const X509_NAME *name, char *out, size_t outlen);

#endif
