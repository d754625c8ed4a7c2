#version 450
/* Y[t][y_off + r] (+)= sum_k W[r][k] * X[sel(t)][k]
 * for the rows r of one weight chunk, up to TILE_T tokens per workgroup.
 *
 * A workgroup owns a block of ROWS_WG weight rows and a tile of up to
 * TILE_T tokens: each run of weights is loaded and decoded once and
 * applied to every token of the tile (acc[RPS][TILE_T] a lane), so a step
 * of up to TILE_T rows loads every weight once (64 in the wide
 * geometries: issue #22; the counting variant, LADE_COUNT, measures it).
 * Grid: x = token tile (fastest, so the workgroups that read the same
 * weight rows run back to back and all but the first find them in L2),
 * y + 32768 z = block of ROWS_WG rows. A subgroup reduces RPS rows at once, taking every
 * (number of subgroups)-th block of RPS rows, so the grid is right whatever
 * subgroup size the driver picks. A lane reads runs of 8 weights (one
 * 16-byte load for f16) and 8 inputs a step, UNROLL runs of each of its
 * RPS rows before it uses any, so that RPS * UNROLL loads a lane may be in
 * flight. (Both are 1 on GPUs: docs/kernels.md, "What the H200 says",
 * has the sweeps that found more of either no faster.)
 * Reductions use subgroupAdd, with no barriers: on CPU drivers a barrier
 * is a coroutine switch per SIMD group.
 *
 * SPLITK > 1 gives each row SPLITK subgroups (more warps in flight when a
 * matrix has few rows, shorter chains when rows are long): subgroup f of
 * the group takes runs f, f + SPLITK, ...; their subgroupAdd results are
 * added in order f = 0, 1, ... through shared memory.
 *
 * Batch invariance, which lookahead's exactness rests on: every output is
 * reduced in the same order whatever T, TILE_T, RPS, UNROLL, the tile or
 * the grid: lane l of subgroup f accumulates its runs k = 8l .. 8l+7 +
 * 8S(f + SPLITK i), i = 0, 1, .., one explicit fma each, in that order,
 * then subgroupAdd combines the S partial sums and the SPLITK subgroup sums
 * are added in order, identically for every dispatch on this device. A
 * token's result therefore does not depend on which other tokens share its
 * step, nor on the geometry picked for the device (SPLITK is one value per
 * device: it changes the order).
 *
 * EPI (push constant `epi`, so that no more pipelines are built) fuses the
 * pass that would otherwise follow the product, so that a layer has
 * fewer phases (each ends in a barrier that drains the GPU): the sums are
 * staged in shared memory, and after one barrier the workgroup's lanes
 * finish them.
 *   1 SwiGLU: W holds gate rows then up rows (2 nrows rows, one buffer);
 *     a workgroup reduces gate rows row0.. and the same up rows, and writes
 *     silu(gate) * up (swiglu.comp's formula) to Y.
 *   2 RoPE (the Q projection): rotated pairs to Y.
 *   3 RoPE, then f16 into the KV cache H at slot `slot0 + t` (K).
 *   4 f16 into the cache, unrotated (V).
 *   5 Q, K and V stacked (one buffer of qdim + 2 kvdim rows, `y_stride`
 *     qdim, `kvdim`): each row goes the way 2, 3 or 4 sends it, K into the
 *     cache H and V into the cache H2, so a layer's three products are one
 *     dispatch.
 *   6 what EPI 0 stores (Y, or Y + sum with flag 1), after the barrier,
 *     with the flags below.
 * For 2-4 a pair (2i, 2i+1) must lie in one workgroup: ROWS_WG and y_off
 * even (the host checks); so RoPE's NeoX pairs, rope_dims/2 apart, are not
 * done here (nor biases or Q/K norms, which come before RoPE). Every row's sum is the one EPI 0 computes, and
 * the finishing arithmetic is per element, so none of this depends on T.
 *
 * Flag 4 (MM_NORM) folds the RMSNorm that feeds the product into it: X
 * holds xw = x * NW (the residual times the norm's weights, one multiply
 * an element, made by whatever wrote x: flag 16 below, or embed.comp),
 * XR the residual x, and the product is
 *   Y[t] = (W xw[t]) * s[t],  s[t] = 1 / sqrt(mean(XR[t]^2) + eps)
 * Every workgroup computes s[t] of its tokens itself, one subgroup a
 * token, with one fixed tree (rms_sumsq), so a token's scale is the same
 * bits in every workgroup and every step; it scales each finished sum.
 * The inner loop is the plain product's. (Multiplying each decoded
 * weight by the norm's weight instead cost lavapipe a quarter of its
 * decode speed; multiplying each input inside the unrolled token loop
 * made its compiler take minutes over a 64-token tile.) The result
 * differs from the separate norm's by rounding only; test_gpu_model's
 * fused-against-unfused test bounds it. A layer then has no norm
 * dispatch: issue #22's 6 dispatches a layer.
 *
 * Flag 16 (MM_NORM_OUT), with flag 1 (the residual adds, Wo and Wd):
 * each new x[t][c] is also written times NW[c], the next norm's weights,
 * to XN: the next MM_NORM product's X.
 *
 * Both flags act in the epilogue (s on the staged sums, x * NW in EPI 6,
 * which stores what EPI 0 would): the host gives a product with either
 * flag and no other epilogue EPI 6. */
