/* daemon/socket.c: the stale-socket rules, the socket born with its mode
 * and group without going through the path again, and removal of only the
 * file it made; in-process. Linked with -Wl,--wrap=bind, so that a test
 * can swap the file bind made for a symlink before socket.c goes on. */
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
static struct srv_socket_file file;

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
    int fd = srv_socket_listen(path, 0660, (gid_t)-1, &file, err, sizeof(err));

    assert_true(fd >= 0);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0660);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
    /* A second daemon finds this one alive and leaves its socket alone. */
    assert_int_equal(srv_socket_listen(path, 0660, (gid_t)-1, &file, err, sizeof(err)),
                     -EADDRINUSE);
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
    fd = srv_socket_listen(path, 0600, (gid_t)-1, &file, err, sizeof(err));
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
    assert_int_equal(srv_socket_listen(path, 0660, (gid_t)-1, &file, err, sizeof(err)), -EEXIST);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_size, 8);
}

static void test_path_too_long(void **state)
{
    char err[256], longp[200];

    memset(longp, 'a', sizeof(longp) - 1);
    longp[sizeof(longp) - 1] = '\0';
    assert_int_equal(srv_socket_listen(longp, 0660, (gid_t)-1, &file, err, sizeof(err)),
                     -ENAMETOOLONG);
}

/* --wrap=bind: the real bind, then, when armed, what someone who can write
 * the directory could do next: the socket moved aside and a symlink to a
 * file of theirs put in its place. */
int __real_bind(int fd, const struct sockaddr *sa, socklen_t len);
static char swap_target[160];

int __wrap_bind(int fd, const struct sockaddr *sa, socklen_t len)
{
    char aside[160];
    int r = __real_bind(fd, sa, len);

    if (r == 0 && swap_target[0]) {
        snprintf(aside, sizeof(aside), "%s.aside", path);
        assert_int_equal(rename(path, aside), 0);
        assert_int_equal(symlink(swap_target, path), 0);
    }
    return r;
}

/* Issue #20: chmod and chown after bind followed a symlink swapped in;
 * now the mode comes with bind and the group goes through an O_PATH
 * descriptor that sees the symlink and refuses it. The target keeps its
 * mode and group. */
static void test_symlink_swapped_in(void **state)
{
    char err[256], aside[160];
    struct stat st;
    int fd;

    snprintf(swap_target, sizeof(swap_target), "%s/victim", dir);
    fd = open(swap_target, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(chmod(swap_target, 0600), 0);
    fd = srv_socket_listen(path, 0666, getegid(), &file, err, sizeof(err));
    swap_target[0] = '\0';
    assert_int_equal(fd, -EEXIST);
    assert_non_null(strstr(err, "was replaced after bind (by a symlink), refusing it"));
    snprintf(aside, sizeof(aside), "%s/victim", dir);
    assert_int_equal(stat(aside, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISLNK(st.st_mode)); /* not ours: left alone */
    unlink(path);
    unlink(aside);
    snprintf(aside, sizeof(aside), "%s.aside", path);
    unlink(aside);
}

/* The mode is there from bind on, and the group from the descriptor. */
static void test_mode_and_group(void **state)
{
    char err[256];
    struct stat st;
    int fd = srv_socket_listen(path, 0640, getegid(), &file, err, sizeof(err));

    assert_true(fd >= 0);
    assert_int_equal(lstat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
    assert_int_equal(st.st_gid, getegid());
    assert_string_equal(file.path, path);
    assert_int_equal(file.ino, st.st_ino);
    close(fd);
}

/* Issue #20: an exiting daemon unlinked whatever socket was at its path.
 * Its file deleted and another daemon's bound there, the first's removal
 * leaves the second's; the second's own removal takes it. */
static void test_remove_only_own(void **state)
{
    struct srv_socket_file first, second;
    char err[256];
    struct stat st;
    int a = srv_socket_listen(path, 0600, (gid_t)-1, &first, err, sizeof(err)), b;

    assert_true(a >= 0);
    assert_int_equal(unlink(path), 0);
    b = srv_socket_listen(path, 0600, (gid_t)-1, &second, err, sizeof(err));
    assert_true(b >= 0);
    srv_socket_remove(&first);
    assert_int_equal(lstat(path, &st), 0);
    assert_int_equal(st.st_ino, second.ino);
    srv_socket_remove(&second);
    assert_int_equal(lstat(path, &st), -1);
    srv_socket_remove(&second); /* gone already: nothing to do */
    close(a);
    close(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fresh_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_replaced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_a_socket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_path_too_long, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlink_swapped_in, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mode_and_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_only_own, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
