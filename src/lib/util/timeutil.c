#include "util/timeutil.h"

#include <stdio.h>
#include <time.h>

double pqm__mono_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int pqm__asn1_time_to_epoch(const ASN1_TIME *t, int64_t *out)
{
    struct tm tm;
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
        return -1;
    *out = (int64_t)timegm(&tm);
    return 0;
}

void pqm__format_time(int64_t t, char *out, size_t outlen)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (gmtime_r(&tt, &tm) == NULL || strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, outlen, "%lld", (long long)t);
}

void pqm__format_duration(int64_t seconds, char *out, size_t outlen)
{
    static const struct {
        int64_t n;
        char unit;
    } units[] = {{86400, 'd'}, {3600, 'h'}, {60, 'm'}};
    /* Days from two on: "24h" reads better than "1d" for a day-long certificate. */
    for (size_t i = seconds < 2 * 86400 ? 1 : 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (seconds != 0 && seconds % units[i].n == 0) {
            snprintf(out, outlen, "%lld%c", (long long)(seconds / units[i].n), units[i].unit);
            return;
        }
    snprintf(out, outlen, "%llds", (long long)seconds);
}
