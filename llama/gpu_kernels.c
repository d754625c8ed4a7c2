/* The GPU model's kernels: the table of shaders with their bindings and
 * push blocks (gpu_kernels.h), their specialization constants for this
 * device and tuning, and the matrix pipelines per weight format. */
#include "llama/gpu_kernels.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "shaders/shaders.h"

/* Weight formats the matrix kernels decode, indexed like gpu_kernels.mm. */
static const uint32_t gpu_types[GPU_N_TYPES] = {
    LLM_GGML_F32,  LLM_GGML_F16,  LLM_GGML_BF16, LLM_GGML_Q8_0, LLM_GGML_Q4_0, LLM_GGML_Q4_1,
    LLM_GGML_Q5_0, LLM_GGML_Q5_1, LLM_GGML_Q4_K, LLM_GGML_Q5_K, LLM_GGML_Q6_K,
};

int gpu_type_slot(uint32_t type)
{
    for (unsigned i = 0; i < GPU_N_TYPES; i++)
        if (gpu_types[i] == type)
            return (int)i;
    return -1;
}

/* The table: each kernel's shader, bindings and push block. Specialization
 * constants depend on the device and the model (kernel_spec). */
struct kernel_entry {
    const char *name;
    const uint32_t *spirv;
    const size_t *spirv_bytes;
    uint32_t n_bindings;
    uint32_t push_bytes;
};

#define SPIRV(s) lade_spv_##s, &lade_spv_##s##_bytes

static const struct kernel_entry kernel_table[K_COUNT] = {
    [K_EMBED] = { "embed", SPIRV(embed), B_EMBED_N, sizeof(struct pc_embed) },
    [K_RMSNORM] = { "rmsnorm", SPIRV(rmsnorm), B_NORM_N, sizeof(struct pc_norm) },
    [K_ROPE_KV] = { "rope_kv", SPIRV(rope_kv), B_ROPE_N, sizeof(struct pc_rope) },
    [K_ATTENTION] = { "attention", SPIRV(attention), B_ATT_N, sizeof(struct pc_att) },
    [K_ATTENTION_ONE] = { "attention", SPIRV(attention), B_ATT_N, sizeof(struct pc_att) },
    [K_ATTN_MERGE] = { "attn_merge", SPIRV(attn_merge), B_MERGE_N, sizeof(struct pc_att_merge) },
    [K_SWIGLU] = { "swiglu", SPIRV(swiglu), B_SWIGLU_N, sizeof(struct pc_swiglu) },
    [K_ARGMAX] = { "argmax", SPIRV(argmax), B_ARGMAX_N, sizeof(struct pc_argmax) },
    [K_DRAW] = { "draw", SPIRV(draw), B_DRAW_N, sizeof(struct pc_draw) },
    [K_PENALTY] = { "penalty", SPIRV(penalty), B_PEN_N, sizeof(struct pc_penalty) },
    [K_TOPK] = { "topk", SPIRV(topk), B_TOPK_N, sizeof(struct pc_topk) },
    [K_KV_COMMIT] = { "kv_commit", SPIRV(kv_commit), B_COMMIT_N, sizeof(struct pc_kv_commit) },
    [K_BIAS] = { "bias", SPIRV(bias), B_BIAS_N, sizeof(struct pc_bias) },
    [K_QK_NORM] = { "qk_norm", SPIRV(qk_norm), B_QKN_N, sizeof(struct pc_qk_norm) },
};

/* Attention's workgroup: att_subgroups subgroups at the default subgroup
 * size; a lane holds ceil(head_dim / 2 / smallest subgroup) pairs of dims. */
struct att_shape {
    uint32_t local, nj, nsg, group;
};

static struct att_shape att_shape(const struct gpu_kernels *ks, const struct vkr_device_info *di,
                                  const struct llm_config *c, const struct llm_tuning *t)
{
    uint32_t min_sg = di->min_subgroup_size ? di->min_subgroup_size : di->subgroup_size;
    struct att_shape a = { .local = t->att_subgroups * di->subgroup_size };
    a.nj = (ks->hd_max / 2 + min_sg - 1) / min_sg;
    a.nsg = a.local / min_sg;
    a.group = c->n_heads / c->n_kv_heads;
    return a;
}

/* Specialization constants of kernel `id` (constant_id i = spec[i]);
 * returns how many. Constant 0 is each shader's workgroup size where it
 * has one set here, else unused. Reductions are 64 lanes wide on CPU
 * drivers, 256 on GPUs: a norm's reduction tree depends on it, but only
 * per device, never per T. */
