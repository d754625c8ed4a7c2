/* The model's weights on the GPU: matrices checked and uploaded (repacked
 * where the GPU layout differs), gate and up stacked for the fused
 * SwiGLU, norms as f32. */
#include "llama/gpu_weights.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llama/dequant.h"
#include "llama/llm-internal.h"
#include "llama/repack.h"

/* One upload: what every helper below needs. */
struct upload {
    struct gpu_weights *w;
    struct vkr_ctx *vk;
    struct gpu_kernels *ks;
    const struct gpu_weights_src *src;
    char *reterr;
    size_t errlen;
};

/* vkr_rows_xform for the formats whose GPU layout differs (repack.h). */
static int repack_xform(void *arg, const void *src, uint64_t n_rows, uint64_t row_bytes, void *dst)
{
    return llm_repack_rows(*(const uint32_t *)arg, src, n_rows, row_bytes, dst);
}

/* The tensor `name` checked for the matrix kernels, and its row size. */
static int find_mat(struct upload *u, const char *name, uint32_t cols,
                    const struct llm_gguf_tensor **ret, uint64_t *ret_rb)
{
    const struct llm_gguf *gguf = u->src->gguf;
    const struct llm_gguf_tensor *t = llm_gguf_find_tensor(gguf, name);
    if (!t) {
        snprintf(u->reterr, u->errlen, "%s: tensor '%s' missing", llm_gguf_name(gguf), name);
        return -ENOENT;
    }
    if (gpu_type_slot(t->type) < 0) {
        snprintf(u->reterr, u->errlen, "%s: unsupported tensor type %s in tensor %s",
                 llm_gguf_name(gguf), llm_ggml_type_name(t->type), name);
        return -ENOTSUP;
    }
    if (cols % 4) { /* the matrix kernels read inputs as vec4 */
        snprintf(u->reterr, u->errlen,
                 "%s: tensor '%s' has a row length %u that is not a multiple of 4",
                 llm_gguf_name(gguf), name, cols);
        return -ENOTSUP;
    }
    uint64_t rb = llm_ggml_row_bytes(t->type, cols);
    if (rb == 0) {
        snprintf(u->reterr, u->errlen,
                 "%s: tensor '%s': row of %u is not a whole number of %s blocks",
                 llm_gguf_name(gguf), name, cols, llm_ggml_type_name(t->type));
        return -EINVAL;
    }
    *ret = t;
    *ret_rb = rb;
    return 0;
}

/* `rows` rows of `rb` bytes of ggml type `type` into ret: from `data`, or
 * with `data2` the first half from data and the second from data2 (gate
 * and up stacked). */
static int upload_rows(struct upload *u, const char *name, uint32_t type, const void *data,
                       const void *data2, uint32_t rows, uint32_t cols, uint64_t rb,
                       struct gpu_mat *ret)
{
    struct vkr_ctx *vk = u->vk;
    if (u->src->cancel && u->src->cancel(u->src->cancel_ud))
        return llm_fail(u->reterr, u->errlen, -ECANCELED, "cancelled before '%s' went up", name);
    ret->type = type;
    ret->rows = rows;
    ret->cols = cols;
    int err = gpu_kernels_matmul(u->ks, vk, type, ret->kernel);
    if (err) {
        snprintf(u->reterr, u->errlen, "%s", vk->err);
        return err;
    }
    uint8_t *both = NULL;
    if (data2 && llm_repacked(type)) {
        /* The repacked layout puts every row's quants before every row's
         * scales, so the halves are joined on the host first. */
        uint64_t half = (uint64_t)rows / 2 * rb;
        if (!(both = malloc(2 * half)))
            return -ENOMEM;
        memcpy(both, data, half);
        memcpy(both + half, data2, half);
        data = both;
        data2 = NULL;
    }
    if (llm_repacked(type)) {
        err = vkr_rows_upload_xform(vk, data, rows, rb, repack_xform, &ret->type, &ret->w);
    } else if (!data2) {
        err = vkr_rows_upload(vk, data, rows, rb, &ret->w);
    } else {
        err = vkr_rows_alloc(vk, rows, rb, &ret->w);
        err = err ? err : vkr_rows_write(vk, &ret->w, 0, data, rows / 2);
        err = err ? err : vkr_rows_write(vk, &ret->w, rows / 2, data2, rows / 2);
        if (err)
            vkr_rows_free(vk, &ret->w);
    }
    free(both);
    if (err) {
        snprintf(u->reterr, u->errlen, "uploading '%s': %s", name, vk->err);
        return err;
    }
    u->w->bytes += (uint64_t)rows * rb;
    ret->cm = u->ks->cm && type == LLM_GGML_F16 && rows % 16 == 0 && cols % u->ks->cm_kc == 0 &&
              ret->w.n_chunks == 1;
    return 0;
}

