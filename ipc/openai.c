/* ipc: the OpenAI API's JSON, mapped onto lade's requests and events. A
 * request body is rewritten into the object an NDJSON line would carry
 * and parsed by ipc_request_from_json, so both protocols share every
 * parameter and every check; what OpenAI has and lade does not (n > 1,
 * response_format, penalties) is refused by name rather than ignored. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipc/ipc-internal.h"
#include "ipc/ipc.h"

static int oai_fail(struct ipc_oai_error *e, int status, const char *param, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static int oai_fail(struct ipc_oai_error *e, int status, const char *param, const char *fmt, ...)
{
    va_list ap;

    *e = (struct ipc_oai_error){ .status = status, .type = "invalid_request_error" };
    snprintf(e->param, sizeof(e->param), "%s", param ? param : "");
    va_start(ap, fmt);
    ipc_vformat_line(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
    return -EBADMSG;
}

/* Fields copied as they are: lade checks them as it checks NDJSON's. */
static const char *const passed[] = {
    "temperature", "top_p",          "seed",         "stop",  "lookahead", "top_k",
    "min_p",       "repeat_penalty", "cache_prompt", "tools", NULL,
};

static bool is_passed(const char *k)
{
    for (size_t i = 0; passed[i]; i++)
        if (!strcmp(k, passed[i]))
            return true;
    return false;
}

static bool is_number(json_t *v, double want)
{
    return json_is_number(v) && json_number_value(v) == want;
}

/* OpenAI fields lade accepts only at the value that changes nothing. */
static int check_neutral(const char *k, json_t *v, struct ipc_oai_error *e)
{
    if (!strcmp(k, "n") || !strcmp(k, "best_of"))
        return is_number(v, 1) ? 1 :
                                 oai_fail(e, 400, k, "'%s' must be 1: lade returns one choice", k);
    if (!strcmp(k, "presence_penalty") || !strcmp(k, "frequency_penalty"))
        return is_number(v, 0) ?
                       1 :
                       oai_fail(e, 400, k, "'%s' is not supported (use repeat_penalty)", k);
    if (!strcmp(k, "logprobs") || !strcmp(k, "echo"))
        return json_is_false(v) ? 1 : oai_fail(e, 400, k, "'%s' is not supported", k);
    if (!strcmp(k, "logit_bias"))
        return json_is_object(v) && json_object_size(v) == 0 ?
                       1 :
                       oai_fail(e, 400, k, "'logit_bias' is not supported");
    if (!strcmp(k, "response_format")) {
        const char *t = json_string_value(json_object_get(v, "type"));
        return t && !strcmp(t, "text") && json_object_size(v) == 1 ?
                       1 :
                       oai_fail(
                               e, 400, k,
                               "'response_format' other than text is not supported (no grammars yet)");
    }
    /* the template offers the tools; what the model does with them is its own */
    if (!strcmp(k, "tool_choice"))
        return json_is_string(v) && !strcmp(json_string_value(v), "auto") ?
                       1 :
                       oai_fail(e, 400, k, "'tool_choice' other than \"auto\" is not supported");
    if (!strcmp(k, "parallel_tool_calls"))
        return json_is_true(v) ? 1 : oai_fail(e, 400, k, "'parallel_tool_calls' must be true");
    if (!strcmp(k, "user"))
        return json_is_string(v) ? 1 : oai_fail(e, 400, k, "'user' must be a string");
    return 0;
}

static int map_options(json_t *v, struct ipc_oai_opts *o, struct ipc_oai_error *e)
{
    const char *k;
    json_t *f;

    if (!json_is_object(v))
        return oai_fail(e, 400, "stream_options", "'stream_options' must be an object");
    json_object_foreach(v, k, f)
    {
        if (strcmp(k, "include_usage") || !json_is_boolean(f))
            return oai_fail(e, 400, "stream_options",
                            "'stream_options' holds only include_usage, true or false");
        o->include_usage = json_is_true(f);
    }
    return 0;
}

