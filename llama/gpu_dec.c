/* The model step of decoding/dec.h over the GPU model: prefill in chunks
 * of max_rows, steps, commits, rewinds and the parameters of draws on the
 * GPU. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "llama/gpu_internal.h"

/* The single-sequence seam runs on sequence 0. */
static int seq_step(struct llm_model *m, uint32_t seq, const struct dec_row *rows, uint32_t n,
                    int32_t *ret_argmax, float *ret_logits)
{
    m->parts[0] = (struct gpu_part){ &m->seqs[seq], rows, n, ret_argmax, ret_logits, 0, 0 };
    return gpu_step(m, m->parts, 1);
}

static int dm_step(void *ctx, const struct dec_row *rows, uint32_t n, int32_t *ret_argmax,
                   float *ret_logits)
{
    return seq_step(ctx, 0, rows, n, ret_argmax, ret_logits);
}

static int dm_commit(void *ctx, const uint32_t *rows, uint32_t n)
{
    struct llm_model *m = ctx;
    return gpu_seq_commit(&m->kv, &m->seqs[0], rows, n);
}

/* A sequence's sampling parameters. They travel with its rows (gpu_rows.h),
 * so nothing recorded depends on them and the step cache keeps its
 * recordings. */
static int seq_set_draw(struct llm_model *m, uint32_t seq, const struct dec_draw_params *d)
{
    if (!(d->temperature > 0) || !isfinite(d->temperature) || !(d->min_p >= 0 && d->min_p <= 1) ||
        !(d->top_p >= 0 && d->top_p <= 1) || !(d->penalty > 0) || !isfinite(d->penalty))
        return -EINVAL;
    if (m->cfg.n_vocab > GPU_DRAW_MAX_BLOCKS * DEC_DRAW_BLOCK || d->top_k > DEC_TOPK_MAX ||
        2 * d->top_k > m->cfg.n_vocab || (d->penalty != 1.0f && d->penalty_last_n > GPU_PEN_MAX))
        return -ENOTSUP;
    m->seqs[seq].draw = (struct gpu_draw){
        .set = true,
        .inv_t = 1.0f / d->temperature, /* as dec_draw and dec_top_k compute it */
        .min_p = d->min_p,
        .top_p = d->top_p > 0 ? d->top_p : 1.0f, /* 0: none, as 1 */
        .top_k = d->top_k,
        .penalty = d->penalty,
        .inv_penalty = 1.0f / d->penalty, /* as dec_penalized does */
        .penalty_last_n = d->penalty != 1.0f ? d->penalty_last_n : 0,
    };
    return 0;
}

static int dm_set_draw(void *ctx, const struct dec_draw_params *d)
{
    return seq_set_draw(ctx, 0, d);
}

int gpu_prefill_build(struct gpu_prefill *p, uint32_t max_rows)
{
    size_t r = max_rows;
    char *b = calloc(r, sizeof(*p->rows) + sizeof(*p->chain) + sizeof(*p->argmax));
    if (!b)
        return -ENOMEM;
    p->rows = (struct dec_row *)b;
    p->chain = (uint32_t *)(b + r * sizeof(*p->rows));
    p->argmax = (int32_t *)(b + r * (sizeof(*p->rows) + sizeof(*p->chain)));
    for (uint32_t i = 0; i < max_rows; i++)
        p->chain[i] = i; /* every chunk commits rows 0, 1, 2, ... */
    return 0;
}

void gpu_prefill_free(struct gpu_prefill *p)
{
    free(p->rows);
    *p = (struct gpu_prefill){ 0 };
}

/* Long prompts go in chunks of max_rows, each one step and its commit. */
static int dm_prefill(void *ctx, const int32_t *tokens, uint32_t n, int32_t *ret_argmax,
                      float *ret_logits)
{
    struct llm_model *m = ctx;
    if (n == 0)
        return -EINVAL;
    if ((uint64_t)m->seqs[0].n_past + n > m->n_ctx)
        return -E2BIG;
    for (uint32_t done = 0; done < n;) {
        uint32_t c = n - done < m->max_rows ? n - done : m->max_rows;
        bool last = done + c == n;
        for (uint32_t i = 0; i < c; i++)
            m->prefill.rows[i] =
                    (struct dec_row){ tokens[done + i], (int32_t)i - 1, DEC_WANT_NONE, 0 };
        if (last)
            m->prefill.rows[c - 1].want = ret_logits ? DEC_WANT_LOGITS : DEC_WANT_ARGMAX;
        int err = dm_step(m, m->prefill.rows, c, m->prefill.argmax, last ? ret_logits : NULL);
        if (!err && last && ret_argmax)
            *ret_argmax = m->prefill.argmax[c - 1];
        if (!err)
            err = dm_commit(m, m->prefill.chain, c);
        if (err)
            return err;
        done += c;
    }
    return 0;
}

