/* pqmtls export nginx | istio */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pqmtls/export.h>
#include <pqmtls/pqmtls.h>

#include "commands.h"
#include "common.h"

enum { O_PKI = 256, O_SERVER_NAME, O_UPSTREAM, O_SSL_DIR, O_OUT, O_KEYPASS, O_PORT, O_UPCA, O_HELP };

static const struct option nginx_opts[] = {
    {"pki", required_argument, NULL, O_PKI},
    {"server-name", required_argument, NULL, O_SERVER_NAME},
    {"upstream", required_argument, NULL, O_UPSTREAM},
    {"ssl-dir", required_argument, NULL, O_SSL_DIR},
    {"out", required_argument, NULL, O_OUT},
    {"key-passphrase-file", required_argument, NULL, O_KEYPASS},
    {"listen-port", required_argument, NULL, O_PORT},
    {"upstream-ca", required_argument, NULL, O_UPCA},
    {"help", no_argument, NULL, O_HELP},
    {NULL, 0, NULL, 0},
};

static void nginx_help(void)
{
    printf("Usage: pqmtls export nginx --pki DIR --server-name NAME --upstream URL\n"
           "                           [--ssl-dir /etc/nginx/ssl] [--out nginx]\n"
           "                           [--key-passphrase-file F] [--listen-port 443]\n"
           "                           [--upstream-ca FILE]\n\n"
           "Writes OUT/NAME.conf, an nginx server block (http context) that terminates mTLS\n"
           "for NAME as the pqmtls gateway does, and copies the files it names into OUT/ssl/\n"
           "(keys and passphrases mode 0600, certificates and CRLs 0644), to be installed in\n"
           "--ssl-dir on the nginx host:\n"
           "  - TLS 1.3 only, X25519MLKEM768 first (ssl_ecdh_curve), NAME's certificate chain\n"
           "    and key (ssl_password_file when the key is encrypted);\n"
           "  - ssl_verify_client on against client-ca-chain.pem, ssl_verify_depth 2, ssl_crl\n"
           "    with the CRLs of the whole client chain (run `pqmtls pki crl` first, and\n"
           "    again before nextUpdate: nginx reads them at start and reload);\n"
           "  - OCSP stapling when NAME's certificate names a responder (pki --ocsp-url);\n"
           "  - X-Client-Cert-Subject, -Issuer, -Serial, -Fingerprint, -Verify to the\n"
           "    upstream, any copy the client sent removed, and -Spiffe-Id,\n"
           "    X-Forwarded-Client-Cert, Client-Cert and Client-Cert-Chain cleared;\n"
           "  - with an https:// upstream, its certificate verified (proxy_ssl_verify on)\n"
           "    against --upstream-ca, a file on the nginx host (default Debian's system\n"
           "    bundle /etc/ssl/certs/ca-certificates.crt; RHEL: /etc/pki/tls/certs/ca-bundle.crt).\n"
           "nginx must run on OpenSSL >= 3.5 to verify ML-DSA certificates.\n\n"
           "Example:\n"
           "  pqmtls export nginx --pki ./pki --server-name api.example.com \\\n"
           "      --upstream http://backend:8080 --out ./nginx\n"
           "  install -m 0700 -d /etc/nginx/ssl && cp -p nginx/ssl/* /etc/nginx/ssl/\n"
           "  cp nginx/api.example.com.conf /etc/nginx/conf.d/ && nginx -t && nginx -s reload\n");
}

