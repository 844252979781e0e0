/* The OCSP responder's server: workers (one libev loop, one SO_REUSEPORT listener and one
 * read-only inventory connection each), connections with bounded buffers and timeouts,
 * signals, and new signers taken up while it runs.
 *
 * A connection reads only when its answer has gone out, one request at a time: what it
 * holds is one read (16 KB), one request (http.c's bounds) and one answer. An idle
 * keep-alive connection holds no buffer at all. */
#define _GNU_SOURCE /* accept4 */
#include <pqmtls/ocsp.h>

#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include "ocsp/cache.h"
#include "ocsp/http.h"
#include "ocsp/load.h"
#include "ocsp/responder.h"
#include "pki/store.h"
#include "util/buf.h"
#include "util/net.h"
#include "util/sdnotify.h"
#include "util/secret.h"
#include "util/timeutil.h"

#define READ_CHUNK 16384
#define REFRESH_SECONDS 10    /* how often the inventory is asked for new signers */
#define EXPIRY_WARNING (3 * 86400)
#define MAX_WORKERS 256

static void say(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const char *level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "pqmtls ocsp: %s: %s\n", level, msg);
}

/* --- configuration ----------------------------------------------------------------- */

struct pqm_ocsp_config {
    struct pqm_err err;
    char pki[PATH_MAX];
    char listen[256];
    char path[256];
    int64_t validity;
    int workers;
    double idle_timeout, request_timeout;
    int max_connections;
    int cache_entries;
    struct pqm_secret key_pass;
};

struct pqm_ocsp_config *pqm_ocsp_config_new(void)
{
    struct pqm_ocsp_config *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    snprintf(c->path, sizeof(c->path), "/");
    c->validity = 3600;
    c->idle_timeout = 30;
    c->request_timeout = 10;
    c->max_connections = 10000;
    c->cache_entries = 1024;
    return c;
}

void pqm_ocsp_config_free(struct pqm_ocsp_config *c)
{
    if (c == NULL)
        return;
    pqm__secret_clear(&c->key_pass);
    free(c);
}

const char *pqm_ocsp_config_error(const struct pqm_ocsp_config *c)
{
    return pqm__err_str(&c->err);
}

