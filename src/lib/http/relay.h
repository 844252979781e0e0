/* One direction of an HTTP/1.1 exchange: parses messages with llhttp and writes their
 * forwarded form into an output buffer: a rebuilt head (hop-by-hop headers and any
 * header that could pass for the gateway's identity headers removed, the caller's own
 * headers added, the framing restated) and the body re-framed, streamed as it comes.
 * Nothing that llhttp finds ambiguous (both Content-Length and Transfer-Encoding, a
 * repeated Content-Length, a bad chunk size, obs-fold, a bare CR or LF) is forwarded:
 * the relay stops with status 400. */
#ifndef PQM_HTTP_RELAY_H
#define PQM_HTTP_RELAY_H

#include <stddef.h>
#include <stdint.h>

#include <llhttp.h>

#include "util/buf.h"

#define PQM_HTTP_HEAD_MAX 32768 /* request or response head, as received */
#define PQM_HTTP_MAX_HEADERS 128
/* Output the relay may write for one head: the filtered head plus the caller's. */
#define PQM_HTTP_OUT_RESERVE (PQM_HTTP_HEAD_MAX + 16384)

enum pqm_relay_kind { PQM_RELAY_REQUEST, PQM_RELAY_RESPONSE };

enum pqm_relay_state {
    PQM_RELAY_IDLE,     /* between messages */
    PQM_RELAY_HEAD,     /* reading a head */
    PQM_RELAY_BODY,     /* head forwarded, body streaming */
    PQM_RELAY_DONE,     /* a message ended; pqm__relay_next() starts the next */
    PQM_RELAY_ERROR,    /* refused: error_status and error_reason say why */
};

struct pqm_relay;
/* Appends the caller's headers (each "Name: value\r\n") for the message whose head was
 * just read; returns 0, or -1 to refuse it (the hook sets the relay's error). */
typedef int (*pqm_relay_head_cb)(struct pqm_relay *r, struct pqm_buf *out, void *arg);

struct pqm_relay_hdr {
    uint32_t name, name_len, value, value_len; /* offsets into head[] */
};

struct pqm_relay {
    llhttp_t parser;
    llhttp_settings_t settings;
    enum pqm_relay_kind kind;
    enum pqm_relay_state state;
    struct pqm_buf *out;
    pqm_relay_head_cb on_head;
    void *arg;
    /* The current head, as received: allocated on first use, grown up to head_max, kept
     * for the relay's next messages. */
    char *head;
    size_t head_len, head_cap;
    uint32_t url, url_len, reason, reason_len; /* request target / response reason */
    struct pqm_relay_hdr hdr[PQM_HTTP_MAX_HEADERS];
    size_t nhdr;
    int in_value;
    /* The message being forwarded. */
    int method;            /* llhttp_method_t of a request */
    int status;            /* of a response */
    int chunked_out;       /* the body goes out chunked */
    int no_body;           /* a response to HEAD, 1xx, 204, 304 */
    int expect_head;       /* responses: the request was HEAD */
    int keep_alive;        /* the sender keeps the connection after this message */
    int interim;           /* responses: a 1xx that another response follows */
    int close_after;       /* responses: tell the client the connection closes */
    uint64_t body_bytes;   /* body bytes of this message */
    int error_status;
    char error_reason[160];
    size_t msg_mark;      /* output length when this message began */
    int msg_mark_valid;   /* nothing of it can have been sent yet (same feed) */
    int awaiting_final;   /* responses: a 1xx came, the final response has not */
    size_t head_max;      /* the largest head accepted, at most PQM_HTTP_HEAD_MAX */
};

/* R must be zeroed, or a relay initialised before (its head storage is kept). */
void pqm__relay_init(struct pqm_relay *r, enum pqm_relay_kind kind, struct pqm_buf *out,
                     pqm_relay_head_cb on_head, void *arg);
/* Frees R's head storage. */
void pqm__relay_free(struct pqm_relay *r);
/* Parses up to N bytes; returns how many were consumed. Stops early at the end of a
 * message (state DONE) or on an error (state ERROR). The caller feeds only while OUT has
 * room for PQM_HTTP_OUT_RESERVE + N bytes. */
size_t pqm__relay_feed(struct pqm_relay *r, const unsigned char *p, size_t n);
/* The sender closed its side: ends a message delimited by the close. Returns 0 when
 * that ended a message cleanly (or none was under way), -1 when one was cut short. */
int pqm__relay_eof(struct pqm_relay *r);
/* After DONE: ready for the next message. */
void pqm__relay_next(struct pqm_relay *r);
/* A header of the current head by name (case-insensitive), or NULL; *LEN its length. */
const char *pqm__relay_header(const struct pqm_relay *r, const char *name, size_t *len);
/* Method name and request target of the current request (NUL-terminated copies). */
void pqm__relay_target(const struct pqm_relay *r, char *method, size_t mlen, char *target,
                       size_t tlen);
/* Sets the relay's error (state ERROR); returns -1. */
int pqm__relay_fail(struct pqm_relay *r, int status, const char *reason);
/* 1 when NAME (any case, '_' taken as '-') could pass for a header the gateway sets
 * about the client's identity. */
int pqm__http_is_identity_header(const char *name, size_t len);

#endif
