/* llama/ref.c, the CPU reference forward:
 * - stories260K greedy from BOS gives the 20 token ids its author documents
 *   (../shared/models/README.md);
 * - every record of ../shared/models/<model>/reference.jsonl, computed by an
 *   independent fp32 forward: the first 64 greedy tokens after the prompt
 *   match (kernelc-22m from its f16 GGUF);
 * - the dec_model adapter: rows of a step with a parent forest give exactly
 *   (bit for bit) the logits of running each row's chain alone, commit and
 *   rewind keep the cache consistent, malformed steps are refused;
 * - the trace variant, prefill in several chunks, argument checks. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "decoding/dec.h"
#include "llama/config.h"
#include "llama/gguf.h"
#include "llama/ref.h"
#include "support_refdata.h"

#define STORIES_GGUF LADE_MODELS_DIR "/stories260K.gguf"
#define KERNELC_GGUF LADE_SHARED_DIR "/models/kernelc-22m/kernelc-22m-f16.gguf"
#define N_CHECK 64 /* greedy tokens compared per reference record */

/* Open path and build a reference with n_ctx positions; skip() when a
 * ../shared file is absent. The GGUF goes to *ret_g when asked for. */
static struct llm_ref *build(const char *path, uint32_t n_ctx, struct llm_gguf **ret_g)
{
    char err[LLM_GGUF_ERR_MAX] = "";
    struct llm_gguf *g = NULL;
    struct llm_ref *r = NULL;

    int rc = llm_gguf_open(path, &g, err, sizeof(err));
    if (rc == -ENOENT && strncmp(path, LADE_SHARED_DIR, strlen(LADE_SHARED_DIR)) == 0) {
        print_message("skipping: %s absent (../shared not here?)\n", path);
        skip();
    }
    if (rc < 0)
        fail_msg("%s", err);
    if (llm_ref_new(g, n_ctx, &r, err, sizeof(err)) < 0)
        fail_msg("%s", err);
    if (ret_g)
        *ret_g = g;
    else
        llm_gguf_free(g);
    return r;
}

static int32_t argmax_of(const float *x, uint32_t n)
{
    uint32_t best = 0;
    for (uint32_t j = 1; j < n; j++)
        if (x[j] > x[best])
            best = j;
    return (int32_t)best;
}

/* ---- known greedy output ---------------------------------------------------- */

static void test_stories_from_bos(void **state)
{
    static const int32_t want[20] = { 403, 407, 261, 378, 432, 383, 286, 261, 376, 298,
                                      315, 421, 395, 317, 426, 338, 401, 396, 267, 337 };
    struct llm_ref *r = build(STORIES_GGUF, 512, NULL);
    uint32_t V = llm_ref_config(r)->n_vocab;
    float *logits = malloc(V * sizeof(float));
    int32_t tok = llm_ref_config(r)->bos;

    for (uint32_t pos = 0; pos < 20; pos++) {
        assert_int_equal(llm_ref_forward(r, tok, pos, logits), 0);
        tok = argmax_of(logits, V);
        if (tok != want[pos])
            fail_msg("token %u after BOS: %d, want %d", pos, tok, want[pos]);
    }
    free(logits);
    llm_ref_free(r);
}

/* Prefill the prompt through the dec_model (batched, chunked), then greedy
 * single-token forwards; compare with the record's first N_CHECK tokens. */
