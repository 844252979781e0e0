/* Signed answers kept for requests without a nonce (RFC 5019 2.2: a responder may give
 * pre-produced responses), one cache per worker thread.
 *
 * An answer is found by the SHA-256 of the request's DER, and given again while at least
 * half its validity is left. The cache is emptied whenever anything could make a kept
 * answer untrue: the inventory changed (any commit, such as `pqmtls pki revoke`: the
 * server asks SQLite's data_version before every answer) or the signers changed. A
 * request with a nonce is never answered from it, nor kept. A fixed number of slots in
 * sets of four (a request may be in any slot of its set; a new answer replaces the one
 * of its set used longest ago), so the memory is bounded. */
#ifndef PQM_OCSP_CACHE_H
#define PQM_OCSP_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "ocsp/responder.h"

#define PQM_OCSP_CACHE_REQ_MAX 1024      /* larger requests are not kept */
#define PQM_OCSP_CACHE_ANSWER_MAX 32768  /* larger answers are not kept */
#define PQM_OCSP_CACHE_WAYS 4

struct pqm_ocsp_cached {
    uint64_t epoch;
    unsigned char key[32];
    unsigned char *der;
    size_t len;
    int64_t this_update, next_update;
    uint64_t used; /* when last given or kept, on the cache's clock */
};

struct pqm_ocsp_cache {
    struct pqm_ocsp_cached *slots;
    size_t n;       /* a multiple of PQM_OCSP_CACHE_WAYS, or smaller than it */
    uint64_t clock;
    uint64_t epoch; /* slots of an older epoch are empty */
    uint64_t hits, misses;
};

/* About N slots (0: a cache that keeps nothing). */
int pqm__ocsp_cache_init(struct pqm_ocsp_cache *c, size_t n);
void pqm__ocsp_cache_free(struct pqm_ocsp_cache *c);
/* Forgets every answer. */
void pqm__ocsp_cache_flush(struct pqm_ocsp_cache *c);
/* The answer kept for the request REQ that may still be given at NOW, or NULL. */
const struct pqm_ocsp_cached *pqm__ocsp_cache_get(struct pqm_ocsp_cache *c,
                                                  const unsigned char *req, size_t len,
                                                  int64_t now);
/* Keeps a copy of A, the answer to REQ, when it is successful, for no nonce, and small
 * enough. */
void pqm__ocsp_cache_put(struct pqm_ocsp_cache *c, const unsigned char *req, size_t len,
                         const struct pqm_ocsp_answer *a);

#endif
