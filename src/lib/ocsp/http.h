/* OCSP over HTTP (RFC 6960 appendix A, RFC 5019): requests read with llhttp in its
 * strict mode, answers written whole into a bounded buffer. No sockets: the server
 * (server.c) moves the bytes, the fuzz target feeds them.
 *
 *   POST PATH, Content-Type: application/ocsp-request, the DER request as the body;
 *   GET PATH<url-encoded base64 of the DER request>;
 *   GET /healthz answers 200 "ok" (for load balancers and probes).
 * Anything else: 404 (another path, or a GET whose path is not base64), 405 (another
 * method), 415 (a POST of another content type), 413/414/431 (a body, target or head
 * too large; the connection then closes), 400 (what llhttp refuses). */
#ifndef PQM_OCSP_HTTP_H
#define PQM_OCSP_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <llhttp.h>

#include "ocsp/cache.h"
#include "ocsp/responder.h"
#include "util/buf.h"

#define PQM_OCSP_TARGET_MAX 4096 /* GET's target: RFC 5019 uses GET below 255 bytes of DER */
#define PQM_OCSP_HEAD_MAX 8192 /* header fields, all together */
/* The largest answer: a response for 16 certificates signed with ML-DSA-87 and its
 * certificate, with the HTTP head. */
#define PQM_OCSP_ANSWER_MAX (64 * 1024)

/* What answers a complete request. */
struct pqm_ocsp_site {
    const struct pqm_ocsp_responder *r;
    pqm_ocsp_lookup_fn lookup;
    void *lookup_arg;
    const char *path; /* where requests go: "/" (default) or "/ocsp" ... */
    int64_t now;
    struct pqm_ocsp_cache *cache; /* answers to requests without a nonce; may be NULL */
};

enum pqm_ocsp_http_state {
    PQM_OCSP_HTTP_IDLE,     /* between requests */
    PQM_OCSP_HTTP_READING,  /* a request under way */
    PQM_OCSP_HTTP_COMPLETE, /* a request read whole: answer it */
    PQM_OCSP_HTTP_ERROR,    /* refused: answer it, then close */
};

struct pqm_ocsp_http {
    llhttp_t parser;
    llhttp_settings_t settings;
    enum pqm_ocsp_http_state state;
    struct pqm_buf url, body;
    size_t head_bytes;
    char field[32];      /* the header name being read (longer ones: none of ours) */
    size_t field_len;
    int in_value;        /* the value being read: none of ours, Content-Type or Expect */
    char value[64];
    size_t value_len;
    char ctype[64];      /* Content-Type, "" when none */
    int ctype_bad;       /* longer than ctype[], or given twice */
    int expect_continue; /* "Expect: 100-continue": send 100 before the body */
    int continue_due;    /* ... and it is due now (the server writes it) */
    int error_status;
    const char *error_text;
};

void pqm__ocsp_http_init(struct pqm_ocsp_http *h);
void pqm__ocsp_http_free(struct pqm_ocsp_http *h);
/* Parses up to N bytes; returns how many were taken. Stops at the end of a request
 * (COMPLETE) or at a refusal (ERROR). */
size_t pqm__ocsp_http_feed(struct pqm_ocsp_http *h, const unsigned char *p, size_t n);
/* The peer closed its side: a request cut short becomes an ERROR (nothing to answer). */
void pqm__ocsp_http_eof(struct pqm_ocsp_http *h);

/* What answering did. */
struct pqm_ocsp_served {
    int http_status;
    int ocsp_status; /* OCSPResponseStatus, -1 when the answer is not an OCSP response */
    int close;       /* close the connection once the answer is sent */
};

/* Writes the answer to the COMPLETE or ERROR request into OUT (which has room for
 * PQM_OCSP_ANSWER_MAX), then makes H ready for the next request (unless it must close).
 * Returns -1 when OUT had no room (then close). */
int pqm__ocsp_http_answer(struct pqm_ocsp_http *h, const struct pqm_ocsp_site *site,
                          struct pqm_buf *out, struct pqm_ocsp_served *served);

/* URL-decodes and base64-decodes the GET path TEXT (LEN bytes) into OUT (at most
 * OUTMAX bytes): the length, or -1 when TEXT is not that. */
long pqm__ocsp_get_decode(const char *text, size_t len, unsigned char *out, size_t outmax);

#endif
