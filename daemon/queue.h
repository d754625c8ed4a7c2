/* daemon: the bounded request queue, fair across connections: pop serves
 * connections round-robin (by connection id), each connection FIFO. Pure
 * data structure; the caller locks. */
#ifndef LADE_DAEMON_QUEUE_H
#define LADE_DAEMON_QUEUE_H

#include <stdbool.h>
#include <stdint.h>

struct srv_queue_item {
    uint64_t conn;
    void *req;
};

struct srv_queue {
    struct srv_queue_item *items; /* arrival order */
    uint32_t len;
    uint32_t cap; /* allocated, the hard maximum */
    uint32_t limit; /* current bound, <= cap (reloadable) */
    uint64_t last_conn; /* connection served last */
};

int srv_queue_init(struct srv_queue *q, uint32_t cap, uint32_t limit);
void srv_queue_done(struct srv_queue *q);
void srv_queue_set_limit(struct srv_queue *q, uint32_t limit);
/* -EAGAIN when full. */
int srv_queue_push(struct srv_queue *q, uint64_t conn, void *req);
/* The oldest request of the next connection after the last served one, in
 * id order, wrapping; NULL when empty. */
void *srv_queue_pop(struct srv_queue *q);
bool srv_queue_remove(struct srv_queue *q, void *req);
/* Remove the first request of conn (oldest); NULL if none. Loop to drain. */
void *srv_queue_take_conn(struct srv_queue *q, uint64_t conn);

#endif
