/* Byte-level BPE (llama/bpe.h): the vocabulary and merges from the GGUF,
 * the pre-tokenizer's regexes compiled by PCRE2, merging by rank.
 *
 * Every count and id from the file is checked before use: token strings
 * must be valid UTF-8 without NUL, every merge must name two tokens whose
 * concatenation is a token, and the 256 byte tokens must all exist, so that
 * any input text has an encoding. */
#define PCRE2_CODE_UNIT_WIDTH 8

#include "llama/bpe.h"

#include <errno.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>
#include <uninorm.h>

#include "llama/gguf.h"
#include "llama/llm-internal.h"
#include "llama/utf8.h"

/* A pre-tokenizer: the split regexes Hugging Face's tokenizer.json gives
 * the models that carry this tokenizer.ggml.pre, applied in order (each
 * splits the pieces of the one before; matches and the text between them
 * are both pieces), plus what tokenizer.json says around them. */
struct bpe_pre {
    const char *name;
    const char *re[2];
    bool ignore_merges; /* a piece that is a whole token is that token */
    bool nfc; /* the normalizer is NFC */
    bool add_bos; /* default when the GGUF does not say */
};

/* GPT-2's ByteLevel regex (also the default when tokenizer.ggml.pre is absent). */
#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
/* Llama 3's Split regex; Qwen2's is the same with single digits. */
#define RE_LLAMA3_HEAD "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}"
#define RE_LLAMA3_TAIL " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

static const struct bpe_pre pre_table[] = {
    { "default", { RE_GPT2, NULL }, false, false, false },
    { "gpt2", { RE_GPT2, NULL }, false, false, false },
    { "llama-bpe", { RE_LLAMA3_HEAD "{1,3}|" RE_LLAMA3_TAIL, NULL }, true, false, true },
    { "llama3", { RE_LLAMA3_HEAD "{1,3}|" RE_LLAMA3_TAIL, NULL }, true, false, true },
    { "llama-v3", { RE_LLAMA3_HEAD "{1,3}|" RE_LLAMA3_TAIL, NULL }, true, false, true },
    { "qwen2", { RE_LLAMA3_HEAD "|" RE_LLAMA3_TAIL, NULL }, false, true, false },
    /* DeepSeek-R1's Qwen distills: Qwen2's regex, as llama.cpp reads this
     * name, and like llama.cpp no NFC (not checked against a Hugging Face
     * reference here: no fixture has this vocabulary). They want BOS. */
    { "deepseek-r1-qwen", { RE_LLAMA3_HEAD "|" RE_LLAMA3_TAIL, NULL }, false, false, true },
    /* SmolLM: Digits(individual_digits) before GPT-2's ByteLevel regex. */
    { "smollm", { "\\p{N}", RE_GPT2 }, false, false, false },
};

#define PRE_NAMES "default, gpt2, llama-bpe, llama3, llama-v3, qwen2, deepseek-r1-qwen, smollm"

/* One merge: the pair (left, right) becomes out; lower rank merges first. */
struct merge_slot {
    int32_t left, right, out; /* left < 0: empty slot */
    uint32_t rank;
};

struct llm_bpe {
    int32_t n;
    uint8_t *type; /* enum llm_tok_type per id */
    char *text; /* each token's GGUF string, NUL after each */
    size_t *text_off; /* n + 1 offsets into text */
    char *bytes; /* each token's output bytes, NUL after each */
    size_t *bytes_off; /* n + 1 offsets into bytes */
    size_t max_piece;
    int32_t *tok_slot; /* text → id, open addressing, -1 empty */
    size_t tok_mask;
    struct merge_slot *merge_slot;
    size_t merge_mask;
    uint32_t byte_cp[256]; /* GPT-2's byte → code point map */
    int16_t cp_byte[324]; /* and back; -1 for code points it does not use */
    int32_t byte_id[256]; /* the token of each single byte */
    const struct bpe_pre *pre;
    pcre2_code *re[2];
};

