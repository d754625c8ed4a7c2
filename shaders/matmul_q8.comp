#version 450
/* Y[t][y_off + r] (+)= sum_k W[r][k] * X[sel(t)][k], on integer dot
 * products: the integer path of the matrix kernel (tuning idot; issue #22
 * item 1), for Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K and Q6_K weights.
 * The same bindings, push constants, grid, geometry constants and fused
 * epilogues as matmul.comp, so the host swaps one pipeline for the other
 * and records nothing differently (llama/gpu_idot.c).
 *
 * Per 32-element block b of a row and token t (a K-quant's sub-block),
 * with the inputs quantised to two 8-bit planes (q8act.glsl: q1, q2,
 * x_i ~ da (256 q1_i + q2_i), block sum sa of those 16-bit integers) and
 * the weights' own quants qw (scale dw, and min m in the _1 formats):
 *   i  = 256 sum qw_i q1_i + sum qw_i q2_i = sum qw_i (256 q1_i + q2_i)
 *        (exact, in int; 4-wide packed 8-bit dots, two a word of weights)
 *   Q8_0:        term = (dw * da) * float(i)
 *   Q4_0, Q5_0:  term = (dw * da) * float(i - o * sa)     o = 8, 16
 *   Q4_1, Q5_1:  term = (dw * da) * float(i) + m * (da * float(sa))
 *   Q4_K, Q5_K:  as the _1 formats with dw = d sc, m = -(dmin mi)
 *   Q6_K:        term = ((d sc0) * da) * float(i0) + ((d sc1) * da) * float(i1)
 * (K-quants: sc, mi the sub-block's 6-bit scale and min, d sc and dmin mi
 * exact; Q6_K's i0, i1 the dots over elements 0-15 and 16-31, which have
 * scales of their own, and its qw = q - 32 signed) every float operation
 * separately rounded (`precise`); llama/q8act.c is the same arithmetic on
 * the CPU. Nibbles enter the dot unsigned (0..31 are also non-negative
 * signed bytes) and the offset o comes out through the block sum, so no
 * per-byte subtraction is needed; Q6_K's offset of 32 cannot (its halves
 * have different scales and sa is the whole block's), so it is taken off
 * the bytes, four at a time.
 *
 * Exact in int32 for every format: |i| <= 32 * 128 * 32639 < 2^27
 * (Q8_0's qw down to -128), |sa| <= 32 * 32639 < 2^20, so Q5_0's
 * i - 16 sa < 2^26 and Q6_K's halves (|qw| <= 32) < 2^24. float(i) may
 * round above 2^24: int-to-float is correctly rounded in Vulkan as on the
 * CPU. The second plane costs twice the integer dots and twice the staged
 * words; the weight loads are the same.
 *
 * Where the inputs are quantised: here, in the consuming kernel's
 * prologue, into shared memory. A workgroup quantises the tile's tokens'
 * blocks (one lane a block: max, scale, 64 roundings), so no pass and no
 * buffer are added (the layer's dispatch count is what issue #22 item 3
 * cuts), whatever produced X (RMSNorm, attention, SwiGLU, a gather by
 * SEL) and with no change to those producers. The price is that every
 * workgroup over the same tokens quantises them again: 1/ROWS_WG of the
 * kernel's multiply-adds, and nothing on GPUs that are bound by the weight
 * reads. When nt tokens x K do not fit the shared memory (QCB blocks a
 * token), K is taken in chunks of QCB blocks, each quantised, used and
 * replaced in turn (and quantised again for each pass of a workgroup's
 * rows when there are several passes and several chunks).
 *
 * Batch invariance: lane l of a subgroup of S lanes takes the blocks
 * b = l, l + S, l + 2S, ... of its row, in that order, whatever the chunk
 * (chunks are consecutive and each is walked upwards), adding each
 * block's term to its sum of that row and token; then subgroupAdd
 * combines the S lane sums, as in matmul.comp. Nothing in this order
 * depends on T, the tile, the rows a workgroup or subgroup covers, or the
 * chunk size; only on S, which is one value per device. The quantised
 * inputs depend only on the token's own values. So a token's result is
 * the same bits alone or in any step, in every geometry.
 *
 * LADE_SDOT: the dot of four packed signed bytes is OpSDot
 * (SPV_KHR_integer_dot_product; shaderIntegerDotProduct, which the host
 * enables where the device has it). glslc 2023.2 has no
 * GL_EXT_integer_dot_product, so the instruction is declared through
 * GL_EXT_spirv_intrinsics. Without LADE_SDOT (devices without the
 * feature), four multiply-adds of the extracted bytes: the same exact
 * integer, so the same bits.
 *
 * Flag 4 folds the RMSNorm before the product in, as in matmul.comp: X
 * holds x times the norm's weights (quantised as any input), XR the
 * residual x; each token's scale s from mm_norm.glsl (the same bits as
 * there) is applied to each finished sum (so the quantised blocks do not
 * depend on s). Flag 16 as matmul.comp's: x * NW out to XN. Both in
 * the epilogue (EPI 6 where there is no other), as in matmul.comp.
 *
 * flags 8 (tests only): write the quantised inputs instead of products:
 * token t's block b at Y[t * y_stride + 18 b]: its 16 words (q1's 8,
 * q2's 8), then d and s as bits (workgroups of the first row block
 * only). */
