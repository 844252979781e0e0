#include "pki/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

/* Statements run once per issued certificate, prepared once per handle. */
enum stmt_id {
    ST_INSERT, ST_SET_STATUS, ST_MARK, ST_MARK_ALL, ST_NAME_LIVE, ST_SERIAL_USED, ST_STATUS,
    ST_DATA_VERSION, ST_COUNT
};

struct pqm_store {
    sqlite3 *db;
    sqlite3_stmt *cache[ST_COUNT];
};

/* Busy timeout: another pqmtls process may hold the write lock while it signs. */
#define PQM_STORE_BUSY_MS 30000
/* A reader in WAL mode waits only while a writer recovers or resets the log. */
#define PQM_STORE_READER_BUSY_MS 1000

static const char schema_v1[] =
    "CREATE TABLE IF NOT EXISTS meta ("
    "  key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS certs ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  serial TEXT NOT NULL UNIQUE,"
    "  name TEXT NOT NULL,"
    "  kind TEXT NOT NULL CHECK (kind IN ('root','intermediate','server','client')),"
    "  profile TEXT NOT NULL,"
    "  subject TEXT NOT NULL,"
    "  issuer TEXT NOT NULL,"
    "  issuer_serial TEXT NOT NULL DEFAULT '',"
    "  sans TEXT NOT NULL DEFAULT '',"
    "  key_alg TEXT NOT NULL,"
    "  not_before INTEGER NOT NULL,"
    "  not_after INTEGER NOT NULL,"
    "  fingerprint TEXT NOT NULL UNIQUE,"
    "  status TEXT NOT NULL CHECK (status IN ('pending','valid','revoked','aborted')),"
    "  cert_path TEXT NOT NULL,"
    "  key_path TEXT NOT NULL DEFAULT '',"
    "  chain_path TEXT NOT NULL DEFAULT '',"
    "  p12_path TEXT NOT NULL DEFAULT '',"
    "  created_at INTEGER NOT NULL,"
    "  revoked_at INTEGER,"
    "  revocation_reason TEXT);"
    "CREATE UNIQUE INDEX IF NOT EXISTS certs_live_name ON certs(name)"
    "  WHERE status IN ('pending','valid');"
    "CREATE INDEX IF NOT EXISTS certs_status ON certs(status);";

/* v2: the SHA-256 of each staged file, so that recovery removes only files this pqmtls
 * wrote; and the directories where an issuance stages files, so that recovery can sweep
 * them before any row names the files. */
static const char schema_v2[] =
    "ALTER TABLE certs ADD COLUMN staged TEXT NOT NULL DEFAULT '';"
    "CREATE TABLE IF NOT EXISTS staging ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  dir TEXT NOT NULL,"
    "  prefix TEXT NOT NULL);";

/* v3: 'superseded' (renewed: a newer certificate replaces this one, which stays
 * trusted until it expires), replaced_by (the serial of the renewal), and an index for
 * the CRL and OCSP lookups by issuer. SQLite cannot change a CHECK constraint in place,
 * so the table is rebuilt with every row and sequence number kept. */
static const char schema_v3[] =
    "CREATE TABLE certs_v3 ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  serial TEXT NOT NULL UNIQUE,"
    "  name TEXT NOT NULL,"
    "  kind TEXT NOT NULL"
    "    CHECK (kind IN ('root','intermediate','server','client','ocsp')),"
    "  profile TEXT NOT NULL,"
    "  subject TEXT NOT NULL,"
    "  issuer TEXT NOT NULL,"
    "  issuer_serial TEXT NOT NULL DEFAULT '',"
    "  sans TEXT NOT NULL DEFAULT '',"
    "  key_alg TEXT NOT NULL,"
    "  not_before INTEGER NOT NULL,"
    "  not_after INTEGER NOT NULL,"
    "  fingerprint TEXT NOT NULL UNIQUE,"
    "  status TEXT NOT NULL"
    "    CHECK (status IN ('pending','valid','revoked','aborted','superseded')),"
    "  cert_path TEXT NOT NULL,"
    "  key_path TEXT NOT NULL DEFAULT '',"
    "  chain_path TEXT NOT NULL DEFAULT '',"
    "  p12_path TEXT NOT NULL DEFAULT '',"
    "  created_at INTEGER NOT NULL,"
    "  revoked_at INTEGER,"
    "  revocation_reason TEXT,"
    "  staged TEXT NOT NULL DEFAULT '',"
    "  replaced_by TEXT NOT NULL DEFAULT '');"
    "INSERT INTO certs_v3 (seq, serial, name, kind, profile, subject, issuer, issuer_serial,"
    "  sans, key_alg, not_before, not_after, fingerprint, status, cert_path, key_path,"
    "  chain_path, p12_path, created_at, revoked_at, revocation_reason, staged)"
    "  SELECT seq, serial, name, kind, profile, subject, issuer, issuer_serial, sans, key_alg,"
    "  not_before, not_after, fingerprint, status, cert_path, key_path, chain_path, p12_path,"
    "  created_at, revoked_at, revocation_reason, staged FROM certs;"
    "DROP TABLE certs;"
    "ALTER TABLE certs_v3 RENAME TO certs;"
    "CREATE UNIQUE INDEX certs_live_name ON certs(name) WHERE status IN ('pending','valid');"
    "CREATE INDEX certs_status ON certs(status);"
    "CREATE INDEX certs_issuer ON certs(issuer_serial, status);";

