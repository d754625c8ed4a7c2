/* The foundation kernels against CPU computations, on whatever Vulkan device
 * the policy picks (lavapipe in CI), with the validation layer on: ctest sets
 * LADE_VALIDATION=1, so any validation message aborts the test. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "decoding/dec.h"
#include "llama/gpu_kernels.h"
#include "llama/repack.h"
#include "shaders/shaders.h"
#include "vk/vkr.h"

static struct vkr_ctx *ctx;

static int setup(void **state)
{
    char err[512];
    struct vkr_ctx_opts o = { .device = getenv("LADE_DEVICE") };
    int r = vkr_ctx_new(&o, &ctx, err, sizeof(err));
    if (r) {
        fprintf(stderr, "no Vulkan device: %s\n", err);
        return -1;
    }
    fprintf(stderr, "device: %s (%s)\n", ctx->info.name, ctx->select_reason);
    return 0;
}

static void free_kernels(void);

static int teardown(void **state)
{
    free_kernels();
    vkr_ctx_free(ctx);
    assert_int_equal(vkr_validation_messages(), 0);
    return 0;
}

static uint32_t rng = 12345;
static float frand(void)
{
    rng = rng * 1664525u + 1013904223u;
    return (float)((rng >> 8) & 0xffff) / 32768.0f - 1.0f;
}

/* f32 → f16 bits, round to nearest even (normal range is enough here). */
static uint16_t to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000, e = (x >> 23) & 0xff, m = x & 0x7fffff;
    if (e < 103)
        return (uint16_t)sign;
    if (e < 113) { /* subnormal half */
        m |= 0x800000;
        uint32_t shift = 126 - e, h = m >> shift, rem = m & ((1u << shift) - 1),
                 half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1)))
            h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((e - 112) << 10) | (m >> 13), rem = m & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1)))
        h++;
    return (uint16_t)(sign | h);
}

static float from_f16(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff, x;
    if (e == 0) {
        float f = ldexpf((float)m, -24);
        return sign ? -f : f;
    }
    x = sign | ((e + 112) << 23) | (m << 13);
    float f;
    memcpy(&f, &x, 4);
    return f;
}

/* Matmul geometries (matmul.comp's spec constants 1-6): the first
 * is the one the tests use by default; the others with the same split
 * (subgroups a row, which does change the order of its sum) must give
 * bit-identical results (batch invariance across the tunings a device may
 * pick). rows_wg assumes lavapipe's 8 lanes; other subgroup sizes only
 * leave subgroups idle. */
struct mm_geom {
    uint32_t local, tile, rows_wg, rps, unroll, splitk, xsh;
    uint32_t sub; /* tokens a pass of the token loop unrolls (SUB_T), 0: the tile */
};
static const struct mm_geom geoms[] = {
    { 64, 8, 32, 1, 1, 1, 0, 0 },
    { 64, 8, 16, 2, 2, 1, 0, 0 },
    { 32, 32, 12, 3, 3, 1, 0, 0 },
    { 64, 4, 32, 4, 1, 1, 0, 0 },
    { 128, 16, 16, 1, 4, 1, 0, 0 },
    { 64, 8, 4, 1, 1, 2, 0, 0 },
    { 128, 8, 4, 2, 3, 4, 0, 0 },
    { 128, 16, 24, 3, 2, 2, 0, 0 },
    /* tile 1: the one-token geometry (LADE_MM_ONE); inputs staged in
     * shared memory (XSH: all of them, or only some tiles') */
    { 128, 1, 4, 1, 4, 1, 0, 0 },
    { 64, 1, 8, 1, 2, 1, 4096, 0 },
    { 64, 8, 32, 1, 1, 1, 2048, 0 },
    /* 64-token tiles (the wide geometries, issue #22), 8 or 16 tokens a
     * pass (SUB_T, CPU drivers), split 1 and 2. (The whole tile unrolled,
     * as on GPUs, indexes acc[] by constants like the tiles above; its
     * pipelines take minutes to build on lavapipe.) */
    { 64, 64, 32, 4, 1, 1, 0, 8 },
    { 64, 64, 16, 2, 2, 1, 0, 16 },
    { 64, 64, 8, 2, 1, 2, 0, 8 },
};
#define N_GEOMS (sizeof(geoms) / sizeof(geoms[0]))

struct kernels {
    struct vkr_kernel add, matmul[4][N_GEOMS];
};

static const uint32_t wtypes[4] = { 0, 1, 30, 8 }; /* F32 F16 BF16 Q8_0 */

/* The pipelines, built once for the program and freed by the group
 * teardown: building the 57 of them was most of what each test cost when
 * every test built its own (lavapipe compiles each with LLVM: about 7 s
 * of CPU a time with Mesa's shader cache warm, minutes cold). */
static struct kernels kern;
static bool kern_made;

static struct kernels *kernels(void)
{
    if (kern_made)
        return &kern;
    struct kernels *k = &kern;
    struct vkr_kernel_desc d = { .name = "add",
                                 .spirv = lade_spv_add,
                                 .spirv_bytes = lade_spv_add_bytes,
                                 .n_bindings = 3,
                                 .push_bytes = 4 };
    assert_int_equal(vkr_kernel_new(ctx, &d, &k->add), 0);
    for (int i = 0; i < 4; i++)
        for (size_t g = 0; g < N_GEOMS; g++) {
            const struct mm_geom *G = &geoms[g];
            struct vkr_kernel_desc m = { .name = "matmul",
                                         .spirv = lade_spv_matmul,
                                         .spirv_bytes = lade_spv_matmul_bytes,
                                         .n_bindings = B_MM_N,
                                         .push_bytes = sizeof(struct pc_matmul),
                                         .n_spec = 11,
                                         .spec = { wtypes[i], G->local, G->tile, G->rows_wg, G->rps,
                                                   G->unroll, G->splitk, 0, G->xsh, 0, G->sub } };
            assert_int_equal(vkr_kernel_new(ctx, &m, &k->matmul[i][g]), 0);
        }
    kern_made = true;
    return k;
}

static void free_kernels(void)
{
    if (!kern_made)
        return;
    vkr_kernel_free(ctx, &kern.add);
    for (int i = 0; i < 4; i++)
        for (size_t g = 0; g < N_GEOMS; g++)
            vkr_kernel_free(ctx, &kern.matmul[i][g]);
    kern_made = false;
}

