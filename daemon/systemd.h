/* daemon: all of laded's systemd glue (socket activation, sd_notify,
 * watchdog). Without libsystemd the stubs below make every call a no-op and
 * socket activation unavailable. */
#ifndef LADE_DAEMON_SYSTEMD_H
#define LADE_DAEMON_SYSTEMD_H

#include <stdbool.h>
#include <stdint.h>

#if LADE_HAVE_SYSTEMD
/* 1 and *ret_fd (non-blocking, close-on-exec) when systemd passed exactly
 * one listening Unix stream socket, 0 when none was passed, negative errno
 * when what was passed is unusable. Unsets LISTEN_* either way. */
int srv_sd_listen_fd(int *ret_fd);
void srv_sd_ready(const char *model, const char *device);
void srv_sd_status(const char *status);
void srv_sd_stopping(void);
void srv_sd_reloading(void);
/* Watchdog interval in µs, 0 when the watchdog is off. */
uint64_t srv_sd_watchdog_usec(void);
void srv_sd_watchdog_ping(void);
#else
static inline int srv_sd_listen_fd(int *ret_fd)
{
    return 0;
}
static inline void srv_sd_ready(const char *model, const char *device)
{
}
static inline void srv_sd_status(const char *status)
{
}
static inline void srv_sd_stopping(void)
{
}
static inline void srv_sd_reloading(void)
{
}
static inline uint64_t srv_sd_watchdog_usec(void)
{
    return 0;
}
static inline void srv_sd_watchdog_ping(void)
{
}
#endif

#endif
