/* vk: the Vulkan runtime under lade. Instance and device choice, memory and
 * buffers, compute kernels from embedded SPIR-V, one command buffer per
 * step, timestamps. Knows nothing of models or tokens. Functions return 0 or
 * a negative errno; the VkResult and a one-line message naming it are kept
 * in the context (vkr_ctx_error). */
#ifndef LADE_VK_VKR_H
#define LADE_VK_VKR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <vulkan/vulkan.h>

/* ---- Device description and selection (device_info.c, select.c) -------- */

#define VKR_MAX_COOPMAT_SHAPES 16

struct vkr_coopmat_shape {
    uint32_t m, n, k;
    VkComponentTypeKHR a, b, c, result;
    VkScopeKHR scope;
};

/* Everything lade's kernels care about, read once from a physical device. */
struct vkr_device_info {
    char name[VK_MAX_PHYSICAL_DEVICE_NAME_SIZE];
    uint32_t index; /* in vkEnumeratePhysicalDevices order */
    VkPhysicalDeviceType type;
    uint32_t vendor_id, device_id;
    uint32_t api_version, driver_version;
    char driver_name[VK_MAX_DRIVER_NAME_SIZE];
    char driver_info[VK_MAX_DRIVER_INFO_SIZE];

    /* limits */
    uint64_t max_storage_buffer_range;
    uint64_t max_memory_allocation_size;
    uint32_t max_push_constants_size;
    uint32_t max_compute_shared_memory;
    uint32_t max_workgroup_invocations;
    uint32_t max_workgroup_count[3];
    uint32_t max_workgroup_size[3];
    uint32_t min_storage_buffer_offset_alignment;
    float timestamp_period_ns;
    bool has_timestamps; /* compute queue has timestampValidBits > 0 */

    /* features */
    bool storage_buffer_16bit;  /* storageBuffer16BitAccess */
    bool storage_buffer_8bit;   /* storageBuffer8BitAccess */
    bool shader_float16;
    bool shader_int8;
    bool shader_int16;
    bool shader_int64;
    bool integer_dot_product;   /* VK_KHR_shader_integer_dot_product (or 1.3 core feature) */
    bool subgroup_size_control; /* VK_EXT_subgroup_size_control or 1.3 */
    uint32_t subgroup_size;     /* default */
    uint32_t min_subgroup_size, max_subgroup_size;
    VkSubgroupFeatureFlags subgroup_ops; /* in compute stage */
    bool memory_budget;         /* VK_EXT_memory_budget */
    bool cooperative_matrix;    /* VK_KHR_cooperative_matrix */
    uint32_t n_coopmat_shapes;
    struct vkr_coopmat_shape coopmat_shapes[VKR_MAX_COOPMAT_SHAPES];

    /* memory */
    uint64_t device_local_bytes;  /* largest DEVICE_LOCAL heap */
    uint64_t device_local_budget; /* from VK_EXT_memory_budget, else = heap size */
    uint32_t compute_queue_family; /* UINT32_MAX if none */
};

/* Fill *ret from a physical device (needs instance API >= 1.1). */
int vkr_device_info_query(VkInstance instance, VkPhysicalDevice pd, uint32_t index,
                          struct vkr_device_info *ret);

/* Pick a device from a list. `want` is NULL/"" (automatic), a decimal index,
 * or a case-insensitive substring of the device name. Automatic order:
 * discrete > integrated > virtual > CPU > other, ties broken by larger
 * device-local memory, then lower index; devices without a compute queue
 * are never chosen. Writes a one-line human reason ("chose 1 'NVIDIA H100'
 * (discrete GPU, 80 GiB): highest ranked of 2") into reason. Returns the
 * position in `list`, or a negative errno (-ENODEV none usable, -ENOENT
 * `want` matches nothing, -EINVAL malformed want) with the reason saying
 * why. */
int vkr_select_device(const struct vkr_device_info *list, uint32_t n, const char *want,
                      char *reason, size_t reason_len);

/* "discrete GPU", "integrated GPU", "virtual GPU", "CPU", "other". */
const char *vkr_device_type_name(VkPhysicalDeviceType t);

/* Human multi-line description of one device (what lade-info prints). */
void vkr_device_info_print(const struct vkr_device_info *d, FILE *out);

#endif
