/* What a compute shader's SPIR-V says of its interface: the size of its
 * push-constant block and how many storage-buffer bindings it declares,
 * so that vkr_kernel_new can refuse a host description that disagrees
 * (a push struct or a binding list edited on one side only). Only the
 * instructions that matter are read: decorations, scalar, vector and
 * struct types, pointers and variables (SPIR-V spec, sections 2.3 and
 * 3.32). */
#include <errno.h>
#include <stdlib.h>

#include "vk/vkr.h"

enum {
    OP_TYPE_INT = 21,
    OP_TYPE_FLOAT = 22,
    OP_TYPE_VECTOR = 23,
    OP_TYPE_STRUCT = 30,
    OP_TYPE_POINTER = 32,
    OP_VARIABLE = 59,
    OP_DECORATE = 71,
    OP_MEMBER_DECORATE = 72,
    DEC_BINDING = 33,
    DEC_OFFSET = 35,
    SC_UNIFORM = 2,
    SC_PUSH_CONSTANT = 9,
    SC_STORAGE_BUFFER = 12,
};

struct id_info {
    uint32_t size; /* scalar or vector types: bytes */
    uint32_t pointee; /* pointer types: the type pointed to */
    uint32_t at; /* struct types: word index of the OpTypeStruct */
    int32_t binding; /* decorated Binding, -1 if none */
};

/* Bytes of a push block: the end of its last member (members are scalars
 * or vectors of 32-bit components in lade's shaders). */
static uint32_t block_bytes(const uint32_t *code, size_t words, const struct id_info *ids,
                            uint32_t bound, uint32_t st)
{
    uint32_t end = 0, nmem = (code[ids[st].at] >> 16) - 2;
    for (size_t i = 5; i < words;) {
        uint32_t wc = code[i] >> 16, op = code[i] & 0xffff;
        if (wc == 0 || i + wc > words)
            break;
        if (op == OP_MEMBER_DECORATE && wc >= 5 && code[i + 1] == st && code[i + 3] == DEC_OFFSET &&
            code[i + 2] < nmem) {
            uint32_t type = code[ids[st].at + 2 + code[i + 2]];
            uint32_t size = type < bound ? ids[type].size : 0;
            if (code[i + 4] + size > end)
                end = code[i + 4] + size;
        }
        i += wc;
    }
    return end;
}

int vkr_spirv_interface(const uint32_t *code, size_t bytes, uint32_t *ret_push_bytes,
                        uint32_t *ret_n_bindings)
{
    size_t words = bytes / 4;
    if (words < 5 || code[0] != 0x07230203u || code[3] == 0 || code[3] > (1u << 22))
        return -EINVAL;
    uint32_t bound = code[3];
    struct id_info *ids = calloc(bound, sizeof(*ids));
    if (!ids)
        return -ENOMEM;
    for (uint32_t i = 0; i < bound; i++)
        ids[i].binding = -1;
    uint32_t push = 0, n_bind = 0;
    int err = 0;
    /* First pass: types and decorations (they precede the variables). */
    for (size_t i = 5; i < words;) {
        uint32_t wc = code[i] >> 16, op = code[i] & 0xffff;
        if (wc == 0 || i + wc > words) {
            err = -EINVAL;
            break;
        }
        uint32_t r = wc > 1 ? code[i + 1] : 0;
        if ((op == OP_TYPE_INT || op == OP_TYPE_FLOAT) && wc >= 3 && r < bound)
            ids[r].size = code[i + 2] / 8;
        else if (op == OP_TYPE_VECTOR && wc >= 4 && r < bound && code[i + 2] < bound)
            ids[r].size = ids[code[i + 2]].size * code[i + 3];
        else if (op == OP_TYPE_STRUCT && wc >= 2 && r < bound)
            ids[r].at = (uint32_t)i;
        else if (op == OP_TYPE_POINTER && wc >= 4 && r < bound)
            ids[r].pointee = code[i + 3];
        else if (op == OP_DECORATE && wc >= 4 && r < bound && code[i + 2] == DEC_BINDING)
            ids[r].binding = (int32_t)code[i + 3];
        i += wc;
    }
    /* Second pass: the variables. */
    for (size_t i = 5; !err && i < words;) {
        uint32_t wc = code[i] >> 16, op = code[i] & 0xffff;
        if (op == OP_VARIABLE && wc >= 4 && code[i + 1] < bound && code[i + 2] < bound) {
            uint32_t sc = code[i + 3], var = code[i + 2], st = ids[code[i + 1]].pointee;
            if (sc == SC_PUSH_CONSTANT && st < bound && ids[st].at)
                push = block_bytes(code, words, ids, bound, st);
            if ((sc == SC_STORAGE_BUFFER || sc == SC_UNIFORM) && ids[var].binding >= 0 &&
                (uint32_t)ids[var].binding + 1 > n_bind)
                n_bind = (uint32_t)ids[var].binding + 1;
        }
        i += wc;
    }
    free(ids);
    if (err)
        return err;
    *ret_push_bytes = push;
    *ret_n_bindings = n_bind;
    return 0;
}
