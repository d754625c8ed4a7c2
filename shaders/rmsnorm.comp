#version 450
/* Y[j] = X[src(j)] / sqrt(mean(X[src(j)]^2) + eps) * w, one workgroup a row;
 * src(j) = SEL[j] when gathering (final norm on the rows whose logits are
 * wanted), else j. Fixed reduction tree: per-row result independent of T. */
layout(local_size_x_id = 1) in;
layout(constant_id = 1) const uint LOCAL = 64;
layout(std430, binding = 0) readonly buffer Xb { float X[]; };
layout(std430, binding = 1) readonly buffer Wb { float NW[]; };
layout(std430, binding = 2) writeonly buffer Yb { float Y[]; };
layout(std430, binding = 3) readonly buffer Sb { int SEL[]; };
layout(push_constant) uniform P {
    uint dim;
    uint gather;
    float eps;
} p;
shared float red[LOCAL];
void main()
{
    uint j = gl_WorkGroupID.x;
    uint i = gl_LocalInvocationID.x;
    uint src = (p.gather != 0u ? uint(SEL[j]) : j) * p.dim;
    float s = 0.0;
    for (uint k = i; k < p.dim; k += LOCAL)
        s = fma(X[src + k], X[src + k], s);
    red[i] = s;
    barrier();
    for (uint h = LOCAL / 2u; h > 0u; h >>= 1) {
        if (i < h)
            red[i] += red[i + h];
        barrier();
    }
    float scale = 1.0 / sqrt(red[0] / float(p.dim) + p.eps);
    for (uint k = i; k < p.dim; k += LOCAL)
        Y[j * p.dim + k] = (X[src + k] * scale) * NW[k];
}
