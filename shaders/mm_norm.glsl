/* The folded RMSNorm's scale (flag 4, MM_NORM) of the matrix kernels,
 * shared by matmul.comp and matmul_q8.comp so that both compute the same
 * bits: the includer declares XR4 (the residual x, binding B_MM_XR), SEL,
 * p (x_stride, ncols, flags, eps), TILE_T and enables the subgroup
 * extensions. The products themselves read x times the norm's weights
 * (X, made by x's writer: MM_NORM_OUT), so they only scale their sums. */

/* Each token's scale s[t] = 1 / sqrt(mean(XR[t]^2) + eps). */
shared float rs[TILE_T];

/* The sum of squares of token row src's d4 vec4s, by one whole subgroup:
 * lane l takes vec4s l, l + S, l + 2S, ... (S lanes), four fmas each in
 * component order, then subgroupAdd. The tree depends on the device's
 * subgroup size only, so a token's scale is the same bits in every
 * workgroup and step that computes it. */
float rms_sumsq(uint src, uint d4)
{
    float s = 0.0;
    for (uint k = gl_SubgroupInvocationID; k < d4; k += gl_SubgroupSize) {
        vec4 v = XR4[src + k];
        s = fma(v.x, v.x, s);
        s = fma(v.y, v.y, s);
        s = fma(v.z, v.z, s);
        s = fma(v.w, v.w, s);
    }
    return subgroupAdd(s);
}

/* rs[] of the tile's nt tokens from t0, one subgroup a token; the caller
 * puts a barrier between this and any use. */
void rms_scales(uint t0, uint nt)
{
    for (uint t = gl_SubgroupID; t < nt; t += gl_NumSubgroups) {
        uint tt = t0 + t;
        uint src = (((p.flags & 2u) != 0u ? uint(SEL[tt]) : tt) * p.x_stride) >> 2;
        float ss = rms_sumsq(src, p.ncols >> 2);
        if (subgroupElect())
            rs[t] = 1.0 / sqrt(ss / float(p.ncols) + p.eps);
    }
}
