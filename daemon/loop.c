/* daemon: the connections. Accepting, reading request lines, buffering
 * output (bounded: a client that stops reading is dropped), delivering what
 * the scheduler posted, closing. Event-loop thread only. */
#include "daemon/loop.h"

#include <errno.h>
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

void srv_conn_set_events(struct srv *s, struct srv_conn *c)
{
    uint32_t ev = (c->read_closed || c->read_paused ? 0 : EPOLLIN) |
                  (c->out_len > c->out_off ? EPOLLOUT : 0);
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
    if (c->out_len - c->out_off + len > s->cfg.lim.max_output) {
        srv_log(SRV_LOG_WARNING,
                "Connection %llu (pid %d) does not read its events, %zu bytes pending, dropping it",
                (unsigned long long)c->id, (int)c->pid, c->out_len - c->out_off);
        pthread_mutex_lock(&s->mu);
        s->stats.dropped_slow_clients++;
        pthread_mutex_unlock(&s->mu);
        c->dead = true;
        return;
    }
    if (out_reserve(c, len) < 0) {
        srv_log(SRV_LOG_WARNING, "Out of memory for connection %llu, dropping it",
                (unsigned long long)c->id);
        c->dead = true;
        return;
    }
    memcpy(c->out + c->out_len, line, len);
    c->out_len += len;
    conn_flush(s, c);
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
    pthread_mutex_lock(&s->mu);
    s->stats.errors[code]++;
    pthread_mutex_unlock(&s->mu);
    line = ipc_event_error(id, code, msg, &len);
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

static void conn_process_lines(struct srv *s, struct srv_conn *c)
{
    const char *line;
    size_t len;
    int k;

    while (!c->dead && (k = ipc_linebuf_next(&c->in, &line, &len)) != 0) {
        if (k < 0)
            srv_handle_overlong(s, c);
        else
            srv_handle_line(s, c, line, len);
    }
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
    if (n == 0)
        return;
    ipc_linebuf_commit(&c->in, n);
    if (c->hello_due_ns && srv_http_sniff(s, c))
        return;
    conn_process_lines(s, c);
}

void srv_conn_write(struct srv *s, struct srv_conn *c)
{
    conn_flush(s, c);
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
        if (c->read_closed && c->n_reqs == 0 && c->out_len == c->out_off)
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
static void reject(struct srv *s, int fd, bool tcp)
{
    size_t len;
    char msg[96];
    srv_cleanup_free char *line = NULL;

    snprintf(msg, sizeof(msg), "the daemon serves at most %u connections",
             s->cfg.lim.max_connections);
    line = tcp ? srv_http_refusal(503, msg, &len) :
                 ipc_event_error(NULL, IPC_ERR_TOO_MANY_CONNECTIONS, msg, &len);
    if (line && send(fd, line, len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
        srv_log_errno(SRV_LOG_DEBUG, errno, "Failed to tell a refused client why");
    close(fd);
    pthread_mutex_lock(&s->mu);
    s->stats.connections_rejected++;
    s->stats.errors[IPC_ERR_TOO_MANY_CONNECTIONS]++;
    pthread_mutex_unlock(&s->mu);
}

static int conn_add(struct srv *s, int fd, bool tcp)
{
    struct srv_conn *c = calloc(1, sizeof(*c));
    struct ucred cred = { .pid = 0, .uid = (uid_t)-1 };
    socklen_t cl = sizeof(cred);

    if (!c)
        return -ENOMEM;
    *c = (struct srv_conn){ .id = ++s->next_conn_id,
                            .fd = fd,
                            .events = EPOLLIN,
                            .tcp = tcp,
                            .hello_due_ns = tcp ? 0 : srv_now_ns() + SRV_HTTP_SNIFF_NS };
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0) {
        c->pid = cred.pid;
        c->uid = cred.uid;
    }
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
            (int)cred.pid, (int)cred.uid);
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

void srv_accept(struct srv *s, int listen_fd, bool tcp)
{
    for (int i = 0; i < 32; i++) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), r;
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN) { /* EMFILE and friends: back off a little */
                srv_log_errno(SRV_LOG_WARNING, errno,
                              "Failed to accept a connection, pausing for 100 ms");
                s->accept_paused_until_ns = srv_now_ns() + 100000000u;
            }
            return;
        }
        if (s->n_conns >= s->cfg.lim.max_connections) {
            srv_log(SRV_LOG_WARNING, "Refusing a connection: %u open", s->n_conns);
            reject(s, fd, tcp);
            continue;
        }
        if ((r = conn_add(s, fd, tcp)) < 0) {
            srv_log_errno(SRV_LOG_WARNING, r, "Failed to set up a connection, closing it");
            close(fd);
        }
    }
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
        if (c && o->done)
            srv_conn_forget_req(c, o->done);
        if (o->done)
            srv_req_unref(o->done);
        free(o);
    }
}
