/* Dequantisation of ggml blocks to f32. Each block layout is described above
 * the function that reads it; offsets are in bytes, multi-byte fields are
 * little-endian and unaligned in the file, so they are read byte by byte.
 *
 * Float evaluation order follows ggml's reference dequantisation (for
 * example Q4_K computes (d * scale) * q - (dmin * min), Q6_K (d * scale) * q)
 * so that results agree bit for bit where the products are exact and to one
 * rounding of the final subtraction otherwise (see tests/llama/test_dequant.c). */
#include "llama/dequant.h"

#include <errno.h>
#include <string.h>

#include "llama/gguf.h"

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    return u;
}

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* ---- half precision ------------------------------------------------------ */

float llm_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;

    if (exp == 0) {
        /* zero or subnormal: man * 2^-24, exact in binary32 */
        float mag = (float)man * 0x1p-24f;
        return bits_f32(sign | f32_bits(mag));
    }
    if (exp == 31) /* inf or NaN: keep the payload in the top mantissa bits */
        return bits_f32(sign | 0x7f800000u | (man << 13));
    /* rebias the exponent from 15 to 127 */
    return bits_f32(sign | ((exp + 112) << 23) | (man << 13));
}

/* Keep the low `shift` bits of m out, rounding to nearest, ties to even. */
static uint32_t shift_round_even(uint32_t m, uint32_t shift)
{
    uint32_t kept = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1);
    uint32_t half = 1u << (shift - 1);

    if (rem > half || (rem == half && (kept & 1)))
        kept++;
    return kept;
}

uint16_t llm_f32_to_f16(float f)
{
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t exp = (x >> 23) & 0xff;
    uint32_t man = x & 0x7fffff;
    int32_t e = (int32_t)exp - 127 + 15; /* biased f16 exponent */

    if (exp == 0xff) {
        if (man == 0)
            return sign | 0x7c00;
        /* NaN: keep the top 10 payload bits; if those are all zero the
         * result would read as infinity, so set the quiet bit. */
        uint16_t m = (uint16_t)(man >> 13);
        return sign | 0x7c00 | (m ? m : 0x200);
    }
    if (e >= 31)
        return sign | 0x7c00; /* |f| >= 65536: beyond rounding range, inf */
    if (e <= 0) {
        /* f16 subnormal: the value in units of 2^-24 is (1.man) * 2^(e-14)
         * relative to the 24-bit significand; below 2^-25 even the
         * rounding cannot reach the smallest subnormal. */
        if (e < -10)
            return sign;
        /* A carry out of the top rounds up to the smallest normal, which
         * is the correct encoding. */
        return sign | (uint16_t)shift_round_even(man | 0x800000, (uint32_t)(14 - e));
    }
    /* normal: a carry out of the mantissa bumps the exponent, up to 0x7c00
     * (infinity) for values that round beyond 65504 */
    return sign | (uint16_t)shift_round_even(((uint32_t)e << 23) | man, 13);
}

float llm_bf16_to_f32(uint16_t h)
{
    return bits_f32((uint32_t)h << 16);
}

uint16_t llm_f32_to_bf16(float f)
{
    uint32_t x = f32_bits(f);

    if ((x & 0x7fffffff) > 0x7f800000) {
        /* NaN: truncate, and set the quiet bit if the kept payload is zero */
        uint16_t h = (uint16_t)(x >> 16);
        return (h & 0x7f) ? h : (uint16_t)(h | 0x40);
    }
    /* Round to nearest even on the low 16 bits; a carry into the exponent
     * is correct, including to infinity. Cannot overflow 32 bits because
     * x <= 0xff800000 here. */
    return (uint16_t)((x + 0x7fff + ((x >> 16) & 1)) >> 16);
}

/* ---- 32-element blocks ---------------------------------------------------
 * In Q4_0/Q4_1/Q5_0/Q5_1 byte j of qs holds element j in its low nibble and
 * element j+16 in its high nibble. */

/* Q8_0, 34 bytes: f16 d @0, int8 q[32] @2. y = d * q. */
static void deq_q8_0(const uint8_t *b, float *y)
{
    float d = llm_f16_to_f32(rd16(b));

    for (int j = 0; j < 32; j++)
        y[j] = (float)(int8_t)b[2 + j] * d;
}

/* Q4_0, 18 bytes: f16 d @0, u8 qs[16] @2. y = (nibble - 8) * d. */
static void deq_q4_0(const uint8_t *b, float *y)
{
    float d = llm_f16_to_f32(rd16(b));
    const uint8_t *qs = b + 2;

    for (int j = 0; j < 16; j++) {
        y[j] = (float)((qs[j] & 0x0f) - 8) * d;
        y[j + 16] = (float)((qs[j] >> 4) - 8) * d;
    }
}

