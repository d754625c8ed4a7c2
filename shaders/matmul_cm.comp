#version 450
/* Y[t][y_off + r] (+)= sum_k W[r][k] * X[sel(t)][k] for f16 weights, on
 * the matrix units (VK_NV_cooperative_matrix: 16x16x16, f16 inputs, f32
 * accumulation). The same interface as matmul.comp (bindings, push
 * constants, grid convention), without its fused epilogues.
 *
 * Why: matmul.comp multiplies on the FP32 units, so a wide step costs many
 * one-row steps (docs/kernels.md, "Matrix units"). Here the products go
 * to the tensor cores and a weight is read once per 16 or 32 tokens.
 *
 * Exactness. Inputs are f32; the matrix units take f16. Each input is
 * split into hi, x with its mantissa cut to f16's 10 bits (exact in f16),
 * and lo = f16(x - hi), and both products are accumulated (W*hi then
 * W*lo), so an input keeps about 22 bits: the result is as close to the
 * f32 sum as matmul.comp's (the tests hold both to the CPU reference). A
 * product of two f16 values is exact in f32. (hi is cut with a bit mask,
 * not rounded through f16: NVIDIA's shader compiler folded
 * x - f32(f16(x)) to 0 and lost the lo half.) Inputs of 65520 or more
 * would overflow f16; activations are far below that.
 *
 * The order of a sum, which lookahead's exactness rests on. K is cut into
 * chunks of KC columns; chunk c belongs to class c % NSG. A class's sum
 * is one accumulator that takes its chunks in order, each chunk's KC/16
 * steps in order, each step W*hi then W*lo. The result is then
 * ((class 0 + class 1) + class 2) + ..., in f32. NSG and KC are fixed per
 * device by the host. Nothing else changes a result's bits: not T, NT,
 * MODE, a token's place in its tile or the other tokens (a column of a
 * matrix product depends only on its own column of B; tokens past the
 * end of a tile are zeros).
 *
 * Two ways to run that order (MODE, one pipeline each):
 *   0 (steps of up to 16 tokens, so plain decoding): a workgroup takes 16
 *     rows and NSG subgroups, one class each, so a matrix of few rows
 *     still has many subgroups reading it. Each stages its own inputs.
 *   1 (wide steps): a workgroup takes 16 * (LOCAL / 32) rows, a subgroup
 *     16 of them and every class (NSG accumulators a token tile), and the
 *     workgroup stages one copy of the inputs for all its subgroups, so
 *     inputs are read once per 64 rows rather than once per 16.
 * Weights and inputs go through shared memory in 16-byte loads (a matrix
 * load straight from the buffer was about half as fast: its stride is not
 * known to the compiler; docs/kernels.md, "Matrix units"), and the loads of the two chunks after
 * this one are in flight during its products (register sets 0 and 1).
 *
 * Grid: x = token tile (fastest, so the workgroups that read the same
 * weight rows run back to back and find them in L2), y + 32768 z = block
 * of rows. The host requires rows % 16 == 0, ncols % KC == 0, 32-lane
 * subgroups and no epilogue. */
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_shader_16bit_storage : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_EXT_control_flow_attributes : enable

layout(local_size_x_id = 1) in;
layout(constant_id = 1) const uint LOCAL = 128;
layout(constant_id = 2) const uint NT = 1;   /* 16-token tiles a workgroup takes */
layout(constant_id = 3) const uint NSG = 4;  /* classes of chunks (see above) */
layout(constant_id = 4) const uint KC = 64;  /* columns of a chunk, a multiple of 16 */
layout(constant_id = 5) const uint MODE = 0; /* see above */

layout(std430, binding = 0) readonly buffer Wb { uvec4 W8[]; }; /* 8 f16 weights an element */
layout(std430, binding = 1) readonly buffer Xb { vec4 X4[]; };
layout(std430, binding = 2) buffer Yb { float Y[]; };
layout(std430, binding = 3) readonly buffer Sb { int SEL[]; };
layout(std430, binding = 4) writeonly buffer Hb { uint H[]; };  /* unused (matmul.comp's layout) */
layout(std430, binding = 5) readonly buffer PB { int POS[]; }; /* unused (matmul.comp's layout) */
layout(std430, binding = 6) readonly buffer NWb { float NW[]; }; /* unused (matmul.comp's layout) */
layout(std430, binding = 7) writeonly buffer H2b { uint H2[]; }; /* unused (matmul.comp's layout) */
layout(std430, binding = 8) readonly buffer XRb { vec4 XR4[]; }; /* unused (matmul.comp's layout) */
layout(std430, binding = 9) writeonly buffer XNb { float XN[]; }; /* unused (matmul.comp's layout) */

