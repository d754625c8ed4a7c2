/* dec_measure_row_cost_clock on the toy model's virtual clock (1 ms a step
 * plus row_ns a row): the figure it gives, the model left rewound, and its
 * refusals; dec_lookahead_choose and its fallback. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "decoding/dec.h"
#include "toy.h"

static void test_cost_from_virtual_time(void **state)
{
    (void)state;
    struct toy_cfg cfg = toy_cfg_default();
    const uint64_t row_ns[] = { 0, 10000, 250000, 1000000 };
    for (size_t i = 0; i < sizeof(row_ns) / sizeof(row_ns[0]); i++) {
        struct toy *t = toy_new(&cfg);
        t->row_ns = row_ns[i];
        double cost = -1;
        assert_int_equal(dec_measure_row_cost_clock(&t->model, toy_clock, t, &cost), 0);
        /* one row: 1 ms + r; 33 rows: 1 ms + 33 r; per extra row over a
         * one-row step: r / (1 ms + r) */
        double want = (double)row_ns[i] / (1e6 + (double)row_ns[i]);
        if (fabs(cost - want) > 1e-9)
            fail_msg("row_ns %llu: cost %.9f, want %.9f", (unsigned long long)row_ns[i], cost,
                     want);
        assert_int_equal(t->n_past, 0); /* rewound */
        assert_int_equal(t->violations, 0);
        /* 3 untimed steps, then 5 pairs */
        assert_int_equal(t->steps, 13);
        toy_free(t);
    }
}

static void test_window_follows_cost(void **state)
{
    (void)state;
    struct dec_params p = dec_params_default();
    dec_lookahead_default_for_cost(0.0, &p);
    assert_int_equal(p.w, 15);
    dec_lookahead_default_for_cost(0.03, &p);
    assert_int_equal(p.n, 8);
    assert_int_equal(p.w, 1);
    assert_int_equal(p.g, 5);
    dec_lookahead_default_for_cost(0.5, &p);
    assert_int_equal(p.n, 3);
    assert_int_equal(p.w, 3);
}

static void test_refusals(void **state)
{
    (void)state;
    struct toy_cfg cfg = toy_cfg_default();
    cfg.max_rows = 32; /* the wide step has 33 rows */
    struct toy *t = toy_new(&cfg);
    double cost;
    assert_int_equal(dec_measure_row_cost_clock(&t->model, toy_clock, t, &cost), -EINVAL);
    toy_free(t);
    cfg = toy_cfg_default();
    cfg.n_ctx = 40;
    t = toy_new(&cfg);
    assert_int_equal(dec_measure_row_cost_clock(&t->model, toy_clock, t, &cost), -EINVAL);
    toy_free(t);
    cfg = toy_cfg_default();
    cfg.fail_step = 5; /* a failing step is reported, not measured */
    t = toy_new(&cfg);
    assert_int_equal(dec_measure_row_cost_clock(&t->model, toy_clock, t, &cost), -EIO);
    assert_int_equal(t->n_past, 0);
    toy_free(t);
}

/* The one way callers choose (N, W, G): the measured cost's table entry,
 * or (3, 3, 3) when the model is too small to measure. */
static void test_choose(void **state)
{
    (void)state;
    struct toy_cfg cfg = toy_cfg_default();
    struct toy *t = toy_new(&cfg);
    struct dec_params p = dec_params_default(), want = p;
    double cost = -1;
    assert_int_equal(dec_lookahead_choose(&t->model, &p, &cost), 0);
    assert_true(cost >= 0);
    dec_lookahead_default_for_cost(cost, &want);
    assert_int_equal(p.n, want.n);
    assert_int_equal(p.w, want.w);
    assert_int_equal(p.g, want.g);
    assert_int_equal(t->n_past, 0);
    toy_free(t);
    cfg.max_rows = 32;
    t = toy_new(&cfg);
    p = dec_params_default();
    assert_int_equal(dec_lookahead_choose(&t->model, &p, &cost), -EINVAL);
    assert_true(cost == -1);
    assert_int_equal(p.n, 3);
    assert_int_equal(p.w, 3);
    assert_int_equal(p.g, 3);
    assert_int_equal(dec_lookahead_choose(&t->model, &p, NULL), -EINVAL);
    toy_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cost_from_virtual_time),
        cmocka_unit_test(test_window_follows_cost),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_choose),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
