/* One forward step on the GPU: the descriptor sets made at load time, the
 * recording of a step (one command buffer, one submit, one fence), and the
 * model-step interface of decoding/dec.h on top of it. */
#include "llama/gpu_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Push-constant blocks, mirrored by the shaders named in each comment. */
struct pc_embed { uint32_t dim, ntok, row0, nrows; };                                /* embed.comp */
struct pc_norm { uint32_t dim, gather; float eps; };                                 /* rmsnorm.comp */
struct pc_rope { uint32_t ntok, qdim, kvdim, head_dim, rope_dims, slot0; float theta; }; /* rope_kv.comp */
struct pc_att { uint32_t slot0, head_dim, n_heads, kvdim; float scale; uint32_t max_split; }; /* attention.comp */
struct pc_att_merge { uint32_t head_dim, n_heads, max_split; };                      /* attn_merge.comp */
struct pc_draw { uint32_t n_vocab, out_off; float inv_t, min_p, top_p; };             /* draw.comp */
struct pc_penalty { uint32_t n_vocab, max_rows, stride; float penalty, inv_penalty; }; /* penalty.comp */
struct pc_topk { uint32_t n_vocab, k; float inv_t; };                                  /* topk.comp */

#define MM_ACCUMULATE 1u
#define MM_GATHER 2u
/* matmul.comp's fused epilogues */
enum { EPI_NONE, EPI_SWIGLU, EPI_ROPE, EPI_ROPE_CACHE, EPI_CACHE };

static int set4(struct llm_model *m, enum gpu_kernel_id k, const struct vkr_buf *a, const struct vkr_buf *b,
                const struct vkr_buf *c, const struct vkr_buf *d, VkDescriptorSet *ret)
{
    struct vkr_binding bd[4] = {{a, 0, 0}, {b, 0, 0}, {c, 0, 0}, {d, 0, 0}};
    return vkr_set_new(m->vk, &m->pool, &m->k[k], bd, m->k[k].n_bindings, ret);
}

/* `cache`: the KV cache a fused epilogue writes (K's or V's), else NULL. */
static int mat_sets(struct llm_model *m, struct gpu_mat *g, const struct vkr_buf *in, const struct vkr_buf *out,
                    const struct vkr_buf *cache)
{
    for (uint32_t c = 0; c < g->w.n_chunks; c++) {
        struct vkr_binding bd[6] = {{&g->w.chunk[c], 0, 0}, {in, 0, 0},  {out, 0, 0},
                                    {&m->sel, 0, 0}, {cache ? cache : &m->sel, 0, 0}, {&m->pos, 0, 0}};
        /* Every geometry's pipeline has an identically defined set layout,
         * so one set serves any. */
        int err = vkr_set_new(m->vk, &m->pool, g->kernel[0], bd, 6, &g->set[c]);
        if (err)
            return err;
    }
    return 0;
}

static int layer_sets(struct llm_model *m, struct gpu_layer *L)
{
    int err = set4(m, K_RMSNORM, &m->x, &L->attn_norm, &m->xn, &m->sel, &L->s_norm1);
    err = err ? err : set4(m, K_RMSNORM, &m->x, &L->ffn_norm, &m->xn, &m->sel, &L->s_norm2);
    err = err ? err : mat_sets(m, &L->wq, &m->xn, &m->q, NULL);
    err = err ? err : mat_sets(m, &L->wk, &m->xn, &m->kk, &L->kc);
    err = err ? err : mat_sets(m, &L->wv, &m->xn, &m->vv, &L->vc);
    err = err ? err : mat_sets(m, &L->wo, &m->att, &m->x, NULL);
    err = err ? err : mat_sets(m, &L->wg, &m->xn, &m->g, NULL);
    err = err ? err : mat_sets(m, &L->wu, &m->xn, &m->g, NULL);
    err = err ? err : mat_sets(m, &L->wgu, &m->xn, &m->g, NULL);
    err = err ? err : mat_sets(m, &L->wd, &m->g, &m->x, NULL);
    if (!err) {
        struct vkr_binding r[6] = {{&m->q, 0, 0}, {&m->kk, 0, 0}, {&m->vv, 0, 0},
                                   {&L->kc, 0, 0}, {&L->vc, 0, 0}, {&m->pos, 0, 0}};
        err = vkr_set_new(m->vk, &m->pool, &m->k[K_ROPE_KV], r, 6, &L->s_rope);
    }
    if (!err) {
        struct vkr_binding a[7] = {{&m->q, 0, 0},   {&L->kc, 0, 0},     {&L->vc, 0, 0},   {&m->att, 0, 0},
                                   {&m->parent, 0, 0}, {&m->att_part, 0, 0}, {&m->pos, 0, 0}};
        err = vkr_set_new(m->vk, &m->pool, &m->k[K_ATTENTION], a, 7, &L->s_att);
    }
    if (!err) {
        struct vkr_binding mv[3] = {{&L->kc, 0, 0}, {&L->vc, 0, 0}, {&m->moves, 0, 0}};
        err = vkr_set_new(m->vk, &m->pool, &m->k[K_KV_COMMIT], mv, 3, &L->s_commit);
    }
    return err;
}

