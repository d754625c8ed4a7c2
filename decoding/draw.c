/* The draw of dec.h: one uniform number walked down three levels of
 * partial sums of the row's weights (groups, blocks, tokens). The levels
 * are what make a draw cheap on a GPU: lanes add the blocks in parallel,
 * and one lane walks about 64 + 32 + 128 sums instead of n_vocab weights.
 * The order of every sum is part of the definition, so shaders/draw.comp
 * and this file pick the same token from the same weights; they differ
 * only where the device's exp() rounds differently. */
#include <math.h>

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
    uint32_t lo = b * DEC_DRAW_BLOCK, hi = n_vocab - lo < DEC_DRAW_BLOCK ? n_vocab : lo + DEC_DRAW_BLOCK;
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
static uint32_t walk(level_sum_fn sum, const float *w, uint32_t n_vocab, uint32_t lo, uint32_t hi, float *c,
                     float *target)
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

int32_t dec_draw(const float *logits, uint32_t n_vocab, const struct dec_draw_params *d, uint32_t u24, float *w)
{
    float inv_t = 1.0f / d->temperature, mx = -INFINITY;
    for (uint32_t v = 0; v < n_vocab; v++) {
        float s = logits[v] * inv_t;
        if (s > mx)
            mx = s;
    }
    for (uint32_t v = 0; v < n_vocab; v++) {
        float x = expf(logits[v] * inv_t - mx);
        w[v] = x >= d->min_p ? x : 0.0f; /* NaN too */
    }
    uint32_t nb = (n_vocab + DEC_DRAW_BLOCK - 1) / DEC_DRAW_BLOCK;
    uint32_t ng = (nb + DEC_DRAW_GROUP - 1) / DEC_DRAW_GROUP;
    float total = 0.0f;
    for (uint32_t g = 0; g < ng; g++)
        total += group_sum(w, n_vocab, g);
    if (!(total > 0.0f))
        return 0;
    float target = (float)(u24 & 0xffffffu) * 0x1p-24f * total, c = 0.0f;
    uint32_t g = walk(group_sum, w, n_vocab, 0, ng, &c, &target);
    uint32_t blo = g * DEC_DRAW_GROUP, bhi = nb - blo < DEC_DRAW_GROUP ? nb : blo + DEC_DRAW_GROUP;
    uint32_t b = walk(block_sum, w, n_vocab, blo, bhi, &c, &target);
    uint32_t vlo = b * DEC_DRAW_BLOCK, vhi = n_vocab - vlo < DEC_DRAW_BLOCK ? n_vocab : vlo + DEC_DRAW_BLOCK;
    return (int32_t)walk(token_sum, w, n_vocab, vlo, vhi, &c, &target);
}
