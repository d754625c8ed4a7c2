/* daemon: the connections. Accepting (per-uid cap, running out of fds),
 * reading request lines, buffering output, delivering what the scheduler
 * and the tokenizer posted, timeouts, closing. Event-loop thread only.
 *
 * Backpressure: a connection's lines are taken one at a time, and none
 * while the tokenizer holds a job of it or while its unsent output is above
 * max_output; the socket is not read meanwhile, so a client that writes
 * faster than it reads is slowed down, not dropped. It is dropped only when
 * it reads none of its output for send_timeout_s. */
#include "daemon/loop.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/http.h"
#include "daemon/log.h"
#include "daemon/util.h"

#define READ_CHUNK_MAX (256u * 1024)

static size_t unsent(const struct srv_conn *c)
{
    return c->out_len - c->out_off;
}

bool srv_conn_taking(const struct srv *s, const struct srv_conn *c)
{
    return !c->dead && !c->closing && !c->job_busy && unsent(c) <= s->cfg.lim.max_output;
}

/* The one place that decides whether c is read: not after a half-close,
 * not while HTTP's input buffer is full (read_paused), not while its
 * requests wait (srv_conn_taking: backpressure). */
void srv_conn_set_events(struct srv *s, struct srv_conn *c)
{
    bool in = !c->read_closed && !c->read_paused && srv_conn_taking(s, c);
    uint32_t ev = (in ? EPOLLIN : 0) | (unsent(c) ? EPOLLOUT : 0);
    struct epoll_event e = { .events = ev, .data.ptr = c };

    if (ev == c->events || c->dead)
        return;
    if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &e) < 0) {
        srv_log_errno(SRV_LOG_WARNING, errno, "Failed to update connection %llu, dropping it",
                      (unsigned long long)c->id);
        c->dead = true;
        return;
    }
    c->events = ev;
}

static void conn_flush(struct srv *s, struct srv_conn *c)
{
    while (c->out_off < c->out_len && !c->dead) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n < 0) {
            srv_log(SRV_LOG_INFO, "Connection %llu went away: %s", (unsigned long long)c->id,
                    strerror(errno));
            c->dead = true;
            return;
        }
        c->out_off += (size_t)n;
        c->tx_ns = c->active_ns = srv_now_ns();
    }
    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    srv_conn_set_events(s, c);
}

static int out_reserve(struct srv_conn *c, size_t len)
{
    if (c->out_off > 0 && c->out_len + len > c->out_cap) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    if (c->out_len + len > c->out_cap) {
        size_t nc = c->out_cap ? c->out_cap : 4096;
        while (nc < c->out_len + len)
            nc *= 2;
        char *nb = realloc(c->out, nc);
        if (!nb)
            return -ENOMEM;
        c->out = nb;
        c->out_cap = nc;
    }
    return 0;
}

void srv_conn_send(struct srv *s, struct srv_conn *c, char *line, size_t len)
{
    if (c->http)
        srv_http_event(s, c, line, len);
    else
        srv_conn_send_raw(s, c, line, len);
}

void srv_conn_send_raw(struct srv *s, struct srv_conn *c, char *line, size_t len)
{
    srv_cleanup_free char *l = line;

    if (c->dead || !line)
        return;
    if (out_reserve(c, len) < 0) {
        srv_log(SRV_LOG_WARNING, "Out of memory for connection %llu, dropping it",
                (unsigned long long)c->id);
        c->dead = true;
        return;
    }
    c->active_ns = srv_now_ns();
    if (!unsent(c))
        c->tx_ns = c->active_ns;
    memcpy(c->out + c->out_len, line, len);
    c->out_len += len;
    conn_flush(s, c);
}

char *srv_error_event(struct srv *s, const struct ipc_id *id, enum ipc_err code, size_t *ret_len,
                      const char *fmt, ...)
{
    char msg[IPC_ERRMSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&s->mu);
    s->stats.errors[code]++;
    pthread_mutex_unlock(&s->mu);
    return ipc_event_error(id, code, msg, ret_len);
}

