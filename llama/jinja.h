/* llama: chat templates, a Jinja subset. The GGUF's tokenizer.chat_template
 * is a Jinja program written for Hugging Face's renderer (Python Jinja with
 * trim_blocks and lstrip_blocks); this interpreter runs the part of the
 * language such templates use: text, {{ }}, {% %}, {# #} with whitespace
 * control; if/elif/else, for (loop.*, a filter, else, break, continue),
 * set (also of a namespace's attribute, and as a block); expressions with
 * literals, attribute, item and slice access, calls, filters, tests,
 * arithmetic, comparisons, `in`, `~`, and/or/not and inline if. Included
 * through llm.h.
 *
 * A template is untrusted input: parsing and rendering are bounded (nesting
 * depth, steps, memory, output) and every failure, raise_exception()
 * included, comes back as a negative errno with one line "line L, column C:
 * reason" in reterr. Never logs, no globals, thread-safe per object. */
#ifndef LADE_LLAMA_JINJA_H
#define LADE_LLAMA_JINJA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct llm_jinja; /* a parsed template: opaque, immutable */
struct llm_jenv; /* the variables a template sees, and their memory */
struct llm_jval; /* one value inside an llm_jenv */

/* Templates deeper than this (blocks inside blocks, operators inside
 * operators) are refused at parse time: the renderer recurses that deep. */
#define LLM_JINJA_MAX_DEPTH 128

struct llm_jinja_limits {
    size_t max_output; /* bytes of rendered text; 0: 8 MiB */
    size_t max_memory; /* bytes of values made while rendering; 0: 64 MiB */
    uint64_t max_steps; /* statements, expression nodes and loop turns, plus
                         * one per 64 bytes a string operation touches; 0: 8M */
};

/* Parse len bytes of template source (NULs refused); the template keeps
 * its own copy, src may be freed after. 0; -EINVAL for a syntax error,
 * -E2BIG for a too deep template, -ENOMEM. */
int llm_jinja_parse(const char *src, size_t len, struct llm_jinja **ret, char *reterr,
                    size_t errlen);
/* Accepts NULL. */
void llm_jinja_free(struct llm_jinja *t);

/* Render with env's globals (a mapping; NULL for none). *ret_text is
 * malloc'd and NUL-terminated, *ret_len its length. 0; -EINVAL for an
 * error of the template (type errors, unknown filters, undefined values
 * used, raise_exception), -E2BIG for a limit reached, -ENOMEM. */
int llm_jinja_render(const struct llm_jinja *t, const struct llm_jenv *env,
                     const struct llm_jinja_limits *lim, char **ret_text, size_t *ret_len,
                     char *reterr, size_t errlen);

/* Variables: an arena of values with one global mapping. Building
 * functions return NULL when out of memory; llm_jval_push and llm_jval_put
 * take NULL values and return -ENOMEM for them, so calls nest. Strings are
 * copied. A value belongs to the env that made it and lives as long. */
int llm_jenv_new(struct llm_jenv **ret);
void llm_jenv_free(struct llm_jenv *e);
struct llm_jval *llm_jenv_globals(struct llm_jenv *e);

struct llm_jval *llm_jval_none(struct llm_jenv *e);
struct llm_jval *llm_jval_bool(struct llm_jenv *e, bool b);
struct llm_jval *llm_jval_int(struct llm_jenv *e, int64_t i);
struct llm_jval *llm_jval_float(struct llm_jenv *e, double f);
struct llm_jval *llm_jval_str(struct llm_jenv *e, const char *s, size_t len);
struct llm_jval *llm_jval_list(struct llm_jenv *e);
struct llm_jval *llm_jval_dict(struct llm_jenv *e);
/* Append v to list; 0, -EINVAL when list is not a list, -ENOMEM. */
int llm_jval_push(struct llm_jenv *e, struct llm_jval *list, struct llm_jval *v);
/* Set key (NUL-terminated) of dict to v, replacing an earlier value. */
int llm_jval_put(struct llm_jenv *e, struct llm_jval *dict, const char *key, struct llm_jval *v);

#endif
