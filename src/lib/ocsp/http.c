/* OCSP over HTTP: reading requests, routing them, writing answers (see http.h). */
#include "ocsp/http.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>

#define BODY_MAX PQM_OCSP_REQUEST_MAX

static struct pqm_ocsp_http *of(llhttp_t *p)
{
    return p->data;
}

/* Sets the refusal (the first one stands) and stops the parser. */
static int refuse(struct pqm_ocsp_http *h, int status, const char *text)
{
    if (h->state != PQM_OCSP_HTTP_ERROR) {
        h->state = PQM_OCSP_HTTP_ERROR;
        h->error_status = status;
        h->error_text = text;
    }
    return -1;
}

static int on_message_begin(llhttp_t *p)
{
    struct pqm_ocsp_http *h = of(p);
    h->state = PQM_OCSP_HTTP_READING;
    pqm__buf_consume(&h->url, h->url.len);
    pqm__buf_consume(&h->body, h->body.len);
    h->head_bytes = h->field_len = h->value_len = 0;
    h->ctype[0] = '\0';
    h->in_value = h->ctype_bad = h->expect_continue = h->continue_due = 0;
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    struct pqm_ocsp_http *h = of(p);
    if (pqm__buf_add(&h->url, at, len) != 0)
        return refuse(h, 414, "request target too long\n");
    return 0;
}

static int count_head(struct pqm_ocsp_http *h, size_t len)
{
    h->head_bytes += len;
    return h->head_bytes > PQM_OCSP_HEAD_MAX ? refuse(h, 431, "request head too large\n") : 0;
}

/* Appends AT to a bounded text field; *LEN counts every byte, so that a value too long
 * for BUF is known as such (*LEN >= SIZE). */
static void field_add(char *buf, size_t size, size_t *len, const char *at, size_t n)
{
    if (*len < size && n < size - *len)
        memcpy(buf + *len, at, n);
    *len = *len + n < *len ? size : *len + n;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct pqm_ocsp_http *h = of(p);
    if (count_head(h, len) != 0)
        return -1;
    field_add(h->field, sizeof(h->field), &h->field_len, at, len);
    return 0;
}

enum { V_NONE, V_CTYPE, V_EXPECT };

/* Only two fields matter here: Content-Type and Expect. */
static int on_header_field_complete(llhttp_t *p)
{
    struct pqm_ocsp_http *h = of(p);
    h->in_value = V_NONE;
    if (h->field_len < sizeof(h->field)) {
        h->field[h->field_len] = '\0';
        if (strcasecmp(h->field, "content-type") == 0)
            h->in_value = V_CTYPE;
        else if (strcasecmp(h->field, "expect") == 0)
            h->in_value = V_EXPECT;
    }
    h->field_len = 0;
    h->value_len = 0;
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct pqm_ocsp_http *h = of(p);
    if (count_head(h, len) != 0)
        return -1;
    if (h->in_value != V_NONE)
        field_add(h->value, sizeof(h->value), &h->value_len, at, len);
    return 0;
}

static int on_header_value_complete(llhttp_t *p)
{
    struct pqm_ocsp_http *h = of(p);
    int fits = h->value_len < sizeof(h->value);
    if (fits)
        h->value[h->value_len] = '\0';
    if (h->in_value == V_CTYPE) {
        /* Given twice, or too long to be the one type accepted: refused at the end. */
        h->ctype_bad |= h->ctype[0] != '\0' || !fits;
        if (fits)
            memcpy(h->ctype, h->value, h->value_len + 1);
    } else if (h->in_value == V_EXPECT) {
        h->expect_continue = fits && strcasecmp(h->value, "100-continue") == 0;
    }
    h->in_value = V_NONE;
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    struct pqm_ocsp_http *h = of(p);
    /* A body announced larger than any request is refused before it is sent. */
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > BODY_MAX)
        return refuse(h, 413, "request body too large\n");
    h->continue_due = h->expect_continue && p->method == HTTP_POST;
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct pqm_ocsp_http *h = of(p);
    if (pqm__buf_add(&h->body, at, len) != 0)
        return refuse(h, 413, "request body too large\n");
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    of(p)->state = PQM_OCSP_HTTP_COMPLETE;
    return HPE_PAUSED; /* one request at a time: pipelined ones wait their turn */
}

