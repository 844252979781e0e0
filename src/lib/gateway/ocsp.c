/* The gateway's OCSP (see ocsp.h). */
#include "gateway/ocsp.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "gateway/gateway.h"
#include "ocsp/fetch.h"
#include "util/timeutil.h"

#define CACHE_SLOTS 4096
#define CACHE_PROBE 16
#define QUEUE_MAX 256
#define THREADS 2
#define ERROR_TTL 10.0        /* seconds a failed query is remembered (no hammering) */
#define REVOKED_TTL 86400.0   /* a revocation is final: remembered for a day */
#define STAPLE_RETRY_MIN 10.0
#define STAPLE_RETRY_MAX 300.0
#define STAPLE_REFRESH_NO_NEXT 3600.0

struct centry {
    unsigned char fp[32];
    int used, pending;
    enum pqm_ocsp_status status;
    int reason;
    int64_t revoked_at;
    double expires; /* monotonic */
    char error[160];
};

struct job {
    unsigned char fp[32];
    X509 *leaf, *issuer;
    char url[PQM_OCSP_URL_MAX];
};

struct pqm_gw_ocsp {
    struct pqm_gw_ocsp_opts o;
    char responder[PQM_OCSP_URL_MAX];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t threads[THREADS];
    int nthreads, stop;
    struct centry *cache;
    struct job queue[QUEUE_MAX];
    size_t qhead, qlen;
    /* stapling */
    X509 *st_leaf, *st_issuer;
    char st_url[PQM_OCSP_URL_MAX];
    unsigned char *st_der;
    size_t st_len;
    int64_t st_next_update;
    double st_due, st_backoff;
    int st_busy;
    struct pqm_gw_ocsp_stats stats;
};

static int fingerprint(X509 *x, unsigned char fp[32])
{
    unsigned int len = 0;
    return X509_digest(x, EVP_sha256(), fp, &len) == 1 && len == 32 ? 0 : -1;
}

/* --- the cache (under mu) ------------------------------------------------------------ */

static size_t slot_of(const unsigned char fp[32])
{
    size_t h = 0;
    memcpy(&h, fp, sizeof(h));
    return h % CACHE_SLOTS;
}

static struct centry *cache_find(struct pqm_gw_ocsp *o, const unsigned char fp[32])
{
    size_t s = slot_of(fp);
    for (size_t i = 0; i < CACHE_PROBE; i++) {
        struct centry *c = &o->cache[(s + i) % CACHE_SLOTS];
        if (c->used && memcmp(c->fp, fp, 32) == 0)
            return c;
    }
    return NULL;
}

/* A slot for FP: a free one, else the one that expires first (never one in flight). */
static struct centry *cache_claim(struct pqm_gw_ocsp *o, const unsigned char fp[32])
{
    struct centry *found = cache_find(o, fp);
    if (found != NULL)
        return found;
    size_t s = slot_of(fp);
    struct centry *victim = NULL;
    for (size_t i = 0; i < CACHE_PROBE; i++) {
        struct centry *c = &o->cache[(s + i) % CACHE_SLOTS];
        if (!c->used) {
            victim = c;
            break;
        }
        if (!c->pending && (victim == NULL || c->expires < victim->expires))
            victim = c;
    }
    if (victim == NULL)
        return NULL;
    memset(victim, 0, sizeof(*victim));
    memcpy(victim->fp, fp, 32);
    victim->used = 1;
    return victim;
}

static void cache_store(struct pqm_gw_ocsp *o, const unsigned char fp[32],
                        const struct pqm_ocsp_result *r)
{
    struct centry *c = cache_claim(o, fp);
    if (c == NULL)
        return;
    double now = pqm__mono_seconds(), ttl = o->o.cache_seconds;
    c->pending = 0;
    c->status = r->status;
    c->reason = r->reason;
    c->revoked_at = r->revoked_at;
    snprintf(c->error, sizeof(c->error), "%s", r->error);
    if (r->status == PQM_OCSP_ERROR) {
        ttl = ERROR_TTL;
    } else if (r->status == PQM_OCSP_REVOKED) {
        ttl = REVOKED_TTL;
    } else if (r->next_update > 0) {
        double left = (double)(r->next_update - (int64_t)time(NULL));
        if (left < ttl)
            ttl = left > 0 ? left : 0;
    }
    c->expires = now + ttl;
}

