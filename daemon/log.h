/* daemon: logging to stderr with the <N> priority prefixes that journald
 * reads (SyslogLevelPrefix=); no timestamps, the journal adds them. */
#ifndef LADE_DAEMON_LOG_H
#define LADE_DAEMON_LOG_H

#include <stdarg.h>

enum {
    SRV_LOG_ERR = 3,
    SRV_LOG_WARNING = 4,
    SRV_LOG_NOTICE = 5,
    SRV_LOG_INFO = 6,
    SRV_LOG_DEBUG = 7,
};

/* Lines with a priority above this are dropped (0..7, default INFO). */
void srv_log_set_level(int level);
int srv_log_get_level(void);
/* Parse "err", "warning", "notice", "info", "debug" or a digit; -EINVAL. */
int srv_log_level_parse(const char *s);

void srv_log(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Log with ": <strerror(err)>" appended; returns -|err| so callers can
 * `return srv_log_errno(...)`. */
int srv_log_errno(int prio, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
