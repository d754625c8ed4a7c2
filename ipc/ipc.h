/* ipc: the laded socket protocol (newline-delimited JSON over a SOCK_STREAM
 * Unix socket, spelled out in docs/protocol.md): line framing, request
 * parsing and validation, event encoding, UTF-8 helpers.
 *
 * Everything here is pure: no sockets, no threads, no logging. The daemon
 * feeds it bytes and writes out the lines it returns; the fuzzer and the unit
 * tests drive the same functions. */
#ifndef LADE_IPC_IPC_H
#define LADE_IPC_IPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Requests are parsed straight into the decoder's parameter struct: a
 * header-only use of plain data (dec_params_default is inline), so ipc/
 * still links nothing of decoding/ and the client library stays small. */
#include "decoding/dec.h"

#define IPC_PROTOCOL_VERSION 1

#define IPC_ID_MAX 64 /* bytes of a string id */
#define IPC_STOP_MAX 8 /* stop strings per request */
#define IPC_STOP_LEN_MAX 128 /* bytes of one stop string */
#define IPC_MESSAGE_MAX 256 /* messages of one chat request */
#define IPC_TOOLS_MAX 128 /* tools of one chat request */
#define IPC_TOOL_CALLS_MAX 32 /* tool calls of one assistant message */
#define IPC_TOOL_DEPTH_MAX 16 /* nesting of one tool or tool call (JSON Schema nests) */
#define IPC_TOOL_NODES_MAX 16384 /* JSON values in a request's tools and tool calls together */
#define IPC_TOOL_ID_MAX 128 /* bytes of a tool message's tool_call_id or name */
#define IPC_ERRMSG_MAX 256 /* bytes of an error message */
#define IPC_LOOKAHEAD_N_MAX 16
#define IPC_LOOKAHEAD_W_MAX 128
#define IPC_LOOKAHEAD_G_MAX 128

/* Stable error codes: the wire names are in ipc_err_name(). Append only. */
enum ipc_err {
    IPC_ERR_NONE = 0,
    IPC_ERR_BAD_JSON,
    IPC_ERR_BAD_UTF8,
    IPC_ERR_TOO_LARGE,
    IPC_ERR_UNKNOWN_OP,
    IPC_ERR_BAD_FIELD,
    IPC_ERR_MISSING_FIELD,
    IPC_ERR_OUT_OF_RANGE,
    IPC_ERR_CONTEXT_EXCEEDED,
    IPC_ERR_BUSY,
    IPC_ERR_TOO_MANY_CONNECTIONS,
    IPC_ERR_CANCELLED,
    IPC_ERR_NOT_FOUND,
    IPC_ERR_INTERNAL,
    IPC_ERR_UNSUPPORTED_TEMPLATE,
    IPC_ERR_PROTOCOL_VERSION,
    IPC_ERR_DUPLICATE_ID,
    IPC_ERR_SHUTTING_DOWN,
    IPC_ERR_TIMEOUT,
    IPC_ERR__COUNT,
};

enum ipc_op {
    IPC_OP_GENERATE = 0,
    IPC_OP_CHAT,
    IPC_OP_TOKENIZE,
    IPC_OP_DETOKENIZE,
    IPC_OP_CANCEL,
    IPC_OP_INFO,
    IPC_OP_HEALTH,
    IPC_OP_STATS,
    IPC_OP_APPLY_TEMPLATE, /* a chat's messages and tools through the template, no generation */
    IPC_OP__COUNT,
};

enum ipc_role {
    IPC_ROLE_SYSTEM = 0,
    IPC_ROLE_USER,
    IPC_ROLE_ASSISTANT,
    IPC_ROLE_TOOL, /* a tool's result, answering an assistant's tool call */
};

/* A request id as the client sent it: a string of 1..IPC_ID_MAX bytes or a
 * non-negative integer (kept in decimal). Echoed back with the same type. */
struct ipc_id {
    bool present;
    bool is_int;
    char s[IPC_ID_MAX + 1];
};

/* What a failed parse reports: the code, the id when one could be read (so
 * the client can tell which request failed), and a one-line message. */
