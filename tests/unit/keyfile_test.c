/* Unit tests of pki/keyfile.c: PKCS#8 private keys on disk, encrypted with
 * AES-256-CBC under scrypt when a passphrase is given. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "pki/alg.h"
#include "pki/keyfile.h"
#include "unit_util.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static const char PASS[] = "correct horse battery staple";

struct kstate {
    char *dir;
    EVP_PKEY *key, *other;
    char enc[PATH_MAX], plain[PATH_MAX], garbage[PATH_MAX], empty[PATH_MAX], missing[PATH_MAX],
        truncated[PATH_MAX], cert_only[PATH_MAX], short_pass[PATH_MAX];
};

static void write_pem(const char *path, EVP_PKEY *key, const char *pass, size_t passlen)
{
    struct pqm_err e = {{0}};
    char *pem = NULL;
    size_t len = 0;
    if (pqm__key_to_pem(key, pass, passlen, &pem, &len, &e) != 0)
        fail_msg("pqm__key_to_pem: %s", pqm__err_str(&e));
    assert_int_equal(strlen(pem), len);
    assert_int_equal(tu_write(path, pem), 0);
    free(pem);
}

static int group_setup(void **state)
{
    struct kstate *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    struct pqm_err e = {{0}};
    s->dir = tu_mkdtemp("keyfile");
    assert_non_null(s->dir);
    s->key = pqm__alg_keygen(pqm__alg_find("ml-dsa-65"), &e);
    s->other = pqm__alg_keygen(pqm__alg_find("ml-dsa-65"), &e);
    assert_non_null(s->key);
    assert_non_null(s->other);
#define P(field, name) snprintf(s->field, sizeof(s->field), "%s/%s", s->dir, name)
    P(enc, "enc.key.pem");
    P(plain, "plain.key.pem");
    P(garbage, "garbage.key.pem");
    P(empty, "empty.key.pem");
    P(missing, "missing.key.pem");
    P(truncated, "truncated.key.pem");
    P(cert_only, "cert-only.pem");
    P(short_pass, "short-pass.key.pem");
#undef P
    write_pem(s->enc, s->key, PASS, strlen(PASS));
    write_pem(s->plain, s->key, NULL, 0);
    /* Only the first 6 bytes are the passphrase: the length is what counts. */
    write_pem(s->short_pass, s->key, "secretXYZ", 6);
    assert_int_equal(tu_write(s->garbage, "this is not a key\n"), 0);
    assert_int_equal(tu_write(s->empty, ""), 0);
    assert_int_equal(tu_write(s->cert_only, "-----BEGIN CERTIFICATE-----\nMIIB\n"
                                            "-----END CERTIFICATE-----\n"),
                     0);
    char *full = tu_read(s->enc);
    assert_non_null(full);
    full[strlen(full) / 2] = '\0';
    assert_int_equal(tu_write(s->truncated, full), 0);
    free(full);
    *state = s;
    return 0;
}

static int group_teardown(void **state)
{
    struct kstate *s = *state;
    tu_rmtree(s->dir);
    free(s->dir);
    EVP_PKEY_free(s->key);
    EVP_PKEY_free(s->other);
    free(s);
    return 0;
}

/* --- the encoding --------------------------------------------------------------------- */

static long asn1_int(const ASN1_INTEGER *i)
{
    return i != NULL ? ASN1_INTEGER_get(i) : -1;
}

