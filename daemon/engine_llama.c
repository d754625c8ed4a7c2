/* daemon: the real engine, on llama/ (GGUF model on Vulkan, tokenizer) and
 * decoding/ (greedy, sampling, lookahead, stop strings). Contract in
 * engine.h. The daemon renders chat templates and holds back split UTF-8
 * itself, so this file only maps its requests onto dec_generate.
 *
 * Several generations run at once, each on its scheduler worker, each in
 * a slot: one of the model's sequences (its KV region) with the decoding
 * session that runs it through the batch (decoding/batch.c), so their rows
 * share model steps. A request takes the free slot whose cached tokens
 * share the longest prefix with its prompt (the prefix cache), else the
 * least recently used one; where another sequence, running or not, holds
 * more of the prompt (a system prompt another client sent), the slot
 * takes a copy of that (dec_batch_share). */
#include <errno.h>
#include <libgen.h>
#include <pthread.h>
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

struct slot {
    struct engine *e;
    uint32_t seq;
    struct dec_model dm; /* the batch's model of this sequence */
    struct dec_session *session; /* the one it runs with while busy */
    bool busy;
    uint64_t used; /* the engine's clock when last given back */
    /* Stop strings are matched on the text the daemon's detokenizer would
     * give: a second one, fed every token decoding decodes. */
    struct llm_detok stop_detok;
    char *stop_text; /* llm_detok_max_out bytes, made on first use */
};

struct engine {
    struct llm_model *model;
    struct dec_model dm; /* sequence 0 alone: the calibration at load only */
    struct dec_multi mm;
    struct dec_batch *batch;
    struct slot *slots; /* [n_seq] */
    uint32_t n_seq, max_parallel;
    /* [max_parallel] decoding sessions (scratch sized for hard_caps(): the
     * daemon checks requests against the live caps), one per generation
     * at once, not per slot: slots beyond max_parallel only keep prompts */
    struct dec_session **sessions;
    bool *session_busy;
    pthread_mutex_t mu; /* slots' busy and used, n_active, clock */
    uint32_t n_active;
    uint64_t clock;
    uint32_t la_n, la_w, la_g; /* lookahead sized to the device (choose_lookahead) */
    char name[256], path[4096], device[320];
    char *chat_template;
    char bos[64], eos[64]; /* the BOS and EOS tokens' text, "" if none */
};

struct gen_ctx {
    srv_emit_fn emit;
    srv_cancel_fn cancel;
    void *ud;
    int emit_ret; /* < 0: the error emit returned */
};

static void e_info(void *ctx, struct srv_engine_info *ret)
{
    struct engine *e = ctx;
    *ret = (struct srv_engine_info){
        .model_name = e->name,
        .model_path = e->path,
        .arch = llm_arch_name(llm_model_config(e->model)->arch),
        .device = e->device,
        .chat_template = e->chat_template,
        .bos_token = e->bos[0] ? e->bos : NULL,
        .eos_token = e->eos[0] ? e->eos : NULL,
        .n_ctx = llm_model_n_ctx(e->model),
        .n_vocab = llm_model_config(e->model)->n_vocab,
        .max_rows = e->dm.max_rows,
        .max_parallel = e->max_parallel,
        .la_n = e->la_n,
        .la_w = e->la_w,
        .la_g = e->la_g,
    };
}

static int e_tokenize(void *ctx, const char *text, size_t len, unsigned flags, int32_t *ret_tokens,
                      uint32_t cap, uint32_t *ret_n)
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

static int e_detokenize(void *ctx, const int32_t *tokens, uint32_t n, char *buf, size_t cap,
                        size_t *ret_len)
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

static int e_detok_push(void *state, const int32_t *tokens, uint32_t n, char *buf, size_t cap,
                        size_t *ret_len)
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
    return g->cancel(g->ud) ? 1 : 0;
}

/* dec_text's piece: what the detokenizer adds for id (dec_generate feeds
 * every token once, in order). */
