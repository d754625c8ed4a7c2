/* The forward pass on the GPU: a step recorded as one command buffer
 * (embedding, the layers, the head, the copies the host reads), submitted
 * once and waited on by one fence; or, when a step of the same shape was
 * recorded before, that recording submitted again (gpu_step_cache.h).
 * The equations are llama/ref.c's; each dispatch names the shader that
 * computes it. */
#include <errno.h>
#include <math.h>
#include <string.h>
#include <time.h>

#include "llama/gpu_internal.h"

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

/* The matrix-unit kernel (matmul_cm.comp): up to 16 tokens 16 rows a
 * workgroup, wider steps 32 tokens and 64 rows (the same sums). */
static void rec_matmul_cm(struct llm_model *m, const struct gpu_mat *g, const struct pc_matmul *p)
{
    int w = p->ntok > 16;
    uint32_t tt = w ? 32 : 16, blocks = (g->rows + (w ? 63 : 15)) / (w ? 64 : 16);
    vkr_cmd_dispatch(&m->cmd, &m->ks.mmcm[w], g->set[0], p, (p->ntok + tt - 1) / tt,
                     blocks < 32768 ? blocks : 32768, (blocks + 32767) / 32768);
}

/* Y (+)= W X over `ntok` rows, one dispatch per weight chunk; output row r
 * of token t lands at Y[t * y_stride + y_base + r]; `epi` a fused
 * epilogue (matmul.comp). */
static void rec_matmul_epi(struct llm_model *m, const struct gpu_mat *g, uint32_t ntok,
                           uint32_t x_stride, uint32_t y_stride, uint32_t y_base, uint32_t flags,
                           uint32_t epi)
{
    const struct llm_config *cf = &m->cfg;
    if (g->cm && epi == EPI_NONE && !(flags & MM_NORM)) {
        struct pc_matmul p = { g->cols, g->rows, ntok, x_stride, y_stride, y_base, flags,
                               0,       0,       0,    0,        0.0f,     0.0f,   0 };
        rec_matmul_cm(m, g, &p);
        return;
    }
    /* The folded norm's scale and x * NW are applied after the tile's
     * sums are staged (matmul.comp: inlined at each of the tile's stores
     * they slowed the whole kernel). */
    if (epi == EPI_NONE && (flags & (MM_NORM | MM_NORM_OUT)))
        epi = EPI_STORE;
    /* Decode-sized steps one geometry, wide steps another, one-token
     * steps a third (the same results in each: matmul.comp). A wide step
     * over a small matrix keeps the decode geometry (mm_wide_min). */
    int geom = ntok > m->ks.mmg[GEOM_DECODE].tile && (uint64_t)g->rows * ntok >= m->ks.mm_wide_min ?
                       GEOM_WIDE :
                       GEOM_DECODE;
    if (ntok == 1)
        geom = GEOM_ONE;
    const struct gpu_mm_geom *G = &m->ks.mmg[geom];
    for (uint32_t c = 0; c < g->w.n_chunks; c++) {
        /* SwiGLU: the chunk holds gate and up, its outputs are half its rows */
        uint32_t n = (uint32_t)vkr_rows_count(&g->w, c) / (epi == EPI_SWIGLU ? 2 : 1);
        uint32_t wgs = (n + G->rows_wg - 1) / G->rows_wg;
        struct pc_matmul p = { g->cols,        n,
                               ntok,           x_stride,
                               y_stride,       y_base + (uint32_t)vkr_rows_first(&g->w, c),
                               flags,          epi,
                               cf->head_dim,   cf->rope_dims,
                               m->kv.scratch0, cf->rope_mscale,
                               cf->rms_eps,    m->kvdim };
        /* x: token tiles (fastest, see matmul.comp), y + 32768 z: row blocks */
        vkr_cmd_dispatch(&m->cmd, g->kernel[geom], g->set[c], &p, (ntok + G->tile - 1) / G->tile,
                         wgs < 32768 ? wgs : 32768, (wgs + 32767) / 32768);
    }
}

