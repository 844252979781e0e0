#include "pki/certbuild.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "pki/alg.h"
#include "util/digest.h"
#include "util/fsutil.h"

#define PQM_CERTFILE_MAX (1024 * 1024)

BIGNUM *pqm__serial_new(struct pqm_err *e)
{
    BIGNUM *bn = BN_new();
    if (bn == NULL) {
        pqm__err_ossl(e, "out of memory");
        return NULL;
    }
    do {
        if (BN_rand(bn, PQM_SERIAL_BITS, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1) {
            pqm__err_ossl(e, "cannot draw a random serial number");
            BN_free(bn);
            return NULL;
        }
    } while (BN_is_zero(bn));
    return bn;
}

int pqm__serial_hex(const BIGNUM *serial, char *out, size_t outlen)
{
    char *hex = BN_bn2hex(serial);
    if (hex == NULL)
        return -1;
    int n = snprintf(out, outlen, "%s", hex);
    OPENSSL_free(hex);
    return (n < 0 || (size_t)n >= outlen) ? -1 : 0;
}

X509_NAME *pqm__name_new(const char *cn, const char *org, struct pqm_err *e)
{
    size_t cnlen = strlen(cn);
    if (cnlen == 0 || cnlen > 64) {
        pqm__err_set(e, "common name '%.70s' must be 1 to 64 characters", cn);
        return NULL;
    }
    if (org != NULL && strlen(org) > 64) {
        pqm__err_set(e, "organization '%.70s' must be at most 64 characters", org);
        return NULL;
    }
    X509_NAME *n = X509_NAME_new();
    if (n == NULL)
        goto fail;
    if (org != NULL && org[0] != '\0' &&
        X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8, (const unsigned char *)org, -1, -1,
                                   0) != 1)
        goto fail;
    if (X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
                                   0) != 1)
        goto fail;
    return n;
fail:
    pqm__err_ossl(e, "cannot build the subject name for '%s'", cn);
    X509_NAME_free(n);
    return NULL;
}

static int add_ext_conf(X509 *x, X509V3_CTX *ctx, int nid, const char *value, struct pqm_err *e)
{
    X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, ctx, nid, value);
    if (ext == NULL)
        return pqm__err_ossl(e, "cannot build the %s extension", OBJ_nid2sn(nid));
    int ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    if (ok != 1)
        return pqm__err_ossl(e, "cannot add the %s extension", OBJ_nid2sn(nid));
    return 0;
}

static int add_ext_i2d(X509 *x, int nid, void *value, int critical, struct pqm_err *e)
{
    if (X509_add1_ext_i2d(x, nid, value, critical, X509V3_ADD_DEFAULT) != 1)
        return pqm__err_ossl(e, "cannot add the %s extension", OBJ_nid2sn(nid));
    return 0;
}

static int add_basic_constraints(X509 *x, int ca, int path_len, struct pqm_err *e)
{
    int rc = -1;
    BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
    GUARD_OSSL(bc != NULL, e, "out of memory");
    bc->ca = ca ? 0xff : 0;
    if (ca && path_len >= 0) {
        bc->pathlen = ASN1_INTEGER_new();
        GUARD_OSSL(bc->pathlen != NULL && ASN1_INTEGER_set(bc->pathlen, path_len) == 1, e,
                   "out of memory");
    }
    rc = add_ext_i2d(x, NID_basic_constraints, bc, 1, e);
cleanup:
    BASIC_CONSTRAINTS_free(bc);
    return rc;
}

static int add_key_usage(X509 *x, const int *bits, size_t n, struct pqm_err *e)
{
    int rc = -1;
    ASN1_BIT_STRING *ku = ASN1_BIT_STRING_new();
    GUARD_OSSL(ku != NULL, e, "out of memory");
    for (size_t i = 0; i < n; i++)
        GUARD_OSSL(ASN1_BIT_STRING_set_bit(ku, bits[i], 1) == 1, e, "out of memory");
    rc = add_ext_i2d(x, NID_key_usage, ku, 1, e);
cleanup:
    ASN1_BIT_STRING_free(ku);
    return rc;
}

static int add_eku(X509 *x, int nid, struct pqm_err *e)
{
    int rc = -1;
    EXTENDED_KEY_USAGE *eku = sk_ASN1_OBJECT_new_null();
    GUARD_OSSL(eku != NULL, e, "out of memory");
    ASN1_OBJECT *obj = OBJ_nid2obj(nid);
    GUARD_OSSL(obj != NULL && sk_ASN1_OBJECT_push(eku, obj) > 0, e, "out of memory");
    /* RFC 5280 4.2.1.12: EKU may be critical or not; not critical, as the Web PKI does. */
    rc = add_ext_i2d(x, NID_ext_key_usage, eku, 0, e);
cleanup:
    sk_ASN1_OBJECT_free(eku); /* OBJ_nid2obj objects are static */
    return rc;
}

