/* laded and curl (issue #19's "real clients"): curl --unix-socket and curl
 * over the TCP listener with a bearer key, against the toy engine: models,
 * a chat completion streamed and not, a completion, and statuses for a
 * bad body and a missing key. Skipped with a message without curl. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "e2e.h"

/* curl's output (its -w text last), at most cap - 1 bytes. */
static void run(const char *args, char *out, size_t cap)
{
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "curl -sS --max-time 30 %s 2>&1", args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = 0;
    pclose(p);
}

static void expect(const char *out, const char *needle)
{
    if (!strstr(out, needle))
        fail_msg("curl's output lacks '%s':\n%s", needle, out);
}

static const char chat[] =
        "-H 'Content-Type: application/json' "
        "-d '{\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}],\"max_tokens\":8%s}' ";

static void test_curl(void **state)
{
    (void)state;
    if (system("curl --version >/dev/null 2>&1") != 0) {
        print_message("skipped: needs curl (Debian package curl)\n");
        skip();
    }
    struct e2e d;
    int port = e2e_start_tcp(&d, "template=chatml", "curl-key");
    char base[600], args[4096], out[65536], body[512];

    snprintf(base, sizeof(base), "--unix-socket '%s' http://localhost", d.sock);
    snprintf(args, sizeof(args), "%s/v1/models", base);
    run(args, out, sizeof(out));
    expect(out, "\"object\":\"list\"");

    snprintf(body, sizeof(body), chat, "");
    snprintf(args, sizeof(args), "%s %s/v1/chat/completions", body, base);
    run(args, out, sizeof(out));
    expect(out, "\"object\":\"chat.completion\"");
    expect(out, "\"finish_reason\"");
    expect(out, "\"usage\"");

    snprintf(body, sizeof(body), chat, ",\"stream\":true");
    snprintf(args, sizeof(args), "-N %s %s/v1/chat/completions", body, base);
    run(args, out, sizeof(out));
    expect(out, "data: {");
    expect(out, "\"chat.completion.chunk\"");
    expect(out, "data: [DONE]");

    snprintf(
            args, sizeof(args),
            "-H 'Content-Type: application/json' -d '{\"prompt\":\"Once\",\"max_tokens\":4}' %s/v1/completions",
            base);
    run(args, out, sizeof(out));
    expect(out, "\"object\":\"text_completion\"");

    snprintf(args, sizeof(args),
             "-o /dev/null -w '%%{http_code}' -d '{\"messages\":' %s/v1/chat/completions", base);
    run(args, out, sizeof(out));
    expect(out, "400");

    /* TCP: the key is required */
    snprintf(args, sizeof(args), "-o /dev/null -w '%%{http_code}' http://127.0.0.1:%d/v1/models",
             port);
    run(args, out, sizeof(out));
    expect(out, "401");
    snprintf(args, sizeof(args),
             "-H 'Authorization: Bearer curl-key' http://127.0.0.1:%d/v1/models", port);
    run(args, out, sizeof(out));
    expect(out, "\"object\":\"list\"");

    assert_int_equal(e2e_stop(&d), 0);
    e2e_cleanup(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_curl),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
