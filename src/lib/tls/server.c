/* The gateway's server-side TLS (see server.h). */
#include "tls/server.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "pki/keyfile.h"
#include "pki/pemfile.h"
#include "tls/trust.h"
#include "util/digest.h"

#define PQM_DEFAULT_DEPTH 2
#define PQM_VERIFY_CACHE_SLOTS 4096 /* verified client leaves remembered per configuration */
#define PQM_GROUPS_DEFAULT "X25519MLKEM768:X25519"
#define PQM_GROUPS_PQ_ONLY "X25519MLKEM768:SecP256r1MLKEM768:SecP384r1MLKEM1024"

/* A CRL whose signature was checked at load, with the CA that signed it. */
struct pqm_tls_server {
    atomic_int refs;
    /* Ticket keys are derived from this secret, drawn for each server: tickets made by
     * another listener, or before a reload (new CAs, CRLs or certificate), never
     * decrypt here, and those sessions make a full handshake. */
    unsigned char ticket_secret[32];
    uint64_t instance;
    int ticket_key_lifetime;
    SSL_CTX *ctx;
    struct pqm_trust trust; /* client certificates */
    int require_pq;
    int (*staple)(void *arg, X509 *leaf, unsigned char **der, long *len);
    void *staple_arg;
};

int pqm__tls_group_is_pq(const char *name)
{
    return name != NULL && strstr(name, "MLKEM") != NULL;
}

static void set_reason(struct pqm_tls_peer *peer, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_reason(struct pqm_tls_peer *peer, const char *code, const char *fmt, ...)
{
    if (peer == NULL || peer->reason[0] != '\0')
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(peer->reason, sizeof(peer->reason), fmt, ap);
    va_end(ap);
    peer->reason_code = code;
}

/* Replaces OpenSSL's chain verification for client certificates (tls/trust.h). */
static int verify_client(X509_STORE_CTX *xs, void *arg)
{
    struct pqm_tls_server *s = arg;
    SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
    struct pqm_tls_peer *peer = ssl != NULL ? SSL_get_app_data(ssl) : NULL;
    struct pqm_verdict v = {NULL, ""};
    if (pqm__trust_verify(&s->trust, xs, &v) == 1)
        return 1;
    set_reason(peer, v.code, "%s", v.reason);
    return 0;
}

/* With require_pq, a client that offers no post-quantum group is refused at its
 * ClientHello, with a reason that says so (a bare handshake failure would not). */
static int client_hello(SSL *ssl, int *al, void *arg)
{
    (void)arg;
    struct pqm_tls_peer *peer = SSL_get_app_data(ssl);
    const unsigned char *p = NULL;
    size_t len = 0;
    if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_supported_groups, &p, &len) == 1 &&
        len >= 2) {
        size_t n = ((size_t)p[0] << 8 | p[1]);
        for (size_t i = 2; i + 1 < len && i < n + 2; i += 2) {
            int id = p[i] << 8 | p[i + 1];
            /* SSL_group_to_name takes a NID, or TLSEXT_nid_unknown | the IANA id. */
            if (pqm__tls_group_is_pq(SSL_group_to_name(ssl, TLSEXT_nid_unknown | id)))
                return SSL_CLIENT_HELLO_SUCCESS;
        }
    }
    set_reason(peer, "not_pq",
               "the client offers no post-quantum key exchange group (require_pq is on)");
    *al = SSL_AD_HANDSHAKE_FAILURE;
    return SSL_CLIENT_HELLO_ERROR;
}

/* The client asked for the certificate's status (status_request): the current OCSP
 * response, when there is one. */
static int status_cb(SSL *ssl, void *arg)
{
    struct pqm_tls_server *s = arg;
    X509 *leaf = SSL_get_certificate(ssl);
    unsigned char *der = NULL;
    long len = 0;
    if (leaf == NULL || s->staple(s->staple_arg, leaf, &der, &len) != 1)
        return SSL_TLSEXT_ERR_NOACK;
    if (SSL_set_tlsext_status_ocsp_resp(ssl, der, len) != 1) {
        OPENSSL_free(der);
        return SSL_TLSEXT_ERR_NOACK;
    }
    return SSL_TLSEXT_ERR_OK;
}

