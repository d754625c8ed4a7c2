/* laded end to end, concurrency and resource bounds: cancel (running and
 * queued), disconnect frees the GPU, two clients at once, fairness, queue
 * full, per-connection bound, too many connections, a client that reads
 * nothing. The fake engine's "[delay=MS]" makes each step slow. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "e2e.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Events until the terminal one of id; counts token events. */
static int wait_final(struct lade_client *c, const char *id, struct lade_event *ev, int *ret_tokens)
{
    int tokens = 0;

    for (;;) {
        int r = lade_client_next(c, ev, 20000);
        if (r != 1)
            return r;
        if (strcmp(ev->id, id) != 0)
            continue;
        if (ev->type == LADE_EVENT_TOKEN) {
            tokens++;
            continue;
        }
        if (ret_tokens)
            *ret_tokens = tokens;
        return 1;
    }
}

static void test_cancel_running_and_queued(void **state)
{
    struct e2e d;
    struct lade_client *c;
    struct lade_event ev;
    struct lade_gen_opts o;
    bool got_result = false, got_a = false, got_b = false;

    e2e_start(&d, NULL, NULL);
    c = e2e_client(&d);
    lade_gen_opts_init(&o);
    o.max_tokens = 2000;
    assert_int_equal(lade_client_generate(c, "a", "[delay=10]", &o), 0);
    assert_int_equal(lade_client_generate(c, "b", "[delay=10]", &o), 0); /* queued behind a */
    do {
        assert_int_equal(lade_client_next(c, &ev, 5000), 1);
    } while (ev.type != LADE_EVENT_TOKEN); /* a is streaming */
    assert_int_equal(lade_client_cancel(c, "x1", "b"), 0);
    assert_int_equal(lade_client_cancel(c, "x2", "a"), 0);
    while (!(got_result && got_a && got_b)) {
        assert_int_equal(lade_client_next(c, &ev, 5000), 1);
        if (!strcmp(ev.id, "x2")) {
            assert_int_equal(ev.type, LADE_EVENT_RESULT);
            got_result = true;
        } else if (ev.type == LADE_EVENT_ERROR) {
            assert_string_equal(ev.code, "cancelled");
            got_a |= !strcmp(ev.id, "a");
            got_b |= !strcmp(ev.id, "b");
        }
    }
    /* Cancelling what is gone is not_found; the connection serves on. */
    assert_int_equal(lade_client_cancel(c, "x3", "a"), 0);
    assert_int_equal(wait_final(c, "x3", &ev, NULL), 1);
    assert_string_equal(ev.code, "not_found");
    o.max_tokens = 5;
    assert_int_equal(lade_client_generate(c, "a", "again", &o), 0);
    assert_int_equal(wait_final(c, "a", &ev, NULL), 1);
    assert_int_equal(ev.type, LADE_EVENT_DONE);
    lade_client_free(c);
    assert_int_equal(e2e_stop(&d), 0);
    e2e_cleanup(&d);
}

/* A 2000-step generation at 10 ms a step would hold the GPU for 20 s; its
 * client hangs up after the first token and another client's request must
 * be done well before that. */
static void test_disconnect_frees_slot(void **state)
{
    struct e2e d;
    struct lade_client *a, *b;
    struct lade_event ev;
    struct lade_gen_opts o;
    double t0;
    int tokens;

    e2e_start(&d, NULL, NULL);
    a = e2e_client(&d);
    b = e2e_client(&d);
    lade_gen_opts_init(&o);
    o.max_tokens = 2000;
    assert_int_equal(lade_client_generate(a, "long", "[delay=10]", &o), 0);
    do {
        assert_int_equal(lade_client_next(a, &ev, 5000), 1);
    } while (ev.type != LADE_EVENT_TOKEN);
    t0 = now_s();
    o.max_tokens = 10;
    assert_int_equal(lade_client_generate(b, "short", "quick", &o), 0);
    lade_client_free(a); /* hang up mid-stream */
    assert_int_equal(wait_final(b, "short", &ev, &tokens), 1);
    assert_int_equal(ev.type, LADE_EVENT_DONE);
    assert_true(now_s() - t0 < 3.0);
    lade_client_free(b);
    assert_int_equal(e2e_stop(&d), 0);
    e2e_cleanup(&d);
}

/* a queues four generations, then b one: round-robin runs b's second,
 * not fifth, so it waits about one generation of a, not four. */
static void test_two_clients_fair(void **state)
{
    struct e2e d;
    struct lade_client *a, *b;
    struct lade_event ev;
    struct lade_gen_opts o;
    char id[16];
    double a_queue[4], b_queue;

    e2e_start(&d, "delay_ms=5", NULL);
    a = e2e_client(&d);
    b = e2e_client(&d);
    lade_gen_opts_init(&o);
    o.max_tokens = 30; /* 12 steps: 60 ms */
    o.stream = false;
    for (int i = 0; i < 4; i++) {
        snprintf(id, sizeof(id), "a%d", i);
        assert_int_equal(lade_client_generate(a, id, "x", &o), 0);
    }
    usleep(20000);
    assert_int_equal(lade_client_generate(b, "b0", "y", &o), 0);
    assert_int_equal(wait_final(b, "b0", &ev, NULL), 1);
    assert_int_equal(ev.type, LADE_EVENT_DONE);
    assert_string_equal(ev.text, "Once upon a time a na\xC3\xAFve fox ");
    b_queue = ev.stats.queue_ms;
    for (int i = 0; i < 4; i++) {
        assert_int_equal(lade_client_next(a, &ev, 5000), 1);
        assert_int_equal(ev.type, LADE_EVENT_DONE);
        a_queue[i] = ev.stats.queue_ms;
    }
    assert_true(b_queue < a_queue[2]);
    assert_true(b_queue < a_queue[3]);
    lade_client_free(a);
    lade_client_free(b);
    assert_int_equal(e2e_stop(&d), 0);
    e2e_cleanup(&d);
}

