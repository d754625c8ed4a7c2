/* RoPE as llama/config.h defines it: pair i of a head's first rope_dims
 * dims turns by pos * rope_freq(i) (llm_config_rope_freq's table, which
 * the includer reads from its buffer), cos and sin scaled by mscale; dims
 * at or past rope_dims are not rotated. Pair i is the adjacent dims (2i,
 * 2i+1), or with NeoX rotation (i, i + rope_dims/2). rope_elem computes one
 * element of a pair from its own value and its partner's with the
 * operations of the pair formula (x0 c - x1 s, x0 s + x1 c), so any way of
 * splitting the work gives the same bits. Shared by rope_kv.comp and the
 * matrix kernel's fused epilogue (matmul.comp, adjacent pairs only). */
/* cos and sin of pair i's angle at pos, times mscale. */
vec2 rope_cs(uint i, float pos, float mscale)
{
    float a = pos * rope_freq(i);
    return vec2(cos(a) * mscale, sin(a) * mscale);
}

float rope_elem(float x, float xp, uint e, float pos, uint rope_dims, bool neox, float mscale)
{
    uint half_ = rope_dims >> 1;
    vec2 cs = rope_cs(neox ? e % half_ : e >> 1, pos, mscale);
    bool second = neox ? e >= half_ : (e & 1u) != 0u;
    return second ? xp * cs.y + x * cs.x : x * cs.x - xp * cs.y;
}

/* The adjacent pair (d, d+1) of a head, d even: rope_elem's operations,
 * one cos and sin. */
vec2 rope_rot(vec2 x, uint d, float pos, uint rope_dims, float mscale)
{
    if (d >= rope_dims)
        return x;
    vec2 cs = rope_cs(d >> 1, pos, mscale);
    return vec2(x.x * cs.x - x.y * cs.y, x.x * cs.y + x.y * cs.x);
}
