/* The draw of dec.h: one uniform number walked down three levels of
 * partial sums of the row's weights (groups, blocks, tokens). The levels
 * are what make a draw cheap on a GPU: lanes add the blocks in parallel,
 * and one lane walks about 64 + 32 + 128 sums instead of n_vocab weights.
 * The order of every sum is part of the definition, so shaders/draw.comp
 * and this file pick the same token from the same weights; they differ
 * only where the device's exp() rounds differently. Top-p's nucleus is
 * found by bisection on masses in the same order, which needs no sort, so
 * a GPU finds the same nucleus. */
#include <math.h>
#include <string.h>

#include "decoding/dec.h"

/* Sum of entry k of a level: a token's weight, a block's, a group's. */
typedef float (*level_sum_fn)(const float *w, uint32_t n_vocab, uint32_t k);

static float token_sum(const float *w, uint32_t n_vocab, uint32_t k)
{
    (void)n_vocab;
    return w[k];
}

static float block_sum(const float *w, uint32_t n_vocab, uint32_t b)
{
    uint32_t lo = b * DEC_DRAW_BLOCK,
             hi = n_vocab - lo < DEC_DRAW_BLOCK ? n_vocab : lo + DEC_DRAW_BLOCK;
    float c = 0.0f;
    for (uint32_t v = lo; v < hi; v++)
        c += w[v];
    return c;
}

static float group_sum(const float *w, uint32_t n_vocab, uint32_t g)
{
    uint32_t nb = (n_vocab + DEC_DRAW_BLOCK - 1) / DEC_DRAW_BLOCK;
    uint32_t lo = g * DEC_DRAW_GROUP, hi = nb - lo < DEC_DRAW_GROUP ? nb : lo + DEC_DRAW_GROUP;
    float c = 0.0f;
    for (uint32_t b = lo; b < hi; b++)
        c += block_sum(w, n_vocab, b);
    return c;
}

/* The first entry of [lo, hi) whose sum takes the running sum *c past
 * *target, adding the ones before it to *c. With none (rounding), the last
 * entry with a nonzero sum, and *target becomes infinite so that the
 * levels below take their last nonzero entries too. */
static uint32_t walk(level_sum_fn sum, const float *w, uint32_t n_vocab, uint32_t lo, uint32_t hi,
                     float *c, float *target)
{
    for (uint32_t k = lo; k < hi; k++) {
        float next = *c + sum(w, n_vocab, k);
        if (next > *target)
            return k;
        *c = next;
    }
    *target = INFINITY;
    for (uint32_t k = hi; k > lo; k--)
        if (sum(w, n_vocab, k - 1) > 0.0f)
            return k - 1;
    return lo;
}

/* The candidate order as a key: a token comes first if its key is larger,
 * or equal with a lower id (-0 as +0; NaN has key 0, below every number). */
static uint32_t order_key(float s)
{
    uint32_t u;
    if (s != s)
        return 0;
    s = s == 0.0f ? 0.0f : s;
    memcpy(&u, &s, sizeof(u));
    return u & 0x80000000u ? ~u : u | 0x80000000u;
}

/* A prefix of the candidate order: the tokens whose key is above tau, and
 * those whose key is tau up to id idb. */
struct prefix {
    uint32_t tau, idb;
};

static bool in_prefix(struct prefix c, uint32_t key, uint32_t v)
{
    return key > c.tau || (key == c.tau && v <= c.idb);
}

/* The mass of the tokens of ids[0..n) (ascending) that are in prefix c:
 * their weights summed by levels, in order. Tokens left out weigh 0, and
 * adding 0 changes no sum, so this is the mass over the whole row when ids
 * holds every token of c. */
static float list_mass(const float *logits, const float *w, const uint32_t *ids, uint32_t n,
                       float inv_t, struct prefix c)
{
    float total = 0.0f, gs = 0.0f, bs = 0.0f;
    uint32_t cur_b = UINT32_MAX, cur_g = UINT32_MAX;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t v = ids[i], b = v / DEC_DRAW_BLOCK, g = b / DEC_DRAW_GROUP;
        if (!in_prefix(c, order_key(logits[v] * inv_t), v))
            continue;
        if (b != cur_b) {
            if (cur_b != UINT32_MAX)
                gs += bs;
            if (g != cur_g) {
                if (cur_g != UINT32_MAX)
                    total += gs;
                gs = 0.0f;
                cur_g = g;
            }
            bs = 0.0f;
            cur_b = b;
        }
        bs += w[v];
    }
    if (cur_b != UINT32_MAX)
        total += gs + bs;
    return total;
}

/* The mass of every token: the weights summed by levels. */
static float row_mass(const float *w, uint32_t n_vocab)
{
    uint32_t nb = (n_vocab + DEC_DRAW_BLOCK - 1) / DEC_DRAW_BLOCK,
             ng = (nb + DEC_DRAW_GROUP - 1) / DEC_DRAW_GROUP;
    float total = 0.0f;
    for (uint32_t g = 0; g < ng; g++)
        total += group_sum(w, n_vocab, g);
    return total;
}

