/* Unit tests of pki/certbuild.c and pki/alg.c: the certificate profiles (root,
 * intermediate, server, client), serial numbers, subject names, fingerprints, and
 * every signature algorithm pqmtls offers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "pki/alg.h"
#include "pki/certbuild.h"
#include "pki/names.h"
#include "unit_util.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

enum { ROOT, INTER, SERVER, CLIENT, NCERTS };

static const char *const cert_label[NCERTS] = {"root", "intermediate", "server leaf",
                                               "client leaf"};

/* One chain, built once for the whole group. */
struct chain {
    EVP_PKEY *key[NCERTS];
    X509 *cert[NCERTS];
    BIGNUM *serial[NCERTS];
    NAME_CONSTRAINTS *nc;
    GENERAL_NAMES *server_sans, *client_sans;
    int64_t not_before, not_after;
};

static GENERAL_NAMES *sans_of(GENERAL_NAME *a, GENERAL_NAME *b)
{
    GENERAL_NAMES *g = sk_GENERAL_NAME_new_null();
    assert_non_null(g);
    assert_non_null(a);
    assert_true(sk_GENERAL_NAME_push(g, a) > 0);
    if (b != NULL)
        assert_true(sk_GENERAL_NAME_push(g, b) > 0);
    return g;
}

static X509 *build(struct chain *c, int which, enum pqm_cert_kind kind, int issuer, int path_len,
                   const NAME_CONSTRAINTS *nc, const GENERAL_NAMES *sans, const char *cn)
{
    struct pqm_err e = {{0}};
    X509_NAME *subject = pqm__name_new(cn, "pqmtls unit", &e);
    assert_non_null(subject);
    c->serial[which] = pqm__serial_new(&e);
    assert_non_null(c->serial[which]);
    struct pqm_cert_spec spec = {
        .kind = kind,
        .subject = subject,
        .subject_key = c->key[which],
        .issuer = issuer >= 0 ? c->cert[issuer] : NULL,
        .issuer_key = issuer >= 0 ? c->key[issuer] : c->key[which],
        .serial = c->serial[which],
        .not_before = c->not_before,
        .not_after = c->not_after,
        .path_len = path_len,
        .nc = nc,
        .sans = sans,
    };
    X509 *x = pqm__cert_build(&spec, &e);
    X509_NAME_free(subject);
    if (x == NULL)
        fail_msg("building the %s: %s", cert_label[which], pqm__err_str(&e));
    return x;
}

static int chain_setup(void **state)
{
    struct chain *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    struct pqm_err e = {{0}};
    const struct pqm_alg *alg = pqm__alg_find("ml-dsa-65");
    assert_non_null(alg);
    for (int i = 0; i < NCERTS; i++) {
        c->key[i] = pqm__alg_keygen(alg, &e);
        assert_non_null(c->key[i]);
    }
    c->not_before = (int64_t)time(NULL) - 60;
    c->not_after = c->not_before + 30 * 86400;

    c->nc = NAME_CONSTRAINTS_new();
    assert_non_null(c->nc);
    c->nc->permittedSubtrees = sk_GENERAL_SUBTREE_new_null();
    GENERAL_SUBTREE *sub = GENERAL_SUBTREE_new();
    assert_non_null(sub);
    GENERAL_NAME_free(sub->base);
    sub->base = pqm__gn_dns("example.com", &e);
    assert_non_null(sub->base);
    assert_true(sk_GENERAL_SUBTREE_push(c->nc->permittedSubtrees, sub) > 0);

    c->server_sans = sans_of(pqm__gn_dns("api.example.com", &e), pqm__gn_ip("127.0.0.1", &e));
    c->client_sans = sans_of(pqm__gn_uri("spiffe://cluster.local/ns/a/sa/b", &e), NULL);

    c->cert[ROOT] = build(c, ROOT, PQM_KIND_ROOT, -1, 2, NULL, NULL, "Unit Root CA");
    c->cert[INTER] = build(c, INTER, PQM_KIND_INTERMEDIATE, ROOT, 0, c->nc, NULL, "Unit Int CA");
    c->cert[SERVER] =
        build(c, SERVER, PQM_KIND_SERVER, INTER, -1, NULL, c->server_sans, "api.example.com");
    c->cert[CLIENT] = build(c, CLIENT, PQM_KIND_CLIENT, INTER, -1, NULL, c->client_sans, "client");
    *state = c;
    return 0;
}

static int chain_teardown(void **state)
{
    struct chain *c = *state;
    for (int i = 0; i < NCERTS; i++) {
        X509_free(c->cert[i]);
        EVP_PKEY_free(c->key[i]);
        BN_free(c->serial[i]);
    }
    NAME_CONSTRAINTS_free(c->nc);
    GENERAL_NAMES_free(c->server_sans);
    GENERAL_NAMES_free(c->client_sans);
    free(c);
    return 0;
}

/* 1 when present and critical, 0 when present and not, -1 when absent. */
static int ext_critical(X509 *x, int nid)
{
    int loc = X509_get_ext_by_NID(x, nid, -1);
    if (loc < 0)
        return -1;
    /* Exactly one of each: a second copy makes the certificate invalid (RFC 5280 4.2). */
    if (X509_get_ext_by_NID(x, nid, loc) >= 0)
        return -2;
    return X509_EXTENSION_get_critical(X509_get_ext(x, loc));
}

/* --- the profiles ------------------------------------------------------------------- */

struct bc_row {
    int which;
    int is_ca;    /* X509_check_ca() != 0 */
    long pathlen; /* X509_get_pathlen(), -1 for none */
};

