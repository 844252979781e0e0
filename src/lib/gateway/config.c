/* Gateway options (see config.h). */
#include "gateway/config.h"
#include "gateway/policy.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

enum opt_type { T_STRING, T_PATH, T_PATH_LIST, T_BOOL, T_INT, T_SECONDS, T_ADDR, T_RULE, T_CHOICE, T_URL };

struct opt {
    const char *name;
    enum opt_type type;
    size_t offset, size;
    long min, max; /* T_INT, T_SECONDS */
    const char *arg, *doc;
};

#define F(field) offsetof(struct pqm_gateway_config, field), sizeof(((struct pqm_gateway_config *)0)->field)

static const struct opt opts[] = {
    {"listen", T_ADDR, F(listen), 0, 0, "ADDR:PORT",
     "where to accept mTLS connections, e.g. 0.0.0.0:8443 or [::]:8443 (required)"},
    {"upstream", T_ADDR, F(upstream), 0, 0, "HOST:PORT",
     "the plain-HTTP backend that receives the requests (required)"},
    {"admin", T_ADDR, F(admin), 0, 0, "ADDR:PORT",
     "serve /metrics (Prometheus), /healthz and /readyz over plain HTTP on this loopback "
     "address (default: off)"},
    {"metrics", T_ADDR, F(metrics), 0, 0, "ADDR:PORT",
     "also serve /metrics alone on this address, which may be any (for a Prometheus "
     "outside the host or pod); its own thread, so a slow scraper never delays the "
     "admin listener's probes (default: off)"},
    {"cert", T_PATH, F(cert), 0, 0, "FILE",
     "the server certificate chain, PEM, leaf first (pqmtls pki: issued/NAME.chain.pem)"},
    {"key", T_PATH, F(key), 0, 0, "FILE", "the server key, PEM (PKCS#8, encrypted or not)"},
    {"key_passphrase_file", T_PATH, F(key_passphrase_file), 0, 0, "FILE",
     "the key's passphrase, first line of FILE (or PQMTLS_KEY_PASSPHRASE)"},
    {"client_ca", T_PATH, F(client_ca), 0, 0, "FILE",
     "the only CAs client certificates may chain to (pqmtls pki: client-ca-chain.pem)"},
    {"crl", T_PATH_LIST, F(crl), 0, 0, "FILE",
     "a CRL (PEM) of a client CA; repeat for each. Once any is given, every CA of a "
     "client chain needs one"},
    {"crl_soft_fail", T_BOOL, F(crl_soft_fail), 0, 0, "",
     "let a client through when its CA's CRL is missing or expired (logged); default: refuse"},
    {"client_ocsp", T_CHOICE, F(client_ocsp), 0, 0, "off|soft|hard",
     "also ask the client certificate's OCSP responder (its authorityInfoAccess, or "
     "ocsp_responder), answers cached; the connection waits for the answer: soft lets the "
     "client through when none comes in ocsp_timeout, hard refuses it (default off)"},
    {"ocsp_stapling", T_CHOICE, F(ocsp_stapling), 0, 0, "auto|on|off",
     "staple the OCSP response for the gateway's own certificate, fetched in the background "
     "and refreshed half-way to its nextUpdate; auto: when the certificate names a responder "
     "(default auto)"},
    {"ocsp_responder", T_URL, F(ocsp_responder), 0, 0, "URL",
     "the OCSP responder to ask instead of the certificates' own (http://)"},
    {"ocsp_timeout", T_SECONDS, F(ocsp_timeout), 1, 60, "SECONDS",
     "how long an OCSP query may take (default 5)"},
    {"ocsp_cache_seconds", T_INT, F(ocsp_cache_seconds), 1, 86400, "SECONDS",
     "longest a client certificate's good answer is trusted, and never past its nextUpdate "
     "(default 300)"},
    {"verify_depth", T_INT, F(verify_depth), 1, 8, "N",
     "most certificates between a client certificate and its trust anchor (default 2)"},
    {"verify_cache", T_BOOL, F(verify_cache), 0, 0, "",
     "verify a client certificate in full once per configuration: when it comes back, "
     "only its chain's validity and revocation are checked again (default true)"},
    {"require_pq", T_BOOL, F(require_pq), 0, 0, "",
     "refuse clients that cannot negotiate a post-quantum (ML-KEM) group"},
    {"client_cert_header", T_BOOL, F(client_cert_header), 0, 0, "",
     "also send the client's certificate to the upstream in an RFC 9440 Client-Cert header"},
    {"allow", T_RULE, 0, 0, 0, 0, "RULE",
     "let requests through that match RULE, e.g. 'principal=cluster.local/ns/production/sa/"
     "frontend-service path=/api/ method=GET,POST'; repeat for more. Once any allow rule "
     "exists, a request that matches none is refused with 403 (docs/gateway.md)"},
    {"deny", T_RULE, 1, 0, 0, 0, "RULE", "refuse requests that match RULE (wins over allow)"},
    {"allow_spiffe", T_RULE, 2, 0, 0, 0, "URI",
     "shorthand for --allow 'spiffe=URI' (a trailing * matches any rest)"},
    {"expiry_warning_days", T_INT, F(expiry_warning_days), 0, 3650, "DAYS",
     "warn (once an hour per certificate) about client certificates that expire within "
     "DAYS (default 30; 0: never)"},
    {"session_tickets", T_BOOL, F(session_tickets), 0, 0, "",
     "resume sessions with TLS 1.3 tickets (default true): a resumed session is refused once "
     "its certificate is revoked or expired, and a reload or another listener invalidates "
     "every ticket"},
    {"ticket_key_lifetime", T_INT, F(ticket_key_lifetime), 60, 86400, "SECONDS",
     "how long a ticket key encrypts new tickets; a ticket is accepted for twice that "
     "(default 3600)"},
    {"workers", T_INT, F(workers), 0, 256, "N", "worker threads (default: one per core this process may run on, its CPU affinity)"},
    {"max_connections", T_INT, F(max_connections), 1, 1000000, "N",
     "open client connections per worker (default 10000)"},
    {"max_header_size", T_INT, F(max_header_size), 1024, 32768, "BYTES",
     "the largest request head (request line and fields) accepted; larger ones get 431 "
     "(default 32768)"},
    {"upstream_keepalive", T_INT, F(upstream_keepalive), 0, 100000, "N",
     "idle connections to the upstream each worker keeps for reuse (default 64; 0: none)"},
    {"access_log", T_STRING, F(access_log), 0, 0, "FILE|-|off",
     "one JSON line per request and per refused handshake (default - : stdout)"},
    {"handshake_timeout", T_SECONDS, F(handshake_timeout), 1, 3600, "SECONDS",
     "time a client has to complete the TLS handshake (default 10)"},
    {"header_timeout", T_SECONDS, F(header_timeout), 1, 3600, "SECONDS",
     "time a client has to send a request head (default 30)"},
    {"idle_timeout", T_SECONDS, F(idle_timeout), 1, 86400, "SECONDS",
     "how long an idle keep-alive connection stays open (default 60)"},
    {"upstream_connect_timeout", T_SECONDS, F(upstream_connect_timeout), 1, 600, "SECONDS",
     "time to connect to the upstream before answering 502 (default 5)"},
    {"upstream_timeout", T_SECONDS, F(upstream_timeout), 1, 86400, "SECONDS",
     "time the upstream may stay silent before answering 504 (default 60)"},
    {"watch_interval", T_SECONDS, F(watch_interval), 0, 3600, "SECONDS",
     "how often the certificate, key, CA and CRL files are checked for changes, which "
     "reload them as SIGHUP does (default 2; 0: only on SIGHUP)"},
    {"drain_timeout", T_SECONDS, F(drain_timeout), 0, 3600, "SECONDS",
     "on SIGTERM, how long running requests may take to finish (default 30)"},
};

