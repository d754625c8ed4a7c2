/* daemon: the real engine, on llama/ (GGUF model on Vulkan, tokenizer) and
 * decoding/ (greedy, sampling, lookahead). Contract in engine.h. The daemon
 * matches stop strings, renders chat templates and holds back split UTF-8
 * itself, so this file only maps its requests onto dec_generate. */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "conf/conf.h"
#include "daemon/config.h"
#include "daemon/engine.h"
#include "daemon/log.h"
#include "decoding/dec.h"
#include "llama/llm.h"
#include "vk/vkr.h"

struct engine {
    struct llm_model *model;
    struct dec_model dm;
    struct dec_session *session;
    struct dec_caps caps;
    uint32_t def_n, def_w, def_g; /* lookahead defaults: configured, else sized to the device */
    bool bonus, seed_pool;
    char name[256], path[4096], device[320];
    char *chat_template;
};

struct gen_ctx {
    srv_emit_fn emit;
    srv_cancel_fn cancel;
    void *ud;
    int emit_ret; /* > 0 stop, < 0 error */
    bool cancelled;
};

static void e_info(void *ctx, struct srv_engine_info *ret)
{
    struct engine *e = ctx;
    *ret = (struct srv_engine_info){
        .model_name = e->name,
        .model_path = e->path,
        .arch = "llama",
        .device = e->device,
        .chat_template = e->chat_template,
        .n_ctx = llm_model_n_ctx(e->model),
        .n_vocab = llm_model_config(e->model)->n_vocab,
    };
}

static int e_tokenize(void *ctx, const char *text, size_t len, unsigned flags, int32_t *ret_tokens, uint32_t cap,
                      uint32_t *ret_n)
{
    struct engine *e = ctx;
    size_t n = 0;
    const struct llm_tok *tok = llm_model_tok(e->model);
    /* The model's add_bos_token has the last word on BOS (Qwen wants none). */
    unsigned tf = ((flags & SRV_TOK_ADD_BOS) && llm_tok_add_bos(tok) ? LLM_TOK_ADD_BOS : 0) |
                  (flags & SRV_TOK_SPECIAL ? LLM_TOK_SPECIAL : 0);
    int r = llm_tok_encode(tok, text, len, tf, ret_tokens, cap, &n);
    *ret_n = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
    return r == -ENOSPC ? -E2BIG : r;
}

static int e_detokenize(void *ctx, const int32_t *tokens, uint32_t n, char *buf, size_t cap, size_t *ret_len)
{
    struct engine *e = ctx;
    /* llm_tok_decode NUL-terminates: ask for one byte more than the caller's
     * room would need and report -E2BIG like engine.h says. */
    int r = llm_tok_decode(llm_model_tok(e->model), tokens, n, buf, cap, ret_len);
    if (r == -ENOSPC)
        return -E2BIG;
    return r == -ERANGE ? -EINVAL : r;
}

static int e_detok_new(void *ctx, void **ret_state)
{
    struct engine *e = ctx;
    struct llm_detok *d = malloc(sizeof(*d));
    if (!d)
        return -ENOMEM;
    llm_detok_init(d, llm_model_tok(e->model));
    *ret_state = d;
    return 0;
}

static int e_detok_push(void *state, const int32_t *tokens, uint32_t n, char *buf, size_t cap, size_t *ret_len)
{
    struct llm_detok *d = state;
    size_t used = 0;
    for (uint32_t i = 0; i < n; i++) {
        size_t got = 0;
        int r = llm_detok_push(d, tokens[i], buf + used, cap - used, &got);
        if (r)
            return r == -ENOSPC ? -E2BIG : r == -ERANGE ? -EINVAL : r;
        used += got;
    }
    *ret_len = used;
    return 0;
}

static void e_detok_free(void *state)
{
    free(state);
}

static int on_tokens(void *user, const int32_t *tokens, uint32_t n)
{
    struct gen_ctx *g = user;
    int r = g->emit(g->ud, tokens, n);
    if (r) {
        g->emit_ret = r;
        return 1;
    }
    if (g->cancel(g->ud)) {
        g->cancelled = true;
        return 1;
    }
    return 0;
}

