/* daemon: the tokenizer thread. Everything whose cost grows with a
 * request's size happens here, off the event loop: tokenizing a prompt
 * (chat template included) before it joins the scheduler's queue, and the
 * tokenize and detokenize ops with the encoding of their replies. One
 * thread, not a pool: the work is CPU-bound, a connection has at most one
 * job here at a time (loop.c stops taking its lines meanwhile), so the FIFO
 * serves connections in turn, and the scheduler thread keeps the GPU busy
 * instead of tokenizing the next prompt between two steps of a stream.
 * Results go back to the loop through the outbox (srv_post), which also
 * tells the loop that the connection may send its next line. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/chat.h"
#include "daemon/log.h"
#include "daemon/server.h"
#include "daemon/util.h"

static char *result_line(struct srv *s, const struct srv_req *r, json_t *body, size_t *len)
{
    char *line = body ? ipc_event_result(&r->rq.id, r->rq.op, body, len) : NULL;

    return line ? line : srv_error_event(s, &r->rq.id, IPC_ERR_INTERNAL, len, "out of memory");
}

/* Tokenize text into r->prompt; an ipc error code on failure. */
static enum ipc_err tokenize_prompt(struct srv *s, struct srv_req *r, const char *text, size_t len,
                                    unsigned flags, char *msg, size_t msglen)
{
    uint32_t cap = s->info.n_ctx, n = 0;
    int k;

    r->prompt = calloc(cap, sizeof(*r->prompt));
    if (!r->prompt)
        return IPC_ERR_INTERNAL;
    k = s->engine.ops->tokenize(s->engine.ctx, text, len, flags, r->prompt, cap, &n);
    if (k == -E2BIG || (k == 0 && n >= s->info.n_ctx)) {
        snprintf(msg, msglen, "prompt of %u tokens does not fit the context of %u", n,
                 s->info.n_ctx);
        return IPC_ERR_CONTEXT_EXCEEDED;
    }
    if (k < 0) {
        snprintf(msg, msglen, "failed to tokenize the prompt: %s", strerror(-k));
        return IPC_ERR_INTERNAL;
    }
    if (n == 0) {
        snprintf(msg, msglen, "the prompt is empty");
        return IPC_ERR_OUT_OF_RANGE;
    }
    r->n_prompt = n;
    return IPC_ERR_NONE;
}

/* A prompt given as token ids: checked, used as it is (no BOS added). */
static enum ipc_err take_prompt_ids(struct srv *s, struct srv_req *r, char *msg, size_t msglen)
{
    const struct ipc_request *rq = &r->rq;

    if (rq->n_tokens == 0) {
        snprintf(msg, msglen, "the prompt is empty");
        return IPC_ERR_OUT_OF_RANGE;
    }
    if (rq->n_tokens >= s->info.n_ctx) {
        snprintf(msg, msglen, "prompt of %u tokens does not fit the context of %u", rq->n_tokens,
                 s->info.n_ctx);
        return IPC_ERR_CONTEXT_EXCEEDED;
    }
    for (uint32_t i = 0; i < rq->n_tokens; i++) {
        if ((uint32_t)rq->tokens[i] >= s->info.n_vocab) {
            snprintf(msg, msglen, "prompt[%u] = %d is not below n_vocab %u", i, rq->tokens[i],
                     s->info.n_vocab);
            return IPC_ERR_OUT_OF_RANGE;
        }
    }
    r->prompt = malloc(rq->n_tokens * sizeof(*r->prompt));
    if (!r->prompt) {
        snprintf(msg, msglen, "out of memory");
        return IPC_ERR_INTERNAL;
    }
    memcpy(r->prompt, rq->tokens, rq->n_tokens * sizeof(*r->prompt));
    r->n_prompt = rq->n_tokens;
    return IPC_ERR_NONE;
}

/* The chat template (s->chat) is read only: rendering it on this thread
 * while the loop answers info is safe. */
static enum ipc_err build_prompt(struct srv *s, struct srv_req *r, char *msg, size_t msglen)
{
    struct srv_chat_prompt cp = { 0 };
    enum ipc_err e;
    int k;

    if (r->rq.op == IPC_OP_GENERATE && !r->rq.prompt)
        return take_prompt_ids(s, r, msg, msglen);
    if (r->rq.op == IPC_OP_GENERATE)
        return tokenize_prompt(s, r, r->rq.prompt, strlen(r->rq.prompt), SRV_TOK_ADD_BOS, msg,
                               msglen);
    k = srv_chat_apply(s->chat, r->rq.messages, r->rq.n_messages, r->rq.tools, &cp, msg, msglen);
    if (k == -EOPNOTSUPP)
        return IPC_ERR_UNSUPPORTED_TEMPLATE;
    if (k == -EINVAL)
        return IPC_ERR_BAD_FIELD;
    if (k < 0) {
        snprintf(msg, msglen, "out of memory");
        return IPC_ERR_INTERNAL;
    }
    e = tokenize_prompt(s, r, cp.text, cp.len, SRV_TOK_SPECIAL | (cp.add_bos ? SRV_TOK_ADD_BOS : 0),
                        msg, msglen);
    if (cp.stop)
        r->stop[r->rq.params.n_stop++] = cp.stop;
    srv_chat_prompt_done(&cp);
    return e;
}

