/* Measuring what one more row in a step costs on this model and device, so
 * that lookahead's default window fits the hardware (wide on a big GPU where
 * rows are nearly free, narrow on a CPU driver where every row costs). */
#include "decoding/dec.h"

#include <errno.h>
#include <time.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* One timed step. */
static int time_once(const struct dec_model *m, const struct dec_row *rows, uint32_t n, int32_t *am, double *ret)
{
    double t0 = now_ms();
    int err = m->step(m->ctx, rows, n, am, NULL);
    *ret = now_ms() - t0;
    return err;
}

int dec_measure_row_cost(const struct dec_model *m, double *ret_cost)
{
    enum { PREFIX = 8, WIDE = 33 };
    struct dec_row rows[WIDE];
    int32_t am[WIDE], first;
    int32_t prefix[PREFIX];
    if (m->max_rows < WIDE || m->n_ctx < PREFIX + WIDE)
        return -EINVAL;
    for (int i = 0; i < PREFIX; i++)
        prefix[i] = m->bos >= 0 ? m->bos : 0;
    int err = m->rewind(m->ctx, 0);
    if (!err)
        err = m->prefill(m->ctx, prefix, PREFIX, &first, NULL);
    /* A lookahead-shaped step: short chains under one root, one argmax a row. */
    for (uint32_t i = 0; i < WIDE; i++)
        rows[i] = (struct dec_row){first, i == 0 ? -1 : (int32_t)((i - 1) / 4 * 4), DEC_WANT_ARGMAX};
    /* A few untimed steps first (a GPU's clocks ramp up on first use, and
     * on the H200 this figure lands near the line between two window sizes:
     * 0.028 and 0.043 in two runs, with different matrix kernels), then
     * one-row and wide steps taken in turn, the best of five each: the
     * minimum filters out scheduling noise, alternating spreads any drift
     * over both. */
    double t1 = 1e300, tw = 1e300, t;
    for (int i = 0; !err && i < 3; i++)
        err = time_once(m, rows, 1, am, &t);
    for (int rep = 0; !err && rep < 5; rep++) {
        err = time_once(m, rows, 1, am, &t);
        t1 = t < t1 ? t : t1;
        if (!err)
            err = time_once(m, rows, WIDE, am, &t);
        tw = t < tw ? t : tw;
    }
    m->rewind(m->ctx, 0);
    if (err)
        return err;
    double c = t1 > 0 ? (tw - t1) / ((WIDE - 1) * t1) : 1.0;
    *ret_cost = c > 0 ? c : 0;
    return 0;
}