struct ipc_error {
    enum ipc_err code;
    struct ipc_id id;
    char message[IPC_ERRMSG_MAX];
};

/* Bounds the daemon applies while parsing; values come from configuration. */
struct ipc_limits {
    size_t max_text_bytes; /* prompt, tokenize text, sum of chat contents */
    uint32_t max_tokens; /* cap on generate/chat max_tokens */
    uint32_t max_detok_tokens; /* tokens of one detokenize request */
};

/* A chat message as Hugging Face's chat templates see it: role and
 * content, and for tool use the optional fields below. */
struct ipc_message {
    enum ipc_role role;
    char *content; /* "" for an assistant message that only calls tools */
    json_t *tool_calls; /* assistant: [{"type": "function", "function": {"name",
                         * "arguments"}, "id"?}], checked and bounded; or NULL */
    char *tool_call_id; /* tool: the call this answers, or NULL */
    char *name; /* tool: the function that answered, or NULL */
};

/* A validated request. Strings are NUL-terminated valid UTF-8 and owned by
 * the struct: release with ipc_request_done(). */
struct ipc_request {
    struct ipc_id id;
    enum ipc_op op;
    /* generate, chat */
    char *prompt; /* generate */
    struct ipc_message *messages; /* chat, apply_template */
    uint32_t n_messages;
    json_t *tools; /* chat, apply_template: the tools a template may offer the model, a
                    * checked and bounded array ([{"type": "function",
                    * "function": {"name", "description"?, "parameters"?}}]);
                    * NULL when the request has none */
    /* What the request sets, over dec_params_default(), except: max_tokens
     * 0 when not given (the server's default); n, w, g 0 when not given
     * (the server's defaults); seed only with has_seed; lookahead only with
     * lookahead_set ("lookahead": {...} sets it on). stop and n_stop are
     * left empty: the strings are in stop[] below, and the daemon points
     * params.stop at them and its own. */
    struct dec_params params;
    bool has_seed;
    bool lookahead_set;
    char *stop[IPC_STOP_MAX];
    uint32_t n_stop;
    bool stream;
    /* tokenize */
    char *text;
    bool add_bos;
    bool special; /* text that spells a special token ("</s>", "<|im_start|>") becomes its id */
    /* detokenize; generate with a prompt of token ids (prompt NULL) */
    int32_t *tokens;
    uint32_t n_tokens;
    /* cancel */
    struct ipc_id target;
};

/* Wire names. NULL for out-of-range values. */
const char *ipc_err_name(enum ipc_err code);
const char *ipc_op_name(enum ipc_op op);
const char *ipc_role_name(enum ipc_role role);

/* Parse and validate one request line (without its newline). Returns 0 with
 * *ret filled, -EBADMSG with *reterr describing the problem (ret untouched),
 * or -ENOMEM. Never reads past len; the line need not be NUL-terminated. */
int ipc_request_parse(const char *line, size_t len, const struct ipc_limits *lim,
                      struct ipc_request *ret, struct ipc_error *reterr);
void ipc_request_done(struct ipc_request *req);

/* ---- UTF-8 -------------------------------------------------------------- */

/* Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF). */
bool ipc_utf8_is_valid(const char *s, size_t len);
/* Length of the longest prefix of s that does not end inside a multi-byte
 * sequence that could still be completed by more bytes. */
size_t ipc_utf8_complete_len(const char *s, size_t len);
/* Copy s into dst (cap bytes, cap >= 3 * len + 1 is always enough) replacing
 * every invalid byte with U+FFFD; returns the bytes written, NUL-terminated. */
size_t ipc_utf8_sanitize(const char *s, size_t len, char *dst, size_t cap);

/* ---- Line framing --------------------------------------------------------
 * A bounded input buffer. The caller reads into ipc_linebuf_space(), then
 * commits and takes complete lines. A line longer than max is dropped up to
 * its newline and reported once as -E2BIG. */
struct ipc_linebuf {
    char *buf;
    size_t len; /* bytes held */
    size_t cap; /* allocated */
    size_t max; /* longest accepted line, newline excluded */
    size_t scan; /* bytes already searched for a newline */
    size_t consume; /* bytes of the line last returned, consumed at the next call */
    bool discarding;
};

