/* Private to llama/gpu_*.c: a step's inputs and outputs. The host checks
 * the rows against the seam's contract (decoding/dec.h) and writes what
 * the shaders read of them (tokens, positions, ancestor chains, the rows the head
 * works on, draws, penalty lists); after the step it reads back the
 * argmax and drawn ids and each readback slot's logits or candidates. */
#ifndef LADE_LLAMA_GPU_ROWS_H
#define LADE_LLAMA_GPU_ROWS_H

#include "decoding/dec.h"
#include "llama/gpu_seq.h"

/* A readback slot's source: a selected row's logits, or with this bit the
 * candidates of a TOPK row. */
#define GPU_SLOT_TOPK 0x80000000u

/* What a step's head does after the LM head: the rows it selects (nsel),
 * penalizes, draws and answers with top-k candidates, and the readback
 * slots of logits and candidates (slot_src). */
struct gpu_head_work {
    uint32_t nsel, nslot, ndraw, ntop, npen;
    bool argmax; /* some row wants its argmax (ARGMAX, LOGITS); sampled rows do not */
    const uint32_t *slot_src;
};

/* One sequence's rows in a step (the seam's dec_part on a gpu_seq). */
struct gpu_part {
    struct gpu_seq *seq;
    const struct dec_row *rows;
    uint32_t n;
    int32_t *ret_argmax; /* [n] or NULL */
    float *ret_logits; /* a slot per LOGITS or TOPK row, or NULL */
    /* Set by gpu_rows_describe: the part's first row and first readback
     * slot in the step */
    uint32_t off, slot0;
};

struct gpu_rows {
    uint32_t max_rows, n_vocab;
    /* Written by the host before each submit, max_rows entries each */
    struct vkr_buf tokens, pos; /* per row */
    /* attention.comp's rows: per row 4 words (its chain's offset here and
     * length, its sequence's n_past and first slot), then the chains: each
     * row's ancestors in the step, root first, itself last, then from
     * gpu_rows_att_groups() the row groups (first row, count), up to
     * att_rows consecutive rows of one part each */
    struct vkr_buf att;
    uint32_t att_rows; /* rows a group at most: attention.comp's ROWS_G */
    uint32_t n_groups; /* this step's row groups */
    struct vkr_buf sel; /* per selected (LM head) row: its step row */
    /* The rows the head samples, each with its own sequence's parameters
     * (float bits), so that sequences with different ones share a step:
     * per DRAW row 8 words (LM head row, u24, 1/temperature, min_p, top_p),
     * per TOPK row 4 (LM head row, k, 1/temperature), per penalized row 4
     * (LM head row, count, penalty, 1/penalty) and after those, from 4
     * max_rows, GPU_PEN_MAX ids a row */
    struct vkr_buf drawrow, toprow, pen;
    /* The attention's and attn_merge's VkDispatchIndirectCommand, each
     * with a word after it, the split count ([7]): per step (gpu_forward.c) */
    struct vkr_buf stepargs;
    /* Read by the host: [2 max_rows] ints (the selected rows' argmax, then
     * the drawn ids), then a slot of n_vocab floats per LOGITS or TOPK row */
    struct vkr_buf readback;
    uint32_t step_max_len; /* keys the longest row of the step sees */
    /* host scratch, [max_rows] each */
    uint32_t *depth; /* each row's depth below the committed prefix */
    int32_t *want_rows; /* step row of each selected row */
    uint32_t *row_part; /* part of each step row */
    uint32_t *slot_row; /* step row of each readback slot */
    uint32_t *chain_off; /* each row's chain in `chains` */
    uint32_t *chains; /* [max_rows (max_rows + 1) / 2] the chains, as in `att` */
    uint32_t chains_len; /* entries used by this step */
    int32_t *draw_rows; /* step row of each DRAW row */
    uint32_t *slot_src; /* per readback slot: the selected row whose logits, or GPU_SLOT_TOPK | TOPK row */
    uint32_t *seen; /* [n_vocab] epoch stamps: a penalty list holds each token once */
    uint32_t seen_epoch;
};

/* The word of `att` where the row groups' table starts. */
static inline uint32_t gpu_rows_att_groups(uint32_t max_rows)
{
    return 4 * max_rows + max_rows * (max_rows + 1) / 2;
}

/* att_rows: rows a group at most (the attention kernel's); rope_freq:
 * RoPE's n_freq frequencies (llm_config_rope_freq), kept after the
 * positions in r->pos for the shaders (gpu_kernels.h). */
int gpu_rows_build(struct gpu_rows *r, struct vkr_ctx *vk, uint32_t max_rows, uint32_t n_vocab,
                   uint32_t att_rows, const float *rope_freq, uint32_t n_freq, char *reterr,
                   size_t errlen);
void gpu_rows_free(struct gpu_rows *r, struct vkr_ctx *vk);

/* Checks each part's rows against the seam's contract and its sequence's
 * room (n_ctx positions), lays the parts out one after the other in the
 * step, writes their description and each sequence's record of its rows
 * (row_tok, last_parent, last_off), and fills h. Returns the step's row
 * count, or -EINVAL (a bad row, more than max_rows) or -E2BIG (past the
 * context). */
int gpu_rows_describe(struct gpu_rows *r, struct gpu_part *parts, uint32_t n_parts, uint32_t n_ctx,
                      struct gpu_head_work *h);
/* After the step: each part's ret_argmax[i] for every row (-1 where
 * none), its readback slots into its ret_logits (n_vocab floats, or
 * top_k candidates). */
void gpu_rows_read(const struct gpu_rows *r, const struct gpu_part *parts, uint32_t n_parts,
                   const struct gpu_head_work *h);

#endif
