#version 450
/* X[t][k] = token_embd[TOK[t]][k], dequantised. One invocation per pair.
 * With norm_out, also XN[t][k] = X[t][k] * NW[k]: the first layer's
 * norm folded into its Q/K/V product reads x times the norm's weights
 * (matmul.comp, MM_NORM_OUT), the same one multiply wherever made. */
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer Wb { uvec4 W4[]; };
layout(std430, binding = 1) readonly buffer Tb { int TOK[]; };
layout(std430, binding = 2) writeonly buffer Xb { float X[]; };
layout(std430, binding = 3) readonly buffer NWb { float NW[]; };
layout(std430, binding = 4) writeonly buffer XNb { float XN[]; };
layout(push_constant) uniform P {
    uint dim;
    uint ntok;
    uint row0;     /* first vocabulary row held by this chunk */
    uint nrows;    /* rows in this chunk */
    uint norm_out; /* 1: XN too */
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
    if (p.norm_out != 0u) {
        XN[t * p.dim + k] = w.x * NW[k];
        XN[t * p.dim + k + 1u] = w.y * NW[k + 1u];
    }
}
