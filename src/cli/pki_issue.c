/* pqmtls pki issue server|client, pqmtls pki sign-csr */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <pqmtls/pqmtls.h>

#include "commands.h"
#include "common.h"

#define CSR_FILE_MAX (256 * 1024)

static void help_issue(void)
{
    printf(
        "Usage: pqmtls pki issue server --pki DIR --name DNSNAME [--dns NAME]... [--ip ADDR]...\n"
        "       pqmtls pki issue client --pki DIR --name NAME [--spiffe-id URI]\n"
        "                               [common options]\n\n"
        "Issues a certificate and a new key. A server certificate has EKU serverAuth only and\n"
        "its SANs are --name, --dns and --ip; a name outside the server CA's name constraints\n"
        "is refused before anything is signed. A client certificate has EKU clientAuth only\n"
        "and, with --spiffe-id, that SPIFFE ID as a URI SAN (checked against the PKI's trust\n"
        "domain). Files: DIR/issued/NAME.crt.pem, NAME.key.pem (0600), NAME.chain.pem (leaf and\n"
        "intermediate: what a server or client presents), NAME.p12 with --p12. The new key is\n"
        "unencrypted (mode 0600) unless --key-passphrase-file gives it a passphrase of its own:\n"
        "the PKI passphrase, which protects the CAs, never goes to a service.\n\n"
        "Common options:\n"
        "  --days N, --hours N, --lifetime DURATION\n"
        "                            validity: whole days, hours, or a duration such as 24h,\n"
        "                            90d, 36h (1h to 36500d); default: the lifetime of the\n"
        "                            PKI's profile (pki init --profile; 365 days without\n"
        "                            one); never beyond the issuing CA\n"
        "  --alg ALG                 key algorithm (default: the PKI's)\n"
        "  --out PREFIX              write PREFIX.crt.pem ... instead of DIR/issued/NAME.*\n"
        "  --count N                 issue N certificates NAME-0001 ... NAME-N in one run\n"
        "  --p12                     also write a PKCS#12 file\n"
        "  --passphrase-file F       the PKI passphrase, to unlock the CA key\n"
        "                            (else $%s, else a prompt on the terminal)\n"
        "  --key-passphrase-file F   encrypt the new key (scrypt, AES-256) with this\n"
        "                            passphrase (else $%s, else unencrypted)\n"
        "  --no-key-passphrase       write the new key unencrypted even if $%s is set\n"
        "  --p12-passphrase-file F   protect the PKCS#12 file with this (default: the key's)\n"
        "  --json                    describe what was issued as JSON\n\n"
        "Examples:\n"
        "  pqmtls pki issue server --pki ./pki --name api.example.com --dns api.example.com \\\n"
        "      --ip 127.0.0.1 --passphrase-file pass.txt\n"
        "  pqmtls pki issue client --pki ./pki --name service-a \\\n"
        "      --spiffe-id spiffe://cluster.local/ns/production/sa/frontend-service \\\n"
        "      --passphrase-file pass.txt\n",
        PQM_PASS_ENV, PQM_KEY_PASS_ENV, PQM_KEY_PASS_ENV);
}

static void help_sign_csr(void)
{
    printf(
        "Usage: pqmtls pki sign-csr --pki DIR --csr FILE --profile server|client [OPTIONS]\n\n"
        "Issues a certificate for the key of an external CSR (a key made on a device or in an\n"
        "HSM). The CSR's signature must verify; its requested extensions are ignored: the\n"
        "profile decides them, and the names come from the options below (--name defaults to\n"
        "the CSR's subject CN). Writes the certificate and chain, no key.\n\n"
        "Options:\n"
        "  --name NAME --dns NAME --ip ADDR --spiffe-id URI --days N --hours N\n"
        "  --lifetime DURATION --out PREFIX\n"
        "  --passphrase-file F --json      as for 'pqmtls pki issue'\n\n"
        "Example:\n"
        "  openssl req -new -newkey ml-dsa-65 -nodes -keyout device.key -out device.csr \\\n"
        "      -subj /CN=device-17\n"
        "  pqmtls pki sign-csr --pki ./pki --csr device.csr --profile client \\\n"
        "      --passphrase-file pass.txt\n");
}

enum {
    O_PKI = 256, O_NAME, O_DNS, O_IP, O_SPIFFE, O_DAYS, O_HOURS, O_LIFETIME, O_ALG, O_OUT,
    O_COUNT, O_P12, O_PASSFILE, O_KEYPASSFILE, O_NOKEYPASS, O_P12PASSFILE, O_JSON, O_CSR, O_PROFILE, O_HELP
};

