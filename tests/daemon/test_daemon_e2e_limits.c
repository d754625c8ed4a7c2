/* Issue #20, "limits have several owners", end to end on the toy engine
 * (a model of 64 rows a step): SIGHUP raises and lowers every reloadable
 * key and the next requests see it, accepted at each new edge and refused
 * just past it with out_of_range; the lookahead caps info advertises are
 * the ones the model runs; numbers a float cannot hold are out_of_range;
 * an engine refusal is out_of_range with its reason, never internal. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "e2e.h"

#define MAX_ROWS 64

static struct e2e d;
static int fd;

static int up(void **state)
{
    e2e_start(&d, "max_rows=64", NULL);
    fd = e2e_raw(&d);
    return 0;
}

static int down(void **state)
{
    close(fd);
    e2e_cleanup(&d);
    return 0;
}

/* One request line; returns its final event (done or error). */
static json_t *request(const char *fmt, ...)
{
    char line[4096];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    strcat(line, "\n");
    e2e_send_str(fd, line);
    json_t *r = e2e_read_final(fd, "r", NULL, 0);
    assert_non_null(r);
    return r;
}

/* Sends line (id "r") while "slow" runs on the same connection; the final
 * event of "r" must be r_event (with r_code for an error), and "slow"
 * must end done. */
static void beside_slow(const char *line, const char *r_event, const char *r_code)
{
    bool r_seen = false, slow_seen = false;

    e2e_send_str(fd, line);
    while (!r_seen || !slow_seen) {
        json_t *ev = e2e_read(fd, 10000);
        assert_non_null(ev);
        const char *id = e2e_str(ev, "id"), *kind = e2e_str(ev, "event");
        if (strcmp(kind, "token") != 0 && strcmp(id, "r") == 0) {
            assert_string_equal(kind, r_event);
            if (r_code)
                assert_string_equal(e2e_str(ev, "code"), r_code);
            r_seen = true;
        } else if (strcmp(kind, "token") != 0 && strcmp(id, "slow") == 0) {
            assert_string_equal(kind, "done");
            slow_seen = true;
        }
        json_decref(ev);
    }
}

/* A generation at (n, w, g) is done; each one past it is out_of_range. */
static void lookahead_edge(json_int_t n, json_int_t w, json_int_t g)
{
    const char *req = "{\"id\":\"r\",\"op\":\"generate\",\"prompt\":\"hi\",\"max_tokens\":40,"
                      "\"lookahead\":{\"n\":%lld,\"w\":%lld,\"g\":%lld}}";

    e2e_expect_done(request(req, n, w, g));
    e2e_expect_error(request(req, n + 1, w, g), "out_of_range", "max_n");
    e2e_expect_error(request(req, n, w + 1, g), "out_of_range", "max_w");
    e2e_expect_error(request(req, n, w, g + 1), "out_of_range", "max_g");
}

/* The tokens of each step of one lookahead generation (token events). */
static unsigned step_sizes(const char *lookahead, unsigned *sizes, unsigned cap)
{
    char line[256];
    unsigned n = 0;

    snprintf(line, sizeof(line),
             "{\"id\":\"s\",\"op\":\"generate\",\"prompt\":\"hi\",\"max_tokens\":30,"
             "\"lookahead\":%s}\n",
             lookahead);
    e2e_send_str(fd, line);
    for (;;) {
        json_t *ev = e2e_read(fd, 10000);
        assert_non_null(ev);
        const char *kind = e2e_str(ev, "event");
        if (strcmp(kind, "token") == 0 && n < cap)
            sizes[n++] = (unsigned)json_array_size(json_object_get(ev, "tokens"));
        bool last = strcmp(kind, "token") != 0;
        if (last)
            assert_string_equal(kind, "done");
        json_decref(ev);
        if (last)
            return n;
    }
}

static unsigned largest(const unsigned *v, unsigned n)
{
    unsigned m = 0;
    for (unsigned i = 0; i < n; i++)
        m = v[i] > m ? v[i] : m;
    return m;
}

/* The default caps (8, 32, 32) do not fit 64 rows: info advertises the
 * fitted ones, which run, and nothing past them. */
static void test_advertised_caps_run(void **state)
{
    json_t *r = e2e_info(fd);
    json_int_t n = e2e_int(r, "lookahead", "n_max"), w = e2e_int(r, "lookahead", "w_max"),
               g = e2e_int(r, "lookahead", "g_max");

    assert_true(n == 8 && w < 32 && g < 32);
    json_decref(r);
    lookahead_edge(n, w, g);
}

