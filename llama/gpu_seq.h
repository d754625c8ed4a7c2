/* Private to llama/gpu_*.c: the sequences the model holds and their KV
 * cache. Each sequence owns a region of n_ctx slots in every layer's cache
 * (its committed positions), all of them share the scratch slots after
 * the last region, where a step's rows write their K/V; a commit moves
 * kept rows from the scratch into the sequence's region at the head of
 * the next step.
 *
 * Why regions and not pages: a row's keys are one contiguous run of its
 * region, so attention.comp reads them with one base offset and no block
 * table in its inner loop, and a sequence that comes back to its region
 * (the next turn of a chat) finds its prefix where it left it. The price
 * is that every sequence reserves n_ctx positions whether it uses them or
 * not; the daemon sizes the count from its KV budget (docs/batching.md). */
#ifndef LADE_LLAMA_GPU_SEQ_H
#define LADE_LLAMA_GPU_SEQ_H

#include <stdint.h>

#include "vk/vkr.h"

struct gpu_kv {
    uint32_t n_layers, kvdim, n_ctx, n_seq, max_rows;
    uint32_t scratch0; /* n_seq * n_ctx: row i of a step writes its K/V at scratch0 + i */
    /* Per layer, f16 [(n_seq n_ctx + max_rows) x kvdim] */
    struct vkr_buf *kc, *vc;
    /* kv_commit.comp's moves: a VkDispatchIndirectCommand (y = the number
     * of moves) and a pad word, then max_rows (source slot, destination
     * slot) pairs, owed by the commits since the last step, of every
     * sequence; written by the host. */
    struct vkr_buf moves;
    uint32_t moves_cap; /* pairs the buffer holds: max_rows and a region's worth, < 65536 */
    uint32_t n_pending; /* moves written by commits and copies, not yet run */
    uint64_t submits; /* steps submitted so far */
};

/* Sampling on the GPU (the seam's set_draw), per sequence: the
 * parameters of its DRAW rows (draw.comp) and TOPK rows (topk.comp), the
 * penalty of both (penalty.comp). */
struct gpu_draw {
    bool set;
    float inv_t, min_p, top_p; /* top_p 1: none */
    uint32_t top_k;
    float penalty, inv_penalty;
    uint32_t penalty_last_n;
};

struct gpu_seq {
    uint32_t base; /* its region's first slot */
    struct gpu_draw draw;
    uint32_t n_past; /* committed positions */
    /* The rows this sequence had in the last step, which its next commit
     * may keep: written by the step as it checks them (gpu_rows.c); they
     * count only while last_submit is the kv's latest step (a later step
     * overwrote the scratch). */
    uint32_t last_n; /* rows still committable, 0 after commit */
    uint32_t last_off; /* the first of them in the step (its scratch slot - scratch0) */
    uint64_t last_submit;
    int32_t *last_parent; /* [max_rows] each row's parent, within the sequence's rows */
    int32_t *row_tok; /* [max_rows] each row's token */
    int32_t *tokens; /* [n_ctx] tokens whose KV the region holds (penalty history, prefix reuse) */
};

/* The cache and n_seq sequences' bookkeeping (seqs[n_seq]). 0 or
 * negative errno with a reason; gpu_kv_free undoes a half-built one. */
int gpu_kv_build(struct gpu_kv *kv, struct gpu_seq *seqs, struct vkr_ctx *vk, uint32_t n_layers,
                 uint32_t kvdim, uint32_t n_ctx, uint32_t n_seq, uint32_t max_rows, char *reterr,
                 size_t errlen);
void gpu_kv_free(struct gpu_kv *kv, struct gpu_seq *seqs, struct vkr_ctx *vk);

/* Keeps a chain of s's rows of the last step (rows[0] has parent -1,
 * rows[k] parent rows[k-1], indices within s's rows): their K/V moves to
 * positions n_past.. of s's region at the head of the next step, their
 * tokens join the history now. -EINVAL for anything else, or when s had
 * no rows in the last step. */
int gpu_seq_commit(struct gpu_kv *kv, struct gpu_seq *s, const uint32_t *rows, uint32_t n);
/* Truncates s to n_keep positions; moves owed to positions that stay,
 * stay. -EINVAL past n_past. */
int gpu_seq_rewind(struct gpu_kv *kv, struct gpu_seq *s, uint32_t n_keep);
/* Makes dst hold the first n positions of src (n <= src's n_past), as a
 * copy of their K/V at the head of the next step, and their tokens now;
 * dst's own positions and owed moves are dropped. Fewer when the moves
 * buffer is short of room; returns how many. Safe while src runs: src
 * only appends past its n_past, or after a rewind, from the step after. */
uint32_t gpu_seq_copy_prefix(struct gpu_kv *kv, struct gpu_seq *dst, const struct gpu_seq *src,
                             uint32_t n);
/* Writes the owed moves' dispatch size for the step about to be submitted
 * (none: an empty dispatch); they are then no longer owed. */
void gpu_kv_flush_moves(struct gpu_kv *kv);

#endif
