/* lade-synth: write a LLaMA-shaped GGUF with seeded random weights, to
 * measure large shapes without downloading a model. Shapes: 7b (4096 dim,
 * 32 layers, 32 heads, 11008 FFN, 32000 vocab), 13b (5120, 40, 40, 13824),
 * tiny (for tests). Formats: f16, q8_0, q4_0, q4_k (matrices; norms f32).
 * The vocabulary is SentencePiece-shaped (<unk>, <s>, </s>, 256 byte
 * pieces, then "▁tN") so the model loads like a real one. Weights are
 * random but scaled like a trained model's (std ~ 1/sqrt(dim)), so
 * activations stay finite through all layers; the text is nonsense. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    if (type == LLM_GGML_F32) {
        for (uint64_t i = 0; i < n; i++) {
            float v = ((float)(rnd() >> 40) / (float)(1 << 24) * 2.0f - 1.0f) * scale * 1.7320508f;
            memcpy(out + 4 * i, &v, 4);
        }
        return;
    }
    uint32_t be = llm_ggml_block_elems(type), bb = llm_ggml_block_bytes(type);
    fill_random(out, n / be * bb);
    /* one f16 scale (and min) per block at the offsets ggml uses, sized so
     * that the dequantised values have std about `scale` */
    uint16_t d = llm_f32_to_f16(type == LLM_GGML_Q8_0 ? scale / 73.0f :
                                type == LLM_GGML_Q4_K ? scale / 150.0f :
                                                        scale / 4.6f);
    uint16_t z = llm_f32_to_f16(0.0f);
    for (uint64_t b = 0; b < n / be; b++) {
        memcpy(out + b * bb, &d, 2);
        if (type == LLM_GGML_Q4_K)
            memcpy(out + b * bb + 2, &z, 2); /* dmin 0: no offset */
    }
}