static void test_reload_lookahead_caps(void **state)
{
    /* raised: the configured (16, 128, 128) come down to what 64 rows run */
    json_t *r = e2e_reload(&d, fd, "[lookahead]\nmax_n = 16\nmax_w = 128\nmax_g = 128\n");
    json_int_t n = e2e_int(r, "lookahead", "n_max"), w = e2e_int(r, "lookahead", "w_max"),
               g = e2e_int(r, "lookahead", "g_max");
    json_decref(r);
    assert_true(n > 8 && n <= 16 && w >= 1 && g >= 1);
    lookahead_edge(n, w, g);
    /* lowered */
    r = e2e_reload(&d, fd, "[lookahead]\nmax_n = 4\nmax_w = 2\nmax_g = 3\n");
    assert_int_equal(e2e_int(r, "lookahead", "n_max"), 4);
    assert_int_equal(e2e_int(r, "lookahead", "w_max"), 2);
    assert_int_equal(e2e_int(r, "lookahead", "g_max"), 3);
    json_decref(r);
    lookahead_edge(4, 2, 3);
    /* the defaults a request gets follow [lookahead] n, w, g */
    r = e2e_reload(&d, fd, "[lookahead]\nn = 3\nw = 2\ng = 1\nmax_n = 4\nmax_w = 2\nmax_g = 3\n");
    assert_int_equal(e2e_int(r, "lookahead", "n"), 3);
    assert_int_equal(e2e_int(r, "lookahead", "w"), 2);
    assert_int_equal(e2e_int(r, "lookahead", "g"), 1);
    json_decref(r);
    r = request("{\"id\":\"r\",\"op\":\"generate\",\"prompt\":\"hi\",\"max_tokens\":40}");
    /* the toy engine verifies g n-grams of n - 1 a step: 1 * 2 each */
    assert_int_equal(e2e_int(r, "stats", "draft_tokens") % 2, 0);
    assert_int_equal(e2e_int(r, "stats", "draft_tokens"), 2 * e2e_int(r, "stats", "steps"));
    json_decref(r);
}

static void test_reload_max_tokens(void **state)
{
    /* not streamed: 5000 token events could outrun this reader's output buffer */
    const char *req =
            "{\"id\":\"r\",\"op\":\"generate\",\"prompt\":\"hi\",\"max_tokens\":%d,\"stream\":false}";

    json_decref(e2e_reload(&d, fd, "[limits]\nmax_tokens = 5000\n"));
    e2e_expect_done(request(req, 5000));
    e2e_expect_error(request(req, 5001), "out_of_range", "max_tokens");
    json_decref(e2e_reload(&d, fd, "[limits]\nmax_tokens = 10\n"));
    e2e_expect_done(request(req, 10));
    e2e_expect_error(request(req, 11), "out_of_range", "max_tokens");
    /* default_max_tokens, raised and lowered, and capped by max_tokens */
    json_decref(e2e_reload(&d, fd, "[limits]\ndefault_max_tokens = 7\n"));
    json_t *r = request("{\"id\":\"r\",\"op\":\"generate\",\"prompt\":\"hi\"}");
    assert_int_equal(e2e_int(r, "stats", "generated_tokens"), 7);
    json_decref(r);
    json_decref(e2e_reload(&d, fd, "[limits]\ndefault_max_tokens = 300\nmax_tokens = 299\n"));
    r = request("{\"id\":\"r\",\"op\":\"generate\",\"prompt\":\"hi\",\"stream\":false}");
    assert_int_equal(e2e_int(r, "stats", "generated_tokens"), 299);
    json_decref(r);
}

/* enabled, bonus_token and seed_pool reach the engine: the toy engine
 * makes up to N tokens a step with the bonus token, N - 1 without, and
 * one a step until N - 1 steps have passed without a seeded pool. */
