/* vkr_select_device on synthetic device lists: the ranking policy, explicit
 * choices by index and by name, and the reasons it gives. No GPU needed. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "vk/vkr.h"

#define GIB (1ull << 30)

static struct vkr_device_info dev(uint32_t index, const char *name, VkPhysicalDeviceType type,
                                  uint64_t local_bytes)
{
    struct vkr_device_info d;

    memset(&d, 0, sizeof(d));
    d.index = index;
    snprintf(d.name, sizeof(d.name), "%s", name);
    d.type = type;
    d.device_local_bytes = local_bytes;
    d.compute_queue_family = 0;
    return d;
}

static struct vkr_device_info no_compute(struct vkr_device_info d)
{
    d.compute_queue_family = UINT32_MAX;
    return d;
}

static char reason[256];

static int pick(const struct vkr_device_info *list, uint32_t n, const char *want)
{
    memset(reason, 'x', sizeof(reason));
    return vkr_select_device(list, n, want, reason, sizeof(reason));
}

#define assert_reason_has(s) assert_non_null(strstr(reason, (s)))

static void test_type_order(void **state)
{
    const VkPhysicalDeviceType order[] = {
        VK_PHYSICAL_DEVICE_TYPE_OTHER,        VK_PHYSICAL_DEVICE_TYPE_CPU,
        VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU,  VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU,
        VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU,
    };

    /* Every pair, both list orders, the lower-ranked type with more memory:
     * the type alone decides. */
    for (int lo = 0; lo < 5; lo++) {
        for (int hi = lo + 1; hi < 5; hi++) {
            struct vkr_device_info l[2] = { dev(0, "low", order[lo], 64 * GIB),
                                            dev(1, "high", order[hi], 1 * GIB) };
            struct vkr_device_info r[2] = { dev(0, "high", order[hi], 1 * GIB),
                                            dev(1, "low", order[lo], 64 * GIB) };

            assert_int_equal(pick(l, 2, NULL), 1);
            assert_reason_has("'high'");
            assert_reason_has(vkr_device_type_name(order[hi]));
            assert_int_equal(pick(r, 2, ""), 0);
            assert_reason_has("chose 0 'high'");
        }
    }
}

static void test_full_ranking(void **state)
{
    struct vkr_device_info l[5] = {
        dev(0, "cpu", VK_PHYSICAL_DEVICE_TYPE_CPU, 8 * GIB),
        dev(1, "other", VK_PHYSICAL_DEVICE_TYPE_OTHER, 8 * GIB),
        dev(2, "igpu", VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU, 8 * GIB),
        dev(3, "dgpu", VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU, 8 * GIB),
        dev(4, "vgpu", VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU, 8 * GIB),
    };

    assert_int_equal(pick(l, 5, NULL), 3);
    assert_string_equal(reason, "chose 3 'dgpu' (discrete GPU, 8.0 GiB): highest ranked of 5");
    l[3] = no_compute(l[3]);
    assert_int_equal(pick(l, 5, NULL), 2);
    assert_reason_has("'igpu' (integrated GPU");
    assert_reason_has("(1 without a compute queue)");
    l[2] = no_compute(l[2]);
    assert_int_equal(pick(l, 5, NULL), 4);
    l[4] = no_compute(l[4]);
    assert_int_equal(pick(l, 5, NULL), 0);
    l[0] = no_compute(l[0]);
    assert_int_equal(pick(l, 5, NULL), 1);
    assert_reason_has("'other' (other,");
}