/* Keep, in order, the tokens of ids[0..n) whose key is at least floor;
 * returns how many. */
static uint32_t keep_from(const float *logits, float inv_t, uint32_t *ids, uint32_t n,
                          uint32_t floor)
{
    uint32_t kept = 0;
    for (uint32_t i = 0; i < n; i++)
        if (order_key(logits[ids[i]] * inv_t) >= floor)
            ids[kept++] = ids[i];
    return kept;
}

/* The nucleus: the shortest prefix whose mass reaches top_p times the
 * row's. Masses only grow with the prefix, so bisect: the largest key tau
 * whose prefix of keys >= tau reaches it (a bit at a time from the top),
 * then among the tokens with key tau the fewest, in id order. That is
 * what draw.comp does, weighing the whole row each time. Here the weighing
 * is of a list: the tokens within 8 of the best scaled logit if they hold
 * enough mass (a tau at or below their lowest key then passes without
 * weighing, and every prefix weighed lies inside the list), else every
 * token; and each tau that passes drops the tokens below it. At 32000
 * tokens that costs a few times a draw without top-p where the nucleus is
 * small, and up to some ms on a CPU core for rows so flat that it holds
 * most of them. ids: scratch of n_vocab. */
static struct prefix nucleus(const float *logits, const float *w, uint32_t n_vocab, float inv_t,
                             float mx, float top_p, uint32_t *ids)
{
    float target = top_p * row_mass(w, n_vocab);
    for (uint32_t v = 0; v < n_vocab; v++)
        ids[v] = v;
    uint32_t floor_key = order_key(mx - 8.0f),
             n = keep_from(logits, inv_t, ids, n_vocab, floor_key);
    if (list_mass(logits, w, ids, n, inv_t, (struct prefix){ floor_key, UINT32_MAX }) < target) {
        floor_key = 0; /* every token: their mass is the row's, which reaches target */
        for (uint32_t v = 0; v < n_vocab; v++)
            ids[v] = v;
        n = n_vocab;
    }
    uint32_t tau = 0;
    for (int bit = 31; bit >= 0; bit--) {
        struct prefix t = { tau | 1u << bit, UINT32_MAX };
        if (t.tau <= floor_key)
            tau = t.tau;
        else if (list_mass(logits, w, ids, n, inv_t, t) >= target) {
            n = keep_from(logits, inv_t, ids, n, t.tau); /* later prefixes lie inside this one */
            tau = t.tau;
        }
    }
    uint32_t ties = 0;
    for (uint32_t i = 0; i < n; i++)
        ties += order_key(logits[ids[i]] * inv_t) == tau;
    if (ties < 2)
        return (struct prefix){ tau, UINT32_MAX };
    uint32_t lo = 0, hi = n_vocab - 1;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (list_mass(logits, w, ids, n, inv_t, (struct prefix){ tau, mid }) >= target)
            hi = mid;
        else
            lo = mid + 1;
    }
    return (struct prefix){ tau, lo };
}

int32_t dec_draw(const float *logits, uint32_t n_vocab, const struct dec_draw_params *d,
                 uint32_t u24, float *w, uint32_t *ids)
{
    float inv_t = 1.0f / d->temperature, mx = -INFINITY;
    for (uint32_t v = 0; v < n_vocab; v++) {
        float s = logits[v] * inv_t;
        if (s > mx)
            mx = s;
    }
    bool top_p = d->top_p > 0.0f && d->top_p < 1.0f;
    for (uint32_t v = 0; v < n_vocab; v++) {
        float x = expf(logits[v] * inv_t - mx);
        w[v] = x >= (top_p ? 0.0f : d->min_p) ? x : 0.0f; /* NaN too */
    }
    if (top_p) {
        struct prefix c = nucleus(logits, w, n_vocab, inv_t, mx, d->top_p, ids);
        for (uint32_t v = 0; v < n_vocab; v++)
            if (!in_prefix(c, order_key(logits[v] * inv_t), v) || !(w[v] >= d->min_p))
                w[v] = 0.0f;
    }
    uint32_t nb = (n_vocab + DEC_DRAW_BLOCK - 1) / DEC_DRAW_BLOCK;
    uint32_t ng = (nb + DEC_DRAW_GROUP - 1) / DEC_DRAW_GROUP;
    float total = row_mass(w, n_vocab);
    if (!(total > 0.0f))
        return 0;
    float target = (float)(u24 & 0xffffffu) * 0x1p-24f * total, c = 0.0f;
    uint32_t g = walk(group_sum, w, n_vocab, 0, ng, &c, &target);
    uint32_t blo = g * DEC_DRAW_GROUP, bhi = nb - blo < DEC_DRAW_GROUP ? nb : blo + DEC_DRAW_GROUP;
    uint32_t b = walk(block_sum, w, n_vocab, blo, bhi, &c, &target);
    uint32_t vlo = b * DEC_DRAW_BLOCK,
             vhi = n_vocab - vlo < DEC_DRAW_BLOCK ? n_vocab : vlo + DEC_DRAW_BLOCK;
    return (int32_t)walk(token_sum, w, n_vocab, vlo, vhi, &c, &target);
}
