/* pqmtls export k8s: the gateway on Kubernetes (Secret, ConfigMap, Deployment, Service,
 * PodDisruptionBudget), made from the PKI (see export.h and docs/export.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pqmtls/export.h>
#include <pqmtls/gateway.h>

#include "export/common.h"
#include "gateway/config.h"
#include "gateway/policy.h"
#include "pki/keyfile.h"
#include "pki/pemfile.h"
#include "pki/pki_internal.h"
#include "util/digest.h"
#include "util/fsutil.h"

#define K8S_YAML_MAX (8 * 1024 * 1024)
#define K8S_DATA_MAX (1024 * 1024) /* what the API server takes in one Secret or ConfigMap */
#define K8S_APP "pqmtls-gateway"
#define K8S_SECRET "pqmtls-gateway-tls"
#define K8S_MOUNT "/etc/pqmtls"  /* the projected volume: both objects, swapped together */
#define K8S_UID "10001"          /* deploy/Containerfile's user */
#define K8S_PORT "8443"
#define K8S_ADMIN "127.0.0.1:9901" /* loopback: reached by the exec probes only */
#define K8S_METRICS_PORT "9902"      /* /metrics alone, for Prometheus in the cluster */
#define K8S_CRL "client-ca-chain.crl.pem"

/* A file's bytes. */
struct blob {
    unsigned char *data;
    size_t len;
};

#define K8S_CLIENT_PREFIX "pqmtls-client-"

/* A workload's identity: its Secret's name and files. */
struct k8s_client {
    struct pqm_export_server id;
    char secret[254];
    struct blob chain, key;
};

/* What the documents are made from. */
struct k8s {
    const char *ns, *upstream, *image, *service_type;
    int replicas, create_namespace;
    struct pqm_export_server srv;
    struct blob chain, key, ca, crl, pass; /* pass: the passphrase's first line and '\n' */
    struct blob server_ca;                 /* server-ca-chain.pem, for the clients' ca.crt */
    struct k8s_client *clients;
    size_t nclients;
    struct pqm_buf gateway_yaml;
    char gateway_sha[PQM_SHA256_HEX];
    char default_image[64];
};

static void blob_free(struct blob *b)
{
    if (b->data != NULL)
        OPENSSL_cleanse(b->data, b->len);
    free(b->data);
    b->data = NULL;
    b->len = 0;
}

static void k8s_free(struct k8s *k)
{
    blob_free(&k->chain);
    blob_free(&k->key);
    blob_free(&k->ca);
    blob_free(&k->crl);
    blob_free(&k->pass);
    blob_free(&k->server_ca);
    for (size_t i = 0; i < k->nclients; i++) {
        blob_free(&k->clients[i].chain);
        blob_free(&k->clients[i].key);
    }
    free(k->clients);
    pqm__buf_free(&k->gateway_yaml);
}

/* --- arguments ---------------------------------------------------------------------- */

/* HOST:PORT with HOST a DNS name, an IPv4 address or [IPv6], resolvable in the pod. */
static int upstream_ok(const char *v)
{
    const char *colon = strrchr(v, ':');
    if (colon == NULL || colon == v || colon[1] == '\0' || strlen(colon + 1) > 5 ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1))
        return 0;
    long port = strtol(colon + 1, NULL, 10);
    size_t hlen = (size_t)(colon - v);
    if (port < 1 || port > 65535)
        return 0;
    if (v[0] == '[')
        return hlen > 2 && v[hlen - 1] == ']' &&
               strspn(v + 1, "0123456789abcdefABCDEF:.") == hlen - 2;
    return strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") == hlen &&
           v[0] != '-' && v[0] != '.';
}

/* An image reference: printable ASCII without spaces or quotes. */
static int image_ok(const char *v)
{
    size_t n = strlen(v);
    if (n == 0 || n > 512)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] <= ' ' || (unsigned char)v[i] >= 0x7f || strchr("\"'\\", v[i]))
            return 0;
    return 1;
}

