/* One lookahead step: the last accepted token, the Jacobi window and the
 * verification trie of the pool's candidates for that token, all in one
 * model step; then the walk down the trie that accepts tokens exactly as
 * plain decoding would choose them. Layout: docs/lookahead.md. */
#include <string.h>

#include "decoding/session.h"

bool dec_lookahead_fits(const struct dec_session *s)
{
    uint32_t depth = dec_window_depth(&s->win);
    if (depth < s->p->n - 1)
        depth = s->p->n - 1;
    uint32_t n_past = s->n_prompt + s->n_gen - 1;
    return n_past + depth < s->m->n_ctx;
}

/* Candidates from the text itself (dec_lookup, with seed_pool). The pool
 * is keyed by one token, so on code it offers what followed `(` or `.`
 * anywhere lately; two tokens of context pick out what followed `self.` or
 * `x[` here, which is what repeats. */
#define LOOKUP_SPAN 4096
#define LOOKUP_MAX 4
#define LOOKUP_CONTEXT 4 /* tokens of match that still rank higher */

uint32_t dec_lookup(const int32_t *h, uint32_t n, uint32_t len, uint32_t max, const int32_t **ret)
{
    uint32_t found = 0, best_m[LOOKUP_MAX] = { 0 };
    if (max > LOOKUP_MAX)
        max = LOOKUP_MAX;
    if (n < 3 || len + 2 > n)
        return 0;
    int64_t lo = n > LOOKUP_SPAN ? n - LOOKUP_SPAN : 1;
    /* j: an earlier place of the last token, whose len successors are all
     * in the text (j + len <= n - 1); the candidate is those successors. */
    for (int64_t j = (int64_t)n - 1 - len; j >= lo; j--) {
        if (h[j] != h[n - 1] || h[j - 1] != h[n - 2])
            continue;
        uint32_t m = 2;
        while (m < LOOKUP_CONTEXT && j >= (int64_t)m && h[j - m] == h[n - 1 - m])
            m++;
        const int32_t *c = h + j + 1;
        bool dup = false;
        for (uint32_t k = 0; k < found && !dup; k++)
            dup = memcmp(ret[k], c, sizeof(*c) * len) == 0;
        if (dup)
            continue;
        /* Keep the best `max` by match length; among equals the latest
         * (found first, since j runs backwards). */
        uint32_t at = found < max ? found++ : max;
        while (at > 0 && best_m[at - 1] < m) {
            if (at < max) {
                best_m[at] = best_m[at - 1];
                ret[at] = ret[at - 1];
            }
            at--;
        }
        if (at < max) {
            best_m[at] = m;
            ret[at] = c;
        }
    }
    return found;
}

/* Candidates for lst as trie rows after row `first`: the text's own
 * continuations (dec_lookup, up to g - 1 of them), then the pool's newest
 * tails, g in all. */
static uint32_t build_trie(struct dec_session *s, int32_t lst, uint32_t first, uint32_t want)
{
    struct dec_trie *t = &s->trie;
    uint32_t len = s->p->n - 1, g = s->p->g, taken = 0;
    dec_trie_reset(t);
    const int32_t *found[LOOKUP_MAX];
    uint32_t n_look = s->p->seed_pool && g > 1 ?
                              dec_lookup(s->hist, s->n_prompt + s->n_gen, len, g - 1, found) :
                              0;
    for (uint32_t k = 0; k < n_look; k++) {
        uint32_t before = t->n;
        dec_trie_insert(t, found[k], len);
        taken += t->n > before;
    }
    /* The pool lists a key's tails oldest first; the newest g - taken. */
    uint32_t skip = s->pool.count[lst] > g - taken ? s->pool.count[lst] - (g - taken) : 0;
    for (int32_t i = dec_pool_first(&s->pool, lst); i >= 0; i = dec_pool_next(&s->pool, i)) {
        if (skip) {
            skip--;
            continue;
        }
        dec_trie_insert(t, dec_pool_tokens(&s->pool, i), len);
    }
    uint32_t r = first;
    for (uint32_t i = 0; i < t->n; i++) {
        struct dec_trie_node *nd = &t->node[i];
        if (nd->depth == len && !s->p->bonus)
            continue;
        nd->row = (int32_t)r;
        s->rows[r].token = nd->token;
        s->rows[r].parent = nd->parent < 0 ? 0 : t->node[nd->parent].row;
        s->rows[r].want = want;
        s->rows[r].u24 = want == DEC_WANT_DRAW ? s->draw_u24[nd->depth] : 0;
        r++;
    }
    return r;
}

