/* daemon: the HTTP side of a connection: reading and parsing requests
 * (http_msg.c), routing, answering from the NDJSON events of the request
 * (ipc/openai.c gives the JSON), streaming, keep-alive and pipelining,
 * timeouts for slow senders. See http.h. */
#include "daemon/http.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "daemon/http_msg.h"
#include "daemon/log.h"
#include "daemon/loop.h"
#include "daemon/util.h"

#define HTTP_HEADER_MAX (16u * 1024)
#define HTTP_REQUEST_NS (10ull * 1000000000u) /* first byte to last byte of a request */
#define HTTP_IDLE_NS (60ull * 1000000000u) /* a keep-alive connection with nothing asked */
#define HTTP_READ_MAX (64u * 1024)

struct srv_http {
    struct srv_http_msg msg;
    char *in; /* received, not yet parsed: in[in_off..in_len) */
    size_t in_off, in_len, in_cap;
    size_t in_max; /* in_cap grows up to: a whole request and a read */
    uint64_t msg_start_ns; /* first byte of the request being read; 0: none */
    uint64_t idle_since_ns;
    uint64_t seq; /* lade id of the last request */
    /* the request at the core */
    bool busy; /* its events come back through srv_http_event */
    bool resume; /* it ended: parse what waits (srv_http_tick) */
    bool head_sent; /* the streamed response has begun */
    bool chunked; /* HTTP/1.1: the stream is chunked */
    bool keep_alive;
    bool closing; /* the last response is out: close once written */
    struct ipc_oai_opts opts;
    struct ipc_oai_resp resp;
    struct ipc_oai_hold hold; /* a streamed chat with tools: the text that may be a tool call */
    char rid[64];
};

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 417: return "Expectation Failed";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Internal Server Error";
    }
}

/* The request is answered: the next one may be parsed, or the connection
 * closes once the response is written (read_closed: srv_conn_reap). */
static void finish(struct srv *s, struct srv_conn *c)
{
    struct srv_http *h = c->http;

    h->busy = h->head_sent = false;
    ipc_oai_hold_done(&h->hold);
    h->resume = true;
    h->idle_since_ns = srv_now_ns();
    if (!h->keep_alive) {
        h->closing = true;
        c->read_closed = true;
        srv_conn_set_events(s, c);
    }
}

/* A whole response: status line, headers, body (taken over). */
static void respond(struct srv *s, struct srv_conn *c, int status, const char *ctype, char *body,
                    size_t len, const char *extra)
{
    struct srv_http *h = c->http;
    srv_cleanup_free char *b = body;
    char *out = NULL, *grown;
    int n;

    n = asprintf(&out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s%s\r\n",
                 status, reason(status), ctype, len, h->keep_alive ? "" : "Connection: close\r\n",
                 extra ? extra : "");
    grown = n < 0 ? NULL : realloc(out, (size_t)n + len);
    if (!grown) {
        free(n < 0 ? NULL : out);
        c->dead = true;
        return;
    }
    out = grown;
    memcpy(out + n, b, len);
    srv_conn_send_raw(s, c, out, (size_t)n + len);
    finish(s, c);
}

static void respond_json(struct srv *s, struct srv_conn *c, int status, json_t *o,
                         const char *extra)
{
    char *body = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;

    json_decref(o);
    if (!body && status < 500) {
        char *m = strdup("out of memory\n");
        respond(s, c, 500, "text/plain", m, m ? strlen(m) : 0, NULL);
        return;
    }
    respond(s, c, status, "application/json", body, body ? strlen(body) : 0, extra);
}

static void respond_error(struct srv *s, struct srv_conn *c, const struct ipc_oai_error *e)
{
    bool later = e->status == 429 || e->status == 503;

    respond_json(s, c, e->status, ipc_oai_error_json(e), later ? "Retry-After: 1\r\n" : NULL);
}

