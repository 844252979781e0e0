/* Authorization rules (see policy.h). */
#include "gateway/policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct {
    const char *name;
    enum pqm_term_key key;
} keys[] = {
    {"spiffe", K_SPIFFE}, {"principal", K_PRINCIPAL}, {"namespace", K_NAMESPACE},
    {"dns", K_DNS},       {"cn", K_CN},               {"o", K_O},
    {"path", K_PATH},     {"method", K_METHOD},
};

void pqm__policy_init(struct pqm_policy *p)
{
    memset(p, 0, sizeof(*p));
}

static void rule_free(struct pqm_policy_rule *r)
{
    for (size_t t = 0; t < r->nterms; t++)
        for (size_t v = 0; v < r->terms[t].nvalues; v++)
            free(r->terms[t].values[v]);
    free(r->text);
    memset(r, 0, sizeof(*r));
}

void pqm__policy_free(struct pqm_policy *p)
{
    for (size_t i = 0; i < p->nrules; i++)
        rule_free(&p->rules[i]);
    p->nrules = 0;
}

static int value_ok(enum pqm_term_key k, const char *v, struct pqm_err *e)
{
    if (v[0] == '\0')
        return pqm__err_set(e, "an empty value");
    for (const char *c = v; *c; c++)
        if ((unsigned char)*c <= 0x20 || *c == 0x7f)
            return pqm__err_set(e, "'%s': spaces and control characters are not allowed", v);
    if (k == K_PATH && v[0] != '/')
        return pqm__err_set(e, "path '%s' must start with /", v);
    if (k == K_PATH && !pqm__path_is_normal(v, strlen(v)))
        return pqm__err_set(e, "path '%s' is not in normal form", v);
    if (k == K_SPIFFE && strncmp(v, "spiffe://", 9) != 0)
        return pqm__err_set(e, "spiffe '%s' must start with spiffe://", v);
    if (k == K_METHOD)
        for (const char *c = v; *c; c++)
            if (*c < 'A' || *c > 'Z')
                return pqm__err_set(e, "method '%s' must be upper-case letters", v);
    return 0;
}

static int parse_term(struct pqm_policy_rule *r, const char *term, size_t len, struct pqm_err *e)
{
    const char *eq = memchr(term, '=', len);
    if (eq == NULL)
        return pqm__err_set(e, "'%.*s' is not key=value", (int)len, term);
    size_t klen = (size_t)(eq - term);
    size_t k = 0;
    while (k < sizeof(keys) / sizeof(keys[0]) &&
           (strlen(keys[k].name) != klen || strncmp(keys[k].name, term, klen) != 0))
        k++;
    if (k == sizeof(keys) / sizeof(keys[0]))
        return pqm__err_set(e, "unknown key '%.*s' (spiffe, principal, namespace, dns, cn, o, "
                               "path, method)",
                            (int)klen, term);
    if (r->nterms == PQM_POLICY_MAX_TERMS)
        return pqm__err_set(e, "more than %d terms", PQM_POLICY_MAX_TERMS);
    struct pqm_policy_term *t = &r->terms[r->nterms++];
    t->key = keys[k].key;
    const char *v = eq + 1, *end = term + len;
    while (v <= end) {
        const char *comma = memchr(v, ',', (size_t)(end - v));
        const char *vend = comma != NULL ? comma : end;
        if (t->nvalues == PQM_POLICY_MAX_VALUES)
            return pqm__err_set(e, "more than %d values for %s", PQM_POLICY_MAX_VALUES,
                                keys[k].name);
        char *val = strndup(v, (size_t)(vend - v));
        if (val == NULL)
            return pqm__err_set(e, "out of memory");
        t->values[t->nvalues++] = val;
        if (value_ok(t->key, val, e) != 0)
            return -1;
        v = vend + 1;
    }
    return 0;
}

int pqm__policy_add(struct pqm_policy *p, int deny, const char *text, struct pqm_err *e)
{
    if (p->nrules == PQM_POLICY_MAX_RULES)
        return pqm__err_set(e, "more than %d rules", PQM_POLICY_MAX_RULES);
    struct pqm_policy_rule *r = &p->rules[p->nrules];
    memset(r, 0, sizeof(*r));
    r->deny = deny;
    const char *s = text;
    while (*s) {
        while (*s == ' ' || *s == '\t')
            s++;
        const char *start = s;
        while (*s && *s != ' ' && *s != '\t')
            s++;
        if (s > start && parse_term(r, start, (size_t)(s - start), e) != 0) {
            rule_free(r);
            return -1;
        }
    }
    if (r->nterms == 0)
        return pqm__err_set(e, "an empty rule");
    r->text = strdup(text);
    if (r->text == NULL) {
        rule_free(r);
        return pqm__err_set(e, "out of memory");
    }
    for (size_t t = 0; t < r->nterms; t++)
        p->uses_path |= r->terms[t].key == K_PATH;
    p->nallow += !deny;
    p->nrules++;
    return 0;
}

