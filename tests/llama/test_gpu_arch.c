/* The architectures of issue #18 on the GPU, on lade-synth's random-weight
 * fixtures (tests/llama/CMakeLists.txt): for each architecture in each of
 * the 11 weight formats lade runs (44 models), logits against the CPU reference over a prompt and greedy steps
 * (test_gpu_model's tolerance), a row's logits bit for bit the same alone
 * and among 7 or 33 rows, and for f16 of each, greedy lookahead
 * equal to greedy token for token. llama-gqa runs the fused RoPE epilogue
 * (rope_freqs and linear scaling through its table) and, once, the
 * separate pass; NeoX, biases and head norms always take the pass. Two
 * more carry Qwen3's and Llama 3.1's real vocabularies and templates:
 * their special tokens in chat text become their ids. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "llama/llm.h"
#include "tools/tuning-env.h"
#include "vk/vkr.h"

#define ARCH_DIR LADE_BINARY_DIR "/tests/llama/arch/"
#define N_PROMPT 12
#define N_STEPS 6

static struct llm_model *load(const char *file, enum llm_switch fuse)
{
    char err[512];
    struct llm_model *m = NULL;
    struct llm_model_opts o = {
        .path = file, .device = getenv("LADE_DEVICE"), .n_ctx = 128, .max_rows = 64
    };
    if (lade_tuning_from_env(&o.tuning, err, sizeof(err)))
        fail_msg("%s", err);
    if (fuse)
        o.tuning.fuse = fuse;
    if (llm_model_load(&o, &m, err, sizeof(err)))
        fail_msg("loading %s: %s", file, err);
    return m;
}

static double max_diff(const float *a, const float *b, uint32_t n, double *scale)
{
    double d = 0;
    *scale = 0;
    for (uint32_t i = 0; i < n; i++) {
        *scale = fmax(*scale, fabs(b[i]));
        d = fmax(d, fabs(a[i] - b[i]));
    }
    return d;
}

/* Prefill and N_STEPS greedy steps on the GPU and the CPU reference, both
 * fed the GPU's tokens; every logits row within 2e-3 of its scale. */
static void against_reference(struct llm_model *m, const char *file, const int32_t *prompt)
{
    char err[256];
    struct llm_ref *ref;
    if (llm_ref_new(llm_model_gguf(m), 128, &ref, err, sizeof(err)))
        fail_msg("%s: %s", file, err);
    struct dec_model g, c;
    llm_model_dec(m, &g);
    llm_ref_dec_model(ref, &c);
    uint32_t V = g.n_vocab;
    float *lg = malloc((size_t)V * 4), *lc = malloc((size_t)V * 4);
    int32_t tg, tc;
    assert_int_equal(g.rewind(g.ctx, 0), 0);
    assert_int_equal(g.prefill(g.ctx, prompt, N_PROMPT, &tg, lg), 0);
    assert_int_equal(c.prefill(c.ctx, prompt, N_PROMPT, &tc, lc), 0);
    double worst = 0, scale;
    for (int k = 0;; k++) {
        double d = max_diff(lg, lc, V, &scale);
        if (d > 2e-3 * scale + 1e-5)
            fail_msg("%s step %d: max |gpu - cpu| logit = %.3g (scale %.3g)", file, k, d, scale);
        worst = fmax(worst, d / scale);
        if (k == N_STEPS)
            break;
        struct dec_row row = { tg, -1, DEC_WANT_LOGITS, 0 };
        struct dec_model *both[2] = { &g, &c };
        int32_t *next[2] = { &tg, &tc };
        float *logits[2] = { lg, lc };
        for (int s = 0; s < 2; s++) { /* one token, kept */
            uint32_t keep = 0;
            assert_int_equal(both[s]->step(both[s]->ctx, &row, 1, next[s], logits[s]), 0);
            assert_int_equal(both[s]->commit(both[s]->ctx, &keep, 1), 0);
        }
    }
    print_message("%s: %d steps, max |gpu - cpu| logit / scale = %.3g\n", file, N_STEPS + 1, worst);
    free(lg);
    free(lc);
    llm_ref_free(ref);
}

/* Row `at` (token 42 right after the prompt) among T rows of a tree: its
 * logits bit for bit those of the same row alone. */
