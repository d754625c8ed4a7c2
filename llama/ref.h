/* The CPU reference forward pass: plain fp32 C, one token row at a time in
 * the arithmetic, readable top to bottom as the equations of a LLaMA block.
 * It is the yardstick for the GPU model (layer-by-layer hidden states via
 * llm_ref_forward_trace) and, through llm_ref_dec_model, a real model for
 * the decoding tests on any machine. Weights of any type llama/dequant.c
 * handles are dequantised to f32 when it is built; the KV cache is fp32.
 *
 * Every row's result is computed with the same operations in the same order
 * whatever else shares its step (batch invariance), so a step's rows give
 * bit-identical logits to running each row's chain alone. */
#ifndef LADE_LLAMA_REF_H
#define LADE_LLAMA_REF_H

#include <stddef.h>
#include <stdint.h>

struct dec_model;
struct llm_config;
struct llm_gguf;
struct llm_ref; /* opaque */

/* Most rows one step (and one chunk of prefill) takes. */
#define LLM_REF_MAX_ROWS 512u

/* Build from an open GGUF (which may be freed afterwards: weights are
 * copied). n_ctx is the number of positions the KV cache holds, 0 for the
 * model's context_length; at most context_length. 0, or -EINVAL / -ENOENT
 * (bad model, see llm_config_load), -ENOTSUP (a tensor type the reference
 * cannot dequantise), -ENOMEM; the message goes to reterr. */
int llm_ref_new(const struct llm_gguf *g, uint32_t n_ctx, struct llm_ref **ret, char *reterr,
                size_t errlen);

/* Accepts NULL. */
void llm_ref_free(struct llm_ref *r);

const struct llm_config *llm_ref_config(const struct llm_ref *r);
uint32_t llm_ref_n_ctx(const struct llm_ref *r);

/* llama2.c-style single token: run `token` at position `pos` attending to
 * cached positions 0..pos-1, store its K/V at pos, and make the committed
 * prefix pos+1 tokens long (so pos < current length rewinds). ret_logits
 * gets n_vocab floats (may be NULL). 0; -EINVAL for a token outside the
 * vocabulary or pos beyond the committed prefix (its K/V would be missing);
 * -E2BIG for pos >= n_ctx. */
int llm_ref_forward(struct llm_ref *r, int32_t token, uint32_t pos, float *ret_logits);

/* Same, and also ret_hidden ((n_layers + 1) * dim floats): the residual
 * stream after each layer, then the final RMSNorm's output (the LM head's
 * input), for layer-by-layer comparison with the GPU model. */
int llm_ref_forward_trace(struct llm_ref *r, int32_t token, uint32_t pos, float *ret_logits,
                          float *ret_hidden);

/* Fill *ret with the model-step interface of decoding/dec.h over r (r must
 * outlive it). max_rows is min(LLM_REF_MAX_ROWS, n_ctx). Errors from its
 * functions: -EINVAL for a malformed step or commit, -E2BIG past n_ctx. */
void llm_ref_dec_model(struct llm_ref *r, struct dec_model *ret);

#endif
