/* GGUF v2/v3 reader. File layout (ggml docs/gguf.md): header (magic "GGUF",
 * u32 version, u64 n_tensors, u64 n_kv), n_kv key/values, n_tensors tensor
 * infos, zero padding up to the alignment, then the data section that tensor
 * offsets are relative to. Everything is little-endian and packed.
 *
 * Every read goes through need(), which checks the byte count against what is
 * left, so no count, length or offset from the file is used before it has been
 * bounded by the file size. Arrays grow as entries are actually parsed, so a
 * header count never drives an allocation on its own. */
#include "llama/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "llama/llm-internal.h"

/* Values are read in place from the mapping. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "GGUF reader needs a little-endian host");

#define HEADER_BYTES 24
#define DEFAULT_ALIGNMENT 32
/* Larger than any page size or GPU buffer alignment; anything above is a
 * corrupt value rather than a choice. */
#define MAX_ALIGNMENT (1u << 20)
#define MAX_KEY_LEN 65535
/* Smallest encodings, used to bound counts by the bytes left: a kv is a key
 * length, a 1-byte key, a type and a 1-byte value; a tensor info is a name
 * length, a 1-byte name, n_dims, one dimension, a type and an offset; an
 * array value is an element type and a count. */
#define MIN_KV_BYTES (8 + 1 + 4 + 1)
#define MIN_TINFO_BYTES (8 + 1 + 4 + 8 + 4 + 8)
#define MIN_ARRAY_BYTES (4 + 8)
#define STR_LEN_BYTES 8

struct name_ref {
    const char *ptr;
    uint64_t len;
    uint64_t idx;
};

struct llm_gguf {
    const uint8_t *base;
    size_t size;
    void *map; /* set when llm_gguf_open mapped the file */
    size_t map_len;
    char *name;
    uint32_t version;
    uint64_t alignment;
    uint64_t data_off;

    uint64_t n_kv, cap_kv, cap_str_off;
    struct llm_gguf_kv *kv;
    /* Per kv: offset of each element's length prefix for a string array
     * (the O(1) index behind llm_gguf_arr_str), NULL otherwise. */
    uint64_t **str_off;
    struct name_ref *kv_sorted;

    uint64_t n_tensors, cap_tensors;
    struct llm_gguf_tensor *tensors;
    struct name_ref *t_sorted;
};

/* Parse cursor plus what is needed to word an error. */
struct rd {
    const uint8_t *p;
    size_t size;
    size_t off;
    const char *name;
    char ctx[320]; /* the item being read: "header", "key 'x'", "tensor 'y'" */
    char *err;
    size_t errlen;
};

static const struct {
    const char *name;
    uint8_t size; /* 0: variable (string, array) */
} vtypes[] = {
    [LLM_GGUF_U8] = { "u8", 1 },         [LLM_GGUF_I8] = { "i8", 1 },
    [LLM_GGUF_U16] = { "u16", 2 },       [LLM_GGUF_I16] = { "i16", 2 },
    [LLM_GGUF_U32] = { "u32", 4 },       [LLM_GGUF_I32] = { "i32", 4 },
    [LLM_GGUF_F32] = { "f32", 4 },       [LLM_GGUF_BOOL] = { "bool", 1 },
    [LLM_GGUF_STRING] = { "string", 0 }, [LLM_GGUF_ARRAY] = { "array", 0 },
    [LLM_GGUF_U64] = { "u64", 8 },       [LLM_GGUF_I64] = { "i64", 8 },
    [LLM_GGUF_F64] = { "f64", 8 },
};

static bool vtype_known(uint32_t t)
{
    return t <= LLM_GGUF_F64;
}

static const char *vtype_name(uint32_t t)
{
    return vtype_known(t) ? vtypes[t].name : "unknown";
}

static void verrf(char *err, size_t errlen, const char *prefix, const char *fmt, va_list ap)
{
    if (!err || !errlen)
        return;
    int n = snprintf(err, errlen, "%s", prefix);
    if (n >= 0 && (size_t)n < errlen)
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
}

__attribute__((format(printf, 3, 4))) static void errf(char *err, size_t errlen, const char *fmt,
                                                       ...)
{
    va_list ap;
    va_start(ap, fmt);
    verrf(err, errlen, "", fmt, ap);
    va_end(ap);
}

/* Writes "name: ctx: detail" and returns code. */
__attribute__((format(printf, 3, 4))) static int fail(struct rd *r, int code, const char *fmt, ...)
{
    char prefix[sizeof(r->ctx) + 300];
    snprintf(prefix, sizeof(prefix), "%.256s: %s%s", r->name, r->ctx, r->ctx[0] ? ": " : "");
    va_list ap;
    va_start(ap, fmt);
    verrf(r->err, r->errlen, prefix, fmt, ap);
    va_end(ap);
    return code;
}

/* Copies a string from the file for a message: printable ASCII only, so that
 * a hostile file cannot put a newline or a terminal escape into a log line. */