void srv_conn_send_error(struct srv *s, struct srv_conn *c, const struct ipc_id *id,
                         enum ipc_err code, const char *fmt, ...)
{
    char msg[IPC_ERRMSG_MAX];
    va_list ap;
    size_t len;
    char *line;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    line = srv_error_event(s, id, code, &len, "%s", msg);
    srv_conn_send(s, c, line, len);
}

void srv_conn_forget_req(struct srv_conn *c, struct srv_req *r)
{
    for (uint32_t i = 0; i < c->n_reqs; i++) {
        if (c->reqs[i] == r) {
            c->reqs[i] = c->reqs[--c->n_reqs];
            srv_req_unref(r);
            return;
        }
    }
}

/* Take c's lines while it may (srv_conn_taking); after a half-close, the
 * bytes after its last newline are its last line. An HTTP connection's
 * requests are http.c's to take, under the same rule. */
static void conn_process_lines(struct srv *s, struct srv_conn *c)
{
    const char *line;
    size_t len;
    bool took = false;
    int k;

    if (c->http) {
        srv_http_process(s, c);
        return;
    }
    if (c->processing)
        return;
    c->processing = true;
    while (srv_conn_taking(s, c)) {
        k = ipc_linebuf_next(&c->in, &line, &len);
        if (k == 0 && c->read_closed)
            k = ipc_linebuf_rest(&c->in, &line, &len);
        if (k == 0)
            break;
        took = true;
        if (k < 0)
            srv_handle_overlong(s, c);
        else
            srv_handle_line(s, c, line, len);
    }
    c->processing = false;
    if (took || !srv_conn_taking(s, c) || !ipc_linebuf_has_data(&c->in))
        c->line_ns = 0;
    if (srv_conn_taking(s, c) && ipc_linebuf_has_data(&c->in) && !c->line_ns)
        c->line_ns = srv_now_ns();
    srv_conn_set_events(s, c);
}

size_t srv_conn_recv(struct srv *s, struct srv_conn *c, char *buf, size_t cap)
{
    ssize_t n = read(c->fd, buf, cap);

    if (n < 0) {
        if (errno != EAGAIN && errno != EINTR) {
            srv_log(SRV_LOG_INFO, "Connection %llu went away: %s", (unsigned long long)c->id,
                    strerror(errno));
            c->dead = true;
        }
        return 0;
    }
    if (n == 0) { /* half-close: answer what was asked, then close */
        c->read_closed = true;
        srv_conn_set_events(s, c);
    } else {
        c->active_ns = srv_now_ns();
    }
    return (size_t)n;
}

void srv_conn_read(struct srv *s, struct srv_conn *c)
{
    size_t avail, n;
    char *p;

    if (c->http) {
        srv_http_read(s, c);
        return;
    }
    p = ipc_linebuf_space(&c->in, &avail);
    if (!p || avail == 0) {
        srv_log(SRV_LOG_WARNING, "Out of memory for connection %llu, dropping it",
                (unsigned long long)c->id);
        c->dead = true;
        return;
    }
    n = srv_conn_recv(s, c, p, avail < READ_CHUNK_MAX ? avail : READ_CHUNK_MAX);
    if (n == 0 && !c->read_closed)
        return;
    ipc_linebuf_commit(&c->in, n);
    if (n > 0 && c->hello_due_ns && srv_http_sniff(s, c))
        return;
    conn_process_lines(s, c);
}

void srv_conn_write(struct srv *s, struct srv_conn *c)
{
    conn_flush(s, c);
    conn_process_lines(s, c); /* below the high-water mark again */
}

struct srv_conn *srv_conn_find(struct srv *s, uint64_t id)
{
    for (struct srv_conn *c = s->conns; c; c = c->next)
        if (c->id == id)
            return c;
    return NULL;
}

/* Release everything of c: its queued requests leave the queue, running
 * ones see their cancel flag at the next step. */
