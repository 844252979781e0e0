#include "util/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pqm__buf_init(struct pqm_buf *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
}

void pqm__buf_free(struct pqm_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->off = b->len = b->cap = 0;
}

size_t pqm__buf_room(const struct pqm_buf *b)
{
    return b->len >= b->max ? 0 : b->max - b->len;
}

struct spare {
    unsigned char *data;
    size_t cap;
};
static __thread struct spare spares[PQM_BUF_SPARES];
static __thread size_t nspares;

void pqm__buf_release(struct pqm_buf *b)
{
    if (b->data != NULL && b->cap <= PQM_BUF_SPARE_MAX && nspares < PQM_BUF_SPARES) {
        spares[nspares++] = (struct spare){b->data, b->cap};
        b->data = NULL;
    }
    pqm__buf_free(b);
}

void pqm__buf_spare_drain(void)
{
    while (nspares > 0)
        free(spares[--nspares].data);
}

unsigned char *pqm__buf_reserve(struct pqm_buf *b, size_t n)
{
    if (n > pqm__buf_room(b))
        return NULL;
    if (b->data == NULL && nspares > 0) { /* the most recently released block */
        nspares--;
        b->data = spares[nspares].data;
        b->cap = spares[nspares].cap;
        b->off = b->len = 0;
    }
    if (b->off + b->len + n <= b->cap)
        return b->data + b->off + b->len;
    if (b->off > 0) { /* slide the data to the front before growing */
        memmove(b->data, b->data + b->off, b->len);
        b->off = 0;
        if (b->len + n <= b->cap)
            return b->data + b->len;
    }
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n)
        cap *= 2;
    if (cap > b->max)
        cap = b->max;
    unsigned char *d = realloc(b->data, cap);
    if (d == NULL)
        return NULL;
    b->data = d;
    b->cap = cap;
    return b->data + b->len;
}

void pqm__buf_commit(struct pqm_buf *b, size_t n)
{
    b->len += n;
}

int pqm__buf_add(struct pqm_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    unsigned char *dst = pqm__buf_reserve(b, n);
    if (dst == NULL)
        return -1;
    memcpy(dst, p, n);
    b->len += n;
    return 0;
}

int pqm__buf_addf(struct pqm_buf *b, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n < sizeof(tmp))
        return pqm__buf_add(b, tmp, (size_t)n);
    /* Longer than the stack buffer (a PEM, a long list): formatted again on the heap. */
    char *big = malloc((size_t)n + 1);
    if (big == NULL)
        return -1;
    va_start(ap, fmt);
    int m = vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = m == n ? pqm__buf_add(b, big, (size_t)n) : -1;
    free(big);
    return rc;
}

void pqm__buf_consume(struct pqm_buf *b, size_t n)
{
    if (n >= b->len) {
        b->off = b->len = 0;
        return;
    }
    b->off += n;
    b->len -= n;
}
