/* Private to llama/: helpers shared by its translation units. */
#ifndef LADE_LLAMA_LLM_INTERNAL_H
#define LADE_LLAMA_LLM_INTERNAL_H

#include <stddef.h>

struct stat;

/* Write a one-line message into reterr (when there is room) and return err,
 * so error paths read `return llm_fail(reterr, errlen, -EINVAL, "...", ...)`. */
int llm_fail(char *reterr, size_t errlen, int err, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

/* Open path read-only and close-on-exec, refusing at once anything but a
 * regular file: a FIFO, device, socket or directory gives -EINVAL (-EISDIR)
 * with "PATH: is a FIFO, not a regular file" and is never opened for
 * reading, so that a FIFO cannot block the open. The fd and its stat, or
 * negative errno with a one-line reason. */
int llm_open_regular(const char *path, struct stat *ret_st, char *reterr, size_t errlen);

#endif
