/* daemon: statistics. Derived rates (tokens/s, tokens per step, acceptance)
 * are computed from the counters so the two views never disagree. */
#include "daemon/stats.h"

#include <stdio.h>
#include <stdlib.h>

/* The finish reasons of a generation that ran, in the order the stats
 * list them. */
static const enum dec_finish reported[] = {
    DEC_FINISH_LENGTH, DEC_FINISH_EOS, DEC_FINISH_STOP, DEC_FINISH_CONTEXT, DEC_FINISH_CANCELLED,
};

void srv_stats_add_generation(struct srv_stats *s, uint32_t n_prompt, const struct dec_result *r)
{
    const struct dec_stats *g = &r->stats;

    if ((unsigned)r->finish <= DEC_FINISH_ERROR)
        s->finished[r->finish]++;
    s->prompt_tokens += n_prompt;
    s->generated_tokens += r->n_tokens;
    s->steps += g->steps;
    s->draft_tokens += g->draft_tokens;
    s->accepted_tokens += g->accepted_tokens;
    s->decode_ns += (uint64_t)(g->step_ms_total * 1e6);
    s->prefill_ns += (uint64_t)(g->prefill_ms * 1e6);
    s->prefix_hits += g->reused_tokens > 0;
    s->reused_tokens += g->reused_tokens;
}

struct derived {
    double tokens_per_s, tokens_per_step, acceptance, uptime_s;
    uint64_t requests, errors;
};

static struct derived derive(const struct srv_stats *s, uint64_t now_ns)
{
    struct derived d = { 0 };

    d.tokens_per_s = s->decode_ns ? s->generated_tokens / (s->decode_ns / 1e9) : 0.0;
    d.tokens_per_step = s->steps ? (double)s->generated_tokens / (double)s->steps : 0.0;
    d.acceptance = s->draft_tokens ? (double)s->accepted_tokens / (double)s->draft_tokens : 0.0;
    d.uptime_s = (now_ns - s->start_ns) / 1e9;
    for (int i = 0; i < IPC_OP__COUNT; i++)
        d.requests += s->requests[i];
    for (int i = 0; i < IPC_ERR__COUNT; i++)
        d.errors += s->errors[i];
    return d;
}

json_t *srv_stats_json(const struct srv_stats *s, uint64_t now_ns)
{
    struct derived d = derive(s, now_ns);
    json_t *by_op = json_object(), *by_err = json_object(), *by_fin = json_object();

    for (int i = 0; by_op && i < IPC_OP__COUNT; i++)
        json_object_set_new(by_op, ipc_op_name(i), json_integer((json_int_t)s->requests[i]));
    for (int i = 1; by_err && i < IPC_ERR__COUNT; i++)
        if (s->errors[i])
            json_object_set_new(by_err, ipc_err_name(i), json_integer((json_int_t)s->errors[i]));
    for (size_t i = 0; by_fin && i < sizeof(reported) / sizeof(reported[0]); i++)
        json_object_set_new(by_fin, dec_finish_name(reported[i]),
                            json_integer((json_int_t)s->finished[reported[i]]));
    const struct srv_engine_load *l = &s->load;
    json_t *batch = json_pack(
            "{s:i, s:i, s:I, s:I, s:{s:I, s:I, s:I}, s:I, s:I, s:I, s:I}", "kv_sequences",
            (int)l->seqs, "kv_sequences_cached", (int)l->seqs_cached, "model_steps",
            (json_int_t)l->steps, "sequence_steps", (json_int_t)l->parts, "rows", "plain",
            (json_int_t)l->rows_plain, "lookahead", (json_int_t)l->rows_lookahead, "prefill",
            (json_int_t)l->rows_prefill, "prefix_hits", (json_int_t)s->prefix_hits, "reused_tokens",
            (json_int_t)s->reused_tokens, "prefix_copies", (json_int_t)l->prefix_copies,
            "copied_tokens", (json_int_t)l->copied_tokens);
    return json_pack("{s:f, s:I, s:I, s:I, s:o, s:I, s:o, s:o, s:I, s:I, s:I, s:I, s:I,"
                     " s:f, s:f, s:f, s:i, s:i, s:i, s:I, s:o}",
                     "uptime_s", d.uptime_s, "connections_total", (json_int_t)s->connections_total,
                     "connections_rejected", (json_int_t)s->connections_rejected, "requests_total",
                     (json_int_t)d.requests, "requests", by_op, "errors_total",
                     (json_int_t)d.errors, "errors", by_err, "generations", by_fin, "prompt_tokens",
                     (json_int_t)s->prompt_tokens, "generated_tokens",
                     (json_int_t)s->generated_tokens, "steps", (json_int_t)s->steps, "draft_tokens",
                     (json_int_t)s->draft_tokens, "accepted_tokens", (json_int_t)s->accepted_tokens,
                     "tokens_per_s", d.tokens_per_s, "tokens_per_step", d.tokens_per_step,
                     "acceptance", d.acceptance, "queue_depth", (int)s->queue_depth, "running",
                     (int)s->running, "connections", (int)s->connections, "dropped_slow_clients",
                     (json_int_t)s->dropped_slow_clients, "batch", batch);
}