#extension GL_EXT_control_flow_attributes : enable
#extension GL_KHR_shader_subgroup_basic : enable
#extension GL_KHR_shader_subgroup_arithmetic : enable

layout(local_size_x_id = 1) in;
layout(constant_id = 1) const uint LOCAL = 64;
layout(constant_id = 2) const uint TILE_T = 8;
layout(constant_id = 3) const uint ROWS_WG = 32; /* rows a workgroup covers */
layout(constant_id = 4) const uint RPS = 1;      /* rows a subgroup reduces together */
layout(constant_id = 5) const uint UNROLL = 1;   /* runs a lane loads before using them */
layout(constant_id = 6) const uint SPLITK = 1;   /* subgroups sharing one row's runs (see main) */
/* Diagnostics only (tools/lade-mmbench.c): 1 loads no inputs, 2 loads no
 * weights, to tell which loads bound a kernel; results are then
 * meaningless. 0 in every model. */
layout(constant_id = 7) const uint PROBE = 0;
/* Floats of input a workgroup may stage in shared memory (0: none). When
 * the tile's input rows fit, they are copied there once and every
 * subgroup's runs read them from shared memory instead of each reading
 * the whole rows from L1 for each of its rows; the values, and the order
 * they are used in, are the same. */
layout(constant_id = 8) const uint XSH = 0;
/* POS[FREQ_OFF + i]: RoPE's frequency of pair i, float bits (EPI 2, 3). */
layout(constant_id = 9) const uint FREQ_OFF = 0;
/* Tokens of the tile one pass of the token loop unrolls (0: the whole
 * tile). Less than TILE_T, the loop runs ceil(nt / SUB_T) passes and
 * indexes acc[] by a computed token: a wide tile then costs a narrow step
 * no more than a narrow tile would, where registers are memory anyway
 * (CPU drivers); on GPUs the whole tile, so that acc[] stays in registers. */
layout(constant_id = 10) const uint SUB_T = 0;
const uint SUB = SUB_T == 0u || SUB_T > TILE_T ? TILE_T : SUB_T;
shared vec4 xs[XSH > 0u ? XSH / 4u : 1u];
bool staged = false; /* this workgroup's inputs are in xs */

/* With SPLITK > 1, each subgroup's sums of a row, by subgroup, for the
 * subgroup that adds them in order (subgroups of at least 4 lanes). */
shared float part[SPLITK > 1u ? (LOCAL / 4u) * RPS * TILE_T : 1u];
/* Sums waiting for the epilogue: [virtual row of the workgroup][token]. */
shared float stage[2u * ROWS_WG * TILE_T];