static void printable(char *dst, size_t cap, const char *s, uint64_t len)
{
    size_t max = cap - 4, n = 0;
    for (uint64_t i = 0; i < len && n < max; i++)
        dst[n++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    if (len > max)
        memcpy(dst + n, "...", 3), n += 3;
    dst[n] = '\0';
}

/* Names the item being read; tensor names are shown whole (they are at most
 * 255 bytes), keys up to 80 bytes. */
static void set_ctx(struct rd *r, const char *what, const char *s, uint64_t len)
{
    char buf[260];
    printable(buf, strcmp(what, "tensor") ? 80 + 4 : sizeof(buf), s, len);
    snprintf(r->ctx, sizeof(r->ctx), "%s '%s'", what, buf);
}

static int need(struct rd *r, uint64_t n, const char *what)
{
    if (n > r->size - r->off)
        return fail(r, -EBADMSG,
                    "truncated %s: %" PRIu64 " bytes needed at offset %zu, file has %zu", what, n,
                    r->off, r->size);
    return 0;
}

static int rd_u32(struct rd *r, uint32_t *v, const char *what)
{
    int e = need(r, 4, what);
    if (e)
        return e;
    memcpy(v, r->p + r->off, 4);
    r->off += 4;
    return 0;
}

static int rd_u64(struct rd *r, uint64_t *v, const char *what)
{
    int e = need(r, 8, what);
    if (e)
        return e;
    memcpy(v, r->p + r->off, 8);
    r->off += 8;
    return 0;
}

static int rd_str(struct rd *r, struct llm_gguf_str *s, const char *what)
{
    uint64_t len;
    int e = rd_u64(r, &len, what);
    if (e)
        return e;
    if (len > r->size - r->off)
        return fail(r, -EBADMSG,
                    "%s of %" PRIu64 " bytes runs past the end of the file (%zu bytes left)", what,
                    len, r->size - r->off);
    s->ptr = (const char *)r->p + r->off;
    s->len = len;
    r->off += len;
    return 0;
}

/* Doubles *cap until it holds n elements. */
static int grow(void **arr, uint64_t *cap, uint64_t n, size_t elsize)
{
    if (n <= *cap)
        return 0;
    uint64_t ncap = *cap ? *cap : 16;
    while (ncap < n)
        ncap *= 2;
    if (ncap > SIZE_MAX / elsize)
        return -ENOMEM;
    void *p = realloc(*arr, ncap * elsize);
    if (!p)
        return -ENOMEM;
    *arr = p;
    *cap = ncap;
    return 0;
}

static int parse_header(struct llm_gguf *g, struct rd *r, uint64_t *n_kv)
{
    uint32_t version;
    int e;

    snprintf(r->ctx, sizeof(r->ctx), "header");
    if ((e = need(r, 4, "magic")))
        return e;
    if (memcmp(r->p, "GGUF", 4))
        return fail(r, -EBADMSG, "bad magic %02x %02x %02x %02x, expected \"GGUF\"", r->p[0],
                    r->p[1], r->p[2], r->p[3]);
    r->off = 4;
    if ((e = rd_u32(r, &version, "version")))
        return e;
    if (version == 1)
        return fail(r, -ENOTSUP,
                    "GGUF version 1 is not supported (it used 32-bit counts); "
                    "convert the file again with a current llama.cpp");
    if (__builtin_bswap32(version) == 2 || __builtin_bswap32(version) == 3)
        return fail(r, -ENOTSUP, "big-endian GGUF file; only little-endian files are supported");
    if (version != 2 && version != 3)
        return fail(r, -ENOTSUP, "unsupported GGUF version %" PRIu32 " (2 and 3 are supported)",
                    version);
    g->version = version;
    if ((e = rd_u64(r, &g->n_tensors, "tensor count")) || (e = rd_u64(r, n_kv, "key/value count")))
        return e;

    uint64_t left = r->size - r->off;
    if (*n_kv > left / MIN_KV_BYTES)
        return fail(r, -EBADMSG, "n_kv %" PRIu64 " cannot fit in the %" PRIu64 " bytes left", *n_kv,
                    left);
    left -= *n_kv * MIN_KV_BYTES;
    if (g->n_tensors > left / MIN_TINFO_BYTES)
        return fail(r, -EBADMSG,
                    "n_tensors %" PRIu64 " cannot fit in the %" PRIu64 " bytes left after %" PRIu64
                    " key/values",
                    g->n_tensors, left, *n_kv);
    return 0;
}

/* Skips n elements of type t; for a top-level string array, records where
 * each string starts in so[]. depth counts this array's nesting level. */
static int walk_elems(struct rd *r, uint32_t t, uint64_t n, uint64_t *so, unsigned depth)
{
    uint64_t left = r->size - r->off, bytes;
    int e;

    if (!vtype_known(t))
        return fail(r, -EBADMSG, "unknown array element type %" PRIu32, t);
    if (t == LLM_GGUF_STRING) {
        if (n > left / STR_LEN_BYTES)
            return fail(r, -EBADMSG,
                        "array of %" PRIu64 " strings cannot fit in the %" PRIu64 " bytes left", n,
                        left);
        for (uint64_t i = 0; i < n; i++) {
            struct llm_gguf_str s;
            if (so)
                so[i] = r->off;
            if ((e = rd_str(r, &s, "array string")))
                return e;
        }
        return 0;
    }
    if (t == LLM_GGUF_ARRAY) {
        if (depth >= LLM_GGUF_MAX_NESTING)
            return fail(r, -EBADMSG, "arrays nested deeper than %d levels", LLM_GGUF_MAX_NESTING);
        if (n > left / MIN_ARRAY_BYTES)
            return fail(r, -EBADMSG,
                        "array of %" PRIu64 " arrays cannot fit in the %" PRIu64 " bytes left", n,
                        left);
        for (uint64_t i = 0; i < n; i++) {
            uint32_t et;
            uint64_t en;
            if ((e = rd_u32(r, &et, "nested array type")) ||
                (e = rd_u64(r, &en, "nested array count")) ||
                (e = walk_elems(r, et, en, NULL, depth + 1)))
                return e;
        }
        return 0;
    }
    if (__builtin_mul_overflow(n, (uint64_t)vtypes[t].size, &bytes))
        return fail(r, -EBADMSG, "array of %" PRIu64 " %s elements: byte size overflows 64 bits", n,
                    vtypes[t].name);
    if (bytes > left)
        return fail(r, -EBADMSG,
                    "array of %" PRIu64 " %s elements (%" PRIu64
                    " bytes) runs past the end of the file "
                    "(%" PRIu64 " bytes left)",
                    n, vtypes[t].name, bytes, left);
    r->off += bytes;
    return 0;
}

static int parse_array(struct rd *r, struct llm_gguf_kv *kv, uint64_t **ret_so)
{
    uint32_t t;
    uint64_t n;
    int e;

    if ((e = rd_u32(r, &t, "array type")) || (e = rd_u64(r, &n, "array count")))
        return e;
    if (!vtype_known(t))
        return fail(r, -EBADMSG, "unknown array element type %" PRIu32, t);
    kv->arr_type = (enum llm_gguf_vtype)t;
    kv->arr_n = n;
    kv->v.arr = r->p + r->off;
    if (t == LLM_GGUF_STRING && n > 0) {
        /* Bounded first, so the index costs at most the strings' own bytes. */
        if (n > (r->size - r->off) / STR_LEN_BYTES)
            return fail(r, -EBADMSG,
                        "array of %" PRIu64 " strings cannot fit in the %zu bytes left", n,
                        r->size - r->off);
        *ret_so = malloc(n * sizeof(uint64_t));
        if (!*ret_so)
            return fail(r, -ENOMEM, "out of memory for a %" PRIu64 "-string index", n);
    }
    return walk_elems(r, t, n, *ret_so, 1);
}

static int parse_scalar(struct rd *r, uint32_t t, struct llm_gguf_kv *kv)
{
    const uint8_t *q;
    int e = need(r, vtypes[t].size, "value");
    if (e)
        return e;
    q = r->p + r->off;
    r->off += vtypes[t].size;
    union {
        uint8_t u8;
        int8_t i8;
        uint16_t u16;
        int16_t i16;
        uint32_t u32;
        int32_t i32;
        float f32;
        uint64_t u64;
        int64_t i64;
        double f64;
    } x;
    memcpy(&x, q, vtypes[t].size);
    switch (t) {
    case LLM_GGUF_U8: kv->v.u64 = x.u8; break;
    case LLM_GGUF_I8: kv->v.i64 = x.i8; break;
    case LLM_GGUF_U16: kv->v.u64 = x.u16; break;
    case LLM_GGUF_I16: kv->v.i64 = x.i16; break;
    case LLM_GGUF_U32: kv->v.u64 = x.u32; break;
    case LLM_GGUF_I32: kv->v.i64 = x.i32; break;
    case LLM_GGUF_F32: kv->v.f64 = x.f32; break;
    case LLM_GGUF_U64: kv->v.u64 = x.u64; break;
    case LLM_GGUF_I64: kv->v.i64 = x.i64; break;
    case LLM_GGUF_F64: kv->v.f64 = x.f64; break;
    case LLM_GGUF_BOOL:
        if (x.u8 > 1)
            return fail(r, -EBADMSG, "bool value %u is neither 0 nor 1", x.u8);
        kv->v.b = x.u8;
        break;
    }
    return 0;
}

static int parse_value(struct rd *r, uint32_t t, struct llm_gguf_kv *kv, uint64_t **ret_so)
{
    if (!vtype_known(t))
        return fail(r, -EBADMSG, "unknown value type %" PRIu32, t);
    kv->type = (enum llm_gguf_vtype)t;
    if (t == LLM_GGUF_STRING)
        return rd_str(r, &kv->v.str, "string value");
    if (t == LLM_GGUF_ARRAY)
        return parse_array(r, kv, ret_so);
    return parse_scalar(r, t, kv);
}

static int push_kv(struct llm_gguf *g, const struct llm_gguf_kv *kv, uint64_t *so)
{
    if (grow((void **)&g->kv, &g->cap_kv, g->n_kv + 1, sizeof(*g->kv)) ||
        grow((void **)&g->str_off, &g->cap_str_off, g->n_kv + 1, sizeof(*g->str_off)))
        return -ENOMEM;
    g->kv[g->n_kv] = *kv;
    g->str_off[g->n_kv] = so;
    g->n_kv++;
    return 0;
}

static int parse_kvs(struct llm_gguf *g, struct rd *r, uint64_t n_kv)
{
    for (uint64_t i = 0; i < n_kv; i++) {
        struct llm_gguf_kv kv = { 0 };
        uint64_t *so = NULL;
        uint32_t t;
        int e;

        snprintf(r->ctx, sizeof(r->ctx), "key/value %" PRIu64, i);
        if ((e = rd_str(r, &kv.key, "key")))
            return e;
        if (kv.key.len == 0 || kv.key.len > MAX_KEY_LEN)
            return fail(r, -EBADMSG, "key length %" PRIu64 " not in 1..%d", kv.key.len,
                        MAX_KEY_LEN);
        set_ctx(r, "key", kv.key.ptr, kv.key.len);
        if ((e = rd_u32(r, &t, "value type")) || (e = parse_value(r, t, &kv, &so)) ||
            (e = push_kv(g, &kv, so))) {
            free(so);
            return e == -ENOMEM ? fail(r, e, "out of memory") : e;
        }
    }
    return 0;
}

static int ref_cmp(const void *a, const void *b)
{
    const struct name_ref *x = a, *y = b;
    uint64_t n = x->len < y->len ? x->len : y->len;
    int c = n ? memcmp(x->ptr, y->ptr, n) : 0;
    if (c)
        return c;
    return (x->len > y->len) - (x->len < y->len);
}

/* Sorts refs by name and returns the index of a duplicate, or -1. */
static int64_t sort_refs(struct name_ref *refs, uint64_t n, uint64_t *ret_other)
{
    if (n > 1)
        qsort(refs, n, sizeof(*refs), ref_cmp);
    for (uint64_t i = 1; i < n; i++) {
        if (!ref_cmp(&refs[i - 1], &refs[i])) {
            bool later = refs[i].idx > refs[i - 1].idx;
            *ret_other = later ? refs[i - 1].idx : refs[i].idx;
            return (int64_t)(later ? refs[i].idx : refs[i - 1].idx);
        }
    }
    return -1;
}

static int index_kvs(struct llm_gguf *g, struct rd *r)
{
    uint64_t other;
    int64_t dup;

    g->kv_sorted = malloc((g->n_kv ? g->n_kv : 1) * sizeof(*g->kv_sorted));
    if (!g->kv_sorted)
        return fail(r, -ENOMEM, "out of memory");
    for (uint64_t i = 0; i < g->n_kv; i++)
        g->kv_sorted[i] = (struct name_ref){ g->kv[i].key.ptr, g->kv[i].key.len, i };
    dup = sort_refs(g->kv_sorted, g->n_kv, &other);
    if (dup >= 0) {
        const struct llm_gguf_kv *kv = &g->kv[dup];
        set_ctx(r, "key", kv->key.ptr, kv->key.len);
        return fail(r, -EBADMSG, "duplicate key (key/values %" PRIu64 " and %" PRId64 ")", other,
                    dup);
    }
    return 0;
}

static int read_alignment(struct llm_gguf *g, struct rd *r)
{
    const struct llm_gguf_kv *kv = llm_gguf_find_kv(g, "general.alignment");

    g->alignment = DEFAULT_ALIGNMENT;
    if (!kv)
        return 0;
    snprintf(r->ctx, sizeof(r->ctx), "key 'general.alignment'");
    if (kv->type != LLM_GGUF_U32)
        return fail(r, -EBADMSG, "type %s, expected u32", vtype_name(kv->type));
    if (kv->v.u64 == 0 || (kv->v.u64 & (kv->v.u64 - 1)))
        return fail(r, -EBADMSG, "%" PRIu64 " is not a nonzero power of two", kv->v.u64);
    if (kv->v.u64 > MAX_ALIGNMENT)
        return fail(r, -EBADMSG, "%" PRIu64 " exceeds the largest sane alignment %u", kv->v.u64,
                    MAX_ALIGNMENT);
    g->alignment = kv->v.u64;
    return 0;
}

/* Dimensions, element count, type and byte size of one tensor. */
static int check_shape(struct rd *r, struct llm_gguf_tensor *t)
{
    uint64_t n = 1, blk = llm_ggml_block_elems(t->type), rb;

    for (uint32_t d = 0; d < t->n_dims; d++) {
        if (t->ne[d] == 0)
            return fail(r, -EBADMSG, "dimension %" PRIu32 " is 0", d);
        /* ggml counts elements in int64_t. */
        if (__builtin_mul_overflow(n, t->ne[d], &n) || n > INT64_MAX)
            return fail(r, -EBADMSG,
                        "element count overflows at dimension %" PRIu32 " (%" PRIu64 ")", d,
                        t->ne[d]);
    }
    for (uint32_t d = t->n_dims; d < LLM_GGUF_MAX_DIMS; d++)
        t->ne[d] = 1;
    t->n_elements = n;
    if (!blk)
        return fail(r, -EBADMSG, "unknown ggml type %" PRIu32, t->type);
    if (t->ne[0] % blk)
        return fail(r, -EBADMSG,
                    "row length %" PRIu64 " is not a multiple of the %s block size %" PRIu64,
                    t->ne[0], llm_ggml_type_name(t->type), blk);
    rb = llm_ggml_row_bytes(t->type, t->ne[0]);
    if (!rb || __builtin_mul_overflow(rb, n / t->ne[0], &t->size))
        return fail(r, -EBADMSG, "byte size of %" PRIu64 " %s elements overflows 64 bits", n,
                    llm_ggml_type_name(t->type));
    return 0;
}

static int parse_tinfo(struct rd *r, uint64_t i, struct llm_gguf_tensor *t)
{
    struct llm_gguf_str name;
    int e;

    snprintf(r->ctx, sizeof(r->ctx), "tensor %" PRIu64, i);
    if ((e = rd_str(r, &name, "tensor name")))
        return e;
    if (name.len == 0)
        return fail(r, -EBADMSG, "empty tensor name");
    if (name.len > sizeof(t->name) - 1)
        return fail(r, -EBADMSG, "name of %" PRIu64 " bytes exceeds %zu", name.len,
                    sizeof(t->name) - 1);
    if (memchr(name.ptr, 0, name.len))
        return fail(r, -EBADMSG, "tensor name contains a NUL byte");
    memcpy(t->name, name.ptr, name.len);
    t->name[name.len] = '\0';
    set_ctx(r, "tensor", name.ptr, name.len);
    if ((e = rd_u32(r, &t->n_dims, "n_dims")))
        return e;
    if (t->n_dims < 1 || t->n_dims > LLM_GGUF_MAX_DIMS)
        return fail(r, -EBADMSG, "n_dims %" PRIu32 " not in 1..%d", t->n_dims, LLM_GGUF_MAX_DIMS);
    for (uint32_t d = 0; d < t->n_dims; d++)
        if ((e = rd_u64(r, &t->ne[d], "dimension")))
            return e;
    if ((e = rd_u32(r, &t->type, "tensor type")) || (e = rd_u64(r, &t->offset, "tensor offset")))
        return e;
    return check_shape(r, t);
}

static int parse_tinfos(struct llm_gguf *g, struct rd *r)
{
    uint64_t n = g->n_tensors;

    g->n_tensors = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (grow((void **)&g->tensors, &g->cap_tensors, i + 1, sizeof(*g->tensors)))
            return fail(r, -ENOMEM, "out of memory");
        struct llm_gguf_tensor *t = &g->tensors[i];
        memset(t, 0, sizeof(*t));
        int e = parse_tinfo(r, i, t);
        if (e)
            return e;
        g->n_tensors = i + 1;
    }
    return 0;
}

