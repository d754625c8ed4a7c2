/* Quantised weights on the GPU: the matmul kernel against the CPU
 * dequantiser (itself bit-exact against ggml's) for every format at ragged
 * shapes, and stacks of two formats row for row as each alone; greedy decoding of each quantised fixture equal to the CPU
 * reference forward on the same weights; batch invariance per format. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "llama/dequant.h"
#include "llama/gpu_kernels.h"
#include "llama/llm.h"
#include "llama/repack.h"
#include "shaders/shaders.h"
#include "support_invariance.h"
#include "support_refdata.h"
#include "tools/tuning-env.h"
#include "vk/vkr.h"

#define KDIR LADE_SHARED_DIR "/models/kernelc-22m/"

/* The Vulkan context on LADE_DEVICE (or the best device). */
static struct vkr_ctx *ctx_new(void)
{
    char err[512];
    struct vkr_ctx *ctx;
    if (vkr_ctx_new(&(struct vkr_ctx_opts){ .device = getenv("LADE_DEVICE") }, &ctx, err,
                    sizeof(err)))
        fail_msg("%s", err);
    return ctx;
}

static uint32_t rng = 7;
static uint32_t rnd(void)
{
    rng = rng * 1664525u + 1013904223u;
    return rng >> 8;
}

/* f16 bits of a random value in +-[2^-10, 2^-4]: a plausible block scale. */
static uint16_t rnd_scale(void)
{
    float v = ldexpf(1.0f + (float)(rnd() % 1024) / 1024.0f, -10 + (int)(rnd() % 6));
    return llm_f32_to_f16((rnd() & 1) ? -v : v);
}

struct fmt {
    uint32_t type, block, bytes;
    uint8_t scale_at[2], n_scales;
};

static const struct fmt fmts[] = {
    { LLM_GGML_Q8_0, 32, 34, { 0 }, 1 },      { LLM_GGML_Q4_0, 32, 18, { 0 }, 1 },
    { LLM_GGML_Q4_1, 32, 20, { 0, 2 }, 2 },   { LLM_GGML_Q5_0, 32, 22, { 0 }, 1 },
    { LLM_GGML_Q5_1, 32, 24, { 0, 2 }, 2 },   { LLM_GGML_Q4_K, 256, 144, { 0, 2 }, 2 },
    { LLM_GGML_Q5_K, 256, 176, { 0, 2 }, 2 }, { LLM_GGML_Q6_K, 256, 210, { 208 }, 1 },
    { LLM_GGML_BF16, 2, 4, { 0 }, 0 },
};

/* rows x cols random weights of format f with plausible scales, dequantised
 * into deq by the CPU, then put in the GPU layout (llama/repack.h). */
static uint8_t *random_weights(const struct fmt *f, uint32_t rows, uint32_t cols, float *deq)
{
    size_t rb = cols / f->block * f->bytes;
    uint8_t *w = malloc(rows * rb);
    for (size_t i = 0; i < rows * rb; i++)
        w[i] = (uint8_t)rnd();
    for (uint32_t b = 0; b < rows * cols / f->block; b++)
        for (int s = 0; s < f->n_scales; s++) {
            uint16_t h = rnd_scale();
            memcpy(w + (size_t)b * f->bytes + f->scale_at[s], &h, 2);
        }
    if (f->type ==
        LLM_GGML_BF16) /* random bits are fine but for NaN/Inf: clear the top exponent bit */
        for (size_t i = 1; i < rows * rb; i += 2)
            w[i] &= 0xbf;
    for (uint32_t r = 0; r < rows; r++)
        assert_int_equal(llm_dequant_row(f->type, w + r * rb, deq + (size_t)r * cols, cols), 0);
    if (llm_repacked(f->type)) {
        uint8_t *rp = malloc(rows * rb);
        assert_int_equal(llm_repack_rows(f->type, w, rows, rb, rp), 0);
        memcpy(w, rp, rows * rb);
        free(rp);
    }
    return w;
}

/* y = W x on matmul.comp with the given specialization (16 constants:
 * weights.glsl's tail among them), for ntok tokens of cols inputs; the
 * workgroups cover `per` rows. */
