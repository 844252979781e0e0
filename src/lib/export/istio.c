/* pqmtls export istio: PeerAuthentication, DestinationRule and AuthorizationPolicy for
 * one namespace, the principals taken from the PKI or from a gateway policy. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <pqmtls/export.h>

#include "export/common.h"
#include "gateway/config.h"
#include "gateway/policy.h"
#include "pki/pki_internal.h"
#include "util/buf.h"
#include "util/fsutil.h"

#define ISTIO_YAML_MAX (4 * 1024 * 1024)

static int list(struct pqm_buf *b, const char *const *v, size_t n)
{
    int rc = pqm__buf_addf(b, "[");
    for (size_t i = 0; i < n; i++) {
        rc |= pqm__buf_addf(b, "%s", i ? ", " : "");
        rc |= pqm__yaml_scalar(b, v[i]);
    }
    return rc | pqm__buf_addf(b, "]\n");
}

static int header(struct pqm_buf *b, const char *api, const char *kind, const char *name,
                  const char *ns)
{
    return pqm__buf_addf(b, "---\napiVersion: %s\nkind: %s\nmetadata:\n  name: %s\n"
                            "  namespace: %s\n  labels:\n    app.kubernetes.io/managed-by: pqmtls\n",
                         api, kind, name, ns);
}

static int peer_and_destination(struct pqm_buf *b, const char *ns)
{
    int rc = header(b, "security.istio.io/v1", "PeerAuthentication", "default", ns);
    rc |= pqm__buf_addf(b, "spec:\n  mtls:\n    mode: STRICT\n");
    rc |= header(b, "networking.istio.io/v1", "DestinationRule", "default-mtls", ns);
    rc |= pqm__buf_addf(b, "spec:\n  host: \"*.%s.svc.cluster.local\"\n  trafficPolicy:\n"
                           "    tls:\n      mode: ISTIO_MUTUAL\n",
                        ns);
    return rc;
}

/* --- principals from the PKI --------------------------------------------------------- */

struct ids {
    char **v;
    size_t n, cap;
};

static int collect_spiffe(const struct pqm_cert_record *r, void *arg)
{
    struct ids *ids = arg;
    if (strcmp(r->kind, "client") != 0 || strcmp(r->status, "valid") != 0)
        return 0;
    const char *u = strstr(r->sans, "URI:spiffe://");
    if (u == NULL)
        return 0;
    u += strlen("URI:spiffe://");
    size_t len = strcspn(u, ",");
    for (size_t i = 0; i < ids->n; i++)
        if (strlen(ids->v[i]) == len && strncmp(ids->v[i], u, len) == 0)
            return 0;
    if (ids->n == ids->cap) {
        size_t cap = ids->cap ? ids->cap * 2 : 16;
        char **grown = realloc(ids->v, cap * sizeof(*grown));
        if (grown == NULL)
            return -1;
        ids->v = grown;
        ids->cap = cap;
    }
    if ((ids->v[ids->n] = strndup(u, len)) == NULL)
        return -1;
    ids->n++;
    return 0;
}

static void ids_free(struct ids *ids)
{
    for (size_t i = 0; i < ids->n; i++)
        free(ids->v[i]);
    free(ids->v);
}

static int allow_pki(struct pqm_pki *p, struct pqm_buf *b, const char *ns)
{
    struct ids ids = {NULL, 0, 0};
    int rc = pqm_pki_foreach(p, 0, collect_spiffe, &ids);
    if (rc == 0 && ids.n == 0)
        rc = pqm__err_set(&p->err, "the PKI has no valid client certificate with a SPIFFE ID: "
                                   "issue some (pki issue client --spiffe-id), or give --policy");
    if (rc == 0) {
        rc = header(b, "security.istio.io/v1", "AuthorizationPolicy", "pqmtls-allow", ns);
        rc |= pqm__buf_addf(b, "spec:\n  action: ALLOW\n  rules:\n  - from:\n    - source:\n"
                               "        principals: ");
        rc |= list(b, (const char *const *)ids.v, ids.n);
        if (rc != 0)
            pqm__err_set(&p->err, "out of memory");
    }
    ids_free(&ids);
    return rc;
}

/* --- principals from a gateway policy ------------------------------------------------ */

/* A gateway path term in Istio's form: a prefix gets Istio's trailing '*' ("/api/"
 * becomes "/api/" followed by '*'). */