static void test_basic_constraints(void **state)
{
    struct chain *c = *state;
    const struct bc_row rows[] = {
        {ROOT, 1, 2},
        {INTER, 1, 0},
        {SERVER, 0, -1},
        {CLIENT, 0, -1},
    };
    int bad = 0;
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        X509 *x = c->cert[rows[i].which];
        const char *l = cert_label[rows[i].which];
        int crit = ext_critical(x, NID_basic_constraints);
        if (crit != 1)
            TU_ROW_FAIL(bad, "%s: basicConstraints critical=%d, want present and critical", l,
                        crit);
        int ca = X509_check_ca(x);
        if ((ca != 0) != rows[i].is_ca)
            TU_ROW_FAIL(bad, "%s: X509_check_ca=%d, want CA=%d", l, ca, rows[i].is_ca);
        if (rows[i].is_ca && ca != 1)
            TU_ROW_FAIL(bad, "%s: X509_check_ca=%d, want 1 (a v3 CA with keyCertSign)", l, ca);
        long pl = X509_get_pathlen(x);
        if (pl != rows[i].pathlen)
            TU_ROW_FAIL(bad, "%s: pathlen %ld, want %ld", l, pl, rows[i].pathlen);
        BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(x, NID_basic_constraints, NULL, NULL);
        if (bc == NULL || (bc->ca != 0) != rows[i].is_ca)
            TU_ROW_FAIL(bad, "%s: basicConstraints cA flag wrong", l);
        BASIC_CONSTRAINTS_free(bc);
        if (X509_get_version(x) != X509_VERSION_3)
            TU_ROW_FAIL(bad, "%s: not a v3 certificate", l);
    }
    TU_ROWS_DONE(bad);
}

struct ku_row {
    int which;
    uint32_t ku; /* exactly these bits */
};

static void test_key_usage(void **state)
{
    struct chain *c = *state;
    const struct ku_row rows[] = {
        {ROOT, KU_KEY_CERT_SIGN | KU_CRL_SIGN},
        {INTER, KU_KEY_CERT_SIGN | KU_CRL_SIGN},
        {SERVER, KU_DIGITAL_SIGNATURE},
        {CLIENT, KU_DIGITAL_SIGNATURE},
    };
    int bad = 0;
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        X509 *x = c->cert[rows[i].which];
        const char *l = cert_label[rows[i].which];
        int crit = ext_critical(x, NID_key_usage);
        if (crit != 1)
            TU_ROW_FAIL(bad, "%s: keyUsage critical=%d, want present and critical", l, crit);
        uint32_t ku = X509_get_key_usage(x);
        if (ku != rows[i].ku)
            TU_ROW_FAIL(bad, "%s: keyUsage 0x%x, want exactly 0x%x", l, (unsigned)ku,
                        (unsigned)rows[i].ku);
    }
    TU_ROWS_DONE(bad);
}

struct eku_row {
    int which;
    int nid; /* the single EKU purpose, or NID_undef for none */
    uint32_t xku;
};

static void test_extended_key_usage(void **state)
{
    struct chain *c = *state;
    const struct eku_row rows[] = {
        {ROOT, NID_undef, UINT32_MAX},
        {INTER, NID_undef, UINT32_MAX},
        {SERVER, NID_server_auth, XKU_SSL_SERVER},
        {CLIENT, NID_client_auth, XKU_SSL_CLIENT},
    };
    int bad = 0;
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        X509 *x = c->cert[rows[i].which];
        const char *l = cert_label[rows[i].which];
        uint32_t xku = X509_get_extended_key_usage(x);
        if (xku != rows[i].xku)
            TU_ROW_FAIL(bad, "%s: extended key usage 0x%x, want 0x%x", l, (unsigned)xku,
                        (unsigned)rows[i].xku);
        EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(x, NID_ext_key_usage, NULL, NULL);
        if (rows[i].nid == NID_undef) {
            if (eku != NULL)
                TU_ROW_FAIL(bad, "%s: a CA certificate carries an EKU", l);
        } else if (eku == NULL || sk_ASN1_OBJECT_num(eku) != 1 ||
                   OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, 0)) != rows[i].nid) {
            TU_ROW_FAIL(bad, "%s: EKU is not exactly %s", l, OBJ_nid2sn(rows[i].nid));
        } else if (ext_critical(x, NID_ext_key_usage) != 0) {
            /* RFC 5280 4.2.1.12 allows either; the profile says not critical, as the Web PKI. */
            TU_ROW_FAIL(bad, "%s: EKU must be present once and not critical", l);
        }
        sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
    }
    TU_ROWS_DONE(bad);
}

struct kid_row {
    int which;
    int issuer; /* whose SKI the AKI must equal; -1: AKI not required */
};

