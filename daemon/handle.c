/* daemon: what the event loop does with one request line. Generations are
 * checked here and handed with tokenize and detokenize to the tokenizer
 * thread (work.c); every other op is answered at once, so
 * info/health/stats/cancel never wait behind the GPU or a big prompt. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/chat.h"
#include "daemon/log.h"
#include "daemon/server.h"
#include "daemon/util.h"

void srv_req_unref(struct srv_req *r)
{
    if (!r || atomic_fetch_sub(&r->ref, 1) != 1)
        return;
    ipc_request_done(&r->rq);
    free(r->prompt);
    free(r);
}

void srv_handle_overlong(struct srv *s, struct srv_conn *c)
{
    srv_conn_send_error(s, c, NULL, IPC_ERR_TOO_LARGE, "request line longer than %zu bytes",
                        s->cfg.lim.max_line);
}

static void send_result(struct srv *s, struct srv_conn *c, const struct ipc_request *rq,
                        json_t *body)
{
    size_t len;
    char *line = body ? ipc_event_result(&rq->id, rq->op, body, &len) : NULL;

    if (!line) {
        srv_conn_send_error(s, c, &rq->id, IPC_ERR_INTERNAL, "out of memory");
        return;
    }
    srv_conn_send(s, c, line, len);
}

/* A lookahead parameter the request left out: the configured default,
 * else the device's choice, never above the live cap. */
static uint32_t la_default(uint32_t configured, uint32_t device, uint32_t cap)
{
    uint32_t v = configured ? configured : device;

    return v > cap ? cap : v;
}

/* The request's parameters made whole in place, from the live settings
 * (this thread owns them; a reload changes them between two requests):
 * the defaults where it gives none, the lookahead features, a seed, and
 * its stop strings (build_prompt may add the template's). What it did
 * give is left for check_params to judge. */
static void fill_params(struct srv *s, struct srv_req *r)
{
    const struct srv_limits *l = &s->cfg.lim;
    const struct srv_engine_info *in = &s->info;
    struct ipc_request *rq = &r->rq;
    struct dec_params *p = &rq->params;

    if (!p->max_tokens)
        p->max_tokens = l->default_max_tokens;
    if (!rq->has_seed)
        p->seed = srv_now_ns() ^ (r->conn_id << 32);
    if (!rq->lookahead_set)
        p->lookahead = l->lookahead_default;
    if (p->lookahead) {
        p->n = p->n ? p->n : la_default(l->la_n, in->la_n, l->la_n_max);
        p->w = p->w ? p->w : la_default(l->la_w, in->la_w, l->la_w_max);
        p->g = p->g ? p->g : la_default(l->la_g, in->la_g, l->la_g_max);
        if (p->n < 3) /* n-grams of 2 are plain decoding plus a pool: decoding's least N is 3 */
            p->n = 3;
    } else {
        p->n = p->w = p->g = 0;
    }
    p->bonus = l->bonus_token;
    p->seed_pool = l->seed_pool;
    for (uint32_t i = 0; i < rq->n_stop; i++)
        r->stop[i] = rq->stop[i];
    p->stop = r->stop;
    p->n_stop = rq->n_stop;
}

/* The filled parameters against the live caps, before any work is spent
 * on the request: what passes here the engine runs (the caps fit the
 * model, srv_limits_fit()). */
static enum ipc_err check_params(struct srv *s, struct srv_req *r, char *msg, size_t msglen)
{
    struct dec_caps caps = srv_limits_caps(&s->cfg.lim);

    return dec_params_validate(&r->rq.params, &caps, msg, msglen) < 0 ? IPC_ERR_OUT_OF_RANGE :
                                                                        IPC_ERR_NONE;
}

/* Checks that need the connection: duplicate ids, per-connection bound. */
static enum ipc_err check_conn(struct srv *s, struct srv_conn *c, const struct ipc_request *rq,
                               char *msg, size_t msglen)
{
    for (uint32_t i = 0; i < c->n_reqs; i++) {
        if (ipc_id_equal(&c->reqs[i]->rq.id, &rq->id)) {
            snprintf(msg, msglen, "a request with id '%s' is already in flight", rq->id.s);
            return IPC_ERR_DUPLICATE_ID;
        }
    }
    if (c->n_reqs >= s->cfg.lim.max_conn_requests || c->n_reqs >= SRV_CONN_REQS_MAX) {
        snprintf(msg, msglen, "this connection already has %u requests in flight", c->n_reqs);
        return IPC_ERR_BUSY;
    }
    if (s->draining) {
        snprintf(msg, msglen, "the daemon is shutting down");
        return IPC_ERR_SHUTTING_DOWN;
    }
    return IPC_ERR_NONE;
}

