/* llama/config.c: the two shipped models give the values their README
 * states, and small GGUFs built in memory (a 1-layer llama of width 8) show
 * that each kind of bad metadata or tensor is refused with a message that
 * names it. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "llama/config.h"
#include "llama/gguf.h"
#include "support_refdata.h"

/* ---- the real models ------------------------------------------------------ */

static void test_stories260k(void **state)
{
    char err[LLM_GGUF_ERR_MAX] = "";
    struct llm_gguf *g = NULL;
    struct llm_config c;

    if (llm_gguf_open(LADE_MODELS_DIR "/stories260K.gguf", &g, err, sizeof(err)) < 0)
        fail_msg("%s", err);
    if (llm_config_load(g, &c, err, sizeof(err)) < 0)
        fail_msg("%s", err);
    assert_int_equal(c.dim, 64);
    assert_int_equal(c.n_layers, 5);
    assert_int_equal(c.n_heads, 8);
    assert_int_equal(c.n_kv_heads, 4);
    assert_int_equal(c.head_dim, 8);
    assert_int_equal(c.rope_dims, 8);
    assert_int_equal(c.ffn, 172);
    assert_int_equal(c.n_vocab, 512);
    assert_int_equal(c.n_ctx_train, 2048); /* what the GGUF says; the model was trained on 512 */
    assert_true(c.rope_theta == 10000.0f); /* absent from this file: the default */
    assert_true(c.rms_eps == 1e-5f);
    assert_false(c.tied_embeddings);
    assert_int_equal(c.bos, 1);
    assert_int_equal(c.eos, 2);
    llm_gguf_free(g);
}

static void check_kernelc(const char *file)
{
    char path[512], err[LLM_GGUF_ERR_MAX] = "";
    struct llm_gguf *g = NULL;
    struct llm_config c;

    snprintf(path, sizeof(path), "%s/models/kernelc-22m/%s", LADE_SHARED_DIR, file);
    refdata_skip_absent(llm_gguf_open(path, &g, err, sizeof(err)), path, err);
    if (llm_config_load(g, &c, err, sizeof(err)) < 0)
        fail_msg("%s: %s", file, err);
    assert_int_equal(c.dim, 512);
    assert_int_equal(c.n_layers, 6);
    assert_int_equal(c.n_heads, 8);
    assert_int_equal(c.n_kv_heads, 4);
    assert_int_equal(c.head_dim, 64);
    assert_int_equal(c.rope_dims, 64);
    assert_int_equal(c.ffn, 1408);
    assert_int_equal(c.n_vocab, 4096);
    assert_int_equal(c.n_ctx_train, 1024);
    assert_true(c.rope_theta == 10000.0f);
    assert_true(c.rms_eps == 1e-5f);
    assert_false(c.tied_embeddings);
    assert_int_equal(c.bos, 1);
    assert_int_equal(c.eos, 2);
    llm_gguf_free(g);
}

static void test_kernelc_f16(void **state)
{
    check_kernelc("kernelc-22m-f16.gguf");
}

static void test_kernelc_q4_k_m(void **state)
{
    check_kernelc("kernelc-22m-q4_k_m.gguf");
}

static void test_tensor_name(void **state)
{
    char buf[32];
    assert_int_equal(llm_config_tensor_name(buf, sizeof(buf), 3, "attn_q"), 0);
    assert_string_equal(buf, "blk.3.attn_q.weight");
    assert_int_equal(llm_config_tensor_name(buf, sizeof(buf), -1, "token_embd"), 0);
    assert_string_equal(buf, "token_embd.weight");
    assert_int_equal(llm_config_tensor_name(buf, 10, 12, "ffn_down"), -ENAMETOOLONG);
}

/* ---- validation of the numbers alone --------------------------------------- */

static struct llm_config good_config(void)
{
    return (struct llm_config){
        .n_ctx_train = 1024,
        .dim = 512,
        .n_layers = 6,
        .ffn = 1408,
        .n_heads = 8,
        .n_kv_heads = 4,
        .head_dim = 64,
        .rope_dims = 64,
        .rope_theta = 10000.0f,
        .rms_eps = 1e-5f,
        .n_vocab = 4096,
        .bos = 1,
        .eos = 2,
    };
}

static void expect_invalid(const struct llm_config *c, const char *needle)
{
    char err[256] = "";
    assert_int_equal(llm_config_validate(c, err, sizeof(err)), -EINVAL);
    if (!strstr(err, needle))
        fail_msg("message '%s' does not mention '%s'", err, needle);
}

