/* daemon: the scheduler's workers. Each takes requests from the queue one
 * at a time, runs the engine's generate() and turns each step into events:
 * streaming detokenizer, UTF-8 hold-back. (Stop strings are the engine's:
 * decoding/ matches them.) Several workers run generations at once; the
 * engine shares the model's steps among them (continuous batching: a
 * request joins at the next step after a worker takes it, and leaves when
 * it ends). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/log.h"
#include "daemon/server.h"
#include "daemon/util.h"

#define PIECE_MAX 8192 /* bytes one step's tokens may decode to */

void srv_post(struct srv *s, uint64_t conn_id, char *line, size_t len, struct srv_req *done,
              bool job_end)
{
    struct srv_out *o = calloc(1, sizeof(*o));
    uint64_t one = 1;

    if (!o) {
        /* Without memory for the item the event is lost; a terminal one
         * still has to release its request. (A lost job_end leaves the
         * connection's later lines unread.) */
        free(line);
        if (done)
            srv_req_unref(done);
        return;
    }
    *o = (struct srv_out){
        .conn_id = conn_id, .done = done, .job_end = job_end, .line = line, .len = len
    };
    pthread_mutex_lock(&s->mu);
    /* Only the first item of a batch wakes the loop: srv_deliver takes
     * the whole list under this lock, so a later item either goes with
     * that batch or finds the list empty and wakes it again. One write
     * per batch, not per token. */
    bool wake = s->out_head == NULL;
    *s->out_tail = o;
    s->out_tail = &o->next;
    pthread_mutex_unlock(&s->mu);
    if (wake && write(s->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        srv_log_errno(SRV_LOG_WARNING, errno, "Failed to wake the event loop, ignoring");
}

struct gen_run {
    struct srv *s;
    struct srv_req *r;
    void *detok;
    char raw[PIECE_MAX * 2]; /* decoded bytes, the tail maybe an incomplete character */
    size_t raw_len;
    char *full; /* the whole completion, for stream=false */
    size_t full_len, full_cap;
};

static int append(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t nc = (*cap ? *cap * 2 : 1024);
        while (nc < *len + n + 1)
            nc *= 2;
        char *nb = realloc(*buf, nc);
        if (!nb)
            return -ENOMEM;
        *buf = nb;
        *cap = nc;
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
    return 0;
}

/* Send n bytes of text (and the step's tokens) to the client. */
static int deliver(struct gen_run *g, const char *text, size_t n, const int32_t *tokens,
                   uint32_t nt)
{
    size_t len;
    char *line;

    if (!g->r->rq.stream)
        return append(&g->full, &g->full_len, &g->full_cap, text, n);
    if (n == 0 && nt == 0)
        return 0;
    line = ipc_event_token(&g->r->rq.id, text, n, tokens, nt, &len);
    if (!line)
        return -ENOMEM;
    srv_post(g->s, g->r->conn_id, line, len, NULL, false);
    return 0;
}

/* Send the complete characters of raw (all of it when flushing), invalid
 * bytes replaced, with the tokens they came from. */
static int send_text(struct gen_run *g, bool flush, const int32_t *tokens, uint32_t nt)
{
    size_t n = flush ? g->raw_len : ipc_utf8_complete_len(g->raw, g->raw_len);
    char clean[PIECE_MAX * 6 + 1];
    size_t m = ipc_utf8_sanitize(g->raw, n, clean, sizeof(clean));

    memmove(g->raw, g->raw + n, g->raw_len - n);
    g->raw_len -= n;
    return deliver(g, clean, m, tokens, nt);
}

static int gen_emit(void *ud, const int32_t *tokens, uint32_t n)
{
    struct gen_run *g = ud;
    size_t got = 0;
    int r;

    r = g->s->engine.ops->detok_push(g->detok, tokens, n, g->raw + g->raw_len,
                                     sizeof(g->raw) - g->raw_len, &got);
    if (r < 0)
        return r;
    g->raw_len += got;
    return send_text(g, false, tokens, n);
}

/* The end of the text: at a STOP, the part of the stop token's text before
 * the stop string (the engine matched on the text this detokenizer gives
 * for the same tokens), then whatever raw still holds. */
static int end_text(struct gen_run *g, const struct dec_result *res)
{
    if (res->finish == DEC_FINISH_STOP && res->stop_token >= 0) {
        size_t got = 0;
        int r = g->s->engine.ops->detok_push(g->detok, &res->stop_token, 1, g->raw + g->raw_len,
                                             sizeof(g->raw) - g->raw_len, &got);
        if (r < 0)
            return r;
        g->raw_len += got < res->stop_token_bytes ? got : res->stop_token_bytes;
    }
    return send_text(g, true, NULL, 0);
}

static bool gen_cancelled(void *ud)
{
    struct gen_run *g = ud;

    atomic_store(&g->s->sched_beat_ns, srv_now_ns());
    return atomic_load(&g->r->cancel);
}

/* The request's last event: done, or an error. */
static char *final_event(struct gen_run *g, int r, const struct dec_result *res, double queue_ms,
                         size_t *len, enum ipc_err *ret_err)
{
    char msg[IPC_ERRMSG_MAX];

    *ret_err = IPC_ERR_NONE;
    if (r == -E2BIG)
        *ret_err = IPC_ERR_CONTEXT_EXCEEDED;
    else if (r == -EINVAL && res->error[0]) /* the engine refused the request (engine.h) */
        *ret_err = IPC_ERR_OUT_OF_RANGE;
    else if (r < 0)
        *ret_err = IPC_ERR_INTERNAL;
    else if (res->finish == DEC_FINISH_CANCELLED)
        *ret_err = IPC_ERR_CANCELLED;
    if (*ret_err != IPC_ERR_NONE) {
        if (*ret_err == IPC_ERR_CANCELLED)
            snprintf(msg, sizeof(msg), "request cancelled after %u tokens", res->n_tokens);
        else if (*ret_err == IPC_ERR_OUT_OF_RANGE)
            snprintf(msg, sizeof(msg), "%s", res->error);
        else
            snprintf(msg, sizeof(msg), "generation failed: %s", strerror(-r));
        return ipc_event_error(&g->r->rq.id, *ret_err, msg, len);
    }
    return ipc_event_done(&g->r->rq.id, dec_finish_name(res->finish), res, g->r->n_prompt, queue_ms,
                          g->r->rq.stream ? NULL : (g->full ? g->full : ""), g->full_len, len);
}

static void run_one(struct srv *s, uint32_t w, struct srv_req *req)
{
    struct gen_run *g = calloc(1, sizeof(*g));
    struct dec_result res = { .finish = DEC_FINISH_CANCELLED, .stop_token = -1 };
    double queue_ms = (srv_now_ns() - req->enqueued_ns) / 1e6;
    enum ipc_err err;
    char *line = NULL;
    size_t len = 0;
    int r = -ENOMEM;

    if (g) {
        *g = (struct gen_run){ .s = s, .r = req };
        bool early_cancel = atomic_load(&req->cancel);
        r = early_cancel ? 0 : s->engine.ops->detok_new(s->engine.ctx, &g->detok);
        if (r == 0 && !early_cancel) {
            r = s->engine.ops->generate(s->engine.ctx, req->prompt, req->n_prompt, &req->rq.params,
                                        gen_emit, gen_cancelled, g, &res);
            if (r == 0)
                r = end_text(g, &res);
            s->engine.ops->detok_free(g->detok);
        }
        line = final_event(g, r, &res, queue_ms, &len, &err);
    }
    srv_log(r < 0 ? SRV_LOG_WARNING : SRV_LOG_INFO,
            "Request '%s' of connection %llu: %s, %u prompt + %u generated tokens in %u steps, %.1f ms",
            req->rq.id.s, (unsigned long long)req->conn_id,
            r < 0 ? "failed" : dec_finish_name(res.finish), req->n_prompt, res.n_tokens,
            res.stats.steps, res.stats.prefill_ms + res.stats.step_ms_total);
    /* running is cleared before the terminal event goes out: once posted,
     * the loop may drop the last reference at any moment. */
    pthread_mutex_lock(&s->mu);
    s->running[w] = NULL;
    s->n_running--;
    if (r == 0)
        srv_stats_add_generation(&s->stats, req->n_prompt, &res);
    pthread_mutex_unlock(&s->mu);
    srv_post(s, req->conn_id, line, len, req, false);
    if (g) {
        free(g->full);
        free(g);
    }
}

static void *sched_main(void *arg)
{
    struct srv_worker *wk = arg;
    struct srv *s = wk->s;
    uint64_t one = 1;

    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->sched_stop && s->queue.len == 0)
            pthread_cond_wait(&s->cv, &s->mu);
        struct srv_req *r = srv_queue_pop(&s->queue);
        if (!r)
            break;
        s->running[wk->idx] = r;
        s->n_running++;
        pthread_mutex_unlock(&s->mu);
        run_one(s, wk->idx, r); /* clears running[idx] */
        pthread_mutex_lock(&s->mu);
    }
    bool last = --s->sched_live == 0;
    s->sched_exited = last;
    pthread_mutex_unlock(&s->mu);
    if (last && write(s->wake_fd, &one, sizeof(one)) < 0)
        srv_log_errno(SRV_LOG_WARNING, errno, "Failed to wake the event loop, ignoring");
    return NULL;
}

