/* Value parsing of every schema type, through conf_set(), and the message
 * quoting helper. */
#include "conf-test.h"
#include "conf/conf-internal.h"

struct set_case {
    const char *section, *key, *value;
    const char *error; /* NULL: accepted; else the exact reterr */
};

static void run_cases(const struct set_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct conf c;
        char err[256] = "";
        assert_int_equal(conf_defaults(&c), 0);
        int r = conf_set(&c, cases[i].section, cases[i].key, cases[i].value, err, sizeof(err));
        if (cases[i].error) {
            if (r != -EINVAL || strcmp(err, cases[i].error) != 0)
                fail_msg("[%s] %s = '%s': got %d '%s', want '%s'", cases[i].section, cases[i].key,
                         cases[i].value, r, err, cases[i].error);
        } else if (r != 0) {
            fail_msg("[%s] %s = '%s' rejected: %s", cases[i].section, cases[i].key, cases[i].value,
                     err);
        }
        conf_free(&c);
    }
}

static void test_bool(void **state)
{
    static const struct set_case cases[] = {
        { "daemon", "watchdog", "yes", NULL },
        { "daemon", "watchdog", "No", NULL },
        { "daemon", "watchdog", "TRUE", NULL },
        { "daemon", "watchdog", "off", NULL },
        { "daemon", "watchdog", "1", NULL },
        { "daemon", "watchdog", "0", NULL },
        { "daemon", "watchdog", "maybe",
          "[daemon] watchdog: 'maybe' is not a boolean (yes, no, true, false, on, off, 1, 0)" },
        { "lookahead", "seed_pool", "",
          "[lookahead] seed_pool: '' is not a boolean (yes, no, true, false, on, off, 1, 0)" },
    };
    struct conf c;
    run_cases(cases, sizeof(cases) / sizeof(cases[0]));
    assert_int_equal(conf_defaults(&c), 0);
    assert_int_equal(conf_set(&c, "lookahead", "enabled", "off", NULL, 0), 0);
    assert_false(c.lookahead.enabled);
    assert_int_equal(conf_set(&c, "lookahead", "enabled", "On", NULL, 0), 0);
    assert_true(c.lookahead.enabled);
    conf_free(&c);
}

