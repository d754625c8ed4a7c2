/* Internal to conf/ (and its tests): value parsing and the helpers shared
 * by conf.c, load.c and gen.c. */
#ifndef LADE_CONF_CONF_INTERNAL_H
#define LADE_CONF_CONF_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "conf/conf.h"

/* libinih's line buffer (INI_MAX_LINE in the Debian build): a line holds at
 * most this many bytes before its newline. */
#define CONF_MAX_LINE 199

/* Longest string value: "pipeline_cache = " plus this still fits one line. */
#define CONF_MAX_STRING 160

void conf_freep(void *p);
void conf_fclosep(FILE **f);
#define cleanup_free __attribute__((cleanup(conf_freep)))
#define cleanup_fclose __attribute__((cleanup(conf_fclosep)))

/* Hands a pointer to the caller and clears the local one. */
#define TAKE_PTR(p)                        \
    ({                                     \
        __typeof__(p) take_ptr_tmp_ = (p); \
        (p) = NULL;                        \
        take_ptr_tmp_;                     \
    })

/* One parsed value; .s is owned (strdup) for the string types. */
union conf_val {
    char *s;
    bool b;
    uint32_t u32;
    uint64_t u64;
    int e;
};

/* Parses text for key k. On error returns -EINVAL (or -ENOMEM) and writes
 * the problem, without the key's name, to err: "'0' is out of range 1..16". */
int conf_parse_value(const struct conf_key *k, const char *text, union conf_val *ret, char *err,
                     size_t err_size);

/* Replaces the field of k in c by v, taking ownership of v->s. */
void conf_store(struct conf *c, const struct conf_key *k, union conf_val *v);

/* Records that the file or an override gave k a value (conf_is_set()). */
void conf_mark_set(struct conf *c, const struct conf_key *k);

/* Whether the field of k holds the same value in a and b. */
bool conf_value_equal(const struct conf *a, const struct conf *b, const struct conf_key *k);

/* Human text for the allowed values of k: "1..4096", "0 or 2..16",
 * "f16, f32", "yes, no", "absolute path". Returns like snprintf. */
int conf_format_range(const struct conf_key *k, char *buf, size_t size);

/* Name of a type as the docs show it: "path", "unsigned", "size", ... */
const char *conf_type_name(enum conf_type t);

/* Copies s into buf for a message: invalid UTF-8 and control bytes become
 * \xNN, and more than 60 input bytes end in "...". */
void conf_quote(const char *s, char *buf, size_t size);

/* A cross-key rule: [section_a] key_a <= [section_b] key_b unless key_a is 0. */
struct conf_rule {
    const char *section_a;
    const char *key_a;
    const char *section_b;
    const char *key_b;
};

const struct conf_rule *conf_rules(size_t *ret_n);

/* snprintf that tolerates a NULL or empty buffer. */
void conf_err(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. */
size_t conf_utf8_len(const unsigned char *s);

#endif /* LADE_CONF_CONF_INTERNAL_H */
