/* The GPU model: loading a GGUF into device buffers, building every
 * pipeline and descriptor set once. The per-step recording is in
 * gpu_forward.c. */
#include "llama/gpu_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llama/dequant.h"
#include "llama/repack.h"
#include "shaders/shaders.h"

/* Weight formats the matrix kernels decode, indexed like m->mm[]. */
static const uint32_t gpu_types[GPU_N_TYPES] = {
    LLM_GGML_F32, LLM_GGML_F16, LLM_GGML_BF16, LLM_GGML_Q8_0, LLM_GGML_Q4_0, LLM_GGML_Q4_1,
    LLM_GGML_Q5_0, LLM_GGML_Q5_1, LLM_GGML_Q4_K, LLM_GGML_Q5_K, LLM_GGML_Q6_K,
};
#define N_GPU_TYPES GPU_N_TYPES

static int type_slot(uint32_t type)
{
    for (unsigned i = 0; i < N_GPU_TYPES; i++)
        if (gpu_types[i] == type)
            return (int)i;
    return -1;
}


/* Tuning override "local,tile,rows_per_subgroup,unroll" from the
 * environment: none of these change a result (matmul.comp). */
static int mm_geom_env(const char *name, struct gpu_mm_geom *g, char *reterr, size_t errlen)
{
    const char *v = getenv(name);
    if (!v)
        return 0;
    unsigned a, b, c, e;
    char extra;
    if (sscanf(v, "%u,%u,%u,%u%c", &a, &b, &c, &e, &extra) != 4 || a < 1 || a > 1024 || (a & (a - 1)) || b < 1 ||
        b > 32 || c < 1 || c > 8 || e < 1 || e > 8) {
        snprintf(reterr, errlen, "%s='%.60s': want local,tile,rows_per_subgroup,unroll (local a power of 2 up to 1024, "
                 "tile 1-32, the others 1-8)", name, v);
        return -EINVAL;
    }
    *g = (struct gpu_mm_geom){a, b, c, e, 0, 0};
    return 0;
}

/* Shared memory of matmul_cm.comp: MODE 0 (NSG subgroups, 16 tokens) or
 * MODE 1 (4 subgroups, 32 tokens); see the shader. */
static uint32_t cm_shared(const struct llm_model *m, uint32_t mode)
{
    uint32_t tile = 16 * (m->cm_kc + 8) * 2;
    return mode == 0 ? m->cm_nsg * (3 * tile + 1024) : 8 * tile + 8 * 1024;
}

/* Whether f16 products run on the matrix units (matmul_cm.comp): asked
 * for with LADE_COOPMAT=1, and possible where the device has
 * VK_NV_cooperative_matrix's 16x16x16 f16 shape, 32-lane subgroups, f16
 * arithmetic and storage, and the model's layers are f16 (elsewhere the
 * setting changes nothing; the model's description says "matrix units"
 * when they run). Decided once at load, since a result's bits depend on
 * the kernel. Then the fused epilogues are off (the kernel has none):
 * RoPE, the KV write and SwiGLU are passes of their own.
 *
 * Off by default: on an H100 it made steps of 64 rows of a 7B f16 model
 * 2.3 times cheaper and prefill 2.2 times faster, but one-row steps, so
 * plain decoding, slower (docs/kernels.md). LADE_CM="nsg,kc" sets its
 * split of K (bits change, never their dependence on T). */
static int cm_plan(struct llm_model *m, char *reterr, size_t errlen)
{
    const struct vkr_device_info *di = &m->vk->info;
    const char *env = getenv("LADE_COOPMAT");
    if (env && strcmp(env, "0") && strcmp(env, "1")) {
        snprintf(reterr, errlen, "LADE_COOPMAT='%.20s': want 0 or 1", env);
        return -EINVAL;
    }
    const struct llm_gguf_tensor *tq = llm_gguf_find_tensor(m->gguf, "blk.0.attn_q.weight");
    bool can = m->vk->has_coopmat_nv && di->shader_float16 && di->storage_buffer_16bit && di->subgroup_size == 32 &&
               (di->min_subgroup_size == 0 || di->min_subgroup_size == di->max_subgroup_size);
    m->cm = can && tq && tq->type == LLM_GGML_F16 && env && !strcmp(env, "1");
    m->cm_nsg = 4;
    m->cm_kc = 64;
    const char *v = getenv("LADE_CM");
    if (v) {
        unsigned a, b;
        char extra;
        if (sscanf(v, "%u,%u%c", &a, &b, &extra) != 2 || a < 1 || a > 8 || b < 16 || b > 256 || b % 16) {
            snprintf(reterr, errlen, "LADE_CM='%.40s': want subgroups,columns (subgroups 1-8, columns a multiple of "
                     "16 up to 256)", v);
            return -EINVAL;
        }
        m->cm_nsg = a;
        m->cm_kc = b;
    }
    uint32_t need = cm_shared(m, 0) > cm_shared(m, 1) ? cm_shared(m, 0) : cm_shared(m, 1);
    if (m->cm && need > di->max_compute_shared_memory) {
        snprintf(reterr, errlen, "LADE_CM=%u,%u needs %u bytes of workgroup memory, device '%.200s' has %u", m->cm_nsg,
                 m->cm_kc, need, di->name, di->max_compute_shared_memory);
        return -EINVAL;
    }
    if (m->cm)
        m->fuse = false;
    return 0;
}