static void test_validate(void **state)
{
    struct llm_config c = good_config();
    char err[256];

    assert_int_equal(llm_config_validate(&c, err, sizeof(err)), 0);
    c = good_config(), c.n_heads = 7, c.head_dim = 512 / 7;
    expect_invalid(&c, "multiple of head_count");
    c = good_config(), c.n_kv_heads = 3;
    expect_invalid(&c, "multiple of head_count_kv");
    c = good_config(), c.n_kv_heads = 16;
    expect_invalid(&c, "head_count_kv");
    c = good_config(), c.rope_dims = 63;
    expect_invalid(&c, "rope.dimension_count");
    c = good_config(), c.rope_dims = 66;
    expect_invalid(&c, "rope.dimension_count");
    c = good_config(), c.dim = 0;
    expect_invalid(&c, "embedding_length");
    c = good_config(), c.n_layers = 100000;
    expect_invalid(&c, "block_count");
    c = good_config(), c.n_vocab = 1u << 30;
    expect_invalid(&c, "vocabulary");
    c = good_config(), c.rms_eps = 0;
    expect_invalid(&c, "epsilon");
    c = good_config(), c.rope_theta = -1;
    expect_invalid(&c, "freq_base");
    c = good_config(), c.eos = 4096;
    expect_invalid(&c, "eos");
    c = good_config(), c.head_dim = 32;
    expect_invalid(&c, "head size");
}

/* ---- a tiny GGUF written in memory ----------------------------------------- */

#define MAX_KV 24
#define MAX_T 16

struct mkv {
    const char *key;
    uint32_t type; /* LLM_GGUF_U32, _F32, _STRING; tokens are added apart */
    uint32_t u32;
    float f32;
    const char *str;
};

struct mtensor {
    const char *name;
    uint64_t ne0, ne1; /* ne1 == 0: one dimension */
};

struct mini {
    struct mkv kv[MAX_KV];
    int n_kv;
    struct mtensor t[MAX_T];
    int n_t;
    uint32_t n_tokens; /* length of tokenizer.ggml.tokens, 0: absent */
};

/* width 8, 2 heads of 4, 1 KV head, ffn 16, vocab 6, one layer */
static struct mini mini_model(void)
{
    struct mini m = {
        .kv = {
            {"general.architecture", LLM_GGUF_STRING, .str = "llama"},
            {"llama.context_length", LLM_GGUF_U32, .u32 = 64},
            {"llama.embedding_length", LLM_GGUF_U32, .u32 = 8},
            {"llama.block_count", LLM_GGUF_U32, .u32 = 1},
            {"llama.feed_forward_length", LLM_GGUF_U32, .u32 = 16},
            {"llama.attention.head_count", LLM_GGUF_U32, .u32 = 2},
            {"llama.attention.head_count_kv", LLM_GGUF_U32, .u32 = 1},
            {"llama.attention.layer_norm_rms_epsilon", LLM_GGUF_F32, .f32 = 1e-6f},
            {"llama.rope.dimension_count", LLM_GGUF_U32, .u32 = 2},
            {"llama.rope.freq_base", LLM_GGUF_F32, .f32 = 500000.0f},
            {"tokenizer.ggml.bos_token_id", LLM_GGUF_U32, .u32 = 1},
            {"tokenizer.ggml.eos_token_id", LLM_GGUF_U32, .u32 = 2},
        },
        .n_kv = 12,
        .t = {
            {"token_embd.weight", 8, 6},       {"output_norm.weight", 8, 0},
            {"output.weight", 8, 6},           {"blk.0.attn_norm.weight", 8, 0},
            {"blk.0.attn_q.weight", 8, 8},     {"blk.0.attn_k.weight", 8, 4},
            {"blk.0.attn_v.weight", 8, 4},     {"blk.0.attn_output.weight", 8, 8},
            {"blk.0.ffn_norm.weight", 8, 0},   {"blk.0.ffn_gate.weight", 8, 16},
            {"blk.0.ffn_up.weight", 8, 16},    {"blk.0.ffn_down.weight", 16, 8},
        },
        .n_t = 12,
        .n_tokens = 6,
    };
    return m;
}

static struct mkv *mini_kv(struct mini *m, const char *key)
{
    for (int i = 0; i < m->n_kv; i++)
        if (!strcmp(m->kv[i].key, key))
            return &m->kv[i];
    fail_msg("test bug: no key %s", key);
    return NULL;
}

