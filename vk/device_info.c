/* Reading a physical device into struct vkr_device_info: one Properties2 and
 * one Features2 chain, holding the core 1.1/1.2/1.3 structs the device's
 * apiVersion has and extension structs only for extensions it lists (the
 * validation layer rejects anything else), then memory, queues and the
 * cooperative-matrix shapes. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "vk/vkr.h"

#define VKR_V(major, minor) VK_MAKE_API_VERSION(0, major, minor, 0)

struct exts {
    VkExtensionProperties *v;
    uint32_t n;
};

/* Every struct the two chains may hold; only those linked are filled. */
struct chains {
    VkPhysicalDeviceProperties2 props;
    VkPhysicalDeviceVulkan11Properties p11; /* device >= 1.2 */
    VkPhysicalDeviceVulkan12Properties p12; /* device >= 1.2 */
    VkPhysicalDeviceVulkan13Properties p13; /* device >= 1.3 */
    VkPhysicalDeviceSubgroupProperties sg; /* device 1.1 */
    VkPhysicalDeviceMaintenance3Properties maint3; /* device 1.1 */
    VkPhysicalDeviceDriverProperties drv; /* VK_KHR_driver_properties */
    VkPhysicalDeviceSubgroupSizeControlProperties sgc; /* VK_EXT_subgroup_size_control */
    VkPhysicalDeviceFeatures2 feats;
    VkPhysicalDeviceVulkan11Features f11;
    VkPhysicalDeviceVulkan12Features f12;
    VkPhysicalDeviceVulkan13Features f13;
    VkPhysicalDevice16BitStorageFeatures s16;
    VkPhysicalDevice8BitStorageFeatures s8; /* VK_KHR_8bit_storage */
    VkPhysicalDeviceShaderFloat16Int8Features f16i8; /* VK_KHR_shader_float16_int8 */
    VkPhysicalDeviceSubgroupSizeControlFeatures sgcf;
    VkPhysicalDeviceShaderIntegerDotProductFeatures idot; /* VK_KHR_shader_integer_dot_product */
    VkPhysicalDeviceCooperativeMatrixFeaturesKHR cmf;
    VkPhysicalDeviceCooperativeMatrixFeaturesNV cmfnv; /* VK_NV_cooperative_matrix */
    VkPhysicalDeviceMemoryProperties2 mem;
    VkPhysicalDeviceMemoryBudgetPropertiesEXT budget; /* VK_EXT_memory_budget */
    bool v11, v12, v13;
    bool has_drv, has_s8, has_f16i8, has_sgc, has_idot, has_coopmat, has_coopmat_nv, has_budget;
};

static int errno_from_vk(VkResult r)
{
    if (r == VK_ERROR_OUT_OF_HOST_MEMORY || r == VK_ERROR_OUT_OF_DEVICE_MEMORY)
        return -ENOMEM;
    return -EIO;
}

static int exts_load(VkPhysicalDevice pd, struct exts *e)
{
    VkResult r;

    do {
        free(e->v);
        e->v = NULL;
        r = vkEnumerateDeviceExtensionProperties(pd, NULL, &e->n, NULL);
        if (r != VK_SUCCESS)
            return errno_from_vk(r);
        e->v = calloc(e->n ? e->n : 1, sizeof(*e->v));
        if (!e->v)
            return -ENOMEM;
        r = vkEnumerateDeviceExtensionProperties(pd, NULL, &e->n, e->v);
    } while (r == VK_INCOMPLETE);
    return r == VK_SUCCESS ? 0 : errno_from_vk(r);
}

static bool exts_has(const struct exts *e, const char *name)
{
    for (uint32_t i = 0; i < e->n; i++)
        if (strcmp(e->v[i].extensionName, name) == 0)
            return true;
    return false;
}

/* Put s right after head in head's pNext chain. */
static void chain_link(void *head, void *s, VkStructureType type)
{
    VkBaseOutStructure *h = head, *n = s;

    n->sType = type;
    n->pNext = h->pNext;
    h->pNext = n;
}

