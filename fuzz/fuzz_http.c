/* libFuzzer target for the HTTP request path: any bytes, fed in three
 * pieces (split where the first bytes say), through the request assembler
 * (daemon/http_msg.c over http-parser), then every whole request's body
 * through the OpenAI mapping of each endpoint (ipc/openai.c). Nothing may
 * crash, leak or read out of bounds; a refusal carries a 4xx/5xx status
 * and a one-line message; a request is never both complete and refused. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/http_msg.h"
#include "ipc/ipc.h"

static void check_body(const struct srv_http_msg *m)
{
    static const struct ipc_limits lim = { .max_text_bytes = 4096,
                                           .max_tokens = 4096,
                                           .max_detok_tokens = 256 };

    if (m->body && strlen(m->body) > m->body_len)
        abort();
    for (int kind = IPC_OAI_CHAT; kind <= IPC_OAI_DETOKENIZE; kind++) {
        struct ipc_request r;
        struct ipc_oai_opts o;
        struct ipc_oai_error e;
        int k = ipc_oai_request(kind, m->body ? m->body : "", m->body_len, "fake", 1, &lim, &r, &o,
                                &e);
        if (k == 0) {
            ipc_request_done(&r);
            continue;
        }
        if (k == -ENOMEM)
            continue;
        if (e.status < 400 || e.status > 599 || !e.type || strchr(e.message, '\n'))
            abort();
        json_decref(ipc_oai_error_json(&e));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    size_t cuts[3] = { size ? data[0] % (size + 1) : 0, size > 1 ? data[1] % (size + 1) : 0, size };
    struct srv_http_msg m;
    size_t off = 0;

    if (cuts[1] < cuts[0]) {
        size_t t = cuts[0];
        cuts[0] = cuts[1];
        cuts[1] = t;
    }
    srv_http_msg_init(&m, 1024, 4096);
    for (int part = 0; part < 3 && !m.status; part++) {
        while (off < cuts[part] && !m.status) {
            size_t n = srv_http_msg_feed(&m, p + off, cuts[part] - off);
            off += n;
            if (m.complete && m.status)
                abort();
            if (m.complete) {
                check_body(&m);
                srv_http_msg_next(&m);
            } else if (!m.status && n == 0)
                abort(); /* neither progress nor a verdict */
            if (m.status && (m.status < 400 || m.status > 599 || !m.error))
                abort();
        }
    }
    srv_http_msg_done(&m);
    return 0;
}
