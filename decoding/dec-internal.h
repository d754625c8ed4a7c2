/* decoding internals: plain data and helpers shared by the files of this
 * folder and by its unit tests. Not for use outside decoding/ and
 * tests/decoding/. */
#ifndef LADE_DECODING_DEC_INTERNAL_H
#define LADE_DECODING_DEC_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decoding/dec.h"

/* ---- parts.c: several arrays in one allocation -------------------------- */

/* An array of n elements of size bytes, its pointer stored in *ptr. */
struct dec_mem_part {
    void **ptr;
    size_t n, size;
};

/* One zeroed allocation holding every part (each 16-byte aligned): sets
 * each *ptr and *ret_mem, which free() releases. 0, or -ENOMEM (on
 * failure or when the sizes overflow) with every pointer NULL. */
int dec_alloc_parts(const struct dec_mem_part *parts, size_t n_parts, void **ret_mem);

/* ---- rng.c: xoshiro256** seeded through splitmix64 ---------------------- */

struct dec_rng {
    uint64_t s[4];
};

void dec_rng_seed(struct dec_rng *r, uint64_t seed);
uint64_t dec_rng_next(struct dec_rng *r);
/* Uniform in [0, 1) with 53 random bits. */
double dec_rng_uniform(struct dec_rng *r);
/* Uniform in [0, 2^24): a draw's number (dec_draw). */
uint32_t dec_rng_u24(struct dec_rng *r);
/* Uniform in [0, n), n >= 1, without modulo bias. */
uint32_t dec_rng_below(struct dec_rng *r, uint32_t n);

/* ---- pool.c: n-gram pool ------------------------------------------------
 * N-grams keyed by their first token; a key holds its (N-1)-token tails
 * oldest first, at most g of them. Adding a tail already present moves it
 * to newest; adding one to a full key drops that key's oldest. Entries come
 * from a fixed arena; when it is exhausted the globally least recently
 * added entry is dropped (only then does the policy differ from the
 * reference, whose pool is unbounded in keys). */

struct dec_pool_entry {
    int32_t key;
    int32_t prev, next; /* within the key, oldest to newest; -1 ends */
    int32_t aprev, anext; /* arena age list, oldest to newest */
};

struct dec_pool {
    uint32_t n_vocab;
    uint32_t max_len; /* tokens per tail the arena was sized for */
    uint32_t cap; /* entries in the arena */
    uint32_t len; /* tokens per tail now (N - 1) */
    uint32_t g; /* tails per key now */
    uint32_t n_entries;
    void *mem; /* the arrays below, in one allocation (dec_alloc_parts) */
    int32_t *head; /* [n_vocab] oldest tail of a key, -1 */
    int32_t *tail; /* [n_vocab] newest tail of a key */
    uint32_t *count; /* [n_vocab] */
    struct dec_pool_entry *e; /* [cap] */
    int32_t *tok; /* [cap * max_len] */
    int32_t free_head; /* through .next */
    int32_t age_head, age_tail;
};

int dec_pool_init(struct dec_pool *p, uint32_t n_vocab, uint32_t max_len, uint32_t cap);
void dec_pool_done(struct dec_pool *p);
/* Empty the pool and set tail length and per-key cap for a generation. */
void dec_pool_reset(struct dec_pool *p, uint32_t len, uint32_t g);
void dec_pool_add(struct dec_pool *p, int32_t key, const int32_t *tail);
/* Iteration over a key's tails, oldest first: index or -1. */
static inline int32_t dec_pool_first(const struct dec_pool *p, int32_t key)
{
    return (key >= 0 && (uint32_t)key < p->n_vocab) ? p->head[key] : -1;
}
static inline int32_t dec_pool_next(const struct dec_pool *p, int32_t i)
{
    return p->e[i].next;
}
static inline const int32_t *dec_pool_tokens(const struct dec_pool *p, int32_t i)
{
    return p->tok + (size_t)i * p->max_len;
}
/* Add every n-gram of tokens[0..n) (n-gram size len + 1). */
void dec_pool_add_all(struct dec_pool *p, const int32_t *tokens, uint32_t n);

/* ---- window.c: the 2D Jacobi window -------------------------------------
 * Levels 0..n-2. Warm-up (fill < n-2): level 0 holds w+n-3-fill tokens,
 * levels 1..fill one more each. Full (fill == n-2): level 0 holds w-1,
 * levels 1..n-2 hold w. See docs/lookahead.md for the layout. */

struct dec_window {
    uint32_t n, w;
    uint32_t fill; /* highest filled level */
    uint32_t len[DEC_N_LIMIT]; /* tokens per level */
    int32_t *lv[DEC_N_LIMIT]; /* each of capacity w_max + n_max */
    uint32_t base[DEC_N_LIMIT]; /* row of level l column 0 in the last built step */
    int32_t *buf;
};

