/* decoding: greedy, sampling and lookahead decoding over the model step.
 * Knows nothing of Vulkan: it drives any `struct dec_model`, the real one in
 * llama/ or the toy language of the tests. */
#ifndef LADE_DECODING_DEC_H
#define LADE_DECODING_DEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- The model step: the seam between decoding and llama ----------------
 *
 * One sequence lives in the model: a committed prefix of n_past tokens whose
 * K/V are in the cache. A step runs one forward pass over n rows. Row i
 * attends to the committed prefix, to its ancestors in the step and to
 * itself: rows form a forest through `parent` (an earlier row of the same
 * step, or -1 for "directly after the committed prefix"). A row's position
 * is n_past + its depth (depth 0 for parent -1). Rows must be listed so that
 * parent < i. This one shape covers prefill chains, the lookahead window
 * (every window token's visible set is a chain) and verification tries.
 *
 * K/V of a step's rows go to scratch slots. commit() then appends a chain
 * of the last step's rows to the cache (rows[0] has parent -1, rows[k] has
 * parent rows[k-1]); the other rows are dropped. A new step without commit
 * drops the whole previous step. */

enum dec_want {
    DEC_WANT_NONE = 0, /* row only feeds attention of later rows */
    DEC_WANT_ARGMAX = 1, /* return the argmax token id */
    DEC_WANT_LOGITS = 2, /* return the argmax and the n_vocab logits */
    DEC_WANT_DRAW = 3, /* draw a token (dec_draw, below) and return it in place of the argmax */
    DEC_WANT_TOPK = 4, /* return the top_k candidates of set_draw (dec_top_k, below) */
};

struct dec_row {
    int32_t token;
    int32_t parent; /* -1 or an earlier row of the same step */
    uint32_t want; /* enum dec_want */
    uint32_t u24; /* DRAW rows: the draw's uniform number, u24 / 2^24, u24 < 2^24 */
};

/* Drawing on the model's side. Sampling needs a row's whole distribution,
 * and a model on a GPU has it where it computed the logits: drawing there
 * returns one token id instead of n_vocab logits for the host to walk.
 * set_draw() gives the parameters of the step's DRAW and TOPK rows. For
 * both, the model first applies the repetition penalty (dec_penalized) to
 * the logits of the distinct tokens among the last penalty_last_n tokens
 * of the row's own sequence: the committed prefix, then the row's chain of
 * ancestors in the step, then the row's token. Then:
 *   DRAW: the token dec_draw() picks (so every model draws alike, up to its
 *   exp()), returned in place of the argmax;
 *   TOPK: the row's top_k candidates of dec_top_k(), written into the row's
 *   slot of ret_logits as struct dec_cand; the host finishes the sampling
 *   (order, softmax, top-p, min-p, the draw) on those few. */
struct dec_draw_params {
    float temperature; /* > 0 */
    float min_p; /* 0..1, DRAW rows (TOPK rows leave it to the host) */
    float top_p; /* DRAW rows: the nucleus, in (0, 1); 0 or 1: none (TOPK rows leave it to the host) */
    uint32_t top_k; /* TOPK rows: 1..DEC_TOPK_MAX, 2 top_k <= n_vocab; 0 with DRAW rows only */
    float penalty; /* repetition penalty, > 0, 1 = off */
    uint32_t penalty_last_n; /* tokens of the row's sequence it looks back over */
};

#define DEC_TOPK_MAX 256 /* most candidates a TOPK row returns */

/* The repetition penalty of one logit (llama.cpp's rule, with the division
 * made a multiplication by the reciprocal so that every device rounds it
 * alike: positive logits shrink, negative ones grow). */
static inline float dec_penalized(float logit, float penalty)
{
    return logit > 0.0f ? logit * (1.0f / penalty) : logit * penalty;
}

/* A TOPK row's candidate: a token and its logit after the penalty and
 * times 1 / temperature (in float: logit * (1.0f / temperature)). */
struct dec_cand {
    int32_t id;
    float logit;
};

