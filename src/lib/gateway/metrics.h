/* Gateway metrics: each worker counts in its own block (relaxed atomics, no sharing on
 * the request path); the admin listener sums the blocks when it is scraped and writes
 * the Prometheus text format. */
#ifndef PQM_GATEWAY_METRICS_H
#define PQM_GATEWAY_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define PQM_M_REASONS 18
#define PQM_M_GROUPS 8
#define PQM_M_BUCKETS 14

struct pqm_metrics {
    atomic_uint_fast64_t handshakes_ok;
    atomic_uint_fast64_t handshakes_refused[PQM_M_REASONS];
    atomic_uint_fast64_t resumptions;
    atomic_uint_fast64_t groups[PQM_M_GROUPS];
    atomic_uint_fast64_t requests[600]; /* by status code */
    atomic_uint_fast64_t upstream_bucket[PQM_M_BUCKETS + 1]; /* the last: +Inf */
    atomic_uint_fast64_t upstream_sum_us;
    atomic_int_fast64_t soonest_expiry; /* unix time; 0: none seen */
    atomic_int connections;
};

/* The refusal reasons and groups metrics know, in the order of their counters. */
extern const char *const pqm__metrics_reasons[PQM_M_REASONS];
extern const char *const pqm__metrics_groups[PQM_M_GROUPS];

void pqm__metrics_handshake(struct pqm_metrics *m, const char *reason_code, const char *group,
                            int resumed, int64_t not_after);
void pqm__metrics_request(struct pqm_metrics *m, int status, double upstream_seconds);
/* The sum of N blocks in the Prometheus text format (version 0.0.4) into OUT. */
int pqm__metrics_render(struct pqm_metrics *const *blocks, size_t n, int ready,
                        struct pqm_buf *out);

#endif
