/* The GPU model: a GGUF loaded into device buffers, with every pipeline
 * and descriptor set built once. The parts are listed in gpu_internal.h;
 * this file wires them together in the order they depend on each other. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llama/gpu_internal.h"
#include "llama/gpu_tuning.h"
#include "llama/llm-internal.h"

static int alloc_activations(struct llm_model *m, char *reterr, size_t errlen)
{
    const struct llm_config *c = &m->cfg;
    struct gpu_acts *a = &m->act;
    VkDeviceSize R = m->max_rows;
    struct {
        struct vkr_buf *b;
        VkDeviceSize bytes;
    } t[] = {
        { &a->x, R * c->dim * 4 },
        { &a->xn, R * c->dim * 4 },
        { &a->q, R * m->qdim * 4 },
        { &a->kk, R * m->kvdim * 4 },
        { &a->vv, R * m->kvdim * 4 },
        { &a->att, R * m->qdim * 4 },
        { &a->g, R * c->ffn * 8 },
        { &a->xf, R * c->dim * 4 },
        { &a->logits, R * c->n_vocab * 4 },
        { &a->amax, R * 8 },
        { &a->cand, R * DEC_TOPK_MAX * 8 },
        { &a->att_part, R * c->n_heads * m->ks.att_max_split * (m->ks.hd_max + 2) * 4 },
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        if (t[i].bytes > vkr_max_binding(m->vk)) {
            snprintf(
                    reterr, errlen,
                    "activation buffer of %llu bytes exceeds the device's binding limit: lower max_rows",
                    (unsigned long long)t[i].bytes);
            return -E2BIG;
        }
        int err = vkr_buf_new(m->vk, t[i].bytes, VKR_MEM_DEVICE, t[i].b);
        if (err) {
            snprintf(reterr, errlen, "activations: %s", m->vk->err);
            return err;
        }
    }
    VkDeviceSize trace = m->tracing ? (VkDeviceSize)(c->n_layers + 1) * c->dim * 4 : 4;
    int err = vkr_buf_new(m->vk, trace, VKR_MEM_READBACK, &a->trace);
    if (err) {
        snprintf(reterr, errlen, "activations: %s", m->vk->err);
        return err;
    }
    if (gpu_prefill_build(&m->prefill, m->max_rows)) {
        snprintf(reterr, errlen, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

static void free_activations(struct llm_model *m)
{
    struct gpu_acts *a = &m->act;
    struct vkr_buf *b[] = { &a->x,  &a->xn,     &a->q,    &a->kk,   &a->vv,       &a->att,  &a->g,
                            &a->xf, &a->logits, &a->amax, &a->cand, &a->att_part, &a->trace };
    for (size_t i = 0; i < sizeof(b) / sizeof(b[0]); i++)
        vkr_buf_free(m->vk, b[i]);
}

/* Sequences the cache holds: as asked, or as many as the KV budget
 * holds, each n_ctx positions of K and V in f16 in every layer. */
