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

/* Rows of one tensor, a part of a stacked matrix. */
struct part {
    const void *data;
    uint32_t rows;
};

/* The rows of `n` parts, stacked in order, of `rb` bytes each and ggml
 * type `type`, into ret (one part: a tensor as it is; more: gate and up,
 * or Q, K and V, stacked). */
static int upload_rows(struct upload *u, const char *name, uint32_t type, const struct part *parts,
                       int n, uint32_t cols, uint64_t rb, struct gpu_mat *ret)
{
    struct vkr_ctx *vk = u->vk;
    if (u->src->cancel && u->src->cancel(u->src->cancel_ud))
        return llm_fail(u->reterr, u->errlen, -ECANCELED, "cancelled before '%s' went up", name);
    uint32_t rows = 0;
    for (int i = 0; i < n; i++)
        rows += parts[i].rows;
    ret->type = type;
    ret->rows = rows;
    ret->cols = cols;
    int err = gpu_kernels_matmul(u->ks, vk, type, ret->kernel);
    if (err) {
        snprintf(u->reterr, u->errlen, "%s", vk->err);
        return err;
    }
    const void *data = parts[0].data;
    uint8_t *joined = NULL;
    if (n > 1 && llm_repacked(type)) {
        /* The repacked layout puts every row's quants before every row's
         * scales, so the parts are joined on the host first. */
        if (!(joined = malloc((size_t)rows * rb)))
            return -ENOMEM;
        uint64_t off = 0;
        for (int i = 0; i < n; i++) {
            memcpy(joined + off, parts[i].data, (size_t)parts[i].rows * rb);
            off += (uint64_t)parts[i].rows * rb;
        }
        data = joined;
    }
    if (llm_repacked(type)) {
        err = vkr_rows_upload_xform(vk, data, rows, rb, repack_xform, &ret->type, &ret->w);
    } else if (n == 1) {
        err = vkr_rows_upload(vk, data, rows, rb, &ret->w);
    } else {
        err = vkr_rows_alloc(vk, rows, rb, &ret->w);
        for (int i = 0, r0 = 0; i < n && !err; r0 += (int)parts[i++].rows)
            err = vkr_rows_write(vk, &ret->w, (uint64_t)r0, parts[i].data, parts[i].rows);
        if (err)
            vkr_rows_free(vk, &ret->w);
    }
    free(joined);
    if (err) {
        snprintf(u->reterr, u->errlen, "uploading '%s': %s", name, vk->err);
        return err;
    }
    u->w->bytes += (uint64_t)rows * rb;
    ret->bytes = (uint64_t)rows * rb;
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
    struct part one = { err ? NULL : t->data, rows };
    return err ? err : upload_rows(u, name, t->type, &one, 1, cols, rb, ret);
}

/* Rows of n parts, of one type and rb bytes each, laid out at dst as one
 * matrix on the GPU would be (joined, then repacked where the format is;
 * tmp: room for them). */
static int place_parts(uint32_t type, const struct part *parts, int n, uint64_t rb, uint8_t *tmp,
                       uint8_t *dst)
{
    uint64_t rows = 0;
    uint8_t *at = llm_repacked(type) ? tmp : dst;
    for (int i = 0; i < n; i++) {
        memcpy(at + rows * rb, parts[i].data, (size_t)(parts[i].rows * rb));
        rows += parts[i].rows;
    }
    return llm_repacked(type) ? llm_repack_rows(type, tmp, rows, rb, dst) : 0;
}

/* A stack whose first n_head parts are of one format and the rest of
 * another (Q4_K_M: Q and K in Q4_K, V in Q6_K), still one product: each
 * run of parts laid out as a matrix of its own, the tail's from the
 * first 16-byte word after the head's, and pipelines that decode each
 * row by its part's format (weights.glsl's tail). A row's arithmetic is
 * its format's whichever kernel reads it. -ENOTSUP where it cannot be
 * (the caller stacks less): the head not whole 16-byte words, more than
 * one binding, no room for more pipelines, or the integer path taking
 * one of the formats only. */
static int upload_mixed(struct upload *u, const char *name, const struct llm_gguf_tensor *const *t,
                        const struct part *parts, const uint64_t *rb, int n, int n_head,
                        uint32_t cols, struct gpu_mat *ret)
{
    uint64_t hb = 0, tb = 0;
    uint32_t hr = 0, tr = 0;
    for (int i = 0; i < n; i++) {
        uint64_t b = parts[i].rows * rb[i];
        if (i < n_head) {
            hb += b;
            hr += parts[i].rows;
        } else {
            tb += b;
            tr += parts[i].rows;
        }
    }
    if (hb % 16 || hb / 16 > UINT32_MAX || hb + tb > vkr_max_binding(u->vk))
        return -ENOTSUP;
    struct gpu_mm_tail tail = { hr, t[n_head]->type, (uint32_t)(hb / 16) };
    int err = gpu_kernels_matmul_mixed(u->ks, u->vk, t[0]->type, &tail, ret->kernel);
    if (err == -ENOTSUP || err == -ENOSPC)
        return -ENOTSUP;
    if (err) {
        snprintf(u->reterr, u->errlen, "%s", u->vk->err);
        return err;
    }
    uint8_t *blob = malloc((size_t)(hb + tb)), *tmp = malloc((size_t)(hb > tb ? hb : tb));
    err = !blob || !tmp ? -ENOMEM : place_parts(t[0]->type, parts, n_head, rb[0], tmp, blob);
    err = err ? err :
                place_parts(tail.type, parts + n_head, n - n_head, rb[n_head], tmp, blob + hb);
    free(tmp);
    if (err)
        snprintf(u->reterr, u->errlen, "laying out '%s' and the rows after it: %s", name,
                 err == -ENOMEM ? "out of memory" : "not whole blocks");
    else if ((err = vkr_rows_upload_parts(u->vk, blob, hr + tr, hb + tb, &ret->w)) != 0)
        snprintf(u->reterr, u->errlen, "uploading '%s': %s", name, u->vk->err);
    free(blob);
    if (err)
        return err;
    ret->type = t[0]->type;
    ret->rows = hr + tr;
    ret->cols = cols;
    ret->bytes = hb + tb;
    ret->tail = tail;
    ret->cm = false;
    u->w->bytes += hb + tb;
    return 0;
}

