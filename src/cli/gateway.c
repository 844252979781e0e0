/* pqmtls gateway --config FILE | --listen ADDR --upstream HOST:PORT --cert ... */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pqmtls/pqmtls.h>

#include "commands.h"
#include "common.h"

static const char *const CMD = "gateway";

static void describe(const char *name, const char *arg, const char *doc, void *ctx)
{
    (void)ctx;
    char flag[64];
    snprintf(flag, sizeof(flag), "--%s%s%s", name, arg[0] ? " " : "", arg);
    for (char *p = flag + 2; *p && *p != ' '; p++)
        if (*p == '_')
            *p = '-';
    printf("  %-34s %s\n", flag, doc);
}

static void help(void)
{
    printf("Usage: pqmtls gateway --config FILE [OPTION...]\n"
           "       pqmtls gateway --listen ADDR:PORT --upstream HOST:PORT --cert FILE --key FILE\n"
           "                      --client-ca FILE [OPTION...]\n\n"
           "An mTLS-terminating reverse proxy. Every client must present a certificate that\n"
           "chains to --client-ca alone (never the system store), with extended key usage\n"
           "clientAuth, within --verify-depth, and not revoked by a --crl. TLS 1.3 only; the\n"
           "key exchange prefers the hybrid post-quantum group X25519MLKEM768 (X25519 as a\n"
           "fallback unless --require-pq). Each request goes to the upstream over plain HTTP/1.1\n"
           "with the client's identity in X-Client-Cert-Subject, -Issuer, -Serial, -Fingerprint\n"
           "(SHA-256), -Verify and -Spiffe-Id; any such header the client sent is removed first.\n"
           "Requests that could be read two ways are refused with 400.\n\n"
           "The configuration file is YAML with the option names below as keys (crl: a list).\n"
           "Flags after --config override it. SIGHUP reloads certificates, key, CAs and CRLs\n"
           "(a file that does not load keeps the running configuration); SIGTERM drains.\n\n"
           "Options:\n"
           "  %-34s %s\n",
           "--config FILE", "read options from a YAML file");
    pqm_gateway_config_describe(describe, NULL);
    printf("\nThe key passphrase may also come from %s.\n\n"
           "Example (the seed scenario's gateway, in front of a backend on :8080):\n"
           "  pqmtls gateway --listen 0.0.0.0:8443 --upstream 127.0.0.1:8080 \\\n"
           "      --cert pki/issued/api.example.com.chain.pem \\\n"
           "      --key pki/issued/api.example.com.key.pem \\\n"
           "      --client-ca pki/client-ca-chain.pem\n",
           PQM_KEY_PASS_ENV);
}

int cmd_gateway(int argc, char **argv)
{
    struct pqm_gateway_config *cfg = pqm_gateway_config_new();
    if (cfg == NULL)
        return cli_fail(CMD, "out of memory");
    int rc = EXIT_USAGE;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            help();
            rc = EXIT_OK;
            goto done;
        }
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            cli_usage(CMD, "unexpected argument '%s'", a);
            goto done;
        }
        char key[64];
        const char *eq = strchr(a + 2, '=');
        size_t klen = eq != NULL ? (size_t)(eq - a - 2) : strlen(a + 2);
        if (klen >= sizeof(key)) {
            cli_usage(CMD, "unknown option '%s'", a);
            goto done;
        }
        memcpy(key, a + 2, klen);
        key[klen] = '\0';
        for (char *p = key; *p; p++)
            if (*p == '-')
                *p = '_';
        const char *value = eq != NULL ? eq + 1 : NULL;
        if (strcmp(key, "config") == 0) {
            if (value == NULL && (value = i + 1 < argc ? argv[++i] : NULL) == NULL) {
                cli_usage(CMD, "--config needs a file");
                goto done;
            }
            if (pqm_gateway_config_load_file(cfg, value) != 0) {
                rc = cli_fail(CMD, "%s", pqm_gateway_config_error(cfg));
                goto done;
            }
            continue;
        }
        int sw = pqm_gateway_config_is_switch(key);
        if (sw < 0) {
            cli_usage(CMD, "unknown option '%s'", a);
            goto done;
        }
        if (value == NULL)
            value = sw ? "true" : (i + 1 < argc ? argv[++i] : NULL);
        if (value == NULL) {
            cli_usage(CMD, "%s needs a value", a);
            goto done;
        }
        if (pqm_gateway_config_set(cfg, key, value) != 0) {
            cli_usage(CMD, "--%s", pqm_gateway_config_error(cfg));
            goto done;
        }
    }
    if (pqm_gateway_config_check(cfg) != 0) {
        cli_usage(CMD, "%s (see --help)", pqm_gateway_config_error(cfg));
        goto done;
    }
    char err[1024];
    struct pqm_gateway *gw = pqm_gateway_new(cfg, err, sizeof(err));
    if (gw == NULL) {
        rc = cli_fail(CMD, "%s", err);
        goto done;
    }
    rc = pqm_gateway_run(gw) == 0 ? EXIT_OK : EXIT_FAIL;
    pqm_gateway_free(gw);
done:
    pqm_gateway_config_free(cfg);
    return rc;
}
