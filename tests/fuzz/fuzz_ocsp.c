/* libFuzzer target: the OCSP responder's request handling, from the bytes a client
 * sends to the answer it gets: ocsp/http.c (HTTP/1.1 framing, routing, GET decoding)
 * over ocsp/responder.c (DER requests, signed responses).
 *
 * The CA and its delegated signer have ML-DSA-65 keys derived from fixed seeds, so that
 * the CertIDs (issuer name and key hashes) of the seed corpus name this CA and reach
 * the signing path. FUZZ_OCSP_WRITE_SEEDS=DIR writes that corpus and exits.
 *
 * Input layout: byte 0 holds flags (bit 0: the rest is a DER OCSPRequest given to the
 * responder directly, not an HTTP stream), byte 1 the size of the pieces the stream is
 * fed in (0: all at once), the rest the payload.
 *
 * Invariants checked (abort on violation):
 *  - a feed takes at most what it was given, and takes nothing only when a request is
 *    complete or refused (otherwise the server would spin);
 *  - every answer fits the bound of its buffer, has a status the responder gives, a
 *    Content-Length equal to its body, and an OCSP body when it says so;
 *  - every OCSP answer parses back with the status it was given; a successful one is
 *    signed by the signer, verifies against the CA, and answers each certificate asked
 *    (answers to requests without a nonce may come from a small cache kept across
 *    inputs, so its lookups, replacements and reuse are fuzzed too);
 *  - a refused request ends the connection. */
#define _GNU_SOURCE /* memmem */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/param_build.h>

#include "ocsp/http.h"
#include "ocsp/responder.h"
#include "pki/certbuild.h"
#include "test_certs.h"
#include "util/buf.h"
#include "fuzz_check.h"

static struct pqm_ocsp_responder responder;
static struct pqm_ocsp_cache cache; /* small: answers kept across inputs, slots reused */
static X509_STORE *trust;
static X509 *ca;

static EVP_PKEY *seeded_key(unsigned char fill)
{
    unsigned char seed[32];
    memset(seed, fill, sizeof(seed));
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_ML_DSA_SEED, seed, sizeof(seed)),
        OSSL_PARAM_construct_end(),
    };
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "ML-DSA-65", NULL);
    EVP_PKEY *key = NULL;
    CHECK(ctx != NULL && EVP_PKEY_fromdata_init(ctx) == 1 &&
          EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_KEYPAIR, params) == 1);
    EVP_PKEY_CTX_free(ctx);
    return key;
}

static X509 *build(enum pqm_cert_kind kind, const char *cn, EVP_PKEY *key, X509 *issuer,
                   EVP_PKEY *issuer_key)
{
    struct pqm_err e;
    int64_t now = (int64_t)time(NULL);
    X509 *x = tc_cert(kind, cn, key, issuer, issuer_key, now - 60, now + 86400, &e);
    CHECK(x != NULL);
    return x;
}

/* Serials ending in 1 are good, in 2 revoked, others unknown. */
static int lookup(void *arg, const char *issuer, const char *serial, struct pqm_ocsp_status *out)
{
    (void)arg;
    CHECK(strcmp(issuer, responder.issuers[0].serial) == 0);
    size_t n = strlen(serial);
    CHECK(n > 0 && n <= 40);
    char last = serial[n - 1];
    *out = (struct pqm_ocsp_status){last == '1'   ? PQM_OCSP_GOOD
                                    : last == '2' ? PQM_OCSP_REVOKED
                                                  : PQM_OCSP_UNKNOWN,
                                    1700000000, last == '2' ? 1 : -1};
    return 0;
}

static void write_seeds(const char *dir);

static void setup(void)
{
    if (ca != NULL)
        return;
    EVP_PKEY *ca_key = seeded_key(1), *signer_key = seeded_key(2);
    ca = build(PQM_KIND_ROOT, "Fuzz OCSP CA", ca_key, NULL, ca_key);
    X509 *signer = build(PQM_KIND_OCSP, "Fuzz OCSP signer", signer_key, ca, ca_key);
    struct pqm_err e;
    CHECK(pqm__ocsp_add_issuer(&responder, "fuzz CA", ca, signer, signer_key, &e) == 0);
    responder.validity = 3600;
    CHECK(pqm__ocsp_cache_init(&cache, 8) == 0);
    trust = X509_STORE_new();
    CHECK(trust != NULL && X509_STORE_add_cert(trust, ca) == 1);
    X509_free(signer);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(signer_key);
    const char *dir = getenv("FUZZ_OCSP_WRITE_SEEDS");
    if (dir != NULL) {
        write_seeds(dir);
        _exit(0); /* not exit(): libFuzzer would report the exit as a crash */
    }
}

