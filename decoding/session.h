/* The session object, shared by session.c and generate.c. */
#ifndef LADE_DECODING_SESSION_H
#define LADE_DECODING_SESSION_H

#include "decoding/dec-internal.h"

/* When lookahead stops paying (adaptive rule, docs/lookahead.md). */
struct dec_adapt {
    double la_ns, la_tokens; /* moving averages over full-window steps */
    double plain_ns; /* moving average over plain steps; 0 = not measured */
    uint32_t la_seen; /* full-window steps since the last decision */
    uint32_t plain_left; /* plain steps still to run before retrying */
    uint32_t backoff; /* plain steps of the next fallback */
};

struct dec_session {
    const struct dec_model *m;
    struct dec_caps caps;
    uint32_t rows_cap;
    uint32_t logit_rows;
    void *mem; /* rows ... end_off in one allocation (dec_alloc_parts) */
    struct dec_row *rows; /* [rows_cap] */
    int32_t *argmax; /* [rows_cap] */
    int32_t *logit_slot; /* [rows_cap] logits index of a LOGITS row */
    float *logits; /* [logit_rows * n_vocab] */
    int32_t *hist; /* [n_ctx + 1] prompt then generated tokens */
    uint64_t *end_off; /* [n_ctx + 1] per generated token: text end offset */
    struct dec_pool pool;
    struct dec_window win;
    struct dec_trie trie;
    struct dec_sampler smp;
    struct dec_stop stop;
    struct dec_rng rng; /* sampling draws only */
    uint64_t (*now)(void *user);
    void *now_user;

    /* One generation. */
    const struct dec_params *p;
    const struct dec_text *text;
    dec_emit_fn emit;
    void *user;
    struct dec_result *ret;
    bool need_logits; /* the prefill's token is chosen from logits */
    uint32_t step_want; /* what a step's choosing rows want: ARGMAX, LOGITS, DRAW or TOPK */
    uint32_t top_k; /* TOPK rows: candidates a row returns */
    uint32_t draw_u24[DEC_N_LIMIT + 1]; /* the numbers of the next draws (dec_peek_draws) */
    uint32_t n_prompt;
    uint32_t n_gen; /* generated tokens kept, hist[n_prompt..] */
    uint32_t n_emitted;
    uint64_t stop_at;
    struct dec_adapt ad;
    uint32_t path_row[DEC_N_LIMIT + 1];
    double la_ms, plain_ms;
};

/* generate.c, for lookahead.c */
int32_t dec_choose(struct dec_session *s, uint32_t want, uint32_t row, uint32_t n_hist);
/* Fill draw_u24[0..n) with the numbers the next n draws will use, without
 * using them: a step's DRAW row at depth d is chosen, if at all, as the
 * step's d-th token, so it gets draw_u24[d] and dec_choose then consumes
 * exactly that number, as a draw from logits would. */
void dec_peek_draws(struct dec_session *s, uint32_t n);
uint32_t dec_budget(const struct dec_session *s);
uint32_t dec_accept(struct dec_session *s, uint32_t k);
void dec_set_error(struct dec_session *s, int err, const char *what);
/* lookahead.c */
bool dec_lookahead_fits(const struct dec_session *s);
int dec_lookahead_step(struct dec_session *s);

#endif
