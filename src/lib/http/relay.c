/* HTTP/1.1 message relay over llhttp (see relay.h). */
#include "http/relay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static struct pqm_relay *relay_of(llhttp_t *p)
{
    return (struct pqm_relay *)p->data;
}

int pqm__relay_fail(struct pqm_relay *r, int status, const char *reason)
{
    /* What this message wrote in this feed is dropped: a refused message is never
     * forwarded, not even its head. */
    if (r->msg_mark_valid && r->out->len > r->msg_mark)
        r->out->len = r->msg_mark;
    if (r->state != PQM_RELAY_ERROR) {
        r->state = PQM_RELAY_ERROR;
        r->error_status = status;
        snprintf(r->error_reason, sizeof(r->error_reason), "%s", reason);
    }
    return -1;
}

/* Appends AT to the head storage, growing it (doubling) up to head_max. */
static int head_add(struct pqm_relay *r, const char *at, size_t len)
{
    if (len > r->head_max - r->head_len)
        return r->kind == PQM_RELAY_REQUEST ? pqm__relay_fail(r, 431, "request head too large")
                                            : pqm__relay_fail(r, 502, "response head too large");
    if (r->head_len + len > r->head_cap) {
        size_t cap = r->head_cap ? r->head_cap : 1024;
        while (cap < r->head_len + len)
            cap *= 2;
        if (cap > r->head_max)
            cap = r->head_max;
        char *h = realloc(r->head, cap);
        if (h == NULL)
            return pqm__relay_fail(r, 500, "out of memory");
        r->head = h;
        r->head_cap = cap;
    }
    memcpy(r->head + r->head_len, at, len);
    r->head_len += len;
    return 0;
}

static int on_message_begin(llhttp_t *p)
{
    struct pqm_relay *r = relay_of(p);
    if (r->head == NULL) { /* offsets into the head always point into storage */
        r->head = malloc(1024);
        if (r->head == NULL)
            return pqm__relay_fail(r, 500, "out of memory");
        r->head_cap = 1024;
    }
    r->state = PQM_RELAY_HEAD;
    r->head_len = 0;
    r->nhdr = 0;
    r->in_value = 0;
    r->url = r->url_len = r->reason = r->reason_len = 0;
    r->chunked_out = r->no_body = r->interim = 0; /* close_after, expect_head: the caller's */
    r->msg_mark = r->out->len;
    r->msg_mark_valid = 1;
    r->body_bytes = 0;
    return 0;
}

/* Appends a piece of the start line's URL or reason to the head storage. */
static int span_add(struct pqm_relay *r, uint32_t *off, uint32_t *len, const char *at,
                    size_t n)
{
    if (*len == 0)
        *off = (uint32_t)r->head_len;
    *len += (uint32_t)n;
    return head_add(r, at, n);
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    struct pqm_relay *r = relay_of(p);
    return span_add(r, &r->url, &r->url_len, at, len);
}

static int on_status(llhttp_t *p, const char *at, size_t len)
{
    struct pqm_relay *r = relay_of(p);
    return span_add(r, &r->reason, &r->reason_len, at, len);
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct pqm_relay *r = relay_of(p);
    if (r->state != PQM_RELAY_HEAD)
        return 0; /* trailer fields: not forwarded */
    if (r->nhdr == 0 || r->in_value) {
        if (r->nhdr == PQM_HTTP_MAX_HEADERS)
            return pqm__relay_fail(r, 431, "too many header fields");
        struct pqm_relay_hdr *h = &r->hdr[r->nhdr++];
        h->name = (uint32_t)r->head_len;
        h->name_len = 0;
        h->value = (uint32_t)r->head_len;
        h->value_len = 0;
        r->in_value = 0;
    }
    r->hdr[r->nhdr - 1].name_len += (uint32_t)len;
    return head_add(r, at, len);
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct pqm_relay *r = relay_of(p);
    if (r->state != PQM_RELAY_HEAD)
        return 0;
    struct pqm_relay_hdr *h = &r->hdr[r->nhdr - 1];
    if (!r->in_value) {
        h->value = (uint32_t)r->head_len;
        h->value_len = 0;
        r->in_value = 1;
    }
    h->value_len += (uint32_t)len;
    return head_add(r, at, len);
}

