/* The gateway's TLS 1.3 record layer after the handshake (tls/record.h), judged by
 * OpenSSL's own client: a real handshake over a socket pair, the takeover, then data,
 * KeyUpdate and close_notify both ways; and records forged with the client's keys that
 * the stream must refuse. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tls/record.h"

struct pair {
    SSL_CTX *sctx, *cctx;
    SSL *server, *client;
    int fd[2];
    struct pqm_tls_stream st;
    unsigned char client_secret[48]; /* the client's application traffic secret */
    size_t client_secret_len;
};

static struct pair *current; /* the client's key log goes here */

static void client_keylog(const SSL *ssl, const char *line)
{
    (void)ssl;
    static const char label[] = "CLIENT_TRAFFIC_SECRET_0 ";
    if (strncmp(line, label, sizeof(label) - 1) != 0)
        return;
    const char *hex = strchr(line + sizeof(label) - 1, ' ') + 1;
    size_t n = strlen(hex) / 2;
    for (size_t i = 0; i < n && i < sizeof(current->client_secret); i++) {
        unsigned int v;
        sscanf(hex + 2 * i, "%2x", &v);
        current->client_secret[i] = (unsigned char)v;
    }
    current->client_secret_len = n;
}

/* A P-256 key and a self-signed certificate for the server: the record layer does not
 * depend on them. */
static void server_identity(SSL_CTX *ctx)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *x = X509_new();
    assert_non_null(key);
    assert_non_null(x);
    X509_NAME *name = X509_NAME_new();
    assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                                (const unsigned char *)"record test", -1, -1, 0),
                     1);
    assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 1), 1);
    assert_int_equal(X509_set_subject_name(x, name), 1);
    assert_int_equal(X509_set_issuer_name(x, name), 1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -60));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
    assert_int_equal(X509_set_pubkey(x, key), 1);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    assert_int_equal(SSL_CTX_use_certificate(ctx, x), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(ctx, key), 1);
    X509_NAME_free(name);
    X509_free(x);
    EVP_PKEY_free(key);
}

static void nonblocking(int fd)
{
    assert_int_equal(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
}

/* A handshake between OpenSSL's client and the stream's server SSL, the client's
 * EARLY bytes sent right after its side finished (they must stay with the stream),
 * then the takeover. */
static struct pair *pair_new(const char *suite, int tickets, const char *early)
{
    struct pair *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    current = p;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, p->fd), 0);
    nonblocking(p->fd[0]);
    nonblocking(p->fd[1]);
    p->sctx = SSL_CTX_new(TLS_server_method());
    p->cctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(p->sctx);
    assert_non_null(p->cctx);
    server_identity(p->sctx);
    assert_int_equal(SSL_CTX_set_min_proto_version(p->sctx, TLS1_3_VERSION), 1);
    assert_int_equal(SSL_CTX_set_num_tickets(p->sctx, (size_t)tickets), 1);
    SSL_CTX_set_read_ahead(p->sctx, 1);
    pqm__tls_stream_ctx_setup(p->sctx);
    assert_int_equal(SSL_CTX_set_ciphersuites(p->cctx, suite), 1);
    SSL_CTX_set_keylog_callback(p->cctx, client_keylog);

    pqm__tls_stream_init(&p->st, p->fd[0]);
    p->server = SSL_new(p->sctx);
    p->client = SSL_new(p->cctx);
    assert_non_null(p->server);
    assert_non_null(p->client);
    assert_int_equal(pqm__tls_stream_attach(&p->st, p->server), 0);
    SSL_set_accept_state(p->server);
    assert_int_equal(SSL_set_fd(p->client, p->fd[1]), 1);
    SSL_set_connect_state(p->client);

    int sdone = 0, cdone = 0;
    for (int i = 0; i < 100 && !sdone; i++) {
        if (!cdone && SSL_do_handshake(p->client) == 1) {
            cdone = 1;
            if (early != NULL)
                assert_int_equal(SSL_write(p->client, early, (int)strlen(early)), (int)strlen(early));
        }
        if (cdone && SSL_do_handshake(p->server) == 1)
            sdone = 1;
        else if (!cdone)
            (void)SSL_do_handshake(p->server);
    }
    assert_true(sdone);
    assert_int_equal(pqm__tls_stream_take(&p->st, p->server), 0);
    SSL_free(p->server);
    p->server = NULL;
    assert_true(p->client_secret_len > 0);
    return p;
}

