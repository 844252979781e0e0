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
enum { O_PKI, O_DAYS, O_WITHIN, O_PASSFILE, O_KEYPASSFILE, O_JSON, O_HELP, O_COUNT };

static const struct option opts[] = {
    {"pki", required_argument, NULL, 256 + O_PKI},
    {"days", required_argument, NULL, 256 + O_DAYS},
    {"within", required_argument, NULL, 256 + O_WITHIN},
    {"passphrase-file", required_argument, NULL, 256 + O_PASSFILE},
    {"key-passphrase-file", required_argument, NULL, 256 + O_KEYPASSFILE},
    {"json", no_argument, NULL, 256 + O_JSON},
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
        if (c != 256 + O_PKI && c != 256 + O_HELP && strstr(allowed, name) == NULL)
            return cli_usage(cmd, "--%s does not apply here", name);
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
