#version 450
/* Combines the per-split states attention.comp wrote to PART, in split
 * order, into O = acc / l: invocation (head * head_dim + d, t). A split
 * with no keys (l = 0) is skipped, so a row whose keys fit one split gets
 * exactly the bits the direct path writes. */
layout(local_size_x = 64) in;
layout(constant_id = 2) const uint HD_MAX = 128;
layout(std430, binding = 0) readonly buffer PTb { float PART[]; };
layout(std430, binding = 1) writeonly buffer Ob { float O[]; };
/* The step's two indirect dispatches, attention's and this one's, each a
 * VkDispatchIndirectCommand and a word: the split count is ARGS[7]
 * (written by the host per step, so a recorded step serves any length;
 * this dispatch is empty when there is one split). */
layout(std430, binding = 2) readonly buffer ARGSb { uint ARGS[]; };
layout(push_constant) uniform P {
    uint head_dim;
    uint n_heads;
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
    uint nsplit = ARGS[7];
    for (uint s = 0u; s < nsplit; s++) {
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
