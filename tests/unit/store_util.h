/* A fresh inventory for the tests of the store and of what keeps its settings there.
 * Include after <cmocka.h>. */
#ifndef PQM_TESTS_UNIT_STORE_UTIL_H
#define PQM_TESTS_UNIT_STORE_UTIL_H

#include <limits.h>

#include "pki/store.h"
#include "unit_util.h"

/* A test's inventory: DIR/pki.db (PATH), open as S. */
struct tu_store {
    char *dir;
    char path[PATH_MAX];
    struct pqm_store *s;
};

/* DIR/pki.db in a new temporary directory *DIR (malloc'd: tu_rmtree and free it); its
 * path into PATH. Fails the test when it cannot be made. */
static inline struct pqm_store *tu_store_new(const char *tag, char **dir, char *path,
                                             size_t pathlen)
{
    *dir = tu_mkdtemp(tag);
    assert_non_null(*dir);
    snprintf(path, pathlen, "%s/pki.db", *dir);
    struct pqm_err e = {{0}};
    struct pqm_store *s = pqm__store_open(path, 1, &e);
    if (s == NULL)
        fail_msg("pqm__store_open: %s", pqm__err_str(&e));
    return s;
}

/* cmocka setup and teardown giving each test a struct tu_store in *STATE. */
static inline int tu_store_setup(void **state)
{
    struct tu_store *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    t->s = tu_store_new("store", &t->dir, t->path, sizeof(t->path));
    *state = t;
    return 0;
}

static inline int tu_store_teardown(void **state)
{
    struct tu_store *t = *state;
    pqm__store_close(t->s);
    tu_rmtree(t->dir);
    free(t->dir);
    free(t);
    return 0;
}

#endif
