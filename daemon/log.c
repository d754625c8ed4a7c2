/* daemon: journald-friendly stderr logging. */
#include "daemon/log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_int log_level = SRV_LOG_INFO;

void srv_log_set_level(int level)
{
    atomic_store(&log_level, level < 0 ? 0 : level > 7 ? 7 : level);
}

int srv_log_get_level(void)
{
    return atomic_load(&log_level);
}

int srv_log_level_parse(const char *s)
{
    static const char *const names[] = { "emerg",   "alert",  "crit", "err",
                                         "warning", "notice", "info", "debug" };

    if (s[0] >= '0' && s[0] <= '7' && s[1] == '\0')
        return s[0] - '0';
    for (int i = 0; i < 8; i++)
        if (!strcmp(s, names[i]))
            return i;
    return -22; /* -EINVAL */
}

/* One write per line so lines of two threads never interleave. */
static void log_line(int prio, const char *suffix, const char *fmt, va_list ap)
{
    char buf[1024];
    int n = snprintf(buf, sizeof(buf), "<%d>", prio);

    n += vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
    if (n > (int)sizeof(buf) - 2)
        n = (int)sizeof(buf) - 2;
    if (suffix)
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, ": %s", suffix);
    if (n > (int)sizeof(buf) - 2)
        n = (int)sizeof(buf) - 2;
    for (int i = 3; i < n; i++) /* user strings stay on one line */
        if (buf[i] == '\n')
            buf[i] = ' ';
    buf[n++] = '\n';
    fwrite(buf, 1, (size_t)n, stderr);
}

void srv_log(int prio, const char *fmt, ...)
{
    va_list ap;

    if (prio > atomic_load(&log_level))
        return;
    va_start(ap, fmt);
    log_line(prio, NULL, fmt, ap);
    va_end(ap);
}

int srv_log_errno(int prio, int err, const char *fmt, ...)
{
    va_list ap;
    char ebuf[128];

    err = err < 0 ? -err : err;
    if (prio <= atomic_load(&log_level)) {
        va_start(ap, fmt);
        log_line(prio, strerror_r(err, ebuf, sizeof(ebuf)), fmt, ap);
        va_end(ap);
    }
    return -err;
}
