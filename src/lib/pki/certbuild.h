/* Building and signing X.509 certificates for the pqmtls profiles. */
#ifndef PQM_PKI_CERTBUILD_H
#define PQM_PKI_CERTBUILD_H

#include <stdint.h>
#include <openssl/x509v3.h>

#include "util/digest.h"
#include "util/err.h"

enum pqm_cert_kind {
    PQM_KIND_ROOT,
    PQM_KIND_INTERMEDIATE,
    PQM_KIND_SERVER,
    PQM_KIND_CLIENT,
    PQM_KIND_OCSP, /* a delegated OCSP responder (RFC 6960 4.2.2.2) */
};

/* Serial numbers: 159 random bits (RFC 5280 allows 20 octets; at least 64 bits of
 * entropy per the CA/B Forum), never zero, so always positive in DER. */
#define PQM_SERIAL_BITS 159

struct pqm_cert_spec {
    enum pqm_cert_kind kind;
    const X509_NAME *subject;
    EVP_PKEY *subject_key;       /* its public half goes into the certificate */
    X509 *issuer;                /* NULL: self-signed */
    EVP_PKEY *issuer_key;
    const BIGNUM *serial;
    int64_t not_before, not_after;
    int path_len;                /* CAs; -1 for none */
    const NAME_CONSTRAINTS *nc;  /* CAs; may be NULL */
    const GENERAL_NAMES *sans;   /* leaves; may be NULL */
    const char *crl_url;         /* CA-issued: the issuer's CRL (cRLDistributionPoints) */
    const char *ocsp_url;        /* leaves: the OCSP responder (authorityInfoAccess) */
    int pubkey_only;             /* nothing reads the key back from the built certificate:
                                  * X509_get0_pubkey() on it returns NULL */
};

BIGNUM *pqm__serial_new(struct pqm_err *e);
/* Upper-case hex of a serial into OUT. */
int pqm__serial_hex(const BIGNUM *serial, char *out, size_t outlen);
/* Subject "CN=cn, O=org" (org may be NULL or empty). CN at most 64 characters. */
X509_NAME *pqm__name_new(const char *cn, const char *org, struct pqm_err *e);
/* Builds and signs a certificate. */
X509 *pqm__cert_build(const struct pqm_cert_spec *spec, struct pqm_err *e);
/* SHA-256 fingerprint of the DER certificate as 64 lower-case hex characters. */
int pqm__cert_fingerprint(const X509 *x, char out[65]);
/* PEM armour ("-----BEGIN LABEL-----", base64 in 64-column lines) of DER into a
 * malloc'd, NUL-terminated buffer. */
int pqm__pem_encode(const char *label, const unsigned char *der, size_t derlen, char **pem,
                    size_t *len, struct pqm_err *e);
/* PEM of one or more certificates into a malloc'd buffer. */
int pqm__certs_to_pem(X509 *const *certs, size_t n, char **pem, size_t *len, struct pqm_err *e);
/* Loads the first certificate of a PEM or DER file. */
X509 *pqm__cert_load(const char *path, struct pqm_err *e);

#endif
