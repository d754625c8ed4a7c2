/* Compute kernels from embedded SPIR-V, and descriptor sets made once. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vk/vkr.h"

/* The description against what the SPIR-V declares (vk/spirv.c). */
static int check_interface(struct vkr_ctx *ctx, const struct vkr_kernel_desc *d)
{
    uint32_t push, bind;
    int err = vkr_spirv_interface(d->spirv, d->spirv_bytes, &push, &bind);
    if (err) {
        snprintf(ctx->err, sizeof(ctx->err), "kernel '%s': unreadable SPIR-V", d->name);
        return err;
    }
    if (push != d->push_bytes || bind != d->n_bindings) {
        snprintf(ctx->err, sizeof(ctx->err),
                 "kernel '%s': the host says %u push-constant bytes and %u bindings, "
                 "the shader has %u and %u",
                 d->name, d->push_bytes, d->n_bindings, push, bind);
        return -EINVAL;
    }
    return 0;
}

int vkr_kernel_new(struct vkr_ctx *ctx, const struct vkr_kernel_desc *d, struct vkr_kernel *ret)
{
    memset(ret, 0, sizeof(*ret));
    ret->name = d->name;
    ret->n_bindings = d->n_bindings;
    ret->push_bytes = d->push_bytes;
    if (d->n_bindings > VKR_MAX_BINDINGS || d->n_spec > VKR_MAX_SPEC ||
        d->push_bytes > ctx->info.max_push_constants_size || d->spirv_bytes % 4) {
        snprintf(ctx->err, sizeof(ctx->err), "kernel '%s': bad description", d->name);
        return -EINVAL;
    }
    int serr = check_interface(ctx, d);
    if (serr)
        return serr;
    VkShaderModuleCreateInfo mi = {
        .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
        .codeSize = d->spirv_bytes,
        .pCode = d->spirv,
    };
    char what[128];
    snprintf(what, sizeof(what), "vkCreateShaderModule('%s')", d->name);
    VkResult r = vkCreateShaderModule(ctx->dev, &mi, NULL, &ret->module);
    if (r != VK_SUCCESS)
        goto fail;
    VkDescriptorSetLayoutBinding b[VKR_MAX_BINDINGS];
    for (uint32_t i = 0; i < d->n_bindings; i++)
        b[i] = (VkDescriptorSetLayoutBinding){
            .binding = i,
            .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
            .descriptorCount = 1,
            .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
        };
    VkDescriptorSetLayoutCreateInfo li = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
        .bindingCount = d->n_bindings,
        .pBindings = b,
    };
    snprintf(what, sizeof(what), "vkCreateDescriptorSetLayout('%s')", d->name);
    r = vkCreateDescriptorSetLayout(ctx->dev, &li, NULL, &ret->set_layout);
    if (r != VK_SUCCESS)
        goto fail;
    VkPushConstantRange pr = { .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT, .size = d->push_bytes };
    VkPipelineLayoutCreateInfo pli = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
        .setLayoutCount = 1,
        .pSetLayouts = &ret->set_layout,
        .pushConstantRangeCount = d->push_bytes ? 1 : 0,
        .pPushConstantRanges = &pr,
    };
    snprintf(what, sizeof(what), "vkCreatePipelineLayout('%s')", d->name);
    r = vkCreatePipelineLayout(ctx->dev, &pli, NULL, &ret->layout);
    if (r != VK_SUCCESS)
        goto fail;
    VkSpecializationMapEntry me[VKR_MAX_SPEC];
    for (uint32_t i = 0; i < d->n_spec; i++)
        me[i] = (VkSpecializationMapEntry){ .constantID = i, .offset = 4 * i, .size = 4 };
    VkSpecializationInfo si = {
        .mapEntryCount = d->n_spec,
        .pMapEntries = me,
        .dataSize = 4 * d->n_spec,
        .pData = d->spec,
    };
    VkComputePipelineCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage = {
            .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
            .stage = VK_SHADER_STAGE_COMPUTE_BIT,
            .module = ret->module,
            .pName = "main",
            .pSpecializationInfo = d->n_spec ? &si : NULL,
        },
        .layout = ret->layout,
    };
    snprintf(what, sizeof(what), "vkCreateComputePipelines('%s')", d->name);
    r = vkCreateComputePipelines(ctx->dev, ctx->pipeline_cache, 1, &ci, NULL, &ret->pipeline);
    if (r != VK_SUCCESS)
        goto fail;
    return 0;