/* Field names compared the way an upstream framework might: any case, and '_' as '-'
 * (CGI-style servers map both to the same variable). */
static int name_eq(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);
    if (alen != blen)
        return 0;
    for (size_t i = 0; i < alen; i++) {
        char c = a[i] == '_' ? '-' : a[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != b[i])
            return 0;
    }
    return 1;
}

static int name_prefix(const char *a, size_t alen, const char *prefix)
{
    size_t plen = strlen(prefix);
    return alen >= plen && name_eq(a, plen, prefix);
}

int pqm__http_is_identity_header(const char *name, size_t len)
{
    return name_prefix(name, len, "x-client-cert") || name_eq(name, len, "client-cert") ||
           name_eq(name, len, "client-cert-chain") ||
           name_eq(name, len, "x-forwarded-client-cert") || name_prefix(name, len, "x-ssl-") ||
           name_eq(name, len, "x-forwarded-for") || name_eq(name, len, "x-forwarded-proto") ||
           name_eq(name, len, "forwarded") || name_eq(name, len, "x-real-ip");
}

/* RFC 9110 7.6.1: connection-specific fields, and those the Connection field names. */
static int is_hop_by_hop(const struct pqm_relay *r, const char *name, size_t len)
{
    static const char *const fixed[] = {"connection",        "keep-alive", "proxy-connection",
                                        "te",                "trailer",    "transfer-encoding",
                                        "upgrade",           "content-length",
                                        "proxy-authenticate", "proxy-authorization"};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        if (name_eq(name, len, fixed[i]))
            return 1;
    if (name_eq(name, len, "host"))
        return 0; /* "Connection: host" cannot take the request's authority away */
    for (size_t i = 0; i < r->nhdr; i++) {
        const struct pqm_relay_hdr *h = &r->hdr[i];
        if (!name_eq(r->head + h->name, h->name_len, "connection"))
            continue;
        const char *v = r->head + h->value, *end = v + h->value_len;
        while (v < end) {
            while (v < end && (*v == ' ' || *v == '\t' || *v == ','))
                v++;
            const char *tok = v;
            while (v < end && *v != ',' && *v != ' ' && *v != '\t')
                v++;
            if (v > tok && (size_t)(v - tok) == len && strncasecmp(tok, name, len) == 0)
                return 1;
        }
    }
    return 0;
}

const char *pqm__relay_header(const struct pqm_relay *r, const char *name, size_t *len)
{
    size_t nlen = strlen(name);
    for (size_t i = 0; i < r->nhdr; i++) {
        const struct pqm_relay_hdr *h = &r->hdr[i];
        if (h->name_len == nlen && strncasecmp(r->head + h->name, name, nlen) == 0) {
            *len = h->value_len;
            return r->head + h->value;
        }
    }
    return NULL;
}

void pqm__relay_target(const struct pqm_relay *r, char *method, size_t mlen, char *target,
                       size_t tlen)
{
    snprintf(method, mlen, "%s", llhttp_method_name((llhttp_method_t)r->method));
    snprintf(target, tlen, "%.*s", (int)r->url_len, r->head + r->url);
}

static int count_headers(const struct pqm_relay *r, const char *name)
{
    int n = 0;
    for (size_t i = 0; i < r->nhdr; i++)
        if (name_eq(r->head + r->hdr[i].name, r->hdr[i].name_len, name))
            n++;
    return n;
}

static int write_start_line(struct pqm_relay *r)
{
    struct pqm_buf *o = r->out;
    if (r->kind == PQM_RELAY_REQUEST) {
        const char *m = llhttp_method_name((llhttp_method_t)r->method);
        return pqm__buf_add(o, m, strlen(m)) | pqm__buf_add(o, " ", 1) |
               pqm__buf_add(o, r->head + r->url, r->url_len) |
               pqm__buf_add(o, " HTTP/1.1\r\n", 11);
    }
    return pqm__buf_addf(o, "HTTP/1.1 %d ", r->status) |
           pqm__buf_add(o, r->head + r->reason, r->reason_len) | pqm__buf_add(o, "\r\n", 2);
}