int gpu_model_build_sets(struct llm_model *m, char *reterr, size_t errlen)
{
    uint32_t n_sets = 7 + m->embd.w.n_chunks + m->head.w.n_chunks;
    for (uint32_t l = 0; l < m->cfg.n_layers; l++) {
        struct gpu_layer *L = &m->layers[l];
        n_sets += 5 + L->wq.w.n_chunks + L->wk.w.n_chunks + L->wv.w.n_chunks + L->wo.w.n_chunks +
                  L->wg.w.n_chunks + L->wu.w.n_chunks + L->wgu.w.n_chunks + L->wd.w.n_chunks;
    }
    int err = vkr_set_pool_new(m->vk, n_sets, n_sets * 7, &m->pool);
    for (uint32_t c = 0; !err && c < m->embd.w.n_chunks; c++) {
        struct vkr_binding bd[3] = {{&m->embd.w.chunk[c], 0, 0}, {&m->tokens, 0, 0}, {&m->x, 0, 0}};
        err = vkr_set_new(m->vk, &m->pool, &m->k[K_EMBED], bd, 3, &m->embd.set[c]);
    }
    err = err ? err : mat_sets(m, &m->head, &m->xf, &m->logits, NULL);
    err = err ? err : set4(m, K_RMSNORM, &m->x, &m->out_norm, &m->xf, &m->sel, &m->s_final_norm);
    if (!err) {
        struct vkr_binding bd[2] = {{&m->logits, 0, 0}, {&m->amax, 0, 0}};
        err = vkr_set_new(m->vk, &m->pool, &m->k[K_ARGMAX], bd, 2, &m->s_argmax);
    }
    if (!err) {
        struct vkr_binding bd[3] = {{&m->logits, 0, 0}, {&m->drawrow, 0, 0}, {&m->amax, 0, 0}};
        err = vkr_set_new(m->vk, &m->pool, &m->k[K_DRAW], bd, 3, &m->s_draw);
    }
    if (!err) {
        struct vkr_binding bd[2] = {{&m->logits, 0, 0}, {&m->pen, 0, 0}};
        err = vkr_set_new(m->vk, &m->pool, &m->k[K_PENALTY], bd, 2, &m->s_penalty);
    }
    if (!err) {
        struct vkr_binding bd[3] = {{&m->logits, 0, 0}, {&m->toprow, 0, 0}, {&m->cand, 0, 0}};
        err = vkr_set_new(m->vk, &m->pool, &m->k[K_TOPK], bd, 3, &m->s_topk);
    }
    if (!err) {
        struct vkr_binding bd[1] = {{&m->g, 0, 0}};
        err = vkr_set_new(m->vk, &m->pool, &m->k[K_SWIGLU], bd, 1, &m->s_swiglu);
    }
    if (!err) {
        struct vkr_binding bd[3] = {{&m->att_part, 0, 0}, {&m->att, 0, 0}, {&m->stepargs, 0, 0}};
        err = vkr_set_new(m->vk, &m->pool, &m->k[K_ATTN_MERGE], bd, 3, &m->s_att_merge);
    }
    for (uint32_t l = 0; !err && l < m->cfg.n_layers; l++)
        err = layer_sets(m, &m->layers[l]);
    if (err)
        snprintf(reterr, errlen, "descriptor sets: %s", m->vk->err);
    return err;
}

/* The barrier that ends a phase of the step; when profiling, a timestamp
 * after it, so that the time since the previous one is charged to `ph`. */
static void end_phase(struct llm_model *m, enum llm_prof_phase ph)
{
    vkr_cmd_barrier(&m->cmd);
    if (m->profiling) {
        int i = vkr_cmd_timestamp(m->vk, &m->cmd);
        if (i >= 0 && (uint32_t)i < m->prof_cap)
            m->prof_phase[i] = (uint8_t)ph;
    }
}

/* Y (+)= W X over `ntok` rows, one dispatch per weight chunk; output row r
 * of token t lands at Y[t * y_stride + y_base + r]. */
static void rec_matmul_epi(struct llm_model *m, const struct gpu_mat *g, uint32_t ntok, uint32_t x_stride,
                           uint32_t y_stride, uint32_t y_base, uint32_t flags, uint32_t epi)
{
    /* Decode-sized steps one geometry, wide steps the other (the same
     * results either way: matmul.comp). A wide step over a small matrix
     * keeps the decode geometry: the wide one's workgroups cover more rows
     * and would leave a GPU half idle (kernelc-22m's 512-row matrices at
     * a 25-row lookahead step ran at half speed). */
    if (g->cm && epi == EPI_NONE) {
        /* The matrix units: up to 16 tokens 16 rows a workgroup, wider
         * steps 32 tokens and 64 rows (the same sums, matmul_cm.comp). */
        int w = ntok > 16;
        uint32_t tt = w ? 32 : 16, blocks = (g->rows + (w ? 63 : 15)) / (w ? 64 : 16);
        struct pc_matmul p = {g->cols, g->rows, ntok, x_stride, y_stride, y_base, flags, 0, 0, 0, 0, 0.0f};
        vkr_cmd_dispatch(&m->cmd, &m->mmcm[w], g->set[0], &p, (ntok + tt - 1) / tt, blocks < 32768 ? blocks : 32768,
                         (blocks + 32767) / 32768);
        return;
    }
    int wide = ntok > m->mmg[0].tile && (uint64_t)g->rows * ntok >= m->mm_wide_min;
    if (ntok == 1)
        wide = 2; /* the one-token geometry (gpu_internal.h) */
    const struct gpu_mm_geom *G = &m->mmg[wide];
    const struct llm_config *cf = &m->cfg;
    for (uint32_t c = 0; c < g->w.n_chunks; c++) {
        /* SwiGLU: the chunk holds gate and up, its outputs are half its rows */
        uint32_t n = (uint32_t)vkr_rows_count(&g->w, c) / (epi == EPI_SWIGLU ? 2 : 1);
        uint32_t wgs = (n + G->rows_wg - 1) / G->rows_wg;
        struct pc_matmul p = {g->cols,  n,  ntok, x_stride, y_stride, y_base + (uint32_t)vkr_rows_first(&g->w, c),
                              flags,    epi, cf->head_dim, cf->rope_dims, m->n_ctx, cf->rope_theta};
        /* x: token tiles (fastest, see matmul.comp), y + 32768 z: row blocks */
        vkr_cmd_dispatch(&m->cmd, g->kernel[wide], g->set[c], &p, (ntok + G->tile - 1) / G->tile,
                         wgs < 32768 ? wgs : 32768, (wgs + 32767) / 32768);
    }
}

