/* A deterministic toy language model behind struct dec_model, checking
 * every contract of the seam (dec.h) as it goes. The next-token logits of a
 * row depend only on the last three tokens it sees and its position, so
 * they are batch-invariant by construction, and the language repeats
 * itself (mostly a function of the last two tokens), so n-grams recur as
 * they do in code. */
#ifndef LADE_TESTS_DECODING_TOY_H
#define LADE_TESTS_DECODING_TOY_H

#include <stdbool.h>
#include <stdint.h>

#include "decoding/dec.h"

struct toy_cfg {
    uint32_t n_vocab;
    uint32_t n_ctx;
    uint32_t max_rows;
    int32_t eos;
    uint32_t eos_pos; /* EOS becomes the argmax at positions >= eos_pos; 0 = never */
    float sharp; /* logit bonus of the preferred token */
    uint64_t salt; /* picks one language among many */
    int fail_step; /* step number (1-based) that returns -EIO; 0 = never */
    bool draws; /* offers set_draw: draws DRAW rows and answers TOPK rows itself, as a GPU model does */
};

struct toy {
    struct dec_model model;
    struct toy_cfg cfg;
    int32_t *seq; /* committed tokens */
    uint32_t n_past;
    struct dec_row *rows; /* last step */
    uint32_t *depth;
    uint32_t n_rows;
    bool can_commit;
    uint32_t steps, rows_total, prefills, commits;
    uint64_t clock_ns; /* virtual time: 1 ms a step plus row_ns a row */
    uint64_t row_ns;
    uint32_t violations;
    char why[256]; /* first violation */
    char (*piece)[8]; /* token text */
    struct dec_draw_params draw; /* from set_draw */
    bool draw_set;
    uint32_t draws; /* DRAW rows drawn */
    uint32_t tops; /* TOPK rows answered */
};

struct toy_cfg toy_cfg_default(void);
struct toy *toy_new(const struct toy_cfg *cfg);
void toy_free(struct toy *t);
/* Logits after `ctx` (n >= 1 tokens, the last one newest) at position pos. */
void toy_logits(const struct toy *t, const int32_t *ctx, uint32_t n, uint32_t pos, float *out);
int32_t toy_argmax(const float *l, uint32_t n);
/* Plain greedy continuation computed without lade_decoding. */
uint32_t toy_greedy(const struct toy *t, const int32_t *prompt, uint32_t n_prompt, uint32_t max_new,
                    int32_t *out);
/* A prompt: a random start followed by the toy's own greedy text, so that
 * its n-grams are ones the model will produce again. */
void toy_prompt(const struct toy *t, uint64_t seed, uint32_t n, int32_t *out);
const char *toy_piece(void *user, int32_t id, size_t *ret_len);
uint64_t toy_clock(void *user);

/* Collects emitted tokens; cancels after cancel_after calls (0 = never). */
struct toy_sink {
    int32_t tok[4096];
    uint32_t n;
    uint32_t calls;
    uint32_t cancel_after;
    uint32_t max_batch;
};

int toy_sink_emit(void *user, const int32_t *tokens, uint32_t n);
/* dec_generate into a fresh sink, with toy text when with_text. */
int toy_run(struct toy *t, struct dec_session *s, const int32_t *prompt, uint32_t n_prompt,
            const struct dec_params *p, bool with_text, struct toy_sink *sink,
            struct dec_result *res);

#endif
