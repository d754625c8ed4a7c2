/* soak: N clients x M generations against a running laded, for a bounded
 * time; prints one JSON object (completed, failed, latency p50/p99, tokens
 * per second). Built on liblade-client only. See soak.sh. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ipc/lade-client.h"

struct soak_cfg {
    const char *socket;
    unsigned clients, requests, max_tokens;
    double duration_s;
    const char *prompt;
    bool stream;
};

struct worker {
    pthread_t th;
    const struct soak_cfg *cfg;
    double deadline;
    unsigned completed, failed;
    unsigned long long tokens;
    double *lat_ms; /* one per completed request */
    char last_error[160];
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* One generation; 0 on done, -1 on any failure (recorded). */
static int one(struct worker *w, struct lade_client *c, unsigned i)
{
    struct lade_gen_opts o;
    struct lade_event ev;
    char id[32];
    double t0 = now_s();

    lade_gen_opts_init(&o);
    o.max_tokens = w->cfg->max_tokens;
    o.stream = w->cfg->stream;
    snprintf(id, sizeof(id), "r%u", i);
    if (lade_client_generate(c, id, w->cfg->prompt, &o) < 0)
        return -1;
    for (;;) {
        int r = lade_client_next(c, &ev, 60000);
        if (r != 1) {
            snprintf(w->last_error, sizeof(w->last_error), "connection: %s",
                     r == 0 ? "timeout" : strerror(-r));
            return -1;
        }
        if (ev.type == LADE_EVENT_TOKEN)
            continue;
        if (ev.type == LADE_EVENT_DONE) {
            w->lat_ms[w->completed] = (now_s() - t0) * 1000.0;
            w->tokens += ev.stats.generated_tokens;
            return 0;
        }
        snprintf(w->last_error, sizeof(w->last_error), "%s: %s", ev.code, ev.message);
        return -1;
    }
}

static void *work(void *arg)
{
    struct worker *w = arg;
    struct lade_client *c = NULL;
    int r = lade_client_connect(w->cfg->socket, &c);

    if (r < 0) {
        snprintf(w->last_error, sizeof(w->last_error), "connect: %s", strerror(-r));
        w->failed = w->cfg->requests;
        return NULL;
    }
    for (unsigned i = 0; i < w->cfg->requests && now_s() < w->deadline; i++) {
        if (one(w, c, i) == 0)
            w->completed++;
        else
            w->failed++;
    }
    lade_client_free(c);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int parse(int argc, char **argv, struct soak_cfg *c)
{
    static const struct option opts[] = {
        { "socket", required_argument, NULL, 's' },
        { "clients", required_argument, NULL, 'c' },
        { "requests", required_argument, NULL, 'm' },
        { "duration", required_argument, NULL, 'd' },
        { "max-tokens", required_argument, NULL, 'n' },
        { "prompt", required_argument, NULL, 'p' },
        { "no-stream", no_argument, NULL, 'S' },
        { 0 },
    };
    int o;

    *c = (struct soak_cfg){ .clients = 8,
                            .requests = 50,
                            .max_tokens = 64,
                            .duration_s = 60,
                            .prompt = "Once upon a time",
                            .stream = true };
    while ((o = getopt_long(argc, argv, "s:c:m:d:n:p:", opts, NULL)) != -1) {
        switch (o) {
        case 's': c->socket = optarg; break;
        case 'c': c->clients = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'm': c->requests = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'd': c->duration_s = strtod(optarg, NULL); break;
        case 'n': c->max_tokens = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'p': c->prompt = optarg; break;
        case 'S': c->stream = false; break;
        default:
            fprintf(stderr,
                    "usage: soak [--socket P] [--clients N] [--requests M] [--duration S] [--max-tokens T] [--prompt TEXT] [--no-stream]\n");
            return -1;
        }
    }
    return c->clients >= 1 && c->clients <= 1024 && c->requests >= 1 ? 0 : -1;
}

static void report(const struct soak_cfg *cfg, struct worker *w, double wall)
{
    unsigned completed = 0, failed = 0, k = 0;
    unsigned long long tokens = 0;
    const char *err = "";
    double *all;

    for (unsigned i = 0; i < cfg->clients; i++) {
        completed += w[i].completed;
        failed += w[i].failed;
        tokens += w[i].tokens;
        if (w[i].last_error[0])
            err = w[i].last_error;
    }
    all = calloc(completed + 1, sizeof(*all));
    for (unsigned i = 0; all && i < cfg->clients; i++)
        for (unsigned j = 0; j < w[i].completed; j++)
            all[k++] = w[i].lat_ms[j];
    if (all)
        qsort(all, k, sizeof(*all), cmp_double);
    printf("{\"clients\":%u,\"requests_per_client\":%u,\"max_tokens\":%u,\"stream\":%s,"
           "\"completed\":%u,\"failed\":%u,\"wall_s\":%.3f,\"latency_ms\":{\"p50\":%.3f,\"p99\":%.3f,\"max\":%.3f},"
           "\"tokens\":%llu,\"tokens_per_s\":%.1f,\"requests_per_s\":%.1f,\"last_error\":\"%s\"}\n",
           cfg->clients, cfg->requests, cfg->max_tokens, cfg->stream ? "true" : "false", completed,
           failed, wall, k ? all[k / 2] : 0.0,
           k ? all[(size_t)(k * 0.99) < k ? (size_t)(k * 0.99) : k - 1] : 0.0, k ? all[k - 1] : 0.0,
           tokens, wall > 0 ? tokens / wall : 0.0, wall > 0 ? completed / wall : 0.0, err);
    free(all);
}

int main(int argc, char **argv)
{
    struct soak_cfg cfg;
    struct worker *w;
    double t0;

    if (parse(argc, argv, &cfg) < 0)
        return 2;
    w = calloc(cfg.clients, sizeof(*w));
    if (!w)
        return 1;
    t0 = now_s();
    for (unsigned i = 0; i < cfg.clients; i++) {
        w[i] = (struct worker){ .cfg = &cfg,
                                .deadline = t0 + cfg.duration_s,
                                .lat_ms = calloc(cfg.requests, sizeof(double)) };
        if (!w[i].lat_ms || pthread_create(&w[i].th, NULL, work, &w[i]) != 0)
            return 1;
    }
    for (unsigned i = 0; i < cfg.clients; i++)
        pthread_join(w[i].th, NULL);
    report(&cfg, w, now_s() - t0);
    unsigned failed = 0;
    for (unsigned i = 0; i < cfg.clients; i++) {
        failed += w[i].failed;
        free(w[i].lat_ms);
    }
    free(w);
    return failed ? 1 : 0;
}
