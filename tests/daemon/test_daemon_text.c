/* daemon/chat.c and daemon/stats.c: the pure text parts (stop strings are
 * decoding/'s: tests/decoding/test_stop.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

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

    *ret = srv_chat_render(t, m, n, &p, err, sizeof(err));
    return *ret == 0 ? p.text : NULL;
}

static void test_chat_render(void **state)
{
    struct ipc_message m[] = {
        { IPC_ROLE_SYSTEM, "Be brief." },
        { IPC_ROLE_USER, "Hi" },
        { IPC_ROLE_ASSISTANT, "Hello" },
        { IPC_ROLE_USER, "Bye" },
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
    struct ipc_message m[] = { { IPC_ROLE_USER, "Hi" }, { IPC_ROLE_USER, "again" } };
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
    assert_int_equal(srv_chat_apply(c, m, 1, &p, err, sizeof(err)), 0);
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
    assert_int_equal(srv_chat_apply(c, m, 1, &p, err, sizeof(err)), 0);
    assert_string_equal(p.text, "[INST] Hi [/INST]");
    srv_chat_prompt_done(&p);
    srv_chat_free(c);

    assert_int_equal(srv_chat_new("{% if %}", NULL, NULL, &c), 0);
    assert_null(srv_chat_format(c));
    assert_non_null(strstr(srv_chat_fallback_reason(c), "line 1, column"));
    assert_int_equal(srv_chat_apply(c, m, 1, &p, err, sizeof(err)), -EOPNOTSUPP);
    srv_chat_free(c);

    assert_int_equal(
            srv_chat_new(
                    "{% for m in messages %}{% if loop.index0 and m.role == messages[loop.index0 - 1].role %}"
                    "{{ raise_exception('roles must alternate') }}{% endif %}{{ m.content }}{% endfor %}",
                    NULL, NULL, &c),
            0);
    assert_int_equal(srv_chat_apply(c, m, 2, &p, err, sizeof(err)), -EINVAL);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chat_detect),
        cmocka_unit_test(test_chat_render),
        cmocka_unit_test(test_chat_jinja),
        cmocka_unit_test(test_stats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