/* The AES and HMAC keys of ticket key epoch EPOCH: HMAC-SHA256 of the server's secret. */
static int ticket_keys(const struct pqm_tls_server *s, uint64_t epoch, unsigned char aes[32],
                       unsigned char mac[32])
{
    unsigned char in[9];
    for (int i = 0; i < 8; i++)
        in[i] = (unsigned char)(epoch >> (56 - 8 * i));
    size_t len = 0;
    in[8] = 'A';
    if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, s->ticket_secret, sizeof(s->ticket_secret),
                  in, sizeof(in), aes, 32, &len) == NULL)
        return -1;
    in[8] = 'M';
    if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, s->ticket_secret, sizeof(s->ticket_secret),
                  in, sizeof(in), mac, 32, &len) == NULL)
        return -1;
    return 0;
}

/* The keys of one period, kept per thread so that they are derived once a period, not
 * once a handshake. */
struct ticket_cache {
    uint64_t instance, epoch;
    int valid;
    unsigned char aes[32], mac[32];
};
static _Thread_local struct ticket_cache tcache[2];

static int cached_ticket_keys(const struct pqm_tls_server *s, uint64_t epoch, unsigned char aes[32],
                              unsigned char mac[32])
{
    struct ticket_cache *c = &tcache[epoch & 1];
    if (!c->valid || c->instance != s->instance || c->epoch != epoch) {
        if (ticket_keys(s, epoch, c->aes, c->mac) != 0) {
            c->valid = 0;
            return -1;
        }
        c->instance = s->instance;
        c->epoch = epoch;
        c->valid = 1;
    }
    memcpy(aes, c->aes, 32);
    memcpy(mac, c->mac, 32);
    return 0;
}

/* Ticket keys rotate every ticket_key_lifetime seconds; a ticket from the previous
 * period is still accepted (and replaced by a new one), anything older is not. The key
 * name carries the server's instance and the period. */
static int ticket_key_cb(SSL *ssl, unsigned char name[16], unsigned char *iv,
                         EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
    const struct pqm_tls_server *s = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    uint64_t now = (uint64_t)time(NULL) / (uint64_t)s->ticket_key_lifetime, epoch = now;
    if (enc) {
        for (int i = 0; i < 8; i++) {
            name[i] = (unsigned char)(s->instance >> (56 - 8 * i));
            name[8 + i] = (unsigned char)(epoch >> (56 - 8 * i));
        }
        if (RAND_bytes(iv, 16) != 1)
            return -1;
    } else {
        uint64_t inst = 0;
        epoch = 0;
        for (int i = 0; i < 8; i++) {
            inst = inst << 8 | name[i];
            epoch = epoch << 8 | name[8 + i];
        }
        if (inst != s->instance || (epoch != now && epoch + 1 != now))
            return 0; /* not ours, or too old: a full handshake */
    }
    unsigned char aes[32], mac[32];
    if (cached_ticket_keys(s, epoch, aes, mac) != 0)
        return -1;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, mac, sizeof(mac)),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    int ok = EVP_MAC_CTX_set_params(hctx, params) == 1 &&
             (enc ? EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, aes, iv)
                  : EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, aes, iv)) == 1;
    OPENSSL_cleanse(aes, sizeof(aes));
    OPENSSL_cleanse(mac, sizeof(mac));
    if (!ok)
        return -1;
    return enc || epoch == now ? 1 : 2; /* 2: use, and issue a fresh ticket */
}

/* A session is resumed only while its certificate's chain is still valid and not
 * revoked by the CRLs loaded now, each of them current (what a full handshake would
 * check again; the rest cannot have changed without a reload, which changes the ticket
 * keys). */
