/* Text <-> value for every schema type, and the message helpers. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf/conf-internal.h"

#define KIB 1024ull

void conf_freep(void *p)
{
    free(*(void **)p);
}

void conf_fclosep(FILE **f)
{
    if (*f)
        fclose(*f);
}

void conf_err(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;

    if (!buf || size == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(buf, size, fmt, ap);
    va_end(ap);
}

size_t conf_utf8_len(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        return (s[1] & 0xc0) == 0x80 ? 2 : 0;
    if (s[0] >= 0xe0 && s[0] <= 0xef) {
        unsigned lo = s[0] == 0xe0 ? 0xa0 : 0x80; /* no overlong forms */
        unsigned hi = s[0] == 0xed ? 0x9f : 0xbf; /* no surrogates */
        return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 ? 3 : 0;
    }
    if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        unsigned lo = s[0] == 0xf0 ? 0x90 : 0x80;
        unsigned hi = s[0] == 0xf4 ? 0x8f : 0xbf; /* <= U+10FFFF */
        return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 && (s[3] & 0xc0) == 0x80 ? 4 : 0;
    }
    return 0;
}

/* Appends piece to buf at *o if it fits; returns false when full. */
static bool append(char *buf, size_t size, size_t *o, const char *piece, size_t n)
{
    if (*o + n >= size)
        return false;
    memcpy(buf + *o, piece, n);
    *o += n;
    buf[*o] = '\0';
    return true;
}

void conf_quote(const char *s, char *buf, size_t size)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0, i = 0;

    if (size == 0)
        return;
    buf[0] = '\0';
    while (p[i]) {
        size_t n = conf_utf8_len(p + i);
        char esc[8];
        bool ok;

        if (i >= 60) {
            append(buf, size, &o, "...", 3);
            return;
        }
        if (n == 0 || p[i] < 0x20 || p[i] == 0x7f || p[i] == '\\') {
            snprintf(esc, sizeof(esc), p[i] == '\\' ? "\\\\" : "\\x%02x", p[i]);
            ok = append(buf, size, &o, esc, strlen(esc));
            n = 1;
        } else {
            ok = append(buf, size, &o, (const char *)p + i, n);
        }
        if (!ok)
            return;
        i += n;
    }
}

const char *conf_type_name(enum conf_type t)
{
    switch (t) {
    case CONF_TYPE_STRING: return "string";
    case CONF_TYPE_PATH: return "path";
    case CONF_TYPE_GROUP: return "group";
    case CONF_TYPE_BOOL: return "boolean";
    case CONF_TYPE_UINT: return "integer";
    case CONF_TYPE_SIZE: return "size";
    case CONF_TYPE_MODE: return "octal mode";
    case CONF_TYPE_ENUM: return "enum";
    }
    return "?";
}

static int format_size(uint64_t v, char *buf, size_t size)
{
    static const char *const units[] = { "GiB", "MiB", "KiB" };

    for (int i = 0; i < 3; i++) {
        uint64_t u = KIB << (10 * (2 - i));
        if (v != 0 && v % u == 0)
            return snprintf(buf, size, "%" PRIu64 "%s", v / u, units[i]);
    }
    return snprintf(buf, size, "%" PRIu64, v);
}

