/* llama: LLaMA-family models from GGUF files, on Vulkan. This is the
 * folder's public header: the GPU model and its model-step interface, plus
 * the pieces callers use directly (GGUF reader, configuration, tokenizer,
 * chat templates, CPU reference forward). */
#ifndef LADE_LLAMA_LLM_H
#define LADE_LLAMA_LLM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decoding/dec.h"
#include "llama/config.h"
#include "llama/gguf.h"
#include "llama/jinja.h"
#include "llama/ref.h"
#include "llama/tokenizer.h"

struct vkr_ctx;
struct llm_model; /* opaque */

/* How the GPU model computes: the matrix kernels' geometry, the fused
 * epilogues, the attention's splits, draws on the GPU, the step cache and
 * the matrix units. A zero field means "the device's default", chosen at
 * load from the device description (gpu_tuning.c says how); the resolved
 * values are llm_model_tuning()'s. laded fills this from its [tuning]
 * configuration section, tools and tests from LADE_* variables
 * (tools/tuning-env.h): the library itself reads no environment.
 *
 * Knobs marked "bits" change the bits of a result (the order of a sum),
 * never their dependence on which rows share a step; the others change
 * only speed. */
enum llm_switch {
    LLM_SWITCH_DEFAULT = 0,
    LLM_SWITCH_OFF,
    LLM_SWITCH_ON,
};

/* One geometry of matmul.comp (its specialization constants). */
struct llm_mm_geom {
    uint32_t local; /* lanes a workgroup, a power of 2 up to 1024; 0: the device's default */
    uint32_t tile; /* tokens a workgroup takes, 1-32 */
    uint32_t rps; /* rows a subgroup reduces together, 1-8 */
    uint32_t unroll; /* runs of 8 weights a lane loads before using them, 1-8 */
};

#define LLM_STEP_CACHE_OFF UINT32_MAX /* llm_tuning.step_cache: record every step */

struct llm_tuning {
    struct llm_mm_geom mm; /* decode-sized steps (T up to its tile) */
    struct llm_mm_geom mm_wide; /* wide steps (lookahead, prefill) */
    struct llm_mm_geom mm_one; /* one-token steps (plain decoding) */
    uint32_t mm_xsh; /* floats of input staged in shared memory, a multiple of 4 up to 8192; 0: none */
    uint32_t mm_splitk; /* bits: subgroups sharing a matrix row, 1, 2 or 4; 0: 1 */
    enum llm_switch fuse; /* RoPE, the KV write and SwiGLU inside the products; default on */
    enum llm_switch
            coopmat; /* bits: f16 products on the matrix units where the device has them; default off */
    uint32_t cm_nsg,
            cm_kc; /* bits: matmul_cm.comp's split of K: subgroups 1-8, columns 16-256 by 16; 0: 4, 64 */
    uint32_t att_subgroups; /* bits: attention subgroups a workgroup, a power of 2 up to 16; 0: 4 */
    uint32_t att_split; /* bits: keys an attention split takes, 16-65536; 0: 64 on CPUs, 256 on GPUs */
    uint32_t step_cache; /* recorded steps kept for reuse, 1-1024; 0: 64; LLM_STEP_CACHE_OFF: none */
    enum llm_switch draw; /* sampled rows drawn on the GPU (the seam's set_draw); default on */
    enum llm_switch idot; /* bits: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K products on
                           * 8-bit inputs and integer dot products (matmul_q8.comp); default off */
};

/* Sets one knob from text, as the configuration and the environment spell
 * it. Keys and values:
 *   mm, mm_wide, mm_one   "local,tile,rows_per_subgroup,unroll"
 *   mm_xsh                floats (0 for none)
 *   mm_splitk             1, 2 or 4
 *   fuse, coopmat, draw, idot   0 or 1
 *   cm                    "subgroups,columns"
 *   att                   "subgroups,split"
 *   step_cache            recordings, 0 for none
 * 0, or -EINVAL (-ENOENT for an unknown key) with a one-line reason. */
int llm_tuning_set(struct llm_tuning *t, const char *key, const char *value, char *reterr,
                   size_t errlen);
/* The keys llm_tuning_set takes, NULL-terminated. */
extern const char *const llm_tuning_keys[];

struct llm_model_opts {
    const char *path; /* the GGUF file */
    const char *tokenizer_path; /* optional tokenizer.model; default: the GGUF's vocabulary */
    const char *device; /* NULL automatic, index or name substring */
    uint32_t n_ctx; /* 0: the model's context length */
    uint32_t max_rows; /* most rows of one step, 0: 256, or fewer where the device binds less */
    /* Sequences the KV cache holds (each n_ctx positions; their rows may
     * share a step: llm_model_multi), 0: 1 */
    uint32_t n_seq;
    /* Or, when nonzero, the bytes the KV cache may take: as many sequences
     * as fit (llm_model_kv_bytes each), at least one or the load fails. */
    uint64_t kv_budget;
    bool validation; /* Vulkan validation layer */
    bool trace; /* keep per-layer hidden states of a step (tests) */
    bool profile; /* time every phase of a step (llm_model_profile) */
    /* Counting build: the matrix kernels count the weight bytes they load
     * (llm_model_counts); slower, for measuring structure only. The
     * matrix units (matmul_cm.comp) are not used with it. */
    bool count;
    const char *pipeline_cache; /* optional path of the on-disk pipeline cache */
    struct llm_tuning tuning; /* zero: the device's defaults */
    /* Optional: polled between the phases of the load and before every
     * weight tensor goes up; true gives up the load (-ECANCELED). */
    bool (*cancel)(void *ud);
    void *cancel_ud;
};