layout(std430, binding = 0) readonly buffer Wb { uvec4 W4[]; };
layout(std430, binding = 1) readonly buffer Xb { vec4 X4[]; };
layout(std430, binding = 2) buffer Yb { float Y[]; };
layout(std430, binding = 3) readonly buffer Sb { int SEL[]; };
layout(std430, binding = 4) writeonly buffer Hb { uint H[]; };  /* EPI 3, 4: a KV cache (f16 pairs) */
layout(std430, binding = 5) readonly buffer PB { int POS[]; }; /* EPI 2, 3: positions of the step's rows, RoPE's table */
layout(std430, binding = 6) readonly buffer NWb { float NW[]; }; /* flag 16: the next norm's weights */
layout(std430, binding = 7) writeonly buffer H2b { uint H2[]; }; /* EPI 5: the V cache */
layout(std430, binding = 8) readonly buffer XRb { vec4 XR4[]; }; /* flag 4: the residual x */
layout(std430, binding = 9) writeonly buffer XNb { float XN[]; }; /* flag 16: x * NW */
#ifdef LADE_COUNT
/* The counting variant (matmul_count, llm_model_opts.count): weight bytes
 * loaded, as a 64-bit count in two words (low, high). */
layout(std430, binding = 10) buffer Cb { uint CNT[]; };
#endif

layout(push_constant) uniform P { /* struct pc_matmul */
    uint ncols;    /* K, a multiple of 4 */
    uint nrows;    /* rows in this chunk */
    uint ntok;     /* T */
    uint x_stride; /* floats between tokens in X, a multiple of 4 */
    uint y_stride; /* floats between tokens in Y */
    uint y_off;    /* first output column of this chunk */
    uint flags;    /* 1: accumulate into Y (residual add), 2: gather X rows through SEL,
                    * 4: RMSNorm folded in, 16: x * NW out (see the top) */
    uint epi;      /* fused epilogue, see above (a push constant, not a
                    * specialization: no more pipelines to build) */
    /* epi 2-4 only */
    uint head_dim;
    uint rope_dims;
    uint slot0;    /* cache slot of the step's first row */
    float mscale;  /* RoPE's cos and sin multiplied by it */
    float eps;     /* flag 4: the norm's epsilon */
    uint kvdim;    /* EPI 5: K's and V's rows */
} p;

#define EPI p.epi
#define NORM ((p.flags & 4u) != 0u)
#define VROWS (EPI == 1u ? 2u * ROWS_WG : ROWS_WG)
/* EPI 1: the buffer holds gate and up, 2 nrows rows. */
#define W_NROWS (EPI == 1u ? 2u * p.nrows : p.nrows)
#include "weights.glsl"
float rope_freq(uint i)
{
    return intBitsToFloat(POS[FREQ_OFF + i]);
}
#include "rope.glsl"

#include "mm_norm.glsl"

/* Weights k .. k+7 of a row (PROBE 2: made up from k). */
void w_load(uint row, uint k, out float w[8])
{
    if (PROBE == 2u) {
        for (uint i = 0u; i < 8u; i++)
            w[i] = float(k + i) * 1e-9;
    } else {
        w_chunk8(row, k, p.ncols, w);
    }
}

/* Where token t0 + t's input row starts, in vec4 units (t < nt). Tiles
 * of up to 32 tokens hold them in registers, found once (xr, main); wider
 * ones compute them where they are used: a tile of 64 tokens cannot
 * afford 64 more registers. */
const uint XR = TILE_T <= 32u ? TILE_T : 1u;
uint xr[XR];
uint xrow(uint t0, uint t)
{
    if (TILE_T <= 32u)
        return xr[t];
    if (XSH > 0u && staged)
        return t * (p.ncols >> 2);
    return ((p.flags & 2u) != 0u ? uint(SEL[t0 + t]) : t0 + t) * (p.x_stride >> 2);
}

/* Inputs 4i .. 4i+3 (PROBE 1: made up from i). */
vec4 x_load(uint i)
{
    return PROBE == 1u ? vec4(float(i) * 1e-9) : XSH > 0u && staged ? xs[i] : X4[i];
}

float dot8(float w[8], vec4 a, vec4 b, float s)
{
    s = fma(w[0], a.x, s);
    s = fma(w[1], a.y, s);
    s = fma(w[2], a.z, s);
    s = fma(w[3], a.w, s);
    s = fma(w[4], b.x, s);
    s = fma(w[5], b.y, s);
    s = fma(w[6], b.z, s);
    s = fma(w[7], b.w, s);
    return s;
}