layout(push_constant) uniform P {
    uint ncols;
    uint nrows;
    uint ntok;
    uint x_stride;
    uint y_stride;
    uint y_off;
    uint flags; /* 1: accumulate into Y (residual add), 2: gather X rows through SEL
                 * (never MM_NORM or MM_NORM_OUT: the model folds no norm
                 * with the matrix units, gpu_model.c's fuse) */
    uint epi;   /* must be 0 */
    uint head_dim;
    uint rope_dims;
    uint slot0;
    float mscale; /* unused here, as the two after it (pc_matmul) */
    float eps;
    uint kvdim;
} p;

const uint SUBGROUPS = LOCAL / 32u;
/* Staged tiles, 16 rows (weights) or 16 tokens (inputs) of KC halves, 8
 * halves of padding so that rows start 16-byte aligned and spread over
 * banks; in units of 4 halves (uvec2: glslang's matrix loads take no
 * f16vec4 array). */
const uint LD4 = (KC + 8u) / 4u;
const uint TILE4 = 16u * LD4;
/* Weights: one tile a subgroup. Inputs: [set][tile][hi, lo], one set a
 * subgroup in MODE 0, one for the workgroup in MODE 1. */
const uint BSETS = MODE == 0u ? SUBGROUPS : 1u;
shared uvec2 sA[SUBGROUPS * TILE4];
shared uvec2 sB[BSETS * NT * 2u * TILE4];
/* Sums on their way out: [subgroup][tile][16 rows][16 tokens]. */
shared float sC[SUBGROUPS * NT * 256u];

#define F16M fcoopmatNV<16, gl_ScopeSubgroup, 16, 16>
#define F32M fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>

/* Who stages the inputs: a subgroup (MODE 0) or the workgroup (MODE 1). */
const uint TEAM = MODE == 0u ? 32u : LOCAL;
const uint PA = KC / 16u;                  /* 16-byte weight loads a lane makes a chunk */
const uint PX = (NT * 4u * KC + TEAM - 1u) / TEAM; /* input vec4s a lane loads a chunk */

uvec4 pa[2][PA];
vec4 px[2][PX];
uint row0, t0, nt, team_id;

uint xrow(uint t)
{
    uint tt = t0 + t;
    return (p.flags & 2u) != 0u ? uint(SEL[tt]) : tt;
}

/* Issue chunk c's loads into register set `set`. */
void load_chunk(uint c, uint set)
{
    uint lane = gl_SubgroupInvocationID;
    uint k0 = c * KC;
    [[unroll]] for (uint i = 0; i < PA; i++) {
        uint idx = lane + 32u * i, r = idx / (KC / 8u), piece = idx % (KC / 8u);
        pa[set][i] = W8[((row0 + r) * p.ncols + k0) / 8u + piece];
    }
    [[unroll]] for (uint i = 0; i < PX; i++) {
        uint e = team_id + TEAM * i, t = e / (KC / 4u), q = e % (KC / 4u);
        if (t < nt)
            px[set][i] = X4[(xrow(t) * p.x_stride + k0) / 4u + q];
    }
}

/* Register set `set` to shared memory: weights into tile `a`, inputs
 * (split) into input set `b`. */
void store_chunk(uint a, uint b, uint set)
{
    uint lane = gl_SubgroupInvocationID;
    [[unroll]] for (uint i = 0; i < PA; i++) {
        uint idx = lane + 32u * i, r = idx / (KC / 8u), piece = idx % (KC / 8u);
        uint o = a * TILE4 + r * LD4 + 2u * piece;
        sA[o] = pa[set][i].xy;
        sA[o + 1u] = pa[set][i].zw;
    }
    [[unroll]] for (uint i = 0; i < PX; i++) {
        uint e = team_id + TEAM * i, t = e / (KC / 4u), q = e % (KC / 4u);
        if (t < nt) {
            vec4 x = px[set][i];
            vec4 hf = uintBitsToFloat(floatBitsToUint(x) & uvec4(0xffffe000u));
            f16vec4 hi = f16vec4(hf);
            f16vec4 lo = f16vec4(x - hf);
            uint o = (b * NT + t / 16u) * 2u * TILE4 + (t % 16u) * LD4 + q;
            sB[o] = uvec2(packFloat2x16(hi.xy), packFloat2x16(hi.zw));
            sB[o + TILE4] = uvec2(packFloat2x16(lo.xy), packFloat2x16(lo.zw));
        }
    }
}

/* One chunk's products: weight tile `a`, input set `b`, into acc. */
void compute(uint a, uint b, inout F32M acc[NT])
{
    [[unroll]] for (uint kk = 0; kk < KC / 16u; kk++) {
        F16M w;
        coopMatLoadNV(w, sA, a * TILE4 + 4u * kk, LD4, false);
        [[unroll]] for (uint j = 0; j < NT; j++) {
            F16M bh, bl;
            uint o = (b * NT + j) * 2u * TILE4 + 4u * kk;
            coopMatLoadNV(bh, sB, o, LD4, true);
            coopMatLoadNV(bl, sB, o + TILE4, LD4, true);
            acc[j] = coopMatMulAddNV(w, bh, acc[j]);
            acc[j] = coopMatMulAddNV(w, bl, acc[j]);
        }
    }
}