static void metric(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP lade_%s %s\n# TYPE lade_%s %s\n", name, help, name, type);
}

static void prom_labelled(FILE *f, const struct srv_stats *s)
{
    metric(f, "requests_total", "counter", "Requests accepted, by op.");
    for (int i = 0; i < IPC_OP__COUNT; i++)
        fprintf(f, "lade_requests_total{op=\"%s\"} %llu\n", ipc_op_name(i),
                (unsigned long long)s->requests[i]);
    metric(f, "errors_total", "counter", "Error events sent, by code.");
    for (int i = 1; i < IPC_ERR__COUNT; i++)
        fprintf(f, "lade_errors_total{code=\"%s\"} %llu\n", ipc_err_name(i),
                (unsigned long long)s->errors[i]);
    metric(f, "generations_total", "counter", "Finished generations, by finish reason.");
    for (size_t i = 0; i < sizeof(reported) / sizeof(reported[0]); i++)
        fprintf(f, "lade_generations_total{finish_reason=\"%s\"} %llu\n",
                dec_finish_name(reported[i]), (unsigned long long)s->finished[reported[i]]);
}

char *srv_stats_prometheus(const struct srv_stats *s, uint64_t now_ns)
{
    struct derived d = derive(s, now_ns);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    if (!f)
        return NULL;
    prom_labelled(f, s);
#define C(name, help, v) \
    metric(f, name, "counter", help), fprintf(f, "lade_%s %llu\n", name, (unsigned long long)(v))
#define G(name, help, fmt, v) \
    metric(f, name, "gauge", help), fprintf(f, "lade_%s " fmt "\n", name, v)
    C("connections_total", "Client connections accepted.", s->connections_total);
    C("connections_rejected_total", "Connections refused (too many).", s->connections_rejected);
    C("slow_clients_dropped_total", "Clients dropped for not reading.", s->dropped_slow_clients);
    C("prompt_tokens_total", "Prompt tokens prefilled.", s->prompt_tokens);
    C("generated_tokens_total", "Tokens generated.", s->generated_tokens);
    C("steps_total", "Decoding steps.", s->steps);
    C("draft_tokens_total", "Lookahead candidate tokens verified.", s->draft_tokens);
    C("accepted_tokens_total", "Lookahead candidate tokens accepted.", s->accepted_tokens);
    metric(f, "decode_seconds_total", "counter", "Time spent decoding.");
    fprintf(f, "lade_decode_seconds_total %.6f\n", s->decode_ns / 1e9);
    G("tokens_per_second", "Generated tokens per decoding second.", "%.3f", d.tokens_per_s);
    G("tokens_per_step", "Generated tokens per decoding step.", "%.4f", d.tokens_per_step);
    G("acceptance_ratio", "Accepted over verified lookahead tokens.", "%.4f", d.acceptance);
    G("queue_depth", "Generations waiting.", "%u", s->queue_depth);
    G("running", "Generations running.", "%u", s->running);
    G("connections", "Open client connections.", "%u", s->connections);
    C("prefix_cache_hits_total", "Generations that reused cached prompt tokens.", s->prefix_hits);
    C("prefix_cache_reused_tokens_total", "Prompt tokens not prefilled thanks to the cache.",
      s->reused_tokens);
    C("prefix_cache_copies_total", "Prompt prefixes copied from another sequence's KV.",
      s->load.prefix_copies);
    C("prefix_cache_copied_tokens_total", "Tokens of those copies.", s->load.copied_tokens);
    C("model_steps_total", "Model steps, every sequence's rows together.", s->load.steps);
    C("sequence_steps_total", "Sequences' steps run inside model steps.", s->load.parts);
    metric(f, "step_rows_total", "counter", "Rows of model steps, by kind.");
    fprintf(f, "lade_step_rows_total{kind=\"plain\"} %llu\n",
            (unsigned long long)s->load.rows_plain);
    fprintf(f, "lade_step_rows_total{kind=\"lookahead\"} %llu\n",
            (unsigned long long)s->load.rows_lookahead);
    fprintf(f, "lade_step_rows_total{kind=\"prefill\"} %llu\n",
            (unsigned long long)s->load.rows_prefill);
    G("kv_sequences", "KV cache regions, one a sequence.", "%u", s->load.seqs);
    G("kv_sequences_cached", "Idle KV regions holding a prompt for reuse.", "%u",
      s->load.seqs_cached);
    G("uptime_seconds", "Seconds since start.", "%.3f", d.uptime_s);
#undef C
#undef G
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}
