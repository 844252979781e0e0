/* pqmtls pki renew */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <pqmtls/pqmtls.h>

#include "commands.h"
#include "common.h"
#include "records.h"

static const char *const CMD = "pki renew";

static void help(void)
{
    printf(
        "Usage: pqmtls pki renew --pki DIR [--within DURATION | --name NAME] [OPTIONS]\n\n"
        "Renews every valid server and client certificate that expires within DURATION\n"
        "(default: the window of the PKI's profile, 30d without one; see pki init --profile):\n"
        "a new certificate with the same name, subject, DNS/IP SANs, SPIFFE ID, profile and\n"
        "key algorithm, and a new key. The new certificate, key, chain (and PKCS#12) replace\n"
        "the old ones AT THE SAME PATHS, so that services reading them pick them up on reload\n"
        "(the gateway and the tunnel watch their files; nginx: `nginx -s reload`); the old\n"
        "files are kept as DIR/issued/archive/NAME.OLDSERIAL.crt.pem and so on. The inventory\n"
        "records the old certificate as superseded, replaced by the new serial; it stays\n"
        "trusted until it expires (revoke it with `pqmtls pki revoke` if it must not be).\n"
        "Each renewal is whole or absent: interrupted, the next pki command puts the old\n"
        "files back. DURATION: 90s, 30m, 8h, 30d.\n\n"
        "Options:\n"
        "  --within DURATION         the window: renew what expires before now + DURATION\n"
        "  --name NAME               renew the valid certificate NAME, whenever it expires\n"
        "  --days N, --hours N, --lifetime DURATION\n"
        "                            validity of the new certificates (default: the\n"
        "                            profile's lifetime, 365 days without one)\n"
        "  --reuse-key               keep each key pair: the key file stays as it is and the\n"
        "                            new certificate certifies the same public key. Needed to\n"
        "                            renew a certificate made by `pki sign-csr` (its private\n"
        "                            key is not here); without it, those are skipped\n"
        "  --key-passphrase-file F   the passphrase of encrypted keys (else $%s):\n"
        "                            to read them, and the new key gets the same one, so that\n"
        "                            a service needs nothing new to read it. An encrypted key\n"
        "                            without it is skipped\n"
        "  --p12-passphrase-file F   protects renewed PKCS#12 files (default: the key's)\n"
        "  --passphrase-file F       the PKI passphrase, to sign (else $%s, else a prompt)\n"
        "  --dry-run                 say what would be renewed or skipped, change nothing\n"
        "  --json                    describe the result as JSON\n\n"
        "Exit status: 0 when everything due was renewed (or nothing was due), 1 when some\n"
        "certificate was skipped (each is listed with the reason; the others are renewed)\n"
        "or the command failed, 2 for a usage error. Run it from a timer more often than the\n"
        "window is long, e.g. every 2 hours for cloud-native's 8-hour window.\n\n"
        "Examples:\n"
        "  pqmtls pki renew --pki ./pki --within 30d --passphrase-file pass.txt\n"
        "  pqmtls pki renew --pki ./pki --name api.example.com --passphrase-file pass.txt\n"
        "  pqmtls pki renew --pki ./pki --dry-run --json\n",
        PQM_KEY_PASS_ENV, PQM_PASS_ENV);
}

enum {
    O_PKI = 256, O_WITHIN, O_NAME, O_DAYS, O_HOURS, O_LIFETIME, O_REUSE, O_KEYPASS, O_P12PASS,
    O_PASSFILE, O_DRY, O_JSON, O_HELP
};

static const struct option opts[] = {
    {"pki", required_argument, NULL, O_PKI},
    {"within", required_argument, NULL, O_WITHIN},
    {"name", required_argument, NULL, O_NAME},
    {"days", required_argument, NULL, O_DAYS},
    {"hours", required_argument, NULL, O_HOURS},
    {"lifetime", required_argument, NULL, O_LIFETIME},
    {"reuse-key", no_argument, NULL, O_REUSE},
    {"key-passphrase-file", required_argument, NULL, O_KEYPASS},
    {"p12-passphrase-file", required_argument, NULL, O_P12PASS},
    {"passphrase-file", required_argument, NULL, O_PASSFILE},
    {"dry-run", no_argument, NULL, O_DRY},
    {"json", no_argument, NULL, O_JSON},
    {"help", no_argument, NULL, O_HELP},
    {NULL, 0, NULL, 0},
};