static void conn_free(struct srv *s, struct srv_conn *c)
{
    epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    s->accept_rearm = true;
    if (c->job) /* alive until the tokenizer's post of it is delivered */
        atomic_store(&c->job->cancel, true);
    while (c->n_reqs > 0) {
        struct srv_req *r = c->reqs[c->n_reqs - 1];
        bool queued;
        atomic_store(&r->cancel, true);
        pthread_mutex_lock(&s->mu);
        queued = srv_queue_remove(&s->queue, r);
        pthread_mutex_unlock(&s->mu);
        if (queued)
            srv_req_unref(r);
        srv_conn_forget_req(c, r);
    }
    ipc_linebuf_done(&c->in);
    srv_http_free(c->http);
    free(c->reqs);
    free(c->out);
    free(c);
}

void srv_conn_reap(struct srv *s, bool all)
{
    for (struct srv_conn **pp = &s->conns; *pp;) {
        struct srv_conn *c = *pp;
        if ((c->read_closed || c->closing) && c->n_reqs == 0 && !c->job_busy && !unsent(c) &&
            (c->closing || !ipc_linebuf_has_data(&c->in)))
            c->dead = true;
        if (!c->dead && !all) {
            pp = &c->next;
            continue;
        }
        *pp = c->next;
        srv_log(SRV_LOG_INFO, "Connection %llu closed", (unsigned long long)c->id);
        conn_free(s, c);
        s->n_conns--;
    }
}

/* Best effort: a refused client gets one error line (or, on TCP, an HTTP
 * answer) before the close. */
static void reject(struct srv *s, int fd, bool tcp, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static void reject(struct srv *s, int fd, bool tcp, const char *fmt, ...)
{
    size_t len;
    char msg[128];
    srv_cleanup_free char *line = NULL;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    line = srv_error_event(s, NULL, IPC_ERR_TOO_MANY_CONNECTIONS, &len, "%s", msg); /* counts it */
    if (tcp) {
        free(line);
        line = srv_http_refusal(503, msg, &len);
    }
    if (line && send(fd, line, len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
        srv_log_errno(SRV_LOG_DEBUG, errno, "Failed to tell a refused client why");
    close(fd);
    pthread_mutex_lock(&s->mu);
    s->stats.connections_rejected++;
    pthread_mutex_unlock(&s->mu);
}

/* Connections open for uid, up to cap. */
static uint32_t uid_conns(const struct srv *s, uid_t uid, uint32_t cap)
{
    uint32_t n = 0;

    for (const struct srv_conn *c = s->conns; c && n < cap; c = c->next)
        n += !c->tcp && c->uid == uid && !c->dead;
    return n;
}

/* A connection from the daemon's own user or root is never capped per uid:
 * the administrator keeps a way in. TCP clients have no uid. */
static bool uid_capped(const struct srv *s, uid_t uid)
{
    uint32_t cap = s->cfg.lim.max_conn_per_uid;

    return cap && uid != 0 && uid != getuid() && uid_conns(s, uid, cap) >= cap;
}

static int conn_add(struct srv *s, int fd, bool tcp, const struct ucred *cred)
{
    struct srv_conn *c = calloc(1, sizeof(*c));
    uint64_t now = srv_now_ns();

    if (!c)
        return -ENOMEM;
    *c = (struct srv_conn){ .id = ++s->next_conn_id,
                            .fd = fd,
                            .events = EPOLLIN,
                            .tcp = tcp,
                            .pid = cred->pid,
                            .uid = cred->uid,
                            .active_ns = now,
                            .tx_ns = now,
                            .hello_due_ns = tcp ? 0 : now + SRV_HTTP_SNIFF_NS };
    ipc_linebuf_init(&c->in, s->cfg.lim.max_line);
    struct epoll_event e = { .events = EPOLLIN, .data.ptr = c };
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &e) < 0) {
        free(c);
        return -errno;
    }
    c->next = s->conns;
    s->conns = c;
    s->n_conns++;
    pthread_mutex_lock(&s->mu);
    s->stats.connections_total++;
    pthread_mutex_unlock(&s->mu);
    srv_log(SRV_LOG_INFO, "Connection %llu from pid %d uid %d", (unsigned long long)c->id,
            (int)cred->pid, (int)cred->uid);
    if (tcp)
        srv_http_adopt(s, c);
    return 0; /* NDJSON's hello waits for the protocol: srv_http_sniff, srv_http_tick */
}

void srv_conn_hello(struct srv *s, struct srv_conn *c)
{
    struct ipc_hello h = { .server_version = LADE_VERSION,
                           .model = s->info.model_name,
                           .device = s->info.device };
    size_t len;
    char *line = ipc_event_hello(&h, &len);

    c->hello_due_ns = 0;
    srv_conn_send_raw(s, c, line, len);
}

static void accept_one(struct srv *s, int fd, bool tcp)
{
    struct ucred cred = { .pid = 0, .uid = (uid_t)-1 };
    socklen_t cl = sizeof(cred);
    int r;

    if (!tcp && getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0)
        srv_log_errno(SRV_LOG_DEBUG, errno, "Failed to read a client's credentials");
    if (s->n_conns >= s->cfg.lim.max_connections) {
        srv_log(SRV_LOG_WARNING, "Refusing a connection: %u open", s->n_conns);
        reject(s, fd, tcp, "the daemon serves at most %u connections", s->cfg.lim.max_connections);
    } else if (!tcp && uid_capped(s, cred.uid)) {
        srv_log(SRV_LOG_WARNING, "Refusing a connection from uid %d: it has %u open", (int)cred.uid,
                s->cfg.lim.max_conn_per_uid);
        reject(s, fd, tcp, "uid %d already has %u connections open", (int)cred.uid,
               s->cfg.lim.max_conn_per_uid);
    } else if ((r = conn_add(s, fd, tcp, &cred)) < 0) {
        srv_log_errno(SRV_LOG_WARNING, r, "Failed to set up a connection, closing it");
        close(fd);
    }
}

/* The listeners (the socket, and [http]'s TCP one) into or out of epoll. */
static int listeners_ctl(struct srv *s, int op)
{
    struct epoll_event e = { .events = EPOLLIN, .data.ptr = s->listen_tag };
    struct epoll_event h = { .events = EPOLLIN, .data.ptr = s->http_tag };
    int r = 0;

    if (s->listen_fd >= 0 && epoll_ctl(s->epfd, op, s->listen_fd, &e) < 0)
        return -errno;
    if (s->http_fd >= 0 && epoll_ctl(s->epfd, op, s->http_fd, &h) < 0) {
        r = -errno;
        if (op == EPOLL_CTL_ADD && s->listen_fd >= 0)
            epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->listen_fd, NULL);
    }
    return r;
}

