/* laded and the official openai npm SDK: openai_sdk.cjs runs a chat
 * (streamed and not), a completion, models.list and an error through the
 * SDK, over the Unix socket and over the TCP listener with a key. Needs
 * node and the openai package (4.x): $LADE_NODE_MODULES, else
 * <build>/npm/node_modules (npm install --prefix <build>/npm openai@4);
 * skipped with a message when either is missing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "e2e.h"

static const char *modules(void)
{
    const char *m = getenv("LADE_NODE_MODULES");

    return m && *m ? m : LADE_BUILD_DIR "/npm/node_modules";
}

static void test_openai_sdk(void **state)
{
    char pkg[512], cmd[2048];
    struct e2e d;
    int port, st;

    (void)state;
    snprintf(pkg, sizeof(pkg), "%s/openai/package.json", modules());
    if (system("node --version >/dev/null 2>&1") != 0 || access(pkg, R_OK) != 0) {
        print_message(
                "skipped: needs node and the openai package in %s (npm install --prefix %s/npm openai@4, "
                "or LADE_NODE_MODULES)\n",
                modules(), LADE_BUILD_DIR);
        skip();
    }
    port = e2e_start_tcp(&d, "template=chatml", "sdk-key");
    snprintf(cmd, sizeof(cmd), "NODE_PATH='%s' node '%s' '%s' %d sdk-key", modules(),
             LADE_SOURCE_DIR "/tests/daemon/openai_sdk.cjs", d.sock, port);
    st = system(cmd);
    if (st != 0)
        e2e_dump_log(&d);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_int_equal(e2e_stop(&d), 0);
    e2e_cleanup(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openai_sdk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