static int write_tensor_data(struct llm_gguf_w *w, const struct tensor *t, float scale,
                             uint8_t *row)
{
    if (!strcmp(t->name + strlen(t->name) - 11, "norm.weight")) {
        for (uint64_t i = 0; i < t->ne0; i++) {
            float one = 1.0f;
            memcpy(row + 4 * i, &one, 4);
        }
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

static uint32_t parse_type(const char *s)
{
    if (!strcmp(s, "f16"))
        return LLM_GGML_F16;
    if (!strcmp(s, "q8_0"))
        return LLM_GGML_Q8_0;
    if (!strcmp(s, "q4_0"))
        return LLM_GGML_Q4_0;
    if (!strcmp(s, "q4_k"))
        return LLM_GGML_Q4_K;
    return UINT32_MAX;
}

int main(int argc, char **argv)
{
    if (argc != 4 && argc != 5) {
        fprintf(stderr,
                "usage: lade-synth SHAPE FORMAT OUT.gguf [LAYERS]\n  SHAPE: 7b, 13b, tiny; FORMAT: f16, q8_0, q4_0, "
                "q4_k\n  LAYERS: fewer layers of the same shape (quick kernel sweeps; per-layer cost is "
                "unchanged)\n");
        return 2;
    }
    struct shape shc;
    const struct shape *sh = NULL;
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++)
        if (!strcmp(argv[1], shapes[i].name))
            sh = &shapes[i];
    if (sh && argc == 5) {
        char *end;
        unsigned long nl = strtoul(argv[4], &end, 10);
        if (*end || nl < 1 || nl > sh->layers) {
            fprintf(stderr, "lade-synth: LAYERS must be 1..%u\n", sh->layers);
            return 2;
        }
        shc = *sh;
        shc.layers = (uint32_t)nl;
        sh = &shc;
    }
    uint32_t type = parse_type(argv[2]);
    if (!sh || type == UINT32_MAX) {
        fprintf(stderr, "lade-synth: unknown shape '%s' or format '%s'\n", argv[1], argv[2]);
        return 2;
    }
    uint32_t n_t = 2 + 9 * sh->layers + 1;
    struct tensor *ts = calloc(n_t, sizeof(*ts));
    uint32_t k = 0, hd = sh->dim / sh->heads, kvd = hd * sh->kv_heads;
    ts[k++] = (struct tensor){ "token_embd.weight", type, sh->dim, sh->vocab, 0, 0 };
    ts[k++] = (struct tensor){ "output_norm.weight", LLM_GGML_F32, sh->dim, 1, 0, 0 };
    ts[k++] = (struct tensor){ "output.weight", type, sh->dim, sh->vocab, 0, 0 };
    for (uint32_t l = 0; l < sh->layers; l++) {
        struct {
            const char *s;
            uint32_t ty;
            uint64_t a, b;
        } L[9] = {
            { "attn_norm", LLM_GGML_F32, sh->dim, 1 }, { "attn_q", type, sh->dim, sh->dim },
            { "attn_k", type, sh->dim, kvd },          { "attn_v", type, sh->dim, kvd },
            { "attn_output", type, sh->dim, sh->dim }, { "ffn_norm", LLM_GGML_F32, sh->dim, 1 },
            { "ffn_gate", type, sh->dim, sh->ffn },    { "ffn_up", type, sh->dim, sh->ffn },
            { "ffn_down", type, sh->ffn, sh->dim },
        };
        for (int i = 0; i < 9; i++) {
            snprintf(ts[k].name, sizeof(ts[k].name), "blk.%u.%s.weight", l, L[i].s);
            ts[k].type = L[i].ty;
            ts[k].ne0 = L[i].a;
            ts[k].ne1 = L[i].b;
            k++;
        }
    }
    uint64_t off = 0;
    for (uint32_t i = 0; i < k; i++) {
        ts[i].offset = off;
        ts[i].size = tensor_bytes(ts[i].type, ts[i].ne0, ts[i].ne1);
        off += (ts[i].size + 31) & ~31ull;
    }
    FILE *f = fopen(argv[3], "wb");
    if (!f) {
        fprintf(stderr, "lade-synth: cannot write '%s': %s\n", argv[3], strerror(errno));
        return 1;
    }
    struct llm_gguf_w w = { f, 0 };
    llm_gguf_w_header(&w, k, 17);
    llm_gguf_w_kv_str(&w, "general.architecture", "llama");
    llm_gguf_w_kv_str(&w, "general.name", argv[1]);
    llm_gguf_w_kv_u32(&w, "llama.context_length", sh->ctx);
    llm_gguf_w_kv_u32(&w, "llama.embedding_length", sh->dim);
    llm_gguf_w_kv_u32(&w, "llama.block_count", sh->layers);
    llm_gguf_w_kv_u32(&w, "llama.feed_forward_length", sh->ffn);
    llm_gguf_w_kv_u32(&w, "llama.attention.head_count", sh->heads);
    llm_gguf_w_kv_u32(&w, "llama.attention.head_count_kv", sh->kv_heads);
    llm_gguf_w_kv_f32(&w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    llm_gguf_w_kv_f32(&w, "llama.rope.freq_base", 10000.0f);
    llm_gguf_w_kv_str(&w, "tokenizer.ggml.model", "llama");
    llm_gguf_w_kv_u32(&w, "tokenizer.ggml.bos_token_id", 1);
    llm_gguf_w_kv_u32(&w, "tokenizer.ggml.eos_token_id", 2);
    llm_gguf_w_kv_u32(&w, "tokenizer.ggml.unknown_token_id", 0);
    write_vocab(&w, sh->vocab);
    for (uint32_t i = 0; i < k; i++) {
        uint64_t ne[2] = { ts[i].ne0, ts[i].ne1 };
        llm_gguf_w_tensor_info(&w, ts[i].name, ts[i].ne1 > 1 ? 2 : 1, ne, ts[i].type, ts[i].offset);
    }
    llm_gguf_w_pad(&w, 32);
    uint8_t *row =
            malloc(llm_ggml_row_bytes(LLM_GGML_F32, sh->ffn > sh->dim ? sh->ffn : sh->dim) + 64);
    int err = 0;
    for (uint32_t i = 0; i < k && !err; i++) {
        float scale = 1.0f / sqrtf((float)ts[i].ne0);
        err = write_tensor_data(&w, &ts[i], scale, row);
        llm_gguf_w_pad(&w, 32);
    }
    if (!err)
        err = llm_gguf_w_error(&w);
    if (fclose(f) || err) {
        fprintf(stderr, "lade-synth: writing '%s' failed\n", argv[3]);
        return 1;
    }
    fprintf(stderr, "lade-synth: %s %s: %u tensors, %.2f GB of weights -> %s\n", argv[1], argv[2],
            k, off / 1e9, argv[3]);
    free(row);
    free(ts);
    return 0;
}
