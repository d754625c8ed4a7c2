/* laded end to end under abuse (issue 20): big requests do not stall the
 * event loop, running out of descriptors neither spins nor leaves clients
 * silent, one user cannot fill the connection table, a pipelining client
 * is slowed down and not dropped, a half-closed connection's last line is
 * answered, a begun line and an idle connection time out. */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "e2e.h"

#define STORM 20
#define MIB (1u << 20)

static int connect_raw(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
        return fd;
    if (fd >= 0)
        close(fd);
    return -1;
}

static bool is_event(json_t *ev, const char *event, const char *code)
{
    return ev && !strcmp(e2e_str(ev, "event"), event) &&
           (!code || !strcmp(e2e_str(ev, "code"), code));
}

struct storm_writer {
    int fd;
    char *line;
    size_t len;
    pthread_t th;
};

static void *write_line(void *arg)
{
    struct storm_writer *w = arg;

    e2e_send(w->fd, w->line, w->len);
    return NULL;
}

/* A 1 MiB generate line: a prompt of (almost) max_request_bytes. */
static char *big_generate(int id, size_t *ret_len)
{
    size_t n = MIB - 100;
    char *line = malloc(n + 100);
    int h;

    assert_non_null(line);
    h = snprintf(line, 100, "{\"id\":%d,\"op\":\"generate\",\"max_tokens\":1,\"prompt\":\"", id);
    memset(line + h, 'a', n - (size_t)h);
    memcpy(line + n, "\"}\n", 4);
    *ret_len = n + 3;
    return line;
}

/* Twenty clients finish 1 MiB generate lines at once, each costing the
 * (toy) tokenizer 400 ms; a health sent after all of them are written is
 * answered before most of them (an ordering: tokenizing is off the event
 * loop), and a stream that was running carries on meanwhile. */
static void test_storm_health_first(void **state)
{
    const char *extra[] = { "--set", "daemon.queue_length=64", NULL };
    struct storm_writer w[STORM];
    struct e2e d;
    int hfd, sfd, answered = 0, before_health = -1, stream_tokens_after = 0;
    json_t *ev;

    e2e_start(&d, "tok_us_per_kib=400", extra);
    sfd = e2e_raw(&d);
    hfd = e2e_raw(&d);
    e2e_send_str(
            sfd,
            "{\"id\":\"s\",\"op\":\"generate\",\"prompt\":\"[delay=20]\",\"max_tokens\":1000,\"lookahead\":false}\n");
    ev = e2e_read(sfd, 5000);
    assert_true(is_event(ev, "token", NULL));
    json_decref(ev);
    for (int i = 0; i < STORM; i++) {
        w[i].fd = e2e_raw(&d);
        w[i].line = big_generate(i, &w[i].len);
    }
    for (int i = 0; i < STORM; i++)
        assert_int_equal(pthread_create(&w[i].th, NULL, write_line, &w[i]), 0);
    for (int i = 0; i < STORM; i++)
        pthread_join(w[i].th, NULL);
    e2e_send_str(hfd, "{\"id\":\"h\",\"op\":\"health\"}\n");
    /* Every storm request is answered (context_exceeded: 1 MiB does not fit
     * n_ctx); note how many were before the health reply. */
    while (answered < STORM || before_health < 0) {
        struct pollfd p[STORM + 2];
        for (int i = 0; i < STORM; i++)
            p[i] = (struct pollfd){ .fd = w[i].fd, .events = POLLIN };
        p[STORM] = (struct pollfd){ .fd = hfd, .events = before_health < 0 ? POLLIN : 0 };
        p[STORM + 1] = (struct pollfd){ .fd = sfd, .events = POLLIN };
        assert_true(poll(p, STORM + 2, 20000) > 0);
        for (int i = 0; i < STORM + 2; i++) {
            if (!(p[i].revents & POLLIN))
                continue;
            ev = e2e_read(p[i].fd, 5000);
            assert_non_null(ev);
            if (i < STORM) {
                assert_true(is_event(ev, "error", "context_exceeded"));
                answered++;
            } else if (i == STORM) {
                assert_true(is_event(ev, "result", NULL));
                before_health = answered;
            } else if (before_health >= 0 && answered < STORM) {
                stream_tokens_after += is_event(ev, "token", NULL);
            }
            json_decref(ev);
        }
    }
    print_message(
            "storm: %d of %d answered before health; %d stream tokens between health and the storm's end\n",
            before_health, STORM, stream_tokens_after);
    assert_true(before_health < STORM * 3 / 4); /* on the loop: all but the last one or two */
    assert_true(stream_tokens_after >= 5);
    e2e_send_str(sfd, "{\"id\":\"c\",\"op\":\"cancel\",\"target\":\"s\"}\n");
    ev = e2e_read_final(sfd, "s", NULL, 0);
    assert_true(is_event(ev, "error", "cancelled"));
    json_decref(ev);
    for (int i = 0; i < STORM; i++) {
        close(w[i].fd);
        free(w[i].line);
    }
    close(hfd);
    close(sfd);
    assert_int_equal(e2e_stop(&d), 0);
    e2e_cleanup(&d);
}

