/*
 * bench/ocsp_load: an OCSP load generator for bench/ocsp, the same for every responder.
 *
 * T threads each keep C/T connections busy (epoll) with HTTP/1.1 POST requests of
 * Content-Type application/ocsp-request for one certificate of ISSUER, its serial drawn
 * from SERIALS (hex, one per line), each with its own random 16-byte nonce unless
 * --no-nonce. Requests are built before the clock starts (a pool of 1024 per thread),
 * so that the load generator's own work per request is sending bytes and reading the
 * answer. Every answer is parsed (HTTP status 200, Content-Length, an OCSPResponse with
 * status successful); every Nth one (--verify-every) is also verified as a client would:
 * its signature against --ca (the root, with the issuer as an untrusted certificate),
 * the nonce compared with the request's. Anything else counts as an error.
 *
 * With --close every request goes on a new connection ("Connection: close"); otherwise
 * connections are kept ("Connection: keep-alive"), and one the server closes is opened
 * again (counted).
 *
 * After --warmup seconds, counts for --duration seconds and prints one line:
 *   requests=N seconds=S rps=R errors=E reconnects=C verified=V p50_ms=.. p99_ms=..
 *   load_busy=F
 * where load_busy is the share of its threads' CPUs the load generator itself used over
 * the warm-up and the measurement (near 1: it, not the responder, may have set the pace).
 *
 * Usage: ocsp_load --connect HOST:PORT --issuer CA.pem --ca ROOT.pem --serials FILE
 *                  [--path /] [--connections 8] [--threads 1] [--duration 10]
 *                  [--warmup 2] [--no-nonce] [--close] [--verify-every 100]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#define POOL 1024
#define IN_MAX (256 * 1024)
#define MAX_SERIALS 100000
#define MAX_SAMPLES (1 << 20)

struct opts {
    const char *connect, *issuer, *ca, *serials, *path;
    int connections, threads, nonce, close_each, verify_every;
    double duration, warmup;
};

struct request {
    OCSP_REQUEST *req;
    unsigned char *bytes; /* the whole HTTP request */
    size_t len;
};

struct shared {
    const struct opts *o;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    X509 *issuer;
    X509_STORE *trust;
    STACK_OF(X509) *untrusted;
    ASN1_INTEGER **serials;
    size_t nserials;
    double t_start, t_measure, t_end;
};

struct conn {
    int fd;
    int connected;
    int done; /* past the end: no more requests, the connection closed */
    struct request *rq;
    size_t sent;
    unsigned char *in;
    size_t in_len;
    double t_sent;
};

struct worker {
    struct shared *sh;
    int id, nconns, live;
    pthread_t thread;
    struct request pool[POOL];
    unsigned next;
    uint64_t requests, errors, reconnects, verified, answers;
    double *samples;
    size_t nsamples;
    char first_error[256];
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "ocsp_load: %s\n", what);
    ERR_print_errors_fp(stderr);
    exit(1);
}

/* --- setup ------------------------------------------------------------------------- */

static X509 *load_cert(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        die(path);
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (x == NULL)
        die("not a PEM certificate");
    return x;
}

static void load_serials(struct shared *sh, const char *path)
{
    FILE *f = fopen(path, "r");
    char line[256];
    if (f == NULL)
        die(path);
    sh->serials = calloc(MAX_SERIALS, sizeof(*sh->serials));
    if (sh->serials == NULL)
        die("out of memory");
    while (sh->nserials < MAX_SERIALS && fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        BIGNUM *bn = NULL;
        if (line[0] == '\0' || BN_hex2bn(&bn, line) == 0)
            continue;
        sh->serials[sh->nserials++] = BN_to_ASN1_INTEGER(bn, NULL);
        BN_free(bn);
    }
    fclose(f);
    if (sh->nserials == 0)
        die("no serial numbers in --serials");
}

static void resolve(struct shared *sh, const char *text)
{
    char host[256];
    snprintf(host, sizeof(host), "%s", text);
    char *colon = strrchr(host, ':');
    if (colon == NULL)
        die("--connect HOST:PORT");
    *colon = '\0';
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0)
        die("cannot resolve --connect");
    memcpy(&sh->addr, res->ai_addr, res->ai_addrlen);
    sh->addrlen = res->ai_addrlen;
    freeaddrinfo(res);
}

