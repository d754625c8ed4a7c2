/* daemon: the toy engine behind `laded --fake-engine`. Byte-level
 * tokenizer (id = byte + 3) with four special tokens, and a generator that
 * writes a fixed text, so every test can predict the output.
 *
 * Prompt directives change one generation: "[delay=MS]" sleeps MS per step,
 * "[eos=K]" ends with EOS after K tokens, "[fail]" makes generate fail with
 * -EIO, "[refuse]" refuses the parameters as dec_generate does (-EINVAL and
 * a reason). With lookahead on, step i makes 1 + i % m tokens, as a
 * lookahead decoder that accepts some n-grams would: m = n with
 * bonus_token, n - 1 without; without seed_pool the first n - 1 steps make
 * one token (no candidates before the output gives some). A lookahead that
 * needs more rows than the spec's max_rows is refused, as dec_generate
 * refuses it. Stop strings are matched as dec_generate matches them, by
 * decoding/'s matcher. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/engine.h"
#include "daemon/util.h"

enum {
    FAKE_STEP_MAX = 16,
    FAKE_UNK = 0,
    FAKE_BOS = 1,
    FAKE_EOS = 2,
    FAKE_BYTE0 = 3,
    FAKE_IM_START = 259,
    FAKE_IM_END = 260,
    FAKE_N_VOCAB = 261
};

static const char *const fake_special[] = {
    [FAKE_UNK] = "<unk>",
    [FAKE_BOS] = "<s>",
    [FAKE_EOS] = "</s>",
};

/* The output text: ASCII and multi-byte UTF-8, so streaming has to hold
 * back split characters. */
static const char fake_story[] =
        "Once upon a time a na\xC3\xAFve fox \xE2\x80\x94 caf\xC3\xA9 \xF0\x9F\xA6\x8A \xE2\x80\x94 jumped. ";

/* Chat templates in Jinja, as models ship them: ChatML, and Llama 2 (which
 * refuses conversations that do not alternate). */
static const char *const fake_templates[] = {
    "{% for m in messages %}{{ '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
    "{% for m in messages %}{% if (m.role == 'user') != loop.index0 is even %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if m.role == 'user' %}{{ bos_token + '[INST] ' + m.content + ' [/INST]' }}"
    "{% else %}{{ ' ' + m.content + ' ' + eos_token }}{% endif %}{% endfor %}",
};

struct fake {
    unsigned delay_ms;
    unsigned load_ms;
    unsigned tok_us_per_kib; /* tokenizing costs this per KiB of text (a slow tokenizer) */
    uint32_t n_ctx;
    uint32_t max_rows; /* 0: any */
    uint32_t parallel; /* generations at once (each runs alone: nothing is shared) */
    char tmpl[16];
    char device[64];
};

static void fake_info(void *ctx, struct srv_engine_info *ret)
{
    struct fake *f = ctx;

    *ret = (struct srv_engine_info){
        .model_name = "fake",
        .model_path = "(fake)",
        .arch = "fake",
        .device = f->device,
        .chat_template = !strcmp(f->tmpl, "chatml") ? fake_templates[0] :
                         !strcmp(f->tmpl, "llama2") ? fake_templates[1] :
                                                      NULL,
        .bos_token = fake_special[FAKE_BOS],
        .eos_token = fake_special[FAKE_EOS],
        .n_ctx = f->n_ctx,
        .n_vocab = FAKE_N_VOCAB,
        .max_rows = f->max_rows,
        .max_parallel = f->parallel,
        .la_n = 4,
        .la_w = 4,
        .la_g = 4,
    };
}

static const char *special_text(int32_t id)
{
    if (id == FAKE_IM_START)
        return "<|im_start|>";
    if (id == FAKE_IM_END)
        return "<|im_end|>";
    return id >= 0 && id < FAKE_BYTE0 ? fake_special[id] : NULL;
}

/* Special token spelled at s, or -1. */
static int32_t special_at(const char *s, size_t len, size_t *ret_n)
{
    static const int32_t ids[] = { FAKE_BOS, FAKE_EOS, FAKE_IM_START, FAKE_IM_END };

    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        const char *t = special_text(ids[i]);
        size_t n = strlen(t);
        if (n <= len && !memcmp(s, t, n)) {
            *ret_n = n;
            return ids[i];
        }
    }
    return -1;
}