void pqm__ocsp_http_init(struct pqm_ocsp_http *h)
{
    memset(h, 0, sizeof(*h));
    llhttp_settings_init(&h->settings);
    h->settings.on_message_begin = on_message_begin;
    h->settings.on_url = on_url;
    h->settings.on_header_field = on_header_field;
    h->settings.on_header_field_complete = on_header_field_complete;
    h->settings.on_header_value = on_header_value;
    h->settings.on_header_value_complete = on_header_value_complete;
    h->settings.on_headers_complete = on_headers_complete;
    h->settings.on_body = on_body;
    h->settings.on_message_complete = on_message_complete;
    llhttp_init(&h->parser, HTTP_REQUEST, &h->settings);
    h->parser.data = h;
    pqm__buf_init(&h->url, PQM_OCSP_TARGET_MAX);
    pqm__buf_init(&h->body, BODY_MAX);
}

void pqm__ocsp_http_free(struct pqm_ocsp_http *h)
{
    pqm__buf_free(&h->url);
    pqm__buf_free(&h->body);
}

size_t pqm__ocsp_http_feed(struct pqm_ocsp_http *h, const unsigned char *p, size_t n)
{
    if (h->state == PQM_OCSP_HTTP_COMPLETE || h->state == PQM_OCSP_HTTP_ERROR || n == 0)
        return 0;
    llhttp_errno_t err = llhttp_execute(&h->parser, (const char *)p, n);
    if (err == HPE_OK)
        return n;
    const unsigned char *pos = (const unsigned char *)llhttp_get_error_pos(&h->parser);
    size_t used = pos != NULL && pos >= p && pos <= p + n ? (size_t)(pos - p) : n;
    if (err == HPE_PAUSED && h->state == PQM_OCSP_HTTP_COMPLETE)
        return used;
    refuse(h, 400, "bad request\n"); /* what llhttp refuses: nothing is answered of it */
    return used;
}

void pqm__ocsp_http_eof(struct pqm_ocsp_http *h)
{
    if (h->state == PQM_OCSP_HTTP_READING)
        refuse(h, 400, "request cut short\n");
}

/* --- GET: the request in the path ---------------------------------------------------- */

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static int b64_char(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '/';
}

long pqm__ocsp_get_decode(const char *text, size_t len, unsigned char *out, size_t outmax)
{
    char b64[PQM_OCSP_TARGET_MAX + 4];
    size_t n = 0, pad = 0;
    if (len == 0 || len > PQM_OCSP_TARGET_MAX)
        return -1;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)text[i];
        if (c == '%') {
            int hi = i + 2 < len ? hexval(text[i + 1]) : -1, lo = hi >= 0 ? hexval(text[i + 2]) : -1;
            if (lo < 0)
                return -1;
            c = hi << 4 | lo;
            i += 2;
        }
        if (c == '=' && n > 0)
            pad++;
        else if (pad == 0 && b64_char(c))
            b64[n++] = (char)c;
        else
            return -1; /* not base64, or data after the padding */
    }
    /* Padding may be left out; when present it must complete the last group. */
    if (n % 4 == 1 || pad > 2 || (pad > 0 && (n + pad) % 4 != 0))
        return -1;
    size_t missing = (4 - n % 4) % 4;
    if ((n + missing) / 4 * 3 - missing > outmax)
        return -1;
    memset(b64 + n, '=', missing);
    int got = EVP_DecodeBlock(out, (const unsigned char *)b64, (int)(n + missing));
    return got < 0 ? -1 : got - (long)missing;
}

/* --- answers ----------------------------------------------------------------------- */

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 431:
        return "Request Header Fields Too Large";
    default:
        return "Internal Server Error";
    }
}

