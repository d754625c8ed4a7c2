/* Lifetime, overrides, cross-key rules, dump and reload of struct conf. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf-internal.h"

static bool is_string(const struct conf_key *k)
{
    return k->type == CONF_TYPE_STRING || k->type == CONF_TYPE_PATH || k->type == CONF_TYPE_GROUP;
}

void conf_free(struct conf *c)
{
    size_t n;
    const struct conf_key *schema = conf_schema(&n);

    if (!c)
        return;
    for (size_t i = 0; i < n; i++)
        if (is_string(&schema[i]))
            free(*(char **)((char *)c + schema[i].offset));
    memset(c, 0, sizeof(*c));
}

int conf_defaults(struct conf *c)
{
    size_t n;
    const struct conf_key *schema = conf_schema(&n);

    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < n; i++) {
        union conf_val v = { 0 };
        /* The defaults are checked by test_schema (tests/conf/test_conf_conf.c), so only
         * strdup() can fail here. */
        int r = conf_parse_value(&schema[i], schema[i].def, &v, NULL, 0);
        if (r < 0) {
            conf_free(c);
            return r;
        }
        conf_store(c, &schema[i], &v);
    }
    return 0;
}

int conf_copy(struct conf *dst, const struct conf *src)
{
    size_t n;
    const struct conf_key *schema = conf_schema(&n);

    *dst = *src;
    for (size_t i = 0; i < n; i++)
        if (is_string(&schema[i]))
            *(char **)((char *)dst + schema[i].offset) = NULL;
    for (size_t i = 0; i < n; i++) {
        if (!is_string(&schema[i]))
            continue;
        char **f = (char **)((char *)dst + schema[i].offset);
        const char *s = *(char *const *)((const char *)src + schema[i].offset);
        *f = strdup(s ? s : "");
        if (!*f) {
            conf_free(dst);
            return -ENOMEM;
        }
    }
    return 0;
}

int conf_set(struct conf *c, const char *section, const char *key, const char *value, char *reterr,
             size_t reterr_size)
{
    const struct conf_key *k = conf_find(section, key);
    union conf_val v = { 0 };
    char problem[256];
    int r;

    if (!k) {
        char qs[128], qk[128];
        conf_quote(section ? section : "", qs, sizeof(qs));
        conf_quote(key ? key : "", qk, sizeof(qk));
        conf_err(reterr, reterr_size, "unknown setting [%s] %s", qs, qk);
        return -ENOENT;
    }
    r = conf_parse_value(k, value ? value : "", &v, problem, sizeof(problem));
    if (r < 0) {
        if (r == -ENOMEM)
            conf_err(reterr, reterr_size, "[%s] %s: out of memory", k->section, k->key);
        else
            conf_err(reterr, reterr_size, "[%s] %s: %s", k->section, k->key, problem);
        return r;
    }
    conf_store(c, k, &v);
    conf_mark_set(c, k);
    return 0;
}

int conf_set_assignment(struct conf *c, const char *assignment, char *reterr, size_t reterr_size)
{
    const char *dot = strchr(assignment, '.');
    const char *eq = strchr(assignment, '=');
    char q[128];

    if (!dot || !eq || dot > eq || dot == assignment || eq == dot + 1) {
        conf_quote(assignment, q, sizeof(q));
        conf_err(reterr, reterr_size, "'%s' is not of the form SECTION.KEY=VALUE", q);
        return -EINVAL;
    }
    cleanup_free char *section = strndup(assignment, (size_t)(dot - assignment));
    cleanup_free char *key = strndup(dot + 1, (size_t)(eq - dot - 1));
    if (!section || !key)
        return -ENOMEM;
    return conf_set(c, section, key, eq + 1, reterr, reterr_size);
}

/* Cross-key rules: a <= b, where a = 0 (automatic) always passes. gen.c
 * writes them into the docs from here. */
