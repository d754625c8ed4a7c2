/* daemon: stop-string matching. Texts here are short: the held-back tail is
 * shorter than the longest stop string, a step adds a few tokens. */
#include <string.h>

#include "daemon/stop.h"

ssize_t srv_stop_scan(const char *const *stop, uint32_t n_stop, const char *text, size_t len,
                      size_t *ret_safe)
{
    ssize_t first = -1;
    size_t safe = len;

    for (uint32_t s = 0; s < n_stop; s++) {
        const char *hit = memmem(text, len, stop[s], strlen(stop[s]));
        if (hit && (first < 0 || hit - text < first))
            first = hit - text;
    }
    if (first >= 0) {
        *ret_safe = (size_t)first;
        return first;
    }
    /* Hold back the longest suffix that is a proper prefix of a stop string. */
    for (uint32_t s = 0; s < n_stop; s++) {
        size_t sl = strlen(stop[s]);
        size_t from = len >= sl ? len - sl + 1 : 0;
        for (size_t i = from; i < len && i < safe; i++) {
            if (!memcmp(text + i, stop[s], len - i)) {
                safe = i;
                break;
            }
        }
    }
    *ret_safe = safe;
    return -1;
}
