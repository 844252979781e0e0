/* pqmtls: post-quantum mutual TLS infrastructure, the command-line tool. */
#include <stdio.h>
#include <string.h>

#include <pqmtls/pqmtls.h>

#include "commands.h"
#include "common.h"

static const struct cli_cmd commands[] = {
    {"pki init", cmd_pki_init, "create a root CA and server/client intermediate CAs"},
    {"pki issue", cmd_pki_issue, "issue a server or client certificate"},
    {"pki sign-csr", cmd_pki_sign_csr, "issue a certificate for an external CSR"},
    {"pki list", cmd_pki_list, "list the inventory"},
    {"pki tree", cmd_pki_tree, "show the hierarchy (text, Mermaid, DOT)"},
    {"pki check", cmd_pki_check, "check the inventory against the files"},
    {"pki renew", cmd_pki_renew, "re-issue the certificates about to expire, at the same paths"},
    {"pki revoke", cmd_pki_revoke, "revoke a certificate (then publish CRLs with pki crl)"},
    {"pki crl", cmd_pki_crl, "sign and write the CRL of every CA"},
    {"pki status", cmd_pki_status, "the fleet: expiry, CRLs, OCSP signers (exit 1 on a problem)"},
    {"pki mesh", cmd_pki_mesh, "add a classical (ECDSA) mesh CA hierarchy for Istio"},
    {"pki configure", cmd_pki_configure, "show or set the CRL and OCSP URLs certificates carry"},
    {"export nginx", cmd_export_nginx, "write an nginx mTLS server block and its files"},
    {"export istio", cmd_export_istio, "write Istio PeerAuthentication, DestinationRule, AuthorizationPolicy"},
    {"export istio-cacerts", cmd_export_istio_cacerts, "write the cacerts Secret of Istio's plug-in CA"},
    {"export k8s", cmd_export_k8s, "write the gateway's Secret, ConfigMap, Deployment, Service, PDB"},
    {"ocsp signers", cmd_ocsp_signers, "make the delegated OCSP signing certificates"},
    {"ocsp serve", cmd_ocsp_serve, "answer OCSP requests (RFC 6960) from the inventory"},
    {"inspect", cmd_inspect, "describe a certificate"},
    {"verify", cmd_verify, "verify a certificate chain as the gateway does"},
    {"gateway", cmd_gateway, "run the mTLS gateway (reverse proxy) in front of an API"},
    {"probe", cmd_probe, "ask the gateway's admin listener for /healthz or /readyz (exec probes)"},
    {"request", cmd_request, "send one HTTP request over mutual TLS (an mTLS curl)"},
    {"tunnel", cmd_tunnel, "give a plain TCP service an mTLS identity towards an upstream"},
    {"bench", cmd_bench, "load an mTLS server: handshakes/s, requests/s, idle connections"},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
    fprintf(out,
            "pqmtls %s: post-quantum mutual TLS infrastructure (ML-DSA, ML-KEM)\n\n"
            "Usage: pqmtls COMMAND [OPTIONS]\n\nCommands:\n",
            pqm_version());
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-22s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'pqmtls COMMAND --help' explains each one. Exit status: 0 success, 1 a "
                 "refused or failed operation, 2 a usage error.\n"
                 "A quick start:\n"
                 "  pqmtls pki init ./pki --org Example --server-domain example.com "
                 "--passphrase-file pass.txt\n"
                 "  pqmtls pki issue server --pki ./pki --name api.example.com "
                 "--passphrase-file pass.txt\n"
                 "  pqmtls pki issue client --pki ./pki --name client1 --passphrase-file "
                 "pass.txt\n"
                 "  pqmtls verify --ca ./pki/client-ca-chain.pem --purpose client "
                 "./pki/issued/client1.chain.pem\n");
}

/* 1 when NAME is the first word of a two-word command ("pki", "export"). */
static int is_group(const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strncmp(commands[i].name, name, n) == 0 && commands[i].name[n] == ' ')
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("pqmtls %s\n", pqm_version());
        return EXIT_OK;
    }
    for (size_t i = 0; i < NCOMMANDS; i++) {
        const char *name = commands[i].name;
        const char *space = strchr(name, ' ');
        if (space == NULL) {
            if (strcmp(argv[1], name) == 0)
                return commands[i].run(argc - 1, argv + 1);
            continue;
        }
        size_t grp = (size_t)(space - name);
        if (strncmp(argv[1], name, grp) != 0 || argv[1][grp] != '\0')
            continue;
        if (argc < 3 || strcmp(argv[2], "--help") == 0) {
            printf("Usage: pqmtls %.*s SUBCOMMAND ...\n\n", (int)grp, name);
            for (size_t j = 0; j < NCOMMANDS; j++)
                if (strncmp(commands[j].name, name, grp + 1) == 0)
                    printf("  %-22s %s\n", commands[j].name, commands[j].summary);
            return argc < 3 ? EXIT_USAGE : EXIT_OK;
        }
        if (strcmp(argv[2], space + 1) == 0)
            return commands[i].run(argc - 2, argv + 2);
    }
    int grp = argc > 2 && is_group(argv[1]);
    fprintf(stderr, "pqmtls: unknown command '%s%s%s'\nTry 'pqmtls --help'.\n", argv[1],
            grp ? " " : "", grp ? argv[2] : "");
    return EXIT_USAGE;
}
