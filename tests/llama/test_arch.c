/* The architectures of issue #18 on the CPU: each lade-synth fixture
 * (tests/llama/CMakeLists.txt) loads with the configuration it was written
 * with, RoPE's frequency table equals the formulas recomputed here in
 * double (rope_freqs, linear, YaRN), and the CPU reference's first layer
 * equals a plain double-precision recomputation of it (head size from
 * key_length, GQA, biases, head norms, NeoX pairs). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "llama/config.h"
#include "llama/dequant.h"
#include "llama/gguf.h"
#include "llama/ref.h"

#define ARCH_DIR LADE_BINARY_DIR "/tests/llama/arch/"

static struct llm_gguf *open_fixture(const char *file, struct llm_config *c)
{
    char err[LLM_GGUF_ERR_MAX] = "";
    struct llm_gguf *g = NULL;
    if (llm_gguf_open(file, &g, err, sizeof(err)) < 0)
        fail_msg("%s (fixtures are made by the arch_fixtures target)", err);
    if (llm_config_load(g, c, err, sizeof(err)) < 0)
        fail_msg("%s: %s", file, err);
    return g;
}

static void test_configs(void **state)
{
    struct llm_config c;
    struct llm_gguf *g = open_fixture(ARCH_DIR "llama-gqa-q4_k.gguf", &c);
    assert_int_equal(c.arch, LLM_ARCH_LLAMA);
    assert_int_equal(c.dim, 256);
    assert_int_equal(c.n_heads, 4);
    assert_int_equal(c.n_kv_heads, 2);
    assert_int_equal(c.head_dim, 128); /* not 256 / 4 */
    assert_int_equal(c.rope_dims, 128);
    assert_true(c.rope_freqs && !c.rope_neox && !c.qkv_bias && !c.qk_norm && !c.tied_embeddings);
    assert_int_equal(c.rope_scaling, LLM_ROPE_SCALING_LINEAR);
    assert_true(c.rope_factor == 4.0f && c.rope_mscale == 1.0f && c.yarn_ext_factor == 0.0f);
    llm_gguf_free(g);

    g = open_fixture(ARCH_DIR "llama-yarn-f16.gguf", &c);
    assert_int_equal(c.rope_scaling, LLM_ROPE_SCALING_YARN);
    assert_true(c.tied_embeddings && !c.rope_freqs);
    assert_int_equal(c.rope_orig_ctx, 128);
    assert_true(c.yarn_ext_factor == 1.0f && c.yarn_beta_fast == 32.0f && c.yarn_beta_slow == 1.0f);
    assert_true(fabs(c.rope_mscale - (1.0 + 0.1 * log(4.0))) < 1e-6);
    llm_gguf_free(g);

    g = open_fixture(ARCH_DIR "qwen2-f16.gguf", &c);
    assert_int_equal(c.arch, LLM_ARCH_QWEN2);
    assert_true(c.qkv_bias && c.rope_neox && !c.qk_norm && c.tied_embeddings);
    assert_int_equal(c.head_dim, 64);
    llm_gguf_free(g);

    g = open_fixture(ARCH_DIR "qwen3-f16.gguf", &c);
    assert_int_equal(c.arch, LLM_ARCH_QWEN3);
    assert_true(c.qk_norm && c.rope_neox && !c.qkv_bias && !c.tied_embeddings);
    assert_int_equal(c.head_dim, 128);
    llm_gguf_free(g);
}

/* ---- RoPE's frequencies, recomputed ------------------------------------------ */

/* Pair j's frequency and the cos/sin scale by the definitions (llama.cpp's
 * rope_yarn, corr_dims and ramp), in double. */