struct renew_args {
    const char *pki, *within, *name, *keypass, *p12pass, *passfile, *lifetime_opt;
    long long lifetime;
    int dry, json;
    struct pqm_renew *req;
};

/* Applies one option; returns an exit status, or -1 to go on. */
static int apply(struct renew_args *a, int c, const char *arg)
{
    int rc = 0;
    switch (c) {
    case O_PKI:
        a->pki = arg;
        break;
    case O_WITHIN: {
        long long w = cli_parse_duration(arg, 0, 36500LL * 86400);
        if (w < 0)
            return cli_usage(CMD, "--within '%s' is not a duration from 0 to 36500d (8h, 30d)",
                             arg);
        a->within = arg;
        rc = pqm_renew_set_within(a->req, w);
        break;
    }
    case O_NAME:
        a->name = arg;
        rc = pqm_renew_set_name(a->req, arg);
        break;
    case O_DAYS:
    case O_HOURS:
    case O_LIFETIME:
        a->lifetime = cli_parse_lifetime(CMD, opts[c - O_PKI].name, arg, &a->lifetime_opt);
        if (a->lifetime < 0)
            return EXIT_USAGE;
        rc = pqm_renew_set_lifetime(a->req, a->lifetime);
        break;
    case O_REUSE:
        pqm_renew_reuse_key(a->req);
        break;
    case O_KEYPASS:
        a->keypass = arg;
        break;
    case O_P12PASS:
        a->p12pass = arg;
        break;
    case O_PASSFILE:
        a->passfile = arg;
        break;
    case O_DRY:
        a->dry = 1;
        pqm_renew_dry_run(a->req);
        break;
    case O_JSON:
        a->json = 1;
        break;
    default:
        return cli_usage(CMD, "unknown option");
    }
    return rc == 0 ? -1 : cli_usage(CMD, "%s", pqm_renew_error(a->req));
}

static int parse(struct renew_args *a, int argc, char **argv)
{
    int c, rc;
    cli_getopt_reset();
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case O_HELP:
            help();
            return EXIT_OK;
        case ':':
            return cli_usage(CMD, "%s needs a value", argv[optind - 1]);
        case '?':
            return cli_usage(CMD, "unknown option '%s'", argv[optind - 1]);
        default:
            if ((rc = apply(a, c, optarg)) >= 0)
                return rc;
            break;
        }
    }
    if (optind != argc)
        return cli_usage(CMD, "unexpected argument '%s'", argv[optind]);
    if (a->pki == NULL)
        return cli_usage(CMD, "--pki DIR is required");
    if (a->name != NULL && a->within != NULL)
        return cli_usage(CMD, "--name renews that certificate whenever it expires: --within "
                              "does not apply to it");
    return -1;
}

/* Reads the key and PKCS#12 passphrases into the request (when given). */
static int key_passphrases(struct renew_args *a)
{
    struct cli_pass kp, pp;
    int rc = -1;
    cli_pass_clear(&kp);
    cli_pass_clear(&pp);
    if (a->keypass != NULL || getenv(PQM_KEY_PASS_ENV) != NULL) {
        if (cli_read_pass(CMD, a->keypass, PQM_KEY_PASS_ENV, "", 0, &kp) != 0)
            rc = EXIT_FAIL;
        else if (kp.have && pqm_renew_set_key_passphrase(a->req, kp.buf, kp.len) != 0)
            rc = cli_fail(CMD, "%s", pqm_renew_error(a->req));
    }
    if (rc < 0 && a->p12pass != NULL) {
        if (cli_read_pass(CMD, a->p12pass, NULL, "", 0, &pp) != 0)
            rc = EXIT_FAIL;
        else if (pqm_renew_set_p12_passphrase(a->req, pp.buf, pp.len) != 0)
            rc = cli_fail(CMD, "%s", pqm_renew_error(a->req));
    }
    cli_pass_clear(&kp);
    cli_pass_clear(&pp);
    return rc;
}

/* --- the report ------------------------------------------------------------------------- */

