/* Unit tests of pki/store.c: the SQLite inventory. Each test gets a fresh database
 * in its own temporary directory. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <string.h>

#include <sqlite3.h>

#include "store_util.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))


/* A record with every field set, all distinct per SERIAL, so a mixed-up column shows. */
struct rec_buf {
    char serial[64], name[64], subject[128], issuer[128], sans[128], fp[80], cert[128], key[128],
        chain[128], p12[128];
    struct pqm_cert_record r;
};

static const struct pqm_cert_record *make_rec(struct rec_buf *b, const char *serial,
                                              const char *name, const char *status)
{
    snprintf(b->serial, sizeof(b->serial), "%s", serial);
    snprintf(b->name, sizeof(b->name), "%s", name);
    snprintf(b->subject, sizeof(b->subject), "CN=%s,O=Unit", name);
    snprintf(b->issuer, sizeof(b->issuer), "CN=Unit Server CA,O=Unit");
    snprintf(b->sans, sizeof(b->sans), "DNS:%s,IP:127.0.0.1", name);
    snprintf(b->fp, sizeof(b->fp), "fp-%s", serial);
    snprintf(b->cert, sizeof(b->cert), "issued/%s-%s.crt.pem", name, serial);
    snprintf(b->key, sizeof(b->key), "issued/%s-%s.key.pem", name, serial);
    snprintf(b->chain, sizeof(b->chain), "issued/%s-%s.chain.pem", name, serial);
    snprintf(b->p12, sizeof(b->p12), "issued/%s-%s.p12", name, serial);
    b->r = (struct pqm_cert_record){
        .serial = b->serial,
        .name = b->name,
        .kind = "server",
        .profile = "server",
        .subject = b->subject,
        .issuer = b->issuer,
        .issuer_serial = "ISSUER01",
        .sans = b->sans,
        .key_alg = "ml-dsa-65",
        .fingerprint = b->fp,
        .status = status,
        .cert_path = b->cert,
        .key_path = b->key,
        .chain_path = b->chain,
        .p12_path = b->p12,
        .not_before = 1700000000,
        .not_after = 1800000000,
        .created_at = 1700000060,
    };
    return &b->r;
}

static int insert(struct pqm_store *s, const char *serial, const char *name, const char *status,
                  struct pqm_err *e)
{
    struct rec_buf b;
    return pqm__store_insert(s, make_rec(&b, serial, name, status), e);
}

static void must_insert(struct pqm_store *s, const char *serial, const char *name,
                        const char *status)
{
    struct pqm_err e = {{0}};
    if (insert(s, serial, name, status, &e) != 0)
        fail_msg("insert %s/%s/%s: %s", serial, name, status, pqm__err_str(&e));
}

/* --- collecting foreach rows ---------------------------------------------------------- */

struct seen {
    char serials[16][64];
    size_t n;
    int stop_at; /* return 7 at this row (1-based); 0: never */
    int full_ok; /* the row "S1" read back with every field intact */
};

static int collect(const struct pqm_cert_record *r, void *arg)
{
    struct seen *v = arg;
    if (v->n < ARRAY_LEN(v->serials))
        snprintf(v->serials[v->n], sizeof(v->serials[0]), "%s", r->serial);
    v->n++;
    if (strcmp(r->serial, "S1") == 0) {
        struct rec_buf b;
        const struct pqm_cert_record *w = make_rec(&b, "S1", "a.example.com", "valid");
        v->full_ok =
            strcmp(r->name, w->name) == 0 && strcmp(r->kind, w->kind) == 0 &&
            strcmp(r->profile, w->profile) == 0 && strcmp(r->subject, w->subject) == 0 &&
            strcmp(r->issuer, w->issuer) == 0 && strcmp(r->issuer_serial, w->issuer_serial) == 0 &&
            strcmp(r->sans, w->sans) == 0 && strcmp(r->key_alg, w->key_alg) == 0 &&
            strcmp(r->fingerprint, w->fingerprint) == 0 && strcmp(r->status, "valid") == 0 &&
            strcmp(r->cert_path, w->cert_path) == 0 && strcmp(r->key_path, w->key_path) == 0 &&
            strcmp(r->chain_path, w->chain_path) == 0 && strcmp(r->p12_path, w->p12_path) == 0 &&
            r->not_before == w->not_before && r->not_after == w->not_after &&
            r->created_at == w->created_at;
    }
    return v->stop_at != 0 && (int)v->n == v->stop_at ? 7 : 0;
}

