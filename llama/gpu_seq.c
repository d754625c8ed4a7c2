/* The sequence the model holds (gpu_seq.h). A commit writes KV moves
 * rather than recording copies, so that nothing a recorded step holds
 * depends on where the sequence stands (gpu_step_cache.h). */
#include "llama/gpu_seq.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

int gpu_seq_build(struct gpu_seq *s, struct vkr_ctx *vk, uint32_t n_layers, uint32_t kvdim,
                  uint32_t n_ctx, uint32_t max_rows, char *reterr, size_t errlen)
{
    *s = (struct gpu_seq){
        .n_layers = n_layers, .kvdim = kvdim, .n_ctx = n_ctx, .max_rows = max_rows
    };
    VkDeviceSize kv = (VkDeviceSize)(n_ctx + max_rows) * kvdim * 2;
    if (kv > vkr_max_binding(vk)) {
        snprintf(reterr, errlen,
                 "KV cache of one layer (%llu bytes) exceeds the device's binding limit: lower the "
                 "context length",
                 (unsigned long long)kv);
        return -E2BIG;
    }
    s->kc = calloc(n_layers, sizeof(*s->kc));
    s->vc = calloc(n_layers, sizeof(*s->vc));
    s->last_parent = calloc(max_rows, sizeof(*s->last_parent));
    s->row_tok = calloc(max_rows, sizeof(*s->row_tok));
    s->tokens = calloc(n_ctx, sizeof(*s->tokens));
    if (!s->kc || !s->vc || !s->last_parent || !s->row_tok || !s->tokens) {
        snprintf(reterr, errlen, "out of memory");
        return -ENOMEM;
    }
    int err = 0;
    for (uint32_t l = 0; !err && l < n_layers; l++) {
        err = vkr_buf_new(vk, kv, VKR_MEM_DEVICE, &s->kc[l]);
        err = err ? err : vkr_buf_new(vk, kv, VKR_MEM_DEVICE, &s->vc[l]);
        if (err)
            snprintf(reterr, errlen, "layer %u: %s", l, vk->err);
    }
    if (!err && (err = vkr_buf_new(vk, 16 + (VkDeviceSize)max_rows * 8, VKR_MEM_UPLOAD, &s->moves)))
        snprintf(reterr, errlen, "KV moves: %s", vk->err);
    return err;
}

void gpu_seq_free(struct gpu_seq *s, struct vkr_ctx *vk)
{
    for (uint32_t l = 0; l < s->n_layers; l++) {
        if (s->kc)
            vkr_buf_free(vk, &s->kc[l]);
        if (s->vc)
            vkr_buf_free(vk, &s->vc[l]);
    }
    vkr_buf_free(vk, &s->moves);
    free(s->kc);
    free(s->vc);
    free(s->last_parent);
    free(s->row_tok);
    free(s->tokens);
    *s = (struct gpu_seq){ 0 };
}

int gpu_seq_commit(struct gpu_seq *s, const uint32_t *rows, uint32_t n)
{
    if (n > s->last_n || s->n_past + n > s->n_ctx || s->n_pending + n > s->max_rows)
        return -EINVAL;
    for (uint32_t k = 0; k < n; k++) {
        int32_t want_parent = k == 0 ? -1 : (int32_t)rows[k - 1];
        if (rows[k] >= s->last_n || s->last_parent[rows[k]] != want_parent)
            return -EINVAL;
    }
    uint32_t *mv = (uint32_t *)s->moves.map + 4;
    for (uint32_t k = 0; k < n; k++) {
        s->tokens[s->n_past + k] = s->row_tok[rows[k]];
        mv[2 * s->n_pending] = s->n_ctx + rows[k];
        mv[2 * s->n_pending + 1] = s->n_past + k;
        s->n_pending++;
    }
    s->n_past += n;
    s->last_n = 0; /* the step's scratch is spoken for */
    return 0;
}

int gpu_seq_rewind(struct gpu_seq *s, uint32_t n_keep)
{
    if (n_keep > s->n_past)
        return -EINVAL;
    uint32_t *mv = (uint32_t *)s->moves.map + 4, k = 0;
    for (uint32_t i = 0; i < s->n_pending; i++)
        if (mv[2 * i + 1] < n_keep) {
            mv[2 * k] = mv[2 * i];
            mv[2 * k + 1] = mv[2 * i + 1];
            k++;
        }
    s->n_pending = k;
    s->n_past = n_keep;
    s->last_n = 0;
    return 0;
}

void gpu_seq_flush_moves(struct gpu_seq *s)
{
    uint32_t *mv = s->moves.map;
    mv[0] = (s->kvdim / 2 + 63) / 64; /* kv_commit.comp: 64 words a workgroup */
    mv[1] = s->n_pending;
    mv[2] = 1;
    s->n_pending = 0;
}