static int count_fds(pid_t pid)
{
    char path[64];
    struct dirent *de;
    DIR *dir;
    int n = 0;

    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    dir = opendir(path);
    assert_non_null(dir);
    while ((de = readdir(dir)))
        n += de->d_name[0] != '.';
    closedir(dir);
    return n;
}

/* utime + stime of pid, in clock ticks. */
static long cpu_ticks(pid_t pid)
{
    char path[64], buf[1024], *p;
    unsigned long ut = 0, st = 0;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(buf, sizeof(buf), f));
    fclose(f);
    p = strrchr(buf, ')');
    assert_non_null(p);
    /* after ")": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
    assert_int_equal(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st),
                     2);
    return (long)(ut + st);
}

static int count_log(const struct e2e *d, const char *needle)
{
    char buf[4096];
    FILE *f = fopen(d->log, "r");
    int n = 0;

    while (f && fgets(buf, sizeof(buf), f))
        n += strstr(buf, needle) != NULL;
    if (f)
        fclose(f);
    return n;
}

/* Out of descriptors (RLIMIT_NOFILE lowered under the daemon): every client
 * hears hello or an error, none waits in silence; the daemon does not spin
 * (CPU time over two seconds of it); one log line for the episode; once a
 * connection closes, a new client is served. */
static void test_out_of_fds(void **state)
{
    enum { N = 8 };
    struct e2e d;
    struct rlimit rl;
    int fds[N], served = 0, refused = 0, extra_fd;
    long t0, t1;
    json_t *ev;

    e2e_start(&d, NULL, NULL);
    usleep(300000); /* the readiness probe's connection closed */
    rl.rlim_cur = rl.rlim_max = (rlim_t)count_fds(d.pid) + 2; /* room for two clients */
    assert_int_equal(prlimit(d.pid, RLIMIT_NOFILE, &rl, NULL), 0);
    for (int i = 0; i < N; i++) {
        fds[i] = connect_raw(d.sock);
        assert_true(fds[i] >= 0);
    }
    for (int i = 0; i < N; i++) {
        ev = e2e_read(fds[i], 5000);
        if (!ev)
            assert_non_null(ev); /* never silent */
        if (is_event(ev, "hello", NULL))
            served++;
        else if (is_event(ev, "error", "too_many_connections"))
            refused++;
        json_decref(ev);
    }
    print_message("out of fds: %d served, %d refused\n", served, refused);
    assert_true(served >= 1);
    assert_true(refused >= 1);
    assert_int_equal(served + refused, N);
    /* A client refused while the listener is paused, then two seconds of
     * CPU: a loop spinning on the armed listener would use most of them. */
    extra_fd = connect_raw(d.sock);
    t0 = cpu_ticks(d.pid);
    usleep(2000000);
    t1 = cpu_ticks(d.pid);
    print_message("out of fds: %ld ticks of CPU in 2 s (%ld per s)\n", t1 - t0,
                  sysconf(_SC_CLK_TCK));
    assert_true(t1 - t0 < sysconf(_SC_CLK_TCK) / 5);
    ev = e2e_read(extra_fd, 3000);
    if (!is_event(ev, "error", "too_many_connections"))
        fail_msg("a client while out of fds got %s", ev ? json_dumps(ev, JSON_COMPACT) : "nothing");
    json_decref(ev);
    close(extra_fd);
    assert_int_equal(count_log(&d, "refusing waiting clients"), 1);
    /* A served client leaves: the next one is served. */
    for (int i = 0; i < N; i++)
        close(fds[i]);
    usleep(300000);
    extra_fd = connect_raw(d.sock);
    ev = e2e_read(extra_fd, 3000);
    assert_true(is_event(ev, "hello", NULL));
    json_decref(ev);
    e2e_send_str(extra_fd, "{\"id\":1,\"op\":\"health\"}\n");
    ev = e2e_read(extra_fd, 3000);
    assert_true(is_event(ev, "result", NULL));
    json_decref(ev);
    close(extra_fd);
    assert_int_equal(e2e_stop(&d), 0);
    e2e_cleanup(&d);
}

