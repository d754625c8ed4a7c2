/* decoding/generate.c: the generation loop with plain and lookahead steps:
 * exact trimming at max_tokens, EOS, stop strings and n_ctx; cancellation;
 * errors; validation; sampling reproducibility. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "toy.h"

static struct dec_session *session(struct toy *t)
{
    struct dec_caps caps = dec_caps_default();
    struct dec_session *s = NULL;
    assert_int_equal(dec_session_new(&t->model, &caps, &s), 0);
    return s;
}

static void test_plain_greedy(void **state)
{
    struct toy_cfg cfg = toy_cfg_default();
    struct toy *t = toy_new(&cfg);
    struct dec_session *s = session(t);
    struct toy_sink sink = { 0 };
    struct dec_result res;
    struct dec_params p = dec_params_default();
    int32_t prompt[32], want[100];
    p.lookahead = false;
    p.max_tokens = 100;
    for (uint64_t seed = 0; seed < 10; seed++) {
        toy_prompt(t, seed, 1 + seed * 3, prompt);
        assert_int_equal(toy_run(t, s, prompt, 1 + seed * 3, &p, false, &sink, &res), 0);
        toy_greedy(t, prompt, 1 + seed * 3, 100, want);
        assert_int_equal(res.finish, DEC_FINISH_LENGTH);
        assert_int_equal(res.n_tokens, 100);
        assert_int_equal(sink.n, 100);
        assert_memory_equal(sink.tok, want, sizeof(want));
        assert_int_equal(res.stats.steps, 99);
        assert_int_equal(res.stats.plain_steps, 99);
        assert_int_equal(t->n_past, 1 + seed * 3 + 99);
    }
    assert_int_equal(t->violations, 0);
    dec_session_free(s);
    dec_session_free(NULL);
    toy_free(t);
}

/* max_tokens cuts a multi-token step exactly, for every length. */
static void test_trim_max_tokens(void **state)
{
    struct toy_cfg cfg = toy_cfg_default();
    struct toy *t = toy_new(&cfg);
    struct dec_session *s = session(t);
    struct toy_sink sink = { 0 };
    struct dec_result res;
    struct dec_params p = dec_params_default();
    int32_t prompt[48], want[80];
    toy_prompt(t, 3, 48, prompt);
    toy_greedy(t, prompt, 48, 80, want);
    p.adaptive = false;
    for (uint32_t m = 1; m <= 80; m++) {
        p.max_tokens = m;
        assert_int_equal(toy_run(t, s, prompt, 48, &p, false, &sink, &res), 0);
        assert_int_equal(res.finish, DEC_FINISH_LENGTH);
        assert_int_equal(res.n_tokens, m);
        assert_int_equal(sink.n, m);
        assert_int_equal(res.stats.tokens, m);
        assert_memory_equal(sink.tok, want, sizeof(int32_t) * m);
    }
    assert_int_equal(t->violations, 0);
    dec_session_free(s);
    toy_free(t);
}

static void test_eos(void **state)
{
    struct toy_cfg cfg = toy_cfg_default();
    struct toy_sink sink = { 0 };
    struct dec_result res;
    struct dec_params p = dec_params_default();
    int32_t prompt[40], want[200];
    p.max_tokens = 200;
    for (uint32_t eos_pos = 45; eos_pos < 120; eos_pos += 7) {
        cfg.eos_pos = eos_pos;
        struct toy *t = toy_new(&cfg);
        struct dec_session *s = session(t);
        toy_prompt(t, eos_pos, 40, prompt);
        uint32_t n = toy_greedy(t, prompt, 40, 200, want);
        uint32_t at = 0;
        while (at < n && want[at] != cfg.eos)
            at++;
        assert_true(at < n);
        /* The toy's EOS as the model's eos, then as its only other
         * end-of-generation id (no eos at all). */
        for (int la = 0; la < 4; la++) {
            t->model.eos = la < 2 ? cfg.eos : -1;
            t->model.eog = la < 2 ? NULL : &cfg.eos;
            t->model.n_eog = la < 2 ? 0 : 1;
            p.lookahead = la & 1;
            p.stop_at_eos = true;
            assert_int_equal(toy_run(t, s, prompt, 40, &p, true, &sink, &res), 0);
            assert_int_equal(res.finish, DEC_FINISH_EOS);
            assert_int_equal(sink.n, at);
            assert_memory_equal(sink.tok, want, sizeof(int32_t) * at);
            assert_int_equal(res.stats.tokens, at + 1);
            p.stop_at_eos = false;
            p.max_tokens = at + 3;
            assert_int_equal(toy_run(t, s, prompt, 40, &p, true, &sink, &res), 0);
            assert_int_equal(res.finish, DEC_FINISH_LENGTH);
            assert_memory_equal(sink.tok, want, sizeof(int32_t) * (at + 3));
            p.max_tokens = 200;
        }
        assert_int_equal(t->violations, 0);
        dec_session_free(s);
        toy_free(t);
    }
}

