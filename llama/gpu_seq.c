/* The sequences the model holds and their cache (gpu_seq.h). A commit
 * writes KV moves rather than recording copies, so that nothing a recorded
 * step holds depends on where a sequence stands (gpu_step_cache.h). */
#include "llama/gpu_seq.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

int gpu_kv_build(struct gpu_kv *kv, struct gpu_seq *seqs, struct vkr_ctx *vk, uint32_t n_layers,
                 uint32_t kvdim, uint32_t n_ctx, uint32_t n_seq, uint32_t max_rows, char *reterr,
                 size_t errlen)
{
    *kv = (struct gpu_kv){ .n_layers = n_layers,
                           .kvdim = kvdim,
                           .n_ctx = n_ctx,
                           .n_seq = n_seq,
                           .max_rows = max_rows,
                           .scratch0 = n_seq * n_ctx };
    VkDeviceSize bytes = ((VkDeviceSize)n_seq * n_ctx + max_rows) * kvdim * 2;
    if ((uint64_t)n_seq * n_ctx > UINT32_MAX - max_rows || bytes > vkr_max_binding(vk)) {
        snprintf(reterr, errlen,
                 "KV cache of one layer for %u sequences (%llu bytes) exceeds the device's binding "
                 "limit: lower the context length or the sequences",
                 n_seq, (unsigned long long)bytes);
        return -E2BIG;
    }
    kv->kc = calloc(n_layers, sizeof(*kv->kc));
    kv->vc = calloc(n_layers, sizeof(*kv->vc));
    bool ok = kv->kc && kv->vc;
    for (uint32_t i = 0; i < n_seq; i++) {
        struct gpu_seq *s = &seqs[i];
        *s = (struct gpu_seq){ .base = i * n_ctx };
        s->last_parent = calloc(max_rows, sizeof(*s->last_parent));
        s->row_tok = calloc(max_rows, sizeof(*s->row_tok));
        s->tokens = calloc(n_ctx, sizeof(*s->tokens));
        ok = ok && s->last_parent && s->row_tok && s->tokens;
    }
    if (!ok) {
        snprintf(reterr, errlen, "out of memory");
        return -ENOMEM;
    }
    int err = 0;
    for (uint32_t l = 0; !err && l < n_layers; l++) {
        err = vkr_buf_new(vk, bytes, VKR_MEM_DEVICE, &kv->kc[l]);
        err = err ? err : vkr_buf_new(vk, bytes, VKR_MEM_DEVICE, &kv->vc[l]);
        if (err)
            snprintf(reterr, errlen, "KV cache, layer %u: %s", l, vk->err);
    }
    /* Commits move at most max_rows a step; a prefix copy a region's
     * worth; the dispatch's y (a move each) stays below 65536 */
    uint64_t cap = (uint64_t)max_rows + n_ctx;
    kv->moves_cap = cap < 65535 ? (uint32_t)cap : 65535;
    if (!err &&
        (err = vkr_buf_new(vk, 16 + (VkDeviceSize)kv->moves_cap * 8, VKR_MEM_UPLOAD, &kv->moves)))
        snprintf(reterr, errlen, "KV moves: %s", vk->err);
    return err;
}

void gpu_kv_free(struct gpu_kv *kv, struct gpu_seq *seqs, struct vkr_ctx *vk)
{
    for (uint32_t l = 0; l < kv->n_layers; l++) {
        if (kv->kc)
            vkr_buf_free(vk, &kv->kc[l]);
        if (kv->vc)
            vkr_buf_free(vk, &kv->vc[l]);
    }
    vkr_buf_free(vk, &kv->moves);
    free(kv->kc);
    free(kv->vc);
    for (uint32_t i = 0; seqs && i < kv->n_seq; i++) {
        free(seqs[i].last_parent);
        free(seqs[i].row_tok);
        free(seqs[i].tokens);
        seqs[i] = (struct gpu_seq){ 0 };
    }
    *kv = (struct gpu_kv){ 0 };
}

int gpu_seq_commit(struct gpu_kv *kv, struct gpu_seq *s, const uint32_t *rows, uint32_t n)
{
    uint32_t last_n = s->last_submit == kv->submits ? s->last_n : 0;
    if (n > last_n || s->n_past + n > kv->n_ctx || kv->n_pending + n > kv->moves_cap)
        return -EINVAL;
    for (uint32_t k = 0; k < n; k++) {
        int32_t want_parent = k == 0 ? -1 : (int32_t)rows[k - 1];
        if (rows[k] >= last_n || s->last_parent[rows[k]] != want_parent)
            return -EINVAL;
    }
    uint32_t *mv = (uint32_t *)kv->moves.map + 4;
    for (uint32_t k = 0; k < n; k++) {
        s->tokens[s->n_past + k] = s->row_tok[rows[k]];
        mv[2 * kv->n_pending] = kv->scratch0 + s->last_off + rows[k];
        mv[2 * kv->n_pending + 1] = s->base + s->n_past + k;
        kv->n_pending++;
    }
    s->n_past += n;
    s->last_n = 0; /* the step's scratch is spoken for */
    return 0;
}

int gpu_seq_rewind(struct gpu_kv *kv, struct gpu_seq *s, uint32_t n_keep)
{
    if (n_keep > s->n_past)
        return -EINVAL;
    /* Only this sequence's moves past n_keep go; the others' stay. */
    uint32_t *mv = (uint32_t *)kv->moves.map + 4, k = 0;
    for (uint32_t i = 0; i < kv->n_pending; i++) {
        uint32_t dst = mv[2 * i + 1];
        if (dst < s->base + n_keep || dst >= s->base + kv->n_ctx) {
            mv[2 * k] = mv[2 * i];
            mv[2 * k + 1] = dst;
            k++;
        }
    }
    kv->n_pending = k;
    s->n_past = n_keep;
    s->last_n = 0;
    return 0;
}

uint32_t gpu_seq_copy_prefix(struct gpu_kv *kv, struct gpu_seq *dst, const struct gpu_seq *src,
                             uint32_t n)
{
    if (dst == src || n > src->n_past)
        return 0;
    gpu_seq_rewind(kv, dst, 0);
    /* Room for the commits of a step beside the copy */
    uint32_t room = kv->moves_cap - kv->n_pending;
    room = room > kv->max_rows ? room - kv->max_rows : 0;
    n = n < room ? n : room;
    uint32_t *mv = (uint32_t *)kv->moves.map + 4;
    for (uint32_t k = 0; k < n; k++) {
        dst->tokens[k] = src->tokens[k];
        mv[2 * kv->n_pending] = src->base + k;
        mv[2 * kv->n_pending + 1] = dst->base + k;
        kv->n_pending++;
    }
    dst->n_past = n;
    return n;
}

void gpu_kv_flush_moves(struct gpu_kv *kv)
{
    uint32_t *mv = kv->moves.map;
    mv[0] = (kv->kvdim / 2 + 63) / 64; /* kv_commit.comp: 64 words a workgroup */
    mv[1] = kv->n_pending;
    mv[2] = 1;
    kv->n_pending = 0;
}
