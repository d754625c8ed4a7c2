/* ipc/request.c: every way a request line can be right or wrong. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ipc/ipc.h"

static const struct ipc_limits lim = { .max_text_bytes = 1000,
                                       .max_tokens = 512,
                                       .max_detok_tokens = 16 };

static int parse(const char *line, struct ipc_request *r, struct ipc_error *e)
{
    return ipc_request_parse(line, strlen(line), &lim, r, e);
}

struct bad_case {
    const char *line;
    enum ipc_err code;
    const char *id; /* expected id in the error, or NULL */
};

static const struct bad_case bad_cases[] = {
    { "{bad", IPC_ERR_BAD_JSON, NULL },
    { "", IPC_ERR_BAD_JSON, NULL },
    { "[1,2]", IPC_ERR_BAD_JSON, NULL },
    { "\"op\"", IPC_ERR_BAD_JSON, NULL },
    { "{\"id\":1,\"id\":2,\"op\":\"info\"}", IPC_ERR_BAD_JSON, NULL },
    { "{\"id\":\"a\\u0000b\",\"op\":\"info\"}", IPC_ERR_BAD_JSON, NULL },
    { "{\"id\":1,\"op\":\"generate\",\"prompt\":\"x\",\"temperature\":1e999}", IPC_ERR_BAD_JSON,
      NULL },
    { "{\"id\":\"\xff\",\"op\":\"info\"}", IPC_ERR_BAD_UTF8, NULL },
    { "{\"id\":\"\xc0\xaf\",\"op\":\"info\"}", IPC_ERR_BAD_UTF8, NULL },
    { "{\"id\":\"\xed\xa0\x80\",\"op\":\"info\"}", IPC_ERR_BAD_UTF8, NULL },
    { "{\"id\":\"\xf4\x90\x80\x80\",\"op\":\"info\"}", IPC_ERR_BAD_UTF8, NULL },
    { "{\"op\":\"info\"}", IPC_ERR_MISSING_FIELD, NULL },
    { "{\"id\":\"a\"}", IPC_ERR_MISSING_FIELD, "a" },
    { "{\"id\":\"a\",\"op\":5}", IPC_ERR_BAD_FIELD, "a" },
    { "{\"id\":\"a\",\"op\":\"fly\"}", IPC_ERR_UNKNOWN_OP, "a" },
    { "{\"id\":\"a\",\"op\":\"fl\\ny\"}", IPC_ERR_UNKNOWN_OP,
      "a" }, /* fuzz: newline in the message */
    { "{\"id\":\"a\",\"op\":\"info\",\"\\n\":1}", IPC_ERR_BAD_FIELD, "a" },
    { "{\"id\":{},\"op\":\"info\"}", IPC_ERR_BAD_FIELD, NULL },
    { "{\"id\":\"\",\"op\":\"info\"}", IPC_ERR_BAD_FIELD, NULL },
    { "{\"id\":-1,\"op\":\"info\"}", IPC_ERR_BAD_FIELD, NULL },
    { "{\"id\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"op\":\"info\"}",
      IPC_ERR_BAD_FIELD, NULL },
    { "{\"id\":1,\"v\":2,\"op\":\"info\"}", IPC_ERR_PROTOCOL_VERSION, "1" },
    { "{\"id\":1,\"v\":\"1\",\"op\":\"info\"}", IPC_ERR_PROTOCOL_VERSION, "1" },
    { "{\"id\":1,\"op\":\"info\",\"x\":1}", IPC_ERR_BAD_FIELD, "1" },
    { "{\"id\":1,\"op\":\"generate\"}", IPC_ERR_MISSING_FIELD, "1" },
    { "{\"id\":1,\"op\":\"generate\",\"prompt\":7}", IPC_ERR_BAD_FIELD, "1" },
    { "{\"id\":1,\"op\":\"generate\",\"prompt\":\"x\",\"max_tokens\":0}", IPC_ERR_OUT_OF_RANGE,
      "1" },
    { "{\"id\":1,\"op\":\"generate\",\"prompt\":\"x\",\"max_tokens\":513}", IPC_ERR_OUT_OF_RANGE,
      "1" },
    { "{\"id\":1,\"op\":\"generate\",\"prompt\":\"x\",\"max_tokens\":1.5}", IPC_ERR_BAD_FIELD,
      "1" },
    { "{\"id\":1,\"op\":\"generate\",\"prompt\":\"x\",\"temperature\":-0.1}", IPC_ERR_OUT_OF_RANGE,
      "1" },
    { "{\"id\":1,\"op\":\"generate\",\"prompt\":\"x\",\"temperature\":\"hot\"}", IPC_ERR_BAD_FIELD,
      "1" },
    { "{\"id\":1,\"op\":\"generate\",\"prompt\":\"x\",\"top_p\":0}", IPC_ERR_OUT_OF_RANGE, "1" },
    { "{\"id\":1,\"op\":\"generate\",\"prompt\":\"x\",\"top_p\":1.01}", IPC_ERR_OUT_OF_RANGE, "1" },
    /* issue #20: nonzero numbers a float holds only as 0 or a subnormal */
    { "{\"id\":1,\"op\":\"generate\",\"prompt\":\"x\",\"top_p\":1e-300}", IPC_ERR_OUT_OF_RANGE,
      "1" },
    { "{\"id\":1,\"op\":\"generate\",\"prompt\":\"x\",\"temperature\":1e-300}",
      IPC_ERR_OUT_OF_RANGE, "1" },
    { "{\"id\":1,\"op\":\"generate\",\"prompt\":\"x\",\"temperature\":1e-40}", IPC_ERR_OUT_OF_RANGE,
      "1" },
    { "{\"id\":1,\"op\":\"generate\",\"prompt\":\"x\",\"min_p\":1e-45}", IPC_ERR_OUT_OF_RANGE,
      "1" },
    { "{\"id\":1,\"op\":\"generate\",\"prompt\":\"x\",\"temperature\":1e39}", IPC_ERR_OUT_OF_RANGE,
      "1" },
    { "{\"id\":1,\"op\":\"generate\",\"prompt\":\"x\",\"top_k\":-1}", IPC_ERR_OUT_OF_RANGE, "1" },
    { "{\"id\":1,\"op\":\"generate\",\"prompt\":\"x\",\"min_p\":2}", IPC_ERR_OUT_OF_RANGE, "1" },
    { "{\"id\":1,\"op\":\"generate\",\"prompt\":\"x\",\"repeat_penalty\":0}", IPC_ERR_OUT_OF_RANGE,
      "1" },
    { "{\"id\":1,\"op\":\"generate\",\"prompt\":\"x\",\"seed\":-5}", IPC_ERR_OUT_OF_RANGE, "1" },
    { "{\"id\":1,\"op\":\"generate\",\"prompt\":\"x\",\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\"]}",
      IPC_ERR_OUT_OF_RANGE, "1" },
    { "{\"id\":1,\"op\":\"generate\",\"prompt\":\"x\",\"stop\":[\"\"]}", IPC_ERR_OUT_OF_RANGE,
      "1" },
    { "{\"id\":1,\"op\":\"generate\",\"prompt\":\"x\",\"stop\":[1]}", IPC_ERR_BAD_FIELD, "1" },
    { "{\"id\":1,\"op\":\"generate\",\"prompt\":\"x\",\"stop\":{}}", IPC_ERR_BAD_FIELD, "1" },
    { "{\"id\":1,\"op\":\"generate\",\"prompt\":\"x\",\"lookahead\":{\"n\":1}}",
      IPC_ERR_OUT_OF_RANGE, "1" },
    { "{\"id\":1,\"op\":\"generate\",\"prompt\":\"x\",\"lookahead\":{\"n\":3,\"q\":1}}",
      IPC_ERR_BAD_FIELD, "1" },
    { "{\"id\":1,\"op\":\"generate\",\"prompt\":\"x\",\"lookahead\":{\"g\":0}}",
      IPC_ERR_OUT_OF_RANGE, "1" },
    { "{\"id\":1,\"op\":\"generate\",\"prompt\":\"x\",\"lookahead\":\"yes\"}", IPC_ERR_BAD_FIELD,
      "1" },
    { "{\"id\":1,\"op\":\"generate\",\"prompt\":\"x\",\"stream\":\"true\"}", IPC_ERR_BAD_FIELD,
      "1" },
    { "{\"id\":1,\"op\":\"generate\",\"prompt\":\"x\",\"max_token\":5}", IPC_ERR_BAD_FIELD, "1" },
    { "{\"id\":1,\"op\":\"chat\"}", IPC_ERR_MISSING_FIELD, "1" },
    { "{\"id\":1,\"op\":\"chat\",\"messages\":[]}", IPC_ERR_OUT_OF_RANGE, "1" },
    { "{\"id\":1,\"op\":\"chat\",\"messages\":{}}", IPC_ERR_BAD_FIELD, "1" },
    { "{\"id\":1,\"op\":\"chat\",\"messages\":[5]}", IPC_ERR_BAD_FIELD, "1" },
    { "{\"id\":1,\"op\":\"chat\",\"messages\":[{\"role\":\"robot\",\"content\":\"x\"}]}",
      IPC_ERR_BAD_FIELD, "1" },
    { "{\"id\":1,\"op\":\"chat\",\"messages\":[{\"role\":\"user\"}]}", IPC_ERR_MISSING_FIELD, "1" },
    { "{\"id\":1,\"op\":\"chat\",\"messages\":[{\"content\":\"x\"}]}", IPC_ERR_MISSING_FIELD, "1" },
    { "{\"id\":1,\"op\":\"chat\",\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"name\":\"y\"}]}",
      IPC_ERR_BAD_FIELD, "1" },
    { "{\"id\":1,\"op\":\"tokenize\"}", IPC_ERR_MISSING_FIELD, "1" },
    { "{\"id\":1,\"op\":\"tokenize\",\"text\":\"x\",\"add_bos\":1}", IPC_ERR_BAD_FIELD, "1" },
    { "{\"id\":1,\"op\":\"detokenize\",\"tokens\":\"abc\"}", IPC_ERR_BAD_FIELD, "1" },
    { "{\"id\":1,\"op\":\"detokenize\",\"tokens\":[-1]}", IPC_ERR_OUT_OF_RANGE, "1" },
    { "{\"id\":1,\"op\":\"detokenize\",\"tokens\":[1.5]}", IPC_ERR_BAD_FIELD, "1" },
    { "{\"id\":1,\"op\":\"generate\",\"prompt\":[\"a\"]}", IPC_ERR_BAD_FIELD, "1" },
    { "{\"id\":1,\"op\":\"generate\",\"prompt\":[-1]}", IPC_ERR_OUT_OF_RANGE, "1" },
    { "{\"id\":1,\"op\":\"generate\",\"prompt\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]}",
      IPC_ERR_TOO_LARGE, "1" },
    { "{\"id\":1,\"op\":\"detokenize\",\"tokens\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]}",
      IPC_ERR_TOO_LARGE, "1" },
    { "{\"id\":1,\"op\":\"cancel\"}", IPC_ERR_MISSING_FIELD, "1" },
    { "{\"id\":1,\"op\":\"cancel\",\"target\":[]}", IPC_ERR_BAD_FIELD, "1" },
};

