/* Unit tests of pki/crlbuild.c and of the CRL lookup in tls/trust.c: reason names,
 * the CRL's extensions (number, AKI, reason codes), and a 100,000-entry CRL that loads
 * (its signature checked once) and answers revoked / not revoked correctly; the cache of
 * verified leaves. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "pki/alg.h"
#include "pki/certbuild.h"
#include "pki/crlbuild.h"
#include "test_certs.h"
#include "tls/trust.h"
#include "util/timeutil.h"
#include "unit_util.h"

#define BIG_CRL 100000

struct fixture {
    EVP_PKEY *ca_key, *leaf_key;
    X509 *ca;
    char *dir;
};

static X509 *make_cert(struct fixture *f, enum pqm_cert_kind kind, EVP_PKEY *key,
                       const BIGNUM *serial, const char *cn)
{
    struct pqm_err e = {{0}};
    X509_NAME *subject = pqm__name_new(cn, "pqmtls unit", &e);
    assert_non_null(subject);
    int64_t now = (int64_t)time(NULL);
    struct pqm_cert_spec spec = {
        .kind = kind,
        .subject = subject,
        .subject_key = key,
        .issuer = kind == PQM_KIND_ROOT ? NULL : f->ca,
        .issuer_key = f->ca_key,
        .serial = serial,
        .not_before = now - 60,
        .not_after = now + 86400,
        .path_len = kind == PQM_KIND_ROOT ? 1 : -1,
    };
    X509 *x = pqm__cert_build(&spec, &e);
    assert_non_null(x);
    X509_NAME_free(subject);
    return x;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct pqm_err e = {{0}};
    assert_non_null(f);
    f->ca_key = pqm__alg_keygen(pqm__alg_find("ml-dsa-65"), &e);
    f->leaf_key = pqm__alg_keygen(pqm__alg_find("ed25519"), &e);
    assert_non_null(f->ca_key);
    assert_non_null(f->leaf_key);
    BIGNUM *s = pqm__serial_new(&e);
    f->ca = make_cert(f, PQM_KIND_ROOT, f->ca_key, s, "CRL Test CA");
    BN_free(s);
    f->dir = tu_mkdtemp("crl");
    assert_non_null(f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    EVP_PKEY_free(f->ca_key);
    EVP_PKEY_free(f->leaf_key);
    X509_free(f->ca);
    tu_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static void test_reason_names(void **state)
{
    (void)state;
    assert_int_equal(pqm__crl_reason_code("unspecified"), 0);
    assert_int_equal(pqm__crl_reason_code("keyCompromise"), 1);
    assert_int_equal(pqm__crl_reason_code("cACompromise"), 2);
    assert_int_equal(pqm__crl_reason_code("superseded"), 4);
    assert_int_equal(pqm__crl_reason_code("cessationOfOperation"), 5);
    assert_int_equal(pqm__crl_reason_code("privilegeWithdrawn"), 9);
    assert_int_equal(pqm__crl_reason_code("aACompromise"), 10);
    /* Holds are not offered (a pqmtls revocation is final); names are exact. */
    assert_int_equal(pqm__crl_reason_code("certificateHold"), -1);
    assert_int_equal(pqm__crl_reason_code("removeFromCRL"), -1);
    assert_int_equal(pqm__crl_reason_code("keycompromise"), -1);
    assert_non_null(strstr(pqm__crl_reason_names(), "keyCompromise"));
}

static int entry_reason(const X509_REVOKED *r)
{
    int crit = 0;
    ASN1_ENUMERATED *code = X509_REVOKED_get_ext_d2i(r, NID_crl_reason, &crit, NULL);
    if (code == NULL)
        return crit == -1 ? -1 : -2; /* -1: absent */
    int v = (int)ASN1_ENUMERATED_get(code);
    ASN1_ENUMERATED_free(code);
    return v;
}

