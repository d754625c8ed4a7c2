/* Private to llama/gpu_*.c: the GPU model's state. */
#ifndef LADE_LLAMA_GPU_INTERNAL_H
#define LADE_LLAMA_GPU_INTERNAL_H

#include "llama/llm.h"
#include "vk/vkr.h"

/* Matrix kernel geometry (spec constants of matmul.comp). Up to three per
 * device: one for one-token steps (plain decoding; tile 1, so that no
 * registers are held for tokens that are not there), one for decode-sized
 * steps (T <= its tile), one for wide steps (lookahead verification,
 * prefill). The per-output arithmetic is the same in every geometry, so
 * results do not depend on which ran (gpu_model.c picks them; LADE_MM_ONE,
 * LADE_MM and LADE_MM_WIDE override them for tuning). */
struct gpu_mm_geom {
    uint32_t local;   /* workgroup size */
    uint32_t tile;    /* tokens a workgroup takes */
    uint32_t rps;     /* rows a subgroup reduces together */
    uint32_t unroll;  /* runs of 8 weights a lane loads before using them */
    uint32_t rows_wg; /* rows a workgroup covers */
    uint32_t xsh;     /* floats of input staged in shared memory (matmul.comp XSH), 0: none */
};
/* matmul.comp's push constants. */
struct pc_matmul {
    uint32_t ncols, nrows, ntok, x_stride, y_stride, y_off, flags;
    uint32_t epi, head_dim, rope_dims, slot0; /* fused epilogue (EPI_*, gpu_forward.c) */
    float theta;
};

/* Subgroups sharing one row (matmul.comp SPLITK): one value per device for
 * both geometries, since it changes the order of a row's sum. */

enum gpu_kernel_id {
    K_EMBED,
    K_RMSNORM,
    K_ROPE_KV,
    K_ATTENTION,
    K_ATTN_MERGE,
    K_SWIGLU,
    K_ARGMAX,
    K_DRAW,
    K_PENALTY,
    K_TOPK,
    K_KV_COMMIT,
    K_COUNT,
};

/* Blocks of DEC_DRAW_BLOCK tokens draw.comp keeps in workgroup memory:
 * draws on the GPU for vocabularies up to 262144 tokens. */
#define GPU_DRAW_MAX_BLOCKS 2048u

/* Tokens a row's repetition penalty may look back over on the GPU
 * (penalty.comp); a longer penalty_last_n is left to the host. */
#define GPU_PEN_MAX 256u

/* Weight formats the matrix kernels decode (weights.glsl); one matmul
 * pipeline per format the model uses. */
enum {
    GPU_N_TYPES = 11,
};

/* A weight matrix on the GPU: rows chunked within the binding limit, one
 * descriptor set per chunk made at load time. */
struct gpu_mat {
    uint32_t type;
    uint32_t rows, cols;
    struct vkr_rows w;
    const struct vkr_kernel *kernel[3]; /* geometries mmg[0..2] */
    bool cm; /* multiplied by matmul_cm.comp (the matrix units) at every T */
    VkDescriptorSet set[VKR_MAX_CHUNKS];
};

struct gpu_layer {
    struct gpu_mat wq, wk, wv, wo, wg, wu, wd;
    /* Gate and up stacked in one buffer (2 ffn rows), for the matrix
     * kernel's fused SwiGLU (matmul.comp EPI 1); then wg and wu are empty.
     * Not when their types differ or the pair needs two chunks. */
    struct gpu_mat wgu;
    bool fused_gu;
    struct vkr_buf attn_norm, ffn_norm; /* f32 [dim] */
    struct vkr_buf kc, vc;              /* f16 [(n_ctx + max_rows) x kvdim]: cache, then scratch slots */
    VkDescriptorSet s_norm1, s_norm2, s_rope, s_att, s_commit;
};

/* What a recorded step depends on besides the model and the sampling
 * parameters (set_draw drops every recording): its rows and the head's
 * work (struct head_work in gpu_forward.c), with each readback slot's
 * source kept beside it (gpu_recorded.slot_src). */