/* --- client certificates ------------------------------------------------------------- */

static const char *url_for(struct pqm_gw_ocsp *o, X509 *x, char *buf, size_t len)
{
    if (o->responder[0] != '\0')
        return o->responder;
    return pqm__ocsp_url_of(x, buf, len) == 0 ? buf : NULL;
}

static enum pqm_gw_ocsp_verdict judge_entry(struct pqm_gw_ocsp *o, const struct centry *c,
                                            char *reason, size_t len, const char **code)
{
    int hard = o->o.client_mode == PQM_GW_OCSP_HARD;
    char when[32];
    switch (c->status) {
    case PQM_OCSP_GOOD:
        return PQM_GW_OCSP_PASS;
    case PQM_OCSP_REVOKED:
        pqm__format_time(c->revoked_at, when, sizeof(when));
        snprintf(reason, len, "the client certificate is revoked (OCSP: %s, since %s)",
                 pqm__ocsp_reason_name(c->reason), when);
        *code = "revoked";
        return PQM_GW_OCSP_REFUSE;
    case PQM_OCSP_UNKNOWN:
        if (!hard)
            return PQM_GW_OCSP_PASS;
        snprintf(reason, len, "the OCSP responder does not know the client certificate "
                              "(client_ocsp: hard)");
        *code = "ocsp_unknown";
        return PQM_GW_OCSP_REFUSE;
    default:
        if (!hard)
            return PQM_GW_OCSP_PASS;
        snprintf(reason, len, "no OCSP answer for the client certificate (client_ocsp: hard): %s",
                 c->error);
        *code = "ocsp_unavailable";
        return PQM_GW_OCSP_REFUSE;
    }
}

static int enqueue(struct pqm_gw_ocsp *o, const unsigned char fp[32], X509 *leaf, X509 *issuer,
                   const char *url)
{
    if (o->qlen >= QUEUE_MAX || X509_up_ref(leaf) != 1)
        return -1;
    if (X509_up_ref(issuer) != 1) {
        X509_free(leaf);
        return -1;
    }
    struct job *j = &o->queue[(o->qhead + o->qlen) % QUEUE_MAX];
    memcpy(j->fp, fp, 32);
    j->leaf = leaf;
    j->issuer = issuer;
    snprintf(j->url, sizeof(j->url), "%s", url);
    o->qlen++;
    pthread_cond_signal(&o->cv);
    return 0;
}

enum pqm_gw_ocsp_verdict pqm__gw_ocsp_client(struct pqm_gw_ocsp *o, X509 *leaf, X509 *issuer,
                                             char *reason, size_t reasonlen, const char **code)
{
    if (o == NULL || o->o.client_mode == PQM_GW_OCSP_OFF)
        return PQM_GW_OCSP_PASS;
    int hard = o->o.client_mode == PQM_GW_OCSP_HARD;
    unsigned char fp[32];
    char buf[PQM_OCSP_URL_MAX];
    struct pqm_ocsp_result none = {.status = PQM_OCSP_ERROR, .reason = -1};
    if (fingerprint(leaf, fp) != 0) {
        snprintf(none.error, sizeof(none.error), "cannot hash the certificate");
        goto refuse_or_pass;
    }
    pthread_mutex_lock(&o->mu);
    struct centry *c = cache_find(o, fp);
    if (c != NULL && !c->pending && c->expires > pqm__mono_seconds()) {
        o->stats.cache_hits++;
        enum pqm_gw_ocsp_verdict v = judge_entry(o, c, reason, reasonlen, code);
        pthread_mutex_unlock(&o->mu);
        return v;
    }
    if (c != NULL && c->pending) { /* soft waits too: only a failure lets the client pass */
        pthread_mutex_unlock(&o->mu);
        return PQM_GW_OCSP_WAIT;
    }
    const char *url = issuer != NULL ? url_for(o, leaf, buf, sizeof(buf)) : NULL;
    if (url == NULL) {
        snprintf(none.error, sizeof(none.error), "%s",
                 issuer == NULL ? "the issuer of the client certificate is not known"
                                : "the client certificate names no OCSP responder and no "
                                  "ocsp_responder is configured");
        cache_store(o, fp, &none);
        pthread_mutex_unlock(&o->mu);
        goto refuse_or_pass;
    }
    c = cache_claim(o, fp);
    if (c == NULL || enqueue(o, fp, leaf, issuer, url) != 0) {
        pthread_mutex_unlock(&o->mu);
        snprintf(none.error, sizeof(none.error), "too many OCSP queries waiting");
        goto refuse_or_pass;
    }
    c->pending = 1;
    pthread_mutex_unlock(&o->mu);
    return PQM_GW_OCSP_WAIT;
refuse_or_pass:
    if (!hard)
        return PQM_GW_OCSP_PASS;
    snprintf(reason, reasonlen, "no OCSP answer for the client certificate (client_ocsp: hard): %s",
             none.error);
    *code = "ocsp_unavailable";
    return PQM_GW_OCSP_REFUSE;
}

