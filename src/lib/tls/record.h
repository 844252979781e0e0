/* TLS 1.3 records after the handshake, kept by the gateway itself (RFC 8446 section 5).
 *
 * OpenSSL performs the handshake; once it is done, the connection's records are
 * protected here and the SSL object is freed. An idle mTLS connection then holds two
 * AEAD contexts and two secrets (about 2 KB) instead of OpenSSL's state for the
 * session (about 44 KB with an ML-DSA-65 client certificate: the parsed certificate,
 * the peer's key share, the record layer). docs/decisions.md says why.
 *
 * During the handshake, OpenSSL reads and writes through the stream's BIO: the BIO
 * hands OpenSSL whole records and never a byte past the record it is in, so that the
 * records after the client's Finished stay with the stream. The secrets come from the
 * key log callback; the number of records OpenSSL sent under the server's application
 * key (its session tickets) from the message callback. pqm__tls_stream_take() then
 * starts the record layer where OpenSSL stopped.
 *
 * After the takeover the stream handles, besides application data: KeyUpdate from the
 * peer (its own answer when asked, before the next record), close_notify and the other
 * alerts, and a KeyUpdate of its own before the write key has protected 2^23 records.
 * Anything else is a protocol error that ends the connection with an alert. */
#ifndef PQM_TLS_RECORD_H
#define PQM_TLS_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "util/buf.h"

#define PQM_TLS_MAX_PLAIN 16384                       /* 2^14: the most content per record */
#define PQM_TLS_MAX_RECORD (5 + PQM_TLS_MAX_PLAIN + 256) /* header + the longest ciphertext */
#define PQM_TLS_OVERHEAD 22 /* header, inner content type and AEAD tag of one record */
/* Records one write key protects before a KeyUpdate: well inside AES-GCM's limit of
 * 2^24.5 full records (RFC 8446 section 5.5). */
#define PQM_TLS_KEY_LIMIT (UINT64_C(1) << 23)

/* One direction's protection: the traffic secret, the AEAD context keyed from it, the
 * static IV and the record sequence number. */
struct pqm_tls_dir {
    EVP_CIPHER_CTX *ctx;
    unsigned char secret[48];
    unsigned char iv[12];
    uint64_t seq;
};

struct pqm_tls_suite; /* an AEAD and the hash of its key schedule */

enum pqm_tls_status {
    PQM_TLS_OK = 0,     /* progress (possibly no application bytes: a control record) */
    PQM_TLS_WANT_READ,  /* needs bytes the socket has not delivered yet */
    PQM_TLS_WANT_WRITE, /* the socket takes no more for now */
    PQM_TLS_EOF,        /* the peer sent close_notify, or closed its side */
    PQM_TLS_ERROR,      /* the connection must end: stream->error says why */
};

struct pqm_tls_stream {
    int fd;
    /* During the handshake: what the callbacks learn. */
    unsigned char client_secret[48], server_secret[48];
    size_t client_secret_len, server_secret_len;
    int server_finished_sent, client_finished_read;
    uint64_t records_sent_after_finished; /* the server's first application-key records */
    uint64_t records_read_after_finished; /* 0, or OpenSSL read into the client's data */
    unsigned char hdr[5];                 /* the record OpenSSL is being handed */
    size_t hdr_have, body_left;
    int bio_eof;                          /* the client closed during the handshake */
    /* After the takeover. */
    int taken;
    const struct pqm_tls_suite *suite;
    struct pqm_tls_dir rd, wr;
    size_t max_plain;     /* content per record sent (a negotiated max_fragment_length) */
    struct pqm_buf in;    /* received, not yet opened: whole records, then maybe a part */
    struct pqm_buf out;   /* sealed, not yet sent */
    int key_update_due;   /* the peer asked for ours: it goes before the next record */
    uint64_t key_limit;   /* records per write key (PQM_TLS_KEY_LIMIT; tests lower it) */
    int empty_run;        /* records in a row without application data */
    int eof;
    int alert;            /* the alert to send for a protocol error, 0: none */
    char error[160];
};

/* Installs the key log and message callbacks the takeover needs on CTX. */
void pqm__tls_stream_ctx_setup(SSL_CTX *ctx);
void pqm__tls_stream_init(struct pqm_tls_stream *st, int fd);
/* Makes SSL read and write FD through ST; 0, or -1 when OpenSSL has no memory. */
int pqm__tls_stream_attach(struct pqm_tls_stream *st, SSL *ssl);
/* After SSL_do_handshake returned 1 on SSL (TLS 1.3, a server): the records go on
 * here, and the caller frees SSL. 0, or -1 with ST->error (the connection must end). */
int pqm__tls_stream_take(struct pqm_tls_stream *st, SSL *ssl);
/* Opens received records into DST (CAP >= PQM_TLS_MAX_PLAIN), *GOT bytes. Receives
 * from the socket only when *READABLE, and clears it when the socket is drained. */
enum pqm_tls_status pqm__tls_stream_read(struct pqm_tls_stream *st, unsigned char *dst,
                                         size_t cap, size_t *got, int *readable);
/* Seals up to N bytes of P and sends what it can; *TAKEN bytes of P were sealed.
 * PQM_TLS_OK once everything sealed has left (N == 0: only sends what waits). */
enum pqm_tls_status pqm__tls_stream_write(struct pqm_tls_stream *st, const unsigned char *p,
                                          size_t n, size_t *taken);
/* 1 when received bytes wait to be opened, or sealed bytes to be sent. */
int pqm__tls_stream_has_input(const struct pqm_tls_stream *st);
int pqm__tls_stream_has_output(const struct pqm_tls_stream *st);
/* Ends the connection's records: close_notify, or the alert a protocol error calls
 * for, sent if the socket takes it at once (never waits). */
void pqm__tls_stream_close(struct pqm_tls_stream *st);
/* Releases the stream's empty buffers (pqm__buf_release): an idle connection keeps none. */
void pqm__tls_stream_release(struct pqm_tls_stream *st);
void pqm__tls_stream_free(struct pqm_tls_stream *st);

/* The record protection alone (the unit tests use it as a peer). SUITE_ID is the
 * IANA cipher suite number (0x1301, 0x1302, 0x1303). */
const struct pqm_tls_suite *pqm__tls_suite(uint16_t suite_id);
int pqm__tls_dir_init(struct pqm_tls_dir *d, const struct pqm_tls_suite *s, int enc,
                      const unsigned char *secret, size_t len);
/* secret' = HKDF-Expand-Label(secret, "traffic upd", "", Hash.length), keys from it. */
int pqm__tls_dir_update(struct pqm_tls_dir *d, const struct pqm_tls_suite *s, int enc);
/* Seals N bytes (<= PQM_TLS_MAX_PLAIN) of content TYPE into OUT, which has room for
 * N + PQM_TLS_OVERHEAD bytes: the whole record, header included. */
int pqm__tls_seal(struct pqm_tls_dir *d, int type, const unsigned char *p, size_t n,
                  unsigned char *out);
/* Seals INNER as the whole inner plaintext (content, type, padding), N + 21 bytes out:
 * the tests use it to send what pqm__tls_seal never makes (oversized, padded). */
int pqm__tls_seal_inner(struct pqm_tls_dir *d, const unsigned char *inner, size_t n,
                        unsigned char *out);
void pqm__tls_dir_free(struct pqm_tls_dir *d);

#endif
