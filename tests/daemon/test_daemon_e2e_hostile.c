/* laded end to end, hostile input: every bad line gets its error event on
 * the same connection, which then still works, as do the daemon and a
 * second client that was streaming all along. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "e2e.h"

struct hostile {
    const char *name;
    const char *line; /* sent as is; most end in \n */
    size_t len; /* 0: strlen */
    const char *code;
};

#define L(s) s, sizeof(s) - 1

static const struct hostile cases[] = {
    { "truncated json", L("{\"id\":1,\"op\":\n"), "bad_json" },
    { "not json", L("hello there\n"), "bad_json" },
    { "array", L("[1,2,3]\n"), "bad_json" },
    { "empty line", L("\n"), "bad_json" },
    { "nul in string", L("{\"id\":1,\"op\":\"tokenize\",\"text\":\"a\\u0000b\"}\n"), "bad_json" },
    { "raw nul byte", L("{\"id\":1,\0\"op\":\"info\"}\n"), "bad_json" },
    { "duplicate key", L("{\"id\":1,\"op\":\"info\",\"op\":\"info\"}\n"), "bad_json" },
    { "number overflow", L("{\"id\":1,\"op\":\"generate\",\"prompt\":\"x\",\"top_p\":1e999}\n"),
      "bad_json" },
    { "invalid utf8", L("{\"id\":1,\"op\":\"tokenize\",\"text\":\"\xff\xfe\"}\n"), "bad_utf8" },
    { "overlong utf8", L("{\"id\":1,\"op\":\"tokenize\",\"text\":\"\xc0\xaf\"}\n"), "bad_utf8" },
    { "surrogate utf8", L("{\"id\":1,\"op\":\"tokenize\",\"text\":\"\xed\xa0\x80\"}\n"),
      "bad_utf8" },
    { "no id", L("{\"op\":\"info\"}\n"), "missing_field" },
    { "no op", L("{\"id\":1}\n"), "missing_field" },
    { "op type", L("{\"id\":1,\"op\":[]}\n"), "bad_field" },
    { "unknown op", L("{\"id\":1,\"op\":\"rm -rf\"}\n"), "unknown_op" },
    { "id type", L("{\"id\":true,\"op\":\"info\"}\n"), "bad_field" },
    { "id float", L("{\"id\":1.5,\"op\":\"info\"}\n"), "bad_field" },
    { "version", L("{\"v\":99,\"id\":1,\"op\":\"info\"}\n"), "protocol_version" },
    { "unknown field", L("{\"id\":1,\"op\":\"health\",\"verbose\":true}\n"), "bad_field" },
    { "no prompt", L("{\"id\":1,\"op\":\"generate\"}\n"), "missing_field" },
    { "prompt type", L("{\"id\":1,\"op\":\"generate\",\"prompt\":{}}\n"), "bad_field" },
    { "max_tokens 0", L("{\"id\":1,\"op\":\"generate\",\"prompt\":\"x\",\"max_tokens\":0}\n"),
      "out_of_range" },
    { "max_tokens huge",
      L("{\"id\":1,\"op\":\"generate\",\"prompt\":\"x\",\"max_tokens\":99999999999}\n"),
      "out_of_range" },
    { "max_tokens string",
      L("{\"id\":1,\"op\":\"generate\",\"prompt\":\"x\",\"max_tokens\":\"5\"}\n"), "bad_field" },
    { "temperature <0", L("{\"id\":1,\"op\":\"generate\",\"prompt\":\"x\",\"temperature\":-1}\n"),
      "out_of_range" },
    { "top_p 0", L("{\"id\":1,\"op\":\"generate\",\"prompt\":\"x\",\"top_p\":0}\n"),
      "out_of_range" },
    { "top_k neg", L("{\"id\":1,\"op\":\"generate\",\"prompt\":\"x\",\"top_k\":-3}\n"),
      "out_of_range" },
    { "seed neg", L("{\"id\":1,\"op\":\"generate\",\"prompt\":\"x\",\"seed\":-1}\n"),
      "out_of_range" },
    { "stop type", L("{\"id\":1,\"op\":\"generate\",\"prompt\":\"x\",\"stop\":[null]}\n"),
      "bad_field" },
    { "stop count",
      L("{\"id\":1,\"op\":\"generate\",\"prompt\":\"x\",\"stop\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\"]}\n"),
      "out_of_range" },
    { "lookahead n",
      L("{\"id\":1,\"op\":\"generate\",\"prompt\":\"x\",\"lookahead\":{\"n\":100}}\n"),
      "out_of_range" },
    { "lookahead type", L("{\"id\":1,\"op\":\"generate\",\"prompt\":\"x\",\"lookahead\":7}\n"),
      "bad_field" },
    { "stream type", L("{\"id\":1,\"op\":\"generate\",\"prompt\":\"x\",\"stream\":1}\n"),
      "bad_field" },
    { "prompt over context",
      L("{\"id\":1,\"op\":\"generate\",\"prompt\":\"0123456789012345678901234567890123456789012345678901234567890123456789\"}\n"),
      "context_exceeded" },
    { "chat no messages", L("{\"id\":1,\"op\":\"chat\"}\n"), "missing_field" },
    { "chat bad role",
      L("{\"id\":1,\"op\":\"chat\",\"messages\":[{\"role\":\"root\",\"content\":\"x\"}]}\n"),
      "bad_field" },
    { "chat content type",
      L("{\"id\":1,\"op\":\"chat\",\"messages\":[{\"role\":\"user\",\"content\":5}]}\n"),
      "bad_field" },
    { "detok type", L("{\"id\":1,\"op\":\"detokenize\",\"tokens\":[\"a\"]}\n"), "bad_field" },
    { "detok past vocab", L("{\"id\":1,\"op\":\"detokenize\",\"tokens\":[1,99999]}\n"),
      "out_of_range" },
    { "detok negative", L("{\"id\":1,\"op\":\"detokenize\",\"tokens\":[-7]}\n"), "out_of_range" },
    { "cancel unknown", L("{\"id\":1,\"op\":\"cancel\",\"target\":\"nope\"}\n"), "not_found" },
    { "cancel no target", L("{\"id\":1,\"op\":\"cancel\"}\n"), "missing_field" },
    { "tokenize bos type", L("{\"id\":1,\"op\":\"tokenize\",\"text\":\"x\",\"add_bos\":\"yes\"}\n"),
      "bad_field" },
};

