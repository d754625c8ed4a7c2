/* laded's scheduler workers (issue #21), with the fake engine (it runs
 * generate() concurrently with spec parallel=N, each call alone, so the
 * daemon's side is what is tested here: the real engine's shared steps
 * are test_daemon_e2e_parallel's and test_gpu_batch's): four generations
 * run at once and take about one's time, each with its own text; cancel
 * and disconnect of running ones leave the others to finish and nothing
 * running; [daemon] max_parallel below what the engine can do bounds the
 * generations at once, the rest wait in the queue. Run under the
 * sanitizers too (label e2e). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "e2e.h"

#define TEXT30 "Once upon a time a na\xC3\xAFve fox "

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int wait_final(struct lade_client *c, const char *id, struct lade_event *ev)
{
    for (;;) {
        int r = lade_client_next(c, ev, 20000);
        if (r != 1)
            return r;
        if (strcmp(ev->id, id) == 0 && ev->type != LADE_EVENT_TOKEN)
            return 1;
    }
}

/* running and queue_depth from a status request on a raw connection */
static void status(struct e2e *d, int *running, int *queued)
{
    int fd = e2e_raw(d);
    e2e_send_str(fd, "{\"id\":\"h\",\"op\":\"health\"}\n");
    json_t *r = e2e_read_final(fd, "h", NULL, 0);
    assert_non_null(r);
    *running = (int)json_integer_value(json_object_get(r, "running"));
    *queued = (int)json_integer_value(json_object_get(r, "queue_depth"));
    json_decref(r);
    close(fd);
}

/* Four clients each send one plain 30-token generation (600 ms with the
 * spec's 20 ms a step); after 100 ms, the generations running and
 * queued must be as given. */
static void send_four(struct e2e *d, struct lade_client **c, int want_running, int want_queued)
{
    struct lade_gen_opts o;
    char id[8];
    lade_gen_opts_init(&o);
    o.max_tokens = 30;
    o.lookahead = 0;
    o.stream = false;
    for (int i = 0; i < 4; i++) {
        c[i] = e2e_client(d);
        snprintf(id, sizeof(id), "g%d", i);
        assert_int_equal(lade_client_generate(c[i], id, "x", &o), 0);
    }
    usleep(100000);
    int running, queued;
    status(d, &running, &queued);
    assert_int_equal(running, want_running);
    assert_int_equal(queued, want_queued);
}

static void test_four_at_once(void **state)
{
    (void)state;
    struct e2e d;
    struct lade_client *c[4];
    struct lade_event ev;
    char id[8];
    e2e_start(&d, "parallel=4,delay_ms=20", NULL);
    double t0 = now_s();
    send_four(&d, c, 4, 0);
    for (int i = 0; i < 4; i++) {
        snprintf(id, sizeof(id), "g%d", i);
        assert_int_equal(wait_final(c[i], id, &ev), 1);
        assert_int_equal(ev.type, LADE_EVENT_DONE);
        assert_string_equal(ev.text, TEXT30);
    }
    double wall = now_s() - t0;
    fprintf(stderr, "4 generations of 600 ms in %.0f ms\n", wall * 1e3);
    assert_true(wall < 1.8); /* one at a time: 2.4 s at least */
    int running, queued;
    status(&d, &running, &queued);
    assert_int_equal(running, 0);
    for (int i = 0; i < 4; i++)
        lade_client_free(c[i]);
    assert_int_equal(e2e_stop(&d), 0);
    e2e_cleanup(&d);
}

static void test_cancel_and_disconnect_while_others_run(void **state)
{
    (void)state;
    struct e2e d;
    struct lade_client *c[4];
    struct lade_event ev;
    struct lade_gen_opts o;
    char id[8];
    e2e_start(&d, "parallel=4,delay_ms=10", NULL);
    lade_gen_opts_init(&o);
    o.max_tokens = 2000;
    for (int i = 0; i < 4; i++) {
        c[i] = e2e_client(&d);
        snprintf(id, sizeof(id), "g%d", i);
        o.max_tokens = i < 2 ? 2000 : 40;
        assert_int_equal(lade_client_generate(c[i], id, "x", &o), 0);
        do {
            assert_int_equal(lade_client_next(c[i], &ev, 5000), 1);
        } while (ev.type != LADE_EVENT_TOKEN);
    }
    assert_int_equal(lade_client_cancel(c[0], "c", "g0"), 0);
    assert_int_equal(wait_final(c[0], "g0", &ev), 1);
    assert_int_equal(ev.type, LADE_EVENT_ERROR);
    lade_client_free(c[1]); /* hangs up mid-stream */
    for (int i = 2; i < 4; i++) {
        snprintf(id, sizeof(id), "g%d", i);
        assert_int_equal(wait_final(c[i], id, &ev), 1);
        assert_int_equal(ev.type, LADE_EVENT_DONE);
    }
    /* The disconnected one is cancelled at its next token */
    int running = -1, queued = -1;
    for (int k = 0; k < 100 && running != 0; k++) {
        usleep(20000);
        status(&d, &running, &queued);
    }
    assert_int_equal(running, 0);
    lade_client_free(c[0]);
    lade_client_free(c[2]);
    lade_client_free(c[3]);
    assert_int_equal(e2e_stop(&d), 0);
    e2e_cleanup(&d);
}

static void test_max_parallel_bounds(void **state)
{
    (void)state;
    struct e2e d;
    struct lade_client *c[4];
    struct lade_event ev;
    char id[8];
    const char *extra[] = { "--set", "daemon.max_parallel=2", NULL };
    e2e_start(&d, "parallel=4,delay_ms=20", extra);
    send_four(&d, c, 2, 2);
    for (int i = 0; i < 4; i++) {
        snprintf(id, sizeof(id), "g%d", i);
        assert_int_equal(wait_final(c[i], id, &ev), 1);
        assert_int_equal(ev.type, LADE_EVENT_DONE);
        lade_client_free(c[i]);
    }
    assert_true(e2e_log_has(&d, "2 generations at once"));
    assert_int_equal(e2e_stop(&d), 0);
    e2e_cleanup(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_four_at_once),
        cmocka_unit_test(test_cancel_and_disconnect_while_others_run),
        cmocka_unit_test(test_max_parallel_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
