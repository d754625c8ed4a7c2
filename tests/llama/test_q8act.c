/* llama/q8act.c, the integer path's CPU arithmetic: the reciprocal is
 * within 2 ULP of 1/a over the range the quantiser uses, a block's largest
 * value's high plane becomes +-127, every value is within half a step of
 * the two planes' scale d (a step where the low plane is clamped), tiny
 * and zero blocks are all zero, and the per-block dots and terms agree with
 * the dequantised weights, for the K-quants' 32-blocks too (test_gpu_idot
 * compares the GPU to these). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "llama/dequant.h"
#include "llama/gguf.h"
#include "llama/q8act.h"
#include "llama/quant.h"

static uint32_t rng = 3;
static float rndf(void)
{
    rng = rng * 1664525u + 1013904223u;
    return (float)((int)((rng >> 8) % 20001) - 10000) / 10000.0f;
}

static void test_recip(void **state)
{
    (void)state;
    for (int e = -107; e <= 120; e++)
        for (int i = 0; i < 64; i++) {
            float a = ldexpf(1.0f + (float)i / 64.0f, e), r = llm_q8_recip(a);
            double want = 1.0 / a;
            assert_true(fabs(r - want) <= 2.0 * (nextafterf((float)want, INFINITY) - (float)want));
        }
}

static void test_quantize(void **state)
{
    (void)state;
    float x[32];
    struct llm_q8_block q;
    for (int rep = 0; rep < 200; rep++) {
        float scale = ldexpf(1.0f, rep % 40 - 20);
        int at = rep % 32;
        for (int i = 0; i < 32; i++)
            x[i] = rndf() * scale;
        x[at] = (rep & 1 ? -1.5f : 1.5f) * scale;
        llm_q8_quantize(x, &q);
        assert_int_equal(q.q1[at], rep & 1 ? -127 : 127);
        int32_t s = 0;
        for (int i = 0; i < 32; i++) {
            int32_t v = llm_q8_value(&q, i);
            s += v;
            assert_true(abs(q.q1[i]) <= 127 && abs(q.q2[i]) <= 127);
            double err = fabs(x[i] - (double)q.d * v);
            if (err > (abs(q.q2[i]) == 127 ? 1.01 : 0.5001) * q.d)
                fail_msg("rep %d x[%d] %.9g: %d %d, d %.9g, error %.3g d", rep, i, x[i], q.q1[i],
                         q.q2[i], q.d, err / q.d);
        }
        assert_int_equal(s, q.s);
    }
    memset(x, 0, sizeof(x));
    x[3] = 0x1p-93f;
    llm_q8_quantize(x, &q);
    assert_true(q.d == 0.0f && q.s == 0 && q.q1[3] == 0 && q.q2[3] == 0);
    x[3] = 0x1p-92f; /* the floor itself quantises */
    llm_q8_quantize(x, &q);
    assert_true(q.d > 0.0f && q.q1[3] == 127);
}

/* d_a sum_i w_i q_i (the dequantised weights) against the term. */
static void test_terms(void **state)
{
    (void)state;
    const uint32_t types[] = { LLM_GGML_Q8_0, LLM_GGML_Q4_0, LLM_GGML_Q4_1, LLM_GGML_Q5_0,
                               LLM_GGML_Q5_1 };
    for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
        uint8_t blk[40];
        for (int rep = 0; rep < 50; rep++) {
            for (size_t i = 0; i < sizeof(blk); i++)
                blk[i] = (uint8_t)(rndf() * 127 + 128);
            uint16_t h = llm_f32_to_f16(0.01f), hm = llm_f32_to_f16(-0.05f);
            memcpy(blk, &h, 2);
            if (types[t] == LLM_GGML_Q4_1 || types[t] == LLM_GGML_Q5_1)
                memcpy(blk + 2, &hm, 2);
            float w[32], x[32];
            assert_int_equal(llm_dequant_row(types[t], blk, w, 32), 0);
            for (int i = 0; i < 32; i++)
                x[i] = rndf();
            struct llm_q8_block q;
            llm_q8_quantize(x, &q);
            double want = 0;
            for (int i = 0; i < 32; i++)
                want += (double)w[i] * q.d * llm_q8_value(&q, i);
            float term = llm_q8_block_term(types[t], blk, 0, &q);
            assert_true(fabs(term - want) <= 1e-5 * (fabs(want) + 1e-3));
            assert_true(llm_q8_weight_type(types[t]));
        }
    }
    assert_false(llm_q8_weight_type(LLM_GGML_Q2_K));
    assert_false(llm_q8_weight_type(LLM_GGML_F16));
}

