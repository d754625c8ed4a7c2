/* The schema: the one place where laded's configuration keys are described.
 * Defaults, parsing, conf_dump(), laded.conf, laded.conf(5) and the key table
 * of docs/configuration.md all come from this table (see gen.c); the test
 * test_conf_docs fails when the shipped files fall behind it. */
#include <stddef.h>
#include <string.h>

#include "conf/conf-internal.h"

#define F(field) offsetof(struct conf, field)
#define KIB 1024ull
#define MIB (1024ull * 1024ull)
#define GIB (1024ull * 1024ull * 1024ull)

/* conf_store() writes through these types; keep the struct in step. */
_Static_assert(sizeof(enum conf_log_level) == sizeof(int), "enum storage is int");
_Static_assert(sizeof(enum conf_kv_type) == sizeof(int), "enum storage is int");

static const struct conf_enum_value log_levels[] = {
    { "err", CONF_LOG_ERR },   { "warning", CONF_LOG_WARNING }, { "notice", CONF_LOG_NOTICE },
    { "info", CONF_LOG_INFO }, { "debug", CONF_LOG_DEBUG },     { NULL, 0 },
};

static const struct conf_enum_value kv_types[] = {
    { "f16", CONF_KV_F16 },
    { "f32", CONF_KV_F32 },
    { NULL, 0 },
};

#define RELOAD CONF_F_RELOAD
#define EMPTY CONF_F_EMPTY
#define ZERO CONF_F_ZERO
#define TUNING(key, field, doc)                                                       \
    {                                                                                 \
        "tuning", key, CONF_TYPE_STRING, F(tuning.field), "", 0, 32, NULL, EMPTY, doc \
    }

