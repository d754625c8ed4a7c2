/* Batch invariance through a model's seam, for the tests of the GPU
 * kernels (test_gpu_quant, test_gpu_idot). Compiled into every llama
 * test; names carry the invariance_ prefix. */
#ifndef LADE_TESTS_LLAMA_SUPPORT_INVARIANCE_H
#define LADE_TESTS_LLAMA_SUPPORT_INVARIANCE_H

#include <stdint.h>

#include "decoding/dec.h"

/* A row's logits are the same bits alone and inside steps of T = 4, 16,
 * 64 (and 128 where max_t allows) rows: after a 16-token prompt, each
 * step holds random rows under random parents and, in its middle, the
 * row alone (token 42 on the prompt). Random values from rnd; fails the
 * test with `label` in the message. */
void invariance_check_steps(const struct dec_model *dm, uint32_t max_t, uint32_t (*rnd)(void),
                            const char *label);

#endif