static void joined(const struct seen *v, char *out, size_t outlen)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < v->n && i < ARRAY_LEN(v->serials); i++)
        used += (size_t)snprintf(out + used, outlen - used, "%s%s", i ? "," : "", v->serials[i]);
}

/* --- tests ------------------------------------------------------------------------------ */

static void test_schema_version(void **state)
{
    struct tu_store *t = *state;
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(t->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    char mode[16];
    snprintf(mode, sizeof(mode), "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
    assert_int_equal(v, PQM_STORE_SCHEMA_VERSION);
    assert_string_equal(mode, "wal");
}

struct live_row {
    const char *name;
    int live;
};

static void test_name_live(void **state)
{
    struct tu_store *t = *state;
    struct pqm_err e = {{0}};
    must_insert(t->s, "S1", "pending.example.com", "pending");
    must_insert(t->s, "S2", "valid.example.com", "valid");
    must_insert(t->s, "S3", "aborted.example.com", "aborted");
    must_insert(t->s, "S4", "revoked.example.com", "revoked");
    must_insert(t->s, "S5", "later.example.com", "pending");
    assert_int_equal(pqm__store_set_status(t->s, "S5", "aborted", &e), 0);
    const struct live_row rows[] = {
        {"pending.example.com", 1}, {"valid.example.com", 1}, {"aborted.example.com", 0},
        {"revoked.example.com", 0}, {"later.example.com", 0}, {"never.example.com", 0},
        {"VALID.example.com", 0},   {"", 0},
    };
    int bad = 0;
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        int got = pqm__store_name_live(t->s, rows[i].name, &e);
        if (got != rows[i].live)
            TU_ROW_FAIL(bad, "'%s': name_live %d, want %d", rows[i].name, got, rows[i].live);
    }
    TU_ROWS_DONE(bad);
}

struct used_row {
    const char *serial;
    int used;
};

static void test_serial_used(void **state)
{
    struct tu_store *t = *state;
    struct pqm_err e = {{0}};
    must_insert(t->s, "AA01", "a.example.com", "valid");
    must_insert(t->s, "AA02", "b.example.com", "pending");
    assert_int_equal(pqm__store_set_status(t->s, "AA02", "aborted", &e), 0);
    must_insert(t->s, "AA03", "c.example.com", "revoked");
    const struct used_row rows[] = {
        {"AA01", 1}, {"AA02", 1}, {"AA03", 1}, {"AA04", 0}, {"aa01", 0}, {"", 0},
    };
    int bad = 0;
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        int got = pqm__store_serial_used(t->s, rows[i].serial, &e);
        if (got != rows[i].used)
            TU_ROW_FAIL(bad, "'%s': serial_used %d, want %d", rows[i].serial, got,
                        rows[i].used);
    }
    TU_ROWS_DONE(bad);
}

/* Each row inserts on top of the same base rows and says whether the database takes it. */
struct insert_row {
    const char *why;
    const char *serial, *name, *status, *kind, *fingerprint;
    int ok;
};