static void test_key_identifiers(void **state)
{
    struct chain *c = *state;
    const struct kid_row rows[] = {
        {ROOT, -1},
        {INTER, ROOT},
        {SERVER, INTER},
        {CLIENT, INTER},
    };
    int bad = 0;
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        X509 *x = c->cert[rows[i].which];
        const char *l = cert_label[rows[i].which];
        const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(x);
        if (ski == NULL || ASN1_STRING_length(ski) == 0) {
            TU_ROW_FAIL(bad, "%s: no subject key identifier", l);
            continue;
        }
        if (ext_critical(x, NID_subject_key_identifier) != 0)
            TU_ROW_FAIL(bad, "%s: SKI must be present once and not critical", l);
        if (rows[i].issuer < 0)
            continue;
        const ASN1_OCTET_STRING *aki = X509_get0_authority_key_id(x);
        const ASN1_OCTET_STRING *issuer_ski = X509_get0_subject_key_id(c->cert[rows[i].issuer]);
        if (aki == NULL)
            TU_ROW_FAIL(bad, "%s: no authority key identifier", l);
        else if (issuer_ski == NULL || ASN1_OCTET_STRING_cmp(aki, issuer_ski) != 0)
            TU_ROW_FAIL(bad, "%s: AKI differs from the %s's SKI", l,
                        cert_label[rows[i].issuer]);
        else if (ext_critical(x, NID_authority_key_identifier) != 0)
            TU_ROW_FAIL(bad, "%s: AKI must be present once and not critical", l);
    }
    /* Different keys, different identifiers. */
    for (int i = 0; i < NCERTS; i++)
        for (int j = i + 1; j < NCERTS; j++)
            if (ASN1_OCTET_STRING_cmp(X509_get0_subject_key_id(c->cert[i]),
                                      X509_get0_subject_key_id(c->cert[j])) == 0)
                TU_ROW_FAIL(bad, "%s and %s share an SKI", cert_label[i], cert_label[j]);
    TU_ROWS_DONE(bad);
}

struct nc_row {
    int which;
    int present;
};

static void test_name_constraints_extension(void **state)
{
    struct chain *c = *state;
    const struct nc_row rows[] = {{ROOT, 0}, {INTER, 1}, {SERVER, 0}, {CLIENT, 0}};
    int bad = 0;
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        X509 *x = c->cert[rows[i].which];
        int crit = ext_critical(x, NID_name_constraints);
        if (rows[i].present ? crit != 1 : crit != -1)
            TU_ROW_FAIL(bad, "%s: nameConstraints critical=%d, want %s",
                        cert_label[rows[i].which], crit,
                        rows[i].present ? "present and critical" : "absent");
    }
    /* The intermediate's constraints are the ones given. */
    NAME_CONSTRAINTS *nc = X509_get_ext_d2i(c->cert[INTER], NID_name_constraints, NULL, NULL);
    assert_non_null(nc);
    assert_int_equal(sk_GENERAL_SUBTREE_num(nc->permittedSubtrees), 1);
    assert_null(nc->excludedSubtrees);
    char s[300];
    pqm__gn_format(sk_GENERAL_SUBTREE_value(nc->permittedSubtrees, 0)->base, s, sizeof(s));
    NAME_CONSTRAINTS_free(nc);
    assert_string_equal(s, "DNS:example.com");
    TU_ROWS_DONE(bad);
}

static void test_leaf_sans(void **state)
{
    struct chain *c = *state;
    struct {
        int which;
        const char *want; /* comma-joined, in order */
    } rows[] = {
        {SERVER, "DNS:api.example.com,IP:127.0.0.1"},
        {CLIENT, "URI:spiffe://cluster.local/ns/a/sa/b"},
        {ROOT, NULL},
        {INTER, NULL},
    };
    int bad = 0;
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        X509 *x = c->cert[rows[i].which];
        const char *l = cert_label[rows[i].which];
        int crit = ext_critical(x, NID_subject_alt_name);
        GENERAL_NAMES *g = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
        char got[600] = "";
        size_t used = 0;
        for (int k = 0; k < sk_GENERAL_NAME_num(g); k++) {
            char one[300];
            pqm__gn_format(sk_GENERAL_NAME_value(g, k), one, sizeof(one));
            used += (size_t)snprintf(got + used, sizeof(got) - used, "%s%s", k ? "," : "", one);
        }
        GENERAL_NAMES_free(g);
        if (rows[i].want == NULL) {
            if (crit != -1)
                TU_ROW_FAIL(bad, "%s: unexpected subjectAltName", l);
        } else if (crit != 0 || strcmp(got, rows[i].want) != 0) {
            TU_ROW_FAIL(bad, "%s: SAN '%s' (critical=%d), want '%s' not critical", l, got, crit,
                        rows[i].want);
        }
    }
    TU_ROWS_DONE(bad);
}

static void test_names_serial_validity(void **state)
{
    struct chain *c = *state;
    static const int issuer_of[NCERTS] = {ROOT, ROOT, INTER, INTER};
    ASN1_TIME *nb = ASN1_TIME_set(NULL, (time_t)c->not_before);
    ASN1_TIME *na = ASN1_TIME_set(NULL, (time_t)c->not_after);
    assert_non_null(nb);
    assert_non_null(na);
    int bad = 0;
    for (int i = 0; i < NCERTS; i++) {
        X509 *x = c->cert[i];
        if (X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(c->cert[issuer_of[i]])) !=
            0)
            TU_ROW_FAIL(bad, "%s: issuer name is not the %s's subject", cert_label[i],
                        cert_label[issuer_of[i]]);
        BIGNUM *sn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
        if (sn == NULL || BN_cmp(sn, c->serial[i]) != 0)
            TU_ROW_FAIL(bad, "%s: serial is not the one given", cert_label[i]);
        BN_free(sn);
        if (ASN1_TIME_compare(X509_get0_notBefore(x), nb) != 0 ||
            ASN1_TIME_compare(X509_get0_notAfter(x), na) != 0)
            TU_ROW_FAIL(bad, "%s: validity is not the one given", cert_label[i]);
    }
    ASN1_TIME_free(nb);
    ASN1_TIME_free(na);
    /* Subjects: CN and O as given. */
    char cn[80] = "", o[80] = "";
    X509_NAME_get_text_by_NID(X509_get_subject_name(c->cert[SERVER]), NID_commonName, cn,
                              sizeof(cn));
    X509_NAME_get_text_by_NID(X509_get_subject_name(c->cert[SERVER]), NID_organizationName, o,
                              sizeof(o));
    assert_string_equal(cn, "api.example.com");
    assert_string_equal(o, "pqmtls unit");
    TU_ROWS_DONE(bad);
}