static int count_sequences(struct llm_model *m, const struct llm_model_opts *o, char *reterr,
                           size_t errlen)
{
    uint64_t per_seq = llm_model_kv_bytes(&m->cfg, m->n_ctx);
    m->n_seq = o->n_seq ? o->n_seq : 1;
    if (o->kv_budget) {
        uint64_t n = o->kv_budget / per_seq;
        if (n == 0) {
            snprintf(reterr, errlen,
                     "a KV cache of %llu KiB holds no sequence: one takes %llu KiB at context %u",
                     (unsigned long long)(o->kv_budget >> 10),
                     (unsigned long long)((per_seq + 1023) >> 10), m->n_ctx);
            return -EINVAL;
        }
        m->n_seq = n < LLM_MAX_SEQ ? (uint32_t)n : LLM_MAX_SEQ;
    }
    if (m->n_seq > LLM_MAX_SEQ) {
        snprintf(reterr, errlen, "%u sequences out of range 1..%u", m->n_seq, LLM_MAX_SEQ);
        return -EINVAL;
    }
    m->seqs = calloc(m->n_seq, sizeof(*m->seqs));
    m->parts = calloc(m->n_seq, sizeof(*m->parts));
    if (!m->seqs || !m->parts) {
        snprintf(reterr, errlen, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

uint64_t llm_model_kv_bytes(const struct llm_config *c, uint32_t n_ctx)
{
    return (uint64_t)c->n_layers * 2 * n_ctx * c->n_kv_heads * c->head_dim * 2;
}

uint32_t llm_model_n_seq(const struct llm_model *m)
{
    return m->n_seq;
}

static int open_model(struct llm_model *m, const struct llm_model_opts *o, char *reterr,
                      size_t errlen)
{
    int err = llm_gguf_open(o->path, &m->gguf, reterr, errlen);
    if (!err)
        err = llm_config_load(m->gguf, &m->cfg, reterr, errlen);
    if (err)
        return err;
    err = o->tokenizer_path ? llm_tok_load_file(o->tokenizer_path, &m->tok, reterr, errlen) :
                              llm_tok_load_gguf(m->gguf, &m->tok, reterr, errlen);
    if (err)
        return err;
    if (llm_tok_n_vocab(m->tok) != (int32_t)m->cfg.n_vocab) {
        snprintf(reterr, errlen, "tokenizer has %d pieces but the model's vocabulary is %u",
                 llm_tok_n_vocab(m->tok), m->cfg.n_vocab);
        return -EINVAL;
    }
    const struct llm_config *c = &m->cfg;
    m->n_ctx = o->n_ctx ? o->n_ctx : c->n_ctx_train;
    if (m->n_ctx == 0 || m->n_ctx > LLM_CONFIG_MAX_CTX) {
        snprintf(reterr, errlen, "context length %u out of range 1..%u", m->n_ctx,
                 LLM_CONFIG_MAX_CTX);
        return -EINVAL;
    }
    m->max_rows = o->max_rows ? o->max_rows : 256;
    if (m->max_rows > 4096) {
        snprintf(reterr, errlen, "max_rows %u out of range 1..4096", m->max_rows);
        return -EINVAL;
    }
    if (c->head_dim % 2 || c->head_dim > 256) {
        snprintf(reterr, errlen, "head dimension %u unsupported (even, at most 256)", c->head_dim);
        return -ENOTSUP;
    }
    m->qdim = c->n_heads * c->head_dim;
    m->kvdim = c->n_kv_heads * c->head_dim;
    err = count_sequences(m, o, reterr, errlen);
    if (err)
        return err;
    m->tracing = o->trace;
    m->profiling = o->profile;
    m->counting = o->count;
    return 0;
}

/* The default max_rows, lowered until a step's largest per-row buffers
 * fit one binding of this device: a 152k vocabulary's logits take 0.6 MB
 * a row, so 256 rows are 155 MB, past the 128 MiB some drivers bind
 * (lavapipe). A max_rows the caller gave is checked, not changed. */
static void fit_max_rows(struct llm_model *m)
{
    const struct llm_config *c = &m->cfg;
    uint64_t row = (uint64_t)c->n_vocab * 4 + 8; /* logits, and their readback with the ids */
    row = (uint64_t)c->ffn * 8 > row ? (uint64_t)c->ffn * 8 : row;
    row = (uint64_t)c->n_heads * 32 * (c->head_dim + 2) * 4 > row ?
                  (uint64_t)c->n_heads * 32 * (c->head_dim + 2) * 4 :
                  row; /* attention's split states, at most 32 splits */
    uint64_t fit = vkr_max_binding(m->vk) / row;
    if (fit < m->max_rows)
        m->max_rows = fit >= 16 ? (uint32_t)fit : 16;
}

/* The kernels for this device and tuning; the fused epilogues unless the
 * matrix units run (their kernel has none). */
static int build_kernels(struct llm_model *m, const struct llm_model_opts *o, char *reterr,
                         size_t errlen)
{
    bool cpu = m->vk->info.type == VK_PHYSICAL_DEVICE_TYPE_CPU;
    gpu_tuning_resolve(&o->tuning, cpu, &m->tuning);
    const struct llm_gguf_tensor *te = llm_gguf_find_tensor(m->gguf, "token_embd.weight");
    const struct llm_gguf_tensor *tq = llm_gguf_find_tensor(m->gguf, "blk.0.attn_q.weight");
    struct gpu_kernels_shape sh = {
        .cfg = &m->cfg,
        .n_ctx = m->n_ctx,
        .max_rows = m->max_rows,
        .embd_type = te ? te->type : 0,
        .f16_layers = tq && tq->type == LLM_GGML_F16,
        .rope_neox = m->cfg.rope_neox,
        .count = o->count,
    };
    int err = gpu_kernels_build(&m->ks, m->vk, &sh, &m->tuning, reterr, errlen);
    m->fuse = m->tuning.fuse == LLM_SWITCH_ON && !m->ks.cm;
    return err;
}

/* RoPE and the KV write fuse into the Q, K and V products when every pair
 * (2i, 2i+1) lies in one workgroup: even row blocks, one chunk. Not with
 * NeoX pairs (rope_dims/2 apart, across workgroups), nor with biases or
 * head norms, which come between the product and RoPE: rope_kv.comp then.
 * rope_epilogue_ok: what is known before the weights go up (then Q, K
 * and V are stacked in one product); can_fuse_rope: and every matrix one
 * chunk. */
static bool rope_epilogue_ok(const struct llm_model *m)
{
    const struct llm_config *c = &m->cfg;
    bool ok = m->fuse && m->qdim % 2 == 0 && m->kvdim % 2 == 0 && !c->rope_neox && !c->qkv_bias &&
              !c->qk_norm;
    for (int i = 0; i < GEOM_N; i++)
        ok = ok && m->ks.mmg[i].rows_wg % 2 == 0;
    return ok;
}

static bool can_fuse_rope(const struct llm_model *m)
{
    bool ok = rope_epilogue_ok(m);
    for (uint32_t l = 0; l < m->cfg.n_layers; l++) {
        const struct gpu_layer *L = &m->w.layers[l];
        ok = ok && (L->n_qkv >= 2 || (L->wq.w.n_chunks == 1 && L->wk.w.n_chunks == 1)) &&
             (L->n_qkv == 3 || L->wv.w.n_chunks == 1);
    }
    return ok;
}

/* A step's buffers, RoPE's frequencies among them. */
static int build_rows(struct llm_model *m, char *reterr, size_t errlen)
{
    uint32_t nf = m->cfg.rope_dims / 2;
    float *freq = malloc(nf * sizeof(float));
    if (!freq)
        return -ENOMEM;
    int err = llm_config_rope_freq(m->gguf, &m->cfg, freq, reterr, errlen);
    err = err ? err :
                gpu_rows_build(&m->io, m->vk, m->max_rows, m->cfg.n_vocab, m->ks.att_rows, freq, nf,
                               reterr, errlen);
    free(freq);
    return err;
}

/* The step's command buffer and the step cache: none when profiling,
 * whose timestamps' phases belong to the last recording. */
static int build_step(struct llm_model *m)
{
    /* Profiling: a timestamp after every barrier, at most 12 a layer. */
    m->prof_cap = m->profiling ? 12 * m->cfg.n_layers + 16 : 0;
    m->prof_phase = m->prof_cap ? calloc(m->prof_cap, 1) : NULL;
    if (m->prof_cap && !m->prof_phase)
        return -ENOMEM;
    int err = vkr_cmd_new(m->vk, 8 + m->prof_cap, &m->cmd);
    if (!err && m->counting)
        err = vkr_buf_new(m->vk, 16, VKR_MEM_DEVICE, &m->counts);
    err = err || !m->counting ? err : llm_model_counts_reset(m);
    uint32_t n = m->tuning.step_cache == LLM_STEP_CACHE_OFF || m->profiling ? 0 :
                                                                              m->tuning.step_cache;
    return err ? err : gpu_step_cache_build(&m->steps, m->vk, n, m->max_rows);
}

static int check_cancel(const struct llm_model_opts *o, const char *when, char *reterr,
                        size_t errlen)
{
    if (o->cancel && o->cancel(o->cancel_ud))
        return llm_fail(reterr, errlen, -ECANCELED, "cancelled %s", when);
    return 0;
}

int llm_model_load(const struct llm_model_opts *o, struct llm_model **ret, char *reterr,
                   size_t errlen)
{
    reterr[0] = 0;
    struct llm_model *m = calloc(1, sizeof(*m));
    if (!m) {
        snprintf(reterr, errlen, "out of memory");
        return -ENOMEM;
    }
    int err = open_model(m, o, reterr, errlen);
    err = err ? err : check_cancel(o, "before the device was opened", reterr, errlen);
    if (!err) {
        struct vkr_ctx_opts vo = { .device = o->device,
                                   .validation = o->validation,
                                   .pipeline_cache_path = o->pipeline_cache };
        err = vkr_ctx_new(&vo, &m->vk, reterr, errlen);
    }
    if (!err && !o->max_rows)
        fit_max_rows(m);
    err = err ? err : build_kernels(m, o, reterr, errlen);
    if (!err) {
        struct gpu_weights_src src = { m->gguf,   &m->cfg,     m->qdim,
                                       m->kvdim,  m->fuse,     rope_epilogue_ok(m),
                                       o->cancel, o->cancel_ud };
        err = gpu_weights_upload(&m->w, m->vk, &m->ks, &src, reterr, errlen);
    }
    m->fuse_rope = !err && can_fuse_rope(m);
    /* The final norm folds into the head where the head is not multiplied
     * by the matrix units and tracing does not read the normed row. */
    m->fuse_norm_head = !err && m->fuse && !m->w.head.cm && !m->tracing;
    err = err ? err : check_cancel(o, "after the weights went up", reterr, errlen);
    err = err ? err :
                gpu_kv_build(&m->kv, m->seqs, m->vk, m->cfg.n_layers, m->kvdim, m->n_ctx, m->n_seq,
                             m->max_rows, reterr, errlen);
    err = err ? err : alloc_activations(m, reterr, errlen);
    err = err ? err : build_rows(m, reterr, errlen);
    err = err ? err : build_step(m);
    err = err ? err : gpu_sets_build(m, reterr, errlen);
    if (err) {
        if (!reterr[0])
            snprintf(reterr, errlen, "%s",
                     err == -ENOMEM ? "out of memory" :
                     m->vk          ? m->vk->err :
                                      strerror(-err));
        llm_model_free(m);
        return err;
    }
    const struct llm_config *c = &m->cfg;
    const struct llm_gguf_tensor *tq = llm_gguf_find_tensor(m->gguf, "blk.0.attn_q.weight");
    snprintf(m->desc, sizeof(m->desc), "%u layers, dim %u, %s weights, vocab %u, ctx %u%s%s",
             c->n_layers, c->dim, tq ? llm_ggml_type_name(tq->type) : "?", c->n_vocab, m->n_ctx,
             m->ks.cm ? ", matrix units" : "",
             m->ks.idot ? (m->vk->has_idot ? ", integer dot products" : ", integer path") : "");
    *ret = m;
    return 0;
}

void llm_model_free(struct llm_model *m)
{
    if (!m)
        return;
    if (m->vk) {
        if (m->vk->dev)
            vkDeviceWaitIdle(m->vk->dev);
        gpu_weights_free(&m->w, m->vk, &m->cfg);
        gpu_kv_free(&m->kv, m->seqs, m->vk);
        gpu_rows_free(&m->io, m->vk);
        free_activations(m);
        vkr_cmd_free(m->vk, &m->cmd);
        vkr_buf_free(m->vk, &m->counts);
        gpu_step_cache_free(&m->steps, m->vk);
        vkr_set_pool_free(m->vk, &m->pool);
        gpu_kernels_free(&m->ks, m->vk);
        vkr_ctx_free(m->vk);
    }
    gpu_prefill_free(&m->prefill);
    free(m->seqs);
    free(m->parts);
    free(m->prof_phase);
    llm_tok_free(m->tok);
    llm_gguf_free(m->gguf);
    free(m);
}

const struct llm_tuning *llm_model_tuning(const struct llm_model *m)
{
    return &m->tuning;
}
const struct llm_config *llm_model_config(const struct llm_model *m)
{
    return &m->cfg;
}
const struct llm_tok *llm_model_tok(const struct llm_model *m)
{
    return m->tok;
}
const struct llm_gguf *llm_model_gguf(const struct llm_model *m)
{
    return m->gguf;
}
struct vkr_ctx *llm_model_vk(struct llm_model *m)
{
    return m->vk;
}
uint32_t llm_model_n_ctx(const struct llm_model *m)
{
    return m->n_ctx;
}
const char *llm_model_desc(const struct llm_model *m)
{
    return m->desc;
}
uint64_t llm_model_weight_bytes(const struct llm_model *m)
{
    return m->w.bytes;
}
double llm_model_last_step_gpu_ms(const struct llm_model *m)
{
    return m->last_gpu_ms;
}

uint64_t llm_model_reused_steps(const struct llm_model *m)
{
    return m->steps.hits;
}
uint64_t llm_model_recorded_steps(const struct llm_model *m)
{
    return m->steps.records;
}
uint64_t llm_model_gpu_draws(const struct llm_model *m)
{
    return m->draws;
}
uint64_t llm_model_gpu_tops(const struct llm_model *m)
{
    return m->tops;
}

void llm_model_last_step_host_ms(const struct llm_model *m, double ret[3])
{
    memcpy(ret, m->last_host_ms, sizeof(m->last_host_ms));
}

const char *llm_prof_name(enum llm_prof_phase p)
{
    static const char *const names[LLM_PROF_N] = {
        "commit", "embed",   "norm",   "qkv",  "rope_kv", "attention",
        "wo",     "gate_up", "swiglu", "down", "head",
    };
    return (unsigned)p < LLM_PROF_N ? names[p] : "?";
}

int llm_model_profile(const struct llm_model *m, double ret_ms[LLM_PROF_N])
{
    if (!m->profiling || !m->cmd.queries)
        return -ENODATA;
    memcpy(ret_ms, m->prof_ms, sizeof(m->prof_ms));
    return 0;
}

int llm_model_trace(struct llm_model *m, float *ret_layers, float *ret_final)
{
    if (!m->tracing)
        return -ENODATA;
    int err = vkr_buf_invalidate(m->vk, &m->act.trace);
    if (err)
        return err;
    size_t d = m->cfg.dim;
    memcpy(ret_layers, m->act.trace.map, m->cfg.n_layers * d * 4);
    memcpy(ret_final, (const float *)m->act.trace.map + m->cfg.n_layers * d, d * 4);
    return 0;
}
