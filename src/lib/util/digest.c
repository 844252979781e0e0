#include "util/digest.h"

#include <pthread.h>

#include <openssl/evp.h>

/* Fetched once and kept for the process's life: EVP_sha256() would look the
 * implementation up again on every call, from every thread. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void fetch_sha256(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA2-256", NULL);
}

void pqm__hex(const unsigned char *in, size_t len, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
    out[2 * len] = '\0';
}

int pqm__sha256_hex(const void *data, size_t len, char out[PQM_SHA256_HEX])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (pthread_once(&sha256_once, fetch_sha256) != 0 || sha256_md == NULL ||
        EVP_Digest(data, len, md, &mdlen, sha256_md, NULL) != 1 || mdlen != 32)
        return -1;
    pqm__hex(md, mdlen, out);
    return 0;
}

int pqm__sha256_hex_prefix(const void *a, size_t alen, const void *b, size_t blen,
                           char out_a[PQM_SHA256_HEX], char out_ab[PQM_SHA256_HEX])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int rc = -1;
    if (pthread_once(&sha256_once, fetch_sha256) != 0 || sha256_md == NULL)
        return -1;
    EVP_MD_CTX *ca = EVP_MD_CTX_new(), *cab = EVP_MD_CTX_new();
    if (ca == NULL || cab == NULL || EVP_DigestInit_ex2(ca, sha256_md, NULL) != 1 ||
        EVP_DigestUpdate(ca, a, alen) != 1 || EVP_MD_CTX_copy_ex(cab, ca) != 1 ||
        EVP_DigestFinal_ex(ca, md, &mdlen) != 1 || mdlen != 32)
        goto cleanup;
    pqm__hex(md, mdlen, out_a);
    if (EVP_DigestUpdate(cab, b, blen) != 1 || EVP_DigestFinal_ex(cab, md, &mdlen) != 1 ||
        mdlen != 32)
        goto cleanup;
    pqm__hex(md, mdlen, out_ab);
    rc = 0;
cleanup:
    EVP_MD_CTX_free(ca);
    EVP_MD_CTX_free(cab);
    return rc;
}
