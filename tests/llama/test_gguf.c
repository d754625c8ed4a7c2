/* Tests for llama/gguf.c: the real model files, a catalogue of malformed files
 * built in memory by a small GGUF writer, the typed getters and the type
 * traits. Every malformed file is parsed from a heap copy of exactly its
 * length, so that under ASan any read past the end is caught. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "llama/gguf.h"

#define STORIES LADE_MODELS_DIR "/stories260K.gguf"
#define KERNELC_DIR LADE_SHARED_DIR "/models/kernelc-22m"
#define NAME "mini.gguf"

/* ---- a small GGUF writer ---- */

struct gw {
    uint8_t *p;
    size_t len, cap;
};

static void gw_bytes(struct gw *w, const void *d, size_t n)
{
    if (w->len + n > w->cap) {
        w->cap = (w->len + n) * 2 + 64;
        w->p = realloc(w->p, w->cap);
        assert_non_null(w->p);
    }
    memcpy(w->p + w->len, d, n);
    w->len += n;
}

static void gw_u8(struct gw *w, uint8_t v)
{
    gw_bytes(w, &v, 1);
}
static void gw_u32(struct gw *w, uint32_t v)
{
    gw_bytes(w, &v, 4);
}
static void gw_u64(struct gw *w, uint64_t v)
{
    gw_bytes(w, &v, 8);
}

static void gw_strn(struct gw *w, const char *s, size_t n)
{
    gw_u64(w, n);
    gw_bytes(w, s, n);
}

static void gw_str(struct gw *w, const char *s)
{
    gw_strn(w, s, strlen(s));
}

static void gw_key(struct gw *w, const char *key, uint32_t type)
{
    gw_str(w, key);
    gw_u32(w, type);
}

static void gw_patch_u32(struct gw *w, size_t off, uint32_t v)
{
    memcpy(w->p + off, &v, 4);
}
static void gw_patch_u64(struct gw *w, size_t off, uint64_t v)
{
    memcpy(w->p + off, &v, 8);
}

struct tdesc {
    const char *name;
    uint32_t n_dims;
    uint64_t ne[4];
    uint32_t type;
    bool fixed; /* use offset as given; otherwise the next aligned offset */
    uint64_t offset;
};

/* Descriptor shorthands: auto offset, and fixed offset. */
#define TD(name, nd, type, ...)                   \
    {                                             \
        name, nd, { __VA_ARGS__ }, type, false, 0 \
    }
#define TDO(name, nd, type, off, ...)              \
    {                                              \
        name, nd, { __VA_ARGS__ }, type, true, off \
    }

struct fdesc {
    bool has_align; /* write general.alignment = align */
    uint32_t align;
    void (*extra)(struct gw *w); /* more raw key/values after the standard four */
    uint32_t n_extra;
    const struct tdesc *t; /* NULL: the two standard tensors */
    uint32_t n_t;
    uint64_t data_len; /* 0: what the tensors need */
};

/* Where the sections of a built file start, for truncation cases. */
struct marks {
    size_t key3, value3, words_count, words_def, tinfo1, tinfo1_dims, infos_end, data_start;
};

static const struct tdesc std_tensors[] = {
    TD("a", 2, 0, 8, 2), /* F32: 64 bytes */
    TD("b", 1, 8, 32), /* Q8_0: 34 bytes */
};

/* Bytes of a tensor, for the few types the writer lays out; ggml's block
 * sizes written here independently of the reader's table. 0 when the shape
 * is not one the writer can lay out (the malformed cases). */
static uint64_t tsize(const struct tdesc *t)
{
    uint64_t n = 1, blk, bytes;
    for (uint32_t d = 0; d < t->n_dims && d < 4; d++)
        if (__builtin_mul_overflow(n, t->ne[d], &n))
            return 0;
    switch (t->type) {
    case 0: blk = 1, bytes = 4; break;
    case 1: blk = 1, bytes = 2; break;
    case 2: blk = 32, bytes = 18; break;
    case 8: blk = 32, bytes = 34; break;
    default: return 0;
    }
    if (n % blk || n > (1ull << 40))
        return 0;
    return n / blk * bytes;
}

/* Filler first, so that a truncation in a later key/value passes the header
 * count check and reaches the code under test. */
static void write_kvs(struct gw *w, const struct fdesc *d, struct marks *m)
{
    char filler[161];
    memset(filler, 'd', 160);
    filler[160] = '\0';
    gw_key(w, "general.description", 8);
    gw_str(w, filler);
    gw_key(w, "general.architecture", 8);
    gw_str(w, "llama");
    gw_key(w, "test.words", 9);
    gw_u32(w, 8);
    m->words_count = w->len;
    gw_u64(w, 3);
    gw_str(w, "a");
    gw_str(w, "bc");
    m->words_def = w->len;
    gw_str(w, "def");
    m->key3 = w->len;
    gw_key(w, "test.u32", 4);
    m->value3 = w->len;
    gw_u32(w, 7);
    if (d->has_align) {
        gw_key(w, "general.alignment", 4);
        gw_u32(w, d->align);
    }
    if (d->extra)
        d->extra(w);
}

static void build(struct gw *w, const struct fdesc *d, struct marks *ret_m)
{
    const struct tdesc *t = d->t ? d->t : std_tensors;
    uint32_t n_t = d->t ? d->n_t : 2;
    uint64_t align = d->has_align && d->align && !(d->align & (d->align - 1)) && d->align <= 4096 ?
                             d->align :
                             32;
    uint64_t off[8], end = 0, next = 0;
    struct marks m = { 0 };

    memset(w, 0, sizeof(*w));
    gw_bytes(w, "GGUF", 4);
    gw_u32(w, 3);
    gw_u64(w, n_t);
    gw_u64(w, 4 + d->has_align + d->n_extra);
    write_kvs(w, d, &m);
    for (uint32_t i = 0; i < n_t; i++) {
        if (i == 1)
            m.tinfo1 = w->len;
        off[i] = t[i].fixed ? t[i].offset : next;
        next = (off[i] + tsize(&t[i]) + align - 1) / align * align;
        if (tsize(&t[i]) && off[i] + tsize(&t[i]) > end && off[i] < (1u << 20))
            end = off[i] + tsize(&t[i]);
        gw_str(w, t[i].name);
        gw_u32(w, t[i].n_dims);
        if (i == 1)
            m.tinfo1_dims = w->len;
        for (uint32_t k = 0; k < t[i].n_dims; k++)
            gw_u64(w, k < 4 ? t[i].ne[k] : 1);
        gw_u32(w, t[i].type);
        gw_u64(w, off[i]);
    }
    m.infos_end = w->len;
    while (w->len % align)
        gw_u8(w, 0);
    m.data_start = w->len;
    if (d->data_len)
        end = d->data_len;
    for (uint64_t i = 0; i < end; i++)
        gw_u8(w, (uint8_t)(i * 7 + 1));
    if (ret_m)
        *ret_m = m;
}

