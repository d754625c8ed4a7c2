/* GPU weight layout: see repack.h. */
#include "llama/repack.h"

#include <errno.h>
#include <string.h>

#include "llama/gguf.h"

bool llm_repacked(uint32_t type)
{
    return type == LLM_GGML_Q4_0 || type == LLM_GGML_Q8_0;
}

int llm_repack_rows(uint32_t type, const void *src, uint64_t n_rows, uint64_t row_bytes, void *dst)
{
    if (!llm_repacked(type))
        return -EINVAL;
    const uint64_t block = type == LLM_GGML_Q4_0 ? 18 : 34, quants = block - 2;
    if (row_bytes == 0 || row_bytes % block)
        return -EINVAL;
    uint64_t n = n_rows * (row_bytes / block);
    const uint8_t *s = src;
    uint8_t *q = dst, *d = q + n * quants;
    for (uint64_t b = 0; b < n; b++, s += block) {
        memcpy(d + 2 * b, s, 2);
        memcpy(q + quants * b, s + 2, quants);
    }
    return 0;
}