#extension GL_EXT_control_flow_attributes : enable
#extension GL_KHR_shader_subgroup_basic : enable
#extension GL_KHR_shader_subgroup_arithmetic : enable
#ifdef LADE_SDOT
#extension GL_EXT_spirv_intrinsics : require
/* OpSDot (4450) with capabilities DotProduct (6019) and
 * DotProductInput4x8BitPacked (6018); fmt 0: PackedVectorFormat4x8Bit. */
spirv_instruction(extensions = ["SPV_KHR_integer_dot_product"], capabilities = [6019, 6018], id = 4450)
int sdot4x8(int a, int b, spirv_literal int fmt);
#endif

layout(local_size_x_id = 1) in;
layout(constant_id = 1) const uint LOCAL = 64;
layout(constant_id = 2) const uint TILE_T = 8;
layout(constant_id = 3) const uint ROWS_WG = 32; /* rows a workgroup covers */
layout(constant_id = 4) const uint RPS = 1;      /* rows a subgroup reduces together */
/* 5-8 are matmul.comp's UNROLL, SPLITK, PROBE and XSH: not used here
 * (a row is one subgroup's; the inputs are always staged). */
layout(constant_id = 9) const uint FREQ_OFF = 0;
layout(constant_id = 10) const uint SUB_T = 0; /* as matmul.comp */
layout(constant_id = 11) const uint QCB = 8;   /* blocks of 32 inputs a token staged at once */
const uint SUB = SUB_T == 0u || SUB_T > TILE_T ? TILE_T : SUB_T;

/* The staged inputs: token t's block b (of the chunk) at o = t QCB + b:
 * 16 words of packed bytes at 16 o (q1's 8, then q2's), its scale and
 * block sum at o: 72 bytes a block-token (llama/gpu_idot.c's idot_qcb). */
shared uint qs[TILE_T * QCB * 16u];
shared float qd[TILE_T * QCB];
shared int qsum[TILE_T * QCB];
/* Sums waiting for the epilogue: [virtual row of the workgroup][token]. */
shared float stage[2u * ROWS_WG * TILE_T];

layout(std430, binding = 0) readonly buffer Wb { uvec4 W4[]; };
layout(std430, binding = 1) readonly buffer Xb { vec4 X4[]; };
layout(std430, binding = 2) buffer Yb { float Y[]; };
layout(std430, binding = 3) readonly buffer Sb { int SEL[]; };
layout(std430, binding = 4) writeonly buffer Hb { uint H[]; };
layout(std430, binding = 5) readonly buffer PB { int POS[]; };
layout(std430, binding = 6) readonly buffer NWb { float NW[]; }; /* flag 16: the next norm's weights */
layout(std430, binding = 7) writeonly buffer H2b { uint H2[]; }; /* EPI 5: the V cache */
layout(std430, binding = 8) readonly buffer XRb { vec4 XR4[]; }; /* flag 4: the residual x */
layout(std430, binding = 9) writeonly buffer XNb { float XN[]; }; /* flag 16: x * NW */
#ifdef LADE_COUNT
layout(std430, binding = 10) buffer Cb { uint CNT[]; };
#endif