int cmd_export_nginx(int argc, char **argv)
{
    static const char *const CMD = "export nginx";
    const char *dir = NULL;
    struct pqm_nginx_export x = {.out_dir = "nginx"};
    long port = 0;
    int c;
    cli_getopt_reset();
    while ((c = getopt_long(argc, argv, ":", nginx_opts, NULL)) != -1) {
        switch (c) {
        case O_PKI:
            dir = optarg;
            break;
        case O_SERVER_NAME:
            x.server_name = optarg;
            break;
        case O_UPSTREAM:
            x.upstream = optarg;
            break;
        case O_SSL_DIR:
            x.ssl_dir = optarg;
            break;
        case O_OUT:
            x.out_dir = optarg;
            break;
        case O_KEYPASS:
            x.key_passphrase_file = optarg;
            break;
        case O_PORT:
            if ((port = cli_parse_long(optarg, 1, 65535)) < 0)
                return cli_usage(CMD, "--listen-port '%s' is not a port", optarg);
            x.listen_port = (int)port;
            break;
        case O_UPCA:
            x.upstream_ca = optarg;
            break;
        case O_HELP:
            nginx_help();
            return EXIT_OK;
        default:
            return cli_bad_option(CMD, c, argv);
        }
    }
    if (optind != argc)
        return cli_usage(CMD, "unexpected argument '%s'", argv[optind]);
    if (dir == NULL || x.server_name == NULL || x.upstream == NULL)
        return cli_usage(CMD, "--pki, --server-name and --upstream are required");
    struct pqm_pki *pki = cli_pki_open(CMD, dir);
    if (pki == NULL)
        return EXIT_FAIL;
    int rc = EXIT_OK;
    if (pqm_pki_export_nginx(pki, &x) != 0)
        rc = cli_fail(CMD, "%s", pqm_pki_error(pki));
    else
        printf("wrote %s/%s.conf and %s/ssl/ (install them in %s)\n", x.out_dir, x.server_name,
               x.out_dir, x.ssl_dir != NULL ? x.ssl_dir : "/etc/nginx/ssl");
    pqm_pki_free(pki);
    return rc;
}

enum { I_PKI = 256, I_NAMESPACE, I_POLICY, I_OUT, I_HELP };

static const struct option istio_opts[] = {
    {"pki", required_argument, NULL, I_PKI},
    {"namespace", required_argument, NULL, I_NAMESPACE},
    {"policy", required_argument, NULL, I_POLICY},
    {"out", required_argument, NULL, I_OUT},
    {"help", no_argument, NULL, I_HELP},
    {NULL, 0, NULL, 0},
};

static void istio_help(void)
{
    printf("Usage: pqmtls export istio --pki DIR --namespace NS [--policy FILE] [--out FILE]\n\n"
           "Writes one multi-document YAML (to FILE, or standard output) that makes Istio\n"
           "enforce mutual TLS in namespace NS:\n"
           "  PeerAuthentication default     mtls.mode STRICT: plaintext is refused;\n"
           "  DestinationRule default-mtls   *.NS.svc.cluster.local with ISTIO_MUTUAL;\n"
           "  AuthorizationPolicy pqmtls-allow (and pqmtls-deny) with the principals allowed.\n"
           "Without --policy the principals are the SPIFFE IDs of the PKI's valid client\n"
           "certificates, in Istio's form (cluster.local/ns/production/sa/frontend-service).\n"
           "--policy FILE takes the allow, deny and allow_spiffe rules of a gateway\n"
           "configuration instead (docs/gateway.md): spiffe= and principal= become\n"
           "principals, namespace= namespaces, path= paths (a prefix gets Istio's '*'),\n"
           "method= methods; dns=, cn= and o= have no Istio equivalent and are refused.\n"
           "The workloads' own certificates come from Istio's CA: see `pqmtls export\n"
           "istio-cacerts` for making it issue under this PKI.\n");
}

int cmd_export_istio(int argc, char **argv)
{
    static const char *const CMD = "export istio";
    const char *dir = NULL;
    struct pqm_istio_export x = {0};
    int c;
    cli_getopt_reset();
    while ((c = getopt_long(argc, argv, ":", istio_opts, NULL)) != -1) {
        switch (c) {
        case I_PKI:
            dir = optarg;
            break;
        case I_NAMESPACE:
            x.namespace_ = optarg;
            break;
        case I_POLICY:
            x.policy_file = optarg;
            break;
        case I_OUT:
            x.out_file = strcmp(optarg, "-") == 0 ? NULL : optarg;
            break;
        case I_HELP:
            istio_help();
            return EXIT_OK;
        default:
            return cli_bad_option(CMD, c, argv);
        }
    }
    if (optind != argc)
        return cli_usage(CMD, "unexpected argument '%s'", argv[optind]);
    if (dir == NULL || x.namespace_ == NULL)
        return cli_usage(CMD, "--pki and --namespace are required");
    struct pqm_pki *pki = cli_pki_open(CMD, dir);
    if (pki == NULL)
        return EXIT_FAIL;
    char *text = NULL;
    int rc = EXIT_OK;
    if (pqm_pki_export_istio(pki, &x, &text) != 0)
        rc = cli_fail(CMD, "%s", pqm_pki_error(pki));
    else if (text != NULL)
        rc = cli_write_stdout(CMD, text);
    else
        fprintf(stderr, "wrote %s\n", x.out_file);
    free(text);
    pqm_pki_free(pki);
    return rc;
}

