/* Descriptor sets, all made at load time: which buffer each kernel's
 * binding (gpu_kernels.h's B_* names) sees in each place it runs. */
#include <stdio.h>

#include "llama/gpu_internal.h"

/* A set for kernel k from bindings listed by their B_* index. */
static int make_set(struct llm_model *m, enum gpu_kernel_id k, const struct vkr_buf *const *bufs,
                    VkDescriptorSet *ret)
{
    struct vkr_binding bd[VKR_MAX_BINDINGS] = { { 0 } };
    for (uint32_t i = 0; i < m->ks.k[k].n_bindings; i++)
        bd[i] = (struct vkr_binding){ bufs[i], 0, 0 };
    return vkr_set_new(m->vk, &m->pool, &m->ks.k[k], bd, m->ks.k[k].n_bindings, ret);
}

/* What a matrix's set binds besides its weights, input and output: the
 * KV cache its fused epilogue writes (K's or V's; K's with `cache2` V's
 * for the stacked Q/K/V); with MM_NORM, the residual `xr`; with
 * MM_NORM_OUT, the next norm's weights `nw` and x times them `xn`. NULL:
 * not used by this product. */
struct mat_extra {
    const struct vkr_buf *cache, *cache2, *xr, *nw, *xn;
};

/* One set per chunk of a matrix. */
static int mat_sets(struct llm_model *m, struct gpu_mat *g, const struct vkr_buf *in,
                    const struct vkr_buf *out, struct mat_extra e)
{
    const struct vkr_buf *any = &m->io.sel; /* bound where a product reads nothing */
    for (uint32_t c = 0; c < g->w.n_chunks; c++) {
        struct vkr_binding bd[B_MM_N + 1] = {
            [B_MM_W] = { &g->w.chunk[c], 0, 0 },
            [B_MM_X] = { in, 0, 0 },
            [B_MM_Y] = { out, 0, 0 },
            [B_MM_SEL] = { &m->io.sel, 0, 0 },
            [B_MM_CACHE] = { e.cache ? e.cache : any, 0, 0 },
            [B_MM_POS] = { &m->io.pos, 0, 0 },
            [B_MM_NW] = { e.nw ? e.nw : any, 0, 0 },
            [B_MM_CACHE2] = { e.cache2 ? e.cache2 : any, 0, 0 },
            [B_MM_XR] = { e.xr ? e.xr : any, 0, 0 },
            [B_MM_XN] = { e.xn ? e.xn : any, 0, 0 },
            [B_MM_COUNTS] = { &m->counts, 0, 0 }, /* the counting variant only */
        };
        /* Every geometry's pipeline has an identically defined set layout,
         * so one set serves any. */
        int err = vkr_set_new(m->vk, &m->pool, g->kernel[0], bd, B_MM_N + m->ks.count, &g->set[c]);
        if (err)
            return err;
    }
    return 0;
}

/* The biases' and the head norms' sets, where the model has them. */
static int layer_extra_sets(struct llm_model *m, uint32_t l)
{
    struct gpu_layer *L = &m->w.layers[l];
    const struct gpu_acts *a = &m->act;
    const struct vkr_buf *y[3] = { &a->q, &a->kk, &a->vv }, *b[3] = { &L->bq, &L->bk, &L->bv };
    const struct vkr_buf *qkn[B_QKN_N] = {
        [B_QKN_Q] = &a->q, [B_QKN_K] = &a->kk, [B_QKN_QW] = &L->q_norm, [B_QKN_KW] = &L->k_norm
    };
    int err = 0;
    for (int i = 0; m->cfg.qkv_bias && !err && i < 3; i++) {
        const struct vkr_buf *bias[B_BIAS_N] = { [B_BIAS_Y] = y[i], [B_BIAS_B] = b[i] };
        err = make_set(m, K_BIAS, bias, &L->s_bias[i]);
    }
    if (m->cfg.qk_norm && !err)
        err = make_set(m, K_QK_NORM, qkn, &L->s_qk_norm);
    return err;
}

