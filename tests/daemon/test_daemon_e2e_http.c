/* laded end to end over HTTP: raw sockets speaking HTTP/1.1 to the same
 * socket NDJSON clients use. Every endpoint, streamed and not; keep-alive,
 * pipelining, chunked bodies, Expect: 100-continue; the limits and the
 * statuses of requests that break them; a client that disconnects
 * mid-stream; NDJSON beside HTTP on one daemon. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "e2e.h"

/* The error object of a refused request: its type, and the param named. */
static void check_error(const struct e2e_resp *r, int status, const char *param)
{
    json_t *o = e2e_resp_json(r), *err = json_object_get(o, "error");

    if (r->status != status)
        print_message("%d: %s\n", r->status, r->body);
    assert_int_equal(r->status, status);
    assert_true(json_is_object(err));
    assert_true(json_is_string(json_object_get(err, "message")));
    assert_true(json_is_string(json_object_get(err, "type")));
    assert_non_null(json_object_get(err, "code"));
    if (param)
        assert_string_equal(e2e_str(err, "param"), param);
    json_decref(o);
}

static struct e2e d;

static int start(void **state)
{
    static const char *const extra[] = { "--set", "limits.max_request_bytes=65536", NULL };

    (void)state;
    e2e_start(&d, "template=chatml,n_ctx=128", extra);
    return 0;
}

static int stop(void **state)
{
    (void)state;
    assert_int_equal(e2e_stop(&d), 0);
    e2e_cleanup(&d);
    return 0;
}

static const char chat_body[] =
        "{\"model\":\"fake\",\"user\":null,\"stop\":null,\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Hi\"}]}],"
        "\"max_tokens\":8,\"temperature\":0,\"seed\":7}";

/* OpenAI's tool use: tools, an assistant's tool_calls with arguments as a
 * string of JSON and content null, a tool's answer (fake ChatML
 * template: 44 prompt tokens, as through NDJSON). */
static void test_chat_tools(void **state)
{
    struct e2e_resp r;
    (void)state;
    assert_int_equal(
            e2e_post(&d, "/v1/chat/completions",
                     "{\"max_tokens\":2,\"tool_choice\":\"auto\",\"tools\":[{\"type\":\"function\","
                     "\"function\":{\"name\":\"w\",\"parameters\":{\"type\":\"object\"}}}],"
                     "\"messages\":[{\"role\":\"user\",\"content\":\"w?\"},{\"role\":"
                     "\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c\",\"type\":"
                     "\"function\",\"function\":{\"name\":\"w\",\"arguments\":\"{}\"}}]},"
                     "{\"role\":\"tool\",\"tool_call_id\":\"c\",\"content\":\"21\"}]}",
                     &r),
            200);
    json_t *o = e2e_resp_json(&r);
    assert_int_equal(
            json_integer_value(json_object_get(json_object_get(o, "usage"), "prompt_tokens")), 44);
    /* the fake's story holds no <tool_call>: text, finish_reason length */
    json_t *ch = json_array_get(json_object_get(o, "choices"), 0);
    assert_null(json_object_get(json_object_get(ch, "message"), "tool_calls"));
    assert_string_equal(e2e_str(json_object_get(ch, "message"), "content"), "On");
    assert_string_equal(e2e_str(ch, "finish_reason"), "length");
    json_decref(o);
    e2e_resp_done(&r);
}

static void test_chat(void **state)
{
    struct e2e_resp r;
    json_t *o, *ch, *u;

    (void)state;
    assert_int_equal(e2e_post(&d, "/v1/chat/completions", chat_body, &r), 200);
    assert_string_equal(e2e_header(&r, "Content-Type"), "application/json");
    o = e2e_resp_json(&r);
    assert_string_equal(e2e_str(o, "object"), "chat.completion");
    assert_string_equal(e2e_str(o, "model"), "fake");
    assert_true(!strncmp(e2e_str(o, "id"), "chatcmpl-", 9));
    ch = json_array_get(json_object_get(o, "choices"), 0);
    assert_string_equal(e2e_str(ch, "finish_reason"), "length");
    assert_string_equal(e2e_str(json_object_get(ch, "message"), "role"), "assistant");
    assert_string_equal(e2e_str(json_object_get(ch, "message"), "content"), "Once upo");
    u = json_object_get(o, "usage");
    assert_int_equal(json_integer_value(json_object_get(u, "completion_tokens")), 8);
    assert_int_equal(json_integer_value(json_object_get(u, "total_tokens")),
                     8 + json_integer_value(json_object_get(u, "prompt_tokens")));
    assert_true(json_integer_value(json_object_get(json_object_get(o, "lookahead"), "steps")) > 0);
    assert_non_null(json_object_get(json_object_get(o, "lookahead"), "tokens_per_step"));
    json_decref(o);
    e2e_resp_done(&r);
}