struct pqm_gateway_config *pqm_gateway_config_new(void)
{
    struct pqm_gateway_config *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    snprintf(c->access_log, sizeof(c->access_log), "-");
    c->verify_depth = 2;
    c->max_connections = 10000;
    c->max_header_size = 32768;
    c->upstream_keepalive = 64;
    c->handshake_timeout = 10;
    c->header_timeout = 30;
    c->idle_timeout = 60;
    c->upstream_connect_timeout = 5;
    c->upstream_timeout = 60;
    c->drain_timeout = 30;
    snprintf(c->client_ocsp, sizeof(c->client_ocsp), "off");
    snprintf(c->ocsp_stapling, sizeof(c->ocsp_stapling), "auto");
    c->ocsp_timeout = 5;
    c->ocsp_cache_seconds = 300;
    c->watch_interval = 2;
    c->expiry_warning_days = 30;
    c->session_tickets = 1;
    c->verify_cache = 1;
    c->ticket_key_lifetime = 3600;
    return c;
}

void pqm_gateway_config_free(struct pqm_gateway_config *c)
{
    if (c == NULL)
        return;
    if (c->policy != NULL)
        pqm__policy_free(c->policy);
    free(c->policy);
    pqm__strlist_free(&c->ops);
    free(c);
}

static int load_file(struct pqm_gateway_config *c, const char *path);
static int set_value(struct pqm_gateway_config *c, const char *key, const char *value);

