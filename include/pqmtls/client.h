/*
 * pqmtls client: mutual TLS connections to an API, shaped like OpenBSD's libtls.
 *
 * A configuration holds the client's identity (certificate and key), what it trusts
 * (a CA file and nothing else, CRLs, public key pins) and how it negotiates (TLS 1.3
 * only, X25519MLKEM768 first; post-quantum only with pqm_client_config_require_pq).
 * A connection is made from a loaded configuration; its functions return 0 (or a byte
 * count), -1 with the reason in pqm_conn_error(), or, on a non-blocking socket,
 * PQM_WANT_POLLIN / PQM_WANT_POLLOUT: call again once the socket is ready.
 *
 *   struct pqm_client_config *cfg = pqm_client_config_new();
 *   pqm_client_config_set_cert_file(cfg, "client1.crt.pem");
 *   pqm_client_config_set_key_file(cfg, "client1.key.pem");
 *   pqm_client_config_set_ca_file(cfg, "server-ca-chain.pem");
 *   if (pqm_client_config_load(cfg) != 0) ... pqm_client_config_error(cfg)
 *   struct pqm_conn *c = pqm_conn_new(cfg);
 *   if (pqm_conn_connect(c, "api.example.com", "8443", NULL) != 0) ... pqm_conn_error(c)
 *   pqm_conn_write(c, req, len); pqm_conn_read(c, buf, sizeof(buf)); pqm_conn_close(c);
 *   pqm_conn_free(c); pqm_client_config_free(cfg);
 */
#ifndef PQMTLS_CLIENT_H
#define PQMTLS_CLIENT_H

#include <stddef.h>
#include <sys/types.h>
#include <pqmtls/common.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PQM_WANT_POLLIN (-2)
#define PQM_WANT_POLLOUT (-3)

struct pqm_client_config;
struct pqm_conn;

PQM_API struct pqm_client_config *pqm_client_config_new(void);
PQM_API void pqm_client_config_free(struct pqm_client_config *cfg);
PQM_API const char *pqm_client_config_error(const struct pqm_client_config *cfg);
/* The client certificate (PEM, leaf first, intermediates after) and its key. */
PQM_API int pqm_client_config_set_cert_file(struct pqm_client_config *cfg, const char *path);
PQM_API int pqm_client_config_set_key_file(struct pqm_client_config *cfg, const char *path);
/* The key's passphrase (copied), for an encrypted PKCS#8 key. */
PQM_API int pqm_client_config_set_key_passphrase(struct pqm_client_config *cfg,
                                                 const char *pass, size_t len);
/* The only trust anchors for the server's certificate (pqmtls pki: server-ca-chain.pem). */
PQM_API int pqm_client_config_set_ca_file(struct pqm_client_config *cfg, const char *path);
/* Also trusts the system's CA store (off by default: an mTLS API's server CA is the PKI's,
 * and every CA of the system store could otherwise vouch for the server's name). */
PQM_API void pqm_client_config_use_system_ca(struct pqm_client_config *cfg);
/* A CRL (PEM) of a server CA; once any is given, every CA of the server's chain needs one. */
PQM_API int pqm_client_config_add_crl_file(struct pqm_client_config *cfg, const char *path);
/* Key exchange groups, OpenSSL's syntax (default X25519MLKEM768:X25519). */
PQM_API int pqm_client_config_set_groups(struct pqm_client_config *cfg, const char *groups);
/* Refuses a server that does not negotiate an ML-KEM group. */
PQM_API void pqm_client_config_require_pq(struct pqm_client_config *cfg);
/* Accepts only servers whose public key has this pin: "sha256:" and the base64 of the
 * SHA-256 of the SubjectPublicKeyInfo (DER). May be given several times. */
PQM_API int pqm_client_config_add_pin(struct pqm_client_config *cfg, const char *pin);
/* Reads the files and builds the TLS context; again later to reload them (connections
 * made before keep what they were made with). */
PQM_API int pqm_client_config_load(struct pqm_client_config *cfg);
/* 1 when a file the last load read (certificate, key, CA, CRLs) has changed on disk since
 * (replaced, rewritten, removed or back), 0 when not: poll it, and load again when it
 * says so, to pick up renewed certificates without a restart. A load that failed (a key
 * and certificate caught mid-renewal do not match) is tried again at the next change. */
PQM_API int pqm_client_config_changed(const struct pqm_client_config *cfg);

/* A connection with the configuration as loaded now; NULL when it is not loaded. */
PQM_API struct pqm_conn *pqm_conn_new(struct pqm_client_config *cfg);
PQM_API void pqm_conn_free(struct pqm_conn *c);
PQM_API const char *pqm_conn_error(const struct pqm_conn *c);
/* Connects to HOST:PORT (blocking) and makes the handshake. SERVERNAME is the name (or IP
 * address) the server's certificate must carry; NULL means HOST. */
PQM_API int pqm_conn_connect(struct pqm_conn *c, const char *host, const char *port,
                             const char *servername);
/* Uses FD, a connected socket (blocking or not; the connection does not close it unless
 * told with OWN = 1), for a connection to SERVERNAME; the handshake follows. */
PQM_API int pqm_conn_connect_fd(struct pqm_conn *c, int fd, int own, const char *servername);
/* Makes (or continues) the handshake: 0, -1 or PQM_WANT_*. */
PQM_API int pqm_conn_handshake(struct pqm_conn *c);
/* Reads up to LEN bytes: their number, 0 at the end, -1 or PQM_WANT_*. A read that
 * filled BUF may leave decrypted bytes in the connection that the socket will never
 * report: read again (or look at pqm_conn_pending) before waiting for the socket. */
PQM_API ssize_t pqm_conn_read(struct pqm_conn *c, void *buf, size_t len);
/* How many decrypted bytes a read would return now without touching the socket. */
PQM_API size_t pqm_conn_pending(const struct pqm_conn *c);
/* Writes up to LEN bytes: how many were written, -1 or PQM_WANT_*. */
PQM_API ssize_t pqm_conn_write(struct pqm_conn *c, const void *buf, size_t len);
/* Sends close_notify and closes the socket when the connection owns it: 0, -1, PQM_WANT_*. */
PQM_API int pqm_conn_close(struct pqm_conn *c);
PQM_API int pqm_conn_fd(const struct pqm_conn *c);
/* After the handshake: "TLSv1.3", the group ("X25519MLKEM768"), the server's signature
 * algorithm, its certificate's subject (RFC 2253). */
PQM_API const char *pqm_conn_version(const struct pqm_conn *c);
PQM_API const char *pqm_conn_group(const struct pqm_conn *c);
PQM_API const char *pqm_conn_sigalg(const struct pqm_conn *c);
PQM_API const char *pqm_conn_peer_subject(const struct pqm_conn *c);

#ifdef __cplusplus
}
#endif
#endif