struct sig_row {
    int which;
    int signer; /* whose key must verify it */
    int ok;
};

static void test_signatures(void **state)
{
    struct chain *c = *state;
    const struct sig_row rows[] = {
        {ROOT, ROOT, 1},       {INTER, ROOT, 1},    {SERVER, INTER, 1}, {CLIENT, INTER, 1},
        {INTER, INTER, 0},     {SERVER, ROOT, 0},   {CLIENT, SERVER, 0}, {ROOT, INTER, 0},
    };
    int bad = 0;
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        int v = X509_verify(c->cert[rows[i].which], c->key[rows[i].signer]);
        if ((v == 1) != rows[i].ok)
            TU_ROW_FAIL(bad, "%s verified with the %s's key: %d, want %s",
                        cert_label[rows[i].which], cert_label[rows[i].signer], v,
                        rows[i].ok ? "1" : "failure");
    }
    ERR_clear_error();
    TU_ROWS_DONE(bad);
}

/* The chain passes OpenSSL's own path validation, with the right purposes only. */
static void test_chain_verifies(void **state)
{
    struct chain *c = *state;
    struct {
        int leaf;
        int purpose;
        int ok;
    } rows[] = {
        {SERVER, X509_PURPOSE_SSL_SERVER, 1},
        {CLIENT, X509_PURPOSE_SSL_CLIENT, 1},
        {SERVER, X509_PURPOSE_SSL_CLIENT, 0},
        {CLIENT, X509_PURPOSE_SSL_SERVER, 0},
    };
    int bad = 0;
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        X509_STORE *store = X509_STORE_new();
        STACK_OF(X509) *untrusted = sk_X509_new_null();
        X509_STORE_CTX *ctx = X509_STORE_CTX_new();
        assert_non_null(store);
        assert_non_null(untrusted);
        assert_non_null(ctx);
        assert_int_equal(X509_STORE_add_cert(store, c->cert[ROOT]), 1);
        assert_true(sk_X509_push(untrusted, c->cert[INTER]) > 0);
        assert_int_equal(X509_STORE_CTX_init(ctx, store, c->cert[rows[i].leaf], untrusted), 1);
        X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(ctx), X509_V_FLAG_X509_STRICT);
        X509_STORE_CTX_set_purpose(ctx, rows[i].purpose);
        int v = X509_verify_cert(ctx);
        int err = X509_STORE_CTX_get_error(ctx);
        X509_STORE_CTX_free(ctx);
        sk_X509_free(untrusted);
        X509_STORE_free(store);
        if ((v == 1) != rows[i].ok)
            TU_ROW_FAIL(bad, "row %zu: %s for purpose %d: %s", i, cert_label[rows[i].leaf],
                        rows[i].purpose, v == 1 ? "verified" : X509_verify_cert_error_string(err));
    }
    ERR_clear_error();
    TU_ROWS_DONE(bad);
}

/* A name outside the intermediate's constraints fails path validation: the extension
 * built is the one verifiers enforce. */
static void test_constraint_enforced_by_openssl(void **state)
{
    struct chain *c = *state;
    struct pqm_err e = {{0}};
    X509_NAME *subject = pqm__name_new("evil.org", NULL, &e);
    BIGNUM *serial = pqm__serial_new(&e);
    GENERAL_NAMES *sans = sans_of(pqm__gn_dns("evil.org", &e), NULL);
    struct pqm_cert_spec spec = {
        .kind = PQM_KIND_SERVER,
        .subject = subject,
        .subject_key = c->key[SERVER],
        .issuer = c->cert[INTER],
        .issuer_key = c->key[INTER],
        .serial = serial,
        .not_before = c->not_before,
        .not_after = c->not_after,
        .path_len = -1,
        .sans = sans,
    };
    X509 *x = pqm__cert_build(&spec, &e);
    assert_non_null(x);
    X509_STORE *store = X509_STORE_new();
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    X509_STORE_add_cert(store, c->cert[ROOT]);
    sk_X509_push(untrusted, c->cert[INTER]);
    X509_STORE_CTX_init(ctx, store, x, untrusted);
    int v = X509_verify_cert(ctx);
    int err = X509_STORE_CTX_get_error(ctx);
    X509_STORE_CTX_free(ctx);
    sk_X509_free(untrusted);
    X509_STORE_free(store);
    X509_free(x);
    GENERAL_NAMES_free(sans);
    BN_free(serial);
    X509_NAME_free(subject);
    ERR_clear_error();
    assert_int_not_equal(v, 1);
    assert_int_equal(err, X509_V_ERR_PERMITTED_VIOLATION);
}

/* --- serial numbers, fingerprints, names --------------------------------------------- */

