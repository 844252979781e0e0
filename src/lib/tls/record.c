/* TLS 1.3 records after the handshake: see record.h. */
#include "tls/record.h"

#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>

#define PQM_TLS_TAG 16
#define PQM_TLS_IN_MAX (2 * PQM_TLS_MAX_RECORD)
#define PQM_TLS_OUT_MAX (64 * 1024) /* three full records and more: a spare block's size */
/* Records in a row that carry no application data (empty ones, KeyUpdates, warnings)
 * before the client is taken for a flood: OpenSSL's limit for empty records. */
#define PQM_TLS_MAX_EMPTY 32

enum { CT_ALERT = 21, CT_HANDSHAKE = 22, CT_APPLICATION_DATA = 23 };
enum { HS_KEY_UPDATE = 24 };
enum {
    AL_CLOSE_NOTIFY = 0,
    AL_UNEXPECTED_MESSAGE = 10,
    AL_BAD_RECORD_MAC = 20,
    AL_RECORD_OVERFLOW = 22,
    AL_ILLEGAL_PARAMETER = 47,
    AL_DECODE_ERROR = 50,
    AL_INTERNAL_ERROR = 80,
    AL_USER_CANCELED = 90,
};

struct pqm_tls_suite {
    uint16_t id;
    const char *cipher_name, *digest;
    size_t keylen, hashlen;
    EVP_CIPHER *cipher;
};

static struct pqm_tls_suite suites[] = {
    {0x1301, "AES-128-GCM", "SHA256", 16, 32, NULL},
    {0x1302, "AES-256-GCM", "SHA384", 32, 48, NULL},
    {0x1303, "ChaCha20-Poly1305", "SHA256", 32, 32, NULL},
};
static EVP_KDF *hkdf;
static BIO_METHOD *bio_method;
static int ex_index = -1;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static int bio_read(BIO *b, char *out, size_t outl, size_t *got);
static int bio_write(BIO *b, const char *in, size_t inl, size_t *put);
static long bio_ctrl(BIO *b, int cmd, long num, void *ptr);

/* Fetched once, kept for the process's life. */
static void init_once(void)
{
    for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++)
        suites[i].cipher = EVP_CIPHER_fetch(NULL, suites[i].cipher_name, NULL);
    hkdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    ex_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
                                 "pqmtls record stream");
    if (m != NULL && BIO_meth_set_read_ex(m, bio_read) == 1 &&
        BIO_meth_set_write_ex(m, bio_write) == 1 && BIO_meth_set_ctrl(m, bio_ctrl) == 1)
        bio_method = m;
    else
        BIO_meth_free(m);
}

const struct pqm_tls_suite *pqm__tls_suite(uint16_t suite_id)
{
    pthread_once(&once, init_once);
    for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++)
        if (suites[i].id == suite_id)
            return suites[i].cipher != NULL ? &suites[i] : NULL;
    return NULL;
}

/* --- the record protection (RFC 8446 sections 5.2, 5.3, 7.1, 7.3) ---------------------- */

/* HKDF-Expand-Label(secret, label, "", outlen) */
static int expand_label(const struct pqm_tls_suite *s, const unsigned char *secret,
                        const char *label, unsigned char *out, size_t outlen)
{
    unsigned char info[64];
    size_t ll = strlen(label);
    if (hkdf == NULL || 10 + ll > sizeof(info))
        return -1;
    info[0] = (unsigned char)(outlen >> 8);
    info[1] = (unsigned char)outlen;
    info[2] = (unsigned char)(6 + ll);
    memcpy(info + 3, "tls13 ", 6);
    memcpy(info + 9, label, ll);
    info[9 + ll] = 0; /* no context */
    int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)s->digest, 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, s->hashlen),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, 10 + ll),
        OSSL_PARAM_construct_end(),
    };
    EVP_KDF_CTX *k = EVP_KDF_CTX_new(hkdf);
    int ok = k != NULL && EVP_KDF_derive(k, out, outlen, params) == 1;
    EVP_KDF_CTX_free(k);
    return ok ? 0 : -1;
}

