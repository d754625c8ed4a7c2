/* lade-quantize: rewrite a GGUF with its matrices in Q8_0, Q4_0, Q5_0,
 * Q4_K, Q6_K or the Q4_K_M mix (llama/quant.h), the bytes ggml's own
 * quantisers write (tests/llama/test_quant.c checks them against the
 * shared q8_0, q4_0 and q4_k_m fixtures). Vectors (norms) become F32; every
 * metadata key is kept, general.file_type is set to llama.cpp's number for
 * the format. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llama/dequant.h"
#include "llama/gguf-write.h"
#include "llama/gguf.h"
#include "llama/quant.h"

#define ALIGN 32

static int write_data(struct llm_gguf_w *w, const struct llm_gguf_tensor *t, uint32_t type)
{
    uint64_t cols = t->ne[0], rows = t->n_elements / cols;
    uint64_t in_rb = llm_ggml_row_bytes(t->type, cols), out_rb = llm_ggml_row_bytes(type, cols);
    float *row = malloc(cols * sizeof(float));
    uint8_t *q = malloc(out_rb);
    int err = row && q ? 0 : -ENOMEM;
    for (uint64_t r = 0; r < rows && !err; r++) {
        err = llm_dequant_row(t->type, (const uint8_t *)t->data + r * in_rb, row, cols);
        if (!err && type == LLM_GGML_F32)
            llm_gguf_w_bytes(w, row, cols * sizeof(float));
        else if (!err && !(err = llm_quantize_row(type, row, q, cols)))
            llm_gguf_w_bytes(w, q, out_rb);
        else if (err == -EDOM)
            fprintf(stderr,
                    "lade-quantize: tensor '%s' row %llu holds a NaN or an infinity, which no quantised "
                    "format can hold\n",
                    t->name, (unsigned long long)r);
    }
    free(row);
    free(q);
    return err;
}

int main(int argc, char **argv)
{
    enum llm_quant_mix mix;
    if (argc != 4 || llm_quant_mix_parse(argv[3], &mix)) {
        fprintf(stderr, "usage: lade-quantize IN.gguf OUT.gguf q8_0|q4_0|q5_0|q4_k|q6_k|q4_k_m\n");
        return 2;
    }
    uint32_t ftype = llm_quant_mix_ftype(mix);
    char err[512];
    struct llm_gguf *g;
    if (llm_gguf_open(argv[1], &g, err, sizeof(err))) {
        fprintf(stderr, "lade-quantize: %s\n", err);
        return 1;
    }
    FILE *f = fopen(argv[2], "wbe");
    if (!f) {
        fprintf(stderr, "lade-quantize: cannot write '%s': %s\n", argv[2], strerror(errno));
        llm_gguf_free(g);
        return 1;
    }
    struct llm_gguf_w w = { f, 0 };
    uint64_t n_t = llm_gguf_n_tensors(g), n_kv = llm_gguf_n_kv(g);
    bool has_ftype = llm_gguf_find_kv(g, "general.file_type") != NULL;
    llm_gguf_w_header(&w, n_t, n_kv + !has_ftype);
    for (uint64_t i = 0; i < n_kv; i++) {
        const struct llm_gguf_kv *kv = llm_gguf_kv_at(g, i);
        if (kv->key.len == 17 && !memcmp(kv->key.ptr, "general.file_type", 17))
            llm_gguf_w_kv_u32(&w, "general.file_type", ftype);
        else if (kv->key.len == 17 && !memcmp(kv->key.ptr, "general.alignment", 17))
            llm_gguf_w_kv_u32(&w, "general.alignment", ALIGN);
        else
            llm_gguf_w_kv_copy(&w, g, kv);
    }
    if (!has_ftype)
        llm_gguf_w_kv_u32(&w, "general.file_type", ftype);
    uint64_t off = 0;
    for (uint64_t i = 0; i < n_t; i++) {
        const struct llm_gguf_tensor *t = llm_gguf_tensor_at(g, i);
        uint32_t type = llm_quant_mix_type(mix, t->name, t->n_dims, t->ne[0]);
        llm_gguf_w_tensor_info(&w, t->name, t->n_dims, t->ne, type, off);
        off += (llm_ggml_row_bytes(type, t->ne[0]) * (t->n_elements / t->ne[0]) + ALIGN - 1) /
               ALIGN * ALIGN;
    }
    llm_gguf_w_pad(&w, ALIGN);
    int e = llm_gguf_w_error(&w);
    for (uint64_t i = 0; i < n_t && !e; i++) {
        const struct llm_gguf_tensor *t = llm_gguf_tensor_at(g, i);
        e = write_data(&w, t, llm_quant_mix_type(mix, t->name, t->n_dims, t->ne[0]));
        llm_gguf_w_pad(&w, ALIGN);
        e = e ? e : llm_gguf_w_error(&w);
    }
    if (fclose(f) && !e)
        e = -EIO;
    llm_gguf_free(g);
    if (e) {
        fprintf(stderr, "lade-quantize: writing '%s' failed: %s\n", argv[2], strerror(-e));
        remove(argv[2]);
        return 1;
    }
    fprintf(stderr, "lade-quantize: %s -> %s (%s)\n", argv[1], argv[2], argv[3]);
    return 0;
}
