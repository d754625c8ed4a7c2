/* soak: N clients x M requests against a running laded, for a bounded
 * time; prints one JSON object (completed, failed, latency p50/p99, tokens
 * per second). Built on liblade-client only. See soak.sh.
 *
 * --mixed: each request is one of eight kinds in turn (a generation
 * streamed, one not streamed, one cancelled after its first token, one
 * left by disconnecting mid-stream, a hostile line, tokenize, stats,
 * health), generations of lengths 1..max-tokens, a third sampled at their
 * own temperature and seed, a fifth without lookahead; each has an
 * expected ending, and anything else (an `internal`
 * error, a timeout, a lost connection) is a failure. With --pid, the
 * daemon gets SIGHUP every --reload-ms and its RSS and open fds are read
 * before and after (the figures of issue #20's soak). */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
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
    bool mixed;
    pid_t pid; /* the daemon, for SIGHUP, RSS and fds; 0: none */
    unsigned reload_ms;
};

struct worker {
    pthread_t th;
    const struct soak_cfg *cfg;
    double deadline;
    unsigned completed, failed;
    unsigned long long tokens;
    double *lat_ms; /* one per completed request */
    char last_error[160];
    unsigned index;
    unsigned kinds[8]; /* mixed: requests of each kind completed as expected */
    unsigned reconnects;
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

static const char *const kind_names[8] = { "generate", "generate_nostream", "cancel", "disconnect",
                                           "hostile",  "tokenize",          "stats",  "health" };

/* Lines a careless or hostile client sends; each must get an error event
 * (any code but internal) and leave the connection usable. */
static const char *const hostile[] = {
    "not json\n",
    "{\"id\":\"h\"}\n",
    "{\"id\":\"h\",\"op\":\"nope\"}\n",
    "{\"id\":\"h\",\"op\":\"generate\",\"prompt\":5}\n",
    "[1,2,3]\n",
    "{\"id\":\"h\",\"op\":\"generate\",\"prompt\":\"\xff\xfe\"}\n",
    "{\"id\":\"h\",\"op\":\"generate\",\"prompt\":\"a\",\"max_tokens\":-1}\n",
    "{\"id\":\"h\",\"op\":\"detokenize\",\"tokens\":[999999999]}\n",
    "{\"id\":\"h\",\"op\":\"cancel\",\"target\":\"nobody\"}\n",
};

static int fail_with(struct worker *w, const char *what, const struct lade_event *ev, int r)
{
    if (ev)
        snprintf(w->last_error, sizeof(w->last_error), "%s: %s: %s", what,
                 ev->code ? ev->code : "?", ev->message ? ev->message : "");
    else
        snprintf(w->last_error, sizeof(w->last_error), "%s: %s", what,
                 r == 0 ? "timeout" : strerror(-r));
    return -1;
}

/* Events until the final one of id; 0 and *ev, or -1 (recorded). */
static int final_of(struct worker *w, struct lade_client *c, const char *id, struct lade_event *ev)
{
    for (;;) {
        int r = lade_client_next(c, ev, 60000);
        if (r != 1)
            return fail_with(w, id, NULL, r);
        if (ev->type != LADE_EVENT_TOKEN && !strcmp(ev->id, id))
            return 0;
    }
}

/* After a cancel "c" of id: both answers, in either order (the cancel's
 * result comes from the event loop at once, the generation's end from the
 * scheduler): id cancelled (or done, had it won the race), and c a result
 * (or not_found, for the same reason). */
static int cancel_outcome(struct worker *w, struct lade_client *c, const char *id)
{
    struct lade_event ev;
    bool target = false, cancel = false;

    while (!target || !cancel) {
        int r = lade_client_next(c, &ev, 60000);
        if (r != 1)
            return fail_with(w, "cancel", NULL, r);
        if (ev.type == LADE_EVENT_TOKEN)
            continue;
        bool is_target = !strcmp(ev.id, id);
        bool ok = is_target ?
                          ev.type == LADE_EVENT_DONE ||
                                  (ev.type == LADE_EVENT_ERROR && !strcmp(ev.code, "cancelled")) :
                          ev.type == LADE_EVENT_RESULT ||
                                  (ev.type == LADE_EVENT_ERROR && !strcmp(ev.code, "not_found"));
        if (!ok || strcmp(ev.id, is_target ? id : "c"))
            return fail_with(w, is_target ? "cancelled generation" : "cancel", &ev, 0);
        target |= is_target;
        cancel |= !is_target;
    }
    return 0;
}

static int reconnect(struct worker *w, struct lade_client **c)
{
    int r;

    lade_client_free(*c);
    *c = NULL;
    w->reconnects++;
    r = lade_client_connect(w->cfg->socket, c);
    return r < 0 ? fail_with(w, "reconnect", NULL, r) : 0;
}

/* Kind k of the mixed soak; 0 when it ended as it should. */
static int one_mixed(struct worker *w, struct lade_client **cp, unsigned i, unsigned k)
{
    struct lade_client *c = *cp;
    struct lade_gen_opts o;
    struct lade_event ev;
    char id[32];
    int r;

    snprintf(id, sizeof(id), "m%u", i);
    lade_gen_opts_init(&o);
    /* Mixed lengths and settings: requests of every kind share steps */
    o.max_tokens = 1 + (i * 7 + w->index) % w->cfg->max_tokens;
    if (i % 3 == 1) {
        o.temperature = 0.5 + 0.1 * (i % 5);
        o.top_p = i % 2 ? 0.9 : -1;
        o.seed = i;
    }
    if (i % 5 == 2)
        o.lookahead = 0;
    o.stream = k != 1;
    switch (k) {
    case 0:
    case 1:
        if ((r = lade_client_generate(c, id, w->cfg->prompt, &o)) < 0 ||
            final_of(w, c, id, &ev) < 0)
            return r < 0 ? fail_with(w, "send", NULL, r) : -1;
        if (ev.type != LADE_EVENT_DONE)
            return fail_with(w, "generate", &ev, 0);
        w->tokens += ev.stats.generated_tokens;
        return 0;
    case 2: /* cancel after the first token: cancelled, or done if it won */
    case 3: /* disconnect after the first token */
        if ((r = lade_client_generate(c, id, w->cfg->prompt, &o)) < 0 ||
            (r = lade_client_next(c, &ev, 60000)) != 1)
            return fail_with(w, "generate", NULL, r);
        if (ev.type != LADE_EVENT_TOKEN && ev.type != LADE_EVENT_DONE)
            return fail_with(w, "generate", &ev, 0);
        if (k == 3)
            return reconnect(w, cp);
        if (ev.type == LADE_EVENT_DONE)
            return 0;
        if ((r = lade_client_cancel(c, "c", id)) < 0)
            return fail_with(w, "cancel", NULL, r);
        return cancel_outcome(w, c, id);
    case 4: {
        const char *line = hostile[i / 8 % (sizeof(hostile) / sizeof(hostile[0]))];
        if ((r = lade_client_send_raw(c, line, strlen(line))) < 0 ||
            (r = lade_client_next(c, &ev, 60000)) != 1)
            return fail_with(w, "hostile", NULL, r);
        return ev.type == LADE_EVENT_ERROR && strcmp(ev.code, "internal") ?
                       0 :
                       fail_with(w, "hostile", &ev, 0);
    }
    case 5: r = lade_client_tokenize(c, id, w->cfg->prompt, true); break;
    default: r = lade_client_simple(c, id, k == 6 ? "stats" : "health"); break;
    }
    if (r < 0 || final_of(w, c, id, &ev) < 0)
        return r < 0 ? fail_with(w, "send", NULL, r) : -1;
    return ev.type == LADE_EVENT_RESULT ? 0 : fail_with(w, kind_names[k], &ev, 0);
}

static void *work_mixed(struct worker *w)
{
    struct lade_client *c = NULL;
    int r = lade_client_connect(w->cfg->socket, &c);

    if (r < 0) {
        snprintf(w->last_error, sizeof(w->last_error), "connect: %s", strerror(-r));
        w->failed = w->cfg->requests;
        return NULL;
    }
    for (unsigned i = 0; i < w->cfg->requests && now_s() < w->deadline && c; i++) {
        unsigned k = (i + w->index) % 8; /* clients out of step */
        double t0 = now_s();
        if (one_mixed(w, &c, i, k) == 0) {
            w->lat_ms[w->completed++] = (now_s() - t0) * 1000.0;
            w->kinds[k]++;
        } else {
            w->failed++;
            if (!c || reconnect(w, &c) < 0)
                break;
        }
    }
    lade_client_free(c);
    return NULL;
}

static void *work(void *arg)
{
    struct worker *w = arg;
    struct lade_client *c = NULL;
    int r;

    if (w->cfg->mixed)
        return work_mixed(w);
    r = lade_client_connect(w->cfg->socket, &c);
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

/* The daemon seen from /proc, and the SIGHUPs sent to it. */
struct watch {
    pthread_t th;
    const struct soak_cfg *cfg;
    atomic_bool stop;
    unsigned reloads;
    long rss_start_kb, rss_end_kb, rss_max_kb;
    int fds_start, fds_end;
};

static long rss_kb(pid_t pid)
{
    char path[64], line[256];
    long kb = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    if (!(f = fopen(path, "re")))
        return -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

static int fd_count(pid_t pid)
{
    char path[64];
    struct dirent *de;
    int n = 0;
    DIR *d;

    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    if (!(d = opendir(path)))
        return -1;
    while ((de = readdir(d)))
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

static void *watch_main(void *arg)
{
    struct watch *wa = arg;

    while (!atomic_load(&wa->stop)) {
        for (unsigned t = 0; t < wa->cfg->reload_ms && !atomic_load(&wa->stop); t += 10)
            nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000 * 1000 }, NULL);
        long kb = rss_kb(wa->cfg->pid);
        wa->rss_max_kb = kb > wa->rss_max_kb ? kb : wa->rss_max_kb;
        if (!atomic_load(&wa->stop) && wa->cfg->reload_ms && kill(wa->cfg->pid, SIGHUP) == 0)
            wa->reloads++;
    }
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
        { "mixed", no_argument, NULL, 'x' },
        { "pid", required_argument, NULL, 'P' },
        { "reload-ms", required_argument, NULL, 'r' },
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
        case 'x': c->mixed = true; break;
        case 'P': c->pid = (pid_t)strtol(optarg, NULL, 10); break;
        case 'r': c->reload_ms = (unsigned)strtoul(optarg, NULL, 10); break;
        default:
            fprintf(stderr,
                    "usage: soak [--socket P] [--clients N] [--requests M] [--duration S] [--max-tokens T] [--prompt TEXT] [--no-stream] [--mixed] [--pid PID [--reload-ms MS]]\n");
            return -1;
        }
    }
    return c->clients >= 1 && c->clients <= 1024 && c->requests >= 1 ? 0 : -1;
}

