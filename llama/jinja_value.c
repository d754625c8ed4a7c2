/* llama: values of the Jinja interpreter: the arena they live in, building,
 * truth, equality, printing as Python's str() does and JSON as the
 * tojson filter writes it (json.dumps with ensure_ascii=False). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llama/jinja-internal.h"

struct jchunk {
    struct jchunk *next;
    size_t size, used;
    _Alignas(max_align_t) unsigned char mem[];
};

#define JA_CHUNK ((size_t)64 << 10)

struct llm_jval jv_undef = { .kind = JV_UNDEF };
struct llm_jval jv_nonev = { .kind = JV_NONE };
struct llm_jval jv_true = { .kind = JV_BOOL, .u.b = true };
struct llm_jval jv_false = { .kind = JV_BOOL, .u.b = false };

void *ja_alloc(struct jarena *a, size_t n)
{
    struct jchunk *c = a->head;
    size_t al = _Alignof(max_align_t);

    n = (n + al - 1) & ~(al - 1);
    if (n == 0)
        n = al;
    if (n > a->cap || a->used > a->cap - n) {
        a->oom = false;
        return NULL;
    }
    if (!c || c->size - c->used < n) {
        size_t sz = n > JA_CHUNK / 4 ? n : JA_CHUNK;
        c = malloc(sizeof(*c) + sz);
        if (!c) {
            a->oom = true;
            return NULL;
        }
        c->size = sz;
        c->used = 0;
        /* A big one-off block goes behind the current chunk, which keeps
         * serving small allocations. */
        if (sz != JA_CHUNK && a->head) {
            c->next = a->head->next;
            a->head->next = c;
        } else {
            c->next = a->head;
            a->head = c;
        }
    }
    void *p = c->mem + c->used;
    c->used += n;
    a->used += n;
    return p;
}

char *ja_strdup(struct jarena *a, const char *s, size_t n)
{
    char *p = n == SIZE_MAX ? NULL : ja_alloc(a, n + 1);
    if (!p)
        return NULL;
    if (n)
        memcpy(p, s, n);
    p[n] = 0;
    return p;
}

