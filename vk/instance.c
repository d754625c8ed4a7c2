/* Vulkan instance, the validation layer and its messenger, VkResult names. */
#include "vk/vkr.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_uint validation_count;

unsigned vkr_validation_messages(void)
{
    return atomic_load(&validation_count);
}

const char *vkr_result_name(VkResult r)
{
    switch (r) {
#define N(x) case x: return #x
    N(VK_SUCCESS); N(VK_NOT_READY); N(VK_TIMEOUT); N(VK_EVENT_SET); N(VK_EVENT_RESET);
    N(VK_INCOMPLETE); N(VK_ERROR_OUT_OF_HOST_MEMORY); N(VK_ERROR_OUT_OF_DEVICE_MEMORY);
    N(VK_ERROR_INITIALIZATION_FAILED); N(VK_ERROR_DEVICE_LOST); N(VK_ERROR_MEMORY_MAP_FAILED);
    N(VK_ERROR_LAYER_NOT_PRESENT); N(VK_ERROR_EXTENSION_NOT_PRESENT); N(VK_ERROR_FEATURE_NOT_PRESENT);
    N(VK_ERROR_INCOMPATIBLE_DRIVER); N(VK_ERROR_TOO_MANY_OBJECTS); N(VK_ERROR_FORMAT_NOT_SUPPORTED);
    N(VK_ERROR_FRAGMENTED_POOL); N(VK_ERROR_UNKNOWN); N(VK_ERROR_OUT_OF_POOL_MEMORY);
    N(VK_ERROR_INVALID_EXTERNAL_HANDLE); N(VK_ERROR_FRAGMENTATION);
    N(VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS); N(VK_PIPELINE_COMPILE_REQUIRED);
#undef N
    default: return "VK_RESULT_UNKNOWN";
    }
}

int vkr_errno(VkResult r)
{
    switch (r) {
    case VK_SUCCESS: return 0;
    case VK_ERROR_OUT_OF_HOST_MEMORY:
    case VK_ERROR_OUT_OF_DEVICE_MEMORY:
    case VK_ERROR_OUT_OF_POOL_MEMORY:
    case VK_ERROR_FRAGMENTED_POOL:
    case VK_ERROR_FRAGMENTATION:
    case VK_ERROR_TOO_MANY_OBJECTS: return -ENOMEM;
    case VK_ERROR_DEVICE_LOST: return -ENODEV;
    case VK_ERROR_INCOMPATIBLE_DRIVER: return -ENXIO;
    case VK_ERROR_LAYER_NOT_PRESENT:
    case VK_ERROR_EXTENSION_NOT_PRESENT:
    case VK_ERROR_FEATURE_NOT_PRESENT:
    case VK_ERROR_FORMAT_NOT_SUPPORTED: return -ENOTSUP;
    case VK_TIMEOUT: return -ETIMEDOUT;
    default: return -EIO;
    }
}

int vkr_fail(struct vkr_ctx *ctx, VkResult r, const char *what)
{
    ctx->last_result = r;
    snprintf(ctx->err, sizeof(ctx->err), "%s failed: %s (%d)", what, vkr_result_name(r), (int)r);
    return vkr_errno(r);
}

/* Every warning or error of the validation layer is a bug in lade: print it
 * whole (the layer's text names the VUID) and count it. Under ctest
 * (LADE_VALIDATION=1) abort at once so the offending test cannot pass. */
VkDebugUtilsMessengerCreateInfoEXT vkr_messenger_info(PFN_vkDebugUtilsMessengerCallbackEXT cb)
{
    return (VkDebugUtilsMessengerCreateInfoEXT){
        .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
        .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
                           VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
        .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
        .pfnUserCallback = cb,
    };
}

static VKAPI_ATTR VkBool32 VKAPI_CALL on_validation(VkDebugUtilsMessageSeverityFlagBitsEXT sev,
                                                    VkDebugUtilsMessageTypeFlagsEXT type,
                                                    const VkDebugUtilsMessengerCallbackDataEXT *data,
                                                    void *user)
{
    if (!(sev & (VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT)))
        return VK_FALSE;
    atomic_fetch_add(&validation_count, 1);
    fprintf(stderr, "<3>vulkan validation %s: %s\n",
            (sev & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT) ? "error" : "warning",
            data && data->pMessage ? data->pMessage : "(no message)");
    const char *fatal = getenv("LADE_VALIDATION");
    if (fatal && strcmp(fatal, "1") == 0)
        abort();
    return VK_FALSE;
}

static bool has_layer(const char *name)
{
    uint32_t n = 0;
    if (vkEnumerateInstanceLayerProperties(&n, NULL) != VK_SUCCESS || n == 0)
        return false;
    VkLayerProperties *p = calloc(n, sizeof(*p));
    if (!p)
        return false;
    bool found = false;
    if (vkEnumerateInstanceLayerProperties(&n, p) == VK_SUCCESS)
        for (uint32_t i = 0; i < n && !found; i++)
            found = strcmp(p[i].layerName, name) == 0;
    free(p);
    return found;
}