static void rec_matmul(struct llm_model *m, const struct gpu_mat *g, uint32_t ntok, uint32_t x_stride,
                       uint32_t y_stride, uint32_t y_base, uint32_t flags)
{
    rec_matmul_epi(m, g, ntok, x_stride, y_stride, y_base, flags, EPI_NONE);
}

/* Attention splits of the step's longest row (att_split keys each). */
static uint32_t att_nsplit(const struct llm_model *m)
{
    return (m->step_max_len + m->att_split - 1) / m->att_split;
}

static void rec_layer(struct llm_model *m, uint32_t l, uint32_t n)
{
    const struct llm_config *c = &m->cfg;
    struct gpu_layer *L = &m->layers[l];
    struct vkr_cmd *cmd = &m->cmd;
    struct pc_norm pn = {c->dim, 0, c->rms_eps};
    vkr_cmd_dispatch(cmd, &m->k[K_RMSNORM], L->s_norm1, &pn, n, 1, 1);
    end_phase(m, LLM_PROF_NORM);
    if (m->fuse_rope) {
        /* RoPE and the f16 KV write done by the products themselves (K and
         * V go straight into this step's scratch slots of the cache; the
         * cache's row stride is kvdim). */
        rec_matmul_epi(m, &L->wq, n, c->dim, m->qdim, 0, 0, EPI_ROPE);
        rec_matmul_epi(m, &L->wk, n, c->dim, m->kvdim, 0, 0, EPI_ROPE_CACHE);
        rec_matmul_epi(m, &L->wv, n, c->dim, m->kvdim, 0, 0, EPI_CACHE);
        end_phase(m, LLM_PROF_QKV);
    } else {
        rec_matmul(m, &L->wq, n, c->dim, m->qdim, 0, 0);
        rec_matmul(m, &L->wk, n, c->dim, m->kvdim, 0, 0);
        rec_matmul(m, &L->wv, n, c->dim, m->kvdim, 0, 0);
        end_phase(m, LLM_PROF_QKV);
        struct pc_rope pr = {n, m->qdim, m->kvdim, c->head_dim, c->rope_dims, m->n_ctx, c->rope_theta};
        vkr_cmd_dispatch(cmd, &m->k[K_ROPE_KV], L->s_rope, &pr, (m->qdim / 2 + m->kvdim / 2 + 63) / 64, n, 1);
        end_phase(m, LLM_PROF_ROPE_KV);
    }
    /* Splits of att_split keys: one writes the output, more go through
     * attn_merge (same bits for a row either way, attention.comp). Both
     * dispatches are sized by the host per step (stepargs, gpu_step): the
     * split count follows the length, which a recorded step must not
     * hold. With one split the merge's dispatch is empty. */
    struct pc_att pa = {m->n_ctx, c->head_dim, c->n_heads, m->kvdim, 1.0f / sqrtf((float)c->head_dim),
                        m->att_max_split};
    vkr_cmd_dispatch_indirect(cmd, &m->k[K_ATTENTION], L->s_att, &pa, &m->stepargs, 0);
    if (m->att_max_split > 1) {
        vkr_cmd_barrier(cmd);
        struct pc_att_merge pm = {c->head_dim, c->n_heads, m->att_max_split};
        vkr_cmd_dispatch_indirect(cmd, &m->k[K_ATTN_MERGE], m->s_att_merge, &pm, &m->stepargs, 16);
    }
    end_phase(m, LLM_PROF_ATTENTION);
    rec_matmul(m, &L->wo, n, m->qdim, c->dim, 0, MM_ACCUMULATE);
    end_phase(m, LLM_PROF_WO);
    vkr_cmd_dispatch(cmd, &m->k[K_RMSNORM], L->s_norm2, &pn, n, 1, 1);
    end_phase(m, LLM_PROF_NORM);
    /* silu(gate) * up lands where the gate's row of 2 ffn starts, which the
     * down projection reads: computed by the gate/up product itself when
     * the two are stacked (matmul.comp EPI 1), else by a pass of its own
     * after gate and up side by side. (Inside the down projection it was
     * slower on the H200: every row recomputed the exponentials.) */
    if (L->fused_gu) {
        rec_matmul_epi(m, &L->wgu, n, c->dim, 2 * c->ffn, 0, 0, EPI_SWIGLU);
        end_phase(m, LLM_PROF_GATE_UP);
    } else {
        rec_matmul(m, &L->wg, n, c->dim, 2 * c->ffn, 0, 0);
        rec_matmul(m, &L->wu, n, c->dim, 2 * c->ffn, c->ffn, 0);
        end_phase(m, LLM_PROF_GATE_UP);
        uint32_t pc[2] = {c->ffn, n};
        vkr_cmd_dispatch(cmd, &m->k[K_SWIGLU], m->s_swiglu, pc, (c->ffn + 255) / 256, n, 1);
        end_phase(m, LLM_PROF_SWIGLU);
    }
    rec_matmul(m, &L->wd, n, 2 * c->ffn, c->dim, 0, MM_ACCUMULATE);
    end_phase(m, LLM_PROF_DOWN);
    if (m->tracing) {
        VkBufferCopy r = {.srcOffset = (VkDeviceSize)(n - 1) * c->dim * 4, .dstOffset = (VkDeviceSize)l * c->dim * 4,
                          .size = (VkDeviceSize)c->dim * 4};
        vkr_cmd_copy(cmd, &m->x, &m->trace, &r, 1);
    }
}