static const struct option opts[] = {
    {"pki", required_argument, NULL, O_PKI},
    {"name", required_argument, NULL, O_NAME},
    {"dns", required_argument, NULL, O_DNS},
    {"ip", required_argument, NULL, O_IP},
    {"spiffe-id", required_argument, NULL, O_SPIFFE},
    {"days", required_argument, NULL, O_DAYS},
    {"hours", required_argument, NULL, O_HOURS},
    {"lifetime", required_argument, NULL, O_LIFETIME},
    {"alg", required_argument, NULL, O_ALG},
    {"out", required_argument, NULL, O_OUT},
    {"count", required_argument, NULL, O_COUNT},
    {"p12", no_argument, NULL, O_P12},
    {"passphrase-file", required_argument, NULL, O_PASSFILE},
    {"key-passphrase-file", required_argument, NULL, O_KEYPASSFILE},
    {"no-key-passphrase", no_argument, NULL, O_NOKEYPASS},
    {"p12-passphrase-file", required_argument, NULL, O_P12PASSFILE},
    {"json", no_argument, NULL, O_JSON},
    {"csr", required_argument, NULL, O_CSR},
    {"profile", required_argument, NULL, O_PROFILE},
    {"help", no_argument, NULL, O_HELP},
    {NULL, 0, NULL, 0},
};

struct issue_args {
    const char *cmd;
    int sign_csr;
    const char *pki, *passfile, *keypassfile, *p12passfile, *csr, *profile;
    int p12, nokeypass, json;
    const char *name, *lifetime_opt; /* the one of --days, --hours, --lifetime given */
    struct pqm_issue *req;
    enum pqm_profile prof;
};

/* Applies a request option; returns an exit code, or -1 to go on. */
static int apply(struct issue_args *a, int c, const char *arg)
{
    struct pqm_issue *r = a->req;
    long n;
    int rc = 0;
    switch (c) {
    case O_NAME:
        a->name = arg;
        rc = pqm_issue_set_name(r, arg);
        break;
    case O_DNS:
        rc = pqm_issue_add_dns(r, arg);
        break;
    case O_IP:
        rc = pqm_issue_add_ip(r, arg);
        break;
    case O_SPIFFE:
        rc = pqm_issue_set_spiffe_id(r, arg);
        break;
    case O_DAYS:
    case O_HOURS:
    case O_LIFETIME: {
        long long secs = cli_parse_lifetime(a->cmd, c == O_DAYS ? "days" : c == O_HOURS ? "hours"
                                                                                       : "lifetime",
                                            arg, &a->lifetime_opt);
        if (secs < 0)
            return EXIT_USAGE;
        rc = pqm_issue_set_lifetime(r, secs);
        break;
    }
    case O_ALG:
        rc = pqm_issue_set_alg(r, arg);
        break;
    case O_OUT:
        rc = pqm_issue_set_out_prefix(r, arg);
        break;
    case O_COUNT:
        if ((n = cli_parse_long(arg, 1, 1000000)) < 0)
            return cli_usage(a->cmd, "--count: '%s' is not a number (1-1000000)", arg);
        rc = pqm_issue_set_count(r, (unsigned)n);
        break;
    default:
        return cli_usage(a->cmd, "unknown option");
    }
    return rc == 0 ? -1 : cli_usage(a->cmd, "%s", pqm_issue_error(r));
}

static int print_issued(const struct pqm_issued *o, void *arg)
{
    json_t *list = arg;
    if (list != NULL) {
        json_array_append_new(
            list, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I}", "name", o->name,
                            "serial", o->serial, "sha256_fingerprint", o->fingerprint,
                            "cert_path", o->cert_path, "key_path", o->key_path, "chain_path",
                            o->chain_path, "p12_path", o->p12_path, "not_after_epoch",
                            (json_int_t)o->not_after));
        return 0;
    }
    printf("issued %s, serial %s\n  certificate %s\n  chain       %s\n", o->name, o->serial,
           o->cert_path, o->chain_path);
    if (o->key_path[0] != '\0')
        printf("  key         %s\n", o->key_path);
    if (o->p12_path[0] != '\0')
        printf("  PKCS#12     %s\n", o->p12_path);
    return 0;
}