/* The key and IV of D's current secret. */
static int dir_keys(struct pqm_tls_dir *d, const struct pqm_tls_suite *s, int enc)
{
    unsigned char key[32];
    int ok = expand_label(s, d->secret, "key", key, s->keylen) == 0 &&
             expand_label(s, d->secret, "iv", d->iv, sizeof(d->iv)) == 0 &&
             (d->ctx != NULL || (d->ctx = EVP_CIPHER_CTX_new()) != NULL) &&
             EVP_CipherInit_ex2(d->ctx, s->cipher, key, NULL, enc, NULL) == 1;
    OPENSSL_cleanse(key, sizeof(key));
    d->seq = 0;
    return ok ? 0 : -1;
}

int pqm__tls_dir_init(struct pqm_tls_dir *d, const struct pqm_tls_suite *s, int enc,
                      const unsigned char *secret, size_t len)
{
    if (s == NULL || len != s->hashlen || len > sizeof(d->secret))
        return -1;
    memcpy(d->secret, secret, len);
    return dir_keys(d, s, enc);
}

int pqm__tls_dir_update(struct pqm_tls_dir *d, const struct pqm_tls_suite *s, int enc)
{
    unsigned char next[sizeof(d->secret)];
    if (expand_label(s, d->secret, "traffic upd", next, s->hashlen) != 0)
        return -1;
    memcpy(d->secret, next, s->hashlen);
    OPENSSL_cleanse(next, sizeof(next));
    return dir_keys(d, s, enc);
}

void pqm__tls_dir_free(struct pqm_tls_dir *d)
{
    EVP_CIPHER_CTX_free(d->ctx);
    OPENSSL_cleanse(d, sizeof(*d));
    d->ctx = NULL;
}

/* The per-record nonce: the static IV XOR the sequence number, then the next one. */
static int next_nonce(struct pqm_tls_dir *d, unsigned char nonce[12])
{
    if (d->seq == UINT64_MAX)
        return -1; /* never reached: a KeyUpdate comes long before */
    memcpy(nonce, d->iv, 12);
    for (int i = 0; i < 8; i++)
        nonce[11 - i] ^= (unsigned char)(d->seq >> (8 * i));
    d->seq++;
    return 0;
}

/* Seals the inner plaintext P (N bytes) then TAIL (TLEN bytes: the content type, or
 * nothing when P holds it) as one record into OUT. */
static int seal(struct pqm_tls_dir *d, const unsigned char *p, size_t n,
                const unsigned char *tail, size_t tlen, unsigned char *out)
{
    unsigned char nonce[12];
    size_t clen = n + tlen + PQM_TLS_TAG;
    int l;
    if (clen > PQM_TLS_MAX_RECORD - 5 || next_nonce(d, nonce) != 0)
        return -1;
    out[0] = CT_APPLICATION_DATA;
    out[1] = 3;
    out[2] = 3;
    out[3] = (unsigned char)(clen >> 8);
    out[4] = (unsigned char)clen;
    OSSL_PARAM tag[] = {
        OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, out + 5 + n + tlen,
                                          PQM_TLS_TAG),
        OSSL_PARAM_construct_end(),
    };
    if (EVP_EncryptInit_ex2(d->ctx, NULL, NULL, nonce, NULL) != 1 ||
        EVP_EncryptUpdate(d->ctx, NULL, &l, out, 5) != 1 ||
        (n > 0 && EVP_EncryptUpdate(d->ctx, out + 5, &l, p, (int)n) != 1) ||
        (tlen > 0 && EVP_EncryptUpdate(d->ctx, out + 5 + n, &l, tail, (int)tlen) != 1) ||
        EVP_EncryptFinal_ex(d->ctx, out + 5 + n + tlen, &l) != 1 ||
        EVP_CIPHER_CTX_get_params(d->ctx, tag) != 1)
        return -1;
    return 0;
}

int pqm__tls_seal(struct pqm_tls_dir *d, int type, const unsigned char *p, size_t n,
                  unsigned char *out)
{
    unsigned char ct = (unsigned char)type;
    return n > PQM_TLS_MAX_PLAIN ? -1 : seal(d, p, n, &ct, 1, out);
}

int pqm__tls_seal_inner(struct pqm_tls_dir *d, const unsigned char *inner, size_t n,
                        unsigned char *out)
{
    return seal(d, inner, n, NULL, 0, out);
}

