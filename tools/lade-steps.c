/* lade-steps: the cost curve lookahead lives on. For one model on one
 * device: GPU and wall time of a step of T rows (T = 1, 2, 4, ..., 128,
 * lookahead-shaped: short chains under one root), plain greedy decode
 * speed with the weight-read bandwidth it reaches, and prefill speed at
 * 512 tokens. Best of several runs each. Prints a table and one JSON
 * object (--json PATH).
 * --profile: instead, where the GPU time of a step goes, phase by phase
 * (llm_model_profile), for T = 1, 16, 64 and 128 after 64 tokens and for
 * T = 1 and 16 after 1500.
 * --count MODEL.gguf...: instead, for each model, the counting build
 * (llm_model_opts.count): weight bytes the matrix kernels load in a step
 * of T = 1, 2, 8, 64, 128 rows, their ratio to a one-row step's, and the
 * dispatches a step and a layer records. These are counts, the same on
 * every device that picks the same geometry; they check the kernels'
 * structure (docs/kernels.md, "Counting"). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "decoding/dec.h"
#include "llama/gguf.h"
#include "llama/llm.h"
#include "shaders/shaders.h"
#include "tools/tuning-env.h"
#include "vk/vkr.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

struct timing {
    double wall_ms, gpu_ms;
};

static int time_step(struct llm_model *m, struct dec_model *dm, uint32_t T, int reps,
                     struct timing *ret)
{
    struct dec_row rows[128];
    int32_t am[128];
    for (uint32_t i = 0; i < T; i++)
        rows[i] = (struct dec_row){ (int32_t)(3 + i * 7 % (dm->n_vocab - 3)),
                                    i == 0 ? -1 : (int32_t)((i - 1) / 4 * 4), DEC_WANT_ARGMAX, 0 };
    ret->wall_ms = ret->gpu_ms = 1e300;
    for (int r = 0; r < reps; r++) {
        double t0 = now_ms();
        int err = dm->step(dm->ctx, rows, T, am, NULL);
        if (err)
            return err;
        double w = now_ms() - t0, g = llm_model_last_step_gpu_ms(m);
        ret->wall_ms = w < ret->wall_ms ? w : ret->wall_ms;
        ret->gpu_ms = g < ret->gpu_ms ? g : ret->gpu_ms;
    }
    return 0;
}

/* GB/s a plain read kernel (shaders/readbw.comp) reaches over a buffer of
 * 1 GiB (64 MiB on a CPU device, within the binding limit): the device's
 * practical limit, against which the decode figures are read. Best of 5;
 * 0 when the device has no timestamps or the buffer cannot be had. */
static double read_bandwidth(struct vkr_ctx *vk)
{
    VkDeviceSize size = vk->info.type == VK_PHYSICAL_DEVICE_TYPE_CPU ? 64u << 20 : 1u << 30;
    if (size > vkr_max_binding(vk))
        size = vkr_max_binding(vk) & ~(VkDeviceSize)15;
    struct vkr_kernel k = { 0 };
    struct vkr_kernel_desc d = { "readbw", lade_spv_readbw, lade_spv_readbw_bytes, 2, 4, 0, { 0 } };
    struct vkr_buf in = { 0 }, out = { 0 };
    struct vkr_set_pool pool = { 0 };
    struct vkr_cmd c = { 0 };
    VkDescriptorSet set;
    double best = 0;
    if (vkr_kernel_new(vk, &d, &k) || vkr_buf_new(vk, size, VKR_MEM_DEVICE, &in) ||
        vkr_buf_new(vk, 16, VKR_MEM_DEVICE, &out) || vkr_set_pool_new(vk, 1, 2, &pool))
        goto done;
    struct vkr_binding bd[2] = { { &in, 0, 0 }, { &out, 0, 0 } };
    if (vkr_set_new(vk, &pool, &k, bd, 2, &set) || vkr_cmd_new(vk, 2, &c))
        goto done;
    uint32_t n = (uint32_t)(size / 16);
    for (int r = 0; r < 5; r++) {
        if (vkr_cmd_begin(vk, &c))
            break;
        int a = vkr_cmd_timestamp(vk, &c);
        vkr_cmd_dispatch(&c, &k, set, &n, 2048, 1, 1);
        int b = vkr_cmd_timestamp(vk, &c);
        double ns;
        if (vkr_cmd_submit_wait(vk, &c) || vkr_cmd_elapsed_ns(vk, &c, a, b, &ns) || ns <= 0)
            break;
        double gbs = (double)size / ns;
        best = gbs > best ? gbs : best;
    }
done:
    vkr_cmd_free(vk, &c);
    vkr_set_pool_free(vk, &pool);
    vkr_buf_free(vk, &in);
    vkr_buf_free(vk, &out);
    vkr_kernel_free(vk, &k);
    return best;
}

