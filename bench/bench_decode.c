/* lade-bench: decoding speed and lookahead compression on a model and a
 * prompt set, on one Vulkan device, all figures from one run of one build.
 *
 *   lade-bench greedy    plain greedy: tokens/s, prefill tokens/s, GPU ms per
 *                        step (timestamp queries), achieved weight bandwidth;
 *                        with --temp, plain sampling at that temperature
 *                        (and the tokens the GPU drew, LADE_DRAW=0: none)
 *   lade-bench lookahead per prompt: plain greedy, lookahead as lade runs it
 *                        (bonus token, pool seeding) and as the reference
 *                        algorithm (neither), at one (N,W,G); with --temp the
 *                        same three sampled with one seed. Tokens per step and
 *                        per pass, tokens/s, speedup over plain, exactness
 *   lade-bench device    the device lade would choose: name, type, a slug for
 *                        result folders (one JSON line on stdout)
 *
 * Exactness is checked, never assumed: a lookahead run whose tokens differ
 * from the plain run's (same temperature, same seed) is reported with the
 * index of the first difference and makes the exit status 4.
 * Exit status: 0 fine, 1 a model or generation failed, 2 bad usage,
 * 4 an exactness mismatch (the JSON is written all the same). */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "decoding/dec.h"
#include "llama/llm.h"
#include "tools/tuning-env.h"
#include "vk/vkr.h"

#define MAX_MODELS 8
#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define EXIT_MISMATCH 4

struct args {
    const char *cmd;
    const char *models[MAX_MODELS];
    unsigned n_models;
    const char *prompts, *device, *json;
    size_t limit; /* 0: every prompt */
    uint32_t max_tokens; /* 0: each prompt's own max_tokens */
    uint32_t n_ctx;
    bool nwg_set, adaptive;
    uint32_t n, w, g;
    float temp; /* 0: greedy only */
    uint32_t top_k; /* sampling knobs of the sampled runs */
    float top_p, penalty;
    bool no_reference; /* lookahead: skip the reference-mode runs */
    uint64_t seed;
};

/* The sampling knobs of the command line on p (temperature aside). */
static void set_knobs(const struct args *a, struct dec_params *p)
{
    p->top_k = a->top_k;
    p->top_p = a->top_p;
    p->repeat_penalty = a->penalty;
}

struct prompt {
    char *id;
    char *text;
    uint32_t max_tokens;
};

struct prompt_set {
    struct prompt *v;
    size_t n;
};

/* One loaded model behind a thin model step that adds up the GPU time and
 * the host's recording time of every step (llm_model_last_step_gpu_ms and
 * _host_ms only know the last one). */
struct bench {
    struct llm_model *m;
    struct dec_model inner;
    struct dec_model dm;
    struct dec_session *sess;
    double gpu_ms, rec_ms;
    uint32_t gpu_steps;
};

/* One generation. */
struct run {
    int32_t *tok; /* emitted tokens */
    uint32_t n, cap;
    struct dec_result r;
    int err;
    bool skipped; /* not run (--no-reference) */
    double wall_ms, gen_ms, tps, gpu_ms_step;
    double rec_ms_step; /* host: describing the rows and recording (or finding) the step */
    uint64_t reused; /* steps that reused a recorded command buffer */
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---- Model step with GPU time accounting --------------------------------- */

static int shim_prefill(void *ctx, const int32_t *t, uint32_t n, int32_t *am, float *lg)
{
    struct bench *b = ctx;
    return b->inner.prefill(b->inner.ctx, t, n, am, lg);
}

static int shim_step(void *ctx, const struct dec_row *rows, uint32_t n, int32_t *am, float *lg)
{
    struct bench *b = ctx;
    int err = b->inner.step(b->inner.ctx, rows, n, am, lg);
    if (!err) {
        double h[3];
        llm_model_last_step_host_ms(b->m, h);
        b->gpu_ms += llm_model_last_step_gpu_ms(b->m);
        b->rec_ms += h[0];
        b->gpu_steps++;
    }
    return err;
}

static int shim_commit(void *ctx, const uint32_t *rows, uint32_t n)
{
    struct bench *b = ctx;
    return b->inner.commit(b->inner.ctx, rows, n);
}

static int shim_rewind(void *ctx, uint32_t n_keep)
{
    struct bench *b = ctx;
    return b->inner.rewind(b->inner.ctx, n_keep);
}

static uint32_t shim_n_past(void *ctx)
{
    struct bench *b = ctx;
    return b->inner.n_past(b->inner.ctx);
}

static int shim_set_draw(void *ctx, const struct dec_draw_params *d)
{
    struct bench *b = ctx;
    return b->inner.set_draw(b->inner.ctx, d);
}

static void bench_free(struct bench *b)
{
    dec_session_free(b->sess);
    llm_model_free(b->m);
    *b = (struct bench){ 0 };
}

/* Load the model and make a session whose caps admit every request we make. */
static int bench_load(const struct args *a, const char *path, struct bench *b, char *err,
                      size_t len)
{
    struct llm_model_opts mo = { .path = path, .device = a->device, .n_ctx = a->n_ctx };
    *b = (struct bench){ 0 };
    int e = lade_tuning_from_env(&mo.tuning, err, len);
    e = e ? e : llm_model_load(&mo, &b->m, err, len);
    if (e)
        return e;
    llm_model_dec(b->m, &b->inner);
    b->dm = b->inner;
    b->dm.ctx = b;
    b->dm.prefill = shim_prefill;
    b->dm.step = shim_step;
    b->dm.commit = shim_commit;
    b->dm.rewind = shim_rewind;
    b->dm.n_past = shim_n_past;
    b->dm.set_draw = b->inner.set_draw ? shim_set_draw : NULL;
    /* Every run prefills its whole prompt, so that runs compare: no
     * prefix reuse (and the inner model's reuse would be handed the
     * shim's context). */
    b->dm.reuse = NULL;
    struct dec_caps caps = dec_caps_default();
    caps.max_n = DEC_N_LIMIT;
    caps.max_w = a->w > 64 ? a->w : 64;
    caps.max_g = a->g > 64 ? a->g : 64;
    caps.max_tokens = 1u << 16;
    e = dec_session_new(&b->dm, &caps, &b->sess);
    if (e) {
        snprintf(err, len, "dec_session_new: %s", strerror(-e));
        bench_free(b);
    }
    return e;
}

/* ---- One generation ------------------------------------------------------ */

static int collect(void *user, const int32_t *t, uint32_t n)
{
    struct run *r = user;
    for (uint32_t i = 0; i < n && r->n < r->cap; i++)
        r->tok[r->n++] = t[i];
    return 0;
}

static int run_gen(struct bench *b, const int32_t *prompt, uint32_t n_prompt,
                   const struct dec_params *p, struct run *r)
{
    free(r->tok);
    *r = (struct run){ .cap = p->max_tokens + DEC_N_LIMIT };
    r->tok = malloc(r->cap * sizeof(*r->tok));
    if (!r->tok)
        return r->err = -ENOMEM;
    b->gpu_ms = 0;
    b->rec_ms = 0;
    b->gpu_steps = 0;
    uint64_t reused0 = llm_model_reused_steps(b->m);
    double t0 = now_ms();
    int e = dec_generate(b->sess, prompt, n_prompt, p, NULL, collect, r, &r->r);
    r->wall_ms = now_ms() - t0;
    r->gen_ms = r->wall_ms - r->r.stats.prefill_ms;
    r->tps = r->gen_ms > 0 ? r->r.stats.tokens * 1e3 / r->gen_ms : 0;
    r->gpu_ms_step = b->gpu_steps ? b->gpu_ms / b->gpu_steps : 0;
    r->rec_ms_step = b->gpu_steps ? b->rec_ms / b->gpu_steps : 0;
    r->reused = llm_model_reused_steps(b->m) - reused0;
    if (e && r->r.finish != DEC_FINISH_CONTEXT)
        r->err = e;
    return r->err;
}

/* Index of the first token where two runs differ, or -1 when identical. */
static long first_diff(const struct run *x, const struct run *y)
{
    uint32_t n = x->n < y->n ? x->n : y->n;
    for (uint32_t i = 0; i < n; i++)
        if (x->tok[i] != y->tok[i])
            return (long)i;
    return x->n == y->n && x->r.finish == y->r.finish ? -1 : (long)n;
}

/* ---- Prompts ------------------------------------------------------------- */

static void prompts_free(struct prompt_set *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i].id);
        free(s->v[i].text);
    }
    free(s->v);
    *s = (struct prompt_set){ 0 };
}

