/* The admin listener: plain HTTP on a loopback address, one request per connection,
 * served by one thread of its own: /metrics (Prometheus), /healthz, /readyz; and the
 * metrics listener, /metrics alone, on a thread of its own too. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <llhttp.h>

#include "gateway/gateway.h"
#include "gateway/metrics.h"
#include "util/timeutil.h"

#define PQM_ADMIN_REQ_MAX 8192
#define PQM_ADMIN_DEADLINE 2.0 /* seconds for a whole request: one thread serves them in turn */

struct admin_req {
    char url[256];
    size_t url_len;
    int complete, too_long;
};

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    struct admin_req *r = p->data;
    if (r->url_len + len >= sizeof(r->url)) {
        r->too_long = 1;
        return -1;
    }
    memcpy(r->url + r->url_len, at, len);
    r->url_len += len;
    r->url[r->url_len] = '\0';
    return 0;
}

static int on_complete(llhttp_t *p)
{
    ((struct admin_req *)p->data)->complete = 1;
    return HPE_PAUSED;
}

/* The OCSP counters, when the gateway asks responders (client_ocsp or stapling). */
static int ocsp_metrics(struct pqm_gw_ocsp *o, struct pqm_buf *out)
{
    if (o == NULL)
        return 0;
    struct pqm_gw_ocsp_stats st;
    pqm__gw_ocsp_stats(o, &st);
    return pqm__buf_addf(
        out,
        "# HELP pqmtls_ocsp_queries_total OCSP queries about client certificates.\n"
        "# TYPE pqmtls_ocsp_queries_total counter\npqmtls_ocsp_queries_total %llu\n"
        "# HELP pqmtls_ocsp_query_failures_total Those that got no usable answer.\n"
        "# TYPE pqmtls_ocsp_query_failures_total counter\npqmtls_ocsp_query_failures_total %llu\n"
        "# HELP pqmtls_ocsp_cache_hits_total Client certificates judged from the cache.\n"
        "# TYPE pqmtls_ocsp_cache_hits_total counter\npqmtls_ocsp_cache_hits_total %llu\n"
        "# HELP pqmtls_ocsp_staple_valid Whether a current OCSP response is stapled.\n"
        "# TYPE pqmtls_ocsp_staple_valid gauge\npqmtls_ocsp_staple_valid %d\n"
        "# HELP pqmtls_ocsp_staple_next_update_timestamp_seconds The stapled response's "
        "nextUpdate (0: none).\n"
        "# TYPE pqmtls_ocsp_staple_next_update_timestamp_seconds gauge\n"
        "pqmtls_ocsp_staple_next_update_timestamp_seconds %lld\n",
        (unsigned long long)st.queries, (unsigned long long)st.failures,
        (unsigned long long)st.cache_hits, st.staple_ok, (long long)st.staple_next_update);
}

static int verify_metrics(const struct pqm_verify_stats *v, struct pqm_buf *out)
{
    return pqm__buf_addf(
        out,
        "# HELP pqmtls_client_verify_total Client certificate verifications: answered from "
        "the cache of certificates verified before (only validity and revocation checked "
        "again), or made in full (verify_cache).\n"
        "# TYPE pqmtls_client_verify_total counter\n"
        "pqmtls_client_verify_total{cache=\"hit\"} %llu\n"
        "pqmtls_client_verify_total{cache=\"miss\"} %llu\n",
        (unsigned long long)atomic_load(&v->hits), (unsigned long long)atomic_load(&v->misses));
}

static void respond(int fd, int status, const char *type, const char *body, size_t len)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     status, status == 200 ? "OK" : status == 404 ? "Not Found"
                                                : status == 503 ? "Service Unavailable"
                                                                : "Bad Request",
                     type, len);
    if (send(fd, head, (size_t)n, MSG_NOSIGNAL) == n)
        send(fd, body, len, MSG_NOSIGNAL);
}

/* Waits until FD is readable before DEADLINE (pqm__mono_seconds): 1 when it is. A peer
 * that sends a byte now and then cannot hold the thread past the deadline. */
static int readable_before(int fd, double deadline)
{
    for (;;) {
        int left_ms = (int)((deadline - pqm__mono_seconds()) * 1000);
        if (left_ms <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, left_ms);
        if (r > 0)
            return 1;
        if (r == 0 || errno != EINTR)
            return 0;
    }
}

