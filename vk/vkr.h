/* vk: the Vulkan runtime under lade. Instance and device choice, memory and
 * buffers, compute kernels from embedded SPIR-V, one command buffer per
 * step, timestamps. Knows nothing of models or tokens. Functions return 0 or
 * a negative errno; the VkResult and a one-line message naming it are kept
 * in the context (struct vkr_ctx's last_result and err). */
#ifndef LADE_VK_VKR_H
#define LADE_VK_VKR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <vulkan/vulkan.h>

/* ---- Device description and selection (device_info.c, select.c) -------- */

#define VKR_MAX_COOPMAT_SHAPES 16

/* Debian 12's headers (1.3.239) predate VK_KHR_cooperative_matrix (1.3.255).
 * Declare the part lade uses, with the registry's values, when they lack it;
 * the function is always loaded through vkGetInstanceProcAddr. */
#ifndef VK_KHR_cooperative_matrix
#define VKR_COOPMAT_COMPAT 1
#define VK_KHR_COOPERATIVE_MATRIX_EXTENSION_NAME "VK_KHR_cooperative_matrix"
#define VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_KHR \
    ((VkStructureType)1000506000)
#define VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_KHR ((VkStructureType)1000506001)
#define VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_PROPERTIES_KHR \
    ((VkStructureType)1000506002)

typedef enum VkComponentTypeKHR {
    VK_COMPONENT_TYPE_FLOAT16_KHR = 0,
    VK_COMPONENT_TYPE_FLOAT32_KHR = 1,
    VK_COMPONENT_TYPE_FLOAT64_KHR = 2,
    VK_COMPONENT_TYPE_SINT8_KHR = 3,
    VK_COMPONENT_TYPE_SINT16_KHR = 4,
    VK_COMPONENT_TYPE_SINT32_KHR = 5,
    VK_COMPONENT_TYPE_SINT64_KHR = 6,
    VK_COMPONENT_TYPE_UINT8_KHR = 7,
    VK_COMPONENT_TYPE_UINT16_KHR = 8,
    VK_COMPONENT_TYPE_UINT32_KHR = 9,
    VK_COMPONENT_TYPE_UINT64_KHR = 10,
    VK_COMPONENT_TYPE_MAX_ENUM_KHR = 0x7FFFFFFF,
} VkComponentTypeKHR;

typedef enum VkScopeKHR {
    VK_SCOPE_DEVICE_KHR = 1,
    VK_SCOPE_WORKGROUP_KHR = 2,
    VK_SCOPE_SUBGROUP_KHR = 3,
    VK_SCOPE_QUEUE_FAMILY_KHR = 5,
    VK_SCOPE_MAX_ENUM_KHR = 0x7FFFFFFF,
} VkScopeKHR;

typedef struct VkCooperativeMatrixPropertiesKHR {
    VkStructureType sType;
    void *pNext;
    uint32_t MSize;
    uint32_t NSize;
    uint32_t KSize;
    VkComponentTypeKHR AType;
    VkComponentTypeKHR BType;
    VkComponentTypeKHR CType;
    VkComponentTypeKHR ResultType;
    VkBool32 saturatingAccumulation;
    VkScopeKHR scope;
} VkCooperativeMatrixPropertiesKHR;

typedef struct VkPhysicalDeviceCooperativeMatrixFeaturesKHR {
    VkStructureType sType;
    void *pNext;
    VkBool32 cooperativeMatrix;
    VkBool32 cooperativeMatrixRobustBufferAccess;
} VkPhysicalDeviceCooperativeMatrixFeaturesKHR;

typedef struct VkPhysicalDeviceCooperativeMatrixPropertiesKHR {
    VkStructureType sType;
    void *pNext;
    VkShaderStageFlags cooperativeMatrixSupportedStages;
} VkPhysicalDeviceCooperativeMatrixPropertiesKHR;

typedef VkResult(VKAPI_PTR *PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR)(
        VkPhysicalDevice physicalDevice, uint32_t *pPropertyCount,
        VkCooperativeMatrixPropertiesKHR *pProperties);