static void test_uint(void **state)
{
    static const struct set_case cases[] = {
        { "limits", "max_tokens", "1", NULL },
        { "limits", "max_tokens", "1048576", NULL },
        { "limits", "max_tokens", "0", "[limits] max_tokens: '0' is out of range 1..1048576" },
        { "limits", "max_tokens", "1048577",
          "[limits] max_tokens: '1048577' is out of range 1..1048576" },
        { "limits", "max_tokens", "99999999999999999999999",
          "[limits] max_tokens: '99999999999999999999999' is out of range 1..1048576" },
        { "limits", "max_tokens", "4294967297",
          "[limits] max_tokens: '4294967297' is out of range 1..1048576" },
        { "limits", "max_tokens", "-1", "[limits] max_tokens: '-1' is not a non-negative integer" },
        { "limits", "max_tokens", "+1", "[limits] max_tokens: '+1' is not a non-negative integer" },
        { "limits", "max_tokens", " 1", "[limits] max_tokens: ' 1' is not a non-negative integer" },
        { "limits", "max_tokens", "0x10",
          "[limits] max_tokens: '0x10' is not a non-negative integer" },
        { "limits", "max_tokens", "1e3",
          "[limits] max_tokens: '1e3' is not a non-negative integer" },
        { "limits", "max_tokens", "12abc",
          "[limits] max_tokens: '12abc' is not a non-negative integer" },
        { "limits", "max_tokens", "",
          "[limits] max_tokens: empty value, expected a value in 1..1048576" },
        { "daemon", "queue_length", "4097",
          "[daemon] queue_length: '4097' is out of range 1..4096" },
        { "daemon", "shutdown_grace_seconds", "0", NULL },
        { "lookahead", "n", "0", NULL },
        { "lookahead", "n", "2", NULL },
        { "lookahead", "n", "1", "[lookahead] n: '1' is out of range 0 or 2..16" },
        { "lookahead", "w", "129", "[lookahead] w: '129' is out of range 0 or 1..128" },
        { "lookahead", "max_n", "1", "[lookahead] max_n: '1' is out of range 2..16" },
        { "model", "context_length", "8",
          "[model] context_length: '8' is out of range 0 or 16..1048576" },
        { "model", "context_length", "0", NULL },
    };
    run_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_size(void **state)
{
    static const struct set_case cases[] = {
        { "limits", "max_request_bytes", "1048576", NULL },
        { "limits", "max_request_bytes", "1M", NULL },
        { "limits", "max_request_bytes", "1MiB", NULL },
        { "limits", "max_request_bytes", "1024k", NULL },
        { "limits", "max_request_bytes", "64mib", NULL },
        { "limits", "max_request_bytes", "1G",
          "[limits] max_request_bytes: '1G' is out of range 1KiB..64MiB" },
        { "limits", "max_request_bytes", "1023",
          "[limits] max_request_bytes: '1023' is out of range 1KiB..64MiB" },
        { "limits", "max_request_bytes", "1.5M",
          "[limits] max_request_bytes: '1.5M' is not a size (bytes, or with K, M, G)" },
        { "limits", "max_request_bytes", "1T",
          "[limits] max_request_bytes: '1T' is not a size (bytes, or with K, M, G)" },
        { "limits", "max_request_bytes", "M",
          "[limits] max_request_bytes: 'M' is not a size (bytes, or with K, M, G)" },
        { "limits", "max_request_bytes", "1 M",
          "[limits] max_request_bytes: '1 M' is not a size (bytes, or with K, M, G)" },
        { "limits", "max_output_buffer_bytes", "18446744073709551615G",
          "[limits] max_output_buffer_bytes: '18446744073709551615G' is out of range 64KiB..1GiB" },
        { "limits", "max_output_buffer_bytes", "1GiB", NULL },
    };
    struct conf c;
    char text[64];
    run_cases(cases, sizeof(cases) / sizeof(cases[0]));
    assert_int_equal(conf_defaults(&c), 0);
    assert_int_equal(conf_set(&c, "limits", "max_request_bytes", "3K", NULL, 0), 0);
    assert_int_equal(c.limits.max_request_bytes, 3072);
    assert_int_equal(conf_set(&c, "limits", "max_request_bytes", "1025", NULL, 0), 0);
    conf_format_value(&c, conf_find("limits", "max_request_bytes"), text, sizeof(text));
    assert_string_equal(text, "1025");
    assert_int_equal(conf_set(&c, "limits", "max_output_buffer_bytes", "2048K", NULL, 0), 0);
    conf_format_value(&c, conf_find("limits", "max_output_buffer_bytes"), text, sizeof(text));
    assert_string_equal(text, "2MiB");
    conf_free(&c);
}

static void test_mode(void **state)
{
    static const struct set_case cases[] = {
        { "daemon", "socket_mode", "0660", NULL },
        { "daemon", "socket_mode", "660", NULL },
        { "daemon", "socket_mode", "0", NULL },
        { "daemon", "socket_mode", "00777", NULL },
        { "daemon", "socket_mode", "1777",
          "[daemon] socket_mode: '1777' is out of range 0000..0777" },
        { "daemon", "socket_mode", "000000660",
          "[daemon] socket_mode: '000000660' is out of range 0000..0777" },
        { "daemon", "socket_mode", "0668",
          "[daemon] socket_mode: '0668' is not an octal mode like 0660" },
        { "daemon", "socket_mode", "rw",
          "[daemon] socket_mode: 'rw' is not an octal mode like 0660" },
    };
    struct conf c;
    run_cases(cases, sizeof(cases) / sizeof(cases[0]));
    assert_int_equal(conf_defaults(&c), 0);
    assert_int_equal(conf_set(&c, "daemon", "socket_mode", "640", NULL, 0), 0);
    assert_int_equal(c.daemon.socket_mode, 0640);
    conf_free(&c);
}

static void test_enum(void **state)
{
    static const struct set_case cases[] = {
        { "daemon", "log_level", "debug", NULL },
        { "daemon", "log_level", "WARNING", NULL },
        { "daemon", "log_level", "verbose",
          "[daemon] log_level: 'verbose' is not one of err, warning, notice, info, debug" },
        { "model", "kv_cache_type", "q8", "[model] kv_cache_type: 'q8' is not one of f16, f32" },
        { "model", "kv_cache_type", "", "[model] kv_cache_type: '' is not one of f16, f32" },
    };
    struct conf c;
    run_cases(cases, sizeof(cases) / sizeof(cases[0]));
    assert_int_equal(conf_defaults(&c), 0);
    assert_int_equal(conf_set(&c, "daemon", "log_level", "Notice", NULL, 0), 0);
    assert_int_equal(c.daemon.log_level, CONF_LOG_NOTICE);
    assert_int_equal(conf_set(&c, "model", "kv_cache_type", "f32", NULL, 0), 0);
    assert_int_equal(c.model.kv_cache_type, CONF_KV_F32);
    conf_free(&c);
}

static void test_strings(void **state)
{
    static const char long_socket[] =
            "/run/lade/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock";
    static const struct set_case cases[] = {
        { "model", "path", "models/x.gguf",
          "[model] path: 'models/x.gguf' is not an absolute path" },
        { "model", "path", "", "[model] path: must not be empty" },
        { "model", "tokenizer", "", NULL },
        { "model", "tokenizer", "/srv/tok enizer.model", NULL },
        { "daemon", "socket", long_socket,
          "[daemon] socket: '/run/lade/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...' is "
          "108 bytes long, longer than 107" },
        { "daemon", "socket_group", "lade-users", NULL },
        { "daemon", "socket_group", "", NULL },
        { "daemon", "socket_group", "1lade",
          "[daemon] socket_group: '1lade' is not a valid group name" },
        { "daemon", "socket_group", "la:de",
          "[daemon] socket_group: 'la:de' is not a valid group name" },
        { "device", "device", "Radeon RX 7900 XTX", NULL },
        { "device", "device", "1", NULL },
        { "device", "device", "Gefr\xc3\xa4t \xe2\x82\xac", NULL },
        { "device", "device", "a\tb", "[device] device: 'a\\x09b' contains a control character" },
        { "device", "device", "\xff\xfe",
          "[device] device: '\\xff\\xfe' is not valid UTF-8 (byte 1)" },
        { "device", "device", "ab\xc0\xaf",
          "[device] device: 'ab\\xc0\\xaf' is not valid UTF-8 (byte 3)" },
        { "device", "device", "\xed\xa0\x80",
          "[device] device: '\\xed\\xa0\\x80' is not valid UTF-8 (byte 1)" },
        { "device", "device", "\xf4\x90\x80\x80",
          "[device] device: '\\xf4\\x90\\x80\\x80' is not valid UTF-8 (byte 1)" },
        { "device", "device", "x\xe2\x82",
          "[device] device: 'x\\xe2\\x82' is not valid UTF-8 (byte 2)" },
        { "device", "device", " gpu", "[device] device: ' gpu' starts or ends with a blank" },
        { "device", "device", "gpu ; x",
          "[device] device: 'gpu ; x' contains ' ;', which starts a comment" },
        { "device", "device", "gpu;x", NULL },
    };
    run_cases(cases, sizeof(cases) / sizeof(cases[0]));
    assert_int_equal(strlen(long_socket), 108);
}

static void test_long_value(void **state)
{
    char value[4096], err[256];
    struct conf c;

    value[0] = '/';
    memset(value + 1, 'x', sizeof(value) - 2);
    value[sizeof(value) - 1] = '\0';
    assert_int_equal(conf_defaults(&c), 0);
    assert_int_equal(conf_set(&c, "model", "path", value, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "...' is 4095 bytes long, longer than 160"));
    value[160] = '\0';
    assert_int_equal(conf_set(&c, "model", "path", value, err, sizeof(err)), 0);
    assert_int_equal(strlen(c.model.path), 160);
    conf_free(&c);
}

static void test_quote(void **state)
{
    char buf[256];

    conf_quote("plain", buf, sizeof(buf));
    assert_string_equal(buf, "plain");
    conf_quote("a\\b\n\xff\xc3\xa9", buf, sizeof(buf));
    assert_string_equal(buf, "a\\\\b\\x0a\\xff\xc3\xa9");
    conf_quote("0123456789012345678901234567890123456789012345678901234567890123456789", buf,
               sizeof(buf));
    assert_string_equal(buf, "012345678901234567890123456789012345678901234567890123456789...");
    conf_quote("\xff\xff\xff\xff", buf, 9); /* truncated on a whole escape */
    assert_string_equal(buf, "\\xff\\xff");
    conf_quote("x", buf, 1);
    assert_string_equal(buf, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bool),       cmocka_unit_test(test_uint),
        cmocka_unit_test(test_size),       cmocka_unit_test(test_mode),
        cmocka_unit_test(test_enum),       cmocka_unit_test(test_strings),
        cmocka_unit_test(test_long_value), cmocka_unit_test(test_quote),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