static int set_passphrases(struct issue_args *a, struct pqm_pki *pki, struct cli_pass *pass)
{
    struct cli_pass kp, pp;
    int rc = EXIT_FAIL;
    cli_pass_clear(&kp);
    cli_pass_clear(&pp);
    if ((rc = cli_pki_unlock(a->cmd, pki, a->passfile, pass)) != -1)
        goto out;
    rc = EXIT_FAIL;
    if (a->nokeypass) {
        pqm_issue_insecure_no_key_passphrase(a->req);
    } else if (a->keypassfile != NULL || getenv(PQM_KEY_PASS_ENV) != NULL) {
        if (cli_read_pass(a->cmd, a->keypassfile, PQM_KEY_PASS_ENV, "", 0, &kp) != 0)
            goto out;
        if (kp.have && pqm_issue_set_key_passphrase(a->req, kp.buf, kp.len) != 0) {
            rc = cli_fail(a->cmd, "%s", pqm_issue_error(a->req));
            goto out;
        }
    }
    if (a->p12) {
        const struct cli_pass *use = NULL;
        if (a->p12passfile != NULL) {
            if (cli_read_pass(a->cmd, a->p12passfile, NULL, "", 0, &pp) != 0)
                goto out;
            use = &pp;
        } else if (kp.have) {
            use = &kp;
        }
        if (use == NULL || !use->have) {
            rc = cli_usage(a->cmd, "--p12 needs a passphrase: give --p12-passphrase-file F (or "
                                   "--key-passphrase-file F, which then protects both)");
            goto out;
        }
        if (pqm_issue_set_p12_passphrase(a->req, use->buf, use->len) != 0) {
            rc = cli_fail(a->cmd, "%s", pqm_issue_error(a->req));
            goto out;
        }
    }
    rc = -1;
out:
    cli_pass_clear(&kp);
    cli_pass_clear(&pp);
    return rc;
}

static int load_csr(struct issue_args *a)
{
    FILE *f = fopen(a->csr, "rb");
    if (f == NULL)
        return cli_fail(a->cmd, "%s: cannot open the CSR", a->csr);
    unsigned char *buf = malloc(CSR_FILE_MAX);
    size_t n = buf != NULL ? fread(buf, 1, CSR_FILE_MAX, f) : 0;
    int too_big = n == CSR_FILE_MAX;
    fclose(f);
    int rc = -1;
    if (buf == NULL)
        rc = cli_fail(a->cmd, "out of memory");
    else if (n == 0)
        rc = cli_fail(a->cmd, "%s: the CSR file is empty", a->csr);
    else if (too_big)
        rc = cli_fail(a->cmd, "%s: larger than %d bytes: not a CSR", a->csr, CSR_FILE_MAX);
    else if (pqm_issue_set_csr(a->req, buf, n) != 0)
        rc = cli_fail(a->cmd, "%s: %s", a->csr, pqm_issue_error(a->req));
    free(buf);
    return rc;
}

static int run(struct issue_args *a)
{
    struct pqm_pki *pki = pqm_pki_new();
    struct cli_pass pass;
    json_t *list = a->json ? json_array() : NULL;
    int rc = EXIT_FAIL;
    cli_pass_clear(&pass);
    if (pki == NULL || (a->json && list == NULL)) {
        rc = cli_fail(a->cmd, "out of memory");
        goto out;
    }
    if (pqm_pki_open(pki, a->pki) != 0) {
        rc = cli_fail(a->cmd, "%s", pqm_pki_error(pki));
        goto out;
    }
    if ((rc = set_passphrases(a, pki, &pass)) >= 0)
        goto out;
    if (a->csr != NULL && (rc = load_csr(a)) >= 0)
        goto out;
    if (pqm_pki_issue(pki, a->req, print_issued, list) != 0) {
        const char *msg = pqm_pki_error(pki);
        if (a->csr != NULL && strncmp(msg, "the CSR", 7) == 0)
            rc = cli_fail(a->cmd, "%s: %s", a->csr, msg);
        else
            rc = cli_fail(a->cmd, "%s", msg);
        goto out;
    }
    if (list != NULL) {
        json_t *doc = json_pack("{s:O}", "issued", list);
        json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        putchar('\n');
        json_decref(doc);
    }
    rc = EXIT_OK;
out:
    json_decref(list);
    cli_pass_clear(&pass);
    pqm_pki_free(pki);
    return rc;
}

