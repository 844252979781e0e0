/* Unit tests of ocsp/responder.c (RFC 6960 requests in, signed responses out), the OCSP
 * signer profile of pki/certbuild.c, and the inventory lookups of pki/store.c that the
 * responder makes, and the answers it keeps for requests without a nonce.
 *
 * One ML-DSA-65 CA, its delegated signer, and a foreign CA are built once; requests are
 * made with OpenSSL's own OCSP client functions, and every response is read back with
 * them: its signature verified against the CA, each certificate's status found by its
 * CertID, the nonce checked as a client checks it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "ocsp/cache.h"
#include "ocsp/responder.h"
#include "pki/alg.h"
#include "pki/certbuild.h"
#include "pki/store.h"
#include "test_certs.h"
#include "util/timeutil.h"
#include "unit_util.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define VALIDITY 3600

/* --- fixtures ------------------------------------------------------------------------ */

struct world {
    EVP_PKEY *ca_key, *signer_key, *foreign_key;
    X509 *ca, *signer, *foreign;
    struct pqm_ocsp_responder r;        /* the CA with its signer */
    struct pqm_ocsp_responder unsigned_r; /* the CA without a signer */
    X509_STORE *trust;                  /* the CA, for OCSP_basic_verify */
    int64_t now;
};

static X509 *make_cert(enum pqm_cert_kind kind, const char *cn, EVP_PKEY *key, X509 *issuer,
                       EVP_PKEY *issuer_key, int64_t not_before, int64_t not_after)
{
    struct pqm_err e = {{0}};
    X509 *x = tc_cert(kind, cn, key, issuer, issuer_key, not_before, not_after, &e);
    if (x == NULL)
        fail_msg("building %s: %s", cn, pqm__err_str(&e));
    return x;
}

static int world_setup(void **state)
{
    struct world *w = calloc(1, sizeof(*w));
    assert_non_null(w);
    struct pqm_err e = {{0}};
    const struct pqm_alg *alg = pqm__alg_find("ml-dsa-65");
    w->ca_key = pqm__alg_keygen(alg, &e);
    w->signer_key = pqm__alg_keygen(alg, &e);
    w->foreign_key = pqm__alg_keygen(alg, &e);
    assert_true(w->ca_key != NULL && w->signer_key != NULL && w->foreign_key != NULL);
    w->now = (int64_t)time(NULL);
    w->ca = make_cert(PQM_KIND_ROOT, "Unit OCSP CA", w->ca_key, NULL, w->ca_key, w->now - 60,
                      w->now + 365 * 86400);
    w->signer = make_cert(PQM_KIND_OCSP, "Unit OCSP signer", w->signer_key, w->ca, w->ca_key,
                          w->now - 60, w->now + 30 * 86400);
    w->foreign = make_cert(PQM_KIND_ROOT, "Unit Foreign CA", w->foreign_key, NULL, w->foreign_key,
                           w->now - 60, w->now + 365 * 86400);
    if (pqm__ocsp_add_issuer(&w->r, "unit CA", w->ca, w->signer, w->signer_key, &e) != 0 ||
        pqm__ocsp_add_issuer(&w->unsigned_r, "unit CA", w->ca, NULL, NULL, &e) != 0)
        fail_msg("pqm__ocsp_add_issuer: %s", pqm__err_str(&e));
    w->r.validity = VALIDITY;
    w->unsigned_r.validity = VALIDITY;
    w->trust = X509_STORE_new();
    assert_non_null(w->trust);
    assert_int_equal(X509_STORE_add_cert(w->trust, w->ca), 1);
    *state = w;
    return 0;
}

static int world_teardown(void **state)
{
    struct world *w = *state;
    pqm__ocsp_responder_clear(&w->r);
    pqm__ocsp_responder_clear(&w->unsigned_r);
    X509_STORE_free(w->trust);
    X509_free(w->ca);
    X509_free(w->signer);
    X509_free(w->foreign);
    EVP_PKEY_free(w->ca_key);
    EVP_PKEY_free(w->signer_key);
    EVP_PKEY_free(w->foreign_key);
    free(w);
    return 0;
}

/* --- the inventory as the tests see it ------------------------------------------------ */

struct fake_row {
    const char *serial;
    enum pqm_ocsp_cert_status status;
    int64_t revoked_at;
    int reason;
};

static const struct fake_row fake_rows[] = {
    {"0A01", PQM_OCSP_GOOD, 0, -1},
    {"0A02", PQM_OCSP_REVOKED, 1700000000, 1 /* keyCompromise */},
    {"0A03", PQM_OCSP_REVOKED, 1700000500, 0 /* unspecified */},
};

struct fake {
    int calls;
    int fail;            /* the inventory cannot be read */
    char issuer[64];     /* the last issuer asked about */
};