static void test_add(void **state)
{
    struct kernels *k = kernels();
    const uint32_t sizes[] = { 1, 255, 256, 257, 4099, 100000 };
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        uint32_t n = sizes[s];
        float *a = malloc(n * 4), *b = malloc(n * 4), *y = malloc(n * 4);
        for (uint32_t i = 0; i < n; i++) {
            a[i] = frand();
            b[i] = frand();
        }
        struct vkr_buf ba, bb, by;
        assert_int_equal(vkr_buf_new(ctx, n * 4, VKR_MEM_DEVICE, &ba), 0);
        assert_int_equal(vkr_buf_new(ctx, n * 4, VKR_MEM_DEVICE, &bb), 0);
        assert_int_equal(vkr_buf_new(ctx, n * 4, VKR_MEM_DEVICE, &by), 0);
        assert_int_equal(vkr_buf_upload(ctx, &ba, 0, a, n * 4), 0);
        assert_int_equal(vkr_buf_upload(ctx, &bb, 0, b, n * 4), 0);
        struct vkr_set_pool pool;
        assert_int_equal(vkr_set_pool_new(ctx, 1, 3, &pool), 0);
        VkDescriptorSet set;
        struct vkr_binding bd[3] = { { &ba, 0, 0 }, { &bb, 0, 0 }, { &by, 0, 0 } };
        assert_int_equal(vkr_set_new(ctx, &pool, &k->add, bd, 3, &set), 0);
        struct vkr_cmd c;
        assert_int_equal(vkr_cmd_new(ctx, 4, &c), 0);
        assert_int_equal(vkr_cmd_begin(ctx, &c), 0);
        int t0 = vkr_cmd_timestamp(ctx, &c);
        vkr_cmd_dispatch(&c, &k->add, set, &n, (n + 255) / 256, 1, 1);
        int t1 = vkr_cmd_timestamp(ctx, &c);
        assert_int_equal(vkr_cmd_submit_wait(ctx, &c), 0);
        double ns;
        if (ctx->info.has_timestamps) {
            assert_int_equal(vkr_cmd_elapsed_ns(ctx, &c, t0, t1, &ns), 0);
            assert_true(ns >= 0.0);
        }
        assert_int_equal(vkr_buf_download(ctx, &by, 0, y, n * 4), 0);
        for (uint32_t i = 0; i < n; i++)
            assert_true(y[i] == a[i] + b[i]);
        vkr_cmd_free(ctx, &c);
        vkr_set_pool_free(ctx, &pool);
        vkr_buf_free(ctx, &ba);
        vkr_buf_free(ctx, &bb);
        vkr_buf_free(ctx, &by);
        free(a);
        free(b);
        free(y);
    }
}

/* Encode a row-major float matrix in ggml type `type`; returns bytes a row
 * and writes the dequantised values (what the GPU must see) into deq. */
static size_t encode(uint32_t type, const float *w, uint32_t rows, uint32_t cols, uint8_t *out,
                     float *deq)
{
    size_t rb = type == 0 ? cols * 4 : type == 8 ? cols / 32 * 34 : cols * 2;
    for (uint32_t r = 0; r < rows; r++) {
        uint8_t *o = out + r * rb;
        const float *x = w + (size_t)r * cols;
        float *d = deq + (size_t)r * cols;
        if (type == 0) {
            memcpy(o, x, cols * 4);
            memcpy(d, x, cols * 4);
        } else if (type == 1) {
            for (uint32_t k = 0; k < cols; k++) {
                uint16_t h = to_f16(x[k]);
                memcpy(o + 2 * k, &h, 2);
                d[k] = from_f16(h);
            }
        } else if (type == 30) {
            for (uint32_t k = 0; k < cols; k++) {
                uint32_t u;
                memcpy(&u, &x[k], 4);
                uint16_t h = (uint16_t)(u >> 16); /* truncation is a valid bf16 */
                memcpy(o + 2 * k, &h, 2);
                u = (uint32_t)h << 16;
                memcpy(&d[k], &u, 4);
            }
        } else {
            for (uint32_t b = 0; b < cols / 32; b++) {
                float amax = 0;
                for (int j = 0; j < 32; j++)
                    amax = fmaxf(amax, fabsf(x[b * 32 + j]));
                uint16_t hs = to_f16(amax / 127.0f);
                float s = from_f16(hs);
                memcpy(o + b * 34, &hs, 2);
                for (int j = 0; j < 32; j++) {
                    int q = s > 0 ? (int)lrintf(x[b * 32 + j] / s) : 0;
                    q = q > 127 ? 127 : q < -127 ? -127 : q;
                    o[b * 34 + 2 + j] = (uint8_t)(int8_t)q;
                    d[b * 32 + j] = s * (float)q;
                }
            }
        }
    }
    return rb;
}

/* Q8_0 goes to the GPU in the layout of llama/repack.h, per chunk. */
static int repack(void *arg, const void *src, uint64_t n_rows, uint64_t row_bytes, void *dst)
{
    return llm_repack_rows(*(const uint32_t *)arg, src, n_rows, row_bytes, dst);
}

/* Y = W X through vkr_rows chunks (each chunk one dispatch), then compare
 * with a double-precision CPU product of the dequantised weights. */
/* Whether this device runs geometry G as the model would: whole
 * subgroups, SPLITK of them a row (llama/gpu_kernels.c refuses the rest; on an
 * NVIDIA GPU a 64-lane workgroup has only 2 subgroups). */
static bool geom_ok(const struct mm_geom *G)
{
    uint32_t sg = ctx->info.subgroup_size;
    return sg && G->local % sg == 0 && (G->local / sg) % G->splitk == 0;
}