/* Opens the whole record REC (LEN bytes, header included) in place: *TYPE and the
 * content at REC + 5, *CLEN bytes. 0, or the alert to send. */
static int open_record(struct pqm_tls_dir *d, unsigned char *rec, size_t len, int *type,
                       size_t *clen)
{
    unsigned char nonce[12];
    unsigned char *c = rec + 5;
    size_t n = len - 5 - PQM_TLS_TAG;
    int l;
    if (next_nonce(d, nonce) != 0)
        return AL_INTERNAL_ERROR;
    OSSL_PARAM tag[] = {
        OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, c + n, PQM_TLS_TAG),
        OSSL_PARAM_construct_end(),
    };
    if (EVP_DecryptInit_ex2(d->ctx, NULL, NULL, nonce, NULL) != 1 ||
        EVP_DecryptUpdate(d->ctx, NULL, &l, rec, 5) != 1 ||
        EVP_DecryptUpdate(d->ctx, c, &l, c, (int)n) != 1 ||
        EVP_CIPHER_CTX_set_params(d->ctx, tag) != 1 || EVP_DecryptFinal_ex(d->ctx, c + n, &l) != 1)
        return AL_BAD_RECORD_MAC;
    if (n > PQM_TLS_MAX_PLAIN + 1)
        return AL_RECORD_OVERFLOW; /* content, type and padding past 2^14 + 1 (5.4) */
    while (n > 0 && c[n - 1] == 0) /* padding */
        n--;
    if (n == 0)
        return AL_UNEXPECTED_MESSAGE; /* no content type */
    *type = c[n - 1];
    *clen = n - 1;
    return *clen > PQM_TLS_MAX_PLAIN ? AL_RECORD_OVERFLOW : 0;
}

/* --- the stream ----------------------------------------------------------------------- */

__attribute__((format(printf, 3, 4))) static enum pqm_tls_status
fail(struct pqm_tls_stream *st, int alert, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->error, sizeof(st->error), fmt, ap);
    va_end(ap);
    st->alert = alert;
    return PQM_TLS_ERROR;
}

void pqm__tls_stream_init(struct pqm_tls_stream *st, int fd)
{
    memset(st, 0, sizeof(*st));
    st->fd = fd;
    st->max_plain = PQM_TLS_MAX_PLAIN;
    st->key_limit = PQM_TLS_KEY_LIMIT;
    pqm__buf_init(&st->in, PQM_TLS_IN_MAX);
    pqm__buf_init(&st->out, PQM_TLS_OUT_MAX);
}

/* Handshake messages after the handshake: a KeyUpdate is the only one a server takes
 * (no post-handshake authentication is asked for). It must end its record (a key
 * change follows it). A handshake message split across records is refused, which is
 * stricter than RFC 8446 5.1 (it forbids only a split across a key change): the one
 * message a client may send here is 5 bytes long, and no implementation splits it. */