static int check_args(struct pqm_pki *p, const struct pqm_k8s_export *x, struct k8s *k)
{
    struct pqm_err *e = &p->err;
    snprintf(k->default_image, sizeof(k->default_image), "pqmtls-gateway:%s", pqm_version());
    k->ns = x->namespace_ != NULL ? x->namespace_ : "pqmtls";
    k->upstream = x->upstream != NULL ? x->upstream : "backend:8080";
    k->image = x->image != NULL ? x->image : k->default_image;
    k->service_type = x->service_type != NULL ? x->service_type : "ClusterIP";
    k->replicas = x->replicas > 0 ? x->replicas : 2;
    k->create_namespace = x->create_namespace;
    if (!pqm__k8s_label_ok(k->ns))
        return pqm__err_set(e, "--namespace '%s' is not a Kubernetes namespace name (a-z, 0-9, "
                               "'-', at most 63)",
                            k->ns);
    if (!upstream_ok(k->upstream))
        return pqm__err_set(e, "--upstream '%s' is not HOST:PORT (a DNS name, an IPv4 address "
                               "or [IPv6], and a port from 1 to 65535)",
                            k->upstream);
    if (!image_ok(k->image))
        return pqm__err_set(e, "--image '%s' is not an image reference (printable, no spaces "
                               "or quotes, at most 512 characters)",
                            k->image);
    if (strcmp(k->service_type, "ClusterIP") != 0 && strcmp(k->service_type, "LoadBalancer") != 0)
        return pqm__err_set(e, "--service-type '%s' is not ClusterIP or LoadBalancer",
                            k->service_type);
    if (k->replicas > 1000)
        return pqm__err_set(e, "--replicas %d: at most 1000", k->replicas);
    if (x->nclients > PQM_K8S_CLIENTS_MAX)
        return pqm__err_set(e, "%zu --client identities: at most %d in one export", x->nclients,
                            PQM_K8S_CLIENTS_MAX);
    return 0;
}

/* 1 when NAME is a DNS subdomain (RFC 1123 labels joined by '.'), as Kubernetes requires
 * of a Secret's name, at most LIMIT characters. */
static int subdomain_ok(const char *name, size_t limit)
{
    size_t n = strlen(name);
    if (n == 0 || n > limit)
        return 0;
    char label[64];
    for (const char *s = name; *s != '\0';) {
        size_t len = strcspn(s, ".");
        if (len == 0 || len >= sizeof(label))
            return 0;
        memcpy(label, s, len);
        label[len] = '\0';
        if (!pqm__k8s_label_ok(label))
            return 0;
        s += len;
        if (*s == '.' && *++s == '\0')
            return 0;
    }
    return 1;
}

/* --- the files ---------------------------------------------------------------------- */

static int read_blob(struct pqm_pki *p, const char *path, struct blob *b)
{
    return pqm__read_file(path, PQM_EXPORT_FILE_MAX, &b->data, &b->len, &p->err);
}

/* The passphrase as the gateway reads it (the first line), checked against the key, so
 * that a wrong one is refused here rather than by every pod. */
static int read_pass(struct pqm_pki *p, const char *file, struct k8s *k)
{
    struct pqm_err *e = &p->err;
    struct blob raw = {NULL, 0};
    if (read_blob(p, file, &raw) != 0)
        return pqm__err_copy(e, "--key-passphrase-file", pqm__err_str(e));
    size_t n = strcspn((const char *)raw.data, "\r\n");
    int rc = -1;
    if (n == 0) {
        pqm__err_set(e, "--key-passphrase-file %s: the first line is empty", file);
    } else if ((k->pass.data = malloc(n + 1)) == NULL) {
        pqm__err_set(e, "out of memory");
    } else {
        memcpy(k->pass.data, raw.data, n);
        k->pass.data[n] = '\n';
        k->pass.len = n + 1;
        EVP_PKEY *key = pqm__key_load(k->srv.key, (const char *)k->pass.data, n, e);
        if (key == NULL)
            pqm__err_copy(e, "--key-passphrase-file", pqm__err_str(e));
        rc = key != NULL ? 0 : -1;
        EVP_PKEY_free(key);
    }
    blob_free(&raw);
    return rc;
}

