/* The tokenizer behind llama/tokenizer.h. SentencePiece: tables for the
 * streaming detokenizer, the GGUF-to-ModelProto builder, and thin wrappers
 * over llama/sp_shim.h. Byte-level BPE lives in llama/bpe.c; this file
 * dispatches to it, and owns what both kinds share: special tokens in text,
 * the end-of-generation ids, the public entry points. */
#include "llama/tokenizer.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "llama/bpe.h"
#include "llama/gguf.h"
#include "llama/llm-internal.h"
#include "llama/sp_shim.h"
#include "llama/utf8.h"

/* A control, unknown or user-defined token that text can spell. */
struct tok_special {
    const char *s; /* its text, owned by sp or bpe */
    size_t len;
    int32_t id;
    bool always; /* matched without LLM_TOK_SPECIAL (BPE user-defined tokens) */
};

#define TOK_MAX_EOG 8

struct llm_tok {
    struct llm_sp *sp; /* SentencePiece, or NULL */
    struct llm_bpe *bpe; /* byte-level BPE, or NULL */
    int32_t n_vocab;
    int32_t bos, eos, unk, pad, eot, eom;
    int32_t eog[TOK_MAX_EOG]; /* every id that ends a generation */
    size_t n_eog;
    struct tok_special *special; /* sorted by text, bytewise, then by id */
    size_t n_special;
    bool special_first[256]; /* some special starts with this byte */
    bool has_always; /* some special is matched without the flag */
    bool add_bos;
    bool strip_bos_ws; /* normalizer add_dummy_prefix || remove_extra_whitespaces */
    bool remove_extra_ws; /* normalizer remove_extra_whitespaces */
    bool chunkable; /* encoding may be split at single spaces (encode_chunked) */
    uint8_t *kind; /* enum llm_sp_kind per id */
    uint8_t *lead_ws; /* 1 when the piece starts with U+2581 */
    uint32_t *text_off; /* n_vocab + 1 offsets into text */
    char *text; /* each id's output bytes, NUL after each */
    size_t max_text; /* longest entry of text */
};

static int tok_finish(struct llm_tok *tok, char *reterr, size_t errlen);

#define META_SPACE "\xE2\x96\x81" /* U+2581, SentencePiece's whitespace mark */
#define REPLACEMENT "\xEF\xBF\xBD" /* U+FFFD */
#define DEFAULT_UNK_SURFACE " \xE2\x81\x87 "

static void set_err(char *reterr, size_t errlen, const char *fmt, ...)
{
    if (!reterr || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reterr, errlen, fmt, ap);
    va_end(ap);
}

/* ---- UTF-8, with SentencePiece's own notion of validity ---------------- */

/* Bytes a character with this lead byte needs; 0 when it cannot lead. */
static size_t utf8_need(uint8_t lead)
{
    if (lead < 0x80)
        return 1;
    if ((lead & 0xE0) == 0xC0)
        return 2;
    if ((lead & 0xF0) == 0xE0)
        return 3;
    if ((lead & 0xF8) == 0xF0)
        return 4;
    return 0;
}

/* "<0xNN>" (upper-case hex, as SentencePiece spells byte pieces) → NN. */
static int byte_piece_value(const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>')
        return -1;
    const char *hi = memchr(hex, s[3], 16), *lo = memchr(hex, s[4], 16);
    if (!hi || !lo || s[3] == '\0' || s[4] == '\0')
        return -1;
    return (int)((hi - hex) * 16 + (lo - hex));
}

/* ---- protobuf wire format ----------------------------------------------- */

struct pb_reader {
    const uint8_t *p, *end;
};

static bool pb_varint(struct pb_reader *r, uint64_t *ret)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64 && r->p < r->end; shift += 7) {
        uint8_t c = *r->p++;
        v |= (uint64_t)(c & 0x7F) << shift;
        if (c < 0x80) {
            *ret = v;
            return true;
        }
    }
    return false;
}

/* Next field: number, wire type, and for varints the value, for
 * length-delimited fields the payload. False at the end or on damage. */
static bool pb_next(struct pb_reader *r, uint32_t *field, uint64_t *val, struct pb_reader *sub)
{
    uint64_t tag, len;
    if (r->p >= r->end || !pb_varint(r, &tag))
        return false;
    *field = (uint32_t)(tag >> 3);
    *val = 0;
    sub->p = sub->end = r->p;
    switch (tag & 7) {
    case 0: return pb_varint(r, val);
    case 1:
    case 5: len = (tag & 7) == 1 ? 8 : 4; break;
    case 2:
        if (!pb_varint(r, &len))
            return false;
        break;
    default: return false;
    }
    if (len > (uint64_t)(r->end - r->p))
        return false;
    sub->p = r->p;
    sub->end = r->p + len;
    r->p += len;
    return true;
}

/* What decoding needs from a ModelProto beyond the pieces. */
struct sp_settings {
    bool add_dummy_prefix, remove_extra_ws, escape_ws, ws_as_suffix, has_denormalizer;
    const uint8_t *unk_surface;
    size_t unk_surface_len;
};

static void pb_read_settings(const uint8_t *data, size_t len, struct sp_settings *s)
{
    struct pb_reader r = { data, data + len }, sub, f;
    uint32_t field, ff;
    uint64_t v, fv;
    *s = (struct sp_settings){ .add_dummy_prefix = true,
                               .remove_extra_ws = true,
                               .escape_ws = true,
                               .unk_surface = (const uint8_t *)DEFAULT_UNK_SURFACE,
                               .unk_surface_len = strlen(DEFAULT_UNK_SURFACE) };
    while (pb_next(&r, &field, &v, &sub)) {
        if (field != 2 && field != 3 && field != 5)
            continue;
        while (pb_next(&sub, &ff, &fv, &f)) {
            if (field == 2 && ff == 24)
                s->ws_as_suffix = fv != 0;
            else if (field == 2 && ff == 44) {
                s->unk_surface = f.p;
                s->unk_surface_len = (size_t)(f.end - f.p);
            } else if (field == 3 && ff == 3)
                s->add_dummy_prefix = fv != 0;
            else if (field == 3 && ff == 4)
                s->remove_extra_ws = fv != 0;
            else if (field == 3 && ff == 5)
                s->escape_ws = fv != 0;
            else if (field == 5 && ff == 2 && f.end > f.p)
                s->has_denormalizer = true;
        }
    }
}

struct pb_writer {
    uint8_t *buf;
    size_t n, cap;
    bool oom;
};