/* A message's content: a string, or text parts joined: checked and
 * measured in one pass, copied in a second, so that many small parts cost
 * one allocation, not one (of everything so far) each. */
static json_t *map_content(json_t *c, size_t i, struct ipc_oai_error *e)
{
    json_t *part;
    size_t j, total = 0;

    if (json_is_null(c))
        return json_string("");
    if (!json_is_array(c))
        return json_incref(c); /* lade says what is wrong with it */
    json_array_foreach(c, j, part)
    {
        const char *t = json_string_value(json_object_get(part, "type"));
        json_t *text = json_object_get(part, "text");
        if (!t || strcmp(t, "text") || !json_is_string(text)) {
            oai_fail(e, 400, "messages",
                     "messages[%zu].content[%zu]: only text parts are supported", i, j);
            return NULL;
        }
        total += json_string_length(text); /* the body's size bounds it */
    }
    char *cat = malloc(total + 1);
    if (!cat)
        return NULL;
    size_t off = 0;
    json_array_foreach(c, j, part)
    {
        json_t *text = json_object_get(part, "text");
        memcpy(cat + off, json_string_value(text), json_string_length(text));
        off += json_string_length(text);
    }
    json_t *out = json_stringn_nocheck(cat, total);
    free(cat);
    return out;
}

/* An assistant message's tool_calls as templates read them: OpenAI sends
 * each call's arguments as a string of JSON, Hugging Face's templates
 * (Llama 3.1's tojson) expect the object, so a string that holds a JSON
 * object becomes it (as vLLM does); anything else goes as it is, for lade
 * to check. A new reference, NULL on ENOMEM. */
static json_t *map_tool_calls(json_t *calls)
{
    json_t *out = json_deep_copy(calls), *c;
    size_t i;

    if (!out || !json_is_array(out))
        return out;
    json_array_foreach(out, i, c)
    {
        json_t *f = json_object_get(c, "function");
        json_t *args = json_object_get(f, "arguments"), *obj;
        if (!json_is_string(args))
            continue;
        obj = json_loadb(json_string_value(args), json_string_length(args), JSON_REJECT_DUPLICATES,
                         NULL);
        if (json_is_object(obj))
            json_object_set(f, "arguments", obj);
        json_decref(obj);
    }
    return out;
}

static int map_messages(json_t *a, json_t *dst, struct ipc_oai_error *e)
{
    json_t *out = json_array(), *m;
    size_t i;

    if (!out || json_object_set_new(dst, "messages", out) < 0)
        return -ENOMEM;
    if (!json_is_array(a))
        return json_object_set(dst, "messages", a) < 0 ? -ENOMEM : 0;
    json_array_foreach(a, i, m)
    {
        json_t *role = json_object_get(m, "role"), *c;
        const char *k;
        json_t *v;
        if (!json_is_object(m)) {
            json_array_append(out, m);
            continue;
        }
        bool tool = json_is_string(role) && !strcmp(json_string_value(role), "tool");
        json_object_foreach(m, k, v)
        {
            if (strcmp(k, "role") && strcmp(k, "content") && strcmp(k, "name") &&
                strcmp(k, "tool_calls") && strcmp(k, "tool_call_id"))
                return oai_fail(e, 400, "messages", "messages[%zu].%.32s is not supported", i, k);
        }
        json_t *nm = json_object();
        if (!nm || json_array_append_new(out, nm) < 0)
            return -ENOMEM;
        if (json_is_string(role) && !strcmp(json_string_value(role), "developer"))
            json_object_set_new(nm, "role", json_string("system"));
        else if (role)
            json_object_set(nm, "role", role);
        /* a participant's name is dropped as before; a tool's is the function's */
        if ((c = json_object_get(m, "name")) && tool && json_object_set(nm, "name", c) < 0)
            return -ENOMEM;
        if ((c = json_object_get(m, "tool_call_id")) && json_object_set(nm, "tool_call_id", c) < 0)
            return -ENOMEM;
        if ((c = json_object_get(m, "tool_calls")) &&
            json_object_set_new(nm, "tool_calls", map_tool_calls(c)) < 0)
            return -ENOMEM;
        if ((c = json_object_get(m, "content"))) {
            json_t *mc = map_content(c, i, e);
            if (!mc)
                return e->status ? -EBADMSG : -ENOMEM;
            json_object_set_new(nm, "content", mc);
        }
    }
    return 0;
}