layout(push_constant) uniform P { /* struct pc_matmul */
    uint ncols;    /* K, a multiple of 32 */
    uint nrows;
    uint ntok;
    uint x_stride; /* a multiple of 4 */
    uint y_stride;
    uint y_off;
    uint flags;    /* 1 accumulate, 2 gather X rows through SEL, 4 the norm folded,
                    * 16 x * NW out (matmul.comp), 8 see the top */
    uint epi;
    uint head_dim;
    uint rope_dims;
    uint slot0;
    float mscale;
    float eps;     /* flag 4 */
    uint kvdim;    /* EPI 5 */
} p;

#define EPI p.epi
#define VROWS (EPI == 1u ? 2u * ROWS_WG : ROWS_WG)
#define W_NROWS (EPI == 1u ? 2u * p.nrows : p.nrows)
#include "weights.glsl"
#include "q8act.glsl"
#include "mm_norm.glsl"
float rope_freq(uint i)
{
    return intBitsToFloat(POS[FREQ_OFF + i]);
}
#include "rope.glsl"
#include "mm_epilogue.glsl"

int dot4(uint a, uint b)
{
#ifdef LADE_SDOT
    return sdot4x8(int(a), int(b), 0);
#else
    ivec4 x = ivec4(bitfieldExtract(int(a), 0, 8), bitfieldExtract(int(a), 8, 8),
                    bitfieldExtract(int(a), 16, 8), bitfieldExtract(int(a), 24, 8));
    ivec4 y = ivec4(bitfieldExtract(int(b), 0, 8), bitfieldExtract(int(b), 8, 8),
                    bitfieldExtract(int(b), 16, 8), bitfieldExtract(int(b), 24, 8));
    return x.x * y.x + x.y * y.y + x.z * y.z + x.w * y.w;
#endif
}

/* Bits 0-3 of h to bit 4 of bytes 0-3 (the Q5 formats' fifth bits). */
uint spread4(uint h)
{
    return (((h & 15u) * 0x00204081u) & 0x01010101u) << 4;
}

/* Block blk of a row (nb blocks of 32 a row) of weights of format type,
 * in a matrix of wrows rows from w_base on (weights.glsl's tail): 8 words of packed bytes, word i holding elements 4i .. 4i+3, and the
 * scales term() takes, d and m (m 0 where there is none). The format is a
 * parameter, not WTYPE read here, so that main passes each row's own (a
 * stacked matrix whose rows come in two formats, as Q4_K_M's Q, K and V:
 * weights.glsl's TAIL_ROW); where there is no tail it is the spec
 * constant, so the branches fold. The loads
 * are weights.glsl's, so the counting variant counts them.
 *
 * A K-quant's 32-block j is sub-block j of its 256-element super-block
 * (b = 8 s + j: K, so nb, is a multiple of 256). Its scales are decoded
 * here, for the whole block: a few integer operations per 32 weights,
 * where matmul.comp (weights.glsl's w_chunk8) decodes them again for
 * every run of 8. The layout is the float path's, as stored: see
 * docs/kernels.md for why the scales are not stored decoded. */
