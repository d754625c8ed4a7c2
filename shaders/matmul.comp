#version 450
/* Y[t][y_off + r] (+)= sum_k W[r][k] * X[sel(t)][k]
 * for the rows r of one weight chunk and up to TILE_T tokens per workgroup.
 *
 * Batch invariance, which lookahead's exactness rests on: every output is
 * reduced in the same order whatever T, the tile or the grid: thread i
 * accumulates k = 2i, 2i+1, 2i+2*LOCAL, ... with explicit fma, then a fixed
 * shared-memory tree adds the LOCAL partial sums. A token's result therefore
 * does not depend on which other tokens share its step. */
#extension GL_EXT_control_flow_attributes : enable

layout(local_size_x_id = 1) in;
layout(constant_id = 1) const uint LOCAL = 64;
layout(constant_id = 2) const uint TILE_T = 8;

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

shared float red[TILE_T * LOCAL];

void main()
{
    uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * 32768u;
    uint t0 = gl_WorkGroupID.z * TILE_T;
    uint i = gl_LocalInvocationID.x;
    if (row >= p.nrows)
        return; /* whole workgroup leaves together: row is uniform */
    uint nt = min(TILE_T, p.ntok - t0);
    uint xrow[TILE_T];
    float acc[TILE_T];
    [[unroll]] for (uint t = 0; t < TILE_T; t++) {
        acc[t] = 0.0;
        uint tt = t0 + min(t, nt - 1u);
        xrow[t] = ((p.flags & 2u) != 0u ? uint(SEL[tt]) : tt) * p.x_stride;
    }
    for (uint k = 2u * i; k < p.ncols; k += 2u * LOCAL) {
        vec2 w = w_pair(row, k, p.ncols);
        [[unroll]] for (uint t = 0; t < TILE_T; t++) {
            if (t < nt) {
                acc[t] = fma(w.x, X[xrow[t] + k], acc[t]);
                acc[t] = fma(w.y, X[xrow[t] + k + 1u], acc[t]);
            }
        }
    }
    [[unroll]] for (uint t = 0; t < TILE_T; t++)
        red[t * LOCAL + i] = acc[t];
    barrier();
    for (uint s = LOCAL / 2u; s > 0u; s >>= 1) {
        if (i < s) {
            [[unroll]] for (uint t = 0; t < TILE_T; t++)
                red[t * LOCAL + i] += red[t * LOCAL + i + s];
        }
        barrier();
    }
    if (i < nt) {
        uint o = (t0 + i) * p.y_stride + p.y_off + row;
        float v = red[i * LOCAL];
        Y[o] = (p.flags & 1u) != 0u ? Y[o] + v : v;
    }
}