static void chains_build_props(struct chains *c)
{
    VkPhysicalDeviceProperties2 *p = &c->props;

    p->sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2;
    if (c->v12) {
        chain_link(p, &c->p11, VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_PROPERTIES);
        chain_link(p, &c->p12, VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_PROPERTIES);
    } else if (c->v11) {
        chain_link(p, &c->sg, VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES);
        chain_link(p, &c->maint3, VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES);
    }
    if (!c->v12 && c->has_drv)
        chain_link(p, &c->drv, VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES);
    if (c->v13)
        chain_link(p, &c->p13, VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_PROPERTIES);
    else if (c->has_sgc)
        chain_link(p, &c->sgc, VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES);
}

static void chains_build_feats(struct chains *c)
{
    VkPhysicalDeviceFeatures2 *f = &c->feats;

    f->sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2;
    if (c->v12) {
        chain_link(f, &c->f11, VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES);
        chain_link(f, &c->f12, VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES);
    } else {
        if (c->v11)
            chain_link(f, &c->s16, VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES);
        if (c->has_s8)
            chain_link(f, &c->s8, VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_8BIT_STORAGE_FEATURES);
        if (c->has_f16i8)
            chain_link(f, &c->f16i8,
                       VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES);
    }
    if (c->v13) {
        chain_link(f, &c->f13, VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES);
    } else {
        if (c->has_sgc)
            chain_link(f, &c->sgcf,
                       VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES);
        if (c->has_idot)
            chain_link(f, &c->idot,
                       VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES);
    }
    if (c->has_coopmat)
        chain_link(f, &c->cmf, VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_KHR);
    if (c->has_coopmat_nv)
        chain_link(f, &c->cmfnv, VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV);
    c->mem.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2;
    if (c->has_budget)
        chain_link(&c->mem, &c->budget,
                   VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT);
}

static void chains_plan(struct chains *c, uint32_t api, const struct exts *e)
{
    c->v11 = api >= VKR_V(1, 1);
    c->v12 = api >= VKR_V(1, 2);
    c->v13 = api >= VKR_V(1, 3);
    c->has_drv = exts_has(e, VK_KHR_DRIVER_PROPERTIES_EXTENSION_NAME);
    c->has_s8 = exts_has(e, VK_KHR_8BIT_STORAGE_EXTENSION_NAME);
    c->has_f16i8 = exts_has(e, VK_KHR_SHADER_FLOAT16_INT8_EXTENSION_NAME);
    c->has_sgc = exts_has(e, VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME);
    c->has_idot = exts_has(e, VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME);
    c->has_coopmat = exts_has(e, VK_KHR_COOPERATIVE_MATRIX_EXTENSION_NAME);
    c->has_coopmat_nv = exts_has(e, VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME);
    c->has_budget = exts_has(e, VK_EXT_MEMORY_BUDGET_EXTENSION_NAME);
    chains_build_props(c);
    chains_build_feats(c);
}

static void fill_identity(struct vkr_device_info *d, const struct chains *c)
{
    const VkPhysicalDeviceProperties *p = &c->props.properties;
    const char *drv_name = "", *drv_info = "";

    snprintf(d->name, sizeof(d->name), "%s", p->deviceName);
    d->type = p->deviceType;
    d->vendor_id = p->vendorID;
    d->device_id = p->deviceID;
    d->api_version = p->apiVersion;
    d->driver_version = p->driverVersion;
    if (c->v12) {
        drv_name = c->p12.driverName;
        drv_info = c->p12.driverInfo;
    } else if (c->has_drv) {
        drv_name = c->drv.driverName;
        drv_info = c->drv.driverInfo;
    }
    snprintf(d->driver_name, sizeof(d->driver_name), "%s", drv_name);
    snprintf(d->driver_info, sizeof(d->driver_info), "%s", drv_info);
}