static void fill_params(const struct engine *e, const struct srv_gen_params *p, struct dec_params *d)
{
    *d = dec_params_default();
    d->max_tokens = p->max_tokens;
    d->temperature = p->temperature;
    d->top_k = p->top_k;
    d->top_p = p->top_p;
    d->min_p = p->min_p;
    d->repeat_penalty = p->repeat_penalty;
    d->seed = p->seed;
    d->lookahead = p->lookahead;
    d->n = p->la_n ? p->la_n : e->def_n;
    d->w = p->la_w ? p->la_w : e->def_w;
    d->g = p->la_g ? p->la_g : e->def_g;
    if (d->n < 3) /* the protocol allows n = 2, which is plain decoding plus a pool: decoding wants >= 3 */
        d->n = 3;
    d->bonus = e->bonus;
    d->seed_pool = e->seed_pool;
}

static int e_generate(void *ctx, const struct srv_gen_params *p, srv_emit_fn emit, srv_cancel_fn cancel, void *ud,
                      enum srv_finish *ret_finish, struct srv_gen_stats *ret_stats)
{
    struct engine *e = ctx;
    struct dec_params d;
    fill_params(e, p, &d);
    struct gen_ctx g = {emit, cancel, ud, 0, false};
    struct dec_result r;
    if (cancel(ud)) {
        *ret_finish = SRV_FINISH_CANCELLED;
        memset(ret_stats, 0, sizeof(*ret_stats));
        return 0;
    }
    int err = dec_generate(e->session, p->prompt, p->n_prompt, &d, NULL, on_tokens, &g, &r);
    const struct dec_stats *s = &r.stats;
    uint64_t accepted = 0;
    for (uint32_t k = 1; k < DEC_N_LIMIT; k++)
        accepted += s->accepted_depth[k];
    *ret_stats = (struct srv_gen_stats){
        .n_prompt = p->n_prompt,
        .n_generated = r.n_tokens,
        .n_steps = s->steps,
        /* Candidate tokens offered for verification: the verified steps
         * times the deepest candidate (N-1); accepted: the sum over depths. */
        .n_draft = (uint64_t)s->verify_steps * (d.n - 1),
        .n_accepted = accepted,
        .prefill_ns = (uint64_t)(s->prefill_ms * 1e6),
        .decode_ns = (uint64_t)(s->step_ms_total * 1e6),
    };
    if (g.emit_ret < 0)
        return g.emit_ret;
    if (err == -E2BIG)
        return -E2BIG;
    if (err) {
        srv_log(LOG_ERR, "generation failed: %s", r.error[0] ? r.error : strerror(-err));
        return err;
    }
    switch (r.finish) {
    case DEC_FINISH_EOS: *ret_finish = SRV_FINISH_EOS; break;
    case DEC_FINISH_CONTEXT: *ret_finish = SRV_FINISH_CONTEXT; break;
    case DEC_FINISH_CANCELLED: *ret_finish = g.emit_ret > 0 ? SRV_FINISH_STOP : SRV_FINISH_CANCELLED; break;
    default: *ret_finish = SRV_FINISH_LENGTH; break;
    }
    return 0;
}

static void e_destroy(void *ctx)
{
    struct engine *e = ctx;
    if (!e)
        return;
    dec_session_free(e->session);
    llm_model_free(e->model);
    free(e->chat_template);
    free(e);
}

static const struct srv_engine_ops ops = {
    .info = e_info,
    .tokenize = e_tokenize,
    .detokenize = e_detokenize,
    .detok_new = e_detok_new,
    .detok_push = e_detok_push,
    .detok_free = e_detok_free,
    .generate = e_generate,
    .destroy = e_destroy,
};

static void describe(struct engine *e, const struct conf *cf)
{
    const struct llm_gguf *g = llm_model_gguf(e->model);
    struct llm_gguf_str s;
    snprintf(e->path, sizeof(e->path), "%s", cf->model.path);
    if (llm_gguf_get_str(g, "general.name", &s, NULL, 0) == 0 && s.len < sizeof(e->name))
        snprintf(e->name, sizeof(e->name), "%.*s", (int)s.len, s.ptr);
    else
        snprintf(e->name, sizeof(e->name), "%s", basename(e->path));
    snprintf(e->path, sizeof(e->path), "%s", cf->model.path); /* basename may have written into it */
    const struct vkr_device_info *di = &llm_model_vk(e->model)->info;
    snprintf(e->device, sizeof(e->device), "%s (%s)", di->name, vkr_device_type_name(di->type));
    if (llm_gguf_get_str(g, "tokenizer.chat_template", &s, NULL, 0) == 0 && s.len < (1u << 20)) {
        e->chat_template = malloc(s.len + 1);
        if (e->chat_template) {
            memcpy(e->chat_template, s.ptr, s.len);
            e->chat_template[s.len] = 0;
        }
    }
}

/* Lookahead defaults: the configured (n, w, g) where set, the rest sized to
 * what one more row costs on this device, measured now. */