static int prompt_add(struct prompt_set *s, const char *id, const char *text, uint32_t max_tokens)
{
    struct prompt *v = realloc(s->v, (s->n + 1) * sizeof(*v));
    if (!v)
        return -ENOMEM;
    s->v = v;
    v[s->n] = (struct prompt){ strdup(id), strdup(text), max_tokens };
    if (!v[s->n].id || !v[s->n].text)
        return -ENOMEM;
    s->n++;
    return 0;
}

/* JSON lines {"id","prompt","max_tokens"}; no file: BOS alone, 256 tokens. */
static int prompts_load(const char *path, size_t limit, struct prompt_set *ret)
{
    *ret = (struct prompt_set){ 0 };
    if (!path)
        return prompt_add(ret, "bos", "", 256);
    FILE *f = fopen(path, "r");
    if (!f)
        return fprintf(stderr, "lade-bench: cannot open '%s': %s\n", path, strerror(errno)), -errno;
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    int e = 0;
    while (!e && (limit == 0 || ret->n < limit) && getline(&line, &cap, f) > 0) {
        lineno++;
        if (line[strspn(line, " \t\r\n")] == '\0')
            continue;
        json_error_t je;
        json_t *o = json_loads(line, 0, &je);
        const char *id = json_string_value(json_object_get(o, "id"));
        const char *text = json_string_value(json_object_get(o, "prompt"));
        json_int_t mt = json_integer_value(json_object_get(o, "max_tokens"));
        if (!id || !text) {
            fprintf(stderr, "lade-bench: '%s' line %zu: want {\"id\",\"prompt\"}\n", path, lineno);
            e = -EINVAL;
        } else {
            e = prompt_add(ret, id, text, mt > 0 ? (uint32_t)mt : 256);
        }
        json_decref(o);
    }
    free(line);
    fclose(f);
    if (!e && ret->n == 0)
        fprintf(stderr, "lade-bench: no prompts in '%s'\n", path), e = -EINVAL;
    if (e)
        prompts_free(ret);
    return e;
}

static int32_t *encode(struct bench *b, const char *text, uint32_t *ret_n)
{
    size_t len = strlen(text), n = 0;
    int32_t *t = malloc((len + 2) * sizeof(*t));
    const struct llm_tok *tok = llm_model_tok(b->m);
    unsigned flags = llm_tok_add_bos(tok) ? LLM_TOK_ADD_BOS : 0;
    if (t && llm_tok_encode(tok, text, len, flags, t, len + 2, &n) == 0) {
        *ret_n = (uint32_t)n;
        return t;
    }
    free(t);
    return NULL;
}

/* ---- Statistics and JSON helpers ----------------------------------------- */

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static double mean_of(const double *v, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += v[i];
    return n ? s / n : 0;
}

static double median_of(const double *v, size_t n)
{
    if (!n)
        return 0;
    double *c = malloc(n * sizeof(*c));
    if (!c)
        return NAN;
    memcpy(c, v, n * sizeof(*c));
    qsort(c, n, sizeof(*c), cmp_double);
    double m = n % 2 ? c[n / 2] : (c[n / 2 - 1] + c[n / 2]) / 2;
    free(c);
    return m;
}

