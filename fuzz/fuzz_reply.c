/* libFuzzer target for the reply side of the OpenAI API with tools: any
 * text (valid UTF-8, as replies are) as a whole reply through
 * ipc_oai_response, and cut in three token texts (where the first bytes
 * say) through a stream's hold (ipc_oai_hold). Nothing may crash, leak or
 * read out of bounds; a stream that found no tool call sends every byte
 * of the reply once, in order; one that found calls sends less text than
 * the reply as content. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ipc/ipc.h"

static void whole(const char *text, size_t n)
{
    struct ipc_oai_resp r = {
        .kind = IPC_OAI_CHAT, .id = "chatcmpl-1-1", .model = "m", .tools = true
    };
    json_t *done =
            json_pack("{s:s, s:s%, s:{}}", "finish_reason", "stop", "text", text, n, "stats");
    json_decref(done ? ipc_oai_response(&r, done) : NULL);
    json_decref(done);
}

static void streamed(const char *text, size_t n, const size_t cuts[2])
{
    struct ipc_oai_resp r = {
        .kind = IPC_OAI_CHAT, .id = "chatcmpl-1-1", .model = "m", .tools = true
    };
    struct ipc_oai_hold h = { 0 };
    char *sent = calloc(1, n + 1), *emit;
    size_t len = 0, from = 0;
    json_t *end = json_array(), *c;

    for (int i = 0; i < 3 && sent; i++) {
        size_t to = i < 2 ? cuts[i] : n;
        /* token texts are whole characters: cut only at a character's start */
        while (to < n && ((unsigned char)text[to] & 0xc0) == 0x80)
            to++;
        if (to <= from)
            continue;
        if (ipc_oai_hold_push(&h, text + from, to - from, &emit) < 0)
            goto out;
        if (emit) {
            memcpy(sent + len, emit, strlen(emit));
            len += strlen(emit);
        }
        free(emit);
        from = to;
    }
    if (!sent || !end || ipc_oai_hold_end(&r, &h, end) < 0)
        goto out;
    size_t i;
    json_array_foreach(end, i, c)
    {
        json_t *d = json_object_get(json_array_get(json_object_get(c, "choices"), 0), "delta");
        const char *s = json_string_value(json_object_get(d, "content"));
        if (s && len + strlen(s) > n) /* more text than the reply had */
            abort();
        if (s) {
            memcpy(sent + len, s, strlen(s));
            len += strlen(s);
        }
    }
    if (!r.tool_called && (len != n || memcmp(sent, text, n)))
        abort();
out:
    json_decref(end);
    ipc_oai_hold_done(&h);
    free(sent);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t cuts[2] = { size ? data[0] % (size + 1) : 0, size > 1 ? data[1] % (size + 1) : 0 };
    const char *text = (const char *)data;

    if (cuts[1] < cuts[0]) {
        size_t t = cuts[0];
        cuts[0] = cuts[1];
        cuts[1] = t;
    }
    if (!ipc_utf8_is_valid(text, size) || memchr(text, 0, size))
        return 0;
    whole(text, size);
    streamed(text, size, cuts);
    return 0;
}
