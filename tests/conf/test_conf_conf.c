/* Defaults, schema integrity, overrides, cross-key rules, dump round trip
 * and SIGHUP reload. */
#include "conf-test.h"

static void test_defaults(void **state)
{
    struct conf c;

    assert_int_equal(conf_defaults(&c), 0);
    assert_string_equal(c.daemon.socket, "/run/lade/laded.sock");
    assert_string_equal(c.daemon.socket_group, "lade");
    assert_int_equal(c.daemon.socket_mode, 0660);
    assert_int_equal(c.daemon.queue_length, 16);
    assert_int_equal(c.daemon.log_level, CONF_LOG_INFO);
    assert_int_equal(c.daemon.shutdown_grace_seconds, 30);
    assert_true(c.daemon.watchdog);
    assert_string_equal(c.model.path, "/var/lib/lade/models/model.gguf");
    assert_int_equal(c.model.context_length, 0);
    assert_int_equal(c.model.kv_cache_type, CONF_KV_F16);
    assert_string_equal(c.model.tokenizer, "");
    assert_string_equal(c.device.device, "");
    assert_string_equal(c.device.pipeline_cache, "/var/cache/lade/pipeline.bin");
    assert_true(c.lookahead.enabled);
    assert_int_equal(c.lookahead.n, 0);
    assert_int_equal(c.lookahead.w, 0);
    assert_int_equal(c.lookahead.g, 0);
    assert_int_equal(c.lookahead.max_n, 8);
    assert_int_equal(c.lookahead.max_w, 32);
    assert_int_equal(c.lookahead.max_g, 32);
    assert_true(c.lookahead.bonus_token);
    assert_true(c.lookahead.seed_pool);
    assert_int_equal(c.limits.max_request_bytes, 1024 * 1024);
    assert_int_equal(c.limits.max_tokens, 4096);
    assert_int_equal(c.limits.max_connections, 64);
    assert_int_equal(c.limits.max_queued_per_connection, 8);
    assert_int_equal(c.limits.max_output_buffer_bytes, 4 * 1024 * 1024);
    assert_string_equal(c.tuning.mm, "");
    assert_string_equal(c.tuning.mm_wide, "");
    assert_string_equal(c.tuning.mm_one, "");
    assert_string_equal(c.tuning.mm_xsh, "");
    assert_string_equal(c.tuning.mm_splitk, "");
    assert_string_equal(c.tuning.fuse, "");
    assert_string_equal(c.tuning.coopmat, "");
    assert_string_equal(c.tuning.cm, "");
    assert_string_equal(c.tuning.att, "");
    assert_string_equal(c.tuning.step_cache, "");
    assert_string_equal(c.tuning.draw, "");
    assert_int_equal(conf_check(&c, NULL, 0), 0);
    conf_free(&c);
    conf_free(&c); /* zeroed: a second free is harmless */
    conf_free(NULL);
}

/* Every entry is complete and unique, its default is valid and prints back
 * unchanged, and no two keys share a field. */
static void test_schema(void **state)
{
    size_t n;
    const struct conf_key *s = conf_schema(&n);
    struct conf c;
    char text[256], err[256];

    assert_true(n >= 25);
    assert_int_equal(conf_defaults(&c), 0);
    for (size_t i = 0; i < n; i++) {
        assert_non_null(s[i].doc);
        assert_true(strlen(s[i].doc) > 10 && s[i].doc[strlen(s[i].doc) - 1] != '.');
        assert_ptr_equal(conf_find(s[i].section, s[i].key), &s[i]);
        assert_int_equal(conf_set(&c, s[i].section, s[i].key, s[i].def, err, sizeof(err)), 0);
        conf_format_value(&c, &s[i], text, sizeof(text));
        assert_string_equal(text, s[i].def);
        for (size_t j = 0; j < i; j++)
            assert_true(s[j].offset != s[i].offset);
        assert_int_equal(conf_reloadable(s[i].section, s[i].key), !!(s[i].flags & CONF_F_RELOAD));
    }
    assert_null(conf_find("daemon", "nope"));
    assert_null(conf_find(NULL, "socket"));
    conf_free(&c);
}