static int fake_lookup(void *arg, const char *issuer, const char *serial,
                       struct pqm_ocsp_status *out)
{
    struct fake *f = arg;
    f->calls++;
    snprintf(f->issuer, sizeof(f->issuer), "%s", issuer);
    if (f->fail)
        return -1;
    *out = (struct pqm_ocsp_status){PQM_OCSP_UNKNOWN, 0, -1};
    for (size_t i = 0; i < ARRAY_LEN(fake_rows); i++)
        if (strcmp(serial, fake_rows[i].serial) == 0)
            *out = (struct pqm_ocsp_status){fake_rows[i].status, fake_rows[i].revoked_at,
                                            fake_rows[i].reason};
    return 0;
}

/* --- requests ------------------------------------------------------------------------ */

static OCSP_CERTID *id_for(X509 *ca, const EVP_MD *md, long serial)
{
    ASN1_INTEGER *sn = ASN1_INTEGER_new();
    assert_non_null(sn);
    assert_int_equal(ASN1_INTEGER_set(sn, serial), 1);
    OCSP_CERTID *id =
        OCSP_cert_id_new(md, X509_get_subject_name(ca), X509_get0_pubkey_bitstr(ca), sn);
    assert_non_null(id);
    ASN1_INTEGER_free(sn);
    return id;
}

/* A request for SERIALS (0: end) of CA's certificates under MD, with a nonce of
 * NONCE_LEN bytes (0: none; -1: an empty one). */
static OCSP_REQUEST *request_for(X509 *ca, const EVP_MD *md, const long *serials, int nonce_len)
{
    OCSP_REQUEST *req = OCSP_REQUEST_new();
    assert_non_null(req);
    for (size_t i = 0; serials[i] != 0; i++)
        assert_non_null(OCSP_request_add0_id(req, id_for(ca, md, serials[i])));
    if (nonce_len > 0) {
        unsigned char nonce[64];
        assert_true(nonce_len <= (int)sizeof(nonce));
        assert_int_equal(RAND_bytes(nonce, nonce_len), 1);
        assert_int_equal(OCSP_request_add1_nonce(req, nonce, nonce_len), 1);
    }
    return req;
}

/* A nonce extension whose extnValue is VALUE, appended whatever REQ already has. */
static void add_raw_nonce(OCSP_REQUEST *req, const unsigned char *value, int len)
{
    ASN1_OCTET_STRING *v = ASN1_OCTET_STRING_new();
    assert_non_null(v);
    assert_int_equal(ASN1_OCTET_STRING_set(v, value, len), 1);
    X509_EXTENSION *ext = X509_EXTENSION_create_by_NID(NULL, NID_id_pkix_OCSP_Nonce, 0, v);
    assert_non_null(ext);
    assert_int_equal(OCSP_REQUEST_add_ext(req, ext, -1), 1);
    X509_EXTENSION_free(ext);
    ASN1_OCTET_STRING_free(v);
}

static unsigned char *der_of(OCSP_REQUEST *req, size_t *len)
{
    unsigned char *der = NULL;
    int n = i2d_OCSP_REQUEST(req, &der);
    assert_true(n > 0);
    *len = (size_t)n;
    return der;
}

/* The response's status, and (successful) its basic response, verified against the CA. */
static OCSP_BASICRESP *read_answer(struct world *w, const struct pqm_ocsp_answer *a, int *status)
{
    const unsigned char *p = a->der;
    OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &p, (long)a->len);
    assert_non_null(resp);
    assert_ptr_equal(p, a->der + a->len);
    *status = OCSP_response_status(resp);
    assert_int_equal(*status, a->status);
    OCSP_BASICRESP *bs = *status == OCSP_RESPONSE_STATUS_SUCCESSFUL ? OCSP_response_get1_basic(resp)
                                                                    : NULL;
    OCSP_RESPONSE_free(resp);
    if (bs != NULL && OCSP_basic_verify(bs, NULL, w->trust, 0) != 1) {
        ERR_print_errors_fp(stderr);
        fail_msg("the response's signature does not verify against the CA");
    }
    return bs;
}

static int answer_status(struct world *w, const struct pqm_ocsp_responder *r, OCSP_REQUEST *req,
                         struct fake *f, OCSP_BASICRESP **bs_out)
{
    size_t len = 0;
    unsigned char *der = der_of(req, &len);
    struct pqm_ocsp_answer a;
    pqm__ocsp_respond(r, der, len, w->now, fake_lookup, f, &a);
    int status = -1;
    OCSP_BASICRESP *bs = read_answer(w, &a, &status);
    if (bs_out != NULL)
        *bs_out = bs;
    else
        OCSP_BASICRESP_free(bs);
    pqm__ocsp_answer_free(&a);
    OPENSSL_free(der);
    return status;
}

/* --- tests --------------------------------------------------------------------------- */