static uint32_t kernel_spec(const struct gpu_kernels *ks, enum gpu_kernel_id id,
                            const struct att_shape *a, const struct gpu_kernels_shape *sh, bool cpu,
                            uint32_t spec[VKR_MAX_SPEC])
{
    uint32_t lanes = cpu ? 64 : 256, max_rows = sh->max_rows;
    switch (id) {
    case K_EMBED: spec[0] = sh->embd_type; return 1;
    case K_ROPE_KV:
        spec[0] = ks->freq_off;
        spec[1] = sh->rope_neox;
        return 2;
    case K_QK_NORM: /* heads are at most 256 wide: 64 lanes on every device */
        spec[0] = 0;
        spec[1] = 64;
        return 2;
    case K_RMSNORM:
    case K_ARGMAX:
    case K_TOPK:
        spec[0] = 0;
        spec[1] = lanes;
        return 2;
    case K_ATTENTION:
    case K_ATTENTION_ONE: {
        /* Rows a workgroup: one-row steps (plain decode) take groups of
         * one, so no lane computes scores for rows a group lacks; the same
         * bits either way (attention.comp). Positions a subgroup loads at
         * once: 4 rows' worth whatever the rows (registers). */
        uint32_t rows = id == K_ATTENTION_ONE ? 1 : ks->att_rows;
        uint32_t par = rows >= 4 ? 1 : 4 / rows;
        const uint32_t s[10] = { 0,     a->local, ks->hd_max,    max_rows, a->group,
                                 a->nj, a->nsg,   ks->att_split, par,      rows };
        memcpy(spec, s, sizeof(s));
        return 10;
    }
    case K_ATTN_MERGE:
        spec[0] = spec[1] = 0;
        spec[2] = ks->hd_max;
        return 3;
    case K_DRAW:
        spec[0] = 0;
        spec[1] = lanes;
        spec[2] = GPU_DRAW_MAX_BLOCKS;
        return 3;
    case K_PENALTY:
        spec[0] = 0;
        spec[1] = 64;
        return 2;
    default: return 0;
    }
}

/* Shared memory of matmul_cm.comp: MODE 0 (nsg subgroups, 16 tokens) or
 * MODE 1 (4 subgroups, 32 tokens); see the shader. */
static uint32_t cm_shared(const struct gpu_kernels *ks, uint32_t mode)
{
    uint32_t tile = 16 * (ks->cm_kc + 8) * 2;
    return mode == 0 ? ks->cm_nsg * (3 * tile + 1024) : 8 * tile + 8 * 1024;
}

/* Whether f16 products run on the matrix units (matmul_cm.comp): asked
 * for (tuning coopmat), and possible where the device has
 * VK_NV_cooperative_matrix's 16x16x16 f16 shape, 32-lane subgroups, f16
 * arithmetic and storage, and the model's layers are f16 (elsewhere the
 * setting changes nothing; the model's description says "matrix units"
 * when they run). Decided once at load, since a result's bits depend on
 * the kernel. */
static int cm_plan(struct gpu_kernels *ks, struct vkr_ctx *vk, const struct llm_tuning *t,
                   bool f16_layers, char *reterr, size_t errlen)
{
    const struct vkr_device_info *di = &vk->info;
    bool can = vk->has_coopmat_nv && di->shader_float16 && di->storage_buffer_16bit &&
               di->subgroup_size == 32 &&
               (di->min_subgroup_size == 0 || di->min_subgroup_size == di->max_subgroup_size);
    ks->cm = can && f16_layers && t->coopmat == LLM_SWITCH_ON && !ks->count;
    ks->cm_nsg = t->cm_nsg;
    ks->cm_kc = t->cm_kc;
    uint32_t need = cm_shared(ks, 0) > cm_shared(ks, 1) ? cm_shared(ks, 0) : cm_shared(ks, 1);
    if (ks->cm && need > di->max_compute_shared_memory) {
        snprintf(reterr, errlen,
                 "tuning cm=%u,%u needs %u bytes of workgroup memory, device '%.200s' has %u",
                 ks->cm_nsg, ks->cm_kc, need, di->name, di->max_compute_shared_memory);
        return -EINVAL;
    }
    return 0;
}