int conf_format_range(const struct conf_key *k, char *buf, size_t size)
{
    char lo[32], hi[32];
    size_t o = 0;

    switch (k->type) {
    case CONF_TYPE_STRING: return snprintf(buf, size, "text, at most %" PRIu64 " bytes", k->max);
    case CONF_TYPE_PATH:
        return snprintf(buf, size, "absolute path, at most %" PRIu64 " bytes", k->max);
    case CONF_TYPE_GROUP: return snprintf(buf, size, "group name");
    case CONF_TYPE_BOOL: return snprintf(buf, size, "yes, no");
    case CONF_TYPE_MODE: return snprintf(buf, size, "%04" PRIo64 "..%04" PRIo64, k->min, k->max);
    case CONF_TYPE_SIZE:
        format_size(k->min, lo, sizeof(lo));
        format_size(k->max, hi, sizeof(hi));
        return snprintf(buf, size, "%s..%s", lo, hi);
    case CONF_TYPE_UINT:
        return snprintf(buf, size, "%s%" PRIu64 "..%" PRIu64, k->flags & CONF_F_ZERO ? "0 or " : "",
                        k->min, k->max);
    case CONF_TYPE_ENUM:
        if (size)
            buf[0] = '\0';
        for (const struct conf_enum_value *e = k->values; e->name; e++) {
            int r = snprintf(buf + (o < size ? o : size), o < size ? size - o : 0, "%s%s",
                             e == k->values ? "" : ", ", e->name);
            o += (size_t)r;
        }
        return (int)o;
    }
    return snprintf(buf, size, "?");
}

/* Checks what every string type shares, so that whatever conf_set() accepts
 * also survives conf_dump() and conf_load(): UTF-8, no control characters,
 * no surrounding blanks, no " ;" (an inline comment for inih). */
static int check_text(const struct conf_key *k, const char *text, char *err, size_t err_size)
{
    const unsigned char *p = (const unsigned char *)text;
    size_t len = strlen(text);
    char q[128];

    conf_quote(text, q, sizeof(q));
    if (len == 0) {
        if (k->flags & CONF_F_EMPTY)
            return 0;
        conf_err(err, err_size, "must not be empty");
        return -EINVAL;
    }
    if (len > k->max) {
        conf_err(err, err_size, "'%s' is %zu bytes long, longer than %" PRIu64, q, len, k->max);
        return -EINVAL;
    }
    for (size_t i = 0, n; i < len; i += n) {
        n = conf_utf8_len(p + i);
        if (n == 0) {
            conf_err(err, err_size, "'%s' is not valid UTF-8 (byte %zu)", q, i + 1);
            return -EINVAL;
        }
        if (p[i] < 0x20 || p[i] == 0x7f) {
            conf_err(err, err_size, "'%s' contains a control character", q);
            return -EINVAL;
        }
        if (p[i] == ';' && i > 0 && (p[i - 1] == ' ' || p[i - 1] == '\t')) {
            conf_err(err, err_size, "'%s' contains ' ;', which starts a comment", q);
            return -EINVAL;
        }
    }
    if (p[0] == ' ' || p[len - 1] == ' ') {
        conf_err(err, err_size, "'%s' starts or ends with a blank", q);
        return -EINVAL;
    }
    return 0;
}

static int check_group(const char *s, char *err, size_t err_size)
{
    char q[128];

    for (const char *p = s; *p; p++) {
        bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
                  (p > s && ((*p >= '0' && *p <= '9') || *p == '-' || *p == '.'));
        if (!ok) {
            conf_quote(s, q, sizeof(q));
            conf_err(err, err_size, "'%s' is not a valid group name", q);
            return -EINVAL;
        }
    }
    return 0;
}

static int parse_string(const struct conf_key *k, const char *text, union conf_val *ret, char *err,
                        size_t err_size)
{
    char q[128];
    int r = check_text(k, text, err, err_size);

    if (r < 0)
        return r;
    if (k->type == CONF_TYPE_PATH && text[0] != '\0' && text[0] != '/') {
        conf_quote(text, q, sizeof(q));
        conf_err(err, err_size, "'%s' is not an absolute path", q);
        return -EINVAL;
    }
    if (k->type == CONF_TYPE_GROUP && (r = check_group(text, err, err_size)) < 0)
        return r;
    ret->s = strdup(text);
    return ret->s ? 0 : -ENOMEM;
}