static void refuse(struct srv *s, struct srv_conn *c, int status, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static void refuse(struct srv *s, struct srv_conn *c, int status, const char *fmt, ...)
{
    struct ipc_oai_error e = { .status = status };
    va_list ap;

    e.type = status >= 500 ? "server_error" : "invalid_request_error";
    va_start(ap, fmt);
    vsnprintf(e.message, sizeof(e.message), fmt, ap);
    va_end(ap);
    respond_error(s, c, &e);
}

/* ---- streaming ------------------------------------------------------------*/

static void send_chunk(struct srv *s, struct srv_conn *c, const char *data, size_t len)
{
    char *out = NULL;
    int n = c->http->chunked ? asprintf(&out, "%zx\r\n%.*s\r\n", len, (int)len, data) :
                               asprintf(&out, "%.*s", (int)len, data);

    if (n < 0) {
        c->dead = true;
        return;
    }
    srv_conn_send_raw(s, c, out, (size_t)n);
}

/* One server-sent event: "data: JSON" (o taken over) or "data: [DONE]". */
static void send_event(struct srv *s, struct srv_conn *c, json_t *o, const char *raw)
{
    char *j = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;
    char *ev = NULL;
    int n;

    json_decref(o);
    if (!j && !raw) {
        c->dead = true;
        return;
    }
    n = asprintf(&ev, "data: %s\n\n", j ? j : raw);
    free(j);
    if (n < 0) {
        c->dead = true;
        return;
    }
    send_chunk(s, c, ev, (size_t)n);
    free(ev);
}

static void stream_begin(struct srv *s, struct srv_conn *c)
{
    struct srv_http *h = c->http;
    char *head = NULL;
    int n;

    if (h->head_sent)
        return;
    h->head_sent = true;
    h->chunked = h->msg.p.http_major == 1 && h->msg.p.http_minor >= 1;
    if (!h->chunked)
        h->keep_alive = false; /* HTTP/1.0: the body ends with the connection */
    n = asprintf(
            &head,
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n%s\r\n",
            h->chunked ? "Transfer-Encoding: chunked\r\n" : "Connection: close\r\n");
    if (n < 0) {
        c->dead = true;
        return;
    }
    srv_conn_send_raw(s, c, head, (size_t)n);
    if (h->resp.kind == IPC_OAI_CHAT)
        send_event(s, c, ipc_oai_chunk(&h->resp, "", true), NULL);
}

static void stream_end(struct srv *s, struct srv_conn *c)
{
    send_event(s, c, NULL, "[DONE]");
    if (c->http->chunked)
        send_chunk(s, c, "", 0);
    finish(s, c);
}

/* ---- events of the request at the core -------------------------------------*/

/* A streamed token's text; with tools offered, what may be a tool call
 * is held (ipc_oai_hold) and sent at the end. */
static void stream_text(struct srv *s, struct srv_conn *c, const char *text)
{
    struct srv_http *h = c->http;
    char *emit = NULL;

    if (!h->resp.tools) {
        send_event(s, c, ipc_oai_chunk(&h->resp, text, false), NULL);
        return;
    }
    if (ipc_oai_hold_push(&h->hold, text, strlen(text), &emit) < 0) {
        c->dead = true;
        return;
    }
    if (emit)
        send_event(s, c, ipc_oai_chunk(&h->resp, emit, false), NULL);
    free(emit);
}

/* The held text at the end: as tool calls when it holds them. */
static void end_held(struct srv *s, struct srv_conn *c)
{
    struct srv_http *h = c->http;
    json_t *chunks = json_array(), *x;
    size_t i;

    if (!chunks || ipc_oai_hold_end(&h->resp, &h->hold, chunks) < 0) {
        json_decref(chunks);
        c->dead = true;
        return;
    }
    json_array_foreach(chunks, i, x)
    {
        send_event(s, c, json_incref(x), NULL);
    }
    json_decref(chunks);
}

static void on_done(struct srv *s, struct srv_conn *c, json_t *ev)
{
    struct srv_http *h = c->http;

    if (!h->opts.stream) {
        respond_json(s, c, 200, ipc_oai_response(&h->resp, ev), NULL);
        return;
    }
    stream_begin(s, c);
    if (h->resp.tools)
        end_held(s, c);
    send_event(s, c, ipc_oai_last_chunk(&h->resp, ev), NULL);
    if (h->opts.include_usage)
        send_event(s, c, ipc_oai_usage_chunk(&h->resp, ev), NULL);
    stream_end(s, c);
}

static void on_error(struct srv *s, struct srv_conn *c, json_t *ev)
{
    struct ipc_oai_error e;

    ipc_oai_error_from(json_string_value(json_object_get(ev, "code")),
                       json_string_value(json_object_get(ev, "message")), &e);
    if (!c->http->head_sent) {
        respond_error(s, c, &e);
        return;
    }
    send_event(s, c, ipc_oai_error_json(&e), NULL);
    stream_end(s, c);
}

void srv_http_event(struct srv *s, struct srv_conn *c, char *line, size_t len)
{
    struct srv_http *h = c->http;
    json_t *ev = json_loadb(line, len, 0, NULL);
    const char *type = json_string_value(json_object_get(ev, "event"));

    free(line);
    if (!type || !h->busy || c->dead) {
        json_decref(ev);
        return;
    }
    if (!strcmp(type, "token") && h->opts.stream) {
        const char *text = json_string_value(json_object_get(ev, "text"));
        stream_begin(s, c);
        if (text && *text)
            stream_text(s, c, text);
    } else if (!strcmp(type, "done"))
        on_done(s, c, ev);
    else if (!strcmp(type, "result"))
        respond_json(s, c, 200, ipc_oai_result(h->resp.kind, ev), NULL);
    else if (!strcmp(type, "error"))
        on_error(s, c, ev);
    json_decref(ev);
}

/* ---- endpoints ------------------------------------------------------------*/

static void get_health(struct srv *s, struct srv_conn *c)
{
    json_t *o = json_pack("{s:s}", "status", s->draining ? "draining" : "ok");

    if (s->draining)
        c->http->keep_alive = false;
    respond_json(s, c, s->draining ? 503 : 200, o, s->draining ? "Retry-After: 1\r\n" : NULL);
}

static void get_metrics(struct srv *s, struct srv_conn *c)
{
    char *text;

    struct srv_stats st;

    srv_stats_take(s, &st); /* rendered after the lock: the workers take it every token */
    text = srv_stats_prometheus(&st, srv_now_ns());
    if (!text) {
        refuse(s, c, 500, "out of memory");
        return;
    }
    respond(s, c, 200, "text/plain; version=0.0.4; charset=utf-8", text, strlen(text), NULL);
}

static json_t *model_json(struct srv *s)
{
    return json_pack("{s:s, s:s, s:I, s:s}", "id", s->info.model_name, "object", "model", "created",
                     (json_int_t)(time(NULL) -
                                  (json_int_t)((srv_now_ns() - s->stats.start_ns) / 1000000000u)),
                     "owned_by", "lade");
}

static void get_models(struct srv *s, struct srv_conn *c, const char *one)
{
    if (!one) {
        respond_json(s, c, 200, json_pack("{s:s, s:[o]}", "object", "list", "data", model_json(s)),
                     NULL);
        return;
    }
    if (strcmp(one, s->info.model_name)) {
        struct ipc_oai_error e = { .status = 404,
                                   .type = "invalid_request_error",
                                   .code = "model_not_found" };
        snprintf(e.message, sizeof(e.message), "The model '%.64s' does not exist", one);
        snprintf(e.param, sizeof(e.param), "model");
        respond_error(s, c, &e);
        return;
    }
    respond_json(s, c, 200, model_json(s), NULL);
}

/* A request for the core: mapped, then handled as NDJSON's would be. */
static void post(struct srv *s, struct srv_conn *c, enum ipc_oai_kind kind)
{
    static const char *const prefix[] = { "chatcmpl", "cmpl", "tok", "detok" };
    const struct ipc_limits lim = srv_ipc_limits(s);
    struct srv_http *h = c->http;
    struct ipc_oai_error e;
    struct ipc_request rq;
    int k = ipc_oai_request(kind, h->msg.body ? h->msg.body : "", h->msg.body_len,
                            s->info.model_name, ++h->seq, &lim, &rq, &h->opts, &e);

    if (k == -ENOMEM) {
        refuse(s, c, 500, "out of memory");
        return;
    }
    if (k < 0) {
        srv_log(SRV_LOG_DEBUG, "Connection %llu sent a bad HTTP request: %s",
                (unsigned long long)c->id, e.message);
        respond_error(s, c, &e);
        return;
    }
    snprintf(h->rid, sizeof(h->rid), "%s-%llu-%llu", prefix[kind], (unsigned long long)c->id,
             (unsigned long long)h->seq);
    h->resp = (struct ipc_oai_resp){ .kind = kind,
                                     .id = h->rid,
                                     .model = s->info.model_name,
                                     .created = (long long)time(NULL),
                                     .include_usage = h->opts.include_usage,
                                     .tools = h->opts.tools };
    h->busy = true;
    srv_handle_request(s, c, &rq);
}

enum { ROUTE_MODELS = 100, ROUTE_HEALTH, ROUTE_METRICS }; /* after enum ipc_oai_kind */

static const struct route {
    const char *path;
    unsigned method;
    int kind; /* enum ipc_oai_kind, or ROUTE_* */
} routes[] = {
    { "/v1/chat/completions", HTTP_POST, IPC_OAI_CHAT },
    { "/v1/completions", HTTP_POST, IPC_OAI_COMPLETION },
    { "/tokenize", HTTP_POST, IPC_OAI_TOKENIZE },
    { "/detokenize", HTTP_POST, IPC_OAI_DETOKENIZE },
    { "/v1/models", HTTP_GET, ROUTE_MODELS },
    { "/health", HTTP_GET, ROUTE_HEALTH },
    { "/metrics", HTTP_GET, ROUTE_METRICS },
};

/* "Bearer KEY" against the key, in time independent of where they differ. */
static bool key_ok(const char *key, const char *auth)
{
    size_t n = strlen(key), m;
    unsigned char diff = 0;

    if (strncasecmp(auth, "Bearer ", 7))
        return false;
    auth += 7;
    m = strlen(auth);
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)key[i] ^ (unsigned char)(i < m ? auth[i] : 0);
    return diff == 0 && m == n;
}

