/* Lookahead decoding on the real models, on the GPU path: greedy lookahead
 * output equals plain greedy output token for token, for every stories
 * prompt with stories260K and the code prompts with kernelc-22m, at
 * (N,W,G) in {(5,15,15), (5,7,7), (7,10,10), (3,4,4)}, 128 tokens, plus the
 * reference-algorithm mode; sampled lookahead equals plain sampling for the
 * same seed (batch-invariant logits make the single-draw-per-token scheme
 * reproduce it exactly).
 *
 * The story prompts take two of the five lookahead settings each, in turn,
 * so that each setting runs on four or five of the twelve prompts and each
 * prompt against two settings (every pair was 60 runs, half of this
 * program's time on lavapipe). The code prompt takes (7,10,10), the
 * longest accepted chains, and (3,4,4), the narrowest window: the other
 * three cost nearly two thirds of its time and the stories run them.
 * LADE_FULL_TESTS=1 runs every pair.
 *
 * CI subset (documented in docs/lookahead.md): lavapipe on 2 cores takes
 * ~1.5 s for one 121-row kernelc-22m step, so CI runs the first
 * LADE_CODE_PROMPTS (default 1) code prompt(s); LADE_FULL_TESTS=1 runs all
 * 40, as the benchmark does. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "gpu_variant.h"
#include "llama/llm.h"
#include "support_prompts.h"
#include "tools/tuning-env.h"
#include "vk/vkr.h"

#define STORIES LADE_MODELS_DIR "/stories260K.gguf"
#define KERNELC LADE_SHARED_DIR "/models/kernelc-22m/kernelc-22m-f16.gguf"
#define MAX_OUT 160

struct collect {
    int32_t tok[MAX_OUT];
    uint32_t n;
};

static int emit(void *user, const int32_t *t, uint32_t n)
{
    struct collect *c = user;
    for (uint32_t i = 0; i < n && c->n < MAX_OUT; i++)
        c->tok[c->n++] = t[i];
    return 0;
}

static void run(struct dec_session *s, const int32_t *prompt, uint32_t np,
                const struct dec_params *p, struct collect *c, struct dec_result *r)
{
    c->n = 0;
    int e = dec_generate(s, prompt, np, p, NULL, emit, c, r);
    if (e)
        fail_msg("dec_generate: %d (%s)", e, r->error);
}

/* Each prompt's plain greedy output against `per_prompt` of the five
 * lookahead settings (all five: 5), taken in turn from prompt to prompt,
 * beginning with setting `first`. */
