/* The integer path's arithmetic on the CPU (q8act.h). Built with
 * -ffp-contract=off (llama/CMakeLists.txt): the GPU rounds each * and +
 * separately (`precise`), so must this. */
#include "llama/q8act.h"

#include <math.h>
#include <string.h>

#include "llama/dequant.h"
#include "llama/gguf.h"

static float bits_f(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint32_t f_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

float llm_q8_recip(float a)
{
    float y = bits_f(0x7ef311c3u - f_bits(a));
    for (int i = 0; i < 3; i++) {
        float e = 2.0f - a * y;
        y = y * e;
    }
    return y;
}

void llm_q8_quantize(const float *x, struct llm_q8_block *ret)
{
    float amax = 0.0f;
    for (int i = 0; i < LLM_Q8_BLOCK; i++)
        amax = fmaxf(amax, fabsf(x[i]));
    memset(ret, 0, sizeof(*ret));
    if (!(amax >= 0x1p-100f))
        return;
    ret->d = amax * bits_f(0x3c010204u); /* fl(1/127) */
    float id = llm_q8_recip(ret->d);
    for (int i = 0; i < LLM_Q8_BLOCK; i++) {
        float v = nearbyintf(x[i] * id); /* ties to even: the default rounding mode */
        int q = v > 127.0f ? 127 : v < -127.0f ? -127 : (int)v;
        ret->q[i] = (int8_t)q;
        ret->s += q;
    }
}

bool llm_q8_weight_type(uint32_t t)
{
    return t == LLM_GGML_Q8_0 || t == LLM_GGML_Q4_0 || t == LLM_GGML_Q4_1 || t == LLM_GGML_Q5_0 ||
           t == LLM_GGML_Q5_1;
}

static uint16_t u16_at(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

/* The block's scale, min (0 where none) and element j's stored quant. */
struct wblk {
    float d, m;
    int q[LLM_Q8_BLOCK];
};

static void w_decode(uint32_t t, const uint8_t *b, struct wblk *w)
{
    w->d = llm_f16_to_f32(u16_at(b));
    w->m = 0.0f;
    if (t == LLM_GGML_Q8_0) {
        for (int j = 0; j < 32; j++)
            w->q[j] = (int8_t)b[2 + j];
        return;
    }
    uint32_t qh = 0;
    const uint8_t *qs;
    if (t == LLM_GGML_Q4_0) {
        qs = b + 2;
    } else if (t == LLM_GGML_Q4_1) {
        w->m = llm_f16_to_f32(u16_at(b + 2));
        qs = b + 4;
    } else if (t == LLM_GGML_Q5_0) {
        memcpy(&qh, b + 2, 4);
        qs = b + 6;
    } else {
        w->m = llm_f16_to_f32(u16_at(b + 2));
        memcpy(&qh, b + 4, 4);
        qs = b + 8;
    }
    for (int j = 0; j < 16; j++) {
        w->q[j] = (qs[j] & 15) | (int)(((qh >> j) & 1) << 4);
        w->q[j + 16] = (qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
    }
}

int32_t llm_q8_block_dot(uint32_t t, const uint8_t *wblock, const struct llm_q8_block *a)
{
    struct wblk w;
    w_decode(t, wblock, &w);
    int32_t s = 0;
    for (int j = 0; j < 32; j++)
        s += w.q[j] * a->q[j];
    return s;
}

float llm_q8_block_term(uint32_t t, const uint8_t *wblock, const struct llm_q8_block *a)
{
    struct wblk w;
    w_decode(t, wblock, &w);
    int32_t i = 0;
    for (int j = 0; j < 32; j++)
        i += w.q[j] * a->q[j];
    if (t == LLM_GGML_Q4_0)
        i -= 8 * a->s;
    else if (t == LLM_GGML_Q5_0)
        i -= 16 * a->s;
    float s = w.d * a->d;
    float v = s * (float)i;
    if (t == LLM_GGML_Q4_1 || t == LLM_GGML_Q5_1) {
        float u = a->d * (float)a->s;
        float mu = w.m * u;
        v = v + mu;
    }
    return v;
}

void llm_q8_row_lanes(uint32_t t, const uint8_t *wrow, const struct llm_q8_block *a, uint32_t nb,
                      uint32_t lanes, float *partials)
{
    size_t bytes = llm_ggml_row_bytes(t, LLM_Q8_BLOCK);
    for (uint32_t l = 0; l < lanes; l++) {
        float acc = 0.0f;
        for (uint32_t b = l; b < nb; b += lanes)
            acc = acc + llm_q8_block_term(t, wrow + b * bytes, a + b);
        partials[l] = acc;
    }
}