static void pb_put(struct pb_writer *w, const void *data, size_t len)
{
    if (w->oom)
        return;
    if (w->cap - w->n < len) {
        size_t cap = w->cap ? w->cap : 4096;
        while (cap - w->n < len)
            cap *= 2;
        uint8_t *b = realloc(w->buf, cap);
        if (!b) {
            w->oom = true;
            return;
        }
        w->buf = b;
        w->cap = cap;
    }
    memcpy(w->buf + w->n, data, len);
    w->n += len;
}

static void pb_put_varint(struct pb_writer *w, uint64_t v)
{
    uint8_t b[10];
    size_t n = 0;
    do {
        b[n++] = (uint8_t)((v & 0x7F) | (v > 0x7F ? 0x80 : 0));
        v >>= 7;
    } while (v);
    pb_put(w, b, n);
}

/* int32 fields are sign-extended to 64 bits on the wire, so -1 takes ten bytes. */
static void pb_put_int(struct pb_writer *w, uint32_t field, int64_t v)
{
    pb_put_varint(w, (uint64_t)field << 3);
    pb_put_varint(w, (uint64_t)v);
}

static void pb_put_bytes(struct pb_writer *w, uint32_t field, const void *data, size_t len)
{
    pb_put_varint(w, ((uint64_t)field << 3) | 2);
    pb_put_varint(w, len);
    pb_put(w, data, len);
}

static void pb_put_float(struct pb_writer *w, uint32_t field, float f)
{
    uint32_t bits;
    memcpy(&bits, &f, 4);
    uint8_t b[4] = { (uint8_t)bits, (uint8_t)(bits >> 8), (uint8_t)(bits >> 16),
                     (uint8_t)(bits >> 24) };
    pb_put_varint(w, ((uint64_t)field << 3) | 5);
    pb_put(w, b, 4);
}

/* ---- tables shared by both loaders -------------------------------------- */

/* Output bytes of one piece out of context, as SentencePiece's decoder makes
 * them. Writes to dst when not NULL; returns the length, or -1 when the
 * piece cannot be represented (invalid UTF-8, malformed byte piece). */
static long piece_surface(const char *p, size_t len, int kind, const struct sp_settings *s,
                          char *dst)
{
    if (kind == LLM_SP_CONTROL)
        return 0;
    if (kind == LLM_SP_UNKNOWN) {
        if (dst)
            memcpy(dst, s->unk_surface, s->unk_surface_len);
        return (long)s->unk_surface_len;
    }
    if (kind == LLM_SP_BYTE) {
        int b = byte_piece_value(p, len);
        if (b >= 0 && dst)
            dst[0] = (char)b;
        return b < 0 ? -1 : 1;
    }
    if (!llm_utf8_valid(p, len) || memchr(p, '\0', len))
        return -1;
    long n = 0;
    for (size_t i = 0; i < len;) {
        bool meta = len - i >= 3 && memcmp(p + i, META_SPACE, 3) == 0;
        if (dst)
            dst[n] = meta ? ' ' : p[i];
        n++;
        i += meta ? 3 : 1;
    }
    return n;
}

static int tok_alloc_tables(struct llm_tok *tok, int32_t n, size_t text_bytes)
{
    tok->kind = calloc((size_t)n, 1);
    tok->lead_ws = calloc((size_t)n, 1);
    tok->text_off = calloc((size_t)n + 1, sizeof(*tok->text_off));
    tok->text = malloc(text_bytes + (size_t)n);
    if (!tok->kind || !tok->lead_ws || !tok->text_off || !tok->text)
        return -ENOMEM;
    return 0;
}

/* Two passes over the vocabulary: sizes and validation, then the bytes. */
static int tok_build_tables(struct llm_tok *tok, const struct sp_settings *s, char *reterr,
                            size_t errlen)
{
    int32_t n = llm_sp_n_pieces(tok->sp);
    size_t total = 0, len;
    if (n <= 0) {
        set_err(reterr, errlen, "tokenizer has no pieces");
        return -EINVAL;
    }
    for (int32_t i = 0; i < n; i++) {
        const char *p = llm_sp_piece(tok->sp, i, &len);
        long m = piece_surface(p, len, llm_sp_kind(tok->sp, i), s, NULL);
        if (m < 0) {
            set_err(reterr, errlen, "piece %d is not valid UTF-8 (or a malformed byte piece)",
                    (int)i);
            return -EINVAL;
        }
        total += (size_t)m;
        if ((size_t)m > tok->max_text)
            tok->max_text = (size_t)m;
    }
    if (total + (size_t)n > UINT32_MAX || tok_alloc_tables(tok, n, total) < 0) {
        set_err(reterr, errlen, "out of memory for %d pieces", (int)n);
        return -ENOMEM;
    }
    size_t off = 0;
    for (int32_t i = 0; i < n; i++) {
        const char *p = llm_sp_piece(tok->sp, i, &len);
        int kind = llm_sp_kind(tok->sp, i);
        tok->kind[i] = (uint8_t)kind;
        tok->lead_ws[i] = kind != LLM_SP_BYTE && len >= 3 && !memcmp(p, META_SPACE, 3);
        tok->text_off[i] = (uint32_t)off;
        off += (size_t)piece_surface(p, len, kind, s, tok->text + off);
        tok->text[off++] = '\0';
    }
    tok->text_off[n] = (uint32_t)off;
    tok->n_vocab = n;
    return 0;
}

/* Whether a piece holds U+2581 after a character that is not U+2581: such
 * a piece could join a word to the next one across a space, and encoding a
 * text in chunks split at spaces would not match encoding it whole. */
static bool pieces_cross_words(const struct llm_sp *sp)
{
    int32_t n = llm_sp_n_pieces(sp);
    size_t len;

    for (int32_t i = 0; i < n; i++) {
        const char *p = llm_sp_piece(sp, i, &len);
        for (size_t j = 1; j + 3 <= len; j++)
            if (!memcmp(p + j, META_SPACE, 3) && (j < 3 || memcmp(p + j - 3, META_SPACE, 3)))
                return true;
    }
    return false;
}

/* Takes ownership of sp. Reads the decoder settings back from the model the
 * processor actually holds, so both loaders describe it the same way. */
