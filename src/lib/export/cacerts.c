/* pqmtls export istio-cacerts: the Secret "cacerts" of Istio's plug-in CA, from the PKI's
 * classical mesh hierarchy (pqm_pki_create_mesh). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <pqmtls/export.h>

#include "export/common.h"
#include "pki/keyfile.h"
#include "pki/pki_internal.h"
#include "util/buf.h"
#include "util/fsutil.h"

#define CACERTS_MAX (1024 * 1024)

struct mesh {
    X509 *root, *ca;
    EVP_PKEY *key;
    char *key_pem;
    size_t key_len;
};

static void mesh_free(struct mesh *m)
{
    X509_free(m->root);
    X509_free(m->ca);
    EVP_PKEY_free(m->key);
    if (m->key_pem != NULL)
        OPENSSL_cleanse(m->key_pem, m->key_len);
    free(m->key_pem);
}

/* What Istio's CA and Envoy can use: EC P-256/P-384 or RSA of 2048 bits and more. */
static int istio_key_ok(EVP_PKEY *k)
{
    if (EVP_PKEY_is_a(k, "RSA"))
        return EVP_PKEY_get_bits(k) >= 2048;
    char curve[64];
    size_t len = 0;
    return EVP_PKEY_is_a(k, "EC") &&
           EVP_PKEY_get_utf8_string_param(k, "group", curve, sizeof(curve), &len) == 1 &&
           (strcmp(curve, "prime256v1") == 0 || strcmp(curve, "secp384r1") == 0);
}

static int load_mesh(struct pqm_pki *p, struct mesh *m)
{
    struct pqm_err *e = &p->err;
    char path[PATH_MAX];
    if (pqm__pki_path(p, PQM_D_MESH "/mesh-root-ca.crt.pem", path, sizeof(path)) != 0 ||
        access(path, R_OK) != 0)
        return pqm__err_set(
            e, "the PKI has no mesh hierarchy. Istio's proxies (Envoy, BoringSSL) cannot verify "
               "ML-DSA signatures yet, so Istio's plug-in CA cannot sign under the post-quantum "
               "CAs: create a classical one beside them with `pqmtls pki mesh --pki %s` "
               "(ecdsa-p256; or pki init --mesh-alg), then export again",
            p->dir);
    if ((m->root = pqm__cert_load(path, e)) == NULL ||
        pqm__pki_path(p, PQM_D_MESH "/mesh-int-ca.crt.pem", path, sizeof(path)) != 0 ||
        (m->ca = pqm__cert_load(path, e)) == NULL ||
        pqm__pki_path(p, PQM_D_MESH "/mesh-int-ca.key.pem", path, sizeof(path)) != 0)
        return -1;
    if (p->encrypted && p->pass.buf == NULL)
        return pqm__err_set(e, "%s is encrypted: the PKI passphrase is needed (Istio reads the "
                               "key unencrypted from the Secret)",
                            path);
    m->key = pqm__key_load(path, p->encrypted ? p->pass.buf : NULL, p->pass.len, e);
    if (m->key == NULL)
        return -1;
    return 0;
}

/* Everything Istio would check, checked here first: a Secret it refuses is never written. */
/* A CA certificate inside its validity period now. */
static int ca_valid_now(X509 *x)
{
    return X509_check_ca(x) != 0 && X509_cmp_current_time(X509_get0_notBefore(x)) < 0 &&
           X509_cmp_current_time(X509_get0_notAfter(x)) > 0;
}

static int check_mesh(struct pqm_pki *p, struct mesh *m)
{
    struct pqm_err *e = &p->err;
    EVP_PKEY *rk = X509_get0_pubkey(m->root);
    if (!istio_key_ok(m->key) || rk == NULL || !istio_key_ok(rk))
        return pqm__err_set(e, "the mesh CAs' keys are not ECDSA P-256/P-384 or RSA >= 2048, "
                               "which Istio needs");
    if (X509_check_private_key(m->ca, m->key) != 1)
        return pqm__err_ossl(e, "mesh-int-ca.key.pem does not match mesh-int-ca.crt.pem");
    if (X509_check_issued(m->root, m->ca) != X509_V_OK || X509_verify(m->ca, rk) != 1 ||
        X509_check_issued(m->root, m->root) != X509_V_OK)
        return pqm__err_ossl(e, "the mesh intermediate is not signed by the mesh root");
    if (!ca_valid_now(m->ca))
        return pqm__err_set(e, "mesh-int-ca.crt.pem is not a CA certificate valid now (istiod "
                               "would sign workload certificates with it that no proxy takes)");
    if (!ca_valid_now(m->root))
        return pqm__err_set(e, "mesh-root-ca.crt.pem is not a CA certificate valid now");
    return 0;
}

static int render(struct pqm_pki *p, struct mesh *m, struct pqm_buf *b)
{
    struct pqm_err *e = &p->err;
    char *ca = NULL, *root = NULL, *chain = NULL;
    size_t ca_len = 0, root_len = 0, chain_len = 0;
    X509 *both[2] = {m->ca, m->root};
    char dir[PATH_MAX];
    pqm__yaml_comment_text(p->dir, dir, sizeof(dir));
    int rc = -1;
    if (pqm__certs_to_pem(&m->ca, 1, &ca, &ca_len, e) != 0 || pqm__certs_to_pem(&m->root, 1, &root, &root_len, e) != 0 ||
        pqm__certs_to_pem(both, 2, &chain, &chain_len, e) != 0 ||
        pqm__key_to_pem(m->key, NULL, 0, &m->key_pem, &m->key_len, e) != 0)
        goto out;
    rc = pqm__buf_addf(b,
                       "# Istio plug-in CA (istiod) keys, written by `pqmtls export "
                       "istio-cacerts` from\n# %s/mesh: a classical hierarchy, since Envoy "
                       "cannot verify ML-DSA yet. It holds\n# a CA key: apply it, then delete "
                       "this file (kubectl apply -f FILE && shred -u FILE).\n"
                       "apiVersion: v1\nkind: Secret\nmetadata:\n  name: cacerts\n"
                       "  namespace: istio-system\n  labels:\n"
                       "    app.kubernetes.io/managed-by: pqmtls\ntype: Opaque\ndata:\n",
                       dir);
    rc |= pqm__yaml_b64_field(b, "ca-cert.pem", ca, ca_len);
    rc |= pqm__yaml_b64_field(b, "ca-key.pem", m->key_pem, m->key_len);
    rc |= pqm__yaml_b64_field(b, "root-cert.pem", root, root_len);
    rc |= pqm__yaml_b64_field(b, "cert-chain.pem", chain, chain_len);
    if (rc != 0)
        pqm__err_set(e, "out of memory");
out:
    free(ca);
    free(root);
    free(chain);
    return rc;
}

int pqm_pki_export_istio_cacerts(struct pqm_pki *p, const char *out_file, char **text)
{
    struct mesh m = {0};
    struct pqm_buf b;
    if (text != NULL)
        *text = NULL;
    pqm__buf_init(&b, CACERTS_MAX);
    int rc = load_mesh(p, &m) == 0 && check_mesh(p, &m) == 0 && render(p, &m, &b) == 0 ? 0 : -1;
    if (rc == 0)
        rc = pqm__export_emit(p, &b, out_file, 0600, text);
    if (b.data != NULL)
        OPENSSL_cleanse(b.data, b.cap);
    pqm__buf_free(&b);
    mesh_free(&m);
    return rc;
}
