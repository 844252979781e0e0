/* pqmtls bench: an mTLS load generator for the gateway and its peers (nginx).
 *
 * T threads, each with an epoll loop and its share of C connections, each connection
 * a small state machine: connect, handshake, send a request, read the response; then
 * again on the same connection (keepalive), or a new connection with a full handshake
 * (handshake), or hold it open (idle, for memory per connection). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <llhttp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pqmtls/pqmtls.h>

#include "commands.h"
#include "common.h"

static const char *const CMD = "bench";

#define NBUCKETS 2400 /* latency histogram: 1 us to ~10^10 us in 1% steps */
#define MAX_THREADS 64

enum mode { M_KEEPALIVE, M_HANDSHAKE, M_IDLE };
enum cstate { S_CONNECTING, S_HANDSHAKE, S_SEND, S_READ, S_HOLD };

struct opts {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char host[256], path[1024];
    const char *cert, *key, *ca, *groups;
    int insecure, connections, threads, json;
    double duration;
    enum mode mode;
};

struct stats {
    uint64_t handshakes, requests, errors, bad_status;
    uint64_t hist[NBUCKETS];
    char group[48];
};

struct bconn {
    struct worker *w;
    int fd;
    SSL *ssl;
    enum cstate st;
    char req[1400];
    size_t req_len, req_off;
    llhttp_t parser;
    int done, status;
    double t0;
    int first_answer_pending; /* handshake done, no answer yet on this connection */
    int was_held;             /* idle mode: it was held, and is not reopened */
};

struct worker {
    const struct opts *o;
    SSL_CTX *ctx;
    int ep;
    struct bconn *conns;
    int n;
    double end;
    struct stats st;
    pthread_t tid;
    atomic_int *ready; /* idle mode: connections that completed their request */
};

static llhttp_settings_t parser_settings;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void record_latency(struct stats *s, double seconds)
{
    double us = seconds * 1e6;
    size_t b = us <= 1 ? 0 : (size_t)(log(us) / log(1.01));
    s->hist[b < NBUCKETS ? b : NBUCKETS - 1]++;
}

static double percentile(const uint64_t *hist, uint64_t total, double q)
{
    if (total == 0)
        return 0;
    uint64_t want = (uint64_t)ceil(q * (double)total), seen = 0;
    for (size_t b = 0; b < NBUCKETS; b++) {
        seen += hist[b];
        if (seen >= want)
            return pow(1.01, (double)b + 1) / 1e3; /* ms, the bucket's upper bound */
    }
    return 0;
}

static int on_status_complete(llhttp_t *p)
{
    ((struct bconn *)p->data)->status = p->status_code;
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    ((struct bconn *)p->data)->done = 1;
    return HPE_PAUSED;
}

static void watch(struct bconn *c, uint32_t events, int op)
{
    struct epoll_event ev = {.events = events, .data.ptr = c};
    epoll_ctl(c->w->ep, op, c->fd, &ev);
}

