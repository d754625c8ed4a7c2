/* Private to llama/: UTF-8 as Unicode's Table 3-7 defines well-formed
 * sequences (no overlong forms, no surrogates, nothing past U+10FFFF), the
 * rule PCRE2, SentencePiece and Hugging Face's decoders all apply. */
#ifndef LADE_LLAMA_UTF8_H
#define LADE_LLAMA_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How many leading bytes of s (n >= 1) agree with some well-formed
 * character, at most n; *ret_need is that character's length, 0 when s[0]
 * cannot start one (then 0 is returned). The bytes are a whole character
 * when the result equals *ret_need; a result below both *ret_need and n
 * marks a maximal ill-formed subpart, which decoders replace by one U+FFFD. */
size_t llm_utf8_prefix(const uint8_t *s, size_t n, size_t *ret_need);

/* Length of the well-formed character at s, 0 when s[0..n) does not start
 * with one. */
size_t llm_utf8_char_len(const uint8_t *s, size_t n);

bool llm_utf8_valid(const char *s, size_t n);

#endif