static void run_matmul(struct vkr_ctx *ctx, const uint32_t spec[16], const uint8_t *w,
                       size_t wbytes, uint32_t rows, uint32_t cols, uint32_t ntok, uint32_t per,
                       const float *x, float *y)
{
    struct vkr_kernel k;
    struct vkr_kernel_desc d = { "matmul", lade_spv_matmul,          lade_spv_matmul_bytes,
                                 B_MM_N,   sizeof(struct pc_matmul), 16,
                                 { 0 } };
    memcpy(d.spec, spec, 16 * 4);
    assert_int_equal(vkr_kernel_new(ctx, &d, &k), 0);
    struct vkr_buf bw, bx, by, bs;
    assert_int_equal(vkr_buf_new(ctx, (wbytes + 15) & ~(size_t)15, VKR_MEM_DEVICE, &bw), 0);
    assert_int_equal(vkr_buf_new(ctx, (size_t)ntok * cols * 4, VKR_MEM_DEVICE, &bx), 0);
    assert_int_equal(vkr_buf_new(ctx, (size_t)ntok * rows * 4, VKR_MEM_DEVICE, &by), 0);
    assert_int_equal(vkr_buf_new(ctx, 4, VKR_MEM_DEVICE, &bs), 0);
    assert_int_equal(vkr_buf_upload(ctx, &bw, 0, w, wbytes), 0);
    assert_int_equal(vkr_buf_upload(ctx, &bx, 0, x, (size_t)ntok * cols * 4), 0);
    struct vkr_set_pool pool;
    assert_int_equal(vkr_set_pool_new(ctx, 1, B_MM_N, &pool), 0);
    VkDescriptorSet set;
    struct vkr_binding bd[B_MM_N];
    for (int b = 0; b < B_MM_N; b++)
        bd[b] = (struct vkr_binding){ &bs, 0, 0 };
    bd[B_MM_W] = (struct vkr_binding){ &bw, 0, 0 };
    bd[B_MM_X] = (struct vkr_binding){ &bx, 0, 0 };
    bd[B_MM_Y] = (struct vkr_binding){ &by, 0, 0 };
    assert_int_equal(vkr_set_new(ctx, &pool, &k, bd, B_MM_N, &set), 0);
    struct vkr_cmd c;
    assert_int_equal(vkr_cmd_new(ctx, 0, &c), 0);
    assert_int_equal(vkr_cmd_begin(ctx, &c), 0);
    struct pc_matmul p = {
        .ncols = cols, .nrows = rows, .ntok = ntok, .x_stride = cols, .y_stride = rows
    };
    vkr_cmd_dispatch(&c, &k, set, &p, (ntok + 7) / 8, (rows + per - 1) / per, 1);
    assert_int_equal(vkr_cmd_submit_wait(ctx, &c), 0);
    assert_int_equal(vkr_buf_download(ctx, &by, 0, y, (size_t)ntok * rows * 4), 0);
    vkr_cmd_free(ctx, &c);
    vkr_set_pool_free(ctx, &pool);
    vkr_kernel_free(ctx, &k);
    vkr_buf_free(ctx, &bw);
    vkr_buf_free(ctx, &bx);
    vkr_buf_free(ctx, &by);
    vkr_buf_free(ctx, &bs);
}

static void check_format(struct vkr_ctx *ctx, const struct fmt *f, uint32_t rows, uint32_t cols,
                         uint32_t ntok)
{
    size_t rb = cols / f->block * f->bytes;
    float *deq = malloc((size_t)rows * cols * 4), *x = malloc((size_t)ntok * cols * 4),
          *y = malloc((size_t)ntok * rows * 4);
    uint8_t *w = random_weights(f, rows, cols, deq);
    for (size_t i = 0; i < (size_t)ntok * cols; i++)
        x[i] = (float)((int)(rnd() % 2001) - 1000) / 1000.0f;
    /* Alternate geometries (matmul.comp: rows a subgroup reduces together,
     * runs in flight a lane) so that both the one-at-a-time and the
     * unrolled paths decode every format. */
    uint32_t rps = 1 + (rows + cols) % 3, unroll = 1 + (rows + ntok) % 3;
    uint32_t sg = ctx->info.subgroup_size, per = 64 / sg * rps;
    const uint32_t spec[16] = { f->type, 64, 8, per, rps, unroll, 1 };
    run_matmul(ctx, spec, w, rows * rb, rows, cols, ntok, per, x, y);
    for (uint32_t t = 0; t < ntok; t++)
        for (uint32_t r = 0; r < rows; r++) {
            double ref = 0, mag = 0;
            for (uint32_t i = 0; i < cols; i++) {
                double v = (double)deq[(size_t)r * cols + i] * x[(size_t)t * cols + i];
                ref += v;
                mag += fabs(v);
            }
            /* fp32 sums of <= 1536 products: error well under 1e-5 of the
             * magnitude sum; a wrong nibble, scale or sign is far above. */
            if (fabs(y[(size_t)t * rows + r] - ref) > 1e-5 * mag + 1e-7)
                fail_msg("%s rows %u cols %u T %u: y[%u][%u] = %.8g, want %.8g",
                         llm_ggml_type_name(f->type), rows, cols, ntok, t, r,
                         y[(size_t)t * rows + r], ref);
        }
    free(w);
    free(deq);
    free(x);
    free(y);
}

