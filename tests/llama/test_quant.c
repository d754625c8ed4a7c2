/* llm_quantize_row against ggml's own output: quantising the f16
 * kernelc-22m weights must give the bytes of the shared q8_0, q4_0 and
 * q4_k_m fixtures (made by ggml from that file), tensor by tensor; plus
 * error bounds on random rows and the argument checks. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "llama/dequant.h"
#include "llama/gguf.h"
#include "llama/quant.h"

#define KDIR LADE_SHARED_DIR "/models/kernelc-22m/"

/* Compares every tensor of `fixture` whose type is `type` (any quantised
 * type when type is 0) with lade's quantisation of the f16 source to that
 * type; returns how many tensors were compared. */
static uint32_t compare_fixture(const char *fixture, uint32_t type)
{
    if (access(KDIR "kernelc-22m-f16.gguf", R_OK) || access(fixture, R_OK)) {
        fprintf(stderr, "skipping: kernelc-22m fixtures not found\n");
        skip();
    }
    char err[512];
    struct llm_gguf *src, *ref;
    assert_int_equal(llm_gguf_open(KDIR "kernelc-22m-f16.gguf", &src, err, sizeof(err)), 0);
    assert_int_equal(llm_gguf_open(fixture, &ref, err, sizeof(err)), 0);
    uint32_t compared = 0;
    for (uint64_t i = 0; i < llm_gguf_n_tensors(ref); i++) {
        const struct llm_gguf_tensor *r = llm_gguf_tensor_at(ref, i);
        if (type ? r->type != type : !llm_quantize_has_type(r->type))
            continue;
        const struct llm_gguf_tensor *s = llm_gguf_find_tensor(src, r->name);
        assert_non_null(s);
        uint32_t t = r->type;
        uint64_t cols = s->ne[0], rows = s->n_elements / cols, rb = llm_ggml_row_bytes(t, cols);
        float *row = malloc(cols * sizeof(float));
        uint8_t *q = malloc(rb);
        for (uint64_t k = 0; k < rows; k++) {
            assert_int_equal(llm_dequant_row(s->type,
                                             (const uint8_t *)s->data +
                                                     k * llm_ggml_row_bytes(s->type, cols),
                                             row, cols),
                             0);
            assert_int_equal(llm_quantize_row(t, row, q, cols), 0);
            if (memcmp(q, (const uint8_t *)r->data + k * rb, rb) != 0)
                fail_msg("%s: tensor %s (type %u) row %llu differs from ggml's", fixture, r->name,
                         t, (unsigned long long)k);
        }
        free(row);
        free(q);
        compared++;
    }
    fprintf(stderr, "%s: %u tensors byte-identical to ggml's quantisation\n", fixture, compared);
    llm_gguf_free(src);
    llm_gguf_free(ref);
    return compared;
}

/* kernelc-22m: 6 layers x 7 matrices + embedding + output */
static void test_q8_0_fixture(void **state)
{
    assert_true(compare_fixture(KDIR "kernelc-22m-q8_0.gguf", LLM_GGML_Q8_0) >= 44);
}
static void test_q4_0_fixture(void **state)
{
    assert_true(compare_fixture(KDIR "kernelc-22m-q4_0.gguf", LLM_GGML_Q4_0) >= 44);
}

/* Every matrix of the Q4_K_M mix: Q4_K, Q6_K and the Q5_0 / Q8_0
 * fallbacks, each type's tensors at least once. */
