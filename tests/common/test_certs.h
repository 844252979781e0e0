/* Certificates for the tests and fuzz targets, made with the library's own builder.
 * Header-only (static inline), so that the unit tests (cmocka) and the fuzz targets
 * (libFuzzer) share it without a library of their own. */
#ifndef PQM_TESTS_TEST_CERTS_H
#define PQM_TESTS_TEST_CERTS_H

#include <stdint.h>

#include "pki/certbuild.h"

/* A certificate of KIND for KEY, "CN=CN, O=pqmtls test", issued by ISSUER with
 * ISSUER_KEY (self-signed when ISSUER is NULL), valid from NOT_BEFORE to NOT_AFTER;
 * NULL with the reason in E. */
static inline X509 *tc_cert(enum pqm_cert_kind kind, const char *cn, EVP_PKEY *key,
                            X509 *issuer, EVP_PKEY *issuer_key, int64_t not_before,
                            int64_t not_after, struct pqm_err *e)
{
    X509_NAME *subject = pqm__name_new(cn, "pqmtls test", e);
    BIGNUM *serial = subject != NULL ? pqm__serial_new(e) : NULL;
    X509 *x = NULL;
    if (serial != NULL) {
        struct pqm_cert_spec spec = {
            .kind = kind,
            .subject = subject,
            .subject_key = key,
            .issuer = issuer,
            .issuer_key = issuer_key,
            .serial = serial,
            .not_before = not_before,
            .not_after = not_after,
            .path_len = kind == PQM_KIND_ROOT ? 0 : -1,
        };
        x = pqm__cert_build(&spec, e);
    }
    X509_NAME_free(subject);
    BN_free(serial);
    return x;
}

#endif
