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

/* Best of three: the minimum filters out scheduling noise. */
static int time_step(const struct dec_model *m, const struct dec_row *rows, uint32_t n, int32_t *am, double *ret)
{
    double best = 1e300;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now_ms();
        int err = m->step(m->ctx, rows, n, am, NULL);
        if (err)
            return err;
        double t = now_ms() - t0;
        best = t < best ? t : best;
    }
    *ret = best;
    return 0;
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
    double t1 = 0, tw = 0;
    if (!err)
        err = time_step(m, rows, 1, am, &t1);
    if (!err)
        err = time_step(m, rows, WIDE, am, &tw);
    m->rewind(m->ctx, 0);
    if (err)
        return err;
    double c = t1 > 0 ? (tw - t1) / ((WIDE - 1) * t1) : 1.0;
    *ret_cost = c > 0 ? c : 0;
    return 0;
}