static int layer_sets(struct llm_model *m, uint32_t l)
{
    struct gpu_layer *L = &m->w.layers[l];
    const struct gpu_acts *a = &m->act;
    const struct vkr_buf *kc = &m->kv.kc[l], *vc = &m->kv.vc[l];
    const struct vkr_buf *norm1[B_NORM_N] = {
        [B_NORM_X] = &a->x, [B_NORM_W] = &L->attn_norm, [B_NORM_Y] = &a->xn, [B_NORM_SEL] = &m->io.sel
    };
    const struct vkr_buf *norm2[B_NORM_N] = {
        [B_NORM_X] = &a->x, [B_NORM_W] = &L->ffn_norm, [B_NORM_Y] = &a->xn, [B_NORM_SEL] = &m->io.sel
    };
    const struct vkr_buf *rope[B_ROPE_N] = {
        [B_ROPE_Q] = &a->q, [B_ROPE_K] = &a->kk, [B_ROPE_V] = &a->vv,
        [B_ROPE_KC] = kc,   [B_ROPE_VC] = vc,    [B_ROPE_POS] = &m->io.pos
    };
    const struct vkr_buf *att[B_ATT_N] = {
        [B_ATT_Q] = &a->q,     [B_ATT_KC] = kc,           [B_ATT_VC] = vc,
        [B_ATT_OUT] = &a->att, [B_ATT_ROWS] = &m->io.att, [B_ATT_PART] = &a->att_part
    };
    const struct vkr_buf *commit[B_COMMIT_N] = {
        [B_COMMIT_KC] = kc, [B_COMMIT_VC] = vc, [B_COMMIT_MOVES] = &m->kv.moves
    };
    int err = make_set(m, K_RMSNORM, norm1, &L->s_norm1);
    err = err ? err : make_set(m, K_RMSNORM, norm2, &L->s_norm2);
    /* With the epilogues (m->fuse) the norms are folded in: the products
     * that follow a norm read xn, x times the norm's weights, which the
     * residual add before them wrote (the embedding before the first
     * layer's), and x for the scale; Wo's adds write xn for the FFN's
     * norm, Wd's for the next layer's (the last layer's for the final
     * norm, where the head folds it in). */
    const struct vkr_buf *xn = &a->xn;
    struct mat_extra nrm = { .xr = m->fuse ? &a->x : NULL };
    struct mat_extra k = nrm, v = nrm, kv = nrm;
    k.cache = kv.cache = kc;
    v.cache = kv.cache2 = vc;
    struct mat_extra wo = { .nw = m->fuse ? &L->ffn_norm : NULL, .xn = xn };
    struct mat_extra wd = { .nw = gpu_norm_after(m, l), .xn = xn };
    err = err ? err : mat_sets(m, &L->wq, xn, &a->q, nrm);
    err = err ? err : mat_sets(m, &L->wk, xn, &a->kk, k);
    err = err ? err : mat_sets(m, &L->wv, xn, &a->vv, v);
    err = err ? err : mat_sets(m, &L->wqkv, xn, &a->q, kv);
    err = err ? err : mat_sets(m, &L->wo, &a->att, &a->x, wo);
    err = err ? err : mat_sets(m, &L->wg, xn, &a->g, nrm);
    err = err ? err : mat_sets(m, &L->wu, xn, &a->g, nrm);
    err = err ? err : mat_sets(m, &L->wgu, xn, &a->g, nrm);
    err = err ? err : mat_sets(m, &L->wd, &a->g, &a->x, wd);
    err = err ? err : make_set(m, K_ROPE_KV, rope, &L->s_rope);
    err = err ? err : make_set(m, K_ATTENTION, att, &L->s_att);
    err = err ? err : make_set(m, K_KV_COMMIT, commit, &L->s_commit);
    return err ? err : layer_extra_sets(m, l);
}

