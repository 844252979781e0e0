#include "util/strlist.h"

#include <stdlib.h>
#include <string.h>

int pqm__strv_push(char **v, size_t *n, size_t max, const char *s, const char *what,
                   struct pqm_err *e)
{
    if (*n == max)
        return pqm__err_set(e, "at most %zu %s", max, what);
    if ((v[*n] = strdup(s)) == NULL)
        return pqm__err_set(e, "out of memory");
    (*n)++;
    return 0;
}

void pqm__strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
}

int pqm__strlist_add(struct pqm_strlist *l, const char *s, struct pqm_err *e)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **v = realloc(l->v, cap * sizeof(*v));
        if (v == NULL)
            return pqm__err_set(e, "out of memory");
        l->v = v;
        l->cap = cap;
    }
    if ((l->v[l->n] = strdup(s)) == NULL)
        return pqm__err_set(e, "out of memory");
    l->n++;
    return 0;
}

int pqm__strlist_has(const struct pqm_strlist *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i], s) == 0)
            return 1;
    return 0;
}

void pqm__strlist_free(struct pqm_strlist *l)
{
    pqm__strv_free(l->v, l->n);
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}
