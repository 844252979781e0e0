/* The OCSP protocol: requests parsed and checked, responses built and signed (see
 * responder.h). */
#include "ocsp/responder.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "pki/alg.h"
#include "pki/certbuild.h"
#include "pki/crlbuild.h"
#include "util/timeutil.h"

/* --- issuers --------------------------------------------------------------------- */

static const EVP_MD *id_digest(int i)
{
    switch (i) {
    case 0:
        return EVP_sha1(); /* what most clients send (RFC 5019 2.1.1) */
    case 1:
        return EVP_sha256();
    case 2:
        return EVP_sha384();
    default:
        return EVP_sha512();
    }
}

static int serial_hex_of(const X509 *x, char *out, size_t outlen)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    int rc = bn != NULL ? pqm__serial_hex(bn, out, outlen) : -1;
    BN_free(bn);
    return rc;
}

static void signer_clear(struct pqm_ocsp_issuer *is)
{
    X509_free(is->signer);
    EVP_PKEY_free(is->signer_key);
    is->signer = NULL;
    is->signer_key = NULL;
    is->signer_serial[0] = '\0';
    is->signer_not_after = 0;
}

static void issuer_clear(struct pqm_ocsp_issuer *is)
{
    for (int k = 0; k < PQM_OCSP_NHASH; k++)
        OCSP_CERTID_free(is->ids[k]);
    X509_free(is->ca);
    signer_clear(is);
    memset(is, 0, sizeof(*is));
}

int pqm__ocsp_set_signer(struct pqm_ocsp_issuer *is, X509 *signer, EVP_PKEY *key,
                         struct pqm_err *e)
{
    signer_clear(is);
    if (X509_up_ref(signer) != 1)
        return pqm__err_ossl(e, "out of memory");
    is->signer = signer;
    if (EVP_PKEY_up_ref(key) != 1) {
        signer_clear(is);
        return pqm__err_ossl(e, "out of memory");
    }
    is->signer_key = key;
    /* X509_check_purpose fills the extension cache now, before threads share the
     * certificate (OpenSSL fills it lazily otherwise). */
    if (serial_hex_of(signer, is->signer_serial, sizeof(is->signer_serial)) != 0 ||
        X509_check_purpose(signer, -1, 0) != 1 ||
        pqm__asn1_time_to_epoch(X509_get0_notAfter(signer), &is->signer_not_after) != 0) {
        signer_clear(is);
        return pqm__err_ossl(e, "the %s's OCSP signer cannot be read", is->label);
    }
    return 0;
}

int pqm__ocsp_add_issuer(struct pqm_ocsp_responder *r, const char *label, X509 *ca, X509 *signer,
                         EVP_PKEY *key, struct pqm_err *e)
{
    if (r->n == PQM_OCSP_MAX_ISSUERS)
        return pqm__err_set(e, "at most %d CAs per responder", PQM_OCSP_MAX_ISSUERS);
    struct pqm_ocsp_issuer is;
    memset(&is, 0, sizeof(is));
    snprintf(is.label, sizeof(is.label), "%s", label);
    if (serial_hex_of(ca, is.serial, sizeof(is.serial)) != 0)
        goto fail;
    for (int i = 0; i < PQM_OCSP_NHASH; i++)
        if ((is.ids[i] = OCSP_cert_to_id(id_digest(i), NULL, ca)) == NULL)
            goto fail;
    if (X509_up_ref(ca) != 1)
        goto fail;
    is.ca = ca;
    if (signer != NULL && key != NULL && pqm__ocsp_set_signer(&is, signer, key, e) != 0) {
        issuer_clear(&is);
        return -1;
    }
    r->issuers[r->n++] = is;
    return 0;
fail:
    issuer_clear(&is);
    return pqm__err_ossl(e, "cannot set up the %s for OCSP", label);
}

void pqm__ocsp_responder_clear(struct pqm_ocsp_responder *r)
{
    for (size_t i = 0; i < r->n; i++)
        issuer_clear(&r->issuers[i]);
    r->n = 0;
}

