#version 450
/* Draws on the GPU: for DRAW row k, OUT[out_off + k] = dec_draw() of its
 * logits row (decoding/draw.c has the definition and the same sums in C).
 * The host then reads one token id a row instead of n_vocab logits.
 * One workgroup a row: the lanes find the maximum, add the blocks' weights
 * (a lane a block, each block in id order) and the groups' block sums
 * (a lane a group, in order); lane 0 adds the groups and walks groups,
 * blocks and the chosen block's weights. Every sum has the order the
 * definition gives it, whatever LOCAL is, so the token depends only on
 * the logits, the number and the device's exp().
 *
 * With top-p the nucleus comes first, by bisection as draw.c does it: the
 * mass of "keys >= tau" for tau built a bit at a time (32 weighings),
 * then, if several tokens share the last key, the fewest of them in id
 * order (about log2(n_vocab) more). No sort, no atomics on floats: each
 * weighing is the same ordered sum. Weighing the row each time would
 * recompute its exponentials 33 times; instead the tokens within 8 of the
 * best scaled logit, if at most LIST and holding enough mass, are listed
 * in shared memory by block, in id order, and a weighing adds only those
 * (a tau at or below their lowest key passes unweighed, and every prefix
 * weighed after lies inside the list), as draw.c does. */
layout(local_size_x_id = 1) in;
layout(constant_id = 1) const uint LOCAL = 64;
layout(constant_id = 2) const uint MAXB = 2048; /* blocks a row may have: n_vocab <= MAXB * BLOCK */
const uint BLOCK = 128u; /* DEC_DRAW_BLOCK */
const uint GROUP = 32u;  /* DEC_DRAW_GROUP */
layout(std430, binding = 0) readonly buffer Lb { float L[]; };
/* Per draw, 8 words: its LM head row, its u24, then its sequence's
 * 1 / temperature, min_p and top_p as float bits (rows of several
 * sequences with their own parameters share a step) */
layout(std430, binding = 1) readonly buffer Db { uint D[]; };
layout(std430, binding = 2) buffer Ob { int OUT[]; };
layout(push_constant) uniform P { uint n_vocab; uint out_off; } p;
/* This row's parameters, read from D at the start */
float inv_t, min_p, top_p;
shared float red[LOCAL];
shared float bsum[MAXB];
shared float gsum[MAXB / GROUP];
shared float s_mass;
shared uint s_ties;
const uint LIST = 1024u;  /* tokens the list holds */
shared uint boff[MAXB + 1u]; /* block b's tokens: list[boff[b] .. boff[b + 1]) */
shared uint lid[LIST], lkey[LIST];
shared float lw[LIST];

/* What weight() counts: the prefix of the candidate order with keys above
 * tau and key tau up to id idb (tau 0, idb ~0: every token), and weights
 * of at least floor_w. The same in every lane. */
uint tau = 0u, idb = 0xffffffffu;
float floor_w = 0.0;

/* The candidate order as a key (topk.comp's): -0 as +0, NaN lowest. */
uint key(float x)
{
    if (isnan(x))
        return 0u;
    uint u = x == 0.0 ? 0u : floatBitsToUint(x);
    return (u & 0x80000000u) != 0u ? ~u : (u | 0x80000000u);
}

bool in_prefix(uint kv, uint v)
{
    return kv > tau || (kv == tau && v <= idb);
}

/* `precise`: no fused multiply-add, as in C. */
float weight(uint base, uint v, float mx)
{
    precise float s = L[base + v] * inv_t;
    precise float x = exp(s - mx);
    return in_prefix(key(s), v) && x >= floor_w ? x : 0.0; /* NaN too */
}

/* The mass of what weight() counts, by levels into bsum and gsum; every
 * lane gets it. Called by all lanes alike. With `list`, only the listed
 * tokens are weighed (the others must be outside the prefix). */
float weigh(uint base, float mx, uint n, uint nb, uint ng, bool list)
{
    uint i = gl_LocalInvocationID.x;
    for (uint b = i; b < nb; b += LOCAL) {
        precise float c = 0.0;
        if (list) {
            for (uint e = boff[b]; e < boff[b + 1u]; e++)
                if (in_prefix(lkey[e], lid[e]))
                    c += lw[e];
        } else {
            for (uint v = b * BLOCK; v < min(b * BLOCK + BLOCK, n); v++)
                c += weight(base, v, mx);
        }
        bsum[b] = c;
    }
    barrier();
    for (uint g = i; g < ng; g += LOCAL) {
        precise float c = 0.0;
        for (uint b = g * GROUP; b < min(g * GROUP + GROUP, nb); b++)
            c += bsum[b];
        gsum[g] = c;
    }
    barrier();
    if (i == 0u) {
        precise float t = 0.0;
        for (uint g = 0u; g < ng; g++)
            t += gsum[g];
        s_mass = t;
    }
    barrier();
    return s_mass;
}

