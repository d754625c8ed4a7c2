/* laded with the real engine (bundled stories260K on the Vulkan device lade
 * picks, lavapipe in CI) through a real socket: a streamed generation is
 * the model's greedy text, lookahead on or off; stop strings; tokenize/detokenize round
 * trip; a prompt over the context is refused with context_exceeded and the
 * daemon carries on; cancel mid-stream; SIGTERM during a generation; the
 * tuning logged is the configured one, whatever LADE_MM says; the lookahead
 * caps info advertises run, and SIGHUP reaches the engine (issue #20). */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

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
    const char *extra[] = {
        "--model", MODEL, "--set", "model.context_length=256", "--set", "tuning.step_cache=16", NULL
    };
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
    snprintf(
            req, sizeof(req),
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

    assert_int_equal(e2e_post(&e, "/v1/completions",
                              "{\"prompt\":\"Once upon a time\",\"max_tokens\":24,"
                              "\"stream\":true,\"lookahead\":{\"n\":4,\"w\":4,\"g\":4}}",
                              &r),
                     200);
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
    assert_int_equal(e2e_post(&e, "/v1/chat/completions",
                              "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}", &r),
                     400);
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
    e2e_send_str(
            fd,
            "{\"id\":\"s1\",\"op\":\"generate\",\"prompt\":\"Once upon a time\",\"max_tokens\":24,"
            "\"stop\":[\"amed\"]}\n");
    json_t *done = e2e_read_final(fd, "s1", text, sizeof(text));
    assert_non_null(done);
    assert_string_equal(e2e_str(done, "finish_reason"), "stop");
    assert_string_equal(text, ", there was a little girl n");
    json_decref(done);
    e2e_send_str(
            fd,
            "{\"id\":\"s2\",\"op\":\"generate\",\"prompt\":\"Once upon a time\",\"max_tokens\":24,"
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

/* Special-token text through the daemon (issue #18): with "special",
 * "</s><s>" in the text is stories260K's EOS and BOS ids (2, 1); without
 * it, plain text that yields neither id. */
static void test_special_text(void **state)
{
    (void)state;
    int fd = e2e_raw(&e);
    e2e_send_str(fd, "{\"id\":1,\"op\":\"tokenize\",\"text\":\"</s><s>Once\",\"special\":true}\n");
    json_t *r = e2e_read_final(fd, "1", NULL, 0);
    assert_non_null(r);
    json_t *t = json_object_get(r, "tokens");
    assert_true(json_array_size(t) >= 3);
    assert_int_equal(json_integer_value(json_array_get(t, 0)), 2);
    assert_int_equal(json_integer_value(json_array_get(t, 1)), 1);
    json_decref(r);
    e2e_send_str(fd, "{\"id\":2,\"op\":\"tokenize\",\"text\":\"</s><s>Once\"}\n");
    r = e2e_read_final(fd, "2", NULL, 0);
    assert_non_null(r);
    t = json_object_get(r, "tokens");
    assert_true(json_array_size(t) > 3);
    for (size_t i = 0; i < json_array_size(t); i++) {
        json_int_t id = json_integer_value(json_array_get(t, i));
        assert_true(id != 1 && id != 2);
    }
    json_decref(r);
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

/* Issue #20: info advertises the lookahead caps the model runs (the
 * defaults (8, 32, 32) need 448 rows a step, the model takes 256), a
 * request at them runs and gives the greedy text, one past is refused at
 * once as out_of_range. */
static void lookahead_edge(int fd, json_int_t n, json_int_t w, json_int_t g)
{
    char la[128], text[4096] = "";
    const char *req =
            "{\"id\":\"r\",\"op\":\"generate\",\"prompt\":\"Once upon a time\",\"max_tokens\":24,"
            "\"lookahead\":{\"n\":%lld,\"w\":%lld,\"g\":%lld}}\n";
    char line[512];

    snprintf(la, sizeof(la), "{\"n\":%lld,\"w\":%lld,\"g\":%lld}", (long long)n, (long long)w,
             (long long)g);
    generate(fd, "edge", la, text, sizeof(text));
    if (strncmp(text, WANT, strlen(WANT)) != 0)
        fail_msg("lookahead %s: got '%s'", la, text);
    snprintf(line, sizeof(line), req, (long long)n + 1, (long long)w, (long long)g);
    e2e_send_str(fd, line);
    e2e_expect_error(e2e_read_final(fd, "r", NULL, 0), "out_of_range",
                     n < 16 ? "max_n" : "[2, 16]");
    snprintf(line, sizeof(line), req, (long long)n, (long long)w + 1, (long long)g);
    e2e_send_str(fd, line);
    e2e_expect_error(e2e_read_final(fd, "r", NULL, 0), "out_of_range", "max_w");
    snprintf(line, sizeof(line), req, (long long)n, (long long)w, (long long)g + 1);
    e2e_send_str(fd, line);
    e2e_expect_error(e2e_read_final(fd, "r", NULL, 0), "out_of_range", "max_g");
}

static void test_advertised_caps_run(void **state)
{
    int fd = e2e_raw(&e);
    json_t *r = e2e_info(fd);

    assert_int_equal(e2e_int(r, "lookahead", "n_max"), 8);
    assert_int_equal(e2e_int(r, "lookahead", "w_max"), 18);
    assert_int_equal(e2e_int(r, "lookahead", "g_max"), 18);
    json_decref(r);
    lookahead_edge(fd, 8, 18, 18);
    close(fd);
}

/* SIGHUP raises the caps and max_tokens past what the engine was loaded
 * with (they failed as internal before), turns the lookahead features
 * off, then lowers everything: the new edges run, one past is refused. */
static void test_reload_reaches_the_engine(void **state)
{
    int fd = e2e_raw(&e);
    json_t *r = e2e_reload(&e, fd,
                           "[lookahead]\nmax_n = 16\nmax_w = 128\nmax_g = 128\nbonus_token = no\n"
                           "seed_pool = no\n[limits]\nmax_tokens = 5000\n");
    json_int_t n = e2e_int(r, "lookahead", "n_max"), w = e2e_int(r, "lookahead", "w_max"),
               g = e2e_int(r, "lookahead", "g_max");
    assert_int_equal(n, 16);
    assert_true(w >= 1 && g >= 1); /* N 16 takes 15 rows a column: W and G gave way */
    assert_int_equal(e2e_int(r, "limits", "max_tokens"), 5000);
    json_decref(r);
    lookahead_edge(fd, n, w, g);
    e2e_send_str(fd, "{\"id\":\"r\",\"op\":\"generate\",\"prompt\":\"Once\",\"max_tokens\":5000,"
                     "\"stream\":false,\"lookahead\":{\"n\":4,\"w\":2,\"g\":2}}\n");
    e2e_expect_done(e2e_read_final(fd, "r", NULL, 0)); /* 5000 > 4096, the max_tokens at load */
    r = e2e_reload(&e, fd,
                   "[lookahead]\nmax_n = 3\nmax_w = 2\nmax_g = 1\n[limits]\nmax_tokens = 24\n");
    json_decref(r);
    lookahead_edge(fd, 3, 2, 1);
    e2e_send_str(fd, "{\"id\":\"r\",\"op\":\"generate\",\"prompt\":\"Once\",\"max_tokens\":25}\n");
    e2e_expect_error(e2e_read_final(fd, "r", NULL, 0), "out_of_range", "max_tokens");
    json_decref(e2e_reload(&e, fd, ""));
    close(fd);
}

/* Numbers a float cannot hold are out_of_range, not internal. */
static void test_floats_refused(void **state)
{
    int fd = e2e_raw(&e);

    e2e_send_str(
            fd,
            "{\"id\":\"r\",\"op\":\"generate\",\"prompt\":\"Once\",\"top_p\":1e-300,\"temperature\":0.8}\n");
    e2e_expect_error(e2e_read_final(fd, "r", NULL, 0), "out_of_range", "top_p");
    e2e_send_str(fd,
                 "{\"id\":\"r\",\"op\":\"generate\",\"prompt\":\"Once\",\"temperature\":1e39}\n");
    e2e_expect_error(e2e_read_final(fd, "r", NULL, 0), "out_of_range", "temperature");
    close(fd);
}

static void test_sigterm_mid_generation(void **state)
{
    int fd = e2e_raw(&e);
    json_t *r = e2e_sigterm_during(
            &e, fd,
            "{\"id\":\"long\",\"op\":\"generate\",\"prompt\":\"Once\",\"max_tokens\":200}\n",
            "long");
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
        cmocka_unit_test(test_special_text),
        cmocka_unit_test(test_tuning_logged),
        cmocka_unit_test(test_advertised_caps_run),
        cmocka_unit_test(test_reload_reaches_the_engine),
        cmocka_unit_test(test_floats_refused),
        cmocka_unit_test(test_sigterm_mid_generation),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