static void test_encrypted_pem_uses_scrypt_aes256cbc(void **state)
{
    struct kstate *s = *state;
    struct pqm_err e = {{0}};
    char *pem = NULL;
    size_t len = 0;
    assert_int_equal(pqm__key_to_pem(s->key, PASS, strlen(PASS), &pem, &len, &e), 0);
    assert_true(strncmp(pem, "-----BEGIN ENCRYPTED PRIVATE KEY-----\n", 38) == 0);
    assert_null(strstr(pem, "-----BEGIN PRIVATE KEY-----"));

    BIO *b = BIO_new_mem_buf(pem, (int)len);
    assert_non_null(b);
    X509_SIG *p8 = PEM_read_bio_PKCS8(b, NULL, NULL, NULL);
    BIO_free(b);
    free(pem);
    assert_non_null(p8);
    const X509_ALGOR *alg = NULL;
    const ASN1_OCTET_STRING *digest = NULL;
    X509_SIG_get0(p8, &alg, &digest);
    assert_non_null(alg);
    assert_int_equal(OBJ_obj2nid(alg->algorithm), NID_pbes2);
    assert_true(ASN1_STRING_length(digest) > 0);

    PBE2PARAM *pbe2 = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBE2PARAM), alg->parameter);
    assert_non_null(pbe2);
    int kdf = OBJ_obj2nid(pbe2->keyfunc->algorithm);
    int cipher = OBJ_obj2nid(pbe2->encryption->algorithm);
    SCRYPT_PARAMS *sp = kdf == NID_id_scrypt ? ASN1_TYPE_unpack_sequence(
                                                   ASN1_ITEM_rptr(SCRYPT_PARAMS),
                                                   pbe2->keyfunc->parameter)
                                             : NULL;
    /* AES-256-CBC's parameter is its 16-byte IV. */
    const ASN1_TYPE *ivp = pbe2->encryption->parameter;
    int ivlen = ivp != NULL && ivp->type == V_ASN1_OCTET_STRING
                    ? ASN1_STRING_length(ivp->value.octet_string)
                    : -1;
    long n = -1, r = -1, p = -1;
    int saltlen = -1;
    if (sp != NULL) {
        n = asn1_int(sp->costParameter);
        r = asn1_int(sp->blockSize);
        p = asn1_int(sp->parallelizationParameter);
        saltlen = ASN1_STRING_length(sp->salt);
    }
    SCRYPT_PARAMS_free(sp);
    PBE2PARAM_free(pbe2);
    X509_SIG_free(p8);

    assert_int_equal(kdf, NID_id_scrypt);
    assert_int_equal(cipher, NID_aes_256_cbc);
    assert_int_equal(ivlen, 16);
    assert_int_equal(n, PQM_SCRYPT_N);
    assert_int_equal(r, PQM_SCRYPT_R);
    assert_int_equal(p, PQM_SCRYPT_P);
    assert_int_equal(n, 16384);
    assert_true(saltlen >= 8);
}

static void test_encryption_is_salted(void **state)
{
    struct kstate *s = *state;
    struct pqm_err e = {{0}};
    char *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0;
    assert_int_equal(pqm__key_to_pem(s->key, PASS, strlen(PASS), &a, &alen, &e), 0);
    assert_int_equal(pqm__key_to_pem(s->key, PASS, strlen(PASS), &b, &blen, &e), 0);
    /* Same key, same passphrase: a fresh salt and IV make different files. */
    assert_string_not_equal(a, b);
    free(a);
    free(b);
}

static void test_plain_pem(void **state)
{
    struct kstate *s = *state;
    struct pqm_err e = {{0}};
    char *pem = NULL;
    size_t len = 0;
    assert_int_equal(pqm__key_to_pem(s->key, NULL, 0, &pem, &len, &e), 0);
    assert_true(strncmp(pem, "-----BEGIN PRIVATE KEY-----\n", 28) == 0);
    assert_null(strstr(pem, "ENCRYPTED"));
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    BIO_free(b);
    free(pem);
    assert_non_null(k);
    assert_int_equal(EVP_PKEY_eq(k, s->key), 1);
    EVP_PKEY_free(k);
}

/* An ML-DSA key is written without OpenSSL's encoder (keyfile.c builds the PKCS#8
 * itself): the bytes must be those the encoder writes, for each parameter set, and a
 * key without its seed must still be written (by the encoder). */
