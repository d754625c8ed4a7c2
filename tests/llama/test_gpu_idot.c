/* The integer path of the matrix products (matmul_q8.comp, tuning idot)
 * against its CPU arithmetic (llama/q8act.c), for Q8_0, Q4_0, Q4_1, Q5_0,
 * Q5_1, Q4_K, Q5_K and Q6_K (K a multiple of 256 for the K-quants, whose
 * 32-blocks are the sub-blocks of their super-blocks):
 *   - the quantised inputs (both 8-bit planes' words, scale, block sum)
 *     equal the CPU's bit for bit (the kernel's flags 8 writes them out);
 *   - with one block a row, every output equals the CPU's block term bit
 *     for bit (the other lanes add exact zeros, whatever subgroupAdd's
 *     order; a K-quant's row is one super-block, all of whose 32-blocks
 *     but one, a different one for each token, meet zero inputs); with
 *     many, each lane's partial sum is the CPU's
 *     (llm_q8_row_lanes) and the output is their sum in the order the
 *     device's subgroupAdd picks, so it is checked within that order's
 *     error bound: (lanes - 1) 2^-24 sum |partial|;
 *   - OpSDot (matmul_q8_sdot, where the device has it) and the
 *     multiply-add fallback give the same bits;
 *   - batch invariance: a token's outputs are the same bits alone (T = 1,
 *     its row gathered through SEL) and in steps of 2..128 rows, in every
 *     geometry (tiles of 1, 8 and 64 tokens, 1-2 rows a subgroup, 1-4 row
 *     passes, inputs staged whole or in chunks of 3 or 5 blocks).
 * And through the model (kernelc-22m's Q8_0, Q4_0 and Q4_K_M fixtures,
 * tuning idot; Q4_K_M holds Q4_K, Q6_K (V, the head) and Q8_0 (the FFN's
 * down product: K = 1408 is no multiple of 256)): a row's logits the same bits alone and in steps of 4..128 rows;
 * greedy output equal to the f32 CPU reference's (llama/ref.c, same
 * weights) for 64 tokens of the first reference prompt, the logits within
 * 5% of the largest (LADE_FULL_TESTS=1: all six prompts; the 40 code
 * prompts are bench/idot.sh's, docs/kernels.md has the figures). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "decoding/dec.h"
#include "llama/dequant.h"
#include "llama/gguf.h"
#include "llama/gpu_kernels.h"
#include "llama/llm.h"
#include "llama/q8act.h"
#include "llama/ref.h"
#include "llama/repack.h"
#include "shaders/shaders.h"
#include "support_invariance.h"
#include "support_refdata.h"
#include "tools/tuning-env.h"
#include "vk/vkr.h"

#define KDIR LADE_SHARED_DIR "/models/kernelc-22m/"

static uint32_t rng = 11;
static uint32_t rnd(void)
{
    rng = rng * 1664525u + 1013904223u;
    return rng >> 8;
}

static float rndf(void) /* uniform in [-1, 1] */
{
    return (float)((int)(rnd() % 20001) - 10000) / 10000.0f;
}

/* A format: its ggml block's bytes and 32-blocks (8 for the K-quants),
 * where its f16 scales sit. */
struct fmt {
    uint32_t type, bytes, per;
    uint8_t scale_at[2], n_scales;
    const char *name;
};

static const struct fmt fmts[] = {
    { LLM_GGML_Q8_0, 34, 1, { 0 }, 1, "q8_0" },     { LLM_GGML_Q4_0, 18, 1, { 0 }, 1, "q4_0" },
    { LLM_GGML_Q4_1, 20, 1, { 0, 2 }, 2, "q4_1" },  { LLM_GGML_Q5_0, 22, 1, { 0 }, 1, "q5_0" },
    { LLM_GGML_Q5_1, 24, 1, { 0, 2 }, 2, "q5_1" },  { LLM_GGML_Q4_K, 144, 8, { 0, 2 }, 2, "q4_k" },
    { LLM_GGML_Q5_K, 176, 8, { 0, 2 }, 2, "q5_k" }, { LLM_GGML_Q6_K, 210, 8, { 208 }, 1, "q6_k" },
};
#define N_FMTS (sizeof(fmts) / sizeof(fmts[0]))

