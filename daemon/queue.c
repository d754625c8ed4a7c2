/* daemon: bounded round-robin queue. O(n) per operation with n bounded by
 * SRV_QUEUE_HARD_MAX, which costs far less than one decoding step. */
#include "daemon/queue.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int srv_queue_init(struct srv_queue *q, uint32_t cap, uint32_t limit)
{
    *q = (struct srv_queue){ 0 };
    if (cap == 0)
        return -EINVAL;
    q->items = calloc(cap, sizeof(*q->items));
    if (!q->items)
        return -ENOMEM;
    q->cap = cap;
    q->limit = limit < cap ? limit : cap;
    return 0;
}

void srv_queue_done(struct srv_queue *q)
{
    free(q->items);
    *q = (struct srv_queue){ 0 };
}

void srv_queue_set_limit(struct srv_queue *q, uint32_t limit)
{
    q->limit = limit < q->cap ? limit : q->cap;
}

int srv_queue_push(struct srv_queue *q, uint64_t conn, void *req)
{
    if (q->len >= q->limit)
        return -EAGAIN;
    q->items[q->len++] = (struct srv_queue_item){ .conn = conn, .req = req };
    return 0;
}

static void *remove_at(struct srv_queue *q, uint32_t i)
{
    void *req = q->items[i].req;

    memmove(&q->items[i], &q->items[i + 1], (q->len - i - 1) * sizeof(*q->items));
    q->len--;
    return req;
}

void *srv_queue_pop(struct srv_queue *q)
{
    uint32_t best = UINT32_MAX, lowest = UINT32_MAX;

    /* First item of the smallest connection id above last_conn; if there is
     * none, wrap to the first item of the smallest id overall. */
    for (uint32_t i = 0; i < q->len; i++) {
        uint64_t c = q->items[i].conn;
        if (c > q->last_conn && (best == UINT32_MAX || c < q->items[best].conn))
            best = i;
        if (lowest == UINT32_MAX || c < q->items[lowest].conn)
            lowest = i;
    }
    if (best == UINT32_MAX)
        best = lowest;
    if (best == UINT32_MAX)
        return NULL;
    q->last_conn = q->items[best].conn;
    return remove_at(q, best);
}

bool srv_queue_remove(struct srv_queue *q, void *req)
{
    for (uint32_t i = 0; i < q->len; i++) {
        if (q->items[i].req == req) {
            remove_at(q, i);
            return true;
        }
    }
    return false;
}

void *srv_queue_take_conn(struct srv_queue *q, uint64_t conn)
{
    for (uint32_t i = 0; i < q->len; i++)
        if (q->items[i].conn == conn)
            return remove_at(q, i);
    return NULL;
}