/* Returns false, having run nothing, for a geometry the device cannot run. */
static bool run_matmul_geom(struct kernels *k, int ti, size_t gi, uint32_t rows, uint32_t cols,
                            uint32_t ntok, uint64_t binding_limit, float *ret_y)
{
    const struct mm_geom *G = &geoms[gi];
    if (!geom_ok(G))
        return false;
    uint32_t type = wtypes[ti];
    float *w = malloc((size_t)rows * cols * 4), *deq = malloc((size_t)rows * cols * 4);
    float *x = malloc((size_t)ntok * cols * 4), *y = malloc((size_t)ntok * rows * 4);
    uint8_t *enc = malloc((size_t)rows * cols * 4);
    for (size_t i = 0; i < (size_t)rows * cols; i++)
        w[i] = frand();
    for (size_t i = 0; i < (size_t)ntok * cols; i++)
        x[i] = frand();
    size_t rb = encode(type, w, rows, cols, enc, deq);
    vkr_set_max_binding_override(ctx, binding_limit);
    struct vkr_rows wr;
    assert_int_equal(llm_repacked(type) ?
                             vkr_rows_upload_xform(ctx, enc, rows, rb, repack, &type, &wr) :
                             vkr_rows_upload(ctx, enc, rows, rb, &wr),
                     0);
    vkr_set_max_binding_override(ctx, 0);
    if (binding_limit)
        assert_true(wr.n_chunks > 1);
    struct vkr_buf bx, by, bs;
    assert_int_equal(vkr_buf_new(ctx, (size_t)ntok * cols * 4, VKR_MEM_DEVICE, &bx), 0);
    assert_int_equal(vkr_buf_new(ctx, (size_t)ntok * rows * 4, VKR_MEM_DEVICE, &by), 0);
    assert_int_equal(vkr_buf_new(ctx, 4, VKR_MEM_DEVICE, &bs), 0);
    assert_int_equal(vkr_buf_upload(ctx, &bx, 0, x, (size_t)ntok * cols * 4), 0);
    struct vkr_set_pool pool;
    assert_int_equal(vkr_set_pool_new(ctx, wr.n_chunks, B_MM_N * wr.n_chunks, &pool), 0);
    struct vkr_cmd c;
    assert_int_equal(vkr_cmd_new(ctx, 0, &c), 0);
    assert_int_equal(vkr_cmd_begin(ctx, &c), 0);
    for (uint32_t ch = 0; ch < wr.n_chunks; ch++) {
        VkDescriptorSet set;
        struct vkr_binding bd[B_MM_N] = {
            [B_MM_W] = { &wr.chunk[ch], 0, 0 }, [B_MM_X] = { &bx, 0, 0 }, [B_MM_Y] = { &by, 0, 0 }
        };
        for (int b = B_MM_SEL; b < B_MM_N; b++)
            bd[b] = (struct vkr_binding){ &bs, 0, 0 }; /* unused but SEL */
        assert_int_equal(vkr_set_new(ctx, &pool, &k->matmul[ti][gi], bd, B_MM_N, &set), 0);
        uint32_t n = (uint32_t)vkr_rows_count(&wr, ch);
        struct pc_matmul p = { .ncols = cols,
                               .nrows = n,
                               .ntok = ntok,
                               .x_stride = cols,
                               .y_stride = rows,
                               .y_off = (uint32_t)vkr_rows_first(&wr, ch) };
        uint32_t wgs = (n + G->rows_wg - 1) / G->rows_wg;
        vkr_cmd_dispatch(&c, &k->matmul[ti][gi], set, &p, (ntok + G->tile - 1) / G->tile,
                         wgs < 32768 ? wgs : 32768, (wgs + 32767) / 32768);
    }
    assert_int_equal(vkr_cmd_submit_wait(ctx, &c), 0);
    assert_int_equal(vkr_buf_download(ctx, &by, 0, y, (size_t)ntok * rows * 4), 0);
    for (uint32_t t = 0; t < ntok; t++)
        for (uint32_t r = 0; r < rows; r++) {
            double ref = 0, mag = 0;
            for (uint32_t kk = 0; kk < cols; kk++) {
                ref += (double)deq[(size_t)r * cols + kk] * x[(size_t)t * cols + kk];
                mag += fabs((double)deq[(size_t)r * cols + kk] * x[(size_t)t * cols + kk]);
            }
            /* fp32 accumulation of `cols` products: error bounded by about
             * cols * 2^-24 * sum|w x|; 1e-5 relative to that sum is ample
             * for cols <= 4096 and tight enough to catch any wrong element. */
            double got = y[(size_t)t * rows + r];
            if (fabs(got - ref) > 1e-5 * mag + 1e-6)
                fail_msg("type %u rows %u cols %u T %u: y[%u][%u] = %.9g, want %.9g", type, rows,
                         cols, ntok, t, r, got, ref);
        }
    if (ret_y)
        memcpy(ret_y, y, (size_t)ntok * rows * 4);
    vkr_cmd_free(ctx, &c);
    vkr_set_pool_free(ctx, &pool);
    vkr_rows_free(ctx, &wr);
    vkr_buf_free(ctx, &bx);
    vkr_buf_free(ctx, &by);
    vkr_buf_free(ctx, &bs);
    free(w);
    free(deq);
    free(x);
    free(y);
    free(enc);
    return true;
}

static void run_matmul(struct kernels *k, int ti, uint32_t rows, uint32_t cols, uint32_t ntok,
                       uint64_t binding_limit, float *ret_y)
{
    assert_true(run_matmul_geom(k, ti, 0, rows, cols, ntok, binding_limit, ret_y));
}

static void test_matmul_sizes(void **state)
{
    struct kernels *k = kernels();
    const uint32_t cols[] = { 32, 64, 96, 132, 172, 512, 1408, 4096 }; /* 132, 172: ragged ends */
    const uint32_t rows[] = { 1, 3, 64, 65, 257 };
    const uint32_t toks[] = { 1, 2, 7, 8, 9, 17 };
    for (int ti = 0; ti < 4; ti++)
        for (size_t a = 0; a < sizeof(cols) / 4; a++)
            for (size_t b = 0; b < sizeof(rows) / 4; b++) {
                if (wtypes[ti] == 8 && cols[a] % 32)
                    continue; /* Q8_0 rows are whole 32-element blocks */
                uint32_t nt = toks[(a + b) % (sizeof(toks) / 4)];
                run_matmul(k, ti, rows[b], cols[a], nt, 0, NULL);
            }
}

/* A matrix bigger than the (faked) binding limit is split into chunks of
 * whole rows, one dispatch each, and still gives the right product. */
static void test_matmul_split(void **state)
{
    struct kernels *k = kernels();
    for (int ti = 0; ti < 4; ti++)
        run_matmul(k, ti, 300, 256, 5, 256 * 4 * 37 + 11,
                   NULL); /* 37 F32 rows a chunk, odd limit */
}

/* A token's outputs are bit-identical whatever else is in the batch. */
static void test_matmul_batch_invariant(void **state)
{
    struct kernels *k = kernels();
    const size_t gs[] = { 0, 5, 6 }; /* one, two and four subgroups a row */
    for (int ti = 0; ti < 4; ti++)
        for (size_t gi = 0; gi < 3; gi++) {
            uint32_t rows = 70, cols = 320;
            float *y1 = malloc(rows * 4), *yn = malloc(13 * rows * 4);
            uint32_t saved = rng;
            if (run_matmul_geom(k, ti, gs[gi], rows, cols, 1, 0, y1)) {
                rng = saved; /* same weights; x row 0 is the same token */
                assert_true(run_matmul_geom(k, ti, gs[gi], rows, cols, 13, 0, yn));
                assert_memory_equal(y1, yn, rows * 4);
            }
            free(y1);
            free(yn);
        }
}

/* Every geometry (rows a subgroup reduces together, loads in flight, token
 * tile, workgroup size) gives the same bits as the default one, at ragged
 * sizes, so a device may be tuned without touching exactness. */