static void http_date(int64_t t, char *out, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (gmtime_r(&tt, &tm) == NULL || strftime(out, len, "%a, %d %b %Y %H:%M:%S GMT", &tm) == 0)
        snprintf(out, len, "Thu, 01 Jan 1970 00:00:00 GMT");
}

/* What the answer says of the connection: nothing (HTTP/1.1 keeps it), that it closes, or
 * (to an HTTP/1.0 client that asked) that it is kept. */
enum { CONN_KEPT, CONN_CLOSE, CONN_KEPT_10 };

/* The status line and the fields every answer has. */
static int head(struct pqm_buf *out, int status, const char *type, size_t len, int close,
                int64_t now)
{
    char date[40];
    http_date(now, date, sizeof(date));
    return pqm__buf_addf(out,
                         "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: %s\r\n"
                         "Content-Length: %zu\r\n%s",
                         status, reason_phrase(status), date, type, len,
                         close == CONN_CLOSE     ? "Connection: close\r\n"
                         : close == CONN_KEPT_10 ? "Connection: keep-alive\r\n"
                                                 : "");
}

static int text_answer(struct pqm_buf *out, int status, const char *text, int close,
                       int64_t now, struct pqm_ocsp_served *s)
{
    s->http_status = status;
    s->ocsp_status = -1;
    s->close = close == CONN_CLOSE;
    size_t len = strlen(text);
    if (head(out, status, "text/plain", len, close, now) != 0 ||
        (status == 405 && pqm__buf_addf(out, "Allow: GET, POST\r\n") != 0) ||
        pqm__buf_addf(out, "\r\n") != 0 || pqm__buf_add(out, text, len) != 0)
        return -1;
    return 0;
}

/* RFC 5019 6.2: a GET answer (without a nonce) may be cached until its nextUpdate. */
static int cache_fields(struct pqm_buf *out, const struct pqm_ocsp_answer *a, int cacheable,
                        int64_t now)
{
    if (!cacheable || a->status != OCSP_RESPONSE_STATUS_SUCCESSFUL || a->nonce)
        return pqm__buf_addf(out, "Cache-Control: no-store\r\n");
    char last[40], expires[40];
    http_date(a->this_update, last, sizeof(last));
    http_date(a->next_update, expires, sizeof(expires));
    long long age = a->next_update > now ? (long long)(a->next_update - now) : 0;
    return pqm__buf_addf(out,
                         "Cache-Control: max-age=%lld, public, no-transform, must-revalidate\r\n"
                         "Last-Modified: %s\r\nExpires: %s\r\n",
                         age, last, expires);
}

static int ocsp_head(struct pqm_buf *out, const struct pqm_ocsp_site *site,
                     const struct pqm_ocsp_answer *a, int cacheable, int close,
                     struct pqm_ocsp_served *s)
{
    s->http_status = 200;
    s->ocsp_status = a->status;
    s->close = close == CONN_CLOSE;
    return head(out, 200, "application/ocsp-response", a->len, close, site->now) == 0 &&
                   cache_fields(out, a, cacheable, site->now) == 0 &&
                   pqm__buf_addf(out, "\r\n") == 0 && pqm__buf_add(out, a->der, a->len) == 0
               ? 0
               : -1;
}

static int ocsp_answer(struct pqm_buf *out, const struct pqm_ocsp_site *site,
                       const unsigned char *der, size_t len, int cacheable, int close,
                       struct pqm_ocsp_served *s)
{
    const struct pqm_ocsp_cached *kept =
        site->cache != NULL ? pqm__ocsp_cache_get(site->cache, der, len, site->now) : NULL;
    if (kept != NULL) {
        struct pqm_ocsp_answer a = {.status = OCSP_RESPONSE_STATUS_SUCCESSFUL,
                                    .der = kept->der,
                                    .len = kept->len,
                                    .this_update = kept->this_update,
                                    .next_update = kept->next_update};
        return ocsp_head(out, site, &a, cacheable, close, s);
    }
    struct pqm_ocsp_answer a;
    pqm__ocsp_respond(site->r, der, len, site->now, site->lookup, site->lookup_arg, &a);
    if (site->cache != NULL)
        pqm__ocsp_cache_put(site->cache, der, len, &a);
    int rc = ocsp_head(out, site, &a, cacheable, close, s);
    pqm__ocsp_answer_free(&a);
    return rc;
}

