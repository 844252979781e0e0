/* One client connection: TLS handshake, then HTTP/1.1 exchanges relayed to the upstream.
 *
 * Everything a connection does happens in pump(): it moves bytes as far as they can go
 * (client -> request relay -> upstream, upstream -> response relay -> client) and then
 * sets which readiness events and which timer the connection waits for. Every buffer is
 * bounded; a full buffer stops reading from the side that fills it. */
#define _GNU_SOURCE /* accept4 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "gateway/gateway.h"
#include "gateway/policy.h"
#include "http/relay.h"
#include "util/buf.h"
#include "util/timeutil.h"

#define PQM_IN_MAX (64 * 1024)    /* received, not yet parsed */
#define PQM_OUT_MAX (256 * 1024)  /* parsed, not yet sent */
#define PQM_READ_CHUNK (16 * 1024)
/* Rounds of one pump before the connection lets the others be served. */
#ifndef PQM_PUMP_ROUNDS
#define PQM_PUMP_ROUNDS 64
#endif
#define PQM_SPARE_EXCHANGES 32           /* ended exchanges a worker keeps for reuse */
#define PQM_SPARE_BUF_MAX (32 * 1024)    /* larger buffers are not kept with them */

/* P_OCSP: the handshake is done, the client certificate waits for its OCSP answer
 * (client_ocsp: hard or soft), ocsp_timeout + 1 s at most; nothing is read from the
 * client meanwhile. */
enum phase { P_HANDSHAKE, P_OCSP, P_ACTIVE, P_CLOSING };

struct upconn {
    struct worker *w;
    struct upconn *next;
    int fd;
    int connecting;
    int readable; /* reported readable and not yet read dry: a recv is worth a syscall */
    ev_io io;
    ev_timer idle_timer;
};

/* One request and its response: allocated when a request starts, so that an idle
 * keep-alive connection holds no parser and no buffers. */
struct exchange {
    struct exchange *next_spare;
    struct pqm_relay req, resp;
    struct pqm_buf to_up, up_in, to_client_err;
    struct upconn *up;
    double t_start, t_up_start, t_up_first;
    int response_started; /* a byte of the response went to the client */
    int up_eof;
};

/* The verified client, kept for the connection's life in one allocation: an idle
 * keep-alive connection should cost little beyond what TLS itself keeps. */
struct identity {
    const char *subject, *issuer, *serial, *fingerprint, *spiffe, *cn, *org, *group, *sigalg,
        *version;
    const char *dns; /* NUL-separated, an empty one at the end */
    int64_t not_after;
    char not_after_text[32];
    int resumed;
    char data[];
};

struct conn {
    struct worker *w;
    struct conn *prev, *next;
    struct pqm_tls_server *tls;
    int fd;
    SSL *ssl;                /* during the handshake; then the stream has the records */
    struct pqm_tls_stream st;
    struct pqm_tls_peer *hs; /* during the handshake: what TLS learns, why it refuses */
    struct identity *id;     /* after it: the client's identity, compact */
    char *client_cert; /* RFC 9440 ":base64(DER):", when configured */
    char client[64];
    enum phase phase;
    ev_io io;
    ev_timer timer;
    struct pqm_buf in;        /* decrypted from the client */
    struct pqm_buf to_client; /* plaintext for the client */
    struct exchange *x;
    int client_eof;
    int close_after;       /* close once everything for the client has been sent */
    int ssl_wants_write;   /* the last handshake step or write wanted the socket writable */
    int readable;          /* the client socket was reported readable and not read dry */
    struct conn *run_next; /* in the worker's run stack or its later list, when queued */
    int queued;
    uint64_t moved;        /* bytes read, parsed and written so far: the pump's progress */
    uint64_t requests;
};

static void conn_close(struct conn *c);
static void pump(struct conn *c);
static void enqueue(struct conn *c);
static void defer(struct conn *c);

/* --- access log ------------------------------------------------------------------ */

static void iso_time(int64_t t, char *out, size_t len)
{
    pqm__format_time(t, out, len);
}

static void log_handshake_refused(struct conn *c)
{
    pqm__metrics_handshake(&c->w->metrics,
                           c->hs->reason_code != NULL ? c->hs->reason_code : "handshake", NULL,
                           0, 0);
    char when[40];
    iso_time((int64_t)time(NULL), when, sizeof(when));
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "time", when, "event", "handshake_refused",
                          "client", c->client, "reason_code",
                          c->hs->reason_code ? c->hs->reason_code : "handshake", "reason",
                          c->hs->reason);
    if (o != NULL && c->hs->resume_refused[0] != '\0')
        json_object_set_new(o, "resumption_refused", json_string(c->hs->resume_refused));
    char *line = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    if (line != NULL)
        pqm__gw_log_line(c->w->gw, line);
    free(line);
    json_decref(o);
}

/* A JSON string member ,"KEY":"VALUE" with VALUE escaped (RFC 8259 7). */
static void jstr(struct pqm_buf *b, const char *key, const char *v)
{
    pqm__buf_add(b, ",\"", 2);
    pqm__buf_add(b, key, strlen(key));
    pqm__buf_add(b, "\":\"", 3);
    const char *run = v;
    for (const char *p = v;; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch != '\0' && ch >= 0x20 && ch != '"' && ch != '\\')
            continue;
        pqm__buf_add(b, run, (size_t)(p - run));
        if (ch == '\0')
            break;
        char tmp[8];
        int n = ch == '"' || ch == '\\' ? snprintf(tmp, sizeof(tmp), "\\%c", ch)
                                          : snprintf(tmp, sizeof(tmp), "\\u%04x", ch);
        pqm__buf_add(b, tmp, (size_t)n);
        run = p + 1;
    }
    pqm__buf_add(b, "\"", 1);
}

/* The current time as text, formatted once a second per worker. */
static const char *worker_now_text(struct worker *w)
{
    time_t now = time(NULL);
    if (now != w->now_text_at) {
        iso_time((int64_t)now, w->now_text, sizeof(w->now_text));
        w->now_text_at = now;
    }
    return w->now_text;
}

