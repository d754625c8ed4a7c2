/* daemon: systemd integration through libsystemd. */
#include "daemon/systemd.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <sys/socket.h>

#include <systemd/sd-daemon.h>

#include "daemon/log.h"

int srv_sd_listen_fd(int *ret_fd)
{
    int n = sd_listen_fds(1), fd = SD_LISTEN_FDS_START, fl;

    if (n < 0)
        return srv_log_errno(SRV_LOG_ERR, n, "Failed to read the sockets passed by systemd");
    if (n == 0)
        return 0;
    if (n > 1) {
        srv_log(SRV_LOG_ERR, "systemd passed %d sockets, laded takes exactly one", n);
        return -EINVAL;
    }
    if (sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0) <= 0) {
        srv_log(SRV_LOG_ERR, "The socket systemd passed is not a listening Unix stream socket");
        return -EINVAL;
    }
    fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
        return srv_log_errno(SRV_LOG_ERR, errno, "Failed to set up the socket systemd passed");
    *ret_fd = fd;
    return 1;
}

void srv_sd_ready(const char *model, const char *device)
{
    sd_notifyf(0, "READY=1\nSTATUS=Serving %s on %s", model, device);
}

void srv_sd_status(const char *status)
{
    sd_notifyf(0, "STATUS=%s", status);
}

void srv_sd_stopping(void)
{
    sd_notify(0, "STOPPING=1\nSTATUS=Draining");
}

void srv_sd_reloading(void)
{
    sd_notify(0, "RELOADING=1");
}

uint64_t srv_sd_watchdog_usec(void)
{
    uint64_t usec = 0;

    return sd_watchdog_enabled(0, &usec) > 0 ? usec : 0;
}

void srv_sd_watchdog_ping(void)
{
    sd_notify(0, "WATCHDOG=1");
}