static void test_signer_profile(void **state)
{
    struct world *w = *state;
    X509 *s = w->signer;
    assert_int_equal(X509_check_purpose(s, X509_PURPOSE_OCSP_HELPER, 0), 1);
    assert_true(X509_get_extension_flags(s) & EXFLAG_XKUSAGE);
    assert_int_equal(X509_get_extended_key_usage(s), XKU_OCSP_SIGN);
    assert_int_equal(X509_get_key_usage(s), KU_DIGITAL_SIGNATURE);
    int crit = -1;
    ASN1_BIT_STRING *ku = X509_get_ext_d2i(s, NID_key_usage, &crit, NULL);
    assert_non_null(ku);
    assert_int_equal(crit, 1);
    ASN1_BIT_STRING_free(ku);
    int idx = X509_get_ext_by_NID(s, NID_id_pkix_OCSP_noCheck, -1);
    assert_true(idx >= 0);
    assert_int_equal(X509_EXTENSION_get_critical(X509_get_ext(s, idx)), 0);
    assert_int_equal(X509_check_ca(s), 0);
    assert_non_null(X509_get0_authority_key_id(s));
    assert_non_null(X509_get0_subject_key_id(s));
    assert_int_equal(X509_verify(s, w->ca_key), 1);
}

/* Requests that must be refused with malformedRequest, one row each. */
static void test_malformed(void **state)
{
    struct world *w = *state;
    static const long one[] = {0x0A01, 0};
    long many[PQM_OCSP_MAX_CERTS + 2];
    for (size_t i = 0; i < ARRAY_LEN(many) - 1; i++)
        many[i] = 0x0A01;
    many[ARRAY_LEN(many) - 1] = 0;
    static const long none[] = {0};
    size_t good_len = 0;
    OCSP_REQUEST *good_req = request_for(w->ca, EVP_sha1(), one, 16);
    unsigned char *good = der_of(good_req, &good_len);
    unsigned char trailing[1024], big[PQM_OCSP_REQUEST_MAX + 1];
    assert_true(good_len + 1 <= sizeof(trailing));
    memcpy(trailing, good, good_len);
    trailing[good_len] = 0;
    memset(big, 0x30, sizeof(big));

    OCSP_REQUEST *r_many = request_for(w->ca, EVP_sha1(), many, 0);
    OCSP_REQUEST *r_none = request_for(w->ca, EVP_sha1(), none, 0);
    OCSP_REQUEST *r_long_nonce = request_for(w->ca, EVP_sha1(), one, PQM_OCSP_NONCE_MAX + 1);
    /* OCSP_request_add1_nonce replaces a nonce: a second one is added by hand. */
    OCSP_REQUEST *r_two_nonces = request_for(w->ca, EVP_sha1(), one, 16);
    add_raw_nonce(r_two_nonces, (const unsigned char *)"\x04\x02\x01\x02", 4);
    OCSP_REQUEST *r_empty_nonce = request_for(w->ca, EVP_sha1(), one, 0);
    add_raw_nonce(r_empty_nonce, (const unsigned char *)"\x04\x00", 2);

    size_t l_many, l_none, l_long, l_two, l_empty;
    unsigned char *d_many = der_of(r_many, &l_many), *d_none = der_of(r_none, &l_none),
                  *d_long = der_of(r_long_nonce, &l_long), *d_two = der_of(r_two_nonces, &l_two),
                  *d_empty = der_of(r_empty_nonce, &l_empty);
    const struct {
        const char *what;
        const unsigned char *der;
        size_t len;
    } rows[] = {
        {"no bytes", (const unsigned char *)"", 0},
        {"text", (const unsigned char *)"GET / HTTP/1.1\r\n", 16},
        {"a lone SEQUENCE tag", (const unsigned char *)"\x30", 1},
        {"an empty SEQUENCE", (const unsigned char *)"\x30\x00", 2},
        {"a truncated request", good, good_len - 1},
        {"a request and a byte after it", trailing, good_len + 1},
        {"more than 16 KB", big, sizeof(big)},
        {"a request for no certificate", d_none, l_none},
        {"a request for 17 certificates", d_many, l_many},
        {"a nonce of 33 octets", d_long, l_long},
        {"two nonces", d_two, l_two},
        {"an empty nonce", d_empty, l_empty},
    };
    int nfail = 0;
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        struct fake f = {0};
        struct pqm_ocsp_answer a;
        pqm__ocsp_respond(&w->r, rows[i].der, rows[i].len, w->now, fake_lookup, &f, &a);
        static const unsigned char want[] = {0x30, 0x03, 0x0a, 0x01, 0x01};
        if (a.status != OCSP_RESPONSE_STATUS_MALFORMEDREQUEST || a.len != sizeof(want) ||
            memcmp(a.der, want, sizeof(want)) != 0 || a.why[0] == '\0' || f.calls != 0)
            TU_ROW_FAIL(nfail, "%s: status %d (%zu bytes), lookups %d, why '%s'", rows[i].what,
                        a.status, a.len, f.calls, a.why);
        pqm__ocsp_answer_free(&a);
    }
    OPENSSL_free(d_many);
    OPENSSL_free(d_none);
    OPENSSL_free(d_long);
    OPENSSL_free(d_two);
    OPENSSL_free(d_empty);
    OPENSSL_free(good);
    OCSP_REQUEST_free(r_many);
    OCSP_REQUEST_free(r_none);
    OCSP_REQUEST_free(r_long_nonce);
    OCSP_REQUEST_free(r_two_nonces);
    OCSP_REQUEST_free(r_empty_nonce);
    OCSP_REQUEST_free(good_req);
    TU_ROWS_DONE(nfail);
}

