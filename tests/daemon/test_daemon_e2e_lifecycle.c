/* laded end to end, its life: SIGTERM drains (running work finishes within
 * the grace period or is cancelled, queued work is refused, the socket
 * goes), SIGTERM and SIGINT during the model load, a model path that is
 * not a regular file, socket activation, stale/live/foreign files at the
 * socket path, another daemon's socket left alone on exit, the socket's
 * group when the default one is missing, SIGHUP reload, --check-config of
 * [tuning]. */
#include <errno.h>
#include <grp.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "e2e.h"

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static json_t *next_non_token(int fd)
{
    for (;;) {
        json_t *ev = e2e_read(fd, 10000);
        if (!ev || strcmp(e2e_str(ev, "event"), "token"))
            return ev;
        json_decref(ev);
    }
}

/* SIGTERM while a 100-step generation runs: it finishes (grace 30 s), a
 * queued one is refused with shutting_down, then laded exits 0 and removes
 * its socket. */
static void test_sigterm_finishes(void **state)
{
    struct e2e d;
    int fd;
    json_t *ev;
    char text[256];

    e2e_start(&d, NULL, NULL);
    fd = e2e_raw(&d);
    e2e_send_str(
            fd,
            "{\"id\":\"run\",\"op\":\"generate\",\"prompt\":\"[delay=5]\",\"max_tokens\":100,\"lookahead\":false}\n"
            "{\"id\":\"queued\",\"op\":\"generate\",\"prompt\":\"x\"}\n");
    ev = e2e_read(fd, 5000); /* first token: running */
    assert_string_equal(e2e_str(ev, "event"), "token");
    json_decref(ev);
    kill(d.pid, SIGTERM);
    ev = next_non_token(fd);
    assert_string_equal(e2e_str(ev, "id"), "queued");
    assert_string_equal(e2e_str(ev, "code"), "shutting_down");
    json_decref(ev);
    ev = e2e_read_final(fd, "run", text, sizeof(text));
    assert_non_null(ev);
    assert_string_equal(e2e_str(ev, "finish_reason"), "length");
    json_decref(ev);
    assert_int_equal(e2e_wait_exit(&d, 10000), 0);
    assert_false(exists(d.sock));
    close(fd);
    e2e_cleanup(&d);
}

/* With a 1 s grace period a 20 s generation is cancelled, the client
 * told so, and laded still exits cleanly. */
static void test_sigterm_grace_expires(void **state)
{
    const char *extra[] = { "--set", "daemon.shutdown_grace_seconds=1", NULL };
    struct e2e d;
    int fd;
    json_t *ev;

    e2e_start(&d, NULL, extra);
    fd = e2e_raw(&d);
    e2e_send_str(
            fd,
            "{\"id\":\"run\",\"op\":\"generate\",\"prompt\":\"[delay=10]\",\"max_tokens\":2000,\"lookahead\":false}\n");
    ev = e2e_read(fd, 5000);
    json_decref(ev);
    kill(d.pid, SIGTERM);
    ev = next_non_token(fd);
    assert_non_null(ev);
    assert_string_equal(e2e_str(ev, "code"), "cancelled");
    json_decref(ev);
    assert_int_equal(e2e_wait_exit(&d, 10000), 0);
    assert_false(exists(d.sock));
    /* a new connection is refused: nobody listens */
    assert_true(lade_client_connect(d.sock, &(struct lade_client *){ NULL }) < 0);
    close(fd);
    e2e_cleanup(&d);
}

/* Wait until laded's log has needle (10 s). */
static void wait_log(struct e2e *d, const char *needle)
{
    for (int i = 0; i < 1000 && !e2e_log_has(d, needle); i++)
        usleep(10000);
    if (!e2e_log_has(d, needle)) {
        e2e_dump_log(d);
        fail_msg("no '%s' in laded's log", needle);
    }
}

/* Issue #20: SIGTERM and SIGINT were blocked while the model loaded, and
 * the socket was there already. Now the socket is made only once the
 * model is loaded, and either signal cancels the load: laded exits
 * non-zero at once, saying why. (The fake engine's load takes load_ms,
 * polling the same cancel hook the real one polls between tensors.) */
static void test_signal_during_load(void **state)
{
    const int sigs[] = { SIGTERM, SIGINT };

    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        struct e2e d;

        e2e_init(&d);
        e2e_spawn(&d, "load_ms=30000", NULL, -1);
        wait_log(&d, "Loading the model");
        usleep(100000);
        assert_false(exists(d.sock));
        kill(d.pid, sigs[i]);
        assert_int_equal(e2e_wait_exit(&d, 3000), 1);
        assert_true(e2e_log_has(&d, "while loading the model: cancelling the load"));
        assert_true(e2e_log_has(&d, "the model load was cancelled"));
        assert_false(exists(d.sock));
        e2e_cleanup(&d);
    }
}

