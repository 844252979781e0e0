/* Lists of copied strings. */
#ifndef PQM_UTIL_STRLIST_H
#define PQM_UTIL_STRLIST_H

#include <stddef.h>

#include "util/err.h"

/* A bounded array of copies (names, subtrees): at most MAX, WHAT names them in errors. */
int pqm__strv_push(char **v, size_t *n, size_t max, const char *s, const char *what,
                   struct pqm_err *e);
void pqm__strv_free(char **v, size_t n);

/* A growing list of copies. Start it zeroed. */
struct pqm_strlist {
    char **v;
    size_t n, cap;
};
int pqm__strlist_add(struct pqm_strlist *l, const char *s, struct pqm_err *e);
/* 1 when L holds S. */
int pqm__strlist_has(const struct pqm_strlist *l, const char *s);
void pqm__strlist_free(struct pqm_strlist *l);

#endif