/* Streamed with tools offered: the fake's text (no tool call in it) comes
 * through whole, finish_reason length. */
static void test_chat_tools_stream(void **state)
{
    struct e2e_resp r;
    char *saveptr = NULL, text[256] = "";
    const char *fr = NULL;
    (void)state;
    assert_int_equal(e2e_post(&d, "/v1/chat/completions",
                              "{\"max_tokens\":8,\"stream\":true,\"tools\":[{\"type\":"
                              "\"function\",\"function\":{\"name\":\"w\"}}],\"messages\":"
                              "[{\"role\":\"user\",\"content\":\"w?\"}]}",
                              &r),
                     200);
    for (char *ev = strtok_r(r.body, "\n", &saveptr); ev; ev = strtok_r(NULL, "\n", &saveptr)) {
        if (!strcmp(ev, "data: [DONE]"))
            continue;
        json_t *o = json_loads(ev + 6, 0, NULL);
        json_t *ch = json_array_get(json_object_get(o, "choices"), 0);
        assert_null(json_object_get(json_object_get(ch, "delta"), "tool_calls"));
        strcat(text, e2e_str(json_object_get(ch, "delta"), "content"));
        if (json_is_string(json_object_get(ch, "finish_reason")))
            fr = strcmp(e2e_str(ch, "finish_reason"), "length") ? "other" : "length";
        json_decref(o);
    }
    assert_string_equal(text, "Once upo");
    assert_non_null(fr);
    assert_string_equal(fr, "length");
    e2e_resp_done(&r);
}

/* Every event is "data: ...\n\n", the last [DONE]; the text joined is the
 * non-streamed text; usage and lookahead come in the last chunks. */
static void test_chat_stream(void **state)
{
    struct e2e_resp r;
    char *b, *saveptr = NULL, text[256] = "";
    int events = 0, done = 0;
    bool usage = false, finish = false;

    (void)state;
    assert_int_equal(
            e2e_post(&d, "/v1/chat/completions",
                     "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"max_completion_tokens\":8,"
                     "\"stream\":true,\"stream_options\":{\"include_usage\":true}}",
                     &r),
            200);
    assert_string_equal(e2e_header(&r, "Content-Type"), "text/event-stream");
    assert_string_equal(e2e_header(&r, "Transfer-Encoding"), "chunked");
    assert_true(r.len > 2 && !strcmp(r.body + r.len - 2, "\n\n"));
    b = r.body;
    for (char *ev = strtok_r(b, "\n", &saveptr); ev;
         ev = strtok_r(NULL, "\n", &saveptr), events++) {
        assert_true(!strncmp(ev, "data: ", 6));
        assert_int_equal(done, 0); /* nothing after [DONE] */
        if (!strcmp(ev + 6, "[DONE]")) {
            done = 1;
            continue;
        }
        json_t *o = json_loads(ev + 6, 0, NULL), *ch;
        assert_non_null(o);
        assert_string_equal(e2e_str(o, "object"), "chat.completion.chunk");
        ch = json_array_get(json_object_get(o, "choices"), 0);
        if (events == 0)
            assert_string_equal(e2e_str(json_object_get(ch, "delta"), "role"), "assistant");
        strcat(text, e2e_str(json_object_get(ch, "delta"), "content"));
        if (json_is_string(json_object_get(ch, "finish_reason"))) {
            finish = true;
            assert_string_equal(e2e_str(ch, "finish_reason"), "length");
            assert_true(json_is_object(json_object_get(o, "lookahead")));
        }
        if (json_is_object(json_object_get(o, "usage"))) {
            usage = true;
            assert_int_equal(json_array_size(json_object_get(o, "choices")), 0);
            assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "usage"),
                                                                "completion_tokens")),
                             8);
        }
        json_decref(o);
    }
    /* blank lines between events were eaten by strtok: count the \n\n */
    assert_int_equal(done, 1);
    assert_true(usage && finish && events >= 4);
    assert_string_equal(text, "Once upo");
    e2e_resp_done(&r);
}

