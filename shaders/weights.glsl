/* Reading weights of any supported ggml type: pairs of floats (w_pair, the
 * embedding lookup) or runs of 8 (w_chunk8, the matrix kernels).
 * The weight buffer is bound as 16-byte words (W4: one load feeds 8 f16
 * weights) and read through W(i) for 32-bit words, so that one shader serves every
 * format without 8- or 16-bit storage features; WTYPE (specialization
 * constant 0, the ggml type number) picks the decoder at pipeline build time.
 * Element indices are (row, k) with k even; rows are `ncols` elements long.
 * For every format here elements k and k+1 share their block, scales and
 * byte pairs, so a pair costs one decode.
 * The arithmetic follows llama/dequant.c (the CPU dequantiser, checked
 * bit for bit against ggml's): `precise` keeps the compiler from fusing
 * d * q - m into an fma the CPU does not do.
 * Host side: llama/ builds one pipeline per WTYPE and picks it by the
 * tensor's GGUF type (the kernel table, docs/architecture.md).
 *
 * Q4_0, Q8_0 and Q6_K are read in the GPU layout of llama/repack.h: in
 * each buffer, every block's quants, then every block's scales; the
 * including shader defines W_NROWS, the rows in the bound buffer, which
 * places the scales. */

layout(constant_id = 0) const uint WTYPE = 0;
/* A stacked matrix whose last rows come in another format (Q and K in
 * Q4_K, V in Q6_K, as Q4_K_M files have them; llama/gpu_weights.c
 * upload_mixed): rows from TAIL_ROW on are TAIL_TYPE's, laid out as a
 * matrix of their own (repacked over those rows alone) from the 16-byte
 * word TAIL_WORD of the buffer, and the rows before it as a matrix of
 * TAIL_ROW rows. TAIL_ROW 0: one format (every other pipeline; the
 * branches fold away at pipeline build). The decoders read through
 * w_base, the first 16-byte word of the part being read. */
layout(constant_id = 13) const uint TAIL_ROW = 0;
layout(constant_id = 14) const uint TAIL_TYPE = 0;
layout(constant_id = 15) const uint TAIL_WORD = 0;
uint w_base = 0u;
/* w_base where a pipeline has a tail, else the constant 0 (so that no
 * other pipeline's loads depend on the driver propagating the variable) */
#define W_BASE (TAIL_ROW != 0u ? w_base : 0u)

const uint T_F32 = 0;
const uint T_F16 = 1;
const uint T_Q4_0 = 2;
const uint T_Q4_1 = 3;
const uint T_Q5_0 = 6;
const uint T_Q5_1 = 7;
const uint T_Q8_0 = 8;
const uint T_Q4_K = 12;
const uint T_Q5_K = 13;
const uint T_Q6_K = 14;
const uint T_BF16 = 30;

/* LADE_COUNT (the counting variant of the matrix kernel, matmul_count):
 * every weight load adds its bytes to the lane's wcount, which the kernel
 * adds to its counters buffer at the end (llm_model_counts). Both helpers
 * below are the only ways weights are read. */
#ifdef LADE_COUNT
uint wcount = 0u;
#define W_COUNT(n) wcount += (n)
#else
#define W_COUNT(n)
#endif

/* The 16-byte word i of the weights. */
uvec4 W16(uint i)
{
    W_COUNT(16u);
    return W4[W_BASE + i];
}

/* The 32-bit word i of the weights. */
uint W(uint i)
{
    W_COUNT(4u);
    return W4[W_BASE + (i >> 2)][i & 3u];
}

uint byte_at(uint off)
{
    return (W(off >> 2) >> ((off & 3u) * 8u)) & 0xffu;
}

/* Two bytes at an even offset (never straddles a word). */
uvec2 bytes2_at(uint off)
{
    uint w = W(off >> 2) >> ((off & 2u) * 8u);
    return uvec2(w & 0xffu, (w >> 8) & 0xffu);
}

float f16_at(uint off) /* off even */
{
    uint w = W(off >> 2);
    return unpackHalf2x16((off & 2u) != 0u ? (w >> 16) : w).x;
}

uint u32_at(uint off) /* off even */
{
    return (off & 2u) == 0u ? W(off >> 2) : (W(off >> 2) >> 16) | (W((off >> 2) + 1u) << 16);
}

float sbyte(uint b)
{
    return float(int(b << 24) >> 24);
}

/* float(q) - off, exactly, for 0 <= q < 2^23 and a small whole off: the
 * bits of 2^23 + q as a float, less 2^23 + off (both sides exact). The
 * matrix kernels decode quants with this rather than an int-to-float
 * conversion, which NVIDIA GPUs run at a quarter of the FMA rate; the
 * values, and so every result bit, are the same. */