static void build_request(struct worker *w, struct request *r)
{
    const struct shared *sh = w->sh;
    uint32_t pick = 0;
    RAND_bytes((unsigned char *)&pick, sizeof(pick));
    OCSP_CERTID *id = OCSP_cert_id_new(EVP_sha1(), X509_get_subject_name(sh->issuer),
                                       X509_get0_pubkey_bitstr(sh->issuer),
                                       sh->serials[pick % sh->nserials]);
    r->req = OCSP_REQUEST_new();
    if (id == NULL || r->req == NULL || OCSP_request_add0_id(r->req, id) == NULL ||
        (sh->o->nonce && OCSP_request_add1_nonce(r->req, NULL, 16) != 1))
        die("cannot build a request");
    unsigned char *der = NULL;
    int len = i2d_OCSP_REQUEST(r->req, &der);
    if (len <= 0)
        die("cannot encode a request");
    char head[512];
    int hlen = snprintf(head, sizeof(head),
                        "POST %s HTTP/1.1\r\nHost: bench\r\n"
                        "Content-Type: application/ocsp-request\r\nContent-Length: %d\r\n"
                        "Connection: %s\r\n\r\n",
                        sh->o->path, len, sh->o->close_each ? "close" : "keep-alive");
    r->len = (size_t)hlen + (size_t)len;
    r->bytes = malloc(r->len);
    if (r->bytes == NULL)
        die("out of memory");
    memcpy(r->bytes, head, (size_t)hlen);
    memcpy(r->bytes + hlen, der, (size_t)len);
    OPENSSL_free(der);
}

/* --- answers ----------------------------------------------------------------------- */

static void error_once(struct worker *w, const char *what)
{
    w->errors++;
    if (w->first_error[0] == '\0')
        snprintf(w->first_error, sizeof(w->first_error), "%s", what);
}

/* A complete answer's length in IN (head and body), 0 when more is needed, -1 when it
 * is not HTTP; *BODY and *BLEN its body, *CLOSE whether the server closes after it. */
static long answer_len(const unsigned char *in, size_t len, const unsigned char **body,
                       size_t *blen, int *close, int *status)
{
    const unsigned char *end = memmem(in, len, "\r\n\r\n", 4);
    if (end == NULL)
        return len > 8192 ? -1 : 0;
    size_t hlen = (size_t)(end - in) + 4;
    char head[8193];
    memcpy(head, in, hlen < sizeof(head) ? hlen : sizeof(head) - 1);
    head[hlen < sizeof(head) ? hlen : sizeof(head) - 1] = '\0';
    if (sscanf(head, "HTTP/1.%*d %d", status) != 1)
        return -1;
    long clen = -1;
    *close = strncmp(head, "HTTP/1.0", 8) == 0;
    for (char *line = strstr(head, "\r\n"); line != NULL; line = strstr(line + 2, "\r\n")) {
        if (strncasecmp(line + 2, "content-length:", 15) == 0)
            clen = strtol(line + 17, NULL, 10);
        else if (strncasecmp(line + 2, "connection:", 11) == 0) {
            const char *v = line + 13, *eol = strstr(v, "\r\n");
            char value[64];
            snprintf(value, sizeof(value), "%.*s", (int)(eol != NULL ? eol - v : 0), v);
            *close = strcasestr(value, "close") != NULL;
        }
    }
    if (clen < 0)
        return -1;
    if (len < hlen + (size_t)clen)
        return 0;
    *body = in + hlen;
    *blen = (size_t)clen;
    return (long)(hlen + (size_t)clen);
}

static void check_body(struct worker *w, const struct request *rq, const unsigned char *body,
                       size_t blen)
{
    const unsigned char *p = body;
    OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &p, (long)blen);
    if (resp == NULL || OCSP_response_status(resp) != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        error_once(w, resp == NULL ? "an answer that is not an OCSPResponse"
                                   : "an OCSPResponse that is not successful");
        OCSP_RESPONSE_free(resp);
        return;
    }
    int verify = w->sh->o->verify_every > 0 && w->answers % (uint64_t)w->sh->o->verify_every == 0;
    w->answers++;
    if (verify) {
        OCSP_BASICRESP *bs = OCSP_response_get1_basic(resp);
        int ok = bs != NULL &&
                 OCSP_basic_verify(bs, w->sh->untrusted, w->sh->trust, 0) == 1 &&
                 (!w->sh->o->nonce || OCSP_check_nonce(rq->req, bs) == 1);
        if (ok)
            w->verified++;
        else
            error_once(w, "an answer that does not verify (signature or nonce)");
        OCSP_BASICRESP_free(bs);
        ERR_clear_error();
    }
    OCSP_RESPONSE_free(resp);
}

/* --- connections ------------------------------------------------------------------- */

static int conn_open(struct worker *w, struct conn *c, int ep)
{
    c->fd = socket(w->sh->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -1;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, (struct sockaddr *)&w->sh->addr, w->sh->addrlen) != 0 &&
        errno != EINPROGRESS) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    c->connected = 0;
    c->in_len = 0;
    c->rq = &w->pool[w->next++ % POOL];
    c->sent = 0;
    c->t_sent = now_s();
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    return epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}

/* Past the end of the measurement a connection sends nothing more: it is closed once
 * its answer is in, so that no server sees a request cut short. */