static void test_matmul_geometry_invariant(void **state)
{
    struct kernels *k = kernels();
    const uint32_t shapes[][3] = {
        { 70, 320, 13 }, { 37, 1408, 5 }, { 9, 172, 3 }, { 65, 4096, 1 }, { 33, 320, 75 }
    };
    for (int ti = 0; ti < 4; ti++)
        for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
            uint32_t rows = shapes[s][0], cols = shapes[s][1], nt = shapes[s][2];
            if (wtypes[ti] == 8 && cols % 32)
                continue;
            float *y0 = malloc((size_t)nt * rows * 4), *yg = malloc((size_t)nt * rows * 4);
            uint32_t saved = rng;
            int ran = 0;
            for (uint32_t split = 1; split <= 4; split *= 2) {
                size_t first = N_GEOMS;
                for (size_t g = 0; g < N_GEOMS; g++) {
                    if (geoms[g].splitk != split)
                        continue;
                    rng = saved;
                    if (!run_matmul_geom(k, ti, g, rows, cols, nt, 0, first == N_GEOMS ? y0 : yg))
                        continue;
                    ran++;
                    if (first == N_GEOMS)
                        first = g;
                    else if (memcmp(y0, yg, (size_t)nt * rows * 4))
                        fail_msg("type %u %ux%u T %u: geometry %zu differs from geometry %zu",
                                 wtypes[ti], rows, cols, nt, g, first);
                }
            }
            free(y0);
            free(yg);
            /* whatever the subgroup size, several geometries of split 1
             * compared (all but the 128-lane ones suit a 64-lane one) */
            assert_true(ran >= 4);
        }
}

/* matmul_cm.comp (the matrix units), on devices with VK_NV_cooperative_matrix
 * (an NVIDIA GPU; lavapipe has none, and the test says so): f16 weights at
 * several shapes against the CPU product; then batch invariance, which
 * lookahead's exactness rests on: a token's outputs are bit-identical
 * alone (gathered through SEL) or anywhere in a batch of 40, with 16 or 32
 * tokens a workgroup (MODE 0 and 1). The split of K (classes, columns) is
 * the model's default, 4 x 64. Row counts that are not a multiple of 64
 * leave MODE 1's last workgroup part empty. */
struct cm_run {
    struct vkr_kernel k[2];
    struct vkr_rows wr;
    struct vkr_buf bx, by, bs;
    uint32_t rows, cols;
};

/* y = W x for ntok tokens (through SEL when sel), by MODE 0 (16 tokens and
 * 16 rows a workgroup, nt2 0) or MODE 1 (32 tokens, 64 rows). */
static void cm_product(struct cm_run *r, int nt2, uint32_t ntok, const int32_t *sel, float *y)
{
    if (sel)
        assert_int_equal(vkr_buf_upload(ctx, &r->bs, 0, sel, ntok * 4), 0);
    struct vkr_set_pool pool;
    assert_int_equal(vkr_set_pool_new(ctx, 1, B_MM_N, &pool), 0);
    VkDescriptorSet set;
    struct vkr_binding bd[B_MM_N] = {
        [B_MM_W] = { &r->wr.chunk[0], 0, 0 }, [B_MM_X] = { &r->bx, 0, 0 }, [B_MM_Y] = { &r->by, 0, 0 }
    };
    for (int b = B_MM_SEL; b < B_MM_N; b++)
        bd[b] = (struct vkr_binding){ &r->bs, 0, 0 }; /* unused but SEL */
    assert_int_equal(vkr_set_new(ctx, &pool, &r->k[nt2], bd, B_MM_N, &set), 0);
    struct vkr_cmd c;
    assert_int_equal(vkr_cmd_new(ctx, 0, &c), 0);
    assert_int_equal(vkr_cmd_begin(ctx, &c), 0);
    struct pc_matmul p = { .ncols = r->cols,
                           .nrows = r->rows,
                           .ntok = ntok,
                           .x_stride = r->cols,
                           .y_stride = r->rows,
                           .flags = sel ? MM_GATHER : 0 };
    uint32_t tt = nt2 ? 32 : 16, rows_wg = nt2 ? 64 : 16;
    vkr_cmd_dispatch(&c, &r->k[nt2], set, &p, (ntok + tt - 1) / tt,
                     (r->rows + rows_wg - 1) / rows_wg, 1);
    assert_int_equal(vkr_cmd_submit_wait(ctx, &c), 0);
    assert_int_equal(vkr_buf_download(ctx, &r->by, 0, y, (size_t)ntok * r->rows * 4), 0);
    vkr_cmd_free(ctx, &c);
    vkr_set_pool_free(ctx, &pool);
}

static void test_matmul_cm(void **state)
{
    if (!ctx->has_coopmat_nv) {
        fprintf(stderr,
                "device '%s' has no VK_NV_cooperative_matrix 16x16x16 f16: matmul_cm.comp not tested here\n",
                ctx->info.name);
        skip();
    }
    const uint32_t shapes[][2] = {
        { 16, 64 }, { 48, 192 }, { 256, 576 }, { 64, 4096 }, { 4096, 256 }
    };
    const uint32_t maxt = 40;
    for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
        struct cm_run r = { .rows = shapes[s][0], .cols = shapes[s][1] };
        for (uint32_t i = 0; i < 2; i++) {
            struct vkr_kernel_desc d = { .name = "matmul_cm",
                                         .spirv = lade_spv_matmul_cm,
                                         .spirv_bytes = lade_spv_matmul_cm_bytes,
                                         .n_bindings = B_MM_N,
                                         .push_bytes = sizeof(struct pc_matmul),
                                         .n_spec = 6,
                                         .spec = { 0, 128, i + 1, 4, 64, i } };
            assert_int_equal(vkr_kernel_new(ctx, &d, &r.k[i]), 0);
        }
        size_t nw = (size_t)r.rows * r.cols;
        float *w = malloc(nw * 4), *deq = malloc(nw * 4), *x = malloc((size_t)maxt * r.cols * 4);
        uint8_t *enc = malloc(nw * 2);
        float *y = malloc((size_t)maxt * r.rows * 4), *y2 = malloc((size_t)maxt * r.rows * 4);
        for (size_t i = 0; i < nw; i++)
            w[i] = frand();
        /* inputs of very different sizes, so that lo halves matter */
        for (size_t i = 0; i < (size_t)maxt * r.cols; i++)
            x[i] = frand() * (i % 7 == 0 ? 300.0f : i % 5 == 0 ? 1e-3f : 1.0f);
        encode(1, w, r.rows, r.cols, enc, deq);
        assert_int_equal(vkr_rows_upload(ctx, enc, r.rows, (uint64_t)r.cols * 2, &r.wr), 0);
        assert_int_equal(vkr_buf_new(ctx, (size_t)maxt * r.cols * 4, VKR_MEM_DEVICE, &r.bx), 0);
        assert_int_equal(vkr_buf_new(ctx, (size_t)maxt * r.rows * 4, VKR_MEM_DEVICE, &r.by), 0);
        assert_int_equal(vkr_buf_new(ctx, maxt * 4, VKR_MEM_DEVICE, &r.bs), 0);
        assert_int_equal(vkr_buf_upload(ctx, &r.bx, 0, x, (size_t)maxt * r.cols * 4), 0);
        const uint32_t toks[] = { 1, 5, 16, 17, 40 };
        for (size_t ti = 0; ti < sizeof(toks) / 4; ti++) {
            uint32_t nt = toks[ti];
            cm_product(&r, ti % 2, nt, NULL, y);
            for (uint32_t t = 0; t < nt; t++)
                for (uint32_t row = 0; row < r.rows; row++) {
                    double ref = 0, mag = 0;
                    for (uint32_t k = 0; k < r.cols; k++) {
                        double pr =
                                (double)deq[(size_t)row * r.cols + k] * x[(size_t)t * r.cols + k];
                        ref += pr;
                        mag += fabs(pr);
                    }
                    double got = y[(size_t)t * r.rows + row];
                    if (fabs(got - ref) > 1e-5 * mag + 1e-6)
                        fail_msg("matmul_cm %ux%u T %u: y[%u][%u] = %.9g, want %.9g", r.rows,
                                 r.cols, nt, t, row, got, ref);
                }
        }
        /* batch invariance: 40 tokens in tiles of 16, of 32, and each of a
         * few tokens alone */
        cm_product(&r, 0, maxt, NULL, y);
        cm_product(&r, 1, maxt, NULL, y2);
        assert_memory_equal(y, y2, (size_t)maxt * r.rows * 4);
        const int32_t alone[] = { 0, 7, 23, 39 };
        for (size_t i = 0; i < 4; i++) {
            cm_product(&r, (int)(i % 2), 1, &alone[i], y2);
            if (memcmp(y2, y + (size_t)alone[i] * r.rows, r.rows * 4))
                fail_msg("matmul_cm %ux%u: token %d alone differs from its row in a batch of 40",
                         r.rows, r.cols, alone[i]);
        }
        int32_t rev[40];
        for (uint32_t i = 0; i < maxt; i++)
            rev[i] = (int32_t)(maxt - 1 - i);
        cm_product(&r, 1, maxt, rev, y2);
        for (uint32_t i = 0; i < maxt; i++)
            if (memcmp(y2 + (size_t)i * r.rows, y + (size_t)rev[i] * r.rows, r.rows * 4))
                fail_msg("matmul_cm %ux%u: token %d at place %u of a batch differs", r.rows, r.cols,
                         rev[i], i);
        for (int i = 0; i < 2; i++)
            vkr_kernel_free(ctx, &r.k[i]);
        vkr_rows_free(ctx, &r.wr);
        vkr_buf_free(ctx, &r.bx);
        vkr_buf_free(ctx, &r.by);
        vkr_buf_free(ctx, &r.bs);
        free(w);
        free(deq);
        free(x);
        free(enc);
        free(y);
        free(y2);
    }
}

