#version 450
/* G[i] = silu(G[i]) * U[i] = G[i] / (1 + exp(-G[i])) * U[i], in place. */
layout(local_size_x = 256) in;
layout(std430, binding = 0) buffer Gb { float G[]; };
layout(std430, binding = 1) readonly buffer Ub { float U[]; };
layout(push_constant) uniform P { uint n; } p;
void main()
{
    uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * 65535u * 256u;
    if (i >= p.n)
        return;
    float g = G[i];
    G[i] = g / (1.0 + exp(-g)) * U[i];
}
