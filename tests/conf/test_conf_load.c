/* conf_load(): a full file, every kind of error with file:line and key,
 * warnings, duplicates, empty values, long lines, bad bytes, missing file. */
#include <sys/stat.h>

#include "conf-test.h"

static void test_full_file(void **state)
{
    static const char text[] =
            "\xef\xbb\xbf# a full file: BOM, CRLF, comments, blanks, indentation\r\n"
            "; semicolon comment\r\n"
            "[daemon]\r\n"
            "socket = /run/lade/other.sock\r\n"
            "  socket_group = render\r\n"
            "socket_mode=0600\r\n"
            "\tqueue_length   =   32   \r\n"
            "log_level = debug ; inline comment\r\n"
            "shutdown_grace_seconds = 5\r\n"
            "watchdog = off\r\n"
            "\r\n"
            "[model]\r\n"
            "path = /srv/models/llama-7b.Q4_K_M.gguf\r\n"
            "context_length = 4096\r\n"
            "kv_cache_type = f32\r\n"
            "tokenizer = /srv/models/tokenizer.model\r\n"
            "[device]\r\n"
            "device = Radeon\r\n"
            "pipeline_cache =\r\n"
            "[lookahead]\r\n"
            "enabled = true\r\n"
            "n = 5\r\nw = 15\r\ng = 15\r\nmax_n = 7\r\nmax_w = 20\r\nmax_g = 21\r\n"
            "bonus_token = no\r\nseed_pool = 0\r\n"
            "[limits]\r\n"
            "max_request_bytes = 512K\r\n"
            "max_tokens = 100\r\n"
            "max_connections = 10\r\n"
            "max_queued_per_connection = 2\r\n"
            "max_output_buffer_bytes = 1G\r\n"
            "[tuning]\r\n"
            "mm = 64,8,1,1\r\n"
            "att = 4,64\r\n"
            "step_cache = 0\r\n"
            "draw =\r\n";
    struct conf c;
    struct warnings w;
    char err[256];

    assert_int_equal(load_text(&c, text, &w, err, sizeof(err), NULL), 0);
    assert_int_equal(w.count, 0);
    assert_string_equal(c.daemon.socket, "/run/lade/other.sock");
    assert_string_equal(c.daemon.socket_group, "render");
    assert_int_equal(c.daemon.socket_mode, 0600);
    assert_int_equal(c.daemon.queue_length, 32);
    assert_int_equal(c.daemon.log_level, CONF_LOG_DEBUG);
    assert_int_equal(c.daemon.shutdown_grace_seconds, 5);
    assert_false(c.daemon.watchdog);
    assert_string_equal(c.model.path, "/srv/models/llama-7b.Q4_K_M.gguf");
    assert_int_equal(c.model.context_length, 4096);
    assert_int_equal(c.model.kv_cache_type, CONF_KV_F32);
    assert_string_equal(c.model.tokenizer, "/srv/models/tokenizer.model");
    assert_string_equal(c.device.device, "Radeon");
    assert_string_equal(c.device.pipeline_cache, "");
    assert_true(c.lookahead.enabled);
    assert_int_equal(c.lookahead.n, 5);
    assert_int_equal(c.lookahead.w, 15);
    assert_int_equal(c.lookahead.g, 15);
    assert_int_equal(c.lookahead.max_n, 7);
    assert_int_equal(c.lookahead.max_w, 20);
    assert_int_equal(c.lookahead.max_g, 21);
    assert_false(c.lookahead.bonus_token);
    assert_false(c.lookahead.seed_pool);
    assert_int_equal(c.limits.max_request_bytes, 512 * 1024);
    assert_int_equal(c.limits.max_tokens, 100);
    assert_int_equal(c.limits.max_connections, 10);
    assert_int_equal(c.limits.max_queued_per_connection, 2);
    assert_int_equal(c.limits.max_output_buffer_bytes, 1024ull * 1024 * 1024);
    assert_string_equal(c.tuning.mm, "64,8,1,1");
    assert_string_equal(c.tuning.att, "4,64");
    assert_string_equal(c.tuning.step_cache, "0");
    assert_string_equal(c.tuning.draw, "");
    assert_string_equal(c.tuning.mm_wide, "");
    assert_int_equal(conf_check(&c, err, sizeof(err)), 0);
    conf_free(&c);
}