static void pair_free(struct pair *p)
{
    pqm__tls_stream_free(&p->st);
    SSL_free(p->server);
    SSL_free(p->client);
    SSL_CTX_free(p->sctx);
    SSL_CTX_free(p->cctx);
    close(p->fd[0]);
    close(p->fd[1]);
    free(p);
    ERR_clear_error();
}

/* Everything the stream can open now, appended to OUT (at most MAX); the last status. */
static enum pqm_tls_status stream_drain(struct pair *p, unsigned char *out, size_t max,
                                        size_t *len)
{
    static unsigned char chunk[PQM_TLS_MAX_PLAIN];
    for (;;) {
        size_t got = 0;
        int readable = 1;
        enum pqm_tls_status r = pqm__tls_stream_read(&p->st, chunk, sizeof(chunk), &got, &readable);
        assert_true(*len + got <= max);
        memcpy(out + *len, chunk, got);
        *len += got;
        if (r != PQM_TLS_OK)
            return r;
    }
}

/* The client reads until it has N bytes (the stream's writes are all sent: a socket
 * pair's buffer is large enough for the test's amounts, or the loop sends the rest). */
static void client_read_all(struct pair *p, const unsigned char *expect, size_t n)
{
    unsigned char *got = malloc(n + 1);
    assert_non_null(got);
    size_t have = 0;
    for (int i = 0; i < 100000 && have < n; i++) {
        int r = SSL_read(p->client, got + have, (int)(n - have));
        if (r > 0) {
            have += (size_t)r;
            continue;
        }
        assert_int_equal(SSL_get_error(p->client, r), SSL_ERROR_WANT_READ);
        size_t taken;
        assert_int_not_equal(pqm__tls_stream_write(&p->st, NULL, 0, &taken), PQM_TLS_ERROR);
    }
    assert_int_equal(have, n);
    assert_memory_equal(got, expect, n);
    free(got);
}

static void stream_send(struct pair *p, const unsigned char *data, size_t n)
{
    size_t off = 0;
    for (int i = 0; i < 100000 && off < n; i++) {
        size_t taken = 0;
        enum pqm_tls_status r = pqm__tls_stream_write(&p->st, data + off, n - off, &taken);
        assert_true(r == PQM_TLS_OK || r == PQM_TLS_WANT_WRITE);
        off += taken;
        if (r == PQM_TLS_WANT_WRITE) { /* the client takes some, so that the socket drains */
            unsigned char sink[1];
            (void)SSL_peek(p->client, sink, 1);
        }
    }
    assert_int_equal(off, n);
}

static unsigned char *pattern(size_t n, unsigned seed)
{
    unsigned char *b = malloc(n);
    assert_non_null(b);
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)(i * 31 + seed + (i >> 8));
    return b;
}

/* Every TLS 1.3 suite, with 0, 1 and 3 session tickets sent under the server's
 * application key before the takeover: the sequence numbers and keys continue where
 * OpenSSL stopped, in both directions, over many records. */
static void test_takeover(void **state)
{
    (void)state;
    static const char *const suites[] = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                                         "TLS_CHACHA20_POLY1305_SHA256"};
    static const int tickets[] = {0, 1, 3};
    const size_t n = 100 * 1000;
    unsigned char *down = pattern(n, 7);
    unsigned char *up = pattern(n, 11);
    unsigned char *got = malloc(n + 64);
    assert_non_null(got);
    for (size_t s = 0; s < 3; s++) {
        for (size_t t = 0; t < 3; t++) {
            struct pair *p = pair_new(suites[s], tickets[t], "early request");
            size_t len = 0;
            /* what the client sent before the server's handshake was done */
            assert_int_equal(stream_drain(p, got, n + 64, &len), PQM_TLS_WANT_READ);
            assert_int_equal(len, strlen("early request"));
            assert_memory_equal(got, "early request", len);
            /* down: many records, through the stream's bounded output */
            for (size_t off = 0; off < n;) {
                size_t k = n - off < 30000 ? n - off : 30000;
                stream_send(p, down + off, k);
                client_read_all(p, down + off, k);
                off += k;
            }
            /* up: OpenSSL's records, opened by the stream */
            len = 0;
            for (size_t off = 0; off < n;) {
                int w = SSL_write(p->client, up + off, (int)(n - off < 20000 ? n - off : 20000));
                assert_true(w > 0);
                off += (size_t)w;
                assert_int_equal(stream_drain(p, got, n + 64, &len), PQM_TLS_WANT_READ);
            }
            assert_int_equal(len, n);
            assert_memory_equal(got, up, n);
            pair_free(p);
        }
    }
    free(down);
    free(up);
    free(got);
}