static void check_single(OCSP_BASICRESP *bs, X509 *ca, long serial, int want_status,
                         int want_reason, int64_t want_rev)
{
    OCSP_CERTID *id = id_for(ca, EVP_sha1(), serial);
    int status = -1, reason = -2;
    ASN1_GENERALIZEDTIME *rev = NULL, *thisupd = NULL, *nextupd = NULL;
    assert_int_equal(OCSP_resp_find_status(bs, id, &status, &reason, &rev, &thisupd, &nextupd), 1);
    assert_int_equal(status, want_status);
    assert_non_null(thisupd);
    assert_non_null(nextupd);
    assert_int_equal(ASN1_STRING_type(thisupd), V_ASN1_GENERALIZEDTIME);
    assert_int_equal(OCSP_check_validity(thisupd, nextupd, 300, -1), 1);
    if (want_status == V_OCSP_CERTSTATUS_REVOKED) {
        assert_int_equal(reason, want_reason);
        assert_non_null(rev);
        assert_int_equal(ASN1_STRING_type(rev), V_ASN1_GENERALIZEDTIME);
        ASN1_TIME *want = ASN1_TIME_set(NULL, (time_t)want_rev);
        assert_int_equal(ASN1_TIME_compare(rev, want), 0);
        ASN1_TIME_free(want);
    }
    OCSP_CERTID_free(id);
}

static void test_good_revoked_unknown(void **state)
{
    struct world *w = *state;
    static const long serials[] = {0x0A01, 0x0A02, 0x0A03, 0x0BAD, 0};
    OCSP_REQUEST *req = request_for(w->ca, EVP_sha1(), serials, 0);
    struct fake f = {0};
    OCSP_BASICRESP *bs = NULL;
    assert_int_equal(answer_status(w, &w->r, req, &f, &bs), OCSP_RESPONSE_STATUS_SUCCESSFUL);
    assert_non_null(bs);
    assert_int_equal(f.calls, 4);
    char ca_serial[64];
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(w->ca), NULL);
    assert_int_equal(pqm__serial_hex(bn, ca_serial, sizeof(ca_serial)), 0);
    BN_free(bn);
    assert_string_equal(f.issuer, ca_serial);
    assert_int_equal(OCSP_resp_count(bs), 4);
    check_single(bs, w->ca, 0x0A01, V_OCSP_CERTSTATUS_GOOD, 0, 0);
    check_single(bs, w->ca, 0x0A02, V_OCSP_CERTSTATUS_REVOKED, OCSP_REVOKED_STATUS_KEYCOMPROMISE,
                 1700000000);
    /* 'unspecified' is said by leaving the reason out, as in the CRLs. */
    check_single(bs, w->ca, 0x0A03, V_OCSP_CERTSTATUS_REVOKED, OCSP_REVOKED_STATUS_NOSTATUS,
                 1700000500);
    check_single(bs, w->ca, 0x0BAD, V_OCSP_CERTSTATUS_UNKNOWN, 0, 0);

    /* Signed by the delegated signer with ML-DSA-65, identified by its key hash, and
     * its certificate is in the response. */
    const X509_ALGOR *alg = OCSP_resp_get0_tbs_sigalg(bs);
    const ASN1_OBJECT *oid = NULL;
    X509_ALGOR_get0(&oid, NULL, NULL, alg);
    char name[64];
    OBJ_obj2txt(name, sizeof(name), oid, 0);
    assert_string_equal(name, "ML-DSA-65");
    const ASN1_OCTET_STRING *keyid = NULL;
    const X509_NAME *byname = NULL;
    assert_int_equal(OCSP_resp_get0_id(bs, &keyid, &byname), 1);
    assert_non_null(keyid);
    assert_null(byname);
    const STACK_OF(X509) *certs = OCSP_resp_get0_certs(bs);
    assert_int_equal(sk_X509_num(certs), 1);
    assert_int_equal(X509_cmp(sk_X509_value(certs, 0), w->signer), 0);
    X509 *signer = NULL;
    assert_int_equal(OCSP_resp_get0_signer(bs, &signer, NULL), 1);
    assert_int_equal(X509_cmp(signer, w->signer), 0);
    OCSP_BASICRESP_free(bs);
    OCSP_REQUEST_free(req);
}

