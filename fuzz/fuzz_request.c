/* libFuzzer target for the request parser: any bytes, as one line, through
 * ipc_request_parse; also through the line framer in two pieces, so a split
 * at every offset is exercised. Nothing may crash, leak or read out of
 * bounds, and every rejection must carry a known code and a one-line
 * message. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ipc/ipc.h"

static void check_parse(const char *data, size_t size)
{
    static const struct ipc_limits lim = { .max_text_bytes = 4096,
                                           .max_tokens = 4096,
                                           .max_detok_tokens = 256 };
    struct ipc_request r;
    struct ipc_error e;

    if (ipc_request_parse(data, size, &lim, &r, &e) == 0) {
        if ((unsigned)r.op >= IPC_OP__COUNT || !r.id.present)
            abort();
        ipc_request_done(&r);
        return;
    }
    if (e.code == IPC_ERR_NONE || !ipc_err_name(e.code) || strchr(e.message, '\n'))
        abort();
    /* the error must encode to a valid event line */
    size_t len;
    char *line = ipc_event_error(e.id.present ? &e.id : NULL, e.code, e.message, &len);
    if (line && (len == 0 || line[len - 1] != '\n'))
        abort();
    free(line);
}

static void check_framing(const char *data, size_t size)
{
    struct ipc_linebuf lb;
    size_t cut = size ? (unsigned char)data[0] % (size + 1) : 0, avail;
    const char *line;
    size_t len;

    ipc_linebuf_init(&lb, 512);
    for (int part = 0; part < 2; part++) {
        const char *p = part ? data + cut : data;
        size_t n = part ? size - cut : cut;
        while (n > 0) {
            char *dst = ipc_linebuf_space(&lb, &avail);
            size_t k = n < avail ? n : avail;
            if (!dst || avail == 0)
                abort();
            memcpy(dst, p, k);
            ipc_linebuf_commit(&lb, k);
            p += k;
            n -= k;
            int got;
            while ((got = ipc_linebuf_next(&lb, &line, &len)) != 0) {
                if (got > 0 && (len > 512 || memchr(line, '\n', len)))
                    abort();
                if (got > 0)
                    check_parse(line, len);
            }
        }
    }
    ipc_linebuf_done(&lb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_parse((const char *)data, size);
    check_framing((const char *)data, size);
    return 0;
}