static void fill_limits(struct vkr_device_info *d, const struct chains *c)
{
    const VkPhysicalDeviceLimits *l = &c->props.properties.limits;

    d->max_storage_buffer_range = l->maxStorageBufferRange;
    if (c->v12)
        d->max_memory_allocation_size = c->p11.maxMemoryAllocationSize;
    else if (c->v11)
        d->max_memory_allocation_size = c->maint3.maxMemoryAllocationSize;
    d->max_push_constants_size = l->maxPushConstantsSize;
    d->max_compute_shared_memory = l->maxComputeSharedMemorySize;
    d->non_coherent_atom = l->nonCoherentAtomSize;
    d->max_workgroup_invocations = l->maxComputeWorkGroupInvocations;
    for (int i = 0; i < 3; i++) {
        d->max_workgroup_count[i] = l->maxComputeWorkGroupCount[i];
        d->max_workgroup_size[i] = l->maxComputeWorkGroupSize[i];
    }
    d->min_storage_buffer_offset_alignment = (uint32_t)l->minStorageBufferOffsetAlignment;
    d->timestamp_period_ns = l->timestampPeriod;
}

static void fill_features(struct vkr_device_info *d, const struct chains *c)
{
    const VkPhysicalDeviceFeatures *f = &c->feats.features;

    d->shader_int16 = f->shaderInt16;
    d->shader_int64 = f->shaderInt64;
    if (c->v12) {
        d->storage_buffer_16bit = c->f11.storageBuffer16BitAccess;
        d->storage_buffer_8bit = c->f12.storageBuffer8BitAccess;
        d->shader_float16 = c->f12.shaderFloat16;
        d->shader_int8 = c->f12.shaderInt8;
        d->vulkan_memory_model = c->f12.vulkanMemoryModel;
    } else {
        d->storage_buffer_16bit = c->v11 && c->s16.storageBuffer16BitAccess;
        d->storage_buffer_8bit = c->has_s8 && c->s8.storageBuffer8BitAccess;
        d->shader_float16 = c->has_f16i8 && c->f16i8.shaderFloat16;
        d->shader_int8 = c->has_f16i8 && c->f16i8.shaderInt8;
    }
    if (c->v13)
        d->integer_dot_product = c->f13.shaderIntegerDotProduct;
    else
        d->integer_dot_product = c->has_idot && c->idot.shaderIntegerDotProduct;
    d->memory_budget = c->has_budget;
}

/* Size control counts only if a compute pipeline may require a size. */
static void fill_subgroups(struct vkr_device_info *d, const struct chains *c)
{
    VkShaderStageFlags stages = 0, req_stages = 0;
    bool control = false;

    if (c->v12) {
        d->subgroup_size = c->p11.subgroupSize;
        stages = c->p11.subgroupSupportedStages;
        d->subgroup_ops = c->p11.subgroupSupportedOperations;
    } else if (c->v11) {
        d->subgroup_size = c->sg.subgroupSize;
        stages = c->sg.supportedStages;
        d->subgroup_ops = c->sg.supportedOperations;
    }
    if (!(stages & VK_SHADER_STAGE_COMPUTE_BIT))
        d->subgroup_ops = 0;
    d->min_subgroup_size = d->max_subgroup_size = d->subgroup_size;
    if (c->v13) {
        control = c->f13.subgroupSizeControl;
        req_stages = c->p13.requiredSubgroupSizeStages;
        d->min_subgroup_size = c->p13.minSubgroupSize;
        d->max_subgroup_size = c->p13.maxSubgroupSize;
    } else if (c->has_sgc) {
        control = c->sgcf.subgroupSizeControl;
        req_stages = c->sgc.requiredSubgroupSizeStages;
        d->min_subgroup_size = c->sgc.minSubgroupSize;
        d->max_subgroup_size = c->sgc.maxSubgroupSize;
    }
    d->subgroup_size_control = control && (req_stages & VK_SHADER_STAGE_COMPUTE_BIT);
}

