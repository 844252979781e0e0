/* pqmtls: shared definitions of the public API. */
#ifndef PQMTLS_COMMON_H
#define PQMTLS_COMMON_H

#if defined(PQMTLS_BUILDING)
#define PQM_API __attribute__((visibility("default")))
#else
#define PQM_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* The library version, "MAJOR.MINOR.PATCH". */
PQM_API const char *pqm_version(void);

#ifdef __cplusplus
}
#endif
#endif