void w_block(uint type, uint wrows, uint row, uint blk, uint nb, out uint q[8], out float d,
             out float m)
{
    uint b = row * nb + blk;
    m = 0.0;
    if (type == T_Q8_0) { /* repacked (llama/repack.h): 32 quant bytes, then the scales */
        uvec4 lo = W16(2u * b), hi = W16(2u * b + 1u);
        for (uint i = 0u; i < 4u; i++) {
            q[i] = lo[i];
            q[4u + i] = hi[i];
        }
        d = f16_at(wrows * nb * 32u + 2u * b);
    } else if (type == T_Q4_0) { /* repacked: byte j holds elements j (low) and j+16 */
        uvec4 w = W16(b);
        for (uint i = 0u; i < 4u; i++) {
            q[i] = w[i] & 0x0f0f0f0fu;
            q[4u + i] = (w[i] >> 4) & 0x0f0f0f0fu;
        }
        d = f16_at(wrows * nb * 16u + 2u * b);
    } else if (type == T_Q4_K || type == T_Q5_K) {
        /* As stored (144 / 176 bytes, 16-byte aligned): one 16-byte load
         * brings d, dmin and the 12 scale bytes; sub-block j's element l
         * is nibble j & 1 of qs[32 (j >> 1) + l] (two loads), its fifth
         * bit (Q5_K) bit j of qh[l] (two more). dw = d sc and mn = dmin mi
         * are exact (an f16 times a 6-bit integer), and the element
         * dw q - mn is a _1 format's with m = -mn. */
        uint j = b & 7u, s = (b >> 3) * (type == T_Q4_K ? 9u : 11u);
        uvec4 head = W16(s);
        uvec2 sm = k_scale_min_w(head.yzw, j);
        vec2 dmin = unpackHalf2x16(head.x);
        precise float dw = dmin.x * float(sm.x);
        precise float mn = dmin.y * float(sm.y);
        d = dw;
        m = -mn;
        uint qo = s + (type == T_Q4_K ? 1u : 3u) + 2u * (j >> 1), sh = 4u * (j & 1u);
        uvec4 lo = W16(qo), hi = W16(qo + 1u), hlo = uvec4(0u), hhi = uvec4(0u);
        if (type == T_Q5_K) {
            hlo = W16(s + 1u);
            hhi = W16(s + 2u);
        }
        for (uint i = 0u; i < 4u; i++) {
            q[i] = ((lo[i] >> sh) & 0x0f0f0f0fu) | (((hlo[i] >> j) & 0x01010101u) << 4);
            q[4u + i] = ((hi[i] >> sh) & 0x0f0f0f0fu) | (((hhi[i] >> j) & 0x01010101u) << 4);
        }
    } else if (type == T_Q6_K) {
        /* Repacked (llama/repack.h): super-block s's ql[128] qh[64] at
         * 192 s, its scales[16] and d at 18 s after every super-block's
         * quants. Sub-block j = 4 h + k: element l has its low 4 bits in
         * nibble k >> 1 of ql[64 h + 32 (k & 1) + l], its top 2 in bits
         * 2k, 2k+1 of qh[32 h + l]; elements 0-15 scale scales[2j], 16-31
         * scales[2j + 1]. q - 32 as signed bytes without a borrow across
         * bytes: 128 + q - 32 stays in 96..159, and flipping bit 7 back
         * leaves q - 32 in two's complement. d = d sc0, m = d sc1 (exact:
         * an f16 times an 8-bit integer). */
        uint j = b & 7u, s = b >> 3, hf = j >> 2, k = j & 3u;
        uint qo = 12u * s + 4u * hf + 2u * (k & 1u), ho = 12u * s + 8u + 2u * hf;
        uvec4 lo = W16(qo), hi = W16(qo + 1u), hlo = W16(ho), hhi = W16(ho + 1u);
        uint sh = 4u * (k >> 1);
        for (uint i = 0u; i < 4u; i++) {
            uint a = ((lo[i] >> sh) & 0x0f0f0f0fu) | (((hlo[i] >> (2u * k)) & 0x03030303u) << 4);
            uint c = ((hi[i] >> sh) & 0x0f0f0f0fu) | (((hhi[i] >> (2u * k)) & 0x03030303u) << 4);
            q[i] = ((a | 0x80808080u) - 0x20202020u) ^ 0x80808080u;
            q[4u + i] = ((c | 0x80808080u) - 0x20202020u) ^ 0x80808080u;
        }
        uint sb = wrows * nb * 24u + 18u * s; /* nb / 8 super-blocks of 192 bytes a row */
        uvec2 sc = bytes2_at(sb + 2u * j);
        float dd = f16_at(sb + 16u);
        precise float d0 = dd * sbyte(sc.x);
        precise float d1 = dd * sbyte(sc.y);
        d = d0;
        m = d1;
    } else {
        /* ggml's blocks: Q4_1 d m qs[16] (20 bytes), Q5_0 d qh qs (22),
         * Q5_1 d m qh qs (24); qs as in Q4_0 */
        uint qh = 0u, qo;
        if (type == T_Q4_1) {
            vec2 dm = unpackHalf2x16(W(5u * b));
            d = dm.x;
            m = dm.y;
            qo = 20u * b + 4u;
        } else if (type == T_Q5_1) {
            vec2 dm = unpackHalf2x16(W(6u * b));
            d = dm.x;
            m = dm.y;
            qh = W(6u * b + 1u);
            qo = 24u * b + 8u;
        } else {
            d = f16_at(22u * b);
            qh = u32_at(22u * b + 2u);
            qo = 22u * b + 6u;
        }
        for (uint i = 0u; i < 4u; i++) {
            uint w = u32_at(qo + 4u * i);
            q[i] = (w & 0x0f0f0f0fu) | spread4(qh >> (4u * i));
            q[4u + i] = ((w >> 4) & 0x0f0f0f0fu) | spread4(qh >> (16u + 4u * i));
        }
    }
}

