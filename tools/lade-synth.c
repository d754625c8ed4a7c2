/* lade-synth: write a LLaMA-shaped GGUF with seeded random weights, to
 * measure large shapes without downloading a model, and to give the tests
 * one small model of each architecture lade runs. Shapes: 7b (4096 dim,
 * 32 layers, 32 heads, 11008 FFN, 32000 vocab), 13b (5120, 40, 40, 13824),
 * tiny and test (for tests). Formats: f32, f16, bf16, q8_0, q4_0, q4_1,
 * q5_0, q5_1, q4_k, q5_k, q6_k (matrices; norms and biases f32). Options name what sets an architecture apart
 * (llama/config.h): --arch qwen2 (Q/K/V biases, NeoX RoPE) or qwen3
 * (Q/K head norms, NeoX RoPE), --head-dim (attention.key_length, Q then
 * n_heads * head_dim wide), --kv-heads, --tied (no output.weight),
 * --rope-freqs (a rope_freqs.weight of factors in [1, 8]), --rope-scaling
 * linear|yarn (factor 4, yarn over an original context of a quarter),
 * --chat-template FILE (its text as tokenizer.chat_template).
 * The vocabulary is SentencePiece-shaped (<unk>, <s>, </s>, 256 byte
 * pieces, then "▁tN") so the model loads like a real one. Weights are
 * random but scaled like a trained model's (std ~ 1/sqrt(dim)), so
 * activations stay finite through all layers; the text is nonsense. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "llama/dequant.h"
#include "llama/gguf-write.h"
#include "llama/gguf.h"

struct shape {
    const char *name;
    uint32_t dim, layers, heads, kv_heads, ffn, vocab, ctx;
};

static const struct shape shapes[] = {
    { "7b", 4096, 32, 32, 32, 11008, 32000, 4096 },
    { "13b", 5120, 40, 40, 40, 13824, 32000, 4096 },
    { "tiny", 256, 2, 4, 2, 512, 1024, 512 },
    { "test", 256, 2, 4, 2, 512, 320, 512 },
};

/* What sets the model apart from a plain LLaMA of its shape. */
struct arch_opts {
    const char *arch; /* "llama", "qwen2", "qwen3" */
    uint32_t head_dim; /* 0: dim / heads */
    uint32_t kv_heads; /* 0: the shape's */
    int tied;
    int rope_freqs;
    const char *scaling; /* NULL, "linear", "yarn" */
    char *chat_template; /* tokenizer.chat_template, or NULL */
    struct llm_gguf *vocab; /* --vocab: its tokenizer.* keys instead of the made-up vocabulary */
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    /* xorshift64*: fast enough to fill 13 GB */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static void piece(char *buf, size_t n, uint32_t i)
{
    if (i == 0)
        snprintf(buf, n, "<unk>");
    else if (i == 1)
        snprintf(buf, n, "<s>");
    else if (i == 2)
        snprintf(buf, n, "</s>");
    else if (i < 259)
        snprintf(buf, n, "<0x%02X>", i - 3);
    else
        snprintf(buf, n, "\xe2\x96\x81t%u", i);
}

static void write_vocab(struct llm_gguf_w *w, uint32_t vocab)
{
    char p[32];
    llm_gguf_w_str(w, "tokenizer.ggml.tokens", strlen("tokenizer.ggml.tokens"));
    llm_gguf_w_u32(w, LLM_GGUF_ARRAY);
    llm_gguf_w_u32(w, LLM_GGUF_STRING);
    llm_gguf_w_u64(w, vocab);
    for (uint32_t i = 0; i < vocab; i++) {
        piece(p, sizeof(p), i);
        llm_gguf_w_str(w, p, strlen(p));
    }
    llm_gguf_w_str(w, "tokenizer.ggml.scores", strlen("tokenizer.ggml.scores"));
    llm_gguf_w_u32(w, LLM_GGUF_ARRAY);
    llm_gguf_w_u32(w, LLM_GGUF_F32);
    llm_gguf_w_u64(w, vocab);
    for (uint32_t i = 0; i < vocab; i++) {
        float s = i < 259 ? 0.0f : -(float)(i - 259);
        llm_gguf_w_bytes(w, &s, 4);
    }
    llm_gguf_w_str(w, "tokenizer.ggml.token_type", strlen("tokenizer.ggml.token_type"));
    llm_gguf_w_u32(w, LLM_GGUF_ARRAY);
    llm_gguf_w_u32(w, LLM_GGUF_I32);
    llm_gguf_w_u64(w, vocab);
    for (uint32_t i = 0; i < vocab; i++) {
        int32_t t = i == 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1; /* unknown, control, byte, normal */
        llm_gguf_w_bytes(w, &t, 4);
    }
}

struct tensor {
    char name[64];
    uint32_t type;
    uint64_t ne0, ne1;
    uint64_t offset, size;
};

static uint64_t tensor_bytes(uint32_t type, uint64_t ne0, uint64_t ne1)
{
    return llm_ggml_row_bytes(type, ne0) * ne1;
}

/* Random block data for one row of a quantised type: random quants,
 * scales sized so a row's values have std about `scale`. */
/* Random bytes, eight at a time. */
static void fill_random(uint8_t *out, uint64_t n)
{
    uint64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t r = rnd();
        memcpy(out + i, &r, 8);
    }
    for (; i < n; i++)
        out[i] = (uint8_t)rnd();
}

