/* One zeroed allocation carved into several arrays (dec-internal.h): an
 * object's buffers come and go together, so they are made and freed in
 * one call instead of one malloc and one free each. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "decoding/dec-internal.h"

#define PART_ALIGN 16u /* every array starts on a 16-byte boundary */

int dec_alloc_parts(const struct dec_mem_part *parts, size_t n_parts, void **ret_mem)
{
    size_t total = 0;
    *ret_mem = NULL;
    for (size_t i = 0; i < n_parts; i++)
        *parts[i].ptr = NULL; /* all of them, before any early return */
    for (size_t i = 0; i < n_parts; i++) {
        if (parts[i].size && parts[i].n > SIZE_MAX / parts[i].size)
            return -ENOMEM;
        size_t bytes = parts[i].n * parts[i].size;
        size_t padded = (bytes + PART_ALIGN - 1) & ~(size_t)(PART_ALIGN - 1);
        if (padded < bytes || total > SIZE_MAX - padded)
            return -ENOMEM;
        total += padded;
    }
    char *mem = calloc(1, total ? total : 1);
    if (!mem)
        return -ENOMEM;
    size_t off = 0;
    for (size_t i = 0; i < n_parts; i++) {
        *parts[i].ptr = mem + off;
        off += (parts[i].n * parts[i].size + PART_ALIGN - 1) & ~(size_t)(PART_ALIGN - 1);
    }
    *ret_mem = mem;
    return 0;
}
