/* daemon: the engine seam. Everything laded needs from a model goes through
 * one ops table; engine_fake.c implements it with a toy tokenizer for the
 * tests, engine_llama.c with llama/ and decoding/.
 *
 * Threads: generate() runs on the scheduler thread, one call at a time.
 * info, tokenize, detokenize and the detok_* functions may be called from
 * the event-loop thread while generate() runs: they only read the
 * vocabulary. Every function returns 0 or a negative errno unless noted. */
#ifndef LADE_DAEMON_ENGINE_H
#define LADE_DAEMON_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Static facts, valid for the engine's lifetime. */
struct srv_engine_info {
    const char *model_name;    /* general.name, or the file's basename */
    const char *model_path;
    const char *arch;          /* "llama" */
    const char *device;        /* e.g. "NVIDIA H100 (discrete)", "llvmpipe (cpu)" */
    const char *chat_template; /* tokenizer.chat_template, NULL if none */
    const char *bos_token;     /* the BOS and EOS tokens' text ("<s>"), NULL if none */
    const char *eos_token;
    uint32_t n_ctx;            /* positions one sequence may use */
    uint32_t n_vocab;
};

/* What one generation runs with; the daemon has already applied defaults
 * and configuration caps. */
struct srv_gen_params {
    const int32_t *prompt; /* includes BOS when the model wants one */
    uint32_t n_prompt;     /* >= 1, n_prompt + max_tokens <= n_ctx is not guaranteed */
    uint32_t max_tokens;   /* >= 1 */
    float temperature;     /* 0: greedy */
    uint32_t top_k;        /* 0: off */
    float top_p;           /* 1: off */
    float min_p;           /* 0: off */
    float repeat_penalty;  /* 1: off */
    uint64_t seed;
    bool lookahead;        /* false: plain decoding */
    uint32_t la_n, la_w, la_g; /* within the configured caps; 0: the engine chooses */
};

enum srv_finish {
    SRV_FINISH_LENGTH = 0, /* max_tokens reached */
    SRV_FINISH_EOS,        /* the model's end-of-sequence token (not emitted) */
    SRV_FINISH_STOP,       /* emit() returned > 0 (a stop string) */
    SRV_FINISH_CONTEXT,    /* n_ctx reached */
    SRV_FINISH_CANCELLED,  /* cancel() returned true */
};

struct srv_gen_stats {
    uint32_t n_prompt;
    uint32_t n_generated; /* tokens passed to emit() */
    uint32_t n_steps;     /* decoding steps (forward passes after prefill) */
    uint64_t n_draft;     /* lookahead candidate tokens verified */
    uint64_t n_accepted;  /* of those, accepted */
    uint64_t prefill_ns;
    uint64_t decode_ns;
};

/* Called once per step with the tokens that step accepted (1..N with
 * lookahead). Returns 0 to go on, > 0 to stop (finish STOP), < 0 to abort
 * (generate returns that error). */
typedef int (*srv_emit_fn)(void *ud, const int32_t *tokens, uint32_t n);
/* Polled before every step; true ends the generation with CANCELLED. */
typedef bool (*srv_cancel_fn)(void *ud);

enum {
    SRV_TOK_ADD_BOS = 1 << 0, /* prepend BOS */
    SRV_TOK_SPECIAL = 1 << 1, /* map special-token text ("<s>", "<|im_start|>") to its id */
};

struct srv_engine_ops {
    void (*info)(void *ctx, struct srv_engine_info *ret);
    /* Up to cap ids into ret_tokens; -E2BIG when more are needed
     * (*ret_n then holds how many). */
    int (*tokenize)(void *ctx, const char *text, size_t len, unsigned flags, int32_t *ret_tokens,
                    uint32_t cap, uint32_t *ret_n);
    /* Whole-sequence decode into buf (cap bytes, not NUL-terminated);
     * -E2BIG when it does not fit, -EINVAL for an id >= n_vocab. Bytes
     * need not be valid UTF-8: the daemon sanitises. */
    int (*detokenize)(void *ctx, const int32_t *tokens, uint32_t n, char *buf, size_t cap,
                      size_t *ret_len);
    /* Streaming detokenizer, one per generation: push the tokens of each
     * step, get the bytes they add (leading-space rules of the tokenizer
     * applied as if the whole sequence were decoded). The daemon holds back
     * incomplete UTF-8 itself. */
    int (*detok_new)(void *ctx, void **ret_state);
    int (*detok_push)(void *state, const int32_t *tokens, uint32_t n, char *buf, size_t cap,
                      size_t *ret_len);
    void (*detok_free)(void *state);
    int (*generate)(void *ctx, const struct srv_gen_params *p, srv_emit_fn emit,
                    srv_cancel_fn cancel, void *ud, enum srv_finish *ret_finish,
                    struct srv_gen_stats *ret_stats);
    void (*destroy)(void *ctx);
};

struct srv_engine {
    const struct srv_engine_ops *ops;
    void *ctx;
};

/* The toy engine: spec is "key=value,..." with keys delay_ms (per step),
 * n_ctx, template (chatml, llama2, none), device. NULL or "" for defaults. */
int srv_engine_fake_new(const char *spec, struct srv_engine *ret);
/* The real engine (engine_llama.c): model, device and lookahead settings
 * from the checked configuration. Logs its own progress (daemon/ may log). */
struct conf;
int srv_engine_llama_new(const struct conf *cf, struct srv_engine *ret);

static inline void srv_engine_destroy(struct srv_engine *e)
{
    if (e && e->ops)
        e->ops->destroy(e->ctx);
    if (e)
        e->ops = NULL;
}

#endif
