/* daemon: the server's life: build, the event loop, SIGTERM drain, SIGHUP
 * reload, the watchdog. */
#include "daemon/server.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "daemon/chat.h"
#include "daemon/http.h"
#include "daemon/log.h"
#include "daemon/loop.h"
#include "daemon/systemd.h"
#include "daemon/util.h"

/* epoll tags of the fixed fds; connections carry their struct. */
static char tag_listen, tag_http, tag_signal, tag_wake;

/* The chat format, decided once: the model's template, or a fallback
 * whose reason is logged here. */
static int load_chat(struct srv *s)
{
    const char *why, *fmt;
    int r = srv_chat_new(s->info.chat_template, s->info.bos_token, s->info.eos_token, &s->chat);

    if (r < 0 || !(why = srv_chat_fallback_reason(s->chat)))
        return r;
    fmt = srv_chat_format(s->chat);
    if (fmt)
        srv_log(SRV_LOG_WARNING,
                "Cannot render the model's chat template (%s), using the built-in '%s' format", why,
                fmt);
    else
        srv_log(SRV_LOG_WARNING,
                "Cannot render the model's chat template (%s) and it is of no known family: chat requests will be refused",
                why);
    return 0;
}

int srv_new(struct srv_config *cfg, struct srv_engine *engine, struct srv **ret)
{
    struct srv *s = calloc(1, sizeof(*s));
    int r;

    if (!s)
        return -ENOMEM;
    s->cfg = *cfg;
    memset(cfg, 0, sizeof(*cfg));
    s->engine = *engine;
    engine->ops = NULL;
    s->engine.ops->info(s->engine.ctx, &s->info);
    srv_limits_fit(&s->cfg.lim, s->info.max_rows);
    s->epfd = s->listen_fd = s->http_fd = s->signal_fd = s->wake_fd = s->spare_fd = -EBADF;
    s->out_tail = &s->out_head;
    s->work_tail = &s->work_head;
    s->listen_tag = &tag_listen;
    s->http_tag = &tag_http;
    s->stats.start_ns = srv_now_ns();
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    pthread_cond_init(&s->work_cv, NULL);
    r = load_chat(s);
    if (r == 0)
        r = srv_queue_init(&s->queue, SRV_QUEUE_HARD_MAX, s->cfg.lim.queue_max);
    if (r == 0) {
        s->epfd = epoll_create1(EPOLL_CLOEXEC);
        s->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (s->epfd < 0 || s->wake_fd < 0)
            r = -errno;
    }
    if (r < 0) {
        srv_free(s);
        return r;
    }
    *ret = s;
    return 0;
}

void srv_free(struct srv *s)
{
    if (!s)
        return;
    srv_work_join(s);
    srv_sched_join(s);
    srv_conn_reap(s, true);
    srv_deliver(s); /* releases what the scheduler and the tokenizer posted last */
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    if (s->http_fd >= 0)
        close(s->http_fd);
    free(s->http_key);
    if (s->signal_fd >= 0)
        close(s->signal_fd);
    if (s->wake_fd >= 0)
        close(s->wake_fd);
    if (s->spare_fd >= 0)
        close(s->spare_fd);
    if (s->epfd >= 0)
        close(s->epfd);
    srv_queue_done(&s->queue);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    pthread_cond_destroy(&s->work_cv);
    srv_engine_destroy(&s->engine);
    srv_chat_free(s->chat);
    srv_config_done(&s->cfg);
    free(s);
}

static int watch(struct srv *s, int fd, void *tag)
{
    struct epoll_event e = { .events = EPOLLIN, .data.ptr = tag };

    return epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &e) < 0 ? -errno : 0;
}

static void stop_listening(struct srv *s)
{
    if (s->http_fd >= 0) {
        if (!s->accept_off)
            epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->http_fd, NULL);
        close(s->http_fd);
        s->http_fd = -EBADF;
    }
    if (s->listen_fd < 0)
        return;
    if (!s->accept_off)
        epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->listen_fd, NULL);
    close(s->listen_fd);
    s->listen_fd = -EBADF;
    srv_socket_remove(&s->socket_file);
}

/* SIGTERM: no new connections or requests, queued work is answered with
 * shutting_down, the running generations get grace_s to finish. */