static double freq_double(const struct llm_config *c, const float *factors, uint32_t j)
{
    double rd = c->rope_dims, base = pow(c->rope_theta, -2.0 * j / rd);
    if (factors)
        base /= factors[j];
    double interp = base / c->rope_factor;
    if (c->rope_scaling != LLM_ROPE_SCALING_YARN)
        return interp;
    double two_pi = 2.0 * 3.14159265358979323846;
    double d_fast =
            rd * log(c->rope_orig_ctx / (c->yarn_beta_fast * two_pi)) / (2.0 * log(c->rope_theta));
    double d_slow =
            rd * log(c->rope_orig_ctx / (c->yarn_beta_slow * two_pi)) / (2.0 * log(c->rope_theta));
    double lo = fmax(0.0, floor(d_fast)), hi = fmin(rd - 1.0, ceil(d_slow));
    double y = (j - lo) / fmax(0.001, hi - lo);
    double ramp = (1.0 - fmin(1.0, fmax(0.0, y))) * c->yarn_ext_factor;
    return interp * (1.0 - ramp) + base * ramp;
}

static const float *rope_factors(const struct llm_gguf *g, const struct llm_config *c)
{
    const struct llm_gguf_tensor *t = llm_gguf_find_tensor(g, "rope_freqs.weight");
    return c->rope_freqs && t && t->type == LLM_GGML_F32 ? t->data : NULL;
}

static void check_freq(const char *file, bool ramped)
{
    struct llm_config c;
    char err[256];
    struct llm_gguf *g = open_fixture(file, &c);
    float f[512];
    assert_int_equal(llm_config_rope_freq(g, &c, f, err, sizeof(err)), 0);
    const float *ff = rope_factors(g, &c);
    assert_true(!c.rope_freqs || ff);
    uint32_t mixed = 0;
    for (uint32_t j = 0; j < c.rope_dims / 2; j++) {
        double want = freq_double(&c, ff, j);
        if (fabs(f[j] - want) > 2e-6 * want)
            fail_msg("%s: pair %u: frequency %.9g, want %.9g", file, j, f[j], want);
        double plain = pow(c.rope_theta, -2.0 * j / c.rope_dims) / (ff ? ff[j] : 1.0);
        mixed += fabs(want - plain / c.rope_factor) > 1e-3 * want &&
                 fabs(want - plain) > 1e-3 * want;
    }
    /* YaRN: some pairs keep their frequency, some are divided by the
     * factor, some lie between (the ramp is not trivial here) */
    if (ramped)
        assert_true(mixed > 0);
    llm_gguf_free(g);
}

static void test_rope_freq_linear(void **state)
{
    check_freq(ARCH_DIR "llama-gqa-f32.gguf", false);
}

static void test_rope_freq_yarn(void **state)
{
    check_freq(ARCH_DIR "llama-yarn-f16.gguf", true);
}

/* ---- the first layer, recomputed ------------------------------------------------ */

/* Tensor `name` (rows x cols) in double. */
static double *mat(const struct llm_gguf *g, const char *name, uint64_t n)
{
    const struct llm_gguf_tensor *t = llm_gguf_find_tensor(g, name);
    if (!t || t->n_elements != n)
        fail_msg("tensor %s missing or not %llu elements", name, (unsigned long long)n);
    float *f = malloc(n * sizeof(float));
    double *d = malloc(n * sizeof(double));
    uint64_t cols = t->ne[0], rb = llm_ggml_row_bytes(t->type, cols);
    for (uint64_t r = 0; r < n / cols; r++)
        assert_int_equal(
                llm_dequant_row(t->type, (const uint8_t *)t->data + r * rb, f + r * cols, cols), 0);
    for (uint64_t i = 0; i < n; i++)
        d[i] = f[i];
    free(f);
    return d;
}

static double *layer_mat(const struct llm_gguf *g, const char *what, uint64_t n)
{
    char name[64];
    snprintf(name, sizeof(name), "blk.0.%s", what);
    return mat(g, name, n);
}

static void matvec(double *y, const double *w, const double *x, uint32_t rows, uint32_t cols)
{
    for (uint32_t r = 0; r < rows; r++) {
        double s = 0;
        for (uint32_t k = 0; k < cols; k++)
            s += w[(size_t)r * cols + k] * x[k];
        y[r] = s;
    }
}

static void rmsnorm_d(double *v, const double *w, uint32_t n, double eps)
{
    double ss = 0;
    for (uint32_t i = 0; i < n; i++)
        ss += v[i] * v[i];
    double s = 1.0 / sqrt(ss / n + eps);
    for (uint32_t i = 0; i < n; i++)
        v[i] = v[i] * s * w[i];
}