static void check_set(const char *model, const char *prompts, size_t limit, int per_prompt,
                      uint32_t first)
{
    if (access(model, R_OK) != 0 || access(prompts, R_OK) != 0) {
        fprintf(stderr, "skipping: %s or %s not found (../shared absent)\n", model, prompts);
        skip();
    }
    size_t np = 0;
    char **texts = prompts_load(prompts, limit, &np);
    assert_non_null(texts);
    char err[512];
    struct llm_model *m;
    struct llm_model_opts o = { .path = model, .device = getenv("LADE_DEVICE") };
    if (lade_tuning_from_env(&o.tuning, err, sizeof(err)) ||
        llm_model_load(&o, &m, err, sizeof(err)))
        fail_msg("%s", err);
    struct dec_model dm;
    llm_model_dec(m, &dm);
    struct dec_caps caps = dec_caps_default();
    struct dec_session *s;
    assert_int_equal(dec_session_new(&dm, &caps, &s), 0);
    static const uint32_t nwg[4][3] = { { 5, 15, 15 }, { 5, 7, 7 }, { 7, 10, 10 }, { 3, 4, 4 } };
    double tps_sum = 0, ref_sum = 0;
    uint32_t runs = 0, n_tps = 0, n_ref = 0, next = first;
    for (size_t i = 0; i < np; i++) {
        int32_t prompt[2048];
        size_t n;
        assert_int_equal(llm_tok_encode(llm_model_tok(m), texts[i], strlen(texts[i]),
                                        LLM_TOK_ADD_BOS, prompt, 2048, &n),
                         0);
        struct dec_params p = dec_params_default();
        p.max_tokens = 128;
        p.lookahead = false;
        struct collect plain, la;
        struct dec_result r;
        run(s, prompt, (uint32_t)n, &p, &plain, &r);
        for (int j = 0; j < per_prompt; j++) {
            int c = (int)(next++ % 5);
            p = dec_params_default();
            p.max_tokens = 128;
            p.adaptive = false; /* always exercise the lookahead branch */
            p.n = nwg[c % 4][0];
            p.w = nwg[c % 4][1];
            p.g = nwg[c % 4][2];
            if (c == 4) { /* the reference algorithm: no bonus token, no seeding */
                p.bonus = false;
                p.seed_pool = false;
            }
            run(s, prompt, (uint32_t)n, &p, &la, &r);
            if (la.n != plain.n || memcmp(la.tok, plain.tok, plain.n * sizeof(int32_t)) != 0) {
                uint32_t k = 0;
                while (k < la.n && k < plain.n && la.tok[k] == plain.tok[k])
                    k++;
                fail_msg(
                        "%s prompt %zu (N,W,G)=(%u,%u,%u)%s: lookahead differs from greedy at token %u (%d vs %d)",
                        model, i + 1, p.n, p.w, p.g, c == 4 ? " reference" : "", k,
                        k < la.n ? la.tok[k] : -1, k < plain.n ? plain.tok[k] : -1);
            }
            if (c == 0) {
                tps_sum += r.stats.tokens_per_pass;
                n_tps++;
            }
            if (c == 4) {
                ref_sum += r.stats.tokens_per_pass;
                n_ref++;
            }
        }
        runs++;
        free(texts[i]);
    }
    fprintf(stderr,
            "%s: %u prompts x %d lookahead configs equal plain greedy; tokens/pass at (5,15,15): ours %.2f (%u runs), reference mode %.2f (%u runs)\n",
            model, runs, per_prompt, n_tps ? tps_sum / n_tps : 0, n_tps,
            n_ref ? ref_sum / n_ref : 0, n_ref);
    free(texts);
    dec_session_free(s);
    llm_model_free(m);
}

static void test_stories_greedy_exact(void **state)
{
    const char *full = getenv("LADE_FULL_TESTS");
    check_set(STORIES, LADE_SHARED_DIR "/prompts/stories.jsonl", 1000,
              full && strcmp(full, "1") == 0 ? 5 : 2, 0);
}

static void test_code_greedy_exact(void **state)
{
    const char *full = getenv("LADE_FULL_TESTS"), *lim = getenv("LADE_CODE_PROMPTS");
    size_t limit = full && strcmp(full, "1") == 0 ? 1000 : lim ? (size_t)atoi(lim) : 1;
    bool all = (full && strcmp(full, "1") == 0) || lim;
    check_set(KERNELC, LADE_SHARED_DIR "/prompts/code.jsonl", limit, all ? 5 : 2, all ? 0 : 2);
}

/* Sampling: a seed reproduces, and lookahead sampling draws the same tokens
 * as plain sampling (one uniform per emitted token, batch-invariant logits).
 * The seed reproducing is shown by the lookahead run, which follows the
 * plain one on the same session and must draw its tokens (a third run of
 * plain sampling for it alone was a quarter of this test's time).
 * The GPU samples what it can: draws without top-k (temperature, top-p,
 * min-p, with or without the penalty) in draw.comp, top-k (with top-p,
 * min-p, the penalty) and greedy with the penalty as top-k candidates
 * (topk.comp), the penalty in penalty.comp. Every way gives the tokens the
 * host gets from the same logits (the session built without set_draw). */