static int db_err(struct pqm_store *s, struct pqm_err *e, const char *what)
{
    return pqm__err_set(e, "inventory: %s: %s", what, sqlite3_errmsg(s->db));
}

static int exec(struct pqm_store *s, const char *sql, struct pqm_err *e)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        pqm__err_set(e, "inventory: %s", msg != NULL ? msg : sqlite3_errmsg(s->db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static int user_version(struct pqm_store *s, int *v, struct pqm_err *e)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        return db_err(s, e, "cannot read the schema version");
    int rc = sqlite3_step(st);
    *v = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : db_err(s, e, "cannot read the schema version");
}

static int migrate(struct pqm_store *s, const char *path, struct pqm_err *e)
{
    int v = 0;
    if (user_version(s, &v, e) != 0)
        return -1;
    if (v == PQM_STORE_SCHEMA_VERSION)
        return 0;
    if (exec(s, "BEGIN IMMEDIATE", e) != 0)
        return -1;
    /* Again under the write lock: another process may have migrated meanwhile. */
    if (user_version(s, &v, e) != 0)
        goto fail;
    if (v > PQM_STORE_SCHEMA_VERSION) {
        pqm__err_set(e, "%s: inventory schema %d is newer than this pqmtls knows (%d)", path, v,
                     PQM_STORE_SCHEMA_VERSION);
        goto fail;
    }
    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA user_version=%d", PQM_STORE_SCHEMA_VERSION);
    if ((v < 1 && exec(s, schema_v1, e) != 0) || (v < 2 && exec(s, schema_v2, e) != 0) ||
        (v < 3 && exec(s, schema_v3, e) != 0) ||
        exec(s, sql, e) != 0 || exec(s, "COMMIT", e) != 0)
        goto fail;
    return 0;
fail:
    pqm__store_rollback(s);
    return -1;
}

static struct pqm_store *store_new(const char *path, int flags, int busy_ms, struct pqm_err *e)
{
    struct pqm_store *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        pqm__err_set(e, "out of memory");
        return NULL;
    }
    if (sqlite3_open_v2(path, &s->db, flags, NULL) != SQLITE_OK) {
        pqm__err_set(e, "%s: cannot open the inventory: %s", path,
                     s->db != NULL ? sqlite3_errmsg(s->db) : "out of memory");
        pqm__store_close(s);
        return NULL;
    }
    sqlite3_busy_timeout(s->db, busy_ms);
    return s;
}