/* The completion's prompt: a string, one string in a list, or token ids. */
static int map_prompt(json_t *p, json_t *dst, struct ipc_oai_error *e)
{
    if (json_is_array(p) && json_array_size(p) == 1 && json_is_string(json_array_get(p, 0)))
        p = json_array_get(p, 0);
    else if (json_is_array(p) && json_array_size(p) > 0 && !json_is_integer(json_array_get(p, 0)))
        return oai_fail(
                e, 400, "prompt",
                "'prompt' must be a string or a list of token ids (one prompt per request)");
    return json_object_set(dst, "prompt", p) < 0 ? -ENOMEM : 0;
}

static int map_generation(enum ipc_oai_kind kind, json_t *in, json_t *out, struct ipc_oai_opts *o,
                          struct ipc_oai_error *e)
{
    const char *k, *src = kind == IPC_OAI_CHAT ? "messages" : "prompt";
    json_t *v, *mt = json_object_get(in, "max_completion_tokens");
    int r;

    if (!json_object_get(in, src))
        return oai_fail(e, 400, src, "'%s' is required", src);
    if (!mt)
        mt = json_object_get(in, "max_tokens");
    if (mt && json_object_set(out, "max_tokens", mt) < 0)
        return -ENOMEM;
    json_object_foreach(in, k, v)
    {
        if (!strcmp(k, "model") || !strcmp(k, "max_tokens") || !strcmp(k, "max_completion_tokens"))
            continue;
        if (!strcmp(k, src))
            r = kind == IPC_OAI_CHAT ? map_messages(v, out, e) : map_prompt(v, out, e);
        else if (!strcmp(k, "stream")) {
            o->stream = json_is_true(v);
            r = json_object_set(out, k, v) < 0 ? -ENOMEM : 0;
        } else if (!strcmp(k, "stream_options"))
            r = map_options(v, o, e);
        else if (is_passed(k))
            r = json_object_set(out, k, v) < 0 ? -ENOMEM : 0;
        else if ((r = check_neutral(k, v, e)) == 0)
            r = oai_fail(e, 400, k, "Unrecognized request argument supplied: %.64s", k);
        if (r < 0)
            return r;
    }
    if (!json_object_get(out, "stream"))
        json_object_set_new(out, "stream", json_false());
    return 0;
}

/* llama.cpp's shapes: {"content", "add_special"} and {"tokens"}. */
static int map_tokens(enum ipc_oai_kind kind, json_t *in, json_t *out, struct ipc_oai_error *e)
{
    const char *k;
    json_t *v;

    json_object_foreach(in, k, v)
    {
        const char *to = kind == IPC_OAI_DETOKENIZE ? (!strcmp(k, "tokens") ? "tokens" : NULL) :
                         !strcmp(k, "content")      ? "text" :
                         !strcmp(k, "add_special")  ? "add_bos" :
                                                      NULL;
        if (!to)
            return oai_fail(e, 400, k, "Unrecognized request argument supplied: %.64s", k);
        if (json_object_set(out, to, v) < 0)
            return -ENOMEM;
    }
    if (kind == IPC_OAI_TOKENIZE && !json_object_get(out, "text"))
        return oai_fail(e, 400, "content", "'content' is required");
    return 0;
}

/* Which request field a lade error message names ("field 'x' ..."). */
static void param_of(const char *msg, char *param, size_t cap)
{
    const char *p = strstr(msg, "field '"), *q;

    if (!p && !strncmp(msg, "messages", 8)) {
        snprintf(param, cap, "messages");
        return;
    }
    if (!p && !strncmp(msg, "tools", 5)) {
        snprintf(param, cap, "tools");
        return;
    }
    if (!p)
        return;
    p += 7;
    q = strchr(p, '\'');
    if (q && (size_t)(q - p) < cap)
        snprintf(param, cap, "%.*s", (int)(q - p), p);
}