static int tok_from_sp(struct llm_sp *sp, struct llm_tok **ret, char *reterr, size_t errlen)
{
    struct sp_settings s;
    uint8_t *proto = NULL;
    size_t proto_len;
    struct llm_tok *tok = calloc(1, sizeof(*tok));
    if (!tok) {
        llm_sp_free(sp);
        set_err(reterr, errlen, "out of memory");
        return -ENOMEM;
    }
    tok->sp = sp;
    int r = llm_sp_serialized(sp, &proto, &proto_len, reterr, errlen);
    if (r < 0)
        goto fail;
    pb_read_settings(proto, proto_len, &s);
    r = -ENOTSUP;
    if (s.ws_as_suffix) {
        set_err(reterr, errlen, "treat_whitespace_as_suffix models are not supported");
        goto fail;
    }
    if (s.has_denormalizer) {
        set_err(reterr, errlen, "models with denormalization rules are not supported");
        goto fail;
    }
    r = -EINVAL;
    if (!llm_utf8_valid((const char *)s.unk_surface, s.unk_surface_len)) {
        set_err(reterr, errlen, "unk_surface is not valid UTF-8");
        goto fail;
    }
    r = tok_build_tables(tok, &s, reterr, errlen);
    if (r < 0)
        goto fail;
    tok->strip_bos_ws = s.add_dummy_prefix || s.remove_extra_ws;
    tok->remove_extra_ws = s.remove_extra_ws;
    tok->chunkable = s.add_dummy_prefix && s.escape_ws && !pieces_cross_words(sp);
    tok->unk = llm_sp_unk_id(sp);
    tok->bos = llm_sp_bos_id(sp);
    tok->eos = llm_sp_eos_id(sp);
    tok->pad = llm_sp_pad_id(sp);
    tok->eot = tok->eom = -1;
    tok->add_bos = true;
    r = tok_finish(tok, reterr, errlen);
    if (r < 0)
        goto fail;
    free(proto);
    *ret = tok;
    return 0;
fail:
    free(proto);
    llm_tok_free(tok);
    return r;
}

int llm_tok_load_file(const char *path, struct llm_tok **ret, char *reterr, size_t errlen)
{
    struct llm_sp *sp;
    *ret = NULL;
    if (!path) {
        set_err(reterr, errlen, "no tokenizer path");
        return -EINVAL;
    }
    /* SentencePiece opens the path itself: refuse a FIFO or device first */
    struct stat st;
    int r = llm_open_regular(path, &st, reterr, errlen);
    if (r < 0)
        return r;
    close(r);
    r = llm_sp_load_file(path, &sp, reterr, errlen);
    if (r < 0)
        return r;
    r = tok_from_sp(sp, ret, reterr, errlen);
    if (r < 0 && reterr && errlen > 0) {
        /* Name the file in front of the detail. */
        char detail[256];
        snprintf(detail, sizeof(detail), "%s", reterr);
        set_err(reterr, errlen, "%s: %s", path, detail);
    }
    return r;
}

void llm_tok_free(struct llm_tok *tok)
{
    if (!tok)
        return;
    llm_sp_free(tok->sp);
    llm_bpe_free(tok->bpe);
    free(tok->special);
    free(tok->kind);
    free(tok->lead_ws);
    free(tok->text_off);
    free(tok->text);
    free(tok);
}

/* ---- GGUF vocabulary → SentencePiece ModelProto -------------------------
 *
 * What the GGUF does not carry, and why the choice below is exact here:
 * - Model type: BPE. A "llama" GGUF vocabulary is SentencePiece's BPE model
 *   (scores are merge priorities: 0, -1, -2, ... in both shipped models,
 *   whose tokenizer.model files say model_type BPE), and llama.cpp's own
 *   "llama" tokenizer merges by score, which is SentencePiece's BPE.
 * - Normalizer: identity with no charsmap. Both tokenizer.model files are
 *   "identity" with an empty precompiled_charsmap, so nothing is lost; a GGUF
 *   that does carry tokenizer.ggml.precompiled_charsmap is refused rather
 *   than tokenized inexactly.
 * - add_dummy_prefix: tokenizer.ggml.add_space_prefix, default true (both
 *   models say true).
 * - remove_extra_whitespaces: tokenizer.ggml.remove_extra_whitespaces when
 *   present. Otherwise it is inferred from the vocabulary: a trainer that
 *   removes extra whitespace never sees two U+2581 in a row, so a piece that
 *   holds "▁▁" proves whitespace was kept (kernelc-22m: 11 such pieces,
 *   tokenizer.model says false); without one we keep SentencePiece's default
 *   of true (stories260K: none, tokenizer.model says true).
 * - escape_whitespaces true and byte_fallback when the vocabulary has byte
 *   pieces, as both models were trained. */