/* The CRLs as the gateway will load them: PEM text (a ConfigMap holds text), at least
 * one CRL in it. */
static int check_crls(struct pqm_pki *p, const char *path, const struct blob *crl)
{
    STACK_OF(X509_CRL) *crls = NULL;
    for (size_t i = 0; i < crl->len; i++) {
        unsigned char c = crl->data[i];
        if (c != '\n' && c != '\r' && c != '\t' && (c < ' ' || c >= 0x7f))
            return pqm__err_set(&p->err, "%s is not PEM text: write it again with `pqmtls pki "
                                         "crl --pki %s`",
                                path, p->dir);
    }
    if (pqm__pemfile_load(path, NULL, &crls, &p->err) != 0)
        return -1;
    sk_X509_CRL_pop_free(crls, X509_CRL_free);
    return 0;
}

/* The --client identities: valid client certificates with unencrypted keys (in a
 * cluster the Secret protects the key; a workload has no passphrase to give). */
static int load_clients(struct pqm_pki *p, const struct pqm_k8s_export *x, struct k8s *k)
{
    struct pqm_err *e = &p->err;
    char path[PATH_MAX];
    if (x->nclients == 0)
        return 0;
    if ((k->clients = calloc(x->nclients, sizeof(*k->clients))) == NULL)
        return pqm__err_set(e, "out of memory");
    if (pqm__pki_path(p, PQM_F_SERVER_CHAIN, path, sizeof(path)) != 0)
        return pqm__err_set(e, "path too long");
    if (read_blob(p, path, &k->server_ca) != 0)
        return -1;
    for (size_t i = 0; i < x->nclients; i++) {
        struct k8s_client *c = &k->clients[i];
        const char *name = x->clients[i];
        k->nclients = i + 1;
        for (size_t j = 0; j < i; j++)
            if (strcmp(x->clients[j], name) == 0)
                return pqm__err_set(e, "--client %s is given twice", name);
        if (!subdomain_ok(name, sizeof(c->secret) - 1 - strlen(K8S_CLIENT_PREFIX)))
            return pqm__err_set(e, "--client '%s': the Secret " K8S_CLIENT_PREFIX "%s would not "
                                   "be a Kubernetes name (a-z, 0-9, '-' and '.', at most 253): "
                                   "issue the client with such a --name",
                                name, name);
        snprintf(c->secret, sizeof(c->secret), K8S_CLIENT_PREFIX "%s", name);
        if (pqm__export_identity(p, "client", name, &c->id) != 0)
            return pqm__err_copy(e, "--client", pqm__err_str(e));
        if (c->id.encrypted)
            return pqm__err_set(e, "--client %s: its key %s is encrypted, and a workload has no "
                                   "passphrase to give; issue it again with --no-key-passphrase "
                                   "(in the cluster, the Secret protects the key)",
                                name, c->id.key);
        if (read_blob(p, c->id.chain, &c->chain) != 0 || read_blob(p, c->id.key, &c->key) != 0)
            return -1;
    }
    return 0;
}

static int load_files(struct pqm_pki *p, const struct pqm_k8s_export *x, struct k8s *k)
{
    struct pqm_err *e = &p->err;
    char path[PATH_MAX];
    if (pqm__export_server(p, x->name, &k->srv) != 0 ||
        pqm__export_crl_chain(p, "the gateway's crl", path, sizeof(path)) != 0 ||
        read_blob(p, path, &k->crl) != 0 || check_crls(p, path, &k->crl) != 0 ||
        read_blob(p, k->srv.chain, &k->chain) != 0 ||
        read_blob(p, k->srv.key, &k->key) != 0)
        return -1;
    if (pqm__pki_path(p, PQM_F_CLIENT_CHAIN, path, sizeof(path)) != 0)
        return pqm__err_set(e, "path too long");
    if (read_blob(p, path, &k->ca) != 0)
        return -1;
    if (load_clients(p, x, k) != 0)
        return -1;
    if (k->srv.encrypted && (x->key_passphrase_file == NULL || x->key_passphrase_file[0] == '\0'))
        return pqm__err_set(e, "%s is encrypted: give --key-passphrase-file (its first line goes "
                               "into the Secret, for the gateway's key_passphrase_file)",
                            k->srv.key);
    return k->srv.encrypted ? read_pass(p, x->key_passphrase_file, k) : 0;
}

