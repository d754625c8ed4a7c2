/* llama/tokenizer: SentencePiece encoding and decoding from tokenizer.model
 * and from the GGUF vocabulary, the streaming detokenizer, hostile input,
 * and malformed GGUF vocabularies built in memory.
 *
 * Golden ids: "Once upon a time" → 403 407 261 378 is stories260K's own
 * documented encoding (../shared/models/README.md); reference.jsonl records
 * come from the independent fp32 reference described there. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "llama/gguf.h"
#include "llama/sp_shim.h"
#include "llama/support_tok.h"
#include "llama/tokenizer.h"

#define STORIES_DIR LADE_SHARED_DIR "/models/stories260K"
#define KERNELC_DIR LADE_SHARED_DIR "/models/kernelc-22m"

/* ---- helpers -------------------------------------------------------------- */

static bool shared_present(void)
{
    return access(LADE_SHARED_DIR "/models/README.md", R_OK) == 0;
}

#define SKIP_WITHOUT_SHARED()                                          \
    do {                                                               \
        if (!shared_present()) {                                       \
            print_message("skipped: %s is absent\n", LADE_SHARED_DIR); \
            skip();                                                    \
        }                                                              \
    } while (0)

static struct llm_tok *load_model(const char *path)
{
    char err[512] = "";
    struct llm_tok *tok = NULL;
    int r = llm_tok_load_file(path, &tok, err, sizeof(err));
    if (r != 0)
        fail_msg("llm_tok_load_file(%s) = %d: %s", path, r, err);
    return tok;
}

static struct llm_tok *load_gguf(const char *path)
{
    char err[LLM_GGUF_ERR_MAX] = "";
    struct llm_gguf *g = NULL;
    struct llm_tok *tok = NULL;
    int r = llm_gguf_open(path, &g, err, sizeof(err));
    if (r != 0)
        fail_msg("llm_gguf_open(%s) = %d: %s", path, r, err);
    r = llm_tok_load_gguf(g, &tok, err, sizeof(err));
    if (r != 0)
        fail_msg("llm_tok_load_gguf(%s) = %d: %s", path, r, err);
    /* The tokenizer copies what it needs: the GGUF may go first. */
    llm_gguf_free(g);
    return tok;
}

static const char *rec_str(json_t *rec, const char *key, size_t *ret_len)
{
    json_t *v = json_object_get(rec, key);
    assert_true(json_is_string(v));
    *ret_len = json_string_length(v);
    return json_string_value(v);
}

/* The four tokenizers under test, loaded once. */
struct fixture {
    struct llm_tok *stories_model, *stories_gguf, *kernelc_model, *kernelc_gguf;
};

static int setup_shared(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    if (!fx)
        return -1;
    if (shared_present()) {
        fx->stories_model = load_model(STORIES_DIR "/tok512.model");
        fx->stories_gguf = load_gguf(STORIES_DIR "/stories260K.gguf");
        fx->kernelc_model = load_model(KERNELC_DIR "/tokenizer.model");
        fx->kernelc_gguf = load_gguf(KERNELC_DIR "/kernelc-22m-f16.gguf");
    }
    *state = fx;
    return 0;
}

static int teardown_shared(void **state)
{
    struct fixture *fx = *state;
    llm_tok_free(fx->stories_model);
    llm_tok_free(fx->stories_gguf);
    llm_tok_free(fx->kernelc_model);
    llm_tok_free(fx->kernelc_gguf);
    free(fx);
    return 0;
}

/* ---- golden ids ------------------------------------------------------------ */

static void check_once_upon(struct llm_tok *tok)
{
    static const int32_t want[] = { 1, 403, 407, 261, 378 };
    const char *text = "Once upon a time";
    size_t n;
    int32_t *ids = tokt_encode(tok, text, strlen(text), LLM_TOK_ADD_BOS, &n);
    assert_int_equal(n, 5);
    assert_memory_equal(ids, want, sizeof(want));
    free(ids);
    ids = tokt_encode(tok, text, strlen(text), 0, &n);
    assert_int_equal(n, 4);
    assert_memory_equal(ids, want + 1, 4 * sizeof(*ids));
    size_t len;
    char *back = tokt_decode(tok, ids, n, &len);
    assert_string_equal(back, text);
    free(back);
    free(ids);
    assert_int_equal(llm_tok_n_vocab(tok), 512);
    assert_int_equal(llm_tok_bos(tok), 1);
    assert_int_equal(llm_tok_eos(tok), 2);
    assert_int_equal(llm_tok_unk(tok), 0);
    assert_true(llm_tok_add_bos(tok));
}

static void test_once_upon_a_time_bundled(void **state)
{
    struct llm_tok *tok = load_model(LADE_MODELS_DIR "/tok512.model");
    check_once_upon(tok);
    llm_tok_free(tok);
    tok = load_gguf(LADE_MODELS_DIR "/stories260K.gguf");
    check_once_upon(tok);
    llm_tok_free(tok);
}