static const char *result_name(enum pqm_renew_result r)
{
    switch (r) {
    case PQM_RENEW_DONE:
        return "renewed";
    case PQM_RENEW_PLANNED:
        return "would renew";
    case PQM_RENEW_SKIPPED:
    default:
        return "skipped";
    }
}

static int collect(const struct pqm_renewed *r, void *arg)
{
    char old_na[32], new_na[32];
    records_iso(r->old_not_after, old_na, sizeof(old_na));
    records_iso(r->new_not_after, new_na, sizeof(new_na));
    int skipped = r->result == PQM_RENEW_SKIPPED;
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:I}", "name", r->name, "result",
                          result_name(r->result), "old_serial", r->old_serial, "old_not_after",
                          old_na, "old_not_after_epoch", (json_int_t)r->old_not_after);
    if (o == NULL)
        return -1;
    if (skipped) {
        json_object_set_new(o, "reason", json_string(r->reason));
    } else {
        if (r->new_serial[0] != '\0')
            json_object_set_new(o, "new_serial", json_string(r->new_serial));
        json_object_set_new(o, "new_not_after", json_string(new_na));
        json_object_set_new(o, "new_not_after_epoch", json_integer((json_int_t)r->new_not_after));
        json_object_set_new(o, "key", json_string(r->key_reused ? "kept" : "new"));
        json_object_set_new(o, "archive_prefix", json_string(r->archive_prefix));
    }
    const struct {
        const char *k, *v;
    } paths[] = {{"cert_path", r->cert_path},
                 {"key_path", r->key_path},
                 {"chain_path", r->chain_path},
                 {"p12_path", r->p12_path}};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        json_object_set_new(o, paths[i].k, json_string(paths[i].v));
    return json_array_append_new(arg, o) == 0 ? 0 : -1;
}

static const char *str(const json_t *o, const char *k, const char *dflt)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v != NULL ? v : dflt;
}

static void print_table(const json_t *items)
{
    size_t i;
    json_t *o;
    printf("%-24s %-11s %-20s %-16s %-20s %s\n", "NAME", "RESULT", "EXPIRES", "OLD SERIAL",
           "NEW NOT AFTER", "NEW SERIAL");
    json_array_foreach(items, i, o)
    {
        printf("%-24s %-11s %-20s %-16.16s %-20s %.16s\n", str(o, "name", ""),
               str(o, "result", ""), str(o, "old_not_after", ""), str(o, "old_serial", ""),
               str(o, "new_not_after", "-"), str(o, "new_serial", "-"));
        if (json_object_get(o, "reason") != NULL)
            printf("    %s\n", str(o, "reason", ""));
    }
}

static size_t count_result(const json_t *items, const char *result)
{
    size_t i, n = 0;
    json_t *o;
    json_array_foreach(items, i, o) n += strcmp(str(o, "result", ""), result) == 0;
    return n;
}

static void print_summary(const struct renew_args *a, const json_t *items,
                          const struct pqm_lifetimes *lt, long long within)
{
    char w[32], before[32];
    cli_format_duration(within, w, sizeof(w));
    records_iso((int64_t)time(NULL) + within, before, sizeof(before));
    size_t done = count_result(items, a->dry ? "would renew" : "renewed");
    size_t skipped = count_result(items, "skipped");
    if (json_array_size(items) == 0) {
        printf("Nothing to renew: no valid certificate expires before %s (within %s, %s).\n",
               before, w, a->within != NULL ? "--within" : "the profile's window");
        return;
    }
    print_table(items);
    printf("%zu %s, %zu skipped", done, a->dry ? "would be renewed" : "renewed", skipped);
    if (a->name == NULL)
        printf(" (due: expiring before %s, within %s%s%s)", before, w,
               a->within != NULL ? "" : ", the window of profile ",
               a->within != NULL ? "" : lt->profile);
    printf(".\n");
    if (done > 0 && !a->dry)
        printf("The new files are at the same paths; the old ones are in %s/issued/archive/.\n"
               "The gateway and the tunnel reload them on their own (file watch) or on "
               "SIGHUP; nginx on `nginx -s reload`.\n",
               a->pki);
}