/* The client updates its keys (TYPE: SSL_KEY_UPDATE_...) and sends MSG: the stream
 * opens it under the client's new key. */
static void client_key_update(struct pair *p, int type, const char *msg)
{
    unsigned char buf[64];
    size_t len = 0, n = strlen(msg);
    assert_int_equal(SSL_key_update(p->client, type), 1);
    assert_int_equal(SSL_write(p->client, msg, (int)n), (int)n);
    assert_int_equal(stream_drain(p, buf, sizeof(buf), &len), PQM_TLS_WANT_READ);
    assert_int_equal(len, n);
    assert_memory_equal(buf, msg, n);
}

/* A KeyUpdate from the client, with and without a request for ours; and one the
 * stream starts itself (as it does before its key's record limit). */
static void test_key_update(void **state)
{
    (void)state;
    struct pair *p = pair_new("TLS_AES_256_GCM_SHA384", 1, NULL);
    unsigned char before[48];
    memcpy(before, p->st.rd.secret, sizeof(before));

    client_key_update(p, SSL_KEY_UPDATE_REQUESTED, "after update");
    assert_memory_not_equal(before, p->st.rd.secret, sizeof(before));
    assert_true(pqm__tls_stream_has_output(&p->st)); /* ours goes before the next record */
    stream_send(p, (const unsigned char *)"answer", 6);
    assert_false(pqm__tls_stream_has_output(&p->st));
    client_read_all(p, (const unsigned char *)"answer", 6);

    client_key_update(p, SSL_KEY_UPDATE_NOT_REQUESTED, "second");
    assert_false(pqm__tls_stream_has_output(&p->st));

    p->st.key_update_due = 1; /* the stream's own */
    stream_send(p, (const unsigned char *)"third", 5);
    client_read_all(p, (const unsigned char *)"third", 5);
    pair_free(p);
}

static void test_close_notify(void **state)
{
    (void)state;
    struct pair *p = pair_new("TLS_AES_128_GCM_SHA256", 1, NULL);
    unsigned char buf[16];
    size_t len = 0;
    assert_int_equal(SSL_shutdown(p->client), 0); /* sent, the answer not yet read */
    assert_int_equal(stream_drain(p, buf, sizeof(buf), &len), PQM_TLS_EOF);
    assert_int_equal(len, 0);
    pqm__tls_stream_close(&p->st);
    assert_int_equal(SSL_read(p->client, buf, sizeof(buf)), 0);
    assert_int_equal(SSL_get_error(p->client, 0), SSL_ERROR_ZERO_RETURN);
    pair_free(p);

    /* a TCP close without close_notify ends the input too */
    p = pair_new("TLS_AES_128_GCM_SHA256", 1, NULL);
    shutdown(p->fd[1], SHUT_WR);
    len = 0;
    assert_int_equal(stream_drain(p, buf, sizeof(buf), &len), PQM_TLS_EOF);
    pair_free(p);
}

/* Records sealed with the client's keys, handed to the stream as if received. */
struct forge {
    struct pair *p;
    struct pqm_tls_dir d;
    unsigned char out[PQM_TLS_MAX_PLAIN];
};

static void forge_start(struct forge *f)
{
    f->p = pair_new("TLS_AES_128_GCM_SHA256", 1, NULL);
    memset(&f->d, 0, sizeof(f->d));
    assert_int_equal(pqm__tls_dir_init(&f->d, pqm__tls_suite(0x1301), 1, f->p->client_secret,
                                       f->p->client_secret_len),
                     0);
}

static void forge_add(struct forge *f, int type, const unsigned char *content, size_t n)
{
    static unsigned char rec[PQM_TLS_MAX_RECORD];
    assert_int_equal(pqm__tls_seal(&f->d, type, content, n, rec), 0);
    assert_int_equal(pqm__buf_add(&f->p->st.in, rec, n + PQM_TLS_OVERHEAD), 0);
}

/* INNER is the whole inner plaintext: content, type, padding. */
static void forge_add_inner(struct forge *f, const unsigned char *inner, size_t n)
{
    static unsigned char rec[PQM_TLS_MAX_RECORD];
    assert_int_equal(pqm__tls_seal_inner(&f->d, inner, n, rec), 0);
    assert_int_equal(pqm__buf_add(&f->p->st.in, rec, n + PQM_TLS_OVERHEAD - 1), 0);
}

