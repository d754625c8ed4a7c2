/* CPU reference forward pass of a LLaMA model, in plain fp32, after
 * llama2.c's run.c. A "step" runs n token rows through the model at once;
 * every row's arithmetic is the same whatever else is in the step, which is
 * what makes the step a faithful model of the GPU's batch-invariant kernels.
 *
 * Notation: dim = residual width, hd = head size, q_dim = n_heads * hd
 * (dim for most models, not for all: qwen3's heads are wider), kv_dim = n_kv_heads * hd, V = n_vocab. Matrices are stored as
 * GGUF stores them: W (out, in) row-major, one output per row of `in`
 * contiguous floats, so y = W x is y[o] = sum_k W[o][k] x[k]. */
#include "llama/ref.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decoding/dec.h"
#include "llama/config.h"
#include "llama/dequant.h"
#include "llama/gguf.h"
#include "llama/llm-internal.h"

/* One transformer block, f32. */
struct ref_layer {
    float *attn_norm; /* (dim) */
    float *wq; /* (q_dim, dim) */
    float *wk; /* (kv_dim, dim) */
    float *wv; /* (kv_dim, dim) */
    float *wo; /* (dim, q_dim) */
    float *bq, *bk, *bv; /* (q_dim), (kv_dim), (kv_dim): biases (qwen2), else NULL */
    float *q_norm, *k_norm; /* (hd): RMSNorm of each Q and K head (qwen3), else NULL */
    float *ffn_norm; /* (dim) */
    float *w_gate; /* (ffn, dim) */
    float *w_up; /* (ffn, dim) */
    float *w_down; /* (dim, ffn) */
};

struct llm_ref {
    struct llm_config c;
    uint32_t n_ctx; /* positions the KV cache holds */
    uint32_t max_rows; /* rows per step */
    uint32_t q_dim, kv_dim;

    /* weights */
    float *token_embd; /* (V, dim) */
    float *output_norm; /* (dim) */
    float *output; /* (V, dim); the same array as token_embd when tied */
    struct ref_layer *layers; /* (n_layers) */
    float *rope_freq; /* (rope_dims / 2): llm_config_rope_freq */

    /* the committed prefix */
    float *k_cache, *v_cache; /* (n_layers, n_ctx, kv_dim) */
    uint32_t n_past;

    /* the last step, kept until commit or the next step */
    float *k_step, *v_step; /* (n_layers, max_rows, kv_dim), post-RoPE K */
    int32_t *step_parent; /* (max_rows) */
    uint32_t *step_depth; /* (max_rows): position = n_past + depth */
    uint32_t step_n; /* rows of the last step; 0 when there is none to commit */

    /* activations, one row per token of the step */
    float *x; /* (max_rows, dim) the residual stream */
    float *xb; /* (max_rows, dim) normed input, then a block's output */
    float *q; /* (max_rows, q_dim) */
    float *att_out; /* (max_rows, q_dim) attention output before Wo */
    float *hb; /* (max_rows, ffn) gate, then silu(gate) * up */
    float *hb2; /* (max_rows, ffn) up */
    float *rope_cs; /* (max_rows, rope_dims): cos, sin at each row's position */
    float *att; /* (n_ctx) one head's attention weights */
    uint32_t *chain; /* (max_rows) step rows visible to one row, in position order */
    float *logits; /* (max_rows, V) rows that want output */
    struct dec_row *prefill_rows; /* (max_rows) */
    uint32_t *prefill_idx; /* (max_rows) 0, 1, 2, ... */
    int32_t *prefill_argmax; /* (max_rows) */
};

/* ---- the neural-net blocks ----------------------------------------------- */

/* o = w * (x / sqrt(mean(x^2) + eps)) */
static void rmsnorm(float *o, const float *x, const float *w, uint32_t n, float eps)
{
    float ss = 0.0f;
    for (uint32_t j = 0; j < n; j++)
        ss += x[j] * x[j];
    ss = 1.0f / sqrtf(ss / (float)n + eps);
    for (uint32_t j = 0; j < n; j++)
        o[j] = w[j] * (ss * x[j]);
}

/* y[0..3] = four rows of W (w, w + k, w + 2k, w + 3k) dotted with x;
 * y2 likewise with x2 when it is not NULL. Each sum runs over j in order. */