#endif

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
    uint64_t non_coherent_atom; /* nonCoherentAtomSize: mapped ranges align to it */
    uint32_t max_workgroup_invocations;
    uint32_t max_workgroup_count[3];
    uint32_t max_workgroup_size[3];
    uint32_t min_storage_buffer_offset_alignment;
    float timestamp_period_ns;
    bool has_timestamps; /* compute queue has timestampValidBits > 0 */
    uint32_t timestamp_valid_bits; /* of the compute queue family */

    /* features */
    bool storage_buffer_16bit; /* storageBuffer16BitAccess */
    bool storage_buffer_8bit; /* storageBuffer8BitAccess */
    bool shader_float16;
    bool shader_int8;
    bool shader_int16;
    bool shader_int64;
    bool integer_dot_product; /* VK_KHR_shader_integer_dot_product (or 1.3 core feature) */
    bool vulkan_memory_model; /* vulkanMemoryModel (1.2 core) */
    bool subgroup_size_control; /* VK_EXT_subgroup_size_control or 1.3 */
    uint32_t subgroup_size; /* default */
    uint32_t min_subgroup_size, max_subgroup_size;
    VkSubgroupFeatureFlags subgroup_ops; /* in compute stage */
    bool memory_budget; /* VK_EXT_memory_budget */
    bool cooperative_matrix; /* VK_KHR_cooperative_matrix */
    uint32_t n_coopmat_shapes;
    struct vkr_coopmat_shape coopmat_shapes[VKR_MAX_COOPMAT_SHAPES];
    bool coopmat_nv_f16; /* VK_NV_cooperative_matrix, 16x16x16 f16 * f16 + f32 (matmul_cm.comp) */

    /* memory */
    uint64_t device_local_bytes; /* largest DEVICE_LOCAL heap */
    uint64_t device_local_budget; /* from VK_EXT_memory_budget, else = heap size */
    uint32_t compute_queue_family; /* UINT32_MAX if none */
    uint32_t n_heaps; /* every heap, in the driver's order */
    struct vkr_heap {
        uint64_t size;
        uint64_t budget; /* VK_EXT_memory_budget, else = size */
        bool device_local;
    } heaps[VK_MAX_MEMORY_HEAPS];
};

/* Fill *ret from a physical device (needs instance API >= 1.1). Structs
 * of core 1.2/1.3 are chained by the device's apiVersion, so create the
 * instance with apiVersion 1.3 (the loader accepts it on older drivers);
 * extension structs only where the device lists the extension. Returns 0,
 * -ENOMEM, or -EIO for any other Vulkan failure; *ret is untouched then. */
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
 * why. A `want` that starts with a digit, '+' or '-' is an index and must
 * be all digits ("1x", "-1" are -EINVAL); an index is matched against
 * `index`, not the position in `list`. A name matching several devices
 * picks the best ranked of them. An explicit choice without a compute
 * queue is -ENODEV. reason may be NULL when reason_len is 0. */
int vkr_select_device(const struct vkr_device_info *list, uint32_t n, const char *want,
                      char *reason, size_t reason_len);

/* "discrete GPU", "integrated GPU", "virtual GPU", "CPU", "other". */
const char *vkr_device_type_name(VkPhysicalDeviceType t);

/* Human multi-line description of one device (what lade-info prints). */
void vkr_device_info_print(const struct vkr_device_info *d, FILE *out);

/* ---- Context: instance, device, queue, pools (instance.c, ctx.c) ------- */

/* Name of a VkResult ("VK_ERROR_OUT_OF_DEVICE_MEMORY"). */
const char *vkr_result_name(VkResult r);
/* VkResult → negative errno (-ENOMEM, -ENODEV, -ENOTSUP, -EIO ...). */
int vkr_errno(VkResult r);

/* Validation messages seen by any context of this process (warnings and
 * errors). Tests assert it stays 0; with LADE_VALIDATION=1 in the
 * environment (set by ctest) the first message also aborts the process so
 * no test can miss one. */
unsigned vkr_validation_messages(void);

struct vkr_ctx_opts {
    const char *device; /* NULL/"" automatic, index, or name substring */
    bool validation; /* also forced on by LADE_VALIDATION=1 */
    const char *pipeline_cache_path; /* NULL: no on-disk pipeline cache */
};