/* One row of random weights with std about `scale`. F16 bits are made
 * directly (random sign and mantissa, exponent within one octave of the
 * scale): converting 6.7 G floats one by one is the slow part of a 7B. */
static void fill_row(uint32_t type, uint64_t n, float scale, uint8_t *out)
{
    if (type == LLM_GGML_F16) {
        int e;
        frexpf(scale, &e);
        uint16_t exp = (uint16_t)(e + 14); /* biased exponent of [scale/2, scale) */
        fill_random(out, 2 * n);
        uint16_t *h = (uint16_t *)out;
        for (uint64_t i = 0; i < n; i++)
            h[i] = (uint16_t)((h[i] & 0x83ff) | (uint16_t)((exp - ((h[i] >> 10) & 1)) << 10));
        return;
    }
    if (type == LLM_GGML_F32 || type == LLM_GGML_BF16) {
        for (uint64_t i = 0; i < n; i++) {
            float v = ((float)(rnd() >> 40) / (float)(1 << 24) * 2.0f - 1.0f) * scale * 1.7320508f;
            uint16_t h = llm_f32_to_bf16(v);
            if (type == LLM_GGML_F32)
                memcpy(out + 4 * i, &v, 4);
            else
                memcpy(out + 2 * i, &h, 2);
        }
        return;
    }
    uint32_t be = llm_ggml_block_elems(type), bb = llm_ggml_block_bytes(type);
    fill_random(out, n / be * bb);
    /* Random quants, then each block's f16 scale d (and min) at the offsets
     * ggml uses, d = scale / (std of the block's integer products) so that
     * the dequantised values have std about `scale`; the types with a min
     * get one that centres them. Q4_1 and Q5_1 add m = -d * (mid quant).
     * Q4_K and Q5_K subtract dmin * m for a random 6-bit m: dmin = mid
     * quant * d centres them too (with dmin 0 every weight was positive, so
     * a product was mostly the sum of its inputs and a block's output
     * hardly depended on its other terms). Q6_K's d is at the block's end. */
    struct {
        uint32_t type;
        float div; /* d = scale / div */
        float mid; /* min = -mid * d (Q4_1, Q5_1) or dmin = mid * d (K) */
        uint32_t d_at;
    } const q[] = {
        { LLM_GGML_Q8_0, 73.0f, 0, 0 },      { LLM_GGML_Q4_0, 4.6f, 0, 0 },
        { LLM_GGML_Q4_1, 4.6f, -7.5f, 0 },   { LLM_GGML_Q5_0, 9.2f, 0, 0 },
        { LLM_GGML_Q5_1, 9.2f, -15.5f, 0 },  { LLM_GGML_Q4_K, 260.0f, 7.5f, 0 },
        { LLM_GGML_Q5_K, 520.0f, 15.5f, 0 }, { LLM_GGML_Q6_K, 1369.0f, 0, 208 },
    };
    static uint8_t q4_0_sym[256]; /* byte -> byte, nibbles 0 -> 8 */
    for (int x = 255; !q4_0_sym[0] && x >= 0; x--) /* [0] last: the table is made once */
        q4_0_sym[x] = (uint8_t)((x & 0x0f ? x & 0x0f : 8) | (x & 0xf0 ? x & 0xf0 : 0x80));
    size_t k = 0;
    while (q[k].type != type)
        k++;
    float ds = scale / q[k].div;
    uint16_t d = llm_f32_to_f16(ds), mn = llm_f32_to_f16(q[k].mid * ds);
    for (uint64_t b = 0; b < n / be; b++) {
        /* Q4_0's weights are d (q - 8): q 0 becomes 8, so that they are
         * symmetric about 0 (a mean of -d/2 in every row gave every logit
         * the same large offset, and the GPU's error looked tiny beside it). */
        for (uint32_t j = 2; type == LLM_GGML_Q4_0 && j < bb; j++)
            out[b * bb + j] = q4_0_sym[out[b * bb + j]];
        memcpy(out + b * bb + q[k].d_at, &d, 2);
        if (q[k].mid != 0)
            memcpy(out + b * bb + 2, &mn, 2);
    }
}