static int index_tensors(struct llm_gguf *g, struct rd *r)
{
    uint64_t other;
    int64_t dup;

    g->t_sorted = malloc((g->n_tensors ? g->n_tensors : 1) * sizeof(*g->t_sorted));
    if (!g->t_sorted)
        return fail(r, -ENOMEM, "out of memory");
    for (uint64_t i = 0; i < g->n_tensors; i++)
        g->t_sorted[i] = (struct name_ref){ g->tensors[i].name, strlen(g->tensors[i].name), i };
    dup = sort_refs(g->t_sorted, g->n_tensors, &other);
    if (dup >= 0) {
        set_ctx(r, "tensor", g->tensors[dup].name, strlen(g->tensors[dup].name));
        return fail(r, -EBADMSG, "duplicate tensor name (tensors %" PRIu64 " and %" PRId64 ")",
                    other, dup);
    }
    return 0;
}

static int off_cmp(const void *a, const void *b)
{
    const struct llm_gguf_tensor *const *x = a, *const *y = b;
    return ((*x)->offset > (*y)->offset) - ((*x)->offset < (*y)->offset);
}

/* Tensors sorted by offset: each must end before the next one starts. */
static int check_overlaps(struct llm_gguf *g, struct rd *r)
{
    const struct llm_gguf_tensor **by_off;
    int e = 0;

    if (g->n_tensors < 2)
        return 0;
    by_off = malloc(g->n_tensors * sizeof(*by_off));
    if (!by_off)
        return fail(r, -ENOMEM, "out of memory");
    for (uint64_t i = 0; i < g->n_tensors; i++)
        by_off[i] = &g->tensors[i];
    qsort(by_off, g->n_tensors, sizeof(*by_off), off_cmp);
    for (uint64_t i = 1; i < g->n_tensors && !e; i++) {
        const struct llm_gguf_tensor *a = by_off[i - 1], *b = by_off[i];
        /* a's end cannot overflow: place_data bounded it by the file size. */
        if (a->offset + a->size > b->offset) {
            set_ctx(r, "tensor", b->name, strlen(b->name));
            e = fail(r, -EBADMSG,
                     "data [%" PRIu64 ", %" PRIu64 ") overlaps tensor '%s' [%" PRIu64 ", %" PRIu64
                     ")",
                     b->offset, b->offset + b->size, a->name, a->offset, a->offset + a->size);
        }
    }
    free(by_off);
    return e;
}

