/* ipc: request parsing and validation. Every way a line can be wrong maps to
 * one stable error code and a message naming the field. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ipc/ipc-internal.h"
#include "ipc/ipc.h"

static const char *const op_names[IPC_OP__COUNT] = {
    [IPC_OP_GENERATE] = "generate",
    [IPC_OP_CHAT] = "chat",
    [IPC_OP_TOKENIZE] = "tokenize",
    [IPC_OP_DETOKENIZE] = "detokenize",
    [IPC_OP_CANCEL] = "cancel",
    [IPC_OP_INFO] = "info",
    [IPC_OP_HEALTH] = "health",
    [IPC_OP_STATS] = "stats",
    [IPC_OP_APPLY_TEMPLATE] = "apply_template",
};

/* Fields each op accepts besides "id", "op" and "v". */
#define SAMPLING_FIELDS                                                                       \
    "max_tokens", "temperature", "top_k", "top_p", "min_p", "repeat_penalty", "seed", "stop", \
            "lookahead", "stream", "cache_prompt"
static const char *const op_fields[IPC_OP__COUNT][16] = {
    [IPC_OP_GENERATE] = { "prompt", SAMPLING_FIELDS, NULL },
    [IPC_OP_CHAT] = { "messages", "tools", SAMPLING_FIELDS, NULL },
    [IPC_OP_TOKENIZE] = { "text", "add_bos", "special", NULL },
    [IPC_OP_DETOKENIZE] = { "tokens", NULL },
    [IPC_OP_CANCEL] = { "target", NULL },
    [IPC_OP_INFO] = { NULL },
    [IPC_OP_HEALTH] = { NULL },
    [IPC_OP_STATS] = { NULL },
    [IPC_OP_APPLY_TEMPLATE] = { "messages", "tools", NULL },
};

const char *ipc_op_name(enum ipc_op op)
{
    return (unsigned)op < IPC_OP__COUNT ? op_names[op] : NULL;
}

const char *ipc_role_name(enum ipc_role role)
{
    static const char *const names[] = { "system", "user", "assistant", "tool" };
    return (unsigned)role < 4 ? names[role] : NULL;
}

