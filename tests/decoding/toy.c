#include "toy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

struct toy_cfg toy_cfg_default(void)
{
    return (struct toy_cfg){
        .n_vocab = 64,
        .n_ctx = 1024,
        .max_rows = 512,
        .eos = 1,
        .eos_pos = 0,
        .sharp = 3.0f,
        .salt = 1,
        .fail_step = 0,
    };
}

static void violate(struct toy *t, const char *fmt, unsigned a, unsigned b)
{
    if (!t->violations++)
        snprintf(t->why, sizeof(t->why), fmt, a, b);
}

/* Preferred and second-choice tokens after (a, b, c), c newest. */
static void prefs(const struct toy *t, int32_t a, int32_t b, int32_t c, int32_t *p1, int32_t *p2)
{
    uint32_t V = t->cfg.n_vocab;
    uint64_t h2 = mix(t->cfg.salt * 0x9e37u + (uint64_t)b * V + (uint64_t)c);
    uint64_t h = (h2 & 3) == 0 ? mix(h2 ^ ((uint64_t)a + 1) * 0x51ed27u) : h2;
    *p1 = (int32_t)((h >> 8) % V);
    *p2 = (int32_t)((h >> 40) % V);
    if (*p1 == t->cfg.eos)
        *p1 = (*p1 + 1) % (int32_t)V;
    if (*p2 == t->cfg.eos || *p2 == *p1)
        *p2 = (*p1 + 2) % (int32_t)V;
}

void toy_logits(const struct toy *t, const int32_t *ctx, uint32_t n, uint32_t pos, float *out)
{
    uint32_t V = t->cfg.n_vocab;
    int32_t c = ctx[n - 1], b = n > 1 ? ctx[n - 2] : -1, a = n > 2 ? ctx[n - 3] : -1;
    int32_t p1, p2;
    prefs(t, a + 1, b + 1, c, &p1, &p2);
    uint64_t h = mix(((uint64_t)(uint32_t)c << 32) ^ ((uint64_t)(uint32_t)b << 16) ^
                     (uint64_t)t->cfg.salt);
    for (uint32_t v = 0; v < V; v++)
        out[v] = (float)(mix(h + v) >> 40) / (float)(1u << 24);
    out[p1] += t->cfg.sharp;
    out[p2] += t->cfg.sharp * 0.8f;
    if (t->cfg.eos_pos && pos >= t->cfg.eos_pos)
        out[t->cfg.eos] += 2 * t->cfg.sharp + 1;
}

int32_t toy_argmax(const float *l, uint32_t n)
{
    int32_t best = 0;
    for (uint32_t i = 1; i < n; i++)
        if (l[i] > l[best])
            best = (int32_t)i;
    return best;
}

/* The last (up to) three tokens row i sees: itself, its ancestors, then
 * the committed prefix. */
static uint32_t row_ctx(const struct toy *t, const struct dec_row *rows, int32_t i, int32_t *ctx3)
{
    int32_t tmp[3];
    uint32_t n = 0;
    for (int32_t r = i; r >= 0 && n < 3; r = rows[r].parent)
        tmp[n++] = rows[r].token;
    for (uint32_t k = t->n_past; k > 0 && n < 3; k--)
        tmp[n++] = t->seq[k - 1];
    for (uint32_t k = 0; k < n; k++)
        ctx3[k] = tmp[n - 1 - k];
    return n;
}

static int check_rows(struct toy *t, const struct dec_row *rows, uint32_t n)
{
    if (!n || n > t->cfg.max_rows) {
        violate(t, "step of %u rows (max %u)", n, t->cfg.max_rows);
        return -EPROTO;
    }
    for (uint32_t i = 0; i < n; i++) {
        const struct dec_row *r = &rows[i];
        if (r->parent >= (int32_t)i || r->parent < -1) {
            violate(t, "row %u has parent %u", i, (unsigned)r->parent);
            return -EPROTO;
        }
        uint32_t max_want = t->draw_set ? DEC_WANT_TOPK : DEC_WANT_LOGITS;
        if (r->token < 0 || (uint32_t)r->token >= t->cfg.n_vocab || r->want > max_want ||
            (r->want == DEC_WANT_TOPK && !t->draw.top_k) ||
            (r->want == DEC_WANT_DRAW && r->u24 >> 24)) {
            violate(t, "row %u token/want %u", i, (unsigned)r->token);
            return -EPROTO;
        }
        t->depth[i] = r->parent < 0 ? 0 : t->depth[r->parent] + 1;
        if (t->n_past + t->depth[i] >= t->cfg.n_ctx) {
            violate(t, "row %u at position %u past n_ctx", i, t->n_past + t->depth[i]);
            return -EPROTO;
        }
    }
    return 0;
}

/* The repetition penalty of set_draw on row i's logits: the distinct
 * tokens among the last penalty_last_n of its sequence (the committed
 * prefix, its ancestors, itself). */
