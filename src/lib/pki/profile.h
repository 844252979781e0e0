/* Lifetime profiles: how long leaf certificates live, and when `pki renew` replaces them,
 * per industry; stored in the inventory's meta table by `pki init --profile`. */
#ifndef PQM_PKI_PROFILE_H
#define PQM_PKI_PROFILE_H

#include <stdint.h>

#include <pqmtls/pki.h>

#include "pki/store.h"
#include "util/err.h"

#define PQM_HOUR 3600LL
#define PQM_DAY 86400LL
/* Leaf lifetimes pqmtls accepts: from an hour (shorter ones leave no room to renew them
 * before they expire) to 100 years. */
#define PQM_LIFETIME_MIN PQM_HOUR
#define PQM_LIFETIME_MAX (36500 * PQM_DAY)

struct pqm_lifetime_profile {
    const char *name;
    int64_t leaf_lifetime; /* seconds */
    int64_t renew_within;  /* seconds before notAfter at which `pki renew` replaces a leaf */
    int root_days, ca_days;
};

/* NULL when NAME is not one of pqm__profile_names(). */
const struct pqm_lifetime_profile *pqm__profile_find(const char *name);
/* "default, cloud-native, ..." for help texts and errors. */
const char *pqm__profile_names(void);
/* Records P's lifetimes in the meta table (inside the caller's transaction). */
int pqm__profile_store(struct pqm_store *s, const struct pqm_lifetime_profile *p,
                       struct pqm_err *e);
/* The lifetimes recorded in the meta table; the default profile's for a PKI made before
 * profiles existed (which records none). A value that is not a number in range is an
 * error naming its key. */
int pqm__profile_load(struct pqm_store *s, struct pqm_lifetimes *out, struct pqm_err *e);

#endif
