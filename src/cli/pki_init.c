/* pqmtls pki init DIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <pqmtls/pqmtls.h>

#include "commands.h"
#include "common.h"
#include "records.h"

static const char *const CMD = "pki init";

static void help(void)
{
    printf(
        "Usage: pqmtls pki init DIR [OPTIONS]\n\n"
        "Creates a three-tier PKI in DIR: a root CA (path length 2), a server intermediate CA\n"
        "(path length 0, name constraints) and a client intermediate CA (path length 0,\n"
        "optionally constrained to one SPIFFE trust domain). DIR must not exist or be empty;\n"
        "it is built beside DIR and moved into place, so it appears whole or not at all.\n\n"
        "Options:\n"
        "  --alg ALG                 algorithm of the CAs and issued keys (default ml-dsa-65):\n"
        "                            ml-dsa-65, ml-dsa-44, ml-dsa-87, slh-dsa-sha2-128s,\n"
        "                            ecdsa-p256, ecdsa-p384, ed25519, rsa-3072\n"
        "  --root-alg ALG            the root's own algorithm (e.g. slh-dsa-sha2-128s for a\n"
        "                            long-lived root)\n"
        "  --org NAME                organization (O=) of every subject (default pqmtls)\n"
        "  --server-domain DOMAIN    DNS subtree the server CA may issue for (repeatable);\n"
        "                            without one, DNS names are not constrained\n"
        "  --server-ip-range CIDR    IP range the server CA may issue for (repeatable);\n"
        "                            default: loopback only (127.0.0.0/8, ::1/128);\n"
        "                            'none': no IP address at all\n"
        "  --spiffe-trust-domain TD  the client CA permits only URIs in this trust domain\n"
        "  --profile NAME            lifetimes of the certificates this PKI issues, recorded\n"
        "                            in its inventory (pki issue and pki renew use them when\n"
        "                            not told otherwise):\n"
        "                              default       365 days, renewed when 30 days remain\n"
        "                              cloud-native  24 hours, renewed when 8 hours remain\n"
        "                              financial     90 days, renewed when 30 days remain\n"
        "                              healthcare    365 days, renewed when 122 days remain\n"
        "                              iot           3 years, renewed when 1 year remains;\n"
        "                                            CAs 10 years (intermediates), 20 (root)\n"
        "  --root-days N             root validity (default 3650; iot 7300)\n"
        "  --ca-days N               intermediate validity (default 1825; iot 3650)\n"
        "  --root-cn CN, --server-ca-cn CN, --client-ca-cn CN\n"
        "                            common names (default '<org> Root CA', ...)\n"
        "  --crl-url BASE            certificates carry a CRL distribution point\n"
        "                            BASE/<issuing CA>.crl (root-ca.crl, server-int-ca.crl,\n"
        "                            client-int-ca.crl: the DER files `pki crl` writes);\n"
        "                            serve DIR/crl/ at BASE\n"
        "  --mesh-alg ALG            also a classical mesh hierarchy in DIR/mesh for Istio's\n"
        "                            plug-in CA: ecdsa-p256, ecdsa-p384 or rsa-3072 (see\n"
        "                            `pqmtls pki mesh --help`)\n"
        "  --ocsp-url URL            issued certificates name this OCSP responder\n"
        "                            (`pqmtls ocsp serve`) in authorityInfoAccess\n"
        "                            (both can be set later: `pqmtls pki configure`)\n"
        "  --passphrase-file F       encrypt the keys with the first line of F\n"
        "                            (else $%s, else a prompt on the terminal)\n"
        "  --no-passphrase           write the keys unencrypted (still mode 0600)\n"
        "  --json                    describe the result as JSON\n\n"
        "Example:\n"
        "  pqmtls pki init ./pki --org Example --server-domain example.com \\\n"
        "      --spiffe-trust-domain cluster.local --passphrase-file pass.txt\n"
        "  pqmtls pki init ./mesh-pki --profile cloud-native --no-passphrase\n",
        PQM_PASS_ENV);
}

enum {
    O_ALG = 256, O_ROOT_ALG, O_ORG, O_DOMAIN, O_IPRANGE, O_TD, O_PROFILE, O_ROOT_DAYS, O_CA_DAYS,
    O_ROOT_CN, O_SERVER_CN, O_CLIENT_CN, O_CRL_URL, O_OCSP_URL, O_MESH_ALG, O_PASSFILE, O_NOPASS,
    O_JSON, O_HELP
};

static const struct option opts[] = {
    {"alg", required_argument, NULL, O_ALG},
    {"root-alg", required_argument, NULL, O_ROOT_ALG},
    {"org", required_argument, NULL, O_ORG},
    {"server-domain", required_argument, NULL, O_DOMAIN},
    {"server-ip-range", required_argument, NULL, O_IPRANGE},
    {"spiffe-trust-domain", required_argument, NULL, O_TD},
    {"profile", required_argument, NULL, O_PROFILE},
    {"root-days", required_argument, NULL, O_ROOT_DAYS},
    {"ca-days", required_argument, NULL, O_CA_DAYS},
    {"root-cn", required_argument, NULL, O_ROOT_CN},
    {"server-ca-cn", required_argument, NULL, O_SERVER_CN},
    {"client-ca-cn", required_argument, NULL, O_CLIENT_CN},
    {"crl-url", required_argument, NULL, O_CRL_URL},
    {"ocsp-url", required_argument, NULL, O_OCSP_URL},
    {"mesh-alg", required_argument, NULL, O_MESH_ALG},
    {"passphrase-file", required_argument, NULL, O_PASSFILE},
    {"no-passphrase", no_argument, NULL, O_NOPASS},
    {"json", no_argument, NULL, O_JSON},
    {"help", no_argument, NULL, O_HELP},
    {NULL, 0, NULL, 0},
};

/* Applies one option to the configuration; returns an exit code or -1 to go on. */
static int apply(struct pqm_pki_config *cfg, int c, const char *arg)
{
    int rc = 0;
    long days;
    switch (c) {
    case O_ALG:
        rc = pqm_pki_config_set_alg(cfg, arg);
        break;
    case O_ROOT_ALG:
        rc = pqm_pki_config_set_root_alg(cfg, arg);
        break;
    case O_ORG:
        rc = pqm_pki_config_set_org(cfg, arg);
        break;
    case O_DOMAIN:
        rc = pqm_pki_config_add_server_domain(cfg, arg);
        break;
    case O_IPRANGE:
        rc = pqm_pki_config_add_server_ip_range(cfg, arg);
        break;
    case O_TD:
        rc = pqm_pki_config_set_spiffe_trust_domain(cfg, arg);
        break;
    case O_PROFILE:
        rc = pqm_pki_config_set_profile(cfg, arg);
        break;
    case O_ROOT_DAYS:
    case O_CA_DAYS:
        if ((days = cli_parse_long(arg, 1, 36500)) < 0)
            return cli_usage(CMD, "--%s: '%s' is not a number of days (1-36500)",
                             c == O_ROOT_DAYS ? "root-days" : "ca-days", arg);
        rc = c == O_ROOT_DAYS ? pqm_pki_config_set_root_days(cfg, (int)days)
                              : pqm_pki_config_set_ca_days(cfg, (int)days);
        break;
    case O_ROOT_CN:
        rc = pqm_pki_config_set_root_cn(cfg, arg);
        break;
    case O_SERVER_CN:
        rc = pqm_pki_config_set_server_ca_cn(cfg, arg);
        break;
    case O_CLIENT_CN:
        rc = pqm_pki_config_set_client_ca_cn(cfg, arg);
        break;
    case O_CRL_URL:
        rc = pqm_pki_config_set_crl_url(cfg, arg);
        break;
    case O_OCSP_URL:
        rc = pqm_pki_config_set_ocsp_url(cfg, arg);
        break;
    default:
        return -1;
    }
    return rc == 0 ? -1 : cli_usage(CMD, "%s", pqm_pki_config_error(cfg));
}

