#version 450
/* RoPE on adjacent pairs (x[2i], x[2i+1]) of every head of Q and K, angle
 * pos * theta^(-2i/rope_dims) for 2i < rope_dims, then K and V of each row
 * written as f16 into its scratch slot (n_ctx + t) of this layer's cache.
 * Invocation (pair, t): pairs [0, nq) are Q's, [nq, nq + nkv) K's and V's. */
layout(local_size_x = 64) in;
layout(std430, binding = 0) buffer Qb { float Q[]; };
layout(std430, binding = 1) readonly buffer Kb { float K[]; };
layout(std430, binding = 2) readonly buffer Vb { float V[]; };
layout(std430, binding = 3) writeonly buffer KCb { uint KC[]; };
layout(std430, binding = 4) writeonly buffer VCb { uint VC[]; };
layout(std430, binding = 5) readonly buffer PB { int POS[]; };
layout(push_constant) uniform P {
    uint ntok;
    uint qdim;      /* n_heads * head_dim */
    uint kvdim;     /* n_kv_heads * head_dim */
    uint head_dim;
    uint rope_dims;
    uint slot0;     /* first scratch slot (n_ctx) */
    float theta;
} p;
#include "rope.glsl"

vec2 rot(vec2 x, uint d, float pos)
{
    return rope_rot(x, d, pos, p.rope_dims, p.theta);
}
void main()
{
    uint pr = gl_GlobalInvocationID.x;
    uint t = gl_GlobalInvocationID.y;
    uint nq = p.qdim / 2u, nkv = p.kvdim / 2u;
    if (t >= p.ntok || pr >= nq + nkv)
        return;
    float pos = float(POS[t]);
    if (pr < nq) {
        uint e = 2u * pr;
        uint o = t * p.qdim + e;
        vec2 r = rot(vec2(Q[o], Q[o + 1u]), e % p.head_dim, pos);
        Q[o] = r.x;
        Q[o + 1u] = r.y;
    } else {
        uint e = 2u * (pr - nq);
        uint o = t * p.kvdim + e;
        vec2 r = rot(vec2(K[o], K[o + 1u]), e % p.head_dim, pos);
        uint w = ((p.slot0 + t) * p.kvdim + e) >> 1;
        KC[w] = packHalf2x16(r);
        VC[w] = packHalf2x16(vec2(V[o], V[o + 1u]));
    }
}