static int from_ipc_error(const struct ipc_error *ie, struct ipc_oai_error *e)
{
    ipc_oai_error_from(ipc_err_name(ie->code), ie->message, e);
    return -EBADMSG;
}

int ipc_oai_request(enum ipc_oai_kind kind, const char *body, size_t len, const char *model,
                    uint64_t id, const struct ipc_limits *lim, struct ipc_request *ret,
                    struct ipc_oai_opts *ret_opts, struct ipc_oai_error *reterr)
{
    static const char *const ops[] = { "chat", "generate", "tokenize", "detokenize" };
    ipc_cleanup_json json_t *in = NULL;
    ipc_cleanup_json json_t *out = NULL;
    struct ipc_oai_opts o = { 0 };
    struct ipc_error ie;
    json_t *m;
    int k;

    *reterr = (struct ipc_oai_error){ 0 };
    if (ipc_json_load(body, len, &in, &ie) < 0)
        return from_ipc_error(&ie, reterr);
    /* null is how many clients say "not set" */
    for (void *it = json_object_iter(in); it;) {
        void *next = json_object_iter_next(in, it);
        if (json_is_null(json_object_iter_value(it)))
            json_object_del(in, json_object_iter_key(it));
        it = next;
    }
    m = json_object_get(in, "model");
    if (m && !json_is_string(m))
        return oai_fail(reterr, 400, "model", "'model' must be a string");
    if (m && model && strcmp(json_string_value(m), model)) {
        oai_fail(reterr, 404, "model", "The model '%.64s' does not exist; this server has '%.64s'",
                 json_string_value(m), model);
        reterr->code = "model_not_found";
        return -EBADMSG;
    }
    out = json_pack("{s:I, s:s}", "id", (json_int_t)id, "op", ops[kind]);
    if (!out)
        return -ENOMEM;
    if (kind == IPC_OAI_CHAT || kind == IPC_OAI_COMPLETION)
        k = map_generation(kind, in, out, &o, reterr);
    else {
        json_object_del(in, "model");
        k = map_tokens(kind, in, out, reterr);
    }
    if (k < 0)
        return k;
    k = ipc_request_from_json(out, lim, ret, &ie);
    if (k == -EBADMSG)
        return from_ipc_error(&ie, reterr);
    o.tools = k == 0 && ret->tools;
    if (k == 0)
        *ret_opts = o;
    return k;
}

void ipc_oai_error_from(const char *code, const char *message, struct ipc_oai_error *ret)
{
    static const struct {
        const char *code;
        int status;
    } map[] = {
        { "too_large", 413 },     { "context_exceeded", 400 },
        { "busy", 429 },          { "too_many_connections", 429 },
        { "cancelled", 503 },     { "not_found", 404 },
        { "internal", 500 },      { "duplicate_id", 409 },
        { "shutting_down", 503 },
    };
    int status = 400;

    for (size_t i = 0; code && i < sizeof(map) / sizeof(map[0]); i++)
        if (!strcmp(code, map[i].code))
            status = map[i].status;
    oai_fail(ret, status, NULL, "%s", message ? message : "");
    ret->code = code && !strcmp(code, "context_exceeded") ? "context_length_exceeded" : code;
    ret->type = status == 429 ? "rate_limit_error" :
                status >= 500 ? "server_error" :
                                "invalid_request_error";
    if (status == 400)
        param_of(ret->message, ret->param, sizeof(ret->param));
}

json_t *ipc_oai_error_json(const struct ipc_oai_error *e)
{
    return json_pack("{s:{s:s, s:s, s:s?, s:s?}}", "error", "message", e->message, "type",
                     e->type ? e->type : "server_error", "param", e->param[0] ? e->param : NULL,
                     "code", e->code);
}