/* The k best tokens of `logits` (already penalized) by scaled logit, ties
 * to the lower id (-0 equals +0; NaN counts as below every number), written
 * to out[0..k) in ascending id order with their scaled logits. This is what
 * a TOPK row returns; the order makes ties break by id on the host too.
 * `scaled` and `idx` are scratch of n_vocab each. k in 1..n_vocab. */
void dec_top_k(const float *logits, uint32_t n_vocab, float temperature, uint32_t k,
               struct dec_cand *out, float *scaled, int32_t *idx);

#define DEC_DRAW_BLOCK 128 /* tokens whose weights one partial sum adds */
#define DEC_DRAW_GROUP 32 /* partial sums one group sum adds */

/* The token at u24 / 2^24 of the cumulative distribution of
 * w_v = exp(l_v / temperature - max_v(l_v / temperature)), in f32
 * arithmetic with every sum in one order: the mass of a set of tokens is
 * the sum of their weights by levels, a block's sum adding its
 * DEC_DRAW_BLOCK weights in id order (the others count as 0), a group's
 * sum its DEC_DRAW_GROUP block sums, the total the group sums.
 *
 * With top_p in (0, 1) the draw is over the nucleus first: the shortest
 * prefix of the candidate order (scaled logit descending, id ascending,
 * -0 as +0, NaN last) whose mass reaches top_p * (the mass of every
 * token), weights of NaN counting as 0. Then weights below min_p (of the
 * best token's 1) become 0, in the nucleus or the whole row.
 *
 * The draw: target = u24 * 2^-24 * the mass of what is left; the first
 * group whose running sum exceeds target, then in it the first such block,
 * then token (the running sum carried on). Where rounding leaves a level
 * with no such entry, its last entry with a nonzero sum is taken, and the
 * levels below take theirs. A row whose total is 0 (only non-finite
 * logits do that) draws token 0. `w` is scratch of n_vocab floats, `ids`
 * of n_vocab ids (used only with top-p; NULL will do without).
 *
 * The nucleus is found by bisection on the order, one mass a try, the way
 * a GPU finds it without sorting (draw.c says how the host keeps that
 * cheap). */
int32_t dec_draw(const float *logits, uint32_t n_vocab, const struct dec_draw_params *d,
                 uint32_t u24, float *w, uint32_t *ids);

struct dec_model {
    void *ctx;
    uint32_t n_vocab;
    uint32_t n_ctx; /* positions the cache holds */
    uint32_t max_rows; /* most rows one step() takes */
    int32_t bos, eos;
    /* More ids that end a generation as eos does (Llama 3's <|eot_id|>,
     * ChatML's <|im_end|>); NULL when n_eog is 0. Owned by the model. */
    const int32_t *eog;
    uint32_t n_eog;

    /* Append tokens to the committed prefix (chunked inside as needed) and
     * return, for the last token, its argmax and (if ret_logits is not NULL)
     * its logits. 0 or negative errno (-E2BIG past n_ctx). */
    int (*prefill)(void *ctx, const int32_t *tokens, uint32_t n, int32_t *ret_argmax,
                   float *ret_logits);
    /* One forward pass. ret_argmax[i] is the argmax for ARGMAX and LOGITS
     * rows, the token drawn for DRAW rows (sent only to a model with
     * set_draw), and -1 for NONE and TOPK rows (a model need not find the
     * argmax of a sampled row); ret_logits holds a slot of n_vocab
     * floats for each row with want == LOGITS or TOPK, in row order: its
     * logits, or its top_k struct dec_cand (TOPK rows, sent only to a model
     * with set_draw). */
    int (*step)(void *ctx, const struct dec_row *rows, uint32_t n, int32_t *ret_argmax,
                float *ret_logits);
    /* Keep a chain of the last step's rows (see above). */
    int (*commit)(void *ctx, const uint32_t *rows, uint32_t n);
    /* Truncate the committed prefix to n_keep tokens (0: new sequence). */
    int (*rewind)(void *ctx, uint32_t n_keep);
    uint32_t (*n_past)(void *ctx);
    /* Optional (NULL: the decoder samples on the host from logits): the
     * parameters of later DRAW and TOPK rows. 0, or negative errno (e.g.
     * -ENOTSUP: more than the model can do) and the decoder samples on the
     * host. */
    int (*set_draw)(void *ctx, const struct dec_draw_params *d);
    /* Optional (NULL: every generation starts at 0): the prefix cache.
     * Keeps the longest prefix of the committed sequence that equals
     * tokens[0..k), with k at most n - 1 (the last prompt token always
     * goes through a step, which gives the first token), truncating the
     * rest; returns k. */
    uint32_t (*reuse)(void *ctx, const int32_t *tokens, uint32_t n);
};