static void test_empty_file(void **state)
{
    struct conf c, d;
    struct warnings w;
    char err[256];
    size_t n;
    const struct conf_key *s = conf_schema(&n);

    assert_int_equal(load_text(&c, "", &w, err, sizeof(err), NULL), 0);
    assert_int_equal(conf_defaults(&d), 0);
    for (size_t i = 0; i < n; i++) {
        char a[256], b[256];
        conf_format_value(&c, &s[i], a, sizeof(a));
        conf_format_value(&d, &s[i], b, sizeof(b));
        assert_string_equal(a, b);
    }
    conf_free(&c);
    conf_free(&d);
}

struct err_case {
    const char *text;
    int line;
    const char *error; /* after "PATH:LINE: " */
};

/* Type and range errors for a sample of keys: each message names file, line
 * and key, and the configuration stays as it was. */
static void test_value_errors(void **state)
{
    static const struct err_case cases[] = {
        { "[limits]\n# c\nmax_tokens = 0\n", 3,
          "[limits] max_tokens: '0' is out of range 1..1048576" },
        { "[limits]\nmax_tokens = lots\n", 2,
          "[limits] max_tokens: 'lots' is not a non-negative integer" },
        { "[limits]\nmax_tokens = -5\n", 2,
          "[limits] max_tokens: '-5' is not a non-negative integer" },
        { "[limits]\nmax_request_bytes = 2G\n", 2,
          "[limits] max_request_bytes: '2G' is out of range 1KiB..64MiB" },
        { "[limits]\nmax_output_buffer_bytes = 1 MiB\n", 2,
          "[limits] max_output_buffer_bytes: '1 MiB' is not a size (bytes, or with K, M, G)" },
        { "[limits]\nmax_connections = 65537\n", 2,
          "[limits] max_connections: '65537' is out of range 1..65536" },
        { "\n[daemon]\nsocket_mode = 0999\n", 3,
          "[daemon] socket_mode: '0999' is not an octal mode like 0660" },
        { "[daemon]\nsocket_mode = 2770\n", 2,
          "[daemon] socket_mode: '2770' is out of range 0000..0777" },
        { "[daemon]\nlog_level = trace\n", 2,
          "[daemon] log_level: 'trace' is not one of err, warning, notice, info, debug" },
        { "[daemon]\nwatchdog = sometimes\n", 2,
          "[daemon] watchdog: 'sometimes' is not a boolean (yes, no, true, false, on, off, 1, 0)" },
        { "[daemon]\nsocket = laded.sock\n", 2,
          "[daemon] socket: 'laded.sock' is not an absolute path" },
        { "[daemon]\nsocket_group = 0day\n", 2,
          "[daemon] socket_group: '0day' is not a valid group name" },
        { "[daemon]\nqueue_length = 0\n", 2, "[daemon] queue_length: '0' is out of range 1..4096" },
        { "[model]\nkv_cache_type = bf16\n", 2,
          "[model] kv_cache_type: 'bf16' is not one of f16, f32" },
        { "[model]\ncontext_length = 15\n", 2,
          "[model] context_length: '15' is out of range 0 or 16..1048576" },
        { "[lookahead]\nn = 17\n", 2, "[lookahead] n: '17' is out of range 0 or 2..16" },
        { "[lookahead]\nenabled = 2\n", 2,
          "[lookahead] enabled: '2' is not a boolean (yes, no, true, false, on, off, 1, 0)" },
        /* empty values */
        { "[limits]\nmax_tokens =\n", 2,
          "[limits] max_tokens: empty value, expected a value in 1..1048576" },
        { "[model]\npath =\n", 2, "[model] path: must not be empty" },
        { "[daemon]\nsocket =   \n", 2, "[daemon] socket: must not be empty" },
        /* inih strips only ';' comments: '#' after a value is part of it */
        { "[limits]\nmax_tokens = 10 # ten\n", 2,
          "[limits] max_tokens: '10 # ten' is not a non-negative integer" },
        /* non-UTF-8 bytes */
        { "[device]\ndevice = GPU\xff\n", 2,
          "[device] device: 'GPU\\xff' is not valid UTF-8 (byte 4)" },
        { "[model]\npath = /m/\xc3\x28.gguf\n", 2,
          "[model] path: '/m/\\xc3(.gguf' is not valid UTF-8 (byte 4)" },
        /* the first error stops loading */
        { "[limits]\nmax_tokens = 0\nmax_connections = 0\n", 2,
          "[limits] max_tokens: '0' is out of range 1..1048576" },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct conf c;
        struct warnings w;
        char err[512], want[512];
        char *path;
        int r = load_text(&c, cases[i].text, &w, err, sizeof(err), &path);
        snprintf(want, sizeof(want), "%s:%d: %s", path, cases[i].line, cases[i].error);
        if (r != -EINVAL || strcmp(err, want) != 0)
            fail_msg("case %zu: got %d '%s', want '%s'", i, r, err, want);
        /* unchanged on error */
        assert_int_equal(c.limits.max_tokens, 4096);
        assert_string_equal(c.daemon.socket, "/run/lade/laded.sock");
        free(path);
        conf_free(&c);
    }
}