static void test_matmul_formats(void **state)
{
    struct vkr_ctx *ctx = ctx_new();
    const uint32_t cols[] = { 256, 512, 1536 }, rows[] = { 1, 7, 33, 65 }, toks[] = { 1, 5, 9 };
    for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++)
        for (int a = 0; a < 3; a++)
            for (int b = 0; b < 4; b++)
                check_format(ctx, &fmts[i], rows[b], cols[a], toks[(a + b) % 3]);
    vkr_ctx_free(ctx);
}

/* A stack in two formats (weights.glsl's tail: Q4_K_M's Q and K in Q4_K
 * over V in Q6_K, one product): every row the same bits as the kernel of
 * its own format alone gives it, for pairs of plain and repacked formats,
 * a head that ends inside a workgroup's rows, 1 to 3 rows a subgroup. */
static void test_matmul_two_formats(void **state)
{
    (void)state;
    struct vkr_ctx *ctx = ctx_new();
    static const int pairs[][2] = { { 5, 7 }, { 0, 7 }, { 5, 0 }, { 7, 1 }, { 6, 2 } };
    const uint32_t cols = 512, ntok = 5, hr = 12, tr = 9, rows = hr + tr;
    uint32_t sg = ctx->info.subgroup_size;
    float *x = malloc((size_t)ntok * cols * 4), *deq = malloc((size_t)rows * cols * 4);
    float *y = malloc((size_t)ntok * rows * 4), *yh = malloc((size_t)ntok * hr * 4),
          *yt = malloc((size_t)ntok * tr * 4);
    assert_true(x && deq && y && yh && yt);
    for (size_t i = 0; i < (size_t)ntok * cols; i++)
        x[i] = (float)((int)(rnd() % 2001) - 1000) / 1000.0f;
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        const struct fmt *fh = &fmts[pairs[i][0]], *ft = &fmts[pairs[i][1]];
        size_t hb = (size_t)hr * (cols / fh->block * fh->bytes);
        size_t tb = (size_t)tr * (cols / ft->block * ft->bytes);
        assert_int_equal(hb % 16, 0);
        uint8_t *wh = random_weights(fh, hr, cols, deq), *wt = random_weights(ft, tr, cols, deq);
        uint8_t *both = malloc(hb + tb);
        assert_non_null(both);
        memcpy(both, wh, hb);
        memcpy(both + hb, wt, tb);
        uint32_t rps = 1 + (uint32_t)i % 3, per = 64 / sg * rps;
        uint32_t spec[16] = { fh->type, 64, 8, per, rps, 1, 1 };
        run_matmul(ctx, spec, wh, hb, hr, cols, ntok, per, x, yh);
        spec[0] = ft->type;
        run_matmul(ctx, spec, wt, tb, tr, cols, ntok, per, x, yt);
        spec[0] = fh->type;
        spec[13] = hr;
        spec[14] = ft->type;
        spec[15] = (uint32_t)(hb / 16);
        run_matmul(ctx, spec, both, hb + tb, rows, cols, ntok, per, x, y);
        for (uint32_t t = 0; t < ntok; t++)
            for (uint32_t r = 0; r < rows; r++) {
                float want = r < hr ? yh[t * hr + r] : yt[t * tr + r - hr];
                if (memcmp(&y[t * rows + r], &want, 4))
                    fail_msg("%s over %s: y[%u][%u] = %.9g, alone %.9g",
                             llm_ggml_type_name(fh->type), llm_ggml_type_name(ft->type), t, r,
                             y[t * rows + r], want);
            }
        free(wh);
        free(wt);
        free(both);
    }
    free(x);
    free(deq);
    free(y);
    free(yh);
    free(yt);
    vkr_ctx_free(ctx);
}

/* The embedding lookup (embed.comp, the pair decoder of weights.glsl) of
 * every format, in the GPU layout, gives exactly the CPU dequantiser's
 * values (bit for bit: the decoders follow llama/dequant.c's arithmetic),
 * and with norm_out each value times the first norm's weight, one rounded
 * multiply (the folded norm's input, matmul.comp MM_NORM). */
