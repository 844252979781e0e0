/*
 * pqmtls OCSP: an RFC 6960 responder answering from a PKI's inventory, and the
 * delegated signer certificates it signs with.
 *
 * Every answer is signed by a delegated OCSP signer of the certificate's issuing CA
 * (one per intermediate CA: EKU OCSPSigning, id-pkix-ocsp-nocheck, short-lived), never
 * by a CA key: the responder runs unattended and holds no CA passphrase. Functions
 * return 0 on success and -1 on failure (or NULL); the reason is read from the handle.
 */
#ifndef PQMTLS_OCSP_H
#define PQMTLS_OCSP_H

#include <stddef.h>
#include <stdint.h>
#include <pqmtls/common.h>
#include <pqmtls/pki.h>

#ifdef __cplusplus
extern "C" {
#endif

/* --- signers (pqm_pki_ocsp_signers) --- */

/* One OCSP signer, made or kept by pqm_pki_ocsp_signers. */
struct pqm_ocsp_signer_info {
    const char *ca;        /* "server intermediate CA", "client intermediate CA" */
    const char *name;      /* its inventory name: "server-int-ca-ocsp", "client-int-ca-ocsp" */
    char serial[64];       /* hex, upper case */
    char cert_path[4096];  /* DIR/ocsp/NAME.SERIAL.crt.pem (recorded in the inventory) */
    char key_path[4096];   /* DIR/ocsp/NAME.SERIAL.key.pem, mode 0600 */
    char cert_link[4096];  /* DIR/ocsp/NAME.crt.pem: a symbolic link to the current one */
    char key_link[4096];   /* DIR/ocsp/NAME.key.pem */
    int64_t not_after;     /* seconds since the epoch */
    int created;           /* 1: made by this call; 0: the current one was kept */
};
typedef int (*pqm_ocsp_signer_cb)(const struct pqm_ocsp_signer_info *info, void *arg);

/* Makes a new OCSP signer for the server and the client intermediate CA (their keys sign
 * them: the PKI passphrase is needed when the PKI is encrypted), valid for DAYS (1 to
 * 366; never beyond its CA), and records it in the inventory with kind "ocsp". The
 * signer it replaces becomes "superseded" and its key file is removed. With
 * WITHIN_SECONDS >= 0, a CA whose current signer is valid for longer than that keeps it.
 * The signer's key is written unencrypted (mode 0600) unless KEY_PASS is given, so that
 * the responder can start unattended. CB (may be NULL) is called once per CA. */
PQM_API int pqm_pki_ocsp_signers(struct pqm_pki *pki, int days, int64_t within_seconds,
                                 const char *key_pass, size_t key_passlen,
                                 pqm_ocsp_signer_cb cb, void *arg);

/* --- the responder (pqmtls ocsp serve) --- */

struct pqm_ocsp_config;
struct pqm_ocsp_server;

PQM_API struct pqm_ocsp_config *pqm_ocsp_config_new(void);
PQM_API void pqm_ocsp_config_free(struct pqm_ocsp_config *cfg);
PQM_API const char *pqm_ocsp_config_error(const struct pqm_ocsp_config *cfg);
/* The PKI directory whose inventory (DIR/pki.db) answers, and whose signers sign. */
PQM_API int pqm_ocsp_config_set_pki(struct pqm_ocsp_config *cfg, const char *dir);
/* "HOST:PORT" ("127.0.0.1:8080", "[::1]:8080", ":8080" for every address). */
PQM_API int pqm_ocsp_config_set_listen(struct pqm_ocsp_config *cfg, const char *addr);
/* The HTTP path requests go to: "/" (default), or e.g. "/ocsp" when the certificates'
 * AIA URL has one. */
PQM_API int pqm_ocsp_config_set_path(struct pqm_ocsp_config *cfg, const char *path);
/* nextUpdate - thisUpdate of every answer: 1 minute to 7 days (default 1 hour). */
PQM_API int pqm_ocsp_config_set_validity(struct pqm_ocsp_config *cfg, int64_t seconds);
/* Worker threads, each with its own listener and inventory connection (default: one per
 * CPU this process may use). */
PQM_API int pqm_ocsp_config_set_workers(struct pqm_ocsp_config *cfg, int workers);
/* Seconds an idle keep-alive connection is kept (default 30), and a request may take
 * to arrive and its answer to leave (default 10). */
PQM_API int pqm_ocsp_config_set_timeouts(struct pqm_ocsp_config *cfg, double idle,
                                         double request);
/* Open connections, all workers together (default 10000). */
PQM_API int pqm_ocsp_config_set_max_connections(struct pqm_ocsp_config *cfg, int n);
/* Signed answers each worker keeps for requests without a nonce (RFC 5019 clients,
 * nginx's OCSP stapling), given again while half their validity is left and the
 * inventory and the signers are unchanged (default 1024; 0: every answer signed anew). */
PQM_API int pqm_ocsp_config_set_cache(struct pqm_ocsp_config *cfg, int entries);
/* The passphrase of the signers' keys, when they were given one. */
PQM_API int pqm_ocsp_config_set_key_passphrase(struct pqm_ocsp_config *cfg, const char *pass,
                                               size_t len);

/* Opens the inventory, loads the CAs and their signers, and binds the listeners. Refuses
 * (NULL, the reason in ERR) when a CA has no usable signer. */
PQM_API struct pqm_ocsp_server *pqm_ocsp_server_new(const struct pqm_ocsp_config *cfg, char *err,
                                                    size_t errlen);
/* Serves until SIGTERM or SIGINT. SIGHUP (and, every 10 seconds, a look at the
 * inventory) takes up new signers. */
PQM_API int pqm_ocsp_server_run(struct pqm_ocsp_server *srv);
PQM_API void pqm_ocsp_server_free(struct pqm_ocsp_server *srv);

#ifdef __cplusplus
}
#endif
#endif