static void test_insert_constraints(void **state)
{
    struct tu_store *t = *state;
    struct pqm_err e = {{0}};
    must_insert(t->s, "B1", "live.example.com", "valid");
    must_insert(t->s, "B2", "pend.example.com", "pending");
    must_insert(t->s, "B3", "gone.example.com", "pending");
    assert_int_equal(pqm__store_set_status(t->s, "B3", "aborted", &e), 0);
    must_insert(t->s, "B4", "old.example.com", "revoked");
    const struct insert_row rows[] = {
        {"duplicate serial", "B1", "other.example.com", "valid", NULL, NULL, 0},
        {"duplicate serial of an aborted row", "B3", "x.example.com", "valid", NULL, NULL, 0},
        {"duplicate live name (valid)", "C1", "live.example.com", "valid", NULL, NULL, 0},
        {"duplicate live name (pending over valid)", "C2", "live.example.com", "pending", NULL,
         NULL, 0},
        {"duplicate live name (valid over pending)", "C3", "pend.example.com", "valid", NULL, NULL,
         0},
        {"duplicate fingerprint", "C4", "fp.example.com", "valid", NULL, "fp-B1", 0},
        {"invalid status", "C5", "bogus.example.com", "bogus", NULL, NULL, 0},
        {"empty status", "C6", "empty.example.com", "", NULL, NULL, 0},
        {"invalid kind", "C7", "kind.example.com", "valid", "bogus", NULL, 0},
        {"name of an aborted row reused", "D1", "gone.example.com", "valid", NULL, NULL, 1},
        {"aborted row beside a live name", "D2", "live.example.com", "aborted", NULL, NULL, 1},
        {"fresh name", "D3", "fresh.example.com", "pending", NULL, NULL, 1},
        {"client kind", "D4", "client-1", "valid", "client", NULL, 1},
    };
    int bad = 0;
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        const struct insert_row *r = &rows[i];
        struct rec_buf b;
        struct pqm_cert_record rec = *make_rec(&b, r->serial, r->name, r->status);
        if (r->kind != NULL)
            rec.kind = rec.profile = r->kind;
        if (r->fingerprint != NULL)
            rec.fingerprint = r->fingerprint;
        pqm__err_clear(&e);
        int rc = pqm__store_insert(t->s, &rec, &e);
        if (rc != (r->ok ? 0 : -1))
            TU_ROW_FAIL(bad, "row %zu (%s): rc %d (%s)", i, r->why, rc, pqm__err_str(&e));
        else if (!r->ok && strstr(e.msg, "inventory") == NULL)
            TU_ROW_FAIL(bad, "row %zu (%s): message '%s'", i, r->why, e.msg);
    }
    /* The refused rows left nothing behind. */
    struct seen v = {0};
    assert_int_equal(pqm__store_foreach(t->s, PQM_STORE_ALL, collect, &v, &e), 0);
    char got[256];
    joined(&v, got, sizeof(got));
    assert_string_equal(got, "B1,B2,B3,B4,D1,D2,D3,D4");
    TU_ROWS_DONE(bad);
}

static void test_set_status(void **state)
{
    struct tu_store *t = *state;
    struct pqm_err e = {{0}};
    must_insert(t->s, "E1", "e.example.com", "pending");
    struct {
        const char *status;
        int ok;
        int live_after;
    } rows[] = {
        {"valid", 1, 1}, {"bogus", 0, 1}, {"revoked", 1, 0},
        {"pending", 1, 1}, {"", 0, 1},    {"aborted", 1, 0},
    };
    int bad = 0;
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        int rc = pqm__store_set_status(t->s, "E1", rows[i].status, &e);
        int live = pqm__store_name_live(t->s, "e.example.com", &e);
        if (rc != (rows[i].ok ? 0 : -1) || live != rows[i].live_after)
            TU_ROW_FAIL(bad, "row %zu ('%s'): rc %d live %d", i, rows[i].status, rc, live);
    }
    TU_ROWS_DONE(bad);
}

static void test_meta(void **state)
{
    struct tu_store *t = *state;
    struct pqm_err e = {{0}};
    char out[64];
    snprintf(out, sizeof(out), "untouched");
    assert_int_equal(pqm__store_meta_get(t->s, "alg", out, sizeof(out), &e), 0);
    assert_int_equal(pqm__store_meta_set(t->s, "alg", "ml-dsa-65", &e), 0);
    assert_int_equal(pqm__store_meta_set(t->s, "org", "", &e), 0);
    assert_int_equal(pqm__store_meta_get(t->s, "alg", out, sizeof(out), &e), 1);
    assert_string_equal(out, "ml-dsa-65");
    /* Set again: replaced, not duplicated. */
    assert_int_equal(pqm__store_meta_set(t->s, "alg", "ed25519", &e), 0);
    assert_int_equal(pqm__store_meta_get(t->s, "alg", out, sizeof(out), &e), 1);
    assert_string_equal(out, "ed25519");
    /* An empty value is a value. */
    assert_int_equal(pqm__store_meta_get(t->s, "org", out, sizeof(out), &e), 1);
    assert_string_equal(out, "");
    /* Keys are exact. */
    assert_int_equal(pqm__store_meta_get(t->s, "ALG", out, sizeof(out), &e), 0);
    assert_int_equal(pqm__store_meta_get(t->s, "missing", out, sizeof(out), &e), 0);
    /* A short buffer gets a truncated, terminated value. */
    char small[4];
    assert_int_equal(pqm__store_meta_get(t->s, "alg", small, sizeof(small), &e), 1);
    assert_string_equal(small, "ed2");
}

struct filter_row {
    enum pqm_store_filter f;
    const char *want;
};