/* A geometry: lanes, tile, rows a subgroup, passes of a workgroup's rows,
 * blocks staged at once, tokens a pass of the token loop. */
struct geom {
    uint32_t local, tile, rps, turns, qcb, sub;
};

static struct vkr_ctx *ctx;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* rows x cols random weights with plausible f16 scales (ggml layout; the
 * K-quants' 6- and 8-bit sub-block scales random bytes). */
static uint8_t *random_weights(const struct fmt *f, uint32_t rows, uint32_t cols)
{
    size_t n = (size_t)rows * cols / (32 * f->per) * f->bytes;
    uint8_t *w = malloc(n);
    for (size_t i = 0; i < n; i++)
        w[i] = (uint8_t)rnd();
    for (size_t b = 0; b < n / f->bytes; b++)
        for (int s = 0; s < f->n_scales; s++) {
            float v = ldexpf(1.0f + (float)(rnd() % 1024) / 1024.0f, -10 + (int)(rnd() % 6));
            uint16_t h = llm_f32_to_f16((rnd() & 1) ? -v : v);
            memcpy(w + b * f->bytes + f->scale_at[s], &h, 2);
        }
    return w;
}

/* ntok x cols inputs, each block at its own magnitude; some blocks all
 * zero, some below the quantiser's 2^-100 floor, some with one outlier. */
static float *random_inputs(uint32_t ntok, uint32_t cols)
{
    float *x = malloc((size_t)ntok * cols * 4);
    for (size_t b = 0; b < (size_t)ntok * cols / 32; b++) {
        uint32_t kind = rnd() % 16;
        float scale = ldexpf(1.0f, (int)(rnd() % 12) - 8);
        for (int i = 0; i < 32; i++) {
            float v = rndf() * scale;
            if (kind == 0)
                v = 0.0f;
            else if (kind == 1)
                v = v * 0x1p-110f;
            else if (kind == 2 && i == 5)
                v = 40.0f * scale;
            x[b * 32 + i] = v;
        }
    }
    return x;
}

struct run {
    struct vkr_buf w, x, y, sel, dummy;
    uint32_t rows, cols, wbytes;
};

/* rows x cols weights w of format f (ggml layout) in the GPU's layout
 * (repacked where the format is): a new array of *ret_n bytes. */
static uint8_t *gpu_layout(const struct fmt *f, const uint8_t *w, uint32_t rows, uint32_t cols,
                           size_t *ret_n)
{
    size_t rb = (size_t)cols / (32 * f->per) * f->bytes, n = rows * rb;
    uint8_t *gw = malloc(n);
    assert_non_null(gw);
    if (llm_repacked(f->type))
        assert_int_equal(llm_repack_rows(f->type, w, rows, rb, gw), 0);
    else
        memcpy(gw, w, n);
    *ret_n = n;
    return gw;
}

/* The buffers of a run over n bytes of weights gw, already in the GPU's
 * layout. */
static void run_setup_raw(struct run *r, const uint8_t *gw, size_t n, uint32_t rows, uint32_t cols,
                          const float *x, uint32_t nx)
{
    r->rows = rows;
    r->cols = cols;
    assert_int_equal(vkr_buf_new(ctx, (n + 15) & ~(size_t)15, VKR_MEM_DEVICE, &r->w), 0);
    assert_int_equal(vkr_buf_upload(ctx, &r->w, 0, gw, n), 0);
    assert_int_equal(vkr_buf_new(ctx, (size_t)nx * cols * 4, VKR_MEM_DEVICE, &r->x), 0);
    assert_int_equal(vkr_buf_upload(ctx, &r->x, 0, x, (size_t)nx * cols * 4), 0);
    /* room for the products or for flags 8's dump, 18 words a block */
    size_t ybytes = (size_t)nx * (rows > cols / 32 * 18 ? rows : cols / 32 * 18) * 4;
    assert_int_equal(vkr_buf_new(ctx, ybytes, VKR_MEM_DEVICE, &r->y), 0);
    assert_int_equal(vkr_buf_new(ctx, 4 * 128, VKR_MEM_DEVICE, &r->sel), 0);
    assert_int_equal(vkr_buf_new(ctx, 16, VKR_MEM_DEVICE, &r->dummy), 0);
}

static void run_setup(struct run *r, const struct fmt *f, const uint8_t *w, uint32_t rows,
                      uint32_t cols, const float *x, uint32_t nx)
{
    size_t n;
    uint8_t *gw = gpu_layout(f, w, rows, cols, &n);
    run_setup_raw(r, gw, n, rows, cols, x, nx);
    free(gw);
}

static void run_free(struct run *r)
{
    vkr_buf_free(ctx, &r->w);
    vkr_buf_free(ctx, &r->x);
    vkr_buf_free(ctx, &r->y);
    vkr_buf_free(ctx, &r->sel);
    vkr_buf_free(ctx, &r->dummy);
}

static uint32_t rows_wg(const struct geom *g)
{
    return g->local / ctx->info.subgroup_size * g->rps * g->turns;
}

/* matmul_q8 for format f in geometry g; tail: NULL, or weights.glsl's
 * TAIL_ROW, TAIL_TYPE and TAIL_WORD (a two-format stack). */
static void kernel_new_tail(const struct fmt *f, const struct geom *g, bool sdot,
                            const uint32_t *tail, struct vkr_kernel *k)
{
    struct vkr_kernel_desc d = { sdot ? "matmul_q8_sdot" : "matmul_q8",
                                 sdot ? lade_spv_matmul_q8_sdot : lade_spv_matmul_q8,
                                 sdot ? lade_spv_matmul_q8_sdot_bytes : lade_spv_matmul_q8_bytes,
                                 B_MM_N,
                                 sizeof(struct pc_matmul),
                                 tail ? 16 : 12,
                                 { f->type, g->local, g->tile, rows_wg(g), g->rps, 0, 0, 0, 0, 0,
                                   g->sub, g->qcb } };
    if (tail)
        memcpy(&d.spec[13], tail, 3 * 4);
    assert_int_equal(vkr_kernel_new(ctx, &d, k), 0);
}

static void kernel_new(const struct fmt *f, const struct geom *g, bool sdot, struct vkr_kernel *k)
{
    kernel_new_tail(f, g, sdot, NULL, k);
}

/* One dispatch over ntok tokens (flags as matmul_q8.comp's; with 2 the
 * tokens read X rows sel[]); the output, ntok x y_stride floats, into y. */
static void run_once(struct run *r, struct vkr_kernel *k, const struct geom *g, uint32_t ntok,
                     uint32_t flags, const int32_t *sel, uint32_t y_stride, float *y)
{
    if (sel)
        assert_int_equal(vkr_buf_upload(ctx, &r->sel, 0, sel, ntok * 4), 0);
    struct vkr_set_pool pool;
    assert_int_equal(vkr_set_pool_new(ctx, 1, B_MM_N, &pool), 0);
    VkDescriptorSet set;
    struct vkr_binding bd[B_MM_N] = { [B_MM_W] = { &r->w, 0, 0 },
                                      [B_MM_X] = { &r->x, 0, 0 },
                                      [B_MM_Y] = { &r->y, 0, 0 },
                                      [B_MM_SEL] = { &r->sel, 0, 0 } };
    for (int b = B_MM_CACHE; b < B_MM_N; b++)
        bd[b] = (struct vkr_binding){ &r->dummy, 0, 0 }; /* unused */
    assert_int_equal(vkr_set_new(ctx, &pool, k, bd, B_MM_N, &set), 0);
    struct vkr_cmd c;
    assert_int_equal(vkr_cmd_new(ctx, 0, &c), 0);
    assert_int_equal(vkr_cmd_begin(ctx, &c), 0);
    struct pc_matmul p = { .ncols = r->cols,
                           .nrows = r->rows,
                           .ntok = ntok,
                           .x_stride = r->cols,
                           .y_stride = y_stride,
                           .flags = flags };
    uint32_t wgs = (r->rows + rows_wg(g) - 1) / rows_wg(g);
    vkr_cmd_dispatch(&c, k, set, &p, (ntok + g->tile - 1) / g->tile, wgs, 1);
    assert_int_equal(vkr_cmd_submit_wait(ctx, &c), 0);
    assert_int_equal(vkr_buf_download(ctx, &r->y, 0, y, (size_t)ntok * y_stride * 4), 0);
    vkr_cmd_free(ctx, &c);
    vkr_set_pool_free(ctx, &pool);
}

/* 32 blocks staged: 8 tokens of 72 bytes a block (two planes, d, s) fit
 * 32 KiB of workgroup memory with the epilogue's sums beside them. */
static const struct geom g_decode = { 64, 8, 1, 4, 32, 8 };

/* The kernel variants to run: the fallback always, OpSDot where the
 * device has it. */
static int n_variants(void)
{
    return ctx->has_idot ? 2 : 1;
}

static int setup(void **state)
{
    (void)state;
    char err[512];
    if (vkr_ctx_new(&(struct vkr_ctx_opts){ .device = getenv("LADE_DEVICE") }, &ctx, err,
                    sizeof(err))) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    fprintf(stderr, "device '%s': %u-lane subgroups, integer dot product %s\n", ctx->info.name,
            ctx->info.subgroup_size,
            ctx->has_idot ? "yes (OpSDot and the fallback)" : "no (the fallback only)");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    vkr_ctx_free(ctx);
    assert_int_equal(vkr_validation_messages(), 0);
    return 0;
}

/* The quantised inputs, bit for bit, whole and in chunks of 3 blocks. */
static void test_quantised_inputs(void **state)
{
    (void)state;
    const uint32_t cols = 320, ntok = 11, nb = cols / 32, ys = nb * 18;
    float *x = random_inputs(ntok, cols);
    uint8_t *w = random_weights(&fmts[0], 4, cols);
    struct run r;
    run_setup(&r, &fmts[0], w, 4, cols, x, ntok);
    uint32_t *y = malloc((size_t)ntok * ys * 4);
    const struct geom gs[2] = { g_decode, { 64, 8, 1, 1, 3, 0 } };
    for (int v = 0; v < n_variants(); v++)
        for (int gi = 0; gi < 2; gi++) {
            struct vkr_kernel k;
            kernel_new(&fmts[0], &gs[gi], v == 1, &k);
            run_once(&r, &k, &gs[gi], ntok, 8, NULL, ys, (float *)y);
            for (uint32_t t = 0; t < ntok; t++)
                for (uint32_t b = 0; b < nb; b++) {
                    struct llm_q8_block q;
                    llm_q8_quantize(x + (size_t)t * cols + 32 * b, &q);
                    const uint32_t *g = y + (size_t)t * ys + 18 * b;
                    uint32_t d;
                    memcpy(&d, &q.d, 4);
                    bool p1 = !memcmp(g, q.q1, 32), p2 = !memcmp(g + 8, q.q2, 32);
                    if (!p1 || !p2 || g[16] != d || (int32_t)g[17] != q.s)
                        fail_msg("token %u block %u: GPU d %08x s %d, CPU d %08x s %d%s%s", t, b,
                                 g[16], (int32_t)g[17], d, q.s, p1 ? "" : ", high planes differ",
                                 p2 ? "" : ", low planes differ");
                }
            vkr_kernel_free(ctx, &k);
        }
    fprintf(stderr, "quantised inputs: %u tokens x %u blocks equal to the CPU's, %d variant(s)\n",
            ntok, nb, n_variants());
    run_free(&r);
    free(y);
    free(w);
    free(x);
}

/* The products against llama/q8act.c: one block a row bit for bit; many
 * within the bound of subgroupAdd's order, each lane's chain being the
 * CPU's. A K-quant's "one block" is its row's one super-block with zero
 * inputs but in 32-block t % 8 for token t, so that 9 tokens try every
 * sub-block. */
static void test_products(void **state)
{
    (void)state;
    const uint32_t rows = 19, ntok = 9, lanes = ctx->info.subgroup_size;
    for (size_t fi = 0; fi < N_FMTS; fi++) {
        const struct fmt *f = &fmts[fi];
        const uint32_t per = f->per, many = (3 * lanes + 5 + per - 1) / per * per;
        const uint32_t colss[2] = { 32 * per, 32 * many };
        for (int ci = 0; ci < 2; ci++) {
            uint32_t cols = colss[ci], nb = cols / 32, one = ci == 0;
            size_t rb = (size_t)nb / per * f->bytes;
            float *x = random_inputs(ntok, cols);
            for (uint32_t t = 0; one && t < ntok; t++)
                for (uint32_t b = 0; b < nb; b++)
                    if (b != t % per)
                        memset(x + (size_t)t * cols + 32 * b, 0, 32 * 4);
            uint8_t *w = random_weights(f, rows, cols);
            struct run r;
            run_setup(&r, f, w, rows, cols, x, ntok);
            struct llm_q8_block *q = malloc((size_t)ntok * nb * sizeof(*q));
            for (size_t b = 0; b < (size_t)ntok * nb; b++)
                llm_q8_quantize(x + 32 * b, &q[b]);
            float *y[2] = { malloc((size_t)ntok * rows * 4), malloc((size_t)ntok * rows * 4) };
            float *part = malloc(lanes * 4);
            double worst = 0;
            for (int v = 0; v < n_variants(); v++) {
                struct vkr_kernel k;
                kernel_new(f, &g_decode, v == 1, &k);
                run_once(&r, &k, &g_decode, ntok, 0, NULL, rows, y[v]);
                vkr_kernel_free(ctx, &k);
                for (uint32_t t = 0; t < ntok; t++)
                    for (uint32_t row = 0; row < rows; row++) {
                        float g = y[v][t * rows + row];
                        const uint8_t *wr = w + row * rb;
                        if (one) {
                            uint32_t sub = t % per;
                            float want = llm_q8_block_term(f->type, wr, sub, &q[t * nb + sub]);
                            if (g != want)
                                fail_msg("%s t %u row %u: GPU %.9g, CPU term %.9g", f->name, t, row,
                                         g, want);
                            continue;
                        }
                        llm_q8_row_lanes(f->type, wr, &q[t * nb], nb, lanes, part);
                        double sum = 0, mag = 0;
                        for (uint32_t l = 0; l < lanes; l++) {
                            sum += part[l];
                            mag += fabs(part[l]);
                        }
                        double bound = (lanes - 1) * 0x1p-24 * mag;
                        if (fabs(g - sum) > bound)
                            fail_msg("%s t %u row %u: GPU %.9g, lanes' sum %.9g, bound %.3g",
                                     f->name, t, row, g, sum, bound);
                        if (mag > 0 && fabs(g - sum) / mag > worst)
                            worst = fabs(g - sum) / mag;
                    }
            }
            if (n_variants() == 2 && memcmp(y[0], y[1], (size_t)ntok * rows * 4))
                fail_msg("%s cols %u: OpSDot and the fallback differ", f->name, cols);
            if (!one)
                fprintf(stderr,
                        "%s: %u blocks a row: lanes' chains as the CPU's, their sum within "
                        "%.2g of sum |partial| (bound %.2g)\n",
                        f->name, nb, worst, (lanes - 1) * 0x1p-24);
            run_free(&r);
            free(part);
            free(y[0]);
            free(y[1]);
            free(q);
            free(w);
            free(x);
        }
    }
}

/* A stack of two formats (weights.glsl's tail; Q4_K_M's Q and K in Q4_K
 * over V in Q6_K, one product): every row the same bits as its format's
 * kernel alone gives it, both variants, for pairs of plain, repacked and
 * K-quant formats; the head ends inside a workgroup's rows. */
static void test_two_formats(void **state)
{
    (void)state;
    static const int pairs[][2] = { { 5, 7 }, { 0, 1 }, { 7, 4 }, { 1, 6 } };
    const uint32_t cols = 512, hr = 12, tr = 9, rows = hr + tr, ntok = 5;
    float *x = random_inputs(ntok, cols);
    float *y = malloc((size_t)ntok * rows * 4), *yh = malloc((size_t)ntok * hr * 4),
          *yt = malloc((size_t)ntok * tr * 4);
    assert_true(y && yh && yt);
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        const struct fmt *fh = &fmts[pairs[i][0]], *ft = &fmts[pairs[i][1]];
        uint8_t *wh = random_weights(fh, hr, cols), *wt = random_weights(ft, tr, cols);
        size_t nh, nt;
        uint8_t *gh = gpu_layout(fh, wh, hr, cols, &nh), *gt = gpu_layout(ft, wt, tr, cols, &nt);
        assert_int_equal(nh % 16, 0);
        uint8_t *both = malloc(nh + nt);
        assert_non_null(both);
        memcpy(both, gh, nh);
        memcpy(both + nh, gt, nt);
        const uint32_t tail[3] = { hr, ft->type, (uint32_t)(nh / 16) };
        for (int v = 0; v < n_variants(); v++) {
            struct run r;
            struct vkr_kernel k;
            run_setup_raw(&r, gh, nh, hr, cols, x, ntok);
            kernel_new(fh, &g_decode, v == 1, &k);
            run_once(&r, &k, &g_decode, ntok, 0, NULL, hr, yh);
            vkr_kernel_free(ctx, &k);
            run_free(&r);
            run_setup_raw(&r, gt, nt, tr, cols, x, ntok);
            kernel_new(ft, &g_decode, v == 1, &k);
            run_once(&r, &k, &g_decode, ntok, 0, NULL, tr, yt);
            vkr_kernel_free(ctx, &k);
            run_free(&r);
            run_setup_raw(&r, both, nh + nt, rows, cols, x, ntok);
            kernel_new_tail(fh, &g_decode, v == 1, tail, &k);
            run_once(&r, &k, &g_decode, ntok, 0, NULL, rows, y);
            vkr_kernel_free(ctx, &k);
            run_free(&r);
            for (uint32_t t = 0; t < ntok; t++)
                for (uint32_t row = 0; row < rows; row++) {
                    float want = row < hr ? yh[t * hr + row] : yt[t * tr + row - hr];
                    if (memcmp(&y[t * rows + row], &want, 4))
                        fail_msg("%s over %s: y[%u][%u] = %.9g, alone %.9g", fh->name, ft->name, t,
                                 row, y[t * rows + row], want);
                }
        }
        free(wh);
        free(wt);
        free(gh);
        free(gt);
        free(both);
    }
    free(x);
    free(y);
    free(yh);
    free(yt);
}

