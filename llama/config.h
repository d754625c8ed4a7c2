/* The model's hyperparameters, read from GGUF metadata and checked against
 * the tensors the forward pass will use. Only architecture "llama" is run;
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

struct llm_config {
    uint32_t n_ctx_train; /* llama.context_length */
    uint32_t dim; /* llama.embedding_length: width of the residual stream */
    uint32_t n_layers; /* llama.block_count */
    uint32_t ffn; /* llama.feed_forward_length: hidden width of the SwiGLU */
    uint32_t n_heads; /* llama.attention.head_count: query heads */
    uint32_t n_kv_heads; /* llama.attention.head_count_kv (default n_heads) */
    uint32_t head_dim; /* dim / n_heads */
    uint32_t rope_dims; /* llama.rope.dimension_count (default head_dim): rotated dims per head */
    float rope_theta; /* llama.rope.freq_base (default 10000) */
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

/* Tensor name: "blk.<layer>.<suffix>.weight" for layer >= 0, "<suffix>.weight"
 * for layer < 0 (suffix e.g. "attn_q", "token_embd"). Returns 0 or -ENAMETOOLONG. */
int llm_config_tensor_name(char *buf, size_t len, int layer, const char *suffix);

#endif
