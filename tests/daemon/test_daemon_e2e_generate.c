/* laded end to end, the happy paths: generate (stream or not, stop strings,
 * EOS, context, UTF-8 split across tokens), chat, tokenize/detokenize,
 * info/health/stats, the lade CLI. The fake engine writes STORY. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "e2e.h"

#define STORY \
    "Once upon a time a na\xC3\xAFve fox \xE2\x80\x94 caf\xC3\xA9 \xF0\x9F\xA6\x8A \xE2\x80\x94 jumped. "

static struct e2e d;

static int up(void **state)
{
    const char *extra[] = { "--set", "limits.max_tokens=200", NULL };
    e2e_start(&d, "n_ctx=64", extra);
    return 0;
}

static int down(void **state)
{
    int rc = e2e_stop(&d);
    e2e_cleanup(&d);
    return rc == 0 ? 0 : -1;
}

/* Run one request on a fresh raw connection; returns the final event and
 * the streamed text. */
static json_t *run(const char *line, const char *id, char *text, size_t cap)
{
    int fd = e2e_raw(&d);
    json_t *ev;

    e2e_send_str(fd, line);
    ev = e2e_read_final(fd, id, text, cap);
    close(fd);
    assert_non_null(ev);
    return ev;
}

static json_int_t stat_int(json_t *done, const char *k)
{
    return json_integer_value(json_object_get(json_object_get(done, "stats"), k));
}

static void test_stream(void **state)
{
    char text[512];
    json_t *ev = run("{\"id\":\"a\",\"op\":\"generate\",\"prompt\":\"hi\",\"max_tokens\":20}\n",
                     "a", text, sizeof(text));

    assert_string_equal(e2e_str(ev, "event"), "done");
    assert_string_equal(e2e_str(ev, "finish_reason"), "length");
    assert_string_equal(text, "Once upon a time a n");
    assert_int_equal(stat_int(ev, "generated_tokens"), 20);
    assert_int_equal(stat_int(ev, "prompt_tokens"), 3); /* BOS + 2 bytes */
    assert_int_equal(stat_int(ev, "steps"), 8); /* 1+2+3+4+1+2+3+4 */
    json_decref(ev);
}

static void test_no_stream_no_lookahead(void **state)
{
    char text[512];
    json_t *ev = run(
            "{\"id\":7,\"op\":\"generate\",\"prompt\":\"hi\",\"max_tokens\":9,\"stream\":false,\"lookahead\":false}\n",
            "7", text, sizeof(text));

    assert_string_equal(text, ""); /* no token events */
    assert_string_equal(e2e_str(ev, "text"), "Once upon");
    assert_int_equal(stat_int(ev, "steps"), 9);
    assert_true(json_is_integer(json_object_get(ev, "id")));
    json_decref(ev);
}

/* A character split across tokens is never sent in halves; a generation
 * cut inside one ends with U+FFFD. */
static void test_utf8_split(void **state)
{
    char text[512];
    json_t *ev = run(
            "{\"id\":\"u\",\"op\":\"generate\",\"prompt\":\"x\",\"max_tokens\":23,\"lookahead\":false}\n",
            "u", text, sizeof(text));

    assert_string_equal(text, "Once upon a time a na\xC3\xAF");
    json_decref(ev);
    ev = run(
            "{\"id\":\"u\",\"op\":\"generate\",\"prompt\":\"x\",\"max_tokens\":22,\"lookahead\":false}\n",
            "u", text, sizeof(text));
    assert_string_equal(text, "Once upon a time a na\xEF\xBF\xBD");
    json_decref(ev);
    ev = run("{\"id\":\"u\",\"op\":\"generate\",\"prompt\":\"x\",\"max_tokens\":48}\n", "u", text,
             sizeof(text));
    assert_int_equal(strncmp(text, STORY, strlen(text)), 0);
    assert_int_equal(strlen(text), 48);
    json_decref(ev);
}

static void test_stop_eos_context(void **state)
{
    char text[512];
    json_t *ev = run(
            "{\"id\":\"s\",\"op\":\"generate\",\"prompt\":\"x\",\"max_tokens\":100,\"stop\":[\"fox\",\"zzz\"]}\n",
            "s", text, sizeof(text));

    assert_string_equal(e2e_str(ev, "finish_reason"), "stop");
    assert_string_equal(text, "Once upon a time a na\xC3\xAFve ");
    json_decref(ev);
    ev = run("{\"id\":\"e\",\"op\":\"generate\",\"prompt\":\"[eos=5]\",\"max_tokens\":100}\n", "e",
             text, sizeof(text));
    assert_string_equal(e2e_str(ev, "finish_reason"), "eos");
    assert_string_equal(text, "Once ");
    json_decref(ev);
    ev = run("{\"id\":\"c\",\"op\":\"generate\",\"prompt\":\"0123456789\",\"max_tokens\":100}\n",
             "c", text, sizeof(text));
    assert_string_equal(e2e_str(ev, "finish_reason"), "context");
    assert_int_equal(stat_int(ev, "generated_tokens"), 64 - 11);
    json_decref(ev);
}