struct pqm_store *pqm__store_open(const char *path, int create, struct pqm_err *e)
{
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
    struct pqm_store *s = store_new(path, flags, PQM_STORE_BUSY_MS, e);
    if (s == NULL)
        return NULL;
    if (exec(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;", e) !=
            0 ||
        migrate(s, path, e) != 0) {
        pqm__err_copy(e, path, pqm__err_str(e));
        pqm__store_close(s);
        return NULL;
    }
    return s;
}

struct pqm_store *pqm__store_open_readonly(const char *path, struct pqm_err *e)
{
    struct pqm_store *s =
        store_new(path, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, PQM_STORE_READER_BUSY_MS, e);
    int v = 0;
    if (s == NULL)
        return NULL;
    if (user_version(s, &v, e) != 0) {
        pqm__err_copy(e, path, pqm__err_str(e));
    } else if (v != PQM_STORE_SCHEMA_VERSION) {
        pqm__err_set(e, "%s: inventory schema %d where this pqmtls reads %d (any `pqmtls pki` "
                        "command that writes brings an older one up to date)",
                     path, v, PQM_STORE_SCHEMA_VERSION);
    } else {
        return s;
    }
    pqm__store_close(s);
    return NULL;
}

void pqm__store_close(struct pqm_store *s)
{
    if (s == NULL)
        return;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->cache[i]);
    sqlite3_close(s->db);
    free(s);
}

int pqm__store_begin(struct pqm_store *s, struct pqm_err *e)
{
    return exec(s, "BEGIN IMMEDIATE", e);
}

int pqm__store_begin_read(struct pqm_store *s, struct pqm_err *e)
{
    return exec(s, "BEGIN", e);
}

int pqm__store_commit(struct pqm_store *s, struct pqm_err *e)
{
    if (exec(s, "COMMIT", e) == 0)
        return 0;
    pqm__store_rollback(s); /* never leave the handle inside a failed transaction */
    return -1;
}

void pqm__store_rollback(struct pqm_store *s)
{
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

static sqlite3_stmt *prepare(struct pqm_store *s, const char *sql, struct pqm_err *e)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
        db_err(s, e, "cannot prepare a statement");
        return NULL;
    }
    return st;
}

static sqlite3_stmt *cached(struct pqm_store *s, enum stmt_id id, const char *sql,
                            struct pqm_err *e)
{
    if (s->cache[id] == NULL)
        s->cache[id] = prepare(s, sql, e);
    return s->cache[id];
}

/* Finalizes a one-off statement; resets a cached one for its next use. */
static void release(struct pqm_store *s, sqlite3_stmt *st)
{
    for (int i = 0; i < ST_COUNT; i++)
        if (s->cache[i] == st) {
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
            return;
        }
    sqlite3_finalize(st);
}

static int step_done(struct pqm_store *s, sqlite3_stmt *st, const char *what, struct pqm_err *e)
{
    int rc = sqlite3_step(st);
    int ret = rc == SQLITE_DONE ? 0 : db_err(s, e, what);
    release(s, st);
    return ret;
}

int pqm__store_meta_set(struct pqm_store *s, const char *key, const char *value, struct pqm_err *e)
{
    sqlite3_stmt *st = prepare(s, "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", e);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
    return step_done(s, st, "cannot write settings", e);
}

int pqm__store_meta_get(struct pqm_store *s, const char *key, char *out, size_t outlen,
                        struct pqm_err *e)
{
    sqlite3_stmt *st = prepare(s, "SELECT value FROM meta WHERE key = ?", e);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), ret;
    if (rc == SQLITE_ROW) {
        snprintf(out, outlen, "%s", (const char *)sqlite3_column_text(st, 0));
        ret = 1;
    } else if (rc == SQLITE_DONE) {
        ret = 0;
    } else {
        ret = db_err(s, e, "cannot read settings");
    }
    sqlite3_finalize(st);
    return ret;
}

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
    sqlite3_bind_text(st, i, v != NULL ? v : "", -1, SQLITE_STATIC);
}

int pqm__store_insert(struct pqm_store *s, const struct pqm_cert_record *r, struct pqm_err *e)
{
    return pqm__store_insert_staged(s, r, "", e);
}