static void route(struct srv *s, struct srv_conn *c)
{
    struct srv_http *h = c->http;
    char *path = h->msg.url, *q = strchr(path, '?');
    const struct route *r = NULL;
    const char *one = NULL;
    char allow[64];

    if (q)
        *q = '\0';
    if (!strncmp(path, "/v1/models/", 11) && path[11]) {
        one = path + 11;
        path[10] = '\0';
    }
    for (size_t i = 0; !r && i < sizeof(routes) / sizeof(routes[0]); i++)
        if (!strcmp(path, routes[i].path))
            r = &routes[i];
    srv_log(SRV_LOG_DEBUG, "Connection %llu: HTTP %s %s", (unsigned long long)c->id,
            http_method_str(h->msg.method), h->msg.url);
    if (c->tcp && s->http_key && !(r && r->kind == ROUTE_HEALTH) &&
        !key_ok(s->http_key, h->msg.auth)) {
        struct ipc_oai_error e = { .status = 401,
                                   .type = "invalid_request_error",
                                   .code = "invalid_api_key" };
        snprintf(e.message, sizeof(e.message),
                 "this listener needs 'Authorization: Bearer KEY' ([http] api_key_file)");
        respond_json(s, c, 401, ipc_oai_error_json(&e), "WWW-Authenticate: Bearer\r\n");
        return;
    }
    if (!r) {
        refuse(s, c, 404, "no endpoint '%.128s'", h->msg.url);
        return;
    }
    if (h->msg.method != r->method) {
        snprintf(allow, sizeof(allow), "Allow: %s\r\n", http_method_str(r->method));
        struct ipc_oai_error e = { .status = 405, .type = "invalid_request_error" };
        snprintf(e.message, sizeof(e.message), "'%s' takes %s", r->path,
                 http_method_str(r->method));
        respond_json(s, c, 405, ipc_oai_error_json(&e), allow);
        return;
    }
    switch (r->kind) {
    case ROUTE_MODELS: get_models(s, c, one); break;
    case ROUTE_HEALTH: get_health(s, c); break;
    case ROUTE_METRICS: get_metrics(s, c); break;
    default: post(s, c, r->kind); break;
    }
}