/* ---- Several sequences in one step ----------------------------------------
 *
 * A model that holds n_seq sequences, each as above (its committed prefix,
 * its last step's rows, its commits and rewinds), and runs the rows of
 * several of them in one forward pass: a step is a list of parts, each the
 * rows of one sequence (at most one part a sequence), laid out one after
 * the other; a row's parent is within its part, and it attends to its own
 * sequence only. A row's results must not depend on the other parts (the
 * kernels are batch-invariant), which is what makes a batched sequence's
 * output its output alone. dec_batch (below) builds the single-sequence
 * seam of each sequence on top. */
struct dec_part {
    uint32_t seq;
    const struct dec_row *rows;
    uint32_t n;
    int32_t *ret_argmax; /* as dec_model.step, per part */
    float *ret_logits;
};

struct dec_multi {
    void *ctx;
    uint32_t n_vocab, n_ctx; /* n_ctx: positions of each sequence */
    uint32_t max_rows; /* rows of all parts of one step together */
    uint32_t n_seq;
    int32_t bos, eos;
    const int32_t *eog;
    uint32_t n_eog;
    int (*step)(void *ctx, const struct dec_part *parts, uint32_t n_parts);
    /* A commit keeps a chain of the sequence's rows of the last step it
     * had rows in, as long as no step ran since without it. */
    int (*commit)(void *ctx, uint32_t seq, const uint32_t *rows, uint32_t n);
    int (*rewind)(void *ctx, uint32_t seq, uint32_t n_keep);
    uint32_t (*n_past)(void *ctx, uint32_t seq);
    /* The n_past tokens whose K/V the sequence holds (the prefix cache's
     * key); valid until the sequence's next commit or rewind. */
    const int32_t *(*tokens)(void *ctx, uint32_t seq);
    /* Optional: as dec_model.set_draw, for the sequence's later DRAW and
     * TOPK rows (each sequence its own: they share steps all the same). */
    int (*set_draw)(void *ctx, uint32_t seq, const struct dec_draw_params *d);
    /* Optional: dst (not running) drops what it holds and takes the first
     * n tokens of src (running or not, n <= its n_past) and their K/V, as
     * if it had committed them; returns how many it took (fewer when the
     * model has no room to copy more now). */
    uint32_t (*copy_prefix)(void *ctx, uint32_t dst, uint32_t src, uint32_t n);
};

/* How much of a cache holding `cached` a prompt of n tokens may keep: their
 * longest common prefix, at most n - 1 (dec_model.reuse's rule). Inline
 * so that a model implements reuse without linking decoding/. */
static inline uint32_t dec_reuse_len(const int32_t *cached, uint32_t n_cached,
                                     const int32_t *prompt, uint32_t n)
{
    uint32_t k = 0, lim = n ? n - 1 : 0;
    lim = n_cached < lim ? n_cached : lim;
    while (k < lim && cached[k] == prompt[k])
        k++;
    return k;
}

/* ---- The batch: sequences decoded on their own threads, stepped together ---
 *
 * Each sequence runs dec_generate on its own thread over the dec_model
 * that dec_batch_model gives; that model's step() does not run at once:
 * it waits until every joined sequence has asked for its step (or left),
 * then one thread runs them together, in as few model steps as fit
 * max_rows (the oldest request first). Between
 * two model steps every sequence that had rows in the first has committed
 * or given them up, so a sequence's scratch rows are never overwritten
 * before its commit. Thread-safe. */
struct dec_batch;

/* Rows by kind, for statistics: a one-row part is plain, a prefill chunk
 * prefill, anything else lookahead. */
struct dec_batch_stats {
    uint64_t steps; /* model steps */
    uint64_t parts; /* parts run, all steps together */
    uint64_t rows_plain, rows_lookahead, rows_prefill;
    uint64_t copies, copied_tokens; /* dec_batch_share's prefix copies */
    uint32_t joined; /* sequences joined now */
};

