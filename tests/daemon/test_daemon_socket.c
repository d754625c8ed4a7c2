/* daemon/socket.c: the stale-socket rules, in-process. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/socket.h"

static char dir[64], path[128];

static int setup(void **state)
{
    snprintf(dir, sizeof(dir), "/tmp/lade-sock-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/s.sock", dir);
    return 0;
}

static int teardown(void **state)
{
    unlink(path);
    rmdir(dir);
    return 0;
}

static void test_fresh_mode(void **state)
{
    char err[256];
    struct stat st;
    int fd = srv_socket_listen(path, 0660, (gid_t)-1, err, sizeof(err));

    assert_true(fd >= 0);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0660);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
    /* A second daemon finds this one alive and leaves its socket alone. */
    assert_int_equal(srv_socket_listen(path, 0660, (gid_t)-1, err, sizeof(err)), -EADDRINUSE);
    assert_non_null(strstr(err, "another daemon"));
    assert_int_equal(stat(path, &st), 0);
    close(fd);
}

static void test_stale_replaced(void **state)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    char err[256];
    int s = socket(AF_UNIX, SOCK_STREAM, 0), fd;

    strcpy(sa.sun_path, path);
    assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(s); /* the file stays, no one listens: stale */
    fd = srv_socket_listen(path, 0600, (gid_t)-1, err, sizeof(err));
    assert_true(fd >= 0);
    close(fd);
}

static void test_not_a_socket(void **state)
{
    char err[256];
    struct stat st;
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs("precious", f);
    fclose(f);
    assert_int_equal(srv_socket_listen(path, 0660, (gid_t)-1, err, sizeof(err)), -EEXIST);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_size, 8);
}

static void test_path_too_long(void **state)
{
    char err[256], longp[200];

    memset(longp, 'a', sizeof(longp) - 1);
    longp[sizeof(longp) - 1] = '\0';
    assert_int_equal(srv_socket_listen(longp, 0660, (gid_t)-1, err, sizeof(err)), -ENAMETOOLONG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fresh_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_replaced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_a_socket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_path_too_long, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
