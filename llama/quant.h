/* Quantising f32 rows to ggml block formats, the way ggml's reference
 * quantisers do, so that lade-quantize writes what llama.cpp's tools write
 * (checked byte for byte against the shared q8_0 and q4_0 fixtures). */
#ifndef LADE_LLAMA_QUANT_H
#define LADE_LLAMA_QUANT_H

#include <stdbool.h>
#include <stdint.h>

/* Whether llm_quantize_row can write this ggml type (Q8_0, Q4_0). */
bool llm_quantize_has_type(uint32_t ggml_type);

/* Quantise n floats (a multiple of the block size) into dst, which holds
 * llm_ggml_row_bytes(type, n) bytes. 0, -ENOTSUP for another type, -EINVAL
 * for a ragged n. */
int llm_quantize_row(uint32_t ggml_type, const float *src, void *dst, uint64_t n);

#endif
