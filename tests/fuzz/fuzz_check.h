/* The invariant check of the fuzz targets: a broken invariant is a crash libFuzzer
 * reports, with the file, line and condition on stderr. */
#ifndef PQMTLS_FUZZ_CHECK_H
#define PQMTLS_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