static void sleep_ms(unsigned ms);

static int fake_tokenize(void *ctx, const char *text, size_t len, unsigned flags,
                         int32_t *ret_tokens, uint32_t cap, uint32_t *ret_n)
{
    struct fake *f = ctx;
    uint32_t n = 0;

    if (f->tok_us_per_kib)
        sleep_ms((unsigned)(len / 1024 * f->tok_us_per_kib / 1000));
    if (flags & SRV_TOK_ADD_BOS) {
        if (n < cap)
            ret_tokens[n] = FAKE_BOS;
        n++;
    }
    for (size_t i = 0; i < len;) {
        size_t sl = 1;
        int32_t id = (flags & SRV_TOK_SPECIAL) ? special_at(text + i, len - i, &sl) : -1;
        if (id < 0)
            id = FAKE_BYTE0 + (unsigned char)text[i];
        if (n < cap)
            ret_tokens[n] = id;
        n++;
        i += sl;
    }
    *ret_n = n;
    return n > cap ? -E2BIG : 0;
}

static int fake_detokenize(void *ctx, const int32_t *tokens, uint32_t n, char *buf, size_t cap,
                           size_t *ret_len)
{
    size_t o = 0;

    for (uint32_t i = 0; i < n; i++) {
        const char *sp = special_text(tokens[i]);
        size_t sl = sp ? strlen(sp) : 1;
        if (tokens[i] < 0 || tokens[i] >= FAKE_N_VOCAB)
            return -EINVAL;
        if (o + sl > cap)
            return -E2BIG;
        if (sp)
            memcpy(buf + o, sp, sl);
        else
            buf[o] = (char)(tokens[i] - FAKE_BYTE0);
        o += sl;
    }
    *ret_len = o;
    return 0;
}

static int fake_detok_new(void *ctx, void **ret_state)
{
    *ret_state = ctx; /* byte-level: nothing to remember between steps */
    return 0;
}

static int fake_detok_push(void *state, const int32_t *tokens, uint32_t n, char *buf, size_t cap,
                           size_t *ret_len)
{
    return fake_detokenize(state, tokens, n, buf, cap, ret_len);
}

static void fake_detok_free(void *state)
{
}