/* The prompt tokenized and queued for the scheduler (the tokenizer's
 * reference becomes the queue's), else the error event. */
static char *queue_generation(struct srv *s, struct srv_req *r, size_t *len)
{
    char msg[IPC_ERRMSG_MAX] = "";
    enum ipc_err e = build_prompt(s, r, msg, sizeof(msg));
    uint32_t limit = 0;
    int k = -EAGAIN;

    if (e != IPC_ERR_NONE)
        return srv_error_event(s, &r->rq.id, e, len, "%s", msg);
    srv_log(SRV_LOG_DEBUG, "Request '%s' of connection %llu tokenized: %u prompt tokens, max %u",
            r->rq.id.s, (unsigned long long)r->conn_id, r->n_prompt, r->rq.params.max_tokens);
    r->enqueued_ns = srv_now_ns();
    pthread_mutex_lock(&s->mu);
    if (s->sched_stop) {
        e = IPC_ERR_SHUTTING_DOWN;
    } else if ((k = srv_queue_push(&s->queue, r->conn_id, r)) == 0) {
        s->stats.requests[r->rq.op]++;
        pthread_cond_signal(&s->cv);
    }
    limit = s->queue.limit;
    pthread_mutex_unlock(&s->mu);
    if (e == IPC_ERR_SHUTTING_DOWN)
        return srv_error_event(s, &r->rq.id, e, len, "the daemon is shutting down");
    if (k < 0)
        return srv_error_event(s, &r->rq.id, IPC_ERR_BUSY, len, "the queue is full (%u waiting)",
                               limit);
    return NULL; /* r is the scheduler's now: it may be gone already */
}

static char *tokenize_line(struct srv *s, struct srv_req *r, size_t *ret_len)
{
    const struct ipc_request *rq = &r->rq;
    size_t len = strlen(rq->text);
    uint32_t cap = (uint32_t)(len + 8), n = 0;
    srv_cleanup_free int32_t *toks = calloc(cap, sizeof(*toks));
    json_t *arr;
    int k;

    if (!toks)
        return srv_error_event(s, &r->rq.id, IPC_ERR_INTERNAL, ret_len, "out of memory");
    k = s->engine.ops->tokenize(s->engine.ctx, rq->text, len,
                                (rq->add_bos ? SRV_TOK_ADD_BOS : 0) |
                                        (rq->special ? SRV_TOK_SPECIAL : 0),
                                toks, cap, &n);
    if (k < 0)
        return srv_error_event(s, &r->rq.id, IPC_ERR_INTERNAL, ret_len, "failed to tokenize: %s",
                               strerror(-k));
    arr = json_array();
    for (uint32_t i = 0; arr && i < n; i++)
        json_array_append_new(arr, json_integer(toks[i]));
    return result_line(s, r, json_pack("{s:o, s:i}", "tokens", arr, "count", (int)n), ret_len);
}

static char *detokenize_line(struct srv *s, struct srv_req *r, size_t *ret_len)
{
    const struct ipc_request *rq = &r->rq;
    size_t cap = (size_t)rq->n_tokens * 64 + 64, len = 0;
    srv_cleanup_free char *raw = NULL;
    srv_cleanup_free char *clean = NULL;
    int k = -E2BIG;

    for (uint32_t i = 0; i < rq->n_tokens; i++)
        if ((uint32_t)rq->tokens[i] >= s->info.n_vocab)
            return srv_error_event(s, &r->rq.id, IPC_ERR_OUT_OF_RANGE, ret_len,
                                   "tokens[%u] = %d is not below n_vocab %u", i, rq->tokens[i],
                                   s->info.n_vocab);
    for (int tries = 0; k == -E2BIG && tries < 3; tries++, cap *= 4) {
        free(raw);
        raw = malloc(cap);
        k = raw ? s->engine.ops->detokenize(s->engine.ctx, rq->tokens, rq->n_tokens, raw, cap,
                                            &len) :
                  -ENOMEM;
    }
    clean = k == 0 ? malloc(len * 3 + 1) : NULL;
    if (!clean)
        return srv_error_event(s, &r->rq.id, IPC_ERR_INTERNAL, ret_len, "failed to detokenize: %s",
                               strerror(k < 0 ? -k : ENOMEM));
    len = ipc_utf8_sanitize(raw, len, clean, len * 3 + 1);
    return result_line(s, r, json_pack("{s:s%}", "text", clean, len), ret_len);
}