/* The matrix geometries as this device runs them. */
static int mm_plan(struct gpu_kernels *ks, const struct vkr_device_info *di,
                   const struct llm_tuning *t, bool cpu, char *reterr, size_t errlen)
{
    uint32_t need = VK_SUBGROUP_FEATURE_BASIC_BIT | VK_SUBGROUP_FEATURE_ARITHMETIC_BIT;
    if ((di->subgroup_ops & need) != need || di->subgroup_size == 0) {
        snprintf(reterr, errlen,
                 "device '%.200s' lacks subgroup arithmetic in compute shaders (subgroup size %u)",
                 di->name, di->subgroup_size);
        return -ENOTSUP;
    }
    ks->mm_splitk = t->mm_splitk;
    const struct llm_mm_geom *tg[GEOM_N] = { &t->mm, &t->mm_wide, &t->mm_one };
    for (int i = 0; i < GEOM_N; i++) {
        struct gpu_mm_geom *g = &ks->mmg[i];
        *g = (struct gpu_mm_geom){ tg[i]->local, tg[i]->tile, tg[i]->rps, tg[i]->unroll, 0, 0, 0 };
        /* Staging inputs in shared memory pays off only where a workgroup
         * reads few tokens: decode and one-token steps. */
        g->xsh = i == GEOM_WIDE ? 0 : t->mm_xsh;
        /* CPU drivers unroll 8 tokens a pass: a 64-token tile then costs
         * a 12-token step what a 16-token tile did (kernelc-22m on
         * lavapipe); GPUs the whole tile, acc[] in registers. */
        g->sub = cpu ? 8 : 0;
        if (di->subgroup_size > g->local || g->local % di->subgroup_size ||
            (g->local / di->subgroup_size) % ks->mm_splitk) {
            snprintf(
                    reterr, errlen,
                    "matrix kernel geometry: %u lanes a workgroup is not a whole number of %u-lane "
                    "subgroups, %u of them a row (tuning mm, mm_wide, mm_one, mm_splitk)",
                    g->local, di->subgroup_size, ks->mm_splitk);
            return -EINVAL;
        }
        /* Rows a workgroup covers at the default subgroup size. Drivers
         * that pick another size per pipeline (Intel, AMD) still cover
         * exactly these rows: the shader strides by its own subgroup count. */
        /* CPU drivers: a subgroup takes 4 blocks of rows in turn, but
         * for tiles over 32 tokens, whose epilogue sums would not fit. */
        uint32_t turns = cpu && g->tile <= 32 ? 4 : 1;
        g->rows_wg = g->local / di->subgroup_size / ks->mm_splitk * g->rps * turns;
        /* matmul.comp's shared memory: the epilogue's sums, the folded
         * norm's scales, SPLITK's partial sums, the staged inputs */
        uint64_t shared = 4ull * 2 * g->rows_wg * g->tile + 4ull * g->tile +
                          4ull * (ks->mm_splitk > 1 ? g->local / 4 * g->rps * g->tile : 1) +
                          4ull * (g->xsh > 4 ? g->xsh : 4);
        if (shared > di->max_compute_shared_memory) {
            snprintf(reterr, errlen,
                     "matrix kernel geometry %u,%u,%u,%u needs %llu bytes of workgroup memory, "
                     "device '%.200s' has %u (tuning mm, mm_wide, mm_one, mm_xsh)",
                     g->local, g->tile, g->rps, g->unroll, (unsigned long long)shared, di->name,
                     di->max_compute_shared_memory);
            return -EINVAL;
        }
    }
    /* Every wide step takes the wide geometry, whose 64-token tile reads
     * each weight once for up to 64 rows (issue #22). (GPUs kept the
     * decode geometry for a wide step over a small matrix while the wide
     * one had 8-token tiles: its workgroups covered more rows.) */
    ks->mm_wide_min = 0;
    return 0;
}

/* Attention: splits grow past att_split when the context would need
 * more than 32; the workgroup memory must hold a row's states. */
static int att_plan(struct gpu_kernels *ks, const struct vkr_device_info *di,
                    const struct llm_config *c, const struct llm_tuning *t, uint32_t n_ctx,
                    uint32_t max_rows, char *reterr, size_t errlen)
{
    ks->hd_max = c->head_dim;
    ks->att_split = t->att_split;
    uint32_t keys = n_ctx + max_rows;
    while ((keys + ks->att_split - 1) / ks->att_split > 32)
        ks->att_split *= 2;
    ks->att_max_split = (keys + ks->att_split - 1) / ks->att_split;
    struct att_shape a = att_shape(ks, di, c, t);
    /* Rows a workgroup: 4 where the query heads of a KV head allow (their
     * states are registers: rows x heads at most 8), fewer where the
     * workgroup memory (each row's queries and its subgroups' states)
     * would not hold them. */
    ks->att_rows = a.group >= 8 ? 1 : 8 / a.group < 4 ? 8 / a.group : 4;
    uint64_t shared;
    for (;;) {
        uint64_t r = ks->att_rows;
        shared = 4ull * r * (a.group * ks->hd_max * (1 + a.nsg) + 2 * a.nsg * a.group);
        if (shared <= di->max_compute_shared_memory || r == 1)
            break;
        ks->att_rows /= 2;
    }
    if (shared > di->max_compute_shared_memory) {
        snprintf(reterr, errlen,
                 "attention needs %llu bytes of workgroup memory, device '%.200s' has %u",
                 (unsigned long long)shared, di->name, di->max_compute_shared_memory);
        return -ENOTSUP;
    }
    return 0;
}