int ipc_linebuf_init(struct ipc_linebuf *lb, size_t max);
void ipc_linebuf_done(struct ipc_linebuf *lb);
/* Room to read into (grows the buffer up to max + 1). NULL with -ENOMEM. */
char *ipc_linebuf_space(struct ipc_linebuf *lb, size_t *ret_avail);
void ipc_linebuf_commit(struct ipc_linebuf *lb, size_t n);
/* 1 and a line (valid until the next call), 0 if no complete line is held,
 * -E2BIG once for each overlong line (its bytes are skipped). */
int ipc_linebuf_next(struct ipc_linebuf *lb, const char **ret_line, size_t *ret_len);
/* At the end of the input: the bytes after the last newline as a final
 * line, as ipc_linebuf_next returns lines (1, 0 if there are none, -E2BIG
 * once if they were an overlong line). */
int ipc_linebuf_rest(struct ipc_linebuf *lb, const char **ret_line, size_t *ret_len);
/* Whether bytes of a line not yet returned are held (or an overlong line
 * is being skipped): a line has begun. */
bool ipc_linebuf_has_data(const struct ipc_linebuf *lb);

/* ---- Events --------------------------------------------------------------
 * Every encoder returns a malloc'd NUL-terminated line ending in '\n' (and
 * its length in *ret_len when not NULL), or NULL on allocation failure. */

struct ipc_hello {
    const char *server_version;
    const char *model;
    const char *device;
};

char *ipc_event_hello(const struct ipc_hello *h, size_t *ret_len);
char *ipc_event_error(const struct ipc_id *id, enum ipc_err code, const char *message,
                      size_t *ret_len);
/* text must be valid UTF-8 (see ipc_utf8_sanitize). */
char *ipc_event_token(const struct ipc_id *id, const char *text, size_t text_len,
                      const int32_t *tokens, uint32_t n, size_t *ret_len);
/* The statistics of r, with the prompt's length and the time the request
 * waited; finish_reason is dec_finish_name(r->finish) (ipc/ uses
 * decoding/'s structs, not its library); text: the whole completion for
 * non-streamed requests, else NULL. */
char *ipc_event_done(const struct ipc_id *id, const char *finish_reason, const struct dec_result *r,
                     uint32_t prompt_tokens, double queue_ms, const char *text, size_t text_len,
                     size_t *ret_len);
/* A result for a non-generating op; takes ownership of body (an object,
 * may be NULL) and adds "event", "id" and "op" to it. */
char *ipc_event_result(const struct ipc_id *id, enum ipc_op op, json_t *body, size_t *ret_len);

/* ---- The OpenAI-compatible HTTP API: its JSON -----------------------------
 * laded's HTTP endpoints (daemon/http.c) are a translation: an OpenAI
 * request body becomes the struct ipc_request an NDJSON line would give
 * (the same parameters, the same checks), and the NDJSON events of that
 * request become OpenAI's responses, chunks and error objects. */

enum ipc_oai_kind {
    IPC_OAI_CHAT = 0, /* POST /v1/chat/completions */
    IPC_OAI_COMPLETION, /* POST /v1/completions */
    IPC_OAI_TOKENIZE, /* POST /tokenize (llama.cpp's shape) */
    IPC_OAI_DETOKENIZE, /* POST /detokenize */
};

/* What an OpenAI request asks beyond its lade request. */
struct ipc_oai_opts {
    bool stream; /* server-sent events */
    bool include_usage; /* stream_options.include_usage */
    bool tools; /* the chat offered tools: a reply's tool calls are parsed */
};

/* OpenAI's error object and the HTTP status it goes with. */
struct ipc_oai_error {
    int status;
    const char *type; /* invalid_request_error, not_found_error, rate_limit_error, server_error */
    const char *code; /* a lade error code name, or NULL */
    char param[64]; /* the request field at fault, "" for none */
    char message[IPC_ERRMSG_MAX];
};

/* An OpenAI request body of kind mapped to a lade request with the given
 * integer id and parsed like ipc_request_parse. model: the served model's
 * name (a request naming another is refused with 404). 0 with *ret and
 * *ret_opts filled, -EBADMSG with *reterr, or -ENOMEM. */