/* Map the GGUF, validate it, create the tokenizer, choose the device,
 * upload the weights and build every pipeline and descriptor set a step
 * needs. 0 or negative errno with a one-line reason (naming the file, the
 * tensor, the Vulkan call) in reterr; -ECANCELED when opts->cancel said so.
 * The model and tokenizer paths must be regular files: anything else (a
 * FIFO, a device, a directory) is refused before it is opened for reading. */
int llm_model_load(const struct llm_model_opts *opts, struct llm_model **ret, char *reterr,
                   size_t errlen);
void llm_model_free(struct llm_model *m);

const struct llm_config *llm_model_config(const struct llm_model *m);
const struct llm_tok *llm_model_tok(const struct llm_model *m);
const struct llm_gguf *llm_model_gguf(const struct llm_model *m);
struct vkr_ctx *llm_model_vk(struct llm_model *m);
uint32_t llm_model_n_ctx(const struct llm_model *m);
/* "kernelc-22m-f16 (F16, 21.9M params)"-style one-line description. */
const char *llm_model_desc(const struct llm_model *m);
/* Bytes of weights read by one plain decoding step (for bandwidth figures). */
uint64_t llm_model_weight_bytes(const struct llm_model *m);

/* What a step did, counted (llm_model_opts.count). */
struct llm_counts {
    /* Bytes of weights the matrix kernels loaded since the last
     * llm_model_counts_reset, each load by its size (a 16-byte load that
     * decodes 8 of its bytes counts 16); 0 without opts.count. */
    uint64_t weight_bytes;
    /* Bytes of the matrices a one-row step multiplies by: every layer's
     * and the LM head's (not the embedding table, which a step reads a
     * row of). */
    uint64_t matrix_bytes;
    uint32_t step_dispatches; /* dispatches recorded in the last step */
    uint32_t layer_dispatches; /* of which one layer's (layer 0) */
};

/* The counts above; 0 or a negative errno (the counters' read failed). */
int llm_model_counts(struct llm_model *m, struct llm_counts *ret);
/* Zero the weight-byte counter. 0 or a negative errno. */
int llm_model_counts_reset(struct llm_model *m);

#define LLM_MAX_SEQ 256 /* most sequences one model holds */

/* Bytes of KV cache one sequence of n_ctx positions takes (f16 K and V,
 * every layer), and the sequences this model holds. */
uint64_t llm_model_kv_bytes(const struct llm_config *c, uint32_t n_ctx);
uint32_t llm_model_n_seq(const struct llm_model *m);

/* The model step of decoding/dec.h over this model's first sequence. */
void llm_model_dec(struct llm_model *m, struct dec_model *ret);
/* The several-sequence step of decoding/dec.h over all of them. The
 * single-sequence one above is its sequence 0: use one or the other. */
void llm_model_multi(struct llm_model *m, struct dec_multi *ret);

/* The tuning the model runs with: the options' knobs, the device's
 * defaults for the others (geometry local 0 never appears here). */
const struct llm_tuning *llm_model_tuning(const struct llm_model *m);

/* GPU time of the last step from timestamp queries (0 when the device has
 * none), and its row count. */
double llm_model_last_step_gpu_ms(const struct llm_model *m);

/* Host wall time of the last step, in ms, by part: [0] describing the rows
 * and recording the command buffer, [1] from submit until the fence has
 * signalled (the GPU time plus submit and wake-up latency), [2] reading
 * back results (argmax, logits, timestamps). */
void llm_model_last_step_host_ms(const struct llm_model *m, double ret[3]);

/* Steps that submitted again a command buffer recorded for an earlier step
 * of the same shape (the step cache, llama/gpu_step_cache.h), and steps
 * recorded. No reuse when profiling or with step_cache off. */
uint64_t llm_model_reused_steps(const struct llm_model *m);
uint64_t llm_model_recorded_steps(const struct llm_model *m);
/* Tokens drawn on the GPU (DEC_WANT_DRAW rows) since load. */
uint64_t llm_model_gpu_draws(const struct llm_model *m);
/* Rows whose top-k candidates the GPU chose (DEC_WANT_TOPK) since load. */
uint64_t llm_model_gpu_tops(const struct llm_model *m);

/* With opts.profile: GPU milliseconds of the last step by phase, from a
 * timestamp after each barrier (so a phase is every dispatch between two
 * barriers, summed over layers). Phases and names: LLM_PROF_*. */
enum llm_prof_phase {
    LLM_PROF_COMMIT, /* moving the last step's kept KV rows */
    LLM_PROF_EMBED,
    LLM_PROF_NORM, /* attention and FFN RMSNorm */
    LLM_PROF_QKV, /* Q, K, V projections */
    LLM_PROF_ROPE_KV,
    LLM_PROF_ATTENTION,
    LLM_PROF_WO, /* output projection + residual */
    LLM_PROF_GATE_UP, /* gate and up projections */
    LLM_PROF_SWIGLU,
    LLM_PROF_DOWN, /* down projection + residual */
    LLM_PROF_HEAD, /* final norm, LM head, argmax, readback copies */
    LLM_PROF_N,
};
const char *llm_prof_name(enum llm_prof_phase p);
int llm_model_profile(const struct llm_model *m, double ret_ms[LLM_PROF_N]);

/* With opts.trace: the hidden state of the last row of the last step after
 * each layer (n_layers x dim) and after the final norm (dim). */
int llm_model_trace(struct llm_model *m, float *ret_layers, float *ret_final);

#endif
