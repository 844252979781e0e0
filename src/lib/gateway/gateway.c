/* The gateway: workers (one event loop and one listening socket each, sharing the port
 * with SO_REUSEPORT), signals, reload and the access log. */
#define _GNU_SOURCE
#include "gateway/gateway.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "gateway/policy.h"
#include "util/fsutil.h"
#include "util/net.h"
#include "util/timeutil.h"
#include "util/sdnotify.h"

#define PQM_PASSPHRASE_MAX 4096
#define PQM_TRIM_INTERVAL 0.25 /* how often the main thread looks at the heap */
#define PQM_TRIM_QUIET 0.5     /* seconds without a new handshake before a trim */

void pqm__gw_say(const char *level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "pqmtls gateway: %s: %s\n", level, msg);
}

void pqm__gw_log_raw(struct pqm_gateway *gw, const char *data, size_t len)
{
    if (gw->access_log_fd < 0)
        return;
    pthread_mutex_lock(&gw->log_mu);
    for (size_t off = 0; off < len;) {
        ssize_t n = write(gw->access_log_fd, data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    pthread_mutex_unlock(&gw->log_mu);
}

void pqm__gw_log_bytes(struct pqm_gateway *gw, const char *line, size_t len)
{
    if (gw->access_log_fd < 0)
        return;
    char stackbuf[4096];
    char *b = len + 1 <= sizeof(stackbuf) ? stackbuf : malloc(len + 1);
    if (b == NULL)
        return;
    memcpy(b, line, len);
    b[len] = '\n';
    /* One write per line (O_APPEND for files); the lock keeps lines whole on a pipe too. */
    pqm__gw_log_raw(gw, b, len + 1);
    if (b != stackbuf)
        free(b);
}

void pqm__gw_log_line(struct pqm_gateway *gw, const char *json)
{
    pqm__gw_log_bytes(gw, json, strlen(json));
}

int pqm__gw_expiry_should_warn(struct pqm_gateway *gw, const char *fingerprint, int64_t now)
{
    uint64_t id = 0; /* the first 64 bits of the fingerprint identify the certificate */
    for (int i = 0; i < 16 && fingerprint[i] != '\0'; i++) {
        char ch = fingerprint[i];
        id = id << 4 | (uint64_t)(ch <= '9' ? ch - '0' : (ch | 0x20) - 'a' + 10);
    }
    size_t slot = (size_t)(id % PQM_GW_EXPIRY_NOTES);
    int warn = 0;
    pthread_mutex_lock(&gw->expiry_mu);
    struct expiry_note *n = &gw->expiry_notes[slot];
    if (n->id != id || now - n->when >= 3600) {
        n->id = id;
        n->when = now;
        warn = 1;
    }
    pthread_mutex_unlock(&gw->expiry_mu);
    return warn;
}

struct pqm_tls_server *pqm__gw_tls_take(struct pqm_gateway *gw)
{
    pthread_mutex_lock(&gw->tls_mu);
    struct pqm_tls_server *s = pqm__tls_server_ref(atomic_load(&gw->tls));
    pthread_mutex_unlock(&gw->tls_mu);
    return s;
}

/* The key passphrase from FILE's first line, else $PQMTLS_KEY_PASSPHRASE, else none. */
static int read_key_pass(const char *file, struct pqm_secret *out, struct pqm_err *e)
{
    pqm__secret_clear(out);
    if (file[0] == '\0') {
        const char *env = getenv("PQMTLS_KEY_PASSPHRASE");
        if (env != NULL && env[0] != '\0')
            return pqm__secret_set(out, env, strlen(env), e);
        return 0;
    }
    unsigned char *data = NULL;
    size_t len = 0;
    if (pqm__read_file(file, PQM_PASSPHRASE_MAX, &data, &len, e) != 0)
        return pqm__err_copy(e, "key_passphrase_file", pqm__err_str(e));
    size_t n = 0;
    while (n < len && data[n] != '\n' && data[n] != '\r')
        n++;
    int rc = n == 0 ? pqm__err_set(e, "key_passphrase_file %s: the first line is empty", file)
                    : pqm__secret_set(out, (const char *)data, n, e);
    OPENSSL_cleanse(data, len);
    free(data);
    return rc;
}

static int staple(void *arg, X509 *leaf, unsigned char **der, long *len)
{
    struct pqm_gateway *gw = arg;
    return pqm__gw_ocsp_staple_copy(gw->ocsp, leaf, der, len);
}

/* Wakes the workers' connections that wait for an OCSP answer (an OCSP thread). */
static void ocsp_wake(void *arg)
{
    struct pqm_gateway *gw = arg;
    for (int i = 0; i < gw->nworkers; i++)
        if (atomic_load(&gw->workers[i].ocsp_ready))
            ev_async_send(gw->workers[i].loop, &gw->workers[i].ocsp_w);
}

static enum pqm_gw_ocsp_mode client_mode(const char *v)
{
    return strcmp(v, "hard") == 0 ? PQM_GW_OCSP_HARD
           : strcmp(v, "soft") == 0 ? PQM_GW_OCSP_SOFT
                                    : PQM_GW_OCSP_OFF;
}

static int start_ocsp(struct pqm_gateway *gw, struct pqm_err *e)
{
    const struct pqm_gateway_config *c = &gw->cfg;
    struct pqm_gw_ocsp_opts o = {
        .client_mode = client_mode(c->client_ocsp),
        .staple_mode = strcmp(c->ocsp_stapling, "on") == 0    ? PQM_GW_STAPLE_ON
                       : strcmp(c->ocsp_stapling, "off") == 0 ? PQM_GW_STAPLE_OFF
                                                              : PQM_GW_STAPLE_AUTO,
        .responder = c->ocsp_responder,
        /* whole seconds for OSSL_HTTP_transfer, rounded up: 1.5 s is not cut to 1 */
        .timeout = (int)c->ocsp_timeout + (c->ocsp_timeout > (int)c->ocsp_timeout),
        .cache_seconds = c->ocsp_cache_seconds,
        .wake = ocsp_wake,
        .wake_arg = gw,
    };
    if (o.client_mode == PQM_GW_OCSP_OFF && o.staple_mode == PQM_GW_STAPLE_OFF)
        return 0;
    gw->ocsp = pqm__gw_ocsp_new(&o, e);
    return gw->ocsp != NULL ? 0 : -1;
}

/* Whether the certificate of TLS can be stapled as configured (E says why not); with
 * APPLY, it becomes the one stapled (at start, and once a reload is in force). */
static int staple_target(struct pqm_gateway *gw, const struct pqm_tls_server *tls, int apply,
                         struct pqm_err *e)
{
    X509 *leaf = NULL, *issuer = NULL;
    pqm__tls_server_identity(tls, &leaf, &issuer);
    if (!apply)
        return pqm__gw_ocsp_staple_check(gw->ocsp, leaf, issuer, e);
    pqm__gw_ocsp_staple_target(gw->ocsp, leaf, issuer);
    return 0;
}

static struct pqm_tls_server *build_tls(struct pqm_gateway *gw, const struct pqm_gateway_config *c,
                                        const struct pqm_secret *pass, struct pqm_err *e)
{
    const char *crls[PQM_GW_MAX_CRLS];
    for (size_t i = 0; i < c->ncrl; i++)
        crls[i] = c->crl[i];
    struct pqm_tls_server_opts o = {
        .cert_file = c->cert,
        .key_file = c->key,
        .key_pass = pass->buf,
        .key_passlen = pass->len,
        .client_ca_file = c->client_ca,
        .crl_files = crls,
        .ncrl = c->ncrl,
        .verify_depth = c->verify_depth,
        .require_pq = c->require_pq,
        .crl_soft_fail = c->crl_soft_fail,
        .session_tickets = c->session_tickets,
        .verify_cache = c->verify_cache ? &gw->verify_stats : NULL,
        .ticket_key_lifetime = c->ticket_key_lifetime,
        .staple = gw->ocsp != NULL ? staple : NULL,
        .staple_arg = gw,
    };
    struct pqm_tls_server *s = pqm__tls_server_new(&o, e);
    if (s != NULL && staple_target(gw, s, 0, e) != 0) {
        pqm__tls_server_free(s);
        return NULL;
    }
    return s;
}

static int open_access_log(struct pqm_gateway *gw, struct pqm_err *e)
{
    const char *a = gw->cfg.access_log;
    gw->access_log_fd = -1;
    if (strcmp(a, "off") == 0)
        return 0;
    if (strcmp(a, "-") == 0) {
        gw->access_log_fd = STDOUT_FILENO;
        return 0;
    }
    gw->access_log_fd = open(a, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (gw->access_log_fd < 0)
        return pqm__err_set(e, "access_log %s: %s", a, strerror(errno));
    return 0;
}

/* The identity of the files the TLS configuration is built from (util/fsutil.h): any
 * replacement or rewrite changes it, and so does a missing file's return. */
static uint64_t files_stamp(const struct pqm_gateway_config *c)
{
    const char *files[4 + PQM_GW_MAX_CRLS + 8] = {c->cert, c->key, c->client_ca,
                                                  c->key_passphrase_file};
    size_t n = 4;
    for (size_t i = 0; i < c->ncrl; i++)
        files[n++] = c->crl[i];
    for (size_t i = 0; i < c->ops.n && n < sizeof(files) / sizeof(files[0]); i++)
        if (c->ops.v[i][0] == 'F')
            files[n++] = c->ops.v[i] + 2; /* the configuration file itself */
    return pqm__files_stamp(files, n);
}

/* The listener NAME ("admin" or "metrics") on ADDR ("" : none) into SITE. The admin
 * listener answers probes anyone who can connect could make fail: loopback only. The
 * metrics one gives counters (no identities) and may be on any address. */
static int open_site(struct pqm_gateway *gw, struct gw_site *site, const char *name,
                     const char *addr, int metrics_only, struct pqm_err *e)
{
    site->gw = gw;
    site->fd = -1;
    site->metrics_only = metrics_only;
    if (addr[0] == '\0')
        return 0;
    struct sockaddr_storage ss;
    socklen_t len = 0;
    if (pqm__net_resolve(addr, 1, &ss, &len, e) != 0)
        return pqm__err_copy(e, name, pqm__err_str(e));
    if (!metrics_only && !pqm__net_is_loopback(&ss))
        return pqm__err_set(e, "admin %s: the admin listener must be on a loopback address "
                               "(127.0.0.1 or [::1]): it has no TLS and no authentication "
                               "(for a scraper elsewhere, give metrics: ADDR:PORT)",
                            addr);
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 64) != 0) {
        int err = errno;
        if (fd >= 0)
            close(fd);
        return pqm__err_set(e, "%s %s: %s", name, addr, strerror(err));
    }
    site->fd = fd;
    return 0;
}

void pqm__gw_policy_release(struct gw_policy *p)
{
    if (p == NULL || atomic_fetch_sub(&p->refs, 1) > 1)
        return;
    pqm__policy_free(&p->rules);
    free(p);
}

struct gw_policy *pqm__gw_policy_take(struct pqm_gateway *gw)
{
    pthread_mutex_lock(&gw->tls_mu);
    struct gw_policy *p = atomic_load(&gw->policy);
    if (p != NULL)
        atomic_fetch_add(&p->refs, 1);
    pthread_mutex_unlock(&gw->tls_mu);
    return p;
}

/* The gateway's own copy of FROM's rules; *OUT is NULL when there are none. */
static int make_policy(const struct pqm_policy *from, struct gw_policy **out, struct pqm_err *e)
{
    *out = NULL;
    if (from == NULL || from->nrules == 0)
        return 0;
    struct gw_policy *p = malloc(sizeof(*p));
    if (p == NULL)
        return pqm__err_set(e, "out of memory");
    atomic_init(&p->refs, 1);
    pqm__policy_init(&p->rules);
    for (size_t i = 0; i < from->nrules; i++)
        if (pqm__policy_add(&p->rules, from->rules[i].deny, from->rules[i].text, e) != 0) {
            pqm__gw_policy_release(p);
            return -1;
        }
    *out = p;
    return 0;
}

static int copy_ops(struct pqm_gateway *gw, const struct pqm_strlist *from, struct pqm_err *e)
{
    memset(&gw->cfg.ops, 0, sizeof(gw->cfg.ops));
    for (size_t i = 0; i < from->n; i++)
        if (pqm__strlist_add(&gw->cfg.ops, from->v[i], e) != 0)
            return -1;
    return 0;
}

struct pqm_gateway *pqm_gateway_new(const struct pqm_gateway_config *cfg, char *err,
                                    size_t errlen)
{
    struct pqm_err e = {{0}};
    struct pqm_gateway *gw = calloc(1, sizeof(*gw));
    if (gw == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    gw->cfg = *cfg;
    gw->cfg.policy = NULL; /* the caller's; the gateway keeps a copy of its own */
    memset(&gw->cfg.ops, 0, sizeof(gw->cfg.ops));
    gw->admin.fd = gw->metrics.fd = -1;
    gw->access_log_fd = -1;
    pqm__err_clear(&gw->cfg.err);
    pthread_mutex_init(&gw->log_mu, NULL);
    pthread_mutex_init(&gw->tls_mu, NULL);
    pthread_mutex_init(&gw->expiry_mu, NULL);
    struct sockaddr_storage lss;
    socklen_t llen = 0;
    /* One per core this process may run on (its affinity mask: taskset, a cpuset). */
    gw->nworkers = cfg->workers > 0 ? cfg->workers : pqm__usable_cores();
    if (pqm_gateway_config_check(&gw->cfg) != 0) {
        snprintf(err, errlen, "%s", pqm_gateway_config_error(&gw->cfg));
        goto fail;
    }
    struct gw_policy *policy = NULL;
    if (copy_ops(gw, &cfg->ops, &e) != 0 || make_policy(cfg->policy, &policy, &e) != 0)
        goto fail_e;
    atomic_store(&gw->policy, policy);
    if (read_key_pass(gw->cfg.key_passphrase_file, &gw->key_pass, &e) != 0)
        goto fail_e;
    if (start_ocsp(gw, &e) != 0)
        goto fail_e;
    struct pqm_tls_server *tls = build_tls(gw, &gw->cfg, &gw->key_pass, &e);
    if (tls == NULL)
        goto fail_e;
    atomic_store(&gw->tls, tls);
    staple_target(gw, tls, 1, &e);
    gw->files_stamp = files_stamp(&gw->cfg);
    if (cfg->ncrl == 0 && strcmp(gw->cfg.client_ocsp, "off") == 0)
        pqm__gw_say("warning", "no crl configured and client_ocsp off: client certificates are "
                               "not checked for revocation");
    if (pqm__net_resolve(cfg->upstream, 0, &gw->upstream, &gw->upstream_len, &e) != 0 ||
        pqm__net_resolve(cfg->listen, 1, &lss, &llen, &e) != 0) {
        pqm__err_copy(&e, "address", pqm__err_str(&e));
        goto fail_e;
    }
    if (open_access_log(gw, &e) != 0 || open_site(gw, &gw->admin, "admin", gw->cfg.admin, 0, &e) != 0 ||
        open_site(gw, &gw->metrics, "metrics", gw->cfg.metrics, 1, &e) != 0)
        goto fail_e;
    gw->workers = calloc((size_t)gw->nworkers, sizeof(*gw->workers));
    if (gw->workers == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (int i = 0; i < gw->nworkers; i++)
        gw->workers[i].lfd = -1;
    if (pqm__net_address_free(&lss, llen, cfg->listen, "gateway", &e) != 0)
        goto fail_e;
    for (int i = 0; i < gw->nworkers; i++) {
        struct worker *w = &gw->workers[i];
        w->gw = gw;
        w->id = i;
        pqm__buf_init(&w->logbuf, 16384);
        pqm__buf_init(&w->logout, 256 * 1024);
        w->lfd = pqm__net_listen(&lss, llen, cfg->listen, &e);
        if (w->lfd < 0)
            goto fail_e;
    }
    return gw;
fail_e:
    snprintf(err, errlen, "%s", pqm__err_str(&e));
fail:
    pqm_gateway_free(gw);
    return NULL;
}

static void stop_cb(struct ev_loop *loop, ev_async *a, int revents)
{
    (void)revents;
    struct worker *w = a->data;
    ev_io_stop(loop, &w->accept_w);
    close(w->lfd);
    w->lfd = -1;
    pqm__gw_worker_drain(w);
    if (w->nconns == 0)
        ev_break(loop, EVBREAK_ALL);
    else
        ev_timer_start(loop, &w->drain_w);
}

static void ocsp_wake_cb(struct ev_loop *loop, ev_async *a, int revents)
{
    (void)loop;
    (void)revents;
    pqm__gw_worker_ocsp_wake(a->data);
}

static void drain_timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)t;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

/* Before each poll: serve what the last one made ready, then write the log lines. */
static void flush_log_cb(struct ev_loop *loop, ev_prepare *p, int revents)
{
    (void)loop;
    (void)revents;
    pqm__gw_worker_run(p->data);
    pqm__gw_worker_flush_log(p->data);
}

/* Nothing to do: being active keeps the poll from waiting while connections are deferred. */
static void later_cb(struct ev_loop *loop, ev_idle *i, int revents)
{
    (void)loop;
    (void)i;
    (void)revents;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    ev_run(w->loop, 0);
    pqm__gw_worker_close_all(w); /* what the drain time did not see finish */
    return NULL;
}

static int start_worker(struct worker *w)
{
    w->loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
    if (w->loop == NULL)
        return -1;
    ev_io_init(&w->accept_w, pqm__gw_accept_cb, w->lfd, EV_READ);
    w->accept_w.data = w;
    ev_io_start(w->loop, &w->accept_w);
    ev_async_init(&w->stop_w, stop_cb);
    w->stop_w.data = w;
    ev_async_start(w->loop, &w->stop_w);
    ev_async_init(&w->ocsp_w, ocsp_wake_cb);
    w->ocsp_w.data = w;
    ev_async_start(w->loop, &w->ocsp_w);
    atomic_store(&w->ocsp_ready, 1);
    ev_timer_init(&w->drain_w, drain_timeout_cb, w->gw->cfg.drain_timeout, 0);
    ev_prepare_init(&w->flush_w, flush_log_cb);
    w->flush_w.data = w;
    ev_prepare_start(w->loop, &w->flush_w);
    ev_idle_init(&w->later_w, later_cb);
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
        return -1;
    w->started = 1;
    return 0;
}

/* SIGHUP: certificates, key, client CAs and CRLs read again; a new TLS configuration
 * replaces the old one for new connections. One that does not load changes nothing. */
/* Options a reload cannot change in a running gateway (sockets, workers, what workers
 * read without a lock): a new value waits for a restart, and the operator is told. */
static void note_restart_only(const struct pqm_gateway_config *now,
                              const struct pqm_gateway_config *next)
{
    static const struct {
        const char *name;
        size_t off, size;
    } fields[] = {
#define FIELD(f) {#f, offsetof(struct pqm_gateway_config, f), sizeof(((struct pqm_gateway_config *)0)->f)}
        FIELD(listen),           FIELD(upstream),          FIELD(admin),
        FIELD(metrics),
        FIELD(max_header_size),  FIELD(upstream_keepalive),
        FIELD(access_log),       FIELD(workers),           FIELD(max_connections),
        FIELD(handshake_timeout), FIELD(header_timeout),   FIELD(idle_timeout),
        FIELD(upstream_connect_timeout), FIELD(upstream_timeout), FIELD(drain_timeout),
        FIELD(watch_interval),   FIELD(client_cert_header), FIELD(expiry_warning_days),
        FIELD(client_ocsp),      FIELD(ocsp_stapling),     FIELD(ocsp_responder),
        FIELD(ocsp_timeout),     FIELD(ocsp_cache_seconds),
#undef FIELD
    };
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        if (memcmp((const char *)now + fields[i].off, (const char *)next + fields[i].off,
                   fields[i].size) != 0)
            pqm__gw_say("warning", "%s changed: it takes effect after a restart", fields[i].name);
}

/* The options a reload applies: files, verification and tickets. */
static void take_reloadable(struct pqm_gateway_config *to, const struct pqm_gateway_config *from)
{
    memcpy(to->cert, from->cert, sizeof(to->cert));
    memcpy(to->key, from->key, sizeof(to->key));
    memcpy(to->key_passphrase_file, from->key_passphrase_file, sizeof(to->key_passphrase_file));
    memcpy(to->client_ca, from->client_ca, sizeof(to->client_ca));
    memcpy(to->crl, from->crl, sizeof(to->crl));
    to->ncrl = from->ncrl;
    to->verify_depth = from->verify_depth;
    to->require_pq = from->require_pq;
    to->crl_soft_fail = from->crl_soft_fail;
    to->session_tickets = from->session_tickets;
    to->verify_cache = from->verify_cache;
    to->ticket_key_lifetime = from->ticket_key_lifetime;
}

/* SIGHUP, or a watched file changed: the configuration file (when there is one) is read
 * again and the TLS configuration and the policy are rebuilt from it; new connections
 * and new requests get them. Anything that does not load leaves everything as it was. */
static void reload(struct pqm_gateway *gw, const char *why)
{
    struct pqm_err e = {{0}};
    struct pqm_gateway_config *next = NULL, trial = gw->cfg;
    struct pqm_secret pass = {NULL, 0};
    struct gw_policy *policy = NULL;
    struct pqm_tls_server *fresh = NULL;

    gw->files_stamp = files_stamp(&gw->cfg); /* a failed load waits for the next change */
    if (pqm__gw_config_has_file(&gw->cfg.ops)) {
        next = pqm__gw_config_replay(&gw->cfg.ops, &e);
        if (next == NULL || pqm_gateway_config_check(next) != 0) {
            if (next != NULL)
                pqm__err_copy(&e, NULL, pqm_gateway_config_error(next));
            goto refused;
        }
        take_reloadable(&trial, next);
    }
    /* The files as they are before they are read: one replaced while they are read
     * still differs from this stamp, and is read again at the next look. */
    uint64_t stamp = files_stamp(&trial);
    if (read_key_pass(trial.key_passphrase_file, &pass, &e) != 0 ||
        (fresh = build_tls(gw, &trial, &pass, &e)) == NULL)
        goto refused;
    if (next != NULL) {
        if (make_policy(next->policy, &policy, &e) != 0)
            goto refused;
        note_restart_only(&gw->cfg, next);
        take_reloadable(&gw->cfg, next);
    }
    pthread_mutex_lock(&gw->tls_mu);
    struct pqm_tls_server *old = atomic_exchange(&gw->tls, fresh);
    struct gw_policy *old_policy = next != NULL ? atomic_exchange(&gw->policy, policy) : NULL;
    pthread_mutex_unlock(&gw->tls_mu);
    staple_target(gw, fresh, 1, &e);
    pqm__tls_server_free(old);
    pqm__gw_policy_release(old_policy);
    pqm__secret_clear(&gw->key_pass);
    gw->key_pass = pass;
    gw->files_stamp = stamp;
    pqm__gw_say("info", "reloaded %s (%s)",
                next != NULL ? "the configuration, certificates, key, client CAs, CRLs and policy"
                             : "certificates, key, client CAs and CRLs",
                why);
    pqm_gateway_config_free(next);
    return;
refused:
    pqm__gw_say("error", "reload (%s) refused, the running configuration stays: %s", why,
                pqm__err_str(&e));
    pqm__tls_server_free(fresh); /* built, then refused with the policy */
    pqm__secret_clear(&pass);
    pqm_gateway_config_free(next);
}

/* A handshake allocates and frees far more (ML-DSA and ML-KEM work areas) than the
 * connection keeps, between allocations that live as long as the connection: the heap
 * keeps the freed pages. They are given back once a burst of handshakes is over (no new
 * one for PQM_TRIM_QUIET seconds), so that the memory of idle connections is what they
 * use. */
static void trim_heap(struct pqm_gateway *gw)
{
    uint64_t n = 0;
    for (int i = 0; i < gw->nworkers; i++)
        n += atomic_load_explicit(&gw->workers[i].metrics.handshakes_ok, memory_order_relaxed);
    double now = pqm__mono_seconds();
    if (n != gw->handshakes_seen) {
        gw->handshakes_seen = n;
        gw->handshakes_changed = now;
        return;
    }
    if (n == gw->trimmed_at || now - gw->handshakes_changed < PQM_TRIM_QUIET)
        return;
    gw->trimmed_at = n;
    malloc_trim(0);
}

int pqm_gateway_run(struct pqm_gateway *gw)
{
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    signal(SIGPIPE, SIG_IGN);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    int rc = 0;
    for (int i = 0; i < gw->nworkers; i++)
        if (start_worker(&gw->workers[i]) != 0) {
            pqm__gw_say("error", "cannot start worker %d", i);
            rc = -1;
            break;
        }
    if (rc == 0 && pqm__gw_admin_start(gw) != 0) {
        pqm__gw_say("error", "cannot start the admin listener");
        rc = -1;
    }
    if (rc == 0) {
        pqm__gw_say("info", "listening on %s (%d workers), upstream %s%s%s%s%s",
                    gw->cfg.listen, gw->nworkers, gw->cfg.upstream,
                    gw->admin.fd >= 0 ? ", admin " : "", gw->admin.fd >= 0 ? gw->cfg.admin : "",
                    gw->metrics.fd >= 0 ? ", metrics " : "",
                    gw->metrics.fd >= 0 ? gw->cfg.metrics : "");
        pqm__sd_notify("READY=1");
    }
    for (int sig = 0; rc == 0;) {
        double iv = gw->cfg.watch_interval > 0 ? gw->cfg.watch_interval : PQM_TRIM_INTERVAL;
        if (iv > PQM_TRIM_INTERVAL)
            iv = PQM_TRIM_INTERVAL;
        struct timespec ts = {(time_t)iv, (long)((iv - (double)(time_t)iv) * 1e9)};
        sig = sigtimedwait(&set, NULL, &ts);
        if (sig < 0) {
            double t = pqm__mono_seconds();
            if (errno == EAGAIN && gw->cfg.watch_interval > 0 &&
                t - gw->watched_at >= gw->cfg.watch_interval) {
                gw->watched_at = t;
                if (files_stamp(&gw->cfg) != gw->files_stamp)
                    reload(gw, "a file changed");
            }
            if (errno == EAGAIN)
                trim_heap(gw);
            continue;
        }
        if (sig == SIGHUP) {
            pqm__sd_notify("RELOADING=1");
            reload(gw, "SIGHUP");
            pqm__sd_notify("READY=1");
            continue;
        }
        pqm__gw_say("info", "signal %d: draining connections", sig);
        atomic_store(&gw->draining, 1);
        pqm__sd_notify("STOPPING=1");
        break;
    }
    for (int i = 0; i < gw->nworkers; i++)
        if (gw->workers[i].started)
            ev_async_send(gw->workers[i].loop, &gw->workers[i].stop_w);
    for (int i = 0; i < gw->nworkers; i++)
        if (gw->workers[i].started) {
            pthread_join(gw->workers[i].thread, NULL);
            gw->workers[i].started = 0;
        }
    pqm__gw_admin_stop(gw);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

void pqm_gateway_free(struct pqm_gateway *gw)
{
    if (gw == NULL)
        return;
    pqm__gw_ocsp_free(gw->ocsp); /* its threads may wake the workers: they go first */
    gw->ocsp = NULL;
    for (int i = 0; gw->workers != NULL && i < gw->nworkers; i++) {
        struct worker *w = &gw->workers[i];
        if (w->lfd >= 0)
            close(w->lfd);
        if (w->loop != NULL)
            ev_loop_destroy(w->loop);
    }
    free(gw->workers);
    if (gw->admin.fd >= 0)
        close(gw->admin.fd);
    if (gw->metrics.fd >= 0)
        close(gw->metrics.fd);
    pqm__gw_policy_release(atomic_load(&gw->policy));
    pqm__strlist_free(&gw->cfg.ops);
    pqm__tls_server_free(atomic_load(&gw->tls));
    pqm__secret_clear(&gw->key_pass);
    if (gw->access_log_fd > STDERR_FILENO)
        close(gw->access_log_fd);
    pthread_mutex_destroy(&gw->log_mu);
    pthread_mutex_destroy(&gw->tls_mu);
    pthread_mutex_destroy(&gw->expiry_mu);
    free(gw);
}