/* One access log line per request, written without a JSON library or an allocation: it
 * is on the path of every request. */
static void log_request(struct conn *c, int status, uint64_t bytes, const char *error)
{
    struct exchange *x = c->x;
    struct worker *w = c->w;
    double end = pqm__mono_seconds();
    double up_s = x->t_up_start > 0 && x->t_up_first > 0 ? x->t_up_first - x->t_up_start : -1;
    pqm__metrics_request(&w->metrics, status, up_s);
    if (w->gw->access_log_fd < 0)
        return;
    char method[16], path[1024], tail[160];
    method[0] = path[0] = '\0';
    if (x->req.url_len > 0)
        pqm__relay_target(&x->req, method, sizeof(method), path, sizeof(path));
    struct pqm_buf *b = &w->logbuf;
    b->off = b->len = 0;
    pqm__buf_add(b, "{\"time\":\"", 9);
    const char *now = worker_now_text(w);
    pqm__buf_add(b, now, strlen(now));
    pqm__buf_add(b, "\"", 1);
    jstr(b, "client", c->client);
    jstr(b, "subject", c->id->subject);
    jstr(b, "issuer", c->id->issuer);
    jstr(b, "serial", c->id->serial);
    jstr(b, "sha256", c->id->fingerprint);
    jstr(b, "not_after", c->id->not_after_text);
    jstr(b, "spiffe_id", c->id->spiffe);
    jstr(b, "tls_version", c->id->version);
    jstr(b, "group", c->id->group);
    jstr(b, "sigalg", c->id->sigalg);
    pqm__buf_add(b, ",\"event\":\"request\"", 18);
    jstr(b, "method", method);
    jstr(b, "path", path);
    int n = snprintf(tail, sizeof(tail),
                     ",\"resumed\":%s,\"status\":%d,\"bytes\":%llu,\"upstream_ms\":%.3f,"
                     "\"total_ms\":%.3f",
                     c->id->resumed ? "true" : "false", status, (unsigned long long)bytes,
                     up_s >= 0 ? up_s * 1e3 : -1.0, (end - x->t_start) * 1e3);
    pqm__buf_add(b, tail, (size_t)n);
    if (error != NULL)
        jstr(b, "error", error);
    if (pqm__buf_add(b, "}\n", 2) != 0)
        return;
    /* Lines wait for the end of the loop iteration (pqm__gw_worker_flush_log): one write
     * for all the requests answered in it. */
    if (pqm__buf_room(&w->logout) < b->len)
        pqm__gw_worker_flush_log(w);
    if (pqm__buf_add(&w->logout, pqm__buf_head(b), b->len) != 0)
        pqm__gw_log_bytes(w->gw, (const char *)pqm__buf_head(b), b->len - 1);
}

void pqm__gw_worker_flush_log(struct worker *w)
{
    if (w->logout.len == 0)
        return;
    pqm__gw_log_raw(w->gw, (const char *)pqm__buf_head(&w->logout), w->logout.len);
    w->logout.off = w->logout.len = 0;
}

/* A client certificate close to its end: one warning an hour per certificate, in the
 * access log and for the operator. */
static void check_expiry(struct conn *c)
{
    struct pqm_gateway *gw = c->w->gw;
    int64_t now = (int64_t)time(NULL);
    int64_t left = c->id->not_after - now;
    if (gw->cfg.expiry_warning_days <= 0 || c->id->fingerprint[0] == '\0' ||
        left > (int64_t)gw->cfg.expiry_warning_days * 86400 ||
        !pqm__gw_expiry_should_warn(gw, c->id->fingerprint, now))
        return;
    char when[40], not_after[40];
    iso_time(now, when, sizeof(when));
    iso_time(c->id->not_after, not_after, sizeof(not_after));
    double days = (double)left / 86400.0;
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:f}", "time", when, "event",
                          "certificate_expiring", "subject", c->id->subject, "serial",
                          c->id->serial, "sha256", c->id->fingerprint, "spiffe_id",
                          c->id->spiffe, "not_after", not_after, "days_left", days);
    char *line = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    if (line != NULL)
        pqm__gw_log_line(gw, line);
    free(line);
    json_decref(o);
    pqm__gw_say("warning", "client certificate '%s' (serial %s) expires %s, in %.1f days",
                c->id->subject, c->id->serial, not_after, days);
}

/* --- upstream connections ---------------------------------------------------------- */

static void up_free(struct upconn *u)
{
    if (u == NULL)
        return;
    ev_io_stop(u->w->loop, &u->io);
    ev_timer_stop(u->w->loop, &u->idle_timer);
    close(u->fd);
    free(u);
}

static void pool_remove(struct worker *w, struct upconn *u)
{
    for (struct upconn **p = &w->idle; *p != NULL; p = &(*p)->next)
        if (*p == u) {
            *p = u->next;
            w->nidle--;
            return;
        }
}

static void pool_drop(struct upconn *u)
{
    pool_remove(u->w, u);
    up_free(u);
}

/* An idle pooled connection that becomes readable was closed (or misbehaves): drop it. */
static void idle_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    (void)revents;
    pool_drop(io->data);
}

static void idle_timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    pool_drop(t->data);
}

static void pool_put(struct worker *w, struct upconn *u)
{
    if (w->nidle >= w->gw->cfg.upstream_keepalive) {
        up_free(u); /* as many idle upstream connections as configured, no more */
        return;
    }
    w->nidle++;
    ev_io_stop(w->loop, &u->io);
    ev_io_init(&u->io, idle_cb, u->fd, EV_READ);
    u->io.data = u;
    ev_io_start(w->loop, &u->io);
    ev_timer_init(&u->idle_timer, idle_timeout_cb, w->gw->cfg.idle_timeout, 0);
    u->idle_timer.data = u;
    ev_timer_start(w->loop, &u->idle_timer);
    u->next = w->idle;
    w->idle = u;
}

static void up_io_cb(struct ev_loop *loop, ev_io *io, int revents);