static void rec_matmul(struct llm_model *m, const struct gpu_mat *g, uint32_t ntok,
                       uint32_t x_stride, uint32_t y_stride, uint32_t y_base, uint32_t flags)
{
    rec_matmul_epi(m, g, ntok, x_stride, y_stride, y_base, flags, EPI_NONE);
}

/* Attention over the cache and the step's visible rows: splits of
 * att_split keys, one writes the output, more go through attn_merge (the
 * same bits for a row either way, attention.comp). Both dispatches are
 * sized by the host per step (stepargs, write_stepargs): the split count
 * follows the length, which a recorded step must not hold. With one split
 * the merge's dispatch is empty. */
static void rec_attention(struct llm_model *m, const struct gpu_layer *L, uint32_t n)
{
    const struct llm_config *c = &m->cfg;
    struct pc_att pa = { m->kv.scratch0,
                         c->head_dim,
                         c->n_heads,
                         m->kvdim,
                         1.0f / sqrtf((float)c->head_dim),
                         m->ks.att_max_split,
                         gpu_rows_att_groups(m->max_rows) };
    /* A one-row step's group is one row (gpu_rows.c): the kernel made for
     * that, with no room for rows it would not have. */
    enum gpu_kernel_id k = n == 1 && m->ks.att_rows > 1 ? K_ATTENTION_ONE : K_ATTENTION;
    vkr_cmd_dispatch_indirect(&m->cmd, &m->ks.k[k], L->s_att, &pa, &m->io.stepargs, 0);
    if (m->ks.att_max_split > 1) {
        vkr_cmd_barrier(&m->cmd);
        struct pc_att_merge pm = { c->head_dim, c->n_heads, m->ks.att_max_split };
        vkr_cmd_dispatch_indirect(&m->cmd, &m->ks.k[K_ATTN_MERGE], m->sets.att_merge, &pm,
                                  &m->io.stepargs, 16);
    }
}

/* What some architectures do between the Q, K, V products and RoPE:
 * q, k, v += their biases (bias.comp, after the whole product, as the CPU
 * reference); each head of q and k through its RMSNorm (qk_norm.comp). */
static void rec_qk_extras(struct llm_model *m, const struct gpu_layer *L, uint32_t n)
{
    const struct llm_config *c = &m->cfg;
    if (c->qkv_bias) {
        const uint32_t width[3] = { m->qdim, m->kvdim, m->kvdim };
        for (int i = 0; i < 3; i++) {
            struct pc_bias pb = { width[i], n };
            vkr_cmd_dispatch(&m->cmd, &m->ks.k[K_BIAS], L->s_bias[i], &pb, (width[i] + 63) / 64, n,
                             1);
        }
        end_phase(m, LLM_PROF_QKV);
    }
    if (c->qk_norm) {
        struct pc_qk_norm pq = { c->head_dim, c->n_heads, c->n_kv_heads, c->rms_eps };
        vkr_cmd_dispatch(&m->cmd, &m->ks.k[K_QK_NORM], L->s_qk_norm, &pq,
                         c->n_heads + c->n_kv_heads, n, 1);
        end_phase(m, LLM_PROF_QKV);
    }
}

/* One transformer layer over n rows:
 *   x += Wo attention(rope(Wq norm(x)), rope(Wk norm(x)), Wv norm(x))
 *   x += Wd (silu(Wg norm(x)) * Wu norm(x))
 * with K and V landing in the step's scratch slots of the cache; where the
 * architecture has them, Q, K and V get their biases and each head of Q
 * and K its RMSNorm before RoPE (rec_qk_extras).
 *
 * Fused (m->fuse, the default), a llama layer is 6 dispatches: the Q/K/V
 * product with its norm, RoPE and cache writes folded in, attention and
 * its merge, Wo, the gate/up product with its norm and SwiGLU, Wd (7
 * where V's format differs from Q's and K's). Each norm otherwise is a
 * pass of its own (rmsnorm.comp into xn). */