/* KV rows kept by the last commit move from their scratch slots to their
 * place in the sequence, at the head of the step: kv_commit.comp, sized
 * by the moves the host writes before the submit (none: an empty
 * dispatch), so the recording holds no position. No barrier of its own:
 * the embedding's, before any layer, orders the moves before the layers'
 * reads and writes of the cache (when profiling, one, to time it). */
static void rec_kv_commit(struct llm_model *m)
{
    uint32_t words = m->kvdim / 2;
    for (uint32_t l = 0; l < m->cfg.n_layers; l++)
        vkr_cmd_dispatch_indirect(&m->cmd, &m->k[K_KV_COMMIT], m->layers[l].s_commit, &words, &m->moves, 0);
    if (m->profiling)
        end_phase(m, LLM_PROF_COMMIT);
}

/* What a step's head does after the LM head: the rows it penalizes,
 * draws and answers with top-k candidates, and the readback slots of
 * logits and candidates (logit_src). */
struct head_work {
    uint32_t nsel, nslot, ndraw, ntop, npen;
    bool argmax; /* some row wants its argmax (ARGMAX, LOGITS); sampled rows do not */
    const uint32_t *slot_src;
};

/* The final norm and LM head on the nsel selected rows, the penalty on
 * the rows that have one, their argmax, the draws of DRAW rows and the
 * candidates of TOPK rows, and the copies of what the host reads: the
 * argmax ids, the drawn ids, each slot's logits row or candidates. */
static void rec_head(struct llm_model *m, const struct head_work *h)
{
    const struct llm_config *c = &m->cfg;
    struct vkr_cmd *cmd = &m->cmd;
    struct pc_norm pn = {c->dim, 1, c->rms_eps};
    vkr_cmd_dispatch(cmd, &m->k[K_RMSNORM], m->s_final_norm, &pn, h->nsel, 1, 1);
    end_phase(m, LLM_PROF_HEAD);
    if (m->tracing) {
        VkBufferCopy r = {.srcOffset = (VkDeviceSize)(h->nsel - 1) * c->dim * 4,
                          .dstOffset = (VkDeviceSize)c->n_layers * c->dim * 4, .size = (VkDeviceSize)c->dim * 4};
        vkr_cmd_copy(cmd, &m->xf, &m->trace, &r, 1);
    }
    rec_matmul(m, &m->head, h->nsel, c->dim, c->n_vocab, 0, 0);
    end_phase(m, LLM_PROF_HEAD);
    if (h->npen) {
        struct pc_penalty pp = {c->n_vocab, m->max_rows, GPU_PEN_MAX, m->draw.penalty, m->draw.inv_penalty};
        vkr_cmd_dispatch(cmd, &m->k[K_PENALTY], m->s_penalty, &pp, h->npen, 1, 1);
        end_phase(m, LLM_PROF_HEAD);
    }
    if (h->argmax)
        vkr_cmd_dispatch(cmd, &m->k[K_ARGMAX], m->s_argmax, &c->n_vocab, h->nsel, 1, 1);
    if (h->ndraw) {
        /* Into the second half of amax, so no barrier against argmax. */
        struct pc_draw pd = {c->n_vocab, m->max_rows, m->draw.inv_t, m->draw.min_p, m->draw.top_p};
        vkr_cmd_dispatch(cmd, &m->k[K_DRAW], m->s_draw, &pd, h->ndraw, 1, 1);
    }
    if (h->ntop) {
        struct pc_topk pt = {c->n_vocab, m->draw.top_k, m->draw.inv_t};
        vkr_cmd_dispatch(cmd, &m->k[K_TOPK], m->s_topk, &pt, h->ntop, 1, 1);
    }
    end_phase(m, LLM_PROF_HEAD);
    VkDeviceSize R4 = (VkDeviceSize)m->max_rows * 4, row = (VkDeviceSize)c->n_vocab * 4;
    VkBufferCopy r[2] = {{.size = (VkDeviceSize)h->nsel * 4},
                         {.srcOffset = R4, .dstOffset = R4, .size = h->ndraw * 4}};
    vkr_cmd_copy(cmd, &m->amax, &m->readback, r, h->ndraw ? 2 : 1);
    for (uint32_t j = 0; j < h->nslot; j++) {
        uint32_t src = h->slot_src[j];
        VkBufferCopy lr = {.srcOffset = src * row, .dstOffset = 2 * R4 + j * row, .size = row};
        if (src & GPU_SLOT_TOPK) {
            lr.srcOffset = (VkDeviceSize)(src & ~GPU_SLOT_TOPK) * DEC_TOPK_MAX * 8;
            lr.size = (VkDeviceSize)m->draw.top_k * 8;
        }
        vkr_cmd_copy(cmd, src & GPU_SLOT_TOPK ? &m->cand : &m->logits, &m->readback, &lr, 1);
    }
}

