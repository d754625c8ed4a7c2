/* decoding/lookahead.c: lookahead is exact. Greedy lookahead equals plain
 * greedy token for token over prompts, languages, (N, W, G) and every
 * feature switch; sampling under lookahead equals plain sampling for the
 * same seed and follows the model's distribution; the reference mode never
 * yields more than N-1 tokens a step, the bonus token N; stats add up;
 * the adaptive rule falls back when wide steps cost too much. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "toy.h"

static const uint32_t configs[][3] = { { 5, 15, 15 }, { 5, 7, 7 }, { 7, 10, 10 }, { 3, 4, 4 } };

static struct dec_session *session(struct toy *t)
{
    struct dec_caps caps = dec_caps_default();
    struct dec_session *s = NULL;
    assert_int_equal(dec_session_new(&t->model, &caps, &s), 0);
    return s;
}

static void set_nwg(struct dec_params *p, const uint32_t *c)
{
    p->n = c[0];
    p->w = c[1];
    p->g = c[2];
}

static void check_stats(const struct dec_result *res, uint32_t n)
{
    const struct dec_stats *st = &res->stats;
    uint32_t steps = 0, tokens = 0;
    for (uint32_t k = 0; k < DEC_HIST_MAX; k++) {
        steps += st->hist[k];
        tokens += k * st->hist[k];
        if (k > n)
            assert_int_equal(st->hist[k], 0);
    }
    assert_int_equal(st->hist[0], 0);
    assert_int_equal(steps, st->steps);
    assert_int_equal(tokens + 1, st->tokens); /* the prefill's token */
    assert_int_equal(st->steps, st->lookahead_steps + st->plain_steps);
    assert_true(st->hit_steps <= st->verify_steps);
    for (uint32_t d = 2; d < n; d++)
        assert_true(st->accepted_depth[d] <= st->accepted_depth[d - 1]);
    assert_int_equal(st->accepted_depth[1], st->hit_steps);
}

/* 4 configs x 8 switch combinations x 2 languages x 6 prompts, 160 tokens. */
static void test_greedy_equals_plain(void **state)
{
    static struct toy_sink sink;
    int32_t prompt[64], want[160];
    struct dec_result res;
    uint32_t runs = 0;
    for (uint64_t salt = 1; salt <= 2; salt++) {
        struct toy_cfg cfg = toy_cfg_default();
        cfg.salt = salt;
        cfg.n_vocab = salt == 1 ? 64 : 300;
        struct toy *t = toy_new(&cfg);
        struct dec_session *s = session(t);
        for (uint32_t pi = 0; pi < 6; pi++) {
            uint32_t np = 2 + pi * 12;
            toy_prompt(t, salt * 100 + pi, np, prompt);
            toy_greedy(t, prompt, np, 160, want);
            for (uint32_t c = 0; c < 4; c++) {
                for (uint32_t sw = 0; sw < 8; sw++) {
                    struct dec_params p = dec_params_default();
                    set_nwg(&p, configs[c]);
                    p.max_tokens = 160;
                    p.seed = pi;
                    p.bonus = sw & 1;
                    p.seed_pool = sw & 2;
                    p.adaptive = sw & 4;
                    assert_int_equal(toy_run(t, s, prompt, np, &p, false, &sink, &res), 0);
                    assert_int_equal(res.finish, DEC_FINISH_LENGTH);
                    assert_int_equal(sink.n, 160);
                    assert_memory_equal(sink.tok, want, sizeof(want));
                    assert_int_equal(t->violations, 0);
                    check_stats(&res, p.n);
                    runs++;
                }
            }
        }
        dec_session_free(s);
        toy_free(t);
    }
    assert_int_equal(runs, 384);
}

