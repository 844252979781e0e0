#include "ocsp/fetch.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/http.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>

#include "pki/crlbuild.h"
#include "util/timeutil.h"

static int fail(struct pqm_ocsp_result *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct pqm_ocsp_result *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->error, sizeof(r->error), fmt, ap);
    va_end(ap);
    unsigned long e = ERR_peek_last_error();
    if (e != 0) {
        size_t n = strlen(r->error);
        snprintf(r->error + n, sizeof(r->error) - n, ": %s",
                 ERR_reason_error_string(e) != NULL ? ERR_reason_error_string(e) : "error");
    }
    ERR_clear_error();
    r->status = PQM_OCSP_ERROR;
    return -1;
}

void pqm__ocsp_result_clear(struct pqm_ocsp_result *r)
{
    free(r->der);
    memset(r, 0, sizeof(*r));
    r->reason = -1;
}

const char *pqm__ocsp_reason_name(int reason)
{
    return pqm__crl_reason_name(reason); /* OCSP's reasons are the CRL's (RFC 6960 4.2.1) */
}

int pqm__ocsp_url_of(X509 *x, char *out, size_t outlen)
{
    STACK_OF(OPENSSL_STRING) *urls = X509_get1_ocsp(x);
    int rc = -1;
    if (urls != NULL && sk_OPENSSL_STRING_num(urls) > 0) {
        const char *u = sk_OPENSSL_STRING_value(urls, 0);
        int n = snprintf(out, outlen, "%s", u);
        rc = n > 0 && (size_t)n < outlen ? 0 : -1;
    }
    X509_email_free(urls);
    return rc;
}

/* RFC 6960 4.2.2.2: ISSUER signs its answers itself, or certifies a responder for it. */
static int authorized_signer(X509 *signer, X509 *issuer)
{
    if (X509_cmp(signer, issuer) == 0)
        return 1;
    if (X509_check_issued(issuer, signer) != X509_V_OK)
        return 0;
    EVP_PKEY *ikey = X509_get0_pubkey(issuer);
    if (ikey == NULL || X509_verify(signer, ikey) != 1)
        return 0;
    if ((X509_get_extension_flags(signer) & EXFLAG_XKUSAGE) == 0 ||
        (X509_get_extended_key_usage(signer) & XKU_OCSP_SIGN) == 0)
        return 0;
    return X509_cmp_current_time(X509_get0_notBefore(signer)) < 0 &&
           X509_cmp_current_time(X509_get0_notAfter(signer)) > 0;
}

static int64_t epoch_of(const ASN1_GENERALIZEDTIME *t)
{
    int64_t v = 0;
    return t != NULL && pqm__asn1_time_to_epoch(t, &v) == 0 ? v : 0;
}

/* The single response about ID in BS. */
static int read_status(OCSP_BASICRESP *bs, OCSP_CERTID *id, struct pqm_ocsp_result *r)
{
    int status = -1, reason = -1;
    ASN1_GENERALIZEDTIME *rev = NULL, *thisupd = NULL, *nextupd = NULL;
    if (OCSP_resp_find_status(bs, id, &status, &reason, &rev, &thisupd, &nextupd) != 1)
        return fail(r, "the response says nothing about this certificate");
    if (OCSP_check_validity(thisupd, nextupd, PQM_OCSP_SKEW, -1) != 1)
        return fail(r, "the response is not current (thisUpdate/nextUpdate)");
    r->this_update = epoch_of(thisupd);
    r->next_update = epoch_of(nextupd);
    switch (status) {
    case V_OCSP_CERTSTATUS_GOOD:
        r->status = PQM_OCSP_GOOD;
        break;
    case V_OCSP_CERTSTATUS_REVOKED:
        r->status = PQM_OCSP_REVOKED;
        r->reason = reason;
        r->revoked_at = epoch_of(rev);
        break;
    default:
        r->status = PQM_OCSP_UNKNOWN;
        break;
    }
    return 0;
}

