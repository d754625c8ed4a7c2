/* decoding/parts.c: several arrays in one zeroed allocation, each aligned,
 * and sizes that overflow refused with every pointer NULL. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "decoding/dec-internal.h"

static void test_carved(void **state)
{
    (void)state;
    char *a;
    double *b;
    int32_t *c;
    void *mem;
    const struct dec_mem_part parts[] = {
        { (void **)&a, 3, 1 },
        { (void **)&b, 5, sizeof(*b) },
        { (void **)&c, 0, sizeof(*c) },
    };
    assert_int_equal(dec_alloc_parts(parts, 3, &mem), 0);
    assert_ptr_equal(a, mem);
    assert_int_equal((uintptr_t)b % 16, 0);
    assert_int_equal((uintptr_t)c % 16, 0);
    assert_true((char *)b >= a + 3);
    for (int i = 0; i < 5; i++)
        assert_true(b[i] == 0.0);
    a[2] = 1;
    b[4] = 2.0;
    free(mem);
}

static void test_overflow(void **state)
{
    (void)state;
    char *a = (char *)1, *b = (char *)1;
    void *mem = (void *)1;
    const struct dec_mem_part huge[] = {
        { (void **)&a, SIZE_MAX / 2, 4 },
    };
    assert_int_equal(dec_alloc_parts(huge, 1, &mem), -ENOMEM);
    assert_null(a);
    assert_null(mem);
    const struct dec_mem_part sum[] = {
        { (void **)&a, SIZE_MAX / 2, 1 },
        { (void **)&b, SIZE_MAX / 2, 1 },
    };
    assert_int_equal(dec_alloc_parts(sum, 2, &mem), -ENOMEM);
    assert_null(a);
    assert_null(b);
    assert_null(mem);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_carved),
        cmocka_unit_test(test_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