static const char *stop_piece(void *user, int32_t id, size_t *ret_len)
{
    struct slot *sl = user;
    size_t cap = llm_detok_max_out(llm_model_tok(sl->e->model));
    return llm_detok_push(&sl->stop_detok, id, sl->stop_text, cap, ret_len) ? NULL : sl->stop_text;
}

/* The free slot whose cache shares the longest prefix with the prompt;
 * among equals (no sharing at all, most often) the least recently used.
 * The daemon runs at most max_parallel generations, so one is free. */
static struct slot *take_slot(struct engine *e, const int32_t *prompt, uint32_t n,
                              uint32_t *ret_active)
{
    struct slot *best = NULL;
    uint32_t best_k = 0;
    pthread_mutex_lock(&e->mu);
    for (uint32_t i = 0; i < e->n_seq; i++) {
        struct slot *sl = &e->slots[i];
        if (sl->busy)
            continue;
        /* An idle slot's cache changes only by its own generations */
        uint32_t k = dec_reuse_len(e->mm.tokens(e->mm.ctx, sl->seq),
                                   e->mm.n_past(e->mm.ctx, sl->seq), prompt, n);
        if (!best || k > best_k || (k == best_k && sl->used < best->used)) {
            best = sl;
            best_k = k;
        }
    }
    for (uint32_t i = 0; best && i < e->max_parallel; i++)
        if (!e->session_busy[i]) {
            e->session_busy[i] = true;
            best->session = e->sessions[i];
            break;
        }
    if (best) {
        best->busy = true;
        *ret_active = ++e->n_active;
    }
    pthread_mutex_unlock(&e->mu);
    return best;
}

static void give_slot(struct engine *e, struct slot *sl)
{
    pthread_mutex_lock(&e->mu);
    for (uint32_t i = 0; i < e->max_parallel; i++)
        if (e->sessions[i] == sl->session)
            e->session_busy[i] = false;
    sl->session = NULL;
    sl->busy = false;
    sl->used = ++e->clock;
    e->n_active--;
    pthread_mutex_unlock(&e->mu);
}

/* Rows go to more sequences before they go to wider lookahead: with k
 * generations running, each gets a k-th of the rows the device's own
 * lookahead takes (choose_lookahead), its window narrowed to fit, or
 * plain steps when not even (3, 1, 1) does. The output is the same
 * either way (lookahead is exact); only its speed changes. Alone, a
 * request keeps what it asked for. */
static void share_rows(const struct engine *e, uint32_t active, struct dec_params *p)
{
    if (active <= 1 || !p->lookahead)
        return;
    uint32_t budget = dec_lookahead_rows(e->la_n, e->la_w, e->la_g) / active;
    if (dec_lookahead_rows(p->n, p->w, p->g) <= budget)
        return;
    struct dec_caps c = dec_caps_default();
    c.max_n = p->n;
    c.max_w = p->w;
    c.max_g = p->g;
    if (dec_caps_fit(&c, budget) != 0) {
        p->lookahead = false;
        return;
    }
    p->n = c.max_n;
    p->w = c.max_w;
    p->g = c.max_g;
}