static void mini_drop_kv(struct mini *m, const char *key)
{
    struct mkv *k = mini_kv(m, key);
    *k = m->kv[--m->n_kv];
}

static struct mtensor *mini_t(struct mini *m, const char *name)
{
    for (int i = 0; i < m->n_t; i++)
        if (!strcmp(m->t[i].name, name))
            return &m->t[i];
    fail_msg("test bug: no tensor %s", name);
    return NULL;
}

static void mini_drop_t(struct mini *m, const char *name)
{
    struct mtensor *t = mini_t(m, name);
    *t = m->t[--m->n_t];
}

struct wbuf {
    uint8_t *p;
    size_t len, cap;
};

static void put(struct wbuf *w, const void *src, size_t n)
{
    if (w->len + n > w->cap) {
        w->cap = (w->len + n) * 2 + 256;
        w->p = realloc(w->p, w->cap);
        assert_non_null(w->p);
    }
    if (n)
        memcpy(w->p + w->len, src, n);
    w->len += n;
}

static void put_u32(struct wbuf *w, uint32_t v)
{
    put(w, &v, 4);
}

static void put_u64(struct wbuf *w, uint64_t v)
{
    put(w, &v, 8);
}

static void put_str(struct wbuf *w, const char *s)
{
    put_u64(w, strlen(s));
    put(w, s, strlen(s));
}

/* GGUF v3, default alignment 32, all tensors F32 filled with zeros. */
static struct wbuf mini_write(const struct mini *m)
{
    struct wbuf w = { 0 };
    uint64_t off = 0;

    put(&w, "GGUF", 4);
    put_u32(&w, 3);
    put_u64(&w, (uint64_t)m->n_t);
    put_u64(&w, (uint64_t)m->n_kv + (m->n_tokens ? 1 : 0));
    for (int i = 0; i < m->n_kv; i++) {
        put_str(&w, m->kv[i].key);
        put_u32(&w, m->kv[i].type);
        if (m->kv[i].type == LLM_GGUF_U32)
            put_u32(&w, m->kv[i].u32);
        else if (m->kv[i].type == LLM_GGUF_F32)
            put(&w, &m->kv[i].f32, 4);
        else
            put_str(&w, m->kv[i].str);
    }
    if (m->n_tokens) {
        put_str(&w, "tokenizer.ggml.tokens");
        put_u32(&w, LLM_GGUF_ARRAY);
        put_u32(&w, LLM_GGUF_STRING);
        put_u64(&w, m->n_tokens);
        for (uint32_t i = 0; i < m->n_tokens; i++)
            put_str(&w, "tok");
    }
    for (int i = 0; i < m->n_t; i++) {
        put_str(&w, m->t[i].name);
        put_u32(&w, m->t[i].ne1 ? 2 : 1);
        put_u64(&w, m->t[i].ne0);
        if (m->t[i].ne1)
            put_u64(&w, m->t[i].ne1);
        put_u32(&w, LLM_GGML_F32);
        put_u64(&w, off);
        off += (m->t[i].ne0 * (m->t[i].ne1 ? m->t[i].ne1 : 1) * 4 + 31) / 32 * 32;
    }
    static const uint8_t zeros[64];
    put(&w, zeros, (32 - w.len % 32) % 32);
    while (off) {
        uint64_t n = off > sizeof(zeros) ? sizeof(zeros) : off;
        put(&w, zeros, n);
        off -= n;
    }
    return w;
}

/* Parse m and load its config; returns the error and fills err. */
static int mini_load(const struct mini *m, struct llm_config *c, char *err, size_t errlen)
{
    struct wbuf w = mini_write(m);
    struct llm_gguf *g = NULL;
    int r = llm_gguf_parse(w.p, w.len, "mini", &g, err, errlen);
    if (r < 0)
        fail_msg("test GGUF does not parse: %s", err);
    r = llm_config_load(g, c, err, errlen);
    llm_gguf_free(g);
    free(w.p);
    return r;
}

static void expect_load(const struct mini *m, int want, const char *needle)
{
    struct llm_config c;
    char err[512] = "";
    int r = mini_load(m, &c, err, sizeof(err));
    if (r != want)
        fail_msg("load gave %d (%s), want %d", r, err, want);
    if (needle && !strstr(err, needle))
        fail_msg("message '%s' does not mention '%s'", err, needle);
}