static void dot4(float *y, float *y2, const float *w, const float *x, const float *x2, uint32_t k)
{
    const float *w0 = w, *w1 = w + k, *w2 = w + 2 * (size_t)k, *w3 = w + 3 * (size_t)k;
    float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
    float b0 = 0.0f, b1 = 0.0f, b2 = 0.0f, b3 = 0.0f;

    if (x2) {
        for (uint32_t j = 0; j < k; j++) {
            a0 += w0[j] * x[j], a1 += w1[j] * x[j], a2 += w2[j] * x[j], a3 += w3[j] * x[j];
            b0 += w0[j] * x2[j], b1 += w1[j] * x2[j], b2 += w2[j] * x2[j], b3 += w3[j] * x2[j];
        }
        y2[0] = b0, y2[1] = b1, y2[2] = b2, y2[3] = b3;
    } else {
        for (uint32_t j = 0; j < k; j++)
            a0 += w0[j] * x[j], a1 += w1[j] * x[j], a2 += w2[j] * x[j], a3 += w3[j] * x[j];
    }
    y[0] = a0, y[1] = a1, y[2] = a2, y[3] = a3;
}

/* out[t] = W in[t] for n rows: W (d, k), in (n, k), out (n, d).
 * Every output is a dot product summed in index order, one rounding per
 * add, so a row's result does not depend on the other rows (batch
 * invariance). Blocks of four outputs times two rows only give the CPU
 * eight independent chains of adds; they change no result. By far the
 * most time goes here. */
static void matmul(float *out, const float *in, const float *w, uint32_t n, uint32_t k, uint32_t d)
{
    uint32_t o = 0;

    for (; o + 4 <= d; o += 4) {
        for (uint32_t t = 0; t < n; t += 2) {
            const float *x = in + (size_t)t * k;
            bool pair = t + 1 < n;
            dot4(out + (size_t)t * d + o, pair ? out + (size_t)(t + 1) * d + o : NULL,
                 w + (size_t)o * k, x, pair ? x + k : NULL, k);
        }
    }
    for (; o < d; o++) {
        const float *wr = w + (size_t)o * k;
        for (uint32_t t = 0; t < n; t++) {
            const float *x = in + (size_t)t * k;
            float s = 0.0f;
            for (uint32_t j = 0; j < k; j++)
                s += wr[j] * x[j];
            out[(size_t)t * d + o] = s;
        }
    }
}

/* x = softmax(x), subtracting the max for range */
static void softmax(float *x, uint32_t n)
{
    float max = x[0], sum = 0.0f;
    for (uint32_t j = 1; j < n; j++)
        max = x[j] > max ? x[j] : max;
    for (uint32_t j = 0; j < n; j++) {
        x[j] = expf(x[j] - max);
        sum += x[j];
    }
    for (uint32_t j = 0; j < n; j++)
        x[j] /= sum;
}

/* Rotate pair j of the first rope_dims dims of each head by its angle (cs
 * holds cos, sin per pair, magnitude scale included): the adjacent dims
 * (2j, 2j+1), or with neox (j, j + rope_dims/2). */
static void rope(float *v, uint32_t n_heads, uint32_t hd, uint32_t rope_dims, bool neox,
                 const float *cs)
{
    uint32_t half = rope_dims / 2;
    for (uint32_t h = 0; h < n_heads; h++) {
        float *vh = v + (size_t)h * hd;
        for (uint32_t j = 0; j < half; j++) {
            uint32_t a = neox ? j : 2 * j, b = neox ? j + half : 2 * j + 1;
            float c = cs[2 * j], s = cs[2 * j + 1];
            float x0 = vh[a], x1 = vh[b];
            vh[a] = x0 * c - x1 * s;
            vh[b] = x0 * s + x1 * c;
        }
    }
}

/* v[t][j] += b[j] for n rows of width d: a bias, after the whole product. */
static void add_bias(float *v, const float *b, uint32_t n, uint32_t d)
{
    for (uint32_t t = 0; t < n; t++)
        for (uint32_t j = 0; j < d; j++)
            v[(size_t)t * d + j] += b[j];
}

/* Each of the n_heads heads of v (hd wide) through RMSNorm with weight w. */
static void head_norm(float *v, const float *w, uint32_t n_heads, uint32_t hd, float eps)
{
    for (uint32_t h = 0; h < n_heads; h++)
        rmsnorm(v + (size_t)h * hd, v + (size_t)h * hd, w, hd, eps);
}

