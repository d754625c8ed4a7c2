/* Private to llama/gpu_*.c: the sequence the model holds: its KV cache,
 * where it stands (n_past), the last step's rows that may still be kept,
 * and the KV moves owed by the last commit. One per model today; the
 * struct holds everything that would be per sequence when a step carries
 * rows of several. */
#ifndef LADE_LLAMA_GPU_SEQ_H
#define LADE_LLAMA_GPU_SEQ_H

#include <stdint.h>

#include "vk/vkr.h"

struct gpu_seq {
    uint32_t n_layers, kvdim, n_ctx, max_rows;
    /* Per layer, f16 [(n_ctx + max_rows) x kvdim]: slots [0, n_ctx) hold
     * the committed sequence, [n_ctx, n_ctx + max_rows) the scratch of the
     * current step (row i's K/V at n_ctx + i). */
    struct vkr_buf *kc, *vc;
    /* kv_commit.comp's moves: a VkDispatchIndirectCommand (y = the number
     * of moves) and a pad word, then max_rows (source slot, destination
     * slot) pairs, owed by the last commit; written by the host. */
    struct vkr_buf moves;
    uint32_t n_pending; /* moves written by the last commit, not yet run */
    uint32_t n_past; /* committed positions */
    /* The last step's rows, which the next commit may keep: written by the
     * step as it checks them (gpu_rows.c), last_n set once it has run. */
    uint32_t last_n; /* rows of the last step still committable, 0 after commit */
    int32_t *last_parent; /* [max_rows] each row's parent */
    int32_t *row_tok; /* [max_rows] each row's token */
    int32_t *tokens; /* [n_ctx] tokens whose KV the cache holds (the repetition penalty's history) */
};

/* The cache and the host's bookkeeping. 0 or negative errno with a
 * reason; gpu_seq_free undoes a half-built one. */
int gpu_seq_build(struct gpu_seq *s, struct vkr_ctx *vk, uint32_t n_layers, uint32_t kvdim,
                  uint32_t n_ctx, uint32_t max_rows, char *reterr, size_t errlen);
void gpu_seq_free(struct gpu_seq *s, struct vkr_ctx *vk);

/* Keeps a chain of the last step's rows (rows[0] has parent -1, rows[k]
 * parent rows[k-1]): their K/V moves to positions n_past.. at the head of
 * the next step, their tokens join the history now. -EINVAL for anything
 * else. */
int gpu_seq_commit(struct gpu_seq *s, const uint32_t *rows, uint32_t n);
/* Truncates to n_keep positions; moves owed to positions that stay, stay.
 * -EINVAL past n_past. */
int gpu_seq_rewind(struct gpu_seq *s, uint32_t n_keep);
/* Writes the owed moves' dispatch size for the step about to be submitted
 * (none: an empty dispatch); they are then no longer owed. */
void gpu_seq_flush_moves(struct gpu_seq *s);

#endif
