/* daemon: an HTTP request assembled by http-parser's callbacks, within
 * laded's limits. */
#include "daemon/http_msg.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static struct srv_http_msg *msg_of(http_parser *p)
{
    return p->data;
}

/* Refuse the request: the callback's -1 stops the parser for good. */
static int refuse(struct srv_http_msg *m, int status, const char *why)
{
    if (!m->status) {
        m->status = status;
        m->error = why;
    }
    return -1;
}

static int count_header(struct srv_http_msg *m, size_t n)
{
    m->header_bytes += n;
    return m->header_bytes > m->max_header ? refuse(m, 431, "the request's headers are too large") :
                                             0;
}

static int on_begin(http_parser *p)
{
    msg_of(p)->started = true;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    struct srv_http_msg *m = msg_of(p);

    m->started = true;
    if (m->url_len + n > SRV_HTTP_URL_MAX)
        return refuse(m, 414, "the request's URL is too long");
    memcpy(m->url + m->url_len, at, n);
    m->url_len += n;
    m->url[m->url_len] = '\0';
    return count_header(m, n);
}

/* Only the names laded reads are kept; a piece may come in several calls. */
static int on_field(http_parser *p, const char *at, size_t n)
{
    struct srv_http_msg *m = msg_of(p);

    if (m->value_started) {
        m->field_len = 0;
        m->field_long = m->value_started = false;
    }
    if (m->field_len + n >= sizeof(m->field))
        m->field_long = true;
    else {
        memcpy(m->field + m->field_len, at, n);
        m->field_len += n;
    }
    m->field[m->field_long ? 0 : m->field_len] = '\0';
    return count_header(m, n);
}

static void append_value(char *dst, size_t cap, const char *at, size_t n)
{
    size_t have = strlen(dst);

    if (have + n >= cap)
        n = cap - 1 - have;
    memcpy(dst + have, at, n);
    dst[have + n] = '\0';
}

static int on_value(http_parser *p, const char *at, size_t n)
{
    struct srv_http_msg *m = msg_of(p);
    bool first = !m->value_started;

    m->value_started = true;
    if (!strcasecmp(m->field, "authorization")) {
        if (first)
            m->auth[0] = '\0';
        append_value(m->auth, sizeof(m->auth), at, n);
    } else if (!strcasecmp(m->field, "expect")) {
        /* A value split over two calls is no 100-continue laded knows. */
        if (first && n == 12 && !strncasecmp(at, "100-continue", 12))
            m->expect_continue = true;
        else
            m->expect_unknown = true;
    }
    return count_header(m, n);
}

static int on_headers(http_parser *p)
{
    struct srv_http_msg *m = msg_of(p);

    m->headers_done = true;
    m->method = p->method;
    if (p->http_major != 1)
        return refuse(m, 505, "only HTTP/1.0 and HTTP/1.1 are served");
    if (m->expect_unknown && !m->expect_continue)
        return refuse(m, 417, "only 'Expect: 100-continue' is understood");
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > m->max_body)
        return refuse(m, 413, "the request body is too large");
    /* Asked to confirm before the body: yes, unless it is already here. */
    m->send_continue = m->expect_continue && p->http_major == 1 && p->http_minor >= 1 &&
                       (p->content_length > 0 || (p->flags & F_CHUNKED));
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    struct srv_http_msg *m = msg_of(p);

    if (m->body_len + n > m->max_body)
        return refuse(m, 413, "the request body is too large");
    if (m->body_len + n + 1 > m->body_cap) {
        size_t nc = m->body_cap ? m->body_cap : 1024;
        while (nc < m->body_len + n + 1)
            nc *= 2;
        char *nb = realloc(m->body, nc);
        if (!nb)
            return refuse(m, 503, "out of memory");
        m->body = nb;
        m->body_cap = nc;
    }
    memcpy(m->body + m->body_len, at, n);
    m->body_len += n;
    m->body[m->body_len] = '\0';
    return 0;
}

static int on_complete(http_parser *p)
{
    struct srv_http_msg *m = msg_of(p);

    m->complete = true;
    m->keep_alive = http_should_keep_alive(p);
    http_parser_pause(p, 1); /* one request at a time: the rest waits in the caller's buffer */
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_begin,
    .on_url = on_url,
    .on_header_field = on_field,
    .on_header_value = on_value,
    .on_headers_complete = on_headers,
    .on_body = on_body,
    .on_message_complete = on_complete,
};

void srv_http_msg_init(struct srv_http_msg *m, size_t max_header, size_t max_body)
{
    *m = (struct srv_http_msg){ .max_header = max_header, .max_body = max_body };
    http_parser_init(&m->p, HTTP_REQUEST);
    m->p.data = m;
}

void srv_http_msg_done(struct srv_http_msg *m)
{
    free(m->body);
    m->body = NULL;
    m->body_len = m->body_cap = 0;
}

size_t srv_http_msg_feed(struct srv_http_msg *m, const char *buf, size_t len)
{
    size_t n;
    enum http_errno e;

    if (m->complete || m->status)
        return 0;
    n = http_parser_execute(&m->p, &settings, buf, len);
    e = HTTP_PARSER_ERRNO(&m->p);
    if (e == HPE_OK || e == HPE_PAUSED)
        return n;
    if (!m->status) {
        m->status = e == HPE_HEADER_OVERFLOW ? 431 : 400;
        m->error = http_errno_description(e);
    }
    return n;
}

void srv_http_msg_next(struct srv_http_msg *m)
{
    char *body = m->body;
    size_t cap = m->body_cap;
    http_parser p = m->p;

    *m = (struct srv_http_msg){
        .max_header = m->max_header, .max_body = m->max_body, .body = body, .body_cap = cap, .p = p
    };
    if (body)
        body[0] = '\0';
    http_parser_pause(&m->p, 0);
    m->p.data = m;
}