static void build_std(struct gw *w)
{
    build(w, &(struct fdesc){ 0 }, NULL);
}

/* ---- parse helpers ---- */

static uint8_t *dup_exact(const uint8_t *p, size_t len)
{
    uint8_t *c = malloc(len ? len : 1);
    assert_non_null(c);
    if (len)
        memcpy(c, p, len);
    return c;
}

/* Parses the first len bytes of w from an exact-size heap copy and checks
 * that it fails with rc and a one-line message naming the file and holding
 * phrase. Returns 0 when all of that holds, so a table can report every
 * mismatch before failing. */
static int check_fail(const uint8_t *p, size_t len, int rc, const char *phrase, const char *what)
{
    uint8_t *c = dup_exact(p, len);
    char err[LLM_GGUF_ERR_MAX];
    struct llm_gguf *g = (struct llm_gguf *)&err;
    int e = llm_gguf_parse(c, len, NAME, &g, err, sizeof(err));
    int bad = e != rc || g != NULL || strncmp(err, NAME ": ", strlen(NAME) + 2) ||
              strchr(err, '\n') || (phrase && !strstr(err, phrase));

    if (bad)
        print_error("%s: got %d '%s', want %d with '%s'\n", what, e, err, rc, phrase ? phrase : "");
    llm_gguf_free(e ? NULL : g);
    free(c);
    return bad;
}

static struct llm_gguf *parse_ok(const struct gw *w, uint8_t **ret_copy)
{
    char err[LLM_GGUF_ERR_MAX];
    struct llm_gguf *g = NULL;
    *ret_copy = dup_exact(w->p, w->len);
    int e = llm_gguf_parse(*ret_copy, w->len, NAME, &g, err, sizeof(err));
    if (e)
        print_error("unexpected failure %d: %s\n", e, err);
    assert_int_equal(e, 0);
    assert_non_null(g);
    return g;
}

static bool str_eq(struct llm_gguf_str s, const char *want)
{
    return s.len == strlen(want) && !memcmp(s.ptr, want, s.len);
}

/* ---- the bundled and shared model files ---- */

static struct llm_gguf *open_stories(void)
{
    char err[LLM_GGUF_ERR_MAX];
    struct llm_gguf *g = NULL;
    int e = llm_gguf_open(STORIES, &g, err, sizeof(err));
    if (e)
        print_error("%s\n", err);
    assert_int_equal(e, 0);
    return g;
}

static void test_stories260k_metadata(void **state)
{
    char err[LLM_GGUF_ERR_MAX];
    struct llm_gguf *g = open_stories();
    struct llm_gguf_str s;
    uint32_t u;
    float f;

    assert_int_equal(llm_gguf_version(g), 3);
    assert_int_equal(llm_gguf_alignment(g), 32);
    assert_string_equal(llm_gguf_name(g), STORIES);
    assert_int_equal(llm_gguf_n_kv(g), 19);
    assert_int_equal(llm_gguf_get_str(g, "general.architecture", &s, err, sizeof(err)), 0);
    assert_true(str_eq(s, "llama"));
    assert_int_equal(llm_gguf_get_u32(g, "llama.embedding_length", &u, err, sizeof(err)), 0);
    assert_int_equal(u, 64);
    assert_int_equal(llm_gguf_get_u32(g, "llama.block_count", &u, err, sizeof(err)), 0);
    assert_int_equal(u, 5);
    assert_int_equal(llm_gguf_get_u32(g, "llama.feed_forward_length", &u, err, sizeof(err)), 0);
    assert_int_equal(u, 172);
    assert_int_equal(
            llm_gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &f, err, sizeof(err)), 0);
    assert_float_equal(f, 1e-5f, 1e-9f);
    assert_null(llm_gguf_find_kv(g, "llama.nonexistent"));
    llm_gguf_free(g);
}

static void test_stories260k_vocab(void **state)
{
    char err[LLM_GGUF_ERR_MAX];
    struct llm_gguf *g = open_stories();
    struct llm_gguf_str s;
    const void *arr;
    uint64_t n;
    float f;

    /* README.md documents "Once upon a time" as 403 407 261 378. */
    const struct llm_gguf_kv *tok = llm_gguf_find_kv(g, "tokenizer.ggml.tokens");
    assert_non_null(tok);
    assert_int_equal(tok->type, LLM_GGUF_ARRAY);
    assert_int_equal(tok->arr_type, LLM_GGUF_STRING);
    assert_int_equal(tok->arr_n, 512);
    assert_int_equal(llm_gguf_arr_str(g, tok, 403, &s), 0);
    assert_true(str_eq(s, "\xe2\x96\x81Once"));
    assert_int_equal(llm_gguf_arr_str(g, tok, 0, &s), 0);
    assert_true(str_eq(s, "<unk>"));
    assert_int_equal(llm_gguf_arr_str(g, tok, 2, &s), 0);
    assert_true(str_eq(s, "</s>"));
    assert_int_equal(llm_gguf_arr_str(g, tok, 3, &s), 0);
    assert_true(str_eq(s, "<0x00>"));
    assert_int_equal(llm_gguf_arr_str(g, tok, 511, &s), 0);
    assert_int_equal(llm_gguf_arr_str(g, tok, 512, &s), -ERANGE);
    assert_int_equal(llm_gguf_get_arr(g, "tokenizer.ggml.scores", LLM_GGUF_F32, &arr, &n, err,
                                      sizeof(err)),
                     0);
    assert_int_equal(n, 512);
    memcpy(&f, (const char *)arr + 403 * 4, 4);
    assert_float_equal(f, -144.0f, 0.0f);
    llm_gguf_free(g);
}

