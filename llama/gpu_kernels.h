/* Private to llama/gpu_*.c: the GPU model's kernels. For each shader, its
 * push-constant block and its bindings are declared here once, in the
 * shader's order; gpu_kernels.c's table pairs them with the SPIR-V, and
 * gpu_sets.c binds buffers by these names. A change to a shader's push
 * block or bindings changes this file, and vkr_kernel_new checks both
 * against the SPIR-V when the pipeline is made. */
#ifndef LADE_LLAMA_GPU_KERNELS_H
#define LADE_LLAMA_GPU_KERNELS_H

#include "llama/llm.h"
#include "vk/vkr.h"

enum gpu_kernel_id {
    K_EMBED,
    K_RMSNORM,
    K_ROPE_KV,
    K_ATTENTION,
    K_ATTENTION_ONE, /* attention.comp for one-row steps: groups of one row (where
                      * K_ATTENTION's are larger; else not made) */
    K_ATTN_MERGE,
    K_SWIGLU,
    K_ARGMAX,
    K_DRAW,
    K_PENALTY,
    K_TOPK,
    K_KV_COMMIT,
    K_BIAS,
    K_QK_NORM,
    K_COUNT,
};

/* ---- push-constant blocks, one per shader (the shader's `P`), each with
 * the size of the shader's block (std430, 4-byte members) ---------------- */

struct pc_embed { /* embed.comp */
    uint32_t dim, ntok;
    uint32_t row0, nrows; /* the chunk's first vocabulary row, its rows */
    uint32_t norm_out; /* 1: also x * the first norm's weights into XN (MM_NORM_OUT) */
};
_Static_assert(sizeof(struct pc_embed) == 20, "embed.comp's push block");
struct pc_norm { /* rmsnorm.comp */
    uint32_t dim;
    uint32_t gather; /* 1: row i reads row SEL[i] (the head's selected rows) */
    float eps;
};
_Static_assert(sizeof(struct pc_norm) == 12, "rmsnorm.comp's push block");
struct pc_rope { /* rope_kv.comp */
    uint32_t ntok, qdim, kvdim, head_dim, rope_dims;
    uint32_t slot0; /* the first scratch slot of the cache (n_ctx) */
    float mscale; /* cos and sin multiplied by it (llm_config.rope_mscale) */
};
_Static_assert(sizeof(struct pc_rope) == 28, "rope_kv.comp's push block");
struct pc_att { /* attention.comp */
    uint32_t slot0, head_dim, n_heads, kvdim;
    float scale;
    uint32_t max_split; /* splits att_part has room for per (row, head) */
    uint32_t groups; /* word of gpu_rows.att where the row groups' table starts */
};
_Static_assert(sizeof(struct pc_att) == 28, "attention.comp's push block");
struct pc_att_merge { /* attn_merge.comp */
    uint32_t head_dim, n_heads, max_split;
};
_Static_assert(sizeof(struct pc_att_merge) == 12, "attn_merge.comp's push block");
struct pc_swiglu { /* swiglu.comp */
    uint32_t ffn, ntok;
};
_Static_assert(sizeof(struct pc_swiglu) == 8, "swiglu.comp's push block");
struct pc_argmax { /* argmax.comp */
    uint32_t n_vocab;
};
_Static_assert(sizeof(struct pc_argmax) == 4, "argmax.comp's push block");
/* The sampling parameters of draw.comp, topk.comp and penalty.comp are
 * per row, in their row buffers (gpu_rows.h): rows of sequences with
 * different parameters share a step, and a recorded step serves any. */