/* Out of descriptors (EMFILE, ENFILE): the clients waiting in the backlog
 * of listen_fd are refused with an error through the spare descriptor, so
 * none is left silent, and the listeners leave epoll so that they do not
 * wake the loop again at once; srv_accept_resume puts them back when a
 * connection closes, or after a second. One log line per episode. */
static void accept_exhausted(struct srv *s, int listen_fd, bool tcp, int err)
{
    int fd;

    if (!s->accept_off && !s->fd_short)
        srv_log_errno(
                SRV_LOG_WARNING, err,
                "Failed to accept a connection: refusing waiting clients until a descriptor is free");
    s->fd_short = true;
    while (s->spare_fd >= 0) {
        close(s->spare_fd);
        s->spare_fd = -EBADF;
        fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0)
            reject(s, fd, tcp, "the daemon is out of file descriptors, try again later");
        s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            break;
    }
    if (listeners_ctl(s, EPOLL_CTL_DEL) < 0)
        srv_log_errno(SRV_LOG_DEBUG, errno, "Failed to pause the listeners");
    s->accept_off = true;
    s->accept_rearm = false;
    s->accept_retry_ns = srv_now_ns() + 1000000000u;
}

void srv_accept(struct srv *s, int listen_fd, bool tcp)
{
    for (int i = 0; i < 32 && listen_fd >= 0 && !s->accept_off; i++) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0 && (errno == EINTR || errno == ECONNABORTED))
            continue;
        if (fd < 0 && (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM))
            accept_exhausted(s, listen_fd, tcp, errno);
        else if (fd < 0 && errno != EAGAIN)
            srv_log_errno(SRV_LOG_WARNING, errno, "Failed to accept a connection, ignoring");
        if (fd < 0)
            return;
        if (s->fd_short)
            srv_log(SRV_LOG_DEBUG, "Accepting connections again");
        s->fd_short = false;
        accept_one(s, fd, tcp);
    }
}