static int ends_with(const char *s, const char *end)
{
    size_t n = strlen(s), m = strlen(end);
    return n >= m && !strcmp(s + n - m, end);
}

/* Uniform in [lo, hi). */
static float uniform(float lo, float hi)
{
    return lo + (hi - lo) * (float)(rnd() >> 40) / (float)(1 << 24);
}

/* Vectors, f32: the block norms 1 (as before), the head norms in [0.5,
 * 1.5), biases in +-0.5, RoPE's frequency factors in [1, 8). */
static void fill_vector(const char *name, uint64_t n, uint8_t *out)
{
    for (uint64_t i = 0; i < n; i++) {
        float v = ends_with(name, "_q_norm.weight") || ends_with(name, "_k_norm.weight") ?
                          uniform(0.5f, 1.5f) :
                  ends_with(name, ".bias")           ? uniform(-0.5f, 0.5f) :
                  !strcmp(name, "rope_freqs.weight") ? uniform(1.0f, 8.0f) :
                                                       1.0f;
        memcpy(out + 4 * i, &v, 4);
    }
}

static int write_tensor_data(struct llm_gguf_w *w, const struct tensor *t, float scale,
                             uint8_t *row)
{
    if (t->ne1 == 1 && t->type == LLM_GGML_F32) {
        fill_vector(t->name, t->ne0, row);
        llm_gguf_w_bytes(w, row, 4 * t->ne0);
        return llm_gguf_w_error(w);
    }
    uint64_t rb = llm_ggml_row_bytes(t->type, t->ne0);
    for (uint64_t r = 0; r < t->ne1; r++) {
        fill_row(t->type, t->ne0, scale, row);
        llm_gguf_w_bytes(w, row, rb);
        if (llm_gguf_w_error(w))
            return llm_gguf_w_error(w);
    }
    return 0;
}

/* The formats lade runs (llm_ggml_type_name's names, K lower case). */
static uint32_t parse_type(const char *s)
{
    static const uint32_t types[] = {
        LLM_GGML_F32,  LLM_GGML_F16,  LLM_GGML_BF16, LLM_GGML_Q8_0, LLM_GGML_Q4_0, LLM_GGML_Q4_1,
        LLM_GGML_Q5_0, LLM_GGML_Q5_1, LLM_GGML_Q4_K, LLM_GGML_Q5_K, LLM_GGML_Q6_K,
    };
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (!strcasecmp(s, llm_ggml_type_name(types[i])))
            return types[i];
    return UINT32_MAX;
}

static void add_tensor(struct tensor *ts, uint32_t *k, const char *name, uint32_t type,
                       uint64_t ne0, uint64_t ne1)
{
    snprintf(ts[*k].name, sizeof(ts[*k].name), "%s", name);
    ts[*k].type = type;
    ts[*k].ne0 = ne0;
    ts[*k].ne1 = ne1;
    (*k)++;
}

