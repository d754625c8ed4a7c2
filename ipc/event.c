/* ipc: encoding of the events the daemon sends. One JSON object per line. */
#include <string.h>

#include "ipc/ipc-internal.h"
#include "ipc/ipc.h"

static const char *const err_names[IPC_ERR__COUNT] = {
    [IPC_ERR_NONE] = "none",
    [IPC_ERR_BAD_JSON] = "bad_json",
    [IPC_ERR_BAD_UTF8] = "bad_utf8",
    [IPC_ERR_TOO_LARGE] = "too_large",
    [IPC_ERR_UNKNOWN_OP] = "unknown_op",
    [IPC_ERR_BAD_FIELD] = "bad_field",
    [IPC_ERR_MISSING_FIELD] = "missing_field",
    [IPC_ERR_OUT_OF_RANGE] = "out_of_range",
    [IPC_ERR_CONTEXT_EXCEEDED] = "context_exceeded",
    [IPC_ERR_BUSY] = "busy",
    [IPC_ERR_TOO_MANY_CONNECTIONS] = "too_many_connections",
    [IPC_ERR_CANCELLED] = "cancelled",
    [IPC_ERR_NOT_FOUND] = "not_found",
    [IPC_ERR_INTERNAL] = "internal",
    [IPC_ERR_UNSUPPORTED_TEMPLATE] = "unsupported_template",
    [IPC_ERR_PROTOCOL_VERSION] = "protocol_version",
    [IPC_ERR_DUPLICATE_ID] = "duplicate_id",
    [IPC_ERR_SHUTTING_DOWN] = "shutting_down",
    [IPC_ERR_TIMEOUT] = "timeout",
};

const char *ipc_err_name(enum ipc_err code)
{
    return (unsigned)code < IPC_ERR__COUNT ? err_names[code] : NULL;
}

/* Serialise o (consumed) as one compact line with a trailing newline. */
static char *finish_line(json_t *o, size_t *ret_len)
{
    ipc_cleanup_json json_t *obj = o;
    char *s;
    size_t n;

    if (!obj)
        return NULL;
    s = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(9));
    if (!s)
        return NULL;
    n = strlen(s);
    char *line = realloc(s, n + 2);
    if (!line) {
        free(s);
        return NULL;
    }
    line[n] = '\n';
    line[n + 1] = '\0';
    if (ret_len)
        *ret_len = n + 1;
    return line;
}

char *ipc_event_hello(const struct ipc_hello *h, size_t *ret_len)
{
    return finish_line(json_pack("{s:s, s:i, s:s, s:s?, s:s?}", "event", "hello", "v",
                                 IPC_PROTOCOL_VERSION, "server", h->server_version, "model",
                                 h->model, "device", h->device),
                       ret_len);
}

char *ipc_event_error(const struct ipc_id *id, enum ipc_err code, const char *message,
                      size_t *ret_len)
{
    const char *name = ipc_err_name(code);

    return finish_line(json_pack("{s:s, s:o, s:s, s:s}", "event", "error", "id", ipc_id_to_json(id),
                                 "code", name ? name : "internal", "message",
                                 message ? message : ""),
                       ret_len);
}

char *ipc_event_token(const struct ipc_id *id, const char *text, size_t text_len,
                      const int32_t *tokens, uint32_t n, size_t *ret_len)
{
    json_t *ids = json_array();

    for (uint32_t i = 0; ids && i < n; i++) {
        if (json_array_append_new(ids, json_integer(tokens[i])) < 0) {
            json_decref(ids);
            return NULL;
        }
    }
    return finish_line(json_pack("{s:s, s:o, s:s%, s:o}", "event", "token", "id",
                                 ipc_id_to_json(id), "text", text, text_len, "tokens", ids),
                       ret_len);
}

/* The done event's "stats": the decoder's statistics, with the prompt's
 * length and the time in the queue, which only the daemon knows. */
static json_t *stats_json(const struct dec_result *r, uint32_t prompt_tokens, double queue_ms)
{
    const struct dec_stats *st = &r->stats;
    double decode_s = st->step_ms_total / 1000.0;
    double tps = decode_s > 0 ? r->n_tokens / decode_s : 0.0;
    double tpstep = st->steps ? (double)r->n_tokens / st->steps : 0.0;
    double accept = st->draft_tokens ? (double)st->accepted_tokens / (double)st->draft_tokens : 0.0;

    return json_pack("{s:i, s:i, s:i, s:i, s:I, s:I, s:f, s:f, s:f, s:f, s:f, s:f}",
                     "prompt_tokens", (json_int_t)prompt_tokens, "prompt_tokens_reused",
                     (json_int_t)st->reused_tokens, "generated_tokens", (json_int_t)r->n_tokens,
                     "steps", (json_int_t)st->steps, "draft_tokens", (json_int_t)st->draft_tokens,
                     "accepted_tokens", (json_int_t)st->accepted_tokens, "tokens_per_step", tpstep,
                     "acceptance", accept, "tokens_per_s", tps, "queue_ms", queue_ms, "prefill_ms",
                     st->prefill_ms, "decode_ms", st->step_ms_total);
}

char *ipc_event_done(const struct ipc_id *id, const char *finish_reason, const struct dec_result *r,
                     uint32_t prompt_tokens, double queue_ms, const char *text, size_t text_len,
                     size_t *ret_len)
{
    json_t *o = json_pack("{s:s, s:o, s:s, s:o}", "event", "done", "id", ipc_id_to_json(id),
                          "finish_reason", finish_reason, "stats",
                          stats_json(r, prompt_tokens, queue_ms));

    if (o && text && json_object_set_new(o, "text", json_stringn(text, text_len)) < 0) {
        json_decref(o);
        return NULL;
    }
    return finish_line(o, ret_len);
}

char *ipc_event_result(const struct ipc_id *id, enum ipc_op op, json_t *body, size_t *ret_len)
{
    json_t *o = body ? body : json_object();

    if (!o)
        return NULL;
    if (json_object_set_new(o, "event", json_string("result")) < 0 ||
        json_object_set_new(o, "id", ipc_id_to_json(id)) < 0 ||
        json_object_set_new(o, "op", json_string(ipc_op_name(op))) < 0) {
        json_decref(o);
        return NULL;
    }
    return finish_line(o, ret_len);
}
