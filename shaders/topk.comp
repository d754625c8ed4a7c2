#version 450
/* A TOPK row's candidates on the GPU (decoding/dec.h, dec_top_k): the k
 * tokens first in the order (logit * inv_t descending, id ascending; NaN
 * last), written in id order with their scaled logits, so the host reads
 * k pairs instead of n_vocab logits. One workgroup a row.
 *
 * Each scaled logit maps to a 32-bit key whose unsigned order is the
 * logit order (-0 as +0, NaN lowest). Four passes of an 8-bit radix
 * histogram find the k-th largest key T and how many of the keys equal to
 * T to take (the lowest ids, as ties go to the lower id). Then every lane
 * counts, in its own run of ids, the keys above T and those equal to it;
 * one lane turns the counts into each run's place in the output, and the
 * lanes write their runs in id order. Only comparisons: the result is
 * exact, whatever LOCAL is. */
layout(local_size_x_id = 1) in;
layout(constant_id = 1) const uint LOCAL = 64;
const uint KMAX = 256u; /* DEC_TOPK_MAX */
layout(std430, binding = 0) readonly buffer Lb { float L[]; };
/* Per TOPK row, 4 words: its LM head row, its k, its sequence's
 * 1 / temperature as float bits */
layout(std430, binding = 1) readonly buffer Rb { uint ROW[]; };
layout(std430, binding = 2) writeonly buffer Ob { uvec2 OUT[]; }; /* [KMAX] per TOPK row: id, logit bits */
layout(push_constant) uniform P { uint n_vocab; } p;
float inv_t; /* this row's, from ROW */

shared uint hist[256];
shared uint s_prefix, s_need;
shared uint gt[LOCAL];
shared uint eq[LOCAL];

float scaled(uint base, uint v)
{
    precise float x = L[base + v] * inv_t; /* one rounded product, as in C */
    return x;
}

uint key(float x)
{
    if (isnan(x))
        return 0u;
    uint u = x == 0.0 ? 0u : floatBitsToUint(x);
    return (u & 0x80000000u) != 0u ? ~u : (u | 0x80000000u);
}

void main()
{
    uint j = gl_WorkGroupID.x, i = gl_LocalInvocationID.x, n = p.n_vocab;
    uint base = ROW[4u * j] * n;
    inv_t = uintBitsToFloat(ROW[4u * j + 2u]);
    if (i == 0u) {
        s_prefix = 0u;
        s_need = ROW[4u * j + 1u];
    }
    uint mask = 0u;
    for (int shift = 24; shift >= 0; shift -= 8) {
        for (uint b = i; b < 256u; b += LOCAL)
            hist[b] = 0u;
        barrier();
        uint prefix = s_prefix;
        for (uint v = i; v < n; v += LOCAL) {
            uint kv = key(scaled(base, v));
            if ((kv & mask) == prefix)
                atomicAdd(hist[(kv >> uint(shift)) & 255u], 1u);
        }
        barrier();
        if (i == 0u) {
            uint need = s_need, b = 255u;
            while (b > 0u && hist[b] < need) {
                need -= hist[b];
                b--;
            }
            s_need = need;
            s_prefix = prefix | (b << uint(shift));
        }
        mask |= 255u << uint(shift);
        barrier();
    }
    uint T = s_prefix, take_eq = s_need;
    /* Runs of ids, one a lane, in lane order. */
    uint run = (n + LOCAL - 1u) / LOCAL, lo = min(i * run, n), hi = min(lo + run, n);
    uint ngt = 0u, neq = 0u;
    for (uint v = lo; v < hi; v++) {
        uint kv = key(scaled(base, v));
        ngt += kv > T ? 1u : 0u;
        neq += kv == T ? 1u : 0u;
    }
    gt[i] = ngt;
    eq[i] = neq;
    barrier();
    if (i == 0u) {
        /* gt[l] becomes run l's first output place, eq[l] the ties it may
         * take. */
        uint at = 0u, ties_left = take_eq;
        for (uint l = 0u; l < LOCAL; l++) {
            uint e = min(eq[l], ties_left);
            ties_left -= e;
            uint g = gt[l];
            gt[l] = at;
            eq[l] = e;
            at += g + e;
        }
    }
    barrier();
    uint at = j * KMAX + gt[i], ties = eq[i];
    for (uint v = lo; v < hi; v++) {
        float x = scaled(base, v);
        uint kv = key(x);
        if (kv > T || (kv == T && ties > 0u)) {
            if (kv == T)
                ties--;
            OUT[at++] = uvec2(v, floatBitsToUint(x));
        }
    }
}
