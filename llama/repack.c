/* GPU weight layout: see repack.h. */
#include "llama/repack.h"

#include <errno.h>
#include <string.h>

#include "llama/gguf.h"

/* Where a block keeps its quants and its scales: Q4_0 and Q8_0 start with
 * a 2-byte scale, Q6_K ends with 16 scale bytes and a 2-byte d. */
struct layout {
    uint32_t block, quant_off, quant_len, scale_off, scale_len;
};

static bool layout_of(uint32_t type, struct layout *ret)
{
    switch (type) {
    case LLM_GGML_Q4_0: *ret = (struct layout){ 18, 2, 16, 0, 2 }; return true;
    case LLM_GGML_Q8_0: *ret = (struct layout){ 34, 2, 32, 0, 2 }; return true;
    case LLM_GGML_Q6_K: *ret = (struct layout){ 210, 0, 192, 192, 18 }; return true;
    default: return false;
    }
}

bool llm_repacked(uint32_t type)
{
    struct layout l;
    return layout_of(type, &l);
}

int llm_repack_rows(uint32_t type, const void *src, uint64_t n_rows, uint64_t row_bytes, void *dst)
{
    struct layout L;
    if (!layout_of(type, &L) || row_bytes == 0 || row_bytes % L.block)
        return -EINVAL;
    uint64_t n = n_rows * (row_bytes / L.block);
    const uint8_t *s = src;
    uint8_t *q = dst, *d = q + n * L.quant_len;
    for (uint64_t b = 0; b < n; b++, s += L.block) {
        memcpy(q + L.quant_len * b, s + L.quant_off, L.quant_len);
        memcpy(d + L.scale_len * b, s + L.scale_off, L.scale_len);
    }
    return 0;
}
