/* ipc: strict UTF-8 checks for everything that crosses the socket. */
#include <string.h>

#include "ipc/ipc.h"

/* Length of the valid sequence starting at s (1..4), 0 if the bytes there
 * are not valid UTF-8, or -1 if they are a valid but truncated prefix. */
static int seq_len(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    int n;
    unsigned char lo = 0x80, hi = 0xBF;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* past U+10FFFF */
    } else
        return 0;

    for (int i = 1; i < n; i++) {
        if ((size_t)i >= avail)
            return -1;
        unsigned char b = s[i];
        if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF))
            return 0;
    }
    return n;
}

bool ipc_utf8_is_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    while (i < len) {
        int n = seq_len(p + i, len - i);
        if (n <= 0)
            return false;
        i += (size_t)n;
    }
    return true;
}

size_t ipc_utf8_complete_len(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    while (i < len) {
        int n = seq_len(p + i, len - i);
        if (n < 0)
            return i;
        i += n == 0 ? 1 : (size_t)n; /* invalid bytes are complete: sanitize replaces them */
    }
    return len;
}

size_t ipc_utf8_sanitize(const char *s, size_t len, char *dst, size_t cap)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, o = 0;

    if (cap == 0)
        return 0;
    while (i < len) {
        int n = seq_len(p + i, len - i);
        if (n > 0) {
            if (o + (size_t)n >= cap)
                break;
            memcpy(dst + o, s + i, (size_t)n);
            o += (size_t)n;
            i += (size_t)n;
        } else {
            if (o + 3 >= cap)
                break;
            memcpy(dst + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    dst[o] = '\0';
    return o;
}