/* Issue #20: a FIFO as the model path hung the daemon in open() until
 * SIGKILL; a directory or a device is no model either. Each is refused
 * at once, by the real engine, before any device is opened. */
static void test_model_not_regular(void **state)
{
    struct e2e d;
    char fifo[160];

    e2e_init(&d);
    snprintf(fifo, sizeof(fifo), "%s/model.gguf", d.dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    const char *paths[] = { fifo, d.dir, "/dev/zero" };
    const char *why[] = { "is a FIFO, not a regular file", "is a directory, not a regular file",
                          "is a character device, not a regular file" };
    for (size_t i = 0; i < 3; i++) {
        const char *extra[] = { "--model", paths[i], NULL };
        unlink(d.log);
        e2e_spawn(&d, e2e_real_engine, extra, -1);
        assert_int_equal(e2e_wait_exit(&d, 5000), 1);
        if (!e2e_log_has(&d, why[i])) {
            e2e_dump_log(&d);
            fail_msg("no '%s' in the log", why[i]);
        }
        assert_false(exists(d.sock));
    }
    unlink(fifo);
    e2e_cleanup(&d);
}

/* Issue #20: an exiting daemon unlinked whatever socket was at its path.
 * A's socket file deleted, B binds the same path; A's exit leaves B's
 * socket, which still serves, and B's exit removes it. */
static void test_other_daemons_socket_kept(void **state)
{
    struct e2e a, b;
    int fd;

    e2e_start(&a, NULL, NULL);
    b = a;
    assert_int_equal(unlink(a.sock), 0);
    e2e_spawn(&b, NULL, NULL, -1);
    e2e_wait_ready(&b);
    assert_int_equal(e2e_stop(&a), 0);
    assert_true(e2e_log_has(&a, "is no longer the socket this daemon made, leaving it"));
    assert_true(exists(b.sock));
    fd = e2e_raw(&b);
    close(fd);
    assert_int_equal(e2e_stop(&b), 0);
    assert_false(exists(b.sock));
    e2e_cleanup(&b);
}

/* Issue #20: run by hand where no lade group exists, laded refused to
 * start. With the group left at its default it now keeps its own group
 * and says so; a group set on purpose must still exist. */
static void test_default_group_missing(void **state)
{
    const char *explicit[] = { "--set", "daemon.socket_group=lade", NULL };
    struct e2e d;
    struct stat st;

    if (getgrnam("lade")) {
        print_message("skipped: this machine has a group 'lade', the fallback cannot be seen\n");
        skip();
    }
    e2e_init(&d);
    d.default_group = true;
    e2e_spawn(&d, NULL, NULL, -1);
    e2e_wait_ready(&d);
    assert_true(
            e2e_log_has(&d, "Group 'lade' does not exist: the socket keeps the daemon's group"));
    assert_int_equal(stat(d.sock, &st), 0);
    assert_int_equal(st.st_gid, getegid());
    assert_int_equal(e2e_stop(&d), 0);
    unlink(d.log);
    e2e_spawn(&d, NULL, explicit, -1);
    assert_int_equal(e2e_wait_exit(&d, 10000), 1);
    assert_true(e2e_log_has(&d, "Group 'lade' for the socket does not exist"));
    assert_false(exists(d.sock));
    e2e_cleanup(&d);
}

static int make_listener(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    assert_true(strlen(path) < sizeof(sa.sun_path));
    memcpy(sa.sun_path, path, strlen(path) + 1);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 16), 0);
    return fd;
}

/* systemd passes the socket as fd 3 with LISTEN_FDS/LISTEN_PID; laded
 * serves on it and, not owning it, leaves the file in place. */
static void test_socket_activation(void **state)
{
    struct e2e d;
    struct lade_client *c;
    struct lade_event ev;
    char other[160];
    int lfd;

    e2e_init(&d);
    snprintf(other, sizeof(other), "%s/activated.sock", d.dir);
    lfd = make_listener(other);
    e2e_spawn(&d, NULL, NULL, lfd);
    close(lfd);
    assert_int_equal(lade_client_connect(other, &c), 0); /* the backlog holds us until it runs */
    assert_int_equal(lade_client_simple(c, "h", "health"), 0);
    assert_int_equal(lade_client_next(c, &ev, 5000), 1);
    assert_int_equal(ev.type, LADE_EVENT_RESULT);
    lade_client_free(c);
    assert_false(exists(d.sock)); /* did not make its own */
    assert_int_equal(e2e_stop(&d), 0);
    assert_true(exists(other));
    unlink(other);
    e2e_cleanup(&d);
}