/* 0, -EINVAL (a model without tokens/commit/...), -ENOMEM. */
int dec_batch_new(const struct dec_multi *m, struct dec_batch **ret);
void dec_batch_free(struct dec_batch *b);
/* Sequence seq's single-sequence model (max_rows: the batch's; the
 * prefill goes in chunks of max_rows / (sequences joined), but at least
 * chunk rows, 0: max_rows). Its step() is valid between join and leave
 * only. */
void dec_batch_model(struct dec_batch *b, uint32_t seq, uint32_t chunk, struct dec_model *ret);
/* seq takes part in steps from now on (-EBUSY: joined already), until
 * leave; a leaving sequence's pending nothing. */
int dec_batch_join(struct dec_batch *b, uint32_t seq);
void dec_batch_leave(struct dec_batch *b, uint32_t seq);
void dec_batch_get_stats(struct dec_batch *b, struct dec_batch_stats *ret);
/* The prefix cache across sequences: when another sequence (running or
 * not) holds a longer prefix of the prompt than seq does, seq (not
 * joined) takes a copy of it (dec_multi.copy_prefix), so that a system
 * prompt one client's sequence holds serves the next client's too. Call
 * before seq's generation; returns the prompt tokens seq now holds (what
 * dec_model.reuse will keep). */
uint32_t dec_batch_share(struct dec_batch *b, uint32_t seq, const int32_t *prompt, uint32_t n);

/* ---- Generation: the API for the daemon and the CLI ----------------------
 *
 * A session is made once per model (and per configured caps) and holds every
 * buffer the per-token path needs; dec_generate() allocates nothing. One
 * session runs one generation at a time and is not thread-safe.
 *
 * Every generation is exact: greedy output (temperature 0) is the plain
 * greedy continuation token for token, lookahead or not; sampled output
 * draws each emitted token from the model's (transformed) distribution with
 * exactly one uniform number of the seeded generator, lookahead or not, so a
 * seed gives the same tokens either way as long as the model's logits do not
 * depend on which rows share a step. docs/lookahead.md has the details. */

#define DEC_N_LIMIT 16 /* hard upper bound on N, whatever the caps say */

enum dec_finish {
    DEC_FINISH_NONE = 0, /* not finished (never returned by dec_generate) */
    DEC_FINISH_EOS, /* the model produced EOS (not emitted) */
    DEC_FINISH_STOP, /* a stop string completed (excluded from output) */
    DEC_FINISH_LENGTH, /* max_tokens tokens were generated */
    DEC_FINISH_CONTEXT, /* prompt + generated tokens filled n_ctx */
    DEC_FINISH_CANCELLED, /* emit() returned nonzero */
    DEC_FINISH_ERROR, /* the model failed; dec_result.error says how */
};

/* "eos", "stop", "length", "context", "cancelled", "error", "none"; never NULL. */
const char *dec_finish_name(enum dec_finish f);

/* What a request asks for. Start from dec_params_default(). */
struct dec_params {
    uint32_t max_tokens; /* tokens to generate at most, >= 1 */
    /* Sampling, applied in this order: repetition penalty, temperature,
     * top-k, softmax, top-p, min-p. temperature 0 is greedy (the other
     * knobs then only matter through the repetition penalty). */
    float temperature; /* 0 = greedy */
    uint32_t top_k; /* 0 = off */
    float top_p; /* 1 = off */
    float min_p; /* 0 = off */
    float repeat_penalty; /* 1 = off; dec_penalized: shrink positive logits, grow negative ones */
    uint32_t repeat_last_n; /* tokens (prompt included) the penalty looks back over */
    uint64_t seed; /* sampling and lookahead window initialisation */
    /* Lookahead. N-gram size n >= 3, window w >= 1, n-grams verified g >= 1. */
    bool lookahead; /* false: one token per step */
    uint32_t n;
    uint32_t w;
    uint32_t g;
    bool bonus; /* a fully matched n-gram also yields the next token */
    bool seed_pool; /* pool seeded from the prompt and fed with output n-grams */
    bool adaptive; /* fall back to plain steps while lookahead does not pay */
    /* Keep what the model's cache shares with the prompt (dec_model.reuse):
     * the same tokens either way, only the prefill differs. */
    bool cache_prompt;
    /* Stop conditions. Stop strings are NUL-terminated, non-empty, matched on
     * the bytes of dec_text pieces; they need a dec_text. */
    const char *const *stop;
    uint32_t n_stop;
    bool stop_at_eos;
};