int srv_sched_start(struct srv *s)
{
    uint32_t n = s->cfg.max_parallel < s->info.max_parallel ? s->cfg.max_parallel :
                                                              s->info.max_parallel;
    n = n < 1 ? 1 : n > SRV_MAX_PARALLEL ? SRV_MAX_PARALLEL : n;
    pthread_mutex_lock(&s->mu);
    s->sched_live = n;
    pthread_mutex_unlock(&s->mu);
    for (uint32_t i = 0; i < n; i++) {
        s->workers[i] = (struct srv_worker){ .s = s, .idx = i };
        int r = pthread_create(&s->workers[i].thread, NULL, sched_main, &s->workers[i]);
        if (r != 0) {
            pthread_mutex_lock(&s->mu);
            s->sched_live -= n - i;
            pthread_mutex_unlock(&s->mu);
            s->n_workers = i;
            s->sched_started = i > 0;
            srv_sched_join(s);
            return srv_log_errno(SRV_LOG_ERR, r, "Failed to start the scheduler's workers");
        }
    }
    s->n_workers = n;
    s->sched_started = true;
    srv_log(SRV_LOG_INFO, "%u generation%s at once", n, n == 1 ? "" : "s");
    return 0;
}

void srv_sched_join(struct srv *s)
{
    if (!s->sched_started)
        return;
    pthread_mutex_lock(&s->mu);
    s->sched_stop = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    for (uint32_t i = 0; i < s->n_workers; i++)
        pthread_join(s->workers[i].thread, NULL);
    s->n_workers = 0;
    s->sched_started = false;
}

void srv_stats_take(struct srv *s, struct srv_stats *ret)
{
    struct srv_engine_load load = { 0 };
    if (s->engine.ops && s->engine.ops->load)
        s->engine.ops->load(s->engine.ctx, &load);
    pthread_mutex_lock(&s->mu);
    s->stats.queue_depth = s->queue.len;
    s->stats.running = s->n_running;
    s->stats.connections = s->n_conns;
    s->stats.load = load;
    *ret = s->stats;
    pthread_mutex_unlock(&s->mu);
}