static int parse_and_run(struct issue_args *a, int argc, char **argv, void (*help)(void))
{
    int c, rc;
    cli_getopt_reset();
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case O_HELP:
            help();
            return EXIT_OK;
        case O_PKI:
            a->pki = optarg;
            break;
        case O_PASSFILE:
            a->passfile = optarg;
            break;
        case O_KEYPASSFILE:
            a->keypassfile = optarg;
            break;
        case O_NOKEYPASS:
            a->nokeypass = 1;
            break;
        case O_P12PASSFILE:
            a->p12passfile = optarg;
            break;
        case O_P12:
            a->p12 = 1;
            break;
        case O_JSON:
            a->json = 1;
            break;
        case O_CSR:
            if (!a->sign_csr)
                return cli_usage(a->cmd, "--csr belongs to 'pqmtls pki sign-csr'");
            a->csr = optarg;
            break;
        case O_PROFILE:
            if (!a->sign_csr)
                return cli_usage(a->cmd, "--profile belongs to 'pqmtls pki sign-csr'");
            a->profile = optarg;
            break;
        case ':':
            return cli_usage(a->cmd, "%s needs a value", argv[optind - 1]);
        case '?':
            return cli_usage(a->cmd, "unknown option '%s'", argv[optind - 1]);
        default:
            if (a->sign_csr && (c == O_COUNT || c == O_ALG))
                return cli_usage(a->cmd, "%s does not apply to a CSR", argv[optind - 1]);
            if ((rc = apply(a, c, optarg)) >= 0)
                return rc;
            break;
        }
    }
    if (optind != argc)
        return cli_usage(a->cmd, "unexpected argument '%s'", argv[optind]);
    if (a->pki == NULL)
        return cli_usage(a->cmd, "--pki DIR is required");
    if (!a->sign_csr && a->name == NULL)
        return cli_usage(a->cmd, "--name is required");
    if (a->sign_csr && a->csr == NULL)
        return cli_usage(a->cmd, "--csr FILE is required");
    if (a->sign_csr && (a->p12 || a->nokeypass || a->keypassfile != NULL))
        return cli_usage(a->cmd, "the key stays with the CSR's owner: --p12 and key passphrase "
                                 "options do not apply");
    if (a->nokeypass && a->keypassfile != NULL)
        return cli_usage(a->cmd, "--key-passphrase-file and --no-key-passphrase exclude each "
                                 "other");
    if (a->p12passfile != NULL && !a->p12)
        return cli_usage(a->cmd, "--p12-passphrase-file needs --p12");
    return run(a);
}

int cmd_pki_issue(int argc, char **argv)
{
    static const char *const CMD = "pki issue";
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        help_issue();
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    struct issue_args a = {.cmd = CMD};
    if (strcmp(argv[1], "server") == 0)
        a.prof = PQM_PROFILE_SERVER;
    else if (strcmp(argv[1], "client") == 0)
        a.prof = PQM_PROFILE_CLIENT;
    else
        return cli_usage(CMD, "'%s': the profile is 'server' or 'client'", argv[1]);
    a.req = pqm_issue_new(a.prof);
    if (a.req == NULL)
        return cli_fail(CMD, "out of memory");
    int rc = parse_and_run(&a, argc - 1, argv + 1, help_issue);
    pqm_issue_free(a.req);
    return rc;
}

int cmd_pki_sign_csr(int argc, char **argv)
{
    static const char *const CMD = "pki sign-csr";
    struct issue_args a = {.cmd = CMD, .sign_csr = 1};
    const char *profile = NULL;
    /* The profile must be known before the request exists: find it first. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            help_sign_csr();
            return EXIT_OK;
        }
        if (strcmp(argv[i], "--profile") == 0 && i + 1 < argc)
            profile = argv[i + 1];
        else if (strncmp(argv[i], "--profile=", 10) == 0)
            profile = argv[i] + 10;
    }
    if (profile == NULL)
        return cli_usage(CMD, "--profile server|client is required");
    if (strcmp(profile, "server") == 0)
        a.prof = PQM_PROFILE_SERVER;
    else if (strcmp(profile, "client") == 0)
        a.prof = PQM_PROFILE_CLIENT;
    else
        return cli_usage(CMD, "--profile '%s': 'server' or 'client'", profile);
    a.req = pqm_issue_new(a.prof);
    if (a.req == NULL)
        return cli_fail(CMD, "out of memory");
    int rc = parse_and_run(&a, argc, argv, help_sign_csr);
    pqm_issue_free(a.req);
    return rc;
}