static void fill_memory(struct vkr_device_info *d, const struct chains *c)
{
    const VkPhysicalDeviceMemoryProperties *m = &c->mem.memoryProperties;

    d->n_heaps = m->memoryHeapCount < VK_MAX_MEMORY_HEAPS ? m->memoryHeapCount :
                                                            VK_MAX_MEMORY_HEAPS;
    for (uint32_t i = 0; i < d->n_heaps; i++) {
        struct vkr_heap *h = &d->heaps[i];

        h->size = m->memoryHeaps[i].size;
        h->device_local = m->memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT;
        /* A budget of 0 is a driver that fills the struct badly. */
        h->budget = c->has_budget && c->budget.heapBudget[i] ? c->budget.heapBudget[i] : h->size;
        if (h->device_local && h->size > d->device_local_bytes) {
            d->device_local_bytes = h->size;
            d->device_local_budget = h->budget;
        }
    }
}

/* A compute-only family runs beside graphics work; else any with compute. */
static int fill_queue(struct vkr_device_info *d, VkPhysicalDevice pd)
{
    VkQueueFamilyProperties *q;
    uint32_t n = 0, any = UINT32_MAX, only = UINT32_MAX;

    vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, NULL);
    q = calloc(n ? n : 1, sizeof(*q));
    if (!q)
        return -ENOMEM;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, q);
    for (uint32_t i = 0; i < n; i++) {
        if (!(q[i].queueFlags & VK_QUEUE_COMPUTE_BIT) || q[i].queueCount == 0)
            continue;
        if (any == UINT32_MAX)
            any = i;
        if (only == UINT32_MAX && !(q[i].queueFlags & VK_QUEUE_GRAPHICS_BIT))
            only = i;
    }
    d->compute_queue_family = only != UINT32_MAX ? only : any;
    if (d->compute_queue_family != UINT32_MAX) {
        d->timestamp_valid_bits = q[d->compute_queue_family].timestampValidBits;
        d->has_timestamps = d->timestamp_valid_bits > 0;
    }
    free(q);
    return 0;
}

static void coopmat_copy(struct vkr_device_info *d, const VkCooperativeMatrixPropertiesKHR *v,
                         uint32_t n)
{
    d->n_coopmat_shapes = 0;
    for (uint32_t i = 0; i < n && d->n_coopmat_shapes < VKR_MAX_COOPMAT_SHAPES; i++) {
        struct vkr_coopmat_shape *s = &d->coopmat_shapes[d->n_coopmat_shapes++];

        s->m = v[i].MSize;
        s->n = v[i].NSize;
        s->k = v[i].KSize;
        s->a = v[i].AType;
        s->b = v[i].BType;
        s->c = v[i].CType;
        s->result = v[i].ResultType;
        s->scope = v[i].scope;
    }
}

/* The driver's list of cooperative-matrix properties (KHR or NV: both
 * structs start with sType and pNext, and both queries take (pd, &n,
 * array), differing only in the array's pointee type), through `fn`.
 * *ret is malloc'd, NULL with *ret_n 0 when there is none. Only -ENOMEM
 * is an error: a driver that fails to list its shapes is treated as
 * having none. */
static int coopmat_list(VkInstance instance, VkPhysicalDevice pd, const char *fn, size_t size,
                        VkStructureType stype, void **ret, uint32_t *ret_n)
{
    typedef VkResult(VKAPI_PTR * list_fn)(VkPhysicalDevice, uint32_t *, void *);
    PFN_vkVoidFunction f = vkGetInstanceProcAddr(instance, fn);
    uint32_t n = 0;

    *ret = NULL;
    *ret_n = 0;
    if (!f || ((list_fn)f)(pd, &n, NULL) != VK_SUCCESS || n == 0)
        return 0;
    uint8_t *v = calloc(n, size);
    if (!v)
        return -ENOMEM;
    for (uint32_t i = 0; i < n; i++)
        ((VkBaseOutStructure *)(v + i * size))->sType = stype;
    VkResult r = ((list_fn)f)(pd, &n, v);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE) {
        free(v);
        return r == VK_ERROR_OUT_OF_HOST_MEMORY ? -ENOMEM : 0;
    }
    *ret = v;
    *ret_n = n;
    return 0;
}