static int e_generate(void *ctx, const int32_t *prompt, uint32_t n_prompt,
                      const struct dec_params *p, srv_emit_fn emit, srv_cancel_fn cancel, void *ud,
                      struct dec_result *ret)
{
    struct engine *e = ctx;
    struct gen_ctx g = { emit, cancel, ud, 0 };
    if (cancel(ud)) {
        *ret = (struct dec_result){ .finish = DEC_FINISH_CANCELLED, .stop_token = -1 };
        return 0;
    }
    uint32_t active = 0;
    struct slot *sl = take_slot(e, prompt, n_prompt, &active);
    if (!sl)
        return -EBUSY;
    struct dec_text text = { stop_piece, sl };
    struct dec_params pp = *p;
    share_rows(e, active, &pp);
    int err = 0;
    if (p->n_stop && !sl->stop_text &&
        !(sl->stop_text = malloc(llm_detok_max_out(llm_model_tok(e->model)))))
        err = -ENOMEM;
    if (!err && (!sl->session || dec_session_use(sl->session, &sl->dm) != 0))
        err = -EBUSY; /* more generations than max_parallel: the daemon never asks */
    if (!err) {
        llm_detok_init(&sl->stop_detok, llm_model_tok(e->model));
        if (pp.cache_prompt)
            dec_batch_share(e->batch, sl->seq, prompt, n_prompt);
        err = dec_batch_join(e->batch, sl->seq);
    }
    if (!err) {
        err = dec_generate(sl->session, prompt, n_prompt, &pp, p->n_stop ? &text : NULL, on_tokens,
                           &g, ret);
        dec_batch_leave(e->batch, sl->seq);
    }
    give_slot(e, sl);
    if (g.emit_ret < 0)
        return g.emit_ret;
    if (err == -E2BIG || (err == -EINVAL && ret->finish != DEC_FINISH_ERROR))
        return err; /* the request's fault: the daemon answers with ret->error */
    if (err) {
        srv_log(LOG_ERR, "generation failed: %s", ret->error[0] ? ret->error : strerror(-err));
        return err;
    }
    return 0;
}

static void e_load(void *ctx, struct srv_engine_load *ret)
{
    struct engine *e = ctx;
    struct dec_batch_stats st;
    dec_batch_get_stats(e->batch, &st);
    pthread_mutex_lock(&e->mu);
    uint32_t cached = 0;
    for (uint32_t i = 0; i < e->n_seq; i++)
        cached += !e->slots[i].busy && e->mm.n_past(e->mm.ctx, e->slots[i].seq) > 0;
    *ret = (struct srv_engine_load){
        .running = e->n_active,
        .seqs = e->n_seq,
        .seqs_cached = cached,
        .steps = st.steps,
        .parts = st.parts,
        .rows_plain = st.rows_plain,
        .rows_lookahead = st.rows_lookahead,
        .rows_prefill = st.rows_prefill,
        .prefix_copies = st.copies,
        .copied_tokens = st.copied_tokens,
    };
    pthread_mutex_unlock(&e->mu);
}

static void e_destroy(void *ctx)
{
    struct engine *e = ctx;
    if (!e)
        return;
    for (uint32_t i = 0; e->slots && i < e->n_seq; i++)
        free(e->slots[i].stop_text);
    for (uint32_t i = 0; e->sessions && i < e->max_parallel; i++)
        dec_session_free(e->sessions[i]);
    free(e->sessions);
    free(e->session_busy);
    free(e->slots);
    dec_batch_free(e->batch);
    llm_model_free(e->model);
    free(e->chat_template);
    pthread_mutex_destroy(&e->mu);
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
    .load = e_load,
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
    snprintf(e->path, sizeof(e->path), "%s",
             cf->model.path); /* basename may have written into it */
    const struct vkr_device_info *di = &llm_model_vk(e->model)->info;
    snprintf(e->device, sizeof(e->device), "%s (%s)", di->name, vkr_device_type_name(di->type));
    if (llm_gguf_get_str(g, "tokenizer.chat_template", &s, NULL, 0) == 0 && s.len < (1u << 20)) {
        e->chat_template = malloc(s.len + 1);
        if (e->chat_template) {
            memcpy(e->chat_template, s.ptr, s.len);
            e->chat_template[s.len] = 0;
        }
    }
    llm_gguf_token_text(g, llm_tok_bos(llm_model_tok(e->model)), e->bos, sizeof(e->bos));
    llm_gguf_token_text(g, llm_tok_eos(llm_model_tok(e->model)), e->eos, sizeof(e->eos));
}

/* The lookahead the device pays for: sized to what one more row in a
 * step costs, measured now. The daemon uses it where neither the request
 * nor [lookahead] n, w, g say, within its live caps. */
