/* Chain verification as the gateway does it: only the configured anchors, strict
 * X.509, a depth limit, name constraints, revocation, and the purpose's EKU. */
#include <stdio.h>
#include <stdlib.h>

#include <openssl/x509v3.h>
#include <pqmtls/x509.h>

#include "pki/pemfile.h"
#include "pki/pki_internal.h"
#include "tls/trust.h"
#include "util/err.h"

#define PQM_DEFAULT_VERIFY_DEPTH 2

struct pqm_verifier {
    struct pqm_err err;
    enum pqm_purpose purpose;
    struct pqm_trust trust; /* the gateway's anchors and CRLs, and its revocation check */
    int ncas, ncrls, depth;
};

struct pqm_verifier *pqm_verifier_new(enum pqm_purpose purpose)
{
    if (purpose != PQM_PURPOSE_CLIENT && purpose != PQM_PURPOSE_SERVER)
        return NULL;
    struct pqm_verifier *v = calloc(1, sizeof(*v));
    if (v == NULL)
        return NULL;
    v->purpose = purpose;
    v->depth = PQM_DEFAULT_VERIFY_DEPTH;
    v->trust.purpose =
        purpose == PQM_PURPOSE_CLIENT ? X509_PURPOSE_SSL_CLIENT : X509_PURPOSE_SSL_SERVER;
    return v;
}

void pqm_verifier_free(struct pqm_verifier *v)
{
    if (v == NULL)
        return;
    pqm__trust_free(&v->trust);
    free(v);
}

const char *pqm_verifier_error(const struct pqm_verifier *v)
{
    return pqm__err_str(&v->err);
}

int pqm_verifier_add_ca_file(struct pqm_verifier *v, const char *path)
{
    int before = v->trust.cas != NULL ? sk_X509_num(v->trust.cas) : 0;
    if (pqm__trust_add_cas(&v->trust, path, "CA file", &v->err) != 0)
        return -1;
    v->ncas += sk_X509_num(v->trust.cas) - before;
    return 0;
}

/* Each CRL must be signed by one of the CAs added before it; its signature is checked
 * here, once, as the gateway does. */
int pqm_verifier_add_crl_file(struct pqm_verifier *v, const char *path)
{
    size_t before = v->trust.ncrl;
    if (v->ncas == 0)
        return pqm__err_set(&v->err, "%s: add the CA files before the CRLs that they signed",
                            path);
    if (pqm__trust_add_crls(&v->trust, &path, 1, "CA file", &v->err) != 0)
        return -1;
    v->ncrls += (int)(v->trust.ncrl - before);
    return 0;
}

int pqm_verifier_set_max_depth(struct pqm_verifier *v, int depth)
{
    if (depth < 0 || depth > 16)
        return pqm__err_set(&v->err, "the maximum depth must be 0 to 16");
    v->depth = depth;
    return 0;
}

static void describe(X509_STORE_CTX *ctx, char *out, size_t outlen)
{
    X509 *bad = X509_STORE_CTX_get_current_cert(ctx);
    out[0] = '\0';
    if (bad == NULL)
        return;
    BIO *b = BIO_new(BIO_s_mem());
    if (b == NULL)
        return;
    if (X509_NAME_print_ex(b, X509_get_subject_name(bad), 0, XN_FLAG_RFC2253) >= 0) {
        int n = BIO_read(b, out, (int)outlen - 1);
        out[n > 0 ? n : 0] = '\0';
    }
    BIO_free(b);
}

/* OpenSSL's purpose check lets a leaf without any EKU pass; the gateway does not. */
static int check_eku(struct pqm_verifier *v, X509 *leaf)
{
    uint32_t want = v->purpose == PQM_PURPOSE_CLIENT ? XKU_SSL_CLIENT : XKU_SSL_SERVER;
    const char *name = v->purpose == PQM_PURPOSE_CLIENT ? "clientAuth" : "serverAuth";
    if ((X509_get_extension_flags(leaf) & EXFLAG_XKUSAGE) == 0)
        return pqm__err_set(&v->err, "the certificate has no extended key usage; %s is required",
                            name);
    if ((X509_get_extended_key_usage(leaf) & want) == 0)
        return pqm__err_set(&v->err, "the certificate's extended key usage lacks %s", name);
    return 0;
}

static int verify_chain(struct pqm_verifier *v, X509 *leaf)
{
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int rc = -1;
    GUARD_OSSL(ctx != NULL, &v->err, "out of memory");
    GUARD_OSSL(X509_STORE_CTX_init(ctx, v->trust.store, leaf, NULL) == 1, &v->err,
               "cannot set up verification");
    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_X509_STRICT | X509_V_FLAG_PARTIAL_CHAIN);
    X509_VERIFY_PARAM_set_depth(param, v->depth);
    /* Sets the trust setting with the purpose, so that an anchor marked as rejected
     * for this use (a TRUSTED CERTIFICATE with -addreject) is refused. */
    GUARD_OSSL(X509_STORE_CTX_set_purpose(ctx, v->purpose == PQM_PURPOSE_CLIENT
                                                   ? X509_PURPOSE_SSL_CLIENT
                                                   : X509_PURPOSE_SSL_SERVER) == 1,
               &v->err, "cannot set the verification purpose");
    if (X509_verify_cert(ctx) != 1) {
        int err = X509_STORE_CTX_get_error(ctx);
        char who[512];
        describe(ctx, who, sizeof(who));
        if (err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
            err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT) {
            X509 *bad = X509_STORE_CTX_get_current_cert(ctx);
            char issuer[512] = "";
            if (bad != NULL)
                pqm__name_string(X509_get_issuer_name(bad), issuer, sizeof(issuer));
            pqm__err_set(&v->err, "%s: its issuer (%s) is not one of the trusted CA certificates",
                         who, issuer);
        } else {
            pqm__err_set(&v->err, "%s (at depth %d%s%s)", X509_verify_cert_error_string(err),
                         X509_STORE_CTX_get_error_depth(ctx), who[0] ? ": " : "", who);
        }
        goto cleanup;
    }
    rc = check_eku(v, leaf);
    /* Revocation after the path is built: OpenSSL's own CRL check cannot reach the
     * issuer of an intermediate that is itself an anchor (a partial chain). */
    if (rc == 0 && v->ncrls > 0) {
        struct pqm_verdict verdict = {0};
        int err = X509_V_OK;
        if (pqm__trust_revocation(&v->trust, X509_STORE_CTX_get0_chain(ctx), &err, &verdict) != 0)
            rc = pqm__err_set(&v->err, "%s", verdict.reason);
    }
cleanup:
    X509_STORE_CTX_free(ctx);
    return rc;
}

int pqm_verifier_verify_file(struct pqm_verifier *v, const char *path)
{
    STACK_OF(X509) *certs = NULL;
    if (v->ncas == 0)
        return pqm__err_set(&v->err, "no trust anchor: add a CA file");
    if (pqm__pemfile_load(path, &certs, NULL, &v->err) != 0)
        return -1;
    /* Only the leaf is taken from the file: the path is built from the configured CAs
     * alone, so the leaf's issuer must be one of them. A chain that reaches a trusted
     * root through an intermediate the verifier was not given (a server intermediate
     * presenting to a client gateway) is refused, whatever its EKU says. */
    int rc = verify_chain(v, sk_X509_value(certs, 0));
    if (rc != 0)
        pqm__err_copy(&v->err, path, pqm__err_str(&v->err));
    sk_X509_pop_free(certs, X509_free);
    return rc;
}
