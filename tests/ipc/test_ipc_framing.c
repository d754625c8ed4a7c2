/* ipc/linebuf.c and ipc/utf8.c: framing of the byte stream, UTF-8 rules. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "ipc/ipc.h"

static void feed(struct ipc_linebuf *lb, const char *s)
{
    size_t n = strlen(s);

    while (n > 0) {
        size_t avail;
        char *p = ipc_linebuf_space(lb, &avail);
        assert_non_null(p);
        assert_true(avail > 0);
        size_t k = n < avail ? n : avail;
        memcpy(p, s, k);
        ipc_linebuf_commit(lb, k);
        s += k;
        n -= k;
    }
}

static void expect_line(struct ipc_linebuf *lb, const char *want)
{
    const char *line;
    size_t len;

    assert_int_equal(ipc_linebuf_next(lb, &line, &len), 1);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(line, want, len);
}

static void test_lines(void **state)
{
    struct ipc_linebuf lb;
    const char *line;
    size_t len;

    assert_int_equal(ipc_linebuf_init(&lb, 16), 0);
    feed(&lb, "ab\ncd");
    expect_line(&lb, "ab");
    assert_int_equal(ipc_linebuf_next(&lb, &line, &len), 0);
    feed(&lb, "e\n\nfg\n");
    expect_line(&lb, "cde");
    expect_line(&lb, "");
    expect_line(&lb, "fg");
    assert_int_equal(ipc_linebuf_next(&lb, &line, &len), 0);
    ipc_linebuf_done(&lb);
}

/* An overlong line is reported once and skipped up to its newline; the
 * stream goes on. */
static void test_overlong(void **state)
{
    struct ipc_linebuf lb;
    const char *line;
    size_t len, avail;

    assert_int_equal(ipc_linebuf_init(&lb, 8), 0);
    for (int i = 0; i < 5; i++) {
        char *p = ipc_linebuf_space(&lb, &avail);
        assert_true(avail > 0);
        memset(p, 'x', avail);
        ipc_linebuf_commit(&lb, avail);
        int k = ipc_linebuf_next(&lb, &line, &len);
        assert_int_equal(k, i == 0 ? -E2BIG : 0);
    }
    feed(&lb, "xxx\nok\n"); /* the rest of the too-long line is dropped, the next line kept */
    expect_line(&lb, "ok");
    feed(&lb, "012345678"); /* one past max, then its newline */
    assert_int_equal(ipc_linebuf_next(&lb, &line, &len), -E2BIG);
    feed(&lb, "\nfine\n");
    expect_line(&lb, "fine");
    feed(&lb, "12345678\n"); /* exactly max is fine */
    expect_line(&lb, "12345678");
    ipc_linebuf_done(&lb);
}

static void test_utf8(void **state)
{
    assert_true(ipc_utf8_is_valid("", 0));
    assert_true(ipc_utf8_is_valid("h\xc3\xa9 \xe2\x80\x94 \xf0\x9f\xa6\x8a", 12));
    assert_false(ipc_utf8_is_valid("\xc0\xaf", 2)); /* overlong */
    assert_false(ipc_utf8_is_valid("\xe0\x80\xaf", 3)); /* overlong */
    assert_false(ipc_utf8_is_valid("\xed\xa0\x80", 3)); /* surrogate */
    assert_false(ipc_utf8_is_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    assert_false(ipc_utf8_is_valid("\xc3", 1)); /* truncated */
    assert_false(ipc_utf8_is_valid("\x80", 1));
    assert_false(ipc_utf8_is_valid("\xff", 1));
}

static void test_utf8_complete_and_sanitize(void **state)
{
    char out[64];

    assert_int_equal(ipc_utf8_complete_len("ab\xe2\x80", 4), 2);
    assert_int_equal(ipc_utf8_complete_len("ab\xe2\x80\x94", 5), 5);
    assert_int_equal(ipc_utf8_complete_len("ab\xf0", 3), 2);
    assert_int_equal(ipc_utf8_complete_len("ab\xff", 3), 3); /* invalid, not incomplete */
    assert_int_equal(ipc_utf8_sanitize("a\xffz", 3, out, sizeof(out)), 5);
    assert_string_equal(out, "a\xef\xbf\xbdz");
    assert_int_equal(ipc_utf8_sanitize("ok", 2, out, sizeof(out)), 2);
    assert_string_equal(out, "ok");
    assert_int_equal(ipc_utf8_sanitize("\xc3", 1, out, sizeof(out)), 3);
    assert_int_equal(ipc_utf8_sanitize("abcdef", 6, out, 4), 3); /* truncates, terminated */
    assert_string_equal(out, "abc");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines),
        cmocka_unit_test(test_overlong),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_utf8_complete_and_sanitize),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