/* Data section start after the tensor infos, then every tensor inside it. */
static int place_data(struct llm_gguf *g, struct rd *r)
{
    uint64_t start = ((uint64_t)r->off + g->alignment - 1) & ~(g->alignment - 1), data_len;

    snprintf(r->ctx, sizeof(r->ctx), "data section");
    if (start > r->size) {
        /* A file without tensors (a vocabulary-only file) may end unpadded. */
        if (g->n_tensors)
            return fail(r, -EBADMSG,
                        "starts at offset %" PRIu64 " (tensor infos end at %zu, aligned to %" PRIu64
                        "), past the end of the file (%zu bytes)",
                        start, r->off, g->alignment, r->size);
        start = r->size;
    }
    g->data_off = start;
    data_len = r->size - start;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        struct llm_gguf_tensor *t = &g->tensors[i];
        set_ctx(r, "tensor", t->name, strlen(t->name));
        if (t->offset % g->alignment)
            return fail(r, -EBADMSG, "offset %" PRIu64 " not aligned to %" PRIu64, t->offset,
                        g->alignment);
        if (t->offset > data_len || t->size > data_len - t->offset)
            return fail(r, -EBADMSG,
                        "data at offset %" PRIu64 " of %" PRIu64
                        " bytes runs past the end of the file "
                        "(data section is %" PRIu64 " bytes)",
                        t->offset, t->size, data_len);
        t->data = r->p + start + t->offset;
    }
    return 0;
}