/* --- pqmtls export istio-cacerts ------------------------------------------------------ */

enum { C_PKI = 256, C_OUT, C_PASSFILE, C_HELP };

static const struct option cacerts_opts[] = {
    {"pki", required_argument, NULL, C_PKI},
    {"out", required_argument, NULL, C_OUT},
    {"passphrase-file", required_argument, NULL, C_PASSFILE},
    {"help", no_argument, NULL, C_HELP},
    {NULL, 0, NULL, 0},
};

static void cacerts_help(void)
{
    printf("Usage: pqmtls export istio-cacerts --pki DIR [--out FILE] [--passphrase-file F]\n\n"
           "Writes the Kubernetes Secret 'cacerts' in istio-system that Istio's plug-in CA\n"
           "reads (ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem), to FILE (mode\n"
           "0600: it holds a CA key) or standard output.\n\n"
           "Istio's proxies (Envoy, on BoringSSL) cannot verify ML-DSA signatures yet, so\n"
           "the Secret is made from the PKI's classical mesh hierarchy (`pqmtls pki mesh`,\n"
           "or pki init --mesh-alg), never from the post-quantum CAs; without one the\n"
           "command refuses and says how to make it. Before writing it checks what Istio\n"
           "would: ECDSA P-256/P-384 or RSA >= 2048 keys, the key matching ca-cert.pem, the\n"
           "intermediate signed by the root, both valid now.\n"
           "Then: kubectl apply -f FILE, restart istiod, and delete FILE.\n");
}

int cmd_export_istio_cacerts(int argc, char **argv)
{
    static const char *const CMD = "export istio-cacerts";
    const char *dir = NULL, *out = NULL, *passfile = NULL;
    int c;
    cli_getopt_reset();
    while ((c = getopt_long(argc, argv, ":", cacerts_opts, NULL)) != -1) {
        switch (c) {
        case C_PKI:
            dir = optarg;
            break;
        case C_OUT:
            out = strcmp(optarg, "-") == 0 ? NULL : optarg;
            break;
        case C_PASSFILE:
            passfile = optarg;
            break;
        case C_HELP:
            cacerts_help();
            return EXIT_OK;
        default:
            return cli_bad_option(CMD, c, argv);
        }
    }
    if (optind != argc)
        return cli_usage(CMD, "unexpected argument '%s'", argv[optind]);
    if (dir == NULL)
        return cli_usage(CMD, "--pki DIR is required");
    struct pqm_pki *pki = cli_pki_open(CMD, dir);
    if (pki == NULL)
        return EXIT_FAIL;
    struct cli_pass pass;
    cli_pass_clear(&pass);
    char *text = NULL;
    int rc = cli_pki_unlock(CMD, pki, passfile, &pass);
    if (rc == -1) {
        rc = EXIT_OK;
        if (pqm_pki_export_istio_cacerts(pki, out, &text) != 0)
            rc = cli_fail(CMD, "%s", pqm_pki_error(pki));
        else if (text != NULL)
            rc = cli_write_stdout(CMD, text);
        else
            fprintf(stderr, "wrote %s (mode 0600: it holds the mesh CA key)\n", out);
    }
    if (text != NULL) {
        explicit_bzero(text, strlen(text));
        free(text);
    }
    cli_pass_clear(&pass);
    pqm_pki_free(pki);
    return rc;
}