float q2f(uint q, float off)
{
    return uintBitsToFloat(0x4b000000u | q) - (8388608.0 + off);
}

/* 6-bit scale and min of sub-block j of a Q4_K/Q5_K super-block whose
 * 12 scale bytes start at s (see k_scale_min in llama/dequant.c). */
uvec2 k_scale_min(uint s, uint j)
{
    if (j < 4u)
        return uvec2(byte_at(s + j) & 63u, byte_at(s + j + 4u) & 63u);
    uint hi = byte_at(s + j + 4u);
    return uvec2((hi & 15u) | ((byte_at(s + j - 4u) >> 6) << 4), (hi >> 4) | ((byte_at(s + j) >> 6) << 4));
}

/* The same from the 12 scale bytes already loaded as three words. */
uint scale_byte(uvec3 sc, uint j)
{
    return (sc[j >> 2] >> ((j & 3u) * 8u)) & 0xffu;
}

uvec2 k_scale_min_w(uvec3 sc, uint j)
{
    if (j < 4u)
        return uvec2(scale_byte(sc, j) & 63u, scale_byte(sc, j + 4u) & 63u);
    uint hi = scale_byte(sc, j + 4u);
    return uvec2((hi & 15u) | ((scale_byte(sc, j - 4u) >> 6) << 4), (hi >> 4) | ((scale_byte(sc, j) >> 6) << 4));
}

vec2 w_pair(uint row, uint k, uint ncols)
{
    precise vec2 r;
    if (WTYPE == T_F32) {
        uint i = row * ncols + k;
        r = vec2(uintBitsToFloat(W(i)), uintBitsToFloat(W(i + 1u)));
    } else if (WTYPE == T_F16) {
        r = unpackHalf2x16(W((row * ncols + k) >> 1));
    } else if (WTYPE == T_BF16) {
        uint w = W((row * ncols + k) >> 1);
        r = vec2(uintBitsToFloat(w << 16), uintBitsToFloat(w & 0xffff0000u));
    } else if (WTYPE == T_Q4_0 || WTYPE == T_Q8_0) {
        /* Repacked (llama/repack.h). Q4_0: byte j of a block's 16 holds
         * element j (low nibble) and j+16 (high); Q8_0: a byte an element. */
        uint nb = ncols >> 5, b = row * nb + (k >> 5), e = k & 31u;
        uint qbytes = WTYPE == T_Q4_0 ? 16u : 32u;
        float d = f16_at(W_NROWS * nb * qbytes + 2u * b);
        if (WTYPE == T_Q8_0) {
            uvec2 q = bytes2_at(b * 32u + e);
            r = vec2(sbyte(q.x), sbyte(q.y)) * d;
        } else {
            uvec2 q2 = bytes2_at(b * 16u + (e & 15u));
            uvec2 q = e < 16u ? (q2 & 15u) : (q2 >> 4);
            r = vec2(ivec2(q) - 8) * d;
        }
    } else if (WTYPE == T_Q4_1 || WTYPE == T_Q5_0 || WTYPE == T_Q5_1) {
        /* 32-element blocks: byte j of qs holds element j (low nibble) and
         * j+16 (high nibble). */
        uint bytes = WTYPE == T_Q4_1 ? 20u : WTYPE == T_Q5_0 ? 22u : 24u;
        uint base = (row * (ncols >> 5) + (k >> 5)) * bytes;
        uint e = k & 31u;
        float d = f16_at(base);
        {
            uint qs = base + (WTYPE == T_Q4_1 ? 4u : WTYPE == T_Q5_0 ? 6u : 8u);
            uvec2 b = bytes2_at(qs + (e & 15u));
            uvec2 q = e < 16u ? (b & 15u) : (b >> 4);
            if (WTYPE == T_Q5_0 || WTYPE == T_Q5_1) {
                uint qh = u32_at(base + (WTYPE == T_Q5_0 ? 2u : 4u));
                q |= ((uvec2(qh >> e, qh >> (e + 1u)) & 1u) << 4);
            }
            if (WTYPE == T_Q5_0)
                r = vec2(ivec2(q) - 16) * d;
            else
                r = vec2(q) * d + f16_at(base + 2u);
        }
    } else if (WTYPE == T_Q4_K || WTYPE == T_Q5_K) {
        uint base = (row * (ncols >> 8) + (k >> 8)) * (WTYPE == T_Q4_K ? 144u : 176u);
        uint i = k & 255u, g = i >> 6, l = i & 31u, sub = i >> 5; /* group of 64, sub-block of 32 */
        uvec2 sm = k_scale_min(base + 4u, sub);
        float d = f16_at(base) * float(sm.x);
        float m = f16_at(base + 2u) * float(sm.y);
        uint qs = base + (WTYPE == T_Q4_K ? 16u : 48u) + 32u * g;
        uvec2 b = bytes2_at(qs + l);
        uvec2 q = (sub & 1u) == 0u ? (b & 15u) : (b >> 4);
        if (WTYPE == T_Q5_K) {
            uvec2 h = bytes2_at(base + 16u + l);
            q |= ((h >> sub) & 1u) << 4;
        }
        r = d * vec2(q) - m;
    } else { /* Q6_K, repacked (llama/repack.h): per block ql[128] qh[64],
              * then after every block's: scales[16] d; see deq_q6_k in
              * llama/dequant.c */
        uint nb = ncols >> 8, b = row * nb + (k >> 8), base = b * 192u, sb = W_NROWS * nb * 192u + 18u * b;
        uint i = k & 255u, h = i >> 7, j = i & 127u, kk = j >> 5, l = j & 31u;
        uvec2 lo = bytes2_at(base + 64u * h + l + 32u * (kk & 1u));
        lo = kk < 2u ? (lo & 15u) : (lo >> 4);
        uvec2 hi = (bytes2_at(base + 128u + 32u * h + l) >> (2u * kk)) & 3u;
        ivec2 q = ivec2(lo | (hi << 4)) - 32;
        float sc = sbyte(byte_at(sb + 8u * h + l / 16u + 2u * kk));
        float d = f16_at(sb + 16u);
        r = (d * sc) * vec2(q);
    }
    return r;
}

