/* OCSP signers: one delegated responder certificate per intermediate CA (RFC 6960
 * 4.2.2.2), recorded in the inventory with kind 'ocsp'.
 *
 * Each signer's files are named by its serial (DIR/ocsp/NAME.SERIAL.crt.pem, .key.pem)
 * and never replaced, so that making one follows the intent log of `pki issue`: staged,
 * recorded 'pending', published, then 'valid'. The signer it replaces becomes
 * 'superseded' in the same transaction that records the new one pending (the unique
 * index on live names allows one 'valid' row per name); its key file goes only once the
 * new signer is valid, so that an interruption leaves the old signer usable. Then
 * DIR/ocsp/NAME.crt.pem and NAME.key.pem, symbolic links, point at the new files. */
#include "pki/pki_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <pqmtls/ocsp.h>

#include "pki/alg.h"
#include "pki/certbuild.h"
#include "pki/keyfile.h"
#include "util/fsutil.h"
#include "util/timeutil.h"

#define PQM_D_OCSP "ocsp"
#define PQM_OCSP_SIGNER_MAX_DAYS 366
/* As every certificate of the PKI: valid from a minute ago, for clocks that lag. */
#define PQM_SIGNER_BACKDATE 60

/* One CA's part of a run. */
struct signer_job {
    struct pqm_ca *ca;
    const char *name;
    /* Before the run: the newest usable signer, the 'valid' one (which the new one
     * supersedes), and every earlier signer that still has a key file. */
    int have_current;
    char cur_serial[64];
    int64_t cur_not_after;
    char valid_serial[64];
    struct pqm_strlist old_serials, old_keys;
    int make;
    /* Made by the run. */
    EVP_PKEY *key;
    X509 *cert;
    char cert_rel[PATH_MAX], key_rel[PATH_MAX];
    char cert_abs[PATH_MAX], key_abs[PATH_MAX];
    char staged[3 * 66 + 8];
    struct pqm_filetx tx;
    struct pqm_record_buf rb;
    struct pqm_cert_record rec;
};

static void job_clear(struct signer_job *j)
{
    pqm__strlist_free(&j->old_serials);
    pqm__strlist_free(&j->old_keys);
    EVP_PKEY_free(j->key);
    X509_free(j->cert);
    pqm__filetx_release(&j->tx);
    pqm__record_buf_free(&j->rb);
}

struct survey {
    struct signer_job *j;
    int64_t now;
    struct pqm_err *e;
};

static int survey_row(const struct pqm_cert_record *r, void *arg)
{
    struct survey *s = arg;
    struct signer_job *j = s->j;
    if (strcmp(r->kind, "ocsp") != 0)
        return 0;
    if (strcmp(r->status, "valid") == 0)
        snprintf(j->valid_serial, sizeof(j->valid_serial), "%s", r->serial);
    if (r->key_path[0] == '\0')
        return 0;
    if (pqm__strlist_add(&j->old_serials, r->serial, s->e) != 0 ||
        pqm__strlist_add(&j->old_keys, r->key_path, s->e) != 0)
        return -1;
    if (strcmp(r->status, "revoked") != 0 && r->not_after > s->now) {
        j->have_current = 1; /* rows come oldest first: the last one is the newest */
        snprintf(j->cur_serial, sizeof(j->cur_serial), "%s", r->serial);
        j->cur_not_after = r->not_after;
    }
    return 0;
}

/* What the inventory holds for J's CA, and whether this run makes a new signer. */
static int survey(struct pqm_pki *p, struct signer_job *j, int64_t within, int64_t now)
{
    struct survey s = {j, now, &p->err};
    if (pqm__store_foreach_issued_by(p->store, j->ca->serial, survey_row, &s, &p->err) != 0)
        return -1;
    j->make = !j->have_current || within < 0 || j->cur_not_after - now <= within;
    if (!j->make || j->valid_serial[0] != '\0')
        return 0;
    /* No signer of ours holds the name: a certificate issued under it would. */
    int taken = pqm__store_name_live(p->store, j->name, &p->err);
    if (taken < 0)
        return -1;
    if (taken)
        return pqm__err_set(&p->err, "the name '%s' belongs to another certificate of the "
                                     "inventory (see `pqmtls pki list`); revoke it first",
                            j->name);
    return 0;
}

static int draw_serial(struct pqm_pki *p, BIGNUM **out)
{
    char hex[64];
    for (int tries = 0; tries < 8; tries++) {
        BIGNUM *bn = pqm__serial_new(&p->err);
        if (bn == NULL)
            return -1;
        int used = pqm__serial_hex(bn, hex, sizeof(hex)) == 0
                       ? pqm__store_serial_used(p->store, hex, &p->err)
                       : pqm__err_set(&p->err, "cannot format a serial number");
        if (used == 0) {
            *out = bn;
            return 0;
        }
        BN_free(bn);
        if (used < 0)
            return -1;
    }
    return pqm__err_set(&p->err, "cannot draw an unused serial number");
}

