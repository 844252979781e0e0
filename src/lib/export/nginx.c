/* pqmtls export nginx: the nginx server block that enforces the PKI (see export.h). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <pqmtls/export.h>

#include "export/common.h"

#define PQM_NGINX_SYSTEM_CAS "/etc/ssl/certs/ca-certificates.crt"
#include "ocsp/fetch.h"
#include "pki/certbuild.h"
#include "pki/pki_internal.h"
#include "util/buf.h"
#include "util/fsutil.h"

#define PQM_NGINX_DEFAULT_SSL_DIR "/etc/nginx/ssl"

/* Text nginx reads as one token: no whitespace, quotes, braces, ';', '$', '#' or '\'. */
static int nginx_token_ok(const char *v)
{
    if (v == NULL || v[0] == '\0')
        return 0;
    for (const char *c = v; *c != '\0'; c++)
        if ((unsigned char)*c <= ' ' || (unsigned char)*c >= 0x7f || strchr("\"'{};$#\\", *c))
            return 0;
    return 1;
}

static int copy_file(struct pqm_pki *p, const char *src, const char *dst_dir, const char *name,
                     mode_t mode)
{
    char path[PATH_MAX];
    unsigned char *data = NULL;
    size_t len = 0;
    if (pqm__path_join(path, sizeof(path), dst_dir, name) != 0)
        return pqm__err_set(&p->err, "%s: path too long", dst_dir);
    if (pqm__read_file(src, PQM_EXPORT_FILE_MAX, &data, &len, &p->err) != 0)
        return -1;
    int rc = pqm__write_file_atomic(path, data, len, mode, &p->err);
    OPENSSL_cleanse(data, len);
    free(data);
    return rc;
}

static int make_dir(struct pqm_pki *p, const char *dir, mode_t mode)
{
    if (mkdir(dir, mode) != 0 && errno != EEXIST)
        return pqm__err_set(&p->err, "%s: cannot create: %s", dir, strerror(errno));
    return 0;
}

/* The server certificate's OCSP responder, "" when it names none. */
static void ocsp_url(struct pqm_pki *p, const char *chain, char *out, size_t outlen)
{
    struct pqm_err e = {{0}};
    out[0] = '\0';
    X509 *x = pqm__cert_load(chain, &e);
    if (x != NULL && pqm__ocsp_url_of(x, out, outlen) != 0)
        out[0] = '\0';
    X509_free(x);
    (void)p;
}

struct conf_in {
    const struct pqm_nginx_export *x;
    const char *ssl_dir, *name;
    int encrypted, port;
    const char *ocsp;
};

