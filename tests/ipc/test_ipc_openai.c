/* ipc/openai.c: the responses. A chat that offered tools gets the
 * Hermes-style tool calls of its reply (Qwen's <tool_call> blocks) as
 * OpenAI's message.tool_calls; anything that is not exactly such blocks
 * stays text. (Requests are tested through the daemon:
 * tests/daemon/test_daemon_e2e_http.c, test_daemon_text.c.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ipc/ipc.h"

/* The response to a done event with this text and finish reason. */
static json_t *respond(bool tools, const char *text, const char *finish)
{
    struct ipc_oai_resp r = {
        .kind = IPC_OAI_CHAT, .id = "chatcmpl-1-1", .model = "m", .created = 1, .tools = tools
    };
    json_t *done = json_pack("{s:s, s:s, s:s, s:{s:i, s:i}}", "event", "done", "finish_reason",
                             finish, "text", text, "stats", "prompt_tokens", 3, "generated_tokens",
                             4);
    json_t *o = ipc_oai_response(&r, done);
    json_decref(done);
    assert_non_null(o);
    return o;
}

static json_t *message(json_t *o)
{
    return json_object_get(json_array_get(json_object_get(o, "choices"), 0), "message");
}

static const char *finish(json_t *o)
{
    return json_string_value(
            json_object_get(json_array_get(json_object_get(o, "choices"), 0), "finish_reason"));
}

static void test_tool_calls(void **state)
{
    (void)state;
    json_t *o = respond(true,
                        "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": "
                        "\"Z\xc3\xbcrich\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"now\", "
                        "\"arguments\": {}}\n</tool_call>",
                        "stop");
    json_t *m = message(o), *calls = json_object_get(m, "tool_calls");
    assert_true(json_is_null(json_object_get(m, "content")));
    assert_int_equal(json_array_size(calls), 2);
    json_t *c = json_array_get(calls, 0);
    assert_string_equal(json_string_value(json_object_get(c, "id")), "call_0_chatcmpl-1-1");
    assert_string_equal(json_string_value(json_object_get(c, "type")), "function");
    json_t *f = json_object_get(c, "function");
    assert_string_equal(json_string_value(json_object_get(f, "name")), "get_weather");
    assert_string_equal(json_string_value(json_object_get(f, "arguments")),
                        "{\"city\":\"Z\xc3\xbcrich\"}");
    f = json_object_get(json_array_get(calls, 1), "function");
    assert_string_equal(json_string_value(json_object_get(f, "arguments")), "{}");
    assert_string_equal(finish(o), "tool_calls");
    json_decref(o);
    /* text around the calls is the content; arguments given as a string stay it */
    o = respond(true,
                "Let me look.\n<tool_call>{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":1}\"}"
                "</tool_call>",
                "stop");
    m = message(o);
    assert_string_equal(json_string_value(json_object_get(m, "content")), "Let me look.\n");
    f = json_object_get(json_array_get(json_object_get(m, "tool_calls"), 0), "function");
    assert_string_equal(json_string_value(json_object_get(f, "arguments")), "{\"a\":1}");
    json_decref(o);
    /* cut by max_tokens after a whole call: the calls, finish_reason length */
    o = respond(true, "<tool_call>{\"name\":\"f\",\"arguments\":{}}</tool_call>\n<tool", "length");
    assert_int_equal(json_array_size(json_object_get(message(o), "tool_calls")), 1);
    assert_string_equal(json_string_value(json_object_get(message(o), "content")), "\n<tool");
    assert_string_equal(finish(o), "length");
    json_decref(o);
}

/* Not calls: plain text, a block left open, a block that is not JSON or
 * has no name, and any text when the request offered no tools. */