static void test_completions(void **state)
{
    struct e2e_resp r;
    json_t *o, *ch;

    (void)state;
    assert_int_equal(e2e_post(&d, "/v1/completions",
                              "{\"model\":\"fake\",\"prompt\":\"Hi\",\"max_tokens\":20,"
                              "\"stop\":\"upo\"}",
                              &r),
                     200);
    o = e2e_resp_json(&r);
    assert_string_equal(e2e_str(o, "object"), "text_completion");
    ch = json_array_get(json_object_get(o, "choices"), 0);
    assert_string_equal(e2e_str(ch, "text"), "Once ");
    assert_string_equal(e2e_str(ch, "finish_reason"), "stop");
    json_decref(o);
    e2e_resp_done(&r);
    /* token ids: BOS "Hi", as tokenize gives them */
    assert_int_equal(
            e2e_post(&d, "/v1/completions", "{\"prompt\":[1,75,108],\"max_tokens\":4}", &r), 200);
    assert_non_null(strstr(r.body, "\"text\":\"Once\""));
    assert_non_null(strstr(r.body, "\"prompt_tokens\":3,"));
    e2e_resp_done(&r);
    assert_int_equal(e2e_post(&d, "/v1/completions", "{\"prompt\":[1,99999]}", &r), 400);
    check_error(&r, 400, NULL);
    e2e_resp_done(&r);
    /* streamed: text chunks and a finish chunk */
    assert_int_equal(e2e_post(&d, "/v1/completions",
                              "{\"prompt\":[\"Hi\"],\"max_tokens\":3,\"stream\":true}", &r),
                     200);
    assert_non_null(strstr(r.body, "\"object\":\"text_completion\""));
    assert_non_null(strstr(r.body, "\"finish_reason\":\"length\""));
    assert_non_null(strstr(r.body, "data: [DONE]\n\n"));
    e2e_resp_done(&r);
}

static void test_tokenize(void **state)
{
    struct e2e_resp r;
    json_t *o;

    (void)state;
    assert_int_equal(e2e_post(&d, "/tokenize", "{\"content\":\"Hi\",\"add_special\":true}", &r),
                     200);
    o = e2e_resp_json(&r);
    assert_int_equal(json_array_size(json_object_get(o, "tokens")), 3);
    json_decref(o);
    e2e_resp_done(&r);
    assert_int_equal(e2e_post(&d, "/detokenize", "{\"tokens\":[75,108]}", &r), 200);
    o = e2e_resp_json(&r);
    assert_string_equal(e2e_str(o, "content"), "Hi");
    json_decref(o);
    e2e_resp_done(&r);
}

static void test_gets(void **state)
{
    struct e2e_resp r;
    json_t *o;

    (void)state;
    assert_int_equal(e2e_exchange(&d, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n", &r), 200);
    o = e2e_resp_json(&r);
    assert_string_equal(e2e_str(o, "status"), "ok");
    json_decref(o);
    e2e_resp_done(&r);
    assert_int_equal(e2e_exchange(&d, "GET /v1/models HTTP/1.1\r\n\r\n", &r), 200);
    o = e2e_resp_json(&r);
    assert_string_equal(e2e_str(o, "object"), "list");
    assert_string_equal(e2e_str(json_array_get(json_object_get(o, "data"), 0), "id"), "fake");
    json_decref(o);
    e2e_resp_done(&r);
    assert_int_equal(e2e_exchange(&d, "GET /v1/models/fake HTTP/1.1\r\n\r\n", &r), 200);
    e2e_resp_done(&r);
    assert_int_equal(e2e_exchange(&d, "GET /v1/models/gpt-4 HTTP/1.1\r\n\r\n", &r), 404);
    check_error(&r, 404, "model");
    e2e_resp_done(&r);
    assert_int_equal(e2e_exchange(&d, "GET /metrics HTTP/1.1\r\n\r\n", &r), 200);
    assert_true(!strncmp(e2e_header(&r, "Content-Type"), "text/plain; version=0.0.4", 25));
    assert_non_null(strstr(r.body, "# TYPE lade_requests_total counter\n"));
    assert_non_null(strstr(r.body, "lade_tokens_per_step "));
    assert_non_null(strstr(r.body, "lade_acceptance_ratio "));
    assert_non_null(strstr(r.body, "lade_generations_total{finish_reason=\"cancelled\"}"));
    e2e_resp_done(&r);
}

/* Two requests on one connection, then three sent at once: answered in order. */
static void test_keepalive_pipelining(void **state)
{
    char *chat = e2e_post_req("/v1/chat/completions", chat_body), all[4096];
    int fd = e2e_connect(&d);
    struct e2e_resp r;

    (void)state;
    e2e_send_str(fd, "GET /health HTTP/1.1\r\n\r\n");
    assert_true(e2e_http_read(fd, &r));
    assert_int_equal(r.status, 200);
    e2e_resp_done(&r);
    e2e_send_str(fd, chat);
    assert_true(e2e_http_read(fd, &r));
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "Once upo"));
    e2e_resp_done(&r);
    snprintf(all, sizeof(all), "%sGET /v1/models HTTP/1.1\r\n\r\n%sGET /nope HTTP/1.1\r\n\r\n",
             chat, chat);
    e2e_send_str(fd, all);
    for (int i = 0; i < 4; i++) {
        static const int want[] = { 200, 200, 200, 404 };
        assert_true(e2e_http_read(fd, &r));
        assert_int_equal(r.status, want[i]);
        assert_non_null(strstr(r.body, i == 1 ? "\"list\"" :
                                       i == 3 ? "\"error\"" :
                                                "chat.completion"));
        e2e_resp_done(&r);
    }
    close(fd);
    free(chat);
}