static void test_mldsa_pem_is_the_encoders(void **state)
{
    (void)state;
    static const char *const types[] = {"ML-DSA-44", "ML-DSA-65", "ML-DSA-87"};
    for (size_t i = 0; i < ARRAY_LEN(types); i++) {
        EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, types[i]);
        assert_non_null(key);
        struct pqm_err e = {{0}};
        char *pem = NULL, *want = NULL;
        size_t len = 0;
        assert_int_equal(pqm__key_to_pem(key, NULL, 0, &pem, &len, &e), 0);
        BIO *b = BIO_new(BIO_s_mem());
        assert_int_equal(PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL), 1);
        long wlen = BIO_get_mem_data(b, &want);
        if ((size_t)wlen != len || memcmp(pem, want, len) != 0)
            fail_msg("%s: pqm__key_to_pem differs from the encoder's PEM (%zu vs %ld bytes)",
                     types[i], len, wlen);
        BIO_free(b);
        free(pem);

        /* The same key without its seed (the expanded form only). */
        unsigned char priv[8192];
        size_t privlen = 0;
        assert_int_equal(EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PRIV_KEY, priv,
                                                         sizeof(priv), &privlen),
                         1);
        EVP_PKEY *noseed =
            EVP_PKEY_new_raw_private_key_ex(NULL, types[i], NULL, priv, privlen);
        assert_non_null(noseed);
        assert_int_equal(pqm__key_to_pem(noseed, NULL, 0, &pem, &len, &e), 0);
        b = BIO_new_mem_buf(pem, (int)len);
        EVP_PKEY *back = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
        BIO_free(b);
        assert_non_null(back);
        assert_int_equal(EVP_PKEY_eq(back, key), 1);
        EVP_PKEY_free(back);
        free(pem);
        OPENSSL_cleanse(priv, sizeof(priv));
        EVP_PKEY_free(noseed);
        EVP_PKEY_free(key);
    }
}

/* --- loading ---------------------------------------------------------------------------- */

enum file_id { F_ENC, F_PLAIN, F_GARBAGE, F_EMPTY, F_MISSING, F_TRUNCATED, F_CERT, F_SHORT };

static const char *path_of(const struct kstate *s, enum file_id f)
{
    switch (f) {
    case F_ENC:
        return s->enc;
    case F_PLAIN:
        return s->plain;
    case F_GARBAGE:
        return s->garbage;
    case F_EMPTY:
        return s->empty;
    case F_MISSING:
        return s->missing;
    case F_TRUNCATED:
        return s->truncated;
    case F_CERT:
        return s->cert_only;
    case F_SHORT:
        return s->short_pass;
    default:
        return "";
    }
}

struct load_row {
    const char *why;
    enum file_id file;
    const char *pass; /* NULL: none */
    size_t passlen;   /* 0: strlen(pass) */
    int ok;
    const char *msg; /* refused: in the message (besides the path) */
};

