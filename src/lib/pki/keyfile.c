#include "pki/keyfile.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>

#include "pki/certbuild.h"
#include "util/fsutil.h"

static int bio_to_buf(BIO *b, char **out, size_t *len, struct pqm_err *e)
{
    char *data = NULL;
    long n = BIO_get_mem_data(b, &data);
    if (n <= 0)
        return pqm__err_set(e, "empty output");
    *out = malloc((size_t)n + 1);
    if (*out == NULL)
        return pqm__err_set(e, "out of memory");
    memcpy(*out, data, (size_t)n);
    (*out)[n] = '\0';
    *len = (size_t)n;
    return 0;
}

/* The unencrypted PKCS#8 of an ML-DSA key with its seed, built directly: the bytes
 * OpenSSL 3.5's encoder writes by default (its "seed-priv" output format, the IETF
 * ML-DSA profile's `both` form: SEQUENCE { seed, expandedKey }), without the encoder
 * framework's lookup, which costs a fifth of issuing a certificate beyond its
 * signature. 1 when written, 0 when KEY is not such a key (the caller uses the
 * encoder), -1 on error. keyfile_test.c compares the bytes with the encoder's. */
static int mldsa_pkcs8_pem(EVP_PKEY *key, char **pem, size_t *len, struct pqm_err *e)
{
    static const struct {
        const char *type;
        int nid;
    } types[] = {{"ML-DSA-44", NID_ML_DSA_44}, {"ML-DSA-65", NID_ML_DSA_65},
                 {"ML-DSA-87", NID_ML_DSA_87}};
    int nid = NID_undef;
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]) && nid == NID_undef; i++)
        if (EVP_PKEY_is_a(key, types[i].type))
            nid = types[i].nid;
    if (nid == NID_undef)
        return 0;
    unsigned char seed[32];
    size_t seedlen = 0, privlen = 0;
    if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ML_DSA_SEED, seed, sizeof(seed),
                                        &seedlen) != 1 ||
        seedlen != sizeof(seed) ||
        EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PRIV_KEY, NULL, 0, &privlen) != 1 ||
        privlen == 0 || privlen > 8192) {
        ERR_clear_error();
        OPENSSL_cleanse(seed, sizeof(seed));
        return 0; /* no seed (a key imported in the expanded form only): the encoder's way */
    }
    unsigned char oid[16];
    unsigned char *op = oid;
    const ASN1_OBJECT *obj = OBJ_nid2obj(nid);
    int oidlen = obj != NULL ? i2d_ASN1_OBJECT(obj, NULL) : -1;
    if (oidlen <= 0 || (size_t)oidlen > sizeof(oid) || i2d_ASN1_OBJECT(obj, &op) != oidlen) {
        OPENSSL_cleanse(seed, sizeof(seed));
        return pqm__err_ossl(e, "cannot encode the ML-DSA algorithm identifier");
    }
    /* SEQUENCE { INTEGER 0, SEQUENCE { OID }, OCTET STRING { SEQUENCE { OCTET STRING seed,
     * OCTET STRING expandedKey } } }; the headers by ASN1_put_object, their sizes by
     * ASN1_object_size (both lengths are at most a few KB). */
    int seed_tlv = ASN1_object_size(0, (int)seedlen, V_ASN1_OCTET_STRING);
    int priv_tlv = ASN1_object_size(0, (int)privlen, V_ASN1_OCTET_STRING);
    int both = seed_tlv + priv_tlv;
    int inner = ASN1_object_size(1, both, V_ASN1_SEQUENCE);
    int alg = ASN1_object_size(1, oidlen, V_ASN1_SEQUENCE);
    int body = 3 + alg + ASN1_object_size(0, inner, V_ASN1_OCTET_STRING);
    int total = ASN1_object_size(1, body, V_ASN1_SEQUENCE);
    unsigned char *der = total > 0 ? malloc((size_t)total) : NULL, *p = der;
    if (der == NULL) {
        OPENSSL_cleanse(seed, sizeof(seed));
        return pqm__err_set(e, "out of memory");
    }
    ASN1_put_object(&p, 1, body, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL);
    memcpy(p, "\x02\x01\x00", 3);
    p += 3;
    ASN1_put_object(&p, 1, oidlen, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL);
    memcpy(p, oid, (size_t)oidlen);
    p += oidlen;
    ASN1_put_object(&p, 0, inner, V_ASN1_OCTET_STRING, V_ASN1_UNIVERSAL);
    ASN1_put_object(&p, 1, both, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL);
    ASN1_put_object(&p, 0, (int)seedlen, V_ASN1_OCTET_STRING, V_ASN1_UNIVERSAL);
    memcpy(p, seed, seedlen);
    p += seedlen;
    ASN1_put_object(&p, 0, (int)privlen, V_ASN1_OCTET_STRING, V_ASN1_UNIVERSAL);
    size_t got = 0;
    int rc = -1;
    if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PRIV_KEY, p, privlen, &got) != 1 ||
        got != privlen)
        pqm__err_ossl(e, "cannot read the ML-DSA private key");
    else if (pqm__pem_encode("PRIVATE KEY", der, (size_t)total, pem, len, e) == 0)
        rc = 1;
    OPENSSL_cleanse(seed, sizeof(seed));
    OPENSSL_cleanse(der, (size_t)total);
    free(der);
    return rc;
}