static void test_chunked_body(void **state)
{
    const char *body = "{\"prompt\":\"Hi\",\"max_tokens\":4}";
    char raw[1024];
    struct e2e_resp r;

    (void)state;
    snprintf(raw, sizeof(raw),
             "POST /v1/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
             "5\r\n%.5s\r\n%zx\r\n%s\r\n0\r\n\r\n",
             body, strlen(body + 5), body + 5);
    assert_int_equal(e2e_exchange(&d, raw, &r), 200);
    assert_non_null(strstr(r.body, "\"text\":\"Once\""));
    e2e_resp_done(&r);
}

static void test_expect_continue(void **state)
{
    const char *body = "{\"content\":\"abc\"}";
    char raw[256];
    int fd = e2e_connect(&d);
    struct e2e_resp r;

    (void)state;
    snprintf(raw, sizeof(raw),
             "POST /tokenize HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: %zu\r\n\r\n",
             strlen(body));
    e2e_send_str(fd, raw);
    assert_true(e2e_http_read(fd, &r));
    assert_int_equal(r.status, 100);
    e2e_resp_done(&r);
    e2e_send_str(fd, body);
    assert_true(e2e_http_read(fd, &r));
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"tokens\":[100,101,102]"));
    e2e_resp_done(&r);
    /* too large: refused before the body is sent */
    e2e_send_str(
            fd,
            "POST /tokenize HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 999999\r\n\r\n");
    assert_true(e2e_http_read(fd, &r));
    check_error(&r, 413, NULL);
    e2e_resp_done(&r);
    close(fd);
}

