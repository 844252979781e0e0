/* pqmtls pki configure */
#include <stdio.h>
#include <string.h>

#include <pqmtls/pqmtls.h>

#include "commands.h"
#include "common.h"

#include <stdlib.h>

static const char *const CMD = "pki configure";

enum { O_PKI = 256, O_CRL_URL, O_OCSP_URL, O_HELP };

static const struct option opts[] = {
    {"pki", required_argument, NULL, O_PKI},
    {"crl-url", required_argument, NULL, O_CRL_URL},
    {"ocsp-url", required_argument, NULL, O_OCSP_URL},
    {"help", no_argument, NULL, O_HELP},
    {NULL, 0, NULL, 0},
};

static void help(void)
{
    printf("Usage: pqmtls pki configure --pki DIR [--crl-url BASE|none] [--ocsp-url URL|none]\n\n"
           "Shows or changes the settings that certificates issued from now on carry:\n"
           "  --crl-url BASE   CRL distribution point BASE/<issuing CA>.crl (root-ca.crl,\n"
           "                   server-int-ca.crl, client-int-ca.crl: the DER files that\n"
           "                   `pqmtls pki crl` writes under DIR/crl/, to be served at BASE)\n"
           "  --ocsp-url URL   the OCSP responder (`pqmtls ocsp serve`) in authorityInfoAccess\n"
           "'none' removes a setting. Certificates already issued keep what they carry;\n"
           "`pqmtls pki renew` re-issues them with the new settings. The intermediates carry\n"
           "the root's CRL URL only when it was given to `pki init`.\n"
           "Without options, prints the current settings.\n");
}

int cmd_pki_configure(int argc, char **argv)
{
    const char *dir = NULL, *crl = NULL, *ocsp = NULL;
    int c;
    cli_getopt_reset();
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case O_PKI:
            dir = optarg;
            break;
        case O_CRL_URL:
            crl = optarg;
            break;
        case O_OCSP_URL:
            ocsp = optarg;
            break;
        case O_HELP:
            help();
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
    int rc = EXIT_OK;
    if ((crl != NULL || ocsp != NULL) && pqm_pki_set_urls(pki, crl, ocsp) != 0)
        rc = cli_fail(CMD, "%s", pqm_pki_error(pki));
    if (rc == EXIT_OK)
        printf("crl-url   %s\nocsp-url  %s\n",
               pqm_pki_crl_url(pki)[0] != '\0' ? pqm_pki_crl_url(pki) : "(none)",
               pqm_pki_ocsp_url(pki)[0] != '\0' ? pqm_pki_ocsp_url(pki) : "(none)");
    pqm_pki_free(pki);
    return rc;
}

/* --- pqmtls pki mesh ---------------------------------------------------------------- */

enum { M_PKI = 256, M_ALG, M_DAYS, M_PASSFILE, M_HELP };

static const struct option mesh_opts[] = {
    {"pki", required_argument, NULL, M_PKI},
    {"alg", required_argument, NULL, M_ALG},
    {"days", required_argument, NULL, M_DAYS},
    {"passphrase-file", required_argument, NULL, M_PASSFILE},
    {"help", no_argument, NULL, M_HELP},
    {NULL, 0, NULL, 0},
};

static void mesh_help(void)
{
    printf("Usage: pqmtls pki mesh --pki DIR [--alg ecdsa-p256|ecdsa-p384|rsa-3072] [--days N]\n"
           "                       [--passphrase-file F]\n\n"
           "Adds a classical mesh hierarchy to the PKI, in DIR/mesh/: a root CA and an\n"
           "intermediate CA (constrained to the PKI's SPIFFE trust domain), ECDSA P-256 by\n"
           "default, for Istio's plug-in CA (pqmtls export istio-cacerts). Istio's proxies\n"
           "(Envoy, on BoringSSL) cannot verify ML-DSA signatures yet: a workload certificate\n"
           "chain that reached the post-quantum root would be refused by every sidecar, so the\n"
           "mesh gets CAs of its own, recorded in the same inventory (pki list, pki status).\n"
           "Traffic that enters through the pqmtls gateway keeps ML-DSA and ML-KEM; inside\n"
           "the mesh, Istio's mTLS uses these. Keys are encrypted with the PKI passphrase\n"
           "(--passphrase-file, %s or a prompt). --days defaults to 1825.\n",
           PQM_PASS_ENV);
}

int cmd_pki_mesh(int argc, char **argv)
{
    static const char *const MCMD = "pki mesh";
    const char *dir = NULL, *alg = NULL, *passfile = NULL;
    long days = 0;
    int c;
    cli_getopt_reset();
    while ((c = getopt_long(argc, argv, ":", mesh_opts, NULL)) != -1) {
        switch (c) {
        case M_PKI:
            dir = optarg;
            break;
        case M_ALG:
            alg = optarg;
            break;
        case M_DAYS:
            if ((days = cli_parse_long(optarg, 1, 36500)) < 0)
                return cli_usage(MCMD, "--days '%s' is not a number of days (1-36500)", optarg);
            break;
        case M_PASSFILE:
            passfile = optarg;
            break;
        case M_HELP:
            mesh_help();
            return EXIT_OK;
        default:
            return cli_bad_option(MCMD, c, argv);
        }
    }
    if (optind != argc)
        return cli_usage(MCMD, "unexpected argument '%s'", argv[optind]);
    if (dir == NULL)
        return cli_usage(MCMD, "--pki DIR is required");
    struct pqm_pki *pki = cli_pki_open(MCMD, dir);
    if (pki == NULL)
        return EXIT_FAIL;
    struct cli_pass pass;
    cli_pass_clear(&pass);
    int rc = cli_pki_unlock(MCMD, pki, passfile, &pass);
    if (rc == -1) {
        rc = pqm_pki_create_mesh(pki, alg, (int)days) == 0
                 ? EXIT_OK
                 : cli_fail(MCMD, "%s", pqm_pki_error(pki));
        if (rc == EXIT_OK)
            printf("mesh hierarchy written to %s/mesh (mesh-root-ca, mesh-int-ca, "
                   "mesh-ca-chain.pem)\nnext: pqmtls export istio-cacerts --pki %s --out "
                   "cacerts.yaml\n",
                   dir, dir);
    }
    cli_pass_clear(&pass);
    pqm_pki_free(pki);
    return rc;
}
