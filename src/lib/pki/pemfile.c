#include "pki/pemfile.h"

#include <stdlib.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "util/fsutil.h"

static int from_der(const unsigned char *data, size_t len, STACK_OF(X509) *certs,
                    STACK_OF(X509_CRL) *crls)
{
    const unsigned char *p = data;
    if (certs != NULL) {
        X509 *x = d2i_X509(NULL, &p, (long)len);
        if (x != NULL) {
            if (sk_X509_push(certs, x) > 0)
                return 1;
            X509_free(x);
            return 0;
        }
    }
    p = data;
    if (crls != NULL) {
        X509_CRL *c = d2i_X509_CRL(NULL, &p, (long)len);
        if (c != NULL) {
            if (sk_X509_CRL_push(crls, c) > 0)
                return 1;
            X509_CRL_free(c);
        }
    }
    return 0;
}

int pqm__pemfile_load(const char *path, STACK_OF(X509) **certs_out,
                      STACK_OF(X509_CRL) **crls_out, struct pqm_err *e)
{
    unsigned char *data = NULL;
    size_t len = 0;
    STACK_OF(X509) *certs = certs_out != NULL ? sk_X509_new_null() : NULL;
    STACK_OF(X509_CRL) *crls = crls_out != NULL ? sk_X509_CRL_new_null() : NULL;
    STACK_OF(X509_INFO) *infos = NULL;
    BIO *b = NULL;
    int rc = -1;

    GUARD(pqm__read_file(path, PQM_PEMFILE_MAX, &data, &len, e));
    GUARD_OSSL((certs_out == NULL || certs != NULL) && (crls_out == NULL || crls != NULL), e,
               "out of memory");
    b = BIO_new_mem_buf(data, (int)len);
    GUARD_OSSL(b != NULL, e, "out of memory");
    infos = PEM_X509_INFO_read_bio(b, NULL, NULL, NULL);
    for (int i = 0; infos != NULL && i < sk_X509_INFO_num(infos); i++) {
        X509_INFO *xi = sk_X509_INFO_value(infos, i);
        if (certs != NULL && xi->x509 != NULL) {
            GUARD_OSSL(sk_X509_push(certs, xi->x509) > 0, e, "out of memory");
            xi->x509 = NULL;
        }
        if (crls != NULL && xi->crl != NULL) {
            GUARD_OSSL(sk_X509_CRL_push(crls, xi->crl) > 0, e, "out of memory");
            xi->crl = NULL;
        }
    }
    int found = (certs != NULL ? sk_X509_num(certs) : 0) + (crls != NULL ? sk_X509_CRL_num(crls) : 0);
    if (found == 0)
        found = from_der(data, len, certs, crls);
    ENSURE(found > 0, e, "%s: no %s found (PEM or DER)", path,
           certs_out != NULL && crls_out != NULL ? "certificate or CRL"
           : certs_out != NULL                  ? "certificate"
                                                : "CRL");
    if (certs_out != NULL) {
        *certs_out = certs;
        certs = NULL;
    }
    if (crls_out != NULL) {
        *crls_out = crls;
        crls = NULL;
    }
    ERR_clear_error();
    rc = 0;
cleanup:
    sk_X509_INFO_pop_free(infos, X509_INFO_free);
    sk_X509_pop_free(certs, X509_free);
    sk_X509_CRL_pop_free(crls, X509_CRL_free);
    BIO_free(b);
    free(data);
    return rc;
}
