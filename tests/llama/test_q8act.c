/* llama/q8act.c, the integer path's CPU arithmetic: the reciprocal is
 * within 2 ULP of 1/a over the range the quantiser uses, a block's largest
 * value becomes +-127 and the others stay within half a step, tiny and
 * zero blocks are all zero, and the per-block dots and terms agree with
 * the dequantised weights (test_gpu_idot compares the GPU to these). */
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
        assert_int_equal(q.q[at], rep & 1 ? -127 : 127);
        int32_t s = 0;
        for (int i = 0; i < 32; i++) {
            s += q.q[i];
            assert_true(fabs(x[i] - q.d * q.q[i]) <= 0.5001 * q.d);
        }
        assert_int_equal(s, q.s);
    }
    memset(x, 0, sizeof(x));
    x[3] = 0x1p-101f;
    llm_q8_quantize(x, &q);
    assert_true(q.d == 0.0f && q.s == 0 && q.q[3] == 0);
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
                want += (double)w[i] * q.d * q.q[i];
            float term = llm_q8_block_term(types[t], blk, &q);
            assert_true(fabs(term - want) <= 1e-5 * (fabs(want) + 1e-3));
            assert_true(llm_q8_weight_type(types[t]));
        }
    }
    assert_false(llm_q8_weight_type(LLM_GGML_Q4_K));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recip),
        cmocka_unit_test(test_quantize),
        cmocka_unit_test(test_terms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