static void test_pieces(void **state)
{
    struct llm_tok *tok = load_gguf(LADE_MODELS_DIR "/stories260K.gguf");
    size_t len;
    const char *p = llm_tok_piece(tok, 403, &len);
    assert_int_equal(len, 5);
    assert_memory_equal(p, " Once", 5);
    p = llm_tok_piece(tok, 3 + 'A', &len); /* <0x41> */
    assert_int_equal(len, 1);
    assert_int_equal(p[0], 'A');
    p = llm_tok_piece(tok, 3, &len); /* <0x00> */
    assert_int_equal(len, 1);
    assert_int_equal(p[0], '\0');
    p = llm_tok_piece(tok, 1, &len); /* <s> */
    assert_non_null(p);
    assert_int_equal(len, 0);
    p = llm_tok_piece(tok, 0, &len); /* <unk> decodes as " \u2047 " */
    assert_int_equal(len, 5);
    assert_memory_equal(p, " \xE2\x81\x87 ", 5);
    assert_null(llm_tok_piece(tok, -1, &len));
    assert_null(llm_tok_piece(tok, 512, &len));
    llm_tok_free(tok);
}

/* ---- prompts: GGUF-built equals .model-built, round trips ----------------- */

struct pair_ctx {
    struct llm_tok *a, *b;
};

static void check_prompt(json_t *rec, void *ctx)
{
    struct pair_ctx *pc = ctx;
    size_t len, na, nb, back_len;
    const char *text = rec_str(rec, "prompt", &len);
    int32_t *ia = tokt_encode(pc->a, text, len, LLM_TOK_ADD_BOS, &na);
    int32_t *ib = tokt_encode(pc->b, text, len, LLM_TOK_ADD_BOS, &nb);
    if (na != nb || memcmp(ia, ib, na * sizeof(*ia)) != 0)
        fail_msg("%s: .model and GGUF tokenizers disagree",
                 json_string_value(json_object_get(rec, "id")));
    char *back = tokt_decode(pc->b, ib, nb, &back_len);
    if (back_len != len || memcmp(back, text, len) != 0)
        fail_msg("%s: decode(encode(text)) != text", json_string_value(json_object_get(rec, "id")));
    tokt_check_stream(pc->b, ib, nb);
    free(back);
    free(ia);
    free(ib);
}

static void test_prompts_model_equals_gguf(void **state)
{
    SKIP_WITHOUT_SHARED();
    struct fixture *fx = *state;
    struct pair_ctx stories = { fx->stories_model, fx->stories_gguf };
    struct pair_ctx code = { fx->kernelc_model, fx->kernelc_gguf };
    tokt_each_jsonl(LADE_SHARED_DIR "/prompts/stories.jsonl", check_prompt, &stories);
    tokt_each_jsonl(LADE_SHARED_DIR "/prompts/code.jsonl", check_prompt, &code);
}

/* ---- reference.jsonl ------------------------------------------------------- */

struct ref_ctx {
    struct llm_tok *tok;
    const char *prompts; /* the .jsonl whose records share the reference ids */
    json_t *prompt; /* scratch: the matching prompt record */
    const char *want_id;
    int checked;
};

static void find_prompt(json_t *rec, void *ctx)
{
    struct ref_ctx *rc = ctx;
    if (!rc->prompt && strcmp(json_string_value(json_object_get(rec, "id")), rc->want_id) == 0)
        rc->prompt = json_incref(rec);
}

static void check_reference(json_t *rec, void *ctx)
{
    struct ref_ctx *rc = ctx;
    size_t len, n, nw, ng, text_len;
    rc->want_id = json_string_value(json_object_get(rec, "id"));
    rc->prompt = NULL;
    tokt_each_jsonl(rc->prompts, find_prompt, rc);
    if (!rc->prompt)
        fail_msg("reference %s has no prompt", rc->want_id);
    const char *text = rec_str(rc->prompt, "prompt", &len);
    int32_t *ids = tokt_encode(rc->tok, text, len, LLM_TOK_ADD_BOS, &n);
    int32_t *want = tokt_json_ids(json_object_get(rec, "prompt_tokens"), &nw);
    if (n != nw || memcmp(ids, want, n * sizeof(*ids)) != 0)
        fail_msg("%s: prompt encodes differently from prompt_tokens", rc->want_id);
    int32_t *greedy = tokt_json_ids(json_object_get(rec, "greedy_tokens"), &ng);
    const char *gtext = rec_str(rec, "greedy_text", &text_len);
    char *got = tokt_decode(rc->tok, greedy, ng, &len);
    if (len != text_len || memcmp(got, gtext, len) != 0)
        fail_msg("%s: tokt_decode(greedy_tokens) != greedy_text", rc->want_id);
    tokt_check_stream(rc->tok, greedy, ng);
    /* Prompt and continuation as one stream, as the daemon would see them. */
    int32_t *all = malloc((nw + ng) * sizeof(*all));
    assert_non_null(all);
    memcpy(all, want, nw * sizeof(*all));
    memcpy(all + nw, greedy, ng * sizeof(*all));
    tokt_check_stream(rc->tok, all, nw + ng);
    free(all);
    free(got);
    free(greedy);
    free(want);
    free(ids);
    json_decref(rc->prompt);
    rc->checked++;
}