int pqm__store_insert_staged(struct pqm_store *s, const struct pqm_cert_record *r,
                             const char *staged, struct pqm_err *e)
{
    sqlite3_stmt *st = cached(
        s, ST_INSERT,
        "INSERT INTO certs(serial, name, kind, profile, subject, issuer, issuer_serial, sans,"
        " key_alg, not_before, not_after, fingerprint, status, cert_path, key_path, chain_path,"
        " p12_path, created_at, staged) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        e);
    if (st == NULL)
        return -1;
    const char *text[] = {r->serial,  r->name,      r->kind,        r->profile, r->subject,
                          r->issuer,  r->issuer_serial, r->sans,    r->key_alg};
    for (int i = 0; i < 9; i++)
        bind_text(st, i + 1, text[i]);
    sqlite3_bind_int64(st, 10, r->not_before);
    sqlite3_bind_int64(st, 11, r->not_after);
    bind_text(st, 12, r->fingerprint);
    bind_text(st, 13, r->status);
    bind_text(st, 14, r->cert_path);
    bind_text(st, 15, r->key_path);
    bind_text(st, 16, r->chain_path);
    bind_text(st, 17, r->p12_path);
    sqlite3_bind_int64(st, 18, r->created_at);
    bind_text(st, 19, staged);
    return step_done(s, st, "cannot record the certificate", e);
}

int pqm__store_set_status(struct pqm_store *s, const char *serial, const char *status,
                          struct pqm_err *e)
{
    sqlite3_stmt *st = cached(s, ST_SET_STATUS, "UPDATE certs SET status = ? WHERE serial = ?", e);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, status, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, serial, -1, SQLITE_STATIC);
    return step_done(s, st, "cannot update a certificate's status", e);
}

int pqm__store_mark(struct pqm_store *s, const char *serial, const char *from, const char *to,
                    struct pqm_err *e)
{
    sqlite3_stmt *st =
        cached(s, ST_MARK, "UPDATE certs SET status = ? WHERE serial = ? AND status = ?", e);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, to, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, serial, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, from, -1, SQLITE_STATIC);
    if (step_done(s, st, "cannot update a certificate's status", e) != 0)
        return -1;
    if (sqlite3_changes(s->db) != 1)
        return pqm__err_set(e, "inventory: certificate %s is no longer %s (another process "
                               "recovered it, or the lock file was replaced)",
                            serial, from);
    return 0;
}

int pqm__store_mark_all(struct pqm_store *s, const char *from, const char *to, size_t expect,
                        struct pqm_err *e)
{
    sqlite3_stmt *st =
        cached(s, ST_MARK_ALL, "UPDATE certs SET status = ? WHERE status = ?", e);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, to, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, from, -1, SQLITE_STATIC);
    if (step_done(s, st, "cannot update the certificates' status", e) != 0)
        return -1;
    sqlite3_int64 changed = sqlite3_changes64(s->db);
    if (changed < 0 || (size_t)changed != expect)
        return pqm__err_set(e, "inventory: %lld certificate(s) were %s where %zu were expected "
                               "(another process recovered them, or the lock file was "
                               "replaced)",
                            (long long)changed, from, expect);
    return 0;
}

static int exists(struct pqm_store *s, enum stmt_id id, const char *sql, const char *arg,
                  struct pqm_err *e)
{
    sqlite3_stmt *st = cached(s, id, sql, e);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    release(s, st);
    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE)
        return 0;
    return db_err(s, e, "cannot query");
}

int pqm__store_name_live(struct pqm_store *s, const char *name, struct pqm_err *e)
{
    return exists(s, ST_NAME_LIVE,
                  "SELECT 1 FROM certs WHERE name = ? AND status IN ('pending','valid')", name, e);
}

int pqm__store_serial_used(struct pqm_store *s, const char *serial, struct pqm_err *e)
{
    return exists(s, ST_SERIAL_USED, "SELECT 1 FROM certs WHERE serial = ?", serial, e);
}

int pqm__store_staging_add(struct pqm_store *s, const char *dir, const char *prefix,
                           int64_t *id, struct pqm_err *e)
{
    sqlite3_stmt *st = prepare(s, "INSERT INTO staging(dir, prefix) VALUES (?, ?)", e);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, dir, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, prefix, -1, SQLITE_STATIC);
    if (step_done(s, st, "cannot record where files are staged", e) != 0)
        return -1;
    *id = sqlite3_last_insert_rowid(s->db);
    return 0;
}

int pqm__store_staging_del(struct pqm_store *s, int64_t id, struct pqm_err *e)
{
    sqlite3_stmt *st = prepare(s, id < 0 ? "DELETE FROM staging" : "DELETE FROM staging WHERE id = ?", e);
    if (st == NULL)
        return -1;
    if (id >= 0)
        sqlite3_bind_int64(st, 1, id);
    if (step_done(s, st, "cannot clear the staging record", e) != 0)
        return -1;
    if (id >= 0 && sqlite3_changes(s->db) != 1)
        return pqm__err_set(e, "inventory: staging record %lld is gone (another process "
                               "recovered this issuance, or the lock file was replaced)",
                            (long long)id);
    return 0;
}