/* RoPE at `pos` on n heads of v, pairs by c->rope_neox. */
static void rope_d(double *v, uint32_t n, const struct llm_config *c, const float *ff, double pos)
{
    uint32_t half = c->rope_dims / 2;
    for (uint32_t h = 0; h < n; h++) {
        double *x = v + (size_t)h * c->head_dim;
        for (uint32_t j = 0; j < half; j++) {
            uint32_t a = c->rope_neox ? j : 2 * j, b = c->rope_neox ? j + half : 2 * j + 1;
            double ang = pos * freq_double(c, ff, j), cs = cos(ang) * c->rope_mscale,
                   sn = sin(ang) * c->rope_mscale;
            double x0 = x[a], x1 = x[b];
            x[a] = x0 * cs - x1 * sn;
            x[b] = x0 * sn + x1 * cs;
        }
    }
}

/* Q, K, V of one token's normed input xn, with biases, head norms, RoPE. */
static void qkv_d(const struct llm_gguf *g, const struct llm_config *c, const double *xn,
                  double pos, double *q, double *k, double *v)
{
    uint32_t qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    double *wq = layer_mat(g, "attn_q.weight", (uint64_t)qd * c->dim);
    double *wk = layer_mat(g, "attn_k.weight", (uint64_t)kvd * c->dim);
    double *wv = layer_mat(g, "attn_v.weight", (uint64_t)kvd * c->dim);
    matvec(q, wq, xn, qd, c->dim);
    matvec(k, wk, xn, kvd, c->dim);
    matvec(v, wv, xn, kvd, c->dim);
    free(wq), free(wk), free(wv);
    if (c->qkv_bias) {
        double *bq = layer_mat(g, "attn_q.bias", qd), *bk = layer_mat(g, "attn_k.bias", kvd);
        double *bv = layer_mat(g, "attn_v.bias", kvd);
        for (uint32_t i = 0; i < qd; i++)
            q[i] += bq[i];
        for (uint32_t i = 0; i < kvd; i++)
            k[i] += bk[i], v[i] += bv[i];
        free(bq), free(bk), free(bv);
    }
    if (c->qk_norm) {
        double *nq = layer_mat(g, "attn_q_norm.weight", c->head_dim);
        double *nk = layer_mat(g, "attn_k_norm.weight", c->head_dim);
        for (uint32_t h = 0; h < c->n_heads; h++)
            rmsnorm_d(q + (size_t)h * c->head_dim, nq, c->head_dim, c->rms_eps);
        for (uint32_t h = 0; h < c->n_kv_heads; h++)
            rmsnorm_d(k + (size_t)h * c->head_dim, nk, c->head_dim, c->rms_eps);
        free(nq), free(nk);
    }
    const float *ff = rope_factors(g, c);
    rope_d(q, c->n_heads, c, ff, pos);
    rope_d(k, c->n_kv_heads, c, ff, pos);
}