static void test_reference_records(void **state)
{
    SKIP_WITHOUT_SHARED();
    struct fixture *fx = *state;
    struct llm_tok *stories[] = { fx->stories_model, fx->stories_gguf };
    struct llm_tok *kernelc[] = { fx->kernelc_model, fx->kernelc_gguf };
    for (int i = 0; i < 2; i++) {
        struct ref_ctx s = { .tok = stories[i],
                             .prompts = LADE_SHARED_DIR "/prompts/stories.jsonl" };
        tokt_each_jsonl(STORIES_DIR "/reference.jsonl", check_reference, &s);
        struct ref_ctx k = { .tok = kernelc[i], .prompts = LADE_SHARED_DIR "/prompts/code.jsonl" };
        tokt_each_jsonl(KERNELC_DIR "/reference.jsonl", check_reference, &k);
        assert_true(s.checked > 0 && k.checked > 0);
    }
}

/* ---- byte fallback and the streaming detokenizer --------------------------- */

static void test_multibyte_stream(void **state)
{
    SKIP_WITHOUT_SHARED();
    struct fixture *fx = *state;
    static const char *texts[] = {
        "日本語のテキスト、中文字符",
        "emoji 👋🏽 and 🚀🚀 and 🇫🇷",
        "naïve café — 中文 😀 ok\n\tint x = 0; // ünïcödé",
        " leading space, and  double  spaces  ",
        "\xF0\x9F\x98\x80",
        "Ω≈ç√∫˜µ≤≥÷ 𝕿𝖍𝖊 𐍈",
    };
    struct llm_tok *toks[] = { fx->stories_model, fx->stories_gguf, fx->kernelc_model,
                               fx->kernelc_gguf };
    for (size_t t = 0; t < 4; t++) {
        for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
            size_t n, len, tlen = strlen(texts[i]);
            int32_t *ids = tokt_encode(toks[t], texts[i], tlen, LLM_TOK_ADD_BOS, &n);
            /* .model and GGUF agree here too: the spaced string shows the
             * inferred whitespace handling is the .model's own. */
            size_t n2;
            int32_t *ids2 = tokt_encode(toks[t ^ 1], texts[i], tlen, LLM_TOK_ADD_BOS, &n2);
            assert_int_equal(n, n2);
            assert_memory_equal(ids, ids2, n * sizeof(*ids));
            free(ids2);
            tokt_check_stream(toks[t], ids, n);
            char *back = tokt_decode(toks[t], ids, n, &len);
            /* stories260K removes extra whitespace, so only the others
             * round-trip the spaced string exactly. */
            if (i != 3 || t >= 2) {
                if (len != tlen || memcmp(back, texts[i], len) != 0)
                    fail_msg("tokenizer %zu text %zu: round trip gave '%s'", t, i, back);
            }
            free(back);
            free(ids);
        }
    }
}

/* Sequences SentencePiece treats specially: leading-space stripping after
 * control, unknown, byte and whitespace-only pieces; broken byte runs. */
static void test_stream_edge_cases(void **state)
{
    SKIP_WITHOUT_SHARED();
    struct fixture *fx = *state;
    struct llm_tok *toks[] = { fx->stories_model, fx->stories_gguf, fx->kernelc_model,
                               fx->kernelc_gguf };
    for (size_t t = 0; t < 4; t++) {
        int32_t bare = -1, word = 3 + 256 + 10;
        for (int32_t id = 259; id < llm_tok_n_vocab(toks[t]) && bare < 0; id++) {
            size_t len;
            const char *p = llm_tok_piece(toks[t], id, &len);
            if (len == 1 && p[0] == ' ')
                bare = id; /* the piece that is only U+2581 */
        }
        assert_true(bare >= 0);
        const int32_t B = 3; /* <0x00> */
        const int32_t seqs[][6] = {
            { bare, bare, word, bare, word, -1 },
            { 0, word, -1 },
            { 1, word, 1, word, -1 },
            { B + 0x20, word, -1 },
            { 1, bare, 2, word, -1 },
            { B + 0xE4, 2, B + 0xB8, B + 0xAD, -1 },
            { B + 0xE4, B + 0xB8, word, -1 },
            { B + 0xE4, B + 0x41, B + 0xAD, -1 },
            { B + 0xED, B + 0xA0, B + 0x80, -1 },
            { B + 0xF4, B + 0x90, B + 0x80, B + 0x80, -1 },
            { B + 0xC0, B + 0x80, -1 },
            { B + 0xF0, B + 0x9F, B + 0x98, -1 },
            { B + 0xEF, B + 0xBF, B + 0xBD, bare, -1 },
            { B + 0xF0, B + 0x9F, B + 0x98, B + 0x80, B + 0xFF, -1 },
        };
        for (size_t s = 0; s < sizeof(seqs) / sizeof(seqs[0]); s++) {
            size_t len = 0;
            while (seqs[s][len] >= 0)
                len++;
            tokt_check_stream(toks[t], seqs[s], len);
        }
    }
}