static void test_stories260k_tensors(void **state)
{
    struct llm_gguf *g = open_stories();

    assert_int_equal(llm_gguf_n_tensors(g), 48);
    const struct llm_gguf_tensor *t = llm_gguf_tensor_at(g, 0);
    assert_string_equal(t->name, "token_embd.weight");
    assert_int_equal(t->type, LLM_GGML_F32);
    assert_int_equal(t->n_dims, 2);
    assert_int_equal(t->ne[0], 64);
    assert_int_equal(t->ne[1], 512);
    assert_int_equal(t->ne[2], 1);
    assert_int_equal(t->size, 64 * 512 * 4);
    t = llm_gguf_find_tensor(g, "blk.0.ffn_down.weight");
    assert_non_null(t);
    assert_int_equal(t->ne[0], 172);
    assert_int_equal(t->ne[1], 64);
    assert_int_equal(t->n_elements, 172 * 64);
    t = llm_gguf_find_tensor(g, "output_norm.weight");
    assert_non_null(t);
    assert_int_equal(t->n_dims, 1);
    assert_int_equal(t->ne[0], 64);
    assert_int_equal(t->ne[1], 1);
    assert_int_equal((uintptr_t)t->data % 32, 0);
    t = llm_gguf_find_tensor(g, "blk.4.attn_k.weight");
    assert_non_null(t);
    assert_int_equal(t->ne[1], 32);
    assert_null(llm_gguf_find_tensor(g, "blk.5.attn_k.weight"));
    llm_gguf_free(g);
}

static struct llm_gguf *open_shared(const char *file)
{
    char path[512], err[LLM_GGUF_ERR_MAX];
    struct llm_gguf *g = NULL;
    snprintf(path, sizeof(path), "%s/%s", KERNELC_DIR, file);
    if (access(path, R_OK)) {
        print_message("skipping: %s not present (LADE_SHARED_DIR)\n", path);
        return NULL;
    }
    int e = llm_gguf_open(path, &g, err, sizeof(err));
    if (e)
        print_error("%s\n", err);
    assert_int_equal(e, 0);
    assert_int_equal(llm_gguf_version(g), 3);
    assert_int_equal(llm_gguf_n_tensors(g), 57);
    return g;
}

static bool is_norm(const char *name)
{
    return strstr(name, "_norm.weight") != NULL;
}

static void test_kernelc_f16(void **state)
{
    struct llm_gguf *g = open_shared("kernelc-22m-f16.gguf");
    if (!g)
        skip();
    for (uint64_t i = 0; i < llm_gguf_n_tensors(g); i++) {
        const struct llm_gguf_tensor *t = llm_gguf_tensor_at(g, i);
        assert_int_equal(t->type, is_norm(t->name) ? LLM_GGML_F32 : LLM_GGML_F16);
    }
    const struct llm_gguf_tensor *t = llm_gguf_find_tensor(g, "token_embd.weight");
    assert_int_equal(t->ne[0], 512);
    assert_int_equal(t->ne[1], 4096);
    const struct llm_gguf_kv *tok = llm_gguf_find_kv(g, "tokenizer.ggml.tokens");
    assert_non_null(tok);
    assert_int_equal(tok->arr_n, 4096);
    llm_gguf_free(g);
}

static void test_kernelc_q4_k_m(void **state)
{
    struct llm_gguf *g = open_shared("kernelc-22m-q4_k_m.gguf");
    if (!g)
        skip();
    for (uint64_t i = 0; i < llm_gguf_n_tensors(g); i++) {
        const struct llm_gguf_tensor *t = llm_gguf_tensor_at(g, i);
        if (is_norm(t->name))
            assert_int_equal(t->type, LLM_GGML_F32);
        else if (!strcmp(t->name, "output.weight") || strstr(t->name, "attn_v.weight"))
            assert_int_equal(t->type, LLM_GGML_Q6_K);
        else if (strstr(t->name, "ffn_down.weight"))
            assert_true(t->type == LLM_GGML_Q5_0 || t->type == LLM_GGML_Q8_0);
        else
            assert_int_equal(t->type, LLM_GGML_Q4_K);
    }
    const struct llm_gguf_tensor *t = llm_gguf_find_tensor(g, "blk.0.ffn_down.weight");
    assert_int_equal(t->ne[0], 1408);
    assert_int_equal(t->size, llm_ggml_row_bytes(t->type, 1408) * 512);
    llm_gguf_free(g);
}

/* Every truncation of the real file fails cleanly. */
static void test_stories_truncated(void **state)
{
    FILE *f = fopen(STORIES, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    size_t size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(size);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, size, f), size);
    fclose(f);

    int bad = 0;
    for (size_t i = 0; i < 200; i++) {
        size_t len = (size - 1) * i / 199;
        char what[64];
        snprintf(what, sizeof(what), "stories260K truncated to %zu", len);
        bad += check_fail(buf, len, -EBADMSG, len < 4 ? "truncated magic" : NULL, what);
    }
    free(buf);
    assert_int_equal(bad, 0);
}

/* ---- files built in memory ---- */