static SSL_TICKET_RETURN ticket_decrypted(SSL *ssl, SSL_SESSION *ss,
                                          const unsigned char *keyname, size_t keyname_len,
                                          SSL_TICKET_STATUS status, void *arg)
{
    (void)keyname;
    (void)keyname_len;
    struct pqm_tls_server *s = arg;
    if (status != SSL_TICKET_SUCCESS && status != SSL_TICKET_SUCCESS_RENEW)
        return SSL_TICKET_RETURN_IGNORE_RENEW;
    X509 *leaf = SSL_SESSION_get0_peer(ss);
    if (leaf == NULL)
        return SSL_TICKET_RETURN_IGNORE_RENEW;
    /* The chain up through the anchors: every certificate still valid, each CA's CRL
     * current and none of them revoked, as a full handshake would find. */
    int err = X509_V_OK;
    struct pqm_verdict v = {NULL, ""};
    if (pqm__trust_recheck(&s->trust, leaf, &err, &v) != 0) {
        struct pqm_tls_peer *peer = SSL_get_app_data(ssl);
        if (peer != NULL && err == X509_V_ERR_CERT_REVOKED)
            snprintf(peer->resume_refused, sizeof(peer->resume_refused), "%s", v.reason);
        return SSL_TICKET_RETURN_IGNORE_RENEW;
    }
    return status == SSL_TICKET_SUCCESS_RENEW ? SSL_TICKET_RETURN_USE_RENEW
                                              : SSL_TICKET_RETURN_USE;
}

static int setup_tickets(struct pqm_tls_server *s, const struct pqm_tls_server_opts *o,
                         struct pqm_err *e)
{
    if (!o->session_tickets) {
        SSL_CTX_set_options(s->ctx, SSL_OP_NO_TICKET);
        SSL_CTX_set_num_tickets(s->ctx, 0);
        return 0;
    }
    s->ticket_key_lifetime = o->ticket_key_lifetime > 0 ? o->ticket_key_lifetime : 3600;
    if (RAND_bytes(s->ticket_secret, sizeof(s->ticket_secret)) != 1 ||
        RAND_bytes((unsigned char *)&s->instance, sizeof(s->instance)) != 1)
        return pqm__err_ossl(e, "cannot draw the session ticket secret");
    SSL_CTX_set_app_data(s->ctx, s);
    /* Required with client certificates: a session resumes only in the context (this
     * server) that made it. */
    if (SSL_CTX_set_session_id_context(s->ctx, (const unsigned char *)&s->instance,
                                       sizeof(s->instance)) != 1)
        return pqm__err_ossl(e, "cannot set the session id context");
    SSL_CTX_set_num_tickets(s->ctx, 1);
    SSL_CTX_set_timeout(s->ctx, 2 * s->ticket_key_lifetime);
    if (SSL_CTX_set_tlsext_ticket_key_evp_cb(s->ctx, ticket_key_cb) != 1 ||
        SSL_CTX_set_session_ticket_cb(s->ctx, NULL, ticket_decrypted, s) != 1)
        return pqm__err_ossl(e, "cannot set up session tickets");
    return 0;
}

/* Tells clients which CAs to present a certificate from. */
static int set_client_ca_list(struct pqm_tls_server *s, struct pqm_err *e)
{
    STACK_OF(X509_NAME) *names = sk_X509_NAME_new_null();
    if (names == NULL)
        return pqm__err_set(e, "out of memory");
    for (int i = 0; i < sk_X509_num(s->trust.cas); i++) {
        X509_NAME *n = X509_NAME_dup(X509_get_subject_name(sk_X509_value(s->trust.cas, i)));
        if (n == NULL || sk_X509_NAME_push(names, n) <= 0) {
            X509_NAME_free(n);
            sk_X509_NAME_pop_free(names, X509_NAME_free);
            return pqm__err_set(e, "out of memory");
        }
    }
    SSL_CTX_set_client_CA_list(s->ctx, names);
    return 0;
}