static void rec_layer(struct llm_model *m, uint32_t l, uint32_t n)
{
    const struct llm_config *c = &m->cfg;
    const struct gpu_layer *L = &m->w.layers[l];
    struct vkr_cmd *cmd = &m->cmd;
    struct pc_norm pn = { c->dim, 0, c->rms_eps };
    uint32_t nf = m->fuse ? MM_NORM : 0; /* the products after a norm */
    /* The residual adds before a folded norm write x times its weights
     * too (gpu_sets.c binds which): Wo's for the FFN's, Wd's for the one
     * after the layer. */
    uint32_t add_o = MM_ACCUMULATE | (m->fuse ? MM_NORM_OUT : 0);
    uint32_t add_d = MM_ACCUMULATE | (gpu_norm_after(m, l) ? MM_NORM_OUT : 0);
    if (!m->fuse) {
        vkr_cmd_dispatch(cmd, &m->ks.k[K_RMSNORM], L->s_norm1, &pn, n, 1, 1);
        end_phase(m, LLM_PROF_NORM);
    }
    if (m->fuse_rope && L->n_qkv) {
        /* Q rotated into q, K rotated and V into this step's scratch
         * slots of their caches, from one product (matmul.comp EPI_QKV);
         * V from a second where its type is not Q's and K's. */
        rec_matmul_epi(m, &L->wqkv, n, c->dim, m->qdim, 0, nf, EPI_QKV);
        if (L->n_qkv == 2)
            rec_matmul_epi(m, &L->wv, n, c->dim, m->kvdim, 0, nf, EPI_CACHE);
        end_phase(m, LLM_PROF_QKV);
    } else if (m->fuse_rope) {
        /* RoPE and the f16 KV write done by the products themselves (K and
         * V go straight into this step's scratch slots of the cache; the
         * cache's row stride is kvdim). */
        rec_matmul_epi(m, &L->wq, n, c->dim, m->qdim, 0, nf, EPI_ROPE);
        rec_matmul_epi(m, &L->wk, n, c->dim, m->kvdim, 0, nf, EPI_ROPE_CACHE);
        rec_matmul_epi(m, &L->wv, n, c->dim, m->kvdim, 0, nf, EPI_CACHE);
        end_phase(m, LLM_PROF_QKV);
    } else {
        rec_matmul(m, &L->wq, n, c->dim, m->qdim, 0, nf);
        rec_matmul(m, &L->wk, n, c->dim, m->kvdim, 0, nf);
        rec_matmul(m, &L->wv, n, c->dim, m->kvdim, 0, nf);
        end_phase(m, LLM_PROF_QKV);
        rec_qk_extras(m, L, n);
        struct pc_rope pr = {
            n, m->qdim, m->kvdim, c->head_dim, c->rope_dims, m->kv.scratch0, c->rope_mscale
        };
        vkr_cmd_dispatch(cmd, &m->ks.k[K_ROPE_KV], L->s_rope, &pr,
                         (m->qdim / 2 + m->kvdim / 2 + 63) / 64, n, 1);
        end_phase(m, LLM_PROF_ROPE_KV);
    }
    rec_attention(m, L, n);
    end_phase(m, LLM_PROF_ATTENTION);
    rec_matmul(m, &L->wo, n, m->qdim, c->dim, 0, add_o);
    end_phase(m, LLM_PROF_WO);
    if (!m->fuse) {
        vkr_cmd_dispatch(cmd, &m->ks.k[K_RMSNORM], L->s_norm2, &pn, n, 1, 1);
        end_phase(m, LLM_PROF_NORM);
    }
    /* silu(gate) * up lands where the gate's row of 2 ffn starts, which the
     * down projection reads: computed by the gate/up product itself when
     * the two are stacked (matmul.comp EPI_SWIGLU), else by a pass of its
     * own after gate and up side by side. (Not inside the down projection:
     * every row would recompute the exponentials.) */
    if (L->fused_gu) {
        rec_matmul_epi(m, &L->wgu, n, c->dim, 2 * c->ffn, 0, nf, EPI_SWIGLU);
        end_phase(m, LLM_PROF_GATE_UP);
    } else {
        rec_matmul(m, &L->wg, n, c->dim, 2 * c->ffn, 0, nf);
        rec_matmul(m, &L->wu, n, c->dim, 2 * c->ffn, c->ffn, nf);
        end_phase(m, LLM_PROF_GATE_UP);
        struct pc_swiglu ps = { c->ffn, n };
        vkr_cmd_dispatch(cmd, &m->ks.k[K_SWIGLU], m->sets.swiglu, &ps, (c->ffn + 255) / 256, n, 1);
        end_phase(m, LLM_PROF_SWIGLU);
    }
    rec_matmul(m, &L->wd, n, 2 * c->ffn, c->dim, 0, add_d);
    end_phase(m, LLM_PROF_DOWN);
    if (m->tracing) {
        VkBufferCopy r = { .srcOffset = (VkDeviceSize)(n - 1) * c->dim * 4,
                           .dstOffset = (VkDeviceSize)l * c->dim * 4,
                           .size = (VkDeviceSize)c->dim * 4 };
        vkr_cmd_copy(cmd, &m->act.x, &m->act.trace, &r, 1);
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
    struct pc_kv_commit pc = { m->kvdim / 2 };
    for (uint32_t l = 0; l < m->cfg.n_layers; l++)
        vkr_cmd_dispatch_indirect(&m->cmd, &m->ks.k[K_KV_COMMIT], m->w.layers[l].s_commit, &pc,
                                  &m->kv.moves, 0);
    if (m->profiling)
        end_phase(m, LLM_PROF_COMMIT);
}

static void rec_embed(struct llm_model *m, uint32_t n)
{
    const struct gpu_mat *e = &m->w.embd;
    for (uint32_t c = 0; c < e->w.n_chunks; c++) {
        struct pc_embed pe = { m->cfg.dim, n, (uint32_t)vkr_rows_first(&e->w, c),
                               (uint32_t)vkr_rows_count(&e->w, c), m->fuse };
        vkr_cmd_dispatch(&m->cmd, &m->ks.k[K_EMBED], e->set[c], &pe, (m->cfg.dim / 2 + 63) / 64, n,
                         1);
    }
    end_phase(m, LLM_PROF_EMBED);
}

/* The copies of what the host reads: the argmax ids, the drawn ids, each
 * slot's logits row or candidates. */
static void rec_readback(struct llm_model *m, const struct gpu_head_work *h)
{
    struct vkr_cmd *cmd = &m->cmd;
    VkDeviceSize R4 = (VkDeviceSize)m->max_rows * 4, row = (VkDeviceSize)m->cfg.n_vocab * 4;
    VkBufferCopy r[2] = { { .size = (VkDeviceSize)h->nsel * 4 },
                          { .srcOffset = R4, .dstOffset = R4, .size = h->ndraw * 4 } };
    vkr_cmd_copy(cmd, &m->act.amax, &m->io.readback, r, h->ndraw ? 2 : 1);
    for (uint32_t j = 0; j < h->nslot; j++) {
        uint32_t src = h->slot_src[j];
        VkBufferCopy lr = { .srcOffset = src * row, .dstOffset = 2 * R4 + j * row, .size = row };
        if (src & GPU_SLOT_TOPK) {
            lr.srcOffset = (VkDeviceSize)(src & ~GPU_SLOT_TOPK) * DEC_TOPK_MAX * 8;
            /* every candidate slot, so the recording holds no k (k <= n_vocab / 2) */
            lr.size = DEC_TOPK_MAX * 8 < row ? DEC_TOPK_MAX * 8 : row;
        }
        vkr_cmd_copy(cmd, src & GPU_SLOT_TOPK ? &m->act.cand : &m->act.logits, &m->io.readback, &lr,
                     1);
    }
}

/* The step's copies made visible to the host once the fence signals. */
static void host_read_barrier(struct vkr_cmd *c)
{
    VkMemoryBarrier mb = { .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                           .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
                           .dstAccessMask = VK_ACCESS_HOST_READ_BIT };
    vkCmdPipelineBarrier(c->cb, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1,
                         &mb, 0, NULL, 0, NULL);
}

/* The head on the nsel selected rows: the final norm and the LM head, the
 * penalty on the rows that have one, their argmax, the draws of DRAW rows
 * and the candidates of TOPK rows. */
static void rec_head(struct llm_model *m, const struct gpu_head_work *h)
{
    const struct llm_config *c = &m->cfg;
    struct vkr_cmd *cmd = &m->cmd;
    if (m->fuse_norm_head) {
        /* The final norm folded into the head, which reads the selected
         * rows of x and of x times the norm's weights itself (MM_GATHER). */
        rec_matmul(m, &m->w.head, h->nsel, c->dim, c->n_vocab, 0, MM_NORM | MM_GATHER);
    } else {
        struct pc_norm pn = { c->dim, 1, c->rms_eps };
        vkr_cmd_dispatch(cmd, &m->ks.k[K_RMSNORM], m->sets.final_norm, &pn, h->nsel, 1, 1);
        end_phase(m, LLM_PROF_HEAD);
        if (m->tracing) {
            VkBufferCopy r = { .srcOffset = (VkDeviceSize)(h->nsel - 1) * c->dim * 4,
                               .dstOffset = (VkDeviceSize)c->n_layers * c->dim * 4,
                               .size = (VkDeviceSize)c->dim * 4 };
            vkr_cmd_copy(cmd, &m->act.xf, &m->act.trace, &r, 1);
        }
        rec_matmul(m, &m->w.head, h->nsel, c->dim, c->n_vocab, 0, 0);
    }
    end_phase(m, LLM_PROF_HEAD);
    if (h->npen) {
        struct pc_penalty pp = { c->n_vocab, m->max_rows, GPU_PEN_MAX };
        vkr_cmd_dispatch(cmd, &m->ks.k[K_PENALTY], m->sets.penalty, &pp, h->npen, 1, 1);
        end_phase(m, LLM_PROF_HEAD);
    }
    if (h->argmax) {
        struct pc_argmax pa = { c->n_vocab };
        vkr_cmd_dispatch(cmd, &m->ks.k[K_ARGMAX], m->sets.argmax, &pa, h->nsel, 1, 1);
    }
    if (h->ndraw) {
        /* Into the second half of amax, so no barrier against argmax. */
        struct pc_draw pd = { c->n_vocab, m->max_rows };
        vkr_cmd_dispatch(cmd, &m->ks.k[K_DRAW], m->sets.draw, &pd, h->ndraw, 1, 1);
    }
    if (h->ntop) {
        struct pc_topk pt = { c->n_vocab };
        vkr_cmd_dispatch(cmd, &m->ks.k[K_TOPK], m->sets.topk, &pt, h->ntop, 1, 1);
    }
    end_phase(m, LLM_PROF_HEAD);
    rec_readback(m, h);
}

/* Records a whole step into m->cmd: the KV moves of the last commit, the
 * embedding, the layers, the head on the selected rows and the copies the
 * host reads back; the step's first and last timestamps in ts0, ts1. */
static int record_step(struct llm_model *m, uint32_t n, const struct gpu_head_work *h, int *ts0,
                       int *ts1)
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
    rec_embed(m, n);
    for (uint32_t l = 0; l < m->cfg.n_layers; l++) {
        uint32_t d0 = m->cmd.n_dispatch;
        rec_layer(m, l, n);
        if (l == 0)
            m->layer_dispatches = m->cmd.n_dispatch - d0;
    }
    if (h->nsel > 0)
        rec_head(m, h);
    host_read_barrier(&m->cmd);
    *ts1 = vkr_cmd_timestamp(m->vk, &m->cmd);
    if (m->profiling && *ts1 >= 0 && (uint32_t)*ts1 < m->prof_cap)
        m->prof_phase[*ts1] = LLM_PROF_HEAD;
    return 0;
}