static int render(struct pqm_buf *b, const struct conf_in *c)
{
    const char *d = c->ssl_dir, *n = c->name;
    int rc = pqm__buf_addf(
        b,
        "# nginx mTLS reverse proxy for %s, written by `pqmtls export nginx`.\n"
        "# Include it in the http context (e.g. /etc/nginx/conf.d/%s.conf); the files it\n"
        "# names are in %s. nginx must run on OpenSSL >= 3.5 (ML-DSA, ML-KEM).\n"
        "server {\n"
        "    listen %d ssl;\n"
        "    server_name %s;\n\n"
        "    ssl_certificate         %s/%s.chain.pem;\n"
        "    ssl_certificate_key     %s/%s.key.pem;\n",
        n, n, d, c->port, n, d, n, d, n);
    if (c->encrypted)
        rc |= pqm__buf_addf(b, "    ssl_password_file       %s/%s.pass;\n", d, n);
    rc |= pqm__buf_addf(
        b,
        "    ssl_protocols           TLSv1.3;\n"
        "    ssl_ecdh_curve          X25519MLKEM768:X25519;\n\n"
        "    # Clients: a certificate from the client CA chain only, at most 2 deep, not\n"
        "    # revoked by the CRL of any CA of that chain (pqmtls pki crl; reload nginx after).\n"
        "    ssl_client_certificate  %s/client-ca-chain.pem;\n"
        "    ssl_verify_client       on;\n"
        "    ssl_verify_depth        2;\n"
        "    ssl_crl                 %s/client-ca-chain.crl.pem;\n",
        d, d);
    if (c->ocsp[0] != '\0')
        rc |= pqm__buf_addf(b,
                            "\n    # OCSP stapling from %s (the certificate's responder).\n"
                            "    ssl_stapling            on;\n"
                            "    ssl_stapling_verify     on;\n"
                            "    ssl_trusted_certificate %s/server-ca-chain.pem;\n",
                            c->ocsp, d);
    /* An https:// upstream's certificate is verified: nginx does not by default. */
    char tls[PATH_MAX + 512] = "";
    if (strncmp(c->x->upstream, "https://", 8) == 0)
        snprintf(tls, sizeof(tls),
                 "        # The upstream speaks TLS: its certificate is verified (nginx does "
                 "not by\n        # default) against %s.\n"
                 "        proxy_ssl_verify on;\n"
                 "        proxy_ssl_server_name on;\n"
                 "        proxy_ssl_trusted_certificate %s;\n",
                 c->x->upstream_ca != NULL ? "--upstream-ca" : "the system's CAs (Debian's path)",
                 c->x->upstream_ca != NULL ? c->x->upstream_ca : PQM_NGINX_SYSTEM_CAS);
    rc |= pqm__buf_addf(
        b,
        "\n    location / {\n"
        "        proxy_pass %s;\n"
        "%s"
        "        proxy_http_version 1.1;\n"
        "        proxy_set_header Connection \"\";\n"
        "        proxy_set_header Host $host;\n"
        "        # The client's identity. nginx never forwards a client's own copy of a\n"
        "        # header it sets, drops names with '_' (underscores_in_headers off), and\n"
        "        # sends none of those set to \"\". $ssl_client_fingerprint is SHA-1.\n"
        "        proxy_set_header X-Client-Cert-Subject     $ssl_client_s_dn;\n"
        "        proxy_set_header X-Client-Cert-Issuer      $ssl_client_i_dn;\n"
        "        proxy_set_header X-Client-Cert-Serial      $ssl_client_serial;\n"
        "        proxy_set_header X-Client-Cert-Fingerprint $ssl_client_fingerprint;\n"
        "        proxy_set_header X-Client-Cert-Verify      $ssl_client_verify;\n"
        "        proxy_set_header X-Client-Cert-Spiffe-Id   \"\";\n"
        "        proxy_set_header X-Forwarded-Client-Cert   \"\";\n"
        "        proxy_set_header Client-Cert               \"\";\n"
        "        proxy_set_header Client-Cert-Chain         \"\";\n"
        "    }\n"
        "}\n",
        c->x->upstream,
        tls);
    return rc;
}

static int check_args(struct pqm_pki *p, const struct pqm_nginx_export *x, const char **ssl_dir)
{
    struct pqm_err *e = &p->err;
    *ssl_dir = x->ssl_dir != NULL && x->ssl_dir[0] != '\0' ? x->ssl_dir : PQM_NGINX_DEFAULT_SSL_DIR;
    if (x->server_name == NULL || x->upstream == NULL || x->out_dir == NULL)
        return pqm__err_set(e, "--server-name, --upstream and --out are required");
    if ((strncmp(x->upstream, "http://", 7) != 0 && strncmp(x->upstream, "https://", 8) != 0) ||
        !nginx_token_ok(x->upstream))
        return pqm__err_set(e, "--upstream '%s' must be an http:// or https:// URL without "
                               "spaces, quotes, braces, ';', '$' or '#'",
                            x->upstream);
    if ((*ssl_dir)[0] != '/' || !nginx_token_ok(*ssl_dir))
        return pqm__err_set(e, "--ssl-dir '%s' must be an absolute path without spaces, "
                               "quotes, braces, ';', '$' or '#'",
                            *ssl_dir);
    if (x->listen_port < 0 || x->listen_port > 65535)
        return pqm__err_set(e, "--listen-port %d is not a port", x->listen_port);
    if (x->upstream_ca != NULL && (x->upstream_ca[0] != '/' || !nginx_token_ok(x->upstream_ca)))
        return pqm__err_set(e, "--upstream-ca '%s' must be an absolute path without spaces, "
                               "quotes, braces, ';', '$' or '#'",
                            x->upstream_ca);
    if (x->upstream_ca != NULL && strncmp(x->upstream, "https://", 8) != 0)
        return pqm__err_set(e, "--upstream-ca is for an https:// upstream; '%s' is plain HTTP",
                            x->upstream);
    return 0;
}

