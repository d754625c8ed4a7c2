/* GGUF v2/v3 reader over mmap. Trusts nothing in the file: every count,
 * length, offset and dimension is checked against the file size before use,
 * and every failure names the file, the field or tensor, and what was wrong.
 * The reader never logs; the caller decides what to print. */
#ifndef LADE_LLAMA_GGUF_H
#define LADE_LLAMA_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Metadata value types, numbered as in the GGUF specification. */
enum llm_gguf_vtype {
    LLM_GGUF_U8 = 0,
    LLM_GGUF_I8 = 1,
    LLM_GGUF_U16 = 2,
    LLM_GGUF_I16 = 3,
    LLM_GGUF_U32 = 4,
    LLM_GGUF_I32 = 5,
    LLM_GGUF_F32 = 6,
    LLM_GGUF_BOOL = 7,
    LLM_GGUF_STRING = 8,
    LLM_GGUF_ARRAY = 9,
    LLM_GGUF_U64 = 10,
    LLM_GGUF_I64 = 11,
    LLM_GGUF_F64 = 12,
};

/* Tensor data types, numbered as ggml numbers them. */
enum llm_ggml_type {
    LLM_GGML_F32 = 0,
    LLM_GGML_F16 = 1,
    LLM_GGML_Q4_0 = 2,
    LLM_GGML_Q4_1 = 3,
    LLM_GGML_Q5_0 = 6,
    LLM_GGML_Q5_1 = 7,
    LLM_GGML_Q8_0 = 8,
    LLM_GGML_Q8_1 = 9,
    LLM_GGML_Q2_K = 10,
    LLM_GGML_Q3_K = 11,
    LLM_GGML_Q4_K = 12,
    LLM_GGML_Q5_K = 13,
    LLM_GGML_Q6_K = 14,
    LLM_GGML_Q8_K = 15,
    LLM_GGML_BF16 = 30,
};

#define LLM_GGUF_MAX_DIMS 4
#define LLM_GGUF_ERR_MAX 512
/* Deepest array nesting accepted (an array of arrays is 2 levels); bounds the
 * parser's recursion. Real files use 1. */
#define LLM_GGUF_MAX_NESTING 8

/* One metadata string: not NUL-terminated in the file; the reader gives a
 * pointer into the mapping plus the length. */
struct llm_gguf_str {
    const char *ptr;
    uint64_t len;
};

/* One metadata key/value. Arrays are kept as a pointer to their first
 * element in the mapping (little-endian, packed) so that a 32000-entry vocab
 * costs nothing to parse; strings in arrays are reached through
 * llm_gguf_arr_str(). */
struct llm_gguf_kv {
    struct llm_gguf_str key;
    enum llm_gguf_vtype type;
    enum llm_gguf_vtype arr_type; /* element type when type == ARRAY */
    uint64_t arr_n; /* element count when type == ARRAY */
    union {
        uint64_t u64;
        int64_t i64;
        double f64;
        bool b;
        struct llm_gguf_str str;
        const uint8_t *arr; /* first element, inside the mapping */
    } v;
};

struct llm_gguf_tensor {
    char name[256]; /* NUL-terminated copy; names longer than 255 bytes are rejected */
    uint32_t type; /* enum llm_ggml_type */
    uint32_t n_dims; /* 1..4 */
    uint64_t ne[LLM_GGUF_MAX_DIMS]; /* ne[0] is the row length (contiguous); unused dims are 1 */
    uint64_t n_elements;
    uint64_t offset; /* from the start of the data section */
    uint64_t size; /* bytes */
    const void *data; /* inside the mapping */
};

struct llm_gguf; /* opaque */

/* Open and validate a file (mmap, read-only). Returns 0, or a negative errno
 * with a one-line message in reterr (may be NULL): the open/stat/mmap errno
 * (-ENOENT, -EACCES, ...), -EISDIR or -EINVAL for a directory or another
 * non-regular file, -ENOTSUP for GGUF v1, v4+ and big-endian files,
 * -EBADMSG for anything malformed, -ENOMEM. */
int llm_gguf_open(const char *path, struct llm_gguf **ret, char *reterr, size_t errlen);

