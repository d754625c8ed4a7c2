/* GGUF metadata -> struct llm_config, then validation of the numbers and of
 * every tensor shape the forward pass will assume. */
#include "llama/config.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "llama/gguf.h"
#include "llama/llm-internal.h"

int llm_config_tensor_name(char *buf, size_t len, int layer, const char *suffix)
{
    int n = layer >= 0 ? snprintf(buf, len, "blk.%d.%s.weight", layer, suffix) :
                         snprintf(buf, len, "%s.weight", suffix);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* ---- reading ------------------------------------------------------------- */

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

static int check_arch(const struct llm_gguf *g, char *reterr, size_t errlen)
{
    struct llm_gguf_str arch;
    int r = llm_gguf_get_str(g, "general.architecture", &arch, reterr, errlen);
    if (r == -ENOENT)
        return llm_fail(reterr, errlen, r, "missing metadata key 'general.architecture'");
    if (r < 0)
        return r;
    if (arch.len != 5 || memcmp(arch.ptr, "llama", 5) != 0) {
        int shown = arch.len > 64 ? 64 : (int)arch.len;
        return llm_fail(reterr, errlen, -ENOTSUP,
                        "unsupported architecture '%.*s' (lade runs 'llama')", shown, arch.ptr);
    }
    return 0;
}

/* The vocabulary size: the tokenizer's token list when the file has one,
 * else the rows of the embedding table; llama.vocab_size, when present, must
 * agree. The embedding shape itself is checked with the other tensors. */
static int read_vocab(const struct llm_gguf *g, uint32_t *ret, char *reterr, size_t errlen)
{
    const struct llm_gguf_kv *kv = llm_gguf_find_kv(g, "tokenizer.ggml.tokens");
    const struct llm_gguf_tensor *emb = llm_gguf_find_tensor(g, "token_embd.weight");
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
    int r = read_u32(g, "llama.vocab_size", false, (uint32_t)n, &declared, reterr, errlen);
    if (r < 0)
        return r;
    if (declared != n)
        return llm_fail(reterr, errlen, -EINVAL,
                        "llama.vocab_size is %u but the tokenizer has %" PRIu64 " tokens", declared,
                        n);
    *ret = (uint32_t)n;
    return 0;
}

/* Keys that llama.cpp would accept as giving another head size; lade
 * derives head_dim from dim / n_heads and refuses anything else. */
static int check_head_keys(const struct llm_gguf *g, const struct llm_config *c, char *reterr,
                           size_t errlen)
{
    static const char *const keys[] = { "llama.attention.key_length",
                                        "llama.attention.value_length" };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        uint32_t v;
        int r = read_u32(g, keys[i], false, c->head_dim, &v, reterr, errlen);
        if (r < 0)
            return r;
        if (v != c->head_dim)
            return llm_fail(reterr, errlen, -EINVAL,
                            "%s is %u, but lade needs embedding_length / head_count = %u", keys[i],
                            v, c->head_dim);
    }
    return 0;
}

