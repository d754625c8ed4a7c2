#version 450
/* Attention of row t for the query heads of KV head kvh, over the visible
 * keys of one split of SPLIT positions: the committed cache positions
 * 0..n_past-1, then the row's ancestor chain in this step (root first,
 * itself last), so the mask is a list of rows per row, never a matrix.
 * The host builds each row's chain once per step (gpu_rows.c) and every
 * lane reads the entries it needs, instead of one lane walking the
 * parents while the others wait (a prefill row's walk is as long as its
 * depth, each step a dependent load).
 *
 * A step may carry rows of several sequences, each in its own region of
 * the cache: row t's committed positions start at its sequence's first
 * slot, its ancestors' K/V are in the shared scratch.
 *
 * Workgroup (kvh, t, split). Each subgroup takes every nsg-th position of
 * the split, PAR at a time (their K and V loads issued together, so that
 * a subgroup waits on memory once per PAR positions); a lane holds NJ
 * pairs of head dimensions, the dot product is one subgroupAdd. Every K
 * and V row is read once for all GROUP query heads sharing it (GQA). The
 * subgroups' online-softmax states then merge in a fixed tree. With one
 * split the workgroup writes the output; with several it writes its
 * unnormalised state to PART and attn_merge.comp combines the splits in
 * order.
 *
 * Batch invariance: a row's arithmetic depends only on its own length and
 * the device (subgroup size), never on T or on the other rows: the split
 * boundaries are fixed positions, updates within a subgroup run in
 * position order whatever PAR, and a split with no keys is skipped (not
 * merged as zeros), so one split written directly and one split merged
 * give the same bits. */
#extension GL_EXT_control_flow_attributes : enable
#extension GL_KHR_shader_subgroup_basic : enable
#extension GL_KHR_shader_subgroup_arithmetic : enable
layout(local_size_x_id = 1) in;
layout(constant_id = 1) const uint LOCAL = 32;
layout(constant_id = 2) const uint HD_MAX = 128;  /* head_dim, even */
layout(constant_id = 3) const uint MAX_ROWS = 512; /* rows a step has at most */
layout(constant_id = 4) const uint GROUP = 1;     /* query heads per KV head */
layout(constant_id = 5) const uint NJ = 2;        /* dim pairs a lane holds: ceil(HD_MAX / 2 / min subgroup) */
layout(constant_id = 6) const uint NSG_MAX = 4;   /* LOCAL / min subgroup size */
layout(constant_id = 7) const uint SPLIT = 256;   /* positions per split */
layout(constant_id = 8) const uint PAR = 4;       /* positions a subgroup loads at once */

layout(std430, binding = 0) readonly buffer Qb { float Q[]; };
layout(std430, binding = 1) readonly buffer KCb { uint KC[]; };
layout(std430, binding = 2) readonly buffer VCb { uint VC[]; };
layout(std430, binding = 3) writeonly buffer Ob { float O[]; };
/* Per row 4 words: its chain's offset in RW and its length (the row's
 * depth + 1), its sequence's n_past and first cache slot; the chains
 * after them, from 4 MAX_ROWS. Read here rather than pushed, so that a
 * recorded step serves any n_past and any sequences (the step cache,
 * docs/kernels.md). */
layout(std430, binding = 4) readonly buffer RWb { uint RW[]; };
layout(std430, binding = 5) writeonly buffer PTb { float PART[]; };
layout(push_constant) uniform P {
    uint slot0;     /* first scratch slot (after every sequence's region) */
    uint head_dim;
    uint n_heads;
    uint kvdim;
    float scale;
    uint max_split; /* splits PART has room for per (row, head) */
} p;

shared float qs[GROUP * HD_MAX];
shared float sm[NSG_MAX * GROUP];
shared float sl[NSG_MAX * GROUP];
shared float sacc[NSG_MAX * GROUP * HD_MAX];

