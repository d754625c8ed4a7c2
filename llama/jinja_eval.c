/* llama: running a parsed Jinja template. Statements append to one output
 * buffer; expressions make values in an arena freed after the render.
 * Scopes are frames on the C stack: the template's, one per for loop (its
 * variables live across turns, as in @huggingface/jinja) and one per macro
 * call (which sees the template's frame and the globals only). Every
 * statement, expression node and loop turn costs a step. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llama/jinja-internal.h"

#define JINJA_MAX_CALLS 16 /* macro calls in progress (recursion) */

enum { EX_BREAK = 1, EX_CONTINUE = 2 };

struct jframe {
    struct jframe *parent; /* NULL: the globals come next */
    struct llm_jval vars; /* a JV_DICT in the render arena */
};

static struct llm_jval *eval(struct jeval *e, struct jframe *f, const struct jnode *n);
static int exec(struct jeval *e, struct jframe *f, const struct jnode *body);

void *jx_fail(struct jeval *e, const struct jnode *n, int err, const char *fmt, ...)
{
    va_list ap;
    if (e->err)
        return NULL;
    e->err = err;
    if (e->reterr && e->errlen) {
        int k = snprintf(e->reterr, e->errlen, "line %u, column %u: ", n->line, n->col);
        va_start(ap, fmt);
        if (k >= 0 && (size_t)k < e->errlen)
            vsnprintf(e->reterr + k, e->errlen - k, fmt, ap);
        va_end(ap);
    }
    return NULL;
}

void *jx_nomem(struct jeval *e, const struct jnode *n)
{
    if (e->a.oom)
        return jx_fail(e, n, -ENOMEM, "out of memory");
    return jx_fail(e, n, -E2BIG, "the template needs more than %zu bytes of memory", e->a.cap);
}

bool jx_charge(struct jeval *e, const struct jnode *n, uint64_t cost, size_t bytes)
{
    e->steps += cost + (bytes >> 6);
    if (e->steps <= e->max_steps)
        return true;
    jx_fail(e, n, -E2BIG, "the template ran more than %llu steps",
            (unsigned long long)e->max_steps);
    return false;
}

struct llm_jval *jx_newstr(struct jeval *e, const struct jnode *at, size_t n, char **ret_p)
{
    struct llm_jval *v = jv_new(&e->a, JV_STR);
    char *p = v && n < SIZE_MAX ? ja_alloc(&e->a, n + 1) : NULL;
    if (!p || !jx_charge(e, at, 0, n))
        return p ? NULL : jx_nomem(e, at);
    p[n] = 0;
    v->u.s.p = p;
    v->u.s.n = n;
    *ret_p = p;
    return v;
}

struct llm_jval *jx_arg(const struct jargs *a, uint32_t i, const char *name)
{
    if (i < a->npos)
        return a->pos[i];
    for (uint32_t k = 0; name && k < a->nkw; k++)
        if (a->kwlen[k] == strlen(name) && memcmp(a->kw[k], name, a->kwlen[k]) == 0)
            return a->kwv[k];
    return NULL;
}

struct llm_jval *jx_take(struct jeval *e, const struct jnode *n, struct jbuf *b)
{
    struct llm_jval *v = NULL;
    char *p;
    if (b->err == -ENOMEM)
        jx_fail(e, n, b->err, "out of memory");
    else if (b->err)
        jx_fail(e, n, b->err, "text longer than %zu bytes", b->max);
    else if (!e->err && (v = jx_newstr(e, n, b->n, &p)) && b->n)
        memcpy(p, b->p, b->n);
    free(b->p);
    *b = (struct jbuf){ 0 };
    return v;
}

struct llm_jval *jx_tostr(struct jeval *e, const struct jnode *at, struct llm_jval *v)
{
    struct jbuf b = { .max = e->out.max };
    if (v->kind == JV_STR)
        return v;
    jv_print(&b, v);
    return jx_take(e, at, &b);
}

/* v, or the out-of-memory error for an allocation that failed. */
static struct llm_jval *ok(struct jeval *e, const struct jnode *n, struct llm_jval *v)
{
    return v ? v : jx_nomem(e, n);
}

/* ---- names ---- */

static struct llm_jval *lookup(struct jeval *e, struct jframe *f, const char *name, size_t len)
{
    for (; f; f = f->parent) {
        struct llm_jval *v = jv_get(&f->vars, name, len);
        if (v)
            return v;
    }
    struct llm_jval *g = e->globals ? jv_get(e->globals, name, len) : NULL;
    return g ? g : &jv_undef;
}

static bool assign(struct jeval *e, struct jframe *f, const struct jnode *at, const char *name,
                   size_t len, struct llm_jval *v)
{
    int r = jv_put(&e->a, &f->vars, name, len, v);
    if (r < 0)
        jx_nomem(e, at);
    return r == 0;
}

