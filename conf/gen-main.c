/* lade_conf_gen conf|man|markdown FILE: rewrites FILE from the schema
 * (markdown: only the part between the markers of conf/gen.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf-internal.h"
#include "conf/gen.h"

static int slurp(const char *path, char **ret)
{
    cleanup_fclose FILE *f = fopen(path, "re");
    char *buf = NULL;
    size_t len = 0;

    if (!f)
        return -errno;
    FILE *m = open_memstream(&buf, &len);
    if (!m)
        return -ENOMEM;
    char chunk[4096];
    size_t got;
    while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0)
        fwrite(chunk, 1, got, m);
    fclose(m);
    *ret = buf;
    return ferror(f) ? -EIO : 0;
}

static int generate(const char *what, const char *path, FILE *out)
{
    if (strcmp(what, "conf") == 0)
        return conf_gen_conf(out);
    if (strcmp(what, "man") == 0)
        return conf_gen_man(out);
    if (strcmp(what, "markdown") == 0) {
        cleanup_free char *text = NULL;
        int r = slurp(path, &text);
        return r < 0 ? r : conf_gen_markdown_splice(text, out);
    }
    return -EINVAL;
}

int main(int argc, char **argv)
{
    char tmp[4096];

    if (argc != 3) {
        fprintf(stderr, "usage: %s conf|man|markdown FILE\n", argv[0]);
        return 2;
    }
    snprintf(tmp, sizeof(tmp), "%s.tmp", argv[2]);
    FILE *out = fopen(tmp, "we");
    if (!out) {
        fprintf(stderr, "Failed to create '%s': %s\n", tmp, strerror(errno));
        return 1;
    }
    int r = generate(argv[1], argv[2], out);
    if (fclose(out) != 0 && r == 0)
        r = -EIO;
    if (r == 0 && rename(tmp, argv[2]) < 0)
        r = -errno;
    if (r < 0) {
        unlink(tmp);
        fprintf(stderr, "Failed to write '%s': %s\n", argv[2], strerror(-r));
        return 1;
    }
    return 0;
}
