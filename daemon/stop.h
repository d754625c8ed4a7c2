/* daemon: stop strings over streamed text. The scheduler keeps the text it
 * has not sent yet; this decides how much of it is safe to send and where a
 * stop string ends the generation. Pure. */
#ifndef LADE_DAEMON_STOP_H
#define LADE_DAEMON_STOP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Returns the offset of the earliest stop string in text[0..len), or -1.
 * When there is none, *ret_safe is the length of the prefix that no stop
 * string can start in (the rest may be the beginning of one and must be
 * held back until more text comes). */
ssize_t srv_stop_scan(const char *const *stop, uint32_t n_stop, const char *text, size_t len,
                      size_t *ret_safe);

#endif
