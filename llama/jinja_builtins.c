/* llama: the Jinja builtins chat templates use: filters (x | name),
 * tests (x is name) and the methods of strings and mappings (x.name()).
 * Case changes are ASCII only. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "llama/jinja-internal.h"

#define IS(s) (len == sizeof(s) - 1 && memcmp(name, s, len) == 0)

static bool need_str(struct jeval *e, const struct jnode *n, const struct llm_jval *v,
                     const char *what)
{
    if (v && v->kind == JV_STR)
        return true;
    jx_fail(e, n, -EINVAL, "%s needs a string, not %s", what, v ? jv_kind_name(v) : "nothing");
    return false;
}

static struct llm_jval *str_dup(struct jeval *e, const struct jnode *n, const char *s, size_t len)
{
    char *p;
    struct llm_jval *v = jx_newstr(e, n, len, &p);
    if (v && len)
        memcpy(p, s, len);
    return v;
}

static bool in_set(char c, const struct llm_jval *chars)
{
    if (!chars || chars->kind != JV_STR)
        return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
    return memchr(chars->u.s.p, c, chars->u.s.n) != NULL;
}

/* strip, lstrip, rstrip: which = 3, 1, 2 (bit 1 left, bit 2 right). */
static struct llm_jval *strip(struct jeval *e, const struct jnode *n, struct llm_jval *v,
                              struct llm_jval *chars, int which)
{
    const char *s = v->u.s.p;
    size_t b = 0, end = v->u.s.n;
    if (chars && chars->kind != JV_STR && chars->kind != JV_NONE)
        return jx_fail(e, n, -EINVAL, "strip characters must be a string");
    while ((which & 1) && b < end && in_set(s[b], chars))
        b++;
    while ((which & 2) && end > b && in_set(s[end - 1], chars))
        end--;
    return str_dup(e, n, s + b, end - b);
}

