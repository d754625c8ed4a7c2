/* daemon/queue.c: bounded, FIFO per connection, round-robin across them. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "daemon/queue.h"

static int items[64];

static void test_bound(void **state)
{
    struct srv_queue q;

    assert_int_equal(srv_queue_init(&q, 8, 3), 0);
    assert_int_equal(srv_queue_push(&q, 1, &items[0]), 0);
    assert_int_equal(srv_queue_push(&q, 1, &items[1]), 0);
    assert_int_equal(srv_queue_push(&q, 2, &items[2]), 0);
    assert_int_equal(srv_queue_push(&q, 2, &items[3]), -EAGAIN);
    srv_queue_set_limit(&q, 4); /* SIGHUP raised it */
    assert_int_equal(srv_queue_push(&q, 2, &items[3]), 0);
    srv_queue_set_limit(&q, 100); /* never past the allocation */
    assert_int_equal(q.limit, 8);
    srv_queue_done(&q);
}

/* Connection 1 queues five requests before 2 and 3 queue one each: 2 and 3
 * are served after at most one request of 1. */
static void test_round_robin(void **state)
{
    struct srv_queue q;
    int *want[] = { &items[0], &items[5], &items[6], &items[1],
                    &items[7], &items[2], &items[3], &items[4] };

    assert_int_equal(srv_queue_init(&q, 16, 16), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(srv_queue_push(&q, 1, &items[i]), 0);
    assert_int_equal(srv_queue_push(&q, 2, &items[5]), 0);
    assert_int_equal(srv_queue_push(&q, 3, &items[6]), 0);
    assert_ptr_equal(srv_queue_pop(&q), want[0]);
    assert_ptr_equal(srv_queue_pop(&q), want[1]);
    assert_int_equal(srv_queue_push(&q, 2, &items[7]), 0); /* 2 again, behind 3 and 1 */
    for (int i = 2; i < 8; i++)
        assert_ptr_equal(srv_queue_pop(&q), want[i]);
    assert_null(srv_queue_pop(&q));
    srv_queue_done(&q);
}

static void test_remove(void **state)
{
    struct srv_queue q;

    assert_int_equal(srv_queue_init(&q, 8, 8), 0);
    srv_queue_push(&q, 1, &items[0]);
    srv_queue_push(&q, 2, &items[1]);
    srv_queue_push(&q, 1, &items[2]);
    assert_true(srv_queue_remove(&q, &items[1]));
    assert_false(srv_queue_remove(&q, &items[1]));
    assert_ptr_equal(srv_queue_take_conn(&q, 1), &items[0]);
    assert_ptr_equal(srv_queue_take_conn(&q, 1), &items[2]);
    assert_null(srv_queue_take_conn(&q, 1));
    assert_int_equal(q.len, 0);
    srv_queue_done(&q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bound),
        cmocka_unit_test(test_round_robin),
        cmocka_unit_test(test_remove),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