static void conn_reset(struct bconn *c)
{
    if (c->ssl != NULL)
        SSL_free(c->ssl);
    c->ssl = NULL;
    if (c->fd >= 0) {
        epoll_ctl(c->w->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
}

static int conn_open(struct bconn *c)
{
    const struct opts *o = c->w->o;
    conn_reset(c);
    c->fd = socket(o->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -1;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->ssl = SSL_new(c->w->ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1 ||
        SSL_set_tlsext_host_name(c->ssl, c->w->o->host) != 1 ||
        (!o->insecure && SSL_set1_host(c->ssl, c->w->o->host) != 1))
        return -1;
    SSL_set_connect_state(c->ssl);
    c->t0 = now_s();
    c->st = S_CONNECTING;
    if (connect(c->fd, (const struct sockaddr *)&o->addr, o->addrlen) != 0 &&
        errno != EINPROGRESS)
        return -1;
    watch(c, EPOLLOUT, EPOLL_CTL_ADD);
    return 0;
}

static void start_request(struct bconn *c)
{
    c->req_off = 0;
    c->done = 0;
    c->status = 0;
    llhttp_init(&c->parser, HTTP_RESPONSE, &parser_settings);
    c->parser.data = c;
    c->st = S_SEND;
    if (c->w->o->mode == M_KEEPALIVE)
        c->t0 = now_s();
}

/* Drives C as far as it goes; returns -1 when it must be reopened. */
static int step(struct bconn *c)
{
    struct worker *w = c->w;
    for (;;) {
        switch (c->st) {
        case S_CONNECTING: {
            int err = 0;
            socklen_t len = sizeof(err);
            getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err != 0)
                return -1;
            c->st = S_HANDSHAKE;
            break;
        }
        case S_HANDSHAKE: {
            ERR_clear_error();
            int r = SSL_do_handshake(c->ssl);
            if (r != 1) {
                int e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                    watch(c, e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT, EPOLL_CTL_MOD);
                    return 0;
                }
                return -1;
            }
            /* Counted when the first answer arrives: in TLS 1.3 the client finishes
             * before the server has checked its certificate. */
            c->first_answer_pending = 1;
            if (w->st.group[0] == '\0') {
                const char *g = SSL_get0_group_name(c->ssl);
                snprintf(w->st.group, sizeof(w->st.group), "%s", g != NULL ? g : "?");
            }
            start_request(c);
            break;
        }
        case S_SEND: {
            ERR_clear_error();
            int r = SSL_write(c->ssl, c->req + c->req_off, (int)(c->req_len - c->req_off));
            if (r <= 0) {
                int e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                    watch(c, e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT, EPOLL_CTL_MOD);
                    return 0;
                }
                return -1;
            }
            c->req_off += (size_t)r;
            if (c->req_off == c->req_len)
                c->st = S_READ;
            break;
        }
        case S_READ: {
            char buf[16384];
            ERR_clear_error();
            int r = SSL_read(c->ssl, buf, sizeof(buf));
            if (r <= 0) {
                int e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                    watch(c, e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT, EPOLL_CTL_MOD);
                    return 0;
                }
                return -1;
            }
            llhttp_errno_t pe = llhttp_execute(&c->parser, buf, (size_t)r);
            if (pe != HPE_OK && pe != HPE_PAUSED)
                return -1;
            if (!c->done)
                break;
            w->st.requests++;
            if (c->first_answer_pending) {
                c->first_answer_pending = 0;
                w->st.handshakes++;
            }
            if (c->status != 200)
                w->st.bad_status++;
            record_latency(&w->st, now_s() - c->t0);
            if (w->o->mode == M_IDLE) {
                c->st = S_HOLD;
                c->was_held = 1;
                atomic_fetch_add(w->ready, 1);
                watch(c, EPOLLIN, EPOLL_CTL_MOD);
                return 0;
            }
            if (w->o->mode == M_HANDSHAKE || now_s() >= w->end)
                return -1; /* a new connection, with a full handshake */
            start_request(c);
            break;
        }
        case S_HOLD: {
            char b;
            ERR_clear_error();
            int r = SSL_read(c->ssl, &b, 1);
            if (r <= 0 && SSL_get_error(c->ssl, r) == SSL_ERROR_WANT_READ)
                return 0;
            atomic_fetch_sub(w->ready, 1); /* the server closed it: no longer held */
            return -1;
        }
        default:
            return -1;
        }
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < w->n; i++)
        if (conn_open(&w->conns[i]) != 0)
            w->st.errors++;
    struct epoll_event evs[256];
    while (now_s() < w->end) {
        int n = epoll_wait(w->ep, evs, 256, 100);
        int failures = 0;
        for (int i = 0; i < n; i++) {
            struct bconn *c = evs[i].data.ptr;
            ERR_clear_error();
            if (step(c) == 0)
                continue;
            int clean = c->st == S_READ && c->done;
            if (!clean && !(c->st == S_HOLD)) {
                w->st.errors++;
                failures++;
            }
            if (c->was_held) {
                conn_reset(c); /* a held connection the server closed stays closed */
                continue;
            }
            if (now_s() < w->end && conn_open(c) != 0) {
                w->st.errors++;
                failures++;
            }
        }
        /* A server that is down or refusing: retry at a human pace, not in a spin. */
        if (failures > 0 && failures == n)
            usleep(10000);
    }
    for (int i = 0; i < w->n; i++)
        conn_reset(&w->conns[i]);
    return NULL;
}

