/* Authorization by identity, as Istio's AuthorizationPolicy does it, at the gateway.
 *
 * A rule is a line of terms, "key=value[,value...]", all of which must match (a term
 * matches when any of its values does):
 *   spiffe=URI        the certificate's SPIFFE ID (a trailing * matches any rest)
 *   principal=P       Istio principal: the SPIFFE ID without "spiffe://"
 *                     (cluster.local/ns/production/sa/frontend-service; trailing * too)
 *   namespace=NS      the namespace of the SPIFFE ID (.../ns/NS/...)
 *   dns=NAME          a DNS SAN of the certificate (*.example.com: one label)
 *   cn=NAME, o=ORG    the subject's common name or organization
 *   path=/PREFIX      the request path starts with it (segment-wise when it ends in /)
 *   method=GET        the request method
 * Deny rules win over allow rules; when there are allow rules, a request that matches
 * none of them is refused; with no rules at all, every verified client passes. */
#ifndef PQM_GATEWAY_POLICY_H
#define PQM_GATEWAY_POLICY_H

#include <stddef.h>

#include "util/err.h"

#define PQM_POLICY_MAX_RULES 256
#define PQM_POLICY_MAX_TERMS 8
#define PQM_POLICY_MAX_VALUES 16

enum pqm_term_key { K_SPIFFE, K_PRINCIPAL, K_NAMESPACE, K_DNS, K_CN, K_O, K_PATH, K_METHOD };

struct pqm_policy_term {
    enum pqm_term_key key;
    char *values[PQM_POLICY_MAX_VALUES];
    size_t nvalues;
};

struct pqm_policy_rule {
    int deny;
    char *text; /* as written, for the log */
    struct pqm_policy_term terms[PQM_POLICY_MAX_TERMS];
    size_t nterms;
};

struct pqm_policy {
    struct pqm_policy_rule rules[PQM_POLICY_MAX_RULES];
    size_t nrules;
    int nallow;
    int uses_path; /* some rule looks at the path: it must be in normal form */
};

/* What a rule is matched against. DNS holds the DNS SANs, NUL-separated, "" at the end. */
struct pqm_policy_subject {
    const char *spiffe, *cn, *o, *dns;
    const char *method, *path; /* path without the query */
};

void pqm__policy_init(struct pqm_policy *p);
void pqm__policy_free(struct pqm_policy *p);
/* Parses TEXT into a new allow (DENY = 0) or deny rule. */
int pqm__policy_add(struct pqm_policy *p, int deny, const char *text, struct pqm_err *e);
/* 1 allowed, 0 refused; WHY says which rule decided (or that none matched). */
int pqm__policy_check(const struct pqm_policy *p, const struct pqm_policy_subject *s,
                      char *why, size_t whylen);
/* 1 when PATH (no query) has no dot segment, no empty segment and no encoded '.', '/' or
 * '\\': a prefix rule then means what it says to any upstream. */
int pqm__path_is_normal(const char *path, size_t len);

#endif