struct pc_draw { /* draw.comp */
    uint32_t n_vocab;
    uint32_t out_off; /* where the drawn ids start in the output (max_rows) */
};
_Static_assert(sizeof(struct pc_draw) == 8, "draw.comp's push block");
struct pc_penalty { /* penalty.comp */
    uint32_t n_vocab, max_rows;
    uint32_t stride; /* ids a row's list has room for (GPU_PEN_MAX) */
};
_Static_assert(sizeof(struct pc_penalty) == 12, "penalty.comp's push block");
struct pc_topk { /* topk.comp */
    uint32_t n_vocab;
};
_Static_assert(sizeof(struct pc_topk) == 4, "topk.comp's push block");
struct pc_kv_commit { /* kv_commit.comp */
    uint32_t words; /* kvdim / 2: a cache row in 32-bit words */
};
_Static_assert(sizeof(struct pc_kv_commit) == 4, "kv_commit.comp's push block");
struct pc_matmul { /* matmul.comp and matmul_cm.comp */
    uint32_t ncols, nrows, ntok, x_stride, y_stride, y_off, flags;
    uint32_t epi, head_dim, rope_dims, slot0; /* the fused epilogue (EPI_*) and RoPE's terms */
    float mscale;
    float eps; /* MM_NORM: the folded norm's epsilon */
    uint32_t kvdim; /* EPI_QKV: K's and V's rows (Q's are y_stride) */
};
struct pc_bias { /* bias.comp */
    uint32_t n, ntok;
};
struct pc_qk_norm { /* qk_norm.comp */
    uint32_t head_dim, n_heads, n_kv_heads;
    float eps;
};
_Static_assert(sizeof(struct pc_matmul) == 56, "matmul.comp's push block");
_Static_assert(sizeof(struct pc_bias) == 8, "bias.comp's push block");
_Static_assert(sizeof(struct pc_qk_norm) == 16, "qk_norm.comp's push block");

/* matmul.comp's flags and fused epilogues */
#define MM_ACCUMULATE 1u /* Y += W X */
#define MM_GATHER 2u /* token t reads X row SEL[t] */
/* X is x * the norm's weights (written by whatever wrote x, MM_NORM_OUT),
 * B_MM_XR the residual x itself: the RMSNorm's scale is folded in */
#define MM_NORM 4u
/* With MM_ACCUMULATE: each new x also times the next norm's weights
 * (B_MM_NW) into B_MM_XN, the input of the next MM_NORM product */
#define MM_NORM_OUT 16u
/* EPI_STORE: EPI_NONE's store after the barrier, for MM_NORM's scale
 * and MM_NORM_OUT's second write (kept out of the unrolled tile) */
enum { EPI_NONE, EPI_SWIGLU, EPI_ROPE, EPI_ROPE_CACHE, EPI_CACHE, EPI_QKV, EPI_STORE };

/* ---- bindings, in each shader's order ------------------------------------ */

/* embed.comp: NW and XN used with norm_out only */
enum { B_EMBED_W, B_EMBED_TOK, B_EMBED_X, B_EMBED_NW, B_EMBED_XN, B_EMBED_N };
enum { B_NORM_X, B_NORM_W, B_NORM_Y, B_NORM_SEL, B_NORM_N };
enum { B_ROPE_Q, B_ROPE_K, B_ROPE_V, B_ROPE_KC, B_ROPE_VC, B_ROPE_POS, B_ROPE_N };
enum { B_ATT_Q, B_ATT_KC, B_ATT_VC, B_ATT_OUT, B_ATT_ROWS, B_ATT_PART, B_ATT_N };
enum { B_MERGE_PART, B_MERGE_OUT, B_MERGE_ARGS, B_MERGE_N };
enum { B_SWIGLU_GU, B_SWIGLU_N };
enum { B_ARGMAX_LOGITS, B_ARGMAX_OUT, B_ARGMAX_N };
enum { B_DRAW_LOGITS, B_DRAW_ROWS, B_DRAW_OUT, B_DRAW_N };
enum { B_PEN_LOGITS, B_PEN_LISTS, B_PEN_N };
enum { B_TOPK_LOGITS, B_TOPK_ROWS, B_TOPK_OUT, B_TOPK_N };
enum { B_COMMIT_KC, B_COMMIT_VC, B_COMMIT_MOVES, B_COMMIT_N };
enum { B_BIAS_Y, B_BIAS_B, B_BIAS_N };
enum { B_QKN_Q, B_QKN_K, B_QKN_QW, B_QKN_KW, B_QKN_N };
/* matmul.comp, matmul_q8.comp and matmul_cm.comp: the caches are
 * written only by the K and V products' epilogues (CACHE2, V's, only by
 * the stacked Q/K/V product's); the residual XR read only with MM_NORM;
 * the next norm's weights NW read and XN written only with MM_NORM_OUT;
 * other products bind any buffer there. */
