/* The integer path's arithmetic on the CPU (shaders/matmul_q8.comp,
 * q8act.glsl): activations quantised in blocks of 32 to two 8-bit planes
 * (a value's 8-bit rounding and the 8-bit rounding of what that left, so
 * about 15 bits a value) with one float scale, and the per-block integer
 * products with Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K and Q6_K weights
 * (ggml's block layout, as in the GGUF file: the GPU reads Q4_0, Q8_0 and
 * Q6_K repacked, llama/repack.h, which moves bytes and changes no value).
 * Every value here is the GPU's to the bit: the tests compare them so
 * (test_gpu_idot).
 *
 * A "block" is 32 weights and 32 inputs. A weight block of the K-quants
 * is a 256-element super-block, so its 32-blocks are named by the
 * super-block and the sub-block (0..7) within it; for the other formats
 * the sub-block is 0. */
#ifndef LADE_LLAMA_Q8ACT_H
#define LADE_LLAMA_Q8ACT_H

#include <stdbool.h>
#include <stdint.h>

#define LLM_Q8_BLOCK 32

/* One quantised block, x_i ~ d (256 q1_i + q2_i): q1 the values rounded
 * to 8 bits on the scale d1 = 256 d, q2 what q1 left (x - d1 q1) rounded
 * to 8 bits on the scale d. Both planes are within +-127, so the kernel
 * keeps packed 8-bit dots (one per plane) and combines them exactly in
 * int32: 256 q1_i + q2_i is a 16-bit integer. */
struct llm_q8_block {
    int8_t q1[LLM_Q8_BLOCK]; /* the high plane */
    int8_t q2[LLM_Q8_BLOCK]; /* the low plane (the residual) */
    float d; /* d1 2^-8: the scale of 256 q1_i + q2_i */
    int32_t s; /* sum (256 q1_i + q2_i), for the formats with a min */
};

/* Element i of the block as one integer, 256 q1_i + q2_i (|.| <= 32639). */
static inline int32_t llm_q8_value(const struct llm_q8_block *a, int i)
{
    return 256 * a->q1[i] + a->q2[i];
}

/* The reciprocal the quantiser uses (Newton from a fixed seed, every step
 * rounded as the GPU rounds it); a > 0, normal. */
float llm_q8_recip(float a);

/* d1 = amax * fl(1/127), id = llm_q8_recip(d1), q1_i = roundEven(x_i id)
 * within +-127, r_i = x_i - d1 q1_i (the product and the difference each
 * rounded), q2_i = roundEven(r_i (256 id)) within +-127, d = d1 2^-8 (both
 * scalings exact); a block with amax below 2^-92 (or NaN) all zero,
 * d = 0. */
void llm_q8_quantize(const float *x, struct llm_q8_block *ret);

/* Whether the integer path takes weights of this ggml type. */
bool llm_q8_weight_type(uint32_t ggml_type);

/* sum qw_i (256 q1_i + q2_i) over 32-block `sub` of one weight block w
 * (ggml layout; sub < llm_ggml_block_elems(type) / 32; the kernel's
 * 256 dot(qw, q1) + dot(qw, q2), exact in int32 for every format: at most
 * 32 128 32639 < 2^27 for Q8_0), the weights' stored quants:
 * signed for Q8_0, q - 32 for Q6_K, the unsigned 4- or 5-bit values
 * otherwise. */
int32_t llm_q8_block_dot(uint32_t ggml_type, const uint8_t *w, uint32_t sub,
                         const struct llm_q8_block *a);

/* That block's term, float arithmetic as matmul_q8.comp's term(). */
float llm_q8_block_term(uint32_t ggml_type, const uint8_t *w, uint32_t sub,
                        const struct llm_q8_block *a);

/* The GPU's partial sums of one row (nb blocks of 32, ggml layout) with
 * subgroups of `lanes` lanes: lane l adds the terms of blocks l, l + lanes,
 * ... in that order, from 0. The kernel's result is their subgroupAdd, in
 * an order the device picks. */
void llm_q8_row_lanes(uint32_t ggml_type, const uint8_t *wrow, const struct llm_q8_block *a,
                      uint32_t nb, uint32_t lanes, float *partials);

#endif