static int parse_all(struct llm_gguf *g, struct rd *r)
{
    uint64_t n_kv = 0;
    int e;

    if ((e = parse_header(g, r, &n_kv)) || (e = parse_kvs(g, r, n_kv)) || (e = index_kvs(g, r)) ||
        (e = read_alignment(g, r)) || (e = parse_tinfos(g, r)) || (e = index_tensors(g, r)) ||
        (e = place_data(g, r)) || (e = check_overlaps(g, r)))
        return e;
    return 0;
}

int llm_gguf_parse(const void *data, size_t size, const char *name, struct llm_gguf **ret,
                   char *reterr, size_t errlen)
{
    struct llm_gguf *g;
    int e;

    if (reterr && errlen)
        reterr[0] = '\0';
    if (!ret || (!data && size)) {
        errf(reterr, errlen, "%s: invalid arguments", name ? name : "gguf");
        return -EINVAL;
    }
    *ret = NULL;
    g = calloc(1, sizeof(*g));
    if (!g || !(g->name = strdup(name ? name : "<memory>"))) {
        free(g);
        errf(reterr, errlen, "%s: out of memory", name ? name : "gguf");
        return -ENOMEM;
    }
    g->base = data;
    g->size = size;
    struct rd r = { .p = data, .size = size, .name = g->name, .err = reterr, .errlen = errlen };
    e = parse_all(g, &r);
    if (e) {
        llm_gguf_free(g);
        return e;
    }
    *ret = g;
    return 0;
}