static bool has_instance_ext(const char *name)
{
    uint32_t n = 0;
    if (vkEnumerateInstanceExtensionProperties(NULL, &n, NULL) != VK_SUCCESS || n == 0)
        return false;
    VkExtensionProperties *p = calloc(n, sizeof(*p));
    if (!p)
        return false;
    bool found = false;
    if (vkEnumerateInstanceExtensionProperties(NULL, &n, p) == VK_SUCCESS)
        for (uint32_t i = 0; i < n && !found; i++)
            found = strcmp(p[i].extensionName, name) == 0;
    free(p);
    return found;
}

int vkr_instance_new(bool validation, VkInstance *ret_instance, VkDebugUtilsMessengerEXT *ret_messenger,
                     char *reterr, size_t errlen)
{
    const char *env = getenv("LADE_VALIDATION");
    if (env && strcmp(env, "0") != 0 && env[0])
        validation = true;
    *ret_instance = VK_NULL_HANDLE;
    *ret_messenger = VK_NULL_HANDLE;
    if (validation && !has_layer("VK_LAYER_KHRONOS_validation")) {
        snprintf(reterr, errlen, "validation requested but VK_LAYER_KHRONOS_validation is not installed (Debian: vulkan-validationlayers)");
        return -ENOTSUP;
    }
    const char *exts[3];
    uint32_t n_ext = 0;
    VkInstanceCreateFlags flags = 0;
    if (has_instance_ext(VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME)) {
        exts[n_ext++] = VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME;
        flags |= VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR;
    }
    if (validation)
        exts[n_ext++] = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
    const char *layers[] = {"VK_LAYER_KHRONOS_validation"};
    VkApplicationInfo app = {
        .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
        .pApplicationName = "lade",
        .applicationVersion = VK_MAKE_VERSION(0, 1, 0),
        .pEngineName = "lade",
        .apiVersion = VK_API_VERSION_1_3, /* effective: min(this, device) */
    };
    VkDebugUtilsMessengerCreateInfoEXT dbg = vkr_messenger_info(on_validation);
    VkInstanceCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
        .pNext = validation ? &dbg : NULL, /* also catches create/destroy of the instance */
        .flags = flags,
        .pApplicationInfo = &app,
        .enabledLayerCount = validation ? 1 : 0,
        .ppEnabledLayerNames = layers,
        .enabledExtensionCount = n_ext,
        .ppEnabledExtensionNames = exts,
    };
    VkResult r = vkCreateInstance(&ci, NULL, ret_instance);
    if (r != VK_SUCCESS) {
        snprintf(reterr, errlen, "vkCreateInstance failed: %s (%d)%s", vkr_result_name(r), (int)r,
                 r == VK_ERROR_INCOMPATIBLE_DRIVER ? ": no Vulkan driver (install mesa-vulkan-drivers or the GPU's driver)" : "");
        *ret_instance = VK_NULL_HANDLE;
        return vkr_errno(r);
    }
    if (validation) {
        PFN_vkCreateDebugUtilsMessengerEXT create = (PFN_vkCreateDebugUtilsMessengerEXT)
            vkGetInstanceProcAddr(*ret_instance, "vkCreateDebugUtilsMessengerEXT");
        r = create ? create(*ret_instance, &dbg, NULL, ret_messenger) : VK_ERROR_EXTENSION_NOT_PRESENT;
        if (r != VK_SUCCESS) {
            snprintf(reterr, errlen, "vkCreateDebugUtilsMessengerEXT failed: %s", vkr_result_name(r));
            vkDestroyInstance(*ret_instance, NULL);
            *ret_instance = VK_NULL_HANDLE;
            return vkr_errno(r);
        }
    }
    return 0;
}

void vkr_instance_free(VkInstance instance, VkDebugUtilsMessengerEXT messenger)
{
    if (!instance)
        return;
    if (messenger) {
        PFN_vkDestroyDebugUtilsMessengerEXT destroy = (PFN_vkDestroyDebugUtilsMessengerEXT)
            vkGetInstanceProcAddr(instance, "vkDestroyDebugUtilsMessengerEXT");
        if (destroy)
            destroy(instance, messenger, NULL);
    }
    vkDestroyInstance(instance, NULL);
}

int vkr_enumerate(VkInstance instance, struct vkr_device_info **ret_list, uint32_t *ret_n)
{
    uint32_t n = 0;
    VkResult r = vkEnumeratePhysicalDevices(instance, &n, NULL);
    if (r != VK_SUCCESS)
        return vkr_errno(r);
    *ret_list = NULL;
    *ret_n = 0;
    if (n == 0)
        return 0;
    VkPhysicalDevice *pds = calloc(n, sizeof(*pds));
    struct vkr_device_info *list = calloc(n, sizeof(*list));
    if (!pds || !list) {
        free(pds);
        free(list);
        return -ENOMEM;
    }
    r = vkEnumeratePhysicalDevices(instance, &n, pds);
    int err = r == VK_SUCCESS || r == VK_INCOMPLETE ? 0 : vkr_errno(r);
    for (uint32_t i = 0; i < n && !err; i++)
        err = vkr_device_info_query(instance, pds[i], i, &list[i]);
    free(pds);
    if (err) {
        free(list);
        return err;
    }
    *ret_list = list;
    *ret_n = n;
    return 0;
}
