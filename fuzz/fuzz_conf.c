/* libFuzzer target for the configuration parser: the bytes become a
 * laded.conf (through a memfd, since inih reads files), then conf_load,
 * conf_check and a dump of whatever loaded. Any crash, leak or sanitizer
 * report is a bug. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "conf/conf.h"

static void ignore(void *user, const char *message)
{
    (void)user;
    (void)message;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("laded.conf", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    char path[64], err[512];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    struct conf c;
    if (conf_defaults(&c) == 0) {
        if (conf_load(&c, path, ignore, NULL, err, sizeof(err)) == 0) {
            conf_check(&c, err, sizeof(err));
            FILE *null = fopen("/dev/null", "we");
            if (null) {
                conf_dump(&c, null);
                fclose(null);
            }
        }
        conf_free(&c);
    }
    close(fd);
    return 0;
}