static void test_times(void **state)
{
    struct world *w = *state;
    static const long serials[] = {0x0A01, 0};
    OCSP_REQUEST *req = request_for(w->ca, EVP_sha256(), serials, 0);
    size_t len = 0;
    unsigned char *der = der_of(req, &len);
    struct fake f = {0};
    struct pqm_ocsp_answer a;
    pqm__ocsp_respond(&w->r, der, len, w->now, fake_lookup, &f, &a);
    assert_int_equal(a.status, OCSP_RESPONSE_STATUS_SUCCESSFUL);
    /* thisUpdate a minute back: a relying party whose clock is a little behind still
     * takes the answer as current. */
    assert_int_equal(a.this_update, w->now - PQM_BACKDATE_SECONDS);
    assert_int_equal(a.next_update, w->now + VALIDITY);
    pqm__ocsp_answer_free(&a);
    /* Never beyond the signer's own life. */
    struct pqm_ocsp_responder longer = w->r;
    longer.validity = 400LL * 86400;
    pqm__ocsp_respond(&longer, der, len, w->now, fake_lookup, &f, &a);
    assert_int_equal(a.status, OCSP_RESPONSE_STATUS_SUCCESSFUL);
    assert_int_equal(a.next_update, w->r.issuers[0].signer_not_after);
    pqm__ocsp_answer_free(&a);
    OPENSSL_free(der);
    OCSP_REQUEST_free(req);
}

static void test_nonce(void **state)
{
    struct world *w = *state;
    static const long serials[] = {0x0A01, 0};
    const int lens[] = {1, 16, PQM_OCSP_NONCE_MAX};
    for (size_t i = 0; i < ARRAY_LEN(lens); i++) {
        OCSP_REQUEST *req = request_for(w->ca, EVP_sha1(), serials, lens[i]);
        struct fake f = {0};
        OCSP_BASICRESP *bs = NULL;
        size_t len = 0;
        unsigned char *der = der_of(req, &len);
        struct pqm_ocsp_answer a;
        pqm__ocsp_respond(&w->r, der, len, w->now, fake_lookup, &f, &a);
        assert_int_equal(a.nonce, 1);
        int status = -1;
        bs = read_answer(w, &a, &status);
        assert_int_equal(status, OCSP_RESPONSE_STATUS_SUCCESSFUL);
        /* 1: both carry the same nonce. */
        assert_int_equal(OCSP_check_nonce(req, bs), 1);
        OCSP_BASICRESP_free(bs);
        pqm__ocsp_answer_free(&a);
        OPENSSL_free(der);
        OCSP_REQUEST_free(req);
    }
    /* A bare value (not wrapped in an OCTET STRING, as RFC 2560 clients sent it) is
     * echoed as it came. */
    OCSP_REQUEST *req = request_for(w->ca, EVP_sha1(), serials, 0);
    add_raw_nonce(req, (const unsigned char *)"\x01\x02\x03\x04\x05\x06\x07\x08", 8);
    struct fake f = {0};
    OCSP_BASICRESP *bs = NULL;
    assert_int_equal(answer_status(w, &w->r, req, &f, &bs), OCSP_RESPONSE_STATUS_SUCCESSFUL);
    assert_int_equal(OCSP_check_nonce(req, bs), 1);
    OCSP_BASICRESP_free(bs);
    OCSP_REQUEST_free(req);
    req = request_for(w->ca, EVP_sha1(), serials, 0);
    assert_int_equal(answer_status(w, &w->r, req, &f, &bs), OCSP_RESPONSE_STATUS_SUCCESSFUL);
    /* 2: neither has one. */
    assert_int_equal(OCSP_check_nonce(req, bs), 2);
    OCSP_BASICRESP_free(bs);
    OCSP_REQUEST_free(req);
}

static void test_hashes(void **state)
{
    struct world *w = *state;
    static const long serials[] = {0x0A02, 0};
    const EVP_MD *mds[] = {EVP_sha1(), EVP_sha256(), EVP_sha384(), EVP_sha512()};
    for (size_t i = 0; i < ARRAY_LEN(mds); i++) {
        OCSP_REQUEST *req = request_for(w->ca, mds[i], serials, 0);
        struct fake f = {0};
        assert_int_equal(answer_status(w, &w->r, req, &f, NULL), OCSP_RESPONSE_STATUS_SUCCESSFUL);
        OCSP_REQUEST_free(req);
    }
    /* A CertID hashed with a digest the responder does not know names no issuer of it. */
    OCSP_REQUEST *req = request_for(w->ca, EVP_sha224(), serials, 0);
    struct fake f = {0};
    assert_int_equal(answer_status(w, &w->r, req, &f, NULL), OCSP_RESPONSE_STATUS_UNAUTHORIZED);
    OCSP_REQUEST_free(req);
}

