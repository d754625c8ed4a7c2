/* daemon: counters, a JSON view and a Prometheus text exposition. The
 * struct is plain data; the server guards it with its lock. */
#ifndef LADE_DAEMON_STATS_H
#define LADE_DAEMON_STATS_H

#include <stdint.h>

#include <jansson.h>

#include "daemon/engine.h"
#include "ipc/ipc.h"

struct srv_stats {
    uint64_t start_ns;
    uint64_t connections_total;
    uint64_t connections_rejected;
    uint64_t requests[IPC_OP__COUNT]; /* accepted requests by op */
    uint64_t errors[IPC_ERR__COUNT]; /* error events sent by code */
    uint64_t finished[DEC_FINISH_ERROR + 1]; /* generations by enum dec_finish */
    uint64_t prompt_tokens;
    uint64_t generated_tokens;
    uint64_t steps;
    uint64_t draft_tokens;
    uint64_t accepted_tokens;
    uint64_t decode_ns;
    uint64_t prefill_ns;
    uint64_t dropped_slow_clients;
    uint64_t prefix_hits; /* generations that reused cached prompt tokens */
    uint64_t reused_tokens; /* prompt tokens not prefilled thanks to the cache */
    /* gauges, set when a snapshot is taken (srv_stats_take) */
    uint32_t queue_depth;
    uint32_t running;
    uint32_t connections;
    struct srv_engine_load load; /* the engine's (zero where it says nothing) */
};

/* Count a generation that ran (the engine's generate returned 0) of
 * n_prompt prompt tokens. */
void srv_stats_add_generation(struct srv_stats *s, uint32_t n_prompt, const struct dec_result *r);
/* Counters as a JSON object (new reference, NULL on ENOMEM). */
json_t *srv_stats_json(const struct srv_stats *s, uint64_t now_ns);
/* Prometheus text format 0.0.4; malloc'd, NULL on ENOMEM. */
char *srv_stats_prometheus(const struct srv_stats *s, uint64_t now_ns);

#endif