int llm_ids_reserve(struct llm_ids *ids, size_t n)
{
    if (n <= ids->cap)
        return 0;
    size_t cap = ids->cap ? ids->cap : 64;
    while (cap < n)
        cap = cap < SIZE_MAX / 2 ? 2 * cap : SIZE_MAX;
    int32_t *v = cap < SIZE_MAX / sizeof(*v) ? realloc(ids->v, cap * sizeof(*v)) : NULL;
    if (!v)
        return -ENOMEM;
    ids->v = v;
    ids->cap = cap;
    return 0;
}

int llm_ids_push(struct llm_ids *ids, int32_t id)
{
    int r = llm_ids_reserve(ids, ids->n + 1);
    if (r == 0)
        ids->v[ids->n++] = id;
    return r;
}

/* ---- hashing -------------------------------------------------------------- */

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325u; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 0x100000001b3u;
    return h;
}

static uint64_t hash_pair(int32_t a, int32_t b)
{
    uint64_t x = ((uint64_t)(uint32_t)a << 32 | (uint32_t)b) * 0x9E3779B97F4A7C15u;
    return x ^ (x >> 29);
}

/* Smallest power of two >= 2n (load factor at most one half). */
static size_t table_size(size_t n)
{
    size_t s = 16;
    while (s < 2 * n)
        s *= 2;
    return s;
}

static int32_t find_token(const struct llm_bpe *b, const char *s, size_t n)
{
    for (size_t i = hash_bytes(s, n) & b->tok_mask;; i = (i + 1) & b->tok_mask) {
        int32_t id = b->tok_slot[i];
        if (id < 0)
            return -1;
        size_t len = b->text_off[id + 1] - b->text_off[id] - 1;
        if (len == n && memcmp(b->text + b->text_off[id], s, n) == 0)
            return id;
    }
}

static const struct merge_slot *find_merge(const struct llm_bpe *b, int32_t l, int32_t r)
{
    for (size_t i = hash_pair(l, r) & b->merge_mask;; i = (i + 1) & b->merge_mask) {
        const struct merge_slot *m = &b->merge_slot[i];
        if (m->left < 0)
            return NULL;
        if (m->left == l && m->right == r)
            return m;
    }
}

/* ---- GPT-2's byte-level alphabet -----------------------------------------
 * Bytes that are printable in Latin-1 (33..126, 161..172, 174..255) stand
 * for themselves; the other 68 take U+0100 onward in byte order, so every
 * byte has a visible, non-space character. */

static void byte_map_init(struct llm_bpe *b)
{
    uint32_t next = 256;
    memset(b->cp_byte, 0xFF, sizeof(b->cp_byte));
    for (int c = 0; c < 256; c++) {
        bool printable = (c >= 33 && c <= 126) || (c >= 161 && c <= 172) || c >= 174;
        b->byte_cp[c] = printable ? (uint32_t)c : next++;
        b->cp_byte[b->byte_cp[c]] = (int16_t)c;
    }
}