/* Greedy with a repetition penalty needs logits on every verified row. */
static void test_greedy_penalty_equals_plain(void **state)
{
    static struct toy_sink a, b;
    struct toy_cfg cfg = toy_cfg_default();
    struct toy *t = toy_new(&cfg);
    struct dec_session *s = session(t);
    struct dec_result res;
    int32_t prompt[40];
    for (uint64_t seed = 0; seed < 6; seed++) {
        struct dec_params p = dec_params_default();
        p.repeat_penalty = 1.3f;
        p.repeat_last_n = 8;
        p.max_tokens = 150;
        toy_prompt(t, seed, 40, prompt);
        p.lookahead = false;
        assert_int_equal(toy_run(t, s, prompt, 40, &p, false, &a, &res), 0);
        p.lookahead = true;
        assert_int_equal(toy_run(t, s, prompt, 40, &p, false, &b, &res), 0);
        assert_int_equal(a.n, b.n);
        assert_memory_equal(a.tok, b.tok, sizeof(int32_t) * a.n);
    }
    assert_int_equal(t->violations, 0);
    dec_session_free(s);
    toy_free(t);
}

/* Tokens a step: reference mode at most N-1, with the bonus up to N (and
 * reached on repetitive text); print the figures for the record. */
static void test_reference_mode_and_bonus(void **state)
{
    static struct toy_sink sink;
    struct toy_cfg cfg = toy_cfg_default();
    struct toy *t = toy_new(&cfg);
    struct dec_session *s = session(t);
    struct dec_result res;
    int32_t prompt[64];
    for (uint32_t c = 0; c < 4; c++) {
        double tpp[2] = { 0, 0 };
        for (int mode = 0; mode < 2; mode++) {
            uint32_t reached_top = 0;
            for (uint64_t seed = 0; seed < 8; seed++) {
                struct dec_params p = dec_params_default();
                set_nwg(&p, configs[c]);
                p.max_tokens = 256;
                p.adaptive = false;
                p.bonus = mode;
                p.seed_pool = mode;
                p.seed = seed;
                toy_prompt(t, 40 + seed, 64, prompt);
                assert_int_equal(toy_run(t, s, prompt, 64, &p, false, &sink, &res), 0);
                uint32_t top = mode ? p.n : p.n - 1;
                for (uint32_t k = top + 1; k < DEC_HIST_MAX; k++)
                    assert_int_equal(res.stats.hist[k], 0);
                reached_top += res.stats.hist[top];
                assert_true(sink.max_batch <= top);
                tpp[mode] += res.stats.tokens_per_pass / 8;
            }
            assert_true(reached_top > 0);
        }
        print_message("(N,W,G)=(%u,%u,%u) tokens per pass: reference %.2f, bonus+seeding %.2f\n",
                      configs[c][0], configs[c][1], configs[c][2], tpp[0], tpp[1]);
        assert_true(tpp[0] > 1.1);
        assert_true(tpp[1] > tpp[0]);
    }
    assert_int_equal(t->violations, 0);
    dec_session_free(s);
    toy_free(t);
}

static void test_stats(void **state)
{
    static struct toy_sink sink;
    struct toy_cfg cfg = toy_cfg_default();
    struct toy *t = toy_new(&cfg);
    struct dec_session *s = session(t);
    struct dec_result res;
    struct dec_params p = dec_params_default();
    int32_t prompt[64];
    toy_prompt(t, 11, 64, prompt);
    p.max_tokens = 300;
    p.adaptive = false;
    uint32_t steps_before = t->steps, rows_before = t->rows_total;
    assert_int_equal(toy_run(t, s, prompt, 64, &p, false, &sink, &res), 0);
    const struct dec_stats *st = &res.stats;
    check_stats(&res, p.n);
    assert_int_equal(st->steps, t->steps - steps_before);
    /* Every step here is a lookahead step: the rows the model was sent. */
    assert_int_equal(st->lookahead_rows, t->rows_total - rows_before);
    assert_true(st->lookahead_rows > 2 * (uint64_t)st->steps);
    assert_int_equal(st->tokens, 300);
    assert_int_equal(st->prefill_tokens, 64);
    assert_int_equal(st->plain_steps, 0);
    assert_true(st->tokens_per_pass > 1.5);
    assert_true(fabs(st->tokens_per_pass - 300.0 / (st->steps + 1)) < 1e-9);
    assert_true(st->hit_rate > 0 && st->hit_rate <= 1);
    assert_true(st->pool_size > 0);
    assert_true(st->step_ms_total >= 0 && st->prefill_ms >= 0);
    print_message("default (5,15,15): %u tokens in %u steps, %.2f tokens/pass, hit rate %.2f, "
                  "pool %u\n",
                  st->tokens, st->steps, st->tokens_per_pass, st->hit_rate, st->pool_size);
    dec_session_free(s);
    toy_free(t);
}

