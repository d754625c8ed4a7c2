/* lade-mmbench: what one matrix dispatch costs, apart from the model.
 * Times shaders/matmul.comp alone on the 7B shapes (4096x4096, 11008x4096,
 * 4096x11008) for each weight format, each geometry in a list and T rows,
 * as a chain of dispatches with a barrier between each, as a step records
 * them. The weights rotate through a ring of copies larger than any L2, so
 * every dispatch reads its weights from memory. Also times the matrix
 * kernel's diagnostic probes (PROBE 1: no input loads, PROBE 2: no weight
 * loads), which say whether a kernel is bound by its weights, its inputs
 * or neither, and the cost of a dispatch that does almost nothing (the
 * floor every phase of a step pays).
 *
 * GPU clocks drop while the host builds a pipeline, so every geometry is
 * warmed up (about 30 ms of its own dispatches) before the best of 5
 * chains is taken: without that, short timings measured the clocks.
 *
 * usage: lade-mmbench [--json PATH] [--device D] [--configs "L,T,R,U,S[,PROBE] ..."] [--T "1 8 64"]
 *                     [--formats "f16 q4_0"]
 * A config is lanes a workgroup, token tile, rows a subgroup, runs in
 * flight, split-K and the probe (matmul.comp's constants). The last line
 * names the fastest geometry over everything measured (probe 0, split-K
 * 1), as LADE_MM takes it: "best: L,T,R,U". */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llama/gpu_kernels.h"
#include "shaders/shaders.h"
#include "vk/vkr.h"

struct fmt {
    const char *name;
    uint32_t type; /* ggml type, the kernel's WTYPE */
    uint32_t block; /* elements a block */
    uint32_t block_bytes; /* bytes a block */
};

static const struct fmt fmts[] = {
    { "f16", 1, 1, 2 },
    { "q8_0", 8, 32, 34 },
    { "q4_0", 2, 32, 18 },
    { "q4_k", 12, 256, 144 },
};

struct shape {
    const char *name;
    uint32_t rows, cols;
};

static const struct shape shapes[] = {
    { "4096x4096", 4096, 4096 },
    { "11008x4096", 11008, 4096 },
    { "4096x11008", 4096, 11008 },
};