static int make_kernels(struct llm_model *m, char *reterr, size_t errlen)
{
    const struct vkr_device_info *di = &m->vk->info;
    uint32_t need = VK_SUBGROUP_FEATURE_BASIC_BIT | VK_SUBGROUP_FEATURE_ARITHMETIC_BIT;
    /* CPU drivers: few large workgroups (launches cost), a subgroup takes 4
     * rows in turn, one run at a time; wide steps take 32 tokens at once,
     * so the weights are decoded once per 32. GPUs (swept on an H200 with
     * a 7B shape, scripts/gpu-session.sh): decode-sized steps one row a
     * subgroup, 4 subgroups a workgroup; wide steps 2 rows a subgroup, so
     * that each input load feeds 2 rows, 2 subgroups a workgroup (the
     * sweeps are in bench/results/nvidia-h200/sweep; the spread between the
     * best geometries was a few percent). */
    bool cpu = di->type == VK_PHYSICAL_DEVICE_TYPE_CPU;
    struct gpu_mm_geom g0 = cpu ? (struct gpu_mm_geom){64, 8, 1, 1, 0, 0} : (struct gpu_mm_geom){128, 8, 1, 1, 0, 0};
    struct gpu_mm_geom g1 = cpu ? (struct gpu_mm_geom){64, 32, 1, 1, 0, 0} : (struct gpu_mm_geom){64, 8, 2, 1, 0, 0};
    /* One-token steps (plain decoding): a geometry of their own, tile 1,
     * which holds no registers and runs no loop for absent tokens. On
     * lavapipe (2 cores) it made a kernelc-22m one-token step 1.8x faster
     * (35.0 to 19.7 ms). On an H100, lade-mmbench picked 256 lanes with 2
     * runs in flight over f16, q4_0 and q4_k at 7B shapes (q4_k 4096 x
     * 4096: 24.7 us with the decode geometry, 21.3 with this one), and
     * whole 7B steps agreed (bench/results/nvidia-h100-80gb-hbm3). */
    struct gpu_mm_geom g2 = cpu ? (struct gpu_mm_geom){64, 1, 1, 2, 0, 0} : (struct gpu_mm_geom){256, 1, 1, 2, 0, 0};
    int err = mm_geom_env("LADE_MM", &g0, reterr, errlen);
    err = err ? err : mm_geom_env("LADE_MM_WIDE", &g1, reterr, errlen);
    err = err ? err : mm_geom_env("LADE_MM_ONE", &g2, reterr, errlen);
    if (err)
        return err;
    /* LADE_MM_XSH (floats, a multiple of 4 up to 8192, 0 for none): decode
     * and one-token steps stage their inputs in shared memory when they
     * fit (matmul.comp XSH; never changes a result). */
    const char *xsh = getenv("LADE_MM_XSH");
    if (xsh) {
        char *end;
        unsigned long v = strtoul(xsh, &end, 10);
        if (end == xsh || *end || v % 4 || v > 8192) {
            snprintf(reterr, errlen, "LADE_MM_XSH='%.20s': want a multiple of 4 up to 8192", xsh);
            return -EINVAL;
        }
        g0.xsh = g2.xsh = (uint32_t)v;
    }
    /* LADE_MM_SPLITK (1, 2 or 4): unlike the geometries it changes the bits
     * of a result (never their dependence on T). 1 by default: on the H200,
     * 2 made a 7B step about 5% slower (bench/results/nvidia-h200/sweep). */
    m->mm_splitk = 1;
    const char *fu = getenv("LADE_FUSE");
    m->fuse = !(fu && !strcmp(fu, "0"));
    const char *sk = getenv("LADE_MM_SPLITK");
    if (sk) {
        if (strcmp(sk, "1") && strcmp(sk, "2") && strcmp(sk, "4")) {
            snprintf(reterr, errlen, "LADE_MM_SPLITK='%.20s': want 1, 2 or 4", sk);
            return -EINVAL;
        }
        m->mm_splitk = (uint32_t)atoi(sk);
    }
    err = cm_plan(m, reterr, errlen);
    if (err)
        return err;
    for (int i = 0; i < 3; i++) {
        struct gpu_mm_geom *g = i == 0 ? &g0 : i == 1 ? &g1 : &g2;
        if ((di->subgroup_ops & need) != need || di->subgroup_size == 0) {
            snprintf(reterr, errlen, "device '%.200s' lacks subgroup arithmetic in compute shaders (subgroup size %u)",
                     di->name, di->subgroup_size);
            return -ENOTSUP;
        }
        if (di->subgroup_size > g->local || g->local % di->subgroup_size ||
            (g->local / di->subgroup_size) % m->mm_splitk) {
            snprintf(reterr, errlen, "matrix kernel geometry: %u lanes a workgroup is not a whole number of %u-lane "
                     "subgroups, %u of them a row (LADE_MM, LADE_MM_WIDE, LADE_MM_ONE, LADE_MM_SPLITK)",
                     g->local, di->subgroup_size, m->mm_splitk);
            return -EINVAL;
        }
        /* Rows a workgroup covers at the default subgroup size. Drivers
         * that pick another size per pipeline (Intel, AMD) still cover
         * exactly these rows: the shader strides by its own subgroup count. */
        g->rows_wg = g->local / di->subgroup_size / m->mm_splitk * g->rps * (cpu ? 4 : 1);
    }
    m->mmg[0] = g0;
    m->mmg[1] = g1;
    m->mmg[2] = g2;
    m->mm_wide_min = cpu ? 0 : 65536; /* CPUs: the 32-token tile pays whatever the size */
    /* RMSNorm and argmax: 64 lanes on CPU drivers, 256 on GPUs. The norm's
     * reduction tree depends on it, but only per device, never per T (its
     * vec4 loads need dim % 4 == 0, which the matrix kernels already
     * require of every row length). */
    /* Attention: 4 subgroups a workgroup at the default subgroup size; a
     * lane holds ceil(head_dim / 2 / smallest subgroup) pairs of dims.
     * Splits of 256 positions (64 on CPUs, so that tests cover merging),
     * more if the context would need over 32. */
    uint32_t hd_max = m->hd_max;
    uint32_t min_sg = di->min_subgroup_size ? di->min_subgroup_size : di->subgroup_size;
    uint32_t att_sgs = 4;
    m->att_split = cpu ? 64 : 256;
    /* LADE_ATT="subgroups,split" overrides both for tuning. Like
     * LADE_MM_SPLITK they change a result's bits (the merge tree, the split
     * boundaries), never its dependence on T. */
    const char *at = getenv("LADE_ATT");
    if (at) {
        unsigned a, b;
        char extra;
        if (sscanf(at, "%u,%u%c", &a, &b, &extra) != 2 || a < 1 || a > 16 || (a & (a - 1)) || b < 16 || b > 65536) {
            snprintf(reterr, errlen, "LADE_ATT='%.40s': want subgroups,split (subgroups 1-16, a power of 2; split "
                     "16-65536 positions)", at);
            return -EINVAL;
        }
        att_sgs = a;
        m->att_split = b;
    }
    uint32_t att_local = att_sgs * di->subgroup_size;
    uint32_t att_nj = (hd_max / 2 + min_sg - 1) / min_sg;
    uint32_t att_nsg = att_local / min_sg;
    uint32_t group = m->cfg.n_heads / m->cfg.n_kv_heads;
    uint32_t keys = m->n_ctx + m->max_rows;
    while ((keys + m->att_split - 1) / m->att_split > 32)
        m->att_split *= 2;
    m->att_max_split = (keys + m->att_split - 1) / m->att_split;
    uint64_t att_shared = 4ull * (m->max_rows + 1 + group * hd_max * (1 + att_nsg) + 2 * att_nsg * group);
    if (att_shared > di->max_compute_shared_memory) {
        snprintf(reterr, errlen, "attention needs %llu bytes of workgroup memory, device '%.200s' has %u",
                 (unsigned long long)att_shared, di->name, di->max_compute_shared_memory);
        return -ENOTSUP;
    }
    struct vkr_kernel_desc d[K_COUNT] = {
        [K_EMBED] = {"embed", lade_spv_embed, 0, 3, 16, 1, {m->embd.type}},
        [K_RMSNORM] = {"rmsnorm", lade_spv_rmsnorm, 0, 4, 12, 2, {0, cpu ? 64 : 256}},
        [K_ROPE_KV] = {"rope_kv", lade_spv_rope_kv, 0, 6, 28, 0, {0}},
        [K_ATTENTION] = {"attention", lade_spv_attention, 0, 7, 24, 9,
                         {0, att_local, hd_max, m->max_rows, group, att_nj, att_nsg, m->att_split, 4}},
        [K_ATTN_MERGE] = {"attn_merge", lade_spv_attn_merge, 0, 3, 12, 3, {0, 0, hd_max}},
        [K_SWIGLU] = {"swiglu", lade_spv_swiglu, 0, 1, 8, 0, {0}},
        [K_ARGMAX] = {"argmax", lade_spv_argmax, 0, 2, 4, 2, {0, cpu ? 64 : 256}},
        [K_DRAW] = {"draw", lade_spv_draw, 0, 3, 20, 3, {0, cpu ? 64 : 256, GPU_DRAW_MAX_BLOCKS}},
        [K_PENALTY] = {"penalty", lade_spv_penalty, 0, 2, 20, 2, {0, 64}},
        [K_TOPK] = {"topk", lade_spv_topk, 0, 3, 12, 2, {0, cpu ? 64 : 256}},
        [K_KV_COMMIT] = {"kv_commit", lade_spv_kv_commit, 0, 3, 4, 0, {0}},
    };
    d[K_EMBED].spirv_bytes = lade_spv_embed_bytes;
    d[K_RMSNORM].spirv_bytes = lade_spv_rmsnorm_bytes;
    d[K_ROPE_KV].spirv_bytes = lade_spv_rope_kv_bytes;
    d[K_ATTENTION].spirv_bytes = lade_spv_attention_bytes;
    d[K_ATTN_MERGE].spirv_bytes = lade_spv_attn_merge_bytes;
    d[K_SWIGLU].spirv_bytes = lade_spv_swiglu_bytes;
    d[K_ARGMAX].spirv_bytes = lade_spv_argmax_bytes;
    d[K_DRAW].spirv_bytes = lade_spv_draw_bytes;
    d[K_PENALTY].spirv_bytes = lade_spv_penalty_bytes;
    d[K_TOPK].spirv_bytes = lade_spv_topk_bytes;
    d[K_KV_COMMIT].spirv_bytes = lade_spv_kv_commit_bytes;
    for (int i = 0; i < K_COUNT; i++) {
        int err = vkr_kernel_new(m->vk, &d[i], &m->k[i]);
        if (err) {
            snprintf(reterr, errlen, "%s", m->vk->err);
            return err;
        }
    }
    return 0;
}