/* Eight bytes at an even offset, as two little-endian words. */
uvec2 bytes8_at(uint off)
{
    return uvec2(u32_at(off), u32_at(off + 4u));
}

/* Byte i (0..7) of a bytes8_at result. */
uint b8(uvec2 v, uint i)
{
    return ((i < 4u ? v.x : v.y) >> ((i & 3u) * 8u)) & 0xffu;
}

/* Elements k .. k+7 of a row (k a multiple of 8; ncols a multiple of 8,
 * checked on the host) of a matrix of `type` and `wrows` rows (which place
 * the repacked formats' scales), from w_base on. Same arithmetic as
 * w_pair, eight at a time: within every format here an aligned run of 8
 * shares its block and scales. */
void w_chunk8_as(uint type, uint wrows, uint row, uint k, uint ncols, out float w[8])
{
    if (type == T_F16 || type == T_BF16) {
        /* One 16-byte load when rows keep 16-byte alignment, else four words
         * (ncols a multiple of 4 keeps every run word-aligned). */
        uint e = row * ncols + k;
        uvec4 q = (ncols & 7u) == 0u ? W16(e >> 3) : uvec4(W(e >> 1), W((e >> 1) + 1u), W((e >> 1) + 2u), W((e >> 1) + 3u));
        for (uint i = 0u; i < 4u; i++) {
            vec2 v = type == T_F16 ? unpackHalf2x16(q[i])
                                    : vec2(uintBitsToFloat(q[i] << 16), uintBitsToFloat(q[i] & 0xffff0000u));
            w[2u * i] = v.x;
            w[2u * i + 1u] = v.y;
        }
    } else if (type == T_F32) {
        uint i4 = (row * ncols + k) >> 2;
        uvec4 a = W16(i4), b = W16(i4 + 1u);
        for (uint i = 0u; i < 4u; i++) {
            w[i] = uintBitsToFloat(a[i]);
            w[i + 4u] = uintBitsToFloat(b[i]);
        }
    } else if (type == T_Q4_0 || type == T_Q8_0) {
        /* Repacked (llama/repack.h): the run's 8 quant bytes are one
         * aligned half of a 16-byte word, the scale one 2-byte read. */
        uint nb = ncols >> 5, b = row * nb + (k >> 5), e = k & 31u;
        uint qbytes = type == T_Q4_0 ? 16u : 32u;
        precise float d = f16_at(wrows * nb * qbytes + 2u * b);
        uvec4 blk = type == T_Q4_0 ? W16(b) : W16(2u * b + (e >> 4));
        uvec2 q = (e & 8u) != 0u ? blk.zw : blk.xy;
        for (uint i = 0u; i < 8u; i++) {
            precise float v;
            if (type == T_Q8_0)
                v = q2f(b8(q, i) ^ 0x80u, 128.0) * d; /* the signed byte */
            else
                v = q2f(e < 16u ? (b8(q, i) & 15u) : (b8(q, i) >> 4), 8.0) * d;
            w[i] = v;
        }
    } else if (type == T_Q4_1 || type == T_Q5_0 || type == T_Q5_1) {
        uint bytes = type == T_Q4_1 ? 20u : type == T_Q5_0 ? 22u : 24u;
        uint base = (row * (ncols >> 5) + (k >> 5)) * bytes;
        uint e = k & 31u;
        precise float d = f16_at(base);
        {
            uint qs = base + (type == T_Q4_1 ? 4u : type == T_Q5_0 ? 6u : 8u);
            uvec2 b = bytes8_at(qs + (e & 15u));
            uint qh = (type == T_Q5_0 || type == T_Q5_1) ? u32_at(base + (type == T_Q5_0 ? 2u : 4u)) : 0u;
            precise float m = (type == T_Q4_1 || type == T_Q5_1) ? f16_at(base + 2u) : 0.0;
            for (uint i = 0u; i < 8u; i++) {
                uint q = e < 16u ? (b8(b, i) & 15u) : (b8(b, i) >> 4);
                q |= ((qh >> (e + i)) & 1u) << 4;
                precise float v;
                if (type == T_Q5_0)
                    v = q2f(q, 16.0) * d;
                else
                    v = q2f(q, 0.0) * d + m;
                w[i] = v;
            }
        }
    } else if (type == T_Q4_K || type == T_Q5_K) {
        /* Super-blocks of 144 / 176 bytes stay 16-byte aligned: one load
         * brings d, dmin and all 12 scale bytes, one more the run's 8 quant
         * bytes (and one the Q5_K high bits), instead of a load a byte. */
        uint base = (row * (ncols >> 8) + (k >> 8)) * (type == T_Q4_K ? 144u : 176u);
        uint i0 = k & 255u, g = i0 >> 6, l = i0 & 31u, sub = i0 >> 5;
        uvec4 head = W16(base >> 4);
        uvec2 sm = k_scale_min_w(head.yzw, sub);
        vec2 dmin = unpackHalf2x16(head.x);
        precise float d = dmin.x * float(sm.x);
        precise float m = dmin.y * float(sm.y);
        uint qo = base + (type == T_Q4_K ? 16u : 48u) + 32u * g + l; /* a multiple of 8 */
        uvec4 qw = W16(qo >> 4);
        uvec2 b = (qo & 8u) != 0u ? qw.zw : qw.xy;
        uvec2 h = uvec2(0u);
        if (type == T_Q5_K) {
            uvec4 hw = W16((base + 16u + l) >> 4);
            h = ((base + 16u + l) & 8u) != 0u ? hw.zw : hw.xy;
        }
        for (uint i = 0u; i < 8u; i++) {
            uint q = (sub & 1u) == 0u ? (b8(b, i) & 15u) : (b8(b, i) >> 4);
            q |= ((b8(h, i) >> sub) & 1u) << 4;
            precise float v = d * q2f(q, 0.0) - m;
            w[i] = v;
        }
    } else { /* Q6_K, repacked (llama/repack.h): the run's 8 ql bytes and
              * 8 qh bytes are halves of 16-byte words */
        uint nb = ncols >> 8, b = row * nb + (k >> 8), base = b * 192u, sb = wrows * nb * 192u + 18u * b;
        uint i0 = k & 255u, hh = i0 >> 7, j = i0 & 127u, kk = j >> 5, l = j & 31u;
        uint lo_at = base + 64u * hh + l + 32u * (kk & 1u), hi_at = base + 128u + 32u * hh + l;
        uvec4 low = W16(lo_at >> 4), high = W16(hi_at >> 4);
        uvec2 lo = (lo_at & 8u) != 0u ? low.zw : low.xy;
        uvec2 hi = (hi_at & 8u) != 0u ? high.zw : high.xy;
        float sc = sbyte(byte_at(sb + 8u * hh + l / 16u + 2u * kk));
        precise float ds = f16_at(sb + 16u) * sc;
        for (uint i = 0u; i < 8u; i++) {
            uint q4 = kk < 2u ? (b8(lo, i) & 15u) : (b8(lo, i) >> 4);
            precise float v = ds * q2f(q4 | (((b8(hi, i) >> (2u * kk)) & 3u) << 4), 32.0);
            w[i] = v;
        }
    }
}

/* w_chunk8_as for the bound matrix: its format, or the tail's (above). */
void w_chunk8(uint row, uint k, uint ncols, out float w[8])
{
    if (TAIL_ROW != 0u && row >= TAIL_ROW) {
        w_base = TAIL_WORD;
        w_chunk8_as(TAIL_TYPE, W_NROWS - TAIL_ROW, row - TAIL_ROW, k, ncols, w);
        w_base = 0u;
    } else {
        w_chunk8_as(WTYPE, TAIL_ROW != 0u ? TAIL_ROW : W_NROWS, row, k, ncols, w);
    }
}
