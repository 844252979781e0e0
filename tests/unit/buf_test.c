/* Unit tests of util/buf.c: formatted appends longer than the stack buffer, the bound. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "util/buf.h"

static void test_addf_short_and_long(void **state)
{
    (void)state;
    struct pqm_buf b;
    pqm__buf_init(&b, 1 << 20);
    assert_int_equal(pqm__buf_addf(&b, "%s=%d;", "a", 1), 0);
    char big[5000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    /* 4,999 characters: more than the 1 KiB stack buffer. */
    assert_int_equal(pqm__buf_addf(&b, "[%s]", big), 0);
    assert_int_equal(b.len, 4 + 5001);
    assert_memory_equal(pqm__buf_head(&b), "a=1;[", 5);
    assert_int_equal(pqm__buf_head(&b)[b.len - 1], ']');
    assert_int_equal(pqm__buf_head(&b)[b.len - 2], 'x');
    pqm__buf_free(&b);
}

static void test_addf_bounded(void **state)
{
    (void)state;
    struct pqm_buf b;
    pqm__buf_init(&b, 100);
    char big[2000];
    memset(big, 'y', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(pqm__buf_addf(&b, "%s", big), -1); /* past MAX: refused, not cut */
    assert_int_equal(b.len, 0);
    assert_int_equal(pqm__buf_addf(&b, "%.50s", big), 0);
    assert_int_equal(b.len, 50);
    pqm__buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addf_short_and_long),
        cmocka_unit_test(test_addf_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
