/* liblade-client: connection, request encoding, event decoding. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ipc/ipc-internal.h"
#include "ipc/ipc.h"
#include "ipc/lade-client.h"

#define CLIENT_LINE_MAX (64u << 20) /* a non-streamed completion comes in one line */

struct lade_client {
    int fd;
    struct ipc_linebuf in;
    json_t *cur; /* the event returned last */
    char *line; /* its text, NUL-terminated */
    int32_t *toks;
    uint32_t toks_cap;
    char id[IPC_ID_MAX + 1];
    char *server_version;
    char *model;
};

void lade_gen_opts_init(struct lade_gen_opts *o)
{
    *o = (struct lade_gen_opts){ .temperature = -1,
                                 .top_k = -1,
                                 .top_p = -1,
                                 .min_p = -1,
                                 .repeat_penalty = -1,
                                 .seed = -1,
                                 .lookahead = -1,
                                 .stream = true };
}

void lade_client_free(struct lade_client *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    ipc_linebuf_done(&c->in);
    json_decref(c->cur);
    free(c->line);
    free(c->toks);
    free(c->server_version);
    free(c->model);
    free(c);
}

int lade_client_fd(const struct lade_client *c)
{
    return c->fd;
}

const char *lade_client_server_version(const struct lade_client *c)
{
    return c->server_version ? c->server_version : "";
}

const char *lade_client_model(const struct lade_client *c)
{
    return c->model ? c->model : "";
}

