/* Quantising f32 rows to ggml block formats, the way ggml's reference
 * quantisers do, so that lade-quantize writes what llama.cpp's tools write
 * (checked byte for byte against the shared q8_0 and q4_0 fixtures). */
#ifndef LADE_LLAMA_QUANT_H
#define LADE_LLAMA_QUANT_H

#include <stdbool.h>
#include <stdint.h>

/* Whether llm_quantize_row can write this ggml type (Q8_0, Q4_0, Q5_0,
 * Q4_K, Q6_K). */
bool llm_quantize_has_type(uint32_t ggml_type);

/* Quantise n floats (a multiple of the block size) into dst, which holds
 * llm_ggml_row_bytes(type, n) bytes. 0, -ENOTSUP for another type, -EINVAL
 * for a ragged n, -EDOM when a value is not finite. */
int llm_quantize_row(uint32_t ggml_type, const float *src, void *dst, uint64_t n);

/* What lade-quantize writes: one type for every matrix, or the Q4_K_M mix
 * of the shared fixture (kernelc-22m-q4_k_m.gguf): Q4_K for matrices and
 * the token embedding, Q6_K for `output` and every `attn_v`. */
enum llm_quant_mix {
    LLM_MIX_Q8_0,
    LLM_MIX_Q4_0,
    LLM_MIX_Q5_0,
    LLM_MIX_Q4_K,
    LLM_MIX_Q6_K,
    LLM_MIX_Q4_K_M,
};

/* "q8_0", "q4_0", "q5_0", "q4_k", "q6_k" or "q4_k_m"; -EINVAL otherwise. */
int llm_quant_mix_parse(const char *s, enum llm_quant_mix *ret);

/* The type a tensor becomes: F32 for vectors (norms); for a matrix, the
 * mix's type, or where its rows do not split into that type's blocks, Q8_0
 * for the K types (rows of 32k; the fixture's fallback) and else F32. */
uint32_t llm_quant_mix_type(enum llm_quant_mix mix, const char *name, uint32_t n_dims,
                            uint64_t cols);

/* llama.cpp's general.file_type number for the mix (LLAMA_FTYPE_MOSTLY_*). */
uint32_t llm_quant_mix_ftype(enum llm_quant_mix mix);

#endif