static struct llm_jval *loop_attr(struct jeval *e, const struct jnode *at, const struct jloop *l,
                                  const char *name, size_t len)
{
    static const char *const keys[] = { "index", "index0", "revindex", "revindex0", "first",
                                        "last",  "length", "previtem", "nextitem" };
    int64_t i = l->i, n = l->n;
    int k = 0;
    while (k < 9 && !(strlen(keys[k]) == len && memcmp(keys[k], name, len) == 0))
        k++;
    switch (k) {
    case 0: return ok(e, at, jv_int(&e->a, i + 1));
    case 1: return ok(e, at, jv_int(&e->a, i));
    case 2: return ok(e, at, jv_int(&e->a, n - i));
    case 3: return ok(e, at, jv_int(&e->a, n - i - 1));
    case 4: return jv_bool(i == 0);
    case 5: return jv_bool(i == n - 1);
    case 6: return ok(e, at, jv_int(&e->a, n));
    case 7: return i > 0 ? l->items[i - 1] : &jv_undef;
    case 8: return i + 1 < n ? l->items[i + 1] : &jv_undef;
    default: return &jv_undef;
    }
}

struct llm_jval *jx_getattr(struct jeval *e, const struct jnode *at, struct llm_jval *v,
                            const char *name, size_t len)
{
    if (v->kind == JV_UNDEF || v->kind == JV_NONE)
        return jx_fail(e, at, -EINVAL, "cannot read '%.*s' of %s", (int)(len > 40 ? 40 : len), name,
                       jv_kind_name(v));
    if (v->kind == JV_LOOP)
        return loop_attr(e, at, v->u.loop, name, len);
    struct llm_jval *r = jv_get(v, name, len);
    return r ? r : &jv_undef;
}

/* ---- expressions ---- */

/* Python's index into n items: negative from the end; -1 if outside. */
static int64_t norm_index(int64_t i, int64_t n)
{
    if (i < 0)
        i += n;
    return i < 0 || i >= n ? -1 : i;
}

/* Byte offsets of a string's characters, offs[count] = its length; NULL
 * (error recorded) when memory runs out. */
static size_t *char_offsets(struct jeval *e, const struct jnode *at, const struct llm_jval *s,
                            size_t *ret_count)
{
    size_t *offs = ja_alloc(&e->a, (s->u.s.n + 1) * sizeof(*offs)), k = 0;
    if (!offs || !jx_charge(e, at, 0, s->u.s.n * 8))
        return offs ? NULL : jx_nomem(e, at);
    for (size_t i = 0; i < s->u.s.n; k++) {
        uint32_t cp;
        offs[k] = i;
        i += jv_utf8_next((const unsigned char *)s->u.s.p + i, s->u.s.n - i, &cp);
    }
    offs[k] = s->u.s.n;
    *ret_count = k;
    return offs;
}

static struct llm_jval *item(struct jeval *e, const struct jnode *n, struct llm_jval *v,
                             struct llm_jval *k)
{
    if (k->kind == JV_STR && (v->kind == JV_DICT || v->kind == JV_LOOP))
        return jx_getattr(e, n, v, k->u.s.p, k->u.s.n);
    if (k->kind == JV_INT && v->kind == JV_LIST) {
        int64_t i = norm_index(k->u.i, v->u.l.n);
        return i < 0 ? &jv_undef : v->u.l.v[i];
    }
    if (k->kind == JV_INT && v->kind == JV_STR) {
        size_t count, *offs = char_offsets(e, n, v, &count);
        int64_t i = offs ? norm_index(k->u.i, (int64_t)count) : -1;
        if (!offs)
            return NULL;
        return i < 0 ? &jv_undef :
                       ok(e, n, jv_str(&e->a, v->u.s.p + offs[i], offs[i + 1] - offs[i]));
    }
    if (v->kind == JV_DICT)
        return &jv_undef;
    return jx_fail(e, n, -EINVAL, "cannot index %s with %s", jv_kind_name(v), jv_kind_name(k));
}

static bool slice_bound(struct jeval *e, const struct jnode *n, struct llm_jval *b, int64_t *ret)
{
    if (!b || b->kind == JV_NONE)
        return true;
    if (b->kind != JV_INT) {
        jx_fail(e, n, -EINVAL, "slice bounds must be integers, not %s", jv_kind_name(b));
        return false;
    }
    *ret = b->u.i;
    return true;
}

/* Python's slice of count items: start, step, and how many. */
static bool slice_range(struct jeval *e, const struct jnode *n, struct llm_jval *bv[3],
                        int64_t count, int64_t *ret_start, int64_t *ret_step, int64_t *ret_len)
{
    int64_t step = 1, start, stop;
    if (!slice_bound(e, n, bv[2], &step))
        return false;
    if (step == 0) {
        jx_fail(e, n, -EINVAL, "slice step cannot be zero");
        return false;
    }
    start = step > 0 ? 0 : count - 1;
    stop = step > 0 ? count : -1 - count;
    if (!slice_bound(e, n, bv[0], &start) || !slice_bound(e, n, bv[1], &stop))
        return false;
    if (start < 0)
        start = start + count < 0 ? (step > 0 ? 0 : -1) : start + count;
    else if (start >= count)
        start = step > 0 ? count : count - 1;
    if (stop < 0)
        stop = stop + count < 0 ? -1 : stop + count;
    else if (stop > count)
        stop = count;
    int64_t len = step > 0 ? (stop - start + step - 1) / step : (start - stop - step - 1) / -step;
    *ret_start = start;
    *ret_step = step;
    *ret_len = len > 0 ? len : 0;
    return true;
}