/* ---- input ----------------------------------------------------------------*/

/* Parse and answer what is buffered, one request at a time, none while
 * the connection's output is above max_output (srv_conn_taking). */
static void process(struct srv *s, struct srv_conn *c)
{
    struct srv_http *h = c->http;
    uint64_t now = srv_now_ns();

    while (srv_conn_taking(s, c) && !h->busy && !h->closing && h->in_off < h->in_len) {
        h->in_off += srv_http_msg_feed(&h->msg, h->in + h->in_off, h->in_len - h->in_off);
        if (h->msg.started && !h->msg_start_ns)
            h->msg_start_ns = now;
        if (h->msg.send_continue) {
            h->msg.send_continue = false;
            srv_conn_send_raw(s, c, strdup("HTTP/1.1 100 Continue\r\n\r\n"), 25);
        }
        if (h->msg.status) {
            h->keep_alive = false;
            refuse(s, c, h->msg.status, "%s", h->msg.error);
            break;
        }
        if (!h->msg.complete)
            break;
        h->keep_alive = h->msg.keep_alive && !s->draining;
        route(s, c);
        h->msg_start_ns = 0;
        srv_http_msg_next(&h->msg);
    }
    if (h->in_off == h->in_len)
        h->in_off = h->in_len = 0;
    /* Pipelined input waits in the buffer; a full buffer waits in the socket. */
    c->read_paused = h->in_len == h->in_max && h->in_off == 0;
    srv_conn_set_events(s, c);
}