static void test_bad_requests(void **state)
{
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const struct bad_case *c = &bad_cases[i];
        struct ipc_request r;
        struct ipc_error e;
        int k = parse(c->line, &r, &e);
        if (k != -EBADMSG || e.code != c->code)
            print_error("case %zu '%s': got %d code %s (%s)\n", i, c->line, k, ipc_err_name(e.code),
                        e.message);
        assert_int_equal(k, -EBADMSG);
        assert_int_equal(e.code, c->code);
        assert_true(strlen(e.message) > 0);
        assert_null(strchr(e.message, '\n'));
        if (c->id) {
            assert_true(e.id.present);
            assert_string_equal(e.id.s, c->id);
        }
    }
}

static void test_too_large_text(void **state)
{
    char line[1200];
    struct ipc_request r;
    struct ipc_error e;

    snprintf(line, sizeof(line), "{\"id\":1,\"op\":\"generate\",\"prompt\":\"%01001d\"}", 0);
    assert_int_equal(parse(line, &r, &e), -EBADMSG);
    assert_int_equal(e.code, IPC_ERR_TOO_LARGE);
}

static void test_generate_defaults(void **state)
{
    struct ipc_request r;
    struct ipc_error e;

    assert_int_equal(parse("{\"id\":\"g\",\"op\":\"generate\",\"prompt\":\"hi\"}", &r, &e), 0);
    assert_int_equal(r.op, IPC_OP_GENERATE);
    assert_string_equal(r.id.s, "g");
    assert_false(r.id.is_int);
    assert_string_equal(r.prompt, "hi");
    assert_int_equal(r.params.max_tokens, 0);
    assert_true(r.stream);
    assert_false(r.lookahead_set);
    assert_true(r.params.top_p == 1.0f && r.params.repeat_penalty == 1.0f &&
                r.params.temperature == 0.0f);
    assert_false(r.has_seed);
    ipc_request_done(&r);
}

