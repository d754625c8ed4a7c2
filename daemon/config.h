/* daemon: the settings laded runs with. Filled from defaults, then the
 * configuration file (conf/), then command-line flags. The reloadable part
 * (log_level and lim) is replaced on SIGHUP (server.c, reload()). */
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

struct srv_limits {
    uint32_t max_connections;    /* open client connections */
    uint32_t queue_max;          /* generations waiting (not running) */
    uint32_t max_conn_requests;  /* in-flight generations per connection */
    size_t max_line;             /* bytes of one request line */
    size_t max_output;           /* unsent bytes above which a client's input is not read */
    uint32_t max_conn_per_uid;   /* open connections of one uid (root and ours exempt), 0: no cap */
    uint32_t idle_timeout_s;     /* close a connection with nothing in flight after, 0: never */
    uint32_t read_timeout_s;     /* a begun request line must end within, 0: no limit */
    uint32_t send_timeout_s;     /* drop a client that reads none of its output for, 0: never */
    uint32_t max_tokens;         /* cap on a request's max_tokens */
    uint32_t default_max_tokens; /* when the request gives none */
    uint32_t max_detok_tokens;
    bool lookahead_default;      /* lookahead when the request does not say */
    uint32_t la_n, la_w, la_g;   /* defaults, 0: the engine chooses */
    uint32_t la_n_max, la_w_max, la_g_max; /* caps on what a request asks */
};

struct srv_config {
    /* fixed for the process */
    char *socket_path;
    char *socket_group; /* NULL: the daemon's group */
    mode_t socket_mode;
    char *model_path;
    char *device;
    char *fake_engine; /* non-NULL: the toy engine with this spec (tests) */
    char *config_path; /* NULL: none */
    double grace_s;    /* SIGTERM: how long running work may finish */
    bool watchdog;     /* answer WatchdogSec= */
    /* reloadable */
    int log_level;
    struct srv_limits lim;
};

struct conf;
struct llm_tuning;

void srv_config_defaults(struct srv_config *c);
/* Settings from a checked conf (conf/conf.h); -ENOMEM. */
int srv_config_from_conf(struct srv_config *c, const struct conf *cf);
void srv_config_done(struct srv_config *c);
/* Check ranges; -EINVAL with a message in reterr (one line). */
int srv_config_validate(const struct srv_config *c, char *reterr, size_t errlen);
/* The GPU model's tuning from the [tuning] section: each key that is set,
 * through llm_tuning_set() (llama/llm.h); zero for the others. 0, or
 * -EINVAL with "[tuning] KEY: reason" in reterr. The model is not touched,
 * so --check-config and a reload can run it. */
int srv_tuning_from_conf(const struct conf *cf, struct llm_tuning *ret, char *reterr, size_t errlen);

#endif