static void test_built_valid(void **state)
{
    struct gw w;
    uint8_t *copy;
    struct llm_gguf_str s;

    build_std(&w);
    struct llm_gguf *g = parse_ok(&w, &copy);
    assert_int_equal(llm_gguf_n_kv(g), 4);
    assert_int_equal(llm_gguf_n_tensors(g), 2);
    const struct llm_gguf_kv *kv = llm_gguf_kv_at(g, 2);
    assert_true(str_eq(kv->key, "test.words"));
    assert_null(llm_gguf_kv_at(g, 4));
    assert_int_equal(llm_gguf_arr_str(g, kv, 1, &s), 0);
    assert_true(str_eq(s, "bc"));
    assert_int_equal(llm_gguf_arr_str(g, kv, 2, &s), 0);
    assert_true(str_eq(s, "def"));
    const struct llm_gguf_tensor *b = llm_gguf_find_tensor(g, "b");
    assert_int_equal(b->offset, 64);
    assert_int_equal(b->size, 34);
    assert_ptr_equal(b->data, copy + llm_gguf_data_offset(g) + 64);
    assert_int_equal(((const uint8_t *)b->data)[0], (uint8_t)(64 * 7 + 1));
    assert_null(llm_gguf_tensor_at(g, 2));
    llm_gguf_free(g);
    free(copy);
    free(w.p);

    /* A custom alignment moves the data section and the offsets with it. */
    build(&w, &(struct fdesc){ .has_align = true, .align = 128 }, NULL);
    g = parse_ok(&w, &copy);
    assert_int_equal(llm_gguf_alignment(g), 128);
    assert_int_equal(llm_gguf_data_offset(g) % 128, 0);
    assert_int_equal(llm_gguf_find_tensor(g, "b")->offset, 128);
    llm_gguf_free(g);
    free(copy);
    free(w.p);
}

static void kv_nested(struct gw *w, const char *key, int depth)
{
    gw_key(w, key, 9);
    for (int i = 1; i < depth; i++) {
        gw_u32(w, 9);
        gw_u64(w, 1);
    }
    gw_u32(w, 0);
    gw_u64(w, 0);
}

static void extra_valid(struct gw *w)
{
    kv_nested(w, "test.deep", LLM_GGUF_MAX_NESTING);
    gw_key(w, "test.empty_strs", 9);
    gw_u32(w, 8);
    gw_u64(w, 0);
}

static char long_name[256];
static struct tdesc t_long_name[] = {
    TD("a", 2, 0, 8, 2),
    TD(long_name, 4, 8, 32, 1, 1, 1),
    TD("c", 3, 2, 64, 1, 2),
};

/* Limits reached exactly are accepted: nesting depth, 255-byte names,
 * 4 dimensions, empty arrays. */
static void test_built_limits(void **state)
{
    struct gw w;
    uint8_t *copy;
    struct llm_gguf_str s;

    memset(long_name, 'b', 255);
    build(&w, &(struct fdesc){ .extra = extra_valid, .n_extra = 2, .t = t_long_name, .n_t = 3 },
          NULL);
    struct llm_gguf *g = parse_ok(&w, &copy);
    const struct llm_gguf_kv *kv = llm_gguf_find_kv(g, "test.deep");
    assert_int_equal(kv->arr_type, LLM_GGUF_ARRAY);
    assert_int_equal(kv->arr_n, 1);
    kv = llm_gguf_find_kv(g, "test.empty_strs");
    assert_int_equal(kv->arr_n, 0);
    assert_int_equal(llm_gguf_arr_str(g, kv, 0, &s), -ERANGE);
    const struct llm_gguf_tensor *t = llm_gguf_find_tensor(g, t_long_name[1].name);
    assert_non_null(t);
    assert_int_equal(t->n_dims, 4);
    t = llm_gguf_find_tensor(g, "c");
    assert_int_equal(t->size, 2 * 2 * 18);
    llm_gguf_free(g);
    free(copy);
    free(w.p);
}

/* ---- the malformed-file catalogue ---- */

static void x_nested_too_deep(struct gw *w)
{
    kv_nested(w, "test.deep", LLM_GGUF_MAX_NESTING + 1);
}
static void x_unknown_vtype(struct gw *w)
{
    gw_key(w, "test.x", 13);
    gw_u32(w, 0);
}
static void x_unknown_etype(struct gw *w)
{
    gw_key(w, "test.x", 9);
    gw_u32(w, 99);
    gw_u64(w, 0);
}
static void x_bad_bool(struct gw *w)
{
    gw_key(w, "test.x", 7);
    gw_u8(w, 2);
}
static void x_empty_key(struct gw *w)
{
    gw_key(w, "", 4);
    gw_u32(w, 1);
}
static void x_dup_key(struct gw *w)
{
    gw_key(w, "test.u32", 4);
    gw_u32(w, 8);
}
static void x_huge_string(struct gw *w)
{
    gw_key(w, "test.s", 8);
    gw_u64(w, 1ull << 40);
}
static void x_string_max(struct gw *w)
{
    gw_key(w, "test.s", 8);
    gw_u64(w, UINT64_MAX);
}
static void x_arr_overflow(struct gw *w)
{
    gw_key(w, "test.a", 9);
    gw_u32(w, 10);
    gw_u64(w, 1ull << 61);
}
static void x_arr_past_end(struct gw *w)
{
    gw_key(w, "test.a", 9);
    gw_u32(w, 4);
    gw_u64(w, 1000);
}
static void x_strs_huge(struct gw *w)
{
    gw_key(w, "test.a", 9);
    gw_u32(w, 8);
    gw_u64(w, 1ull << 40);
}
static void x_arrs_huge(struct gw *w)
{
    gw_key(w, "test.a", 9);
    gw_u32(w, 9);
    gw_u64(w, 1ull << 40);
}
static void x_align_str(struct gw *w)
{
    gw_key(w, "general.alignment", 8);
    gw_str(w, "32");
}

static void x_newline_key(struct gw *w)
{
    gw_key(w, "test.\n\x1b[31m", 4);
    gw_u32(w, 1);
    gw_key(w, "test.\n\x1b[31m", 4);
    gw_u32(w, 1);
}

static void x_long_key(struct gw *w)
{
    char *k = malloc(65537);
    assert_non_null(k);
    memset(k, 'k', 65536);
    k[65536] = '\0';
    gw_key(w, k, 4);
    gw_u32(w, 1);
    free(k);
}

enum patch { P_NONE, P_MAGIC, P_VERSION, P_N_TENSORS, P_N_KV };

