/* A step's inputs and outputs (gpu_rows.h). */
#include "llama/gpu_rows.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llama/gpu_kernels.h"

int gpu_rows_build(struct gpu_rows *r, struct vkr_ctx *vk, uint32_t max_rows, uint32_t n_vocab,
                   uint32_t att_rows, const float *rope_freq, uint32_t n_freq, char *reterr,
                   size_t errlen)
{
    *r = (struct gpu_rows){ .max_rows = max_rows,
                            .n_vocab = n_vocab,
                            .att_rows = att_rows ? att_rows : 1 };
    VkDeviceSize R = max_rows;
    struct {
        struct vkr_buf *b;
        VkDeviceSize bytes;
        enum vkr_mem kind;
    } a[] = {
        { &r->tokens, R * 4, VKR_MEM_UPLOAD },
        { &r->pos, (R + n_freq) * 4, VKR_MEM_UPLOAD },
        { &r->att, ((VkDeviceSize)gpu_rows_att_groups(max_rows) + 2 * R) * 4, VKR_MEM_UPLOAD },
        { &r->sel, R * 4, VKR_MEM_UPLOAD },
        { &r->drawrow, R * 32, VKR_MEM_UPLOAD },
        { &r->toprow, R * 16, VKR_MEM_UPLOAD },
        { &r->pen, R * (4 + GPU_PEN_MAX) * 4, VKR_MEM_UPLOAD },
        { &r->stepargs, 32, VKR_MEM_UPLOAD },
        { &r->readback, R * 8 + R * n_vocab * 4, VKR_MEM_READBACK },
    };
    for (size_t i = 0; i < sizeof(a) / sizeof(a[0]); i++) {
        if (a[i].bytes > vkr_max_binding(vk)) {
            snprintf(reterr, errlen,
                     "step buffer of %llu bytes exceeds the device's binding limit: lower max_rows",
                     (unsigned long long)a[i].bytes);
            return -E2BIG;
        }
        int err = vkr_buf_new(vk, a[i].bytes, a[i].kind, a[i].b);
        if (err) {
            snprintf(reterr, errlen, "step buffers: %s", vk->err);
            return err;
        }
    }
    memcpy((int32_t *)r->pos.map + R, rope_freq, (size_t)n_freq * 4);
    r->depth = calloc(R, sizeof(*r->depth));
    r->want_rows = calloc(R, sizeof(*r->want_rows));
    r->row_part = calloc(R, sizeof(*r->row_part));
    r->slot_row = calloc(R, sizeof(*r->slot_row));
    r->chain_off = calloc(R, sizeof(*r->chain_off));
    r->chains = calloc(R * (R + 1) / 2, sizeof(*r->chains));
    r->draw_rows = calloc(R, sizeof(*r->draw_rows));
    r->slot_src = calloc(R, sizeof(*r->slot_src));
    r->seen = calloc(n_vocab, sizeof(*r->seen));
    if (!r->depth || !r->want_rows || !r->row_part || !r->slot_row || !r->chain_off || !r->chains ||
        !r->draw_rows || !r->slot_src || !r->seen) {
        snprintf(reterr, errlen, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

void gpu_rows_free(struct gpu_rows *r, struct vkr_ctx *vk)
{
    struct vkr_buf *b[] = { &r->tokens, &r->pos, &r->att,      &r->sel,     &r->drawrow,
                            &r->toprow, &r->pen, &r->stepargs, &r->readback };
    for (size_t i = 0; vk && i < sizeof(b) / sizeof(b[0]); i++)
        vkr_buf_free(vk, b[i]);
    free(r->depth);
    free(r->want_rows);
    free(r->row_part);
    free(r->slot_row);
    free(r->chain_off);
    free(r->chains);
    free(r->draw_rows);
    free(r->slot_src);
    free(r->seen);
    *r = (struct gpu_rows){ 0 };
}

static uint32_t fbits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* The repetition penalty's list for row i: the distinct tokens among the
 * last penalty_last_n of its sequence (the cache's tokens, its ancestors,
 * itself), written as penalized row j's list; sel_row is i's LM head row. */
static void penalty_list(struct gpu_rows *r, const struct gpu_seq *s, const struct gpu_draw *d,
                         const struct dec_row *rows, uint32_t i, uint32_t sel_row, uint32_t j)
{
    uint32_t *pen = r->pen.map, *ids = pen + 4 * r->max_rows + (size_t)j * GPU_PEN_MAX;
    uint32_t left = d->penalty_last_n, n = 0;
    if (++r->seen_epoch == 0) {
        memset(r->seen, 0, sizeof(*r->seen) * r->n_vocab);
        r->seen_epoch = 1;
    }
    for (int32_t k = (int32_t)i; k >= 0 && left; k = rows[k].parent, left--)
        if (r->seen[rows[k].token] != r->seen_epoch) {
            r->seen[rows[k].token] = r->seen_epoch;
            ids[n++] = (uint32_t)rows[k].token;
        }
    for (uint32_t k = s->n_past; k > 0 && left; k--, left--)
        if (r->seen[s->tokens[k - 1]] != r->seen_epoch) {
            r->seen[s->tokens[k - 1]] = r->seen_epoch;
            ids[n++] = (uint32_t)s->tokens[k - 1];
        }
    pen[4 * j] = sel_row;
    pen[4 * j + 1] = n;
    pen[4 * j + 2] = fbits(d->penalty);
    pen[4 * j + 3] = fbits(d->inv_penalty);
}

static bool row_ok(const struct dec_row *r, uint32_t i, uint32_t n_vocab, const struct gpu_draw *d)
{
    bool sampled = r->want == DEC_WANT_DRAW || r->want == DEC_WANT_TOPK;
    return r->token >= 0 && (uint32_t)r->token < n_vocab && r->parent < (int32_t)i &&
           r->parent >= -1 && r->want <= DEC_WANT_TOPK && (!sampled || d->set) &&
           !(r->want == DEC_WANT_DRAW && r->u24 >> 24) && !(r->want == DEC_WANT_TOPK && !d->top_k);
}

/* One part's rows at rows off.. of the step; nsel and the other counts
 * of h go on from where the earlier parts left them. */
static int describe_part(struct gpu_rows *r, struct gpu_part *pt, uint32_t pi, uint32_t n_ctx,
                         struct gpu_head_work *h)
{
    const struct gpu_draw *d = &pt->seq->draw;
    int32_t *tok = r->tokens.map, *pos = r->pos.map, *sel = r->sel.map;
    uint32_t *att = r->att.map;
    uint32_t *draw = r->drawrow.map, *top = r->toprow.map, off = pt->off;
    struct gpu_seq *s = pt->seq;
    bool penalize = d->set && d->penalty != 1.0f;
    for (uint32_t i = 0; i < pt->n; i++) {
        const struct dec_row *row = &pt->rows[i];
        uint32_t t = off + i;
        if (!row_ok(row, i, r->n_vocab, d))
            return -EINVAL;
        r->depth[t] = row->parent < 0 ? 0 : r->depth[off + (uint32_t)row->parent] + 1;
        uint32_t p = s->n_past + r->depth[t];
        if (p >= n_ctx)
            return -E2BIG;
        if (p + 1 > r->step_max_len)
            r->step_max_len = p + 1;
        tok[t] = row->token;
        pos[t] = (int32_t)p;
        /* Its chain: its parent's, then itself (parents come first) */
        uint32_t c = r->chains_len, len = r->depth[t] + 1;
        if (row->parent >= 0)
            memcpy(r->chains + c, r->chains + r->chain_off[off + (uint32_t)row->parent],
                   (len - 1) * sizeof(*r->chains));
        r->chains[c + len - 1] = t;
        r->chain_off[t] = c;
        r->chains_len += len;
        att[4 * t] = 4 * r->max_rows + c;
        att[4 * t + 1] = len;
        att[4 * t + 2] = s->n_past;
        att[4 * t + 3] = s->base;
        r->row_part[t] = pi;
        s->row_tok[i] = row->token;
        s->last_parent[i] = row->parent;
        if (row->want == DEC_WANT_NONE)
            continue;
        bool sampled = row->want == DEC_WANT_DRAW || row->want == DEC_WANT_TOPK;
        if (sampled && penalize)
            penalty_list(r, s, d, pt->rows, i, h->nsel, h->npen++);
        if (row->want == DEC_WANT_DRAW) {
            uint32_t *w = draw + 8 * h->ndraw;
            w[0] = h->nsel;
            w[1] = row->u24;
            w[2] = fbits(d->inv_t);
            w[3] = fbits(d->min_p);
            w[4] = fbits(d->top_p);
            r->draw_rows[h->ndraw++] = (int32_t)t;
        }
        if (row->want == DEC_WANT_LOGITS) {
            r->slot_row[h->nslot] = t;
            r->slot_src[h->nslot++] = h->nsel;
        }
        if (row->want == DEC_WANT_TOPK) {
            top[4 * h->ntop] = h->nsel;
            top[4 * h->ntop + 1] = d->top_k;
            top[4 * h->ntop + 2] = fbits(d->inv_t);
            r->slot_row[h->nslot] = t;
            r->slot_src[h->nslot++] = GPU_SLOT_TOPK | h->ntop++;
        }
        r->want_rows[h->nsel] = (int32_t)t;
        sel[h->nsel++] = (int32_t)t;
    }
    return 0;
}

int gpu_rows_describe(struct gpu_rows *r, struct gpu_part *parts, uint32_t n_parts, uint32_t n_ctx,
                      struct gpu_head_work *h)
{
    uint32_t n = 0;
    *h = (struct gpu_head_work){ .slot_src = r->slot_src };
    r->step_max_len = 0;
    r->chains_len = 0;
    for (uint32_t pi = 0; pi < n_parts; pi++) {
        struct gpu_part *pt = &parts[pi];
        if (pt->n == 0 || pt->n > r->max_rows - n)
            return -EINVAL;
        pt->off = n;
        pt->slot0 = h->nslot;
        int err = describe_part(r, pt, pi, n_ctx, h);
        if (err)
            return err;
        pt->seq->last_off = n;
        n += pt->n;
    }
    h->argmax = h->nsel > h->ndraw + h->ntop;
    memcpy((uint32_t *)r->att.map + 4 * r->max_rows, r->chains, r->chains_len * sizeof(*r->chains));
    /* Attention's row groups: consecutive rows of one part (one sequence,
     * so one committed prefix), att_rows at most */
    uint32_t *g = (uint32_t *)r->att.map + gpu_rows_att_groups(r->max_rows);
    r->n_groups = 0;
    for (uint32_t pi = 0; pi < n_parts; pi++)
        for (uint32_t i = 0; i < parts[pi].n; i += r->att_rows) {
            uint32_t k = parts[pi].n - i < r->att_rows ? parts[pi].n - i : r->att_rows;
            g[2 * r->n_groups] = parts[pi].off + i;
            g[2 * r->n_groups++ + 1] = k;
        }
    return (int)n;
}

void gpu_rows_read(const struct gpu_rows *r, const struct gpu_part *parts, uint32_t n_parts,
                   const struct gpu_head_work *h)
{
    const int32_t *am = r->readback.map;
    for (uint32_t p = 0; p < n_parts; p++)
        for (uint32_t i = 0; parts[p].ret_argmax && i < parts[p].n; i++)
            parts[p].ret_argmax[i] = -1;
    for (uint32_t j = 0; h->argmax && j < h->nsel; j++) {
        uint32_t t = (uint32_t)r->want_rows[j];
        const struct gpu_part *pt = &parts[r->row_part[t]];
        uint32_t w = pt->rows[t - pt->off].want;
        if (pt->ret_argmax && (w == DEC_WANT_ARGMAX || w == DEC_WANT_LOGITS))
            pt->ret_argmax[t - pt->off] = am[j];
    }
    for (uint32_t k = 0; k < h->ndraw; k++) {
        uint32_t t = (uint32_t)r->draw_rows[k];
        const struct gpu_part *pt = &parts[r->row_part[t]];
        if (pt->ret_argmax)
            pt->ret_argmax[t - pt->off] = am[r->max_rows + k];
    }
    /* Each slot's logits, or its candidates (k pairs, not n_vocab floats),
     * into its part's slots, in order. */
    size_t row = (size_t)r->n_vocab * 4;
    const char *slots = (const char *)r->readback.map + (size_t)r->max_rows * 8;
    for (uint32_t j = 0; j < h->nslot; j++) {
        const struct gpu_part *pt = &parts[r->row_part[r->slot_row[j]]];
        if (pt->ret_logits)
            memcpy((char *)pt->ret_logits + (j - pt->slot0) * row, slots + j * row,
                   h->slot_src[j] & GPU_SLOT_TOPK ? (size_t)pt->seq->draw.top_k * 8 : row);
    }
}