static void toy_penalize(const struct toy *t, const struct dec_row *rows, int32_t i, float *l)
{
    if (t->draw.penalty == 1.0f)
        return;
    uint32_t left = t->draw.penalty_last_n, nw = 0;
    int32_t *w = malloc(sizeof(*w) * (left + 1));
    for (int32_t r = i; r >= 0 && left; r = rows[r].parent, left--)
        w[nw++] = rows[r].token;
    for (uint32_t k = t->n_past; k > 0 && left; k--, left--)
        w[nw++] = t->seq[k - 1];
    for (uint32_t a = 0; a < nw; a++) {
        bool dup = false;
        for (uint32_t b = 0; b < a && !dup; b++)
            dup = w[b] == w[a];
        if (!dup)
            l[w[a]] = dec_penalized(l[w[a]], t->draw.penalty);
    }
    free(w);
}

static int toy_step(void *ctx, const struct dec_row *rows, uint32_t n, int32_t *ret_argmax,
                    float *ret_logits)
{
    struct toy *t = ctx;
    int r = check_rows(t, rows, n);
    if (r)
        return r;
    t->steps++;
    if (t->cfg.fail_step && (int)t->steps == t->cfg.fail_step)
        return -EIO;
    t->rows_total += n;
    t->clock_ns += 1000000 + t->row_ns * n;
    float *l = malloc(sizeof(float) * t->cfg.n_vocab * 3);
    int32_t *idx = malloc(sizeof(int32_t) * t->cfg.n_vocab);
    uint32_t slot = 0;
    for (uint32_t i = 0; i < n; i++) {
        int32_t c3[3];
        uint32_t k = row_ctx(t, rows, (int32_t)i, c3);
        toy_logits(t, c3, k, t->n_past + t->depth[i], l);
        ret_argmax[i] =
                rows[i].want && rows[i].want != DEC_WANT_TOPK ? toy_argmax(l, t->cfg.n_vocab) : -1;
        if (rows[i].want == DEC_WANT_DRAW || rows[i].want == DEC_WANT_TOPK)
            toy_penalize(t, rows, (int32_t)i, l);
        if (rows[i].want == DEC_WANT_DRAW) {
            ret_argmax[i] = dec_draw(l, t->cfg.n_vocab, &t->draw, rows[i].u24, l + t->cfg.n_vocab,
                                     (uint32_t *)(void *)idx);
            t->draws++;
        }
        if (rows[i].want == DEC_WANT_TOPK) {
            struct dec_cand *c =
                    (struct dec_cand *)(void *)(ret_logits + (size_t)slot++ * t->cfg.n_vocab);
            dec_top_k(l, t->cfg.n_vocab, t->draw.temperature, t->draw.top_k, c, l + t->cfg.n_vocab,
                      idx);
            t->tops++;
        }
        if (rows[i].want == DEC_WANT_LOGITS)
            memcpy(ret_logits + (size_t)slot++ * t->cfg.n_vocab, l, sizeof(float) * t->cfg.n_vocab);
    }
    free(l);
    free(idx);
    memcpy(t->rows, rows, sizeof(*rows) * n);
    t->n_rows = n;
    t->can_commit = true;
    return 0;
}

static int toy_set_draw(void *ctx, const struct dec_draw_params *d)
{
    struct toy *t = ctx;
    if (!(d->temperature > 0) || !(d->min_p >= 0 && d->min_p <= 1) ||
        !(d->top_p >= 0 && d->top_p <= 1) || !(d->penalty > 0) || d->top_k > DEC_TOPK_MAX ||
        2 * d->top_k > t->cfg.n_vocab)
        return -EINVAL;
    t->draw = *d;
    t->draw_set = true;
    return 0;
}

static int toy_commit(void *ctx, const uint32_t *rows, uint32_t n)
{
    struct toy *t = ctx;
    if (!t->can_commit) {
        violate(t, "commit without a step (%u rows)%u", n, 0);
        return -EPROTO;
    }
    t->can_commit = false;
    for (uint32_t k = 0; k < n; k++) {
        int32_t want_parent = k ? (int32_t)rows[k - 1] : -1;
        if (rows[k] >= t->n_rows || t->rows[rows[k]].parent != want_parent) {
            violate(t, "commit row %u (index %u) breaks the chain", rows[k], k);
            return -EPROTO;
        }
        if (t->n_past >= t->cfg.n_ctx) {
            violate(t, "commit past n_ctx %u%u", t->cfg.n_ctx, 0);
            return -EPROTO;
        }
        t->seq[t->n_past++] = t->rows[rows[k]].token;
    }
    t->commits++;
    return 0;
}

static int toy_prefill(void *ctx, const int32_t *tokens, uint32_t n, int32_t *ret_argmax,
                       float *ret_logits)
{
    struct toy *t = ctx;
    if (!n || t->n_past + n > t->cfg.n_ctx)
        return -E2BIG;
    memcpy(t->seq + t->n_past, tokens, sizeof(*tokens) * n);
    t->n_past += n;
    t->can_commit = false;
    t->prefills++;
    float *l = malloc(sizeof(float) * t->cfg.n_vocab);
    uint32_t k = t->n_past < 3 ? t->n_past : 3;
    toy_logits(t, t->seq + t->n_past - k, k, t->n_past - 1, l);
    *ret_argmax = toy_argmax(l, t->cfg.n_vocab);
    if (ret_logits)
        memcpy(ret_logits, l, sizeof(float) * t->cfg.n_vocab);
    free(l);
    return 0;
}