static void test_reload_lookahead_features(void **state)
{
    unsigned s[64], k;
    const char *la = "{\"n\":4,\"w\":2,\"g\":2}";

    json_t *r = e2e_reload(&d, fd, "[lookahead]\nenabled = no\n");
    assert_false(json_is_true(json_object_get(json_object_get(r, "lookahead"), "enabled")));
    json_decref(r);
    r = request("{\"id\":\"r\",\"op\":\"generate\",\"prompt\":\"hi\",\"max_tokens\":20}");
    assert_int_equal(e2e_int(r, "stats", "draft_tokens"), 0);
    json_decref(r);
    json_decref(e2e_reload(&d, fd, "[lookahead]\nenabled = yes\n"));
    r = request("{\"id\":\"r\",\"op\":\"generate\",\"prompt\":\"hi\",\"max_tokens\":20}");
    assert_true(e2e_int(r, "stats", "draft_tokens") > 0);
    json_decref(r);

    k = step_sizes(la, s, 64);
    assert_int_equal(largest(s, k), 4);
    assert_int_equal(s[0], 1);
    assert_int_equal(s[1], 2);
    r = e2e_reload(&d, fd, "[lookahead]\nbonus_token = no\nseed_pool = no\n");
    assert_false(json_is_true(json_object_get(json_object_get(r, "lookahead"), "bonus_token")));
    assert_false(json_is_true(json_object_get(json_object_get(r, "lookahead"), "seed_pool")));
    json_decref(r);
    k = step_sizes(la, s, 64);
    assert_int_equal(largest(s, k), 3);
    assert_true(s[0] == 1 && s[1] == 1 && s[2] == 1);
    json_decref(e2e_reload(&d, fd, "[lookahead]\nbonus_token = yes\nseed_pool = yes\n"));
    k = step_sizes(la, s, 64);
    assert_int_equal(largest(s, k), 4);
    assert_int_equal(s[1], 2);
}

/* The connection limits, raised and lowered: max_request_bytes on this
 * open connection, max_connections for the next one, the queue and the
 * per-connection bound for the next request. */
static void test_reload_connection_limits(void **state)
{
    char big[3000];

    json_decref(e2e_reload(&d, fd, "[limits]\nmax_request_bytes = 1KiB\n"));
    snprintf(big, sizeof(big), "{\"id\":\"r\",\"op\":\"tokenize\",\"text\":\"%01900d\"}", 0);
    e2e_send_str(fd, big);
    e2e_send_str(fd, "\n");
    e2e_expect_error(e2e_read(fd, 5000), "too_large",
                     "1024"); /* an overlong line's error has no id */
    json_decref(e2e_reload(&d, fd, "[limits]\nmax_request_bytes = 2KiB\n"));
    json_t *r = request("%s", big);
    assert_string_equal(e2e_str(r, "event"), "result");
    json_decref(r);

    json_decref(e2e_reload(&d, fd, "[limits]\nmax_connections = 1\n"));
    struct lade_client *c = NULL;
    assert_int_equal(lade_client_connect(d.sock, &c), -EUSERS); /* too_many_connections */
    json_decref(e2e_reload(&d, fd, "[limits]\nmax_connections = 2\n"));
    int other = e2e_raw(&d);
    close(other);
    json_decref(e2e_reload(&d, fd, "[limits]\nmax_connections = 64\n"));

    /* one request in flight per connection, then two */
    json_decref(e2e_reload(&d, fd, "[limits]\nmax_queued_per_connection = 1\n"));
    e2e_send_str(
            fd,
            "{\"id\":\"slow\",\"op\":\"generate\",\"prompt\":\"[delay=20]\",\"max_tokens\":20}\n");
    beside_slow("{\"id\":\"r\",\"op\":\"generate\",\"prompt\":\"hi\",\"max_tokens\":1}\n", "error",
                "busy");
    json_decref(e2e_reload(&d, fd, "[limits]\nmax_queued_per_connection = 2\n"));
    e2e_send_str(
            fd,
            "{\"id\":\"slow\",\"op\":\"generate\",\"prompt\":\"[delay=20]\",\"max_tokens\":20}\n");
    beside_slow("{\"id\":\"r\",\"op\":\"generate\",\"prompt\":\"hi\",\"max_tokens\":1}\n", "done",
                NULL);

    /* the queue: one waiting, the next busy; then two */
    r = e2e_reload(&d, fd, "[daemon]\nqueue_length = 1\n[limits]\nmax_queued_per_connection = 1\n");
    assert_int_equal(e2e_int(r, "limits", "queue_max"), 1);
    json_decref(r);
    int a = e2e_raw(&d), b = e2e_raw(&d);
    e2e_send_str(
            a,
            "{\"id\":\"a\",\"op\":\"generate\",\"prompt\":\"[delay=20]\",\"max_tokens\":60,\"lookahead\":false}\n");
    usleep(100000); /* a runs */
    e2e_send_str(b, "{\"id\":\"b\",\"op\":\"generate\",\"prompt\":\"hi\",\"max_tokens\":1}\n");
    usleep(100000); /* b waits */
    e2e_expect_error(
            request("{\"id\":\"r\",\"op\":\"generate\",\"prompt\":\"hi\",\"max_tokens\":1}"),
            "busy", "queue is full");
    e2e_expect_done(e2e_read_final(a, "a", NULL, 0));
    e2e_expect_done(e2e_read_final(b, "b", NULL, 0));
    r = e2e_reload(&d, fd, "[daemon]\nqueue_length = 2\n[limits]\nmax_queued_per_connection = 1\n");
    assert_int_equal(e2e_int(r, "limits", "queue_max"), 2);
    json_decref(r);
    e2e_send_str(
            a,
            "{\"id\":\"a\",\"op\":\"generate\",\"prompt\":\"[delay=20]\",\"max_tokens\":60,\"lookahead\":false}\n");
    usleep(100000);
    e2e_send_str(b, "{\"id\":\"b\",\"op\":\"generate\",\"prompt\":\"hi\",\"max_tokens\":1}\n");
    usleep(100000);
    e2e_expect_done(
            request("{\"id\":\"r\",\"op\":\"generate\",\"prompt\":\"hi\",\"max_tokens\":1}"));
    e2e_expect_done(e2e_read_final(a, "a", NULL, 0));
    e2e_expect_done(e2e_read_final(b, "b", NULL, 0));
    close(a);
    close(b);
}

