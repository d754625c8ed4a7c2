#version 450
/* Y[t][y_off + r] (+)= sum_k W[r][k] * X[sel(t)][k]
 * for the rows r of one weight chunk, up to TILE_T tokens per workgroup.
 *
 * Grid: x = token tile (fastest, so the workgroups that read the same
 * weight rows run back to back and all but the first find them in L2:
 * a wide step reads its weights from memory about once), y + 32768 z =
 * block of ROWS_WG rows. A subgroup reduces RPS rows at once, taking every
 * (number of subgroups)-th block of RPS rows, so the grid is right whatever
 * subgroup size the driver picks. A lane reads runs of RUN weights (RUN
 * 8: one 16-byte load for f16, half a Q4_0 block's quants; RUN 32: a whole
 * Q4_0 block, one load, so that more bytes are in flight a lane) and
 * their RUN inputs a step, UNROLL runs of each of its RPS rows before it
 * uses any, so that RPS * UNROLL loads a lane may be in flight.
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
 * the grid: lane l of subgroup f accumulates its runs k = RUN l .. RUN l +
 * RUN-1 + RUN S (f + SPLITK i), i = 0, 1, .., one explicit fma each, in
 * that order (then the part-run and pairs at the end of a row), then
 * subgroupAdd combines the S partial sums and the SPLITK subgroup sums
 * are added in order, identically for every dispatch on this device. A
 * token's result therefore does not depend on which other tokens share its
 * step, nor on the geometry picked for the device (SPLITK and RUN are one
 * value per model load: they change the order). */
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
layout(constant_id = 7) const uint RUN = 8;      /* weights a lane takes at a time: 8, 16 or 32 */
/* Diagnostics only (lade-mmbench): 1 reads no inputs, 2 reads no weights;
 * the results are then meaningless. 0 in every model. */
layout(constant_id = 8) const uint PROBE = 0;

/* With SPLITK > 1, each subgroup's sums of a row, by subgroup, for the
 * subgroup that adds them in order (subgroups of at least 4 lanes). */
shared float part[SPLITK > 1u ? (LOCAL / 4u) * RPS * TILE_T : 1u];

layout(std430, binding = 0) readonly buffer Wb { uvec4 W4[]; };
layout(std430, binding = 1) readonly buffer Xb { vec4 X4[]; };
layout(std430, binding = 2) buffer Yb { float Y[]; };
layout(std430, binding = 3) readonly buffer Sb { int SEL[]; };

layout(push_constant) uniform P {
    uint ncols;    /* K, a multiple of 4 */
    uint nrows;    /* rows in this chunk */
    uint ntok;     /* T */
    uint x_stride; /* floats between tokens in X, a multiple of 4 */
    uint y_stride; /* floats between tokens in Y */
    uint y_off;    /* first output column of this chunk */
    uint flags;    /* 1: accumulate into Y (residual add), 2: gather X rows through SEL */
} p;

#define W_NROWS p.nrows
#include "weights.glsl"

/* A lane's state, at module scope rather than passed to functions (some
 * drivers fail on arrays sized by specialization constants as function
 * parameters): the inputs' offsets for each token of the tile (vec4
 * units), the weights of the runs in flight and the sums. */
uint xrow[TILE_T];
float wv[UNROLL][RPS][RUN];
float acc[RPS][TILE_T];

/* Weights k .. k+7 of a row into wv[u][r][c .. c+7]; PROBE 2 makes them
 * from k instead of loading them (see PROBE). */
void w_run(uint row, uint k, uint u, uint r, uint c)
{
    float v[8];
    if (PROBE == 2u) {
        [[unroll]] for (uint i = 0u; i < 8u; i++)
            v[i] = float(k + i) * 1e-9;
    } else {
        w_chunk8(row, k, p.ncols, v);
    }
    [[unroll]] for (uint i = 0u; i < 8u; i++)
        wv[u][r][c + i] = v[i];
}

/* acc[r][t] += wv[u][r][c .. c+7] . X[t][4 xk .. 4 xk + 7] for every row
 * of the block and token of the tile, one fma each in order of k. PROBE 1
 * reads no inputs (the weights stand in). */
void mac_run(uint nt, uint xk, uint u, uint c)
{
    [[unroll]] for (uint t = 0; t < TILE_T; t++) {
        if (t < nt) {
            vec4 a, b;
            if (PROBE == 1u) {
                a = vec4(wv[u][0][c], wv[u][0][c + 1u], wv[u][0][c + 2u], wv[u][0][c + 3u]);
                b = vec4(wv[u][0][c + 4u], wv[u][0][c + 5u], wv[u][0][c + 6u], wv[u][0][c + 7u]);
            } else {
                a = X4[xrow[t] + xk];
                b = X4[xrow[t] + xk + 1u];
            }
            [[unroll]] for (uint r = 0; r < RPS; r++) {
                float s = acc[r][t];
                s = fma(wv[u][r][c], a.x, s);
                s = fma(wv[u][r][c + 1u], a.y, s);
                s = fma(wv[u][r][c + 2u], a.z, s);
                s = fma(wv[u][r][c + 3u], a.w, s);
                s = fma(wv[u][r][c + 4u], b.x, s);
                s = fma(wv[u][r][c + 5u], b.y, s);
                s = fma(wv[u][r][c + 6u], b.z, s);
                s = fma(wv[u][r][c + 7u], b.w, s);
                acc[r][t] = s;
            }
        }
    }
}