static int32_t argmax(const float *x, uint32_t n)
{
    uint32_t best = 0;
    for (uint32_t j = 1; j < n; j++)
        if (x[j] > x[best])
            best = j;
    return (int32_t)best;
}

/* ---- one step -------------------------------------------------------------- */

/* The step rows row i sees, in position order: its ancestors from the
 * root down, then i itself. Returns how many (depth + 1). */
static uint32_t row_chain(const struct llm_ref *r, uint32_t i, uint32_t *chain)
{
    uint32_t len = r->step_depth[i] + 1;
    int32_t j = (int32_t)i;

    for (uint32_t k = len; k-- > 0; j = r->step_parent[j])
        chain[k] = (uint32_t)j;
    return len;
}

/* cos and sin of every rotated pair at each row's position n_past + depth,
 * times the magnitude scale (1 but with YaRN or an attn_factor). */
static void rope_tables(struct llm_ref *r, uint32_t n)
{
    uint32_t rd = r->c.rope_dims;
    float ms = r->c.rope_mscale;

    for (uint32_t i = 0; i < n; i++) {
        float pos = (float)(r->n_past + r->step_depth[i]);
        for (uint32_t j = 0; j < rd / 2; j++) {
            float a = pos * r->rope_freq[j];
            r->rope_cs[(size_t)i * rd + 2 * j] = cosf(a) * ms;
            r->rope_cs[(size_t)i * rd + 2 * j + 1] = sinf(a) * ms;
        }
    }
}

/* Causal GQA attention of step row i in layer l, into out (q_dim). Query
 * head h reads KV head h / (n_heads / n_kv_heads). Visible positions: the
 * committed prefix 0..n_past-1 from the cache, then the row's chain from
 * the step scratch. For each head:
 *   a_t = softmax_t(q . k_t / sqrt(hd)),  out_h = sum_t a_t v_t */
static void attend(struct llm_ref *r, uint32_t l, uint32_t i, float *out)
{
    const struct llm_config *c = &r->c;
    uint32_t hd = c->head_dim, kvd = r->kv_dim, group = c->n_heads / c->n_kv_heads;
    uint32_t n_chain = row_chain(r, i, r->chain);
    uint32_t n_vis = r->n_past + n_chain;
    const float *kc = r->k_cache + (size_t)l * r->n_ctx * kvd,
                *vc = r->v_cache + (size_t)l * r->n_ctx * kvd;
    const float *ks = r->k_step + (size_t)l * r->max_rows * kvd,
                *vs = r->v_step + (size_t)l * r->max_rows * kvd;

    for (uint32_t h = 0; h < c->n_heads; h++) {
        const float *q = r->q + (size_t)i * r->q_dim + (size_t)h * hd;
        size_t kvo = (size_t)(h / group) * hd;
        for (uint32_t t = 0; t < n_vis; t++) {
            const float *k = t < r->n_past ? kc + (size_t)t * kvd :
                                             ks + (size_t)r->chain[t - r->n_past] * kvd;
            float score = 0.0f;
            for (uint32_t d = 0; d < hd; d++)
                score += q[d] * k[kvo + d];
            r->att[t] = score / sqrtf((float)hd);
        }
        softmax(r->att, n_vis);
        float *o = out + (size_t)h * hd;
        memset(o, 0, hd * sizeof(float));
        for (uint32_t t = 0; t < n_vis; t++) {
            const float *v = t < r->n_past ? vc + (size_t)t * kvd :
                                             vs + (size_t)r->chain[t - r->n_past] * kvd;
            for (uint32_t d = 0; d < hd; d++)
                o[d] += r->att[t] * v[kvo + d];
        }
    }
}

/* x = x + Wo attention(RoPE(q), RoPE(k), v),  xn = rmsnorm(x) * attn_norm,
 * q = Wq xn (+ bq), k = Wk xn (+ bk), v = Wv xn (+ bv); with qk_norm each
 * head of q and k is RMSNormed (q_norm, k_norm) before RoPE. K and V of the
 * step's rows go straight to the step scratch of layer l. */