/* The smallest normal float and exact zeros pass the conversion rule;
 * the value kept is the one sent, rounded to a float, never 0. */
static void test_float_edges(void **state)
{
    struct ipc_request r;
    struct ipc_error e;

    assert_int_equal(parse("{\"id\":1,\"op\":\"generate\",\"prompt\":\"x\",\"temperature\":1.2e-38,"
                           "\"top_p\":1.2e-38,\"min_p\":0}",
                           &r, &e),
                     0);
    assert_true(r.params.temperature > 0.0f && r.params.top_p > 0.0f && r.params.min_p == 0.0f);
    ipc_request_done(&r);
    assert_int_equal(parse("{\"id\":1,\"op\":\"generate\",\"prompt\":\"x\",\"temperature\":1e-39}",
                           &r, &e),
                     -EBADMSG);
    assert_non_null(strstr(e.message, "'temperature'"));
    assert_non_null(strstr(e.message, "float"));
}

static void test_generate_full(void **state)
{
    const char *line =
            "{\"v\":1,\"id\":42,\"op\":\"generate\",\"prompt\":\"h\xc3\xa9\",\"max_tokens\":100,"
            "\"temperature\":0.7,\"top_k\":40,\"top_p\":0.9,\"min_p\":0.05,\"repeat_penalty\":1.1,"
            "\"seed\":7,\"stop\":[\"\\n\\n\",\"END\"],\"lookahead\":{\"n\":4,\"w\":8,\"g\":6},\"stream\":false}";
    struct ipc_request r;
    struct ipc_error e;

    assert_int_equal(parse(line, &r, &e), 0);
    assert_true(r.id.is_int);
    assert_string_equal(r.id.s, "42");
    assert_int_equal(r.params.max_tokens, 100);
    assert_true(r.params.temperature == 0.7f && r.params.top_k == 40 && r.params.seed == 7);
    assert_true(r.has_seed);
    assert_int_equal(r.n_stop, 2);
    assert_string_equal(r.stop[0], "\n\n");
    assert_true(r.lookahead_set && r.params.lookahead);
    assert_int_equal(r.params.n, 4);
    assert_int_equal(r.params.w, 8);
    assert_int_equal(r.params.g, 6);
    assert_false(r.stream);
    ipc_request_done(&r);

    assert_int_equal(
            parse("{\"id\":1,\"op\":\"generate\",\"prompt\":\"\",\"lookahead\":false,\"stop\":\"x\"}",
                  &r, &e),
            0);
    assert_true(r.lookahead_set && !r.params.lookahead);
    assert_int_equal(r.n_stop, 1);
    ipc_request_done(&r);
}