/* apply_template: the prompt a chat with these messages and tools would
 * get, as the template rendered it (the BOS text laded hands the
 * tokenizer as its id put back in front), and whether it starts with BOS. */
static char *template_line(struct srv *s, struct srv_req *r, size_t *ret_len)
{
    struct srv_chat_prompt cp = { 0 };
    char msg[IPC_ERRMSG_MAX] = "";
    const char *bos = s->info.bos_token ? s->info.bos_token : "";
    int k = srv_chat_apply(s->chat, r->rq.messages, r->rq.n_messages, r->rq.tools, &cp, msg,
                           sizeof(msg));
    json_t *body = NULL;

    if (k == -EOPNOTSUPP || k == -EINVAL)
        return srv_error_event(s, &r->rq.id,
                               k == -EINVAL ? IPC_ERR_BAD_FIELD : IPC_ERR_UNSUPPORTED_TEMPLATE,
                               ret_len, "%s", msg);
    if (k == 0 && !ipc_utf8_is_valid(cp.text, cp.len)) {
        srv_chat_prompt_done(&cp);
        return srv_error_event(s, &r->rq.id, IPC_ERR_BAD_FIELD, ret_len,
                               "the chat template rendered text that is not UTF-8");
    }
    if (k == 0) {
        srv_cleanup_free char *text = malloc(strlen(bos) + cp.len + 1);
        if (text) {
            size_t n = (size_t)sprintf(text, "%s", cp.add_bos ? bos : "");
            memcpy(text + n, cp.text, cp.len + 1);
            body = json_pack("{s:s%, s:b}", "prompt", text, n + cp.len, "add_bos", cp.add_bos);
        }
    }
    srv_chat_prompt_done(&cp);
    if (!body)
        return srv_error_event(s, &r->rq.id, IPC_ERR_INTERNAL, ret_len, "out of memory");
    return result_line(s, r, body, ret_len);
}

/* One job; its last post ends the connection's turn. A generation that
 * reached the queue posts no line and keeps r alive for the scheduler. */
static void work_one(struct srv *s, struct srv_req *r)
{
    uint64_t conn_id = r->conn_id; /* a queued r is not ours to read after */
    char *line = NULL;
    size_t len = 0;
    bool queued = false;

    if (atomic_load(&r->cancel)) /* its connection is gone */
        ;
    else if (r->rq.op == IPC_OP_TOKENIZE)
        line = tokenize_line(s, r, &len);
    else if (r->rq.op == IPC_OP_DETOKENIZE)
        line = detokenize_line(s, r, &len);
    else if (r->rq.op == IPC_OP_APPLY_TEMPLATE)
        line = template_line(s, r, &len);
    else
        queued = !(line = queue_generation(s, r, &len));
    srv_post(s, conn_id, line, len, queued ? NULL : r, true);
}

static void *work_main(void *arg)
{
    struct srv *s = arg;
    struct srv_req *r;

    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->work_stop && !s->work_head)
            pthread_cond_wait(&s->work_cv, &s->mu);
        if (!(r = s->work_head))
            break;
        s->work_head = r->next_job;
        if (!s->work_head)
            s->work_tail = &s->work_head;
        s->work_busy = true;
        pthread_mutex_unlock(&s->mu);
        work_one(s, r);
        pthread_mutex_lock(&s->mu);
        s->work_busy = false;
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

void srv_work_push(struct srv *s, struct srv_req *r)
{
    pthread_mutex_lock(&s->mu);
    r->next_job = NULL;
    *s->work_tail = r;
    s->work_tail = &r->next_job;
    pthread_cond_signal(&s->work_cv);
    pthread_mutex_unlock(&s->mu);
}

bool srv_work_idle(struct srv *s)
{
    bool idle;

    pthread_mutex_lock(&s->mu);
    idle = !s->work_head && !s->work_busy;
    pthread_mutex_unlock(&s->mu);
    return idle;
}

int srv_work_start(struct srv *s)
{
    int r = pthread_create(&s->work_thread, NULL, work_main, s);

    if (r != 0)
        return srv_log_errno(SRV_LOG_ERR, r, "Failed to start the tokenizer thread");
    s->work_started = true;
    return 0;
}

void srv_work_join(struct srv *s)
{
    if (!s->work_started)
        return;
    pthread_mutex_lock(&s->mu);
    s->work_stop = true;
    pthread_cond_broadcast(&s->work_cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->work_thread, NULL);
    s->work_started = false;
}
