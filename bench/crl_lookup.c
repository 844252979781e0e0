/* bench/crl_lookup: what a CRL costs a verifier per handshake, for bench/crl.
 *
 *   bench_crl_lookup CA_CHAIN CRL_FILE REVOKED_CERT GOOD_CERT [ITERATIONS]
 *
 * CA_CHAIN holds the client intermediate and the root, CRL_FILE their CRLs (what
 * `pqmtls pki crl` writes as client-ca-chain.crl.pem). Prints, one "key value" per line:
 *   load_ms            loading the CRLs the gateway's way (each signature checked once)
 *   lookup_ns          one revocation check of GOOD_CERT's path (pqm__trust_revocation)
 *   lookup_revoked_ns  the same for REVOKED_CERT (found in the CRL)
 *   pqm_verify_us      the gateway's whole verification (pqm__trust_verify) with the CRLs
 *   pqm_verify_nocrl_us  the same without CRLs
 *   ossl_verify_us     OpenSSL's X509_verify_cert with X509_V_FLAG_CRL_CHECK|CRL_CHECK_ALL
 *                      and the CRLs in the store: how nginx's ssl_crl checks a client
 *   ossl_verify_nocrl_us the same store without CRLs
 * and checks the answers: GOOD passes and REVOKED is refused by both, or exit 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "pki/pemfile.h"
#include "tls/trust.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static X509 *load_cert(const char *path)
{
    FILE *fp = fopen(path, "r");
    X509 *x = fp != NULL ? PEM_read_X509(fp, NULL, NULL, NULL) : NULL;
    if (fp != NULL)
        fclose(fp);
    if (x == NULL)
        fprintf(stderr, "bench_crl_lookup: %s: not a PEM certificate\n", path);
    return x;
}

/* Revocation checks of LEAF's path as a handshake has it after verification: the leaf
 * and its intermediate (an anchor), so that both the intermediate's CRL (for the leaf)
 * and the root's (for the intermediate) are looked in. */
static double lookups(const struct pqm_trust *t, X509 *leaf, long n, int *revoked)
{
    STACK_OF(X509) *chain = sk_X509_new_null();
    X509 *issuer = pqm__trust_issuer_of(t, leaf);
    if (chain == NULL || issuer == NULL || sk_X509_push(chain, leaf) <= 0 ||
        sk_X509_push(chain, issuer) <= 0)
        exit(1);
    struct pqm_verdict v;
    int err = 0;
    *revoked = pqm__trust_revocation(t, chain, &err, &v) != 0; /* also sorts the index */
    double t0 = now_s();
    for (long i = 0; i < n; i++)
        (void)pqm__trust_revocation(t, chain, &err, &v);
    double dt = now_s() - t0;
    sk_X509_free(chain);
    return dt / (double)n;
}

static int pqm_verify_once(const struct pqm_trust *t, X509 *leaf)
{
    X509_STORE_CTX *xs = X509_STORE_CTX_new();
    struct pqm_verdict v;
    int ok = xs != NULL && X509_STORE_CTX_init(xs, t->store, leaf, NULL) == 1 &&
             pqm__trust_verify(t, xs, &v) == 1;
    X509_STORE_CTX_free(xs);
    ERR_clear_error();
    return ok;
}

static double pqm_verify(const struct pqm_trust *t, X509 *leaf, long n, int *ok)
{
    *ok = pqm_verify_once(t, leaf);
    double t0 = now_s();
    for (long i = 0; i < n; i++)
        (void)pqm_verify_once(t, leaf);
    return (now_s() - t0) / (double)n;
}

