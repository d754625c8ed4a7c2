/* llama: Jinja source to syntax tree. The lexer cuts the source into text
 * and tag tokens, applying whitespace control as Hugging Face renders chat
 * templates (lstrip_blocks, trim_blocks, one final newline dropped; the
 * order of @huggingface/jinja's preprocessing), then the parser builds the
 * tree by recursive descent with Jinja's operator precedence:
 *   inline if < or < and < not < comparisons, in, is < + - < ~ < * / // %
 *   < ** < unary - + < postfix . [] () and | filters, is tests.
 * Depth is bounded twice: the parser's own recursion, and every node's
 * depth (left-leaning chains such as a+b+c+... recurse when evaluated). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llama/jinja-internal.h"

enum jt {
    JT_EOF = 0,
    JT_TEXT,
    JT_VOPEN, /* {{ */
    JT_VCLOSE, /* }} */
    JT_BOPEN, /* {% */
    JT_BCLOSE, /* %} */
    JT_NAME,
    JT_STR, /* p, n: the decoded string (arena) */
    JT_INT,
    JT_FLOAT,
    JT_OP, /* p, n: the operator's text */
};

struct jtok {
    enum jt kind;
    uint32_t line, col;
    const char *p;
    size_t n;
    int64_t i;
    double f;
};

struct jparser {
    struct jarena *a;
    const char *src;
    size_t len, pos;
    uint32_t line, col;
    struct jtok *t;
    size_t n, cap, k; /* tokens, capacity, the parser's position */
    int depth; /* parser recursion */
    int err;
    char *reterr;
    size_t errlen;
};

static void *fail(struct jparser *p, int err, uint32_t line, uint32_t col, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));

static void *fail(struct jparser *p, int err, uint32_t line, uint32_t col, const char *fmt, ...)
{
    va_list ap;
    if (p->err)
        return NULL;
    p->err = err;
    if (p->reterr && p->errlen) {
        int k = snprintf(p->reterr, p->errlen, "line %u, column %u: ", line, col);
        va_start(ap, fmt);
        if (k >= 0 && (size_t)k < p->errlen)
            vsnprintf(p->reterr + k, p->errlen - k, fmt, ap);
        va_end(ap);
    }
    return NULL;
}

static void *oom(struct jparser *p)
{
    return fail(p, -ENOMEM, p->line, p->col, "out of memory");
}

/* ---- lexer ---- */

static void advance(struct jparser *p, size_t n)
{
    for (size_t e = p->pos + n; p->pos < e; p->pos++) {
        if (p->src[p->pos] == '\n') {
            p->line++;
            p->col = 1;
        } else {
            p->col++;
        }
    }
}

