/* pqmtls verify --ca FILE --purpose client|server CERT */
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <pqmtls/pqmtls.h>

#include "commands.h"
#include "common.h"

static const char *const CMD = "verify";

static void help(void)
{
    printf("Usage: pqmtls verify --ca FILE --purpose client|server [--crl FILE]...\n"
           "                     [--max-depth N] [--json] CERT\n\n"
           "Verifies CERT as the gateway (purpose client) or a client (purpose server) does:\n"
           "only the certificates in --ca are trusted and the path is built from them alone,\n"
           "so CERT's issuer must be one of them (the system store is never used; other\n"
           "certificates in CERT, such as a chain file's intermediate, are ignored). Strict\n"
           "X.509 checks, name constraints, at most N intermediates (default 2), and the leaf\n"
           "must carry the purpose's extended key usage (clientAuth or serverAuth). With\n"
           "--crl, every certificate of the chain must be covered by a valid CRL.\n"
           "Exit status 0 when valid, 1 when not.\n\n"
           "Example:\n"
           "  pqmtls verify --ca ./pki/client-ca-chain.pem --purpose client \\\n"
           "      ./pki/issued/client1.crt.pem\n");
}

enum { O_CA = 256, O_PURPOSE, O_CRL, O_DEPTH, O_JSON, O_HELP };

int cmd_verify(int argc, char **argv)
{
    static const struct option opts[] = {
        {"ca", required_argument, NULL, O_CA},
        {"purpose", required_argument, NULL, O_PURPOSE},
        {"crl", required_argument, NULL, O_CRL},
        {"max-depth", required_argument, NULL, O_DEPTH},
        {"json", no_argument, NULL, O_JSON},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *cas[16], *crls[16], *purpose = NULL;
    size_t ncas = 0, ncrls = 0;
    long depth = -1;
    int json = 0, c;

    cli_getopt_reset();
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case O_CA:
        case O_CRL: {
            const char **v = c == O_CA ? cas : crls;
            size_t *n = c == O_CA ? &ncas : &ncrls;
            if (*n == 16)
                return cli_usage(CMD, "at most 16 %s files", argv[optind - 2]);
            v[(*n)++] = optarg;
            break;
        }
        case O_PURPOSE:
            purpose = optarg;
            break;
        case O_DEPTH:
            if ((depth = cli_parse_long(optarg, 0, 16)) < 0)
                return cli_usage(CMD, "--max-depth: '%s' is not 0 to 16", optarg);
            break;
        case O_JSON:
            json = 1;
            break;
        case O_HELP:
            help();
            return EXIT_OK;
        default:
            return cli_bad_option(CMD, c, argv);
        }
    }
    if (optind != argc - 1)
        return cli_usage(CMD, optind >= argc ? "CERT is required" : "one CERT only");
    if (ncas == 0)
        return cli_usage(CMD, "--ca FILE is required (the only trust anchors)");
    if (purpose == NULL)
        return cli_usage(CMD, "--purpose client|server is required");
    enum pqm_purpose p;
    if (strcmp(purpose, "client") == 0)
        p = PQM_PURPOSE_CLIENT;
    else if (strcmp(purpose, "server") == 0)
        p = PQM_PURPOSE_SERVER;
    else
        return cli_usage(CMD, "--purpose '%s': client or server", purpose);

    const char *cert = argv[optind];
    struct pqm_verifier *v = pqm_verifier_new(p);
    if (v == NULL)
        return cli_fail(CMD, "out of memory");
    int rc = EXIT_FAIL, valid = 0;
    for (size_t i = 0; i < ncas; i++)
        if (pqm_verifier_add_ca_file(v, cas[i]) != 0)
            goto setup_failed;
    for (size_t i = 0; i < ncrls; i++)
        if (pqm_verifier_add_crl_file(v, crls[i]) != 0)
            goto setup_failed;
    if (depth >= 0 && pqm_verifier_set_max_depth(v, (int)depth) != 0)
        goto setup_failed;
    valid = pqm_verifier_verify_file(v, cert) == 0;
    if (json) {
        json_t *doc = json_pack("{s:s, s:s, s:b, s:s}", "file", cert, "purpose", purpose,
                                "valid", valid, "error", valid ? "" : pqm_verifier_error(v));
        json_dumpf(doc, stdout, JSON_INDENT(2));
        putchar('\n');
        json_decref(doc);
    } else if (valid) {
        printf("%s: OK (%s authentication)\n", cert, purpose);
    }
    if (!valid && !json)
        cli_fail(CMD, "%s", pqm_verifier_error(v));
    rc = valid ? EXIT_OK : EXIT_FAIL;
    pqm_verifier_free(v);
    return rc;
setup_failed:
    rc = cli_fail(CMD, "%s", pqm_verifier_error(v));
    pqm_verifier_free(v);
    return rc;
}