static int cmp_hex(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_serial_new(void **state)
{
    (void)state;
    enum { DRAWS = 1000 };
    char **hex = calloc(DRAWS, sizeof(char *));
    assert_non_null(hex);
    int top_bit_seen = 0;
    for (int i = 0; i < DRAWS; i++) {
        struct pqm_err e = {{0}};
        BIGNUM *bn = pqm__serial_new(&e);
        assert_non_null(bn);
        assert_false(BN_is_zero(bn));
        assert_false(BN_is_negative(bn));
        assert_true(BN_num_bits(bn) <= PQM_SERIAL_BITS);
        if (BN_num_bits(bn) == PQM_SERIAL_BITS)
            top_bit_seen = 1;
        /* RFC 5280 4.1.2.2: at most 20 octets in DER, and positive. */
        ASN1_INTEGER *ai = BN_to_ASN1_INTEGER(bn, NULL);
        assert_non_null(ai);
        assert_int_equal(ASN1_STRING_type(ai), V_ASN1_INTEGER);
        unsigned char *der = NULL;
        int derlen = i2d_ASN1_INTEGER(ai, &der);
        assert_true(derlen > 2 && derlen <= 2 + 20);
        assert_true(der[2] < 0x80); /* sign bit of the first content octet */
        OPENSSL_free(der);
        ASN1_INTEGER_free(ai);
        hex[i] = BN_bn2hex(bn);
        assert_non_null(hex[i]);
        BN_free(bn);
    }
    /* Half the draws have the top bit: one in 1000 without it would mean fewer bits. */
    assert_true(top_bit_seen);
    qsort(hex, DRAWS, sizeof(char *), cmp_hex);
    int dups = 0;
    for (int i = 1; i < DRAWS; i++)
        if (strcmp(hex[i - 1], hex[i]) == 0)
            dups++;
    for (int i = 0; i < DRAWS; i++)
        OPENSSL_free(hex[i]);
    free(hex);
    assert_int_equal(dups, 0);
}

static void test_serial_hex(void **state)
{
    (void)state;
    BIGNUM *bn = NULL;
    assert_true(BN_hex2bn(&bn, "00ABCDEF0123456789") > 0);
    char out[64];
    assert_int_equal(pqm__serial_hex(bn, out, sizeof(out)), 0);
    assert_string_equal(out, "ABCDEF0123456789");
    /* Too small a buffer is an error, not a truncated serial. */
    char small[8];
    assert_int_equal(pqm__serial_hex(bn, small, sizeof(small)), -1);
    BN_free(bn);
}

static void test_fingerprint(void **state)
{
    struct chain *c = *state;
    char fps[NCERTS][65];
    for (int i = 0; i < NCERTS; i++) {
        assert_int_equal(pqm__cert_fingerprint(c->cert[i], fps[i]), 0);
        assert_int_equal(strlen(fps[i]), 64);
        for (int k = 0; k < 64; k++)
            assert_non_null(strchr("0123456789abcdef", fps[i][k]));
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int len = 0;
        assert_int_equal(X509_digest(c->cert[i], EVP_sha256(), md, &len), 1);
        assert_int_equal(len, 32);
        char want[65];
        for (unsigned k = 0; k < len; k++)
            snprintf(want + 2 * k, 3, "%02x", md[k]);
        assert_string_equal(fps[i], want);
    }
    for (int i = 0; i < NCERTS; i++)
        for (int j = i + 1; j < NCERTS; j++)
            assert_string_not_equal(fps[i], fps[j]);
}

struct name_row {
    const char *why;
    const char *cn, *org;
    int ok;
    int entries; /* RDNs in the name */
};

static void test_name_new(void **state)
{
    (void)state;
    char cn64[65], cn65[66], org65[66];
    memset(cn64, 'c', 64);
    cn64[64] = '\0';
    memset(cn65, 'c', 65);
    cn65[65] = '\0';
    memset(org65, 'o', 65);
    org65[65] = '\0';
    const struct name_row rows[] = {
        {"cn and org", "api.example.com", "Example", 1, 2},
        {"cn only (NULL org)", "x", NULL, 1, 1},
        {"cn only (empty org)", "x", "", 1, 1},
        {"64-char cn", cn64, NULL, 1, 1},
        {"UTF-8 cn", "caf\xc3\xa9", NULL, 1, 1},
        {"empty cn", "", NULL, 0, 0},
        {"empty cn with org", "", "Example", 0, 0},
        {"65-char cn", cn65, NULL, 0, 0},
        {"65-char org", "x", org65, 0, 0},
    };
    int bad = 0;
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        struct pqm_err e = {{0}};
        X509_NAME *n = pqm__name_new(rows[i].cn, rows[i].org, &e);
        if (!rows[i].ok) {
            if (n != NULL)
                TU_ROW_FAIL(bad, "row %zu (%s): accepted", i, rows[i].why);
            else if (e.msg[0] == '\0')
                TU_ROW_FAIL(bad, "row %zu (%s): refused without a reason", i, rows[i].why);
            X509_NAME_free(n);
            continue;
        }
        if (n == NULL) {
            TU_ROW_FAIL(bad, "row %zu (%s): refused: %s", i, rows[i].why, pqm__err_str(&e));
            continue;
        }
        char cn[128] = "";
        X509_NAME_get_text_by_NID(n, NID_commonName, cn, sizeof(cn));
        if (X509_NAME_entry_count(n) != rows[i].entries || strcmp(cn, rows[i].cn) != 0)
            TU_ROW_FAIL(bad, "row %zu (%s): %d entries, CN '%s'", i, rows[i].why,
                        X509_NAME_entry_count(n), cn);
        X509_NAME_free(n);
    }
    TU_ROWS_DONE(bad);
}

/* pqm__pem_encode is byte for byte what OpenSSL's PEM writer makes (RFC 7468: 64
 * base64 characters a line), at every line-boundary length. */
