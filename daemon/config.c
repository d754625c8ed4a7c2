/* daemon: laded's settings from the configuration (conf/ owns their
 * defaults and ranges), and the lookahead caps fitted to the model. */
#include "daemon/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "daemon/engine.h"
#include "daemon/log.h"
#include "daemon/socket.h"
#include "decoding/dec.h"
#include "llama/llm.h"

void srv_config_done(struct srv_config *c)
{
    free(c->socket_path);
    free(c->socket_group);
    free(c->model_path);
    free(c->device);
    free(c->http_listen);
    free(c->http_key_file);
    memset(c, 0, sizeof(*c));
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
        (r = dup_or_null(&c->device, cf->device.device)) < 0 ||
        (r = dup_or_null(&c->http_listen, cf->http.listen)) < 0 ||
        (r = dup_or_null(&c->http_key_file, cf->http.api_key_file)) < 0)
        return r;
    c->http_allow_remote = cf->http.allow_remote;
    c->socket_mode = (mode_t)cf->daemon.socket_mode;
    c->grace_s = cf->daemon.shutdown_grace_seconds;
    c->watchdog = cf->daemon.watchdog;
    c->max_parallel = cf->daemon.max_parallel;
    c->log_level = (int)cf->daemon.log_level;
    l->queue_max = cf->daemon.queue_length;
    l->max_line = (size_t)cf->limits.max_request_bytes;
    l->max_tokens = cf->limits.max_tokens;
    l->default_max_tokens = cf->limits.default_max_tokens < l->max_tokens ?
                                    cf->limits.default_max_tokens :
                                    l->max_tokens;
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
    l->bonus_token = cf->lookahead.bonus_token;
    l->seed_pool = cf->lookahead.seed_pool;
    return 0;
}

static uint32_t at_most(uint32_t v, uint32_t cap)
{
    return v > cap ? cap : v;
}

void srv_limits_fit(struct srv_limits *l, uint32_t max_rows)
{
    struct dec_caps c = { .max_n = l->la_n_max, .max_w = l->la_w_max, .max_g = l->la_g_max };

    if (!max_rows)
        return;
    if (dec_caps_fit(&c, max_rows) < 0) {
        srv_log(SRV_LOG_WARNING,
                "The model takes %u rows a step, too few for any lookahead: lookahead is off "
                "unless a request asks for it, ignoring",
                max_rows);
        l->lookahead_default = false;
    } else if (c.max_n != l->la_n_max || c.max_w != l->la_w_max || c.max_g != l->la_g_max) {
        srv_log(SRV_LOG_NOTICE,
                "[lookahead] max_n, max_w, max_g (%u, %u, %u) need %u rows a step, the model "
                "takes %u: requests may use up to (%u, %u, %u)",
                l->la_n_max, l->la_w_max, l->la_g_max,
                dec_lookahead_rows(l->la_n_max < 3 ? 3 : l->la_n_max, l->la_w_max, l->la_g_max),
                max_rows, c.max_n, c.max_w, c.max_g);
    }
    l->la_n_max = c.max_n;
    l->la_w_max = c.max_w;
    l->la_g_max = c.max_g;
    l->la_n = at_most(l->la_n, c.max_n);
    l->la_w = at_most(l->la_w, c.max_w);
    l->la_g = at_most(l->la_g, c.max_g);
}

struct dec_caps srv_limits_caps(const struct srv_limits *l)
{
    return (struct dec_caps){
        .max_n = l->la_n_max < 3 ? 3 : l->la_n_max,
        .max_w = l->la_w_max,
        .max_g = l->la_g_max,
        .max_tokens = l->max_tokens,
        .max_stop = SRV_STOP_MAX,
        .max_stop_len = IPC_STOP_LEN_MAX,
    };
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