/* Transfer-Encoding as received (its codings, such as gzip, are the payload's and
 * stay), with chunked last; or just chunked when the body goes out chunked because it
 * was delimited by the close. */
static int token_eq(const char *t, size_t n, const char *word)
{
    return strlen(word) == n && strncasecmp(t, word, n) == 0;
}

/* Transfer-Encoding as received, without chunked and identity: its other codings (gzip)
 * are the payload's and stay; chunked is stated once, last. Only fields spelled exactly
 * Transfer-Encoding count, as for llhttp (a Transfer_Encoding field is dropped as
 * hop-by-hop, never read as framing). A chunked that is not last is refused. */
static int write_transfer_encoding(struct pqm_relay *r)
{
    struct pqm_buf *o = r->out;
    int rc = pqm__buf_add(o, "Transfer-Encoding: ", 19);
    size_t seen_chunked = 0, tokens = 0;
    for (size_t i = 0; i < r->nhdr; i++) {
        const struct pqm_relay_hdr *h = &r->hdr[i];
        if (h->name_len != 17 || strncasecmp(r->head + h->name, "transfer-encoding", 17) != 0)
            continue;
        const char *v = r->head + h->value, *end = v + h->value_len;
        while (v < end) {
            while (v < end && (*v == ' ' || *v == '\t' || *v == ','))
                v++;
            const char *t = v;
            while (v < end && *v != ',')
                v++;
            size_t n = (size_t)(v - t);
            while (n > 0 && (t[n - 1] == ' ' || t[n - 1] == '\t'))
                n--;
            if (n == 0)
                continue;
            tokens++;
            if (token_eq(t, n, "chunked")) {
                seen_chunked = tokens;
                continue;
            }
            if (seen_chunked || token_eq(t, n, "identity"))
                continue;
            rc |= pqm__buf_add(o, t, n);
            rc |= pqm__buf_add(o, ", ", 2);
        }
    }
    if (seen_chunked != 0 && seen_chunked != tokens)
        return pqm__relay_fail(r, r->kind == PQM_RELAY_REQUEST ? 400 : 502,
                               "Transfer-Encoding has a coding after chunked");
    if ((rc | pqm__buf_add(o, "chunked\r\n", 9)) != 0)
        return pqm__relay_fail(r, 500, "forwarded head too large");
    return 0;
}

/* The forwarded head: start line, the kept fields as received, the caller's fields,
 * and the framing stated once. On a refusal nothing of it stays in the output. */
static int write_head(struct pqm_relay *r)
{
    llhttp_t *p = &r->parser;
    size_t mark = r->out->len;
    int rc = write_start_line(r);
    for (size_t i = 0; rc == 0 && i < r->nhdr; i++) {
        const struct pqm_relay_hdr *h = &r->hdr[i];
        const char *name = r->head + h->name;
        if (is_hop_by_hop(r, name, h->name_len) ||
            (r->kind == PQM_RELAY_REQUEST && pqm__http_is_identity_header(name, h->name_len)))
            continue;
        rc = pqm__buf_add(r->out, name, h->name_len);
        rc = rc ? rc : pqm__buf_add(r->out, ": ", 2);
        rc = rc ? rc : pqm__buf_add(r->out, r->head + h->value, h->value_len);
        rc = rc ? rc : pqm__buf_add(r->out, "\r\n", 2);
    }
    if (rc == 0 && r->on_head != NULL && r->on_head(r, r->out, r->arg) != 0) {
        r->out->len = mark;
        return -1;
    }
    /* RFC 9110 8.6: no Content-Length in a 1xx or 204; a response to HEAD and a 304
     * keep the one they announce. */
    int cl_allowed = r->kind == PQM_RELAY_REQUEST || (!r->interim && r->status != 204);
    if (rc == 0 && r->chunked_out && write_transfer_encoding(r) != 0) {
        r->out->len = mark;
        return -1;
    }
    else if (rc == 0 && cl_allowed && (p->flags & F_CONTENT_LENGTH))
        rc = pqm__buf_addf(r->out, "Content-Length: %llu\r\n",
                           (unsigned long long)p->content_length);
    if (rc == 0 && r->kind == PQM_RELAY_RESPONSE && !r->interim)
        rc = pqm__buf_addf(r->out, "Connection: %s\r\n", r->close_after ? "close" : "keep-alive");
    if (rc == 0 && r->kind == PQM_RELAY_REQUEST)
        rc = pqm__buf_addf(r->out, "Connection: keep-alive\r\n");
    rc = rc ? rc : pqm__buf_add(r->out, "\r\n", 2);
    if (rc != 0) {
        r->out->len = mark;
        return pqm__relay_fail(r, 500, "forwarded head too large");
    }
    return 0;
}