static void test_pem_encode(void **state)
{
    (void)state;
    static const size_t lens[] = {1, 2, 3, 47, 48, 49, 95, 96, 97, 1000, 4096};
    unsigned char der[4096];
    for (size_t i = 0; i < sizeof(der); i++)
        der[i] = (unsigned char)(i * 7 + 3);
    int bad = 0;
    for (size_t i = 0; i < ARRAY_LEN(lens); i++) {
        struct pqm_err e = {{0}};
        char *pem = NULL;
        size_t len = 0;
        if (pqm__pem_encode("TEST DATA", der, lens[i], &pem, &len, &e) != 0) {
            TU_ROW_FAIL(bad, "length %zu: %s", lens[i], pqm__err_str(&e));
            continue;
        }
        BIO *b = BIO_new(BIO_s_mem());
        assert_non_null(b);
        assert_true(PEM_write_bio(b, "TEST DATA", "", der, (long)lens[i]) > 0);
        char *want = NULL;
        long wlen = BIO_get_mem_data(b, &want);
        if (len != strlen(pem))
            TU_ROW_FAIL(bad, "length %zu: reported %zu, NUL at %zu", lens[i], len, strlen(pem));
        else if ((long)len != wlen || memcmp(pem, want, len) != 0)
            TU_ROW_FAIL(bad, "length %zu: got\n%s\nwant\n%.*s", lens[i], pem, (int)wlen, want);
        BIO_free(b);
        free(pem);
    }
    TU_ROWS_DONE(bad);
}

/* A certificate's PEM from pqm__pem_encode reads back as the same certificate, and
 * pqm__sha256_hex of its DER is its fingerprint. */
