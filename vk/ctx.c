/* The context: chosen device, logical device, compute queue, command pool,
 * memory types and the on-disk pipeline cache. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vk/vkr.h"

static int pick_memory_types(struct vkr_ctx *ctx)
{
    VkPhysicalDeviceMemoryProperties mp;
    vkGetPhysicalDeviceMemoryProperties(ctx->pd, &mp);
    const VkMemoryPropertyFlags DL = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT;
    const VkMemoryPropertyFlags HV = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT;
    const VkMemoryPropertyFlags HC = VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    const VkMemoryPropertyFlags CA = VK_MEMORY_PROPERTY_HOST_CACHED_BIT;
    ctx->mem_device = ctx->mem_upload = ctx->mem_readback = UINT32_MAX;
    for (uint32_t i = 0; i < mp.memoryTypeCount; i++) {
        VkMemoryPropertyFlags f = mp.memoryTypes[i].propertyFlags;
        if ((f & DL) && ctx->mem_device == UINT32_MAX)
            ctx->mem_device = i;
        /* Upload: prefer plain host memory (not device-local BAR, which is
         * small on many GPUs) that is coherent. */
        if ((f & (HV | HC)) == (HV | HC) && (ctx->mem_upload == UINT32_MAX || !(f & DL)))
            if (ctx->mem_upload == UINT32_MAX ||
                (mp.memoryTypes[ctx->mem_upload].propertyFlags & DL))
                ctx->mem_upload = i;
        /* Readback: host-cached makes host reads fast. */
        if ((f & HV) && (ctx->mem_readback == UINT32_MAX ||
                         ((f & CA) && !(mp.memoryTypes[ctx->mem_readback].propertyFlags & CA))))
            ctx->mem_readback = i;
    }
    if (ctx->mem_device == UINT32_MAX) /* some CPU drivers: all host memory */
        ctx->mem_device = ctx->mem_upload;
    if (ctx->mem_device == UINT32_MAX || ctx->mem_upload == UINT32_MAX ||
        ctx->mem_readback == UINT32_MAX) {
        snprintf(ctx->err, sizeof(ctx->err), "device '%.200s' lacks a usable memory type",
                 ctx->info.name);
        return -ENOTSUP;
    }
    ctx->readback_coherent = (mp.memoryTypes[ctx->mem_readback].propertyFlags & HC) != 0;
    return 0;
}

static void load_pipeline_cache(struct vkr_ctx *ctx, const char *path)
{
    void *data = NULL;
    size_t size = 0;
    FILE *f = path ? fopen(path, "rbe") : NULL;
    if (f) {
        /* A cache is an optimisation: a truncated, foreign or corrupt file is
         * ignored (the driver validates the header and UUID itself). */
        if (fseek(f, 0, SEEK_END) == 0) {
            long n = ftell(f);
            if (n > 32 && n < (64L << 20) && fseek(f, 0, SEEK_SET) == 0 &&
                (data = malloc((size_t)n))) {
                size = fread(data, 1, (size_t)n, f);
                if (size != (size_t)n)
                    size = 0;
            }
        }
        fclose(f);
    }
    VkPipelineCacheCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO,
        .initialDataSize = size,
        .pInitialData = size ? data : NULL,
    };
    if (vkCreatePipelineCache(ctx->dev, &ci, NULL, &ctx->pipeline_cache) != VK_SUCCESS) {
        ci.initialDataSize = 0;
        ci.pInitialData = NULL;
        if (vkCreatePipelineCache(ctx->dev, &ci, NULL, &ctx->pipeline_cache) != VK_SUCCESS)
            ctx->pipeline_cache = VK_NULL_HANDLE;
    }
    free(data);
}

static void save_pipeline_cache(struct vkr_ctx *ctx)
{
    size_t size = 0;
    if (!ctx->pipeline_cache || !ctx->pipeline_cache_path ||
        vkGetPipelineCacheData(ctx->dev, ctx->pipeline_cache, &size, NULL) != VK_SUCCESS ||
        size == 0)
        return;
    void *data = malloc(size);
    if (!data)
        return;
    if (vkGetPipelineCacheData(ctx->dev, ctx->pipeline_cache, &size, data) == VK_SUCCESS) {
        /* Write then rename so a crash never leaves half a cache behind. */
        char tmp[4096];
        snprintf(tmp, sizeof(tmp), "%s.tmp", ctx->pipeline_cache_path);
        FILE *f = fopen(tmp, "wbe");
        if (f) {
            bool ok = fwrite(data, 1, size, f) == size;
            ok = fclose(f) == 0 && ok;
            if (ok)
                rename(tmp, ctx->pipeline_cache_path);
            else
                remove(tmp);
        }
    }
    free(data);
}