/* --- gateway.yaml ------------------------------------------------------------------- */

/* gateway.yaml as it is written, and the gateway's own parser taking the same values, so
 * that the export never writes what a pod would refuse. */
struct gw_yaml {
    struct pqm_buf *b;
    struct pqm_gateway_config *cfg;
    int rc;
};

/* KEY: VALUE, or with LIST a "KEY:" line (when FIRST) and a "  - VALUE" item. */
static void option(struct gw_yaml *g, const char *key, const char *value, int list, int first)
{
    if (g->rc != 0 || value == NULL)
        return;
    if (pqm_gateway_config_set(g->cfg, key, value) != 0) {
        g->rc = -2;
        return;
    }
    g->rc |= pqm__buf_addf(g->b, list ? (first ? "%s:\n  - " : "  - ") : "%s: ", key);
    g->rc |= pqm__yaml_scalar(g->b, value);
    g->rc |= pqm__buf_addf(g->b, "\n");
}

/* The allow and deny rules of the gateway configuration FILE (allow_spiffe ones as
 * "spiffe=URI" allow rules). */
static void policy(struct pqm_pki *p, struct gw_yaml *g, const char *file)
{
    struct pqm_gateway_config *from = pqm_gateway_config_new();
    if (from == NULL) {
        g->rc = -1;
        return;
    }
    if (pqm_gateway_config_load_file(from, file) != 0) {
        pqm__err_set(&p->err, "--policy %s", pqm_gateway_config_error(from));
        g->rc = -3;
    } else if (from->policy == NULL || from->policy->nrules == 0) {
        pqm__err_set(&p->err, "--policy %s: no allow, deny or allow_spiffe rule", file);
        g->rc = -3;
    }
    for (int deny = 0; deny <= 1 && g->rc == 0; deny++) {
        int first = 1;
        for (size_t i = 0; i < from->policy->nrules; i++)
            if (from->policy->rules[i].deny == deny) {
                option(g, deny ? "deny" : "allow", from->policy->rules[i].text, 1, first);
                first = 0;
            }
    }
    pqm_gateway_config_free(from);
}

static void gateway_options(struct gw_yaml *g, const struct k8s *k)
{
    option(g, "listen", "0.0.0.0:" K8S_PORT, 0, 0);
    option(g, "upstream", k->upstream, 0, 0);
    option(g, "admin", K8S_ADMIN, 0, 0);
    option(g, "metrics", "0.0.0.0:" K8S_METRICS_PORT, 0, 0);
    option(g, "cert", K8S_MOUNT "/tls/tls.crt", 0, 0);
    option(g, "key", K8S_MOUNT "/tls/tls.key", 0, 0);
    option(g, "key_passphrase_file", k->srv.encrypted ? K8S_MOUNT "/tls/key.pass" : NULL, 0, 0);
    option(g, "client_ca", K8S_MOUNT "/tls/ca.crt", 0, 0);
    option(g, "crl", K8S_MOUNT "/crl/" K8S_CRL, 1, 1);
    option(g, "access_log", "-", 0, 0);
    option(g, "watch_interval", "2", 0, 0);
    option(g, "workers", "2", 0, 0);
    option(g, "max_connections", "2500", 0, 0);
    option(g, "drain_timeout", "20", 0, 0);
}