static GENERAL_NAME *uri_name(const char *url)
{
    GENERAL_NAME *gn = GENERAL_NAME_new();
    ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
    if (gn == NULL || ia5 == NULL || ASN1_STRING_set(ia5, url, (int)strlen(url)) != 1) {
        GENERAL_NAME_free(gn);
        ASN1_IA5STRING_free(ia5);
        return NULL;
    }
    GENERAL_NAME_set0_value(gn, GEN_URI, ia5);
    return gn;
}

/* cRLDistributionPoints with one full-name URI (RFC 5280 4.2.1.13), built from the
 * structure so that no character of the URL is read as configuration syntax. */
static int add_crl_dp(X509 *x, const char *url, struct pqm_err *e)
{
    int rc = -1;
    CRL_DIST_POINTS *dps = sk_DIST_POINT_new_null();
    DIST_POINT *dp = DIST_POINT_new();
    GENERAL_NAME *gn = uri_name(url);
    GUARD_OSSL(dps != NULL && dp != NULL && gn != NULL &&
                   (dp->distpoint = DIST_POINT_NAME_new()) != NULL &&
                   (dp->distpoint->name.fullname = GENERAL_NAMES_new()) != NULL &&
                   sk_GENERAL_NAME_push(dp->distpoint->name.fullname, gn) > 0,
               e, "out of memory");
    gn = NULL;
    dp->distpoint->type = 0; /* fullName */
    GUARD_OSSL(sk_DIST_POINT_push(dps, dp) > 0, e, "out of memory");
    dp = NULL;
    rc = add_ext_i2d(x, NID_crl_distribution_points, dps, 0, e);
cleanup:
    GENERAL_NAME_free(gn);
    DIST_POINT_free(dp);
    sk_DIST_POINT_pop_free(dps, DIST_POINT_free);
    return rc;
}

/* authorityInfoAccess with the OCSP responder (RFC 5280 4.2.2.1). */
static int add_ocsp_aia(X509 *x, const char *url, struct pqm_err *e)
{
    int rc = -1;
    AUTHORITY_INFO_ACCESS *aia = sk_ACCESS_DESCRIPTION_new_null();
    ACCESS_DESCRIPTION *ad = ACCESS_DESCRIPTION_new();
    GENERAL_NAME *gn = uri_name(url);
    GUARD_OSSL(aia != NULL && ad != NULL && gn != NULL, e, "out of memory");
    ASN1_OBJECT_free(ad->method);
    ad->method = OBJ_nid2obj(NID_ad_OCSP);
    GENERAL_NAME_free(ad->location);
    ad->location = gn;
    gn = NULL;
    GUARD_OSSL(sk_ACCESS_DESCRIPTION_push(aia, ad) > 0, e, "out of memory");
    ad = NULL;
    rc = add_ext_i2d(x, NID_info_access, aia, 0, e);
cleanup:
    GENERAL_NAME_free(gn);
    ACCESS_DESCRIPTION_free(ad);
    sk_ACCESS_DESCRIPTION_pop_free(aia, ACCESS_DESCRIPTION_free);
    return rc;
}

/* The revocation pointers of a CA-issued certificate. */
static int add_revocation_info(X509 *x, const struct pqm_cert_spec *s, struct pqm_err *e)
{
    if (s->crl_url != NULL && s->crl_url[0] != '\0' && add_crl_dp(x, s->crl_url, e) != 0)
        return -1;
    if (s->ocsp_url != NULL && s->ocsp_url[0] != '\0' && add_ocsp_aia(x, s->ocsp_url, e) != 0)
        return -1;
    return 0;
}

/* Key usage bit numbers, RFC 5280 4.2.1.3. */
enum { BIT_DIGITAL_SIGNATURE = 0, BIT_KEY_CERT_SIGN = 5, BIT_CRL_SIGN = 6 };

/* A delegated OCSP signer (RFC 6960 4.2.2.2): EKU id-kp-OCSPSigning, and
 * id-pkix-ocsp-nocheck (4.2.2.2.1) so that clients do not ask about the signer itself;
 * it cannot be revoked in any way they would see, hence its short validity. */