static struct llm_jval *slice(struct jeval *e, const struct jnode *n, struct llm_jval *v,
                              struct llm_jval *bv[3])
{
    int64_t start, step, len;
    size_t count = 0, *offs = NULL;
    if (v->kind == JV_STR && !(offs = char_offsets(e, n, v, &count)))
        return NULL;
    if (v->kind == JV_LIST)
        count = v->u.l.n;
    else if (v->kind != JV_STR)
        return jx_fail(e, n, -EINVAL, "cannot slice %s", jv_kind_name(v));
    if (!slice_range(e, n, bv, (int64_t)count, &start, &step, &len))
        return NULL;
    if (!jx_charge(e, n, (uint64_t)len, 0))
        return NULL;
    if (v->kind == JV_LIST) {
        struct llm_jval *r = jv_new(&e->a, JV_LIST);
        for (int64_t i = 0; r && i < len; i++)
            if (jv_push(&e->a, r, v->u.l.v[start + i * step]) < 0)
                r = NULL;
        return r ? r : jx_nomem(e, n);
    }
    size_t bytes = 0;
    for (int64_t i = 0; i < len; i++)
        bytes += offs[start + i * step + 1] - offs[start + i * step];
    char *p;
    struct llm_jval *r = jx_newstr(e, n, bytes, &p);
    for (int64_t i = 0; r && i < len; i++) {
        size_t o = offs[start + i * step], cl = offs[start + i * step + 1] - o;
        memcpy(p, v->u.s.p + o, cl);
        p += cl;
    }
    return r;
}

static bool is_numeric(const struct llm_jval *v)
{
    return v->kind == JV_INT || v->kind == JV_FLOAT || v->kind == JV_BOOL;
}

static double as_double(const struct llm_jval *v)
{
    return v->kind == JV_FLOAT ? v->u.f : v->kind == JV_INT ? (double)v->u.i : v->u.b;
}

static int64_t as_int(const struct llm_jval *v)
{
    return v->kind == JV_INT ? v->u.i : v->u.b;
}

static struct llm_jval *concat(struct jeval *e, const struct jnode *n, const struct llm_jval *x,
                               const struct llm_jval *y)
{
    char *p;
    if (x->kind == JV_LIST) {
        struct llm_jval *r = jv_new(&e->a, JV_LIST);
        for (uint32_t k = 0; r && k < x->u.l.n + y->u.l.n; k++)
            if (jv_push(&e->a, r, k < x->u.l.n ? x->u.l.v[k] : y->u.l.v[k - x->u.l.n]) < 0)
                r = NULL;
        return r && jx_charge(e, n, x->u.l.n + y->u.l.n, 0) ? r : r ? NULL : jx_nomem(e, n);
    }
    struct llm_jval *r = jx_newstr(e, n, x->u.s.n + y->u.s.n, &p);
    if (r) {
        memcpy(p, x->u.s.p, x->u.s.n);
        memcpy(p + x->u.s.n, y->u.s.p, y->u.s.n);
    }
    return r;
}

/* str * int, list * int: the result is made once, its size checked first. */
static struct llm_jval *repeat(struct jeval *e, const struct jnode *n, const struct llm_jval *x,
                               int64_t times)
{
    size_t unit = x->kind == JV_STR ? x->u.s.n : (size_t)x->u.l.n * sizeof(void *);
    /* an empty string or list repeated is empty, however many times */
    uint64_t k = times > 0 && unit ? (uint64_t)times : 0;
    char *p;
    if (unit && k > e->a.cap / unit)
        return jx_fail(e, n, -E2BIG, "the template needs more than %zu bytes of memory", e->a.cap);
    if (x->kind == JV_STR) {
        struct llm_jval *r = jx_newstr(e, n, unit * k, &p);
        for (uint64_t i = 0; r && i < k; i++)
            memcpy(p + i * unit, x->u.s.p, unit);
        return r;
    }
    /* charged before the loop, so the step budget bounds it */
    if (!jx_charge(e, n, k * x->u.l.n, 0))
        return NULL;
    struct llm_jval *r = jv_new(&e->a, JV_LIST);
    for (uint64_t i = 0; r && i < k * x->u.l.n; i++)
        if (jv_push(&e->a, r, x->u.l.v[i % x->u.l.n]) < 0)
            r = NULL;
    return r ? r : jx_nomem(e, n);
}