struct vkr_ctx {
    VkInstance instance;
    VkDebugUtilsMessengerEXT messenger;
    bool validation;
    VkPhysicalDevice pd;
    struct vkr_device_info info;
    char select_reason[256];
    VkDevice dev;
    VkQueue queue;
    uint32_t queue_family;
    VkCommandPool cmd_pool;
    VkPipelineCache pipeline_cache;
    char *pipeline_cache_path;
    uint32_t mem_device; /* memory type index: DEVICE_LOCAL */
    uint32_t mem_upload; /* HOST_VISIBLE | HOST_COHERENT */
    uint32_t mem_readback; /* HOST_VISIBLE, HOST_CACHED if there is one */
    bool readback_coherent;
    bool has_f16, has_int8, has_16bit_storage;
    bool has_coopmat_nv; /* VK_NV_cooperative_matrix enabled (vkr_device_info.coopmat_nv_f16) */
    bool has_idot; /* shaderIntegerDotProduct enabled (vkr_device_info.integer_dot_product) */
    uint64_t max_binding_override; /* tests: pretend bindings are this small */
    struct vkr_upload_ring *up; /* between vkr_upload_begin and vkr_upload_end */
    VkResult last_result;
    char err[256]; /* last failure, names the call and the VkResult */
};

/* Instance, device choice, logical device, queue, pools. reterr gets the
 * reason on failure. The context is heap-allocated so its address is stable. */
int vkr_ctx_new(const struct vkr_ctx_opts *opts, struct vkr_ctx **ret, char *reterr, size_t errlen);
/* Waits for the device to go idle, saves the pipeline cache, frees all. */
void vkr_ctx_free(struct vkr_ctx *ctx);

/* List every physical device (for lade-info and selection). *ret_list is
 * malloc'ed; free() it. */
int vkr_enumerate(VkInstance instance, struct vkr_device_info **ret_list, uint32_t *ret_n);
/* A debug messenger's description: warnings and errors of every type to cb
 * (the instance's own, and lade-info's, which counts them). */
VkDebugUtilsMessengerCreateInfoEXT vkr_messenger_info(PFN_vkDebugUtilsMessengerCallbackEXT cb);
/* An instance of our own (validation as in opts), for tools. */
int vkr_instance_new(bool validation, VkInstance *ret_instance,
                     VkDebugUtilsMessengerEXT *ret_messenger, char *reterr, size_t errlen);
void vkr_instance_free(VkInstance instance, VkDebugUtilsMessengerEXT messenger);

/* ---- Buffers (buffer.c) -------------------------------------------------- */

enum vkr_mem {
    VKR_MEM_DEVICE, /* device-local, filled through staging */
    VKR_MEM_UPLOAD, /* host-visible, host writes, device reads */
    VKR_MEM_READBACK, /* host-visible, device writes, host reads */
};

struct vkr_buf {
    VkBuffer buf;
    VkDeviceMemory mem;
    VkDeviceSize size;
    enum vkr_mem kind;
    void *map; /* persistent mapping for UPLOAD/READBACK, NULL for DEVICE */
};

int vkr_buf_new(struct vkr_ctx *ctx, VkDeviceSize size, enum vkr_mem kind, struct vkr_buf *ret);
void vkr_buf_free(struct vkr_ctx *ctx, struct vkr_buf *b);
/* Copy host bytes into any buffer (through a bounded staging buffer for
 * device-local ones; blocks until done). */
int vkr_buf_upload(struct vkr_ctx *ctx, struct vkr_buf *b, VkDeviceSize offset, const void *src,
                   VkDeviceSize size);
int vkr_buf_download(struct vkr_ctx *ctx, struct vkr_buf *b, VkDeviceSize offset, void *dst,
                     VkDeviceSize size);
/* Makes size bytes at off of a READBACK buffer's mapping show what the
 * device wrote (nothing to do on coherent memory): only what the host is
 * about to read, not the whole buffer. */
int vkr_buf_invalidate_range(struct vkr_ctx *ctx, struct vkr_buf *b, VkDeviceSize off,
                             VkDeviceSize size);
/* Make host writes to / device writes from a mapped buffer visible when the
 * memory is not coherent. */
int vkr_buf_invalidate(struct vkr_ctx *ctx, struct vkr_buf *b);

/* How to cut a row-major matrix of n_rows rows of row_bytes bytes into
 * chunks of whole rows so that no chunk exceeds max_range (one binding) or
 * max_alloc (one allocation). Gives rows per chunk (the last chunk may be
 * shorter) and the number of chunks (>= 1); -E2BIG when one row alone does
 * not fit. Pure: tested with fake limits. */
int vkr_split_rows(uint64_t n_rows, uint64_t row_bytes, uint64_t max_range, uint64_t max_alloc,
                   uint64_t *ret_rows_per_chunk, uint64_t *ret_n_chunks);
