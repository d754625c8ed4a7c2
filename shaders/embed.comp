#version 450
/* X[t][k] = token_embd[TOK[t]][k], dequantised. One invocation per pair. */
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer Wb { uvec4 W4[]; };
layout(std430, binding = 1) readonly buffer Tb { int TOK[]; };
layout(std430, binding = 2) writeonly buffer Xb { float X[]; };
layout(push_constant) uniform P {
    uint dim;
    uint ntok;
    uint row0;  /* first vocabulary row held by this chunk */
    uint nrows; /* rows in this chunk */
} p;
#define W_NROWS p.nrows
#include "weights.glsl"
void main()
{
    uint k = 2u * gl_GlobalInvocationID.x;
    uint t = gl_GlobalInvocationID.y;
    if (k >= p.dim || t >= p.ntok)
        return;
    uint tok = uint(TOK[t]);
    if (tok < p.row0 || tok - p.row0 >= p.nrows)
        return; /* another chunk's row */
    vec2 w = w_pair(tok - p.row0, k, p.dim);
    X[t * p.dim + k] = w.x;
    X[t * p.dim + k + 1u] = w.y;
}