/* 64 idle connections from one user (nobody) with the default cap: 16 are
 * served, the rest refused; root (another uid) is still served. */
static void test_uid_cap(void **state)
{
    const char *extra[] = { "--set", "daemon.socket_mode=0666", NULL };
    struct e2e d;
    int p[2], go[2], counts[2] = { 0, 0 }, fd, status;
    pid_t child;
    json_t *ev;

    e2e_start(&d, NULL, extra);
    assert_int_equal(chmod(d.dir, 0755), 0);
    assert_int_equal(pipe(p), 0);
    assert_int_equal(pipe(go), 0);
    child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        int served = 0, refused = 0, fds[64];
        char c;
        if (setgid(65534) < 0 || setuid(65534) < 0)
            _exit(2);
        for (int i = 0; i < 64; i++) {
            fds[i] = connect_raw(d.sock);
            json_t *h = fds[i] >= 0 ? e2e_read(fds[i], 5000) : NULL;
            served += is_event(h, "hello", NULL);
            refused += is_event(h, "error", "too_many_connections");
            json_decref(h);
        }
        int out[2] = { served, refused };
        if (write(p[1], out, sizeof(out)) != sizeof(out) || read(go[0], &c, 1) < 0)
            _exit(3);
        _exit(0); /* holds its connections until told */
    }
    assert_int_equal(read(p[0], counts, sizeof(counts)), sizeof(counts));
    print_message("uid cap: nobody got %d served, %d refused\n", counts[0], counts[1]);
    assert_int_equal(counts[0], 16);
    assert_int_equal(counts[1], 64 - 16);
    fd = e2e_raw(&d); /* root: still served */
    e2e_send_str(fd, "{\"id\":1,\"op\":\"health\"}\n");
    ev = e2e_read(fd, 3000);
    assert_true(is_event(ev, "result", NULL));
    assert_int_equal(json_integer_value(json_object_get(ev, "connections")), 17);
    json_decref(ev);
    close(fd);
    assert_int_equal(write(go[1], "x", 1), 1);
    waitpid(child, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(p[0]);
    close(p[1]);
    close(go[0]);
    close(go[1]);
    assert_int_equal(e2e_stop(&d), 0);
    e2e_cleanup(&d);
}

struct pipeliner {
    int fd;
    int n;
    size_t text;
};

static void *pipeline_write(void *arg)
{
    struct pipeliner *pl = arg;
    char *line = malloc(pl->text + 100);
    int h;

    assert_non_null(line);
    for (int i = 0; i < pl->n; i++) {
        h = snprintf(line, 100, "{\"id\":%d,\"op\":\"tokenize\",\"text\":\"", i);
        memset(line + h, 'x', pl->text);
        memcpy(line + h + pl->text, "\"}\n", 3);
        e2e_send(pl->fd, line, (size_t)h + pl->text + 3);
    }
    free(line);
    return NULL;
}

/* A client writes 64 tokenize requests (16 KiB of text each, about 80 KiB
 * of reply each) before it reads anything, then reads them all: above
 * max_output (64 KiB) laded stops reading its requests instead of dropping
 * it, and every reply arrives, in order. */
