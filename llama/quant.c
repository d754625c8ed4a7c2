/* Reference quantisation to Q8_0, Q4_0, Q5_0, Q4_K and Q6_K
 * (llama/quant.h). The rounding rules and searches are ggml's reference
 * quantisers', to the bit: a file lade writes dequantises to exactly what
 * the same file from llama.cpp does (tests/llama/test_quant.c compares
 * bytes with the shared fixtures). Sums run in the order ggml's do and in
 * float, as there: a different order would pick other quants now and then. */
#include "llama/quant.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "llama/dequant.h"
#include "llama/gguf.h"

bool llm_quantize_has_type(uint32_t t)
{
    return t == LLM_GGML_Q8_0 || t == LLM_GGML_Q4_0 || t == LLM_GGML_Q5_0 || t == LLM_GGML_Q4_K ||
           t == LLM_GGML_Q6_K;
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

/* The first value of largest magnitude, with its sign (0 for none). */
static float signed_absmax(const float *x, int n)
{
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; j++)
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    return max;
}

/* Q4_0, 18 bytes: the value of largest magnitude (with its sign) maps to
 * -8; d = max / -8; q = min(15, trunc(x / d + 8.5)). Element j sits in the
 * low nibble of qs[j], element j + 16 in its high nibble. */
static void q4_0_block(const float *x, uint8_t *b)
{
    float max = signed_absmax(x, 32);
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

/* Q5_0, 22 bytes (d, qh, qs): as Q4_0 with 5 bits, -16 .. 15; bit 4 of
 * element j goes to bit j of qh. */
static void q5_0_block(const float *x, uint8_t *b)
{
    float max = signed_absmax(x, 32);
    float d = max / -16.0f;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    put16(b, llm_f32_to_f16(d));
    uint32_t qh = 0;
    for (int j = 0; j < 16; j++) {
        int q0 = (int)(int8_t)(x[j] * id + 16.5f);
        int q1 = (int)(int8_t)(x[j + 16] * id + 16.5f);
        q0 = q0 < 31 ? q0 : 31;
        q1 = q1 < 31 ? q1 : 31;
        b[6 + j] = (uint8_t)((q0 & 15) | ((q1 & 15) << 4));
        qh |= (uint32_t)((q0 & 16) >> 4) << j;
        qh |= (uint32_t)((q1 & 16) >> 4) << (j + 16);
    }
    memcpy(b + 2, &qh, 4);
}

/* Round to nearest, ties to even, for |v| < 2^22 (ggml's nearest_int). */
static int nearest_int(float v)
{
    float t = v + 12582912.0f;
    int32_t i;
    memcpy(&i, &t, 4);
    return (i & 0x007fffff) - 0x00400000;
}

static int clampi(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Scale and min of a Q4_K sub-block: quants L in 0..nmax with x ~ scale L
 * - the_min, by weighted least squares over nstep + 1 trial scales around
 * nmax / (max - min) (ggml's make_qkx2_quants, squared error). */
static float qkx2_quants(int n, int nmax, const float *x, const float *w, uint8_t *L,
                         float *the_min, uint8_t *Laux, float rmin, float rdelta, int nstep)
{
    float min = x[0], max = x[0], sum_w = w[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min)
            min = x[i];
        if (x[i] > max)
            max = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (min > 0)
        min = 0;
    if (max == min) {
        memset(L, 0, (size_t)n);
        *the_min = -min;
        return 0.0f;
    }
    float iscale = nmax / (max - min), scale = 1 / iscale, best = 0;
    for (int i = 0; i < n; i++) {
        L[i] = (uint8_t)clampi(nearest_int(iscale * (x[i] - min)), 0, nmax);
        float diff = scale * L[i] + min - x[i];
        best += w[i] * (diff * diff);
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = clampi(nearest_int(iscale * (x[i] - min)), 0, nmax);
            Laux[i] = (uint8_t)l;
            sum_l += w[i] * l;
            sum_l2 += w[i] * l * l;
            sum_xl += w[i] * l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float mad = 0;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                mad += w[i] * (diff * diff);
            }
            if (mad < best) {
                memcpy(L, Laux, (size_t)n);
                best = mad;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/* Q4_K, 144 bytes a super-block of 256 (d, dmin, 12 bytes of 6-bit scales
 * and mins, 128 of nibbles): each sub-block of 32 gets its scale and min by
 * qkx2_quants, weighted by rms + |x|; those are quantised to 6 bits
 * against the largest of each, and the quants recomputed from them. */
static void q4_k_block(const float *x, uint8_t *b)
{
    uint8_t L[256], Laux[32], sc[12] = { 0 };
    float w[32], mins[8], scales[8], max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; j++) {
        const float *xs = x + 32 * j;
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++)
            sum_x2 += xs[l] * xs[l];
        float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++)
            w[l] = av_x + fabsf(xs[l]);
        scales[j] = qkx2_quants(32, 15, xs, w, L + 32 * j, &mins[j], Laux, -1.0f, 0.1f, 20);
        if (scales[j] > max_scale)
            max_scale = scales[j];
        if (mins[j] > max_min)
            max_min = mins[j];
    }
    float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
    float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
    for (int j = 0; j < 8; j++) {
        uint8_t ls = (uint8_t)nearest_int(inv_scale * scales[j]);
        uint8_t lm = (uint8_t)nearest_int(inv_min * mins[j]);
        ls = ls < 63 ? ls : 63;
        lm = lm < 63 ? lm : 63;
        if (j < 4) {
            sc[j] = ls;
            sc[j + 4] = lm;
        } else {
            sc[j + 4] = (uint8_t)((ls & 15) | ((lm & 15) << 4));
            sc[j - 4] |= (uint8_t)((ls >> 4) << 6);
            sc[j] |= (uint8_t)((lm >> 4) << 6);
        }
    }
    uint16_t hd = llm_f32_to_f16(max_scale / 63.0f), hm = llm_f32_to_f16(max_min / 63.0f);
    put16(b, hd);
    put16(b + 2, hm);
    memcpy(b + 4, sc, 12);
    for (int j = 0; j < 8; j++) {
        /* the 6-bit scale and min of sub-block j (see dequant.c) */
        uint8_t s, m;
        if (j < 4) {
            s = sc[j] & 63;
            m = sc[j + 4] & 63;
        } else {
            s = (uint8_t)((sc[j + 4] & 15) | ((sc[j - 4] >> 6) << 4));
            m = (uint8_t)((sc[j + 4] >> 4) | ((sc[j] >> 6) << 4));
        }
        float d = llm_f16_to_f32(hd) * s;
        if (d == 0.0f)
            continue;
        float dm = llm_f16_to_f32(hm) * m;
        for (int i = 0; i < 32; i++)
            L[32 * j + i] = (uint8_t)clampi(nearest_int((x[32 * j + i] + dm) / d), 0, 15);
    }
    uint8_t *q = b + 16;
    for (int j = 0; j < 256; j += 64, q += 32)
        for (int l = 0; l < 32; l++)
            q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
}

/* A symmetric scale for n values in -nmax .. nmax-1, weighted by x^2
 * (ggml's make_qx_quants with rmse_type 1): the best of 19 trial scales
 * around -nmax / max by weighted least squares; L gets the quants + nmax
 * of the best (kept where the final scale of a group rounds to 0). */
static float qx_quants(int n, int nmax, const float *x, uint8_t *L)
{
    float max = signed_absmax(x, n);
    if (fabsf(max) < 1e-15f) {
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    float iscale = -nmax / max, sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = clampi(nearest_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (uint8_t)(l + nmax);
        float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 != 0 ? sumlx / suml2 : 0.0f, best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0)
            continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = clampi(nearest_int(iscale * x[i]), -nmax, nmax - 1);
            float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++)
                L[i] = (uint8_t)(nmax + clampi(nearest_int(iscale * x[i]), -nmax, nmax - 1));
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Q6_K, 210 bytes a super-block (ql[128], qh[64], 16 int8 scales, d):
 * a scale per 16 by qx_quants, quantised to 8 bits against the one of
 * largest magnitude (which maps to -128), quants in -32 .. 31 from those. */
static void q6_k_block(const float *x, uint8_t *b)
{
    float scales[16], max_scale = 0, max_abs = 0;
    uint8_t L[256];
    for (int ib = 0; ib < 16; ib++) {
        scales[ib] = qx_quants(16, 32, x + 16 * ib, L + 16 * ib);
        if (fabsf(scales[ib]) > max_abs) {
            max_abs = fabsf(scales[ib]);
            max_scale = scales[ib];
        }
    }
    memset(b, 0, 210);
    if (max_abs < 1e-15f)
        return;
    float iscale = -128.0f / max_scale;
    uint16_t hd = llm_f32_to_f16(1 / iscale);
    put16(b + 208, hd);
    int8_t *sc = (int8_t *)(b + 192);
    for (int ib = 0; ib < 16; ib++) {
        int v = nearest_int(iscale * scales[ib]);
        sc[ib] = (int8_t)(v < 127 ? v : 127);
    }
    for (int j = 0; j < 16; j++) {
        float d = llm_f16_to_f32(hd) * sc[j];
        if (d == 0.0f)
            continue;
        for (int i = 0; i < 16; i++)
            L[16 * j + i] = (uint8_t)(clampi(nearest_int(x[16 * j + i] / d), -32, 31) + 32);
    }
    uint8_t *ql = b, *qh = b + 128;
    for (int j = 0; j < 256; j += 128, ql += 64, qh += 32)
        for (int l = 0; l < 32; l++) {
            ql[l] = (uint8_t)((L[j + l] & 15) | ((L[j + l + 64] & 15) << 4));
            ql[l + 32] = (uint8_t)((L[j + l + 32] & 15) | ((L[j + l + 96] & 15) << 4));
            qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) |
                              ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
        }
}

int llm_quantize_row(uint32_t type, const float *src, void *dst, uint64_t n)
{
    if (!llm_quantize_has_type(type))
        return -ENOTSUP;
    uint32_t be = type == LLM_GGML_Q4_K || type == LLM_GGML_Q6_K ? 256 : 32; /* elements a block */
    if (n % be)
        return -EINVAL;
    /* A NaN or infinity (an f16 file can hold them) has no quantised value,
     * and converting one to an integer is undefined behaviour. */
    for (uint64_t i = 0; i < n; i++)
        if (!isfinite(src[i]))
            return -EDOM;
    uint8_t *out = dst;
    uint32_t bb = llm_ggml_block_bytes(type);
    for (uint64_t i = 0; i < n / be; i++) {
        const float *x = src + be * i;
        uint8_t *b = out + bb * i;
        switch (type) {
        case LLM_GGML_Q8_0: q8_0_block(x, b); break;
        case LLM_GGML_Q4_0: q4_0_block(x, b); break;
        case LLM_GGML_Q5_0: q5_0_block(x, b); break;
        case LLM_GGML_Q4_K: q4_k_block(x, b); break;
        default: q6_k_block(x, b); break;
        }
    }
    return 0;
}

int llm_quant_mix_parse(const char *s, enum llm_quant_mix *ret)
{
    static const char *const names[] = { "q8_0", "q4_0", "q5_0", "q4_k", "q6_k", "q4_k_m" };
    for (int i = 0; i < (int)(sizeof(names) / sizeof(names[0])); i++)
        if (s && !strcmp(s, names[i])) {
            *ret = (enum llm_quant_mix)i;
            return 0;
        }
    return -EINVAL;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

uint32_t llm_quant_mix_type(enum llm_quant_mix mix, const char *name, uint32_t n_dims,
                            uint64_t cols)
{
    static const uint32_t plain[] = { LLM_GGML_Q8_0, LLM_GGML_Q4_0, LLM_GGML_Q5_0, LLM_GGML_Q4_K,
                                      LLM_GGML_Q6_K };
    if (n_dims < 2 || cols % 32)
        return LLM_GGML_F32;
    uint32_t t;
    if (mix == LLM_MIX_Q4_K_M)
        t = !strcmp(name, "output.weight") || ends_with(name, ".attn_v.weight") ? LLM_GGML_Q6_K :
                                                                                  LLM_GGML_Q4_K;
    else
        t = plain[mix];
    if ((t == LLM_GGML_Q4_K || t == LLM_GGML_Q6_K) && cols % 256)
        t = LLM_GGML_Q8_0;
    return t;
}

uint32_t llm_quant_mix_ftype(enum llm_quant_mix mix)
{
    /* LLAMA_FTYPE_MOSTLY_Q8_0, Q4_0, Q5_0, Q4_K_S, Q6_K, Q4_K_M */
    static const uint32_t ft[] = { 7, 2, 8, 14, 18, 15 };
    return ft[mix];
}
