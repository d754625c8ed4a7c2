/* daemon: the listening socket laded creates when systemd passes none. */
#ifndef LADE_DAEMON_SOCKET_H
#define LADE_DAEMON_SOCKET_H

#include <stddef.h>
#include <sys/types.h>

/* Create, bind and listen on a Unix stream socket at path with mode and
 * group (gid (gid_t)-1: leave it). An existing file there is replaced only
 * when it is a socket no one listens on (connect() refused): a live
 * daemon's socket gives -EADDRINUSE, anything not a socket -EEXIST.
 * Returns a non-blocking close-on-exec fd, or negative errno with a
 * one-line reason in reterr. */
int srv_socket_listen(const char *path, mode_t mode, gid_t gid, char *reterr, size_t errlen);

#endif