struct gpu_step_key {
    uint32_t n, nsel, nslot, ndraw, ntop, npen;
    bool argmax;
};

struct gpu_recorded {
    struct vkr_cmd cmd;
    bool valid;
    struct gpu_step_key key;
    uint32_t *slot_src; /* [max_rows], the first key.nslot meaningful */
    int ts0, ts1;       /* the step's first and last timestamps */
    uint64_t used;      /* steps.clock when last submitted */
};

#define GPU_STEP_CACHE 64u

struct llm_model {
    struct llm_gguf *gguf;
    struct llm_config cfg;
    struct llm_tok *tok;
    struct vkr_ctx *vk;
    char desc[256];
    uint32_t n_ctx, max_rows;
    uint32_t qdim, kvdim;
    uint64_t weight_bytes;

    struct vkr_kernel k[K_COUNT];
    struct vkr_kernel mm[GPU_N_TYPES][3]; /* matmul per weight format and geometry, for the formats present */
    struct gpu_mm_geom mmg[3]; /* decode-sized steps, wide steps, one-token steps */
    uint32_t mm_splitk;
    /* The matrix-unit kernel (matmul_cm.comp) for f16 weights, where the
     * device has VK_NV_cooperative_matrix (LADE_COOPMAT=0 turns it off):
     * mmcm[0] (MODE 0) serves steps of up to 16 tokens, mmcm[1] (MODE 1)
     * wider ones. cm_nsg and cm_kc fix its order of
     * summation, per device, like mm_splitk. */
    bool cm;
    uint32_t cm_nsg, cm_kc;
    struct vkr_kernel mmcm[2];
    uint64_t mm_wide_min;      /* rows x T below which a wide step keeps mmg[0] */
    /* Fused epilogues (matmul.comp EPI; LADE_FUSE=0 turns them off): RoPE
     * and the KV write in the Q, K and V products, SwiGLU in gate/up. */
    bool fuse;
    bool fuse_rope;
    struct vkr_set_pool pool;
    struct gpu_mat embd; /* token_embd, read by the embed kernel */
    struct gpu_mat head; /* output (or token_embd when tied), the LM head */
    struct vkr_buf out_norm;
    struct gpu_layer *layers;
    VkDescriptorSet s_final_norm, s_argmax, s_draw, s_penalty, s_topk;
    /* Sampling on the GPU (the seam's set_draw): the parameters of DRAW
     * rows (draw.comp) and TOPK rows (topk.comp), the penalty of both
     * (penalty.comp); LADE_DRAW=0 leaves all of it to the host. */
    struct {
        bool off;       /* LADE_DRAW=0: no set_draw in the seam */
        bool set;
        float inv_t, min_p, top_p; /* top_p 1: none */
        uint32_t top_k;
        float penalty, inv_penalty;
        uint32_t penalty_last_n;
        uint64_t count; /* rows drawn (llm_model_gpu_draws) */
        uint64_t tops;  /* TOPK rows answered (llm_model_gpu_tops) */
    } draw;