static void test_foreach_filters(void **state)
{
    struct tu_store *t = *state;
    struct pqm_err e = {{0}};
    /* Serials out of alphabetical order: the order must be issue order. */
    must_insert(t->s, "S9", "z.example.com", "valid");
    must_insert(t->s, "S1", "a.example.com", "valid");
    must_insert(t->s, "S5", "p.example.com", "pending");
    must_insert(t->s, "S3", "b.example.com", "pending");
    assert_int_equal(pqm__store_set_status(t->s, "S3", "aborted", &e), 0);
    must_insert(t->s, "S2", "r.example.com", "revoked");
    must_insert(t->s, "S7", "q.example.com", "pending");
    const struct filter_row rows[] = {
        {PQM_STORE_LIVE, "S9,S1,S2"},
        {PQM_STORE_ALL, "S9,S1,S5,S3,S2,S7"},
        {PQM_STORE_PENDING, "S5,S7"},
    };
    int bad = 0;
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        struct seen v = {0};
        int rc = pqm__store_foreach(t->s, rows[i].f, collect, &v, &e);
        char got[256];
        joined(&v, got, sizeof(got));
        if (rc != 0 || strcmp(got, rows[i].want) != 0)
            TU_ROW_FAIL(bad, "filter %d: rc %d rows '%s', want '%s'", (int)rows[i].f, rc, got,
                        rows[i].want);
        if (rows[i].f != PQM_STORE_PENDING && !v.full_ok)
            TU_ROW_FAIL(bad, "filter %d: row S1 did not read back field for field",
                        (int)rows[i].f);
    }
    TU_ROWS_DONE(bad);
}

static void test_foreach_stops(void **state)
{
    struct tu_store *t = *state;
    struct pqm_err e = {{0}};
    must_insert(t->s, "T1", "t1", "valid");
    must_insert(t->s, "T2", "t2", "valid");
    must_insert(t->s, "T3", "t3", "valid");
    struct seen v = {.stop_at = 2};
    assert_int_equal(pqm__store_foreach(t->s, PQM_STORE_ALL, collect, &v, &e), 7);
    assert_int_equal(v.n, 2);
    /* An empty result calls nothing and succeeds. */
    struct seen none = {0};
    assert_int_equal(pqm__store_foreach(t->s, PQM_STORE_PENDING, collect, &none, &e), 0);
    assert_int_equal(none.n, 0);
}

static void test_transactions(void **state)
{
    struct tu_store *t = *state;
    struct pqm_err e = {{0}};
    /* Rolled back: gone, serial and name free. */
    assert_int_equal(pqm__store_begin(t->s, &e), 0);
    must_insert(t->s, "R1", "r.example.com", "pending");
    assert_int_equal(pqm__store_meta_set(t->s, "k", "v", &e), 0);
    assert_int_equal(pqm__store_serial_used(t->s, "R1", &e), 1); /* visible inside */
    pqm__store_rollback(t->s);
    assert_int_equal(pqm__store_serial_used(t->s, "R1", &e), 0);
    assert_int_equal(pqm__store_name_live(t->s, "r.example.com", &e), 0);
    char out[8];
    assert_int_equal(pqm__store_meta_get(t->s, "k", out, sizeof(out), &e), 0);
    /* Rollback outside a transaction is harmless. */
    pqm__store_rollback(t->s);
    /* Committed: kept. */
    assert_int_equal(pqm__store_begin(t->s, &e), 0);
    must_insert(t->s, "R2", "r.example.com", "valid");
    assert_int_equal(pqm__store_commit(t->s, &e), 0);
    assert_int_equal(pqm__store_serial_used(t->s, "R2", &e), 1);
    /* Commit without a transaction is an error. */
    assert_int_equal(pqm__store_commit(t->s, &e), -1);
    tu_assert_contains(e.msg, "inventory");
}

/* A second connection sees only committed rows, and BEGIN IMMEDIATE takes the lock. */
static void test_two_handles(void **state)
{
    struct tu_store *t = *state;
    struct pqm_err e = {{0}};
    struct pqm_store *other = pqm__store_open(t->path, 0, &e);
    assert_non_null(other);
    assert_int_equal(pqm__store_begin(t->s, &e), 0);
    must_insert(t->s, "W1", "w.example.com", "pending");
    assert_int_equal(pqm__store_serial_used(other, "W1", &e), 0);
    assert_int_equal(pqm__store_commit(t->s, &e), 0);
    assert_int_equal(pqm__store_serial_used(other, "W1", &e), 1);
    pqm__store_close(other);
}

