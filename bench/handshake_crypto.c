/*
 * bench/handshake_crypto: the pure cryptography of a full ML-DSA-65 mTLS handshake on
 * the server's side, for bench/gateway: the ceiling that the crypto sets.
 *
 * Per full TLS 1.3 handshake with a client certificate and X25519MLKEM768, a server
 * that trusts the client intermediate directly (as pqmtls gateway does, with CRL
 * signatures checked once at load) computes exactly this, and each of T threads repeats
 * it COUNT/T times:
 *   - one ML-DSA-65 signature: its CertificateVerify, over a MSG-byte message
 *     (64 spaces, the context string, the transcript hash: 146 bytes with SHA-384);
 *   - one ML-DSA-65 verification of the client's CertificateVerify (MSG bytes);
 *   - one ML-DSA-65 verification of the client leaf's signature, made by the client
 *     intermediate over a TBS-byte TBSCertificate;
 *   - the X25519MLKEM768 server share: an ML-KEM-768 encapsulation to the client's
 *     encapsulation key, an X25519 key generation and an X25519 derivation with the
 *     client's X25519 key.
 * The long-term keys (server, client, intermediate, the client's ML-KEM-768 and X25519
 * shares) are made once, outside the loop (EVP_PKEY_Q_keygen), and the verifying and
 * encapsulating sides hold public keys only, as a server does. Nothing else: no TLS, no
 * parsing, no sockets.
 * Prints one line: "handshakes=N threads=T wall_s=... ceiling_per_s=... per_handshake_us=...
 * sign_cpu_us=... verify_cv_cpu_us=... verify_leaf_cpu_us=... mlkem_cpu_us=...
 * x25519_cpu_us=...": ceiling_per_s is N / wall (the handshakes per second the crypto
 * allows on T threads), per_handshake_us the CPU time of one handshake's crypto.
 *
 * Usage: handshake_crypto [--count 3000] [--threads 1] [--msg 146] [--tbs 1800]
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, CLOCK_THREAD_CPUTIME_ID */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#define MAX_THREADS 64

struct keys {
    EVP_PKEY *server;      /* ML-DSA-65, private: signs the server's CertificateVerify */
    EVP_PKEY *client_pub;  /* ML-DSA-65, public: the client's CertificateVerify */
    EVP_PKEY *ca_pub;      /* ML-DSA-65, public: the client intermediate's key */
    EVP_PKEY *kem_pub;     /* ML-KEM-768 encapsulation key of the client's share */
    EVP_PKEY *x25519_pub;  /* X25519 public key of the client's share */
    const unsigned char *msg, *cv_sig, *tbs, *leaf_sig;
    size_t msglen, cv_siglen, tbslen, leaf_siglen;
};

enum { OP_SIGN, OP_VERIFY_CV, OP_VERIFY_LEAF, OP_MLKEM, OP_X25519, NOPS };

struct job {
    const struct keys *k;
    unsigned count;
    double cpu[NOPS];
    int failed;
};

static double now(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int sign(EVP_PKEY *key, const unsigned char *msg, size_t msglen, unsigned char *sig,
                size_t *siglen)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx != NULL && EVP_DigestSignInit_ex(ctx, NULL, NULL, NULL, NULL, key, NULL) == 1 &&
             EVP_DigestSign(ctx, sig, siglen, msg, msglen) == 1;
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : -1;
}

static int verify(EVP_PKEY *key, const unsigned char *msg, size_t msglen,
                  const unsigned char *sig, size_t siglen)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx != NULL && EVP_DigestVerifyInit_ex(ctx, NULL, NULL, NULL, NULL, key, NULL) == 1 &&
             EVP_DigestVerify(ctx, sig, siglen, msg, msglen) == 1;
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : -1;
}

static int mlkem_encaps(EVP_PKEY *peer)
{
    unsigned char ct[2048], ss[64];
    size_t ctlen = sizeof(ct), sslen = sizeof(ss);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, peer, NULL);
    int ok = ctx != NULL && EVP_PKEY_encapsulate_init(ctx, NULL) == 1 &&
             EVP_PKEY_encapsulate(ctx, ct, &ctlen, ss, &sslen) == 1;
    EVP_PKEY_CTX_free(ctx);
    return ok ? 0 : -1;
}

