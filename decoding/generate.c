/* dec_generate: prefill, then one model step per iteration, plain or
 * lookahead, and the bookkeeping that makes the emitted stream exact:
 * budgets, EOS, stop strings, emission. docs/lookahead.md explains the
 * lookahead step. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "decoding/session.h"

void dec_set_error(struct dec_session *s, int err, const char *what)
{
    s->ret->finish = DEC_FINISH_ERROR;
    s->ret->err = err;
    snprintf(s->ret->error, sizeof(s->ret->error), "%s failed: %s", what, strerror(-err));
}

static void release(struct dec_session *s, uint64_t safe)
{
    uint32_t h = s->n_emitted;
    while (h < s->n_gen && s->end_off[h] <= safe)
        h++;
    if (h == s->n_emitted)
        return;
    const int32_t *t = s->hist + s->n_prompt + s->n_emitted;
    uint32_t n = h - s->n_emitted;
    s->n_emitted = h;
    if (s->emit && s->emit(s->user, t, n))
        s->ret->finish = DEC_FINISH_CANCELLED;
}

/* Feed one kept token's text; true when it completes a stop string. */
static bool feed_text(struct dec_session *s, int32_t tok)
{
    if (s->text) {
        size_t len = 0;
        const char *b = s->text->piece(s->text->user, tok, &len);
        if (b && len && dec_stop_feed(&s->stop, b, len, &s->stop_at))
            return true;
    }
    s->end_off[s->n_gen - 1] = s->stop.total;
    return false;
}

static bool is_eog(const struct dec_model *m, int32_t t)
{
    for (uint32_t i = 0; i < m->n_eog; i++)
        if (m->eog[i] == t)
            return true;
    return t == m->eos;
}

/* Take the k tokens a step wrote at hist[n_prompt + n_gen..], in order,
 * until one finishes the generation. Returns how many were taken. */
uint32_t dec_accept(struct dec_session *s, uint32_t k)
{
    const struct dec_params *p = s->p;
    uint32_t taken = 0;
    while (taken < k && !s->ret->finish) {
        int32_t t = s->hist[s->n_prompt + s->n_gen];
        taken++;
        s->ret->stats.tokens++;
        if (p->stop_at_eos && is_eog(s->m, t)) {
            s->ret->finish = DEC_FINISH_EOS;
            break;
        }
        s->n_gen++;
        if (feed_text(s, t)) {
            s->end_off[s->n_gen - 1] = s->stop.total;
            s->ret->finish = DEC_FINISH_STOP;
            break;
        }
        uint32_t n_hist = s->n_prompt + s->n_gen;
        if (p->lookahead && p->seed_pool && n_hist >= p->n)
            dec_pool_add(&s->pool, s->hist[n_hist - p->n], s->hist + n_hist - p->n + 1);
        if (s->n_gen >= p->max_tokens)
            s->ret->finish = DEC_FINISH_LENGTH;
        else if (n_hist >= s->m->n_ctx)
            s->ret->finish = DEC_FINISH_CONTEXT;
    }
    if (!s->ret->finish)
        release(s, dec_stop_safe(&s->stop));
    return taken;
}

static void finish(struct dec_session *s)
{
    struct dec_result *ret = s->ret;
    if (ret->finish == DEC_FINISH_STOP) {
        release(s, s->stop_at);
        if (ret->finish == DEC_FINISH_STOP && s->n_emitted < s->n_gen) {
            uint64_t start = s->n_emitted ? s->end_off[s->n_emitted - 1] : 0;
            if (start < s->stop_at) {
                ret->stop_token = s->hist[s->n_prompt + s->n_emitted];
                ret->stop_token_bytes = (uint32_t)(s->stop_at - start);
            }
        }
    } else if (ret->finish == DEC_FINISH_EOS || ret->finish == DEC_FINISH_LENGTH ||
               ret->finish == DEC_FINISH_CONTEXT) {
        release(s, UINT64_MAX);
    }
    ret->n_tokens = s->n_emitted;
}

/* Choose the token of a row that asked for `want`: its argmax, a draw
 * the model made, or a sample from its logits or its top candidates. */
int32_t dec_choose(struct dec_session *s, uint32_t want, uint32_t row, uint32_t n_hist)
{
    if (want == DEC_WANT_ARGMAX)
        return s->argmax[row];
    if (want == DEC_WANT_DRAW) {
        dec_rng_next(&s->rng); /* the number the model drew with */
        return s->argmax[row];
    }
    float *l = s->logits + (size_t)s->logit_slot[row] * s->m->n_vocab;
    if (want == DEC_WANT_TOPK)
        return dec_sample_top(&s->smp, s->p, (const struct dec_cand *)(void *)l, s->top_k, &s->rng);
    return dec_sample(&s->smp, s->p, l, s->hist, n_hist, &s->rng);
}

