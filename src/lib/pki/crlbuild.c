#include "pki/crlbuild.h"

#include <string.h>

#include <openssl/x509v3.h>

#include "pki/alg.h"

static const struct {
    const char *name;
    int code;
} reasons[] = {
    {"unspecified", CRL_REASON_UNSPECIFIED},
    {"keyCompromise", CRL_REASON_KEY_COMPROMISE},
    {"cACompromise", CRL_REASON_CA_COMPROMISE},
    {"affiliationChanged", CRL_REASON_AFFILIATION_CHANGED},
    {"superseded", CRL_REASON_SUPERSEDED},
    {"cessationOfOperation", CRL_REASON_CESSATION_OF_OPERATION},
    {"privilegeWithdrawn", CRL_REASON_PRIVILEGE_WITHDRAWN},
    {"aACompromise", CRL_REASON_AA_COMPROMISE},
};

int pqm__crl_reason_code(const char *name)
{
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
        if (strcmp(name, reasons[i].name) == 0)
            return reasons[i].code;
    return -1;
}

const char *pqm__crl_reason_name(int code)
{
    if (code == CRL_REASON_CERTIFICATE_HOLD)
        return "certificateHold";
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
        if (reasons[i].code == code)
            return reasons[i].name;
    return "unspecified";
}

const char *pqm__crl_reason_names(void)
{
    return "unspecified, keyCompromise, cACompromise, affiliationChanged, superseded, "
           "cessationOfOperation, privilegeWithdrawn, aACompromise";
}

int pqm__crl_begin(struct pqm_crl_builder *b, const struct pqm_crl_spec *s, struct pqm_err *e)
{
    ASN1_TIME *t = NULL;
    b->e = e;
    b->crl = X509_CRL_new();
    GUARD_OSSL(b->crl != NULL, e, "out of memory");
    GUARD_OSSL(X509_CRL_set_version(b->crl, X509_CRL_VERSION_2) == 1, e,
               "cannot set the CRL version");
    GUARD_OSSL(X509_CRL_set_issuer_name(b->crl, X509_get_subject_name(s->issuer)) == 1, e,
               "cannot set the CRL issuer");
    t = ASN1_TIME_new();
    GUARD_OSSL(t != NULL && ASN1_TIME_set(t, (time_t)s->this_update) != NULL &&
                   X509_CRL_set1_lastUpdate(b->crl, t) == 1 &&
                   ASN1_TIME_set(t, (time_t)s->next_update) != NULL &&
                   X509_CRL_set1_nextUpdate(b->crl, t) == 1,
               e, "cannot set the CRL's thisUpdate and nextUpdate");
    ASN1_TIME_free(t);
    return 0;
cleanup:
    ASN1_TIME_free(t);
    pqm__crl_abandon(b);
    return -1;
}

int pqm__crl_add(struct pqm_crl_builder *b, const char *serial_hex, int64_t revoked_at,
                 int reason)
{
    struct pqm_err *e = b->e;
    BIGNUM *bn = NULL;
    ASN1_INTEGER *serial = NULL;
    ASN1_TIME *when = NULL;
    ASN1_ENUMERATED *code = NULL;
    X509_REVOKED *rev = X509_REVOKED_new();
    int rc = -1;

    GUARD_OSSL(rev != NULL, e, "out of memory");
    ENSURE(BN_hex2bn(&bn, serial_hex) == (int)strlen(serial_hex) && bn != NULL, e,
           "revoked serial '%s' is not hexadecimal", serial_hex);
    serial = BN_to_ASN1_INTEGER(bn, NULL);
    when = ASN1_TIME_set(NULL, (time_t)revoked_at);
    GUARD_OSSL(serial != NULL && when != NULL && X509_REVOKED_set_serialNumber(rev, serial) == 1 &&
                   X509_REVOKED_set_revocationDate(rev, when) == 1,
               e, "cannot add serial %s to the CRL", serial_hex);
    if (reason > 0) {
        code = ASN1_ENUMERATED_new();
        GUARD_OSSL(code != NULL && ASN1_ENUMERATED_set(code, reason) == 1 &&
                       X509_REVOKED_add1_ext_i2d(rev, NID_crl_reason, code, 0, 0) == 1,
                   e, "cannot add the reason code of serial %s", serial_hex);
    }
    GUARD_OSSL(X509_CRL_add0_revoked(b->crl, rev) == 1, e, "cannot add serial %s to the CRL",
               serial_hex);
    rev = NULL;
    rc = 0;
cleanup:
    X509_REVOKED_free(rev);
    ASN1_ENUMERATED_free(code);
    ASN1_TIME_free(when);
    ASN1_INTEGER_free(serial);
    BN_free(bn);
    return rc;
}

/* authorityKeyIdentifier: the issuer's subject key identifier (RFC 5280 5.2.1). */
static int add_aki(X509_CRL *crl, X509 *issuer, struct pqm_err *e)
{
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(issuer);
    if (ski == NULL)
        return pqm__err_set(e, "the CA certificate has no subject key identifier");
    int rc = -1;
    AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
    GUARD_OSSL(akid != NULL && (akid->keyid = ASN1_OCTET_STRING_dup(ski)) != NULL, e,
               "out of memory");
    GUARD_OSSL(X509_CRL_add1_ext_i2d(crl, NID_authority_key_identifier, akid, 0, 0) == 1, e,
               "cannot add the CRL's authority key identifier");
    rc = 0;
cleanup:
    AUTHORITY_KEYID_free(akid);
    return rc;
}

static int add_number(X509_CRL *crl, uint64_t number, struct pqm_err *e)
{
    ASN1_INTEGER *n = ASN1_INTEGER_new();
    int ok = n != NULL && ASN1_INTEGER_set_uint64(n, number) == 1 &&
             X509_CRL_add1_ext_i2d(crl, NID_crl_number, n, 0, 0) == 1;
    ASN1_INTEGER_free(n);
    return ok ? 0 : pqm__err_ossl(e, "cannot add the CRL number");
}

X509_CRL *pqm__crl_finish(struct pqm_crl_builder *b, const struct pqm_crl_spec *s)
{
    struct pqm_err *e = b->e;
    GUARD_OSSL(X509_CRL_sort(b->crl) == 1, e, "cannot sort the CRL");
    GUARD(add_aki(b->crl, s->issuer, e));
    GUARD(add_number(b->crl, s->number, e));
    GUARD_OSSL(X509_CRL_sign(b->crl, s->issuer_key, pqm__alg_sign_md(s->issuer_key)) > 0, e,
               "cannot sign the CRL");
    X509_CRL *crl = b->crl;
    b->crl = NULL;
    return crl;
cleanup:
    pqm__crl_abandon(b);
    return NULL;
}

void pqm__crl_abandon(struct pqm_crl_builder *b)
{
    X509_CRL_free(b->crl);
    b->crl = NULL;
}