/* Expected result of a stop-string run, from the greedy text. */
static void expect_stop(struct toy *t, const int32_t *want, uint32_t n, const char *const *stops,
                        uint32_t n_stop, uint32_t *ret_tokens, int32_t *ret_tok,
                        uint32_t *ret_bytes)
{
    char text[4096];
    uint32_t end[1024];
    size_t len = 0;
    for (uint32_t i = 0; i < n; i++) {
        size_t l;
        const char *pc = toy_piece(t, want[i], &l);
        memcpy(text + len, pc, l);
        len += l;
        end[i] = (uint32_t)len;
    }
    text[len] = 0;
    size_t at = SIZE_MAX;
    for (uint32_t k = 0; k < n_stop; k++) {
        const char *h = strstr(text, stops[k]);
        if (h && (size_t)(h - text) < at)
            at = (size_t)(h - text);
    }
    assert_true(at != SIZE_MAX);
    uint32_t i = 0;
    while (end[i] <= at)
        i++;
    uint32_t start = i ? end[i - 1] : 0;
    *ret_tokens = i;
    *ret_tok = start < at ? want[i] : -1;
    *ret_bytes = start < at ? (uint32_t)(at - start) : 0;
}

static void test_stop_strings(void **state)
{
    struct toy_cfg cfg = toy_cfg_default();
    struct toy *t = toy_new(&cfg);
    struct dec_session *s = session(t);
    struct toy_sink sink = { 0 };
    struct dec_result res;
    struct dec_params p = dec_params_default();
    int32_t prompt[24], want[300];
    char text[2048];
    uint32_t checked = 0, partial = 0;
    p.max_tokens = 300;
    for (uint64_t seed = 0; seed < 12; seed++) {
        toy_prompt(t, 100 + seed, 24, prompt);
        toy_greedy(t, prompt, 24, 300, want);
        size_t len = 0;
        for (uint32_t i = 0; i < 60; i++) {
            size_t l;
            const char *pc = toy_piece(t, want[i], &l);
            memcpy(text + len, pc, l);
            len += l;
        }
        /* Stop strings cut from the text at varying offsets and lengths,
         * so they begin mid-token and straddle token boundaries. */
        char s1[8] = { 0 }, s2[8] = { 0 };
        size_t o1 = 10 + seed * 3, l1 = 2 + seed % 5;
        memcpy(s1, text + o1, l1);
        memcpy(s2, text + o1 + 7, 3);
        const char *stops[] = { s1, s2, "zzzz" };
        p.stop = stops;
        p.n_stop = 3;
        uint32_t exp_n, exp_bytes;
        int32_t exp_tok;
        expect_stop(t, want, 300, stops, 3, &exp_n, &exp_tok, &exp_bytes);
        for (int la = 0; la < 2; la++) {
            p.lookahead = la;
            assert_int_equal(toy_run(t, s, prompt, 24, &p, true, &sink, &res), 0);
            assert_int_equal(res.finish, DEC_FINISH_STOP);
            assert_int_equal(res.n_tokens, exp_n);
            assert_int_equal(sink.n, exp_n);
            assert_memory_equal(sink.tok, want, sizeof(int32_t) * exp_n);
            assert_int_equal(res.stop_token, exp_tok);
            assert_int_equal(res.stop_token_bytes, exp_bytes);
            checked++;
            partial += exp_tok >= 0;
        }
    }
    assert_true(partial > 0 && partial < checked);
    /* Stop strings without text are refused. */
    static const char *const fixed[] = { "ab" };
    p.stop = fixed;
    p.n_stop = 1;
    assert_int_equal(toy_run(t, s, prompt, 24, &p, false, &sink, &res), -EINVAL);
    assert_true(strstr(res.error, "text") != NULL);
    assert_int_equal(t->violations, 0);
    dec_session_free(s);
    toy_free(t);
}