struct gguf_vocab {
    const struct llm_gguf_kv *tokens;
    const uint8_t *scores; /* n packed little-endian f32 */
    const uint8_t *types; /* n packed little-endian i32 */
    uint64_t n;
    int32_t unk, bos, eos, pad, eot, eom;
    bool is_bpe; /* tokenizer.ggml.model "gpt2" */
    bool add_bos, has_add_bos, add_space_prefix, remove_extra_ws, has_byte;
};

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static float le_f32(const uint8_t *p)
{
    uint32_t bits = le32(p);
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* A 4-byte array (f32 scores or i32/u32 types) of exactly n elements. */
static int gguf_arr4(const struct llm_gguf *g, const char *key, bool want_float, uint64_t n,
                     const uint8_t **ret, char *reterr, size_t errlen)
{
    const struct llm_gguf_kv *kv = llm_gguf_find_kv(g, key);
    const char *name = llm_gguf_name(g);
    if (!kv) {
        set_err(reterr, errlen, "%s: %s is missing", name, key);
        return -EINVAL;
    }
    bool ok = kv->type == LLM_GGUF_ARRAY &&
              (want_float ? kv->arr_type == LLM_GGUF_F32 :
                            kv->arr_type == LLM_GGUF_I32 || kv->arr_type == LLM_GGUF_U32);
    if (!ok) {
        set_err(reterr, errlen, "%s: %s must be an array of %s", name, key,
                want_float ? "float32" : "int32");
        return -EINVAL;
    }
    if (kv->arr_n != n) {
        set_err(reterr, errlen, "%s: %s has %llu entries but tokenizer.ggml.tokens has %llu", name,
                key, (unsigned long long)kv->arr_n, (unsigned long long)n);
        return -EINVAL;
    }
    *ret = kv->v.arr;
    return 0;
}

/* An optional token id: absent, negative or 0xFFFFFFFF (how converters
 * write "none") give -1; anything else must be a vocabulary index. */
static int gguf_opt_id(const struct llm_gguf *g, const char *key, uint64_t n, int32_t *ret,
                       char *reterr, size_t errlen)
{
    const struct llm_gguf_kv *kv = llm_gguf_find_kv(g, key);
    *ret = -1;
    if (!kv)
        return 0;
    int64_t v;
    switch (kv->type) {
    case LLM_GGUF_U8:
    case LLM_GGUF_U16:
    case LLM_GGUF_U32:
    case LLM_GGUF_U64:
        if (kv->v.u64 == UINT32_MAX || kv->v.u64 == UINT64_MAX)
            return 0;
        v = kv->v.u64 > INT64_MAX ? INT64_MAX : (int64_t)kv->v.u64;
        break;
    case LLM_GGUF_I8:
    case LLM_GGUF_I16:
    case LLM_GGUF_I32:
    case LLM_GGUF_I64:
        if (kv->v.i64 < 0)
            return 0;
        v = kv->v.i64;
        break;
    default:
        set_err(reterr, errlen, "%s: %s must be an integer", llm_gguf_name(g), key);
        return -EINVAL;
    }
    if ((uint64_t)v >= n) {
        set_err(reterr, errlen, "%s: %s = %lld is out of range (vocabulary has %llu tokens)",
                llm_gguf_name(g), key, (long long)v, (unsigned long long)n);
        return -EINVAL;
    }
    *ret = (int32_t)v;
    return 0;
}

/* An optional bool: -ENOENT leaves *ret at its default. */
static int gguf_opt_bool(const struct llm_gguf *g, const char *key, bool *ret, char *reterr,
                         size_t errlen)
{
    int r = llm_gguf_get_bool(g, key, ret, reterr, errlen);
    return r == -ENOENT ? 0 : r;
}

static int gguf_read_vocab(const struct llm_gguf *g, struct gguf_vocab *v, char *reterr,
                           size_t errlen)
{
    const char *name = llm_gguf_name(g);
    struct llm_gguf_str model;
    int r = llm_gguf_get_str(g, "tokenizer.ggml.model", &model, reterr, errlen);
    if (r == -ENOENT)
        set_err(reterr, errlen, "%s: tokenizer.ggml.model is missing", name);
    if (r < 0)
        return -EINVAL;
    v->is_bpe = model.len == 4 && memcmp(model.ptr, "gpt2", 4) == 0;
    if (!v->is_bpe && (model.len != 5 || memcmp(model.ptr, "llama", 5) != 0)) {
        set_err(reterr, errlen,
                "%s: tokenizer.ggml.model is \"%.*s\"; only \"llama\" "
                "(SentencePiece) and \"gpt2\" (byte-level BPE) are supported",
                name, (int)(model.len > 64 ? 64 : model.len), model.ptr);
        return -ENOTSUP;
    }
    v->tokens = llm_gguf_find_kv(g, "tokenizer.ggml.tokens");
    if (!v->tokens || v->tokens->type != LLM_GGUF_ARRAY || v->tokens->arr_type != LLM_GGUF_STRING) {
        set_err(reterr, errlen, "%s: tokenizer.ggml.tokens is %s", name,
                v->tokens ? "not an array of strings" : "missing");
        return -EINVAL;
    }
    v->n = v->tokens->arr_n;
    if (v->n == 0 || v->n > INT32_MAX) {
        set_err(reterr, errlen, "%s: tokenizer.ggml.tokens has %llu entries", name,
                (unsigned long long)v->n);
        return -EINVAL;
    }
    /* Byte-level BPE ranks merges, not pieces: its scores, if any, are unused. */
    if ((!v->is_bpe &&
         (r = gguf_arr4(g, "tokenizer.ggml.scores", true, v->n, &v->scores, reterr, errlen))) ||
        (r = gguf_arr4(g, "tokenizer.ggml.token_type", false, v->n, &v->types, reterr, errlen)))
        return r;
    if ((r = gguf_opt_id(g, "tokenizer.ggml.unknown_token_id", v->n, &v->unk, reterr, errlen)) ||
        (r = gguf_opt_id(g, "tokenizer.ggml.bos_token_id", v->n, &v->bos, reterr, errlen)) ||
        (r = gguf_opt_id(g, "tokenizer.ggml.eos_token_id", v->n, &v->eos, reterr, errlen)) ||
        (r = gguf_opt_id(g, "tokenizer.ggml.padding_token_id", v->n, &v->pad, reterr, errlen)) ||
        (r = gguf_opt_id(g, "tokenizer.ggml.eot_token_id", v->n, &v->eot, reterr, errlen)) ||
        (r = gguf_opt_id(g, "tokenizer.ggml.eom_token_id", v->n, &v->eom, reterr, errlen)))
        return r;
    v->add_bos = true;
    v->has_add_bos = llm_gguf_find_kv(g, "tokenizer.ggml.add_bos_token") != NULL;
    v->add_space_prefix = true;
    if ((r = gguf_opt_bool(g, "tokenizer.ggml.add_bos_token", &v->add_bos, reterr, errlen)) ||
        (r = gguf_opt_bool(g, "tokenizer.ggml.add_space_prefix", &v->add_space_prefix, reterr,
                           errlen)))
        return r;
    const struct llm_gguf_kv *cm = llm_gguf_find_kv(g, "tokenizer.ggml.precompiled_charsmap");
    if (cm && !(cm->type == LLM_GGUF_ARRAY && cm->arr_n == 0)) {
        set_err(reterr, errlen, "%s: tokenizer.ggml.precompiled_charsmap is not supported", name);
        return -ENOTSUP;
    }
    return 0;
}

/* Per-token checks, so that a bad vocabulary fails with the token's index
 * rather than with whatever SentencePiece makes of it. Also finds the
 * UNKNOWN token and infers remove_extra_whitespaces (see above). */
static int gguf_check_tokens(const struct llm_gguf *g, struct gguf_vocab *v, char *reterr,
                             size_t errlen)
{
    const char *name = llm_gguf_name(g);
    int64_t unk = -1;
    bool has_ws_run = false;
    for (uint64_t i = 0; i < v->n; i++) {
        struct llm_gguf_str s;
        int32_t type = (int32_t)le32(v->types + 4 * i);
        if (llm_gguf_arr_str(g, v->tokens, i, &s) < 0 || s.len == 0 ||
            !llm_utf8_valid(s.ptr, s.len) || memchr(s.ptr, '\0', s.len)) {
            set_err(reterr, errlen, "%s: token %llu is empty, has a NUL or is not valid UTF-8",
                    name, (unsigned long long)i);
            return -EINVAL;
        }
        if (type < 1 || type > 6) {
            set_err(reterr, errlen, "%s: token %llu has type %d (valid: 1..6)", name,
                    (unsigned long long)i, (int)type);
            return -EINVAL;
        }
        if (!isfinite(le_f32(v->scores + 4 * i))) {
            set_err(reterr, errlen, "%s: token %llu has a score that is not finite", name,
                    (unsigned long long)i);
            return -EINVAL;
        }
        if (type == LLM_SP_BYTE && byte_piece_value(s.ptr, (size_t)s.len) < 0) {
            set_err(reterr, errlen, "%s: byte token %llu is \"%.*s\", not <0xNN>", name,
                    (unsigned long long)i, (int)(s.len > 32 ? 32 : s.len), s.ptr);
            return -EINVAL;
        }
        if (type == LLM_SP_UNKNOWN && unk >= 0) {
            set_err(reterr, errlen, "%s: tokens %lld and %llu both have type UNKNOWN", name,
                    (long long)unk, (unsigned long long)i);
            return -EINVAL;
        }
        if (type == LLM_SP_UNKNOWN)
            unk = (int64_t)i;
        v->has_byte |= type == LLM_SP_BYTE;
        if ((type == 1 || type == 4) && s.len >= 6 &&
            memmem(s.ptr, s.len, META_SPACE META_SPACE, 6))
            has_ws_run = true;
    }
    if (unk < 0 || (v->unk >= 0 && v->unk != unk)) {
        set_err(reterr, errlen,
                unk < 0 ? "%s: no token has type UNKNOWN (SentencePiece needs one)" :
                          "%s: tokenizer.ggml.unknown_token_id is not the token "
                          "of type UNKNOWN",
                name);
        return -EINVAL;
    }
    v->unk = (int32_t)unk;
    v->remove_extra_ws = !has_ws_run;
    return gguf_opt_bool(g, "tokenizer.ggml.remove_extra_whitespaces", &v->remove_extra_ws, reterr,
                         errlen);
}

static void gguf_put_piece_name(const struct llm_gguf *g, const struct gguf_vocab *v,
                                struct pb_writer *w, uint32_t field, int32_t id)
{
    struct llm_gguf_str s;
    if (id >= 0 && llm_gguf_arr_str(g, v->tokens, (uint64_t)id, &s) == 0)
        pb_put_bytes(w, field, s.ptr, (size_t)s.len);
}

/* TrainerSpec and NormalizerSpec fields, numbered as in sentencepiece_model.proto. */
static void gguf_put_specs(const struct llm_gguf *g, const struct gguf_vocab *v,
                           struct pb_writer *w, struct pb_writer *sub)
{
    sub->n = 0;
    pb_put_int(sub, 3, 2); /* model_type = BPE */
    pb_put_int(sub, 4, (int64_t)v->n);
    pb_put_int(sub, 35, v->has_byte);
    pb_put_int(sub, 40, v->unk);
    pb_put_int(sub, 41, v->bos);
    pb_put_int(sub, 42, v->eos);
    pb_put_int(sub, 43, v->pad);
    gguf_put_piece_name(g, v, sub, 45, v->unk);
    gguf_put_piece_name(g, v, sub, 46, v->bos);
    gguf_put_piece_name(g, v, sub, 47, v->eos);
    gguf_put_piece_name(g, v, sub, 48, v->pad);
    pb_put_bytes(w, 2, sub->buf, sub->n);

    sub->n = 0;
    pb_put_bytes(sub, 1, "identity", 8);
    pb_put_int(sub, 3, v->add_space_prefix);
    pb_put_int(sub, 4, v->remove_extra_ws);
    pb_put_int(sub, 5, 1); /* escape_whitespaces */
    pb_put_bytes(w, 3, sub->buf, sub->n);
}

static int gguf_build_proto(const struct llm_gguf *g, const struct gguf_vocab *v,
                            struct pb_writer *w)
{
    struct pb_writer sub = { 0 };
    for (uint64_t i = 0; i < v->n; i++) {
        struct llm_gguf_str s;
        llm_gguf_arr_str(g, v->tokens, i, &s); /* checked in gguf_check_tokens */
        sub.n = 0;
        pb_put_bytes(&sub, 1, s.ptr, (size_t)s.len);
        pb_put_float(&sub, 2, le_f32(v->scores + 4 * i));
        pb_put_int(&sub, 3, (int32_t)le32(v->types + 4 * i));
        pb_put_bytes(w, 1, sub.buf, sub.n);
    }
    gguf_put_specs(g, v, w, &sub);
    bool oom = w->oom || sub.oom;
    free(sub.buf);
    return oom ? -ENOMEM : 0;
}

/* SentencePiece reports USER_DEFINED as NORMAL; everything else must agree. */
static int gguf_cross_check(const struct llm_tok *tok, const struct gguf_vocab *v, char *reterr,
                            size_t errlen)
{
    if ((uint64_t)tok->n_vocab != v->n) {
        set_err(reterr, errlen, "SentencePiece kept %d of %llu tokens", (int)tok->n_vocab,
                (unsigned long long)v->n);
        return -EINVAL;
    }
    for (int32_t i = 0; i < tok->n_vocab; i++) {
        int want = (int)le32(v->types + 4 * (size_t)i);
        if (want == 4)
            want = LLM_SP_NORMAL;
        if (tok->kind[i] != want) {
            set_err(reterr, errlen, "SentencePiece reads token %d as type %d, GGUF says %d", (int)i,
                    tok->kind[i], want);
            return -EINVAL;
        }
    }
    return 0;
}

static void tok_set_ids(struct llm_tok *tok, const struct gguf_vocab *v)
{
    tok->unk = v->unk;
    tok->bos = v->bos;
    tok->eos = v->eos;
    tok->pad = v->pad;
    tok->eot = v->eot;
    tok->eom = v->eom;
}

static int tok_from_bpe(const struct llm_gguf *g, const struct gguf_vocab *v, struct llm_tok **ret,
                        char *reterr, size_t errlen)
{
    struct llm_tok *tok = calloc(1, sizeof(*tok));
    if (!tok) {
        set_err(reterr, errlen, "%s: out of memory", llm_gguf_name(g));
        return -ENOMEM;
    }
    int r = llm_bpe_load_gguf(g, v->tokens, v->types, (int32_t)v->n, &tok->bpe, reterr, errlen);
    if (r == 0) {
        tok->n_vocab = (int32_t)v->n;
        tok_set_ids(tok, v);
        tok->add_bos = v->has_add_bos ? v->add_bos : llm_bpe_default_add_bos(tok->bpe);
        r = tok_finish(tok, reterr, errlen);
    }
    if (r < 0) {
        llm_tok_free(tok);
        return r;
    }
    *ret = tok;
    return 0;
}

int llm_tok_load_gguf(const struct llm_gguf *g, struct llm_tok **ret, char *reterr, size_t errlen)
{
    struct gguf_vocab v = { 0 };
    struct pb_writer w = { 0 };
    struct llm_sp *sp;
    struct llm_tok *tok = NULL;
    *ret = NULL;
    int r = gguf_read_vocab(g, &v, reterr, errlen);
    if (r == 0 && v.is_bpe)
        return tok_from_bpe(g, &v, ret, reterr, errlen);
    if (r == 0)
        r = gguf_check_tokens(g, &v, reterr, errlen);
    if (r < 0)
        return r;
    if (gguf_build_proto(g, &v, &w) < 0) {
        free(w.buf);
        set_err(reterr, errlen, "%s: out of memory building the vocabulary", llm_gguf_name(g));
        return -ENOMEM;
    }
    r = llm_sp_load_proto(w.buf, w.n, &sp, reterr, errlen);
    free(w.buf);
    if (r == 0)
        r = tok_from_sp(sp, &tok, reterr, errlen);
    if (r == 0)
        r = gguf_cross_check(tok, &v, reterr, errlen);
    if (r == 0) {
        tok_set_ids(tok, &v);
        tok->add_bos = v.add_bos;
        r = tok_finish(tok, reterr, errlen);
    }
    if (r < 0) {
        llm_tok_free(tok);
        return r;
    }
    *ret = tok;
    return 0;
}

/* ---- special tokens and end of generation --------------------------------
 * Text can spell a token that no split of it would reach: a control token
 * (<|eot_id|>, </s>, [INST] where it is one), the unknown token, or a BPE
 * user-defined token (<think>). With LLM_TOK_SPECIAL such text becomes the
 * token, the longest at the leftmost position first, as Hugging Face's
 * added-token splitter does; without it only user-defined BPE tokens are
 * matched (Hugging Face splits those out always; SentencePiece's own
 * encoder already matches its user-defined pieces). */

/* Texts that end a turn in the chat formats lade serves, when the model's
 * token of that text is a control token: Llama 3 (<|eot_id|>, <|eom_id|>,
 * <|end_of_text|>), ChatML (<|im_end|>, <|endoftext|>), Gemma. */
static const char *const eog_texts[] = {
    "<|eot_id|>", "<|eom_id|>", "<|end_of_text|>", "<|im_end|>", "<|endoftext|>", "<end_of_turn>",
};

static int special_cmp(const void *a, const void *b)
{
    const struct tok_special *x = a, *y = b;
    int c = memcmp(x->s, y->s, x->len < y->len ? x->len : y->len);
    if (c == 0)
        c = x->len < y->len ? -1 : x->len > y->len;
    return c ? c : (x->id > y->id) - (x->id < y->id);
}

/* Text and type of id as special-token matching sees them. */
static const char *tok_text(const struct llm_tok *tok, int32_t id, size_t *len, int *type)
{
    if (tok->bpe) {
        *type = llm_bpe_type(tok->bpe, id);
        return llm_bpe_text(tok->bpe, id, len);
    }
    *type = tok->kind[id];
    return llm_sp_piece(tok->sp, id, len);
}

static void eog_add(struct llm_tok *tok, int32_t id)
{
    for (size_t i = 0; i < tok->n_eog; i++)
        if (tok->eog[i] == id)
            return;
    if (id >= 0 && tok->n_eog < TOK_MAX_EOG)
        tok->eog[tok->n_eog++] = id;
}

/* The special-token table and the end-of-generation ids, once the ids are
 * final (called again when the GGUF overrides them). */
static int tok_finish(struct llm_tok *tok, char *reterr, size_t errlen)
{
    size_t n = 0, len;
    int type;
    free(tok->special);
    tok->special = NULL;
    tok->n_special = tok->n_eog = 0;
    tok->has_always = false;
    memset(tok->special_first, 0, sizeof(tok->special_first));
    eog_add(tok, tok->eos);
    eog_add(tok, tok->eot);
    eog_add(tok, tok->eom);
    for (int pass = 0; pass < 2; pass++) {
        for (int32_t id = 0; id < tok->n_vocab; id++) {
            const char *s = tok_text(tok, id, &len, &type);
            bool always = tok->bpe && type == LLM_TOK_TYPE_USER_DEFINED;
            if (len == 0 ||
                !(always || type == LLM_TOK_TYPE_CONTROL || type == LLM_TOK_TYPE_UNKNOWN))
                continue;
            if (pass == 1) {
                tok->special[n] = (struct tok_special){ s, len, id, always };
                tok->special_first[(uint8_t)s[0]] = true;
                tok->has_always |= always;
                for (size_t k = 0;
                     type == LLM_TOK_TYPE_CONTROL && k < sizeof(eog_texts) / sizeof(eog_texts[0]);
                     k++)
                    if (strlen(eog_texts[k]) == len && !memcmp(eog_texts[k], s, len))
                        eog_add(tok, id);
            }
            n++;
        }
        if (pass == 0) {
            tok->special = malloc((n ? n : 1) * sizeof(*tok->special));
            if (!tok->special) {
                set_err(reterr, errlen, "out of memory for %zu special tokens", n);
                return -ENOMEM;
            }
            tok->n_special = n;
            n = 0;
        }
    }
    qsort(tok->special, tok->n_special, sizeof(*tok->special), special_cmp);
    return 0;
}

/* The longest special token s[0..n) starts with that may match (all: with
 * LLM_TOK_SPECIAL), or NULL. Narrows the sorted table one byte at a time:
 * [lo, hi) holds the tokens whose first k bytes are s's, the ones exactly k
 * bytes long first. */
static const struct tok_special *special_at(const struct llm_tok *tok, const char *s, size_t n,
                                            bool all)
{
    const struct tok_special *t = tok->special, *best = NULL;
    size_t lo = 0, hi = tok->n_special;
    for (size_t k = 0; lo < hi; k++) {
        for (size_t i = lo; i < hi && t[i].len == k; i++)
            if (all || t[i].always) {
                best = &t[i];
                break;
            }
        while (lo < hi && t[lo].len == k)
            lo++;
        if (k == n)
            break;
        uint8_t c = (uint8_t)s[k];
        size_t a = lo, b = hi;
        while (a < b) {
            size_t m = a + (b - a) / 2;
            if ((uint8_t)t[m].s[k] < c)
                a = m + 1;
            else
                b = m;
        }
        lo = a;
        b = hi;
        while (a < b) {
            size_t m = a + (b - a) / 2;
            if ((uint8_t)t[m].s[k] <= c)
                a = m + 1;
            else
                b = m;
        }
        hi = a;
    }
    return best;
}

bool llm_tok_is_eog(const struct llm_tok *tok, int32_t id)
{
    for (size_t i = 0; i < tok->n_eog; i++)
        if (tok->eog[i] == id)
            return true;
    return false;
}

size_t llm_tok_eog(const struct llm_tok *tok, const int32_t **ret_ids)
{
    *ret_ids = tok->eog;
    return tok->n_eog;
}

/* ---- encoding, decoding, pieces ----------------------------------------- */

int32_t llm_tok_n_vocab(const struct llm_tok *tok)
{
    return tok->n_vocab;
}

int32_t llm_tok_bos(const struct llm_tok *tok)
{
    return tok->bos;
}

int32_t llm_tok_eos(const struct llm_tok *tok)
{
    return tok->eos;
}

int32_t llm_tok_unk(const struct llm_tok *tok)
{
    return tok->unk;
}

int32_t llm_tok_pad(const struct llm_tok *tok)
{
    return tok->pad;
}

int32_t llm_tok_eot(const struct llm_tok *tok)
{
    return tok->eot;
}

int32_t llm_tok_eom(const struct llm_tok *tok)
{
    return tok->eom;
}

bool llm_tok_add_bos(const struct llm_tok *tok)
{
    return tok->add_bos;
}

const char *llm_tok_model(const struct llm_tok *tok)
{
    return tok->bpe ? "gpt2" : "llama";
}

const char *llm_tok_pre(const struct llm_tok *tok)
{
    return tok->bpe ? llm_bpe_pre(tok->bpe) : NULL;
}

/* SentencePiece needs tens of bytes per input byte to encode (its symbol
 * lists and merge queue), so a long text is encoded in chunks of about this
 * many bytes: the peak stays a small multiple of the input. */
#define ENCODE_CHUNK ((size_t)64 << 10)

static bool is_word_byte(char c)
{
    return c > ' ' && c < 0x7F;
}

/* Where the chunk from `from` ends: a single space between two printable
 * ASCII bytes at or after from + ENCODE_CHUNK, else len. Such a space is
 * one U+2581 between two characters that normalize to themselves; with the
 * dummy prefix, the next chunk's leading U+2581 stands for it, and no piece
 * spans it (pieces_cross_words), so the chunks' ids are the whole text's. */
static size_t chunk_end(const char *text, size_t len, size_t from)
{
    for (size_t i = from + ENCODE_CHUNK; i + 1 < len; i++)
        if (text[i] == ' ' && is_word_byte(text[i - 1]) && is_word_byte(text[i + 1]))
            return i;
    return len;
}

/* SentencePiece only (tok->sp): the ids of text, chunked when the
 * vocabulary allows it (chunkable is never set for BPE); *ret_n counts them
 * all even past cap (-ENOSPC), as llm_sp_encode does. */
static int encode_chunked(const struct llm_tok *tok, const char *text, size_t len, int32_t *out,
                          size_t cap, size_t *ret_n)
{
    size_t n = 0, pos = 0;
    int r = 0;

    do {
        size_t end = tok->chunkable ? chunk_end(text, len, pos) : len, got = 0;
        int k = llm_sp_encode(tok->sp, text + pos, end - pos, n < cap ? out + n : NULL,
                              n < cap ? cap - n : 0, &got, NULL, 0);
        if (k < 0 && k != -ENOSPC)
            return k;
        if (k == -ENOSPC)
            r = k;
        n += got;
        pos = end + 1; /* past the space */
    } while (pos < len);
    *ret_n = n;
    return r;
}

/* Text with no special token in it. */
static int encode_plain(const struct llm_tok *tok, const char *text, size_t len,
                        struct llm_ids *ids)
{
    size_t n = 0;
    if (len == 0)
        return 0;
    if (tok->bpe)
        return llm_bpe_encode(tok->bpe, text, len, ids);
    int r = encode_chunked(tok, text, len, ids->v ? ids->v + ids->n : NULL, ids->cap - ids->n, &n);
    if (r == -ENOSPC && (r = llm_ids_reserve(ids, ids->n + n)) == 0)
        r = encode_chunked(tok, text, len, ids->v + ids->n, ids->cap - ids->n, &n);
    if (r == 0)
        ids->n += n;
    return r;
}

/* Split text at the special tokens that may match; encode the rest. */
static int encode_segments(const struct llm_tok *tok, const char *text, size_t len, bool all,
                           struct llm_ids *ids)
{
    size_t start = 0;
    int r = 0;
    for (size_t i = 0; r == 0 && i < len && (all || tok->has_always);) {
        const struct tok_special *m = tok->special_first[(uint8_t)text[i]] ?
                                              special_at(tok, text + i, len - i, all) :
                                              NULL;
        if (!m) {
            i++;
            continue;
        }
        r = encode_plain(tok, text + start, i - start, ids);
        if (r == 0)
            r = llm_ids_push(ids, m->id);
        i += m->len;
        start = i;
    }
    return r ? r : encode_plain(tok, text + start, len - start, ids);
}

int llm_tok_encode(const struct llm_tok *tok, const char *text, size_t len, unsigned flags,
                   int32_t *out, size_t cap, size_t *ret_n)
{
    bool add_bos = flags & LLM_TOK_ADD_BOS;
    size_t n = 0, head = add_bos ? 1 : 0;
    *ret_n = 0;
    if ((!text && len > 0) || (add_bos && tok->bos < 0) || (!out && cap > 0) ||
        (flags & ~(LLM_TOK_ADD_BOS | LLM_TOK_SPECIAL)))
        return -EINVAL;
    if (len > LLM_TOK_MAX_TEXT)
        return -E2BIG;
    if (tok->bpe || (flags & LLM_TOK_SPECIAL)) {
        struct llm_ids ids = { 0 };
        int r = add_bos ? llm_ids_push(&ids, tok->bos) : 0;
        if (r == 0)
            r = encode_segments(tok, text, len, flags & LLM_TOK_SPECIAL, &ids);
        if (r == 0) {
            *ret_n = ids.n;
            if (ids.n > 0 && cap > 0)
                memcpy(out, ids.v, (ids.n < cap ? ids.n : cap) * sizeof(*out));
            r = ids.n > cap ? -ENOSPC : 0;
        }
        free(ids.v);
        return r;
    }
    int r = encode_chunked(tok, text ? text : "", len, cap > head ? out + head : NULL,
                           cap > head ? cap - head : 0, &n);
    if (r < 0 && r != -ENOSPC)
        return r;
    *ret_n = n + head;
    if (*ret_n > cap)
        return -ENOSPC;
    if (add_bos)
        out[0] = tok->bos;
    return 0;
}

const char *llm_tok_piece(const struct llm_tok *tok, int32_t id, size_t *ret_len)
{
    if (tok->bpe)
        return llm_bpe_piece(tok->bpe, id, ret_len);
    if (id < 0 || id >= tok->n_vocab)
        return NULL;
    /* Each entry is followed by its NUL, which the next offset counts. */
    *ret_len = tok->text_off[id + 1] - tok->text_off[id] - 1;
    return tok->text + tok->text_off[id];
}

static int bpe_decode(const struct llm_tok *tok, const int32_t *ids, size_t n, char *out,
                      size_t cap, size_t *ret_n);

int llm_tok_decode(const struct llm_tok *tok, const int32_t *ids, size_t n, char *out, size_t cap,
                   size_t *ret_n)
{
    *ret_n = 0;
    if ((!ids && n > 0) || (!out && cap > 0))
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= tok->n_vocab)
            return -ERANGE;
    if (tok->bpe)
        return bpe_decode(tok, ids, n, out, cap, ret_n);
    return llm_sp_decode(tok->sp, ids, n, out, cap, ret_n, NULL, 0);
}