    /* activations, max_rows rows each */
    struct vkr_buf x, xn, q, kk, vv, att, xf, logits;
    struct vkr_buf amax; /* [2 max_rows] ints: argmax of the selected rows, then the draws */
    struct vkr_buf g; /* [max_rows][2 ffn]: gate, then up */
    VkDescriptorSet s_swiglu;
    /* attention's per-split states: [max_rows][n_heads][att_max_split][hd_max + 2] */
    struct vkr_buf att_part;
    VkDescriptorSet s_att_merge;
    uint32_t att_split;      /* positions per attention split (fixed at load: part of the arithmetic) */
    uint32_t att_max_split;  /* splits of the longest possible row */
    uint32_t hd_max;         /* head_dim rounded up to even */
    uint32_t step_max_len;   /* keys the longest row of the step being recorded sees */
    /* per-step row description, written by the host before each submit */
    struct vkr_buf tokens, pos, parent, sel;
    struct vkr_buf drawrow;  /* [max_rows] uvec2 per DRAW row: its LM head row, its u24 */
    struct vkr_buf toprow;   /* [max_rows] per TOPK row: its LM head row */
    struct vkr_buf pen;      /* penalty.comp's lists: [2 max_rows] head row, count; then GPU_PEN_MAX ids a row */
    /* kv_commit.comp's moves: a VkDispatchIndirectCommand (y = the number
     * of moves) and a pad word, then max_rows (source row, destination
     * row) pairs, owed by the last commit */
    struct vkr_buf moves;
    /* The attention's and attn_merge's VkDispatchIndirectCommand, each
     * with a word after it, the split count ([7]): per step, by the host */
    struct vkr_buf stepargs;
    struct vkr_buf cand;     /* [max_rows][DEC_TOPK_MAX] uvec2: TOPK rows' candidates */
    struct vkr_buf readback; /* amax [2 max_rows] ints, then a slot of n_vocab floats per LOGITS or TOPK row */
    struct vkr_buf trace;    /* (n_layers + 1) x dim floats, when tracing */
    bool tracing;

    struct vkr_cmd cmd; /* the step running now */
    /* Steps recorded once and submitted again whenever a step of the same
     * shape comes (gpu_forward.c, "the step cache"): nothing a recorded step
     * holds depends on n_past or on which rows the last commit kept, which
     * the shaders read from buffers. GPU_STEP_CACHE of them, or
     * LADE_STEP_CACHE's number; none when profiling (its timestamps' phases
     * are the last recording's) or with LADE_STEP_CACHE=0. */
    struct {
        struct gpu_recorded *e; /* [n] */
        uint32_t n;
        uint64_t clock;         /* for least-recently-used eviction */
        uint64_t hits, records; /* steps that reused a recording, steps recorded */
    } steps;
    double last_gpu_ms;
    double last_host_ms[3];    /* llm_model_last_step_host_ms */
    bool profiling;
    uint8_t *prof_phase;          /* [prof_cap] phase ended by timestamp i (profiling) */
    uint32_t prof_cap;
    double prof_ms[LLM_PROF_N];   /* of the last step */

    /* sequence state */
    uint32_t n_past;
    uint32_t last_n;         /* rows of the last step still committable, 0 after commit */
    int32_t *last_parent;    /* [max_rows] parents of the last step */
    uint32_t *depth;         /* [max_rows] scratch for step validation */
    int32_t *want_rows;      /* [max_rows] step row of each selected (LM head) row */
    struct dec_row *rowbuf;  /* [max_rows] prefill chunk rows */
    uint32_t *chain;         /* [max_rows] 0, 1, 2, ...: a prefill chunk's commit */
    int32_t *argmax_tmp;     /* [max_rows] a prefill chunk's argmax */
    uint32_t *logit_src;     /* [max_rows] per readback slot: the selected row whose logits it gets, or
                              * GPU_SLOT_TOPK | the TOPK row whose candidates */
    int32_t *draw_rows;      /* [max_rows] step row of each DRAW row */
    int32_t *row_tok;        /* [max_rows] tokens of the last step's rows */
    int32_t *seq;            /* [n_ctx] tokens whose KV the cache holds (the penalty's history) */
    uint32_t *seen;          /* [n_vocab] epoch stamps: a penalty list holds each token once */
    uint32_t seen_epoch;
    uint32_t n_pending;      /* moves written to `moves` by the last commit */
};

#define GPU_SLOT_TOPK 0x80000000u

int gpu_model_build_sets(struct llm_model *m, char *reterr, size_t errlen);
int gpu_step(struct llm_model *m, const struct dec_row *rows, uint32_t n, int32_t *ret_argmax, float *ret_logits);
int gpu_commit(struct llm_model *m, const uint32_t *rows, uint32_t n);
/* Drops every recorded step (after a change of what they were recorded with). */
void gpu_forget_steps(struct llm_model *m);

#endif