void main()
{
    uint k = gl_WorkGroupID.x, i = gl_LocalInvocationID.x, n = p.n_vocab;
    uint base = D[8u * k] * n;
    inv_t = uintBitsToFloat(D[8u * k + 2u]);
    min_p = uintBitsToFloat(D[8u * k + 3u]);
    top_p = uintBitsToFloat(D[8u * k + 4u]);
    float mx = uintBitsToFloat(0xff800000u);
    for (uint v = i; v < n; v += LOCAL) {
        precise float s = L[base + v] * inv_t;
        if (s > mx)
            mx = s;
    }
    red[i] = mx;
    barrier();
    for (uint h = LOCAL / 2u; h > 0u; h >>= 1) {
        if (i < h && red[i + h] > red[i])
            red[i] = red[i + h];
        barrier();
    }
    mx = red[0];
    uint nb = (n + BLOCK - 1u) / BLOCK, ng = (nb + GROUP - 1u) / GROUP;
    floor_w = min_p;
    if (top_p > 0.0 && top_p < 1.0) {
        floor_w = 0.0;
        precise float target = top_p * weigh(base, mx, n, nb, ng, false);
        /* The list: each block's count, their offsets, then the tokens. */
        precise float low = mx - 8.0;
        uint floor_key = key(low);
        for (uint b = i; b < nb; b += LOCAL) {
            uint c = 0u;
            for (uint v = b * BLOCK; v < min(b * BLOCK + BLOCK, n); v++) {
                precise float s = L[base + v] * inv_t;
                c += key(s) >= floor_key ? 1u : 0u;
            }
            boff[b + 1u] = c;
        }
        barrier();
        if (i == 0u) {
            boff[0] = 0u;
            for (uint b = 1u; b <= nb; b++)
                boff[b] += boff[b - 1u];
        }
        barrier();
        bool list = boff[nb] <= LIST;
        if (list) {
            for (uint b = i; b < nb; b += LOCAL) {
                uint at = boff[b];
                for (uint v = b * BLOCK; v < min(b * BLOCK + BLOCK, n); v++) {
                    precise float s = L[base + v] * inv_t;
                    uint kv = key(s);
                    if (kv >= floor_key) {
                        precise float x = exp(s - mx);
                        lid[at] = v;
                        lkey[at] = kv;
                        lw[at] = x >= 0.0 ? x : 0.0;
                        at++;
                    }
                }
            }
            barrier();
            tau = floor_key;
            list = weigh(base, mx, n, nb, ng, true) >= target;
        }
        uint t0 = 0u;
        for (int bit = 31; bit >= 0; bit--) {
            tau = t0 | (1u << uint(bit));
            if ((list && tau <= floor_key) || weigh(base, mx, n, nb, ng, list) >= target)
                t0 = tau;
        }
        tau = t0;
        if (i == 0u)
            s_ties = 0u;
        barrier();
        uint ties = 0u;
        for (uint v = i; v < n; v += LOCAL) {
            precise float s = L[base + v] * inv_t;
            ties += key(s) == tau ? 1u : 0u;
        }
        atomicAdd(s_ties, ties);
        barrier();
        if (s_ties > 1u) {
            uint lo = 0u, hi = n - 1u;
            while (lo < hi) {
                idb = lo + (hi - lo) / 2u;
                if (weigh(base, mx, n, nb, ng, list) >= target)
                    hi = idb;
                else
                    lo = idb + 1u;
            }
            idb = lo;
        }
        floor_w = min_p;
    }
    precise float total = weigh(base, mx, n, nb, ng, false);
    if (i != 0u)
        return;
    if (!(total > 0.0)) {
        OUT[p.out_off + k] = 0;
        return;
    }
    const float inf = uintBitsToFloat(0x7f800000u);
    precise float t = float(D[8u * k + 1u] & 0xffffffu) * (1.0 / 16777216.0) * total;
    precise float c = 0.0;
    /* Each level: the first entry that takes the running sum past t; with
     * none (rounding), the last nonzero one, and t = inf for the levels below. */
    uint g = ng;
    for (uint e = 0u; e < ng; e++) {
        precise float nx = c + gsum[e];
        if (nx > t) {
            g = e;
            break;
        }
        c = nx;
    }
    if (g == ng) {
        t = inf;
        g = 0u;
        for (uint e = ng; e > 0u; e--)
            if (gsum[e - 1u] > 0.0) {
                g = e - 1u;
                break;
            }
    }
    uint blo = g * GROUP, bhi = min(blo + GROUP, nb), b = bhi;
    for (uint e = blo; e < bhi; e++) {
        precise float nx = c + bsum[e];
        if (nx > t) {
            b = e;
            break;
        }
        c = nx;
    }
    if (b == bhi) {
        t = inf;
        b = blo;
        for (uint e = bhi; e > blo; e--)
            if (bsum[e - 1u] > 0.0) {
                b = e - 1u;
                break;
            }
    }
    uint vlo = b * BLOCK, vhi = min(vlo + BLOCK, n), tok = vhi;
    for (uint v = vlo; v < vhi; v++) {
        precise float nx = c + weight(base, v, mx);
        if (nx > t) {
            tok = v;
            break;
        }
        c = nx;
    }
    if (tok == vhi) {
        tok = vlo;
        for (uint v = vhi; v > vlo; v--)
            if (weight(base, v - 1u, mx) > 0.0) {
                tok = v - 1u;
                break;
            }
    }
    OUT[p.out_off + k] = int(tok);
}