static int render_gateway_yaml(struct pqm_pki *p, const struct pqm_k8s_export *x, struct k8s *k)
{
    struct gw_yaml g = {&k->gateway_yaml, pqm_gateway_config_new(), 0};
    if (g.cfg == NULL)
        return pqm__err_set(&p->err, "out of memory");
    g.rc = pqm__buf_addf(
        g.b, "# pqmtls gateway (docs/gateway.md), written by `pqmtls export k8s`. The files are\n"
             "# in the pod's volume at " K8S_MOUNT ", which the kubelet updates in place: the\n"
             "# gateway sees the change within watch_interval and reloads them, no restart.\n"
             "# The admin listener stays on loopback; the exec probes (pqmtls probe) reach it.\n"
             "# Two workers for the container's CPU limit of 2; max_connections (per worker)\n"
             "# keeps idle connections (about 70 KiB each) within its memory limit of 512Mi.\n");
    gateway_options(&g, k);
    if (x->policy_file != NULL)
        policy(p, &g, x->policy_file);
    if (g.rc == 0 && pqm_gateway_config_check(g.cfg) != 0)
        g.rc = -2;
    if (g.rc == -2)
        pqm__err_set(&p->err, "the gateway would refuse its configuration: %s",
                     pqm_gateway_config_error(g.cfg));
    else if (g.rc == -1)
        pqm__err_set(&p->err, "out of memory");
    pqm_gateway_config_free(g.cfg);
    if (g.rc != 0)
        return -1;
    if (pqm__sha256_hex(pqm__buf_head(g.b), g.b->len, k->gateway_sha) != 0)
        return pqm__err_set(&p->err, "cannot hash gateway.yaml");
    return 0;
}

/* The API server refuses a Secret or a ConfigMap whose data exceeds 1 MiB. */
static int check_sizes(struct pqm_pki *p, const struct k8s *k)
{
    size_t secret = k->chain.len + k->key.len + k->ca.len + k->pass.len;
    size_t config = k->gateway_yaml.len + k->crl.len;
    if (secret > K8S_DATA_MAX)
        return pqm__err_set(&p->err, "the Secret's data would be %zu bytes, more than the 1 MiB "
                                     "Kubernetes allows",
                            secret);
    for (size_t i = 0; i < k->nclients; i++) {
        const struct k8s_client *c = &k->clients[i];
        size_t n = c->chain.len + c->key.len + k->server_ca.len;
        if (n > K8S_DATA_MAX)
            return pqm__err_set(&p->err, "the Secret %s would hold %zu bytes, more than the 1 "
                                         "MiB Kubernetes allows",
                                c->secret, n);
    }
    if (config > K8S_DATA_MAX)
        return pqm__err_set(&p->err, "the CRLs (%s, %zu bytes) do not fit in a ConfigMap, which "
                                     "Kubernetes limits to 1 MiB: revoke fewer or expire the "
                                     "revoked certificates first",
                            K8S_CRL, k->crl.len);
    return 0;
}

/* --- the documents ------------------------------------------------------------------ */

static int labels(struct pqm_buf *b, int indent)
{
    return pqm__buf_addf(b,
                         "%*sapp.kubernetes.io/name: " K8S_APP "\n"
                         "%*sapp.kubernetes.io/component: gateway\n"
                         "%*sapp.kubernetes.io/managed-by: pqmtls\n",
                         indent, "", indent, "", indent, "");
}

static int header(struct pqm_buf *b, const char *api, const char *kind, const char *name,
                  const char *ns)
{
    int rc = pqm__buf_addf(b, "---\napiVersion: %s\nkind: %s\nmetadata:\n  name: %s\n"
                              "  namespace: %s\n  labels:\n",
                           api, kind, name, ns);
    return rc | labels(b, 4);
}

static int doc_namespace(struct pqm_buf *b, const struct k8s *k)
{
    return pqm__buf_addf(b,
                         "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n"
                         "  labels:\n    app.kubernetes.io/managed-by: pqmtls\n"
                         "    # the Deployment meets the restricted Pod Security Standard\n"
                         "    pod-security.kubernetes.io/enforce: restricted\n",
                         k->ns);
}