int gpu_kernels_build(struct gpu_kernels *ks, struct vkr_ctx *vk,
                      const struct gpu_kernels_shape *sh, const struct llm_tuning *t, char *reterr,
                      size_t errlen)
{
    const struct vkr_device_info *di = &vk->info;
    bool cpu = di->type == VK_PHYSICAL_DEVICE_TYPE_CPU;
    const struct llm_config *c = sh->cfg;
    ks->count = sh->count;
    ks->idot = t->idot == LLM_SWITCH_ON;
    int err = mm_plan(ks, di, t, cpu, reterr, errlen);
    err = err ? err : cm_plan(ks, vk, t, sh->f16_layers, reterr, errlen);
    err = err ? err : att_plan(ks, di, c, t, sh->n_ctx, sh->max_rows, reterr, errlen);
    if (err)
        return err;
    ks->freq_off = sh->max_rows;
    struct att_shape a = att_shape(ks, di, c, t);
    for (int i = 0; i < K_COUNT; i++) {
        /* with groups of one row anyway, K_ATTENTION is that kernel */
        if (i == K_ATTENTION_ONE && ks->att_rows == 1)
            continue;
        const struct kernel_entry *e = &kernel_table[i];
        struct vkr_kernel_desc d = { e->name,       e->spirv,      *e->spirv_bytes,
                                     e->n_bindings, e->push_bytes, 0,
                                     { 0 } };
        d.n_spec = kernel_spec(ks, (enum gpu_kernel_id)i, &a, sh, cpu, d.spec);
        err = vkr_kernel_new(vk, &d, &ks->k[i]);
        if (err) {
            snprintf(reterr, errlen, "%s", vk->err);
            return err;
        }
    }
    return 0;
}

void gpu_spec_tail(struct vkr_kernel_desc *d, const struct gpu_mm_tail *tail)
{
    if (!tail)
        return;
    /* constant_id 13-15 (11 and 12 are matmul_q8.comp's, unused in matmul.comp) */
    d->n_spec = 16;
    d->spec[13] = tail->row;
    d->spec[14] = tail->type;
    d->spec[15] = tail->word;
}

/* matmul.comp (or its counting variant) for weights of `type` in
 * geometry g; tail: the rows in a second format, or NULL. */
static int mm_kernel(const struct gpu_kernels *ks, struct vkr_ctx *vk, uint32_t type,
                     const struct gpu_mm_tail *tail, const struct gpu_mm_geom *g,
                     struct vkr_kernel *ret)
{
    struct vkr_kernel_desc d = { ks->count ? "matmul_count" : "matmul",
                                 ks->count ? lade_spv_matmul_count : lade_spv_matmul,
                                 ks->count ? lade_spv_matmul_count_bytes : lade_spv_matmul_bytes,
                                 B_MM_N + ks->count,
                                 sizeof(struct pc_matmul),
                                 11,
                                 { type, g->local, g->tile, g->rows_wg, g->rps, g->unroll,
                                   ks->mm_splitk, 0, g->xsh, ks->freq_off, g->sub } };
    gpu_spec_tail(&d, tail);
    return vkr_kernel_new(vk, &d, ret);
}