/* The integer after "[key=" in the prompt's bytes, or def. */
static long prompt_directive(const char *prompt, const char *key, long def)
{
    char pat[32];
    const char *p;

    snprintf(pat, sizeof(pat), "[%s=", key);
    p = strstr(prompt, pat);
    return p ? strtol(p + strlen(pat), NULL, 10) : def;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Tokens one generation holds back at most: the longest stop string a
 * request may have, plus one step's. */
#define FAKE_HELD_MAX (IPC_STOP_LEN_MAX + FAKE_STEP_MAX)

struct fake_run {
    char prompt[4096];
    long delay_ms, eos_at;
    size_t story_pos;
    /* Stop strings as dec_generate matches them: a token is one byte, so
     * the matcher's byte offsets count tokens too. held[] are the tokens
     * after the first `sent` that may still be part of a stop string. */
    struct dec_stop stop;
    int32_t held[FAKE_HELD_MAX];
    uint32_t n_held, sent;
};

static void fake_run_init(struct fake *f, const int32_t *prompt, uint32_t n,
                          const struct dec_params *p, struct fake_run *r)
{
    size_t len = 0;

    /* Directives are read from the prompt's tail bytes (the whole prompt in
     * tests); special tokens are skipped. */
    for (uint32_t i = n > sizeof(r->prompt) - 1 ? n - (sizeof(r->prompt) - 1) : 0; i < n; i++)
        if (prompt[i] >= FAKE_BYTE0 && prompt[i] < FAKE_IM_START)
            r->prompt[len++] = (char)(prompt[i] - FAKE_BYTE0);
    r->prompt[len] = '\0';
    r->delay_ms = prompt_directive(r->prompt, "delay", f->delay_ms);
    r->eos_at = prompt_directive(r->prompt, "eos", -1);
    r->story_pos = p->temperature > 0 ? p->seed % (sizeof(fake_story) - 1) : 0;
}

/* Pass the held tokens before output byte (= token) `upto` to emit. */
static int fake_release(struct fake_run *r, uint64_t upto, srv_emit_fn emit, void *ud)
{
    uint32_t n = (uint32_t)(upto - r->sent);
    int e = n ? emit(ud, r->held, n) : 0;

    memmove(r->held, r->held + n, (r->n_held - n) * sizeof(r->held[0]));
    r->n_held -= n;
    r->sent += n;
    return e;
}

/* Hold a step's tokens; release what no stop string can begin in. True
 * when a stop string is complete (the tokens before it are released). */
static bool fake_feed(struct fake_run *r, const int32_t *toks, uint32_t k, srv_emit_fn emit,
                      void *ud, int *ret_err)
{
    char bytes[FAKE_STEP_MAX];
    uint64_t at;
    bool hit;

    for (uint32_t i = 0; i < k; i++) {
        bytes[i] = (char)(toks[i] - FAKE_BYTE0);
        r->held[r->n_held++] = toks[i];
    }
    hit = dec_stop_feed(&r->stop, bytes, k, &at);
    *ret_err = fake_release(r, hit ? at : dec_stop_safe(&r->stop), emit, ud);
    return hit;
}

static int fake_generate(void *ctx, const int32_t *prompt, uint32_t n_prompt,
                         const struct dec_params *p, srv_emit_fn emit, srv_cancel_fn cancel,
                         void *ud, struct dec_result *ret)
{
    struct fake *f = ctx;
    struct dec_stats *st = &ret->stats;
    struct fake_run r = { .n_held = 0 };
    uint64_t t0 = srv_now_ns();
    uint32_t gen = 0; /* tokens made, held ones included */
    int err = 0;

    *ret = (struct dec_result){ .finish = DEC_FINISH_LENGTH, .stop_token = -1 };
    fake_run_init(f, prompt, n_prompt, p, &r);
    if (strstr(r.prompt, "[fail]"))
        return -EIO;
    if (strstr(r.prompt, "[refuse]")) {
        snprintf(ret->error, sizeof(ret->error), "the toy engine refuses this request ([refuse])");
        return -EINVAL;
    }
    if (p->lookahead && f->max_rows && dec_lookahead_rows(p->n, p->w, p->g) > f->max_rows) {
        snprintf(ret->error, sizeof(ret->error),
                 "lookahead (%u, %u, %u) needs %u rows a step, the model takes %u", p->n, p->w,
                 p->g, dec_lookahead_rows(p->n, p->w, p->g), f->max_rows);
        return -EINVAL;
    }
    if (n_prompt >= f->n_ctx)
        return -E2BIG;
    for (uint32_t i = 0; i < p->n_stop; i++)
        if (strlen(p->stop[i]) > IPC_STOP_LEN_MAX)
            return -EINVAL;
    if (dec_stop_init(&r.stop, IPC_STOP_LEN_MAX) < 0)
        return -ENOMEM;
    dec_stop_reset(&r.stop, p->stop, p->n_stop);
    st->prefill_tokens = n_prompt;
    st->prefill_ms = (srv_now_ns() - t0) / 1e6;
    for (;;) {
        int32_t toks[FAKE_STEP_MAX];
        uint32_t la_n = p->n, per_step = p->bonus ? la_n : la_n - 1;
        bool no_candidates = !p->seed_pool && st->steps + 1 < la_n;
        uint32_t want = p->lookahead && !no_candidates ? 1 + st->steps % per_step : 1, k = 0;
        if (cancel(ud)) {
            ret->finish = DEC_FINISH_CANCELLED;
            break;
        }
        if (gen >= p->max_tokens) {
            ret->finish = DEC_FINISH_LENGTH;
            break;
        }
        if (n_prompt + gen >= f->n_ctx) {
            ret->finish = DEC_FINISH_CONTEXT;
            break;
        }
        if (r.eos_at >= 0 && gen >= (uint32_t)r.eos_at) {
            ret->finish = DEC_FINISH_EOS;
            break;
        }
        if (r.delay_ms > 0)
            sleep_ms((unsigned)r.delay_ms);
        while (k < want && gen + k < p->max_tokens && n_prompt + gen + k < f->n_ctx &&
               (r.eos_at < 0 || gen + k < (uint32_t)r.eos_at)) {
            toks[k++] = FAKE_BYTE0 + (unsigned char)fake_story[r.story_pos];
            r.story_pos = (r.story_pos + 1) % (sizeof(fake_story) - 1);
        }
        st->steps++;
        gen += k;
        if (p->lookahead) {
            st->draft_tokens += (uint64_t)p->g * (la_n - 1);
            st->accepted_tokens += k - 1;
        }
        if (fake_feed(&r, toks, k, emit, ud, &err))
            ret->finish = DEC_FINISH_STOP;
        if (err < 0 || ret->finish == DEC_FINISH_STOP)
            break;
    }
    /* What was held back goes out unless cancelled, as with dec_generate. */
    if (!err && ret->finish != DEC_FINISH_STOP && ret->finish != DEC_FINISH_CANCELLED)
        err = fake_release(&r, r.sent + r.n_held, emit, ud);
    dec_stop_done(&r.stop);
    ret->n_tokens = r.sent;
    st->step_ms_total = (srv_now_ns() - t0) / 1e6 - st->prefill_ms;
    return err < 0 ? err : 0;
}

static void fake_destroy(void *ctx)
{
    free(ctx);
}

static const struct srv_engine_ops fake_ops = {
    .info = fake_info,
    .tokenize = fake_tokenize,
    .detokenize = fake_detokenize,
    .detok_new = fake_detok_new,
    .detok_push = fake_detok_push,
    .detok_free = fake_detok_free,
    .generate = fake_generate,
    .destroy = fake_destroy,
};

static int fake_parse_spec(struct fake *f, const char *spec)
{
    char key[32], val[64];
    int used;

    while (spec && *spec) {
        if (sscanf(spec, "%31[^=,]=%63[^,]%n", key, val, &used) != 2)
            return -EINVAL;
        if (!strcmp(key, "delay_ms"))
            f->delay_ms = (unsigned)strtoul(val, NULL, 10);
        else if (!strcmp(key, "load_ms"))
            f->load_ms = (unsigned)strtoul(val, NULL, 10);
        else if (!strcmp(key, "tok_us_per_kib"))
            f->tok_us_per_kib = (unsigned)strtoul(val, NULL, 10);
        else if (!strcmp(key, "n_ctx"))
            f->n_ctx = (uint32_t)strtoul(val, NULL, 10);
        else if (!strcmp(key, "max_rows"))
            f->max_rows = (uint32_t)strtoul(val, NULL, 10);
        else if (!strcmp(key, "parallel"))
            f->parallel = (uint32_t)strtoul(val, NULL, 10);
        else if (!strcmp(key, "template") && strlen(val) < sizeof(f->tmpl))
            strcpy(f->tmpl, val);
        else if (!strcmp(key, "device"))
            snprintf(f->device, sizeof(f->device), "%s", val);
        else
            return -EINVAL;
        spec += used;
        if (*spec == ',')
            spec++;
    }
    return f->n_ctx >= 16 && f->parallel >= 1 && f->parallel <= 64 ? 0 : -EINVAL;
}

/* load_ms of "loading", in 10 ms naps, each after a look at cancel. */
static int fake_load(unsigned load_ms, srv_cancel_fn cancel, void *ud)
{
    for (unsigned t = 0; t < load_ms; t += 10) {
        if (cancel && cancel(ud))
            return -ECANCELED;
        nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000 * 1000 }, NULL);
    }
    return 0;
}

int srv_engine_fake_new(const char *spec, srv_cancel_fn cancel, void *ud, struct srv_engine *ret)
{
    struct fake *f = calloc(1, sizeof(*f));
    int r;

    if (!f)
        return -ENOMEM;
    *f = (struct fake){
        .n_ctx = 2048, .parallel = 1, .tmpl = "chatml", .device = "fake device (cpu)"
    };
    r = fake_parse_spec(f, spec);
    if (r == 0)
        r = fake_load(f->load_ms, cancel, ud);
    if (r < 0) {
        free(f);
        return r;
    }
    *ret = (struct srv_engine){ .ops = &fake_ops, .ctx = f };
    return 0;
}
