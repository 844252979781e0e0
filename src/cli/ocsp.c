/* pqmtls ocsp signers | serve */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <pqmtls/pqmtls.h>

#include "commands.h"
#include "common.h"
#include "records.h"

/* Every option of the ocsp subcommands; each takes those its ALLOWED list names. */
enum {
    O_PKI,
    O_DAYS,
    O_WITHIN,
    O_PASSFILE,
    O_KEYPASSFILE,
    O_JSON,
    O_LISTEN,
    O_PATH,
    O_VALIDITY,
    O_WORKERS,
    O_IDLE,
    O_REQUEST_TIMEOUT,
    O_MAXCONN,
    O_CACHE,
    O_HELP,
    O_COUNT
};

static const struct option opts[] = {
    {"pki", required_argument, NULL, 256 + O_PKI},
    {"days", required_argument, NULL, 256 + O_DAYS},
    {"within", required_argument, NULL, 256 + O_WITHIN},
    {"passphrase-file", required_argument, NULL, 256 + O_PASSFILE},
    {"key-passphrase-file", required_argument, NULL, 256 + O_KEYPASSFILE},
    {"json", no_argument, NULL, 256 + O_JSON},
    {"listen", required_argument, NULL, 256 + O_LISTEN},
    {"path", required_argument, NULL, 256 + O_PATH},
    {"validity", required_argument, NULL, 256 + O_VALIDITY},
    {"workers", required_argument, NULL, 256 + O_WORKERS},
    {"idle-timeout", required_argument, NULL, 256 + O_IDLE},
    {"request-timeout", required_argument, NULL, 256 + O_REQUEST_TIMEOUT},
    {"max-connections", required_argument, NULL, 256 + O_MAXCONN},
    {"cache", required_argument, NULL, 256 + O_CACHE},
    {"help", no_argument, NULL, 256 + O_HELP},
    {NULL, 0, NULL, 0},
};

/* The value of each option given ("" for a flag), NULL for one not given. */
struct ocsp_args {
    const char *v[O_COUNT];
};

static int parse(const char *cmd, int argc, char **argv, const char *allowed, struct ocsp_args *a)
{
    int c;
    cli_getopt_reset();
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        if (c == ':')
            return cli_usage(cmd, "%s needs a value", argv[optind - 1]);
        if (c < 256 || c >= 256 + O_COUNT)
            return cli_usage(cmd, "unknown option '%s'", argv[optind - 1]);
        const char *name = opts[c - 256].name;
        int rc = c != 256 + O_PKI && c != 256 + O_HELP
                     ? cli_option_applies(cmd, name, allowed)
                     : -1;
        if (rc != -1)
            return rc;
        a->v[c - 256] = optarg != NULL ? optarg : "";
        if (c == 256 + O_HELP)
            return EXIT_OK;
    }
    if (optind != argc)
        return cli_usage(cmd, "unexpected argument '%s'", argv[optind]);
    if (a->v[O_PKI] == NULL)
        return cli_usage(cmd, "--pki DIR is required");
    return -1;
}

/* --- signers ---------------------------------------------------------------------- */

static void signers_help(void)
{
    printf("Usage: pqmtls ocsp signers --pki DIR [--days N] [--within DURATION]\n"
           "                           [--passphrase-file F] [--key-passphrase-file F] [--json]\n\n"
           "Makes the delegated OCSP signing certificates that `pqmtls ocsp serve` signs its\n"
           "answers with (RFC 6960 4.2.2.2): one per intermediate CA, signed by that CA's key,\n"
           "with extended key usage OCSPSigning, key usage digitalSignature, the\n"
           "id-pkix-ocsp-nocheck extension (clients do not ask about the signer itself) and a\n"
           "key of the CA's algorithm (ML-DSA-65 by default). They are recorded in the\n"
           "inventory with kind 'ocsp' and the names server-int-ca-ocsp and client-int-ca-ocsp.\n\n"
           "Files (the key mode 0600, unencrypted so that the responder starts unattended,\n"
           "unless --key-passphrase-file gives it a passphrase of its own):\n"
           "  DIR/ocsp/server-int-ca-ocsp.SERIAL.crt.pem, .key.pem   one pair per signer\n"
           "  DIR/ocsp/server-int-ca-ocsp.crt.pem, .key.pem          links to the current one\n"
           "  (and the same for client-int-ca-ocsp)\n\n"
           "A signer with id-pkix-ocsp-nocheck cannot be revoked in any way a client would\n"
           "notice, so it lives short: --days N (default 30, at most 366, never beyond its\n"
           "CA). Run this command again before then, e.g. daily from a timer with\n"
           "--within 10d, which replaces only signers that expire within 10 days. A running\n"
           "responder picks the new signers up within 10 seconds (or at once on SIGHUP).\n"
           "The replaced signer becomes 'superseded' and its key file is removed.\n\n"
           "Signing needs the CA keys: the PKI passphrase comes from --passphrase-file, %s\n"
           "or a prompt. The signer key's passphrase from --key-passphrase-file or %s.\n\n"
           "Example:\n"
           "  pqmtls ocsp signers --pki ./pki --passphrase-file pass.txt\n"
           "  pqmtls ocsp serve --pki ./pki --listen 127.0.0.1:8080\n",
           PQM_PASS_ENV, PQM_KEY_PASS_ENV);
}