int pqm__store_staging_foreach(struct pqm_store *s, int (*cb)(const char *dir, const char *prefix,
                                                              void *arg),
                               void *arg, struct pqm_err *e)
{
    sqlite3_stmt *st = prepare(s, "SELECT dir, prefix FROM staging ORDER BY id", e);
    if (st == NULL)
        return -1;
    int rc, ret = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if ((ret = cb((const char *)sqlite3_column_text(st, 0),
                      (const char *)sqlite3_column_text(st, 1), arg)) != 0)
            break;
    if (ret == 0 && rc != SQLITE_DONE)
        ret = db_err(s, e, "cannot list staging records");
    sqlite3_finalize(st);
    return ret;
}

static const char *col(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t != NULL ? (const char *)t : "";
}

struct plain_cb {
    pqm_record_cb cb;
    void *arg;
};

static int call_plain(const struct pqm_cert_record *r, const char *staged, void *arg)
{
    (void)staged;
    const struct plain_cb *p = arg;
    return p->cb(r, p->arg);
}

int pqm__store_foreach(struct pqm_store *s, enum pqm_store_filter f, pqm_record_cb cb, void *arg,
                       struct pqm_err *e)
{
    struct plain_cb p = {cb, arg};
    return pqm__store_foreach_rows(s, f, call_plain, &p, e);
}

static const char row_columns[] =
    "SELECT serial, name, kind, profile, subject, issuer, issuer_serial, sans, key_alg,"
    " fingerprint, status, cert_path, key_path, chain_path, p12_path, not_before, not_after,"
    " created_at, staged, revoked_at, revocation_reason, replaced_by FROM certs";

/* Runs row_columns + WHERE, with ARG (when not NULL) and then NUM (when not NULL) bound
 * to its parameters in that order. */
static int query_rows(struct pqm_store *s, const char *where, const char *arg,
                      const int64_t *num, pqm_row_cb cb, void *cb_arg, struct pqm_err *e)
{
    char sql[sizeof(row_columns) + 256];
    snprintf(sql, sizeof(sql), "%s%s", row_columns, where);
    sqlite3_stmt *st = prepare(s, sql, e);
    if (st == NULL)
        return -1;
    if (arg != NULL)
        sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
    if (num != NULL)
        sqlite3_bind_int64(st, arg != NULL ? 2 : 1, *num);
    int rc, ret = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct pqm_cert_record r = {
            .serial = col(st, 0),      .name = col(st, 1),       .kind = col(st, 2),
            .profile = col(st, 3),     .subject = col(st, 4),    .issuer = col(st, 5),
            .issuer_serial = col(st, 6), .sans = col(st, 7),     .key_alg = col(st, 8),
            .fingerprint = col(st, 9), .status = col(st, 10),    .cert_path = col(st, 11),
            .key_path = col(st, 12),   .chain_path = col(st, 13), .p12_path = col(st, 14),
            .not_before = sqlite3_column_int64(st, 15),
            .not_after = sqlite3_column_int64(st, 16),
            .created_at = sqlite3_column_int64(st, 17),
            .revoked_at = sqlite3_column_int64(st, 19),
            .revocation_reason = col(st, 20),
            .replaced_by = col(st, 21),
        };
        ret = cb(&r, col(st, 18), cb_arg);
        if (ret != 0)
            break;
    }
    if (ret == 0 && rc != SQLITE_DONE)
        ret = db_err(s, e, "cannot list certificates");
    sqlite3_finalize(st);
    return ret;
}

int pqm__store_foreach_rows(struct pqm_store *s, enum pqm_store_filter f, pqm_row_cb cb,
                            void *arg, struct pqm_err *e)
{
    const char *where;
    switch (f) {
    case PQM_STORE_LIVE:
        where = " WHERE status IN ('valid','revoked','superseded') ORDER BY seq";
        break;
    case PQM_STORE_PENDING:
        where = " WHERE status = 'pending' ORDER BY seq";
        break;
    case PQM_STORE_ALL:
    default:
        where = " ORDER BY seq";
        break;
    }
    return query_rows(s, where, NULL, NULL, cb, arg, e);
}