static int add_ocsp_signer_extensions(X509 *x, X509V3_CTX *ctx, struct pqm_err *e)
{
    static const int ku[] = {BIT_DIGITAL_SIGNATURE};
    int rc = -1;
    ASN1_NULL *nocheck = ASN1_NULL_new();
    GUARD_OSSL(nocheck != NULL, e, "out of memory");
    GUARD(add_basic_constraints(x, 0, -1, e));
    GUARD(add_key_usage(x, ku, 1, e));
    GUARD(add_eku(x, NID_OCSP_sign, e));
    GUARD(add_ext_i2d(x, NID_id_pkix_OCSP_noCheck, nocheck, 0, e));
    GUARD(add_ext_conf(x, ctx, NID_subject_key_identifier, "hash", e));
    GUARD(add_ext_conf(x, ctx, NID_authority_key_identifier, "keyid:always", e));
    rc = 0;
cleanup:
    ASN1_NULL_free(nocheck);
    return rc;
}

static int add_profile_extensions(X509 *x, const struct pqm_cert_spec *s, struct pqm_err *e)
{
    static const int ca_ku[] = {BIT_KEY_CERT_SIGN, BIT_CRL_SIGN};
    static const int leaf_ku[] = {BIT_DIGITAL_SIGNATURE};
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, s->issuer != NULL ? s->issuer : x, x, NULL, NULL, 0);

    switch (s->kind) {
    case PQM_KIND_ROOT:
    case PQM_KIND_INTERMEDIATE:
        if (add_basic_constraints(x, 1, s->path_len, e) != 0 ||
            add_key_usage(x, ca_ku, 2, e) != 0 ||
            add_ext_conf(x, &ctx, NID_subject_key_identifier, "hash", e) != 0)
            return -1;
        if (s->kind == PQM_KIND_INTERMEDIATE &&
            add_ext_conf(x, &ctx, NID_authority_key_identifier, "keyid:always", e) != 0)
            return -1;
        /* RFC 5280 4.2.1.10: conforming CAs MUST mark name constraints critical. */
        if (s->nc != NULL && add_ext_i2d(x, NID_name_constraints, (void *)s->nc, 1, e) != 0)
            return -1;
        return s->kind == PQM_KIND_INTERMEDIATE ? add_revocation_info(x, s, e) : 0;
    case PQM_KIND_SERVER:
    case PQM_KIND_CLIENT:
        if (add_basic_constraints(x, 0, -1, e) != 0 || add_key_usage(x, leaf_ku, 1, e) != 0 ||
            add_eku(x, s->kind == PQM_KIND_SERVER ? NID_server_auth : NID_client_auth, e) != 0 ||
            add_ext_conf(x, &ctx, NID_subject_key_identifier, "hash", e) != 0 ||
            add_ext_conf(x, &ctx, NID_authority_key_identifier, "keyid:always", e) != 0)
            return -1;
        /* RFC 5280 4.2.1.6: critical when the subject is empty; ours never is. */
        if (s->sans != NULL && sk_GENERAL_NAME_num(s->sans) > 0 &&
            add_ext_i2d(x, NID_subject_alt_name, (void *)s->sans, 0, e) != 0)
            return -1;
        return add_revocation_info(x, s, e);
    case PQM_KIND_OCSP:
        return add_ocsp_signer_extensions(x, &ctx, e);
    default:
        return pqm__err_set(e, "unknown certificate kind %d", (int)s->kind);
    }
}

/* Key types whose SubjectPublicKeyInfo is their OID, no parameters, and the raw public
 * key (RFC 8410, and the ML-DSA and SLH-DSA certificate profiles). */
static int spki_is_raw(const EVP_PKEY *key)
{
    static const char *const types[] = {"ML-DSA-44", "ML-DSA-65", "ML-DSA-87", "ED25519",
                                        "SLH-DSA-SHA2-128s"};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (EVP_PKEY_is_a(key, types[i]))
            return 1;
    return 0;
}

/* X509_set_pubkey encodes the key and decodes it again, so that the certificate holds
 * a decoded key. When nothing will read that key back (ONLY_ENCODED), a raw-key type's
 * SubjectPublicKeyInfo is written directly from the raw public key, which costs a copy. */
static int set_pubkey(X509 *x, EVP_PKEY *key, int only_encoded, struct pqm_err *e)
{
    if (!only_encoded || !spki_is_raw(key)) {
        if (X509_set_pubkey(x, key) != 1)
            return pqm__err_ossl(e, "cannot set the public key");
        return 0;
    }
    size_t len = 0;
    unsigned char *raw = NULL;
    ASN1_OBJECT *oid = OBJ_txt2obj(EVP_PKEY_get0_type_name(key), 0);
    int ok = oid != NULL && EVP_PKEY_get_raw_public_key(key, NULL, &len) == 1 && len > 0 &&
             len <= INT_MAX && (raw = OPENSSL_malloc(len)) != NULL &&
             EVP_PKEY_get_raw_public_key(key, raw, &len) == 1 &&
             X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x), oid, V_ASN1_UNDEF, NULL, raw,
                                    (int)len) == 1;
    if (!ok) {
        OPENSSL_free(raw);
        ASN1_OBJECT_free(oid);
        return pqm__err_ossl(e, "cannot set the public key");
    }
    return 0;
}

