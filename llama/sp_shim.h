/* The only door into SentencePiece (C++): a C view of one loaded
 * SentencePieceProcessor. Used by llama/tokenizer.c alone; everything else
 * goes through llama/tokenizer.h. No C++ exception crosses this boundary:
 * each entry point catches and returns a negative errno with the detail in
 * reterr. */
#ifndef LADE_LLAMA_SP_SHIM_H
#define LADE_LLAMA_SP_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct llm_sp; /* opaque: owns a sentencepiece::SentencePieceProcessor */

/* Piece kinds as SentencePiece reports them. USER_DEFINED pieces report as
 * NORMAL: they decode the same way. */
enum llm_sp_kind {
    LLM_SP_NORMAL = 1,
    LLM_SP_UNKNOWN = 2,
    LLM_SP_CONTROL = 3,
    LLM_SP_UNUSED = 5,
    LLM_SP_BYTE = 6,
};

/* Load a tokenizer.model file. 0, or -ENOENT/-EINVAL/-ENOMEM with the
 * library's own message in reterr. */
int llm_sp_load_file(const char *path, struct llm_sp **ret, char *reterr, size_t errlen);

/* Load a serialized ModelProto (copied; the buffer may be freed after). */
int llm_sp_load_proto(const void *data, size_t len, struct llm_sp **ret, char *reterr,
                      size_t errlen);

/* Accepts NULL. */
void llm_sp_free(struct llm_sp *sp);

int32_t llm_sp_n_pieces(const struct llm_sp *sp);

/* The piece spelling of id (U+2581 for spaces, "<0xNN>" for bytes), valid
 * while sp lives; NULL when id is out of range. */
const char *llm_sp_piece(const struct llm_sp *sp, int32_t id, size_t *ret_len);

/* enum llm_sp_kind of id; 0 when id is out of range. */
int llm_sp_kind(const struct llm_sp *sp, int32_t id);

/* Special ids as the processor resolves them; -1 when the model has none. */
int32_t llm_sp_unk_id(const struct llm_sp *sp);
int32_t llm_sp_bos_id(const struct llm_sp *sp);
int32_t llm_sp_eos_id(const struct llm_sp *sp);
int32_t llm_sp_pad_id(const struct llm_sp *sp);

/* The model as the processor holds it, serialized, in a malloc'd buffer the
 * caller frees (the C side reads normalizer and trainer settings from it). */
int llm_sp_serialized(const struct llm_sp *sp, uint8_t **ret, size_t *ret_len, char *reterr,
                      size_t errlen);

/* SentencePiece's Encode (no BOS/EOS). Writes at most cap ids; *ret_n is the
 * full count, and -ENOSPC means cap was too small. */
int llm_sp_encode(const struct llm_sp *sp, const char *text, size_t len, int32_t *out, size_t cap,
                  size_t *ret_n, char *reterr, size_t errlen);

/* SentencePiece's DecodeIds. Writes the bytes and a NUL; *ret_n is the byte
 * count without the NUL, and -ENOSPC means cap < *ret_n + 1. Ids must be in
 * range (the caller checks). */
int llm_sp_decode(const struct llm_sp *sp, const int32_t *ids, size_t n, char *out, size_t cap,
                  size_t *ret_n, char *reterr, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