struct found {
    pqm_record_cb cb;  /* either */
    pqm_row_cb row_cb; /* or, with the staged-file identities */
    void *arg;
    int n;
};

static int found_one(const struct pqm_cert_record *r, const char *staged, void *arg)
{
    struct found *f = arg;
    f->n++;
    if (f->row_cb != NULL)
        return f->row_cb(r, staged, f->arg);
    return f->cb != NULL ? f->cb(r, f->arg) : 0;
}

/* The rows WHERE (with ARG) selects to F: 1 when there was one, 0 when none, -1 on error. */
static int find_rows(struct pqm_store *s, const char *where, const char *arg, struct found *f,
                     struct pqm_err *e)
{
    int rc = query_rows(s, where, arg, NULL, found_one, f, e);
    if (rc != 0)
        return rc < 0 ? -1 : rc;
    return f->n > 0;
}

/* The rows of WHERE (ARG bound) to CB: 1 when there was one, 0 when none, -1 on error,
 * or CB's non-zero value. */
static int query_found(struct pqm_store *s, const char *where, const char *arg, pqm_record_cb cb,
                       void *cb_arg, struct pqm_err *e)
{
    struct found f = {cb, NULL, cb_arg, 0};
    return find_rows(s, where, arg, &f, e);
}

int pqm__store_get(struct pqm_store *s, const char *serial, pqm_record_cb cb, void *arg,
                   struct pqm_err *e)
{
    return query_found(s, " WHERE serial = ?", serial, cb, arg, e);
}

int pqm__store_foreach_issued_by(struct pqm_store *s, const char *issuer_serial,
                                 pqm_record_cb cb, void *arg, struct pqm_err *e)
{
    struct plain_cb p = {cb, arg};
    return query_rows(s,
                      " WHERE issuer_serial = ? AND serial <> issuer_serial"
                      " AND status IN ('valid','revoked','superseded') ORDER BY seq",
                      issuer_serial, NULL, call_plain, &p, e);
}

int pqm__store_revoke(struct pqm_store *s, const char *serial, const char *reason, int64_t at,
                      struct pqm_err *e)
{
    sqlite3_stmt *st = prepare(s,
                               "UPDATE certs SET status = 'revoked', revoked_at = ?,"
                               " revocation_reason = ? WHERE serial = ?"
                               " AND status IN ('valid','superseded')",
                               e);
    if (st == NULL)
        return -1;
    sqlite3_bind_int64(st, 1, at);
    sqlite3_bind_text(st, 2, reason, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, serial, -1, SQLITE_STATIC);
    if (step_done(s, st, "cannot revoke the certificate", e) != 0)
        return -1;
    return sqlite3_changes(s->db) == 1 ? 0 : 1;
}

/* Runs an update of certificate SERIAL's row, which must exist. */
static int step_on_serial(struct pqm_store *s, sqlite3_stmt *st, const char *serial,
                          const char *what, struct pqm_err *e)
{
    if (step_done(s, st, what, e) != 0)
        return -1;
    if (sqlite3_changes(s->db) != 1)
        return pqm__err_set(e, "inventory: certificate %s is not recorded", serial);
    return 0;
}

int pqm__store_set_replaced_by(struct pqm_store *s, const char *serial, const char *by,
                               struct pqm_err *e)
{
    sqlite3_stmt *st = prepare(s,
                               "UPDATE certs SET status = CASE status WHEN 'valid' THEN"
                               " 'superseded' ELSE status END, replaced_by = ? WHERE serial = ?",
                               e);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, by, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, serial, -1, SQLITE_STATIC);
    return step_on_serial(s, st, serial, "cannot record the renewal", e);
}

int pqm__store_foreach_due(struct pqm_store *s, int64_t before, pqm_record_cb cb, void *arg,
                           struct pqm_err *e)
{
    struct plain_cb p = {cb, arg};
    return query_rows(s,
                      " WHERE status = 'valid' AND kind IN ('server','client')"
                      " AND not_after <= ? ORDER BY not_after, seq",
                      NULL, &before, call_plain, &p, e);
}

int pqm__store_get_valid_name(struct pqm_store *s, const char *name, pqm_record_cb cb, void *arg,
                              struct pqm_err *e)
{
    struct found f = {cb, NULL, arg, 0};
    return find_rows(s, " WHERE name = ? AND status = 'valid'", name, &f, e);
}