/* Limits from the configuration that params are checked against. */
struct dec_caps {
    uint32_t max_n;
    uint32_t max_w;
    uint32_t max_g;
    uint32_t max_tokens;
    uint32_t max_stop; /* stop strings per request */
    uint32_t max_stop_len; /* bytes per stop string */
    uint32_t pool_entries; /* n-grams the pool holds at most; 0 = sized from n_ctx */
};

/* The decoder's neutral parameters, for library callers (tools, tests):
 * greedy, no penalty, lookahead (5, 15, 15) with every feature on, stop
 * at EOS. laded does not take its defaults from here: max_tokens and the
 * lookahead fields come from its configuration (conf/), the sampling
 * fields are the protocol's "off" values. Inline so that ipc/, which
 * parses requests straight into this struct, starts from the same values
 * without linking decoding/. */
static inline struct dec_params dec_params_default(void)
{
    return (struct dec_params){
        .max_tokens = 256,
        .temperature = 0.0f,
        .top_k = 0,
        .top_p = 1.0f,
        .min_p = 0.0f,
        .repeat_penalty = 1.0f,
        .repeat_last_n = 64,
        .seed = 0,
        .lookahead = true,
        .n = 5,
        .w = 15,
        .g = 15,
        .bonus = true,
        .seed_pool = true,
        .adaptive = true,
        .cache_prompt = true,
        .stop = NULL,
        .n_stop = 0,
        .stop_at_eos = true,
    };
}

/* The caps of a default configuration (tools and tests start here). */
struct dec_caps dec_caps_default(void);

/* Rows one lookahead step of (n, w, g) may take (n >= 3): the window's
 * widest step, warm-up included (the row after the prefix among them),
 * plus g candidate n-grams of n - 1 tokens. A model runs (n, w, g) when
 * this is at most its max_rows; dec_generate refuses it otherwise. */
uint32_t dec_lookahead_rows(uint32_t n, uint32_t w, uint32_t g);

/* Lowers caps->max_w and caps->max_g (the larger one first), then
 * caps->max_n, until a step at all three maxima takes at most max_rows
 * rows, so that every (n, w, g) within the caps runs on the model. A
 * max_n below 3 counts as 3 (decoding's least N). Returns 0, or -ERANGE
 * when not even (3, 1, 1) fits (the caps are then (max_n, 1, 1)). */
int dec_caps_fit(struct dec_caps *caps, uint32_t max_rows);

/* Lookahead (N, W, G) for this model on this device, the one way laded,
 * lade-generate and the benchmark choose it: the row cost measured as
 * dec_measure_row_cost_clock does on CLOCK_MONOTONIC, mapped by
 * dec_lookahead_default_for_cost. Sets only p->n, p->w, p->g.
 *
 * Where the cost cannot be measured (the model takes fewer than 33 rows or
 * 41 positions, or a step failed) the choice is the narrowest, (3, 3, 3),
 * as for the dearest rows: 12 rows a step fit nearly any model, and not
 * knowing what rows cost, guessing dear loses a little of lookahead's gain
 * on a big GPU, where guessing cheap (15-wide windows, 141 rows a step)
 * would make each step many times dearer than a plain one on a CPU driver.
 *
 * *ret_cost (may be NULL): the cost measured, or -1. Returns 0, or the
 * reason it could not measure (-EINVAL or the model's negative errno); p is
 * set either way and the model is left rewound to 0. */
int dec_lookahead_choose(const struct dec_model *m, struct dec_params *p, double *ret_cost);

