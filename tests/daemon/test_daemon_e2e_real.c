/* laded with the real engine (bundled stories260K on the Vulkan device lade
 * picks, lavapipe in CI) through a real socket: a streamed generation is
 * the model's greedy text, lookahead on or off; stop strings; tokenize/detokenize round
 * trip; a prompt over the context is refused with context_exceeded and the
 * daemon carries on; cancel mid-stream; SIGTERM during a generation; the
 * tuning logged is the configured one, whatever LADE_MM says. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "e2e.h"

#define MODEL LADE_MODELS_DIR "/stories260K.gguf"

/* What stories260K says after "Once upon a time" (greedy; README of the
 * shared models: the BOS continuation starts with this prompt). */
static const char WANT[] = ", there was a little girl named Lily. She loved to play outside";

static struct e2e e;

/* The tuning comes from [tuning] (step_cache: speed only), never from the
 * LADE_* variables of the tools: a garbage LADE_MM must not matter. */
static int setup(void **state)
{
    const char *extra[] = {"--model", MODEL, "--set", "model.context_length=256",
                           "--set", "tuning.step_cache=16", NULL};
    e2e_init(&e);
    setenv("LADE_MM", "garbage", 1);
    e2e_spawn(&e, e2e_real_engine, extra, -1);
    unsetenv("LADE_MM");
    e2e_wait_ready(&e);
    return 0;
}

static int teardown(void **state)
{
    e2e_cleanup(&e);
    return 0;
}

static void generate(int fd, const char *id, const char *lookahead, char *text, size_t cap)
{
    char req[512];
    snprintf(req, sizeof(req),
             "{\"id\":\"%s\",\"op\":\"generate\",\"prompt\":\"Once upon a time\",\"max_tokens\":24,\"lookahead\":%s}\n",
             id, lookahead);
    e2e_send_str(fd, req);
    json_t *done = e2e_read_final(fd, id, text, cap);
    assert_non_null(done);
    assert_string_equal(e2e_str(done, "event"), "done");
    json_decref(done);
}

static void test_generate_greedy_text(void **state)
{
    int fd = e2e_raw(&e);
    char a[4096] = "", b[4096] = "", c[4096] = "";
    generate(fd, "plain", "false", a, sizeof(a));
    generate(fd, "la", "{\"n\":4,\"w\":4,\"g\":4}", b, sizeof(b));
    generate(fd, "default", "true", c, sizeof(c));
    if (strncmp(a, WANT, strlen(WANT)) != 0)
        fail_msg("got '%s'", a);
    assert_string_equal(a, b);
    assert_string_equal(a, c);
    close(fd);
}

/* HTTP on the same socket: a streamed completion is the same greedy text
 * (the SSE events' text joined), with lade's lookahead object; a chat is
 * refused with 400 (stories260K has no chat template). */
static void test_http_completion(void **state)
{
    struct e2e_resp r;
    char text[4096] = "";
    const char *p;

    assert_int_equal(e2e_post(&e, "/v1/completions", "{\"prompt\":\"Once upon a time\",\"max_tokens\":24,"
                              "\"stream\":true,\"lookahead\":{\"n\":4,\"w\":4,\"g\":4}}", &r), 200);
    for (p = strstr(r.body, "data: {"); p; p = strstr(p + 1, "data: {")) {
        json_t *o = json_loadb(p + 6, strcspn(p + 6, "\n"), 0, NULL);
        assert_non_null(o);
        strcat(text, e2e_str(json_array_get(json_object_get(o, "choices"), 0), "text"));
        json_decref(o);
    }
    if (strncmp(text, WANT, strlen(WANT)) != 0)
        fail_msg("got '%s'", text);
    assert_non_null(strstr(r.body, "\"lookahead\":{\"steps\":"));
    assert_non_null(strstr(r.body, "data: [DONE]\n\n"));
    e2e_resp_done(&r);
    assert_int_equal(e2e_post(&e, "/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}",
                              &r), 400);
    assert_non_null(strstr(r.body, "\"code\":\"unsupported_template\""));
    e2e_resp_done(&r);
}