/* The part of TARGET (its path, the query left out) after SITE's path, or NULL when
 * TARGET is not under it. */
static const char *under(const char *path, const char *target, size_t tlen, size_t *rest_len)
{
    size_t plen = strlen(path);
    const char *q = memchr(target, '?', tlen);
    if (q != NULL)
        tlen = (size_t)(q - target);
    if (plen == 1) /* "/" */
        plen = 0;
    if (tlen < plen || memcmp(target, path, plen) != 0)
        return NULL;
    if (tlen == plen) {
        *rest_len = 0;
        return target + tlen;
    }
    if (target[plen] != '/')
        return NULL;
    *rest_len = tlen - plen - 1;
    return target + plen + 1;
}

static int content_type_ok(const struct pqm_ocsp_http *h)
{
    static const char want[] = "application/ocsp-request";
    size_t n = sizeof(want) - 1;
    if (h->ctype_bad || strncasecmp(h->ctype, want, n) != 0)
        return 0;
    /* Parameters (";...") are allowed after it, nothing else. */
    const char *rest = h->ctype + n;
    while (*rest == ' ' || *rest == '\t')
        rest++;
    return *rest == '\0' || *rest == ';';
}

static int route(struct pqm_ocsp_http *h, const struct pqm_ocsp_site *site, struct pqm_buf *out,
                 struct pqm_ocsp_served *s)
{
    int close = !llhttp_should_keep_alive(&h->parser) ? CONN_CLOSE
                : h->parser.http_major == 1 && h->parser.http_minor == 0 ? CONN_KEPT_10
                                                                          : CONN_KEPT;
    int method = llhttp_get_method(&h->parser);
    const char *target = (const char *)pqm__buf_head(&h->url);
    size_t tlen = h->url.len, rest_len = 0;
    if (method != HTTP_GET && method != HTTP_POST)
        return text_answer(out, 405, "OCSP requests are GET or POST\n", close, site->now, s);
    if (method == HTTP_GET && tlen == 8 && memcmp(target, "/healthz", 8) == 0)
        return text_answer(out, 200, "ok\n", close, site->now, s);
    const char *rest = under(site->path, target, tlen, &rest_len);
    if (method == HTTP_POST) {
        if (rest == NULL || rest_len != 0)
            return text_answer(out, 404, "not an OCSP path\n", close, site->now, s);
        if (!content_type_ok(h))
            return text_answer(out, 415, "Content-Type must be application/ocsp-request\n",
                               close, site->now, s);
        return ocsp_answer(out, site, pqm__buf_head(&h->body), h->body.len, 0, close, s);
    }
    unsigned char der[PQM_OCSP_TARGET_MAX];
    long len = rest != NULL ? pqm__ocsp_get_decode(rest, rest_len, der, sizeof(der)) : -1;
    if (len < 0)
        return text_answer(out, 404, "not an OCSP request\n", close, site->now, s);
    return ocsp_answer(out, site, der, (size_t)len, 1, close, s);
}

int pqm__ocsp_http_answer(struct pqm_ocsp_http *h, const struct pqm_ocsp_site *site,
                          struct pqm_buf *out, struct pqm_ocsp_served *served)
{
    size_t mark = out->len;
    int rc;
    if (h->state == PQM_OCSP_HTTP_ERROR)
        rc = text_answer(out, h->error_status, h->error_text, CONN_CLOSE, site->now, served);
    else
        rc = route(h, site, out, served);
    if (rc != 0) {
        out->len = mark; /* nothing half-written goes out */
        served->close = 1;
        return -1;
    }
    if (!served->close) {
        h->state = PQM_OCSP_HTTP_IDLE;
        llhttp_resume(&h->parser);
    }
    return 0;
}