static void test_pem_encode_certificate(void **state)
{
    struct chain *c = *state;
    struct pqm_err e = {{0}};
    unsigned char *der = NULL;
    int derlen = i2d_X509(c->cert[SERVER], &der);
    assert_true(derlen > 0);
    char *pem = NULL, fp[65], want_fp[65];
    size_t len = 0;
    assert_int_equal(pqm__pem_encode("CERTIFICATE", der, (size_t)derlen, &pem, &len, &e), 0);
    assert_int_equal(pqm__sha256_hex(der, (size_t)derlen, fp), 0);
    OPENSSL_free(der);
    assert_int_equal(pqm__cert_fingerprint(c->cert[SERVER], want_fp), 0);
    assert_string_equal(fp, want_fp);
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    free(pem);
    assert_non_null(x);
    int same = X509_cmp(x, c->cert[SERVER]);
    X509_free(x);
    assert_int_equal(same, 0);
    /* Different data, different hash. */
    char other[65];
    assert_int_equal(pqm__sha256_hex((const unsigned char *)"abc", 3, other), 0);
    assert_string_equal(other, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

/* --- every algorithm ------------------------------------------------------------------ */

struct alg_row {
    const char *name;
    int sig_nid; /* signature algorithm of a certificate it signs */
    int post_quantum;
};

static const struct alg_row alg_rows[] = {
    {"ml-dsa-65", NID_ML_DSA_65, 1},
    {"ml-dsa-44", NID_ML_DSA_44, 1},
    {"ml-dsa-87", NID_ML_DSA_87, 1},
    {"slh-dsa-sha2-128s", NID_SLH_DSA_SHA2_128s, 1},
    {"ecdsa-p256", NID_ecdsa_with_SHA256, 0},
    {"ecdsa-p384", NID_ecdsa_with_SHA384, 0},
    {"ed25519", NID_ED25519, 0},
    {"rsa-3072", NID_sha256WithRSAEncryption, 0},
};

static void test_alg_names_listed(void **state)
{
    (void)state;
    /* pqm__alg_names() lists exactly the table's algorithms, each findable. */
    char list[512];
    snprintf(list, sizeof(list), "%s", pqm__alg_names());
    size_t n = 0;
    for (char *p = list, *next; p != NULL && *p != '\0'; p = next) {
        next = strstr(p, ", ");
        if (next != NULL) {
            *next = '\0';
            next += 2;
        }
        int found = 0;
        for (size_t i = 0; i < ARRAY_LEN(alg_rows); i++)
            found |= strcmp(alg_rows[i].name, p) == 0;
        if (!found)
            fail_msg("pqm__alg_names() lists '%s', which the test does not know", p);
        const struct pqm_alg *a = pqm__alg_find(p);
        assert_non_null(a);
        assert_string_equal(a->name, p);
        n++;
    }
    assert_int_equal(n, ARRAY_LEN(alg_rows));
}

static void test_every_algorithm(void **state)
{
    (void)state;
    int bad = 0;
    for (size_t i = 0; i < ARRAY_LEN(alg_rows); i++) {
        const struct alg_row *r = &alg_rows[i];
        struct pqm_err e = {{0}};
        const struct pqm_alg *alg = pqm__alg_find(r->name);
        if (alg == NULL) {
            TU_ROW_FAIL(bad, "%s: not found", r->name);
            continue;
        }
        if (alg->post_quantum != r->post_quantum)
            TU_ROW_FAIL(bad, "%s: post_quantum=%d", r->name, alg->post_quantum);
        EVP_PKEY *key = pqm__alg_keygen(alg, &e);
        if (key == NULL) {
            TU_ROW_FAIL(bad, "%s: keygen: %s", r->name, pqm__err_str(&e));
            continue;
        }
        const char *back = pqm__alg_name_of_key(key);
        if (strcmp(back, r->name) != 0)
            TU_ROW_FAIL(bad, "%s: pqm__alg_name_of_key says '%s'", r->name, back);
        X509_NAME *subject = pqm__name_new("Root", NULL, &e);
        BIGNUM *serial = pqm__serial_new(&e);
        assert_non_null(subject);
        assert_non_null(serial);
        struct pqm_cert_spec spec = {
            .kind = PQM_KIND_ROOT,
            .subject = subject,
            .subject_key = key,
            .issuer_key = key,
            .serial = serial,
            .not_before = (int64_t)time(NULL),
            .not_after = (int64_t)time(NULL) + 86400,
            .path_len = 1,
        };
        X509 *x = pqm__cert_build(&spec, &e);
        if (x == NULL) {
            TU_ROW_FAIL(bad, "%s: build: %s", r->name, pqm__err_str(&e));
        } else {
            if (X509_verify(x, key) != 1)
                TU_ROW_FAIL(bad, "%s: the self-signed root does not verify", r->name);
            if (X509_check_ca(x) != 1 || X509_check_issued(x, x) != X509_V_OK)
                TU_ROW_FAIL(bad, "%s: not a self-issued CA", r->name);
            if (X509_get_signature_nid(x) != r->sig_nid)
                TU_ROW_FAIL(bad, "%s: signature algorithm %s, want %s", r->name,
                            OBJ_nid2sn(X509_get_signature_nid(x)), OBJ_nid2sn(r->sig_nid));
            const char *pub = pqm__alg_name_of_key(X509_get0_pubkey(x));
            if (strcmp(pub, r->name) != 0)
                TU_ROW_FAIL(bad, "%s: the certificate's key reads back as '%s'", r->name, pub);
        }
        X509_free(x);
        BN_free(serial);
        X509_NAME_free(subject);
        EVP_PKEY_free(key);
    }
    ERR_clear_error();
    TU_ROWS_DONE(bad);
}

static X509 *leaf_for(EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, int pubkey_only)
{
    struct pqm_err e = {{0}};
    X509_NAME *subject = pqm__name_new("leaf", NULL, &e);
    BIGNUM *serial = pqm__serial_new(&e);
    assert_non_null(subject);
    assert_non_null(serial);
    struct pqm_cert_spec spec = {
        .kind = PQM_KIND_CLIENT,
        .subject = subject,
        .subject_key = key,
        .issuer = issuer,
        .issuer_key = issuer_key,
        .serial = serial,
        .not_before = (int64_t)time(NULL),
        .not_after = (int64_t)time(NULL) + 86400,
        .path_len = -1,
        .pubkey_only = pubkey_only,
    };
    X509 *x = pqm__cert_build(&spec, &e);
    if (x == NULL)
        fail_msg("build (pubkey_only=%d): %s", pubkey_only, pqm__err_str(&e));
    BN_free(serial);
    X509_NAME_free(subject);
    return x;
}

/* A certificate built with only the encoded key (the raw public key written straight
 * into the SubjectPublicKeyInfo) is byte for byte the one X509_set_pubkey makes, and
 * once parsed holds the same key; key types without a raw encoding take the usual way. */
static void test_pubkey_only(void **state)
{
    (void)state;
    const char *const algs[] = {"ml-dsa-65", "ml-dsa-44", "ed25519", "ecdsa-p256"};
    for (size_t i = 0; i < ARRAY_LEN(algs); i++) {
        struct pqm_err e = {{0}};
        const struct pqm_alg *alg = pqm__alg_find(algs[i]);
        assert_non_null(alg);
        EVP_PKEY *ca_key = pqm__alg_keygen(alg, &e), *key = pqm__alg_keygen(alg, &e);
        assert_non_null(ca_key);
        assert_non_null(key);
        X509_NAME *ca_name = pqm__name_new("CA", NULL, &e);
        BIGNUM *serial = pqm__serial_new(&e);
        struct pqm_cert_spec ca_spec = {
            .kind = PQM_KIND_ROOT,
            .subject = ca_name,
            .subject_key = ca_key,
            .issuer_key = ca_key,
            .serial = serial,
            .not_before = (int64_t)time(NULL),
            .not_after = (int64_t)time(NULL) + 86400,
            .path_len = 0,
        };
        X509 *ca = pqm__cert_build(&ca_spec, &e);
        assert_non_null(ca);
        X509 *plain = leaf_for(key, ca, ca_key, 0), *raw = leaf_for(key, ca, ca_key, 1);
        unsigned char *d1 = NULL, *d2 = NULL;
        int n1 = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(plain), &d1);
        int n2 = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(raw), &d2);
        if (n1 <= 0 || n1 != n2 || memcmp(d1, d2, (size_t)n1) != 0)
            fail_msg("%s: the SubjectPublicKeyInfo differs (%d and %d bytes)", algs[i], n1, n2);
        /* The short way was taken where it exists: no decoded key in the built one. */
        int raw_type = strcmp(algs[i], "ecdsa-p256") != 0;
        if ((X509_get0_pubkey(raw) == NULL) != raw_type)
            fail_msg("%s: the built certificate %s a decoded key", algs[i],
                     raw_type ? "holds" : "lacks");
        ERR_clear_error();
        unsigned char *der = NULL;
        int len = i2d_X509(raw, &der);
        assert_true(len > 0);
        const unsigned char *p = der;
        X509 *back = d2i_X509(NULL, &p, len);
        assert_non_null(back);
        if (EVP_PKEY_eq(X509_get0_pubkey(back), key) != 1)
            fail_msg("%s: the parsed certificate holds another key", algs[i]);
        if (X509_verify(back, ca_key) != 1)
            fail_msg("%s: the certificate does not verify", algs[i]);
        X509_free(back);
        OPENSSL_free(der);
        OPENSSL_free(d1);
        OPENSSL_free(d2);
        X509_free(raw);
        X509_free(plain);
        X509_free(ca);
        BN_free(serial);
        X509_NAME_free(ca_name);
        EVP_PKEY_free(key);
        EVP_PKEY_free(ca_key);
    }
}

