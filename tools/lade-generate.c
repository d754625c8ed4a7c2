/* lade-generate: one prompt, one generation, streamed to stdout, on the
 * best Vulkan device (or the one asked for), decoded with lookahead unless
 * told otherwise. Timings go to stderr; --json writes them as one object. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "decoding/dec.h"
#include "llama/llm.h"
#include "tools/tuning-env.h"
#include "vk/vkr.h"

#define MAX_STOP 8

struct args {
    const char *model, *tokenizer, *prompt, *device, *json;
    uint32_t n_ctx;
    bool stats, validation, lookahead_set;
    struct dec_params p;
    const char *stop[MAX_STOP];
};

struct out {
    const struct llm_tok *tok;
    struct llm_detok detok;
    char buf[64];
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int emit(void *user, const int32_t *tokens, uint32_t n)
{
    struct out *o = user;
    for (uint32_t i = 0; i < n; i++) {
        size_t len = 0;
        if (llm_detok_push(&o->detok, tokens[i], o->buf, sizeof(o->buf), &len) == 0)
            fwrite(o->buf, 1, len, stdout);
    }
    fflush(stdout);
    return 0;
}

static const char *piece(void *user, int32_t id, size_t *ret_len)
{
    return llm_tok_piece(user, id, ret_len);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: lade-generate [-m MODEL.gguf] [-p PROMPT] [-n N] [options]\n"
            "  -m, --model PATH        GGUF model (default: the bundled stories260K)\n"
            "  -p, --prompt TEXT       prompt (default: empty, BOS only)\n"
            "  -n, --max-tokens N      tokens to generate (default 256)\n"
            "      --tokenizer PATH    SentencePiece tokenizer.model instead of the GGUF's vocabulary\n"
            "      --device DEV        Vulkan device index or name substring (default: best)\n"
            "      --ctx N             context length (default: the model's)\n"
            "      --lookahead N,W,G   lookahead parameters (default: on, sized to the device)\n"
            "      --no-lookahead      plain decoding, one token per step\n"
            "      --reference         lookahead as the reference algorithm: no bonus token, no pool seeding\n"
            "      --no-adaptive       never fall back to plain steps\n"
            "      --temp T, --top-k K, --top-p P, --min-p P, --repeat-penalty R, --seed S\n"
            "      --stop STR          stop string (repeatable, up to %d)\n"
            "      --stats             per-generation statistics on stderr\n"
            "      --json PATH         write timings and statistics as JSON\n"
            "      --validation        Vulkan validation layer on\n",
            MAX_STOP);
}

static int parse_nwg(const char *s, struct dec_params *p)
{
    unsigned n, w, g;
    char tail;
    if (sscanf(s, "%u,%u,%u%c", &n, &w, &g, &tail) != 3)
        return -EINVAL;
    p->n = n;
    p->w = w;
    p->g = g;
    p->lookahead = true;
    return 0;
}

static int parse_args(int argc, char **argv, struct args *a)
{
    enum {
        O_TOK = 256,
        O_DEV,
        O_CTX,
        O_LA,
        O_NOLA,
        O_REF,
        O_NOAD,
        O_TEMP,
        O_TOPK,
        O_TOPP,
        O_MINP,
        O_REP,
        O_SEED,
        O_STOP,
        O_STATS,
        O_JSON,
        O_VAL
    };
    static const struct option opts[] = {
        { "model", 1, 0, 'm' },           { "prompt", 1, 0, 'p' },
        { "max-tokens", 1, 0, 'n' },      { "help", 0, 0, 'h' },
        { "tokenizer", 1, 0, O_TOK },     { "device", 1, 0, O_DEV },
        { "ctx", 1, 0, O_CTX },           { "lookahead", 1, 0, O_LA },
        { "no-lookahead", 0, 0, O_NOLA }, { "reference", 0, 0, O_REF },
        { "no-adaptive", 0, 0, O_NOAD },  { "temp", 1, 0, O_TEMP },
        { "top-k", 1, 0, O_TOPK },        { "top-p", 1, 0, O_TOPP },
        { "min-p", 1, 0, O_MINP },        { "repeat-penalty", 1, 0, O_REP },
        { "seed", 1, 0, O_SEED },         { "stop", 1, 0, O_STOP },
        { "stats", 0, 0, O_STATS },       { "json", 1, 0, O_JSON },
        { "validation", 0, 0, O_VAL },    { 0, 0, 0, 0 },
    };
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, "m:p:n:h", opts, NULL)) != -1) {
        errno = 0;
        end = NULL;
        switch (c) {
        case 'm': a->model = optarg; break;
        case 'p': a->prompt = optarg; break;
        case 'n': a->p.max_tokens = (uint32_t)strtoul(optarg, &end, 10); break;
        case O_TOK: a->tokenizer = optarg; break;
        case O_DEV: a->device = optarg; break;
        case O_CTX: a->n_ctx = (uint32_t)strtoul(optarg, &end, 10); break;
        case O_LA:
            if (parse_nwg(optarg, &a->p))
                return fprintf(stderr, "lade-generate: --lookahead wants N,W,G (e.g. 5,15,15)\n"),
                       -EINVAL;
            a->lookahead_set = true;
            break;
        case O_NOLA:
            a->p.lookahead = false;
            a->lookahead_set = true;
            break;
        case O_REF:
            a->p.bonus = false;
            a->p.seed_pool = false;
            break;
        case O_NOAD: a->p.adaptive = false; break;
        case O_TEMP: a->p.temperature = strtof(optarg, &end); break;
        case O_TOPK: a->p.top_k = (uint32_t)strtoul(optarg, &end, 10); break;
        case O_TOPP: a->p.top_p = strtof(optarg, &end); break;
        case O_MINP: a->p.min_p = strtof(optarg, &end); break;
        case O_REP: a->p.repeat_penalty = strtof(optarg, &end); break;
        case O_SEED: a->p.seed = strtoull(optarg, &end, 10); break;
        case O_STOP:
            if (a->p.n_stop >= MAX_STOP)
                return fprintf(stderr, "lade-generate: at most %d --stop strings\n", MAX_STOP),
                       -EINVAL;
            a->stop[a->p.n_stop++] = optarg;
            break;
        case O_STATS: a->stats = true; break;
        case O_JSON: a->json = optarg; break;
        case O_VAL: a->validation = true; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -EINVAL;
        }
        if (errno || (end && *end)) {
            fprintf(stderr, "lade-generate: bad number '%s'\n", optarg);
            return -EINVAL;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return -EINVAL;
    }
    a->p.stop = a->stop;
    return 0;
}

static void print_stats(FILE *f, const struct dec_result *r, const struct dec_params *p,
                        double wall_ms, double gen_ms, uint32_t n_prompt)
{
    const struct dec_stats *s = &r->stats;
    double tps = gen_ms > 0 ? s->tokens * 1e3 / gen_ms : 0;
    fprintf(f,
            "\n[lade] %u tokens in %.1f ms: %.2f tokens/s, %.2f ms/token; prefill %u tokens in %.1f ms (%.1f tokens/s); finish %s\n",
            s->tokens, gen_ms, tps, s->tokens ? gen_ms / s->tokens : 0, n_prompt, s->prefill_ms,
            s->prefill_ms > 0 ? n_prompt * 1e3 / s->prefill_ms : 0, dec_finish_name(r->finish));
    if (p->lookahead)
        fprintf(f,
                "[lade] lookahead (N,W,G)=(%u,%u,%u)%s: %u steps, %.2f tokens/step, %.2f tokens/pass, hit rate %.2f, pool %u, fallbacks %u\n",
                p->n, p->w, p->g, p->bonus ? "" : " reference mode", s->steps, s->tokens_per_step,
                s->tokens_per_pass, s->hit_rate, s->pool_size, s->fallbacks);
    (void)wall_ms;
}

static void print_hist(FILE *f, const struct dec_result *r, const struct dec_params *p)
{
    const struct dec_stats *s = &r->stats;
    fprintf(f, "[lade] tokens per step:");
    for (uint32_t k = 1; k < DEC_HIST_MAX && k <= p->n + 1; k++)
        fprintf(f, " %u:%u", k, s->hist[k]);
    fprintf(f, "\n[lade] accepted candidate depth:");
    for (uint32_t d = 1; d < DEC_N_LIMIT && d < p->n; d++)
        fprintf(f, " >=%u:%u", d, s->accepted_depth[d]);
    fprintf(f, "\n[lade] step time: mean %.2f ms (lookahead %.2f, plain %.2f)\n", s->step_ms_mean,
            s->lookahead_step_ms_mean, s->plain_step_ms_mean);
}

static void write_json(const char *path, const struct args *a, struct llm_model *m,
                       const struct dec_result *r, double gen_ms, uint32_t n_prompt)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "lade-generate: cannot write '%s': %s\n", path, strerror(errno));
        return;
    }
    const struct dec_stats *s = &r->stats;
    fprintf(f,
            "{\"model\":\"%s\",\"device\":\"%s\",\"lookahead\":%s,\"n\":%u,\"w\":%u,\"g\":%u,\"bonus\":%s,"
            "\"seed_pool\":%s,\"temperature\":%g,\"prompt_tokens\":%u,\"tokens\":%u,\"finish\":\"%s\","
            "\"gen_ms\":%.3f,\"tokens_per_s\":%.3f,\"ms_per_token\":%.4f,\"prefill_ms\":%.3f,"
            "\"steps\":%u,\"tokens_per_step\":%.4f,\"tokens_per_pass\":%.4f,\"hit_rate\":%.4f}\n",
            a->model, llm_model_vk(m)->info.name, a->p.lookahead ? "true" : "false", a->p.n, a->p.w,
            a->p.g, a->p.bonus ? "true" : "false", a->p.seed_pool ? "true" : "false",
            a->p.temperature, n_prompt, s->tokens, dec_finish_name(r->finish), gen_ms,
            gen_ms > 0 ? s->tokens * 1e3 / gen_ms : 0, s->tokens ? gen_ms / s->tokens : 0,
            s->prefill_ms, s->steps, s->tokens_per_step, s->tokens_per_pass, s->hit_rate);
    fclose(f);
}

int main(int argc, char **argv)
{
    struct args a = { .model = LADE_DEFAULT_MODEL, .prompt = "", .p = dec_params_default() };
    a.p.max_tokens = 256;
    if (parse_args(argc, argv, &a))
        return 2;
    char err[512];
    struct llm_model *m;
    struct llm_model_opts mo = { .path = a.model,
                                 .tokenizer_path = a.tokenizer,
                                 .device = a.device,
                                 .n_ctx = a.n_ctx,
                                 .validation = a.validation };
    if (lade_tuning_from_env(&mo.tuning, err, sizeof(err)) ||
        llm_model_load(&mo, &m, err, sizeof(err))) {
        fprintf(stderr, "lade-generate: failed to load '%s': %s\n", a.model, err);
        return 1;
    }
    struct vkr_ctx *vk = llm_model_vk(m);
    fprintf(stderr, "[lade] model %s: %s\n[lade] device: %s\n", a.model, llm_model_desc(m),
            vk->select_reason);
    struct dec_model dm;
    llm_model_dec(m, &dm);
    if (a.p.lookahead && !a.lookahead_set) {
        double cost;
        if (dec_lookahead_choose(&dm, &a.p, &cost) == 0)
            fprintf(stderr,
                    "[lade] one more row costs %.3f of a step here: lookahead (N,W,G)=(%u,%u,%u)\n",
                    cost, a.p.n, a.p.w, a.p.g);
        else
            fprintf(stderr,
                    "[lade] what a row costs cannot be measured here: lookahead (N,W,G)=(%u,%u,%u)\n",
                    a.p.n, a.p.w, a.p.g);
    }
    const struct llm_tok *tok = llm_model_tok(m);
    size_t plen = strlen(a.prompt), cap = plen + 2;
    int32_t *prompt = malloc(cap * sizeof(*prompt));
    size_t n_prompt = 0;
    int rc = 1;
    unsigned tf = llm_tok_add_bos(tok) ? LLM_TOK_ADD_BOS : 0; /* the prompt is plain text */
    int te = prompt ? llm_tok_encode(tok, a.prompt, plen, tf, prompt, cap, &n_prompt) : -ENOMEM;
    if (te == -ENOSPC) { /* byte fallback and the space marker can beat one token a byte */
        cap = n_prompt;
        free(prompt);
        prompt = malloc(cap * sizeof(*prompt));
        te = prompt ? llm_tok_encode(tok, a.prompt, plen, tf, prompt, cap, &n_prompt) : -ENOMEM;
    }
    if (te) {
        fprintf(stderr, "lade-generate: failed to tokenize the prompt: %s\n", strerror(-te));
        goto out;
    }
    struct dec_caps caps = dec_caps_default();
    caps.max_tokens = a.p.max_tokens > caps.max_tokens ? a.p.max_tokens : caps.max_tokens;
    struct dec_session *sess;
    if (dec_session_new(&dm, &caps, &sess)) {
        fprintf(stderr, "lade-generate: out of memory\n");
        goto out;
    }
    struct out o = { .tok = tok };
    llm_detok_init(&o.detok, tok);
    struct dec_text text = { piece, (void *)tok };
    fputs(a.prompt, stdout);
    struct dec_result r;
    double t0 = now_ms();
    int e = dec_generate(sess, prompt, (uint32_t)n_prompt, &a.p, &text, emit, &o, &r);
    double wall = now_ms() - t0;
    size_t len;
    if (llm_detok_flush(&o.detok, o.buf, sizeof(o.buf), &len) == 0)
        fwrite(o.buf, 1, len, stdout);
    if (r.finish == DEC_FINISH_STOP && r.stop_token >= 0) {
        const char *pc = llm_tok_piece(tok, r.stop_token, &len);
        if (pc)
            fwrite(pc, 1, r.stop_token_bytes < len ? r.stop_token_bytes : len, stdout);
    }
    fputc('\n', stdout);
    fflush(stdout);
    if (e && r.finish != DEC_FINISH_CONTEXT) {
        fprintf(stderr, "lade-generate: generation failed: %s\n",
                r.error[0] ? r.error : strerror(-e));
    } else {
        double gen_ms = wall - r.stats.prefill_ms;
        print_stats(stderr, &r, &a.p, wall, gen_ms, (uint32_t)n_prompt);
        if (a.stats)
            print_hist(stderr, &r, &a.p);
        if (a.json)
            write_json(a.json, &a, m, &r, gen_ms, (uint32_t)n_prompt);
        rc = 0;
    }
    dec_session_free(sess);
out:
    free(prompt);
    llm_model_free(m);
    return rc;
}
