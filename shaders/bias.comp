#version 450
/* Y[t][i] += B[i] for the step's ntok rows of n: a projection's bias
 * (qwen2's Q, K, V), added once its whole dot product is done, as the CPU
 * reference adds it (llama/ref.c add_bias). */
layout(local_size_x = 64) in;
layout(std430, binding = 0) buffer Yb { float Y[]; };
layout(std430, binding = 1) readonly buffer Bb { float B[]; };
layout(push_constant) uniform P { /* struct pc_bias */
    uint n;
    uint ntok;
} p;
void main()
{
    uint i = gl_GlobalInvocationID.x, t = gl_GlobalInvocationID.y;
    if (i < p.n && t < p.ntok)
        Y[t * p.n + i] += B[i];
}