static void test_key_load(void **state)
{
    struct kstate *s = *state;
    const struct load_row rows[] = {
        {"encrypted, right passphrase", F_ENC, PASS, 0, 1, NULL},
        {"encrypted, wrong passphrase", F_ENC, "wrong", 0, 0, "wrong passphrase"},
        {"encrypted, passphrase prefix", F_ENC, PASS, 10, 0, "wrong passphrase"},
        {"encrypted, no passphrase", F_ENC, NULL, 0, 0, "encrypted"},
        {"unencrypted, no passphrase", F_PLAIN, NULL, 0, 1, NULL},
        {"unencrypted, needless passphrase", F_PLAIN, "ignored", 0, 1, NULL},
        {"passphrase by length", F_SHORT, "secret-and-more", 6, 1, NULL},
        {"passphrase by length, wrong", F_SHORT, "secretXYZ", 0, 0, "wrong passphrase"},
        {"garbage", F_GARBAGE, NULL, 0, 0, "not a PEM private key"},
        {"garbage with a passphrase", F_GARBAGE, PASS, 0, 0, "not a PEM private key"},
        {"empty file", F_EMPTY, NULL, 0, 0, NULL},
        {"a certificate, not a key", F_CERT, NULL, 0, 0, NULL},
        {"truncated encrypted key", F_TRUNCATED, PASS, 0, 0, NULL},
        {"nonexistent file", F_MISSING, NULL, 0, 0, NULL},
    };
    int bad = 0;
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        const struct load_row *r = &rows[i];
        struct pqm_err e = {{0}};
        const char *path = path_of(s, r->file);
        size_t passlen = r->pass == NULL ? 0 : r->passlen ? r->passlen : strlen(r->pass);
        EVP_PKEY *k = pqm__key_load(path, r->pass, passlen, &e);
        if (r->ok) {
            if (k == NULL)
                TU_ROW_FAIL(bad, "row %zu (%s): refused: %s", i, r->why, pqm__err_str(&e));
            else if (EVP_PKEY_eq(k, s->key) != 1)
                TU_ROW_FAIL(bad, "row %zu (%s): loaded a different key", i, r->why);
            else if (EVP_PKEY_eq(k, s->other) == 1)
                TU_ROW_FAIL(bad, "row %zu (%s): EVP_PKEY_eq cannot tell keys apart", i, r->why);
        } else if (k != NULL) {
            TU_ROW_FAIL(bad, "row %zu (%s): loaded", i, r->why);
        } else if (strstr(e.msg, path) == NULL) {
            TU_ROW_FAIL(bad, "row %zu (%s): message '%s' does not name the file", i, r->why,
                        e.msg);
        } else if (r->msg != NULL && strstr(e.msg, r->msg) == NULL) {
            TU_ROW_FAIL(bad, "row %zu (%s): message '%s' lacks '%s'", i, r->why, e.msg, r->msg);
        }
        EVP_PKEY_free(k);
    }
    ERR_clear_error();
    TU_ROWS_DONE(bad);
}

static void test_key_file_is_encrypted(void **state)
{
    struct kstate *s = *state;
    const struct {
        enum file_id file;
        int want;
    } rows[] = {
        {F_ENC, 1}, {F_SHORT, 1},   {F_PLAIN, 0}, {F_GARBAGE, 0},
        {F_EMPTY, 0}, {F_MISSING, -1},
    };
    int bad = 0;
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        struct pqm_err e = {{0}};
        int got = pqm__key_file_is_encrypted(path_of(s, rows[i].file), &e);
        if (got != rows[i].want)
            TU_ROW_FAIL(bad, "row %zu (%s): %d, want %d", i, path_of(s, rows[i].file), got,
                        rows[i].want);
        else if (got < 0 && strstr(e.msg, path_of(s, rows[i].file)) == NULL)
            TU_ROW_FAIL(bad, "row %zu: message '%s' does not name the file", i, e.msg);
    }
    TU_ROWS_DONE(bad);
}

/* Keys of every algorithm survive an encrypted round trip. */
static void test_round_trip_every_algorithm(void **state)
{
    struct kstate *s = *state;
    static const char *const algs[] = {"ml-dsa-44", "ecdsa-p256", "ed25519", "rsa-3072"};
    int bad = 0;
    for (size_t i = 0; i < ARRAY_LEN(algs); i++) {
        struct pqm_err e = {{0}};
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/rt-%s.key.pem", s->dir, algs[i]);
        EVP_PKEY *k = pqm__alg_keygen(pqm__alg_find(algs[i]), &e);
        assert_non_null(k);
        write_pem(path, k, "pw", 2);
        EVP_PKEY *back = pqm__key_load(path, "pw", 2, &e);
        if (back == NULL || EVP_PKEY_eq(back, k) != 1)
            TU_ROW_FAIL(bad, "%s: round trip failed: %s", algs[i], pqm__err_str(&e));
        EVP_PKEY_free(back);
        EVP_PKEY_free(k);
    }
    TU_ROWS_DONE(bad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encrypted_pem_uses_scrypt_aes256cbc),
        cmocka_unit_test(test_encryption_is_salted),
        cmocka_unit_test(test_plain_pem),
        cmocka_unit_test(test_mldsa_pem_is_the_encoders),
        cmocka_unit_test(test_key_load),
        cmocka_unit_test(test_key_file_is_encrypted),
        cmocka_unit_test(test_round_trip_every_algorithm),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
