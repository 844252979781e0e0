/* What a PKI directory's responder answers for: its two intermediate CAs, each with the
 * signer the inventory names (see load.h). */
#include "ocsp/load.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "pki/certbuild.h"
#include "pki/keyfile.h"
#include "pki/pki_internal.h"
#include "util/fsutil.h"

static const struct {
    const char *label, *file;
} cas[] = {
    {"server intermediate CA", PQM_F_SERVER_CRT},
    {"client intermediate CA", PQM_F_CLIENT_CRT},
};
#define NCAS (sizeof(cas) / sizeof(cas[0]))

/* The inventory row of a signer, copied. */
struct signer_row {
    char serial[64], fingerprint[65], cert_path[PATH_MAX], key_path[PATH_MAX];
};

static int copy_signer_row(const struct pqm_cert_record *r, void *arg)
{
    struct signer_row *s = arg;
    snprintf(s->serial, sizeof(s->serial), "%s", r->serial);
    snprintf(s->fingerprint, sizeof(s->fingerprint), "%s", r->fingerprint);
    snprintf(s->cert_path, sizeof(s->cert_path), "%s", r->cert_path);
    snprintf(s->key_path, sizeof(s->key_path), "%s", r->key_path);
    return 0;
}

static int join(const char *dir, const char *rel, char *out, size_t outlen, struct pqm_err *e)
{
    int n = rel[0] == '/' ? snprintf(out, outlen, "%s", rel)
                          : snprintf(out, outlen, "%s/%s", dir, rel);
    return n < 0 || (size_t)n >= outlen ? pqm__err_set(e, "%s/%s: path too long", dir, rel) : 0;
}

/* The signer certificate must be the one recorded, issued by the CA for OCSP signing,
 * and match its key: a file replaced or damaged since is refused, not served. */
static int check_signer(const struct pqm_ocsp_issuer *is, X509 *signer, EVP_PKEY *key,
                        const struct signer_row *row, const char *path, struct pqm_err *e)
{
    char fp[65];
    if (pqm__cert_fingerprint(signer, fp) != 0 || strcmp(fp, row->fingerprint) != 0)
        return pqm__err_set(e, "%s does not match the inventory (serial %s)", path, row->serial);
    if (X509_check_issued(is->ca, signer) != X509_V_OK ||
        X509_verify(signer, X509_get0_pubkey(is->ca)) != 1)
        return pqm__err_ossl(e, "%s is not signed by the %s", path, is->label);
    if (X509_check_purpose(signer, X509_PURPOSE_OCSP_HELPER, 0) != 1 ||
        !(X509_get_extended_key_usage(signer) & XKU_OCSP_SIGN))
        return pqm__err_set(e, "%s is not an OCSP signing certificate", path);
    if (X509_check_private_key(signer, key) != 1)
        return pqm__err_ossl(e, "%s does not match the key of %s", row->key_path, path);
    return 0;
}

/* Loads the signer of IS that ROW names. */
static int load_signer(const char *dir, struct pqm_ocsp_issuer *is, const struct signer_row *row,
                       const struct pqm_secret *key_pass, struct pqm_err *e)
{
    char cert_path[PATH_MAX], key_path[PATH_MAX];
    X509 *signer = NULL;
    EVP_PKEY *key = NULL;
    int rc = -1;
    GUARD(join(dir, row->cert_path, cert_path, sizeof(cert_path), e));
    GUARD(join(dir, row->key_path, key_path, sizeof(key_path), e));
    if ((signer = pqm__cert_load(cert_path, e)) == NULL ||
        (key = pqm__key_load(key_path, key_pass->buf, key_pass->len, e)) == NULL)
        goto cleanup;
    GUARD(check_signer(is, signer, key, row, cert_path, e));
    rc = pqm__ocsp_set_signer(is, signer, key, e);
cleanup:
    X509_free(signer);
    EVP_PKEY_free(key);
    return rc;
}

static int load_ca(const char *dir, size_t i, struct pqm_ocsp_responder *r, struct pqm_err *e)
{
    char path[PATH_MAX];
    if (join(dir, cas[i].file, path, sizeof(path), e) != 0)
        return -1;
    X509 *ca = pqm__cert_load(path, e);
    if (ca == NULL)
        return -1;
    int rc = pqm__ocsp_add_issuer(r, cas[i].label, ca, NULL, NULL, e);
    X509_free(ca);
    return rc;
}

int pqm__ocsp_load(const char *dir, struct pqm_store *store, const struct pqm_secret *key_pass,
                   int64_t now, struct pqm_ocsp_responder *r, struct pqm_err *e)
{
    for (size_t i = 0; i < NCAS; i++) {
        struct signer_row row;
        if (load_ca(dir, i, r, e) != 0)
            goto fail;
        struct pqm_ocsp_issuer *is = &r->issuers[r->n - 1];
        int found = pqm__store_ocsp_signer(store, is->serial, now, copy_signer_row, &row, e);
        if (found < 0 || (found == 1 && load_signer(dir, is, &row, key_pass, e) != 0))
            goto fail;
    }
    return 0;
fail:
    pqm__ocsp_responder_clear(r);
    return -1;
}

int pqm__ocsp_signers_changed(struct pqm_store *store, const struct pqm_ocsp_responder *r,
                              int64_t now, struct pqm_err *e)
{
    for (size_t i = 0; i < r->n; i++) {
        const struct pqm_ocsp_issuer *is = &r->issuers[i];
        struct signer_row row;
        row.serial[0] = '\0';
        int found = pqm__store_ocsp_signer(store, is->serial, now, copy_signer_row, &row, e);
        if (found < 0)
            return -1;
        if (strcmp(row.serial, is->signer_serial) != 0)
            return 1;
    }
    return 0;
}

int pqm__ocsp_missing_signers(const struct pqm_ocsp_responder *r, char *out, size_t outlen)
{
    int missing = 0;
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < r->n; i++) {
        if (r->issuers[i].signer != NULL)
            continue;
        int n = snprintf(out + used, outlen - used, "%s%s", missing ? " and the " : "",
                         r->issuers[i].label);
        if (n > 0 && (size_t)n < outlen - used)
            used += (size_t)n;
        missing++;
    }
    return missing;
}