/* ---- streaming detokenizer ---------------------------------------------
 * Mirrors SentencePiece's Decode: a run of byte pieces becomes characters,
 * each byte that cannot start a valid character becomes one U+FFFD, and any
 * other piece ends the run. The first piece loses its leading U+2581 when the
 * normalizer adds a dummy prefix or removes extra whitespace; with the
 * latter, pieces that were only that U+2581 keep the search going. */

struct out_buf {
    char *p;
    size_t cap, n; /* n counts what was wanted, even past cap */
};

static void out_put(struct out_buf *o, const void *data, size_t len)
{
    if (o->n <= o->cap && len <= o->cap - o->n)
        memcpy(o->p + o->n, data, len);
    o->n += len;
}

static void detok_drop(struct llm_detok *d, size_t k)
{
    memmove(d->pending, d->pending + k, d->n_pending - k);
    d->n_pending = (uint8_t)(d->n_pending - k);
}

/* Emit every character the pending bytes settle. At the end of a run
 * (run_end), bytes still short of a character are invalid. */
static void detok_bytes(struct llm_detok *d, struct out_buf *o, bool run_end)
{
    while (d->n_pending > 0) {
        size_t need = utf8_need(d->pending[0]);
        if (need != 0 && d->n_pending >= need) {
            size_t l = llm_utf8_char_len(d->pending, d->n_pending);
            if (l > 0) {
                out_put(o, d->pending, l);
                d->emitted = true;
                detok_drop(d, l);
                continue;
            }
        } else if (need != 0) {
            bool trails = true;
            for (size_t i = 1; i < d->n_pending; i++)
                trails &= (d->pending[i] & 0xC0) == 0x80;
            if (trails && !run_end)
                return; /* may still complete */
        }
        out_put(o, REPLACEMENT, 3);
        d->emitted = true;
        detok_drop(d, 1);
    }
}