static void test_reloadable(void **state)
{
    assert_true(conf_reloadable("limits", "max_tokens"));
    assert_true(conf_reloadable("daemon", "log_level"));
    assert_true(conf_reloadable("lookahead", "max_w"));
    assert_false(conf_reloadable("model", "path"));
    assert_false(conf_reloadable("daemon", "socket"));
    assert_false(conf_reloadable("device", "device"));
    assert_false(conf_reloadable("nope", "max_tokens"));
    assert_false(conf_reloadable("tuning", "mm")); /* the model is built at load */
}

/* [tuning] holds short strings: conf/ leaves their meaning to the daemon
 * (llm_tuning_set), so a value the model would refuse still loads here. */
static void test_tuning(void **state)
{
    struct conf c;
    char err[256];
    size_t n;
    const struct conf_key *s = conf_schema(&n);

    assert_int_equal(conf_defaults(&c), 0);
    for (size_t i = 0; i < n; i++)
        if (strcmp(s[i].section, "tuning") == 0) {
            assert_int_equal(s[i].type, CONF_TYPE_STRING);
            assert_int_equal(s[i].flags, CONF_F_EMPTY);
            assert_string_equal(s[i].def, "");
        }
    assert_int_equal(conf_set(&c, "tuning", "mm", "3,1,1,1", err, sizeof(err)), 0);
    assert_string_equal(c.tuning.mm, "3,1,1,1");
    assert_int_equal(conf_set_assignment(&c, "tuning.coopmat=1", err, sizeof(err)), 0);
    assert_string_equal(c.tuning.coopmat, "1");
    assert_int_equal(conf_set(&c, "tuning", "att", "4,64,4,64,4,64,4,64,4,64,4,64,4,64", err,
                              sizeof(err)),
                     -EINVAL);
    assert_string_equal(c.tuning.att, "");
    assert_int_equal(conf_set(&c, "tuning", "nope", "1", err, sizeof(err)), -ENOENT);
    assert_int_equal(conf_check(&c, err, sizeof(err)), 0);
    conf_free(&c);
}

static void test_set(void **state)
{
    struct conf c;
    char err[256];

    assert_int_equal(conf_defaults(&c), 0);
    assert_int_equal(conf_set(&c, "model", "path", "/srv/m.gguf", err, sizeof(err)), 0);
    assert_string_equal(c.model.path, "/srv/m.gguf");
    assert_int_equal(conf_set(&c, "model", "nope", "1", err, sizeof(err)), -ENOENT);
    assert_string_equal(err, "unknown setting [model] nope");
    assert_int_equal(conf_set(&c, "modle", "path", "/x", err, sizeof(err)), -ENOENT);
    assert_string_equal(err, "unknown setting [modle] path");
    /* a rejected value leaves the old one */
    assert_int_equal(conf_set(&c, "model", "path", "rel", err, sizeof(err)), -EINVAL);
    assert_string_equal(c.model.path, "/srv/m.gguf");
    assert_int_equal(conf_set(&c, "limits", "max_tokens", "0", NULL, 0), -EINVAL);
    assert_int_equal(c.limits.max_tokens, 4096);
    /* NULL value is the empty value */
    assert_int_equal(conf_set(&c, "model", "tokenizer", NULL, err, sizeof(err)), 0);
    assert_string_equal(c.model.tokenizer, "");
    /* a tiny reterr is truncated, not overrun */
    assert_int_equal(conf_set(&c, "limits", "max_tokens", "0", err, 8), -EINVAL);
    assert_string_equal(err, "[limits");
    conf_free(&c);
}