static void test_mini_ok(void **state)
{
    struct mini m = mini_model();
    struct llm_config c;
    char err[512] = "";

    if (mini_load(&m, &c, err, sizeof(err)) < 0)
        fail_msg("%s", err);
    assert_int_equal(c.dim, 8);
    assert_int_equal(c.head_dim, 4);
    assert_int_equal(c.rope_dims, 2);
    assert_int_equal(c.n_vocab, 6);
    assert_true(c.rope_theta == 500000.0f);
    assert_true(c.rms_eps == 1e-6f);
    assert_false(c.tied_embeddings);

    /* defaults: no head_count_kv (then 2 KV heads, so K/V are 8 wide), no
     * rope keys, no bos/eos, no token list (vocab from the embedding),
     * no output.weight (tied) */
    mini_drop_kv(&m, "llama.attention.head_count_kv");
    mini_drop_kv(&m, "llama.rope.dimension_count");
    mini_drop_kv(&m, "llama.rope.freq_base");
    mini_drop_kv(&m, "tokenizer.ggml.bos_token_id");
    mini_drop_kv(&m, "tokenizer.ggml.eos_token_id");
    mini_drop_t(&m, "output.weight");
    mini_t(&m, "blk.0.attn_k.weight")->ne1 = 8;
    mini_t(&m, "blk.0.attn_v.weight")->ne1 = 8;
    m.n_tokens = 0;
    if (mini_load(&m, &c, err, sizeof(err)) < 0)
        fail_msg("%s", err);
    assert_int_equal(c.n_kv_heads, 2);
    assert_int_equal(c.rope_dims, 4);
    assert_true(c.rope_theta == 10000.0f);
    assert_int_equal(c.bos, 1);
    assert_int_equal(c.eos, 2);
    assert_int_equal(c.n_vocab, 6);
    assert_true(c.tied_embeddings);
}

static void test_mini_bad_metadata(void **state)
{
    struct mini m;

    m = mini_model(), mini_kv(&m, "general.architecture")->str = "gpt2";
    expect_load(&m, -ENOTSUP, "architecture 'gpt2' is not supported (llama, qwen2, qwen3)");
    m = mini_model(), mini_drop_kv(&m, "general.architecture");
    expect_load(&m, -ENOENT, "general.architecture");
    m = mini_model(), mini_drop_kv(&m, "llama.embedding_length");
    expect_load(&m, -ENOENT, "llama.embedding_length");
    m = mini_model(), mini_drop_kv(&m, "llama.attention.layer_norm_rms_epsilon");
    expect_load(&m, -ENOENT, "layer_norm_rms_epsilon");
    m = mini_model(), mini_kv(&m, "llama.attention.head_count")->u32 = 3;
    expect_load(&m, -EINVAL, "multiple of head_count");
    m = mini_model(), mini_kv(&m, "llama.rope.dimension_count")->u32 = 6;
    expect_load(&m, -EINVAL, "rope.dimension_count");
    m = mini_model(), mini_kv(&m, "tokenizer.ggml.eos_token_id")->u32 = 6;
    expect_load(&m, -EINVAL, "eos");
    m = mini_model(), mini_kv(&m, "llama.block_count")->u32 = 0;
    expect_load(&m, -EINVAL, "block_count");
    /* a key of the wrong type is the reader's -EINVAL, passed through */
    m = mini_model(), mini_kv(&m, "llama.feed_forward_length")->type = LLM_GGUF_STRING;
    mini_kv(&m, "llama.feed_forward_length")->str = "16";
    expect_load(&m, -EINVAL, "llama.feed_forward_length");
    /* token list and embedding disagree */
    m = mini_model(), m.n_tokens = 7;
    expect_load(&m, -EINVAL, "token_embd.weight");
}

static void test_mini_bad_tensors(void **state)
{
    struct mini m;

    m = mini_model(), mini_drop_t(&m, "blk.0.ffn_up.weight");
    expect_load(&m, -ENOENT, "missing tensor 'blk.0.ffn_up.weight'");
    m = mini_model(), mini_drop_t(&m, "output_norm.weight");
    expect_load(&m, -ENOENT, "'output_norm.weight'");
    m = mini_model(), mini_t(&m, "blk.0.attn_k.weight")->ne1 = 8;
    expect_load(&m, -EINVAL,
                "tensor 'blk.0.attn_k.weight' has shape [8, 8, 1, 1], expected [8, 4]");
    /* transposed: GGUF ne[0] is the input length */
    m = mini_model(), mini_t(&m, "blk.0.ffn_down.weight")->ne0 = 8;
    mini_t(&m, "blk.0.ffn_down.weight")->ne1 = 16;
    expect_load(&m, -EINVAL, "blk.0.ffn_down.weight");
    m = mini_model(), mini_t(&m, "blk.0.attn_norm.weight")->ne1 = 2;
    expect_load(&m, -EINVAL, "'blk.0.attn_norm.weight' has shape [8, 2, 1, 1], expected [8]");
    m = mini_model(), mini_t(&m, "output.weight")->ne1 = 5;
    expect_load(&m, -EINVAL, "output.weight");
    /* a second layer promised, not present */
    m = mini_model(), mini_kv(&m, "llama.block_count")->u32 = 2;
    expect_load(&m, -ENOENT, "blk.1.attn_norm.weight");
}