static void run_job(struct pqm_gw_ocsp *o, struct job *j)
{
    struct pqm_ocsp_result r = {0};
    pqm__ocsp_query(j->url, j->leaf, j->issuer, o->o.timeout, &r);
    pthread_mutex_lock(&o->mu);
    o->stats.queries++;
    if (r.status == PQM_OCSP_ERROR)
        o->stats.failures++;
    cache_store(o, j->fp, &r);
    pthread_mutex_unlock(&o->mu);
    if (r.status == PQM_OCSP_ERROR)
        pqm__gw_say("warning", "OCSP %s: %s", j->url, r.error);
    pqm__ocsp_result_clear(&r);
    X509_free(j->leaf);
    X509_free(j->issuer);
    if (o->o.wake != NULL)
        o->o.wake(o->o.wake_arg);
}

/* --- stapling ------------------------------------------------------------------------ */

static void staple_clear(struct pqm_gw_ocsp *o)
{
    X509_free(o->st_leaf);
    X509_free(o->st_issuer);
    free(o->st_der);
    o->st_leaf = o->st_issuer = NULL;
    o->st_der = NULL;
    o->st_len = 0;
    o->st_next_update = 0;
    o->st_url[0] = '\0';
}

int pqm__gw_ocsp_staple_check(struct pqm_gw_ocsp *o, X509 *leaf, X509 *issuer,
                              struct pqm_err *e)
{
    if (o == NULL || o->o.staple_mode != PQM_GW_STAPLE_ON)
        return 0;
    char buf[PQM_OCSP_URL_MAX];
    if (issuer == NULL)
        return pqm__err_set(e, "ocsp_stapling is on, but the cert file holds no issuer "
                               "certificate after the leaf (use the chain file)");
    if (leaf == NULL || url_for(o, leaf, buf, sizeof(buf)) == NULL)
        return pqm__err_set(e, "ocsp_stapling is on, but the certificate names no OCSP "
                               "responder and no ocsp_responder is configured");
    return 0;
}

void pqm__gw_ocsp_staple_target(struct pqm_gw_ocsp *o, X509 *leaf, X509 *issuer)
{
    if (o == NULL || o->o.staple_mode == PQM_GW_STAPLE_OFF)
        return;
    char buf[PQM_OCSP_URL_MAX];
    const char *url = leaf != NULL ? url_for(o, leaf, buf, sizeof(buf)) : NULL;
    if (url == NULL || issuer == NULL) {
        pthread_mutex_lock(&o->mu);
        staple_clear(o);
        pthread_mutex_unlock(&o->mu);
        return;
    }
    pthread_mutex_lock(&o->mu);
    int same = o->st_leaf != NULL && X509_cmp(o->st_leaf, leaf) == 0 &&
               strcmp(o->st_url, url) == 0;
    if (!same && X509_up_ref(leaf) == 1) {
        if (X509_up_ref(issuer) != 1) {
            X509_free(leaf);
        } else {
            staple_clear(o);
            o->st_leaf = leaf;
            o->st_issuer = issuer;
            snprintf(o->st_url, sizeof(o->st_url), "%s", url);
            o->st_due = pqm__mono_seconds();
            o->st_backoff = STAPLE_RETRY_MIN;
            pthread_cond_broadcast(&o->cv);
        }
    }
    pthread_mutex_unlock(&o->mu);
}

