/* GGUF v3 writer primitives (llama/gguf-write.h). */
#include "llama/gguf-write.h"

#include <errno.h>
#include <string.h>

void llm_gguf_w_bytes(struct llm_gguf_w *w, const void *p, size_t n)
{
    if (!w->err && n && fwrite(p, 1, n, w->f) != n)
        w->err = -EIO;
}

void llm_gguf_w_u32(struct llm_gguf_w *w, uint32_t v)
{
    llm_gguf_w_bytes(w, &v, 4);
}
void llm_gguf_w_u64(struct llm_gguf_w *w, uint64_t v)
{
    llm_gguf_w_bytes(w, &v, 8);
}

void llm_gguf_w_str(struct llm_gguf_w *w, const char *s, uint64_t len)
{
    llm_gguf_w_u64(w, len);
    llm_gguf_w_bytes(w, s, len);
}

void llm_gguf_w_header(struct llm_gguf_w *w, uint64_t n_tensors, uint64_t n_kv)
{
    llm_gguf_w_bytes(w, "GGUF", 4);
    llm_gguf_w_u32(w, 3);
    llm_gguf_w_u64(w, n_tensors);
    llm_gguf_w_u64(w, n_kv);
}

void llm_gguf_w_kv_u32(struct llm_gguf_w *w, const char *key, uint32_t v)
{
    llm_gguf_w_str(w, key, strlen(key));
    llm_gguf_w_u32(w, LLM_GGUF_U32);
    llm_gguf_w_u32(w, v);
}

void llm_gguf_w_kv_f32(struct llm_gguf_w *w, const char *key, float v)
{
    llm_gguf_w_str(w, key, strlen(key));
    llm_gguf_w_u32(w, LLM_GGUF_F32);
    llm_gguf_w_bytes(w, &v, 4);
}

void llm_gguf_w_kv_str(struct llm_gguf_w *w, const char *key, const char *v)
{
    llm_gguf_w_str(w, key, strlen(key));
    llm_gguf_w_u32(w, LLM_GGUF_STRING);
    llm_gguf_w_str(w, v, strlen(v));
}

void llm_gguf_w_kv_copy(struct llm_gguf_w *w, const struct llm_gguf *g,
                        const struct llm_gguf_kv *kv)
{
    llm_gguf_w_str(w, kv->key.ptr, kv->key.len);
    llm_gguf_w_u32(w, kv->type);
    if (kv->type == LLM_GGUF_STRING) {
        llm_gguf_w_str(w, kv->v.str.ptr, kv->v.str.len);
    } else if (kv->type == LLM_GGUF_ARRAY) {
        llm_gguf_w_u32(w, kv->arr_type);
        llm_gguf_w_u64(w, kv->arr_n);
        if (kv->arr_type == LLM_GGUF_STRING) {
            for (uint64_t i = 0; i < kv->arr_n && !w->err; i++) {
                struct llm_gguf_str s;
                if (llm_gguf_arr_str(g, kv, i, &s)) {
                    w->err = -EINVAL;
                    return;
                }
                llm_gguf_w_str(w, s.ptr, s.len);
            }
        } else if (llm_gguf_vtype_size(kv->arr_type)) {
            llm_gguf_w_bytes(w, kv->v.arr, (size_t)(kv->arr_n * llm_gguf_vtype_size(kv->arr_type)));
        } else if (!w->err) {
            w->err = -ENOTSUP; /* arrays of arrays */
        }
    } else {
        /* Scalars are stored widened in the union; write back their width.
         * Little-endian: the low bytes of u64/i64 are the value. */
        size_t n = llm_gguf_vtype_size(kv->type);
        if (kv->type == LLM_GGUF_F32) {
            float f = (float)kv->v.f64;
            llm_gguf_w_bytes(w, &f, 4);
        } else if (kv->type == LLM_GGUF_F64) {
            llm_gguf_w_bytes(w, &kv->v.f64, 8);
        } else if (kv->type == LLM_GGUF_BOOL) {
            uint8_t b = kv->v.b;
            llm_gguf_w_bytes(w, &b, 1);
        } else {
            llm_gguf_w_bytes(w, &kv->v.u64, n);
        }
    }
}

void llm_gguf_w_tensor_info(struct llm_gguf_w *w, const char *name, uint32_t n_dims,
                            const uint64_t *ne, uint32_t type, uint64_t offset)
{
    llm_gguf_w_str(w, name, strlen(name));
    llm_gguf_w_u32(w, n_dims);
    for (uint32_t d = 0; d < n_dims; d++)
        llm_gguf_w_u64(w, ne[d]);
    llm_gguf_w_u32(w, type);
    llm_gguf_w_u64(w, offset);
}

void llm_gguf_w_pad(struct llm_gguf_w *w, uint64_t align)
{
    static const uint8_t zero[256];
    long pos = ftell(w->f);
    if (pos < 0) {
        w->err = w->err ? w->err : -EIO;
        return;
    }
    uint64_t pad = (align - (uint64_t)pos % align) % align;
    while (pad && !w->err) {
        size_t n = pad < sizeof(zero) ? (size_t)pad : sizeof(zero);
        llm_gguf_w_bytes(w, zero, n);
        pad -= n;
    }
}

int llm_gguf_w_error(const struct llm_gguf_w *w)
{
    return w->err;
}
