/* SentencePiece tokenizer for LLaMA-family models, loaded from a
 * tokenizer.model or from a GGUF's own vocabulary. Encoding and whole-sequence
 * decoding are SentencePiece's own (through llama/sp_shim.cc); the streaming
 * detokenizer reproduces SentencePiece's decoding one token at a time without
 * allocating. Never logs: errors come back as negative errno, load errors
 * with a one-line message in reterr. */
#ifndef LADE_LLAMA_TOKENIZER_H
#define LADE_LLAMA_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct llm_gguf;
struct llm_tok; /* opaque, immutable after load */

/* Longest text llm_tok_encode accepts; SentencePiece needs tens of bytes of
 * working memory per input byte, so longer inputs get -E2BIG. (A long text
 * is encoded in chunks of 64 KiB split at spaces, where the vocabulary
 * allows it with identical ids; a text without such spaces is not.) */
#define LLM_TOK_MAX_TEXT ((size_t)4 << 20)

/* Load a SentencePiece tokenizer.model. 0, or a negative errno (-ENOENT,
 * -EINVAL for a broken model, -ENOTSUP for settings this decoder cannot
 * reproduce, -ENOMEM) with a message in reterr (may be NULL). */
int llm_tok_load_file(const char *path, struct llm_tok **ret, char *reterr, size_t errlen);

/* Build the tokenizer from the GGUF's tokenizer.ggml.* metadata (model must
 * be "llama"). Every array and id is checked; errors name the key. */
int llm_tok_load_gguf(const struct llm_gguf *g, struct llm_tok **ret, char *reterr,
                      size_t errlen);

/* Accepts NULL. */
void llm_tok_free(struct llm_tok *tok);

int32_t llm_tok_n_vocab(const struct llm_tok *tok);
/* Special ids; -1 when the model has none. */
int32_t llm_tok_bos(const struct llm_tok *tok);
int32_t llm_tok_eos(const struct llm_tok *tok);
int32_t llm_tok_unk(const struct llm_tok *tok);
/* Whether the model wants BOS in front of a prompt (GGUF add_bos_token;
 * true for a tokenizer.model, as LLaMA does). */
bool llm_tok_add_bos(const struct llm_tok *tok);

/* Encode len bytes of text (may hold NULs; invalid UTF-8 becomes U+FFFD as
 * SentencePiece normalises it), with BOS first when add_bos. Writes at most
 * cap ids; *ret_n is the full count. -ENOSPC when cap < *ret_n, -E2BIG when
 * len > LLM_TOK_MAX_TEXT, -EINVAL for text NULL with len > 0 or add_bos
 * without a BOS token, -ENOMEM. */
int llm_tok_encode(const struct llm_tok *tok, const char *text, size_t len, bool add_bos,
                   int32_t *out, size_t cap, size_t *ret_n);

/* The bytes token id contributes to output text, out of context: U+2581
 * becomes a space, <0xNN> the byte NN, control tokens nothing, the unknown
 * token SentencePiece's unknown surface (" \u2047 "). NUL-terminated for
 * convenience but may contain a NUL (<0x00>): use *ret_len. NULL for an id
 * out of range. A byte piece alone can be half a character; the streaming
 * detokenizer below is what assembles text. */
const char *llm_tok_piece(const struct llm_tok *tok, int32_t id, size_t *ret_len);

/* SentencePiece's DecodeIds. Writes the text and a NUL; *ret_n is its length
 * without the NUL. -ENOSPC when cap < *ret_n + 1, -ERANGE for an id out of
 * range, -ENOMEM. */
int llm_tok_decode(const struct llm_tok *tok, const int32_t *ids, size_t n, char *out,
                   size_t cap, size_t *ret_n);

/* Streaming detokenizer: the caller embeds it; push costs no allocation.
 * Concatenated output equals llm_tok_decode of the same ids. Only complete
 * UTF-8 characters come out: bytes of a character spread over byte-fallback
 * pieces are held until the character is complete; bytes that cannot form
 * one come out as U+FFFD exactly where SentencePiece puts them. */
struct llm_detok {
    const struct llm_tok *tok;
    uint8_t pending[4];  /* bytes of an unfinished character */
    uint8_t n_pending;
    bool is_bos_ws;      /* a leading U+2581 may still be stripped */
    bool bos_ws_seen;    /* the previous piece had its U+2581 stripped */
    bool emitted;        /* any text has come out */
};

void llm_detok_init(struct llm_detok *d, const struct llm_tok *tok);

/* Bytes one push or flush can write at most; a buffer this large never gets
 * -ENOSPC. */
size_t llm_detok_max_out(const struct llm_tok *tok);

/* Feed one id; writes 0 or more bytes (no NUL) to out and sets *ret_n.
 * -ERANGE for an id out of range, -ENOSPC when cap is too small (*ret_n is
 * then what it needs); on error the state is unchanged. */
int llm_detok_push(struct llm_detok *d, int32_t id, char *out, size_t cap, size_t *ret_n);

/* End of sequence: writes what is held back (as U+FFFD: it can no longer be
 * completed) and resets d for a new sequence. -ENOSPC as for push. */
int llm_detok_flush(struct llm_detok *d, char *out, size_t cap, size_t *ret_n);

#endif