/* UTF-8 of a code point below U+0800 (all the alphabet needs). */
static size_t put_cp2(char *dst, uint32_t cp)
{
    if (cp < 0x80) {
        dst[0] = (char)cp;
        return 1;
    }
    dst[0] = (char)(0xC0 | (cp >> 6));
    dst[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

/* The bytes a normal token's text stands for. A text with a character
 * outside the alphabet stands for itself, as Hugging Face's decoder has it. */
static size_t token_bytes(const struct llm_bpe *b, const char *s, size_t n, char *dst)
{
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        size_t l = llm_utf8_char_len((const uint8_t *)s + i, n - i);
        uint32_t cp = l == 1 ? (uint8_t)s[i] :
                      l == 2 ? ((uint32_t)(s[i] & 0x1F) << 6 | (s[i + 1] & 0x3F)) :
                               0xFFFF;
        if (cp >= 324 || b->cp_byte[cp] < 0) {
            memcpy(dst, s, n);
            return n;
        }
        dst[k++] = (char)b->cp_byte[cp];
        i += l;
    }
    return k;
}

/* ---- loading -------------------------------------------------------------- */

static int load_pre(const struct llm_gguf *g, struct llm_bpe *b, char *reterr, size_t errlen)
{
    struct llm_gguf_str s = { "default", 7 };
    int r = llm_gguf_get_str(g, "tokenizer.ggml.pre", &s, reterr, errlen);
    if (r < 0 && r != -ENOENT)
        return r;
    if (r == -ENOENT)
        s = (struct llm_gguf_str){ "default", 7 };
    for (size_t i = 0; i < sizeof(pre_table) / sizeof(pre_table[0]); i++)
        if (strlen(pre_table[i].name) == s.len && !memcmp(pre_table[i].name, s.ptr, s.len))
            b->pre = &pre_table[i];
    if (!b->pre)
        return llm_fail(reterr, errlen, -ENOTSUP,
                        "%s: tokenizer.ggml.pre is \"%.*s\", which this tokenizer does not know "
                        "(known: " PRE_NAMES ")",
                        llm_gguf_name(g), (int)(s.len > 64 ? 64 : s.len), s.ptr);
    for (int i = 0; i < 2 && b->pre->re[i]; i++) {
        int code;
        PCRE2_SIZE at;
        b->re[i] = pcre2_compile((PCRE2_SPTR)b->pre->re[i], PCRE2_ZERO_TERMINATED,
                                 PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &code, &at, NULL);
        if (!b->re[i])
            return llm_fail(reterr, errlen, -ENOMEM, "PCRE2 cannot compile the %s regex (error %d)",
                            b->pre->name, code);
        /* The interpreter gives the same matches where JIT is unavailable. */
        (void)pcre2_jit_compile(b->re[i], PCRE2_JIT_COMPLETE);
    }
    return 0;
}

/* Copy and check every token string; index them by text. */
static int load_tokens(const struct llm_gguf *g, const struct llm_gguf_kv *tokens,
                       const uint8_t *types, struct llm_bpe *b, char *reterr, size_t errlen)
{
    const char *name = llm_gguf_name(g);
    size_t total = 0, n = (size_t)b->n;
    struct llm_gguf_str s;
    for (size_t i = 0; i < n; i++) {
        int32_t t = (int32_t)((uint32_t)types[4 * i] | (uint32_t)types[4 * i + 1] << 8 |
                              (uint32_t)types[4 * i + 2] << 16 | (uint32_t)types[4 * i + 3] << 24);
        if (llm_gguf_arr_str(g, tokens, i, &s) < 0 || s.len == 0 || memchr(s.ptr, '\0', s.len) ||
            !llm_utf8_valid(s.ptr, s.len))
            return llm_fail(reterr, errlen, -EINVAL,
                            "%s: token %zu is empty, has a NUL or is not valid UTF-8", name, i);
        if (t < LLM_TOK_TYPE_NORMAL || t > LLM_TOK_TYPE_BYTE)
            return llm_fail(reterr, errlen, -EINVAL, "%s: token %zu has type %d (valid: 1..6)",
                            name, i, (int)t);
        b->type[i] = (uint8_t)t;
        total += s.len + 1; /* bounded by the file's size */
    }
    b->tok_mask = table_size(n) - 1;
    b->text = malloc(total);
    b->tok_slot = malloc((b->tok_mask + 1) * sizeof(*b->tok_slot));
    if (!b->text || !b->tok_slot)
        return llm_fail(reterr, errlen, -ENOMEM, "%s: out of memory for %zu tokens", name, n);
    memset(b->tok_slot, 0xFF, (b->tok_mask + 1) * sizeof(*b->tok_slot));
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        llm_gguf_arr_str(g, tokens, i, &s); /* checked above */
        b->text_off[i] = off;
        memcpy(b->text + off, s.ptr, s.len);
        b->text[off + s.len] = '\0';
        off += s.len + 1;
        /* The first of two equal texts keeps the slot. */
        if (find_token(b, s.ptr, s.len) >= 0)
            continue;
        size_t k = hash_bytes(s.ptr, s.len) & b->tok_mask;
        while (b->tok_slot[k] >= 0)
            k = (k + 1) & b->tok_mask;
        b->tok_slot[k] = (int32_t)i;
    }
    b->text_off[n] = off;
    return 0;
}

