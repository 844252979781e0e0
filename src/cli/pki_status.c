/* pqmtls pki status: the fleet at a glance, and an exit status for alerting. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <pqmtls/pqmtls.h>

#include "commands.h"
#include "common.h"
#include "records.h"

static const char *const CMD = "pki status";

enum { O_PKI = 256, O_JSON, O_IN, O_HELP };

static const struct option opts[] = {
    {"pki", required_argument, NULL, O_PKI},
    {"json", no_argument, NULL, O_JSON},
    {"in", required_argument, NULL, O_IN},
    {"help", no_argument, NULL, O_HELP},
    {NULL, 0, NULL, 0},
};

static const int windows[] = {7, 30, 90};
#define NWINDOWS 3

struct fleet {
    int64_t now;
    json_t *counts;               /* status -> number */
    json_t *expired;              /* in use and past notAfter */
    json_t *expiring[NWINDOWS];   /* in use and expiring within 7, 30, 90 days */
    json_t *signers;              /* OCSP signing certificates */
    json_t *crls;
    json_t *problems;
};

static void problem(struct fleet *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(struct fleet *f, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    json_array_append_new(f->problems, json_string(line));
}

static json_t *brief(const struct pqm_cert_record *r)
{
    char na[32];
    records_iso(r->not_after, na, sizeof(na));
    return json_pack("{s:s, s:s, s:s, s:s, s:I}", "name", r->name, "kind", r->kind, "serial",
                     r->serial, "not_after", na, "not_after_epoch", (json_int_t)r->not_after);
}

static void count(json_t *counts, const char *status)
{
    json_t *n = json_object_get(counts, status);
    json_object_set_new(counts, status, json_integer(n != NULL ? json_integer_value(n) + 1 : 1));
}

static int visit(const struct pqm_cert_record *r, void *arg)
{
    struct fleet *f = arg;
    count(f->counts, r->status);
    if (strcmp(r->status, "valid") != 0)
        return 0; /* superseded: its renewal is what matters; pending/aborted: not in use */
    if (strcmp(r->kind, "ocsp") == 0)
        json_array_append_new(f->signers, brief(r));
    if (r->not_after <= f->now) {
        json_array_append_new(f->expired, brief(r));
        problem(f, "%s '%s' (serial %s) has expired", r->kind, r->name, r->serial);
        return 0;
    }
    for (int i = 0; i < NWINDOWS; i++)
        if (r->not_after <= f->now + (int64_t)windows[i] * 86400)
            json_array_append_new(f->expiring[i], brief(r));
    return 0;
}

static int visit_crl(const struct pqm_crl_info *i, void *arg)
{
    struct fleet *f = arg;
    char tu[32] = "", nu[32] = "";
    int pending = (int)i->unpublished;
    json_t *o = json_pack("{s:s, s:s, s:b}", "ca", i->ca, "path", i->path, "present", i->present);
    if (o == NULL)
        return -1;
    if (i->present) {
        records_iso(i->this_update, tu, sizeof(tu));
        records_iso(i->next_update, nu, sizeof(nu));
        json_object_set_new(o, "number", json_integer((json_int_t)i->number));
        json_object_set_new(o, "entries", json_integer((json_int_t)i->entries));
        json_object_set_new(o, "this_update", json_string(tu));
        json_object_set_new(o, "next_update", json_string(nu));
        json_object_set_new(o, "signature_ok", json_boolean(i->signature_ok));
        if (i->next_update <= f->now)
            problem(f, "the %s's CRL %s is stale: its next update was %s", i->ca, i->path, nu);
        if (!i->signature_ok)
            problem(f, "the %s's CRL %s is not signed by the %s's key", i->ca, i->path, i->ca);
    }
    if (i->unreadable[0] != '\0') {
        json_object_set_new(o, "unreadable", json_string(i->unreadable));
        problem(f, "the %s's CRL %s cannot be read: %s: write it again with `pqmtls pki crl`",
                i->ca, i->path, i->unreadable);
    }
    json_object_set_new(o, "unpublished_revocations", json_integer(pending));
    if (pending > 0)
        problem(f, "%d revocation(s) by the %s are not in its CRL yet: run `pqmtls pki crl`",
                pending, i->ca);
    return json_array_append_new(f->crls, o);
}

static void print_list(const char *title, const json_t *a, int64_t now)
{
    size_t k;
    json_t *o;
    if (json_array_size(a) == 0)
        return;
    printf("  %s:\n", title);
    json_array_foreach(a, k, o)
    {
        int64_t left = (int64_t)json_integer_value(json_object_get(o, "not_after_epoch")) - now;
        printf("    %-28s %-12s %s  (%s%lld d %lld h)\n",
               json_string_value(json_object_get(o, "name")),
               json_string_value(json_object_get(o, "kind")),
               json_string_value(json_object_get(o, "not_after")), left < 0 ? "-" : "",
               (long long)((left < 0 ? -left : left) / 86400),
               (long long)((left < 0 ? -left : left) % 86400 / 3600));
    }
}

static void print_text(const char *dir, const struct fleet *f)
{
    const char *st;
    json_t *v;
    size_t k;
    printf("PKI %s\nCertificates by status:", dir);
    json_object_foreach(f->counts, st, v)
    {
        printf("  %s %lld", st, (long long)json_integer_value(v));
    }
    printf("\nIn use, expiring: within 7 d %zu, 30 d %zu, 90 d %zu; expired %zu\n",
           json_array_size(f->expiring[0]), json_array_size(f->expiring[1]),
           json_array_size(f->expiring[2]), json_array_size(f->expired));
    print_list("expired", f->expired, f->now);
    print_list("expiring within 30 days", f->expiring[1], f->now);
    printf("CRLs:\n");
    json_array_foreach(f->crls, k, v)
    {
        const char *bad = json_string_value(json_object_get(v, "unreadable"));
        if (bad != NULL) {
            printf("  %-24s unreadable: %s\n", json_string_value(json_object_get(v, "ca")), bad);
            continue;
        }
        if (!json_is_true(json_object_get(v, "present"))) {
            printf("  %-24s none (pqmtls pki crl writes it)\n",
                   json_string_value(json_object_get(v, "ca")));
            continue;
        }
        printf("  %-24s #%lld  %lld entries  next update %s\n",
               json_string_value(json_object_get(v, "ca")),
               (long long)json_integer_value(json_object_get(v, "number")),
               (long long)json_integer_value(json_object_get(v, "entries")),
               json_string_value(json_object_get(v, "next_update")));
    }
    printf("OCSP signers:%s\n", json_array_size(f->signers) == 0 ? " none" : "");
    print_list("valid until", f->signers, f->now);
    if (json_array_size(f->problems) == 0) {
        printf("Problems: none\n");
        return;
    }
    printf("Problems:\n");
    json_array_foreach(f->problems, k, v)
    {
        printf("  - %s\n", json_string_value(v));
    }
}

static json_t *to_json(const char *dir, const struct fleet *f)
{
    char now[32];
    records_iso(f->now, now, sizeof(now));
    json_t *exp = json_pack("{s:O, s:O, s:O}", "7d", f->expiring[0], "30d", f->expiring[1],
                            "90d", f->expiring[2]);
    return json_pack("{s:s, s:s, s:b, s:O, s:O, s:o, s:O, s:O, s:O}", "pki", dir, "checked_at",
                     now, "ok", json_array_size(f->problems) == 0, "counts", f->counts,
                     "expired", f->expired, "expiring", exp, "crls", f->crls, "ocsp_signers",
                     f->signers, "problems", f->problems);
}

static void fleet_free(struct fleet *f)
{
    json_t *all[] = {f->counts, f->expired,  f->expiring[0], f->expiring[1], f->expiring[2],
                     f->signers, f->crls, f->problems};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        json_decref(all[i]);
}

static void help(void)
{
    printf("Usage: pqmtls pki status --pki DIR [--in DURATION] [--json]\n\n"
           "The fleet at a glance: certificates by status; those in use (valid) that have\n"
           "expired or expire within 7, 30 and 90 days (each window includes the shorter\n"
           "ones); each CA's CRL with its number, entries and next update; the OCSP signing\n"
           "certificates and how long they last.\n\n"
           "Exit status 1 when something needs attention, each listed under Problems:\n"
           "  - a certificate in use (a CA, an issued certificate, an OCSP signer) expired;\n"
           "  - a CRL past its next update, or not signed by its CA's key;\n"
           "  - a revocation recorded after its CA's CRL was made (not yet published).\n"
           "So cron, a systemd timer or a Kubernetes probe can alert on it:\n"
           "  pqmtls pki status --pki /srv/pki > /dev/null || notify ...\n"
           "--in DURATION judges the fleet as it will be then (e.g. --in 30d: what will have\n"
           "expired or gone stale in 30 days if nothing is renewed or republished).\n"
           "Reads only; needs no passphrase.\n");
}

int cmd_pki_status(int argc, char **argv)
{
    const char *dir = NULL;
    int json = 0, c;
    long long ahead = 0;
    cli_getopt_reset();
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case O_PKI:
            dir = optarg;
            break;
        case O_JSON:
            json = 1;
            break;
        case O_IN:
            if ((ahead = cli_parse_duration(optarg, 0, 100LL * 366 * 86400)) < 0)
                return cli_usage(CMD, "--in '%s' is not a duration (e.g. 30d, 12h)", optarg);
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
    struct fleet f = {.now = (int64_t)time(NULL) + ahead,
                      .counts = json_object(),
                      .expired = json_array(),
                      .expiring = {json_array(), json_array(), json_array()},
                      .signers = json_array(),
                      .crls = json_array(),
                      .problems = json_array()};
    int rc = EXIT_FAIL;
    if (f.counts == NULL || f.expired == NULL || f.expiring[2] == NULL || f.problems == NULL ||
        f.crls == NULL || f.signers == NULL) {
        cli_fail(CMD, "out of memory");
    } else if (pqm_pki_foreach(pki, 1, visit, &f) != 0 ||
               pqm_pki_crl_status(pki, visit_crl, &f) != 0) {
        cli_fail(CMD, "%s", pqm_pki_error(pki));
    } else {
        int interrupted = pqm_pki_interrupted(pki);
        if (interrupted < 0)
            problem(&f, "cannot count the certificates of interrupted commands: %s",
                    pqm_pki_error(pki));
        else if (interrupted > 0)
            problem(&f, "%d certificate(s) of an interrupted issuance or renewal are pending: "
                        "`pqmtls pki check --pki %s` rolls them back",
                    interrupted, dir);
        if (json) {
            json_t *o = to_json(dir, &f);
            json_dumpf(o, stdout, JSON_INDENT(2));
            printf("\n");
            json_decref(o);
        } else {
            print_text(dir, &f);
        }
        rc = json_array_size(f.problems) == 0 ? EXIT_OK : EXIT_FAIL;
    }
    fleet_free(&f);
    pqm_pki_free(pki);
    return rc;
}