/* ---- responses ------------------------------------------------------------*/

static json_t *head(const struct ipc_oai_resp *r, bool chunk, json_t *choice)
{
    const char *obj = r->kind == IPC_OAI_CHAT ?
                              (chunk ? "chat.completion.chunk" : "chat.completion") :
                              "text_completion";

    return json_pack("{s:s, s:s, s:I, s:s, s:[o]}", "id", r->id, "object", obj, "created",
                     (json_int_t)r->created, "model", r->model, "choices", choice);
}

static const char *finish_reason(json_t *done)
{
    const char *f = json_string_value(json_object_get(done, "finish_reason"));

    return f && (!strcmp(f, "length") || !strcmp(f, "context")) ? "length" : "stop";
}

static json_t *stat(json_t *done, const char *k)
{
    json_t *v = json_object_get(json_object_get(done, "stats"), k);

    return v ? json_incref(v) : json_integer(0);
}

static json_t *usage(json_t *done)
{
    json_t *st = json_object_get(done, "stats");
    json_int_t p = json_integer_value(json_object_get(st, "prompt_tokens"));
    json_int_t g = json_integer_value(json_object_get(st, "generated_tokens"));
    json_int_t c = json_integer_value(json_object_get(st, "prompt_tokens_reused"));

    /* cached_tokens: OpenAI's name for prompt tokens served from a cache */
    return json_pack("{s:I, s:I, s:I, s:{s:I}}", "prompt_tokens", p, "completion_tokens", g,
                     "total_tokens", p + g, "prompt_tokens_details", "cached_tokens", c);
}

/* lade's extension: what lookahead decoding did for this response. */
static json_t *lookahead(json_t *done)
{
    return json_pack("{s:o, s:o, s:o, s:o, s:o}", "steps", stat(done, "steps"), "tokens_per_step",
                     stat(done, "tokens_per_step"), "draft_tokens", stat(done, "draft_tokens"),
                     "accepted_tokens", stat(done, "accepted_tokens"), "acceptance",
                     stat(done, "acceptance"));
}

static json_t *set_usage(const struct ipc_oai_resp *r, json_t *o)
{
    if (o && r->include_usage)
        json_object_set_new(o, "usage", json_null());
    return o;
}

json_t *ipc_oai_chunk(const struct ipc_oai_resp *r, const char *text, bool first)
{
    json_t *c;

    if (r->kind == IPC_OAI_CHAT)
        c = first ? json_pack("{s:i, s:{s:s, s:s}, s:n, s:n}", "index", 0, "delta", "role",
                              "assistant", "content", text, "logprobs", "finish_reason") :
                    json_pack("{s:i, s:{s:s}, s:n, s:n}", "index", 0, "delta", "content", text,
                              "logprobs", "finish_reason");
    else
        c = json_pack("{s:i, s:s, s:n, s:n}", "index", 0, "text", text, "logprobs",
                      "finish_reason");
    return set_usage(r, head(r, true, c));
}

json_t *ipc_oai_last_chunk(const struct ipc_oai_resp *r, json_t *done)
{
    const char *fr = finish_reason(done);
    json_t *c = r->kind == IPC_OAI_CHAT ?
                        json_pack("{s:i, s:{}, s:n, s:s}", "index", 0, "delta", "logprobs",
                                  "finish_reason",
                                  r->tool_called && strcmp(fr, "length") ? "tool_calls" : fr) :
                        json_pack("{s:i, s:s, s:n, s:s}", "index", 0, "text", "", "logprobs",
                                  "finish_reason", finish_reason(done));
    json_t *o = set_usage(r, head(r, true, c));

    if (o)
        json_object_set_new(o, "lookahead", lookahead(done));
    return o;
}

json_t *ipc_oai_usage_chunk(const struct ipc_oai_resp *r, json_t *done)
{
    const char *obj = r->kind == IPC_OAI_CHAT ? "chat.completion.chunk" : "text_completion";

    return json_pack("{s:s, s:s, s:I, s:s, s:[], s:o}", "id", r->id, "object", obj, "created",
                     (json_int_t)r->created, "model", r->model, "choices", "usage", usage(done));
}