static void test_sampling_matches_plain(void **state)
{
    char err[512];
    struct llm_model *m;
    struct llm_model_opts o = { .path = STORIES, .device = getenv("LADE_DEVICE") };
    if (lade_tuning_from_env(&o.tuning, err, sizeof(err)) ||
        llm_model_load(&o, &m, err, sizeof(err)))
        fail_msg("%s", err);
    struct dec_model dm, host;
    llm_model_dec(m, &dm);
    host = dm;
    host.set_draw = NULL;
    struct dec_caps caps = dec_caps_default();
    struct dec_session *s, *sh;
    assert_int_equal(dec_session_new(&dm, &caps, &s), 0);
    assert_int_equal(dec_session_new(&host, &caps, &sh), 0);
    const char *texts[] = { "Once upon a time", "The little dog", "Tom and Sue went" };
    uint64_t gpu_draws = 0, gpu_tops = 0;
    for (int i = 0; i < 3; i++) {
        int32_t prompt[64];
        size_t n;
        assert_int_equal(llm_tok_encode(llm_model_tok(m), texts[i], strlen(texts[i]),
                                        LLM_TOK_ADD_BOS, prompt, 64, &n),
                         0);
        for (uint64_t seed = 1; seed <= 8; seed++) {
            struct dec_params p = dec_params_default();
            p.max_tokens = 96;
            p.temperature = seed == 2 ? 1.3f : seed == 7 ? 0.0f : 0.8f;
            p.min_p = seed == 3 || seed == 8 ? 0.05f : 0.0f;
            p.top_k = seed == 4 ? 20 : seed == 5 ? 40 : 0;
            p.top_p = seed == 5 || seed == 8 ? 0.9f : 1.0f;
            p.repeat_penalty = seed == 5 ? 1.1f : seed == 6 || seed == 7 ? 1.3f : 1.0f;
            p.repeat_last_n = seed == 6 ? 16 : 64;
            p.seed = seed;
            p.lookahead = false;
            struct collect a, c, h;
            struct dec_result r;
            uint64_t before = llm_model_gpu_draws(m), tops = llm_model_gpu_tops(m);
            run(s, prompt, (uint32_t)n, &p, &a, &r);
            bool draw = seed <= 3 || seed == 6 || seed == 8,
                 top = seed == 4 || seed == 5 || seed == 7;
            /* Every token but the prefill's, where the GPU can. */
            assert_true(llm_model_gpu_draws(m) - before >= (dm.set_draw && draw ? a.n - 1 : 0));
            assert_true(llm_model_gpu_tops(m) - tops >= (dm.set_draw && top ? a.n - 1 : 0));
            assert_true(dm.set_draw && draw ? llm_model_gpu_tops(m) == tops :
                                              llm_model_gpu_draws(m) == before);
            assert_true(dm.set_draw && top ? true : llm_model_gpu_tops(m) == tops);
            gpu_draws += llm_model_gpu_draws(m) - before;
            gpu_tops += llm_model_gpu_tops(m) - tops;
            run(sh, prompt, (uint32_t)n, &p, &h, &r);
            assert_int_equal(a.n, h.n);
            assert_memory_equal(a.tok, h.tok, a.n * sizeof(int32_t));
            p.lookahead = true;
            p.adaptive = false;
            run(s, prompt, (uint32_t)n, &p, &c, &r);
            assert_int_equal(a.n, c.n);
            assert_memory_equal(a.tok, c.tok, a.n * sizeof(int32_t));
        }
    }
    print_message("sampling: %llu tokens drawn on the GPU, %llu chosen from its top-k candidates\n",
                  (unsigned long long)gpu_draws, (unsigned long long)gpu_tops);
    dec_session_free(s);
    dec_session_free(sh);
    llm_model_free(m);
}

static int teardown(void **state)
{
    assert_int_equal(vkr_validation_messages(), 0);
    return 0;
}

int main(void)
{
    if (variant_pointless())
        return 77;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stories_greedy_exact),
        cmocka_unit_test(test_code_greedy_exact),
        cmocka_unit_test(test_sampling_matches_plain),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