static void host_read_barrier(struct vkr_cmd *c)
{
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT, .dstAccessMask = VK_ACCESS_HOST_READ_BIT};
    vkCmdPipelineBarrier(c->cb, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
}

/* The repetition penalty's list for row i: the distinct tokens among the
 * last penalty_last_n of its sequence (the cache's tokens, its ancestors,
 * itself), written as penalized row j's list. */
static void penalty_list(struct llm_model *m, const struct dec_row *rows, uint32_t i, uint32_t sel_row, uint32_t j)
{
    uint32_t *pen = m->pen.map, *ids = pen + 2 * m->max_rows + (size_t)j * GPU_PEN_MAX;
    uint32_t left = m->draw.penalty_last_n, n = 0;
    if (++m->seen_epoch == 0) {
        memset(m->seen, 0, sizeof(*m->seen) * m->cfg.n_vocab);
        m->seen_epoch = 1;
    }
    for (int32_t r = (int32_t)i; r >= 0 && left; r = rows[r].parent, left--)
        if (m->seen[rows[r].token] != m->seen_epoch) {
            m->seen[rows[r].token] = m->seen_epoch;
            ids[n++] = (uint32_t)rows[r].token;
        }
    for (uint32_t k = m->n_past; k > 0 && left; k--, left--)
        if (m->seen[m->seq[k - 1]] != m->seen_epoch) {
            m->seen[m->seq[k - 1]] = m->seen_epoch;
            ids[n++] = (uint32_t)m->seq[k - 1];
        }
    pen[2 * j] = sel_row;
    pen[2 * j + 1] = n;
}

/* Checks the rows against the seam's contract and writes the per-row
 * description the shaders read. Returns the number of selected rows and
 * fills h: the LOGITS and TOPK rows (readback slots), the DRAW rows, the
 * TOPK rows and the penalized rows among them. */
static int describe_rows(struct llm_model *m, const struct dec_row *rows, uint32_t n, struct head_work *h)
{
    int32_t *tok = m->tokens.map, *pos = m->pos.map, *par = m->parent.map, *sel = m->sel.map;
    uint32_t *draw = m->drawrow.map, *top = m->toprow.map;
    uint32_t nsel = 0, nslot = 0, ndraw = 0, ntop = 0, npen = 0;
    bool penalize = m->draw.set && m->draw.penalty != 1.0f;
    m->step_max_len = 0;
    for (uint32_t i = 0; i < n; i++) {
        const struct dec_row *r = &rows[i];
        bool sampled = r->want == DEC_WANT_DRAW || r->want == DEC_WANT_TOPK;
        if (r->token < 0 || (uint32_t)r->token >= m->cfg.n_vocab || r->parent >= (int32_t)i || r->parent < -1 ||
            r->want > DEC_WANT_TOPK || (sampled && !m->draw.set) || (r->want == DEC_WANT_DRAW && r->u24 >> 24) ||
            (r->want == DEC_WANT_TOPK && !m->draw.top_k))
            return -EINVAL;
        m->depth[i] = r->parent < 0 ? 0 : m->depth[r->parent] + 1;
        if (m->n_past + m->depth[i] >= m->n_ctx)
            return -E2BIG;
        if (m->n_past + m->depth[i] + 1 > m->step_max_len)
            m->step_max_len = m->n_past + m->depth[i] + 1;
        tok[i] = r->token;
        m->row_tok[i] = r->token;
        pos[i] = (int32_t)(m->n_past + m->depth[i]);
        par[i] = r->parent;
        m->last_parent[i] = r->parent;
        if (r->want == DEC_WANT_NONE)
            continue;
        if (sampled && penalize)
            penalty_list(m, rows, i, nsel, npen++);
        if (r->want == DEC_WANT_DRAW) {
            draw[2 * ndraw] = nsel;
            draw[2 * ndraw + 1] = r->u24;
            m->draw_rows[ndraw++] = (int32_t)i;
        }
        if (r->want == DEC_WANT_LOGITS)
            m->logit_src[nslot++] = nsel;
        if (r->want == DEC_WANT_TOPK) {
            top[ntop] = nsel;
            m->logit_src[nslot++] = GPU_SLOT_TOPK | ntop++;
        }
        m->want_rows[nsel] = (int32_t)i;
        sel[nsel++] = (int32_t)i;
    }
    *h = (struct head_work){nsel, nslot, ndraw, ntop, npen, nsel > ndraw + ntop, m->logit_src};
    return (int)nsel;
}

