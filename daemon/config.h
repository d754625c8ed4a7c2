/* daemon: the settings laded runs with, as the event loop reads them.
 * Every value comes from the checked configuration (conf/, which owns the
 * defaults and ranges); the reloadable part (log_level, grace_s and lim)
 * is replaced on SIGHUP (server.c, reload()). The scheduler reads none of
 * it: a request carries the values it was accepted with. */
#ifndef LADE_DAEMON_CONFIG_H
#define LADE_DAEMON_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SRV_DEFAULT_SOCKET "/run/lade/laded.sock"
#define SRV_QUEUE_HARD_MAX 4096
#define SRV_CONN_HARD_MAX 65536
#define SRV_CONN_REQS_MAX 4096 /* in-flight generations per connection, hard */
#define SRV_DETOK_TOKENS_MAX 65536 /* ids in one detokenize request */

struct srv_limits {
    uint32_t max_connections; /* open client connections */
    uint32_t queue_max; /* generations waiting (not running) */
    uint32_t max_conn_requests; /* in-flight generations per connection */
    size_t max_line; /* bytes of one request line */
    size_t max_output; /* unsent bytes above which a client's input is not read */
    uint32_t max_conn_per_uid; /* open connections of one uid (root and ours exempt), 0: no cap */
    uint32_t idle_timeout_s; /* close a connection with nothing in flight after, 0: never */
    uint32_t read_timeout_s; /* a begun request line must end within, 0: no limit */
    uint32_t send_timeout_s; /* drop a client that reads none of its output for, 0: never */
    uint32_t max_tokens; /* cap on a request's max_tokens */
    uint32_t default_max_tokens; /* when the request gives none, <= max_tokens */
    bool lookahead_default; /* lookahead when the request does not say */
    uint32_t la_n, la_w, la_g; /* defaults, 0: the engine chooses */
    uint32_t la_n_max, la_w_max, la_g_max; /* caps on what a request asks, fitted to the model */
    bool bonus_token, seed_pool; /* lookahead features, dec_params.bonus and .seed_pool */
};

struct srv_config {
    /* fixed for the process */
    char *socket_path;
    char *socket_group; /* NULL: the daemon's group */
    mode_t socket_mode;
    char *model_path;
    char *device;
    char *http_listen; /* "HOST:PORT" of the TCP listener for HTTP; NULL: none */
    bool http_allow_remote; /* http_listen may be a non-loopback address */
    char *http_key_file; /* bearer key of TCP clients; NULL: none */
    bool watchdog; /* answer WatchdogSec= */
    uint32_t max_parallel; /* generations at once (the engine may run fewer) */
    /* reloadable */
    double grace_s; /* SIGTERM: how long running work may finish */
    int log_level;
    struct srv_limits lim;
};

struct conf;
struct dec_caps;
struct llm_tuning;

/* Settings from a checked conf (conf/conf.h) into a zeroed *c, or over
 * what an earlier call filled; -ENOMEM. The lookahead caps are the
 * configured ones until srv_limits_fit(). */
int srv_config_from_conf(struct srv_config *c, const struct conf *cf);
void srv_config_done(struct srv_config *c);
/* Lowers the lookahead caps (and the configured defaults above them) to
 * what a model taking max_rows rows a step runs at all three maxima
 * (dec_caps_fit()); logs what it lowered. max_rows 0: no bound. */
void srv_limits_fit(struct srv_limits *l, uint32_t max_rows);
/* The caps requests are checked against (dec_params_validate()), as the
 * decoder counts them: an N of 2 runs as 3. */
struct dec_caps srv_limits_caps(const struct srv_limits *l);
/* The GPU model's tuning from the [tuning] section: each key that is set,
 * through llm_tuning_set() (llama/llm.h); zero for the others. 0, or
 * -EINVAL with "[tuning] KEY: reason" in reterr. The model is not touched,
 * so --check-config and a reload can run it. */
int srv_tuning_from_conf(const struct conf *cf, struct llm_tuning *ret, char *reterr,
                         size_t errlen);

#endif
