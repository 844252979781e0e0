/* pqmtls probe URL: a health check of the gateway's admin listener (exec probes). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pqmtls/pqmtls.h>

#include "commands.h"
#include "common.h"

static const char *const CMD = "probe";

enum { P_TIMEOUT = 256, P_HELP };

static const struct option probe_opts[] = {
    {"timeout", required_argument, NULL, P_TIMEOUT},
    {"help", no_argument, NULL, P_HELP},
    {NULL, 0, NULL, 0},
};

static void help(void)
{
    printf("Usage: pqmtls probe [--timeout SECONDS] http://ADDR:PORT/PATH\n\n"
           "Asks the gateway's admin listener (the `admin` option) for PATH and exits 0 when\n"
           "the answer's status is 200-399, as a Kubernetes httpGet probe judges it; 1 with the\n"
           "status and the answer's first line (\"503 draining\"), or why no answer came, on\n"
           "standard error; 2 on a usage error. Nothing is printed on success.\n\n"
           "The admin listener accepts loopback addresses only (it has neither TLS nor\n"
           "authentication), so the kubelet's httpGet probes, which connect to the pod's\n"
           "address, cannot reach it. An exec probe runs inside the pod's network namespace\n"
           "and can: `pqmtls export k8s` writes these probes.\n"
           "  /healthz  200 while the process runs (liveness)\n"
           "  /readyz   200 while it serves, 503 once SIGTERM made it drain (readiness)\n\n"
           "Options:\n"
           "  --timeout SECONDS   give up after this long, connecting included (1-60,\n"
           "                      default 2; keep it below the probe's timeoutSeconds)\n\n"
           "Example (a container spec):\n"
           "  readinessProbe:\n"
           "    exec:\n"
           "      command: [pqmtls, probe, --timeout, \"2\", http://127.0.0.1:9901/readyz]\n");
}

int cmd_probe(int argc, char **argv)
{
    long timeout = 2;
    int c;
    cli_getopt_reset();
    while ((c = getopt_long(argc, argv, ":", probe_opts, NULL)) != -1) {
        switch (c) {
        case P_TIMEOUT:
            if ((timeout = cli_parse_long(optarg, 1, 60)) < 0)
                return cli_usage(CMD, "--timeout '%s' is not a whole number of seconds from 1 "
                                      "to 60",
                                 optarg);
            break;
        case P_HELP:
            help();
            return EXIT_OK;
        default:
            return cli_bad_option(CMD, c, argv);
        }
    }
    if (optind == argc)
        return cli_usage(CMD, "the URL is required");
    if (optind + 1 != argc)
        return cli_usage(CMD, "unexpected argument '%s'", argv[optind + 1]);
    const char *url = argv[optind];
    if (strncmp(url, "http://", 7) != 0)
        return cli_usage(CMD, "'%s' is not an http:// URL (the admin listener has no TLS)", url);
    int status = 0;
    char detail[256];
    if (pqm_gateway_probe(url, (double)timeout, &status, detail, sizeof(detail)) != 0)
        return cli_fail(CMD, "%s: %s", url, detail);
    if (status < 200 || status > 399)
        return cli_fail(CMD, "%s: %d %s", url, status, detail);
    return EXIT_OK;
}
