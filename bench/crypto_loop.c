/*
 * bench/crypto_loop: the pure cryptography of issuing certificates, for bench/issue.
 *
 * Each of T threads repeats, COUNT/T times: generate a key (EVP_PKEY_Q_keygen), then
 * sign a MSG-byte message with the issuer's key (EVP_DigestSign), which is what
 * signing a certificate's TBSCertificate costs. Nothing else: no encoding, no files.
 * Prints one line: "certs=N threads=T wall_s=... per_cert_us=... keygen_cpu_us=...
 * sign_cpu_us=...".
 *
 * With --files DIR --sizes C,K,H it also does the file work any issuer must do to leave
 * three durable files per certificate (certificate, key, chain of those sizes): each
 * thread writes them under temporary names in DIR; at the end they are renamed to their
 * final names and the file system is synced once. That is the floor under issuing with
 * files: cryptography and file system, nothing else (no encoding, no inventory).
 *
 * Usage: crypto_loop [--alg ML-DSA-65] [--count 1000] [--threads 1] [--msg 5500]
 *                    [--files DIR --sizes C,K,H]
 */
#define _GNU_SOURCE /* syncfs */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#define NFILES 3

struct job {
    unsigned first; /* number of this thread's first certificate */
    const char *dir; /* NULL: no files */
    const size_t *sizes;
    const unsigned char *filler;
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

static int file_name(char *out, size_t len, const char *dir, unsigned cert, int f, int tmp)
{
    static const char *const ext[NFILES] = {"crt.pem", "key.pem", "chain.pem"};
    int n = snprintf(out, len, "%s/%sdev-%06u.%s%s", dir, tmp ? ".tmp-" : "", cert, ext[f],
                     tmp ? "-XXXXXX" : "");
    return n > 0 && (size_t)n < len ? 0 : -1;
}

/* The three files of certificate CERT, under temporary names. */
static int write_files(const struct job *j, unsigned cert)
{
    for (int f = 0; f < NFILES; f++) {
        char path[4096];
        if (file_name(path, sizeof(path), j->dir, cert, f, 1) != 0)
            return -1;
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, f == 1 ? 0600 : 0644);
        if (fd < 0)
            return -1;
        ssize_t w = write(fd, j->filler, j->sizes[f]);
        if (close(fd) != 0 || w != (ssize_t)j->sizes[f])
            return -1;
    }
    return 0;
}

static int publish_files(const char *dir, unsigned count)
{
    for (unsigned c = 0; c < count; c++)
        for (int f = 0; f < NFILES; f++) {
            char tmp[4096], final[4096];
            if (file_name(tmp, sizeof(tmp), dir, c, f, 1) != 0 ||
                file_name(final, sizeof(final), dir, c, f, 0) != 0 || rename(tmp, final) != 0)
                return -1;
        }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = syncfs(fd);
    close(fd);
    return rc;
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
        if (j->dir != NULL && !j->failed && write_files(j, j->first + i) != 0)
            j->failed = 1;
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
    size_t msglen = 5500, sizes[NFILES] = {0, 0, 0};
    const char *dir = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--alg") == 0)
            alg = argv[i + 1];
        else if (strcmp(argv[i], "--count") == 0)
            count = (unsigned)strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--threads") == 0)
            threads = (unsigned)strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--msg") == 0)
            msglen = strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--files") == 0)
            dir = argv[i + 1];
        else if (strcmp(argv[i], "--sizes") == 0 &&
                 sscanf(argv[i + 1], "%zu,%zu,%zu", &sizes[0], &sizes[1], &sizes[2]) == 3)
            continue;
        else {
            fprintf(stderr, "usage: crypto_loop [--alg A] [--count N] [--threads T] [--msg B] "
                            "[--files DIR --sizes C,K,H]\n");
            return 2;
        }
    }
    if (count == 0 || threads == 0 || threads > 64 || msglen == 0 || msglen > (1 << 20)) {
        fprintf(stderr, "crypto_loop: count, threads (1-64) and msg (1-1048576) must be set\n");
        return 2;
    }
    size_t biggest = sizes[0] > sizes[1] ? sizes[0] : sizes[1];
    biggest = biggest > sizes[2] ? biggest : sizes[2];
    if (dir != NULL && (biggest == 0 || biggest > (1 << 20))) {
        fprintf(stderr, "crypto_loop: --files needs --sizes C,K,H (1-1048576 bytes each)\n");
        return 2;
    }
    unsigned char *filler = dir != NULL ? calloc(1, biggest) : NULL;
    unsigned char *msg = malloc(msglen);
    EVP_PKEY *issuer = EVP_PKEY_Q_keygen(NULL, NULL, alg);
    if (msg == NULL || issuer == NULL || RAND_bytes(msg, (int)msglen) != 1 ||
        (dir != NULL && filler == NULL)) {
        fprintf(stderr, "crypto_loop: cannot set up %s\n", alg);
        return 1;
    }
    struct job jobs[64];
    pthread_t tids[64];
    unsigned first = 0;
    double t0 = now(CLOCK_MONOTONIC);
    for (unsigned t = 0; t < threads; t++) {
        unsigned share = count / threads + (t < count % threads);
        jobs[t] = (struct job){first, dir, sizes, filler, alg, issuer, msg, msglen, share, 0, 0, 0};
        first += share;
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
    if (failed) {
        fprintf(stderr, "crypto_loop: %s keygen, sign or a file in %s failed\n", alg,
                dir != NULL ? dir : "-");
        return 1;
    }
    if (dir != NULL && publish_files(dir, count) != 0) {
        fprintf(stderr, "crypto_loop: cannot publish the files in %s\n", dir);
        return 1;
    }
    double wall = now(CLOCK_MONOTONIC) - t0;
    printf("certs=%u threads=%u wall_s=%.6f per_cert_us=%.1f keygen_cpu_us=%.1f sign_cpu_us=%.1f\n",
           count, threads, wall, wall / count * 1e6, keygen / count * 1e6, sign / count * 1e6);
    EVP_PKEY_free(issuer);
    free(msg);
    free(filler);
    return 0;
}