/* An OCSP answer: its status as given, and a successful one signed, verifying and
 * answering every certificate of the request. */
static void check_ocsp(const unsigned char *der, size_t len, int status)
{
    const unsigned char *p = der;
    OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
    CHECK(resp != NULL && p == der + len);
    CHECK(OCSP_response_status(resp) == status);
    if (status == OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        OCSP_BASICRESP *bs = OCSP_response_get1_basic(resp);
        CHECK(bs != NULL);
        CHECK(OCSP_basic_verify(bs, NULL, trust, 0) == 1);
        int n = OCSP_resp_count(bs);
        CHECK(n >= 1 && n <= PQM_OCSP_MAX_CERTS);
        OCSP_BASICRESP_free(bs);
    } else {
        CHECK(len == 5);
    }
    OCSP_RESPONSE_free(resp);
    ERR_clear_error();
}

static void run_der(const uint8_t *data, size_t size)
{
    struct pqm_ocsp_answer a;
    pqm__ocsp_respond(&responder, data, size, (int64_t)time(NULL), lookup, NULL, &a);
    CHECK(a.der != NULL && a.len > 0);
    CHECK(a.status == OCSP_RESPONSE_STATUS_SUCCESSFUL || a.why[0] != '\0');
    check_ocsp(a.der, a.len, a.status);
    pqm__ocsp_answer_free(&a);
}

static void check_answer(const struct pqm_buf *out, const struct pqm_ocsp_served *s)
{
    static const int statuses[] = {200, 400, 404, 405, 413, 414, 415, 431};
    int known = 0;
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
        known |= s->http_status == statuses[i];
    CHECK(known);
    const char *head = (const char *)pqm__buf_head(out);
    const char *end = memmem(head, out->len, "\r\n\r\n", 4);
    CHECK(end != NULL);
    const char *cl = memmem(head, (size_t)(end - head), "Content-Length: ", 16);
    CHECK(cl != NULL);
    size_t body = out->len - (size_t)(end + 4 - head);
    CHECK(strtoul(cl + 16, NULL, 10) == body);
    if (s->ocsp_status >= 0) {
        CHECK(s->http_status == 200);
        check_ocsp((const unsigned char *)end + 4, body, s->ocsp_status);
    }
    if (s->http_status >= 400 && s->http_status != 404 && s->http_status != 405 &&
        s->http_status != 415)
        CHECK(s->close);
}

static void run_http(const uint8_t *data, size_t size, size_t piece)
{
    struct pqm_ocsp_http h;
    struct pqm_buf out;
    pqm__ocsp_http_init(&h);
    pqm__buf_init(&out, PQM_OCSP_ANSWER_MAX + 64);
    struct pqm_ocsp_site site = {&responder, lookup, NULL, "/", (int64_t)time(NULL), &cache};
    size_t off = 0;
    int closed = 0;
    while (off < size && !closed) {
        size_t n = piece == 0 || piece > size - off ? size - off : piece;
        size_t used = pqm__ocsp_http_feed(&h, data + off, n);
        CHECK(used <= n);
        off += used;
        h.continue_due = 0;
        if (h.state != PQM_OCSP_HTTP_COMPLETE && h.state != PQM_OCSP_HTTP_ERROR) {
            CHECK(used == n); /* taking nothing would make the server spin */
            continue;
        }
        struct pqm_ocsp_served s;
        pqm__buf_consume(&out, out.len);
        int rc = pqm__ocsp_http_answer(&h, &site, &out, &s);
        CHECK(rc == 0); /* an empty buffer of this bound always has room */
        CHECK(out.len <= out.max);
        check_answer(&out, &s);
        closed = s.close;
        if (!closed)
            CHECK(h.state == PQM_OCSP_HTTP_IDLE);
    }
    if (!closed)
        pqm__ocsp_http_eof(&h);
    pqm__ocsp_http_free(&h);
    pqm__buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    if (size < 2 || size > 65536)
        return 0;
    if (data[0] & 1)
        run_der(data + 2, size - 2);
    else
        run_http(data + 2, size - 2, data[1]);
    return 0;
}

