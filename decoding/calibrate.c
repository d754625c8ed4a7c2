/* Measuring what one more row in a step costs on this model and device, so
 * that lookahead's default window fits the hardware (wide on a big GPU where
 * rows are nearly free, narrow on a CPU driver where every row costs). */
#include <errno.h>
#include <math.h>
#include <time.h>

#include "decoding/dec.h"

static uint64_t mono_ns(void *user)
{
    (void)user;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct clock {
    uint64_t (*now_ns)(void *user);
    void *user;
};

/* One timed step, in nanoseconds. */
static int time_once(const struct dec_model *m, const struct clock *c, const struct dec_row *rows,
                     uint32_t n, int32_t *am, double *ret)
{
    uint64_t t0 = c->now_ns(c->user);
    int err = m->step(m->ctx, rows, n, am, NULL);
    *ret = (double)(c->now_ns(c->user) - t0);
    return err;
}

int dec_lookahead_choose(const struct dec_model *m, struct dec_params *p, double *ret_cost)
{
    double cost = -1;
    int r = dec_measure_row_cost_clock(m, NULL, NULL, &cost);
    /* Unmeasured counts as the dearest (dec.h says why). */
    dec_lookahead_default_for_cost(r ? HUGE_VAL : cost, p);
    if (ret_cost)
        *ret_cost = r ? -1 : cost;
    return r;
}

int dec_measure_row_cost_clock(const struct dec_model *m, uint64_t (*now_ns)(void *user),
                               void *user, double *ret_cost)
{
    struct clock c = { now_ns ? now_ns : mono_ns, now_ns ? user : NULL };
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
        rows[i] = (struct dec_row){ first, i == 0 ? -1 : (int32_t)((i - 1) / 4 * 4),
                                    DEC_WANT_ARGMAX, 0 };
    /* A few untimed steps first (a GPU's clocks ramp up on first use, and
     * a cold first step would make rows look dearer than they are), then
     * one-row and wide steps taken in turn, the best of five each: the
     * minimum filters out scheduling noise, alternating spreads any drift
     * over both. */
    double t1 = 1e300, tw = 1e300, t;
    for (int i = 0; !err && i < 3; i++)
        err = time_once(m, &c, rows, 1, am, &t);
    for (int rep = 0; !err && rep < 5; rep++) {
        err = time_once(m, &c, rows, 1, am, &t);
        t1 = t < t1 ? t : t1;
        if (!err)
            err = time_once(m, &c, rows, WIDE, am, &t);
        tw = t < tw ? t : tw;
    }
    m->rewind(m->ctx, 0);
    if (err)
        return err;
    double cost = t1 > 0 ? (tw - t1) / ((WIDE - 1) * t1) : 1.0;
    *ret_cost = cost > 0 ? cost : 0;
    return 0;
}