static void test_unknown_algorithms(void **state)
{
    (void)state;
    const char *const rows[] = {"ml-dsa-99", "", "rsa", "ecdsa", "ml-dsa", "rsa-2048",
                                "ml-dsa-65 ", "ed448", NULL};
    int bad = 0;
    for (size_t i = 0; i < ARRAY_LEN(rows); i++)
        if (pqm__alg_find(rows[i]) != NULL)
            TU_ROW_FAIL(bad, "'%s' is found", rows[i] != NULL ? rows[i] : "(NULL)");
    TU_ROWS_DONE(bad);
}

/* Keys that are none of ours read back as OpenSSL's type, never as one of ours. */
static void test_name_of_foreign_key(void **state)
{
    (void)state;
    struct {
        EVP_PKEY *key;
        const char *want;
    } rows[] = {
        {EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521"), "EC"},
        {EVP_PKEY_Q_keygen(NULL, NULL, "X25519"), "X25519"},
        {EVP_PKEY_Q_keygen(NULL, NULL, "ED448"), "ED448"},
    };
    int bad = 0;
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        if (rows[i].key == NULL) {
            TU_ROW_FAIL(bad, "row %zu: cannot make the key", i);
            continue;
        }
        const char *got = pqm__alg_name_of_key(rows[i].key);
        if (strcmp(got, rows[i].want) != 0)
            TU_ROW_FAIL(bad, "row %zu: '%s', want '%s'", i, got, rows[i].want);
        if (pqm__alg_find(got) != NULL)
            TU_ROW_FAIL(bad, "row %zu: a foreign key reads back as our '%s'", i, got);
        EVP_PKEY_free(rows[i].key);
    }
    TU_ROWS_DONE(bad);
}

static void test_sign_md(void **state)
{
    (void)state;
    struct {
        const char *alg;
        const char *md; /* NULL: none */
    } rows[] = {
        {"ml-dsa-65", NULL},       {"ed25519", NULL},        {"ecdsa-p256", "SHA256"},
        {"ecdsa-p384", "SHA384"},  {"rsa-3072", "SHA256"},
    };
    int bad = 0;
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        struct pqm_err e = {{0}};
        EVP_PKEY *k = pqm__alg_keygen(pqm__alg_find(rows[i].alg), &e);
        assert_non_null(k);
        const EVP_MD *md = pqm__alg_sign_md(k);
        if (rows[i].md == NULL ? md != NULL : (md == NULL || !EVP_MD_is_a(md, rows[i].md)))
            TU_ROW_FAIL(bad, "%s: digest %s, want %s", rows[i].alg,
                        md != NULL ? EVP_MD_get0_name(md) : "none",
                        rows[i].md != NULL ? rows[i].md : "none");
        EVP_PKEY_free(k);
    }
    TU_ROWS_DONE(bad);
}

/* An unknown kind is refused, not signed. */
static void test_build_refuses_unknown_kind(void **state)
{
    struct chain *c = *state;
    struct pqm_err e = {{0}};
    X509_NAME *subject = pqm__name_new("x", NULL, &e);
    BIGNUM *serial = pqm__serial_new(&e);
    struct pqm_cert_spec spec = {
        .kind = (enum pqm_cert_kind)42,
        .subject = subject,
        .subject_key = c->key[SERVER],
        .issuer_key = c->key[SERVER],
        .serial = serial,
        .not_before = c->not_before,
        .not_after = c->not_after,
        .path_len = -1,
    };
    X509 *x = pqm__cert_build(&spec, &e);
    X509_NAME_free(subject);
    BN_free(serial);
    X509_free(x);
    assert_null(x);
    tu_assert_contains(e.msg, "kind");
}

int main(void)
{
    const struct CMUnitTest chain_tests[] = {
        cmocka_unit_test(test_basic_constraints),
        cmocka_unit_test(test_key_usage),
        cmocka_unit_test(test_extended_key_usage),
        cmocka_unit_test(test_key_identifiers),
        cmocka_unit_test(test_name_constraints_extension),
        cmocka_unit_test(test_leaf_sans),
        cmocka_unit_test(test_names_serial_validity),
        cmocka_unit_test(test_signatures),
        cmocka_unit_test(test_chain_verifies),
        cmocka_unit_test(test_constraint_enforced_by_openssl),
        cmocka_unit_test(test_fingerprint),
        cmocka_unit_test(test_pem_encode_certificate),
        cmocka_unit_test(test_build_refuses_unknown_kind),
    };
    const struct CMUnitTest other_tests[] = {
        cmocka_unit_test(test_serial_new),
        cmocka_unit_test(test_serial_hex),
        cmocka_unit_test(test_name_new),
        cmocka_unit_test(test_pem_encode),
        cmocka_unit_test(test_alg_names_listed),
        cmocka_unit_test(test_every_algorithm),
        cmocka_unit_test(test_pubkey_only),
        cmocka_unit_test(test_unknown_algorithms),
        cmocka_unit_test(test_name_of_foreign_key),
        cmocka_unit_test(test_sign_md),
    };
    int failed = cmocka_run_group_tests_name("certbuild_chain", chain_tests, chain_setup,
                                             chain_teardown);
    failed += cmocka_run_group_tests_name("certbuild", other_tests, NULL, NULL);
    return failed;
}