static void check_reference(const char *gguf, const char *jsonl, uint32_t n_ctx)
{
    struct refdata *d = refdata_load_or_skip(jsonl);

    struct llm_ref *r = build(gguf, n_ctx, NULL);
    struct dec_model m;
    llm_ref_dec_model(r, &m);
    uint32_t V = m.n_vocab;
    float *logits = malloc(V * sizeof(float));
    assert_true(d->n > 0);
    for (size_t i = 0; i < d->n; i++) {
        const struct refdata_rec *rec = &d->recs[i];
        int32_t tok;
        assert_true(rec->n_greedy >= N_CHECK);
        assert_true(rec->n_prompt + N_CHECK <= n_ctx);
        assert_int_equal(m.rewind(m.ctx, 0), 0);
        assert_int_equal(m.prefill(m.ctx, rec->prompt_tokens, rec->n_prompt, &tok, NULL), 0);
        for (uint32_t k = 0; k < N_CHECK; k++) {
            if (tok != rec->greedy_tokens[k])
                fail_msg("%s: greedy token %u is %d, reference %d", rec->id, k, tok,
                         rec->greedy_tokens[k]);
            if (k + 1 < N_CHECK) {
                assert_int_equal(llm_ref_forward(r, tok, rec->n_prompt + k, logits), 0);
                tok = argmax_of(logits, V);
            }
        }
    }
    print_message("%zu records: first %d greedy tokens match\n", d->n, N_CHECK);
    free(logits);
    llm_ref_free(r);
    refdata_free(d);
}

static void test_reference_stories(void **state)
{
    check_reference(STORIES_GGUF, LADE_SHARED_DIR "/models/stories260K/reference.jsonl", 512);
}

static void test_reference_kernelc(void **state)
{
    check_reference(KERNELC_GGUF, LADE_SHARED_DIR "/models/kernelc-22m/reference.jsonl", 1024);
}

/* Quantised weights go through llama/dequant.c at build time: every type of
 * the q8_0 and q4_k_m fixtures loads, and a forward gives finite logits
 * whose argmax after the prompt agrees with the f16 model's. */
static void check_quantised(const char *file)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/models/kernelc-22m/%s", LADE_SHARED_DIR, file);
    struct llm_ref *r = build(path, 64, NULL);
    uint32_t V = llm_ref_config(r)->n_vocab;
    float *logits = malloc(V * sizeof(float));
    static const int32_t toks[4] = { 1, 259, 2118, 408 }; /* start of code-001 */

    for (uint32_t p = 0; p < 4; p++)
        assert_int_equal(llm_ref_forward(r, toks[p], p, logits), 0);
    for (uint32_t j = 0; j < V; j++)
        assert_true(isfinite(logits[j]));
    int32_t q = argmax_of(logits, V);
    llm_ref_free(r);

    r = build(KERNELC_GGUF, 64, NULL);
    for (uint32_t p = 0; p < 4; p++)
        assert_int_equal(llm_ref_forward(r, toks[p], p, logits), 0);
    assert_int_equal(q, argmax_of(logits, V));
    free(logits);
    llm_ref_free(r);
}

static void test_quantised_q8_0(void **state)
{
    check_quantised("kernelc-22m-q8_0.gguf");
}

static void test_quantised_q4_k_m(void **state)
{
    check_quantised("kernelc-22m-q4_k_m.gguf");
}

/* ---- trace ------------------------------------------------------------------ */

/* The trace's logits are the plain forward's, bit for bit, and its last
 * vector is RMSNorm(last layer's output) * output_norm, recomputed here from
 * the GGUF's output_norm.weight. */
static void test_trace(void **state)
{
    struct llm_gguf *g = NULL;
    struct llm_ref *r = build(STORIES_GGUF, 64, &g);
    const struct llm_config *c = llm_ref_config(r);
    uint32_t V = c->n_vocab, dim = c->dim;
    float *a = malloc(V * sizeof(float)), *b = malloc(V * sizeof(float));
    float *hidden = malloc((c->n_layers + 1) * dim * sizeof(float));
    static const int32_t toks[3] = { 1, 403, 407 };

    for (uint32_t p = 0; p < 3; p++) {
        assert_int_equal(llm_ref_forward(r, toks[p], p, a), 0);
        assert_int_equal(llm_ref_forward_trace(r, toks[p], p, b, hidden), 0);
        assert_memory_equal(a, b, V * sizeof(float));
    }
    const struct llm_gguf_tensor *t = llm_gguf_find_tensor(g, "output_norm.weight");
    assert_non_null(t);
    assert_int_equal(t->type, LLM_GGML_F32);
    const float *w = t->data, *last = hidden + (size_t)(c->n_layers - 1) * dim;
    float ss = 0.0f;
    for (uint32_t j = 0; j < dim; j++)
        ss += last[j] * last[j];
    ss = 1.0f / sqrtf(ss / (float)dim + c->rms_eps);
    for (uint32_t j = 0; j < dim; j++)
        assert_true(hidden[(size_t)c->n_layers * dim + j] == w[j] * (ss * last[j]));
    /* the layers change the stream: no two consecutive vectors are equal */
    for (uint32_t l = 1; l < c->n_layers; l++)
        assert_memory_not_equal(hidden + (size_t)(l - 1) * dim, hidden + (size_t)l * dim,
                                dim * sizeof(float));
    free(a), free(b), free(hidden);
    llm_ref_free(r);
    llm_gguf_free(g);
}