/* What the recording leaves to the step: the attention's dispatch (KV
 * heads, rows, splits of the longest row) and the merge's (empty with one
 * split), the split count after them. */
static void write_stepargs(struct llm_model *m, uint32_t n)
{
    uint32_t nsplit = (m->io.step_max_len + m->ks.att_split - 1) / m->ks.att_split,
             *sa = m->io.stepargs.map;
    sa[0] = m->cfg.n_kv_heads;
    sa[1] = m->io.n_groups; /* attention: a workgroup a group of rows */
    sa[2] = nsplit;
    sa[4] = nsplit > 1 ? (m->qdim + 63) / 64 : 0;
    sa[5] = n;
    sa[6] = 1;
    sa[7] = nsplit;
}

static double host_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* The GPU time of the step just run, by phase when profiling. */
static void read_times(struct llm_model *m, int ts0, int ts1)
{
    double ns = 0;
    m->last_gpu_ms = vkr_cmd_elapsed_ns(m->vk, &m->cmd, ts0, ts1, &ns) == 0 ? ns / 1e6 : 0;
    if (!m->profiling)
        return;
    memset(m->prof_ms, 0, sizeof(m->prof_ms));
    for (int i = ts0 + 1; ts0 >= 0 && i <= ts1; i++)
        if (vkr_cmd_elapsed_ns(m->vk, &m->cmd, i - 1, i, &ns) == 0)
            m->prof_ms[m->prof_phase[i]] += ns / 1e6;
}