static int parse_bool(const char *text, union conf_val *ret, char *err, size_t err_size)
{
    static const char *const yes[] = { "yes", "true", "on", "1" };
    static const char *const no[] = { "no", "false", "off", "0" };
    char q[128];

    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(text, yes[i]) == 0 || strcasecmp(text, no[i]) == 0) {
            ret->b = strcasecmp(text, yes[i]) == 0;
            return 0;
        }
    }
    conf_quote(text, q, sizeof(q));
    conf_err(err, err_size, "'%s' is not a boolean (yes, no, true, false, on, off, 1, 0)", q);
    return -EINVAL;
}

/* Decimal digits only, so "-1", "+1", " 1" and "0x10" are all rejected. */
static int parse_digits(const char *text, int base, uint64_t *ret)
{
    char *end;

    if (text[0] == '\0' || !strchr(base == 8 ? "01234567" : "0123456789", text[0]))
        return -EINVAL;
    errno = 0;
    unsigned long long v = strtoull(text, &end, base);
    if (errno == ERANGE)
        return -ERANGE;
    *ret = v;
    return end - text;
}

static int parse_size_suffix(const char *s, uint64_t *mult)
{
    static const char *const names[][2] = {
        { "", "" }, { "K", "KiB" }, { "M", "MiB" }, { "G", "GiB" }
    };

    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, names[i][0]) == 0 || strcasecmp(s, names[i][1]) == 0) {
            *mult = 1ull << (10 * i);
            return 0;
        }
    }
    return -EINVAL;
}

static int check_number(const struct conf_key *k, const char *text, int r, uint64_t v, char *err,
                        size_t err_size)
{
    char q[128], range[64];

    conf_quote(text, q, sizeof(q));
    conf_format_range(k, range, sizeof(range));
    if (r == -EINVAL) {
        if (text[0] == '\0')
            conf_err(err, err_size, "empty value, expected %s %s",
                     k->type == CONF_TYPE_ENUM ? "one of" : "a value in", range);
        else if (k->type == CONF_TYPE_MODE)
            conf_err(err, err_size, "'%s' is not an octal mode like 0660", q);
        else if (k->type == CONF_TYPE_SIZE)
            conf_err(err, err_size, "'%s' is not a size (bytes, or with K, M, G)", q);
        else
            conf_err(err, err_size, "'%s' is not a non-negative integer", q);
        return -EINVAL;
    }
    if (r == -ERANGE || (v < k->min && !(v == 0 && (k->flags & CONF_F_ZERO))) || v > k->max) {
        conf_err(err, err_size, "'%s' is out of range %s", q, range);
        return -EINVAL;
    }
    return 0;
}

static int parse_number(const struct conf_key *k, const char *text, union conf_val *ret, char *err,
                        size_t err_size)
{
    uint64_t v = 0, mult = 1;
    int r = parse_digits(text, k->type == CONF_TYPE_MODE ? 8 : 10, &v);

    if (r >= 0) {
        const char *rest = text + r;
        if (k->type == CONF_TYPE_SIZE)
            r = parse_size_suffix(rest, &mult);
        else
            r = *rest ? -EINVAL : 0;
        if (k->type == CONF_TYPE_MODE && strlen(text) > 5)
            r = -ERANGE;
    }
    if (r == 0 && v > UINT64_MAX / mult)
        r = -ERANGE;
    v *= mult;
    if ((r = check_number(k, text, r, v, err, err_size)) < 0)
        return r;
    if (k->type == CONF_TYPE_SIZE)
        ret->u64 = v;
    else
        ret->u32 = (uint32_t)v;
    return 0;
}

static int parse_enum(const struct conf_key *k, const char *text, union conf_val *ret, char *err,
                      size_t err_size)
{
    char q[128], names[128];

    for (const struct conf_enum_value *e = k->values; e->name; e++) {
        if (strcasecmp(text, e->name) == 0) {
            ret->e = e->value;
            return 0;
        }
    }
    conf_quote(text, q, sizeof(q));
    conf_format_range(k, names, sizeof(names));
    conf_err(err, err_size, "'%s' is not one of %s", q, names);
    return -EINVAL;
}

