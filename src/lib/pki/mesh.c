/* The mesh hierarchy: a classical (ECDSA or RSA) root and intermediate beside the
 * post-quantum PKI, for a service mesh whose proxies cannot verify ML-DSA yet (Istio's
 * Envoy). Its intermediate is what Istio's plug-in CA signs workload certificates with. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pki/alg.h"
#include "pki/pki_internal.h"
#include "util/fsutil.h"

#define MESH_DEFAULT_DAYS 1825

static int alg_ok_for_mesh(const struct pqm_alg *a)
{
    return a != NULL && !a->post_quantum &&
           (strcmp(a->keytype, "EC") == 0 || strcmp(a->keytype, "RSA") == 0);
}

static int write_mesh(const char *tmp, struct ca_build *cas, const struct pqm_pki *p,
                      struct pqm_err *e)
{
    const char *pass = p->encrypted ? p->pass.buf : NULL;
    size_t passlen = p->encrypted ? p->pass.len : 0;
    X509 *chain[2] = {cas[1].cert, cas[0].cert};
    for (int i = 0; i < 2; i++)
        if (pqm__write_pem_certs(tmp, strrchr(cas[i].crt, '/') + 1, &cas[i].cert, 1, e) != 0 ||
            pqm__write_key(tmp, strrchr(cas[i].key, '/') + 1, cas[i].pkey, pass, passlen, e) != 0)
            return -1;
    return pqm__write_pem_certs(tmp, PQM_F_MESH_CHAIN, chain, 2, e);
}

static int record_mesh(struct pqm_pki *p, struct ca_build *cas, int64_t now)
{
    struct pqm_err *e = &p->err;
    if (pqm__store_begin(p->store, e) != 0)
        return -1;
    if (pqm__record_ca(p->store, &cas[0], cas[0].serial, now, e) != 0 ||
        pqm__record_ca(p->store, &cas[1], cas[0].serial, now, e) != 0 ||
        pqm__store_commit(p->store, e) != 0) {
        pqm__store_rollback(p->store);
        return -1;
    }
    return 0;
}

/* Builds both CAs in a directory beside DIR/mesh, moves it into place, records them. */
static int make_mesh(struct pqm_pki *p, struct ca_build *cas, int64_t now)
{
    struct pqm_err *e = &p->err;
    char dir[PATH_MAX], tmp[PATH_MAX];
    if (pqm__pki_path(p, PQM_D_MESH, dir, sizeof(dir)) != 0 ||
        pqm__pki_path(p, ".mesh-XXXXXX", tmp, sizeof(tmp)) != 0)
        return pqm__err_set(e, "%s: path too long", p->dir);
    struct stat st;
    if (lstat(dir, &st) == 0)
        return pqm__err_set(e, "%s already exists: the PKI has a mesh hierarchy", dir);
    if (mkdtemp(tmp) == NULL)
        return pqm__err_set(e, "%s: cannot create a directory: %s", p->dir, strerror(errno));
    int rc = -1;
    if (chmod(tmp, 0700) != 0)
        pqm__err_set(e, "%s: chmod: %s", tmp, strerror(errno));
    else if (write_mesh(tmp, cas, p, e) == 0 && pqm__fsync_dir(tmp, e) == 0) {
        if (rename(tmp, dir) != 0)
            pqm__err_set(e, "%s: cannot move into place: %s", dir, strerror(errno));
        else if (pqm__fsync_dir(p->dir, e) != 0 || record_mesh(p, cas, now) != 0)
            pqm__rmtree(dir); /* unrecorded: nothing refers to it */
        else
            rc = 0;
    }
    if (rc != 0)
        pqm__rmtree(tmp);
    return rc;
}

int pqm_pki_mesh_alg_valid(const char *alg)
{
    return alg_ok_for_mesh(pqm__alg_find(alg));
}

int pqm_pki_create_mesh(struct pqm_pki *p, const char *alg, int days)
{
    struct pqm_err *e = &p->err;
    const struct pqm_alg *a = pqm__alg_find(alg != NULL ? alg : "ecdsa-p256");
    if (!alg_ok_for_mesh(a))
        return pqm__err_set(e, "--mesh-alg '%s': the mesh hierarchy must be ECDSA or RSA "
                               "(ecdsa-p256, ecdsa-p384, rsa-3072), which Istio's proxies and CA "
                               "can use",
                            alg != NULL ? alg : "");
    if (days <= 0)
        days = MESH_DEFAULT_DAYS;
    if (p->encrypted && p->pass.buf == NULL)
        return pqm__err_set(e, "the PKI is encrypted: the mesh CA keys take its passphrase, "
                               "which is needed");
    char root_cn[PQM_NAME_MAX + 1], int_cn[PQM_NAME_MAX + 1];
    snprintf(root_cn, sizeof(root_cn), "%.40s Mesh Root CA", p->org[0] ? p->org : "pqmtls");
    snprintf(int_cn, sizeof(int_cn), "%.40s Mesh Intermediate CA", p->org[0] ? p->org : "pqmtls");
    struct ca_build cas[2] = {
        {"mesh root CA", "mesh-root-ca", "mesh-root-ca", PQM_D_MESH "/mesh-root-ca.crt.pem",
         PQM_D_MESH "/mesh-root-ca.key.pem", a, root_cn, days, 1, PQM_KIND_ROOT, NULL, NULL,
         NULL, ""},
        {"mesh intermediate CA", "mesh-int-ca", "mesh-ca", PQM_D_MESH "/mesh-int-ca.crt.pem",
         PQM_D_MESH "/mesh-int-ca.key.pem", a, int_cn, days, 0, PQM_KIND_INTERMEDIATE, NULL,
         NULL, NULL, ""},
    };
    int rc = -1;
    if (p->spiffe_td[0] != '\0' && (cas[1].nc = pqm__spiffe_nc(p->spiffe_td, e)) == NULL)
        goto cleanup;
    if (pqm__pki_lock(p) != 0)
        goto cleanup;
    int64_t now = (int64_t)time(NULL);
    if (pqm__ca_build(&cas[0], NULL, p->org, NULL, now, e) == 0 &&
        pqm__ca_build(&cas[1], &cas[0], p->org, NULL, now, e) == 0)
        rc = make_mesh(p, cas, now);
    pqm__pki_unlock(p);
cleanup:
    for (int i = 0; i < 2; i++) {
        NAME_CONSTRAINTS_free(cas[i].nc);
        EVP_PKEY_free(cas[i].pkey);
        X509_free(cas[i].cert);
    }
    return rc;
}
