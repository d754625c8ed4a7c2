/* The counting build (llm_model_opts.count, llama/gpu_count.c): the
 * counter of weight bytes the matrix kernels load is checked against what
 * the kernels must load (every matrix once in a one-row step, each 8-weight
 * run by the loads weights.glsl issues for its format), and the structure
 * it measures is held: a wide step reads every weight once, and a layer
 * records at most 6 dispatches (issue #22). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "llama/gguf.h"
#include "llama/llm.h"
#include "tools/tuning-env.h"
#include "vk/vkr.h"

#define KDIR LADE_SHARED_DIR "/models/kernelc-22m/"

/* A model and what a one-row step must load: weight bytes = matrix bytes
 * x num / den. A run of 8 weights loads 16 bytes in f16 (one word), 32 in
 * f32; in the repacked Q4_0 and Q8_0 a 16-byte word of quants and a 4-byte
 * word holding the scale, 20 bytes, for 4.5 and 8.5 bytes of the format.
 * 0: a mix of formats, whose bytes fmt_loads sums per matrix (the K-quant
 * fixture), as it does for every model on the integer path (whose LM head
 * stays on matmul.comp). `layer`: the most dispatches a layer may record: 6, also
 * where V's format is not Q's and K's (Q4_K_M: attn_v is Q6_K), which
 * stack as two formats in one product. */
struct counted {
    const char *path;
    uint64_t num, den;
    uint32_t layer;
};

static const struct counted models[] = {
    { LADE_MODELS_DIR "/stories260K.gguf", 1, 1, 6 }, /* f32 */
    { KDIR "kernelc-22m-f16.gguf", 1, 1, 6 },         { KDIR "kernelc-22m-q8_0.gguf", 80, 34, 6 },
    { KDIR "kernelc-22m-q4_0.gguf", 80, 18, 6 },      { KDIR "kernelc-22m-q4_k_m.gguf", 0, 0, 6 },
};

/* Bytes a one-row step loads for `den` stored bytes of a format: num
 * through matmul.comp, inum through matmul_q8.comp (tuning idot).
 * matmul.comp loads a run of 8 weights as above: Q4_K one 16-byte word
 * for d, dmin and the scales and one for the quants (1024 bytes a
 * 144-byte super-block), Q6_K (repacked) a word of low and one of high
 * bits, the scale's and d's words, 40 (1280 for 210). matmul_q8.comp
 * loads a 32-block at once: Q8_0 two 16-byte words and the scale's word,
 * 36 bytes for 34; Q4_0 one and the scale's, 20 for 18; Q4_K the scale
 * word and two of quants, 48
 * (384 for 144); Q6_K four words of quants, the scales' and d's words, 72
 * (576 for 210). */
struct fmt_loads {
    uint32_t type;
    uint64_t num, inum, den;
};

static const struct fmt_loads fmt_loads[] = {
    { LLM_GGML_F32, 1, 1, 1 },         { LLM_GGML_F16, 1, 1, 1 },
    { LLM_GGML_Q8_0, 80, 36, 34 },     { LLM_GGML_Q4_0, 80, 20, 18 },
    { LLM_GGML_Q4_K, 1024, 384, 144 }, { LLM_GGML_Q5_K, 1536, 640, 176 },
    { LLM_GGML_Q6_K, 1280, 576, 210 },
};

/* What a one-row step must load for a model's matrices (its layers' 2-D
 * tensors and the head, which is on matmul.comp whatever idot says),
 * summed over their formats; their stored bytes into ret_mat. 0 when a
 * format is not in the table. */
static uint64_t mixed_loads(const struct llm_gguf *g, bool idot, uint64_t *ret_mat)
{
    uint64_t want = 0, mat = 0;
    for (uint64_t i = 0; i < llm_gguf_n_tensors(g); i++) {
        const struct llm_gguf_tensor *t = llm_gguf_tensor_at(g, i);
        if (t->n_dims != 2 || (strncmp(t->name, "blk.", 4) && strcmp(t->name, "output.weight")))
            continue;
        size_t f = 0, nf = sizeof(fmt_loads) / sizeof(fmt_loads[0]);
        while (f < nf && fmt_loads[f].type != t->type)
            f++;
        if (f == nf)
            return 0;
        const struct fmt_loads *l = &fmt_loads[f];
        assert_true(t->size % l->den == 0);
        bool int_path = idot && strcmp(t->name, "output.weight") != 0;
        want += t->size / l->den * (int_path ? l->inum : l->num);
        mat += t->size;
    }
    *ret_mat = mat;
    return want;
}

/* The counts of a step of T rows (a chain under the committed prefix)
 * after an 8-token prompt. */
