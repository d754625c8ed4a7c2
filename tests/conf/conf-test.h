/* Helpers shared by the conf tests: temporary files and a warning recorder. */
#ifndef LADE_TESTS_CONF_CONF_TEST_H
#define LADE_TESTS_CONF_CONF_TEST_H

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf/conf.h"

/* Writes len bytes to a fresh temporary file; returns its malloc'd path. */
static inline char *tmpfile_with(const void *data, size_t len)
{
    char *path = strdup("/tmp/lade-conf-test-XXXXXX");
    assert_non_null(path);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
    return path;
}

static inline char *tmpfile_str(const char *text)
{
    return tmpfile_with(text, strlen(text));
}

struct warnings {
    int count;
    char all[4096]; /* every message, one per line */
};

static inline void record_warning(void *user, const char *msg)
{
    struct warnings *w = user;
    size_t o = strlen(w->all);
    w->count++;
    snprintf(w->all + o, sizeof(w->all) - o, "%s\n", msg);
}

/* Loads text over the defaults into *c; returns conf_load()'s result, the
 * error in err and the warnings in *w. */
static inline int load_text(struct conf *c, const char *text, struct warnings *w, char *err,
                            size_t err_size, char **ret_path)
{
    char *path = tmpfile_str(text);
    assert_int_equal(conf_defaults(c), 0);
    memset(w, 0, sizeof(*w));
    err[0] = '\0';
    int r = conf_load(c, path, record_warning, w, err, err_size);
    unlink(path);
    if (ret_path)
        *ret_path = path;
    else
        free(path);
    return r;
}

/* A valid value of k other than its default, in laded.conf syntax: the
 * other end of a number's range, the other truth value, another name of
 * an enum, another string. */
static inline void other_value(const struct conf_key *k, char *buf, size_t size)
{
    unsigned long long def = strtoull(k->def, NULL, k->type == CONF_TYPE_MODE ? 8 : 10);
    unsigned long long v = def == k->min ? k->max : k->min;

    switch (k->type) {
    case CONF_TYPE_UINT:
    case CONF_TYPE_SIZE: snprintf(buf, size, "%llu", v); break;
    case CONF_TYPE_MODE: snprintf(buf, size, "0%llo", v); break;
    case CONF_TYPE_BOOL: snprintf(buf, size, "%s", strcmp(k->def, "yes") ? "yes" : "no"); break;
    case CONF_TYPE_ENUM:
        snprintf(buf, size, "%s",
                 strcmp(k->values[0].name, k->def) ? k->values[0].name : k->values[1].name);
        break;
    case CONF_TYPE_PATH: snprintf(buf, size, "/tmp/other"); break;
    default: /* strings and groups */ snprintf(buf, size, "other"); break;
    }
}

#endif /* LADE_TESTS_CONF_CONF_TEST_H */