/* A token alone (T = 1, gathered) and in steps of 2..128 rows, every
 * geometry, both variants: the same bits. Rows of 11 blocks, 16 for the
 * K-quants (two super-blocks, which the chunks of 3 and 5 split). */
static void test_batch_invariance(void **state)
{
    (void)state;
    const uint32_t rows = 37, NX = 128;
    static const uint32_t Ts[] = { 2, 3, 8, 9, 31, 64, 65, 128 };
    static const int32_t alone[] = { 0, 1, 9, 63, 64, 100, 127 };
    /* (A 64-token tile costs lavapipe 15-30 s to compile per format, cold:
     * one here, chunked; the model tests run the default wide geometry.) */
    const struct geom gs[] = {
        { 64, 1, 1, 1, 64, 0 }, { 64, 1, 1, 2, 64, 0 }, g_decode,
        { 64, 8, 2, 1, 3, 0 },  { 128, 8, 1, 1, 5, 8 }, { 64, 64, 2, 1, 3, 8 },
    };
    const size_t ng = sizeof(gs) / sizeof(gs[0]);
    float *ref = malloc((size_t)NX * rows * 4), *y = malloc((size_t)NX * rows * 4);
    for (size_t fi = 0; fi < N_FMTS; fi++) {
        const struct fmt *f = &fmts[fi];
        const uint32_t cols = 32 * ((11 + f->per - 1) / f->per * f->per);
        float *x = random_inputs(NX, cols);
        uint8_t *w = random_weights(f, rows, cols);
        struct run r;
        run_setup(&r, f, w, rows, cols, x, NX);
        bool have_ref = false;
        unsigned runs = 0;
        for (int v = 0; v < n_variants(); v++)
            for (size_t gi = 0; gi < ng; gi++) {
                const struct geom *g = &gs[gi];
                /* the fallback in two geometries, OpSDot in all */
                if (v == 0 && n_variants() == 2 && gi % 3)
                    continue;
                struct vkr_kernel k;
                double t0 = now();
                kernel_new(f, g, v == 1, &k);
                double t1 = now();
                if (!have_ref) {
                    run_once(&r, &k, g, NX, 0, NULL, rows, ref);
                    have_ref = true;
                }
                for (size_t i = 0; i < sizeof(alone) / sizeof(alone[0]); i++) {
                    run_once(&r, &k, g, 1, 2, &alone[i], rows, y);
                    runs++;
                    if (memcmp(y, ref + (size_t)alone[i] * rows, rows * 4))
                        fail_msg("%s geometry %zu variant %d: token %d alone differs from T=128",
                                 f->name, gi, v, alone[i]);
                }
                for (size_t i = 0; i < sizeof(Ts) / sizeof(Ts[0]); i++) {
                    run_once(&r, &k, g, Ts[i], 0, NULL, rows, y);
                    runs++;
                    if (memcmp(y, ref, (size_t)Ts[i] * rows * 4))
                        fail_msg("%s geometry %zu variant %d: T=%u differs from T=128", f->name, gi,
                                 v, Ts[i]);
                }
                vkr_kernel_free(ctx, &k);
                if (getenv("LADE_IDOT_TIMES"))
                    fprintf(stderr, "  geometry %zu variant %d: build %.1f s, runs %.1f s\n", gi, v,
                            t1 - t0, now() - t1);
            }
        fprintf(stderr, "%s: %u runs (T = 1..128, %zu geometries) the same bits\n", f->name, runs,
                ng);
        run_free(&r);
        free(w);
        free(x);
    }
    free(ref);
    free(y);
}

