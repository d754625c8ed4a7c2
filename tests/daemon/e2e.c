/* End-to-end helpers; see e2e.h. */
#include "e2e.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

void e2e_init(struct e2e *e)
{
    FILE *f;

    memset(e, 0, sizeof(*e));
    snprintf(e->dir, sizeof(e->dir), "/tmp/lade-e2e-XXXXXX");
    assert_non_null(mkdtemp(e->dir));
    snprintf(e->sock, sizeof(e->sock), "%s/laded.sock", e->dir);
    snprintf(e->log, sizeof(e->log), "%s/laded.log", e->dir);
    snprintf(e->conf, sizeof(e->conf), "%s/laded.conf", e->dir);
    f = fopen(e->conf, "w");
    assert_non_null(f);
    fclose(f);
    e->pid = -1;
}

const char e2e_real_engine[] = "real";

void e2e_spawn(struct e2e *e, const char *spec, const char *const *extra, int listen_fd)
{
    char fake[256];
    const char *argv[64] = { LADED_PATH, fake,    "--socket", e->sock,
                             "-c",       e->conf, "--set",    "daemon.socket_group=" };
    int n = 8;

    if (e->default_group)
        n = 6;
    snprintf(fake, sizeof(fake), "--fake-engine=%s", spec ? spec : "");
    if (spec == e2e_real_engine) /* the real model: no fake-engine argument */
        argv[1] = "--set=daemon.log_level=info";
    for (int i = 0; extra && extra[i] && n < 62; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    e->pid = fork();
    assert_true(e->pid >= 0);
    if (e->pid == 0) {
        int log = open(e->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2(log, STDERR_FILENO);
        dup2(log, STDOUT_FILENO);
        if (listen_fd >= 0) {
            char pid[32];
            dup2(listen_fd, 3);
            snprintf(pid, sizeof(pid), "%d", (int)getpid());
            setenv("LISTEN_FDS", "1", 1);
            setenv("LISTEN_PID", pid, 1);
        }
        execv(LADED_PATH, (char **)argv);
        _exit(127);
    }
}

static int try_connect(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    size_t n = strlen(path);
    assert_true(n < sizeof(sa.sun_path)); /* test socket paths are short */
    memcpy(sa.sun_path, path, n + 1);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
        return fd;
    close(fd);
    return -1;
}

void e2e_dump_log(const struct e2e *e)
{
    char buf[4096];
    FILE *f = fopen(e->log, "r");

    if (!f)
        return;
    print_message("---- laded log (%s) ----\n", e->log);
    while (fgets(buf, sizeof(buf), f))
        print_message("%s", buf);
    fclose(f);
}

bool e2e_log_has(const struct e2e *e, const char *needle)
{
    char buf[4096];
    bool found = false;
    FILE *f = fopen(e->log, "r");

    while (f && !found && fgets(buf, sizeof(buf), f))
        found = strstr(buf, needle) != NULL;
    if (f)
        fclose(f);
    return found;
}

void e2e_wait_ready(struct e2e *e)
{
    for (int i = 0; i < 1000; i++) {
        int status, fd = try_connect(e->sock);
        if (fd >= 0) {
            close(fd);
            return;
        }
        if (waitpid(e->pid, &status, WNOHANG) == e->pid) {
            e->pid = -1;
            e2e_dump_log(e);
            fail_msg("laded exited before it was ready");
        }
        usleep(10000);
    }
    e2e_dump_log(e);
    fail_msg("laded did not listen within 10 s");
}

void e2e_start(struct e2e *e, const char *spec, const char *const *extra)
{
    e2e_init(e);
    e2e_spawn(e, spec, extra, -1);
    e2e_wait_ready(e);
}

int e2e_wait_exit(struct e2e *e, int timeout_ms)
{
    int status;

    for (int waited = 0; e->pid > 0 && waited <= timeout_ms; waited += 10) {
        if (waitpid(e->pid, &status, WNOHANG) == e->pid) {
            e->pid = -1;
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        usleep(10000);
    }
    if (e->pid > 0) {
        kill(e->pid, SIGKILL);
        waitpid(e->pid, &status, 0);
        e->pid = -1;
    }
    return -1;
}

int e2e_stop(struct e2e *e)
{
    if (e->pid > 0)
        kill(e->pid, SIGTERM);
    return e2e_wait_exit(e, 10000);
}

void e2e_cleanup(struct e2e *e)
{
    char path[160];

    if (e->pid > 0)
        e2e_stop(e);
    unlink(e->sock);
    unlink(e->log);
    unlink(e->conf);
    snprintf(path, sizeof(path), "%s/key", e->dir);
    unlink(path);
    rmdir(e->dir);
}

struct lade_client *e2e_client(struct e2e *e)
{
    struct lade_client *c = NULL;
    int r = lade_client_connect(e->sock, &c);

    if (r < 0)
        e2e_dump_log(e);
    assert_int_equal(r, 0);
    return c;
}

void e2e_send(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        assert_true(n > 0);
        p += n;
        len -= (size_t)n;
    }
}

void e2e_send_str(int fd, const char *s)
{
    e2e_send(fd, s, strlen(s));
}

/* One byte at a time: slow, but no buffer to keep between calls. */
json_t *e2e_read(int fd, int timeout_ms)
{
    char line[1 << 16];
    size_t n = 0;

    while (n < sizeof(line) - 1) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, timeout_ms) <= 0)
            return NULL;
        ssize_t k = read(fd, line + n, 1);
        if (k <= 0)
            return NULL;
        if (line[n] == '\n')
            return json_loadb(line, n, 0, NULL);
        n++;
    }
    return NULL;
}