/* --- answers ----------------------------------------------------------------------- */

/* An unsigned OCSPResponse holds only its status (RFC 6960 4.2.1):
 * SEQUENCE { ENUMERATED status }. */
static void unsuccessful(struct pqm_ocsp_answer *a, int status, const char *why)
{
    static const unsigned char head[] = {0x30, 0x03, 0x0a, 0x01};
    memcpy(a->small, head, sizeof(head));
    a->small[4] = (unsigned char)status;
    a->der = a->small;
    a->len = 5;
    a->status = status;
    snprintf(a->why, sizeof(a->why), "%s", why);
}

void pqm__ocsp_answer_free(struct pqm_ocsp_answer *a)
{
    if (a->der != a->small)
        OPENSSL_free(a->der);
    a->der = NULL;
    a->len = 0;
}

/* The nonce extension, when there is one, must be one, of 1 to 32 octets (RFC 8954 2.1).
 * Its extnValue holds an OCTET STRING; a bare value (RFC 2560 clients) is taken as is. */
static int nonce_ok(OCSP_REQUEST *req, int *has)
{
    int idx = OCSP_REQUEST_get_ext_by_NID(req, NID_id_pkix_OCSP_Nonce, -1);
    *has = idx >= 0;
    if (idx < 0)
        return 1;
    if (OCSP_REQUEST_get_ext_by_NID(req, NID_id_pkix_OCSP_Nonce, idx) >= 0)
        return 0;
    const ASN1_OCTET_STRING *v = X509_EXTENSION_get_data(OCSP_REQUEST_get_ext(req, idx));
    const unsigned char *p = ASN1_STRING_get0_data(v);
    long vlen = ASN1_STRING_length(v), len = vlen;
    ASN1_OCTET_STRING *inner = d2i_ASN1_OCTET_STRING(NULL, &p, vlen);
    if (inner != NULL && p == ASN1_STRING_get0_data(v) + vlen)
        len = ASN1_STRING_length(inner);
    ASN1_OCTET_STRING_free(inner);
    ERR_clear_error(); /* a bare value is not an error */
    return len >= 1 && len <= PQM_OCSP_NONCE_MAX;
}

/* The issuer whose name and key hashes CID carries, or NULL. */
static const struct pqm_ocsp_issuer *find_issuer(const struct pqm_ocsp_responder *r,
                                                 const OCSP_CERTID *cid)
{
    for (size_t i = 0; i < r->n; i++)
        for (int k = 0; k < PQM_OCSP_NHASH; k++)
            if (OCSP_id_issuer_cmp(cid, r->issuers[i].ids[k]) == 0)
                return &r->issuers[i];
    return NULL;
}

/* The inventory's form of the serial in CID, or "" for one no certificate of this PKI can
 * have (negative, or longer than RFC 5280's 20 octets). */
static int serial_of(const OCSP_CERTID *cid, char *out, size_t outlen)
{
    ASN1_INTEGER *sn = NULL;
    out[0] = '\0';
    if (OCSP_id_get0_info(NULL, NULL, NULL, &sn, (OCSP_CERTID *)cid) != 1 || sn == NULL)
        return -1;
    BIGNUM *bn = ASN1_INTEGER_to_BN(sn, NULL);
    if (bn == NULL)
        return -1;
    int rc = 0;
    if (!BN_is_negative(bn) && BN_num_bytes(bn) <= 20)
        rc = pqm__serial_hex(bn, out, outlen);
    BN_free(bn);
    return rc;
}

/* What the answer needs from the request: every certificate's CertID, one issuer. */
struct parsed {
    OCSP_REQUEST *req;
    int n;
    const struct pqm_ocsp_issuer *issuer;
};

