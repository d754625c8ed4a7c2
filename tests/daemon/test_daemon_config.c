/* daemon/config.c: the [tuning] section onto struct llm_tuning (conf/
 * keeps the keys as strings; llama/ names them in llm_tuning_keys; the two
 * lists must stay one); which keys reach the settings a reload swaps in;
 * the lookahead caps fitted to a model (issue #20). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "conf/conf-test.h" /* tests/conf: other_value() */
#include "conf/conf.h"
#include "daemon/config.h"
#include "decoding/dec.h"
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

/* The settings reload() swaps in, as a comparable value. */
static bool reloaded_part_equal(const struct srv_config *a, const struct srv_config *b)
{
    return a->log_level == b->log_level && a->grace_s == b->grace_s &&
           !memcmp(&a->lim, &b->lim, sizeof(a->lim));
}

/* Every key conf/ marks reloadable reaches the part of the settings that
 * SIGHUP replaces, and no other key does: a key the daemon copied
 * elsewhere at start (the engine's caps before issue #20) fails here. */
static void test_reloadable_keys_reach_the_daemon(void **state)
{
    size_t n;
    const struct conf_key *k = conf_schema(&n);

    for (size_t i = 0; i < n; i++) {
        struct conf c;
        struct srv_config a, b;
        char text[256], err[256];
        bool reload = k[i].flags & CONF_F_RELOAD;

        memset(&a, 0, sizeof(a));
        memset(&b, 0, sizeof(b));
        assert_int_equal(conf_defaults(&c), 0);
        assert_int_equal(srv_config_from_conf(&a, &c), 0);
        other_value(&k[i], text, sizeof(text));
        assert_int_equal(conf_set(&c, k[i].section, k[i].key, text, err, sizeof(err)), 0);
        assert_int_equal(srv_config_from_conf(&b, &c), 0);
        if (reloaded_part_equal(&a, &b) == reload)
            fail_msg("[%s] %s = %s: %s", k[i].section, k[i].key, text,
                     reload ? "marked reloadable, but a reload would not apply it" :
                              "applied by a reload, but not marked reloadable");
        srv_config_done(&a);
        srv_config_done(&b);
        conf_free(&c);
    }
}

/* The default caps (8, 32, 32) on a model of 256 rows a step come down to
 * a corner that runs; configured defaults above the caps come down with
 * them; no bound leaves them. */
static void test_limits_fit(void **state)
{
    struct srv_limits l = { .lookahead_default = true,
                            .la_n = 8,
                            .la_w = 32,
                            .la_g = 0,
                            .la_n_max = 8,
                            .la_w_max = 32,
                            .la_g_max = 32 };
    struct srv_limits same = l;

    srv_limits_fit(&same, 0);
    assert_memory_equal(&same, &l, sizeof(l));
    srv_limits_fit(&l, 256);
    assert_int_equal(l.la_n_max, 8);
    assert_int_equal(l.la_w_max, 18);
    assert_int_equal(l.la_g_max, 18);
    assert_true(dec_lookahead_rows(l.la_n_max, l.la_w_max, l.la_g_max) <= 256);
    assert_int_equal(l.la_n, 8);
    assert_int_equal(l.la_w, 18);
    assert_int_equal(l.la_g, 0); /* still the device's choice */
    assert_true(l.lookahead_default);
    l.la_n_max = 2;
    srv_limits_fit(&l, 3); /* nothing fits */
    assert_false(l.lookahead_default);
}

/* Requests are checked as the decoder counts: an N of 2 runs as 3. */
static void test_limits_caps(void **state)
{
    struct srv_limits l = { .max_tokens = 77, .la_n_max = 2, .la_w_max = 5, .la_g_max = 6 };
    struct dec_caps c = srv_limits_caps(&l);
    struct dec_params p = dec_params_default();

    assert_int_equal(c.max_n, 3);
    assert_int_equal(c.max_w, 5);
    assert_int_equal(c.max_g, 6);
    assert_int_equal(c.max_tokens, 77);
    p.max_tokens = 77;
    p.n = 3;
    p.w = 5;
    p.g = 6;
    assert_int_equal(dec_params_validate(&p, &c, NULL, 0), 0);
    p.g = 7;
    assert_int_equal(dec_params_validate(&p, &c, NULL, 0), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tuning_keys_match),
        cmocka_unit_test(test_tuning_from_conf),
        cmocka_unit_test(test_tuning_invalid),
        cmocka_unit_test(test_reloadable_keys_reach_the_daemon),
        cmocka_unit_test(test_limits_fit),
        cmocka_unit_test(test_limits_caps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