/* Numbers a float cannot hold are refused, not rounded to 0 or infinity. */
static void test_floats_out_of_range(void **state)
{
    e2e_expect_error(
            request("{\"id\":\"r\",\"op\":\"generate\",\"prompt\":\"hi\",\"top_p\":1e-300}"),
            "out_of_range", "top_p");
    e2e_expect_error(
            request("{\"id\":\"r\",\"op\":\"generate\",\"prompt\":\"hi\",\"temperature\":1e39}"),
            "out_of_range", "temperature");
    e2e_expect_error(
            request("{\"id\":\"r\",\"op\":\"generate\",\"prompt\":\"hi\",\"temperature\":1e-300}"),
            "out_of_range", "temperature");
    e2e_expect_done(request("{\"id\":\"r\",\"op\":\"generate\",\"prompt\":\"hi\",\"max_tokens\":3,"
                            "\"temperature\":1e-30,\"top_p\":1e-30}"));
}

/* What the engine refuses ends the request as out_of_range with the
 * engine's reason; the connection carries on. */
static void test_engine_refusal(void **state)
{
    e2e_expect_error(request("{\"id\":\"r\",\"op\":\"generate\",\"prompt\":\"[refuse]\"}"),
                     "out_of_range", "the toy engine refuses this request");
    e2e_expect_error(request("{\"id\":\"r\",\"op\":\"generate\",\"prompt\":\"[fail]\"}"),
                     "internal", "generation failed");
    e2e_expect_done(
            request("{\"id\":\"r\",\"op\":\"generate\",\"prompt\":\"hi\",\"max_tokens\":3}"));
}

/* log_level and shutdown_grace_seconds: debug lines appear after a reload
 * to debug; a grace of 0 set by reload cancels the running generation at
 * SIGTERM. Last: it stops the daemon. */
static void test_reload_log_level_and_grace(void **state)
{
    json_decref(e2e_reload(&d, fd, "[daemon]\nlog_level = debug\n"));
    e2e_expect_done(
            request("{\"id\":\"r\",\"op\":\"generate\",\"prompt\":\"hi\",\"max_tokens\":3}"));
    assert_true(e2e_log_has(&d, "Request 'r' of connection"));
    assert_true(e2e_log_has(&d, "tokenized: ")); /* the tokenizer thread's line (daemon/work.c) */
    json_decref(e2e_reload(&d, fd, "[daemon]\nlog_level = err\nshutdown_grace_seconds = 0\n"));
    json_t *r = e2e_sigterm_during(
            &d, fd,
            "{\"id\":\"long\",\"op\":\"generate\",\"prompt\":\"[delay=50]\",\"max_tokens\":2000}\n",
            "long");
    assert_non_null(r);
    assert_string_equal(e2e_str(r, "event"), "error");
    assert_string_equal(e2e_str(r, "code"), "cancelled");
    json_decref(r);
    assert_int_equal(e2e_wait_exit(&d, 10000), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_advertised_caps_run),
        cmocka_unit_test(test_reload_lookahead_caps),
        cmocka_unit_test(test_reload_max_tokens),
        cmocka_unit_test(test_reload_lookahead_features),
        cmocka_unit_test(test_reload_connection_limits),
        cmocka_unit_test(test_floats_out_of_range),
        cmocka_unit_test(test_engine_refusal),
        cmocka_unit_test(test_reload_log_level_and_grace),
    };
    return cmocka_run_group_tests(tests, up, down);
}
