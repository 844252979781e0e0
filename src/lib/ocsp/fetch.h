/* Asking an OCSP responder (RFC 6960) about one certificate, and judging its answer:
 * used by the gateway for client certificates and to staple its own. Blocking, with a
 * timeout: callers run it off their event loops. */
#ifndef PQM_OCSP_FETCH_H
#define PQM_OCSP_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#define PQM_OCSP_URL_MAX 512
#define PQM_OCSP_RESPONSE_MAX (64 * 1024)
/* Clock skew allowed on thisUpdate / nextUpdate. */
#define PQM_OCSP_SKEW 300

enum pqm_ocsp_status {
    PQM_OCSP_GOOD,
    PQM_OCSP_REVOKED,
    PQM_OCSP_UNKNOWN, /* the responder does not know the certificate */
    PQM_OCSP_ERROR,   /* no usable answer: unreachable, malformed, badly signed, stale */
};

struct pqm_ocsp_result {
    enum pqm_ocsp_status status;
    int reason;                 /* CRL reason code of a revocation; -1 when none given */
    int64_t revoked_at;
    int64_t this_update, next_update; /* next_update 0: the responder gave none */
    unsigned char *der;         /* the whole response (malloc'd), for stapling */
    size_t der_len;
    char error[256];            /* why, for PQM_OCSP_ERROR (and a note otherwise) */
};

void pqm__ocsp_result_clear(struct pqm_ocsp_result *r);
/* The first OCSP responder URL of X's authorityInfoAccess into OUT; -1 when none. */
int pqm__ocsp_url_of(X509 *x, char *out, size_t outlen);
/* Asks URL (http:// only) about LEAF, issued by ISSUER, with a nonce, and checks the
 * answer with pqm__ocsp_judge. Always fills R; returns 0 when R holds a verdict (good,
 * revoked, unknown), -1 when it is PQM_OCSP_ERROR. */
int pqm__ocsp_query(const char *url, X509 *leaf, X509 *issuer, int timeout_s,
                    struct pqm_ocsp_result *r);
/* Judges the DER response DER for LEAF/ISSUER: a successful basic response signed by
 * ISSUER itself or by a responder certificate ISSUER signed with extended key usage
 * OCSPSigning (RFC 6960 4.2.2.2); a single response for exactly this certificate;
 * thisUpdate not in the future and nextUpdate not past (PQM_OCSP_SKEW); REQ's nonce
 * echoed when the responder returns one (REQ may be NULL). Returns as pqm__ocsp_query;
 * R->der is not set. */
int pqm__ocsp_judge(const unsigned char *der, size_t len, X509 *leaf, X509 *issuer,
                    void *req, struct pqm_ocsp_result *r);
/* "keyCompromise" etc. for a CRL reason code; "unspecified" otherwise. */
const char *pqm__ocsp_reason_name(int reason);

#endif