int pqm__gw_ocsp_staple_copy(struct pqm_gw_ocsp *o, X509 *leaf, unsigned char **der, long *len)
{
    int rc = 0;
    pthread_mutex_lock(&o->mu);
    if (o->st_der != NULL && o->st_leaf != NULL && X509_cmp(o->st_leaf, leaf) == 0 &&
        (o->st_next_update == 0 || (int64_t)time(NULL) < o->st_next_update) &&
        (*der = OPENSSL_malloc(o->st_len)) != NULL) {
        memcpy(*der, o->st_der, o->st_len);
        *len = (long)o->st_len;
        rc = 1;
    }
    pthread_mutex_unlock(&o->mu);
    return rc;
}

/* When to ask again after an answer: half-way to its nextUpdate, and not sooner than
 * STAPLE_RETRY_MIN (a responder that answers with a very short validity is not asked in
 * a loop). */
static double refresh_in(const struct pqm_ocsp_result *r)
{
    if (r->next_update <= 0)
        return STAPLE_REFRESH_NO_NEXT;
    int64_t now = (int64_t)time(NULL);
    double half = (double)(r->next_update - r->this_update) / 2.0;
    double until = (double)(r->this_update - now) + half;
    return until < STAPLE_RETRY_MIN ? STAPLE_RETRY_MIN : until;
}

/* Called with mu held and st_busy set; releases and retakes mu around the query. */
static void run_staple(struct pqm_gw_ocsp *o)
{
    X509 *leaf = o->st_leaf, *issuer = o->st_issuer;
    char url[PQM_OCSP_URL_MAX];
    snprintf(url, sizeof(url), "%s", o->st_url);
    if (X509_up_ref(leaf) != 1) {
        o->st_due = pqm__mono_seconds() + STAPLE_RETRY_MIN;
        return;
    }
    if (X509_up_ref(issuer) != 1) {
        X509_free(leaf);
        o->st_due = pqm__mono_seconds() + STAPLE_RETRY_MIN;
        return;
    }
    pthread_mutex_unlock(&o->mu);
    struct pqm_ocsp_result r = {0};
    int rc = pqm__ocsp_query(url, leaf, issuer, o->o.timeout, &r);
    pthread_mutex_lock(&o->mu);
    o->stats.staple_refreshes++;
    if (o->st_leaf == NULL || X509_cmp(o->st_leaf, leaf) != 0) {
        /* the certificate changed meanwhile: the new target has its own schedule */
    } else if (rc == 0 && r.der != NULL) {
        free(o->st_der);
        o->st_der = r.der;
        o->st_len = r.der_len;
        r.der = NULL;
        o->st_next_update = r.next_update;
        o->st_due = pqm__mono_seconds() + refresh_in(&r);
        o->st_backoff = STAPLE_RETRY_MIN;
        if (r.status != PQM_OCSP_GOOD)
            pqm__gw_say("warning", "OCSP %s says the gateway's own certificate is %s", url,
                        r.status == PQM_OCSP_REVOKED ? "revoked" : "unknown");
    } else {
        /* keep serving the last good answer until its nextUpdate */
        o->st_due = pqm__mono_seconds() + o->st_backoff;
        o->st_backoff = o->st_backoff * 2 > STAPLE_RETRY_MAX ? STAPLE_RETRY_MAX : o->st_backoff * 2;
        pqm__gw_say("warning", "OCSP stapling: %s (%s; next try in %.0f s)", r.error, url,
                    o->st_due - pqm__mono_seconds());
    }
    pqm__ocsp_result_clear(&r);
    X509_free(leaf);
    X509_free(issuer);
}