/* Proof that the harness catches validation errors: a child process
 * records a dispatch with no descriptor set bound; the layer reports it and
 * LADE_VALIDATION=1 turns that into an abort. */
/* One dispatch of `groups` workgroups of a kernel over the given
 * buffers, waited for. */
static void run_once(const struct vkr_kernel_desc *kd, struct vkr_buf *const *bufs, uint32_t nb,
                     const void *pc, uint32_t groups)
{
    struct vkr_kernel k;
    assert_int_equal(vkr_kernel_new(ctx, kd, &k), 0);
    struct vkr_set_pool pool;
    assert_int_equal(vkr_set_pool_new(ctx, 1, nb, &pool), 0);
    struct vkr_binding bb[4];
    for (uint32_t i = 0; i < nb; i++)
        bb[i] = (struct vkr_binding){ bufs[i], 0, 0 };
    VkDescriptorSet set;
    assert_int_equal(vkr_set_new(ctx, &pool, &k, bb, nb, &set), 0);
    struct vkr_cmd cmd;
    assert_int_equal(vkr_cmd_new(ctx, 2, &cmd), 0);
    assert_int_equal(vkr_cmd_begin(ctx, &cmd), 0);
    vkr_cmd_dispatch(&cmd, &k, set, pc, groups, 1, 1);
    assert_int_equal(vkr_cmd_submit_wait(ctx, &cmd), 0);
    vkr_cmd_free(ctx, &cmd);
    vkr_set_pool_free(ctx, &pool);
    vkr_kernel_free(ctx, &k);
}

/* draw.comp against dec_draw (decoding/draw.c), which defines the draw:
 * rows of 1 to 32000 logits (flat, peaked, with -inf and NaN entries, all
 * equal, small integers, one token far above a crowd that holds much of
 * the mass: top-p's list and its whole-row weighing), numbers at both
 * ends and between, two
 * temperatures, with and without min-p and top-p. The token must be
 * dec_draw's, or (only where the device's exp() rounds a sum differently)
 * one whose cumulative range holds the target to within 1e-5 of the total
 * (with top-p: one inside the nucleus to within 1e-5); and 64 and 256
 * lanes give the same tokens, since no sum's order depends on the
 * workgroup size. */
struct draw_case {
    uint32_t n_vocab;
    float spread;
    int odd; /* 1: some -inf, 2: some NaN, 3: all equal, 4: small integers, 5: one 12 above a crowd at 0 */
};

static void fill_logits(const struct draw_case *c, float *l)
{
    for (uint32_t v = 0; v < c->n_vocab; v++) {
        l[v] = c->odd == 3 ? 0.5f :
               c->odd == 4 ? (float)((v * 7919u) % 5u) :
                             (frand() - 0.5f) * c->spread;
        if (c->odd == 5)
            l[v] = v == c->n_vocab / 3 ? 12.0f : 0.0f;
        if ((c->odd == 1 && v % 7 == 3) || (c->odd == 2 && v % 11 == 5))
            l[v] = c->odd == 1 ? -INFINITY : NAN;
    }
}

/* With top-p, a token the device drew where the host drew another must
 * lie in the nucleus up to rounding: the tokens before it in the order
 * (scaled logit descending, id ascending, NaN last) hold less than top_p
 * of the mass (in double, to within 1e-5), and its weight is not under
 * min-p. */
static bool near_nucleus(const float *row, uint32_t n, const struct dec_draw_params *d, int32_t t)
{
    float inv_t = 1.0f / d->temperature, st = row[t] * inv_t, mx = -INFINITY;
    for (uint32_t v = 0; v < n; v++)
        mx = row[v] * inv_t > mx ? row[v] * inv_t : mx;
    double all = 0, before = 0;
    for (uint32_t v = 0; v < n; v++) {
        float s = row[v] * inv_t;
        double e = exp((double)s - mx);
        e = e == e ? e : 0;
        all += e;
        bool ahead = st != st ? s == s || (int32_t)v < t : s > st || (s == st && (int32_t)v < t);
        before += ahead ? e : 0;
    }
    double wt = exp((double)st - mx);
    return st == st && before < d->top_p * all * (1 + 1e-5) && wt >= d->min_p * (1 - 1e-5);
}

