#version 450
/* OUT[j] = argmax_v L[j][v]; ties go to the lowest id, NaN never wins.
 * One workgroup a row, fixed tree: the same answer whatever else is in the step. */
layout(local_size_x_id = 1) in;
layout(constant_id = 1) const uint LOCAL = 64;
layout(std430, binding = 0) readonly buffer Lb { float L[]; };
layout(std430, binding = 1) writeonly buffer Ob { int OUT[]; };
layout(push_constant) uniform P { uint n_vocab; } p;
shared float bv[LOCAL];
shared uint bi[LOCAL];
bool better(float v, uint i, float w, uint j)
{
    return v > w || (v == w && i < j);
}
void main()
{
    uint j = gl_WorkGroupID.x;
    uint i = gl_LocalInvocationID.x;
    float best = -1.0 / 0.0;
    uint besti = 0xffffffffu;
    for (uint v = i; v < p.n_vocab; v += LOCAL) {
        float x = L[j * p.n_vocab + v];
        if (!isnan(x) && better(x, v, best, besti)) {
            best = x;
            besti = v;
        }
    }
    bv[i] = best;
    bi[i] = besti;
    barrier();
    for (uint s = LOCAL / 2u; s > 0u; s >>= 1) {
        if (i < s && better(bv[i + s], bi[i + s], bv[i], bi[i])) {
            bv[i] = bv[i + s];
            bi[i] = bi[i + s];
        }
        barrier();
    }
    if (i == 0u)
        OUT[j] = bi[0] == 0xffffffffu ? 0 : int(bi[0]);
}