void srv_accept_resume(struct srv *s, uint64_t now)
{
    if (!s->accept_off || s->listen_fd < 0 || (!s->accept_rearm && now < s->accept_retry_ns))
        return;
    if (s->spare_fd < 0)
        s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (listeners_ctl(s, EPOLL_CTL_ADD) < 0) {
        s->accept_retry_ns = now + 1000000000u;
        return;
    }
    s->accept_off = false;
    srv_accept(s, s->listen_fd, false);
    srv_accept(s, s->http_fd, true);
}

/* Hand what the scheduler posted to the connections. */
void srv_deliver(struct srv *s)
{
    struct srv_out *list, *next;
    uint64_t v;

    if (read(s->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        srv_log_errno(SRV_LOG_DEBUG, errno, "Failed to read the wake-up counter");
    pthread_mutex_lock(&s->mu);
    list = s->out_head;
    s->out_head = NULL;
    s->out_tail = &s->out_head;
    pthread_mutex_unlock(&s->mu);
    for (struct srv_out *o = list; o; o = next) {
        struct srv_conn *c = srv_conn_find(s, o->conn_id);
        next = o->next;
        if (c && o->line)
            srv_conn_send(s, c, o->line, o->len);
        else
            free(o->line);
        if (c && o->job_end) {
            c->job_busy = false;
            c->job = NULL;
        }
        if (c && o->done)
            srv_conn_forget_req(c, o->done);
        if (o->done)
            srv_req_unref(o->done);
        if (c && o->job_end)
            conn_process_lines(s, c); /* its next line */
        free(o);
    }
}

/* Answer c one last time (a timeout) and close it once that is written. */
static void conn_close_with(struct srv *s, struct srv_conn *c, const char *why, unsigned secs)
{
    srv_log(SRV_LOG_INFO, "Connection %llu (pid %d): %s %u s, closing it",
            (unsigned long long)c->id, (int)c->pid, why, secs);
    srv_conn_send_error(s, c, NULL, IPC_ERR_TIMEOUT, "%s %u s", why, secs);
    c->closing = true;
    c->line_ns = 0;
    srv_conn_set_events(s, c);
}

void srv_conn_sweep(struct srv *s, uint64_t now)
{
    const struct srv_limits *l = &s->cfg.lim;
    uint64_t send_ns = l->send_timeout_s * 1000000000ull,
             read_ns = l->read_timeout_s * 1000000000ull;
    uint64_t idle_ns = l->idle_timeout_s * 1000000000ull;

    for (struct srv_conn *c = s->conns; c; c = c->next) {
        bool idle = !c->n_reqs && !c->job_busy && !unsent(c) && !ipc_linebuf_has_data(&c->in);
        if (c->dead)
            continue;
        if (send_ns && unsent(c) && now - c->tx_ns > send_ns) {
            srv_log(SRV_LOG_WARNING,
                    "Connection %llu (pid %d) read none of its %zu pending bytes for %u s, dropping it",
                    (unsigned long long)c->id, (int)c->pid, unsent(c), l->send_timeout_s);
            pthread_mutex_lock(&s->mu);
            s->stats.dropped_slow_clients++;
            pthread_mutex_unlock(&s->mu);
            c->dead = true;
        } else if (c->closing || c->read_closed || c->http) {
            continue; /* HTTP's request and idle timeouts are http.c's (srv_http_tick) */
        } else if (read_ns && c->line_ns && now - c->line_ns > read_ns) {
            conn_close_with(s, c, "request line not completed within", l->read_timeout_s);
        } else if (idle_ns && idle && now - c->active_ns > idle_ns) {
            conn_close_with(s, c, "idle for", l->idle_timeout_s);
        }
    }
}