static void test_draw(void **state)
{
    static const struct draw_case cases[] = {
        { 32000, 4, 0 }, { 32000, 30, 0 }, { 4096, 8, 1 }, { 4097, 8, 2 },    { 129, 2, 0 },
        { 1, 1, 0 },     { 300, 1, 3 },    { 700, 1, 4 },  { 32000, 400, 0 }, { 32000, 0, 5 },
    };
    const uint32_t ncase = sizeof(cases) / sizeof(cases[0]), per = 24, ndraw = ncase * per,
                   V = 32000;
    float *l = calloc((size_t)ncase * V, 4), *w = malloc(V * 4);
    uint32_t *ids = malloc(V * 4);
    uint32_t *d = malloc(ndraw * 32); /* per draw 8 words: head row, u24, inv_t, min_p, top_p */
    int32_t *out = malloc(ndraw * 8);
    for (uint32_t c = 0; c < ncase; c++)
        fill_logits(&cases[c], l + (size_t)c * V);
    struct vkr_buf bl, bd, bo;
    assert_int_equal(vkr_buf_new(ctx, (VkDeviceSize)ncase * V * 4, VKR_MEM_DEVICE, &bl), 0);
    assert_int_equal(vkr_buf_new(ctx, ndraw * 32, VKR_MEM_DEVICE, &bd), 0);
    assert_int_equal(vkr_buf_new(ctx, ndraw * 8, VKR_MEM_DEVICE, &bo), 0);
    static const struct dec_draw_params params[] = {
        { .temperature = 1.0f, .penalty = 1.0f },
        { .temperature = 0.6f, .min_p = 0.02f, .penalty = 1.0f },
        { .temperature = 1.0f, .top_p = 0.9f, .penalty = 1.0f },
        { .temperature = 0.8f, .top_p = 0.5f, .min_p = 0.05f, .penalty = 1.0f },
    };
    uint32_t mismatches = 0, compared = 0;
    for (size_t pi = 0; pi < sizeof(params) / sizeof(params[0]); pi++) {
        int32_t first[24 * 10];
        uint32_t u[24 * 10];
        for (uint32_t j = 0; j < ndraw; j++)
            u[j] = j % per == 0 ? 0 :
                   j % per == 1 ? 0xffffffu :
                                  (rng = rng * 1664525u + 1013904223u) >> 8;
        for (uint32_t local = 64; local <= 256; local *= 4) {
            struct vkr_kernel_desc kd = { .name = "draw",
                                          .spirv = lade_spv_draw,
                                          .spirv_bytes = lade_spv_draw_bytes,
                                          .n_bindings = 3,
                                          .push_bytes = 8,
                                          .n_spec = 3,
                                          .spec = { 0, local, 2048 } };
            /* Each case's rows are its own n_vocab wide: one dispatch a case. */
            for (uint32_t c = 0; c < ncase; c++) {
                uint32_t n = cases[c].n_vocab;
                float *row = malloc((size_t)n * 4);
                memcpy(row, l + (size_t)c * V, (size_t)n * 4);
                assert_int_equal(vkr_buf_upload(ctx, &bl, 0, row, (size_t)n * 4), 0);
                float inv_t = 1.0f / params[pi].temperature, min_p = params[pi].min_p,
                      top_p = params[pi].top_p > 0 ? params[pi].top_p : 1.0f;
                for (uint32_t j = 0; j < per; j++) {
                    d[8 * j] = 0;
                    d[8 * j + 1] = u[c * per + j];
                    memcpy(&d[8 * j + 2], &inv_t, 4);
                    memcpy(&d[8 * j + 3], &min_p, 4);
                    memcpy(&d[8 * j + 4], &top_p, 4);
                }
                assert_int_equal(vkr_buf_upload(ctx, &bd, 0, d, per * 32), 0);
                struct {
                    uint32_t n_vocab, out_off;
                } pc = { n, 3 };
                struct vkr_buf *bufs[3] = { &bl, &bd, &bo };
                run_once(&kd, bufs, 3, &pc, per);
                assert_int_equal(vkr_buf_download(ctx, &bo, 3 * 4, out, per * 4), 0);
                for (uint32_t j = 0; j < per; j++) {
                    int32_t t = out[j], want = dec_draw(row, n, &params[pi], d[8 * j + 1], w, ids);
                    if (local == 64)
                        first[c * per + j] = t;
                    else
                        assert_int_equal(t, first[c * per + j]);
                    assert_true(t >= 0 && (uint32_t)t < n);
                    compared++;
                    if (t == want)
                        continue;
                    mismatches++;
                    print_message("draw: case %u u24 %u: device %d, host %d\n", c, d[8 * j + 1], t,
                                  want);
                    if (params[pi].top_p > 0) {
                        assert_true(near_nucleus(row, n, &params[pi], t));
                        continue;
                    }
                    /* Only a rounding away: the target lies at the edge of t's range. */
                    double mx = -INFINITY, total = 0, below = 0, wt = 0;
                    for (uint32_t v = 0; v < n; v++)
                        if ((double)row[v] / params[pi].temperature > mx)
                            mx = (double)row[v] / params[pi].temperature;
                    for (uint32_t v = 0; v < n; v++) {
                        double e = exp((double)row[v] / params[pi].temperature - mx);
                        e = e >= params[pi].min_p ? e : 0;
                        total += e;
                        below += (int32_t)v < t ? e : 0;
                        wt += (int32_t)v == t ? e : 0;
                    }
                    double target = d[8 * j + 1] * 0x1p-24 * total;
                    assert_true(wt > 0);
                    assert_true(below <= target + 1e-5 * total &&
                                below + wt > target - 1e-5 * total);
                }
                free(row);
            }
        }
    }
    print_message("draw: %u of %u draws differ from the host's (exp rounding)\n", mismatches,
                  compared);
    assert_true(mismatches * 50 <= compared);
    vkr_buf_free(ctx, &bl);
    vkr_buf_free(ctx, &bd);
    vkr_buf_free(ctx, &bo);
    free(l);
    free(w);
    free(ids);
    free(d);
    free(out);
}

/* topk.comp against dec_top_k, bit for bit (only comparisons decide, so
 * nothing may differ): rows of 2 to 32000 logits, spread wide, with many
 * ties (small integers), zeros of both signs, NaN and -inf, k from 1 to
 * DEC_TOPK_MAX, two temperatures, 64 and 256 lanes (and 32 for NVIDIA's
 * subgroups). Several rows a dispatch, each its own LM head row. */
struct topk_case {
    uint32_t n_vocab, k;
    int kind; /* 0 spread, 1 small integers, 2 +-0 and NaN, 3 all equal, 4 -inf */
};

