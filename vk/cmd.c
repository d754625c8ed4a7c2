/* Command buffers: one submit and one fence per step; a recorded step may
 * be submitted again. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "vk/vkr.h"

int vkr_cmd_new(struct vkr_ctx *ctx, uint32_t max_timestamps, struct vkr_cmd *ret)
{
    memset(ret, 0, sizeof(*ret));
    VkCommandBufferAllocateInfo ai = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
        .commandPool = ctx->cmd_pool,
        .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
        .commandBufferCount = 1,
    };
    VkResult r = vkAllocateCommandBuffers(ctx->dev, &ai, &ret->cb);
    if (r != VK_SUCCESS) {
        ret->cb = VK_NULL_HANDLE;
        return vkr_fail(ctx, r, "vkAllocateCommandBuffers");
    }
    VkFenceCreateInfo fi = { .sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO };
    r = vkCreateFence(ctx->dev, &fi, NULL, &ret->fence);
    if (r != VK_SUCCESS) {
        ret->fence = VK_NULL_HANDLE;
        int err = vkr_fail(ctx, r, "vkCreateFence");
        vkr_cmd_free(ctx, ret);
        return err;
    }
    if (max_timestamps && ctx->info.has_timestamps) {
        VkQueryPoolCreateInfo qi = {
            .sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
            .queryType = VK_QUERY_TYPE_TIMESTAMP,
            .queryCount = max_timestamps,
        };
        r = vkCreateQueryPool(ctx->dev, &qi, NULL, &ret->queries);
        if (r != VK_SUCCESS) {
            ret->queries = VK_NULL_HANDLE;
            int err = vkr_fail(ctx, r, "vkCreateQueryPool");
            vkr_cmd_free(ctx, ret);
            return err;
        }
        ret->n_queries_cap = max_timestamps;
    }
    return 0;
}

void vkr_cmd_free(struct vkr_ctx *ctx, struct vkr_cmd *c)
{
    if (!c || !ctx->dev)
        return;
    if (c->queries)
        vkDestroyQueryPool(ctx->dev, c->queries, NULL);
    if (c->fence)
        vkDestroyFence(ctx->dev, c->fence, NULL);
    if (c->cb)
        vkFreeCommandBuffers(ctx->dev, ctx->cmd_pool, 1, &c->cb);
    memset(c, 0, sizeof(*c));
}

int vkr_cmd_begin(struct vkr_ctx *ctx, struct vkr_cmd *c)
{
    /* Not one-time-submit: a recorded step is submitted again (the step
     * cache in llama/). */
    VkCommandBufferBeginInfo bi = { .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO };
    VkResult r = vkBeginCommandBuffer(c->cb, &bi);
    if (r != VK_SUCCESS)
        return vkr_fail(ctx, r, "vkBeginCommandBuffer");
    c->recording = true;
    c->n_queries_used = 0;
    c->n_dispatch = 0;
    if (c->queries)
        vkCmdResetQueryPool(c->cb, c->queries, 0, c->n_queries_cap);
    return 0;
}

/* A dispatch's pipeline, set and push constants. */
static void bind(struct vkr_cmd *c, const struct vkr_kernel *k, VkDescriptorSet set,
                 const void *push)
{
    vkCmdBindPipeline(c->cb, VK_PIPELINE_BIND_POINT_COMPUTE, k->pipeline);
    vkCmdBindDescriptorSets(c->cb, VK_PIPELINE_BIND_POINT_COMPUTE, k->layout, 0, 1, &set, 0, NULL);
    if (k->push_bytes)
        vkCmdPushConstants(c->cb, k->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, k->push_bytes, push);
}

void vkr_cmd_dispatch(struct vkr_cmd *c, const struct vkr_kernel *k, VkDescriptorSet set,
                      const void *push, uint32_t gx, uint32_t gy, uint32_t gz)
{
    bind(c, k, set, push);
    vkCmdDispatch(c->cb, gx, gy, gz);
    c->n_dispatch++;
}

void vkr_cmd_dispatch_indirect(struct vkr_cmd *c, const struct vkr_kernel *k, VkDescriptorSet set,
                               const void *push, const struct vkr_buf *args, VkDeviceSize offset)
{
    bind(c, k, set, push);
    vkCmdDispatchIndirect(c->cb, args->buf, offset);
    c->n_dispatch++;
}

void vkr_cmd_barrier(struct vkr_cmd *c)
{
    VkMemoryBarrier mb = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
        .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                         VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
    };
    VkPipelineStageFlags st = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
    vkCmdPipelineBarrier(c->cb, st, st, 0, 1, &mb, 0, NULL, 0, NULL);
}