static int open_socket(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd;

    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        if (errno == EINTR)
            continue;
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

int lade_client_connect(const char *path, struct lade_client **ret)
{
    struct lade_client *c;
    struct lade_event ev;
    int r;

    if (!path)
        path = getenv("LADE_SOCKET");
    if (!path || !*path)
        path = LADE_CLIENT_DEFAULT_SOCKET;
    c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    ipc_linebuf_init(&c->in, CLIENT_LINE_MAX);
    c->fd = open_socket(path);
    if (c->fd < 0) {
        r = c->fd;
        lade_client_free(c);
        return r;
    }
    /* laded tells NDJSON from HTTP by the first byte and sends hello at
     * once for one that is not an HTTP method's letter; whitespace before
     * the first request is still valid JSON. A refused connection may be
     * closed already: what it says is read below. */
    (void)!send(c->fd, " ", 1, MSG_NOSIGNAL);
    r = lade_client_next(c, &ev, 30000);
    if (r == 1 && ev.type == LADE_EVENT_ERROR)
        r = !strcmp(ev.code, "too_many_connections") ? -EUSERS : -EPROTO;
    else if (r == 1 && ev.type != LADE_EVENT_HELLO)
        r = -EPROTO;
    else if (r == 1 && json_integer_value(json_object_get(c->cur, "v")) != IPC_PROTOCOL_VERSION)
        r = -EPROTO;
    else if (r == 0)
        r = -ETIMEDOUT;
    if (r == 1) {
        const char *v = json_string_value(json_object_get(c->cur, "server"));
        const char *m = json_string_value(json_object_get(c->cur, "model"));
        c->server_version = strdup(v ? v : "");
        c->model = strdup(m ? m : "");
        *ret = c;
        return 0;
    }
    lade_client_free(c);
    return r;
}

int lade_client_send_raw(struct lade_client *c, const char *line, size_t len)
{
    struct iovec iov[2] = { { (void *)line, len }, { "\n", 1 } };
    struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
    size_t total = len + 1;

    while (total > 0) {
        ssize_t n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        total -= (size_t)n;
        while (n > 0 && mh.msg_iovlen > 0) { /* skip what was written */
            size_t k = (size_t)n < mh.msg_iov->iov_len ? (size_t)n : mh.msg_iov->iov_len;
            mh.msg_iov->iov_base = (char *)mh.msg_iov->iov_base + k;
            mh.msg_iov->iov_len -= k;
            n -= (ssize_t)k;
            if (mh.msg_iov->iov_len == 0) {
                mh.msg_iov++;
                mh.msg_iovlen--;
            }
        }
    }
    return 0;
}

/* Send o (consumed) with "v", "id" and "op" added. */
static int send_request(struct lade_client *c, const char *id, const char *op, json_t *o)
{
    ipc_cleanup_json json_t *req = o;
    ipc_cleanup_free char *s = NULL;

    if (!req || !id || !op)
        return req ? -EINVAL : -ENOMEM;
    if (json_object_set_new(req, "v", json_integer(IPC_PROTOCOL_VERSION)) < 0 ||
        json_object_set_new(req, "id", json_string(id)) < 0 ||
        json_object_set_new(req, "op", json_string(op)) < 0)
        return -EINVAL; /* id or op not UTF-8 */
    s = json_dumps(req, JSON_COMPACT);
    if (!s)
        return -ENOMEM;
    return lade_client_send_raw(c, s, strlen(s));
}

static int set_num(json_t *o, const char *k, double v)
{
    return v < 0 ? 0 : json_object_set_new(o, k, json_real(v));
}

static int add_opts(json_t *o, const struct lade_gen_opts *opt)
{
    struct lade_gen_opts def;
    json_t *stop;
    int r = 0;

    if (!opt) {
        lade_gen_opts_init(&def);
        opt = &def;
    }
    if (opt->max_tokens)
        r |= json_object_set_new(o, "max_tokens", json_integer(opt->max_tokens));
    r |= set_num(o, "temperature", opt->temperature) | set_num(o, "top_p", opt->top_p) |
         set_num(o, "min_p", opt->min_p) | set_num(o, "repeat_penalty", opt->repeat_penalty);
    if (opt->top_k >= 0)
        r |= json_object_set_new(o, "top_k", json_integer(opt->top_k));
    if (opt->seed >= 0)
        r |= json_object_set_new(o, "seed", json_integer(opt->seed));
    if (opt->n_stop) {
        r |= json_object_set_new(o, "stop", stop = json_array());
        for (uint32_t i = 0; stop && i < opt->n_stop; i++)
            r |= json_array_append_new(stop, json_string(opt->stop[i]));
    }
    if (opt->lookahead == 0)
        r |= json_object_set_new(o, "lookahead", json_false());
    else if (opt->lookahead > 0 && !(opt->la_n || opt->la_w || opt->la_g))
        r |= json_object_set_new(o, "lookahead", json_true());
    else if (opt->lookahead > 0) {
        json_t *la = json_object();
        r |= json_object_set_new(o, "lookahead", la);
        if (la && opt->la_n)
            r |= json_object_set_new(la, "n", json_integer(opt->la_n));
        if (la && opt->la_w)
            r |= json_object_set_new(la, "w", json_integer(opt->la_w));
        if (la && opt->la_g)
            r |= json_object_set_new(la, "g", json_integer(opt->la_g));
    }
    r |= json_object_set_new(o, "stream", json_boolean(opt->stream));
    return r ? -EINVAL : 0;
}

int lade_client_generate(struct lade_client *c, const char *id, const char *prompt,
                         const struct lade_gen_opts *o)
{
    json_t *req = json_pack("{s:s}", "prompt", prompt ? prompt : "");

    if (req && add_opts(req, o) < 0) {
        json_decref(req);
        return -EINVAL;
    }
    return send_request(c, id, "generate", req);
}

int lade_client_chat(struct lade_client *c, const char *id, const struct lade_message *msgs,
                     uint32_t n, const struct lade_gen_opts *o)
{
    json_t *arr = json_array();
    json_t *req = json_pack("{s:o}", "messages", arr);

    for (uint32_t i = 0; req && i < n; i++) {
        json_t *m = json_pack("{s:s, s:s}", "role", msgs[i].role, "content", msgs[i].content);
        if (!m || json_array_append_new(arr, m) < 0) {
            json_decref(req);
            return -EINVAL;
        }
    }
    if (req && add_opts(req, o) < 0) {
        json_decref(req);
        return -EINVAL;
    }
    return send_request(c, id, "chat", req);
}

int lade_client_tokenize(struct lade_client *c, const char *id, const char *text, bool add_bos)
{
    return send_request(c, id, "tokenize",
                        json_pack("{s:s, s:b}", "text", text ? text : "", "add_bos", add_bos));
}

int lade_client_detokenize(struct lade_client *c, const char *id, const int32_t *tokens, uint32_t n)
{
    json_t *arr = json_array();

    for (uint32_t i = 0; arr && i < n; i++) {
        if (json_array_append_new(arr, json_integer(tokens[i])) < 0) {
            json_decref(arr);
            return -ENOMEM;
        }
    }
    return send_request(c, id, "detokenize", json_pack("{s:o}", "tokens", arr));
}

int lade_client_cancel(struct lade_client *c, const char *id, const char *target)
{
    return send_request(c, id, "cancel", json_pack("{s:s}", "target", target ? target : ""));
}

int lade_client_simple(struct lade_client *c, const char *id, const char *op)
{
    return send_request(c, id, op, json_object());
}

/* ---- events ---------------------------------------------------------------*/

static const char *str_field(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static void read_stats(json_t *st, struct lade_stats *ret)
{
#define U(k) (uint64_t) json_integer_value(json_object_get(st, k))
#define D(k) json_number_value(json_object_get(st, k))
    *ret = (struct lade_stats){
        .prompt_tokens = (uint32_t)U("prompt_tokens"),
        .prompt_tokens_reused = (uint32_t)U("prompt_tokens_reused"),
        .generated_tokens = (uint32_t)U("generated_tokens"),
        .steps = (uint32_t)U("steps"),
        .draft_tokens = U("draft_tokens"),
        .accepted_tokens = U("accepted_tokens"),
        .tokens_per_step = D("tokens_per_step"),
        .acceptance = D("acceptance"),
        .tokens_per_s = D("tokens_per_s"),
        .queue_ms = D("queue_ms"),
        .prefill_ms = D("prefill_ms"),
        .decode_ms = D("decode_ms"),
    };
#undef U
#undef D
}

static int read_tokens(struct lade_client *c, json_t *arr, struct lade_event *ev)
{
    size_t n = json_array_size(arr), i;
    json_t *t;

    if (n > c->toks_cap) {
        int32_t *nt = realloc(c->toks, n * sizeof(*nt));
        if (!nt)
            return -ENOMEM;
        c->toks = nt;
        c->toks_cap = (uint32_t)n;
    }
    json_array_foreach(arr, i, t) c->toks[i] = (int32_t)json_integer_value(t);
    ev->tokens = c->toks;
    ev->n_tokens = (uint32_t)n;
    return 0;
}

static int decode_event(struct lade_client *c, const char *line, size_t len, struct lade_event *ev)
{
    static const char *const types[] = { "hello", "token", "done", "result", "error" };
    json_t *o, *id, *text;
    const char *type;

    json_decref(c->cur);
    free(c->line);
    c->line = strndup(line, len);
    c->cur = o = json_loadb(line, len, 0, NULL);
    if (!o || !c->line || !json_is_object(o) ||
        !(type = json_string_value(json_object_get(o, "event"))))
        return -EBADMSG;
    *ev = (struct lade_event){ .id = c->id,
                               .text = "",
                               .finish_reason = "",
                               .code = "",
                               .message = "",
                               .op = "",
                               .json = c->line };
    ev->type = (enum lade_event_type) - 1;
    for (int i = 0; i < 5; i++)
        if (!strcmp(type, types[i]))
            ev->type = (enum lade_event_type)i;
    if ((int)ev->type < 0)
        return -EBADMSG;
    id = json_object_get(o, "id");
    struct ipc_id x;
    if (ipc_id_from_json(id, &x))
        memcpy(c->id, x.s, sizeof(c->id));
    else
        c->id[0] = '\0';
    if ((text = json_object_get(o, "text"))) {
        ev->text = json_string_value(text) ? json_string_value(text) : "";
        ev->text_len = json_string_length(text);
    }
    ev->finish_reason = str_field(o, "finish_reason");
    ev->code = str_field(o, "code");
    ev->message = str_field(o, "message");
    ev->op = str_field(o, "op");
    if (ev->type == LADE_EVENT_DONE)
        read_stats(json_object_get(o, "stats"), &ev->stats);
    if (ev->type == LADE_EVENT_TOKEN ||
        (ev->type == LADE_EVENT_RESULT && json_object_get(o, "tokens")))
        return read_tokens(c, json_object_get(o, "tokens"), ev);
    return 0;
}

static int wait_readable(int fd, int timeout_ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };

    for (;;) {
        int n = poll(&p, 1, timeout_ms);
        if (n < 0 && errno == EINTR)
            continue;
        return n < 0 ? -errno : n;
    }
}

int lade_client_next(struct lade_client *c, struct lade_event *ev, int timeout_ms)
{
    for (;;) {
        const char *line;
        size_t len, avail;
        int k = ipc_linebuf_next(&c->in, &line, &len);
        if (k > 0)
            return decode_event(c, line, len, ev) < 0 ? -EBADMSG : 1;
        if (k < 0)
            return -EBADMSG;
        k = wait_readable(c->fd, timeout_ms);
        if (k <= 0)
            return k;
        char *p = ipc_linebuf_space(&c->in, &avail);
        if (!p)
            return -ENOMEM;
        ssize_t n = read(c->fd, p, avail);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0)
            return errno == ECONNRESET ? -EPIPE : -errno;
        if (n == 0)
            return -EPIPE;
        ipc_linebuf_commit(&c->in, (size_t)n);
    }
}

char *lade_event_field_json(const struct lade_event *ev, const char *field)
{
    json_t *o = json_loadb(ev->json, strlen(ev->json), 0, NULL);
    json_t *v = json_object_get(o, field);
    char *s = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;

    json_decref(o);
    return s;
}

char *lade_event_field_string(const struct lade_event *ev, const char *field)
{
    json_t *o = json_loadb(ev->json, strlen(ev->json), 0, NULL);
    const char *v = json_string_value(json_object_get(o, field));
    char *s = v ? strdup(v) : NULL;

    json_decref(o);
    return s;
}
