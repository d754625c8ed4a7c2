#version 450
/* RMSNorm of each head of Q and K (qwen3), in place, before RoPE:
 * x = x / sqrt(mean(x^2) + eps) * w, w the head_dim weights of Q's or K's
 * norm. One workgroup a (head, row): heads [0, n_heads) of Q, then
 * [n_heads, n_heads + n_kv_heads) of K. Lane l sums dims l, l + LOCAL, ...
 * (one fma each), then subgroupAdd and the subgroups' sums added in
 * order: the order depends on the device (its subgroup size) only, never
 * on the step's rows (rmsnorm.comp's scheme). */
#extension GL_KHR_shader_subgroup_basic : enable
#extension GL_KHR_shader_subgroup_arithmetic : enable
layout(local_size_x_id = 1) in;
layout(constant_id = 1) const uint LOCAL = 64;
layout(std430, binding = 0) buffer Qb { float Q[]; };
layout(std430, binding = 1) buffer Kb { float K[]; };
layout(std430, binding = 2) readonly buffer QWb { float QW[]; };
layout(std430, binding = 3) readonly buffer KWb { float KW[]; };
layout(push_constant) uniform P { /* struct pc_qk_norm */
    uint head_dim;
    uint n_heads;
    uint n_kv_heads;
    float eps;
} p;
shared float red[LOCAL];
shared float total;

float load(bool k, uint o) { return k ? K[o] : Q[o]; }

void main()
{
    uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y, i = gl_LocalInvocationID.x;
    bool k = h >= p.n_heads;
    uint base = k ? (t * p.n_kv_heads + h - p.n_heads) * p.head_dim : (t * p.n_heads + h) * p.head_dim;
    float s = 0.0;
    for (uint d = i; d < p.head_dim; d += LOCAL) {
        float v = load(k, base + d);
        s = fma(v, v, s);
    }
    s = subgroupAdd(s);
    if (gl_SubgroupInvocationID == 0u)
        red[gl_SubgroupID] = s;
    barrier();
    if (i == 0u) {
        float a = 0.0;
        for (uint g = 0u; g < gl_NumSubgroups; g++)
            a += red[g];
        total = a;
    }
    barrier();
    float scale = 1.0 / sqrt(total / float(p.head_dim) + p.eps);
    for (uint d = i; d < p.head_dim; d += LOCAL) {
        if (k)
            K[base + d] = (K[base + d] * scale) * KW[d];
        else
            Q[base + d] = (Q[base + d] * scale) * QW[d];
    }
}
