/* What a certificate says, for people (text) and programs (JSON). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/x509v3.h>
#include <pqmtls/x509.h>

#include "pki/alg.h"
#include "pki/certbuild.h"
#include "pki/names.h"
#include "pki/pki_internal.h"
#include "util/timeutil.h"

struct pqm_certinfo {
    json_t *obj; /* the description, built once at load */
};

static const struct {
    uint32_t bit;
    const char *name;
} ku_names[] = {
    {KU_DIGITAL_SIGNATURE, "digitalSignature"}, {KU_NON_REPUDIATION, "contentCommitment"},
    {KU_KEY_ENCIPHERMENT, "keyEncipherment"},   {KU_DATA_ENCIPHERMENT, "dataEncipherment"},
    {KU_KEY_AGREEMENT, "keyAgreement"},         {KU_KEY_CERT_SIGN, "keyCertSign"},
    {KU_CRL_SIGN, "cRLSign"},                   {KU_ENCIPHER_ONLY, "encipherOnly"},
    {KU_DECIPHER_ONLY, "decipherOnly"},
};

static void set_str(json_t *o, const char *k, const char *v)
{
    json_object_set_new(o, k, json_string(v != NULL ? v : ""));
}

static json_t *general_names(const GENERAL_NAMES *gens)
{
    json_t *a = json_array();
    char one[PQM_GN_TEXT_MAX];
    for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
        pqm__gn_format(sk_GENERAL_NAME_value(gens, i), one, sizeof(one));
        json_array_append_new(a, json_string(one));
    }
    return a;
}

static json_t *subtrees(const STACK_OF(GENERAL_SUBTREE) *st)
{
    json_t *a = json_array();
    char one[PQM_GN_TEXT_MAX];
    for (int i = 0; i < sk_GENERAL_SUBTREE_num(st); i++) {
        pqm__gn_format(sk_GENERAL_SUBTREE_value(st, i)->base, one, sizeof(one));
        json_array_append_new(a, json_string(one));
    }
    return a;
}

static const char *sig_alg_name(const X509 *x, char *buf, size_t len)
{
    const X509_ALGOR *alg = NULL;
    const ASN1_OBJECT *obj = NULL;
    X509_get0_signature(NULL, &alg, x);
    X509_ALGOR_get0(&obj, NULL, NULL, alg);
    int nid = OBJ_obj2nid(obj);
    if (nid != NID_undef)
        return OBJ_nid2sn(nid);
    OBJ_obj2txt(buf, (int)len, obj, 1);
    return buf;
}

static void hex(const unsigned char *d, int len, char *out, size_t outlen)
{
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < len && used + 3 < outlen; i++)
        used += (size_t)snprintf(out + used, outlen - used, "%s%02X", i ? ":" : "", d[i]);
}