static struct upconn *up_get(struct conn *c)
{
    struct worker *w = c->w;
    while (w->idle != NULL) {
        struct upconn *u = w->idle;
        w->idle = u->next;
        w->nidle--;
        ev_io_stop(w->loop, &u->io);
        ev_timer_stop(w->loop, &u->idle_timer);
        char b;
        ssize_t n = recv(u->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            ev_io_init(&u->io, up_io_cb, u->fd, EV_READ);
            u->io.data = c;
            u->readable = 0;
            return u;
        }
        up_free(u); /* closed by the upstream while idle */
    }
    struct pqm_gateway *gw = w->gw;
    int fd = socket(gw->upstream.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return NULL;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct upconn *u = calloc(1, sizeof(*u));
    if (u == NULL) {
        close(fd);
        return NULL;
    }
    u->w = w;
    u->fd = fd;
    if (connect(fd, (struct sockaddr *)&gw->upstream, gw->upstream_len) != 0) {
        if (errno != EINPROGRESS) {
            free(u);
            close(fd);
            return NULL;
        }
        u->connecting = 1;
    }
    ev_io_init(&u->io, up_io_cb, fd, EV_READ);
    u->io.data = c;
    return u;
}

/* --- error answers ----------------------------------------------------------------- */

static const char *status_text(int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 414:
        return "URI Too Long";
    case 405:
        return "Method Not Allowed";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Error";
    }
}

/* Answers the current request with STATUS and a short JSON body, logs it, and closes the
 * connection once the answer is out (what follows on it can no longer be trusted). */
static void answer_error(struct conn *c, int status, const char *code, const char *detail)
{
    struct exchange *x = c->x;
    c->close_after = 1;
    if (x != NULL && x->response_started) {
        log_request(c, status, 0, detail);
        return; /* too late for an answer: closing says it */
    }
    json_t *o = json_pack("{s:s, s:s}", "error", code, "detail", detail);
    char *body = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    const char *b = body != NULL ? body : "{}";
    pqm__buf_addf(&c->to_client,
                  "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                  "Connection: close\r\n\r\n",
                  status, status_text(status), strlen(b) + 1);
    pqm__buf_add(&c->to_client, b, strlen(b));
    pqm__buf_add(&c->to_client, "\n", 1);
    free(body);
    if (x != NULL)
        log_request(c, status, 0, detail);
}

/* --- the exchange -------------------------------------------------------------------- */

/* Authorization, once the request's method and path are known and before anything of it
 * goes to the upstream; with the policy in force when the request arrives. */
static int authorize_with(struct pqm_relay *r, struct conn *c, const struct pqm_policy *pol)
{
    char method[16], target[1024];
    pqm__relay_target(r, method, sizeof(method), target, sizeof(target));
    if (r->url_len >= sizeof(target))
        return pqm__relay_fail(r, 414, "request target too long");
    target[strcspn(target, "?#")] = '\0';
    if (pol->uses_path && !pqm__path_is_normal(target, strlen(target)))
        return pqm__relay_fail(r, 400, "the request path is not in normal form (dot segments, "
                                       "empty segments or encoded '.', '/', '\\')");
    struct pqm_policy_subject s = {
        .spiffe = c->id->spiffe, .cn = c->id->cn, .o = c->id->org, .dns = c->id->dns,
        .method = method, .path = target,
    };
    char why[512];
    if (pqm__policy_check(pol, &s, why, sizeof(why)) == 1)
        return 0;
    return pqm__relay_fail(r, 403, why);
}

static int authorize(struct pqm_relay *r, struct conn *c)
{
    if (atomic_load_explicit(&c->w->gw->policy, memory_order_acquire) == NULL)
        return 0; /* no rules: no lock */
    struct gw_policy *pol = pqm__gw_policy_take(c->w->gw);
    if (pol == NULL)
        return 0;
    int rc = authorize_with(r, c, &pol->rules);
    pqm__gw_policy_release(pol);
    return rc;
}

static int add_identity(struct pqm_relay *r, struct pqm_buf *out, void *arg)
{
    struct conn *c = arg;
    const struct identity *p = c->id;
    if (authorize(r, c) != 0)
        return -1;
    int rc = pqm__buf_addf(out, "X-Client-Cert-Subject: %s\r\n", p->subject);
    rc |= pqm__buf_addf(out, "X-Client-Cert-Issuer: %s\r\n", p->issuer);
    rc |= pqm__buf_addf(out, "X-Client-Cert-Serial: %s\r\n", p->serial);
    rc |= pqm__buf_addf(out, "X-Client-Cert-Fingerprint: %s\r\n", p->fingerprint);
    rc |= pqm__buf_addf(out, "X-Client-Cert-Verify: SUCCESS\r\n");
    if (p->spiffe[0] != '\0')
        rc |= pqm__buf_addf(out, "X-Client-Cert-Spiffe-Id: %s\r\n", p->spiffe);
    rc |= pqm__buf_addf(out, "X-Forwarded-For: %s\r\nX-Forwarded-Proto: https\r\n", c->client);
    if (c->client_cert != NULL) {
        rc |= pqm__buf_add(out, "Client-Cert: ", 13);
        rc |= pqm__buf_add(out, c->client_cert, strlen(c->client_cert));
        rc |= pqm__buf_add(out, "\r\n", 2);
    }
    if (rc != 0)
        return pqm__relay_fail(r, 500, "identity headers do not fit");
    return 0;
}

/* Exchanges are reused: a worker keeps a few that ended, with their parsers' head
 * storage, so that a keep-alive request allocates nothing. */
static struct exchange *exchange_new(struct conn *c)
{
    struct worker *w = c->w;
    struct exchange *x = w->spare;
    if (x != NULL) {
        w->spare = x->next_spare;
        w->nspare--;
        struct pqm_relay req = x->req, resp = x->resp;
        struct pqm_buf to_up = x->to_up, up_in = x->up_in;
        memset(x, 0, sizeof(*x));
        x->req.head = req.head;
        x->req.head_cap = req.head_cap;
        x->resp.head = resp.head;
        x->resp.head_cap = resp.head_cap;
        x->to_up = to_up;
        x->up_in = up_in;
    } else {
        x = calloc(1, sizeof(*x));
        if (x == NULL)
            return NULL;
        pqm__buf_init(&x->to_up, PQM_OUT_MAX);
        pqm__buf_init(&x->up_in, PQM_IN_MAX);
    }
    pqm__relay_init(&x->req, PQM_RELAY_REQUEST, &x->to_up, add_identity, c);
    x->req.head_max = (size_t)c->w->gw->cfg.max_header_size;
    pqm__relay_init(&x->resp, PQM_RELAY_RESPONSE, &c->to_client, NULL, NULL);
    x->t_start = pqm__mono_seconds();
    return x;
}