static int load_byte_ids(const struct llm_gguf *g, struct llm_bpe *b, char *reterr, size_t errlen)
{
    for (int c = 0; c < 256; c++) {
        char u[2];
        size_t l = put_cp2(u, b->byte_cp[c]);
        b->byte_id[c] = find_token(b, u, l);
        if (b->byte_id[c] < 0)
            return llm_fail(reterr, errlen, -EINVAL,
                            "%s: tokenizer.ggml.tokens has no token for byte 0x%02X (\"%.*s\")",
                            llm_gguf_name(g), c, (int)l, u);
    }
    return 0;
}

/* "LEFT RIGHT" → ids; both halves and their concatenation must be tokens. */
static int parse_merge(const struct llm_bpe *b, struct llm_gguf_str s, char *cat,
                       struct merge_slot *m)
{
    const char *sp = memchr(s.ptr, ' ', s.len);
    if (!sp || sp == s.ptr || sp == s.ptr + s.len - 1 ||
        memchr(sp + 1, ' ', s.len - (size_t)(sp + 1 - s.ptr)))
        return -1;
    size_t ll = (size_t)(sp - s.ptr), rl = s.len - ll - 1;
    memcpy(cat, s.ptr, ll);
    memcpy(cat + ll, sp + 1, rl);
    m->left = find_token(b, s.ptr, ll);
    m->right = find_token(b, sp + 1, rl);
    m->out = find_token(b, cat, ll + rl);
    return m->left < 0 || m->right < 0 || m->out < 0 ? -1 : 0;
}

static int load_merges(const struct llm_gguf *g, struct llm_bpe *b, char *reterr, size_t errlen)
{
    const char *name = llm_gguf_name(g);
    const struct llm_gguf_kv *kv = llm_gguf_find_kv(g, "tokenizer.ggml.merges");
    if (!kv || kv->type != LLM_GGUF_ARRAY || kv->arr_type != LLM_GGUF_STRING)
        return llm_fail(reterr, errlen, -EINVAL, "%s: tokenizer.ggml.merges is %s", name,
                        kv ? "not an array of strings" : "missing");
    if (kv->arr_n >= UINT32_MAX || kv->arr_n > SIZE_MAX / 4 / sizeof(struct merge_slot))
        return llm_fail(reterr, errlen, -EINVAL, "%s: tokenizer.ggml.merges has %llu entries", name,
                        (unsigned long long)kv->arr_n);
    b->merge_mask = table_size((size_t)kv->arr_n) - 1;
    b->merge_slot = malloc((b->merge_mask + 1) * sizeof(*b->merge_slot));
    char *cat = malloc(b->max_piece + 1);
    if (!b->merge_slot || !cat) {
        free(cat);
        return llm_fail(reterr, errlen, -ENOMEM, "%s: out of memory for the merges", name);
    }
    for (size_t i = 0; i <= b->merge_mask; i++)
        b->merge_slot[i].left = -1;
    for (uint64_t i = 0; i < kv->arr_n; i++) {
        struct llm_gguf_str s = { "", 0 }; /* the message prints it even when reading it failed */
        struct merge_slot m = { .rank = (uint32_t)i };
        if (llm_gguf_arr_str(g, kv, i, &s) < 0 || s.len > b->max_piece + 1 ||
            parse_merge(b, s, cat, &m) < 0) {
            free(cat);
            return llm_fail(reterr, errlen, -EINVAL,
                            "%s: tokenizer.ggml.merges[%llu] is \"%.*s\", not two tokens "
                            "whose concatenation is a token",
                            name, (unsigned long long)i, (int)(s.len > 64 ? 64 : s.len), s.ptr);
        }
        /* A repeated pair keeps its first (lowest) rank. */
        if (find_merge(b, m.left, m.right))
            continue;
        size_t k = hash_pair(m.left, m.right) & b->merge_mask;
        while (b->merge_slot[k].left >= 0)
            k = (k + 1) & b->merge_mask;
        b->merge_slot[k] = m;
    }
    free(cat);
    return 0;
}