int pqm__key_to_pem(EVP_PKEY *key, const char *pass, size_t passlen, char **pem, size_t *len,
                    struct pqm_err *e)
{
    if (pass == NULL) {
        int fast = mldsa_pkcs8_pem(key, pem, len, e);
        if (fast != 0)
            return fast > 0 ? 0 : -1;
    }
    int rc = -1;
    BIO *b = BIO_new(BIO_s_mem());
    PKCS8_PRIV_KEY_INFO *p8inf = NULL;
    X509_ALGOR *pbe = NULL;
    X509_SIG *p8 = NULL;

    GUARD_OSSL(b != NULL, e, "out of memory");
    if (pass == NULL) {
        GUARD_OSSL(PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL) == 1, e,
                   "cannot encode the private key");
    } else {
        ENSURE(passlen <= INT_MAX, e, "passphrase too long");
        p8inf = EVP_PKEY2PKCS8(key);
        GUARD_OSSL(p8inf != NULL, e, "cannot encode the private key");
        pbe = PKCS5_pbe2_set_scrypt(EVP_aes_256_cbc(), NULL, 0, NULL, PQM_SCRYPT_N, PQM_SCRYPT_R,
                                    PQM_SCRYPT_P);
        GUARD_OSSL(pbe != NULL, e, "cannot set up scrypt key encryption");
        p8 = PKCS8_set0_pbe(pass, (int)passlen, p8inf, pbe);
        GUARD_OSSL(p8 != NULL, e, "cannot encrypt the private key");
        pbe = NULL; /* owned by p8 now */
        GUARD_OSSL(PEM_write_bio_PKCS8(b, p8) == 1, e, "cannot encode the private key");
    }
    rc = bio_to_buf(b, pem, len, e);
cleanup:
    X509_SIG_free(p8);
    X509_ALGOR_free(pbe);
    PKCS8_PRIV_KEY_INFO_free(p8inf);
    BIO_free(b);
    return rc;
}

struct pass_arg {
    const char *pass;
    size_t len;
    int asked;
};

static int pass_cb(char *buf, int size, int rwflag, void *u)
{
    (void)rwflag;
    struct pass_arg *a = u;
    a->asked = 1;
    if (a->pass == NULL || a->len > (size_t)size)
        return -1;
    memcpy(buf, a->pass, a->len);
    return (int)a->len;
}

EVP_PKEY *pqm__key_load(const char *path, const char *pass, size_t passlen, struct pqm_err *e)
{
    unsigned char *data = NULL;
    size_t len = 0;
    EVP_PKEY *key = NULL;
    BIO *b = NULL;
    struct pass_arg a = {pass, passlen, 0};

    if (pqm__read_file(path, PQM_KEYFILE_MAX, &data, &len, e) != 0)
        return NULL;
    b = BIO_new_mem_buf(data, (int)len);
    GUARD_OSSL(b != NULL, e, "out of memory");
    ERR_clear_error();
    key = PEM_read_bio_PrivateKey_ex(b, NULL, pass_cb, &a, NULL, NULL);
    if (key == NULL) {
        int encrypted = strstr((const char *)data, "ENCRYPTED") != NULL;
        if (encrypted && pass == NULL)
            pqm__err_set(e, "%s: the key is encrypted and no passphrase was given", path);
        else if (encrypted)
            pqm__err_set(e, "%s: cannot decrypt the key: wrong passphrase or damaged file", path);
        else
            pqm__err_ossl(e, "%s: not a PEM private key", path);
    }
cleanup:
    BIO_free(b);
    if (data != NULL)
        OPENSSL_cleanse(data, len);
    free(data);
    return key;
}

int pqm__key_file_is_encrypted(const char *path, struct pqm_err *e)
{
    unsigned char *data = NULL;
    size_t len = 0;
    if (pqm__read_file(path, PQM_KEYFILE_MAX, &data, &len, e) != 0)
        return -1;
    int enc = strstr((const char *)data, "-----BEGIN ENCRYPTED PRIVATE KEY-----") != NULL;
    OPENSSL_cleanse(data, len);
    free(data);
    return enc;
}

int pqm__p12_der(const char *pass, const char *name, EVP_PKEY *key, X509 *x, X509 *ca,
                 X509 *root, unsigned char **der, int *len, struct pqm_err *e)
{
    STACK_OF(X509) *cas = sk_X509_new_null();
    PKCS12 *p12 = NULL;
    int rc = -1;
    GUARD_OSSL(cas != NULL && sk_X509_push(cas, ca) > 0 &&
                   (root == NULL || sk_X509_push(cas, root) > 0),
               e, "out of memory");
    p12 = PKCS12_create_ex(pass, name, key, x, cas, NID_aes_256_cbc, NID_aes_256_cbc,
                           PQM_P12_ITER, PQM_P12_ITER, 0, NULL, NULL);
    GUARD_OSSL(p12 != NULL, e, "cannot build the PKCS#12 file");
    *len = i2d_PKCS12(p12, der);
    GUARD_OSSL(*len > 0, e, "cannot encode the PKCS#12 file");
    rc = 0;
cleanup:
    PKCS12_free(p12);
    sk_X509_free(cas);
    return rc;
}
