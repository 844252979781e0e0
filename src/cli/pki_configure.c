/* pqmtls pki configure */
#include <stdio.h>
#include <string.h>

#include <pqmtls/pqmtls.h>

#include "commands.h"
#include "common.h"

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