/* One line of the phase table: GPU ms of each phase of a T-row step after
 * `past` tokens (the best of 5 runs by total), printed and added to JSON. */
static int profile_row(struct llm_model *m, struct dec_model *dm, const int32_t *prompt,
                       uint32_t past, uint32_t T, FILE *jf, bool first)
{
    int32_t next;
    dm->rewind(dm->ctx, 0);
    if (dm->prefill(dm->ctx, prompt, past, &next, NULL))
        return 1;
    double best[LLM_PROF_N], ms[LLM_PROF_N], best_total = 1e300;
    struct timing t;
    for (int r = 0; r < 5; r++) {
        if (time_step(m, dm, T, 1, &t) || llm_model_profile(m, ms))
            return 1;
        double total = 0;
        for (int p = 0; p < LLM_PROF_N; p++)
            total += ms[p];
        if (total < best_total) {
            best_total = total;
            memcpy(best, ms, sizeof(ms));
        }
    }
    printf("%5u %4u ", past, T);
    for (int p = 0; p < LLM_PROF_N; p++)
        printf(" %8.3f", best[p]);
    printf("  %8.3f\n", best_total);
    if (jf) {
        fprintf(jf, "%s{\"past\":%u,\"T\":%u,\"total_ms\":%.4f", first ? "" : ",", past, T,
                best_total);
        for (int p = 0; p < LLM_PROF_N; p++)
            fprintf(jf, ",\"%s\":%.4f", llm_prof_name((enum llm_prof_phase)p), best[p]);
        fprintf(jf, "}");
    }
    return 0;
}

static int run_profile(struct llm_model *m, struct dec_model *dm, const int32_t *prompt,
                       const char *json, const char *model, const char *dev)
{
    FILE *jf = json ? fopen(json, "w") : NULL;
    if (jf)
        fprintf(jf,
                "{\"model\":\"%s\",\"device\":\"%s\",\"mm\":\"%s\",\"mm_wide\":\"%s\",\"rows\":[",
                model, dev, getenv("LADE_MM") ? getenv("LADE_MM") : "default",
                getenv("LADE_MM_WIDE") ? getenv("LADE_MM_WIDE") : "default");
    printf("\nGPU ms by phase (timestamps after each barrier; sums over layers)\n past    T ");
    for (int p = 0; p < LLM_PROF_N; p++)
        printf(" %8s", llm_prof_name((enum llm_prof_phase)p));
    printf("  %8s\n", "total");
    static const uint32_t rows[][2] = { { 64, 1 },   { 64, 16 },  { 64, 64 },
                                        { 64, 128 }, { 1500, 1 }, { 1500, 16 } };
    int rc = 0;
    for (size_t i = 0; !rc && i < sizeof(rows) / sizeof(rows[0]); i++)
        if (rows[i][0] < llm_model_n_ctx(m))
            rc = profile_row(m, dm, prompt, rows[i][0], rows[i][1], jf, i == 0);
    if (jf) {
        fprintf(jf, "]}\n");
        fclose(jf);
    }
    return rc;
}