static void test_reopen_preserves(void **state)
{
    struct tu_store *t = *state;
    struct pqm_err e = {{0}};
    must_insert(t->s, "P1", "p1.example.com", "valid");
    must_insert(t->s, "P2", "p2.example.com", "pending");
    assert_int_equal(pqm__store_meta_set(t->s, "alg", "ml-dsa-87", &e), 0);
    pqm__store_close(t->s);
    t->s = pqm__store_open(t->path, 0, &e);
    if (t->s == NULL)
        fail_msg("reopen: %s", pqm__err_str(&e));
    char out[32];
    assert_int_equal(pqm__store_meta_get(t->s, "alg", out, sizeof(out), &e), 1);
    assert_string_equal(out, "ml-dsa-87");
    assert_int_equal(pqm__store_name_live(t->s, "p1.example.com", &e), 1);
    assert_int_equal(pqm__store_name_live(t->s, "p2.example.com", &e), 1);
    struct seen v = {0};
    assert_int_equal(pqm__store_foreach(t->s, PQM_STORE_ALL, collect, &v, &e), 0);
    char got[64];
    joined(&v, got, sizeof(got));
    assert_string_equal(got, "P1,P2");
    /* The unique index came back with the schema. */
    assert_int_equal(insert(t->s, "P3", "p1.example.com", "valid", &e), -1);
    /* Opening again with create on an existing database changes nothing. */
    pqm__store_close(t->s);
    t->s = pqm__store_open(t->path, 1, &e);
    assert_non_null(t->s);
    assert_int_equal(pqm__store_serial_used(t->s, "P1", &e), 1);
    /* Still schema version 1. */
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(t->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int ver = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    assert_int_equal(ver, PQM_STORE_SCHEMA_VERSION);
}

static void test_open_refusals(void **state)
{
    struct tu_store *t = *state;
    char missing[PATH_MAX], nodir[PATH_MAX], newer[PATH_MAX], notdb[PATH_MAX];
    snprintf(missing, sizeof(missing), "%s/missing.db", t->dir);
    snprintf(nodir, sizeof(nodir), "%s/no/such/dir/pki.db", t->dir);
    snprintf(newer, sizeof(newer), "%s/newer.db", t->dir);
    snprintf(notdb, sizeof(notdb), "%s/not-a-db", t->dir);

    /* A database from a newer pqmtls. */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(newer, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version=99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    char junk[4096];
    memset(junk, 'x', sizeof(junk) - 1);
    junk[sizeof(junk) - 1] = '\0';
    assert_int_equal(tu_write(notdb, junk), 0);

    struct {
        const char *why;
        const char *path;
        int create;
        const char *msg;
    } rows[] = {
        {"nonexistent, no create", missing, 0, missing},
        {"nonexistent directory, create", nodir, 1, nodir},
        {"newer schema", newer, 0, "newer"},
        {"not a database", notdb, 0, "inventory"},
    };
    int bad = 0;
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        struct pqm_err e = {{0}};
        struct pqm_store *s = pqm__store_open(rows[i].path, rows[i].create, &e);
        if (s != NULL)
            TU_ROW_FAIL(bad, "row %zu (%s): opened", i, rows[i].why);
        else if (strstr(e.msg, rows[i].msg) == NULL)
            TU_ROW_FAIL(bad, "row %zu (%s): message '%s' lacks '%s'", i, rows[i].why, e.msg,
                        rows[i].msg);
        pqm__store_close(s);
    }
    /* Refusing to open did not create the file. */
    assert_false(tu_exists(missing));
    TU_ROWS_DONE(bad);
}

/* An inventory written by schema 1 (before staging records and file hashes) opens,
 * migrates to the current schema, and keeps its rows. */
static void test_migrate_v1(void **state)
{
    struct tu_store *t = *state;
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/v1.db", t->dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    const char *v1 =
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "CREATE TABLE certs (seq INTEGER PRIMARY KEY AUTOINCREMENT, serial TEXT NOT NULL UNIQUE,"
        " name TEXT NOT NULL, kind TEXT NOT NULL CHECK (kind IN ('root','intermediate','server',"
        "'client')), profile TEXT NOT NULL, subject TEXT NOT NULL, issuer TEXT NOT NULL,"
        " issuer_serial TEXT NOT NULL DEFAULT '', sans TEXT NOT NULL DEFAULT '', key_alg TEXT"
        " NOT NULL, not_before INTEGER NOT NULL, not_after INTEGER NOT NULL, fingerprint TEXT"
        " NOT NULL UNIQUE, status TEXT NOT NULL CHECK (status IN ('pending','valid','revoked',"
        "'aborted')), cert_path TEXT NOT NULL, key_path TEXT NOT NULL DEFAULT '', chain_path"
        " TEXT NOT NULL DEFAULT '', p12_path TEXT NOT NULL DEFAULT '', created_at INTEGER NOT"
        " NULL, revoked_at INTEGER, revocation_reason TEXT);"
        "CREATE UNIQUE INDEX certs_live_name ON certs(name) WHERE status IN ('pending','valid');"
        "INSERT INTO certs(serial, name, kind, profile, subject, issuer, key_alg, not_before,"
        " not_after, fingerprint, status, cert_path, created_at) VALUES ('AB', 'old', 'client',"
        " 'client', 'CN=old', 'CN=ca', 'ml-dsa-65', 1, 2, 'f1', 'valid', 'issued/old.crt.pem', 3);"
        "PRAGMA user_version=1;";
    assert_int_equal(sqlite3_exec(db, v1, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    struct pqm_err e = {{0}};
    struct pqm_store *s = pqm__store_open(path, 0, &e);
    if (s == NULL)
        fail_msg("migration failed: %s", pqm__err_str(&e));
    assert_int_equal(pqm__store_name_live(s, "old", &e), 1);
    int64_t id = -1;
    assert_int_equal(pqm__store_staging_add(s, "/tmp", "x.", &id, &e), 0);
    assert_int_equal(pqm__store_staging_del(s, id, &e), 0);
    pqm__store_close(s);

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT staged FROM certs WHERE serial = 'AB'", -1,
                                        &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "");
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), PQM_STORE_SCHEMA_VERSION);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* A status moves only from the status it is expected to have: a row another process
 * already recovered is not marked valid behind its back. */
static void test_mark(void **state)
{
    struct tu_store *t = *state;
    struct pqm_err e = {{0}};
    struct rec_buf b;
    assert_int_equal(pqm__store_insert(t->s, make_rec(&b, "01", "m1", "pending"), &e), 0);
    assert_int_equal(pqm__store_mark(t->s, "01", "pending", "aborted", &e), 0);
    assert_int_equal(pqm__store_mark(t->s, "01", "pending", "valid", &e), -1);
    assert_non_null(strstr(pqm__err_str(&e), "no longer pending"));
    assert_int_equal(pqm__store_mark(t->s, "FF", "pending", "valid", &e), -1);
}

/* All rows of a status move at once, only when there are as many as expected: more
 * means rows this writer did not make, fewer that someone recovered some. */
static void test_mark_all(void **state)
{
    struct tu_store *t = *state;
    struct pqm_err e = {{0}};
    struct rec_buf b1, b2, b3;
    assert_int_equal(pqm__store_insert(t->s, make_rec(&b1, "11", "a1", "pending"), &e), 0);
    assert_int_equal(pqm__store_insert(t->s, make_rec(&b2, "12", "a2", "pending"), &e), 0);
    assert_int_equal(pqm__store_insert(t->s, make_rec(&b3, "13", "a3", "valid"), &e), 0);
    assert_int_equal(pqm__store_begin(t->s, &e), 0);
    assert_int_equal(pqm__store_mark_all(t->s, "pending", "valid", 3, &e), -1);
    assert_non_null(strstr(pqm__err_str(&e), "2 certificate(s) were pending where 3"));
    pqm__store_rollback(t->s); /* both are pending again */
    assert_int_equal(pqm__store_mark_all(t->s, "pending", "valid", 2, &e), 0);
    assert_int_equal(pqm__store_mark(t->s, "12", "valid", "revoked", &e), 0);
    assert_int_equal(pqm__store_mark(t->s, "11", "pending", "valid", &e), -1);
    assert_int_equal(pqm__store_mark_all(t->s, "pending", "valid", 0, &e), 0);
}

/* Staging records: added, listed, removed by id (once), or all at once. */
static int count_staging(const char *dir, const char *prefix, void *arg)
{
    (void)dir;
    (void)prefix;
    (*(int *)arg)++;
    return 0;
}

static void test_staging(void **state)
{
    struct tu_store *t = *state;
    struct pqm_err e = {{0}};
    int64_t a = -1, b = -1;
    int n = 0;
    assert_int_equal(pqm__store_staging_add(t->s, "/d1", "a.", &a, &e), 0);
    assert_int_equal(pqm__store_staging_add(t->s, "/d2", "b-", &b, &e), 0);
    assert_true(a != b);
    assert_int_equal(pqm__store_staging_foreach(t->s, count_staging, &n, &e), 0);
    assert_int_equal(n, 2);
    assert_int_equal(pqm__store_staging_del(t->s, a, &e), 0);
    assert_int_equal(pqm__store_staging_del(t->s, a, &e), -1);
    assert_non_null(strstr(pqm__err_str(&e), "is gone"));
    assert_int_equal(pqm__store_staging_del(t->s, -1, &e), 0);
    n = 0;
    assert_int_equal(pqm__store_staging_foreach(t->s, count_staging, &n, &e), 0);
    assert_int_equal(n, 0);
}


/* --- renewal ------------------------------------------------------------------------- */

static void insert_full(struct pqm_store *s, const char *serial, const char *name,
                        const char *kind, const char *status, int64_t not_after)
{
    struct pqm_err e = {{0}};
    struct rec_buf b;
    make_rec(&b, serial, name, status);
    b.r.kind = kind;
    b.r.not_after = not_after;
    if (pqm__store_insert(s, &b.r, &e) != 0)
        fail_msg("insert %s: %s", serial, pqm__err_str(&e));
}

/* What is due: valid server and client certificates up to the date, soonest first;
 * never a CA, nor anything superseded, revoked, pending or aborted. */
static void test_foreach_due(void **state)
{
    struct tu_store *t = *state;
    struct pqm_err e = {{0}};
    insert_full(t->s, "A1", "late", "client", "valid", 3000);
    insert_full(t->s, "A2", "soon", "server", "valid", 1000);
    insert_full(t->s, "A3", "edge", "client", "valid", 2000);
    insert_full(t->s, "A4", "far", "client", "valid", 2001);
    insert_full(t->s, "A5", "int", "intermediate", "valid", 500);
    insert_full(t->s, "A6", "root", "root", "valid", 500);
    insert_full(t->s, "A7", "old", "client", "superseded", 500);
    insert_full(t->s, "A8", "rev", "client", "revoked", 500);
    insert_full(t->s, "A9", "pend", "client", "pending", 500);
    insert_full(t->s, "AA", "abort", "client", "aborted", 500);
    static const struct {
        int64_t before;
        const char *want;
    } rows[] = {
        {999, ""}, {1000, "A2"}, {2000, "A2,A3"}, {2001, "A2,A3,A4"}, {INT64_MAX, "A2,A3,A4,A1"},
    };
    int nfail = 0;
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        struct seen v = {0};
        char got[256];
        assert_int_equal(pqm__store_foreach_due(t->s, rows[i].before, collect, &v, &e), 0);
        joined(&v, got, sizeof(got));
        if (strcmp(got, rows[i].want) != 0)
            TU_ROW_FAIL(nfail, "row %zu: due before %lld: '%s', expected '%s'", i,
                        (long long)rows[i].before, got, rows[i].want);
    }
    TU_ROWS_DONE(nfail);
}