/* Shapes in the driver's order (preferred first), the first
 * VKR_MAX_COOPMAT_SHAPES kept.
 * VkPhysicalDeviceCooperativeMatrixPropertiesKHR is not read: its only
 * field has the compute stage whenever a queue has compute (spec), and
 * Debian 12's validation layer (1.3.239) rejects its sType. */
static int fill_coopmat(struct vkr_device_info *d, const struct chains *c, VkInstance instance,
                        VkPhysicalDevice pd)
{
    void *v;
    uint32_t n;

    if (!c->has_coopmat || !c->cmf.cooperativeMatrix || d->compute_queue_family == UINT32_MAX)
        return 0;
    int err = coopmat_list(instance, pd, "vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR",
                           sizeof(VkCooperativeMatrixPropertiesKHR),
                           VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_KHR, &v, &n);
    if (!err && n) {
        coopmat_copy(d, v, n);
        d->cooperative_matrix = d->n_coopmat_shapes > 0;
    }
    free(v);
    return err;
}

/* VK_NV_cooperative_matrix with the one shape matmul_cm.comp uses:
 * 16x16x16, f16 * f16 + f32 = f32, subgroup scope, and the Vulkan memory
 * model its GLSL extension declares (glslang: the matrices' scope comes
 * from GL_KHR_memory_scope_semantics). (lade's kernels are compiled by
 * Debian 12's glslang, which knows the NV extension and not the KHR one.) */
static int fill_coopmat_nv(struct vkr_device_info *d, const struct chains *c, VkInstance instance,
                           VkPhysicalDevice pd)
{
    void *list;
    uint32_t n;

    if (!c->has_coopmat_nv || !c->cmfnv.cooperativeMatrix || !d->vulkan_memory_model ||
        d->compute_queue_family == UINT32_MAX)
        return 0;
    int err = coopmat_list(instance, pd, "vkGetPhysicalDeviceCooperativeMatrixPropertiesNV",
                           sizeof(VkCooperativeMatrixPropertiesNV),
                           VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_NV, &list, &n);
    const VkCooperativeMatrixPropertiesNV *v = list;
    for (uint32_t i = 0; !err && i < n; i++)
        if (v[i].MSize == 16 && v[i].NSize == 16 && v[i].KSize == 16 &&
            v[i].AType == VK_COMPONENT_TYPE_FLOAT16_NV &&
            v[i].BType == VK_COMPONENT_TYPE_FLOAT16_NV &&
            v[i].CType == VK_COMPONENT_TYPE_FLOAT32_NV &&
            v[i].DType == VK_COMPONENT_TYPE_FLOAT32_NV && v[i].scope == VK_SCOPE_SUBGROUP_NV)
            d->coopmat_nv_f16 = true;
    free(list);
    return err;
}

int vkr_device_info_query(VkInstance instance, VkPhysicalDevice pd, uint32_t index,
                          struct vkr_device_info *ret)
{
    struct vkr_device_info *d = NULL;
    struct chains *c = NULL;
    struct exts e = { 0 };
    VkPhysicalDeviceProperties p;
    int r;