static struct e2e d;

static int up(void **state)
{
    const char *extra[] = { "--set", "limits.max_request_bytes=4K", NULL };
    e2e_start(&d, "n_ctx=64", extra);
    return 0;
}

static int down(void **state)
{
    int rc = e2e_stop(&d);
    e2e_cleanup(&d);
    return rc == 0 ? 0 : -1;
}

static void expect_error(int fd, const char *name, const char *code)
{
    json_t *ev = e2e_read(fd, 5000);

    if (!ev || strcmp(e2e_str(ev, "event"), "error") || strcmp(e2e_str(ev, "code"), code))
        fail_msg("case '%s': wanted error %s, got %s", name, code,
                 ev ? json_dumps(ev, JSON_COMPACT) : "nothing");
    assert_true(strlen(e2e_str(ev, "message")) > 0);
    json_decref(ev);
}

static void expect_health(int fd)
{
    json_t *ev;

    e2e_send_str(fd, "{\"id\":\"ok?\",\"op\":\"health\"}\n");
    ev = e2e_read(fd, 5000);
    assert_non_null(ev);
    assert_string_equal(e2e_str(ev, "event"), "result");
    json_decref(ev);
}

/* Each case on one shared connection, a health check after each: the
 * connection is never closed for a bad line. Meanwhile another client
 * streams a long generation that must finish intact. */
static void test_hostile_cases(void **state)
{
    size_t n = sizeof(cases) / sizeof(cases[0]);
    int fd = e2e_raw(&d), bg = e2e_raw(&d);
    char text[256];
    json_t *ev;

    assert_true(n >= 30);
    e2e_send_str(
            bg, "{\"id\":\"bg\",\"op\":\"generate\",\"prompt\":\"[delay=2]\",\"max_tokens\":40}\n");
    for (size_t i = 0; i < n; i++) {
        e2e_send(fd, cases[i].line, cases[i].len);
        expect_error(fd, cases[i].name, cases[i].code);
        expect_health(fd);
    }
    ev = e2e_read_final(bg, "bg", text, sizeof(text));
    assert_non_null(ev);
    assert_string_equal(e2e_str(ev, "finish_reason"), "length");
    assert_int_equal(strlen(text), 40);
    json_decref(ev);
    close(bg);
    close(fd);
    print_message("%zu hostile cases answered\n", n);
}

/* A line past max_request_bytes (4 KiB here), sent in pieces, is answered
 * once with too_large; the next line works. */
static void test_too_large(void **state)
{
    int fd = e2e_raw(&d);
    char chunk[1000];

    memset(chunk, 'x', sizeof(chunk));
    e2e_send_str(fd, "{\"id\":1,\"op\":\"tokenize\",\"text\":\"");
    for (int i = 0; i < 20; i++)
        e2e_send(fd, chunk, sizeof(chunk));
    e2e_send_str(fd, "\"}\n");
    expect_error(fd, "too large", "too_large");
    expect_health(fd);
    close(fd);
}

/* Same id twice while the first is in flight. */
static void test_duplicate_id(void **state)
{
    int fd = e2e_raw(&d);
    json_t *ev;

    e2e_send_str(
            fd,
            "{\"id\":\"same\",\"op\":\"generate\",\"prompt\":\"[delay=20]\",\"max_tokens\":20}\n"
            "{\"id\":\"same\",\"op\":\"generate\",\"prompt\":\"x\"}\n");
    for (;;) {
        ev = e2e_read(fd, 5000);
        assert_non_null(ev);
        if (!strcmp(e2e_str(ev, "event"), "error"))
            break;
        json_decref(ev);
    }
    assert_string_equal(e2e_str(ev, "code"), "duplicate_id");
    json_decref(ev);
    ev = e2e_read_final(fd, "same", NULL, 0);
    assert_string_equal(e2e_str(ev, "event"), "done");
    json_decref(ev);
    close(fd);
}

/* Garbage bytes, a half line and a hang-up: the daemon shrugs. */
static void test_garbage_and_hangup(void **state)
{
    int fd = e2e_raw(&d);
    unsigned char junk[3000];

    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (unsigned char)(i * 7919u >> 3);
    e2e_send(fd, junk, sizeof(junk));
    e2e_send_str(fd, "\n{\"id\":1,\"op\":\"gen");
    close(fd);
    fd = e2e_raw(&d);
    expect_health(fd);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hostile_cases),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_duplicate_id),
        cmocka_unit_test(test_garbage_and_hangup),
    };
    return cmocka_run_group_tests(tests, up, down);
}