/* ---- other architectures and RoPE variants (issue #18) ---------------------- */

/* m as architecture `arch`: general.architecture and every "llama." key
 * renamed (storage for MAX_KV names, valid until the next call). */
static void mini_arch(struct mini *m, const char *arch)
{
    static char names[MAX_KV][96];
    for (int i = 0; i < m->n_kv; i++) {
        if (!strncmp(m->kv[i].key, "llama.", 6)) {
            snprintf(names[i], sizeof(names[i]), "%s.%s", arch, m->kv[i].key + 6);
            m->kv[i].key = names[i];
        }
    }
    mini_kv(m, "general.architecture")->str = arch;
}

static void mini_add_kv(struct mini *m, struct mkv kv)
{
    assert_true(m->n_kv < MAX_KV);
    m->kv[m->n_kv++] = kv;
}

static void mini_add_t(struct mini *m, const char *name, uint64_t ne0)
{
    assert_true(m->n_t < MAX_T);
    m->t[m->n_t++] = (struct mtensor){ name, ne0, 0 };
}

/* qwen2: biases required (K and V 4 wide: one KV head of 4), NeoX; qwen3:
 * head norms required; llama: biases optional. */
static void test_mini_qwen(void **state)
{
    struct mini m = mini_model();
    struct llm_config c;
    char err[512] = "";

    mini_arch(&m, "qwen2");
    expect_load(&m, -ENOENT, "missing tensor 'blk.0.attn_q.bias'");
    mini_add_t(&m, "blk.0.attn_q.bias", 8);
    mini_add_t(&m, "blk.0.attn_k.bias", 4);
    mini_add_t(&m, "blk.0.attn_v.bias", 8);
    expect_load(&m, -EINVAL, "tensor 'blk.0.attn_v.bias' has shape [8, 1, 1, 1], expected [4]");
    mini_t(&m, "blk.0.attn_v.bias")->ne0 = 4;
    if (mini_load(&m, &c, err, sizeof(err)) < 0)
        fail_msg("%s", err);
    assert_int_equal(c.arch, LLM_ARCH_QWEN2);
    assert_true(c.qkv_bias && c.rope_neox && !c.qk_norm);

    m = mini_model();
    mini_arch(&m, "qwen3");
    expect_load(&m, -ENOENT, "missing tensor 'blk.0.attn_q_norm.weight'");
    mini_add_t(&m, "blk.0.attn_q_norm.weight", 4);
    mini_add_t(&m, "blk.0.attn_k_norm.weight", 4);
    if (mini_load(&m, &c, err, sizeof(err)) < 0)
        fail_msg("%s", err);
    assert_true(c.qk_norm && c.rope_neox && !c.qkv_bias);

    m = mini_model(); /* llama with biases */
    mini_add_t(&m, "blk.0.attn_q.bias", 8);
    expect_load(&m, -ENOENT, "missing tensor 'blk.0.attn_k.bias'");
}

/* key_length gives the head size: Q is n_heads * key_length wide, the
 * output projection takes that many columns; value_length must agree. */