static int judge_basic(OCSP_BASICRESP *bs, X509 *leaf, X509 *issuer, OCSP_REQUEST *req,
                       struct pqm_ocsp_result *r)
{
    if (req != NULL && OCSP_check_nonce(req, bs) == 0)
        return fail(r, "the response's nonce is not the request's (a replayed answer?)");
    X509 *signer = NULL;
    STACK_OF(X509) *extra = sk_X509_new_null();
    if (extra == NULL || sk_X509_push(extra, issuer) <= 0) {
        sk_X509_free(extra);
        return fail(r, "out of memory");
    }
    int found = OCSP_resp_get0_signer(bs, &signer, extra) == 1;
    /* The signature with the signer's key; who may sign is checked below, by the rule
     * of RFC 6960 rather than by a path to a trust store. */
    int sig_ok = found && OCSP_basic_verify(bs, extra, NULL, OCSP_NOVERIFY | OCSP_TRUSTOTHER) == 1;
    sk_X509_free(extra);
    if (!found)
        return fail(r, "the response's signer is not in it");
    if (!sig_ok)
        return fail(r, "the response's signature does not verify");
    if (!authorized_signer(signer, issuer))
        return fail(r, "the response is signed by a certificate the issuer did not authorize "
                       "for OCSP signing");
    OCSP_CERTID *id = OCSP_cert_to_id(EVP_sha1(), leaf, issuer);
    if (id == NULL)
        return fail(r, "cannot make the certificate's OCSP identifier");
    int rc = read_status(bs, id, r);
    OCSP_CERTID_free(id);
    return rc;
}

int pqm__ocsp_judge(const unsigned char *der, size_t len, X509 *leaf, X509 *issuer, void *req,
                    struct pqm_ocsp_result *r)
{
    const unsigned char *p = der;
    OCSP_RESPONSE *resp = len <= PQM_OCSP_RESPONSE_MAX ? d2i_OCSP_RESPONSE(NULL, &p, (long)len) : NULL;
    if (resp == NULL)
        return fail(r, "the response is not an OCSP response");
    int rc = -1;
    int st = OCSP_response_status(resp);
    OCSP_BASICRESP *bs = NULL;
    if (st != OCSP_RESPONSE_STATUS_SUCCESSFUL)
        fail(r, "the responder answered %s", OCSP_response_status_str(st));
    else if ((bs = OCSP_response_get1_basic(resp)) == NULL)
        fail(r, "the response is not a basic OCSP response");
    else
        rc = judge_basic(bs, leaf, issuer, req, r);
    OCSP_BASICRESP_free(bs);
    OCSP_RESPONSE_free(resp);
    return rc;
}

static BIO *post(const char *url, OCSP_REQUEST *req, int timeout, struct pqm_ocsp_result *r)
{
    char *host = NULL, *port = NULL, *path = NULL;
    int ssl = 0;
    BIO *body = NULL, *resp = NULL;
    if (OSSL_HTTP_parse_url(url, &ssl, NULL, &host, &port, NULL, &path, NULL, NULL) != 1) {
        fail(r, "'%s' is not a URL", url);
    } else if (ssl) {
        fail(r, "%s: https OCSP responders are not supported (OCSP answers are signed; use "
                "http://)",
             url);
    } else if ((body = BIO_new(BIO_s_mem())) == NULL || i2d_OCSP_REQUEST_bio(body, req) != 1) {
        fail(r, "cannot encode the OCSP request");
    } else {
        resp = OSSL_HTTP_transfer(NULL, host, port, path, 0, NULL, NULL, NULL, NULL, NULL, NULL, 0,
                                  NULL, "application/ocsp-request", body,
                                  "application/ocsp-response", 1, PQM_OCSP_RESPONSE_MAX,
                                  timeout, 0);
        if (resp == NULL)
            fail(r, "%s: no answer", url);
    }
    BIO_free(body);
    OPENSSL_free(host);
    OPENSSL_free(port);
    OPENSSL_free(path);
    return resp;
}

int pqm__ocsp_query(const char *url, X509 *leaf, X509 *issuer, int timeout_s,
                    struct pqm_ocsp_result *r)
{
    pqm__ocsp_result_clear(r);
    OCSP_REQUEST *req = OCSP_REQUEST_new();
    OCSP_CERTID *id = OCSP_cert_to_id(EVP_sha1(), leaf, issuer);
    BIO *resp = NULL;
    int rc = -1;
    if (req == NULL || id == NULL || OCSP_request_add0_id(req, id) == NULL) {
        OCSP_CERTID_free(id);
        fail(r, "cannot build the OCSP request");
        goto out;
    }
    if (OCSP_request_add1_nonce(req, NULL, -1) != 1) {
        fail(r, "cannot add a nonce");
        goto out;
    }
    resp = post(url, req, timeout_s, r);
    if (resp == NULL)
        goto out;
    char *data = NULL;
    long len = BIO_get_mem_data(resp, &data);
    if (len <= 0 || data == NULL) {
        fail(r, "%s: an empty answer", url);
        goto out;
    }
    rc = pqm__ocsp_judge((const unsigned char *)data, (size_t)len, leaf, issuer, req, r);
    if (rc == 0 && (r->der = malloc((size_t)len)) != NULL) {
        memcpy(r->der, data, (size_t)len);
        r->der_len = (size_t)len;
    }
out:
    BIO_free(resp);
    OCSP_REQUEST_free(req);
    return rc;
}