void srv_http_process(struct srv *s, struct srv_conn *c)
{
    if (c->http && !c->dead)
        process(s, c);
}

/* Room to read into: the parsed bytes dropped, else the buffer grown. */
static int reserve(struct srv_http *h)
{
    if (h->in_off > 0 && h->in_len == h->in_cap) {
        memmove(h->in, h->in + h->in_off, h->in_len - h->in_off);
        h->in_len -= h->in_off;
        h->in_off = 0;
    }
    if (h->in_len == h->in_cap && h->in_cap < h->in_max) {
        size_t nc = h->in_cap < 8192 ? 16384 : h->in_cap * 2;
        char *nb = realloc(h->in, nc < h->in_max ? nc : h->in_max);
        if (!nb)
            return -ENOMEM;
        h->in = nb;
        h->in_cap = nc < h->in_max ? nc : h->in_max;
    }
    return h->in_len < h->in_cap ? 0 : -ENOBUFS;
}

void srv_http_read(struct srv *s, struct srv_conn *c)
{
    struct srv_http *h = c->http;
    size_t n;

    int k = reserve(h);

    if (k == -ENOMEM) {
        srv_log(SRV_LOG_WARNING, "Out of memory for connection %llu, dropping it",
                (unsigned long long)c->id);
        c->dead = true;
        return;
    }
    if (k < 0) {
        c->read_paused = true;
        srv_conn_set_events(s, c);
        return;
    }
    n = srv_conn_recv(s, c, h->in + h->in_len, h->in_cap - h->in_len);
    if (n == 0)
        return;
    h->in_len += n;
    process(s, c);
}

void srv_http_adopt(struct srv *s, struct srv_conn *c)
{
    struct srv_http *h = calloc(1, sizeof(*h));

    c->hello_due_ns = 0;
    if (!h) {
        srv_log(SRV_LOG_WARNING, "Out of memory for connection %llu, dropping it",
                (unsigned long long)c->id);
        c->dead = true;
        return;
    }
    h->in_max = s->cfg.lim.max_line + HTTP_HEADER_MAX + HTTP_READ_MAX;
    srv_http_msg_init(&h->msg, HTTP_HEADER_MAX, s->cfg.lim.max_line);
    h->idle_since_ns = srv_now_ns();
    ipc_linebuf_done(&c->in);
    c->http = h;
}