/* Hand r to the tokenizer thread: the connection's next lines wait for it
 * (loop.c). A generation is also the connection's (c->reqs), from now until
 * its last event: a disconnect cancels it wherever it is. */
static enum ipc_err hand_off(struct srv *s, struct srv_conn *c, struct srv_req *r, char *msg,
                             size_t msglen)
{
    bool gen = r->rq.op == IPC_OP_GENERATE || r->rq.op == IPC_OP_CHAT;

    if (gen && c->n_reqs == c->cap_reqs) {
        uint32_t nc = c->cap_reqs ? c->cap_reqs * 2 : 4;
        struct srv_req **nr = realloc(c->reqs, nc * sizeof(*nr));
        if (!nr) {
            snprintf(msg, msglen, "out of memory");
            return IPC_ERR_INTERNAL;
        }
        c->reqs = nr;
        c->cap_reqs = nc;
    }
    atomic_store(&r->ref, gen ? 2 : 1); /* the tokenizer's, and the connection's */
    if (gen)
        c->reqs[c->n_reqs++] = r;
    else
        c->job = r;
    c->job_busy = true;
    srv_work_push(s, r);
    return IPC_ERR_NONE;
}

/* Takes over *rq: a generation, tokenize, detokenize or apply_template. */
static void handle_job(struct srv *s, struct srv_conn *c, struct ipc_request *rq)
{
    char msg[IPC_ERRMSG_MAX] = "";
    struct srv_req *r;
    bool gen = rq->op == IPC_OP_GENERATE || rq->op == IPC_OP_CHAT;
    enum ipc_err e = gen ? check_conn(s, c, rq, msg, sizeof(msg)) : IPC_ERR_NONE;
    struct ipc_id id = rq->id;

    if (e != IPC_ERR_NONE) {
        ipc_request_done(rq);
        srv_conn_send_error(s, c, &id, e, "%s", msg);
        return;
    }
    r = calloc(1, sizeof(*r));
    if (!r) {
        ipc_request_done(rq);
        srv_conn_send_error(s, c, &id, IPC_ERR_INTERNAL, "out of memory");
        return;
    }
    atomic_init(&r->ref, 1);
    r->conn_id = c->id;
    r->rq = *rq;
    if (gen) {
        fill_params(s, r);
        e = check_params(s, r, msg, sizeof(msg));
    }
    if (e == IPC_ERR_NONE)
        e = hand_off(s, c, r, msg, sizeof(msg));
    if (e != IPC_ERR_NONE) {
        srv_conn_send_error(s, c, &id, e, "%s", msg);
        srv_req_unref(r);
    }
}

static void handle_cancel(struct srv *s, struct srv_conn *c, struct ipc_request *rq)
{
    struct srv_req *r = NULL;
    bool was_queued;

    for (uint32_t i = 0; i < c->n_reqs && !r; i++)
        if (ipc_id_equal(&c->reqs[i]->rq.id, &rq->target))
            r = c->reqs[i];
    if (!r) {
        srv_conn_send_error(s, c, &rq->id, IPC_ERR_NOT_FOUND,
                            "no request '%s' in flight on this connection", rq->target.s);
        return;
    }
    atomic_store(&r->cancel, true);
    pthread_mutex_lock(&s->mu);
    was_queued = srv_queue_remove(&s->queue, r);
    pthread_mutex_unlock(&s->mu);
    if (was_queued) {
        /* Never reached the scheduler: answer for it here. */
        srv_conn_send_error(s, c, &r->rq.id, IPC_ERR_CANCELLED,
                            "request cancelled before it started");
        srv_conn_forget_req(c, r); /* drops the connection's reference */
        srv_req_unref(r); /* and this the queue's */
    }
    send_result(s, c, rq,
                json_pack("{s:o, s:b}", "target", ipc_id_to_json(&rq->target), "cancelled", 1));
}

