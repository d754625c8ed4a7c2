/* Reader for the shared prompt sets (the .jsonl files of ../shared/prompts: one JSON
 * object a line with a "prompt" string). Compiled into every llama test;
 * names carry the prompts_ prefix. */
#ifndef LADE_TESTS_LLAMA_SUPPORT_PROMPTS_H
#define LADE_TESTS_LLAMA_SUPPORT_PROMPTS_H

#include <stddef.h>

/* The first `limit` prompts of path, malloc'd; NULL when the file cannot
 * be opened (callers skip or fall back). */
char **prompts_load(const char *path, size_t limit, size_t *ret_n);
void prompts_free(char **p, size_t n);

#endif
