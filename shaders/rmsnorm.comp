#version 450
/* Y[j] = X[src(j)] / sqrt(mean(X[src(j)]^2) + eps) * w, one workgroup a row;
 * src(j) = SEL[j] when gathering (final norm on the rows whose logits are
 * wanted), else j. dim is a multiple of 4 (checked at load): vec4 loads,
 * LOCAL lanes each summing every LOCAL-th vec4, then subgroupAdd and the
 * subgroups' sums added in subgroup order. The tree depends on the device
 * only, so a row's result does not depend on T. A GPU gets 256 lanes, a
 * CPU driver 64: with 64 lanes on a GPU each lane's 16 dependent loads
 * made the two norms of a 7B layer cost more than its attention. */
#extension GL_KHR_shader_subgroup_basic : enable
#extension GL_KHR_shader_subgroup_arithmetic : enable
layout(local_size_x_id = 1) in;
layout(constant_id = 1) const uint LOCAL = 64;
layout(std430, binding = 0) readonly buffer Xb { vec4 X4[]; };
layout(std430, binding = 1) readonly buffer Wb { vec4 NW4[]; };
layout(std430, binding = 2) writeonly buffer Yb { vec4 Y4[]; };
layout(std430, binding = 3) readonly buffer Sb { int SEL[]; };
layout(push_constant) uniform P {
    uint dim;
    uint gather;
    float eps;
} p;
shared float red[LOCAL];
shared float total;
void main()
{
    uint j = gl_WorkGroupID.x;
    uint i = gl_LocalInvocationID.x;
    uint d4 = p.dim >> 2;
    uint src = (p.gather != 0u ? uint(SEL[j]) : j) * d4;
    float s = 0.0;
    for (uint k = i; k < d4; k += LOCAL) {
        vec4 v = X4[src + k];
        s = fma(v.x, v.x, s);
        s = fma(v.y, v.y, s);
        s = fma(v.z, v.z, s);
        s = fma(v.w, v.w, s);
    }
    s = subgroupAdd(s);
    if (gl_SubgroupInvocationID == 0u)
        red[gl_SubgroupID] = s;
    barrier();
    if (i == 0u) {
        float t = 0.0;
        for (uint g = 0u; g < gl_NumSubgroups; g++)
            t += red[g];
        total = t;
    }
    barrier();
    float scale = 1.0 / sqrt(total / float(p.dim) + p.eps);
    for (uint k = i; k < d4; k += LOCAL)
        Y4[j * d4 + k] = (X4[src + k] * scale) * NW4[k];
}