/* Largest binding this device takes (min of maxStorageBufferRange and
 * maxMemoryAllocationSize), or an override set for tests. */
uint64_t vkr_max_binding(const struct vkr_ctx *ctx);
void vkr_set_max_binding_override(struct vkr_ctx *ctx, uint64_t bytes);

/* A row-major matrix stored as chunks of whole rows, each chunk its own
 * buffer within vkr_max_binding(): how weights bigger than one binding (a
 * 32000 x 4096 embedding on a 128 MiB-limit device) are held. */
#define VKR_MAX_CHUNKS 64

struct vkr_rows {
    uint64_t n_rows, row_bytes;
    uint64_t rows_per_chunk;
    uint32_t n_chunks;
    struct vkr_buf chunk[VKR_MAX_CHUNKS];
};

/* Batched uploads. Between vkr_upload_begin and vkr_upload_end, an upload
 * into a device-local buffer (vkr_buf_upload, vkr_rows_upload*) returns as
 * soon as its bytes are in a staging buffer: the copy runs on the device
 * while the host fills the next of a ring of staging buffers, instead of
 * one submit-and-wait per 16 MiB. vkr_upload_end waits for every copy and
 * frees the ring; until then the GPU must not read the uploaded buffers.
 * Downloads wait for the copies first. Outside a batch uploads are
 * synchronous. Model loading wraps its weights in one batch. */
int vkr_upload_begin(struct vkr_ctx *ctx);
int vkr_upload_end(struct vkr_ctx *ctx);

/* Device-local chunks for n_rows x row_bytes, contents undefined. */
int vkr_rows_alloc(struct vkr_ctx *ctx, uint64_t n_rows, uint64_t row_bytes, struct vkr_rows *ret);
/* Rows first..first+n_rows of the matrix from host data, across chunks. */
int vkr_rows_write(struct vkr_ctx *ctx, struct vkr_rows *r, uint64_t first, const void *data,
                   uint64_t n_rows);
/* Upload n_rows x row_bytes of host data into device-local chunks. */
int vkr_rows_upload(struct vkr_ctx *ctx, const void *data, uint64_t n_rows, uint64_t row_bytes,
                    struct vkr_rows *ret);
/* The same, with each chunk's rows passed through xform(arg, src, n_rows,
 * row_bytes, dst) into a same-sized host buffer before upload (a layout
 * the kernels prefer; see llama/repack.h). xform returns 0 or -errno. */
typedef int (*vkr_rows_xform)(void *arg, const void *src, uint64_t n_rows, uint64_t row_bytes,
                              void *dst);
int vkr_rows_upload_xform(struct vkr_ctx *ctx, const void *data, uint64_t n_rows,
                          uint64_t row_bytes, vkr_rows_xform xform, void *arg,
                          struct vkr_rows *ret);
/* n_rows rows of unequal sizes, `bytes` in all (a stacked matrix whose
 * parts are in two formats), into one chunk: row_bytes is 0 and the
 * reader finds the parts itself. -E2BIG past vkr_max_binding(). */
int vkr_rows_upload_parts(struct vkr_ctx *ctx, const void *data, uint64_t n_rows, uint64_t bytes,
                          struct vkr_rows *ret);
void vkr_rows_free(struct vkr_ctx *ctx, struct vkr_rows *r);
/* First row and row count of chunk c. */
uint64_t vkr_rows_first(const struct vkr_rows *r, uint32_t c);
uint64_t vkr_rows_count(const struct vkr_rows *r, uint32_t c);

/* ---- Kernels (kernel.c) -------------------------------------------------- */

#define VKR_MAX_BINDINGS 12
#define VKR_MAX_SPEC 16

struct vkr_kernel_desc {
    const char *name; /* for error messages */
    const uint32_t *spirv;
    size_t spirv_bytes;
    uint32_t n_bindings; /* storage buffers 0..n-1 */
    uint32_t push_bytes;
    uint32_t n_spec;
    uint32_t spec[VKR_MAX_SPEC]; /* constant_id i = spec[i] (32-bit values) */
};

struct vkr_kernel {
    const char *name;
    uint32_t n_bindings;
    uint32_t push_bytes;
    VkShaderModule module;
    VkDescriptorSetLayout set_layout;
    VkPipelineLayout layout;
    VkPipeline pipeline;
};

/* Builds the pipeline. The description must agree with the SPIR-V: its
 * push_bytes with the shader's push-constant block (0 when it has none),
 * its n_bindings with the shader's highest binding + 1; else -EINVAL
 * naming the kernel. */