void ja_free(struct jarena *a)
{
    for (struct jchunk *c = a->head, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    a->head = NULL;
    a->used = 0;
}

struct llm_jval *jv_new(struct jarena *a, enum jv_kind k)
{
    struct llm_jval *v = ja_alloc(a, sizeof(*v));
    if (v)
        *v = (struct llm_jval){ .kind = k };
    return v;
}

struct llm_jval *jv_str(struct jarena *a, const char *s, size_t n)
{
    struct llm_jval *v = jv_new(a, JV_STR);
    char *p = v ? ja_strdup(a, s, n) : NULL;
    if (!p)
        return NULL;
    v->u.s.p = p;
    v->u.s.n = n;
    return v;
}

struct llm_jval *jv_int(struct jarena *a, int64_t i)
{
    struct llm_jval *v = jv_new(a, JV_INT);
    if (v)
        v->u.i = i;
    return v;
}

struct llm_jval *jv_float(struct jarena *a, double f)
{
    struct llm_jval *v = jv_new(a, JV_FLOAT);
    if (v)
        v->u.f = f;
    return v;
}

/* Grow an arena array of elem-sized items to hold one more. */
static int grow(struct jarena *a, void **arr, uint32_t n, uint32_t *cap, size_t elem)
{
    if (n < *cap)
        return 0;
    if (n >= UINT32_MAX / 2)
        return -E2BIG;
    uint32_t nc = *cap ? *cap * 2 : 4;
    void *p = ja_alloc(a, (size_t)nc * elem);
    if (!p)
        return a->oom ? -ENOMEM : -E2BIG;
    if (n)
        memcpy(p, *arr, (size_t)n * elem);
    *arr = p;
    *cap = nc;
    return 0;
}

int jv_push(struct jarena *a, struct llm_jval *list, struct llm_jval *v)
{
    if (!v)
        return a->oom ? -ENOMEM : -E2BIG;
    if (list->kind != JV_LIST)
        return -EINVAL;
    int r = grow(a, (void **)&list->u.l.v, list->u.l.n, &list->u.l.cap, sizeof(*list->u.l.v));
    if (r == 0)
        list->u.l.v[list->u.l.n++] = v;
    return r;
}

struct llm_jval *jv_get(const struct llm_jval *dict, const char *key, size_t klen)
{
    if (dict->kind != JV_DICT)
        return NULL;
    for (uint32_t i = 0; i < dict->u.d.n; i++) {
        const struct jv_pair *p = &dict->u.d.v[i];
        if (p->klen == klen && memcmp(p->key, key, klen) == 0)
            return p->val;
    }
    return NULL;
}

int jv_put(struct jarena *a, struct llm_jval *dict, const char *key, size_t klen,
           struct llm_jval *v)
{
    if (!v)
        return a->oom ? -ENOMEM : -E2BIG;
    if (dict->kind != JV_DICT)
        return -EINVAL;
    for (uint32_t i = 0; i < dict->u.d.n; i++) {
        struct jv_pair *p = &dict->u.d.v[i];
        if (p->klen == klen && memcmp(p->key, key, klen) == 0) {
            p->val = v;
            return 0;
        }
    }
    int r = grow(a, (void **)&dict->u.d.v, dict->u.d.n, &dict->u.d.cap, sizeof(*dict->u.d.v));
    char *k = r == 0 ? ja_strdup(a, key, klen) : NULL;
    if (r == 0 && !k)
        r = a->oom ? -ENOMEM : -E2BIG;
    if (r == 0)
        dict->u.d.v[dict->u.d.n++] = (struct jv_pair){ .key = k, .klen = klen, .val = v };
    return r;
}

/* The public building API: the env's arena has no cap. */
int llm_jenv_new(struct llm_jenv **ret)
{
    struct llm_jenv *e = calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    e->a.cap = SIZE_MAX;
    e->globals = jv_new(&e->a, JV_DICT);
    if (!e->globals) {
        llm_jenv_free(e);
        return -ENOMEM;
    }
    *ret = e;
    return 0;
}

void llm_jenv_free(struct llm_jenv *e)
{
    if (!e)
        return;
    ja_free(&e->a);
    free(e);
}

struct llm_jval *llm_jenv_globals(struct llm_jenv *e)
{
    return e->globals;
}

struct llm_jval *llm_jval_none(struct llm_jenv *e)
{
    return jv_new(&e->a, JV_NONE);
}

struct llm_jval *llm_jval_bool(struct llm_jenv *e, bool b)
{
    struct llm_jval *v = jv_new(&e->a, JV_BOOL);
    if (v)
        v->u.b = b;
    return v;
}

struct llm_jval *llm_jval_int(struct llm_jenv *e, int64_t i)
{
    return jv_int(&e->a, i);
}

struct llm_jval *llm_jval_float(struct llm_jenv *e, double f)
{
    return jv_float(&e->a, f);
}

struct llm_jval *llm_jval_str(struct llm_jenv *e, const char *s, size_t len)
{
    return jv_str(&e->a, s, len);
}

struct llm_jval *llm_jval_list(struct llm_jenv *e)
{
    return jv_new(&e->a, JV_LIST);
}

struct llm_jval *llm_jval_dict(struct llm_jenv *e)
{
    return jv_new(&e->a, JV_DICT);
}

int llm_jval_push(struct llm_jenv *e, struct llm_jval *list, struct llm_jval *v)
{
    return v ? jv_push(&e->a, list, v) : -ENOMEM;
}

int llm_jval_put(struct llm_jenv *e, struct llm_jval *dict, const char *key, struct llm_jval *v)
{
    return v ? jv_put(&e->a, dict, key, strlen(key), v) : -ENOMEM;
}

bool jv_truthy(const struct llm_jval *v)
{
    switch (v->kind) {
    case JV_BOOL: return v->u.b;
    case JV_INT: return v->u.i != 0;
    case JV_FLOAT: return v->u.f != 0;
    case JV_STR: return v->u.s.n > 0;
    case JV_LIST: return v->u.l.n > 0;
    case JV_DICT: return v->is_ns || v->u.d.n > 0;
    case JV_LOOP:
    case JV_MACRO: return true;
    default: return false;
    }
}

static bool is_num(const struct llm_jval *v)
{
    return v->kind == JV_INT || v->kind == JV_FLOAT || v->kind == JV_BOOL;
}

static double num(const struct llm_jval *v)
{
    return v->kind == JV_FLOAT ? v->u.f : v->kind == JV_INT ? (double)v->u.i : v->u.b;
}

static bool equal_at(const struct llm_jval *x, const struct llm_jval *y, int64_t *budget,
                     int depth);

static bool dict_equal(const struct llm_jval *x, const struct llm_jval *y, int64_t *budget,
                       int depth)
{
    if (x->u.d.n != y->u.d.n)
        return false;
    for (uint32_t i = 0; i < x->u.d.n; i++) {
        const struct llm_jval *o = jv_get(y, x->u.d.v[i].key, x->u.d.v[i].klen);
        if (!o || !equal_at(x->u.d.v[i].val, o, budget, depth + 1))
            return false;
    }
    return true;
}

/* Python's ==: numbers across int/float/bool, containers deeply. Each
 * value compared costs one of *budget; an exhausted budget, or values
 * nested past LLM_JINJA_MAX_DEPTH (namespaces can hold each other), make
 * *budget negative and compare unequal: the caller reports it. */
static bool equal_at(const struct llm_jval *x, const struct llm_jval *y, int64_t *budget, int depth)
{
    if (depth > LLM_JINJA_MAX_DEPTH)
        *budget = -1;
    if (--*budget < 0)
        return false;
    if (is_num(x) && is_num(y)) {
        if (x->kind == JV_INT && y->kind == JV_INT)
            return x->u.i == y->u.i;
        return num(x) == num(y);
    }
    if (x->kind != y->kind)
        return false;
    switch (x->kind) {
    case JV_STR: return x->u.s.n == y->u.s.n && memcmp(x->u.s.p, y->u.s.p, x->u.s.n) == 0;
    case JV_LIST:
        if (x->u.l.n != y->u.l.n)
            return false;
        for (uint32_t i = 0; i < x->u.l.n; i++)
            if (!equal_at(x->u.l.v[i], y->u.l.v[i], budget, depth + 1))
                return false;
        return true;
    case JV_DICT: return x == y || dict_equal(x, y, budget, depth);
    case JV_LOOP:
    case JV_MACRO: return x == y;
    default: return true; /* undefined, none */
    }
}

bool jv_equal(const struct llm_jval *x, const struct llm_jval *y, int64_t *budget)
{
    return equal_at(x, y, budget, 0);
}

const char *jv_kind_name(const struct llm_jval *v)
{
    static const char *const names[] = { "undefined", "none", "boolean", "integer", "float",
                                         "string",    "list", "mapping", "loop",    "macro" };
    return v->is_ns ? "namespace" : names[v->kind];
}

void jb_put(struct jbuf *b, const char *s, size_t n)
{
    if (b->err || n == 0)
        return;
    if (n > b->max - b->n) {
        b->err = -E2BIG;
        return;
    }
    if (b->n + n + 1 > b->cap_alloc) {
        size_t nc = b->cap_alloc ? b->cap_alloc : 256;
        while (nc < b->n + n + 1)
            nc *= 2;
        char *p = realloc(b->p, nc);
        if (!p) {
            b->err = -ENOMEM;
            return;
        }
        b->p = p;
        b->cap_alloc = nc;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

void jb_putc(struct jbuf *b, char c)
{
    jb_put(b, &c, 1);
}

/* Python's repr() of a float: the shortest text that reads back. */
static void print_float(struct jbuf *b, double f)
{
    char t[40];
    if (isnan(f)) {
        jb_put(b, "nan", 3);
        return;
    }
    if (isinf(f)) {
        jb_put(b, f < 0 ? "-inf" : "inf", f < 0 ? 4 : 3);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(t, sizeof(t), "%.*g", prec, f);
        if (strtod(t, NULL) == f)
            break;
    }
    jb_put(b, t, strlen(t));
    if (!strpbrk(t, ".e"))
        jb_put(b, ".0", 2);
}

static void print_val(struct jbuf *b, const struct llm_jval *v, int depth);

/* Inside containers strings print quoted, as Python's repr. A namespace
 * can hold itself: past LLM_JINJA_MAX_DEPTH the printing stops at "...". */
static void print_repr(struct jbuf *b, const struct llm_jval *v, int depth)
{
    if (v->kind == JV_STR) {
        jb_putc(b, '\'');
        jb_put(b, v->u.s.p, v->u.s.n);
        jb_putc(b, '\'');
    } else if (depth > LLM_JINJA_MAX_DEPTH) {
        jb_put(b, "...", 3);
    } else {
        print_val(b, v, depth);
    }
}

static void print_seq(struct jbuf *b, const struct llm_jval *v, int depth)
{
    bool list = v->kind == JV_LIST;
    uint32_t n = list ? v->u.l.n : v->u.d.n;

    jb_putc(b, list ? '[' : '{');
    for (uint32_t i = 0; i < n && !b->err; i++) {
        if (i)
            jb_put(b, ", ", 2);
        if (!list) {
            jb_putc(b, '\'');
            jb_put(b, v->u.d.v[i].key, v->u.d.v[i].klen);
            jb_put(b, "': ", 3);
        }
        print_repr(b, list ? v->u.l.v[i] : v->u.d.v[i].val, depth + 1);
    }
    jb_putc(b, list ? ']' : '}');
}

static void print_val(struct jbuf *b, const struct llm_jval *v, int depth)
{
    char t[32];
    switch (v->kind) {
    case JV_UNDEF: break;
    case JV_NONE: jb_put(b, "None", 4); break;
    case JV_BOOL: jb_put(b, v->u.b ? "True" : "False", v->u.b ? 4 : 5); break;
    case JV_INT:
        snprintf(t, sizeof(t), "%" PRId64, v->u.i);
        jb_put(b, t, strlen(t));
        break;
    case JV_FLOAT: print_float(b, v->u.f); break;
    case JV_STR: jb_put(b, v->u.s.p, v->u.s.n); break;
    case JV_LOOP:
    case JV_MACRO:
        jb_put(b, v->kind == JV_LOOP ? "<loop>" : "<macro>", v->kind == JV_LOOP ? 6 : 7);
        break;
    default: print_seq(b, v, depth); break;
    }
}

void jv_print(struct jbuf *b, const struct llm_jval *v)
{
    print_val(b, v, 0);
}

size_t jv_utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
    size_t len = s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC0 ? 2 : 1;
    if (s[0] < 0x80 || len > n) {
        *cp = s[0] < 0x80 ? s[0] : 0xFFFD;
        return 1;
    }
    uint32_t c = s[0] & (0x3F >> (len - 1));
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *cp = 0xFFFD;
            return 1;
        }
        c = c << 6 | (s[i] & 0x3F);
    }
    *cp = c;
    return len;
}

