/* RoPE on one adjacent pair (x[2i], x[2i+1]) of a head: the angle is
 * pos * theta^(-d / rope_dims) for the pair's first dimension d within its
 * head, and pairs at d >= rope_dims are not rotated. Shared by rope_kv.comp
 * and the matrix kernel's fused epilogue (matmul.comp), so both give the
 * same bits. */
vec2 rope_rot(vec2 x, uint d, float pos, uint rope_dims, float theta)
{
    if (d >= rope_dims)
        return x;
    float freq = pow(theta, -float(d) / float(rope_dims));
    float a = pos * freq;
    float c = cos(a), s = sin(a);
    return vec2(x.x * c - x.y * s, x.x * s + x.y * c);
}