void dec_peek_draws(struct dec_session *s, uint32_t n)
{
    struct dec_rng r = s->rng;
    for (uint32_t d = 0; d < n && d <= DEC_N_LIMIT; d++)
        s->draw_u24[d] = dec_rng_u24(&r);
}

uint32_t dec_budget(const struct dec_session *s)
{
    uint32_t by_len = s->p->max_tokens - s->n_gen;
    uint32_t by_ctx = s->m->n_ctx - s->n_prompt - s->n_gen;
    return by_len < by_ctx ? by_len : by_ctx;
}

static double elapsed_ms(struct dec_session *s, uint64_t t0)
{
    return (double)(s->now(s->now_user) - t0) / 1e6;
}

static int plain_step(struct dec_session *s)
{
    const struct dec_model *m = s->m;
    uint32_t n_hist = s->n_prompt + s->n_gen;
    struct dec_row row = { s->hist[n_hist - 1], -1, s->step_want, 0 };
    if (row.want == DEC_WANT_DRAW) {
        dec_peek_draws(s, 1);
        row.u24 = s->draw_u24[0];
    }
    uint64_t t0 = s->now(s->now_user);
    int r = m->step(m->ctx, &row, 1, s->argmax, s->logits);
    if (r < 0) {
        dec_set_error(s, r, "model step");
        return r;
    }
    s->logit_slot[0] = 0;
    s->hist[n_hist] = dec_choose(s, row.want, 0, n_hist);
    uint32_t zero = 0;
    r = m->commit(m->ctx, &zero, 1);
    if (r < 0) {
        dec_set_error(s, r, "model commit");
        return r;
    }
    double ms = elapsed_ms(s, t0);
    s->plain_ms += ms;
    s->ret->stats.plain_steps++;
    if (s->p->adaptive)
        s->ad.plain_ns = s->ad.plain_ns ? 0.75 * s->ad.plain_ns + 0.25 * ms * 1e6 : ms * 1e6;
    uint32_t kept = dec_accept(s, 1);
    s->ret->stats.hist[kept]++;
    return 0;
}

/* Lookahead unless disabled, out of room in the cache, or backing off. */
static bool want_lookahead(struct dec_session *s)
{
    if (!s->p->lookahead || !dec_lookahead_fits(s))
        return false;
    if (s->ad.plain_left) {
        s->ad.plain_left--;
        return false;
    }
    return true;
}

static int run_steps(struct dec_session *s)
{
    while (!s->ret->finish) {
        s->ret->stats.steps++;
        int r = want_lookahead(s) ? dec_lookahead_step(s) : plain_step(s);
        if (r < 0)
            return r;
    }
    return 0;
}

static int check_request(struct dec_session *s, const int32_t *prompt, uint32_t n_prompt,
                         const struct dec_params *p, const struct dec_text *text)
{
    struct dec_result *ret = s->ret;
    const struct dec_model *m = s->m;
    int r = dec_params_validate(p, &s->caps, ret->error, sizeof(ret->error));
    if (r)
        return r;
    if (p->n_stop && (!text || !text->piece))
        r = snprintf(ret->error, sizeof(ret->error), "stop strings need token text");
    else if (!prompt || !n_prompt)
        r = snprintf(ret->error, sizeof(ret->error), "the prompt is empty");
    else if (p->lookahead && dec_lookahead_rows(p->n, p->w, p->g) > m->max_rows)
        r = snprintf(ret->error, sizeof(ret->error),
                     "lookahead (%u, %u, %u) needs %u rows a step, the model takes %u", p->n, p->w,
                     p->g, dec_lookahead_rows(p->n, p->w, p->g), m->max_rows);
    if (r)
        return -EINVAL;
    for (uint32_t i = 0; i < n_prompt; i++) {
        if (prompt[i] < 0 || (uint32_t)prompt[i] >= m->n_vocab) {
            snprintf(ret->error, sizeof(ret->error), "prompt token %u is %d, not in [0, %u)", i,
                     prompt[i], m->n_vocab);
            return -EINVAL;
        }
    }
    if (n_prompt > m->n_ctx) {
        snprintf(ret->error, sizeof(ret->error), "the prompt has %u tokens, the context %u",
                 n_prompt, m->n_ctx);
        ret->finish = DEC_FINISH_CONTEXT;
        return -E2BIG;
    }
    return 0;
}

/* The window's random start must not touch the sampling stream, or
 * lookahead sampling would stop matching plain sampling. */
#define DEC_WINDOW_SEED_SALT 0x6c6f6f6b61686561ull