/* A small CRL: the entries, their reasons (none for unspecified), its number, AKI. */
static void test_extensions(void **state)
{
    struct fixture *f = *state;
    struct pqm_err e = {{0}};
    int64_t now = (int64_t)time(NULL);
    struct pqm_crl_spec spec = {f->ca, f->ca_key, now, now + 3600, 42};
    struct pqm_crl_builder b;
    assert_int_equal(pqm__crl_begin(&b, &spec, &e), 0);
    assert_int_equal(pqm__crl_add(&b, "0A", now - 10, 1), 0);
    assert_int_equal(pqm__crl_add(&b, "01", now - 20, 0), 0);
    assert_int_equal(pqm__crl_add(&b, "zz", now, 1), -1); /* not hex */
    assert_non_null(strstr(pqm__err_str(&e), "zz"));
    X509_CRL *crl = pqm__crl_finish(&b, &spec);
    assert_non_null(crl);
    assert_int_equal(X509_CRL_verify(crl, f->ca_key), 1);
    assert_int_equal(X509_CRL_get_version(crl), X509_CRL_VERSION_2);

    STACK_OF(X509_REVOKED) *revs = X509_CRL_get_REVOKED(crl);
    assert_int_equal(sk_X509_REVOKED_num(revs), 2);
    /* Sorted by serial: 01 then 0A. */
    const X509_REVOKED *r0 = sk_X509_REVOKED_value(revs, 0);
    const X509_REVOKED *r1 = sk_X509_REVOKED_value(revs, 1);
    assert_int_equal(ASN1_INTEGER_get(X509_REVOKED_get0_serialNumber(r0)), 1);
    assert_int_equal(ASN1_INTEGER_get(X509_REVOKED_get0_serialNumber(r1)), 10);
    assert_int_equal(entry_reason(r0), -1);
    assert_int_equal(entry_reason(r1), 1);

    int crit = 0;
    ASN1_INTEGER *num = X509_CRL_get_ext_d2i(crl, NID_crl_number, &crit, NULL);
    assert_non_null(num);
    assert_int_equal(ASN1_INTEGER_get(num), 42);
    ASN1_INTEGER_free(num);
    AUTHORITY_KEYID *akid = X509_CRL_get_ext_d2i(crl, NID_authority_key_identifier, &crit, NULL);
    assert_non_null(akid);
    assert_int_equal(ASN1_OCTET_STRING_cmp(akid->keyid, X509_get0_subject_key_id(f->ca)), 0);
    AUTHORITY_KEYID_free(akid);
    X509_CRL_free(crl);
}

static void write_pem(const char *path, X509 *x, X509_CRL *crl)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    if (x != NULL)
        assert_int_equal(PEM_write_X509(fp, x), 1);
    if (crl != NULL)
        assert_int_equal(PEM_write_X509_CRL(fp, crl), 1);
    assert_int_equal(fclose(fp), 0);
}

/* A client trust in T from F's CA and CRL (written under F's directory as TAG-ca.pem,
 * whose path goes in CA_PATH, and TAG.crl.pem; CRL is freed). */
static void trust_with_crl(struct fixture *f, struct pqm_trust *t, X509_CRL *crl, const char *tag,
                           char *ca_path, size_t ca_len)
{
    struct pqm_err e = {{0}};
    char crl_path[512];
    snprintf(ca_path, ca_len, "%s/%s-ca.pem", f->dir, tag);
    snprintf(crl_path, sizeof(crl_path), "%s/%s.crl.pem", f->dir, tag);
    write_pem(ca_path, f->ca, NULL);
    write_pem(crl_path, NULL, crl);
    X509_CRL_free(crl);
    memset(t, 0, sizeof(*t));
    t->purpose = X509_PURPOSE_SSL_CLIENT;
    t->depth = 2;
    const char *files[] = {crl_path};
    assert_int_equal(pqm__trust_load(t, ca_path, files, 1, "client_ca", &e), 0);
}

static int revoked_by(const struct pqm_trust *t, X509 *leaf)
{
    STACK_OF(X509) *chain = sk_X509_new_null();
    assert_non_null(chain);
    assert_true(sk_X509_push(chain, leaf) > 0);
    struct pqm_verdict v = {0};
    int err = 0;
    int rc = pqm__trust_revocation(t, chain, &err, &v);
    sk_X509_free(chain);
    if (rc == 0)
        return 0;
    assert_int_equal(err, X509_V_ERR_CERT_REVOKED);
    assert_string_equal(v.code, "revoked");
    return 1;
}