/* The gateway's path term V as Istio paths into OUT (one or two, malloc'd); returns how
 * many, -1 on failure. The gateway matches "/api/" as a prefix and "/metrics" as that
 * path or below it (never "/metricsx"), so the latter is two Istio paths. */
static int istio_paths(const char *v, char **out)
{
    size_t n = strlen(v);
    out[0] = malloc(n + 3);
    if (out[0] == NULL)
        return -1;
    if (n > 0 && v[n - 1] == '/') {
        snprintf(out[0], n + 3, "%s*", v);
        return 1;
    }
    snprintf(out[0], n + 3, "%s", v);
    out[1] = malloc(n + 3);
    if (out[1] == NULL)
        return -1;
    snprintf(out[1], n + 3, "%s/*", v);
    return 2;
}

/* A '*' where the gateway and Istio would read it differently: Istio takes a leading or
 * trailing '*' as a wildcard; the gateway only a trailing one in spiffe= and principal=,
 * none in path= and namespace=. */
static int star_differs(enum pqm_term_key k, const char *v)
{
    const char *star = strchr(v, '*');
    if (star == NULL)
        return 0;
    if (k == K_SPIFFE || k == K_PRINCIPAL)
        return star[1] != '\0';
    return k == K_PATH || k == K_NAMESPACE;
}

/* Istio's form of a term's values into OUT (malloc'd each; a path may give two); their
 * number in *N. */
static int istio_values(struct pqm_err *e, const struct pqm_policy_rule *r,
                        const struct pqm_policy_term *t, char **out, size_t *n)
{
    *n = 0;
    for (size_t i = 0; i < t->nvalues; i++) {
        const char *v = t->values[i];
        if (star_differs(t->key, v))
            return pqm__err_set(e, "policy rule '%s': the '*' in '%s' would mean something "
                                   "else to Istio than to the gateway",
                                r->text, v);
        if (t->key == K_PATH) {
            int k = istio_paths(v, out + *n);
            if (k < 0)
                return pqm__err_set(e, "out of memory");
            *n += (size_t)k;
            continue;
        }
        out[*n] = strdup(t->key == K_SPIFFE ? v + strlen("spiffe://") : v);
        if (out[*n] == NULL)
            return pqm__err_set(e, "out of memory");
        (*n)++;
    }
    return 0;
}

static int term_yaml(struct pqm_buf *b, struct pqm_err *e, const struct pqm_policy_rule *r,
                     const struct pqm_policy_term *t, const char *field, int indent)
{
    char *vals[2 * PQM_POLICY_MAX_VALUES] = {NULL};
    size_t n = 0;
    int rc = istio_values(e, r, t, vals, &n);
    if (rc == 0) {
        rc = pqm__buf_addf(b, "%*s%s: ", indent, "", field);
        rc |= list(b, (const char *const *)vals, n);
        if (rc != 0)
            pqm__err_set(e, "out of memory");
    }
    for (size_t i = 0; i < 2 * PQM_POLICY_MAX_VALUES; i++)
        free(vals[i]);
    return rc;
}

static int rule_yaml(struct pqm_buf *b, struct pqm_err *e, const struct pqm_policy_rule *r)
{
    static const char *const from_field[] = {[K_SPIFFE] = "principals",
                                             [K_PRINCIPAL] = "principals",
                                             [K_NAMESPACE] = "namespaces"};
    int has_from = 0, has_to = 0, rc = pqm__buf_addf(b, "  - ");
    for (size_t i = 0; i < r->nterms; i++) {
        enum pqm_term_key k = r->terms[i].key;
        if (k == K_DNS || k == K_CN || k == K_O)
            return pqm__err_set(e, "policy rule '%s': dns=, cn= and o= have no equivalent in "
                                   "an Istio AuthorizationPolicy (use spiffe=, principal=, "
                                   "namespace=, path=, method=)",
                                r->text);
        has_from |= k == K_SPIFFE || k == K_PRINCIPAL || k == K_NAMESPACE;
        has_to |= k == K_PATH || k == K_METHOD;
        for (size_t j = 0; j < i; j++) {
            enum pqm_term_key o = r->terms[j].key;
            int both_principals = (o == K_SPIFFE || o == K_PRINCIPAL) &&
                                  (k == K_SPIFFE || k == K_PRINCIPAL);
            if (o == k || both_principals)
                return pqm__err_set(e, "policy rule '%s': two terms for the same Istio field "
                                       "(all of a rule's terms must match, which one Istio "
                                       "source cannot say); list the values in one term",
                                    r->text);
        }
    }
    if (has_from) {
        rc |= pqm__buf_addf(b, "from:\n    - source:\n");
        for (size_t i = 0; i < r->nterms; i++)
            if (r->terms[i].key <= K_NAMESPACE)
                rc |= term_yaml(b, e, r, &r->terms[i], from_field[r->terms[i].key], 8);
    }
    if (has_to) {
        rc |= pqm__buf_addf(b, "%sto:\n    - operation:\n", has_from ? "    " : "");
        for (size_t i = 0; i < r->nterms; i++)
            if (r->terms[i].key == K_PATH || r->terms[i].key == K_METHOD)
                rc |= term_yaml(b, e, r, &r->terms[i],
                                r->terms[i].key == K_PATH ? "paths" : "methods", 8);
    }
    if (!has_from && !has_to)
        rc |= pqm__buf_addf(b, "{}\n");
    if (rc != 0 && strcmp(pqm__err_str(e), "no error") == 0)
        pqm__err_set(e, "out of memory");
    return rc;
}