/* --- threads ------------------------------------------------------------------------- */

static void wait_until(struct pqm_gw_ocsp *o, double due)
{
    if (due <= 0) {
        pthread_cond_wait(&o->cv, &o->mu);
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double left = due - pqm__mono_seconds();
    if (left <= 0)
        return;
    if (left > 3600)
        left = 3600;
    ts.tv_sec += (time_t)left;
    ts.tv_nsec += (long)((left - (double)(time_t)left) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&o->cv, &o->mu, &ts);
}

static void *thread_main(void *arg)
{
    struct pqm_gw_ocsp *o = arg;
    pthread_mutex_lock(&o->mu);
    while (!o->stop) {
        if (o->qlen > 0) {
            struct job j = o->queue[o->qhead];
            o->qhead = (o->qhead + 1) % QUEUE_MAX;
            o->qlen--;
            pthread_mutex_unlock(&o->mu);
            run_job(o, &j);
            pthread_mutex_lock(&o->mu);
            continue;
        }
        if (o->st_leaf != NULL && !o->st_busy && pqm__mono_seconds() >= o->st_due) {
            o->st_busy = 1;
            run_staple(o);
            o->st_busy = 0;
            continue;
        }
        wait_until(o, o->st_leaf != NULL && !o->st_busy ? o->st_due : 0);
    }
    pthread_mutex_unlock(&o->mu);
    return NULL;
}

struct pqm_gw_ocsp *pqm__gw_ocsp_new(const struct pqm_gw_ocsp_opts *opts, struct pqm_err *e)
{
    struct pqm_gw_ocsp *o = calloc(1, sizeof(*o));
    if (o == NULL || (o->cache = calloc(CACHE_SLOTS, sizeof(*o->cache))) == NULL) {
        free(o);
        pqm__err_set(e, "out of memory");
        return NULL;
    }
    o->o = *opts;
    snprintf(o->responder, sizeof(o->responder), "%s", opts->responder != NULL ? opts->responder : "");
    o->o.responder = o->responder;
    if (o->o.timeout <= 0)
        o->o.timeout = 5;
    if (o->o.cache_seconds <= 0)
        o->o.cache_seconds = 300;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&o->mu, NULL);
    pthread_cond_init(&o->cv, &ca);
    pthread_condattr_destroy(&ca);
    for (int i = 0; i < THREADS; i++) {
        if (pthread_create(&o->threads[i], NULL, thread_main, o) != 0) {
            pqm__err_set(e, "cannot start the OCSP threads");
            pqm__gw_ocsp_free(o);
            return NULL;
        }
        o->nthreads++;
    }
    return o;
}

void pqm__gw_ocsp_free(struct pqm_gw_ocsp *o)
{
    if (o == NULL)
        return;
    pthread_mutex_lock(&o->mu);
    o->stop = 1;
    pthread_cond_broadcast(&o->cv);
    pthread_mutex_unlock(&o->mu);
    for (int i = 0; i < o->nthreads; i++)
        pthread_join(o->threads[i], NULL);
    while (o->qlen > 0) {
        struct job *j = &o->queue[o->qhead];
        X509_free(j->leaf);
        X509_free(j->issuer);
        o->qhead = (o->qhead + 1) % QUEUE_MAX;
        o->qlen--;
    }
    staple_clear(o);
    pthread_cond_destroy(&o->cv);
    pthread_mutex_destroy(&o->mu);
    free(o->cache);
    free(o);
}

void pqm__gw_ocsp_stats(struct pqm_gw_ocsp *o, struct pqm_gw_ocsp_stats *s)
{
    memset(s, 0, sizeof(*s));
    if (o == NULL)
        return;
    pthread_mutex_lock(&o->mu);
    *s = o->stats;
    s->staple_ok = o->st_der != NULL &&
                   (o->st_next_update == 0 || (int64_t)time(NULL) < o->st_next_update);
    s->staple_next_update = o->st_next_update;
    pthread_mutex_unlock(&o->mu);
}
