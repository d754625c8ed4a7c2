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
    DEC_WANT_NONE = 0,   /* row only feeds attention of later rows */
    DEC_WANT_ARGMAX = 1, /* return the argmax token id */
    DEC_WANT_LOGITS = 2, /* return the argmax and the n_vocab logits */
};

struct dec_row {
    int32_t token;
    int32_t parent; /* -1 or an earlier row of the same step */
    uint32_t want;  /* enum dec_want */
};

struct dec_model {
    void *ctx;
    uint32_t n_vocab;
    uint32_t n_ctx;     /* positions the cache holds */
    uint32_t max_rows;  /* most rows one step() takes */
    int32_t bos, eos;

    /* Append tokens to the committed prefix (chunked inside as needed) and
     * return, for the last token, its argmax and (if ret_logits is not NULL)
     * its logits. 0 or negative errno (-E2BIG past n_ctx). */
    int (*prefill)(void *ctx, const int32_t *tokens, uint32_t n, int32_t *ret_argmax, float *ret_logits);
    /* One forward pass. ret_argmax[i] is filled for rows with want != NONE
     * (-1 otherwise); ret_logits holds n_vocab floats for each row with
     * want == LOGITS, in row order. */
    int (*step)(void *ctx, const struct dec_row *rows, uint32_t n, int32_t *ret_argmax, float *ret_logits);
    /* Keep a chain of the last step's rows (see above). */
    int (*commit)(void *ctx, const uint32_t *rows, uint32_t n);
    /* Truncate the committed prefix to n_keep tokens (0: new sequence). */
    int (*rewind)(void *ctx, uint32_t n_keep);
    uint32_t (*n_past)(void *ctx);
};

#endif