static int fail(struct ipc_error *e, enum ipc_err code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int fail(struct ipc_error *e, enum ipc_err code, const char *fmt, ...)
{
    va_list ap;

    e->code = code;
    va_start(ap, fmt);
    ipc_vformat_line(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
    return -EBADMSG;
}

void ipc_vformat_line(char *dst, size_t cap, const char *fmt, va_list ap)
{
    vsnprintf(dst, cap, fmt, ap);
    for (char *p = dst; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
}

bool ipc_id_from_json(const json_t *v, struct ipc_id *ret)
{
    struct ipc_id id = { .present = true };

    if (json_is_string(v)) {
        size_t n = json_string_length(v);
        if (n == 0 || n > IPC_ID_MAX || memchr(json_string_value(v), '\0', n))
            return false;
        memcpy(id.s, json_string_value(v), n);
    } else if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i < 0 || i > (json_int_t)1 << 53)
            return false;
        id.is_int = true;
        snprintf(id.s, sizeof(id.s), "%lld", (long long)i);
    } else
        return false;
    *ret = id;
    return true;
}

json_t *ipc_id_to_json(const struct ipc_id *id)
{
    if (!id || !id->present)
        return json_null();
    if (id->is_int)
        return json_integer(strtoll(id->s, NULL, 10));
    return json_string(id->s);
}

bool ipc_id_equal(const struct ipc_id *a, const struct ipc_id *b)
{
    return a->present && b->present && a->is_int == b->is_int && strcmp(a->s, b->s) == 0;
}

/* ---- typed field readers: 0 absent, 1 read, -EBADMSG wrong ------------- */

static int get_string(json_t *o, const char *k, size_t max, char **ret, struct ipc_error *e)
{
    json_t *v = json_object_get(o, k);

    if (!v)
        return 0;
    if (!json_is_string(v))
        return fail(e, IPC_ERR_BAD_FIELD, "field '%s' must be a string", k);
    if (json_string_length(v) > max)
        return fail(e, IPC_ERR_TOO_LARGE, "field '%s' is longer than %zu bytes", k, max);
    *ret = strndup(json_string_value(v), json_string_length(v));
    return *ret ? 1 : -ENOMEM;
}

static int get_uint(json_t *o, const char *k, uint64_t min, uint64_t max, uint64_t *ret,
                    struct ipc_error *e)
{
    json_t *v = json_object_get(o, k);

    if (!v)
        return 0;
    if (!json_is_integer(v))
        return fail(e, IPC_ERR_BAD_FIELD, "field '%s' must be an integer", k);
    json_int_t i = json_integer_value(v);
    if (i < 0 || (uint64_t)i < min || (uint64_t)i > max)
        return fail(e, IPC_ERR_OUT_OF_RANGE, "field '%s' must be in [%llu, %llu]", k,
                    (unsigned long long)min, (unsigned long long)max);
    *ret = (uint64_t)i;
    return 1;
}

static int get_u32(json_t *o, const char *k, uint32_t min, uint32_t max, uint32_t *ret,
                   struct ipc_error *e)
{
    uint64_t v = 0;
    int r = get_uint(o, k, min, max, &v, e);

    if (r > 0)
        *ret = (uint32_t)v;
    return r;
}

/* A number checked in [min, max] as a double, stored as the float the
 * decoder uses. A nonzero number the float would hold only as 0, as a
 * subnormal or as infinity is refused (docs/protocol.md): a temperature
 * of 1e-300 must not turn greedy, nor a top_p of 1e-300 invalid. */
static int get_float(json_t *o, const char *k, double min, double max, float *ret,
                     struct ipc_error *e)
{
    json_t *v = json_object_get(o, k);

    if (!v)
        return 0;
    if (!json_is_number(v))
        return fail(e, IPC_ERR_BAD_FIELD, "field '%s' must be a number", k);
    double d = json_number_value(v);
    if (!isfinite(d) || d < min || d > max)
        return fail(e, IPC_ERR_OUT_OF_RANGE, "field '%s' must be in [%g, %g]", k, min, max);
    if (d != 0 && (fabs(d) < FLT_MIN || fabs(d) > FLT_MAX))
        return fail(e, IPC_ERR_OUT_OF_RANGE,
                    "field '%s' is %g, which a float cannot hold (nonzero: %g to %g)", k, d,
                    (double)FLT_MIN, (double)FLT_MAX);
    *ret = (float)d;
    return 1;
}

static int get_bool(json_t *o, const char *k, bool *ret, struct ipc_error *e)
{
    json_t *v = json_object_get(o, k);

    if (!v)
        return 0;
    if (!json_is_boolean(v))
        return fail(e, IPC_ERR_BAD_FIELD, "field '%s' must be true or false", k);
    *ret = json_is_true(v);
    return 1;
}

static int check_fields(json_t *o, enum ipc_op op, struct ipc_error *e)
{
    const char *k;
    json_t *v;

    json_object_foreach(o, k, v)
    {
        bool known = !strcmp(k, "id") || !strcmp(k, "op") || !strcmp(k, "v");
        for (size_t i = 0; !known && op_fields[op][i]; i++)
            known = !strcmp(k, op_fields[op][i]);
        if (!known)
            return fail(e, IPC_ERR_BAD_FIELD, "unknown field '%.64s' for op '%s'", k, op_names[op]);
    }
    return 0;
}

/* ---- per-op readers -------------------------------------------------------*/

static int parse_stop(json_t *o, struct ipc_request *r, struct ipc_error *e)
{
    json_t *a = json_object_get(o, "stop"), *v;
    size_t i;

    if (!a)
        return 0;
    if (json_is_string(a)) {
        json_t *one = json_pack("[O]", a);
        if (!one)
            return -ENOMEM;
        json_object_set_new(o, "stop", one);
        a = one;
    }
    if (!json_is_array(a))
        return fail(e, IPC_ERR_BAD_FIELD, "field 'stop' must be a string or an array of strings");
    if (json_array_size(a) > IPC_STOP_MAX)
        return fail(e, IPC_ERR_OUT_OF_RANGE, "field 'stop' holds more than %d strings",
                    IPC_STOP_MAX);
    json_array_foreach(a, i, v)
    {
        size_t n = json_string_length(v);
        if (!json_is_string(v))
            return fail(e, IPC_ERR_BAD_FIELD, "field 'stop' must hold strings");
        if (n == 0 || n > IPC_STOP_LEN_MAX)
            return fail(e, IPC_ERR_OUT_OF_RANGE, "stop strings must be 1 to %d bytes",
                        IPC_STOP_LEN_MAX);
        r->stop[r->n_stop] = strndup(json_string_value(v), n);
        if (!r->stop[r->n_stop])
            return -ENOMEM;
        r->n_stop++;
    }
    return 0;
}

static int parse_lookahead(json_t *o, struct ipc_request *r, struct ipc_error *e)
{
    struct dec_params *p = &r->params;
    json_t *v = json_object_get(o, "lookahead");
    const char *k;
    json_t *f;
    int n;

    if (!v)
        return 0;
    r->lookahead_set = true;
    p->lookahead = !json_is_false(v);
    if (json_is_boolean(v))
        return 0; /* on or off with the server's parameters */
    if (!json_is_object(v))
        return fail(e, IPC_ERR_BAD_FIELD, "field 'lookahead' must be false, true or {n, w, g}");
    json_object_foreach(v, k, f)
    {
        if (strcmp(k, "n") && strcmp(k, "w") && strcmp(k, "g"))
            return fail(e, IPC_ERR_BAD_FIELD, "unknown field 'lookahead.%.64s'", k);
    }
    if ((n = get_u32(v, "n", 2, IPC_LOOKAHEAD_N_MAX, &p->n, e)) < 0 ||
        (n = get_u32(v, "w", 1, IPC_LOOKAHEAD_W_MAX, &p->w, e)) < 0 ||
        (n = get_u32(v, "g", 1, IPC_LOOKAHEAD_G_MAX, &p->g, e)) < 0)
        return n;
    return 0;
}

static int parse_sampling(json_t *o, const struct ipc_limits *lim, struct ipc_request *r,
                          struct ipc_error *e)
{
    struct dec_params *p = &r->params;
    int k;

    if ((k = get_u32(o, "max_tokens", 1, lim->max_tokens, &p->max_tokens, e)) < 0 ||
        (k = get_float(o, "temperature", 0.0, 100.0, &p->temperature, e)) < 0 ||
        (k = get_u32(o, "top_k", 0, 1u << 20, &p->top_k, e)) < 0 ||
        (k = get_float(o, "top_p", 0.0, 1.0, &p->top_p, e)) < 0 ||
        (k = get_float(o, "min_p", 0.0, 1.0, &p->min_p, e)) < 0 ||
        (k = get_float(o, "repeat_penalty", 0.01, 100.0, &p->repeat_penalty, e)) < 0 ||
        (k = get_bool(o, "stream", &r->stream, e)) < 0 ||
        (k = get_bool(o, "cache_prompt", &p->cache_prompt, e)) < 0)
        return k;
    if (p->top_p <= 0.0f) /* 0 itself: the range is open there */
        return fail(e, IPC_ERR_OUT_OF_RANGE, "field 'top_p' must be in (0, 1]");
    k = get_uint(o, "seed", 0, (uint64_t)1 << 53, &p->seed, e);
    if (k < 0)
        return k;
    r->has_seed = k > 0;
    if ((k = parse_stop(o, r, e)) < 0)
        return k;
    return parse_lookahead(o, r, e);
}

static int parse_role(json_t *m, uint32_t i, enum ipc_role *ret, struct ipc_error *e)
{
    json_t *v = json_object_get(m, "role");
    const char *s = json_string_value(v);

    if (!v)
        return fail(e, IPC_ERR_MISSING_FIELD, "messages[%u] has no 'role'", i);
    if (!s)
        return fail(e, IPC_ERR_BAD_FIELD, "messages[%u].role must be a string", i);
    for (int k = 0; k < 4; k++) {
        if (!strcmp(s, ipc_role_name(k))) {
            *ret = k;
            return 0;
        }
    }
    return fail(e, IPC_ERR_BAD_FIELD, "messages[%u].role must be system, user, assistant or tool",
                i);
}

/* ---- tools and tool calls: JSON handed to the chat template --------------
 * Checked for the shape templates read (a function's name, its arguments)
 * and bounded as a whole: nesting, values, and bytes of text, which count
 * with the messages' against max_text_bytes (they all become the prompt). */

struct json_budget {
    size_t nodes; /* JSON values left */
    size_t bytes; /* bytes of text so far: contents, strings, keys */
};

/* v and everything in it: at most IPC_TOOL_DEPTH_MAX deep (v at depth),
 * within the budget. what names v in messages. */
static int check_json(const json_t *v, int depth, struct json_budget *b, const char *what,
                      struct ipc_error *e)
{
    const char *key;
    json_t *x;
    size_t i;
    int k = 0;

    if (depth > IPC_TOOL_DEPTH_MAX)
        return fail(e, IPC_ERR_TOO_LARGE, "%s nests deeper than %d levels", what,
                    IPC_TOOL_DEPTH_MAX);
    if (b->nodes == 0)
        return fail(e, IPC_ERR_TOO_LARGE, "tools and tool calls hold more than %d JSON values",
                    IPC_TOOL_NODES_MAX);
    b->nodes--;
    switch (json_typeof(v)) {
    case JSON_STRING: /* without NUL: ipc_json_load refuses \u0000 */
        b->bytes += json_string_length(v);
        return 0;
    case JSON_ARRAY:
        json_array_foreach(v, i, x)
        {
            if ((k = check_json(x, depth + 1, b, what, e)) < 0)
                return k;
        }
        return 0;
    case JSON_OBJECT:
        json_object_foreach((json_t *)v, key, x)
        {
            b->bytes += strlen(key);
            if ((k = check_json(x, depth + 1, b, what, e)) < 0)
                return k;
        }
        return 0;
    default: b->bytes += 8; return 0; /* a number, true, false, null */
    }
}

static int check_bytes(const struct json_budget *b, const struct ipc_limits *lim,
                       struct ipc_error *e)
{
    if (b->bytes > lim->max_text_bytes)
        return fail(e, IPC_ERR_TOO_LARGE, "messages and tools are longer than %zu bytes",
                    lim->max_text_bytes);
    return 0;
}

/* A non-empty string at o[k]; what names o. */
static int need_name(json_t *o, const char *k, const char *what, size_t i, struct ipc_error *e)
{
    json_t *v = json_object_get(o, k);
    if (!json_is_string(v) || json_string_length(v) == 0)
        return fail(e, v ? IPC_ERR_BAD_FIELD : IPC_ERR_MISSING_FIELD,
                    "%s[%zu].function.%s must be a non-empty string", what, i, k);
    return 0;
}

/* One entry of 'tools': {"type": "function", "function": {"name",
 * "description"?, "parameters"?}} (more keys pass to the template). */
static int check_tool(json_t *t, size_t i, struct ipc_error *e)
{
    json_t *type = json_object_get(t, "type"), *f = json_object_get(t, "function"), *v;

    if (!json_is_object(t))
        return fail(e, IPC_ERR_BAD_FIELD, "tools[%zu] must be an object", i);
    if (!json_is_string(type) || strcmp(json_string_value(type), "function"))
        return fail(e, IPC_ERR_BAD_FIELD, "tools[%zu].type must be \"function\"", i);
    if (!json_is_object(f))
        return fail(e, f ? IPC_ERR_BAD_FIELD : IPC_ERR_MISSING_FIELD,
                    "tools[%zu].function must be an object", i);
    if (need_name(f, "name", "tools", i, e) < 0)
        return -EBADMSG;
    if ((v = json_object_get(f, "description")) && !json_is_string(v))
        return fail(e, IPC_ERR_BAD_FIELD, "tools[%zu].function.description must be a string", i);
    if ((v = json_object_get(f, "parameters")) && !json_is_object(v))
        return fail(e, IPC_ERR_BAD_FIELD, "tools[%zu].function.parameters must be an object", i);
    return 0;
}

static int parse_tools(json_t *o, const struct ipc_limits *lim, struct ipc_request *r,
                       struct json_budget *b, struct ipc_error *e)
{
    json_t *a = json_object_get(o, "tools"), *t;
    size_t i;
    int k;

    if (!a)
        return 0;
    if (!json_is_array(a))
        return fail(e, IPC_ERR_BAD_FIELD, "field 'tools' must be an array");
    if (json_array_size(a) > IPC_TOOLS_MAX)
        return fail(e, IPC_ERR_TOO_LARGE, "field 'tools' holds more than %d tools", IPC_TOOLS_MAX);
    if ((k = check_json(a, 1, b, "field 'tools'", e)) < 0 || (k = check_bytes(b, lim, e)) < 0)
        return k;
    json_array_foreach(a, i, t)
    {
        if ((k = check_tool(t, i, e)) < 0)
            return k;
    }
    if (json_array_size(a)) /* an empty list is no tools, as templates read it */
        r->tools = json_incref(a);
    return 0;
}

/* An assistant message's tool_calls: [{"type": "function"?, "id"?,
 * "function": {"name", "arguments": an object or a string}}]. */
static int parse_tool_calls(json_t *a, size_t i, struct ipc_message *msg, struct json_budget *b,
                            struct ipc_error *e)
{
    char what[64];
    json_t *c;
    size_t j;
    int k;

    snprintf(what, sizeof(what), "messages[%zu].tool_calls", i);
    if (!json_is_array(a) || json_array_size(a) == 0 || json_array_size(a) > IPC_TOOL_CALLS_MAX)
        return fail(e, IPC_ERR_BAD_FIELD, "%s must be an array of 1 to %d calls", what,
                    IPC_TOOL_CALLS_MAX);
    if ((k = check_json(a, 1, b, what, e)) < 0)
        return k;
    json_array_foreach(a, j, c)
    {
        json_t *f = json_object_get(c, "function"), *type = json_object_get(c, "type");
        json_t *id = json_object_get(c, "id"), *args = json_object_get(f, "arguments");
        if (!json_is_object(c) || !json_is_object(f))
            return fail(e, IPC_ERR_BAD_FIELD, "%s[%zu] must be an object with a 'function' object",
                        what, j);
        if (type && (!json_is_string(type) || strcmp(json_string_value(type), "function")))
            return fail(e, IPC_ERR_BAD_FIELD, "%s[%zu].type must be \"function\"", what, j);
        if (id && !json_is_string(id))
            return fail(e, IPC_ERR_BAD_FIELD, "%s[%zu].id must be a string", what, j);
        if (need_name(f, "name", what, j, e) < 0)
            return -EBADMSG;
        if (!json_is_object(args) && !json_is_string(args))
            return fail(e, args ? IPC_ERR_BAD_FIELD : IPC_ERR_MISSING_FIELD,
                        "%s[%zu].function.arguments must be an object or a string", what, j);
    }
    msg->tool_calls = json_incref(a);
    return 0;
}

/* The fields beside role and content: tool_calls for the assistant,
 * tool_call_id and name for a tool; no others. */
static int parse_message_extras(json_t *m, size_t i, struct ipc_message *msg, struct json_budget *b,
                                struct ipc_error *e)
{
    const char *key;
    json_t *v;
    int k;

    json_object_foreach(m, key, v)
    {
        char **str = NULL;
        if (!strcmp(key, "role") || !strcmp(key, "content"))
            continue;
        if (msg->role == IPC_ROLE_ASSISTANT && !strcmp(key, "tool_calls")) {
            if ((k = parse_tool_calls(v, i, msg, b, e)) < 0)
                return k;
            continue;
        }
        if (msg->role == IPC_ROLE_TOOL && !strcmp(key, "tool_call_id"))
            str = &msg->tool_call_id;
        else if (msg->role == IPC_ROLE_TOOL && !strcmp(key, "name"))
            str = &msg->name;
        else
            return fail(e, IPC_ERR_BAD_FIELD,
                        "messages[%zu] (%s) may not hold '%.32s': only role and content, "
                        "tool_calls for an assistant, tool_call_id and name for a tool",
                        i, ipc_role_name(msg->role), key);
        if (!json_is_string(v) || json_string_length(v) > IPC_TOOL_ID_MAX)
            return fail(e, IPC_ERR_BAD_FIELD,
                        "messages[%zu].%s must be a string of at most %d bytes", i, key,
                        IPC_TOOL_ID_MAX);
        b->bytes += json_string_length(v);
        if (!(*str = strdup(json_string_value(v))))
            return -ENOMEM;
    }
    return 0;
}

static int parse_messages(json_t *o, const struct ipc_limits *lim, struct ipc_request *r,
                          struct json_budget *b, struct ipc_error *e)
{
    json_t *a = json_object_get(o, "messages"), *m;
    size_t i;

    if (!a)
        return fail(e, IPC_ERR_MISSING_FIELD, "op 'chat' needs 'messages'");
    if (!json_is_array(a))
        return fail(e, IPC_ERR_BAD_FIELD, "field 'messages' must be an array");
    if (json_array_size(a) == 0 || json_array_size(a) > IPC_MESSAGE_MAX)
        return fail(e, IPC_ERR_OUT_OF_RANGE, "field 'messages' must hold 1 to %d messages",
                    IPC_MESSAGE_MAX);
    r->messages = calloc(json_array_size(a), sizeof(*r->messages));
    if (!r->messages)
        return -ENOMEM;
    json_array_foreach(a, i, m)
    {
        struct ipc_message *msg = &r->messages[r->n_messages++];
        json_t *c = json_object_get(m, "content");
        int k;
        if (!json_is_object(m))
            return fail(e, IPC_ERR_BAD_FIELD, "messages[%zu] must be an object", i);
        if ((k = parse_role(m, (uint32_t)i, &msg->role, e)) < 0 ||
            (k = parse_message_extras(m, i, msg, b, e)) < 0)
            return k;
        /* an assistant that only calls tools may say nothing (OpenAI: null) */
        if ((!c || json_is_null(c)) && msg->tool_calls)
            c = NULL;
        else if (!c)
            return fail(e, IPC_ERR_MISSING_FIELD, "messages[%zu] has no 'content'", i);
        else if (!json_is_string(c))
            return fail(e, IPC_ERR_BAD_FIELD, "messages[%zu].content must be a string", i);
        b->bytes += c ? json_string_length(c) : 0;
        if (check_bytes(b, lim, e) < 0)
            return -EBADMSG;
        msg->content = c ? strndup(json_string_value(c), json_string_length(c)) : strdup("");
        if (!msg->content)
            return -ENOMEM;
    }
    return 0;
}

static int parse_required_text(json_t *o, const char *k, size_t max, char **ret,
                               struct ipc_error *e)
{
    int r = get_string(o, k, max, ret, e);

    if (r == 0)
        return fail(e, IPC_ERR_MISSING_FIELD, "this op needs '%s'", k);
    return r < 0 ? r : 0;
}

/* Token ids in field k (detokenize's tokens, generate's prompt) into r->tokens. */
static int parse_tokens(json_t *o, const char *k, const struct ipc_limits *lim,
                        struct ipc_request *r, struct ipc_error *e)
{
    json_t *a = json_object_get(o, k), *t;
    size_t i;

    if (!a)
        return fail(e, IPC_ERR_MISSING_FIELD, "op 'detokenize' needs 'tokens'");
    if (!json_is_array(a))
        return fail(e, IPC_ERR_BAD_FIELD, "field '%s' must be an array of integers", k);
    if (json_array_size(a) > lim->max_detok_tokens)
        return fail(e, IPC_ERR_TOO_LARGE, "field '%s' holds more than %u tokens", k,
                    lim->max_detok_tokens);
    r->tokens = calloc(json_array_size(a) + 1, sizeof(*r->tokens));
    if (!r->tokens)
        return -ENOMEM;
    json_array_foreach(a, i, t)
    {
        if (!json_is_integer(t))
            return fail(e, IPC_ERR_BAD_FIELD, "%s[%zu] must be an integer", k, i);
        if (json_integer_value(t) < 0 || json_integer_value(t) > INT32_MAX)
            return fail(e, IPC_ERR_OUT_OF_RANGE, "%s[%zu] is not a token id", k, i);
        r->tokens[r->n_tokens++] = (int32_t)json_integer_value(t);
    }
    return 0;
}

/* generate's prompt: text, or token ids (tokenized already, BOS included if wanted). */
static int parse_prompt(json_t *o, const struct ipc_limits *lim, struct ipc_request *r,
                        struct ipc_error *e)
{
    if (json_is_array(json_object_get(o, "prompt")))
        return parse_tokens(o, "prompt", lim, r, e);
    return parse_required_text(o, "prompt", lim->max_text_bytes, &r->prompt, e);
}

static int parse_op_fields(json_t *o, const struct ipc_limits *lim, struct ipc_request *r,
                           struct ipc_error *e)
{
    json_t *t;

    switch (r->op) {
    case IPC_OP_GENERATE: {
        int k = parse_prompt(o, lim, r, e);
        return k < 0 ? k : parse_sampling(o, lim, r, e);
    }
    case IPC_OP_CHAT:
    case IPC_OP_APPLY_TEMPLATE: {
        struct json_budget b = { .nodes = IPC_TOOL_NODES_MAX };
        int k = parse_messages(o, lim, r, &b, e);
        if (k == 0)
            k = parse_tools(o, lim, r, &b, e);
        return k < 0 || r->op == IPC_OP_APPLY_TEMPLATE ? k : parse_sampling(o, lim, r, e);
    }
    case IPC_OP_TOKENIZE: {
        int k = parse_required_text(o, "text", lim->max_text_bytes, &r->text, e);
        if (k < 0)
            return k;
        return get_bool(o, "add_bos", &r->add_bos, e) < 0 ||
                               get_bool(o, "special", &r->special, e) < 0 ?
                       -EBADMSG :
                       0;
    }
    case IPC_OP_DETOKENIZE: return parse_tokens(o, "tokens", lim, r, e);
    case IPC_OP_CANCEL:
        t = json_object_get(o, "target");
        if (!t)
            return fail(e, IPC_ERR_MISSING_FIELD, "op 'cancel' needs 'target'");
        if (!ipc_id_from_json(t, &r->target))
            return fail(e, IPC_ERR_BAD_FIELD, "field 'target' must be a request id");
        return 0;
    default: return 0;
    }
}

/* Envelope: an object with a valid id, a matching "v" and a known "op". */
static int parse_envelope(json_t *o, struct ipc_request *r, struct ipc_error *e)
{
    json_t *id = json_object_get(o, "id"), *v = json_object_get(o, "v"), *op;
    const char *name;

    if (id && !ipc_id_from_json(id, &e->id))
        return fail(e, IPC_ERR_BAD_FIELD,
                    "field 'id' must be a string of 1 to %d bytes or an integer in [0, 2^53]",
                    IPC_ID_MAX);
    if (v && (!json_is_integer(v) || json_integer_value(v) != IPC_PROTOCOL_VERSION))
        return fail(e, IPC_ERR_PROTOCOL_VERSION, "this server speaks protocol version %d",
                    IPC_PROTOCOL_VERSION);
    if (!id)
        return fail(e, IPC_ERR_MISSING_FIELD, "every request needs an 'id'");
    r->id = e->id;
    op = json_object_get(o, "op");
    if (!op)
        return fail(e, IPC_ERR_MISSING_FIELD, "every request needs an 'op'");
    if (!(name = json_string_value(op)))
        return fail(e, IPC_ERR_BAD_FIELD, "field 'op' must be a string");
    for (int i = 0; i < IPC_OP__COUNT; i++) {
        if (!strcmp(name, op_names[i])) {
            r->op = i;
            return check_fields(o, r->op, e);
        }
    }
    return fail(e, IPC_ERR_UNKNOWN_OP, "unknown op '%.64s'", name);
}

int ipc_json_load(const char *text, size_t len, json_t **ret, struct ipc_error *reterr)
{
    json_error_t jerr;

    *reterr = (struct ipc_error){ 0 };
    if (!ipc_utf8_is_valid(text, len))
        return fail(reterr, IPC_ERR_BAD_UTF8, "request is not valid UTF-8");
    *ret = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!*ret)
        return fail(reterr, IPC_ERR_BAD_JSON, "invalid JSON at column %d: %s", jerr.column,
                    jerr.text);
    if (!json_is_object(*ret)) {
        json_decref(*ret);
        *ret = NULL;
        return fail(reterr, IPC_ERR_BAD_JSON, "a request must be a JSON object");
    }
    return 0;
}

