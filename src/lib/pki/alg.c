#include "pki/alg.h"

#include <string.h>
#include <strings.h>

static const struct pqm_alg algs[] = {
    {"ml-dsa-65", "ML-DSA-65", NULL, 0, 1},
    {"ml-dsa-44", "ML-DSA-44", NULL, 0, 1},
    {"ml-dsa-87", "ML-DSA-87", NULL, 0, 1},
    {"slh-dsa-sha2-128s", "SLH-DSA-SHA2-128s", NULL, 0, 1},
    {"ecdsa-p256", "EC", "P-256", 0, 0},
    {"ecdsa-p384", "EC", "P-384", 0, 0},
    {"ed25519", "ED25519", NULL, 0, 0},
    {"rsa-3072", "RSA", NULL, 3072, 0},
};

const struct pqm_alg *pqm__alg_find(const char *name)
{
    if (name == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
        if (strcasecmp(algs[i].name, name) == 0)
            return &algs[i];
    return NULL;
}

const char *pqm__alg_names(void)
{
    return "ml-dsa-65, ml-dsa-44, ml-dsa-87, slh-dsa-sha2-128s, ecdsa-p256, ecdsa-p384, "
           "ed25519, rsa-3072";
}

EVP_PKEY *pqm__alg_keygen(const struct pqm_alg *alg, struct pqm_err *e)
{
    EVP_PKEY *k;
    if (alg->ec_curve != NULL)
        k = EVP_PKEY_Q_keygen(NULL, NULL, alg->keytype, alg->ec_curve);
    else if (alg->rsa_bits != 0)
        k = EVP_PKEY_Q_keygen(NULL, NULL, alg->keytype, alg->rsa_bits);
    else
        k = EVP_PKEY_Q_keygen(NULL, NULL, alg->keytype);
    if (k == NULL)
        pqm__err_ossl(e, "cannot generate a %s key", alg->name);
    return k;
}

const char *pqm__alg_name_of_key(const EVP_PKEY *key)
{
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
        const struct pqm_alg *a = &algs[i];
        if (!EVP_PKEY_is_a(key, a->keytype))
            continue;
        if (a->ec_curve != NULL) {
            char curve[64];
            size_t len = 0;
            if (EVP_PKEY_get_group_name(key, curve, sizeof(curve), &len) != 1)
                continue;
            if ((strcmp(a->ec_curve, "P-256") == 0 && strcmp(curve, "prime256v1") != 0 &&
                 strcmp(curve, "P-256") != 0) ||
                (strcmp(a->ec_curve, "P-384") == 0 && strcmp(curve, "secp384r1") != 0 &&
                 strcmp(curve, "P-384") != 0))
                continue;
        }
        if (a->rsa_bits != 0 && (size_t)EVP_PKEY_get_bits(key) != a->rsa_bits)
            return "rsa";
        return a->name;
    }
    const char *t = EVP_PKEY_get0_type_name(key);
    return t != NULL ? t : "unknown";
}

const EVP_MD *pqm__alg_sign_md(const EVP_PKEY *key)
{
    if (EVP_PKEY_is_a(key, "EC"))
        return EVP_PKEY_get_bits(key) > 256 ? EVP_sha384() : EVP_sha256();
    if (EVP_PKEY_is_a(key, "RSA"))
        return EVP_sha256();
    return NULL;
}