/* Each token's output bytes (llm_bpe_piece). */
static int load_pieces(struct llm_bpe *b)
{
    size_t n = (size_t)b->n, off = 0;
    b->bytes = malloc(b->text_off[n]);
    if (!b->bytes)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *s = b->text + b->text_off[i];
        size_t len = b->text_off[i + 1] - b->text_off[i] - 1, k = 0;
        if (b->type[i] == LLM_TOK_TYPE_CONTROL)
            k = 0;
        else if (b->type[i] == LLM_TOK_TYPE_USER_DEFINED || b->type[i] == LLM_TOK_TYPE_UNKNOWN)
            memcpy(b->bytes + off, s, k = len);
        else
            k = token_bytes(b, s, len, b->bytes + off);
        b->bytes_off[i] = off;
        b->bytes[off + k] = '\0';
        off += k + 1;
        if (len > b->max_piece)
            b->max_piece = len;
    }
    b->bytes_off[n] = off;
    return 0;
}

int llm_bpe_load_gguf(const struct llm_gguf *g, const struct llm_gguf_kv *tokens,
                      const uint8_t *types, int32_t n, struct llm_bpe **ret, char *reterr,
                      size_t errlen)
{
    struct llm_bpe *b = calloc(1, sizeof(*b));
    int r = -ENOMEM;
    *ret = NULL;
    if (!b || n <= 0)
        goto fail;
    b->n = n;
    b->type = malloc((size_t)n);
    b->text_off = malloc(((size_t)n + 1) * sizeof(*b->text_off));
    b->bytes_off = malloc(((size_t)n + 1) * sizeof(*b->bytes_off));
    if (!b->type || !b->text_off || !b->bytes_off)
        goto fail;
    byte_map_init(b);
    if ((r = load_pre(g, b, reterr, errlen)) < 0 ||
        (r = load_tokens(g, tokens, types, b, reterr, errlen)) < 0 ||
        (r = load_byte_ids(g, b, reterr, errlen)) < 0)
        goto fail;
    if ((r = load_pieces(b)) < 0 || (r = load_merges(g, b, reterr, errlen)) < 0)
        goto fail;
    *ret = b;
    return 0;
fail:
    if (r == -ENOMEM && (!b || !b->merge_slot))
        llm_fail(reterr, errlen, r, "%s: out of memory for the vocabulary", llm_gguf_name(g));
    llm_bpe_free(b);
    return r;
}

void llm_bpe_free(struct llm_bpe *b)
{
    if (!b)
        return;
    for (int i = 0; i < 2; i++)
        pcre2_code_free(b->re[i]);
    free(b->type);
    free(b->text);
    free(b->text_off);
    free(b->bytes);
    free(b->bytes_off);
    free(b->tok_slot);
    free(b->merge_slot);
    free(b);
}

const char *llm_bpe_pre(const struct llm_bpe *b)
{
    return b->pre->name;
}

bool llm_bpe_default_add_bos(const struct llm_bpe *b)
{
    return b->pre->add_bos;
}

int llm_bpe_type(const struct llm_bpe *b, int32_t id)
{
    return b->type[id];
}

const char *llm_bpe_text(const struct llm_bpe *b, int32_t id, size_t *ret_len)
{
    *ret_len = b->text_off[id + 1] - b->text_off[id] - 1;
    return b->text + b->text_off[id];
}