enum {
    B_MM_W,
    B_MM_X,
    B_MM_Y,
    B_MM_SEL,
    B_MM_CACHE,
    B_MM_POS,
    B_MM_NW,
    B_MM_CACHE2,
    B_MM_XR,
    B_MM_XN,
    B_MM_N
};
/* The counting variant (matmul_count: matmul.comp with LADE_COUNT) has one
 * binding more, after these: its counters. */
#define B_MM_COUNTS B_MM_N

/* The positions buffer (B_MM_POS, B_ROPE_POS) holds max_rows positions,
 * then RoPE's frequency of each pair (llm_config_rope_freq, float bits) at
 * word max_rows: the shaders' FREQ_OFF. */

/* Blocks of DEC_DRAW_BLOCK tokens draw.comp keeps in workgroup memory:
 * draws on the GPU for vocabularies up to 262144 tokens. */
#define GPU_DRAW_MAX_BLOCKS 2048u

/* Tokens a row's repetition penalty may look back over on the GPU
 * (penalty.comp); a longer penalty_last_n is left to the host. */
#define GPU_PEN_MAX 256u

/* Weight formats the matrix kernels decode (weights.glsl); one matmul
 * pipeline per format the model uses. */
#define GPU_N_TYPES 11

/* matmul.comp's geometry as built: the tuning's, and what follows from it
 * on this device. Every geometry computes each output with the same
 * arithmetic, so results do not depend on which ran. */
struct gpu_mm_geom {
    uint32_t local; /* workgroup size */
    uint32_t tile; /* tokens a workgroup takes */
    uint32_t rps; /* rows a subgroup reduces together */
    uint32_t unroll; /* runs of 8 weights a lane loads before using them */
    uint32_t rows_wg; /* rows a workgroup covers */
    uint32_t xsh; /* floats of input staged in shared memory (matmul.comp XSH), 0: none */
    uint32_t sub; /* tokens one pass of the token loop unrolls (matmul.comp SUB_T), 0: the tile */
};

/* The geometries: decode-sized steps (T up to its tile), wide steps,
 * one-token steps. */
enum { GEOM_DECODE, GEOM_WIDE, GEOM_ONE, GEOM_N };

/* A stacked matrix in two formats (weights.glsl's tail): its rows from
 * `row` on are of ggml type `type`, laid out as a matrix of their own
 * from the 16-byte word `word` of the buffer. */
struct gpu_mm_tail {
    uint32_t row, type, word;
};

/* A matrix kernel's description given weights.glsl's tail constants
 * (13-15; n_spec 16), or left as it is for tail NULL. */
void gpu_spec_tail(struct vkr_kernel_desc *d, const struct gpu_mm_tail *tail);

/* Distinct two-format matrices a model may have (each its own
 * pipelines): Q4_K_M files have one, Q and K in Q4_K with V in Q6_K at
 * every layer's shape; a model past this stacks them no more. */
#define GPU_N_MIXED 4

