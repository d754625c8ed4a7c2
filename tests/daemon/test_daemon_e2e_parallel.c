/* Many clients at once (issue #21), with the real engine (bundled
 * stories260K on the Vulkan device lade picks, lavapipe in CI): six
 * clients' generations, sent together to a daemon that runs four at once,
 * each give the text they give alone (greedy lookahead, plain greedy,
 * seeded sampling), and the stats show the steps were shared; the same
 * prompt again reuses its cached prefix, reported in the done event; when
 * everything is answered nothing is running and every KV region is free. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "e2e.h"

#define MODEL LADE_MODELS_DIR "/stories260K.gguf"
#define N_REQ 6

static struct e2e e;

static const char *const prompts[N_REQ] = {
    "Once upon a time",      "Tom and Sue", "Lily wanted to",
    "One day, a little dog", "The sun was", "Ben had a red ball",
};
static const char *const settings[N_REQ] = {
    "\"lookahead\":true",
    "\"lookahead\":false",
    "\"lookahead\":{\"n\":4,\"w\":3,\"g\":3}",
    "\"temperature\":0.8,\"top_p\":0.9,\"seed\":7",
    "\"temperature\":0.7,\"seed\":11,\"lookahead\":false",
    "\"lookahead\":{\"n\":5,\"w\":2,\"g\":4},\"repeat_penalty\":1.2",
};

static int setup(void **state)
{
    (void)state;
    const char *extra[] = { "--model", MODEL,
                            "--set",   "model.context_length=256",
                            "--set",   "daemon.max_parallel=4",
                            "--set",   "model.kv_cache_size=0",
                            NULL };
    e2e_start(&e, e2e_real_engine, extra);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    e2e_cleanup(&e);
    return 0;
}

static void send_req(int fd, int i, const char *tag)
{
    char req[1024];
    snprintf(req, sizeof(req),
             "{\"id\":\"%s%d\",\"op\":\"generate\",\"prompt\":\"%s\",\"max_tokens\":32,%s}\n", tag,
             i, prompts[i], settings[i]);
    e2e_send_str(fd, req);
}

static json_t * final(int fd, int i, const char *tag, char *text, size_t cap)
{
    char id[32];
    snprintf(id, sizeof(id), "%s%d", tag, i);
    json_t *done = e2e_read_final(fd, id, text, cap);
    if (!done || strcmp(e2e_str(done, "event"), "done") != 0) {
        e2e_dump_log(&e);
        fail_msg("request %s: no done event", id);
    }
    return done;
}

static json_t *stats(int fd)
{
    e2e_send_str(fd, "{\"id\":\"st\",\"op\":\"stats\"}\n");
    json_t *r = e2e_read_final(fd, "st", NULL, 0);
    assert_non_null(r);
    return r;
}

static void test_together_equals_alone(void **state)
{
    (void)state;
    static char alone[N_REQ][4096], together[N_REQ][4096];
    int fd = e2e_raw(&e);
    for (int i = 0; i < N_REQ; i++) {
        send_req(fd, i, "a");
        json_decref(final(fd, i, "a", alone[i], sizeof(alone[i])));
    }
    json_t *before = stats(fd);
    int fds[N_REQ];
    for (int i = 0; i < N_REQ; i++)
        fds[i] = e2e_raw(&e);
    for (int i = 0; i < N_REQ; i++)
        send_req(fds[i], i, "t");
    for (int i = 0; i < N_REQ; i++) {
        json_decref(final(fds[i], i, "t", together[i], sizeof(together[i])));
        if (strcmp(alone[i], together[i]) != 0)
            fail_msg("request %d (%s): alone '%s', together '%s'", i, settings[i], alone[i],
                     together[i]);
        close(fds[i]);
    }
    json_t *after = stats(fd);
    json_t *b0 = json_object_get(json_object_get(before, "stats"), "batch");
    json_t *b1 = json_object_get(json_object_get(after, "stats"), "batch");
    assert_non_null(b1);
    json_int_t steps = json_integer_value(json_object_get(b1, "model_steps")) -
                       json_integer_value(json_object_get(b0, "model_steps"));
    json_int_t seq_steps = json_integer_value(json_object_get(b1, "sequence_steps")) -
                           json_integer_value(json_object_get(b0, "sequence_steps"));
    fprintf(stderr, "together: %lld model steps carried %lld sequences' steps\n", (long long)steps,
            (long long)seq_steps);
    assert_true(steps > 0);
    assert_true(seq_steps > steps); /* shared */
    assert_int_equal(json_integer_value(json_object_get(b1, "kv_sequences")), 4);
    /* Everything answered: nothing runs, every region is free (idle,
     * holding a prompt or empty) */
    assert_int_equal(
            json_integer_value(json_object_get(json_object_get(after, "stats"), "running")), 0);
    json_decref(before);
    json_decref(after);
    close(fd);
}

