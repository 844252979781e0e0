/* The mTLS client (see include/pqmtls/client.h). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pqmtls/client.h>

#include "pki/keyfile.h"
#include "tls/server.h"
#include "tls/trust.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/secret.h"
#include "util/strlist.h"

#define PQM_CLIENT_MAX_CRLS 16
#define PQM_DEBIAN_CA_BUNDLE "/etc/ssl/certs/ca-certificates.crt"
#define PQM_CLIENT_MAX_PINS 16
#define PQM_GROUPS_DEFAULT "X25519MLKEM768:X25519"
#define PQM_GROUPS_PQ_ONLY "X25519MLKEM768:SecP256r1MLKEM768:SecP384r1MLKEM1024"

/* What a load made: shared by the connections made with it. */
struct loaded {
    atomic_int refs;
    SSL_CTX *ctx;
    struct pqm_trust trust;
    unsigned char pins[PQM_CLIENT_MAX_PINS][32];
    size_t npins;
    int require_pq;
};

struct pqm_client_config {
    struct pqm_err err;
    char *cert, *key, *ca, *groups;
    struct pqm_secret pass;
    char *crls[PQM_CLIENT_MAX_CRLS];
    size_t ncrl;
    unsigned char pins[PQM_CLIENT_MAX_PINS][32];
    size_t npins;
    int require_pq, system_ca;
    struct loaded *loaded;
    uint64_t stamp; /* of the files, taken before the last load read them */
};

struct pqm_conn {
    struct pqm_err err;
    struct loaded *l;
    SSL *ssl;
    int fd, own_fd;
    int handshake_done;
    struct pqm_verdict verdict; /* why the server's certificate was refused */
    char subject[512], group[48], sigalg[48];
};

/* --- configuration ------------------------------------------------------------------ */

struct pqm_client_config *pqm_client_config_new(void)
{
    return calloc(1, sizeof(struct pqm_client_config));
}

static void loaded_release(struct loaded *l)
{
    if (l == NULL || atomic_fetch_sub(&l->refs, 1) > 1)
        return;
    SSL_CTX_free(l->ctx);
    pqm__trust_free(&l->trust);
    free(l);
}

void pqm_client_config_free(struct pqm_client_config *cfg)
{
    if (cfg == NULL)
        return;
    free(cfg->cert);
    free(cfg->key);
    free(cfg->ca);
    free(cfg->groups);
    for (size_t i = 0; i < cfg->ncrl; i++)
        free(cfg->crls[i]);
    pqm__secret_clear(&cfg->pass);
    loaded_release(cfg->loaded);
    free(cfg);
}

const char *pqm_client_config_error(const struct pqm_client_config *cfg)
{
    return pqm__err_str(&cfg->err);
}

static int set_str(struct pqm_client_config *cfg, char **dst, const char *v, const char *what)
{
    if (v == NULL || v[0] == '\0')
        return pqm__err_set(&cfg->err, "%s: empty", what);
    char *copy = strdup(v);
    if (copy == NULL)
        return pqm__err_set(&cfg->err, "out of memory");
    free(*dst);
    *dst = copy;
    return 0;
}

int pqm_client_config_set_cert_file(struct pqm_client_config *cfg, const char *path)
{
    return set_str(cfg, &cfg->cert, path, "certificate file");
}

int pqm_client_config_set_key_file(struct pqm_client_config *cfg, const char *path)
{
    return set_str(cfg, &cfg->key, path, "key file");
}

int pqm_client_config_set_key_passphrase(struct pqm_client_config *cfg, const char *pass,
                                         size_t len)
{
    return pqm__secret_set(&cfg->pass, pass, len, &cfg->err);
}

int pqm_client_config_set_ca_file(struct pqm_client_config *cfg, const char *path)
{
    return set_str(cfg, &cfg->ca, path, "CA file");
}

int pqm_client_config_add_crl_file(struct pqm_client_config *cfg, const char *path)
{
    if (cfg->ncrl == PQM_CLIENT_MAX_CRLS)
        return pqm__err_set(&cfg->err, "at most %d CRL files", PQM_CLIENT_MAX_CRLS);
    char *copy = NULL;
    if (set_str(cfg, &copy, path, "CRL file") != 0)
        return -1;
    cfg->crls[cfg->ncrl++] = copy;
    return 0;
}

int pqm_client_config_set_groups(struct pqm_client_config *cfg, const char *groups)
{
    return set_str(cfg, &cfg->groups, groups, "groups");
}

void pqm_client_config_use_system_ca(struct pqm_client_config *cfg)
{
    cfg->system_ca = 1;
}

void pqm_client_config_require_pq(struct pqm_client_config *cfg)
{
    cfg->require_pq = 1;
}