struct pqm_gateway_config *pqm__gw_config_replay(const struct pqm_strlist *ops,
                                                 struct pqm_err *e)
{
    struct pqm_gateway_config *c = pqm_gateway_config_new();
    if (c == NULL) {
        pqm__err_set(e, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < ops->n; i++) {
        const char *op = ops->v[i];
        int rc;
        if (op[0] == 'F') {
            rc = load_file(c, op + 2);
        } else {
            char key[64];
            size_t klen = strcspn(op + 2, "=");
            snprintf(key, sizeof(key), "%.*s", (int)klen, op + 2);
            rc = set_value(c, key, op + 2 + klen + 1);
        }
        if (rc == 0)
            rc = pqm__strlist_add(&c->ops, op, &c->err);
        if (rc != 0) {
            pqm__err_copy(e, NULL, pqm__err_str(&c->err));
            pqm_gateway_config_free(c);
            return NULL;
        }
    }
    return c;
}

int pqm__gw_config_has_file(const struct pqm_strlist *ops)
{
    for (size_t i = 0; i < ops->n; i++)
        if (ops->v[i][0] == 'F')
            return 1;
    return 0;
}

/* OFFSET of a rule option tells which: 0 allow, 1 deny, 2 allow_spiffe. */
static int add_rule(struct pqm_gateway_config *c, const struct opt *o, const char *value)
{
    if (c->policy == NULL) {
        c->policy = malloc(sizeof(*c->policy));
        if (c->policy == NULL)
            return pqm__err_set(&c->err, "out of memory");
        pqm__policy_init(c->policy);
    }
    char text[1024];
    if (o->offset == 2)
        snprintf(text, sizeof(text), "spiffe=%s", value);
    else
        snprintf(text, sizeof(text), "%s", value);
    struct pqm_err e = {{0}};
    if (strlen(value) >= sizeof(text) - 8 || pqm__policy_add(c->policy, o->offset == 1, text, &e))
        return pqm__err_set(&c->err, "%s '%s': %s", o->name, value,
                            e.msg[0] ? pqm__err_str(&e) : "too long");
    return 0;
}

const char *pqm_gateway_config_error(const struct pqm_gateway_config *c)
{
    return pqm__err_str(&c->err);
}

static const struct opt *find_opt(const char *name)
{
    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
        if (strcmp(opts[i].name, name) == 0)
            return &opts[i];
    return NULL;
}

static int parse_bool(const char *v, int *out)
{
    if (strcmp(v, "true") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "on") == 0 ||
        strcmp(v, "1") == 0)
        *out = 1;
    else if (strcmp(v, "false") == 0 || strcmp(v, "no") == 0 || strcmp(v, "off") == 0 ||
             strcmp(v, "0") == 0)
        *out = 0;
    else
        return -1;
    return 0;
}

/* HOST:PORT with a port of 1-65535; an IPv6 host in brackets. */
static int addr_ok(const char *v)
{
    const char *colon = strrchr(v, ':');
    if (colon == NULL || colon == v || colon[1] == '\0')
        return 0;
    if (v[0] == '[' && colon[-1] != ']')
        return 0;
    char *end = NULL;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    return errno == 0 && *end == '\0' && port >= 1 && port <= 65535;
}

/* 1 when V is one of the '|'-separated words of CHOICES. */
static int choice_ok(const char *choices, const char *v)
{
    size_t n = strlen(v);
    for (const char *p = choices; *p != '\0';) {
        size_t w = strcspn(p, "|");
        if (w == n && strncmp(p, v, n) == 0)
            return 1;
        p += w;
        if (*p == '|')
            p++;
    }
    return 0;
}

