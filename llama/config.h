/* The model's hyperparameters, read from GGUF metadata and checked against
 * the tensors the forward pass will use. Architectures "llama", "qwen2" and
 * "qwen3" are run (their keys are prefixed with the architecture's name);
 * everything that the forward pass relies on (divisibility, bounds, every
 * tensor present with its exact shape) is validated here once, so that the
 * CPU reference and the GPU model need not re-check it. */
#ifndef LADE_LLAMA_CONFIG_H
#define LADE_LLAMA_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct llm_gguf;

/* Upper bounds far above any LLaMA that fits one GPU; they exist so that a
 * hostile header cannot make products of these fields overflow or ask for
 * absurd allocations. */
#define LLM_CONFIG_MAX_DIM 65536u
#define LLM_CONFIG_MAX_LAYERS 1024u
#define LLM_CONFIG_MAX_HEADS 1024u
#define LLM_CONFIG_MAX_HEAD_DIM 1024u
#define LLM_CONFIG_MAX_FFN (1u << 20)
#define LLM_CONFIG_MAX_VOCAB (1u << 22)
#define LLM_CONFIG_MAX_CTX (1u << 24)

/* The architectures lade runs: LLaMA blocks, with what sets each apart. */
enum llm_arch {
    LLM_ARCH_LLAMA, /* adjacent RoPE pairs; Q/K/V biases when the file has them */
    LLM_ARCH_QWEN2, /* Q/K/V biases, NeoX RoPE pairs */
    LLM_ARCH_QWEN3, /* RMSNorm of each Q and K head before RoPE, NeoX RoPE pairs */
};

/* <arch>.rope.scaling.type */
enum llm_rope_scaling {
    LLM_ROPE_SCALING_NONE,
    LLM_ROPE_SCALING_LINEAR, /* positions divided by rope.scaling.factor */
    LLM_ROPE_SCALING_YARN, /* YaRN: interpolation ramped by frequency, and a magnitude scale */
};

/* Keys are named for llama; each is "<arch>.<key>" in the file. */
struct llm_config {
    enum llm_arch arch; /* general.architecture */
    uint32_t n_ctx_train; /* llama.context_length */
    uint32_t dim; /* llama.embedding_length: width of the residual stream */
    uint32_t n_layers; /* llama.block_count */
    uint32_t ffn; /* llama.feed_forward_length: hidden width of the SwiGLU */
    uint32_t n_heads; /* llama.attention.head_count: query heads */
    uint32_t n_kv_heads; /* llama.attention.head_count_kv (default n_heads) */
    uint32_t head_dim; /* llama.attention.key_length (= value_length), default dim / n_heads;
                            * Q is n_heads * head_dim wide, which need not be dim */
    uint32_t rope_dims; /* llama.rope.dimension_count (default head_dim): rotated dims per head */
    float rope_theta; /* llama.rope.freq_base (default 10000) */
    bool rope_neox; /* rotate pairs (i, i + rope_dims/2) instead of (2i, 2i+1): qwen2, qwen3 */
    bool rope_freqs; /* rope_freqs.weight: pair i's frequency divided by its factor i */
    enum llm_rope_scaling rope_scaling; /* llama.rope.scaling.type (default linear, as llama.cpp) */
    float rope_factor; /* llama.rope.scaling.factor (else rope.scale_linear; default 1) */
    float rope_attn_factor; /* llama.rope.scaling.attn_factor (default 1): multiplies cos and sin */
    uint32_t rope_orig_ctx; /* llama.rope.scaling.original_context_length (default context_length) */
    float yarn_ext_factor; /* llama.rope.scaling.yarn_ext_factor (default 1 with yarn) */
    float yarn_beta_fast; /* llama.rope.scaling.yarn_beta_fast (default 32) */
    float yarn_beta_slow; /* llama.rope.scaling.yarn_beta_slow (default 1) */
    float rope_mscale; /* what cos and sin are multiplied by: attn_factor, and
                            * with yarn 1 + 0.1 ln(factor) (llm_config_load computes it) */
    bool qkv_bias; /* blk.N.attn_{q,k,v}.bias, added after each product: qwen2 (optional in llama) */
    bool qk_norm; /* blk.N.attn_{q,k}_norm.weight, RMSNorm of each head: qwen3 */
    float rms_eps; /* llama.attention.layer_norm_rms_epsilon */
    uint32_t n_vocab; /* tokenizer.ggml.tokens length, else token_embd rows */
    bool tied_embeddings; /* no output.weight: the LM head is token_embd */
    int32_t bos; /* tokenizer.ggml.bos_token_id (default 1) */
    int32_t eos; /* tokenizer.ggml.eos_token_id (default 2) */
};

/* Read and validate the configuration of g (llm_config_validate and
 * llm_config_check_tensors included). 0, or a negative errno with a
 * one-line message in reterr: -ENOTSUP for another architecture, -ENOENT for
 * a missing key or tensor, -EINVAL for a bad value or shape. *ret is written
 * only on success. */
int llm_config_load(const struct llm_gguf *g, struct llm_config *ret, char *reterr, size_t errlen);

/* Consistency and bounds of the numbers alone: 0 or -EINVAL with a message. */
int llm_config_validate(const struct llm_config *c, char *reterr, size_t errlen);

/* Every tensor the forward pass reads exists with its expected shape
 * (ne[0] is the input/row length): 0, -ENOENT or -EINVAL naming the tensor. */
int llm_config_check_tensors(const struct llm_gguf *g, const struct llm_config *c, char *reterr,
                             size_t errlen);

/* "llama", "qwen2", "qwen3". */
const char *llm_arch_name(enum llm_arch a);

/* RoPE's angle for pair i (of rope_dims / 2) at position p is p * ret[i]:
 * theta^(-2i / rope_dims), divided by rope_freqs.weight[i] when the file
 * has it, then scaled: by 1 / factor (linear), or YaRN's blend of that and
 * the unscaled frequency, ramped between the pairs its beta_fast and
 * beta_slow select. cos and sin are multiplied by c->rope_mscale. The one
 * table the CPU reference and the GPU both use. 0 or -EINVAL / -ENOTSUP
 * (rope_freqs of a type that cannot be read) with a message. */
int llm_config_rope_freq(const struct llm_gguf *g, const struct llm_config *c, float *ret,
                         char *reterr, size_t errlen);

/* Tensor name: "blk.<layer>.<suffix>.weight" for layer >= 0, "<suffix>.weight"
 * for layer < 0 (suffix e.g. "attn_q", "token_embd"). Returns 0 or -ENAMETOOLONG. */
int llm_config_tensor_name(char *buf, size_t len, int layer, const char *suffix);
/* The same with ".bias" in place of ".weight". */
int llm_config_bias_name(char *buf, size_t len, int layer, const char *suffix);

#endif