static void test_ties(void **state)
{
    struct vkr_device_info mem[3] = {
        dev(0, "small", VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU, 8 * GIB),
        dev(1, "big", VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU, 80 * GIB),
        dev(2, "mid", VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU, 24 * GIB),
    };
    struct vkr_device_info same[3] = {
        dev(0, "a", VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU, 8 * GIB),
        dev(1, "b", VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU, 8 * GIB),
        dev(2, "c", VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU, 8 * GIB),
    };
    /* Same index order tie-break even when the list is not in index order. */
    struct vkr_device_info shuffled[2] = {
        dev(5, "later", VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU, 2 * GIB),
        dev(3, "earlier", VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU, 2 * GIB),
    };

    assert_int_equal(pick(mem, 3, NULL), 1);
    assert_string_equal(reason, "chose 1 'big' (discrete GPU, 80.0 GiB): highest ranked of 3");
    assert_int_equal(pick(same, 3, NULL), 0);
    assert_int_equal(pick(shuffled, 2, NULL), 1);
    assert_reason_has("chose 3 'earlier'");
}

static void test_single_and_empty(void **state)
{
    struct vkr_device_info one =
            dev(0, "llvmpipe (LLVM 15.0.6, 256 bits)", VK_PHYSICAL_DEVICE_TYPE_CPU, 512ull << 20);

    assert_int_equal(pick(&one, 1, NULL), 0);
    assert_string_equal(reason, "chose 0 'llvmpipe (LLVM 15.0.6, 256 bits)' (CPU, 512.0 MiB): "
                                "the only device");
    assert_int_equal(pick(NULL, 0, NULL), -ENODEV);
    assert_string_equal(reason, "no Vulkan device found");
    assert_int_equal(pick(&one, 0, "0"), -ENODEV);
    assert_int_equal(pick(NULL, 3, NULL), -ENODEV);
}

static void test_no_compute(void **state)
{
    struct vkr_device_info l[2] = {
        no_compute(dev(0, "display only", VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU, 16 * GIB)),
        no_compute(dev(1, "video only", VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU, 1 * GIB)),
    };

    assert_int_equal(pick(l, 2, NULL), -ENODEV);
    assert_string_equal(reason, "none of the 2 Vulkan devices has a compute queue");
    assert_int_equal(pick(l, 2, "0"), -ENODEV);
    assert_string_equal(reason, "device 0 'display only' has no compute queue");
    assert_int_equal(pick(l, 2, "video"), -ENODEV);
    assert_reason_has("'video' matches 1 device, none with a compute queue");
    assert_int_equal(pick(l, 2, "only"), -ENODEV);
    assert_reason_has("matches 2 devices");
}

static void test_index(void **state)
{
    struct vkr_device_info l[3] = {
        dev(0, "NVIDIA H100 80GB HBM3", VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU, 80 * GIB),
        dev(1, "llvmpipe", VK_PHYSICAL_DEVICE_TYPE_CPU, 16 * GIB),
        no_compute(dev(2, "odd", VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU, 1 * GIB)),
    };

    /* An explicit index overrides the ranking. */
    assert_int_equal(pick(l, 3, "1"), 1);
    assert_string_equal(reason, "chose 1 'llvmpipe' (CPU, 16.0 GiB): asked for device 1");
    assert_int_equal(pick(l, 3, "0"), 0);
    assert_reason_has("'NVIDIA H100 80GB HBM3'");
    assert_int_equal(pick(l, 3, "00"), 0);
    assert_int_equal(pick(l, 3, "3"), -ENOENT);
    assert_string_equal(reason, "no device 3 among the 3 Vulkan devices");
    assert_int_equal(pick(l, 3, "99999999999999999999999"), -ENOENT);
    assert_int_equal(pick(l, 3, "4294967295"), -ENOENT);
    assert_int_equal(pick(l, 3, "2"), -ENODEV);
}

static void test_index_malformed(void **state)
{
    struct vkr_device_info l[2] = {
        dev(0, "1x card", VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU, 8 * GIB),
        dev(1, "b", VK_PHYSICAL_DEVICE_TYPE_CPU, 8 * GIB),
    };
    const char *bad[] = { "-1", "+1", "-", "1x", "1 ", "0x1", "1.0", "1e3" };

    /* Starting with a digit or sign makes it an index, even where a name
     * ("1x card") would have matched. */
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(pick(l, 2, bad[i]), -EINVAL);
        assert_reason_has(bad[i]);
        assert_reason_has("not a device index");
    }
}