static int set_text(struct pqm_ocsp_config *c, char *dst, size_t len, const char *what,
                    const char *v)
{
    if (v == NULL || v[0] == '\0' || strlen(v) >= len)
        return pqm__err_set(&c->err, "%s must be 1 to %zu characters", what, len - 1);
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

int pqm_ocsp_config_set_pki(struct pqm_ocsp_config *c, const char *dir)
{
    return set_text(c, c->pki, sizeof(c->pki), "--pki", dir);
}

int pqm_ocsp_config_set_listen(struct pqm_ocsp_config *c, const char *addr)
{
    return set_text(c, c->listen, sizeof(c->listen), "--listen", addr);
}

int pqm_ocsp_config_set_path(struct pqm_ocsp_config *c, const char *path)
{
    if (path == NULL || path[0] != '/')
        return pqm__err_set(&c->err, "--path '%s' must start with '/'", path ? path : "");
    for (const char *p = path; *p != '\0'; p++)
        if (*p <= ' ' || *p >= 0x7f || *p == '?' || *p == '#' || *p == '%')
            return pqm__err_set(&c->err, "--path '%s': only printable characters without "
                                         "spaces, '?', '#' or '%%'",
                                path);
    if (set_text(c, c->path, sizeof(c->path), "--path", path) != 0)
        return -1;
    size_t n = strlen(c->path);
    while (n > 1 && c->path[n - 1] == '/')
        c->path[--n] = '\0'; /* "/ocsp/" and "/ocsp" are the same place */
    return 0;
}

int pqm_ocsp_config_set_validity(struct pqm_ocsp_config *c, int64_t seconds)
{
    if (seconds < 60 || seconds > 7 * 86400)
        return pqm__err_set(&c->err, "--validity must be 1 minute to 7 days");
    c->validity = seconds;
    return 0;
}

int pqm_ocsp_config_set_workers(struct pqm_ocsp_config *c, int workers)
{
    if (workers < 1 || workers > MAX_WORKERS)
        return pqm__err_set(&c->err, "--workers must be 1 to %d", MAX_WORKERS);
    c->workers = workers;
    return 0;
}

int pqm_ocsp_config_set_timeouts(struct pqm_ocsp_config *c, double idle, double request)
{
    if (!(idle >= 0.1 && idle <= 3600) || !(request >= 0.1 && request <= 3600))
        return pqm__err_set(&c->err, "timeouts must be 0.1 s to 1 hour");
    c->idle_timeout = idle;
    c->request_timeout = request;
    return 0;
}

int pqm_ocsp_config_set_max_connections(struct pqm_ocsp_config *c, int n)
{
    if (n < 1 || n > 1000000)
        return pqm__err_set(&c->err, "--max-connections must be 1 to 1000000");
    c->max_connections = n;
    return 0;
}

int pqm_ocsp_config_set_cache(struct pqm_ocsp_config *c, int entries)
{
    if (entries < 0 || entries > 100000)
        return pqm__err_set(&c->err, "--cache must be 0 to 100000 answers");
    c->cache_entries = entries;
    return 0;
}

int pqm_ocsp_config_set_key_passphrase(struct pqm_ocsp_config *c, const char *pass, size_t len)
{
    return pqm__secret_set(&c->key_pass, pass, len, &c->err);
}

/* --- what answers: shared, replaced whole when the signers change --------------------- */

struct snapshot {
    atomic_int refs;
    struct pqm_ocsp_responder r;
};

static void snap_release(struct snapshot *s)
{
    if (s == NULL || atomic_fetch_sub(&s->refs, 1) > 1)
        return;
    pqm__ocsp_responder_clear(&s->r);
    free(s);
}

struct worker;

struct pqm_ocsp_server {
    struct pqm_ocsp_config cfg;
    char dir[PATH_MAX];
    struct pqm_store *store; /* the main thread's, for the signer refresh */
    pthread_mutex_t mu;
    struct snapshot *current; /* under mu */
    atomic_uint generation;
    struct worker *workers;
    int nworkers;
};

static struct snapshot *snap_take(struct pqm_ocsp_server *srv, unsigned *gen)
{
    pthread_mutex_lock(&srv->mu);
    struct snapshot *s = srv->current;
    atomic_fetch_add(&s->refs, 1);
    *gen = atomic_load(&srv->generation);
    pthread_mutex_unlock(&srv->mu);
    return s;
}

/* --- connections ---------------------------------------------------------------------- */

struct conn;

struct worker {
    struct pqm_ocsp_server *srv;
    int id;
    int lfd;
    int max_conns, nconns;
    struct ev_loop *loop;
    ev_io accept_w;
    ev_async stop_w;
    pthread_t thread;
    int started;
    struct pqm_store *store;
    struct snapshot *snap;
    unsigned gen;
    struct pqm_ocsp_cache cache;
    int64_t data_version; /* of the inventory when the cache was last known true */
    struct conn *conns;
};

struct conn {
    struct worker *w;
    struct conn *prev, *next;
    int fd;
    ev_io io;
    ev_timer timer;
    int events;
    struct pqm_ocsp_http http;
    struct pqm_buf in, out;
    int close_after;
    double request_started; /* the first byte of the request under way; 0: none */
    double last_active;
};

static void conn_close(struct conn *c)
{
    struct worker *w = c->w;
    ev_io_stop(w->loop, &c->io);
    ev_timer_stop(w->loop, &c->timer);
    close(c->fd);
    pqm__ocsp_http_free(&c->http);
    pqm__buf_free(&c->in);
    pqm__buf_free(&c->out);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    w->nconns--;
    free(c);
    if (!ev_is_active(&w->accept_w) && w->nconns < w->max_conns && w->lfd >= 0)
        ev_io_start(w->loop, &w->accept_w); /* room again for the connections waiting */
}

/* 0: everything sent, or the socket is full; -1: the peer is gone. */
static int flush(struct conn *c)
{
    while (c->out.len > 0) {
        ssize_t n = send(c->fd, pqm__buf_head(&c->out), c->out.len, MSG_NOSIGNAL);
        if (n > 0) {
            pqm__buf_consume(&c->out, (size_t)n);
            c->last_active = ev_now(c->w->loop);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
    }
    return 0;
}

/* 1: bytes read; 0: none yet; -1: closed by the peer (a request cut short is not
 * answered: nothing could be) or failed. */
static int fill(struct conn *c)
{
    unsigned char *dst = pqm__buf_reserve(&c->in, READ_CHUNK);
    if (dst == NULL)
        return -1;
    ssize_t n = recv(c->fd, dst, READ_CHUNK, 0);
    if (n > 0) {
        pqm__buf_commit(&c->in, (size_t)n);
        c->last_active = ev_now(c->w->loop);
        return 1;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return 0;
    return -1;
}

/* The kept answers are emptied when the inventory changed since they were made (any
 * commit: a revocation shows in the very next answer) or the signers did. */
static void cache_check(struct worker *w, int new_signers)
{
    struct pqm_err e;
    int64_t v = -1;
    if (w->cache.n == 0)
        return;
    if (pqm__store_data_version(w->store, &v, &e) != 0)
        v = -1; /* unknown: never trusted (every answer is made anew) */
    if (new_signers || v < 0 || v != w->data_version)
        pqm__ocsp_cache_flush(&w->cache);
    w->data_version = v;
}

static void answer(struct conn *c)
{
    struct worker *w = c->w;
    int new_signers = w->gen != atomic_load(&w->srv->generation);
    if (new_signers) {
        snap_release(w->snap);
        w->snap = snap_take(w->srv, &w->gen);
    }
    if (c->http.state == PQM_OCSP_HTTP_COMPLETE)
        cache_check(w, new_signers);
    struct pqm_ocsp_site site = {&w->snap->r, pqm__ocsp_store_lookup, w->store,
                                 w->srv->cfg.path, (int64_t)time(NULL), &w->cache};
    struct pqm_ocsp_served s;
    if (pqm__ocsp_http_answer(&c->http, &site, &c->out, &s) != 0 || s.close)
        c->close_after = 1;
    c->request_started = 0;
}

/* Parses what was read; answers a request once it is whole. */
static void take(struct conn *c)
{
    size_t used = pqm__ocsp_http_feed(&c->http, pqm__buf_head(&c->in), c->in.len);
    pqm__buf_consume(&c->in, used);
    if (c->http.continue_due) {
        c->http.continue_due = 0;
        if (pqm__buf_addf(&c->out, "HTTP/1.1 100 Continue\r\n\r\n") != 0)
            c->close_after = 1;
    }
    if (c->http.state == PQM_OCSP_HTTP_READING && c->request_started == 0)
        c->request_started = ev_now(c->w->loop);
    if (c->http.state == PQM_OCSP_HTTP_COMPLETE || c->http.state == PQM_OCSP_HTTP_ERROR)
        answer(c);
}

/* Waits for what the connection needs next, with the timeout of that phase: its answer
 * to leave, its request to arrive whole, or (idle) the next request. */
static void arm(struct conn *c)
{
    struct ev_loop *loop = c->w->loop;
    const struct pqm_ocsp_config *cfg = &c->w->srv->cfg;
    double now = ev_now(loop), deadline;
    int events = c->out.len > 0 ? EV_WRITE : EV_READ;
    if (c->out.len > 0) {
        deadline = c->last_active + cfg->request_timeout;
    } else if (c->request_started != 0) {
        deadline = c->request_started + cfg->request_timeout;
    } else {
        deadline = c->last_active + cfg->idle_timeout;
        if (c->in.len == 0) { /* idle: nothing kept */
            pqm__buf_free(&c->in);
            pqm__buf_free(&c->out);
            pqm__ocsp_http_free(&c->http);
        }
    }
    if (events != c->events) {
        ev_io_stop(loop, &c->io);
        ev_io_set(&c->io, c->fd, events);
        ev_io_start(loop, &c->io);
        c->events = events;
    }
    ev_timer_stop(loop, &c->timer);
    ev_timer_set(&c->timer, deadline > now ? deadline - now : 0.001, 0);
    ev_timer_start(loop, &c->timer);
    /* Bytes already read (pipelined requests) are served next time round, without
     * waiting for the socket to say more came. */
    if (c->in.len > 0 && c->out.len == 0)
        ev_feed_event(loop, &c->io, EV_READ);
}

static void serve(struct conn *c)
{
    for (int round = 0; round < 16; round++) {
        if (flush(c) != 0) {
            conn_close(c);
            return;
        }
        if (c->out.len > 0)
            break;
        if (c->close_after) {
            conn_close(c);
            return;
        }
        if (c->in.len == 0) {
            int rc = fill(c);
            if (rc < 0) {
                conn_close(c);
                return;
            }
            if (rc == 0)
                break;
        }
        take(c);
    }
    arm(c);
}

static void io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    (void)revents;
    serve(io->data);
}

static void timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    conn_close(t->data); /* idle, slow to send its request, or slow to read its answer */
}

static void conn_start(struct worker *w, int fd)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        close(fd);
        return;
    }
    c->w = w;
    c->fd = fd;
    pqm__ocsp_http_init(&c->http);
    pqm__buf_init(&c->in, READ_CHUNK);
    pqm__buf_init(&c->out, PQM_OCSP_ANSWER_MAX + 64);
    c->last_active = ev_now(w->loop);
    c->next = w->conns;
    if (w->conns != NULL)
        w->conns->prev = c;
    w->conns = c;
    w->nconns++;
    ev_init(&c->io, io_cb);
    c->io.data = c;
    ev_init(&c->timer, timer_cb);
    c->timer.data = c;
    arm(c);
}