/* ---- tool calls in a reply (Hermes' format, Qwen's templates) ------------ */

#define TOOL_OPEN "<tool_call>"
#define TOOL_CLOSE "</tool_call>"

static bool is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\n' && s[i] != '\t' && s[i] != '\r')
            return false;
    return true;
}

/* One block's JSON, {"name": "...", "arguments": {...} or "..."}, as
 * OpenAI's call object; NULL when it is not one (or on ENOMEM). */
static json_t *tool_call(const char *s, size_t n, size_t i, const char *rid)
{
    json_t *j = json_loadb(s, n, JSON_REJECT_DUPLICATES, NULL), *out = NULL;
    json_t *name = json_object_get(j, "name"), *args = json_object_get(j, "arguments");
    char id[96], *a = NULL;

    if (json_is_string(name) && (json_is_object(args) || json_is_string(args))) {
        a = json_is_string(args) ? strdup(json_string_value(args)) : json_dumps(args, JSON_COMPACT);
        snprintf(id, sizeof(id), "call_%zu_%.80s", i, rid);
        if (a)
            out = json_pack("{s:s, s:s, s:{s:O, s:s}}", "id", id, "type", "function", "function",
                            "name", name, "arguments", a);
    }
    free(a);
    json_decref(j);
    return out;
}

/* Every <tool_call> block of text as a call, the text between them into
 * *ret_content (a new string, or null when blank); NULL when there is no
 * block or one does not parse (the text then stays the content). */
static json_t *tool_calls_of(const char *text, size_t len, const char *rid, json_t **ret_content)
{
    json_t *calls = json_array();
    char *rest = malloc(len + 1);
    size_t n = 0, at = 0;
    const char *p;

    while (calls && rest && (p = memmem(text + at, len - at, TOOL_OPEN, strlen(TOOL_OPEN)))) {
        const char *body = p + strlen(TOOL_OPEN);
        const char *end = memmem(body, len - (size_t)(body - text), TOOL_CLOSE, strlen(TOOL_CLOSE));
        json_t *c = end ? tool_call(body, (size_t)(end - body), json_array_size(calls), rid) : NULL;
        if (!c || json_array_append_new(calls, c) < 0)
            goto none;
        memcpy(rest + n, text + at, (size_t)(p - (text + at)));
        n += (size_t)(p - (text + at));
        at = (size_t)(end - text) + strlen(TOOL_CLOSE);
    }
    if (!calls || !rest || json_array_size(calls) == 0)
        goto none;
    memcpy(rest + n, text + at, len - at);
    n += len - at;
    *ret_content = is_blank(rest, n) ? json_null() : json_stringn(rest, n);
    free(rest);
    return *ret_content ? calls : (json_decref(calls), NULL);
none:
    json_decref(calls);
    free(rest);
    return NULL;
}

static json_t *chat_choice(const struct ipc_oai_resp *r, json_t *done)
{
    json_t *text = json_object_get(done, "text"), *content = NULL, *calls = NULL;
    const char *fr = finish_reason(done);

    if (r->tools && json_is_string(text))
        calls = tool_calls_of(json_string_value(text), json_string_length(text), r->id, &content);
    if (!calls)
        return json_pack("{s:i, s:{s:s, s:O}, s:n, s:s}", "index", 0, "message", "role",
                         "assistant", "content", text, "logprobs", "finish_reason", fr);
    return json_pack("{s:i, s:{s:s, s:o, s:o}, s:n, s:s}", "index", 0, "message", "role",
                     "assistant", "content", content, "tool_calls", calls, "logprobs",
                     "finish_reason", strcmp(fr, "length") ? "tool_calls" : fr);
}

/* ---- streamed replies with tools ------------------------------------------- */