static struct llm_jval *arith_int(struct jeval *e, const struct jnode *n, enum jop op, int64_t x,
                                  int64_t y)
{
    int64_t r = 0;
    bool ovf = false;
    switch (op) {
    case JOP_ADD: ovf = __builtin_add_overflow(x, y, &r); break;
    case JOP_SUB: ovf = __builtin_sub_overflow(x, y, &r); break;
    case JOP_MUL: ovf = __builtin_mul_overflow(x, y, &r); break;
    case JOP_FLOORDIV:
    case JOP_MOD:
        if (y == 0)
            return jx_fail(e, n, -EINVAL, "division by zero");
        if (x == INT64_MIN && y == -1)
            return jx_fail(e, n, -EINVAL, "integer overflow");
        r = op == JOP_MOD ? x % y : x / y;
        if (op == JOP_MOD && r != 0 && ((r < 0) != (y < 0)))
            r += y;
        else if (op == JOP_FLOORDIV && (x % y != 0) && ((x < 0) != (y < 0)))
            r--;
        break;
    default: /* POW with y >= 0 */
        r = 1;
        for (int64_t i = 0; i < y && !ovf; i++)
            ovf = __builtin_mul_overflow(r, x, &r);
        break;
    }
    if (ovf)
        return jx_fail(e, n, -EINVAL, "integer overflow");
    return ok(e, n, jv_int(&e->a, r));
}

static struct llm_jval *arith(struct jeval *e, const struct jnode *n, enum jop op,
                              const struct llm_jval *x, const struct llm_jval *y)
{
    bool ints = (x->kind == JV_INT || x->kind == JV_BOOL) &&
                (y->kind == JV_INT || y->kind == JV_BOOL);
    if (op == JOP_ADD && x->kind == y->kind && (x->kind == JV_STR || x->kind == JV_LIST))
        return concat(e, n, x, y);
    if (op == JOP_MUL && (x->kind == JV_STR || x->kind == JV_LIST) && y->kind == JV_INT)
        return repeat(e, n, x, y->u.i);
    if (!is_numeric(x) || !is_numeric(y))
        return jx_fail(e, n, -EINVAL, "unsupported operand types %s and %s", jv_kind_name(x),
                       jv_kind_name(y));
    if (ints && op != JOP_DIV && !(op == JOP_POW && as_int(y) < 0))
        return arith_int(e, n, op, as_int(x), as_int(y));
    double a = as_double(x), b = as_double(y), r;
    if ((op == JOP_DIV || op == JOP_FLOORDIV || op == JOP_MOD) && b == 0)
        return jx_fail(e, n, -EINVAL, "division by zero");
    switch (op) {
    case JOP_ADD: r = a + b; break;
    case JOP_SUB: r = a - b; break;
    case JOP_MUL: r = a * b; break;
    case JOP_DIV: r = a / b; break;
    case JOP_FLOORDIV: r = floor(a / b); break;
    case JOP_MOD: r = a - b * floor(a / b); break;
    default: r = pow(a, b); break;
    }
    return ok(e, n, jv_float(&e->a, r));
}

static int compare(struct jeval *e, const struct jnode *n, const struct llm_jval *x,
                   const struct llm_jval *y, int *ret)
{
    if (is_numeric(x) && is_numeric(y)) {
        double a = as_double(x), b = as_double(y);
        if (x->kind == JV_INT && y->kind == JV_INT)
            *ret = (x->u.i > y->u.i) - (x->u.i < y->u.i);
        else
            *ret = (a > b) - (a < b);
        return 0;
    }
    if (x->kind == JV_STR && y->kind == JV_STR) {
        size_t m = x->u.s.n < y->u.s.n ? x->u.s.n : y->u.s.n;
        int c = memcmp(x->u.s.p, y->u.s.p, m);
        *ret = c ? (c > 0) - (c < 0) : (x->u.s.n > y->u.s.n) - (x->u.s.n < y->u.s.n);
        jx_charge(e, n, 0, m);
        return e->err;
    }
    jx_fail(e, n, -EINVAL, "cannot compare %s and %s", jv_kind_name(x), jv_kind_name(y));
    return e->err;
}

static bool equal(struct jeval *e, const struct jnode *n, const struct llm_jval *x,
                  const struct llm_jval *y)
{
    int64_t budget = 1 << 20;
    bool r = jv_equal(x, y, &budget);
    if (budget < 0)
        jx_fail(e, n, -E2BIG, "values too deep or too large to compare");
    else
        jx_charge(e, n, (uint64_t)((1 << 20) - budget), 0);
    return r;
}

static int contains(struct jeval *e, const struct jnode *n, const struct llm_jval *x,
                    const struct llm_jval *c)
{
    if (c->kind == JV_STR && x->kind == JV_STR) {
        if (!jx_charge(e, n, 0, c->u.s.n))
            return e->err;
        return x->u.s.n == 0 || memmem(c->u.s.p, c->u.s.n, x->u.s.p, x->u.s.n) != NULL;
    }
    if (c->kind == JV_LIST) {
        for (uint32_t i = 0; i < c->u.l.n && !e->err; i++)
            if (equal(e, n, x, c->u.l.v[i]))
                return !e->err;
        return e->err;
    }
    if (c->kind == JV_DICT && x->kind == JV_STR)
        return jv_get(c, x->u.s.p, x->u.s.n) != NULL;
    if (c->kind == JV_DICT)
        return 0;
    jx_fail(e, n, -EINVAL, "cannot look for %s in %s", jv_kind_name(x), jv_kind_name(c));
    return e->err;
}

