/* daemon: socket creation with safe handling of stale socket files, and
 * removal of only the file this daemon made. */
#include "daemon/socket.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/log.h"
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

int srv_socket_check(const char *path, char *reterr, size_t errlen)
{
    struct sockaddr_un sa;
    int r = fill_addr(path, &sa);

    if (r < 0) {
        snprintf(reterr, errlen, "socket path '%s' is empty or longer than %zu bytes", path,
                 sizeof(sa.sun_path) - 1);
        return r;
    }
    return clear_path(&sa, reterr, errlen);
}

static bool same_file(const struct stat *st, const struct srv_socket_file *f)
{
    return st->st_dev == f->dev && st->st_ino == f->ino && st->st_ctim.tv_sec == f->ctime.tv_sec &&
           st->st_ctim.tv_nsec == f->ctime.tv_nsec;
}

/* What bind made at path, by a descriptor that does not follow a symlink:
 * it must be a socket of ours (someone who can write the directory may
 * have swapped it since), gets its group through that descriptor, and is
 * remembered for srv_socket_remove(). */
static int claim(const char *path, gid_t gid, struct srv_socket_file *ret, char *reterr,
                 size_t errlen)
{
    srv_cleanup_close int pfd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;

    if (pfd < 0 || fstat(pfd, &st) < 0) {
        snprintf(reterr, errlen, "failed to open '%s' after bind: %s", path, strerror(errno));
        return -errno;
    }
    if (!S_ISSOCK(st.st_mode) || st.st_uid != geteuid()) {
        snprintf(reterr, errlen, "'%s' was replaced after bind (by a %s), refusing it", path,
                 S_ISLNK(st.st_mode)  ? "symlink" :
                 S_ISSOCK(st.st_mode) ? "foreign socket" :
                                        "file");
        return -EEXIST;
    }
    *ret = (struct srv_socket_file){ .dev = st.st_dev, .ino = st.st_ino, .ctime = st.st_ctim };
    snprintf(ret->path, sizeof(ret->path), "%s", path);
    if (gid == (gid_t)-1)
        return 0;
    if (fchownat(pfd, "", (uid_t)-1, gid, AT_EMPTY_PATH) < 0 || fstat(pfd, &st) < 0) {
        snprintf(reterr, errlen, "failed to give '%s' its group: %s", path, strerror(errno));
        return -errno;
    }
    ret->ctime = st.st_ctim;
    return 0;
}

int srv_socket_listen(const char *path, mode_t mode, gid_t gid, struct srv_socket_file *ret_file,
                      char *reterr, size_t errlen)
{
    struct sockaddr_un sa;
    struct srv_socket_file file = { 0 };
    srv_cleanup_close int fd = -EBADF;
    mode_t old;
    int r;

    *ret_file = (struct srv_socket_file){ 0 };
    if ((r = srv_socket_check(path, reterr, errlen)) < 0)
        return r;
    fill_addr(path, &sa);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail;
    /* born with its mode: no chmod through the path; nobody can connect
     * before listen(), so the group may follow */
    old = umask(~mode & 0777);
    r = bind(fd, (const struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (r < 0)
        goto fail;
    if ((r = claim(path, gid, &file, reterr, errlen)) < 0) {
        srv_socket_remove(&file);
        return r;
    }
    if (listen(fd, SOMAXCONN) < 0) {
        r = -errno;
        srv_socket_remove(&file);
        snprintf(reterr, errlen, "failed to listen on '%s': %s", path, strerror(-r));
        return r;
    }
    *ret_file = file;
    return srv_take_fd(&fd);
fail:
    r = -errno;
    snprintf(reterr, errlen, "failed to create '%s': %s", path, strerror(-r));
    return r;
}

void srv_socket_remove(const struct srv_socket_file *f)
{
    struct stat st;

    if (!f->path[0])
        return;
    if (lstat(f->path, &st) < 0) {
        if (errno != ENOENT)
            srv_log_errno(SRV_LOG_WARNING, errno, "Failed to look at '%s', leaving it", f->path);
        return;
    }
    if (!same_file(&st, f))
        srv_log(SRV_LOG_NOTICE, "'%s' is no longer the socket this daemon made, leaving it",
                f->path);
    else if (unlink(f->path) < 0 && errno != ENOENT)
        srv_log_errno(SRV_LOG_WARNING, errno, "Failed to remove '%s', ignoring", f->path);
}

static bool is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
}

int srv_socket_tcp_addr(const char *addr, bool allow_remote, struct sockaddr_storage *ret,
                        char *reterr, size_t errlen)
{
    const char *colon = strrchr(addr, ':');
    struct addrinfo hints = { .ai_family = AF_UNSPEC,
                              .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE };
    struct addrinfo *ai = NULL;
    char host[64];
    size_t hl;
    int k;

    if (!colon || colon == addr || !colon[1] || (size_t)(colon - addr) >= sizeof(host)) {
        snprintf(reterr, errlen, "http.listen '%s' is not HOST:PORT", addr);
        return -EINVAL;
    }
    hl = (size_t)(colon - addr);
    if (addr[0] == '[' && addr[hl - 1] == ']')
        snprintf(host, sizeof(host), "%.*s", (int)hl - 2, addr + 1);
    else
        snprintf(host, sizeof(host), "%.*s", (int)hl, addr);
    k = getaddrinfo(host, colon + 1, &hints, &ai);
    if (k != 0) {
        snprintf(reterr, errlen, "http.listen '%s': %s (a numeric address and port)", addr,
                 gai_strerror(k));
        return -EINVAL;
    }
    if (!allow_remote && !is_loopback(ai->ai_addr)) {
        snprintf(reterr, errlen,
                 "http.listen '%s' is not a loopback address: set http.allow_remote = yes", addr);
        freeaddrinfo(ai);
        return -EINVAL;
    }
    if (ret) {
        memset(ret, 0, sizeof(*ret));
        memcpy(ret, ai->ai_addr, ai->ai_addrlen);
    }
    freeaddrinfo(ai);
    return 0;
}

int srv_socket_listen_tcp(const char *addr, bool allow_remote, char *reterr, size_t errlen)
{
    struct sockaddr_storage ss;
    srv_cleanup_close int fd = -EBADF;
    int one = 1, k = srv_socket_tcp_addr(addr, allow_remote, &ss, reterr, errlen);
    socklen_t len;

    if (k < 0)
        return k;
    len = ss.ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, SOMAXCONN) < 0) {
        k = -errno;
        snprintf(reterr, errlen, "http.listen '%s': %s", addr, strerror(-k));
        return k;
    }
    return srv_take_fd(&fd);
}
