/* Private to llama/jinja_*.c: the arena, the value model, the syntax tree.
 * jinja_value.c owns values (building, comparing, printing, JSON),
 * jinja_parse.c turns source into a tree, jinja_eval.c runs the tree. */
#ifndef LADE_LLAMA_JINJA_INTERNAL_H
#define LADE_LLAMA_JINJA_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "llama/jinja.h"

/* Bump allocator of chunks, freed all at once; alloc fails (NULL) once
 * cap bytes have been handed out, or malloc fails (oom then true). */
struct jarena {
    struct jchunk *head;
    size_t used; /* bytes handed out, all chunks */
    size_t cap; /* SIZE_MAX: no cap */
    bool oom; /* the last failure was malloc's, not the cap */
};

void *ja_alloc(struct jarena *a, size_t n);
char *ja_strdup(struct jarena *a, const char *s, size_t n);
void ja_free(struct jarena *a);

enum jv_kind {
    JV_UNDEF = 0,
    JV_NONE,
    JV_BOOL,
    JV_INT,
    JV_FLOAT,
    JV_STR,
    JV_LIST,
    JV_DICT, /* also namespace() objects, with is_ns */
    JV_LOOP, /* a for loop's `loop`, read through its state */
    JV_MACRO, /* a macro: its JN_MACRO node */
};

struct jv_pair {
    const char *key;
    size_t klen;
    struct llm_jval *val;
};

struct jloop {
    struct llm_jval **items; /* what the loop runs over, after its filter */
    uint32_t n;
    uint32_t i; /* index0 of the current turn */
};

struct llm_jval {
    enum jv_kind kind;
    bool is_ns; /* a namespace: attribute assignment allowed */
    union {
        bool b;
        int64_t i;
        double f;
        struct {
            const char *p;
            size_t n;
        } s;
        struct {
            struct llm_jval **v;
            uint32_t n, cap;
        } l;
        struct {
            struct jv_pair *v;
            uint32_t n, cap;
        } d;
        struct jloop *loop;
        const struct jnode *macro;
    } u;
};

struct llm_jenv {
    struct jarena a;
    struct llm_jval *globals;
};

/* Shared constants: never written. */
extern struct llm_jval jv_undef, jv_nonev, jv_true, jv_false;

struct llm_jval *jv_new(struct jarena *a, enum jv_kind k);
struct llm_jval *jv_str(struct jarena *a, const char *s, size_t n);
struct llm_jval *jv_int(struct jarena *a, int64_t i);
struct llm_jval *jv_float(struct jarena *a, double f);
static inline struct llm_jval *jv_bool(bool b)
{
    return b ? &jv_true : &jv_false;
}
int jv_push(struct jarena *a, struct llm_jval *list, struct llm_jval *v);
int jv_put(struct jarena *a, struct llm_jval *dict, const char *key, size_t klen,
           struct llm_jval *v);
struct llm_jval *jv_get(const struct llm_jval *dict, const char *key, size_t klen);
bool jv_truthy(const struct llm_jval *v);
bool jv_equal(const struct llm_jval *x, const struct llm_jval *y, int64_t *budget);
const char *jv_kind_name(const struct llm_jval *v);
/* Decode one UTF-8 character at s (n > 0 bytes); a byte that does not
 * start a valid one is one character (U+FFFD). Returns its length. */
size_t jv_utf8_next(const unsigned char *s, size_t n, uint32_t *cp);

/* A growable byte buffer (malloc), failing once more than cap bytes. */
struct jbuf {
    char *p;
    size_t n, cap_alloc, max;
    int err; /* sticky: -E2BIG past max, -ENOMEM */
};

void jb_put(struct jbuf *b, const char *s, size_t n);
void jb_putc(struct jbuf *b, char c);
/* The text {{ v }} prints: Python's str() of the value. */
void jv_print(struct jbuf *b, const struct llm_jval *v);

struct jjson_opts {
    int64_t indent; /* <= 0: one line */
    bool sort_keys;
    bool ensure_ascii;
    const char *item_sep, *key_sep; /* NULL: ", " (", " with indent: ",") and ": " */
};

/* The tojson filter; -EINVAL for a value JSON cannot hold (depth bounded by
 * LLM_JINJA_MAX_DEPTH). */
int jv_json(struct jbuf *b, const struct llm_jval *v, const struct jjson_opts *o, int depth);

/* Syntax tree. Expressions and statements share one node type; lists
 * (statement bodies, call arguments, list literals) chain through next. */
