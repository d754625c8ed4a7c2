/* CPU dequantisation of ggml tensor rows to f32, and the half-precision
 * conversions. This is the ground truth the GPU dequantising shaders are
 * checked against, so it favours exactness and readability over speed: each
 * block layout is spelled out in dequant.c, and every value is computed with
 * the same float operations, in the same order, as ggml's own reference
 * dequantisation. */
#ifndef LADE_LLAMA_DEQUANT_H
#define LADE_LLAMA_DEQUANT_H

#include <stdbool.h>
#include <stdint.h>

/* Dequantise one row of n elements of type ggml_type (enum llm_ggml_type)
 * from src to dst. n must be a multiple of the type's block size (32 or 256,
 * 1 for F32/F16/BF16). Returns 0; -ENOTSUP for a type not handled here
 * (handled: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K);
 * -EINVAL when n is not a multiple of the block size. src needs no particular
 * alignment. */
int llm_dequant_row(uint32_t ggml_type, const void *src, float *dst, uint64_t n);

/* Whether llm_dequant_row handles ggml_type. */
bool llm_dequant_has_type(uint32_t ggml_type);

/* IEEE 754 binary16 <-> binary32. f16 -> f32 is exact. f32 -> f16 rounds to
 * nearest, ties to even, with gradual underflow to f16 subnormals, overflow
 * to infinity, and NaN kept NaN (sign and the top payload bits kept). */
/* Sub-block j's (0..7) 6-bit scale and min from a Q4_K or Q5_K
 * super-block's 12 packed scale bytes s (the integer path's CPU twin,
 * llama/q8act.c, decodes them the same way). */
void llm_k_scale_min(const uint8_t *s, int j, int *ret_scale, int *ret_min);

float llm_f16_to_f32(uint16_t h);
uint16_t llm_f32_to_f16(float f);

/* bfloat16 (the top half of a binary32) <-> binary32, with the same rounding
 * and NaN rules as the f16 pair. */
float llm_bf16_to_f32(uint16_t h);
uint16_t llm_f32_to_bf16(float f);

#endif