static void swap_cmd(struct llm_model *m, struct gpu_recorded *e)
{
    struct vkr_cmd t = m->cmd;
    m->cmd = e->cmd;
    e->cmd = t;
}

int gpu_step(struct llm_model *m, struct gpu_part *parts, uint32_t n_parts)
{
    if (n_parts == 0 || n_parts > m->n_seq)
        return -EINVAL;
    for (uint32_t p = 0; p < n_parts; p++) {
        for (uint32_t q = 0; q < p; q++)
            if (parts[q].seq == parts[p].seq)
                return -EINVAL; /* one part a sequence: its rows share the scratch record */
        parts[p].seq->last_n = 0;
    }
    double h0 = host_ms();
    struct gpu_head_work h;
    int nr = gpu_rows_describe(&m->io, parts, n_parts, m->n_ctx, &h);
    if (nr < 0)
        return nr;
    uint32_t n = (uint32_t)nr;
    /* The step runs in m->cmd: a cache entry's buffer is swapped in for
     * the step and out after it. */
    struct gpu_step_key k = { n, h.nsel, h.nslot, h.ndraw, h.ntop, h.npen, h.argmax };
    bool fresh;
    struct gpu_recorded *e = gpu_step_cache_take(&m->steps, &k, h.slot_src, &fresh);
    if (e)
        swap_cmd(m, e);
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
    gpu_kv_flush_moves(&m->kv);
    write_stepargs(m, n);
    double h1 = host_ms();
    err = err ? err : vkr_cmd_submit(m->vk, &m->cmd);
    /* Submitted or not, the scratch the last step's rows left is gone to
     * whoever has not committed them (its moves were flushed). */
    m->kv.submits++;
    err = err ? err : vkr_cmd_wait(m->vk, &m->cmd);
    double h2 = host_ms();
    m->last_dispatches = m->cmd.n_dispatch;
    if (!err)
        read_times(m, ts0, ts1);
    if (e) {
        swap_cmd(m, e);
        e->valid = !err;
    }
    /* Only what is read: the ids, and the slots this step filled */
    VkDeviceSize ids = (VkDeviceSize)m->max_rows * 8;
    err = err ? err : vkr_buf_invalidate_range(m->vk, &m->io.readback, 0, ids);
    err = err ? err :
                vkr_buf_invalidate_range(m->vk, &m->io.readback, ids,
                                         (VkDeviceSize)h.nslot * m->cfg.n_vocab * 4);
    if (err)
        return err;
    gpu_rows_read(&m->io, parts, n_parts, &h);
    m->draws += h.ndraw;
    m->tops += h.ntop;
    for (uint32_t p = 0; p < n_parts; p++) {
        parts[p].seq->last_n = parts[p].n;
        parts[p].seq->last_submit = m->kv.submits;
    }
    m->last_host_ms[0] = h1 - h0;
    m->last_host_ms[1] = h2 - h1;
    m->last_host_ms[2] = host_ms() - h2;
    return 0;
}