static void test_chat(void **state)
{
    char text[512];
    json_t *ev = run(
            "{\"id\":\"c\",\"op\":\"chat\",\"messages\":[{\"role\":\"system\",\"content\":\"be nice\"},"
            "{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":4,\"stream\":false}\n",
            "c", text, sizeof(text));

    assert_string_equal(e2e_str(ev, "event"), "done");
    assert_string_equal(e2e_str(ev, "text"), "Once");
    /* <|im_start|>system\nbe nice<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n
     * with the markers as single special tokens. */
    assert_int_equal(stat_int(ev, "prompt_tokens"), 1 + 14 + 1 + 1 + 1 + 7 + 1 + 1 + 1 + 10);
    json_decref(ev);
}

/* Tools through the socket: a tool call and its answer reach the template
 * (the fake ChatML one prints each message's role and content:
 * <|im_start|>user\nw?<|im_end|>\n, the call's empty content, the tool's
 * answer, the reply's header; 44 tokens); hostile tools are refused.
 * tests/daemon/test_daemon_text.c checks the rendered text itself against
 * the reference for Qwen's and Llama 3.1's templates. */
static void test_chat_tools(void **state)
{
    char text[512];
    json_t *ev = run(
            "{\"id\":\"t\",\"op\":\"chat\",\"max_tokens\":2,\"stream\":false,\"tools\":[{\"type\":"
            "\"function\",\"function\":{\"name\":\"w\",\"parameters\":{\"type\":\"object\"}}}],"
            "\"messages\":[{\"role\":\"user\",\"content\":\"w?\"},{\"role\":\"assistant\","
            "\"content\":null,\"tool_calls\":[{\"id\":\"c\",\"type\":\"function\",\"function\":{"
            "\"name\":\"w\",\"arguments\":{}}}]},{\"role\":\"tool\",\"tool_call_id\":\"c\","
            "\"content\":\"21\"}]}\n",
            "t", text, sizeof(text));
    assert_string_equal(e2e_str(ev, "event"), "done");
    assert_int_equal(stat_int(ev, "prompt_tokens"),
                     (1 + 7 + 1 + 1) + (1 + 10 + 1 + 1) + (1 + 7 + 1 + 1) + (1 + 10));
    json_decref(ev);
    ev = run("{\"id\":\"u\",\"op\":\"chat\",\"tools\":[{\"type\":\"function\",\"function\":{"
             "\"name\":\"w\",\"parameters\":{\"a\":[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]}}}],"
             "\"messages\":[{\"role\":\"user\",\"content\":\"w?\"}]}\n",
             "u", text, sizeof(text));
    e2e_expect_error(ev, "too_large", "nests deeper than 16 levels"); /* and frees ev */
}

static void test_tokenize_roundtrip(void **state)
{
    struct lade_client *c = e2e_client(&d);
    struct lade_event ev;
    int32_t toks[64];
    uint32_t n;

    assert_int_equal(lade_client_tokenize(c, "t", "h\xC3\xA9llo \xF0\x9F\xA6\x8A", true), 0);
    assert_int_equal(lade_client_next(c, &ev, 5000), 1);
    assert_int_equal(ev.type, LADE_EVENT_RESULT);
    assert_string_equal(ev.op, "tokenize");
    n = ev.n_tokens;
    assert_int_equal(n, 1 + 11);
    assert_int_equal(ev.tokens[0], 1); /* BOS */
    memcpy(toks, ev.tokens + 1, (n - 1) * sizeof(int32_t));
    assert_int_equal(lade_client_detokenize(c, "d", toks, n - 1), 0);
    assert_int_equal(lade_client_next(c, &ev, 5000), 1);
    assert_string_equal(ev.id, "d");
    assert_string_equal(ev.text, "h\xC3\xA9llo \xF0\x9F\xA6\x8A");
    lade_client_free(c);
}