static void exchange_destroy(struct exchange *x)
{
    pqm__relay_free(&x->req);
    pqm__relay_free(&x->resp);
    pqm__buf_free(&x->to_up);
    pqm__buf_free(&x->up_in);
    free(x);
}

static void exchange_free(struct conn *c)
{
    struct exchange *x = c->x;
    if (x == NULL)
        return;
    c->x = NULL;
    if (x->up != NULL)
        up_free(x->up);
    struct worker *w = c->w;
    if (w->nspare >= PQM_SPARE_EXCHANGES) {
        exchange_destroy(x);
        return;
    }
    /* Kept small: a large upload or download leaves no large buffer behind. */
    x->to_up.off = x->to_up.len = 0;
    x->up_in.off = x->up_in.len = 0;
    if (x->to_up.cap > PQM_SPARE_BUF_MAX)
        pqm__buf_free(&x->to_up);
    if (x->up_in.cap > PQM_SPARE_BUF_MAX)
        pqm__buf_free(&x->up_in);
    x->next_spare = w->spare;
    w->spare = x;
    w->nspare++;
}

/* The response ended: log it, give the upstream connection back, and go on with the
 * next pipelined request, or wait for one. */
static void exchange_done(struct conn *c)
{
    struct exchange *x = c->x;
    log_request(c, x->resp.status, x->resp.body_bytes, NULL);
    c->requests++;
    if (!x->req.keep_alive || c->w->draining)
        c->close_after = 1;
    if (x->up != NULL) {
        if (x->resp.keep_alive && !x->up_eof && x->to_up.len == 0 &&
            x->req.state == PQM_RELAY_DONE)
            pool_put(c->w, x->up);
        else
            up_free(x->up);
        x->up = NULL;
    }
    if (x->req.state != PQM_RELAY_DONE) {
        /* The upstream answered before the request body ended: the rest cannot be
         * told apart from a next request any more. */
        c->close_after = 1;
    }
    exchange_free(c);
}

static int start_upstream(struct conn *c)
{
    struct exchange *x = c->x;
    x->up = up_get(c);
    if (x->up == NULL) {
        answer_error(c, 502, "bad_gateway", "cannot connect to the upstream");
        return -1;
    }
    x->t_up_start = pqm__mono_seconds();
    return 0;
}

/* Parses what the client sent, as far as the upstream buffer allows. */
static void feed_request(struct conn *c)
{
    while (c->in.len > 0 && !c->close_after) {
        if (c->x == NULL && (c->x = exchange_new(c)) == NULL) {
            c->close_after = 1;
            return;
        }
        struct exchange *x = c->x;
        if (x->req.state == PQM_RELAY_DONE || x->req.state == PQM_RELAY_ERROR)
            return;
        if (pqm__buf_room(&x->to_up) < PQM_HTTP_OUT_RESERVE + PQM_READ_CHUNK)
            return;
        size_t n = c->in.len < PQM_READ_CHUNK ? c->in.len : PQM_READ_CHUNK;
        int had_head = x->req.state == PQM_RELAY_BODY;
        size_t used = pqm__relay_feed(&x->req, pqm__buf_head(&c->in), n);
        pqm__buf_consume(&c->in, used);
        c->moved += used;
        if (x->req.state == PQM_RELAY_ERROR) {
            if (x->up != NULL) { /* part of it may have gone: the upstream connection goes */
                up_free(x->up);
                x->up = NULL;
            }
            answer_error(c, x->req.error_status,
                         x->req.error_status == 403 ? "forbidden" : "bad_request",
                         x->req.error_reason);
            return;
        }
        if (!had_head && (x->req.state == PQM_RELAY_BODY || x->req.state == PQM_RELAY_DONE) &&
            x->up == NULL && start_upstream(c) != 0)
            return;
        if (used == 0)
            return;
    }
}

/* Parses what the upstream sent, as far as the client buffer allows. */
static void feed_response(struct conn *c)
{
    struct exchange *x = c->x;
    while (x != NULL && x->up_in.len > 0) {
        if (pqm__buf_room(&c->to_client) < PQM_HTTP_OUT_RESERVE + PQM_READ_CHUNK)
            return;
        size_t n = x->up_in.len < PQM_READ_CHUNK ? x->up_in.len : PQM_READ_CHUNK;
        x->resp.close_after = !x->req.keep_alive || c->w->draining;
        x->resp.expect_head = x->req.method == HTTP_HEAD;
        size_t before = c->to_client.len;
        size_t used = pqm__relay_feed(&x->resp, pqm__buf_head(&x->up_in), n);
        pqm__buf_consume(&x->up_in, used);
        c->moved += used;
        if (c->to_client.len > before)
            x->response_started = 1;
        if (x->resp.state == PQM_RELAY_ERROR) {
            answer_error(c, 502, "bad_gateway", x->resp.error_reason);
            return;
        }
        if (x->resp.state == PQM_RELAY_DONE) {
            exchange_done(c);
            return;
        }
        if (used == 0)
            return;
    }
}

/* --- socket I/O -------------------------------------------------------------------- */