/* A block's term (see the top), from its integer dots over elements 0-15
 * (i0) and 16-31 (i1): Q6_K scales each half on its own; for the other
 * formats only the exact sum i0 + i1 enters. */
float term(uint type, int i0, int i1, int sa, float da, float dw, float m)
{
    if (type == T_Q6_K) {
        precise float s0 = dw * da;
        precise float v0 = s0 * float(i0);
        precise float s1 = m * da;
        precise float v1 = s1 * float(i1);
        precise float v6 = v0 + v1;
        return v6;
    }
    int i = i0 + i1;
    if (type == T_Q4_0)
        i -= 8 * sa;
    else if (type == T_Q5_0)
        i -= 16 * sa;
    precise float s = dw * da;
    precise float v = s * float(i);
    if (type == T_Q4_1 || type == T_Q5_1 || type == T_Q4_K || type == T_Q5_K) {
        precise float u = da * float(sa);
        precise float mu = m * u;
        v = v + mu;
    }
    return v;
}

uint row0_wg()
{
    return (gl_WorkGroupID.y + gl_WorkGroupID.z * 32768u) * ROWS_WG;
}

uint out_row(uint j)
{
    return row0_wg() + (EPI == 1u && j >= ROWS_WG ? j - ROWS_WG : j);
}

uint w_row(uint j)
{
    uint r = min(out_row(j), p.nrows - 1u);
    return EPI == 1u && j >= ROWS_WG ? r + p.nrows : r;
}

void store(uint j, uint t0, uint t, float v)
{
    if (EPI != 0u) {
        stage[j * TILE_T + t] = v;
    } else {
        uint o = (t0 + t) * p.y_stride + p.y_off + out_row(j);
        Y[o] = (p.flags & 1u) != 0u ? Y[o] + v : v;
    }
}

/* Quantise blocks cb0 .. cb0+nbc-1 of the tile's nt tokens into the
 * shared arrays (between barriers: the caller's). */
void stage_chunk(uint cb0, uint nbc, uint t0, uint nt)
{
    for (uint i = gl_LocalInvocationIndex; i < nt * nbc; i += LOCAL) {
        uint t = i / nbc, b = i - t * nbc, tt = t0 + t;
        uint src = ((((p.flags & 2u) != 0u ? uint(SEL[tt]) : tt) * p.x_stride) >> 2) + 8u * (cb0 + b);
        vec4 x[8];
        for (uint k = 0u; k < 8u; k++)
            x[k] = X4[src + k];
        uint q[16];
        float d;
        int s;
        q8_block(x, q, d, s);
        uint o = t * QCB + b;
        for (uint k = 0u; k < 16u; k++)
            qs[16u * o + k] = q[k];
        qd[o] = d;
        qsum[o] = s;
        if ((p.flags & 8u) != 0u && row0_wg() == 0u) {
            uint y = tt * p.y_stride + 18u * (cb0 + b);
            for (uint k = 0u; k < 16u; k++)
                Y[y + k] = uintBitsToFloat(q[k]);
            Y[y + 16u] = d;
            Y[y + 17u] = intBitsToFloat(s);
        }
    }
}

