/* Building and signing X.509 v2 CRLs (RFC 5280 section 5). */
#ifndef PQM_PKI_CRLBUILD_H
#define PQM_PKI_CRLBUILD_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/x509.h>

#include "util/err.h"

/* RFC 5280 5.3.1 reason codes by name ("keyCompromise"); -1 for an unknown name.
 * removeFromCRL and certificateHold are not offered: a pqmtls revocation is final. */
int pqm__crl_reason_code(const char *name);
/* The name of reason CODE (certificateHold included), "unspecified" for any other. */
const char *pqm__crl_reason_name(int code);
/* The names pqm__crl_reason_code accepts, comma-separated, for messages. */
const char *pqm__crl_reason_names(void);

struct pqm_crl_spec {
    X509 *issuer;              /* the CA certificate (subject, SKI for the AKI) */
    EVP_PKEY *issuer_key;
    int64_t this_update, next_update;
    uint64_t number;           /* the cRLNumber extension */
};

/* A CRL under construction. */
struct pqm_crl_builder {
    X509_CRL *crl;
    struct pqm_err *e;
};

int pqm__crl_begin(struct pqm_crl_builder *b, const struct pqm_crl_spec *spec,
                   struct pqm_err *e);
/* Adds one revoked serial (upper-case hex, as the inventory records it) with the time
 * of revocation and a reason code (0 = unspecified: no reasonCode extension, as RFC 5280
 * 5.3.1 asks). */
int pqm__crl_add(struct pqm_crl_builder *b, const char *serial_hex, int64_t revoked_at,
                 int reason);
/* Sorts the entries, adds the extensions and signs. Returns the CRL (the caller owns
 * it), NULL on failure; the builder is spent either way. */
X509_CRL *pqm__crl_finish(struct pqm_crl_builder *b, const struct pqm_crl_spec *spec);
void pqm__crl_abandon(struct pqm_crl_builder *b);

#endif