struct mcase {
    const char *what;
    struct fdesc d;
    struct tdesc t[2]; /* used when t[0].name is set */
    enum patch patch;
    uint64_t patch_val;
    int rc;
    const char *phrase;
};

#define T_A TD("a", 2, 0, 8, 2)
#define EX(fn) .d = { .extra = (fn), .n_extra = 1 }

static const struct mcase cases[] = {
    { "bad magic", .patch = P_MAGIC, .rc = -EBADMSG, .phrase = "header: bad magic" },
    { "version 1", .patch = P_VERSION, .patch_val = 1, .rc = -ENOTSUP,
      .phrase = "version 1 is not supported" },
    { "version 4", .patch = P_VERSION, .patch_val = 4, .rc = -ENOTSUP,
      .phrase = "unsupported GGUF version 4" },
    { "big-endian", .patch = P_VERSION, .patch_val = 0x03000000, .rc = -ENOTSUP,
      .phrase = "big-endian" },
    { "huge n_kv", .patch = P_N_KV, .patch_val = 1ull << 40, .rc = -EBADMSG,
      .phrase = "n_kv 1099511627776 cannot fit" },
    { "huge n_tensors", .patch = P_N_TENSORS, .patch_val = UINT64_MAX, .rc = -EBADMSG,
      .phrase = "n_tensors 18446744073709551615 cannot fit" },
    { "string past end", EX(x_huge_string), .rc = -EBADMSG,
      .phrase = "key 'test.s': string value of 1099511627776 bytes runs past the end" },
    { "string length 2^64-1", EX(x_string_max), .rc = -EBADMSG, .phrase = "runs past the end" },
    { "array byte size overflow", EX(x_arr_overflow), .rc = -EBADMSG,
      .phrase = "key 'test.a': array of 2305843009213693952 u64 elements: byte size overflows" },
    { "array past end", EX(x_arr_past_end), .rc = -EBADMSG,
      .phrase = "array of 1000 u32 elements (4000 bytes) runs past the end" },
    { "string array count", EX(x_strs_huge), .rc = -EBADMSG, .phrase = "strings cannot fit" },
    { "array of arrays count", EX(x_arrs_huge), .rc = -EBADMSG, .phrase = "arrays cannot fit" },
    { "nested too deep", EX(x_nested_too_deep), .rc = -EBADMSG,
      .phrase = "arrays nested deeper than 8" },
    { "unknown value type", EX(x_unknown_vtype), .rc = -EBADMSG,
      .phrase = "key 'test.x': unknown value type 13" },
    { "unknown element type", EX(x_unknown_etype), .rc = -EBADMSG,
      .phrase = "unknown array element type 99" },
    { "bool 2", EX(x_bad_bool), .rc = -EBADMSG, .phrase = "bool value 2 is neither" },
    { "empty key", EX(x_empty_key), .rc = -EBADMSG, .phrase = "key/value 4: key length 0 not in" },
    { "key too long", EX(x_long_key), .rc = -EBADMSG,
      .phrase = "key length 65536 not in 1..65535" },
    { "duplicate key", EX(x_dup_key), .rc = -EBADMSG, .phrase = "key 'test.u32': duplicate key" },
    { "control bytes in key", .d = { .extra = x_newline_key, .n_extra = 2 }, .rc = -EBADMSG,
      .phrase = "key 'test.??[31m': duplicate key" },
    { "alignment 0", .d = { .has_align = true, .align = 0 }, .rc = -EBADMSG,
      .phrase = "key 'general.alignment': 0 is not a nonzero power of two" },
    { "alignment 48", .d = { .has_align = true, .align = 48 }, .rc = -EBADMSG,
      .phrase = "48 is not a nonzero power of two" },
    { "alignment 2^31", .d = { .has_align = true, .align = 1u << 31 }, .rc = -EBADMSG,
      .phrase = "exceeds the largest sane alignment" },
    { "alignment as string", EX(x_align_str), .rc = -EBADMSG,
      .phrase = "type string, expected u32" },
    { "unknown tensor type", .t = { T_A, TD("b", 1, 4, 32) }, .rc = -EBADMSG,
      .phrase = "tensor 'b': unknown ggml type 4" },
    { "tensor type 31", .t = { T_A, TD("b", 1, 31, 32) }, .rc = -EBADMSG,
      .phrase = "unknown ggml type 31" },
    { "zero dimension", .t = { T_A, TD("b", 2, 0, 32, 0) }, .rc = -EBADMSG,
      .phrase = "tensor 'b': dimension 1 is 0" },
    { "n_dims 0", .t = { T_A, TD("b", 0, 0, 0) }, .rc = -EBADMSG,
      .phrase = "tensor 'b': n_dims 0 not in 1..4" },
    { "n_dims 5", .t = { T_A, TD("b", 5, 0, 1, 1, 1, 1) }, .rc = -EBADMSG,
      .phrase = "n_dims 5 not in 1..4" },
    { "dims product overflow", .t = { T_A, TD("b", 2, 0, 1ull << 32, 1ull << 32) }, .rc = -EBADMSG,
      .phrase = "element count overflows at dimension 1" },
    { "dims product > int64", .t = { T_A, TD("b", 3, 0, 1ull << 31, 1ull << 31, 2) },
      .rc = -EBADMSG, .phrase = "element count overflows" },
    { "byte size overflow", .t = { T_A, TD("b", 1, 0, 1ull << 62) }, .rc = -EBADMSG,
      .phrase = "byte size of 4611686018427387904 f32 elements overflows" },
    { "row not a multiple of block", .t = { T_A, TD("b", 2, 8, 48, 2) }, .rc = -EBADMSG,
      .phrase = "row length 48 is not a multiple of the q8_0 block size 32" },
    { "offset misaligned", .t = { T_A, TDO("b", 1, 8, 65, 32) }, .rc = -EBADMSG,
      .phrase = "tensor 'b': offset 65 not aligned to 32" },
    { "offset past end", .t = { T_A, TDO("b", 1, 8, 1ull << 40, 32) }, .rc = -EBADMSG,
      .phrase = "tensor 'b': data at offset 1099511627776 of 34 bytes runs past the end" },
    { "offset near 2^64", .t = { T_A, TDO("b", 1, 8, UINT64_MAX - 31, 32) }, .rc = -EBADMSG,
      .phrase = "runs past the end" },
    { "data ends past file", .d = { .data_len = 98 }, .t = { T_A, TDO("b", 1, 8, 64, 64) },
      .rc = -EBADMSG,
      .phrase =
              "data at offset 64 of 68 bytes runs past the end of the file (data section is 98 bytes)" },
    { "overlapping tensors", .t = { T_A, TDO("b", 1, 8, 32, 32) }, .rc = -EBADMSG,
      .phrase = "tensor 'b': data [32, 66) overlaps tensor 'a' [0, 64)" },
    { "duplicate tensor names", .t = { T_A, TD("a", 1, 8, 32) }, .rc = -EBADMSG,
      .phrase = "tensor 'a': duplicate tensor name (tensors 0 and 1)" },
    { "empty tensor name", .t = { T_A, TD("", 1, 8, 32) }, .rc = -EBADMSG,
      .phrase = "tensor 1: empty tensor name" },
    { "tensor name too long", .t = { T_A, TD("b", 1, 8, 32) }, .rc = -EBADMSG,
      .phrase = "tensor 1: name of 256 bytes exceeds 255" },
};