/* 100,000 revoked serials plus one we hold a certificate for: the CRL loads through the
 * gateway's loader (signature checked against the CA), the listed certificate is
 * refused and an unlisted one passes. */
static void test_big_crl(void **state)
{
    struct fixture *f = *state;
    struct pqm_err e = {{0}};
    int64_t now = (int64_t)time(NULL);
    struct pqm_crl_spec spec = {f->ca, f->ca_key, now, now + 86400, 7};
    struct pqm_crl_builder b;
    assert_int_equal(pqm__crl_begin(&b, &spec, &e), 0);

    BIGNUM *listed = pqm__serial_new(&e), *unlisted = pqm__serial_new(&e);
    assert_non_null(listed);
    assert_non_null(unlisted);
    char hex[64];
    for (int i = 0; i < BIG_CRL; i++) {
        BIGNUM *s = pqm__serial_new(&e);
        assert_non_null(s);
        assert_int_equal(pqm__serial_hex(s, hex, sizeof(hex)), 0);
        assert_int_equal(pqm__crl_add(&b, hex, now - i, i % 3 == 0 ? 1 : 0), 0);
        BN_free(s);
        if (i == BIG_CRL / 2) {
            assert_int_equal(pqm__serial_hex(listed, hex, sizeof(hex)), 0);
            assert_int_equal(pqm__crl_add(&b, hex, now, 1), 0);
        }
    }
    X509_CRL *crl = pqm__crl_finish(&b, &spec);
    assert_non_null(crl);
    assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), BIG_CRL + 1);

    char ca_path[512];
    struct pqm_trust t;
    trust_with_crl(f, &t, crl, "big", ca_path, sizeof(ca_path));
    assert_int_equal(t.ncrl, 1);

    X509 *bad = make_cert(f, PQM_KIND_CLIENT, f->leaf_key, listed, "listed");
    X509 *good = make_cert(f, PQM_KIND_CLIENT, f->leaf_key, unlisted, "unlisted");
    assert_int_equal(revoked_by(&t, bad), 1);
    assert_int_equal(revoked_by(&t, good), 0);
    /* Lookups do not change the answer (the first one sorts the index). */
    assert_int_equal(revoked_by(&t, bad), 1);
    assert_int_equal(revoked_by(&t, good), 0);

    /* A CRL signed by another key is refused when it is loaded. */
    EVP_PKEY *other = pqm__alg_keygen(pqm__alg_find("ml-dsa-65"), &e);
    assert_non_null(other);
    struct pqm_crl_spec forged = {f->ca, other, now, now + 60, 8};
    assert_int_equal(pqm__crl_begin(&b, &forged, &e), 0);
    X509_CRL *fcrl = pqm__crl_finish(&b, &forged);
    assert_non_null(fcrl);
    char forged_path[512];
    snprintf(forged_path, sizeof(forged_path), "%s/forged.crl.pem", f->dir);
    write_pem(forged_path, NULL, fcrl);
    X509_CRL_free(fcrl);
    struct pqm_trust t2 = {0};
    const char *ffiles[] = {forged_path};
    assert_int_equal(pqm__trust_load(&t2, ca_path, ffiles, 1, "client_ca", &e), -1);
    assert_non_null(strstr(pqm__err_str(&e), "not signed by any CA"));

    pqm__trust_free(&t2);
    EVP_PKEY_free(other);
    X509_free(bad);
    X509_free(good);
    BN_free(listed);
    BN_free(unlisted);
    pqm__trust_free(&t);
}

static int chain_len; /* of the last verify_at that passed: its verified chain */

static int verify_at(const struct pqm_trust *t, X509 *leaf, time_t at, struct pqm_verdict *v)
{
    X509_STORE_CTX *xs = X509_STORE_CTX_new();
    assert_non_null(xs);
    assert_int_equal(X509_STORE_CTX_init(xs, t->store, leaf, NULL), 1);
    if (at != 0)
        X509_STORE_CTX_set_time(xs, 0, at);
    memset(v, 0, sizeof(*v));
    int rc = pqm__trust_verify(t, xs, v);
    chain_len = X509_STORE_CTX_get0_chain(xs) != NULL ? sk_X509_num(X509_STORE_CTX_get0_chain(xs)) : 0;
    X509_STORE_CTX_free(xs);
    return rc;
}