static void accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)revents;
    struct worker *w = io->data;
    for (int i = 0; i < 64; i++) {
        if (w->nconns >= w->max_conns) {
            ev_io_stop(loop, &w->accept_w); /* full: new ones wait in the listen queue */
            return;
        }
        int fd = accept4(w->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN, or a transient error: the next readiness retries */
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        conn_start(w, fd);
    }
}

/* --- workers ------------------------------------------------------------------------ */

static void stop_cb(struct ev_loop *loop, ev_async *a, int revents)
{
    (void)a;
    (void)revents;
    ev_break(loop, EVBREAK_ALL); /* OCSP exchanges are short: no draining */
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    ev_run(w->loop, 0);
    while (w->conns != NULL)
        conn_close(w->conns);
    return NULL;
}

static int start_worker(struct worker *w)
{
    w->loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
    if (w->loop == NULL)
        return -1;
    ev_io_init(&w->accept_w, accept_cb, w->lfd, EV_READ);
    w->accept_w.data = w;
    ev_io_start(w->loop, &w->accept_w);
    ev_async_init(&w->stop_w, stop_cb);
    ev_async_start(w->loop, &w->stop_w);
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
        return -1;
    w->started = 1;
    return 0;
}

/* --- signers ------------------------------------------------------------------------ */