static int finish_if_over(struct worker *w, struct conn *c, int ep)
{
    if (now_s() < w->sh->t_end)
        return 0;
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    c->done = 1;
    w->live--;
    return 1;
}

static void conn_reopen(struct worker *w, struct conn *c, int ep)
{
    if (finish_if_over(w, c, ep))
        return;
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    for (int tries = 0; tries < 1000 && conn_open(w, c, ep) != 0; tries++)
        usleep(1000);
}

static void next_request(struct worker *w, struct conn *c, int ep)
{
    if (finish_if_over(w, c, ep))
        return;
    c->rq = &w->pool[w->next++ % POOL];
    c->sent = 0;
    c->t_sent = now_s();
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void record(struct worker *w, double t_sent, double t)
{
    if (t_sent < w->sh->t_measure || t > w->sh->t_end)
        return;
    w->requests++;
    if (w->nsamples < MAX_SAMPLES)
        w->samples[w->nsamples++] = t - t_sent;
}

/* Reads what came; handles every complete answer. Returns -1 to reopen. */
static int on_readable(struct worker *w, struct conn *c, int ep)
{
    for (;;) {
        if (c->in_len == IN_MAX)
            return error_once(w, "an answer larger than 256 KB"), -1;
        ssize_t n = recv(c->fd, c->in + c->in_len, IN_MAX - c->in_len, 0);
        if (n == 0)
            return -1;
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        c->in_len += (size_t)n;
        const unsigned char *body = NULL;
        size_t blen = 0;
        int close = 0, status = 0;
        long alen = answer_len(c->in, c->in_len, &body, &blen, &close, &status);
        if (alen < 0)
            return error_once(w, "an answer that is not HTTP"), -1;
        if (alen == 0)
            continue;
        double t = now_s();
        if (status != 200)
            error_once(w, "an HTTP status other than 200");
        else
            check_body(w, c->rq, body, blen);
        record(w, c->t_sent, t);
        memmove(c->in, c->in + alen, c->in_len - (size_t)alen);
        c->in_len -= (size_t)alen;
        if (close || w->sh->o->close_each)
            return -1;
        next_request(w, c, ep);
        return 0;
    }
}

static int on_writable(struct conn *c, int ep)
{
    c->connected = 1;
    while (c->sent < c->rq->len) {
        ssize_t n = send(c->fd, c->rq->bytes + c->sent, c->rq->len - c->sent, MSG_NOSIGNAL);
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        c->sent += (size_t)n;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    return 0;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct conn *conns = calloc((size_t)w->nconns, sizeof(*conns));
    if (ep < 0 || conns == NULL)
        die("epoll");
    for (int i = 0; i < w->nconns; i++) {
        conns[i].in = malloc(IN_MAX);
        if (conns[i].in == NULL || conn_open(w, &conns[i], ep) != 0)
            die("cannot connect");
    }
    struct epoll_event evs[256];
    w->live = w->nconns;
    /* Answers under way at the end are waited for, up to 5 seconds. */
    while (w->live > 0 && now_s() < w->sh->t_end + 5) {
        int n = epoll_wait(ep, evs, 256, 100);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            int rc = 0;
            if (c->done)
                continue;
            if (evs[i].events & (EPOLLERR | EPOLLHUP) && !(evs[i].events & EPOLLIN))
                rc = -1;
            if (rc == 0 && (evs[i].events & EPOLLOUT) && c->sent < c->rq->len)
                rc = on_writable(c, ep);
            if (rc == 0 && (evs[i].events & EPOLLIN))
                rc = on_readable(w, c, ep);
            if (rc != 0) {
                if (c->sent < c->rq->len || c->in_len > 0)
                    error_once(w, "the server closed a connection with a request under way");
                if (!w->sh->o->close_each && now_s() >= w->sh->t_measure)
                    w->reconnects++;
                conn_reopen(w, c, ep);
            }
        }
    }
    for (int i = 0; i < w->nconns; i++) {
        if (!conns[i].done && conns[i].fd >= 0)
            close(conns[i].fd);
        free(conns[i].in);
    }
    free(conns);
    close(ep);
    return NULL;
}

/* --- main -------------------------------------------------------------------------- */

static double cpu_seconds(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void parse(int argc, char **argv, struct opts *o)
{
    static const struct option lo[] = {
        {"connect", required_argument, NULL, 'c'}, {"issuer", required_argument, NULL, 'i'},
        {"ca", required_argument, NULL, 'a'},      {"serials", required_argument, NULL, 's'},
        {"path", required_argument, NULL, 'p'},    {"connections", required_argument, NULL, 'n'},
        {"threads", required_argument, NULL, 't'}, {"duration", required_argument, NULL, 'd'},
        {"warmup", required_argument, NULL, 'w'},  {"no-nonce", no_argument, NULL, 'N'},
        {"close", no_argument, NULL, 'C'},         {"verify-every", required_argument, NULL, 'v'},
        {NULL, 0, NULL, 0},
    };
    *o = (struct opts){.path = "/", .connections = 8, .threads = 1, .nonce = 1,
                       .verify_every = 100, .duration = 10, .warmup = 2};
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'c': o->connect = optarg; break;
        case 'i': o->issuer = optarg; break;
        case 'a': o->ca = optarg; break;
        case 's': o->serials = optarg; break;
        case 'p': o->path = optarg; break;
        case 'n': o->connections = atoi(optarg); break;
        case 't': o->threads = atoi(optarg); break;
        case 'd': o->duration = atof(optarg); break;
        case 'w': o->warmup = atof(optarg); break;
        case 'N': o->nonce = 0; break;
        case 'C': o->close_each = 1; break;
        case 'v': o->verify_every = atoi(optarg); break;
        default: die("unknown option (see the comment at the top of bench/ocsp_load.c)");
        }
    }
    if (o->connect == NULL || o->issuer == NULL || o->ca == NULL || o->serials == NULL ||
        o->connections < 1 || o->threads < 1 || o->threads > 256 || o->duration <= 0 ||
        o->warmup < 0)
        die("usage: ocsp_load --connect HOST:PORT --issuer CA.pem --ca ROOT.pem --serials FILE "
            "[--connections N] [--threads N] [--duration S] [--warmup S] [--no-nonce] [--close]");
    if (o->threads > o->connections)
        o->threads = o->connections;
}