const char *llm_bpe_piece(const struct llm_bpe *b, int32_t id, size_t *ret_len)
{
    if (id < 0 || id >= b->n)
        return NULL;
    *ret_len = b->bytes_off[id + 1] - b->bytes_off[id] - 1;
    return b->bytes + b->bytes_off[id];
}

size_t llm_bpe_max_piece(const struct llm_bpe *b)
{
    return b->max_piece;
}

/* ---- encoding ------------------------------------------------------------- */

/* Scratch of one encode call, grown as pieces need. */
struct bpe_work {
    struct sym {
        int32_t id; /* -1 once merged into its left neighbour */
        int32_t prev, next;
    } * sym;
    uint64_t *heap; /* rank << 32 | position of the pair's left symbol */
    char *buf; /* a piece in the byte-level alphabet */
    size_t cap, n_heap;
    struct llm_ids *out;
};

static int work_reserve(struct bpe_work *w, size_t n)
{
    if (n <= w->cap)
        return 0;
    if (n > UINT32_MAX || n > SIZE_MAX / 3 / sizeof(*w->heap))
        return -E2BIG;
    free(w->sym);
    free(w->heap);
    free(w->buf);
    w->sym = malloc(n * sizeof(*w->sym));
    w->heap = malloc(3 * n * sizeof(*w->heap));
    w->buf = malloc(2 * n);
    w->cap = w->sym && w->heap && w->buf ? n : 0;
    return w->cap ? 0 : -ENOMEM;
}

static void heap_push(struct bpe_work *w, uint64_t key)
{
    size_t i = w->n_heap++;
    while (i > 0 && w->heap[(i - 1) / 2] > key) {
        w->heap[i] = w->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    w->heap[i] = key;
}

static uint64_t heap_pop(struct bpe_work *w)
{
    uint64_t top = w->heap[0], last = w->heap[--w->n_heap];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= w->n_heap)
            break;
        if (c + 1 < w->n_heap && w->heap[c + 1] < w->heap[c])
            c++;
        if (w->heap[c] >= last)
            break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    w->heap[i] = last;
    return top;
}

/* Queue the pair that starts at symbol pos, if the vocabulary merges it. */
static void push_pair(const struct llm_bpe *b, struct bpe_work *w, int32_t pos)
{
    if (pos < 0 || w->sym[pos].next < 0)
        return;
    const struct merge_slot *m = find_merge(b, w->sym[pos].id, w->sym[w->sym[pos].next].id);
    if (m)
        heap_push(w, (uint64_t)m->rank << 32 | (uint32_t)pos);
}

/* One pre-tokenized piece: lowest rank first, leftmost first among equals,
 * as Hugging Face's BPE model merges. A queued pair is stale when its
 * symbols changed since; the pair there now then has another rank (ranks
 * name pairs one to one), which is how it is recognised. */
static int bpe_piece(const struct llm_bpe *b, struct bpe_work *w, const uint8_t *p, size_t n)
{
    int r = work_reserve(w, n);
    if (r < 0)
        return r;
    if (b->pre->ignore_merges) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            k += put_cp2(w->buf + k, b->byte_cp[p[i]]);
        int32_t id = find_token(b, w->buf, k);
        if (id >= 0)
            return llm_ids_push(w->out, id);
    }
    for (size_t i = 0; i < n; i++)
        w->sym[i] =
                (struct sym){ b->byte_id[p[i]], (int32_t)i - 1, i + 1 < n ? (int32_t)i + 1 : -1 };
    w->n_heap = 0;
    for (size_t i = 0; i + 1 < n; i++)
        push_pair(b, w, (int32_t)i);
    while (w->n_heap > 0) {
        uint64_t key = heap_pop(w);
        int32_t pos = (int32_t)(uint32_t)key, nx = w->sym[pos].next;
        if (w->sym[pos].id < 0 || nx < 0)
            continue;
        const struct merge_slot *m = find_merge(b, w->sym[pos].id, w->sym[nx].id);
        if (!m || m->rank != (uint32_t)(key >> 32))
            continue;
        w->sym[pos].id = m->out;
        w->sym[nx].id = -1;
        w->sym[pos].next = w->sym[nx].next;
        if (w->sym[pos].next >= 0)
            w->sym[w->sym[pos].next].prev = pos;
        push_pair(b, w, w->sym[pos].prev);
        push_pair(b, w, pos);
    }
    for (int32_t i = 0; i >= 0 && n > 0; i = w->sym[i].next)
        if ((r = llm_ids_push(w->out, w->sym[i].id)) < 0)
            return r;
    return 0;
}