/* Output row (within this chunk) of virtual row j of the workgroup, and
 * the weight row it reads: EPI 1 reduces up row r after gate row r. */
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

/* A finished sum of virtual row j, token t0 + t. (This is inlined at
 * every row and token of the unrolled tile: anything more here, such as
 * the folded norm's scale or x * NW, cost lavapipe a third of its speed
 * in wide steps; those wait for the epilogue, EPI 6.) */
void store(uint j, uint t0, uint t, float v)
{
    if (EPI != 0u) {
        stage[j * TILE_T + t] = v;
    } else {
        uint o = (t0 + t) * p.y_stride + p.y_off + out_row(j);
        Y[o] = (p.flags & 1u) != 0u ? Y[o] + v : v;
    }
}

#include "mm_epilogue.glsl"

void main()
{
    uint lanes = gl_SubgroupSize;
    uint lane = gl_SubgroupInvocationID;
    uint slots = gl_NumSubgroups;
    uint t0 = gl_WorkGroupID.x * TILE_T;
    uint row0 = row0_wg();
    uint nt = min(TILE_T, p.ntok - t0);
    if (TILE_T <= 32u) {
        [[unroll]] for (uint t = 0; t < XR; t++) {
            uint tt = t0 + min(t, nt - 1u);
            xr[t] = (((p.flags & 2u) != 0u ? uint(SEL[tt]) : tt) * p.x_stride) >> 2;
        }
    }
    bool stage_x = XSH > 0u && nt * p.ncols <= XSH;
    if (NORM) {
        rms_scales(t0, nt); /* (mm_norm.glsl) */
        if (!stage_x)
            barrier();
    }
    if (stage_x) {
        /* Stage the tile's inputs: token t's row at t * ncols / 4. */
        uint n4 = p.ncols >> 2;
        for (uint i = gl_LocalInvocationIndex; i < nt * n4; i += LOCAL) {
            uint t = i / n4, tt = t0 + t;
            uint src = (((p.flags & 2u) != 0u ? uint(SEL[tt]) : tt) * p.x_stride) >> 2;
            xs[i] = X4[src + i - t * n4];
        }
        barrier();
        staged = true;
        if (TILE_T <= 32u) {
            [[unroll]] for (uint t = 0; t < XR; t++)
                xr[t] = min(t, nt - 1u) * n4;
        }
    }
    uint stride = 8u * lanes; /* k between a subgroup's runs */
    uint k8 = p.ncols & ~7u;
    uint f = gl_SubgroupID % SPLITK, groups = slots / SPLITK, grp = gl_SubgroupID / SPLITK;
    uint kstep = stride * SPLITK; /* k between one lane's runs */
    /* Fewer subgroups than SPLITK (a geometry the host refuses, as when
     * a driver picks wider subgroups): do nothing rather than loop forever. */
    if (groups == 0u)
        return;
    /* Every subgroup runs the same iterations (the shared-memory merge has
     * barriers); `live` says whether this one has rows to do. */
    for (uint j0 = 0u; j0 < VROWS; j0 += groups * RPS) {
        uint j = j0 + grp * RPS; /* virtual row: EPI 1's up rows follow its gate rows */
        bool live = grp < groups && j < VROWS && out_row(j) < p.nrows; /* uniform across the subgroup */
        /* With an epilogue a later pass may still hold live up rows. */
        if (!live && SPLITK == 1u && EPI == 0u)
            break;
        /* A block's rows past the end re-read the last row; their sums are
         * never stored. (A block never straddles gate and up: ROWS_WG is a
         * multiple of RPS.) */
        uint rows[RPS];
        [[unroll]] for (uint r = 0; r < RPS; r++)
            rows[r] = w_row(j + r);
        /* Loops over the tile run to the constant TILE_T and test t < nt, so
         * the compiler keeps acc[] in registers. */
        float acc[RPS][TILE_T];
        [[unroll]] for (uint r = 0; r < RPS; r++)
            [[unroll]] for (uint t = 0; t < TILE_T; t++)
                acc[r][t] = 0.0;
        if (live) {
            uint k = 8u * lane + stride * f;
            for (; k + (UNROLL - 1u) * kstep < k8; k += UNROLL * kstep) {
                float w[UNROLL][RPS][8];
                [[unroll]] for (uint u = 0; u < UNROLL; u++)
                    [[unroll]] for (uint r = 0; r < RPS; r++)
                        w_load(rows[r], k + u * kstep, w[u][r]);
                [[unroll]] for (uint u = 0; u < UNROLL; u++) {
                    uint xk = (k + u * kstep) >> 2;
                    for (uint s = 0u; s < (SUB < TILE_T ? nt : 1u); s += SUB) {
                        [[unroll]] for (uint i = 0; i < SUB; i++) {
                            uint t = SUB < TILE_T ? s + i : i;
                            if (t < nt) {
                                vec4 a = x_load(xrow(t0, t) + xk), b = x_load(xrow(t0, t) + xk + 1u);
                                [[unroll]] for (uint r = 0; r < RPS; r++)
                                    acc[r][t] = dot8(w[u][r], a, b, acc[r][t]);
                            }
                        }
                    }
                }
            }
            /* Fewer than UNROLL runs left: one at a time, same order. */
            for (; k < k8; k += kstep) {
                float w[RPS][8];
                [[unroll]] for (uint r = 0; r < RPS; r++)
                    w_load(rows[r], k, w[r]);
                for (uint s = 0u; s < (SUB < TILE_T ? nt : 1u); s += SUB) {
                    [[unroll]] for (uint i = 0; i < SUB; i++) {
                        uint t = SUB < TILE_T ? s + i : i;
                        if (t < nt) {
                            uint xk = xrow(t0, t) + (k >> 2);
                            vec4 a = x_load(xk), b = x_load(xk + 1u);
                            [[unroll]] for (uint r = 0; r < RPS; r++)
                                acc[r][t] = dot8(w[r], a, b, acc[r][t]);
                        }
                    }
                }
            }
            /* Rows whose length is not a multiple of 8 (stories260K's FFN
             * is 172): the last pairs, lane l of subgroup 0 taking pair l,
             * after the runs. */
            uint kt = k8 + 2u * lane;
            if (f == 0u && kt < p.ncols) {
                [[unroll]] for (uint r = 0; r < RPS; r++) {
                    vec2 w2 = w_pair(rows[r], kt, p.ncols);
                    for (uint s = 0u; s < (SUB < TILE_T ? nt : 1u); s += SUB) {
                        [[unroll]] for (uint i = 0; i < SUB; i++) {
                            uint t = SUB < TILE_T ? s + i : i;
                            if (t < nt) {
                                vec4 a = x_load(xrow(t0, t) + (kt >> 2));
                                vec2 x2 = (kt & 2u) != 0u ? a.zw : a.xy;
                                acc[r][t] = fma(w2.y, x2.y, fma(w2.x, x2.x, acc[r][t]));
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
                    if (SPLITK == 1u) {
                        if (lane == 0u && live && out_row(j + r) < p.nrows)
                            store(j + r, t0, t, v);
                    } else if (lane == 0u && live) {
                        part[(gl_SubgroupID * RPS + r) * TILE_T + t] = v;
                    }
                }
            }
        }
        if (SPLITK > 1u) {
            barrier();
            if (f == 0u && lane == 0u && live) {
                [[unroll]] for (uint r = 0; r < RPS; r++) {
                    [[unroll]] for (uint t = 0; t < TILE_T; t++) {
                        if (t < nt && out_row(j + r) < p.nrows) {
                            float v = part[((grp * SPLITK) * RPS + r) * TILE_T + t];
                            for (uint g = 1u; g < SPLITK; g++)
                                v += part[((grp * SPLITK + g) * RPS + r) * TILE_T + t];
                            store(j + r, t0, t, v);
                        }
                    }
                }
            }
            barrier();
        }
    }
#ifdef LADE_COUNT
    /* Every lane of the subgroup is here (the loop's exits are uniform). */
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