/* Q4_1, 20 bytes: f16 d @0, f16 m @2, u8 qs[16] @4. y = nibble * d + m. */
static void deq_q4_1(const uint8_t *b, float *y)
{
    float d = llm_f16_to_f32(rd16(b));
    float m = llm_f16_to_f32(rd16(b + 2));
    const uint8_t *qs = b + 4;

    for (int j = 0; j < 16; j++) {
        y[j] = (float)(qs[j] & 0x0f) * d + m;
        y[j + 16] = (float)(qs[j] >> 4) * d + m;
    }
}

/* Q5_0, 22 bytes: f16 d @0, u32 qh @2, u8 qs[16] @6. The fifth bit of
 * element j is bit j of qh (elements 0..31 in order).
 * y = (5-bit value - 16) * d. */
static void deq_q5_0(const uint8_t *b, float *y)
{
    float d = llm_f16_to_f32(rd16(b));
    uint32_t qh = rd32(b + 2);
    const uint8_t *qs = b + 6;

    for (int j = 0; j < 16; j++) {
        int lo = (qs[j] & 0x0f) | (int)(((qh >> j) & 1) << 4);
        int hi = (qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
        y[j] = (float)(lo - 16) * d;
        y[j + 16] = (float)(hi - 16) * d;
    }
}

/* Q5_1, 24 bytes: f16 d @0, f16 m @2, u32 qh @4, u8 qs[16] @8; fifth bits
 * as in Q5_0. y = 5-bit value * d + m. */
static void deq_q5_1(const uint8_t *b, float *y)
{
    float d = llm_f16_to_f32(rd16(b));
    float m = llm_f16_to_f32(rd16(b + 2));
    uint32_t qh = rd32(b + 4);
    const uint8_t *qs = b + 8;

    for (int j = 0; j < 16; j++) {
        int lo = (qs[j] & 0x0f) | (int)(((qh >> j) & 1) << 4);
        int hi = (qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
        y[j] = (float)lo * d + m;
        y[j + 16] = (float)hi * d + m;
    }
}

/* ---- 256-element super-blocks (K-quants) ------------------------------- */

/* Q4_K and Q5_K give each of their 8 sub-blocks of 32 a 6-bit scale and a
 * 6-bit min, packed in 12 bytes:
 *   bytes 0..3:  scale j (j < 4) in bits 0..5; bits 6..7 = top bits of scale j+4
 *   bytes 4..7:  min j   (j < 4) in bits 0..5; bits 6..7 = top bits of min j+4
 *   bytes 8..11: low nibble = low 4 bits of scale j+4, high nibble = of min j+4 */
void llm_k_scale_min(const uint8_t *s, int j, int *ret_scale, int *ret_min)
{
    if (j < 4) {
        *ret_scale = s[j] & 63;
        *ret_min = s[j + 4] & 63;
    } else {
        *ret_scale = (s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4);
        *ret_min = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

/* Q4_K's and Q5_K's shared decoding: qs the low 4 bits, qh (Q5_K only,
 * else NULL) the fifth bits. */
static void deq_k45(const uint8_t *b, const uint8_t *qh, const uint8_t *qs, float *y)
{
    float d = llm_f16_to_f32(rd16(b));
    float dmin = llm_f16_to_f32(rd16(b + 2));
    const uint8_t *scales = b + 4;

    for (int g = 0; g < 4; g++, qs += 32, y += 64) {
        int sc0, m0, sc1, m1;
        llm_k_scale_min(scales, 2 * g, &sc0, &m0);
        llm_k_scale_min(scales, 2 * g + 1, &sc1, &m1);
        float d0 = d * (float)sc0, min0 = dmin * (float)m0;
        float d1 = d * (float)sc1, min1 = dmin * (float)m1;
        for (int l = 0; l < 32; l++) {
            int q0 = qs[l] & 0x0f, q1 = qs[l] >> 4;
            if (qh) {
                q0 |= ((qh[l] >> (2 * g)) & 1) << 4;
                q1 |= ((qh[l] >> (2 * g + 1)) & 1) << 4;
            }
            y[l] = d0 * (float)q0 - min0;
            y[l + 32] = d1 * (float)q1 - min1;
        }
    }
}

/* Q4_K, 144 bytes: f16 d @0, f16 dmin @2, scales[12] @4, u8 qs[128] @16.
 * Elements come in 4 groups of 64; group g uses qs[32g .. 32g+31]: the low
 * nibbles are sub-block 2g, the high nibbles sub-block 2g+1.
 * y = (d * scale) * q - (dmin * min). */
static void deq_q4_k(const uint8_t *b, float *y)
{
    deq_k45(b, NULL, b + 16, y);
}

/* Q5_K, 176 bytes: f16 d @0, f16 dmin @2, scales[12] @4, u8 qh[32] @16,
 * u8 qs[128] @48. Low 4 bits as in Q4_K; the fifth bit of element l of
 * sub-block s is bit s of qh[l]. y = (d * scale) * q - (dmin * min). */
static void deq_q5_k(const uint8_t *b, float *y)
{
    deq_k45(b, b + 16, b + 48, y);
}

/* Q6_K, 210 bytes: u8 ql[128] @0, u8 qh[64] @128, int8 scales[16] @192,
 * f16 d @208. Two halves of 128 elements; half h uses ql[64h..64h+63],
 * qh[32h..32h+31], scales[8h..8h+7]. In a half, element l + 32k
 * (l < 32, k < 4) takes its low 4 bits from ql[l + 32(k&1)] (low nibble for
 * k < 2, high for k >= 2) and its top 2 bits from bits 2k..2k+1 of qh[l];
 * its scale is scales[l/16 + 2k]. y = (d * scale) * (q - 32). */
static void deq_q6_k(const uint8_t *b, float *y)
{
    float d = llm_f16_to_f32(rd16(b + 208));

    for (int h = 0; h < 2; h++, y += 128) {
        const uint8_t *ql = b + 64 * h;
        const uint8_t *qh = b + 128 + 32 * h;
        const int8_t *sc = (const int8_t *)(b + 192 + 8 * h);
        for (int l = 0; l < 32; l++) {
            for (int k = 0; k < 4; k++) {
                int lo = ql[l + 32 * (k & 1)];
                lo = k < 2 ? (lo & 0x0f) : (lo >> 4);
                int q = (lo | (((qh[l] >> (2 * k)) & 3) << 4)) - 32;
                y[l + 32 * k] = d * (float)sc[l / 16 + 2 * k] * (float)q;
            }
        }
    }
}

/* ---- rows ---------------------------------------------------------------- */

typedef void (*deq_block_fn)(const uint8_t *b, float *y);

static deq_block_fn block_fn(uint32_t type)
{
    switch (type) {
    case LLM_GGML_Q8_0: return deq_q8_0;
    case LLM_GGML_Q4_0: return deq_q4_0;
    case LLM_GGML_Q4_1: return deq_q4_1;
    case LLM_GGML_Q5_0: return deq_q5_0;
    case LLM_GGML_Q5_1: return deq_q5_1;
    case LLM_GGML_Q4_K: return deq_q4_k;
    case LLM_GGML_Q5_K: return deq_q5_k;
    case LLM_GGML_Q6_K: return deq_q6_k;
    default: return NULL;
    }
}

/* Block geometry, kept here rather than taken from the GGUF reader's traits
 * so that this file stands alone as the description of each format. */
static void block_geometry(uint32_t type, uint32_t *ret_elems, uint32_t *ret_bytes)
{
    switch (type) {
    case LLM_GGML_Q8_0:
        *ret_elems = 32;
        *ret_bytes = 34;
        break;
    case LLM_GGML_Q4_0:
        *ret_elems = 32;
        *ret_bytes = 18;
        break;
    case LLM_GGML_Q4_1:
        *ret_elems = 32;
        *ret_bytes = 20;
        break;
    case LLM_GGML_Q5_0:
        *ret_elems = 32;
        *ret_bytes = 22;
        break;
    case LLM_GGML_Q5_1:
        *ret_elems = 32;
        *ret_bytes = 24;
        break;
    case LLM_GGML_Q4_K:
        *ret_elems = 256;
        *ret_bytes = 144;
        break;
    case LLM_GGML_Q5_K:
        *ret_elems = 256;
        *ret_bytes = 176;
        break;
    case LLM_GGML_Q6_K:
        *ret_elems = 256;
        *ret_bytes = 210;
        break;
    default:
        *ret_elems = 0;
        *ret_bytes = 0;
        break;
    }
}

bool llm_dequant_has_type(uint32_t type)
{
    return type == LLM_GGML_F32 || type == LLM_GGML_F16 || type == LLM_GGML_BF16 ||
           block_fn(type) != NULL;
}

int llm_dequant_row(uint32_t type, const void *src, float *dst, uint64_t n)
{
    const uint8_t *s = src;

    switch (type) {
    case LLM_GGML_F32: memcpy(dst, src, n * sizeof(float)); return 0;
    case LLM_GGML_F16:
        for (uint64_t i = 0; i < n; i++)
            dst[i] = llm_f16_to_f32(rd16(s + 2 * i));
        return 0;
    case LLM_GGML_BF16:
        for (uint64_t i = 0; i < n; i++)
            dst[i] = llm_bf16_to_f32(rd16(s + 2 * i));
        return 0;
    default: break;
    }

    deq_block_fn fn = block_fn(type);
    uint32_t elems, bytes;
    if (!fn)
        return -ENOTSUP;
    block_geometry(type, &elems, &bytes);
    if (n % elems)
        return -EINVAL;
    for (uint64_t i = 0; i < n / elems; i++)
        fn(s + i * bytes, dst + i * elems);
    return 0;
}
