/* Tokenizer test helpers shared by test_tokenizer.c and test_bpe.c
 * (support_tok.h). */
#include "llama/support_tok.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "llama/tokenizer.h"

/* Encode into a malloc'd array, exercising the -ENOSPC contract on the way. */
int32_t *tokt_encode(const struct llm_tok *tok, const char *text, size_t len, unsigned flags,
                     size_t *ret_n)
{
    size_t need = 0, n = 0;
    int r = llm_tok_encode(tok, text, len, flags, NULL, 0, &need);
    assert_true(r == -ENOSPC || (r == 0 && need == 0));
    int32_t *ids = malloc((need + 1) * sizeof(*ids));
    assert_non_null(ids);
    assert_int_equal(llm_tok_encode(tok, text, len, flags, ids, need, &n), 0);
    assert_int_equal(n, need);
    *ret_n = n;
    return ids;
}

char *tokt_decode(const struct llm_tok *tok, const int32_t *ids, size_t n, size_t *ret_len)
{
    size_t need = 0, len = 0;
    char small[1];
    int r = llm_tok_decode(tok, ids, n, small, sizeof(small), &need);
    assert_true(r == -ENOSPC || (r == 0 && need == 0));
    char *out = malloc(need + 1);
    assert_non_null(out);
    assert_int_equal(llm_tok_decode(tok, ids, n, out, need + 1, &len), 0);
    assert_int_equal(len, need);
    assert_int_equal(out[len], '\0');
    *ret_len = len;
    return out;
}

/* Strict UTF-8 (shortest form, no surrogates, at most U+10FFFF). */
bool tokt_is_utf8(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        size_t len = c < 0x80           ? 1 :
                     (c & 0xE0) == 0xC0 ? 2 :
                     (c & 0xF0) == 0xE0 ? 3 :
                     (c & 0xF8) == 0xF0 ? 4 :
                                          0;
        if (len == 0 || n - i < len)
            return false;
        uint32_t cp = len == 1 ? c : c & (0x7F >> len);
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        static const uint32_t min_cp[5] = { 0, 0, 0x80, 0x800, 0x10000 };
        if (cp < min_cp[len] || (cp >= 0xD800 && cp < 0xE000) || cp > 0x10FFFF)
            return false;
        i += len;
    }
    return true;
}

/* Streams ids one at a time; every chunk must be whole UTF-8 and the
 * concatenation must equal llm_tok_decode. */
void tokt_check_stream(const struct llm_tok *tok, const int32_t *ids, size_t n)
{
    size_t want_len, got = 0, chunk;
    char *want = tokt_decode(tok, ids, n, &want_len);
    size_t max = llm_detok_max_out(tok);
    char *buf = malloc(want_len + max + 1), *tmp = malloc(max);
    assert_non_null(buf);
    assert_non_null(tmp);
    struct llm_detok d;
    llm_detok_init(&d, tok);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(llm_detok_push(&d, ids[i], tmp, max, &chunk), 0);
        if (!tokt_is_utf8(tmp, chunk))
            fail_msg("chunk after token %zu (id %d) is not whole UTF-8", i, (int)ids[i]);
        assert_true(got + chunk <= want_len);
        memcpy(buf + got, tmp, chunk);
        got += chunk;
    }
    assert_int_equal(llm_detok_flush(&d, tmp, max, &chunk), 0);
    assert_true(tokt_is_utf8(tmp, chunk));
    memcpy(buf + got, tmp, chunk);
    got += chunk;
    if (got != want_len || memcmp(buf, want, got) != 0)
        fail_msg("stream (%zu bytes) differs from decode (%zu bytes): '%.*s' vs '%.*s'", got,
                 want_len, (int)got, buf, (int)want_len, want);
    free(tmp);
    free(buf);
    free(want);
}

int32_t *tokt_json_ids(json_t *arr, size_t *ret_n)
{
    size_t n = json_array_size(arr);
    int32_t *ids = malloc((n + 1) * sizeof(*ids));
    assert_non_null(ids);
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(arr, i);
        assert_true(json_is_integer(v));
        ids[i] = (int32_t)json_integer_value(v);
    }
    *ret_n = n;
    return ids;
}

/* Calls fn for every object of a .jsonl file. */
void tokt_each_jsonl(const char *path, void (*fn)(json_t *rec, void *ctx), void *ctx)
{
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot open %s", path);
    char *line = NULL;
    size_t cap = 0;
    int records = 0;
    while (getline(&line, &cap, f) > 0) {
        json_error_t jerr;
        json_t *rec = json_loads(line, 0, &jerr);
        if (!rec)
            fail_msg("%s: %s", path, jerr.text);
        fn(rec, ctx);
        json_decref(rec);
        records++;
    }
    free(line);
    fclose(f);
    assert_true(records > 0);
}