static int doc_secret(struct pqm_buf *b, const struct k8s *k)
{
    int rc = header(b, "v1", "Secret", K8S_SECRET, k->ns);
    rc |= pqm__buf_addf(b, "  annotations:\n    pqmtls.io/server-name: ");
    rc |= pqm__yaml_scalar(b, k->srv.name);
    rc |= pqm__buf_addf(b, "\ntype: kubernetes.io/tls\ndata:\n");
    rc |= pqm__yaml_b64_field(b, "tls.crt", k->chain.data, k->chain.len);
    rc |= pqm__yaml_b64_field(b, "tls.key", k->key.data, k->key.len);
    rc |= pqm__yaml_b64_field(b, "ca.crt", k->ca.data, k->ca.len);
    if (k->pass.len > 0)
        rc |= pqm__yaml_b64_field(b, "key.pass", k->pass.data, k->pass.len);
    return rc;
}

/* A client identity for workloads in the namespace that call the gateway: what
 * `pqmtls request` and `pqmtls tunnel` take as --cert, --key and --ca. */
static int doc_client_secret(struct pqm_buf *b, const struct k8s *k, const struct k8s_client *c)
{
    int rc = pqm__buf_addf(b,
                           "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: %s\n"
                           "  namespace: %s\n  labels:\n"
                           "    app.kubernetes.io/component: client-identity\n"
                           "    app.kubernetes.io/managed-by: pqmtls\n"
                           "  annotations:\n    pqmtls.io/client-name: ",
                           c->secret, k->ns);
    rc |= pqm__yaml_scalar(b, c->id.name);
    rc |= pqm__buf_addf(b, "\ntype: kubernetes.io/tls\ndata:\n");
    rc |= pqm__yaml_b64_field(b, "tls.crt", c->chain.data, c->chain.len);
    rc |= pqm__yaml_b64_field(b, "tls.key", c->key.data, c->key.len);
    rc |= pqm__yaml_b64_field(b, "ca.crt", k->server_ca.data, k->server_ca.len);
    return rc;
}

static int doc_configmap(struct pqm_buf *b, const struct k8s *k)
{
    int rc = header(b, "v1", "ConfigMap", K8S_APP, k->ns);
    rc |= pqm__buf_addf(b, "data:\n  gateway.yaml: ");
    rc |= pqm__yaml_scalarn(b, pqm__buf_head(&k->gateway_yaml), k->gateway_yaml.len);
    rc |= pqm__buf_addf(b, "\n  " K8S_CRL ": ");
    rc |= pqm__yaml_scalarn(b, k->crl.data, k->crl.len);
    return rc | pqm__buf_addf(b, "\n");
}

static int probe(struct pqm_buf *b, const char *kind, const char *path, int period,
                 int failures)
{
    return pqm__buf_addf(b,
                         "          %s:\n"
                         "            exec:\n"
                         "              command: [\"pqmtls\", \"probe\", \"--timeout\", \"2\", "
                         "\"http://" K8S_ADMIN "%s\"]\n"
                         "            periodSeconds: %d\n"
                         "            timeoutSeconds: 3\n"
                         "            failureThreshold: %d\n",
                         kind, path, period, failures);
}

static int container(struct pqm_buf *b, const struct k8s *k)
{
    int rc = pqm__buf_addf(b, "      containers:\n        - name: gateway\n          image: ");
    rc |= pqm__yaml_scalar(b, k->image);
    rc |= pqm__buf_addf(
        b, "\n          imagePullPolicy: IfNotPresent\n"
           "          command: [\"pqmtls\", \"gateway\"]\n"
           "          args: [\"--config\", \"" K8S_MOUNT "/gateway.yaml\"]\n"
           "          ports:\n            - name: https\n              containerPort: " K8S_PORT "\n"
           "              protocol: TCP\n"
           "            - name: metrics\n              containerPort: " K8S_METRICS_PORT "\n"
           "              protocol: TCP\n"
           "          securityContext:\n"
           "            runAsNonRoot: true\n            runAsUser: " K8S_UID "\n"
           "            runAsGroup: " K8S_UID "\n            privileged: false\n"
           "            allowPrivilegeEscalation: false\n            readOnlyRootFilesystem: true\n"
           "            capabilities:\n              drop: [\"ALL\"]\n"
           "            seccompProfile:\n              type: RuntimeDefault\n"
           "          resources:\n"
           "            requests:\n              cpu: \"250m\"\n              memory: \"128Mi\"\n"
           "            limits:\n              cpu: \"2\"\n              memory: \"512Mi\"\n");
    rc |= probe(b, "livenessProbe", "/healthz", 10, 3);
    rc |= probe(b, "readinessProbe", "/readyz", 5, 2);
    return rc | pqm__buf_addf(b,
                              "          # the Service stops sending before SIGTERM makes the "
                              "gateway drain\n"
                              "          lifecycle:\n            preStop:\n              sleep:\n"
                              "                seconds: 5\n"
                              "          volumeMounts:\n            - name: pqmtls\n"
                              "              mountPath: " K8S_MOUNT "\n              readOnly: true\n");
}

