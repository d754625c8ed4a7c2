/* decoding/trie.c: shared prefixes verified once, parents first, children
 * in candidate order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "decoding/dec-internal.h"

static void test_shared_prefix(void **state)
{
    struct dec_trie t;
    assert_int_equal(dec_trie_init(&t, 11), 0);
    int32_t a[] = { 5, 6, 7 }, b[] = { 5, 6, 8 }, c[] = { 5, 9, 7 }, d[] = { 4, 6, 7 };
    dec_trie_insert(&t, a, 3);
    dec_trie_insert(&t, b, 3);
    dec_trie_insert(&t, c, 3);
    dec_trie_insert(&t, d, 3);
    assert_int_equal(t.n_cand, 4);
    assert_int_equal(t.n, 3 + 1 + 2 + 3);
    for (uint32_t i = 0; i < t.n; i++)
        assert_true(t.node[i].parent < (int32_t)i);
    int32_t n5 = dec_trie_child(&t, -1, 5);
    int32_t n56 = dec_trie_child(&t, n5, 6);
    assert_true(n5 >= 0 && n56 >= 0);
    assert_int_equal(t.node[n56].depth, 2);
    assert_true(dec_trie_child(&t, n56, 7) >= 0);
    assert_true(dec_trie_child(&t, n56, 8) >= 0);
    assert_int_equal(dec_trie_child(&t, n56, 9), -1);
    /* Depth-1 children in candidate order: 5 then 4. */
    assert_int_equal(t.node[t.root_child].token, 5);
    assert_int_equal(t.node[t.node[t.root_child].sibling].token, 4);
    /* A candidate that might not fit is dropped whole (the session sizes
     * the trie for g candidates, so this never happens there). */
    int32_t e[] = { 1, 2, 3 };
    dec_trie_insert(&t, e, 3);
    assert_int_equal(t.n, 9);
    assert_int_equal(dec_trie_child(&t, -1, 1), -1);
    dec_trie_reset(&t);
    assert_int_equal(t.n, 0);
    assert_int_equal(dec_trie_child(&t, -1, 5), -1);
    dec_trie_done(&t);
    dec_trie_done(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shared_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
