/* The PKI handle, shared by pki.c (directory, inventory, locking) and issue.c. */
#ifndef PQM_PKI_INTERNAL_H
#define PQM_PKI_INTERNAL_H

#include <limits.h>
#include <stdint.h>

#include <openssl/x509.h>
#include <pqmtls/pki.h>

#include "pki/certbuild.h"
#include "pki/names.h"
#include "pki/store.h"
#include "util/err.h"
#include "util/secret.h"
#include "util/strlist.h"

/* File names of a PKI directory (design.md). */
#define PQM_F_ROOT_CRT "root-ca.crt.pem"
#define PQM_F_ROOT_KEY "root-ca.key.pem"
#define PQM_F_SERVER_CRT "server-int-ca.crt.pem"
#define PQM_F_SERVER_KEY "server-int-ca.key.pem"
#define PQM_F_CLIENT_CRT "client-int-ca.crt.pem"
#define PQM_F_CLIENT_KEY "client-int-ca.key.pem"
#define PQM_F_SERVER_CHAIN "server-ca-chain.pem"
#define PQM_F_CLIENT_CHAIN "client-ca-chain.pem"
#define PQM_F_DB "pki.db"
#define PQM_F_LOCK ".lock"
#define PQM_D_ISSUED "issued"
#define PQM_D_CRL "crl"
#define PQM_D_MESH "mesh"
#define PQM_F_MESH_CHAIN "mesh-ca-chain.pem"
#define PQM_D_ARCHIVE "issued/archive" /* the files renewed certificates had */

#define PQM_NAME_MAX 64

/* An issuing CA, loaded when first needed. */
struct pqm_ca {
    const char *label;   /* "server intermediate CA" */
    const char *crt, *key;
    X509 *cert;
    EVP_PKEY *pkey;
    char serial[64];
};

struct pqm_pki {
    struct pqm_err err;
    char dir[PATH_MAX];
    struct pqm_store *store;
    int lock_fd;
    int encrypted;
    struct pqm_secret pass;
    char alg[32];
    char org[PQM_NAME_MAX + 1];
    char spiffe_td[256];
    char crl_url[PQM_URL_MAX], ocsp_url[PQM_URL_MAX]; /* "" when not configured */
    X509 *root;
    struct pqm_ca server_ca, client_ca;
    struct pqm_ca root_ca; /* the root's key, loaded only to sign CRLs */
};

/* The URL of the CRL of the CA whose certificate file is CA_CRT ("server-int-ca.crt.pem"
 * gives BASE/server-int-ca.crl, the DER file `pki crl` writes); "" when BASE is empty.
 * -1 when it does not fit. */
int pqm__pki_crl_url_for(const char *base, const char *ca_crt, char *out, size_t outlen);
/* Takes the PKI's exclusive write lock (waits for it) and finishes the recovery of
 * any command that was interrupted. Held until pqm__pki_unlock or pqm_pki_free. */
int pqm__pki_lock(struct pqm_pki *pki);
void pqm__pki_unlock(struct pqm_pki *pki);
/* Rolls back every issuance left 'pending' (under the lock). */
int pqm__pki_recover(struct pqm_pki *pki);
/* 0 when a certificate valid until NOT_AFTER (for LIFETIME seconds) ends within the
 * validity of CA (LABEL: "server intermediate CA"); -1 with the reason (the lifetime, the
 * CA and its end) when it would outlive it. */
int pqm__ca_holds(const X509 *ca, const char *label, int64_t not_after, int64_t lifetime,
                  struct pqm_err *e);
/* A random serial number that the inventory has never recorded. */
int pqm__pki_new_serial(struct pqm_pki *pki, BIGNUM **out);
/* Loads the root's certificate into pki->root, once. */
int pqm__pki_load_root(struct pqm_pki *pki);
/* Loads the CA's certificate and (with the passphrase) key. */
int pqm__pki_load_ca(struct pqm_pki *pki, struct pqm_ca *ca);
/* DIR/REL into OUT, or REL itself when it is absolute. */
int pqm__pki_path(const struct pqm_pki *pki, const char *rel, char *out, size_t outlen);
/* The subject of X in RFC 2253 form into OUT. */
void pqm__name_string(const X509_NAME *n, char *out, size_t outlen);
/* A name usable as a file name: [A-Za-z0-9._-], not starting with '.', 1..64 characters. */
int pqm__name_valid(const char *name, struct pqm_err *e);

/* Entry I of a row's staged-file identities (the SHA-256 of each file, in the order
 * cert, key, chain, p12, "-" where none) into BUF; NULL for a row recorded without them. */
const char *pqm__identity_at(const char *staged, int i, char *buf, size_t len);
/* Recovery of an interrupted renewal by R (pending, its files' identities STAGED): the
 * files it replaced are put back from the archive at R's paths, where they are R's
 * (never over a file someone else put there), then the archived copies go. Nothing to do
 * when R renews nothing. */
int pqm__renew_undo_files(struct pqm_pki *pki, const struct pqm_cert_record *r,
                          const char *staged);

/* Storage for the strings of a record made from a certificate. */
struct pqm_record_buf {
    char serial[64], subject[512], issuer[512], issuer_serial[64], fp[65];
    char *sans; /* allocated: start zeroed, release with pqm__record_buf_free */
};
void pqm__record_buf_free(struct pqm_record_buf *b);
/* Fills the certificate-derived fields of R (serial, subject, issuer, SANs, key
 * algorithm, fingerprint, validity) from X; the strings live in B. FP, when not NULL,
 * is X's SHA-256 fingerprint already computed; KEY, when not NULL, is its subject key
 * (for a certificate built without a decoded key). */
int pqm__record_from_cert(X509 *x, const EVP_PKEY *key, const char *issuer_serial,
                          const char *fp, struct pqm_cert_record *r, struct pqm_record_buf *b,
                          struct pqm_err *e);

/* A CA being made (pki init, pki mesh). */
struct ca_build {
    const char *label, *name, *profile, *crt, *key;
    const struct pqm_alg *alg;
    const char *cn;
    int days, path_len;
    enum pqm_cert_kind kind;
    NAME_CONSTRAINTS *nc;
    EVP_PKEY *pkey;
    X509 *cert;
    char serial[64];
};
/* Generates B's key and certificate, signed by ISSUER (NULL: self-signed), never
 * outliving it; CRL_URL (may be NULL) becomes its distribution point. */
int pqm__ca_build(struct ca_build *b, const struct ca_build *issuer, const char *org,
                  const char *crl_url, int64_t now, struct pqm_err *e);
/* DIR/FILE with the PEM of CERTS (0644), or with KEY (encrypted with PASS when not NULL,
 * 0600); each replaced atomically. */
int pqm__write_pem_certs(const char *dir, const char *file, X509 *const *certs, size_t n,
                         struct pqm_err *e);
int pqm__write_key(const char *dir, const char *file, EVP_PKEY *k, const char *pass,
                   size_t passlen, struct pqm_err *e);
/* Name constraints permitting only URIs of SPIFFE trust domain TD; NULL when TD is "" (or
 * on failure, with E set). */
NAME_CONSTRAINTS *pqm__spiffe_nc(const char *td, struct pqm_err *e);
/* Records B (kind root or intermediate, status valid) in the inventory. */
int pqm__record_ca(struct pqm_store *s, const struct ca_build *b, const char *issuer_serial,
                   int64_t now, struct pqm_err *e);

#endif