static void count_step(struct llm_model *m, struct dec_model *dm, uint32_t T,
                       struct llm_counts *ret)
{
    int32_t prompt[8] = { 1, 5, 9, 13, 17, 21, 25, 29 }, am[64];
    struct dec_row rows[64];
    for (uint32_t i = 0; i < T; i++)
        rows[i] = (struct dec_row){ (int32_t)(3 + i * 7 % (dm->n_vocab - 3)), (int32_t)i - 1,
                                    DEC_WANT_ARGMAX, 0 };
    assert_int_equal(dm->rewind(dm->ctx, 0), 0);
    assert_int_equal(dm->prefill(dm->ctx, prompt, 8, am, NULL), 0);
    assert_int_equal(llm_model_counts_reset(m), 0);
    assert_int_equal(dm->step(dm->ctx, rows, T, am, NULL), 0);
    assert_int_equal(llm_model_counts(m, ret), 0);
}

static void check_model(const struct counted *c, bool idot)
{
    if (access(c->path, R_OK) != 0) {
        fprintf(stderr, "skipping: %s not found\n", c->path);
        return;
    }
    char err[512];
    struct llm_model *m;
    struct llm_model_opts o = { .path = c->path,
                                .device = getenv("LADE_DEVICE"),
                                .n_ctx = 256,
                                .max_rows = 64,
                                .count = true };
    if (lade_tuning_from_env(&o.tuning, err, sizeof(err)) ||
        (idot && llm_tuning_set(&o.tuning, "idot", "1", err, sizeof(err))) ||
        llm_model_load(&o, &m, err, sizeof(err)))
        fail_msg("%s", err);
    struct dec_model dm;
    llm_model_dec(m, &dm);
    static const uint32_t Ts[] = { 1, 2, 8, 64 };
    struct llm_counts k[4];
    for (int i = 0; i < 4; i++)
        count_step(m, &dm, Ts[i], &k[i]);
    uint64_t one = k[0].weight_bytes, mat = k[0].matrix_bytes;
    uint32_t layers = llm_model_config(m)->n_layers;
    fprintf(stderr, "%s%s: matrices %llu bytes, a one-row step loads %llu (x%.3f)", c->path,
            idot ? " (idot)" : "", (unsigned long long)mat, (unsigned long long)one,
            (double)one / (double)mat);
    for (int i = 1; i < 4; i++)
        fprintf(stderr, ", T=%u x%.3f", Ts[i], (double)k[i].weight_bytes / (double)one);
    fprintf(stderr, "; %u dispatches a step, %u a layer\n", k[0].step_dispatches,
            k[0].layer_dispatches);
    /* Every matrix is read, and no run more than a Q4_K run's 32 bytes for
     * 4.5 (the most any format loads: Q6_K 40 for 6.6). */
    assert_true(one >= mat);
    assert_true(one <= 8 * mat);
    if (c->num && !idot) {
        assert_true(one * c->den == mat * c->num);
    } else {
        uint64_t tmat = 0, want = mixed_loads(llm_model_gguf(m), idot, &tmat);
        assert_true(want != 0);
        assert_true(tmat == mat);
        if (one != want)
            fail_msg("%s: a one-row step loads %llu bytes, its formats want %llu", c->path,
                     (unsigned long long)one, (unsigned long long)want);
    }
    /* Issue #22: a step of up to 64 rows reads every weight once (the
     * wide geometry's 64-token tile): at most 1.05x a one-row step. */
    for (int i = 1; i < 4; i++)
        if (k[i].weight_bytes * 100 > one * 105)
            fail_msg("%s: a %u-row step loads %.3fx a one-row step's weight bytes", c->path, Ts[i],
                     (double)k[i].weight_bytes / (double)one);
    /* Issue #22: at most 6 dispatches a layer with the fused epilogues
     * (the default): the norms folded into the products after them, Q, K
     * and V one product. */
    for (int i = 0; i < 4; i++) {
        if (k[i].layer_dispatches > c->layer)
            fail_msg("%s: a %u-row step records %u dispatches a layer (at most %u)", c->path, Ts[i],
                     k[i].layer_dispatches, c->layer);
        assert_true(k[i].layer_dispatches >= 5);
        assert_true(k[i].step_dispatches >= layers * k[i].layer_dispatches);
        assert_true(k[i].step_dispatches <= layers * k[i].layer_dispatches + layers + 16);
    }
    llm_model_free(m);
}

static void test_counts_plausible(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(models) / sizeof(models[0]); i++)
        check_model(&models[i], false);
}

/* The same for the integer path: its formats load each block once a step
 * of up to 64 rows too (the K-quant fixture: Q4_K, Q6_K and Q8_0). */
static void test_counts_idot(void **state)
{
    (void)state;
    for (size_t i = 2; i < 5; i++)
        check_model(&models[i], true);
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(vkr_validation_messages(), 0);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_plausible),
        cmocka_unit_test(test_counts_idot),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
