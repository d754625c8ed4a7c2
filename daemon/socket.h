/* daemon: the listening socket laded creates when systemd passes none. */
#ifndef LADE_DAEMON_SOCKET_H
#define LADE_DAEMON_SOCKET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

/* The socket file laded made, as it was once bound: removed on exit only
 * while the path still names that file (another daemon may have put its
 * own there since). path[0] == 0: none. */
struct srv_socket_file {
    char path[108];
    dev_t dev;
    ino_t ino;
    struct timespec ctime; /* inode numbers are reused: ext4 at once */
};

/* Check path before a long model load: fails as srv_socket_listen() would
 * on a live daemon's socket or a file that is not a socket; removes a
 * stale socket. 0, or negative errno with a one-line reason in reterr. */
int srv_socket_check(const char *path, char *reterr, size_t errlen);

/* Create, bind and listen on a Unix stream socket at path with mode and
 * group (gid (gid_t)-1: leave it). An existing file there is replaced only
 * when it is a socket no one listens on (connect() refused): a live
 * daemon's socket gives -EADDRINUSE, anything not a socket -EEXIST.
 * The file is born with its mode (umask around bind) and gets its group
 * through an O_PATH descriptor of what bind made, never through the path:
 * a symlink or another file swapped in by someone who can write the
 * directory is refused (-EEXIST), not followed. Returns a non-blocking
 * close-on-exec fd and fills *ret_file, or negative errno with a one-line
 * reason in reterr. */
int srv_socket_listen(const char *path, mode_t mode, gid_t gid, struct srv_socket_file *ret_file,
                      char *reterr, size_t errlen);

/* Unlink f->path if it still names the file that was bound (device, inode,
 * change time); another daemon's socket there is left alone (logged). */
void srv_socket_remove(const struct srv_socket_file *f);

/* Parse "HOST:PORT" (numeric: 127.0.0.1:8080, [::1]:8080) into *ret (may
 * be NULL: only check). A non-loopback address is refused unless
 * allow_remote. 0, or -EINVAL with a one-line reason in reterr. */
int srv_socket_tcp_addr(const char *addr, bool allow_remote, struct sockaddr_storage *ret,
                        char *reterr, size_t errlen);
/* Listen on a TCP address checked as srv_socket_tcp_addr checks it: a
 * non-blocking close-on-exec fd, or negative errno with reterr. */
int srv_socket_listen_tcp(const char *addr, bool allow_remote, char *reterr, size_t errlen);

#endif