static void batch_invariance(struct llm_model *m, const char *file, const int32_t *prompt)
{
    struct dec_model dm;
    llm_model_dec(m, &dm);
    uint32_t V = dm.n_vocab, seed = 5;
    float *alone = malloc((size_t)V * 4), *in = malloc((size_t)33 * V * 4);
    int32_t am[33];
    struct dec_row rows[33];
    const uint32_t Ts[3] = { 1, 7, 33 };
    for (int i = 0; i < 3; i++) {
        uint32_t T = Ts[i], at = T / 2;
        assert_int_equal(dm.rewind(dm.ctx, 0), 0);
        assert_int_equal(dm.prefill(dm.ctx, prompt, N_PROMPT, am, NULL), 0);
        for (uint32_t r = 0; r < T; r++) {
            seed = seed * 1103515245u + 12345u;
            int32_t parent = r ? (int32_t)((seed >> 8) % r) : -1;
            rows[r] = (struct dec_row){ (int32_t)((seed >> 16) % V), parent,
                                        r == at ? DEC_WANT_LOGITS : DEC_WANT_NONE, 0 };
        }
        rows[at].token = 42;
        rows[at].parent = -1;
        assert_int_equal(dm.step(dm.ctx, rows, T, am, in), 0);
        if (T == 1)
            memcpy(alone, in, (size_t)V * 4);
        else if (memcmp(alone, in, (size_t)V * 4) != 0)
            fail_msg("%s: row %u of a %u-row step: logits differ from the same row alone", file, at,
                     T);
    }
    free(alone);
    free(in);
}

struct collect {
    int32_t tok[64];
    uint32_t n;
};

static int emit(void *user, const int32_t *t, uint32_t n)
{
    struct collect *c = user;
    for (uint32_t i = 0; i < n && c->n < 64; i++)
        c->tok[c->n++] = t[i];
    return 0;
}

/* Greedy lookahead gives plain greedy's n tokens, at two window sizes. */
static void lookahead_exact(struct llm_model *m, const char *file, const int32_t *prompt,
                            uint32_t n)
{
    struct dec_model dm;
    llm_model_dec(m, &dm);
    struct dec_caps caps = dec_caps_default();
    struct dec_session *s;
    assert_int_equal(dec_session_new(&dm, &caps, &s), 0);
    static const uint32_t nwg[2][3] = { { 5, 7, 7 }, { 3, 4, 4 } };
    struct collect plain = { .n = 0 }, la;
    struct dec_result r;
    struct dec_params p = dec_params_default();
    p.max_tokens = n;
    p.lookahead = false;
    p.stop_at_eos = false;
    if (dec_generate(s, prompt, N_PROMPT, &p, NULL, emit, &plain, &r))
        fail_msg("%s: %s", file, r.error);
    double tpp = 0;
    for (int c = 0; c < 2; c++) {
        p = dec_params_default();
        p.max_tokens = n;
        p.stop_at_eos = false;
        p.adaptive = false;
        p.n = nwg[c][0], p.w = nwg[c][1], p.g = nwg[c][2];
        la.n = 0;
        if (dec_generate(s, prompt, N_PROMPT, &p, NULL, emit, &la, &r))
            fail_msg("%s: %s", file, r.error);
        if (la.n != plain.n || memcmp(la.tok, plain.tok, plain.n * sizeof(int32_t)) != 0)
            fail_msg("%s (N,W,G)=(%u,%u,%u): lookahead differs from greedy", file, p.n, p.w, p.g);
        tpp += r.stats.tokens_per_pass;
    }
    print_message("%s: greedy lookahead = greedy, %u tokens, %.2f tokens a pass\n", file, plain.n,
                  tpp / 2);
    dec_session_free(s);
}

/* A real vocabulary from the GGUF alone: chat text with its special
 * tokens becomes their ids (with the special flag; without it, plain
 * text), and the GGUF's own chat template came with it. */
static void special_tokens(struct llm_model *m, const char *name)
{
    static const struct {
        const char *model, *text;
        int32_t first, second_special;
    } want[] = {
        { "qwen3-vocab", "<|im_start|>user\nHello, world!<|im_end|>\n<|im_start|>assistant\n",
          151644, 151645 },
        { "llama31-vocab",
          "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>", 128000,
          128006 },
    };
    const struct llm_tok *tok = llm_model_tok(m);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        if (strncmp(name, want[i].model, strlen(want[i].model)))
            continue;
        int32_t ids[64];
        size_t n = 0, n_plain = 0;
        assert_int_equal(llm_tok_encode(tok, want[i].text, strlen(want[i].text), LLM_TOK_SPECIAL,
                                        ids, 64, &n),
                         0);
        assert_int_equal(ids[0], want[i].first);
        bool second = false;
        for (size_t k = 1; k < n; k++)
            second |= ids[k] == want[i].second_special;
        assert_true(second);
        assert_int_equal(
                llm_tok_encode(tok, want[i].text, strlen(want[i].text), 0, ids, 64, &n_plain), 0);
        assert_true(n_plain > n); /* spelled out as plain text */
        const struct llm_gguf_kv *t =
                llm_gguf_find_kv(llm_model_gguf(m), "tokenizer.chat_template");
        assert_non_null(t);
        print_message("%s: %zu ids with the special tokens, %zu as plain text\n", name, n, n_plain);
    }
}

