#version 450
/* Y[t][y_off + r] (+)= sum_k W[r][k] * X[sel(t)][k]
 * for the rows r of one weight chunk, up to TILE_T tokens per workgroup.
 *
 * A workgroup covers ROWS_WG rows; each subgroup reduces one row at a
 * time, taking every (number of subgroups)-th row, so the grid is right
 * whatever subgroup size the driver picks for this pipeline. Reductions use
 * subgroupAdd, with no barriers: on CPU drivers a barrier is a coroutine
 * switch per SIMD group and dominated the old shared-memory version.
 *
 * Batch invariance, which lookahead's exactness rests on: every output is
 * reduced in the same order whatever T, the tile or the grid: lane l of a
 * subgroup of S lanes accumulates k = 2l, 2l+1, 2l+2S, ... with explicit
 * fma, then subgroupAdd combines the S partial sums, identically for every
 * dispatch of this pipeline. A token's result therefore does not depend on
 * which other tokens share its step. */
#extension GL_EXT_control_flow_attributes : enable
#extension GL_KHR_shader_subgroup_basic : enable
#extension GL_KHR_shader_subgroup_arithmetic : enable

layout(local_size_x_id = 1) in;
layout(constant_id = 1) const uint LOCAL = 64;
layout(constant_id = 2) const uint TILE_T = 8;
layout(constant_id = 3) const uint ROWS_WG = 32; /* rows a workgroup covers */

layout(std430, binding = 0) readonly buffer Wb { uint W[]; };
layout(std430, binding = 1) readonly buffer Xb { float X[]; };
layout(std430, binding = 2) buffer Yb { float Y[]; };
layout(std430, binding = 3) readonly buffer Sb { int SEL[]; };

layout(push_constant) uniform P {
    uint ncols;    /* K */
    uint nrows;    /* rows in this chunk */
    uint ntok;     /* T */
    uint x_stride; /* floats between tokens in X */
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
    uint xrow[TILE_T];
    [[unroll]] for (uint t = 0; t < TILE_T; t++) {
        uint tt = t0 + min(t, nt - 1u);
        xrow[t] = ((p.flags & 2u) != 0u ? uint(SEL[tt]) : tt) * p.x_stride;
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
        for (uint k = 2u * lane; k < p.ncols; k += 2u * lanes) {
            vec2 w = w_pair(row, k, p.ncols);
            [[unroll]] for (uint t = 0; t < TILE_T; t++) {
                if (t < nt) {
                    acc[t] = fma(w.x, X[xrow[t] + k], acc[t]);
                    acc[t] = fma(w.y, X[xrow[t] + k + 1u], acc[t]);
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