static void choose_lookahead(struct engine *e)
{
    struct dec_params d = dec_params_default();
    double cost;
    int r = dec_lookahead_choose(&e->dm, &d, &cost);
    e->la_n = d.n;
    e->la_w = d.w;
    e->la_g = d.g;
    if (r)
        srv_log(LOG_INFO,
                "what one more row in a step costs cannot be measured here (%s): lookahead (N,W,G)=(%u,%u,%u) where not configured",
                strerror(-r), e->la_n, e->la_w, e->la_g);
    else
        srv_log(LOG_INFO,
                "one more row in a step costs %.3f of a one-row step here: lookahead (N,W,G)=(%u,%u,%u) where not configured",
                cost, e->la_n, e->la_w, e->la_g);
}

/* The most each lookahead parameter may ever be: the schema's maximum,
 * lowered to what the model runs with the other two at their least. The
 * session is sized for these once, so a reload may raise the configured
 * caps up to them without a new session; decoding keeps no buffer beyond
 * max_rows rows however large they are. */
static struct dec_caps hard_caps(const struct dec_model *m)
{
    struct dec_caps c = dec_caps_default();
    c.max_n = (uint32_t)conf_find("lookahead", "max_n")->max;
    c.max_w = (uint32_t)conf_find("lookahead", "max_w")->max;
    c.max_g = (uint32_t)conf_find("lookahead", "max_g")->max;
    c.max_tokens = (uint32_t)conf_find("limits", "max_tokens")->max;
    c.max_stop = SRV_STOP_MAX;
    c.max_stop_len = IPC_STOP_LEN_MAX;
    while (c.max_n > 3 && dec_lookahead_rows(c.max_n, 1, 1) > m->max_rows)
        c.max_n--;
    while (c.max_w > 1 && dec_lookahead_rows(3, c.max_w, 1) > m->max_rows)
        c.max_w--;
    while (c.max_g > 1 && dec_lookahead_rows(3, 1, c.max_g) > m->max_rows)
        c.max_g--;
    return c;
}

/* The batch and a slot (session, sequence) for each of the model's
 * sequences; generations at once: max_parallel, or fewer when the KV
 * budget holds fewer. Prompts go in chunks of a max_parallel-th of a
 * step at least (8 rows at least; more when fewer run: dec_batch_model),
 * so that one long prompt does not make every other sequence's next step
 * as dear as a whole prefill step. */
static int build_slots(struct engine *e, const struct conf *cf)
{
    llm_model_multi(e->model, &e->mm);
    e->n_seq = e->mm.n_seq;
    e->max_parallel = cf->daemon.max_parallel < e->n_seq ? cf->daemon.max_parallel : e->n_seq;
    int r = dec_batch_new(&e->mm, &e->batch);
    e->slots = r ? NULL : calloc(e->n_seq, sizeof(*e->slots));
    e->sessions = r ? NULL : calloc(e->max_parallel, sizeof(*e->sessions));
    e->session_busy = r ? NULL : calloc(e->max_parallel, sizeof(*e->session_busy));
    if (r || !e->slots || !e->sessions || !e->session_busy)
        return r ? r : -ENOMEM;
    uint32_t chunk = e->mm.max_rows / e->max_parallel;
    for (uint32_t i = 0; i < e->n_seq; i++) {
        struct slot *sl = &e->slots[i];
        sl->e = e;
        sl->seq = i;
        dec_batch_model(e->batch, i, chunk < 8 ? 8 : chunk, &sl->dm);
    }
    struct dec_caps caps = hard_caps(&e->dm);
    for (uint32_t i = 0; !r && i < e->max_parallel; i++)
        r = dec_session_new(&e->slots[i].dm, &caps, &e->sessions[i]);
    if (!r && e->max_parallel < cf->daemon.max_parallel)
        srv_log(LOG_WARNING,
                "[model] kv_cache_size holds %u sequences of %llu MiB: %u generations at once, not "
                "[daemon] max_parallel %u",
                e->n_seq,
                (unsigned long long)(llm_model_kv_bytes(llm_model_config(e->model),
                                                        llm_model_n_ctx(e->model)) >>
                                     20),
                e->max_parallel, cf->daemon.max_parallel);
    else if (!r)
        srv_log(LOG_INFO,
                "KV cache: %u sequences of %u positions; %u generations at once, the other "
                "sequences keep finished prompts for reuse",
                e->n_seq, llm_model_n_ctx(e->model), e->max_parallel);
    return r;
}