/* Requests this responder cannot answer, with the status each gets. */
static void test_refusals(void **state)
{
    struct world *w = *state;
    static const long own[] = {0x0A01, 0};
    OCSP_REQUEST *foreign = request_for(w->foreign, EVP_sha1(), own, 0);
    OCSP_REQUEST *mixed = request_for(w->ca, EVP_sha1(), own, 0);
    assert_non_null(OCSP_request_add0_id(mixed, id_for(w->foreign, EVP_sha1(), 0x0A01)));
    OCSP_REQUEST *plain = request_for(w->ca, EVP_sha1(), own, 0);
    struct {
        const char *what;
        const struct pqm_ocsp_responder *r;
        OCSP_REQUEST *req;
        int fail_lookup;
        int want;
    } rows[] = {
        {"an issuer not served", &w->r, foreign, 0, OCSP_RESPONSE_STATUS_UNAUTHORIZED},
        {"two issuers in one request", &w->r, mixed, 0, OCSP_RESPONSE_STATUS_UNAUTHORIZED},
        {"a CA without a signer", &w->unsigned_r, plain, 0, OCSP_RESPONSE_STATUS_TRYLATER},
        {"an inventory that cannot be read", &w->r, plain, 1, OCSP_RESPONSE_STATUS_INTERNALERROR},
    };
    int nfail = 0;
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        struct fake f = {.fail = rows[i].fail_lookup};
        int got = answer_status(w, rows[i].r, rows[i].req, &f, NULL);
        if (got != rows[i].want)
            TU_ROW_FAIL(nfail, "%s: status %d, expected %d", rows[i].what, got, rows[i].want);
    }
    OCSP_REQUEST_free(foreign);
    OCSP_REQUEST_free(mixed);
    OCSP_REQUEST_free(plain);
    TU_ROWS_DONE(nfail);
}

/* Serials no certificate of a PKI can have are unknown without asking the inventory. */
static void test_odd_serials(void **state)
{
    struct world *w = *state;
    OCSP_REQUEST *req = OCSP_REQUEST_new();
    assert_non_null(req);
    ASN1_INTEGER *neg = ASN1_INTEGER_new(), *huge = NULL;
    assert_int_equal(ASN1_INTEGER_set(neg, -5), 1);
    BIGNUM *bn = BN_new();
    assert_int_equal(BN_set_bit(bn, 8 * 21), 1); /* 22 octets */
    huge = BN_to_ASN1_INTEGER(bn, NULL);
    assert_non_null(huge);
    ASN1_INTEGER *sns[2] = {neg, huge};
    for (int i = 0; i < 2; i++)
        assert_non_null(OCSP_request_add0_id(
            req, OCSP_cert_id_new(EVP_sha1(), X509_get_subject_name(w->ca),
                                  X509_get0_pubkey_bitstr(w->ca), sns[i])));
    struct fake f = {0};
    OCSP_BASICRESP *bs = NULL;
    assert_int_equal(answer_status(w, &w->r, req, &f, &bs), OCSP_RESPONSE_STATUS_SUCCESSFUL);
    assert_int_equal(f.calls, 0);
    for (int i = 0; i < 2; i++) {
        int status = -1;
        OCSP_SINGLERESP *one = OCSP_resp_get0(bs, i);
        assert_non_null(one);
        status = OCSP_single_get0_status(one, NULL, NULL, NULL, NULL);
        assert_int_equal(status, V_OCSP_CERTSTATUS_UNKNOWN);
    }
    OCSP_BASICRESP_free(bs);
    OCSP_REQUEST_free(req);
    ASN1_INTEGER_free(neg);
    ASN1_INTEGER_free(huge);
    BN_free(bn);
}

/* Answers kept for requests without a nonce: found again while half their validity is
 * left, never for a nonce, gone after a flush. */
