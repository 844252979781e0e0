/* libFuzzer target: the HTTP/1.1 relays of http/relay.c, a request relay and a response
 * relay over the same bytes.
 *
 * Input layout: byte 0 holds flags (bit 0: the request was HEAD, bit 1: close_after,
 * bit 2: call pqm__relay_eof at the end, bits 4-7: how many extra times the payload is
 * repeated, so that heads past PQM_HTTP_HEAD_MAX are reachable under -max_len), bytes
 * 1-3 the sizes of the pieces fed in turn (0: all that is left), the rest the stream.
 *
 * Invariants checked (abort on violation):
 *  - the output buffer never passes its bound, and its bookkeeping stays consistent;
 *  - a feed consumes at most what it was given, and consumes nothing only in DONE or
 *    ERROR (otherwise the caller would spin);
 *  - after DONE nothing is consumed until pqm__relay_next;
 *  - after ERROR nothing more is consumed or written, the state stays ERROR, and the
 *    error has a status and a reason;
 *  - a request refused in the feed it began in leaves nothing in the output;
 *  - every forwarded head (checked from the head callback, where the relay has written
 *    the start line and the kept fields) has a well-formed start line (responses:
 *    status 100-599 but not 101, no control bytes in the reason), no hop-by-hop field,
 *    and, for requests, exactly one Host and no field that could pass for an identity
 *    header;
 *  - pqm__relay_eof ends in a consistent state. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/relay.h"
#include "util/buf.h"
#include "fuzz_check.h"

#define OUT_MAX (4 * PQM_HTTP_OUT_RESERVE)

struct ctx {
    enum pqm_relay_kind kind;
    size_t feed_start; /* out->len when the current feed began */
};

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* NAME (LEN bytes) equals LIT in any case, with '_' taken as '-' (the relay's rule). */
static int same_name(const char *name, size_t len, const char *lit)
{
    if (len != strlen(lit))
        return 0;
    for (size_t i = 0; i < len; i++) {
        int c = name[i] == '_' ? '-' : lower((unsigned char)name[i]);
        if (c != lit[i])
            return 0;
    }
    return 1;
}

static void check_buf(const struct pqm_buf *b)
{
    CHECK(b->len <= b->max);
    CHECK(b->cap <= b->max);
    CHECK(b->len == 0 || b->data != NULL);
    CHECK(b->off + b->len <= b->cap || (b->len == 0 && b->off == 0));
}

/* Called by the relay after it wrote the start line and the kept fields of a head. */
static int on_head(struct pqm_relay *r, struct pqm_buf *out, void *arg)
{
    static const char *const hop[] = {"connection",     "keep-alive",         "proxy-connection",
                                      "te",             "trailer",            "transfer-encoding",
                                      "upgrade",        "content-length",     "proxy-authenticate",
                                      "proxy-authorization"};
    struct ctx *c = arg;
    check_buf(out);
    CHECK(out->len >= c->feed_start);
    const char *p = (const char *)pqm__buf_head(out) + c->feed_start;
    const char *end = (const char *)pqm__buf_head(out) + out->len;
    /* A response feed may hold complete 1xx heads before this one. */
    if (c->kind == PQM_RELAY_RESPONSE)
        for (const char *q = p; q + 4 <= end; q++)
            if (memcmp(q, "\r\n\r\n", 4) == 0)
                p = q + 4;
    /* The start line. */
    const char *eol = p;
    while (eol + 1 < end && !(eol[0] == '\r' && eol[1] == '\n'))
        eol++;
    CHECK(eol + 1 < end);
    size_t sl = (size_t)(eol - p);
    if (c->kind == PQM_RELAY_REQUEST) {
        CHECK(sl > 10 && memcmp(eol - 9, " HTTP/1.1", 9) == 0);
        const char *sp = memchr(p, ' ', sl);
        CHECK(sp != NULL && sp[1] == '/');
        CHECK(r->method != HTTP_CONNECT);
    } else {
        /* Status 100-599 in three digits, never 101; a reason without control bytes. */
        CHECK(sl >= 13 && memcmp(p, "HTTP/1.1 ", 9) == 0);
        CHECK(p[9] >= '1' && p[9] <= '5' && p[10] >= '0' && p[10] <= '9' && p[11] >= '0' &&
              p[11] <= '9' && p[12] == ' ');
        CHECK(memcmp(p + 9, "101", 3) != 0);
        for (const char *q = p + 13; q < eol; q++)
            CHECK(((unsigned char)*q >= 0x20 || *q == '\t') && *q != 0x7f);
    }
    for (const char *q = p; q < eol; q++)
        CHECK(*q != '\r' && *q != '\n');
    /* The kept fields, each "name: value\r\n". */
    size_t hosts = 0;
    for (p = eol + 2; p < end;) {
        eol = p;
        while (eol + 1 < end && !(eol[0] == '\r' && eol[1] == '\n'))
            eol++;
        CHECK(eol + 1 < end); /* every field line is complete */
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        CHECK(colon != NULL && colon > p && colon + 1 < eol + 1 && colon[1] == ' ');
        size_t nlen = (size_t)(colon - p);
        for (const char *q = p; q < colon; q++)
            CHECK(*q > ' ' && *q < 0x7f);
        for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
            CHECK(!same_name(p, nlen, hop[i]));
        if (c->kind == PQM_RELAY_REQUEST)
            CHECK(!pqm__http_is_identity_header(p, nlen));
        hosts += same_name(p, nlen, "host");
        p = eol + 2;
    }
    if (c->kind == PQM_RELAY_REQUEST)
        CHECK(hosts == 1);
    if (c->kind == PQM_RELAY_REQUEST) {
        char method[32], target[256];
        pqm__relay_target(r, method, sizeof(method), target, sizeof(target));
        CHECK(target[0] == '/');
        size_t hl;
        CHECK(pqm__relay_header(r, "host", &hl) != NULL);
    }
    return pqm__buf_addf(out, "X-Fuzz-Gw: 1\r\n");
}

static void run(enum pqm_relay_kind kind, const uint8_t *data, size_t size)
{
    static struct pqm_relay r; /* holds a 32 KB head: not on the stack */
    uint8_t flags = data[0];
    const uint8_t *steps = data + 1;
    const uint8_t *payload = data + 4;
    size_t plen = size - 4;
    unsigned reps = 1 + (flags >> 4);
    size_t total = plen * reps;

    unsigned char *in = malloc(total ? total : 1);
    if (in == NULL)
        return;
    for (unsigned i = 0; i < reps; i++)
        memcpy(in + (size_t)i * plen, payload, plen);

    struct pqm_buf out;
    pqm__buf_init(&out, OUT_MAX);
    struct ctx c = {kind, 0};
    pqm__relay_init(&r, kind, &out, on_head, &c);
    r.expect_head = flags & 1;
    r.close_after = (flags >> 1) & 1;

    size_t off = 0, k = 0, drained = 0;
    while (off < total) {
        size_t n = steps[k++ % 3];
        if (n == 0 || n > total - off)
            n = total - off;
        if (n > PQM_HTTP_OUT_RESERVE)
            n = PQM_HTTP_OUT_RESERVE;
        /* Drained when half full, leaving a few bytes so that the buffer slides. */
        if (out.len >= OUT_MAX / 2) {
            size_t keep = out.len % 7;
            pqm__buf_consume(&out, out.len - keep);
            drained++;
        }
        CHECK(pqm__buf_room(&out) >= PQM_HTTP_OUT_RESERVE + n);
        c.feed_start = out.len;
        enum pqm_relay_state was = r.state;
        size_t used = pqm__relay_feed(&r, in + off, n);
        check_buf(&out);
        CHECK(used <= n);
        off += used;
        if (used == 0)
            CHECK(r.state == PQM_RELAY_DONE || r.state == PQM_RELAY_ERROR);
        if (r.state == PQM_RELAY_DONE) {
            size_t before = out.len;
            CHECK(pqm__relay_feed(&r, in + off, total - off) == 0);
            CHECK(out.len == before && r.state == PQM_RELAY_DONE);
            pqm__relay_next(&r);
            CHECK(r.state == PQM_RELAY_IDLE);
            continue;
        }
        if (r.state == PQM_RELAY_ERROR) {
            /* A request that began in this feed and was refused in it leaves nothing. */
            if (kind == PQM_RELAY_REQUEST && was == PQM_RELAY_IDLE)
                CHECK(out.len == c.feed_start);
            CHECK(r.error_status >= 400 && r.error_status <= 599);
            CHECK(r.error_reason[0] != '\0');
            size_t before = out.len;
            int status = r.error_status;
            CHECK(pqm__relay_feed(&r, in + off, total - off) == 0);
            pqm__relay_next(&r);
            CHECK(pqm__relay_feed(&r, in + off, total - off) == 0);
            CHECK(out.len == before && r.state == PQM_RELAY_ERROR && r.error_status == status);
            break;
        }
    }
    if (flags & 4) {
        enum pqm_relay_state was = r.state;
        size_t before = out.len;
        c.feed_start = out.len;
        int rc = pqm__relay_eof(&r);
        check_buf(&out);
        CHECK(rc == 0 || rc == -1);
        if (rc == 0)
            CHECK(r.state == PQM_RELAY_IDLE || r.state == PQM_RELAY_DONE);
        else
            CHECK(r.state == PQM_RELAY_ERROR);
        if (was == PQM_RELAY_ERROR)
            CHECK(out.len == before);
    }
    (void)drained;
    pqm__buf_free(&out);
    free(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4 || size > 65536)
        return 0;
    run(PQM_RELAY_REQUEST, data, size);
    run(PQM_RELAY_RESPONSE, data, size);
    return 0;
}