static int toy_rewind(void *ctx, uint32_t n_keep)
{
    struct toy *t = ctx;
    if (n_keep > t->n_past)
        return -EINVAL;
    t->n_past = n_keep;
    t->can_commit = false;
    return 0;
}

static uint32_t toy_n_past(void *ctx)
{
    return ((struct toy *)ctx)->n_past;
}

struct toy *toy_new(const struct toy_cfg *cfg)
{
    struct toy *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->cfg = *cfg;
    t->seq = malloc(sizeof(*t->seq) * cfg->n_ctx);
    t->rows = malloc(sizeof(*t->rows) * cfg->max_rows);
    t->depth = malloc(sizeof(*t->depth) * cfg->max_rows);
    t->piece = malloc(sizeof(*t->piece) * cfg->n_vocab);
    if (!t->seq || !t->rows || !t->depth || !t->piece) {
        toy_free(t);
        return NULL;
    }
    /* Pieces of one to three letters from a small alphabet, so that text
     * repeats and stop strings straddle token boundaries. */
    static const char alpha[] = "abcde fgh";
    for (uint32_t v = 0; v < cfg->n_vocab; v++) {
        uint64_t h = mix(v * 7919u + 3);
        uint32_t len = 1 + (uint32_t)(h % 3);
        for (uint32_t k = 0; k < len; k++)
            t->piece[v][k] = alpha[(h >> (8 + 4 * k)) % (sizeof(alpha) - 1)];
        t->piece[v][len] = 0;
    }
    t->model = (struct dec_model){
        .ctx = t,
        .n_vocab = cfg->n_vocab,
        .n_ctx = cfg->n_ctx,
        .max_rows = cfg->max_rows,
        .bos = 0,
        .eos = cfg->eos,
        .prefill = toy_prefill,
        .step = toy_step,
        .commit = toy_commit,
        .rewind = toy_rewind,
        .n_past = toy_n_past,
        .set_draw = cfg->draws ? toy_set_draw : NULL,
    };
    return t;
}

void toy_free(struct toy *t)
{
    if (!t)
        return;
    free(t->seq);
    free(t->rows);
    free(t->depth);
    free(t->piece);
    free(t);
}

uint32_t toy_greedy(const struct toy *t, const int32_t *prompt, uint32_t n_prompt, uint32_t max_new,
                    int32_t *out)
{
    float *l = malloc(sizeof(float) * t->cfg.n_vocab);
    int32_t *all = malloc(sizeof(int32_t) * (n_prompt + max_new + 1));
    memcpy(all, prompt, sizeof(*prompt) * n_prompt);
    uint32_t n = n_prompt, k = 0;
    while (k < max_new && n < t->cfg.n_ctx + 1) {
        uint32_t c = n < 3 ? n : 3;
        toy_logits(t, all + n - c, c, n - 1, l);
        out[k] = all[n++] = toy_argmax(l, t->cfg.n_vocab);
        k++;
    }
    free(l);
    free(all);
    return k;
}

void toy_prompt(const struct toy *t, uint64_t seed, uint32_t n, int32_t *out)
{
    uint32_t head = n < 4 ? n : 4;
    for (uint32_t i = 0; i < head; i++)
        out[i] = (int32_t)(2 + mix(seed * 131 + i) % (t->cfg.n_vocab - 2));
    if (n > head)
        toy_greedy(t, out, head, n - head, out + head);
}

const char *toy_piece(void *user, int32_t id, size_t *ret_len)
{
    struct toy *t = user;
    *ret_len = strlen(t->piece[id]);
    return t->piece[id];
}

uint64_t toy_clock(void *user)
{
    return ((struct toy *)user)->clock_ns;
}

int toy_sink_emit(void *user, const int32_t *tokens, uint32_t n)
{
    struct toy_sink *k = user;
    for (uint32_t i = 0; i < n && k->n < sizeof(k->tok) / sizeof(k->tok[0]); i++)
        k->tok[k->n++] = tokens[i];
    if (n > k->max_batch)
        k->max_batch = n;
    k->calls++;
    return k->cancel_after && k->calls >= k->cancel_after;
}

int toy_run(struct toy *t, struct dec_session *s, const int32_t *prompt, uint32_t n_prompt,
            const struct dec_params *p, bool with_text, struct toy_sink *sink,
            struct dec_result *res)
{
    uint32_t cancel_after = sink->cancel_after;
    memset(sink, 0, sizeof(*sink));
    sink->cancel_after = cancel_after;
    struct dec_text text = { toy_piece, t };
    return dec_generate(s, prompt, n_prompt, p, with_text ? &text : NULL, toy_sink_emit, sink, res);
}
