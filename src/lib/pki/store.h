/* The inventory: DIR/pki.db, SQLite in WAL mode with full synchronous commits. */
#ifndef PQM_PKI_STORE_H
#define PQM_PKI_STORE_H

#include <stdint.h>

#include <pqmtls/pki.h>

#include "util/err.h"

struct pqm_store;

#define PQM_STORE_SCHEMA_VERSION 3

/* Opens (CREATE: creates) the database and brings its schema up to date. */
struct pqm_store *pqm__store_open(const char *path, int create, struct pqm_err *e);
/* Opens the database read-only, for one thread (the OCSP responder's workers): nothing
 * is migrated or written; a schema other than this pqmtls's is refused. */
struct pqm_store *pqm__store_open_readonly(const char *path, struct pqm_err *e);
void pqm__store_close(struct pqm_store *s);
/* BEGIN IMMEDIATE: takes the write lock now, so a transaction never fails half-way on it. */
int pqm__store_begin(struct pqm_store *s, struct pqm_err *e);
/* BEGIN (deferred): a consistent view for several reads, locked once. */
int pqm__store_begin_read(struct pqm_store *s, struct pqm_err *e);
int pqm__store_commit(struct pqm_store *s, struct pqm_err *e);
void pqm__store_rollback(struct pqm_store *s);

int pqm__store_meta_set(struct pqm_store *s, const char *key, const char *value, struct pqm_err *e);
/* Copies the value into OUT; 1 when found, 0 when not, -1 on error. */
int pqm__store_meta_get(struct pqm_store *s, const char *key, char *out, size_t outlen,
                        struct pqm_err *e);

int pqm__store_insert(struct pqm_store *s, const struct pqm_cert_record *r, struct pqm_err *e);
/* The same, with the SHA-256 of each staged file (cert, key, chain, p12, space-separated,
 * "-" for none), which recovery checks before removing anything. */
int pqm__store_insert_staged(struct pqm_store *s, const struct pqm_cert_record *r,
                             const char *staged, struct pqm_err *e);
/* Moves certificate SERIAL from status FROM to TO; fails unless exactly that happened. */
int pqm__store_mark(struct pqm_store *s, const char *serial, const char *from, const char *to,
                    struct pqm_err *e);
/* Moves every certificate with status FROM to TO; fails unless there were exactly
 * EXPECT of them (a writer holding the PKI lock knows how many it left in FROM). */
int pqm__store_mark_all(struct pqm_store *s, const char *from, const char *to, size_t expect,
                        struct pqm_err *e);
/* Records that files named PREFIX... may be staged in DIR; ID identifies the record. */
int pqm__store_staging_add(struct pqm_store *s, const char *dir, const char *prefix,
                           int64_t *id, struct pqm_err *e);
/* Drops one staging record, or every one when ID < 0. */
int pqm__store_staging_del(struct pqm_store *s, int64_t id, struct pqm_err *e);
int pqm__store_staging_foreach(struct pqm_store *s,
                               int (*cb)(const char *dir, const char *prefix, void *arg),
                               void *arg, struct pqm_err *e);
int pqm__store_set_status(struct pqm_store *s, const char *serial, const char *status,
                          struct pqm_err *e);
/* 1 when a pending or valid certificate has NAME, 0 when none, -1 on error. */
int pqm__store_name_live(struct pqm_store *s, const char *name, struct pqm_err *e);
/* 1 when SERIAL was ever recorded (in any status), 0 when not, -1 on error. */
int pqm__store_serial_used(struct pqm_store *s, const char *serial, struct pqm_err *e);

enum pqm_store_filter {
    PQM_STORE_LIVE,    /* valid and revoked */
    PQM_STORE_ALL,     /* everything, aborted included */
    PQM_STORE_PENDING, /* interrupted issuance */
};
/* Calls CB per row in issue order; stops and returns CB's value when it is non-zero. */
int pqm__store_foreach(struct pqm_store *s, enum pqm_store_filter f, pqm_record_cb cb, void *arg,
                       struct pqm_err *e);
/* The same, with each row's staged-file identities. */
typedef int (*pqm_row_cb)(const struct pqm_cert_record *r, const char *staged, void *arg);
int pqm__store_foreach_rows(struct pqm_store *s, enum pqm_store_filter f, pqm_row_cb cb,
                            void *arg, struct pqm_err *e);