/* Round to 4 decimals so the JSON stays readable. */
static json_t *jr(double x)
{
    return json_real(isfinite(x) ? round(x * 1e4) / 1e4 : 0);
}

static json_t *mean_median(const double *v, size_t n)
{
    return json_pack("{s:o,s:o}", "mean", jr(mean_of(v, n)), "median", jr(median_of(v, n)));
}

static char *slugify(const char *name, char *out, size_t cap)
{
    size_t k = 0;
    for (const char *p = name; *p && k + 1 < cap; p++) {
        char c = *p;
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        bool keep = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (keep)
            out[k++] = c;
        else if (k > 0 && out[k - 1] != '-')
            out[k++] = '-';
    }
    while (k > 0 && out[k - 1] == '-')
        k--;
    out[k] = '\0';
    return out;
}

static void cpu_model(char *out, size_t cap)
{
    snprintf(out, cap, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[256];
    while (fgets(line, sizeof(line), f)) {
        char *c = strchr(line, ':');
        if (strncmp(line, "model name", 10) == 0 && c) {
            snprintf(out, cap, "%s", c + 2);
            out[strcspn(out, "\n")] = '\0';
            break;
        }
    }
    fclose(f);
}

/* Where and when: device, host CPU, load average (lavapipe shares the CPU
 * with whatever else runs), UTC time. */
static json_t *env_json(struct bench *b)
{
    const struct vkr_device_info *d = &llm_model_vk(b->m)->info;
    char cpu[128], slug[64], date[32];
    double load[3] = { 0 };
    time_t t = time(NULL);
    cpu_model(cpu, sizeof(cpu));
    if (getloadavg(load, 3) < 0)
        load[0] = -1;
    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:i,s:o,s:s}", "device", d->name, "device_type",
                     vkr_device_type_name(d->type), "device_slug",
                     slugify(d->name, slug, sizeof(slug)), "driver", d->driver_info, "cpu", cpu,
                     "cpus", (int)sysconf(_SC_NPROCESSORS_ONLN), "loadavg_1m", jr(load[0]), "date",
                     date);
}

static int write_json(const char *path, json_t *root)
{
    if (!path)
        return 0;
    if (json_dump_file(root, path, JSON_INDENT(1) | JSON_SORT_KEYS)) {
        fprintf(stderr, "lade-bench: cannot write '%s'\n", path);
        return -EIO;
    }
    fprintf(stderr, "lade-bench: wrote %s\n", path);
    return 0;
}

static json_t *run_json(const struct run *r, const struct run *base)
{
    const struct dec_stats *s = &r->r.stats;
    if (r->err)
        return json_pack("{s:s}", "error", r->r.error[0] ? r->r.error : strerror(-r->err));
    json_t *hist = json_array();
    for (uint32_t k = 1; k < DEC_HIST_MAX; k++)
        json_array_append_new(hist, json_integer(s->hist[k]));
    json_t *o = json_pack("{s:i,s:s,s:i,s:i,s:i,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}",
                          "tokens", (int)s->tokens, "finish", dec_finish_name(r->r.finish), "steps",
                          (int)s->steps, "lookahead_steps", (int)s->lookahead_steps, "fallbacks",
                          (int)s->fallbacks, "tokens_per_step", jr(s->tokens_per_step),
                          "tokens_per_pass", jr(s->tokens_per_pass), "hit_rate", jr(s->hit_rate),
                          "hist", hist, "prefill_ms", jr(s->prefill_ms), "gen_ms", jr(r->gen_ms),
                          "tokens_per_s", jr(r->tps), "ms_per_token",
                          jr(s->tokens ? r->gen_ms / s->tokens : 0), "step_ms_mean",
                          jr(s->step_ms_mean), "lookahead_step_ms_mean",
                          jr(s->lookahead_step_ms_mean), "gpu_ms_per_step", jr(r->gpu_ms_step));
    json_object_set_new(o, "record_ms_per_step", jr(r->rec_ms_step));
    json_object_set_new(o, "reused_steps", json_integer((json_int_t)r->reused));
    json_object_set_new(o, "rows_per_step",
                        jr(s->lookahead_steps ? (double)s->lookahead_rows / s->lookahead_steps :
                                                1.0));
    if (base && !base->err) {
        long d = first_diff(r, base);
        json_object_set_new(o, "speedup", jr(base->tps > 0 ? r->tps / base->tps : 0));
        json_object_set_new(o, "exact", json_boolean(d < 0));
        if (d >= 0)
            json_object_set_new(o, "first_mismatch", json_integer(d));
    }
    return o;
}

/* ---- greedy -------------------------------------------------------------- */

struct greedy_sum {
    double gen_ms, prefill_ms, gpu_ms;
    uint64_t tokens, prompt_tokens, steps;
};