int dec_window_init(struct dec_window *win, uint32_t n_max, uint32_t w_max);
void dec_window_done(struct dec_window *win);
/* Fill level 0 with w+n-3 tokens drawn uniformly from prompt. */
void dec_window_start(struct dec_window *win, uint32_t n, uint32_t w, const int32_t *prompt,
                      uint32_t n_prompt, struct dec_rng *rng);
static inline bool dec_window_is_full(const struct dec_window *win)
{
    return win->fill + 2 == win->n;
}
/* Rows the window adds after row 0 (the last accepted token). */
uint32_t dec_window_rows(const struct dec_window *win);
/* Deepest row depth (row 0 has depth 0). */
uint32_t dec_window_depth(const struct dec_window *win);
/* Most rows over all phases of (n, w). */
uint32_t dec_window_rows_max(uint32_t n, uint32_t w);
/* Write the window's rows to rows[first..]; row 0 must be the last token. */
void dec_window_build(struct dec_window *win, struct dec_row *rows, uint32_t first);
/* After the step: advance the Jacobi iteration from the argmax of the
 * step's rows and, when full, add the window's n-grams to pool (key of
 * column 0: lst, the step's row-0 token). */
void dec_window_update(struct dec_window *win, const int32_t *argmax, int32_t lst,
                       struct dec_pool *pool);

/* ---- lookahead.c: candidates from the text ------------------------------ */

/* Up to max (at most 4) candidates of len tokens from the text h[0..n):
 * what followed the latest earlier places where the last two (or more)
 * tokens occurred, the longest match (up to 4 tokens) first, then the
 * latest; distinct, and wholly inside the text. Scans the last 4096
 * positions. */
uint32_t dec_lookup(const int32_t *h, uint32_t n, uint32_t len, uint32_t max, const int32_t **ret);

/* ---- sample.c ------------------------------------------------------------ */

struct dec_sampler {
    uint32_t n_vocab;
    void *mem; /* p, idx and seen in one allocation */
    float *p; /* [n_vocab] scratch */
    int32_t *idx; /* [n_vocab] scratch */
    uint32_t *seen; /* [n_vocab] epoch stamps: penalise each token once */
    float top[DEC_TOPK_MAX]; /* a TOPK row's logits */
    uint32_t epoch;
};

int dec_sampler_init(struct dec_sampler *s, uint32_t n_vocab);
void dec_sampler_done(struct dec_sampler *s);
/* True when token choice needs the logits rather than the model's argmax. */
bool dec_sampler_needs_logits(const struct dec_params *p);
/* What a model with set_draw can do on its side for these parameters:
 * DEC_WANT_DRAW (a draw without top-k: temperature, top-p, min-p, the
 * penalty), DEC_WANT_TOPK (top-k up to DEC_TOPK_MAX with anything after
 * it, or greedy with the penalty as the best of one), else DEC_WANT_NONE
 * (greedy, or top-k too large: the host needs the logits or only the
 * argmax). */
uint32_t dec_sampler_model_want(const struct dec_params *p, uint32_t n_vocab);
/* set_draw's parameters for them. */
struct dec_draw_params dec_sampler_draw_params(const struct dec_params *p, uint32_t n_vocab);
/* Choose the next token from logits (modified in place) after the history
 * hist[0..n_hist). Draws one uniform from rng when temperature > 0; without
 * top-k that is dec_draw after the penalty. */
int32_t dec_sample(struct dec_sampler *s, const struct dec_params *p, float *logits,
                   const int32_t *hist, uint32_t n_hist, struct dec_rng *rng);
/* The same choice from a TOPK row's k candidates (penalized and scaled by
 * the model, in id order): the token dec_sample would pick from the row's
 * logits, bit for bit, when the candidates are dec_top_k's. */
int32_t dec_sample_top(struct dec_sampler *s, const struct dec_params *p, const struct dec_cand *c,
                       uint32_t k, struct dec_rng *rng);

/* ---- trie.c: candidate trie --------------------------------------------- */

struct dec_trie_node {
    int32_t token;
    int32_t parent; /* node index, -1 for depth 1 (child of the last token) */
    int32_t first_child; /* -1 */
    int32_t sibling; /* -1 */
    int32_t row; /* step row, -1 when the node gets no row (reference-mode leaves) */
    uint32_t depth; /* 1..n-1 */
};

struct dec_trie {
    struct dec_trie_node *node;
    uint32_t cap;
    uint32_t n;
    uint32_t n_cand; /* candidates inserted */
    int32_t root_child; /* first depth-1 node */
};

int dec_trie_init(struct dec_trie *t, uint32_t cap);
void dec_trie_done(struct dec_trie *t);
void dec_trie_reset(struct dec_trie *t);
/* Insert a candidate of len tokens; shared prefixes share nodes. */
void dec_trie_insert(struct dec_trie *t, const int32_t *cand, uint32_t len);
/* The child of node (-1: root) carrying token, or -1. */
int32_t dec_trie_child(const struct dec_trie *t, int32_t node, int32_t token);

#endif