static void test_cache(void **state)
{
    struct world *w = *state;
    static const long serials[] = {0x0A01, 0};
    OCSP_REQUEST *plain = request_for(w->ca, EVP_sha1(), serials, 0);
    OCSP_REQUEST *nonced = request_for(w->ca, EVP_sha1(), serials, 16);
    size_t plen = 0, nlen = 0;
    unsigned char *p = der_of(plain, &plen), *n = der_of(nonced, &nlen);
    struct pqm_ocsp_cache c, none;
    assert_int_equal(pqm__ocsp_cache_init(&c, 4), 0);
    assert_int_equal(pqm__ocsp_cache_init(&none, 0), 0);
    struct fake f = {0};
    struct pqm_ocsp_answer a, b, bad;
    pqm__ocsp_respond(&w->r, p, plen, w->now, fake_lookup, &f, &a);
    pqm__ocsp_respond(&w->r, n, nlen, w->now, fake_lookup, &f, &b);
    pqm__ocsp_respond(&w->r, (const unsigned char *)"x", 1, w->now, fake_lookup, &f, &bad);
    assert_null(pqm__ocsp_cache_get(&c, p, plen, w->now));
    pqm__ocsp_cache_put(&c, p, plen, &a);
    pqm__ocsp_cache_put(&c, n, nlen, &b);
    pqm__ocsp_cache_put(&c, (const unsigned char *)"x", 1, &bad);
    pqm__ocsp_cache_put(&none, p, plen, &a);
    const struct pqm_ocsp_cached *kept = pqm__ocsp_cache_get(&c, p, plen, w->now + 10);
    assert_non_null(kept);
    assert_int_equal(kept->len, a.len);
    assert_memory_equal(kept->der, a.der, a.len);
    assert_null(pqm__ocsp_cache_get(&c, n, nlen, w->now)); /* a nonce is never kept */
    assert_null(pqm__ocsp_cache_get(&c, (const unsigned char *)"x", 1, w->now));
    assert_null(pqm__ocsp_cache_get(&none, p, plen, w->now));
    /* Half its validity (from its thisUpdate, a minute back) gone, or a clock that went
     * back before its thisUpdate: made anew. */
    int64_t half_life = a.this_update + (a.next_update - a.this_update) / 2;
    assert_int_equal(half_life, w->now + VALIDITY / 2 - PQM_BACKDATE_SECONDS / 2);
    assert_non_null(pqm__ocsp_cache_get(&c, p, plen, half_life));
    assert_null(pqm__ocsp_cache_get(&c, p, plen, half_life + 1));
    assert_null(pqm__ocsp_cache_get(&c, p, plen, a.this_update - 1));
    pqm__ocsp_cache_flush(&c);
    assert_null(pqm__ocsp_cache_get(&c, p, plen, w->now));
    pqm__ocsp_cache_put(&c, p, plen, &a);
    assert_non_null(pqm__ocsp_cache_get(&c, p, plen, w->now));
    assert_true(c.hits >= 3 && c.misses >= 4);
    pqm__ocsp_answer_free(&a);
    pqm__ocsp_answer_free(&b);
    pqm__ocsp_answer_free(&bad);
    pqm__ocsp_cache_free(&c);
    pqm__ocsp_cache_free(&none);
    OPENSSL_free(p);
    OPENSSL_free(n);
    OCSP_REQUEST_free(plain);
    OCSP_REQUEST_free(nonced);
}

/* --- the inventory lookups -------------------------------------------------------------- */

static void put(struct pqm_store *s, const char *serial, const char *name, const char *kind,
                const char *issuer, const char *status, const char *key_path, int64_t not_after)
{
    char fp[80];
    snprintf(fp, sizeof(fp), "fp-%s", serial);
    struct pqm_cert_record r = {
        .serial = serial, .name = name, .kind = kind, .profile = kind, .subject = "CN=x",
        .issuer = "CN=ca", .issuer_serial = issuer, .sans = "", .key_alg = "ml-dsa-65",
        .fingerprint = fp, .status = status, .cert_path = "x.crt.pem", .key_path = key_path,
        .chain_path = "", .p12_path = "", .not_before = 1, .not_after = not_after,
        .created_at = 1,
    };
    struct pqm_err e = {{0}};
    if (pqm__store_insert(s, &r, &e) != 0)
        fail_msg("insert %s: %s", serial, pqm__err_str(&e));
}

static int remember_serial(const struct pqm_cert_record *r, void *arg)
{
    snprintf(arg, 64, "%s", r->serial);
    return 0;
}

