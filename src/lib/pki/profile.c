#include "pki/profile.h"
#include "pki/pki_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The seed scenario's industry table. Every named profile renews when a third of the
 * lifetime remains (at two thirds of the life, cert-manager's default rule), which leaves
 * two more tries at the usual cadence of a renewal job before anything expires. The
 * default profile keeps what pqmtls always did (365-day leaves) and renews 30 days ahead.
 * iot takes 3 years from its 2-5: devices that sleep for months still find a valid
 * certificate, and the 10-year intermediates it sets by default can sign such leaves
 * for 7 years (5-year ones, the default elsewhere, would refuse them after 2). */
static const struct pqm_lifetime_profile profiles[] = {
    {"default", 365 * PQM_DAY, 30 * PQM_DAY, 3650, 1825},
    {"cloud-native", 24 * PQM_HOUR, 8 * PQM_HOUR, 3650, 1825},
    {"financial", 90 * PQM_DAY, 30 * PQM_DAY, 3650, 1825},
    {"healthcare", 365 * PQM_DAY, 122 * PQM_DAY, 3650, 1825},
    {"iot", 1095 * PQM_DAY, 365 * PQM_DAY, 7300, 3650},
};
#define NPROFILES (sizeof(profiles) / sizeof(profiles[0]))

#define META_PROFILE "profile"
#define META_LIFETIME "leaf_lifetime_seconds"
#define META_WITHIN "renew_within_seconds"

const struct pqm_lifetime_profile *pqm__profile_find(const char *name)
{
    for (size_t i = 0; name != NULL && i < NPROFILES; i++)
        if (strcmp(profiles[i].name, name) == 0)
            return &profiles[i];
    return NULL;
}

const char *pqm__profile_names(void)
{
    return "default, cloud-native, financial, healthcare, iot";
}

int pqm__profile_store(struct pqm_store *s, const struct pqm_lifetime_profile *p,
                       struct pqm_err *e)
{
    char lifetime[32], within[32];
    snprintf(lifetime, sizeof(lifetime), "%" PRId64, p->leaf_lifetime);
    snprintf(within, sizeof(within), "%" PRId64, p->renew_within);
    if (pqm__store_meta_set(s, META_PROFILE, p->name, e) != 0 ||
        pqm__store_meta_set(s, META_LIFETIME, lifetime, e) != 0 ||
        pqm__store_meta_set(s, META_WITHIN, within, e) != 0)
        return -1;
    return 0;
}

/* Meta value KEY as seconds in [MIN, MAX] into OUT; left as it is when absent. */
static int meta_seconds(struct pqm_store *s, const char *key, int64_t min, int64_t max,
                        int64_t *out, struct pqm_err *e)
{
    char v[32], *end = NULL;
    int found = pqm__store_meta_get(s, key, v, sizeof(v), e);
    if (found <= 0)
        return found;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || n < min || n > max)
        return pqm__err_set(e, "inventory: setting %s is '%s', not a number of seconds from "
                               "%" PRId64 " to %" PRId64,
                            key, v, min, max);
    *out = (int64_t)n;
    return 0;
}

int pqm__profile_load(struct pqm_store *s, struct pqm_lifetimes *out, struct pqm_err *e)
{
    const struct pqm_lifetime_profile *d = &profiles[0];
    memset(out, 0, sizeof(*out));
    snprintf(out->profile, sizeof(out->profile), "%s", d->name);
    out->leaf_lifetime = d->leaf_lifetime;
    out->renew_within = d->renew_within;
    if (pqm__store_meta_get(s, META_PROFILE, out->profile, sizeof(out->profile), e) < 0 ||
        meta_seconds(s, META_LIFETIME, PQM_LIFETIME_MIN, PQM_LIFETIME_MAX, &out->leaf_lifetime,
                     e) != 0 ||
        meta_seconds(s, META_WITHIN, 0, PQM_LIFETIME_MAX, &out->renew_within, e) != 0)
        return -1;
    return 0;
}

int pqm_pki_get_lifetimes(struct pqm_pki *p, struct pqm_lifetimes *out)
{
    return pqm__profile_load(p->store, out, &p->err);
}