static void print_profile(struct pqm_pki *pki)
{
    struct pqm_lifetimes lt;
    char life[32], within[32];
    if (pqm_pki_get_lifetimes(pki, &lt) != 0)
        return;
    cli_format_duration(lt.leaf_lifetime, life, sizeof(life));
    cli_format_duration(lt.renew_within, within, sizeof(within));
    printf("Profile %s: certificates are issued for %s and renewed when %s remain "
           "(pqmtls pki renew).\n",
           lt.profile, life, within);
}

int cmd_pki_init(int argc, char **argv)
{
    struct pqm_pki_config *cfg = pqm_pki_config_new();
    struct pqm_pki *pki = pqm_pki_new();
    struct cli_pass pass;
    const char *passfile = NULL, *mesh_alg = NULL;
    int nopass = 0, json = 0, rc = EXIT_FAIL, c;

    cli_pass_clear(&pass);
    if (cfg == NULL || pki == NULL) {
        rc = cli_fail(CMD, "out of memory");
        goto out;
    }
    cli_getopt_reset();
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case O_HELP:
            help();
            rc = EXIT_OK;
            goto out;
        case O_PASSFILE:
            passfile = optarg;
            break;
        case O_NOPASS:
            nopass = 1;
            break;
        case O_JSON:
            json = 1;
            break;
        case O_MESH_ALG:
            if (!pqm_pki_mesh_alg_valid(optarg)) {
                rc = cli_usage(CMD, "--mesh-alg '%s': the mesh hierarchy is ecdsa-p256, "
                                    "ecdsa-p384 or rsa-3072 (Istio's proxies cannot verify "
                                    "ML-DSA yet)",
                               optarg);
                goto out;
            }
            mesh_alg = optarg;
            break;
        case ':':
            rc = cli_usage(CMD, "%s needs a value", argv[optind - 1]);
            goto out;
        case '?':
            rc = cli_usage(CMD, "unknown option '%s'", argv[optind - 1]);
            goto out;
        default:
            if ((rc = apply(cfg, c, optarg)) >= 0)
                goto out;
            break;
        }
    }
    if (optind != argc - 1) {
        rc = cli_usage(CMD, optind >= argc ? "DIR is required" : "one DIR only");
        goto out;
    }
    if (nopass && passfile != NULL) {
        rc = cli_usage(CMD, "--passphrase-file and --no-passphrase exclude each other");
        goto out;
    }
    if (nopass) {
        pqm_pki_config_insecure_no_passphrase(cfg);
    } else {
        if (cli_read_pass(CMD, passfile, PQM_PASS_ENV, "New passphrase for the CA keys: ", 1,
                          &pass) != 0)
            goto out;
        if (!pass.have) {
            rc = cli_usage(CMD, "no passphrase: give --passphrase-file F, set %s, run on a "
                                "terminal, or choose --no-passphrase",
                           PQM_PASS_ENV);
            goto out;
        }
        if (pqm_pki_config_set_passphrase(cfg, pass.buf, pass.len) != 0) {
            rc = cli_fail(CMD, "%s", pqm_pki_config_error(cfg));
            goto out;
        }
    }
    const char *dir = argv[optind];
    if (pqm_pki_create(pki, dir, cfg) != 0) {
        rc = cli_fail(CMD, "%s", pqm_pki_error(pki));
        goto out;
    }
    if (mesh_alg != NULL && pqm_pki_create_mesh(pki, mesh_alg, 0) != 0) {
        rc = cli_fail(CMD, "%s was created, but not its mesh hierarchy: %s (pqmtls pki mesh "
                           "--pki %s makes it)",
                      dir, pqm_pki_error(pki), dir);
        goto out;
    }
    rc = records_print(pki, dir, json ? RECORDS_JSON : RECORDS_CREATED, 0) == 0 ? EXIT_OK
                                                                               : EXIT_FAIL;
    if (rc == EXIT_OK && !json)
        print_profile(pki);
out:
    cli_pass_clear(&pass);
    pqm_pki_free(pki);
    pqm_pki_config_free(cfg);
    return rc;
}