static void attention_block(struct llm_ref *r, uint32_t l, uint32_t n)
{
    const struct llm_config *c = &r->c;
    const struct ref_layer *w = &r->layers[l];
    uint32_t dim = c->dim, qd = r->q_dim, kvd = r->kv_dim;
    float *ks = r->k_step + (size_t)l * r->max_rows * kvd,
          *vs = r->v_step + (size_t)l * r->max_rows * kvd;

    for (uint32_t i = 0; i < n; i++)
        rmsnorm(r->xb + (size_t)i * dim, r->x + (size_t)i * dim, w->attn_norm, dim, c->rms_eps);
    matmul(r->q, r->xb, w->wq, n, dim, qd);
    matmul(ks, r->xb, w->wk, n, dim, kvd);
    matmul(vs, r->xb, w->wv, n, dim, kvd);
    if (w->bq) {
        add_bias(r->q, w->bq, n, qd);
        add_bias(ks, w->bk, n, kvd);
        add_bias(vs, w->bv, n, kvd);
    }
    for (uint32_t i = 0; i < n; i++) {
        const float *cs = r->rope_cs + (size_t)i * c->rope_dims;
        if (w->q_norm) {
            head_norm(r->q + (size_t)i * qd, w->q_norm, c->n_heads, c->head_dim, c->rms_eps);
            head_norm(ks + (size_t)i * kvd, w->k_norm, c->n_kv_heads, c->head_dim, c->rms_eps);
        }
        rope(r->q + (size_t)i * qd, c->n_heads, c->head_dim, c->rope_dims, c->rope_neox, cs);
        rope(ks + (size_t)i * kvd, c->n_kv_heads, c->head_dim, c->rope_dims, c->rope_neox, cs);
    }
    for (uint32_t i = 0; i < n; i++)
        attend(r, l, i, r->att_out + (size_t)i * qd);
    matmul(r->xb, r->att_out, w->wo, n, qd, dim);
    for (size_t j = 0; j < (size_t)n * dim; j++)
        r->x[j] += r->xb[j];
}

/* x = x + W_down (silu(W_gate xn) * (W_up xn)),  xn = rmsnorm(x) * ffn_norm,
 * silu(a) = a / (1 + e^-a) */
static void ffn_block(struct llm_ref *r, uint32_t l, uint32_t n)
{
    const struct llm_config *c = &r->c;
    const struct ref_layer *w = &r->layers[l];
    uint32_t dim = c->dim;

    for (uint32_t i = 0; i < n; i++)
        rmsnorm(r->xb + (size_t)i * dim, r->x + (size_t)i * dim, w->ffn_norm, dim, c->rms_eps);
    matmul(r->hb, r->xb, w->w_gate, n, dim, c->ffn);
    matmul(r->hb2, r->xb, w->w_up, n, dim, c->ffn);
    for (size_t j = 0; j < (size_t)n * c->ffn; j++) {
        float a = r->hb[j];
        a *= 1.0f / (1.0f + expf(-a));
        r->hb[j] = a * r->hb2[j];
    }
    matmul(r->xb, r->hb, w->w_down, n, c->ffn, dim);
    for (size_t j = 0; j < (size_t)n * dim; j++)
        r->x[j] += r->xb[j];
}

/* logits = W_out rmsnorm(x) * output_norm for the rows that want output;
 * argmax (first maximum) for those rows, -1 for the others. With trace, row
 * 0's normed vector goes to trace (it is the LM head's input). */
static void lm_head(struct llm_ref *r, const struct dec_row *rows, uint32_t n, int32_t *ret_argmax,
                    float *ret_logits, float *trace)
{
    const struct llm_config *c = &r->c;
    uint32_t dim = c->dim, m = 0, k = 0;

    for (uint32_t i = 0; i < n; i++)
        if (rows[i].want != DEC_WANT_NONE)
            rmsnorm(r->xb + (size_t)m++ * dim, r->x + (size_t)i * dim, r->output_norm, dim,
                    c->rms_eps);
    if (trace)
        memcpy(trace, r->xb, dim * sizeof(float));
    matmul(r->logits, r->xb, r->output, m, dim, c->n_vocab);
    m = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (rows[i].want == DEC_WANT_NONE) {
            if (ret_argmax)
                ret_argmax[i] = -1;
            continue;
        }
        const float *lg = r->logits + (size_t)m++ * c->n_vocab;
        if (ret_argmax)
            ret_argmax[i] = argmax(lg, c->n_vocab);
        if (rows[i].want == DEC_WANT_LOGITS && ret_logits)
            memcpy(ret_logits + (size_t)k++ * c->n_vocab, lg, c->n_vocab * sizeof(float));
    }
}

