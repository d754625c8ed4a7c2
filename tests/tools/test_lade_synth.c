/* tools/lade-synth.c: the random-weight fixtures are shaped like a trained
 * model's in every format (tests/llama/CMakeLists.txt makes 4 x 11 of
 * them): every matrix dequantises (llama/dequant.c, ggml's rules) to
 * values of standard deviation about 1/sqrt(row length) and mean about 0.
 * A format whose weights were all of one sign, or scaled 10x, would still
 * let the GPU match the CPU while testing far less (Q4_0's quants once
 * averaged -d/2, and every logit then shared one offset). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "llama/dequant.h"
#include "llama/gguf.h"

#define ARCH_DIR LADE_BINARY_DIR "/tests/llama/arch/"

static void check_file(const char *file)
{
    char err[256];
    struct llm_gguf *g = NULL;
    if (llm_gguf_open(file, &g, err, sizeof(err)) < 0)
        fail_msg("%s", err);
    for (uint64_t i = 0; i < llm_gguf_n_tensors(g); i++) {
        const struct llm_gguf_tensor *t = llm_gguf_tensor_at(g, i);
        uint64_t n = t->ne[0], rows = t->ne[1], rb = llm_ggml_row_bytes(t->type, n);
        if (rows == 1)
            continue; /* norms, biases, rope_freqs: not random matrices */
        float *y = malloc(n * sizeof(float));
        double s = 0, s2 = 0;
        for (uint64_t r = 0; r < rows; r++) {
            assert_int_equal(llm_dequant_row(t->type, (const uint8_t *)t->data + r * rb, y, n), 0);
            for (uint64_t k = 0; k < n; k++) {
                s += y[k];
                s2 += (double)y[k] * y[k];
            }
        }
        free(y);
        double cnt = (double)n * (double)rows, mean = s / cnt;
        double sd = sqrt(s2 / cnt - mean * mean), want = 1.0 / sqrt((double)n);
        if (!(sd > 0.8 * want && sd < 1.25 * want && fabs(mean) < 0.1 * sd))
            fail_msg("%s %s (%s): mean %.4g, std %.4g, want std %.4g and mean near 0", file,
                     t->name, llm_ggml_type_name(t->type), mean, sd, want);
    }
    llm_gguf_free(g);
}

static void test_fixtures(void **state)
{
    static const char *const variants[] = { "llama-gqa", "llama-yarn", "qwen2", "qwen3" };
    static const char *const formats[] = { "f32",  "f16",  "bf16", "q8_0", "q4_0", "q4_1",
                                           "q5_0", "q5_1", "q4_k", "q5_k", "q6_k" };
    char file[512];
    (void)state;
    for (size_t v = 0; v < 4; v++)
        for (size_t f = 0; f < sizeof(formats) / sizeof(formats[0]); f++) {
            snprintf(file, sizeof(file), ARCH_DIR "%s-%s.gguf", variants[v], formats[f]);
            check_file(file);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
