/* llama/bpe.c through llama/tokenizer.h: byte-level BPE vocabularies from
 * the GGUF alone, special tokens, end of generation, and refusal of
 * malformed vocabularies built in memory.
 *
 * Reference ids: tests/llama/data/bpe-fixtures.tar.xz, unpacked by CMake
 * into LADE_BPE_FIXTURES, holds a vocabulary-only GGUF per tokenizer
 * (Llama 3, Llama 3.1, Qwen3) and, for a generated corpus, the ids Hugging
 * Face's tokenizer gives (@lenml/tokenizers); scripts/fixtures/README.md
 * says how scripts/fixtures/make-bpe-fixtures.mjs made them and how the
 * lines of ill-formed UTF-8 were referenced. Each record: "t" (text) or "x"
 * (its bytes in hex when they are not UTF-8), "s" (1: LLM_TOK_SPECIAL),
 * "ids". */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>

#include "llama/gguf-write.h"
#include "llama/gguf.h"
#include "llama/support_tok.h"
#include "llama/tokenizer.h"

static struct llm_tok *load_fixture(const char *name)
{
    char path[512], err[LLM_GGUF_ERR_MAX] = "";
    struct llm_gguf *g = NULL;
    struct llm_tok *tok = NULL;
    snprintf(path, sizeof(path), "%s/%s.gguf", LADE_BPE_FIXTURES, name);
    int r = llm_gguf_open(path, &g, err, sizeof(err));
    if (r != 0)
        fail_msg("llm_gguf_open(%s) = %d: %s", path, r, err);
    r = llm_tok_load_gguf(g, &tok, err, sizeof(err));
    if (r != 0)
        fail_msg("llm_tok_load_gguf(%s) = %d: %s", path, r, err);
    llm_gguf_free(g); /* the tokenizer keeps its own copy */
    return tok;
}