static int dm_rewind(void *ctx, uint32_t n_keep)
{
    struct llm_model *m = ctx;
    return gpu_seq_rewind(&m->kv, &m->seqs[0], n_keep);
}

static uint32_t dm_n_past(void *ctx)
{
    return ((struct llm_model *)ctx)->seqs[0].n_past;
}

static uint32_t dm_reuse(void *ctx, const int32_t *tokens, uint32_t n)
{
    struct llm_model *m = ctx;
    struct gpu_seq *s = &m->seqs[0];
    uint32_t k = dec_reuse_len(s->tokens, s->n_past, tokens, n);
    gpu_seq_rewind(&m->kv, s, k); /* k <= n_past: cannot fail */
    return k;
}

static int mm_step(void *ctx, const struct dec_part *parts, uint32_t n_parts)
{
    struct llm_model *m = ctx;
    if (n_parts == 0 || n_parts > m->n_seq)
        return -EINVAL;
    for (uint32_t p = 0; p < n_parts; p++) {
        if (parts[p].seq >= m->n_seq)
            return -EINVAL;
        m->parts[p] = (struct gpu_part){ &m->seqs[parts[p].seq],
                                         parts[p].rows,
                                         parts[p].n,
                                         parts[p].ret_argmax,
                                         parts[p].ret_logits,
                                         0,
                                         0 };
    }
    return gpu_step(m, m->parts, n_parts);
}

static int mm_commit(void *ctx, uint32_t seq, const uint32_t *rows, uint32_t n)
{
    struct llm_model *m = ctx;
    return seq < m->n_seq ? gpu_seq_commit(&m->kv, &m->seqs[seq], rows, n) : -EINVAL;
}

static int mm_rewind(void *ctx, uint32_t seq, uint32_t n_keep)
{
    struct llm_model *m = ctx;
    return seq < m->n_seq ? gpu_seq_rewind(&m->kv, &m->seqs[seq], n_keep) : -EINVAL;
}

static uint32_t mm_n_past(void *ctx, uint32_t seq)
{
    struct llm_model *m = ctx;
    return seq < m->n_seq ? m->seqs[seq].n_past : 0;
}

static int mm_set_draw(void *ctx, uint32_t seq, const struct dec_draw_params *d)
{
    struct llm_model *m = ctx;
    return seq < m->n_seq ? seq_set_draw(m, seq, d) : -EINVAL;
}

static uint32_t mm_copy_prefix(void *ctx, uint32_t dst, uint32_t src, uint32_t n)
{
    struct llm_model *m = ctx;
    if (dst >= m->n_seq || src >= m->n_seq)
        return 0;
    return gpu_seq_copy_prefix(&m->kv, &m->seqs[dst], &m->seqs[src], n);
}

static const int32_t *mm_tokens(void *ctx, uint32_t seq)
{
    struct llm_model *m = ctx;
    return seq < m->n_seq ? m->seqs[seq].tokens : NULL;
}

void llm_model_dec(struct llm_model *m, struct dec_model *ret)
{
    /* What the model is, as the several-sequence seam says it */
    struct dec_multi mm;
    llm_model_multi(m, &mm);
    *ret = (struct dec_model){
        .ctx = m,
        .n_vocab = mm.n_vocab,
        .n_ctx = mm.n_ctx,
        .max_rows = mm.max_rows,
        .bos = mm.bos,
        .eos = mm.eos,
        .eog = mm.eog,
        .n_eog = mm.n_eog,
        .prefill = dm_prefill,
        .step = dm_step,
        .commit = dm_commit,
        .rewind = dm_rewind,
        .n_past = dm_n_past,
        .set_draw = mm.set_draw ? dm_set_draw : NULL,
        .reuse = dm_reuse,
    };
}

void llm_model_multi(struct llm_model *m, struct dec_multi *ret)
{
    const int32_t *eog;
    uint32_t n_eog = (uint32_t)llm_tok_eog(m->tok, &eog);
    *ret = (struct dec_multi){
        .ctx = m,
        .n_vocab = m->cfg.n_vocab,
        .n_ctx = m->n_ctx,
        .max_rows = m->max_rows,
        .n_seq = m->n_seq,
        .bos = m->cfg.bos,
        .eos = m->cfg.eos,
        .eog = n_eog ? eog : NULL,
        .n_eog = n_eog,
        .step = mm_step,
        .commit = mm_commit,
        .rewind = mm_rewind,
        .n_past = mm_n_past,
        .tokens = mm_tokens,
        .copy_prefix = mm_copy_prefix,
        .set_draw = m->tuning.draw == LLM_SWITCH_OFF ? NULL : mm_set_draw,
    };
}
