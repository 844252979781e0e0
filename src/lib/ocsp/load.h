/* A PKI directory's responder: its server and client intermediate CAs, each with the
 * newest usable signer the inventory records (kind 'ocsp', valid or superseded,
 * unexpired, with a key), its files checked against the inventory. */
#ifndef PQM_OCSP_LOAD_H
#define PQM_OCSP_LOAD_H

#include <stdint.h>

#include "ocsp/responder.h"
#include "pki/store.h"
#include "util/err.h"
#include "util/secret.h"

/* Fills R (empty) from DIR at time NOW; a CA without a usable signer gets none (its
 * answers are tryLater). A signer that is recorded but cannot be loaded (a file
 * missing, replaced or not matching its key, a wrong key passphrase) fails it all. */
int pqm__ocsp_load(const char *dir, struct pqm_store *store, const struct pqm_secret *key_pass,
                   int64_t now, struct pqm_ocsp_responder *r, struct pqm_err *e);
/* 1 when the signer the inventory names for a CA of R at NOW is not the one R has, 0
 * when all are the same, -1 on error. */
int pqm__ocsp_signers_changed(struct pqm_store *store, const struct pqm_ocsp_responder *r,
                              int64_t now, struct pqm_err *e);
/* How many CAs of R have no signer; their labels into OUT ("the server intermediate CA
 * and the client intermediate CA"). */
int pqm__ocsp_missing_signers(const struct pqm_ocsp_responder *r, char *out, size_t outlen);

#endif