int vkr_kernel_new(struct vkr_ctx *ctx, const struct vkr_kernel_desc *d, struct vkr_kernel *ret);
void vkr_kernel_free(struct vkr_ctx *ctx, struct vkr_kernel *k);
/* A shader's interface read from its SPIR-V (spirv.c): the bytes of its
 * push-constant block (0: none) and its highest storage-buffer binding + 1.
 * 0, -EINVAL for malformed SPIR-V, -ENOMEM. */
int vkr_spirv_interface(const uint32_t *code, size_t bytes, uint32_t *ret_push_bytes,
                        uint32_t *ret_n_bindings);

/* A binding: a buffer range. range 0 means "to the end of the buffer". */
struct vkr_binding {
    const struct vkr_buf *buf;
    VkDeviceSize offset;
    VkDeviceSize range;
};

/* Descriptor sets come from a pool sized once at load time and are never
 * reallocated on the per-token path. */
struct vkr_set_pool {
    VkDescriptorPool pool;
    uint32_t cap, used;
};
int vkr_set_pool_new(struct vkr_ctx *ctx, uint32_t max_sets, uint32_t max_buffers,
                     struct vkr_set_pool *ret);
void vkr_set_pool_free(struct vkr_ctx *ctx, struct vkr_set_pool *p);
int vkr_set_new(struct vkr_ctx *ctx, struct vkr_set_pool *p, const struct vkr_kernel *k,
                const struct vkr_binding *b, uint32_t n, VkDescriptorSet *ret);

/* ---- Commands (cmd.c) ---------------------------------------------------- */

struct vkr_cmd {
    VkCommandBuffer cb;
    VkFence fence;
    VkQueryPool queries;
    uint32_t n_queries_cap, n_queries_used;
    uint32_t n_dispatch; /* dispatches recorded since vkr_cmd_begin */
    bool recording;
};

int vkr_cmd_new(struct vkr_ctx *ctx, uint32_t max_timestamps, struct vkr_cmd *ret);
void vkr_cmd_free(struct vkr_ctx *ctx, struct vkr_cmd *c);
int vkr_cmd_begin(struct vkr_ctx *ctx, struct vkr_cmd *c);
void vkr_cmd_dispatch(struct vkr_cmd *c, const struct vkr_kernel *k, VkDescriptorSet set,
                      const void *push, uint32_t gx, uint32_t gy, uint32_t gz);
/* A dispatch whose size the device reads from `args` at `offset` (a
 * VkDispatchIndirectCommand the host writes before the submit), so that
 * a recorded command buffer can serve work of varying size. */
void vkr_cmd_dispatch_indirect(struct vkr_cmd *c, const struct vkr_kernel *k, VkDescriptorSet set,
                               const void *push, const struct vkr_buf *args, VkDeviceSize offset);
/* Full compute→compute (and transfer) memory barrier. */
void vkr_cmd_barrier(struct vkr_cmd *c);
void vkr_cmd_copy(struct vkr_cmd *c, const struct vkr_buf *src, const struct vkr_buf *dst,
                  const VkBufferCopy *regions, uint32_t n);
/* Records a timestamp; returns its index, or -1 when timestamps are off. */
int vkr_cmd_timestamp(struct vkr_ctx *ctx, struct vkr_cmd *c);
/* End, submit, wait on the fence (spinning briefly before sleeping). */
int vkr_cmd_submit_wait(struct vkr_ctx *ctx, struct vkr_cmd *c);
/* The same in two halves, so that the host can work (record the next
 * command buffer) while the GPU runs this one. */
int vkr_cmd_submit(struct vkr_ctx *ctx, struct vkr_cmd *c);
/* Ends recording (submit does it when not done yet): a command buffer
 * recorded ahead waits, ended, until it is submitted or begun again. */
int vkr_cmd_end(struct vkr_ctx *ctx, struct vkr_cmd *c);
int vkr_cmd_wait(struct vkr_ctx *ctx, struct vkr_cmd *c);
/* Nanoseconds between timestamps a and b of the last submission. */
int vkr_cmd_elapsed_ns(struct vkr_ctx *ctx, struct vkr_cmd *c, int a, int b, double *ret_ns);

/* Shorthand for "set ctx->err from a failed call and return its errno". */
int vkr_fail(struct vkr_ctx *ctx, VkResult r, const char *what);

#endif
