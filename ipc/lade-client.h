/* liblade-client: talk to laded from C. One connection, requests sent as
 * JSON lines, events read back one at a time (blocking, with a timeout).
 * The protocol itself is in docs/protocol.md; this library only frames and
 * parses it. Functions return 0 (or 1 where noted) or a negative errno.
 * A connection is not thread-safe: use one per thread. */
#ifndef LADE_IPC_LADE_CLIENT_H
#define LADE_IPC_LADE_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(LADE_CLIENT_BUILD_SHARED)
#define LADE_CLIENT_API __attribute__((visibility("default")))
#else
#define LADE_CLIENT_API
#endif

#define LADE_CLIENT_DEFAULT_SOCKET "/run/lade/laded.sock"

struct lade_client;

enum lade_event_type {
    LADE_EVENT_HELLO = 0,
    LADE_EVENT_TOKEN, /* text, tokens */
    LADE_EVENT_DONE, /* finish_reason, stats, text (stream=false) */
    LADE_EVENT_RESULT, /* op; the fields in json */
    LADE_EVENT_ERROR, /* code, message */
};

struct lade_stats {
    uint32_t prompt_tokens;
    uint32_t generated_tokens;
    uint32_t steps;
    uint64_t draft_tokens;
    uint64_t accepted_tokens;
    double tokens_per_step;
    double acceptance;
    double tokens_per_s;
    double queue_ms;
    double prefill_ms;
    double decode_ms;
    uint32_t prompt_tokens_reused; /* of prompt_tokens, whose K/V the prefix cache had */
};

/* One event; every pointer is valid until the next lade_client_next(). */
struct lade_event {
    enum lade_event_type type;
    const char *id; /* request id as text ("" for none) */
    const char *text; /* token; done with stream=false; detokenize result */
    size_t text_len;
    const int32_t *tokens; /* token: ids of this step */
    uint32_t n_tokens;
    const char *finish_reason; /* done: length, eos, stop, context */
    struct lade_stats stats; /* done */
    const char *code; /* error: stable code, e.g. "busy" */
    const char *message; /* error */
    const char *op; /* result */
    const char *json; /* the whole event line, without its newline */
};

/* Sampling and decoding options; lade_gen_opts_init() gives the server's
 * defaults for everything. */
struct lade_gen_opts {
    uint32_t max_tokens; /* 0: server default */
    double temperature; /* < 0: server default (greedy) */
    int32_t top_k; /* < 0: default */
    double top_p; /* < 0: default */
    double min_p; /* < 0: default */
    double repeat_penalty; /* < 0: default */
    int64_t seed; /* < 0: random */
    const char *const *stop; /* stop strings */
    uint32_t n_stop;
    int lookahead; /* -1: server default, 0: off, 1: on */
    uint32_t la_n, la_w, la_g; /* 0: server default */
    bool stream; /* token events as they come (default true) */
};

struct lade_message {
    const char *role; /* "system", "user", "assistant" */
    const char *content;
};

LADE_CLIENT_API void lade_gen_opts_init(struct lade_gen_opts *o);

/* Connect to path (NULL: $LADE_SOCKET, else the default) and read the
 * server's hello. -ECONNREFUSED/-ENOENT when no daemon listens,
 * -EPROTO when the server speaks another protocol version. */
LADE_CLIENT_API int lade_client_connect(const char *path, struct lade_client **ret);
LADE_CLIENT_API void lade_client_free(struct lade_client *c);
LADE_CLIENT_API int lade_client_fd(const struct lade_client *c);
/* From the hello event. */
LADE_CLIENT_API const char *lade_client_server_version(const struct lade_client *c);
LADE_CLIENT_API const char *lade_client_model(const struct lade_client *c);

/* Send requests; id is the client's name for it (1..64 bytes). */
LADE_CLIENT_API int lade_client_generate(struct lade_client *c, const char *id, const char *prompt,
                                         const struct lade_gen_opts *o);
LADE_CLIENT_API int lade_client_chat(struct lade_client *c, const char *id,
                                     const struct lade_message *msgs, uint32_t n,
                                     const struct lade_gen_opts *o);
LADE_CLIENT_API int lade_client_tokenize(struct lade_client *c, const char *id, const char *text,
                                         bool add_bos);
LADE_CLIENT_API int lade_client_detokenize(struct lade_client *c, const char *id,
                                           const int32_t *tokens, uint32_t n);
LADE_CLIENT_API int lade_client_cancel(struct lade_client *c, const char *id, const char *target);
/* info, health or stats. */
LADE_CLIENT_API int lade_client_simple(struct lade_client *c, const char *id, const char *op);
/* Send one raw line (a newline is added); for tests and new fields. */
LADE_CLIENT_API int lade_client_send_raw(struct lade_client *c, const char *line, size_t len);

/* Wait up to timeout_ms (-1: forever) for the next event. 1 with *ev
 * filled, 0 on timeout, -EPIPE when the server closed the connection,
 * -EBADMSG for a line that is not an event. */
LADE_CLIENT_API int lade_client_next(struct lade_client *c, struct lade_event *ev, int timeout_ms);

/* For results: a field of the event as compact JSON text (malloc'd), e.g.
 * "tokens" of a tokenize result; NULL if absent. */
LADE_CLIENT_API char *lade_event_field_json(const struct lade_event *ev, const char *field);
/* A string field decoded (malloc'd), e.g. "prometheus" of a stats result;
 * NULL if absent or not a string. */
LADE_CLIENT_API char *lade_event_field_string(const struct lade_event *ev, const char *field);

#ifdef __cplusplus
}
#endif

#endif
