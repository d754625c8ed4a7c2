/* decoding/pool.c: per-key cap G, LRU refresh, oldest dropped, arena
 * eviction, prompt seeding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "decoding/dec-internal.h"

/* Tails of key, oldest first, as first tokens. */
static uint32_t firsts(const struct dec_pool *p, int32_t key, int32_t *out)
{
    uint32_t n = 0;
    for (int32_t i = dec_pool_first(p, key); i >= 0; i = dec_pool_next(p, i))
        out[n++] = dec_pool_tokens(p, i)[0];
    return n;
}

static void test_cap_and_lru(void **state)
{
    struct dec_pool p;
    assert_int_equal(dec_pool_init(&p, 100, 4, 1000), 0);
    dec_pool_reset(&p, 3, 3);
    int32_t t[4][3] = { { 1, 2, 3 }, { 4, 5, 6 }, { 7, 8, 9 }, { 10, 11, 12 } };
    int32_t got[8];
    for (int i = 0; i < 3; i++)
        dec_pool_add(&p, 50, t[i]);
    assert_int_equal(firsts(&p, 50, got), 3);
    assert_int_equal(got[0], 1);
    assert_int_equal(got[2], 7);
    /* Re-adding an existing tail refreshes it to newest, no duplicate. */
    dec_pool_add(&p, 50, t[0]);
    assert_int_equal(firsts(&p, 50, got), 3);
    assert_int_equal(got[0], 4);
    assert_int_equal(got[1], 7);
    assert_int_equal(got[2], 1);
    /* A fourth tail drops the oldest (4,5,6). */
    dec_pool_add(&p, 50, t[3]);
    assert_int_equal(firsts(&p, 50, got), 3);
    assert_int_equal(got[0], 7);
    assert_int_equal(got[1], 1);
    assert_int_equal(got[2], 10);
    assert_int_equal(p.n_entries, 3);
    /* Other keys are independent; out-of-range keys are ignored. */
    dec_pool_add(&p, 51, t[1]);
    dec_pool_add(&p, -1, t[1]);
    dec_pool_add(&p, 100, t[1]);
    assert_int_equal(firsts(&p, 51, got), 1);
    assert_int_equal(dec_pool_first(&p, 52), -1);
    assert_int_equal(p.n_entries, 4);
    /* Only the first len tokens of a tail count. */
    int32_t longer[4] = { 4, 5, 6, 99 };
    dec_pool_add(&p, 51, longer);
    assert_int_equal(firsts(&p, 51, got), 1);
    dec_pool_reset(&p, 3, 3);
    assert_int_equal(p.n_entries, 0);
    assert_int_equal(dec_pool_first(&p, 50), -1);
    dec_pool_done(&p);
}

static void test_arena_eviction(void **state)
{
    struct dec_pool p;
    assert_int_equal(dec_pool_init(&p, 10, 2, 4), 0);
    dec_pool_reset(&p, 2, 8);
    for (int32_t k = 0; k < 6; k++) {
        int32_t tail[2] = { k, k };
        dec_pool_add(&p, k, tail);
    }
    /* Four entries fit: the two added first are gone. */
    assert_int_equal(p.n_entries, 4);
    assert_int_equal(dec_pool_first(&p, 0), -1);
    assert_int_equal(dec_pool_first(&p, 1), -1);
    assert_true(dec_pool_first(&p, 2) >= 0);
    assert_true(dec_pool_first(&p, 5) >= 0);
    dec_pool_done(&p);
    dec_pool_done(NULL);
}

static void test_add_all(void **state)
{
    struct dec_pool p;
    assert_int_equal(dec_pool_init(&p, 20, 4, 100), 0);
    dec_pool_reset(&p, 2, 15);
    int32_t seq[] = { 1, 2, 3, 1, 2, 4, 1, 2, 3 };
    dec_pool_add_all(&p, seq, 9);
    int32_t got[8];
    /* 3-grams keyed by 1: (2,3) (2,4) then (2,3) again -> refreshed. */
    assert_int_equal(firsts(&p, 1, got), 2);
    const int32_t *newest = dec_pool_tokens(&p, p.tail[1]);
    assert_int_equal(newest[0], 2);
    assert_int_equal(newest[1], 3);
    assert_int_equal(p.n_entries, 6); /* 123 231 312 124 241 412 -> (1:2) (2:2) (3:1) (4:1) */
    dec_pool_done(&p);
}

/* dec_lookup: continuations of the last two tokens' earlier places,
 * longest match first, then latest; distinct; inside the text; none
 * without a two-token match. */
static void test_lookup(void **state)
{
    const int32_t *c[2];
    /* ... 1 2 [3 4] ... 9 1 2 [5 6] ... 7 8 1 2 [7 7] ... 8 1 2 */
    int32_t h[] = { 1, 2, 3, 4, 0, 9, 1, 2, 5, 6, 0, 7, 8, 1, 2, 7, 7, 0, 8, 1, 2 };
    uint32_t n = sizeof(h) / sizeof(h[0]);
    /* "8 1 2" matches three tokens at 12..14 (candidate 7 7); "x 1 2" two at
     * 6..7 (5 6, the later) and 0..1 (3 4). */
    assert_int_equal(dec_lookup(h, n, 2, 2, c), 2);
    assert_true(c[0] == h + 15 && c[1] == h + 8);
    assert_int_equal(dec_lookup(h, n, 2, 1, c), 1);
    assert_true(c[0] == h + 15);
    const int32_t *c4[4];
    assert_int_equal(dec_lookup(h, n, 2, 9, c4), 3); /* at most 4 asked, 3 there */
    assert_true(c4[0] == h + 15 && c4[1] == h + 8 && c4[2] == h + 2);
    /* The same continuation twice counts once. */
    int32_t d[] = { 5, 1, 2, 3, 4, 6, 1, 2, 3, 4, 7, 1, 2, 8, 9, 0, 1, 2 };
    assert_int_equal(dec_lookup(d, sizeof(d) / sizeof(d[0]), 2, 2, c), 2);
    assert_true(c[0] == d + 13 && c[1] == d + 8);
    /* A candidate must lie wholly in the text: at len 4 only 1 2 3 4 6 /
     * 1 2 3 4 7 / 1 2 8 9 0 fit, latest first. */
    assert_int_equal(dec_lookup(d, sizeof(d) / sizeof(d[0]), 4, 2, c), 2);
    assert_true(c[0] == d + 13 && c[1] == d + 8);
    /* One token of context is the pool's job: no candidates. */
    int32_t e[] = { 1, 5, 6, 7, 3, 1 };
    assert_int_equal(dec_lookup(e, 6, 2, 2, c), 0);
    assert_int_equal(dec_lookup(e, 2, 2, 2, c), 0);
    assert_int_equal(dec_lookup(h, n, 2, 0, c), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cap_and_lru),
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_arena_eviction),
        cmocka_unit_test(test_add_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
