#version 450
/* Attention of row t, query head h over its visible keys: the committed
 * cache positions 0..n_past-1, then its ancestor chain in this step (root
 * first, itself last), the chain taken from the rows' parents, so the mask
 * is computed here from one int per row and never uploaded as a matrix.
 *
 * Online softmax. Thread j takes virtual positions j, j+LOCAL, ...; the
 * LOCAL partial states merge in a fixed tree. Work is split by position
 * only, so a row sees the same arithmetic whether its ancestors sit in the
 * cache (plain decoding) or in scratch slots (a lookahead step). */
layout(local_size_x_id = 1) in;
layout(constant_id = 1) const uint LOCAL = 32;
layout(constant_id = 2) const uint HD_MAX = 128;
layout(constant_id = 3) const uint MAX_ROWS = 512;

layout(std430, binding = 0) readonly buffer Qb { float Q[]; };
layout(std430, binding = 1) readonly buffer KCb { uint KC[]; };
layout(std430, binding = 2) readonly buffer VCb { uint VC[]; };
layout(std430, binding = 3) writeonly buffer Ob { float O[]; };
layout(std430, binding = 4) readonly buffer PAb { int PARENT[]; };
layout(push_constant) uniform P {
    uint n_past;
    uint slot0;     /* first scratch slot (n_ctx) */
    uint head_dim;
    uint n_heads;
    uint kv_group;  /* query heads per kv head */
    uint kvdim;
    float scale;
} p;

shared int chain[MAX_ROWS];
shared uint chain_len;
shared float q[HD_MAX];
shared float sm[LOCAL];
shared float sl[LOCAL];
shared float sacc[LOCAL * HD_MAX];

void main()
{
    uint h = gl_WorkGroupID.x;
    uint t = gl_WorkGroupID.y;
    uint i = gl_LocalInvocationID.x;
    uint hd = p.head_dim;
    if (i == 0u) {
        uint d = 0u;
        for (int j = int(t); j >= 0 && d < MAX_ROWS; j = PARENT[j])
            d++;
        chain_len = d;
        int j = int(t);
        for (uint k = d; k > 0u; k--) {
            chain[k - 1u] = j;
            j = PARENT[j];
        }
    }
    for (uint k = i; k < hd; k += LOCAL)
        q[k] = Q[(t * p.n_heads + h) * hd + k];
    barrier();
    uint kvh = h / p.kv_group;
    uint len = p.n_past + chain_len;
    float m = -1.0 / 0.0, l = 0.0;
    float acc[HD_MAX];
    for (uint k = 0u; k < hd; k++)
        acc[k] = 0.0;
    for (uint pos = i; pos < len; pos += LOCAL) {
        uint slot = pos < p.n_past ? pos : p.slot0 + uint(chain[pos - p.n_past]);
        uint base = (slot * p.kvdim + kvh * hd) >> 1;
        float s = 0.0;
        for (uint k = 0u; k < hd; k += 2u) {
            vec2 kk = unpackHalf2x16(KC[base + (k >> 1)]);
            s = fma(q[k], kk.x, s);
            s = fma(q[k + 1u], kk.y, s);
        }
        s *= p.scale;
        float mn = max(m, s);
        float a = exp(m - mn), b = exp(s - mn);
        l = l * a + b;
        for (uint k = 0u; k < hd; k += 2u) {
            vec2 vv = unpackHalf2x16(VC[base + (k >> 1)]);
            acc[k] = fma(acc[k], a, b * vv.x);
            acc[k + 1u] = fma(acc[k + 1u], a, b * vv.y);
        }
        m = mn;
    }
    sm[i] = m;
    sl[i] = l;
    for (uint k = 0u; k < hd; k++)
        sacc[i * HD_MAX + k] = acc[k];
    barrier();
    for (uint s = LOCAL / 2u; s > 0u; s >>= 1) {
        if (i < s && sl[i + s] > 0.0) {
            float m1 = sm[i], m2 = sm[i + s];
            float mn = max(m1, m2);
            float a = sl[i] > 0.0 ? exp(m1 - mn) : 0.0, b = exp(m2 - mn);
            sl[i] = sl[i] * a + sl[i + s] * b;
            for (uint k = 0u; k < hd; k++)
                sacc[i * HD_MAX + k] = sacc[i * HD_MAX + k] * a + sacc[(i + s) * HD_MAX + k] * b;
            sm[i] = mn;
        }
        barrier();
    }
    float inv = 1.0 / sl[0];
    for (uint k = i; k < hd; k += LOCAL)
        O[(t * p.n_heads + h) * hd + k] = sacc[k] * inv;
}
