/* The 2D Jacobi window of the reference algorithm (docs/lookahead.md).
 * Level 0 is the oldest Jacobi iterate, level n-2 the newest; each step
 * computes one more iterate from the newest level and shifts the window
 * one position, whatever the step accepted (the reference's
 * ALWAYS_FWD_ONE). Window tokens are guesses only: whatever they hold,
 * output stays exact. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "decoding/dec-internal.h"

int dec_window_init(struct dec_window *win, uint32_t n_max, uint32_t w_max)
{
    memset(win, 0, sizeof(*win));
    if (n_max < 3 || n_max > DEC_N_LIMIT || !w_max)
        return -EINVAL;
    size_t stride = (size_t)w_max + n_max;
    win->buf = malloc(sizeof(*win->buf) * stride * (n_max - 1));
    if (!win->buf)
        return -ENOMEM;
    for (uint32_t l = 0; l + 1 < n_max; l++)
        win->lv[l] = win->buf + stride * l;
    return 0;
}

void dec_window_done(struct dec_window *win)
{
    if (!win)
        return;
    free(win->buf);
    memset(win, 0, sizeof(*win));
}

void dec_window_start(struct dec_window *win, uint32_t n, uint32_t w, const int32_t *prompt,
                      uint32_t n_prompt, struct dec_rng *rng)
{
    win->n = n;
    win->w = w;
    win->fill = 0;
    memset(win->len, 0, sizeof(win->len));
    win->len[0] = w + n - 3;
    for (uint32_t j = 0; j < win->len[0]; j++)
        win->lv[0][j] = prompt[dec_rng_below(rng, n_prompt)];
}

uint32_t dec_window_rows(const struct dec_window *win)
{
    uint32_t rows = 0;
    for (uint32_t l = 0; l <= win->fill; l++)
        rows += win->len[l];
    return rows;
}

uint32_t dec_window_depth(const struct dec_window *win)
{
    uint32_t depth = win->len[0];
    for (uint32_t l = 1; l <= win->fill; l++)
        if (win->len[l] && win->len[l] - 1 + l > depth)
            depth = win->len[l] - 1 + l;
    return depth;
}

uint32_t dec_window_rows_max(uint32_t n, uint32_t w)
{
    /* Warm-up step f carries level 0 (w+n-3-f) and f levels of one more. */
    uint32_t best = (n - 1) * w;
    for (uint32_t f = 0; f + 2 < n; f++) {
        uint32_t len0 = w + n - 3 - f;
        uint32_t rows = len0 + f * (len0 + 1);
        if (rows + 1 > best)
            best = rows + 1;
    }
    return best;
}

/* Level 0 is a causal chain after the last token; level l >= 1 column j
 * sees level 0 up to column j-1, then column j of levels 1..l. */
static int32_t parent_of(const struct dec_window *win, uint32_t l, uint32_t j)
{
    if (l <= 1)
        return j == 0 ? 0 : (int32_t)(win->base[0] + j - 1);
    return (int32_t)(win->base[l - 1] + j);
}

void dec_window_build(struct dec_window *win, struct dec_row *rows, uint32_t first)
{
    uint32_t r = first;
    for (uint32_t l = 0; l <= win->fill; l++) {
        win->base[l] = r;
        for (uint32_t j = 0; j < win->len[l]; j++, r++) {
            /* Only the newest level's outputs are read back, and in
             * warm-up beyond level 0 its column 0 is discarded. */
            bool used = l == win->fill && !(l > 0 && !dec_window_is_full(win) && j == 0);
            rows[r].token = win->lv[l][j];
            rows[r].parent = parent_of(win, l, j);
            rows[r].want = used ? DEC_WANT_ARGMAX : DEC_WANT_NONE;
            rows[r].u24 = 0;
        }
    }
}

static void pool_update(const struct dec_window *win, const int32_t *out, int32_t lst,
                        struct dec_pool *pool)
{
    int32_t tail[DEC_N_LIMIT];
    uint32_t top = win->n - 2;
    for (uint32_t i = 0; i < win->w; i++) {
        for (uint32_t l = 1; l <= top; l++)
            tail[l - 1] = win->lv[l][i];
        tail[top] = out[i];
        dec_pool_add(pool, i == 0 ? lst : win->lv[0][i - 1], tail);
    }
}

static void drop_first(struct dec_window *win, uint32_t l)
{
    memmove(win->lv[l], win->lv[l] + 1, sizeof(int32_t) * (win->len[l] - 1));
    win->len[l]--;
}

void dec_window_update(struct dec_window *win, const int32_t *argmax, int32_t lst,
                       struct dec_pool *pool)
{
    uint32_t f = win->fill;
    const int32_t *out = argmax + win->base[f];
    if (dec_window_is_full(win)) {
        pool_update(win, out, lst, pool);
        memcpy(win->lv[0], win->lv[1] + 1, sizeof(int32_t) * (win->w - 1));
        win->len[0] = win->w - 1;
        for (uint32_t l = 1; l < f; l++)
            memcpy(win->lv[l], win->lv[l + 1], sizeof(int32_t) * win->w);
        memcpy(win->lv[f], out, sizeof(int32_t) * win->w);
        return;
    }
    /* Warm-up: the new level is the argmax of the newest one, aligned one
     * position on as the last token advances. */
    uint32_t skip = f == 0 ? 0 : 1;
    uint32_t n_new = win->len[f] - skip;
    memcpy(win->lv[f + 1], out + skip, sizeof(int32_t) * n_new);
    for (uint32_t l = 0; l <= f; l++)
        drop_first(win, l);
    win->len[f + 1] = n_new;
    win->fill = f + 1;
}
