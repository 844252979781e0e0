/* Private keys on disk: PKCS#8, encrypted with AES-256-CBC under scrypt when a
 * passphrase is given. */
#ifndef PQM_PKI_KEYFILE_H
#define PQM_PKI_KEYFILE_H

#include <stddef.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "util/err.h"

/* scrypt cost. N = 2^14, r = 8, p = 1 uses 16 MiB: the most that OpenSSL-based
 * readers (nginx, curl, `openssl pkey`) accept under their default 32 MiB limit. */
#define PQM_SCRYPT_N 16384
#define PQM_SCRYPT_R 8
#define PQM_SCRYPT_P 1

/* Keys larger than this are not keys. */
#define PQM_KEYFILE_MAX (256 * 1024)

/* PEM PKCS#8 of KEY into a malloc'd buffer; encrypted when PASS != NULL. */
int pqm__key_to_pem(EVP_PKEY *key, const char *pass, size_t passlen, char **pem, size_t *len,
                    struct pqm_err *e);
/* Loads a PEM private key; PASS may be NULL for an unencrypted key. */
EVP_PKEY *pqm__key_load(const char *path, const char *pass, size_t passlen, struct pqm_err *e);
/* PKCS#12 (DER, into *DER: OPENSSL_free it) of KEY and its certificate X with the
 * issuing CA and, when not NULL, the root; protected by PASS with AES-256-CBC under
 * PBKDF2-HMAC-SHA256 (PQM_P12_ITER iterations) and a SHA-256 MAC; NAME is its friendly
 * name. */
#define PQM_P12_ITER 200000
int pqm__p12_der(const char *pass, const char *name, EVP_PKEY *key, X509 *x, X509 *ca,
                 X509 *root, unsigned char **der, int *len, struct pqm_err *e);
/* 1 when the PEM file holds an encrypted key, 0 when not, -1 on error. */
int pqm__key_file_is_encrypted(const char *path, struct pqm_err *e);

#endif
