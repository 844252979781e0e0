/* The OCSP protocol (RFC 6960): a DER OCSPRequest in, a DER OCSPResponse out, with the
 * certificates' status from a lookup function. No sockets, no HTTP (http.c), no files
 * (load.c): so that the unit tests and the fuzz target reach all of it. */
#ifndef PQM_OCSP_RESPONDER_H
#define PQM_OCSP_RESPONDER_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ocsp.h>

#include "pki/store.h"
#include "util/err.h"

#define PQM_OCSP_REQUEST_MAX 16384 /* DER bytes: a request names a few certificates */
#define PQM_OCSP_MAX_CERTS 16      /* certificates answered in one response */
#define PQM_OCSP_NONCE_MAX 32      /* RFC 8954 */
#define PQM_OCSP_MAX_ISSUERS 4
#define PQM_OCSP_NHASH 4           /* CertID hashes recognised: SHA-1, SHA-256, -384, -512 */

enum pqm_ocsp_cert_status { PQM_OCSP_GOOD, PQM_OCSP_REVOKED, PQM_OCSP_UNKNOWN };

struct pqm_ocsp_status {
    enum pqm_ocsp_cert_status status;
    int64_t revoked_at;
    int reason; /* RFC 5280 CRLReason; -1 for none */
};

/* The status of SERIAL (upper-case hex, as the inventory writes it) issued by the CA
 * whose serial is ISSUER: 0 with OUT set, -1 when it cannot be known now (the answer
 * is then internalError). */
typedef int (*pqm_ocsp_lookup_fn)(void *arg, const char *issuer, const char *serial,
                                  struct pqm_ocsp_status *out);

/* One CA answered for, and its delegated signer (NULL while it has none usable: the
 * answer is then tryLater). */
struct pqm_ocsp_issuer {
    char label[48];
    char serial[64];
    X509 *ca;
    OCSP_CERTID *ids[PQM_OCSP_NHASH]; /* the CA's name and key hashes under each digest */
    X509 *signer;
    EVP_PKEY *signer_key;
    char signer_serial[64];
    int64_t signer_not_after;
};

/* What answers, shared read-only by the threads that answer. */
struct pqm_ocsp_responder {
    struct pqm_ocsp_issuer issuers[PQM_OCSP_MAX_ISSUERS];
    size_t n;
    int64_t validity; /* nextUpdate - thisUpdate, seconds */
};

/* Adds CA (its serial read from it) with SIGNER and its KEY (either may be NULL), taking
 * a reference to each. */
int pqm__ocsp_add_issuer(struct pqm_ocsp_responder *r, const char *label, X509 *ca, X509 *signer,
                         EVP_PKEY *key, struct pqm_err *e);
void pqm__ocsp_responder_clear(struct pqm_ocsp_responder *r);
/* Gives IS the signer SIGNER with KEY (references taken), replacing any it had. */
int pqm__ocsp_set_signer(struct pqm_ocsp_issuer *is, X509 *signer, EVP_PKEY *key,
                         struct pqm_err *e);

struct pqm_ocsp_answer {
    int status;           /* OCSPResponseStatus (OCSP_RESPONSE_STATUS_*) */
    unsigned char *der;   /* the OCSPResponse: DER bytes */
    size_t len;
    int nonce;            /* the request had a nonce: the answer is for it alone */
    int64_t this_update, next_update; /* of a successful answer */
    char why[96];         /* a short reason for an unsuccessful answer, for the log */
    unsigned char small[8]; /* an unsuccessful answer's DER lives here */
};

/* Answers the DER OCSPRequest REQ at time NOW. OUT always holds a response: a signed
 * one, or an unsigned malformedRequest, internalError, tryLater or unauthorized. */
void pqm__ocsp_respond(const struct pqm_ocsp_responder *r, const unsigned char *req, size_t len,
                       int64_t now, pqm_ocsp_lookup_fn lookup, void *arg,
                       struct pqm_ocsp_answer *out);
void pqm__ocsp_answer_free(struct pqm_ocsp_answer *a);

/* The lookup of the inventory: ARG is a struct pqm_store opened by the calling thread. */
int pqm__ocsp_store_lookup(void *store, const char *issuer, const char *serial,
                           struct pqm_ocsp_status *out);

#endif