/* ---- argument checks -------------------------------------------------------- */

static void test_forward_bounds(void **state)
{
    struct llm_gguf *g = NULL;
    struct llm_ref *r = build(STORIES_GGUF, 8, &g);
    char err[LLM_GGUF_ERR_MAX] = "";
    struct llm_ref *r2 = NULL;

    assert_int_equal(llm_ref_n_ctx(r), 8);
    assert_int_equal(llm_ref_forward(r, -1, 0, NULL), -EINVAL);
    assert_int_equal(llm_ref_forward(r, 512, 0, NULL), -EINVAL);
    assert_int_equal(llm_ref_forward(r, 1, 1, NULL), -EINVAL); /* position 0 not computed yet */
    for (uint32_t p = 0; p < 8; p++)
        assert_int_equal(llm_ref_forward(r, 1, p, NULL), 0);
    assert_int_equal(llm_ref_forward(r, 1, 8, NULL), -E2BIG);
    assert_int_equal(llm_ref_forward(r, 1, 3, NULL), 0); /* rewinds to 4 tokens */
    assert_int_equal(llm_ref_forward(r, 1, 5, NULL), -EINVAL);

    assert_int_equal(llm_ref_new(g, 4096, &r2, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "context_length"));
    assert_null(r2);
    llm_ref_free(NULL);
    llm_ref_free(r);
    llm_gguf_free(g);
}

/* ---- the dec_model adapter -------------------------------------------------- */

/* Logits of the chain toks[0..n-1] run alone with llm_ref_forward after the
 * first n_prefix tokens of the committed prefix. */
static void chain_alone(struct llm_ref *r, uint32_t n_prefix, const int32_t *toks, uint32_t n,
                        float *ret_logits)
{
    for (uint32_t k = 0; k < n; k++)
        assert_int_equal(llm_ref_forward(r, toks[k], n_prefix + k, ret_logits), 0);
}

/* Seven rows: branch A (rows 0, 1, 5), branch B (rows 2, 3, 4), a lone row
 * 6 that only feeds attention (nothing attends to it). */
static const struct dec_row forest[7] = {
    { .token = 432, .parent = -1, .want = DEC_WANT_LOGITS },
    { .token = 383, .parent = 0, .want = DEC_WANT_LOGITS },
    { .token = 286, .parent = -1, .want = DEC_WANT_LOGITS },
    { .token = 261, .parent = 2, .want = DEC_WANT_LOGITS },
    { .token = 376, .parent = 3, .want = DEC_WANT_LOGITS },
    { .token = 298, .parent = 1, .want = DEC_WANT_ARGMAX },
    { .token = 315, .parent = -1, .want = DEC_WANT_NONE },
};
static const int32_t prompt[5] = { 1, 403, 407, 261, 378 };

/* Token chain from the root to row i of forest. */
static uint32_t forest_chain(uint32_t i, int32_t *toks)
{
    uint32_t n = 0, tmp[7];
    for (int32_t j = (int32_t)i; j >= 0; j = forest[j].parent)
        tmp[n++] = (uint32_t)j;
    for (uint32_t k = 0; k < n; k++)
        toks[k] = forest[tmp[n - 1 - k]].token;
    return n;
}