static void test_stale_socket_replaced(void **state)
{
    struct e2e d;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int s = socket(AF_UNIX, SOCK_STREAM, 0), fd;

    e2e_init(&d);
    assert_true(strlen(d.sock) < sizeof(sa.sun_path));
    memcpy(sa.sun_path, d.sock, strlen(d.sock) + 1);
    assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(s); /* a crashed daemon's leftover */
    e2e_spawn(&d, NULL, NULL, -1);
    e2e_wait_ready(&d);
    fd = e2e_raw(&d);
    close(fd);
    assert_int_equal(e2e_stop(&d), 0);
    e2e_cleanup(&d);
}

/* A second laded on a live daemon's path fails and leaves it serving;
 * one on a path holding a regular file fails and leaves the file. */
static void test_live_and_foreign_paths(void **state)
{
    struct e2e a, b;
    struct stat st;
    FILE *f;
    int fd;

    e2e_start(&a, NULL, NULL);
    b = a;
    e2e_spawn(&b, NULL, NULL, -1);
    assert_int_equal(e2e_wait_exit(&b, 10000), 1);
    fd = e2e_raw(&a);
    close(fd);
    assert_int_equal(e2e_stop(&a), 0);

    f = fopen(a.sock, "w");
    assert_non_null(f);
    fputs("not a socket", f);
    fclose(f);
    e2e_spawn(&a, NULL, NULL, -1);
    assert_int_equal(e2e_wait_exit(&a, 10000), 1);
    assert_int_equal(stat(a.sock, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    e2e_cleanup(&a);
}

/* SIGHUP re-reads the file: the reloadable limits change, the daemon and
 * its connections stay. */
static void test_sighup_reload(void **state)
{
    struct e2e d;
    struct lade_client *c;
    struct lade_event ev;
    FILE *f;

    e2e_start(&d, NULL, NULL);
    c = e2e_client(&d);
    f = fopen(d.conf, "w");
    assert_non_null(f);
    fputs("[limits]\nmax_tokens = 77\nmax_queued_per_connection = 2\n[daemon]\nqueue_length = 5\n",
          f);
    fclose(f);
    kill(d.pid, SIGHUP);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(lade_client_simple(c, "i", "info"), 0);
        assert_int_equal(lade_client_next(c, &ev, 5000), 1);
        if (strstr(ev.json, "\"max_tokens\":77"))
            break;
        usleep(20000);
    }
    assert_non_null(strstr(ev.json, "\"max_tokens\":77"));
    assert_non_null(strstr(ev.json, "\"queue_max\":5"));
    /* a broken file is refused and the running settings kept */
    f = fopen(d.conf, "w");
    fputs("[limits]\nmax_tokens = zero\n", f);
    fclose(f);
    kill(d.pid, SIGHUP);
    usleep(100000);
    assert_int_equal(lade_client_simple(c, "i", "info"), 0);
    assert_int_equal(lade_client_next(c, &ev, 5000), 1);
    assert_non_null(strstr(ev.json, "\"max_tokens\":77"));
    lade_client_free(c);
    assert_int_equal(e2e_stop(&d), 0);
    e2e_cleanup(&d);
}

/* Writes text as the configuration and runs laded --check-config on it;
 * returns its exit status. */
static int check_config(struct e2e *d, const char *text)
{
    const char *check[] = { "--check-config", NULL };
    FILE *f = fopen(d->conf, "w");

    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    e2e_spawn(d, NULL, check, -1);
    return e2e_wait_exit(d, 10000);
}

/* --check-config judges [tuning] values as the model would, without
 * loading one: a bad value fails naming the key, a good one passes and is
 * printed back. */
static void test_check_config_tuning(void **state)
{
    struct e2e d;

    e2e_init(&d);
    assert_int_equal(check_config(&d, "[tuning]\nmm = 3,1,1,1\n"), 1);
    if (!e2e_log_has(&d, "Invalid configuration: [tuning] mm: ")) {
        e2e_dump_log(&d);
        fail_msg("no error naming [tuning] mm");
    }
    assert_int_equal(check_config(&d, "[tuning]\nmm = 64,8,1,1\n"), 0);
    assert_true(e2e_log_has(&d, "mm = 64,8,1,1"));
    e2e_cleanup(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigterm_finishes),
        cmocka_unit_test(test_sigterm_grace_expires),
        cmocka_unit_test(test_signal_during_load),
        cmocka_unit_test(test_model_not_regular),
        cmocka_unit_test(test_other_daemons_socket_kept),
        cmocka_unit_test(test_default_group_missing),
        cmocka_unit_test(test_socket_activation),
        cmocka_unit_test(test_stale_socket_replaced),
        cmocka_unit_test(test_live_and_foreign_paths),
        cmocka_unit_test(test_sighup_reload),
        cmocka_unit_test(test_check_config_tuning),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
