/* Private to llama/gpu_*.c: the model's weights on the GPU and their
 * layout. */
#ifndef LADE_LLAMA_GPU_WEIGHTS_H
#define LADE_LLAMA_GPU_WEIGHTS_H

#include "llama/gpu_kernels.h"

/* A weight matrix: rows chunked within the binding limit, one descriptor
 * set per chunk (gpu_sets.c). Formats whose GPU layout differs from the
 * file's are repacked on the way up (repack.h). */
struct gpu_mat {
    uint32_t type; /* ggml type */
    uint32_t rows, cols;
    struct vkr_rows w;
    uint64_t bytes; /* the weights' bytes as stored */
    /* row 0: one format; else rows from tail.row on are tail.type's
     * (upload_mixed in gpu_weights.c; Q4_K_M's V under Q and K) */
    struct gpu_mm_tail tail;
    const struct vkr_kernel *kernel[GEOM_N]; /* matmul.comp in each geometry */
    bool cm; /* multiplied by matmul_cm.comp (the matrix units) at every T */
    VkDescriptorSet set[VKR_MAX_CHUNKS];
};

struct gpu_layer {
    struct gpu_mat wq, wk, wv, wo, wg, wu, wd;
    /* Gate and up stacked in one buffer (2 ffn rows), for the matrix
     * kernel's fused SwiGLU (matmul.comp EPI_SWIGLU); then wg and wu are
     * empty. Not when their types differ or the pair needs two chunks. */
    struct gpu_mat wgu;
    bool fused_gu;
    /* Q, K and V stacked likewise (qdim + 2 kvdim rows), for the one
     * product with RoPE and the cache writes fused (EPI_QKV); then wq, wk
     * and wv are empty. Only where gpu_weights_src.stack_qkv says the
     * epilogue can run and the three fit one chunk; in two formats, V's
     * not Q's and K's (Q4_K_M), as a two-format stack (gpu_mat.tail).
     * Where that cannot be (no room for its pipelines, a head part not of
     * whole 16-byte words), Q and K alone (n_qkv 2) and V on its own in
     * wv; n_qkv 0: nothing stacked. */
    struct gpu_mat wqkv;
    uint32_t n_qkv;
    struct vkr_buf attn_norm, ffn_norm; /* f32 [dim] */
    struct vkr_buf bq, bk,
            bv; /* f32 [qdim], [kvdim], [kvdim]: Q/K/V biases (llm_config.qkv_bias) */
    struct vkr_buf q_norm, k_norm; /* f32 [head_dim]: the heads' norms (llm_config.qk_norm) */
    /* The layer's sets that are not a matrix's (gpu_sets.c); s_bias and
     * s_qk_norm only where the model has them. */
    VkDescriptorSet s_norm1, s_norm2, s_rope, s_att, s_commit, s_bias[3], s_qk_norm;
};

struct gpu_weights {
    struct gpu_mat embd; /* token_embd, read by embed.comp */
    struct gpu_mat head; /* output (or token_embd when tied), the LM head */
    struct vkr_buf out_norm;
    struct gpu_layer *layers; /* [n_layers] */
    uint64_t bytes; /* read by one plain decoding step */
};

/* Where the weights come from and how to lay them out. */
struct gpu_weights_src {
    const struct llm_gguf *gguf;
    const struct llm_config *cfg;
    uint32_t qdim, kvdim;
    bool stack_gate_up; /* gate and up in one buffer, where they can be (the fused SwiGLU) */
    bool stack_qkv; /* Q, K and V in one buffer, where they can be (EPI_QKV) */
    bool (*cancel)(void *ud); /* optional: polled before each tensor (llm_model_opts) */
    void *cancel_ud;
};

/* Uploads every weight in one batch (the copies overlap the host's reading
 * and repacking of the next tensor), building the matrix pipelines of
 * each format met. 0 or negative errno with a reason naming the tensor. */
int gpu_weights_upload(struct gpu_weights *w, struct vkr_ctx *vk, struct gpu_kernels *ks,
                       const struct gpu_weights_src *src, char *reterr, size_t errlen);
/* Frees what gpu_weights_upload made, also when it failed half way. */
void gpu_weights_free(struct gpu_weights *w, struct vkr_ctx *vk, const struct llm_config *c);

#endif