static struct pqm_verify_stats stats;

static void assert_stats(const struct pqm_trust *t, uint64_t hits, uint64_t misses)
{
    (void)t;
    assert_int_equal(atomic_load(&stats.hits), hits);
    assert_int_equal(atomic_load(&stats.misses), misses);
}

/* The verified-leaf cache: a leaf seen again is answered from it, but still checked for
 * what can change (its chain's validity now, the CRLs' expiry, revocation); a refused
 * leaf is never remembered; another leaf with the same name and serial is not taken for
 * the remembered one. */
static void test_verify_cache(void **state)
{
    struct fixture *f = *state;
    struct pqm_err e = {{0}};
    int64_t now = (int64_t)time(NULL);
    BIGNUM *listed = pqm__serial_new(&e), *unlisted = pqm__serial_new(&e);
    assert_non_null(listed);
    assert_non_null(unlisted);
    /* a CRL that expires in 2 s */
    struct pqm_crl_spec spec = {f->ca, f->ca_key, now - 60, now + 2, 9};
    struct pqm_crl_builder b;
    char hex[64];
    assert_int_equal(pqm__crl_begin(&b, &spec, &e), 0);
    assert_int_equal(pqm__serial_hex(listed, hex, sizeof(hex)), 0);
    assert_int_equal(pqm__crl_add(&b, hex, now - 10, 1), 0);
    X509_CRL *crl = pqm__crl_finish(&b, &spec);
    assert_non_null(crl);
    char ca_path[512];
    struct pqm_trust t;
    trust_with_crl(f, &t, crl, "cache", ca_path, sizeof(ca_path));
    assert_int_equal(pqm__trust_cache_enable(&t, 16, &stats), 0);

    X509 *good = make_cert(f, PQM_KIND_CLIENT, f->leaf_key, unlisted, "good");
    X509 *bad = make_cert(f, PQM_KIND_CLIENT, f->leaf_key, listed, "bad");
    EVP_PKEY *k2 = pqm__alg_keygen(pqm__alg_find("ed25519"), &e);
    assert_non_null(k2);
    X509 *twin = make_cert(f, PQM_KIND_CLIENT, k2, unlisted, "good"); /* same name, serial */
    struct pqm_verdict v;

    assert_int_equal(verify_at(&t, good, 0, &v), 1);
    assert_stats(&t, 0, 1);
    assert_int_equal(verify_at(&t, good, 0, &v), 1);
    assert_stats(&t, 1, 1);
    assert_int_equal(chain_len, 2); /* a hit leaves the verified chain, as a full one does */

    /* refused in full each time, never remembered */
    assert_int_equal(verify_at(&t, bad, 0, &v), 0);
    assert_string_equal(v.code, "revoked");
    assert_int_equal(verify_at(&t, bad, 0, &v), 0);
    assert_string_equal(v.code, "revoked");
    assert_stats(&t, 1, 3);

    /* past the leaf's notAfter, at it exactly, and before its notBefore: not answered
     * from the cache, and refused as OpenSSL refuses them */
    int64_t na, nb, ca_na, ca_nb; /* the chain's window: the CA's and the leaf's */
    assert_int_equal(pqm__asn1_time_to_epoch(X509_get0_notAfter(good), &na), 0);
    assert_int_equal(pqm__asn1_time_to_epoch(X509_get0_notBefore(good), &nb), 0);
    assert_int_equal(pqm__asn1_time_to_epoch(X509_get0_notAfter(f->ca), &ca_na), 0);
    assert_int_equal(pqm__asn1_time_to_epoch(X509_get0_notBefore(f->ca), &ca_nb), 0);
    na = ca_na < na ? ca_na : na;
    nb = ca_nb > nb ? ca_nb : nb;
    assert_int_equal(verify_at(&t, good, (time_t)(now + 2 * 86400), &v), 0);
    assert_string_equal(v.code, "expired");
    assert_int_equal(verify_at(&t, good, (time_t)na, &v), 0);
    assert_string_equal(v.code, "expired");
    assert_int_equal(verify_at(&t, good, (time_t)(nb - 1), &v), 0);
    assert_string_equal(v.code, "not_yet_valid");
    assert_int_equal(verify_at(&t, good, (time_t)(na - 1), &v), 1); /* the last second */
    assert_stats(&t, 2, 6);

    /* once the CRL has expired, a remembered leaf is refused too (CRLs are checked on
     * every verification) */
    sleep(3);
    assert_int_equal(verify_at(&t, good, 0, &v), 0);
    assert_string_equal(v.code, "crl_expired");
    assert_stats(&t, 3, 6);
    /* same name and serial, another key: a miss, not the remembered leaf */
    assert_int_equal(verify_at(&t, twin, 0, &v), 0);
    assert_stats(&t, 3, 7);

    X509_free(good);
    X509_free(bad);
    X509_free(twin);
    EVP_PKEY_free(k2);
    BN_free(listed);
    BN_free(unlisted);
    pqm__trust_free(&t);

    /* A CA that expires before its leaf: the remembered window is the chain's. */
    EVP_PKEY *k3 = pqm__alg_keygen(pqm__alg_find("ed25519"), &e);
    assert_non_null(k3);
    X509 *ca2 = tc_cert(PQM_KIND_ROOT, "Short CA", k3, NULL, k3, now - 60, now + 3600, &e);
    X509 *leaf2 = tc_cert(PQM_KIND_CLIENT, "long leaf", f->leaf_key, ca2, k3, now - 60, now + 86400, &e);
    assert_non_null(ca2);
    assert_non_null(leaf2);
    snprintf(ca_path, sizeof(ca_path), "%s/short-ca.pem", f->dir);
    write_pem(ca_path, ca2, NULL);
    struct pqm_trust t2 = {0};
    t2.purpose = X509_PURPOSE_SSL_CLIENT;
    t2.depth = 2;
    struct pqm_verify_stats before = {0};
    assert_int_equal(pqm__trust_load(&t2, ca_path, NULL, 0, "client_ca", &e), 0);
    assert_int_equal(pqm__trust_cache_enable(&t2, 1, &stats), 0); /* one slot */
    before.hits = atomic_load(&stats.hits);
    assert_int_equal(verify_at(&t2, leaf2, 0, &v), 1);
    assert_int_equal(verify_at(&t2, leaf2, (time_t)(now + 7200), &v), 0);
    assert_string_equal(v.code, "expired");
    assert_int_equal(atomic_load(&stats.hits), before.hits); /* never from the cache */
    /* two leaves taking turns in one slot: each replaces the other, every answer right */
    X509 *leaf3 = tc_cert(PQM_KIND_CLIENT, "other leaf", f->leaf_key, ca2, k3, now - 60, now + 600, &e);
    assert_non_null(leaf3);
    for (int i = 0; i < 50; i++) {
        assert_int_equal(verify_at(&t2, i % 2 ? leaf2 : leaf3, 0, &v), 1);
        assert_int_equal(chain_len, 2);
    }
    assert_int_equal(verify_at(&t2, leaf2, 0, &v), 1); /* the last one (i = 49) is remembered */
    assert_int_equal(atomic_load(&stats.hits), before.hits + 1);
    pqm__trust_free(&t2);

    /* a server certificate is checked against each connection's host name: no cache */
    struct pqm_trust t3 = {0};
    t3.purpose = X509_PURPOSE_SSL_SERVER;
    assert_int_equal(pqm__trust_load(&t3, ca_path, NULL, 0, "server_ca", &e), 0);
    assert_int_equal(pqm__trust_cache_enable(&t3, 16, &stats), -1);
    pqm__trust_free(&t3);
    X509_free(ca2);
    X509_free(leaf2);
    X509_free(leaf3);
    EVP_PKEY_free(k3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reason_names),
        cmocka_unit_test(test_extensions),
        cmocka_unit_test(test_big_crl),
        cmocka_unit_test(test_verify_cache),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
