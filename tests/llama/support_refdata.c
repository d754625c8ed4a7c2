/* reference.jsonl reader (see support_refdata.h). */
#include "support_refdata.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

static int fail_with(char *reterr, size_t errlen, int err, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static int fail_with(char *reterr, size_t errlen, int err, const char *fmt, ...)
{
    if (reterr && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(reterr, errlen, fmt, ap);
        va_end(ap);
    }
    return err;
}

/* A JSON array of token ids (each within int32) into a malloc'd array. */
static int take_tokens(json_t *arr, int32_t **ret, uint32_t *ret_n)
{
    size_t n = json_array_size(arr);

    if (!json_is_array(arr))
        return -EBADMSG;
    *ret = malloc((n ? n : 1) * sizeof(int32_t));
    if (!*ret)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(arr, i);
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX)
            return -EBADMSG;
        (*ret)[i] = (int32_t)json_integer_value(v);
    }
    *ret_n = (uint32_t)n;
    return 0;
}

static int take_record(json_t *o, struct refdata_rec *rec)
{
    json_t *id = json_object_get(o, "id");
    json_t *text = json_object_get(o, "greedy_text");
    int r;

    if (!json_is_string(id) || !json_is_string(text))
        return -EBADMSG;
    rec->id = strdup(json_string_value(id));
    rec->greedy_text = strdup(json_string_value(text));
    if (!rec->id || !rec->greedy_text)
        return -ENOMEM;
    if ((r = take_tokens(json_object_get(o, "prompt_tokens"), &rec->prompt_tokens,
                         &rec->n_prompt)) < 0 ||
        (r = take_tokens(json_object_get(o, "greedy_tokens"), &rec->greedy_tokens,
                         &rec->n_greedy)) < 0)
        return r;
    return 0;
}

/* Append one parsed line to d. */
static int add_line(struct refdata *d, const char *line, size_t lineno, char *reterr, size_t errlen)
{
    json_error_t jerr;
    json_t *o = json_loads(line, 0, &jerr);
    if (!o)
        return fail_with(reterr, errlen, -EBADMSG, "line %zu: %s", lineno, jerr.text);

    struct refdata_rec *recs = realloc(d->recs, (d->n + 1) * sizeof(*recs));
    if (!recs) {
        json_decref(o);
        return fail_with(reterr, errlen, -ENOMEM, "out of memory");
    }
    d->recs = recs;
    memset(&recs[d->n], 0, sizeof(recs[0]));
    int r = take_record(o, &recs[d->n]);
    d->n++; /* counted even when half-filled, so that refdata_free frees it */
    json_decref(o);
    if (r == -EBADMSG)
        return fail_with(
                reterr, errlen, r,
                "line %zu: missing or malformed id, prompt_tokens, greedy_tokens or greedy_text",
                lineno);
    if (r < 0)
        return fail_with(reterr, errlen, r, "out of memory");
    return 0;
}

int refdata_load(const char *path, struct refdata **ret, char *reterr, size_t errlen)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return fail_with(reterr, errlen, -errno, "cannot open '%s': %s", path, strerror(errno));

    struct refdata *d = calloc(1, sizeof(*d));
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    int r = d ? 0 : fail_with(reterr, errlen, -ENOMEM, "out of memory");
    while (r == 0 && getline(&line, &cap, f) > 0) {
        lineno++;
        if (line[strspn(line, " \t\r\n")] == '\0')
            continue; /* blank line */
        r = add_line(d, line, lineno, reterr, errlen);
    }
    free(line);
    fclose(f);
    if (r < 0) {
        refdata_free(d);
        return r;
    }
    *ret = d;
    return 0;
}

void refdata_skip_absent(int r, const char *path, const char *err)
{
    if (r == -ENOENT) {
        print_message("skipping: %s absent (../shared not beside the source tree?)\n", path);
        skip();
    }
    if (r < 0)
        fail_msg("%s", err);
}

struct refdata *refdata_load_or_skip(const char *path)
{
    char err[256] = "";
    struct refdata *d = NULL;

    refdata_skip_absent(refdata_load(path, &d, err, sizeof(err)), path, err);
    return d;
}

void refdata_free(struct refdata *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++) {
        free(d->recs[i].id);
        free(d->recs[i].prompt_tokens);
        free(d->recs[i].greedy_tokens);
        free(d->recs[i].greedy_text);
    }
    free(d->recs);
    free(d);
}