static void add_extensions(json_t *o, X509 *x)
{
    json_object_set_new(o, "is_ca", json_boolean(X509_check_ca(x) > 0));
    long pl = X509_get_pathlen(x);
    json_object_set_new(o, "path_len", pl >= 0 ? json_integer(pl) : json_null());

    json_t *ku = json_array();
    uint32_t bits = X509_get_key_usage(x);
    if (X509_get_extension_flags(x) & EXFLAG_KUSAGE)
        for (size_t i = 0; i < sizeof(ku_names) / sizeof(ku_names[0]); i++)
            if (bits & ku_names[i].bit)
                json_array_append_new(ku, json_string(ku_names[i].name));
    json_object_set_new(o, "key_usage", ku);

    json_t *eku = json_array();
    EXTENDED_KEY_USAGE *ext = X509_get_ext_d2i(x, NID_ext_key_usage, NULL, NULL);
    for (int i = 0; i < sk_ASN1_OBJECT_num(ext); i++) {
        char buf[128];
        const ASN1_OBJECT *obj = sk_ASN1_OBJECT_value(ext, i);
        int nid = OBJ_obj2nid(obj);
        if (nid != NID_undef)
            json_array_append_new(eku, json_string(OBJ_nid2sn(nid)));
        else if (OBJ_obj2txt(buf, sizeof(buf), obj, 1) > 0)
            json_array_append_new(eku, json_string(buf));
    }
    EXTENDED_KEY_USAGE_free(ext);
    json_object_set_new(o, "extended_key_usage", eku);

    GENERAL_NAMES *sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    json_object_set_new(o, "sans", general_names(sans));
    const char *spiffe = NULL;
    for (int i = 0; i < sk_GENERAL_NAME_num(sans) && spiffe == NULL; i++) {
        int type;
        const ASN1_STRING *s = GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(sans, i), &type);
        if (type == GEN_URI && ASN1_STRING_length(s) > 9 &&
            strncmp((const char *)ASN1_STRING_get0_data(s), "spiffe://", 9) == 0)
            spiffe = (const char *)ASN1_STRING_get0_data(s);
    }
    json_object_set_new(o, "spiffe_id", spiffe != NULL ? json_string(spiffe) : json_null());
    GENERAL_NAMES_free(sans);

    NAME_CONSTRAINTS *nc = X509_get_ext_d2i(x, NID_name_constraints, NULL, NULL);
    if (nc != NULL) {
        json_t *n = json_object();
        json_object_set_new(n, "permitted", subtrees(nc->permittedSubtrees));
        json_object_set_new(n, "excluded", subtrees(nc->excludedSubtrees));
        json_object_set_new(o, "name_constraints", n);
        NAME_CONSTRAINTS_free(nc);
    } else {
        json_object_set_new(o, "name_constraints", json_null());
    }

    char buf[128];
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(x);
    hex(ski ? ASN1_STRING_get0_data(ski) : NULL, ski ? ASN1_STRING_length(ski) : 0, buf,
        sizeof(buf));
    set_str(o, "subject_key_id", buf);
    const ASN1_OCTET_STRING *aki = X509_get0_authority_key_id(x);
    hex(aki ? ASN1_STRING_get0_data(aki) : NULL, aki ? ASN1_STRING_length(aki) : 0, buf,
        sizeof(buf));
    set_str(o, "authority_key_id", buf);
}

static json_t *describe(X509 *x, const char *path)
{
    json_t *o = json_object();
    char buf[1024], fp[65], serial[64] = "";
    if (o == NULL)
        return NULL;
    set_str(o, "file", path);
    pqm__name_string(X509_get_subject_name(x), buf, sizeof(buf));
    set_str(o, "subject", buf);
    pqm__name_string(X509_get_issuer_name(x), buf, sizeof(buf));
    set_str(o, "issuer", buf);
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    if (bn != NULL)
        pqm__serial_hex(bn, serial, sizeof(serial));
    BN_free(bn);
    set_str(o, "serial", serial);
    set_str(o, "sha256_fingerprint", pqm__cert_fingerprint(x, fp) == 0 ? fp : "");
    EVP_PKEY *pub = X509_get0_pubkey(x);
    set_str(o, "key_algorithm", pub != NULL ? pqm__alg_name_of_key(pub) : "unknown");
    set_str(o, "signature_algorithm", sig_alg_name(x, buf, sizeof(buf)));
    json_object_set_new(o, "self_signed", json_boolean(X509_self_signed(x, 0) == 1));
    int64_t nb = 0, na = 0;
    pqm__asn1_time_to_epoch(X509_get0_notBefore(x), &nb);
    pqm__asn1_time_to_epoch(X509_get0_notAfter(x), &na);
    pqm__format_time(nb, buf, sizeof(buf));
    set_str(o, "not_before", buf);
    pqm__format_time(na, buf, sizeof(buf));
    set_str(o, "not_after", buf);
    int64_t now = (int64_t)time(NULL);
    json_object_set_new(o, "days_left", json_integer(na > now ? (na - now) / 86400 : 0));
    json_object_set_new(o, "expired", json_boolean(na <= now));
    add_extensions(o, x);
    return o;
}

