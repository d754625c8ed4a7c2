/* daemon: small helpers shared by the files of laded. */
#ifndef LADE_DAEMON_UTIL_H
#define LADE_DAEMON_UTIL_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static inline void srv_freep(void *p)
{
    free(*(void **)p);
}

static inline void srv_closep(int *fd)
{
    if (*fd >= 0) {
        int saved = errno;
        close(*fd);
        errno = saved;
    }
}

/* Freed / closed when the variable leaves scope; fds start at -EBADF. */
#define srv_cleanup_free __attribute__((cleanup(srv_freep)))
#define srv_cleanup_close __attribute__((cleanup(srv_closep)))

static inline int srv_take_fd(int *fd)
{
    int v = *fd;
    *fd = -EBADF;
    return v;
}

static inline uint64_t srv_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#endif