int pqm__store_renewal_of(struct pqm_store *s, const char *serial, pqm_row_cb cb, void *arg,
                          struct pqm_err *e)
{
    struct found f = {NULL, cb, arg, 0};
    return find_rows(s, " WHERE replaced_by = ? AND status = 'superseded'", serial, &f, e);
}

int pqm__store_set_files(struct pqm_store *s, const char *serial, const char *const paths[4],
                         const char *staged, struct pqm_err *e)
{
    sqlite3_stmt *st = prepare(s,
                               "UPDATE certs SET cert_path = ?, key_path = ?, chain_path = ?,"
                               " p12_path = ?, staged = ? WHERE serial = ?",
                               e);
    if (st == NULL)
        return -1;
    for (int i = 0; i < 4; i++)
        bind_text(st, i + 1, paths[i]);
    bind_text(st, 5, staged);
    bind_text(st, 6, serial);
    return step_on_serial(s, st, serial, "cannot record where the certificate's files are", e);
}

int pqm__store_unrenew(struct pqm_store *s, const char *serial, struct pqm_err *e)
{
    sqlite3_stmt *st = prepare(
        s,
        "UPDATE certs SET status = 'valid', replaced_by = '',"
        " cert_path = (SELECT n.cert_path FROM certs n WHERE n.serial = ?1),"
        " key_path = (SELECT n.key_path FROM certs n WHERE n.serial = ?1),"
        " chain_path = (SELECT n.chain_path FROM certs n WHERE n.serial = ?1),"
        " p12_path = (SELECT n.p12_path FROM certs n WHERE n.serial = ?1)"
        " WHERE replaced_by = ?1 AND status = 'superseded'",
        e);
    if (st == NULL)
        return -1;
    bind_text(st, 1, serial);
    if (step_done(s, st, "cannot undo an interrupted renewal", e) != 0)
        return -1;
    return sqlite3_changes(s->db);
}

int pqm__store_status_of(struct pqm_store *s, const char *issuer_serial, const char *serial,
                         struct pqm_store_status *out, struct pqm_err *e)
{
    sqlite3_stmt *st = cached(s, ST_STATUS,
                              "SELECT status, revoked_at, revocation_reason FROM certs"
                              " WHERE serial = ? AND issuer_serial = ?",
                              e);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, issuer_serial, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), ret = 0;
    if (rc == SQLITE_ROW) {
        snprintf(out->status, sizeof(out->status), "%s", col(st, 0));
        out->revoked_at = sqlite3_column_int64(st, 1);
        snprintf(out->reason, sizeof(out->reason), "%s", col(st, 2));
        ret = 1;
    } else if (rc != SQLITE_DONE) {
        ret = db_err(s, e, "cannot read a certificate's status");
    }
    release(s, st);
    return ret;
}

int pqm__store_data_version(struct pqm_store *s, int64_t *out, struct pqm_err *e)
{
    sqlite3_stmt *st = cached(s, ST_DATA_VERSION, "PRAGMA data_version", e);
    if (st == NULL)
        return -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    release(s, st);
    return rc == SQLITE_ROW ? 0 : db_err(s, e, "cannot read the data version");
}

int pqm__store_ocsp_signer(struct pqm_store *s, const char *issuer_serial, int64_t now,
                           pqm_record_cb cb, void *arg, struct pqm_err *e)
{
    char where[256];
    snprintf(where, sizeof(where),
             " WHERE kind = 'ocsp' AND issuer_serial = ? AND status IN ('valid','superseded')"
             " AND key_path <> '' AND not_after > %lld ORDER BY seq DESC LIMIT 1",
             (long long)now);
    return query_found(s, where, issuer_serial, cb, arg, e);
}

int pqm__store_clear_key_path(struct pqm_store *s, const char *serial, struct pqm_err *e)
{
    sqlite3_stmt *st = prepare(s, "UPDATE certs SET key_path = '' WHERE serial = ?", e);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
    if (step_done(s, st, "cannot record that a key was removed", e) != 0)
        return -1;
    if (sqlite3_changes(s->db) != 1)
        return pqm__err_set(e, "inventory: certificate %s is not recorded", serial);
    return 0;
}