int ipc_oai_request(enum ipc_oai_kind kind, const char *body, size_t len, const char *model,
                    uint64_t id, const struct ipc_limits *lim, struct ipc_request *ret,
                    struct ipc_oai_opts *ret_opts, struct ipc_oai_error *reterr);
/* The OpenAI error for a lade error (code as ipc_err_name gives it). */
void ipc_oai_error_from(const char *code, const char *message, struct ipc_oai_error *ret);
/* {"error":{message, type, param, code}}; a new reference, NULL on ENOMEM. */
json_t *ipc_oai_error_json(const struct ipc_oai_error *e);

/* One response's identity, for every object it sends. */
struct ipc_oai_resp {
    enum ipc_oai_kind kind;
    const char *id; /* "chatcmpl-..." or "cmpl-..." */
    const char *model;
    long long created; /* Unix seconds */
    bool include_usage;
    bool tools; /* ipc_oai_opts.tools */
    bool tool_called; /* a streamed reply held tool calls: finish_reason "tool_calls" */
};

/* Every function below returns a new reference, NULL on ENOMEM. */
/* A streamed chunk with text; first: the chat's opening chunk (role). */
json_t *ipc_oai_chunk(const struct ipc_oai_resp *r, const char *text, bool first);
/* From a done event: the streamed chunk with finish_reason and lade's
 * lookahead object, and (include_usage) the one with the usage. */
json_t *ipc_oai_last_chunk(const struct ipc_oai_resp *r, json_t *done);
json_t *ipc_oai_usage_chunk(const struct ipc_oai_resp *r, json_t *done);
/* A streamed chat reply that offered tools: its text is sent as it comes,
 * except from a "<tool_call>" on (or the end that may still become one),
 * which is held to the end, then parsed as ipc_oai_response parses. Plain
 * data, zero-initialised; ipc_oai_hold_done frees and resets it. */
struct ipc_oai_hold {
    char *buf; /* the held text, NUL-terminated */
    size_t len, cap;
    bool in_call; /* "<tool_call>" was seen: everything is held */
};

/* One token event's text in: *ret_emit is the text to send now (malloc'd,
 * NUL-terminated; NULL when none). 0 or -ENOMEM. */
int ipc_oai_hold_push(struct ipc_oai_hold *h, const char *text, size_t n, char **ret_emit);
/* At the end of the reply: the chunks for the held text appended to the
 * array chunks: with tool calls, one with the text around them (if not
 * blank) and one with delta.tool_calls (then r->tool_called is set, for
 * ipc_oai_last_chunk's finish_reason); else one with the text. 0 or
 * -ENOMEM. */
int ipc_oai_hold_end(struct ipc_oai_resp *r, struct ipc_oai_hold *h, json_t *chunks);
void ipc_oai_hold_done(struct ipc_oai_hold *h);

/* From a done event with the text: the whole non-streamed response. With
 * r->tools, a chat reply's Hermes-style tool calls (Qwen2.5, Qwen3:
 * <tool_call>{"name": ..., "arguments": {...}}</tool_call>, each block one
 * JSON object) become message.tool_calls (ids "call_<i>_<response id>",
 * arguments as a string of JSON), the rest of the text its content (null
 * when only blanks are left), and finish_reason "tool_calls" unless the
 * reply was cut at max_tokens; a block that does not parse leaves the
 * text as it is. Streamed replies: struct ipc_oai_hold. */
json_t *ipc_oai_response(const struct ipc_oai_resp *r, json_t *done);
/* From a result event of tokenize or detokenize: the response body. */
json_t *ipc_oai_result(enum ipc_oai_kind kind, json_t *result);

/* json value for an id (null when absent); a new reference. */
json_t *ipc_id_to_json(const struct ipc_id *id);
/* Fill *ret from a string or non-negative integer json value; false if it is
 * neither or out of bounds. */
bool ipc_id_from_json(const json_t *v, struct ipc_id *ret);
bool ipc_id_equal(const struct ipc_id *a, const struct ipc_id *b);

#endif