static int load_identity(struct pqm_tls_server *s, const struct pqm_tls_server_opts *o,
                         struct pqm_err *e)
{
    if (o->cert_file == NULL || o->key_file == NULL)
        return pqm__err_set(e, "a server certificate (cert) and key (key) are required");
    if (SSL_CTX_use_certificate_chain_file(s->ctx, o->cert_file) != 1)
        return pqm__err_ossl(e, "%s: cannot load the server certificate chain", o->cert_file);
    EVP_PKEY *key = pqm__key_load(o->key_file, o->key_pass, o->key_passlen, e);
    if (key == NULL)
        return -1;
    int ok = SSL_CTX_use_PrivateKey(s->ctx, key) == 1;
    EVP_PKEY_free(key);
    if (!ok)
        return pqm__err_ossl(e, "%s: cannot use the key", o->key_file);
    if (SSL_CTX_check_private_key(s->ctx) != 1)
        return pqm__err_ossl(e, "%s: the key does not match the certificate %s", o->key_file,
                             o->cert_file);
    return 0;
}

struct pqm_tls_server *pqm__tls_server_new(const struct pqm_tls_server_opts *o,
                                           struct pqm_err *e)
{
    struct pqm_tls_server *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        pqm__err_set(e, "out of memory");
        return NULL;
    }
    atomic_init(&s->refs, 1);
    s->trust.depth = o->verify_depth > 0 ? o->verify_depth : PQM_DEFAULT_DEPTH;
    s->trust.purpose = X509_PURPOSE_SSL_CLIENT;
    s->trust.crl_soft_fail = o->crl_soft_fail;
    s->require_pq = o->require_pq;
    const char *groups = o->groups != NULL ? o->groups
                         : o->require_pq   ? PQM_GROUPS_PQ_ONLY
                                           : PQM_GROUPS_DEFAULT;
    s->ctx = SSL_CTX_new_ex(NULL, NULL, TLS_server_method());
    if (s->ctx == NULL) {
        pqm__err_ossl(e, "out of memory");
        goto fail;
    }
    if (SSL_CTX_set_min_proto_version(s->ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(s->ctx, TLS1_3_VERSION) != 1) {
        pqm__err_ossl(e, "cannot restrict TLS to version 1.3");
        goto fail;
    }
    if (SSL_CTX_set1_groups_list(s->ctx, groups) != 1) {
        pqm__err_ossl(e, "groups '%s': not supported by this OpenSSL", groups);
        goto fail;
    }
    /* Stateless TLS 1.3 tickets only: no server-side session cache to share or bound. */
    SSL_CTX_set_options(s->ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_session_cache_mode(s->ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_mode(s->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                                 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
    /* One read for a record's header and body (and whatever follows), not two. */
    SSL_CTX_set_read_ahead(s->ctx, 1);
    pqm__tls_stream_ctx_setup(s->ctx); /* the records after the handshake: tls/record.h */
    if (load_identity(s, o, e) != 0 ||
        pqm__trust_load(&s->trust, o->client_ca_file, o->crl_files, o->ncrl, "client_ca", e) != 0 ||
        set_client_ca_list(s, e) != 0 || setup_tickets(s, o, e) != 0)
        goto fail;
    /* A client that connects again with the same certificate is not verified in full
     * again: tls/trust.h, docs/decisions.md. */
    if (o->verify_cache != NULL &&
        pqm__trust_cache_enable(&s->trust, PQM_VERIFY_CACHE_SLOTS, o->verify_cache) != 0) {
        pqm__err_set(e, "out of memory");
        goto fail;
    }
    if (SSL_CTX_set1_verify_cert_store(s->ctx, s->trust.store) != 1) {
        pqm__err_ossl(e, "cannot set the client CA store");
        goto fail;
    }
    SSL_CTX_set_verify(s->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    SSL_CTX_set_verify_depth(s->ctx, s->trust.depth);
    SSL_CTX_set_cert_verify_callback(s->ctx, verify_client, s);
    if (s->require_pq)
        SSL_CTX_set_client_hello_cb(s->ctx, client_hello, s);
    if (o->staple != NULL) {
        s->staple = o->staple;
        s->staple_arg = o->staple_arg;
        if (SSL_CTX_set_tlsext_status_cb(s->ctx, status_cb) != 1 ||
            SSL_CTX_set_tlsext_status_arg(s->ctx, s) != 1) {
            pqm__err_ossl(e, "cannot set up OCSP stapling");
            goto fail;
        }
    }
    return s;
fail:
    pqm__tls_server_free(s);
    return NULL;
}

struct pqm_tls_server *pqm__tls_server_ref(struct pqm_tls_server *s)
{
    atomic_fetch_add(&s->refs, 1);
    return s;
}

void pqm__tls_server_free(struct pqm_tls_server *s)
{
    if (s == NULL || atomic_fetch_sub(&s->refs, 1) > 1)
        return;
    OPENSSL_cleanse(s->ticket_secret, sizeof(s->ticket_secret));
    pqm__trust_free(&s->trust);
    SSL_CTX_free(s->ctx);
    free(s);
}

void pqm__tls_server_identity(const struct pqm_tls_server *s, X509 **leaf, X509 **issuer)
{
    STACK_OF(X509) *chain = NULL;
    *leaf = SSL_CTX_get0_certificate(s->ctx);
    *issuer = NULL;
    if (SSL_CTX_get0_chain_certs(s->ctx, &chain) == 1 && chain != NULL &&
        sk_X509_num(chain) > 0)
        *issuer = sk_X509_value(chain, 0);
}

X509 *pqm__tls_server_client_issuer(const struct pqm_tls_server *s, X509 *x)
{
    return pqm__trust_issuer_of(&s->trust, x);
}

SSL_CTX *pqm__tls_server_ctx(const struct pqm_tls_server *s)
{
    return s->ctx;
}

SSL *pqm__tls_server_ssl(struct pqm_tls_server *s, struct pqm_tls_stream *st,
                         struct pqm_tls_peer *peer)
{
    SSL *ssl = SSL_new(s->ctx);
    if (ssl == NULL)
        return NULL;
    if (pqm__tls_stream_attach(st, ssl) != 0) {
        SSL_free(ssl);
        return NULL;
    }
    memset(peer, 0, sizeof(*peer));
    SSL_set_app_data(ssl, peer);
    SSL_set_accept_state(ssl);
    return ssl;
}

/* 1 when D holds only printable ASCII without spaces (RFC 3986 characters and
 * anything else a header value can carry safely). */
static int uri_text_ok(const unsigned char *d, int len)
{
    for (int i = 0; i < len; i++)
        if (d[i] <= 0x20 || d[i] >= 0x7f)
            return 0;
    return 1;
}

/* The first spiffe:// URI SAN, and the DNS SANs (NUL-separated, "" at the end). Returns
 * -1 when a URI SAN holds a control character, a space or a non-ASCII byte: such an ID
 * could not go into a header unchanged, and no CA should have signed it. */
static int sans_of(X509 *x, struct pqm_tls_peer *peer)
{
    int rc = 0;
    peer->spiffe[0] = '\0';
    size_t used = 0;
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type != GEN_URI && g->type != GEN_DNS)
            continue;
        const ASN1_STRING *str = g->type == GEN_URI ? g->d.uniformResourceIdentifier : g->d.dNSName;
        const unsigned char *d = ASN1_STRING_get0_data(str);
        int len = ASN1_STRING_length(str);
        if (g->type == GEN_URI && !uri_text_ok(d, len)) {
            rc = -1;
            break;
        }
        if (len <= 0 || memchr(d, '\0', (size_t)len) != NULL)
            continue;
        if (g->type == GEN_URI && peer->spiffe[0] == '\0' && len > 9 &&
            (size_t)len < sizeof(peer->spiffe) && strncmp((const char *)d, "spiffe://", 9) == 0) {
            memcpy(peer->spiffe, d, (size_t)len);
            peer->spiffe[len] = '\0';
        } else if (g->type == GEN_DNS && used + (size_t)len + 2 <= sizeof(peer->dns)) {
            memcpy(peer->dns + used, d, (size_t)len);
            used += (size_t)len;
            peer->dns[used++] = '\0';
        }
    }
    peer->dns[used] = '\0';
    GENERAL_NAMES_free(gens);
    return rc;
}

/* The text of the first NID entry of NAME, "" when there is none. */
static void name_entry(const X509_NAME *name, int nid, char *out, size_t outlen)
{
    out[0] = '\0';
    int pos = X509_NAME_get_index_by_NID(name, nid, -1);
    if (pos < 0)
        return;
    unsigned char *utf8 = NULL;
    int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, pos)));
    if (len > 0 && (size_t)len < outlen && memchr(utf8, '\0', (size_t)len) == NULL) {
        memcpy(out, utf8, (size_t)len);
        out[len] = '\0';
    }
    OPENSSL_free(utf8);
}