/* The residual stream after layer 0 for the second of two tokens. */
static void layer0_d(const struct llm_gguf *g, const struct llm_config *c, const int32_t tok[2],
                     double *out)
{
    uint32_t D = c->dim, hd = c->head_dim, qd = c->n_heads * hd, kvd = c->n_kv_heads * hd;
    double *emb = mat(g, "token_embd.weight", (uint64_t)c->n_vocab * D),
           *an = layer_mat(g, "attn_norm.weight", D);
    double *xn = malloc(D * sizeof(double)), *q = malloc(qd * sizeof(double)),
           *att = calloc(qd, sizeof(double));
    double *k = malloc(2 * kvd * sizeof(double)), *v = malloc(2 * kvd * sizeof(double));
    for (int t = 0; t < 2; t++) {
        memcpy(xn, emb + (size_t)tok[t] * D, D * sizeof(double));
        rmsnorm_d(xn, an, D, c->rms_eps);
        qkv_d(g, c, xn, t, q, k + t * kvd, v + t * kvd); /* q of the last token stays */
    }
    for (uint32_t h = 0; h < c->n_heads; h++) {
        size_t ko = (size_t)(h / (c->n_heads / c->n_kv_heads)) * hd;
        double s[2];
        for (int t = 0; t < 2; t++) {
            s[t] = 0;
            for (uint32_t d = 0; d < hd; d++)
                s[t] += q[h * hd + d] * k[t * kvd + ko + d];
            s[t] /= sqrt((double)hd);
        }
        double m = fmax(s[0], s[1]), e0 = exp(s[0] - m), e1 = exp(s[1] - m);
        for (uint32_t d = 0; d < hd; d++)
            att[h * hd + d] = (e0 * v[ko + d] + e1 * v[kvd + ko + d]) / (e0 + e1);
    }
    double *wo = layer_mat(g, "attn_output.weight", (uint64_t)D * qd),
           *fn = layer_mat(g, "ffn_norm.weight", D);
    double *wg = layer_mat(g, "ffn_gate.weight", (uint64_t)c->ffn * D),
           *wu = layer_mat(g, "ffn_up.weight", (uint64_t)c->ffn * D);
    double *wd = layer_mat(g, "ffn_down.weight", (uint64_t)D * c->ffn);
    double *o = malloc(D * sizeof(double)), *hg = malloc(c->ffn * sizeof(double)),
           *hu = malloc(c->ffn * sizeof(double));
    matvec(o, wo, att, D, qd);
    for (uint32_t i = 0; i < D; i++)
        out[i] = emb[(size_t)tok[1] * D + i] + o[i];
    memcpy(xn, out, D * sizeof(double));
    rmsnorm_d(xn, fn, D, c->rms_eps);
    matvec(hg, wg, xn, c->ffn, D);
    matvec(hu, wu, xn, c->ffn, D);
    for (uint32_t i = 0; i < c->ffn; i++)
        hg[i] = hg[i] / (1.0 + exp(-hg[i])) * hu[i];
    matvec(o, wd, hg, D, c->ffn);
    for (uint32_t i = 0; i < D; i++)
        out[i] += o[i];
    free(emb), free(an), free(xn), free(q), free(att), free(k), free(v);
    free(wo), free(fn), free(wg), free(wu), free(wd), free(o), free(hg), free(hu);
}

static void check_layer0(const char *file)
{
    struct llm_config c;
    char err[256];
    struct llm_gguf *g = open_fixture(file, &c);
    struct llm_ref *r;
    if (llm_ref_new(g, 16, &r, err, sizeof(err)) < 0)
        fail_msg("%s: %s", file, err);
    const int32_t tok[2] = { 1, 300 };
    float *hidden = malloc((size_t)(c.n_layers + 1) * c.dim * sizeof(float));
    double *want = malloc(c.dim * sizeof(double));
    assert_int_equal(llm_ref_forward(r, tok[0], 0, NULL), 0);
    assert_int_equal(llm_ref_forward_trace(r, tok[1], 1, NULL, hidden), 0);
    layer0_d(g, &c, tok, want);
    double scale = 0, maxd = 0;
    for (uint32_t i = 0; i < c.dim; i++) {
        scale = fmax(scale, fabs(want[i]));
        maxd = fmax(maxd, fabs(hidden[i] - want[i]));
    }
    print_message("%s: layer 0, max |ref - double| = %.3g (scale %.3g)\n", file, maxd, scale);
    assert_true(maxd <= 1e-4 * scale);
    free(hidden);
    free(want);
    llm_ref_free(r);
    llm_gguf_free(g);
}

static void test_layer0_llama_gqa(void **state)
{
    check_layer0(ARCH_DIR "llama-gqa-f32.gguf");
}
static void test_layer0_llama_yarn(void **state)
{
    check_layer0(ARCH_DIR "llama-yarn-f16.gguf");
}
static void test_layer0_qwen2(void **state)
{
    check_layer0(ARCH_DIR "qwen2-f16.gguf");
}
static void test_layer0_qwen3(void **state)
{
    check_layer0(ARCH_DIR "qwen3-f16.gguf");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_configs),           cmocka_unit_test(test_rope_freq_linear),
        cmocka_unit_test(test_rope_freq_yarn),    cmocka_unit_test(test_layer0_llama_gqa),
        cmocka_unit_test(test_layer0_llama_yarn), cmocka_unit_test(test_layer0_qwen2),
        cmocka_unit_test(test_layer0_qwen3),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
