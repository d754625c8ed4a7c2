/* llama/gpu_tuning.c: every tuning key parsed and refused as llm.h says,
 * and the device defaults filled in for knobs left at zero. No device is
 * opened. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "llama/gpu_tuning.h"
#include "llama/llm.h"

static int set(struct llm_tuning *t, const char *k, const char *v, char *err)
{
    return llm_tuning_set(t, k, v, err, 256);
}

static void test_accepts(void **state)
{
    (void)state;
    struct llm_tuning t = { 0 };
    char err[256];
    assert_int_equal(set(&t, "mm", "128,8,1,1", err), 0);
    assert_int_equal(set(&t, "mm_wide", "64,32,2,4", err), 0);
    assert_int_equal(set(&t, "mm_one", "256,1,1,2", err), 0);
    assert_int_equal(set(&t, "mm_xsh", "2048", err), 0);
    assert_int_equal(set(&t, "mm_splitk", "4", err), 0);
    assert_int_equal(set(&t, "fuse", "0", err), 0);
    assert_int_equal(set(&t, "coopmat", "1", err), 0);
    assert_int_equal(set(&t, "cm", "2,64", err), 0);
    assert_int_equal(set(&t, "att", "16,256", err), 0);
    assert_int_equal(set(&t, "step_cache", "16", err), 0);
    assert_int_equal(set(&t, "draw", "0", err), 0);
    assert_int_equal(t.mm.local, 128);
    assert_int_equal(t.mm_wide.tile, 32);
    assert_int_equal(t.mm_wide.rps, 2);
    assert_int_equal(t.mm_wide.unroll, 4);
    assert_int_equal(t.mm_one.local, 256);
    assert_int_equal(t.mm_xsh, 2048);
    assert_int_equal(t.mm_splitk, 4);
    assert_int_equal(t.fuse, LLM_SWITCH_OFF);
    assert_int_equal(t.coopmat, LLM_SWITCH_ON);
    assert_int_equal(t.cm_nsg, 2);
    assert_int_equal(t.cm_kc, 64);
    assert_int_equal(t.att_subgroups, 16);
    assert_int_equal(t.att_split, 256);
    assert_int_equal(t.step_cache, 16);
    assert_int_equal(t.draw, LLM_SWITCH_OFF);
    /* 0 recordings: none at all, which is not the zero default */
    assert_int_equal(set(&t, "step_cache", "0", err), 0);
    assert_int_equal(t.step_cache, LLM_STEP_CACHE_OFF);
}

static void test_refuses(void **state)
{
    (void)state;
    static const char *const bad[][2] = {
        { "mm", "3,1,1,1" },      { "mm", "64,8,1" },         { "mm", "64,8,1,1," },
        { "mm", "2048,8,1,1" },   { "mm_wide", "64,65,1,1" }, { "mm_one", "64,1,9,1" },
        { "mm_one", "64,1,1,0" }, { "mm_xsh", "6" },          { "mm_xsh", "8196" },
        { "mm_xsh", "-4" },       { "mm_splitk", "3" },       { "mm_splitk", "8" },
        { "fuse", "yes" },        { "coopmat", "2" },         { "draw", "" },
        { "cm", "0,64" },         { "cm", "4,24" },           { "cm", "9,64" },
        { "att", "3,64" },        { "att", "4,8" },           { "att", "4,65537" },
        { "step_cache", "1025" }, { "step_cache", "x" },      { "step_cache", "+1" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct llm_tuning t = { 0 };
        char err[256] = "";
        assert_int_equal(set(&t, bad[i][0], bad[i][1], err), -EINVAL);
        /* the message starts with the key */
        assert_int_equal(strncmp(err, bad[i][0], strlen(bad[i][0])), 0);
    }
    struct llm_tuning t = { 0 };
    char err[256];
    assert_int_equal(set(&t, "mmm", "1", err), -ENOENT);
    assert_non_null(strstr(err, "mmm"));
}

/* Every key in llm_tuning_keys is one llm_tuning_set knows. */
static void test_keys(void **state)
{
    (void)state;
    unsigned n = 0;
    for (const char *const *k = llm_tuning_keys; *k; k++, n++) {
        struct llm_tuning t = { 0 };
        char err[256];
        assert_int_not_equal(set(&t, *k, "?", err), -ENOENT);
    }
    assert_int_equal(n, 12);
}

static void test_resolve(void **state)
{
    (void)state;
    struct llm_tuning in = { 0 }, cpu, gpu;
    gpu_tuning_resolve(&in, true, &cpu);
    gpu_tuning_resolve(&in, false, &gpu);
    assert_int_equal(cpu.mm_wide.tile, 64);
    assert_int_equal(gpu.mm_wide.tile, 64);
    assert_int_equal(cpu.att_split, 64);
    assert_int_equal(gpu.att_split, 256);
    assert_int_equal(gpu.mm_splitk, 1);
    assert_int_equal(gpu.fuse, LLM_SWITCH_ON);
    assert_int_equal(gpu.coopmat, LLM_SWITCH_OFF);
    assert_int_equal(gpu.draw, LLM_SWITCH_ON);
    assert_int_equal(gpu.step_cache, GPU_STEP_CACHE_DEFAULT);
    /* what is set stays */
    in.mm_one = (struct llm_mm_geom){ 128, 1, 1, 2 };
    in.step_cache = LLM_STEP_CACHE_OFF;
    in.att_subgroups = 1;
    in.att_split = 16;
    gpu_tuning_resolve(&in, false, &gpu);
    assert_int_equal(gpu.mm_one.local, 128);
    assert_int_equal(gpu.step_cache, LLM_STEP_CACHE_OFF);
    assert_int_equal(gpu.att_split, 16);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts),
        cmocka_unit_test(test_refuses),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_resolve),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
