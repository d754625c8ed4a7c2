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

/* roundEven(v) within +-127 (ties to even: the default rounding mode) */
static int8_t q8_round(float v)
{
    float r = nearbyintf(v);
    return (int8_t)(r > 127.0f ? 127 : r < -127.0f ? -127 : (int)r);
}

void llm_q8_quantize(const float *x, struct llm_q8_block *ret)
{
    float amax = 0.0f;
    for (int i = 0; i < LLM_Q8_BLOCK; i++)
        amax = fmaxf(amax, fabsf(x[i]));
    memset(ret, 0, sizeof(*ret));
    if (!(amax >= 0x1p-92f))
        return;
    float d1 = amax * bits_f(0x3c010204u); /* fl(1/127) */
    float id = llm_q8_recip(d1), id2 = id * 256.0f;
    for (int i = 0; i < LLM_Q8_BLOCK; i++) {
        ret->q1[i] = q8_round(x[i] * id);
        float p = d1 * (float)ret->q1[i];
        float r = x[i] - p;
        ret->q2[i] = q8_round(r * id2);
        ret->s += llm_q8_value(ret, i);
    }
    ret->d = d1 * 0x1p-8f;
}

bool llm_q8_weight_type(uint32_t t)
{
    return t == LLM_GGML_Q8_0 || t == LLM_GGML_Q4_0 || t == LLM_GGML_Q4_1 || t == LLM_GGML_Q5_0 ||
           t == LLM_GGML_Q5_1 || t == LLM_GGML_Q4_K || t == LLM_GGML_Q5_K || t == LLM_GGML_Q6_K;
}

static uint16_t u16_at(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

/* A 32-block's scales as matmul_q8.comp's w_block gives them to term()
 * (d, and m: the min, 0 where none; Q6_K's second half's scale) and its
 * element j's quant as it enters the dot. */
struct wblk {
    float d, m;
    int q[LLM_Q8_BLOCK];
};

/* Q4_K (144 bytes: d dmin scales[12] qs[128]), Q5_K (176: d dmin
 * scales[12] qh[32] qs[128]): element l of sub-block j is nibble j & 1
 * of qs[32 (j >> 1) + l], with bit j of qh[l] as its fifth bit. d sc and
 * dmin mi are exact (an f16 times a 6-bit integer); m = -(dmin mi) makes
 * the element d sc q - dmin mi a _1 format's. */
static void w_decode_k45(uint32_t t, const uint8_t *b, uint32_t j, struct wblk *w)
{
    int sc, mi;
    llm_k_scale_min(b + 4, (int)j, &sc, &mi);
    w->d = llm_f16_to_f32(u16_at(b)) * (float)sc;
    w->m = -(llm_f16_to_f32(u16_at(b + 2)) * (float)mi);
    const uint8_t *qs = b + (t == LLM_GGML_Q4_K ? 16 : 48) + 32 * (j >> 1);
    for (int l = 0; l < 32; l++) {
        int q = (qs[l] >> (4 * (j & 1))) & 15;
        if (t == LLM_GGML_Q5_K)
            q |= ((b[16 + l] >> j) & 1) << 4;
        w->q[l] = q;
    }
}

/* Q6_K as stored in the file (210 bytes: ql[128] qh[64] scales[16] d;
 * the GPU reads it repacked): sub-block j = 4 h + k, element l: low 4
 * bits nibble k >> 1 of ql[64 h + 32 (k & 1) + l], top 2 bits 2k, 2k+1
 * of qh[32 h + l], q - 32; elements 0-15 scale scales[2j], 16-31
 * scales[2j + 1]. d = d sc0, m = d sc1, exact. */
static void w_decode_q6_k(const uint8_t *b, uint32_t j, struct wblk *w)
{
    uint32_t h = j >> 2, k = j & 3;
    float d = llm_f16_to_f32(u16_at(b + 208));
    w->d = d * (float)(int8_t)b[192 + 2 * j];
    w->m = d * (float)(int8_t)b[193 + 2 * j];
    for (int l = 0; l < 32; l++) {
        int lo = (b[64 * h + 32 * (k & 1) + l] >> (4 * (k >> 1))) & 15;
        int hi = (b[128 + 32 * h + l] >> (2 * k)) & 3;
        w->q[l] = (lo | (hi << 4)) - 32;
    }
}

static void w_decode(uint32_t t, const uint8_t *b, uint32_t sub, struct wblk *w)
{
    if (t == LLM_GGML_Q4_K || t == LLM_GGML_Q5_K) {
        w_decode_k45(t, b, sub, w);
        return;
    }
    if (t == LLM_GGML_Q6_K) {
        w_decode_q6_k(b, sub, w);
        return;
    }
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

/* The dots over elements 0-15 and 16-31 (Q6_K scales them apart), each
 * 256 dot(qw, q1) + dot(qw, q2) as the kernel adds them: exact. */
static void w_dots(const struct wblk *w, const struct llm_q8_block *a, int32_t *ret_i0,
                   int32_t *ret_i1)
{
    int32_t i0 = 0, i1 = 0;
    for (int j = 0; j < 16; j++) {
        i0 += w->q[j] * llm_q8_value(a, j);
        i1 += w->q[j + 16] * llm_q8_value(a, j + 16);
    }
    *ret_i0 = i0;
    *ret_i1 = i1;
}

int32_t llm_q8_block_dot(uint32_t t, const uint8_t *w, uint32_t sub, const struct llm_q8_block *a)
{
    struct wblk wb;
    int32_t i0, i1;
    w_decode(t, w, sub, &wb);
    w_dots(&wb, a, &i0, &i1);
    return i0 + i1;
}

float llm_q8_block_term(uint32_t t, const uint8_t *w, uint32_t sub, const struct llm_q8_block *a)
{
    struct wblk wb;
    int32_t i0, i1;
    w_decode(t, w, sub, &wb);
    w_dots(&wb, a, &i0, &i1);
    if (t == LLM_GGML_Q6_K) {
        float s0 = wb.d * a->d;
        float v0 = s0 * (float)i0;
        float s1 = wb.m * a->d;
        float v1 = s1 * (float)i1;
        return v0 + v1;
    }
    int32_t i = i0 + i1;
    if (t == LLM_GGML_Q4_0)
        i -= 8 * a->s;
    else if (t == LLM_GGML_Q5_0)
        i -= 16 * a->s;
    float s = wb.d * a->d;
    float v = s * (float)i;
    if (t == LLM_GGML_Q4_1 || t == LLM_GGML_Q5_1 || t == LLM_GGML_Q4_K || t == LLM_GGML_Q5_K) {
        float u = a->d * (float)a->s;
        float mu = wb.m * u;
        v = v + mu;
    }
    return v;
}

void llm_q8_row_lanes(uint32_t t, const uint8_t *wrow, const struct llm_q8_block *a, uint32_t nb,
                      uint32_t lanes, float *partials)
{
    /* a weight block holds `per` blocks of 32 (8 for the K-quants) */
    uint32_t bytes = llm_ggml_block_bytes(t), per = llm_ggml_block_elems(t) / LLM_Q8_BLOCK;
    for (uint32_t l = 0; l < lanes; l++) {
        float acc = 0.0f;
        for (uint32_t b = l; b < nb; b += lanes)
            acc = acc + llm_q8_block_term(t, wrow + (size_t)(b / per) * bytes, b % per, a + b);
        partials[l] = acc;
    }
}
