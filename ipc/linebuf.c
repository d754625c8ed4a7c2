/* ipc: bounded newline framing of the input stream. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ipc/ipc.h"

#define LINEBUF_INITIAL 4096

int ipc_linebuf_init(struct ipc_linebuf *lb, size_t max)
{
    *lb = (struct ipc_linebuf){ .max = max };
    return max == 0 ? -EINVAL : 0;
}

void ipc_linebuf_done(struct ipc_linebuf *lb)
{
    free(lb->buf);
    *lb = (struct ipc_linebuf){ .max = lb->max };
}

/* Drop the line returned last time. */
static void consume_pending(struct ipc_linebuf *lb)
{
    if (lb->consume == 0)
        return;
    memmove(lb->buf, lb->buf + lb->consume, lb->len - lb->consume);
    lb->len -= lb->consume;
    lb->consume = 0;
    lb->scan = 0;
}

char *ipc_linebuf_space(struct ipc_linebuf *lb, size_t *ret_avail)
{
    size_t want = lb->max + 1; /* a full line and its newline */

    consume_pending(lb);
    if (lb->len == lb->cap && lb->cap < want) {
        size_t ncap = lb->cap ? lb->cap * 2 : LINEBUF_INITIAL;
        if (ncap > want)
            ncap = want;
        char *nb = realloc(lb->buf, ncap);
        if (!nb) {
            *ret_avail = 0;
            return NULL;
        }
        lb->buf = nb;
        lb->cap = ncap;
    }
    *ret_avail = lb->cap - lb->len;
    return lb->buf + lb->len;
}

void ipc_linebuf_commit(struct ipc_linebuf *lb, size_t n)
{
    lb->len += n;
}

int ipc_linebuf_next(struct ipc_linebuf *lb, const char **ret_line, size_t *ret_len)
{
    consume_pending(lb);
    for (;;) {
        char *nl = lb->scan < lb->len ? memchr(lb->buf + lb->scan, '\n', lb->len - lb->scan) : NULL;
        if (!nl) {
            lb->scan = lb->len;
            if (lb->discarding) {
                lb->len = lb->scan = 0;
                return 0;
            }
            if (lb->len > lb->max) { /* overlong: skip to its newline */
                lb->discarding = true;
                lb->len = lb->scan = 0;
                return -E2BIG;
            }
            return 0;
        }
        size_t n = (size_t)(nl - lb->buf);
        lb->consume = n + 1;
        if (lb->discarding) {
            lb->discarding = false;
            consume_pending(lb);
            continue;
        }
        if (n > lb->max) {
            consume_pending(lb);
            return -E2BIG;
        }
        *ret_line = lb->buf;
        *ret_len = n;
        return 1;
    }
}

int ipc_linebuf_rest(struct ipc_linebuf *lb, const char **ret_line, size_t *ret_len)
{
    int k = ipc_linebuf_next(lb, ret_line, ret_len);

    if (k != 0)
        return k;
    if (lb->discarding) {
        lb->discarding = false;
        return -E2BIG;
    }
    if (lb->len == 0)
        return 0;
    lb->consume = lb->len;
    *ret_line = lb->buf;
    *ret_len = lb->len;
    return 1;
}

bool ipc_linebuf_has_data(const struct ipc_linebuf *lb)
{
    return lb->len > lb->consume || lb->discarding;
}