static int flush_upstream(struct conn *c)
{
    struct exchange *x = c->x;
    if (x == NULL || x->up == NULL || x->up->connecting)
        return 0;
    while (x->to_up.len > 0) {
        ssize_t n = send(x->up->fd, pqm__buf_head(&x->to_up), x->to_up.len, MSG_NOSIGNAL);
        if (n > 0) {
            pqm__buf_consume(&x->to_up, (size_t)n);
            c->moved += (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n < 0 && errno == EINTR)
            continue;
        return -1;
    }
    return 0;
}

static int read_upstream(struct conn *c)
{
    struct exchange *x = c->x;
    if (x == NULL || x->up == NULL || x->up->connecting || x->up_eof || !x->up->readable)
        return 0;
    while (pqm__buf_room(&x->up_in) > 0) {
        unsigned char *dst = pqm__buf_reserve(&x->up_in, PQM_READ_CHUNK < pqm__buf_room(&x->up_in)
                                                             ? PQM_READ_CHUNK
                                                             : pqm__buf_room(&x->up_in));
        if (dst == NULL)
            return 0;
        size_t want = x->up_in.cap - x->up_in.off - x->up_in.len;
        ssize_t n = recv(x->up->fd, dst, want, 0);
        if (n > 0) {
            if (x->t_up_first == 0)
                x->t_up_first = pqm__mono_seconds();
            pqm__buf_commit(&x->up_in, (size_t)n);
            c->moved += (size_t)n;
            if ((size_t)n < want) {
                x->up->readable = 0; /* drained: readiness says when more comes */
                return 0;
            }
            continue;
        }
        if (n == 0) {
            x->up_eof = 1;
            return 0;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            x->up->readable = 0;
            return 0;
        }
        if (errno == EINTR)
            continue;
        return -1;
    }
    return 0;
}

static void upstream_failed(struct conn *c, const char *why)
{
    struct exchange *x = c->x;
    if (x->up != NULL) {
        up_free(x->up);
        x->up = NULL;
    }
    answer_error(c, 502, "bad_gateway", why);
}

static void finish_connect(struct conn *c)
{
    struct upconn *u = c->x->up;
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(u->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    if (err == EINPROGRESS || err == EALREADY)
        return;
    if (err != 0) {
        char why[160];
        snprintf(why, sizeof(why), "cannot connect to the upstream: %s", strerror(err));
        upstream_failed(c, why);
        return;
    }
    u->connecting = 0;
}

static void up_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    struct conn *c = io->data;
    if (c->x != NULL && c->x->up != NULL) {
        if (c->x->up->connecting)
            finish_connect(c);
        if (c->x != NULL && c->x->up != NULL && (revents & EV_READ))
            c->x->up->readable = 1;
    }
    enqueue(c);
}

/* Moves the upstream side; 0 when the connection may go on. */
static void move_upstream(struct conn *c)
{
    struct exchange *x = c->x;
    if (x == NULL || x->up == NULL)
        return;
    if (x->up->connecting)
        return;
    if (flush_upstream(c) != 0 || read_upstream(c) != 0) {
        if (x->response_started)
            answer_error(c, 502, "bad_gateway", "the upstream connection failed");
        else
            upstream_failed(c, "the upstream connection failed");
        return;
    }
    feed_response(c);
    x = c->x;
    if (x != NULL && x->up_eof && x->up_in.len == 0 && x->resp.state != PQM_RELAY_DONE) {
        if (pqm__relay_eof(&x->resp) == 0 && x->resp.state == PQM_RELAY_DONE)
            exchange_done(c);
        else
            answer_error(c, 502, "bad_gateway",
                         x->response_started ? "the upstream closed in the middle of a response"
                                             : "the upstream closed without answering");
    }
}

/* Bytes for the client not yet sent: plaintext, or records sealed but not yet taken by
 * the socket. */
static int client_out_pending(const struct conn *c)
{
    return c->to_client.len > 0 || pqm__tls_stream_has_output(&c->st);
}

static int flush_client(struct conn *c)
{
    while (client_out_pending(c)) {
        size_t taken = 0;
        enum pqm_tls_status r = pqm__tls_stream_write(&c->st, pqm__buf_head(&c->to_client),
                                                      c->to_client.len, &taken);
        pqm__buf_consume(&c->to_client, taken);
        c->moved += taken;
        if (r == PQM_TLS_WANT_WRITE) {
            c->ssl_wants_write = 1;
            return 0;
        }
        if (r != PQM_TLS_OK)
            return -1;
    }
    return 0;
}

static int read_client(struct conn *c)
{
    /* Only when the socket said so, or records already received wait: no read that can
     * only say EAGAIN. */
    if (!c->readable && !pqm__tls_stream_has_input(&c->st))
        return 0;
    while (!c->client_eof && pqm__buf_room(&c->in) >= PQM_READ_CHUNK) {
        unsigned char *dst = pqm__buf_reserve(&c->in, PQM_READ_CHUNK);
        if (dst == NULL)
            return 0;
        size_t got = 0;
        enum pqm_tls_status r =
            pqm__tls_stream_read(&c->st, dst, PQM_READ_CHUNK, &got, &c->readable);
        pqm__buf_commit(&c->in, got);
        c->moved += got;
        if (r == PQM_TLS_OK)
            continue;
        if (r == PQM_TLS_WANT_READ)
            return 0;
        if (r == PQM_TLS_EOF) {
            c->client_eof = 1;
            return 0;
        }
        return -1;
    }
    return 0;
}

/* --- the pump ------------------------------------------------------------------------ */

/* Between requests a connection holds no buffer memory: its blocks go back to the
 * worker's thread (util/buf.h) for the next connection that has something to move. */
static void release_idle_buffers(struct conn *c)
{
    if (c->x != NULL || c->in.len != 0 || client_out_pending(c) ||
        pqm__tls_stream_has_input(&c->st))
        return;
    pqm__buf_release(&c->in);
    pqm__buf_release(&c->to_client);
    pqm__tls_stream_release(&c->st);
}

static void arm(struct conn *c)
{
    struct worker *w = c->w;

    const struct pqm_gateway_config *cfg = &w->gw->cfg;
    int ev = 0;
    if (c->phase == P_HANDSHAKE) {
        ev = c->ssl_wants_write ? EV_WRITE : EV_READ;
    } else if (c->phase == P_OCSP) {
        ev = 0; /* nothing is read before the verdict */
    } else {
        if (!c->client_eof && !c->close_after && pqm__buf_room(&c->in) >= PQM_READ_CHUNK)
            ev |= EV_READ;
        if (client_out_pending(c) || c->ssl_wants_write)
            ev |= EV_WRITE;
    }
    if (ev == 0 && c->phase == P_OCSP) {
        ev_io_stop(w->loop, &c->io);
    } else if (ev == 0) {
        ev = EV_READ; /* always notice a reset */
    }
    if (ev != 0 && (c->io.events != ev || !ev_is_active(&c->io))) {
        ev_io_stop(w->loop, &c->io);
        ev_io_set(&c->io, c->fd, ev);
        ev_io_start(w->loop, &c->io);
    }
    struct exchange *x = c->x;
    if (x != NULL && x->up != NULL) {
        int uev = 0;
        if (x->up->connecting || x->to_up.len > 0)
            uev |= EV_WRITE;
        if (!x->up->connecting && !x->up_eof && pqm__buf_room(&x->up_in) > 0)
            uev |= EV_READ;
        if (uev == 0)
            uev = EV_READ;
        x->up->io.data = c;
        if (!ev_is_active(&x->up->io) || x->up->io.events != uev) {
            ev_io_stop(w->loop, &x->up->io);
            ev_io_set(&x->up->io, x->up->fd, uev);
            ev_io_start(w->loop, &x->up->io);
        }
    }
    /* One timer, for what the connection waits for now. */
    double t;
    if (c->phase == P_HANDSHAKE)
        t = cfg->handshake_timeout;
    else if (c->phase == P_OCSP)
        t = cfg->ocsp_timeout + 1; /* the query's own timeout answers first */
    else if (x == NULL)
        t = c->requests == 0 ? cfg->header_timeout : cfg->idle_timeout;
    else if (x->up == NULL || x->req.state == PQM_RELAY_HEAD || x->req.state == PQM_RELAY_IDLE)
        t = cfg->header_timeout;
    else if (x->up->connecting)
        t = cfg->upstream_connect_timeout;
    else
        t = cfg->upstream_timeout;
    if (c->close_after)
        t = cfg->handshake_timeout; /* a last answer gets a short while to leave */
    ev_timer_stop(w->loop, &c->timer);
    ev_timer_set(&c->timer, t, 0);
    ev_timer_start(w->loop, &c->timer);
}

static size_t dns_len(const char *dns)
{
    size_t n = 0;
    while (dns[n] != '\0')
        n += strlen(dns + n) + 1;
    return n + 1;
}

static struct identity *identity_of(const struct pqm_tls_peer *p)
{
    const char *const src[] = {p->subject, p->issuer, p->serial, p->fingerprint, p->spiffe,
                               p->cn,      p->org,    p->group,  p->sigalg,      p->version};
    size_t total = dns_len(p->dns);
    for (size_t i = 0; i < sizeof(src) / sizeof(src[0]); i++)
        total += strlen(src[i]) + 1;
    struct identity *id = malloc(sizeof(*id) + total);
    if (id == NULL)
        return NULL;
    const char **dst[] = {&id->subject, &id->issuer, &id->serial, &id->fingerprint, &id->spiffe,
                          &id->cn,      &id->org,    &id->group,  &id->sigalg,      &id->version};
    char *w = id->data;
    for (size_t i = 0; i < sizeof(src) / sizeof(src[0]); i++) {
        size_t n = strlen(src[i]) + 1;
        memcpy(w, src[i], n);
        *dst[i] = w;
        w += n;
    }
    memcpy(w, p->dns, dns_len(p->dns));
    id->dns = w;
    id->not_after = p->not_after;
    pqm__format_time(p->not_after, id->not_after_text, sizeof(id->not_after_text));
    id->resumed = p->resumed;
    return id;
}

/* RFC 9440 2.1: the DER certificate as a Structured Field Byte Sequence. */
static char *client_cert_value(X509 *leaf)
{
    unsigned char *der = NULL;
    int len = leaf != NULL ? i2d_X509(leaf, &der) : -1;
    if (len <= 0)
        return NULL;
    size_t cap = 4 * (((size_t)len + 2) / 3) + 3;
    char *out = malloc(cap);
    if (out != NULL) {
        out[0] = ':';
        int n = EVP_EncodeBlock((unsigned char *)out + 1, der, len);
        out[1 + n] = ':';
        out[2 + n] = '\0';
    }
    OPENSSL_free(der);
    return out;
}

/* The issuer of the client's certificate: from the verified chain, or (a resumed
 * session has none) from the configured client CAs. */
static X509 *client_issuer(struct conn *c, X509 *leaf)
{
    STACK_OF(X509) *chain = SSL_get0_verified_chain(c->ssl);
    if (chain != NULL && sk_X509_num(chain) > 1)
        return sk_X509_value(chain, 1);
    return pqm__tls_server_client_issuer(c->tls, leaf);
}

/* The client's certificate by OCSP (client_ocsp): 0 go on, 1 wait, -1 refused (logged). */
static int ocsp_gate(struct conn *c)
{
    struct pqm_gw_ocsp *o = c->w->gw->ocsp;
    X509 *leaf = SSL_get0_peer_certificate(c->ssl);
    if (o == NULL || leaf == NULL)
        return 0;
    const char *code = NULL;
    switch (pqm__gw_ocsp_client(o, leaf, client_issuer(c, leaf), c->hs->reason,
                                sizeof(c->hs->reason), &code)) {
    case PQM_GW_OCSP_PASS:
        return 0;
    case PQM_GW_OCSP_WAIT:
        return 1;
    default: {
        char why[sizeof(c->hs->reason)];
        snprintf(why, sizeof(why), "%s", c->hs->reason);
        snprintf(c->hs->reason, sizeof(c->hs->reason), "%.200s: %s", c->hs->subject, why);
        c->hs->reason_code = code;
        log_handshake_refused(c);
        return -1;
    }
    }
}

/* The handshake is complete and the client's certificate passed every check. */
static void admitted(struct conn *c)
{
    c->phase = P_ACTIVE;
    c->id = identity_of(c->hs);
    if (c->id == NULL) {
        conn_close(c);
        return;
    }
    SSL_set_app_data(c->ssl, NULL); /* nothing of the handshake is written any more */
    free(c->hs);
    c->hs = NULL;
    pqm__metrics_handshake(&c->w->metrics, NULL, c->id->group, c->id->resumed,
                           c->id->not_after);
    check_expiry(c);
    if (c->w->gw->cfg.client_cert_header)
        c->client_cert = client_cert_value(SSL_get0_peer_certificate(c->ssl));
    /* From here on the records are the stream's, and OpenSSL's state for the session
     * (the parsed client chain, the key shares) goes: tls/record.h. */
    if (pqm__tls_stream_take(&c->st, c->ssl) != 0) {
        pqm__gw_say("error", "%.200s: %s", c->id->subject, c->st.error);
        conn_close(c);
        return;
    }
    SSL_free(c->ssl);
    c->ssl = NULL;
    pump(c);
}

/* After the handshake: admitted, refused, or waiting for an OCSP answer. */
static void judge_client(struct conn *c)
{
    int g = ocsp_gate(c);
    if (g < 0) {
        conn_close(c);
    } else if (g == 0) {
        admitted(c);
    } else if (c->phase != P_OCSP) {
        /* The wait's deadline is set once: another certificate's answer, which wakes
         * every waiting connection to look again, does not move it. */
        c->phase = P_OCSP;
        arm(c);
    }
}

static void handshake(struct conn *c)
{
    c->ssl_wants_write = 0;
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        c->phase = P_ACTIVE;
        if (pqm__tls_peer_read(c->tls, c->ssl, c->hs) != 0) {
            log_handshake_refused(c);
            conn_close(c);
            return;
        }
        judge_client(c);
        return;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        c->ssl_wants_write = e == SSL_ERROR_WANT_WRITE;
        arm(c);
        return;
    }
    pqm__tls_peer_failed(c->ssl, c->hs, ERR_peek_error());
    ERR_clear_error();
    log_handshake_refused(c);
    conn_close(c);
}

