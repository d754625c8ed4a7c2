/* vkr_device_info_print on synthetic infos: what lade-info shows for a
 * device it cannot run here (an H100-like GPU, a device without compute).
 * vkr_device_info_query itself needs a device: lade-info runs it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vk/vkr.h"

static char *print(const struct vkr_device_info *d)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    assert_non_null(f);
    vkr_device_info_print(d, f);
    assert_int_equal(fclose(f), 0);
    return buf;
}

#define assert_has(text, s) assert_non_null(strstr((text), (s)))

static struct vkr_device_info gpu(void)
{
    struct vkr_device_info d = {
        .name = "NVIDIA H100 80GB HBM3",
        .type = VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU,
        .vendor_id = 0x10de,
        .device_id = 0x2330,
        .api_version = VK_MAKE_API_VERSION(0, 1, 4, 312),
        .driver_version = (580u << 22) | (159u << 14) | (4u << 6),
        .driver_name = "NVIDIA",
        .driver_info = "580.159.04",
        .max_storage_buffer_range = 0xffffffffu,
        .max_compute_shared_memory = 48 * 1024,
        .has_timestamps = true,
        .timestamp_valid_bits = 64,
        .timestamp_period_ns = 1.0f,
        .subgroup_size = 32,
        .min_subgroup_size = 32,
        .max_subgroup_size = 32,
        .subgroup_size_control = true,
        .subgroup_ops = VK_SUBGROUP_FEATURE_BASIC_BIT | VK_SUBGROUP_FEATURE_SHUFFLE_BIT,
        .storage_buffer_16bit = true,
        .integer_dot_product = true,
        .memory_budget = true,
        .cooperative_matrix = true,
        .n_coopmat_shapes = 2,
        .coopmat_shapes = { { 16, 16, 16, VK_COMPONENT_TYPE_FLOAT16_KHR,
                              VK_COMPONENT_TYPE_FLOAT16_KHR, VK_COMPONENT_TYPE_FLOAT32_KHR,
                              VK_COMPONENT_TYPE_FLOAT32_KHR, VK_SCOPE_SUBGROUP_KHR },
                            { 16, 8, 32, VK_COMPONENT_TYPE_SINT8_KHR, VK_COMPONENT_TYPE_SINT8_KHR,
                              VK_COMPONENT_TYPE_SINT32_KHR, VK_COMPONENT_TYPE_SINT32_KHR,
                              VK_SCOPE_SUBGROUP_KHR } },
        .device_local_bytes = 80ull << 30,
        .device_local_budget = 79ull << 30,
        .compute_queue_family = 2,
        .n_heaps = 2,
        .heaps = { { 80ull << 30, 79ull << 30, true },
                   { (94ull << 30) + (400ull << 20), 94ull << 30, false } },
    };
    return d;
}

static void test_print_gpu(void **state)
{
    struct vkr_device_info d = gpu();
    char *t;

    /* VK_COMPONENT_TYPE_BFLOAT16_KHR, newer than the headers */
    d.coopmat_shapes[2] = d.coopmat_shapes[0];
    d.coopmat_shapes[2].a = d.coopmat_shapes[2].b = (VkComponentTypeKHR)1000141000;
    d.coopmat_shapes[2].scope = VK_SCOPE_WORKGROUP_KHR;
    d.n_coopmat_shapes = 3;
    t = print(&d);
    assert_has(t, "device 0: NVIDIA H100 80GB HBM3\n");
    assert_has(t, "discrete GPU, vendor 0x10de, device 0x2330");
    assert_has(t, "NVIDIA: 580.159.04, version 580.159.4\n");
    assert_has(t, "Vulkan         1.4.312\n");
    assert_has(t, "family 2, timestamps 64 bits, 1 ns per tick");
    assert_has(t, "storage buffer range 4.0 GiB");
    assert_has(t, "shared memory 48.0 KiB");
    assert_has(t, "size 32, size control 32..32; compute ops: basic shuffle\n");
    assert_has(t, "16-bit storage yes, 8-bit storage no");
    assert_has(t, "coop matrix    3 shapes");
    assert_has(t, "16x16x16 f16*f16+f32=f32, subgroup\n");
    assert_has(t, "16x8x32 s8*s8+s32=s32, subgroup\n");
    assert_has(t, "16x16x16 bf16*bf16+f32=f32, workgroup\n");
    assert_has(t, "heap 0: 80.0 GiB device-local, budget 79.0 GiB\n");
    assert_has(t, "heap 1: 94.4 GiB, budget 94.0 GiB\n");
    free(t);
}

static void test_print_unusable(void **state)
{
    struct vkr_device_info d = gpu();
    char *t;

    d.index = 3;
    d.vendor_id = 0x1002;
    d.driver_version = VK_MAKE_API_VERSION(0, 2, 0, 301);
    d.compute_queue_family = UINT32_MAX;
    d.cooperative_matrix = false;
    d.subgroup_size_control = false;
    d.subgroup_ops = 0;
    d.memory_budget = false;
    t = print(&d);
    assert_has(t, "device 3: ");
    assert_has(t, ", version 2.0.301\n");
    assert_has(t, "compute queue  none (lade cannot use this device)\n");
    assert_has(t, "no size control; compute ops: none\n");
    assert_has(t, "coop matrix    no\n");
    assert_has(t, "(no budget ext)\n");
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_print_gpu),
        cmocka_unit_test(test_print_unusable),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