void main()
{
    uint lanes = gl_SubgroupSize;
    uint lane = gl_SubgroupInvocationID;
    uint slots = gl_NumSubgroups;
    uint t0 = gl_WorkGroupID.x * TILE_T;
    uint row0 = (gl_WorkGroupID.y + gl_WorkGroupID.z * 32768u) * ROWS_WG;
    uint nt = min(TILE_T, p.ntok - t0);
    [[unroll]] for (uint t = 0; t < TILE_T; t++) {
        uint tt = t0 + min(t, nt - 1u);
        xrow[t] = (((p.flags & 2u) != 0u ? uint(SEL[tt]) : tt) * p.x_stride) >> 2;
    }
    uint stride = RUN * lanes; /* k between a subgroup's runs */
    uint kr = p.ncols - p.ncols % RUN, k8 = p.ncols & ~7u;
    uint f = gl_SubgroupID % SPLITK, groups = slots / SPLITK, grp = gl_SubgroupID / SPLITK;
    uint kstep = stride * SPLITK; /* k between one lane's runs */
    /* Every subgroup runs the same iterations (the shared-memory merge has
     * barriers); `live` says whether this one has rows to do. */
    for (uint j0 = 0u; j0 < ROWS_WG; j0 += groups * RPS) {
        uint j = j0 + grp * RPS;
        bool live = grp < groups && row0 + j < p.nrows; /* uniform across the subgroup */
        if (!live && SPLITK == 1u)
            break;
        /* A block's rows past the end re-read the last row; their sums are
         * never stored. */
        uint rows[RPS];
        [[unroll]] for (uint r = 0; r < RPS; r++)
            rows[r] = min(row0 + j + r, p.nrows - 1u);
        /* Loops over the tile run to the constant TILE_T and test t < nt, so
         * the compiler keeps acc[] in registers. */
        [[unroll]] for (uint r = 0; r < RPS; r++)
            [[unroll]] for (uint t = 0; t < TILE_T; t++)
                acc[r][t] = 0.0;
        if (live) {
            uint k = RUN * lane + stride * f;
            for (; k + (UNROLL - 1u) * kstep < kr; k += UNROLL * kstep) {
                [[unroll]] for (uint u = 0; u < UNROLL; u++)
                    [[unroll]] for (uint r = 0; r < RPS; r++)
                        [[unroll]] for (uint c = 0; c < RUN; c += 8u)
                            w_run(rows[r], k + u * kstep + c, u, r, c);
                [[unroll]] for (uint u = 0; u < UNROLL; u++)
                    [[unroll]] for (uint c = 0; c < RUN; c += 8u)
                        mac_run(nt, (k + u * kstep + c) >> 2, u, c);
            }
            /* Fewer than UNROLL runs left: one at a time, same order. */
            for (; k < kr; k += kstep) {
                [[unroll]] for (uint r = 0; r < RPS; r++)
                    [[unroll]] for (uint c = 0; c < RUN; c += 8u)
                        w_run(rows[r], k + c, 0u, r, c);
                [[unroll]] for (uint c = 0; c < RUN; c += 8u)
                    mac_run(nt, (k + c) >> 2, 0u, c);
            }
            /* A row length that is not a multiple of RUN: the last part-run
             * in runs of 8, lane l of subgroup 0 taking the l-th... */
            k = kr + 8u * lane;
            if (f == 0u && k < k8) {
                [[unroll]] for (uint r = 0; r < RPS; r++)
                    w_run(rows[r], k, 0u, r, 0u);
                mac_run(nt, k >> 2, 0u, 0u);
            }
            /* ... and a length that is not a multiple of 8 (stories260K's
             * FFN is 172): the last pairs, lane l taking pair l. */
            uint kt = k8 + 2u * lane;
            if (f == 0u && kt < p.ncols) {
                [[unroll]] for (uint r = 0; r < RPS; r++) {
                    vec2 w2 = w_pair(rows[r], kt, p.ncols);
                    [[unroll]] for (uint t = 0; t < TILE_T; t++) {
                        if (t < nt) {
                            vec4 a = X4[xrow[t] + (kt >> 2)];
                            vec2 x2 = (kt & 2u) != 0u ? a.zw : a.xy;
                            acc[r][t] = fma(w2.y, x2.y, fma(w2.x, x2.x, acc[r][t]));
                        }
                    }
                }
            }
        }
        [[unroll]] for (uint r = 0; r < RPS; r++) {
            uint row = row0 + j + r;
            [[unroll]] for (uint t = 0; t < TILE_T; t++) {
                if (t < nt) {
                    float v = subgroupAdd(acc[r][t]);
                    if (SPLITK == 1u) {
                        if (lane == 0u && row < p.nrows) {
                            uint o = (t0 + t) * p.y_stride + p.y_off + row;
                            Y[o] = (p.flags & 1u) != 0u ? Y[o] + v : v;
                        }
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
                    uint row = row0 + j + r;
                    [[unroll]] for (uint t = 0; t < TILE_T; t++) {
                        if (t < nt && row < p.nrows) {
                            float v = part[((grp * SPLITK) * RPS + r) * TILE_T + t];
                            for (uint g = 1u; g < SPLITK; g++)
                                v += part[((grp * SPLITK + g) * RPS + r) * TILE_T + t];
                            uint o = (t0 + t) * p.y_stride + p.y_off + row;
                            Y[o] = (p.flags & 1u) != 0u ? Y[o] + v : v;
                        }
                    }
                }
            }
            barrier();
        }
    }
}