/* Random id sequences, heavy on byte pieces: the stream must match
 * SentencePiece's decoder whatever the model emits. */
static void test_stream_random(void **state)
{
    SKIP_WITHOUT_SHARED();
    struct fixture *fx = *state;
    struct llm_tok *toks[] = { fx->stories_gguf, fx->kernelc_model };
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    int32_t ids[32];
    for (size_t t = 0; t < 2; t++) {
        int32_t nv = llm_tok_n_vocab(toks[t]);
        for (int iter = 0; iter < 3000; iter++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            size_t n = 1 + (size_t)(rng >> 59);
            for (size_t i = 0; i < n; i++) {
                rng = rng * 6364136223846793005ull + 1442695040888963407ull;
                uint32_t r = (uint32_t)(rng >> 33);
                int kind = r % 10;
                r /= 10;
                ids[i] = kind < 5 ? (int32_t)(3 + 0x80 + r % 128) /* high bytes */
                         :
                         kind < 6 ? (int32_t)(3 + r % 128) /* ASCII bytes */
                         :
                         kind < 7 ? (int32_t)(r % 3) /* unk, bos, eos */
                                    :
                                    (int32_t)(259 + r % (uint32_t)(nv - 259));
            }
            tokt_check_stream(toks[t], ids, n);
        }
    }
}