/* A failed load keeps every earlier value of the file out of *c. */
static void test_unchanged_on_error(void **state)
{
    struct conf c;
    struct warnings w;
    char err[256];

    assert_int_equal(load_text(&c, "[limits]\nmax_tokens = 7\n[model]\npath = x\n", &w, err,
                               sizeof(err), NULL),
                     -EINVAL);
    assert_int_equal(c.limits.max_tokens, 4096);
    conf_free(&c);
}

static void test_syntax_errors(void **state)
{
    static const struct err_case cases[] = {
        { "[daemon\nsocket = /x\n", 1,
          "syntax error: expected '[section]', 'key = value' or a comment" },
        { "[daemon]\nsocket /x\n", 2,
          "syntax error: expected '[section]', 'key = value' or a comment" },
        { "[daemon]\n= /x\n", 2, "syntax error: no key before '='" },
        /* indented lines are not continuation lines */
        { "[daemon]\nsocket = /a\n    /b\n", 3,
          "syntax error: expected '[section]', 'key = value' or a comment" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct conf c;
        struct warnings w;
        char err[512], want[512];
        char *path;
        int r = load_text(&c, cases[i].text, &w, err, sizeof(err), &path);
        snprintf(want, sizeof(want), "%s:%d: %s", path, cases[i].line, cases[i].error);
        if (r != -EINVAL || strcmp(err, want) != 0)
            fail_msg("case %zu: got %d '%s', want '%s'", i, r, err, want);
        free(path);
        conf_free(&c);
    }
}

static void test_unknown_warns(void **state)
{
    static const char text[] = "top = 1\n"
                               "[daemon]\n"
                               "sockett = /x\n"
                               "max_n = 3\n"
                               "[gpu]\n"
                               "device = 0\n"
                               "[daemon]\n"
                               "k\xff = v\n"
                               "queue_length = 3\n";
    struct conf c;
    struct warnings w;
    char err[256], want[2048];
    char *path;

    assert_int_equal(load_text(&c, text, &w, err, sizeof(err), &path), 0);
    snprintf(want, sizeof(want),
             "%1$s:1: key 'top' outside any [section], ignoring\n"
             "%1$s:3: unknown key 'sockett' in [daemon], ignoring\n"
             "%1$s:4: unknown key 'max_n' in [daemon] (it belongs in [lookahead]), ignoring\n"
             "%1$s:6: unknown section [gpu], ignoring key 'device'\n"
             "%1$s:8: unknown key 'k\\xff' in [daemon], ignoring\n",
             path);
    assert_string_equal(w.all, want);
    assert_int_equal(w.count, 5);
    assert_int_equal(c.daemon.queue_length, 3); /* the rest still applies */
    free(path);
    conf_free(&c);
    /* warn may be NULL */
    path = tmpfile_str(text);
    assert_int_equal(conf_defaults(&c), 0);
    assert_int_equal(conf_load(&c, path, NULL, NULL, err, sizeof(err)), 0);
    unlink(path);
    free(path);
    conf_free(&c);
}

/* Decision: the last value wins, with a warning naming both lines. */
static void test_duplicate_last_wins(void **state)
{
    struct conf c;
    struct warnings w;
    char err[256], want[512];
    char *path;

    assert_int_equal(load_text(&c,
                               "[limits]\nmax_tokens = 10\n[daemon]\n[limits]\nmax_tokens = 20\n",
                               &w, err, sizeof(err), &path),
                     0);
    assert_int_equal(c.limits.max_tokens, 20);
    snprintf(want, sizeof(want),
             "%s:5: [limits] max_tokens: set again (first at line 2), the last value wins\n", path);
    assert_string_equal(w.all, want);
    free(path);
    conf_free(&c);
}

static void test_long_lines(void **state)
{
    struct conf c;
    struct warnings w;
    char err[512], want[512];
    char *path;
    char *text = malloc(200000);

    /* 199 bytes is the limit, comments included */
    memset(text, 0, 200000);
    strcpy(text, "[limits]\n#");
    memset(text + strlen(text), 'x', 198);
    strcat(text, "\nmax_tokens = 5\n");
    assert_int_equal(load_text(&c, text, &w, err, sizeof(err), NULL), 0);
    assert_int_equal(c.limits.max_tokens, 5);
    conf_free(&c);

    /* 200 bytes: an error, not a silent split into two lines */
    memset(text, 0, 200000);
    strcpy(text, "[limits]\n#");
    memset(text + strlen(text), 'x', 187); /* '#' + 187 + "max_tokens=9" = 200 */
    strcat(text, "max_tokens=9\n");
    assert_int_equal(load_text(&c, text, &w, err, sizeof(err), &path), -EINVAL);
    snprintf(want, sizeof(want), "%s:2: line is longer than 199 bytes", path);
    assert_string_equal(err, want);
    assert_int_equal(c.limits.max_tokens, 4096);
    free(path);
    conf_free(&c);

    /* a very long line, no newline at the end */
    memset(text, 0, 200000);
    strcpy(text, "[model]\npath = /");
    memset(text + strlen(text), 'a', 150000);
    assert_int_equal(load_text(&c, text, &w, err, sizeof(err), &path), -EINVAL);
    snprintf(want, sizeof(want), "%s:2: line is longer than 199 bytes", path);
    assert_string_equal(err, want);
    free(path);
    conf_free(&c);

    /* a line that fits, with a value over the string limit */
    memset(text, 0, 200000);
    strcpy(text, "[model]\npath = /");
    memset(text + strlen(text), 'b', 170);
    assert_int_equal(load_text(&c, text, &w, err, sizeof(err), NULL), -EINVAL);
    assert_non_null(strstr(err, ":2: [model] path: '/bbbb"));
    assert_non_null(strstr(err, "...' is 171 bytes long, longer than 160"));
    conf_free(&c);
    free(text);
}

static void test_bad_bytes(void **state)
{
    static const char nul[] = "[limits]\nmax_tokens = 1\0 0\n";
    struct conf c;
    struct warnings w;
    char err[256], want[512];

    char *path = tmpfile_with(nul, sizeof(nul) - 1);
    assert_int_equal(conf_defaults(&c), 0);
    assert_int_equal(conf_load(&c, path, record_warning, &w, err, sizeof(err)), -EINVAL);
    snprintf(want, sizeof(want), "%s:2: line contains a NUL byte", path);
    assert_string_equal(err, want);
    unlink(path);
    free(path);
    conf_free(&c);
    /* non-UTF-8 in comments is nobody's business */
    assert_int_equal(load_text(&c, "# caf\xe9\n[limits]\nmax_tokens = 3 ; \xff\n", &w, err,
                               sizeof(err), NULL),
                     0);
    assert_int_equal(c.limits.max_tokens, 3);
    conf_free(&c);
}

static void test_missing_file(void **state)
{
    struct conf c;
    char err[256];

    assert_int_equal(conf_defaults(&c), 0);
    assert_int_equal(conf_load(&c, "/nonexistent/laded.conf", NULL, NULL, err, sizeof(err)),
                     -ENOENT);
    assert_string_equal(err, "Failed to open '/nonexistent/laded.conf': No such file or directory");
    assert_int_equal(conf_load(&c, "/tmp", NULL, NULL, err, sizeof(err)), -EISDIR);
    assert_string_equal(err, "Failed to read '/tmp': Is a directory");
    assert_string_equal(c.model.path, "/var/lib/lade/models/model.gguf");
    conf_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_file),           cmocka_unit_test(test_empty_file),
        cmocka_unit_test(test_value_errors),        cmocka_unit_test(test_unchanged_on_error),
        cmocka_unit_test(test_syntax_errors),       cmocka_unit_test(test_unknown_warns),
        cmocka_unit_test(test_duplicate_last_wins), cmocka_unit_test(test_long_lines),
        cmocka_unit_test(test_bad_bytes),           cmocka_unit_test(test_missing_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