static int request_head_ok(struct pqm_relay *r)
{
    llhttp_t *p = &r->parser;
    if (p->http_major != 1 || p->http_minor != 1)
        return pqm__relay_fail(r, 505, "only HTTP/1.1 is served");
    if (r->method == HTTP_CONNECT)
        return pqm__relay_fail(r, 405, "CONNECT is not served");
    if (r->url_len == 0 || r->head[r->url] != '/')
        return pqm__relay_fail(r, 400, "the request target must be an absolute path");
    if (count_headers(r, "host") != 1)
        return pqm__relay_fail(r, 400, "an HTTP/1.1 request needs exactly one Host field");
    /* RFC 9112 6.3: a request whose Transfer-Encoding does not end in chunked has no
     * length the server can find. llhttp says so too, but only after this callback:
     * refuse before anything of the request is written. */
    if (count_headers(r, "transfer-encoding") > 0 && !(p->flags & F_CHUNKED))
        return pqm__relay_fail(r, 400, "a request's Transfer-Encoding must end in chunked");
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    struct pqm_relay *r = relay_of(p);
    r->keep_alive = llhttp_should_keep_alive(p);
    if (r->kind == PQM_RELAY_REQUEST) {
        r->method = p->method;
        if (request_head_ok(r) != 0)
            return -1;
        /* Upgrade is hop-by-hop and not forwarded: the request is an ordinary one, and
         * what follows it on the connection is parsed as HTTP. */
        p->upgrade = 0;
        r->chunked_out = (p->flags & F_CHUNKED) != 0;
    } else {
        r->status = p->status_code;
        if (r->status < 100 || r->status > 599)
            return pqm__relay_fail(r, 502, "the upstream sent a status code outside 100-599");
        for (uint32_t i = 0; i < r->reason_len; i++) {
            unsigned char ch = (unsigned char)r->head[r->reason + i];
            if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
                return pqm__relay_fail(r, 502, "the upstream's reason phrase has a control "
                                               "character");
        }
        if (r->status == 101)
            return pqm__relay_fail(r, 502, "the upstream switched protocols (101), which the "
                                           "gateway does not relay");
        r->interim = r->status >= 100 && r->status < 200;
        r->no_body = r->interim || r->status == 204 || r->status == 304 || r->expect_head;
        /* A body delimited by the close goes to the client chunked, so that the client's
         * connection can stay open. */
        r->chunked_out = !r->no_body && ((p->flags & F_CHUNKED) ||
                                         !(p->flags & F_CONTENT_LENGTH));
    }
    if (write_head(r) != 0)
        return -1;
    r->state = PQM_RELAY_BODY;
    return r->no_body ? 1 : 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct pqm_relay *r = relay_of(p);
    int rc = 0;
    if (r->chunked_out)
        rc = pqm__buf_addf(r->out, "%zx\r\n", len);
    rc = rc ? rc : pqm__buf_add(r->out, at, len);
    if (rc == 0 && r->chunked_out)
        rc = pqm__buf_add(r->out, "\r\n", 2);
    if (rc != 0)
        return pqm__relay_fail(r, 500, "output buffer full");
    r->body_bytes += len;
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    struct pqm_relay *r = relay_of(p);
    if (r->chunked_out && pqm__buf_add(r->out, "0\r\n\r\n", 5) != 0)
        return pqm__relay_fail(r, 500, "output buffer full");
    if (r->interim) {
        r->state = PQM_RELAY_IDLE; /* the final response follows */
        r->awaiting_final = 1;
        return 0;
    }
    r->awaiting_final = 0;
    r->state = PQM_RELAY_DONE;
    return HPE_PAUSED; /* one message at a time: pipelined ones wait their turn */
}

