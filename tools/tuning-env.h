/* The GPU model's tuning (struct llm_tuning, llama/llm.h) from LADE_*
 * environment variables, for the tools, the benchmarks and the tests:
 * LADE_MM, LADE_MM_WIDE, LADE_MM_ONE, LADE_MM_XSH, LADE_MM_SPLITK,
 * LADE_FUSE, LADE_COOPMAT, LADE_CM, LADE_ATT, LADE_STEP_CACHE, LADE_DRAW,
 * each the tuning key in capitals with its value as llm_tuning_set takes
 * it. laded does not read them: its [tuning] configuration section sets
 * the same keys. */
#ifndef LADE_TOOLS_TUNING_ENV_H
#define LADE_TOOLS_TUNING_ENV_H

#include <stddef.h>

#include "llama/llm.h"

/* Sets every knob whose variable is set and not empty. 0, or -EINVAL with
 * a reason naming the variable. */
int lade_tuning_from_env(struct llm_tuning *t, char *reterr, size_t errlen);

#endif