struct row_copy {
    char serial[64], status[16], replaced_by[64], cert[128], key[128], staged[128];
};

static int copy_row(const struct pqm_cert_record *r, void *arg)
{
    struct row_copy *c = arg;
    snprintf(c->serial, sizeof(c->serial), "%s", r->serial);
    snprintf(c->status, sizeof(c->status), "%s", r->status);
    snprintf(c->replaced_by, sizeof(c->replaced_by), "%s", r->replaced_by);
    snprintf(c->cert, sizeof(c->cert), "%s", r->cert_path);
    snprintf(c->key, sizeof(c->key), "%s", r->key_path);
    return 0;
}

static int copy_full_row(const struct pqm_cert_record *r, const char *staged, void *arg)
{
    struct row_copy *c = arg;
    snprintf(c->staged, sizeof(c->staged), "%s", staged);
    return copy_row(r, arg);
}

static struct row_copy get_row(struct pqm_store *s, const char *serial)
{
    struct row_copy c;
    memset(&c, 0, sizeof(c));
    struct pqm_err e = {{0}};
    if (pqm__store_get(s, serial, copy_row, &c, &e) != 1)
        fail_msg("row %s: not found (%s)", serial, pqm__err_str(&e));
    return c;
}

static void test_get_valid_name(void **state)
{
    struct tu_store *t = *state;
    struct pqm_err e = {{0}};
    struct row_copy c;
    memset(&c, 0, sizeof(c));
    insert_full(t->s, "B1", "svc", "client", "superseded", 100);
    insert_full(t->s, "B2", "svc", "client", "valid", 200);
    insert_full(t->s, "B3", "gone", "client", "revoked", 100);
    assert_int_equal(pqm__store_get_valid_name(t->s, "svc", copy_row, &c, &e), 1);
    assert_string_equal(c.serial, "B2");
    assert_int_equal(pqm__store_get_valid_name(t->s, "gone", copy_row, &c, &e), 0);
    assert_int_equal(pqm__store_get_valid_name(t->s, "none", copy_row, &c, &e), 0);
}