/* Signers shown as they come, or gathered into a JSON array (ITEMS not NULL). */
struct signer_out {
    json_t *items;
};

static int show_signer(const struct pqm_ocsp_signer_info *i, void *arg)
{
    struct signer_out *out = arg;
    char na[32];
    records_iso(i->not_after, na, sizeof(na));
    if (out->items == NULL) {
        printf("%s %s for the %s, serial %s, valid until %s\n  %s\n  %s\n",
               i->created ? "made" : "kept", i->name, i->ca, i->serial, na, i->cert_link,
               i->key_link);
        return 0;
    }
    json_t *o = json_pack("{s:s, s:s, s:s, s:b, s:s, s:s, s:s, s:s, s:s}", "ca", i->ca, "name",
                          i->name, "serial", i->serial, "created", i->created, "not_after", na,
                          "cert_path", i->cert_path, "key_path", i->key_path, "cert_link",
                          i->cert_link, "key_link", i->key_link);
    return o != NULL && json_array_append_new(out->items, o) == 0 ? 0 : -1;
}

/* The signer key's own passphrase, when one is given. Returns -1 when done, else the
 * exit status after printing the reason. */
static int read_key_pass(const char *cmd, const char *file, struct cli_pass *kp)
{
    cli_pass_clear(kp);
    if (file == NULL && getenv(PQM_KEY_PASS_ENV) == NULL)
        return -1;
    if (cli_read_pass(cmd, file, PQM_KEY_PASS_ENV, "", 0, kp) != 0)
        return EXIT_FAIL;
    return -1;
}

static int run_signers(const char *cmd, struct pqm_pki *pki, int days, long long within,
                       const struct cli_pass *kp, int as_json)
{
    struct signer_out out = {as_json ? json_array() : NULL};
    int rc = EXIT_OK;
    if (as_json && out.items == NULL)
        return cli_fail(cmd, "out of memory");
    if (pqm_pki_ocsp_signers(pki, days, within, kp->have ? kp->buf : NULL, kp->len, show_signer,
                             &out) != 0) {
        rc = cli_fail(cmd, "%s", pqm_pki_error(pki));
    } else if (as_json) {
        json_dumpf(out.items, stdout, JSON_INDENT(2));
        putchar('\n');
    }
    json_decref(out.items);
    return rc;
}

int cmd_ocsp_signers(int argc, char **argv)
{
    static const char *const CMD = "ocsp signers";
    struct ocsp_args a = {0};
    int rc = parse(CMD, argc, argv, "days within passphrase-file key-passphrase-file json", &a);
    if (a.v[O_HELP] != NULL) {
        signers_help();
        return EXIT_OK;
    }
    if (rc >= 0)
        return rc;
    long days = 30;
    long long within = -1;
    const char *d = a.v[O_DAYS], *w = a.v[O_WITHIN];
    if (d != NULL && (days = cli_parse_long(d, 1, 366)) < 0)
        return cli_usage(CMD, "--days '%s' must be a whole number of days from 1 to 366", d);
    if (w != NULL && (within = cli_parse_duration(w, 0, 366LL * 86400)) < 0)
        return cli_usage(CMD, "--within '%s' is not a duration up to 366d (e.g. 10d, 12h)", w);
    struct pqm_pki *pki = cli_pki_open(CMD, a.v[O_PKI]);
    if (pki == NULL)
        return EXIT_FAIL;
    struct cli_pass pass, kp;
    cli_pass_clear(&pass);
    cli_pass_clear(&kp);
    if ((rc = cli_pki_unlock(CMD, pki, a.v[O_PASSFILE], &pass)) == -1 &&
        (rc = read_key_pass(CMD, a.v[O_KEYPASSFILE], &kp)) == -1)
        rc = run_signers(CMD, pki, (int)days, within, &kp, a.v[O_JSON] != NULL);
    cli_pass_clear(&pass);
    cli_pass_clear(&kp);
    pqm_pki_free(pki);
    return rc;
}