/* Same over a caller-owned buffer that must outlive the result (used by the
 * fuzz target and by tests that build malformed files in memory). `name`
 * appears in error messages in place of the path. */
int llm_gguf_parse(const void *data, size_t size, const char *name, struct llm_gguf **ret,
                   char *reterr, size_t errlen);

/* Accepts NULL. Unmaps the file if llm_gguf_open mapped it. */
void llm_gguf_free(struct llm_gguf *g);

uint32_t llm_gguf_version(const struct llm_gguf *g);
uint64_t llm_gguf_alignment(const struct llm_gguf *g);
const char *llm_gguf_name(const struct llm_gguf *g);
/* Bytes of one value of a fixed-size type; 0 for strings, arrays and
 * unknown types. */
uint32_t llm_gguf_vtype_size(uint32_t t);
/* File offset of the data section (tensor offsets are relative to it). */
uint64_t llm_gguf_data_offset(const struct llm_gguf *g);

uint64_t llm_gguf_n_kv(const struct llm_gguf *g);
const struct llm_gguf_kv *llm_gguf_kv_at(const struct llm_gguf *g, uint64_t i);
/* NULL when absent. */
const struct llm_gguf_kv *llm_gguf_find_kv(const struct llm_gguf *g, const char *key);

/* Typed getters: 0 on success; -ENOENT when the key is absent; -EINVAL with
 * a message naming the key when its type does not fit (any integer type
 * converts to u32/u64 when the value is in range; F32/F64 convert to each
 * other); -ERANGE, also with a message, for an integer of a fitting type
 * whose value is out of range (negative, or above UINT32_MAX for u32) and
 * for an f64 beyond float range. */
int llm_gguf_get_u32(const struct llm_gguf *g, const char *key, uint32_t *ret, char *reterr,
                     size_t errlen);
int llm_gguf_get_u64(const struct llm_gguf *g, const char *key, uint64_t *ret, char *reterr,
                     size_t errlen);
int llm_gguf_get_f32(const struct llm_gguf *g, const char *key, float *ret, char *reterr,
                     size_t errlen);
int llm_gguf_get_bool(const struct llm_gguf *g, const char *key, bool *ret, char *reterr,
                      size_t errlen);
/* ret is not NUL-terminated; use ret->len. */
int llm_gguf_get_str(const struct llm_gguf *g, const char *key, struct llm_gguf_str *ret,
                     char *reterr, size_t errlen);
/* An array of the given element type; ret_data points into the mapping. */
int llm_gguf_get_arr(const struct llm_gguf *g, const char *key, enum llm_gguf_vtype elem_type,
                     const void **ret_data, uint64_t *ret_n, char *reterr, size_t errlen);
/* Element i of a string array (validated at parse time, so this is O(1) after
 * a one-time index build for the array; -ERANGE if i is out of range).
 * kv must come from this g (llm_gguf_kv_at or llm_gguf_find_kv) and be a top-level array of
 * strings, else -EINVAL. The offset index is built during parsing. */
int llm_gguf_arr_str(const struct llm_gguf *g, const struct llm_gguf_kv *kv, uint64_t i,
                     struct llm_gguf_str *ret);
/* The text of token id in tokenizer.ggml.tokens (a chat template's
 * bos_token and eos_token) into buf, NUL-terminated; "" when there is no
 * such token, it holds a NUL, or it does not fit cap. */
void llm_gguf_token_text(const struct llm_gguf *g, int32_t id, char *buf, size_t cap);

uint64_t llm_gguf_n_tensors(const struct llm_gguf *g);
const struct llm_gguf_tensor *llm_gguf_tensor_at(const struct llm_gguf *g, uint64_t i);
const struct llm_gguf_tensor *llm_gguf_find_tensor(const struct llm_gguf *g, const char *name);

/* ggml type traits. block_elems is 0 and the name "unknown" for a type the
 * reader does not know. */
const char *llm_ggml_type_name(uint32_t type);
uint32_t llm_ggml_block_elems(uint32_t type);
uint32_t llm_ggml_block_bytes(uint32_t type);
/* Bytes of one row of n elements; 0 when n is not a multiple of the block,
 * the type is unknown, or the size overflows 64 bits. */
uint64_t llm_ggml_row_bytes(uint32_t type, uint64_t n);

#endif