static int upload_mat(struct upload *u, const char *name, uint32_t rows, uint32_t cols,
                      struct gpu_mat *ret)
{
    const struct llm_gguf_tensor *t;
    uint64_t rb;
    int err = find_mat(u, name, cols, &t, &rb);
    return err ? err : upload_rows(u, name, t->type, t->data, NULL, rows, cols, rb, ret);
}

/* Gate and up of a layer as one buffer of 2 ffn rows (gpu_layer.wgu), when
 * their types match and the pair fits one binding; else each on its own. */
static int upload_gate_up(struct upload *u, struct gpu_layer *L, const char *gate, const char *up)
{
    const struct llm_config *c = u->src->cfg;
    const struct llm_gguf_tensor *tg, *tu;
    uint64_t rb, rbu;
    int err = find_mat(u, gate, c->dim, &tg, &rb);
    err = err ? err : find_mat(u, up, c->dim, &tu, &rbu);
    if (err)
        return err;
    uint64_t half = (uint64_t)c->ffn * rb;
    if (u->src->stack_gate_up && tg->type == tu->type && 2 * half <= vkr_max_binding(u->vk)) {
        err = upload_rows(u, gate, tg->type, tg->data, tu->data, 2 * c->ffn, c->dim, rb, &L->wgu);
        if (err)
            return err;
        if (L->wgu.w.n_chunks == 1) {
            L->fused_gu = true;
            return 0;
        }
        u->w->bytes -= 2 * half; /* (chunked after all: rows not a whole number of chunks) */
        vkr_rows_free(u->vk, &L->wgu.w);
    }
    err = upload_rows(u, gate, tg->type, tg->data, NULL, c->ffn, c->dim, rb, &L->wg);
    return err ? err : upload_rows(u, up, tu->type, tu->data, NULL, c->ffn, c->dim, rbu, &L->wu);
}

/* Norm weights go up as f32 whatever their stored type. */
static int upload_vec(struct upload *u, const char *name, uint32_t n, struct vkr_buf *ret)
{
    const struct llm_gguf *gguf = u->src->gguf;
    const struct llm_gguf_tensor *t = llm_gguf_find_tensor(gguf, name);
    float *tmp = malloc((size_t)n * sizeof(float));
    int err = !t ? -ENOENT : !tmp ? -ENOMEM : llm_dequant_row(t->type, t->data, tmp, n);
    if (!err)
        err = vkr_buf_new(u->vk, (VkDeviceSize)n * 4, VKR_MEM_DEVICE, ret);
    if (!err)
        err = vkr_buf_upload(u->vk, ret, 0, tmp, (VkDeviceSize)n * 4);
    if (err)
        snprintf(u->reterr, u->errlen, "%s: tensor '%s': %s", llm_gguf_name(gguf), name,
                 err == -ENOENT  ? "missing" :
                 err == -ENOTSUP ? "unsupported type" :
                                   u->vk->err);
    free(tmp);
    return err;
}

/* The vectors only some architectures have (llama/config.h). */
static int upload_layer_extras(struct upload *u, int l)
{
    const struct llm_config *c = u->src->cfg;
    struct gpu_layer *L = &u->w->layers[l];
    const char *qkv[3] = { "attn_q", "attn_k", "attn_v" };
    struct vkr_buf *b[3] = { &L->bq, &L->bk, &L->bv };
    char nn[128];
    int err = 0;
    for (int i = 0; c->qkv_bias && !err && i < 3; i++)
        if (!(err = llm_config_bias_name(nn, sizeof(nn), l, qkv[i])))
            err = upload_vec(u, nn, i ? u->src->kvdim : u->src->qdim, b[i]);
    if (c->qk_norm && !err && !(err = llm_config_tensor_name(nn, sizeof(nn), l, "attn_q_norm")))
        err = upload_vec(u, nn, c->head_dim, &L->q_norm);
    if (c->qk_norm && !err && !(err = llm_config_tensor_name(nn, sizeof(nn), l, "attn_k_norm")))
        err = upload_vec(u, nn, c->head_dim, &L->k_norm);
    return err;
}

