/* The batch (dec.h): each sequence's generation runs on its own thread as
 * if alone, and its steps meet the others' in shared model steps.
 *
 * Why threads and not a scheduler that calls the decoder step by step:
 * dec_generate keeps its whole state on one call's path (the window, the
 * pool, the stop matcher, the adaptive rule), and the seam it drives is
 * already the place where a step's rows are known. Holding each step()
 * until every joined sequence has asked for its own turns N single
 * sequences into one multi-sequence step with no change to the decoder,
 * so a batched sequence runs the very code a lone one does; that, with
 * batch-invariant kernels, is what makes its output the same. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "decoding/dec.h"

enum kind { KIND_PLAIN, KIND_LOOKAHEAD, KIND_PREFILL };

struct bseq {
    struct dec_batch *b;
    uint32_t seq, chunk;
    bool joined, pending, prefilling;
    struct dec_part part; /* the step asked for, while pending */
    uint64_t ticket; /* order of asking: the oldest goes first */
    int err; /* the model step's result, for the sequence to take */
    /* prefill's scratch, chunk rows each */
    struct dec_row *rows;
    uint32_t *chain;
    int32_t *argmax;
};

struct dec_batch {
    struct dec_multi m;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a step ran: its sequences' parts are answered */
    struct bseq *s; /* [n_seq] */
    uint32_t n_joined, n_pending;
    uint64_t next_ticket;
    struct dec_part *parts; /* [n_seq] a model step's parts */
    struct bseq **run; /* [n_seq] their sequences */
    /* Its own lock: reading them must not wait for a model step */
    pthread_mutex_t st_mu;
    struct dec_batch_stats st;
};

/* One model step of the pending parts, oldest first, as many as fit
 * max_rows. Called with mu held, when every joined sequence is pending. */
static void run_step(struct dec_batch *b)
{
    uint32_t k = 0, rows = 0;
    uint64_t last = 0;
    /* Selection by ticket: n_seq is small (LLM_MAX_SEQ at most) */
    for (;;) {
        struct bseq *next = NULL;
        for (uint32_t i = 0; i < b->m.n_seq; i++) {
            struct bseq *q = &b->s[i];
            if (q->pending && q->ticket >= last && (!next || q->ticket < next->ticket))
                next = q;
        }
        if (!next)
            break;
        last = next->ticket + 1;
        if (rows + next->part.n > b->m.max_rows)
            continue;
        rows += next->part.n;
        b->parts[k] = next->part;
        b->run[k++] = next;
    }
    int err = b->m.step(b->m.ctx, b->parts, k);
    pthread_mutex_lock(&b->st_mu);
    b->st.steps++;
    b->st.parts += k;
    for (uint32_t i = 0; i < k; i++) {
        struct bseq *q = b->run[i];
        uint64_t n = q->part.n;
        if (q->prefilling)
            b->st.rows_prefill += n;
        else if (n == 1)
            b->st.rows_plain += n;
        else
            b->st.rows_lookahead += n;
    }
    pthread_mutex_unlock(&b->st_mu);
    for (uint32_t i = 0; i < k; i++) {
        struct bseq *q = b->run[i];
        q->err = err;
        q->pending = false;
        b->n_pending--;
    }
    pthread_cond_broadcast(&b->cv);
}

static void run_ready(struct dec_batch *b)
{
    while (b->n_joined > 0 && b->n_pending == b->n_joined)
        run_step(b);
}

static int b_step(void *ctx, const struct dec_row *rows, uint32_t n, int32_t *ret_argmax,
                  float *ret_logits)
{
    struct bseq *q = ctx;
    struct dec_batch *b = q->b;
    if (n == 0 || n > b->m.max_rows)
        return -EINVAL;
    pthread_mutex_lock(&b->mu);
    if (!q->joined) {
        pthread_mutex_unlock(&b->mu);
        return -EINVAL;
    }
    q->part = (struct dec_part){ q->seq, rows, n, ret_argmax, ret_logits };
    q->ticket = b->next_ticket++;
    q->pending = true;
    b->n_pending++;
    run_ready(b);
    while (q->pending)
        pthread_cond_wait(&b->cv, &b->mu);
    int err = q->err;
    pthread_mutex_unlock(&b->mu);
    return err;
}

static int b_commit(void *ctx, const uint32_t *rows, uint32_t n)
{
    struct bseq *q = ctx;
    pthread_mutex_lock(&q->b->mu);
    int err = q->b->m.commit(q->b->m.ctx, q->seq, rows, n);
    pthread_mutex_unlock(&q->b->mu);
    return err;
}

