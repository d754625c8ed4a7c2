/* Stop strings over the byte stream of the generated text. Only bytes that
 * may still begin a stop string are kept (fewer than the longest stop
 * string), so tokens of any length stream through a fixed buffer. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "decoding/dec-internal.h"

int dec_stop_init(struct dec_stop *st, uint32_t max_stop_len)
{
    memset(st, 0, sizeof(*st));
    st->cap = (size_t)max_stop_len + DEC_STOP_CHUNK;
    st->buf = malloc(st->cap);
    return st->buf ? 0 : -ENOMEM;
}

void dec_stop_done(struct dec_stop *st)
{
    if (!st)
        return;
    free(st->buf);
    memset(st, 0, sizeof(*st));
}

void dec_stop_reset(struct dec_stop *st, const char *const *str, uint32_t n)
{
    st->str = str;
    st->n = n;
    st->max_len = 0;
    for (uint32_t i = 0; i < n; i++) {
        size_t l = strlen(str[i]);
        if (l > st->max_len)
            st->max_len = l;
    }
    st->len = 0;
    st->base = 0;
    st->total = 0;
}

static bool is_prefix_of_any(const struct dec_stop *st, const char *b, size_t n)
{
    for (uint32_t i = 0; i < st->n; i++)
        if (strlen(st->str[i]) > n && !memcmp(st->str[i], b, n))
            return true;
    return false;
}

/* Earliest complete match in the buffer, or SIZE_MAX. */
static size_t find_match(const struct dec_stop *st)
{
    size_t best = SIZE_MAX;
    for (uint32_t i = 0; i < st->n; i++) {
        const char *hit = memmem(st->buf, st->len, st->str[i], strlen(st->str[i]));
        if (hit && (size_t)(hit - st->buf) < best)
            best = (size_t)(hit - st->buf);
    }
    return best;
}

/* Drop the bytes that can no longer begin a stop string. */
static void trim(struct dec_stop *st)
{
    size_t from = st->len >= st->max_len ? st->len - st->max_len + 1 : 0;
    size_t keep = st->len;
    for (size_t p = from; p < st->len; p++) {
        if (is_prefix_of_any(st, st->buf + p, st->len - p)) {
            keep = p;
            break;
        }
    }
    memmove(st->buf, st->buf + keep, st->len - keep);
    st->len -= keep;
    st->base += keep;
}

bool dec_stop_feed(struct dec_stop *st, const char *bytes, size_t n, uint64_t *ret_at)
{
    if (!st->n) {
        st->total += n;
        return false;
    }
    while (n) {
        size_t c = n < DEC_STOP_CHUNK ? n : DEC_STOP_CHUNK;
        memcpy(st->buf + st->len, bytes, c);
        st->len += c;
        st->total += c;
        bytes += c;
        n -= c;
        size_t at = find_match(st);
        if (at != SIZE_MAX) {
            *ret_at = st->base + at;
            return true;
        }
        trim(st);
    }
    return false;
}