void main()
{
    uint kvh = gl_WorkGroupID.x, t = gl_WorkGroupID.y, sp = gl_WorkGroupID.z;
    uint tid = gl_LocalInvocationID.x;
    uint lane = gl_SubgroupInvocationID, S = gl_SubgroupSize;
    uint sg = gl_SubgroupID, nsg = gl_NumSubgroups;
    uint hd = p.head_dim, hp = hd >> 1;
    for (uint i = tid; i < GROUP * hd; i += LOCAL) {
        uint g = i / hd, d = i % hd;
        qs[g * HD_MAX + d] = Q[(t * p.n_heads + kvh * GROUP + g) * hd + d];
    }
    barrier();
    uint chain = RW[4u * t], n_past = RW[4u * t + 2u], kv0 = RW[4u * t + 3u];
    uint len = n_past + RW[4u * t + 1u];
    uint lo = sp * SPLIT, hi = min(len, lo + SPLIT);

    vec2 qv[GROUP][NJ];
    vec2 acc[GROUP][NJ];
    float m[GROUP], l[GROUP];
    [[unroll]] for (uint g = 0; g < GROUP; g++) {
        m[g] = -1.0 / 0.0;
        l[g] = 0.0;
        [[unroll]] for (uint j = 0; j < NJ; j++) {
            uint pi = lane + j * S;
            qv[g][j] = pi < hp ? vec2(qs[g * HD_MAX + 2u * pi], qs[g * HD_MAX + 2u * pi + 1u]) : vec2(0.0);
            acc[g][j] = vec2(0.0);
        }
    }
    for (uint pos0 = lo + sg; pos0 < hi; pos0 += nsg * PAR) {
        uint base[PAR];
        [[unroll]] for (uint u = 0; u < PAR; u++) {
            uint pos = min(pos0 + u * nsg, hi - 1u);
            uint slot = pos < n_past ? kv0 + pos : p.slot0 + RW[chain + pos - n_past];
            base[u] = (slot * p.kvdim + kvh * hd) >> 1;
        }
        vec2 kk[PAR][NJ], vv[PAR][NJ];
        [[unroll]] for (uint u = 0; u < PAR; u++)
            [[unroll]] for (uint j = 0; j < NJ; j++) {
                uint pi = lane + j * S;
                kk[u][j] = pi < hp ? unpackHalf2x16(KC[base[u] + pi]) : vec2(0.0);
                vv[u][j] = pi < hp ? unpackHalf2x16(VC[base[u] + pi]) : vec2(0.0);
            }
        float s[PAR][GROUP];
        [[unroll]] for (uint u = 0; u < PAR; u++)
            [[unroll]] for (uint g = 0; g < GROUP; g++) {
                float d = 0.0;
                [[unroll]] for (uint j = 0; j < NJ; j++) {
                    d = fma(qv[g][j].x, kk[u][j].x, d);
                    d = fma(qv[g][j].y, kk[u][j].y, d);
                }
                s[u][g] = subgroupAdd(d) * p.scale;
            }
        /* Online softmax, one position at a time in position order. */
        [[unroll]] for (uint u = 0; u < PAR; u++) {
            if (pos0 + u * nsg < hi) {
                [[unroll]] for (uint g = 0; g < GROUP; g++) {
                    float mn = max(m[g], s[u][g]);
                    float a = exp(m[g] - mn), b = exp(s[u][g] - mn);
                    l[g] = l[g] * a + b;
                    [[unroll]] for (uint j = 0; j < NJ; j++)
                        acc[g][j] = acc[g][j] * a + b * vv[u][j];
                    m[g] = mn;
                }
            }
        }
    }
    [[unroll]] for (uint g = 0; g < GROUP; g++) {
        uint x = sg * GROUP + g;
        if (lane == 0u) {
            sm[x] = m[g];
            sl[x] = l[g];
        }
        [[unroll]] for (uint j = 0; j < NJ; j++) {
            uint pi = lane + j * S;
            if (pi < hp) {
                sacc[x * HD_MAX + 2u * pi] = acc[g][j].x;
                sacc[x * HD_MAX + 2u * pi + 1u] = acc[g][j].y;
            }
        }
    }
    barrier();
    /* Subgroup a takes in a + h, h halving: the same tree for every row. */
    for (uint h = nsg >> 1; h > 0u; h >>= 1) {
        for (uint i = tid; i < h * GROUP * hd; i += LOCAL) {
            uint x = i / hd, d = i % hd, y = x + h * GROUP;
            if (sl[y] > 0.0) {
                float mn = max(sm[x], sm[y]);
                float a = sl[x] > 0.0 ? exp(sm[x] - mn) : 0.0, b = exp(sm[y] - mn);
                sacc[x * HD_MAX + d] = sacc[x * HD_MAX + d] * a + sacc[y * HD_MAX + d] * b;
            }
        }
        barrier();
        for (uint x = tid; x < h * GROUP; x += LOCAL) {
            uint y = x + h * GROUP;
            if (sl[y] > 0.0) {
                float mn = max(sm[x], sm[y]);
                float a = sl[x] > 0.0 ? exp(sm[x] - mn) : 0.0, b = exp(sm[y] - mn);
                sl[x] = sl[x] * a + sl[y] * b;
                sm[x] = mn;
            }
        }
        barrier();
    }
    for (uint i = tid; i < GROUP * hd; i += LOCAL) {
        uint g = i / hd, d = i % hd;
        uint head = t * p.n_heads + kvh * GROUP + g;
        /* The splits are the grid's z (an indirect dispatch, sized by the
         * host per step, so a recorded step serves any length) */
        if (gl_NumWorkGroups.z == 1u) {
            O[head * hd + d] = sacc[g * HD_MAX + d] / sl[g];
        } else {
            uint o = (head * p.max_split + sp) * (HD_MAX + 2u);
            PART[o + d] = sacc[g * HD_MAX + d];
            if (d == 0u) {
                PART[o + HD_MAX] = sm[g];
                PART[o + HD_MAX + 1u] = sl[g];
            }
        }
    }
}