static void test_dec_forest_matches_chains(void **state)
{
    struct llm_ref *r = build(STORIES_GGUF, 64, NULL);
    struct dec_model m;
    llm_ref_dec_model(r, &m);
    uint32_t V = m.n_vocab;
    float *step_logits = malloc(5 * V * sizeof(float)), *alone = malloc(V * sizeof(float));
    int32_t am[7], first, toks[7];

    assert_int_equal(m.prefill(m.ctx, prompt, 5, &first, NULL), 0);
    assert_int_equal(first, 432); /* "Once upon a time" -> 432, as from BOS */
    assert_int_equal(m.step(m.ctx, forest, 7, am, step_logits), 0);
    assert_int_equal(am[6], -1);
    for (uint32_t i = 0, k = 0; i < 6; i++) {
        uint32_t n = forest_chain(i, toks);
        assert_int_equal(m.rewind(m.ctx, 5), 0);
        chain_alone(r, 5, toks, n, alone);
        assert_int_equal(am[i], argmax_of(alone, V));
        if (forest[i].want == DEC_WANT_LOGITS) {
            /* batch invariance: bit for bit, not merely the same argmax */
            assert_memory_equal(step_logits + (size_t)k * V, alone, V * sizeof(float));
            k++;
        }
    }
    free(step_logits), free(alone);
    llm_ref_free(r);
}

static void test_dec_commit_rewind(void **state)
{
    struct llm_ref *r = build(STORIES_GGUF, 64, NULL);
    struct dec_model m;
    llm_ref_dec_model(r, &m);
    uint32_t V = m.n_vocab;
    float *a = malloc(V * sizeof(float)), *b = malloc(V * sizeof(float));
    const uint32_t chain_b[3] = { 2, 3, 4 }, bad1[2] = { 0, 2 }, bad2[1] = { 1 }, bad3[1] = { 7 };
    const struct dec_row next = { .token = 337, .parent = -1, .want = DEC_WANT_LOGITS };
    int32_t am[7], toks[5];

    assert_int_equal(m.prefill(m.ctx, prompt, 5, NULL, NULL), 0);
    assert_int_equal(m.step(m.ctx, forest, 7, am, NULL), 0);
    assert_int_equal(m.commit(m.ctx, bad1, 2), -EINVAL); /* row 2 does not follow row 0 */
    assert_int_equal(m.commit(m.ctx, bad2, 1), -EINVAL); /* row 1 is not a root */
    assert_int_equal(m.commit(m.ctx, bad3, 1), -EINVAL); /* no row 7 */
    assert_int_equal(m.commit(m.ctx, chain_b, 3), 0);
    assert_int_equal(m.n_past(m.ctx), 8);
    assert_int_equal(m.commit(m.ctx, chain_b, 1), -EINVAL); /* that step is gone */

    /* after the commit, a new row sees prompt + B exactly as a lone chain does */
    assert_int_equal(m.step(m.ctx, &next, 1, am, a), 0);
    forest_chain(4, toks);
    toks[3] = next.token;
    assert_int_equal(m.rewind(m.ctx, 5), 0);
    chain_alone(r, 5, toks, 4, b);
    assert_memory_equal(a, b, V * sizeof(float));
    assert_int_equal(am[0], argmax_of(b, V));

    /* rewind drops the step and truncates; beyond the prefix is refused */
    assert_int_equal(m.n_past(m.ctx), 9);
    assert_int_equal(m.rewind(m.ctx, 10), -EINVAL);
    assert_int_equal(m.rewind(m.ctx, 5), 0);
    assert_int_equal(m.commit(m.ctx, chain_b, 1), -EINVAL);
    assert_int_equal(m.n_past(m.ctx), 5);
    /* a step not committed leaves no trace: the next one sees only the prefix */
    assert_int_equal(m.step(m.ctx, forest, 7, am, NULL), 0);
    assert_int_equal(m.step(m.ctx, &next, 1, am, a), 0);
    chain_alone(r, 5, &next.token, 1, b);
    assert_memory_equal(a, b, V * sizeof(float));
    free(a), free(b);
    llm_ref_free(r);
}