static void check(const char *name, uint32_t lookahead, enum llm_switch fuse)
{
    char file[512];
    snprintf(file, sizeof(file), ARCH_DIR "%s.gguf", name);
    struct llm_model *m = load(file, fuse);
    int32_t prompt[N_PROMPT];
    for (int i = 0; i < N_PROMPT; i++)
        prompt[i] = i ? 3 + (int32_t)((i * 7919u) % 300) : 1;
    special_tokens(m, name);
    against_reference(m, file, prompt);
    batch_invariance(m, file, prompt);
    if (lookahead)
        lookahead_exact(m, file, prompt, lookahead);
    llm_model_free(m);
}

/* Every architecture in every format lade runs (the 4 x 11 fixtures of
 * tests/llama/CMakeLists.txt); greedy lookahead on f16 for each, and
 * llama-gqa's f16 once more through the separate RoPE pass. */
static const char *const variants[] = { "llama-gqa", "llama-yarn", "qwen2", "qwen3" };
static const char *const formats[] = { "f32",  "f16",  "bf16", "q8_0", "q4_0", "q4_1",
                                       "q5_0", "q5_1", "q4_k", "q5_k", "q6_k" };
#define N_VARIANTS (sizeof(variants) / sizeof(variants[0]))
#define N_FORMATS (sizeof(formats) / sizeof(formats[0]))

struct arch_case {
    char name[64]; /* the fixture */
    char test[80]; /* cmocka's name for it */
    uint32_t lookahead; /* tokens of greedy lookahead against greedy, 0: none */
    enum llm_switch fuse;
};

static void test_case(void **state)
{
    const struct arch_case *c = *state;
    check(c->name, c->lookahead, c->fuse);
}

static int teardown(void **state)
{
    assert_int_equal(vkr_validation_messages(), 0);
    return 0;
}

/* An argument picks tests by name (cmocka's pattern, e.g. "*qwen3*"). */
int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    static struct arch_case cases[N_VARIANTS * N_FORMATS + 3];
    struct CMUnitTest tests[N_VARIANTS * N_FORMATS + 3];
    size_t n = 0;
    for (size_t v = 0; v < N_VARIANTS; v++)
        for (size_t f = 0; f < N_FORMATS; f++, n++) {
            snprintf(cases[n].name, sizeof(cases[n].name), "%s-%s", variants[v], formats[f]);
            snprintf(cases[n].test, sizeof(cases[n].test), "test_%s-%s", variants[v], formats[f]);
            cases[n].lookahead = !strcmp(formats[f], "f16") ? 48 : 0;
        }
    cases[n++] = (struct arch_case){ .name = "llama-gqa-f16",
                                     .test = "test_llama-gqa-f16_unfused",
                                     .fuse = LLM_SWITCH_OFF };
    /* Real vocabularies and templates (Qwen3, Llama 3.1) on random weights.
     * Qwen3's lookahead runs 12 tokens: random weights accept no guess, so
     * every step is the same wide step through the 152k-row output
     * product (what this case adds: wide steps near the logits buffer's
     * binding limit), and 48 of them at each window were half of this
     * program's CPU time on lavapipe. */
    cases[n++] = (struct arch_case){ .name = "qwen3-vocab-q8_0",
                                     .test = "test_qwen3-vocab-q8_0",
                                     .lookahead = 12 };
    cases[n++] =
            (struct arch_case){ .name = "llama31-vocab-q8_0", .test = "test_llama31-vocab-q8_0" };
    for (size_t i = 0; i < n; i++)
        tests[i] = (struct CMUnitTest){ .name = cases[i].test,
                                        .test_func = test_case,
                                        .initial_state = &cases[i] };
    return _cmocka_run_group_tests("test_gpu_arch", tests, n, NULL, teardown);
}
