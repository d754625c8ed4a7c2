/* daemon: connection handling used by server.c's event loop. */
#ifndef LADE_DAEMON_LOOP_H
#define LADE_DAEMON_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "daemon/server.h"

/* Accept what waits on listen_fd (tcp: the HTTP listener). */
void srv_accept(struct srv *s, int listen_fd, bool tcp);
/* Out of fds earlier: put the listeners back once a connection closed or
 * the retry time came. */
void srv_accept_resume(struct srv *s, uint64_t now);
/* The timeouts of every connection (send; NDJSON's read and idle: HTTP's
 * are http.c's). */
void srv_conn_sweep(struct srv *s, uint64_t now);
void srv_conn_read(struct srv *s, struct srv_conn *c);
/* read() from c into buf: how many bytes; 0 when none are there yet, the
 * peer half-closed (read_closed) or the connection failed (dead). */
size_t srv_conn_recv(struct srv *s, struct srv_conn *c, char *buf, size_t cap);
void srv_conn_write(struct srv *s, struct srv_conn *c);
struct srv_conn *srv_conn_find(struct srv *s, uint64_t id);
/* Close connections marked dead (or done after a half-close); all: every one. */
void srv_conn_reap(struct srv *s, bool all);
/* Drain the outbox into the connections. */
void srv_deliver(struct srv *s);

#endif