static void build_case(struct gw *w, const struct mcase *c)
{
    struct fdesc d = c->d;
    if (c->t[0].name) {
        d.t = c->t;
        d.n_t = 2;
    }
    build(w, &d, NULL);
    switch (c->patch) {
    case P_NONE: break;
    case P_MAGIC: w->p[0] = 'X'; break;
    case P_VERSION: gw_patch_u32(w, 4, (uint32_t)c->patch_val); break;
    case P_N_TENSORS: gw_patch_u64(w, 8, c->patch_val); break;
    case P_N_KV: gw_patch_u64(w, 16, c->patch_val); break;
    }
}

/* The name-too-long case rewrites tensor 1's name in place: the writer's
 * descriptors use short literals. */
static void build_long_name(struct gw *w)
{
    struct marks m;
    char name[257];
    build(w, &(struct fdesc){ 0 }, &m);
    memset(name, 'n', 256);
    name[256] = '\0';
    struct gw out = { 0 };
    gw_bytes(&out, w->p, m.tinfo1);
    gw_str(&out, name);
    gw_bytes(&out, w->p + m.tinfo1 + 8 + 1, w->len - m.tinfo1 - 9);
    free(w->p);
    *w = out;
}

static void test_malformed_catalogue(void **state)
{
    size_t n = sizeof(cases) / sizeof(cases[0]);
    int bad = 0;

    for (size_t i = 0; i < n; i++) {
        struct gw w;
        if (!strcmp(cases[i].what, "tensor name too long"))
            build_long_name(&w);
        else
            build_case(&w, &cases[i]);
        bad += check_fail(w.p, w.len, cases[i].rc, cases[i].phrase, cases[i].what);
        free(w.p);
    }
    print_message("%zu malformed files checked\n", n);
    assert_int_equal(bad, 0);
}

/* Truncation at each section boundary and inside each section, with the
 * message expected there. */