/* Stop strings are matched by decoding/ on the detokenized text: the
 * completion ends where the stop string begins, inside a token or not,
 * streamed or not, lookahead or not. */
static void test_stop_strings(void **state)
{
    int fd = e2e_raw(&e);
    char text[4096] = "";
    e2e_send_str(fd, "{\"id\":\"s1\",\"op\":\"generate\",\"prompt\":\"Once upon a time\",\"max_tokens\":24,"
                     "\"stop\":[\"amed\"]}\n");
    json_t *done = e2e_read_final(fd, "s1", text, sizeof(text));
    assert_non_null(done);
    assert_string_equal(e2e_str(done, "finish_reason"), "stop");
    assert_string_equal(text, ", there was a little girl n");
    json_decref(done);
    e2e_send_str(fd, "{\"id\":\"s2\",\"op\":\"generate\",\"prompt\":\"Once upon a time\",\"max_tokens\":24,"
                     "\"stop\":[\"zzz\",\"Lily\"],\"stream\":false,\"lookahead\":false}\n");
    done = e2e_read_final(fd, "s2", NULL, 0);
    assert_non_null(done);
    assert_string_equal(e2e_str(done, "finish_reason"), "stop");
    assert_string_equal(e2e_str(done, "text"), ", there was a little girl named ");
    json_decref(done);
    close(fd);
}

static void test_tokenize_and_limits(void **state)
{
    int fd = e2e_raw(&e);
    e2e_send_str(fd, "{\"id\":1,\"op\":\"tokenize\",\"text\":\"Once upon a time\"}\n");
    json_t *r = e2e_read_final(fd, "1", NULL, 0);
    assert_non_null(r);
    char *s = json_dumps(r, JSON_COMPACT);
    assert_non_null(strstr(s, "403,407,261,378"));
    free(s);
    json_decref(r);
    /* 300 words cannot fit a 256-token context */
    char big[4096] = "{\"id\":2,\"op\":\"generate\",\"prompt\":\"";
    for (int i = 0; i < 300; i++)
        strcat(big, "dog ");
    strcat(big, "\"}\n");
    e2e_send_str(fd, big);
    r = e2e_read_final(fd, "2", NULL, 0);
    assert_non_null(r);
    assert_string_equal(e2e_str(r, "event"), "error");
    json_decref(r);
    char text[4096] = "";
    generate(fd, "after", "false", text, sizeof(text)); /* still serving */
    assert_true(strncmp(text, WANT, strlen(WANT)) == 0);
    close(fd);
}

static void test_tuning_logged(void **state)
{
    if (!e2e_log_has(&e, "step_cache=16 ")) {
        e2e_dump_log(&e);
        fail_msg("no 'tuning:' line with [tuning] step_cache=16");
    }
    assert_true(e2e_log_has(&e, "tuning: mm="));
}

static void test_sigterm_mid_generation(void **state)
{
    int fd = e2e_raw(&e);
    e2e_send_str(fd, "{\"id\":\"long\",\"op\":\"generate\",\"prompt\":\"Once\",\"max_tokens\":200}\n");
    json_t *first = e2e_read(fd, 30000);
    assert_non_null(first);
    json_decref(first);
    kill(e.pid, SIGTERM);
    json_t *r = e2e_read_final(fd, "long", NULL, 0);
    assert_non_null(r); /* finished or cancelled within the grace period, never cut off */
    json_decref(r);
    int rc = e2e_wait_exit(&e, 30000);
    if (rc)
        e2e_dump_log(&e);
    assert_int_equal(rc, 0);
    assert_int_equal(access(e.sock, F_OK), -1); /* socket removed */
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate_greedy_text),
        cmocka_unit_test(test_http_completion),
        cmocka_unit_test(test_stop_strings),
        cmocka_unit_test(test_tokenize_and_limits),
        cmocka_unit_test(test_tuning_logged),
        cmocka_unit_test(test_sigterm_mid_generation),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