static void test_cancel(void **state)
{
    struct toy_cfg cfg = toy_cfg_default();
    struct toy *t = toy_new(&cfg);
    struct dec_session *s = session(t);
    struct toy_sink sink = { .cancel_after = 3 };
    struct dec_result res;
    struct dec_params p = dec_params_default();
    int32_t prompt[16];
    toy_prompt(t, 5, 16, prompt);
    assert_int_equal(toy_run(t, s, prompt, 16, &p, false, &sink, &res), 0);
    assert_int_equal(res.finish, DEC_FINISH_CANCELLED);
    assert_int_equal(sink.calls, 3);
    assert_int_equal(res.n_tokens, sink.n);
    assert_string_equal(dec_finish_name(res.finish), "cancelled");
    dec_session_free(s);
    toy_free(t);
}

static void test_context(void **state)
{
    struct toy_cfg cfg = toy_cfg_default();
    cfg.n_ctx = 64;
    struct toy *t = toy_new(&cfg);
    struct dec_session *s = session(t);
    struct toy_sink sink = { 0 };
    struct dec_result res;
    struct dec_params p = dec_params_default();
    int32_t prompt[80], want[80];
    p.max_tokens = 500;
    for (uint32_t n_prompt = 20; n_prompt <= 64; n_prompt += 11) {
        toy_prompt(t, n_prompt, n_prompt, prompt);
        toy_greedy(t, prompt, n_prompt, 64 - n_prompt, want);
        for (int la = 0; la < 2; la++) {
            p.lookahead = la;
            assert_int_equal(toy_run(t, s, prompt, n_prompt, &p, false, &sink, &res), 0);
            assert_int_equal(res.finish, DEC_FINISH_CONTEXT);
            assert_int_equal(sink.n, 64 - n_prompt);
            assert_memory_equal(sink.tok, want, sizeof(int32_t) * (64 - n_prompt));
        }
    }
    toy_prompt(t, 1, 65, prompt);
    assert_int_equal(toy_run(t, s, prompt, 65, &p, false, &sink, &res), -E2BIG);
    assert_int_equal(res.finish, DEC_FINISH_CONTEXT);
    assert_int_equal(t->violations, 0);
    dec_session_free(s);
    toy_free(t);
}

static void test_model_error(void **state)
{
    struct toy_cfg cfg = toy_cfg_default();
    cfg.fail_step = 4;
    struct toy *t = toy_new(&cfg);
    struct dec_session *s = session(t);
    struct toy_sink sink = { 0 };
    struct dec_result res;
    struct dec_params p = dec_params_default();
    int32_t prompt[16];
    toy_prompt(t, 5, 16, prompt);
    assert_int_equal(toy_run(t, s, prompt, 16, &p, false, &sink, &res), -EIO);
    assert_int_equal(res.finish, DEC_FINISH_ERROR);
    assert_int_equal(res.err, -EIO);
    assert_true(strstr(res.error, "step") != NULL);
    dec_session_free(s);
    toy_free(t);
}

