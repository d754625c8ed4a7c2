/* conf_load(): laded.conf through inih.
 *
 * libinih (the system's, built with its defaults) reports no line numbers to
 * the handler, continues indented lines as multi-line values and silently
 * splits lines longer than its 200-byte buffer. We feed it through our own
 * reader, which counts lines, refuses over-long lines and NUL bytes, and
 * strips leading blanks so that an indented line is an ordinary line. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "conf/conf-internal.h"

struct load {
    struct conf *c; /* working copy, swapped in on success */
    const char *path;
    conf_warn_fn warn;
    void *user;
    FILE *f;
    char *line; /* getline() buffer */
    size_t line_cap;
    unsigned lineno;
    unsigned *seen; /* per schema key: line that set it, 0 = not yet */
    int err; /* first error, stops parsing */
    int read_errno;
    char *reterr;
    size_t reterr_size;
};

static void load_warn(struct load *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void load_warn(struct load *l, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    if (!l->warn)
        return;
    int o = snprintf(msg, sizeof(msg), "%s:%u: ", l->path, l->lineno);
    va_start(ap, fmt);
    vsnprintf(msg + o, sizeof(msg) - (size_t)o, fmt, ap);
    va_end(ap);
    l->warn(l->user, msg);
}

static void load_fail(struct load *l, int err, const char *what)
{
    if (l->err)
        return;
    l->err = err;
    conf_err(l->reterr, l->reterr_size, "%s:%u: %s", l->path, l->lineno, what);
}

static char *reader(char *str, int num, void *stream)
{
    struct load *l = stream;
    ssize_t len;

    if (l->err)
        return NULL; /* stop at the first error */
    errno = 0;
    len = getline(&l->line, &l->line_cap, l->f);
    if (len < 0) {
        l->read_errno = errno;
        return NULL;
    }
    l->lineno++;
    if (memchr(l->line, '\0', (size_t)len)) {
        load_fail(l, -EINVAL, "line contains a NUL byte");
        return NULL;
    }
    size_t body = (size_t)len - (len > 0 && l->line[len - 1] == '\n');
    if (body >= (size_t)num || body > CONF_MAX_LINE) {
        char what[64];
        snprintf(what, sizeof(what), "line is longer than %d bytes", CONF_MAX_LINE);
        load_fail(l, -EINVAL, what);
        return NULL;
    }
    size_t skip = strspn(l->line, " \t");
    if (skip > body)
        skip = body;
    memcpy(str, l->line + skip, body - skip); /* body < num: room for the NUL */
    str[body - skip] = '\0';
    return str;
}

/* Unknown key: say where it would belong when it exists elsewhere. */
static void warn_unknown(struct load *l, const char *section, const char *name)
{
    size_t n;
    const struct conf_key *schema = conf_schema(&n);
    char qs[128], qk[128];
    bool known_section = false;

    conf_quote(section, qs, sizeof(qs));
    conf_quote(name, qk, sizeof(qk));
    for (size_t i = 0; i < n; i++)
        known_section |= strcmp(schema[i].section, section) == 0;
    if (section[0] == '\0') {
        load_warn(l, "key '%s' outside any [section], ignoring", qk);
        return;
    }
    if (!known_section) {
        load_warn(l, "unknown section [%s], ignoring key '%s'", qs, qk);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(schema[i].key, name) == 0) {
            load_warn(l, "unknown key '%s' in [%s] (it belongs in [%s]), ignoring", qk, qs,
                      schema[i].section);
            return;
        }
    }
    load_warn(l, "unknown key '%s' in [%s], ignoring", qk, qs);
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
    struct load *l = user;
    size_t n;
    const struct conf_key *schema = conf_schema(&n);
    const struct conf_key *k = conf_find(section, name);
    union conf_val v = { 0 };
    char problem[256], what[512];

    if (name[0] == '\0') {
        load_fail(l, -EINVAL, "syntax error: no key before '='");
        return 0;
    }
    if (!k) {
        warn_unknown(l, section, name);
        return 1;
    }
    int r = conf_parse_value(k, value, &v, problem, sizeof(problem));
    if (r < 0) {
        snprintf(what, sizeof(what), "[%s] %s: %s", k->section, k->key,
                 r == -ENOMEM ? "out of memory" : problem);
        load_fail(l, r, what);
        return 0;
    }
    size_t idx = (size_t)(k - schema);
    if (l->seen[idx])
        load_warn(l, "[%s] %s: set again (first at line %u), the last value wins", k->section,
                  k->key, l->seen[idx]);
    l->seen[idx] = l->lineno;
    conf_store(l->c, k, &v);
    conf_mark_set(l->c, k);
    return 1;
}

static int open_file(const char *path, FILE **ret, char *reterr, size_t reterr_size)
{
    FILE *f = fopen(path, "re");

    if (!f) {
        int e = errno;
        conf_err(reterr, reterr_size, "Failed to open '%s': %s", path, strerror(e));
        return -e;
    }
    *ret = f;
    return 0;
}

/* Runs inih over l->f and turns its result into one error code. */
static int parse(struct load *l)
{
    int r = ini_parse_stream(reader, l, handler, l);

    if (l->err)
        return l->err;
    if (l->read_errno) {
        conf_err(l->reterr, l->reterr_size, "Failed to read '%s': %s", l->path,
                 strerror(l->read_errno));
        return -l->read_errno;
    }
    if (r == -2) {
        conf_err(l->reterr, l->reterr_size, "%s: out of memory", l->path);
        return -ENOMEM;
    }
    if (r != 0) {
        conf_err(l->reterr, l->reterr_size,
                 "%s:%d: syntax error: expected '[section]', 'key = value' or a comment", l->path,
                 r);
        return -EINVAL;
    }
    return 0;
}

int conf_load(struct conf *c, const char *path, conf_warn_fn warn, void *user, char *reterr,
              size_t reterr_size)
{
    size_t n;
    cleanup_fclose FILE *f = NULL;
    struct conf work;
    int r;

    conf_schema(&n);
    if ((r = open_file(path, &f, reterr, reterr_size)) < 0)
        return r;
    cleanup_free unsigned *seen = calloc(n, sizeof(*seen));
    if (!seen || conf_copy(&work, c) < 0) {
        conf_err(reterr, reterr_size, "%s: out of memory", path);
        return -ENOMEM;
    }
    struct load l = {
        .c = &work,
        .path = path,
        .warn = warn,
        .user = user,
        .f = f,
        .seen = seen,
        .reterr = reterr,
        .reterr_size = reterr_size,
    };
    r = parse(&l);
    free(l.line);
    if (r < 0) {
        conf_free(&work);
        return r;
    }
    conf_free(c);
    *c = work;
    return 0;
}