/* 0, or an OCSPResponseStatus other than successful with OUT's reason set. */
static int parse_request(const struct pqm_ocsp_responder *r, const unsigned char *der,
                         size_t len, struct parsed *p, struct pqm_ocsp_answer *out)
{
    const unsigned char *q = der;
    if (len == 0 || len > PQM_OCSP_REQUEST_MAX)
        return unsuccessful(out, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST, "empty or too large"),
               -1;
    p->req = d2i_OCSP_REQUEST(NULL, &q, (long)len);
    ERR_clear_error();
    if (p->req == NULL || q != der + len)
        return unsuccessful(out, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST, "not a DER OCSPRequest"),
               -1;
    p->n = OCSP_request_onereq_count(p->req);
    if (p->n < 1 || p->n > PQM_OCSP_MAX_CERTS)
        return unsuccessful(out, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST,
                            "no certificate, or more than 16"),
               -1;
    if (!nonce_ok(p->req, &out->nonce))
        return unsuccessful(out, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST,
                            "a nonce of 0 or more than 32 octets, or two nonces"),
               -1;
    for (int i = 0; i < p->n; i++) {
        const OCSP_CERTID *cid = OCSP_onereq_get0_id(OCSP_request_onereq_get0(p->req, i));
        const struct pqm_ocsp_issuer *is = find_issuer(r, cid);
        /* One signer signs the whole response: every certificate must be of its CA. */
        if (is == NULL || (p->issuer != NULL && is != p->issuer))
            return unsuccessful(out, OCSP_RESPONSE_STATUS_UNAUTHORIZED,
                                is == NULL ? "an issuer this responder does not serve"
                                           : "certificates of two CAs in one request"),
                   -1;
        p->issuer = is;
    }
    if (p->issuer->signer == NULL)
        return unsuccessful(out, OCSP_RESPONSE_STATUS_TRYLATER,
                            "no usable OCSP signer for this CA"),
               -1;
    return 0;
}

/* GeneralizedTime, as RFC 6960 4.2.2.1 requires of every time in a response. */
static ASN1_GENERALIZEDTIME *gtime(int64_t t)
{
    return ASN1_GENERALIZEDTIME_set(NULL, (time_t)t);
}

static int add_status(OCSP_BASICRESP *bs, const OCSP_CERTID *cid, const struct pqm_ocsp_status *st,
                      ASN1_GENERALIZEDTIME *this_upd, ASN1_GENERALIZEDTIME *next_upd)
{
    static const int code[] = {V_OCSP_CERTSTATUS_GOOD, V_OCSP_CERTSTATUS_REVOKED,
                               V_OCSP_CERTSTATUS_UNKNOWN};
    ASN1_GENERALIZEDTIME *rev = NULL;
    int reason = OCSP_REVOKED_STATUS_NOSTATUS;
    if (st->status == PQM_OCSP_REVOKED) {
        if ((rev = gtime(st->revoked_at)) == NULL)
            return -1;
        /* As in the CRLs: 'unspecified' is said by leaving the reason out. */
        if (st->reason > 0)
            reason = st->reason;
    }
    OCSP_SINGLERESP *one = OCSP_basic_add1_status(bs, (OCSP_CERTID *)cid, code[st->status],
                                                  reason, rev, this_upd, next_upd);
    ASN1_GENERALIZEDTIME_free(rev);
    return one != NULL ? 0 : -1;
}

static int add_statuses(const struct parsed *p, OCSP_BASICRESP *bs, pqm_ocsp_lookup_fn lookup,
                        void *arg, int64_t this_update, int64_t next_update)
{
    ASN1_GENERALIZEDTIME *tu = gtime(this_update), *nu = gtime(next_update);
    int rc = tu != NULL && nu != NULL ? 0 : -1;
    for (int i = 0; rc == 0 && i < p->n; i++) {
        const OCSP_CERTID *cid = OCSP_onereq_get0_id(OCSP_request_onereq_get0(p->req, i));
        struct pqm_ocsp_status st = {PQM_OCSP_UNKNOWN, 0, -1};
        char serial[64];
        if (serial_of(cid, serial, sizeof(serial)) != 0 ||
            (serial[0] != '\0' && lookup(arg, p->issuer->serial, serial, &st) != 0) ||
            add_status(bs, cid, &st, tu, nu) != 0)
            rc = -1;
    }
    ASN1_GENERALIZEDTIME_free(tu);
    ASN1_GENERALIZEDTIME_free(nu);
    return rc;
}