/* A K-quant super-block (ggml layout) of random bytes with f16 d (and
 * dmin) at their places; `unit`: d = 1, dmin = 0 and every scale 1, so
 * that the dequantised weights are the quants themselves (q - 32 for
 * Q6_K). */
static void k_block(uint32_t t, uint8_t *b, bool unit)
{
    uint32_t bytes = llm_ggml_block_bytes(t);
    for (uint32_t i = 0; i < bytes; i++)
        b[i] = (uint8_t)(rndf() * 127 + 128);
    uint16_t d = llm_f32_to_f16(unit ? 1.0f : 0.002f * (1.0f + rndf()));
    uint16_t dmin = llm_f32_to_f16(unit ? 0.0f : 0.004f * (1.0f + rndf()));
    if (t == LLM_GGML_Q6_K) {
        memcpy(b + 208, &d, 2);
        if (unit)
            memset(b + 192, 1, 16);
        return;
    }
    memcpy(b, &d, 2);
    memcpy(b + 2, &dmin, 2);
    if (unit) { /* scales 1 (bytes 0-3, low nibbles of 8-11), mins 0 */
        static const uint8_t sc[12] = { 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1 };
        memcpy(b + 4, sc, 12);
    }
}

/* The K-quants' 32-blocks (sub-blocks of a super-block): with unit scales
 * the integer dot is sum w_i q_i of the dequantised weights, exactly;
 * with random ones the term is d_a sum_i w_i q_i within rounding (the
 * term's four roundings and the dequantiser's one, against the sizes of
 * the products it adds and of the min's part, here bounded through
 * max |w|). */
static void test_k_terms(void **state)
{
    (void)state;
    const uint32_t types[] = { LLM_GGML_Q4_K, LLM_GGML_Q5_K, LLM_GGML_Q6_K };
    for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
        assert_true(llm_q8_weight_type(types[t]));
        uint8_t blk[210];
        float w[256], x[32];
        for (int rep = 0; rep < 40; rep++) {
            bool unit = rep < 10;
            k_block(types[t], blk, unit);
            assert_int_equal(llm_dequant_row(types[t], blk, w, 256), 0);
            float wmax = 0;
            for (int i = 0; i < 256; i++)
                wmax = fmaxf(wmax, fabsf(w[i]));
            for (uint32_t sub = 0; sub < 8; sub++) {
                for (int i = 0; i < 32; i++)
                    x[i] = rndf();
                struct llm_q8_block q;
                llm_q8_quantize(x, &q);
                const float *ws = w + 32 * sub;
                if (unit) {
                    int32_t want = 0;
                    for (int i = 0; i < 32; i++)
                        want += (int32_t)ws[i] * llm_q8_value(&q, i);
                    assert_int_equal(llm_q8_block_dot(types[t], blk, sub, &q), want);
                    continue;
                }
                double want = 0, mag = 0;
                for (int i = 0; i < 32; i++) {
                    want += (double)ws[i] * q.d * llm_q8_value(&q, i);
                    mag += (fabs(ws[i]) + 2.0 * wmax) * q.d * abs(llm_q8_value(&q, i));
                }
                float term = llm_q8_block_term(types[t], blk, sub, &q);
                if (fabs(term - want) > 1e-6 * mag + 1e-30)
                    fail_msg("type %u sub %u: term %.9g, dequantised %.9g (size %.3g)", types[t],
                             sub, term, want, mag);
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recip),
        cmocka_unit_test(test_quantize),
        cmocka_unit_test(test_terms),
        cmocka_unit_test(test_k_terms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
