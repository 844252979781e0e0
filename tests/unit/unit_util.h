/* Helpers shared by the unit tests: temporary directories and small file operations.
 * Everything here is static inline so that a test that uses only part of it still
 * compiles clean under -Werror. Include after <cmocka.h>. */
#ifndef PQM_TESTS_UNIT_UTIL_H
#define PQM_TESTS_UNIT_UTIL_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A fresh directory under /tmp (malloc'd path; tu_rmtree + free it). */
static inline char *tu_mkdtemp(const char *tag)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "/tmp/pqmtls-unit-%s-XXXXXX", tag);
    if (mkdtemp(buf) == NULL)
        return NULL;
    return strdup(buf);
}

/* Removes a tree the test made; its own code, so that cleanup never depends on the
 * library under test. */
static inline void tu_rmtree(const char *path)
{
    struct stat st;
    if (path == NULL || lstat(path, &st) != 0)
        return;
    if (!S_ISDIR(st.st_mode)) {
        unlink(path);
        return;
    }
    DIR *d = opendir(path);
    if (d != NULL) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            size_t n = strlen(path) + strlen(de->d_name) + 2;
            char *child = malloc(n);
            if (child == NULL)
                continue;
            snprintf(child, n, "%s/%s", path, de->d_name);
            tu_rmtree(child);
            free(child);
        }
        closedir(d);
    }
    rmdir(path);
}

static inline int tu_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static inline int tu_write(const char *path, const char *data)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return -1;
    size_t len = strlen(data);
    int ok = fwrite(data, 1, len, f) == len;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

/* The whole file, NUL-terminated (malloc'd), or NULL. */
static inline char *tu_read(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    while (buf != NULL) {
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
        if (n == cap) {
            char *nb = realloc(buf, cap * 2 + 1);
            if (nb == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf != NULL)
        buf[n] = '\0';
    return buf;
}

/* Asserts that HAYSTACK contains NEEDLE, printing both when not. */
#define tu_assert_contains(haystack, needle)                                                       \
    do {                                                                                           \
        const char *tu_h_ = (haystack), *tu_n_ = (needle);                                         \
        if (tu_h_ == NULL || strstr(tu_h_, tu_n_) == NULL)                                         \
            fail_msg("expected \"%s\" to contain \"%s\"", tu_h_ != NULL ? tu_h_ : "(null)",        \
                     tu_n_);                                                                       \
    } while (0)

/* Table rows: report every failing row, then fail the test once at the end. */
#define TU_ROW_FAIL(nfail, ...)                                                                    \
    do {                                                                                           \
        print_error(__VA_ARGS__);                                                                  \
        print_error("\n");                                                                        \
        (nfail)++;                                                                                 \
    } while (0)
#define TU_ROWS_DONE(nfail)                                                                        \
    do {                                                                                           \
        if ((nfail) != 0)                                                                          \
            fail_msg("%d table row check(s) failed (listed above)", (nfail));                      \
    } while (0)

#endif