/* Matrices of `n` tensors that take the same input, stacked in one buffer
 * (`stacked`) when the caller allows it and they fit one chunk: all of
 * them where they are of one format, or of two where the parts after the
 * first format's are all of the second (upload_mixed); else the first
 * `min_n` or more, as many as share the first one's type. *ret_stacked:
 * how many were stacked (0: none); the rest go up on their own into
 * `each`. */
static int upload_stack(struct upload *u, bool allow, const char *const *names,
                        const uint32_t *rows, int n, int min_n, uint32_t cols,
                        struct gpu_mat *stacked, struct gpu_mat *const *each, uint32_t *ret_stacked)
{
    const struct llm_gguf_tensor *t[3];
    uint64_t rb[3], bytes = 0;
    struct part parts[3];
    int same = 0; /* the leading tensors of the first one's type */
    bool two = true; /* the others all of one second type */
    *ret_stacked = 0;
    for (int i = 0; i < n; i++) {
        int err = find_mat(u, names[i], cols, &t[i], &rb[i]);
        if (err)
            return err;
        parts[i] = (struct part){ t[i]->data, rows[i] };
        if (same == i && t[i]->type == t[0]->type) {
            same++;
            bytes += rows[i] * rb[i];
        } else if (t[i]->type != t[same]->type) {
            two = false;
        }
    }
    if (allow && same < n && two) {
        int err = upload_mixed(u, names[0], t, parts, rb, n, same, cols, stacked);
        if (!err)
            *ret_stacked = (uint32_t)n;
        if (err != -ENOTSUP)
            return err;
    }
    int first = 0; /* the first tensor going up on its own */
    if (allow && same >= min_n && bytes <= vkr_max_binding(u->vk)) {
        int err = upload_rows(u, names[0], t[0]->type, parts, same, cols, rb[0], stacked);
        if (err)
            return err;
        if (stacked->w.n_chunks == 1) {
            *ret_stacked = (uint32_t)same;
            first = same;
        } else {
            u->w->bytes -= bytes; /* (chunked after all: rows not a whole number of chunks) */
            vkr_rows_free(u->vk, &stacked->w);
        }
    }
    for (int i = first; i < n; i++) {
        int err = upload_rows(u, names[i], t[i]->type, &parts[i], 1, cols, rb[i], each[i]);
        if (err)
            return err;
    }
    return 0;
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
    /* Q, K and V as one matrix (gpu_layer.wqkv), gate and up as one
     * (gpu_layer.wgu), where they can be: a product each. */
    const char *qkv[3] = { n[0], n[1], n[2] }, *gu[2] = { n[4], n[5] };
    const uint32_t qkv_rows[3] = { qdim, kvdim, kvdim }, gu_rows[2] = { c->ffn, c->ffn };
    struct gpu_mat *const qkv_each[3] = { &L->wq, &L->wk, &L->wv }, *const gu_each[2] = { &L->wg,
                                                                                          &L->wu };
    uint32_t n_gu = 0;
    int err = upload_stack(u, u->src->stack_qkv, qkv, qkv_rows, 3, 2, c->dim, &L->wqkv, qkv_each,
                           &L->n_qkv);
    err = err ? err : upload_mat(u, n[3], c->dim, qdim, &L->wo);
    err = err ? err :
                upload_stack(u, u->src->stack_gate_up, gu, gu_rows, 2, 2, c->dim, &L->wgu, gu_each,
                             &n_gu);
    L->fused_gu = n_gu == 2;
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
        w->bytes += w->embd.bytes;
    }
    /* The head on the float path: its products are the logits, which
     * an 8-bit rounding of its input would move with nothing after it to
     * average the error out (docs/kernels.md, integer path). */
    if (!err && (err = gpu_kernels_matmul_float(ks, vk, w->head.type, w->head.kernel)) != 0)
        snprintf(reterr, errlen, "%s", vk->err);
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
        struct gpu_mat *mats[] = { &L->wq, &L->wk, &L->wv,  &L->wo,  &L->wg,
                                   &L->wu, &L->wd, &L->wgu, &L->wqkv };
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