static int free_port(void)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

int e2e_start_tcp(struct e2e *e, const char *spec, const char *key)
{
    char listen[64], keyfile[160];
    const char *extra[] = { "--set", listen, key ? "--set" : NULL, keyfile, NULL };
    int port = free_port();
    FILE *f;

    snprintf(listen, sizeof(listen), "http.listen=127.0.0.1:%d", port);
    e2e_init(e);
    snprintf(keyfile, sizeof(keyfile), "http.api_key_file=%s/key", e->dir);
    if (key) {
        f = fopen(keyfile + 18, "w");
        assert_non_null(f);
        fprintf(f, "%s\n", key);
        fclose(f);
    }
    e2e_spawn(e, spec, extra, -1);
    e2e_wait_ready(e);
    return port;
}

bool e2e_wait_stats(struct lade_client *c, const char *needle)
{
    struct lade_event ev;

    for (int i = 0; i < 100; i++) {
        usleep(50000);
        assert_int_equal(lade_client_simple(c, "s", "stats"), 0);
        assert_int_equal(lade_client_next(c, &ev, 5000), 1);
        if (strstr(ev.json, needle))
            return true;
    }
    return false;
}

int e2e_connect(struct e2e *e)
{
    int fd = try_connect(e->sock);

    assert_true(fd >= 0);
    return fd;
}

int e2e_raw(struct e2e *e)
{
    int fd = try_connect(e->sock);
    json_t *h;

    assert_true(fd >= 0);
    h = e2e_read(fd, 5000);
    assert_non_null(h);
    assert_string_equal(e2e_str(h, "event"), "hello");
    json_decref(h);
    return fd;
}

const char *e2e_str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

json_t *e2e_read_final(int fd, const char *id, char *text, size_t cap)
{
    size_t len = 0;

    if (text)
        text[0] = '\0';
    for (;;) {
        json_t *ev = e2e_read(fd, 20000);
        if (!ev)
            return NULL;
        json_t *jid = json_object_get(ev, "id");
        char idbuf[80];
        if (json_is_integer(jid))
            snprintf(idbuf, sizeof(idbuf), "%lld", (long long)json_integer_value(jid));
        else
            snprintf(idbuf, sizeof(idbuf), "%s", json_is_string(jid) ? json_string_value(jid) : "");
        const char *type = e2e_str(ev, "event");
        if (strcmp(idbuf, id) == 0 && !strcmp(type, "token")) {
            const char *t = e2e_str(ev, "text");
            size_t tl = strlen(t);
            if (text && len + tl < cap) {
                memcpy(text + len, t, tl + 1);
                len += tl;
            }
        } else if (strcmp(idbuf, id) == 0) {
            return ev;
        }
        json_decref(ev);
    }
}

json_int_t e2e_int(json_t *o, const char *obj, const char *key)
{
    return json_integer_value(json_object_get(json_object_get(o, obj), key));
}

json_t *e2e_info(int fd)
{
    e2e_send_str(fd, "{\"id\":\"info\",\"op\":\"info\"}\n");
    json_t *r = e2e_read_final(fd, "info", NULL, 0);
    assert_non_null(r);
    return r;
}

json_t *e2e_reload(struct e2e *e, int fd, const char *text)
{
    static unsigned reloads;
    json_int_t marker = 65536 + 2000 * (reloads % 2) + reloads; /* up, down, up, ... */
    FILE *f = fopen(e->conf, "w");

    assert_non_null(f);
    fprintf(f, "%s\n[limits]\nmax_output_buffer_bytes = %lld\n", text, (long long)marker);
    fclose(f);
    reloads++;
    kill(e->pid, SIGHUP);
    for (int i = 0; i < 500; i++) {
        json_t *r = e2e_info(fd);
        if (e2e_int(r, "limits", "max_output") == marker)
            return r;
        json_decref(r);
        usleep(10000);
    }
    e2e_dump_log(e);
    fail_msg("the reload of '%s' never showed in info", text);
    return NULL;
}

void e2e_expect_done(json_t *ev)
{
    if (strcmp(e2e_str(ev, "event"), "done") != 0)
        fail_msg("expected done, got %s", ev ? json_dumps(ev, JSON_COMPACT) : "nothing");
    json_decref(ev);
}

