/* Signature algorithms pqmtls can make keys and certificates with. */
#ifndef PQM_PKI_ALG_H
#define PQM_PKI_ALG_H

#include <openssl/evp.h>

#include "util/err.h"

struct pqm_alg {
    const char *name;      /* pqmtls name, "ml-dsa-65" */
    const char *keytype;   /* OpenSSL key type, "ML-DSA-65" */
    const char *ec_curve;  /* for "EC" */
    size_t rsa_bits;       /* for "RSA" */
    int post_quantum;
};

/* NULL when NAME is not one of pqm__alg_names(). */
const struct pqm_alg *pqm__alg_find(const char *name);
/* "ml-dsa-65, ml-dsa-44, ..." for help texts and errors. */
const char *pqm__alg_names(void);
EVP_PKEY *pqm__alg_keygen(const struct pqm_alg *alg, struct pqm_err *e);
/* The pqmtls name of KEY's algorithm, or OpenSSL's type name when it is none of ours. */
const char *pqm__alg_name_of_key(const EVP_PKEY *key);
/* Digest to sign with KEY: NULL for algorithms that take none (ML-DSA, SLH-DSA, Ed25519). */
const EVP_MD *pqm__alg_sign_md(const EVP_PKEY *key);

#endif