static enum pqm_tls_status handshake_content(struct pqm_tls_stream *st, const unsigned char *p,
                                             size_t n)
{
    if (n < 4)
        return fail(st, AL_UNEXPECTED_MESSAGE, "a handshake message split across records");
    size_t mlen = (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
    if (p[0] != HS_KEY_UPDATE)
        return fail(st, AL_UNEXPECTED_MESSAGE, "handshake message %u after the handshake", p[0]);
    if (mlen != 1 || 4 + mlen > n)
        return fail(st, AL_DECODE_ERROR, "malformed KeyUpdate");
    if (4 + mlen != n)
        return fail(st, AL_UNEXPECTED_MESSAGE, "a KeyUpdate not at the end of its record");
    if (p[4] > 1)
        return fail(st, AL_ILLEGAL_PARAMETER, "KeyUpdate request_update %u", p[4]);
    if (pqm__tls_dir_update(&st->rd, st->suite, 0) != 0)
        return fail(st, AL_INTERNAL_ERROR, "cannot derive the next read key");
    if (p[4] == 1)
        st->key_update_due = 1;
    return PQM_TLS_OK;
}

static enum pqm_tls_status alert_content(struct pqm_tls_stream *st, const unsigned char *p,
                                         size_t n)
{
    if (n != 2)
        return fail(st, AL_DECODE_ERROR, "malformed alert");
    if (p[1] == AL_CLOSE_NOTIFY) {
        st->eof = 1;
        return PQM_TLS_EOF;
    }
    if (p[1] == AL_USER_CANCELED)
        return PQM_TLS_OK; /* a close_notify follows */
    return fail(st, 0, "the client sent alert %u", p[1]);
}

/* One whole record at the head of ST->in, LEN bytes. */
static enum pqm_tls_status one_record(struct pqm_tls_stream *st, size_t len, unsigned char *dst,
                                      size_t *got)
{
    unsigned char *rec = pqm__buf_head(&st->in);
    int type = 0;
    size_t clen = 0;
    int al = open_record(&st->rd, rec, len, &type, &clen);
    if (al != 0)
        return fail(st, al, al == AL_BAD_RECORD_MAC ? "a record failed authentication"
                                                    : "a record without content, or too long");
    enum pqm_tls_status r = PQM_TLS_OK;
    if (type == CT_APPLICATION_DATA) {
        memcpy(dst, rec + 5, clen);
        *got = clen;
    } else if (type == CT_HANDSHAKE) {
        r = handshake_content(st, rec + 5, clen);
    } else if (type == CT_ALERT) {
        r = alert_content(st, rec + 5, clen);
    } else {
        r = fail(st, AL_UNEXPECTED_MESSAGE, "record of content type %d after the handshake", type);
    }
    pqm__buf_consume(&st->in, len);
    if (r == PQM_TLS_OK && *got == 0 && ++st->empty_run > PQM_TLS_MAX_EMPTY)
        return fail(st, AL_UNEXPECTED_MESSAGE, "more than %d records in a row without data",
                    PQM_TLS_MAX_EMPTY);
    if (*got > 0)
        st->empty_run = 0;
    return r;
}

/* Receives into ST->in, up to a whole record's room: the bytes received, 0 at the
 * peer's close, -1 with errno (EAGAIN: nothing yet), -2 out of memory. */
static ssize_t recv_in(struct pqm_tls_stream *st)
{
    unsigned char *w = pqm__buf_reserve(&st->in, PQM_TLS_MAX_RECORD);
    if (w == NULL)
        return -2;
    ssize_t n;
    do
        n = recv(st->fd, w, PQM_TLS_MAX_RECORD, 0);
    while (n < 0 && errno == EINTR);
    if (n > 0)
        pqm__buf_commit(&st->in, (size_t)n);
    return n;
}

enum pqm_tls_status pqm__tls_stream_read(struct pqm_tls_stream *st, unsigned char *dst,
                                         size_t cap, size_t *got, int *readable)
{
    *got = 0;
    if (st->error[0] != '\0')
        return PQM_TLS_ERROR; /* an error stays */
    if (!st->taken || cap < PQM_TLS_MAX_PLAIN)
        return fail(st, AL_INTERNAL_ERROR, "read before the takeover");
    for (;;) {
        if (st->eof)
            return PQM_TLS_EOF;
        const unsigned char *h = pqm__buf_head(&st->in);
        if (st->in.len >= 5) {
            size_t len = (size_t)h[3] << 8 | h[4];
            if (h[0] != CT_APPLICATION_DATA || h[1] != 3 || h[2] != 3)
                return fail(st, AL_UNEXPECTED_MESSAGE, "record header %02x %02x%02x after the handshake",
                            h[0], h[1], h[2]);
            if (len > PQM_TLS_MAX_RECORD - 5)
                return fail(st, AL_RECORD_OVERFLOW, "record of %zu bytes", len);
            if (len < 1 + PQM_TLS_TAG)
                return fail(st, AL_DECODE_ERROR, "record of %zu bytes", len);
            if (st->in.len >= 5 + len)
                return one_record(st, 5 + len, dst, got);
        }
        if (!*readable)
            return PQM_TLS_WANT_READ;
        ssize_t n = recv_in(st);
        if (n == -2)
            return fail(st, AL_INTERNAL_ERROR, "out of memory");
        if (n > 0) {
            if ((size_t)n < PQM_TLS_MAX_RECORD)
                *readable = 0; /* most likely drained: readiness says if not */
            continue;
        }
        if (n == 0) {
            st->eof = 1; /* a close without close_notify ends the input too */
            return PQM_TLS_EOF;
        }
        *readable = 0;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return PQM_TLS_WANT_READ;
        return fail(st, 0, "recv: %s", strerror(errno));
    }
}

/* Seals one record of TYPE into ST->out; -1 when it has no room. */
static int seal_out(struct pqm_tls_stream *st, int type, const unsigned char *p, size_t n)
{
    unsigned char *o = pqm__buf_reserve(&st->out, n + PQM_TLS_OVERHEAD);
    if (o == NULL || pqm__tls_seal(&st->wr, type, p, n, o) != 0)
        return -1;
    pqm__buf_commit(&st->out, n + PQM_TLS_OVERHEAD);
    return 0;
}

/* A KeyUpdate of ours, when the peer asked or the key has done its share. */
static int key_update(struct pqm_tls_stream *st)
{
    static const unsigned char msg[] = {HS_KEY_UPDATE, 0, 0, 1, 0}; /* update_not_requested */
    if (pqm__buf_room(&st->out) < sizeof(msg) + PQM_TLS_OVERHEAD)
        return 1; /* after what waits has left */
    if (seal_out(st, CT_HANDSHAKE, msg, sizeof(msg)) != 0 ||
        pqm__tls_dir_update(&st->wr, st->suite, 1) != 0)
        return -1;
    st->key_update_due = 0;
    return 0;
}

enum pqm_tls_status pqm__tls_stream_write(struct pqm_tls_stream *st, const unsigned char *p,
                                          size_t n, size_t *taken)
{
    *taken = 0;
    if (st->error[0] != '\0')
        return PQM_TLS_ERROR;
    if (!st->taken)
        return fail(st, AL_INTERNAL_ERROR, "write before the takeover");
    for (;;) {
        while (*taken < n || st->key_update_due) {
            if (st->key_update_due || st->wr.seq >= st->key_limit) {
                int k = key_update(st);
                if (k < 0)
                    return fail(st, AL_INTERNAL_ERROR, "cannot update the write key");
                if (k > 0)
                    break;
                continue;
            }
            size_t chunk = n - *taken < st->max_plain ? n - *taken : st->max_plain;
            if (pqm__buf_room(&st->out) < chunk + PQM_TLS_OVERHEAD)
                break;
            if (seal_out(st, CT_APPLICATION_DATA, p + *taken, chunk) != 0)
                return fail(st, AL_INTERNAL_ERROR, "cannot seal a record");
            *taken += chunk;
        }
        if (st->out.len == 0)
            return PQM_TLS_OK;
        ssize_t s = send(st->fd, pqm__buf_head(&st->out), st->out.len, MSG_NOSIGNAL);
        if (s > 0) {
            pqm__buf_consume(&st->out, (size_t)s);
            if (st->out.len == 0 && *taken == n && !st->key_update_due)
                return PQM_TLS_OK;
            continue;
        }
        if (s < 0 && errno == EINTR)
            continue;
        if (s < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return PQM_TLS_WANT_WRITE;
        return fail(st, 0, "send: %s", s < 0 ? strerror(errno) : "no progress");
    }
}

int pqm__tls_stream_has_input(const struct pqm_tls_stream *st)
{
    return st->in.len > 0;
}

int pqm__tls_stream_has_output(const struct pqm_tls_stream *st)
{
    return st->out.len > 0 || st->key_update_due;
}

void pqm__tls_stream_close(struct pqm_tls_stream *st)
{
    if (!st->taken || st->fd < 0 || (st->error[0] != '\0' && st->alert == 0))
        return; /* no keys, a dead socket, or the peer's own fatal alert */
    unsigned char al[2] = {st->error[0] != '\0' ? 2 : 1, (unsigned char)st->alert};
    if (seal_out(st, CT_ALERT, al, sizeof(al)) == 0)
        (void)!send(st->fd, pqm__buf_head(&st->out), st->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
    st->taken = 0; /* nothing more is sealed */
}

void pqm__tls_stream_release(struct pqm_tls_stream *st)
{
    if (st->in.len == 0)
        pqm__buf_release(&st->in);
    if (st->out.len == 0)
        pqm__buf_release(&st->out);
}

void pqm__tls_stream_free(struct pqm_tls_stream *st)
{
    pqm__tls_dir_free(&st->rd);
    pqm__tls_dir_free(&st->wr);
    pqm__buf_release(&st->in);
    pqm__buf_release(&st->out);
    OPENSSL_cleanse(st->client_secret, sizeof(st->client_secret));
    OPENSSL_cleanse(st->server_secret, sizeof(st->server_secret));
}

/* --- the handshake: OpenSSL through the stream's BIO ----------------------------------- */

/* Hands OpenSSL the bytes received, never past the end of the record it is in, so that
 * the records after the client's Finished stay with the stream whatever OpenSSL asks
 * for. (OpenSSL 3.5 ignores read-ahead until the application keys are in use: it asks
 * for a header, then for its body. Should a later version read further, the bound
 * still holds; pqm__tls_stream_take() also refuses a connection whose records OpenSSL
 * processed past the client's Finished.) One recv serves several records: the socket
 * BIO made two per record. */
static int bio_read(BIO *b, char *out, size_t outl, size_t *got)
{
    struct pqm_tls_stream *st = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    *got = 0;
    if (st->in.len == 0) {
        ssize_t n = recv_in(st);
        if (n == 0)
            st->bio_eof = 1; /* BIO_CTRL_EOF says so: a close, not an error */
        if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
            BIO_set_retry_read(b);
        if (n <= 0)
            return 0;
    }
    const unsigned char *h = pqm__buf_head(&st->in);
    size_t give = 0, avail = st->in.len;
    while (give < outl && give < avail) {
        if (st->hdr_have < 5) {
            st->hdr[st->hdr_have++] = h[give++];
            if (st->hdr_have == 5) {
                st->body_left = (size_t)st->hdr[3] << 8 | st->hdr[4];
                if (st->body_left == 0)
                    st->hdr_have = 0;
            }
            continue;
        }
        size_t k = st->body_left;
        if (k > avail - give)
            k = avail - give;
        if (k > outl - give)
            k = outl - give;
        give += k;
        st->body_left -= k;
        if (st->body_left == 0) {
            st->hdr_have = 0;
            break; /* the end of a record: the rest waits */
        }
    }
    memcpy(out, h, give);
    pqm__buf_consume(&st->in, give);
    *got = give;
    return 1;
}

static int bio_write(BIO *b, const char *in, size_t inl, size_t *put)
{
    struct pqm_tls_stream *st = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    *put = 0;
    ssize_t n;
    do
        n = send(st->fd, in, inl, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            BIO_set_retry_write(b);
        return 0;
    }
    *put = (size_t)n;
    return 1;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num;
    (void)ptr;
    if (cmd == BIO_CTRL_EOF) {
        const struct pqm_tls_stream *st = BIO_get_data(b);
        return st->bio_eof && st->in.len == 0;
    }
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static struct pqm_tls_stream *stream_of(const SSL *ssl)
{
    return ex_index >= 0 ? SSL_get_ex_data(ssl, ex_index) : NULL;
}

static int unhex(const char *s, unsigned char *out, size_t max, size_t *len)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
        n--;
    if (n % 2 != 0 || n / 2 > max)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        int v = OPENSSL_hexchar2int((unsigned char)s[2 * i]) << 4 |
                OPENSSL_hexchar2int((unsigned char)s[2 * i + 1]);
        if (v < 0)
            return -1;
        out[i] = (unsigned char)v;
    }
    *len = n / 2;
    return 0;
}

/* "LABEL <client random> <secret>": the application traffic secrets are kept. */
static void keylog_cb(const SSL *ssl, const char *line)
{
    struct pqm_tls_stream *st = stream_of(ssl);
    if (st == NULL)
        return;
    static const char client[] = "CLIENT_TRAFFIC_SECRET_0 ", server[] = "SERVER_TRAFFIC_SECRET_0 ";
    unsigned char *dst;
    size_t *len;
    if (strncmp(line, client, sizeof(client) - 1) == 0) {
        dst = st->client_secret, len = &st->client_secret_len;
    } else if (strncmp(line, server, sizeof(server) - 1) == 0) {
        dst = st->server_secret, len = &st->server_secret_len;
    } else {
        return;
    }
    const char *sp = strchr(line + sizeof(client) - 1, ' ');
    if (sp == NULL || unhex(sp + 1, dst, sizeof(st->client_secret), len) != 0)
        *len = 0;
}

/* Counts the records OpenSSL sends after its Finished (its session tickets, under the
 * server's application key) and notices records read after the client's Finished. */
static void msg_cb(int write_p, int version, int content_type, const void *buf, size_t len,
                   SSL *ssl, void *arg)
{
    (void)version;
    (void)arg;
    struct pqm_tls_stream *st = stream_of(ssl);
    if (st == NULL)
        return;
    const unsigned char *p = buf;
    if (content_type == SSL3_RT_HEADER) {
        if (write_p && st->server_finished_sent)
            st->records_sent_after_finished++;
        else if (!write_p && st->client_finished_read)
            st->records_read_after_finished++;
    } else if (content_type == SSL3_RT_HANDSHAKE && len > 0 && p[0] == SSL3_MT_FINISHED) {
        if (write_p)
            st->server_finished_sent = 1;
        else
            st->client_finished_read = 1;
    }
}

void pqm__tls_stream_ctx_setup(SSL_CTX *ctx)
{
    pthread_once(&once, init_once);
    SSL_CTX_set_keylog_callback(ctx, keylog_cb);
    SSL_CTX_set_msg_callback(ctx, msg_cb);
}

int pqm__tls_stream_attach(struct pqm_tls_stream *st, SSL *ssl)
{
    pthread_once(&once, init_once);
    if (bio_method == NULL || ex_index < 0)
        return -1;
    BIO *b = BIO_new(bio_method);
    if (b == NULL)
        return -1;
    BIO_set_data(b, st);
    BIO_set_init(b, 1);
    SSL_set_bio(ssl, b, b); /* one reference, for both directions */
    return SSL_set_ex_data(ssl, ex_index, st) == 1 ? 0 : -1;
}

int pqm__tls_stream_take(struct pqm_tls_stream *st, SSL *ssl)
{
    const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
    const struct pqm_tls_suite *s = c != NULL ? pqm__tls_suite(SSL_CIPHER_get_protocol_id(c)) : NULL;
    int ok = 0;
    if (SSL_version(ssl) != TLS1_3_VERSION || s == NULL) {
        fail(st, AL_INTERNAL_ERROR, "cipher suite %s of %s is not handled after the handshake",
             c != NULL ? SSL_CIPHER_get_name(c) : "(none)", SSL_get_version(ssl));
    } else if (st->client_secret_len != s->hashlen || st->server_secret_len != s->hashlen) {
        fail(st, AL_INTERNAL_ERROR, "the key log callback gave no application traffic secrets");
    } else if (!st->server_finished_sent || !st->client_finished_read ||
               st->records_read_after_finished != 0 || st->hdr_have != 0 ||
               SSL_has_pending(ssl)) {
        fail(st, AL_INTERNAL_ERROR, "OpenSSL holds records past the handshake");
    } else if (pqm__tls_dir_init(&st->rd, s, 0, st->client_secret, s->hashlen) != 0 ||
               pqm__tls_dir_init(&st->wr, s, 1, st->server_secret, s->hashlen) != 0) {
        fail(st, AL_INTERNAL_ERROR, "cannot derive the application traffic keys");
    } else {
        st->wr.seq = st->records_sent_after_finished;
        uint8_t mfl = SSL_SESSION_get_max_fragment_length(SSL_get0_session(ssl));
        if (mfl >= TLSEXT_max_fragment_length_512 && mfl <= TLSEXT_max_fragment_length_4096)
            st->max_plain = (size_t)512 << (mfl - TLSEXT_max_fragment_length_512);
        st->suite = s;
        st->taken = 1;
        ok = 1;
    }
    OPENSSL_cleanse(st->client_secret, sizeof(st->client_secret));
    OPENSSL_cleanse(st->server_secret, sizeof(st->server_secret));
    SSL_set_ex_data(ssl, ex_index, NULL);
    return ok ? 0 : -1;
}