/* Check a step's rows and record their parents and depths. Any new step
 * drops the previous one, so the record is cleared first. */
static int check_rows(struct llm_ref *r, const struct dec_row *rows, uint32_t n)
{
    r->step_n = 0;
    if (!rows || n == 0 || n > r->max_rows)
        return -EINVAL;
    for (uint32_t i = 0; i < n; i++) {
        int32_t p = rows[i].parent;
        if (rows[i].token < 0 || (uint32_t)rows[i].token >= r->c.n_vocab || p < -1 ||
            p >= (int32_t)i || rows[i].want > DEC_WANT_LOGITS)
            return -EINVAL;
        r->step_parent[i] = p;
        r->step_depth[i] = p < 0 ? 0 : r->step_depth[p] + 1;
        if (r->n_past + r->step_depth[i] >= r->n_ctx)
            return -E2BIG;
    }
    return 0;
}

/* One forward pass over n rows. trace (n == 1 only): the residual stream
 * after each layer, then the final norm's output. */
static int do_step(struct llm_ref *r, const struct dec_row *rows, uint32_t n, int32_t *ret_argmax,
                   float *ret_logits, float *trace)
{
    const struct llm_config *c = &r->c;
    int rc = check_rows(r, rows, n);
    if (rc < 0)
        return rc;

    /* x = token_embd[token] */
    for (uint32_t i = 0; i < n; i++)
        memcpy(r->x + (size_t)i * c->dim, r->token_embd + (size_t)rows[i].token * c->dim,
               c->dim * sizeof(float));
    rope_tables(r, n);
    for (uint32_t l = 0; l < c->n_layers; l++) {
        attention_block(r, l, n);
        ffn_block(r, l, n);
        if (trace)
            memcpy(trace + (size_t)l * c->dim, r->x, c->dim * sizeof(float));
    }
    lm_head(r, rows, n, ret_argmax, ret_logits,
            trace ? trace + (size_t)c->n_layers * c->dim : NULL);
    r->step_n = n;
    return 0;
}

/* Append the chain idx[0..n-1] of the last step's rows to the cache. */
static int do_commit(struct llm_ref *r, const uint32_t *idx, uint32_t n)
{
    size_t kvd = r->kv_dim;

    if (n > r->step_n || (n && !idx))
        return -EINVAL;
    for (uint32_t k = 0; k < n; k++)
        if (idx[k] >= r->step_n || r->step_parent[idx[k]] != (k ? (int32_t)idx[k - 1] : -1))
            return -EINVAL;
    /* depth k sits at n_past + k < n_ctx: check_rows saw to that */
    for (uint32_t l = 0; l < r->c.n_layers; l++) {
        for (uint32_t k = 0; k < n; k++) {
            size_t dst = ((size_t)l * r->n_ctx + r->n_past + k) * kvd;
            size_t src = ((size_t)l * r->max_rows + idx[k]) * kvd;
            memcpy(r->k_cache + dst, r->k_step + src, kvd * sizeof(float));
            memcpy(r->v_cache + dst, r->v_step + src, kvd * sizeof(float));
        }
    }
    r->n_past += n;
    r->step_n = 0;
    return 0;
}

/* ---- public single-token forward ------------------------------------------- */

int llm_ref_forward_trace(struct llm_ref *r, int32_t token, uint32_t pos, float *ret_logits,
                          float *ret_hidden)
{
    struct dec_row row = { .token = token, .parent = -1, .want = DEC_WANT_LOGITS };
    const uint32_t first = 0;
    int32_t best;
    int rc;

    if (token < 0 || (uint32_t)token >= r->c.n_vocab)
        return -EINVAL;
    if (pos >= r->n_ctx)
        return -E2BIG;
    if (pos > r->n_past)
        return -EINVAL;
    r->n_past = pos;
    if ((rc = do_step(r, &row, 1, &best, ret_logits, ret_hidden)) < 0)
        return rc;
    return do_commit(r, &first, 1);
}

int llm_ref_forward(struct llm_ref *r, int32_t token, uint32_t pos, float *ret_logits)
{
    return llm_ref_forward_trace(r, token, pos, ret_logits, NULL);
}

const struct llm_config *llm_ref_config(const struct llm_ref *r)
{
    return &r->c;
}