static enum pqm_tls_status forge_read(struct forge *f, size_t *got)
{
    int readable = 0;
    return pqm__tls_stream_read(&f->p->st, f->out, sizeof(f->out), got, &readable);
}

static void forge_end(struct forge *f)
{
    pqm__tls_dir_free(&f->d);
    pair_free(f->p);
}

/* One forged record of content TYPE: the status of opening it, the alert the stream
 * would send and its reason. */
static enum pqm_tls_status forged(const unsigned char *content, size_t n, int type, int *alert,
                                  char *error, size_t errlen)
{
    struct forge f;
    size_t got = 0;
    forge_start(&f);
    forge_add(&f, type, content, n);
    enum pqm_tls_status r = forge_read(&f, &got);
    *alert = f.p->st.alert;
    snprintf(error, errlen, "%s", f.p->st.error);
    forge_end(&f);
    return r;
}

static void test_forged_records(void **state)
{
    (void)state;
    int alert;
    char error[160];
    /* the forging itself is right: application data with padding opens */
    static const unsigned char padded[] = {'o', 'k', 23, 0, 0, 0};
    assert_int_equal(forged(padded, sizeof(padded), 0, &alert, error, sizeof(error)), PQM_TLS_OK);

    static const unsigned char ticket[] = {4, 0, 0, 1, 0}; /* NewSessionTicket from a client */
    assert_int_equal(forged(ticket, sizeof(ticket), 22, &alert, error, sizeof(error)),
                     PQM_TLS_ERROR);
    assert_int_equal(alert, 10);
    assert_non_null(strstr(error, "handshake message 4"));

    static const unsigned char zeros[] = {0, 0, 0};
    assert_int_equal(forged(zeros, sizeof(zeros), 0, &alert, error, sizeof(error)), PQM_TLS_ERROR);
    assert_int_equal(alert, 10);

    static const unsigned char ku_tail[] = {24, 0, 0, 1, 0, 'x'}; /* KeyUpdate, then more */
    assert_int_equal(forged(ku_tail, sizeof(ku_tail), 22, &alert, error, sizeof(error)),
                     PQM_TLS_ERROR);
    assert_int_equal(alert, 10); /* a key change not at a record boundary (5.1) */

    static const unsigned char ku_bad[] = {24, 0, 0, 1, 2}; /* request_update 2 */
    assert_int_equal(forged(ku_bad, sizeof(ku_bad), 22, &alert, error, sizeof(error)),
                     PQM_TLS_ERROR);
    assert_int_equal(alert, 47); /* illegal_parameter (4.6.3) */

    static const unsigned char ku_long[] = {24, 0, 0, 2, 0, 0}; /* a 2-byte body */
    assert_int_equal(forged(ku_long, sizeof(ku_long), 22, &alert, error, sizeof(error)),
                     PQM_TLS_ERROR);
    assert_int_equal(alert, 50);

    static const unsigned char split[] = {24, 0}; /* a message split across records */
    assert_int_equal(forged(split, sizeof(split), 22, &alert, error, sizeof(error)),
                     PQM_TLS_ERROR);
    assert_int_equal(alert, 10);

    static const unsigned char fatal[] = {2, 42}; /* the client's fatal alert: no answer */
    assert_int_equal(forged(fatal, sizeof(fatal), 21, &alert, error, sizeof(error)),
                     PQM_TLS_ERROR);
    assert_int_equal(alert, 0);
    assert_non_null(strstr(error, "alert 42"));

    static const unsigned char short_alert[] = {1}, long_alert[] = {1, 0, 0};
    assert_int_equal(forged(short_alert, 1, 21, &alert, error, sizeof(error)), PQM_TLS_ERROR);
    assert_int_equal(alert, 50);
    assert_int_equal(forged(long_alert, 3, 21, &alert, error, sizeof(error)), PQM_TLS_ERROR);
    assert_int_equal(alert, 50);
    static const unsigned char canceled[] = {1, 90}; /* user_canceled: a close_notify follows */
    assert_int_equal(forged(canceled, 2, 21, &alert, error, sizeof(error)), PQM_TLS_OK);

    static const unsigned char ccs[] = {1};
    assert_int_equal(forged(ccs, sizeof(ccs), 20, &alert, error, sizeof(error)), PQM_TLS_ERROR);
    assert_int_equal(alert, 10);
}