/* How many bytes at the end of s (n bytes) may begin "<tool_call>". */
static size_t open_prefix(const char *s, size_t n)
{
    size_t k = strlen(TOOL_OPEN) - 1;
    for (k = k < n ? k : n; k > 0; k--)
        if (!memcmp(s + n - k, TOOL_OPEN, k))
            return k;
    return 0;
}

int ipc_oai_hold_push(struct ipc_oai_hold *h, const char *text, size_t n, char **ret_emit)
{
    const char *p;
    size_t keep;

    *ret_emit = NULL;
    if (h->len + n + 1 > h->cap) {
        size_t cap = 2 * (h->len + n + 1);
        char *b = realloc(h->buf, cap);
        if (!b)
            return -ENOMEM;
        h->buf = b;
        h->cap = cap;
    }
    memcpy(h->buf + h->len, text, n);
    h->len += n;
    h->buf[h->len] = 0;
    if (h->in_call)
        return 0;
    p = memmem(h->buf, h->len, TOOL_OPEN, strlen(TOOL_OPEN));
    h->in_call = p != NULL;
    keep = p ? (size_t)(p - h->buf) : h->len - open_prefix(h->buf, h->len);
    if (keep == 0)
        return 0;
    if (!(*ret_emit = malloc(keep + 1)))
        return -ENOMEM;
    memcpy(*ret_emit, h->buf, keep);
    (*ret_emit)[keep] = 0;
    memmove(h->buf, h->buf + keep, h->len - keep + 1);
    h->len -= keep;
    return 0;
}

/* OpenAI's streamed form of calls: each with its index in the list. */
static json_t *tool_calls_chunk(const struct ipc_oai_resp *r, json_t *calls)
{
    json_t *c;
    size_t i;

    json_array_foreach(calls, i, c)
    {
        if (json_object_set_new(c, "index", json_integer((json_int_t)i)) < 0)
            return NULL;
    }
    return set_usage(r, head(r, true,
                             json_pack("{s:i, s:{s:O}, s:n, s:n}", "index", 0, "delta",
                                       "tool_calls", calls, "logprobs", "finish_reason")));
}

int ipc_oai_hold_end(struct ipc_oai_resp *r, struct ipc_oai_hold *h, json_t *chunks)
{
    json_t *content = NULL, *calls = NULL;
    int k = 0;

    if (h->len == 0)
        return 0;
    if (h->in_call)
        calls = tool_calls_of(h->buf, h->len, r->id, &content);
    if (!calls)
        return json_array_append_new(chunks, ipc_oai_chunk(r, h->buf, false)) < 0 ? -ENOMEM : 0;
    if (json_is_string(content))
        k = json_array_append_new(chunks, ipc_oai_chunk(r, json_string_value(content), false));
    if (k == 0)
        k = json_array_append_new(chunks, tool_calls_chunk(r, calls));
    json_decref(content);
    json_decref(calls);
    r->tool_called = k == 0;
    return k < 0 ? -ENOMEM : 0;
}

void ipc_oai_hold_done(struct ipc_oai_hold *h)
{
    free(h->buf);
    *h = (struct ipc_oai_hold){ 0 };
}

json_t *ipc_oai_response(const struct ipc_oai_resp *r, json_t *done)
{
    json_t *text = json_object_get(done, "text");
    json_t *c = r->kind == IPC_OAI_CHAT ?
                        chat_choice(r, done) :
                        json_pack("{s:i, s:O, s:n, s:s}", "index", 0, "text", text, "logprobs",
                                  "finish_reason", finish_reason(done));
    json_t *o = head(r, false, c);

    if (o && (json_object_set_new(o, "usage", usage(done)) < 0 ||
              json_object_set_new(o, "lookahead", lookahead(done)) < 0)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *ipc_oai_result(enum ipc_oai_kind kind, json_t *result)
{
    if (kind == IPC_OAI_TOKENIZE)
        return json_pack("{s:O}", "tokens", json_object_get(result, "tokens"));
    return json_pack("{s:O}", "content", json_object_get(result, "text"));
}