int ipc_request_parse(const char *line, size_t len, const struct ipc_limits *lim,
                      struct ipc_request *ret, struct ipc_error *reterr)
{
    ipc_cleanup_json json_t *o = NULL;
    int k = ipc_json_load(line, len, &o, reterr);

    return k < 0 ? k : ipc_request_from_json(o, lim, ret, reterr);
}

int ipc_request_from_json(json_t *o, const struct ipc_limits *lim, struct ipc_request *ret,
                          struct ipc_error *reterr)
{
    struct ipc_request r = { .params = dec_params_default(), .stream = true };
    int k;

    *reterr = (struct ipc_error){ 0 };
    r.params.max_tokens =
            0; /* what the server chooses unless the request says (struct ipc_request) */
    r.params.n = r.params.w = r.params.g = 0;
    k = parse_envelope(o, &r, reterr);
    if (k >= 0)
        k = parse_op_fields(o, lim, &r, reterr);
    if (k < 0) {
        ipc_request_done(&r);
        if (k == -ENOMEM)
            fail(reterr, IPC_ERR_INTERNAL, "out of memory");
        return k;
    }
    *ret = r;
    return 0;
}

void ipc_request_done(struct ipc_request *r)
{
    if (!r)
        return;
    free(r->prompt);
    for (uint32_t i = 0; r->messages && i < r->n_messages; i++) {
        free(r->messages[i].content);
        json_decref(r->messages[i].tool_calls);
        free(r->messages[i].tool_call_id);
        free(r->messages[i].name);
    }
    free(r->messages);
    json_decref(r->tools);
    for (uint32_t i = 0; i < r->n_stop; i++)
        free(r->stop[i]);
    free(r->text);
    free(r->tokens);
    *r = (struct ipc_request){ 0 };
}