/* --- the seed corpus ------------------------------------------------------------------ */

static unsigned char *request_der(const long *serials, int nonce, size_t *len)
{
    OCSP_REQUEST *req = OCSP_REQUEST_new();
    CHECK(req != NULL);
    for (size_t i = 0; serials[i] != 0; i++) {
        ASN1_INTEGER *sn = ASN1_INTEGER_new();
        CHECK(sn != NULL && ASN1_INTEGER_set(sn, serials[i]) == 1);
        OCSP_CERTID *id = OCSP_cert_id_new(EVP_sha1(), X509_get_subject_name(ca),
                                           X509_get0_pubkey_bitstr(ca), sn);
        CHECK(id != NULL && OCSP_request_add0_id(req, id) != NULL);
        ASN1_INTEGER_free(sn);
    }
    if (nonce)
        CHECK(OCSP_request_add1_nonce(req, NULL, 16) == 1);
    unsigned char *der = NULL;
    int n = i2d_OCSP_REQUEST(req, &der);
    CHECK(n > 0);
    OCSP_REQUEST_free(req);
    *len = (size_t)n;
    return der;
}

static void seed(const char *dir, const char *name, unsigned char flags, unsigned char piece,
                 const void *a, size_t alen, const void *b, size_t blen)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    unsigned char head[2] = {flags, piece};
    CHECK(fwrite(head, 1, 2, f) == 2 && fwrite(a, 1, alen, f) == alen &&
          (blen == 0 || fwrite(b, 1, blen, f) == blen));
    CHECK(fclose(f) == 0);
}

static void write_seeds(const char *dir)
{
    static const long one[] = {0x0A01, 0}, three[] = {0x0A01, 0x0A02, 0x0A03, 0};
    size_t len = 0, len3 = 0;
    unsigned char *der = request_der(one, 1, &len), *der3 = request_der(three, 0, &len3);
    char head[256], b64[512], pipelined[2048];
    seed(dir, "der-one-nonce", 1, 0, der, len, NULL, 0);
    seed(dir, "der-three", 1, 0, der3, len3, NULL, 0);
    int n = snprintf(head, sizeof(head),
                     "POST / HTTP/1.1\r\nHost: ocsp\r\nContent-Type: application/ocsp-request\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     len);
    seed(dir, "post", 0, 0, head, (size_t)n, der, len);
    seed(dir, "post-in-pieces", 0, 7, head, (size_t)n, der, len);
    memcpy(pipelined, head, (size_t)n);
    memcpy(pipelined + n, der, len);
    memcpy(pipelined + (size_t)n + len, head, (size_t)n);
    seed(dir, "post-pipelined", 0, 0, pipelined, 2 * (size_t)n + len, der, len);
    n = snprintf(head, sizeof(head),
                 "POST / HTTP/1.1\r\nHost: ocsp\r\nContent-Type: application/ocsp-request\r\n"
                 "Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n%zx\r\n",
                 len3);
    memcpy(pipelined, head, (size_t)n);
    memcpy(pipelined + n, der3, len3);
    memcpy(pipelined + (size_t)n + len3, "\r\n0\r\n\r\n", 7);
    seed(dir, "post-chunked", 0, 0, pipelined, (size_t)n + len3 + 7, NULL, 0);
    int b = EVP_EncodeBlock((unsigned char *)b64, der3, (int)len3);
    char get[1024];
    int g = snprintf(get, sizeof(get), "GET /%.*s HTTP/1.1\r\nHost: ocsp\r\n\r\n", b, b64);
    seed(dir, "get", 0, 0, get, (size_t)g, NULL, 0);
    static const char *const plain[][2] = {
        {"healthz", "GET /healthz HTTP/1.1\r\nHost: ocsp\r\n\r\n"},
        {"http10", "POST / HTTP/1.0\r\nContent-Type: application/ocsp-request\r\n"
                   "Content-Length: 4\r\n\r\nabcd"},
        {"delete", "DELETE / HTTP/1.1\r\nHost: ocsp\r\n\r\n"},
        {"wrong-type", "POST / HTTP/1.1\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi"},
        {"big-length", "POST / HTTP/1.1\r\nContent-Length: 99999\r\n\r\n"},
        {"garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"},
    };
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
        seed(dir, plain[i][0], 0, 0, plain[i][1], strlen(plain[i][1]), NULL, 0);
    OPENSSL_free(der);
    OPENSSL_free(der3);
}