/* The mixed soak's counts by kind and the daemon's figures, as JSON
 * members after the common ones. */
static void report_mixed(const struct soak_cfg *cfg, const struct worker *w, const struct watch *wa)
{
    unsigned reconnects = 0;

    printf(",\"mixed\":%s,\"by_kind\":{", cfg->mixed ? "true" : "false");
    for (unsigned k = 0; k < 8; k++) {
        unsigned n = 0;
        for (unsigned i = 0; i < cfg->clients; i++)
            n += w[i].kinds[k];
        printf("%s\"%s\":%u", k ? "," : "", kind_names[k], n);
    }
    for (unsigned i = 0; i < cfg->clients; i++)
        reconnects += w[i].reconnects;
    printf("},\"reconnects\":%u", reconnects);
    if (cfg->pid)
        printf(",\"daemon\":{\"reloads\":%u,\"rss_kb\":{\"start\":%ld,\"end\":%ld,\"max\":%ld},"
               "\"fds\":{\"start\":%d,\"end\":%d}}",
               wa->reloads, wa->rss_start_kb, wa->rss_end_kb, wa->rss_max_kb, wa->fds_start,
               wa->fds_end);
}

static void report(const struct soak_cfg *cfg, struct worker *w, const struct watch *wa,
                   double wall)
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
    for (char *p = (char *)err; *p; p++)
        if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
            *p = '\'';
    printf("{\"clients\":%u,\"requests_per_client\":%u,\"max_tokens\":%u,\"stream\":%s,"
           "\"completed\":%u,\"failed\":%u,\"wall_s\":%.3f,\"latency_ms\":{\"p50\":%.3f,\"p99\":%.3f,\"max\":%.3f},"
           "\"tokens\":%llu,\"tokens_per_s\":%.1f,\"requests_per_s\":%.1f,\"last_error\":\"%s\"",
           cfg->clients, cfg->requests, cfg->max_tokens, cfg->stream ? "true" : "false", completed,
           failed, wall, k ? all[k / 2] : 0.0,
           k ? all[(size_t)(k * 0.99) < k ? (size_t)(k * 0.99) : k - 1] : 0.0, k ? all[k - 1] : 0.0,
           tokens, wall > 0 ? tokens / wall : 0.0, wall > 0 ? completed / wall : 0.0, err);
    report_mixed(cfg, w, wa);
    printf("}\n");
    free(all);
}