static void choose_lookahead(struct engine *e, const struct conf *cf)
{
    struct dec_params d = dec_params_default();
    double cost = 0;
    if (dec_measure_row_cost(&e->dm, &cost) == 0)
        dec_lookahead_default_for_cost(cost, &d);
    e->def_n = cf->lookahead.n ? cf->lookahead.n : d.n;
    e->def_w = cf->lookahead.w ? cf->lookahead.w : d.w;
    e->def_g = cf->lookahead.g ? cf->lookahead.g : d.g;
    if (e->def_n > e->caps.max_n)
        e->def_n = e->caps.max_n;
    if (e->def_w > e->caps.max_w)
        e->def_w = e->caps.max_w;
    if (e->def_g > e->caps.max_g)
        e->def_g = e->caps.max_g;
    srv_log(LOG_INFO, "one more row in a step costs %.3f of a one-row step here: lookahead defaults (N,W,G)=(%u,%u,%u)",
            cost, e->def_n, e->def_w, e->def_g);
}

static const char *switch_text(enum llm_switch s)
{
    return s == LLM_SWITCH_ON ? "1" : s == LLM_SWITCH_OFF ? "0" : "default";
}

/* The tuning the model resolved, in [tuning]'s key = value syntax. */
static void log_tuning(const struct llm_tuning *t)
{
    char geom[3][48];
    const struct llm_mm_geom *g[3] = {&t->mm, &t->mm_wide, &t->mm_one};
    for (int i = 0; i < 3; i++)
        snprintf(geom[i], sizeof(geom[i]), "%u,%u,%u,%u", g[i]->local, g[i]->tile, g[i]->rps, g[i]->unroll);
    srv_log(LOG_INFO, "tuning: mm=%s mm_wide=%s mm_one=%s mm_xsh=%u mm_splitk=%u fuse=%s coopmat=%s cm=%u,%u "
            "att=%u,%u step_cache=%u draw=%s", geom[0], geom[1], geom[2], t->mm_xsh, t->mm_splitk,
            switch_text(t->fuse), switch_text(t->coopmat), t->cm_nsg, t->cm_kc, t->att_subgroups, t->att_split,
            t->step_cache == LLM_STEP_CACHE_OFF ? 0 : t->step_cache, switch_text(t->draw));
}

int srv_engine_llama_new(const struct conf *cf, struct srv_engine *ret)
{
    if (cf->model.kv_cache_type != CONF_KV_F16) {
        srv_log(LOG_ERR, "Failed to load the model: kv_cache_type f32 is not supported yet, use f16");
        return -ENOTSUP;
    }
    struct engine *e = calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    char err[512];
    struct llm_model_opts o = {
        .path = cf->model.path,
        .tokenizer_path = cf->model.tokenizer[0] ? cf->model.tokenizer : NULL,
        .device = cf->device.device[0] ? cf->device.device : NULL,
        .n_ctx = cf->model.context_length,
        .pipeline_cache = cf->device.pipeline_cache[0] ? cf->device.pipeline_cache : NULL,
    };
    int r = srv_tuning_from_conf(cf, &o.tuning, err, sizeof(err));
    if (r == 0)
        r = llm_model_load(&o, &e->model, err, sizeof(err));
    if (r) {
        srv_log(LOG_ERR, "Failed to load the model '%s': %s", cf->model.path, err);
        free(e);
        return r;
    }
    log_tuning(llm_model_tuning(e->model));
    llm_model_dec(e->model, &e->dm);
    e->caps = dec_caps_default();
    e->caps.max_n = cf->lookahead.max_n < 3 ? 3 : cf->lookahead.max_n;
    e->caps.max_w = cf->lookahead.max_w ? cf->lookahead.max_w : 1;
    e->caps.max_g = cf->lookahead.max_g ? cf->lookahead.max_g : 1;
    e->caps.max_tokens = cf->limits.max_tokens;
    e->bonus = cf->lookahead.bonus_token;
    e->seed_pool = cf->lookahead.seed_pool;
    r = dec_session_new(&e->dm, &e->caps, &e->session);
    if (r) {
        srv_log(LOG_ERR, "Failed to set up decoding: %s", strerror(-r));
        e_destroy(e);
        return r;
    }
    describe(e, cf);
    choose_lookahead(e, cf);
    srv_log(LOG_NOTICE, "model '%s' (%s) on %s; %s", e->name, llm_model_desc(e->model), e->device,
            llm_model_vk(e->model)->select_reason);
    ret->ops = &ops;
    ret->ctx = e;
    return 0;
}