enum jn_kind {
    JN_LIT, /* lit */
    JN_NAME, /* name */
    JN_ATTR, /* a.name */
    JN_ITEM, /* a[b] */
    JN_SLICE, /* a[b:c:d], any of b c d may be NULL */
    JN_CALL, /* a(args) */
    JN_FILTER, /* a | name(args) */
    JN_TEST, /* a is [not] name(args); op 1 for "not" */
    JN_UNARY, /* op a: '-', '+', 'n' (not) */
    JN_BINARY, /* a op b, op one of enum jop */
    JN_COND, /* b if a else c */
    JN_LIST, /* [args] */
    JN_DICT, /* {args}: JN_PAIR nodes */
    JN_PAIR, /* a: b */
    JN_KWARG, /* name=a, in call arguments */
    JN_TEXT, /* literal text: lit */
    JN_OUTPUT, /* {{ a }} */
    JN_IF, /* if a: b else c */
    JN_FOR, /* for name[, name2] in a [if d]: b else c */
    JN_SET, /* set name[.attr] = a, or (a NULL) the rendered body b */
    JN_BREAK,
    JN_CONTINUE,
    JN_MACRO, /* macro name(args: JN_NAME or JN_KWARG with defaults): b */
};

enum jop {
    JOP_ADD = 1,
    JOP_SUB,
    JOP_MUL,
    JOP_DIV,
    JOP_FLOORDIV,
    JOP_MOD,
    JOP_POW,
    JOP_CONCAT,
    JOP_EQ,
    JOP_NE,
    JOP_LT,
    JOP_LE,
    JOP_GT,
    JOP_GE,
    JOP_IN,
    JOP_NOTIN,
    JOP_AND,
    JOP_OR,
};

struct jnode {
    uint8_t kind; /* enum jn_kind */
    uint8_t op; /* enum jop, or as noted above */
    uint16_t depth; /* 1 + the deepest child */
    uint32_t line, col;
    const char *name, *name2, *attr;
    size_t name_len, name2_len, attr_len;
    struct llm_jval *lit;
    struct jnode *a, *b, *c, *d;
    struct jnode *args;
    struct jnode *next;
};

struct llm_jinja {
    struct jarena a;
    struct jnode *body;
};

/* One rendering (jinja_eval.c), with the builtins (jinja_builtins.c). */
struct jeval {
    struct jarena a; /* every value made while rendering, capped */
    struct jbuf out;
    const struct llm_jval *globals;
    uint64_t steps, max_steps;
    int calls; /* macro calls in progress */
    int err;
    char *reterr;
    size_t errlen;
};

#define JARGS_MAX 16

/* Evaluated call arguments. */
struct jargs {
    struct llm_jval *pos[JARGS_MAX];
    uint32_t npos;
    const char *kw[JARGS_MAX];
    size_t kwlen[JARGS_MAX];
    struct llm_jval *kwv[JARGS_MAX];
    uint32_t nkw;
};

/* Record the first error, at n's position; returns NULL. */
void *jx_fail(struct jeval *e, const struct jnode *n, int err, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
/* The error for a failed arena allocation. */
void *jx_nomem(struct jeval *e, const struct jnode *n);
/* Count cost steps (plus one per 64 bytes); false past the limit. */
bool jx_charge(struct jeval *e, const struct jnode *n, uint64_t cost, size_t bytes);
/* A new string of n bytes whose text the caller writes into *ret_p. */
struct llm_jval *jx_newstr(struct jeval *e, const struct jnode *at, size_t n, char **ret_p);
/* The text collected in b as a string value; b's memory is released. A
 * buffer that went past its limit gives that error. */
struct llm_jval *jx_take(struct jeval *e, const struct jnode *n, struct jbuf *b);
/* Argument i, or the keyword name, or NULL. */
struct llm_jval *jx_arg(const struct jargs *a, uint32_t i, const char *name);
/* v as text (Python's str()), a string value. */
struct llm_jval *jx_tostr(struct jeval *e, const struct jnode *at, struct llm_jval *v);
/* Attribute or item lookup as `v.name` does; NULL on error. */
struct llm_jval *jx_getattr(struct jeval *e, const struct jnode *at, struct llm_jval *v,
                            const char *name, size_t len);

struct llm_jval *jx_filter(struct jeval *e, const struct jnode *n, struct llm_jval *v,
                           struct jargs *a);
/* 1 true, 0 false, < 0 error. */
int jx_test(struct jeval *e, const struct jnode *n, const char *name, size_t len,
            struct llm_jval *v, struct jargs *a);
/* obj.name(args) for strings, mappings and lists; NULL with no error
 * recorded when obj has no such method. */
struct llm_jval *jx_method(struct jeval *e, const struct jnode *n, struct llm_jval *obj,
                           const char *name, size_t len, struct jargs *a);

#endif