static void describe(const struct pqm_ocsp_server *srv, const struct pqm_ocsp_responder *r)
{
    int64_t now = (int64_t)time(NULL);
    for (size_t i = 0; i < r->n; i++) {
        const struct pqm_ocsp_issuer *is = &r->issuers[i];
        if (is->signer == NULL) {
            say("warning", "no usable OCSP signer for the %s: its answers are tryLater until "
                           "`pqmtls ocsp signers --pki %s` makes one",
                is->label, srv->cfg.pki);
            continue;
        }
        char until[32];
        pqm__format_time(is->signer_not_after, until, sizeof(until));
        say(is->signer_not_after - now < EXPIRY_WARNING ? "warning" : "info",
            "the %s's answers are signed by OCSP signer %s, valid until %s", is->label,
            is->signer_serial, until);
    }
}

/* Loads the CAs and the signers the inventory names now into a new snapshot. */
static struct snapshot *snap_load(struct pqm_ocsp_server *srv, struct pqm_err *e)
{
    struct snapshot *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        pqm__err_set(e, "out of memory");
        return NULL;
    }
    atomic_init(&s->refs, 1);
    if (pqm__ocsp_load(srv->dir, srv->store, &srv->cfg.key_pass, (int64_t)time(NULL), &s->r,
                       e) != 0) {
        free(s);
        return NULL;
    }
    s->r.validity = srv->cfg.validity;
    return s;
}