int main(int argc, char **argv)
{
    struct opts o;
    struct shared sh = {0};
    parse(argc, argv, &o);
    sh.o = &o;
    resolve(&sh, o.connect);
    sh.issuer = load_cert(o.issuer);
    X509 *root = load_cert(o.ca);
    sh.trust = X509_STORE_new();
    sh.untrusted = sk_X509_new_null();
    if (sh.trust == NULL || sh.untrusted == NULL || X509_STORE_add_cert(sh.trust, root) != 1 ||
        sk_X509_push(sh.untrusted, sh.issuer) <= 0)
        die("cannot set up verification");
    load_serials(&sh, o.serials);
    struct worker *ws = calloc((size_t)o.threads, sizeof(*ws));
    if (ws == NULL)
        die("out of memory");
    for (int i = 0; i < o.threads; i++) {
        ws[i].sh = &sh;
        ws[i].id = i;
        ws[i].nconns = o.connections / o.threads + (i < o.connections % o.threads);
        ws[i].samples = malloc(MAX_SAMPLES * sizeof(double));
        if (ws[i].samples == NULL)
            die("out of memory");
        for (int k = 0; k < POOL; k++)
            build_request(&ws[i], &ws[i].pool[k]);
    }
    double cpu0 = cpu_seconds();
    sh.t_start = now_s();
    sh.t_measure = sh.t_start + o.warmup;
    sh.t_end = sh.t_measure + o.duration;
    for (int i = 0; i < o.threads; i++)
        if (pthread_create(&ws[i].thread, NULL, worker_main, &ws[i]) != 0)
            die("pthread_create");
    uint64_t requests = 0, errors = 0, reconnects = 0, verified = 0;
    size_t nsamples = 0;
    const char *first_error = "";
    for (int i = 0; i < o.threads; i++) {
        pthread_join(ws[i].thread, NULL);
        requests += ws[i].requests;
        errors += ws[i].errors;
        reconnects += ws[i].reconnects;
        verified += ws[i].verified;
        nsamples += ws[i].nsamples;
        if (first_error[0] == '\0')
            first_error = ws[i].first_error;
    }
    double busy = (cpu_seconds() - cpu0) / ((now_s() - sh.t_start) * o.threads);
    double *all = malloc((nsamples ? nsamples : 1) * sizeof(double));
    size_t k = 0;
    for (int i = 0; all != NULL && i < o.threads; i++) {
        memcpy(all + k, ws[i].samples, ws[i].nsamples * sizeof(double));
        k += ws[i].nsamples;
    }
    if (all != NULL && k > 0)
        qsort(all, k, sizeof(double), cmp_double);
    double p50 = k ? all[k / 2] : 0, p99 = k ? all[(size_t)((double)k * 0.99)] : 0;
    printf("requests=%llu seconds=%.3f rps=%.1f errors=%llu reconnects=%llu verified=%llu "
           "p50_ms=%.3f p99_ms=%.3f load_busy=%.2f%s%s\n",
           (unsigned long long)requests, o.duration, (double)requests / o.duration,
           (unsigned long long)errors, (unsigned long long)reconnects,
           (unsigned long long)verified, p50 * 1e3, p99 * 1e3, busy,
           first_error[0] ? " first_error=" : "", first_error[0] ? first_error : "");
    return errors > 0 ? 2 : 0;
}
