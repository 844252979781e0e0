/* pqmtls pki revoke | crl */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include <pqmtls/pqmtls.h>

#include "commands.h"
#include "common.h"
#include "records.h"

enum { O_PKI = 256, O_REASON, O_PASSFILE, O_NEXT_UPDATE, O_JSON, O_HELP };

static const struct option opts[] = {
    {"pki", required_argument, NULL, O_PKI},
    {"reason", required_argument, NULL, O_REASON},
    {"passphrase-file", required_argument, NULL, O_PASSFILE},
    {"next-update", required_argument, NULL, O_NEXT_UPDATE},
    {"json", no_argument, NULL, O_JSON},
    {"help", no_argument, NULL, O_HELP},
    {NULL, 0, NULL, 0},
};

struct rev_args {
    const char *pki, *reason, *passfile, *next_update, *serial;
    int json, help;
};

/* ALLOWED: the options this subcommand takes besides --pki and --help. POSITIONAL: how
 * many operands it takes (0 or 1). */
static int parse(const char *cmd, int argc, char **argv, const char *allowed, int positional,
                 struct rev_args *a)
{
    int c;
    cli_getopt_reset();
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        const char *name = c >= O_PKI && c <= O_HELP ? opts[c - O_PKI].name : "";
        int rc = c != O_PKI && c != O_HELP && c != ':' && c != '?'
                     ? cli_option_applies(cmd, name, allowed)
                     : -1;
        if (rc != -1)
            return rc;
        switch (c) {
        case O_PKI:
            a->pki = optarg;
            break;
        case O_REASON:
            a->reason = optarg;
            break;
        case O_PASSFILE:
            a->passfile = optarg;
            break;
        case O_NEXT_UPDATE:
            a->next_update = optarg;
            break;
        case O_JSON:
            a->json = 1;
            break;
        case O_HELP:
            a->help = 1;
            return EXIT_OK;
        default:
            return cli_bad_option(cmd, c, argv);
        }
    }
    if (positional == 1 && optind < argc)
        a->serial = argv[optind++];
    if (optind != argc)
        return cli_usage(cmd, "unexpected argument '%s'", argv[optind]);
    if (a->pki == NULL)
        return cli_usage(cmd, "--pki DIR is required");
    if (positional == 1 && a->serial == NULL)
        return cli_usage(cmd, "which certificate? give its SERIAL (see `pqmtls pki list`)");
    return -1;
}

struct shown {
    char name[256], kind[16], subject[512];
};

static int remember(const struct pqm_cert_record *r, void *arg)
{
    struct shown *s = arg;
    snprintf(s->name, sizeof(s->name), "%s", r->name);
    snprintf(s->kind, sizeof(s->kind), "%s", r->kind);
    snprintf(s->subject, sizeof(s->subject), "%s", r->subject);
    return 0;
}

int cmd_pki_revoke(int argc, char **argv)
{
    static const char *const CMD = "pki revoke";
    struct rev_args a = {0};
    int rc = parse(CMD, argc, argv, "reason", 1, &a);
    if (a.help) {
        printf("Usage: pqmtls pki revoke --pki DIR SERIAL [--reason REASON]\n\n"
               "Marks the certificate SERIAL (hexadecimal as `pqmtls pki list` shows it; any\n"
               "case, colons allowed) revoked in the inventory, with the time and the reason.\n"
               "REASON is an RFC 5280 name: unspecified (default), keyCompromise, cACompromise,\n"
               "affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn,\n"
               "aACompromise. An intermediate CA can be revoked (the root's CRL lists it); the\n"
               "root cannot. Unknown and already revoked serials are refused.\n\n"
               "Verifiers learn of it from the CRLs: run `pqmtls pki crl --pki DIR` next, and\n"
               "the gateway reloads them (file watch or SIGHUP). The OCSP responder answers\n"
               "from the inventory at once.\n");
        return EXIT_OK;
    }
    if (rc >= 0)
        return rc;
    struct pqm_pki *pki = cli_pki_open(CMD, a.pki);
    if (pki == NULL)
        return EXIT_FAIL;
    struct shown s = {0};
    rc = EXIT_FAIL;
    if (pqm_pki_revoke(pki, a.serial, a.reason) != 0) {
        cli_fail(CMD, "%s", pqm_pki_error(pki));
    } else if (pqm_pki_find(pki, a.serial, remember, &s) == 1) {
        printf("revoked %s '%s' (%s), serial %s, reason %s\n"
               "next: pqmtls pki crl --pki %s\n",
               s.kind, s.name, s.subject, a.serial, a.reason != NULL ? a.reason : "unspecified",
               a.pki);
        rc = EXIT_OK;
    } else {
        cli_fail(CMD, "%s", pqm_pki_error(pki));
    }
    pqm_pki_free(pki);
    return rc;
}