static struct llm_jval *binary(struct jeval *e, struct jframe *f, const struct jnode *n)
{
    struct llm_jval *x = eval(e, f, n->a), *y;
    int c = 0;
    if (!x)
        return NULL;
    if (n->op == JOP_AND || n->op == JOP_OR)
        return jv_truthy(x) == (n->op == JOP_OR) ? x : eval(e, f, n->b);
    if (!(y = eval(e, f, n->b)))
        return NULL;
    switch (n->op) {
    case JOP_CONCAT:
        x = jx_tostr(e, n, x);
        y = x ? jx_tostr(e, n, y) : NULL;
        return y ? concat(e, n, x, y) : NULL;
    case JOP_EQ:
    case JOP_NE: c = equal(e, n, x, y) == (n->op == JOP_EQ); return e->err ? NULL : jv_bool(c);
    case JOP_LT:
    case JOP_LE:
    case JOP_GT:
    case JOP_GE:
        if (compare(e, n, x, y, &c))
            return NULL;
        return jv_bool(n->op == JOP_LT ? c < 0 :
                       n->op == JOP_LE ? c <= 0 :
                       n->op == JOP_GT ? c > 0 :
                                         c >= 0);
    case JOP_IN:
    case JOP_NOTIN: c = contains(e, n, x, y); return c < 0 ? NULL : jv_bool(c == (n->op == JOP_IN));
    default:
        if (x->kind == JV_UNDEF || y->kind == JV_UNDEF)
            return jx_fail(e, n, -EINVAL, "an undefined value in arithmetic");
        return arith(e, n, n->op, x, y);
    }
}

static struct llm_jval *unary(struct jeval *e, struct jframe *f, const struct jnode *n)
{
    struct llm_jval *x = eval(e, f, n->a);
    if (!x)
        return NULL;
    if (n->op == 'n')
        return jv_bool(!jv_truthy(x));
    if (!is_numeric(x))
        return jx_fail(e, n, -EINVAL, "bad operand type for unary %c: %s", n->op, jv_kind_name(x));
    if (n->op == '+')
        return x;
    if (x->kind == JV_FLOAT)
        return ok(e, n, jv_float(&e->a, -x->u.f));
    if (as_int(x) == INT64_MIN)
        return jx_fail(e, n, -EINVAL, "integer overflow");
    return ok(e, n, jv_int(&e->a, -as_int(x)));
}

static bool eval_args(struct jeval *e, struct jframe *f, const struct jnode *n, struct jargs *a)
{
    a->npos = a->nkw = 0;
    for (const struct jnode *k = n->args; k; k = k->next) {
        if (k->kind == JN_KWARG ? a->nkw == JARGS_MAX : a->npos == JARGS_MAX) {
            jx_fail(e, k, -EINVAL, "more than %d arguments", JARGS_MAX);
            return false;
        }
        struct llm_jval *v = eval(e, f, k->kind == JN_KWARG ? k->a : k);
        if (!v)
            return false;
        if (k->kind != JN_KWARG) {
            a->pos[a->npos++] = v;
            continue;
        }
        a->kw[a->nkw] = k->name;
        a->kwlen[a->nkw] = k->name_len;
        a->kwv[a->nkw++] = v;
    }
    return true;
}

/* What body renders (in frame f), as a string: set blocks, macro calls.
 * The text counts against what is left of the output limit. */
static struct llm_jval *capture(struct jeval *e, struct jframe *f, const struct jnode *n,
                                const struct jnode *body)
{
    struct jbuf saved = e->out, b;
    e->out = (struct jbuf){ .max = saved.max - saved.n };
    int r = exec(e, f, body);
    b = e->out;
    e->out = saved;
    if (r >= 0)
        return jx_take(e, n, &b);
    free(b.p);
    return NULL;
}

static struct llm_jval *call_macro(struct jeval *e, struct jframe *f, const struct jnode *n,
                                   const struct jnode *m, struct jargs *a)
{
    struct jframe top = { .vars = { .kind = JV_DICT } }, *root = f;
    uint32_t i = 0;
    if (e->calls >= JINJA_MAX_CALLS)
        return jx_fail(e, n, -E2BIG, "macros call each other deeper than %d", JINJA_MAX_CALLS);
    while (root->parent)
        root = root->parent;
    top.parent = root;
    for (const struct jnode *k = m->args; k; k = k->next, i++) {
        const char *name = k->name;
        size_t len = k->name_len;
        struct llm_jval *v = i < a->npos ? a->pos[i] : NULL;
        for (uint32_t j = 0; !v && j < a->nkw; j++)
            if (a->kwlen[j] == len && memcmp(a->kw[j], name, len) == 0)
                v = a->kwv[j];
        if (!v)
            v = k->kind == JN_KWARG ? eval(e, f, k->a) : &jv_undef;
        if (!v || !assign(e, &top, n, name, len, v))
            return NULL;
    }
    /* The body's text is the call's value. */
    e->calls++;
    struct llm_jval *v = capture(e, &top, n, m->b);
    e->calls--;
    return v;
}