static struct jtok *push_tok(struct jparser *p, enum jt kind)
{
    if (p->n == p->cap) {
        size_t nc = p->cap ? p->cap * 2 : 256;
        struct jtok *t = realloc(p->t, nc * sizeof(*t));
        if (!t)
            return oom(p);
        p->t = t;
        p->cap = nc;
    }
    struct jtok *t = &p->t[p->n++];
    *t = (struct jtok){ .kind = kind, .line = p->line, .col = p->col, .p = p->src + p->pos };
    return t;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static bool is_ident(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           (!first && c >= '0' && c <= '9');
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' :
           c >= 'a' && c <= 'f' ? c - 'a' + 10 :
           c >= 'A' && c <= 'F' ? c - 'A' + 10 :
                                  -1;
}

static size_t put_utf8(char *o, uint32_t c)
{
    if (c < 0x80) {
        o[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        o[0] = (char)(0xC0 | c >> 6);
        o[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        o[0] = (char)(0xE0 | c >> 12);
        o[1] = (char)(0x80 | (c >> 6 & 0x3F));
        o[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | c >> 18);
    o[1] = (char)(0x80 | (c >> 12 & 0x3F));
    o[2] = (char)(0x80 | (c >> 6 & 0x3F));
    o[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

/* One escape after a backslash at s (n bytes left, n >= 1) into o; returns
 * the source bytes used. Unknown escapes keep the backslash, as Python. */
static size_t unescape(const char *s, size_t n, char *o, size_t *olen)
{
    static const char from[] = "ntrbfv0\\'\"", to[] = "\n\t\r\b\f\v\0\\'\"";
    const char *f = memchr(from, s[0], sizeof(from) - 1);
    if (f) {
        o[(*olen)++] = to[f - from];
        return 1;
    }
    size_t want = s[0] == 'x' ? 2 : s[0] == 'u' ? 4 : 0;
    uint32_t c = 0;
    for (size_t i = 0; want && i < want; i++) {
        int h = i + 1 < n ? hexval(s[i + 1]) : -1;
        if (h < 0)
            want = 0;
        c = c << 4 | (uint32_t)(h < 0 ? 0 : h);
    }
    if (want) {
        if (c >= 0xD800 && c < 0xE000)
            c = 0xFFFD; /* a lone surrogate is no character: UTF-8 out stays well formed */
        *olen += put_utf8(o + *olen, c);
        return want + 1;
    }
    o[(*olen)++] = '\\';
    return 0;
}

static int lex_string(struct jparser *p)
{
    char q = p->src[p->pos];
    size_t i = p->pos + 1, olen = 0;
    struct jtok *t = push_tok(p, JT_STR);
    if (!t)
        return p->err;
    while (i < p->len && p->src[i] != q)
        i += p->src[i] == '\\' ? 2 : 1;
    if (i >= p->len)
        return (fail(p, -EINVAL, t->line, t->col, "unterminated string"), p->err);
    /* Escapes never lengthen: \uXXXX is 6 bytes for at most 3. */
    char *o = ja_alloc(p->a, i - p->pos);
    if (!o)
        return (oom(p), p->err);
    for (size_t j = p->pos + 1; j < i;) {
        if (p->src[j] == '\\')
            j += 1 + unescape(p->src + j + 1, i - j - 1, o, &olen);
        else
            o[olen++] = p->src[j++];
    }
    o[olen] = 0;
    t->p = o;
    t->n = olen;
    advance(p, i + 1 - p->pos);
    return 0;
}

static int lex_number(struct jparser *p)
{
    struct jtok *t = push_tok(p, JT_INT);
    char *end;
    size_t i = p->pos;
    if (!t)
        return p->err;
    while (i < p->len && p->src[i] >= '0' && p->src[i] <= '9')
        i++;
    bool frac = i + 1 < p->len && p->src[i] == '.' && p->src[i + 1] >= '0' && p->src[i + 1] <= '9';
    char buf[64];
    size_t n;
    if (frac) {
        i++;
        while (i < p->len &&
               ((p->src[i] >= '0' && p->src[i] <= '9') || p->src[i] == 'e' || p->src[i] == 'E' ||
                ((p->src[i] == '-' || p->src[i] == '+') && (p->src[i - 1] | 0x20) == 'e')))
            i++;
    }
    n = i - p->pos;
    if (n >= sizeof(buf))
        return (fail(p, -EINVAL, t->line, t->col, "number too long"), p->err);
    memcpy(buf, p->src + p->pos, n);
    buf[n] = 0;
    errno = 0;
    if (frac) {
        t->kind = JT_FLOAT;
        t->f = strtod(buf, &end);
    } else {
        t->i = strtoll(buf, &end, 10);
    }
    if (errno || *end)
        return (fail(p, -EINVAL, t->line, t->col, "bad number '%s'", buf), p->err);
    advance(p, n);
    return 0;
}

static int lex_op(struct jparser *p)
{
    static const char *const two[] = { "**", "//", "==", "!=", "<=", ">=" };
    const char *s = p->src + p->pos;
    size_t left = p->len - p->pos, n = 0;
    for (size_t i = 0; i < sizeof(two) / sizeof(two[0]) && !n; i++)
        if (left >= 2 && s[0] == two[i][0] && s[1] == two[i][1])
            n = 2;
    if (!n && strchr("+-*/%~<>=()[]{}.,:|", s[0]) && s[0])
        n = 1;
    if (!n)
        return (fail(p, -EINVAL, p->line, p->col, "unexpected character '%c' in a tag",
                     s[0] >= 0x20 && s[0] < 0x7f ? s[0] : '?'),
                p->err);
    struct jtok *t = push_tok(p, JT_OP);
    if (!t)
        return p->err;
    t->n = n;
    advance(p, n);
    return 0;
}

/* Is the tag closed at pos ("-"? then "}}" or "%}")? Returns the closing
 * length (2, or 3 with a strip) or 0. */
static size_t at_close(const struct jparser *p, char kind)
{
    const char *s = p->src + p->pos;
    size_t left = p->len - p->pos;
    size_t k = left >= 1 && s[0] == '-' ? 1 : 0;
    if (left >= k + 2 && s[k] == kind && s[k + 1] == '}')
        return k + 2;
    return 0;
}

/* The inside of {{ }} or {% %}, up to and including the closing mark.
 * Braces of dict literals nest: "}}" inside them does not close. */
static int lex_tag(struct jparser *p, char kind, bool *ret_strip)
{
    uint32_t line = p->line, col = p->col;
    int braces = 0;
    for (;;) {
        while (p->pos < p->len && is_space(p->src[p->pos]))
            advance(p, 1);
        if (p->pos >= p->len)
            return (fail(p, -EINVAL, line, col, "unterminated '%s' tag", kind == '}' ? "{{" : "{%"),
                    p->err);
        size_t close = braces == 0 ? at_close(p, kind) : 0;
        if (close) {
            *ret_strip = close == 3;
            if (!push_tok(p, kind == '}' ? JT_VCLOSE : JT_BCLOSE))
                return p->err;
            advance(p, close);
            return 0;
        }
        char c = p->src[p->pos];
        int r;
        if (c == '\'' || c == '"')
            r = lex_string(p);
        else if (c >= '0' && c <= '9')
            r = lex_number(p);
        else if (is_ident(c, true)) {
            struct jtok *t = push_tok(p, JT_NAME);
            size_t i = p->pos;
            while (i < p->len && is_ident(p->src[i], false))
                i++;
            if (t)
                t->n = i - p->pos;
            advance(p, i - p->pos);
            r = p->err;
        } else {
            braces += c == '{' ? 1 : c == '}' && braces > 0 ? -1 : 0;
            r = lex_op(p);
        }
        if (r)
            return r;
    }
}

/* Text from start to end, less what whitespace control takes. */
static int emit_text(struct jparser *p, size_t start, size_t end, uint32_t line, uint32_t col)
{
    if (end <= start)
        return 0;
    struct jtok *t = push_tok(p, JT_TEXT);
    if (!t)
        return p->err;
    t->p = p->src + start;
    t->n = end - start;
    t->line = line;
    t->col = col;
    return 0;
}

/* Where text before a tag at k ends: all whitespace goes for "{%-",
 * blanks from the line's start for a block or comment (lstrip_blocks). */
static size_t text_end(const struct jparser *p, size_t start, size_t k, bool strip, bool block)
{
    size_t w = k;
    if (strip) {
        while (w > start && is_space(p->src[w - 1]))
            w--;
        return w;
    }
    if (!block)
        return k;
    while (w > start && (p->src[w - 1] == ' ' || p->src[w - 1] == '\t'))
        w--;
    return w == 0 || p->src[w - 1] == '\n' || p->src[w - 1] == '\r' ? w : k;
}

static int lex_comment(struct jparser *p, bool *ret_strip)
{
    uint32_t line = p->line, col = p->col;
    const char *e = NULL;
    for (size_t i = p->pos; i + 1 < p->len && !e; i++)
        if (p->src[i] == '#' && p->src[i + 1] == '}')
            e = p->src + i;
    if (!e)
        return (fail(p, -EINVAL, line, col, "unterminated comment"), p->err);
    *ret_strip = e > p->src + p->pos && e[-1] == '-';
    advance(p, (size_t)(e - (p->src + p->pos)) + 2);
    return 0;
}

static int lex(struct jparser *p)
{
    size_t start = 0;
    uint32_t tline = 1, tcol = 1;
    while (p->pos < p->len) {
        const char *s = p->src + p->pos;
        if (s[0] != '{' || p->pos + 1 >= p->len || !strchr("{%#", s[1]) || !s[1]) {
            advance(p, 1);
            continue;
        }
        char open = s[1];
        bool lstrip = p->pos + 2 < p->len && s[2] == '-', rstrip = false;
        int r = emit_text(p, start, text_end(p, start, p->pos, lstrip, open != '{'), tline, tcol);
        if (r)
            return r;
        if (open != '#' && !push_tok(p, open == '{' ? JT_VOPEN : JT_BOPEN))
            return p->err;
        advance(p, 2 + lstrip);
        r = open == '#' ? lex_comment(p, &rstrip) : lex_tag(p, open == '{' ? '}' : '%', &rstrip);
        if (r)
            return r;
        if (rstrip)
            while (p->pos < p->len && is_space(p->src[p->pos]))
                advance(p, 1);
        else if (open != '{' && p->pos < p->len && p->src[p->pos] == '\n')
            advance(p, 1); /* trim_blocks */
        start = p->pos;
        tline = p->line;
        tcol = p->col;
    }
    int r = emit_text(p, start, p->len, tline, tcol);
    return r ? r : (push_tok(p, JT_EOF) ? 0 : p->err);
}

/* ---- parser ---- */

static struct jtok *peek(struct jparser *p)
{
    return &p->t[p->k];
}

static struct jtok *next(struct jparser *p)
{
    struct jtok *t = &p->t[p->k];
    if (t->kind != JT_EOF)
        p->k++;
    return t;
}

static bool tok_is(const struct jtok *t, enum jt kind, const char *s)
{
    return t->kind == kind && (!s || (t->n == strlen(s) && memcmp(t->p, s, t->n) == 0));
}

static bool accept(struct jparser *p, enum jt kind, const char *s)
{
    if (!tok_is(peek(p), kind, s))
        return false;
    next(p);
    return true;
}

static const char *tok_desc(const struct jtok *t)
{
    static const char *const names[] = {
        "end of template", "text",     "'{{'",     "'}}'",     "'{%'",       "'%}'",
        "a name",          "a string", "a number", "a number", "an operator"
    };
    return names[t->kind];
}

static bool expect(struct jparser *p, enum jt kind, const char *s)
{
    struct jtok *t = peek(p);
    if (accept(p, kind, s))
        return true;
    if (t->kind == JT_NAME || t->kind == JT_OP)
        fail(p, -EINVAL, t->line, t->col, "expected %s, found '%.*s'", s ? s : "a name",
             (int)(t->n > 40 ? 40 : t->n), t->p);
    else
        fail(p, -EINVAL, t->line, t->col, "expected %s, found %s", s ? s : "a name", tok_desc(t));
    return false;
}

static struct jnode *mk(struct jparser *p, enum jn_kind kind, const struct jtok *at)
{
    struct jnode *n = ja_alloc(p->a, sizeof(*n));
    if (!n)
        return oom(p);
    *n = (struct jnode){ .kind = kind, .line = at->line, .col = at->col, .depth = 1 };
    return n;
}

static uint16_t list_depth(const struct jnode *l)
{
    uint16_t d = 0;
    for (; l; l = l->next)
        d = l->depth > d ? l->depth : d;
    return d;
}

/* Set n's depth from its children (single nodes or lists); too deep a
 * tree is refused. */
static struct jnode *done(struct jparser *p, struct jnode *n)
{
    if (!n || p->err)
        return NULL;
    const struct jnode *kids[] = { n->args, n->a, n->b, n->c, n->d };
    uint16_t d = 0;
    for (int i = 0; i < 5; i++) {
        uint16_t k = list_depth(kids[i]);
        d = k > d ? k : d;
    }
    if (d >= LLM_JINJA_MAX_DEPTH)
        return fail(p, -E2BIG, n->line, n->col, "template nested deeper than %d",
                    LLM_JINJA_MAX_DEPTH);
    n->depth = (uint16_t)(d + 1);
    return n;
}

static bool enter(struct jparser *p)
{
    if (++p->depth <= LLM_JINJA_MAX_DEPTH)
        return true;
    const struct jtok *t = peek(p);
    fail(p, -E2BIG, t->line, t->col, "template nested deeper than %d", LLM_JINJA_MAX_DEPTH);
    return false;
}

static struct jnode *parse_expr(struct jparser *p);
static struct jnode *parse_or(struct jparser *p);
static struct jnode *parse_unary(struct jparser *p, bool with_filter);

static struct jnode *lit(struct jparser *p, const struct jtok *t, struct llm_jval *v)
{
    struct jnode *n = mk(p, JN_LIT, t);
    if (!v)
        return oom(p);
    if (n)
        n->lit = v;
    return n;
}

/* Comma-separated expressions (or name=value with kw) up to the closing
 * operator; the list chains through next. */
static struct jnode *parse_list(struct jparser *p, const char *close, bool kw, bool pairs)
{
    struct jnode *head = NULL, **tail = &head;
    while (!p->err && !accept(p, JT_OP, close)) {
        if (head && !expect(p, JT_OP, ","))
            return NULL;
        if (accept(p, JT_OP, close)) /* trailing comma */
            break;
        struct jtok *t = peek(p);
        struct jnode *n;
        if (kw && t->kind == JT_NAME && tok_is(&p->t[p->k + 1], JT_OP, "=")) {
            next(p);
            next(p);
            n = mk(p, JN_KWARG, t);
            if (n) {
                n->name = t->p;
                n->name_len = t->n;
                n->a = parse_expr(p);
            }
        } else if (pairs) {
            n = mk(p, JN_PAIR, t);
            if (n && (n->a = parse_expr(p)) && expect(p, JT_OP, ":"))
                n->b = parse_expr(p);
        } else {
            n = parse_expr(p);
        }
        if (!(n = done(p, n)))
            return NULL;
        *tail = n;
        tail = &n->next;
    }
    return p->err ? NULL : head;
}

static struct jnode *parse_primary(struct jparser *p)
{
    struct jtok *t = next(p);
    static const char *const consts[] = { "true", "True", "false", "False", "none", "None" };
    struct jnode *n;

    switch (t->kind) {
    case JT_NAME:
        for (int i = 0; i < 6; i++)
            if (tok_is(t, JT_NAME, consts[i]))
                return lit(p, t, i < 2 ? &jv_true : i < 4 ? &jv_false : &jv_nonev);
        n = mk(p, JN_NAME, t);
        if (n) {
            n->name = t->p;
            n->name_len = t->n;
        }
        return n;
    case JT_STR: {
        /* Adjacent strings join, as in Python. */
        size_t len = t->n, k = p->k;
        while (p->t[k].kind == JT_STR)
            len += p->t[k++].n;
        struct llm_jval *v = jv_new(p->a, JV_STR);
        char *s = v ? ja_alloc(p->a, len + 1) : NULL;
        if (!s)
            return oom(p);
        memcpy(s, t->p, t->n);
        for (size_t o = t->n; p->k < k; o += p->t[p->k++].n)
            memcpy(s + o, p->t[p->k].p, p->t[p->k].n);
        s[len] = 0;
        v->u.s.p = s;
        v->u.s.n = len;
        return lit(p, t, v);
    }
    case JT_INT: return lit(p, t, jv_int(p->a, t->i));
    case JT_FLOAT: return lit(p, t, jv_float(p->a, t->f));
    default: break;
    }
    if (tok_is(t, JT_OP, "(")) {
        n = parse_expr(p);
        if (n && tok_is(peek(p), JT_OP, ",")) { /* a tuple: a list here */
            struct jnode *l = mk(p, JN_LIST, t);
            next(p);
            if (l && (l->args = n) && (n->next = parse_list(p, ")", false, false), !p->err))
                return done(p, l);
            return NULL;
        }
        return expect(p, JT_OP, ")") ? n : NULL;
    }
    if (tok_is(t, JT_OP, "[") || tok_is(t, JT_OP, "{")) {
        bool dict = t->p[0] == '{';
        n = mk(p, dict ? JN_DICT : JN_LIST, t);
        if (n)
            n->args = parse_list(p, dict ? "}" : "]", false, dict);
        return p->err ? NULL : done(p, n);
    }
    if (t->kind == JT_NAME || t->kind == JT_OP)
        return fail(p, -EINVAL, t->line, t->col, "unexpected '%.*s'", (int)(t->n > 40 ? 40 : t->n),
                    t->p);
    return fail(p, -EINVAL, t->line, t->col, "unexpected %s", tok_desc(t));
}

/* [b], [b:c], [b:c:d] after an expression. */
static struct jnode *parse_subscript(struct jparser *p, struct jnode *obj, const struct jtok *at)
{
    struct jnode *n = mk(p, JN_ITEM, at), *parts[3] = { NULL, NULL, NULL };
    int k = 0;
    if (!n)
        return NULL;
    for (;;) {
        if (!tok_is(peek(p), JT_OP, ":") && !tok_is(peek(p), JT_OP, "]"))
            if (!(parts[k] = parse_expr(p)))
                return NULL;
        if (k == 2 || !accept(p, JT_OP, ":"))
            break;
        n->kind = JN_SLICE;
        k++;
    }
    if (!expect(p, JT_OP, "]"))
        return NULL;
    if (n->kind == JN_ITEM && !parts[0])
        return fail(p, -EINVAL, at->line, at->col, "empty subscript");
    n->a = obj;
    n->b = parts[0];
    n->c = parts[1];
    n->d = parts[2];
    return done(p, n);
}

/* name or name(args) after "|" or "is". */
static struct jnode *parse_named_call(struct jparser *p, enum jn_kind kind, struct jnode *obj)
{
    struct jtok *t = peek(p);
    struct jnode *n = mk(p, kind, t);
    if (!n)
        return NULL;
    if (kind == JN_TEST && accept(p, JT_NAME, "not"))
        n->op = 1;
    t = peek(p);
    if (!expect(p, JT_NAME, NULL))
        return NULL;
    n->name = t->p;
    n->name_len = t->n;
    n->a = obj;
    if (accept(p, JT_OP, "("))
        n->args = parse_list(p, ")", true, false);
    return done(p, n);
}

/* Attribute, item and call suffixes; then filters and tests, unless the
 * operand of a unary minus ("-x|abs" is "(-x)|abs", as in Jinja). */
static struct jnode *parse_postfix(struct jparser *p, struct jnode *n, bool with_filter)
{
    while (n && !p->err) {
        struct jtok *t = peek(p);
        struct jnode *m;
        if (accept(p, JT_OP, ".")) {
            struct jtok *name = peek(p);
            if (!expect(p, JT_NAME, NULL) || !(m = mk(p, JN_ATTR, t)))
                return NULL;
            m->a = n;
            m->name = name->p;
            m->name_len = name->n;
            n = done(p, m);
        } else if (accept(p, JT_OP, "[")) {
            n = parse_subscript(p, n, t);
        } else if (accept(p, JT_OP, "(")) {
            if (!(m = mk(p, JN_CALL, t)))
                return NULL;
            m->a = n;
            m->args = parse_list(p, ")", true, false);
            n = done(p, m);
        } else if (with_filter && accept(p, JT_OP, "|")) {
            n = parse_named_call(p, JN_FILTER, n);
        } else if (with_filter && accept(p, JT_NAME, "is")) {
            n = parse_named_call(p, JN_TEST, n);
        } else {
            break;
        }
    }
    return p->err ? NULL : n;
}

static struct jnode *parse_unary(struct jparser *p, bool with_filter)
{
    struct jtok *t = peek(p);
    struct jnode *n;
    if (!enter(p))
        return NULL;
    if (tok_is(t, JT_OP, "-") || tok_is(t, JT_OP, "+")) {
        next(p);
        n = mk(p, JN_UNARY, t);
        if (n) {
            n->op = (uint8_t)t->p[0];
            n->a = parse_unary(p, false);
        }
        n = done(p, n);
    } else {
        n = parse_primary(p);
    }
    n = parse_postfix(p, n, with_filter);
    p->depth--;
    return n;
}

static struct jnode *binary(struct jparser *p, const struct jtok *at, enum jop op, struct jnode *l,
                            struct jnode *r)
{
    struct jnode *n = l && r ? mk(p, JN_BINARY, at) : NULL;
    if (!n)
        return NULL;
    n->op = (uint8_t)op;
    n->a = l;
    n->b = r;
    return done(p, n);
}

/* One precedence level of left-associative operators. */
struct oplevel {
    const char *text[4];
    enum jop op[4];
};

static const struct oplevel levels[] = {
    { { "+", "-" }, { JOP_ADD, JOP_SUB } },
    { { "~" }, { JOP_CONCAT } },
    { { "*", "/", "//", "%" }, { JOP_MUL, JOP_DIV, JOP_FLOORDIV, JOP_MOD } },
    { { "**" }, { JOP_POW } },
};

static struct jnode *parse_level(struct jparser *p, int lv)
{
    if (lv == 4)
        return parse_unary(p, true);
    struct jnode *n = parse_level(p, lv + 1);
    for (;;) {
        struct jtok *t = peek(p);
        int i = 0;
        while (i < 4 && !(levels[lv].text[i] && tok_is(t, JT_OP, levels[lv].text[i])))
            i++;
        if (i == 4 || !n)
            return n;
        next(p);
        n = binary(p, t, levels[lv].op[i], n, parse_level(p, lv + 1));
    }
}

static struct jnode *parse_compare(struct jparser *p)
{
    static const char *const ops[] = { "==", "!=", "<", "<=", ">", ">=" };
    static const enum jop codes[] = { JOP_EQ, JOP_NE, JOP_LT, JOP_LE, JOP_GT, JOP_GE };
    struct jnode *n = parse_level(p, 0);
    while (n) {
        struct jtok *t = peek(p);
        enum jop op = 0;
        for (int i = 0; i < 6 && !op; i++)
            if (tok_is(t, JT_OP, ops[i]))
                op = codes[i];
        if (!op && tok_is(t, JT_NAME, "in"))
            op = JOP_IN;
        if (!op && tok_is(t, JT_NAME, "not") && tok_is(&p->t[p->k + 1], JT_NAME, "in")) {
            next(p);
            op = JOP_NOTIN;
        }
        if (!op)
            return n;
        next(p);
        n = binary(p, t, op, n, parse_level(p, 0));
    }
    return NULL;
}

static struct jnode *parse_not(struct jparser *p)
{
    struct jtok *t = peek(p);
    struct jnode *n;
    if (!tok_is(t, JT_NAME, "not"))
        return parse_compare(p);
    if (!enter(p))
        return NULL;
    next(p);
    n = mk(p, JN_UNARY, t);
    if (n) {
        n->op = 'n';
        n->a = parse_not(p);
    }
    p->depth--;
    return done(p, n);
}

/* "or" of "and"s (is_or), or "and" of "not"s. */
static struct jnode *parse_logic(struct jparser *p, bool is_or)
{
    struct jnode *n = is_or ? parse_logic(p, false) : parse_not(p);
    while (n && tok_is(peek(p), JT_NAME, is_or ? "or" : "and")) {
        struct jtok *t = next(p);
        n = binary(p, t, is_or ? JOP_OR : JOP_AND, n, is_or ? parse_logic(p, false) : parse_not(p));
    }
    return n;
}

static struct jnode *parse_or(struct jparser *p)
{
    return parse_logic(p, true);
}

/* expr [if cond [else expr]] */
static struct jnode *parse_expr(struct jparser *p)
{
    struct jnode *n, *c;
    if (!enter(p))
        return NULL;
    n = parse_or(p);
    while (n && tok_is(peek(p), JT_NAME, "if")) {
        struct jtok *t = next(p);
        if (!(c = mk(p, JN_COND, t)))
            break;
        c->b = n;
        c->a = parse_or(p);
        if (c->a && accept(p, JT_NAME, "else"))
            c->c = parse_or(p);
        n = done(p, c);
    }
    p->depth--;
    return p->err ? NULL : n;
}

/* ---- statements ---- */

static struct jnode *parse_body(struct jparser *p, const char *const *enders,
                                struct jtok **ret_end);

static bool end_tag(struct jparser *p)
{
    return expect(p, JT_BCLOSE, NULL);
}

static struct jnode *parse_if(struct jparser *p, struct jtok *t)
{
    static const char *const enders[] = { "elif", "else", "endif", NULL };
    struct jnode *n = mk(p, JN_IF, t);
    struct jtok *e;
    if (!n || !(n->a = parse_expr(p)) || !end_tag(p))
        return NULL;
    n->b = parse_body(p, enders, &e);
    if (p->err)
        return NULL;
    if (tok_is(e, JT_NAME, "elif")) {
        /* elif chains recurse: counted like nesting */
        if (enter(p))
            n->c = parse_if(p, e);
        p->depth--;
    } else if (tok_is(e, JT_NAME, "else")) {
        static const char *const endif[] = { "endif", NULL };
        if (end_tag(p))
            n->c = parse_body(p, endif, &e);
        if (!p->err)
            end_tag(p);
    } else {
        end_tag(p);
    }
    return done(p, n);
}

static bool parse_target(struct jparser *p, const char **name, size_t *len)
{
    struct jtok *t = peek(p);
    if (!expect(p, JT_NAME, NULL))
        return false;
    *name = t->p;
    *len = t->n;
    return true;
}

static struct jnode *parse_for(struct jparser *p, struct jtok *t)
{
    static const char *const enders[] = { "else", "endfor", NULL };
    struct jnode *n = mk(p, JN_FOR, t);
    struct jtok *e;
    bool paren;
    if (!n)
        return NULL;
    paren = accept(p, JT_OP, "(");
    if (!parse_target(p, &n->name, &n->name_len))
        return NULL;
    if (accept(p, JT_OP, ",") && !parse_target(p, &n->name2, &n->name2_len))
        return NULL;
    if ((paren && !expect(p, JT_OP, ")")) || !expect(p, JT_NAME, "in") || !(n->a = parse_or(p)))
        return NULL;
    if (accept(p, JT_NAME, "if") && !(n->d = parse_or(p)))
        return NULL;
    if (!end_tag(p))
        return NULL;
    n->b = parse_body(p, enders, &e);
    if (!p->err && tok_is(e, JT_NAME, "else") && end_tag(p)) {
        static const char *const endfor[] = { "endfor", NULL };
        n->c = parse_body(p, endfor, &e);
    }
    if (!p->err)
        end_tag(p);
    return done(p, n);
}

/* The body of n up to {% ender %}, into n->b. */
static struct jnode *parse_block_rest(struct jparser *p, struct jnode *n, const char *ender)
{
    const char *const enders[] = { ender, NULL };
    struct jtok *e;
    n->b = parse_body(p, enders, &e);
    if (!p->err)
        end_tag(p);
    return done(p, n);
}

static struct jnode *parse_set(struct jparser *p, struct jtok *t)
{
    struct jnode *n = mk(p, JN_SET, t);
    if (!n || !parse_target(p, &n->name, &n->name_len))
        return NULL;
    if (accept(p, JT_OP, ".") && !parse_target(p, &n->attr, &n->attr_len))
        return NULL;
    if (accept(p, JT_OP, "=")) {
        if (!(n->a = parse_expr(p)) || !end_tag(p))
            return NULL;
        return done(p, n);
    }
    return end_tag(p) ? parse_block_rest(p, n, "endset") : NULL;
}

static struct jnode *parse_macro(struct jparser *p, struct jtok *t)
{
    struct jnode *n = mk(p, JN_MACRO, t);
    if (!n || !parse_target(p, &n->name, &n->name_len) || !expect(p, JT_OP, "("))
        return NULL;
    n->args = parse_list(p, ")", true, false);
    for (struct jnode *a = n->args; a && !p->err; a = a->next)
        if (a->kind != JN_NAME && a->kind != JN_KWARG)
            fail(p, -EINVAL, a->line, a->col, "macro parameters are names");
    if (p->err || !end_tag(p))
        return NULL;
    return parse_block_rest(p, n, "endmacro");
}

/* The statement after "{%"; NULL with no error for a tag that renders
 * nothing (generation markers). */
static struct jnode *parse_stmt(struct jparser *p)
{
    struct jtok *t = peek(p);
    struct jnode *n = NULL;
    if (!expect(p, JT_NAME, NULL))
        return NULL;
    if (!enter(p))
        return NULL;
    if (tok_is(t, JT_NAME, "if"))
        n = parse_if(p, t);
    else if (tok_is(t, JT_NAME, "for"))
        n = parse_for(p, t);
    else if (tok_is(t, JT_NAME, "set"))
        n = parse_set(p, t);
    else if (tok_is(t, JT_NAME, "macro"))
        n = parse_macro(p, t);
    else if (tok_is(t, JT_NAME, "break") || tok_is(t, JT_NAME, "continue")) {
        n = mk(p, t->p[0] == 'b' ? JN_BREAK : JN_CONTINUE, t);
        if (!end_tag(p))
            n = NULL;
    } else if (tok_is(t, JT_NAME, "generation") || tok_is(t, JT_NAME, "endgeneration")) {
        end_tag(p);
    } else {
        fail(p, -EINVAL, t->line, t->col, "unknown tag '%.*s'", (int)(t->n > 40 ? 40 : t->n), t->p);
    }
    p->depth--;
    return n;
}

/* Statements up to a "{% ender" tag (its name consumed, *ret_end set) or,
 * with no enders, the end of the template. */
static struct jnode *parse_body(struct jparser *p, const char *const *enders, struct jtok **ret_end)
{
    struct jnode *head = NULL, **tail = &head;
    struct jtok *open = p->k ? &p->t[p->k - 1] : peek(p);
    while (!p->err) {
        struct jtok *t = next(p);
        struct jnode *n = NULL;
        if (t->kind == JT_EOF) {
            if (enders) {
                int last = 0;
                while (enders[last + 1])
                    last++;
                return fail(p, -EINVAL, open->line, open->col,
                            "block not closed: missing '{%% %s %%}'", enders[last]);
            }
            break;
        }
        if (t->kind == JT_TEXT) {
            struct llm_jval *v = jv_str(p->a, t->p, t->n);
            if ((n = mk(p, JN_TEXT, t)))
                n->lit = v ? v : oom(p);
        } else if (t->kind == JT_VOPEN) {
            if ((n = mk(p, JN_OUTPUT, t)) && (n->a = parse_expr(p)) && expect(p, JT_VCLOSE, NULL))
                n = done(p, n);
        } else if (t->kind == JT_BOPEN) {
            struct jtok *name = peek(p);
            for (int i = 0; enders && enders[i]; i++) {
                if (tok_is(name, JT_NAME, enders[i])) {
                    *ret_end = next(p);
                    return head;
                }
            }
            n = parse_stmt(p);
        } else {
            return fail(p, -EINVAL, t->line, t->col, "unexpected %s", tok_desc(t));
        }
        if (n && !p->err) {
            *tail = n;
            tail = &n->next;
        }
    }
    return p->err ? NULL : head;
}

int llm_jinja_parse(const char *src, size_t len, struct llm_jinja **ret, char *reterr,
                    size_t errlen)
{
    struct llm_jinja *t = calloc(1, sizeof(*t));
    struct jparser p = {
        .src = src, .len = len, .line = 1, .col = 1, .reterr = reterr, .errlen = errlen
    };
    if (!t)
        return -ENOMEM;
    t->a.cap = SIZE_MAX;
    p.a = &t->a;
    /* Names and text point into the source: the template keeps a copy, so
     * that the caller's may go (laded kept its own for life; lade-info
     * freed it, and every identifier then read freed memory). */
    char *copy = ja_alloc(&t->a, len + 1);
    if (!copy) {
        llm_jinja_free(t);
        return -ENOMEM;
    }
    memcpy(copy, src, len);
    copy[len] = 0;
    p.src = src = copy;
    if (memchr(src, 0, len))
        fail(&p, -EINVAL, 1, 1, "the template holds a NUL byte");
    if (len && src[len - 1] == '\n')
        p.len--; /* Jinja's keep_trailing_newline=False */
    if (!p.err && lex(&p) == 0) {
        struct jtok *end = NULL;
        t->body = parse_body(&p, NULL, &end);
    }
    free(p.t);
    if (p.err) {
        llm_jinja_free(t);
        return p.err;
    }
    *ret = t;
    return 0;
}

void llm_jinja_free(struct llm_jinja *t)
{
    if (!t)
        return;
    ja_free(&t->a);
    free(t);
}
