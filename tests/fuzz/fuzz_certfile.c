/* libFuzzer target: files pqmtls reads from outside: certificates and CRLs (PEM or
 * DER) as `inspect`, `verify --ca` and `verify --crl` load them. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <pqmtls/x509.h>

#include "pki/pemfile.h"

static char path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    snprintf(path, sizeof(path), "/tmp/pqmtls-fuzz-certfile-%d", (int)getpid());
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);

    char err[256];
    struct pqm_certinfo *info = pqm_certinfo_load(path, err, sizeof(err));
    if (info != NULL) {
        free(pqm_certinfo_json(info));
        free(pqm_certinfo_text(info));
        pqm_certinfo_free(info);
    }
    struct pqm_verifier *v = pqm_verifier_new(PQM_PURPOSE_CLIENT);
    if (v != NULL) {
        if (pqm_verifier_add_ca_file(v, path) == 0)
            (void)pqm_verifier_verify_file(v, path);
        (void)pqm_verifier_add_crl_file(v, path);
        pqm_verifier_free(v);
    }
    unlink(path);
    return 0;
}