/* The matmul pipelines for a weight format (all three geometries), built
 * the first time a tensor of that format is uploaded (pipeline builds cost
 * on CPU drivers). */
static int matmul_kernels(struct llm_model *m, int slot, const struct vkr_kernel *ret[3])
{
    for (int i = 0; i < 3; i++) {
        struct vkr_kernel *k = &m->mm[slot][i];
        const struct gpu_mm_geom *g = &m->mmg[i];
        if (!k->pipeline) {
            struct vkr_kernel_desc d = {"matmul", lade_spv_matmul, lade_spv_matmul_bytes, 6, sizeof(struct pc_matmul), 9,
                                        {gpu_types[slot], g->local, g->tile, g->rows_wg, g->rps, g->unroll,
                                         m->mm_splitk, 0, g->xsh}};
            int err = vkr_kernel_new(m->vk, &d, k);
            if (err)
                return err;
        }
        ret[i] = k;
    }
    /* matmul_cm.comp: MODE 0 for steps of up to 16 tokens (NSG subgroups
     * a workgroup, 16 rows), MODE 1 for wider ones (4 subgroups, 64 rows,
     * 32 tokens); the same sums either way. */
    for (uint32_t i = 0; m->cm && gpu_types[slot] == LLM_GGML_F16 && i < 2; i++) {
        if (m->mmcm[i].pipeline)
            continue;
        struct vkr_kernel_desc d = {"matmul_cm", lade_spv_matmul_cm, lade_spv_matmul_cm_bytes, 6, sizeof(struct pc_matmul),
                                    6, {0, i ? 128 : 32 * m->cm_nsg, i ? 2 : 1, m->cm_nsg, m->cm_kc, i}};
        int err = vkr_kernel_new(m->vk, &d, &m->mmcm[i]);
        if (err)
            return err;
    }
    return 0;
}