bool srv_http_sniff(struct srv *s, struct srv_conn *c)
{
    unsigned char b = c->in.len ? (unsigned char)c->in.buf[0] : 0;
    size_t n = c->in.len, cap = c->in.cap;
    char *first;

    if (b < 'A' || b > 'Z') {
        srv_conn_hello(s, c);
        return false;
    }
    first = c->in.buf; /* the line buffer's bytes become the HTTP input (cap <= max_line + 1) */
    c->in.buf = NULL;
    srv_http_adopt(s, c);
    if (!c->http) {
        free(first);
        return true;
    }
    c->http->in = first;
    c->http->in_len = n;
    c->http->in_cap = cap;
    srv_log(SRV_LOG_DEBUG, "Connection %llu speaks HTTP", (unsigned long long)c->id);
    process(s, c);
    return true;
}

char *srv_http_refusal(int status, const char *message, size_t *ret_len)
{
    struct ipc_oai_error e = { .status = status,
                               .type = status >= 500 ? "server_error" : "invalid_request_error" };
    char *body, *out = NULL;
    json_t *o;
    int n;

    snprintf(e.message, sizeof(e.message), "%s", message);
    o = ipc_oai_error_json(&e);
    body = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    n = body ? asprintf(
                       &out,
                       "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                       "Connection: close\r\nRetry-After: 1\r\n\r\n%s",
                       status, reason(status), strlen(body), body) :
               -1;
    free(body);
    if (n < 0)
        return NULL;
    *ret_len = (size_t)n;
    return out;
}

void srv_http_tick(struct srv *s, uint64_t now)
{
    for (struct srv_conn *c = s->conns; c; c = c->next) {
        struct srv_http *h = c->http;
        if (c->dead)
            continue;
        if (c->hello_due_ns && now >= c->hello_due_ns)
            srv_conn_hello(s, c);
        if (!h)
            continue;
        if (h->resume && !h->busy) {
            h->resume = false;
            process(s, c);
        }
        if (h->busy || h->closing)
            continue;
        if (h->msg_start_ns && now - h->msg_start_ns > HTTP_REQUEST_NS) {
            srv_log(SRV_LOG_INFO, "Connection %llu is too slow sending its request, closing it",
                    (unsigned long long)c->id);
            h->keep_alive = false;
            refuse(s, c, 408, "the request took longer than %llu s to arrive",
                   HTTP_REQUEST_NS / 1000000000u);
        } else if (!h->msg_start_ns && h->in_len == h->in_off &&
                   now - h->idle_since_ns > HTTP_IDLE_NS) {
            srv_log(SRV_LOG_INFO, "Connection %llu idle, closing it", (unsigned long long)c->id);
            c->dead = true;
        }
    }
}

static uint64_t earliest(uint64_t a, uint64_t b)
{
    return b && (!a || b < a) ? b : a;
}

int srv_http_timeout(struct srv *s, uint64_t now, int timeout_ms)
{
    uint64_t due = 0;

    for (struct srv_conn *c = s->conns; c; c = c->next) {
        struct srv_http *h = c->http;
        due = earliest(due, c->hello_due_ns);
        if (!h || h->busy || h->closing)
            continue;
        if (h->resume)
            return 0;
        due = earliest(due, h->msg_start_ns ? h->msg_start_ns + HTTP_REQUEST_NS + 1 :
                                              h->idle_since_ns + HTTP_IDLE_NS + 1);
    }
    if (!due)
        return timeout_ms;
    uint64_t ms = due > now ? (due - now + 999999) / 1000000 : 0;
    return ms < (uint64_t)timeout_ms ? (int)ms : timeout_ms;
}

void srv_http_free(struct srv_http *h)
{
    if (!h)
        return;
    srv_http_msg_done(&h->msg);
    ipc_oai_hold_done(&h->hold);
    free(h->in);
    free(h);
}