void pqm__gw_worker_ocsp_wake(struct worker *w)
{
    struct conn *c = w->conns;
    while (c != NULL) {
        struct conn *next = c->next; /* judge_client may close C */
        if (c->phase == P_OCSP)
            judge_client(c);
        c = next;
    }
}

static void pump(struct conn *c)
{
    if (c->phase == P_HANDSHAKE) {
        handshake(c);
        return;
    }
    if (c->phase == P_OCSP)
        return; /* judge_client goes on when the answer comes */
    int round;
    for (round = 0; round < PQM_PUMP_ROUNDS; round++) {
        size_t before = c->in.len + c->to_client.len +
                        (c->x != NULL ? c->x->to_up.len + c->x->up_in.len : 0);
        uint64_t moved = c->moved;
        int had_x = c->x != NULL;
        c->ssl_wants_write = 0;
        if (flush_client(c) != 0 || read_client(c) != 0) {
            conn_close(c);
            return;
        }
        feed_request(c);
        move_upstream(c);
        if (flush_client(c) != 0) {
            conn_close(c);
            return;
        }
        size_t after = c->in.len + c->to_client.len +
                       (c->x != NULL ? c->x->to_up.len + c->x->up_in.len : 0);
        /* Lengths alone can hide progress: a chunk read on one side and one written on
         * the other leave the sum as it was. */
        if (after == before && moved == c->moved && had_x == (c->x != NULL))
            break;
    }
    if (c->close_after && !client_out_pending(c)) {
        conn_close(c);
        return;
    }
    if (c->client_eof && c->x == NULL && c->in.len == 0) {
        if (!client_out_pending(c)) {
            conn_close(c);
            return;
        }
        c->close_after = 1; /* what is left for the client goes first */
    }
    if (c->client_eof && c->x != NULL && c->x->req.state != PQM_RELAY_DONE &&
        c->x->req.state != PQM_RELAY_ERROR) {
        conn_close(c); /* the client left in the middle of a request */
        return;
    }
    release_idle_buffers(c);
    arm(c);
    /* Still moving after its share of rounds: bytes may wait in a buffer (or in TLS)
     * that no socket will report again, so it goes on after the next poll. */
    if (round == PQM_PUMP_ROUNDS)
        defer(c);
}