static void test_pipelining_reader(void **state)
{
    const char *extra[] = { "--set", "limits.max_output_buffer_bytes=64K", "--set",
                            "limits.send_timeout_seconds=5", NULL };
    struct pipeliner pl = { .n = 64, .text = 16384 };
    struct e2e d;
    pthread_t th;

    e2e_start(&d, NULL, extra);
    pl.fd = e2e_raw(&d);
    assert_int_equal(pthread_create(&th, NULL, pipeline_write, &pl), 0);
    usleep(500000); /* let the output pile up */
    for (int i = 0; i < pl.n; i++) {
        char tail[64] = "", want[64];
        size_t n = 0;
        /* replies are longer than e2e_read's buffer: keep the tail, where the id is */
        for (;;) {
            struct pollfd p = { .fd = pl.fd, .events = POLLIN };
            char c;
            assert_true(poll(&p, 1, 5000) == 1);
            assert_int_equal(read(pl.fd, &c, 1), 1);
            if (c == '\n')
                break;
            if (n == sizeof(tail) - 1)
                memmove(tail, tail + 1, --n);
            tail[n++] = c;
            tail[n] = '\0';
        }
        snprintf(want, sizeof(want), "\"id\":%d,\"op\":\"tokenize\"}", i);
        if (!strstr(tail, want))
            fail_msg("reply %d ends %s", i, tail);
    }
    pthread_join(th, NULL);
    close(pl.fd);
    assert_int_equal(e2e_stop(&d), 0);
    assert_int_equal(count_log(&d, "dropping it"), 0);
    e2e_cleanup(&d);
}

/* A last line without a newline, then shutdown(SHUT_WR): it is answered;
 * an overlong one gets too_large. */
static void test_half_close_last_line(void **state)
{
    const char *extra[] = { "--set", "limits.max_request_bytes=4K", NULL };
    char big[8192];
    struct e2e d;
    int fd;
    json_t *ev;

    e2e_start(&d, NULL, extra);
    fd = e2e_raw(&d);
    e2e_send_str(
            fd,
            "{\"id\":1,\"op\":\"health\"}\n{\"id\":2,\"op\":\"generate\",\"prompt\":\"x\",\"max_tokens\":3}");
    shutdown(fd, SHUT_WR);
    ev = e2e_read(fd, 3000);
    assert_true(is_event(ev, "result", NULL));
    json_decref(ev);
    ev = e2e_read_final(fd, "2", NULL, 0);
    assert_true(is_event(ev, "done", NULL));
    json_decref(ev);
    assert_null(e2e_read(fd, 3000)); /* then closed */
    close(fd);

    fd = e2e_raw(&d);
    memset(big, 'x', sizeof(big));
    e2e_send(fd, big, sizeof(big));
    shutdown(fd, SHUT_WR);
    ev = e2e_read(fd, 3000);
    assert_true(is_event(ev, "error", "too_large"));
    json_decref(ev);
    close(fd);
    assert_int_equal(e2e_stop(&d), 0);
    e2e_cleanup(&d);
}

/* A line begun and never finished gets timeout after read_timeout_seconds,
 * then the close; so does a connection idle for idle_timeout_seconds; one
 * with a generation running is not idle. */
static void test_timeouts(void **state)
{
    const char *extra[] = { "--set", "limits.read_timeout_seconds=1", "--set",
                            "limits.idle_timeout_seconds=2", NULL };
    struct e2e d;
    int slow, idle, busy;
    json_t *ev;

    e2e_start(&d, NULL, extra);
    slow = e2e_raw(&d);
    idle = e2e_raw(&d);
    busy = e2e_raw(&d);
    e2e_send_str(
            busy,
            "{\"id\":\"b\",\"op\":\"generate\",\"prompt\":\"[delay=50]\",\"max_tokens\":80,\"lookahead\":false,\"stream\":false}\n");
    e2e_send_str(slow, "{\"id\":1,\"op\":");
    ev = e2e_read(slow, 3000);
    assert_true(is_event(ev, "error", "timeout"));
    json_decref(ev);
    assert_null(e2e_read(slow, 3000));
    ev = e2e_read(idle, 4000);
    assert_true(is_event(ev, "error", "timeout"));
    json_decref(ev);
    assert_null(e2e_read(idle, 3000));
    ev = e2e_read_final(busy, "b", NULL, 0); /* 4 s of generation: never idle */
    assert_true(is_event(ev, "done", NULL));
    json_decref(ev);
    close(slow);
    close(idle);
    close(busy);
    assert_int_equal(e2e_stop(&d), 0);
    e2e_cleanup(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_storm_health_first),
        cmocka_unit_test(test_out_of_fds),
        cmocka_unit_test(test_uid_cap),
        cmocka_unit_test(test_pipelining_reader),
        cmocka_unit_test(test_half_close_last_line),
        cmocka_unit_test(test_timeouts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