uint32_t llm_ref_n_ctx(const struct llm_ref *r)
{
    return r->n_ctx;
}

/* ---- the dec_model adapter ------------------------------------------------- */

/* Chunks of max_rows tokens, each one chain committed whole; only the very
 * last row goes through the LM head. */
static int dm_prefill(void *ctx, const int32_t *tokens, uint32_t n, int32_t *ret_argmax,
                      float *ret_logits)
{
    struct llm_ref *r = ctx;
    int rc;

    if (!tokens || n == 0)
        return -EINVAL;
    if (n > r->n_ctx - r->n_past)
        return -E2BIG;
    for (uint32_t i = 0; i < n; i++) /* all or nothing: none committed if one is bad */
        if (tokens[i] < 0 || (uint32_t)tokens[i] >= r->c.n_vocab)
            return -EINVAL;
    for (uint32_t off = 0; off < n; off += r->max_rows) {
        uint32_t m = n - off < r->max_rows ? n - off : r->max_rows;
        for (uint32_t k = 0; k < m; k++) {
            bool last = off + k == n - 1;
            r->prefill_rows[k] = (struct dec_row){
                .token = tokens[off + k],
                .parent = (int32_t)k - 1,
                .want = !last      ? DEC_WANT_NONE :
                        ret_logits ? DEC_WANT_LOGITS :
                                     DEC_WANT_ARGMAX,
            };
        }
        if ((rc = do_step(r, r->prefill_rows, m, r->prefill_argmax, ret_logits, NULL)) < 0 ||
            (rc = do_commit(r, r->prefill_idx, m)) < 0)
            return rc;
        if (ret_argmax && off + m == n)
            *ret_argmax = r->prefill_argmax[m - 1];
    }
    return 0;
}

static int dm_step(void *ctx, const struct dec_row *rows, uint32_t n, int32_t *ret_argmax,
                   float *ret_logits)
{
    return do_step(ctx, rows, n, ret_argmax, ret_logits, NULL);
}

static int dm_commit(void *ctx, const uint32_t *rows, uint32_t n)
{
    return do_commit(ctx, rows, n);
}

static int dm_rewind(void *ctx, uint32_t n_keep)
{
    struct llm_ref *r = ctx;

    if (n_keep > r->n_past)
        return -EINVAL;
    r->n_past = n_keep;
    r->step_n = 0;
    return 0;
}

static uint32_t dm_n_past(void *ctx)
{
    return ((struct llm_ref *)ctx)->n_past;
}

void llm_ref_dec_model(struct llm_ref *r, struct dec_model *ret)
{
    *ret = (struct dec_model){
        .ctx = r,
        .n_vocab = r->c.n_vocab,
        .n_ctx = r->n_ctx,
        .max_rows = r->max_rows,
        .bos = r->c.bos,
        .eos = r->c.eos,
        .prefill = dm_prefill,
        .step = dm_step,
        .commit = dm_commit,
        .rewind = dm_rewind,
        .n_past = dm_n_past,
    };
}

/* ---- build and free -------------------------------------------------------- */

/* Dequantise tensor `layer`/`suffix` (see llm_config_tensor_name) to f32. The
 * shape was checked by llm_config_load. */
static int load_tensor_kind(const struct llm_gguf *g, int layer, const char *suffix, bool bias,
                            float **ret, char *reterr, size_t errlen)
{
    char name[64];
    int rc = bias ? llm_config_bias_name(name, sizeof(name), layer, suffix) :
                    llm_config_tensor_name(name, sizeof(name), layer, suffix);
    const struct llm_gguf_tensor *t = rc < 0 ? NULL : llm_gguf_find_tensor(g, name);
    if (!t)
        return llm_fail(reterr, errlen, -ENOENT, "missing tensor '%s'", name);
    if (!llm_dequant_has_type(t->type))
        return llm_fail(reterr, errlen, -ENOTSUP,
                        "tensor '%s' is %s, which the CPU reference cannot dequantise", name,
                        llm_ggml_type_name(t->type));

    uint64_t cols = t->ne[0], rows = t->n_elements / cols;
    uint64_t row_bytes = llm_ggml_row_bytes(t->type, cols);
    float *w = malloc(t->n_elements * sizeof(float));
    if (!w)
        return llm_fail(reterr, errlen, -ENOMEM, "out of memory for tensor '%s'", name);
    for (uint64_t i = 0; i < rows && rc == 0; i++)
        rc = llm_dequant_row(t->type, (const uint8_t *)t->data + i * row_bytes, w + i * cols, cols);
    if (rc < 0 || row_bytes == 0) {
        free(w);
        return llm_fail(reterr, errlen, rc < 0 ? rc : -EINVAL,
                        "tensor '%s': cannot dequantise rows of %s", name,
                        llm_ggml_type_name(t->type));
    }
    *ret = w;
    return 0;
}

