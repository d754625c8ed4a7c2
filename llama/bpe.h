/* Private to llama/: byte-level BPE vocabularies (GGUF tokenizer.ggml.model
 * "gpt2": Llama 3, Qwen2/2.5/3, SmolLM, GPT-2), used by llama/tokenizer.c,
 * which owns special tokens and the public API.
 *
 * Encoding plain text (no special tokens) follows Hugging Face's pipeline:
 * the normalizer (NFC for qwen2), the pre-tokenizer's split regexes run by
 * PCRE2 (UTF + UCP), each piece mapped byte by byte onto GPT-2's printable
 * alphabet, then merged by rank. Nothing logs. */
#ifndef LADE_LLAMA_BPE_H
#define LADE_LLAMA_BPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct llm_gguf;
struct llm_gguf_kv;
struct llm_bpe; /* opaque, immutable after load */

/* Token types, numbered as GGUF's tokenizer.ggml.token_type. */
enum llm_tok_type {
    LLM_TOK_TYPE_NORMAL = 1,
    LLM_TOK_TYPE_UNKNOWN = 2,
    LLM_TOK_TYPE_CONTROL = 3,
    LLM_TOK_TYPE_USER_DEFINED = 4,
    LLM_TOK_TYPE_UNUSED = 5,
    LLM_TOK_TYPE_BYTE = 6,
};

/* A growing array of token ids. */
struct llm_ids {
    int32_t *v;
    size_t n, cap;
};

int llm_ids_push(struct llm_ids *ids, int32_t id);
/* Room for at least n ids in all; 0 or -ENOMEM. */
int llm_ids_reserve(struct llm_ids *ids, size_t n);

/* Build from the GGUF: tokens (an array of n strings, checked here) and
 * types (n little-endian i32, already checked to be that long) come from the
 * caller; merges and the pre-tokenizer are read here. 0, or -EINVAL for a
 * malformed vocabulary, -ENOTSUP for an unknown tokenizer.ggml.pre, -ENOMEM;
 * the message names the key. Copies what it keeps: g may go first. */
int llm_bpe_load_gguf(const struct llm_gguf *g, const struct llm_gguf_kv *tokens,
                      const uint8_t *types, int32_t n, struct llm_bpe **ret, char *reterr,
                      size_t errlen);

void llm_bpe_free(struct llm_bpe *b);

/* The pre-tokenizer's name as tokenizer.ggml.pre spells it ("default" when
 * the key is absent). */
const char *llm_bpe_pre(const struct llm_bpe *b);

/* Whether the pre-tokenizer's models put BOS first when the GGUF does not
 * say (tokenizer.ggml.add_bos_token). */
bool llm_bpe_default_add_bos(const struct llm_bpe *b);

/* Token type of id (enum llm_tok_type) and its text as the GGUF spells it
 * (NUL-terminated); id must be in range. */
int llm_bpe_type(const struct llm_bpe *b, int32_t id);
const char *llm_bpe_text(const struct llm_bpe *b, int32_t id, size_t *ret_len);

/* Appends the ids of len bytes of plain text (invalid UTF-8 included: those
 * bytes keep their byte tokens). 0, -ENOMEM, or -EINVAL when PCRE2 fails. */
int llm_bpe_encode(const struct llm_bpe *b, const char *text, size_t len, struct llm_ids *out);

/* The bytes id stands for: a normal token's byte-level text mapped back to
 * bytes (possibly part of a character), a user-defined or unknown token's
 * own text, nothing for a control token. NUL-terminated; NULL when out of
 * range. */
const char *llm_bpe_piece(const struct llm_bpe *b, int32_t id, size_t *ret_len);

/* Longest llm_bpe_piece. */
size_t llm_bpe_max_piece(const struct llm_bpe *b);

#endif