static void test_q4_k_m_fixture(void **state)
{
    const char *f = KDIR "kernelc-22m-q4_k_m.gguf";
    assert_true(compare_fixture(f, LLM_GGML_Q4_K) >= 1);
    assert_true(compare_fixture(f, LLM_GGML_Q6_K) >= 1);
    assert_true(compare_fixture(f, LLM_GGML_Q5_0) + compare_fixture(f, LLM_GGML_Q8_0) >= 1);
    assert_true(compare_fixture(f, 0) >= 44);
    /* and lade-quantize's q4_k_m picks the fixture's type for every tensor,
     * and its file type */
    char err[512];
    struct llm_gguf *ref;
    assert_int_equal(llm_gguf_open(f, &ref, err, sizeof(err)), 0);
    enum llm_quant_mix mix;
    assert_int_equal(llm_quant_mix_parse("q4_k_m", &mix), 0);
    for (uint64_t i = 0; i < llm_gguf_n_tensors(ref); i++) {
        const struct llm_gguf_tensor *r = llm_gguf_tensor_at(ref, i);
        if (llm_quant_mix_type(mix, r->name, r->n_dims, r->ne[0]) != r->type)
            fail_msg("%s: lade's q4_k_m makes %s type %u, the fixture has %u", f, r->name,
                     llm_quant_mix_type(mix, r->name, r->n_dims, r->ne[0]), r->type);
    }
    uint32_t ft;
    assert_int_equal(llm_gguf_get_u32(ref, "general.file_type", &ft, err, sizeof(err)), 0);
    assert_int_equal(ft, llm_quant_mix_ftype(mix));
    llm_gguf_free(ref);
}

/* Round trip on random rows: Q8_0 within half a step of the input plus the
 * f16 rounding of the scale (127 steps x 2^-11 relative: 0.07 step), Q4_0
 * within one step (its grid is asymmetric: -8..7) plus the same. */
static void test_round_trip(void **state)
{
    float x[256], y[256];
    uint8_t q[256 * 2];
    uint32_t s = 1;
    for (int rep = 0; rep < 50; rep++) {
        for (int i = 0; i < 256; i++) {
            s = s * 1664525u + 1013904223u;
            x[i] = ((float)(s >> 8) / (float)(1 << 24) - 0.5f) * (float)(rep + 1);
        }
        for (int t = 0; t < 2; t++) {
            uint32_t type = t ? LLM_GGML_Q4_0 : LLM_GGML_Q8_0;
            assert_int_equal(llm_quantize_row(type, x, q, 256), 0);
            assert_int_equal(llm_dequant_row(type, q, y, 256), 0);
            for (int b = 0; b < 8; b++) {
                float amax = 0;
                for (int j = 0; j < 32; j++)
                    amax = fmaxf(amax, fabsf(x[32 * b + j]));
                float step = t ? amax / 8.0f : amax / 127.0f;
                for (int j = 0; j < 32; j++)
                    assert_true(fabsf(y[32 * b + j] - x[32 * b + j]) <=
                                (t ? 1.01f : 0.57f) * step + 1e-6f);
            }
        }
    }
    memset(x, 0, sizeof(x));
    assert_int_equal(llm_quantize_row(LLM_GGML_Q4_0, x, q, 256), 0);
    assert_int_equal(llm_dequant_row(LLM_GGML_Q4_0, q, y, 256), 0);
    for (int i = 0; i < 256; i++)
        assert_true(y[i] == 0.0f);
}

/* Round trip through the formats with a search (Q4_K, Q6_K) and Q5_0, on
 * random rows with a spread of magnitudes, and on zeros. Bounds, relative
 * to the largest magnitude of the row's super-block: Q5_0 one step of
 * 32 (1/16), Q6_K one step of 64 (1/32: scales are 8-bit), Q4_K 1.5 steps
 * of 16 over the range (scale and min are 6-bit). */