static void test_chat_and_others(void **state)
{
    struct ipc_request r;
    struct ipc_error e;

    assert_int_equal(
            parse("{\"id\":1,\"op\":\"chat\",\"messages\":[{\"role\":\"system\",\"content\":\"s\"},"
                  "{\"role\":\"user\",\"content\":\"u\"}]}",
                  &r, &e),
            0);
    assert_int_equal(r.n_messages, 2);
    assert_int_equal(r.messages[0].role, IPC_ROLE_SYSTEM);
    assert_string_equal(r.messages[1].content, "u");
    ipc_request_done(&r);
    assert_int_equal(parse("{\"id\":1,\"op\":\"detokenize\",\"tokens\":[1,2,300]}", &r, &e), 0);
    assert_int_equal(r.n_tokens, 3);
    assert_int_equal(r.tokens[2], 300);
    ipc_request_done(&r);
    assert_int_equal(parse("{\"id\":1,\"op\":\"generate\",\"prompt\":[1,72]}", &r, &e), 0);
    assert_null(r.prompt);
    assert_int_equal(r.n_tokens, 2);
    assert_int_equal(r.tokens[1], 72);
    ipc_request_done(&r);
    assert_int_equal(parse("{\"id\":1,\"op\":\"cancel\",\"target\":\"abc\"}", &r, &e), 0);
    assert_string_equal(r.target.s, "abc");
    ipc_request_done(&r);
    for (int op = IPC_OP_INFO; op <= IPC_OP_STATS; op++) {
        char line[64];
        snprintf(line, sizeof(line), "{\"id\":\"x\",\"op\":\"%s\"}  \r", ipc_op_name(op));
        assert_int_equal(parse(line, &r, &e), 0);
        assert_int_equal(r.op, op);
        ipc_request_done(&r);
    }
}