/* --- serve ------------------------------------------------------------------------ */

static void serve_help(void)
{
    printf("Usage: pqmtls ocsp serve --pki DIR --listen ADDR:PORT [--validity 1h] [--path /]\n"
           "                         [--workers N] [--idle-timeout 30s] [--request-timeout 10s]\n"
           "                         [--max-connections N] [--cache N] [--key-passphrase-file F]\n\n"
           "An OCSP responder (RFC 6960, with the RFC 5019 profile) for the server and the\n"
           "client intermediate CA of the PKI in DIR. Each request is answered from the\n"
           "inventory (DIR/pki.db) as it is at that moment:\n"
           "  good     the certificate is recorded valid (or superseded by a renewal)\n"
           "  revoked  `pqmtls pki revoke` marked it, with the time and the reason; at once,\n"
           "           no CRL or restart needed\n"
           "  unknown  no certificate with that serial was issued by that CA\n"
           "and signed (ML-DSA-65 by default) by that CA's delegated OCSP signer, whose\n"
           "certificate goes with the answer. A request about another CA is answered\n"
           "'unauthorized', one that cannot be parsed 'malformedRequest'; a nonce (RFC 8954,\n"
           "1 to 32 octets) is echoed.\n\n"
           "HTTP: POST to --path with Content-Type application/ocsp-request, or GET --path\n"
           "followed by the URL-encoded base64 request (answers to GETs without a nonce carry\n"
           "Cache-Control max-age until their nextUpdate). GET /healthz answers 200. Other\n"
           "paths get 404, other methods 405; bodies over 16 KB are refused (413).\n"
           "Connections are kept alive between requests.\n\n"
           "The signers come from `pqmtls ocsp signers`; without a usable one for each CA\n"
           "the responder refuses to start (it never holds the PKI passphrase). It looks for\n"
           "new signers every 10 seconds and on SIGHUP; SIGTERM stops it.\n\n"
           "Options:\n"
           "  --pki DIR               the PKI whose inventory answers\n"
           "  --listen ADDR:PORT      e.g. 127.0.0.1:8080, [::1]:8080, :8080 (all addresses)\n"
           "  --validity DURATION     nextUpdate - thisUpdate of each answer: how long clients\n"
           "                          and caches may use it (1m to 7d; default 1h)\n"
           "  --path PATH             where requests go, e.g. /ocsp (default /)\n"
           "  --workers N             threads, each with its own listener (default: one per CPU)\n"
           "  --idle-timeout D        an idle keep-alive connection closes after D (default 30s)\n"
           "  --request-timeout D     a request must arrive, and its answer leave, within D\n"
           "                          (default 10s)\n"
           "  --max-connections N     open connections, all workers together (default 10000)\n"
           "  --cache N               signed answers each worker keeps for requests without a\n"
           "                          nonce (RFC 5019 clients, nginx stapling), given again while\n"
           "                          half their validity is left; any change to the inventory\n"
           "                          (a revocation) or the signers empties it at once\n"
           "                          (default 1024; 0: sign every answer anew)\n"
           "  --key-passphrase-file F the signers' key passphrase, when they have one (or %s)\n\n"
           "Example:\n"
           "  pqmtls ocsp signers --pki ./pki --passphrase-file pass.txt\n"
           "  pqmtls ocsp serve --pki ./pki --listen 127.0.0.1:8080\n"
           "  openssl ocsp -issuer pki/client-int-ca.crt.pem -cert pki/issued/client1.crt.pem \\\n"
           "      -url http://127.0.0.1:8080 -CAfile pki/root-ca.crt.pem\n",
           PQM_KEY_PASS_ENV);
}

