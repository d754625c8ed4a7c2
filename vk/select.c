/* Choosing the device lade runs on, from infos already read (so the policy
 * is testable without a GPU). The contract is in vkr.h. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vk/vkr.h"

struct reason {
    char *buf;
    size_t len;
    size_t used;
};

static void say(struct reason *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends, truncating at the buffer's end. */
static void say(struct reason *r, const char *fmt, ...)
{
    va_list ap;
    int k;

    if (!r->buf || r->used + 1 >= r->len)
        return;
    va_start(ap, fmt);
    k = vsnprintf(r->buf + r->used, r->len - r->used, fmt, ap);
    va_end(ap);
    if (k > 0)
        r->used += (size_t)k < r->len - r->used ? (size_t)k : r->len - r->used - 1;
}

static int type_rank(VkPhysicalDeviceType t)
{
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return 4;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return 3;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return 2;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return 1;
    default: return 0;
    }
}

static bool is_usable(const struct vkr_device_info *d)
{
    return d->compute_queue_family != UINT32_MAX;
}

static bool ranks_above(const struct vkr_device_info *a, const struct vkr_device_info *b)
{
    if (type_rank(a->type) != type_rank(b->type))
        return type_rank(a->type) > type_rank(b->type);
    if (a->device_local_bytes != b->device_local_bytes)
        return a->device_local_bytes > b->device_local_bytes;
    return a->index < b->index;
}

static bool name_contains(const char *name, const char *want)
{
    size_t n = strlen(want);

    for (; *name; name++) {
        size_t i = 0;

        while (i < n && name[i] &&
               tolower((unsigned char)name[i]) == tolower((unsigned char)want[i]))
            i++;
        if (i == n)
            return true;
    }
    return n == 0;
}

/* Best usable device among those whose name contains `filter` (all when
 * NULL); counts the candidates and how many of them were usable. */
static int best_of(const struct vkr_device_info *list, uint32_t n, const char *filter,
                   uint32_t *ret_matches, uint32_t *ret_usable)
{
    int best = -1;

    *ret_matches = *ret_usable = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (filter && !name_contains(list[i].name, filter))
            continue;
        (*ret_matches)++;
        if (!is_usable(&list[i]))
            continue;
        (*ret_usable)++;
        if (best < 0 || ranks_above(&list[i], &list[best]))
            best = (int)i;
    }
    return best;
}

static void say_chosen(struct reason *r, const struct vkr_device_info *d)
{
    uint64_t b = d->device_local_bytes;

    say(r, "chose %u '%s' (%s, ", d->index, d->name, vkr_device_type_name(d->type));
    if (b >= (1ull << 30))
        say(r, "%.1f GiB): ", (double)b / (1ull << 30));
    else
        say(r, "%.1f MiB): ", (double)b / (1ull << 20));
}

static int select_auto(const struct vkr_device_info *list, uint32_t n, struct reason *r)
{
    uint32_t matches, usable;
    int best = best_of(list, n, NULL, &matches, &usable);

    if (best < 0) {
        say(r, "none of the %u Vulkan devices has a compute queue", n);
        return -ENODEV;
    }
    say_chosen(r, &list[best]);
    if (n == 1)
        say(r, "the only device");
    else
        say(r, "highest ranked of %u", usable);
    if (usable < n)
        say(r, " (%u without a compute queue)", n - usable);
    return best;
}

/* All digits, fits in uint32_t. A too-large number is a valid index that
 * matches nothing, so it reports UINT32_MAX rather than an error. */
static int parse_index(const char *s, uint32_t *ret)
{
    uint64_t v = 0;

    if (!*s)
        return -EINVAL;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -EINVAL;
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > UINT32_MAX)
            v = UINT32_MAX;
    }
    *ret = (uint32_t)v;
    return 0;
}

static int select_index(const struct vkr_device_info *list, uint32_t n, const char *want,
                        struct reason *r)
{
    uint32_t idx;

    if (parse_index(want, &idx) < 0) {
        say(r, "'%s' is not a device index (whole decimal number) or name", want);
        return -EINVAL;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (list[i].index != idx)
            continue;
        if (!is_usable(&list[i])) {
            say(r, "device %u '%s' has no compute queue", idx, list[i].name);
            return -ENODEV;
        }
        say_chosen(r, &list[i]);
        say(r, "asked for device %u", idx);
        return (int)i;
    }
    say(r, "no device %s among the %u Vulkan devices", want, n);
    return -ENOENT;
}

static int select_name(const struct vkr_device_info *list, uint32_t n, const char *want,
                       struct reason *r)
{
    uint32_t matches, usable;
    int best = best_of(list, n, want, &matches, &usable);

    if (matches == 0) {
        say(r, "no device name contains '%s'; devices:", want);
        for (uint32_t i = 0; i < n; i++)
            say(r, "%s %u '%s'", i ? "," : "", list[i].index, list[i].name);
        return -ENOENT;
    }
    if (best < 0) {
        say(r, "'%s' matches %u device%s, none with a compute queue", want, matches,
            matches == 1 ? "" : "s");
        return -ENODEV;
    }
    say_chosen(r, &list[best]);
    if (matches == 1)
        say(r, "name matches '%s'", want);
    else
        say(r, "highest ranked of %u devices whose name matches '%s'", matches, want);
    return best;
}

int vkr_select_device(const struct vkr_device_info *list, uint32_t n, const char *want,
                      char *reason, size_t reason_len)
{
    struct reason r = { .buf = reason_len ? reason : NULL, .len = reason_len };

    if (r.buf)
        r.buf[0] = '\0';
    if (n == 0 || !list) {
        say(&r, "no Vulkan device found");
        return -ENODEV;
    }
    if (n > INT32_MAX) {
        say(&r, "too many devices (%u)", n);
        return -EINVAL;
    }
    if (!want || !*want)
        return select_auto(list, n, &r);
    if (isdigit((unsigned char)want[0]) || want[0] == '-' || want[0] == '+')
        return select_index(list, n, want, &r);
    return select_name(list, n, want, &r);
}