/* Rows cost 1 ms each on the toy's clock: a 120-row step costs 121 plain
 * steps, so the adaptive rule must fall back to plain steps; output stays
 * exact. Free rows: no fallback. */
static void test_adaptive(void **state)
{
    static struct toy_sink sink;
    struct toy_cfg cfg = toy_cfg_default();
    struct toy *t = toy_new(&cfg);
    struct dec_session *s = session(t);
    struct dec_result res;
    struct dec_params p = dec_params_default();
    int32_t prompt[32], want[400];
    toy_prompt(t, 21, 32, prompt);
    toy_greedy(t, prompt, 32, 400, want);
    p.max_tokens = 400;
    dec_session_set_clock(s, toy_clock, t);
    t->row_ns = 1000000;
    assert_int_equal(toy_run(t, s, prompt, 32, &p, false, &sink, &res), 0);
    assert_memory_equal(sink.tok, want, sizeof(want));
    assert_true(res.stats.fallbacks > 0);
    assert_true(res.stats.plain_steps > res.stats.lookahead_steps);
    uint32_t plain_costly = res.stats.plain_steps;
    t->row_ns = 0;
    assert_int_equal(toy_run(t, s, prompt, 32, &p, false, &sink, &res), 0);
    assert_memory_equal(sink.tok, want, sizeof(want));
    assert_int_equal(res.stats.fallbacks, 0);
    assert_true(res.stats.plain_steps <= 1); /* the one probe */
    assert_true(res.stats.plain_steps < plain_costly);
    dec_session_set_clock(s, NULL, NULL);
    assert_int_equal(t->violations, 0);
    dec_session_free(s);
    toy_free(t);
}

/* Sampling with lookahead is token-identical to plain sampling per seed. */
static void test_sampling_equals_plain(void **state)
{
    static struct toy_sink a, b;
    struct toy_cfg cfg = toy_cfg_default();
    cfg.sharp = 9.0f; /* peaked enough for candidates to match often */
    struct toy *t = toy_new(&cfg);
    struct dec_session *s = session(t);
    struct dec_result res;
    int32_t prompt[48];
    uint32_t hits = 0;
    for (uint64_t seed = 0; seed < 24; seed++) {
        struct dec_params p = dec_params_default();
        p.temperature = seed % 3 == 0 ? 1.0f : 0.7f;
        p.top_k = seed % 2 ? 0 : 10;
        p.top_p = seed % 4 == 1 ? 0.9f : 1.0f;
        p.min_p = seed % 5 == 2 ? 0.05f : 0.0f;
        p.repeat_penalty = seed % 6 == 3 ? 1.1f : 1.0f;
        p.seed = seed;
        p.max_tokens = 200;
        set_nwg(&p, configs[seed % 4]);
        p.bonus = seed % 7 != 0;
        toy_prompt(t, seed, 48, prompt);
        p.lookahead = false;
        assert_int_equal(toy_run(t, s, prompt, 48, &p, false, &a, &res), 0);
        p.lookahead = true;
        assert_int_equal(toy_run(t, s, prompt, 48, &p, false, &b, &res), 0);
        assert_int_equal(a.n, b.n);
        assert_memory_equal(a.tok, b.tok, sizeof(int32_t) * a.n);
        hits += res.stats.hit_steps;
        check_stats(&res, p.n);
    }
    print_message("sampling: %u steps accepted sampled candidate tokens\n", hits);
    assert_true(hits > 50); /* verification really accepted sampled tokens */
    assert_int_equal(t->violations, 0);
    dec_session_free(s);
    toy_free(t);
}