/* libev invokes the watchers made ready by one poll in the reverse of the kernel's
 * order, so the connection ready first would be served last: under load that is the
 * latency tail. Callbacks only queue the connection; the run stack, popped before the
 * next poll, serves them in the kernel's order. */
/* Puts C on LIST, the worker's run stack or its later list: C is on one at most. */
static void push(struct conn *c, struct conn **list)
{
    if (c->queued)
        return;
    c->queued = 1;
    c->run_next = *list;
    *list = c;
}

static void enqueue(struct conn *c)
{
    push(c, &c->w->run);
}

/* Serves C again after the next poll, which does not wait while any connection is
 * deferred (the worker's idle watcher is active). */
static void defer(struct conn *c)
{
    push(c, &c->w->later);
    ev_idle_start(c->w->loop, &c->w->later_w);
}

void pqm__gw_worker_run(struct worker *w)
{
    while (w->later != NULL) { /* deferred by the last run: served first, in their order */
        struct conn *c = w->later;
        w->later = c->run_next;
        c->run_next = w->run;
        w->run = c;
    }
    ev_idle_stop(w->loop, &w->later_w);
    while (w->run != NULL) {
        struct conn *c = w->run;
        w->run = c->run_next;
        c->queued = 0;
        pump(c);
    }
}

static void unqueue(struct conn *c)
{
    if (!c->queued)
        return;
    struct conn **lists[] = {&c->w->run, &c->w->later};
    for (size_t i = 0; i < 2; i++)
        for (struct conn **p = lists[i]; *p != NULL; p = &(*p)->run_next)
            if (*p == c) {
                *p = c->run_next;
                c->queued = 0;
                return;
            }
    c->queued = 0;
}

static void io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    struct conn *c = io->data;
    if (revents & EV_READ)
        c->readable = 1;
    if (c->phase == P_HANDSHAKE)
        pump(c); /* handshakes are not latency-bound: no need to wait */
    else
        enqueue(c);
}