static void test_queue_full_busy(void **state)
{
    const char *extra[] = { "--set", "daemon.queue_length=2", "--set",
                            "limits.max_queued_per_connection=2", NULL };
    struct e2e d;
    struct lade_client *a, *b, *c;
    struct lade_event ev;
    struct lade_gen_opts o;

    e2e_start(&d, NULL, extra);
    a = e2e_client(&d);
    b = e2e_client(&d);
    c = e2e_client(&d);
    lade_gen_opts_init(&o);
    o.max_tokens = 1000;
    assert_int_equal(lade_client_generate(a, "run", "[delay=20]", &o), 0);
    do {
        assert_int_equal(lade_client_next(a, &ev, 5000), 1);
    } while (ev.type != LADE_EVENT_TOKEN); /* running: the queue is empty again */
    assert_int_equal(lade_client_generate(a, "q1", "[delay=20]", &o), 0);
    assert_int_equal(lade_client_generate(a, "q2", "x", &o), 0); /* a: 2 in flight */
    assert_int_equal(wait_final(a, "q2", &ev, NULL), 1);
    assert_string_equal(ev.code, "busy"); /* per connection */
    assert_int_equal(lade_client_generate(b, "q3", "x", &o), 0); /* queue: q1, q3 */
    assert_int_equal(lade_client_generate(c, "q4", "x", &o), 0);
    assert_int_equal(wait_final(c, "q4", &ev, NULL), 1);
    assert_int_equal(ev.type, LADE_EVENT_ERROR);
    assert_string_equal(ev.code, "busy"); /* queue full, answered at once */
    /* health still answers at once while the GPU is busy */
    assert_int_equal(lade_client_simple(c, "h", "health"), 0);
    assert_int_equal(wait_final(c, "h", &ev, NULL), 1);
    assert_non_null(strstr(ev.json, "\"queue_depth\":2"));
    lade_client_free(a);
    lade_client_free(b);
    lade_client_free(c);
    assert_int_equal(e2e_stop(&d), 0);
    e2e_cleanup(&d);
}

/* Connect, retrying while the daemon has not yet seen an earlier client
 * (the readiness probe, a closed one) hang up. */
static struct lade_client *connect_retry(struct e2e *d)
{
    struct lade_client *c = NULL;
    int r = -EUSERS;

    for (int i = 0; i < 200 && r == -EUSERS; i++) {
        r = lade_client_connect(d->sock, &c);
        if (r == -EUSERS)
            usleep(10000);
    }
    assert_int_equal(r, 0);
    return c;
}

static void test_too_many_connections(void **state)
{
    const char *extra[] = { "--set", "limits.max_connections=2", NULL };
    struct e2e d;
    struct lade_client *a, *b, *c = NULL;
    struct lade_event ev;

    e2e_start(&d, NULL, extra);
    a = connect_retry(&d);
    b = connect_retry(&d);
    assert_int_equal(lade_client_connect(d.sock, &c), -EUSERS);
    assert_int_equal(lade_client_simple(a, "h", "health"), 0); /* the others carry on */
    assert_int_equal(wait_final(a, "h", &ev, NULL), 1);
    assert_non_null(strstr(ev.json, "\"connections\":2"));
    lade_client_free(b);
    b = connect_retry(&d); /* a slot is free again */
    lade_client_free(a);
    lade_client_free(b);
    assert_int_equal(e2e_stop(&d), 0);
    e2e_cleanup(&d);
}

/* A client that sends requests and never reads: once it has read nothing
 * for the send timeout it is dropped, its generations are cancelled,
 * others carry on. */
static void test_slow_reader_dropped(void **state)
{
    const char *extra[] = { "--set", "limits.max_output_buffer_bytes=64K", "--set",
                            "limits.send_timeout_seconds=1", NULL };
    struct e2e d;
    struct lade_client *ok;
    struct lade_event ev;
    struct lade_gen_opts o;
    int rcv = 1024, fd;
    char line[128];

    e2e_start(&d, NULL, extra);
    fd = e2e_raw(&d);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
    for (int i = 0; i < 8; i++) {
        snprintf(
                line, sizeof(line),
                "{\"id\":%d,\"op\":\"generate\",\"prompt\":\"x\",\"max_tokens\":4096,\"lookahead\":false}\n",
                i);
        e2e_send_str(fd, line);
    }
    ok = e2e_client(&d);
    lade_gen_opts_init(&o);
    o.max_tokens = 5;
    assert_int_equal(lade_client_generate(ok, "fine", "x", &o), 0);
    assert_int_equal(wait_final(ok, "fine", &ev, NULL), 1);
    assert_int_equal(ev.type, LADE_EVENT_DONE);
    for (int i = 0; i < 50; i++) { /* dropped within the send timeout, 1 s */
        assert_int_equal(lade_client_simple(ok, "s", "stats"), 0);
        assert_int_equal(wait_final(ok, "s", &ev, NULL), 1);
        if (strstr(ev.json, "\"dropped_slow_clients\":1"))
            break;
        usleep(100000);
    }
    assert_non_null(strstr(ev.json, "\"dropped_slow_clients\":1"));
    close(fd);
    lade_client_free(ok);
    assert_int_equal(e2e_stop(&d), 0);
    e2e_cleanup(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cancel_running_and_queued),
        cmocka_unit_test(test_disconnect_frees_slot),
        cmocka_unit_test(test_two_clients_fair),
        cmocka_unit_test(test_queue_full_busy),
        cmocka_unit_test(test_too_many_connections),
        cmocka_unit_test(test_slow_reader_dropped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