/* A model that samples on its side (as the GPU does) gives the tokens the
 * host gets from the same logits, plain and lookahead: DRAW rows for
 * draws without top-k (with or without the penalty, top-p, min-p), TOPK
 * rows for top-k (with top-p, min-p, the penalty) and for greedy with the
 * penalty. */
static void test_model_draws_equal_host_draws(void **state)
{
    static struct toy_sink a, b;
    struct toy_cfg cfg = toy_cfg_default();
    cfg.sharp = 9.0f;
    struct toy *host = toy_new(&cfg);
    cfg.draws = true;
    struct toy *model = toy_new(&cfg);
    struct dec_session *sh = session(host), *sm = session(model);
    struct dec_result res;
    int32_t prompt[48];
    uint32_t hits = 0;
    for (uint64_t seed = 0; seed < 48; seed++) {
        struct dec_params p = dec_params_default();
        p.temperature = seed % 3 == 0 ? 1.0f : seed % 3 == 1 ? 0.7f : 0.5f;
        p.min_p = seed % 4 == 2 ? 0.05f : 0.0f;
        unsigned kind = seed % 6; /* 0, 1, 5 draws (5 with top-p); 2, 3, 4 top candidates */
        p.repeat_penalty = kind == 1 || kind == 3 || kind == 4 ? 1.3f : 1.0f;
        p.repeat_last_n = seed % 12 < 6 ? 64 : 5;
        p.top_k = kind == 2 || kind == 3 ? 4 + (uint32_t)seed % 13 : 0;
        p.top_p = kind == 3 ? 0.8f : kind == 5 ? (seed % 12 < 6 ? 0.8f : 0.95f) : 1.0f;
        p.min_p = kind == 5 && seed % 12 >= 6 ? 0.02f : p.min_p;
        if (kind == 4)
            p.temperature = 0; /* greedy with the penalty: the best of one candidate */
        p.seed = seed;
        p.max_tokens = 160;
        set_nwg(&p, configs[seed % 4]);
        p.lookahead = seed % 4 != 0;
        toy_prompt(host, seed, 48, prompt);
        uint32_t drawn = model->draws, tops = model->tops;
        assert_int_equal(toy_run(host, sh, prompt, 48, &p, false, &a, &res), 0);
        assert_int_equal(toy_run(model, sm, prompt, 48, &p, false, &b, &res), 0);
        assert_int_equal(a.n, b.n);
        assert_memory_equal(a.tok, b.tok, sizeof(int32_t) * a.n);
        /* Every token but the prefill's chosen from the model's answers. */
        bool draws = kind < 2 || kind == 5;
        assert_true(model->draws - drawn >= (draws ? b.n - 1 : 0));
        assert_true(model->tops - tops >= (draws ? 0 : b.n - 1));
        assert_true(draws ? model->tops == tops : model->draws == drawn);
        hits += res.stats.hit_steps;
    }
    print_message("model draws: %u draws, %u top-k rows, %u steps accepted candidate tokens\n",
                  model->draws, model->tops, hits);
    assert_int_equal(host->draws, 0);
    assert_int_equal(host->tops, 0);
    assert_true(hits > 50);
    assert_int_equal(host->violations, 0);
    assert_int_equal(model->violations, 0);
    dec_session_free(sh);
    dec_session_free(sm);
    toy_free(host);
    toy_free(model);
}

/* Exact joint distribution of the first three tokens under top-k 3,
 * temperature 1, computed from the toy's logits without lade_decoding. */