    d = calloc(1, sizeof(*d));
    c = calloc(1, sizeof(*c));
    r = d && c ? exts_load(pd, &e) : -ENOMEM;
    if (r < 0)
        goto out;
    vkGetPhysicalDeviceProperties(pd, &p);
    chains_plan(c, p.apiVersion, &e);
    vkGetPhysicalDeviceProperties2(pd, &c->props);
    vkGetPhysicalDeviceFeatures2(pd, &c->feats);
    vkGetPhysicalDeviceMemoryProperties2(pd, &c->mem);
    d->index = index;
    fill_identity(d, c);
    fill_limits(d, c);
    fill_features(d, c);
    fill_subgroups(d, c);
    fill_memory(d, c);
    r = fill_queue(d, pd);
    if (r == 0)
        r = fill_coopmat(d, c, instance, pd);
    if (r == 0)
        r = fill_coopmat_nv(d, c, instance, pd);
    if (r == 0)
        *ret = *d;
out:
    free(e.v);
    free(c);
    free(d);
    return r;
}

/* ---- Naming and printing ------------------------------------------------ */

const char *vkr_device_type_name(VkPhysicalDeviceType t)
{
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete GPU";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated GPU";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual GPU";
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return "CPU";
    default: return "other";
    }
}

static const char *fmt_size(uint64_t b, char *buf, size_t len)
{
    if (b >= (1ull << 30))
        snprintf(buf, len, "%.1f GiB", (double)b / (1ull << 30));
    else if (b >= (1ull << 20))
        snprintf(buf, len, "%.1f MiB", (double)b / (1ull << 20));
    else if (b >= 1024)
        snprintf(buf, len, "%.1f KiB", (double)b / 1024);
    else
        snprintf(buf, len, "%" PRIu64 " B", b);
    return buf;
}

/* Values after u64 come from later extensions (bfloat16, fp8, packed). */
static const char *component_name(VkComponentTypeKHR t)
{
    static const char *const names[] = { "f16", "f32", "f64", "s8",  "s16", "s32",
                                         "s64", "u8",  "u16", "u32", "u64" };

    if ((unsigned)t < sizeof(names) / sizeof(names[0]))
        return names[t];
    if ((unsigned)t == 1000141000u) /* VK_COMPONENT_TYPE_BFLOAT16_KHR */
        return "bf16";
    return "?";
}

static const char *scope_name(VkScopeKHR s)
{
    switch ((int)s) {
    case 1: return "device";
    case 2: return "workgroup";
    case 3: return "subgroup";
    case 5: return "queue family";
    default: return "?";
    }
}

static void print_identity(const struct vkr_device_info *d, FILE *out)
{
    uint32_t v = d->driver_version;

    fprintf(out, "device %u: %s\n", d->index, d->name);
    fprintf(out, "  type           %s, vendor 0x%04x, device 0x%04x\n",
            vkr_device_type_name(d->type), d->vendor_id, d->device_id);
    fprintf(out, "  driver         %s", d->driver_name[0] ? d->driver_name : "(unnamed)");
    if (d->driver_info[0])
        fprintf(out, ": %s", d->driver_info);
    if (d->vendor_id == 0x10de) /* NVIDIA packs 10.8.8.6 bits */
        fprintf(out, ", version %u.%u.%u\n", v >> 22, (v >> 14) & 0xff, (v >> 6) & 0xff);
    else
        fprintf(out, ", version %u.%u.%u\n", VK_API_VERSION_MAJOR(v), VK_API_VERSION_MINOR(v),
                VK_API_VERSION_PATCH(v));
    fprintf(out, "  Vulkan         %u.%u.%u\n", VK_API_VERSION_MAJOR(d->api_version),
            VK_API_VERSION_MINOR(d->api_version), VK_API_VERSION_PATCH(d->api_version));
    if (d->compute_queue_family == UINT32_MAX)
        fprintf(out, "  compute queue  none (lade cannot use this device)\n");
    else if (d->has_timestamps)
        fprintf(out, "  compute queue  family %u, timestamps %u bits, %g ns per tick\n",
                d->compute_queue_family, d->timestamp_valid_bits, d->timestamp_period_ns);
    else
        fprintf(out, "  compute queue  family %u, no timestamps\n", d->compute_queue_family);
}