static int b_rewind(void *ctx, uint32_t n_keep)
{
    struct bseq *q = ctx;
    pthread_mutex_lock(&q->b->mu);
    int err = q->b->m.rewind(q->b->m.ctx, q->seq, n_keep);
    pthread_mutex_unlock(&q->b->mu);
    return err;
}

static uint32_t b_n_past(void *ctx)
{
    struct bseq *q = ctx;
    pthread_mutex_lock(&q->b->mu);
    uint32_t n = q->b->m.n_past(q->b->m.ctx, q->seq);
    pthread_mutex_unlock(&q->b->mu);
    return n;
}

static uint32_t b_reuse(void *ctx, const int32_t *tokens, uint32_t n)
{
    struct bseq *q = ctx;
    struct dec_batch *b = q->b;
    pthread_mutex_lock(&b->mu);
    uint32_t k =
            dec_reuse_len(b->m.tokens(b->m.ctx, q->seq), b->m.n_past(b->m.ctx, q->seq), tokens, n);
    b->m.rewind(b->m.ctx, q->seq, k); /* k <= n_past: cannot fail */
    pthread_mutex_unlock(&b->mu);
    return k;
}

/* Each sequence its own parameters: the model keeps them per sequence,
 * so sampled rows of any settings share steps. */
static int b_set_draw(void *ctx, const struct dec_draw_params *d)
{
    struct bseq *q = ctx;
    pthread_mutex_lock(&q->b->mu);
    int err = q->b->m.set_draw(q->b->m.ctx, q->seq, d);
    pthread_mutex_unlock(&q->b->mu);
    return err;
}

/* Rows of the next prefill chunk: a k-th of max_rows with k sequences
 * joined (a prompt alone goes in whole steps, which a CPU driver runs
 * faster than narrow ones), never fewer than the sequence's chunk. */
static uint32_t chunk_now(struct bseq *q)
{
    pthread_mutex_lock(&q->b->mu);
    uint32_t k = q->b->n_joined ? q->b->n_joined : 1;
    pthread_mutex_unlock(&q->b->mu);
    uint32_t share = q->b->m.max_rows / k;
    return share > q->chunk ? share : q->chunk;
}

/* Prompts go in chunks, each a step of its own in the batch (so a long
 * prompt shares steps with the others' decoding instead of stalling it)
 * and its commit. */
static int b_prefill(void *ctx, const int32_t *tokens, uint32_t n, int32_t *ret_argmax,
                     float *ret_logits)
{
    struct bseq *q = ctx;
    if (n == 0)
        return -EINVAL;
    if ((uint64_t)b_n_past(q) + n > q->b->m.n_ctx)
        return -E2BIG;
    int err = 0;
    q->prefilling = true;
    for (uint32_t done = 0; !err && done < n;) {
        uint32_t want = chunk_now(q), c = n - done < want ? n - done : want;
        bool last = done + c == n;
        for (uint32_t i = 0; i < c; i++)
            q->rows[i] = (struct dec_row){ tokens[done + i], (int32_t)i - 1, DEC_WANT_NONE, 0 };
        if (last)
            q->rows[c - 1].want = ret_logits ? DEC_WANT_LOGITS : DEC_WANT_ARGMAX;
        err = b_step(q, q->rows, c, q->argmax, last ? ret_logits : NULL);
        if (!err && last && ret_argmax)
            *ret_argmax = q->argmax[c - 1];
        if (!err)
            err = b_commit(q, q->chain, c);
        done += c;
    }
    q->prefilling = false;
    return err;
}