/* Split p by regex stage (matches and the gaps between them are pieces),
 * then hand each piece to the next stage, or to BPE after the last. */
static int split(const struct llm_bpe *b, struct bpe_work *w, int stage, const uint8_t *p, size_t n)
{
    if (stage == 2 || !b->re[stage])
        return n > 0 ? bpe_piece(b, w, p, n) : 0;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(b->re[stage], NULL);
    size_t gap = 0, at = 0;
    int r = md ? 0 : -ENOMEM;
    while (r == 0 && at < n) {
        int rc = pcre2_match(b->re[stage], p, n, at, 0, md, NULL);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
            rc = pcre2_match(b->re[stage], p, n, at, PCRE2_NO_JIT, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH)
            break;
        if (rc < 0) {
            r = rc == PCRE2_ERROR_NOMEMORY ? -ENOMEM : -EINVAL;
            break;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        if (ov[1] <= ov[0]) { /* no split regex matches empty; step over it anyway */
            at = ov[0] + 1;
            continue;
        }
        if (ov[0] > gap)
            r = split(b, w, stage + 1, p + gap, ov[0] - gap);
        if (r == 0)
            r = split(b, w, stage + 1, p + ov[0], ov[1] - ov[0]);
        gap = at = ov[1];
    }
    if (r == 0 && gap < n)
        r = split(b, w, stage + 1, p + gap, n - gap);
    pcre2_match_data_free(md);
    return r;
}

/* NFC of each well-formed run; ill-formed bytes are kept as they are. */
static int nfc(const char *text, size_t len, char **ret, size_t *ret_len)
{
    char *out = NULL;
    size_t n = 0, cap = 0, i = 0;
    while (i < len) {
        size_t j = i, l;
        while (j < len && (l = llm_utf8_char_len((const uint8_t *)text + j, len - j)) > 0)
            j += l;
        size_t k = j == i ? 1 : 0; /* one ill-formed byte, else the run [i, j) */
        size_t nl = 0;
        uint8_t *norm = NULL;
        if (!k) {
            norm = u8_normalize(UNINORM_NFC, (const uint8_t *)text + i, j - i, NULL, &nl);
            if (!norm) {
                free(out);
                return -ENOMEM;
            }
        }
        size_t add = k ? 1 : nl;
        if (cap - n < add) {
            cap = 2 * (n + add) + 64;
            char *o = realloc(out, cap);
            if (!o) {
                free(norm);
                free(out);
                return -ENOMEM;
            }
            out = o;
        }
        memcpy(out + n, k ? text + i : (const char *)norm, add);
        n += add;
        free(norm);
        i = k ? i + 1 : j;
    }
    *ret = out;
    *ret_len = n;
    return 0;
}

int llm_bpe_encode(const struct llm_bpe *b, const char *text, size_t len, struct llm_ids *out)
{
    struct bpe_work w = { .out = out };
    char *norm = NULL;
    int r = 0;
    if (b->pre->nfc && len > 0) {
        r = nfc(text, len, &norm, &len);
        text = norm;
    }
    if (r == 0)
        r = split(b, &w, 0, (const uint8_t *)text, len);
    free(norm);
    free(w.sym);
    free(w.heap);
    free(w.buf);
    return r;
}
