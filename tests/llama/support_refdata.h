/* Reader for the reference.jsonl files beside the test models
 * (../shared/models/<model>/reference.jsonl, format in that folder's
 * README.md): one JSON object a line with `id`, `prompt_tokens` (BOS
 * included), `greedy_tokens` and `greedy_text`. Compiled into every llama
 * test; names carry the refdata_ prefix. */
#ifndef LADE_TESTS_LLAMA_SUPPORT_REFDATA_H
#define LADE_TESTS_LLAMA_SUPPORT_REFDATA_H

#include <stddef.h>
#include <stdint.h>

struct refdata_rec {
    char *id;
    int32_t *prompt_tokens;
    uint32_t n_prompt;
    int32_t *greedy_tokens;
    uint32_t n_greedy;
    char *greedy_text;
};

struct refdata {
    struct refdata_rec *recs;
    size_t n;
};

/* Load every record of path. 0; -ENOENT when the file is absent (callers
 * skip); -EBADMSG with the line number in reterr for a malformed line;
 * -ENOMEM. */
int refdata_load(const char *path, struct refdata **ret, char *reterr, size_t errlen);

/* For a test that opened a file of ../shared and got r: skip() (with a
 * message) when r is -ENOENT, fail with err on any other error. */
void refdata_skip_absent(int r, const char *path, const char *err);

/* refdata_load for a test: skip() (with a message) when the file is
 * absent, as it is in a clone without ../shared beside it; fails the test
 * on any other error. */
struct refdata *refdata_load_or_skip(const char *path);

/* Accepts NULL. */
void refdata_free(struct refdata *d);

#endif