/* vkr_rows_xform for the formats whose GPU layout differs (repack.h). */
static int repack_xform(void *arg, const void *src, uint64_t n_rows, uint64_t row_bytes, void *dst)
{
    return llm_repack_rows(*(const uint32_t *)arg, src, n_rows, row_bytes, dst);
}

/* The tensor `name` checked for the matrix kernels, and its row size. */
static int find_mat(struct llm_model *m, const char *name, uint32_t cols, const struct llm_gguf_tensor **ret,
                    uint64_t *ret_rb, char *reterr, size_t errlen)
{
    const struct llm_gguf_tensor *t = llm_gguf_find_tensor(m->gguf, name);
    if (!t) {
        snprintf(reterr, errlen, "%s: tensor '%s' missing", llm_gguf_name(m->gguf), name);
        return -ENOENT;
    }
    int slot = type_slot(t->type);
    if (slot < 0) {
        snprintf(reterr, errlen, "%s: unsupported tensor type %s in tensor %s", llm_gguf_name(m->gguf),
                 llm_ggml_type_name(t->type), name);
        return -ENOTSUP;
    }
    if (cols % 4) { /* the matrix kernels read inputs as vec4 */
        snprintf(reterr, errlen, "%s: tensor '%s' has a row length %u that is not a multiple of 4",
                 llm_gguf_name(m->gguf), name, cols);
        return -ENOTSUP;
    }
    uint64_t rb = llm_ggml_row_bytes(t->type, cols);
    if (rb == 0) {
        snprintf(reterr, errlen, "%s: tensor '%s': row of %u is not a whole number of %s blocks", llm_gguf_name(m->gguf),
                 name, cols, llm_ggml_type_name(t->type));
        return -EINVAL;
    }
    *ret = t;
    *ret_rb = rb;
    return 0;
}

/* `rows` rows of `rb` bytes of ggml type `type` into ret: from `data`, or
 * with `data2` the first half from data and the second from data2 (gate
 * and up stacked). */
static int upload_rows(struct llm_model *m, const char *name, uint32_t type, const void *data, const void *data2,
                       uint32_t rows, uint32_t cols, uint64_t rb, struct gpu_mat *ret, char *reterr, size_t errlen)
{
    ret->type = type;
    ret->rows = rows;
    ret->cols = cols;
    int kerr = matmul_kernels(m, type_slot(type), ret->kernel);
    if (kerr) {
        snprintf(reterr, errlen, "%s", m->vk->err);
        return kerr;
    }
    int err;
    uint8_t *both = NULL;
    if (data2 && llm_repacked(type)) {
        /* The repacked layout puts every row's quants before every row's
         * scales, so the halves are joined on the host first. */
        uint64_t half = (uint64_t)rows / 2 * rb;
        if (!(both = malloc(2 * half)))
            return -ENOMEM;
        memcpy(both, data, half);
        memcpy(both + half, data2, half);
        data = both;
        data2 = NULL;
    }
    if (llm_repacked(type)) {
        err = vkr_rows_upload_xform(m->vk, data, rows, rb, repack_xform, &ret->type, &ret->w);
    } else if (!data2) {
        err = vkr_rows_upload(m->vk, data, rows, rb, &ret->w);
    } else {
        err = vkr_rows_alloc(m->vk, rows, rb, &ret->w);
        err = err ? err : vkr_rows_write(m->vk, &ret->w, 0, data, rows / 2);
        err = err ? err : vkr_rows_write(m->vk, &ret->w, rows / 2, data2, rows / 2);
        if (err)
            vkr_rows_free(m->vk, &ret->w);
    }
    free(both);
    if (err) {
        snprintf(reterr, errlen, "uploading '%s': %s", name, m->vk->err);
        return err;
    }
    m->weight_bytes += (uint64_t)rows * rb;
    ret->cm = m->cm && type == LLM_GGML_F16 && rows % 16 == 0 && cols % m->cm_kc == 0 && ret->w.n_chunks == 1;
    return 0;
}