static json_t *greedy_prompt(struct bench *b, const struct args *a, const struct prompt *pr,
                             struct greedy_sum *sum, int *status)
{
    uint32_t np = 0;
    int32_t *pt = encode(b, pr->text, &np);
    if (!pt)
        return *status = EXIT_FAIL,
               json_pack("{s:s,s:s}", "id", pr->id, "error", "tokenize failed");
    struct dec_params p = dec_params_default();
    p.lookahead = false;
    p.max_tokens = a->max_tokens ? a->max_tokens : pr->max_tokens;
    p.temperature = a->temp;
    if (a->temp > 0)
        set_knobs(a, &p);
    p.seed = a->seed;
    struct run r = { 0 };
    run_gen(b, pt, np, &p, &r);
    free(pt);
    json_t *o = run_json(&r, NULL);
    json_object_set_new(o, "id", json_string(pr->id));
    json_object_set_new(o, "prompt_tokens", json_integer(np));
    if (r.err) {
        fprintf(stderr, "lade-bench: %s: %s\n", pr->id,
                json_string_value(json_object_get(o, "error")));
        *status = EXIT_FAIL;
        free(r.tok);
        return o;
    }
    const struct dec_stats *s = &r.r.stats;
    double wb = (double)llm_model_weight_bytes(b->m);
    double pf_tps = s->prefill_ms > 0 ? np * 1e3 / s->prefill_ms : 0;
    double host = s->steps ? r.gen_ms / s->steps - r.gpu_ms_step : 0;
    double gbs = r.gpu_ms_step > 0 ? wb / r.gpu_ms_step / 1e6 : 0;
    json_object_set_new(o, "prefill_tokens_per_s", jr(pf_tps));
    json_object_set_new(o, "host_ms_per_step", jr(host));
    json_object_set_new(o, "weight_gb_per_s", jr(gbs));
    printf("%-12s %6u %10.1f %7u %9.2f %9.3f %11.3f %12.3f %8.2f\n", pr->id, np, pf_tps, s->tokens,
           r.tps, s->tokens ? r.gen_ms / s->tokens : 0, r.gpu_ms_step, host, gbs);
    sum->gen_ms += r.gen_ms;
    sum->prefill_ms += s->prefill_ms;
    sum->gpu_ms += r.gpu_ms_step * s->steps;
    sum->tokens += s->tokens;
    sum->prompt_tokens += np;
    sum->steps += s->steps;
    free(r.tok);
    return o;
}

static json_t *greedy_aggregate(struct bench *b, const struct greedy_sum *s)
{
    double wb = (double)llm_model_weight_bytes(b->m);
    double gpu = s->steps ? s->gpu_ms / s->steps : 0;
    double tps = s->gen_ms > 0 ? s->tokens * 1e3 / s->gen_ms : 0;
    double pf = s->prefill_ms > 0 ? s->prompt_tokens * 1e3 / s->prefill_ms : 0;
    double host = s->steps ? s->gen_ms / s->steps - gpu : 0;
    double gbs = gpu > 0 ? wb / gpu / 1e6 : 0;
    printf("%-12s %6llu %10.1f %7llu %9.2f %9.3f %11.3f %12.3f %8.2f\n", "all",
           (unsigned long long)s->prompt_tokens, pf, (unsigned long long)s->tokens, tps,
           s->tokens ? s->gen_ms / s->tokens : 0, gpu, host, gbs);
    return json_pack("{s:I,s:I,s:I,s:I,s:I,s:o,s:o,s:o,s:o,s:o,s:o}", "gpu_draws",
                     (json_int_t)llm_model_gpu_draws(b->m), "gpu_tops",
                     (json_int_t)llm_model_gpu_tops(b->m), "prompt_tokens",
                     (json_int_t)s->prompt_tokens, "tokens", (json_int_t)s->tokens, "steps",
                     (json_int_t)s->steps, "tokens_per_s", jr(tps), "ms_per_token",
                     jr(s->tokens ? s->gen_ms / s->tokens : 0), "prefill_tokens_per_s", jr(pf),
                     "gpu_ms_per_step", jr(gpu), "host_ms_per_step", jr(host), "weight_gb_per_s",
                     jr(gbs));
}

/* A short generation first, so that no measured run pays for first-use
 * costs (pipeline creation, page faults, driver warm-up). */
static void warm_up(struct bench *b, const struct prompt *pr, bool lookahead, uint32_t n,
                    uint32_t w, uint32_t g)
{
    uint32_t np = 0;
    int32_t *pt = encode(b, pr->text, &np);
    struct dec_params p = dec_params_default();
    struct run r = { 0 };
    p.max_tokens = 16;
    p.lookahead = lookahead;
    p.n = n;
    p.w = w;
    p.g = g;
    if (pt)
        run_gen(b, pt, np < 32 ? np : 32, &p, &r); /* a long prefill warms nothing more */
    free(r.tok);
    free(pt);
}

static json_t *greedy_model(const struct args *a, const char *path, const struct prompt_set *ps,
                            json_t **env, int *status)
{
    char err[512];
    struct bench b;
    if (bench_load(a, path, &b, err, sizeof(err))) {
        fprintf(stderr, "lade-bench: failed to load '%s': %s (skipped)\n", path, err);
        return json_pack("{s:s,s:s}", "model", path, "error", err);
    }
    if (!*env)
        *env = env_json(&b);
    printf("\n%s: %s on %s, %.1f MB of weights per step\n", path, llm_model_desc(b.m),
           llm_model_vk(b.m)->info.name, llm_model_weight_bytes(b.m) / 1e6);
    printf("%-12s %6s %10s %7s %9s %9s %11s %12s %8s\n", "prompt", "tokens", "prefill/s", "gen",
           "tokens/s", "ms/token", "GPU ms/step", "host ms/step", "GB/s");
    warm_up(&b, &ps->v[0], false, 0, 0, 0);
    json_t *prompts = json_array();
    struct greedy_sum sum = { 0 };
    for (size_t i = 0; i < ps->n; i++)
        json_array_append_new(prompts, greedy_prompt(&b, a, &ps->v[i], &sum, status));
    json_t *o = json_pack("{s:s,s:s,s:s,s:I,s:o,s:o}", "model", path, "desc", llm_model_desc(b.m),
                          "device", llm_model_vk(b.m)->info.name, "weight_bytes",
                          (json_int_t)llm_model_weight_bytes(b.m), "prompts", prompts, "aggregate",
                          greedy_aggregate(&b, &sum));
    bench_free(&b);
    return o;
}