struct pqm_certinfo *pqm_certinfo_load(const char *path, char *err, size_t errlen)
{
    struct pqm_err e = {{0}};
    X509 *x = pqm__cert_load(path, &e);
    if (x == NULL) {
        snprintf(err, errlen, "%s", pqm__err_str(&e));
        return NULL;
    }
    struct pqm_certinfo *info = calloc(1, sizeof(*info));
    if (info != NULL)
        info->obj = describe(x, path);
    X509_free(x);
    if (info == NULL || info->obj == NULL) {
        pqm_certinfo_free(info);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    return info;
}

void pqm_certinfo_free(struct pqm_certinfo *info)
{
    if (info == NULL)
        return;
    json_decref(info->obj);
    free(info);
}

char *pqm_certinfo_json(const struct pqm_certinfo *info)
{
    return json_dumps(info->obj, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
}

static void join_array(const json_t *a, char *out, size_t outlen)
{
    size_t used = 0, i;
    json_t *v;
    out[0] = '\0';
    json_array_foreach(a, i, v)
    {
        int n = snprintf(out + used, outlen - used, "%s%s", i ? ", " : "", json_string_value(v));
        if (n < 0 || (size_t)n >= outlen - used)
            break;
        used += (size_t)n;
    }
    if (used == 0)
        snprintf(out, outlen, "(none)");
}

static const char *s(const json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v != NULL ? v : "";
}

char *pqm_certinfo_text(const struct pqm_certinfo *info)
{
    const json_t *o = info->obj;
    char ku[256], eku[256], sans[2048], nc[2048] = "";
    join_array(json_object_get(o, "key_usage"), ku, sizeof(ku));
    join_array(json_object_get(o, "extended_key_usage"), eku, sizeof(eku));
    join_array(json_object_get(o, "sans"), sans, sizeof(sans));
    const json_t *ncs = json_object_get(o, "name_constraints");
    if (json_is_object(ncs)) {
        char perm[1000], excl[1000];
        join_array(json_object_get(ncs, "permitted"), perm, sizeof(perm));
        join_array(json_object_get(ncs, "excluded"), excl, sizeof(excl));
        snprintf(nc, sizeof(nc), "Name constraints:   permitted %s; excluded %s\n", perm, excl);
    }
    const json_t *pl = json_object_get(o, "path_len");
    char ca[64];
    if (json_is_true(json_object_get(o, "is_ca")))
        snprintf(ca, sizeof(ca), json_is_integer(pl) ? "yes, path length %lld" : "yes",
                 (long long)json_integer_value(pl));
    else
        snprintf(ca, sizeof(ca), "no");
    const json_t *spiffe = json_object_get(o, "spiffe_id");
    size_t len = 8192;
    char *out = malloc(len);
    if (out == NULL)
        return NULL;
    snprintf(out, len,
             "File:               %s\n"
             "Subject:            %s\n"
             "Issuer:             %s\n"
             "Serial:             %s\n"
             "SHA-256:            %s\n"
             "Key algorithm:      %s\n"
             "Signature:          %s\n"
             "CA:                 %s\n"
             "Key usage:          %s\n"
             "Extended key usage: %s\n"
             "SANs:               %s\n"
             "%s%s%s"
             "%s"
             "Not before:         %s\n"
             "Not after:          %s (%s%lld days left)\n",
             s(o, "file"), s(o, "subject"), s(o, "issuer"), s(o, "serial"),
             s(o, "sha256_fingerprint"), s(o, "key_algorithm"), s(o, "signature_algorithm"), ca,
             ku, eku, sans, json_is_string(spiffe) ? "SPIFFE ID:          " : "",
             json_is_string(spiffe) ? json_string_value(spiffe) : "",
             json_is_string(spiffe) ? "\n" : "", nc, s(o, "not_before"), s(o, "not_after"),
             json_is_true(json_object_get(o, "expired")) ? "EXPIRED, " : "",
             (long long)json_integer_value(json_object_get(o, "days_left")));
    return out;
}
