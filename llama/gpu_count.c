/* The counting build (llm_model_opts.count): what a step loads and
 * records, to check the kernels' structure rather than time them. The
 * matrix kernels run as matmul_count (matmul.comp compiled with
 * LADE_COUNT), which adds the bytes of every weight load to a 64-bit
 * counter in m->counts; gpu_forward.c counts the dispatches it records. */
#include <errno.h>

#include "llama/gpu_internal.h"

static uint64_t mat_bytes(const struct gpu_mat *g)
{
    return g->bytes;
}

/* Every layer's matrices and the head: what a one-row step multiplies by. */
static uint64_t matrix_bytes(const struct llm_model *m)
{
    uint64_t b = mat_bytes(&m->w.head);
    for (uint32_t l = 0; l < m->cfg.n_layers; l++) {
        const struct gpu_layer *L = &m->w.layers[l];
        b += mat_bytes(&L->wq) + mat_bytes(&L->wk) + mat_bytes(&L->wv) + mat_bytes(&L->wqkv) +
             mat_bytes(&L->wo) + mat_bytes(&L->wd);
        b += L->fused_gu ? mat_bytes(&L->wgu) : mat_bytes(&L->wg) + mat_bytes(&L->wu);
    }
    return b;
}

int llm_model_counts(struct llm_model *m, struct llm_counts *ret)
{
    uint32_t w[2] = { 0, 0 };
    if (m->counting) {
        int err = vkr_buf_download(m->vk, &m->counts, 0, w, sizeof(w));
        if (err)
            return err;
    }
    *ret = (struct llm_counts){
        .weight_bytes = (uint64_t)w[1] << 32 | w[0],
        .matrix_bytes = matrix_bytes(m),
        .step_dispatches = m->last_dispatches,
        .layer_dispatches = m->layer_dispatches,
    };
    return 0;
}

int llm_model_counts_reset(struct llm_model *m)
{
    const uint32_t zero[4] = { 0 };
    return m->counting ? vkr_buf_upload(m->vk, &m->counts, 0, zero, sizeof(zero)) : 0;
}