static struct llm_model *load_idot(const char *path, uint32_t max_rows)
{
    char err[512];
    struct llm_model *m;
    struct llm_model_opts o = {
        .path = path, .device = getenv("LADE_DEVICE"), .n_ctx = 1024, .max_rows = max_rows
    };
    if (lade_tuning_from_env(&o.tuning, err, sizeof(err)) ||
        llm_tuning_set(&o.tuning, "idot", "1", err, sizeof(err)) ||
        llm_model_load(&o, &m, err, sizeof(err)))
        fail_msg("%s", err);
    return m;
}

/* A row's logits: the same bits alone and in steps of 4..128 rows. */
static void model_invariance(const char *file)
{
    char path[512];
    snprintf(path, sizeof(path), KDIR "%s", file);
    if (access(path, R_OK) != 0) {
        fprintf(stderr, "skipping: %s not found\n", path);
        skip();
    }
    struct llm_model *m = load_idot(path, 128);
    struct dec_model dm;
    llm_model_dec(m, &dm);
    char label[600];
    snprintf(label, sizeof(label), "%s (idot)", file);
    invariance_check_steps(&dm, 128, rnd, label);
    fprintf(stderr, "%s (%s): a row's logits the same bits in steps of 1..128 rows\n", file,
            llm_model_desc(m));
    llm_model_free(m);
}

