/* Private to llama/gpu_*.c: the device's defaults for struct llm_tuning. */
#ifndef LADE_LLAMA_GPU_TUNING_H
#define LADE_LLAMA_GPU_TUNING_H

#include <stdbool.h>

#include "llama/llm.h"

/* Recorded steps kept when the tuning leaves step_cache at 0. */
#define GPU_STEP_CACHE_DEFAULT 64u

/* `in` with every zero knob set to the default of a CPU driver (cpu) or a
 * GPU, into out; no field of out is then zero (step_cache may be
 * LLM_STEP_CACHE_OFF). Device limits are checked where the kernels are
 * built (gpu_kernels.c). */
void gpu_tuning_resolve(const struct llm_tuning *in, bool cpu, struct llm_tuning *out);

#endif