/* The head's sets and the shared ones. */
static int head_sets(struct llm_model *m)
{
    const struct gpu_acts *a = &m->act;
    struct gpu_sets *s = &m->sets;
    const struct vkr_buf *norm[B_NORM_N] = {
        [B_NORM_X] = &a->x, [B_NORM_W] = &m->w.out_norm, [B_NORM_Y] = &a->xf, [B_NORM_SEL] = &m->io.sel
    };
    const struct vkr_buf *argmax[B_ARGMAX_N] = {
        [B_ARGMAX_LOGITS] = &a->logits, [B_ARGMAX_OUT] = &a->amax
    };
    const struct vkr_buf *draw[B_DRAW_N] = {
        [B_DRAW_LOGITS] = &a->logits, [B_DRAW_ROWS] = &m->io.drawrow, [B_DRAW_OUT] = &a->amax
    };
    const struct vkr_buf *pen[B_PEN_N] = { [B_PEN_LOGITS] = &a->logits, [B_PEN_LISTS] = &m->io.pen };
    const struct vkr_buf *topk[B_TOPK_N] = {
        [B_TOPK_LOGITS] = &a->logits, [B_TOPK_ROWS] = &m->io.toprow, [B_TOPK_OUT] = &a->cand
    };
    const struct vkr_buf *swiglu[B_SWIGLU_N] = { [B_SWIGLU_GU] = &a->g };
    const struct vkr_buf *merge[B_MERGE_N] = {
        [B_MERGE_PART] = &a->att_part, [B_MERGE_OUT] = &a->att, [B_MERGE_ARGS] = &m->io.stepargs
    };
    int err = 0;
    for (uint32_t c = 0; !err && c < m->w.embd.w.n_chunks; c++) {
        /* fused, x times the first layer's attention norm into xn (the
         * set binds both either way) */
        const struct vkr_buf *embed[B_EMBED_N] = {
            [B_EMBED_W] = &m->w.embd.w.chunk[c],
            [B_EMBED_TOK] = &m->io.tokens,
            [B_EMBED_X] = &a->x,
            [B_EMBED_NW] = &m->w.layers[0].attn_norm,
            [B_EMBED_XN] = &a->xn,
        };
        err = make_set(m, K_EMBED, embed, &m->w.embd.set[c]);
    }
    struct mat_extra head = { .xr = m->fuse_norm_head ? &a->x : NULL };
    err = err ? err :
                mat_sets(m, &m->w.head, m->fuse_norm_head ? &a->xn : &a->xf, &a->logits, head);
    err = err ? err : make_set(m, K_RMSNORM, norm, &s->final_norm);
    err = err ? err : make_set(m, K_ARGMAX, argmax, &s->argmax);
    err = err ? err : make_set(m, K_DRAW, draw, &s->draw);
    err = err ? err : make_set(m, K_PENALTY, pen, &s->penalty);
    err = err ? err : make_set(m, K_TOPK, topk, &s->topk);
    err = err ? err : make_set(m, K_SWIGLU, swiglu, &s->swiglu);
    err = err ? err : make_set(m, K_ATTN_MERGE, merge, &s->att_merge);
    return err;
}

int gpu_sets_build(struct llm_model *m, char *reterr, size_t errlen)
{
    const struct gpu_weights *w = &m->w;
    uint32_t n_sets = 7 + w->embd.w.n_chunks + w->head.w.n_chunks;
    for (uint32_t l = 0; l < m->cfg.n_layers; l++) {
        const struct gpu_layer *L = &w->layers[l];
        n_sets += 9 + L->wq.w.n_chunks + L->wk.w.n_chunks + L->wv.w.n_chunks + L->wqkv.w.n_chunks +
                  L->wo.w.n_chunks + L->wg.w.n_chunks + L->wu.w.n_chunks + L->wgu.w.n_chunks +
                  L->wd.w.n_chunks;
    }
    /* the matrices' sets are the largest (their counters' binding too) */
    int err = vkr_set_pool_new(m->vk, n_sets, n_sets * (B_MM_N + 1), &m->pool);
    err = err ? err : head_sets(m);
    for (uint32_t l = 0; !err && l < m->cfg.n_layers; l++)
        err = layer_sets(m, l);
    if (err)
        snprintf(reterr, errlen, "descriptor sets: %s", m->vk->err);
    return err;
}
