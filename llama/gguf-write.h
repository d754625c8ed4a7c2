/* Writing GGUF v3 files: the small set of primitives lade-synth and
 * lade-quantize share. Little-endian hosts only (as the reader). Write
 * errors are sticky: check llm_gguf_w_error() once at the end. */
#ifndef LADE_LLAMA_GGUF_WRITE_H
#define LADE_LLAMA_GGUF_WRITE_H

#include <stdint.h>
#include <stdio.h>

#include "llama/gguf.h"

struct llm_gguf_w {
    FILE *f;
    int err; /* 0 or the first negative errno */
};

void llm_gguf_w_bytes(struct llm_gguf_w *w, const void *p, size_t n);
void llm_gguf_w_u32(struct llm_gguf_w *w, uint32_t v);
void llm_gguf_w_u64(struct llm_gguf_w *w, uint64_t v);
void llm_gguf_w_str(struct llm_gguf_w *w, const char *s, uint64_t len);
/* Header: magic, version 3, tensor and key/value counts. */
void llm_gguf_w_header(struct llm_gguf_w *w, uint64_t n_tensors, uint64_t n_kv);
void llm_gguf_w_kv_u32(struct llm_gguf_w *w, const char *key, uint32_t v);
void llm_gguf_w_kv_f32(struct llm_gguf_w *w, const char *key, float v);
void llm_gguf_w_kv_str(struct llm_gguf_w *w, const char *key, const char *v);
/* A key/value read from another file, written back as it was (scalars,
 * strings, arrays of scalars or strings; nested arrays give -ENOTSUP). */
void llm_gguf_w_kv_copy(struct llm_gguf_w *w, const struct llm_gguf *g,
                        const struct llm_gguf_kv *kv);
/* One tensor info: name, dims (ne[0] first), type, offset in the data section. */
void llm_gguf_w_tensor_info(struct llm_gguf_w *w, const char *name, uint32_t n_dims,
                            const uint64_t *ne, uint32_t type, uint64_t offset);
/* Zero bytes up to the next multiple of `align` of the file position. */
void llm_gguf_w_pad(struct llm_gguf_w *w, uint64_t align);
int llm_gguf_w_error(const struct llm_gguf_w *w);

#endif