/* --count: one model's counts, printed and added to the JSON array. */
static int count_model(const char *path, const char *device, FILE *jf, bool first)
{
    char err[512];
    struct llm_model *m;
    struct llm_model_opts o = {
        .path = path, .device = device, .n_ctx = 512, .max_rows = 128, .count = true
    };
    if (lade_tuning_from_env(&o.tuning, err, sizeof(err)) ||
        llm_model_load(&o, &m, err, sizeof(err))) {
        fprintf(stderr, "lade-steps: %s\n", err);
        return 1;
    }
    struct dec_model dm;
    llm_model_dec(m, &dm);
    const struct llm_gguf_tensor *tq =
            llm_gguf_find_tensor(llm_model_gguf(m), "blk.0.attn_q.weight");
    const char *fmt = tq ? llm_ggml_type_name(tq->type) : "?";
    int32_t prompt[16], next;
    for (int i = 0; i < 16; i++)
        prompt[i] = i == 0 ? 1 : (int32_t)(3 + (i * 2654435761u) % (dm.n_vocab - 3));
    static const uint32_t Ts[] = { 1, 2, 8, 64, 128 };
    struct llm_counts c[5];
    int n = 0, rc = 0;
    for (; !rc && n < 5 && Ts[n] <= 128; n++) {
        struct timing t;
        dm.rewind(dm.ctx, 0);
        rc = dm.prefill(dm.ctx, prompt, 16, &next, NULL) || llm_model_counts_reset(m) ||
             time_step(m, &dm, Ts[n], 1, &t) || llm_model_counts(m, &c[n]);
    }
    if (rc) {
        fprintf(stderr, "lade-steps: %s: a counted step failed\n", path);
        llm_model_free(m);
        return 1;
    }
    printf("\n%s (%s): matrices %.3f MB\n   T   weight MB loaded  x matrices  x T=1  dispatches  a layer\n",
           path, fmt, c[0].matrix_bytes / 1e6);
    for (int i = 0; i < n; i++)
        printf("%4u  %16.3f  %10.3f  %5.3f  %10u  %7u\n", Ts[i], c[i].weight_bytes / 1e6,
               (double)c[i].weight_bytes / c[i].matrix_bytes,
               (double)c[i].weight_bytes / c[0].weight_bytes, c[i].step_dispatches,
               c[i].layer_dispatches);
    if (jf) {
        fprintf(jf,
                "%s{\"model\":\"%s\",\"format\":\"%s\",\"desc\":\"%s\",\"matrix_bytes\":%llu,\"steps\":[",
                first ? "" : ",", path, fmt, llm_model_desc(m),
                (unsigned long long)c[0].matrix_bytes);
        for (int i = 0; i < n; i++)
            fprintf(jf,
                    "%s{\"T\":%u,\"weight_bytes\":%llu,\"x_matrix_bytes\":%.4f,\"x_one_row\":%.4f,"
                    "\"dispatches\":%u,\"dispatches_per_layer\":%u}",
                    i ? "," : "", Ts[i], (unsigned long long)c[i].weight_bytes,
                    (double)c[i].weight_bytes / c[i].matrix_bytes,
                    (double)c[i].weight_bytes / c[0].weight_bytes, c[i].step_dispatches,
                    c[i].layer_dispatches);
        fprintf(jf, "]}");
    }
    llm_model_free(m);
    return 0;
}