/* Tools: the request's list, a tool's answer, an assistant's calls with
 * its content null or absent; as they came, for the template. */
static void test_chat_tools(void **state)
{
    struct ipc_request r;
    struct ipc_error e;
    const char *line =
            "{\"id\":1,\"op\":\"chat\",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":"
            "\"now\",\"description\":\"d\",\"parameters\":{\"type\":\"object\",\"properties\":{}}}}],"
            "\"messages\":[{\"role\":\"user\",\"content\":\"t?\"},"
            "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":"
            "\"function\",\"function\":{\"name\":\"now\",\"arguments\":{}}}]},"
            "{\"role\":\"tool\",\"content\":\"12:00\",\"tool_call_id\":\"c1\",\"name\":\"now\"},"
            "{\"role\":\"assistant\",\"tool_calls\":[{\"function\":{\"name\":\"now\",\"arguments\":"
            "\"{}\"}}]}]}";

    assert_int_equal(parse(line, &r, &e), 0);
    assert_int_equal(r.n_messages, 4);
    assert_true(json_is_array(r.tools));
    assert_string_equal(json_string_value(json_object_get(
                                json_object_get(json_array_get(r.tools, 0), "function"), "name")),
                        "now");
    assert_string_equal(r.messages[1].content, "");
    assert_int_equal(json_array_size(r.messages[1].tool_calls), 1);
    assert_null(r.messages[1].tool_call_id);
    assert_int_equal(r.messages[2].role, IPC_ROLE_TOOL);
    assert_string_equal(r.messages[2].tool_call_id, "c1");
    assert_string_equal(r.messages[2].name, "now");
    assert_null(r.messages[2].tool_calls);
    assert_string_equal(r.messages[3].content, "");
    ipc_request_done(&r);
    /* apply_template: the same messages and tools, no sampling fields */
    assert_int_equal(parse("{\"id\":1,\"op\":\"apply_template\",\"tools\":[{\"type\":\"function\","
                           "\"function\":{\"name\":\"f\"}}],\"messages\":[{\"role\":\"tool\","
                           "\"content\":\"x\"}]}",
                           &r, &e),
                     0);
    assert_int_equal(r.op, IPC_OP_APPLY_TEMPLATE);
    assert_int_equal(r.messages[0].role, IPC_ROLE_TOOL);
    assert_non_null(r.tools);
    ipc_request_done(&r);
    assert_int_equal(parse("{\"id\":1,\"op\":\"apply_template\",\"max_tokens\":3,\"messages\":"
                           "[{\"role\":\"user\",\"content\":\"x\"}]}",
                           &r, &e),
                     -EBADMSG);
    assert_int_equal(e.code, IPC_ERR_BAD_FIELD);
    /* an empty list is no tools */
    assert_int_equal(parse("{\"id\":1,\"op\":\"chat\",\"tools\":[],\"messages\":[{\"role\":"
                           "\"user\",\"content\":\"x\"}]}",
                           &r, &e),
                     0);
    assert_null(r.tools);
    ipc_request_done(&r);
}

/* Hostile tools: wrong types and shapes, too many, too deep, too large;
 * each a clear error naming what is wrong, nothing leaked. */