static SSL_CTX *client_ctx(const struct opts *o)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    /* Every connection a full handshake: no session is offered again. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    if ((o->groups != NULL && SSL_CTX_set1_groups_list(ctx, o->groups) != 1) ||
        SSL_CTX_use_certificate_chain_file(ctx, o->cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, o->key, SSL_FILETYPE_PEM) != 1 ||
        (!o->insecure && SSL_CTX_load_verify_file(ctx, o->ca) != 1)) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, o->insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
    return ctx;
}

static void help(void)
{
    printf("Usage: pqmtls bench --connect HOST:PORT --cert FILE --key FILE (--ca FILE |\n"
           "                    --insecure-no-verify) [--host NAME] [--path /] [--mode M]\n"
           "                    [--connections N] [--duration SECONDS] [--threads T]\n"
           "                    [--groups LIST] [--json]\n\n"
           "Loads an mTLS server with N connections that present a client certificate.\n"
           "Modes:\n"
           "  keepalive  (default) each connection sends requests back to back over one TLS\n"
           "             session: requests per second and latency percentiles\n"
           "  handshake  each connection makes a full handshake (no resumption), sends one\n"
           "             request and closes, again and again: full handshakes per second\n"
           "  idle       opens N connections, sends one request on each, and holds them open\n"
           "             for the duration (to measure the server's memory per connection)\n"
           "--insecure-no-verify skips the server certificate check (the load generator then\n"
           "spends its CPU on its own signature only); --ca verifies it against FILE.\n"
           "TLS 1.3 only; --groups as in OpenSSL (default: X25519MLKEM768:X25519).\n"
           "Output: a summary, or one JSON object with --json.\n\n"
           "Example:\n"
           "  pqmtls bench --connect 127.0.0.1:8443 --host api.example.com \\\n"
           "      --cert pki/issued/client1.crt.pem --key pki/issued/client1.key.pem \\\n"
           "      --ca pki/server-ca-chain.pem --mode handshake --connections 32 --duration 10\n");
}

enum { O_CONNECT = 256, O_HOST, O_PATH, O_CERT, O_KEY, O_CA, O_INSECURE, O_MODE, O_CONNS,
       O_DURATION, O_THREADS, O_GROUPS, O_JSON, O_HELP };

static int parse(int argc, char **argv, struct opts *o)
{
    static const struct option opts[] = {
        {"connect", required_argument, NULL, O_CONNECT},
        {"host", required_argument, NULL, O_HOST},
        {"path", required_argument, NULL, O_PATH},
        {"cert", required_argument, NULL, O_CERT},
        {"key", required_argument, NULL, O_KEY},
        {"ca", required_argument, NULL, O_CA},
        {"insecure-no-verify", no_argument, NULL, O_INSECURE},
        {"mode", required_argument, NULL, O_MODE},
        {"connections", required_argument, NULL, O_CONNS},
        {"duration", required_argument, NULL, O_DURATION},
        {"threads", required_argument, NULL, O_THREADS},
        {"groups", required_argument, NULL, O_GROUPS},
        {"json", no_argument, NULL, O_JSON},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *connect_to = NULL;
    int c;
    long v;
    cli_getopt_reset();
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case O_CONNECT:
            connect_to = optarg;
            break;
        case O_HOST:
            snprintf(o->host, sizeof(o->host), "%s", optarg);
            break;
        case O_PATH:
            if (optarg[0] != '/' || strlen(optarg) >= sizeof(o->path) || strpbrk(optarg, " \r\n"))
                return cli_usage(CMD, "--path must be an absolute path without spaces");
            snprintf(o->path, sizeof(o->path), "%s", optarg);
            break;
        case O_CERT:
            o->cert = optarg;
            break;
        case O_KEY:
            o->key = optarg;
            break;
        case O_CA:
            o->ca = optarg;
            break;
        case O_INSECURE:
            o->insecure = 1;
            break;
        case O_MODE:
            if (strcmp(optarg, "keepalive") == 0)
                o->mode = M_KEEPALIVE;
            else if (strcmp(optarg, "handshake") == 0)
                o->mode = M_HANDSHAKE;
            else if (strcmp(optarg, "idle") == 0)
                o->mode = M_IDLE;
            else
                return cli_usage(CMD, "--mode: '%s' is not keepalive, handshake or idle", optarg);
            break;
        case O_CONNS:
            if ((v = cli_parse_long(optarg, 1, 100000)) < 0)
                return cli_usage(CMD, "--connections: '%s' is not 1 to 100000", optarg);
            o->connections = (int)v;
            break;
        case O_DURATION:
            o->duration = strtod(optarg, NULL);
            if (!(o->duration > 0 && o->duration <= 86400))
                return cli_usage(CMD, "--duration: '%s' is not a number of seconds", optarg);
            break;
        case O_THREADS:
            if ((v = cli_parse_long(optarg, 1, MAX_THREADS)) < 0)
                return cli_usage(CMD, "--threads: '%s' is not 1 to %d", optarg, MAX_THREADS);
            o->threads = (int)v;
            break;
        case O_GROUPS:
            o->groups = optarg;
            break;
        case O_JSON:
            o->json = 1;
            break;
        case O_HELP:
            help();
            return EXIT_OK + 100;
        default:
            return cli_bad_option(CMD, c, argv);
        }
    }
    if (optind != argc)
        return cli_usage(CMD, "unexpected argument '%s'", argv[optind]);
    if (connect_to == NULL || o->cert == NULL || o->key == NULL)
        return cli_usage(CMD, "--connect, --cert and --key are required");
    if (o->ca == NULL && !o->insecure)
        return cli_usage(CMD, "--ca FILE (or --insecure-no-verify) is required");
    unsigned alen = 0;
    if (cli_resolve(connect_to, 0, &o->addr, &alen) != 0)
        return cli_usage(CMD, "--connect: cannot resolve '%s' (HOST:PORT)", connect_to);
    o->addrlen = (socklen_t)alen;
    if (o->host[0] == '\0') {
        snprintf(o->host, sizeof(o->host), "%s", connect_to);
        o->host[strcspn(o->host, ":")] = '\0';
    }
    return 0;
}

static void report(const struct opts *o, const struct stats *t, double elapsed, int held)
{
    static const char *const names[] = {"keepalive", "handshake", "idle"};
    double p50 = percentile(t->hist, t->requests, 0.50),
           p90 = percentile(t->hist, t->requests, 0.90),
           p99 = percentile(t->hist, t->requests, 0.99);
    if (o->json) {
        printf("{\"mode\":\"%s\",\"connections\":%d,\"threads\":%d,\"seconds\":%.3f,"
               "\"handshakes\":%llu,\"requests\":%llu,\"errors\":%llu,\"non_200\":%llu,"
               "\"handshakes_per_s\":%.1f,\"requests_per_s\":%.1f,\"latency_ms\":{\"p50\":%.3f,"
               "\"p90\":%.3f,\"p99\":%.3f},\"group\":\"%s\",\"held\":%d}\n",
               names[o->mode], o->connections, o->threads, elapsed,
               (unsigned long long)t->handshakes, (unsigned long long)t->requests,
               (unsigned long long)t->errors, (unsigned long long)t->bad_status,
               (double)t->handshakes / elapsed, (double)t->requests / elapsed, p50, p90, p99,
               t->group, held);
        return;
    }
    printf("pqmtls bench: %s, %d connections, %d threads, %.1f s, group %s\n", names[o->mode],
           o->connections, o->threads, elapsed, t->group);
    printf("  handshakes %llu (%.1f/s), requests %llu (%.1f/s), errors %llu, non-200 %llu\n",
           (unsigned long long)t->handshakes, (double)t->handshakes / elapsed,
           (unsigned long long)t->requests, (double)t->requests / elapsed,
           (unsigned long long)t->errors, (unsigned long long)t->bad_status);
    printf("  latency p50 %.3f ms, p90 %.3f ms, p99 %.3f ms\n", p50, p90, p99);
    if (o->mode == M_IDLE)
        printf("  connections held open: %d\n", held);
}

int cmd_bench(int argc, char **argv)
{
    struct opts o = {.connections = 16, .threads = 1, .duration = 10, .mode = M_KEEPALIVE};
    snprintf(o.path, sizeof(o.path), "/");
    int rc = parse(argc, argv, &o);
    if (rc == EXIT_OK + 100)
        return EXIT_OK;
    if (rc != 0)
        return rc;
    llhttp_settings_init(&parser_settings);
    parser_settings.on_status_complete = on_status_complete;
    parser_settings.on_message_complete = on_message_complete;
    SSL_CTX *ctx = client_ctx(&o);
    if (ctx == NULL) {
        unsigned long e = ERR_get_error();
        return cli_fail(CMD, "cannot set up TLS with %s, %s%s%s: %s", o.cert, o.key,
                        o.ca ? ", " : "", o.ca ? o.ca : "", ERR_reason_error_string(e));
    }
    if (o.threads > o.connections)
        o.threads = o.connections;
    struct worker ws[MAX_THREADS];
    memset(ws, 0, sizeof(ws));
    atomic_int ready = 0;
    struct bconn *all = calloc((size_t)o.connections, sizeof(*all));
    if (all == NULL) {
        SSL_CTX_free(ctx);
        return cli_fail(CMD, "out of memory");
    }
    double start = now_s();
    int next = 0;
    for (int t = 0; t < o.threads; t++) {
        struct worker *w = &ws[t];
        w->o = &o;
        w->ctx = ctx;
        w->ep = epoll_create1(EPOLL_CLOEXEC);
        w->n = o.connections / o.threads + (t < o.connections % o.threads);
        w->conns = all + next;
        next += w->n;
        w->end = start + o.duration;
        w->ready = &ready;
        for (int i = 0; i < w->n; i++) {
            struct bconn *c = &w->conns[i];
            c->w = w;
            c->fd = -1;
            c->req_len = (size_t)snprintf(c->req, sizeof(c->req),
                                          "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: pqmtls-bench/%s"
                                          "\r\n%s\r\n",
                                          o.path, o.host, pqm_version(),
                                          o.mode == M_HANDSHAKE ? "Connection: close\r\n" : "");
        }
        if (pthread_create(&w->tid, NULL, worker_main, w) != 0)
            return cli_fail(CMD, "cannot start thread %d", t);
    }
    struct stats total;
    memset(&total, 0, sizeof(total));
    for (int t = 0; t < o.threads; t++) {
        pthread_join(ws[t].tid, NULL);
        close(ws[t].ep);
        total.handshakes += ws[t].st.handshakes;
        total.requests += ws[t].st.requests;
        total.errors += ws[t].st.errors;
        total.bad_status += ws[t].st.bad_status;
        for (size_t b = 0; b < NBUCKETS; b++)
            total.hist[b] += ws[t].st.hist[b];
        if (total.group[0] == '\0')
            memcpy(total.group, ws[t].st.group, sizeof(total.group));
    }
    double elapsed = now_s() - start;
    report(&o, &total, elapsed, atomic_load(&ready));
    free(all);
    SSL_CTX_free(ctx);
    if (total.requests == 0)
        return cli_fail(CMD, "no request succeeded (%llu errors)",
                        (unsigned long long)total.errors);
    return EXIT_OK;
}