static void test_topk(void **state)
{
    static const struct topk_case cases[] = {
        { 32000, 40, 0 }, { 32000, 256, 1 }, { 4096, 1, 0 },   { 4097, 255, 2 }, { 129, 64, 1 },
        { 300, 7, 3 },    { 2, 1, 2 },       { 1000, 250, 4 }, { 32000, 1, 1 },  { 777, 100, 2 },
    };
    const uint32_t ncase = sizeof(cases) / sizeof(cases[0]), rows = 3, V = 32000;
    float *l = malloc((size_t)rows * V * 4), *scaled = malloc(V * 4);
    int32_t *idx = malloc(V * 4);
    struct dec_cand *want = malloc(DEC_TOPK_MAX * sizeof(*want));
    uint32_t *got = malloc((size_t)rows * DEC_TOPK_MAX * 8), rowsel[3] = { 2, 0, 1 };
    struct vkr_buf bl, br, bo;
    assert_int_equal(vkr_buf_new(ctx, (VkDeviceSize)rows * V * 4, VKR_MEM_DEVICE, &bl), 0);
    assert_int_equal(vkr_buf_new(ctx, rows * 16, VKR_MEM_DEVICE, &br), 0);
    assert_int_equal(vkr_buf_new(ctx, (VkDeviceSize)rows * DEC_TOPK_MAX * 8, VKR_MEM_DEVICE, &bo),
                     0);
    uint32_t compared = 0;
    for (uint32_t c = 0; c < ncase; c++) {
        const struct topk_case *tc = &cases[c];
        uint32_t n = tc->n_vocab;
        for (uint32_t v = 0; v < rows * n; v++) {
            float x = (frand() - 0.5f) * 20.0f;
            if (tc->kind == 1)
                x = (float)(int)(frand() * 9.0f) - 4.0f;
            if (tc->kind == 2 && v % 5 == 1)
                x = v % 3 ? -0.0f : 0.0f;
            if (tc->kind == 2 && v % 13 == 4)
                x = NAN;
            if (tc->kind == 3)
                x = 1.25f;
            if (tc->kind == 4 && v % 2)
                x = -INFINITY;
            l[v] = x;
        }
        assert_int_equal(vkr_buf_upload(ctx, &bl, 0, l, (size_t)rows * n * 4), 0);
        for (int ti = 0; ti < 2; ti++) {
            float temp = ti ? 0.7f : 1.0f;
            for (uint32_t local = 32; local <= 256; local *= 2) {
                if (local == 128)
                    continue;
                struct vkr_kernel_desc kd = { .name = "topk",
                                              .spirv = lade_spv_topk,
                                              .spirv_bytes = lade_spv_topk_bytes,
                                              .n_bindings = 3,
                                              .push_bytes = 4,
                                              .n_spec = 2,
                                              .spec = { 0, local } };
                /* Per row: its LM head row, its k, its 1 / temperature; the
                 * rows of one dispatch each with their own k */
                uint32_t rw[3 * 4], ks[3];
                float inv_t = 1.0f / temp;
                for (uint32_t j = 0; j < rows; j++) {
                    ks[j] = j == 1 && tc->k > 1 ? tc->k / 2 : tc->k;
                    rw[4 * j] = rowsel[j];
                    rw[4 * j + 1] = ks[j];
                    memcpy(&rw[4 * j + 2], &inv_t, 4);
                    rw[4 * j + 3] = 0;
                }
                assert_int_equal(vkr_buf_upload(ctx, &br, 0, rw, sizeof(rw)), 0);
                struct {
                    uint32_t n_vocab;
                } pc = { n };
                struct vkr_buf *bufs[3] = { &bl, &br, &bo };
                run_once(&kd, bufs, 3, &pc, rows);
                assert_int_equal(
                        vkr_buf_download(ctx, &bo, 0, got, (size_t)rows * DEC_TOPK_MAX * 8), 0);
                for (uint32_t j = 0; j < rows; j++) {
                    dec_top_k(l + (size_t)rowsel[j] * n, n, temp, ks[j], want, scaled, idx);
                    for (uint32_t i = 0; i < ks[j]; i++) {
                        const uint32_t *g = got + ((size_t)j * DEC_TOPK_MAX + i) * 2;
                        uint32_t wbits;
                        memcpy(&wbits, &want[i].logit, 4);
                        if (g[0] != (uint32_t)want[i].id || g[1] != wbits)
                            print_message(
                                    "topk: case %u row %u lanes %u cand %u: device %u %08x, host %d %08x\n",
                                    c, j, local, i, g[0], g[1], want[i].id, wbits);
                        assert_int_equal(g[0], (uint32_t)want[i].id);
                        assert_int_equal(g[1], wbits);
                    }
                    compared++;
                }
            }
        }
    }
    print_message("topk: %u rows, every candidate identical to dec_top_k\n", compared);
    vkr_buf_free(ctx, &bl);
    vkr_buf_free(ctx, &br);
    vkr_buf_free(ctx, &bo);
    free(l);
    free(scaled);
    free(idx);
    free(want);
    free(got);
}

/* penalty.comp against dec_penalized, bit for bit: three penalized rows,
 * each with its own penalty (one list empty), logits of both signs, zero
 * and -inf; the tokens not listed and the row without a list keep their
 * bits. */
static void test_penalty(void **state)
{
    enum { V = 1000, R = 4, STRIDE = 256 };
    static float l[R * V], out[R * V];
    static uint32_t pen[4 * R + R * STRIDE];
    for (uint32_t v = 0; v < R * V; v++)
        l[v] = v % 17 == 3 ? 0.0f : v % 29 == 5 ? -INFINITY : (frand() - 0.5f) * 30.0f;
    /* Penalized row 0 is LM head row 2 (100 distinct tokens, penalty 1.3),
     * row 1 is head row 0 with an empty list, row 2 head row 3 (50 tokens,
     * penalty 0.8); head row 1 has none. */
    float penalty = 1.3f, inv = 1.0f / penalty, other = 0.8f, inv_other = 1.0f / other;
    pen[0] = 2;
    pen[1] = 100;
    memcpy(&pen[2], &penalty, 4);
    memcpy(&pen[3], &inv, 4);
    pen[4] = 0;
    pen[5] = 0;
    memcpy(&pen[6], &other, 4);
    memcpy(&pen[7], &inv_other, 4);
    pen[8] = 3;
    pen[9] = 50;
    memcpy(&pen[10], &other, 4);
    memcpy(&pen[11], &inv_other, 4);
    for (uint32_t i = 0; i < 100; i++)
        pen[4 * R + i] = (i * 37 + 11) % V;
    for (uint32_t i = 0; i < 50; i++)
        pen[4 * R + 2 * STRIDE + i] = (i * 53 + 7) % V;
    struct vkr_buf bl, bp;
    assert_int_equal(vkr_buf_new(ctx, sizeof(l), VKR_MEM_DEVICE, &bl), 0);
    assert_int_equal(vkr_buf_new(ctx, sizeof(pen), VKR_MEM_DEVICE, &bp), 0);
    assert_int_equal(vkr_buf_upload(ctx, &bl, 0, l, sizeof(l)), 0);
    assert_int_equal(vkr_buf_upload(ctx, &bp, 0, pen, sizeof(pen)), 0);
    struct vkr_kernel_desc kd = { .name = "penalty",
                                  .spirv = lade_spv_penalty,
                                  .spirv_bytes = lade_spv_penalty_bytes,
                                  .n_bindings = 2,
                                  .push_bytes = 12,
                                  .n_spec = 2,
                                  .spec = { 0, 64 } };
    struct {
        uint32_t n_vocab, max_rows, stride;
    } pc = { V, R, STRIDE };
    struct vkr_buf *bufs[2] = { &bl, &bp };
    run_once(&kd, bufs, 2, &pc, 3);
    assert_int_equal(vkr_buf_download(ctx, &bl, 0, out, sizeof(out)), 0);
    for (uint32_t i = 0; i < 100; i++) {
        uint32_t v = 2 * V + pen[4 * R + i];
        l[v] = dec_penalized(l[v], penalty);
    }
    for (uint32_t i = 0; i < 50; i++) {
        uint32_t v = 3 * V + pen[4 * R + 2 * STRIDE + i];
        l[v] = dec_penalized(l[v], other);
    }
    assert_memory_equal(out, l, sizeof(l));
    vkr_buf_free(ctx, &bl);
    vkr_buf_free(ctx, &bp);
}

