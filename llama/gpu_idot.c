/* The integer path of the matrix products (tuning idot, matmul_q8.comp):
 * which weight formats take it, and its pipelines. It has matmul.comp's
 * bindings, push block, grid and geometry constants, so gpu_kernels_matmul
 * builds it in matmul.comp's place for those formats and recording is
 * unchanged. */
#include <errno.h>

#include "llama/gpu_kernels.h"
#include "llama/q8act.h"
#include "shaders/shaders.h"

/* The CPU twin's list (llama/q8act.h): the formats whose arithmetic it
 * defines are the ones the kernel takes. */
bool gpu_idot_type(uint32_t type)
{
    return llm_q8_weight_type(type);
}

/* Blocks of 32 inputs a token the kernel stages at once (QCB): as many as
 * the workgroup memory left by the epilogue's sums holds, up to 64 (K =
 * 2048, beyond which chunks cost little; 64 blocks of 72 bytes for a tile
 * of 8 tokens is 36 KiB); 0 if not even one fits. The
 * same for every format: a chunk may split a K-quant's super-block, whose
 * 32-blocks each lane decodes on its own. */
static uint32_t idot_qcb(const struct vkr_device_info *di, const struct gpu_mm_geom *g)
{
    /* the epilogue's sums and the folded norm's scales (mm_norm.glsl);
     * a block-token is 16 words of the two planes, d and s (matmul_q8.comp's
     * qs, qd, qsum) */
    uint64_t stage = 4ull * 2 * g->rows_wg * g->tile + 4ull * g->tile, per = 72ull * g->tile;
    if (stage + per > di->max_compute_shared_memory)
        return 0;
    uint64_t n = (di->max_compute_shared_memory - stage) / per;
    return n > 64 ? 64 : (uint32_t)n;
}

int gpu_idot_kernel(const struct gpu_kernels *ks, struct vkr_ctx *vk, uint32_t type,
                    const struct gpu_mm_tail *tail, const struct gpu_mm_geom *g,
                    struct vkr_kernel *ret)
{
    uint32_t qcb = idot_qcb(&vk->info, g);
    if (!qcb)
        return -ENOTSUP;
    /* OpSDot where the device enabled it, else the same integers by
     * multiply-adds; the counting build counts either way. */
    struct vkr_kernel_desc d = { "matmul_q8",
                                 lade_spv_matmul_q8,
                                 lade_spv_matmul_q8_bytes,
                                 B_MM_N,
                                 sizeof(struct pc_matmul),
                                 12,
                                 { type, g->local, g->tile, g->rows_wg, g->rps, 0, 0, 0, 0,
                                   ks->freq_off, g->sub, qcb } };
    gpu_spec_tail(&d, tail);
    if (ks->count) {
        d.name = "matmul_q8_count";
        d.spirv = lade_spv_matmul_q8_count;
        d.spirv_bytes = lade_spv_matmul_q8_count_bytes;
        d.n_bindings = B_MM_N + 1;
    } else if (vk->has_idot) {
        d.name = "matmul_q8_sdot";
        d.spirv = lade_spv_matmul_q8_sdot;
        d.spirv_bytes = lade_spv_matmul_q8_sdot_bytes;
    }
    return vkr_kernel_new(vk, &d, ret);
}