static void detok_piece(struct llm_detok *d, struct out_buf *o, int32_t id)
{
    const struct llm_tok *tok = d->tok;
    const char *text = tok->text + tok->text_off[id];
    size_t len = tok->text_off[id + 1] - tok->text_off[id] - 1;
    detok_bytes(d, o, true);
    if (d->bos_ws_seen || d->emitted)
        d->is_bos_ws = false;
    bool stripped = false;
    if (tok->kind[id] != LLM_SP_CONTROL && tok->kind[id] != LLM_SP_UNKNOWN && d->is_bos_ws &&
        tok->strip_bos_ws && tok->lead_ws[id]) {
        text++;
        len--;
        stripped = true;
    }
    d->bos_ws_seen = stripped && !tok->remove_extra_ws;
    out_put(o, text, len);
    d->emitted |= len > 0;
}

/* Byte-level BPE: the pieces' bytes as text, each maximal ill-formed
 * subpart replaced by one U+FFFD (what Hugging Face's decoder gets from a
 * lossy UTF-8 conversion). Holds back only the start of a character that
 * later bytes may still complete; at the end (end), that too is replaced. */
static void bpe_detok_bytes(struct llm_detok *d, struct out_buf *o, const char *p, size_t n,
                            bool end)
{
    for (size_t i = 0; i <= n; i++) {
        if (i < n)
            d->pending[d->n_pending++] = (uint8_t)p[i];
        while (d->n_pending > 0) {
            size_t need, k = llm_utf8_prefix(d->pending, d->n_pending, &need);
            if (need != 0 && k == need) {
                out_put(o, d->pending, need);
                detok_drop(d, need);
                continue;
            }
            if (need != 0 && k == d->n_pending && !(end && i == n))
                break; /* may still complete */
            out_put(o, REPLACEMENT, 3);
            detok_drop(d, k ? k : 1);
        }
    }
}