void main()
{
    uint s = gl_SubgroupID;
    uint block = gl_WorkGroupID.y + gl_WorkGroupID.z * 32768u;
    t0 = gl_WorkGroupID.x * (16u * NT);
    nt = min(16u * NT, p.ntok - t0);
    team_id = MODE == 0u ? gl_SubgroupInvocationID : gl_LocalInvocationIndex;
    uint nchunks = p.ncols / KC;
    /* MODE 1: a subgroup past the last row block re-reads the last one
     * (it takes part in the barriers) and stores nothing. */
    uint rb = MODE == 0u ? block : block * SUBGROUPS + s;
    row0 = min(rb, p.nrows / 16u - 1u) * 16u;

    /* Tokens past nt stay zero: only the valid ones are written below. */
    for (uint i = gl_LocalInvocationIndex; i < BSETS * NT * 2u * TILE4; i += LOCAL)
        sB[i] = uvec2(0u);
    barrier();

    F32M acc[NSG][NT];
    [[unroll]] for (uint c = 0; c < NSG; c++)
        [[unroll]] for (uint j = 0; j < NT; j++)
            acc[c][j] = F32M(0.0);

    if (MODE == 0u) {
        /* Subgroup s: class s, its own tiles; only subgroup barriers. */
        if (s < nchunks)
            load_chunk(s, 0u);
        if (s + NSG < nchunks)
            load_chunk(s + NSG, 1u);
        for (uint c = s; c < nchunks; c += 2u * NSG) {
            subgroupBarrier();
            store_chunk(s, s, 0u);
            subgroupMemoryBarrierShared();
            subgroupBarrier();
            if (c + 2u * NSG < nchunks)
                load_chunk(c + 2u * NSG, 0u);
            compute(s, s, acc[0]);
            if (c + NSG < nchunks) {
                subgroupBarrier();
                store_chunk(s, s, 1u);
                subgroupMemoryBarrierShared();
                subgroupBarrier();
                if (c + 3u * NSG < nchunks)
                    load_chunk(c + 3u * NSG, 1u);
                compute(s, s, acc[0]);
            }
        }
        [[unroll]] for (uint j = 0; j < NT; j++)
            coopMatStoreNV(acc[0][j], sC, (s * NT + j) * 256u, 16u, false);
    } else {
        /* Chunk c: class c % NSG, register set c % 2. */
        load_chunk(0u, 0u);
        if (1u < nchunks)
            load_chunk(1u, 1u);
        for (uint c0 = 0; c0 < nchunks; c0 += 2u * NSG) {
            [[unroll]] for (uint u = 0; u < 2u * NSG; u++) {
                uint c = c0 + u;
                if (c < nchunks) {
                    barrier();
                    store_chunk(s, 0u, u % 2u);
                    barrier();
                    if (c + 2u < nchunks)
                        load_chunk(c + 2u, u % 2u);
                    compute(s, 0u, acc[u % NSG]);
                }
            }
        }
        /* The classes added in order, through this subgroup's part of sC
         * (glslang 11's optimiser crashes on a matrix +). */
        uint lane = gl_SubgroupInvocationID, base = s * NT * 256u;
        float v[NT * 8u];
        [[unroll]] for (uint cl = 0; cl < NSG; cl++) {
            [[unroll]] for (uint j = 0; j < NT; j++)
                coopMatStoreNV(acc[cl][j], sC, base + j * 256u, 16u, false);
            subgroupMemoryBarrierShared();
            subgroupBarrier();
            [[unroll]] for (uint e = 0; e < NT * 8u; e++) {
                float x = sC[base + lane + 32u * e];
                v[e] = cl == 0u ? x : v[e] + x;
            }
            subgroupBarrier();
        }
        [[unroll]] for (uint e = 0; e < NT * 8u; e++)
            sC[base + lane + 32u * e] = v[e];
    }
    barrier();
    /* MODE 0: the classes' sums added in order here; MODE 1: already
     * added. */
    uint nsub = MODE == 0u ? 1u : SUBGROUPS;
    for (uint i = gl_LocalInvocationIndex; i < nsub * NT * 256u; i += LOCAL) {
        uint g = i / (NT * 256u), j = (i / 256u) % NT, m = (i / 16u) % 16u, n = i % 16u;
        uint t = j * 16u + n;
        uint r = (MODE == 0u ? block : block * SUBGROUPS + g) * 16u + m;
        if (t < nt && r < p.nrows) {
            float v = sC[(g * NT + j) * 256u + m * 16u + n];
            if (MODE == 0u)
                for (uint c = 1u; c < NSG; c++)
                    v += sC[(c * NT + j) * 256u + m * 16u + n];
            uint o = (t0 + t) * p.y_stride + p.y_off + r;
            Y[o] = (p.flags & 1u) != 0u ? Y[o] + v : v;
        }
    }
}
