/* Request parameters: defaults, caps and validation. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "decoding/dec-internal.h"

const char *dec_finish_name(enum dec_finish f)
{
    switch (f) {
    case DEC_FINISH_EOS: return "eos";
    case DEC_FINISH_STOP: return "stop";
    case DEC_FINISH_LENGTH: return "length";
    case DEC_FINISH_CONTEXT: return "context";
    case DEC_FINISH_CANCELLED: return "cancelled";
    case DEC_FINISH_ERROR: return "error";
    case DEC_FINISH_NONE: break;
    }
    return "none";
}

struct dec_caps dec_caps_default(void)
{
    return (struct dec_caps){
        .max_n = 8,
        .max_w = 32,
        .max_g = 32,
        .max_tokens = 4096,
        .max_stop = 8,
        .max_stop_len = 64,
        .pool_entries = 0,
    };
}

uint32_t dec_lookahead_rows(uint32_t n, uint32_t w, uint32_t g)
{
    return dec_window_rows_max(n, w) + g * (n - 1);
}

int dec_caps_fit(struct dec_caps *c, uint32_t max_rows)
{
    while (dec_lookahead_rows(c->max_n < 3 ? 3 : c->max_n, c->max_w, c->max_g) > max_rows) {
        if (c->max_w > 1 && c->max_w >= c->max_g)
            c->max_w--;
        else if (c->max_g > 1)
            c->max_g--;
        else if (c->max_n > 3)
            c->max_n--;
        else
            return -ERANGE;
    }
    return 0;
}

void dec_lookahead_default_for_cost(double row_cost, struct dec_params *p)
{
    /* The row budget is about 2 / row_cost (a lookahead step should cost
     * at most about 3 plain ones). Within it, longer n-grams pay more than
     * wider windows: with candidates from the text the Jacobi window adds
     * little on code, so at an H100's row cost for a small model the
     * choice is one column and N at the default max_n of 8. The figures
     * behind the table are in docs/lookahead.md ("Window size"). */
    static const struct {
        double max_cost;
        uint32_t n, w, g;
    } table[] = {
        { 1.0 / 120, 5, 15, 15 }, /* 141 rows */
        { 1.0 / 56, 7, 7, 7 }, /* 85 rows */
        { 1.0 / 24, 8, 1, 5 }, /* 43 rows at most, 28 a step on code */
    };
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        if (!(row_cost > table[i].max_cost)) {
            p->n = table[i].n;
            p->w = table[i].w;
            p->g = table[i].g;
            return;
        }
    }
    p->n = 3; /* 12 rows */
    p->w = 3;
    p->g = 3;
}

static int fail(char *reterr, size_t len, const char *fmt, ...)
{
    if (reterr && len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(reterr, len, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

static int check_sampling(const struct dec_params *p, char *e, size_t l)
{
    if (!isfinite(p->temperature) || p->temperature < 0 || p->temperature > 100)
        return fail(e, l, "temperature %g is outside 0..100", (double)p->temperature);
    if (!isfinite(p->top_p) || p->top_p <= 0 || p->top_p > 1)
        return fail(e, l, "top_p %g is outside (0, 1]", (double)p->top_p);
    if (!isfinite(p->min_p) || p->min_p < 0 || p->min_p > 1)
        return fail(e, l, "min_p %g is outside [0, 1]", (double)p->min_p);
    if (!isfinite(p->repeat_penalty) || p->repeat_penalty <= 0 || p->repeat_penalty > 100)
        return fail(e, l, "repeat_penalty %g is outside (0, 100]", (double)p->repeat_penalty);
    return 0;
}

static int check_lookahead(const struct dec_params *p, const struct dec_caps *c, char *e, size_t l)
{
    if (!p->lookahead)
        return 0;
    if (p->n < 3)
        return fail(e, l, "lookahead n %u is below 3", p->n);
    if (p->n > c->max_n)
        return fail(e, l, "lookahead n %u is above the configured max_n %u", p->n, c->max_n);
    if (p->w < 1)
        return fail(e, l, "lookahead w must be at least 1");
    if (p->w > c->max_w)
        return fail(e, l, "lookahead w %u is above the configured max_w %u", p->w, c->max_w);
    if (p->g < 1)
        return fail(e, l, "lookahead g must be at least 1");
    if (p->g > c->max_g)
        return fail(e, l, "lookahead g %u is above the configured max_g %u", p->g, c->max_g);
    return 0;
}

static int check_stop(const struct dec_params *p, const struct dec_caps *c, char *e, size_t l)
{
    if (p->n_stop > c->max_stop)
        return fail(e, l, "%u stop strings, at most %u allowed", p->n_stop, c->max_stop);
    if (p->n_stop && !p->stop)
        return fail(e, l, "n_stop is %u but stop is NULL", p->n_stop);
    for (uint32_t i = 0; i < p->n_stop; i++) {
        size_t len = p->stop[i] ? strlen(p->stop[i]) : 0;
        if (!len)
            return fail(e, l, "stop string %u is empty", i);
        if (len > c->max_stop_len)
            return fail(e, l, "stop string %u is %zu bytes, at most %u allowed", i, len,
                        c->max_stop_len);
    }
    return 0;
}

int dec_params_validate(const struct dec_params *p, const struct dec_caps *caps, char *reterr,
                        size_t reterr_len)
{
    if (!p || !caps)
        return fail(reterr, reterr_len, "no parameters");
    if (p->max_tokens < 1)
        return fail(reterr, reterr_len, "max_tokens must be at least 1");
    if (p->max_tokens > caps->max_tokens)
        return fail(reterr, reterr_len, "max_tokens %u is above the configured max_tokens %u",
                    p->max_tokens, caps->max_tokens);
    int r = check_sampling(p, reterr, reterr_len);
    if (!r)
        r = check_lookahead(p, caps, reterr, reterr_len);
    if (!r)
        r = check_stop(p, caps, reterr, reterr_len);
    return r;
}
