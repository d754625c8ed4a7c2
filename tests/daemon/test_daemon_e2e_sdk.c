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
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "e2e.h"

static const char *modules(void)
{
    const char *m = getenv("LADE_NODE_MODULES");

    return m && *m ? m : LADE_BUILD_DIR "/npm/node_modules";
}

static int free_port(void)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

static void test_openai_sdk(void **state)
{
    char pkg[512], listen[64], keyfile[160], cmd[2048];
    const char *extra[] = { "--set", listen, "--set", keyfile, NULL };
    int port = free_port(), st;
    struct e2e d;
    FILE *f;

    (void)state;
    snprintf(pkg, sizeof(pkg), "%s/openai/package.json", modules());
    if (system("node --version >/dev/null 2>&1") != 0 || access(pkg, R_OK) != 0) {
        print_message("skipped: needs node and the openai package in %s (npm install --prefix %s/npm openai@4, "
                      "or LADE_NODE_MODULES)\n", modules(), LADE_BUILD_DIR);
        skip();
    }
    snprintf(listen, sizeof(listen), "http.listen=127.0.0.1:%d", port);
    e2e_init(&d);
    snprintf(keyfile, sizeof(keyfile), "http.api_key_file=%s/key", d.dir);
    f = fopen(keyfile + 18, "w");
    assert_non_null(f);
    fputs("sdk-key\n", f);
    fclose(f);
    e2e_spawn(&d, "template=chatml", extra, -1);
    e2e_wait_ready(&d);
    snprintf(cmd, sizeof(cmd), "NODE_PATH='%s' node '%s' '%s' %d sdk-key", modules(),
             LADE_SOURCE_DIR "/tests/daemon/openai_sdk.cjs", d.sock, port);
    st = system(cmd);
    if (st != 0)
        e2e_dump_log(&d);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_int_equal(e2e_stop(&d), 0);
    unlink(keyfile + 18);
    e2e_cleanup(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openai_sdk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