static void test_detok_errors(void **state)
{
    struct llm_tok *tok = load_model(LADE_MODELS_DIR "/tok512.model");
    struct llm_detok d;
    char out[64];
    size_t n;
    llm_detok_init(&d, tok);
    assert_int_equal(llm_detok_push(&d, -1, out, sizeof(out), &n), -ERANGE);
    assert_int_equal(llm_detok_push(&d, 512, out, sizeof(out), &n), -ERANGE);
    /* "▁Once" after the stripped first space; too small a buffer leaves the
     * state as it was, so the retry gives the same bytes. */
    assert_int_equal(llm_detok_push(&d, 403, out, 2, &n), -ENOSPC);
    assert_int_equal(n, 4);
    assert_int_equal(llm_detok_push(&d, 403, out, sizeof(out), &n), 0);
    assert_int_equal(n, 4);
    assert_memory_equal(out, "Once", 4);
    /* Half of "中" is held back; flush gives U+FFFD and resets. */
    assert_int_equal(llm_detok_push(&d, 3 + 0xE4, out, sizeof(out), &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(llm_detok_push(&d, 3 + 0xB8, out, sizeof(out), &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(llm_detok_flush(&d, out, 5, &n), -ENOSPC);
    assert_int_equal(n, 6);
    assert_int_equal(llm_detok_flush(&d, out, sizeof(out), &n), 0);
    assert_int_equal(n, 6);
    assert_memory_equal(out, "\xEF\xBF\xBD\xEF\xBF\xBD", 6);
    assert_int_equal(llm_detok_push(&d, 403, out, sizeof(out), &n), 0);
    assert_memory_equal(out, "Once", 4); /* a new sequence again */
    llm_tok_free(tok);
}

/* ---- hostile input ---------------------------------------------------------- */

/* LLM_TOK_SPECIAL: </s><s> between turns (a Llama 2 multi-turn prompt)
 * become the control tokens, and the text after them is encoded as a whole
 * prompt would be; without the flag they are text. */
static void test_special_text(void **state)
{
    (void)state;
    struct llm_tok *tok = load_gguf(LADE_MODELS_DIR "/stories260K.gguf");
    size_t n, n_once;
    int32_t *once = tokt_encode(tok, "Once upon", 9, 0, &n_once);
    int32_t *ids = tokt_encode(tok, "</s><s>Once upon", 16, LLM_TOK_ADD_BOS | LLM_TOK_SPECIAL, &n);
    static const int32_t head[] = { 1, 2, 1 };
    assert_int_equal(n, 3 + n_once);
    assert_memory_equal(ids, head, sizeof(head));
    assert_memory_equal(ids + 3, once, n_once * sizeof(*ids));
    free(ids);
    ids = tokt_encode(tok, "</s><s>", 7, 0, &n);
    assert_true(n > 2);
    for (size_t i = 0; i < n; i++)
        assert_true(ids[i] != 1 && ids[i] != 2);
    free(ids);
    ids = tokt_encode(tok, "<unk>", 5, LLM_TOK_SPECIAL, &n);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], llm_tok_unk(tok));
    free(ids);
    free(once);
    assert_true(llm_tok_is_eog(tok, llm_tok_eos(tok)));
    assert_false(llm_tok_is_eog(tok, llm_tok_bos(tok)));
    assert_string_equal(llm_tok_model(tok), "llama");
    assert_null(llm_tok_pre(tok));
    llm_tok_free(tok);
}

static void test_hostile_text(void **state)
{
    struct llm_tok *tok = load_gguf(LADE_MODELS_DIR "/stories260K.gguf");
    size_t n, len;
    /* Embedded NULs go through byte fallback and come back. */
    static const char nul[] = "a\0b\0\0c";
    int32_t *ids = tokt_encode(tok, nul, sizeof(nul) - 1, 0, &n);
    char *back = tokt_decode(tok, ids, n, &len);
    assert_int_equal(len, sizeof(nul) - 1);
    assert_memory_equal(back, nul, len);
    free(back);
    free(ids);
    /* Invalid UTF-8 is normalised to U+FFFD, never half a character. */
    static const char bad[] = "x\xFF\xC3y\xE4\xB8 z\xED\xA0\x80";
    ids = tokt_encode(tok, bad, sizeof(bad) - 1, LLM_TOK_ADD_BOS, &n);
    back = tokt_decode(tok, ids, n, &len);
    assert_true(tokt_is_utf8(back, len));
    assert_non_null(strstr(back, "\xEF\xBF\xBD"));
    free(back);
    free(ids);
    /* Long text: 1 MiB of mixed bytes encodes; past the limit is refused. */
    size_t big = (size_t)1 << 20;
    char *text = malloc(LLM_TOK_MAX_TEXT + 1);
    assert_non_null(text);
    for (size_t i = 0; i < big; i++)
        text[i] = (char)("Once upon a time \xE4\xB8\xAD\xFF\n"[i % 22]);
    ids = tokt_encode(tok, text, big, LLM_TOK_ADD_BOS, &n);
    assert_true(n > big / 8);
    free(ids);
    memset(text, 'a', LLM_TOK_MAX_TEXT + 1);
    int32_t one;
    assert_int_equal(llm_tok_encode(tok, text, LLM_TOK_MAX_TEXT + 1, LLM_TOK_ADD_BOS, &one, 1, &n),
                     -E2BIG);
    free(text);
    /* Argument errors. */
    assert_int_equal(llm_tok_encode(tok, NULL, 3, LLM_TOK_ADD_BOS, &one, 1, &n), -EINVAL);
    assert_int_equal(llm_tok_encode(tok, NULL, 0, LLM_TOK_ADD_BOS, &one, 1, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(one, 1);
    int32_t bad_ids[] = { 403, 512 };
    char out[16];
    assert_int_equal(llm_tok_decode(tok, bad_ids, 2, out, sizeof(out), &n), -ERANGE);
    bad_ids[1] = -7;
    assert_int_equal(llm_tok_decode(tok, bad_ids, 2, out, sizeof(out), &n), -ERANGE);
    llm_tok_free(tok);
}

static void test_bad_model_files(void **state)
{
    char err[512] = "";
    struct llm_tok *tok = (struct llm_tok *)1;
    int r = llm_tok_load_file("/nonexistent/tokenizer.model", &tok, err, sizeof(err));
    assert_int_equal(r, -ENOENT);
    assert_null(tok);
    assert_non_null(strstr(err, "/nonexistent/tokenizer.model"));
    /* A GGUF is not a tokenizer.model. */
    err[0] = '\0';
    r = llm_tok_load_file(LADE_MODELS_DIR "/stories260K.gguf", &tok, err, sizeof(err));
    assert_true(r < 0);
    assert_null(tok);
    assert_true(err[0] != '\0');
    llm_tok_free(NULL);
}

/* ---- malformed GGUF vocabularies, built in memory ---------------------------- */

struct gbuf {
    uint8_t *p;
    size_t n, cap;
    uint64_t n_kv;
};

static void gb_put(struct gbuf *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void gb_u32(struct gbuf *b, uint32_t v)
{
    gb_put(b, &v, 4); /* the test host is little-endian, as GGUF is */
}

static void gb_u64(struct gbuf *b, uint64_t v)
{
    gb_put(b, &v, 8);
}

static void gb_str(struct gbuf *b, const char *s, size_t len)
{
    gb_u64(b, len);
    gb_put(b, s, len);
}

static void gb_key(struct gbuf *b, const char *key, uint32_t type)
{
    gb_str(b, key, strlen(key));
    gb_u32(b, type);
    b->n_kv++;
}

/* A small vocabulary: <unk> <s> </s>, the 256 byte pieces, ▁a b ▁ab ▁. */
#define VOCAB_N (3 + 256 + 4)
struct vocab {
    const char *model;
    char tokens[VOCAB_N][16];
    size_t token_len[VOCAB_N];
    float scores[VOCAB_N];
    int32_t types[VOCAB_N];
    int n_tokens, n_scores, n_types; /* entries written; -1 omits the key */
    uint32_t scores_type; /* GGUF element type of the scores */
    int64_t unk_id, bos_id; /* -2 omits the key */
    bool charsmap;
};

static void vocab_default(struct vocab *v)
{
    static const char *words[] = { "\xE2\x96\x81"
                                   "a",
                                   "b",
                                   "\xE2\x96\x81"
                                   "ab",
                                   "\xE2\x96\x81" };
    memset(v, 0, sizeof(*v));
    v->model = "llama";
    const char *special[] = { "<unk>", "<s>", "</s>" };
    for (int i = 0; i < VOCAB_N; i++) {
        if (i < 3)
            snprintf(v->tokens[i], 16, "%s", special[i]);
        else if (i < 259)
            snprintf(v->tokens[i], 16, "<0x%02X>", i - 3);
        else
            snprintf(v->tokens[i], 16, "%s", words[i - 259]);
        v->token_len[i] = strlen(v->tokens[i]);
        v->types[i] = i == 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1;
        v->scores[i] = i < 259 ? 0.0f : (float)-(i - 259);
    }
    v->n_tokens = v->n_scores = v->n_types = VOCAB_N;
    v->scores_type = LLM_GGUF_F32;
    v->unk_id = 0;
    v->bos_id = 1;
}

static struct gbuf vocab_gguf(const struct vocab *v)
{
    struct gbuf b = { 0 }, kv = { 0 };
    gb_key(&kv, "general.architecture", LLM_GGUF_STRING);
    gb_str(&kv, "llama", 5);
    gb_key(&kv, "tokenizer.ggml.model", LLM_GGUF_STRING);
    gb_str(&kv, v->model, strlen(v->model));
    if (v->n_tokens >= 0) {
        gb_key(&kv, "tokenizer.ggml.tokens", LLM_GGUF_ARRAY);
        gb_u32(&kv, LLM_GGUF_STRING);
        gb_u64(&kv, (uint64_t)v->n_tokens);
        for (int i = 0; i < v->n_tokens; i++)
            gb_str(&kv, v->tokens[i], v->token_len[i]);
    }
    if (v->n_scores >= 0) {
        gb_key(&kv, "tokenizer.ggml.scores", LLM_GGUF_ARRAY);
        gb_u32(&kv, v->scores_type);
        gb_u64(&kv, (uint64_t)v->n_scores);
        gb_put(&kv, v->scores, 4 * (size_t)v->n_scores);
    }
    if (v->n_types >= 0) {
        gb_key(&kv, "tokenizer.ggml.token_type", LLM_GGUF_ARRAY);
        gb_u32(&kv, LLM_GGUF_I32);
        gb_u64(&kv, (uint64_t)v->n_types);
        gb_put(&kv, v->types, 4 * (size_t)v->n_types);
    }
    if (v->unk_id != -2) {
        gb_key(&kv, "tokenizer.ggml.unknown_token_id", LLM_GGUF_U32);
        gb_u32(&kv, (uint32_t)v->unk_id);
    }
    if (v->bos_id != -2) {
        gb_key(&kv, "tokenizer.ggml.bos_token_id", LLM_GGUF_U32);
        gb_u32(&kv, (uint32_t)v->bos_id);
    }
    if (v->charsmap) {
        gb_key(&kv, "tokenizer.ggml.precompiled_charsmap", LLM_GGUF_ARRAY);
        gb_u32(&kv, LLM_GGUF_U8);
        gb_u64(&kv, 4);
        gb_put(&kv, "\1\2\3\4", 4);
    }
    gb_put(&b, "GGUF", 4);
    gb_u32(&b, 3);
    gb_u64(&b, 0); /* tensors */
    gb_u64(&b, kv.n_kv);
    gb_put(&b, kv.p, kv.n);
    free(kv.p);
    return b;
}

/* Loads v; returns the tokenizer's result and leaves its message in err. */
static int vocab_load(const struct vocab *v, struct llm_tok **ret, char *err, size_t errlen)
{
    struct gbuf b = vocab_gguf(v);
    struct llm_gguf *g = NULL;
    int r = llm_gguf_parse(b.p, b.n, "mem.gguf", &g, err, errlen);
    if (r != 0)
        fail_msg("test GGUF does not parse: %s", err);
    err[0] = '\0';
    r = llm_tok_load_gguf(g, ret, err, errlen);
    llm_gguf_free(g);
    free(b.p);
    return r;
}

static void expect_fail(const struct vocab *v, int want, const char *needle)
{
    char err[512];
    struct llm_tok *tok = (struct llm_tok *)1;
    int r = vocab_load(v, &tok, err, sizeof(err));
    if (r != want || !strstr(err, needle))
        fail_msg("want %d with \"%s\", got %d: %s", want, needle, r, err);
    assert_null(tok);
}

static void test_gguf_small_vocab_loads(void **state)
{
    struct vocab v;
    vocab_default(&v);
    char err[512];
    struct llm_tok *tok = NULL;
    assert_int_equal(vocab_load(&v, &tok, err, sizeof(err)), 0);
    size_t n, len;
    int32_t *ids = tokt_encode(tok, "ab c\xC3\xA9", 6, LLM_TOK_ADD_BOS, &n);
    /* <s> ▁ab ▁ c é: c and é are not in the vocabulary, so they fall back to
     * bytes. (A space with no "▁" piece would fall back to the bytes of U+2581
     * and decode as "▁", as SentencePiece does, hence the "▁" piece.) */
    static const int32_t want[] = { 1, 261, 262, 3 + 'c', 3 + 0xC3, 3 + 0xA9 };
    assert_int_equal(n, 6);
    assert_memory_equal(ids, want, sizeof(want));
    char *back = tokt_decode(tok, ids, n, &len);
    assert_string_equal(back, "ab c\xC3\xA9");
    tokt_check_stream(tok, ids, n);
    free(back);
    free(ids);
    assert_int_equal(llm_tok_eos(tok), -1); /* no eos_token_id key */
    llm_tok_free(tok);
}

/* Missing, mistyped and mismatched keys: each message names the key. */
static void test_gguf_malformed_keys(void **state)
{
    struct vocab v;
    vocab_default(&v);
    v.model = "bert"; /* "gpt2" is byte-level BPE: tests/llama/test_bpe.c */
    expect_fail(&v, -ENOTSUP, "tokenizer.ggml.model");
    vocab_default(&v);
    v.n_tokens = -1;
    expect_fail(&v, -EINVAL, "tokenizer.ggml.tokens is missing");
    vocab_default(&v);
    v.n_scores = -1;
    expect_fail(&v, -EINVAL, "tokenizer.ggml.scores is missing");
    vocab_default(&v);
    v.n_scores = VOCAB_N - 1;
    expect_fail(&v, -EINVAL, "tokenizer.ggml.scores has 262 entries");
    vocab_default(&v);
    v.n_types = VOCAB_N - 2;
    expect_fail(&v, -EINVAL, "tokenizer.ggml.token_type has 261 entries");
    vocab_default(&v);
    v.n_types = -1;
    expect_fail(&v, -EINVAL, "tokenizer.ggml.token_type is missing");
    vocab_default(&v);
    v.scores_type = LLM_GGUF_I32;
    expect_fail(&v, -EINVAL, "tokenizer.ggml.scores must be an array of float32");
}

/* Per-token faults: each message names the token. */
static void test_gguf_malformed_tokens(void **state)
{
    struct vocab v;
    vocab_default(&v);
    v.types[261] = 9;
    expect_fail(&v, -EINVAL, "token 261 has type 9");
    vocab_default(&v);
    v.unk_id = VOCAB_N;
    expect_fail(&v, -EINVAL, "tokenizer.ggml.unknown_token_id = 263 is out of range");
    vocab_default(&v);
    v.bos_id = 100000;
    expect_fail(&v, -EINVAL, "tokenizer.ggml.bos_token_id = 100000 is out of range");
    vocab_default(&v);
    v.unk_id = 5;
    expect_fail(&v, -EINVAL, "unknown_token_id is not the token of type UNKNOWN");
    vocab_default(&v);
    v.types[0] = 3;
    v.unk_id = -2;
    expect_fail(&v, -EINVAL, "no token has type UNKNOWN");
    vocab_default(&v);
    v.types[1] = 2;
    expect_fail(&v, -EINVAL, "tokens 0 and 1 both have type UNKNOWN");
    vocab_default(&v);
    snprintf(v.tokens[10], 16, "<0x7G>");
    expect_fail(&v, -EINVAL, "byte token 10");
    vocab_default(&v);
    memcpy(v.tokens[260], "b\xC3", 3);
    v.token_len[260] = 2;
    expect_fail(&v, -EINVAL, "token 260 is empty, has a NUL or is not valid UTF-8");
    vocab_default(&v);
    memcpy(v.tokens[260], "b\0c", 3);
    v.token_len[260] = 3;
    expect_fail(&v, -EINVAL, "token 260");
    vocab_default(&v);
    v.token_len[262] = 0;
    expect_fail(&v, -EINVAL, "token 262");
    vocab_default(&v);
    v.scores[261] = NAN;
    expect_fail(&v, -EINVAL, "token 261 has a score that is not finite");
    vocab_default(&v);
    snprintf(v.tokens[262], 16, "b"); /* duplicate of token 260: SentencePiece's message */
    v.token_len[262] = 1;
    expect_fail(&v, -EINVAL, "");
    vocab_default(&v);
    v.charsmap = true;
    expect_fail(&v, -ENOTSUP, "precompiled_charsmap");
}

/* ---- chunked encoding (issue 20) ----------------------------------------------
 * llm_tok_encode splits a long text at single spaces between printable ASCII
 * bytes to bound SentencePiece's working memory; the ids must be exactly
 * those of encoding the whole text at once. */

/* A deterministic text of about len bytes: words, punctuation, digits,
 * runs of spaces, newlines, tabs, multi-byte UTF-8. */
static char *mixed_text(size_t len)
{
    static const char *const words[] = {
        "Once",
        "upon",
        "a",
        "time,",
        "there",
        "was",
        "Lily.",
        "She",
        "liked",
        "to",
        "play",
        "\"Hi!\"",
        "1234",
        "3.14",
        "caf\xC3\xA9",
        "na\xC3\xAFve",
        "\xF0\x9F\xA6\x8A",
        "\xE6\x97\xA5\xE6\x9C\xAC",
        "(x)",
        "--",
        "a-b",
        "it's",
        "\xE2\x96\x81",
        "x\ty",
        "end.\n",
        "  ",
        "\n\n",
        "ok",
    };
    char *t = malloc(len + 64);
    size_t n = 0;
    uint32_t x = 12345;

    assert_non_null(t);
    while (n < len) {
        x = x * 1103515245u + 12345u;
        const char *w = words[(x >> 16) % (sizeof(words) / sizeof(words[0]))];
        size_t wl = strlen(w);
        memcpy(t + n, w, wl);
        n += wl;
        t[n++] = ' ';
    }
    t[n] = '\0';
    return t;
}

static void check_chunked_identical(const char *model_path)
{
    char err[256] = "";
    struct llm_sp *sp = NULL;
    struct llm_tok *tok = load_model(model_path);
    size_t len = 300000, n_whole = 0, n_chunked = 0;
    char *text = mixed_text(len);
    int32_t *whole = malloc((len + 2) * sizeof(*whole)),
            *chunked = malloc((len + 2) * sizeof(*chunked));

    len = strlen(text);
    assert_non_null(whole);
    assert_non_null(chunked);
    assert_int_equal(llm_sp_load_file(model_path, &sp, err, sizeof(err)), 0);
    assert_int_equal(llm_sp_encode(sp, text, len, whole, len + 2, &n_whole, err, sizeof(err)), 0);
    assert_int_equal(llm_tok_encode(tok, text, len, false, chunked, len + 2, &n_chunked), 0);
    assert_int_equal(n_chunked, n_whole);
    for (size_t i = 0; i < n_whole; i++)
        if (whole[i] != chunked[i])
            fail_msg("%s: id %zu of %zu differs: %d whole, %d chunked", model_path, i, n_whole,
                     whole[i], chunked[i]);
    /* the -ENOSPC contract still counts every id */
    assert_int_equal(llm_tok_encode(tok, text, len, true, chunked, 10, &n_chunked), -ENOSPC);
    assert_int_equal(n_chunked, n_whole + 1);
    free(whole);
    free(chunked);
    free(text);
    llm_sp_free(sp);
    llm_tok_free(tok);
}

static void test_encode_chunked_identical(void **state)
{
    check_chunked_identical(LADE_MODELS_DIR "/tok512.model");
}

static void test_encode_chunked_identical_llama(void **state)
{
    SKIP_WITHOUT_SHARED();
    check_chunked_identical(KERNELC_DIR "/tokenizer.model");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_once_upon_a_time_bundled),
        cmocka_unit_test(test_pieces),
        cmocka_unit_test(test_prompts_model_equals_gguf),
        cmocka_unit_test(test_reference_records),
        cmocka_unit_test(test_multibyte_stream),
        cmocka_unit_test(test_stream_edge_cases),
        cmocka_unit_test(test_stream_random),
        cmocka_unit_test(test_detok_errors),
        cmocka_unit_test(test_special_text),
        cmocka_unit_test(test_hostile_text),
        cmocka_unit_test(test_bad_model_files),
        cmocka_unit_test(test_gguf_small_vocab_loads),
        cmocka_unit_test(test_gguf_malformed_keys),
        cmocka_unit_test(test_gguf_malformed_tokens),
        cmocka_unit_test(test_encode_chunked_identical),
        cmocka_unit_test(test_encode_chunked_identical_llama),
    };
    return cmocka_run_group_tests(tests, setup_shared, teardown_shared);
}
