/* daemon/chat.c and daemon/stats.c: the pure text parts (stop strings are
 * decoding/'s: tests/decoding/test_stop.c). Tool conversations go the
 * daemon's way, a request line or an OpenAI body parsed by ipc/ and
 * rendered by srv_chat_apply, and must give @huggingface/jinja's
 * rendering (tests/llama/data/jinja-templates.json). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "daemon/chat.h"
#include "daemon/stats.h"

static void test_chat_detect(void **state)
{
    assert_int_equal(srv_chat_detect(NULL), SRV_TMPL_NONE);
    assert_int_equal(srv_chat_detect("{{ bos_token }}{% for m in messages %}"), SRV_TMPL_NONE);
    assert_int_equal(
            srv_chat_detect(
                    "{% if m['role'] == 'user' %}{{ '[INST] ' + m['content'] + ' [/INST]' }}"),
            SRV_TMPL_LLAMA2);
    assert_int_equal(srv_chat_detect("{{'<|im_start|>' + m['role'] + '\n'}}"), SRV_TMPL_CHATML);
    assert_int_equal(srv_chat_detect("<|user|>\n{{ m }}</s>\n<|assistant|>"), SRV_TMPL_ZEPHYR);
}

static char *render(enum srv_tmpl t, const struct ipc_message *m, uint32_t n, int *ret)
{
    struct srv_chat_prompt p;
    char err[128];

    *ret = srv_chat_render(t, m, n, NULL, &p, err, sizeof(err));
    return *ret == 0 ? p.text : NULL;
}

static void test_chat_render(void **state)
{
    struct ipc_message m[] = {
        { .role = IPC_ROLE_SYSTEM, .content = "Be brief." },
        { .role = IPC_ROLE_USER, .content = "Hi" },
        { .role = IPC_ROLE_ASSISTANT, .content = "Hello" },
        { .role = IPC_ROLE_USER, .content = "Bye" },
    };
    int r;
    char *s = render(SRV_TMPL_LLAMA2, m, 4, &r);

    assert_string_equal(
            s, "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello </s><s>[INST] Bye [/INST]");
    free(s);
    s = render(SRV_TMPL_CHATML, m, 2, &r);
    assert_string_equal(
            s,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    free(s);
    s = render(SRV_TMPL_ZEPHYR, m + 1, 1, &r);
    assert_string_equal(s, "<|user|>\nHi</s>\n<|assistant|>\n");
    free(s);
    assert_null(render(SRV_TMPL_LLAMA2, m, 3, &r)); /* ends with the assistant */
    assert_int_equal(r, -EINVAL);
    s = render(SRV_TMPL_LLAMA2, m + 1, 1, &r); /* no system message */
    assert_string_equal(s, "[INST] Hi [/INST]");
    free(s);
    assert_null(render(SRV_TMPL_NONE, m, 2, &r));
    assert_int_equal(r, -EOPNOTSUPP);
}

/* The model's own template through the Jinja interpreter; a leading BOS
 * text becomes add_bos; a template that cannot render falls back by family,
 * with the reason; one that the conversation trips gives its message. */
static void test_chat_jinja(void **state)
{
    struct ipc_message m[] = { { .role = IPC_ROLE_USER, .content = "Hi" },
                               { .role = IPC_ROLE_USER, .content = "again" } };
    struct srv_chat *c = NULL;
    struct srv_chat_prompt p;
    char err[256];

    assert_int_equal(
            srv_chat_new(
                    "{{ bos_token }}{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}"
                    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
                    "<s>", "</s>", &c),
            0);
    assert_string_equal(srv_chat_format(c), "jinja");
    assert_null(srv_chat_fallback_reason(c));
    assert_int_equal(srv_chat_apply(c, m, 1, NULL, &p, err, sizeof(err)), 0);
    assert_string_equal(p.text, "<|im_start|>user\nHi<|im_start|>assistant\n");
    assert_true(p.add_bos);
    assert_string_equal(p.stop, "<|im_end|>");
    srv_chat_prompt_done(&p);
    srv_chat_free(c);

    assert_int_equal(
            srv_chat_new("{% for m in messages %}[INST] {{ m.content | nosuch }}{% endfor %}", NULL,
                         NULL, &c),
            0);
    assert_string_equal(srv_chat_format(c), "llama2");
    assert_non_null(strstr(srv_chat_fallback_reason(c), "nosuch"));
    assert_int_equal(srv_chat_apply(c, m, 1, NULL, &p, err, sizeof(err)), 0);
    assert_string_equal(p.text, "[INST] Hi [/INST]");
    srv_chat_prompt_done(&p);
    srv_chat_free(c);

    assert_int_equal(srv_chat_new("{% if %}", NULL, NULL, &c), 0);
    assert_null(srv_chat_format(c));
    assert_non_null(strstr(srv_chat_fallback_reason(c), "line 1, column"));
    assert_int_equal(srv_chat_apply(c, m, 1, NULL, &p, err, sizeof(err)), -EOPNOTSUPP);
    srv_chat_free(c);

    assert_int_equal(
            srv_chat_new(
                    "{% for m in messages %}{% if loop.index0 and m.role == messages[loop.index0 - 1].role %}"
                    "{{ raise_exception('roles must alternate') }}{% endif %}{{ m.content }}{% endfor %}",
                    NULL, NULL, &c),
            0);
    assert_int_equal(srv_chat_apply(c, m, 2, NULL, &p, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "roles must alternate"));
    srv_chat_free(c);

    assert_int_equal(srv_chat_new(NULL, NULL, NULL, &c), 0);
    assert_null(srv_chat_format(c));
    assert_null(srv_chat_fallback_reason(c));
    srv_chat_free(c);
}

