/* Private to llama/gpu_*.c: the GPU model, made of its parts. Where to
 * look:
 *   gpu_model.c       loading and freeing: the parts below wired together
 *   gpu_tuning.c      struct llm_tuning: knobs, the device's defaults
 *   gpu_kernels.[ch]  the kernel table: shaders, bindings, push blocks
 *   gpu_weights.[ch]  the weights and their GPU layout
 *   gpu_sets.c        descriptor sets: which buffer each binding sees
 *   gpu_seq.[ch]      the sequences: KV cache, n_past, owed KV moves
 *   gpu_rows.[ch]     a step's inputs and outputs
 *   gpu_step_cache.[ch] recorded steps submitted again
 *   gpu_forward.c     the forward pass, recorded layer by layer
 *   gpu_dec.c         the model step of decoding/dec.h on top */
#ifndef LADE_LLAMA_GPU_INTERNAL_H
#define LADE_LLAMA_GPU_INTERNAL_H

#include "llama/gpu_kernels.h"
#include "llama/gpu_rows.h"
#include "llama/gpu_seq.h"
#include "llama/gpu_step_cache.h"
#include "llama/gpu_weights.h"
#include "llama/llm.h"
#include "vk/vkr.h"

/* Activations, max_rows rows each (a row is one of the step's rows, or for
 * the head's buffers one selected row). */
struct gpu_acts {
    struct vkr_buf x; /* [dim] the residual stream */
    struct vkr_buf xn; /* [dim] x after an RMSNorm; fused, x times the norm's weights */
    struct vkr_buf q; /* [qdim] */
    struct vkr_buf kk, vv; /* [kvdim] K and V before RoPE and the f16 cache (unfused path) */
    struct vkr_buf att; /* [qdim] attention output */
    struct vkr_buf g; /* [2 ffn] gate, then up; silu(gate) * up where the gate was */
    struct vkr_buf xf; /* [dim] selected rows after the final norm */
    struct vkr_buf logits; /* [n_vocab] selected rows */
    struct vkr_buf amax; /* [2 max_rows] ints: argmax of the selected rows, then the draws */
    struct vkr_buf cand; /* [DEC_TOPK_MAX] uvec2: TOPK rows' candidates */
    struct vkr_buf
            att_part; /* [n_heads][att_max_split][hd_max + 2]: the attention's per-split states */
    struct vkr_buf trace; /* (n_layers + 1) x dim floats, when tracing */
};

/* Prefill's scratch (gpu_dec.c), [max_rows] each, in one allocation. */
struct gpu_prefill {
    struct dec_row *rows; /* a chunk's rows */
    uint32_t *chain; /* 0, 1, 2, ...: a chunk's commit */
    int32_t *argmax; /* a chunk's argmax */
};

/* Descriptor sets that are not a layer's or a matrix's (gpu_sets.c). */
struct gpu_sets {
    VkDescriptorSet final_norm, argmax, draw, penalty, topk, swiglu, att_merge;
};

struct llm_model {
    /* The model as loaded */
    struct llm_gguf *gguf;
    struct llm_config cfg;
    struct llm_tok *tok;
    struct vkr_ctx *vk;
    char desc[256];
    uint32_t n_ctx, max_rows;
    uint32_t qdim, kvdim;
    struct llm_tuning tuning; /* resolved: no knob left at its zero default */
    /* Fused epilogues (matmul.comp EPI_*): RoPE and the KV write in the
     * Q, K and V products, SwiGLU in gate/up. Off with the matrix units,
     * whose kernel has none. */
    bool fuse;
    bool fuse_rope; /* and every Q, K, V pair (2i, 2i+1) lies in one workgroup */
    /* The final RMSNorm folded into the LM head (matmul.comp MM_NORM):
     * with fuse, which folds the layers' norms, where tracing does not
     * read the normed row and the head runs matmul.comp. */
    bool fuse_norm_head;

    struct gpu_kernels ks;
    struct gpu_weights w;
    struct gpu_acts act;
    struct vkr_set_pool pool;
    struct gpu_sets sets;

    /* A step: its rows, the sequences and their cache, the sampling
     * parameters */
    struct gpu_rows io;
    struct gpu_kv kv;
    struct gpu_seq *seqs; /* [n_seq] */
    uint32_t n_seq;
    struct gpu_part
            *parts; /* [n_seq] a step's parts, as the seams (gpu_dec.c) pass them to gpu_step */
    uint64_t draws; /* rows drawn (llm_model_gpu_draws) */
    uint64_t tops; /* TOPK rows answered (llm_model_gpu_tops) */
    struct vkr_cmd cmd; /* the step running now */
    struct gpu_step_cache steps; /* none when profiling: its phases are the last recording's */

    /* Measurements of the last step */
    double last_gpu_ms;
    double last_host_ms[3]; /* llm_model_last_step_host_ms */
    bool profiling;
    uint8_t *prof_phase; /* [prof_cap] phase ended by timestamp i */
    uint32_t prof_cap;
    double prof_ms[LLM_PROF_N];
    bool tracing;
    /* llm_model_opts.count: matmul_count's counters (two words: weight
     * bytes loaded, low and high), and the dispatches of the last step
     * and of one layer as last recorded (gpu_count.c) */
    bool counting;
    struct vkr_buf counts;
    uint32_t last_dispatches, layer_dispatches;

    struct gpu_prefill prefill;
};

/* The folded norm after layer l's Wd, whose weights times the new x that
 * product writes (MM_NORM_OUT): the next layer's attention norm, the
 * final norm where the head folds it, else NULL (nothing folded). One
 * answer for the recording (the flag) and the sets (the bindings). */
static inline const struct vkr_buf *gpu_norm_after(const struct llm_model *m, uint32_t l)
{
    if (!m->fuse)
        return NULL;
    if (l + 1 < m->cfg.n_layers)
        return &m->w.layers[l + 1].attn_norm;
    return m->fuse_norm_head ? &m->w.out_norm : NULL;
}

int gpu_sets_build(struct llm_model *m, char *reterr, size_t errlen);
/* 0 or -ENOMEM; gpu_prefill_free accepts a zeroed one. */
int gpu_prefill_build(struct gpu_prefill *p, uint32_t max_rows);
void gpu_prefill_free(struct gpu_prefill *p);
/* One forward pass over the rows of n_parts sequences, each at most once
 * (the seam's step; gpu_forward.c). */
int gpu_step(struct llm_model *m, struct gpu_part *parts, uint32_t n_parts);

#endif