/* Choose tokens down the trie: at each node the row's own choice (argmax
 * or one sample), continuing while it equals a child's token. Writes the
 * tokens after the history; returns how many, *ret_matched the candidate
 * tokens among them. */
static uint32_t walk(struct dec_session *s, uint32_t *ret_matched)
{
    uint32_t n_hist = s->n_prompt + s->n_gen, lim = dec_budget(s), k = 0, matched = 0;
    int32_t node = -1;
    uint32_t row = 0;
    s->path_row[0] = 0;
    while (k < lim) {
        int32_t tok = dec_choose(s, s->step_want, row, n_hist + k);
        s->hist[n_hist + k++] = tok;
        int32_t c = dec_trie_child(&s->trie, node, tok);
        if (c < 0)
            break;
        matched++;
        node = c;
        if (s->trie.node[c].row < 0)
            break; /* a full match without the bonus token */
        row = (uint32_t)s->trie.node[c].row;
        s->path_row[k] = row;
    }
    *ret_matched = matched;
    return k;
}

static void adapt(struct dec_session *s, double ms, uint32_t kept)
{
    struct dec_adapt *ad = &s->ad;
    double ns = ms * 1e6;
    if (!ad->la_seen) {
        ad->la_ns = ns;
        ad->la_tokens = kept;
    } else {
        ad->la_ns = 0.75 * ad->la_ns + 0.25 * ns;
        ad->la_tokens = 0.75 * ad->la_tokens + 0.25 * kept;
    }
    if (++ad->la_seen < 8)
        return;
    if (!ad->plain_ns) {
        ad->plain_left = 1; /* probe what a plain step costs */
        return;
    }
    /* Tokens per second: lookahead la_tokens / la_ns against 1 / plain_ns. */
    if (ad->la_tokens * ad->plain_ns < ad->la_ns) {
        ad->plain_left = ad->backoff;
        ad->backoff = ad->backoff < 1024 ? 2 * ad->backoff : 1024;
        ad->la_seen = 0;
        s->ret->stats.fallbacks++;
    } else {
        ad->backoff = 16;
    }
}

static void count(struct dec_session *s, uint32_t rows, uint32_t kept, uint32_t matched, double ms)
{
    struct dec_stats *st = &s->ret->stats;
    st->lookahead_steps++;
    st->lookahead_rows += rows;
    st->hist[kept < DEC_HIST_MAX ? kept : DEC_HIST_MAX - 1]++;
    if (s->trie.n_cand)
        st->verify_steps++;
    if (matched)
        st->hit_steps++;
    for (uint32_t d = 1; d <= matched && d < DEC_N_LIMIT; d++)
        st->accepted_depth[d]++;
    s->la_ms += ms;
}

static uint32_t assign_slots(struct dec_session *s, uint32_t n)
{
    uint32_t slot = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t w = s->rows[i].want;
        s->logit_slot[i] = w == DEC_WANT_LOGITS || w == DEC_WANT_TOPK ? (int32_t)slot++ : -1;
    }
    return slot;
}

int dec_lookahead_step(struct dec_session *s)
{
    const struct dec_model *m = s->m;
    uint32_t want = s->step_want;
    int32_t lst = s->hist[s->n_prompt + s->n_gen - 1];
    bool full = dec_window_is_full(&s->win);
    if (want == DEC_WANT_DRAW)
        dec_peek_draws(s, s->p->n); /* rows down to depth n - 1 */
    s->rows[0] = (struct dec_row){ lst, -1, want, want == DEC_WANT_DRAW ? s->draw_u24[0] : 0 };
    dec_window_build(&s->win, s->rows, 1);
    uint32_t n = build_trie(s, lst, 1 + dec_window_rows(&s->win), want);
    assign_slots(s, n);
    uint64_t t0 = s->now(s->now_user);
    int r = m->step(m->ctx, s->rows, n, s->argmax, s->logits);
    if (r < 0) {
        dec_set_error(s, r, "model step");
        return r;
    }
    uint32_t matched;
    uint32_t k = walk(s, &matched);
    dec_window_update(&s->win, s->argmax, lst, &s->pool);
    uint32_t kept = dec_accept(s, k);
    r = m->commit(m->ctx, s->path_row, kept);
    if (r < 0) {
        dec_set_error(s, r, "model commit");
        return r;
    }
    double ms = (double)(s->now(s->now_user) - t0) / 1e6;
    count(s, n, kept, matched < kept ? matched : kept, ms);
    if (s->p->adaptive && full)
        adapt(s, ms, kept);
    return 0;
}
