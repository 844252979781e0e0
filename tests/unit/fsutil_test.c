/* Unit tests of util/fsutil.c: the file primitives that crash safety rests on. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <string.h>

#include "util/digest.h"
#include "util/fsutil.h"
#include "unit_util.h"

static char *dir;

static int setup(void **state)
{
    (void)state;
    dir = tu_mkdtemp("fsutil");
    return dir == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    tu_rmtree(dir);
    free(dir);
    return 0;
}

static const char *at(const char *name)
{
    static char buf[PATH_MAX];
    snprintf(buf, sizeof(buf), "%s/%s", dir, name);
    return buf;
}

static int count_prefix(const char *prefix)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL)
        n += strncmp(de->d_name, prefix, strlen(prefix)) == 0;
    if (d != NULL)
        closedir(d);
    return n;
}

/* Staged files are invisible until published, then complete, with their modes. */
static void test_stage_then_publish(void **state)
{
    (void)state;
    struct pqm_filetx tx;
    struct pqm_err e = {{0}};
    char a[PATH_MAX], b[PATH_MAX];
    snprintf(a, sizeof(a), "%s", at("a.crt.pem"));
    snprintf(b, sizeof(b), "%s", at("a.key.pem"));
    pqm__filetx_init(&tx);
    assert_int_equal(pqm__filetx_stage(&tx, a, "certificate", 11, 0644, &e), 0);
    assert_int_equal(pqm__filetx_stage(&tx, b, "key", 3, 0600, &e), 0);
    assert_false(tu_exists(a));
    assert_int_equal(count_prefix(PQM_TMP_PREFIX), 2);
    assert_int_equal(pqm__filetx_sync(&tx, &e), 0);
    assert_int_equal(pqm__filetx_publish(&tx, &e), 0);
    pqm__filetx_release(&tx);
    assert_int_equal(count_prefix(PQM_TMP_PREFIX), 0);
    struct stat st;
    assert_int_equal(stat(b, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 3);
}

/* Publishing never replaces an existing file, and says which. */
static void test_publish_refuses_to_replace(void **state)
{
    (void)state;
    struct pqm_filetx tx;
    struct pqm_err e = {{0}};
    char a[PATH_MAX];
    snprintf(a, sizeof(a), "%s", at("taken.crt.pem"));
    assert_int_equal(tu_write(a, "theirs"), 0);
    pqm__filetx_init(&tx);
    assert_int_equal(pqm__filetx_stage(&tx, a, "ours", 4, 0644, &e), 0);
    assert_int_equal(pqm__filetx_rename(&tx, &e), -1);
    assert_non_null(strstr(pqm__err_str(&e), "taken.crt.pem: already exists"));
    pqm__filetx_release(&tx); /* removes the unpublished temporary file */
    assert_int_equal(count_prefix(PQM_TMP_PREFIX), 0);
    char *got = tu_read(a);
    assert_string_equal(got, "theirs");
    free(got);
}

/* The identity of a staged file is the SHA-256 of its bytes; unlink_if_same removes a
 * file only when its content still has that hash. */
static void test_identity_and_unlink_if_same(void **state)
{
    (void)state;
    struct pqm_filetx tx;
    struct pqm_err e = {{0}};
    char a[PATH_MAX], id[80], want[PQM_SHA256_HEX];
    snprintf(a, sizeof(a), "%s", at("x.crt.pem"));
    pqm__filetx_init(&tx);
    assert_int_equal(pqm__filetx_stage(&tx, a, "content", 7, 0644, &e), 0);
    pqm__filetx_identity(&tx, a, id, sizeof(id));
    assert_int_equal(pqm__sha256_hex("content", 7, want), 0);
    assert_string_equal(id, want);
    pqm__filetx_identity(&tx, at("other"), id, sizeof(id));
    assert_string_equal(id, "-");
    assert_int_equal(pqm__filetx_rename(&tx, &e), 0);
    pqm__filetx_release(&tx);

    assert_int_equal(tu_write(at("y.crt.pem"), "something else"), 0);
    assert_int_equal(pqm__unlink_if_same(at("y.crt.pem"), want, &e), 0);
    assert_true(tu_exists(at("y.crt.pem")));
    assert_int_equal(pqm__unlink_if_same(a, want, &e), 1);
    assert_false(tu_exists(a));
    assert_int_equal(pqm__unlink_if_same(a, want, &e), 0); /* absent */
    assert_int_equal(pqm__unlink_if_same(at("y.crt.pem"), NULL, &e), 1);
}

/* The sweep removes temporary files with the prefix, and nothing else. */
static void test_remove_tmp_files_prefix(void **state)
{
    (void)state;
    struct pqm_err e = {{0}};
    const char *names[] = {".pqmtls-tmp-dev-0001.crt.pem-abcdef", ".pqmtls-tmp-dev-0002.key.pem-ghijkl",
                           ".pqmtls-tmp-other.crt.pem-mnopqr", "dev-0001.crt.pem"};
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(tu_write(at(names[i]), "x"), 0);
    assert_int_equal(pqm__remove_tmp_files(dir, "dev-", &e), 2);
    assert_true(tu_exists(at(names[2])));
    assert_true(tu_exists(at(names[3])));
    assert_int_equal(pqm__remove_tmp_files(dir, "", &e), 1);
    assert_true(tu_exists(at(names[3])));
    /* A directory that is gone holds nothing of ours. */
    assert_int_equal(pqm__remove_tmp_files(at("missing"), "", &e), 0);
    assert_int_equal(pqm__remove_tmp_files(at(names[3]), "", &e), 0);
}

/* Reading is bounded: exactly the limit is fine, one byte more is refused. */
static void test_read_file_bounds(void **state)
{
    (void)state;
    struct pqm_err e = {{0}};
    unsigned char *data = NULL;
    size_t len = 0;
    assert_int_equal(tu_write(at("ten"), "0123456789"), 0);
    assert_int_equal(pqm__read_file(at("ten"), 10, &data, &len, &e), 0);
    assert_int_equal(len, 10);
    assert_int_equal(data[10], '\0');
    free(data);
    assert_int_equal(pqm__read_file(at("ten"), 9, &data, &len, &e), -1);
    assert_non_null(strstr(pqm__err_str(&e), "larger than 9 bytes"));
    assert_int_equal(pqm__read_file(dir, 100, &data, &len, &e), -1);
    assert_non_null(strstr(pqm__err_str(&e), "not a regular file"));
    assert_int_equal(pqm__read_file(at("none"), 100, &data, &len, &e), -1);
    assert_non_null(strstr(pqm__err_str(&e), "cannot open"));
}

/* The files stamp moves with every change a reload must notice, and only then. */
static void test_files_stamp(void **state)
{
    (void)state;
    char a[PATH_MAX], b[PATH_MAX], tmp[PATH_MAX];
    snprintf(a, sizeof(a), "%s", at("cert.pem"));
    snprintf(b, sizeof(b), "%s", at("key.pem"));
    snprintf(tmp, sizeof(tmp), "%s", at("key.pem.new"));
    const char *files[] = {a, b, NULL, ""};
    assert_int_equal(tu_write(a, "certificate one"), 0);
    assert_int_equal(tu_write(b, "key one"), 0);
    uint64_t s0 = pqm__files_stamp(files, 4);
    assert_true(s0 == pqm__files_stamp(files, 4)); /* nothing changed */
    assert_true(s0 != pqm__files_stamp(files, 1)); /* another set of files */
    assert_int_equal(tu_write(tmp, "key two"), 0);
    assert_int_equal(rename(tmp, b), 0);          /* replaced by rename: a new inode */
    uint64_t s1 = pqm__files_stamp(files, 4);
    assert_true(s1 != s0);
    assert_int_equal(tu_write(a, "certificate one, rewritten"), 0); /* rewritten in place */
    uint64_t s2 = pqm__files_stamp(files, 4);
    assert_true(s2 != s1);
    assert_int_equal(unlink(b), 0); /* gone */
    uint64_t s3 = pqm__files_stamp(files, 4);
    assert_true(s3 != s2);
    assert_true(s3 == pqm__files_stamp(files, 4));
    assert_int_equal(tu_write(b, "key three"), 0); /* back */
    assert_true(pqm__files_stamp(files, 4) != s3);
}

/* A certificate's hash and its chain's (the certificate followed by the CA's), the
 * certificate hashed once: the same as hashing each whole; and a file staged with a
 * known hash is recognised by it. */
static void test_sha256_prefix_and_stage_hashed(void **state)
{
    (void)state;
    const char cert[] = "-----BEGIN CERTIFICATE-----\nleaf\n-----END CERTIFICATE-----\n";
    const char ca[] = "-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n";
    char chain[sizeof(cert) + sizeof(ca)];
    snprintf(chain, sizeof(chain), "%s%s", cert, ca);
    char a[PQM_SHA256_HEX], ab[PQM_SHA256_HEX], want_a[PQM_SHA256_HEX], want_ab[PQM_SHA256_HEX];
    assert_int_equal(pqm__sha256_hex_prefix(cert, strlen(cert), ca, strlen(ca), a, ab), 0);
    assert_int_equal(pqm__sha256_hex(cert, strlen(cert), want_a), 0);
    assert_int_equal(pqm__sha256_hex(chain, strlen(chain), want_ab), 0);
    assert_string_equal(a, want_a);
    assert_string_equal(ab, want_ab);
    assert_string_not_equal(a, ab);

    struct pqm_filetx tx;
    struct pqm_err e = {{0}};
    char final[PATH_MAX], id[PQM_SHA256_HEX + 1], on_disk[PQM_SHA256_HEX];
    snprintf(final, sizeof(final), "%s", at("chain.pem"));
    pqm__filetx_init(&tx);
    assert_int_equal(pqm__filetx_stage_hashed(&tx, final, chain, strlen(chain), 0644, ab, &e), 0);
    assert_int_equal(pqm__filetx_publish(&tx, &e), 0);
    pqm__filetx_identity(&tx, final, id, sizeof(id));
    assert_string_equal(id, want_ab);
    assert_int_equal(pqm__file_identity(final, on_disk, &e), 1); /* present */
    assert_string_equal(on_disk, id);
    pqm__filetx_release(&tx);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_stage_then_publish),          T(test_publish_refuses_to_replace),
        T(test_identity_and_unlink_if_same), T(test_remove_tmp_files_prefix),
        T(test_read_file_bounds),            T(test_files_stamp),
        T(test_sha256_prefix_and_stage_hashed),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
