/* Token choice from a row's logits: repetition penalty, temperature,
 * top-k, softmax, top-p, min-p, then one uniform draw walked over the
 * cumulative distribution in a fixed candidate order. The candidate order
 * (logit descending, id ascending on ties) is a total order, so the same
 * logits and the same uniform always give the same token. Without top-k
 * the draw is dec_draw (draw.c), the one a model makes on its side, with
 * top-p's nucleus found there by bisection instead of a sort. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "decoding/dec-internal.h"

int dec_sampler_init(struct dec_sampler *s, uint32_t n_vocab)
{
    memset(s, 0, sizeof(*s));
    s->n_vocab = n_vocab;
    const struct dec_mem_part parts[] = {
        { (void **)&s->p, n_vocab, sizeof(*s->p) },
        { (void **)&s->idx, n_vocab, sizeof(*s->idx) },
        { (void **)&s->seen, n_vocab, sizeof(*s->seen) },
    };
    return dec_alloc_parts(parts, sizeof(parts) / sizeof(parts[0]), &s->mem);
}

void dec_sampler_done(struct dec_sampler *s)
{
    if (!s)
        return;
    free(s->mem);
    memset(s, 0, sizeof(*s));
}

bool dec_sampler_needs_logits(const struct dec_params *p)
{
    return p->temperature > 0.0f || p->repeat_penalty != 1.0f;
}

/* Sampling without top-k is dec_draw's (top-p and min-p included); top-k
 * at or above the vocabulary keeps every token, so it is none. */
static bool plain_draw(const struct dec_params *p, uint32_t n_vocab)
{
    return p->temperature > 0.0f && (p->top_k == 0 || p->top_k >= n_vocab);
}

struct dec_draw_params dec_sampler_draw_params(const struct dec_params *p, uint32_t n_vocab)
{
    bool greedy = p->temperature <= 0.0f;
    return (struct dec_draw_params){
        .temperature = greedy ? 1.0f : p->temperature,
        .min_p = p->min_p,
        .top_p = p->top_p,
        .top_k = greedy                 ? 1 :
                 plain_draw(p, n_vocab) ? 0 :
                                          p->top_k,
        .penalty = p->repeat_penalty,
        .penalty_last_n = p->repeat_last_n,
    };
}

uint32_t dec_sampler_model_want(const struct dec_params *p, uint32_t n_vocab)
{
    if (plain_draw(p, n_vocab))
        return DEC_WANT_DRAW;
    /* Greedy with the penalty is the best candidate of one (temperature 1
     * leaves the logits as they are); top-k is the top_k candidates, the
     * rest (top-p, min-p, the draw) the host does on those. */
    uint32_t k = dec_sampler_draw_params(p, n_vocab).top_k;
    if ((p->temperature > 0.0f || p->repeat_penalty != 1.0f) && k && k <= DEC_TOPK_MAX &&
        2 * k <= n_vocab)
        return DEC_WANT_TOPK;
    return DEC_WANT_NONE;
}

static void penalize(struct dec_sampler *s, const struct dec_params *p, float *logits,
                     const int32_t *hist, uint32_t n_hist)
{
    uint32_t from = n_hist > p->repeat_last_n ? n_hist - p->repeat_last_n : 0;
    if (++s->epoch == 0) {
        memset(s->seen, 0, sizeof(*s->seen) * s->n_vocab);
        s->epoch = 1;
    }
    for (uint32_t i = from; i < n_hist; i++) {
        int32_t t = hist[i];
        if (t < 0 || (uint32_t)t >= s->n_vocab || s->seen[t] == s->epoch)
            continue;
        s->seen[t] = s->epoch;
        logits[t] = dec_penalized(logits[t], p->repeat_penalty);
    }
}

/* The candidate order: logit descending, then id ascending (-0 equals
 * +0); NaN after every number. A total order, so a selection or a sort
 * by it has one result whatever the algorithm (dec_top_k, topk.comp). */
static inline bool before(const float *l, int32_t a, int32_t b)
{
    float x = l[a], y = l[b];
    if (x != x)
        return y != y && a < b;
    if (y != y)
        return true;
    return x > y || (x == y && a < b);
}

static void swap(int32_t *a, int32_t *b)
{
    int32_t t = *a;
    *a = *b;
    *b = t;
}

/* Lomuto partition around the middle element; returns its final place. */
static uint32_t partition(const float *l, int32_t *idx, uint32_t lo, uint32_t hi)
{
    swap(&idx[lo + (hi - lo) / 2], &idx[hi]);
    uint32_t store = lo;
    for (uint32_t i = lo; i < hi; i++)
        if (before(l, idx[i], idx[hi]))
            swap(&idx[i], &idx[store++]);
    swap(&idx[store], &idx[hi]);
    return store;
}

/* Move the k best candidates to idx[0..k) (any order). */
static void select_top(const float *l, int32_t *idx, uint32_t n, uint32_t k)
{
    uint32_t lo = 0, hi = n - 1;
    while (lo < hi) {
        uint32_t m = partition(l, idx, lo, hi);
        if (m == k - 1 || m == k)
            return;
        if (m < k)
            lo = m + 1;
        else
            hi = m - 1;
    }
}

