/*
 * bench/crypto_loop: the pure cryptography of issuing certificates, for bench/issue.
 *
 * Each of T threads repeats, COUNT/T times: generate a key (EVP_PKEY_Q_keygen), then
 * sign a MSG-byte message with the issuer's key (EVP_DigestSign), which is what
 * signing a certificate's TBSCertificate costs. Nothing else: no encoding, no files.
 * Prints one line: "certs=N threads=T wall_s=... per_cert_us=... keygen_cpu_us=...
 * sign_cpu_us=...".
 *
 * Usage: crypto_loop [--alg ML-DSA-65] [--count 1000] [--threads 1] [--msg 5500]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

struct job {
    const char *alg;
    EVP_PKEY *issuer;
    const unsigned char *msg;
    size_t msglen;
    unsigned count;
    double keygen_s, sign_s;
    int failed;
};

static double now(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *run(void *arg)
{
    struct job *j = arg;
    unsigned char sig[8192];
    for (unsigned i = 0; i < j->count; i++) {
        double t0 = now(CLOCK_THREAD_CPUTIME_ID);
        EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, j->alg);
        double t1 = now(CLOCK_THREAD_CPUTIME_ID);
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        size_t siglen = sizeof(sig);
        if (k == NULL || ctx == NULL ||
            EVP_DigestSignInit_ex(ctx, NULL, NULL, NULL, NULL, j->issuer, NULL) != 1 ||
            EVP_DigestSign(ctx, sig, &siglen, j->msg, j->msglen) != 1)
            j->failed = 1;
        double t2 = now(CLOCK_THREAD_CPUTIME_ID);
        EVP_MD_CTX_free(ctx);
        EVP_PKEY_free(k);
        j->keygen_s += t1 - t0;
        j->sign_s += t2 - t1;
        if (j->failed)
            break;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    const char *alg = "ML-DSA-65";
    unsigned count = 1000, threads = 1;
    size_t msglen = 5500;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--alg") == 0)
            alg = argv[i + 1];
        else if (strcmp(argv[i], "--count") == 0)
            count = (unsigned)strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--threads") == 0)
            threads = (unsigned)strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--msg") == 0)
            msglen = strtoul(argv[i + 1], NULL, 10);
        else {
            fprintf(stderr, "usage: crypto_loop [--alg A] [--count N] [--threads T] [--msg B]\n");
            return 2;
        }
    }
    if (count == 0 || threads == 0 || threads > 64 || msglen == 0 || msglen > (1 << 20)) {
        fprintf(stderr, "crypto_loop: count, threads (1-64) and msg (1-1048576) must be set\n");
        return 2;
    }
    unsigned char *msg = malloc(msglen);
    EVP_PKEY *issuer = EVP_PKEY_Q_keygen(NULL, NULL, alg);
    if (msg == NULL || issuer == NULL || RAND_bytes(msg, (int)msglen) != 1) {
        fprintf(stderr, "crypto_loop: cannot set up %s\n", alg);
        return 1;
    }
    struct job jobs[64];
    pthread_t tids[64];
    double t0 = now(CLOCK_MONOTONIC);
    for (unsigned t = 0; t < threads; t++) {
        jobs[t] = (struct job){alg, issuer, msg, msglen, count / threads + (t < count % threads),
                               0, 0, 0};
        if (pthread_create(&tids[t], NULL, run, &jobs[t]) != 0) {
            fprintf(stderr, "crypto_loop: cannot start a thread\n");
            return 1;
        }
    }
    double keygen = 0, sign = 0;
    int failed = 0;
    for (unsigned t = 0; t < threads; t++) {
        pthread_join(tids[t], NULL);
        keygen += jobs[t].keygen_s;
        sign += jobs[t].sign_s;
        failed |= jobs[t].failed;
    }
    double wall = now(CLOCK_MONOTONIC) - t0;
    if (failed) {
        fprintf(stderr, "crypto_loop: %s keygen or sign failed\n", alg);
        return 1;
    }
    printf("certs=%u threads=%u wall_s=%.6f per_cert_us=%.1f keygen_cpu_us=%.1f sign_cpu_us=%.1f\n",
           count, threads, wall, wall / count * 1e6, keygen / count * 1e6, sign / count * 1e6);
    EVP_PKEY_free(issuer);
    free(msg);
    return 0;
}