/* "<the CA's CN> OCSP Responder", or the signer's name when that is too long. */
static X509_NAME *signer_subject(struct pqm_pki *p, const struct signer_job *j)
{
    char ca_cn[PQM_NAME_MAX + 1] = "", cn[PQM_NAME_MAX + 32];
    int got = X509_NAME_get_text_by_NID(X509_get_subject_name(j->ca->cert), NID_commonName,
                                        ca_cn, sizeof(ca_cn));
    int n = got > 0 ? snprintf(cn, sizeof(cn), "%s OCSP Responder", ca_cn) : -1;
    if (n < 0 || n > PQM_NAME_MAX)
        snprintf(cn, sizeof(cn), "%s", j->name);
    return pqm__name_new(cn, p->org, &p->err);
}

static int set_paths(struct pqm_pki *p, struct signer_job *j, const char *serial)
{
    snprintf(j->cert_rel, sizeof(j->cert_rel), "%s/%s.%s.crt.pem", PQM_D_OCSP, j->name, serial);
    snprintf(j->key_rel, sizeof(j->key_rel), "%s/%s.%s.key.pem", PQM_D_OCSP, j->name, serial);
    if (pqm__pki_path(p, j->cert_rel, j->cert_abs, sizeof(j->cert_abs)) != 0 ||
        pqm__pki_path(p, j->key_rel, j->key_abs, sizeof(j->key_abs)) != 0)
        return pqm__err_set(&p->err, "%s: path too long", p->dir);
    return 0;
}

/* Builds and signs J's new signer certificate, valid for DAYS but never beyond its CA. */
static int build(struct pqm_pki *p, struct signer_job *j, int days, int64_t now)
{
    struct pqm_err *e = &p->err;
    BIGNUM *serial = NULL;
    X509_NAME *subject = NULL;
    int64_t ca_end = 0;
    int rc = -1;
    const struct pqm_alg *alg = pqm__alg_find(pqm__alg_name_of_key(j->ca->pkey));
    if (alg == NULL)
        alg = pqm__alg_find(p->alg);
    ENSURE(alg != NULL, e, "the %s's key algorithm is not one pqmtls makes keys for",
           j->ca->label);
    ENSURE(pqm__asn1_time_to_epoch(X509_get0_notAfter(j->ca->cert), &ca_end) == 0, e,
           "the %s's validity cannot be read", j->ca->label);
    ENSURE(ca_end > now, e, "the %s has expired", j->ca->label);
    GUARD(draw_serial(p, &serial));
    j->key = pqm__alg_keygen(alg, e);
    subject = j->key != NULL ? signer_subject(p, j) : NULL;
    if (subject == NULL)
        goto cleanup;
    int64_t not_after = now + (int64_t)days * 86400;
    struct pqm_cert_spec spec = {
        .kind = PQM_KIND_OCSP,
        .subject = subject,
        .subject_key = j->key,
        .issuer = j->ca->cert,
        .issuer_key = j->ca->pkey,
        .serial = serial,
        .not_before = now - PQM_SIGNER_BACKDATE,
        .not_after = not_after < ca_end ? not_after : ca_end,
        .path_len = -1,
    };
    j->cert = pqm__cert_build(&spec, e);
    if (j->cert == NULL)
        goto cleanup;
    GUARD(pqm__record_from_cert(j->cert, j->key, j->ca->serial, NULL, &j->rec, &j->rb, e));
    GUARD(set_paths(p, j, j->rb.serial));
    rc = 0;
cleanup:
    if (rc != 0)
        pqm__err_copy(e, j->ca->label, pqm__err_str(e));
    X509_NAME_free(subject);
    BN_free(serial);
    return rc;
}

