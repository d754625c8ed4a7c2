/* The error-message helper of llama/ (llm-internal.h). */
#include <stdarg.h>
#include <stdio.h>

#include "llama/llm-internal.h"

int llm_fail(char *reterr, size_t errlen, int err, const char *fmt, ...)
{
    if (reterr && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(reterr, errlen, fmt, ap);
        va_end(ap);
    }
    return err;
}
