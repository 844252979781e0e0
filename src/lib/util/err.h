/* Error reporting: one bounded message per handle, with OpenSSL's error queue folded in. */
#ifndef PQM_UTIL_ERR_H
#define PQM_UTIL_ERR_H

#include <stddef.h>

#define PQM_ERR_MAX 1024

struct pqm_err {
    char msg[PQM_ERR_MAX];
};

/* Sets the message (printf format). Always returns -1, so `return pqm__err_set(...)`. */
int pqm__err_set(struct pqm_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same, then appends ": " and the most relevant entry of OpenSSL's error queue, and clears it. */
int pqm__err_ossl(struct pqm_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Copies another handle's message, prefixed (may be NULL). Returns -1. */
int pqm__err_copy(struct pqm_err *dst, const char *prefix, const char *src);
void pqm__err_clear(struct pqm_err *e);
const char *pqm__err_str(const struct pqm_err *e);

/* Guards that keep the happy path straight; each jumps to the function's cleanup label. */
#define GUARD(x)                                                                                   \
    do {                                                                                           \
        if ((x) != 0)                                                                              \
            goto cleanup;                                                                          \
    } while (0)
#define ENSURE(cond, e, ...)                                                                       \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            pqm__err_set((e), __VA_ARGS__);                                                        \
            goto cleanup;                                                                          \
        }                                                                                          \
    } while (0)
/* For OpenSSL calls that return 1 (or a non-NULL pointer) on success. */
#define GUARD_OSSL(cond, e, ...)                                                                   \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            pqm__err_ossl((e), __VA_ARGS__);                                                       \
            goto cleanup;                                                                          \
        }                                                                                          \
    } while (0)

#endif
