/* The n-gram pool: per key an LRU list of at most g tails, as in the
 * reference's update_token_map (a re-added tail becomes newest, a full key
 * drops its oldest). All entries live in one arena allocated up front. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "decoding/dec-internal.h"

int dec_pool_init(struct dec_pool *p, uint32_t n_vocab, uint32_t max_len, uint32_t cap)
{
    memset(p, 0, sizeof(*p));
    if (!n_vocab || !max_len || !cap || cap > INT32_MAX)
        return -EINVAL;
    p->n_vocab = n_vocab;
    p->max_len = max_len;
    p->cap = cap;
    const struct dec_mem_part parts[] = {
        { (void **)&p->head, n_vocab, sizeof(*p->head) },
        { (void **)&p->tail, n_vocab, sizeof(*p->tail) },
        { (void **)&p->count, n_vocab, sizeof(*p->count) },
        { (void **)&p->e, cap, sizeof(*p->e) },
        { (void **)&p->tok, (size_t)cap * max_len, sizeof(*p->tok) },
    };
    if (dec_alloc_parts(parts, sizeof(parts) / sizeof(parts[0]), &p->mem)) {
        dec_pool_done(p);
        return -ENOMEM;
    }
    for (uint32_t k = 0; k < n_vocab; k++)
        p->head[k] = p->tail[k] = -1;
    p->age_head = p->age_tail = -1;
    dec_pool_reset(p, max_len, 1);
    return 0;
}

void dec_pool_done(struct dec_pool *p)
{
    if (!p)
        return;
    free(p->mem);
    memset(p, 0, sizeof(*p));
}

void dec_pool_reset(struct dec_pool *p, uint32_t len, uint32_t g)
{
    /* Only keys in use are cleared: O(entries), not O(n_vocab). */
    for (int32_t i = p->age_head; i >= 0; i = p->e[i].anext) {
        int32_t k = p->e[i].key;
        p->head[k] = p->tail[k] = -1;
        p->count[k] = 0;
    }
    for (uint32_t i = 0; i < p->cap; i++)
        p->e[i].next = (uint32_t)i + 1 < p->cap ? (int32_t)i + 1 : -1;
    p->free_head = 0;
    p->age_head = p->age_tail = -1;
    p->n_entries = 0;
    p->len = len < p->max_len ? len : p->max_len;
    p->g = g;
}

static void key_unlink(struct dec_pool *p, int32_t i)
{
    struct dec_pool_entry *e = &p->e[i];
    if (e->prev >= 0)
        p->e[e->prev].next = e->next;
    else
        p->head[e->key] = e->next;
    if (e->next >= 0)
        p->e[e->next].prev = e->prev;
    else
        p->tail[e->key] = e->prev;
    p->count[e->key]--;
}

static void key_append(struct dec_pool *p, int32_t i)
{
    struct dec_pool_entry *e = &p->e[i];
    e->prev = p->tail[e->key];
    e->next = -1;
    if (e->prev >= 0)
        p->e[e->prev].next = i;
    else
        p->head[e->key] = i;
    p->tail[e->key] = i;
    p->count[e->key]++;
}

static void age_unlink(struct dec_pool *p, int32_t i)
{
    struct dec_pool_entry *e = &p->e[i];
    if (e->aprev >= 0)
        p->e[e->aprev].anext = e->anext;
    else
        p->age_head = e->anext;
    if (e->anext >= 0)
        p->e[e->anext].aprev = e->aprev;
    else
        p->age_tail = e->aprev;
}

static void age_append(struct dec_pool *p, int32_t i)
{
    struct dec_pool_entry *e = &p->e[i];
    e->aprev = p->age_tail;
    e->anext = -1;
    if (e->aprev >= 0)
        p->e[e->aprev].anext = i;
    else
        p->age_head = i;
    p->age_tail = i;
}

static void entry_drop(struct dec_pool *p, int32_t i)
{
    key_unlink(p, i);
    age_unlink(p, i);
    p->e[i].next = p->free_head;
    p->free_head = i;
    p->n_entries--;
}

void dec_pool_add(struct dec_pool *p, int32_t key, const int32_t *tail)
{
    size_t bytes = sizeof(*tail) * p->len;
    if (key < 0 || (uint32_t)key >= p->n_vocab || !p->g)
        return;
    for (int32_t i = p->head[key]; i >= 0; i = p->e[i].next) {
        if (!memcmp(dec_pool_tokens(p, i), tail, bytes)) {
            key_unlink(p, i);
            key_append(p, i);
            age_unlink(p, i);
            age_append(p, i);
            return;
        }
    }
    if (p->count[key] >= p->g)
        entry_drop(p, p->head[key]);
    if (p->free_head < 0)
        entry_drop(p, p->age_head);
    int32_t i = p->free_head;
    p->free_head = p->e[i].next;
    p->e[i].key = key;
    memcpy(p->tok + (size_t)i * p->max_len, tail, bytes);
    key_append(p, i);
    age_append(p, i);
    p->n_entries++;
}

void dec_pool_add_all(struct dec_pool *p, const int32_t *tokens, uint32_t n)
{
    for (uint32_t i = 0; i + p->len < n; i++)
        dec_pool_add(p, tokens[i], tokens + i + 1);
}