/* The (N, W, G) for a device where one more row in a step costs
 * `row_cost` times a one-row step (about 0 on a large GPU, larger where a
 * step's time grows with its rows, as on a CPU): the defaults (5, 15, 15)
 * when rows are nearly free, fewer rows as they get dearer (at an H100's
 * cost for a small model, (8, 1, 5): long n-grams, a one-column window),
 * (3, 3, 3) past 1/24. Sets only p->n, p->w, p->g. */
void dec_lookahead_default_for_cost(double row_cost, struct dec_params *p);

/* What one more row in a step costs, relative to a one-row step, on a
 * clock the caller supplies (nanoseconds; NULL: CLOCK_MONOTONIC; tests use
 * a model's virtual time): after three untimed steps, one-row and 33-row
 * steps timed in turn (best of five each) over a short throwaway sequence;
 * the model is rewound to 0 afterwards. 0, -EINVAL when the model takes
 * fewer than 33 rows or 41 positions, or the model's negative errno. */
int dec_measure_row_cost_clock(const struct dec_model *m, uint64_t (*now_ns)(void *user),
                               void *user, double *ret_cost);

/* 0, or -EINVAL with a one-line reason in reterr (may be NULL), e.g.
 * "lookahead w 40 is above the configured max_w 32". */
int dec_params_validate(const struct dec_params *p, const struct dec_caps *caps, char *reterr,
                        size_t reterr_len);

/* Bytes a token adds to the output text (SentencePiece piece with "▁" as a
 * space, byte tokens as their byte). The pointer must stay valid until the
 * next call. dec_generate calls piece() once for each token it decodes,
 * in order, EOS excepted, so a streaming detokenizer may stand behind it. */
struct dec_text {
    const char *(*piece)(void *user, int32_t id, size_t *ret_len);
    void *user;
};

/* Tokens of one step, in order. Nonzero return cancels the generation. */
typedef int (*dec_emit_fn)(void *user, const int32_t *tokens, uint32_t n);

#define DEC_HIST_MAX (DEC_N_LIMIT + 1)

struct dec_stats {
    uint32_t steps; /* forward passes after the prefill */
    uint32_t lookahead_steps; /* of which carried a lookahead window */
    uint32_t plain_steps; /* of which were one-row steps */
    uint64_t lookahead_rows; /* rows of the lookahead steps, all together (what they cost) */
    uint32_t tokens; /* tokens decoded, EOS and stop-string tokens included */
    uint32_t prefill_tokens; /* prompt tokens that went through the model */
    uint32_t reused_tokens; /* prompt tokens whose K/V the cache had (dec_model.reuse) */
    double tokens_per_pass; /* tokens / (steps + 1): the prefill pass yields the first token */
    double tokens_per_step; /* tokens after the first / steps */
    uint32_t hist[DEC_HIST_MAX]; /* hist[k]: steps that yielded k tokens (1..N) */
    uint32_t accepted_depth
            [DEC_N_LIMIT]; /* [d]: steps whose verification accepted >= d candidate tokens (d >= 1) */
    uint32_t verify_steps; /* steps with at least one candidate n-gram */
    uint32_t hit_steps; /* of which accepted at least one candidate token */
    uint64_t draft_tokens; /* candidate tokens offered: verify_steps times the deepest candidate (N-1) */
    uint64_t accepted_tokens; /* candidate tokens accepted: the sum of accepted_depth[1..] */
    double hit_rate; /* hit_steps / verify_steps */
    uint32_t pool_size; /* n-grams in the pool at the end */
    uint32_t fallbacks; /* times the adaptive rule switched to plain steps */
    double prefill_ms;
    double step_ms_total; /* all steps, monotonic clock */
    double step_ms_mean;
    double lookahead_step_ms_mean;
    double plain_step_ms_mean;
};

/* What the caller's output is:
 *   the pieces of the emitted tokens, in order, followed (finish STOP only)
 *   by the first stop_token_bytes bytes of the piece of stop_token.
 * Tokens are emitted as soon as no stop string can begin in their text; a
 * token whose text might begin a stop string is held back until the
 * following tokens decide. So a daemon can stream every emitted token's
 * full text at once and, at a STOP, append that one partial piece.
 * The stop string and everything after it are never emitted. EOS is never
 * emitted when stop_at_eos is set. Held-back tokens are emitted before
 * dec_generate returns for EOS, LENGTH and CONTEXT; not for CANCELLED or
 * ERROR. */