/* Inner plaintexts at and past 2^14 + 1 bytes (RFC 8446 5.4), padding counted. */
static void test_record_sizes(void **state)
{
    (void)state;
    static unsigned char inner[PQM_TLS_MAX_PLAIN + 256];
    struct forge f;
    size_t got;
    memset(inner, 'a', sizeof(inner));

    forge_start(&f); /* 2^14 bytes of content: the largest record */
    inner[PQM_TLS_MAX_PLAIN] = 23;
    forge_add_inner(&f, inner, PQM_TLS_MAX_PLAIN + 1);
    assert_int_equal(forge_read(&f, &got), PQM_TLS_OK);
    assert_int_equal(got, PQM_TLS_MAX_PLAIN);
    forge_end(&f);

    forge_start(&f); /* one byte more */
    inner[PQM_TLS_MAX_PLAIN] = 'a';
    inner[PQM_TLS_MAX_PLAIN + 1] = 23;
    forge_add_inner(&f, inner, PQM_TLS_MAX_PLAIN + 2);
    assert_int_equal(forge_read(&f, &got), PQM_TLS_ERROR);
    assert_int_equal(f.p->st.alert, 22);
    assert_int_equal(got, 0);
    forge_end(&f);

    forge_start(&f); /* short content, but padded past the limit */
    memset(inner + 16000, 0, sizeof(inner) - 16000);
    inner[16000] = 23;
    forge_add_inner(&f, inner, 16000 + 1 + 400);
    assert_int_equal(forge_read(&f, &got), PQM_TLS_ERROR);
    assert_int_equal(f.p->st.alert, 22);
    forge_end(&f);
}

/* Records without data: 32 in a row pass, the 33rd ends the connection; data resets
 * the count. */
static void test_empty_records(void **state)
{
    (void)state;
    struct forge f;
    size_t got;
    static const unsigned char ku[] = {24, 0, 0, 1, 0};
    forge_start(&f);
    for (int i = 0; i < 31; i++)
        forge_add(&f, 23, NULL, 0);
    forge_add(&f, 22, ku, sizeof(ku));
    assert_int_equal(pqm__tls_dir_update(&f.d, pqm__tls_suite(0x1301), 1), 0); /* the client's */
    forge_add(&f, 23, (const unsigned char *)"d", 1);
    for (int i = 0; i < 32; i++) {
        assert_int_equal(forge_read(&f, &got), PQM_TLS_OK);
        assert_int_equal(got, 0);
    }
    assert_int_equal(forge_read(&f, &got), PQM_TLS_OK); /* under the client's next key */
    assert_int_equal(got, 1);
    assert_int_equal(f.out[0], 'd');
    forge_end(&f);

    forge_start(&f);
    for (int i = 0; i < 32; i++)
        forge_add(&f, 23, NULL, 0);
    forge_add(&f, 23, (const unsigned char *)"d", 1);
    for (int i = 0; i < 33; i++)
        forge_add(&f, 23, NULL, 0);
    for (int i = 0; i < 32; i++)
        assert_int_equal(forge_read(&f, &got), PQM_TLS_OK);
    assert_int_equal(forge_read(&f, &got), PQM_TLS_OK);
    assert_int_equal(got, 1);
    for (int i = 0; i < 32; i++)
        assert_int_equal(forge_read(&f, &got), PQM_TLS_OK);
    assert_int_equal(forge_read(&f, &got), PQM_TLS_ERROR);
    assert_non_null(strstr(f.p->st.error, "without data"));
    forge_end(&f);
}

/* The stream's own KeyUpdate when its write key has protected its share of records. */
static void test_key_limit(void **state)
{
    (void)state;
    struct pair *p = pair_new("TLS_CHACHA20_POLY1305_SHA256", 2, NULL);
    unsigned char before[48];
    memcpy(before, p->st.wr.secret, sizeof(before));
    p->st.key_limit = p->st.wr.seq + 3;
    const size_t n = 10 * PQM_TLS_MAX_PLAIN;
    unsigned char *data = pattern(n, 3);
    stream_send(p, data, n);
    client_read_all(p, data, n);
    assert_memory_not_equal(before, p->st.wr.secret, sizeof(before));
    assert_true(p->st.wr.seq <= 3);
    free(data);
    pair_free(p);
}

/* The handshake BIO hands OpenSSL one record at most per read, whatever it asks for:
 * what follows stays with the stream. A close is an EOF, not an error. */