/* Signs BS with the issuer's signer: ML-DSA (and Ed25519) sign the data itself, with no
 * digest; the responder ID is the signer's key hash (RFC 6960 4.2.2.3: byKey needs no
 * name comparison and is what RFC 5019 clients expect). The signer's certificate goes
 * into the response, so that a client with the CA can verify it. */
static int sign(OCSP_BASICRESP *bs, const struct pqm_ocsp_issuer *is)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    const EVP_MD *md = pqm__alg_sign_md(is->signer_key);
    int ok = ctx != NULL &&
             EVP_DigestSignInit_ex(ctx, NULL, md != NULL ? EVP_MD_get0_name(md) : NULL, NULL,
                                   NULL, is->signer_key, NULL) == 1 &&
             OCSP_basic_sign_ctx(bs, is->signer, ctx, NULL, OCSP_RESPID_KEY) == 1;
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : -1;
}

static int encode(OCSP_BASICRESP *bs, struct pqm_ocsp_answer *out)
{
    OCSP_RESPONSE *resp = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs);
    unsigned char *der = NULL;
    int len = resp != NULL ? i2d_OCSP_RESPONSE(resp, &der) : -1;
    OCSP_RESPONSE_free(resp);
    if (len <= 0)
        return -1;
    out->der = der;
    out->len = (size_t)len;
    out->status = OCSP_RESPONSE_STATUS_SUCCESSFUL;
    return 0;
}

void pqm__ocsp_respond(const struct pqm_ocsp_responder *r, const unsigned char *req, size_t len,
                       int64_t now, pqm_ocsp_lookup_fn lookup, void *arg,
                       struct pqm_ocsp_answer *out)
{
    struct parsed p = {NULL, 0, NULL};
    OCSP_BASICRESP *bs = NULL;
    memset(out, 0, sizeof(*out));
    if (parse_request(r, req, len, &p, out) != 0)
        goto cleanup;
    out->this_update = now - PQM_BACKDATE_SECONDS;
    out->next_update = now + r->validity;
    /* Nothing says a certificate's status beyond its signer's life. */
    if (out->next_update > p.issuer->signer_not_after)
        out->next_update = p.issuer->signer_not_after;
    if ((bs = OCSP_BASICRESP_new()) == NULL ||
        add_statuses(&p, bs, lookup, arg, out->this_update, out->next_update) != 0 ||
        OCSP_copy_nonce(bs, p.req) <= 0 || sign(bs, p.issuer) != 0 || encode(bs, out) != 0) {
        pqm__ocsp_answer_free(out);
        unsuccessful(out, OCSP_RESPONSE_STATUS_INTERNALERROR,
                     "the inventory cannot be read, or signing failed");
    }
cleanup:
    ERR_clear_error(); /* nothing of this request may color the next one's errors */
    OCSP_BASICRESP_free(bs);
    OCSP_REQUEST_free(p.req);
}

int pqm__ocsp_store_lookup(void *store, const char *issuer, const char *serial,
                           struct pqm_ocsp_status *out)
{
    struct pqm_store_status st;
    struct pqm_err e;
    int found = pqm__store_status_of(store, issuer, serial, &st, &e);
    if (found < 0)
        return -1;
    out->status = PQM_OCSP_UNKNOWN;
    out->revoked_at = 0;
    out->reason = -1;
    if (found == 0)
        return 0;
    /* Superseded (renewed) certificates stay good until they expire; pending and aborted
     * issuances were never published, so nothing is known of them. */
    if (strcmp(st.status, "valid") == 0 || strcmp(st.status, "superseded") == 0) {
        out->status = PQM_OCSP_GOOD;
    } else if (strcmp(st.status, "revoked") == 0) {
        out->status = PQM_OCSP_REVOKED;
        out->revoked_at = st.revoked_at;
        out->reason = pqm__crl_reason_code(st.reason);
    }
    return 0;
}