static void test_embed_formats(void **state)
{
    (void)state;
    struct vkr_ctx *ctx = ctx_new();
    const uint32_t rows = 6, cols = 512, ntok = 4;
    const int32_t tok[4] = { 5, 0, 3, 5 };
    float *nw = malloc(cols * 4);
    assert_non_null(nw);
    for (uint32_t k = 0; k < cols; k++)
        nw[k] = 0.25f + (float)((k * 2654435761u) % 1000) / 512.0f;
    for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
        const struct fmt *f = &fmts[i];
        size_t rb = cols / f->block * f->bytes, xb = (size_t)ntok * cols * 4;
        float *deq = malloc((size_t)rows * cols * 4), *x = malloc(xb), *xn = malloc(xb);
        assert_true(deq && x && xn);
        uint8_t *w = random_weights(f, rows, cols, deq);
        struct vkr_kernel k;
        struct vkr_kernel_desc d = { "embed",    lade_spv_embed,          lade_spv_embed_bytes,
                                     B_EMBED_N,  sizeof(struct pc_embed), 1,
                                     { f->type } };
        assert_int_equal(vkr_kernel_new(ctx, &d, &k), 0);
        struct vkr_buf bw, bt, bx, bnw, bxn;
        assert_int_equal(vkr_buf_new(ctx, (rows * rb + 15) & ~15u, VKR_MEM_DEVICE, &bw), 0);
        assert_int_equal(vkr_buf_new(ctx, sizeof(tok), VKR_MEM_DEVICE, &bt), 0);
        assert_int_equal(vkr_buf_new(ctx, xb, VKR_MEM_DEVICE, &bx), 0);
        assert_int_equal(vkr_buf_new(ctx, cols * 4, VKR_MEM_DEVICE, &bnw), 0);
        assert_int_equal(vkr_buf_new(ctx, xb, VKR_MEM_DEVICE, &bxn), 0);
        assert_int_equal(vkr_buf_upload(ctx, &bw, 0, w, rows * rb), 0);
        assert_int_equal(vkr_buf_upload(ctx, &bt, 0, tok, sizeof(tok)), 0);
        assert_int_equal(vkr_buf_upload(ctx, &bnw, 0, nw, cols * 4), 0);
        struct vkr_set_pool pool;
        assert_int_equal(vkr_set_pool_new(ctx, 1, B_EMBED_N, &pool), 0);
        VkDescriptorSet set;
        struct vkr_binding bd[B_EMBED_N] = {
            [B_EMBED_W] = { &bw, 0, 0 },   [B_EMBED_TOK] = { &bt, 0, 0 },
            [B_EMBED_X] = { &bx, 0, 0 },   [B_EMBED_NW] = { &bnw, 0, 0 },
            [B_EMBED_XN] = { &bxn, 0, 0 },
        };
        assert_int_equal(vkr_set_new(ctx, &pool, &k, bd, B_EMBED_N, &set), 0);
        struct vkr_cmd c;
        assert_int_equal(vkr_cmd_new(ctx, 0, &c), 0);
        assert_int_equal(vkr_cmd_begin(ctx, &c), 0);
        struct pc_embed p = { cols, ntok, 0, rows, 1 };
        vkr_cmd_dispatch(&c, &k, set, &p, (cols / 2 + 63) / 64, ntok, 1);
        assert_int_equal(vkr_cmd_submit_wait(ctx, &c), 0);
        assert_int_equal(vkr_buf_download(ctx, &bx, 0, x, xb), 0);
        assert_int_equal(vkr_buf_download(ctx, &bxn, 0, xn, xb), 0);
        for (uint32_t t = 0; t < ntok; t++) {
            if (memcmp(x + (size_t)t * cols, deq + (size_t)tok[t] * cols, cols * 4))
                fail_msg("type %u: embedding of token %d differs from the CPU dequantiser", f->type,
                         tok[t]);
            for (uint32_t j = 0; j < cols; j++) {
                float want = deq[(size_t)tok[t] * cols + j] * nw[j];
                if (memcmp(&xn[(size_t)t * cols + j], &want, 4))
                    fail_msg("type %u: token %d's x * norm weight [%u] is %.9g, want %.9g", f->type,
                             tok[t], j, xn[(size_t)t * cols + j], want);
            }
        }
        vkr_cmd_free(ctx, &c);
        vkr_set_pool_free(ctx, &pool);
        vkr_kernel_free(ctx, &k);
        vkr_buf_free(ctx, &bw);
        vkr_buf_free(ctx, &bt);
        vkr_buf_free(ctx, &bx);
        vkr_buf_free(ctx, &bnw);
        vkr_buf_free(ctx, &bxn);
        free(w);
        free(deq);
        free(x);
        free(xn);
    }
    free(nw);
    vkr_ctx_free(ctx);
}