static int x25519_share(EVP_PKEY *peer)
{
    unsigned char secret[64];
    size_t len = sizeof(secret);
    EVP_PKEY *eph = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    EVP_PKEY_CTX *ctx = eph != NULL ? EVP_PKEY_CTX_new_from_pkey(NULL, eph, NULL) : NULL;
    int ok = ctx != NULL && EVP_PKEY_derive_init(ctx) == 1 &&
             EVP_PKEY_derive_set_peer(ctx, peer) == 1 && EVP_PKEY_derive(ctx, secret, &len) == 1;
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(eph);
    return ok ? 0 : -1;
}

static void *run(void *arg)
{
    struct job *j = arg;
    const struct keys *k = j->k;
    unsigned char sig[8192];
    for (unsigned i = 0; i < j->count && !j->failed; i++) {
        double t[NOPS + 1];
        size_t siglen = sizeof(sig);
        t[0] = now(CLOCK_THREAD_CPUTIME_ID);
        j->failed |= sign(k->server, k->msg, k->msglen, sig, &siglen);
        t[1] = now(CLOCK_THREAD_CPUTIME_ID);
        j->failed |= verify(k->client_pub, k->msg, k->msglen, k->cv_sig, k->cv_siglen);
        t[2] = now(CLOCK_THREAD_CPUTIME_ID);
        j->failed |= verify(k->ca_pub, k->tbs, k->tbslen, k->leaf_sig, k->leaf_siglen);
        t[3] = now(CLOCK_THREAD_CPUTIME_ID);
        j->failed |= mlkem_encaps(k->kem_pub);
        t[4] = now(CLOCK_THREAD_CPUTIME_ID);
        j->failed |= x25519_share(k->x25519_pub);
        t[5] = now(CLOCK_THREAD_CPUTIME_ID);
        for (int op = 0; op < NOPS; op++)
            j->cpu[op] += t[op + 1] - t[op];
    }
    return NULL;
}

/* The public half of KEY alone, as a peer's key arrives at a server. */
static EVP_PKEY *public_only(EVP_PKEY *key, const char *alg)
{
    unsigned char pub[4096];
    size_t len = 0;
    if (key == NULL || EVP_PKEY_get_raw_public_key(key, NULL, &len) != 1 || len > sizeof(pub) ||
        EVP_PKEY_get_raw_public_key(key, pub, &len) != 1)
        return NULL;
    return EVP_PKEY_new_raw_public_key_ex(NULL, alg, NULL, pub, len);
}