int pqm_pki_export_nginx(struct pqm_pki *p, const struct pqm_nginx_export *x)
{
    struct pqm_err *e = &p->err;
    const char *ssl_dir = NULL;
    char crl[PATH_MAX], ssl_out[PATH_MAX], path[PATH_MAX];
    char name[PATH_MAX], url[PQM_OCSP_URL_MAX];
    struct pqm_export_server srv;
    if (check_args(p, x, &ssl_dir) != 0 || pqm__export_server(p, x->server_name, &srv) != 0 ||
        pqm__export_crl_chain(p, "nginx's ssl_crl", crl, sizeof(crl)) != 0)
        return -1;
    if (pqm__path_join(ssl_out, sizeof(ssl_out), x->out_dir, "ssl") != 0)
        return pqm__err_set(e, "path too long");
    const char *chain = srv.chain, *key = srv.key;
    int encrypted = srv.encrypted;
    if (encrypted && (x->key_passphrase_file == NULL || x->key_passphrase_file[0] == '\0'))
        return pqm__err_set(e, "%s is encrypted: give --key-passphrase-file (copied for "
                               "ssl_password_file)",
                            key);
    ocsp_url(p, chain, url, sizeof(url));
    if (make_dir(p, x->out_dir, 0755) != 0 || make_dir(p, ssl_out, 0700) != 0)
        return -1;
    const struct {
        const char *src, *suffix;
        mode_t mode;
    } files[] = {
        {chain, ".chain.pem", 0644},
        {key, ".key.pem", 0600},
    };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(name, sizeof(name), "%s%s", x->server_name, files[i].suffix);
        if (copy_file(p, files[i].src, ssl_out, name, files[i].mode) != 0)
            return -1;
    }
    snprintf(name, sizeof(name), "%s.pass", x->server_name);
    if (encrypted && copy_file(p, x->key_passphrase_file, ssl_out, name, 0600) != 0)
        return -1;
    /* A key no longer encrypted leaves no passphrase of an earlier export behind. */
    if (!encrypted && (pqm__path_join(path, sizeof(path), ssl_out, name) != 0 ||
                       (unlink(path) != 0 && errno != ENOENT)))
        return pqm__err_set(e, "%s: cannot remove the passphrase of an earlier export: %s", path,
                            strerror(errno));
    const char *shared[] = {PQM_F_CLIENT_CHAIN, PQM_F_SERVER_CHAIN};
    for (size_t i = 0; i < 2; i++)
        if (pqm__pki_path(p, shared[i], path, sizeof(path)) != 0 ||
            copy_file(p, path, ssl_out, shared[i], 0644) != 0)
            return -1;
    if (copy_file(p, crl, ssl_out, "client-ca-chain.crl.pem", 0644) != 0)
        return -1;
    struct conf_in c = {x, ssl_dir, x->server_name, encrypted,
                        x->listen_port > 0 ? x->listen_port : 443, url};
    struct pqm_buf b;
    pqm__buf_init(&b, 1 << 20);
    int rc = render(&b, &c) == 0 ? 0 : pqm__err_set(e, "out of memory");
    snprintf(name, sizeof(name), "%s.conf", x->server_name);
    if (rc == 0 && pqm__path_join(path, sizeof(path), x->out_dir, name) != 0)
        rc = pqm__err_set(e, "path too long");
    if (rc == 0)
        rc = pqm__write_file_atomic(path, pqm__buf_head(&b), b.len, 0644, e);
    pqm__buf_free(&b);
    return rc;
}