int pqm_client_config_add_pin(struct pqm_client_config *cfg, const char *pin)
{
    if (cfg->npins == PQM_CLIENT_MAX_PINS)
        return pqm__err_set(&cfg->err, "at most %d pins", PQM_CLIENT_MAX_PINS);
    if (pin == NULL || strncmp(pin, "sha256:", 7) != 0)
        return pqm__err_set(&cfg->err, "pin '%s': sha256:BASE64 expected", pin ? pin : "");
    const char *b64 = pin + 7;
    unsigned char out[64];
    size_t len = strlen(b64);
    int n = len == 44 ? EVP_DecodeBlock(out, (const unsigned char *)b64, (int)len) : -1;
    /* 44 base64 characters with one '=' of padding: 32 bytes (33 decoded, the last 0). */
    if (n != 33 || b64[43] != '=' || b64[42] == '=')
        return pqm__err_set(&cfg->err, "pin '%s': the base64 of a 32-byte SHA-256 expected", pin);
    memcpy(cfg->pins[cfg->npins++], out, 32);
    return 0;
}

/* The server's certificate, against the CA file only (tls/trust.h). */
static int verify_server(X509_STORE_CTX *xs, void *arg)
{
    struct loaded *l = arg;
    SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
    struct pqm_conn *c = ssl != NULL ? SSL_get_app_data(ssl) : NULL;
    struct pqm_verdict v = {NULL, ""};
    if (pqm__trust_verify(&l->trust, xs, &v) == 1)
        return 1;
    if (c != NULL)
        c->verdict = v;
    return 0;
}

/* OpenSSL's default locations (SSL_CERT_FILE, SSL_CERT_DIR, or its own directory), and
 * Debian's bundle, which an OpenSSL built with its own prefix does not look at. */
static int load_system_ca(X509_STORE *store, struct pqm_err *e)
{
    if (X509_STORE_set_default_paths(store) != 1)
        return pqm__err_ossl(e, "cannot load the system's CA store");
    if (getenv("SSL_CERT_FILE") == NULL && access(PQM_DEBIAN_CA_BUNDLE, R_OK) == 0 &&
        X509_STORE_load_file(store, PQM_DEBIAN_CA_BUNDLE) != 1)
        return pqm__err_ossl(e, "%s: cannot load the system's CA bundle", PQM_DEBIAN_CA_BUNDLE);
    ERR_clear_error();
    return 0;
}

