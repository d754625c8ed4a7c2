#version 450
/* Row t of GU holds a gate then an up projection, ffn floats each:
 * gate[k] = silu(gate[k]) * up[k] = g / (1 + exp(-g)) * u, in place.
 * Invocation (k, t). */
layout(local_size_x = 256) in;
layout(std430, binding = 0) buffer GUb { float GU[]; };
layout(push_constant) uniform P { uint ffn; uint ntok; } p;
void main()
{
    uint k = gl_GlobalInvocationID.x, t = gl_GlobalInvocationID.y;
    if (k >= p.ffn || t >= p.ntok)
        return;
    uint i = t * 2u * p.ffn + k;
    float g = GU[i];
    GU[i] = g / (1.0 + exp(-g)) * GU[i + p.ffn];
}