int main(int argc, char **argv)
{
    struct soak_cfg cfg;
    struct watch wa = { 0 };
    struct worker *w;
    double t0;

    if (parse(argc, argv, &cfg) < 0)
        return 2;
    w = calloc(cfg.clients, sizeof(*w));
    if (!w)
        return 1;
    wa.cfg = &cfg;
    if (cfg.pid) {
        wa.rss_start_kb = wa.rss_max_kb = rss_kb(cfg.pid);
        wa.fds_start = fd_count(cfg.pid);
        if (pthread_create(&wa.th, NULL, watch_main, &wa) != 0)
            return 1;
    }
    t0 = now_s();
    for (unsigned i = 0; i < cfg.clients; i++) {
        w[i] = (struct worker){ .cfg = &cfg,
                                .deadline = t0 + cfg.duration_s,
                                .index = i,
                                .lat_ms = calloc(cfg.requests, sizeof(double)) };
        if (!w[i].lat_ms || pthread_create(&w[i].th, NULL, work, &w[i]) != 0)
            return 1;
    }
    for (unsigned i = 0; i < cfg.clients; i++)
        pthread_join(w[i].th, NULL);
    double wall = now_s() - t0;
    if (cfg.pid) {
        atomic_store(&wa.stop, true);
        pthread_join(wa.th, NULL);
        usleep(200000); /* the last connections closed on the daemon's side */
        wa.rss_end_kb = rss_kb(cfg.pid);
        wa.fds_end = fd_count(cfg.pid);
    }
    report(&cfg, w, &wa, wall);
    unsigned failed = 0;
    for (unsigned i = 0; i < cfg.clients; i++) {
        failed += w[i].failed;
        free(w[i].lat_ms);
    }
    free(w);
    return failed ? 1 : 0;
}