static void test_name(void **state)
{
    struct vkr_device_info l[4] = {
        dev(0, "llvmpipe (LLVM 15.0.6, 256 bits)", VK_PHYSICAL_DEVICE_TYPE_CPU, 16 * GIB),
        dev(1, "NVIDIA GeForce RTX 3060", VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU, 12 * GIB),
        dev(2, "NVIDIA H100 80GB HBM3", VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU, 80 * GIB),
        dev(3, "Intel(R) UHD Graphics 770", VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU, 8 * GIB),
    };

    assert_int_equal(pick(l, 4, "LLVMPIPE"), 0);
    assert_string_equal(reason, "chose 0 'llvmpipe (LLVM 15.0.6, 256 bits)' (CPU, 16.0 GiB): "
                                "name matches 'LLVMPIPE'");
    assert_int_equal(pick(l, 4, "intel"), 3);
    assert_int_equal(pick(l, 4, "rtx 30"), 1);
    assert_int_equal(pick(l, 4, "s)"), 0);
    /* Several matches: the best ranked of them, as automatic choice would. */
    assert_int_equal(pick(l, 4, "nvidia"), 2);
    assert_reason_has("chose 2 'NVIDIA H100 80GB HBM3'");
    assert_reason_has("highest ranked of 2 devices whose name matches 'nvidia'");
    assert_int_equal(pick(l, 4, "G"), 2);
    assert_reason_has("of 3 devices");
}

static void test_name_no_match(void **state)
{
    struct vkr_device_info l[2] = {
        dev(0, "llvmpipe", VK_PHYSICAL_DEVICE_TYPE_CPU, 16 * GIB),
        dev(1, "Radeon", VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU, 16 * GIB),
    };

    assert_int_equal(pick(l, 2, "geforce"), -ENOENT);
    assert_string_equal(reason, "no device name contains 'geforce'; devices: 0 'llvmpipe', "
                                "1 'Radeon'");
    assert_int_equal(pick(l, 2, "radeonx"), -ENOENT);
}

/* A short buffer is truncated and terminated; no buffer is fine. */
static void test_reason_buffer(void **state)
{
    struct vkr_device_info l[1] = { dev(0, "a very long device name", VK_PHYSICAL_DEVICE_TYPE_CPU,
                                        GIB) };
    char small[12];

    memset(small, 'x', sizeof(small));
    assert_int_equal(vkr_select_device(l, 1, NULL, small, sizeof(small)), 0);
    assert_string_equal(small, "chose 0 'a ");
    assert_int_equal(vkr_select_device(l, 1, NULL, NULL, 0), 0);
    assert_int_equal(vkr_select_device(l, 1, "zzz", NULL, 0), -ENOENT);
    small[0] = 'x';
    assert_int_equal(vkr_select_device(l, 1, NULL, small, 1), 0);
    assert_int_equal(small[0], '\0');
}

static void test_type_names(void **state)
{
    assert_string_equal(vkr_device_type_name(VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU), "discrete GPU");
    assert_string_equal(vkr_device_type_name(VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU),
                        "integrated GPU");
    assert_string_equal(vkr_device_type_name(VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU), "virtual GPU");
    assert_string_equal(vkr_device_type_name(VK_PHYSICAL_DEVICE_TYPE_CPU), "CPU");
    assert_string_equal(vkr_device_type_name(VK_PHYSICAL_DEVICE_TYPE_OTHER), "other");
    assert_string_equal(vkr_device_type_name((VkPhysicalDeviceType)77), "other");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_order),
        cmocka_unit_test(test_full_ranking),
        cmocka_unit_test(test_ties),
        cmocka_unit_test(test_single_and_empty),
        cmocka_unit_test(test_no_compute),
        cmocka_unit_test(test_index),
        cmocka_unit_test(test_index_malformed),
        cmocka_unit_test(test_name),
        cmocka_unit_test(test_name_no_match),
        cmocka_unit_test(test_reason_buffer),
        cmocka_unit_test(test_type_names),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
