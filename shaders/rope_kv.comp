#version 450
/* RoPE (rope.glsl) on every head of Q and K, then K and V of each row
 * written as f16 into its scratch slot (slot0 + t) of this layer's cache.
 * Invocation (pair, t): pairs [0, nq) are Q's rotation pairs, rotated in
 * place (with NeoX a pair's dims are rope_dims/2 apart, so one invocation
 * owns both); [nq, nq + nkv) are K's and V's adjacent dims (2i, 2i+1),
 * which make one 32-bit word of the cache: each K dim is computed from K
 * and its partner, which this pass only reads. */
layout(local_size_x = 64) in;
layout(constant_id = 0) const uint FREQ_OFF = 0; /* POS[FREQ_OFF + i]: RoPE's frequency of pair i (float bits) */
layout(constant_id = 1) const bool NEOX = false; /* pairs (i, i + rope_dims/2) */
layout(std430, binding = 0) buffer Qb { float Q[]; };
layout(std430, binding = 1) readonly buffer Kb { float K[]; };
layout(std430, binding = 2) readonly buffer Vb { float V[]; };
layout(std430, binding = 3) writeonly buffer KCb { uint KC[]; };
layout(std430, binding = 4) writeonly buffer VCb { uint VC[]; };
layout(std430, binding = 5) readonly buffer PB { int POS[]; };
layout(push_constant) uniform P { /* struct pc_rope */
    uint ntok;
    uint qdim;      /* n_heads * head_dim */
    uint kvdim;     /* n_kv_heads * head_dim */
    uint head_dim;
    uint rope_dims;
    uint slot0;     /* first scratch slot (after every sequence's region) */
    float mscale;   /* cos and sin multiplied by it (llm_config.rope_mscale) */
} p;

float rope_freq(uint i)
{
    return intBitsToFloat(POS[FREQ_OFF + i]);
}
#include "rope.glsl"

/* K's dim e (within its head, which starts at hb) after RoPE. */
float k_rot(uint hb, uint e, float pos)
{
    if (e >= p.rope_dims)
        return K[hb + e];
    uint half_ = p.rope_dims >> 1;
    uint partner = NEOX ? (e < half_ ? e + half_ : e - half_) : e ^ 1u;
    return rope_elem(K[hb + e], K[hb + partner], e, pos, p.rope_dims, NEOX, p.mscale);
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
        uint hp = p.head_dim / 2u, j = pr % hp, half_ = p.rope_dims >> 1;
        if (j >= half_)
            return;
        uint base = t * p.qdim + (pr / hp) * p.head_dim;
        uint a = base + (NEOX ? j : 2u * j), b = base + (NEOX ? j + half_ : 2u * j + 1u);
        float x0 = Q[a], x1 = Q[b];
        Q[a] = rope_elem(x0, x1, a - base, pos, p.rope_dims, NEOX, p.mscale);
        Q[b] = rope_elem(x1, x0, b - base, pos, p.rope_dims, NEOX, p.mscale);
    } else {
        uint e = 2u * (pr - nq);
        uint o = t * p.kvdim + e, d = e % p.head_dim, hb = o - d;
        vec2 r = vec2(k_rot(hb, d, pos), k_rot(hb, d + 1u, pos));
        uint w = ((p.slot0 + t) * p.kvdim + e) >> 1;
        KC[w] = packHalf2x16(r);
        VC[w] = packHalf2x16(vec2(V[o], V[o + 1u]));
    }
}
