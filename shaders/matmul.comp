#version 450
/* Y[t][y_off + r] (+)= sum_k W[r][k] * X[sel(t)][k]
 * for the rows r of one weight chunk, up to TILE_T tokens per workgroup.
 *
 * A workgroup covers ROWS_WG rows; each subgroup reduces one row at a
 * time, taking every (number of subgroups)-th row, so the grid is right
 * whatever subgroup size the driver picks for this pipeline. A lane reads
 * runs of 8 weights (then, for a ragged row end, one pair) (one 16-byte load for f16) and 8 inputs (two vec4
 * loads) a step. Reductions use subgroupAdd, with no barriers: on CPU
 * drivers a barrier is a coroutine switch per SIMD group.
 *
 * Batch invariance, which lookahead's exactness rests on: every output is
 * reduced in the same order whatever T, TILE_T, the tile or the grid: lane
 * l of a subgroup of S lanes accumulates k = 8l .. 8l+7, then 8l+8S .. ,
 * one explicit fma each, then subgroupAdd combines the S partial sums,
 * identically for every dispatch on this device. A token's result
 * therefore does not depend on which other tokens share its step, nor on
 * which of the TILE_T pipelines computed it. */
#extension GL_EXT_control_flow_attributes : enable
#extension GL_KHR_shader_subgroup_basic : enable
#extension GL_KHR_shader_subgroup_arithmetic : enable

layout(local_size_x_id = 1) in;
layout(constant_id = 1) const uint LOCAL = 64;
layout(constant_id = 2) const uint TILE_T = 8;
layout(constant_id = 3) const uint ROWS_WG = 32; /* rows a workgroup covers */

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

#include "weights.glsl"

void main()
{
    uint lanes = gl_SubgroupSize;
    uint lane = gl_SubgroupInvocationID;
    uint slots = gl_NumSubgroups;
    uint row0 = (gl_WorkGroupID.x + gl_WorkGroupID.y * 32768u) * ROWS_WG;
    uint t0 = gl_WorkGroupID.z * TILE_T;
    uint nt = min(TILE_T, p.ntok - t0);
    uint xrow[TILE_T]; /* in vec4 units */
    [[unroll]] for (uint t = 0; t < TILE_T; t++) {
        uint tt = t0 + min(t, nt - 1u);
        xrow[t] = (((p.flags & 2u) != 0u ? uint(SEL[tt]) : tt) * p.x_stride) >> 2;
    }
    for (uint j = gl_SubgroupID; j < ROWS_WG; j += slots) {
        uint row = row0 + j;
        if (row >= p.nrows)
            break; /* uniform across the subgroup */
        /* Loops over the tile run to the constant TILE_T and test t < nt, so
         * the compiler keeps acc[] in registers. */
        float acc[TILE_T];
        [[unroll]] for (uint t = 0; t < TILE_T; t++)
            acc[t] = 0.0;
        uint k8 = p.ncols & ~7u;
        for (uint k = 8u * lane; k < k8; k += 8u * lanes) {
            float w[8];
            w_chunk8(row, k, p.ncols, w);
            [[unroll]] for (uint t = 0; t < TILE_T; t++) {
                if (t < nt) {
                    vec4 a = X4[xrow[t] + (k >> 2)], b = X4[xrow[t] + (k >> 2) + 1u];
                    float s = acc[t];
                    s = fma(w[0], a.x, s);
                    s = fma(w[1], a.y, s);
                    s = fma(w[2], a.z, s);
                    s = fma(w[3], a.w, s);
                    s = fma(w[4], b.x, s);
                    s = fma(w[5], b.y, s);
                    s = fma(w[6], b.z, s);
                    s = fma(w[7], b.w, s);
                    acc[t] = s;
                }
            }
        }
        /* Rows whose length is not a multiple of 8 (stories260K's FFN is
         * 172): the last pairs, lane l taking pair l, after the runs. */
        uint kt = k8 + 2u * lane;
        if (kt < p.ncols) {
            vec2 w2 = w_pair(row, kt, p.ncols);
            [[unroll]] for (uint t = 0; t < TILE_T; t++) {
                if (t < nt) {
                    vec4 a = X4[xrow[t] + (kt >> 2)];
                    vec2 x2 = (kt & 2u) != 0u ? a.zw : a.xy;
                    acc[t] = fma(w2.y, x2.y, fma(w2.x, x2.x, acc[t]));
                }
            }
        }
        [[unroll]] for (uint t = 0; t < TILE_T; t++) {
            if (t < nt) {
                float v = subgroupAdd(acc[t]);
                if (lane == 0u) {
                    uint o = (t0 + t) * p.y_stride + p.y_off + row;
                    Y[o] = (p.flags & 1u) != 0u ? Y[o] + v : v;
                }
            }
        }
    }
}