void vkr_cmd_copy(struct vkr_cmd *c, const struct vkr_buf *src, const struct vkr_buf *dst,
                  const VkBufferCopy *regions, uint32_t n)
{
    if (n)
        vkCmdCopyBuffer(c->cb, src->buf, dst->buf, n, regions);
}

int vkr_cmd_timestamp(struct vkr_ctx *ctx, struct vkr_cmd *c)
{
    (void)ctx;
    if (!c->queries || c->n_queries_used >= c->n_queries_cap)
        return -1;
    vkCmdWriteTimestamp(c->cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, c->queries, c->n_queries_used);
    return (int)c->n_queries_used++;
}

int vkr_cmd_submit_wait(struct vkr_ctx *ctx, struct vkr_cmd *c)
{
    int err = vkr_cmd_submit(ctx, c);
    return err ? err : vkr_cmd_wait(ctx, c);
}

int vkr_cmd_end(struct vkr_ctx *ctx, struct vkr_cmd *c)
{
    if (!c->recording)
        return 0;
    VkResult r = vkEndCommandBuffer(c->cb);
    c->recording = false;
    return r == VK_SUCCESS ? 0 : vkr_fail(ctx, r, "vkEndCommandBuffer");
}

int vkr_cmd_submit(struct vkr_ctx *ctx, struct vkr_cmd *c)
{
    int err = vkr_cmd_end(ctx, c);
    if (err)
        return err;
    VkResult r;
    VkSubmitInfo si = {
        .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
        .commandBufferCount = 1,
        .pCommandBuffers = &c->cb,
    };
    r = vkQueueSubmit(ctx->queue, 1, &si, c->fence);
    return r == VK_SUCCESS ? 0 : vkr_fail(ctx, r, "vkQueueSubmit");
}

int vkr_cmd_wait(struct vkr_ctx *ctx, struct vkr_cmd *c)
{
    VkResult r;
    /* A decode step on a GPU takes a few milliseconds, and a sleeping wait
     * adds the driver's wake-up latency to every step: poll for up to
     * 20 ms of wall time before blocking. On a CPU driver the poller would
     * take a core from the threads doing the work: poll briefly only. */
    bool cpu = ctx->info.type == VK_PHYSICAL_DEVICE_TYPE_CPU;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned i = 0;; i++) {
        r = vkGetFenceStatus(ctx->dev, c->fence);
        if (r != VK_NOT_READY || (cpu && i >= 2000))
            break;
        if ((i & 63u) == 63u) {
            clock_gettime(CLOCK_MONOTONIC, &t);
            if ((t.tv_sec - t0.tv_sec) * 1000000000LL + (t.tv_nsec - t0.tv_nsec) > 20000000LL)
                break;
        }
    }
    if (r == VK_NOT_READY)
        r = vkWaitForFences(ctx->dev, 1, &c->fence, VK_TRUE, UINT64_MAX);
    if (r != VK_SUCCESS)
        return vkr_fail(ctx, r, "waiting for the step's fence");
    r = vkResetFences(ctx->dev, 1, &c->fence);
    return r == VK_SUCCESS ? 0 : vkr_fail(ctx, r, "vkResetFences");
}

int vkr_cmd_elapsed_ns(struct vkr_ctx *ctx, struct vkr_cmd *c, int a, int b, double *ret_ns)
{
    if (!c->queries || a < 0 || b < 0 || (uint32_t)a >= c->n_queries_used ||
        (uint32_t)b >= c->n_queries_used)
        return -ENODATA;
    uint64_t t[2];
    VkResult r;
    if (b == a + 1) {
        /* The usual case (a step's first and last timestamp): one call */
        r = vkGetQueryPoolResults(ctx->dev, c->queries, (uint32_t)a, 2, sizeof(t), t, sizeof(t[0]),
                                  VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
    } else {
        r = vkGetQueryPoolResults(ctx->dev, c->queries, (uint32_t)a, 1, sizeof(t[0]), &t[0],
                                  sizeof(t[0]), VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
        if (r == VK_SUCCESS)
            r = vkGetQueryPoolResults(ctx->dev, c->queries, (uint32_t)b, 1, sizeof(t[1]), &t[1],
                                      sizeof(t[1]),
                                      VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
    }
    if (r != VK_SUCCESS)
        return vkr_fail(ctx, r, "vkGetQueryPoolResults");
    *ret_ns = (double)(t[1] - t[0]) * ctx->info.timestamp_period_ns;
    return 0;
}