static int upload_mat(struct llm_model *m, const char *name, uint32_t rows, uint32_t cols, struct gpu_mat *ret,
                      char *reterr, size_t errlen)
{
    const struct llm_gguf_tensor *t;
    uint64_t rb;
    int err = find_mat(m, name, cols, &t, &rb, reterr, errlen);
    return err ? err : upload_rows(m, name, t->type, t->data, NULL, rows, cols, rb, ret, reterr, errlen);
}

/* Gate and up of a layer as one buffer of 2 ffn rows (gpu_layer.wgu), when
 * their types match and the pair fits one binding; else each on its own. */
static int upload_gate_up(struct llm_model *m, struct gpu_layer *L, const char *gate, const char *up, char *reterr,
                          size_t errlen)
{
    const struct llm_config *c = &m->cfg;
    const struct llm_gguf_tensor *tg, *tu;
    uint64_t rb, rbu;
    int err = find_mat(m, gate, c->dim, &tg, &rb, reterr, errlen);
    err = err ? err : find_mat(m, up, c->dim, &tu, &rbu, reterr, errlen);
    if (err)
        return err;
    uint64_t half = (uint64_t)c->ffn * rb;
    if (m->fuse && tg->type == tu->type && 2 * half <= vkr_max_binding(m->vk)) {
        err = upload_rows(m, gate, tg->type, tg->data, tu->data, 2 * c->ffn, c->dim, rb, &L->wgu, reterr, errlen);
        if (err)
            return err;
        if (L->wgu.w.n_chunks == 1) {
            L->fused_gu = true;
            return 0;
        }
        m->weight_bytes -= 2 * half; /* (chunked after all: rows not a whole number of chunks) */
        vkr_rows_free(m->vk, &L->wgu.w);
    }
    err = upload_rows(m, gate, tg->type, tg->data, NULL, c->ffn, c->dim, rb, &L->wg, reterr, errlen);
    return err ? err : upload_rows(m, up, tu->type, tu->data, NULL, c->ffn, c->dim, rbu, &L->wu, reterr, errlen);
}

/* Norm weights go up as f32 whatever their stored type. */
static int upload_vec(struct llm_model *m, const char *name, uint32_t n, struct vkr_buf *ret, char *reterr,
                      size_t errlen)
{
    const struct llm_gguf_tensor *t = llm_gguf_find_tensor(m->gguf, name);
    float *tmp = malloc((size_t)n * sizeof(float));
    int err = !t ? -ENOENT : !tmp ? -ENOMEM : llm_dequant_row(t->type, t->data, tmp, n);
    if (!err)
        err = vkr_buf_new(m->vk, (VkDeviceSize)n * 4, VKR_MEM_DEVICE, ret);
    if (!err)
        err = vkr_buf_upload(m->vk, ret, 0, tmp, (VkDeviceSize)n * 4);
    if (err)
        snprintf(reterr, errlen, "%s: tensor '%s': %s", llm_gguf_name(m->gguf), name,
                 err == -ENOENT ? "missing" : err == -ENOTSUP ? "unsupported type" : m->vk->err);
    free(tmp);
    return err;
}

static int upload_layer(struct llm_model *m, int l, char *reterr, size_t errlen)
{
    const struct llm_config *c = &m->cfg;
    struct gpu_layer *L = &m->layers[l];
    char n[7][128];
    const char *suffix[7] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
    for (int i = 0; i < 7; i++)
        llm_config_tensor_name(n[i], sizeof(n[i]), l, suffix[i]);
    int err = upload_mat(m, n[0], m->qdim, c->dim, &L->wq, reterr, errlen);
    if (!err)
        err = upload_mat(m, n[1], m->kvdim, c->dim, &L->wk, reterr, errlen);
    if (!err)
        err = upload_mat(m, n[2], m->kvdim, c->dim, &L->wv, reterr, errlen);
    if (!err)
        err = upload_mat(m, n[3], c->dim, m->qdim, &L->wo, reterr, errlen);
    if (!err)
        err = upload_gate_up(m, L, n[4], n[5], reterr, errlen);
    if (!err)
        err = upload_mat(m, n[6], c->dim, c->ffn, &L->wd, reterr, errlen);
    char nn[128];
    if (!err && !(err = llm_config_tensor_name(nn, sizeof(nn), l, "attn_norm")))
        err = upload_vec(m, nn, c->dim, &L->attn_norm, reterr, errlen);
    if (!err && !(err = llm_config_tensor_name(nn, sizeof(nn), l, "ffn_norm")))
        err = upload_vec(m, nn, c->dim, &L->ffn_norm, reterr, errlen);
    /* Cache slots [0, n_ctx) hold the committed sequence; slots
     * [n_ctx, n_ctx + max_rows) are the scratch of the current step. */
    VkDeviceSize kv = (VkDeviceSize)(m->n_ctx + m->max_rows) * m->kvdim * 2;
    if (!err && kv > vkr_max_binding(m->vk)) {
        snprintf(reterr, errlen, "KV cache of one layer (%llu bytes) exceeds the device's binding limit: lower the context length",
                 (unsigned long long)kv);
        err = -E2BIG;
    }
    if (!err)
        err = vkr_buf_new(m->vk, kv, VKR_MEM_DEVICE, &L->kc);
    if (!err)
        err = vkr_buf_new(m->vk, kv, VKR_MEM_DEVICE, &L->vc);
    if (err && !reterr[0])
        snprintf(reterr, errlen, "layer %d: %s", l, m->vk->err);
    return err;
}

/* n command buffers, each with its own fence and timestamps, made at load
 * so that a step that records allocates nothing. */
