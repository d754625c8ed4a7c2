/* daemon: HTTP on laded's socket. A connection's first byte tells the
 * protocol: an upper-case letter starts an HTTP request line (GET, POST),
 * anything else is NDJSON. NDJSON's hello waits for that byte, or for
 * SRV_HTTP_SNIFF_NS of silence from a client that waits for it (as sslh
 * tells a server-first protocol from a client-first one).
 *
 * HTTP requests become the same struct ipc_request an NDJSON line gives
 * (ipc/openai.c) and go through srv_handle_request; their events come back
 * through srv_conn_send and are answered as OpenAI's responses, streamed as
 * server-sent events. One request of a connection is at the core at a
 * time; pipelined ones wait, parsed one by one, in order. Event-loop
 * thread only. */
#ifndef LADE_DAEMON_HTTP_H
#define LADE_DAEMON_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/server.h"

#define SRV_HTTP_SNIFF_NS (200u * 1000000u)

/* After the first bytes of c arrived (in c->in): true when they are HTTP
 * and the connection now belongs to http.c; false after sending NDJSON's
 * hello. */
bool srv_http_sniff(struct srv *s, struct srv_conn *c);
/* c (from the TCP listener) speaks HTTP from its first byte; marked dead
 * when out of memory. */
void srv_http_adopt(struct srv *s, struct srv_conn *c);
/* A whole HTTP response refusing a connection (OpenAI error object,
 * Connection: close), malloc'd; NULL on ENOMEM. */
char *srv_http_refusal(int status, const char *message, size_t *ret_len);
/* c->http is readable. */
void srv_http_read(struct srv *s, struct srv_conn *c);
/* Parse and answer what c has buffered, while srv_conn_taking allows (its
 * output drained, its tokenizer job done). */
void srv_http_process(struct srv *s, struct srv_conn *c);
/* An event of c's request (taken over): answered in HTTP. */
void srv_http_event(struct srv *s, struct srv_conn *c, char *line, size_t len);
/* Once per loop iteration: late hellos, slow senders, idle keep-alive
 * connections, pipelined requests whose turn came. */
void srv_http_tick(struct srv *s, uint64_t now_ns);
/* timeout_ms, shortened to the next deadline of srv_http_tick. */
int srv_http_timeout(struct srv *s, uint64_t now_ns, int timeout_ms);
void srv_http_free(struct srv_http *h);

#endif