/* upper, lower, title, capitalize */
static struct llm_jval *recase(struct jeval *e, const struct jnode *n, struct llm_jval *v, char how)
{
    struct llm_jval *r = str_dup(e, n, v->u.s.p, v->u.s.n);
    char *p = r ? (char *)r->u.s.p : NULL;
    bool start = true;
    for (size_t i = 0; p && i < r->u.s.n; i++) {
        char c = p[i];
        bool up = how == 'u' || ((how == 't' || how == 'c') && start);
        if (up && c >= 'a' && c <= 'z')
            p[i] = (char)(c - 32);
        else if (!up && how != 'u' && c >= 'A' && c <= 'Z')
            p[i] = (char)(c + 32);
        bool alpha = (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
        start = how == 't' ? !alpha : false;
    }
    return r;
}

static struct llm_jval *replace(struct jeval *e, const struct jnode *n, struct llm_jval *v,
                                struct llm_jval *from, struct llm_jval *to)
{
    struct jbuf b = { .max = e->a.cap };
    if (!need_str(e, n, from, "replace") || !need_str(e, n, to, "replace"))
        return NULL;
    if (!jx_charge(e, n, 0, v->u.s.n))
        return NULL;
    const char *s = v->u.s.p, *end = s + v->u.s.n;
    while (from->u.s.n && s < end) {
        const char *hit = memmem(s, (size_t)(end - s), from->u.s.p, from->u.s.n);
        if (!hit)
            break;
        jb_put(&b, s, (size_t)(hit - s));
        jb_put(&b, to->u.s.p, to->u.s.n);
        s = hit + from->u.s.n;
        if (!jx_charge(e, n, 1, to->u.s.n))
            break;
    }
    jb_put(&b, s, (size_t)(end - s));
    return jx_take(e, n, &b);
}

static struct llm_jval *split(struct jeval *e, const struct jnode *n, struct llm_jval *v,
                              struct llm_jval *sep)
{
    struct llm_jval *l = jv_new(&e->a, JV_LIST);
    const char *s = v->u.s.p, *end = s + v->u.s.n;
    bool ws = !sep || sep->kind == JV_NONE;
    if (!ws && (!need_str(e, n, sep, "split") || sep->u.s.n == 0))
        return e->err ? NULL : jx_fail(e, n, -EINVAL, "empty separator");
    if (!l || !jx_charge(e, n, 0, v->u.s.n))
        return l ? NULL : jx_nomem(e, n);
    while (s <= end) {
        const char *hit;
        if (ws) {
            while (s < end && in_set(*s, NULL))
                s++;
            if (s == end)
                break;
            hit = s;
            while (hit < end && !in_set(*hit, NULL))
                hit++;
        } else {
            hit = memmem(s, (size_t)(end - s), sep->u.s.p, sep->u.s.n);
            if (!hit)
                hit = end;
        }
        if (!jx_charge(e, n, 1, 0) || jv_push(&e->a, l, jv_str(&e->a, s, (size_t)(hit - s))) < 0)
            return e->err ? NULL : jx_nomem(e, n);
        s = hit + (ws ? 0 : sep->u.s.n);
        if (hit == end)
            break;
    }
    return l;
}

/* startswith/endswith with a string or a list of strings. */
static int affix(struct jeval *e, const struct jnode *n, struct llm_jval *v, struct llm_jval *x,
                 bool end)
{
    if (x && x->kind == JV_LIST) {
        for (uint32_t i = 0; i < x->u.l.n; i++) {
            int r = affix(e, n, v, x->u.l.v[i], end);
            if (r)
                return r;
        }
        return 0;
    }
    if (!need_str(e, n, x, end ? "endswith" : "startswith"))
        return e->err;
    if (x->u.s.n > v->u.s.n)
        return 0;
    return memcmp(v->u.s.p + (end ? v->u.s.n - x->u.s.n : 0), x->u.s.p, x->u.s.n) == 0;
}

static struct llm_jval *items(struct jeval *e, const struct jnode *n, struct llm_jval *d, int what)
{
    struct llm_jval *l = jv_new(&e->a, JV_LIST);
    if (d->kind != JV_DICT)
        return jx_fail(e, n, -EINVAL, "items() of %s", jv_kind_name(d));
    for (uint32_t i = 0; l && i < d->u.d.n; i++) {
        struct llm_jval *k = jv_str(&e->a, d->u.d.v[i].key, d->u.d.v[i].klen), *x = k;
        if (what == 'v')
            x = d->u.d.v[i].val;
        else if (what == 'i' && (x = jv_new(&e->a, JV_LIST)))
            if (jv_push(&e->a, x, k) < 0 || jv_push(&e->a, x, d->u.d.v[i].val) < 0)
                x = NULL;
        if (!x || jv_push(&e->a, l, x) < 0)
            l = NULL;
    }
    return l && jx_charge(e, n, d->u.d.n, 0) ? l : e->err ? NULL : jx_nomem(e, n);
}

static struct llm_jval *str_method(struct jeval *e, const struct jnode *n, struct llm_jval *v,
                                   const char *name, size_t len, struct jargs *a)
{
    struct llm_jval *x = jx_arg(a, 0, NULL);
    int r;
    if (IS("strip") || IS("lstrip") || IS("rstrip"))
        return strip(e, n, v, x, name[0] == 'l' ? 1 : name[0] == 'r' ? 2 : 3);
    if (IS("upper") || IS("lower") || IS("title") || IS("capitalize"))
        return recase(e, n, v, name[0]);
    if (IS("startswith") || IS("endswith"))
        return (r = affix(e, n, v, x, name[0] == 'e')) < 0 ? NULL : jv_bool(r);
    if (IS("split"))
        return split(e, n, v, x);
    if (IS("replace"))
        return replace(e, n, v, x, jx_arg(a, 1, NULL));
    return NULL;
}

struct llm_jval *jx_method(struct jeval *e, const struct jnode *n, struct llm_jval *obj,
                           const char *name, size_t len, struct jargs *a)
{
    if (obj->kind == JV_STR)
        return str_method(e, n, obj, name, len, a);
    if (obj->kind != JV_DICT || obj->is_ns || jv_get(obj, name, len))
        return NULL;
    if (IS("items") || IS("keys") || IS("values"))
        return items(e, n, obj, name[0]);
    if (IS("get")) {
        struct llm_jval *k = jx_arg(a, 0, NULL), *d = jx_arg(a, 1, NULL), *v;
        if (!need_str(e, n, k, "get"))
            return NULL;
        v = jv_get(obj, k->u.s.p, k->u.s.n);
        return v ? v : d ? d : &jv_nonev;
    }
    return NULL;
}

/* ---- tests ---- */

static int cmp_test(struct jeval *e, const struct jnode *n, const char *name, size_t len,
                    struct llm_jval *v, struct llm_jval *x)
{
    if (!x)
        return (jx_fail(e, n, -EINVAL, "test '%.*s' needs an argument", (int)len, name), e->err);
    if (IS("eq") || IS("equalto") || IS("==") || IS("ne") || IS("!=") || IS("sameas")) {
        int64_t budget = 1 << 20;
        bool eq = IS("sameas") ? v == x || (v->kind <= JV_BOOL && jv_equal(v, x, &budget)) :
                                 jv_equal(v, x, &budget);
        return eq == (name[0] != 'n' && name[0] != '!');
    }
    if (IS("in")) {
        if (x->kind == JV_STR && v->kind == JV_STR)
            return v->u.s.n == 0 || memmem(x->u.s.p, x->u.s.n, v->u.s.p, v->u.s.n) != NULL;
        if (x->kind == JV_LIST) {
            for (uint32_t i = 0; i < x->u.l.n; i++) {
                int64_t budget = 1 << 20;
                if (jv_equal(v, x->u.l.v[i], &budget))
                    return 1;
            }
            return 0;
        }
        return x->kind == JV_DICT && v->kind == JV_STR && jv_get(x, v->u.s.p, v->u.s.n);
    }
    bool num = (v->kind == JV_INT || v->kind == JV_FLOAT) &&
               (x->kind == JV_INT || x->kind == JV_FLOAT);
    if (!num)
        return (jx_fail(e, n, -EINVAL, "test '%.*s' compares numbers", (int)len, name), e->err);
    double a = v->kind == JV_INT ? (double)v->u.i : v->u.f,
           b = x->kind == JV_INT ? (double)x->u.i : x->u.f;
    if (IS("divisibleby"))
        return b != 0 && fmod(a, b) == 0;
    if (IS("lt") || IS("lessthan") || IS("<"))
        return a < b;
    if (IS("le") || IS("<="))
        return a <= b;
    if (IS("gt") || IS("greaterthan") || IS(">"))
        return a > b;
    if (IS("ge") || IS(">="))
        return a >= b;
    return (jx_fail(e, n, -EINVAL, "unknown test '%.*s'", (int)(len > 40 ? 40 : len), name),
            e->err);
}

int jx_test(struct jeval *e, const struct jnode *n, const char *name, size_t len,
            struct llm_jval *v, struct jargs *a)
{
    /* Tests of a value's kind: the kinds that pass, as bits. */
    static const struct {
        const char *name;
        unsigned kinds;
    } kind_tests[] = {
        { "defined", ~(1u << JV_UNDEF) },
        { "undefined", 1u << JV_UNDEF },
        { "none", 1u << JV_NONE },
        { "boolean", 1u << JV_BOOL },
        { "string", 1u << JV_STR },
        { "integer", 1u << JV_INT },
        { "float", 1u << JV_FLOAT },
        { "number", 1u << JV_INT | 1u << JV_FLOAT },
        { "mapping", 1u << JV_DICT },
        { "sequence", 1u << JV_LIST | 1u << JV_STR | 1u << JV_DICT },
        { "iterable", 1u << JV_LIST | 1u << JV_STR | 1u << JV_DICT },
        { "callable", 1u << JV_MACRO },
    };
    enum jv_kind k = v->kind;
    for (size_t i = 0; i < sizeof(kind_tests) / sizeof(kind_tests[0]); i++)
        if (strlen(kind_tests[i].name) == len && memcmp(kind_tests[i].name, name, len) == 0)
            return (kind_tests[i].kinds >> k) & 1;
    if (IS("true") || IS("false"))
        return k == JV_BOOL && v->u.b == (name[0] == 't');
    if (IS("odd") || IS("even")) {
        if (k != JV_INT)
            return (jx_fail(e, n, -EINVAL, "test '%.*s' needs an integer", (int)len, name), e->err);
        return (v->u.i & 1) == (name[0] == 'o');
    }
    if (IS("lower") || IS("upper")) {
        if (k != JV_STR)
            return 0;
        for (size_t i = 0; i < v->u.s.n; i++)
            if (v->u.s.p[i] >= (name[0] == 'l' ? 'A' : 'a') &&
                v->u.s.p[i] <= (name[0] == 'l' ? 'Z' : 'z'))
                return 0;
        return 1;
    }
    return cmp_test(e, n, name, len, v, jx_arg(a, 0, NULL));
}

/* ---- filters ---- */

static struct llm_jval *tojson(struct jeval *e, const struct jnode *n, struct llm_jval *v,
                               struct jargs *a)
{
    struct llm_jval *ind = jx_arg(a, 1, "indent"), *sk = jx_arg(a, 99, "sort_keys");
    struct llm_jval *asc = jx_arg(a, 0, "ensure_ascii"), *sep = jx_arg(a, 2, "separators");
    struct jjson_opts o = { .indent = ind && ind->kind == JV_INT ? ind->u.i : 0 };
    struct jbuf b = { .max = e->out.max };
    if ((ind && ind->kind != JV_INT && ind->kind != JV_NONE) || o.indent > 64)
        return jx_fail(e, n, -EINVAL, "tojson: indent must be an integer up to 64");
    o.sort_keys = sk && jv_truthy(sk);
    o.ensure_ascii = asc && jv_truthy(asc);
    if (sep && sep->kind == JV_LIST && sep->u.l.n == 2 && sep->u.l.v[0]->kind == JV_STR &&
        sep->u.l.v[1]->kind == JV_STR) {
        o.item_sep = sep->u.l.v[0]->u.s.p;
        o.key_sep = sep->u.l.v[1]->u.s.p;
    } else if (sep && sep->kind != JV_NONE) {
        return jx_fail(e, n, -EINVAL, "tojson: separators must be two strings");
    }
    int r = jv_json(&b, v, &o, 0);
    if (r == -EINVAL)
        jx_fail(e, n, r, "tojson: cannot write %s as JSON", jv_kind_name(v));
    else if (r)
        jx_fail(e, n, r, "tojson: value nested deeper than %d", LLM_JINJA_MAX_DEPTH);
    return jx_take(e, n, &b);
}

static struct llm_jval *join(struct jeval *e, const struct jnode *n, struct llm_jval *v,
                             struct jargs *a)
{
    struct llm_jval *sep = jx_arg(a, 0, "d"), *attr = jx_arg(a, 1, "attribute");
    struct jbuf b = { .max = e->out.max };
    if (v->kind != JV_LIST)
        return jx_fail(e, n, -EINVAL, "join needs a list, not %s", jv_kind_name(v));
    if (sep && !need_str(e, n, sep, "join"))
        return NULL;
    for (uint32_t i = 0; i < v->u.l.n && !b.err; i++) {
        struct llm_jval *x = v->u.l.v[i];
        if (attr && !(x = jx_getattr(e, n, x, attr->u.s.p, attr->u.s.n)))
            break;
        if (i && sep)
            jb_put(&b, sep->u.s.p, sep->u.s.n);
        jv_print(&b, x);
    }
    return jx_take(e, n, &b);
}

static struct llm_jval *reverse_list(struct jeval *e, const struct jnode *n, struct llm_jval *v)
{
    struct llm_jval *l = jv_new(&e->a, JV_LIST);
    for (uint32_t i = v->u.l.n; l && i > 0; i--)
        if (jv_push(&e->a, l, v->u.l.v[i - 1]) < 0)
            l = NULL;
    return l && jx_charge(e, n, v->u.l.n, 0) ? l : e->err ? NULL : jx_nomem(e, n);
}

/* selectattr/rejectattr(attr[, test, arg]), select/reject(test, arg),
 * map(attribute=). */
static struct llm_jval *select_items(struct jeval *e, const struct jnode *n, struct llm_jval *v,
                                     struct jargs *a, const char *name, size_t len)
{
    bool byattr = IS("selectattr") || IS("rejectattr") || IS("map"), keep = name[0] != 'r';
    struct llm_jval *attr = byattr ? jx_arg(a, 0, "attribute") : NULL;
    struct llm_jval *test = jx_arg(a, byattr ? 1 : 0, NULL);
    struct llm_jval *l = jv_new(&e->a, JV_LIST);
    struct jargs ta = { .npos = 0 };
    if (v->kind != JV_LIST || (byattr && !need_str(e, n, attr, name)) ||
        (test && !need_str(e, n, test, name)))
        return e->err ? NULL : jx_fail(e, n, -EINVAL, "%.*s needs a list", (int)len, name);
    for (uint32_t i = byattr ? 2 : 1; i < a->npos && ta.npos < JARGS_MAX; i++)
        ta.pos[ta.npos++] = a->pos[i];
    for (uint32_t i = 0; l && i < v->u.l.n; i++) {
        struct llm_jval *x = v->u.l.v[i], *y = x;
        int t = 1;
        if (byattr &&
            !(y = x->kind == JV_DICT ? jx_getattr(e, n, x, attr->u.s.p, attr->u.s.n) : &jv_undef))
            return NULL;
        if (name[0] == 'm') {
            x = y;
        } else if ((t = test ? jx_test(e, n, test->u.s.p, test->u.s.n, y, &ta) : jv_truthy(y)) <
                   0) {
            return NULL;
        }
        if ((t != 0) == keep && jv_push(&e->a, l, x) < 0)
            l = NULL;
    }
    return l && jx_charge(e, n, v->u.l.n, 0) ? l : e->err ? NULL : jx_nomem(e, n);
}

static struct llm_jval *length(struct jeval *e, const struct jnode *n, struct llm_jval *v)
{
    int64_t count = 0;
    if (v->kind == JV_STR) {
        for (size_t i = 0; i < v->u.s.n; count++) {
            uint32_t cp;
            i += jv_utf8_next((const unsigned char *)v->u.s.p + i, v->u.s.n - i, &cp);
        }
        jx_charge(e, n, 0, v->u.s.n);
    } else if (v->kind == JV_LIST || v->kind == JV_DICT) {
        count = v->kind == JV_LIST ? v->u.l.n : v->u.d.n;
    } else {
        return jx_fail(e, n, -EINVAL, "length of %s", jv_kind_name(v));
    }
    struct llm_jval *r = e->err ? NULL : jv_int(&e->a, count);
    return r || e->err ? r : jx_nomem(e, n);
}

static struct llm_jval *first_last(struct jeval *e, const struct jnode *n, struct llm_jval *v,
                                   bool last)
{
    if (v->kind == JV_LIST)
        return v->u.l.n == 0 ? &jv_undef : v->u.l.v[last ? v->u.l.n - 1 : 0];
    if (v->kind != JV_STR)
        return jx_fail(e, n, -EINVAL, "%s of %s", last ? "last" : "first", jv_kind_name(v));
    if (v->u.s.n == 0)
        return &jv_undef;
    size_t start = 0, cl;
    uint32_t cp;
    for (;;) {
        cl = jv_utf8_next((const unsigned char *)v->u.s.p + start, v->u.s.n - start, &cp);
        if (!last || start + cl >= v->u.s.n)
            break;
        start += cl;
    }
    jx_charge(e, n, 0, v->u.s.n);
    return e->err ? NULL : str_dup(e, n, v->u.s.p + start, cl);
}

static struct llm_jval *to_number(struct jeval *e, const struct jnode *n, struct llm_jval *v,
                                  bool fl)
{
    double d = 0;
    if (v->kind == JV_INT || v->kind == JV_BOOL)
        d = v->kind == JV_INT ? (double)v->u.i : v->u.b;
    else if (v->kind == JV_FLOAT)
        d = v->u.f;
    else if (v->kind == JV_STR)
        d = strtod(v->u.s.p, NULL);
    if (!fl && v->kind == JV_INT)
        return v;
    if (!fl && v->kind == JV_STR && !memchr(v->u.s.p, '.', v->u.s.n))
        d = (double)strtoll(v->u.s.p, NULL, 10);
    if (!fl && !(d > -9.2e18 && d < 9.2e18))
        d = 0;
    struct llm_jval *r = fl ? jv_float(&e->a, d) : jv_int(&e->a, (int64_t)d);
    return r ? r : jx_nomem(e, n);
}

/* Filters taking a string: the ones strings have as methods. */
static struct llm_jval *str_filter(struct jeval *e, const struct jnode *n, struct llm_jval *v,
                                   const char *name, size_t len, struct jargs *a)
{
    if (IS("trim"))
        return strip(e, n, v, jx_arg(a, 0, "chars"), 3);
    if (IS("upper") || IS("lower") || IS("title") || IS("capitalize"))
        return recase(e, n, v, name[0]);
    if (IS("replace"))
        return replace(e, n, v, jx_arg(a, 0, NULL), jx_arg(a, 1, NULL));
    return jx_fail(e, n, -EINVAL, "filter '%.*s' needs a string, not %s", (int)len, name,
                   jv_kind_name(v));
}

struct llm_jval *jx_filter(struct jeval *e, const struct jnode *n, struct llm_jval *v,
                           struct jargs *a)
{
    const char *name = n->name;
    size_t len = n->name_len;
    if (IS("default") || IS("d")) {
        struct llm_jval *d = jx_arg(a, 0, "default_value"), *b = jx_arg(a, 1, "boolean");
        bool use = v->kind == JV_UNDEF || (b && jv_truthy(b) && !jv_truthy(v));
        return use ? (d ? d : str_dup(e, n, "", 0)) : v;
    }
    if (IS("safe") || (IS("list") && v->kind == JV_LIST))
        return v;
    if (IS("string"))
        return jx_tostr(e, n, v);
    if (IS("tojson"))
        return tojson(e, n, v, a);
    if (IS("length") || IS("count"))
        return length(e, n, v);
    if (IS("first") || IS("last"))
        return first_last(e, n, v, name[0] == 'l');
    if (IS("join"))
        return join(e, n, v, a);
    if (IS("items") || (IS("list") && v->kind == JV_DICT))
        return items(e, n, v, name[0] == 'i' ? 'i' : 'k');
    if (IS("int") || IS("float"))
        return to_number(e, n, v, name[0] == 'f');
    if (IS("abs") && (v->kind == JV_INT || v->kind == JV_FLOAT)) {
        struct llm_jval *r =
                v->kind == JV_INT ?
                        jv_int(&e->a, v->u.i < 0 && v->u.i != INT64_MIN ? -v->u.i : v->u.i) :
                        jv_float(&e->a, fabs(v->u.f));
        return r ? r : jx_nomem(e, n);
    }
    if (IS("reverse") && v->kind == JV_LIST)
        return reverse_list(e, n, v);
    if (IS("selectattr") || IS("rejectattr") || IS("select") || IS("reject") || IS("map"))
        return select_items(e, n, v, a, name, len);
    if (IS("trim") || IS("upper") || IS("lower") || IS("title") || IS("capitalize") ||
        IS("replace")) {
        if (v->kind != JV_STR && !(v = jx_tostr(e, n, v)))
            return NULL;
        return str_filter(e, n, v, name, len, a);
    }
    return jx_fail(e, n, -EINVAL, "unknown filter '%.*s' (or not for %s)",
                   (int)(len > 40 ? 40 : len), name, jv_kind_name(v));
}