static void test_stats(void **state)
{
    struct srv_stats s = { .start_ns = 0 };
    struct dec_result g = {
        .finish = DEC_FINISH_LENGTH,
        .n_tokens = 10,
        .stats = { .steps = 4, .draft_tokens = 20, .accepted_tokens = 6, .step_ms_total = 500 }
    };
    char *prom;
    json_t *j;

    s.requests[IPC_OP_GENERATE] = 2;
    srv_stats_add_generation(&s, 3, &g);
    g.finish = DEC_FINISH_EOS;
    srv_stats_add_generation(&s, 3, &g);
    j = srv_stats_json(&s, 1000000000);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "generated_tokens")), 20);
    assert_true(json_real_value(json_object_get(j, "tokens_per_step")) == 2.5);
    assert_true(json_real_value(json_object_get(j, "tokens_per_s")) == 20.0);
    json_decref(j);
    prom = srv_stats_prometheus(&s, 1000000000);
    assert_non_null(prom);
    assert_non_null(strstr(
            prom, "# TYPE lade_generated_tokens_total counter\nlade_generated_tokens_total 20\n"));
    assert_non_null(strstr(prom, "lade_requests_total{op=\"generate\"} 2\n"));
    assert_non_null(strstr(prom, "lade_generations_total{finish_reason=\"eos\"} 1\n"));
    assert_non_null(strstr(prom, "lade_tokens_per_step 2.5000\n"));
    assert_non_null(strstr(prom, "lade_acceptance_ratio 0.3000\n"));
    free(prom);
}

/* ---- tools through the request path, against the reference ------------ */

static const struct ipc_limits big = { .max_text_bytes = 1 << 20, .max_tokens = 512 };

/* The conversation as OpenAI clients send it: each call's arguments a
 * string of JSON (ipc/openai.c turns it back into the object). */
static json_t *openai_body(json_t *conv, json_t *tools)
{
    json_t *msgs = json_deep_copy(conv), *m, *c;
    size_t i, j;
    json_array_foreach(msgs, i, m)
    {
        json_array_foreach(json_object_get(m, "tool_calls"), j, c)
        {
            json_t *f = json_object_get(c, "function");
            char *args = json_dumps(json_object_get(f, "arguments"), JSON_COMPACT);
            json_object_set_new(f, "arguments", json_string(args));
            free(args);
        }
    }
    json_t *body = json_pack("{s:o}", "messages", msgs);
    if (tools)
        json_object_set(body, "tools", tools);
    return body;
}

/* Whether a conversation's calls carry their arguments as strings. */
static bool string_arguments(json_t *conv)
{
    json_t *m, *c;
    size_t i, j;
    json_array_foreach(conv, i, m)
    {
        json_array_foreach(json_object_get(m, "tool_calls"), j, c)
        {
            if (json_is_string(json_object_get(json_object_get(c, "function"), "arguments")))
                return true;
        }
    }
    return false;
}

/* One case rendered from a parsed request; 0 when it is the reference (its
 * text, or its error), else 1 with what differs printed. */
static int render_case(const struct srv_chat *chat, const struct ipc_request *rq, const char *bos,
                       json_t *c, const char *what)
{
    struct srv_chat_prompt p;
    char err[256] = "", *text = NULL;
    const char *want = json_string_value(json_object_get(c, "expected"));
    int r = srv_chat_apply(chat, rq->messages, rq->n_messages, rq->tools, &p, err, sizeof(err));
    if (r == 0) {
        /* the BOS text laded takes off becomes the tokenizer's id */
        text = malloc(strlen(bos) + p.len + 1);
        sprintf(text, "%s%s", p.add_bos ? bos : "", p.text);
        srv_chat_prompt_done(&p);
    }
    int bad = want ? !text || strcmp(text, want) : r != -EINVAL;
    if (bad)
        printf("%s: %s\n--- got\n%s\n--- want\n%s\n", what, err, text ? text : "(error)",
               want ? want : json_string_value(json_object_get(c, "error")));
    free(text);
    return bad;
}