void e2e_expect_error(json_t *ev, const char *code, const char *needle)
{
    if (strcmp(e2e_str(ev, "event"), "error") != 0 || strcmp(e2e_str(ev, "code"), code) != 0 ||
        !strstr(e2e_str(ev, "message"), needle))
        fail_msg("expected %s with '%s', got %s", code, needle,
                 ev ? json_dumps(ev, JSON_COMPACT) : "nothing");
    json_decref(ev);
}

json_t *e2e_sigterm_during(struct e2e *e, int fd, const char *line, const char *id)
{
    e2e_send_str(fd, line);
    json_t *first = e2e_read(fd, 30000);
    assert_non_null(first);
    json_decref(first);
    kill(e->pid, SIGTERM);
    return e2e_read_final(fd, id, NULL, 0);
}

/* ---- HTTP --------------------------------------------------------------- */

bool e2e_get_byte(int fd, char *c)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };

    return poll(&p, 1, 20000) > 0 && read(fd, c, 1) == 1;
}

bool e2e_get_line(int fd, char *buf, size_t cap)
{
    size_t n = 0;

    while (n + 1 < cap && e2e_get_byte(fd, &buf[n]))
        if (buf[n++] == '\n') {
            buf[n] = '\0';
            return true;
        }
    return false;
}

static void append(struct e2e_resp *r, int fd, size_t n)
{
    r->body = realloc(r->body, r->len + n + 1);
    assert_non_null(r->body);
    for (size_t i = 0; i < n; i++)
        assert_true(e2e_get_byte(fd, &r->body[r->len + i]));
    r->len += n;
    r->body[r->len] = '\0';
}

const char *e2e_header(const struct e2e_resp *r, const char *name)
{
    static char v[256];
    size_t n = strlen(name);

    for (const char *p = strstr(r->head, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
        if (!strncasecmp(p + 2, name, n) && p[2 + n] == ':') {
            const char *a = p + 3 + n, *b = strstr(a, "\r\n");
            while (*a == ' ')
                a++;
            snprintf(v, sizeof(v), "%.*s", (int)(b - a), a);
            return v;
        }
    }
    return NULL;
}

/* One response; false on EOF before its status line. */
bool e2e_http_read(int fd, struct e2e_resp *r)
{
    char line[8192];
    const char *cl, *te;

    *r = (struct e2e_resp){ .body = calloc(1, 1) };
    if (!e2e_get_line(fd, line, sizeof(line)))
        return false;
    assert_int_equal(sscanf(line, "HTTP/1.1 %d", &r->status), 1);
    snprintf(r->head, sizeof(r->head), "%s", line);
    while (e2e_get_line(fd, line, sizeof(line)) && strcmp(line, "\r\n")) {
        size_t have = strlen(r->head), n = strlen(line);
        assert_true(have + n < sizeof(r->head));
        memcpy(r->head + have, line, n + 1);
    }
    if (r->status == 100)
        return true;
    cl = e2e_header(r, "Content-Length");
    te = e2e_header(r, "Transfer-Encoding");
    if (te && !strcmp(te, "chunked")) {
        for (;;) {
            size_t n;
            assert_true(e2e_get_line(fd, line, sizeof(line)));
            n = strtoul(line, NULL, 16);
            if (n == 0)
                break;
            append(r, fd, n);
            assert_true(e2e_get_line(fd, line, sizeof(line)));
            assert_string_equal(line, "\r\n");
        }
        assert_true(e2e_get_line(fd, line, sizeof(line)));
        assert_string_equal(line, "\r\n");
    } else if (cl) {
        append(r, fd, strtoul(cl, NULL, 10));
    } else {
        char c;
        while (e2e_get_byte(fd, &c)) {
            r->body = realloc(r->body, r->len + 2);
            assert_non_null(r->body);
            r->body[r->len++] = c;
            r->body[r->len] = '\0';
        }
    }
    return true;
}

void e2e_resp_done(struct e2e_resp *r)
{
    free(r->body);
    r->body = NULL;
}

json_t *e2e_resp_json(const struct e2e_resp *r)
{
    json_t *o = json_loadb(r->body, r->len, 0, NULL);

    if (!o)
        print_message("not JSON: %s\n", r->body);
    assert_non_null(o);
    return o;
}

char *e2e_post_req(const char *path, const char *body)
{
    char *s = NULL;

    assert_true(asprintf(&s,
                         "POST %s HTTP/1.1\r\nHost: lade\r\nContent-Type: application/json\r\n"
                         "Content-Length: %zu\r\n\r\n%s",
                         path, strlen(body), body) > 0);
    return s;
}

/* One request on a fresh connection; the response's status. */
int e2e_exchange(struct e2e *e, const char *raw, struct e2e_resp *r)
{
    int fd = e2e_connect(e);

    e2e_send_str(fd, raw);
    assert_true(e2e_http_read(fd, r));
    close(fd);
    return r->status;
}

int e2e_post(struct e2e *e, const char *path, const char *body, struct e2e_resp *r)
{
    char *raw = e2e_post_req(path, body);
    int st = e2e_exchange(e, raw, r);

    free(raw);
    return st;
}
