/* libFuzzer target: `pqmtls pki sign-csr` on arbitrary input. A PKI is made once; every
 * input is offered as a CSR for a client certificate. Almost all are refused while
 * parsing or at the signature check; none may crash, leak, or leave a half-issued
 * certificate (checked every 256 inputs with pqm_pki_check). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <pqmtls/pki.h>

static struct pqm_pki *pki;
static char dir[64];
static unsigned runs;

static void remove_pki(void)
{
    char cmd[128];
    pqm_pki_free(pki);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz_csr: could not remove %s\n", dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    snprintf(dir, sizeof(dir), "/tmp/pqmtls-fuzz-csr-%d", (int)getpid());
    struct pqm_pki_config *cfg = pqm_pki_config_new();
    pki = pqm_pki_new();
    pqm_pki_config_insecure_no_passphrase(cfg);
    pqm_pki_config_set_spiffe_trust_domain(cfg, "cluster.local");
    if (pqm_pki_create(pki, dir, cfg) != 0) {
        fprintf(stderr, "fuzz_csr: %s\n", pqm_pki_error(pki));
        abort();
    }
    pqm_pki_config_free(cfg);
    atexit(remove_pki);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pqm_issue *req = pqm_issue_new(PQM_PROFILE_CLIENT);
    if (req == NULL)
        return 0;
    if (pqm_issue_set_csr(req, data, size) == 0)
        (void)pqm_pki_issue(pki, req, NULL, NULL);
    pqm_issue_free(req);
    if (++runs % 256 == 0 && pqm_pki_check(pki, NULL, NULL) != 0) {
        fprintf(stderr, "fuzz_csr: the inventory and the files disagree: %s\n",
                pqm_pki_error(pki));
        abort();
    }
    return 0;
}