static void print_limits(const struct vkr_device_info *d, FILE *out)
{
    char a[32], b[32], c[32];

    fprintf(out, "  limits         storage buffer range %s, allocation %s, push constants %u B\n",
            fmt_size(d->max_storage_buffer_range, a, sizeof(a)),
            fmt_size(d->max_memory_allocation_size, b, sizeof(b)), d->max_push_constants_size);
    fprintf(out, "                 shared memory %s, storage offset alignment %u\n",
            fmt_size(d->max_compute_shared_memory, c, sizeof(c)),
            d->min_storage_buffer_offset_alignment);
    fprintf(out, "                 workgroup %u invocations, size %ux%ux%u, count %ux%ux%u\n",
            d->max_workgroup_invocations, d->max_workgroup_size[0], d->max_workgroup_size[1],
            d->max_workgroup_size[2], d->max_workgroup_count[0], d->max_workgroup_count[1],
            d->max_workgroup_count[2]);
}

static void print_subgroups(const struct vkr_device_info *d, FILE *out)
{
    static const char *const ops[] = { "basic",     "vote",    "arithmetic",
                                       "ballot",    "shuffle", "shuffle-relative",
                                       "clustered", "quad" };

    fprintf(out, "  subgroup       size %u", d->subgroup_size);
    if (d->subgroup_size_control)
        fprintf(out, ", size control %u..%u", d->min_subgroup_size, d->max_subgroup_size);
    else
        fprintf(out, ", no size control");
    fprintf(out, "; compute ops:");
    for (unsigned i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
        if (d->subgroup_ops & (1u << i))
            fprintf(out, " %s", ops[i]);
    if (!d->subgroup_ops)
        fprintf(out, " none");
    fputc('\n', out);
}

static void print_features(const struct vkr_device_info *d, FILE *out)
{
    const struct {
        const char *name;
        bool on;
    } f[] = {
        { "16-bit storage", d->storage_buffer_16bit },
        { "8-bit storage", d->storage_buffer_8bit },
        { "float16", d->shader_float16 },
        { "int8", d->shader_int8 },
        { "int16", d->shader_int16 },
        { "int64", d->shader_int64 },
        { "integer dot product", d->integer_dot_product },
        { "memory budget", d->memory_budget },
        { "NV coop matrix f16 16x16x16", d->coopmat_nv_f16 },
    };

    fprintf(out, "  features      ");
    for (unsigned i = 0; i < sizeof(f) / sizeof(f[0]); i++)
        fprintf(out, "%s %s %s", i ? "," : "", f[i].name, f[i].on ? "yes" : "no");
    fputc('\n', out);
    if (!d->cooperative_matrix) {
        fprintf(out, "  coop matrix    no\n");
        return;
    }
    fprintf(out, "  coop matrix    %u shapes (MxNxK A*B+C=R, scope)\n", d->n_coopmat_shapes);
    for (uint32_t i = 0; i < d->n_coopmat_shapes; i++) {
        const struct vkr_coopmat_shape *s = &d->coopmat_shapes[i];

        fprintf(out, "                 %ux%ux%u %s*%s+%s=%s, %s\n", s->m, s->n, s->k,
                component_name(s->a), component_name(s->b), component_name(s->c),
                component_name(s->result), scope_name(s->scope));
    }
}

static void print_memory(const struct vkr_device_info *d, FILE *out)
{
    char a[32], b[32];

    for (uint32_t i = 0; i < d->n_heaps; i++) {
        const struct vkr_heap *h = &d->heaps[i];

        fprintf(out, "  %-15sheap %u: %s%s, budget %s%s\n", i ? "" : "memory", i,
                fmt_size(h->size, a, sizeof(a)), h->device_local ? " device-local" : "",
                fmt_size(h->budget, b, sizeof(b)), d->memory_budget ? "" : " (no budget ext)");
    }
}

void vkr_device_info_print(const struct vkr_device_info *d, FILE *out)
{
    print_identity(d, out);
    print_limits(d, out);
    print_subgroups(d, out);
    print_features(d, out);
    print_memory(d, out);
}