/* VALUE, or a prefix of it when PATTERN ends in '*'. */
static int glob_match(const char *pattern, const char *value)
{
    size_t n = strlen(pattern);
    if (n > 0 && pattern[n - 1] == '*')
        return strncmp(pattern, value, n - 1) == 0;
    return strcmp(pattern, value) == 0;
}

/* The namespace of a SPIFFE ID that follows the Kubernetes convention
 * spiffe://TD/ns/NS/sa/SA; "" when it does not. */
static void spiffe_namespace(const char *id, char *out, size_t outlen)
{
    out[0] = '\0';
    const char *p = id != NULL && strncmp(id, "spiffe://", 9) == 0 ? strchr(id + 9, '/') : NULL;
    if (p == NULL || strncmp(p, "/ns/", 4) != 0)
        return;
    p += 4;
    size_t n = strcspn(p, "/");
    if (n > 0 && n < outlen) {
        memcpy(out, p, n);
        out[n] = '\0';
    }
}

static int dns_match(const char *pattern, const char *name)
{
    if (strncmp(pattern, "*.", 2) == 0) {
        const char *dot = strchr(name, '.');
        return dot != NULL && dot != name && strcasecmp(dot + 1, pattern + 2) == 0;
    }
    return strcasecmp(pattern, name) == 0;
}

/* A prefix that ends in '/' matches whole segments; one that does not matches the path
 * itself or below it ("/api" matches /api and /api/x, not /apix). */
static int path_match(const char *prefix, const char *path)
{
    size_t n = strlen(prefix);
    if (strncmp(prefix, path, n) != 0)
        return 0;
    return prefix[n - 1] == '/' || path[n] == '\0' || path[n] == '/';
}

static int value_match(enum pqm_term_key k, const char *v, const struct pqm_policy_subject *s)
{
    switch (k) {
    case K_SPIFFE:
        return s->spiffe[0] != '\0' && glob_match(v, s->spiffe);
    case K_PRINCIPAL:
        return strncmp(s->spiffe, "spiffe://", 9) == 0 && glob_match(v, s->spiffe + 9);
    case K_NAMESPACE: {
        char ns[256];
        spiffe_namespace(s->spiffe, ns, sizeof(ns));
        return ns[0] != '\0' && strcmp(v, ns) == 0;
    }
    case K_DNS:
        for (const char *d = s->dns; d != NULL && *d; d += strlen(d) + 1)
            if (dns_match(v, d))
                return 1;
        return 0;
    case K_CN:
        return strcmp(v, s->cn) == 0;
    case K_O:
        return strcmp(v, s->o) == 0;
    case K_PATH:
        return path_match(v, s->path);
    case K_METHOD:
        return strcmp(v, s->method) == 0;
    default:
        return 0;
    }
}

static int rule_match(const struct pqm_policy_rule *r, const struct pqm_policy_subject *s)
{
    for (size_t t = 0; t < r->nterms; t++) {
        const struct pqm_policy_term *term = &r->terms[t];
        int any = 0;
        for (size_t v = 0; v < term->nvalues && !any; v++)
            any = value_match(term->key, term->values[v], s);
        if (!any)
            return 0;
    }
    return 1;
}

int pqm__policy_check(const struct pqm_policy *p, const struct pqm_policy_subject *s, char *why,
                      size_t whylen)
{
    for (size_t i = 0; i < p->nrules; i++)
        if (p->rules[i].deny && rule_match(&p->rules[i], s)) {
            snprintf(why, whylen, "denied by rule '%s'", p->rules[i].text);
            return 0;
        }
    if (p->nallow == 0) {
        snprintf(why, whylen, "no allow rule: every verified client passes");
        return 1;
    }
    for (size_t i = 0; i < p->nrules; i++)
        if (!p->rules[i].deny && rule_match(&p->rules[i], s)) {
            snprintf(why, whylen, "allowed by rule '%s'", p->rules[i].text);
            return 1;
        }
    snprintf(why, whylen, "no allow rule matches");
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int pqm__path_is_normal(const char *path, size_t len)
{
    if (len == 0 || path[0] != '/')
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (path[i] == '\\')
            return 0;
        if (path[i] == '%') {
            int hi = i + 2 < len ? hexval(path[i + 1]) : -1, lo = i + 2 < len ? hexval(path[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return 0;
            int c = hi * 16 + lo;
            if (c == '.' || c == '/' || c == '\\' || c == 0)
                return 0;
        }
        if (path[i] != '/')
            continue;
        /* The segment after this slash: not empty (except at the end), not . or .. */
        size_t j = i + 1;
        size_t seg = 0;
        while (j + seg < len && path[j + seg] != '/')
            seg++;
        if (seg == 0 && j < len)
            return 0;
        if ((seg == 1 && path[j] == '.') || (seg == 2 && path[j] == '.' && path[j + 1] == '.'))
            return 0;
    }
    return 1;
}