struct crl_list {
    json_t *items;
};

static int collect_crl(const struct pqm_crl_info *i, void *arg)
{
    struct crl_list *l = arg;
    char this_u[32], next[32];
    records_iso(i->this_update, this_u, sizeof(this_u));
    records_iso(i->next_update, next, sizeof(next));
    json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:s, s:s}", "ca", i->ca, "path", i->path,
                          "number", (json_int_t)i->number, "entries", (json_int_t)i->entries,
                          "this_update", this_u, "next_update", next);
    return o != NULL && json_array_append_new(l->items, o) == 0 ? 0 : -1;
}

static void print_crls(const json_t *items, int as_json)
{
    if (as_json) {
        json_dumpf(items, stdout, JSON_INDENT(2));
        printf("\n");
        return;
    }
    size_t k;
    json_t *o;
    printf("CRLs written:\n");
    json_array_foreach(items, k, o)
    {
        printf("  %-24s %6lld revoked  CRL #%lld  next update %s\n  %-24s %s\n",
               json_string_value(json_object_get(o, "ca")),
               (long long)json_integer_value(json_object_get(o, "entries")),
               (long long)json_integer_value(json_object_get(o, "number")),
               json_string_value(json_object_get(o, "next_update")), "",
               json_string_value(json_object_get(o, "path")));
    }
}

int cmd_pki_crl(int argc, char **argv)
{
    static const char *const CMD = "pki crl";
    struct rev_args a = {0};
    int rc = parse(CMD, argc, argv, "passphrase-file next-update json", 0, &a);
    if (a.help) {
        printf("Usage: pqmtls pki crl --pki DIR [--next-update 7d] [--passphrase-file F] "
               "[--json]\n\n"
               "Signs a CRL for each CA with that CA's key (ML-DSA when the CA is) and writes\n"
               "them under DIR/crl/, each file replaced atomically:\n"
               "  root-ca.crl.pem, server-int-ca.crl.pem, client-int-ca.crl.pem  (PEM)\n"
               "  root-ca.crl, server-int-ca.crl, client-int-ca.crl              (DER, to serve\n"
               "                                              at the --crl-url of the PKI)\n"
               "  client-ca-chain.crl.pem  the client CA's and the root's CRLs: what the\n"
               "                           gateway's client_crl and nginx's ssl_crl need\n"
               "  server-ca-chain.crl.pem  the same for clients checking servers (--crl)\n"
               "Every CRL is X.509 v2 with a CRL number that grows with each run, the\n"
               "authority key identifier, and each revoked serial's time and reason code.\n"
               "--next-update sets how long they are valid (s, m, h or d; default 7d, at most\n"
               "366d): publish new ones before then, or verifiers refuse every certificate\n"
               "(a cron job or timer running this command daily is the usual way).\n"
               "The PKI passphrase comes from --passphrase-file, %s or a prompt.\n",
               PQM_PASS_ENV);
        return EXIT_OK;
    }
    if (rc >= 0)
        return rc;
    long long validity = 7 * 86400;
    if (a.next_update != NULL &&
        (validity = cli_parse_duration(a.next_update, 60, 366LL * 86400)) < 0)
        return cli_usage(CMD, "--next-update '%s' is not a duration between 1m and 366d (e.g. "
                              "24h, 7d)",
                         a.next_update);
    struct pqm_pki *pki = cli_pki_open(CMD, a.pki);
    if (pki == NULL)
        return EXIT_FAIL;
    struct cli_pass pass;
    cli_pass_clear(&pass);
    if ((rc = cli_pki_unlock(CMD, pki, a.passfile, &pass)) == -1) {
        struct crl_list l = {json_array()};
        if (l.items == NULL) {
            rc = cli_fail(CMD, "out of memory");
        } else if (pqm_pki_gen_crls(pki, validity, collect_crl, &l) != 0) {
            rc = cli_fail(CMD, "%s", pqm_pki_error(pki));
        } else {
            print_crls(l.items, a.json);
            rc = EXIT_OK;
        }
        json_decref(l.items);
    }
    cli_pass_clear(&pass);
    pqm_pki_free(pki);
    return rc;
}