static int load_tensor(const struct llm_gguf *g, int layer, const char *suffix, float **ret,
                       char *reterr, size_t errlen)
{
    return load_tensor_kind(g, layer, suffix, false, ret, reterr, errlen);
}

/* The tensors of a layer only some architectures have (config.h). */
static int load_layer_extras(struct llm_ref *r, const struct llm_gguf *g, int l, char *reterr,
                             size_t errlen)
{
    struct ref_layer *w = &r->layers[l];
    int rc = 0;
    if (r->c.qkv_bias &&
        ((rc = load_tensor_kind(g, l, "attn_q", true, &w->bq, reterr, errlen)) < 0 ||
         (rc = load_tensor_kind(g, l, "attn_k", true, &w->bk, reterr, errlen)) < 0 ||
         (rc = load_tensor_kind(g, l, "attn_v", true, &w->bv, reterr, errlen)) < 0))
        return rc;
    if (r->c.qk_norm && ((rc = load_tensor(g, l, "attn_q_norm", &w->q_norm, reterr, errlen)) < 0 ||
                         (rc = load_tensor(g, l, "attn_k_norm", &w->k_norm, reterr, errlen)) < 0))
        return rc;
    return 0;
}

static int load_weights(struct llm_ref *r, const struct llm_gguf *g, char *reterr, size_t errlen)
{
    int rc;

    r->layers = calloc(r->c.n_layers, sizeof(*r->layers));
    if (!r->layers)
        return llm_fail(reterr, errlen, -ENOMEM, "out of memory");
    if ((rc = load_tensor(g, -1, "token_embd", &r->token_embd, reterr, errlen)) < 0 ||
        (rc = load_tensor(g, -1, "output_norm", &r->output_norm, reterr, errlen)) < 0)
        return rc;
    if (r->c.tied_embeddings)
        r->output = r->token_embd;
    else if ((rc = load_tensor(g, -1, "output", &r->output, reterr, errlen)) < 0)
        return rc;
    for (uint32_t l = 0; l < r->c.n_layers; l++) {
        struct ref_layer *w = &r->layers[l];
        int L = (int)l;
        if ((rc = load_tensor(g, L, "attn_norm", &w->attn_norm, reterr, errlen)) < 0 ||
            (rc = load_tensor(g, L, "attn_q", &w->wq, reterr, errlen)) < 0 ||
            (rc = load_tensor(g, L, "attn_k", &w->wk, reterr, errlen)) < 0 ||
            (rc = load_tensor(g, L, "attn_v", &w->wv, reterr, errlen)) < 0 ||
            (rc = load_tensor(g, L, "attn_output", &w->wo, reterr, errlen)) < 0 ||
            (rc = load_tensor(g, L, "ffn_norm", &w->ffn_norm, reterr, errlen)) < 0 ||
            (rc = load_tensor(g, L, "ffn_gate", &w->w_gate, reterr, errlen)) < 0 ||
            (rc = load_tensor(g, L, "ffn_up", &w->w_up, reterr, errlen)) < 0 ||
            (rc = load_tensor(g, L, "ffn_down", &w->w_down, reterr, errlen)) < 0 ||
            (rc = load_layer_extras(r, g, L, reterr, errlen)) < 0)
            return rc;
    }
    return 0;
}