static void test_dec_bad_steps(void **state)
{
    struct llm_ref *r = build(STORIES_GGUF, 16, NULL);
    struct dec_model m;
    llm_ref_dec_model(r, &m);
    int32_t am[20], toks[16];
    struct dec_row rows[17];

    assert_int_equal(m.n_ctx, 16);
    assert_int_equal(m.max_rows, 16);
    assert_int_equal(m.bos, 1);
    assert_int_equal(m.eos, 2);
    for (int i = 0; i < 17; i++)
        rows[i] = (struct dec_row){ .token = 300, .parent = i - 1, .want = DEC_WANT_ARGMAX };
    assert_int_equal(m.step(m.ctx, rows, 0, am, NULL), -EINVAL);
    assert_int_equal(m.step(m.ctx, rows, 17, am, NULL), -EINVAL); /* more than max_rows */
    rows[1].parent = 1;
    assert_int_equal(m.step(m.ctx, rows, 2, am, NULL), -EINVAL); /* parent not earlier */
    rows[1].parent = -2;
    assert_int_equal(m.step(m.ctx, rows, 2, am, NULL), -EINVAL);
    rows[1].parent = 0, rows[1].token = 512;
    assert_int_equal(m.step(m.ctx, rows, 2, am, NULL), -EINVAL); /* token outside the vocabulary */
    rows[1].token = 300, rows[1].want = 3;
    assert_int_equal(m.step(m.ctx, rows, 2, am, NULL), -EINVAL);
    rows[1].want = DEC_WANT_ARGMAX;

    for (int i = 0; i < 16; i++)
        toks[i] = 300 + i;
    assert_int_equal(m.prefill(m.ctx, toks, 0, am, NULL), -EINVAL);
    assert_int_equal(m.prefill(m.ctx, toks, 17, am, NULL), -E2BIG);
    toks[3] = -5;
    assert_int_equal(m.prefill(m.ctx, toks, 10, am, NULL), -EINVAL);
    assert_int_equal(m.n_past(m.ctx), 0); /* nothing committed from a refused prefill */
    toks[3] = 303;
    assert_int_equal(m.prefill(m.ctx, toks, 14, am, NULL), 0);
    assert_int_equal(m.step(m.ctx, rows, 3, am, NULL), -E2BIG); /* depth 2 lands on position 16 */
    assert_int_equal(m.step(m.ctx, rows, 2, am, NULL), 0); /* positions 14, 15 fit */
    assert_int_equal(m.prefill(m.ctx, toks, 3, am, NULL), -E2BIG);
    llm_ref_free(r);
}

/* Prefill longer than one step (LLM_REF_MAX_ROWS) gives the same logits as
 * token-by-token forwards. */
static void test_dec_prefill_chunks(void **state)
{
    const uint32_t n = LLM_REF_MAX_ROWS + 9;
    struct llm_ref *r = build(STORIES_GGUF, n + 1, NULL);
    struct dec_model m;
    llm_ref_dec_model(r, &m);
    uint32_t V = m.n_vocab;
    float *a = malloc(V * sizeof(float)), *b = malloc(V * sizeof(float));
    int32_t *toks = malloc(n * sizeof(int32_t)), am;

    assert_int_equal(m.max_rows, LLM_REF_MAX_ROWS);
    toks[0] = 1;
    for (uint32_t i = 1; i < n; i++)
        toks[i] = (int32_t)(3 + (i * 37) % 509);
    assert_int_equal(m.prefill(m.ctx, toks, n, &am, a), 0);
    assert_int_equal(m.n_past(m.ctx), n);
    assert_int_equal(am, argmax_of(a, V));
    chain_alone(r, 0, toks, n, b);
    assert_memory_equal(a, b, V * sizeof(float));
    free(a), free(b), free(toks);
    llm_ref_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stories_from_bos),   cmocka_unit_test(test_reference_stories),
        cmocka_unit_test(test_reference_kernelc),  cmocka_unit_test(test_quantised_q8_0),
        cmocka_unit_test(test_quantised_q4_k_m),   cmocka_unit_test(test_trace),
        cmocka_unit_test(test_forward_bounds),     cmocka_unit_test(test_dec_forest_matches_chains),
        cmocka_unit_test(test_dec_commit_rewind),  cmocka_unit_test(test_dec_bad_steps),
        cmocka_unit_test(test_dec_prefill_chunks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