/* Applies the serve options to CFG; -1 when done, else the exit status. */
static int serve_config(const char *cmd, const struct ocsp_args *a, struct pqm_ocsp_config *cfg)
{
    const char *const *v = a->v;
    long long validity = 3600, idle = 30, request = 10;
    long workers = 0, maxconn = 0, cache = 1024;
    if (v[O_LISTEN] == NULL)
        return cli_usage(cmd, "--listen ADDR:PORT is required");
    if (v[O_VALIDITY] != NULL && (validity = cli_parse_duration(v[O_VALIDITY], 60, 7 * 86400)) < 0)
        return cli_usage(cmd, "--validity '%s' is not a duration from 1m to 7d (e.g. 1h)",
                         v[O_VALIDITY]);
    if (v[O_IDLE] != NULL && (idle = cli_parse_duration(v[O_IDLE], 1, 3600)) < 0)
        return cli_usage(cmd, "--idle-timeout '%s' is not a duration from 1s to 1h", v[O_IDLE]);
    if (v[O_REQUEST_TIMEOUT] != NULL &&
        (request = cli_parse_duration(v[O_REQUEST_TIMEOUT], 1, 3600)) < 0)
        return cli_usage(cmd, "--request-timeout '%s' is not a duration from 1s to 1h",
                         v[O_REQUEST_TIMEOUT]);
    if (v[O_WORKERS] != NULL && (workers = cli_parse_long(v[O_WORKERS], 1, 256)) < 0)
        return cli_usage(cmd, "--workers '%s' must be 1 to 256", v[O_WORKERS]);
    if (v[O_MAXCONN] != NULL && (maxconn = cli_parse_long(v[O_MAXCONN], 1, 1000000)) < 0)
        return cli_usage(cmd, "--max-connections '%s' must be 1 to 1000000", v[O_MAXCONN]);
    if (v[O_CACHE] != NULL && (cache = cli_parse_long(v[O_CACHE], 0, 100000)) < 0)
        return cli_usage(cmd, "--cache '%s' must be 0 to 100000 answers", v[O_CACHE]);
    if (pqm_ocsp_config_set_pki(cfg, v[O_PKI]) != 0 ||
        pqm_ocsp_config_set_listen(cfg, v[O_LISTEN]) != 0 ||
        (v[O_PATH] != NULL && pqm_ocsp_config_set_path(cfg, v[O_PATH]) != 0) ||
        pqm_ocsp_config_set_validity(cfg, validity) != 0 ||
        pqm_ocsp_config_set_timeouts(cfg, (double)idle, (double)request) != 0 ||
        (workers > 0 && pqm_ocsp_config_set_workers(cfg, (int)workers) != 0) ||
        (maxconn > 0 && pqm_ocsp_config_set_max_connections(cfg, (int)maxconn) != 0) ||
        pqm_ocsp_config_set_cache(cfg, (int)cache) != 0)
        return cli_usage(cmd, "%s", pqm_ocsp_config_error(cfg));
    return -1;
}

static int serve_with(const char *cmd, const struct ocsp_args *a, struct pqm_ocsp_config *cfg)
{
    struct cli_pass kp;
    int rc = serve_config(cmd, a, cfg);
    if (rc != -1 || (rc = read_key_pass(cmd, a->v[O_KEYPASSFILE], &kp)) != -1)
        return rc;
    if (kp.have && pqm_ocsp_config_set_key_passphrase(cfg, kp.buf, kp.len) != 0)
        rc = cli_fail(cmd, "%s", pqm_ocsp_config_error(cfg));
    cli_pass_clear(&kp);
    if (rc != -1)
        return rc;
    char err[1024];
    struct pqm_ocsp_server *srv = pqm_ocsp_server_new(cfg, err, sizeof(err));
    if (srv == NULL)
        return cli_fail(cmd, "%s", err);
    rc = pqm_ocsp_server_run(srv) == 0 ? EXIT_OK : EXIT_FAIL;
    pqm_ocsp_server_free(srv);
    return rc;
}

int cmd_ocsp_serve(int argc, char **argv)
{
    static const char *const CMD = "ocsp serve";
    struct ocsp_args a = {0};
    int rc = parse(CMD, argc, argv,
                   "listen path validity workers idle-timeout request-timeout max-connections "
                   "cache key-passphrase-file",
                   &a);
    if (a.v[O_HELP] != NULL) {
        serve_help();
        return EXIT_OK;
    }
    if (rc >= 0)
        return rc;
    struct pqm_ocsp_config *cfg = pqm_ocsp_config_new();
    if (cfg == NULL)
        return cli_fail(CMD, "out of memory");
    rc = serve_with(CMD, &a, cfg);
    pqm_ocsp_config_free(cfg);
    return rc;
}