/* nginx's way: the CA certificates and (with CRLS) the CRLs in one X509_STORE. */
static X509_STORE *ossl_store(STACK_OF(X509) *cas, STACK_OF(X509_CRL) *crls)
{
    X509_STORE *s = X509_STORE_new();
    if (s == NULL)
        exit(1);
    for (int i = 0; i < sk_X509_num(cas); i++)
        if (X509_STORE_add_cert(s, sk_X509_value(cas, i)) != 1)
            exit(1);
    for (int i = 0; crls != NULL && i < sk_X509_CRL_num(crls); i++)
        if (X509_STORE_add_crl(s, sk_X509_CRL_value(crls, i)) != 1)
            exit(1);
    if (crls != NULL)
        X509_STORE_set_flags(s, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
    return s;
}

static int ossl_verify_once(X509_STORE *s, X509 *leaf)
{
    X509_STORE_CTX *xs = X509_STORE_CTX_new();
    int ok = xs != NULL && X509_STORE_CTX_init(xs, s, leaf, NULL) == 1 &&
             X509_STORE_CTX_set_purpose(xs, X509_PURPOSE_SSL_CLIENT) == 1 &&
             X509_verify_cert(xs) == 1;
    X509_STORE_CTX_free(xs);
    ERR_clear_error();
    return ok;
}

static double ossl_verify(X509_STORE *s, X509 *leaf, long n, int *ok)
{
    *ok = ossl_verify_once(s, leaf);
    double t0 = now_s();
    for (long i = 0; i < n; i++)
        (void)ossl_verify_once(s, leaf);
    return (now_s() - t0) / (double)n;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: bench_crl_lookup CA_CHAIN CRL_FILE REVOKED_CERT GOOD_CERT "
                        "[ITERATIONS]\n");
        return 2;
    }
    long n = argc > 5 ? strtol(argv[5], NULL, 10) : 200000;
    long nv = n / 100 > 0 ? n / 100 : 1; /* whole verifications are slower */
    struct pqm_err e = {{0}};
    X509 *bad = load_cert(argv[3]), *good = load_cert(argv[4]);
    if (bad == NULL || good == NULL)
        return 1;

    struct pqm_trust t = {0}, bare = {0};
    t.purpose = bare.purpose = X509_PURPOSE_SSL_CLIENT;
    t.depth = bare.depth = 2;
    const char *files[] = {argv[2]};
    double t0 = now_s();
    if (pqm__trust_load(&t, argv[1], files, 1, "client_ca", &e) != 0) {
        fprintf(stderr, "bench_crl_lookup: %s\n", pqm__err_str(&e));
        return 1;
    }
    double load = now_s() - t0;
    if (pqm__trust_load(&bare, argv[1], NULL, 0, "client_ca", &e) != 0)
        return 1;

    int rev_bad = 0, rev_good = 0, ok_good = 0, ok_bad = 0, ok_nocrl = 0;
    double lk_good = lookups(&t, good, n, &rev_good);
    double lk_bad = lookups(&t, bad, n, &rev_bad);
    double pv = pqm_verify(&t, good, nv, &ok_good);
    double pv0 = pqm_verify(&bare, good, nv, &ok_nocrl);
    (void)pqm_verify(&t, bad, 1, &ok_bad);
    if (!rev_bad || rev_good || !ok_good || ok_bad || !ok_nocrl) {
        fprintf(stderr, "bench_crl_lookup: wrong answers (revoked %d/%d, verify %d/%d/%d)\n",
                rev_bad, rev_good, ok_good, ok_bad, ok_nocrl);
        return 1;
    }

    STACK_OF(X509) *cas = NULL;
    STACK_OF(X509_CRL) *crls = NULL;
    if (pqm__pemfile_load(argv[1], &cas, NULL, &e) != 0 ||
        pqm__pemfile_load(argv[2], NULL, &crls, &e) != 0) {
        fprintf(stderr, "bench_crl_lookup: %s\n", pqm__err_str(&e));
        return 1;
    }
    X509_STORE *with = ossl_store(cas, crls), *without = ossl_store(cas, NULL);
    int o_good = 0, o_bad = 0, o_nocrl = 0;
    double ov = ossl_verify(with, good, nv, &o_good);
    double ov0 = ossl_verify(without, good, nv, &o_nocrl);
    (void)ossl_verify(with, bad, 1, &o_bad);
    if (!o_good || o_bad || !o_nocrl) {
        fprintf(stderr, "bench_crl_lookup: OpenSSL's answers are wrong (%d/%d/%d)\n", o_good,
                o_bad, o_nocrl);
        return 1;
    }
    printf("load_ms %.3f\nlookup_ns %.1f\nlookup_revoked_ns %.1f\n", load * 1e3, lk_good * 1e9,
           lk_bad * 1e9);
    printf("pqm_verify_us %.2f\npqm_verify_nocrl_us %.2f\n", pv * 1e6, pv0 * 1e6);
    printf("ossl_verify_us %.2f\nossl_verify_nocrl_us %.2f\n", ov * 1e6, ov0 * 1e6);
    X509_STORE_free(with);
    X509_STORE_free(without);
    sk_X509_pop_free(cas, X509_free);
    sk_X509_CRL_pop_free(crls, X509_CRL_free);
    pqm__trust_free(&t);
    pqm__trust_free(&bare);
    X509_free(bad);
    X509_free(good);
    return 0;
}