static json_t *info_json(struct srv *s)
{
    const struct srv_engine_info *in = &s->info;
    const struct srv_limits *l = &s->cfg.lim;
    const char *tn = srv_chat_format(s->chat);

    return json_pack(
            "{s:{s:s, s:s, s:s, s:i, s:i, s:s?}, s:s, s:{s:i, s:i, s:i, s:I, s:I, s:i, s:i},"
            " s:{s:b, s:i, s:i, s:i, s:i, s:i, s:i, s:b, s:b}, s:{s:s, s:i}}",
            "model", "name", in->model_name, "path", in->model_path, "arch", in->arch, "n_ctx",
            (int)in->n_ctx, "n_vocab", (int)in->n_vocab, "chat_template", tn, "device", in->device,
            "limits", "max_connections", (int)l->max_connections, "queue_max", (int)l->queue_max,
            "max_requests_per_connection", (int)l->max_conn_requests, "max_line",
            (json_int_t)l->max_line, "max_output", (json_int_t)l->max_output, "max_tokens",
            (int)l->max_tokens, "default_max_tokens", (int)l->default_max_tokens, "lookahead",
            "enabled", l->lookahead_default, "n", (int)la_default(l->la_n, in->la_n, l->la_n_max),
            "w", (int)la_default(l->la_w, in->la_w, l->la_w_max), "g",
            (int)la_default(l->la_g, in->la_g, l->la_g_max), "n_max", (int)l->la_n_max, "w_max",
            (int)l->la_w_max, "g_max", (int)l->la_g_max, "bonus_token", l->bonus_token, "seed_pool",
            l->seed_pool, "version", "server", LADE_VERSION, "protocol", IPC_PROTOCOL_VERSION);
}

static json_t *status_json(struct srv *s, bool full)
{
    uint64_t now = srv_now_ns();
    json_t *o;

    struct srv_stats st;

    srv_stats_take(s, &st); /* rendered after the lock: the workers take it every token */
    if (!full) {
        o = json_pack("{s:s, s:f, s:i, s:i, s:i, s:i}", "status", s->draining ? "draining" : "ok",
                      "uptime_s", (now - st.start_ns) / 1e9, "queue_depth", (int)st.queue_depth,
                      "running", (int)st.running, "max_parallel", (int)s->n_workers, "connections",
                      (int)st.connections);
    } else {
        char *prom = srv_stats_prometheus(&st, now);
        o = json_pack("{s:o, s:s?}", "stats", srv_stats_json(&st, now), "prometheus", prom);
        free(prom);
    }
    return o;
}

struct ipc_limits srv_ipc_limits(const struct srv *s)
{
    return (struct ipc_limits){
        .max_text_bytes = s->cfg.lim.max_line,
        .max_tokens = s->cfg.lim.max_tokens,
        .max_detok_tokens = SRV_DETOK_TOKENS_MAX,
    };
}

void srv_handle_line(struct srv *s, struct srv_conn *c, const char *line, size_t len)
{
    const struct ipc_limits lim = srv_ipc_limits(s);
    struct ipc_request rq;
    struct ipc_error err;
    int k = ipc_request_parse(line, len, &lim, &rq, &err);

    if (k < 0) {
        srv_log(SRV_LOG_DEBUG, "Connection %llu sent a bad request: %s", (unsigned long long)c->id,
                err.message);
        srv_conn_send_error(s, c, err.id.present ? &err.id : NULL, err.code, "%s", err.message);
        return;
    }
    srv_handle_request(s, c, &rq);
}

void srv_handle_request(struct srv *s, struct srv_conn *c, struct ipc_request *req)
{
    struct ipc_request rq = *req;

    if (rq.op != IPC_OP_GENERATE && rq.op != IPC_OP_CHAT) {
        pthread_mutex_lock(&s->mu);
        s->stats.requests[rq.op]++;
        pthread_mutex_unlock(&s->mu);
    }
    switch (rq.op) {
    case IPC_OP_GENERATE:
    case IPC_OP_CHAT:
    case IPC_OP_TOKENIZE:
    case IPC_OP_DETOKENIZE:
    case IPC_OP_APPLY_TEMPLATE: handle_job(s, c, &rq); return;
    case IPC_OP_CANCEL: handle_cancel(s, c, &rq); break;
    case IPC_OP_INFO: send_result(s, c, &rq, info_json(s)); break;
    case IPC_OP_HEALTH: send_result(s, c, &rq, status_json(s, false)); break;
    default: send_result(s, c, &rq, status_json(s, true)); break;
    }
    ipc_request_done(&rq);
}
