/* pqmtls inspect FILE */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pqmtls/pqmtls.h>

#include "commands.h"
#include "common.h"

enum { O_JSON = 256, O_HELP };

int cmd_inspect(int argc, char **argv)
{
    static const char *const CMD = "inspect";
    static const struct option opts[] = {
        {"json", no_argument, NULL, O_JSON},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    int json = 0, c;
    cli_getopt_reset();
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case O_JSON:
            json = 1;
            break;
        case O_HELP:
            printf("Usage: pqmtls inspect FILE [--json]\n\n"
                   "Describes the first certificate of FILE (PEM or DER): subject, issuer,\n"
                   "serial, SHA-256 fingerprint, key and signature algorithms, CA flag and path\n"
                   "length, key usage, extended key usage, SANs and SPIFFE ID, name constraints,\n"
                   "validity and days left.\n");
            return EXIT_OK;
        default:
            return cli_usage(CMD, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        return cli_usage(CMD, optind >= argc ? "FILE is required" : "one FILE only");
    char err[1024];
    struct pqm_certinfo *info = pqm_certinfo_load(argv[optind], err, sizeof(err));
    if (info == NULL)
        return cli_fail(CMD, "%s", err);
    char *out = json ? pqm_certinfo_json(info) : pqm_certinfo_text(info);
    pqm_certinfo_free(info);
    if (out == NULL)
        return cli_fail(CMD, "out of memory");
    fputs(out, stdout);
    if (json)
        putchar('\n');
    free(out);
    return EXIT_OK;
}