static struct loaded *build(struct pqm_client_config *cfg)
{
    struct pqm_err *e = &cfg->err;
    struct loaded *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        pqm__err_set(e, "out of memory");
        return NULL;
    }
    atomic_init(&l->refs, 1);
    l->trust.depth = 2;
    l->trust.purpose = X509_PURPOSE_SSL_SERVER;
    l->require_pq = cfg->require_pq;
    memcpy(l->pins, cfg->pins, sizeof(l->pins));
    l->npins = cfg->npins;
    const char *groups = cfg->groups != NULL ? cfg->groups
                         : cfg->require_pq   ? PQM_GROUPS_PQ_ONLY
                                             : PQM_GROUPS_DEFAULT;
    EVP_PKEY *key = NULL;
    l->ctx = SSL_CTX_new_ex(NULL, NULL, TLS_client_method());
    if (l->ctx == NULL || SSL_CTX_set_min_proto_version(l->ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(l->ctx, TLS1_3_VERSION) != 1) {
        pqm__err_ossl(e, "cannot set up TLS 1.3");
        goto fail;
    }
    if (SSL_CTX_set1_groups_list(l->ctx, groups) != 1) {
        pqm__err_ossl(e, "groups '%s': not supported", groups);
        goto fail;
    }
    if (cfg->cert == NULL || cfg->key == NULL) {
        pqm__err_set(e, "a client certificate and its key are required");
        goto fail;
    }
    if (SSL_CTX_use_certificate_chain_file(l->ctx, cfg->cert) != 1) {
        pqm__err_ossl(e, "%s: cannot load the client certificate", cfg->cert);
        goto fail;
    }
    key = pqm__key_load(cfg->key, cfg->pass.buf, cfg->pass.len, e);
    if (key == NULL)
        goto fail;
    if (SSL_CTX_use_PrivateKey(l->ctx, key) != 1 || SSL_CTX_check_private_key(l->ctx) != 1) {
        pqm__err_ossl(e, "%s: the key does not match the certificate %s", cfg->key, cfg->cert);
        goto fail;
    }
    if (pqm__trust_load(&l->trust, cfg->ca, (const char *const *)cfg->crls, cfg->ncrl, "--ca",
                        e) != 0)
        goto fail;
    if (cfg->system_ca && load_system_ca(l->trust.store, e) != 0)
        goto fail;
    if (SSL_CTX_set1_verify_cert_store(l->ctx, l->trust.store) != 1) {
        pqm__err_ossl(e, "cannot set the CA store");
        goto fail;
    }
    SSL_CTX_set_verify(l->ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_cert_verify_callback(l->ctx, verify_server, l);
    SSL_CTX_set_mode(l->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    EVP_PKEY_free(key);
    return l;
fail:
    EVP_PKEY_free(key);
    loaded_release(l);
    return NULL;
}

/* The identity of the files a load reads (util/fsutil.h). */
static uint64_t files_stamp(const struct pqm_client_config *cfg)
{
    const char *files[3 + PQM_CLIENT_MAX_CRLS] = {cfg->cert, cfg->key, cfg->ca};
    size_t n = 3;
    for (size_t i = 0; i < cfg->ncrl; i++)
        files[n++] = cfg->crls[i];
    return pqm__files_stamp(files, n);
}

int pqm_client_config_changed(const struct pqm_client_config *cfg)
{
    return files_stamp(cfg) != cfg->stamp;
}

int pqm_client_config_load(struct pqm_client_config *cfg)
{
    pqm__err_clear(&cfg->err);
    /* Taken before the files are read: a file replaced while they are read (a key
     * renewed just after its certificate) changes it again, and the next look reloads. */
    cfg->stamp = files_stamp(cfg);
    struct loaded *l = build(cfg);
    if (l == NULL)
        return -1;
    loaded_release(cfg->loaded);
    cfg->loaded = l;
    return 0;
}

/* --- connections ------------------------------------------------------------------- */

struct pqm_conn *pqm_conn_new(struct pqm_client_config *cfg)
{
    if (cfg == NULL || cfg->loaded == NULL)
        return NULL;
    struct pqm_conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->fd = -1;
    c->l = cfg->loaded;
    atomic_fetch_add(&c->l->refs, 1);
    return c;
}

void pqm_conn_free(struct pqm_conn *c)
{
    if (c == NULL)
        return;
    SSL_free(c->ssl);
    ERR_clear_error();
    if (c->own_fd && c->fd >= 0)
        close(c->fd);
    loaded_release(c->l);
    free(c);
}

const char *pqm_conn_error(const struct pqm_conn *c)
{
    return pqm__err_str(&c->err);
}

int pqm_conn_fd(const struct pqm_conn *c)
{
    return c->fd;
}

static int is_ip(const char *s)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

int pqm_conn_connect_fd(struct pqm_conn *c, int fd, int own, const char *servername)
{
    if (c->ssl != NULL)
        return pqm__err_set(&c->err, "the connection is already in use");
    if (servername == NULL || servername[0] == '\0')
        return pqm__err_set(&c->err, "a server name is required");
    c->fd = fd;
    c->own_fd = own;
    c->ssl = SSL_new(c->l->ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, fd) != 1)
        return pqm__err_ossl(&c->err, "out of memory");
    SSL_set_app_data(c->ssl, c);
    /* The name the certificate must carry: a DNS name (also sent as SNI) or an IP. */
    int ok = is_ip(servername)
                 ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), servername) == 1
                 : SSL_set_tlsext_host_name(c->ssl, servername) == 1 &&
                       SSL_set1_host(c->ssl, servername) == 1;
    if (!ok)
        return pqm__err_ossl(&c->err, "server name '%s': cannot be checked", servername);
    SSL_set_connect_state(c->ssl);
    return pqm_conn_handshake(c);
}

int pqm_conn_connect(struct pqm_conn *c, const char *host, const char *port,
                     const char *servername)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0)
        return pqm__err_set(&c->err, "%s:%s: %s", host, port, gai_strerror(rc));
    int fd = -1, err = 0;
    for (struct addrinfo *a = res; a != NULL; a = a->ai_next) {
        fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            err = errno;
            continue;
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
            break;
        err = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        return pqm__err_set(&c->err, "%s:%s: cannot connect: %s", host, port, strerror(err));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return pqm_conn_connect_fd(c, fd, 1, servername != NULL ? servername : host);
}

static int spki_pin_ok(const struct loaded *l, X509 *leaf)
{
    unsigned char *der = NULL, md[32];
    int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(leaf), &der);
    int ok = len > 0 && EVP_Digest(der, (size_t)len, md, NULL, EVP_sha256(), NULL) == 1;
    OPENSSL_free(der);
    for (size_t i = 0; ok && i < l->npins; i++)
        if (memcmp(md, l->pins[i], 32) == 0)
            return 1;
    return 0;
}