static int set_number(struct pqm_gateway_config *c, const struct opt *o, const char *v)
{
    char *end = NULL;
    errno = 0;
    double d = strtod(v, &end);
    if (errno != 0 || end == v || *end != '\0' || d < (double)o->min || d > (double)o->max ||
        (o->type == T_INT && d != (double)(long)d))
        return pqm__err_set(&c->err, "%s: '%s' is not %s from %ld to %ld", o->name, v,
                            o->type == T_INT ? "a whole number" : "a number of seconds",
                            o->min, o->max);
    char *field = (char *)c + o->offset;
    if (o->type == T_INT)
        *(int *)field = (int)d;
    else
        *(double *)field = d;
    return 0;
}

static int record(struct pqm_gateway_config *c, char kind, const char *a, const char *b)
{
    char op[8192];
    int n = b != NULL ? snprintf(op, sizeof(op), "%c:%s=%s", kind, a, b)
                      : snprintf(op, sizeof(op), "%c:%s", kind, a);
    if (n < 0 || (size_t)n >= sizeof(op))
        return pqm__err_set(&c->err, "%s: too long", a);
    return pqm__strlist_add(&c->ops, op, &c->err);
}

int pqm_gateway_config_set(struct pqm_gateway_config *c, const char *key, const char *value)
{
    if (set_value(c, key, value) != 0)
        return -1;
    return record(c, 'S', key, value);
}

static int set_value(struct pqm_gateway_config *c, const char *key, const char *value)
{
    const struct opt *o = find_opt(key);
    if (o == NULL)
        return pqm__err_set(&c->err, "unknown option '%s'", key);
    if (value == NULL)
        return pqm__err_set(&c->err, "%s: a value is required", key);
    char *field = (char *)c + o->offset;
    switch (o->type) {
    case T_BOOL:
        if (parse_bool(value, (int *)field) != 0)
            return pqm__err_set(&c->err, "%s: '%s' is not true or false", key, value);
        return 0;
    case T_INT:
    case T_SECONDS:
        return set_number(c, o, value);
    case T_ADDR:
        if (!addr_ok(value))
            return pqm__err_set(&c->err, "%s: '%s' is not HOST:PORT", key, value);
        break;
    case T_RULE:
        return add_rule(c, o, value);
    case T_PATH_LIST:
        if (c->ncrl == PQM_GW_MAX_CRLS)
            return pqm__err_set(&c->err, "%s: at most %d files", key, PQM_GW_MAX_CRLS);
        field = c->crl[c->ncrl];
        if (value[0] == '\0' || strlen(value) >= sizeof(c->crl[0]))
            return pqm__err_set(&c->err, "%s: empty or too long", key);
        snprintf(field, sizeof(c->crl[0]), "%s", value);
        c->ncrl++;
        return 0;
    case T_CHOICE:
        if (!choice_ok(o->arg, value))
            return pqm__err_set(&c->err, "%s: '%s' is not one of %s", key, value, o->arg);
        break;
    case T_URL:
        if (strncmp(value, "http://", 7) != 0 || value[7] == '\0' || value[7] == '/')
            return pqm__err_set(&c->err, "%s: '%s' is not an http:// URL", key, value);
        break;
    case T_STRING:
    case T_PATH:
        break;
    default:
        return pqm__err_set(&c->err, "%s: unknown option type", key);
    }
    if (value[0] == '\0' || strlen(value) >= o->size)
        return pqm__err_set(&c->err, "%s: empty or longer than %zu characters", key,
                            o->size - 1);
    snprintf(field, o->size, "%s", value);
    return 0;
}

int pqm_gateway_config_check(struct pqm_gateway_config *c)
{
    static const char *const required[] = {"listen", "upstream", "cert", "key", "client_ca"};
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        const struct opt *o = find_opt(required[i]);
        if (((char *)c + o->offset)[0] == '\0')
            return pqm__err_set(&c->err, "%s is required", required[i]);
    }
    return 0;
}

void pqm_gateway_config_describe(void (*fn)(const char *, const char *, const char *, void *),
                                 void *ctx)
{
    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
        fn(opts[i].name, opts[i].arg, opts[i].doc, ctx);
}