static void timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    struct conn *c = t->data;
    if (c->phase == P_HANDSHAKE) {
        snprintf(c->hs->reason, sizeof(c->hs->reason), "no TLS handshake within %g s",
                 c->w->gw->cfg.handshake_timeout);
        c->hs->reason_code = "timeout";
        log_handshake_refused(c);
        conn_close(c);
        return;
    }
    if (c->phase == P_OCSP && strcmp(c->w->gw->cfg.client_ocsp, "hard") != 0) {
        /* soft: no answer in time lets the client through, and the operator is told */
        pqm__gw_say("warning", "%.200s admitted without an OCSP answer within %g s "
                               "(client_ocsp: soft)",
                    c->hs->subject, c->w->gw->cfg.ocsp_timeout + 1);
        admitted(c);
        return;
    }
    if (c->phase == P_OCSP) {
        snprintf(c->hs->reason, sizeof(c->hs->reason),
                 "no OCSP answer for the client certificate within %g s (client_ocsp: hard)",
                 c->w->gw->cfg.ocsp_timeout + 1);
        c->hs->reason_code = "ocsp_unavailable";
        log_handshake_refused(c);
        conn_close(c);
        return;
    }
    struct exchange *x = c->x;
    if (x != NULL && x->up != NULL && x->req.state != PQM_RELAY_HEAD &&
        x->req.state != PQM_RELAY_IDLE && !c->close_after) {
        int connecting = x->up->connecting;
        up_free(x->up);
        x->up = NULL;
        if (connecting)
            answer_error(c, 502, "bad_gateway", "the upstream did not accept the connection in time");
        else
            answer_error(c, 504, "gateway_timeout", "the upstream did not answer in time");
        pump(c);
        return;
    }
    conn_close(c); /* idle, slow head, or a last answer that does not leave */
}

static void conn_close(struct conn *c)
{
    struct worker *w = c->w;
    unqueue(c);
    ev_io_stop(w->loop, &c->io);
    ev_timer_stop(w->loop, &c->timer);
    exchange_free(c);
    if (c->ssl != NULL) {
        if (c->phase == P_ACTIVE)
            SSL_shutdown(c->ssl); /* refused after the handshake (not PQ, OCSP) */
        SSL_free(c->ssl);
        /* A refused shutdown (a ticket still being sent) leaves an error in the thread's
         * queue, which would make the next connection's SSL_get_error say SSL_ERROR_SSL. */
        ERR_clear_error();
    } else {
        pqm__tls_stream_close(&c->st);
    }
    pqm__tls_stream_free(&c->st);
    close(c->fd);
    pqm__buf_release(&c->in);
    pqm__buf_release(&c->to_client);
    free(c->client_cert);
    free(c->hs);
    free(c->id);
    pqm__tls_server_free(c->tls);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    w->nconns--;
    atomic_fetch_sub_explicit(&w->metrics.connections, 1, memory_order_relaxed);
    free(c);
    if (w->draining && w->nconns == 0)
        ev_break(w->loop, EVBREAK_ALL);
}

static void peer_text(const struct sockaddr_storage *ss, char *out, size_t len)
{
    char host[INET6_ADDRSTRLEN] = "?";
    if (ss->ss_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, host, sizeof(host));
    else if (ss->ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, host, sizeof(host));
    snprintf(out, len, "%s", host);
}

static void conn_start(struct worker *w, int fd, const struct sockaddr_storage *ss)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        close(fd);
        return;
    }
    c->w = w;
    c->fd = fd;
    peer_text(ss, c->client, sizeof(c->client));
    pqm__buf_init(&c->in, PQM_IN_MAX);
    pqm__buf_init(&c->to_client, PQM_OUT_MAX);
    c->tls = pqm__gw_tls_take(w->gw);
    c->hs = calloc(1, sizeof(*c->hs));
    pqm__tls_stream_init(&c->st, fd);
    c->ssl = c->hs != NULL ? pqm__tls_server_ssl(c->tls, &c->st, c->hs) : NULL;
    if (c->ssl == NULL) {
        pqm__tls_stream_free(&c->st);
        free(c->hs);
        pqm__tls_server_free(c->tls);
        close(fd);
        free(c);
        return;
    }
    c->next = w->conns;
    if (w->conns != NULL)
        w->conns->prev = c;
    w->conns = c;
    w->nconns++;
    atomic_fetch_add_explicit(&w->metrics.connections, 1, memory_order_relaxed);
    ev_io_init(&c->io, io_cb, fd, EV_READ);
    c->io.data = c;
    ev_init(&c->timer, timer_cb);
    c->timer.data = c;
    pump(c);
}

void pqm__gw_accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    (void)revents;
    struct worker *w = io->data;
    for (int i = 0; i < 64 && w->nconns < w->gw->cfg.max_connections; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int fd = accept4(w->lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN, or a transient error: the next readiness retries */
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        conn_start(w, fd, &ss);
    }
}

void pqm__gw_worker_drain(struct worker *w)
{
    w->draining = 1;
    struct conn *c = w->conns;
    while (c != NULL) {
        struct conn *next = c->next;
        if (c->x == NULL && !client_out_pending(c))
            conn_close(c); /* idle keep-alive, or not yet a request */
        else
            c->close_after = c->close_after || c->x == NULL;
        c = next;
    }
}

void pqm__gw_worker_close_all(struct worker *w)
{
    w->draining = 0; /* no ev_break from conn_close: the loop has already stopped */
    while (w->conns != NULL)
        conn_close(w->conns);
    while (w->idle != NULL) {
        struct upconn *u = w->idle;
        w->idle = u->next;
        up_free(u);
    }
    pqm__gw_worker_flush_log(w);
    pqm__buf_free(&w->logbuf);
    pqm__buf_free(&w->logout);
    pqm__buf_spare_drain(); /* the blocks this worker's thread kept */
    while (w->spare != NULL) {
        struct exchange *x = w->spare;
        w->spare = x->next_spare;
        exchange_destroy(x);
    }
    w->nspare = 0;
}
