/* ipc/event.c: every event is one compact JSON line of the documented shape. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ipc/ipc.h"

static char *tmp; /* the line just encoded */

static json_t *load_line(char *line, size_t len)
{
    assert_non_null(line);
    assert_int_equal(strlen(line), len);
    assert_int_equal(line[len - 1], '\n');
    assert_null(memchr(line, '\n', len - 1));
    json_t *o = json_loadb(line, len, 0, NULL);
    assert_non_null(o);
    free(line);
    return o;
}

static void test_hello_error(void **state)
{
    struct ipc_hello h = { .server_version = "1.2.3", .model = "m", .device = NULL };
    struct ipc_id id = { .present = true, .is_int = true, .s = "17" };
    size_t len;
    json_t *o = (tmp = ipc_event_hello(&h, &len), load_line(tmp, len));

    assert_string_equal(json_string_value(json_object_get(o, "event")), "hello");
    assert_int_equal(json_integer_value(json_object_get(o, "v")), IPC_PROTOCOL_VERSION);
    assert_true(json_is_null(json_object_get(o, "device")));
    json_decref(o);
    o = (tmp = ipc_event_error(&id, IPC_ERR_BUSY, "full", &len), load_line(tmp, len));
    assert_int_equal(json_integer_value(json_object_get(o, "id")), 17);
    assert_string_equal(json_string_value(json_object_get(o, "code")), "busy");
    json_decref(o);
    o = (tmp = ipc_event_error(NULL, IPC_ERR_BAD_JSON, "x", &len), load_line(tmp, len));
    assert_true(json_is_null(json_object_get(o, "id")));
    json_decref(o);
}

static void test_token_done(void **state)
{
    struct ipc_id id = { .present = true, .s = "r1" };
    int32_t toks[] = { 5, 6 };
    struct dec_result r = { .n_tokens = 10 };
    r.stats = (struct dec_stats){
        .steps = 4, .draft_tokens = 20, .accepted_tokens = 6, .step_ms_total = 500
    };
    size_t len;
    json_t *o = (tmp = ipc_event_token(&id, "a\nb\"", 4, toks, 2, &len), load_line(tmp, len));

    assert_string_equal(json_string_value(json_object_get(o, "text")), "a\nb\"");
    assert_int_equal(json_array_size(json_object_get(o, "tokens")), 2);
    json_decref(o);
    assert_null(ipc_event_token(&id, "\xff", 1, toks, 2, &len)); /* the caller sanitises */
    o = (tmp = ipc_event_done(&id, "length", &r, 0, 0, "all", 3, &len), load_line(tmp, len));
    json_t *s = json_object_get(o, "stats");
    assert_string_equal(json_string_value(json_object_get(o, "finish_reason")), "length");
    assert_string_equal(json_string_value(json_object_get(o, "text")), "all");
    assert_true(json_real_value(json_object_get(s, "tokens_per_step")) == 2.5);
    assert_true(json_real_value(json_object_get(s, "tokens_per_s")) == 20.0);
    assert_true(json_real_value(json_object_get(s, "acceptance")) == 0.3);
    json_decref(o);
}

static void test_result(void **state)
{
    struct ipc_id id = { .present = true, .s = "q" };
    size_t len;
    json_t *o =
            (tmp = ipc_event_result(&id, IPC_OP_HEALTH, json_pack("{s:s}", "status", "ok"), &len),
             load_line(tmp, len));

    assert_string_equal(json_string_value(json_object_get(o, "op")), "health");
    assert_string_equal(json_string_value(json_object_get(o, "event")), "result");
    assert_string_equal(json_string_value(json_object_get(o, "status")), "ok");
    json_decref(o);
}

static void test_id_roundtrip(void **state)
{
    struct ipc_id a, b;
    json_t *v = json_integer(9007199254740992LL);

    assert_true(ipc_id_from_json(v, &a));
    json_decref(v);
    v = ipc_id_to_json(&a);
    assert_true(ipc_id_from_json(v, &b));
    assert_true(ipc_id_equal(&a, &b));
    json_decref(v);
    v = json_string("9007199254740992");
    assert_true(ipc_id_from_json(v, &b));
    assert_false(ipc_id_equal(&a, &b)); /* "1" and 1 are different ids */
    json_decref(v);
    v = json_integer(9007199254740993LL);
    assert_false(ipc_id_from_json(v, &b));
    json_decref(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hello_error),
        cmocka_unit_test(test_token_done),
        cmocka_unit_test(test_result),
        cmocka_unit_test(test_id_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