int main(int argc, char **argv)
{
    unsigned count = 3000, threads = 1;
    size_t msglen = 146, tbslen = 1800;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--count") == 0)
            count = (unsigned)strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--threads") == 0)
            threads = (unsigned)strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--msg") == 0)
            msglen = strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--tbs") == 0)
            tbslen = strtoul(argv[i + 1], NULL, 10);
        else {
            fprintf(stderr, "usage: handshake_crypto [--count N] [--threads T] [--msg B] "
                            "[--tbs B]\n");
            return 2;
        }
    }
    if (argc % 2 == 0) {
        fprintf(stderr, "usage: handshake_crypto [--count N] [--threads T] [--msg B] [--tbs B]\n");
        return 2;
    }
    if (count == 0 || threads == 0 || threads > MAX_THREADS || msglen == 0 ||
        msglen > (1 << 20) || tbslen == 0 || tbslen > (1 << 20)) {
        fprintf(stderr, "handshake_crypto: count, threads (1-%d), msg and tbs (1-1048576) "
                        "must be set\n", MAX_THREADS);
        return 2;
    }

    /* Keys made once; messages of the sizes a handshake signs and verifies. */
    EVP_PKEY *server = EVP_PKEY_Q_keygen(NULL, NULL, "ML-DSA-65");
    EVP_PKEY *client = EVP_PKEY_Q_keygen(NULL, NULL, "ML-DSA-65");
    EVP_PKEY *ca = EVP_PKEY_Q_keygen(NULL, NULL, "ML-DSA-65");
    EVP_PKEY *kem = EVP_PKEY_Q_keygen(NULL, NULL, "ML-KEM-768");
    EVP_PKEY *x = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    struct keys k = {.msglen = msglen, .tbslen = tbslen};
    k.server = server;
    k.client_pub = public_only(client, "ML-DSA-65");
    k.ca_pub = public_only(ca, "ML-DSA-65");
    k.kem_pub = public_only(kem, "ML-KEM-768");
    k.x25519_pub = public_only(x, "X25519");
    unsigned char *msg = malloc(msglen), *tbs = malloc(tbslen);
    static unsigned char cv_sig[8192], leaf_sig[8192];
    k.cv_siglen = sizeof(cv_sig);
    k.leaf_siglen = sizeof(leaf_sig);
    if (server == NULL || k.client_pub == NULL || k.ca_pub == NULL || k.kem_pub == NULL ||
        k.x25519_pub == NULL || msg == NULL || tbs == NULL ||
        RAND_bytes(msg, (int)msglen) != 1 || RAND_bytes(tbs, (int)tbslen) != 1 ||
        sign(client, msg, msglen, cv_sig, &k.cv_siglen) != 0 ||
        sign(ca, tbs, tbslen, leaf_sig, &k.leaf_siglen) != 0) {
        fprintf(stderr, "handshake_crypto: cannot set up ML-DSA-65, ML-KEM-768 and X25519\n");
        return 1;
    }
    k.msg = msg;
    k.cv_sig = cv_sig;
    k.tbs = tbs;
    k.leaf_sig = leaf_sig;
    /* One untimed round: the algorithms are fetched and checked before the clock runs. */
    unsigned char sig[8192];
    size_t siglen = sizeof(sig);
    if (sign(server, msg, msglen, sig, &siglen) != 0 ||
        verify(k.client_pub, msg, msglen, cv_sig, k.cv_siglen) != 0 ||
        verify(k.ca_pub, tbs, tbslen, leaf_sig, k.leaf_siglen) != 0 ||
        mlkem_encaps(k.kem_pub) != 0 || x25519_share(k.x25519_pub) != 0) {
        fprintf(stderr, "handshake_crypto: a first handshake's crypto failed\n");
        return 1;
    }

    struct job jobs[MAX_THREADS];
    pthread_t tids[MAX_THREADS];
    double t0 = now(CLOCK_MONOTONIC);
    for (unsigned t = 0; t < threads; t++) {
        jobs[t] = (struct job){.k = &k, .count = count / threads + (t < count % threads)};
        if (pthread_create(&tids[t], NULL, run, &jobs[t]) != 0) {
            fprintf(stderr, "handshake_crypto: cannot start a thread\n");
            return 1;
        }
    }
    double cpu[NOPS] = {0};
    int failed = 0;
    for (unsigned t = 0; t < threads; t++) {
        pthread_join(tids[t], NULL);
        for (int op = 0; op < NOPS; op++)
            cpu[op] += jobs[t].cpu[op];
        failed |= jobs[t].failed;
    }
    double wall = now(CLOCK_MONOTONIC) - t0;
    if (failed) {
        fprintf(stderr, "handshake_crypto: a sign, verify, encapsulation or derivation failed\n");
        return 1;
    }
    double total = 0;
    for (int op = 0; op < NOPS; op++)
        total += cpu[op];
    printf("handshakes=%u threads=%u wall_s=%.6f ceiling_per_s=%.1f per_handshake_us=%.1f "
           "sign_cpu_us=%.1f verify_cv_cpu_us=%.1f verify_leaf_cpu_us=%.1f mlkem_cpu_us=%.1f "
           "x25519_cpu_us=%.1f\n",
           count, threads, wall, count / wall, total / count * 1e6, cpu[OP_SIGN] / count * 1e6,
           cpu[OP_VERIFY_CV] / count * 1e6, cpu[OP_VERIFY_LEAF] / count * 1e6,
           cpu[OP_MLKEM] / count * 1e6, cpu[OP_X25519] / count * 1e6);
    EVP_PKEY_free(server);
    EVP_PKEY_free(client);
    EVP_PKEY_free(ca);
    EVP_PKEY_free(kem);
    EVP_PKEY_free(x);
    EVP_PKEY_free(k.client_pub);
    EVP_PKEY_free(k.ca_pub);
    EVP_PKEY_free(k.kem_pub);
    EVP_PKEY_free(k.x25519_pub);
    free(msg);
    free(tbs);
    return 0;
}
