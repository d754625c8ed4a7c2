/* For the test programs that ctest also runs with LADE_COOPMAT=1 (the
 * matrix-unit kernel, matmul_cm.comp): on a device without it that run
 * would repeat the plain one, so it reports "skipped" (exit 77, ctest's
 * SKIP_RETURN_CODE) and says why. Header-only: only the GPU tests use it. */
#ifndef LADE_TESTS_LLAMA_GPU_VARIANT_H
#define LADE_TESTS_LLAMA_GPU_VARIANT_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vk/vkr.h"

/* Whether the test device has the matrix units; says so when not. */
static bool device_has_matrix_units(void)
{
    char err[512];
    struct vkr_ctx *ctx;
    struct vkr_ctx_opts o = { .device = getenv("LADE_DEVICE") };
    if (vkr_ctx_new(&o, &ctx, err, sizeof(err)))
        return false; /* the tests will say what is wrong */
    bool has = ctx->has_coopmat_nv;
    if (!has)
        fprintf(stderr, "device '%s' has no VK_NV_cooperative_matrix f16 shape (matmul_cm.comp)\n",
                ctx->info.name);
    vkr_ctx_free(ctx);
    return has;
}

static bool variant_pointless(void)
{
    const char *cm = getenv("LADE_COOPMAT");
    if (!cm || strcmp(cm, "1") || device_has_matrix_units())
        return false;
    fprintf(stderr, "LADE_COOPMAT=1 would repeat the run without it: skipped\n");
    return true;
}

#endif
