/* Tokenizers for LLaMA-family models, of two kinds behind one type:
 * - SentencePiece (GGUF tokenizer.ggml.model "llama", or a tokenizer.model):
 *   encoding and whole-sequence decoding are SentencePiece's own (through
 *   llama/sp_shim.cc); the streaming detokenizer reproduces its decoding one
 *   token at a time without allocating.
 * - Byte-level BPE (tokenizer.ggml.model "gpt2": Llama 3.x, Qwen2/2.5/3,
 *   SmolLM, GPT-2), from the GGUF alone, as Hugging Face's tokenizers encode
 *   (llama/bpe.c): tokenizer.ggml.pre names the pre-tokenizer, whose split
 *   regexes PCRE2 runs.
 * Never logs: errors come back as negative errno, load errors with a
 * one-line message in reterr. */
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

/* Build the tokenizer from the GGUF's tokenizer.ggml.* metadata (model
 * "llama" or "gpt2"; -ENOTSUP for another, or for a tokenizer.ggml.pre this
 * file does not know, naming it). Every array and id is checked; errors name
 * the key. */
int llm_tok_load_gguf(const struct llm_gguf *g, struct llm_tok **ret, char *reterr, size_t errlen);

/* Accepts NULL. */
void llm_tok_free(struct llm_tok *tok);

int32_t llm_tok_n_vocab(const struct llm_tok *tok);
/* Special ids; -1 when the model has none. */
int32_t llm_tok_bos(const struct llm_tok *tok);
int32_t llm_tok_eos(const struct llm_tok *tok);
int32_t llm_tok_unk(const struct llm_tok *tok);
/* As the GGUF declares them (tokenizer.ggml.padding_token_id, eot_token_id,
 * eom_token_id; a tokenizer.model's pad id); -1 when it does not. */
int32_t llm_tok_pad(const struct llm_tok *tok);
int32_t llm_tok_eot(const struct llm_tok *tok);
int32_t llm_tok_eom(const struct llm_tok *tok);
/* Whether the model wants BOS in front of a prompt (GGUF add_bos_token;
 * true for a tokenizer.model, as LLaMA does; for BPE without the key, true
 * for Llama 3's pre-tokenizer only). */
bool llm_tok_add_bos(const struct llm_tok *tok);

/* "llama" (SentencePiece) or "gpt2" (byte-level BPE), as the GGUF names
 * them; and the BPE pre-tokenizer ("llama-bpe", "qwen2", ...; "default"
 * when the GGUF names none), NULL for SentencePiece. */
const char *llm_tok_model(const struct llm_tok *tok);
const char *llm_tok_pre(const struct llm_tok *tok);

/* End of generation: the declared eos, eot (tokenizer.ggml.eot_token_id) and
 * eom (eom_token_id), and the control tokens spelled <|eot_id|>,
 * <|eom_id|>, <|end_of_text|>, <|im_end|>, <|endoftext|> or <end_of_turn>
 * (instruct models end turns with them without always declaring them).
 * llm_tok_eog points *ret_ids at the list and returns its length (at most
 * 8; 0 when the model declares none). */
bool llm_tok_is_eog(const struct llm_tok *tok, int32_t id);
size_t llm_tok_eog(const struct llm_tok *tok, const int32_t **ret_ids);

/* Flags of llm_tok_encode. */
#define LLM_TOK_ADD_BOS 1u /* BOS first */
/* Text that spells a control token (<|begin_of_text|>, <|im_start|>, </s>)
 * or the unknown token becomes that token, the longest at the leftmost
 * position first; without the flag such text is plain text. BPE
 * user-defined tokens (Qwen3's <think>) are matched either way, as Hugging
 * Face does; SentencePiece matches its user-defined pieces itself. Text
 * between specials is encoded on its own, as if it were a whole prompt. */
#define LLM_TOK_SPECIAL 2u

/* Encode len bytes of text (may hold NULs). SentencePiece: invalid UTF-8
 * becomes U+FFFD as SentencePiece normalises it. BPE: every byte is kept
 * (an ill-formed byte is never part of a regex match, so it and its
 * ill-formed neighbours form a piece of their own). flags: LLM_TOK_*.
 * Writes at most cap ids; *ret_n is the full count. -ENOSPC when cap <
 * *ret_n, -E2BIG when len > LLM_TOK_MAX_TEXT, -EINVAL for text NULL with
 * len > 0, LLM_TOK_ADD_BOS without a BOS token or an unknown flag, -ENOMEM. */
int llm_tok_encode(const struct llm_tok *tok, const char *text, size_t len, unsigned flags,
                   int32_t *out, size_t cap, size_t *ret_n);

/* The bytes token id contributes to output text, out of context.
 * SentencePiece: U+2581 becomes a space, <0xNN> the byte NN, control tokens
 * nothing, the unknown token SentencePiece's unknown surface (" \u2047 ").
 * BPE: a normal token's byte-level text mapped back to bytes, user-defined
 * tokens their text, control tokens nothing. NUL-terminated for
 * convenience but may contain a NUL (<0x00>): use *ret_len. NULL for an id
 * out of range. A piece alone can be part of a character; the streaming
 * detokenizer below is what assembles text. */
const char *llm_tok_piece(const struct llm_tok *tok, int32_t id, size_t *ret_len);

/* SentencePiece's DecodeIds; for BPE the pieces' bytes with each maximal
 * ill-formed UTF-8 subpart replaced by one U+FFFD, as Hugging Face's
 * decoder does (its clean_up_tokenization_spaces is not applied: text
 * round-trips). Writes the text and a NUL; *ret_n is its length
 * without the NUL. -ENOSPC when cap < *ret_n + 1, -ERANGE for an id out of
 * range, -ENOMEM. */
int llm_tok_decode(const struct llm_tok *tok, const int32_t *ids, size_t n, char *out, size_t cap,
                   size_t *ret_n);

/* Streaming detokenizer: the caller embeds it; push costs no allocation.
 * Concatenated output equals llm_tok_decode of the same ids. Only complete
 * UTF-8 characters come out: bytes of a character spread over byte-fallback
 * pieces (SentencePiece) or over byte-level tokens (BPE: a token may end
 * inside a character) are held until the character is complete; bytes that
 * cannot form one come out as U+FFFD exactly where llm_tok_decode puts
 * them. */
struct llm_detok {
    const struct llm_tok *tok;
    uint8_t pending[4]; /* bytes of an unfinished character */
    uint8_t n_pending;
    bool is_bos_ws; /* a leading U+2581 may still be stripped */
    bool bos_ws_seen; /* the previous piece had its U+2581 stripped */
    bool emitted; /* any text has come out */
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