static int alloc_step_cache(struct llm_model *m, uint32_t n)
{
    m->steps.e = calloc(n, sizeof(*m->steps.e));
    if (!m->steps.e)
        return -ENOMEM;
    for (; m->steps.n < n; m->steps.n++) {
        struct gpu_recorded *e = &m->steps.e[m->steps.n];
        e->slot_src = calloc(m->max_rows, sizeof(*e->slot_src));
        if (!e->slot_src)
            return -ENOMEM;
        int err = vkr_cmd_new(m->vk, 8, &e->cmd);
        if (err) {
            free(e->slot_src);
            return err;
        }
    }
    return 0;
}

static int alloc_activations(struct llm_model *m, char *reterr, size_t errlen)
{
    const struct llm_config *c = &m->cfg;
    VkDeviceSize R = m->max_rows;
    struct {
        struct vkr_buf *b;
        VkDeviceSize bytes;
        enum vkr_mem kind;
    } a[] = {
        {&m->x, R * c->dim * 4, VKR_MEM_DEVICE},       {&m->xn, R * c->dim * 4, VKR_MEM_DEVICE},
        {&m->q, R * m->qdim * 4, VKR_MEM_DEVICE},      {&m->kk, R * m->kvdim * 4, VKR_MEM_DEVICE},
        {&m->vv, R * m->kvdim * 4, VKR_MEM_DEVICE},    {&m->att, R * m->qdim * 4, VKR_MEM_DEVICE},
        {&m->g, R * c->ffn * 8, VKR_MEM_DEVICE}, /* gate, then up, per row */
        {&m->xf, R * c->dim * 4, VKR_MEM_DEVICE},      {&m->logits, R * c->n_vocab * 4, VKR_MEM_DEVICE},
        {&m->amax, R * 8, VKR_MEM_DEVICE},             {&m->tokens, R * 4, VKR_MEM_UPLOAD},
        {&m->pos, R * 4, VKR_MEM_UPLOAD},              {&m->parent, R * 4, VKR_MEM_UPLOAD},
        {&m->sel, R * 4, VKR_MEM_UPLOAD},              {&m->readback, R * 8 + R * c->n_vocab * 4, VKR_MEM_READBACK},
        {&m->drawrow, R * 8, VKR_MEM_UPLOAD},          {&m->toprow, R * 4, VKR_MEM_UPLOAD},
        {&m->pen, R * (2 + GPU_PEN_MAX) * 4, VKR_MEM_UPLOAD},
        {&m->moves, 16 + R * 8, VKR_MEM_UPLOAD},       {&m->stepargs, 32, VKR_MEM_UPLOAD},
        {&m->cand, R * DEC_TOPK_MAX * 8, VKR_MEM_DEVICE},
        {&m->att_part, R * c->n_heads * m->att_max_split * (m->hd_max + 2) * 4, VKR_MEM_DEVICE},
        {&m->trace, m->tracing ? (VkDeviceSize)(c->n_layers + 1) * c->dim * 4 : 4, VKR_MEM_READBACK},
    };
    for (size_t i = 0; i < sizeof(a) / sizeof(a[0]); i++) {
        if (a[i].bytes > vkr_max_binding(m->vk)) {
            snprintf(reterr, errlen, "activation buffer of %llu bytes exceeds the device's binding limit: lower max_rows",
                     (unsigned long long)a[i].bytes);
            return -E2BIG;
        }
        int err = vkr_buf_new(m->vk, a[i].bytes, a[i].kind, a[i].b);
        if (err) {
            snprintf(reterr, errlen, "activations: %s", m->vk->err);
            return err;
        }
    }
    m->last_parent = calloc(R, sizeof(*m->last_parent));
    m->depth = calloc(R, sizeof(*m->depth));
    m->want_rows = calloc(R, sizeof(*m->want_rows));
    m->rowbuf = calloc(R, sizeof(*m->rowbuf));
    m->chain = calloc(R, sizeof(*m->chain));
    m->argmax_tmp = calloc(R, sizeof(*m->argmax_tmp));
    m->logit_src = calloc(R, sizeof(*m->logit_src));
    m->draw_rows = calloc(R, sizeof(*m->draw_rows));
    m->row_tok = calloc(R, sizeof(*m->row_tok));
    m->seq = calloc(m->n_ctx, sizeof(*m->seq));
    m->seen = calloc(c->n_vocab, sizeof(*m->seen));
    if (!m->last_parent || !m->depth || !m->want_rows || !m->rowbuf || !m->chain || !m->argmax_tmp ||
        !m->logit_src || !m->draw_rows || !m->row_tok || !m->seq || !m->seen) {
        snprintf(reterr, errlen, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

static int open_model(struct llm_model *m, const struct llm_model_opts *o, char *reterr, size_t errlen)
{
    int err = llm_gguf_open(o->path, &m->gguf, reterr, errlen);
    if (!err)
        err = llm_config_load(m->gguf, &m->cfg, reterr, errlen);
    if (err)
        return err;
    err = o->tokenizer_path ? llm_tok_load_file(o->tokenizer_path, &m->tok, reterr, errlen)
                            : llm_tok_load_gguf(m->gguf, &m->tok, reterr, errlen);
    if (err)
        return err;
    if (llm_tok_n_vocab(m->tok) != (int32_t)m->cfg.n_vocab) {
        snprintf(reterr, errlen, "tokenizer has %d pieces but the model's vocabulary is %u", llm_tok_n_vocab(m->tok),
                 m->cfg.n_vocab);
        return -EINVAL;
    }
    const struct llm_config *c = &m->cfg;
    m->n_ctx = o->n_ctx ? o->n_ctx : c->n_ctx_train;
    if (m->n_ctx == 0 || m->n_ctx > LLM_CONFIG_MAX_CTX) {
        snprintf(reterr, errlen, "context length %u out of range 1..%u", m->n_ctx, LLM_CONFIG_MAX_CTX);
        return -EINVAL;
    }
    m->max_rows = o->max_rows ? o->max_rows : 256;
    if (m->max_rows > 4096) {
        snprintf(reterr, errlen, "max_rows %u out of range 1..4096", m->max_rows);
        return -EINVAL;
    }
    if (c->head_dim % 2 || c->head_dim > 256) {
        snprintf(reterr, errlen, "head dimension %u unsupported (even, at most 256)", c->head_dim);
        return -ENOTSUP;
    }
    m->hd_max = c->head_dim;
    m->qdim = c->n_heads * c->head_dim;
    m->kvdim = c->n_kv_heads * c->head_dim;
    m->tracing = o->trace;
    m->profiling = o->profile;
    return 0;
}

int llm_model_load(const struct llm_model_opts *o, struct llm_model **ret, char *reterr, size_t errlen)
{
    reterr[0] = 0;
    struct llm_model *m = calloc(1, sizeof(*m));
    if (!m) {
        snprintf(reterr, errlen, "out of memory");
        return -ENOMEM;
    }
    int err = open_model(m, o, reterr, errlen);
    if (!err) {
        struct vkr_ctx_opts vo = {.device = o->device, .validation = o->validation,
                                  .pipeline_cache_path = o->pipeline_cache};
        err = vkr_ctx_new(&vo, &m->vk, reterr, errlen);
    }
    const struct llm_config *c = &m->cfg;
    if (!err) {
        const struct llm_gguf_tensor *te = llm_gguf_find_tensor(m->gguf, "token_embd.weight");
        m->embd.type = te ? te->type : 0;
        err = make_kernels(m, reterr, errlen);
    }
    /* The weights in one upload batch: copies overlap the host's reading
     * and repacking of the next tensor (vkr_upload_begin). */
    if (!err && (err = vkr_upload_begin(m->vk)) != 0)
        snprintf(reterr, errlen, "staging buffers for the upload: %s", m->vk->err);
    if (!err)
        err = upload_mat(m, "token_embd.weight", c->n_vocab, c->dim, &m->embd, reterr, errlen);
    if (!err && !c->tied_embeddings)
        err = upload_mat(m, "output.weight", c->n_vocab, c->dim, &m->head, reterr, errlen);
    if (!err && c->tied_embeddings) {
        m->head = m->embd; /* shares the chunks; freed once */
        memset(m->head.set, 0, sizeof(m->head.set));
        m->weight_bytes += m->embd.w.n_rows * m->embd.w.row_bytes;
    }
    if (!err)
        err = upload_vec(m, "output_norm.weight", c->dim, &m->out_norm, reterr, errlen);
    if (!err && !(m->layers = calloc(c->n_layers, sizeof(*m->layers))))
        err = -ENOMEM;
    for (uint32_t l = 0; !err && l < c->n_layers; l++)
        err = upload_layer(m, (int)l, reterr, errlen);
    if (!err && (err = vkr_upload_end(m->vk)) != 0)
        snprintf(reterr, errlen, "uploading the weights: %s", m->vk->err);
    /* RoPE and the KV write fuse into the Q, K and V products when every
     * pair (2i, 2i+1) lies in one workgroup: even row blocks, one chunk. */
    m->fuse_rope = m->fuse && m->qdim % 2 == 0 && m->kvdim % 2 == 0;
    for (int i = 0; i < 3; i++)
        m->fuse_rope = m->fuse_rope && m->mmg[i].rows_wg % 2 == 0;
    for (uint32_t l = 0; !err && l < c->n_layers; l++) {
        const struct gpu_layer *L = &m->layers[l];
        m->fuse_rope = m->fuse_rope && L->wq.w.n_chunks == 1 && L->wk.w.n_chunks == 1 && L->wv.w.n_chunks == 1;
    }
    if (!err)
        err = alloc_activations(m, reterr, errlen);
    if (!err)
    {
        /* Profiling: a timestamp after every barrier, at most 10 a layer. */
        m->prof_cap = m->profiling ? 10 * m->cfg.n_layers + 16 : 0;
        m->prof_phase = m->prof_cap ? calloc(m->prof_cap, 1) : NULL;
        if (m->prof_cap && !m->prof_phase)
            err = -ENOMEM;
        err = err ? err : vkr_cmd_new(m->vk, 8 + m->prof_cap, &m->cmd);
        /* The step cache (gpu_forward.c): not when profiling, whose
         * timestamps' phases belong to the last recording.
         * LADE_STEP_CACHE=N keeps N recordings (1 to 1024; tests evict
         * with few), 0 records every step (for comparing the two). */
        const char *sc = getenv("LADE_STEP_CACHE");
        long nc = GPU_STEP_CACHE;
        if (sc && *sc) {
            char *end;
            nc = strtol(sc, &end, 10);
            if (*end || nc < 0 || nc > 1024) {
                snprintf(reterr, errlen, "LADE_STEP_CACHE=%.40s: want 0 to 1024 recordings", sc);
                err = -EINVAL;
            }
        }
        if (!err && !m->profiling && nc > 0)
            err = alloc_step_cache(m, (uint32_t)nc);
        /* LADE_DRAW=0: no set_draw in the seam, so the decoder draws on
         * the host from logits (for comparing the two). */
        const char *dr = getenv("LADE_DRAW");
        m->draw.off = dr && !strcmp(dr, "0");
    }
    if (!err)
        err = gpu_model_build_sets(m, reterr, errlen);
    if (err) {
        if (!reterr[0])
            snprintf(reterr, errlen, "%s", err == -ENOMEM ? "out of memory" : m->vk ? m->vk->err : strerror(-err));
        llm_model_free(m);
        return err;
    }
    const struct llm_gguf_tensor *tq = llm_gguf_find_tensor(m->gguf, "blk.0.attn_q.weight");
    snprintf(m->desc, sizeof(m->desc), "%u layers, dim %u, %s weights, vocab %u, ctx %u%s",
             c->n_layers, c->dim, tq ? llm_ggml_type_name(tq->type) : "?", c->n_vocab, m->n_ctx,
             m->cm ? ", matrix units" : "");
    *ret = m;
    return 0;
}

static void free_mat(struct llm_model *m, struct gpu_mat *g)
{
    vkr_rows_free(m->vk, &g->w);
}

void llm_model_free(struct llm_model *m)
{
    if (!m)
        return;
    if (m->vk) {
        if (m->vk->dev)
            vkDeviceWaitIdle(m->vk->dev);
        for (uint32_t l = 0; m->layers && l < m->cfg.n_layers; l++) {
            struct gpu_layer *L = &m->layers[l];
            struct gpu_mat *mats[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->wg, &L->wu, &L->wd, &L->wgu};
            for (int i = 0; i < 8; i++)
                free_mat(m, mats[i]);
            struct vkr_buf *bufs[] = {&L->attn_norm, &L->ffn_norm, &L->kc, &L->vc};
            for (int i = 0; i < 4; i++)
                vkr_buf_free(m->vk, bufs[i]);
        }
        free_mat(m, &m->embd);
        if (!m->cfg.tied_embeddings)
            free_mat(m, &m->head);
        struct vkr_buf *bufs[] = {&m->out_norm, &m->x, &m->xn, &m->q, &m->kk, &m->vv, &m->att, &m->g,
                                  &m->xf, &m->logits, &m->amax, &m->tokens, &m->pos, &m->parent, &m->sel,
                                  &m->readback, &m->trace, &m->att_part, &m->drawrow, &m->toprow, &m->pen,
                                  &m->cand, &m->moves, &m->stepargs};
        for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
            vkr_buf_free(m->vk, bufs[i]);
        vkr_cmd_free(m->vk, &m->cmd);
        for (uint32_t i = 0; i < m->steps.n; i++)
            vkr_cmd_free(m->vk, &m->steps.e[i].cmd);
        vkr_set_pool_free(m->vk, &m->pool);
        for (int i = 0; i < K_COUNT; i++)
            vkr_kernel_free(m->vk, &m->k[i]);
        for (int i = 0; i < GPU_N_TYPES; i++)
            for (int j = 0; j < 3; j++)
                vkr_kernel_free(m->vk, &m->mm[i][j]);
        for (int i = 0; i < 2; i++)
            vkr_kernel_free(m->vk, &m->mmcm[i]);
        vkr_ctx_free(m->vk);
    }
    for (uint32_t i = 0; i < m->steps.n; i++)
        free(m->steps.e[i].slot_src);
    free(m->steps.e);
    free(m->layers);
    free(m->last_parent);
    free(m->depth);
    free(m->want_rows);
    free(m->rowbuf);
    free(m->chain);
    free(m->argmax_tmp);
    free(m->logit_src);
    free(m->draw_rows);
    free(m->row_tok);
    free(m->seq);
    free(m->seen);
    free(m->prof_phase);
    llm_tok_free(m->tok);
    llm_gguf_free(m->gguf);
    free(m);
}

const struct llm_config *llm_model_config(const struct llm_model *m) { return &m->cfg; }
const struct llm_tok *llm_model_tok(const struct llm_model *m) { return m->tok; }
const struct llm_gguf *llm_model_gguf(const struct llm_model *m) { return m->gguf; }
struct vkr_ctx *llm_model_vk(struct llm_model *m) { return m->vk; }
uint32_t llm_model_n_ctx(const struct llm_model *m) { return m->n_ctx; }
const char *llm_model_desc(const struct llm_model *m) { return m->desc; }
uint64_t llm_model_weight_bytes(const struct llm_model *m) { return m->weight_bytes; }
double llm_model_last_step_gpu_ms(const struct llm_model *m) { return m->last_gpu_ms; }

uint64_t llm_model_reused_steps(const struct llm_model *m) { return m->steps.hits; }
uint64_t llm_model_recorded_steps(const struct llm_model *m) { return m->steps.records; }
uint64_t llm_model_gpu_draws(const struct llm_model *m) { return m->draw.count; }
uint64_t llm_model_gpu_tops(const struct llm_model *m) { return m->draw.tops; }

void llm_model_last_step_host_ms(const struct llm_model *m, double ret[3])
{
    memcpy(ret, m->last_host_ms, sizeof(m->last_host_ms));
}

const char *llm_prof_name(enum llm_prof_phase p)
{
    static const char *const names[LLM_PROF_N] = {
        "commit", "embed", "norm", "qkv", "rope_kv", "attention", "wo", "gate_up", "swiglu", "down", "head",
    };
    return (unsigned)p < LLM_PROF_N ? names[p] : "?";
}

int llm_model_profile(const struct llm_model *m, double ret_ms[LLM_PROF_N])
{
    if (!m->profiling || !m->cmd.queries)
        return -ENODATA;
    memcpy(ret_ms, m->prof_ms, sizeof(m->prof_ms));
    return 0;
}