static int policy_doc(struct pqm_buf *b, struct pqm_err *e, const struct pqm_policy *pol,
                      const char *ns, int deny)
{
    size_t n = 0;
    for (size_t i = 0; i < pol->nrules; i++)
        n += pol->rules[i].deny == deny;
    if (n == 0)
        return 0;
    int rc = header(b, "security.istio.io/v1", "AuthorizationPolicy",
                    deny ? "pqmtls-deny" : "pqmtls-allow", ns);
    rc |= pqm__buf_addf(b, "spec:\n  action: %s\n  rules:\n", deny ? "DENY" : "ALLOW");
    for (size_t i = 0; rc == 0 && i < pol->nrules; i++)
        if (pol->rules[i].deny == deny && rule_yaml(b, e, &pol->rules[i]) != 0)
            return -1;
    return rc;
}

static int allow_policy(struct pqm_pki *p, struct pqm_buf *b, const char *ns, const char *file)
{
    struct pqm_gateway_config *cfg = pqm_gateway_config_new();
    if (cfg == NULL)
        return pqm__err_set(&p->err, "out of memory");
    int rc = -1;
    if (pqm_gateway_config_load_file(cfg, file) != 0)
        pqm__err_set(&p->err, "--policy %s", pqm_gateway_config_error(cfg));
    else if (cfg->policy == NULL || cfg->policy->nrules == 0)
        pqm__err_set(&p->err, "--policy %s: no allow, deny or allow_spiffe rule", file);
    else if (policy_doc(b, &p->err, cfg->policy, ns, 0) == 0 &&
             policy_doc(b, &p->err, cfg->policy, ns, 1) == 0)
        rc = 0;
    pqm_gateway_config_free(cfg);
    return rc;
}

int pqm_pki_export_istio(struct pqm_pki *p, const struct pqm_istio_export *x, char **text)
{
    struct pqm_err *e = &p->err;
    if (text != NULL)
        *text = NULL;
    if (x->namespace_ == NULL || !pqm__k8s_label_ok(x->namespace_))
        return pqm__err_set(e, "--namespace '%s' is not a Kubernetes namespace name (a-z, 0-9, "
                               "'-', at most 63)",
                            x->namespace_ != NULL ? x->namespace_ : "");
    struct pqm_buf b;
    char dir[PATH_MAX];
    pqm__yaml_comment_text(p->dir, dir, sizeof(dir));
    pqm__buf_init(&b, ISTIO_YAML_MAX);
    int rc = pqm__buf_addf(&b, "# Istio mutual TLS for namespace %s, written by `pqmtls export "
                               "istio` from the PKI %s.\n",
                           x->namespace_, dir);
    rc |= peer_and_destination(&b, x->namespace_);
    if (rc != 0)
        rc = pqm__err_set(e, "out of memory");
    else if (x->policy_file != NULL)
        rc = allow_policy(p, &b, x->namespace_, x->policy_file);
    else
        rc = allow_pki(p, &b, x->namespace_);
    if (rc == 0)
        rc = pqm__export_emit(p, &b, x->out_file, 0644, text);
    pqm__buf_free(&b);
    return rc;
}
