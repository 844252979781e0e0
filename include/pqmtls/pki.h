/*
 * pqmtls PKI: build a three-tier post-quantum PKI (root CA, server and client
 * intermediate CAs) and issue certificates from it.
 *
 * Handles are opaque. Functions return 0 on success and -1 on failure (or NULL);
 * the reason is read with the handle's *_error() function. Setters copy what
 * they are given. Defaults are the secure ones: ML-DSA-65, encrypted keys.
 */
#ifndef PQMTLS_PKI_H
#define PQMTLS_PKI_H

#include <stddef.h>
#include <stdint.h>
#include <pqmtls/common.h>

#ifdef __cplusplus
extern "C" {
#endif

struct pqm_pki_config;
struct pqm_pki;
struct pqm_issue;

enum pqm_profile {
    PQM_PROFILE_SERVER = 1, /* EKU serverAuth, SANs DNS/IP */
    PQM_PROFILE_CLIENT = 2, /* EKU clientAuth, optional SPIFFE ID URI SAN */
};

/* --- configuration of a new PKI (pqm_pki_create) --- */
PQM_API struct pqm_pki_config *pqm_pki_config_new(void);
PQM_API void pqm_pki_config_free(struct pqm_pki_config *cfg);
PQM_API const char *pqm_pki_config_error(const struct pqm_pki_config *cfg);
/* Algorithm of all three CAs and of issued keys: "ml-dsa-65" (default), "ml-dsa-44",
 * "ml-dsa-87", "slh-dsa-sha2-128s", "ecdsa-p256", "ecdsa-p384", "ed25519", "rsa-3072". */
PQM_API int pqm_pki_config_set_alg(struct pqm_pki_config *cfg, const char *alg);
/* Algorithm of the root alone (e.g. "slh-dsa-sha2-128s" for a long-lived root). */
PQM_API int pqm_pki_config_set_root_alg(struct pqm_pki_config *cfg, const char *alg);
PQM_API int pqm_pki_config_set_org(struct pqm_pki_config *cfg, const char *org);
PQM_API int pqm_pki_config_set_root_cn(struct pqm_pki_config *cfg, const char *cn);
PQM_API int pqm_pki_config_set_server_ca_cn(struct pqm_pki_config *cfg, const char *cn);
PQM_API int pqm_pki_config_set_client_ca_cn(struct pqm_pki_config *cfg, const char *cn);
PQM_API int pqm_pki_config_set_root_days(struct pqm_pki_config *cfg, int days);
PQM_API int pqm_pki_config_set_ca_days(struct pqm_pki_config *cfg, int days);
/* DNS subtree permitted to the server intermediate ("example.com"). Repeatable. */
PQM_API int pqm_pki_config_add_server_domain(struct pqm_pki_config *cfg, const char *domain);
/* IP range permitted to the server intermediate ("127.0.0.1/32", "fd00::/8"), or "none".
 * Without any, loopback only (127.0.0.0/8 and ::1/128) is permitted. */
PQM_API int pqm_pki_config_add_server_ip_range(struct pqm_pki_config *cfg, const char *cidr);
/* SPIFFE trust domain: the client intermediate permits only URIs in it. */
PQM_API int pqm_pki_config_set_spiffe_trust_domain(struct pqm_pki_config *cfg, const char *td);
/* Where verifiers fetch CRLs: a base URL ("http://pki.example.com/crl"); each certificate
 * a CA issues carries cRLDistributionPoints BASE/<that CA>.crl (root-ca.crl,
 * server-int-ca.crl, client-int-ca.crl: the DER files `pki crl` writes under DIR/crl/).
 * "" or "none": no distribution point. */
PQM_API int pqm_pki_config_set_crl_url(struct pqm_pki_config *cfg, const char *url);
/* The OCSP responder's URL: issued server and client certificates carry it in
 * authorityInfoAccess. */
PQM_API int pqm_pki_config_set_ocsp_url(struct pqm_pki_config *cfg, const char *url);
/* Passphrase that encrypts the CA keys (and, by default, issued keys). */
PQM_API int pqm_pki_config_set_passphrase(struct pqm_pki_config *cfg, const char *pass, size_t len);
/* Write unencrypted keys instead (still mode 0600). */
PQM_API void pqm_pki_config_insecure_no_passphrase(struct pqm_pki_config *cfg);
/* The lifetime profile of the PKI's leaf certificates, recorded in its inventory: how
 * long `pqm_pki_issue` makes them when not told (pqm_issue_set_lifetime), and how long
 * before they expire `pqm_pki_renew` replaces them when not told. One of:
 *   "default"       365 days, renewed when 30 days remain (a PKI made without a profile)
 *   "cloud-native"  24 hours, renewed when 8 hours remain
 *   "financial"     90 days, renewed when 30 days remain
 *   "healthcare"    365 days, renewed when 122 days remain
 *   "iot"           3 years, renewed when 1 year remains; CAs 20 (root) and 10 years
 * Root and intermediate validity set with pqm_pki_config_set_root_days/_ca_days win
 * over the profile's. */
PQM_API int pqm_pki_config_set_profile(struct pqm_pki_config *cfg, const char *profile);

/* --- a PKI directory --- */
PQM_API struct pqm_pki *pqm_pki_new(void);
PQM_API void pqm_pki_free(struct pqm_pki *pki);
PQM_API const char *pqm_pki_error(const struct pqm_pki *pki);
/* Creates DIR (which must not exist, or be empty) atomically, and opens it. */
PQM_API int pqm_pki_create(struct pqm_pki *pki, const char *dir, const struct pqm_pki_config *cfg);
PQM_API int pqm_pki_open(struct pqm_pki *pki, const char *dir);
/* Unlocks the CA keys (needed to issue when the PKI is encrypted). */
PQM_API int pqm_pki_set_passphrase(struct pqm_pki *pki, const char *pass, size_t len);
PQM_API int pqm_pki_is_encrypted(const struct pqm_pki *pki);
/* Changes the URLs later certificates carry (NULL: leave as is; "" or "none": remove).
 * Certificates already issued keep theirs; `pki renew` re-issues with the new ones. */
PQM_API int pqm_pki_set_urls(struct pqm_pki *pki, const char *crl_url, const char *ocsp_url);
/* The configured URLs; "" when none. */
PQM_API const char *pqm_pki_crl_url(const struct pqm_pki *pki);
PQM_API const char *pqm_pki_ocsp_url(const struct pqm_pki *pki);

/* The lifetimes a PKI's leaf certificates get (its profile's, pqm_pki_config_set_profile). */
struct pqm_lifetimes {
    char profile[32];
    int64_t leaf_lifetime; /* seconds */
    int64_t renew_within;  /* seconds: renewed when less than this remains */
};
PQM_API int pqm_pki_get_lifetimes(struct pqm_pki *pki, struct pqm_lifetimes *out);

/* --- issuing --- */
PQM_API struct pqm_issue *pqm_issue_new(enum pqm_profile profile);
PQM_API void pqm_issue_free(struct pqm_issue *req);
PQM_API const char *pqm_issue_error(const struct pqm_issue *req);
PQM_API int pqm_issue_set_name(struct pqm_issue *req, const char *name);
PQM_API int pqm_issue_add_dns(struct pqm_issue *req, const char *dns);
PQM_API int pqm_issue_add_ip(struct pqm_issue *req, const char *ip);
PQM_API int pqm_issue_set_spiffe_id(struct pqm_issue *req, const char *uri);
/* Validity from now (less a minute of allowance for slow clocks): whole days, or any
 * number of seconds from an hour to 36500 days. Default: the PKI's profile lifetime. */
PQM_API int pqm_issue_set_days(struct pqm_issue *req, int days);
PQM_API int pqm_issue_set_lifetime(struct pqm_issue *req, int64_t seconds);
PQM_API int pqm_issue_set_alg(struct pqm_issue *req, const char *alg);
/* Output files PREFIX.crt.pem etc. instead of DIR/issued/NAME.* */
PQM_API int pqm_issue_set_out_prefix(struct pqm_issue *req, const char *prefix);
/* Passphrase of the issued key. Without one the key is written unencrypted (mode 0600):
 * it is never encrypted with the PKI's passphrase, which protects the CAs. */
PQM_API int pqm_issue_set_key_passphrase(struct pqm_issue *req, const char *pass, size_t len);
PQM_API void pqm_issue_insecure_no_key_passphrase(struct pqm_issue *req);
/* Also write a PKCS#12 file protected by this passphrase. */
PQM_API int pqm_issue_set_p12_passphrase(struct pqm_issue *req, const char *pass, size_t len);
/* Issue for the key of this CSR (PEM or DER) instead of generating one. */
PQM_API int pqm_issue_set_csr(struct pqm_issue *req, const unsigned char *data, size_t len);
/* Issue COUNT certificates NAME-0001..NAME-COUNT in one transaction. */
PQM_API int pqm_issue_set_count(struct pqm_issue *req, unsigned count);

/* What was written, for one issued certificate. */
struct pqm_issued {
    char name[256];
    char serial[64];          /* hex, upper case */
    char fingerprint[65];     /* SHA-256, hex, lower case */
    char cert_path[4096];
    char key_path[4096];      /* empty for sign-csr */
    char chain_path[4096];
    char p12_path[4096];      /* empty without a PKCS#12 passphrase */
    int64_t not_after;        /* seconds since the epoch */
};

typedef int (*pqm_issued_cb)(const struct pqm_issued *issued, void *arg);

/* Issues the certificate(s) of REQ. CB (may be NULL) is called once per certificate
 * after everything is durably written and recorded. */
PQM_API int pqm_pki_issue(struct pqm_pki *pki, const struct pqm_issue *req, pqm_issued_cb cb, void *arg);

/* --- renewal --- */
struct pqm_renew;
PQM_API struct pqm_renew *pqm_renew_new(void);
PQM_API void pqm_renew_free(struct pqm_renew *req);
PQM_API const char *pqm_renew_error(const struct pqm_renew *req);
/* Renews every valid server and client certificate that expires within SECONDS from now
 * (0 and up). Default: the renewal window of the PKI's profile. */
PQM_API int pqm_renew_set_within(struct pqm_renew *req, int64_t seconds);
/* Renews the valid certificate NAME alone, however long it has left. */
PQM_API int pqm_renew_set_name(struct pqm_renew *req, const char *name);
/* Lifetime of the new certificates (1 hour to 36500 days). Default: the PKI's profile's. */
PQM_API int pqm_renew_set_lifetime(struct pqm_renew *req, int64_t seconds);
/* Keeps each certificate's key pair instead of making a new one: its key file is read
 * (and stays as it is); a certificate issued for a CSR, which has no key file, keeps the
 * public key it certifies. Without it, such a certificate is skipped. */
PQM_API void pqm_renew_reuse_key(struct pqm_renew *req);
/* The passphrase of encrypted issued keys: to read them, and for the new keys, which are
 * encrypted when the ones they replace were (so that a service needs nothing new to read
 * its renewed key). An encrypted key without it is skipped. */
PQM_API int pqm_renew_set_key_passphrase(struct pqm_renew *req, const char *pass, size_t len);
/* Protects renewed PKCS#12 files (default: the key passphrase). */
PQM_API int pqm_renew_set_p12_passphrase(struct pqm_renew *req, const char *pass, size_t len);
/* Says what would be done, and does nothing: no lock, no CA key, no file, no record. */
PQM_API void pqm_renew_dry_run(struct pqm_renew *req);

enum pqm_renew_result {
    PQM_RENEW_DONE = 1, /* renewed */
    PQM_RENEW_PLANNED,  /* would be renewed (dry run) */
    PQM_RENEW_SKIPPED,  /* due, but cannot be renewed as asked: see reason */
};

/* One certificate considered for renewal. */
struct pqm_renewed {
    char name[256];
    enum pqm_renew_result result;
    char reason[1024];         /* why it was skipped; "" otherwise */
    char old_serial[64];
    char new_serial[64];       /* "" unless renewed */
    int64_t old_not_after;
    int64_t new_not_after;     /* planned in a dry run; 0 when skipped */
    int key_reused;            /* the key pair stays (pqm_renew_reuse_key) */
    /* The files, at the same paths before and after: the new ones replace the old. */
    char cert_path[4096], key_path[4096], chain_path[4096], p12_path[4096];
    /* Where the old files go: this prefix plus .crt.pem, .key.pem, .chain.pem, .p12 */
    char archive_prefix[4096];
};
typedef int (*pqm_renewed_cb)(const struct pqm_renewed *r, void *arg);

/* Renews the certificates REQ selects, one after the other, each with the same subject,
 * SANs, profile and key algorithm as the one it replaces: the new certificate, key, chain
 * (and PKCS#12) replace the old ones at their paths, the old files are moved to
 * DIR/issued/archive/, and the inventory records the old one as superseded by the new
 * (replaced_by). Each renewal is whole or absent after a crash (the next write command
 * puts the old files back). CB (may be NULL) is called for each certificate considered,
 * the soonest to expire first. Needs the CA passphrase of an encrypted PKI, unless it is
 * a dry run. Returns 0 when every certificate due was renewed (or would be), 1 when some
 * were skipped (CB says why; the others were renewed), -1 on failure (with the reason in
 * pqm_pki_error; what was renewed before it stays renewed). */
PQM_API int pqm_pki_renew(struct pqm_pki *pki, const struct pqm_renew *req, pqm_renewed_cb cb,
                          void *arg);

/* --- the inventory --- */
struct pqm_cert_record {
    const char *serial, *name, *kind, *profile, *subject, *issuer, *issuer_serial;
    const char *sans;          /* comma-separated "DNS:x", "IP:x", "URI:x" */
    const char *key_alg, *fingerprint;
    const char *status;        /* "valid", "revoked", "superseded" (renewed; still trusted
                                  until it expires), "pending" (being written), "aborted" */
    const char *cert_path, *key_path, *chain_path, *p12_path; /* relative to the PKI directory
                                                                 when inside it; "" when none */
    int64_t not_before, not_after, created_at;
    int64_t revoked_at;              /* 0 unless revoked */
    const char *revocation_reason;   /* RFC 5280 name ("keyCompromise"); "" unless revoked */
    const char *replaced_by;         /* serial of the renewal; "" when none */
};
typedef int (*pqm_record_cb)(const struct pqm_cert_record *rec, void *arg);

/* Calls CB for every certificate in issue order; ALL includes aborted entries. */
PQM_API int pqm_pki_foreach(struct pqm_pki *pki, int all, pqm_record_cb cb, void *arg);
/* How many certificates an interrupted issuance or renewal left pending (the next
 * command that takes the PKI's lock rolls them back first); 0 while a writer holds the
 * lock (its pending rows are work in progress); -1 on error. Read-only. */
PQM_API int pqm_pki_interrupted(struct pqm_pki *pki);
/* Finishes recovery of interrupted commands, then checks every recorded file against
 * the inventory. Returns the number of problems (0 = consistent), -1 on error. PROBLEM
 * (may be NULL) is called with a one-line description of each. */
PQM_API int pqm_pki_check(struct pqm_pki *pki, void (*problem)(const char *line, void *arg), void *arg);

/* --- the mesh hierarchy --- */
/* Adds a classical root and intermediate (ALG: "ecdsa-p256" (default), "ecdsa-p384",
 * "rsa-3072"; DAYS 0: 5 years) in DIR/mesh/, for a service mesh that cannot verify
 * ML-DSA: Istio's plug-in CA signs workload certificates with the intermediate
 * (pqm_pki_export_istio_cacerts). The intermediate is constrained to the PKI's SPIFFE
 * trust domain when it has one; keys are encrypted like the other CA keys. */
PQM_API int pqm_pki_create_mesh(struct pqm_pki *pki, const char *alg, int days);
/* 1 when ALG can make a mesh hierarchy (ecdsa-p256, ecdsa-p384, rsa-3072). */
PQM_API int pqm_pki_mesh_alg_valid(const char *alg);

/* --- revocation --- */
/* The inventory row of SERIAL (hex, any case, colons allowed) to CB (may be NULL):
 * 1 when found, 0 when not, -1 on error. */
PQM_API int pqm_pki_find(struct pqm_pki *pki, const char *serial, pqm_record_cb cb, void *arg);
/* Marks SERIAL revoked now. REASON is an RFC 5280 name: "unspecified" (or NULL),
 * "keyCompromise", "cACompromise", "affiliationChanged", "superseded",
 * "cessationOfOperation", "privilegeWithdrawn", "aACompromise". Refuses unknown,
 * already revoked and root serials. An intermediate's revocation goes into the root's
 * CRL. The revocation takes effect for verifiers with the next pqm_pki_gen_crls. */
PQM_API int pqm_pki_revoke(struct pqm_pki *pki, const char *serial, const char *reason);

/* One CRL written by pqm_pki_gen_crls. */
struct pqm_crl_info {
    const char *ca;      /* "root CA", "server intermediate CA", "client intermediate CA" */
    char path[4096];     /* DIR/crl/<ca>.crl.pem (the DER form beside it ends in .crl) */
    uint64_t number;     /* cRLNumber: the same for the three CRLs of one run, increasing */
    size_t entries;
    int64_t this_update, next_update;
    char ca_serial[64];  /* the CA's serial (hex) */
    int present;         /* pqm_pki_crl_status: 0 when the file is missing or unreadable */
    char unreadable[256]; /* pqm_pki_crl_status: why a file that is there gives no CRL */
    int signature_ok;    /* pqm_pki_crl_status: signed by the CA's current key */
    size_t unpublished;  /* pqm_pki_crl_status: revoked in the inventory, not in the CRL */
};
typedef int (*pqm_crl_cb)(const struct pqm_crl_info *info, void *arg);
/* Signs a CRL per CA (needs the CA passphrase when the PKI is encrypted), valid for
 * VALIDITY_SECONDS (1 minute .. 366 days), and writes DIR/crl/: root-ca, server-int-ca
 * and client-int-ca as .crl.pem and .crl (DER), plus client-ca-chain.crl.pem and
 * server-ca-chain.crl.pem (the intermediate's and the root's CRLs, for nginx's ssl_crl
 * and the gateway). Each file is replaced atomically. */
PQM_API int pqm_pki_gen_crls(struct pqm_pki *pki, int64_t validity_seconds, pqm_crl_cb cb,
                             void *arg);
/* Reads the three CRLs of DIR/crl/ (no passphrase needed) and calls CB for each CA, in
 * the order root, server, client; a missing or unreadable file gives present = 0, and
 * an unreadable one (damaged, not a CRL, no permission) says why in unreadable. */
PQM_API int pqm_pki_crl_status(struct pqm_pki *pki, pqm_crl_cb cb, void *arg);

#ifdef __cplusplus
}
#endif
#endif
