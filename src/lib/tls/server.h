/* The gateway's TLS: a server SSL_CTX that speaks TLS 1.3 only, prefers the hybrid
 * X25519MLKEM768 group, requires a client certificate and verifies it against the
 * configured client CAs alone (strict X.509, depth limit, name constraints, explicit
 * EKU clientAuth, revocation from CRLs whose signatures are checked once, at load).
 * Immutable once built: a reload builds a new one. */
#ifndef PQM_TLS_SERVER_H
#define PQM_TLS_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "tls/record.h"
#include "tls/trust.h"
#include "util/err.h"

struct pqm_tls_server_opts {
    const char *cert_file;      /* leaf first, then its intermediates */
    const char *key_file;
    const char *key_pass;       /* NULL: the key is not encrypted */
    size_t key_passlen;
    const char *client_ca_file; /* the only trust anchors for client certificates */
    const char *const *crl_files;
    size_t ncrl;
    int verify_depth;           /* certificates between leaf and anchor, default 2 */
    int require_pq;             /* refuse handshakes without a post-quantum group */
    int crl_soft_fail;          /* a missing or expired CRL passes (logged) */
    const char *groups;         /* NULL: X25519MLKEM768:X25519 */
    int session_tickets;        /* resumption by TLS 1.3 tickets */
    struct pqm_verify_stats *verify_cache; /* non-NULL: remember verified client leaves,
                                              counted there (tls/trust.h) */
    int ticket_key_lifetime;    /* seconds a ticket key encrypts; accepted twice as long */
    /* OCSP stapling: called in a handshake whose client asked for the certificate's
     * status; returns 1 with a copy of the DER response (OPENSSL_malloc) for LEAF, or 0.
     * NULL: no stapling. */
    int (*staple)(void *arg, X509 *leaf, unsigned char **der, long *len);
    void *staple_arg;
};

/* What a connection learns of its peer; the TLS layer fills REASON on a refusal. */
struct pqm_tls_peer {
    char reason[256];         /* why the handshake was refused, for the log */
    const char *reason_code;  /* short label for metrics: no_certificate, unknown_ca, ... */
    char subject[512], issuer[512], serial[96], fingerprint[65], spiffe[512];
    char cn[256], org[256];
    char dns[1024]; /* DNS SANs, each NUL-terminated, an empty one at the end */
    int64_t not_after;
    char group[48], sigalg[48], version[16];
    int resumed, post_quantum;
    char resume_refused[256]; /* why an offered session was not resumed (revoked) */
};

struct pqm_tls_server;

struct pqm_tls_server *pqm__tls_server_new(const struct pqm_tls_server_opts *o,
                                           struct pqm_err *e);
/* A server is shared by the connections made with it: each takes a reference, and the
 * last release frees it (a reload replaces the gateway's, not theirs). */
struct pqm_tls_server *pqm__tls_server_ref(struct pqm_tls_server *s);
void pqm__tls_server_free(struct pqm_tls_server *s);
SSL_CTX *pqm__tls_server_ctx(const struct pqm_tls_server *s);
/* A new SSL for an accepted socket, reading and writing through ST (initialized with
 * the socket); PEER receives what the handshake learns. */
SSL *pqm__tls_server_ssl(struct pqm_tls_server *s, struct pqm_tls_stream *st,
                         struct pqm_tls_peer *peer);
/* After a completed handshake: fills PEER's identity fields. Returns -1 (with
 * PEER->reason) when the connection must be refused after all (not post-quantum). */
int pqm__tls_peer_read(struct pqm_tls_server *s, SSL *ssl, struct pqm_tls_peer *peer);
/* After a failed handshake: makes sure PEER->reason says why. */
void pqm__tls_peer_failed(SSL *ssl, struct pqm_tls_peer *peer, unsigned long ossl_err);
/* The server's own certificate and its issuer (the next certificate of its chain file;
 * NULL when the file holds the leaf alone). Borrowed: valid while S is. */
void pqm__tls_server_identity(const struct pqm_tls_server *s, X509 **leaf, X509 **issuer);
/* The configured client CA that issued X, NULL when none did. Borrowed. */
X509 *pqm__tls_server_client_issuer(const struct pqm_tls_server *s, X509 *x);
/* 1 when the group (an IANA name such as X25519MLKEM768) carries ML-KEM. */
int pqm__tls_group_is_pq(const char *name);

#endif
