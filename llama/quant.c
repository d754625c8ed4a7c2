/* Reference quantisation to Q8_0 and Q4_0 (llama/quant.h). The rounding
 * rules are ggml's, to the bit: a file lade writes dequantises to exactly
 * what the same file from llama.cpp does. */
#include "llama/quant.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "llama/dequant.h"
#include "llama/gguf.h"

bool llm_quantize_has_type(uint32_t t)
{
    return t == LLM_GGML_Q8_0 || t == LLM_GGML_Q4_0;
}

static void put16(uint8_t *p, uint16_t v)
{
    memcpy(p, &v, 2);
}

/* Q8_0, 34 bytes: d = max|x| / 127 as f16, q = round(x / d) with the
 * reciprocal taken in f32 before rounding to f16 (as ggml does). */
static void q8_0_block(const float *x, uint8_t *b)
{
    float amax = 0.0f;
    for (int j = 0; j < 32; j++)
        amax = fmaxf(amax, fabsf(x[j]));
    float d = amax / 127.0f;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    put16(b, llm_f32_to_f16(d));
    for (int j = 0; j < 32; j++)
        b[2 + j] = (uint8_t)(int8_t)roundf(x[j] * id);
}

/* Q4_0, 18 bytes: the value of largest magnitude (with its sign) maps to
 * -8; d = max / -8; q = min(15, trunc(x / d + 8.5)). Element j sits in the
 * low nibble of qs[j], element j + 16 in its high nibble. */
static void q4_0_block(const float *x, uint8_t *b)
{
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < 32; j++)
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    float d = max / -8.0f;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    put16(b, llm_f32_to_f16(d));
    for (int j = 0; j < 16; j++) {
        int q0 = (int)(int8_t)(x[j] * id + 8.5f);
        int q1 = (int)(int8_t)(x[j + 16] * id + 8.5f);
        q0 = q0 < 15 ? q0 : 15;
        q1 = q1 < 15 ? q1 : 15;
        b[2 + j] = (uint8_t)(q0 | (q1 << 4));
    }
}

int llm_quantize_row(uint32_t type, const float *src, void *dst, uint64_t n)
{
    if (!llm_quantize_has_type(type))
        return -ENOTSUP;
    if (n % 32)
        return -EINVAL;
    uint8_t *out = dst;
    uint32_t bb = llm_ggml_block_bytes(type);
    for (uint64_t i = 0; i < n / 32; i++) {
        if (type == LLM_GGML_Q8_0)
            q8_0_block(src + 32 * i, out + bb * i);
        else
            q4_0_block(src + 32 * i, out + bb * i);
    }
    return 0;
}
