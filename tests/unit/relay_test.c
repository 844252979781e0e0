/* Unit tests of http/relay.c (the HTTP/1.1 request and response relays over llhttp)
 * and util/buf.c (the bounded output buffer).
 *
 * Every relay row is run several times: the input in one piece, then one byte at a
 * time, then in pieces of three bytes. Chunked bodies are re-chunked per piece, so the
 * outputs are compared after merging adjacent chunks (canon()); the one-piece run is
 * also compared byte for byte. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/relay.h"
#include "util/buf.h"
#include "unit_util.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- a growable string ----------------------------------------------------------- */

struct str {
    char *p;
    size_t len, cap;
};

static void str_add(struct str *s, const void *p, size_t n)
{
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 256;
        while (cap < s->len + n + 1)
            cap *= 2;
        char *np = realloc(s->p, cap);
        assert_non_null(np);
        s->p = np;
        s->cap = cap;
    }
    if (n > 0)
        memcpy(s->p + s->len, p, n);
    s->len += n;
    s->p[s->len] = '\0';
}

static void str_addf(struct str *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void str_addf(struct str *s, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < sizeof(tmp));
    str_add(s, tmp, (size_t)n);
}

static const void *memfind(const void *hay, size_t hlen, const char *needle)
{
    size_t nlen = strlen(needle);
    if (nlen == 0)
        return hay;
    for (size_t i = 0; hlen >= nlen && i <= hlen - nlen; i++)
        if (memcmp((const char *)hay + i, needle, nlen) == 0)
            return (const char *)hay + i;
    return NULL;
}

/* ---- canonical form of relay output: adjacent chunks merged ------------------------ */

/* The relay's output is a sequence of heads, each followed by a body framed by the head
 * itself (chunked, Content-Length, or none). Rewrites every chunked body as one chunk
 * plus the last-chunk (a body cut short stays unterminated); with DECODE, as the bare
 * body bytes followed by "<last-chunk>", so that an output cut short anywhere is a
 * prefix of the whole one. NULL when the chunk framing is malformed. */
static char *canon_mode(const char *in, size_t len, enum pqm_relay_kind kind, int expect_head,
                        int decode)
{
    struct str s = {0};
    str_add(&s, "", 0);
    size_t pos = 0;
    while (pos < len) {
        const char *end = memfind(in + pos, len - pos, "\r\n\r\n");
        if (end == NULL) { /* a head cut short */
            str_add(&s, in + pos, len - pos);
            break;
        }
        size_t hlen = (size_t)(end - (in + pos)) + 4;
        const char *head = in + pos;
        str_add(&s, head, hlen);
        pos += hlen;
        int status = 0;
        if (kind == PQM_RELAY_RESPONSE && sscanf(head, "HTTP/1.1 %d", &status) != 1) {
            free(s.p);
            return NULL;
        }
        /* Chunked when the Transfer-Encoding line ends in chunked (never the start
         * line: the search can begin at its CRLF). */
        int chunked = 0;
        const char *te = memfind(head, hlen, "\r\nTransfer-Encoding: ");
        if (te != NULL) {
            const char *te_end = memfind(te + 2, hlen - (size_t)(te + 2 - head), "\r\n");
            chunked = te_end != NULL && te_end - te >= 9 && memcmp(te_end - 7, "chunked", 7) == 0;
        }
        const char *clh = memfind(head, hlen, "\r\nContent-Length: ");
        int no_body = kind == PQM_RELAY_RESPONSE &&
                      (status / 100 == 1 || status == 204 || status == 304 || expect_head);
        if (no_body)
            continue;
        if (chunked) {
            struct str body = {0};
            str_add(&body, "", 0);
            int last = 0;
            while (pos < len) {
                const char *crlf = memfind(in + pos, len - pos, "\r\n");
                if (crlf == NULL)
                    goto bad;
                char *hexend;
                unsigned long long n = strtoull(in + pos, &hexend, 16);
                if (hexend != crlf || hexend == in + pos)
                    goto bad;
                pos = (size_t)(crlf - in) + 2;
                if (n == 0) {
                    if (len - pos < 2 || memcmp(in + pos, "\r\n", 2) != 0)
                        goto bad;
                    pos += 2;
                    last = 1;
                    break;
                }
                if (len - pos < n + 2 || memcmp(in + pos + n, "\r\n", 2) != 0)
                    goto bad;
                str_add(&body, in + pos, (size_t)n);
                pos += (size_t)n + 2;
            }
            if (decode) {
                str_add(&s, body.p, body.len);
                if (last)
                    str_add(&s, "<last-chunk>", 12);
            } else {
                if (body.len > 0) {
                    str_addf(&s, "%zx\r\n", body.len);
                    str_add(&s, body.p, body.len);
                    str_add(&s, "\r\n", 2);
                }
                if (last)
                    str_add(&s, "0\r\n\r\n", 5);
            }
            free(body.p);
            continue;
        bad:
            free(body.p);
            free(s.p);
            return NULL;
        }
        if (clh != NULL) {
            unsigned long long n = strtoull(clh + 18, NULL, 10);
            size_t take = n < len - pos ? (size_t)n : len - pos;
            str_add(&s, in + pos, take);
            pos += take;
        }
    }
    return s.p;
}

static char *canon(const char *in, size_t len, enum pqm_relay_kind kind, int expect_head)
{
    return canon_mode(in, len, kind, expect_head, 0);
}

