#version 450
/* The device's practical read bandwidth: every invocation reads every
 * (total)-th 16-byte word of a large buffer, four loads in flight, and
 * folds them so the compiler must keep every load. The benchmarks report
 * weight-read bandwidth as a fraction of what this reaches. */
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer Ib { uvec4 IN[]; };
layout(std430, binding = 1) writeonly buffer Ob { uint OUT[]; };
layout(push_constant) uniform P { uint n; } p; /* 16-byte words */
void main()
{
    uint total = gl_NumWorkGroups.x * 256u;
    uint k = gl_GlobalInvocationID.x;
    uvec4 a = uvec4(0u), b = uvec4(0u), c = uvec4(0u), d = uvec4(0u);
    for (; k + 3u * total < p.n; k += 4u * total) {
        a ^= IN[k];
        b ^= IN[k + total];
        c ^= IN[k + 2u * total];
        d ^= IN[k + 3u * total];
    }
    for (; k < p.n; k += total)
        a ^= IN[k];
    a ^= b ^ c ^ d;
    if (a.x == 0x9e3779b9u && a.y == 0x7f4a7c15u) /* never, in practice */
        OUT[0] = a.z ^ a.w;
}