int dec_batch_new(const struct dec_multi *m, struct dec_batch **ret)
{
    if (!m || !ret || !m->step || !m->commit || !m->rewind || !m->n_past || !m->tokens ||
        !m->n_seq || !m->max_rows || !m->n_ctx)
        return -EINVAL;
    struct dec_batch *b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    b->m = *m;
    pthread_mutex_init(&b->mu, NULL);
    pthread_mutex_init(&b->st_mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    b->s = calloc(m->n_seq, sizeof(*b->s));
    b->parts = calloc(m->n_seq, sizeof(*b->parts));
    b->run = calloc(m->n_seq, sizeof(*b->run));
    bool ok = b->s && b->parts && b->run;
    for (uint32_t i = 0; ok && i < m->n_seq; i++) {
        struct bseq *q = &b->s[i];
        *q = (struct bseq){ .b = b, .seq = i, .chunk = m->max_rows };
        q->rows = calloc(m->max_rows, sizeof(*q->rows));
        q->chain = calloc(m->max_rows, sizeof(*q->chain));
        q->argmax = calloc(m->max_rows, sizeof(*q->argmax));
        ok = q->rows && q->chain && q->argmax;
        for (uint32_t r = 0; ok && r < m->max_rows; r++)
            q->chain[r] = r;
    }
    if (!ok) {
        dec_batch_free(b);
        return -ENOMEM;
    }
    *ret = b;
    return 0;
}

void dec_batch_free(struct dec_batch *b)
{
    if (!b)
        return;
    for (uint32_t i = 0; b->s && i < b->m.n_seq; i++) {
        free(b->s[i].rows);
        free(b->s[i].chain);
        free(b->s[i].argmax);
    }
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->mu);
    pthread_mutex_destroy(&b->st_mu);
    free(b->s);
    free(b->parts);
    free(b->run);
    free(b);
}

void dec_batch_model(struct dec_batch *b, uint32_t seq, uint32_t chunk, struct dec_model *ret)
{
    struct bseq *q = &b->s[seq < b->m.n_seq ? seq : 0];
    q->chunk = chunk && chunk < b->m.max_rows ? chunk : b->m.max_rows;
    *ret = (struct dec_model){
        .ctx = q,
        .n_vocab = b->m.n_vocab,
        .n_ctx = b->m.n_ctx,
        .max_rows = b->m.max_rows,
        .bos = b->m.bos,
        .eos = b->m.eos,
        .eog = b->m.eog,
        .n_eog = b->m.n_eog,
        .prefill = b_prefill,
        .step = b_step,
        .commit = b_commit,
        .rewind = b_rewind,
        .n_past = b_n_past,
        .set_draw = b->m.set_draw ? b_set_draw : NULL,
        .reuse = b_reuse,
    };
}

int dec_batch_join(struct dec_batch *b, uint32_t seq)
{
    if (seq >= b->m.n_seq)
        return -EINVAL;
    pthread_mutex_lock(&b->mu);
    struct bseq *q = &b->s[seq];
    int err = q->joined ? -EBUSY : 0;
    if (!err) {
        q->joined = true;
        b->n_joined++;
        pthread_mutex_lock(&b->st_mu);
        b->st.joined = b->n_joined;
        pthread_mutex_unlock(&b->st_mu);
    }
    pthread_mutex_unlock(&b->mu);
    return err;
}

void dec_batch_leave(struct dec_batch *b, uint32_t seq)
{
    if (seq >= b->m.n_seq)
        return;
    pthread_mutex_lock(&b->mu);
    struct bseq *q = &b->s[seq];
    if (q->joined && !q->pending) {
        q->joined = false;
        b->n_joined--;
        pthread_mutex_lock(&b->st_mu);
        b->st.joined = b->n_joined;
        pthread_mutex_unlock(&b->st_mu);
        /* The others may have been waiting for this one only */
        run_ready(b);
    }
    pthread_mutex_unlock(&b->mu);
}

uint32_t dec_batch_share(struct dec_batch *b, uint32_t seq, const int32_t *prompt, uint32_t n)
{
    if (seq >= b->m.n_seq)
        return 0;
    pthread_mutex_lock(&b->mu);
    const struct dec_multi *m = &b->m;
    uint32_t own = dec_reuse_len(m->tokens(m->ctx, seq), m->n_past(m->ctx, seq), prompt, n);
    uint32_t best = own, from = seq;
    for (uint32_t i = 0; m->copy_prefix && !b->s[seq].joined && i < m->n_seq; i++) {
        if (i == seq)
            continue;
        uint32_t k = dec_reuse_len(m->tokens(m->ctx, i), m->n_past(m->ctx, i), prompt, n);
        if (k > best) {
            best = k;
            from = i;
        }
    }
    if (from != seq) {
        best = m->copy_prefix(m->ctx, seq, from, best);
        pthread_mutex_lock(&b->st_mu);
        b->st.copies++;
        b->st.copied_tokens += best;
        pthread_mutex_unlock(&b->st_mu);
    }
    pthread_mutex_unlock(&b->mu);
    return best;
}

void dec_batch_get_stats(struct dec_batch *b, struct dec_batch_stats *ret)
{
    pthread_mutex_lock(&b->st_mu);
    *ret = b->st;
    pthread_mutex_unlock(&b->st_mu);
}