static int cmd_greedy(const struct args *a, const struct prompt_set *ps)
{
    int status = 0, loaded = 0;
    json_t *env = NULL, *models = json_array();
    for (unsigned i = 0; i < a->n_models; i++) {
        json_t *m = greedy_model(a, a->models[i], ps, &env, &status);
        loaded += json_object_get(m, "error") == NULL;
        json_array_append_new(models, m);
    }
    json_t *root = json_pack("{s:s,s:o,s:s,s:i,s:f,s:i,s:f,s:f,s:o}", "bench", "greedy", "env",
                             env ? env : json_null(), "prompts_file",
                             a->prompts ? a->prompts : "(BOS alone)", "max_tokens",
                             (int)a->max_tokens, "temperature", (double)a->temp, "top_k",
                             (int)a->top_k, "top_p", (double)a->top_p, "penalty",
                             (double)a->penalty, "models", models);
    if (write_json(a->json, root))
        status = EXIT_FAIL;
    json_decref(root);
    return loaded ? status : EXIT_FAIL;
}

/* ---- lookahead ----------------------------------------------------------- */

enum { C_PLAIN, C_LADE, C_REF, C_SPLAIN, C_SLADE, C_SREF, C_COUNT };

static const struct cfg {
    const char *name;
    bool lookahead, reference, sampled;
} cfgs[C_COUNT] = {
    { "plain", false, false, false },           { "lookahead", true, false, false },
    { "reference", true, true, false },         { "plain_sampled", false, false, true },
    { "lookahead_sampled", true, false, true }, { "reference_sampled", true, true, true },
};

/* Per configuration, one value per prompt that ran, for the aggregates. */
struct series {
    double tps[C_COUNT], speedup[C_COUNT], tok_step[C_COUNT], tok_pass[C_COUNT], hit[C_COUNT];
};

struct la_state {
    const struct args *a;
    struct bench b;
    uint32_t n, w, g;
    unsigned n_cfg;
    struct series *v; /* one per prompt */
    bool *ok; /* [prompt * C_COUNT + cfg]: ran without error */
    double tokens[C_COUNT], gen_ms[C_COUNT];
    double la_rows[C_COUNT], la_steps[C_COUNT]; /* lookahead steps' rows, for rows_per_step */
    unsigned exact[C_COUNT], compared[C_COUNT];
    json_t *mismatches;
    int status;
};

static struct dec_params cfg_params(const struct la_state *st, const struct cfg *c,
                                    uint32_t max_tokens)
{
    struct dec_params p = dec_params_default();
    p.max_tokens = max_tokens;
    p.lookahead = c->lookahead;
    p.n = st->n;
    p.w = st->w;
    p.g = st->g;
    p.bonus = !c->reference;
    p.seed_pool = !c->reference;
    p.adaptive = st->a->adaptive;
    p.temperature = c->sampled ? st->a->temp : 0;
    if (c->sampled)
        set_knobs(st->a, &p);
    p.seed = st->a->seed;
    return p;
}

static void la_print_cell(const struct run *r, const struct run *base)
{
    if (r->skipped) {
        printf(" | %29s", "-");
        return;
    }
    if (r->err) {
        printf(" | %29s", "ERROR");
        return;
    }
    long d = first_diff(r, base);
    char ex[16];
    snprintf(ex, sizeof(ex), d < 0 ? "yes" : "NO@%ld", d);
    printf(" | %5.2f %5.2f %6.1f %5.2fx %-6s", r->r.stats.tokens_per_step,
           r->r.stats.tokens_per_pass, r->tps, base->tps > 0 ? r->tps / base->tps : 0, ex);
}

/* Record one lookahead run against its plain run: aggregates, mismatches. */
static void la_account(struct la_state *st, size_t pi, const struct prompt *pr, unsigned c,
                       const struct run *r, const struct run *base)
{
    struct series *s = &st->v[pi];
    const struct dec_stats *ds = &r->r.stats;
    st->ok[pi * C_COUNT + c] = !r->err && !base->err;
    if (r->err) {
        st->status = EXIT_FAIL;
        fprintf(stderr, "lade-bench: %s %s: %s\n", pr->id, cfgs[c].name, r->r.error);
        return;
    }
    st->tokens[c] += ds->tokens;
    st->gen_ms[c] += r->gen_ms;
    st->la_rows[c] += (double)ds->lookahead_rows;
    st->la_steps[c] += ds->lookahead_steps;
    s->tps[c] = r->tps;
    s->tok_step[c] = ds->tokens_per_step;
    s->tok_pass[c] = ds->tokens_per_pass;
    s->hit[c] = ds->hit_rate;
    if (!cfgs[c].lookahead || base->err)
        return;
    s->speedup[c] = base->tps > 0 ? r->tps / base->tps : 0;
    long d = first_diff(r, base);
    st->compared[c]++;
    st->exact[c] += d < 0;
    if (d >= 0) {
        st->status = st->status ? st->status : EXIT_MISMATCH;
        fprintf(stderr,
                "lade-bench: MISMATCH %s %s (N,W,G)=(%u,%u,%u) temp %g seed %llu: first differs at token %ld "
                "(%u vs %u tokens, finish %s vs %s)\n",
                pr->id, cfgs[c].name, st->n, st->w, st->g, cfgs[c].sampled ? st->a->temp : 0,
                (unsigned long long)st->a->seed, d, r->n, base->n, dec_finish_name(r->r.finish),
                dec_finish_name(base->r.finish));
        json_array_append_new(st->mismatches,
                              json_pack("{s:s,s:s,s:I,s:i,s:i}", "id", pr->id, "config",
                                        cfgs[c].name, "first_mismatch", (json_int_t)d, "tokens",
                                        (int)r->n, "plain_tokens", (int)base->n));
    }
}

