/* daemon/config.c: the [tuning] section onto struct llm_tuning. conf/ keeps
 * the keys as strings; llama/ names them in llm_tuning_keys; the two lists
 * must stay one. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "conf/conf.h"
#include "daemon/config.h"
#include "llama/llm.h"

/* Every tuning key is a [tuning] key, and [tuning] holds no other. */
static void test_tuning_keys_match(void **state)
{
    size_t n, in_conf = 0, in_llama = 0;
    const struct conf_key *s = conf_schema(&n);

    for (size_t i = 0; i < n; i++)
        in_conf += strcmp(s[i].section, "tuning") == 0;
    for (const char *const *k = llm_tuning_keys; *k; k++, in_llama++)
        assert_non_null(conf_find("tuning", *k));
    assert_int_equal(in_conf, in_llama);
}

/* Empty keys leave the device's defaults (zero); set ones are parsed. */
static void test_tuning_from_conf(void **state)
{
    struct conf c;
    struct llm_tuning t, zero = { 0 };
    char err[256];

    assert_int_equal(conf_defaults(&c), 0);
    memset(&t, 0xff, sizeof(t));
    assert_int_equal(srv_tuning_from_conf(&c, &t, err, sizeof(err)), 0);
    assert_memory_equal(&t, &zero, sizeof(t));
    assert_int_equal(conf_set(&c, "tuning", "mm", "64,8,1,1", err, sizeof(err)), 0);
    assert_int_equal(conf_set(&c, "tuning", "att", "4,64", err, sizeof(err)), 0);
    assert_int_equal(conf_set(&c, "tuning", "step_cache", "0", err, sizeof(err)), 0);
    assert_int_equal(conf_set(&c, "tuning", "coopmat", "1", err, sizeof(err)), 0);
    assert_int_equal(srv_tuning_from_conf(&c, &t, err, sizeof(err)), 0);
    assert_int_equal(t.mm.local, 64);
    assert_int_equal(t.mm.tile, 8);
    assert_int_equal(t.mm_wide.local, 0);
    assert_int_equal(t.att_subgroups, 4);
    assert_int_equal(t.att_split, 64);
    assert_int_equal(t.step_cache, LLM_STEP_CACHE_OFF);
    assert_int_equal(t.coopmat, LLM_SWITCH_ON);
    assert_int_equal(t.fuse, LLM_SWITCH_DEFAULT);
    conf_free(&c);
}

/* A value the model refuses fails with the key named; *ret is untouched. */
static void test_tuning_invalid(void **state)
{
    struct conf c;
    struct llm_tuning t = { .mm_xsh = 12 };
    char err[256];

    assert_int_equal(conf_defaults(&c), 0);
    assert_int_equal(conf_set(&c, "tuning", "mm", "3,1,1,1", err, sizeof(err)), 0);
    assert_int_equal(srv_tuning_from_conf(&c, &t, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "[tuning] mm: "));
    assert_non_null(strstr(err, "3,1,1,1"));
    assert_int_equal(t.mm_xsh, 12);
    assert_int_equal(conf_set(&c, "tuning", "mm", "", err, sizeof(err)), 0);
    assert_int_equal(conf_set(&c, "tuning", "draw", "yes", err, sizeof(err)), 0);
    assert_int_equal(srv_tuning_from_conf(&c, &t, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "[tuning] draw: "));
    conf_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tuning_keys_match),
        cmocka_unit_test(test_tuning_from_conf),
        cmocka_unit_test(test_tuning_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
