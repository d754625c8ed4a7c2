/* decoding/window.c: warm-up, the step layout (parents and so positions),
 * the Jacobi shift and the n-grams the window gives the pool. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "decoding/dec-internal.h"

static uint32_t depth_of(const struct dec_row *rows, uint32_t i)
{
    uint32_t d = 0;
    for (int32_t r = rows[i].parent; r >= 0; r = rows[r].parent)
        d++;
    return d;
}

/* Build, check the layout, and answer with argmax = 1000 + row. */
static uint32_t build_and_check(struct dec_window *win, struct dec_row *rows, int32_t *argmax)
{
    rows[0] = (struct dec_row){ 7, -1, DEC_WANT_ARGMAX, 0 };
    dec_window_build(win, rows, 1);
    uint32_t n = 1 + dec_window_rows(win), max_depth = 0;
    for (uint32_t l = 0; l <= win->fill; l++) {
        for (uint32_t j = 0; j < win->len[l]; j++) {
            uint32_t r = win->base[l] + j;
            assert_true(rows[r].parent < (int32_t)r);
            assert_int_equal(rows[r].token, win->lv[l][j]);
            /* Position of level l column j: level 0 at j+1, others at j+l. */
            assert_int_equal(depth_of(rows, r), l == 0 ? j + 1 : j + l);
            if (l >= 1) {
                /* Sees level 0 up to column j-1, then column j of levels 1..l. */
                int32_t p = rows[r].parent;
                for (uint32_t ll = l; ll > 1; ll--, p = rows[p].parent)
                    assert_int_equal(p, (int32_t)(win->base[ll - 1] + j));
                assert_int_equal(p, j == 0 ? 0 : (int32_t)(win->base[0] + j - 1));
            }
            if (depth_of(rows, r) > max_depth)
                max_depth = depth_of(rows, r);
        }
    }
    assert_int_equal(dec_window_depth(win), max_depth);
    for (uint32_t i = 0; i < n; i++)
        argmax[i] = rows[i].want ? 1000 + (int32_t)i : -1;
    return n;
}

static void test_warmup_and_full(void **state)
{
    const uint32_t N = 5, W = 4;
    struct dec_window win;
    struct dec_pool pool;
    struct dec_rng rng;
    struct dec_row rows[64];
    int32_t argmax[64];
    int32_t prompt[] = { 10, 11, 12, 13, 14, 15, 16, 17 };
    assert_int_equal(dec_window_init(&win, 8, 16), 0);
    assert_int_equal(dec_pool_init(&pool, 4000, 7, 1000), 0);
    dec_pool_reset(&pool, N - 1, 15);
    dec_rng_seed(&rng, 42);
    dec_window_start(&win, N, W, prompt, 8, &rng);
    assert_int_equal(win.len[0], W + N - 3);
    for (uint32_t j = 0; j < win.len[0]; j++)
        assert_true(win.lv[0][j] >= 10 && win.lv[0][j] <= 17);
    uint32_t max_rows = 0;
    for (uint32_t f = 0; f + 2 < N; f++) {
        assert_false(dec_window_is_full(&win));
        assert_int_equal(win.fill, f);
        uint32_t n = build_and_check(&win, rows, argmax);
        if (n > max_rows)
            max_rows = n;
        uint32_t newest = win.base[f];
        uint32_t skip = f ? 1 : 0;
        int32_t expect0 = 1000 + (int32_t)(newest + skip);
        for (uint32_t j = 0; j < win.len[f]; j++)
            assert_int_equal(rows[newest + j].want, j < skip ? DEC_WANT_NONE : DEC_WANT_ARGMAX);
        dec_window_update(&win, argmax, 7, &pool);
        assert_int_equal(win.lv[f + 1][0], expect0);
        assert_int_equal(pool.n_entries, 0); /* warm-up feeds no n-grams */
        for (uint32_t l = 1; l <= win.fill; l++)
            assert_int_equal(win.len[l], win.len[0] + 1);
    }
    assert_true(dec_window_is_full(&win));
    assert_int_equal(win.len[0], W - 1);
    for (uint32_t l = 1; l + 1 < N; l++)
        assert_int_equal(win.len[l], W);
    uint32_t n = build_and_check(&win, rows, argmax);
    assert_int_equal(n, (N - 1) * W);
    if (n > max_rows)
        max_rows = n;
    assert_int_equal(dec_window_rows_max(N, W), max_rows);
    assert_int_equal(dec_window_depth(&win), W + N - 3);

    struct dec_window old = win;
    int32_t keep[DEC_N_LIMIT][32];
    for (uint32_t l = 0; l + 1 < N; l++)
        memcpy(keep[l], win.lv[l], sizeof(int32_t) * win.len[l]);
    dec_window_update(&win, argmax, 7, &pool);
    /* The n-gram of column i: key (lst or level 0 column i-1), levels
     * 1..N-2 of column i, then the new token of column i. */
    for (uint32_t i = 0; i < W; i++) {
        int32_t key = i == 0 ? 7 : keep[0][i - 1];
        int32_t tail[DEC_N_LIMIT];
        for (uint32_t l = 1; l + 1 < N; l++)
            tail[l - 1] = keep[l][i];
        tail[N - 2] = 1000 + (int32_t)(old.base[N - 2] + i);
        bool found = false;
        for (int32_t e = dec_pool_first(&pool, key); e >= 0; e = dec_pool_next(&pool, e))
            found |= !memcmp(dec_pool_tokens(&pool, e), tail, sizeof(int32_t) * (N - 1));
        assert_true(found);
    }
    /* The shift: level 0 <- level 1 from column 1, level l <- level l+1, top <- new. */
    for (uint32_t j = 0; j + 1 < W; j++)
        assert_int_equal(win.lv[0][j], keep[1][j + 1]);
    for (uint32_t l = 1; l + 2 < N; l++)
        assert_memory_equal(win.lv[l], keep[l + 1], sizeof(int32_t) * W);
    for (uint32_t j = 0; j < W; j++)
        assert_int_equal(win.lv[N - 2][j], 1000 + (int32_t)(old.base[N - 2] + j));
    dec_pool_done(&pool);
    dec_window_done(&win);
    dec_window_done(NULL);
}

static void test_n3(void **state)
{
    struct dec_window win;
    struct dec_pool pool;
    struct dec_rng rng;
    struct dec_row rows[64];
    int32_t argmax[64], prompt[] = { 3, 4 };
    assert_int_equal(dec_window_init(&win, 3, 8), 0);
    assert_int_equal(dec_pool_init(&pool, 4000, 2, 100), 0);
    dec_pool_reset(&pool, 2, 4);
    dec_rng_seed(&rng, 1);
    dec_window_start(&win, 3, 1, prompt, 2, &rng);
    assert_int_equal(win.len[0], 1);
    build_and_check(&win, rows, argmax);
    dec_window_update(&win, argmax, 7, &pool);
    assert_true(dec_window_is_full(&win));
    assert_int_equal(win.len[0], 0);
    assert_int_equal(win.len[1], 1);
    assert_int_equal(build_and_check(&win, rows, argmax), 2);
    dec_window_update(&win, argmax, 7, &pool);
    assert_int_equal(pool.n_entries, 1);
    dec_pool_done(&pool);
    dec_window_done(&win);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_warmup_and_full),
        cmocka_unit_test(test_n3),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