fail:;
    int err = vkr_fail(ctx, r, what);
    vkr_kernel_free(ctx, ret);
    return err;
}

void vkr_kernel_free(struct vkr_ctx *ctx, struct vkr_kernel *k)
{
    if (!k || !ctx->dev)
        return;
    if (k->pipeline)
        vkDestroyPipeline(ctx->dev, k->pipeline, NULL);
    if (k->layout)
        vkDestroyPipelineLayout(ctx->dev, k->layout, NULL);
    if (k->set_layout)
        vkDestroyDescriptorSetLayout(ctx->dev, k->set_layout, NULL);
    if (k->module)
        vkDestroyShaderModule(ctx->dev, k->module, NULL);
    memset(k, 0, sizeof(*k));
}

int vkr_set_pool_new(struct vkr_ctx *ctx, uint32_t max_sets, uint32_t max_buffers,
                     struct vkr_set_pool *ret)
{
    memset(ret, 0, sizeof(*ret));
    VkDescriptorPoolSize ps = { .type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                .descriptorCount = max_buffers };
    VkDescriptorPoolCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
        .maxSets = max_sets,
        .poolSizeCount = 1,
        .pPoolSizes = &ps,
    };
    VkResult r = vkCreateDescriptorPool(ctx->dev, &ci, NULL, &ret->pool);
    if (r != VK_SUCCESS) {
        ret->pool = VK_NULL_HANDLE;
        return vkr_fail(ctx, r, "vkCreateDescriptorPool");
    }
    ret->cap = max_sets;
    return 0;
}

void vkr_set_pool_free(struct vkr_ctx *ctx, struct vkr_set_pool *p)
{
    if (p && p->pool && ctx->dev)
        vkDestroyDescriptorPool(ctx->dev, p->pool, NULL); /* frees its sets */
    if (p)
        memset(p, 0, sizeof(*p));
}

int vkr_set_new(struct vkr_ctx *ctx, struct vkr_set_pool *p, const struct vkr_kernel *k,
                const struct vkr_binding *b, uint32_t n, VkDescriptorSet *ret)
{
    if (n != k->n_bindings) {
        snprintf(ctx->err, sizeof(ctx->err), "kernel '%s' takes %u bindings, got %u", k->name,
                 k->n_bindings, n);
        return -EINVAL;
    }
    uint64_t maxr = vkr_max_binding(ctx);
    VkDescriptorBufferInfo bi[VKR_MAX_BINDINGS];
    for (uint32_t i = 0; i < n; i++) {
        VkDeviceSize range = b[i].range ? b[i].range : b[i].buf->size - b[i].offset;
        if (b[i].offset > b[i].buf->size || range > b[i].buf->size - b[i].offset || range > maxr) {
            snprintf(
                    ctx->err, sizeof(ctx->err),
                    "kernel '%s' binding %u: range %llu at %llu does not fit (buffer %llu, device limit %llu)",
                    k->name, i, (unsigned long long)range, (unsigned long long)b[i].offset,
                    (unsigned long long)b[i].buf->size, (unsigned long long)maxr);
            return -E2BIG;
        }
        bi[i] = (VkDescriptorBufferInfo){ .buffer = b[i].buf->buf,
                                          .offset = b[i].offset,
                                          .range = range };
    }
    VkDescriptorSetAllocateInfo ai = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
        .descriptorPool = p->pool,
        .descriptorSetCount = 1,
        .pSetLayouts = &k->set_layout,
    };
    VkResult r = vkAllocateDescriptorSets(ctx->dev, &ai, ret);
    if (r != VK_SUCCESS)
        return vkr_fail(ctx, r, "vkAllocateDescriptorSets");
    p->used++;
    VkWriteDescriptorSet w[VKR_MAX_BINDINGS];
    for (uint32_t i = 0; i < n; i++)
        w[i] = (VkWriteDescriptorSet){
            .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
            .dstSet = *ret,
            .dstBinding = i,
            .descriptorCount = 1,
            .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
            .pBufferInfo = &bi[i],
        };
    vkUpdateDescriptorSets(ctx->dev, n, w, 0, NULL);
    return 0;
}