static void json_uescape(struct jbuf *b, uint32_t c)
{
    char t[16];
    if (c >= 0x10000) {
        c -= 0x10000;
        snprintf(t, sizeof(t), "\\u%04x\\u%04x", 0xD800 + (c >> 10), 0xDC00 + (c & 0x3FF));
    } else {
        snprintf(t, sizeof(t), "\\u%04x", c);
    }
    jb_put(b, t, strlen(t));
}

static void json_string(struct jbuf *b, const char *s, size_t n, bool ascii)
{
    const unsigned char *u = (const unsigned char *)s;
    jb_putc(b, '"');
    for (size_t i = 0; i < n;) {
        unsigned char c = u[i];
        const char *esc = c == '"'  ? "\\\"" :
                          c == '\\' ? "\\\\" :
                          c == '\n' ? "\\n" :
                          c == '\r' ? "\\r" :
                          c == '\t' ? "\\t" :
                          c == '\b' ? "\\b" :
                          c == '\f' ? "\\f" :
                                      NULL;
        if (esc) {
            jb_put(b, esc, 2);
            i++;
        } else if (c < 0x20) {
            json_uescape(b, c);
            i++;
        } else if (c >= 0x80 && ascii) {
            uint32_t cp;
            i += jv_utf8_next(u + i, n - i, &cp);
            json_uescape(b, cp);
        } else {
            size_t j = i + 1;
            while (j < n && u[j] >= 0x20 && u[j] != '"' && u[j] != '\\' && !(ascii && u[j] >= 0x80))
                j++;
            jb_put(b, s + i, j - i);
            i = j;
        }
    }
    jb_putc(b, '"');
}

