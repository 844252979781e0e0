/* The gateway's OCSP: client certificates checked with their CA's responder (with a
 * cache), and the gateway's own certificate's status stapled into its handshakes.
 * Responders are asked by background threads, never on a worker's event loop. */
#ifndef PQM_GATEWAY_OCSP_H
#define PQM_GATEWAY_OCSP_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "util/err.h"

enum pqm_gw_ocsp_mode { PQM_GW_OCSP_OFF, PQM_GW_OCSP_SOFT, PQM_GW_OCSP_HARD };
enum pqm_gw_staple_mode { PQM_GW_STAPLE_OFF, PQM_GW_STAPLE_AUTO, PQM_GW_STAPLE_ON };

struct pqm_gw_ocsp_opts {
    enum pqm_gw_ocsp_mode client_mode;
    enum pqm_gw_staple_mode staple_mode;
    const char *responder;  /* "" or NULL: each certificate's authorityInfoAccess URL */
    int timeout;            /* seconds per query */
    int cache_seconds;      /* longest a client certificate's answer is trusted */
    void (*wake)(void *arg); /* a client certificate's answer arrived (any thread) */
    void *wake_arg;
};

enum pqm_gw_ocsp_verdict { PQM_GW_OCSP_PASS, PQM_GW_OCSP_REFUSE, PQM_GW_OCSP_WAIT };

struct pqm_gw_ocsp;

struct pqm_gw_ocsp *pqm__gw_ocsp_new(const struct pqm_gw_ocsp_opts *o, struct pqm_err *e);
/* Stops the threads (waiting for a query in flight) and frees everything. */
void pqm__gw_ocsp_free(struct pqm_gw_ocsp *o);

/* The verdict on a client certificate LEAF issued by ISSUER, after its handshake: PASS,
 * REFUSE (with REASON and CODE: "revoked", "ocsp_unknown", "ocsp_unavailable"), or WAIT
 * (hard mode, no answer cached yet: a query is on its way; ask again after wake). In
 * soft mode a missing or failed answer passes, and a query is made for next time. */
enum pqm_gw_ocsp_verdict pqm__gw_ocsp_client(struct pqm_gw_ocsp *o, X509 *leaf, X509 *issuer,
                                             char *reason, size_t reasonlen,
                                             const char **code);

/* Whether LEAF (with ISSUER, from the chain file) can be stapled as the configuration
 * asks: fails in "on" mode when there is no issuer, or when neither the certificate nor
 * the configuration names a responder. Changes nothing: a reload checks first. */
int pqm__gw_ocsp_staple_check(struct pqm_gw_ocsp *o, X509 *leaf, X509 *issuer,
                              struct pqm_err *e);
/* The certificate to staple from now on (at start, and once a reload is in force); one
 * that cannot be stapled stops stapling. A new certificate is queried at once. */
void pqm__gw_ocsp_staple_target(struct pqm_gw_ocsp *o, X509 *leaf, X509 *issuer);
/* A copy (OPENSSL_malloc) of the current response for LEAF, for SSL_set_tlsext_status_ocsp_resp:
 * 1 when there is one that has not expired, 0 when not. */
int pqm__gw_ocsp_staple_copy(struct pqm_gw_ocsp *o, X509 *leaf, unsigned char **der, long *len);

/* What the metrics report. */
struct pqm_gw_ocsp_stats {
    uint64_t queries, failures, cache_hits, staple_refreshes;
    int staple_ok;                /* a current response is stapled */
    int64_t staple_next_update;
};
void pqm__gw_ocsp_stats(struct pqm_gw_ocsp *o, struct pqm_gw_ocsp_stats *s);

#endif