static struct llm_jval *call_builtin(struct jeval *e, const struct jnode *n, const char *name,
                                     size_t len, struct jargs *a)
{
#define IS(s) (len == sizeof(s) - 1 && memcmp(name, s, len) == 0)
    if (IS("raise_exception")) {
        struct llm_jval *m = a->npos ? jx_tostr(e, n, a->pos[0]) : NULL;
        if (!m)
            return jx_fail(e, n, -EINVAL, "raise_exception()");
        return jx_fail(e, n, -EINVAL, "%.*s", (int)(m->u.s.n > 400 ? 400 : m->u.s.n), m->u.s.p);
    }
    if (IS("namespace") || IS("dict")) {
        struct llm_jval *d = jv_new(&e->a, JV_DICT);
        if (!d)
            return jx_nomem(e, n);
        d->is_ns = IS("namespace");
        for (uint32_t i = 0; i < a->nkw; i++)
            if (jv_put(&e->a, d, a->kw[i], a->kwlen[i], a->kwv[i]) < 0)
                return jx_nomem(e, n);
        return d;
    }
    if (IS("range")) {
        int64_t b[3] = { 0, 0, 1 };
        for (uint32_t i = 0; i < a->npos && i < 3; i++) {
            if (a->pos[i]->kind != JV_INT)
                return jx_fail(e, n, -EINVAL, "range() takes integers");
            b[a->npos == 1 ? 1 : i] = a->pos[i]->u.i;
        }
        if (a->npos == 0 || a->npos > 3 || b[2] == 0)
            return jx_fail(e, n, -EINVAL, "bad arguments to range()");
        struct llm_jval *l = jv_new(&e->a, JV_LIST);
        for (int64_t i = b[0]; l && (b[2] > 0 ? i < b[1] : i > b[1]);) {
            if (!jx_charge(e, n, 1, 0) || jv_push(&e->a, l, jv_int(&e->a, i)) < 0)
                return e->err ? NULL : jx_nomem(e, n);
            if (__builtin_add_overflow(i, b[2], &i))
                break; /* past INT64's end: no more values below stop */
        }
        return l ? l : jx_nomem(e, n);
    }
#undef IS
    return NULL;
}

static struct llm_jval *call(struct jeval *e, struct jframe *f, const struct jnode *n)
{
    struct jargs a;
    const struct jnode *c = n->a;
    struct llm_jval *obj = NULL, *fn, *r;

    if (c->kind == JN_ATTR && !(obj = eval(e, f, c->a)))
        return NULL;
    if (!eval_args(e, f, n, &a))
        return NULL;
    if (obj) {
        if ((r = jx_method(e, n, obj, c->name, c->name_len, &a)) || e->err)
            return r;
        if (!(fn = jx_getattr(e, c, obj, c->name, c->name_len)))
            return NULL;
    } else if (c->kind == JN_NAME) {
        fn = lookup(e, f, c->name, c->name_len);
        if (fn->kind == JV_UNDEF && ((r = call_builtin(e, n, c->name, c->name_len, &a)) || e->err))
            return r;
    } else if (!(fn = eval(e, f, c))) {
        return NULL;
    }
    if (fn->kind == JV_MACRO)
        return call_macro(e, f, n, fn->u.macro, &a);
    if (c->kind == JN_NAME || c->kind == JN_ATTR)
        return jx_fail(e, n, -EINVAL, "'%.*s' is not callable (%s)",
                       (int)(c->name_len > 40 ? 40 : c->name_len), c->name, jv_kind_name(fn));
    return jx_fail(e, n, -EINVAL, "%s is not callable", jv_kind_name(fn));
}

static struct llm_jval *collection(struct jeval *e, struct jframe *f, const struct jnode *n)
{
    struct llm_jval *v = jv_new(&e->a, n->kind == JN_LIST ? JV_LIST : JV_DICT), *k, *x;
    if (!v)
        return jx_nomem(e, n);
    for (const struct jnode *i = n->args; i; i = i->next) {
        if (n->kind == JN_LIST) {
            if (!(x = eval(e, f, i)))
                return NULL;
            if (jv_push(&e->a, v, x) < 0)
                return jx_nomem(e, n);
            continue;
        }
        if (!(k = eval(e, f, i->a)) || !(x = eval(e, f, i->b)))
            return NULL;
        if (k->kind != JV_STR)
            return jx_fail(e, i, -EINVAL, "mapping keys must be strings, not %s", jv_kind_name(k));
        if (jv_put(&e->a, v, k->u.s.p, k->u.s.n, x) < 0)
            return jx_nomem(e, n);
    }
    return v;
}

