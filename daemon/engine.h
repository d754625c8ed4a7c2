/* daemon: the engine seam. Everything laded needs from a model goes through
 * one ops table; engine_fake.c implements it with a toy tokenizer for the
 * tests, engine_llama.c with llama/ and decoding/.
 *
 * Threads: generate() runs on the scheduler's workers, up to
 * info.max_parallel calls at once (each its own generation; the real
 * engine steps them together).
 * tokenize and detokenize run on the tokenizer thread, info on the event
 * loop, the detok_* functions on the scheduler: all may run while
 * generate() runs, as they only read the vocabulary. Every function returns 0 or a negative errno unless noted. */
#ifndef LADE_DAEMON_ENGINE_H
#define LADE_DAEMON_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decoding/dec.h"
#include "ipc/ipc.h"

/* Stop strings of one generation: the request's and the chat template's. */
#define SRV_STOP_MAX (IPC_STOP_MAX + 1)

/* Static facts, valid for the engine's lifetime: what the loaded model
 * can do, never a setting (those are the daemon's, from conf/). */
struct srv_engine_info {
    const char *model_name; /* general.name, or the file's basename */
    const char *model_path;
    const char *arch; /* "llama", "qwen2", "qwen3" (general.architecture) */
    const char *device; /* e.g. "NVIDIA H100 (discrete)", "llvmpipe (cpu)" */
    const char *chat_template; /* tokenizer.chat_template, NULL if none */
    const char *bos_token; /* the BOS and EOS tokens' text ("<s>"), NULL if none */
    const char *eos_token;
    uint32_t n_ctx; /* positions one sequence may use */
    uint32_t n_vocab;
    uint32_t max_rows; /* rows one step takes (dec_lookahead_rows() bounds lookahead); 0: any */
    uint32_t max_parallel; /* generate() calls that may run at once, >= 1 */
    uint32_t la_n, la_w,
            la_g; /* the lookahead (N, W, G) chosen for this device (dec_lookahead_choose) */
};

/* Called with the tokens generate emits, in order, as dec_generate emits
 * them (a step's tokens, less any held back while a stop string may be
 * beginning). Returns 0 to go on, or a negative errno to abort (generate
 * returns it). */
typedef int (*srv_emit_fn)(void *ud, const int32_t *tokens, uint32_t n);
/* Polled before the first step and after every emit (the toy engine: every
 * step); true ends the generation with CANCELLED. */
typedef bool (*srv_cancel_fn)(void *ud);

enum {
    SRV_TOK_ADD_BOS = 1 << 0, /* prepend BOS */
    SRV_TOK_SPECIAL = 1 << 1, /* map special-token text ("<s>", "<|im_start|>") to its id */
};

/* What the engine is doing (stats, /metrics). */
struct srv_engine_load {
    uint32_t running; /* generations now */
    uint32_t seqs; /* KV sequences (regions) in all */
    uint32_t seqs_cached; /* idle ones holding a prompt for reuse */
    uint64_t steps, parts; /* model steps, and sequences' parts in them */
    uint64_t rows_plain, rows_lookahead, rows_prefill; /* rows by kind */
    uint64_t prefix_copies, copied_tokens; /* prompts' prefixes copied from other sequences */
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
    /* One generation of prompt[0..n_prompt) (BOS included when the model
     * wants one; n_prompt >= 1, but it may not fit n_ctx: -E2BIG). p comes
     * whole: the daemon's defaults, the live configuration's lookahead
     * features, and checked against its caps, which never exceed what
     * info's max_rows allows; p->stop
     * are matched on the text detok_push gives for the same tokens.
     * -EINVAL: p refused, ret->error says why in one line (the daemon
     * answers out_of_range with it). When
     * it returns 0, ret is filled as dec_generate fills it: finish EOS,
     * STOP, LENGTH, CONTEXT or CANCELLED, n_tokens (the tokens passed to
     * emit), at a STOP the token the stop string begins in and how many
     * bytes of its text are output, and stats (at least steps,
     * draft_tokens, accepted_tokens, prefill_ms and step_ms_total). */
    int (*generate)(void *ctx, const int32_t *prompt, uint32_t n_prompt, const struct dec_params *p,
                    srv_emit_fn emit, srv_cancel_fn cancel, void *ud, struct dec_result *ret);
    /* Optional (NULL: nothing to say beyond running) */
    void (*load)(void *ctx, struct srv_engine_load *ret);
    void (*destroy)(void *ctx);
};

struct srv_engine {
    const struct srv_engine_ops *ops;
    void *ctx;
};

/* Both engines poll cancel(ud) while they load (the real one between the
 * model's tensors) and give up with -ECANCELED when it says so: laded
 * loads on a thread and aborts the load on SIGTERM (main.c). */

/* The toy engine: spec is "key=value,..." with keys delay_ms (per step),
 * load_ms (a load that takes this long, for the tests of signals during a
 * load), tok_us_per_kib (tokenizing sleeps this per KiB of text), n_ctx,
 * max_rows, parallel (generations at once, default 1), template (chatml, llama2, none), device. NULL or "" for
 * defaults. */
int srv_engine_fake_new(const char *spec, srv_cancel_fn cancel, void *ud, struct srv_engine *ret);
/* The real engine (engine_llama.c): model, device and tuning from the
 * checked configuration (keys that need a restart only). Logs its own
 * progress (daemon/ may log). */
struct conf;
int srv_engine_llama_new(const struct conf *cf, srv_cancel_fn cancel, void *ud,
                         struct srv_engine *ret);

static inline void srv_engine_destroy(struct srv_engine *e)
{
    if (e && e->ops)
        e->ops->destroy(e->ctx);
    if (e)
        e->ops = NULL;
}

#endif