int gpu_kernels_matmul(struct gpu_kernels *ks, struct vkr_ctx *vk, uint32_t type,
                       const struct vkr_kernel *ret[GEOM_N])
{
    int slot = gpu_type_slot(type);
    if (slot < 0)
        return -ENOTSUP;
    for (int i = 0; i < GEOM_N; i++) {
        struct vkr_kernel *k = &ks->mm[slot][i];
        const struct gpu_mm_geom *g = &ks->mmg[i];
        if (!k->pipeline && ks->idot && gpu_idot_type(type)) {
            int err = gpu_idot_kernel(ks, vk, type, NULL, g, k);
            if (err)
                return err;
        } else if (!k->pipeline) {
            int err = mm_kernel(ks, vk, type, NULL, g, k);
            if (err)
                return err;
        }
        ret[i] = k;
    }
    /* matmul_cm.comp: MODE 0 for steps of up to 16 tokens (nsg subgroups
     * a workgroup, 16 rows), MODE 1 for wider ones (4 subgroups, 64 rows,
     * 32 tokens); the same sums either way. */
    for (uint32_t i = 0; ks->cm && type == LLM_GGML_F16 && i < 2; i++) {
        if (ks->mmcm[i].pipeline)
            continue;
        struct vkr_kernel_desc d = { "matmul_cm",
                                     lade_spv_matmul_cm,
                                     lade_spv_matmul_cm_bytes,
                                     B_MM_N,
                                     sizeof(struct pc_matmul),
                                     6,
                                     { 0, i ? 128 : 32 * ks->cm_nsg, i ? 2 : 1, ks->cm_nsg,
                                       ks->cm_kc, i } };
        int err = vkr_kernel_new(vk, &d, &ks->mmcm[i]);
        if (err)
            return err;
    }
    return 0;
}

int gpu_kernels_matmul_float(struct gpu_kernels *ks, struct vkr_ctx *vk, uint32_t type,
                             const struct vkr_kernel *ret[GEOM_N])
{
    int slot = gpu_type_slot(type);
    if (slot < 0)
        return -ENOTSUP;
    if (!ks->idot || !gpu_idot_type(type))
        return gpu_kernels_matmul(ks, vk, type, ret);
    for (int i = 0; i < GEOM_N; i++) {
        struct vkr_kernel *k = &ks->mmf[slot][i];
        int err = k->pipeline ? 0 : mm_kernel(ks, vk, type, NULL, &ks->mmg[i], k);
        if (err)
            return err;
        ret[i] = k;
    }
    return 0;
}

int gpu_kernels_matmul_mixed(struct gpu_kernels *ks, struct vkr_ctx *vk, uint32_t type,
                             const struct gpu_mm_tail *tail, const struct vkr_kernel *ret[GEOM_N])
{
    /* On the integer path both formats or neither: one kernel cannot mix
     * its arithmetic with matmul.comp's, and stacking must not change a
     * row's result. */
    bool idot = ks->idot && gpu_idot_type(type);
    if (gpu_type_slot(type) < 0 || gpu_type_slot(tail->type) < 0 || tail->row == 0 ||
        (ks->idot && idot != gpu_idot_type(tail->type)))
        return -ENOTSUP;
    uint32_t s = 0;
    while (s < ks->n_mixed &&
           !(ks->mixed[s].type == type && ks->mixed[s].tail.row == tail->row &&
             ks->mixed[s].tail.type == tail->type && ks->mixed[s].tail.word == tail->word))
        s++;
    if (s == GPU_N_MIXED)
        return -ENOSPC;
    if (s == ks->n_mixed) {
        for (int i = 0; i < GEOM_N; i++) {
            struct vkr_kernel *k = &ks->mixed[s].k[i];
            int err = idot ? gpu_idot_kernel(ks, vk, type, tail, &ks->mmg[i], k) :
                             mm_kernel(ks, vk, type, tail, &ks->mmg[i], k);
            if (err) {
                for (int j = 0; j < i; j++)
                    vkr_kernel_free(vk, &ks->mixed[s].k[j]);
                return err;
            }
        }
        ks->mixed[s].type = type;
        ks->mixed[s].tail = *tail;
        ks->n_mixed++;
    }
    for (int i = 0; i < GEOM_N; i++)
        ret[i] = &ks->mixed[s].k[i];
    return 0;
}

void gpu_kernels_free(struct gpu_kernels *ks, struct vkr_ctx *vk)
{
    for (int i = 0; i < K_COUNT; i++)
        vkr_kernel_free(vk, &ks->k[i]);
    for (int i = 0; i < GPU_N_TYPES; i++)
        for (int j = 0; j < GEOM_N; j++) {
            vkr_kernel_free(vk, &ks->mm[i][j]);
            vkr_kernel_free(vk, &ks->mmf[i][j]);
        }
    for (int i = 0; i < 2; i++)
        vkr_kernel_free(vk, &ks->mmcm[i]);
    for (uint32_t i = 0; i < ks->n_mixed; i++)
        for (int j = 0; j < GEOM_N; j++)
            vkr_kernel_free(vk, &ks->mixed[i].k[j]);
}
