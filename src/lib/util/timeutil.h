#ifndef PQM_UTIL_TIMEUTIL_H
#define PQM_UTIL_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/asn1.h>

/* Certificates, CRLs (thisUpdate) and OCSP answers (thisUpdate) are valid from a minute
 * ago, so that a peer whose clock is a little behind does not refuse what was signed a
 * moment before as not yet valid. */
#define PQM_BACKDATE_SECONDS 60

/* Seconds on the monotonic clock: for deadlines and intervals, which a change of the
 * wall clock must not move. */
double pqm__mono_seconds(void);
/* ASN1_TIME to seconds since the epoch; -1 on failure. */
int pqm__asn1_time_to_epoch(const ASN1_TIME *t, int64_t *out);
/* "2026-11-26T18:00:00Z" into OUT (at least 21 bytes). */
void pqm__format_time(int64_t t, char *out, size_t outlen);
/* A duration in its largest whole unit, as the command line takes it: "90d", "24h",
 * "30m", "45s" (whole days from two days on, else hours, minutes, seconds). */
void pqm__format_duration(int64_t seconds, char *out, size_t outlen);

#endif
