/* Gateway metrics (see metrics.h). */
#include "gateway/metrics.h"

#include <string.h>

const char *const pqm__metrics_reasons[PQM_M_REASONS] = {
    "no_certificate", "unknown_ca",  "expired",    "not_yet_valid",   "wrong_eku",
    "name_constraints", "revoked",   "crl_missing", "crl_expired",    "not_pq",
    "protocol",       "no_shared_group", "bad_certificate", "handshake", "timeout",
    "ocsp_unknown",   "ocsp_unavailable", "other",
};

const char *const pqm__metrics_groups[PQM_M_GROUPS] = {
    "X25519MLKEM768", "SecP256r1MLKEM768", "SecP384r1MLKEM1024", "X25519",
    "secp256r1",      "secp384r1",         "X448",               "other",
};

/* Upper bounds of the upstream latency buckets, in seconds. */
static const double bounds[PQM_M_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                             0.1,    0.25,  0.5,    1,     2.5,   5,     10};

static size_t index_of(const char *const *names, size_t n, const char *name)
{
    for (size_t i = 0; i + 1 < n; i++)
        if (name != NULL && strcmp(names[i], name) == 0)
            return i;
    return n - 1; /* "other" */
}

void pqm__metrics_handshake(struct pqm_metrics *m, const char *reason_code, const char *group,
                            int resumed, int64_t not_after)
{
    if (reason_code != NULL) {
        atomic_fetch_add_explicit(
            &m->handshakes_refused[index_of(pqm__metrics_reasons, PQM_M_REASONS, reason_code)],
            1, memory_order_relaxed);
        return;
    }
    atomic_fetch_add_explicit(&m->handshakes_ok, 1, memory_order_relaxed);
    if (resumed)
        atomic_fetch_add_explicit(&m->resumptions, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->groups[index_of(pqm__metrics_groups, PQM_M_GROUPS, group)], 1,
                              memory_order_relaxed);
    int64_t cur = atomic_load_explicit(&m->soonest_expiry, memory_order_relaxed);
    while (not_after > 0 && (cur == 0 || not_after < cur) &&
           !atomic_compare_exchange_weak_explicit(&m->soonest_expiry, &cur, not_after,
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

void pqm__metrics_request(struct pqm_metrics *m, int status, double upstream_seconds)
{
    if (status >= 100 && status < 600)
        atomic_fetch_add_explicit(&m->requests[status], 1, memory_order_relaxed);
    if (upstream_seconds < 0)
        return;
    size_t b = 0;
    while (b < PQM_M_BUCKETS && upstream_seconds > bounds[b])
        b++;
    atomic_fetch_add_explicit(&m->upstream_bucket[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->upstream_sum_us, (uint_fast64_t)(upstream_seconds * 1e6),
                              memory_order_relaxed);
}

static uint64_t sum(struct pqm_metrics *const *blocks, size_t n, size_t offset)
{
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += atomic_load_explicit(
            (atomic_uint_fast64_t *)((char *)blocks[i] + offset), memory_order_relaxed);
    return total;
}

#define SUM(field) sum(blocks, n, offsetof(struct pqm_metrics, field))

int pqm__metrics_render(struct pqm_metrics *const *blocks, size_t n, int ready,
                        struct pqm_buf *out)
{
    int rc = 0;
    rc |= pqm__buf_addf(out, "# HELP pqmtls_up Whether the gateway is serving (0 while it "
                             "drains).\n# TYPE pqmtls_up gauge\npqmtls_up %d\n",
                        ready);
    rc |= pqm__buf_addf(out, "# HELP pqmtls_handshakes_total TLS handshakes by result and "
                             "reason.\n# TYPE pqmtls_handshakes_total counter\n");
    rc |= pqm__buf_addf(out, "pqmtls_handshakes_total{result=\"success\",reason=\"\"} %llu\n",
                        (unsigned long long)SUM(handshakes_ok));
    for (size_t r = 0; r < PQM_M_REASONS; r++)
        rc |= pqm__buf_addf(out,
                            "pqmtls_handshakes_total{result=\"refused\",reason=\"%s\"} %llu\n",
                            pqm__metrics_reasons[r],
                            (unsigned long long)SUM(handshakes_refused[r]));
    rc |= pqm__buf_addf(out, "# HELP pqmtls_resumptions_total Handshakes that resumed a "
                             "session.\n# TYPE pqmtls_resumptions_total counter\n"
                             "pqmtls_resumptions_total %llu\n",
                        (unsigned long long)SUM(resumptions));
    rc |= pqm__buf_addf(out, "# HELP pqmtls_negotiated_groups_total Completed handshakes by "
                             "key exchange group.\n# TYPE pqmtls_negotiated_groups_total counter\n");
    for (size_t g = 0; g < PQM_M_GROUPS; g++)
        rc |= pqm__buf_addf(out, "pqmtls_negotiated_groups_total{group=\"%s\"} %llu\n",
                            pqm__metrics_groups[g], (unsigned long long)SUM(groups[g]));
    long active = 0;
    for (size_t i = 0; i < n; i++)
        active += atomic_load_explicit(&blocks[i]->connections, memory_order_relaxed);
    rc |= pqm__buf_addf(out, "# HELP pqmtls_connections_active Open client connections.\n"
                             "# TYPE pqmtls_connections_active gauge\n"
                             "pqmtls_connections_active %ld\n",
                        active);
    rc |= pqm__buf_addf(out, "# HELP pqmtls_requests_total Requests answered, by status.\n"
                             "# TYPE pqmtls_requests_total counter\n");
    for (int s = 100; s < 600; s++) {
        uint64_t v = SUM(requests[s]);
        if (v > 0)
            rc |= pqm__buf_addf(out, "pqmtls_requests_total{code=\"%d\"} %llu\n", s,
                                (unsigned long long)v);
    }
    rc |= pqm__buf_addf(out, "# HELP pqmtls_upstream_latency_seconds Time from sending a "
                             "request to the upstream to its first response byte.\n"
                             "# TYPE pqmtls_upstream_latency_seconds histogram\n");
    uint64_t cumulative = 0;
    for (size_t b = 0; b <= PQM_M_BUCKETS; b++) {
        cumulative += SUM(upstream_bucket[b]);
        if (b < PQM_M_BUCKETS)
            rc |= pqm__buf_addf(out, "pqmtls_upstream_latency_seconds_bucket{le=\"%g\"} %llu\n",
                                bounds[b], (unsigned long long)cumulative);
        else
            rc |= pqm__buf_addf(out, "pqmtls_upstream_latency_seconds_bucket{le=\"+Inf\"} %llu\n",
                                (unsigned long long)cumulative);
    }
    rc |= pqm__buf_addf(out, "pqmtls_upstream_latency_seconds_sum %.6f\n"
                             "pqmtls_upstream_latency_seconds_count %llu\n",
                        (double)SUM(upstream_sum_us) / 1e6, (unsigned long long)cumulative);
    int64_t soonest = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t v = atomic_load_explicit(&blocks[i]->soonest_expiry, memory_order_relaxed);
        if (v > 0 && (soonest == 0 || v < soonest))
            soonest = v;
    }
    rc |= pqm__buf_addf(out, "# HELP pqmtls_client_cert_soonest_expiry_timestamp_seconds "
                             "The earliest notAfter of the client certificates seen (0: none "
                             "yet).\n# TYPE pqmtls_client_cert_soonest_expiry_timestamp_seconds "
                             "gauge\npqmtls_client_cert_soonest_expiry_timestamp_seconds %lld\n",
                        (long long)soonest);
    return rc != 0 ? -1 : 0;
}
