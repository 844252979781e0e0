/* Passphrases held in memory: bounded, NUL-terminated, wiped when dropped. */
#ifndef PQM_UTIL_SECRET_H
#define PQM_UTIL_SECRET_H

#include <stddef.h>

#include "util/err.h"

#define PQM_PASS_MAX 1024

struct pqm_secret {
    char *buf; /* NULL when unset */
    size_t len;
};

/* Copies V (1 to PQM_PASS_MAX bytes) into S, wiping what S held. */
int pqm__secret_set(struct pqm_secret *s, const char *v, size_t len, struct pqm_err *e);
void pqm__secret_clear(struct pqm_secret *s);

#endif
