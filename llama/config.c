/* GGUF metadata -> struct llm_config, then validation of the numbers and of
 * every tensor shape the forward pass will assume. */
#include "llama/config.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "llama/dequant.h"
#include "llama/gguf.h"
#include "llama/llm-internal.h"

static int tensor_name(char *buf, size_t len, int layer, const char *suffix, const char *kind)
{
    int n = layer >= 0 ? snprintf(buf, len, "blk.%d.%s.%s", layer, suffix, kind) :
                         snprintf(buf, len, "%s.%s", suffix, kind);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int llm_config_tensor_name(char *buf, size_t len, int layer, const char *suffix)
{
    return tensor_name(buf, len, layer, suffix, "weight");
}

int llm_config_bias_name(char *buf, size_t len, int layer, const char *suffix)
{
    return tensor_name(buf, len, layer, suffix, "bias");
}

static const char *const arch_names[] = {
    [LLM_ARCH_LLAMA] = "llama",
    [LLM_ARCH_QWEN2] = "qwen2",
    [LLM_ARCH_QWEN3] = "qwen3",
};

const char *llm_arch_name(enum llm_arch a)
{
    return (unsigned)a < sizeof(arch_names) / sizeof(arch_names[0]) ? arch_names[a] : "?";
}

/* ---- reading ------------------------------------------------------------- */

/* "<arch>.<suffix>": the model's keys are named after its architecture. */
struct keys {
    const struct llm_gguf *g;
    const char *arch;
    char buf[128];
};

static const char *akey(struct keys *k, const char *suffix)
{
    snprintf(k->buf, sizeof(k->buf), "%s.%s", k->arch, suffix);
    return k->buf;
}

/* A u32 key that may be absent (then def) or required (then -ENOENT). */
static int read_u32(const struct llm_gguf *g, const char *key, bool required, uint32_t def,
                    uint32_t *ret, char *reterr, size_t errlen)
{
    int r = llm_gguf_get_u32(g, key, ret, reterr, errlen);
    if (r == -ENOENT) {
        if (required)
            return llm_fail(reterr, errlen, -ENOENT, "missing metadata key '%s'", key);
        *ret = def;
        return 0;
    }
    return r;
}

static int read_f32(const struct llm_gguf *g, const char *key, bool required, float def, float *ret,
                    char *reterr, size_t errlen)
{
    int r = llm_gguf_get_f32(g, key, ret, reterr, errlen);
    if (r == -ENOENT) {
        if (required)
            return llm_fail(reterr, errlen, -ENOENT, "missing metadata key '%s'", key);
        *ret = def;
        return 0;
    }
    return r;
}

static int read_arch(const struct llm_gguf *g, enum llm_arch *ret, char *reterr, size_t errlen)
{
    struct llm_gguf_str arch;
    int r = llm_gguf_get_str(g, "general.architecture", &arch, reterr, errlen);
    if (r == -ENOENT)
        return llm_fail(reterr, errlen, r, "missing metadata key 'general.architecture'");
    if (r < 0)
        return r;
    for (size_t i = 0; i < sizeof(arch_names) / sizeof(arch_names[0]); i++) {
        if (arch.len == strlen(arch_names[i]) && memcmp(arch.ptr, arch_names[i], arch.len) == 0) {
            *ret = (enum llm_arch)i;
            return 0;
        }
    }
    int shown = arch.len > 64 ? 64 : (int)arch.len;
    return llm_fail(reterr, errlen, -ENOTSUP,
                    "architecture '%.*s' is not supported (llama, qwen2, qwen3)", shown, arch.ptr);
}

/* The vocabulary size: the tokenizer's token list when the file has one,
 * else the rows of the embedding table; <arch>.vocab_size, when present,
 * must agree. The embedding shape itself is checked with the other tensors. */
static int read_vocab(struct keys *k, uint32_t *ret, char *reterr, size_t errlen)
{
    const struct llm_gguf_kv *kv = llm_gguf_find_kv(k->g, "tokenizer.ggml.tokens");
    const struct llm_gguf_tensor *emb = llm_gguf_find_tensor(k->g, "token_embd.weight");
    uint64_t n;

    if (kv) {
        if (kv->type != LLM_GGUF_ARRAY || kv->arr_type != LLM_GGUF_STRING)
            return llm_fail(reterr, errlen, -EINVAL,
                            "metadata key 'tokenizer.ggml.tokens' is not an array of strings");
        n = kv->arr_n;
    } else if (emb) {
        n = emb->ne[1];
    } else {
        return llm_fail(reterr, errlen, -ENOENT, "missing tensor 'token_embd.weight'");
    }
    if (n == 0 || n > LLM_CONFIG_MAX_VOCAB)
        return llm_fail(reterr, errlen, -EINVAL, "vocabulary of %" PRIu64 " tokens (must be 1..%u)",
                        n, LLM_CONFIG_MAX_VOCAB);

    uint32_t declared;
    int r = read_u32(k->g, akey(k, "vocab_size"), false, (uint32_t)n, &declared, reterr, errlen);
    if (r < 0)
        return r;
    if (declared != n)
        return llm_fail(reterr, errlen, -EINVAL,
                        "%s is %u but the tokenizer has %" PRIu64 " tokens", k->buf, declared, n);
    *ret = (uint32_t)n;
    return 0;
}

/* Head size: key_length, else dim / n_heads (then dim must divide).
 * value_length may only repeat it: one head size serves Q, K and V. */
static int read_head_dim(struct keys *k, struct llm_config *c, char *reterr, size_t errlen)
{
    uint32_t def = c->n_heads ? c->dim / c->n_heads : 0, v;
    int r = read_u32(k->g, akey(k, "attention.key_length"), false, 0, &c->head_dim, reterr, errlen);
    if (r < 0)
        return r;
    if (c->head_dim == 0) {
        if (c->n_heads && c->dim % c->n_heads)
            return llm_fail(reterr, errlen, -EINVAL,
                            "embedding_length %u is not a multiple of head_count %u", c->dim,
                            c->n_heads);
        c->head_dim = def;
    }
    if ((r = read_u32(k->g, akey(k, "attention.value_length"), false, c->head_dim, &v, reterr,
                      errlen)) < 0)
        return r;
    if (v != c->head_dim)
        return llm_fail(reterr, errlen, -ENOTSUP,
                        "%s is %u but key_length is %u (lade needs one head size)", k->buf, v,
                        c->head_dim);
    return 0;
}

/* <arch>.rope.scaling.*, as llama.cpp reads them: the type defaults to
 * linear, its factor to 1 (rope.scale_linear is the factor's old name). */
static int read_scaling(struct keys *k, struct llm_config *c, char *reterr, size_t errlen)
{
    static const char *const types[] = { "none", "linear", "yarn" };
    struct llm_gguf_str t;
    int r = llm_gguf_get_str(k->g, akey(k, "rope.scaling.type"), &t, reterr, errlen);
    c->rope_scaling = LLM_ROPE_SCALING_LINEAR;
    if (r == 0) {
        size_t i = 0;
        while (i < 3 && !(t.len == strlen(types[i]) && memcmp(t.ptr, types[i], t.len) == 0))
            i++;
        if (i == 3)
            return llm_fail(reterr, errlen, -ENOTSUP,
                            "%s '%.*s' is not supported (none, linear, yarn)", k->buf,
                            t.len > 64 ? 64 : (int)t.len, t.ptr);
        c->rope_scaling = (enum llm_rope_scaling)i;
    } else if (r != -ENOENT) {
        return r;
    }
    bool yarn = c->rope_scaling == LLM_ROPE_SCALING_YARN;
    float old;
    if ((r = read_f32(k->g, akey(k, "rope.scale_linear"), false, 1.0f, &old, reterr, errlen)) < 0 ||
        (r = read_f32(k->g, akey(k, "rope.scaling.factor"), false, old, &c->rope_factor, reterr,
                      errlen)) < 0 ||
        (r = read_f32(k->g, akey(k, "rope.scaling.attn_factor"), false, 1.0f, &c->rope_attn_factor,
                      reterr, errlen)) < 0 ||
        (r = read_u32(k->g, akey(k, "rope.scaling.original_context_length"), false, c->n_ctx_train,
                      &c->rope_orig_ctx, reterr, errlen)) < 0 ||
        (r = read_f32(k->g, akey(k, "rope.scaling.yarn_ext_factor"), false, yarn ? 1.0f : 0.0f,
                      &c->yarn_ext_factor, reterr, errlen)) < 0 ||
        (r = read_f32(k->g, akey(k, "rope.scaling.yarn_beta_fast"), false, 32.0f,
                      &c->yarn_beta_fast, reterr, errlen)) < 0 ||
        (r = read_f32(k->g, akey(k, "rope.scaling.yarn_beta_slow"), false, 1.0f, &c->yarn_beta_slow,
                      reterr, errlen)) < 0)
        return r;
    if (!isfinite(c->rope_attn_factor) || c->rope_attn_factor <= 0.0f)
        return llm_fail(reterr, errlen, -EINVAL,
                        "%s.rope.scaling.attn_factor %g (must be finite and > 0)", k->arch,
                        (double)c->rope_attn_factor);
    if (c->rope_factor == 0.0f) /* llama.cpp reads 0 as "no scaling" */
        c->rope_factor = 1.0f;
    if (c->rope_scaling == LLM_ROPE_SCALING_NONE && c->rope_factor != 1.0f)
        return llm_fail(reterr, errlen, -EINVAL,
                        "%s.rope.scaling.type is 'none' but its factor is %g", k->arch,
                        (double)c->rope_factor);
    if (!yarn)
        c->yarn_ext_factor = 0.0f;
    c->rope_mscale = c->rope_attn_factor;
    if (c->yarn_ext_factor != 0.0f && c->rope_factor > 0.0f)
        c->rope_mscale *= 1.0f + 0.1f * logf(c->rope_factor);
    return 0;
}

static int read_keys(struct keys *k, struct llm_config *c, char *reterr, size_t errlen)
{
    const struct llm_gguf *g = k->g;
    uint32_t bos, eos;
    int r;

    if ((r = read_u32(g, akey(k, "context_length"), true, 0, &c->n_ctx_train, reterr, errlen)) <
                0 ||
        (r = read_u32(g, akey(k, "embedding_length"), true, 0, &c->dim, reterr, errlen)) < 0 ||
        (r = read_u32(g, akey(k, "block_count"), true, 0, &c->n_layers, reterr, errlen)) < 0 ||
        (r = read_u32(g, akey(k, "feed_forward_length"), true, 0, &c->ffn, reterr, errlen)) < 0 ||
        (r = read_u32(g, akey(k, "attention.head_count"), true, 0, &c->n_heads, reterr, errlen)) <
                0 ||
        (r = read_u32(g, akey(k, "attention.head_count_kv"), false, c->n_heads, &c->n_kv_heads,
                      reterr, errlen)) < 0 ||
        (r = read_f32(g, akey(k, "attention.layer_norm_rms_epsilon"), true, 0, &c->rms_eps, reterr,
                      errlen)) < 0 ||
        (r = read_f32(g, akey(k, "rope.freq_base"), false, 10000.0f, &c->rope_theta, reterr,
                      errlen)) < 0 ||
        (r = read_u32(g, "tokenizer.ggml.bos_token_id", false, 1, &bos, reterr, errlen)) < 0 ||
        (r = read_u32(g, "tokenizer.ggml.eos_token_id", false, 2, &eos, reterr, errlen)) < 0 ||
        (r = read_head_dim(k, c, reterr, errlen)) < 0 ||
        (r = read_u32(g, akey(k, "rope.dimension_count"), false, c->head_dim, &c->rope_dims, reterr,
                      errlen)) < 0 ||
        (r = read_scaling(k, c, reterr, errlen)) < 0)
        return r;
    /* ids beyond INT32_MAX become -1 and fail validation */
    c->bos = bos > INT32_MAX ? -1 : (int32_t)bos;
    c->eos = eos > INT32_MAX ? -1 : (int32_t)eos;
    return 0;
}

/* What the architecture and the tensors present say about the blocks. */
static void read_features(const struct llm_gguf *g, struct llm_config *c)
{
    c->tied_embeddings = llm_gguf_find_tensor(g, "output.weight") == NULL;
    c->rope_freqs = llm_gguf_find_tensor(g, "rope_freqs.weight") != NULL;
    c->rope_neox = c->arch != LLM_ARCH_LLAMA;
    c->qkv_bias =
            c->arch == LLM_ARCH_QWEN2 ||
            (c->arch == LLM_ARCH_LLAMA && llm_gguf_find_tensor(g, "blk.0.attn_q.bias") != NULL);
    c->qk_norm = c->arch == LLM_ARCH_QWEN3;
}

int llm_config_load(const struct llm_gguf *g, struct llm_config *ret, char *reterr, size_t errlen)
{
    struct llm_config c = { 0 };
    struct keys k = { .g = g };
    int r;

    if ((r = read_arch(g, &c.arch, reterr, errlen)) < 0)
        return r;
    k.arch = llm_arch_name(c.arch);
    if ((r = read_keys(&k, &c, reterr, errlen)) < 0 ||
        (r = read_vocab(&k, &c.n_vocab, reterr, errlen)) < 0)
        return r;
    read_features(g, &c);
    if ((r = llm_config_validate(&c, reterr, errlen)) < 0 ||
        (r = llm_config_check_tensors(g, &c, reterr, errlen)) < 0)
        return r;
    *ret = c;
    return 0;
}

/* ---- RoPE's frequencies ---------------------------------------------------- */

/* YaRN's correction range: the pairs whose wavelength spans n_rot turns
 * over the original context, for beta_fast and beta_slow turns. */
static float yarn_corr_dim(const struct llm_config *c, float n_rot)
{
    return (float)c->rope_dims * logf((float)c->rope_orig_ctx / (n_rot * 2.0f * (float)M_PI)) /
           (2.0f * logf(c->rope_theta));
}

int llm_config_rope_freq(const struct llm_gguf *g, const struct llm_config *c, float *ret,
                         char *reterr, size_t errlen)
{
    uint32_t np = c->rope_dims / 2;
    if (c->rope_freqs) {
        const struct llm_gguf_tensor *t = llm_gguf_find_tensor(g, "rope_freqs.weight");
        int r = t ? llm_dequant_row(t->type, t->data, ret, np) : -ENOENT;
        if (r < 0)
            return llm_fail(reterr, errlen, r == -ENOENT ? r : -ENOTSUP,
                            "tensor 'rope_freqs.weight': cannot read %s",
                            t ? llm_ggml_type_name(t->type) : "it");
        for (uint32_t i = 0; i < np; i++)
            if (!isfinite(ret[i]) || ret[i] <= 0.0f)
                return llm_fail(reterr, errlen, -EINVAL,
                                "rope_freqs.weight[%u] is %g (must be finite and > 0)", i,
                                (double)ret[i]);
    }
    float fs = 1.0f / c->rope_factor, lo = 0, hi = 0;
    if (c->yarn_ext_factor != 0.0f) {
        lo = fmaxf(0.0f, floorf(yarn_corr_dim(c, c->yarn_beta_fast)));
        hi = fminf((float)(c->rope_dims - 1), ceilf(yarn_corr_dim(c, c->yarn_beta_slow)));
    }
    for (uint32_t i = 0; i < np; i++) {
        /* theta^(-2i/rope_dims) as llama2.c computes it */
        float f = 1.0f / powf(c->rope_theta, (float)(2 * i) / (float)c->rope_dims);
        if (c->rope_freqs)
            f /= ret[i];
        float scaled = f * fs;
        if (c->yarn_ext_factor != 0.0f) {
            /* 1 below the range (high frequencies keep theirs), 0 above it */
            float y = ((float)i - lo) / fmaxf(0.001f, hi - lo);
            float mix = (1.0f - fminf(1.0f, fmaxf(0.0f, y))) * c->yarn_ext_factor;
            scaled = scaled * (1.0f - mix) + f * mix;
        }
        ret[i] = scaled;
    }
    return 0;
}

/* ---- validation ---------------------------------------------------------- */

static int check_range(const char *what, uint32_t v, uint32_t max, char *reterr, size_t errlen)
{
    if (v == 0 || v > max)
        return llm_fail(reterr, errlen, -EINVAL, "%s is %u (must be 1..%u)", what, v, max);
    return 0;
}

int llm_config_validate(const struct llm_config *c, char *reterr, size_t errlen)
{
    int r;

    if ((r = check_range("context_length", c->n_ctx_train, LLM_CONFIG_MAX_CTX, reterr, errlen)) <
                0 ||
        (r = check_range("embedding_length", c->dim, LLM_CONFIG_MAX_DIM, reterr, errlen)) < 0 ||
        (r = check_range("block_count", c->n_layers, LLM_CONFIG_MAX_LAYERS, reterr, errlen)) < 0 ||
        (r = check_range("feed_forward_length", c->ffn, LLM_CONFIG_MAX_FFN, reterr, errlen)) < 0 ||
        (r = check_range("attention.head_count", c->n_heads, LLM_CONFIG_MAX_HEADS, reterr,
                         errlen)) < 0 ||
        (r = check_range("attention.head_count_kv", c->n_kv_heads, c->n_heads, reterr, errlen)) <
                0 ||
        (r = check_range("vocabulary size", c->n_vocab, LLM_CONFIG_MAX_VOCAB, reterr, errlen)) < 0)
        return r;
    if (c->n_heads % c->n_kv_heads)
        return llm_fail(reterr, errlen, -EINVAL,
                        "head_count %u is not a multiple of head_count_kv %u", c->n_heads,
                        c->n_kv_heads);
    if (c->head_dim == 0 || c->head_dim % 2 || c->head_dim > LLM_CONFIG_MAX_HEAD_DIM)
        return llm_fail(reterr, errlen, -EINVAL,
                        "head size %u (attention.key_length: must be even, 2..%u)", c->head_dim,
                        LLM_CONFIG_MAX_HEAD_DIM);
    if (c->rope_dims == 0 || c->rope_dims % 2 || c->rope_dims > c->head_dim)
        return llm_fail(reterr, errlen, -EINVAL,
                        "rope.dimension_count %u (must be even, 2..head size %u)", c->rope_dims,
                        c->head_dim);
    if (!isfinite(c->rope_theta) || c->rope_theta <= 1.0f)
        return llm_fail(reterr, errlen, -EINVAL, "rope.freq_base %g (must be finite and > 1)",
                        (double)c->rope_theta);
    if (c->rope_scaling != LLM_ROPE_SCALING_NONE &&
        (!isfinite(c->rope_factor) || c->rope_factor <= 0.0f || !isfinite(c->rope_mscale) ||
         c->rope_mscale <= 0.0f))
        return llm_fail(reterr, errlen, -EINVAL,
                        "rope.scaling.factor %g, attn_factor %g (must be finite and > 0)",
                        (double)c->rope_factor, (double)c->rope_attn_factor);
    if (c->rope_scaling == LLM_ROPE_SCALING_YARN &&
        (c->rope_orig_ctx == 0 || !isfinite(c->yarn_ext_factor) || !isfinite(c->yarn_beta_fast) ||
         !isfinite(c->yarn_beta_slow) || c->yarn_beta_fast <= 0.0f || c->yarn_beta_slow <= 0.0f))
        return llm_fail(
                reterr, errlen, -EINVAL,
                "yarn: original_context_length %u, ext_factor %g, beta_fast %g, beta_slow %g (must be > 0)",
                c->rope_orig_ctx, (double)c->yarn_ext_factor, (double)c->yarn_beta_fast,
                (double)c->yarn_beta_slow);
    if (!isfinite(c->rms_eps) || c->rms_eps <= 0.0f || c->rms_eps >= 1.0f)
        return llm_fail(reterr, errlen, -EINVAL,
                        "attention.layer_norm_rms_epsilon %g (must be in (0, 1))",
                        (double)c->rms_eps);
    if (c->bos < 0 || (uint32_t)c->bos >= c->n_vocab || c->eos < 0 ||
        (uint32_t)c->eos >= c->n_vocab)
        return llm_fail(reterr, errlen, -EINVAL,
                        "bos/eos token ids %d/%d outside the vocabulary of %u", c->bos, c->eos,
                        c->n_vocab);
    return 0;
}

/* One tensor: present, and of shape [ne0] (ne1 == 0) or [ne0, ne1]; unused
 * dimensions must be 1. */
static int check_tensor_kind(const struct llm_gguf *g, int layer, const char *suffix, bool bias,
                             uint64_t ne0, uint64_t ne1, char *reterr, size_t errlen)
{
    char name[64];
    int r = bias ? llm_config_bias_name(name, sizeof(name), layer, suffix) :
                   llm_config_tensor_name(name, sizeof(name), layer, suffix);
    if (r < 0)
        return llm_fail(reterr, errlen, r, "tensor name for '%s' too long", suffix);

    const struct llm_gguf_tensor *t = llm_gguf_find_tensor(g, name);
    if (!t)
        return llm_fail(reterr, errlen, -ENOENT, "missing tensor '%s'", name);
    uint64_t want1 = ne1 ? ne1 : 1;
    if (t->ne[0] != ne0 || t->ne[1] != want1 || t->ne[2] != 1 || t->ne[3] != 1) {
        if (ne1)
            return llm_fail(reterr, errlen, -EINVAL,
                            "tensor '%s' has shape [%" PRIu64 ", %" PRIu64 ", %" PRIu64 ", %" PRIu64
                            "], expected [%" PRIu64 ", %" PRIu64 "]",
                            name, t->ne[0], t->ne[1], t->ne[2], t->ne[3], ne0, ne1);
        return llm_fail(reterr, errlen, -EINVAL,
                        "tensor '%s' has shape [%" PRIu64 ", %" PRIu64 ", %" PRIu64 ", %" PRIu64
                        "], expected [%" PRIu64 "]",
                        name, t->ne[0], t->ne[1], t->ne[2], t->ne[3], ne0);
    }
    return 0;
}

static int check_tensor(const struct llm_gguf *g, int layer, const char *suffix, uint64_t ne0,
                        uint64_t ne1, char *reterr, size_t errlen)
{
    return check_tensor_kind(g, layer, suffix, false, ne0, ne1, reterr, errlen);
}

/* The tensors of one layer that only some architectures have. */
static int check_layer_extras(const struct llm_gguf *g, const struct llm_config *c, int l,
                              char *reterr, size_t errlen)
{
    uint64_t q_dim = (uint64_t)c->n_heads * c->head_dim,
             kv_dim = (uint64_t)c->n_kv_heads * c->head_dim;
    int r = 0;
    if (c->qkv_bias &&
        ((r = check_tensor_kind(g, l, "attn_q", true, q_dim, 0, reterr, errlen)) < 0 ||
         (r = check_tensor_kind(g, l, "attn_k", true, kv_dim, 0, reterr, errlen)) < 0 ||
         (r = check_tensor_kind(g, l, "attn_v", true, kv_dim, 0, reterr, errlen)) < 0))
        return r;
    if (c->qk_norm &&
        ((r = check_tensor(g, l, "attn_q_norm", c->head_dim, 0, reterr, errlen)) < 0 ||
         (r = check_tensor(g, l, "attn_k_norm", c->head_dim, 0, reterr, errlen)) < 0))
        return r;
    return 0;
}

int llm_config_check_tensors(const struct llm_gguf *g, const struct llm_config *c, char *reterr,
                             size_t errlen)
{
    uint64_t q_dim = (uint64_t)c->n_heads * c->head_dim;
    uint64_t kv_dim = (uint64_t)c->n_kv_heads * c->head_dim;
    /* Shapes as GGUF stores them: [input length, output count]. */
    const struct {
        const char *suffix;
        uint64_t ne0, ne1;
    } blk[] = {
        { "attn_norm", c->dim, 0 },       { "attn_q", c->dim, q_dim },
        { "attn_k", c->dim, kv_dim },     { "attn_v", c->dim, kv_dim },
        { "attn_output", q_dim, c->dim }, { "ffn_norm", c->dim, 0 },
        { "ffn_gate", c->dim, c->ffn },   { "ffn_up", c->dim, c->ffn },
        { "ffn_down", c->ffn, c->dim },
    };
    int r;

    if ((r = check_tensor(g, -1, "token_embd", c->dim, c->n_vocab, reterr, errlen)) < 0 ||
        (r = check_tensor(g, -1, "output_norm", c->dim, 0, reterr, errlen)) < 0)
        return r;
    if (!c->tied_embeddings &&
        (r = check_tensor(g, -1, "output", c->dim, c->n_vocab, reterr, errlen)) < 0)
        return r;
    if (c->rope_freqs &&
        (r = check_tensor(g, -1, "rope_freqs", c->rope_dims / 2, 0, reterr, errlen)) < 0)
        return r;
    for (uint32_t l = 0; l < c->n_layers; l++) {
        for (size_t i = 0; i < sizeof(blk) / sizeof(blk[0]); i++)
            if ((r = check_tensor(g, (int)l, blk[i].suffix, blk[i].ne0, blk[i].ne1, reterr,
                                  errlen)) < 0)
                return r;
        if ((r = check_layer_extras(g, c, (int)l, reterr, errlen)) < 0)
            return r;
    }
    return 0;
}