static void json_newline(struct jbuf *b, const struct jjson_opts *o, int depth)
{
    jb_putc(b, '\n');
    for (int64_t i = 0; i < o->indent * depth && !b->err; i++)
        jb_putc(b, ' ');
}

static int cmp_pairs(const void *x, const void *y)
{
    const struct jv_pair *p = *(const struct jv_pair *const *)x,
                         *q = *(const struct jv_pair *const *)y;
    size_t n = p->klen < q->klen ? p->klen : q->klen;
    int c = memcmp(p->key, q->key, n);
    return c ? c : (p->klen > q->klen) - (p->klen < q->klen);
}

static int json_seq(struct jbuf *b, const struct llm_jval *v, const struct jjson_opts *o, int depth)
{
    bool list = v->kind == JV_LIST;
    uint32_t n = list ? v->u.l.n : v->u.d.n;
    const char *isep = o->item_sep ? o->item_sep : o->indent > 0 ? "," : ", ";
    const char *ksep = o->key_sep ? o->key_sep : ": ";
    const struct jv_pair **order = NULL;
    int r = 0;

    if (!list && o->sort_keys && n > 1) {
        order = malloc(n * sizeof(*order));
        if (!order)
            return -ENOMEM;
        for (uint32_t i = 0; i < n; i++)
            order[i] = &v->u.d.v[i];
        qsort(order, n, sizeof(*order), cmp_pairs);
    }
    jb_putc(b, list ? '[' : '{');
    for (uint32_t i = 0; i < n && r == 0 && !b->err; i++) {
        if (i)
            jb_put(b, isep, strlen(isep));
        if (o->indent > 0)
            json_newline(b, o, depth + 1);
        if (list) {
            r = jv_json(b, v->u.l.v[i], o, depth + 1);
            continue;
        }
        const struct jv_pair *p = order ? order[i] : &v->u.d.v[i];
        json_string(b, p->key, p->klen, o->ensure_ascii);
        jb_put(b, ksep, strlen(ksep));
        r = jv_json(b, p->val, o, depth + 1);
    }
    if (n && o->indent > 0)
        json_newline(b, o, depth);
    jb_putc(b, list ? ']' : '}');
    free(order);
    return r;
}

int jv_json(struct jbuf *b, const struct llm_jval *v, const struct jjson_opts *o, int depth)
{
    if (depth > LLM_JINJA_MAX_DEPTH)
        return -E2BIG;
    switch (v->kind) {
    case JV_UNDEF:
    case JV_NONE: jb_put(b, "null", 4); return 0;
    case JV_BOOL: jb_put(b, v->u.b ? "true" : "false", v->u.b ? 4 : 5); return 0;
    case JV_INT:
    case JV_FLOAT:
        if (v->kind == JV_FLOAT && !isfinite(v->u.f))
            jb_put(b,
                   isnan(v->u.f) ? "NaN" :
                   v->u.f < 0    ? "-Infinity" :
                                   "Infinity",
                   isnan(v->u.f) ? 3 :
                   v->u.f < 0    ? 9 :
                                   8);
        else
            jv_print(b, v);
        return 0;
    case JV_STR: json_string(b, v->u.s.p, v->u.s.n, o->ensure_ascii); return 0;
    case JV_LIST:
    case JV_DICT: return json_seq(b, v, o, depth);
    default: return -EINVAL;
    }
}