static int item(struct pqm_buf *b, const char *key, const char *path)
{
    return pqm__buf_addf(b, "                    - key: %s\n                      path: %s\n", key,
                         path);
}

/* The Secret and the ConfigMap in one projected volume: the kubelet publishes both in one
 * ..data swap, so the gateway never sees a new CA with an old CRL. */
static int volume(struct pqm_buf *b, const struct k8s *k)
{
    int rc = pqm__buf_addf(b, "      volumes:\n        - name: pqmtls\n          projected:\n"
                              "            defaultMode: 288 # 0440: root and the group fsGroup\n"
                              "            sources:\n              - secret:\n"
                              "                  name: " K8S_SECRET "\n                  items:\n");
    rc |= item(b, "tls.crt", "tls/tls.crt");
    rc |= item(b, "tls.key", "tls/tls.key");
    rc |= item(b, "ca.crt", "tls/ca.crt");
    if (k->pass.len > 0)
        rc |= item(b, "key.pass", "tls/key.pass");
    rc |= pqm__buf_addf(b, "              - configMap:\n                  name: " K8S_APP "\n"
                           "                  items:\n");
    rc |= item(b, "gateway.yaml", "gateway.yaml");
    return rc | item(b, K8S_CRL, "crl/" K8S_CRL);
}

static int doc_deployment(struct pqm_buf *b, const struct k8s *k)
{
    int rc = header(b, "apps/v1", "Deployment", K8S_APP, k->ns);
    rc |= pqm__buf_addf(b,
                        "spec:\n  replicas: %d\n  revisionHistoryLimit: 5\n"
                        "  selector:\n    matchLabels:\n      app.kubernetes.io/name: " K8S_APP "\n"
                        "  strategy:\n    type: RollingUpdate\n"
                        "    rollingUpdate:\n      maxSurge: 1\n      maxUnavailable: 0\n"
                        "  template:\n    metadata:\n      labels:\n",
                        k->replicas);
    rc |= labels(b, 8);
    rc |= pqm__buf_addf(
        b,
        "      annotations:\n"
        "        # a new gateway.yaml rolls the pods (listen, upstream and the like need a\n"
        "        # restart); new certificates, keys and CRLs are reloaded in place\n"
        "        pqmtls.io/gateway-config-sha256: \"%s\"\n"
        "        # /metrics alone on its own listener (the admin one stays on loopback)\n"
        "        prometheus.io/scrape: \"true\"\n"
        "        prometheus.io/port: \"" K8S_METRICS_PORT "\"\n"
        "        prometheus.io/path: /metrics\n"
        "    spec:\n      automountServiceAccountToken: false\n      enableServiceLinks: false\n"
        "      terminationGracePeriodSeconds: 30\n"
        "      securityContext:\n        runAsNonRoot: true\n        runAsUser: " K8S_UID "\n"
        "        runAsGroup: " K8S_UID "\n        fsGroup: " K8S_UID "\n"
        "        seccompProfile:\n          type: RuntimeDefault\n"
        "      topologySpreadConstraints:\n        - maxSkew: 1\n"
        "          topologyKey: kubernetes.io/hostname\n"
        "          whenUnsatisfiable: ScheduleAnyway\n"
        "          labelSelector:\n            matchLabels:\n"
        "              app.kubernetes.io/name: " K8S_APP "\n",
        k->gateway_sha);
    rc |= container(b, k);
    return rc | volume(b, k);
}