struct cfg {
    uint32_t local, tile, rps, unroll, splitk, probe;
    double total_us; /* over every format, shape and T it ran */
    int runs;
};

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t next_u32(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

/* Random bytes (no buffer of zeros: some GPUs compress those). */
static int fill_random(struct vkr_ctx *vk, struct vkr_buf *b)
{
    const size_t chunk = 32u << 20;
    uint32_t *tmp = malloc(chunk);
    if (!tmp)
        return -ENOMEM;
    int err = 0;
    for (VkDeviceSize off = 0; off < b->size && !err; off += chunk) {
        size_t n = b->size - off < chunk ? (size_t)(b->size - off) : chunk;
        for (size_t i = 0; i < n / 4; i++) {
            /* f16 halves with exponents 0x3400..0x3bff: ordinary values */
            uint32_t r = next_u32();
            tmp[i] = (r & 0x03ff03ffu) | 0x34003400u | ((r >> 4) & 0x04000400u) | (r & 0x80008000u);
        }
        err = vkr_buf_upload(vk, b, off, tmp, n & ~(size_t)3);
    }
    free(tmp);
    return err;
}

struct bench {
    struct vkr_ctx *vk;
    struct vkr_buf w, x, y, sel;
    struct vkr_set_pool pool;
    struct vkr_cmd cmd;
    FILE *jf;
    bool first;
};

/* Microseconds a dispatch of kernel k over `slots` copies of a matrix
 * (sets[i] binds copy i), in one chain of n with a barrier after each. */
static int time_chain(struct bench *b, const struct vkr_kernel *k, VkDescriptorSet *sets,
                      uint32_t slots, const struct pc_matmul *pc, uint32_t gx, uint32_t gy,
                      uint32_t n, double *ret_us)
{
    int err = vkr_cmd_begin(b->vk, &b->cmd);
    if (err)
        return err;
    int t0 = vkr_cmd_timestamp(b->vk, &b->cmd);
    for (uint32_t i = 0; i < n; i++) {
        vkr_cmd_dispatch(&b->cmd, k, sets[i % slots], pc, gx, gy, 1);
        vkr_cmd_barrier(&b->cmd);
    }
    int t1 = vkr_cmd_timestamp(b->vk, &b->cmd);
    double ns;
    err = vkr_cmd_submit_wait(b->vk, &b->cmd);
    if (!err && (t0 < 0 || t1 < 0))
        err = -ENOTSUP;
    if (!err)
        err = vkr_cmd_elapsed_ns(b->vk, &b->cmd, t0, t1, &ns);
    if (!err)
        *ret_us = ns / n / 1e3;
    return err;
}

/* Warm-up (until about warm_ms of GPU time, at most 50 chains), then the
 * best of 5 chains. */
static int time_best(struct bench *b, const struct vkr_kernel *k, VkDescriptorSet *sets,
                     uint32_t slots, const struct pc_matmul *pc, uint32_t gx, uint32_t gy,
                     uint32_t n, double warm_ms, double *ret_us)
{
    double us = 0, spent = 0, best = 1e300;
    int err = 0;
    for (int i = 0; i < 50 && spent < warm_ms * 1e3 && !err; i++) {
        err = time_chain(b, k, sets, slots, pc, gx, gy, n, &us);
        spent += us * n;
    }
    for (int i = 0; i < 5 && !err; i++) {
        err = time_chain(b, k, sets, slots, pc, gx, gy, n, &us);
        best = us < best ? us : best;
    }
    *ret_us = best;
    return err;
}

static int run_one(struct bench *b, const struct fmt *f, const struct shape *s, struct cfg *c,
                   uint32_t T)
{
    struct vkr_ctx *vk = b->vk;
    uint32_t sg = vk->info.subgroup_size;
    if (c->local % sg || (c->local / sg) % c->splitk || s->cols % f->block)
        return 0; /* not a geometry this device or shape can run */
    uint32_t rows_wg = c->local / sg / c->splitk * c->rps;
    uint64_t mat_bytes = (uint64_t)s->rows * (s->cols / f->block) * f->block_bytes;
    uint64_t align = 256, stride = (mat_bytes + align - 1) / align * align;
    uint32_t slots = (uint32_t)(b->w.size / stride);
    if (slots > 64)
        slots = 64;
    if (slots < 2 || mat_bytes > vkr_max_binding(vk))
        return 0;
    struct vkr_kernel k = { 0 };
    struct vkr_kernel_desc d = { "matmul",
                                 lade_spv_matmul,
                                 lade_spv_matmul_bytes,
                                 B_MM_N,
                                 sizeof(struct pc_matmul),
                                 8,
                                 { f->type, c->local, c->tile, rows_wg, c->rps, c->unroll,
                                   c->splitk, c->probe } };
    VkDescriptorSet sets[64];
    vkr_set_pool_free(vk, &b->pool);
    int err = vkr_set_pool_new(vk, 64, B_MM_N * 64, &b->pool);
    err = err ? err : vkr_kernel_new(vk, &d, &k);
    for (uint32_t i = 0; i < slots && !err; i++) {
        struct vkr_binding bd[B_MM_N] = { [B_MM_W] = { &b->w, i * stride, mat_bytes },
                                          [B_MM_X] = { &b->x, 0, 0 },
                                          [B_MM_Y] = { &b->y, 0, 0 } };
        for (int j = B_MM_SEL; j < B_MM_N; j++)
            bd[j] = (struct vkr_binding){ &b->sel, 0, 0 }; /* unused but SEL */
        err = vkr_set_new(vk, &b->pool, &k, bd, B_MM_N, &sets[i]);
    }
    double us = 0;
    if (!err) {
        struct pc_matmul pc = {
            .ncols = s->cols, .nrows = s->rows, .ntok = T, .x_stride = s->cols, .y_stride = s->rows
        };
        uint32_t gx = (T + c->tile - 1) / c->tile, gy = (s->rows + rows_wg - 1) / rows_wg;
        /* chains of two rounds of the ring */
        err = time_best(b, &k, sets, slots, &pc, gx, gy, 2 * slots, 30, &us);
    }
    vkr_kernel_free(vk, &k);
    if (err) {
        fprintf(stderr, "lade-mmbench: %s %s T=%u: %s\n", f->name, s->name, T,
                vk->err[0] ? vk->err : strerror(-err));
        return err;
    }
    double gbs = mat_bytes / (us * 1e3);
    c->total_us += us;
    c->runs++;
    printf("%-5s %-11s %4u  %4u,%2u,%u,%u,%u  %u  %9.2f  %8.1f\n", f->name, s->name, T, c->local,
           c->tile, c->rps, c->unroll, c->splitk, c->probe, us, gbs);
    if (b->jf) {
        fprintf(b->jf,
                "%s{\"format\":\"%s\",\"shape\":\"%s\",\"T\":%u,\"config\":\"%u,%u,%u,%u,%u\",\"probe\":%u,"
                "\"us\":%.3f,\"weight_gbs\":%.1f}",
                b->first ? "" : ",", f->name, s->name, T, c->local, c->tile, c->rps, c->unroll,
                c->splitk, c->probe, us, gbs);
        b->first = false;
    }
    return 0;
}

/* The cost of a dispatch that does almost nothing: 64 one-workgroup
 * matrix dispatches (one workgroup's rows, 256 long), with barriers. */
static int floor_us(struct bench *b, double *ret)
{
    static const struct fmt f16 = { "f16", 1, 1, 2 };
    struct vkr_kernel k = { 0 };
    uint32_t sg = b->vk->info.subgroup_size;
    struct vkr_kernel_desc d = { "matmul",
                                 lade_spv_matmul,
                                 lade_spv_matmul_bytes,
                                 B_MM_N,
                                 sizeof(struct pc_matmul),
                                 8,
                                 { f16.type, 128, 8, 128 / sg, 1, 1, 1, 0 } };
    VkDescriptorSet set;
    vkr_set_pool_free(b->vk, &b->pool);
    int err = vkr_set_pool_new(b->vk, 1, B_MM_N, &b->pool);
    err = err ? err : vkr_kernel_new(b->vk, &d, &k);
    struct vkr_binding bd[B_MM_N] = {
        [B_MM_W] = { &b->w, 0, 1u << 20 }, [B_MM_X] = { &b->x, 0, 0 }, [B_MM_Y] = { &b->y, 0, 0 }
    };
    for (int j = B_MM_SEL; j < B_MM_N; j++)
        bd[j] = (struct vkr_binding){ &b->sel, 0, 0 }; /* unused but SEL */
    err = err ? err : vkr_set_new(b->vk, &b->pool, &k, bd, B_MM_N, &set);
    struct pc_matmul pc = {
        .ncols = 256, .nrows = 128 / sg, .ntok = 1, .x_stride = 256, .y_stride = 256
    };
    err = err ? err : time_best(b, &k, &set, 1, &pc, 1, 1, 64, 30, ret);
    vkr_kernel_free(b->vk, &k);
    return err;
}

static int parse_cfgs(const char *s, struct cfg *out, int max)
{
    int n = 0;
    while (s && *s && n < max) {
        struct cfg c = { 0 };
        int used = 0;
        if (sscanf(s, " %u,%u,%u,%u,%u,%u%n", &c.local, &c.tile, &c.rps, &c.unroll, &c.splitk,
                   &c.probe, &used) < 6) {
            c.probe = 0;
            if (sscanf(s, " %u,%u,%u,%u,%u%n", &c.local, &c.tile, &c.rps, &c.unroll, &c.splitk,
                       &used) < 5)
                return -1;
        }
        if (!c.local || !c.tile || !c.rps || !c.unroll || !c.splitk || c.probe > 2 ||
            c.local > 1024 || c.tile > 64 || c.rps > 8 || c.unroll > 8)
            return -1;
        out[n++] = c;
        s += used;
        while (*s == ' ')
            s++;
    }
    return n;
}

int main(int argc, char **argv)
{
    const char *json = NULL, *dev = NULL;
    const char *cfg_s =
            "128,8,1,1,1 128,8,1,1,1,1 128,8,1,1,1,2 128,8,1,2,1 128,8,1,2,1,1 128,8,1,4,1 "
            "128,8,1,8,1 128,8,2,1,1 128,8,2,2,1 128,8,4,2,1 64,8,1,2,1 64,8,1,4,1 256,8,1,2,1 "
            "256,8,1,4,1 32,8,1,4,1 128,8,1,2,2 128,8,1,4,2";
    const char *t_s = "1", *fmt_s = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--json"))
            json = argv[i + 1];
        else if (!strcmp(argv[i], "--device"))
            dev = argv[i + 1];
        else if (!strcmp(argv[i], "--configs"))
            cfg_s = argv[i + 1];
        else if (!strcmp(argv[i], "--T"))
            t_s = argv[i + 1];
        else if (!strcmp(argv[i], "--formats"))
            fmt_s = argv[i + 1];
        else {
            fprintf(stderr,
                    "usage: lade-mmbench [--json PATH] [--device D] [--configs \"L,T,R,U,S[,PROBE] ...\"] "
                    "[--T \"1 8\"] [--formats \"f16 q4_0\"]\n");
            return 2;
        }
    }
    struct cfg cfgs[64];
    int ncfg = parse_cfgs(cfg_s, cfgs, 64);
    uint32_t Ts[16];
    int nT = 0;
    for (const char *p = t_s; *p && nT < 16;) {
        char *end;
        unsigned long v = strtoul(p, &end, 10);
        if (end == p || v == 0 || v > 512) {
            ncfg = -1;
            break;
        }
        Ts[nT++] = (uint32_t)v;
        p = end;
        while (*p == ' ')
            p++;
    }
    if (ncfg <= 0 || nT == 0) {
        fprintf(stderr, "lade-mmbench: bad --configs or --T\n");
        return 2;
    }
    struct bench b = { 0 };
    b.first = true;
    char err_s[256];
    struct vkr_ctx_opts vo = { .device = dev };
    if (vkr_ctx_new(&vo, &b.vk, err_s, sizeof err_s)) {
        fprintf(stderr, "lade-mmbench: %s\n", err_s);
        return 1;
    }
    struct vkr_ctx *vk = b.vk;
    bool cpu = vk->info.type == VK_PHYSICAL_DEVICE_TYPE_CPU;
    VkDeviceSize ring = cpu ? 256u << 20 : 1u << 30;
    int err = vkr_buf_new(vk, ring, VKR_MEM_DEVICE, &b.w);
    err = err ? err : fill_random(vk, &b.w);
    err = err ? err : vkr_buf_new(vk, 512u * 11008u * 4u, VKR_MEM_DEVICE, &b.x);
    err = err ? err : fill_random(vk, &b.x);
    err = err ? err : vkr_buf_new(vk, 512u * 11008u * 4u, VKR_MEM_DEVICE, &b.y);
    err = err ? err : vkr_buf_new(vk, 512u * 4u, VKR_MEM_DEVICE, &b.sel);
    err = err ? err : vkr_cmd_new(vk, 2, &b.cmd);
    if (err) {
        fprintf(stderr, "lade-mmbench: buffers: %s\n", vk->err[0] ? vk->err : strerror(-err));
        vkr_ctx_free(vk);
        return 1;
    }
    b.jf = json ? fopen(json, "w") : NULL;
    double fl = 0;
    err = floor_us(&b, &fl);
    if (err)
        fprintf(stderr, "lade-mmbench: floor: %s\n", vk->err[0] ? vk->err : strerror(-err));
    printf("device: %s (subgroup %u)\nfloor: %.2f us a dispatch with a barrier (one workgroup)\n",
           vk->info.name, vk->info.subgroup_size, fl);
    printf("fmt   shape          T  lanes,tile,rps,unroll,splitk probe  us/dispatch  weight GB/s\n");
    if (b.jf)
        fprintf(b.jf, "{\"device\":\"%s\",\"floor_us\":%.3f,\"rows\":[", vk->info.name, fl);
    for (size_t fi = 0; fi < sizeof fmts / sizeof fmts[0] && !err; fi++)
        if (!fmt_s || strstr(fmt_s, fmts[fi].name))
            for (size_t si = 0; si < sizeof shapes / sizeof shapes[0] && !err; si++)
                for (int ti = 0; ti < nT && !err; ti++)
                    for (int ci = 0; ci < ncfg && !err; ci++)
                        err = run_one(&b, &fmts[fi], &shapes[si], &cfgs[ci], Ts[ti]);
    /* The fastest geometry over everything it ran (only those that ran
     * every row, so that totals compare). */
    int best = -1, most = 0;
    for (int ci = 0; ci < ncfg; ci++)
        most = cfgs[ci].runs > most ? cfgs[ci].runs : most;
    for (int ci = 0; ci < ncfg && !err; ci++)
        if (cfgs[ci].probe == 0 && cfgs[ci].splitk == 1 && cfgs[ci].runs == most && most > 0 &&
            (best < 0 || cfgs[ci].total_us < cfgs[best].total_us))
            best = ci;
    if (best >= 0)
        printf("best: %u,%u,%u,%u\n", cfgs[best].local, cfgs[best].tile, cfgs[best].rps,
               cfgs[best].unroll);
    if (b.jf) {
        fprintf(b.jf, "]");
        if (best >= 0)
            fprintf(b.jf, ",\"best\":\"%u,%u,%u,%u\"", cfgs[best].local, cfgs[best].tile,
                    cfgs[best].rps, cfgs[best].unroll);
        fprintf(b.jf, "}\n");
        fclose(b.jf);
    }
    vkr_cmd_free(vk, &b.cmd);
    vkr_set_pool_free(vk, &b.pool);
    vkr_buf_free(vk, &b.w);
    vkr_buf_free(vk, &b.x);
    vkr_buf_free(vk, &b.y);
    vkr_buf_free(vk, &b.sel);
    vkr_ctx_free(vk);
    return err ? 1 : 0;
}
