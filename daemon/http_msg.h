/* daemon: one HTTP/1.1 request at a time, assembled from bytes as they
 * come. The parsing is http-parser's (Debian libhttp-parser-dev, the parser
 * Node.js used for a decade): a pure callback parser that keeps no buffer
 * and does no I/O, so it runs inside laded's own event loop on the bytes
 * the loop already reads, and a slow client costs one struct, not a thread.
 * It refuses request smuggling (Content-Length with Transfer-Encoding, two
 * Content-Lengths, overflowing lengths) and decodes chunked bodies; this
 * file adds the limits (header bytes, body bytes), the few headers laded
 * reads, and Expect: 100-continue. Pure: no sockets, no logging; the
 * fuzzer drives it (fuzz/fuzz_http.c). */
#ifndef LADE_DAEMON_HTTP_MSG_H
#define LADE_DAEMON_HTTP_MSG_H

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>

#define SRV_HTTP_URL_MAX 2048
#define SRV_HTTP_AUTH_MAX 256

struct srv_http_msg {
    http_parser p;
    size_t max_header; /* bytes of the request line and headers */
    size_t max_body;
    /* the request being read */
    unsigned method; /* enum http_method */
    char url[SRV_HTTP_URL_MAX + 1];
    size_t url_len;
    char *body; /* NUL-terminated, body_len bytes */
    size_t body_len, body_cap;
    size_t header_bytes;
    char field[32]; /* the header whose value comes next, lower case; "" when not one laded reads */
    size_t field_len;
    bool field_long;
    bool value_started;
    char auth[SRV_HTTP_AUTH_MAX + 1]; /* Authorization */
    bool expect_continue; /* Expect: 100-continue */
    bool expect_unknown; /* another expectation: 417 */
    bool started; /* a byte of this request arrived */
    bool headers_done;
    bool complete; /* the whole request is here */
    bool keep_alive; /* the client keeps the connection after the response */
    bool send_continue; /* the caller owes "100 Continue" (set once, the caller clears it) */
    int status; /* refused: the status to answer with, then close */
    const char *error; /* why, one line */
};

void srv_http_msg_init(struct srv_http_msg *m, size_t max_header, size_t max_body);
void srv_http_msg_done(struct srv_http_msg *m);
/* Parse up to len bytes; returns how many were used. Stops after a whole
 * request (m->complete) or a refusal (m->status, the connection is then
 * beyond repair); otherwise it used every byte. */
size_t srv_http_msg_feed(struct srv_http_msg *m, const char *buf, size_t len);
/* Forget the request just handled, ready for the next one. */
void srv_http_msg_next(struct srv_http_msg *m);

#endif