static void test_chat_tools_reference(void **state)
{
    json_error_t je;
    json_t *root = json_load_file(LADE_SOURCE_DIR "/tests/llama/data/jinja-templates.json", 0, &je);
    json_t *tpl, *c;
    size_t i, j, n = 0, bad = 0;
    if (!root)
        fail_msg("jinja-templates.json: %s", je.text);
    json_array_foreach(json_object_get(root, "templates"), i, tpl)
    {
        const char *name = json_string_value(json_object_get(tpl, "name"));
        const char *bos = json_string_value(json_object_get(tpl, "bos_token"));
        struct srv_chat *chat = NULL;
        if (strcmp(name, "qwen2.5") && strcmp(name, "qwen3") && strcmp(name, "llama3.1-tools"))
            continue;
        assert_int_equal(srv_chat_new(json_string_value(json_object_get(tpl, "template")), bos,
                                      json_string_value(json_object_get(tpl, "eos_token")), &chat),
                         0);
        assert_string_equal(srv_chat_format(chat), "jinja");
        json_array_foreach(json_object_get(tpl, "cases"), j, c)
        {
            json_t *conv =
                    json_array_get(json_object_get(root, "conversations"),
                                   (size_t)json_integer_value(json_object_get(c, "conversation")));
            json_t *tools = json_is_true(json_object_get(c, "tools")) ?
                                    json_object_get(root, "tools") :
                                    NULL;
            /* laded always asks for the reply's header, and passes no
             * template variables of its own (Qwen3's enable_thinking) */
            if (!json_is_true(json_object_get(c, "add_generation_prompt")) ||
                json_object_get(c, "extra") ||
                (!tools && !json_object_get(json_array_get(conv, 1), "tool_calls")))
                continue;
            char what[96];
            struct ipc_request rq;
            struct ipc_error ie;
            json_t *line = json_pack("{s:i, s:s, s:O}", "id", 1, "op", "chat", "messages", conv);
            if (tools)
                json_object_set(line, "tools", tools);
            char *text = json_dumps(line, JSON_COMPACT);
            if (ipc_request_parse(text, strlen(text), &big, &rq, &ie) < 0)
                fail_msg("%s case %zu: %s", name, j, ie.message);
            snprintf(what, sizeof(what), "%s case %zu (NDJSON)", name, j);
            bad += render_case(chat, &rq, bos ? bos : "", c, what);
            ipc_request_done(&rq);
            free(text);
            json_decref(line);
            n++;
            if (string_arguments(conv))
                continue; /* OpenAI's strings become objects: not the reference's input */
            struct ipc_oai_opts o;
            struct ipc_oai_error oe;
            json_t *body = openai_body(conv, tools);
            text = json_dumps(body, JSON_COMPACT);
            if (ipc_oai_request(IPC_OAI_CHAT, text, strlen(text), NULL, 1, &big, &rq, &o, &oe) < 0)
                fail_msg("%s case %zu: %s", name, j, oe.message);
            snprintf(what, sizeof(what), "%s case %zu (OpenAI)", name, j);
            bad += render_case(chat, &rq, bos ? bos : "", c, what);
            ipc_request_done(&rq);
            free(text);
            json_decref(body);
            n++;
        }
        srv_chat_free(chat);
    }
    json_decref(root);
    print_message("%zu renderings of tool conversations, %zu differ from the reference\n", n, bad);
    assert_true(n >= 30);
    assert_int_equal(bad, 0);
}

/* The built-in formats have no way to say tools: refused, saying why. */
static void test_chat_tools_fallback(void **state)
{
    struct srv_chat_prompt p;
    char err[256];
    json_t *tools = json_loads("[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]", 0, NULL);
    struct ipc_message m[] = {
        { .role = IPC_ROLE_USER, .content = "Hi" },
        { .role = IPC_ROLE_TOOL, .content = "42" },
    };
    assert_int_equal(srv_chat_render(SRV_TMPL_CHATML, m, 1, tools, &p, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "tools need the model's own chat template"));
    assert_non_null(strstr(err, "'chatml'"));
    assert_int_equal(srv_chat_render(SRV_TMPL_CHATML, m, 2, NULL, &p, err, sizeof(err)), -EINVAL);
    assert_int_equal(srv_chat_render(SRV_TMPL_CHATML, m, 1, NULL, &p, err, sizeof(err)), 0);
    srv_chat_prompt_done(&p);
    json_decref(tools);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chat_detect),         cmocka_unit_test(test_chat_render),
        cmocka_unit_test(test_chat_jinja),          cmocka_unit_test(test_chat_tools_reference),
        cmocka_unit_test(test_chat_tools_fallback), cmocka_unit_test(test_stats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