static void test_model_invariance(void **state)
{
    (void)state;
    model_invariance("kernelc-22m-q8_0.gguf");
    model_invariance("kernelc-22m-q4_0.gguf");
    model_invariance("kernelc-22m-q4_k_m.gguf");
}

/* Greedy for 64 tokens against the f32 CPU reference on the same weights,
 * both fed the reference's tokens: the GPU's argmax equals the
 * reference's token at every position, the logits within 5% of the
 * largest. */
static void model_accuracy(const char *file)
{
    char path[512];
    snprintf(path, sizeof(path), KDIR "%s", file);
    if (access(path, R_OK) != 0) {
        fprintf(stderr, "skipping: %s not found\n", path);
        skip();
    }
    const char *full = getenv("LADE_FULL_TESTS");
    size_t limit = full && strcmp(full, "1") == 0 ? 1000 : 1;
    struct refdata *rd = refdata_load_or_skip(KDIR "reference.jsonl");
    struct llm_model *m = load_idot(path, 0);
    char err[512];
    struct llm_ref *ref;
    assert_int_equal(llm_ref_new(llm_model_gguf(m), 1024, &ref, err, sizeof(err)), 0);
    struct dec_model g, c;
    llm_model_dec(m, &g);
    llm_ref_dec_model(ref, &c);
    uint32_t V = g.n_vocab;
    float *lg = malloc((size_t)V * 4), *lc = malloc((size_t)V * 4);
    double worst = 0;
    size_t n = 0;
    for (size_t i = 0; i < rd->n && i < limit; i++, n++) {
        const struct refdata_rec *r = &rd->recs[i];
        int32_t tg, tc;
        assert_int_equal(g.rewind(g.ctx, 0), 0);
        assert_int_equal(c.rewind(c.ctx, 0), 0);
        assert_int_equal(g.prefill(g.ctx, r->prompt_tokens, r->n_prompt, &tg, lg), 0);
        assert_int_equal(c.prefill(c.ctx, r->prompt_tokens, r->n_prompt, &tc, lc), 0);
        for (int k = 0; k < 64; k++) {
            double amax = 0, dmax = 0;
            for (uint32_t v = 0; v < V; v++) {
                amax = fmax(amax, fabs(lc[v]));
                dmax = fmax(dmax, fabs((double)lg[v] - lc[v]));
            }
            worst = fmax(worst, dmax / amax);
            if (tg != tc)
                fail_msg("%s %s token %d: GPU (idot) %d, CPU reference %d", file, r->id, k, tg, tc);
            if (dmax > 0.05 * amax)
                fail_msg("%s %s token %d: logits off by %.4g, largest %.4g", file, r->id, k, dmax,
                         amax);
            struct dec_row row = { tc, -1, DEC_WANT_LOGITS, 0 };
            uint32_t keep = 0;
            assert_int_equal(g.step(g.ctx, &row, 1, &tg, lg), 0);
            assert_int_equal(g.commit(g.ctx, &keep, 1), 0);
            assert_int_equal(c.step(c.ctx, &row, 1, &tc, lc), 0);
            assert_int_equal(c.commit(c.ctx, &keep, 1), 0);
        }
    }
    fprintf(stderr,
            "%s (idot): greedy equals the f32 CPU reference for %zu prompt(s) x 64 tokens; "
            "logits within %.3g of the largest\n",
            file, n, worst);
    free(lg);
    free(lc);
    llm_ref_free(ref);
    llm_model_free(m);
    refdata_free(rd);
}

static void test_model_accuracy(void **state)
{
    (void)state;
    model_accuracy("kernelc-22m-q8_0.gguf");
    model_accuracy("kernelc-22m-q4_0.gguf");
    model_accuracy("kernelc-22m-q4_k_m.gguf");
}

/* An argument picks tests by name (cmocka's pattern, e.g. "*model*"). */
int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quantised_inputs), cmocka_unit_test(test_products),
        cmocka_unit_test(test_two_formats),      cmocka_unit_test(test_batch_invariance),
        cmocka_unit_test(test_model_invariance), cmocka_unit_test(test_model_accuracy),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