int pqm__tls_peer_read(struct pqm_tls_server *s, SSL *ssl, struct pqm_tls_peer *peer)
{
    const char *group = SSL_get0_group_name(ssl);
    snprintf(peer->group, sizeof(peer->group), "%s", group != NULL ? group : "");
    snprintf(peer->version, sizeof(peer->version), "%s", SSL_get_version(ssl));
    int nid = NID_undef;
    if (SSL_get_peer_signature_type_nid(ssl, &nid) == 1 && nid != NID_undef)
        snprintf(peer->sigalg, sizeof(peer->sigalg), "%s", OBJ_nid2sn(nid));
    peer->resumed = SSL_session_reused(ssl);
    peer->post_quantum = pqm__tls_group_is_pq(peer->group);
    if (s->require_pq && !peer->post_quantum) {
        set_reason(peer, "not_pq", "the handshake negotiated %s, not a post-quantum group",
                   peer->group[0] ? peer->group : "no group");
        return -1;
    }
    X509 *leaf = SSL_get0_peer_certificate(ssl);
    if (leaf == NULL) {
        set_reason(peer, "no_certificate", "no client certificate");
        return -1;
    }
    pqm__name_text(X509_get_subject_name(leaf), peer->subject, sizeof(peer->subject));
    pqm__name_text(X509_get_issuer_name(leaf), peer->issuer, sizeof(peer->issuer));
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf), NULL);
    char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;
    /* Whole bytes, as openssl x509 -serial prints them (0 is "00"). */
    snprintf(peer->serial, sizeof(peer->serial), "%s%s",
             hex != NULL && strlen(hex) % 2 == 1 ? "0" : "", hex != NULL ? hex : "");
    OPENSSL_free(hex);
    BN_free(bn);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (X509_digest(leaf, EVP_sha256(), md, &mdlen) == 1 && mdlen == 32)
        pqm__hex(md, mdlen, peer->fingerprint);
    if (sans_of(leaf, peer) != 0) {
        set_reason(peer, "bad_certificate",
                   "the client certificate has a URI SAN with a control character, a space or a "
                   "non-ASCII byte");
        return -1;
    }
    name_entry(X509_get_subject_name(leaf), NID_commonName, peer->cn, sizeof(peer->cn));
    name_entry(X509_get_subject_name(leaf), NID_organizationName, peer->org, sizeof(peer->org));
    int days = 0, secs = 0;
    if (ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(leaf)) == 1)
        peer->not_after = (int64_t)time(NULL) + (int64_t)days * 86400 + secs;
    return 0;
}

void pqm__tls_peer_failed(SSL *ssl, struct pqm_tls_peer *peer, unsigned long ossl_err)
{
    (void)ssl;
    if (peer->reason[0] != '\0')
        return;
    int reason = ERR_GET_REASON(ossl_err);
    if (reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE)
        set_reason(peer, "no_certificate", "the client presented no certificate");
    else if (reason == SSL_R_UNSUPPORTED_PROTOCOL || reason == SSL_R_WRONG_VERSION_NUMBER)
        set_reason(peer, "protocol", "the client does not speak TLS 1.3");
    else if (reason == SSL_R_NO_SHARED_GROUPS)
        set_reason(peer, "no_shared_group", "no key exchange group in common with the client");
    else if (ossl_err != 0)
        set_reason(peer, "handshake", "TLS handshake failed: %s",
                   ERR_reason_error_string(ossl_err) ? ERR_reason_error_string(ossl_err)
                                                     : "unknown error");
    else
        set_reason(peer, "handshake", "the client closed the connection during the handshake");
}