/* Requests that break the rules get their status; the daemon serves on. */
static void test_hostile(void **state)
{
    static const struct {
        const char *raw;
        int status;
        const char *param;
    } cases[] = {
        { "GARBAGE\r\n\r\n", 400, NULL },
        { "GET /health HTTP/9.9\r\n\r\n", 505, NULL },
        { "GET /health HTTP/1.1\r\nNoColon\r\n\r\n", 400, NULL },
        { "GET /nope HTTP/1.1\r\n\r\n", 404, NULL },
        { "DELETE /v1/models HTTP/1.1\r\n\r\n", 405, NULL },
        { "GET /v1/chat/completions HTTP/1.1\r\n\r\n", 405, NULL },
        { "POST /tokenize HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
          NULL },
        { "POST /tokenize HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400, NULL },
        { "POST /tokenize HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400, NULL },
        { "POST /tokenize HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400, NULL },
        { "POST /tokenize HTTP/1.1\r\nContent-Length: 70000\r\n\r\n", 413, NULL },
        { "POST /tokenize HTTP/1.1\r\nExpect: teapot\r\nContent-Length: 2\r\n\r\n{}", 417, NULL },
        { "POST /tokenize HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400, NULL },
    };
    struct e2e_resp r;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        print_message("case %zu: %.40s\n", i, cases[i].raw);
        e2e_exchange(&d, cases[i].raw, &r);
        check_error(&r, cases[i].status, cases[i].param);
        e2e_resp_done(&r);
    }
    assert_int_equal(e2e_exchange(&d, "GET /health HTTP/1.1\r\n\r\n", &r), 200);
    e2e_resp_done(&r);
}

static void test_limits(void **state)
{
    char *big = malloc(80000), *raw;
    struct e2e_resp r;

    (void)state;
    memset(big, 'a', 79999);
    big[79999] = '\0';
    assert_true(asprintf(&raw, "GET /health HTTP/1.1\r\nX-Big: %.20000s\r\n\r\n", big) > 0);
    e2e_exchange(&d, raw, &r);
    check_error(&r, 431, NULL);
    e2e_resp_done(&r);
    free(raw);
    assert_true(asprintf(&raw, "GET /%.5000s HTTP/1.1\r\n\r\n", big) > 0);
    e2e_exchange(&d, raw, &r);
    check_error(&r, 414, NULL);
    e2e_resp_done(&r);
    free(raw);
    /* a chunked body past max_request_bytes */
    assert_true(
            asprintf(
                    &raw,
                    "POST /tokenize HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n",
                    79999, big) > 0);
    e2e_exchange(&d, raw, &r);
    check_error(&r, 413, NULL);
    e2e_resp_done(&r);
    free(raw);
    free(big);
}

/* Bodies that parse as HTTP but not as a request: 400 naming the field. */
static void test_bad_bodies(void **state)
{
    static const struct {
        const char *path, *body;
        int status;
        const char *param;
    } cases[] = {
        { "/v1/chat/completions", "{\"messages\":", 400, NULL },
        { "/v1/chat/completions", "[]", 400, NULL },
        { "/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"\xff\"}]}", 400,
          NULL },
        { "/v1/chat/completions", "{}", 400, "messages" },
        { "/v1/chat/completions", "{\"messages\":7}", 400, "messages" },
        { "/v1/chat/completions", "{\"messages\":[{\"role\":\"robot\",\"content\":\"x\"}]}", 400,
          "messages" },
        { "/v1/chat/completions",
          "{\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"tool_call_id\":\"c\"}]}", 400,
          "messages" },
        { "/v1/chat/completions",
          "{\"tools\":7,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 400, "tools" },
        { "/v1/chat/completions",
          "{\"tools\":[{\"type\":\"function\",\"function\":{}}],\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
          400, "tools" },
        { "/v1/chat/completions",
          "{\"tool_choice\":\"required\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
          400, "tool_choice" },
        { "/v1/chat/completions",
          "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}", 400,
          "messages" },
        { "/v1/chat/completions",
          "{\"model\":\"gpt-4\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 404,
          "model" },
        { "/v1/chat/completions",
          "{\"model\":7,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 400, "model" },
        { "/v1/chat/completions", "{\"n\":2,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
          400, "n" },
        { "/v1/chat/completions",
          "{\"response_format\":{\"type\":\"json_object\"},\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
          400, "response_format" },
        { "/v1/chat/completions",
          "{\"max_tokens\":0,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 400,
          "max_tokens" },
        { "/v1/chat/completions",
          "{\"max_tokens\":\"8\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 400,
          "max_tokens" },
        { "/v1/chat/completions",
          "{\"temperature\":-1,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 400,
          "temperature" },
        { "/v1/chat/completions",
          "{\"top_p\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 400, "top_p" },
        { "/v1/chat/completions",
          "{\"seed\":-5,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 400, "seed" },
        { "/v1/chat/completions",
          "{\"stop\":[1],\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 400, "stop" },
        { "/v1/chat/completions",
          "{\"stream\":\"yes\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 400,
          "stream" },
        { "/v1/chat/completions",
          "{\"stream_options\":{\"x\":1},\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
          400, "stream_options" },
        { "/v1/chat/completions",
          "{\"lookahead\":{\"n\":99},\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 400,
          NULL },
        { "/v1/chat/completions",
          "{\"frequency_penalty\":1,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 400,
          "frequency_penalty" },
        { "/v1/chat/completions",
          "{\"tools\":[{\"type\":\"retrieval\"}],\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
          400, "tools" },
        { "/v1/completions", "{\"prompt\":[\"a\",\"b\"]}", 400, "prompt" },
        { "/v1/completions",
          "{\"prompt\":\"0123456789012345678901234567890123456789012345678901234567890123456789"
          "0123456789012345678901234567890123456789012345678901234567890123456789\"}",
          400, NULL },
        { "/tokenize", "{\"text\":\"x\"}", 400, "text" },
        { "/tokenize", "{\"content\":5}", 400, "text" },
        { "/detokenize", "{\"tokens\":[99999]}", 400, NULL },
    };
    struct e2e_resp r;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        print_message("case %zu: %s %.60s\n", i, cases[i].path, cases[i].body);
        e2e_post(&d, cases[i].path, cases[i].body, &r);
        check_error(&r, cases[i].status, cases[i].param);
        e2e_resp_done(&r);
    }
}

/* An HTTP client leaves mid-stream: its generation is cancelled. NDJSON
 * on the same socket sees it in the stats. */
static void test_disconnect_cancels(void **state)
{
    char *raw = e2e_post_req("/v1/chat/completions",
                             "{\"messages\":[{\"role\":\"user\",\"content\":\"[delay=20]\"}],"
                             "\"max_tokens\":2000,\"stream\":true}");
    struct lade_client *c = e2e_client(&d);
    int fd = e2e_connect(&d);
    char line[512];

    (void)state;
    e2e_send_str(fd, raw);
    assert_true(e2e_get_line(fd, line, sizeof(line)));
    assert_string_equal(line, "HTTP/1.1 200 OK\r\n");
    close(fd);
    assert_true(e2e_wait_stats(c, "\"cancelled\":1"));
    lade_client_free(c);
    free(raw);
}

/* An HTTP stream and an NDJSON generation at once on one daemon. */
static void test_ndjson_beside(void **state)
{
    char *raw = e2e_post_req("/v1/completions",
                             "{\"prompt\":\"[delay=5]\",\"max_tokens\":12,\"stream\":true}");
    struct lade_client *c = e2e_client(&d);
    struct lade_gen_opts o;
    struct lade_event ev;
    int fd = e2e_connect(&d);
    struct e2e_resp r;

    (void)state;
    e2e_send_str(fd, raw);
    lade_gen_opts_init(&o);
    o.max_tokens = 12;
    assert_int_equal(lade_client_generate(c, "g", "[delay=5]", &o), 0);
    do
        assert_int_equal(lade_client_next(c, &ev, 10000), 1);
    while (ev.type == LADE_EVENT_TOKEN);
    assert_int_equal(ev.type, LADE_EVENT_DONE);
    assert_true(e2e_http_read(fd, &r));
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "data: [DONE]"));
    e2e_resp_done(&r);
    close(fd);
    lade_client_free(c);
    free(raw);
}

/* A client that says nothing still gets NDJSON's hello (after the sniff delay). */
static void test_silent_client_gets_hello(void **state)
{
    int fd = e2e_connect(&d);
    json_t *h = e2e_read(fd, 5000);

    (void)state;
    assert_non_null(h);
    assert_string_equal(e2e_str(h, "event"), "hello");
    json_decref(h);
    close(fd);
}

/* HTTP/1.0: no keep-alive, a stream ends with the connection. */
static void test_http10(void **state)
{
    int fd = e2e_connect(&d);
    char line[256], c;
    size_t n = 0;

    (void)state;
    e2e_send_str(fd, "GET /health HTTP/1.0\r\n\r\n");
    assert_true(e2e_get_line(fd, line, sizeof(line)));
    assert_string_equal(line, "HTTP/1.1 200 OK\r\n");
    while (e2e_get_byte(fd, &c))
        n++;
    assert_true(n > 10); /* then EOF */
    close(fd);
}

/* 1000 requests in one write: 1000 answers, in order. */
static void test_thousand_pipelined(void **state)
{
    static const char one[] = "GET /health HTTP/1.1\r\n\r\n";
    size_t n = sizeof(one) - 1;
    char *all = malloc(1000 * n + 1);
    int fd = e2e_connect(&d);
    struct e2e_resp r;

    (void)state;
    for (int i = 0; i < 1000; i++)
        memcpy(all + i * n, one, n);
    memcpy(all + 999 * n, "GET /nope HTTP/1.1\r\n\r\n", n - 2);
    e2e_send(fd, all, 1000 * n - 2);
    for (int i = 0; i < 1000; i++) {
        assert_true(e2e_http_read(fd, &r));
        assert_int_equal(r.status, i == 999 ? 404 : 200);
        e2e_resp_done(&r);
    }
    close(fd);
    free(all);
}

/* A sender that stops mid-body gets 408 once its 10 s are out; one that
 * hangs up mid-body costs nothing; the daemon serves on. */
static void test_slow_and_vanishing_senders(void **state)
{
    int slow = e2e_connect(&d), gone = e2e_connect(&d);
    struct e2e_resp r;

    (void)state;
    e2e_send_str(gone, "POST /tokenize HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"content\"");
    close(gone);
    e2e_send_str(slow, "POST /tokenize HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"con");
    for (int i = 0; i < 5; i++) { /* a byte every second: not enough */
        sleep(1);
        e2e_send_str(slow, " ");
    }
    assert_true(e2e_http_read(slow, &r));
    check_error(&r, 408, NULL);
    assert_string_equal(e2e_header(&r, "Connection"), "close");
    e2e_resp_done(&r);
    close(slow);
    assert_int_equal(e2e_exchange(&d, "GET /health HTTP/1.1\r\n\r\n", &r), 200);
    e2e_resp_done(&r);
}

/* A client that never reads its stream is dropped (after
 * send_timeout_seconds without reading) and its generation cancelled, like
 * an NDJSON one. Own daemon (a long context, a small output bound, a short
 * send timeout). */
static void test_never_reads(void **state)
{
    static const char *const extra[] = { "--set", "limits.max_output_buffer_bytes=65536", "--set",
                                         "limits.send_timeout_seconds=1", NULL };
    char *raw = e2e_post_req("/v1/completions",
                             "{\"prompt\":\"x\",\"max_tokens\":4096,\"stream\":true,"
                             "\"lookahead\":false}");
    struct lade_client *c;
    struct e2e b;
    int fd;

    (void)state;
    e2e_start(&b, "n_ctx=8192", extra);
    fd = e2e_connect(&b);
    e2e_send_str(fd, raw);
    c = e2e_client(&b);
    assert_true(e2e_wait_stats(c, "\"dropped_slow_clients\":1"));
    lade_client_free(c);
    close(fd);
    assert_int_equal(e2e_stop(&b), 0);
    e2e_cleanup(&b);
    free(raw);
}

static uint64_t ms_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* An HTTP request is tokenized on the tokenizer thread as an NDJSON one
 * is: a slow /tokenize (64 KiB at 30 ms per KiB, about 2 s) leaves the loop
 * free to answer /health on another connection at once. Own daemon. */
static void test_tokenizer_thread(void **state)
{
    size_t n = 64 * 1024;
    char *body = malloc(n + 32), *raw;
    struct e2e_resp r;
    struct e2e b;
    uint64_t t0;
    int fd;
    json_t *o;

    (void)state;
    assert_non_null(body);
    strcpy(body, "{\"content\":\"");
    memset(body + strlen(body), 'a', n);
    strcpy(body + 12 + n, "\"}");
    raw = e2e_post_req("/tokenize", body);
    e2e_start(&b, "tok_us_per_kib=30000", NULL);
    fd = e2e_connect(&b);
    t0 = ms_now();
    e2e_send_str(fd, raw);
    usleep(200000);
    assert_int_equal(e2e_exchange(&b, "GET /health HTTP/1.1\r\n\r\n", &r), 200);
    e2e_resp_done(&r);
    assert_true(ms_now() - t0 < 1500); /* not behind the tokenizing */
    assert_true(e2e_http_read(fd, &r));
    assert_int_equal(r.status, 200);
    assert_true(ms_now() - t0 >= 1500);
    o = e2e_resp_json(&r);
    assert_true(json_array_size(json_object_get(o, "tokens")) >= n); /* (and BOS, by default) */
    json_decref(o);
    e2e_resp_done(&r);
    close(fd);
    assert_int_equal(e2e_stop(&b), 0);
    e2e_cleanup(&b);
    free(raw);
    free(body);
}

/* A free loopback port, and a connection to it. */
static int tcp_connect(int port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET,
                              .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

static int tcp_exchange(int port, const char *raw, struct e2e_resp *r)
{
    int fd = tcp_connect(port);

    e2e_send_str(fd, raw);
    assert_true(e2e_http_read(fd, r));
    close(fd);
    return r->status;
}

/* [http] listen: HTTP on loopback TCP with a bearer key (not for /health);
 * a TCP connection speaks only HTTP; a non-loopback address is refused
 * unless allow_remote. */
static void test_tcp_listener(void **state)
{
    char listen[64], auth[256];
    const char *extra[] = { "--set", listen, NULL };
    struct e2e b;
    struct e2e_resp r;
    int port = e2e_start_tcp(&b, NULL, "s3cret");

    (void)state;
    assert_int_equal(tcp_exchange(port, "GET /v1/models HTTP/1.1\r\n\r\n", &r), 401);
    check_error(&r, 401, NULL);
    assert_string_equal(e2e_header(&r, "WWW-Authenticate"), "Bearer");
    e2e_resp_done(&r);
    assert_int_equal(tcp_exchange(port,
                                  "GET /v1/models HTTP/1.1\r\nAuthorization: Bearer s3cre\r\n\r\n",
                                  &r),
                     401);
    e2e_resp_done(&r);
    assert_int_equal(tcp_exchange(port, "GET /health HTTP/1.1\r\n\r\n", &r), 200);
    e2e_resp_done(&r);
    snprintf(auth, sizeof(auth),
             "POST /v1/completions HTTP/1.1\r\nAuthorization: Bearer s3cret\r\n"
             "Content-Length: 30\r\n\r\n{\"prompt\":\"x\",\"max_tokens\":4} ");
    assert_int_equal(tcp_exchange(port, auth, &r), 200);
    assert_non_null(strstr(r.body, "\"text\":\"Once\""));
    e2e_resp_done(&r);
    assert_int_equal(tcp_exchange(port, "{\"id\":1,\"op\":\"health\"}\n", &r), 400);
    e2e_resp_done(&r);
    assert_int_equal(e2e_exchange(&b, "GET /v1/models HTTP/1.1\r\n\r\n", &r),
                     200); /* the Unix socket needs no key */
    e2e_resp_done(&r);
    assert_int_equal(e2e_stop(&b), 0);
    e2e_cleanup(&b);

    snprintf(listen, sizeof(listen), "http.listen=0.0.0.0:%d", port);
    e2e_init(&b);
    e2e_spawn(&b, NULL, extra, -1);
    assert_int_equal(e2e_wait_exit(&b, 10000), 1);
    assert_true(e2e_log_has(&b, "is not a loopback address"));
    e2e_cleanup(&b);
}

/* The queue full: 429 with Retry-After; draining: 503. Own daemon. */
static void test_busy_and_draining(void **state)
{
    static const char *const extra[] = { "--set", "daemon.queue_length=1", "--set",
                                         "limits.max_queued_per_connection=1", NULL };
    char *slow = e2e_post_req("/v1/completions", "{\"prompt\":\"[delay=20]\",\"max_tokens\":100}");
    struct e2e b;
    struct e2e_resp r;
    int fa, fb, fc, fh;

    (void)state;
    e2e_start(&b, NULL, extra);
    fh = e2e_connect(&b);
    e2e_send_str(fh, "GET /health HTTP/1.1\r\n\r\n");
    assert_true(e2e_http_read(fh, &r));
    e2e_resp_done(&r);
    fa = e2e_connect(&b);
    e2e_send_str(fa, slow);
    usleep(200000); /* a runs */
    fb = e2e_connect(&b);
    e2e_send_str(fb, slow);
    usleep(200000); /* b waits */
    assert_int_equal(e2e_exchange(&b, slow, &r), 429);
    check_error(&r, 429, NULL);
    assert_string_equal(e2e_header(&r, "Retry-After"), "1");
    e2e_resp_done(&r);
    fc = fb;
    kill(b.pid, SIGTERM);
    usleep(200000);
    e2e_send_str(fh, "GET /health HTTP/1.1\r\n\r\n");
    assert_true(e2e_http_read(fh, &r));
    assert_int_equal(r.status, 503);
    assert_non_null(e2e_header(&r, "Retry-After"));
    e2e_resp_done(&r);
    assert_true(e2e_http_read(fc, &r)); /* the queued one: shutting down */
    check_error(&r, 503, NULL);
    e2e_resp_done(&r);
    assert_true(e2e_http_read(fa, &r)); /* the running one finishes */
    assert_int_equal(r.status, 200);
    e2e_resp_done(&r);
    close(fa);
    close(fc);
    close(fh);
    assert_int_equal(e2e_wait_exit(&b, 10000), 0);
    e2e_cleanup(&b);
    free(slow);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chat),
        cmocka_unit_test(test_chat_tools),
        cmocka_unit_test(test_chat_tools_stream),
        cmocka_unit_test(test_chat_stream),
        cmocka_unit_test(test_completions),
        cmocka_unit_test(test_tokenize),
        cmocka_unit_test(test_gets),
        cmocka_unit_test(test_keepalive_pipelining),
        cmocka_unit_test(test_chunked_body),
        cmocka_unit_test(test_expect_continue),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_bad_bodies),
        cmocka_unit_test(test_disconnect_cancels),
        cmocka_unit_test(test_ndjson_beside),
        cmocka_unit_test(test_silent_client_gets_hello),
        cmocka_unit_test(test_http10),
        cmocka_unit_test(test_thousand_pipelined),
        cmocka_unit_test(test_slow_and_vanishing_senders),
    };
    const struct CMUnitTest own[] = {
        cmocka_unit_test(test_never_reads),
        cmocka_unit_test(test_tokenizer_thread),
        cmocka_unit_test(test_tcp_listener),
        cmocka_unit_test(test_busy_and_draining),
    };
    int r = cmocka_run_group_tests(tests, start, stop);

    return r + cmocka_run_group_tests(own, NULL, NULL);
}