int pqm_gateway_config_is_switch(const char *key)
{
    const struct opt *o = find_opt(key);
    return o == NULL ? -1 : o->type == T_BOOL;
}

/* The next parser event, or -1 with "PATH:LINE: reason". */
static int next_event(struct pqm_gateway_config *c, yaml_parser_t *p, yaml_event_t *ev,
                      const char *path)
{
    if (yaml_parser_parse(p, ev) != 1)
        return pqm__err_set(&c->err, "%s:%zu: %s", path, p->problem_mark.line + 1,
                            p->problem != NULL ? p->problem : "not valid YAML");
    return 0;
}

/* One "key: value" or "key: [values]" of the top-level mapping; KEY is consumed. */
static int load_pair(struct pqm_gateway_config *c, yaml_parser_t *p, const char *key,
                     size_t line, const char *path)
{
    yaml_event_t ev;
    if (next_event(c, p, &ev, path) != 0)
        return -1;
    int rc = 0;
    if (ev.type == YAML_SCALAR_EVENT) {
        if (set_value(c, key, (const char *)ev.data.scalar.value) != 0)
            rc = -1;
    } else if (ev.type == YAML_SEQUENCE_START_EVENT) {
        for (;;) {
            yaml_event_t item;
            if (next_event(c, p, &item, path) != 0) {
                rc = -1;
                break;
            }
            int end = item.type == YAML_SEQUENCE_END_EVENT;
            if (!end && item.type != YAML_SCALAR_EVENT)
                rc = pqm__err_set(&c->err, "%s:%zu: %s: list items must be plain values", path,
                                  item.start_mark.line + 1, key);
            else if (!end && set_value(c, key, (const char *)item.data.scalar.value))
                rc = -1;
            yaml_event_delete(&item);
            if (end || rc != 0)
                break;
        }
    } else {
        rc = pqm__err_set(&c->err, "%s:%zu: %s: a value or a list of values is expected", path,
                          line, key);
    }
    yaml_event_delete(&ev);
    if (rc != 0 && strncmp(pqm__err_str(&c->err), path, strlen(path)) != 0) {
        char why[sizeof(c->err.msg)];
        snprintf(why, sizeof(why), "%s", pqm__err_str(&c->err));
        pqm__err_set(&c->err, "%s:%zu: %s", path, line, why);
    }
    return rc;
}

int pqm_gateway_config_load_file(struct pqm_gateway_config *c, const char *path)
{
    if (load_file(c, path) != 0)
        return -1;
    return record(c, 'F', path, NULL);
}

static int load_file(struct pqm_gateway_config *c, const char *path)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return pqm__err_set(&c->err, "%s: %s", path, strerror(errno));
    yaml_parser_t p;
    if (yaml_parser_initialize(&p) != 1) {
        fclose(f);
        return pqm__err_set(&c->err, "out of memory");
    }
    yaml_parser_set_input_file(&p, f);
    int rc = 0, in_map = 0;
    for (;;) {
        yaml_event_t ev;
        if (next_event(c, &p, &ev, path) != 0) {
            rc = -1;
            break;
        }
        yaml_event_type_t t = ev.type;
        size_t line = ev.start_mark.line + 1;
        if (t == YAML_STREAM_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        if (t == YAML_MAPPING_START_EVENT && !in_map) {
            in_map = 1;
        } else if (t == YAML_MAPPING_END_EVENT && in_map) {
            in_map = 0;
        } else if (t == YAML_SCALAR_EVENT && in_map) {
            char key[64];
            snprintf(key, sizeof(key), "%s", (const char *)ev.data.scalar.value);
            if (find_opt(key) == NULL)
                rc = pqm__err_set(&c->err, "%s:%zu: unknown option '%s'", path, line, key);
            else
                rc = load_pair(c, &p, key, line, path);
        } else if (t != YAML_STREAM_START_EVENT && t != YAML_DOCUMENT_START_EVENT &&
                   t != YAML_DOCUMENT_END_EVENT) {
            rc = pqm__err_set(&c->err, "%s:%zu: a mapping of option names to values is expected",
                              path, line);
        }
        yaml_event_delete(&ev);
        if (rc != 0)
            break;
    }
    yaml_parser_delete(&p);
    fclose(f);
    return rc;
}