static json_t *la_prompt(struct la_state *st, size_t pi, const struct prompt *pr)
{
    uint32_t np = 0;
    int32_t *pt = encode(&st->b, pr->text, &np);
    if (!pt) {
        st->status = EXIT_FAIL;
        return json_pack("{s:s,s:s}", "id", pr->id, "error", "tokenize failed");
    }
    uint32_t mt = st->a->max_tokens ? st->a->max_tokens : pr->max_tokens;
    struct run runs[C_COUNT] = { { 0 } };
    json_t *o = json_pack("{s:s,s:i,s:i}", "id", pr->id, "prompt_tokens", (int)np, "max_tokens",
                          (int)mt);
    for (unsigned c = 0; c < st->n_cfg; c++) {
        struct dec_params p = cfg_params(st, &cfgs[c], mt);
        runs[c].skipped = st->a->no_reference && cfgs[c].reference;
        if (!runs[c].skipped)
            run_gen(&st->b, pt, np, &p, &runs[c]);
    }
    for (unsigned c = 0; c < st->n_cfg; c++) {
        const struct run *base = &runs[cfgs[c].sampled ? C_SPLAIN : C_PLAIN];
        if (runs[c].skipped)
            continue;
        la_account(st, pi, pr, c, &runs[c], base);
        json_object_set_new(o, cfgs[c].name, run_json(&runs[c], cfgs[c].lookahead ? base : NULL));
    }
    for (unsigned k = 0; k < st->n_cfg; k += 3) {
        printf("%-10s %-7s %4u %7.1f", k ? "" : pr->id, k ? "sampled" : "greedy", runs[k].n,
               runs[k].tps);
        la_print_cell(&runs[k + 1], &runs[k]);
        la_print_cell(&runs[k + 2], &runs[k]);
        printf("\n");
    }
    fflush(stdout);
    for (unsigned c = 0; c < C_COUNT; c++)
        free(runs[c].tok);
    free(pt);
    return o;
}

/* Mean and median over the prompts where configuration c ran. */
static json_t *la_agg_cfg(struct la_state *st, size_t n_prompts, unsigned c, double *ret_mean_pass,
                          double *ret_mean_speedup)
{
    double *v[5];
    size_t k = 0;
    for (int j = 0; j < 5; j++)
        v[j] = calloc(n_prompts ? n_prompts : 1, sizeof(double));
    for (size_t i = 0; i < n_prompts && v[4]; i++) {
        if (!st->ok[i * C_COUNT + c])
            continue;
        v[0][k] = st->v[i].speedup[c];
        v[1][k] = st->v[i].tok_step[c];
        v[2][k] = st->v[i].tok_pass[c];
        v[3][k] = st->v[i].hit[c];
        v[4][k++] = st->v[i].tps[c];
    }
    *ret_mean_pass = k ? mean_of(v[2], k) : 0;
    *ret_mean_speedup = k ? mean_of(v[0], k) : 0;
    json_t *o = json_pack("{s:i,s:o}", "prompts", (int)k, "tokens_per_s_overall",
                          jr(st->gen_ms[c] > 0 ? st->tokens[c] * 1e3 / st->gen_ms[c] : 0));
    json_object_set_new(o, "tokens_per_s", mean_median(v[4], k));
    if (cfgs[c].lookahead) {
        json_object_set_new(o, "speedup", mean_median(v[0], k));
        json_object_set_new(o, "tokens_per_step", mean_median(v[1], k));
        json_object_set_new(o, "rows_per_step",
                            jr(st->la_steps[c] > 0 ? st->la_rows[c] / st->la_steps[c] : 0));
        json_object_set_new(o, "tokens_per_pass", mean_median(v[2], k));
        json_object_set_new(o, "hit_rate", mean_median(v[3], k));
        json_object_set_new(o, "exact", json_integer(st->exact[c]));
        json_object_set_new(o, "compared", json_integer(st->compared[c]));
    }
    for (int j = 0; j < 5; j++)
        free(v[j]);
    return o;
}

static json_t *la_aggregate(struct la_state *st, size_t n_prompts)
{
    json_t *agg = json_object();
    double pass[C_COUNT] = { 0 }, sp[C_COUNT] = { 0 };
    for (unsigned c = 0; c < st->n_cfg; c++)
        if (!(st->a->no_reference && cfgs[c].reference))
            json_object_set_new(agg, cfgs[c].name, la_agg_cfg(st, n_prompts, c, &pass[c], &sp[c]));
    printf("\n%-8s %-22s %-22s %-22s %s\n", "", "speedup mean/median", "tokens/step mean/med",
           "tokens/pass mean/med", "exact   rows/step");
    for (unsigned c = 0; c < st->n_cfg; c++) {
        json_t *o = json_object_get(agg, cfgs[c].name);
        if (!cfgs[c].lookahead || !o)
            continue;
#define MM(key)                                                        \
    json_real_value(json_object_get(json_object_get(o, key), "mean")), \
            json_real_value(json_object_get(json_object_get(o, key), "median"))
        printf("%-18s %6.2fx / %5.2fx    %6.2f / %5.2f       %6.2f / %5.2f       %u/%u   %6.1f\n",
               cfgs[c].name, MM("speedup"), MM("tokens_per_step"), MM("tokens_per_pass"),
               st->exact[c], st->compared[c], json_real_value(json_object_get(o, "rows_per_step")));
#undef MM
    }
    for (unsigned k = 0; k < st->n_cfg; k += 3) {
        double r = pass[k + 2] > 0 ? pass[k + 1] / pass[k + 2] : 0;
        printf("%s: lade/reference tokens per pass (means) %.2f/%.2f = %.3f; speedup over plain %.2fx vs %.2fx\n",
               k ? "sampled" : "greedy", pass[k + 1], pass[k + 2], r, sp[k + 1], sp[k + 2]);
        json_object_set_new(agg, k ? "sampled_pass_ratio" : "greedy_pass_ratio", jr(r));
    }
    return agg;
}