static void test_bio_bounds(void **state)
{
    (void)state;
    int fd[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
    nonblocking(fd[0]);
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(ctx);
    SSL *ssl = SSL_new(ctx);
    assert_non_null(ssl);
    struct pqm_tls_stream st;
    pqm__tls_stream_init(&st, fd[0]);
    assert_int_equal(pqm__tls_stream_attach(&st, ssl), 0);
    BIO *b = SSL_get_rbio(ssl);
    static const unsigned char two[] = {22, 3, 3, 0, 3, 'a', 'b', 'c', 23, 3, 3, 0, 2, 'x', 'y'};
    assert_int_equal(send(fd[1], two, sizeof(two), 0), (ssize_t)sizeof(two));
    unsigned char buf[1000];
    assert_int_equal(BIO_read(b, buf, sizeof(buf)), 8);
    assert_memory_equal(buf, two, 8);
    assert_int_equal(BIO_read(b, buf, 3), 3); /* a part, then the rest of the record */
    assert_int_equal(BIO_read(b, buf + 3, sizeof(buf)), 4);
    assert_memory_equal(buf, two + 8, 7);
    assert_true(BIO_read(b, buf, sizeof(buf)) <= 0);
    assert_true(BIO_should_retry(b));
    assert_false(BIO_eof(b));
    shutdown(fd[1], SHUT_WR);
    assert_true(BIO_read(b, buf, sizeof(buf)) <= 0);
    assert_false(BIO_should_retry(b));
    assert_true(BIO_eof(b));
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    pqm__tls_stream_free(&st);
    close(fd[0]);
    close(fd[1]);
}

/* Bytes that are not a valid record for this connection. */
static void test_bad_records(void **state)
{
    (void)state;
    unsigned char out[PQM_TLS_MAX_PLAIN];
    size_t got;
    int readable = 0;

    /* a bit flipped in OpenSSL's own record: bad_record_mac */
    struct pair *p = pair_new("TLS_CHACHA20_POLY1305_SHA256", 1, NULL);
    assert_int_equal(SSL_write(p->client, "hello", 5), 5);
    unsigned char raw[128];
    ssize_t n = recv(p->fd[0], raw, sizeof(raw), 0);
    assert_int_equal(n, 5 + 5 + 1 + 16);
    raw[7] ^= 1;
    assert_int_equal(pqm__buf_add(&p->st.in, raw, (size_t)n), 0);
    assert_int_equal(pqm__tls_stream_read(&p->st, out, sizeof(out), &got, &readable), PQM_TLS_ERROR);
    assert_int_equal(p->st.alert, 20);
    pair_free(p);

    /* a header too long, an outer type other than application_data, too short */
    static const unsigned char headers[][5] = {
        {23, 3, 3, 0x41, 0x01}, /* 2^14 + 257 */
        {22, 3, 3, 0, 32},
        {23, 3, 3, 0, 16},
    };
    static const int alerts[] = {22, 10, 50};
    for (size_t i = 0; i < 3; i++) {
        p = pair_new("TLS_AES_128_GCM_SHA256", 0, NULL);
        assert_int_equal(pqm__buf_add(&p->st.in, headers[i], 5), 0);
        assert_int_equal(pqm__tls_stream_read(&p->st, out, sizeof(out), &got, &readable),
                         PQM_TLS_ERROR);
        assert_int_equal(p->st.alert, alerts[i]);
        pair_free(p);
    }
}

/* The stream's idle buffers go back to the thread's spare blocks, and come back. */
static void test_release(void **state)
{
    (void)state;
    struct pair *p = pair_new("TLS_AES_128_GCM_SHA256", 1, "x");
    unsigned char buf[PQM_TLS_MAX_PLAIN];
    size_t len = 0;
    assert_int_equal(stream_drain(p, buf, sizeof(buf), &len), PQM_TLS_WANT_READ);
    assert_non_null(p->st.in.data);
    unsigned char *block = p->st.in.data;
    pqm__tls_stream_release(&p->st);
    assert_null(p->st.in.data);
    assert_int_equal(SSL_write(p->client, "y", 1), 1);
    len = 0;
    assert_int_equal(stream_drain(p, buf, sizeof(buf), &len), PQM_TLS_WANT_READ);
    assert_ptr_equal(p->st.in.data, block); /* the same block, not a new allocation */
    assert_int_equal(len, 1);
    pair_free(p);
    pqm__buf_spare_drain();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_takeover),     cmocka_unit_test(test_key_update),
        cmocka_unit_test(test_close_notify), cmocka_unit_test(test_forged_records),
        cmocka_unit_test(test_bad_records),  cmocka_unit_test(test_release),
        cmocka_unit_test(test_record_sizes), cmocka_unit_test(test_empty_records),
        cmocka_unit_test(test_key_limit),    cmocka_unit_test(test_bio_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