int conf_parse_value(const struct conf_key *k, const char *text, union conf_val *ret, char *err,
                     size_t err_size)
{
    switch (k->type) {
    case CONF_TYPE_STRING:
    case CONF_TYPE_PATH:
    case CONF_TYPE_GROUP: return parse_string(k, text, ret, err, err_size);
    case CONF_TYPE_BOOL: return parse_bool(text, ret, err, err_size);
    case CONF_TYPE_UINT:
    case CONF_TYPE_SIZE:
    case CONF_TYPE_MODE: return parse_number(k, text, ret, err, err_size);
    case CONF_TYPE_ENUM: return parse_enum(k, text, ret, err, err_size);
    }
    conf_err(err, err_size, "unknown type");
    return -EINVAL;
}

static void *field(const struct conf *c, const struct conf_key *k)
{
    return (char *)c + k->offset;
}

void conf_store(struct conf *c, const struct conf_key *k, union conf_val *v)
{
    void *f = field(c, k);

    switch (k->type) {
    case CONF_TYPE_STRING:
    case CONF_TYPE_PATH:
    case CONF_TYPE_GROUP:
        free(*(char **)f);
        *(char **)f = TAKE_PTR(v->s);
        break;
    case CONF_TYPE_BOOL: *(bool *)f = v->b; break;
    case CONF_TYPE_UINT:
    case CONF_TYPE_MODE: *(uint32_t *)f = v->u32; break;
    case CONF_TYPE_SIZE: *(uint64_t *)f = v->u64; break;
    case CONF_TYPE_ENUM: *(int *)f = v->e; break;
    }
}

bool conf_value_equal(const struct conf *a, const struct conf *b, const struct conf_key *k)
{
    const void *fa = field(a, k), *fb = field(b, k);

    switch (k->type) {
    case CONF_TYPE_STRING:
    case CONF_TYPE_PATH:
    case CONF_TYPE_GROUP: {
        const char *sa = *(char *const *)fa, *sb = *(char *const *)fb;
        return strcmp(sa ? sa : "", sb ? sb : "") == 0;
    }
    case CONF_TYPE_BOOL: return *(const bool *)fa == *(const bool *)fb;
    case CONF_TYPE_UINT:
    case CONF_TYPE_MODE: return *(const uint32_t *)fa == *(const uint32_t *)fb;
    case CONF_TYPE_SIZE: return *(const uint64_t *)fa == *(const uint64_t *)fb;
    case CONF_TYPE_ENUM: return *(const int *)fa == *(const int *)fb;
    }
    return false;
}

int conf_format_value(const struct conf *c, const struct conf_key *k, char *buf, size_t size)
{
    const void *f = field(c, k);

    switch (k->type) {
    case CONF_TYPE_STRING:
    case CONF_TYPE_PATH:
    case CONF_TYPE_GROUP: {
        const char *s = *(char *const *)f;
        return snprintf(buf, size, "%s", s ? s : "");
    }
    case CONF_TYPE_BOOL: return snprintf(buf, size, "%s", *(const bool *)f ? "yes" : "no");
    case CONF_TYPE_UINT: return snprintf(buf, size, "%" PRIu32, *(const uint32_t *)f);
    case CONF_TYPE_MODE: return snprintf(buf, size, "%04" PRIo32, *(const uint32_t *)f);
    case CONF_TYPE_SIZE: return format_size(*(const uint64_t *)f, buf, size);
    case CONF_TYPE_ENUM:
        for (const struct conf_enum_value *e = k->values; e->name; e++)
            if (e->value == *(const int *)f)
                return snprintf(buf, size, "%s", e->name);
        return snprintf(buf, size, "%d", *(const int *)f);
    }
    return snprintf(buf, size, "?");
}