struct gpu_kernels {
    struct vkr_kernel k[K_COUNT];
    struct vkr_kernel mm[GPU_N_TYPES][GEOM_N]; /* matmul per weight format, for the formats present */
    /* matmul.comp for a format mm[] holds on the integer path, for the
     * matrices kept off it (gpu_kernels_matmul_float) */
    struct vkr_kernel mmf[GPU_N_TYPES][GEOM_N];
    struct gpu_mm_geom mmg[GEOM_N];
    /* matmul for two-format stacks, one set per (head type, tail) */
    struct {
        uint32_t type;
        struct gpu_mm_tail tail;
        struct vkr_kernel k[GEOM_N];
    } mixed[GPU_N_MIXED];
    uint32_t n_mixed;
    uint32_t mm_splitk; /* subgroups sharing a row: part of a row's sum order */
    uint64_t mm_wide_min; /* rows x T below which a wide step keeps the decode geometry */
    /* matmul_cm.comp, f16 on the matrix units: [0] (MODE 0) for steps of up
     * to 16 tokens, [1] (MODE 1) wider ones; cm_nsg and cm_kc fix its
     * order of summation, per device, like mm_splitk. */
    bool cm;
    uint32_t cm_nsg, cm_kc;
    struct vkr_kernel mmcm[2];
    /* attention.comp: splits of att_split keys (fixed at load: part of the
     * arithmetic), att_max_split of them for the longest row */
    uint32_t att_split, att_max_split;
    /* attention.comp: rows of one sequence a workgroup takes, sharing
     * each committed K and V load (a spec constant; gpu_rows.c groups a
     * step's rows by it) */
    uint32_t att_rows;
    uint32_t hd_max; /* head_dim (even: checked at load), the attention kernels' spec constant */
    uint32_t freq_off; /* where RoPE's table starts in the positions buffer (max_rows) */
    bool count; /* matmul pipelines are the counting variant, B_MM_N + 1 bindings */
    /* The integer path (tuning idot): the formats gpu_idot_type takes
     * multiply in matmul_q8.comp, built in matmul.comp's place in mm[]. */
    bool idot;
};

/* Index of a ggml type among the formats the matrix kernels decode, or -1. */
int gpu_type_slot(uint32_t type);

/* What the kernels are built for. */
struct gpu_kernels_shape {
    const struct llm_config *cfg;
    uint32_t n_ctx; /* positions of the cache */
    uint32_t max_rows; /* rows of one step */
    uint32_t embd_type; /* the token embedding's ggml type (embed.comp decodes it) */
    bool f16_layers; /* the layers' matrices are f16 (the matrix units can take them) */
    bool rope_neox; /* rope_kv.comp rotates NeoX pairs */
    bool count; /* the counting variant of the matrix kernel (llm_model_opts.count) */
};

/* The geometries and every kernel but the matrix products, for a model of
 * this shape with tuning t (resolved). 0 or negative errno with a reason. */
int gpu_kernels_build(struct gpu_kernels *ks, struct vkr_ctx *vk,
                      const struct gpu_kernels_shape *sh, const struct llm_tuning *t, char *reterr,
                      size_t errlen);
/* The matrix pipelines of a weight format (every geometry, and the matrix
 * units' for f16 where they run), built the first time the format is
 * asked for: pipeline builds cost on CPU drivers. */
int gpu_kernels_matmul(struct gpu_kernels *ks, struct vkr_ctx *vk, uint32_t type,
                       const struct vkr_kernel *ret[GEOM_N]);
/* The same on the float path (matmul.comp) whatever the tuning: for the
 * LM head, whose input's 8-bit rounding would move the logits directly
 * (gpu_weights.c). */
int gpu_kernels_matmul_float(struct gpu_kernels *ks, struct vkr_ctx *vk, uint32_t type,
                             const struct vkr_kernel *ret[GEOM_N]);
/* The same for a stacked matrix of `type` rows then tail's (matmul.comp,
 * or matmul_q8.comp where the integer path takes both formats; -ENOTSUP
 * where it takes one only), built the first time that pair and shape is
 * asked for; -ENOSPC when GPU_N_MIXED are built already. */
int gpu_kernels_matmul_mixed(struct gpu_kernels *ks, struct vkr_ctx *vk, uint32_t type,
                             const struct gpu_mm_tail *tail, const struct vkr_kernel *ret[GEOM_N]);
void gpu_kernels_free(struct gpu_kernels *ks, struct vkr_ctx *vk);

/* gpu_idot.c: whether the integer path takes weights of this ggml type;
 * its pipeline for one geometry (tail: a two-format stack's second
 * format, or NULL; the counting variant with ks->count,
 * OpSDot where the device has it). 0, -ENOTSUP when its inputs do not fit
 * the workgroup memory, or vkr_kernel_new's error. */
bool gpu_idot_type(uint32_t type);
int gpu_idot_kernel(const struct gpu_kernels *ks, struct vkr_ctx *vk, uint32_t type,
                    const struct gpu_mm_tail *tail, const struct gpu_mm_geom *g,
                    struct vkr_kernel *ret);

#endif