static void start(struct dec_session *s, const int32_t *prompt, uint32_t n_prompt)
{
    const struct dec_params *p = s->p;
    const struct dec_model *m = s->m;
    s->need_logits = dec_sampler_needs_logits(p);
    s->step_want = s->need_logits ? DEC_WANT_LOGITS : DEC_WANT_ARGMAX;
    uint32_t model_want = s->need_logits && m->set_draw ? dec_sampler_model_want(p, m->n_vocab) :
                                                          DEC_WANT_NONE;
    if (model_want != DEC_WANT_NONE) {
        /* One token id, or top_k candidates, back a row instead of
         * n_vocab logits to copy, penalize and walk. */
        struct dec_draw_params d = dec_sampler_draw_params(p, m->n_vocab);
        if (m->set_draw(m->ctx, &d) == 0) {
            s->step_want = model_want;
            s->top_k = d.top_k;
        }
    }
    s->n_prompt = n_prompt;
    s->n_gen = 0;
    s->n_emitted = 0;
    s->la_ms = s->plain_ms = 0;
    memcpy(s->hist, prompt, sizeof(*prompt) * n_prompt);
    dec_stop_reset(&s->stop, p->stop, p->n_stop);
    dec_rng_seed(&s->rng, p->seed);
    memset(&s->ad, 0, sizeof(s->ad));
    s->ad.backoff = 16;
    if (!p->lookahead)
        return;
    struct dec_rng wr;
    dec_rng_seed(&wr, p->seed ^ DEC_WINDOW_SEED_SALT);
    dec_pool_reset(&s->pool, p->n - 1, p->g);
    if (p->seed_pool)
        dec_pool_add_all(&s->pool, prompt, n_prompt);
    dec_window_start(&s->win, p->n, p->w, prompt, n_prompt, &wr);
}

static int prefill(struct dec_session *s)
{
    const struct dec_model *m = s->m;
    uint64_t t0 = s->now(s->now_user);
    /* What the cache already holds of the prompt stays (the previous turn
     * of a chat, a shared system prompt); the rest goes through the model. */
    bool reuse = m->reuse && s->p->cache_prompt;
    uint32_t kept = reuse ? m->reuse(m->ctx, s->hist, s->n_prompt) : 0;
    int r = reuse ? 0 : m->rewind(m->ctx, 0);
    if (r < 0 || kept >= s->n_prompt) {
        r = r < 0 ? r : -EINVAL;
        dec_set_error(s, r, "model rewind");
        return r;
    }
    r = m->prefill(m->ctx, s->hist + kept, s->n_prompt - kept, s->argmax,
                   s->need_logits ? s->logits : NULL);
    if (r < 0) {
        dec_set_error(s, r, "model prefill");
        return r;
    }
    s->ret->stats.prefill_ms = elapsed_ms(s, t0);
    s->ret->stats.prefill_tokens = s->n_prompt - kept;
    s->ret->stats.reused_tokens = kept;
    if (s->n_prompt >= m->n_ctx) {
        s->ret->finish = DEC_FINISH_CONTEXT;
        return 0;
    }
    s->logit_slot[0] = 0;
    s->hist[s->n_prompt] =
            dec_choose(s, s->need_logits ? DEC_WANT_LOGITS : DEC_WANT_ARGMAX, 0, s->n_prompt);
    dec_accept(s, 1);
    return 0;
}

static void summarize(struct dec_session *s)
{
    struct dec_stats *st = &s->ret->stats;
    if (st->tokens)
        st->tokens_per_pass = (double)st->tokens / (st->steps + 1);
    if (st->steps)
        st->tokens_per_step = (double)(st->tokens - 1) / st->steps;
    if (st->verify_steps)
        st->hit_rate = (double)st->hit_steps / st->verify_steps;
    st->draft_tokens = s->p->lookahead ? (uint64_t)st->verify_steps * (s->p->n - 1) : 0;
    for (uint32_t d = 1; d < DEC_N_LIMIT; d++)
        st->accepted_tokens += st->accepted_depth[d];
    st->pool_size = s->p->lookahead ? s->pool.n_entries : 0;
    st->step_ms_total = s->la_ms + s->plain_ms;
    if (st->steps)
        st->step_ms_mean = st->step_ms_total / st->steps;
    if (st->lookahead_steps)
        st->lookahead_step_ms_mean = s->la_ms / st->lookahead_steps;
    if (st->plain_steps)
        st->plain_step_ms_mean = s->plain_ms / st->plain_steps;
}

int dec_generate(struct dec_session *s, const int32_t *prompt, uint32_t n_prompt,
                 const struct dec_params *p, const struct dec_text *text, dec_emit_fn emit,
                 void *user, struct dec_result *ret)
{
    if (!ret)
        return -EINVAL;
    memset(ret, 0, sizeof(*ret));
    ret->stop_token = -1;
    if (!s || !p) {
        snprintf(ret->error, sizeof(ret->error), "no session or no parameters");
        return -EINVAL;
    }
    s->ret = ret;
    s->p = p;
    s->text = text;
    s->emit = emit;
    s->user = user;
    int r = check_request(s, prompt, n_prompt, p, text);
    if (r)
        return r;
    start(s, prompt, n_prompt);
    r = prefill(s);
    if (!r)
        r = run_steps(s);
    finish(s);
    summarize(s);
    return r < 0 ? r : 0;
}