static int bpe_decode(const struct llm_tok *tok, const int32_t *ids, size_t n, char *out,
                      size_t cap, size_t *ret_n)
{
    struct llm_detok d;
    struct out_buf o = { out, cap, 0 };
    size_t len;
    llm_detok_init(&d, tok);
    for (size_t i = 0; i < n; i++) {
        const char *p = llm_bpe_piece(tok->bpe, ids[i], &len);
        bpe_detok_bytes(&d, &o, p, len, false);
    }
    bpe_detok_bytes(&d, &o, NULL, 0, true);
    *ret_n = o.n;
    if (o.n >= cap)
        return -ENOSPC;
    out[o.n] = '\0';
    return 0;
}

void llm_detok_init(struct llm_detok *d, const struct llm_tok *tok)
{
    *d = (struct llm_detok){ .tok = tok, .is_bos_ws = true };
}

size_t llm_detok_max_out(const struct llm_tok *tok)
{
    /* Up to four held bytes, each possibly a U+FFFD, then the piece (for
     * BPE, each of its bytes possibly a U+FFFD). */
    if (tok->bpe)
        return 3 * (llm_bpe_max_piece(tok->bpe) + 4);
    return tok->max_text + 4 * 3;
}

int llm_detok_push(struct llm_detok *d, int32_t id, char *out, size_t cap, size_t *ret_n)
{
    struct llm_detok next = *d;
    struct out_buf o = { out, out ? cap : 0, 0 };
    *ret_n = 0;
    if (id < 0 || id >= d->tok->n_vocab)
        return -ERANGE;
    if (d->tok->bpe) {
        size_t len;
        const char *p = llm_bpe_piece(d->tok->bpe, id, &len);
        bpe_detok_bytes(&next, &o, p, len, false);
    } else if (d->tok->kind[id] == LLM_SP_BYTE) {
        next.pending[next.n_pending++] = (uint8_t)d->tok->text[d->tok->text_off[id]];
        detok_bytes(&next, &o, false);
    } else {
        detok_piece(&next, &o, id);
    }
    *ret_n = o.n;
    if (o.n > o.cap)
        return -ENOSPC;
    *d = next;
    return 0;
}

int llm_detok_flush(struct llm_detok *d, char *out, size_t cap, size_t *ret_n)
{
    struct llm_detok next = *d;
    struct out_buf o = { out, out ? cap : 0, 0 };
    if (d->tok->bpe)
        bpe_detok_bytes(&next, &o, NULL, 0, true);
    else
        detok_bytes(&next, &o, true);
    *ret_n = o.n;
    if (o.n > o.cap)
        return -ENOSPC;
    llm_detok_init(d, d->tok);
    return 0;
}