static void test_store_lookup(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("ocsp");
    assert_non_null(dir);
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/pki.db", dir);
    struct pqm_err e = {{0}};
    struct pqm_store *w = pqm__store_open(path, 1, &e);
    assert_non_null(w);
    put(w, "A1", "a1", "client", "CA1", "valid", "", 2000000000);
    put(w, "A2", "a2", "client", "CA1", "superseded", "", 2000000000);
    put(w, "A3", "a3", "client", "CA1", "revoked", "", 2000000000);
    put(w, "A4", "a4", "client", "CA1", "pending", "", 2000000000);
    put(w, "A5", "a5", "client", "CA1", "aborted", "", 2000000000);
    assert_int_equal(pqm__store_revoke(w, "A3", "keyCompromise", 1700000001, &e), 1);
    put(w, "A6", "a6", "client", "CA1", "valid", "", 2000000000);
    assert_int_equal(pqm__store_revoke(w, "A6", "cACompromise", 1700000002, &e), 0);

    struct pqm_store *r = pqm__store_open_readonly(path, &e);
    if (r == NULL)
        fail_msg("pqm__store_open_readonly: %s", pqm__err_str(&e));
    const struct {
        const char *issuer, *serial;
        enum pqm_ocsp_cert_status want;
        int reason;
    } rows[] = {
        {"CA1", "A1", PQM_OCSP_GOOD, -1},    {"CA1", "A2", PQM_OCSP_GOOD, -1},
        {"CA1", "A4", PQM_OCSP_UNKNOWN, -1}, {"CA1", "A5", PQM_OCSP_UNKNOWN, -1},
        {"CA1", "A6", PQM_OCSP_REVOKED, 2},  {"CA2", "A1", PQM_OCSP_UNKNOWN, -1},
        {"CA1", "FF", PQM_OCSP_UNKNOWN, -1},
    };
    int nfail = 0;
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        struct pqm_ocsp_status st;
        if (pqm__ocsp_store_lookup(r, rows[i].issuer, rows[i].serial, &st) != 0 ||
            st.status != rows[i].want || st.reason != rows[i].reason ||
            (st.status == PQM_OCSP_REVOKED && st.revoked_at != 1700000002))
            TU_ROW_FAIL(nfail, "%s/%s: status %d reason %d", rows[i].issuer, rows[i].serial,
                        (int)st.status, st.reason);
    }
    /* A revocation by another connection is seen by the next lookup, and changes the
     * data version the responder's kept answers depend on. */
    int64_t v1 = -1, v2 = -1, v3 = -1;
    assert_int_equal(pqm__store_data_version(r, &v1, &e), 0);
    assert_int_equal(pqm__store_data_version(r, &v2, &e), 0);
    assert_true(v1 == v2);
    assert_int_equal(pqm__store_revoke(w, "A1", "superseded", 1700000003, &e), 0);
    assert_int_equal(pqm__store_data_version(r, &v3, &e), 0);
    assert_true(v3 != v2);
    struct pqm_ocsp_status st;
    assert_int_equal(pqm__ocsp_store_lookup(r, "CA1", "A1", &st), 0);
    assert_int_equal(st.status, PQM_OCSP_REVOKED);
    assert_int_equal(st.reason, 4);

    /* The signer: the newest of kind 'ocsp' that is usable. */
    char serial[64] = "";
    assert_int_equal(pqm__store_ocsp_signer(r, "CA1", 1900000000, remember_serial, serial, &e), 0);
    put(w, "S1", "ca1-ocsp", "ocsp", "CA1", "superseded", "ocsp/s1.key.pem", 1950000000);
    put(w, "S2", "ca1-ocsp", "ocsp", "CA1", "valid", "ocsp/s2.key.pem", 1920000000);
    put(w, "S3", "ca1-ocsp-x", "ocsp", "CA1", "valid", "", 1990000000); /* no key */
    put(w, "S4", "ca2-ocsp", "ocsp", "CA2", "valid", "ocsp/s4.key.pem", 1990000000);
    assert_int_equal(pqm__store_ocsp_signer(r, "CA1", 1900000000, remember_serial, serial, &e), 1);
    assert_string_equal(serial, "S2");
    assert_int_equal(pqm__store_ocsp_signer(r, "CA1", 1930000000, remember_serial, serial, &e), 1);
    assert_string_equal(serial, "S1"); /* S2 expired */
    assert_int_equal(pqm__store_revoke(w, "S1", "keyCompromise", 1, &e), 0);
    assert_int_equal(pqm__store_ocsp_signer(r, "CA1", 1930000000, remember_serial, serial, &e), 0);
    assert_int_equal(pqm__store_clear_key_path(w, "S2", &e), 0);
    assert_int_equal(pqm__store_ocsp_signer(r, "CA1", 1900000000, remember_serial, serial, &e), 0);
    assert_int_equal(pqm__store_clear_key_path(w, "NONE", &e), -1);

    pqm__store_close(r);
    pqm__store_close(w);
    /* Read-only: a file that is not an inventory of this schema is refused. */
    char other[PATH_MAX];
    snprintf(other, sizeof(other), "%s/other.db", dir);
    assert_int_equal(tu_write(other, "not a database"), 0);
    assert_null(pqm__store_open_readonly(other, &e));
    snprintf(other, sizeof(other), "%s/missing.db", dir);
    assert_null(pqm__store_open_readonly(other, &e));
    tu_assert_contains(pqm__err_str(&e), "missing.db");
    tu_rmtree(dir);
    free(dir);
    TU_ROWS_DONE(nfail);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signer_profile),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_good_revoked_unknown),
        cmocka_unit_test(test_times),
        cmocka_unit_test(test_nonce),
        cmocka_unit_test(test_hashes),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_odd_serials),
        cmocka_unit_test(test_cache),
        cmocka_unit_test(test_store_lookup),
    };
    return cmocka_run_group_tests(tests, world_setup, world_teardown);
}