static void test_info_health_stats(void **state)
{
    struct lade_client *c = e2e_client(&d);
    struct lade_event ev;
    char *s;

    assert_string_equal(lade_client_model(c), "fake");
    assert_int_equal(lade_client_simple(c, "i", "info"), 0);
    assert_int_equal(lade_client_next(c, &ev, 5000), 1);
    assert_non_null(strstr(ev.json, "\"chat_template\":\"jinja\""));
    assert_non_null(strstr(ev.json, "\"n_ctx\":64"));
    assert_non_null(strstr(ev.json, "\"protocol\":1"));
    assert_non_null(strstr(ev.json, "\"max_tokens\":200"));
    assert_int_equal(lade_client_simple(c, "h", "health"), 0);
    assert_int_equal(lade_client_next(c, &ev, 5000), 1);
    assert_non_null(strstr(ev.json, "\"status\":\"ok\""));
    assert_int_equal(lade_client_simple(c, "s", "stats"), 0);
    assert_int_equal(lade_client_next(c, &ev, 5000), 1);
    s = lade_event_field_string(&ev, "prometheus");
    assert_non_null(s);
    assert_non_null(strstr(s, "# TYPE lade_generated_tokens_total counter"));
    assert_non_null(strstr(s, "lade_queue_depth 0"));
    free(s);
    lade_client_free(c);
}

static int run_cli(const char *args, char *out, size_t cap)
{
    char cmd[512];
    FILE *p;
    size_t n;

    snprintf(cmd, sizeof(cmd), "%s %s 2>/dev/null", LADE_PATH, args);
    p = popen(cmd, "r");
    assert_non_null(p);
    n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_cli(void **state)
{
    char args[256], out[4096];

    snprintf(args, sizeof(args), "--socket %s generate -n 9 hello", d.sock);
    assert_int_equal(run_cli(args, out, sizeof(out)), 0);
    assert_string_equal(out, "Once upon\n");
    snprintf(args, sizeof(args), "generate --socket %s -n 4 --no-stream --lookahead 3,2,2 hello",
             d.sock);
    assert_int_equal(run_cli(args, out, sizeof(out)), 0);
    assert_string_equal(out, "Once\n");
    snprintf(args, sizeof(args), "generate --socket %s -n 4 < /dev/null",
             d.sock); /* prompt from stdin */
    assert_int_equal(run_cli(args, out, sizeof(out)), 0);
    assert_string_equal(out, "Once\n");
    snprintf(args, sizeof(args), "tokenize --socket %s ab", d.sock);
    assert_int_equal(run_cli(args, out, sizeof(out)), 0);
    assert_string_equal(out, "[100,101]\n");
    snprintf(args, sizeof(args), "generate --socket %s --top-p 2 x", d.sock);
    assert_int_equal(run_cli(args, out, sizeof(out)), 1); /* out_of_range from the server */
    snprintf(args, sizeof(args), "health --socket %s/nothing", d.dir);
    assert_int_equal(run_cli(args, out, sizeof(out)), 3);
    assert_int_equal(run_cli("frobnicate", out, sizeof(out)), 2);
    snprintf(args, sizeof(args), "chat --socket %s -n 4 < /dev/null", d.sock);
    assert_int_equal(run_cli(args, out, sizeof(out)), 0);
}

/* The same daemon with other templates. */
static void test_templates(void **state)
{
    struct e2e t;
    int fd;
    json_t *ev;

    e2e_start(&t, "template=none", NULL);
    fd = e2e_raw(&t);
    e2e_send_str(
            fd,
            "{\"id\":1,\"op\":\"chat\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}\n");
    ev = e2e_read_final(fd, "1", NULL, 0);
    assert_string_equal(e2e_str(ev, "code"), "unsupported_template");
    json_decref(ev);
    close(fd);
    assert_int_equal(e2e_stop(&t), 0);
    e2e_cleanup(&t);

    e2e_start(&t, "template=llama2", NULL);
    fd = e2e_raw(&t);
    e2e_send_str(
            fd,
            "{\"id\":1,\"op\":\"chat\",\"messages\":[{\"role\":\"assistant\",\"content\":\"x\"}]}\n"
            "{\"id\":2,\"op\":\"chat\",\"max_tokens\":3,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}\n");
    ev = e2e_read_final(fd, "1", NULL, 0);
    assert_string_equal(e2e_str(ev, "code"), "bad_field");
    json_decref(ev);
    ev = e2e_read_final(fd, "2", NULL, 0);
    assert_string_equal(e2e_str(ev, "event"), "done");
    /* BOS + "[INST] x [/INST]" (16 bytes) */
    assert_int_equal(stat_int(ev, "prompt_tokens"), 17);
    json_decref(ev);
    close(fd);
    assert_int_equal(e2e_stop(&t), 0);
    e2e_cleanup(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream),
        cmocka_unit_test(test_no_stream_no_lookahead),
        cmocka_unit_test(test_utf8_split),
        cmocka_unit_test(test_stop_eos_context),
        cmocka_unit_test(test_chat),
        cmocka_unit_test(test_chat_tools),
        cmocka_unit_test(test_tokenize_roundtrip),
        cmocka_unit_test(test_info_health_stats),
        cmocka_unit_test(test_cli),
        cmocka_unit_test(test_templates),
    };
    return cmocka_run_group_tests(tests, up, down);
}