static void test_canon_helper(void **state)
{
    (void)state;
    const char *two = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "1\r\na\r\n2\r\nbc\r\n0\r\n\r\n";
    char *c = canon(two, strlen(two), PQM_RELAY_RESPONSE, 0);
    assert_non_null(c);
    assert_string_equal(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "3\r\nabc\r\n0\r\n\r\n");
    free(c);
    const char *broken = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab\r\n";
    assert_null(canon(broken, strlen(broken), PQM_RELAY_RESPONSE, 0));
    c = canon_mode(two, strlen(two), PQM_RELAY_RESPONSE, 0, 1);
    assert_non_null(c);
    assert_string_equal(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nabc<last-chunk>");
    free(c);
}

/* ---- running a relay over an input ------------------------------------------------- */

enum { CB_NONE, CB_ADD, CB_IDENTITY, CB_REFUSE };

struct cb_ctx {
    int mode;
    int calls;
};

static int head_cb(struct pqm_relay *r, struct pqm_buf *out, void *arg)
{
    struct cb_ctx *c = arg;
    c->calls++;
    switch (c->mode) {
    case CB_ADD:
        return pqm__buf_addf(out, "X-Gw: 1\r\n");
    case CB_IDENTITY:
        return pqm__buf_addf(out, "X-Client-Cert-Subject: CN=real\r\nX-Forwarded-For: 10.0.0.1\r\n");
    case CB_REFUSE:
        return pqm__relay_fail(r, 403, "refused by the head callback");
    default:
        return 0;
    }
}

struct run {
    enum pqm_relay_state state;
    int error_status;
    char error_reason[160];
    int ndone;
    size_t consumed;
    int eof_rc;
    int stalled;    /* a feed consumed nothing without DONE or ERROR */
    int after_err;  /* a feed after ERROR consumed something or wrote output */
    char *out;      /* NUL-terminated copy */
    size_t out_len;
};

/* Feeds IN in pieces of STEP bytes (0: all at once), calling pqm__relay_next after each
 * DONE while input remains; then pqm__relay_eof when EOF. R must be static-sized
 * storage (struct pqm_relay holds the head). */
static void run_relay(struct pqm_relay *r, enum pqm_relay_kind kind, const char *in, size_t len,
                      size_t step, int cb, int expect_head, int close_after, int eof,
                      struct run *res)
{
    struct pqm_buf out;
    struct cb_ctx ctx = {cb, 0};
    pqm__buf_init(&out, 4u << 20);
    pqm__relay_init(r, kind, &out, cb == CB_NONE ? NULL : head_cb, &ctx);
    r->expect_head = expect_head;
    r->close_after = close_after;
    memset(res, 0, sizeof(*res));
    size_t off = 0;
    while (off < len) {
        size_t n = step == 0 || step > len - off ? len - off : step;
        assert_true(pqm__buf_room(&out) >= PQM_HTTP_OUT_RESERVE + n);
        size_t used = pqm__relay_feed(r, (const unsigned char *)in + off, n);
        assert_true(used <= n);
        off += used;
        if (r->state == PQM_RELAY_DONE) {
            res->ndone++;
            if (off < len)
                pqm__relay_next(r);
            continue;
        }
        if (r->state == PQM_RELAY_ERROR) {
            /* Refused: nothing more is taken, nothing more is written. */
            size_t before = out.len;
            if (pqm__relay_feed(r, (const unsigned char *)in + off, len - off) != 0 ||
                out.len != before || r->state != PQM_RELAY_ERROR)
                res->after_err = 1;
            pqm__relay_next(r);
            if (r->state != PQM_RELAY_ERROR)
                res->after_err = 1;
            break;
        }
        if (used == 0) {
            res->stalled = 1;
            break;
        }
    }
    res->eof_rc = eof ? pqm__relay_eof(r) : 0;
    res->state = r->state;
    res->error_status = r->error_status;
    snprintf(res->error_reason, sizeof(res->error_reason), "%s", r->error_reason);
    res->consumed = off;
    res->out_len = out.len;
    res->out = malloc(out.len + 1);
    assert_non_null(res->out);
    if (out.len > 0)
        memcpy(res->out, pqm__buf_head(&out), out.len);
    res->out[out.len] = '\0';
    assert_true(out.len <= out.max);
    pqm__buf_free(&out);
}

/* ---- the row tables ----------------------------------------------------------------- */

#define ANY_ERROR (-1)     /* refused, any status */
#define OK_OR_CLEAN (-2)   /* either accepted as described, or refused with no output */

struct relay_row {
    const char *why;
    const char *in;
    size_t in_len;        /* 0: strlen(in) */
    int cb;               /* CB_* */
    int expect_head, close_after, eof;
    int status;           /* 0: accepted; >0: refused with it; ANY_ERROR; OK_OR_CLEAN */
    int done;             /* DONEs expected */
    const char *out;      /* accepted: the output, canonical form (NULL: not checked);
                           * refused: the most that may have been forwarded, whatever the
                           * pieces (the output is a prefix of it, bodies de-chunked) */
    const char *raw;      /* the exact output of the one-piece run when it differs from
                           * OUT (refused: what a refusal leaves, the feed that refused the
                           * message having dropped its output) */
    const char *must;     /* the output contains it (accepted rows) */
    const char *must_not; /* the output never contains it */
    int eof_rc;
};

static const char *state_name(enum pqm_relay_state s)
{
    static const char *const n[] = {"IDLE", "HEAD", "BODY", "DONE", "ERROR"};
    return (unsigned)s < ARRAY_LEN(n) ? n[s] : "?";
}

/* Checks one run of ROW; returns the number of failures it reported. */
static int check_run(const struct relay_row *row, size_t i, enum pqm_relay_kind kind, size_t step,
                     const struct run *res, size_t in_len)
{
    int bad = 0;
    const char *k = kind == PQM_RELAY_REQUEST ? "req" : "resp";
    char *c = canon(res->out, res->out_len, kind, row->expect_head);
    int refused = res->state == PQM_RELAY_ERROR;

    if (res->after_err)
        TU_ROW_FAIL(bad, "%s row %zu (%s) step %zu: input consumed or output written after ERROR",
                    k, i, row->why, step);
    if (c == NULL) {
        TU_ROW_FAIL(bad, "%s row %zu (%s) step %zu: output has broken chunk framing:\n%s", k, i,
                    row->why, step, res->out);
        return bad;
    }
    if (row->must_not != NULL && strstr(res->out, row->must_not) != NULL)
        TU_ROW_FAIL(bad, "%s row %zu (%s) step %zu: output contains \"%s\":\n%s", k, i, row->why,
                    step, row->must_not, res->out);

    int want_ok = row->status == 0 || (row->status == OK_OR_CLEAN && !refused);
    if (want_ok) {
        if (refused)
            TU_ROW_FAIL(bad, "%s row %zu (%s) step %zu: refused %d (%s)", k, i, row->why, step,
                        res->error_status, res->error_reason);
        else if (res->stalled || res->consumed != in_len)
            TU_ROW_FAIL(bad, "%s row %zu (%s) step %zu: consumed %zu of %zu, state %s", k, i,
                        row->why, step, res->consumed, in_len, state_name(res->state));
        else if (row->done > 0 && res->state != PQM_RELAY_DONE)
            TU_ROW_FAIL(bad, "%s row %zu (%s) step %zu: ends in state %s, want DONE", k, i, row->why,
                        step, state_name(res->state));
        if (!refused && res->ndone != row->done)
            TU_ROW_FAIL(bad, "%s row %zu (%s) step %zu: %d DONE, want %d", k, i, row->why, step,
                        res->ndone, row->done);
        if (!refused && row->must != NULL && strstr(res->out, row->must) == NULL)
            TU_ROW_FAIL(bad, "%s row %zu (%s) step %zu: output lacks \"%s\":\n%s", k, i, row->why,
                        step, row->must, res->out);
        if (!refused && row->eof && res->eof_rc != row->eof_rc)
            TU_ROW_FAIL(bad, "%s row %zu (%s) step %zu: eof returned %d, want %d", k, i, row->why,
                        step, res->eof_rc, row->eof_rc);
        if (!refused && row->out != NULL && strcmp(c, row->out) != 0)
            TU_ROW_FAIL(bad, "%s row %zu (%s) step %zu: output\n%s\n--- want ---\n%s", k, i,
                        row->why, step, c, row->out);
    } else {
        if (!refused)
            TU_ROW_FAIL(bad, "%s row %zu (%s) step %zu: accepted (state %s), want refusal %d", k, i,
                        row->why, step, state_name(res->state), row->status);
        else if (row->status > 0 && res->error_status != row->status)
            TU_ROW_FAIL(bad, "%s row %zu (%s) step %zu: refused %d (%s), want %d", k, i, row->why,
                        step, res->error_status, res->error_reason, row->status);
        else if (res->error_reason[0] == '\0')
            TU_ROW_FAIL(bad, "%s row %zu (%s) step %zu: refused without a reason", k, i, row->why,
                        step);
        const char *most = row->status == OK_OR_CLEAN ? "" : row->out;
        if (refused && most != NULL) {
            char *got = canon_mode(res->out, res->out_len, kind, row->expect_head, 1);
            char *lim = canon_mode(most, strlen(most), kind, row->expect_head, 1);
            assert_non_null(lim);
            if (got == NULL || strncmp(got, lim, strlen(got)) != 0)
                TU_ROW_FAIL(bad, "%s row %zu (%s) step %zu: refused %d (%s) after writing\n%s\n"
                                 "--- want at most ---\n%s",
                            k, i, row->why, step, res->error_status, res->error_reason, c, most);
            free(got);
            free(lim);
        }
        if (refused && row->done >= 0 && row->status != OK_OR_CLEAN && res->ndone != row->done)
            TU_ROW_FAIL(bad, "%s row %zu (%s) step %zu: %d DONE before the refusal, want %d", k, i,
                        row->why, step, res->ndone, row->done);
    }
    free(c);
    return bad;
}

static int run_rows(const struct relay_row *rows, size_t nrows, enum pqm_relay_kind kind)
{
    static struct pqm_relay r;
    static const size_t steps[] = {0, 1, 3};
    int bad = 0;
    for (size_t i = 0; i < nrows; i++) {
        const struct relay_row *row = &rows[i];
        size_t len = row->in_len ? row->in_len : strlen(row->in);
        for (size_t s = 0; s < ARRAY_LEN(steps); s++) {
            /* Byte-wise runs of the huge rows are slow and add nothing. */
            if (steps[s] != 0 && len > 20000)
                continue;
            struct run res;
            run_relay(&r, kind, row->in, len, steps[s], row->cb, row->expect_head,
                      row->close_after, row->eof, &res);
            int b = check_run(row, i, kind, steps[s], &res, len);
            /* The one-piece run is also compared byte for byte. */
            const char *raw = row->raw != NULL ? row->raw : row->out;
            if (res.state == PQM_RELAY_ERROR && row->status == OK_OR_CLEAN)
                raw = "";
            if (b == 0 && steps[s] == 0 && raw != NULL && row->status != ANY_ERROR &&
                (res.out_len != strlen(raw) || memcmp(res.out, raw, res.out_len) != 0))
                TU_ROW_FAIL(b, "row %zu (%s): one-piece output\n%s\n--- want ---\n%s", i, row->why,
                            res.out, raw);
            bad += b;
            free(res.out);
            if (b != 0)
                break; /* one report per row is enough */
        }
    }
    return bad;
}

/* ---- requests ------------------------------------------------------------------------ */

#define KA "Connection: keep-alive\r\n\r\n"

static char *repeat_header(const char *start, const char *name, size_t value_len,
                           const char *end)
{
    struct str s = {0};
    str_add(&s, start, strlen(start));
    str_add(&s, name, strlen(name));
    str_add(&s, ": ", 2);
    for (size_t i = 0; i < value_len; i++)
        str_add(&s, "a", 1);
    str_add(&s, "\r\n", 2);
    str_add(&s, end, strlen(end));
    return s.p;
}

static char *many_headers(size_t n)
{
    struct str s = {0};
    str_add(&s, "GET / HTTP/1.1\r\nHost: a\r\n", 25);
    for (size_t i = 1; i < n; i++)
        str_addf(&s, "X-H%zu: %zu\r\n", i, i);
    str_add(&s, "\r\n", 2);
    return s.p;
}

static void test_request_rows(void **state)
{
    (void)state;
    /* head[] holds the target, the names and the values: "/" + "Host" + "a" + "X-Big" is
     * 11 bytes, so a value of PQM_HTTP_HEAD_MAX - 11 fills it exactly. */
    char *at_limit = repeat_header("GET / HTTP/1.1\r\nHost: a\r\n", "X-Big", PQM_HTTP_HEAD_MAX - 11,
                                   "\r\n");
    char *over_limit = repeat_header("GET / HTTP/1.1\r\nHost: a\r\n", "X-Big",
                                     PQM_HTTP_HEAD_MAX - 10, "\r\n");
    char *big40k = repeat_header("GET / HTTP/1.1\r\nHost: a\r\n", "X-Big", 40 * 1024, "\r\n");
    char *hdr128 = many_headers(128), *hdr129 = many_headers(129);
    /* A 2000-byte request target (long query strings are common). */
    struct str lu = {0}, lu_out = {0};
    str_add(&lu, "GET /", 5);
    for (int i = 0; i < 1999; i++)
        str_add(&lu, "q", 1);
    str_add(&lu_out, lu.p, lu.len);
    str_add(&lu, " HTTP/1.1\r\nHost: a\r\n\r\n", 22);
    str_add(&lu_out, " HTTP/1.1\r\nHost: a\r\n" KA, 20 + strlen(KA));

    static const char nul_value[] = "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n";

    const struct relay_row rows[] = {
        /* --- accepted --- */
        {.why = "simple GET",
         .in = "GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n",
         .done = 1,
         .out = "GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n" KA},
        {.why = "header case and value bytes kept",
         .in = "GET / HTTP/1.1\r\nhOsT: a\r\nX-MiXed: A b\tc;q=\"x\"  \r\n\r\n",
         .done = 1,
         .out = "GET / HTTP/1.1\r\nhOsT: a\r\nX-MiXed: A b\tc;q=\"x\"  \r\n" KA},
        {.why = "empty header value",
         .in = "GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-Foo: bar\r\n\r\n",
         .done = 1,
         .out = "GET / HTTP/1.1\r\nHost: a\r\nX-Empty: \r\nX-Foo: bar\r\n" KA},
        {.why = "POST with Content-Length (restated once, after the fields)",
         .in = "POST /submit HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n"
               "\r\nhello",
         .done = 1,
         .out = "POST /submit HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n" KA
                "hello"},
        {.why = "Content-Length: 0",
         .in = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
         .done = 1,
         .out = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n" KA},
        {.why = "chunked POST (re-chunked, extensions and trailers dropped)",
         .in = "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
               "3\r\nabc\r\n5;ext=1\r\nde\r\nf\r\n0\r\nX-Trailer: t\r\n\r\n",
         .done = 1,
         .out = "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n" KA
                "8\r\nabcde\r\nf\r\n0\r\n\r\n",
         .raw = "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n" KA
                "3\r\nabc\r\n5\r\nde\r\nf\r\n0\r\n\r\n",
         .must_not = "X-Trailer"},
        {.why = "head callback fields after the kept ones, before the framing",
         .in = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nX-A: 1\r\n\r\nhi",
         .cb = CB_ADD,
         .done = 1,
         .out = "POST / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nX-Gw: 1\r\nContent-Length: 2\r\n" KA "hi"},
        {.why = "head callback fields before chunked framing",
         .in = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
         .cb = CB_ADD,
         .done = 1,
         .out = "POST / HTTP/1.1\r\nHost: a\r\nX-Gw: 1\r\nTransfer-Encoding: chunked\r\n" KA
                "2\r\nhi\r\n0\r\n\r\n"},
        {.why = "identity spoofing in every spelling stripped, X-Request-Id kept",
         .in = "GET / HTTP/1.1\r\nHost: a\r\n"
               "X-Client-Cert-Subject: CN=spoof1\r\n"
               "x-client-cert-subject: CN=spoof2\r\n"
               "X_CLIENT_CERT_SUBJECT: CN=spoof3\r\n"
               "X-Client-Cert-Subject: CN=spoof4\r\n"
               "x_Client-cert_Verify: SUCCESS-spoof5\r\n"
               "X-Client-Cert: spoof6\r\n"
               "X-Client-Certainly-Not: spoof7\r\n" /* prefix match: stripped too */
               "Client-Cert: :spoof8:\r\n"
               "client_cert: :spoof9:\r\n"
               "CLIENT-CERT-CHAIN: spoof10\r\n"
               "X-Forwarded-Client-Cert: spoof11\r\n"
               "x_forwarded_client_cert: spoof12\r\n"
               "X-SSL-Client-Verify: spoof13\r\n"
               "x-ssl-client-s-dn: spoof14\r\n"
               "X-Forwarded-For: spoof15\r\n"
               "x_forwarded_for: spoof16\r\n"
               "X-FORWARDED-PROTO: spoof17\r\n"
               "X-Client-Cert-Spiffe-Id: spiffe://spoof18\r\n"
               "X-ReQuest-ID: Ab-1;x=\"y\"\r\n"
               "\r\n",
         .done = 1,
         .out = "GET / HTTP/1.1\r\nHost: a\r\nX-ReQuest-ID: Ab-1;x=\"y\"\r\n" KA,
         .must_not = "spoof"},
        {.why = "spoofed identity replaced by the callback's",
         .in = "GET / HTTP/1.1\r\nX-Client-Cert-Subject: CN=spoof\r\nHost: a\r\n"
               "X-Forwarded-For: 6.6.6.6\r\n\r\n",
         .cb = CB_IDENTITY,
         .done = 1,
         .out = "GET / HTTP/1.1\r\nHost: a\r\nX-Client-Cert-Subject: CN=real\r\n"
                "X-Forwarded-For: 10.0.0.1\r\n" KA,
         .must_not = "spoof"},
        {.why = "hop-by-hop fields and Connection-named Foo dropped",
         .in = "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Foo\r\nFoo: 1\r\nfoo: 2\r\n"
               "Bar: 3\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\n"
               "Trailer: X-T\r\nProxy-Authorization: Basic eA==\r\nProxy-Authenticate: Basic\r\n"
               "Upgrade: h2c\r\n\r\n",
         .done = 1,
         .out = "GET / HTTP/1.1\r\nHost: a\r\nBar: 3\r\n" KA},
        {.why = "tokens of several Connection fields dropped",
         .in = "GET / HTTP/1.1\r\nHost: a\r\nConnection: ,Baz ,\r\nBaz: 1\r\nConnection: qux\r\n"
               "QUX: 2\r\nQuux: 3\r\n\r\n",
         .done = 1,
         .out = "GET / HTTP/1.1\r\nHost: a\r\nQuux: 3\r\n" KA},
        {.why = "Connection: close still goes upstream as keep-alive",
         .in = "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
         .done = 1,
         .out = "GET / HTTP/1.1\r\nHost: a\r\n" KA},
        {.why = "two pipelined requests",
         .in = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
               "\r\nx",
         .done = 2,
         .out = "GET /1 HTTP/1.1\r\nHost: a\r\n" KA
                "POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n" KA "x"},
        {.why = "chunked then plain, pipelined",
         .in = "POST /1 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n"
               "GET /2 HTTP/1.1\r\nHost: b\r\n\r\n",
         .done = 2,
         .out = "POST /1 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n" KA
                "1\r\nz\r\n0\r\n\r\n"
                "GET /2 HTTP/1.1\r\nHost: b\r\n" KA},
        {.why = "head exactly PQM_HTTP_HEAD_MAX", .in = at_limit, .done = 1,
         .must = "\r\nX-Big: aaaa"},
        {.why = "128 header fields", .in = hdr128, .done = 1, .must = "\r\nX-H127: 127\r\n"},
        {.why = "a head cut short waits for more", .in = "GET / HTTP/1.1\r\nHost: a\r\n", .done = 0,
         .out = ""},
        /* --- refused --- */
        {.why = "Content-Length then Transfer-Encoding",
         .in = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
               "3\r\nabc\r\n0\r\n\r\n",
         .status = 400, .out = ""},
        {.why = "Transfer-Encoding then Content-Length",
         .in = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
               "3\r\nabc\r\n0\r\n\r\n",
         .status = 400, .out = ""},
        {.why = "two Content-Length, same value",
         .in = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
         .status = 400, .out = ""},
        {.why = "two Content-Length, different values",
         .in = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
         .status = 400, .out = ""},
        {.why = "Content-Length list",
         .in = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc",
         .status = 400, .out = ""},
        {.why = "Transfer-Encoding chunked twice",
         .in = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
               "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
         .status = 400, .out = ""},
        {.why = "Transfer-Encoding: chunked, gzip (chunked not last)",
         .in = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\nabc",
         .status = 400, .out = ""},
        {.why = "bad chunk size (after the head went)",
         .in = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
         .status = 400, .out = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n" KA,
         .raw = ""},
        {.why = "bad chunk size after a good chunk",
         .in = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"
               "-1\r\n\r\n",
         .status = 400,
         .out = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n" KA "3\r\nabc\r\n",
         .raw = ""},
        {.why = "chunk size overflow",
         .in = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
               "fffffffffffffffff\r\n",
         .status = 400, .out = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n" KA,
         .raw = ""},
        {.why = "chunk data not followed by CRLF",
         .in = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n",
         .status = 400,
         .out = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n" KA "3\r\nabc\r\n",
         .raw = ""},
        {.why = "obs-fold",
         .in = "GET / HTTP/1.1\r\nHost: a\r\nX-A: one\r\n two\r\n\r\n", .status = 400, .out = ""},
        {.why = "bare LF line endings",
         .in = "GET / HTTP/1.1\nHost: a\nX-A: b\n\n", .status = 400, .out = ""},
        {.why = "bare LF after one header",
         .in = "GET / HTTP/1.1\r\nHost: a\nX-A: b\r\n\r\n", .status = 400, .out = ""},
        {.why = "bare LF ending the head",
         .in = "GET / HTTP/1.1\r\nHost: a\r\n\n", .status = 400, .out = ""},
        {.why = "bare CR",
         .in = "GET / HTTP/1.1\r\nHost: a\rX-A: b\r\n\r\n", .status = 400, .out = ""},
        {.why = "NUL in a value", .in = nul_value, .in_len = sizeof(nul_value) - 1, .status = 400,
         .out = ""},
        {.why = "space before the colon",
         .in = "GET / HTTP/1.1\r\nHost: a\r\nX-Client-Cert : spoof\r\n\r\n", .status = 400,
         .out = ""},
        {.why = "missing Host", .in = "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", .status = 400,
         .out = ""},
        {.why = "two Host fields", .in = "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
         .status = 400, .out = ""},
        {.why = "Host and host", .in = "GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n",
         .status = 400, .out = ""},
        {.why = "HTTP/1.0", .in = "GET / HTTP/1.0\r\nHost: a\r\n\r\n", .status = 505, .out = ""},
        {.why = "HTTP/2.0 on an HTTP/1 connection", .in = "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
         .status = 505, .out = ""},
        {.why = "HTTP/1.2 (llhttp refuses the version)", .in = "GET / HTTP/1.2\r\nHost: a\r\n\r\n",
         .status = 400, .out = ""},
        {.why = "CONNECT", .in = "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", .status = 405,
         .out = ""},
        {.why = "absolute-form target", .in = "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
         .status = 400, .out = ""},
        {.why = "asterisk-form target (documented: targets must start with '/')",
         .in = "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", .status = 400, .out = ""},
        {.why = "unknown method", .in = "FROB / HTTP/1.1\r\nHost: a\r\n\r\n", .status = 400,
         .out = ""},
        {.why = "a header of 40 KB", .in = big40k, .status = 431, .out = ""},
        {.why = "head one byte past PQM_HTTP_HEAD_MAX", .in = over_limit, .status = 431, .out = ""},
        {.why = "129 header fields", .in = hdr129, .status = 431, .out = ""},
        {.why = "data after Connection: close (first one forwarded)",
         .in = "GET /1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n",
         .status = 400, .done = 1, .out = "GET /1 HTTP/1.1\r\nHost: a\r\n" KA},
        {.why = "second pipelined request bad, first forwarded",
         .in = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.0\r\nHost: a\r\n\r\n",
         .status = 505, .done = 1, .out = "GET /1 HTTP/1.1\r\nHost: a\r\n" KA},

        /* --- regressions: refused or mangled before ddc49f6 --- */
        {.why = "head callback refusal leaves nothing of the head",
         .in = "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\r\n", .cb = CB_REFUSE, .status = 403,
         .out = ""},
        {.why = "a 2000-byte request target", .in = lu.p, .done = 1, .out = lu_out.p},
        {.why = "Transfer-Encoding: identity refused before its head is written",
         .in = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\nabc",
         .status = 400, .out = ""},
        {.why = "Transfer-Encoding: gzip refused before its head is written",
         .in = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\nabc",
         .status = 400, .out = ""},
        {.why = "Transfer-Encoding: gzip, chunked keeps the gzip coding",
         .in = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
               "3\r\nabc\r\n0\r\n\r\n",
         .done = 1,
         .out = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n" KA
                "3\r\nabc\r\n0\r\n\r\n"},
        {.why = "codings of two Transfer-Encoding fields kept in order",
         .in = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nX-A: 1\r\n"
               "Transfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n",
         .done = 1,
         .out = "POST / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nTransfer-Encoding: gzip, chunked\r\n" KA
                "1\r\nx\r\n0\r\n\r\n"},
        {.why = "Connection: host keeps the Host field",
         .in = "GET / HTTP/1.1\r\nHost: a\r\nConnection: host\r\n\r\n", .done = 1,
         .out = "GET / HTTP/1.1\r\nHost: a\r\n" KA},
        {.why = "an Upgrade request is an ordinary one; the next one follows",
         .in = "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
               "GET /2 HTTP/1.1\r\nHost: a\r\n\r\n",
         .done = 2,
         .out = "GET /ws HTTP/1.1\r\nHost: a\r\n" KA "GET /2 HTTP/1.1\r\nHost: a\r\n" KA},
        {.why = "an Upgrade request with a body; the next one follows",
         .in = "POST / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n"
               "Content-Length: 3\r\n\r\nabcGET /2 HTTP/1.1\r\nHost: a\r\n\r\n",
         .done = 2,
         .out = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n" KA "abc"
                "GET /2 HTTP/1.1\r\nHost: a\r\n" KA},
        {.why = "Transfer_Encoding (underscore) with Content-Length: dropped or refused",
         .in = "POST / HTTP/1.1\r\nHost: a\r\nTransfer_Encoding: chunked\r\nContent-Length: 1\r\n"
               "\r\nx",
         .status = OK_OR_CLEAN, .done = 1,
         .out = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n" KA "x"},

        /* --- rows that fail today (see the report): kept on purpose --- */
        {.why = "BUG: a Transfer_Encoding (underscore) field's codings go into the forwarded "
                "Transfer-Encoding",
         .in = "POST / HTTP/1.1\r\nHost: a\r\nTransfer_Encoding: gzip\r\n"
               "Transfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n",
         .status = OK_OR_CLEAN, .done = 1,
         .out = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n" KA
                "1\r\nx\r\n0\r\n\r\n"},
    };
    int bad = run_rows(rows, ARRAY_LEN(rows), PQM_RELAY_REQUEST);
    free(at_limit);
    free(over_limit);
    free(big40k);
    free(hdr128);
    free(hdr129);
    free(lu.p);
    free(lu_out.p);
    TU_ROWS_DONE(bad);
}

/* ---- responses ----------------------------------------------------------------------- */

#define RKA "Connection: keep-alive\r\n\r\n"

static void test_response_rows(void **state)
{
    (void)state;
    struct str lr = {0}, lr_out = {0};
    str_add(&lr, "HTTP/1.1 200 ", 13);
    for (int i = 0; i < 1100; i++)
        str_add(&lr, "r", 1);
    str_add(&lr_out, lr.p, lr.len);
    str_add(&lr, "\r\nContent-Length: 0\r\n\r\n", 23);
    str_add(&lr_out, "\r\nContent-Length: 0\r\n" RKA, 21 + strlen(RKA));

    static const char nul_reason[] = "HTTP/1.1 200 O\0K\r\nContent-Length: 0\r\n\r\n";

    const struct relay_row rows[] = {
        /* --- accepted --- */
        {.why = "200 with Content-Length",
         .in = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
         .done = 1,
         .out = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n" RKA "hello"},
        {.why = "reason phrase kept",
         .in = "HTTP/1.1 404 Nicht Gefunden\r\nContent-Length: 0\r\n\r\n", .done = 1,
         .out = "HTTP/1.1 404 Nicht Gefunden\r\nContent-Length: 0\r\n" RKA},
        {.why = "empty reason phrase", .in = "HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n",
         .done = 1, .out = "HTTP/1.1 200 \r\nContent-Length: 0\r\n" RKA},
        {.why = "chunked (re-chunked, trailer dropped)",
         .in = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               "4\r\nwiki\r\n5\r\npedia\r\n0\r\nX-T: 1\r\n\r\n",
         .done = 1,
         .out = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n" RKA
                "9\r\nwikipedia\r\n0\r\n\r\n",
         .raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n" RKA
                "4\r\nwiki\r\n5\r\npedia\r\n0\r\n\r\n",
         .must_not = "X-T"},
        {.why = "body until close: re-chunked, eof ends it",
         .in = "HTTP/1.1 200 OK\r\nContent-Type: x\r\n\r\nabcdef", .eof = 1, .done = 0,
         .out = "HTTP/1.1 200 OK\r\nContent-Type: x\r\nTransfer-Encoding: chunked\r\n" RKA
                "6\r\nabcdef\r\n0\r\n\r\n"},
        {.why = "HTTP/1.0 body until close",
         .in = "HTTP/1.0 200 OK\r\n\r\nold", .eof = 1, .done = 0,
         .out = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n" RKA "3\r\nold\r\n0\r\n\r\n"},
        {.why = "204: no body, Content-Length dropped",
         .in = "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nX-A: 1\r\n\r\n", .done = 1,
         .out = "HTTP/1.1 204 No Content\r\nX-A: 1\r\n" RKA},
        {.why = "304: no body, Content-Length kept",
         .in = "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\nETag: \"x\"\r\n\r\n", .done = 1,
         .out = "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 10\r\n" RKA},
        {.why = "304 without framing is not chunked",
         .in = "HTTP/1.1 304 Not Modified\r\n\r\n", .done = 1,
         .out = "HTTP/1.1 304 Not Modified\r\n" RKA, .must_not = "chunked"},
        {.why = "response to HEAD: Content-Length kept, no body",
         .in = "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n", .expect_head = 1, .done = 1,
         .out = "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n" RKA},
        {.why = "response to HEAD announcing chunked: not chunked, no body",
         .in = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", .expect_head = 1,
         .done = 1, .out = "HTTP/1.1 200 OK\r\n" RKA, .must_not = "chunked"},
        {.why = "response to HEAD without framing",
         .in = "HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\n", .expect_head = 1, .done = 1,
         .out = "HTTP/1.1 200 OK\r\nX-A: 1\r\n" RKA},
        {.why = "100 Continue then 200: both forwarded, one DONE",
         .in = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
         .done = 1,
         .out = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n" RKA "hi"},
        {.why = "103 Early Hints then 200",
         .in = "HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n"
               "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
         .done = 1,
         .out = "HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n"
                "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n" RKA},
        {.why = "close_after = 1 gives Connection: close",
         .in = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", .close_after = 1, .done = 1,
         .out = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"},
        {.why = "upstream Connection: close is not passed on",
         .in = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", .done = 1,
         .out = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n" RKA "ok"},
        {.why = "hop-by-hop response fields dropped",
         .in = "HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nConnection: X-Hop\r\nX-Hop: 1\r\n"
               "Proxy-Authenticate: Basic\r\nTrailer: X-T\r\nX-Kept: 2\r\nContent-Length: 0\r\n\r\n",
         .done = 1, .out = "HTTP/1.1 200 OK\r\nX-Kept: 2\r\nContent-Length: 0\r\n" RKA},
        {.why = "identity-like fields are not stripped from responses",
         .in = "HTTP/1.1 200 OK\r\nX-Client-Cert-Subject: CN=x\r\nContent-Length: 0\r\n\r\n",
         .done = 1,
         .out = "HTTP/1.1 200 OK\r\nX-Client-Cert-Subject: CN=x\r\nContent-Length: 0\r\n" RKA},
        {.why = "two pipelined responses",
         .in = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 201 Created\r\n"
               "Content-Length: 1\r\n\r\nb",
         .done = 2,
         .out = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n" RKA "a"
                "HTTP/1.1 201 Created\r\nContent-Length: 1\r\n" RKA "b"},
        {.why = "head callback on a response",
         .in = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", .cb = CB_ADD, .done = 1,
         .out = "HTTP/1.1 200 OK\r\nX-Gw: 1\r\nContent-Length: 0\r\n" RKA},
        {.why = "eof in the middle of a Content-Length body",
         .in = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", .eof = 1, .status = 502,
         .out = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n" RKA "abc"},
        {.why = "eof in the middle of a chunked body",
         .in = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", .eof = 1,
         .status = 502,
         .out = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n" RKA "3\r\nabc\r\n"},
        {.why = "eof in the head", .in = "HTTP/1.1 200 OK\r\nContent-Le", .eof = 1,
         .status = 502, .out = ""},
        /* --- refused --- */
        {.why = "malformed status code", .in = "HTTP/1.1 2x0 OK\r\n\r\n", .status = 502,
         .out = ""},
        {.why = "four-digit status code", .in = "HTTP/1.1 2000 OK\r\n\r\n", .status = 502,
         .out = ""},
        {.why = "not an HTTP status line", .in = "ICY 200 OK\r\n\r\n", .status = 502, .out = ""},
        {.why = "status line bare LF", .in = "HTTP/1.1 200 OK\nContent-Length: 0\n\n",
         .status = 502, .out = ""},
        {.why = "obs-fold in a response",
         .in = "HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\nContent-Length: 0\r\n\r\n", .status = 502,
         .out = ""},
        {.why = "Content-Length and Transfer-Encoding",
         .in = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
               "3\r\nabc\r\n0\r\n\r\n",
         .status = 502, .out = ""},
        {.why = "two different Content-Length",
         .in = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 2\r\n\r\nabc",
         .status = 502, .out = ""},
        {.why = "bad chunk size",
         .in = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nq\r\n", .status = 502,
         .out = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n" RKA, .raw = ""},

        /* --- regressions: forwarded or mangled before ddc49f6 --- */
        {.why = "101 Switching Protocols refused with nothing forwarded",
         .in = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "\r\n",
         .status = 502, .out = ""},
        {.why = "Transfer-Encoding: gzip (until close) keeps the gzip coding",
         .in = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n\x1f\x8b", .eof = 1,
         .out = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n" RKA
                "2\r\n\x1f\x8b\r\n0\r\n\r\n"},
        {.why = "Transfer-Encoding: gzip, chunked kept",
         .in = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n",
         .done = 1,
         .out = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n" RKA "1\r\nz\r\n0\r\n\r\n"},
        {.why = "status 050", .in = "HTTP/1.1 050 Continue\r\nContent-Length: 0\r\n\r\n",
         .status = 502, .out = ""},
        {.why = "status 000", .in = "HTTP/1.1 000 Zero\r\nContent-Length: 0\r\n\r\n",
         .status = 502, .out = ""},
        {.why = "status 099", .in = "HTTP/1.1 099 X\r\n\r\nab", .status = 502, .out = ""},
        {.why = "status 600", .in = "HTTP/1.1 600 X\r\nContent-Length: 0\r\n\r\n",
         .status = 502, .out = ""},
        {.why = "status 999", .in = "HTTP/1.1 999 X\r\nContent-Length: 0\r\n\r\n",
         .status = 502, .out = ""},
        {.why = "status 599 is fine", .in = "HTTP/1.1 599 X\r\nContent-Length: 0\r\n\r\n",
         .done = 1, .out = "HTTP/1.1 599 X\r\nContent-Length: 0\r\n" RKA},
        {.why = "a NUL in the reason phrase", .in = nul_reason, .in_len = sizeof(nul_reason) - 1,
         .status = 502, .out = ""},
        {.why = "a control byte in the reason phrase",
         .in = "HTTP/1.1 200 O\x01K\r\nContent-Length: 0\r\n\r\n", .status = 502, .out = ""},
        {.why = "DEL in the reason phrase",
         .in = "HTTP/1.1 200 O\x7fK\r\nContent-Length: 0\r\n\r\n", .status = 502, .out = ""},
        {.why = "tab and obs-text in the reason phrase are kept",
         .in = "HTTP/1.1 200 O\tK \xc3\xa9\r\nContent-Length: 0\r\n\r\n", .done = 1,
         .out = "HTTP/1.1 200 O\tK \xc3\xa9\r\nContent-Length: 0\r\n" RKA},
        {.why = "a 1100-byte reason phrase", .in = lr.p, .done = 1, .out = lr_out.p},
        {.why = "a 100 Continue stays when the final response is refused",
         .in = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n"
               "Content-Length: 2\r\n\r\n",
         .status = 502, .out = "HTTP/1.1 100 Continue\r\n\r\n"},

        /* --- rows that fail today (see the report): kept on purpose --- */
        {.why = "BUG: chunked, gzip (until close) goes out as chunked, gzip, chunked",
         .in = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nabc", .eof = 1,
         .status = OK_OR_CLEAN, .must_not = "chunked, gzip, chunked"},
    };
    int bad = run_rows(rows, ARRAY_LEN(rows), PQM_RELAY_RESPONSE);
    free(lr.p);
    free(lr_out.p);
    TU_ROWS_DONE(bad);
}

/* ---- pipelining, step by step -------------------------------------------------------- */

static void test_request_pipelining(void **state)
{
    (void)state;
    static struct pqm_relay r;
    struct pqm_buf out;
    pqm__buf_init(&out, 1u << 20);
    pqm__relay_init(&r, PQM_RELAY_REQUEST, &out, NULL, NULL);
    const char first[] = "POST /1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc";
    const char second[] = "GET /2 HTTP/1.1\r\nHost: b\r\nX-N: 2\r\n\r\n";
    char both[sizeof(first) + sizeof(second)];
    snprintf(both, sizeof(both), "%s%s", first, second);
    size_t len = strlen(both);

    assert_int_equal(r.state, PQM_RELAY_IDLE);
    size_t used = pqm__relay_feed(&r, (const unsigned char *)both, len);
    assert_int_equal(r.state, PQM_RELAY_DONE);
    assert_int_equal(used, strlen(first)); /* the rest is left unconsumed */
    const char want1[] = "POST /1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n" KA "abc";
    assert_int_equal(out.len, strlen(want1));
    assert_memory_equal(pqm__buf_head(&out), want1, strlen(want1));
    assert_int_equal(r.body_bytes, 3);
    assert_true(r.keep_alive);
    char m[16], t[64];
    pqm__relay_target(&r, m, sizeof(m), t, sizeof(t));
    assert_string_equal(m, "POST");
    assert_string_equal(t, "/1");
    size_t hl = 0;
    const char *hv = pqm__relay_header(&r, "HOST", &hl);
    assert_non_null(hv);
    assert_int_equal(hl, 1);
    assert_memory_equal(hv, "a", 1);
    assert_null(pqm__relay_header(&r, "X-N", &hl));

    /* Still DONE: feeding again takes nothing until pqm__relay_next. */
    assert_int_equal(pqm__relay_feed(&r, (const unsigned char *)both + used, len - used), 0);
    assert_int_equal(r.state, PQM_RELAY_DONE);
    pqm__buf_consume(&out, out.len);

    pqm__relay_next(&r);
    assert_int_equal(r.state, PQM_RELAY_IDLE);
    size_t used2 = pqm__relay_feed(&r, (const unsigned char *)both + used, len - used);
    assert_int_equal(used2, strlen(second));
    assert_int_equal(r.state, PQM_RELAY_DONE);
    const char want2[] = "GET /2 HTTP/1.1\r\nHost: b\r\nX-N: 2\r\n" KA;
    assert_int_equal(out.len, strlen(want2));
    assert_memory_equal(pqm__buf_head(&out), want2, strlen(want2));
    pqm__relay_target(&r, m, sizeof(m), t, sizeof(t));
    assert_string_equal(m, "GET");
    assert_string_equal(t, "/2");
    hv = pqm__relay_header(&r, "x-n", &hl);
    assert_non_null(hv);
    assert_memory_equal(hv, "2", 1);
    /* Nothing under way: a close is clean. */
    pqm__relay_next(&r);
    assert_int_equal(pqm__relay_eof(&r), 0);
    pqm__buf_free(&out);
}

/* One byte at a time through a pipelined pair: DONE arrives exactly at the end of the
 * first message and takes nothing of the second. */
static void test_request_pipelining_bytewise(void **state)
{
    (void)state;
    static struct pqm_relay r;
    struct pqm_buf out;
    pqm__buf_init(&out, 1u << 20);
    pqm__relay_init(&r, PQM_RELAY_REQUEST, &out, NULL, NULL);
    const char in[] = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n";
    size_t first = strlen("GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"), off = 0, dones[2] = {0, 0};
    int nd = 0;
    while (off < sizeof(in) - 1) {
        size_t used = pqm__relay_feed(&r, (const unsigned char *)in + off, 1);
        off += used;
        if (r.state == PQM_RELAY_DONE) {
            assert_true(nd < 2);
            dones[nd++] = off;
            pqm__relay_next(&r);
        } else {
            assert_int_equal(used, 1);
        }
    }
    assert_int_equal(nd, 2);
    assert_int_equal(dones[0], first);
    assert_int_equal(dones[1], sizeof(in) - 1);
    pqm__buf_free(&out);
}

/* A message refused in the feed that wrote its head leaves nothing of it, even when
 * the head began in an earlier feed (ddc49f6: "nothing of a refused message stays in
 * the output of the feed that refused it"). */
struct split_row {
    const char *why;
    const char *a, *b; /* the two feeds */
    int cb;
    int status;
};

static void test_refusal_in_the_feed_that_wrote_the_head(void **state)
{
    (void)state;
    static struct pqm_relay r;
    const struct split_row rows[] = {
        {"head callback refusal", "GET / HTTP/1.1\r\nHost: a\r\n", "X-A: 1\r\n\r\n", CB_REFUSE,
         403},
        {"duplicate Content-Length", "POST / HTTP/1.1\r\nHost: a\r\n",
         "Content-Length: 1\r\nContent-Length: 2\r\n\r\n", CB_NONE, 400},
        {"BUG: bad chunk size after the head, same feed",
         "POST / HTTP/1.1\r\nHost: a\r\n", "Transfer-Encoding: chunked\r\n\r\nzz\r\n", CB_NONE,
         400},
        {"BUG: bad chunk after a good one, same feed", "POST / HTTP/1.1\r\n",
         "Host: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\nq\r\n", CB_NONE, 400},
    };
    int bad = 0;
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        struct pqm_buf out;
        struct cb_ctx ctx = {rows[i].cb, 0};
        pqm__buf_init(&out, 1u << 20);
        pqm__relay_init(&r, PQM_RELAY_REQUEST, &out, head_cb, &ctx);
        size_t la = strlen(rows[i].a), lb = strlen(rows[i].b);
        size_t ua = pqm__relay_feed(&r, (const unsigned char *)rows[i].a, la);
        size_t before = out.len;
        (void)pqm__relay_feed(&r, (const unsigned char *)rows[i].b, lb);
        if (ua != la || before != 0)
            TU_ROW_FAIL(bad, "row %zu (%s): first feed took %zu of %zu, wrote %zu", i,
                        rows[i].why, ua, la, before);
        else if (r.state != PQM_RELAY_ERROR || r.error_status != rows[i].status)
            TU_ROW_FAIL(bad, "row %zu (%s): state %s status %d, want ERROR %d", i, rows[i].why,
                        state_name(r.state), r.error_status, rows[i].status);
        else if (out.len != 0)
            TU_ROW_FAIL(bad, "row %zu (%s): refused %d (%s) but left %zu bytes:\n%.*s", i,
                        rows[i].why, r.error_status, r.error_reason, out.len, (int)out.len,
                        (const char *)pqm__buf_head(&out));
        pqm__buf_free(&out);
    }
    TU_ROWS_DONE(bad);
}

/* After a 1xx alone the final response is still owed: eof must not look like a whole
 * exchange (the state stays short of DONE). */
static void test_response_eof_after_interim(void **state)
{
    (void)state;
    static struct pqm_relay r;
    struct pqm_buf out;
    pqm__buf_init(&out, 1u << 20);
    pqm__relay_init(&r, PQM_RELAY_RESPONSE, &out, NULL, NULL);
    const char in[] = "HTTP/1.1 100 Continue\r\n\r\n";
    assert_int_equal(pqm__relay_feed(&r, (const unsigned char *)in, sizeof(in) - 1),
                     sizeof(in) - 1);
    (void)pqm__relay_eof(&r);
    assert_int_not_equal(r.state, PQM_RELAY_DONE);
    pqm__buf_free(&out);
}

/* The relay refuses input once in ERROR, and pqm__relay_fail keeps the first reason. */
static void test_relay_fail_sticky(void **state)
{
    (void)state;
    static struct pqm_relay r;
    struct pqm_buf out;
    pqm__buf_init(&out, 1u << 20);
    pqm__relay_init(&r, PQM_RELAY_REQUEST, &out, NULL, NULL);
    assert_int_equal(pqm__relay_fail(&r, 418, "first"), -1);
    assert_int_equal(pqm__relay_fail(&r, 500, "second"), -1);
    assert_int_equal(r.state, PQM_RELAY_ERROR);
    assert_int_equal(r.error_status, 418);
    assert_string_equal(r.error_reason, "first");
    const char in[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_int_equal(pqm__relay_feed(&r, (const unsigned char *)in, sizeof(in) - 1), 0);
    assert_int_equal(out.len, 0);
    assert_int_equal(pqm__relay_eof(&r), -1);
    pqm__buf_free(&out);
}

/* ---- pqm__http_is_identity_header ----------------------------------------------------- */

struct id_row {
    const char *name;
    size_t len; /* 0: strlen */
    int want;
};

static void test_is_identity_header(void **state)
{
    (void)state;
    const struct id_row rows[] = {
        {"X-Client-Cert", 0, 1},
        {"x-client-cert", 0, 1},
        {"X_CLIENT_CERT", 0, 1},
        {"x_Client-CERT", 0, 1},
        {"X-Client-Cert-Subject", 0, 1},
        {"X-Client-Cert-Issuer", 0, 1},
        {"X-Client-Cert-Serial", 0, 1},
        {"X-Client-Cert-Fingerprint", 0, 1},
        {"X-Client-Cert-Verify", 0, 1},
        {"x_client_cert_spiffe_id", 0, 1},
        {"X-Client-Certainly-Not", 0, 1}, /* prefix match: documented */
        {"Client-Cert", 0, 1},
        {"client_cert", 0, 1},
        {"CLIENT-CERT-CHAIN", 0, 1},
        {"client_cert_chain", 0, 1},
        {"X-Forwarded-Client-Cert", 0, 1},
        {"x_forwarded_client_cert", 0, 1},
        {"X-SSL-Client", 0, 1},
        {"X-SSL-Client-Verify", 0, 1},
        {"x_ssl_client_s_dn", 0, 1},
        {"X-Forwarded-For", 0, 1},
        {"x_forwarded_for", 0, 1},
        {"X-FORWARDED-PROTO", 0, 1},
        {"X-SSL-Clien", 0, 1}, /* every X-SSL-*: what proxies name client certificates */
        {"X-SSL-Cert", 0, 1},
        {"x_ssl_cert", 0, 1},
        {"Forwarded", 0, 1}, /* RFC 7239: for= names the client */
        {"X-Real-IP", 0, 1},
        {"x_real_ip", 0, 1},
        /* not identity */
        {"X-Request-Id", 0, 0},
        {"Host", 0, 0},
        {"X-Client", 0, 0},
        {"X-Client-Cer", 0, 0},
        {"X-Client-Cert", 12, 0}, /* only LEN bytes count */
        {"X-Forwarded-For", 14, 0},
        {"Client-Certs", 0, 0},
        {"Client-Cert-Chains", 0, 0},
        {"Client-Cert-Subject", 0, 0},
        {"X-Forwarded-Client-Cert-Chain", 0, 0},
        {"X-Forwarded-Host", 0, 0},
        {"X-Forwarded-Fo", 0, 0},
        {"X-Forwarded-Protocol", 0, 0},
        {"X-SSL", 0, 0},
        {"Forwarded-X", 0, 0},
        {"X-Real-IPs", 0, 0},
        {"XX-Client-Cert", 0, 0},
        {" X-Client-Cert", 0, 0},
        {"X.Client.Cert", 0, 0},
        {"", 0, 0},
    };
    int bad = 0;
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        size_t len = rows[i].len ? rows[i].len : strlen(rows[i].name);
        int got = pqm__http_is_identity_header(rows[i].name, len);
        if (got != rows[i].want)
            TU_ROW_FAIL(bad, "row %zu '%.*s': got %d, want %d", i, (int)len, rows[i].name, got,
                        rows[i].want);
    }
    /* The length is honoured: no read past LEN (a name that is not NUL-terminated). */
    char nonterm[13];
    memcpy(nonterm, "X-Client-Cert", 13);
    if (pqm__http_is_identity_header(nonterm, sizeof(nonterm)) != 1)
        TU_ROW_FAIL(bad, "non-terminated X-Client-Cert not matched");
    TU_ROWS_DONE(bad);
}

/* ---- util/buf.c --------------------------------------------------------------------- */

static void test_buf_max_enforced(void **state)
{
    (void)state;
    struct pqm_buf b;
    pqm__buf_init(&b, 10);
    assert_int_equal(pqm__buf_room(&b), 10);
    assert_int_equal(pqm__buf_add(&b, "0123456789A", 11), -1); /* past MAX: nothing */
    assert_int_equal(b.len, 0);
    assert_int_equal(pqm__buf_add(&b, "012345", 6), 0);
    assert_int_equal(pqm__buf_room(&b), 4);
    assert_int_equal(pqm__buf_add(&b, "6789A", 5), -1);
    assert_int_equal(b.len, 6);
    assert_int_equal(pqm__buf_add(&b, "6789", 4), 0);
    assert_int_equal(pqm__buf_room(&b), 0);
    assert_int_equal(pqm__buf_add(&b, "x", 1), -1);
    assert_int_equal(pqm__buf_add(&b, "", 0), 0); /* nothing to add always fits */
    assert_int_equal(pqm__buf_addf(&b, "%d", 1), -1);
    assert_int_equal(b.len, 10);
    assert_memory_equal(pqm__buf_head(&b), "0123456789", 10);
    assert_true(b.cap <= b.max); /* the allocation never passes MAX either */
    assert_null(pqm__buf_reserve(&b, 1));
    pqm__buf_free(&b);
    assert_int_equal(b.len, 0);
    assert_null(b.data);

    /* MAX 0: nothing ever fits. */
    pqm__buf_init(&b, 0);
    assert_int_equal(pqm__buf_add(&b, "x", 1), -1);
    assert_null(pqm__buf_reserve(&b, 1));
    pqm__buf_free(&b);
}

static void test_buf_addf(void **state)
{
    (void)state;
    struct pqm_buf b;
    pqm__buf_init(&b, 1u << 16);
    assert_int_equal(pqm__buf_addf(&b, "%s %d\r\n", "GET", 42), 0);
    assert_int_equal(b.len, 8);
    assert_memory_equal(pqm__buf_head(&b), "GET 42\r\n", 8);
    /* A 1000-byte piece fits. */
    char longs[2001];
    memset(longs, 'x', 2000);
    longs[2000] = '\0';
    size_t before = b.len;
    assert_int_equal(pqm__buf_addf(&b, "%.1000s", longs), 0);
    assert_int_equal(b.len, before + 1000);
    /* Longer pieces: today addf formats into a 1024-byte stack buffer and refuses
     * anything longer (a limit buf.h does not state; see the report). Either way it is
     * all or nothing. */
    before = b.len;
    int rc = pqm__buf_addf(&b, "%s", longs);
    if (rc == 0)
        assert_int_equal(b.len, before + 2000);
    else
        assert_int_equal(b.len, before);
    pqm__buf_free(&b);
}

static void test_buf_reserve_commit(void **state)
{
    (void)state;
    struct pqm_buf b;
    pqm__buf_init(&b, 100); /* below the first allocation size: capped at MAX */
    unsigned char *p = pqm__buf_reserve(&b, 40);
    assert_non_null(p);
    assert_true(b.cap >= 40 && b.cap <= 100);
    memcpy(p, "abcde", 5);
    assert_int_equal(b.len, 0); /* reserving counts nothing */
    pqm__buf_commit(&b, 5);
    assert_int_equal(b.len, 5);
    assert_memory_equal(pqm__buf_head(&b), "abcde", 5);
    assert_null(pqm__buf_reserve(&b, 96)); /* 5 + 96 > 100 */
    p = pqm__buf_reserve(&b, 95);
    assert_non_null(p);
    assert_ptr_equal(p, pqm__buf_head(&b) + 5);
    memset(p, 'z', 95);
    pqm__buf_commit(&b, 95);
    assert_int_equal(b.len, 100);
    assert_int_equal(pqm__buf_room(&b), 0);
    assert_null(pqm__buf_reserve(&b, 1));
    assert_non_null(pqm__buf_reserve(&b, 0)); /* zero bytes always fit */
    pqm__buf_free(&b);
}

static void test_buf_consume(void **state)
{
    (void)state;
    struct pqm_buf b;
    pqm__buf_init(&b, 64);
    assert_int_equal(pqm__buf_add(&b, "0123456789", 10), 0);
    pqm__buf_consume(&b, 3);
    assert_int_equal(b.len, 7);
    assert_int_equal(b.off, 3);
    assert_memory_equal(pqm__buf_head(&b), "3456789", 7);
    assert_int_equal(pqm__buf_room(&b), 64 - 7); /* room counts data, not the offset */
    pqm__buf_consume(&b, 0);
    assert_int_equal(b.len, 7);
    pqm__buf_consume(&b, 7); /* everything: back to the start */
    assert_int_equal(b.len, 0);
    assert_int_equal(b.off, 0);
    assert_int_equal(pqm__buf_add(&b, "ab", 2), 0);
    pqm__buf_consume(&b, 1000); /* more than there is */
    assert_int_equal(b.len, 0);
    assert_int_equal(b.off, 0);
    pqm__buf_consume(&b, 1); /* on empty */
    assert_int_equal(b.len, 0);
    pqm__buf_free(&b);
}

static void test_buf_sliding(void **state)
{
    (void)state;
    struct pqm_buf b;
    pqm__buf_init(&b, 1u << 20);
    unsigned char block[4096];
    for (size_t i = 0; i < sizeof(block); i++)
        block[i] = (unsigned char)(i * 7 + 1);
    assert_int_equal(pqm__buf_add(&b, block, sizeof(block)), 0);
    size_t cap = b.cap;
    assert_int_equal(cap, 4096);
    pqm__buf_consume(&b, 4000); /* 96 left at offset 4000 */
    assert_int_equal(b.off, 4000);
    /* 3000 more do not fit after the data, but do once it slides to the front: no
     * growth. */
    assert_int_equal(pqm__buf_add(&b, block, 3000), 0);
    assert_int_equal(b.off, 0);
    assert_int_equal(b.cap, cap);
    assert_int_equal(b.len, 96 + 3000);
    assert_memory_equal(pqm__buf_head(&b), block + 4000, 96);
    assert_memory_equal(pqm__buf_head(&b) + 96, block, 3000);
    /* Sliding and then growing keeps the data too. */
    pqm__buf_consume(&b, 96);
    assert_int_equal(pqm__buf_add(&b, block, 4096), 0);
    assert_int_equal(b.off, 0);
    assert_true(b.cap >= 3000 + 4096);
    assert_memory_equal(pqm__buf_head(&b), block, 3000);
    assert_memory_equal(pqm__buf_head(&b) + 3000, block, 4096);
    pqm__buf_free(&b);

    /* Growth stops at MAX even when doubling would pass it; with the data slid to the
     * front, a buffer at MAX capacity still takes what room() says fits. */
    pqm__buf_init(&b, 5000);
    assert_int_equal(pqm__buf_add(&b, block, 4096), 0);
    assert_int_equal(pqm__buf_add(&b, block, 904), 0);
    assert_int_equal(b.cap, 5000);
    assert_int_equal(pqm__buf_add(&b, "x", 1), -1);
    pqm__buf_consume(&b, 1000);
    assert_int_equal(pqm__buf_room(&b), 1000);
    assert_int_equal(pqm__buf_add(&b, block, 1000), 0);
    assert_int_equal(b.cap, 5000);
    assert_int_equal(b.len, 5000);
    assert_memory_equal(pqm__buf_head(&b), block + 1000, 3096);
    assert_memory_equal(pqm__buf_head(&b) + 3096, block, 904);
    assert_memory_equal(pqm__buf_head(&b) + 4000, block, 1000);
    pqm__buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canon_helper),
        cmocka_unit_test(test_request_rows),
        cmocka_unit_test(test_response_rows),
        cmocka_unit_test(test_request_pipelining),
        cmocka_unit_test(test_request_pipelining_bytewise),
        cmocka_unit_test(test_refusal_in_the_feed_that_wrote_the_head),
        cmocka_unit_test(test_response_eof_after_interim),
        cmocka_unit_test(test_relay_fail_sticky),
        cmocka_unit_test(test_is_identity_header),
        cmocka_unit_test(test_buf_max_enforced),
        cmocka_unit_test(test_buf_addf),
        cmocka_unit_test(test_buf_reserve_commit),
        cmocka_unit_test(test_buf_consume),
        cmocka_unit_test(test_buf_sliding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