static void test_mini_head_size(void **state)
{
    struct mini m = mini_model();
    struct llm_config c;
    char err[512] = "";

    mini_add_kv(&m, (struct mkv){ "llama.attention.key_length", LLM_GGUF_U32, .u32 = 8 });
    expect_load(&m, -EINVAL,
                "tensor 'blk.0.attn_q.weight' has shape [8, 8, 1, 1], expected [8, 16]");
    mini_t(&m, "blk.0.attn_q.weight")->ne1 = 16;
    mini_t(&m, "blk.0.attn_k.weight")->ne1 = 8;
    mini_t(&m, "blk.0.attn_v.weight")->ne1 = 8;
    expect_load(&m, -EINVAL, "blk.0.attn_output.weight");
    mini_t(&m, "blk.0.attn_output.weight")->ne0 = 16;
    if (mini_load(&m, &c, err, sizeof(err)) < 0)
        fail_msg("%s", err);
    assert_int_equal(c.head_dim, 8);
    assert_int_equal(c.dim, 8);
    mini_add_kv(&m, (struct mkv){ "llama.attention.value_length", LLM_GGUF_U32, .u32 = 4 });
    expect_load(&m, -ENOTSUP, "llama.attention.value_length is 4 but key_length is 8");
    mini_kv(&m, "llama.attention.value_length")->u32 = 7;
    mini_kv(&m, "llama.attention.key_length")->u32 = 7;
    expect_load(&m, -EINVAL, "head size 7");
}

/* Unknown architectures and scaling types are refused by name; the
 * scaling keys are read as llama.cpp reads them. */
static void test_mini_rope_variants(void **state)
{
    struct mini m = mini_model();
    struct llm_config c;
    char err[512] = "";

    mini_kv(&m, "general.architecture")->str = "phi3";
    expect_load(&m, -ENOTSUP, "architecture 'phi3' is not supported (llama, qwen2, qwen3)");

    m = mini_model();
    mini_add_kv(&m, (struct mkv){ "llama.rope.scaling.type", LLM_GGUF_STRING, .str = "longrope" });
    expect_load(&m, -ENOTSUP,
                "llama.rope.scaling.type 'longrope' is not supported (none, linear, yarn)");
    mini_kv(&m, "llama.rope.scaling.type")->str = "none";
    mini_add_kv(&m, (struct mkv){ "llama.rope.scaling.factor", LLM_GGUF_F32, .f32 = 8.0f });
    expect_load(&m, -EINVAL, "'none' but its factor is 8");
    mini_kv(&m, "llama.rope.scaling.type")->str = "yarn";
    mini_add_kv(&m, (struct mkv){ "llama.rope.scaling.attn_factor", LLM_GGUF_F32, .f32 = 0.5f });
    mini_add_kv(&m, (struct mkv){ "llama.rope.scaling.original_context_length", LLM_GGUF_U32,
                                  .u32 = 16 });
    if (mini_load(&m, &c, err, sizeof(err)) < 0)
        fail_msg("%s", err);
    assert_int_equal(c.rope_scaling, LLM_ROPE_SCALING_YARN);
    assert_int_equal(c.rope_orig_ctx, 16);
    assert_true(c.rope_factor == 8.0f && c.yarn_ext_factor == 1.0f);
    assert_true(c.yarn_beta_fast == 32.0f && c.yarn_beta_slow == 1.0f);
    assert_true(fabsf(c.rope_mscale - 0.5f * (1.0f + 0.1f * logf(8.0f))) < 1e-6f);

    /* no type: linear, as llama.cpp; the old key gives the factor */
    m = mini_model();
    mini_add_kv(&m, (struct mkv){ "llama.rope.scale_linear", LLM_GGUF_F32, .f32 = 2.0f });
    if (mini_load(&m, &c, err, sizeof(err)) < 0)
        fail_msg("%s", err);
    assert_int_equal(c.rope_scaling, LLM_ROPE_SCALING_LINEAR);
    assert_true(c.rope_factor == 2.0f && c.rope_mscale == 1.0f && c.yarn_ext_factor == 0.0f);

    /* rope_freqs.weight: rope_dims / 2 factors */
    mini_add_t(&m, "rope_freqs.weight", 2);
    expect_load(&m, -EINVAL, "tensor 'rope_freqs.weight' has shape [2, 1, 1, 1], expected [1]");
    mini_t(&m, "rope_freqs.weight")->ne0 = 1;
    if (mini_load(&m, &c, err, sizeof(err)) < 0)
        fail_msg("%s", err);
    assert_true(c.rope_freqs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stories260k),        cmocka_unit_test(test_kernelc_f16),
        cmocka_unit_test(test_kernelc_q4_k_m),     cmocka_unit_test(test_tensor_name),
        cmocka_unit_test(test_validate),           cmocka_unit_test(test_mini_ok),
        cmocka_unit_test(test_mini_bad_metadata),  cmocka_unit_test(test_mini_bad_tensors),
        cmocka_unit_test(test_mini_qwen),          cmocka_unit_test(test_mini_head_size),
        cmocka_unit_test(test_mini_rope_variants),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