static void test_same_prompt_reuses_prefix(void **state)
{
    (void)state;
    int fd = e2e_raw(&e);
    char a[4096] = "", b[4096] = "";
    send_req(fd, 0, "r");
    json_t *d1 = final(fd, 0, "r", a, sizeof(a));
    send_req(fd, 0, "s");
    json_t *d2 = final(fd, 0, "s", b, sizeof(b));
    assert_string_equal(a, b);
    json_int_t n = e2e_int(d2, "stats", "prompt_tokens");
    json_int_t reused = e2e_int(d2, "stats", "prompt_tokens_reused");
    fprintf(stderr, "second time: %lld of %lld prompt tokens reused\n", (long long)reused,
            (long long)n);
    assert_int_equal(reused, n - 1);
    json_decref(d1);
    json_decref(d2);
    json_t *st = stats(fd);
    assert_true(json_integer_value(json_object_get(
                        json_object_get(json_object_get(st, "stats"), "batch"), "prefix_hits")) >=
                1);
    json_decref(st);
    close(fd);
}

/* Two clients with one system prompt: the second, sent while the first
 * still generates, gets the prompt's K/V copied from the first's region
 * and prefills only its own question. */
static void test_system_prompt_shared_while_running(void **state)
{
    (void)state;
    const char *sys = "Lily and Ben were friends. They liked to play in the park every day. ";
    char req[1024], a_text[8192] = "", b_text[4096] = "";
    int fa = e2e_raw(&e), fb = e2e_raw(&e);
    snprintf(req, sizeof(req),
             "{\"id\":\"sa\",\"op\":\"generate\",\"prompt\":\"%sOne day\",\"max_tokens\":200,"
             "\"lookahead\":false}\n",
             sys);
    e2e_send_str(fa, req);
    json_t *ev = e2e_read(fa, 10000); /* its first token: its prompt is in its region */
    assert_non_null(ev);
    json_decref(ev);
    snprintf(req, sizeof(req),
             "{\"id\":\"sb\",\"op\":\"generate\",\"prompt\":\"%sThe sun\",\"max_tokens\":8}\n",
             sys);
    e2e_send_str(fb, req);
    json_t *db = e2e_read_final(fb, "sb", b_text, sizeof(b_text));
    json_t *da = e2e_read_final(fa, "sa", a_text, sizeof(a_text));
    assert_non_null(da);
    assert_non_null(db);
    json_int_t n = e2e_int(db, "stats", "prompt_tokens");
    json_int_t reused = e2e_int(db, "stats", "prompt_tokens_reused");
    fprintf(stderr, "second client: %lld of %lld prompt tokens from the first's region\n",
            (long long)reused, (long long)n);
    assert_true(reused >= 15);
    assert_true(reused < n);
    json_decref(da);
    json_decref(db);
    close(fa);
    close(fb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_together_equals_alone),
        cmocka_unit_test(test_same_prompt_reuses_prefix),
        cmocka_unit_test(test_system_prompt_shared_while_running),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
