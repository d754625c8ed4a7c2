/* decoding/params.c: the rows a lookahead step takes and the caps fitted to
 * a model (issue #20: the default caps (8, 32, 32) were advertised on a
 * model of 256 rows, where (8, 32, 5) needs 259); a session sized far above
 * the model's rows runs every (N, W, G) within the fitted caps, exactly. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "toy.h"

static void test_rows(void **state)
{
    assert_int_equal(dec_lookahead_rows(8, 32, 5), 259); /* the figure */
    assert_int_equal(dec_lookahead_rows(5, 15, 15), 120);
    assert_int_equal(dec_lookahead_rows(3, 1, 1), 4);
    /* monotone in each parameter, which makes the corner the worst case */
    for (uint32_t n = 3; n < 16; n++)
        for (uint32_t w = 1; w < 40; w++)
            for (uint32_t g = 1; g < 40; g++) {
                uint32_t r = dec_lookahead_rows(n, w, g);
                assert_true(dec_lookahead_rows(n + 1, w, g) > r);
                assert_true(dec_lookahead_rows(n, w + 1, g) > r);
                assert_true(dec_lookahead_rows(n, w, g + 1) > r);
            }
}

static void test_fit(void **state)
{
    struct dec_caps c = dec_caps_default();

    assert_int_equal(dec_caps_fit(&c, 256), 0);
    assert_int_equal(c.max_n, 8);
    assert_int_equal(c.max_w, 18);
    assert_int_equal(c.max_g, 18);
    assert_true(dec_lookahead_rows(8, 18, 18) <= 256);
    assert_true(dec_lookahead_rows(8, 19, 18) > 256);
    assert_true(dec_lookahead_rows(8, 18, 19) > 256);
    /* what fits stays */
    c = (struct dec_caps){ .max_n = 5, .max_w = 15, .max_g = 15 };
    assert_int_equal(dec_caps_fit(&c, 120), 0);
    assert_int_equal(c.max_w, 15);
    assert_int_equal(c.max_g, 15);
    /* w and g go first, then n */
    c = (struct dec_caps){ .max_n = 16, .max_w = 128, .max_g = 128 };
    assert_int_equal(dec_caps_fit(&c, 20), 0);
    assert_int_equal(c.max_w, 1);
    assert_int_equal(c.max_g, 1);
    assert_true(dec_lookahead_rows(c.max_n, 1, 1) <= 20);
    assert_true(dec_lookahead_rows(c.max_n + 1, 1, 1) > 20);
    /* an N of 2 counts as 3, and nothing fits 3 rows */
    c = (struct dec_caps){ .max_n = 2, .max_w = 4, .max_g = 4 };
    assert_int_equal(dec_caps_fit(&c, 3), -ERANGE);
    assert_int_equal(c.max_n, 2);
    assert_int_equal(c.max_w, 1);
    assert_int_equal(c.max_g, 1);
}

/* The daemon's arrangement: a session sized for every N, W, G the
 * configuration allows (far above the model's 40 rows), requests checked
 * against the caps fitted to 40 rows. The corner runs and is exact; one
 * past it is refused with the reason. */
static void test_fitted_corner_runs(void **state)
{
    struct toy_cfg cfg = toy_cfg_default();
    cfg.max_rows = 40;
    struct toy *t = toy_new(&cfg);
    struct dec_caps hard = { .max_n = 16,
                             .max_w = 128,
                             .max_g = 128,
                             .max_tokens = 4096,
                             .max_stop = 8,
                             .max_stop_len = 64 };
    struct dec_caps fit = dec_caps_default();
    struct dec_session *s = NULL;
    struct toy_sink sink = { 0 };
    struct dec_result res;
    struct dec_params p = dec_params_default();
    int32_t prompt[24], want[64];

    assert_int_equal(dec_session_new(&t->model, &hard, &s), 0);
    assert_int_equal(dec_caps_fit(&fit, cfg.max_rows), 0);
    toy_prompt(t, 7, 24, prompt);
    toy_greedy(t, prompt, 24, 64, want);
    p.max_tokens = 64;
    p.n = fit.max_n;
    p.w = fit.max_w;
    p.g = fit.max_g;
    assert_int_equal(dec_params_validate(&p, &fit, NULL, 0), 0);
    assert_int_equal(toy_run(t, s, prompt, 24, &p, false, &sink, &res), 0);
    assert_int_equal(res.n_tokens, 64);
    assert_memory_equal(sink.tok, want, sizeof(want));
    assert_true(res.stats.lookahead_steps > 0);
    p.g++;
    assert_int_equal(toy_run(t, s, prompt, 24, &p, false, &sink, &res), -EINVAL);
    assert_non_null(strstr(res.error, "rows a step, the model takes 40"));
    assert_int_equal(t->violations, 0);
    dec_session_free(s);
    toy_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows),
        cmocka_unit_test(test_fit),
        cmocka_unit_test(test_fitted_corner_runs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