static int doc_service(struct pqm_buf *b, const struct k8s *k)
{
    int lb = strcmp(k->service_type, "LoadBalancer") == 0;
    int rc = header(b, "v1", "Service", K8S_APP, k->ns);
    rc |= pqm__buf_addf(b, "spec:\n  type: %s\n", k->service_type);
    if (lb)
        rc |= pqm__buf_addf(b, "  # the client's own address reaches the gateway (its log, "
                               "X-Forwarded-For)\n  externalTrafficPolicy: Local\n");
    return rc | pqm__buf_addf(b, "  selector:\n    app.kubernetes.io/name: " K8S_APP "\n"
                                 "  ports:\n    - name: https\n      port: 443\n"
                                 "      targetPort: https\n      protocol: TCP\n");
}

static int doc_pdb(struct pqm_buf *b, const struct k8s *k)
{
    int rc = header(b, "policy/v1", "PodDisruptionBudget", K8S_APP, k->ns);
    return rc | pqm__buf_addf(b, "spec:\n  maxUnavailable: 1\n"
                                 "  unhealthyPodEvictionPolicy: AlwaysAllow\n"
                                 "  selector:\n    matchLabels:\n"
                                 "      app.kubernetes.io/name: " K8S_APP "\n");
}

static int render(struct pqm_pki *p, struct k8s *k, struct pqm_buf *b)
{
    int rc = pqm__buf_addf(
        b, "# The pqmtls gateway on Kubernetes, written by `pqmtls export k8s`: Secret\n"
           "# " K8S_SECRET " (the server's certificate chain and private key, the client CA\n"
           "# chain), ConfigMap " K8S_APP " (gateway.yaml, the CRLs), Deployment, Service and\n"
           "# PodDisruptionBudget " K8S_APP ". It holds a private key: kubectl apply -f FILE,\n"
           "# then delete FILE. After `pqmtls pki crl` or a new certificate, export and apply\n"
           "# again: the pods reload the files the kubelet updates, without a restart.\n");
    if (k->nclients > 0)
        rc |= pqm__buf_addf(b, "# Then a Secret " K8S_CLIENT_PREFIX "NAME per --client: a "
                               "workload's certificate chain, key\n# and the server CA chain "
                               "(ca.crt), to call the gateway.\n");
    if (k->create_namespace)
        rc |= doc_namespace(b, k);
    rc |= doc_secret(b, k);
    rc |= doc_configmap(b, k);
    rc |= doc_deployment(b, k);
    rc |= doc_service(b, k);
    rc |= doc_pdb(b, k);
    for (size_t i = 0; i < k->nclients; i++)
        rc |= doc_client_secret(b, k, &k->clients[i]);
    return rc != 0 ? pqm__err_set(&p->err, "out of memory") : 0;
}

int pqm_pki_export_k8s(struct pqm_pki *p, const struct pqm_k8s_export *x, char **text)
{
    struct k8s k = {0};
    struct pqm_buf b;
    if (text != NULL)
        *text = NULL;
    pqm__buf_init(&b, K8S_YAML_MAX);
    pqm__buf_init(&k.gateway_yaml, 64 * 1024);
    int rc = check_args(p, x, &k) == 0 && load_files(p, x, &k) == 0 &&
                     render_gateway_yaml(p, x, &k) == 0 && check_sizes(p, &k) == 0 &&
                     render(p, &k, &b) == 0
                 ? 0
                 : -1;
    if (rc == 0)
        rc = pqm__export_emit(p, &b, x->out_file, 0600, text);
    if (b.data != NULL)
        OPENSSL_cleanse(b.data, b.cap);
    pqm__buf_free(&b);
    k8s_free(&k);
    return rc;
}