static double host_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* Records a whole step into m->cmd: the KV moves of the last commit, embedding,
 * layers, the head on the nsel selected rows and the copies of what the
 * host reads back (h); the step's first and last timestamps in ts0, ts1. */
static int record_step(struct llm_model *m, uint32_t n, const struct head_work *h, int *ts0, int *ts1)
{
    int err = vkr_cmd_begin(m->vk, &m->cmd);
    if (err)
        return err;
    *ts0 = vkr_cmd_timestamp(m->vk, &m->cmd);
    /* The last step's writes (its KV rows, which the moves read) come from
     * another submission: a barrier's first scope includes it. That step
     * has finished (its fence), so this waits on nothing. */
    vkr_cmd_barrier(&m->cmd);
    rec_kv_commit(m);
    for (uint32_t c = 0; c < m->embd.w.n_chunks; c++) {
        struct pc_embed pe = {m->cfg.dim, n, (uint32_t)vkr_rows_first(&m->embd.w, c),
                              (uint32_t)vkr_rows_count(&m->embd.w, c)};
        vkr_cmd_dispatch(&m->cmd, &m->k[K_EMBED], m->embd.set[c], &pe, (m->cfg.dim / 2 + 63) / 64, n, 1);
    }
    end_phase(m, LLM_PROF_EMBED);
    for (uint32_t l = 0; l < m->cfg.n_layers; l++)
        rec_layer(m, l, n);
    if (h->nsel > 0)
        rec_head(m, h);
    host_read_barrier(&m->cmd);
    *ts1 = vkr_cmd_timestamp(m->vk, &m->cmd);
    if (m->profiling && *ts1 >= 0 && (uint32_t)*ts1 < m->prof_cap)
        m->prof_phase[*ts1] = LLM_PROF_HEAD;
    return 0;
}

/* ---- the step cache ------------------------------------------------------
 * Recording a step costs the host about a microsecond a dispatch: 0.6-0.9 ms
 * for a 7B step of about 300 dispatches, about 0.1 ms for a kernelc-22m
 * lookahead step (H100 runs of 2026-11-26); time in which the GPU idles,
 * since a step's rows are known only once the last step's results are. Yet
 * what a step records depends only on its shape (struct gpu_step_key):
 * n_past reaches the shaders through the rows' positions (attention.comp
 * reads POS[0]), the last commit's KV moves through `moves` (kv_commit.comp,
 * an indirect dispatch), the attention's split count through `stepargs`
 * (indirect dispatches), everything else per step through the row buffers
 * describe_rows writes. So each recording is kept, and submitted again when
 * its shape comes back: every plain step after the first, and a lookahead
 * step whose window and n-gram candidates come to a row count seen before.
 * A recording never differs from the one the step would make: the key holds
 * every input of record_step that varies between steps, set_draw drops all
 * recordings, and LADE_STEP_CACHE=0 (no cache) must give the same bits
 * (test_reused_steps). */

static bool key_eq(const struct gpu_step_key *a, const struct gpu_step_key *b)
{
    return a->n == b->n && a->nsel == b->nsel && a->nslot == b->nslot &&
           a->ndraw == b->ndraw && a->ntop == b->ntop && a->npen == b->npen && a->argmax == b->argmax;
}

/* The recording for this key and these readback slots, or NULL. */
static struct gpu_recorded *cache_find(struct llm_model *m, const struct gpu_step_key *k, const uint32_t *slot_src)
{
    for (uint32_t i = 0; i < m->steps.n; i++) {
        struct gpu_recorded *e = &m->steps.e[i];
        if (e->valid && key_eq(&e->key, k) && !memcmp(e->slot_src, slot_src, k->nslot * sizeof(*slot_src)))
            return e;
    }
    return NULL;
}

/* An unused entry, else the least recently used. */
static struct gpu_recorded *cache_victim(struct llm_model *m)
{
    struct gpu_recorded *v = &m->steps.e[0];
    for (uint32_t i = 0; i < m->steps.n && v->valid; i++)
        if (!m->steps.e[i].valid || m->steps.e[i].used < v->used)
            v = &m->steps.e[i];
    return v;
}

static void swap_cmd(struct llm_model *m, struct gpu_recorded *e)
{
    struct vkr_cmd t = m->cmd;
    m->cmd = e->cmd;
    e->cmd = t;
}

void gpu_forget_steps(struct llm_model *m)
{
    for (uint32_t i = 0; i < m->steps.n; i++)
        m->steps.e[i].valid = false;
}