static uint32_t exact_first3(const struct toy *t, const int32_t *prompt, uint32_t n,
                             int32_t (*cell)[3], double *prob)
{
    int32_t ctx[256];
    float l[64];
    uint32_t cells = 0;
    memcpy(ctx, prompt, sizeof(int32_t) * n);
    int32_t top[3][3];
    double pr[3][3];
    /* Depth-first over the three choices at each depth. */
    for (uint32_t a = 0; a < 27; a++) {
        uint32_t pick[3] = { a / 9, (a / 3) % 3, a % 3 };
        double p = 1;
        for (uint32_t d = 0; d < 3; d++) {
            toy_logits(t, ctx + n + d - 3, 3, n + d - 1, l);
            /* top 3 by logit, ties to lower id, softmax over them */
            for (uint32_t k = 0; k < 3; k++) {
                int32_t best = -1;
                for (int32_t v = 0; v < (int32_t)t->cfg.n_vocab; v++) {
                    bool used = false;
                    for (uint32_t q = 0; q < k; q++)
                        used |= top[d][q] == v;
                    if (!used && (best < 0 || l[v] > l[best]))
                        best = v;
                }
                top[d][k] = best;
            }
            double z = 0;
            for (uint32_t k = 0; k < 3; k++)
                z += pr[d][k] = exp(l[top[d][k]] - l[top[d][0]]);
            p *= pr[d][pick[d]] / z;
            ctx[n + d] = top[d][pick[d]];
        }
        for (uint32_t d = 0; d < 3; d++)
            cell[cells][d] = ctx[n + d];
        prob[cells++] = p;
    }
    return cells;
}

/* Pearson chi-square of the first three tokens of 6000 lookahead runs
 * (seeds 1..6000) against the exact joint distribution: 27 cells, every
 * expected count >= 5 here, df 26, threshold 54.05 (the 0.001 quantile).
 * The prompt (140 tokens of the toy's own text) is long enough for the
 * pool to hold the likely continuations, so a good share of runs get
 * tokens 2 and 3 from one verified step.
 * Plain sampling over seeds 10001..16000 is held to the same test. Seeds
 * are fixed, so the outcome is deterministic. */
static void test_chi_square_first_three(void **state)
{
    static struct toy_sink sink;
    struct toy_cfg cfg = toy_cfg_default();
    cfg.sharp = 2.0f;
    struct toy *t = toy_new(&cfg);
    struct dec_session *s = session(t);
    struct dec_result res;
    int32_t prompt[140], cell[27][3];
    double prob[27];
    const uint32_t draws = 6000;
    toy_prompt(t, 5, 140, prompt);
    uint32_t cells = exact_first3(t, prompt, 140, cell, prob);
    for (int la = 1; la >= 0; la--) {
        uint32_t count[27] = { 0 }, hits = 0;
        for (uint32_t i = 0; i < draws; i++) {
            struct dec_params p = dec_params_default();
            p.temperature = 1.0f;
            p.top_k = 3;
            p.max_tokens = 3;
            p.lookahead = la;
            p.n = 3;
            p.w = 4;
            p.g = 4;
            p.seed = (la ? 1 : 10001) + i;
            assert_int_equal(toy_run(t, s, prompt, 140, &p, false, &sink, &res), 0);
            assert_int_equal(sink.n, 3);
            uint32_t c = 0;
            while (c < cells && memcmp(cell[c], sink.tok, sizeof(cell[c])))
                c++;
            assert_true(c < cells);
            count[c]++;
            hits += res.stats.hit_steps;
        }
        double chi = 0;
        for (uint32_t c = 0; c < cells; c++) {
            double e = draws * prob[c];
            assert_true(e >= 5);
            chi += (count[c] - e) * (count[c] - e) / e;
        }
        print_message("%s sampling: chi-square %.1f over %u cells (threshold 54.05), "
                      "%u steps accepted a candidate\n",
                      la ? "lookahead" : "plain", chi, cells, hits);
        assert_true(la ? hits > draws / 10 : hits == 0);
        assert_true(chi < 54.05);
    }
    dec_session_free(s);
    toy_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy_equals_plain),
        cmocka_unit_test(test_greedy_penalty_equals_plain),
        cmocka_unit_test(test_reference_mode_and_bonus),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_adaptive),
        cmocka_unit_test(test_sampling_equals_plain),
        cmocka_unit_test(test_model_draws_equal_host_draws),
        cmocka_unit_test(test_chi_square_first_three),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