static void test_chat_tools_hostile(void **state)
{
#define CHAT(extra, msgs) "{\"id\":1,\"op\":\"chat\"" extra ",\"messages\":[" msgs "]}"
#define USER "{\"role\":\"user\",\"content\":\"x\"}"
#define TOOLS(t) ",\"tools\":[" t "]"
#define FN(f) "{\"type\":\"function\",\"function\":" f "}"
#define CALLS(c) "{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[" c "]}"
    static const struct {
        const char *line;
        enum ipc_err code;
        const char *says;
    } cases[] = {
        { CHAT(",\"tools\":{}", USER), IPC_ERR_BAD_FIELD, "field 'tools' must be an array" },
        { CHAT(TOOLS("7"), USER), IPC_ERR_BAD_FIELD, "tools[0] must be an object" },
        { CHAT(TOOLS("{\"type\":\"retrieval\"}"), USER), IPC_ERR_BAD_FIELD,
          "tools[0].type must be \"function\"" },
        { CHAT(TOOLS("{\"type\":\"function\"}"), USER), IPC_ERR_MISSING_FIELD,
          "tools[0].function must be an object" },
        { CHAT(TOOLS(FN("{}")), USER), IPC_ERR_MISSING_FIELD, "tools[0].function.name" },
        { CHAT(TOOLS(FN("{\"name\":7}")), USER), IPC_ERR_BAD_FIELD, "tools[0].function.name" },
        { CHAT(TOOLS(FN("{\"name\":\"\"}")), USER), IPC_ERR_BAD_FIELD, "non-empty" },
        { CHAT(TOOLS(FN("{\"name\":\"f\",\"description\":[]}")), USER), IPC_ERR_BAD_FIELD,
          "description must be a string" },
        { CHAT(TOOLS(FN("{\"name\":\"f\",\"parameters\":[]}")), USER), IPC_ERR_BAD_FIELD,
          "parameters must be an object" },
        { CHAT(TOOLS(FN("{\"name\":\"f\",\"parameters\":{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{"
                        "\"f\":{\"g\":{\"h\":{\"i\":{\"j\":{\"k\":{\"l\":{\"m\":{\"n\":1}}}}}}}}}}"
                        "}}}}}")),
               USER),
          IPC_ERR_TOO_LARGE, "nests deeper than 16" },
        { CHAT("", CALLS("")), IPC_ERR_BAD_FIELD, "array of 1 to 32 calls" },
        { CHAT("", "{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":{}}"),
          IPC_ERR_BAD_FIELD, "tool_calls must be an array" },
        { CHAT("", CALLS("{\"name\":\"f\"}")), IPC_ERR_BAD_FIELD, "with a 'function' object" },
        { CHAT("", CALLS("{\"function\":{\"name\":\"f\"}}")), IPC_ERR_MISSING_FIELD,
          "arguments must be an object or a string" },
        { CHAT("", CALLS("{\"function\":{\"name\":\"f\",\"arguments\":7}}")), IPC_ERR_BAD_FIELD,
          "arguments must be an object or a string" },
        { CHAT("", CALLS("{\"type\":\"x\",\"function\":{\"name\":\"f\",\"arguments\":{}}}")),
          IPC_ERR_BAD_FIELD, "type must be \"function\"" },
        { CHAT("", CALLS("{\"id\":1,\"function\":{\"name\":\"f\",\"arguments\":{}}}")),
          IPC_ERR_BAD_FIELD, "id must be a string" },
        { CHAT("", "{\"role\":\"assistant\"}"), IPC_ERR_MISSING_FIELD, "has no 'content'" },
        { CHAT("", "{\"role\":\"user\",\"content\":\"x\",\"tool_calls\":[]}"), IPC_ERR_BAD_FIELD,
          "may not hold 'tool_calls'" },
        { CHAT("", "{\"role\":\"user\",\"content\":\"x\",\"tool_call_id\":\"c\"}"),
          IPC_ERR_BAD_FIELD, "may not hold 'tool_call_id'" },
        { CHAT("", "{\"role\":\"tool\",\"content\":\"x\",\"tool_call_id\":5}"), IPC_ERR_BAD_FIELD,
          "tool_call_id must be a string" },
        { CHAT("", "{\"role\":\"tool\",\"content\":\"x\",\"tool_calls\":[]}"), IPC_ERR_BAD_FIELD,
          "may not hold 'tool_calls'" },
        { CHAT("", "{\"role\":\"tool\",\"content\":null}"), IPC_ERR_BAD_FIELD,
          "content must be a string" },
    };
#undef CHAT
#undef USER
#undef TOOLS
#undef FN
#undef CALLS
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ipc_request r;
        struct ipc_error e;
        int k = parse(cases[i].line, &r, &e);
        if (k != -EBADMSG || e.code != cases[i].code || !strstr(e.message, cases[i].says))
            fail_msg("case %zu '%s': got %d, %s: '%s'; want %s: '%s'", i, cases[i].line, k,
                     ipc_err_name(e.code), e.message, ipc_err_name(cases[i].code), cases[i].says);
        assert_null(strchr(e.message, '\n'));
    }
}

/* Built bigger than the limits: too many tools, too many values, too many
 * bytes (they count with the messages against max_text_bytes). */