int gpu_step(struct llm_model *m, const struct dec_row *rows, uint32_t n, int32_t *ret_argmax, float *ret_logits)
{
    if (n == 0 || n > m->max_rows)
        return -EINVAL;
    double h0 = host_ms();
    m->last_n = 0;
    struct head_work h;
    int nsel = describe_rows(m, rows, n, &h);
    if (nsel < 0)
        return nsel;
    /* The step runs in m->cmd: a cache entry's buffer is swapped in for
     * the step and out after it. */
    struct gpu_recorded *e = NULL;
    bool fresh = true;
    if (m->steps.n) {
        struct gpu_step_key k = {n, h.nsel, h.nslot, h.ndraw, h.ntop, h.npen, h.argmax};
        e = cache_find(m, &k, h.slot_src);
        fresh = !e;
        if (fresh) {
            e = cache_victim(m);
            e->valid = false;
            e->key = k;
            memcpy(e->slot_src, h.slot_src, h.nslot * sizeof(*h.slot_src));
        }
        e->used = ++m->steps.clock;
        swap_cmd(m, e);
    }
    int ts0 = -1, ts1 = -1, err = 0;
    if (fresh) {
        err = record_step(m, n, &h, &ts0, &ts1);
        m->steps.records++;
        if (e) {
            e->ts0 = ts0;
            e->ts1 = ts1;
        }
    } else {
        ts0 = e->ts0;
        ts1 = e->ts1;
        m->steps.hits++;
    }
    /* The last commit's moves: kv_commit.comp's dispatch size, then the
     * pairs gpu_commit wrote. */
    uint32_t *mv = m->moves.map;
    mv[0] = (m->kvdim / 2 + 63) / 64;
    mv[1] = m->n_pending;
    mv[2] = 1;
    m->n_pending = 0;
    /* Attention's dispatch (KV heads, rows, splits) and the merge's
     * (empty with one split), the split count after them. */
    uint32_t nsplit = att_nsplit(m), *sa = m->stepargs.map;
    sa[0] = m->cfg.n_kv_heads;
    sa[1] = n;
    sa[2] = nsplit;
    sa[4] = nsplit > 1 ? (m->qdim + 63) / 64 : 0;
    sa[5] = n;
    sa[6] = 1;
    sa[7] = nsplit;
    double h1 = host_ms();
    err = err ? err : vkr_cmd_submit(m->vk, &m->cmd);
    err = err ? err : vkr_cmd_wait(m->vk, &m->cmd);
    double h2 = host_ms(), ns = 0;
    if (!err) {
        m->last_gpu_ms = vkr_cmd_elapsed_ns(m->vk, &m->cmd, ts0, ts1, &ns) == 0 ? ns / 1e6 : 0;
        if (m->profiling) {
            memset(m->prof_ms, 0, sizeof(m->prof_ms));
            for (int i = ts0 + 1; ts0 >= 0 && i <= ts1; i++)
                if (vkr_cmd_elapsed_ns(m->vk, &m->cmd, i - 1, i, &ns) == 0)
                    m->prof_ms[m->prof_phase[i]] += ns / 1e6;
        }
    }
    if (e) {
        swap_cmd(m, e);
        e->valid = !err;
    }
    err = err ? err : vkr_buf_invalidate(m->vk, &m->readback);
    if (err)
        return err;
    const int32_t *am = m->readback.map;
    for (uint32_t i = 0; ret_argmax && i < n; i++)
        ret_argmax[i] = -1;
    for (int j = 0; ret_argmax && h.argmax && j < nsel; j++)
        if (rows[m->want_rows[j]].want == DEC_WANT_ARGMAX || rows[m->want_rows[j]].want == DEC_WANT_LOGITS)
            ret_argmax[m->want_rows[j]] = am[j];
    for (uint32_t k = 0; ret_argmax && k < h.ndraw; k++)
        ret_argmax[m->draw_rows[k]] = am[m->max_rows + k];
    m->draw.count += h.ndraw;
    m->draw.tops += h.ntop;
    /* Each slot's logits, or its candidates (k pairs, not n_vocab floats). */
    size_t row = (size_t)m->cfg.n_vocab * 4;
    for (uint32_t j = 0; ret_logits && j < h.nslot; j++)
        memcpy((char *)ret_logits + j * row, (const char *)m->readback.map + (size_t)m->max_rows * 8 + j * row,
               h.slot_src[j] & GPU_SLOT_TOPK ? (size_t)m->draw.top_k * 8 : row);
    m->last_n = n;
    m->last_host_ms[0] = h1 - h0;
    m->last_host_ms[1] = h2 - h1;
    m->last_host_ms[2] = host_ms() - h2;
    return 0;
}

/* The kept rows' KV moves to positions n_past.. at the head of the next
 * step (kv_commit.comp); their tokens join the penalty's history now. */
int gpu_commit(struct llm_model *m, const uint32_t *rows, uint32_t n)
{
    if (n > m->last_n || m->n_past + n > m->n_ctx || m->n_pending + n > m->max_rows)
        return -EINVAL;
    for (uint32_t k = 0; k < n; k++) {
        int32_t want_parent = k == 0 ? -1 : (int32_t)rows[k - 1];
        if (rows[k] >= m->last_n || m->last_parent[rows[k]] != want_parent)
            return -EINVAL;
    }
    uint32_t *mv = (uint32_t *)m->moves.map + 4;
    for (uint32_t k = 0; k < n; k++) {
        m->seq[m->n_past + k] = m->row_tok[rows[k]];
        mv[2 * m->n_pending] = m->n_ctx + rows[k];
        mv[2 * m->n_pending + 1] = m->n_past + k;
        m->n_pending++;
    }
    m->n_past += n;
    m->last_n = 0; /* the step's scratch is spoken for */
    return 0;
}

/* ---- dec_model adapter --------------------------------------------------- */

