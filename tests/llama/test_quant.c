/* llm_quantize_row against ggml's own output: quantising the f16
 * kernelc-22m weights must give the bytes of the shared q8_0 and q4_0
 * fixtures (made by ggml from that file), tensor by tensor; plus error
 * bounds on random rows and the argument checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "llama/dequant.h"
#include "llama/gguf.h"
#include "llama/quant.h"

#define KDIR LADE_SHARED_DIR "/models/kernelc-22m/"

static void matches_fixture(const char *fixture, uint32_t type)
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
        if (r->type != type)
            continue;
        const struct llm_gguf_tensor *s = llm_gguf_find_tensor(src, r->name);
        assert_non_null(s);
        uint64_t cols = s->ne[0], rows = s->n_elements / cols, rb = llm_ggml_row_bytes(type, cols);
        float *row = malloc(cols * sizeof(float));
        uint8_t *q = malloc(rb);
        for (uint64_t k = 0; k < rows; k++) {
            assert_int_equal(llm_dequant_row(s->type, (const uint8_t *)s->data + k * llm_ggml_row_bytes(s->type, cols), row, cols), 0);
            assert_int_equal(llm_quantize_row(type, row, q, cols), 0);
            if (memcmp(q, (const uint8_t *)r->data + k * rb, rb) != 0)
                fail_msg("%s: tensor %s row %llu differs from ggml's", fixture, r->name, (unsigned long long)k);
        }
        free(row);
        free(q);
        compared++;
    }
    assert_true(compared >= 40); /* kernelc-22m: 6 layers x 7 matrices + embedding + output */
    fprintf(stderr, "%s: %u tensors byte-identical to ggml's quantisation\n", fixture, compared);
    llm_gguf_free(src);
    llm_gguf_free(ref);
}

static void test_q8_0_fixture(void **state) { matches_fixture(KDIR "kernelc-22m-q8_0.gguf", LLM_GGML_Q8_0); }
static void test_q4_0_fixture(void **state) { matches_fixture(KDIR "kernelc-22m-q4_0.gguf", LLM_GGML_Q4_0); }

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
                    assert_true(fabsf(y[32 * b + j] - x[32 * b + j]) <= (t ? 1.01f : 0.57f) * step + 1e-6f);
            }
        }
    }
    memset(x, 0, sizeof(x));
    assert_int_equal(llm_quantize_row(LLM_GGML_Q4_0, x, q, 256), 0);
    assert_int_equal(llm_dequant_row(LLM_GGML_Q4_0, q, y, 256), 0);
    for (int i = 0; i < 256; i++)
        assert_true(y[i] == 0.0f);
}

static void test_errors(void **state)
{
    float x[64] = {0};
    uint8_t q[128];
    assert_int_equal(llm_quantize_row(LLM_GGML_Q4_K, x, q, 64), -ENOTSUP);
    assert_int_equal(llm_quantize_row(LLM_GGML_Q8_0, x, q, 40), -EINVAL);
    assert_false(llm_quantize_has_type(LLM_GGML_F16));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_q8_0_fixture),
        cmocka_unit_test(test_q4_0_fixture),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
