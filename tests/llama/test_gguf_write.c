/* The GGUF writer: copying every key/value and tensor of the bundled
 * stories260K.gguf through llm_gguf_w_* gives a file the reader accepts
 * with the same keys, values, vocabulary and tensor bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "llama/gguf-write.h"
#include "llama/gguf.h"

static void test_round_trip(void **state)
{
    char err[512];
    struct llm_gguf *g, *h;
    assert_int_equal(llm_gguf_open(LADE_MODELS_DIR "/stories260K.gguf", &g, err, sizeof(err)), 0);
    FILE *f = tmpfile();
    assert_non_null(f);
    struct llm_gguf_w w = { f, 0 };
    uint64_t nt = llm_gguf_n_tensors(g), nkv = llm_gguf_n_kv(g), off = 0;
    llm_gguf_w_header(&w, nt, nkv);
    for (uint64_t i = 0; i < nkv; i++)
        llm_gguf_w_kv_copy(&w, g, llm_gguf_kv_at(g, i));
    for (uint64_t i = 0; i < nt; i++) {
        const struct llm_gguf_tensor *t = llm_gguf_tensor_at(g, i);
        llm_gguf_w_tensor_info(&w, t->name, t->n_dims, t->ne, t->type, off);
        off += (t->size + llm_gguf_alignment(g) - 1) / llm_gguf_alignment(g) *
               llm_gguf_alignment(g);
    }
    llm_gguf_w_pad(&w, llm_gguf_alignment(g));
    for (uint64_t i = 0; i < nt; i++) {
        const struct llm_gguf_tensor *t = llm_gguf_tensor_at(g, i);
        llm_gguf_w_bytes(&w, t->data, t->size);
        llm_gguf_w_pad(&w, llm_gguf_alignment(g));
    }
    assert_int_equal(llm_gguf_w_error(&w), 0);
    long size = ftell(f);
    char *buf = malloc((size_t)size);
    rewind(f);
    assert_int_equal(fread(buf, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    assert_int_equal(llm_gguf_parse(buf, (size_t)size, "copy.gguf", &h, err, sizeof(err)), 0);
    assert_int_equal(llm_gguf_n_kv(h), nkv);
    assert_int_equal(llm_gguf_n_tensors(h), nt);
    for (uint64_t i = 0; i < nkv; i++) {
        const struct llm_gguf_kv *a = llm_gguf_kv_at(g, i), *b = llm_gguf_kv_at(h, i);
        assert_int_equal(a->key.len, b->key.len);
        assert_memory_equal(a->key.ptr, b->key.ptr, a->key.len);
        assert_int_equal(a->type, b->type);
        if (a->type == LLM_GGUF_ARRAY) {
            assert_int_equal(a->arr_n, b->arr_n);
            for (uint64_t k = 0; a->arr_type == LLM_GGUF_STRING && k < a->arr_n; k++) {
                struct llm_gguf_str sa, sb;
                assert_int_equal(llm_gguf_arr_str(g, a, k, &sa), 0);
                assert_int_equal(llm_gguf_arr_str(h, b, k, &sb), 0);
                assert_int_equal(sa.len, sb.len);
                assert_memory_equal(sa.ptr, sb.ptr, sa.len);
            }
        } else if (a->type == LLM_GGUF_STRING) {
            assert_int_equal(a->v.str.len, b->v.str.len);
            assert_memory_equal(a->v.str.ptr, b->v.str.ptr, a->v.str.len);
        } else {
            assert_memory_equal(&a->v, &b->v, sizeof(a->v));
        }
    }
    for (uint64_t i = 0; i < nt; i++) {
        const struct llm_gguf_tensor *a = llm_gguf_tensor_at(g, i), *b = llm_gguf_tensor_at(h, i);
        assert_string_equal(a->name, b->name);
        assert_int_equal(a->size, b->size);
        assert_memory_equal(a->data, b->data, a->size);
    }
    llm_gguf_free(h);
    llm_gguf_free(g);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_round_trip) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
