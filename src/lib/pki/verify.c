/* Chain verification as the gateway does it: only the configured anchors, strict
 * X.509, a depth limit, name constraints, revocation, and the purpose's EKU. */
#include <stdio.h>
#include <stdlib.h>

#include <openssl/x509v3.h>
#include <pqmtls/x509.h>

#include "pki/pemfile.h"
#include "pki/pki_internal.h"
#include "util/err.h"

#define PQM_DEFAULT_VERIFY_DEPTH 2

struct pqm_verifier {
    struct pqm_err err;
    enum pqm_purpose purpose;
    X509_STORE *store;
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
    v->store = X509_STORE_new();
    if (v->store == NULL) {
        pqm_verifier_free(v);
        return NULL;
    }
    return v;
}

void pqm_verifier_free(struct pqm_verifier *v)
{
    if (v == NULL)
        return;
    X509_STORE_free(v->store);
    free(v);
}

const char *pqm_verifier_error(const struct pqm_verifier *v)
{
    return pqm__err_str(&v->err);
}

int pqm_verifier_add_ca_file(struct pqm_verifier *v, const char *path)
{
    STACK_OF(X509) *certs = NULL;
    if (pqm__pemfile_load(path, &certs, NULL, &v->err) != 0)
        return -1;
    int rc = 0;
    for (int i = 0; i < sk_X509_num(certs); i++) {
        X509 *x = sk_X509_value(certs, i);
        if (!X509_check_ca(x)) {
            rc = pqm__err_set(&v->err, "%s: certificate %d is not a CA certificate", path, i + 1);
            break;
        }
        if (X509_STORE_add_cert(v->store, x) != 1) {
            rc = pqm__err_ossl(&v->err, "%s: cannot add certificate %d", path, i + 1);
            break;
        }
        v->ncas++;
    }
    sk_X509_pop_free(certs, X509_free);
    return rc;
}

int pqm_verifier_add_crl_file(struct pqm_verifier *v, const char *path)
{
    STACK_OF(X509_CRL) *crls = NULL;
    if (pqm__pemfile_load(path, NULL, &crls, &v->err) != 0)
        return -1;
    int rc = 0;
    for (int i = 0; i < sk_X509_CRL_num(crls); i++) {
        if (X509_STORE_add_crl(v->store, sk_X509_CRL_value(crls, i)) != 1) {
            rc = pqm__err_ossl(&v->err, "%s: cannot add CRL %d", path, i + 1);
            break;
        }
        v->ncrls++;
    }
    sk_X509_CRL_pop_free(crls, X509_CRL_free);
    return rc;
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
    GUARD_OSSL(X509_STORE_CTX_init(ctx, v->store, leaf, NULL) == 1, &v->err,
               "cannot set up verification");
    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
    unsigned long flags = X509_V_FLAG_X509_STRICT | X509_V_FLAG_PARTIAL_CHAIN;
    if (v->ncrls > 0)
        flags |= X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL;
    X509_VERIFY_PARAM_set_flags(param, flags);
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
