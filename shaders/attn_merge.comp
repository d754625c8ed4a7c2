#version 450
/* Combines the per-split states attention.comp wrote to PART, in split
 * order, into O = acc / l: invocation (head * head_dim + d, t). A split
 * with no keys (l = 0) is skipped, so a row whose keys fit one split gets
 * exactly the bits the direct path writes. */
layout(local_size_x = 64) in;
layout(constant_id = 2) const uint HD_MAX = 128;
layout(std430, binding = 0) readonly buffer PTb { float PART[]; };
layout(std430, binding = 1) writeonly buffer Ob { float O[]; };
layout(push_constant) uniform P {
    uint head_dim;
    uint n_heads;
    uint nsplit;
    uint max_split;
} p;

void main()
{
    uint i = gl_GlobalInvocationID.x, t = gl_GlobalInvocationID.y;
    if (i >= p.n_heads * p.head_dim)
        return;
    uint head = t * p.n_heads + i / p.head_dim, d = i % p.head_dim;
    float m = 0.0, l = 0.0, acc = 0.0;
    bool any = false;
    for (uint s = 0u; s < p.nsplit; s++) {
        uint o = (head * p.max_split + s) * (HD_MAX + 2u);
        float ls = PART[o + HD_MAX + 1u];
        if (ls > 0.0) {
            float ms = PART[o + HD_MAX], as = PART[o + d];
            if (!any) {
                m = ms;
                l = ls;
                acc = as;
                any = true;
            } else {
                float mn = max(m, ms);
                float a = exp(m - mn), b = exp(ms - mn);
                l = l * a + ls * b;
                acc = acc * a + as * b;
                m = mn;
            }
        }
    }
    O[head * p.head_dim + d] = acc / l;
}