static const struct conf_key schema[] = {
    /* [daemon] */
    { "daemon", "socket", CONF_TYPE_PATH, F(daemon.socket), "/run/lade/laded.sock", 0, 107, NULL, 0,
      "Unix socket to listen on when systemd does not pass one (laded.socket)" },
    { "daemon", "socket_group", CONF_TYPE_GROUP, F(daemon.socket_group), "lade", 0, 32, NULL, EMPTY,
      "Group that owns the socket; empty keeps the daemon's own group, as does this default when "
      "no such group exists (laded run by hand; it logs so)" },
    { "daemon", "socket_mode", CONF_TYPE_MODE, F(daemon.socket_mode), "0660", 0, 0777, NULL, 0,
      "Permission bits of the socket, in octal" },
    { "daemon", "queue_length", CONF_TYPE_UINT, F(daemon.queue_length), "16", 1, 4096, NULL, RELOAD,
      "Requests that may wait for the GPU, all clients together; more are refused at once" },
    { "daemon", "max_parallel", CONF_TYPE_UINT, F(daemon.max_parallel), "4", 1, 64, NULL, 0,
      "Generations run at once, their rows sharing each model step; more wait in the queue. "
      "Each needs a KV region ([model] kv_cache_size)" },
    { "daemon", "log_level", CONF_TYPE_ENUM, F(daemon.log_level), "info", 0, 0, log_levels, RELOAD,
      "Most verbose priority that is logged" },
    { "daemon", "shutdown_grace_seconds", CONF_TYPE_UINT, F(daemon.shutdown_grace_seconds), "30", 0,
      3600, NULL, RELOAD,
      "On SIGTERM, seconds that running requests may take to finish before they are cancelled" },
    { "daemon", "watchdog", CONF_TYPE_BOOL, F(daemon.watchdog), "yes", 0, 0, NULL, 0,
      "Send systemd watchdog keep-alives when the unit sets WatchdogSec=" },

    /* [model] */
    { "model", "path", CONF_TYPE_PATH, F(model.path), "/var/lib/lade/models/model.gguf", 0,
      CONF_MAX_STRING, NULL, 0, "GGUF file of the LLaMA-family model to load" },
    { "model", "context_length", CONF_TYPE_UINT, F(model.context_length), "0", 16, 1048576, NULL,
      ZERO, "Context length in tokens; 0 uses the model's own" },
    { "model", "kv_cache_type", CONF_TYPE_ENUM, F(model.kv_cache_type), "f16", 0, 0, kv_types, 0,
      "Element type of the KV cache" },
    { "model", "kv_cache_size", CONF_TYPE_SIZE, F(model.kv_cache_size), "0", 0, 1ull << 40, NULL,
      ZERO,
      "KV cache memory, all sequences; 0: max_parallel sequences of context_length positions. "
      "More keep finished prompts for reuse, fewer run fewer generations at once" },
    { "model", "tokenizer", CONF_TYPE_PATH, F(model.tokenizer), "", 0, CONF_MAX_STRING, NULL, EMPTY,
      "SentencePiece tokenizer.model to use; empty uses the vocabulary in the GGUF file" },

    /* [device] */
    { "device", "device", CONF_TYPE_STRING, F(device.device), "", 0, CONF_MAX_STRING, NULL, EMPTY,
      "Vulkan device: an index or a substring of its name; empty picks discrete, then integrated, "
      "then CPU" },
    { "device", "pipeline_cache", CONF_TYPE_PATH, F(device.pipeline_cache),
      "/var/cache/lade/pipeline.bin", 0, CONF_MAX_STRING, NULL, EMPTY,
      "File that keeps the Vulkan pipeline cache between runs; empty keeps none" },

    /* [lookahead] */
    { "lookahead", "enabled", CONF_TYPE_BOOL, F(lookahead.enabled), "yes", 0, 0, NULL, RELOAD,
      "Decode with lookahead; no decodes one token per step" },
    { "lookahead", "n", CONF_TYPE_UINT, F(lookahead.n), "0", 2, 16, NULL, RELOAD | ZERO,
      "Default n-gram size N; 0 chooses from the device" },
    { "lookahead", "w", CONF_TYPE_UINT, F(lookahead.w), "0", 1, 128, NULL, RELOAD | ZERO,
      "Default window W; 0 chooses from the device" },
    { "lookahead", "g", CONF_TYPE_UINT, F(lookahead.g), "0", 1, 128, NULL, RELOAD | ZERO,
      "Default number G of n-grams verified per step; 0 chooses from the device" },
    { "lookahead", "max_n", CONF_TYPE_UINT, F(lookahead.max_n), "8", 2, 16, NULL, RELOAD,
      "Largest N a request or the automatic choice may use, lowered to what the model runs" },
    { "lookahead", "max_w", CONF_TYPE_UINT, F(lookahead.max_w), "32", 1, 128, NULL, RELOAD,
      "Largest W a request or the automatic choice may use, lowered to what the model runs" },
    { "lookahead", "max_g", CONF_TYPE_UINT, F(lookahead.max_g), "32", 1, 128, NULL, RELOAD,
      "Largest G a request or the automatic choice may use, lowered to what the model runs" },
    { "lookahead", "bonus_token", CONF_TYPE_BOOL, F(lookahead.bonus_token), "yes", 0, 0, NULL,
      RELOAD, "A fully matched n-gram also emits the model's next token" },
    { "lookahead", "seed_pool", CONF_TYPE_BOOL, F(lookahead.seed_pool), "yes", 0, 0, NULL, RELOAD,
      "Seed the n-gram pool from the prompt and the accepted output" },

    /* [limits] */
    { "limits", "max_request_bytes", CONF_TYPE_SIZE, F(limits.max_request_bytes), "1MiB", KIB,
      64 * MIB, NULL, RELOAD, "Longest request line a client may send" },
    { "limits", "max_tokens", CONF_TYPE_UINT, F(limits.max_tokens), "4096", 1, 1048576, NULL,
      RELOAD, "Most tokens one request may generate" },
    { "limits", "default_max_tokens", CONF_TYPE_UINT, F(limits.default_max_tokens), "256", 1,
      1048576, NULL, RELOAD,
      "Tokens a request that gives no max_tokens may generate; never more than max_tokens" },
    { "limits", "max_connections", CONF_TYPE_UINT, F(limits.max_connections), "64", 1, 65536, NULL,
      RELOAD, "Most client connections open at once; more are closed with an error" },
    { "limits", "max_queued_per_connection", CONF_TYPE_UINT, F(limits.max_queued_per_connection),
      "8", 1, 4096, NULL, RELOAD, "Most requests one connection may have queued or running" },
    { "limits", "max_output_buffer_bytes", CONF_TYPE_SIZE, F(limits.max_output_buffer_bytes),
      "4MiB", 64 * KIB, GIB, NULL, RELOAD,
      "Unsent output above which laded stops reading the connection's requests until the client reads" },
    { "limits", "max_connections_per_uid", CONF_TYPE_UINT, F(limits.max_connections_per_uid), "16",
      1, 65536, NULL, RELOAD | ZERO,
      "Most connections one user may hold open (root and laded's own user are exempt); 0: no cap" },
    { "limits", "idle_timeout_seconds", CONF_TYPE_UINT, F(limits.idle_timeout_seconds), "0", 1,
      86400, NULL, RELOAD | ZERO,
      "Close a connection with no request in flight that sent nothing for this long; 0: never" },
    { "limits", "read_timeout_seconds", CONF_TYPE_UINT, F(limits.read_timeout_seconds), "30", 1,
      86400, NULL, RELOAD | ZERO,
      "Seconds a client has to finish a request line it began; then an error and the close; 0: no limit" },
    { "limits", "send_timeout_seconds", CONF_TYPE_UINT, F(limits.send_timeout_seconds), "30", 1,
      86400, NULL, RELOAD | ZERO,
      "Drop a client that has read none of its pending output for this long; 0: never" },

    /* [http] */
    { "http", "listen", CONF_TYPE_STRING, F(http.listen), "", 0, 64, NULL, EMPTY,
      "Also serve HTTP on this TCP address, HOST:PORT (127.0.0.1:8080, [::1]:8080); empty: the Unix socket only" },
    { "http", "allow_remote", CONF_TYPE_BOOL, F(http.allow_remote), "no", 0, 0, NULL, 0,
      "Allow http.listen on an address other than loopback (TCP has no peer credentials: set api_key_file)" },
    { "http", "api_key_file", CONF_TYPE_PATH, F(http.api_key_file), "", 0, CONF_MAX_STRING, NULL,
      EMPTY,
      "File whose first line is the key TCP clients must send as 'Authorization: Bearer KEY'; empty: none" },

    /* [tuning]: the keys of llm_tuning_keys (llama/llm.h), whose
     * llm_tuning_set() the daemon checks the values with; here they are
     * only short strings, empty for the device's default. "Bits": the knob
     * changes the bits of results (the order of a sum), not only speed. */
    TUNING("mm", mm,
           "Matrix kernel geometry of decode-sized steps: local,tile,rows_per_subgroup,unroll "
           "(local a power of 2 up to 1024, tile 1-64, the others 1-8; empty: the device's); speed only"),
    TUNING("mm_wide", mm_wide,
           "Matrix kernel geometry of wide steps (lookahead, prefill), "
           "as for mm; speed only"),
    TUNING("mm_one", mm_one,
           "Matrix kernel geometry of one-token steps (plain decoding), "
           "as for mm; speed only"),
    TUNING("mm_xsh", mm_xsh,
           "Floats of a matrix product's input staged in shared memory, "
           "a multiple of 4 up to 8192, 0 for none (empty: 0); speed only"),
    TUNING("mm_splitk", mm_splitk,
           "Subgroups sharing a matrix row, 1, 2 or 4 (empty: 1); "
           "changes the bits of results"),
    TUNING("fuse", fuse,
           "RoPE, the KV write and SwiGLU inside the matrix products, 0 or 1 "
           "(empty: 1); speed only"),
    TUNING("coopmat", coopmat,
           "f16 products on the matrix units where the device has them, "
           "0 or 1 (empty: 0); changes the bits of results"),
    TUNING("cm", cm,
           "Split of K on the matrix units: subgroups,columns (subgroups 1-8, columns "
           "16-256 by 16; empty: 4,64); changes the bits of results"),
    TUNING("att", att,
           "Attention: subgroups,split (subgroups a power of 2 up to 16, split "
           "16-65536 keys; empty: 4,64 on CPUs, 4,256 on GPUs); changes the bits of results"),
    TUNING("step_cache", step_cache,
           "Recorded steps kept for reuse, 1-1024, 0 to record every "
           "step (empty: 64); speed only"),
    TUNING("draw", draw, "Draw the sampled rows on the GPU, 0 or 1 (empty: 1); speed only"),
    TUNING("idot", idot,
           "Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K and Q6_K products on inputs quantised to "
           "two 8-bit planes and integer dot products, 0 or 1 (empty: 0); changes the bits of "
           "results"),
};

const struct conf_key *conf_schema(size_t *ret_n)
{
    *ret_n = sizeof(schema) / sizeof(schema[0]);
    return schema;
}

const struct conf_key *conf_find(const char *section, const char *key)
{
    if (!section || !key)
        return NULL;
    for (size_t i = 0; i < sizeof(schema) / sizeof(schema[0]); i++)
        if (strcmp(schema[i].section, section) == 0 && strcmp(schema[i].key, key) == 0)
            return &schema[i];
    return NULL;
}

_Static_assert(sizeof(schema) / sizeof(schema[0]) <= CONF_KEYS_MAX, "struct conf's set bits");

void conf_mark_set(struct conf *c, const struct conf_key *k)
{
    size_t i = (size_t)(k - schema);
    c->set[i / 8] |= (uint8_t)(1u << (i % 8));
}

bool conf_is_set(const struct conf *c, const char *section, const char *key)
{
    const struct conf_key *k = conf_find(section, key);
    size_t i = k ? (size_t)(k - schema) : 0;
    return k && (c->set[i / 8] >> (i % 8)) & 1;
}

bool conf_reloadable(const char *section, const char *key)
{
    const struct conf_key *k = conf_find(section, key);
    return k && (k->flags & CONF_F_RELOAD);
}
