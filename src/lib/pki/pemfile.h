/* Reading every certificate and CRL of a PEM (or single DER) file. */
#ifndef PQM_PKI_PEMFILE_H
#define PQM_PKI_PEMFILE_H

#include <openssl/x509.h>

#include "util/err.h"

#define PQM_PEMFILE_MAX (16 * 1024 * 1024)

/* Certificates and CRLs of PATH in file order; either output may be NULL when not
 * wanted. Fails when the file holds none of the wanted kind. */
int pqm__pemfile_load(const char *path, STACK_OF(X509) **certs, STACK_OF(X509_CRL) **crls,
                      struct pqm_err *e);

#endif
