/* Private to llama/: helpers shared by its translation units. */
#ifndef LADE_LLAMA_LLM_INTERNAL_H
#define LADE_LLAMA_LLM_INTERNAL_H

#include <stddef.h>

/* Write a one-line message into reterr (when there is room) and return err,
 * so error paths read `return llm_fail(reterr, errlen, -EINVAL, "...", ...)`. */
int llm_fail(char *reterr, size_t errlen, int err, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

#endif