/* The model's tensors, in file order; returns how many. */
static uint32_t list_tensors(const struct shape *sh, const struct arch_opts *a, uint32_t type,
                             struct tensor *ts)
{
    uint32_t k = 0, hd = a->head_dim, qd = hd * sh->heads, kvd = hd * sh->kv_heads;
    add_tensor(ts, &k, "token_embd.weight", type, sh->dim, sh->vocab);
    add_tensor(ts, &k, "output_norm.weight", LLM_GGML_F32, sh->dim, 1);
    if (!a->tied)
        add_tensor(ts, &k, "output.weight", type, sh->dim, sh->vocab);
    if (a->rope_freqs)
        add_tensor(ts, &k, "rope_freqs.weight", LLM_GGML_F32, hd / 2, 1);
    int bias = !strcmp(a->arch, "qwen2"), qk_norm = !strcmp(a->arch, "qwen3");
    for (uint32_t l = 0; l < sh->layers; l++) {
        struct {
            const char *s;
            uint32_t ty;
            uint64_t a, b;
            int on;
        } L[] = {
            { "attn_norm.weight", LLM_GGML_F32, sh->dim, 1, 1 },
            { "attn_q.weight", type, sh->dim, qd, 1 },
            { "attn_k.weight", type, sh->dim, kvd, 1 },
            { "attn_v.weight", type, sh->dim, kvd, 1 },
            { "attn_q.bias", LLM_GGML_F32, qd, 1, bias },
            { "attn_k.bias", LLM_GGML_F32, kvd, 1, bias },
            { "attn_v.bias", LLM_GGML_F32, kvd, 1, bias },
            { "attn_q_norm.weight", LLM_GGML_F32, hd, 1, qk_norm },
            { "attn_k_norm.weight", LLM_GGML_F32, hd, 1, qk_norm },
            { "attn_output.weight", type, qd, sh->dim, 1 },
            { "ffn_norm.weight", LLM_GGML_F32, sh->dim, 1, 1 },
            { "ffn_gate.weight", type, sh->dim, sh->ffn, 1 },
            { "ffn_up.weight", type, sh->dim, sh->ffn, 1 },
            { "ffn_down.weight", type, sh->ffn, sh->dim, 1 },
        };
        for (size_t i = 0; i < sizeof(L) / sizeof(L[0]); i++) {
            char name[64];
            snprintf(name, sizeof(name), "blk.%u.%s", l, L[i].s);
            if (L[i].on)
                add_tensor(ts, &k, name, L[i].ty, L[i].a, L[i].b);
        }
    }
    return k;
}

/* The metadata; with w NULL only counts the keys. */
static uint32_t write_kv(struct llm_gguf_w *w, const char *name, const struct shape *sh,
                         const struct arch_opts *a)
{
    char key[128];
    uint32_t n = 0;
#define KEY(s) (snprintf(key, sizeof(key), "%s.%s", a->arch, s), key)
#define U32(k, v) (n++, w ? llm_gguf_w_kv_u32(w, k, v) : (void)0)
#define F32(k, v) (n++, w ? llm_gguf_w_kv_f32(w, k, v) : (void)0)
#define STR(k, v) (n++, w ? llm_gguf_w_kv_str(w, k, v) : (void)0)
    STR("general.architecture", a->arch);
    STR("general.name", name);
    U32(KEY("context_length"), sh->ctx);
    U32(KEY("embedding_length"), sh->dim);
    U32(KEY("block_count"), sh->layers);
    U32(KEY("feed_forward_length"), sh->ffn);
    U32(KEY("attention.head_count"), sh->heads);
    U32(KEY("attention.head_count_kv"), sh->kv_heads);
    if (a->head_dim != sh->dim / sh->heads) {
        U32(KEY("attention.key_length"), a->head_dim);
        U32(KEY("attention.value_length"), a->head_dim);
    }
    F32(KEY("attention.layer_norm_rms_epsilon"), 1e-5f);
    F32(KEY("rope.freq_base"), 10000.0f);
    if (a->scaling) {
        STR(KEY("rope.scaling.type"), a->scaling);
        F32(KEY("rope.scaling.factor"), 4.0f);
        if (!strcmp(a->scaling, "yarn"))
            U32(KEY("rope.scaling.original_context_length"), sh->ctx / 4);
    }
    if (a->chat_template)
        STR("tokenizer.chat_template", a->chat_template);
    if (a->vocab) {
        /* A real vocabulary: every tokenizer.* key of the file (its tokens,
         * types, merges, pre-tokenizer, special ids), as it was */
        for (uint64_t i = 0; i < llm_gguf_n_kv(a->vocab); i++) {
            const struct llm_gguf_kv *kv = llm_gguf_kv_at(a->vocab, i);
            bool tmpl = kv->key.len == strlen("tokenizer.chat_template") &&
                        !memcmp(kv->key.ptr, "tokenizer.chat_template", kv->key.len);
            if (kv->key.len > 10 && !memcmp(kv->key.ptr, "tokenizer.", 10) &&
                !(tmpl && a->chat_template)) {
                n++;
                if (w)
                    llm_gguf_w_kv_copy(w, a->vocab, kv);
            }
        }
        return n;
    }
    STR("tokenizer.ggml.model", "llama");
    U32("tokenizer.ggml.bos_token_id", 1);
    U32("tokenizer.ggml.eos_token_id", 2);
    U32("tokenizer.ggml.unknown_token_id", 0);
#undef KEY
#undef U32
#undef F32
#undef STR
    if (w)
        write_vocab(w, sh->vocab);
    return n + 3; /* the vocabulary's three arrays */
}

