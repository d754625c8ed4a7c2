/* daemon: socket creation with safe handling of stale socket files. */
#include "daemon/socket.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/util.h"

static int fill_addr(const char *path, struct sockaddr_un *sa)
{
    size_t n = strlen(path);

    if (n == 0 || n >= sizeof(sa->sun_path))
        return -ENAMETOOLONG;
    *sa = (struct sockaddr_un){ .sun_family = AF_UNIX };
    memcpy(sa->sun_path, path, n + 1);
    return 0;
}

/* 1: someone listens at sa; 0: no one does (stale); negative: can't tell. */
static int is_live(const struct sockaddr_un *sa)
{
    srv_cleanup_close int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -errno;
    if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0)
        return 1;
    if (errno == ECONNREFUSED)
        return 0;
    return errno == EAGAIN ? 1 : -errno; /* EAGAIN: alive, its backlog full */
}

/* Remove a stale socket file at path; refuse anything else. */
static int clear_path(const struct sockaddr_un *sa, char *reterr, size_t errlen)
{
    struct stat st;
    int live;

    if (lstat(sa->sun_path, &st) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(reterr, errlen, "'%s' exists and is not a socket, refusing to replace it",
                 sa->sun_path);
        return -EEXIST;
    }
    live = is_live(sa);
    if (live > 0) {
        snprintf(reterr, errlen, "another daemon is listening on '%s'", sa->sun_path);
        return -EADDRINUSE;
    }
    if (live < 0) {
        snprintf(reterr, errlen, "cannot tell whether '%s' is in use: %s", sa->sun_path,
                 strerror(-live));
        return live;
    }
    if (unlink(sa->sun_path) < 0 && errno != ENOENT) {
        snprintf(reterr, errlen, "failed to remove the stale socket '%s': %s", sa->sun_path,
                 strerror(errno));
        return -errno;
    }
    return 0;
}

int srv_socket_listen(const char *path, mode_t mode, gid_t gid, char *reterr, size_t errlen)
{
    struct sockaddr_un sa;
    srv_cleanup_close int fd = -EBADF;
    mode_t old;
    int r;

    if ((r = fill_addr(path, &sa)) < 0) {
        snprintf(reterr, errlen, "socket path '%s' is empty or longer than %zu bytes", path,
                 sizeof(sa.sun_path) - 1);
        return r;
    }
    if ((r = clear_path(&sa, reterr, errlen)) < 0)
        return r;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail;
    old = umask(0177); /* born 0600; widened below once the group is right */
    r = bind(fd, (const struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (r < 0)
        goto fail;
    if ((gid != (gid_t)-1 && chown(path, (uid_t)-1, gid) < 0) || chmod(path, mode) < 0 ||
        listen(fd, SOMAXCONN) < 0) {
        r = -errno;
        unlink(path);
        snprintf(reterr, errlen, "failed to set up '%s': %s", path, strerror(-r));
        return r;
    }
    return srv_take_fd(&fd);
fail:
    r = -errno;
    snprintf(reterr, errlen, "failed to create '%s': %s", path, strerror(-r));
    return r;
}
