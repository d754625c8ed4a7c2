/* conf: laded's configuration (schema, defaults, inih parsing, validation).
 *
 * One schema table (conf_schema()) describes every key: section, name, type,
 * default, range, whether SIGHUP can change it, and its documentation line.
 * Parsing, defaults, conf_dump(), the shipped laded.conf, laded.conf(5) and
 * the key table of docs/configuration.md all come from that table.
 *
 * Precedence: conf_defaults() < conf_load() (the file) < conf_set() (flags).
 * Cross-key rules are checked once, by conf_check(), after all three.
 *
 * This module never logs: errors go to a caller-supplied reterr buffer, and
 * ignorable problems (unknown keys, duplicates) to a conf_warn_fn. Every
 * message is one line, without a trailing newline.
 *
 * Not thread-safe: the daemon owns one struct conf and replaces or updates
 * it from one thread (see conf_apply_reload()).
 */
#ifndef LADE_CONF_CONF_H
#define LADE_CONF_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Log levels carry their syslog priorities, so they can be used as the
 * "<N>" prefix of sd-daemon.h directly. */
enum conf_log_level {
    CONF_LOG_ERR = 3,
    CONF_LOG_WARNING = 4,
    CONF_LOG_NOTICE = 5,
    CONF_LOG_INFO = 6,
    CONF_LOG_DEBUG = 7,
};

enum conf_kv_type {
    CONF_KV_F16 = 0,
    CONF_KV_F32 = 1,
};

/* Every char * below is an owned, NUL-terminated copy and is never NULL once
 * conf_defaults() succeeded; "" means "not set" where the key allows it. */
struct conf_daemon {
    char *socket; /* Unix socket path, < 108 bytes */
    char *socket_group; /* group owning the socket; "" = daemon's own */
    uint32_t socket_mode; /* permission bits, 0..0777 */
    uint32_t queue_length; /* requests waiting for the GPU, all clients */
    uint32_t max_parallel; /* generations at once, sharing steps */
    enum conf_log_level log_level; /* most verbose priority logged */
    uint32_t shutdown_grace_seconds; /* SIGTERM: time given to running requests */
    bool watchdog; /* answer systemd's WatchdogSec= */
};

struct conf_model {
    char *path; /* GGUF file */
    uint32_t context_length; /* 0 = the model's own */
    enum conf_kv_type kv_cache_type;
    uint64_t kv_cache_size; /* bytes, every sequence; 0 = max_parallel sequences */
    char *tokenizer; /* tokenizer.model; "" = the one in the GGUF */
};

struct conf_device {
    char *device; /* index or name substring; "" = automatic */
    char *pipeline_cache; /* Vulkan pipeline cache file; "" = none */
};

struct conf_lookahead {
    bool enabled; /* false: one token per step */
    uint32_t n; /* n-gram size; 0 = automatic */
    uint32_t w; /* window; 0 = automatic */
    uint32_t g; /* n-grams verified per step; 0 = automatic */
    uint32_t max_n; /* caps on what a request may ask for */
    uint32_t max_w;
    uint32_t max_g;
    bool bonus_token; /* a full match also emits the next token */
    bool seed_pool; /* seed the n-gram pool from the prompt */
};

struct conf_limits {
    uint64_t max_request_bytes; /* one request line, bytes */
    uint32_t max_tokens; /* generated tokens per request */
    uint32_t default_max_tokens; /* a request's max_tokens when it gives none */
    uint32_t max_connections; /* open client connections */
    uint32_t max_queued_per_connection; /* requests queued by one connection */
    uint64_t max_output_buffer_bytes; /* unsent output above which input is not read */
    uint32_t max_connections_per_uid; /* open connections of one uid, 0: no cap */
    uint32_t idle_timeout_seconds; /* nothing in flight and nothing received, 0: never */
    uint32_t read_timeout_seconds; /* to finish a begun request line, 0: no limit */
    uint32_t send_timeout_seconds; /* reading none of its output, 0: never */
};

/* How the GPU model computes (llama/llm.h, struct llm_tuning), as text the
 * daemon hands to llm_tuning_set(); conf/ checks only that each is a short
 * string. "" = the device's default. */
struct conf_tuning {
    char *mm; /* matrix geometry, decode-sized steps */
    char *mm_wide; /* matrix geometry, wide steps */
    char *mm_one; /* matrix geometry, one-token steps */
    char *mm_xsh; /* input floats staged in shared memory */
    char *mm_splitk; /* subgroups sharing a matrix row */
    char *fuse; /* fused epilogues */
    char *coopmat; /* matrix units */
    char *cm; /* matmul_cm.comp's split of K */
    char *att; /* attention subgroups and split */
    char *step_cache; /* recorded steps kept */
    char *draw; /* sampled rows drawn on the GPU */
    char *idot; /* the integer path of the matrix products */
};

#define CONF_KEYS_MAX 256 /* entries of the schema, at most (schema.c checks) */
/* HTTP over TCP besides the Unix socket (daemon/http.c). */
struct conf_http {
    char *listen; /* "HOST:PORT"; "" = no TCP listener */
    bool allow_remote; /* listen may be a non-loopback address */
    char *api_key_file; /* bearer key TCP clients send; "" = none */
};

struct conf {
    struct conf_daemon daemon;
    struct conf_model model;
    struct conf_device device;
    struct conf_lookahead lookahead;
    struct conf_limits limits;
    struct conf_http http;
    struct conf_tuning tuning;
    /* one bit a key, by schema index: conf_load() or conf_set() gave it a
     * value (see conf_is_set()) */
    uint8_t set[CONF_KEYS_MAX / 8];
};