static void serve(const struct gw_site *site, int fd)
{
    struct pqm_gateway *gw = site->gw;
    double deadline = pqm__mono_seconds() + PQM_ADMIN_DEADLINE;
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    llhttp_settings_t settings;
    llhttp_settings_init(&settings);
    settings.on_url = on_url;
    settings.on_message_complete = on_complete;
    llhttp_t parser;
    llhttp_init(&parser, HTTP_REQUEST, &settings);
    struct admin_req req = {{0}, 0, 0, 0};
    parser.data = &req;
    char buf[PQM_ADMIN_REQ_MAX];
    size_t total = 0;
    while (!req.complete && total < sizeof(buf)) {
        if (!readable_before(fd, deadline))
            return;
        ssize_t n = recv(fd, buf, sizeof(buf) - total, 0);
        if (n <= 0)
            return;
        total += (size_t)n;
        llhttp_errno_t err = llhttp_execute(&parser, buf, (size_t)n);
        if (err != HPE_OK && err != HPE_PAUSED) {
            respond(fd, 400, "text/plain", "bad request\n", 12);
            return;
        }
    }
    if (!req.complete || parser.method != HTTP_GET) {
        if (site->metrics_only)
            respond(fd, 400, "text/plain", "GET /metrics\n", 13);
        else
            respond(fd, 400, "text/plain", "GET /metrics, /healthz or /readyz\n", 34);
        return;
    }
    int ready = !atomic_load(&gw->draining);
    if (site->metrics_only && strcmp(req.url, "/metrics") != 0) {
        respond(fd, 404, "text/plain", "not found\n", 10);
    } else if (strcmp(req.url, "/healthz") == 0) {
        respond(fd, 200, "text/plain", "ok\n", 3);
    } else if (strcmp(req.url, "/readyz") == 0) {
        if (ready)
            respond(fd, 200, "text/plain", "ready\n", 6);
        else
            respond(fd, 503, "text/plain", "draining\n", 9);
    } else if (strcmp(req.url, "/metrics") == 0) {
        struct pqm_metrics *blocks[256];
        size_t n = 0;
        for (int i = 0; i < gw->nworkers && n < 256; i++)
            blocks[n++] = &gw->workers[i].metrics;
        struct pqm_buf out;
        pqm__buf_init(&out, 1 << 20);
        if (pqm__metrics_render(blocks, n, ready, &out) == 0 && ocsp_metrics(gw->ocsp, &out) == 0 &&
            verify_metrics(&gw->verify_stats, &out) == 0)
            respond(fd, 200, "text/plain; version=0.0.4; charset=utf-8",
                    (const char *)pqm__buf_head(&out), out.len);
        else
            respond(fd, 503, "text/plain", "metrics too large\n", 18);
        pqm__buf_free(&out);
    } else {
        respond(fd, 404, "text/plain", "not found\n", 10);
    }
}

static void *site_main(void *arg)
{
    struct gw_site *site = arg;
    while (!atomic_load(&site->gw->admin_stop)) {
        struct pollfd p = {.fd = site->fd, .events = POLLIN};
        if (poll(&p, 1, 200) <= 0)
            continue;
        int fd = accept4(site->fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        serve(site, fd);
        close(fd);
    }
    return NULL;
}

static int site_start(struct gw_site *site)
{
    if (site->fd < 0)
        return 0;
    if (pthread_create(&site->thread, NULL, site_main, site) != 0)
        return -1;
    site->started = 1;
    return 0;
}

static void site_stop(struct gw_site *site)
{
    if (!site->started)
        return;
    pthread_join(site->thread, NULL);
    site->started = 0;
}

int pqm__gw_admin_start(struct pqm_gateway *gw)
{
    atomic_store(&gw->admin_stop, 0);
    return site_start(&gw->admin) == 0 && site_start(&gw->metrics) == 0 ? 0 : -1;
}

void pqm__gw_admin_stop(struct pqm_gateway *gw)
{
    atomic_store(&gw->admin_stop, 1);
    site_stop(&gw->admin);
    site_stop(&gw->metrics);
}
