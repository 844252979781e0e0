/* A byte buffer with a hard upper bound fixed at creation: input from the network
 * never grows it past that bound. Data lives in [off, off + len). */
#ifndef PQM_UTIL_BUF_H
#define PQM_UTIL_BUF_H

#include <stddef.h>

struct pqm_buf {
    unsigned char *data;
    size_t off, len, cap, max;
};

void pqm__buf_init(struct pqm_buf *b, size_t max);
void pqm__buf_free(struct pqm_buf *b);
/* Bytes that may still be appended before MAX is reached. */
size_t pqm__buf_room(const struct pqm_buf *b);
/* Appends N bytes; -1 (nothing appended) when that would pass MAX or memory runs out. */
int pqm__buf_add(struct pqm_buf *b, const void *p, size_t n);
/* Appends formatted text of less than 1024 bytes (longer output fails: use pqm__buf_add
 * for pieces that may be long, such as a request target). */
int pqm__buf_addf(struct pqm_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drops N bytes from the front. */
void pqm__buf_consume(struct pqm_buf *b, size_t n);
/* Where the data starts; NULL for a buffer that never held any (not NULL + 0, which C
 * leaves undefined). */
static inline unsigned char *pqm__buf_head(const struct pqm_buf *b)
{
    return b->data != NULL ? b->data + b->off : NULL;
}
/* Makes room for at least N bytes at the end (moving data to the front first) and
 * returns where they go, or NULL past MAX; pqm__buf_commit(b, n) then counts them. */
unsigned char *pqm__buf_reserve(struct pqm_buf *b, size_t n);
void pqm__buf_commit(struct pqm_buf *b, size_t n);

/* Spare memory blocks, per thread: an event loop whose connections take buffers for a
 * request and give them back when idle reuses the same blocks instead of going to
 * malloc each time. pqm__buf_release() frees B's memory like pqm__buf_free(), keeping
 * the block (of PQM_BUF_SPARE_MAX bytes at most) for the next buffer of this thread
 * that needs memory; pqm__buf_spare_drain() frees the thread's spare blocks (before it
 * exits). At most PQM_BUF_SPARES blocks are kept. */
#define PQM_BUF_SPARES 64
#define PQM_BUF_SPARE_MAX (64 * 1024)
void pqm__buf_release(struct pqm_buf *b);
void pqm__buf_spare_drain(void);

#endif