/* ---- schema (read-only; for help texts and generators) ---- */

enum conf_type {
    CONF_TYPE_STRING, /* free text, UTF-8, no control characters */
    CONF_TYPE_PATH, /* file system path */
    CONF_TYPE_GROUP, /* group name */
    CONF_TYPE_BOOL, /* yes|no|true|false|on|off|1|0 */
    CONF_TYPE_UINT, /* decimal, uint32_t */
    CONF_TYPE_SIZE, /* bytes, uint64_t; suffixes K, M, G (also KiB, MiB, GiB) */
    CONF_TYPE_MODE, /* octal permission bits, uint32_t */
    CONF_TYPE_ENUM, /* one of a list of names, stored as an int */
};

enum conf_key_flags {
    CONF_F_RELOAD = 1u << 0, /* SIGHUP applies a change without a restart */
    CONF_F_EMPTY = 1u << 1, /* strings: "" is allowed */
    CONF_F_ZERO = 1u << 2, /* numbers: 0 is allowed besides min..max (automatic) */
};

struct conf_enum_value {
    const char *name;
    int value;
};

struct conf_key {
    const char *section;
    const char *key;
    enum conf_type type;
    size_t offset; /* of the field in struct conf */
    const char *def; /* default, in laded.conf syntax */
    uint64_t min; /* numbers: range; strings: unused */
    uint64_t max; /* numbers: range; strings: max length in bytes */
    const struct conf_enum_value *values; /* enums: terminated by a NULL name */
    unsigned flags; /* enum conf_key_flags */
    const char *doc; /* one line, no trailing period */
};

/* The table, in file order. Never fails. */
const struct conf_key *conf_schema(size_t *ret_n);

/* The key's entry, or NULL when there is no such key. */
const struct conf_key *conf_find(const char *section, const char *key);

/* Whether SIGHUP applies a change of this key; false for unknown keys. */
bool conf_reloadable(const char *section, const char *key);

/* Whether the file or an override gave the key its value (even one equal
 * to the default), rather than the default; false for unknown keys. */
bool conf_is_set(const struct conf *c, const char *section, const char *key);

/* ---- lifetime ---- */

/* Fills *c with the defaults of the schema, discarding whatever *c held
 * before (call conf_free() first if it owned anything).
 * Returns 0, or -ENOMEM (then *c is zeroed and safe to conf_free()). */
int conf_defaults(struct conf *c);

/* Releases the strings of *c and zeroes it. Accepts a zeroed or NULL c. */
void conf_free(struct conf *c);

/* Deep copy; *dst must not own anything. Returns 0 or -ENOMEM (*dst zeroed). */
int conf_copy(struct conf *dst, const struct conf *src);

/* ---- reading ---- */

/* Called for problems that do not stop loading, e.g.
 * "/etc/lade/laded.conf:7: unknown key 'foo' in [daemon], ignoring". */
typedef void (*conf_warn_fn)(void *user, const char *message);

/* Reads the inih file at path over the values already in *c (normally the
 * defaults). Every key is validated; a key given twice takes the last value
 * and warns. Unknown sections and keys warn (warn may be NULL) and are
 * skipped. Lines are limited to 199 bytes (libinih's buffer).
 * On error, *c is left exactly as it was and reterr holds one line naming
 * file, line and key, e.g.
 * "/etc/lade/laded.conf:12: [limits] max_tokens: '0' is out of range 1..1048576".
 * Returns 0, -ENOENT (no such file), another negative errno from opening or
 * reading the file, -EINVAL (bad value or syntax), or -ENOMEM.
 * Does not run conf_check(): overrides may still follow. */
int conf_load(struct conf *c, const char *path, conf_warn_fn warn, void *user, char *reterr,
              size_t reterr_size);

/* Sets one key from its text form, validated exactly as in the file.
 * Returns 0, -ENOENT (unknown section or key), -EINVAL (bad value; reterr
 * like "[limits] max_tokens: '0' is out of range 1..1048576"), -ENOMEM.
 * *c is unchanged on error. */
int conf_set(struct conf *c, const char *section, const char *key, const char *value, char *reterr,
             size_t reterr_size);

/* conf_set() for "SECTION.KEY=VALUE", the form of laded's --set flag.
 * Returns as conf_set(); -EINVAL also for a malformed assignment. */
int conf_set_assignment(struct conf *c, const char *assignment, char *reterr, size_t reterr_size);

/* Cross-key rules (e.g. [lookahead] n <= max_n,
 * [limits] max_queued_per_connection <= [daemon] queue_length).
 * Returns 0 or -EINVAL with the first violated rule in reterr. */
int conf_check(const struct conf *c, char *reterr, size_t reterr_size);

/* Writes *c in laded.conf syntax, every key, so that conf_load() of the
 * output yields the same configuration. Returns 0 or -EIO. */
int conf_dump(const struct conf *c, FILE *f);

/* Text form of one key's value, as conf_dump() writes it.
 * Returns the length (snprintf-like; output truncated to size). */
int conf_format_value(const struct conf *c, const struct conf_key *k, char *buf, size_t size);

/* SIGHUP: copies every reloadable key of *loaded into *running. For each
 * key that differs but needs a restart, warns
 * "[model] path changed; takes effect after a restart, ignoring".
 * Returns the number of reloadable keys that changed, or -ENOMEM (then
 * *running is unchanged). Run conf_check() on *loaded first. */
int conf_apply_reload(struct conf *running, const struct conf *loaded, conf_warn_fn warn,
                      void *user);

#endif /* LADE_CONF_CONF_H */
