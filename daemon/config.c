/* daemon: defaults and validation of laded's settings. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "daemon/config.h"
#include "daemon/log.h"
#include "llama/llm.h"

void srv_config_defaults(struct srv_config *c)
{
    *c = (struct srv_config){
        .socket_mode = 0660,
        .grace_s = 10.0,
        .watchdog = true,
        .log_level = SRV_LOG_INFO,
        .lim = {
            .max_connections = 64,
            .queue_max = 32,
            .max_conn_requests = 16,
            .max_line = 1 << 20,
            .max_output = 4 << 20,
            .max_conn_per_uid = 16,
            .read_timeout_s = 30,
            .send_timeout_s = 30,
            .max_tokens = 4096,
            .default_max_tokens = 256,
            .max_detok_tokens = 65536,
            .lookahead_default = true,
            .la_n_max = 8,
            .la_w_max = 32,
            .la_g_max = 32,
        },
    };
}

void srv_config_done(struct srv_config *c)
{
    free(c->socket_path);
    free(c->socket_group);
    free(c->model_path);
    free(c->device);
    free(c->fake_engine);
    free(c->config_path);
    memset(c, 0, sizeof(*c));
}

int srv_config_validate(const struct srv_config *c, char *reterr, size_t errlen)
{
    const struct srv_limits *l = &c->lim;
    const char *what = NULL;

    if (l->max_connections < 1 || l->max_connections > SRV_CONN_HARD_MAX)
        what = "max_connections must be in [1, 65536]";
    else if (l->queue_max < 1 || l->queue_max > SRV_QUEUE_HARD_MAX)
        what = "queue_max must be in [1, 4096]";
    else if (l->max_conn_requests < 1 || l->max_conn_requests > SRV_CONN_REQS_MAX)
        what = "max_queued_per_connection must be in [1, 4096]";
    else if (l->max_line < 1024 || l->max_line > (64u << 20))
        what = "max_request_bytes must be in [1 KiB, 64 MiB]";
    else if (l->max_output < 64 * 1024 || l->max_output > (1u << 30))
        what = "max_output_buffer_bytes must be in [64 KiB, 1 GiB]";
    else if (l->max_tokens < 1 || l->default_max_tokens < 1 || l->default_max_tokens > l->max_tokens)
        what = "default_max_tokens must be in [1, max_tokens]";
    else if (l->la_n_max < 2 || l->la_n_max > 16 || l->la_w_max < 1 || l->la_w_max > 128 ||
             l->la_g_max < 1 || l->la_g_max > 128)
        what = "lookahead caps must be n in [2, 16], w in [1, 128], g in [1, 128]";
    else if (c->grace_s < 0 || c->grace_s > 3600)
        what = "grace must be in [0, 3600] s";
    else if (c->log_level < 0 || c->log_level > 7)
        what = "log level must be in [0, 7]";
    if (!what)
        return 0;
    snprintf(reterr, errlen, "%s", what);
    return -EINVAL;
}

static int dup_or_null(char **dst, const char *src)
{
    free(*dst);
    *dst = NULL;
    if (!src || !*src)
        return 0;
    *dst = strdup(src);
    return *dst ? 0 : -ENOMEM;
}

int srv_config_from_conf(struct srv_config *c, const struct conf *cf)
{
    struct srv_limits *l = &c->lim;
    int r = 0;

    if ((r = dup_or_null(&c->socket_path, cf->daemon.socket)) < 0 ||
        (r = dup_or_null(&c->socket_group, cf->daemon.socket_group)) < 0 ||
        (r = dup_or_null(&c->model_path, cf->model.path)) < 0 ||
        (r = dup_or_null(&c->device, cf->device.device)) < 0)
        return r;
    c->socket_mode = (mode_t)cf->daemon.socket_mode;
    c->grace_s = cf->daemon.shutdown_grace_seconds;
    c->watchdog = cf->daemon.watchdog;
    c->log_level = (int)cf->daemon.log_level;
    l->queue_max = cf->daemon.queue_length;
    l->max_line = (size_t)cf->limits.max_request_bytes;
    l->max_tokens = cf->limits.max_tokens;
    if (l->default_max_tokens > l->max_tokens)
        l->default_max_tokens = l->max_tokens;
    l->max_connections = cf->limits.max_connections;
    l->max_conn_requests = cf->limits.max_queued_per_connection;
    l->max_output = (size_t)cf->limits.max_output_buffer_bytes;
    l->max_conn_per_uid = cf->limits.max_connections_per_uid;
    l->idle_timeout_s = cf->limits.idle_timeout_seconds;
    l->read_timeout_s = cf->limits.read_timeout_seconds;
    l->send_timeout_s = cf->limits.send_timeout_seconds;
    l->lookahead_default = cf->lookahead.enabled;
    l->la_n = cf->lookahead.n;
    l->la_w = cf->lookahead.w;
    l->la_g = cf->lookahead.g;
    l->la_n_max = cf->lookahead.max_n;
    l->la_w_max = cf->lookahead.max_w;
    l->la_g_max = cf->lookahead.max_g;
    return 0;
}

int srv_tuning_from_conf(const struct conf *cf, struct llm_tuning *ret, char *reterr, size_t errlen)
{
    struct llm_tuning t = { 0 };

    for (const char *const *key = llm_tuning_keys; *key; key++) {
        const struct conf_key *k = conf_find("tuning", *key);
        char value[64], why[256];

        if (!k) { /* conf/schema.c lacks a key that llama/ has */
            snprintf(reterr, errlen, "[tuning] %s: not a configuration key", *key);
            return -EINVAL;
        }
        conf_format_value(cf, k, value, sizeof(value));
        if (value[0] && llm_tuning_set(&t, *key, value, why, sizeof(why)) < 0) {
            snprintf(reterr, errlen, "[tuning] %s: %s", *key, why);
            return -EINVAL;
        }
    }
    *ret = t;
    return 0;
}