static void test_validation(void **state)
{
    struct toy_cfg cfg = toy_cfg_default();
    cfg.max_rows = 40;
    struct toy *t = toy_new(&cfg);
    struct dec_session *s = session(t);
    struct toy_sink sink = { 0 };
    struct dec_result res;
    struct dec_caps caps = dec_caps_default();
    struct dec_params p = dec_params_default();
    char err[160];
    int32_t prompt[8] = { 2, 3, 4, 5, 6, 7, 8, 9 };
    p.w = 33;
    assert_int_equal(dec_params_validate(&p, &caps, err, sizeof(err)), -EINVAL);
    assert_true(strstr(err, "max_w") != NULL);
    p = dec_params_default();
    p.n = 2;
    assert_int_equal(dec_params_validate(&p, &caps, err, sizeof(err)), -EINVAL);
    p = dec_params_default();
    p.max_tokens = 0;
    assert_int_equal(dec_params_validate(&p, &caps, err, sizeof(err)), -EINVAL);
    p = dec_params_default();
    p.top_p = 0;
    assert_int_equal(dec_params_validate(&p, &caps, NULL, 0), -EINVAL);
    p = dec_params_default();
    const char *empty[] = { "" };
    p.stop = empty;
    p.n_stop = 1;
    assert_int_equal(dec_params_validate(&p, &caps, err, sizeof(err)), -EINVAL);
    assert_true(strstr(err, "empty") != NULL);
    /* (5, 15, 15) needs 120 rows; the model takes 40. */
    p = dec_params_default();
    assert_int_equal(toy_run(t, s, prompt, 8, &p, false, &sink, &res), -EINVAL);
    assert_true(strstr(res.error, "rows") != NULL);
    p.n = 3;
    p.w = 4;
    p.g = 4;
    assert_int_equal(toy_run(t, s, prompt, 8, &p, false, &sink, &res), 0);
    prompt[3] = 64;
    assert_int_equal(toy_run(t, s, prompt, 8, &p, false, &sink, &res), -EINVAL);
    assert_int_equal(toy_run(t, s, prompt, 0, &p, false, &sink, &res), -EINVAL);
    struct dec_session *bad = NULL;
    caps.max_n = 1;
    assert_int_equal(dec_session_new(&t->model, &caps, &bad), -EINVAL);
    assert_null(bad);
    dec_session_free(s);
    toy_free(t);
}

/* Sampling is reproducible per seed, plain and lookahead alike. */
static void test_sampling_reproducible(void **state)
{
    struct toy_cfg cfg = toy_cfg_default();
    struct toy *t = toy_new(&cfg);
    struct dec_session *s = session(t);
    static struct toy_sink a, b;
    struct dec_result res;
    struct dec_params p = dec_params_default();
    int32_t prompt[32];
    toy_prompt(t, 9, 32, prompt);
    p.temperature = 0.9f;
    p.max_tokens = 120;
    for (int la = 0; la < 2; la++) {
        p.lookahead = la;
        p.seed = 77;
        assert_int_equal(toy_run(t, s, prompt, 32, &p, false, &a, &res), 0);
        assert_int_equal(toy_run(t, s, prompt, 32, &p, false, &b, &res), 0);
        assert_int_equal(a.n, b.n);
        assert_memory_equal(a.tok, b.tok, sizeof(int32_t) * a.n);
        p.seed = 78;
        assert_int_equal(toy_run(t, s, prompt, 32, &p, false, &b, &res), 0);
        assert_true(memcmp(a.tok, b.tok, sizeof(int32_t) * a.n) != 0);
    }
    dec_session_free(s);
    toy_free(t);
}

static void test_defaults_for_cost(void **state)
{
    struct dec_params p = dec_params_default();
    assert_int_equal(p.n, 5);
    assert_int_equal(p.w, 15);
    assert_int_equal(p.g, 15);
    /* Dearer rows, fewer of them: (N - 1)(W + G) + 1 at most. */
    dec_lookahead_default_for_cost(0.0, &p);
    assert_int_equal(p.w, 15);
    uint32_t rows_free = (p.n - 1) * (p.w + p.g) + 1;
    dec_lookahead_default_for_cost(0.03, &p);
    uint32_t rows_mid = (p.n - 1) * (p.w + p.g) + 1;
    assert_true(rows_mid < rows_free);
    dec_lookahead_default_for_cost(1.0, &p);
    assert_true((p.n - 1) * (p.w + p.g) + 1 <= rows_mid && p.n >= 3);
    for (int f = DEC_FINISH_NONE; f <= DEC_FINISH_ERROR; f++)
        assert_non_null(dec_finish_name(f));
    assert_string_equal(dec_finish_name(DEC_FINISH_STOP), "stop");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_greedy),
        cmocka_unit_test(test_trim_max_tokens),
        cmocka_unit_test(test_eos),
        cmocka_unit_test(test_stop_strings),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_context),
        cmocka_unit_test(test_model_error),
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_sampling_reproducible),
        cmocka_unit_test(test_defaults_for_cost),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
