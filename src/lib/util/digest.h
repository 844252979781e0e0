/* SHA-256 as lower-case hex, for fingerprints and for recognising files we wrote. */
#ifndef PQM_UTIL_DIGEST_H
#define PQM_UTIL_DIGEST_H

#include <stddef.h>

#define PQM_SHA256_HEX 65

/* 64 hex characters and a NUL into OUT; -1 on failure. Thread-safe. */
int pqm__sha256_hex(const void *data, size_t len, char out[PQM_SHA256_HEX]);
/* The SHA-256 of A into OUT_A and of A followed by B into OUT_AB, hashing A once (a
 * certificate and the chain that starts with it). -1 on failure. Thread-safe. */
int pqm__sha256_hex_prefix(const void *a, size_t alen, const void *b, size_t blen,
                           char out_a[PQM_SHA256_HEX], char out_ab[PQM_SHA256_HEX]);
/* Lower-case hex of LEN bytes into OUT (2 * LEN + 1 bytes). */
void pqm__hex(const unsigned char *in, size_t len, char *out);

#endif