/* Takes up new signers when the inventory names others than those in use (a renewal, an
 * expiry, a revocation), or always when FORCE. One that does not load changes nothing. */
static void refresh(struct pqm_ocsp_server *srv, int force)
{
    struct pqm_err e = {{0}};
    int changed = pqm__ocsp_signers_changed(srv->store, &srv->current->r, (int64_t)time(NULL), &e);
    if (changed < 0)
        say("error", "cannot look for new signers: %s", pqm__err_str(&e));
    if (changed <= 0 && !force)
        return;
    struct snapshot *next = snap_load(srv, &e);
    if (next == NULL) {
        say("error", "new signers refused, those in use stay: %s", pqm__err_str(&e));
        return;
    }
    pthread_mutex_lock(&srv->mu);
    struct snapshot *old = srv->current;
    srv->current = next;
    atomic_fetch_add(&srv->generation, 1);
    pthread_mutex_unlock(&srv->mu);
    snap_release(old);
    describe(srv, &next->r);
}

/* --- the server --------------------------------------------------------------------- */

static int open_workers(struct pqm_ocsp_server *srv, struct pqm_err *e)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;
    if (pqm__net_resolve(srv->cfg.listen, 1, &ss, &len, e) != 0)
        return pqm__err_copy(e, "--listen", pqm__err_str(e));
    if (pqm__net_address_free(&ss, len, srv->cfg.listen, "responder", e) != 0)
        return -1;
    srv->nworkers = srv->cfg.workers > 0 ? srv->cfg.workers : pqm__usable_cores();
    srv->workers = calloc((size_t)srv->nworkers, sizeof(*srv->workers));
    if (srv->workers == NULL)
        return pqm__err_set(e, "out of memory");
    for (int i = 0; i < srv->nworkers; i++)
        srv->workers[i].lfd = -1;
    int per = srv->cfg.max_connections / srv->nworkers;
    char db[PATH_MAX + 8];
    snprintf(db, sizeof(db), "%s/pki.db", srv->dir);
    for (int i = 0; i < srv->nworkers; i++) {
        struct worker *w = &srv->workers[i];
        w->srv = srv;
        w->id = i;
        w->max_conns = per > 0 ? per : 1;
        w->lfd = pqm__net_listen(&ss, len, srv->cfg.listen, e);
        if (w->lfd < 0 || (w->store = pqm__store_open_readonly(db, e)) == NULL)
            return -1;
        w->data_version = -1;
        if (pqm__ocsp_cache_init(&w->cache, (size_t)srv->cfg.cache_entries) != 0)
            return pqm__err_set(e, "out of memory");
        w->snap = snap_take(srv, &w->gen);
    }
    return 0;
}