/* (N,W,G) from --nwg, else sized to what a row costs on this device. */
static json_t *la_choose_nwg(struct la_state *st)
{
    double cost = -1;
    if (st->a->nwg_set) {
        st->n = st->a->n;
        st->w = st->a->w;
        st->g = st->a->g;
    } else {
        struct dec_params p = dec_params_default();
        dec_lookahead_choose(&st->b.dm, &p, &cost);
        st->n = p.n;
        st->w = p.w;
        st->g = p.g;
    }
    printf("(N,W,G)=(%u,%u,%u) %s", st->n, st->w, st->g,
           st->a->nwg_set ? "from --nwg" : "sized to the device");
    if (cost >= 0)
        printf(" (one more row costs %.4f of a one-row step)", cost);
    printf(", adaptive %s\n", st->a->adaptive ? "on" : "off");
    return json_pack("{s:i,s:i,s:i,s:s,s:o}", "n", (int)st->n, "w", (int)st->w, "g", (int)st->g,
                     "source", st->a->nwg_set ? "--nwg" : "dec_lookahead_choose", "row_cost",
                     cost >= 0 ? jr(cost) : json_null());
}

static int cmd_lookahead(const struct args *a, const struct prompt_set *ps)
{
    struct la_state st = { .a = a, .n_cfg = a->temp > 0 ? C_COUNT : 3, .mismatches = json_array() };
    char err[512];
    json_t *root = json_pack("{s:s,s:s,s:s}", "bench", "lookahead", "model", a->models[0],
                             "prompts_file", a->prompts ? a->prompts : "(BOS alone)");
    if (bench_load(a, a->models[0], &st.b, err, sizeof(err))) {
        fprintf(stderr, "lade-bench: failed to load '%s': %s\n", a->models[0], err);
        json_object_set_new(root, "error", json_string(err));
        write_json(a->json, root);
        json_decref(root);
        json_decref(st.mismatches);
        return EXIT_FAIL;
    }
    printf("%s: %s on %s\n", a->models[0], llm_model_desc(st.b.m), llm_model_vk(st.b.m)->info.name);
    json_object_set_new(root, "desc", json_string(llm_model_desc(st.b.m)));
    json_object_set_new(root, "env", env_json(&st.b));
    json_object_set_new(root, "nwg", la_choose_nwg(&st));
    json_object_set_new(root, "params",
                        json_pack("{s:b,s:f,s:I,s:i,s:i,s:f,s:f}", "adaptive", a->adaptive,
                                  "temperature", a->temp, "seed", (json_int_t)a->seed, "max_tokens",
                                  (int)a->max_tokens, "top_k", (int)a->top_k, "top_p", a->top_p,
                                  "penalty", a->penalty));
    st.v = calloc(ps->n, sizeof(*st.v));
    st.ok = calloc(ps->n * C_COUNT, sizeof(*st.ok));
    if (!st.v || !st.ok)
        return EXIT_FAIL;
    warm_up(&st.b, &ps->v[0], false, 0, 0, 0);
    warm_up(&st.b, &ps->v[0], true, st.n, st.w, st.g);
    printf("%-10s %-7s %4s %7s | %-29s | %-29s\n", "", "", "", "plain", "lookahead (lade)",
           "reference mode");
    printf("%-10s %-7s %4s %7s", "prompt", "mode", "tok", "tok/s");
    for (int k = 0; k < 2; k++)
        printf(" | %5s %5s %6s %6s %-6s", "t/stp", "t/pas", "tok/s", "speed", "exact");
    printf("\n");
    json_t *prompts = json_array();
    for (size_t i = 0; i < ps->n; i++)
        json_array_append_new(prompts, la_prompt(&st, i, &ps->v[i]));
    json_object_set_new(root, "prompts", prompts);
    json_object_set_new(root, "aggregate", la_aggregate(&st, ps->n));
    json_object_set_new(root, "mismatches", st.mismatches);
    if (json_array_size(st.mismatches))
        printf("EXACTNESS: %zu mismatches (see stderr and \"mismatches\" in the JSON)\n",
               json_array_size(st.mismatches));
    if (write_json(a->json, root))
        st.status = EXIT_FAIL;
    json_decref(root);
    free(st.v);
    free(st.ok);
    bench_free(&st.b);
    return st.status;
}

/* ---- device -------------------------------------------------------------- */

static int cmd_device(const struct args *a)
{
    VkInstance inst;
    VkDebugUtilsMessengerEXT msg;
    struct vkr_device_info *list = NULL;
    uint32_t n = 0;
    char err[256], slug[64];
    if (vkr_instance_new(false, &inst, &msg, err, sizeof(err))) {
        fprintf(stderr, "lade-bench: %s\n", err);
        return EXIT_FAIL;
    }
    int i = vkr_enumerate(inst, &list, &n) ?
                    -ENODEV :
                    vkr_select_device(list, n, a->device, err, sizeof(err));
    if (i < 0) {
        fprintf(stderr, "lade-bench: no device: %s\n", err);
    } else {
        json_t *o = json_pack("{s:s,s:s,s:s,s:b}", "name", list[i].name, "type",
                              vkr_device_type_name(list[i].type), "slug",
                              slugify(list[i].name, slug, sizeof(slug)), "cpu",
                              list[i].type == VK_PHYSICAL_DEVICE_TYPE_CPU);
        char *s = json_dumps(o, JSON_COMPACT);
        printf("%s\n", s ? s : "{}");
        free(s);
        json_decref(o);
    }
    free(list);
    vkr_instance_free(inst, msg);
    return i < 0 ? EXIT_FAIL : 0;
}