/* lade-steps --count MODEL.gguf... [--device DEV] [--json PATH] */
static int count_main(int argc, char **argv)
{
    const char *device = NULL, *json = NULL;
    for (int i = 2; i + 1 < argc; i++) {
        if (!strcmp(argv[i], "--device"))
            device = argv[++i];
        else if (!strcmp(argv[i], "--json"))
            json = argv[++i];
    }
    FILE *jf = json ? fopen(json, "w") : NULL;
    if (json && !jf) {
        fprintf(stderr, "lade-steps: cannot write '%s'\n", json);
        return 1;
    }
    if (jf)
        fprintf(jf,
                "{\"counts\":true,\"tuning\":{\"mm\":\"%s\",\"mm_wide\":\"%s\",\"mm_one\":\"%s\"},\"models\":[",
                getenv("LADE_MM") ? getenv("LADE_MM") : "default",
                getenv("LADE_MM_WIDE") ? getenv("LADE_MM_WIDE") : "default",
                getenv("LADE_MM_ONE") ? getenv("LADE_MM_ONE") : "default");
    int rc = 0;
    bool first = true;
    for (int i = 2; !rc && i < argc; i++) {
        if (!strcmp(argv[i], "--device") || !strcmp(argv[i], "--json")) {
            i++;
            continue;
        }
        rc = count_model(argv[i], device, jf, first);
        first = false;
    }
    if (jf) {
        fprintf(jf, "]}\n");
        fclose(jf);
    }
    return rc;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "--count"))
        return count_main(argc, argv);
    if (argc < 2) {
        fprintf(stderr,
                "usage: lade-steps MODEL.gguf [--device DEV] [--json PATH] [--tokens N] [--profile 1]\n"
                "       lade-steps --count MODEL.gguf... [--device DEV] [--json PATH]\n");
        return 2;
    }
    const char *device = NULL, *json = NULL;
    uint32_t n_tokens = 128;
    bool profile = false;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--device"))
            device = argv[i + 1];
        else if (!strcmp(argv[i], "--json"))
            json = argv[i + 1];
        else if (!strcmp(argv[i], "--tokens"))
            n_tokens = (uint32_t)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--profile"))
            profile = atoi(argv[i + 1]) != 0;
    }
    char err[512];
    struct llm_model *m;
    double t_load = now_ms();
    struct llm_model_opts o = {
        .path = argv[1], .device = device, .n_ctx = 2048, .max_rows = 512, .profile = profile
    };
    if (lade_tuning_from_env(&o.tuning, err, sizeof(err)) ||
        llm_model_load(&o, &m, err, sizeof(err))) {
        fprintf(stderr, "lade-steps: %s\n", err);
        return 1;
    }
    t_load = now_ms() - t_load;
    struct dec_model dm;
    llm_model_dec(m, &dm);
    const char *dev = llm_model_vk(m)->info.name;
    double gb = llm_model_weight_bytes(m) / 1e9;
    printf("model %s (%s), %.2f GB of weights read per plain step, loaded in %.1f s\ndevice %s\n",
           argv[1], llm_model_desc(m), gb, t_load / 1e3, dev);
    int32_t *prompt = malloc(2048 * sizeof(*prompt)), first;
    for (int i = 0; i < 2048; i++)
        prompt[i] = i == 0 ? 1 : (int32_t)(3 + (i * 2654435761u) % (dm.n_vocab - 3));
    /* Warm-up: one-row steps for 300 ms before anything is timed. A GPU's
     * clocks drop while the host loads the model, and a profile taken
     * right after loading reads several times the steady state
     * (docs/kernels.md, "Measuring"). */
    dm.rewind(dm.ctx, 0);
    if (dm.prefill(dm.ctx, prompt, 64, &first, NULL))
        return 1;
    for (double t0 = now_ms(); now_ms() - t0 < 300;) {
        struct timing w;
        if (time_step(m, &dm, 1, 1, &w))
            return 1;
    }
    if (profile) {
        int rc = run_profile(m, &dm, prompt, json, argv[1], dev);
        free(prompt);
        llm_model_free(m);
        return rc;
    }
    /* prefill 512 tokens */
    double prefill_ms = 1e300;
    for (int r = 0; r < 3; r++) {
        dm.rewind(dm.ctx, 0);
        double t0 = now_ms();
        if (dm.prefill(dm.ctx, prompt, 512, &first, NULL))
            return 1;
        double t = now_ms() - t0;
        prefill_ms = t < prefill_ms ? t : prefill_ms;
    }
    /* step curve after a 64-token prefix */
    dm.rewind(dm.ctx, 64);
    static const uint32_t Ts[] = { 1, 2, 4, 8, 16, 32, 64, 128 };
    struct timing tm[8];
    printf("\n   T   wall ms   GPU ms   x T=1 (GPU)\n");
    for (int i = 0; i < 8; i++) {
        if (time_step(m, &dm, Ts[i], 5, &tm[i]))
            return 1;
        printf("%4u  %8.3f %8.3f   %6.2f\n", Ts[i], tm[i].wall_ms, tm[i].gpu_ms,
               tm[0].gpu_ms > 0 ? tm[i].gpu_ms / tm[0].gpu_ms : 0);
    }
    /* plain greedy decode: n_tokens one-row steps */
    dm.rewind(dm.ctx, 0);
    int32_t next;
    dm.prefill(dm.ctx, prompt, 16, &next, NULL);
    double gpu_sum = 0, host_sum[3] = { 0 }, t0 = now_ms();
    for (uint32_t i = 0; i < n_tokens; i++) {
        struct dec_row r = { next, -1, DEC_WANT_ARGMAX, 0 };
        uint32_t keep = 0;
        if (dm.step(dm.ctx, &r, 1, &next, NULL) || dm.commit(dm.ctx, &keep, 1))
            return 1;
        gpu_sum += llm_model_last_step_gpu_ms(m);
        double h[3];
        llm_model_last_step_host_ms(m, h);
        for (int k = 0; k < 3; k++)
            host_sum[k] += h[k];
    }
    double dec_ms = now_ms() - t0;
    double tps = n_tokens * 1e3 / dec_ms, gpu_ms = gpu_sum / n_tokens;
    double rec_ms = host_sum[0] / n_tokens, wait_ms = host_sum[1] / n_tokens,
           read_ms = host_sum[2] / n_tokens;
    double other_ms = dec_ms / n_tokens - rec_ms - wait_ms - read_ms;
    double bw = gpu_ms > 0 ? gb / (gpu_ms / 1e3) : 0;
    double read_bw = read_bandwidth(llm_model_vk(m));
    double frac = read_bw > 0 ? bw / read_bw : 0;
    printf("\ngreedy decode: %.1f tokens/s (%.3f ms/token wall, %.3f ms GPU), weight reads %.0f GB/s on the GPU clock\n",
           tps, dec_ms / n_tokens, gpu_ms, bw);
    printf("plain read kernel: %.0f GB/s; greedy decode reaches %.1f%% of it\n", read_bw,
           100 * frac);
    printf("host time a token: recording %.3f ms, submit to fence %.3f ms (%.3f beyond the GPU's), results %.3f ms, "
           "outside the step %.3f ms\n",
           rec_ms, wait_ms, wait_ms - gpu_ms, read_ms, other_ms);
    printf("prefill 512 tokens: %.1f ms, %.0f tokens/s\n", prefill_ms, 512e3 / prefill_ms);
    if (json) {
        FILE *f = fopen(json, "w");
        if (f) {
            fprintf(f,
                    "{\"model\":\"%s\",\"device\":\"%s\",\"weight_gb\":%.4f,\"load_s\":%.2f,\"greedy_tokens_per_s\":%.2f,"
                    "\"greedy_ms_per_token\":%.4f,\"greedy_gpu_ms\":%.4f,\"weight_read_gb_per_s\":%.1f,"
                    "\"prefill_512_ms\":%.2f,\"prefill_tokens_per_s\":%.1f,\"read_gb_per_s\":%.1f,"
                    "\"fraction_of_read_bw\":%.4f,\"host_record_ms\":%.4f,\"host_submit_to_fence_ms\":%.4f,"
                    "\"host_results_ms\":%.4f,\"host_outside_step_ms\":%.4f,\"steps\":[",
                    argv[1], dev, gb, t_load / 1e3, tps, dec_ms / n_tokens, gpu_ms, bw, prefill_ms,
                    512e3 / prefill_ms, read_bw, frac, rec_ms, wait_ms, read_ms, other_ms);
            for (int i = 0; i < 8; i++)
                fprintf(f, "%s{\"T\":%u,\"wall_ms\":%.4f,\"gpu_ms\":%.4f}", i ? "," : "", Ts[i],
                        tm[i].wall_ms, tm[i].gpu_ms);
            fprintf(f, "]}\n");
            fclose(f);
        }
    }
    free(prompt);
    llm_model_free(m);
    return 0;
}