/* Greedy on a quantised fixture equals the CPU reference forward on the
 * same weights (dequantised exactly as ggml does) for the first 32 tokens
 * of each reference prompt. CI checks the first prompt of each fixture
 * (the fp32 CPU forward is single-threaded); LADE_FULL_TESTS=1 all. */
static void greedy_matches_reference(const char *file)
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
    char err[512];
    struct llm_model *m;
    struct llm_model_opts o = { .path = path, .device = getenv("LADE_DEVICE") };
    if (lade_tuning_from_env(&o.tuning, err, sizeof(err)) ||
        llm_model_load(&o, &m, err, sizeof(err)))
        fail_msg("%s", err);
    struct llm_ref *ref;
    assert_int_equal(llm_ref_new(llm_model_gguf(m), 0, &ref, err, sizeof(err)), 0);
    struct dec_model g, c;
    llm_model_dec(m, &g);
    llm_ref_dec_model(ref, &c);
    for (size_t i = 0; i < rd->n && i < limit; i++) {
        const struct refdata_rec *r = &rd->recs[i];
        int32_t tg, tc;
        assert_int_equal(g.rewind(g.ctx, 0), 0);
        assert_int_equal(c.rewind(c.ctx, 0), 0);
        assert_int_equal(g.prefill(g.ctx, r->prompt_tokens, r->n_prompt, &tg, NULL), 0);
        assert_int_equal(c.prefill(c.ctx, r->prompt_tokens, r->n_prompt, &tc, NULL), 0);
        for (int k = 0; k < 32; k++) {
            if (tg != tc)
                fail_msg("%s %s token %d: GPU %d, CPU reference %d", file, r->id, k, tg, tc);
            struct dec_row row = { tg, -1, DEC_WANT_ARGMAX, 0 };
            uint32_t keep = 0;
            assert_int_equal(g.step(g.ctx, &row, 1, &tg, NULL), 0);
            assert_int_equal(g.commit(g.ctx, &keep, 1), 0);
            assert_int_equal(c.step(c.ctx, &row, 1, &tc, NULL), 0);
            assert_int_equal(c.commit(c.ctx, &keep, 1), 0);
        }
    }
    fprintf(stderr, "%s: greedy equals the CPU reference for %zu prompts x 32 tokens\n", file,
            rd->n < limit ? rd->n : limit);
    llm_ref_free(ref);
    llm_model_free(m);
    refdata_free(rd);
}

static void test_greedy_q8_0(void **state)
{
    greedy_matches_reference("kernelc-22m-q8_0.gguf");
}
static void test_greedy_q4_0(void **state)
{
    greedy_matches_reference("kernelc-22m-q4_0.gguf");
}
static void test_greedy_q4_k_m(void **state)
{
    greedy_matches_reference("kernelc-22m-q4_k_m.gguf");
}

/* A row's logits are bit-identical alone and inside a wide step, per format. */
static void invariance(const char *file)
{
    char path[512], err[512];
    snprintf(path, sizeof(path), KDIR "%s", file);
    if (access(path, R_OK) != 0) {
        fprintf(stderr, "skipping: %s not found\n", path);
        skip();
    }
    struct llm_model *m;
    struct llm_model_opts o = { .path = path, .device = getenv("LADE_DEVICE"), .n_ctx = 256 };
    if (lade_tuning_from_env(&o.tuning, err, sizeof(err)) ||
        llm_model_load(&o, &m, err, sizeof(err)))
        fail_msg("%s", err);
    struct dec_model dm;
    llm_model_dec(m, &dm);
    invariance_check_steps(&dm, 64, rnd, file);
    llm_model_free(m);
}

static void test_invariance_q8_0(void **state)
{
    invariance("kernelc-22m-q8_0.gguf");
}
static void test_invariance_q4_0(void **state)
{
    invariance("kernelc-22m-q4_0.gguf");
}
static void test_invariance_q4_k_m(void **state)
{
    invariance("kernelc-22m-q4_k_m.gguf");
}

static int teardown(void **state)
{
    assert_int_equal(vkr_validation_messages(), 0);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matmul_formats),    cmocka_unit_test(test_matmul_two_formats),
        cmocka_unit_test(test_embed_formats),     cmocka_unit_test(test_greedy_q8_0),
        cmocka_unit_test(test_greedy_q4_0),       cmocka_unit_test(test_greedy_q4_k_m),
        cmocka_unit_test(test_invariance_q8_0),   cmocka_unit_test(test_invariance_q4_0),
        cmocka_unit_test(test_invariance_q4_k_m),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
