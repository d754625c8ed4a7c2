/* The session: every buffer a generation needs, sized once from the model
 * and the caps, so that the per-token path allocates nothing. */
#include "decoding/session.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t monotonic_ns(void *user)
{
    struct timespec ts;
    (void)user;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int check_caps(const struct dec_model *m, const struct dec_caps *c)
{
    if (!m || !c || !m->prefill || !m->step || !m->commit || !m->rewind || !m->n_past)
        return -EINVAL;
    if (!m->n_vocab || !m->n_ctx || !m->max_rows)
        return -EINVAL;
    if (c->max_n < 3 || c->max_n > DEC_N_LIMIT || !c->max_w || !c->max_g || !c->max_tokens)
        return -EINVAL;
    return 0;
}

/* Pool arena: the prompt's n-grams plus, per step, a window's worth and the
 * accepted tokens' worth, bounded by what the keys can hold. */
static uint32_t pool_cap(const struct dec_model *m, const struct dec_caps *c)
{
    uint64_t cap = c->pool_entries;
    if (!cap) {
        cap = (uint64_t)m->n_ctx * (c->max_w + 2);
        if (cap > (1u << 18))
            cap = 1u << 18;
    }
    if (cap > (uint64_t)m->n_vocab * c->max_g)
        cap = (uint64_t)m->n_vocab * c->max_g;
    return (uint32_t)cap;
}

static int alloc_buffers(struct dec_session *s)
{
    const struct dec_model *m = s->m;
    const struct dec_caps *c = &s->caps;
    uint32_t trie = c->max_g * (c->max_n - 1);
    s->rows_cap = dec_lookahead_rows(c->max_n, c->max_w, c->max_g);
    /* dec_generate runs no step of more than max_rows rows, so caps above
     * what the model takes cost no memory here. */
    if (trie > m->max_rows)
        trie = m->max_rows;
    if (s->rows_cap > m->max_rows)
        s->rows_cap = m->max_rows;
    s->logit_rows = 1 + trie;
    const struct dec_mem_part parts[] = {
        { (void **)&s->rows, s->rows_cap, sizeof(*s->rows) },
        { (void **)&s->argmax, s->rows_cap, sizeof(*s->argmax) },
        { (void **)&s->logit_slot, s->rows_cap, sizeof(*s->logit_slot) },
        { (void **)&s->logits, (size_t)s->logit_rows * m->n_vocab, sizeof(*s->logits) },
        { (void **)&s->hist, (size_t)m->n_ctx + 1, sizeof(*s->hist) },
        { (void **)&s->end_off, (size_t)m->n_ctx + 1, sizeof(*s->end_off) },
    };
    int r = dec_alloc_parts(parts, sizeof(parts) / sizeof(parts[0]), &s->mem);
    if (r)
        return r;
    r = dec_pool_init(&s->pool, m->n_vocab, c->max_n - 1, pool_cap(m, c));
    if (!r)
        r = dec_window_init(&s->win, c->max_n, c->max_w);
    if (!r)
        r = dec_trie_init(&s->trie, trie);
    if (!r)
        r = dec_sampler_init(&s->smp, m->n_vocab);
    if (!r)
        r = dec_stop_init(&s->stop, c->max_stop_len);
    return r;
}

int dec_session_new(const struct dec_model *model, const struct dec_caps *caps,
                    struct dec_session **ret)
{
    if (!ret)
        return -EINVAL;
    *ret = NULL;
    int r = check_caps(model, caps);
    if (r)
        return r;
    struct dec_session *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->m = model;
    s->caps = *caps;
    s->now = monotonic_ns;
    r = alloc_buffers(s);
    if (r) {
        dec_session_free(s);
        return r;
    }
    *ret = s;
    return 0;
}

void dec_session_free(struct dec_session *s)
{
    if (!s)
        return;
    free(s->mem);
    dec_pool_done(&s->pool);
    dec_window_done(&s->win);
    dec_trie_done(&s->trie);
    dec_sampler_done(&s->smp);
    dec_stop_done(&s->stop);
    free(s);
}

int dec_session_use(struct dec_session *s, const struct dec_model *model)
{
    const struct dec_model *m = s->m;
    if (!model || !model->prefill || !model->step || !model->commit || !model->rewind ||
        !model->n_past || model->n_vocab != m->n_vocab || model->n_ctx != m->n_ctx ||
        model->max_rows != m->max_rows)
        return -EINVAL;
    s->m = model;
    return 0;
}

void dec_session_set_clock(struct dec_session *s, uint64_t (*now_ns)(void *user), void *user)
{
    s->now = now_ns ? now_ns : monotonic_ns;
    s->now_user = now_ns ? user : NULL;
}