static void sort_range(const float *l, int32_t *idx, uint32_t lo, uint32_t hi)
{
    while (hi > lo + 16) {
        uint32_t m = partition(l, idx, lo, hi);
        if (m > lo)
            sort_range(l, idx, lo, m - 1);
        lo = m + 1;
    }
    for (uint32_t i = lo + 1; i <= hi && i > lo; i++)
        for (uint32_t j = i; j > lo && before(l, idx[j], idx[j - 1]); j--)
            swap(&idx[j], &idx[j - 1]);
}

/* The first of the candidate order (NaN only if all are). */
static int32_t argmax(const float *l, uint32_t n)
{
    int32_t best = 0;
    for (uint32_t i = 1; i < n; i++)
        if (before(l, (int32_t)i, best))
            best = (int32_t)i;
    return best;
}

/* Candidates idx[0..m) with probabilities p[0..m), cut at top_p: the
 * top_k best of the n tokens of l (top_k < n, or top_k == n <= DEC_TOPK_MAX:
 * the candidates a model returned), sorted, their probabilities
 * normalised over those. (Without top-k, dec_draw samples.) */
static uint32_t candidates(struct dec_sampler *s, const struct dec_params *p, const float *l,
                           uint32_t n, uint32_t top_k)
{
    uint32_t m = top_k;
    for (uint32_t i = 0; i < n; i++)
        s->idx[i] = (int32_t)i;
    if (top_k < n)
        select_top(l, s->idx, n, top_k);
    if (m > 1)
        sort_range(l, s->idx, 0, m - 1);
    float mx = l[s->idx[0]];
    for (uint32_t i = 1; i < m; i++)
        mx = fmaxf(mx, l[s->idx[i]]);
    double sum = 0;
    for (uint32_t i = 0; i < m; i++)
        sum += expf(l[s->idx[i]] - mx);
    double cum = 0;
    for (uint32_t i = 0; i < m; i++) {
        s->p[i] = (float)(expf(l[s->idx[i]] - mx) / sum);
        cum += s->p[i];
        if (p->top_p < 1.0f && cum >= p->top_p)
            return i + 1;
    }
    return m;
}

/* Top-p, min-p and the draw over candidates() of l[0..n): an index of l. */
static int32_t choose(struct dec_sampler *s, const struct dec_params *p, const float *l, uint32_t n,
                      uint32_t top_k, struct dec_rng *rng)
{
    uint32_t m = candidates(s, p, l, n, top_k);
    float pmax = 0;
    for (uint32_t i = 0; i < m; i++)
        pmax = fmaxf(pmax, s->p[i]);
    double total = 0;
    for (uint32_t i = 0; i < m; i++) {
        if (s->p[i] < p->min_p * pmax)
            s->p[i] = 0;
        total += s->p[i];
    }
    double target = dec_rng_uniform(rng) * total, cum = 0;
    for (uint32_t i = 0; i < m; i++) {
        cum += s->p[i];
        if (target < cum)
            return s->idx[i];
    }
    for (uint32_t i = m; i-- > 0;)
        if (s->p[i] > 0)
            return s->idx[i];
    return s->idx[0];
}

int32_t dec_sample(struct dec_sampler *s, const struct dec_params *p, float *logits,
                   const int32_t *hist, uint32_t n_hist, struct dec_rng *rng)
{
    if (p->repeat_penalty != 1.0f)
        penalize(s, p, logits, hist, n_hist);
    if (p->temperature <= 0.0f)
        return argmax(logits, s->n_vocab);
    if (plain_draw(p, s->n_vocab)) {
        struct dec_draw_params d = {
            .temperature = p->temperature, .min_p = p->min_p, .top_p = p->top_p, .penalty = 1.0f
        };
        return dec_draw(logits, s->n_vocab, &d, dec_rng_u24(rng), s->p, (uint32_t *)(void *)s->idx);
    }
    float inv_t = 1.0f / p->temperature;
    for (uint32_t i = 0; i < s->n_vocab; i++)
        logits[i] *= inv_t;
    return choose(s, p, logits, s->n_vocab, p->top_k, rng);
}

int32_t dec_sample_top(struct dec_sampler *s, const struct dec_params *p, const struct dec_cand *c,
                       uint32_t k, struct dec_rng *rng)
{
    if (!k || k > DEC_TOPK_MAX)
        return 0;
    for (uint32_t i = 0; i < k; i++)
        s->top[i] = c[i].logit;
    if (p->temperature <= 0.0f) { /* greedy with the penalty: the best one */
        uint32_t best = 0;
        for (uint32_t i = 1; i < k; i++)
            best = before(s->top, (int32_t)i, (int32_t)best) ? i : best;
        return c[best].id;
    }
    /* c is in id order, so index ties break as id ties do. */
    return c[choose(s, p, s->top, k, k, rng)].id;
}

static int by_id(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

void dec_top_k(const float *logits, uint32_t n_vocab, float temperature, uint32_t k,
               struct dec_cand *out, float *scaled, int32_t *idx)
{
    /* Selected on the scaled logits, as the host path does: scaling can
     * round two logits together, and then the id decides. */
    float inv_t = 1.0f / temperature;
    for (uint32_t v = 0; v < n_vocab; v++) {
        scaled[v] = logits[v] * inv_t;
        idx[v] = (int32_t)v;
    }
    if (k < n_vocab)
        select_top(scaled, idx, n_vocab, k);
    qsort(idx, k, sizeof(*idx), by_id);
    for (uint32_t i = 0; i < k; i++)
        out[i] = (struct dec_cand){ idx[i], scaled[idx[i]] };
}