static void test_round_trip_k(void **state)
{
    static const uint32_t types[3] = { LLM_GGML_Q5_0, LLM_GGML_Q4_K, LLM_GGML_Q6_K };
    static const float bound[3] = { 1.0f / 16.0f * 1.01f, 2.0f * 1.5f / 15.0f,
                                    1.0f / 32.0f * 1.01f };
    float x[512], y[512];
    uint8_t q[512 * 2];
    uint32_t s = 7;
    for (int rep = 0; rep < 40; rep++) {
        for (int i = 0; i < 512; i++) {
            s = s * 1664525u + 1013904223u;
            float u = (float)(s >> 8) / (float)(1 << 24) - 0.5f;
            x[i] = u * (float)(rep + 1) * (i % 37 == 0 ? 8.0f : 1.0f); /* some outliers */
        }
        for (int t = 0; t < 3; t++) {
            assert_int_equal(llm_quantize_row(types[t], x, q, 512), 0);
            assert_int_equal(llm_dequant_row(types[t], q, y, 512), 0);
            uint32_t blk = t == 0 ? 32 : 256;
            for (uint32_t b = 0; b < 512 / blk; b++) {
                float amax = 0;
                for (uint32_t j = 0; j < blk; j++)
                    amax = fmaxf(amax, fabsf(x[blk * b + j]));
                for (uint32_t j = 0; j < blk; j++)
                    if (fabsf(y[blk * b + j] - x[blk * b + j]) > bound[t] * amax + 1e-6f)
                        fail_msg("type %u rep %d element %u: %g for %g (amax %g)", types[t], rep,
                                 blk * b + j, y[blk * b + j], x[blk * b + j], amax);
            }
        }
    }
    memset(x, 0, sizeof(x));
    for (int t = 0; t < 3; t++) {
        assert_int_equal(llm_quantize_row(types[t], x, q, 512), 0);
        assert_int_equal(llm_dequant_row(types[t], q, y, 512), 0);
        for (int i = 0; i < 512; i++)
            assert_true(y[i] == 0.0f);
    }
}

static void test_errors(void **state)
{
    float x[64] = { 0 };
    uint8_t q[128];
    assert_int_equal(llm_quantize_row(LLM_GGML_Q5_K, x, q, 256), -ENOTSUP);
    assert_int_equal(llm_quantize_row(LLM_GGML_Q8_0, x, q, 40), -EINVAL);
    assert_int_equal(llm_quantize_row(LLM_GGML_Q4_K, x, q, 64), -EINVAL); /* blocks of 256 */
    assert_false(llm_quantize_has_type(LLM_GGML_F16));
    /* non-finite values are refused by every format (an f16 file may hold
     * them; converting one to an integer would be undefined) */
    static const uint32_t all[5] = { LLM_GGML_Q8_0, LLM_GGML_Q4_0, LLM_GGML_Q5_0, LLM_GGML_Q4_K,
                                     LLM_GGML_Q6_K };
    float xs[256] = { 0 };
    uint8_t qs[256];
    for (int t = 0; t < 5; t++)
        for (int k = 0; k < 3; k++) {
            xs[200] = k == 0 ? NAN : k == 1 ? INFINITY : -INFINITY;
            assert_int_equal(llm_quantize_row(all[t], xs, qs, 256), -EDOM);
        }
    enum llm_quant_mix mix;
    assert_int_equal(llm_quant_mix_parse("q4_k_s", &mix), -EINVAL);
    assert_int_equal(llm_quant_mix_parse(NULL, &mix), -EINVAL);
    assert_int_equal(llm_quant_mix_parse("q4_k", &mix), 0);
    assert_int_equal(llm_quant_mix_type(mix, "blk.0.ffn_down.weight", 2, 1408), LLM_GGML_Q8_0);
    assert_int_equal(llm_quant_mix_type(mix, "blk.0.ffn_up.weight", 2, 512), LLM_GGML_Q4_K);
    assert_int_equal(llm_quant_mix_type(mix, "blk.0.attn_norm.weight", 1, 512), LLM_GGML_F32);
    assert_int_equal(llm_quant_mix_type(mix, "x.weight", 2, 100), LLM_GGML_F32);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_q8_0_fixture),   cmocka_unit_test(test_q4_0_fixture),
        cmocka_unit_test(test_q4_k_m_fixture), cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_round_trip_k),   cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
