/* Gateway internals shared by its files: the gateway, its workers, and the access log. */
#ifndef PQM_GATEWAY_GATEWAY_H
#define PQM_GATEWAY_GATEWAY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>

#include <ev.h>

#include "util/buf.h"

#include "gateway/config.h"
#include "gateway/metrics.h"
#include "gateway/ocsp.h"
#include "gateway/policy.h"
#include "tls/server.h"

#define PQM_GW_EXPIRY_NOTES 1024

struct worker;
struct conn;
struct exchange;

/* A policy shared by the requests that check it: each takes a reference, and a reload
 * replaces the gateway's. */
struct gw_policy {
    atomic_int refs;
    struct pqm_policy rules;
};
struct upconn;

struct pqm_gateway {
    struct pqm_gateway_config cfg;
    struct pqm_secret key_pass;
    _Atomic(struct pqm_tls_server *) tls; /* replaced whole on reload */
    pthread_mutex_t tls_mu;              /* serialises takers and the reload's swap */
    struct sockaddr_storage upstream;
    socklen_t upstream_len;
    char upstream_text[256];
    struct worker *workers;
    int nworkers;
    int access_log_fd; /* -1: off */
    pthread_mutex_t log_mu;
    uint64_t files_stamp; /* of the files the TLS configuration was built from */
    _Atomic(struct gw_policy *) policy; /* NULL: every verified client passes */
    struct pqm_gw_ocsp *ocsp;            /* client OCSP checks and stapling; NULL: off */
    struct pqm_verify_stats verify_stats; /* the client verify caches' counts (verify_cache) */
    /* Certificates warned about as expiring: fingerprint prefix and when. */
    struct expiry_note {
        uint64_t id;
        int64_t when;
    } expiry_notes[PQM_GW_EXPIRY_NOTES];
    pthread_mutex_t expiry_mu;
    atomic_int draining;
    uint64_t trimmed_at;       /* handshakes counted at the last heap trim */
    uint64_t handshakes_seen;  /* ... at the last look, and when that count changed */
    double handshakes_changed;
    double watched_at;         /* when the files were last looked at */
    /* The admin listener (/metrics, /healthz, /readyz) and the metrics one (/metrics
     * alone), each with its thread; fd -1: off. */
    struct gw_site {
        struct pqm_gateway *gw;
        int fd;
        int metrics_only;
        pthread_t thread;
        int started;
    } admin, metrics;
    atomic_int admin_stop;
};

struct worker {
    struct pqm_gateway *gw;
    int id;
    struct ev_loop *loop;
    int lfd;
    ev_io accept_w;
    ev_async stop_w;
    ev_async ocsp_w;        /* an OCSP answer arrived: connections waiting for one go on */
    atomic_int ocsp_ready;  /* ocsp_w may be sent */
    ev_timer drain_w;
    pthread_t thread;
    int started;
    int nconns;
    int draining;
    struct conn *conns;  /* every open client connection */
    struct upconn *idle; /* idle upstream connections, newest first */
    int nidle;
    struct conn *run;       /* connections made ready by the last poll, to serve */
    struct conn *later;     /* connections that used their rounds, served after the poll */
    ev_idle later_w;        /* active while LATER is not empty: the poll does not wait */
    struct exchange *spare; /* ended exchanges kept for reuse */
    int nspare;
    struct pqm_buf logbuf;  /* the access log line being written */
    struct pqm_buf logout;  /* lines written this loop iteration, not yet in the log */
    ev_prepare flush_w;     /* writes them before the loop waits */
    char now_text[40];      /* the time as the access log writes it, and when */
    time_t now_text_at;
    struct pqm_metrics metrics;
};

/* The current policy with a reference for the caller (NULL: none), and its release. */
struct gw_policy *pqm__gw_policy_take(struct pqm_gateway *gw);
void pqm__gw_policy_release(struct gw_policy *p);

/* The TLS server of the current configuration, with a reference for the caller. */
struct pqm_tls_server *pqm__gw_tls_take(struct pqm_gateway *gw);

void pqm__gw_accept_cb(struct ev_loop *loop, ev_io *w, int revents);
/* Connections of W waiting for an OCSP answer look at the cache again. */
void pqm__gw_worker_ocsp_wake(struct worker *w);
/* Closes idle connections and lets the others finish their current request. */
void pqm__gw_worker_drain(struct worker *w);
/* Closes every connection of W and its idle upstream connections. */
void pqm__gw_worker_close_all(struct worker *w);

/* 1 when the certificate FINGERPRINT (hex) was not warned about in the last hour; notes
 * that it now is. */
int pqm__gw_expiry_should_warn(struct pqm_gateway *gw, const char *fingerprint, int64_t now);

int pqm__gw_admin_start(struct pqm_gateway *gw);
void pqm__gw_admin_stop(struct pqm_gateway *gw);

/* Serves the connections the last poll made ready, in the kernel's order. */
void pqm__gw_worker_run(struct worker *w);
/* Writes the access log lines W gathered. */
void pqm__gw_worker_flush_log(struct worker *w);
/* LEN bytes of whole lines into the access log, in one write. */
void pqm__gw_log_raw(struct pqm_gateway *gw, const char *data, size_t len);
/* One line (without its newline) into the access log, in one write. */
void pqm__gw_log_bytes(struct pqm_gateway *gw, const char *line, size_t len);
/* One JSON line (already serialised, without the newline) into the access log. */
void pqm__gw_log_line(struct pqm_gateway *gw, const char *json);
/* A line on stderr for the operator: "pqmtls gateway: LEVEL: message". */
void pqm__gw_say(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