struct dec_result {
    enum dec_finish finish;
    uint32_t n_tokens; /* tokens emitted */
    int32_t stop_token; /* STOP: token in which the stop string begins, or -1 */
    uint32_t stop_token_bytes; /* STOP: leading bytes of its piece that are output */
    int err; /* ERROR: the model's negative errno */
    char error[160]; /* ERROR or a rejected request: one line */
    struct dec_stats stats;
};

/* ---- Stop strings over a byte stream -------------------------------------
 * The matcher dec_generate runs a request's stop strings with, for callers
 * that make their text some other way (the daemon's toy engine). The
 * caller embeds the struct. Only the bytes that may still begin a stop
 * string are kept, so a stream of any length goes through a buffer of the
 * longest stop string plus DEC_STOP_CHUNK bytes. */

#define DEC_STOP_CHUNK 64

struct dec_stop {
    const char *const *str;
    uint32_t n;
    size_t max_len;
    char *buf; /* bytes from offset base on that may still start a stop string */
    size_t cap;
    size_t len;
    uint64_t base; /* absolute offset of buf[0]: nothing before it can start a match */
    uint64_t total; /* bytes fed */
};

/* Room for stop strings of up to max_stop_len bytes. 0 or -ENOMEM. */
int dec_stop_init(struct dec_stop *st, uint32_t max_stop_len);
/* Frees what init took; st may be NULL or zeroed. */
void dec_stop_done(struct dec_stop *st);
/* Start a stream matched against str[0..n) (non-empty strings of at most
 * max_stop_len bytes, borrowed until the next reset; n may be 0). */
void dec_stop_reset(struct dec_stop *st, const char *const *str, uint32_t n);
/* Feed bytes. Returns true when a stop string is complete; *ret_at is then
 * the absolute offset where it begins (earliest over all strings). */
bool dec_stop_feed(struct dec_stop *st, const char *bytes, size_t n, uint64_t *ret_at);
/* Bytes before this absolute offset are output for sure. */
static inline uint64_t dec_stop_safe(const struct dec_stop *st)
{
    return st->n ? st->base : st->total;
}

struct dec_session;

/* 0, -EINVAL (caps inconsistent or beyond DEC_N_LIMIT, model NULL), -ENOMEM. */
int dec_session_new(const struct dec_model *model, const struct dec_caps *caps,
                    struct dec_session **ret);
void dec_session_free(struct dec_session *s);

/* Later generations of s run on model, which must have the vocabulary,
 * context and max_rows s was made for (-EINVAL otherwise): a session is
 * scratch, so a few serve the many sequences of a batch in turn. */
int dec_session_use(struct dec_session *s, const struct dec_model *model);

/* Monotonic clock in nanoseconds used for timings and the adaptive rule;
 * tests inject a deterministic one. NULL restores CLOCK_MONOTONIC. */
void dec_session_set_clock(struct dec_session *s, uint64_t (*now_ns)(void *user), void *user);

/* Generate a continuation of prompt (n_prompt >= 1 tokens, BOS included
 * if the model wants one) into a fresh sequence (the model is rewound to 0,
 * or with dec_model.reuse to the prefix its cache shares with the prompt).
 * emit() receives the accepted tokens of each step (see dec_result).
 * text may be NULL unless params has stop strings.
 * Returns 0 when the generation ran to a finish reason (CANCELLED included;
 * ret->finish says which); -EINVAL for params that fail validation or do
 * not fit the model (ret->error says why); -E2BIG when the prompt is longer
 * than n_ctx (finish CONTEXT); the model's negative errno when a model call
 * failed (finish ERROR). ret is always filled.
 * Afterwards (finish other than ERROR) the model's cache holds the prompt
 * and the decoded tokens (stats.tokens: EOS and the stop string's tokens
 * included) but the last one, whose K/V the next step would compute. */
int dec_generate(struct dec_session *s, const int32_t *prompt, uint32_t n_prompt,
                 const struct dec_params *p, const struct dec_text *text, dec_emit_fn emit,
                 void *user, struct dec_result *ret);

#endif