static int read_keys(const struct llm_gguf *g, struct llm_config *c, char *reterr, size_t errlen)
{
    uint32_t bos, eos;
    int r;

    if ((r = read_u32(g, "llama.context_length", true, 0, &c->n_ctx_train, reterr, errlen)) < 0 ||
        (r = read_u32(g, "llama.embedding_length", true, 0, &c->dim, reterr, errlen)) < 0 ||
        (r = read_u32(g, "llama.block_count", true, 0, &c->n_layers, reterr, errlen)) < 0 ||
        (r = read_u32(g, "llama.feed_forward_length", true, 0, &c->ffn, reterr, errlen)) < 0 ||
        (r = read_u32(g, "llama.attention.head_count", true, 0, &c->n_heads, reterr, errlen)) < 0 ||
        (r = read_u32(g, "llama.attention.head_count_kv", false, c->n_heads, &c->n_kv_heads, reterr,
                      errlen)) < 0 ||
        (r = read_f32(g, "llama.attention.layer_norm_rms_epsilon", true, 0, &c->rms_eps, reterr,
                      errlen)) < 0 ||
        (r = read_f32(g, "llama.rope.freq_base", false, 10000.0f, &c->rope_theta, reterr, errlen)) <
                0 ||
        (r = read_u32(g, "tokenizer.ggml.bos_token_id", false, 1, &bos, reterr, errlen)) < 0 ||
        (r = read_u32(g, "tokenizer.ggml.eos_token_id", false, 2, &eos, reterr, errlen)) < 0)
        return r;
    /* head_count may be 0 in a hostile file; validate() reports it */
    c->head_dim = c->n_heads ? c->dim / c->n_heads : 0;
    if ((r = read_u32(g, "llama.rope.dimension_count", false, c->head_dim, &c->rope_dims, reterr,
                      errlen)) < 0)
        return r;
    /* ids beyond INT32_MAX become -1 and fail validation */
    c->bos = bos > INT32_MAX ? -1 : (int32_t)bos;
    c->eos = eos > INT32_MAX ? -1 : (int32_t)eos;
    return 0;
}

int llm_config_load(const struct llm_gguf *g, struct llm_config *ret, char *reterr, size_t errlen)
{
    struct llm_config c = { 0 };
    int r;

    if ((r = check_arch(g, reterr, errlen)) < 0 || (r = read_keys(g, &c, reterr, errlen)) < 0 ||
        (r = read_vocab(g, &c.n_vocab, reterr, errlen)) < 0)
        return r;
    c.tied_embeddings = llm_gguf_find_tensor(g, "output.weight") == NULL;
    if ((r = llm_config_validate(&c, reterr, errlen)) < 0 ||
        (r = check_head_keys(g, &c, reterr, errlen)) < 0 ||
        (r = llm_config_check_tensors(g, &c, reterr, errlen)) < 0)
        return r;
    *ret = c;
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
    if (c->dim % c->n_heads)
        return llm_fail(reterr, errlen, -EINVAL,
                        "embedding_length %u is not a multiple of head_count %u", c->dim,
                        c->n_heads);
    if (c->n_heads % c->n_kv_heads)
        return llm_fail(reterr, errlen, -EINVAL,
                        "head_count %u is not a multiple of head_count_kv %u", c->n_heads,
                        c->n_kv_heads);
    if (c->head_dim != c->dim / c->n_heads || c->head_dim > LLM_CONFIG_MAX_HEAD_DIM)
        return llm_fail(reterr, errlen, -EINVAL,
                        "head size %u (must be embedding_length / head_count, at most %u)",
                        c->head_dim, LLM_CONFIG_MAX_HEAD_DIM);
    if (c->rope_dims == 0 || c->rope_dims % 2 || c->rope_dims > c->head_dim)
        return llm_fail(reterr, errlen, -EINVAL,
                        "rope.dimension_count %u (must be even, 2..head size %u)", c->rope_dims,
                        c->head_dim);
    if (!isfinite(c->rope_theta) || c->rope_theta <= 1.0f)
        return llm_fail(reterr, errlen, -EINVAL, "rope.freq_base %g (must be finite and > 1)",
                        (double)c->rope_theta);
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
static int check_tensor(const struct llm_gguf *g, int layer, const char *suffix, uint64_t ne0,
                        uint64_t ne1, char *reterr, size_t errlen)
{
    char name[64];
    int r = llm_config_tensor_name(name, sizeof(name), layer, suffix);
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
    for (uint32_t l = 0; l < c->n_layers; l++)
        for (size_t i = 0; i < sizeof(blk) / sizeof(blk[0]); i++)
            if ((r = check_tensor(g, (int)l, blk[i].suffix, blk[i].ne0, blk[i].ne1, reterr,
                                  errlen)) < 0)
                return r;
    return 0;
}
