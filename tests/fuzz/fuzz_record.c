/* libFuzzer target: the gateway's TLS 1.3 record layer after the handshake
 * (tls/record.c), reading what a client sends.
 *
 * Input layout: byte 0 picks the cipher suite (0x1301 + byte % 3); then pieces, each a
 * control byte, a 16-bit big-endian length and that many bytes:
 *  - control bit 0 clear: the bytes are sealed with the client's keys as one record
 *    whose content type is (control >> 1) & 63 (a record the client could really send:
 *    it authenticates, so the content parsing behind the AEAD is reached), with 16
 *    bytes of zero padding after the type when control bit 7 is set;
 *  - control bit 0 set: the bytes are appended raw (headers, truncations, forgeries).
 * After each piece the stream opens what it can.
 *
 * Invariants checked (abort on violation):
 *  - an opened record never yields more than PQM_TLS_MAX_PLAIN bytes, and application
 *    data opened from a sealed application_data record is exactly what was sealed;
 *  - PQM_TLS_ERROR always comes with a reason; after it, or after EOF, nothing more is
 *    opened;
 *  - the input buffer never passes its bound;
 *  - a KeyUpdate that asks for ours leaves output due, and sealing it works. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tls/record.h"
#include "util/buf.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const unsigned char secret[48] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    static unsigned char out[PQM_TLS_MAX_PLAIN];
    static unsigned char rec[PQM_TLS_MAX_RECORD];
    static unsigned char inner[PQM_TLS_MAX_PLAIN + 17];
    if (size < 1)
        return 0;
    const struct pqm_tls_suite *suite = pqm__tls_suite((uint16_t)(0x1301 + data[0] % 3));
    CHECK(suite != NULL);
    size_t hashlen = data[0] % 3 == 1 ? 48 : 32;
    struct pqm_tls_stream st;
    struct pqm_tls_dir client = {0};
    pqm__tls_stream_init(&st, -1);
    CHECK(pqm__tls_dir_init(&st.rd, suite, 0, secret, hashlen) == 0);
    CHECK(pqm__tls_dir_init(&st.wr, suite, 1, secret, hashlen) == 0);
    CHECK(pqm__tls_dir_init(&client, suite, 1, secret, hashlen) == 0);
    st.suite = suite;
    st.taken = 1;
    int ended = 0;
    size_t i = 1;
    const uint8_t *sealed = NULL; /* the last piece sealed as application data */
    size_t sealed_len = 0;
    while (i + 3 <= size && !ended) {
        int ctl = data[i];
        size_t n = (size_t)data[i + 1] << 8 | data[i + 2];
        i += 3;
        if (n > size - i)
            n = size - i;
        if ((ctl & 1) == 0) {
            int type = (ctl >> 1) & 63;
            if (n > PQM_TLS_MAX_PLAIN)
                n = PQM_TLS_MAX_PLAIN;
            size_t reclen = n + PQM_TLS_OVERHEAD;
            if (ctl & 0x80) { /* content, type, 16 zeros */
                memcpy(inner, data + i, n);
                inner[n] = (unsigned char)type;
                memset(inner + n + 1, 0, 16);
                CHECK(pqm__tls_seal_inner(&client, inner, n + 17, rec) == 0);
                reclen += 16;
            } else {
                CHECK(pqm__tls_seal(&client, type, data + i, n, rec) == 0);
            }
            if (pqm__buf_add(&st.in, rec, reclen) != 0)
                break; /* past the bound: the stream would not have received it */
            sealed = type == 23 ? data + i : NULL;
            sealed_len = n;
        } else if (n > 0 && pqm__buf_add(&st.in, data + i, n) != 0) {
            break;
        }
        i += n;
        CHECK(st.in.len <= st.in.max);
        for (;;) {
            size_t got = 0;
            int readable = 0;
            int due = st.key_update_due;
            enum pqm_tls_status r = pqm__tls_stream_read(&st, out, sizeof(out), &got, &readable);
            CHECK(got <= PQM_TLS_MAX_PLAIN);
            /* Raw bytes never authenticate: data comes from the last sealed piece. */
            if (got > 0 && sealed != NULL)
                CHECK(got == sealed_len && memcmp(out, sealed, got) == 0);
            if (r == PQM_TLS_ERROR) {
                CHECK(st.error[0] != '\0');
                got = 1;
                CHECK(pqm__tls_stream_read(&st, out, sizeof(out), &got, &readable) == PQM_TLS_ERROR);
                CHECK(got == 0); /* an error stays */
                ended = 1;
                break;
            }
            if (r == PQM_TLS_EOF) {
                CHECK(st.eof);
                CHECK(got == 0);
                ended = 1;
                break;
            }
            if (r == PQM_TLS_WANT_READ) {
                CHECK(got == 0);
                break;
            }
            if (st.key_update_due && !due) { /* the client's KeyUpdate asked for ours */
                CHECK(pqm__tls_stream_has_output(&st));
                /* The answer is sealed now (the send to fd -1 fails, as a dead socket's). */
                size_t taken;
                CHECK(pqm__tls_stream_write(&st, NULL, 0, &taken) == PQM_TLS_ERROR);
                CHECK(!st.key_update_due);
                ended = 1;
                break;
            }
            if (st.rd.seq != client.seq) /* a KeyUpdate was taken: the client's keys follow */
                CHECK(pqm__tls_dir_update(&client, suite, 1) == 0);
        }
    }
    pqm__tls_dir_free(&client);
    pqm__tls_stream_free(&st);
    pqm__buf_spare_drain();
    return 0;
}
