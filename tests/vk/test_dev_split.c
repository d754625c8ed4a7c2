/* Buffer splitting against small fake limits (no device needed). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "vk/vkr.h"

static void test_split_fits(void **state)
{
    uint64_t per, n;
    assert_int_equal(vkr_split_rows(100, 16, 1 << 20, 1 << 20, &per, &n), 0);
    assert_int_equal(per, 100);
    assert_int_equal(n, 1);
}

static void test_split_exact_and_ragged(void **state)
{
    uint64_t per, n;
    assert_int_equal(vkr_split_rows(100, 10, 250, 1000, &per, &n), 0);
    assert_int_equal(per, 25);
    assert_int_equal(n, 4);
    assert_int_equal(vkr_split_rows(101, 10, 250, 1000, &per, &n), 0);
    assert_int_equal(per, 25);
    assert_int_equal(n, 5);
    /* the smaller of range and allocation limits wins */
    assert_int_equal(vkr_split_rows(101, 10, 1000, 99, &per, &n), 0);
    assert_int_equal(per, 9);
    assert_int_equal(n, 12);
    /* 32000 x 4096 f16 embedding on a 128 MiB binding limit */
    assert_int_equal(vkr_split_rows(32000, 8192, 128u << 20, 4ull << 30, &per, &n), 0);
    assert_int_equal(per, 16384);
    assert_int_equal(n, 2);
}

static void test_split_errors(void **state)
{
    uint64_t per = 7, n = 7;
    assert_int_equal(vkr_split_rows(10, 300, 250, 1000, &per, &n), -E2BIG);
    assert_int_equal(vkr_split_rows(0, 4, 250, 1000, &per, &n), -EINVAL);
    assert_int_equal(vkr_split_rows(10, 0, 250, 1000, &per, &n), -EINVAL);
    assert_int_equal(per, 7); /* outputs untouched on failure */
    /* huge row counts do not overflow */
    assert_int_equal(vkr_split_rows(UINT64_MAX / 2, 2, UINT64_MAX, UINT64_MAX, &per, &n), 0);
    assert_int_equal(n, 1);
}

static void test_rows_geometry(void **state)
{
    struct vkr_rows r = { .n_rows = 101, .rows_per_chunk = 25, .n_chunks = 5 };
    assert_int_equal(vkr_rows_first(&r, 4), 100);
    assert_int_equal(vkr_rows_count(&r, 4), 1);
    assert_int_equal(vkr_rows_count(&r, 3), 25);
    assert_int_equal(vkr_rows_count(&r, 5), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_fits),
        cmocka_unit_test(test_split_exact_and_ragged),
        cmocka_unit_test(test_split_errors),
        cmocka_unit_test(test_rows_geometry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
