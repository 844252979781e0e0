/* Answers kept for requests without a nonce (see cache.h). */
#include "ocsp/cache.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

int pqm__ocsp_cache_init(struct pqm_ocsp_cache *c, size_t n)
{
    memset(c, 0, sizeof(*c));
    c->epoch = 1;
    if (n == 0)
        return 0;
    if (n > PQM_OCSP_CACHE_WAYS)
        n -= n % PQM_OCSP_CACHE_WAYS; /* whole sets */
    c->slots = calloc(n, sizeof(*c->slots));
    if (c->slots == NULL)
        return -1;
    c->n = n;
    return 0;
}

void pqm__ocsp_cache_free(struct pqm_ocsp_cache *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->slots[i].der);
    free(c->slots);
    memset(c, 0, sizeof(*c));
}

void pqm__ocsp_cache_flush(struct pqm_ocsp_cache *c)
{
    c->epoch++; /* every slot is now of an older epoch: empty (its memory reused later) */
}

static int key_of(const unsigned char *req, size_t len, unsigned char key[32])
{
    unsigned int n = 0;
    return EVP_Digest(req, len, key, &n, EVP_sha256(), NULL) == 1 && n == 32 ? 0 : -1;
}

/* The set of WAYS slots a key may be in (fewer when the cache is that small). */
static struct pqm_ocsp_cached *set_of(struct pqm_ocsp_cache *c, const unsigned char key[32],
                                      size_t *ways)
{
    uint64_t h;
    memcpy(&h, key, sizeof(h));
    *ways = c->n < PQM_OCSP_CACHE_WAYS ? c->n : PQM_OCSP_CACHE_WAYS;
    return &c->slots[h % (c->n / *ways) * *ways];
}

static int fresh(const struct pqm_ocsp_cache *c, const struct pqm_ocsp_cached *s, int64_t now)
{
    /* Half its validity left at least: a client that caches it until nextUpdate is not
     * handed an answer about to expire. */
    return s->epoch == c->epoch && now >= s->this_update &&
           now - s->this_update <= (s->next_update - s->this_update) / 2;
}

const struct pqm_ocsp_cached *pqm__ocsp_cache_get(struct pqm_ocsp_cache *c,
                                                  const unsigned char *req, size_t len,
                                                  int64_t now)
{
    unsigned char key[32];
    if (c->n == 0 || len == 0 || len > PQM_OCSP_CACHE_REQ_MAX || key_of(req, len, key) != 0)
        return NULL;
    size_t ways = 0;
    struct pqm_ocsp_cached *set = set_of(c, key, &ways);
    for (size_t i = 0; i < ways; i++)
        if (memcmp(set[i].key, key, sizeof(key)) == 0 && fresh(c, &set[i], now)) {
            set[i].used = ++c->clock;
            c->hits++;
            return &set[i];
        }
    c->misses++;
    return NULL;
}

/* Where a new answer goes in SET: the slot of the same request, else one no longer
 * fresh, else the one used longest ago. */
static struct pqm_ocsp_cached *victim(struct pqm_ocsp_cache *c, struct pqm_ocsp_cached *set,
                                      size_t ways, const unsigned char key[32], int64_t now)
{
    struct pqm_ocsp_cached *v = &set[0];
    for (size_t i = 0; i < ways; i++) {
        if (memcmp(set[i].key, key, 32) == 0 || !fresh(c, &set[i], now))
            return &set[i];
        if (set[i].used < v->used)
            v = &set[i];
    }
    return v;
}

void pqm__ocsp_cache_put(struct pqm_ocsp_cache *c, const unsigned char *req, size_t len,
                         const struct pqm_ocsp_answer *a)
{
    unsigned char key[32];
    if (c->n == 0 || a->status != OCSP_RESPONSE_STATUS_SUCCESSFUL || a->nonce || len == 0 ||
        len > PQM_OCSP_CACHE_REQ_MAX || a->len > PQM_OCSP_CACHE_ANSWER_MAX ||
        key_of(req, len, key) != 0)
        return;
    size_t ways = 0;
    struct pqm_ocsp_cached *set = set_of(c, key, &ways);
    struct pqm_ocsp_cached *s = victim(c, set, ways, key, a->this_update);
    unsigned char *der = realloc(s->der, a->len);
    if (der == NULL)
        return; /* the slot keeps what it had, of whatever epoch */
    memcpy(der, a->der, a->len);
    s->der = der;
    s->len = a->len;
    memcpy(s->key, key, sizeof(key));
    s->epoch = c->epoch;
    s->this_update = a->this_update;
    s->next_update = a->next_update;
    s->used = ++c->clock;
}
