/*
 * pqmtls certificate inspection and verification.
 */
#ifndef PQMTLS_X509_H
#define PQMTLS_X509_H

#include <stddef.h>
#include <stdint.h>
#include <pqmtls/common.h>

#ifdef __cplusplus
extern "C" {
#endif

struct pqm_certinfo;
struct pqm_verifier;

enum pqm_purpose {
    PQM_PURPOSE_CLIENT = 1, /* the leaf must carry EKU clientAuth */
    PQM_PURPOSE_SERVER = 2, /* the leaf must carry EKU serverAuth */
};

/* --- inspection --- */
/* Loads the first certificate of a PEM or DER file. On failure returns NULL and
 * writes the reason into ERR. */
PQM_API struct pqm_certinfo *pqm_certinfo_load(const char *path, char *err, size_t errlen);
PQM_API void pqm_certinfo_free(struct pqm_certinfo *info);
/* A description as a JSON object (malloc'd; free() it), or NULL. */
PQM_API char *pqm_certinfo_json(const struct pqm_certinfo *info);
/* A human-readable description (malloc'd; free() it), or NULL. */
PQM_API char *pqm_certinfo_text(const struct pqm_certinfo *info);

/* --- verification, as the gateway does it --- */
PQM_API struct pqm_verifier *pqm_verifier_new(enum pqm_purpose purpose);
PQM_API void pqm_verifier_free(struct pqm_verifier *v);
PQM_API const char *pqm_verifier_error(const struct pqm_verifier *v);
/* Every certificate of FILE becomes a trust anchor; nothing else is trusted, and
 * paths are built from these certificates only. */
PQM_API int pqm_verifier_add_ca_file(struct pqm_verifier *v, const char *path);
/* CRLs: once any is added, every certificate of the chain must have a valid CRL. */
PQM_API int pqm_verifier_add_crl_file(struct pqm_verifier *v, const char *path);
/* Maximum number of intermediates between leaf and anchor (default 2). */
PQM_API int pqm_verifier_set_max_depth(struct pqm_verifier *v, int depth);
/* Verifies the first certificate of PATH (others in it, such as the intermediate of a
 * chain file, are ignored: the leaf's issuer must be one of the CA files' certificates).
 * Returns 0 when valid, -1 with the reason in pqm_verifier_error(). */
PQM_API int pqm_verifier_verify_file(struct pqm_verifier *v, const char *path);

#ifdef __cplusplus
}
#endif
#endif
