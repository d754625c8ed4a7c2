/* decoding/stop.c: stop strings found across feeds and chunks, at their
 * earliest offset, with only undecided bytes held. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "decoding/dec.h"

static void test_split_across_feeds(void **state)
{
    struct dec_stop st;
    const char *stops[] = { "END", "\n\nUser:" };
    uint64_t at = 0;
    assert_int_equal(dec_stop_init(&st, 16), 0);
    dec_stop_reset(&st, stops, 2);
    assert_false(dec_stop_feed(&st, "hello E", 7, &at));
    /* "E" may begin "END": held. */
    assert_int_equal(dec_stop_safe(&st), 6);
    assert_false(dec_stop_feed(&st, "x\n", 2, &at));
    assert_int_equal(dec_stop_safe(&st), 8);
    assert_false(dec_stop_feed(&st, "\nUs", 3, &at));
    assert_int_equal(dec_stop_safe(&st), 8);
    assert_true(dec_stop_feed(&st, "er: more", 8, &at));
    assert_int_equal(at, 8);
    dec_stop_done(&st);
    dec_stop_done(NULL);
}

static void test_long_piece_and_earliest(void **state)
{
    struct dec_stop st;
    const char *stops[] = { "zz9", "b" };
    char big[300];
    uint64_t at = 0;
    memset(big, 'a', sizeof(big));
    big[250] = 'z';
    big[251] = 'z';
    big[252] = '9';
    big[260] = 'b';
    assert_int_equal(dec_stop_init(&st, 3), 0);
    dec_stop_reset(&st, stops, 2);
    assert_true(dec_stop_feed(&st, big, sizeof(big), &at));
    assert_int_equal(at, 250);
    /* Several matches in one chunk: the earliest wins. */
    dec_stop_reset(&st, stops, 2);
    assert_true(dec_stop_feed(&st, "xxbzz9", 6, &at));
    assert_int_equal(at, 2);
    /* No stop strings: everything is safe at once. */
    dec_stop_reset(&st, NULL, 0);
    assert_false(dec_stop_feed(&st, "zz9", 3, &at));
    assert_int_equal(dec_stop_safe(&st), 3);
    dec_stop_done(&st);
}

/* One stream fed text at once: where a stop string begins, or -1, and
 * how much of text is output for sure. */
static int64_t scan(const char *const *stops, uint32_t n, const char *text, uint64_t *ret_safe)
{
    struct dec_stop st;
    uint64_t at = 0;
    bool hit;
    assert_int_equal(dec_stop_init(&st, 16), 0);
    dec_stop_reset(&st, stops, n);
    hit = dec_stop_feed(&st, text, strlen(text), &at);
    *ret_safe = dec_stop_safe(&st);
    dec_stop_done(&st);
    return hit ? (int64_t)at : -1;
}

/* The cases the daemon's own matcher was held to when it had one. */
static void test_hold_back(void **state)
{
    const char *stops[] = { "END", "\n\n" };
    uint64_t safe;

    assert_int_equal(scan(stops, 2, "hello", &safe), -1);
    assert_int_equal(safe, 5);
    assert_int_equal(scan(stops, 2, "helloEN", &safe), -1);
    assert_int_equal(safe, 5); /* "EN" may become "END" */
    assert_int_equal(scan(stops, 2, "ab\n", &safe), -1);
    assert_int_equal(safe, 2);
    assert_int_equal(scan(stops, 2, "abEND\n\n", &safe), 2);
    assert_int_equal(scan(stops, 2, "a\n\nEND", &safe), 1); /* earliest wins */
    assert_int_equal(scan(stops, 0, "END", &safe), -1);
    assert_int_equal(safe, 3);
    assert_int_equal(scan(stops, 2, "", &safe), -1);
    assert_int_equal(safe, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_across_feeds),
        cmocka_unit_test(test_long_piece_and_earliest),
        cmocka_unit_test(test_hold_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