static void test_set_assignment(void **state)
{
    struct conf c;
    char err[256];

    assert_int_equal(conf_defaults(&c), 0);
    assert_int_equal(conf_set_assignment(&c, "limits.max_tokens=100", err, sizeof(err)), 0);
    assert_int_equal(c.limits.max_tokens, 100);
    assert_int_equal(conf_set_assignment(&c, "device.device=GPU=1", err, sizeof(err)), 0);
    assert_string_equal(c.device.device, "GPU=1");
    assert_int_equal(conf_set_assignment(&c, "model.tokenizer=", err, sizeof(err)), 0);
    assert_int_equal(conf_set_assignment(&c, "limits.max_tokens=x", err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "[limits] max_tokens: 'x' is not a non-negative integer");
    assert_int_equal(conf_set_assignment(&c, "limits.nope=1", err, sizeof(err)), -ENOENT);
    assert_string_equal(err, "unknown setting [limits] nope");
    static const char *const bad[] = { "max_tokens=1", "limits.max_tokens",
                                       ".x=1",         "limits.=1",
                                       "a=b.c",        "" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(conf_set_assignment(&c, bad[i], err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "is not of the form SECTION.KEY=VALUE"));
    }
    assert_int_equal(c.limits.max_tokens, 100);
    conf_free(&c);
}

/* Issue #20: laded falls back from a missing default socket group, not
 * from one set on purpose, so it must tell the two apart: a key is "set"
 * once the file or --set gave it a value, even the default's; a failed
 * set and a failed load leave it as it was; a copy keeps it. */
static void test_is_set(void **state)
{
    struct conf c, copy;
    char err[256];
    char *path = tmpfile_str("[daemon]\nsocket_group = lade\n[limits]\nmax_tokens = x\n");

    assert_int_equal(conf_defaults(&c), 0);
    assert_false(conf_is_set(&c, "daemon", "socket_group"));
    assert_int_equal(conf_load(&c, path, NULL, NULL, err, sizeof(err)), -EINVAL);
    assert_false(conf_is_set(&c, "daemon", "socket_group"));
    assert_int_equal(conf_set(&c, "limits", "max_tokens", "0", err, sizeof(err)), -EINVAL);
    assert_false(conf_is_set(&c, "limits", "max_tokens"));
    unlink(path);
    free(path);
    path = tmpfile_str("[daemon]\nsocket_group = lade\n");
    assert_int_equal(conf_load(&c, path, NULL, NULL, err, sizeof(err)), 0);
    assert_true(conf_is_set(&c, "daemon", "socket_group"));
    assert_false(conf_is_set(&c, "daemon", "socket"));
    assert_int_equal(conf_set_assignment(&c, "daemon.socket=/tmp/x.sock", err, sizeof(err)), 0);
    assert_true(conf_is_set(&c, "daemon", "socket"));
    assert_false(conf_is_set(&c, "daemon", "nope"));
    assert_int_equal(conf_copy(&copy, &c), 0);
    assert_true(conf_is_set(&copy, "daemon", "socket_group"));
    assert_false(conf_is_set(&copy, "limits", "max_tokens"));
    conf_free(&copy);
    conf_free(&c);
    unlink(path);
    free(path);
}

static void test_check_cross(void **state)
{
    struct conf c;
    char err[256];

    assert_int_equal(conf_defaults(&c), 0);
    assert_int_equal(conf_set(&c, "lookahead", "n", "10", NULL, 0), 0);
    assert_int_equal(conf_check(&c, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "[lookahead] n = 10 is larger than [lookahead] max_n = 8");
    assert_int_equal(conf_set(&c, "lookahead", "max_n", "10", NULL, 0), 0);
    assert_int_equal(conf_check(&c, err, sizeof(err)), 0);
    assert_int_equal(conf_set(&c, "lookahead", "max_w", "4", NULL, 0), 0);
    assert_int_equal(conf_set(&c, "lookahead", "w", "5", NULL, 0), 0);
    assert_int_equal(conf_check(&c, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "[lookahead] w = 5 is larger than [lookahead] max_w = 4");
    assert_int_equal(conf_set(&c, "lookahead", "w", "0", NULL, 0), 0); /* automatic passes */
    assert_int_equal(conf_set(&c, "lookahead", "g", "33", NULL, 0), 0);
    assert_int_equal(conf_check(&c, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "[lookahead] g = 33 is larger than [lookahead] max_g = 32");
    assert_int_equal(conf_set(&c, "lookahead", "g", "32", NULL, 0), 0);
    assert_int_equal(conf_check(&c, err, sizeof(err)), 0);
    assert_int_equal(conf_set(&c, "daemon", "queue_length", "4", NULL, 0), 0);
    assert_int_equal(conf_check(&c, err, sizeof(err)), -EINVAL);
    assert_string_equal(
            err, "[limits] max_queued_per_connection = 8 is larger than [daemon] queue_length = 4");
    assert_int_equal(conf_set(&c, "limits", "max_queued_per_connection", "4", NULL, 0), 0);
    assert_int_equal(conf_check(&c, err, sizeof(err)), 0);
    conf_free(&c);
}

/* The struct is public: conf_check() also catches values poked into it. */
static void test_check_values(void **state)
{
    struct conf c;
    char err[256];

    assert_int_equal(conf_defaults(&c), 0);
    c.daemon.queue_length = 0;
    assert_int_equal(conf_check(&c, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "[daemon] queue_length: '0' is out of range 1..4096");
    c.daemon.queue_length = 16;
    c.daemon.log_level = 42;
    assert_int_equal(conf_check(&c, err, sizeof(err)), -EINVAL);
    assert_string_equal(err,
                        "[daemon] log_level: '42' is not one of err, warning, notice, info, debug");
    c.daemon.log_level = CONF_LOG_DEBUG;
    c.daemon.socket_mode = 04755;
    assert_int_equal(conf_check(&c, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "[daemon] socket_mode: '4755' is out of range 0000..0777");
    c.daemon.socket_mode = 0600;
    free(c.model.path);
    c.model.path = NULL;
    assert_int_equal(conf_check(&c, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "[model] path: not set");
    conf_free(&c);
}

/* Sets every key away from its default. */
static void set_all(struct conf *c)
{
    static const char *const a[] = {
        "daemon.socket=/tmp/x y/laded.sock",
        "daemon.socket_group=",
        "daemon.socket_mode=0600",
        "daemon.queue_length=100",
        "daemon.log_level=debug",
        "daemon.shutdown_grace_seconds=0",
        "daemon.watchdog=no",
        "model.path=/m/ü.gguf",
        "model.context_length=2048",
        "model.kv_cache_type=f32",
        "model.tokenizer=/m/tokenizer.model",
        "device.device=NVIDIA H100",
        "device.pipeline_cache=",
        "lookahead.enabled=no",
        "lookahead.n=5",
        "lookahead.w=15",
        "lookahead.g=15",
        "lookahead.max_n=6",
        "lookahead.max_w=16",
        "lookahead.max_g=17",
        "lookahead.bonus_token=no",
        "lookahead.seed_pool=no",
        "limits.max_request_bytes=1025",
        "limits.max_tokens=1",
        "limits.default_max_tokens=2",
        "limits.max_connections=2",
        "limits.max_queued_per_connection=3",
        "limits.max_output_buffer_bytes=3MiB",
    };
    char err[256];
    for (size_t i = 0; i < sizeof(a) / sizeof(a[0]); i++)
        if (conf_set_assignment(c, a[i], err, sizeof(err)) != 0)
            fail_msg("%s: %s", a[i], err);
}

static char *dump_to_string(const struct conf *c)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    assert_non_null(m);
    assert_int_equal(conf_dump(c, m), 0);
    fclose(m);
    return buf;
}

static void test_dump_round_trip(void **state)
{
    struct conf a, b;
    struct warnings w = { 0 };
    char err[256];
    size_t n;
    const struct conf_key *s = conf_schema(&n);

    assert_int_equal(conf_defaults(&a), 0);
    set_all(&a);
    assert_int_equal(conf_set(&a, "limits", "max_output_buffer_bytes", "65537", err, sizeof(err)),
                     0);
    char *text = dump_to_string(&a);
    assert_non_null(strstr(text, "\n[limits]\nmax_request_bytes = 1025\n"));
    char *path = tmpfile_str(text);
    assert_int_equal(conf_defaults(&b), 0);
    assert_int_equal(conf_load(&b, path, record_warning, &w, err, sizeof(err)), 0);
    assert_int_equal(w.count, 0);
    for (size_t i = 0; i < n; i++) {
        char va[256], vb[256];
        conf_format_value(&a, &s[i], va, sizeof(va));
        conf_format_value(&b, &s[i], vb, sizeof(vb));
        assert_string_equal(va, vb);
    }
    char *text2 = dump_to_string(&b);
    assert_string_equal(text, text2);
    unlink(path);
    free(path);
    free(text);
    free(text2);
    conf_free(&a);
    conf_free(&b);
}

static void test_copy(void **state)
{
    struct conf a, b;

    assert_int_equal(conf_defaults(&a), 0);
    set_all(&a);
    assert_int_equal(conf_copy(&b, &a), 0);
    assert_ptr_not_equal(a.model.path, b.model.path);
    assert_string_equal(a.model.path, b.model.path);
    conf_free(&a);
    assert_string_equal(b.device.device, "NVIDIA H100");
    conf_free(&b);
}

static void test_apply_reload(void **state)
{
    struct conf running, loaded;
    struct warnings w = { 0 };

    assert_int_equal(conf_defaults(&running), 0);
    assert_int_equal(conf_defaults(&loaded), 0);
    assert_int_equal(conf_apply_reload(&running, &loaded, record_warning, &w), 0);
    assert_int_equal(w.count, 0);
    assert_int_equal(conf_set(&loaded, "model", "path", "/other.gguf", NULL, 0), 0);
    assert_int_equal(conf_set(&loaded, "daemon", "socket", "/run/other.sock", NULL, 0), 0);
    assert_int_equal(conf_set(&loaded, "limits", "max_tokens", "99", NULL, 0), 0);
    assert_int_equal(conf_set(&loaded, "daemon", "log_level", "debug", NULL, 0), 0);
    assert_int_equal(conf_apply_reload(&running, &loaded, record_warning, &w), 2);
    assert_int_equal(w.count, 2);
    assert_string_equal(w.all, "[daemon] socket changed; takes effect after a restart, ignoring\n"
                               "[model] path changed; takes effect after a restart, ignoring\n");
    assert_string_equal(running.model.path, "/var/lib/lade/models/model.gguf");
    assert_string_equal(running.daemon.socket, "/run/lade/laded.sock");
    assert_int_equal(running.limits.max_tokens, 99);
    assert_int_equal(running.daemon.log_level, CONF_LOG_DEBUG);
    assert_int_equal(conf_apply_reload(&running, &loaded, NULL, NULL), 0); /* NULL warn is fine */
    conf_free(&running);
    conf_free(&loaded);
}

/* Each key alone changed on SIGHUP: a reloadable one is taken and counted,
 * any other kept with a warning naming it. test_daemon_config checks the
 * other half: a reloadable key reaches the settings laded swaps in. */
static void test_reload_each_key(void **state)
{
    size_t n;
    const struct conf_key *s = conf_schema(&n);

    for (size_t i = 0; i < n; i++) {
        struct conf running, loaded;
        struct warnings w = { 0 };
        char text[256], got[256], want[256], def[256], err[256];
        bool reload = s[i].flags & CONF_F_RELOAD;

        assert_int_equal(conf_defaults(&running), 0);
        assert_int_equal(conf_defaults(&loaded), 0);
        other_value(&s[i], text, sizeof(text));
        if (conf_set(&loaded, s[i].section, s[i].key, text, err, sizeof(err)) != 0)
            fail_msg("[%s] %s = %s: %s", s[i].section, s[i].key, text, err);
        conf_format_value(&loaded, &s[i], want, sizeof(want));
        conf_format_value(&running, &s[i], def, sizeof(def));
        assert_string_not_equal(want, def);
        assert_int_equal(conf_apply_reload(&running, &loaded, record_warning, &w), reload ? 1 : 0);
        assert_int_equal(w.count, reload ? 0 : 1);
        conf_format_value(&running, &s[i], got, sizeof(got));
        assert_string_equal(got, reload ? want : def);
        conf_free(&running);
        conf_free(&loaded);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_schema),
        cmocka_unit_test(test_reloadable),
        cmocka_unit_test(test_tuning),
        cmocka_unit_test(test_set),
        cmocka_unit_test(test_set_assignment),
        cmocka_unit_test(test_check_cross),
        cmocka_unit_test(test_check_values),
        cmocka_unit_test(test_dump_round_trip),
        cmocka_unit_test(test_copy),
        cmocka_unit_test(test_apply_reload),
        cmocka_unit_test(test_reload_each_key),
        cmocka_unit_test(test_is_set),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