static struct llm_jval *eval_node(struct jeval *e, struct jframe *f, const struct jnode *n)
{
    struct llm_jval *x, *bv[3] = { NULL, NULL, NULL };
    struct jargs a;
    int t;

    switch (n->kind) {
    case JN_LIT: return n->lit;
    case JN_NAME: return lookup(e, f, n->name, n->name_len);
    case JN_ATTR: x = eval(e, f, n->a); return x ? jx_getattr(e, n, x, n->name, n->name_len) : NULL;
    case JN_ITEM:
        x = eval(e, f, n->a);
        bv[0] = x ? eval(e, f, n->b) : NULL;
        return bv[0] ? item(e, n, x, bv[0]) : NULL;
    case JN_SLICE:
        if (!(x = eval(e, f, n->a)) || (n->b && !(bv[0] = eval(e, f, n->b))) ||
            (n->c && !(bv[1] = eval(e, f, n->c))) || (n->d && !(bv[2] = eval(e, f, n->d))))
            return NULL;
        return slice(e, n, x, bv);
    case JN_CALL: return call(e, f, n);
    case JN_FILTER:
        x = eval(e, f, n->a);
        return x && eval_args(e, f, n, &a) ? jx_filter(e, n, x, &a) : NULL;
    case JN_TEST:
        x = eval(e, f, n->a);
        if (!x || !eval_args(e, f, n, &a))
            return NULL;
        t = jx_test(e, n, n->name, n->name_len, x, &a);
        return t < 0 ? NULL : jv_bool(t != n->op);
    case JN_UNARY: return unary(e, f, n);
    case JN_BINARY: return binary(e, f, n);
    case JN_COND:
        if (!(x = eval(e, f, n->a)))
            return NULL;
        return jv_truthy(x) ? eval(e, f, n->b) : n->c ? eval(e, f, n->c) : &jv_undef;
    case JN_LIST:
    case JN_DICT: return collection(e, f, n);
    default: return jx_fail(e, n, -EINVAL, "not an expression");
    }
}

static struct llm_jval *eval(struct jeval *e, struct jframe *f, const struct jnode *n)
{
    if (e->err || !jx_charge(e, n, 1, 0))
        return NULL;
    return eval_node(e, f, n);
}

/* ---- statements ---- */

/* The items a for loop runs over: a list's items, a mapping's keys, a
 * string's characters; nothing for undefined. */
static struct llm_jval **loop_items(struct jeval *e, const struct jnode *n, struct llm_jval *v,
                                    uint32_t *ret_n)
{
    static struct llm_jval *none[1];
    *ret_n = 0;
    if (v->kind == JV_UNDEF)
        return none;
    if (v->kind == JV_LIST) {
        *ret_n = v->u.l.n;
        return v->u.l.n ? v->u.l.v : none;
    }
    if (v->kind != JV_DICT && v->kind != JV_STR)
        return jx_fail(e, n, -EINVAL, "cannot loop over %s", jv_kind_name(v));
    size_t count = v->kind == JV_DICT ? v->u.d.n : 0, *offs = NULL;
    if (v->kind == JV_STR && !(offs = char_offsets(e, n, v, &count)))
        return NULL;
    struct llm_jval **items = ja_alloc(&e->a, (count + 1) * sizeof(*items));
    for (size_t i = 0; items && i < count; i++) {
        items[i] = v->kind == JV_DICT ? jv_str(&e->a, v->u.d.v[i].key, v->u.d.v[i].klen) :
                                        jv_str(&e->a, v->u.s.p + offs[i], offs[i + 1] - offs[i]);
        if (!items[i])
            items = NULL;
    }
    if (!items)
        return jx_nomem(e, n);
    *ret_n = (uint32_t)count;
    return items;
}

static bool bind_targets(struct jeval *e, struct jframe *f, const struct jnode *n,
                         struct llm_jval *v)
{
    if (!n->name2)
        return assign(e, f, n, n->name, n->name_len, v);
    if (v->kind != JV_LIST || v->u.l.n != 2) {
        jx_fail(e, n, -EINVAL, "cannot unpack %s into two names", jv_kind_name(v));
        return false;
    }
    return assign(e, f, n, n->name, n->name_len, v->u.l.v[0]) &&
           assign(e, f, n, n->name2, n->name2_len, v->u.l.v[1]);
}

/* The items that pass the loop's "if" filter. */
static struct llm_jval **loop_filter(struct jeval *e, struct jframe *lf, const struct jnode *n,
                                     struct llm_jval **items, uint32_t *count)
{
    struct llm_jval **kept = ja_alloc(&e->a, (*count + 1) * sizeof(*kept)), *c;
    uint32_t k = 0;
    if (!kept)
        return jx_nomem(e, n);
    for (uint32_t i = 0; i < *count; i++) {
        if (!bind_targets(e, lf, n, items[i]) || !(c = eval(e, lf, n->d)))
            return NULL;
        if (jv_truthy(c))
            kept[k++] = items[i];
    }
    *count = k;
    return kept;
}