static const char *file_kind(mode_t m)
{
    return S_ISFIFO(m) ? "a FIFO" :
           S_ISCHR(m)  ? "a character device" :
           S_ISBLK(m)  ? "a block device" :
           S_ISDIR(m)  ? "a directory" :
           S_ISSOCK(m) ? "a socket" :
                         "not a regular file";
}

int llm_open_regular(const char *path, struct stat *ret_st, char *reterr, size_t errlen)
{
    char ebuf[128];
    int fd = -EBADF, e;

    /* stat first, so that a device is not even opened; O_NONBLOCK, so that
     * a FIFO swapped in after the stat opens at once (and fstat refuses it) */
    if (stat(path, ret_st) < 0 ||
        (S_ISREG(ret_st->st_mode) && (fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) < 0) ||
        (fd >= 0 && (fstat(fd, ret_st) < 0 || fcntl(fd, F_SETFL, 0) < 0))) {
        e = -errno;
        if (fd >= 0)
            close(fd);
        return llm_fail(reterr, errlen, e, "%s: cannot open: %s", path,
                        strerror_r(-e, ebuf, sizeof(ebuf)));
    }
    if (!S_ISREG(ret_st->st_mode)) {
        if (fd >= 0)
            close(fd);
        return llm_fail(reterr, errlen, S_ISDIR(ret_st->st_mode) ? -EISDIR : -EINVAL,
                        "%s: is %s, not a regular file", path, file_kind(ret_st->st_mode));
    }
    return fd;
}

int llm_gguf_open(const char *path, struct llm_gguf **ret, char *reterr, size_t errlen)
{
    struct stat st;
    void *map = NULL;
    char ebuf[128];
    int fd, e;

    if (ret)
        *ret = NULL;
    fd = llm_open_regular(path, &st, reterr, errlen);
    if (fd < 0)
        return fd;
    /* mmap cannot map 0 bytes; the parser reports the empty file as truncated. */
    if (st.st_size > 0) {
        map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            e = -errno;
            errf(reterr, errlen, "%s: cannot mmap: %s", path, strerror_r(-e, ebuf, sizeof(ebuf)));
            close(fd);
            return e;
        }
    }
    close(fd);
    e = llm_gguf_parse(map, (size_t)st.st_size, path, ret, reterr, errlen);
    if (e) {
        if (map)
            munmap(map, (size_t)st.st_size);
        return e;
    }
    (*ret)->map = map;
    (*ret)->map_len = (size_t)st.st_size;
    return 0;
}

void llm_gguf_free(struct llm_gguf *g)
{
    if (!g)
        return;
    for (uint64_t i = 0; g->str_off && i < g->n_kv; i++)
        free(g->str_off[i]);
    free(g->str_off);
    free(g->kv);
    free(g->kv_sorted);
    free(g->tensors);
    free(g->t_sorted);
    free(g->name);
    if (g->map)
        munmap(g->map, g->map_len);
    free(g);
}

uint32_t llm_gguf_version(const struct llm_gguf *g)
{
    return g->version;
}

uint64_t llm_gguf_alignment(const struct llm_gguf *g)
{
    return g->alignment;
}

uint32_t llm_gguf_vtype_size(uint32_t t)
{
    return vtype_known(t) ? vtypes[t].size : 0;
}

const char *llm_gguf_name(const struct llm_gguf *g)
{
    return g->name;
}

uint64_t llm_gguf_data_offset(const struct llm_gguf *g)
{
    return g->data_off;
}

uint64_t llm_gguf_n_kv(const struct llm_gguf *g)
{
    return g->n_kv;
}

const struct llm_gguf_kv *llm_gguf_kv_at(const struct llm_gguf *g, uint64_t i)
{
    return i < g->n_kv ? &g->kv[i] : NULL;
}

static const struct name_ref *find_ref(const struct name_ref *refs, uint64_t n, const char *name)
{
    struct name_ref key = { name, strlen(name), 0 };
    if (!n)
        return NULL;
    return bsearch(&key, refs, n, sizeof(*refs), ref_cmp);
}