static void test_truncated_sections(void **state)
{
    struct gw w;
    struct marks m;
    int bad = 0;

    build(&w, &(struct fdesc){ 0 }, &m);
    /* The padding case needs tensor infos that do not end aligned. */
    assert_true(m.infos_end % 32 != 0);
    const struct {
        const char *what;
        size_t len;
        const char *phrase;
    } t[] = {
        { "empty", 0, "header: truncated magic" },
        { "in magic", 2, "header: truncated magic" },
        { "in version", 6, "header: truncated version" },
        { "in n_tensors", 12, "header: truncated tensor count" },
        { "in n_kv", 20, "header: truncated key/value count" },
        { "after header", 24, "header: n_kv 4 cannot fit" },
        { "in key length", m.key3 + 3, "key/value 3: truncated key" },
        { "in key", m.key3 + 8 + 3, "key/value 3: key of 8 bytes runs past the end" },
        { "in value type", m.value3 - 2, "key 'test.u32': truncated value type" },
        { "in value", m.value3 + 2, "key 'test.u32': truncated value:" },
        { "in array count", m.words_count + 4, "key 'test.words': truncated array count" },
        { "in array string", m.words_def + 9,
          "key 'test.words': array string of 3 bytes runs past the end" },
        { "in array string length", m.words_def + 7, "key 'test.words': truncated array string" },
        { "in array, count check", m.words_def, "key 'test.words': array of 3 strings cannot fit" },
        { "at tensor info", m.tinfo1, "tensor 1: truncated tensor name" },
        { "in tensor name", m.tinfo1 + 8, "tensor 1: tensor name of 1 bytes runs past" },
        { "in dimensions", m.tinfo1_dims + 4, "tensor 'b': truncated dimension" },
        { "in tensor type", m.infos_end - 10, "tensor 'b': truncated tensor type" },
        { "in tensor offset", m.infos_end - 4, "tensor 'b': truncated tensor offset" },
        { "after tensor infos", m.infos_end, "data section: starts at offset" },
        { "in padding", m.data_start - 1, "data section: starts at offset" },
        { "at data start", m.data_start, "tensor 'a': data at offset 0 of 64 bytes runs past" },
        { "in data", m.data_start + 70, "tensor 'b': data at offset 64 of 34 bytes runs past" },
        { "last byte missing", w.len - 1, "tensor 'b': data at offset 64" },
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        bad += check_fail(w.p, t[i].len, -EBADMSG, t[i].phrase, t[i].what);
    /* And every other length. */
    for (size_t len = 0; len < w.len; len++)
        bad += check_fail(w.p, len, -EBADMSG, NULL, "truncated mini file");
    free(w.p);
    assert_int_equal(bad, 0);
}

/* ---- typed getters ---- */

static void extra_getters(struct gw *w)
{
    float f = 1.5f;
    double d = 2.25, big = 1e300;
    gw_key(w, "t.u8", 0), gw_u8(w, 200);
    gw_key(w, "t.i8", 1), gw_u8(w, 0xff);
    gw_key(w, "t.u16", 2), gw_bytes(w, &(uint16_t){ 65535 }, 2);
    gw_key(w, "t.i16", 3), gw_bytes(w, &(int16_t){ -300 }, 2);
    gw_key(w, "t.i32", 5), gw_bytes(w, &(int32_t){ 123 }, 4);
    gw_key(w, "t.u64big", 10), gw_u64(w, 1ull << 40);
    gw_key(w, "t.i64", 11), gw_u64(w, 1ull << 35);
    gw_key(w, "t.f32", 6), gw_bytes(w, &f, 4);
    gw_key(w, "t.f64", 12), gw_bytes(w, &d, 8);
    gw_key(w, "t.f64big", 12), gw_bytes(w, &big, 8);
    gw_key(w, "t.bool", 7), gw_u8(w, 1);
    gw_key(w, "t.str", 8), gw_str(w, "hello");
    gw_key(w, "t.arr", 9), gw_u32(w, 4), gw_u64(w, 3), gw_u32(w, 1), gw_u32(w, 2), gw_u32(w, 3);
}

#define ERR err, sizeof(err)

static void expect_err(int got, int want, const char *err, const char *phrase)
{
    if (got != want || !strstr(err, phrase))
        print_error("got %d '%s', want %d with '%s'\n", got, err, want, phrase);
    assert_int_equal(got, want);
    assert_non_null(strstr(err, phrase));
}

static void test_getters_int(void **state)
{
    struct gw w;
    uint8_t *copy;
    char err[LLM_GGUF_ERR_MAX];
    uint32_t u;
    uint64_t u64;

    build(&w, &(struct fdesc){ .extra = extra_getters, .n_extra = 13 }, NULL);
    struct llm_gguf *g = parse_ok(&w, &copy);

    assert_int_equal(llm_gguf_get_u32(g, "t.u8", &u, ERR), 0);
    assert_int_equal(u, 200);
    assert_int_equal(llm_gguf_get_u32(g, "t.u16", &u, ERR), 0);
    assert_int_equal(u, 65535);
    assert_int_equal(llm_gguf_get_u32(g, "t.i32", &u, ERR), 0);
    assert_int_equal(u, 123);
    assert_int_equal(llm_gguf_get_u64(g, "t.i64", &u64, ERR), 0);
    assert_int_equal(u64, 1ull << 35);
    assert_int_equal(llm_gguf_get_u64(g, "t.u64big", &u64, ERR), 0);
    assert_int_equal(u64, 1ull << 40);
    expect_err(llm_gguf_get_u32(g, "t.u64big", &u, ERR), -ERANGE, err,
               NAME ": key 't.u64big': value 1099511627776 out of range 0..4294967295");
    expect_err(llm_gguf_get_u32(g, "t.i8", &u, ERR), -ERANGE, err,
               "key 't.i8': value -1 out of range");
    expect_err(llm_gguf_get_u64(g, "t.i16", &u64, ERR), -ERANGE, err, "value -300 out of range");
    expect_err(llm_gguf_get_u32(g, "t.f32", &u, ERR), -EINVAL, err,
               "key 't.f32': type f32, expected an integer");
    expect_err(llm_gguf_get_u64(g, "t.str", &u64, ERR), -EINVAL, err,
               "type string, expected an integer");
    expect_err(llm_gguf_get_u32(g, "t.missing", &u, ERR), -ENOENT, err,
               "key 't.missing' not found");
    assert_int_equal(llm_gguf_get_u32(g, "t.missing", &u, NULL, 0), -ENOENT);
    llm_gguf_free(g);
    free(copy);
    free(w.p);
}

static void test_getters_other(void **state)
{
    struct gw w;
    uint8_t *copy;
    char err[LLM_GGUF_ERR_MAX];
    uint32_t u;
    uint64_t u64;
    float f;
    bool b;
    struct llm_gguf_str s;
    const void *arr;

    build(&w, &(struct fdesc){ .extra = extra_getters, .n_extra = 13 }, NULL);
    struct llm_gguf *g = parse_ok(&w, &copy);

    assert_int_equal(llm_gguf_get_f32(g, "t.f32", &f, ERR), 0);
    assert_float_equal(f, 1.5f, 0);
    assert_int_equal(llm_gguf_get_f32(g, "t.f64", &f, ERR), 0);
    assert_float_equal(f, 2.25f, 0);
    expect_err(llm_gguf_get_f32(g, "t.f64big", &f, ERR), -ERANGE, err, "out of f32 range");
    expect_err(llm_gguf_get_f32(g, "t.u8", &f, ERR), -EINVAL, err, "type u8, expected f32 or f64");

    assert_int_equal(llm_gguf_get_bool(g, "t.bool", &b, ERR), 0);
    assert_true(b);
    expect_err(llm_gguf_get_bool(g, "t.u8", &b, ERR), -EINVAL, err, "expected bool");

    assert_int_equal(llm_gguf_get_str(g, "t.str", &s, ERR), 0);
    assert_true(str_eq(s, "hello"));
    expect_err(llm_gguf_get_str(g, "t.bool", &s, ERR), -EINVAL, err, "type bool, expected string");

    assert_int_equal(llm_gguf_get_arr(g, "t.arr", LLM_GGUF_U32, &arr, &u64, ERR), 0);
    assert_int_equal(u64, 3);
    memcpy(&u, (const char *)arr + 8, 4);
    assert_int_equal(u, 3);
    expect_err(llm_gguf_get_arr(g, "t.arr", LLM_GGUF_I32, &arr, &u64, ERR), -EINVAL, err,
               "array of u32, expected an array of i32");
    expect_err(llm_gguf_get_arr(g, "t.u8", LLM_GGUF_U32, &arr, &u64, ERR), -EINVAL, err,
               "type u8, expected an array of u32");
    expect_err(llm_gguf_get_arr(g, "t.nope", LLM_GGUF_U32, &arr, &u64, ERR), -ENOENT, err,
               "not found");

    /* arr_str wants a string array of this very file. */
    assert_int_equal(llm_gguf_arr_str(g, llm_gguf_find_kv(g, "t.arr"), 0, &s), -EINVAL);
    assert_int_equal(llm_gguf_arr_str(g, NULL, 0, &s), -EINVAL);
    struct llm_gguf_kv copy_kv = *llm_gguf_find_kv(g, "test.words");
    assert_int_equal(llm_gguf_arr_str(g, &copy_kv, 0, &s), -EINVAL);
    assert_int_equal(llm_gguf_arr_str(g, llm_gguf_find_kv(g, "test.words"), 3, &s), -ERANGE);
    assert_int_equal(llm_gguf_arr_str(g, llm_gguf_find_kv(g, "test.words"), 0, &s), 0);
    assert_true(str_eq(s, "a"));
    llm_gguf_free(g);
    free(copy);
    free(w.p);
}

/* ---- open() and type traits ---- */

/* Issue #20: a FIFO as the model path is refused at once; it used to block
 * open() until a writer came (alarm: fail rather than hang). */
static void test_open_fifo(void **state)
{
    char err[LLM_GGUF_ERR_MAX], dir[] = "/tmp/test_gguf_XXXXXX", path[64];
    struct llm_gguf *g = NULL;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/model.gguf", dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    alarm(10);
    expect_err(llm_gguf_open(path, &g, ERR), -EINVAL, err,
               "model.gguf: is a FIFO, not a regular file");
    alarm(0);
    assert_null(g);
    unlink(path);
    rmdir(dir);
}

static void test_open_errors(void **state)
{
    char err[LLM_GGUF_ERR_MAX], path[] = "/tmp/test_gguf_XXXXXX";
    struct llm_gguf *g = (struct llm_gguf *)&err;
    struct gw w;

    expect_err(llm_gguf_open("/nonexistent/x.gguf", &g, ERR), -ENOENT, err,
               "/nonexistent/x.gguf: cannot open: No such file");
    assert_null(g);
    expect_err(llm_gguf_open("/tmp", &g, ERR), -EISDIR, err,
               "/tmp: is a directory, not a regular file");
    expect_err(llm_gguf_open("/dev/null", &g, ERR), -EINVAL, err,
               "/dev/null: is a character device, not a regular file");

    int fd = mkstemp(path);
    assert_true(fd >= 0);
    expect_err(llm_gguf_open(path, &g, ERR), -EBADMSG, err, "truncated magic");
    build_std(&w);
    assert_int_equal(write(fd, w.p, w.len), (ssize_t)w.len);
    close(fd);
    free(w.p);
    assert_int_equal(llm_gguf_open(path, &g, ERR), 0);
    unlink(path);
    /* Still mapped after unlink and close. */
    assert_int_equal(((const uint8_t *)llm_gguf_find_tensor(g, "a")->data)[1], 8);
    llm_gguf_free(g);
    llm_gguf_free(NULL);
}

static void test_type_traits(void **state)
{
    static const struct {
        uint32_t type, elems, bytes;
        const char *name;
    } want[] = {
        { LLM_GGML_F32, 1, 4, "f32" },       { LLM_GGML_F16, 1, 2, "f16" },
        { LLM_GGML_BF16, 1, 2, "bf16" },     { LLM_GGML_Q4_0, 32, 18, "q4_0" },
        { LLM_GGML_Q4_1, 32, 20, "q4_1" },   { LLM_GGML_Q5_0, 32, 22, "q5_0" },
        { LLM_GGML_Q5_1, 32, 24, "q5_1" },   { LLM_GGML_Q8_0, 32, 34, "q8_0" },
        { LLM_GGML_Q8_1, 32, 36, "q8_1" },   { LLM_GGML_Q2_K, 256, 84, "q2_K" },
        { LLM_GGML_Q3_K, 256, 110, "q3_K" }, { LLM_GGML_Q4_K, 256, 144, "q4_K" },
        { LLM_GGML_Q5_K, 256, 176, "q5_K" }, { LLM_GGML_Q6_K, 256, 210, "q6_K" },
        { LLM_GGML_Q8_K, 256, 292, "q8_K" },
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        assert_int_equal(llm_ggml_block_elems(want[i].type), want[i].elems);
        assert_int_equal(llm_ggml_block_bytes(want[i].type), want[i].bytes);
        assert_string_equal(llm_ggml_type_name(want[i].type), want[i].name);
    }
    for (uint32_t t = 0; t < 64; t++) {
        bool known = t <= 3 || (t >= 6 && t <= 15) || t == 30;
        assert_int_equal(llm_ggml_block_elems(t) != 0, known);
    }
    assert_string_equal(llm_ggml_type_name(4), "unknown");
    assert_int_equal(llm_ggml_block_elems(UINT32_MAX), 0);
    assert_int_equal(llm_ggml_row_bytes(LLM_GGML_Q4_K, 512), 288);
    assert_int_equal(llm_ggml_row_bytes(LLM_GGML_Q8_0, 1408), 1496);
    assert_int_equal(llm_ggml_row_bytes(LLM_GGML_Q4_K, 1408), 0);
    assert_int_equal(llm_ggml_row_bytes(LLM_GGML_F32, UINT64_MAX / 2), 0);
    assert_int_equal(llm_ggml_row_bytes(4, 32), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stories260k_metadata), cmocka_unit_test(test_stories260k_vocab),
        cmocka_unit_test(test_stories260k_tensors),  cmocka_unit_test(test_kernelc_f16),
        cmocka_unit_test(test_kernelc_q4_k_m),       cmocka_unit_test(test_stories_truncated),
        cmocka_unit_test(test_built_valid),          cmocka_unit_test(test_built_limits),
        cmocka_unit_test(test_malformed_catalogue),  cmocka_unit_test(test_truncated_sections),
        cmocka_unit_test(test_getters_int),          cmocka_unit_test(test_getters_other),
        cmocka_unit_test(test_open_errors),          cmocka_unit_test(test_open_fifo),
        cmocka_unit_test(test_type_traits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