/* Writes J's certificate and key under temporary names beside their final ones. */
static int stage(struct pqm_pki *p, struct signer_job *j, const char *key_pass,
                 size_t key_passlen)
{
    struct pqm_err *e = &p->err;
    char *cert_pem = NULL, *key_pem = NULL;
    size_t cert_len = 0, key_len = 0;
    char cert_id[66], key_id[66];
    int rc = -1;
    GUARD(pqm__certs_to_pem(&j->cert, 1, &cert_pem, &cert_len, e));
    GUARD(pqm__key_to_pem(j->key, key_pass, key_passlen, &key_pem, &key_len, e));
    GUARD(pqm__filetx_stage(&j->tx, j->cert_abs, cert_pem, cert_len, 0644, e));
    GUARD(pqm__filetx_stage(&j->tx, j->key_abs, key_pem, key_len, 0600, e));
    pqm__filetx_identity(&j->tx, j->cert_abs, cert_id, sizeof(cert_id));
    pqm__filetx_identity(&j->tx, j->key_abs, key_id, sizeof(key_id));
    snprintf(j->staged, sizeof(j->staged), "%s %s - -", cert_id, key_id);
    j->rec.name = j->name;
    j->rec.kind = "ocsp";
    j->rec.profile = "ocsp";
    j->rec.status = "pending";
    j->rec.cert_path = j->cert_rel;
    j->rec.key_path = j->key_rel;
    j->rec.chain_path = "";
    j->rec.p12_path = "";
    rc = 0;
cleanup:
    free(cert_pem);
    if (key_pem != NULL)
        OPENSSL_cleanse(key_pem, key_len);
    free(key_pem);
    return rc;
}

static int make_dir(struct pqm_pki *p, char *dir, size_t dirlen)
{
    if (pqm__pki_path(p, PQM_D_OCSP, dir, dirlen) != 0)
        return pqm__err_set(&p->err, "%s: path too long", p->dir);
    /* 0700 like the PKI directory: it holds the signers' keys. */
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return pqm__err_set(&p->err, "%s: cannot create: %s", dir, strerror(errno));
    return pqm__fsync_dir(p->dir, &p->err);
}

static int record_staging(struct pqm_pki *p, const char *dir, int64_t *id)
{
    if (pqm__store_begin(p->store, &p->err) != 0)
        return -1;
    if (pqm__store_staging_add(p->store, dir, "", id, &p->err) != 0) {
        pqm__store_rollback(p->store);
        return -1;
    }
    return pqm__store_commit(p->store, &p->err);
}

/* The intent: the new signer 'pending', the one it replaces 'superseded'. */
static int step_pending(struct pqm_pki *p, struct signer_job *j, int64_t now)
{
    j->rec.created_at = now;
    if (j->valid_serial[0] != '\0' &&
        pqm__store_set_replaced_by(p->store, j->valid_serial, j->rb.serial, &p->err) != 0)
        return -1;
    return pqm__store_insert_staged(p->store, &j->rec, j->staged, &p->err);
}

/* The new signer 'valid'; the keys of the earlier ones forgotten (removed next). */
static int step_valid(struct pqm_pki *p, struct signer_job *j, int64_t unused)
{
    (void)unused;
    if (pqm__store_mark(p->store, j->rb.serial, "pending", "valid", &p->err) != 0)
        return -1;
    for (size_t k = 0; k < j->old_serials.n; k++)
        if (pqm__store_clear_key_path(p->store, j->old_serials.v[k], &p->err) != 0)
            return -1;
    return 0;
}

/* STEP(ARG) for every job that makes a signer, then, when STAGING >= 0, the staging
 * record dropped: one transaction. */