const struct llm_gguf_kv *llm_gguf_find_kv(const struct llm_gguf *g, const char *key)
{
    const struct name_ref *ref = find_ref(g->kv_sorted, g->n_kv, key);
    return ref ? &g->kv[ref->idx] : NULL;
}

uint64_t llm_gguf_n_tensors(const struct llm_gguf *g)
{
    return g->n_tensors;
}

const struct llm_gguf_tensor *llm_gguf_tensor_at(const struct llm_gguf *g, uint64_t i)
{
    return i < g->n_tensors ? &g->tensors[i] : NULL;
}

const struct llm_gguf_tensor *llm_gguf_find_tensor(const struct llm_gguf *g, const char *name)
{
    const struct name_ref *ref = find_ref(g->t_sorted, g->n_tensors, name);
    return ref ? &g->tensors[ref->idx] : NULL;
}

/* ---- typed getters ---- */

static const struct llm_gguf_kv *get_kv(const struct llm_gguf *g, const char *key, char *err,
                                        size_t errlen)
{
    const struct llm_gguf_kv *kv = llm_gguf_find_kv(g, key);
    if (!kv)
        errf(err, errlen, "%s: key '%s' not found", g->name, key);
    return kv;
}

__attribute__((format(printf, 5, 6))) static void
get_err(const struct llm_gguf *g, const char *key, char *err, size_t errlen, const char *fmt, ...)
{
    char prefix[512];
    va_list ap;
    snprintf(prefix, sizeof(prefix), "%.256s: key '%.200s': ", g->name, key);
    va_start(ap, fmt);
    verrf(err, errlen, prefix, fmt, ap);
    va_end(ap);
}

static bool is_signed(enum llm_gguf_vtype t)
{
    return t == LLM_GGUF_I8 || t == LLM_GGUF_I16 || t == LLM_GGUF_I32 || t == LLM_GGUF_I64;
}

static bool is_unsigned(enum llm_gguf_vtype t)
{
    return t == LLM_GGUF_U8 || t == LLM_GGUF_U16 || t == LLM_GGUF_U32 || t == LLM_GGUF_U64;
}

/* Any integer value as u64 no larger than max. */
static int get_uint(const struct llm_gguf *g, const char *key, uint64_t max, uint64_t *ret,
                    char *err, size_t errlen)
{
    const struct llm_gguf_kv *kv = get_kv(g, key, err, errlen);
    if (!kv)
        return -ENOENT;
    if (!is_signed(kv->type) && !is_unsigned(kv->type)) {
        get_err(g, key, err, errlen, "type %s, expected an integer", vtype_name(kv->type));
        return -EINVAL;
    }
    if (is_signed(kv->type) ? kv->v.i64 < 0 || (uint64_t)kv->v.i64 > max : kv->v.u64 > max) {
        if (is_signed(kv->type))
            get_err(g, key, err, errlen, "value %" PRId64 " out of range 0..%" PRIu64, kv->v.i64,
                    max);
        else
            get_err(g, key, err, errlen, "value %" PRIu64 " out of range 0..%" PRIu64, kv->v.u64,
                    max);
        return -ERANGE;
    }
    *ret = kv->v.u64; /* a non-negative i64 has the same bits */
    return 0;
}

int llm_gguf_get_u32(const struct llm_gguf *g, const char *key, uint32_t *ret, char *reterr,
                     size_t errlen)
{
    uint64_t v;
    int e = get_uint(g, key, UINT32_MAX, &v, reterr, errlen);
    if (!e)
        *ret = (uint32_t)v;
    return e;
}

int llm_gguf_get_u64(const struct llm_gguf *g, const char *key, uint64_t *ret, char *reterr,
                     size_t errlen)
{
    return get_uint(g, key, UINT64_MAX, ret, reterr, errlen);
}

int llm_gguf_get_f32(const struct llm_gguf *g, const char *key, float *ret, char *reterr,
                     size_t errlen)
{
    const struct llm_gguf_kv *kv = get_kv(g, key, reterr, errlen);
    if (!kv)
        return -ENOENT;
    if (kv->type != LLM_GGUF_F32 && kv->type != LLM_GGUF_F64) {
        get_err(g, key, reterr, errlen, "type %s, expected f32 or f64", vtype_name(kv->type));
        return -EINVAL;
    }
    /* An f64 beyond float range would silently become infinity. */
    if (kv->v.f64 > 3.4028234663852886e38 || kv->v.f64 < -3.4028234663852886e38) {
        get_err(g, key, reterr, errlen, "value %g out of f32 range", kv->v.f64);
        return -ERANGE;
    }
    *ret = (float)kv->v.f64;
    return 0;
}

int llm_gguf_get_bool(const struct llm_gguf *g, const char *key, bool *ret, char *reterr,
                      size_t errlen)
{
    const struct llm_gguf_kv *kv = get_kv(g, key, reterr, errlen);
    if (!kv)
        return -ENOENT;
    if (kv->type != LLM_GGUF_BOOL) {
        get_err(g, key, reterr, errlen, "type %s, expected bool", vtype_name(kv->type));
        return -EINVAL;
    }
    *ret = kv->v.b;
    return 0;
}

int llm_gguf_get_str(const struct llm_gguf *g, const char *key, struct llm_gguf_str *ret,
                     char *reterr, size_t errlen)
{
    const struct llm_gguf_kv *kv = get_kv(g, key, reterr, errlen);
    if (!kv)
        return -ENOENT;
    if (kv->type != LLM_GGUF_STRING) {
        get_err(g, key, reterr, errlen, "type %s, expected string", vtype_name(kv->type));
        return -EINVAL;
    }
    *ret = kv->v.str;
    return 0;
}

