/* Helpers for the tokenizer tests (test_tokenizer.c, test_bpe.c), compiled
 * into every llama test; names carry the tokt_ prefix. Failures end the
 * calling cmocka test. */
#ifndef LADE_TESTS_LLAMA_SUPPORT_TOK_H
#define LADE_TESTS_LLAMA_SUPPORT_TOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct llm_tok;

/* Encode into a malloc'd array (flags: LLM_TOK_*), exercising the -ENOSPC
 * contract on the way. */
int32_t *tokt_encode(const struct llm_tok *tok, const char *text, size_t len, unsigned flags,
                     size_t *ret_n);

/* llm_tok_decode into a malloc'd, NUL-terminated string. */
char *tokt_decode(const struct llm_tok *tok, const int32_t *ids, size_t n, size_t *ret_len);

/* Strict UTF-8 (shortest form, no surrogates, at most U+10FFFF). */
bool tokt_is_utf8(const char *s, size_t n);

/* Streams ids one at a time; every chunk must be whole UTF-8 and the
 * concatenation must equal llm_tok_decode. */
void tokt_check_stream(const struct llm_tok *tok, const int32_t *ids, size_t n);

/* A JSON array of integers as a malloc'd id array. */
int32_t *tokt_json_ids(json_t *arr, size_t *ret_n);

/* Calls fn for every object of a .jsonl file. */
void tokt_each_jsonl(const char *path, void (*fn)(json_t *rec, void *ctx), void *ctx);

#endif