/* ---- command line -------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: lade-bench greedy    --model PATH [--model PATH...] [options]\n"
            "       lade-bench lookahead --model PATH [options]\n"
            "       lade-bench device    [--device DEV]\n"
            "  --model PATH      GGUF model (greedy: repeatable; a model that fails to load is reported and skipped)\n"
            "  --prompts FILE    JSON lines {\"id\",\"prompt\",\"max_tokens\"} (default: BOS alone)\n"
            "  --limit K         only the first K prompts\n"
            "  --max-tokens N    tokens per generation (default: each prompt's max_tokens)\n"
            "  --device DEV      Vulkan device index or name substring (default: best)\n"
            "  --ctx N           context length (default: the model's)\n"
            "  --json PATH       write every figure as JSON\n"
            "  --nwg N,W,G       lookahead parameters (default: sized to the device by dec_lookahead_choose)\n"
            "  --adaptive        let lookahead fall back to plain steps (default off: measure lookahead itself)\n"
            "  --no-reference    lookahead: skip the reference-mode runs (window sweeps)\n"
            "  --temp T          greedy: sample at temperature T instead; lookahead: also compare sampling\n"
            "                    at T, plain vs lookahead, one seed\n"
            "  --seed S          sampling seed (default 1)\n"
            "  --top-k K, --top-p P, --penalty X\n"
            "                    with --temp: top-k, top-p and repetition penalty of the sampled runs\n"
            "                    (e.g. --top-k 40 --top-p 0.9 --penalty 1.1, as many servers default)\n");
}

static int parse_num(const char *s, double lo, double hi, double *ret)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi))
        return fprintf(stderr, "lade-bench: bad number '%s'\n", s), -EINVAL;
    *ret = v;
    return 0;
}

/* The options that take a number, each with its range. */
static int parse_numeric_opt(int c, const char *v, struct args *a)
{
    double x = 0;
    static const struct {
        int c;
        double lo, hi;
    } range[] = { { 'l', 1, 1e6 },  { 'n', 1, 65536 },   { 'c', 1, 1 << 20 }, { 't', 0, 100 },
                  { 's', 0, 1e18 }, { 'k', 0, 1 << 20 }, { 'P', 1e-6, 1 },    { 'r', 1e-3, 100 } };
    for (size_t i = 0; i < sizeof(range) / sizeof(range[0]); i++)
        if (range[i].c == c && parse_num(v, range[i].lo, range[i].hi, &x))
            return -EINVAL;
    switch (c) {
    case 'l': a->limit = (size_t)x; break;
    case 'n': a->max_tokens = (uint32_t)x; break;
    case 'c': a->n_ctx = (uint32_t)x; break;
    case 't': a->temp = (float)x; break;
    case 'k': a->top_k = (uint32_t)x; break;
    case 'P': a->top_p = (float)x; break;
    case 'r': a->penalty = (float)x; break;
    default: a->seed = (uint64_t)x; break;
    }
    return 0;
}

static int parse_opt(int c, const char *v, struct args *a)
{
    char tail;
    switch (c) {
    case 'm':
        if (a->n_models >= MAX_MODELS)
            return fprintf(stderr, "lade-bench: at most %d --model\n", MAX_MODELS), -EINVAL;
        a->models[a->n_models++] = v;
        return 0;
    case 'p': a->prompts = v; return 0;
    case 'd': a->device = v; return 0;
    case 'j': a->json = v; return 0;
    case 'a': a->adaptive = true; return 0;
    case 'R': a->no_reference = true; return 0;
    case 'l':
    case 'n':
    case 'c':
    case 't':
    case 's':
    case 'k':
    case 'P':
    case 'r': return parse_numeric_opt(c, v, a);
    case 'w':
        if (sscanf(v, "%u,%u,%u%c", &a->n, &a->w, &a->g, &tail) != 3 || a->n < 3 ||
            a->n > DEC_N_LIMIT || !a->w || !a->g)
            return fprintf(stderr,
                           "lade-bench: --nwg wants N,W,G with 3 <= N <= %d (e.g. 5,15,15)\n",
                           DEC_N_LIMIT),
                   -EINVAL;
        a->nwg_set = true;
        return 0;
    default: return -EINVAL;
    }
}

static int parse_args(int argc, char **argv, struct args *a)
{
    static const struct option opts[] = {
        { "model", 1, 0, 'm' },      { "prompts", 1, 0, 'p' }, { "limit", 1, 0, 'l' },
        { "max-tokens", 1, 0, 'n' }, { "device", 1, 0, 'd' },  { "ctx", 1, 0, 'c' },
        { "json", 1, 0, 'j' },       { "nwg", 1, 0, 'w' },     { "adaptive", 0, 0, 'a' },
        { "temp", 1, 0, 't' },       { "seed", 1, 0, 's' },    { "top-k", 1, 0, 'k' },
        { "top-p", 1, 0, 'P' },      { "penalty", 1, 0, 'r' }, { "no-reference", 0, 0, 'R' },
        { "help", 0, 0, 'h' },       { 0, 0, 0, 0 },
    };
    int c;
    if (argc < 2 || argv[1][0] == '-') {
        if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")))
            return usage(stdout), 1;
        return usage(stderr), -EINVAL;
    }
    a->cmd = argv[1];
    optind = 2;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h')
            return usage(stdout), 1;
        if (parse_opt(c, optarg, a))
            return usage(stderr), -EINVAL;
    }
    if (optind != argc || (strcmp(a->cmd, "device") && !a->n_models) ||
        (!strcmp(a->cmd, "lookahead") && a->n_models != 1))
        return usage(stderr), -EINVAL;
    return 0;
}

int main(int argc, char **argv)
{
    struct args a = { .seed = 1, .top_p = 1.0f, .penalty = 1.0f };
    int e = parse_args(argc, argv, &a);
    if (e)
        return e > 0 ? 0 : EXIT_USAGE;
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!strcmp(a.cmd, "device"))
        return cmd_device(&a);
    if (strcmp(a.cmd, "greedy") && strcmp(a.cmd, "lookahead")) {
        fprintf(stderr, "lade-bench: unknown command '%s'\n", a.cmd);
        return usage(stderr), EXIT_USAGE;
    }
    struct prompt_set ps;
    if (prompts_load(a.prompts, a.limit, &ps))
        return EXIT_FAIL;
    int rc = !strcmp(a.cmd, "greedy") ? cmd_greedy(&a, &ps) : cmd_lookahead(&a, &ps);
    prompts_free(&ps);
    return rc;
}