/* The row of SERIAL (any status) to CB: 1 when found, 0 when not, -1 on error. */
int pqm__store_get(struct pqm_store *s, const char *serial, pqm_record_cb cb, void *arg,
                   struct pqm_err *e);
/* Every live (valid, superseded, revoked) certificate issued by ISSUER_SERIAL, the
 * issuer itself excluded (a root is its own issuer). */
int pqm__store_foreach_issued_by(struct pqm_store *s, const char *issuer_serial,
                                 pqm_record_cb cb, void *arg, struct pqm_err *e);
/* Marks SERIAL revoked at AT for REASON (an RFC 5280 reason name). 0 when done; 1 when
 * SERIAL is not valid or superseded (unknown, already revoked, pending, aborted): the
 * caller reads the row to say which. */
int pqm__store_revoke(struct pqm_store *s, const char *serial, const char *reason, int64_t at,
                      struct pqm_err *e);
/* What the OCSP responder needs to know about one certificate. */
struct pqm_store_status {
    char status[16];   /* valid, superseded, revoked, pending, aborted */
    int64_t revoked_at;
    char reason[32];   /* RFC 5280 reason name; "" unless revoked */
};
/* The status of SERIAL as issued by ISSUER_SERIAL (a prepared statement, run once per
 * OCSP request): 1 when recorded, 0 when not, -1 on error. */
int pqm__store_status_of(struct pqm_store *s, const char *issuer_serial, const char *serial,
                         struct pqm_store_status *out, struct pqm_err *e);
/* SQLite's data_version: it changes when another connection commits (a revocation, an
 * issuance), so that what was read from this handle before may be out of date. */
int pqm__store_data_version(struct pqm_store *s, int64_t *out, struct pqm_err *e);
/* The newest OCSP signer (kind 'ocsp') of ISSUER_SERIAL that is valid or superseded,
 * unexpired at NOW and has a key, to CB: 1 when there is one, 0 when not, -1 on error. */
int pqm__store_ocsp_signer(struct pqm_store *s, const char *issuer_serial, int64_t now,
                           pqm_record_cb cb, void *arg, struct pqm_err *e);
/* Forgets where the key of SERIAL is (it was removed): sets key_path to "". */
int pqm__store_clear_key_path(struct pqm_store *s, const char *serial, struct pqm_err *e);

/* Records that BY renews SERIAL; a valid SERIAL becomes superseded. */
int pqm__store_set_replaced_by(struct pqm_store *s, const char *serial, const char *by,
                               struct pqm_err *e);

/* --- renewal -------------------------------------------------------------------------- */
/* Every valid server and client certificate whose notAfter is BEFORE or earlier, the
 * soonest first. */
int pqm__store_foreach_due(struct pqm_store *s, int64_t before, pqm_record_cb cb, void *arg,
                           struct pqm_err *e);
/* The valid certificate named NAME to CB: 1 when found, 0 when not, -1 on error. */
int pqm__store_get_valid_name(struct pqm_store *s, const char *name, pqm_record_cb cb, void *arg,
                              struct pqm_err *e);
/* The superseded certificate that SERIAL renews, with its file identities, to CB: 1 when
 * found, 0 when SERIAL renews nothing, -1 on error. */
int pqm__store_renewal_of(struct pqm_store *s, const char *serial, pqm_row_cb cb, void *arg,
                          struct pqm_err *e);
/* Records where SERIAL's files are now (cert, key, chain, p12; "" for none) and their
 * identities (as pqm__store_insert_staged takes them). */
int pqm__store_set_files(struct pqm_store *s, const char *serial, const char *const paths[4],
                         const char *staged, struct pqm_err *e);
/* Undoes the inventory side of a renewal by SERIAL that did not complete: the certificate
 * it supersedes is valid again, renewed by nothing, with SERIAL's paths (where its files
 * are back). Returns how many rows that was (0: SERIAL renews nothing), -1 on error.
 * SERIAL must be out of 'pending' first: the two cannot both be live under one name. */
int pqm__store_unrenew(struct pqm_store *s, const char *serial, struct pqm_err *e);

#endif