/* Batched uploads (vkr_upload_begin/end): buffers larger than the ring
 * (so slots are reused while copies may be in flight), a matrix written
 * in two parts across chunk boundaries (gate and up stacked), a download
 * and a free in the middle of the batch; every byte must arrive, with the
 * validation layer watching the synchronisation. */
static void fill_bytes(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (uint8_t)(seed >> 24);
    }
}

static void test_upload_batch(void **state)
{
    const size_t sizes[] = { 100, 5u << 20, 70u << 20 | 12 };
    struct vkr_buf b[3], gone;
    uint8_t *src[3], *back = malloc(sizes[2]);
    assert_int_equal(vkr_upload_begin(ctx), 0);
    assert_int_equal(vkr_upload_begin(ctx), 0); /* already open: no-op */
    for (int i = 0; i < 3; i++) {
        src[i] = malloc(sizes[i]);
        fill_bytes(src[i], sizes[i], (uint32_t)i + 1);
        assert_int_equal(vkr_buf_new(ctx, sizes[i], VKR_MEM_DEVICE, &b[i]), 0);
        assert_int_equal(vkr_buf_upload(ctx, &b[i], 0, src[i], sizes[i]), 0);
    }
    /* A download in the batch sees what was uploaded before it. */
    assert_int_equal(vkr_buf_download(ctx, &b[1], 0, back, sizes[1]), 0);
    assert_memory_equal(back, src[1], sizes[1]);
    assert_int_equal(vkr_buf_new(ctx, 1u << 20, VKR_MEM_DEVICE, &gone), 0);
    assert_int_equal(vkr_buf_upload(ctx, &gone, 0, src[2], 1u << 20), 0);
    vkr_buf_free(ctx, &gone); /* waits for the copy into it */
    /* 1000 rows of 1000 bytes in chunks of at most 64 KiB (65 rows), as two
     * halves of 500 rows: both halves end inside a chunk. */
    vkr_set_max_binding_override(ctx, 64u << 10);
    struct vkr_rows r;
    uint8_t *rows = malloc(1000 * 1000), *chunk = malloc(1000 * 1000);
    fill_bytes(rows, 1000 * 1000, 9);
    assert_int_equal(vkr_rows_alloc(ctx, 1000, 1000, &r), 0);
    assert_true(r.n_chunks > 10);
    assert_int_equal(vkr_rows_write(ctx, &r, 0, rows, 500), 0);
    assert_int_equal(vkr_rows_write(ctx, &r, 500, rows + 500 * 1000, 500), 0);
    assert_int_equal(vkr_rows_write(ctx, &r, 990, rows, 11), -ERANGE);
    vkr_set_max_binding_override(ctx, 0);
    assert_int_equal(vkr_upload_end(ctx), 0);
    assert_null(ctx->up);
    assert_int_equal(vkr_upload_end(ctx), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(vkr_buf_download(ctx, &b[i], 0, back, sizes[i]), 0);
        assert_memory_equal(back, src[i], sizes[i]);
        vkr_buf_free(ctx, &b[i]);
        free(src[i]);
    }
    for (uint32_t c = 0; c < r.n_chunks; c++) {
        uint64_t n = vkr_rows_count(&r, c) * 1000;
        assert_int_equal(vkr_buf_download(ctx, &r.chunk[c], 0, chunk, n), 0);
        assert_memory_equal(chunk, rows + vkr_rows_first(&r, c) * 1000, n);
    }
    vkr_rows_free(ctx, &r);
    free(rows);
    free(chunk);
    free(back);
}

static void test_validation_error_fails(void **state)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("LADE_VALIDATION", "1", 1);
        char err[512];
        struct vkr_ctx *c2;
        if (vkr_ctx_new(&(struct vkr_ctx_opts){ .device = getenv("LADE_DEVICE") }, &c2, err,
                        sizeof(err)))
            _exit(3);
        struct vkr_kernel kk;
        struct vkr_kernel_desc d = { .name = "add",
                                     .spirv = lade_spv_add,
                                     .spirv_bytes = lade_spv_add_bytes,
                                     .n_bindings = 3,
                                     .push_bytes = 4 };
        if (vkr_kernel_new(c2, &d, &kk))
            _exit(4);
        struct vkr_cmd c;
        if (vkr_cmd_new(c2, 0, &c) || vkr_cmd_begin(c2, &c))
            _exit(5);
        vkCmdBindPipeline(c.cb, VK_PIPELINE_BIND_POINT_COMPUTE, kk.pipeline);
        vkCmdDispatch(c.cb, 1, 1, 1); /* invalid: set 0 never bound */
        vkr_cmd_submit_wait(c2, &c);
        _exit(0);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGABRT);
}

static void test_errors_are_clear(void **state)
{
    struct vkr_buf b;
    assert_int_equal(vkr_buf_new(ctx, 64, VKR_MEM_DEVICE, &b), 0);
    char data[128] = { 0 };
    assert_int_equal(vkr_buf_upload(ctx, &b, 32, data, 64), -ERANGE);
    assert_non_null(strstr(ctx->err, "past the end"));
    vkr_buf_free(ctx, &b);
    assert_int_equal(vkr_buf_new(ctx, ctx->info.max_memory_allocation_size + 1, VKR_MEM_DEVICE, &b),
                     -E2BIG);
    assert_non_null(strstr(ctx->err, "allocation limit"));
    assert_string_equal(vkr_result_name(VK_ERROR_DEVICE_LOST), "VK_ERROR_DEVICE_LOST");
    assert_int_equal(vkr_errno(VK_ERROR_OUT_OF_DEVICE_MEMORY), -ENOMEM);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add),
        cmocka_unit_test(test_matmul_sizes),
        cmocka_unit_test(test_matmul_split),
        cmocka_unit_test(test_matmul_batch_invariant),
        cmocka_unit_test(test_matmul_geometry_invariant),
        cmocka_unit_test(test_matmul_cm),
        cmocka_unit_test(test_draw),
        cmocka_unit_test(test_topk),
        cmocka_unit_test(test_penalty),
        cmocka_unit_test(test_upload_batch),
        cmocka_unit_test(test_validation_error_fails),
        cmocka_unit_test(test_errors_are_clear),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