static int upload_layer(struct upload *u, int l)
{
    const struct llm_config *c = u->src->cfg;
    uint32_t qdim = u->src->qdim, kvdim = u->src->kvdim;
    struct gpu_layer *L = &u->w->layers[l];
    char n[7][128];
    const char *suffix[7] = { "attn_q",   "attn_k", "attn_v",  "attn_output",
                              "ffn_gate", "ffn_up", "ffn_down" };
    for (int i = 0; i < 7; i++)
        llm_config_tensor_name(n[i], sizeof(n[i]), l, suffix[i]);
    int err = upload_mat(u, n[0], qdim, c->dim, &L->wq);
    err = err ? err : upload_mat(u, n[1], kvdim, c->dim, &L->wk);
    err = err ? err : upload_mat(u, n[2], kvdim, c->dim, &L->wv);
    err = err ? err : upload_mat(u, n[3], c->dim, qdim, &L->wo);
    err = err ? err : upload_gate_up(u, L, n[4], n[5]);
    err = err ? err : upload_mat(u, n[6], c->dim, c->ffn, &L->wd);
    char nn[128];
    if (!err && !(err = llm_config_tensor_name(nn, sizeof(nn), l, "attn_norm")))
        err = upload_vec(u, nn, c->dim, &L->attn_norm);
    if (!err && !(err = llm_config_tensor_name(nn, sizeof(nn), l, "ffn_norm")))
        err = upload_vec(u, nn, c->dim, &L->ffn_norm);
    err = err ? err : upload_layer_extras(u, l);
    if (err && !u->reterr[0])
        snprintf(u->reterr, u->errlen, "layer %d: %s", l, u->vk->err);
    return err;
}

int gpu_weights_upload(struct gpu_weights *w, struct vkr_ctx *vk, struct gpu_kernels *ks,
                       const struct gpu_weights_src *src, char *reterr, size_t errlen)
{
    struct upload u = { w, vk, ks, src, reterr, errlen };
    const struct llm_config *c = src->cfg;
    int err = vkr_upload_begin(vk);
    if (err) {
        snprintf(reterr, errlen, "staging buffers for the upload: %s", vk->err);
        return err;
    }
    err = upload_mat(&u, "token_embd.weight", c->n_vocab, c->dim, &w->embd);
    if (!err && !c->tied_embeddings)
        err = upload_mat(&u, "output.weight", c->n_vocab, c->dim, &w->head);
    if (!err && c->tied_embeddings) {
        w->head = w->embd; /* shares the chunks; freed once */
        memset(w->head.set, 0, sizeof(w->head.set));
        w->bytes += w->embd.w.n_rows * w->embd.w.row_bytes;
    }
    err = err ? err : upload_vec(&u, "output_norm.weight", c->dim, &w->out_norm);
    if (!err && !(w->layers = calloc(c->n_layers, sizeof(*w->layers))))
        err = -ENOMEM;
    for (uint32_t l = 0; !err && l < c->n_layers; l++)
        err = upload_layer(&u, (int)l);
    int end = vkr_upload_end(vk);
    if (!err && end) {
        snprintf(reterr, errlen, "uploading the weights: %s", vk->err);
        err = end;
    }
    return err;
}

void gpu_weights_free(struct gpu_weights *w, struct vkr_ctx *vk, const struct llm_config *c)
{
    for (uint32_t l = 0; w->layers && l < c->n_layers; l++) {
        struct gpu_layer *L = &w->layers[l];
        struct gpu_mat *mats[] = { &L->wq, &L->wk, &L->wv, &L->wo, &L->wg, &L->wu, &L->wd, &L->wgu };
        for (size_t i = 0; i < sizeof(mats) / sizeof(mats[0]); i++)
            vkr_rows_free(vk, &mats[i]->w);
        struct vkr_buf *vecs[] = { &L->attn_norm, &L->ffn_norm, &L->bq,    &L->bk,
                                   &L->bv,        &L->q_norm,   &L->k_norm };
        for (size_t i = 0; i < sizeof(vecs) / sizeof(vecs[0]); i++)
            vkr_buf_free(vk, vecs[i]);
    }
    vkr_rows_free(vk, &w->embd.w);
    if (!c->tied_embeddings)
        vkr_rows_free(vk, &w->head.w);
    vkr_buf_free(vk, &w->out_norm);
    free(w->layers);
    w->layers = NULL;
}
