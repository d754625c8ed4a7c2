/* UTF-8 well-formedness (llama/utf8.h). */
#include "llama/utf8.h"

size_t llm_utf8_prefix(const uint8_t *s, size_t n, size_t *ret_need)
{
    uint8_t c = s[0], lo = 0x80, hi = 0xBF;
    size_t need, i;
    if (c < 0x80)
        need = 1;
    else if (c >= 0xC2 && c <= 0xDF)
        need = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        need = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        need = 4;
    else
        need = 0;
    /* The second byte's range is narrower after these four leads. */
    if (c == 0xE0)
        lo = 0xA0;
    else if (c == 0xED)
        hi = 0x9F;
    else if (c == 0xF0)
        lo = 0x90;
    else if (c == 0xF4)
        hi = 0x8F;
    *ret_need = need;
    if (need == 0)
        return 0;
    for (i = 1; i < need && i < n; i++) {
        if (s[i] < lo || s[i] > hi)
            break;
        lo = 0x80;
        hi = 0xBF;
    }
    return i;
}

size_t llm_utf8_char_len(const uint8_t *s, size_t n)
{
    size_t need;
    return llm_utf8_prefix(s, n, &need) == need ? need : 0;
}

bool llm_utf8_valid(const char *s, size_t n)
{
    const uint8_t *p = (const uint8_t *)s;
    while (n > 0) {
        size_t l = llm_utf8_char_len(p, n);
        if (l == 0)
            return false;
        p += l;
        n -= l;
    }
    return true;
}