static int create_device(struct vkr_ctx *ctx)
{
    const struct vkr_device_info *d = &ctx->info;
    float prio = 1.0f;
    VkDeviceQueueCreateInfo q = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
        .queueFamilyIndex = d->compute_queue_family,
        .queueCount = 1,
        .pQueuePriorities = &prio,
    };
    /* Only features the device reported: asking for more fails creation. */
    VkPhysicalDeviceVulkan11Features f11 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES,
        .storageBuffer16BitAccess = d->storage_buffer_16bit,
    };
    VkPhysicalDeviceVulkan12Features f12 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
        .pNext = &f11,
        .shaderFloat16 = d->shader_float16,
        .shaderInt8 = d->shader_int8,
        .storageBuffer8BitAccess = d->storage_buffer_8bit,
        .vulkanMemoryModel = d->coopmat_nv_f16, /* matmul_cm.comp declares it (device_info.c) */
    };
    VkPhysicalDeviceFeatures2 f2 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
        .pNext = &f12,
        .features = { .shaderInt16 = d->shader_int16, .shaderInt64 = d->shader_int64 },
    };
    /* The matrix units (matmul_cm.comp), where the driver has them. */
    VkPhysicalDeviceCooperativeMatrixFeaturesNV cmnv = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV,
        .cooperativeMatrix = VK_TRUE,
    };
    const char *exts[2];
    uint32_t n_exts = 0;
    if (d->coopmat_nv_f16) {
        exts[n_exts++] = VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME;
        cmnv.pNext = f2.pNext;
        f2.pNext = &cmnv;
    }
    /* Packed 8-bit dot products (matmul_q8.comp's OpSDot, tuning idot):
     * core in 1.3, else VK_KHR_shader_integer_dot_product, which
     * device_info.c saw before it reported the feature. */
    VkPhysicalDeviceShaderIntegerDotProductFeatures idot = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES,
        .shaderIntegerDotProduct = VK_TRUE,
    };
    if (d->integer_dot_product) {
        if (VK_API_VERSION_MINOR(d->api_version) < 3 && VK_API_VERSION_MAJOR(d->api_version) == 1)
            exts[n_exts++] = VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME;
        idot.pNext = f2.pNext;
        f2.pNext = &idot;
    }
    VkDeviceCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
        .pNext = &f2,
        .queueCreateInfoCount = 1,
        .pQueueCreateInfos = &q,
        .enabledExtensionCount = n_exts,
        .ppEnabledExtensionNames = exts,
    };
    VkResult r = vkCreateDevice(ctx->pd, &ci, NULL, &ctx->dev);
    if (r != VK_SUCCESS) {
        ctx->dev = VK_NULL_HANDLE;
        return vkr_fail(ctx, r, "vkCreateDevice");
    }
    ctx->queue_family = d->compute_queue_family;
    vkGetDeviceQueue(ctx->dev, ctx->queue_family, 0, &ctx->queue);
    ctx->has_f16 = d->shader_float16;
    ctx->has_int8 = d->shader_int8;
    ctx->has_16bit_storage = d->storage_buffer_16bit;
    ctx->has_coopmat_nv = d->coopmat_nv_f16;
    ctx->has_idot = d->integer_dot_product;
    VkCommandPoolCreateInfo pci = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
        .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
        .queueFamilyIndex = ctx->queue_family,
    };
    r = vkCreateCommandPool(ctx->dev, &pci, NULL, &ctx->cmd_pool);
    if (r != VK_SUCCESS) {
        ctx->cmd_pool = VK_NULL_HANDLE;
        return vkr_fail(ctx, r, "vkCreateCommandPool");
    }
    return 0;
}

static int choose_device(struct vkr_ctx *ctx, const char *want)
{
    struct vkr_device_info *list = NULL;
    uint32_t n = 0;
    int err = vkr_enumerate(ctx->instance, &list, &n);
    if (err) {
        snprintf(ctx->err, sizeof(ctx->err), "failed to enumerate Vulkan devices: %s",
                 strerror(-err));
        return err;
    }
    int pick = vkr_select_device(list, n, want, ctx->select_reason, sizeof(ctx->select_reason));
    if (pick < 0) {
        snprintf(ctx->err, sizeof(ctx->err), "no Vulkan device: %.200s", ctx->select_reason);
        free(list);
        return pick;
    }
    ctx->info = list[pick];
    free(list);
    uint32_t np = 0;
    vkEnumeratePhysicalDevices(ctx->instance, &np, NULL);
    VkPhysicalDevice *pds = calloc(np ? np : 1, sizeof(*pds));
    if (!pds)
        return -ENOMEM;
    vkEnumeratePhysicalDevices(ctx->instance, &np, pds);
    if (ctx->info.index >= np) {
        free(pds);
        snprintf(ctx->err, sizeof(ctx->err), "Vulkan device list changed during start-up");
        return -ENODEV;
    }
    ctx->pd = pds[ctx->info.index];
    free(pds);
    return 0;
}

int vkr_ctx_new(const struct vkr_ctx_opts *opts, struct vkr_ctx **ret, char *reterr, size_t errlen)
{
    struct vkr_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx) {
        snprintf(reterr, errlen, "out of memory");
        return -ENOMEM;
    }
    int err = vkr_instance_new(opts && opts->validation, &ctx->instance, &ctx->messenger, reterr,
                               errlen);
    if (err) {
        free(ctx);
        return err;
    }
    ctx->validation = ctx->messenger != VK_NULL_HANDLE;
    err = choose_device(ctx, opts ? opts->device : NULL);
    if (!err)
        err = pick_memory_types(ctx);
    if (!err)
        err = create_device(ctx);
    if (err) {
        snprintf(reterr, errlen, "%s", ctx->err);
        vkr_ctx_free(ctx);
        return err;
    }
    if (opts && opts->pipeline_cache_path)
        ctx->pipeline_cache_path = strdup(opts->pipeline_cache_path);
    load_pipeline_cache(ctx, ctx->pipeline_cache_path);
    *ret = ctx;
    return 0;
}

void vkr_ctx_free(struct vkr_ctx *ctx)
{
    if (!ctx)
        return;
    if (ctx->dev) {
        vkr_upload_end(ctx); /* a batch left open by a failed load */
        vkDeviceWaitIdle(ctx->dev);
        save_pipeline_cache(ctx);
        if (ctx->pipeline_cache)
            vkDestroyPipelineCache(ctx->dev, ctx->pipeline_cache, NULL);
        if (ctx->cmd_pool)
            vkDestroyCommandPool(ctx->dev, ctx->cmd_pool, NULL);
        vkDestroyDevice(ctx->dev, NULL);
    }
    vkr_instance_free(ctx->instance, ctx->messenger);
    free(ctx->pipeline_cache_path);
    free(ctx);
}