void pqm__relay_init(struct pqm_relay *r, enum pqm_relay_kind kind, struct pqm_buf *out,
                     pqm_relay_head_cb on_head, void *arg)
{
    char *head = r->head;
    size_t cap = r->head_cap;
    memset(r, 0, sizeof(*r));
    r->head = head;
    r->head_cap = cap;
    r->kind = kind;
    r->out = out;
    r->on_head = on_head;
    r->arg = arg;
    r->head_max = PQM_HTTP_HEAD_MAX;
    llhttp_settings_init(&r->settings);
    r->settings.on_message_begin = on_message_begin;
    r->settings.on_url = on_url;
    r->settings.on_status = on_status;
    r->settings.on_header_field = on_header_field;
    r->settings.on_header_value = on_header_value;
    r->settings.on_headers_complete = on_headers_complete;
    r->settings.on_body = on_body;
    r->settings.on_message_complete = on_message_complete;
    llhttp_init(&r->parser, kind == PQM_RELAY_REQUEST ? HTTP_REQUEST : HTTP_RESPONSE,
                &r->settings);
    r->parser.data = r;
    r->state = PQM_RELAY_IDLE;
}

static size_t parse_error(struct pqm_relay *r, llhttp_errno_t err, const unsigned char *p)
{
    if (r->state != PQM_RELAY_ERROR) {
        char why[160];
        snprintf(why, sizeof(why), "malformed %s: %s",
                 r->kind == PQM_RELAY_REQUEST ? "request" : "response",
                 llhttp_get_error_reason(&r->parser) ? llhttp_get_error_reason(&r->parser)
                                                     : llhttp_errno_name(err));
        pqm__relay_fail(r, r->kind == PQM_RELAY_REQUEST ? 400 : 502, why);
    }
    const char *pos = llhttp_get_error_pos(&r->parser);
    return pos != NULL ? (size_t)((const unsigned char *)pos - p) : 0;
}

size_t pqm__relay_feed(struct pqm_relay *r, const unsigned char *p, size_t n)
{
    if (r->state == PQM_RELAY_DONE || r->state == PQM_RELAY_ERROR || n == 0)
        return 0;
    if (r->state == PQM_RELAY_HEAD) { /* a head under way has written nothing yet */
        r->msg_mark = r->out->len;
        r->msg_mark_valid = 1;
    }
    llhttp_errno_t err = llhttp_execute(&r->parser, (const char *)p, n);
    size_t used = n;
    if (err == HPE_PAUSED && r->state == PQM_RELAY_DONE) {
        used = (size_t)((const unsigned char *)llhttp_get_error_pos(&r->parser) - p);
    } else if (err != HPE_OK) {
        used = parse_error(r, err, p);
    }
    r->msg_mark_valid = 0; /* the caller may send what was written */
    return used;
}

int pqm__relay_eof(struct pqm_relay *r)
{
    if (r->state == PQM_RELAY_IDLE && r->awaiting_final) {
        pqm__relay_fail(r, 502, "the connection closed after an interim response");
        return -1;
    }
    if (r->state == PQM_RELAY_IDLE || r->state == PQM_RELAY_DONE)
        return 0;
    if (r->state == PQM_RELAY_ERROR)
        return -1;
    llhttp_errno_t err = llhttp_finish(&r->parser);
    if ((err == HPE_OK || err == HPE_PAUSED) && r->state == PQM_RELAY_DONE)
        return 0;
    pqm__relay_fail(r, 502, "the connection closed in the middle of a message");
    return -1;
}

void pqm__relay_free(struct pqm_relay *r)
{
    free(r->head);
    r->head = NULL;
    r->head_len = r->head_cap = 0;
}

void pqm__relay_next(struct pqm_relay *r)
{
    if (r->state != PQM_RELAY_DONE)
        return;
    r->state = PQM_RELAY_IDLE;
    llhttp_resume(&r->parser);
}