struct pqm_ocsp_server *pqm_ocsp_server_new(const struct pqm_ocsp_config *cfg, char *err,
                                            size_t errlen)
{
    struct pqm_err e = {{0}};
    char db[PATH_MAX + 8], missing[256];
    struct pqm_ocsp_server *srv = calloc(1, sizeof(*srv));
    if (srv == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&srv->mu, NULL);
    srv->cfg = *cfg;
    memset(&srv->cfg.key_pass, 0, sizeof(srv->cfg.key_pass));
    if (cfg->key_pass.buf != NULL &&
        pqm__secret_set(&srv->cfg.key_pass, cfg->key_pass.buf, cfg->key_pass.len, &e) != 0)
        goto fail;
    if (cfg->pki[0] == '\0' || cfg->listen[0] == '\0') {
        pqm__err_set(&e, "%s is required", cfg->pki[0] == '\0' ? "--pki DIR" : "--listen ADDR");
        goto fail;
    }
    if (realpath(cfg->pki, srv->dir) == NULL) {
        pqm__err_set(&e, "%s: not a pqmtls PKI directory (%s)", cfg->pki, strerror(errno));
        goto fail;
    }
    snprintf(db, sizeof(db), "%s/pki.db", srv->dir);
    if ((srv->store = pqm__store_open_readonly(db, &e)) == NULL ||
        (srv->current = snap_load(srv, &e)) == NULL)
        goto fail;
    if (pqm__ocsp_missing_signers(&srv->current->r, missing, sizeof(missing)) > 0) {
        pqm__err_set(&e, "no usable OCSP signer for the %s (none made yet, or expired or "
                         "revoked): run `pqmtls ocsp signers --pki %s`, which signs them with "
                         "the CA keys (the responder never holds the PKI passphrase)",
                     missing, cfg->pki);
        goto fail;
    }
    if (open_workers(srv, &e) != 0)
        goto fail;
    return srv;
fail:
    snprintf(err, errlen, "%s", pqm__err_str(&e));
    pqm_ocsp_server_free(srv);
    return NULL;
}

static void stop_workers(struct pqm_ocsp_server *srv)
{
    for (int i = 0; i < srv->nworkers; i++)
        if (srv->workers[i].started)
            ev_async_send(srv->workers[i].loop, &srv->workers[i].stop_w);
    for (int i = 0; i < srv->nworkers; i++)
        if (srv->workers[i].started) {
            pthread_join(srv->workers[i].thread, NULL);
            srv->workers[i].started = 0;
        }
}

int pqm_ocsp_server_run(struct pqm_ocsp_server *srv)
{
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    signal(SIGPIPE, SIG_IGN);
    pthread_sigmask(SIG_BLOCK, &set, &old); /* the workers inherit the mask */
    int rc = 0;
    for (int i = 0; i < srv->nworkers && rc == 0; i++)
        if (start_worker(&srv->workers[i]) != 0) {
            say("error", "cannot start worker %d", i);
            rc = -1;
        }
    if (rc == 0) {
        say("info", "listening on %s%s (%d workers), answers valid %lld s, from %s/pki.db",
            srv->cfg.listen, strcmp(srv->cfg.path, "/") == 0 ? "" : srv->cfg.path,
            srv->nworkers, (long long)srv->cfg.validity, srv->dir);
        describe(srv, &srv->current->r);
        pqm__sd_notify("READY=1");
    }
    time_t looked = time(NULL);
    while (rc == 0) {
        struct timespec ts = {1, 0};
        int sig = sigtimedwait(&set, NULL, &ts);
        if (sig == SIGHUP) {
            refresh(srv, 1);
            looked = time(NULL);
        } else if (sig == SIGTERM || sig == SIGINT) {
            say("info", "signal %d: stopping", sig);
            pqm__sd_notify("STOPPING=1");
            break;
        } else if (time(NULL) - looked >= REFRESH_SECONDS) {
            refresh(srv, 0);
            looked = time(NULL);
        }
    }
    stop_workers(srv);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

void pqm_ocsp_server_free(struct pqm_ocsp_server *srv)
{
    if (srv == NULL)
        return;
    stop_workers(srv);
    for (int i = 0; srv->workers != NULL && i < srv->nworkers; i++) {
        struct worker *w = &srv->workers[i];
        if (w->lfd >= 0)
            close(w->lfd);
        if (w->loop != NULL)
            ev_loop_destroy(w->loop);
        pqm__store_close(w->store);
        pqm__ocsp_cache_free(&w->cache);
        snap_release(w->snap);
    }
    free(srv->workers);
    snap_release(srv->current);
    pqm__store_close(srv->store);
    pqm__secret_clear(&srv->cfg.key_pass);
    pthread_mutex_destroy(&srv->mu);
    free(srv);
}