void main()
{
    uint lanes = gl_SubgroupSize;
    uint lane = gl_SubgroupInvocationID;
    uint slots = gl_NumSubgroups;
    uint t0 = gl_WorkGroupID.x * TILE_T;
    uint row0 = row0_wg();
    uint nt = min(TILE_T, p.ntok - t0);
    uint nb = p.ncols >> 5, nch = (nb + QCB - 1u) / QCB;
    if ((p.flags & 4u) != 0u) {
        /* each token's scale, for store(); the first chunk's barrier
         * below orders it */
        rms_scales(t0, nt);
    }
    if ((p.flags & 8u) != 0u) {
        for (uint c = 0u; c < nch; c++) {
            barrier();
            stage_chunk(c * QCB, min(QCB, nb - c * QCB), t0, nt);
        }
        return;
    }
    uint staged = 0xffffffffu; /* the chunk in shared memory */
    /* Every subgroup runs the same passes and chunks (barriers). */
    for (uint j0 = 0u; j0 < VROWS; j0 += slots * RPS) {
        uint j = j0 + gl_SubgroupID * RPS;
        bool live = j < VROWS && out_row(j) < p.nrows; /* uniform across the subgroup */
        uint rows[RPS];
        [[unroll]] for (uint r = 0; r < RPS; r++)
            rows[r] = w_row(j + r);
        precise float acc[RPS][TILE_T];
        [[unroll]] for (uint r = 0; r < RPS; r++)
            [[unroll]] for (uint t = 0; t < TILE_T; t++)
                acc[r][t] = 0.0;
        for (uint c = 0u; c < nch; c++) {
            uint cb0 = c * QCB, nbc = min(QCB, nb - cb0);
            if (c != staged) {
                barrier();
                stage_chunk(cb0, nbc, t0, nt);
                barrier();
                staged = c;
            }
            if (!live)
                continue;
            /* this lane's blocks of the chunk: b = lane (mod lanes), upwards */
            for (uint b = cb0 + (lane + lanes - cb0 % lanes) % lanes; b < cb0 + nbc; b += lanes) {
                uint wq[RPS][8];
                float wd[RPS], wm[RPS];
                uint tp[RPS]; /* each row's format: WTYPE, or the tail's */
                [[unroll]] for (uint r = 0; r < RPS; r++) {
                    if (TAIL_ROW != 0u && rows[r] >= TAIL_ROW) {
                        w_base = TAIL_WORD;
                        w_block(TAIL_TYPE, W_NROWS - TAIL_ROW, rows[r] - TAIL_ROW, b, nb, wq[r], wd[r],
                                wm[r]);
                        w_base = 0u;
                        tp[r] = TAIL_TYPE;
                    } else {
                        w_block(WTYPE, TAIL_ROW != 0u ? TAIL_ROW : W_NROWS, rows[r], b, nb, wq[r],
                                wd[r], wm[r]);
                        tp[r] = WTYPE;
                    }
                }
                uint ob = b - cb0;
                for (uint s = 0u; s < (SUB < TILE_T ? nt : 1u); s += SUB) {
                    [[unroll]] for (uint i = 0; i < SUB; i++) {
                        uint t = SUB < TILE_T ? s + i : i;
                        if (t < nt) {
                            uint o = t * QCB + ob;
                            uint a[16];
                            [[unroll]] for (uint k = 0; k < 16; k++)
                                a[k] = qs[16u * o + k];
                            float da = qd[o];
                            int sa = qsum[o];
                            [[unroll]] for (uint r = 0; r < RPS; r++) {
                                /* each half's two planes, joined exactly */
                                int h0 = 0, h1 = 0, l0 = 0, l1 = 0;
                                [[unroll]] for (uint k = 0; k < 4; k++) {
                                    h0 += dot4(wq[r][k], a[k]);
                                    h1 += dot4(wq[r][4u + k], a[4u + k]);
                                    l0 += dot4(wq[r][k], a[8u + k]);
                                    l1 += dot4(wq[r][4u + k], a[12u + k]);
                                }
                                int i0 = 256 * h0 + l0, i1 = 256 * h1 + l1;
                                acc[r][t] = acc[r][t] + term(tp[r], i0, i1, sa, da, wd[r], wm[r]);
                            }
                        }
                    }
                }
            }
        }
        [[unroll]] for (uint r = 0; r < RPS; r++) {
            [[unroll]] for (uint t = 0; t < TILE_T; t++) {
                if (t < nt) {
                    float v = subgroupAdd(acc[r][t]);
                    if (lane == 0u && live && out_row(j + r) < p.nrows)
                        store(j + r, t0, t, v);
                }
            }
        }
    }
#ifdef LADE_COUNT
    uint bytes = subgroupAdd(wcount);
    if (subgroupElect()) {
        uint old = atomicAdd(CNT[0], bytes);
        if (old + bytes < old)
            atomicAdd(CNT[1], 1u);
    }
#endif
    if (EPI != 0u) {
        barrier();
        epilogue(row0, t0, nt);
    }
}