static void test_chat_tools_huge(void **state)
{
    static const struct ipc_limits big = { .max_text_bytes = 1 << 24, .max_tokens = 512 };
    struct ipc_request r;
    struct ipc_error e;
    size_t cap = 1 << 22, n;
    char *line = malloc(cap);
    const char *tool = "{\"type\":\"function\",\"function\":{\"name\":\"f\"}},";

    /* 129 tools */
    n = (size_t)snprintf(line, cap, "{\"id\":1,\"op\":\"chat\",\"tools\":[");
    for (int i = 0; i < IPC_TOOLS_MAX + 1; i++)
        n += (size_t)snprintf(line + n, cap - n, "%s", tool);
    snprintf(line + n - 1, cap - n + 1, "],\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    assert_int_equal(ipc_request_parse(line, strlen(line), &big, &r, &e), -EBADMSG);
    assert_int_equal(e.code, IPC_ERR_TOO_LARGE);
    assert_non_null(strstr(e.message, "more than 128 tools"));
    /* one tool with 20000 values in its parameters */
    n = (size_t)snprintf(line, cap,
                         "{\"id\":1,\"op\":\"chat\",\"tools\":[{\"type\":\"function\",\"function\":"
                         "{\"name\":\"f\",\"parameters\":{\"enum\":[");
    for (int i = 0; i < 20000; i++)
        n += (size_t)snprintf(line + n, cap - n, "%d,", i);
    snprintf(line + n - 1, cap - n + 1,
             "]}}}],\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    assert_int_equal(ipc_request_parse(line, strlen(line), &big, &r, &e), -EBADMSG);
    assert_int_equal(e.code, IPC_ERR_TOO_LARGE);
    assert_non_null(strstr(e.message, "more than 16384 JSON values"));
    /* a description longer than the text allowed (lim: 1000 bytes) */
    n = (size_t)snprintf(line, cap,
                         "{\"id\":1,\"op\":\"chat\",\"tools\":[{\"type\":\"function\",\"function\":"
                         "{\"name\":\"f\",\"description\":\"%01000d\"}}],\"messages\":[{\"role\":"
                         "\"user\",\"content\":\"x\"}]}",
                         0);
    assert_int_equal(parse(line, &r, &e), -EBADMSG);
    assert_int_equal(e.code, IPC_ERR_TOO_LARGE);
    assert_non_null(strstr(e.message, "messages and tools are longer than 1000 bytes"));
    /* nested 1000 deep (the JSON parser takes it; lade stops at 16) */
    n = (size_t)snprintf(line, cap,
                         "{\"id\":1,\"op\":\"chat\",\"messages\":[{\"role\":\"assistant\","
                         "\"content\":\"\",\"tool_calls\":[{\"function\":{\"name\":\"f\","
                         "\"arguments\":");
    for (int i = 0; i < 1000; i++)
        n += (size_t)snprintf(line + n, cap - n, "[");
    for (int i = 0; i < 1000; i++)
        n += (size_t)snprintf(line + n, cap - n, "]");
    snprintf(line + n, cap - n, "}}]}]}");
    assert_int_equal(ipc_request_parse(line, strlen(line), &big, &r, &e), -EBADMSG);
    assert_int_equal(e.code, IPC_ERR_TOO_LARGE);
    assert_non_null(strstr(e.message, "messages[0].tool_calls nests deeper than 16 levels"));
    free(line);
}

static void test_not_nul_terminated(void **state)
{
    const char buf[] = "{\"id\":1,\"op\":\"info\"}GARBAGE";
    struct ipc_request r;
    struct ipc_error e;

    assert_int_equal(ipc_request_parse(buf, 20, &lim, &r, &e), 0);
    ipc_request_done(&r);
}

static void test_names(void **state)
{
    for (int i = 0; i < IPC_ERR__COUNT; i++)
        assert_non_null(ipc_err_name(i));
    assert_null(ipc_err_name(IPC_ERR__COUNT));
    assert_string_equal(ipc_err_name(IPC_ERR_CONTEXT_EXCEEDED), "context_exceeded");
    assert_string_equal(ipc_op_name(IPC_OP_DETOKENIZE), "detokenize");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_requests),       cmocka_unit_test(test_too_large_text),
        cmocka_unit_test(test_generate_defaults),  cmocka_unit_test(test_generate_full),
        cmocka_unit_test(test_chat_and_others),    cmocka_unit_test(test_chat_tools),
        cmocka_unit_test(test_chat_tools_hostile), cmocka_unit_test(test_chat_tools_huge),
        cmocka_unit_test(test_not_nul_terminated), cmocka_unit_test(test_names),
        cmocka_unit_test(test_float_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