/* A renewal as pki renew records it, then as recovery undoes it. */
static void test_supersede_and_unrenew(void **state)
{
    struct tu_store *t = *state;
    struct pqm_err e = {{0}};
    struct rec_buf b;
    const char *archived[4] = {"issued/archive/svc.C1.crt.pem", "issued/archive/svc.C1.key.pem",
                               "issued/archive/svc.C1.chain.pem", ""};
    insert_full(t->s, "C1", "svc", "client", "valid", 100);
    make_rec(&b, "C2", "svc", "pending");
    /* Two live certificates under one name: refused while the old one is valid. */
    assert_int_equal(pqm__store_insert(t->s, &b.r, &e), -1);
    assert_int_equal(pqm__store_begin(t->s, &e), 0);
    assert_int_equal(pqm__store_set_replaced_by(t->s, "C1", "C2", &e), 0);
    assert_int_equal(pqm__store_set_files(t->s, "C1", archived, "h1 h2 h3 -", &e), 0);
    assert_int_equal(pqm__store_insert_staged(t->s, &b.r, "n1 n2 n3 -", &e), 0);
    assert_int_equal(pqm__store_commit(t->s, &e), 0);
    struct row_copy old = get_row(t->s, "C1");
    assert_string_equal(old.status, "superseded");
    assert_string_equal(old.replaced_by, "C2");
    assert_string_equal(old.cert, "issued/archive/svc.C1.crt.pem");

    struct row_copy c;
    memset(&c, 0, sizeof(c));
    assert_int_equal(pqm__store_renewal_of(t->s, "C2", copy_full_row, &c, &e), 1);
    assert_string_equal(c.serial, "C1");
    assert_string_equal(c.staged, "h1 h2 h3 -");
    assert_int_equal(pqm__store_renewal_of(t->s, "C1", copy_full_row, &c, &e), 0);
    assert_int_equal(pqm__store_set_files(t->s, "ZZ", archived, "", &e), -1);

    /* Undone while C2 is still pending: two live rows under one name, refused whole. */
    assert_int_equal(pqm__store_unrenew(t->s, "C2", &e), -1);
    assert_string_equal(get_row(t->s, "C1").status, "superseded");
    assert_int_equal(pqm__store_begin(t->s, &e), 0);
    assert_int_equal(pqm__store_mark(t->s, "C2", "pending", "aborted", &e), 0);
    assert_int_equal(pqm__store_unrenew(t->s, "C2", &e), 1);
    assert_int_equal(pqm__store_commit(t->s, &e), 0);
    old = get_row(t->s, "C1");
    assert_string_equal(old.status, "valid");
    assert_string_equal(old.replaced_by, "");
    assert_string_equal(old.cert, b.cert); /* the live paths, the renewal's */
    assert_string_equal(old.key, b.key);
    /* Nothing more to undo. */
    assert_int_equal(pqm__store_unrenew(t->s, "C2", &e), 0);
    assert_int_equal(pqm__store_unrenew(t->s, "C1", &e), 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, tu_store_setup, tu_store_teardown)
    const struct CMUnitTest tests[] = {
        T(test_schema_version),     T(test_name_live),       T(test_serial_used),
        T(test_insert_constraints), T(test_set_status),      T(test_meta),
        T(test_foreach_filters),    T(test_foreach_stops),   T(test_transactions),
        T(test_two_handles),        T(test_reopen_preserves), T(test_open_refusals),
        T(test_migrate_v1),         T(test_mark),            T(test_mark_all),
        T(test_staging),            T(test_foreach_due),     T(test_get_valid_name),
        T(test_supersede_and_unrenew),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