static int hexval(char c)
{
    return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

/* ---- the corpus ------------------------------------------------------------ */

struct corpus_run {
    const struct llm_tok *tok;
    size_t records, mismatches, round_trips;
};

static void check_record(json_t *rec, void *ctx)
{
    struct corpus_run *run = ctx;
    json_t *t = json_object_get(rec, "t"), *x = json_object_get(rec, "x");
    size_t len, n_want, n;
    char *text;
    if (t) {
        len = json_string_length(t);
        text = malloc(len + 1);
        assert_non_null(text);
        memcpy(text, json_string_value(t), len);
    } else {
        const char *hex = json_string_value(x);
        len = strlen(hex) / 2;
        text = malloc(len + 1);
        assert_non_null(text);
        for (size_t i = 0; i < len; i++)
            text[i] = (char)(hexval(hex[2 * i]) * 16 + hexval(hex[2 * i + 1]));
    }
    bool special = json_integer_value(json_object_get(rec, "s")) != 0;
    int32_t *want = tokt_json_ids(json_object_get(rec, "ids"), &n_want);
    int32_t *ids = tokt_encode(run->tok, text, len, special ? LLM_TOK_SPECIAL : 0, &n);
    run->records++;
    if (n != n_want || memcmp(ids, want, n * sizeof(*ids)) != 0) {
        if (run->mismatches++ < 5) {
            print_message("mismatch (special %d, %zu vs %zu ids) on '%.*s':", special, n, n_want,
                          (int)len, text);
            for (size_t i = 0; i < n || i < n_want; i++)
                print_message(" %d/%d", i < n ? (int)ids[i] : -1, i < n_want ? (int)want[i] : -1);
            print_message("\n");
        }
    }
    /* Plain valid text comes back as it went in (NFC'd, for qwen2); any
     * ids stream as they decode. */
    if (t && !special) {
        size_t back_len;
        char *back = tokt_decode(run->tok, ids, n, &back_len);
        json_t *nfc = json_object_get(rec, "nfc");
        const char *want_text = text;
        if (nfc && strcmp(llm_tok_pre(run->tok), "qwen2") == 0) {
            want_text = json_string_value(nfc);
            len = json_string_length(nfc);
        }
        if (back_len != len || memcmp(back, want_text, len) != 0)
            fail_msg("decode(encode('%s')) = '%s'", want_text, back);
        run->round_trips++;
        free(back);
    }
    tokt_check_stream(run->tok, ids, n);
    free(ids);
    free(want);
    free(text);
}

static void check_corpus(const char *name)
{
    char path[512];
    struct corpus_run run = { .tok = load_fixture(name) };
    snprintf(path, sizeof(path), "%s/%s.jsonl", LADE_BPE_FIXTURES, name);
    tokt_each_jsonl(path, check_record, &run);
    print_message("%s: %zu records, %zu mismatches, %zu round trips\n", name, run.records,
                  run.mismatches, run.round_trips);
    assert_true(run.records >= 2000);
    assert_int_equal(run.mismatches, 0);
    llm_tok_free((struct llm_tok *)run.tok);
}

static void test_corpus_llama3(void **state)
{
    (void)state;
    check_corpus("llama3");
}

static void test_corpus_llama3_1(void **state)
{
    (void)state;
    check_corpus("llama3_1");
}

static void test_corpus_qwen3(void **state)
{
    (void)state;
    check_corpus("qwen3");
}

/* ---- special tokens, BOS, end of generation ------------------------------- */

static void expect_ids(const struct llm_tok *tok, const char *text, unsigned flags,
                       const int32_t *want, size_t n_want)
{
    size_t n;
    int32_t *ids = tokt_encode(tok, text, strlen(text), flags, &n);
    if (n != n_want || memcmp(ids, want, n * sizeof(*ids)) != 0)
        fail_msg("'%s' (flags %u): %zu ids, first %d; want %zu, first %d", text, flags, n,
                 n ? (int)ids[0] : -1, n_want, (int)want[0]);
    free(ids);
}

static void test_llama3_specials(void **state)
{
    (void)state;
    struct llm_tok *tok = load_fixture("llama3");
    const int32_t *eog;
    size_t n;
    assert_string_equal(llm_tok_model(tok), "gpt2");
    assert_string_equal(llm_tok_pre(tok), "llama-bpe");
    assert_int_equal(llm_tok_n_vocab(tok), 128256);
    assert_int_equal(llm_tok_bos(tok), 128000);
    assert_int_equal(llm_tok_eos(tok), 128001);
    assert_true(llm_tok_add_bos(tok));
    /* <|eot_id|> is not declared; it is found by text (Llama 3.0 has no
     * <|eom_id|>: 128008 is a reserved token there). */
    assert_true(llm_tok_is_eog(tok, 128001));
    assert_true(llm_tok_is_eog(tok, 128009));
    assert_false(llm_tok_is_eog(tok, 128008));
    assert_false(llm_tok_is_eog(tok, 128000));
    assert_false(llm_tok_is_eog(tok, 9906));
    assert_int_equal(llm_tok_eog(tok, &eog), 2);
    assert_int_equal(eog[0], 128001);

    static const int32_t bos_hello[] = { 128000, 128000, 9906 };
    expect_ids(tok, "<|begin_of_text|>Hello", LLM_TOK_ADD_BOS | LLM_TOK_SPECIAL, bos_hello, 3);
    expect_ids(tok, "<|begin_of_text|>Hello", LLM_TOK_SPECIAL, bos_hello + 1, 2);
    int32_t *plain = tokt_encode(tok, "<|begin_of_text|>", 17, 0, &n);
    assert_true(n > 1);
    for (size_t i = 0; i < n; i++)
        assert_true(plain[i] < 128000);
    free(plain);
    /* Longest match first: <|eot_id|> is not cut short by another special. */
    static const int32_t eot[] = { 128009 };
    expect_ids(tok, "<|eot_id|>", LLM_TOK_SPECIAL, eot, 1);
    /* Control tokens decode to nothing. */
    char out[8];
    assert_int_equal(llm_tok_decode(tok, eot, 1, out, sizeof(out), &n), 0);
    assert_int_equal(n, 0);
    /* Unknown flags and BOS-less ADD_BOS are refused. */
    int32_t one;
    assert_int_equal(llm_tok_encode(tok, "a", 1, 4u, &one, 1, &n), -EINVAL);
    llm_tok_free(tok);
}

/* Llama 3.1 declares <|eot_id|> as eos; <|end_of_text|> ends generation
 * too. (This package's 3.1 vocabulary has no <|eom_id|>: 128008 is still
 * reserved there.) */
static void test_llama3_1_eog(void **state)
{
    (void)state;
    struct llm_tok *tok = load_fixture("llama3_1");
    const int32_t *eog;
    assert_int_equal(llm_tok_eos(tok), 128009);
    assert_int_equal(llm_tok_eog(tok, &eog), 2);
    assert_int_equal(eog[0], 128009);
    assert_true(llm_tok_is_eog(tok, 128001));
    assert_false(llm_tok_is_eog(tok, 128008));
    llm_tok_free(tok);
}

static void test_qwen3_specials(void **state)
{
    (void)state;
    struct llm_tok *tok = load_fixture("qwen3");
    size_t n;
    assert_string_equal(llm_tok_pre(tok), "qwen2");
    assert_false(llm_tok_add_bos(tok));
    assert_int_equal(llm_tok_eos(tok), 151645);
    assert_true(llm_tok_is_eog(tok, 151645)); /* <|im_end|> */
    assert_true(llm_tok_is_eog(tok, 151643)); /* <|endoftext|>, by text */
    assert_false(llm_tok_is_eog(tok, 151644));
    static const int32_t im_start[] = { 151644 };
    expect_ids(tok, "<|im_start|>", LLM_TOK_SPECIAL, im_start, 1);
    /* <think> is user-defined: matched with or without the flag, and decoded. */
    static const int32_t think[] = { 151667 };
    expect_ids(tok, "<think>", 0, think, 1);
    expect_ids(tok, "<think>", LLM_TOK_SPECIAL, think, 1);
    char *back = tokt_decode(tok, think, 1, &n);
    assert_string_equal(back, "<think>");
    free(back);
    /* NFC: a decomposed é encodes as the composed one. */
    size_t n1, n2;
    int32_t *a = tokt_encode(tok, "caf\xC3\xA9", 5, 0, &n1);
    int32_t *b = tokt_encode(tok, "cafe\xCC\x81", 6, 0, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(a, b, n1 * sizeof(*a));
    free(a);
    free(b);
    llm_tok_free(tok);
}

/* A token ending inside a character is held back until the character is
 * whole; an ill-formed byte comes out as U+FFFD where decode puts it. */
static void test_stream_holds_partial_characters(void **state)
{
    (void)state;
    struct llm_tok *tok = load_fixture("llama3");
    size_t n, len;
    static const char text[] = "\xF0\x9F\x91\x8D\xE4\xB8\xAD x\xFF\xE4\xB8";
    int32_t *ids = tokt_encode(tok, text, sizeof(text) - 1, 0, &n);
    /* Byte by byte: the thumbs-up's 4 bytes are single byte tokens here. */
    struct llm_detok d;
    char out[64];
    llm_detok_init(&d, tok);
    size_t k = 0;
    const char *piece = llm_tok_piece(tok, ids[0], &len);
    assert_non_null(piece);
    assert_int_equal(llm_detok_push(&d, ids[0], out, sizeof(out), &k), 0);
    if (len < 4)
        assert_int_equal(k, 0); /* held back */
    tokt_check_stream(tok, ids, n);
    char *back = tokt_decode(tok, ids, n, &len);
    assert_string_equal(back, "\xF0\x9F\x91\x8D\xE4\xB8\xAD x\xEF\xBF\xBD\xEF\xBF\xBD");
    free(back);
    free(ids);
    /* Flush resets: a new sequence starts clean. */
    assert_int_equal(llm_detok_flush(&d, out, sizeof(out), &k), 0);
    assert_int_equal(d.n_pending, 0);
    llm_tok_free(tok);
}

/* Random bytes and long runs: no crash, every byte kept, bounded time. */
static void test_hostile_text(void **state)
{
    (void)state;
    struct llm_tok *tok = load_fixture("qwen3");
    size_t big = (size_t)1 << 20, n, len;
    char *text = malloc(LLM_TOK_MAX_TEXT + 1);
    assert_non_null(text);
    srand(18);
    for (size_t i = 0; i < big; i++)
        text[i] = (char)rand();
    clock_t t0 = clock();
    int32_t *ids = tokt_encode(tok, text, big, LLM_TOK_SPECIAL, &n);
    free(ids);
    memset(text, 'a', big);
    ids = tokt_encode(tok, text, big, 0, &n); /* one 1 MiB piece */
    char *back = tokt_decode(tok, ids, n, &len);
    assert_int_equal(len, big);
    assert_memory_equal(back, text, big);
    free(back);
    free(ids);
    memset(text, ' ', big);
    ids = tokt_encode(tok, text, big, 0, &n);
    free(ids);
    for (size_t i = 0; i < big; i++)
        text[i] = "<|im_start|"[i % 11];
    ids = tokt_encode(tok, text, big, LLM_TOK_SPECIAL, &n);
    free(ids);
    print_message("hostile inputs: %.2f s\n", (double)(clock() - t0) / CLOCKS_PER_SEC);
    int32_t one;
    assert_int_equal(llm_tok_encode(tok, text, LLM_TOK_MAX_TEXT + 1, 0, &one, 1, &n), -E2BIG);
    free(text);
    llm_tok_free(tok);
}

/* ---- malformed vocabularies built in memory -------------------------------- */

#define SMALL_N 262 /* 256 byte tokens, "he", "ll", "hell", "hello", "<|end|>", "<u>" */

struct small {
    const char *pre; /* NULL: absent */
    const char *merges[4];
    int32_t n_merges; /* -1: key absent */
    int32_t type_last; /* type of the last token */
    int64_t bos; /* -1: absent */
    bool drop_byte; /* leave out the token of byte 'z' */
};

static void small_default(struct small *s)
{
    *s = (struct small){ .pre = "gpt2",
                         .merges = { "h e", "l l", "he ll", "hell o" },
                         .n_merges = 4,
                         .type_last = 4,
                         .bos = 260 };
}

/* The vocabulary's tokens in order: the bytes in GPT-2's alphabet, then
 * the merged words and the two specials. */
static void small_token(int i, bool drop_byte, char *buf)
{
    static const char *const words[] = { "he", "ll", "hell", "hello", "<|end|>", "<u>" };
    if (i >= 256) {
        strcpy(buf, words[i - 256]);
        return;
    }
    int c = i, cp = c;
    bool printable = (c >= 33 && c <= 126) || (c >= 161 && c <= 172) || c >= 174;
    if (!printable) {
        int k = 0;
        for (int j = 0; j < c; j++)
            k += !((j >= 33 && j <= 126) || (j >= 161 && j <= 172) || j >= 174);
        cp = 256 + k;
    }
    if (drop_byte && c == 'z')
        cp = 0x4E2D; /* a character outside the alphabet instead */
    if (cp < 0x80) {
        buf[0] = (char)cp;
        buf[1] = '\0';
    } else if (cp < 0x800) {
        buf[0] = (char)(0xC0 | (cp >> 6));
        buf[1] = (char)(0x80 | (cp & 0x3F));
        buf[2] = '\0';
    } else {
        buf[0] = (char)(0xE0 | (cp >> 12));
        buf[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        buf[2] = (char)(0x80 | (cp & 0x3F));
        buf[3] = '\0';
    }
}

static void w_arr_head(struct llm_gguf_w *w, const char *key, uint32_t elem, uint64_t n)
{
    llm_gguf_w_str(w, key, strlen(key));
    llm_gguf_w_u32(w, LLM_GGUF_ARRAY);
    llm_gguf_w_u32(w, elem);
    llm_gguf_w_u64(w, n);
}

/* Writes the GGUF into memory and loads it. */
static int small_load(const struct small *s, struct llm_tok **ret, char *err, size_t errlen)
{
    char *buf = NULL, tokbuf[8];
    size_t size = 0;
    struct llm_gguf_w w = { .f = open_memstream(&buf, &size) };
    assert_non_null(w.f);
    llm_gguf_w_header(&w, 0, 4 + (s->pre != NULL) + (s->n_merges >= 0) + (s->bos >= 0));
    llm_gguf_w_kv_str(&w, "tokenizer.ggml.model", "gpt2");
    if (s->pre)
        llm_gguf_w_kv_str(&w, "tokenizer.ggml.pre", s->pre);
    w_arr_head(&w, "tokenizer.ggml.tokens", LLM_GGUF_STRING, SMALL_N);
    for (int i = 0; i < SMALL_N; i++) {
        small_token(i, s->drop_byte, tokbuf);
        llm_gguf_w_str(&w, tokbuf, strlen(tokbuf));
    }
    w_arr_head(&w, "tokenizer.ggml.token_type", LLM_GGUF_I32, SMALL_N);
    for (int i = 0; i < SMALL_N; i++)
        llm_gguf_w_u32(&w, i == SMALL_N - 1 ? (uint32_t)s->type_last : i == SMALL_N - 2 ? 3 : 1);
    if (s->n_merges >= 0) {
        w_arr_head(&w, "tokenizer.ggml.merges", LLM_GGUF_STRING, (uint64_t)s->n_merges);
        for (int i = 0; i < s->n_merges; i++)
            llm_gguf_w_str(&w, s->merges[i], strlen(s->merges[i]));
    }
    if (s->bos >= 0)
        llm_gguf_w_kv_u32(&w, "tokenizer.ggml.bos_token_id", (uint32_t)s->bos);
    llm_gguf_w_kv_u32(&w, "tokenizer.ggml.eos_token_id", 260);
    llm_gguf_w_pad(&w, 32);
    assert_int_equal(llm_gguf_w_error(&w), 0);
    assert_int_equal(fclose(w.f), 0);
    struct llm_gguf *g = NULL;
    int r = llm_gguf_parse(buf, size, "mem.gguf", &g, err, errlen);
    if (r == 0)
        r = llm_tok_load_gguf(g, ret, err, errlen);
    llm_gguf_free(g);
    free(buf);
    return r;
}

static void expect_refused(const struct small *s, int want, const char *needle)
{
    char err[LLM_GGUF_ERR_MAX] = "";
    struct llm_tok *tok = NULL;
    int r = small_load(s, &tok, err, sizeof(err));
    if (r != want || !strstr(err, needle))
        fail_msg("want %d with \"%s\", got %d: %s", want, needle, r, err);
    assert_null(tok);
}

static void test_small_vocab(void **state)
{
    (void)state;
    struct small s;
    struct llm_tok *tok = NULL;
    char err[LLM_GGUF_ERR_MAX] = "";
    small_default(&s);
    assert_int_equal(small_load(&s, &tok, err, sizeof(err)), 0);
    assert_string_equal(llm_tok_pre(tok), "gpt2");
    assert_false(llm_tok_add_bos(tok)); /* gpt2's default when the key is absent */
    /* "hellox" merges to hello + x (byte tokens are numbered by byte);
     * <u> is user-defined, <|end|> a control token. */
    static const int32_t special[] = { 261, 259, 'x', '!', 260 };
    static const int32_t plain[] = { 261, 259, 'x', '!', '<', '|', 'e', 'n', 'd', '|', '>' };
    expect_ids(tok, "<u>hellox!<|end|>", LLM_TOK_SPECIAL, special, 5);
    expect_ids(tok, "<u>hellox!<|end|>", 0, plain, 11);
    llm_tok_free(tok);
    s.pre = NULL; /* absent: GPT-2's regex */
    assert_int_equal(small_load(&s, &tok, err, sizeof(err)), 0);
    assert_string_equal(llm_tok_pre(tok), "default");
    llm_tok_free(tok);
    /* Every other name loads, with the same ids for this text. */
    static const char *const pres[] = { "gpt2",  "llama-bpe",        "llama3", "llama-v3",
                                        "qwen2", "deepseek-r1-qwen", "smollm" };
    for (size_t i = 0; i < sizeof(pres) / sizeof(pres[0]); i++) {
        s.pre = pres[i];
        assert_int_equal(small_load(&s, &tok, err, sizeof(err)), 0);
        assert_string_equal(llm_tok_pre(tok), pres[i]);
        expect_ids(tok, "<u>hellox!<|end|>", LLM_TOK_SPECIAL, special, 5);
        llm_tok_free(tok);
    }
}

static void test_small_vocab_refused(void **state)
{
    (void)state;
    struct small s;
    small_default(&s);
    s.pre = "deepseek-v3";
    expect_refused(&s, -ENOTSUP, "tokenizer.ggml.pre is \"deepseek-v3\"");
    small_default(&s);
    s.n_merges = -1;
    expect_refused(&s, -EINVAL, "tokenizer.ggml.merges is missing");
    small_default(&s);
    s.merges[2] = "he q"; /* "heq" is no token */
    expect_refused(&s, -EINVAL, "tokenizer.ggml.merges[2]");
    small_default(&s);
    s.merges[1] = "ll";
    expect_refused(&s, -EINVAL, "tokenizer.ggml.merges[1]");
    small_default(&s);
    s.merges[0] = "h  e";
    expect_refused(&s, -EINVAL, "tokenizer.ggml.merges[0]");
    small_default(&s);
    s.merges[3] = "hell nothing";
    expect_refused(&s, -EINVAL, "tokenizer.ggml.merges[3]");
    small_default(&s);
    s.merges[0] = " e";
    expect_refused(&s, -EINVAL, "tokenizer.ggml.merges[0]");
    small_default(&s);
    s.drop_byte = true;
    expect_refused(&s, -EINVAL, "no token for byte 0x7A");
    small_default(&s);
    s.type_last = 9;
    expect_refused(&s, -EINVAL, "token 261 has type 9");
    small_default(&s);
    s.bos = SMALL_N;
    expect_refused(&s, -EINVAL, "tokenizer.ggml.bos_token_id");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus_llama3),
        cmocka_unit_test(test_corpus_llama3_1),
        cmocka_unit_test(test_corpus_qwen3),
        cmocka_unit_test(test_llama3_specials),
        cmocka_unit_test(test_llama3_1_eog),
        cmocka_unit_test(test_qwen3_specials),
        cmocka_unit_test(test_stream_holds_partial_characters),
        cmocka_unit_test(test_hostile_text),
        cmocka_unit_test(test_small_vocab),
        cmocka_unit_test(test_small_vocab_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