static int exec_for(struct jeval *e, struct jframe *f, const struct jnode *n)
{
    struct jframe lf = { .parent = f, .vars = { .kind = JV_DICT } };
    struct llm_jval *v = eval(e, f, n->a), *lv;
    struct jloop *l = ja_alloc(&e->a, sizeof(*l));
    int r = 0;

    if (!v)
        return e->err;
    if (!l || !(lv = jv_new(&e->a, JV_LOOP)))
        return (jx_nomem(e, n), e->err);
    if (!(l->items = loop_items(e, n, v, &l->n)))
        return e->err;
    if (n->d && !(l->items = loop_filter(e, &lf, n, l->items, &l->n)))
        return e->err;
    lv->u.loop = l;
    for (l->i = 0; l->i < l->n; l->i++) {
        if (!jx_charge(e, n, 1, 0) || !bind_targets(e, &lf, n, l->items[l->i]) ||
            !assign(e, &lf, n, "loop", 4, lv))
            return e->err;
        r = exec(e, &lf, n->b);
        if (r < 0)
            return r;
        if (r == EX_BREAK)
            break;
    }
    if (l->n == 0 && n->c)
        return exec(e, f, n->c);
    return 0;
}

static int exec_set(struct jeval *e, struct jframe *f, const struct jnode *n)
{
    struct llm_jval *v = n->a ? eval(e, f, n->a) : capture(e, f, n, n->b);
    if (!v)
        return e->err ? e->err : -EINVAL;
    if (!n->attr)
        return assign(e, f, n, n->name, n->name_len, v) ? 0 : e->err;
    struct llm_jval *ns = lookup(e, f, n->name, n->name_len);
    if (!ns->is_ns)
        return (jx_fail(e, n, -EINVAL, "cannot set an attribute of %s", jv_kind_name(ns)), e->err);
    if (jv_put(&e->a, ns, n->attr, n->attr_len, v) < 0)
        return (jx_nomem(e, n), e->err);
    return 0;
}

static int exec_stmt(struct jeval *e, struct jframe *f, const struct jnode *n)
{
    struct llm_jval *v;
    switch (n->kind) {
    case JN_TEXT: jb_put(&e->out, n->lit->u.s.p, n->lit->u.s.n); return 0;
    case JN_OUTPUT:
        if (!(v = eval(e, f, n->a)))
            return e->err;
        jv_print(&e->out, v);
        return 0;
    case JN_IF:
        if (!(v = eval(e, f, n->a)))
            return e->err;
        return exec(e, f, jv_truthy(v) ? n->b : n->c);
    case JN_FOR: return exec_for(e, f, n);
    case JN_SET: return exec_set(e, f, n);
    case JN_MACRO:
        if (!(v = jv_new(&e->a, JV_MACRO)))
            return (jx_nomem(e, n), e->err);
        v->u.macro = n;
        return assign(e, f, n, n->name, n->name_len, v) ? 0 : e->err;
    case JN_BREAK: return EX_BREAK;
    case JN_CONTINUE: return EX_CONTINUE;
    default: return (jx_fail(e, n, -EINVAL, "not a statement"), e->err);
    }
}

static int exec(struct jeval *e, struct jframe *f, const struct jnode *body)
{
    for (const struct jnode *n = body; n; n = n->next) {
        if (!jx_charge(e, n, 1, 0))
            return e->err;
        int r = exec_stmt(e, f, n);
        if (r == 0 && e->out.err)
            return (jx_fail(e, n, e->out.err, "output longer than %zu bytes", e->out.max), e->err);
        if (r != 0)
            return r;
    }
    return 0;
}

int llm_jinja_render(const struct llm_jinja *t, const struct llm_jenv *env,
                     const struct llm_jinja_limits *lim, char **ret_text, size_t *ret_len,
                     char *reterr, size_t errlen)
{
    struct llm_jinja_limits l = lim ? *lim : (struct llm_jinja_limits){ 0 };
    struct jeval e = {
        .a = { .cap = l.max_memory ? l.max_memory : (size_t)64 << 20 },
        .out = { .max = l.max_output ? l.max_output : (size_t)8 << 20 },
        .globals = env ? env->globals : NULL,
        .max_steps = l.max_steps ? l.max_steps : (uint64_t)8 << 20,
        .reterr = reterr,
        .errlen = errlen,
    };
    struct jframe top = { .vars = { .kind = JV_DICT } };
    int r = exec(&e, &top, t->body);

    if (r >= 0 && !e.out.p)
        e.out.p = calloc(1, 1);
    ja_free(&e.a);
    if (r == EX_BREAK || r == EX_CONTINUE)
        r = 0; /* break outside a loop ends the template */
    if (r == 0 && !e.out.p)
        r = -ENOMEM;
    if (r < 0) {
        free(e.out.p);
        return r;
    }
    *ret_text = e.out.p;
    *ret_len = e.out.n;
    return 0;
}