static void print_json(const struct renew_args *a, json_t *items, const struct pqm_lifetimes *lt,
                       long long within)
{
    json_t *doc = json_pack("{s:s, s:b, s:s}", "pki", a->pki, "dry_run", a->dry, "profile",
                            lt->profile);
    if (doc == NULL)
        return;
    if (a->name == NULL) /* --name renews whatever the window */
        json_object_set_new(doc, "within_seconds", json_integer((json_int_t)within));
    json_object_set_new(doc, "lifetime_seconds",
                        json_integer(a->lifetime > 0 ? a->lifetime : lt->leaf_lifetime));
    json_object_set_new(doc, "renewed", json_integer((json_int_t)count_result(
                                            items, a->dry ? "would renew" : "renewed")));
    json_object_set_new(doc, "skipped", json_integer((json_int_t)count_result(items, "skipped")));
    json_object_set(doc, "certificates", items);
    json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    putchar('\n');
    json_decref(doc);
}

/* --- the command ------------------------------------------------------------------------ */

/* The window in force: --within, or the profile's. A lifetime no longer than it would
 * make every renewed certificate due again at once: said, not refused (a one-off
 * renewal of everything with a wide window is legitimate). */
static long long window_of(const struct renew_args *a, const struct pqm_lifetimes *lt)
{
    long long within = lt->renew_within;
    if (a->within != NULL)
        within = cli_parse_duration(a->within, 0, 36500LL * 86400);
    long long life = a->lifetime > 0 ? a->lifetime : lt->leaf_lifetime;
    if (a->name == NULL && life <= within) {
        char l[32], w[32];
        cli_format_duration(life, l, sizeof(l));
        cli_format_duration(within, w, sizeof(w));
        fprintf(stderr, "pqmtls %s: note: certificates renewed for %s are within the %s window "
                        "again at once\n",
                CMD, l, w);
    }
    return within;
}

static int run(struct renew_args *a)
{
    struct pqm_pki *pki = cli_pki_open(CMD, a->pki);
    struct cli_pass pass;
    struct pqm_lifetimes lt;
    json_t *items = json_array();
    int rc = EXIT_FAIL;
    cli_pass_clear(&pass);
    if (pki == NULL || items == NULL)
        goto out;
    if (pqm_pki_get_lifetimes(pki, &lt) != 0) {
        rc = cli_fail(CMD, "%s", pqm_pki_error(pki));
        goto out;
    }
    long long within = window_of(a, &lt);
    /* A dry run takes no lock, so it runs no recovery: the real run would first roll
     * back an interrupted operation, and may then renew what that makes valid again. */
    int interrupted = a->dry ? pqm_pki_interrupted(pki) : 0;
    if (interrupted > 0)
        fprintf(stderr, "pqmtls %s: warning: %d certificate(s) of an interrupted issuance or "
                        "renewal are pending; the real run rolls them back first and may then "
                        "renew more than this plan shows\n",
                CMD, interrupted);
    if (!a->dry && (rc = cli_pki_unlock(CMD, pki, a->passfile, &pass)) != -1)
        goto out;
    if ((rc = key_passphrases(a)) != -1)
        goto out;
    int renewed = pqm_pki_renew(pki, a->req, collect, items);
    /* After a failure, what was renewed before it, if anything, and why it stopped. */
    if (a->json && (renewed >= 0 || json_array_size(items) > 0))
        print_json(a, items, &lt, within);
    else if (renewed >= 0)
        print_summary(a, items, &lt, within);
    else if (json_array_size(items) > 0)
        print_table(items);
    if (renewed < 0)
        rc = cli_fail(CMD, "%s", pqm_pki_error(pki));
    else
        rc = renewed == 0 ? EXIT_OK : EXIT_FAIL;
out:
    json_decref(items);
    cli_pass_clear(&pass);
    pqm_pki_free(pki);
    return rc;
}

int cmd_pki_renew(int argc, char **argv)
{
    struct renew_args a = {0};
    a.req = pqm_renew_new();
    if (a.req == NULL)
        return cli_fail(CMD, "out of memory");
    int rc = parse(&a, argc, argv);
    if (rc < 0)
        rc = run(&a);
    pqm_renew_free(a.req);
    return rc;
}
