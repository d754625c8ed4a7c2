/* libFuzzer target for the GGUF reader: parse the input, then read every
 * byte the reader hands out (keys, scalar and string values, array bytes,
 * every element of string arrays, tensor data) so that ASan sees any pointer
 * that escapes the buffer, and exercise the getters on every key. A
 * byte-level BPE vocabulary in the file (tokenizer.ggml.model "gpt2") is
 * loaded too, and the input's tail encoded, decoded and streamed with it. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "llama/gguf.h"
#include "llama/tokenizer.h"

static volatile uint64_t sink;

static uint64_t touch(const void *p, uint64_t n)
{
    const uint8_t *b = p;
    uint64_t h = 0;
    for (uint64_t i = 0; i < n; i++)
        h = h * 31 + b[i];
    return h;
}

static void walk_kv(const struct llm_gguf *g, const struct llm_gguf_kv *kv)
{
    char key[128], err[LLM_GGUF_ERR_MAX];
    struct llm_gguf_str s;
    uint64_t h = touch(kv->key.ptr, kv->key.len), u64;
    uint32_t u32;
    float f;
    bool b;
    const void *data;

    if (kv->type == LLM_GGUF_STRING)
        h += touch(kv->v.str.ptr, kv->v.str.len);
    if (kv->type == LLM_GGUF_ARRAY) {
        h += touch(kv->v.arr, kv->arr_n * llm_gguf_vtype_size(kv->arr_type));
        for (uint64_t i = 0; kv->arr_type == LLM_GGUF_STRING && i < kv->arr_n; i++) {
            if (llm_gguf_arr_str(g, kv, i, &s))
                __builtin_trap();
            h += touch(s.ptr, s.len);
        }
    }
    /* Getters by name, when the key is a plain C string that fits. */
    if (kv->key.len < sizeof(key) && !memchr(kv->key.ptr, 0, kv->key.len)) {
        memcpy(key, kv->key.ptr, kv->key.len);
        key[kv->key.len] = '\0';
        if (llm_gguf_find_kv(g, key) != kv)
            __builtin_trap();
        h += (uint64_t)llm_gguf_get_u32(g, key, &u32, err, sizeof(err));
        h += (uint64_t)llm_gguf_get_u64(g, key, &u64, err, sizeof(err));
        h += (uint64_t)llm_gguf_get_f32(g, key, &f, err, sizeof(err));
        h += (uint64_t)llm_gguf_get_bool(g, key, &b, err, sizeof(err));
        h += (uint64_t)llm_gguf_get_str(g, key, &s, err, sizeof(err));
        h += (uint64_t)llm_gguf_get_arr(g, key, LLM_GGUF_STRING, &data, &u64, err, sizeof(err));
    }
    sink += h;
}

static void walk_bpe(const struct llm_gguf *g, const uint8_t *data, size_t size)
{
    char err[LLM_GGUF_ERR_MAX], out[4096];
    struct llm_gguf_str model;
    struct llm_tok *tok;
    int32_t ids[256];
    size_t n, len = size < 256 ? size : 256, k;
    if (llm_gguf_get_str(g, "tokenizer.ggml.model", &model, err, sizeof(err)) || model.len != 4 ||
        memcmp(model.ptr, "gpt2", 4))
        return;
    if (llm_tok_load_gguf(g, &tok, err, sizeof(err))) {
        if (strchr(err, '\n'))
            __builtin_trap();
        return;
    }
    if (llm_tok_encode(tok, (const char *)data + size - len, len, LLM_TOK_SPECIAL, ids, 256, &n) ==
        0) {
        if (llm_tok_decode(tok, ids, n, out, sizeof(out), &k) == 0)
            sink += touch(out, k);
        struct llm_detok d;
        llm_detok_init(&d, tok);
        for (size_t i = 0; i < n && llm_detok_max_out(tok) <= sizeof(out); i++)
            if (llm_detok_push(&d, ids[i], out, sizeof(out), &k) || !llm_tok_is_eog(tok, ids[i]))
                sink += k;
    }
    llm_tok_free(tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[LLM_GGUF_ERR_MAX];
    struct llm_gguf *g = NULL;

    if (llm_gguf_parse(data, size, "fuzz.gguf", &g, err, sizeof(err))) {
        /* A failure must leave a one-line message naming the input. */
        if (g || strncmp(err, "fuzz.gguf: ", 11) || strchr(err, '\n'))
            __builtin_trap();
        return 0;
    }
    for (uint64_t i = 0; i < llm_gguf_n_kv(g); i++)
        walk_kv(g, llm_gguf_kv_at(g, i));
    for (uint64_t i = 0; i < llm_gguf_n_tensors(g); i++) {
        const struct llm_gguf_tensor *t = llm_gguf_tensor_at(g, i);
        if (llm_gguf_find_tensor(g, t->name) != t ||
            t->size != llm_ggml_row_bytes(t->type, t->ne[0]) * (t->n_elements / t->ne[0]))
            __builtin_trap();
        sink += touch(t->data, t->size);
    }
    walk_bpe(g, data, size);
    llm_gguf_free(g);
    return 0;
}