static int usage(void)
{
    fprintf(stderr,
            "usage: lade-synth [OPTIONS] SHAPE FORMAT OUT.gguf [LAYERS]\n  SHAPE: 7b, 13b, tiny, test; FORMAT: f32, f16, "
            "bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k\n  LAYERS: fewer layers of the same shape (quick kernel sweeps; per-layer cost is "
            "unchanged)\n  OPTIONS: --arch llama|qwen2|qwen3, --head-dim N, --kv-heads N, --tied, --rope-freqs, "
            "--rope-scaling linear|yarn, --chat-template FILE,\n  --vocab FILE.gguf (its vocabulary: tokens, merges, special ids)\n");
    return 2;
}

/* The whole of file path, NUL-terminated, into *ret: 0 or -1 (said). */
static int read_text(const char *path, char **ret)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n = 0, cap = 0;
    while (f && !ferror(f) && !feof(f)) {
        if (n + 4096 + 1 > cap) {
            char *b = realloc(buf, cap = 2 * cap + 4096 + 1);
            if (!b)
                break;
            buf = b;
        }
        n += fread(buf + n, 1, cap - n - 1, f);
    }
    if (!f || !feof(f) || ferror(f)) {
        fprintf(stderr, "lade-synth: cannot read '%s'\n", path);
        if (f)
            fclose(f);
        free(buf);
        return -1;
    }
    fclose(f);
    buf[n] = 0;
    *ret = buf;
    return 0;
}

/* Options before the positional arguments; returns the index of the first
 * positional one, or -1. */
static int parse_opts(int argc, char **argv, struct arch_opts *a)
{
    int i = 1;
    for (; i < argc && !strncmp(argv[i], "--", 2); i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "--tied")) {
            a->tied = 1;
        } else if (!strcmp(o, "--rope-freqs")) {
            a->rope_freqs = 1;
        } else if (v && !strcmp(o, "--arch") &&
                   (!strcmp(v, "llama") || !strcmp(v, "qwen2") || !strcmp(v, "qwen3"))) {
            a->arch = v, i++;
        } else if (v && !strcmp(o, "--rope-scaling") &&
                   (!strcmp(v, "linear") || !strcmp(v, "yarn"))) {
            a->scaling = v, i++;
        } else if (v && !strcmp(o, "--vocab")) {
            char err[256];
            if (llm_gguf_open(v, &a->vocab, err, sizeof(err)) != 0) {
                fprintf(stderr, "lade-synth: %s\n", err);
                return -1;
            }
            i++;
        } else if (v && !strcmp(o, "--chat-template")) {
            if (read_text(v, &a->chat_template) < 0)
                return -1;
            i++;
        } else if (v && (!strcmp(o, "--head-dim") || !strcmp(o, "--kv-heads"))) {
            char *end;
            unsigned long n = strtoul(v, &end, 10);
            if (*end || n < 1 || n > 1024)
                return -1;
            *(!strcmp(o, "--head-dim") ? &a->head_dim : &a->kv_heads) = (uint32_t)n, i++;
        } else {
            return -1;
        }
    }
    return i;
}

/* The shape named argv[0], with LAYERS (argv[3], if given) and the
 * options' head counts; NULL if it is no shape or does not fit. */
