#version 450
/* Attention of each row of a group for the query heads of KV head kvh,
 * over its visible keys in one split of SPLIT positions: the committed cache positions
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
 * Workgroup (kvh, group, split): a group is up to ROWS_G rows of one
 * sequence (gpu_rows.c builds the groups each step), which share their
 * sequence's committed keys: each committed K and V row is loaded once for
 * the whole group, the keys of the step's rows once per row. Each row
 * keeps its own online-softmax state and runs exactly the updates it ran
 * alone, in the same order, so grouping changes no bit (issue #22: a wide
 * step of one sequence read the whole cache once per row).
 * Each subgroup takes every nsg-th position of
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
layout(constant_id = 9) const uint ROWS_G = 1;    /* rows of one sequence a workgroup takes */

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
    uint groups;    /* the row groups' table in RW: first row and count each */
} p;

shared float qs[ROWS_G * GROUP * HD_MAX];
shared float sm[ROWS_G * NSG_MAX * GROUP];
shared float sl[ROWS_G * NSG_MAX * GROUP];
shared float sacc[ROWS_G * NSG_MAX * GROUP * HD_MAX];

void main()
{
    uint kvh = gl_WorkGroupID.x, grp = gl_WorkGroupID.y, sp = gl_WorkGroupID.z;
    uint tid = gl_LocalInvocationID.x;
    uint lane = gl_SubgroupInvocationID, S = gl_SubgroupSize;
    uint sg = gl_SubgroupID, nsg = gl_NumSubgroups;
    uint hd = p.head_dim, hp = hd >> 1;
    /* The group's rows: t0 .. t0 + nr - 1, all of one sequence */
    uint t0 = RW[p.groups + 2u * grp], nr = RW[p.groups + 2u * grp + 1u];
    for (uint i = tid; i < nr * GROUP * hd; i += LOCAL) {
        uint r = i / (GROUP * hd), g = (i / hd) % GROUP, d = i % hd;
        qs[(r * GROUP + g) * HD_MAX + d] = Q[((t0 + r) * p.n_heads + kvh * GROUP + g) * hd + d];
    }
    barrier();
    /* What the rows share (their sequence's committed keys) and what each
     * has of its own (its chain, so its length) */
    uint n_past = RW[4u * t0 + 2u], kv0 = RW[4u * t0 + 3u];
    uint lo = sp * SPLIT, hi_max = lo;
    uint chain[ROWS_G], clen[ROWS_G], hi[ROWS_G];
    [[unroll]] for (uint r = 0; r < ROWS_G; r++) {
        uint t = t0 + min(r, nr - 1u);
        chain[r] = RW[4u * t];
        clen[r] = RW[4u * t + 1u];
        hi[r] = r < nr ? min(n_past + clen[r], lo + SPLIT) : lo; /* past the group: no keys */
        hi_max = max(hi_max, hi[r]);
    }

    vec2 qv[ROWS_G][GROUP][NJ];
    vec2 acc[ROWS_G][GROUP][NJ];
    float m[ROWS_G][GROUP], l[ROWS_G][GROUP];
    [[unroll]] for (uint r = 0; r < ROWS_G; r++)
        [[unroll]] for (uint g = 0; g < GROUP; g++) {
            m[r][g] = -1.0 / 0.0;
            l[r][g] = 0.0;
            [[unroll]] for (uint j = 0; j < NJ; j++) {
                uint pi = lane + j * S, q = (r * GROUP + g) * HD_MAX + 2u * pi;
                qv[r][g][j] = pi < hp && r < nr ? vec2(qs[q], qs[q + 1u]) : vec2(0.0);
                acc[r][g][j] = vec2(0.0);
            }
        }
    for (uint pos0 = lo + sg; pos0 < hi_max; pos0 += nsg * PAR) {
        /* A committed position is one load for every row of the group; a
         * position in the step, each row's own ancestor (or, past a row's
         * end, a row it does not use). */
        vec2 kk[PAR][ROWS_G][NJ], vv[PAR][ROWS_G][NJ];
        [[unroll]] for (uint u = 0; u < PAR; u++) {
            uint pos = pos0 + u * nsg;
            if (pos < n_past) {
                uint base = ((kv0 + pos) * p.kvdim + kvh * hd) >> 1;
                [[unroll]] for (uint j = 0; j < NJ; j++) {
                    uint pi = lane + j * S;
                    vec2 k = pi < hp ? unpackHalf2x16(KC[base + pi]) : vec2(0.0);
                    vec2 v = pi < hp ? unpackHalf2x16(VC[base + pi]) : vec2(0.0);
                    [[unroll]] for (uint r = 0; r < ROWS_G; r++) {
                        kk[u][r][j] = k;
                        vv[u][r][j] = v;
                    }
                }
            } else {
                [[unroll]] for (uint r = 0; r < ROWS_G; r++) {
                    if (r < nr) { /* rows past the group's: nothing (uniform) */
                        /* The row's ancestor at pos, or (a position it
                         * does not see, whose update is skipped) its last */
                        uint a = min(pos - n_past, clen[r] - 1u);
                        uint base = ((p.slot0 + RW[chain[r] + a]) * p.kvdim + kvh * hd) >> 1;
                        [[unroll]] for (uint j = 0; j < NJ; j++) {
                            uint pi = lane + j * S;
                            kk[u][r][j] = pi < hp ? unpackHalf2x16(KC[base + pi]) : vec2(0.0);
                            vv[u][r][j] = pi < hp ? unpackHalf2x16(VC[base + pi]) : vec2(0.0);
                        }
                    }
                }
            }
        }
        /* Scores of the group's rows only: a row past nr has no keys
         * (hi = lo), so its s is never read. */
        float s[PAR][ROWS_G][GROUP];
        [[unroll]] for (uint u = 0; u < PAR; u++)
            [[unroll]] for (uint r = 0; r < ROWS_G; r++)
                [[unroll]] for (uint g = 0; g < GROUP; g++) {
                    if (r < nr) {
                        float d = 0.0;
                        [[unroll]] for (uint j = 0; j < NJ; j++) {
                            d = fma(qv[r][g][j].x, kk[u][r][j].x, d);
                            d = fma(qv[r][g][j].y, kk[u][r][j].y, d);
                        }
                        s[u][r][g] = subgroupAdd(d) * p.scale;
                    }
                }
        /* Online softmax, one position at a time in position order, each
         * row over its own keys. */
        [[unroll]] for (uint u = 0; u < PAR; u++) {
            [[unroll]] for (uint r = 0; r < ROWS_G; r++) {
                if (pos0 + u * nsg < hi[r]) {
                    [[unroll]] for (uint g = 0; g < GROUP; g++) {
                        float mn = max(m[r][g], s[u][r][g]);
                        float a = exp(m[r][g] - mn), b = exp(s[u][r][g] - mn);
                        l[r][g] = l[r][g] * a + b;
                        [[unroll]] for (uint j = 0; j < NJ; j++)
                            acc[r][g][j] = acc[r][g][j] * a + b * vv[u][r][j];
                        m[r][g] = mn;
                    }
                }
            }
        }
    }
    /* State x of row r, subgroup sg, head g: (r * nsg + sg) * GROUP + g */
    [[unroll]] for (uint r = 0; r < ROWS_G; r++)
        [[unroll]] for (uint g = 0; g < GROUP; g++) {
            uint x = (r * nsg + sg) * GROUP + g;
            if (lane == 0u) {
                sm[x] = m[r][g];
                sl[x] = l[r][g];
            }
            [[unroll]] for (uint j = 0; j < NJ; j++) {
                uint pi = lane + j * S;
                if (pi < hp) {
                    sacc[x * HD_MAX + 2u * pi] = acc[r][g][j].x;
                    sacc[x * HD_MAX + 2u * pi + 1u] = acc[r][g][j].y;
                }
            }
        }
    barrier();
    /* Per row, subgroup a takes in a + h, h halving: the same tree for
     * every row. */
    for (uint h = nsg >> 1; h > 0u; h >>= 1) {
        for (uint i = tid; i < nr * h * GROUP * hd; i += LOCAL) {
            uint r = i / (h * GROUP * hd), k = i % (h * GROUP * hd);
            uint x = r * nsg * GROUP + k / hd, d = k % hd, y = x + h * GROUP;
            if (sl[y] > 0.0) {
                float mn = max(sm[x], sm[y]);
                float a = sl[x] > 0.0 ? exp(sm[x] - mn) : 0.0, b = exp(sm[y] - mn);
                sacc[x * HD_MAX + d] = sacc[x * HD_MAX + d] * a + sacc[y * HD_MAX + d] * b;
            }
        }
        barrier();
        for (uint i = tid; i < nr * h * GROUP; i += LOCAL) {
            uint x = (i / (h * GROUP)) * nsg * GROUP + i % (h * GROUP), y = x + h * GROUP;
            if (sl[y] > 0.0) {
                float mn = max(sm[x], sm[y]);
                float a = sl[x] > 0.0 ? exp(sm[x] - mn) : 0.0, b = exp(sm[y] - mn);
                sl[x] = sl[x] * a + sl[y] * b;
                sm[x] = mn;
            }
        }
        barrier();
    }
    for (uint i = tid; i < nr * GROUP * hd; i += LOCAL) {
        uint r = i / (GROUP * hd), g = (i / hd) % GROUP, d = i % hd;
        uint x = r * nsg * GROUP + g; /* subgroup 0's state, the merged one */
        uint head = (t0 + r) * p.n_heads + kvh * GROUP + g;
        /* The splits are the grid's z (an indirect dispatch, sized by the
         * host per step, so a recorded step serves any length); a row with
         * no key in this split leaves its state empty (l 0), which
         * attn_merge skips */
        if (gl_NumWorkGroups.z == 1u) {
            O[head * hd + d] = sacc[x * HD_MAX + d] / sl[x];
        } else {
            uint o = (head * p.max_split + sp) * (HD_MAX + 2u);
            PART[o + d] = sacc[x * HD_MAX + d];
            if (d == 0u) {
                PART[o + HD_MAX] = sm[x];
                PART[o + HD_MAX + 1u] = sl[x];
            }
        }
    }
}