/* After the handshake: what the handshake itself does not check. */
static int after_handshake(struct pqm_conn *c)
{
    const char *g = SSL_get0_group_name(c->ssl);
    snprintf(c->group, sizeof(c->group), "%s", g != NULL ? g : "");
    int nid = NID_undef;
    if (SSL_get_peer_signature_type_nid(c->ssl, &nid) == 1 && nid != NID_undef)
        snprintf(c->sigalg, sizeof(c->sigalg), "%s", OBJ_nid2sn(nid));
    X509 *leaf = SSL_get0_peer_certificate(c->ssl);
    if (leaf != NULL)
        pqm__name_text(X509_get_subject_name(leaf), c->subject, sizeof(c->subject));
    if (c->l->require_pq && !pqm__tls_group_is_pq(c->group))
        return pqm__err_set(&c->err, "the server negotiated %s, not a post-quantum group "
                                     "(--require-pq)",
                            c->group[0] ? c->group : "no group");
    if (c->l->npins > 0 && (leaf == NULL || !spki_pin_ok(c->l, leaf)))
        return pqm__err_set(&c->err, "the server's public key does not match the pin");
    c->handshake_done = 1;
    return 0;
}

static int ssl_result(struct pqm_conn *c, int r, const char *what)
{
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ)
        return PQM_WANT_POLLIN;
    if (e == SSL_ERROR_WANT_WRITE)
        return PQM_WANT_POLLOUT;
    if (c->verdict.code != NULL) {
        pqm__err_set(&c->err, "the server's certificate is refused: %s", c->verdict.reason);
    } else {
        unsigned long oe = ERR_peek_error();
        if (oe != 0 && c->l->require_pq && !c->handshake_done)
            pqm__err_set(&c->err, "%s failed: %s (with --require-pq only post-quantum groups "
                                  "are offered: the server may support none)",
                         what, ERR_reason_error_string(oe));
        else if (oe != 0)
            pqm__err_set(&c->err, "%s failed: %s", what, ERR_reason_error_string(oe));
        else if (e == SSL_ERROR_SYSCALL && errno != 0)
            pqm__err_set(&c->err, "%s failed: %s", what, strerror(errno));
        else
            pqm__err_set(&c->err, "%s failed: the server closed the connection", what);
    }
    ERR_clear_error();
    return -1;
}

int pqm_conn_handshake(struct pqm_conn *c)
{
    if (c->ssl == NULL)
        return pqm__err_set(&c->err, "not connected");
    if (c->handshake_done)
        return 0;
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    if (r != 1)
        return ssl_result(c, r, "the TLS handshake");
    return after_handshake(c);
}

ssize_t pqm_conn_read(struct pqm_conn *c, void *buf, size_t len)
{
    if (!c->handshake_done) {
        int rc = pqm_conn_handshake(c);
        if (rc != 0)
            return rc;
    }
    ERR_clear_error();
    int r = SSL_read(c->ssl, buf, len > 0x40000000 ? 0x40000000 : (int)len);
    if (r > 0)
        return r;
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_ZERO_RETURN)
        return 0;
    if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 && errno == 0)
        return 0; /* a close without close_notify: the end, HTTP's framing says if early */
    return ssl_result(c, r, "reading");
}

size_t pqm_conn_pending(const struct pqm_conn *c)
{
    if (c->ssl == NULL || !c->handshake_done)
        return 0;
    int n = SSL_pending(c->ssl);
    return n > 0 ? (size_t)n : 0;
}

ssize_t pqm_conn_write(struct pqm_conn *c, const void *buf, size_t len)
{
    if (!c->handshake_done) {
        int rc = pqm_conn_handshake(c);
        if (rc != 0)
            return rc;
    }
    if (len == 0)
        return 0;
    ERR_clear_error();
    int r = SSL_write(c->ssl, buf, len > 0x40000000 ? 0x40000000 : (int)len);
    if (r > 0)
        return r;
    return ssl_result(c, r, "writing");
}

int pqm_conn_close(struct pqm_conn *c)
{
    int rc = 0;
    if (c->ssl != NULL && c->handshake_done) {
        ERR_clear_error();
        int r = SSL_shutdown(c->ssl);
        if (r < 0) {
            rc = ssl_result(c, r, "closing");
            if (rc == PQM_WANT_POLLIN || rc == PQM_WANT_POLLOUT)
                return rc;
        }
    }
    ERR_clear_error();
    if (c->own_fd && c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->own_fd = 0;
    return rc == -1 ? -1 : 0;
}

const char *pqm_conn_version(const struct pqm_conn *c)
{
    return c->ssl != NULL ? SSL_get_version(c->ssl) : "";
}

const char *pqm_conn_group(const struct pqm_conn *c)
{
    return c->group;
}

const char *pqm_conn_sigalg(const struct pqm_conn *c)
{
    return c->sigalg;
}

const char *pqm_conn_peer_subject(const struct pqm_conn *c)
{
    return c->subject;
}