int llm_gguf_get_arr(const struct llm_gguf *g, const char *key, enum llm_gguf_vtype elem_type,
                     const void **ret_data, uint64_t *ret_n, char *reterr, size_t errlen)
{
    const struct llm_gguf_kv *kv = get_kv(g, key, reterr, errlen);
    if (!kv)
        return -ENOENT;
    if (kv->type != LLM_GGUF_ARRAY) {
        get_err(g, key, reterr, errlen, "type %s, expected an array of %s", vtype_name(kv->type),
                vtype_name(elem_type));
        return -EINVAL;
    }
    if (kv->arr_type != elem_type) {
        get_err(g, key, reterr, errlen, "array of %s, expected an array of %s",
                vtype_name(kv->arr_type), vtype_name(elem_type));
        return -EINVAL;
    }
    *ret_data = kv->v.arr;
    *ret_n = kv->arr_n;
    return 0;
}

int llm_gguf_arr_str(const struct llm_gguf *g, const struct llm_gguf_kv *kv, uint64_t i,
                     struct llm_gguf_str *ret)
{
    uintptr_t p = (uintptr_t)kv, lo = (uintptr_t)g->kv;
    uint64_t idx, off, len;

    /* Compared as integers: kv may point anywhere, and relational operators
     * on pointers into different objects are undefined. */
    if (!kv || !g->n_kv || p < lo || p >= lo + g->n_kv * sizeof(*g->kv) ||
        (p - lo) % sizeof(*g->kv))
        return -EINVAL;
    idx = (p - lo) / sizeof(*g->kv);
    if (kv->type != LLM_GGUF_ARRAY || kv->arr_type != LLM_GGUF_STRING)
        return -EINVAL;
    if (i >= kv->arr_n)
        return -ERANGE;
    off = g->str_off[idx][i];
    memcpy(&len, g->base + off, sizeof(len));
    ret->ptr = (const char *)g->base + off + STR_LEN_BYTES;
    ret->len = len;
    return 0;
}

/* ---- ggml type traits ---- */

/* Block sizes and bytes per block as ggml defines its block structs. */
static const struct {
    const char *name;
    uint32_t block_elems;
    uint32_t block_bytes;
} ggml_types[] = {
    [LLM_GGML_F32] = { "f32", 1, 4 },
    [LLM_GGML_F16] = { "f16", 1, 2 },
    [LLM_GGML_Q4_0] = { "q4_0", 32, 2 + 16 },
    [LLM_GGML_Q4_1] = { "q4_1", 32, 2 + 2 + 16 },
    [LLM_GGML_Q5_0] = { "q5_0", 32, 2 + 4 + 16 },
    [LLM_GGML_Q5_1] = { "q5_1", 32, 2 + 2 + 4 + 16 },
    [LLM_GGML_Q8_0] = { "q8_0", 32, 2 + 32 },
    [LLM_GGML_Q8_1] = { "q8_1", 32, 2 + 2 + 32 },
    [LLM_GGML_Q2_K] = { "q2_K", 256, 16 + 64 + 2 + 2 },
    [LLM_GGML_Q3_K] = { "q3_K", 256, 32 + 64 + 12 + 2 },
    [LLM_GGML_Q4_K] = { "q4_K", 256, 2 + 2 + 12 + 128 },
    [LLM_GGML_Q5_K] = { "q5_K", 256, 2 + 2 + 12 + 32 + 128 },
    [LLM_GGML_Q6_K] = { "q6_K", 256, 128 + 64 + 16 + 2 },
    [LLM_GGML_Q8_K] = { "q8_K", 256, 4 + 256 + 16 * 2 },
    [LLM_GGML_BF16] = { "bf16", 1, 2 },
};

static bool ggml_known(uint32_t type)
{
    return type < sizeof(ggml_types) / sizeof(ggml_types[0]) && ggml_types[type].block_elems;
}

const char *llm_ggml_type_name(uint32_t type)
{
    return ggml_known(type) ? ggml_types[type].name : "unknown";
}

uint32_t llm_ggml_block_elems(uint32_t type)
{
    return ggml_known(type) ? ggml_types[type].block_elems : 0;
}

uint32_t llm_ggml_block_bytes(uint32_t type)
{
    return ggml_known(type) ? ggml_types[type].block_bytes : 0;
}

uint64_t llm_ggml_row_bytes(uint32_t type, uint64_t n)
{
    uint64_t bytes;
    if (!ggml_known(type) || n % ggml_types[type].block_elems)
        return 0;
    if (__builtin_mul_overflow(n / ggml_types[type].block_elems,
                               (uint64_t)ggml_types[type].block_bytes, &bytes))
        return 0;
    return bytes;
}

void llm_gguf_token_text(const struct llm_gguf *g, int32_t id, char *buf, size_t cap)
{
    const struct llm_gguf_kv *kv = llm_gguf_find_kv(g, "tokenizer.ggml.tokens");
    struct llm_gguf_str s;
    buf[0] = 0;
    if (kv && id >= 0 && llm_gguf_arr_str(g, kv, (uint64_t)id, &s) == 0 && s.len < cap &&
        !memchr(s.ptr, 0, s.len))
        snprintf(buf, cap, "%.*s", (int)s.len, s.ptr);
}