static int dm_step(void *ctx, const struct dec_row *rows, uint32_t n, int32_t *ret_argmax, float *ret_logits)
{
    return gpu_step(ctx, rows, n, ret_argmax, ret_logits);
}

static int dm_commit(void *ctx, const uint32_t *rows, uint32_t n)
{
    return gpu_commit(ctx, rows, n);
}

static int dm_set_draw(void *ctx, const struct dec_draw_params *d)
{
    struct llm_model *m = ctx;
    if (!(d->temperature > 0) || !isfinite(d->temperature) || !(d->min_p >= 0 && d->min_p <= 1) ||
        !(d->top_p >= 0 && d->top_p <= 1) || !(d->penalty > 0) || !isfinite(d->penalty))
        return -EINVAL;
    if (m->cfg.n_vocab > GPU_DRAW_MAX_BLOCKS * DEC_DRAW_BLOCK || d->top_k > DEC_TOPK_MAX ||
        2 * d->top_k > m->cfg.n_vocab || (d->penalty != 1.0f && d->penalty_last_n > GPU_PEN_MAX))
        return -ENOTSUP;
    float inv_t = 1.0f / d->temperature; /* as dec_draw and dec_top_k compute it */
    float inv_p = 1.0f / d->penalty;     /* as dec_penalized does */
    uint32_t last_n = d->penalty != 1.0f ? d->penalty_last_n : 0;
    float top_p = d->top_p > 0 ? d->top_p : 1.0f; /* 0: none, as 1 */
    if (!m->draw.set || m->draw.inv_t != inv_t || m->draw.min_p != d->min_p || m->draw.top_p != top_p ||
        m->draw.top_k != d->top_k || m->draw.penalty != d->penalty || m->draw.penalty_last_n != last_n)
        gpu_forget_steps(m); /* recorded steps hold the old parameters */
    m->draw.set = true;
    m->draw.inv_t = inv_t;
    m->draw.min_p = d->min_p;
    m->draw.top_p = top_p;
    m->draw.top_k = d->top_k;
    m->draw.penalty = d->penalty;
    m->draw.inv_penalty = inv_p;
    m->draw.penalty_last_n = last_n;
    return 0;
}

static int dm_prefill(void *ctx, const int32_t *tokens, uint32_t n, int32_t *ret_argmax, float *ret_logits)
{
    struct llm_model *m = ctx;
    if (n == 0)
        return -EINVAL;
    if ((uint64_t)m->n_past + n > m->n_ctx)
        return -E2BIG;
    /* Long prompts go in chunks of max_rows, each one step + commit. */
    for (uint32_t done = 0; done < n;) {
        uint32_t c = n - done < m->max_rows ? n - done : m->max_rows;
        bool last = done + c == n;
        for (uint32_t i = 0; i < c; i++) {
            m->rowbuf[i] = (struct dec_row){tokens[done + i], (int32_t)i - 1, DEC_WANT_NONE, 0};
            m->chain[i] = i;
        }
        if (last)
            m->rowbuf[c - 1].want = ret_logits ? DEC_WANT_LOGITS : DEC_WANT_ARGMAX;
        int err = gpu_step(m, m->rowbuf, c, m->argmax_tmp, last ? ret_logits : NULL);
        if (!err && last && ret_argmax)
            *ret_argmax = m->argmax_tmp[c - 1];
        if (!err)
            err = gpu_commit(m, m->chain, c);
        if (err)
            return err;
        done += c;
    }
    return 0;
}

static int dm_rewind(void *ctx, uint32_t n_keep)
{
    struct llm_model *m = ctx;
    if (n_keep > m->n_past)
        return -EINVAL;
    /* Moves owed to positions that stay (destination below n_keep) stay. */
    uint32_t *mv = (uint32_t *)m->moves.map + 4, k = 0;
    for (uint32_t i = 0; i < m->n_pending; i++)
        if (mv[2 * i + 1] < n_keep) {
            mv[2 * k] = mv[2 * i];
            mv[2 * k + 1] = mv[2 * i + 1];
            k++;
        }
    m->n_pending = k;
    m->n_past = n_keep;
    m->last_n = 0;
    return 0;
}

static uint32_t dm_n_past(void *ctx)
{
    return ((struct llm_model *)ctx)->n_past;
}

void llm_model_dec(struct llm_model *m, struct dec_model *ret)
{
    *ret = (struct dec_model){
        .ctx = m,
        .n_vocab = m->cfg.n_vocab,
        .n_ctx = m->n_ctx,
        .max_rows = m->max_rows,
        .bos = m->cfg.bos,
        .eos = m->cfg.eos,
        .prefill = dm_prefill,
        .step = dm_step,
        .commit = dm_commit,
        .rewind = dm_rewind,
        .n_past = dm_n_past,
        .set_draw = m->draw.off ? NULL : dm_set_draw,
    };
}

int llm_model_trace(struct llm_model *m, float *ret_layers, float *ret_final)
{
    if (!m->tracing)
        return -ENODATA;
    int err = vkr_buf_invalidate(m->vk, &m->trace);
    if (err)
        return err;
    size_t d = m->cfg.dim;
    memcpy(ret_layers, m->trace.map, m->cfg.n_layers * d * 4);
    memcpy(ret_final, (const float *)m->trace.map + m->cfg.n_layers * d, d * 4);
    return 0;
}
