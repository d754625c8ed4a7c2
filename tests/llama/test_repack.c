/* llama/repack.h: the GPU layout of Q4_0, Q8_0 and Q6_K blocks (quants
 * first, scales after, per buffer) keeps every byte and rejects what it cannot
 * lay out. The kernels reading it are checked in test_gpu_quant and
 * test_kernels. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "llama/gguf.h"
#include "llama/repack.h"

/* Where the test expects a block's quants and scales (llama/repack.h). */
static void check_layout(uint32_t type, uint32_t block, uint32_t q_off, uint32_t q_len,
                         uint32_t s_off, uint32_t s_len)
{
    const uint32_t rows = 3, blocks_per_row = 5, rb = blocks_per_row * block,
                   n = rows * blocks_per_row;
    uint8_t *src = malloc(rows * rb), *dst = malloc(rows * rb);
    for (uint32_t i = 0; i < rows * rb; i++)
        src[i] = (uint8_t)(i * 37 + 11);
    assert_int_equal(llm_repack_rows(type, src, rows, rb, dst), 0);
    for (uint32_t b = 0; b < n; b++) {
        /* quants, in block order, then the scales */
        assert_memory_equal(dst + (size_t)b * q_len, src + (size_t)b * block + q_off, q_len);
        assert_memory_equal(dst + (size_t)n * q_len + (size_t)s_len * b,
                            src + (size_t)b * block + s_off, s_len);
    }
    assert_int_equal(llm_repack_rows(type, src, rows, rb - 1, dst), -EINVAL); /* not whole blocks */
    assert_int_equal(llm_repack_rows(type, src, rows, 0, dst), -EINVAL);
    free(src);
    free(dst);
}

static void test_q4_0(void **state)
{
    (void)state;
    assert_true(llm_repacked(LLM_GGML_Q4_0));
    check_layout(LLM_GGML_Q4_0, 18, 2, 16, 0, 2);
}

static void test_q8_0(void **state)
{
    (void)state;
    assert_true(llm_repacked(LLM_GGML_Q8_0));
    check_layout(LLM_GGML_Q8_0, 34, 2, 32, 0, 2);
}

static void test_q6_k(void **state)
{
    (void)state;
    assert_true(llm_repacked(LLM_GGML_Q6_K));
    check_layout(LLM_GGML_Q6_K, 210, 0, 192, 192, 18); /* ql qh | scales d */
}

static void test_others_untouched(void **state)
{
    (void)state;
    const uint32_t others[] = { LLM_GGML_F32,  LLM_GGML_F16,  LLM_GGML_BF16, LLM_GGML_Q4_1,
                                LLM_GGML_Q5_0, LLM_GGML_Q5_1, LLM_GGML_Q4_K, LLM_GGML_Q5_K };
    uint8_t a[64] = { 0 }, b[64];
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        assert_false(llm_repacked(others[i]));
        assert_int_equal(llm_repack_rows(others[i], a, 1, 64, b), -EINVAL);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_q4_0),
        cmocka_unit_test(test_q8_0),
        cmocka_unit_test(test_q6_k),
        cmocka_unit_test(test_others_untouched),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