static int alloc_state(struct llm_ref *r)
{
    const struct llm_config *c = &r->c;
    size_t rows = r->max_rows, cache = (size_t)c->n_layers * r->n_ctx * r->kv_dim;
    size_t step = (size_t)c->n_layers * rows * r->kv_dim;

    r->rope_freq = calloc(c->rope_dims / 2, sizeof(float));
    r->k_cache = calloc(cache, sizeof(float));
    r->v_cache = calloc(cache, sizeof(float));
    r->k_step = calloc(step, sizeof(float));
    r->v_step = calloc(step, sizeof(float));
    r->step_parent = calloc(rows, sizeof(int32_t));
    r->step_depth = calloc(rows, sizeof(uint32_t));
    r->x = calloc(rows * c->dim, sizeof(float));
    r->xb = calloc(rows * c->dim, sizeof(float));
    r->q = calloc(rows * r->q_dim, sizeof(float));
    r->att_out = calloc(rows * r->q_dim, sizeof(float));
    r->hb = calloc(rows * c->ffn, sizeof(float));
    r->hb2 = calloc(rows * c->ffn, sizeof(float));
    r->rope_cs = calloc(rows * c->rope_dims, sizeof(float));
    r->att = calloc(r->n_ctx, sizeof(float));
    r->chain = calloc(rows, sizeof(uint32_t));
    r->logits = calloc(rows * c->n_vocab, sizeof(float));
    r->prefill_rows = calloc(rows, sizeof(struct dec_row));
    r->prefill_idx = calloc(rows, sizeof(uint32_t));
    r->prefill_argmax = calloc(rows, sizeof(int32_t));
    if (!r->rope_freq || !r->k_cache || !r->v_cache || !r->k_step || !r->v_step ||
        !r->step_parent || !r->step_depth || !r->x || !r->xb || !r->q || !r->att_out || !r->hb ||
        !r->hb2 || !r->rope_cs || !r->att || !r->chain || !r->logits || !r->prefill_rows ||
        !r->prefill_idx || !r->prefill_argmax)
        return -ENOMEM;
    for (uint32_t i = 0; i < rows; i++)
        r->prefill_idx[i] = i;
    return 0;
}

int llm_ref_new(const struct llm_gguf *g, uint32_t n_ctx, struct llm_ref **ret, char *reterr,
                size_t errlen)
{
    struct llm_ref *r = calloc(1, sizeof(*r));
    int rc;

    if (!r)
        return llm_fail(reterr, errlen, -ENOMEM, "out of memory");
    if ((rc = llm_config_load(g, &r->c, reterr, errlen)) < 0)
        goto err;
    if (n_ctx > r->c.n_ctx_train) {
        rc = llm_fail(reterr, errlen, -EINVAL,
                      "context of %u positions exceeds the model's context_length %u", n_ctx,
                      r->c.n_ctx_train);
        goto err;
    }
    r->n_ctx = n_ctx ? n_ctx : r->c.n_ctx_train;
    r->max_rows = r->n_ctx < LLM_REF_MAX_ROWS ? r->n_ctx : LLM_REF_MAX_ROWS;
    r->q_dim = r->c.n_heads * r->c.head_dim;
    r->kv_dim = r->c.n_kv_heads * r->c.head_dim;
    if ((rc = load_weights(r, g, reterr, errlen)) < 0)
        goto err;
    if ((rc = alloc_state(r)) < 0) {
        llm_fail(reterr, errlen, rc, "out of memory for a KV cache of %u positions", r->n_ctx);
        goto err;
    }
    if ((rc = llm_config_rope_freq(g, &r->c, r->rope_freq, reterr, errlen)) < 0)
        goto err;
    *ret = r;
    return 0;
err:
    llm_ref_free(r);
    return rc;
}

void llm_ref_free(struct llm_ref *r)
{
    if (!r)
        return;
    if (r->layers) {
        for (uint32_t l = 0; l < r->c.n_layers; l++) {
            struct ref_layer *w = &r->layers[l];
            free(w->attn_norm), free(w->wq), free(w->wk), free(w->wv), free(w->wo);
            free(w->ffn_norm), free(w->w_gate), free(w->w_up), free(w->w_down);
            free(w->bq), free(w->bk), free(w->bv), free(w->q_norm), free(w->k_norm);
        }
        free(r->layers);
    }
    if (r->output != r->token_embd)
        free(r->output);
    free(r->token_embd), free(r->output_norm), free(r->rope_freq);
    free(r->k_cache), free(r->v_cache), free(r->k_step), free(r->v_step);
    free(r->step_parent), free(r->step_depth);
    free(r->x), free(r->xb), free(r->q), free(r->att_out), free(r->hb), free(r->hb2);
    free(r->rope_cs), free(r->att), free(r->chain), free(r->logits);
    free(r->prefill_rows), free(r->prefill_idx), free(r->prefill_argmax);
    free(r);
}