static int each_in_txn(struct pqm_pki *p, struct signer_job *jobs, size_t n,
                       int (*step)(struct pqm_pki *, struct signer_job *, int64_t), int64_t arg,
                       int64_t staging)
{
    if (pqm__store_begin(p->store, &p->err) != 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (jobs[i].make && step(p, &jobs[i], arg) != 0)
            goto fail;
    if (staging >= 0 && pqm__store_staging_del(p->store, staging, &p->err) != 0)
        goto fail;
    return pqm__store_commit(p->store, &p->err);
fail:
    pqm__store_rollback(p->store);
    return -1;
}

/* After the inventory says so: the earlier signers' keys go. */
static int remove_old_keys(struct pqm_pki *p, const struct signer_job *j)
{
    char path[PATH_MAX];
    for (size_t k = 0; k < j->old_keys.n; k++)
        if (pqm__pki_path(p, j->old_keys.v[k], path, sizeof(path)) == 0 && unlink(path) != 0 &&
            errno != ENOENT)
            return pqm__err_set(&p->err, "%s: cannot remove the replaced signer's key: %s", path,
                                strerror(errno));
    return 0;
}

/* DIR/NAME.crt.pem and .key.pem point at the files of the current signer, SERIAL
 * (relative links, so that the PKI directory can move). Made again on every run, so
 * that links an interruption left behind are put right. */
static int link_current(struct pqm_pki *p, const struct signer_job *j, const char *serial,
                        const char *dir)
{
    static const char *const suffix[2] = {"crt.pem", "key.pem"};
    char link[PATH_MAX], target[PATH_MAX];
    for (int i = 0; i < 2; i++) {
        int n = snprintf(link, sizeof(link), "%s/%s.%s", dir, j->name, suffix[i]);
        int m = snprintf(target, sizeof(target), "%s.%s.%s", j->name, serial, suffix[i]);
        if (n < 0 || (size_t)n >= sizeof(link) || m < 0 || (size_t)m >= sizeof(target))
            return pqm__err_set(&p->err, "%s: path too long", dir);
        if (pqm__symlink_atomic(target, link, &p->err) != 0)
            return -1;
    }
    return 0;
}

static void info_of(const struct signer_job *j, const char *dir, struct pqm_ocsp_signer_info *o)
{
    memset(o, 0, sizeof(*o));
    o->ca = j->ca->label;
    o->name = j->name;
    o->created = j->make;
    snprintf(o->serial, sizeof(o->serial), "%s", j->make ? j->rb.serial : j->cur_serial);
    o->not_after = j->make ? j->rec.not_after : j->cur_not_after;
    snprintf(o->cert_link, sizeof(o->cert_link), "%s/%s.crt.pem", dir, j->name);
    snprintf(o->key_link, sizeof(o->key_link), "%s/%s.key.pem", dir, j->name);
    snprintf(o->cert_path, sizeof(o->cert_path), "%s/%s.%s.crt.pem", dir, j->name, o->serial);
    snprintf(o->key_path, sizeof(o->key_path), "%s/%s.%s.key.pem", dir, j->name, o->serial);
}

/* Makes the signers of JOBS that are due, whole or not at all. */
static int make_all(struct pqm_pki *p, struct signer_job *jobs, size_t n, int days,
                    const char *key_pass, size_t key_passlen, const char *dir)
{
    int64_t now = (int64_t)time(NULL), staging = -1;
    for (size_t i = 0; i < n; i++)
        if (jobs[i].make && build(p, &jobs[i], days, now) != 0)
            return -1;
    if (record_staging(p, dir, &staging) != 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (jobs[i].make && stage(p, &jobs[i], key_pass, key_passlen) != 0)
            return -1;
    if (each_in_txn(p, jobs, n, step_pending, now, -1) != 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (jobs[i].make && (pqm__filetx_sync(&jobs[i].tx, &p->err) != 0 ||
                             pqm__filetx_publish(&jobs[i].tx, &p->err) != 0))
            return -1;
    return each_in_txn(p, jobs, n, step_valid, 0, staging);
}

int pqm_pki_ocsp_signers(struct pqm_pki *p, int days, int64_t within, const char *key_pass,
                         size_t key_passlen, pqm_ocsp_signer_cb cb, void *arg)
{
    struct signer_job jobs[2] = {{.ca = &p->server_ca, .name = "server-int-ca-ocsp"},
                                 {.ca = &p->client_ca, .name = "client-int-ca-ocsp"}};
    char dir[PATH_MAX];
    int rc = -1, any = 0;
    pqm__err_clear(&p->err);
    if (days < 1 || days > PQM_OCSP_SIGNER_MAX_DAYS)
        return pqm__err_set(&p->err, "--days must be 1 to %d: a signer with "
                                     "id-pkix-ocsp-nocheck cannot be revoked, so it lives short",
                            PQM_OCSP_SIGNER_MAX_DAYS);
    GUARD(pqm__pki_lock(p));
    int64_t now = (int64_t)time(NULL);
    for (size_t i = 0; i < 2; i++) {
        pqm__filetx_init(&jobs[i].tx);
        GUARD(pqm__pki_load_ca(p, jobs[i].ca));
        GUARD(survey(p, &jobs[i], within, now));
        any |= jobs[i].make;
    }
    GUARD(make_dir(p, dir, sizeof(dir)));
    if (any && make_all(p, jobs, 2, days, key_pass, key_passlen, dir) != 0) {
        struct pqm_err saved = p->err;
        pqm__pki_recover(p); /* rolls back what was recorded pending, sweeps the rest */
        p->err = saved;
        goto cleanup;
    }
    for (size_t i = 0; i < 2; i++) {
        if (jobs[i].make)
            GUARD(remove_old_keys(p, &jobs[i]));
        GUARD(link_current(p, &jobs[i], jobs[i].make ? jobs[i].rb.serial : jobs[i].cur_serial,
                           dir));
    }
    rc = 0;
    for (size_t i = 0; i < 2 && cb != NULL; i++) {
        struct pqm_ocsp_signer_info o;
        info_of(&jobs[i], dir, &o);
        if (cb(&o, arg) != 0)
            break;
    }
cleanup:
    for (size_t i = 0; i < 2; i++)
        job_clear(&jobs[i]);
    pqm__pki_unlock(p);
    return rc;
}
