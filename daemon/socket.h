/* daemon: the listening socket laded creates when systemd passes none. */
#ifndef LADE_DAEMON_SOCKET_H
#define LADE_DAEMON_SOCKET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

/* Create, bind and listen on a Unix stream socket at path with mode and
 * group (gid (gid_t)-1: leave it). An existing file there is replaced only
 * when it is a socket no one listens on (connect() refused): a live
 * daemon's socket gives -EADDRINUSE, anything not a socket -EEXIST.
 * Returns a non-blocking close-on-exec fd, or negative errno with a
 * one-line reason in reterr. */
int srv_socket_listen(const char *path, mode_t mode, gid_t gid, char *reterr, size_t errlen);

/* Parse "HOST:PORT" (numeric: 127.0.0.1:8080, [::1]:8080) into *ret (may
 * be NULL: only check). A non-loopback address is refused unless
 * allow_remote. 0, or -EINVAL with a one-line reason in reterr. */
int srv_socket_tcp_addr(const char *addr, bool allow_remote, struct sockaddr_storage *ret, char *reterr,
                        size_t errlen);
/* Listen on a TCP address checked as srv_socket_tcp_addr checks it: a
 * non-blocking close-on-exec fd, or negative errno with reterr. */
int srv_socket_listen_tcp(const char *addr, bool allow_remote, char *reterr, size_t errlen);

#endif