static const struct shape *pick_shape(int n, char **argv, struct arch_opts *a, struct shape *ret)
{
    const struct shape *sh = NULL;
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++)
        if (!strcmp(argv[0], shapes[i].name))
            sh = &shapes[i];
    if (!sh)
        return NULL;
    *ret = *sh;
    if (n == 4) {
        char *end;
        unsigned long nl = strtoul(argv[3], &end, 10);
        if (*end || nl < 1 || nl > sh->layers) {
            fprintf(stderr, "lade-synth: LAYERS must be 1..%u\n", sh->layers);
            return NULL;
        }
        ret->layers = (uint32_t)nl;
    }
    if (a->kv_heads)
        ret->kv_heads = a->kv_heads;
    if (a->vocab) {
        const struct llm_gguf_kv *t = llm_gguf_find_kv(a->vocab, "tokenizer.ggml.tokens");
        if (!t || t->type != LLM_GGUF_ARRAY || t->arr_n == 0 || t->arr_n > (1u << 20)) {
            fprintf(stderr, "lade-synth: --vocab: no tokenizer.ggml.tokens\n");
            return NULL;
        }
        ret->vocab = (uint32_t)t->arr_n;
    }
    if (!a->head_dim)
        a->head_dim = ret->dim / ret->heads;
    if (ret->heads % ret->kv_heads || a->head_dim % 2) {
        fprintf(stderr, "lade-synth: %u heads, %u KV heads, head size %u do not fit\n", ret->heads,
                ret->kv_heads, a->head_dim);
        return NULL;
    }
    return ret;
}

int main(int argc, char **argv)
{
    struct arch_opts a = { .arch = "llama" };
    int first = parse_opts(argc, argv, &a);
    if (first < 0 || (argc - first != 3 && argc - first != 4))
        return usage();
    struct shape shc;
    const struct shape *sh = pick_shape(argc - first, argv + first, &a, &shc);
    uint32_t type = parse_type(argv[first + 1]);
    if (!sh || type == UINT32_MAX) {
        fprintf(stderr, "lade-synth: unknown shape '%s' or format '%s'\n", argv[first],
                argv[first + 1]);
        return 2;
    }
    const char *out = argv[first + 2];
    struct tensor *ts = calloc(3 + 14 * sh->layers + 1, sizeof(*ts));
    uint32_t k = list_tensors(sh, &a, type, ts);
    uint64_t off = 0, max_row = 0;
    for (uint32_t i = 0; i < k; i++) {
        ts[i].offset = off;
        ts[i].size = tensor_bytes(ts[i].type, ts[i].ne0, ts[i].ne1);
        off += (ts[i].size + 31) & ~31ull;
        max_row = ts[i].ne0 > max_row ? ts[i].ne0 : max_row;
    }
    FILE *f = fopen(out, "wb");
    if (!f) {
        fprintf(stderr, "lade-synth: cannot write '%s': %s\n", out, strerror(errno));
        return 1;
    }
    struct llm_gguf_w w = { f, 0 };
    llm_gguf_w_header(&w, k, write_kv(NULL, argv[first], sh, &a));
    write_kv(&w, argv[first], sh, &a);
    for (uint32_t i = 0; i < k; i++) {
        uint64_t ne[2] = { ts[i].ne0, ts[i].ne1 };
        llm_gguf_w_tensor_info(&w, ts[i].name, ts[i].ne1 > 1 ? 2 : 1, ne, ts[i].type, ts[i].offset);
    }
    llm_gguf_w_pad(&w, 32);
    uint8_t *row = malloc(llm_ggml_row_bytes(LLM_GGML_F32, max_row) + 64);
    int err = 0;
    for (uint32_t i = 0; i < k && !err; i++) {
        float scale = 1.0f / sqrtf((float)ts[i].ne0);
        err = write_tensor_data(&w, &ts[i], scale, row);
        llm_gguf_w_pad(&w, 32);
    }
    if (!err)
        err = llm_gguf_w_error(&w);
    if (fclose(f) || err) {
        fprintf(stderr, "lade-synth: writing '%s' failed\n", out);
        return 1;
    }
    fprintf(stderr, "lade-synth: %s %s %s: %u tensors, %.2f GB of weights -> %s\n", a.arch,
            argv[first], argv[first + 1], k, off / 1e9, out);
    free(row);
    free(ts);
    free(a.chat_template);
    llm_gguf_free(a.vocab);
    return 0;
}