static void test_not_tool_calls(void **state)
{
    (void)state;
    static const struct {
        bool tools;
        const char *text;
    } cases[] = {
        { true, "Sunny." },
        { true, "<tool_call>{\"name\":\"f\",\"arguments\":{}}" },
        { true, "<tool_call>{\"name\":\"f\",\"arguments\":{}</tool_call>" },
        { true, "<tool_call>{\"arguments\":{}}</tool_call>" },
        { true, "<tool_call>{\"name\":\"f\",\"arguments\":7}</tool_call>" },
        { true,
          "<tool_call>{\"name\":\"f\",\"arguments\":{}}</tool_call><tool_call>x</tool_call>" },
        { false, "<tool_call>{\"name\":\"f\",\"arguments\":{}}</tool_call>" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *o = respond(cases[i].tools, cases[i].text, "stop");
        json_t *m = message(o);
        if (json_object_get(m, "tool_calls") ||
            strcmp(json_string_value(json_object_get(m, "content")), cases[i].text) ||
            strcmp(finish(o), "stop"))
            fail_msg("case %zu: %s", i, json_dumps(o, 0));
        json_decref(o);
    }
}

/* A streamed reply through a hold, the text split at awkward places:
 * what is sent as it comes, then the end's chunks. */
static char *stream(const char *const *parts, json_t **ret_end, bool *ret_called)
{
    struct ipc_oai_resp r = {
        .kind = IPC_OAI_CHAT, .id = "chatcmpl-1-2", .model = "m", .tools = true
    };
    struct ipc_oai_hold h = { 0 };
    char *sent = calloc(1, 4096), *emit;
    for (size_t i = 0; parts[i]; i++) {
        assert_int_equal(ipc_oai_hold_push(&h, parts[i], strlen(parts[i]), &emit), 0);
        if (emit)
            strcat(sent, emit);
        free(emit);
    }
    *ret_end = json_array();
    assert_int_equal(ipc_oai_hold_end(&r, &h, *ret_end), 0);
    *ret_called = r.tool_called;
    ipc_oai_hold_done(&h);
    return sent;
}

static json_t *delta(json_t *chunk)
{
    return json_object_get(json_array_get(json_object_get(chunk, "choices"), 0), "delta");
}

static void test_stream_tool_calls(void **state)
{
    (void)state;
    static const char *const call[] = { "Let me",   " look.<",
                                        "tool_c",   "all>\n{\"name\": \"now\"",
                                        ", \"argu", "ments\": {}}\n</tool_call>",
                                        NULL };
    json_t *end;
    bool called;
    char *sent = stream(call, &end, &called);
    /* "<" is held from the moment it may begin a call */
    assert_string_equal(sent, "Let me look.");
    assert_true(called);
    assert_int_equal(json_array_size(end), 1); /* nothing but blanks around the call */
    json_t *tc = json_array_get(json_object_get(delta(json_array_get(end, 0)), "tool_calls"), 0);
    assert_int_equal(json_integer_value(json_object_get(tc, "index")), 0);
    assert_string_equal(json_string_value(json_object_get(tc, "id")), "call_0_chatcmpl-1-2");
    assert_string_equal(json_string_value(json_object_get(json_object_get(tc, "function"), "name")),
                        "now");
    assert_string_equal(
            json_string_value(json_object_get(json_object_get(tc, "function"), "arguments")), "{}");
    free(sent);
    json_decref(end);

    /* "<" that begins no call: every byte sent, in order, none twice */
    static const char *const text[] = { "a <", "b <tool", "s> and <", "tool_call", NULL };
    sent = stream(text, &end, &called);
    assert_false(called);
    assert_string_equal(sent, "a <b <tools> and ");
    assert_int_equal(json_array_size(end), 1);
    assert_string_equal(
            json_string_value(json_object_get(delta(json_array_get(end, 0)), "content")),
            "<tool_call");
    free(sent);
    json_decref(end);

    /* a call left open at the end: its text, as text */
    static const char *const open[] = { "x<tool_call>{\"name\":", NULL };
    sent = stream(open, &end, &called);
    assert_false(called);
    assert_string_equal(sent, "x");
    assert_string_equal(
            json_string_value(json_object_get(delta(json_array_get(end, 0)), "content")),
            "<tool_call>{\"name\":");
    free(sent);
    json_decref(end);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tool_calls),
        cmocka_unit_test(test_not_tool_calls),
        cmocka_unit_test(test_stream_tool_calls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