static const struct conf_rule rules[] = {
    { "lookahead", "n", "lookahead", "max_n" },
    { "lookahead", "w", "lookahead", "max_w" },
    { "lookahead", "g", "lookahead", "max_g" },
    { "limits", "max_queued_per_connection", "daemon", "queue_length" },
};

const struct conf_rule *conf_rules(size_t *ret_n)
{
    *ret_n = sizeof(rules) / sizeof(rules[0]);
    return rules;
}

static uint64_t number(const struct conf *c, const struct conf_key *k)
{
    const void *f = (const char *)c + k->offset;
    return k->type == CONF_TYPE_SIZE ? *(const uint64_t *)f : *(const uint32_t *)f;
}

/* Each value on its own: what the parser would accept (the struct is
 * public, so a caller may have written anything into it). */
static int check_values(const struct conf *c, char *reterr, size_t reterr_size)
{
    size_t n;
    const struct conf_key *schema = conf_schema(&n);
    char text[512], problem[256];

    for (size_t i = 0; i < n; i++) {
        const struct conf_key *k = &schema[i];
        union conf_val v = { 0 };
        const char *s = is_string(k) ? *(char *const *)((const char *)c + k->offset) : "";
        if (!s) {
            conf_err(reterr, reterr_size, "[%s] %s: not set", k->section, k->key);
            return -EINVAL;
        }
        conf_format_value(c, k, text, sizeof(text));
        int r = conf_parse_value(k, text, &v, problem, sizeof(problem));
        if (is_string(k))
            free(v.s);
        if (r < 0) {
            conf_err(reterr, reterr_size, "[%s] %s: %s", k->section, k->key, problem);
            return r;
        }
    }
    return 0;
}

int conf_check(const struct conf *c, char *reterr, size_t reterr_size)
{
    int r = check_values(c, reterr, reterr_size);

    if (r < 0)
        return r;
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
        const struct conf_key *a = conf_find(rules[i].section_a, rules[i].key_a);
        const struct conf_key *b = conf_find(rules[i].section_b, rules[i].key_b);
        uint64_t va = number(c, a), vb = number(c, b);
        if (va != 0 && va > vb) {
            conf_err(reterr, reterr_size, "[%s] %s = %llu is larger than [%s] %s = %llu",
                     a->section, a->key, (unsigned long long)va, b->section, b->key,
                     (unsigned long long)vb);
            return -EINVAL;
        }
    }
    return 0;
}

int conf_dump(const struct conf *c, FILE *f)
{
    size_t n;
    const struct conf_key *schema = conf_schema(&n);
    char text[512];

    fprintf(f, "# laded configuration: effective values\n");
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || strcmp(schema[i].section, schema[i - 1].section) != 0)
            fprintf(f, "\n[%s]\n", schema[i].section);
        conf_format_value(c, &schema[i], text, sizeof(text));
        fprintf(f, "%s = %s\n", schema[i].key, text);
    }
    return fflush(f) == 0 && !ferror(f) ? 0 : -EIO;
}

int conf_apply_reload(struct conf *running, const struct conf *loaded, conf_warn_fn warn,
                      void *user)
{
    size_t n;
    const struct conf_key *schema = conf_schema(&n);
    struct conf next;
    char text[512], msg[256];
    int changed = 0;

    if (conf_copy(&next, running) < 0)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const struct conf_key *k = &schema[i];
        union conf_val v = { 0 };
        if (conf_value_equal(running, loaded, k))
            continue;
        if (!(k->flags & CONF_F_RELOAD)) {
            conf_err(msg, sizeof(msg), "[%s] %s changed; takes effect after a restart, ignoring",
                     k->section, k->key);
            if (warn)
                warn(user, msg);
            continue;
        }
        conf_format_value(loaded, k, text, sizeof(text));
        int r = conf_parse_value(k, text, &v, NULL, 0); /* -ENOMEM, or unchecked *loaded */
        if (r < 0) {
            conf_free(&next);
            return r;
        }
        conf_store(&next, k, &v);
        changed++;
    }
    conf_free(running);
    *running = next;
    return changed;
}