static const char *switch_text(enum llm_switch s)
{
    return s == LLM_SWITCH_ON ? "1" : s == LLM_SWITCH_OFF ? "0" : "default";
}

/* The tuning the model resolved, in [tuning]'s key = value syntax. */
static void log_tuning(const struct llm_tuning *t)
{
    char geom[3][48];
    const struct llm_mm_geom *g[3] = { &t->mm, &t->mm_wide, &t->mm_one };
    for (int i = 0; i < 3; i++)
        snprintf(geom[i], sizeof(geom[i]), "%u,%u,%u,%u", g[i]->local, g[i]->tile, g[i]->rps,
                 g[i]->unroll);
    srv_log(LOG_INFO,
            "tuning: mm=%s mm_wide=%s mm_one=%s mm_xsh=%u mm_splitk=%u fuse=%s coopmat=%s cm=%u,%u "
            "att=%u,%u step_cache=%u draw=%s idot=%s",
            geom[0], geom[1], geom[2], t->mm_xsh, t->mm_splitk, switch_text(t->fuse),
            switch_text(t->coopmat), t->cm_nsg, t->cm_kc, t->att_subgroups, t->att_split,
            t->step_cache == LLM_STEP_CACHE_OFF ? 0 : t->step_cache, switch_text(t->draw),
            switch_text(t->idot));
}

int srv_engine_llama_new(const struct conf *cf, srv_cancel_fn cancel, void *ud,
                         struct srv_engine *ret)
{
    if (cf->model.kv_cache_type != CONF_KV_F16) {
        srv_log(LOG_ERR,
                "Failed to load the model: kv_cache_type f32 is not supported yet, use f16");
        return -ENOTSUP;
    }
    struct engine *e = calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    pthread_mutex_init(&e->mu, NULL);
    char err[512];
    struct llm_model_opts o = {
        .path = cf->model.path,
        .tokenizer_path = cf->model.tokenizer[0] ? cf->model.tokenizer : NULL,
        .device = cf->device.device[0] ? cf->device.device : NULL,
        .n_ctx = cf->model.context_length,
        .n_seq = cf->daemon.max_parallel,
        .kv_budget = cf->model.kv_cache_size,
        .pipeline_cache = cf->device.pipeline_cache[0] ? cf->device.pipeline_cache : NULL,
        .cancel = cancel,
        .cancel_ud = ud,
    };
    int r = srv_tuning_from_conf(cf, &o.tuning, err, sizeof(err));
    if (r == 0)
        r = llm_model_load(&o, &e->model, err, sizeof(err));
    if (r) {
        srv_log(LOG_ERR, "Failed to load the model '%s': %s", cf->model.path, err);
        pthread_mutex_destroy(&e->mu);
        free(e);
        return r;
    }
    log_tuning(llm_model_tuning(e->model));
    llm_model_dec(e->model, &e->dm);
    r = build_slots(e, cf);
    if (r) {
        srv_log(LOG_ERR, "Failed to set up decoding: %s", strerror(-r));
        e_destroy(e);
        return r;
    }
    describe(e, cf);
    choose_lookahead(e);
    srv_log(LOG_NOTICE, "model '%s' (%s) on %s; %s", e->name, llm_model_desc(e->model), e->device,
            llm_model_vk(e->model)->select_reason);
    ret->ops = &ops;
    ret->ctx = e;
    return 0;
}