static void start_drain(struct srv *s)
{
    struct srv_req *r;

    if (s->draining)
        return;
    s->draining = true;
    s->drain_deadline_ns = srv_now_ns() + (uint64_t)(s->cfg.grace_s * 1e9);
    srv_log(SRV_LOG_NOTICE, "Stopping: draining for up to %.1f s", s->cfg.grace_s);
    srv_sd_stopping();
    stop_listening(s);
    pthread_mutex_lock(&s->mu);
    while ((r = srv_queue_pop(&s->queue))) {
        pthread_mutex_unlock(&s->mu);
        struct srv_conn *c = srv_conn_find(s, r->conn_id);
        if (c) {
            srv_conn_send_error(s, c, &r->rq.id, IPC_ERR_SHUTTING_DOWN,
                                "the daemon is shutting down");
            srv_conn_forget_req(c, r);
        }
        srv_req_unref(r);
        pthread_mutex_lock(&s->mu);
    }
    s->sched_stop = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void reload(struct srv *s)
{
    struct srv_config nc;
    int r;

    srv_sd_reloading();
    if (!s->reload || (r = s->reload(s->reload_ud, &nc)) < 0) {
        srv_log(SRV_LOG_WARNING, "Failed to reload the configuration, keeping the running one");
        srv_sd_ready(s->info.model_name, s->info.device);
        return;
    }
    srv_limits_fit(&nc.lim, s->info.max_rows);
    s->cfg.log_level = nc.log_level;
    s->cfg.grace_s = nc.grace_s;
    s->cfg.lim = nc.lim;
    for (struct srv_conn *c = s->conns; c; c = c->next)
        c->in.max = nc.lim.max_line; /* ipc_linebuf copes with either direction mid-line */
    srv_log_set_level(nc.log_level);
    pthread_mutex_lock(&s->mu);
    srv_queue_set_limit(&s->queue, nc.lim.queue_max);
    pthread_mutex_unlock(&s->mu);
    srv_log(SRV_LOG_NOTICE,
            "Reloaded: log level %d, queue %u, connections %u, max_tokens %u, lookahead %u/%u/%u",
            nc.log_level, nc.lim.queue_max, nc.lim.max_connections, nc.lim.max_tokens,
            nc.lim.la_n_max, nc.lim.la_w_max, nc.lim.la_g_max);
    srv_config_done(&nc);
    srv_sd_ready(s->info.model_name, s->info.device);
}

static void handle_signal(struct srv *s)
{
    struct signalfd_siginfo si;

    while (read(s->signal_fd, &si, sizeof(si)) == sizeof(si)) {
        if (si.ssi_signo == SIGHUP)
            reload(s);
        else
            start_drain(s);
    }
}

/* Ping only while the scheduler is idle or still making steps, so a hung
 * GPU lets systemd restart us. */
static void watchdog(struct srv *s, uint64_t now)
{
    bool busy;

    if (!s->watchdog_usec || now < s->next_watchdog_ns)
        return;
    pthread_mutex_lock(&s->mu);
    busy = s->n_running > 0;
    pthread_mutex_unlock(&s->mu);
    if (!busy || now - atomic_load(&s->sched_beat_ns) < s->watchdog_usec * 1000)
        srv_sd_watchdog_ping();
    s->next_watchdog_ns = now + s->watchdog_usec * 500;
}

/* While draining: cancel the running generations past the deadline; true
 * once everything is answered and written (or a second past the deadline). */
static bool drain_done(struct srv *s, uint64_t now)
{
    bool exited, outbox_empty, flushed = true;

    pthread_mutex_lock(&s->mu);
    for (uint32_t i = 0; now >= s->drain_deadline_ns && i < SRV_MAX_PARALLEL; i++) {
        struct srv_req *r = s->running[i];
        if (r && !atomic_load(&r->cancel)) {
            srv_log(SRV_LOG_NOTICE, "Grace period over: cancelling request '%s'", r->rq.id.s);
            atomic_store(&r->cancel, true);
        }
    }
    exited = s->sched_exited && !s->work_head && !s->work_busy;
    outbox_empty = s->out_head == NULL;
    pthread_mutex_unlock(&s->mu);
    for (struct srv_conn *c = s->conns; c; c = c->next)
        flushed = flushed && (c->dead || c->out_len == c->out_off);
    return exited && outbox_empty && (flushed || now >= s->drain_deadline_ns + 1000000000u);
}

static void dispatch(struct srv *s, struct epoll_event *e)
{
    void *p = e->data.ptr;

    if (p == &tag_listen || p == &tag_http) {
        srv_accept(s, p == &tag_http ? s->http_fd : s->listen_fd, p == &tag_http);
    } else if (p == &tag_signal) {
        handle_signal(s);
    } else if (p == &tag_wake) {
        srv_deliver(s);
    } else {
        struct srv_conn *c = p;
        if (!c->dead && (e->events & EPOLLOUT))
            srv_conn_write(s, c);
        if (!c->dead && (e->events & EPOLLIN))
            srv_conn_read(s, c);
        if (!c->dead && (e->events & (EPOLLHUP | EPOLLERR))) {
            srv_log(SRV_LOG_INFO, "Connection %llu hung up", (unsigned long long)c->id);
            c->dead = true;
        }
    }
}

static int loop(struct srv *s)
{
    struct epoll_event evs[64];

    for (;;) {
        uint64_t now = srv_now_ns();
        int timeout = s->draining ? 20 : s->accept_off ? 100 : 250;
        if (s->watchdog_usec && timeout > (int)(s->watchdog_usec / 4000))
            timeout = (int)(s->watchdog_usec / 4000);
        timeout = srv_http_timeout(s, now, timeout);
        int n = epoll_wait(s->epfd, evs, 64, timeout);
        if (n < 0 && errno != EINTR)
            return srv_log_errno(SRV_LOG_ERR, errno, "Failed to wait for events");
        for (int i = 0; i < n; i++)
            dispatch(s, &evs[i]);
        now = srv_now_ns();
        if (now >= s->next_sweep_ns) {
            srv_conn_sweep(s, now);
            s->next_sweep_ns = now + 100000000u;
        }
        srv_http_tick(s, srv_now_ns());
        srv_conn_reap(s, false);
        srv_accept_resume(s, now);
        watchdog(s, now);
        if (s->draining && drain_done(s, now))
            return 0;
    }
}

static int setup_fds(struct srv *s, int listen_fd)
{
    sigset_t mask;
    int r;

    s->listen_fd = listen_fd;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    s->signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (s->signal_fd < 0)
        return srv_log_errno(SRV_LOG_ERR, errno, "Failed to create a signalfd");
    s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC); /* given up when out of fds (loop.c) */
    if (s->spare_fd < 0)
        return srv_log_errno(SRV_LOG_ERR, errno, "Failed to open '/dev/null'");
    if ((r = watch(s, s->listen_fd, &tag_listen)) < 0 ||
        (r = watch(s, s->signal_fd, &tag_signal)) < 0 ||
        (r = watch(s, s->wake_fd, &tag_wake)) < 0 ||
        (s->http_fd >= 0 && (r = watch(s, s->http_fd, &tag_http)) < 0))
        return srv_log_errno(SRV_LOG_ERR, r, "Failed to set up the event loop");
    return 0;
}

int srv_run(struct srv *s, int listen_fd, const struct srv_socket_file *file)
{
    char status[256];
    int r;

    if (file)
        s->socket_file = *file;
    if ((r = setup_fds(s, listen_fd)) < 0)
        return r;
    if ((r = srv_work_start(s)) < 0 || (r = srv_sched_start(s)) < 0)
        return r;
    s->watchdog_usec = s->cfg.watchdog ? srv_sd_watchdog_usec() : 0;
    srv_log(SRV_LOG_NOTICE, "Serving model '%s' (%s, n_ctx %u, chat template %s) on %s at '%s'",
            s->info.model_name, s->info.arch, s->info.n_ctx,
            srv_chat_format(s->chat) ? srv_chat_format(s->chat) : "none", s->info.device,
            s->cfg.socket_path);
    srv_sd_ready(s->info.model_name, s->info.device);
    r = loop(s);
    srv_work_join(s);
    srv_sched_join(s);
    srv_deliver(s);
    for (struct srv_conn *c = s->conns; c; c = c->next)
        srv_conn_write(s, c);
    stop_listening(s);
    snprintf(status, sizeof(status), "Stopped");
    srv_sd_status(status);
    srv_log(SRV_LOG_NOTICE, "Stopped");
    return r;
}