X509 *pqm__cert_build(const struct pqm_cert_spec *s, struct pqm_err *e)
{
    X509 *x = X509_new();
    ASN1_INTEGER *serial = NULL;
    int ok = 0;

    GUARD_OSSL(x != NULL, e, "out of memory");
    GUARD_OSSL(X509_set_version(x, X509_VERSION_3) == 1, e, "cannot set the version");
    serial = BN_to_ASN1_INTEGER(s->serial, NULL);
    GUARD_OSSL(serial != NULL && X509_set_serialNumber(x, serial) == 1, e,
               "cannot set the serial number");
    GUARD_OSSL(X509_set_subject_name(x, s->subject) == 1, e, "cannot set the subject");
    GUARD_OSSL(X509_set_issuer_name(x, s->issuer != NULL ? X509_get_subject_name(s->issuer)
                                                          : s->subject) == 1,
               e, "cannot set the issuer");
    GUARD_OSSL(ASN1_TIME_set(X509_getm_notBefore(x), (time_t)s->not_before) != NULL &&
                   ASN1_TIME_set(X509_getm_notAfter(x), (time_t)s->not_after) != NULL,
               e, "cannot set the validity");
    GUARD(set_pubkey(x, s->subject_key, s->pubkey_only, e));
    GUARD(add_profile_extensions(x, s, e));
    GUARD_OSSL(X509_sign(x, s->issuer_key, pqm__alg_sign_md(s->issuer_key)) > 0, e,
               "cannot sign the certificate");
    ok = 1;
cleanup:
    ASN1_INTEGER_free(serial);
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

int pqm__cert_fingerprint(const X509 *x, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (X509_digest(x, EVP_sha256(), md, &len) != 1 || len != 32)
        return -1;
    pqm__hex(md, len, out);
    return 0;
}

int pqm__pem_encode(const char *label, const unsigned char *der, size_t derlen, char **pem,
                    size_t *len, struct pqm_err *e)
{
    /* RFC 7468: 64 base64 characters (48 bytes) per line. */
    size_t lines = (derlen + 47) / 48;
    size_t cap = 2 * (strlen(label) + 20) + lines * 66 + 1;
    char *out = malloc(cap), *p;
    if (out == NULL)
        return pqm__err_set(e, "out of memory");
    p = out + snprintf(out, cap, "-----BEGIN %s-----\n", label);
    for (size_t off = 0; off < derlen; off += 48) {
        size_t n = derlen - off < 48 ? derlen - off : 48;
        p += EVP_EncodeBlock((unsigned char *)p, der + off, (int)n);
        *p++ = '\n';
    }
    p += snprintf(p, cap - (size_t)(p - out), "-----END %s-----\n", label);
    *pem = out;
    *len = (size_t)(p - out);
    return 0;
}

int pqm__certs_to_pem(X509 *const *certs, size_t n, char **pem, size_t *len, struct pqm_err *e)
{
    int rc = -1;
    BIO *b = BIO_new(BIO_s_mem());
    char *data = NULL;
    GUARD_OSSL(b != NULL, e, "out of memory");
    for (size_t i = 0; i < n; i++)
        GUARD_OSSL(PEM_write_bio_X509(b, certs[i]) == 1, e, "cannot encode a certificate");
    long dlen = BIO_get_mem_data(b, &data);
    ENSURE(dlen > 0, e, "empty certificate output");
    *pem = malloc((size_t)dlen + 1);
    ENSURE(*pem != NULL, e, "out of memory");
    memcpy(*pem, data, (size_t)dlen);
    (*pem)[dlen] = '\0';
    *len = (size_t)dlen;
    rc = 0;
cleanup:
    BIO_free(b);
    return rc;
}

X509 *pqm__cert_load(const char *path, struct pqm_err *e)
{
    unsigned char *data = NULL;
    size_t len = 0;
    X509 *x = NULL;
    if (pqm__read_file(path, PQM_CERTFILE_MAX, &data, &len, e) != 0)
        return NULL;
    BIO *b = BIO_new_mem_buf(data, (int)len);
    if (b != NULL) {
        x = PEM_read_bio_X509(b, NULL, NULL, NULL);
        if (x == NULL) {
            const unsigned char *p = data;
            x = d2i_X509(NULL, &p, (long)len);
        }
        if (x != NULL)
            ERR_clear_error(); /* the PEM attempt's errors must not color a later message */
        BIO_free(b);
    }
    if (x == NULL)
        pqm__err_ossl(e, "%s: not a PEM or DER certificate", path);
    free(data);
    return x;
}
