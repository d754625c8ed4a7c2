/* vk/spirv.c: a shader's push-block size and binding count read from the
 * embedded SPIR-V, as vkr_kernel_new checks every host description
 * against them. Expected values are the shaders' own declarations. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "shaders/shaders.h"
#include "vk/vkr.h"

static void expect(const uint32_t *code, size_t bytes, uint32_t push, uint32_t bindings)
{
    uint32_t p = 99, b = 99;
    assert_int_equal(vkr_spirv_interface(code, bytes, &p, &b), 0);
    assert_int_equal(p, push);
    assert_int_equal(b, bindings);
}

static void test_shaders(void **state)
{
    (void)state;
    expect(lade_spv_add, lade_spv_add_bytes, 4, 3);
    expect(lade_spv_embed, lade_spv_embed_bytes, 20, 5);
    expect(lade_spv_rmsnorm, lade_spv_rmsnorm_bytes, 12, 4);
    expect(lade_spv_rope_kv, lade_spv_rope_kv_bytes, 28, 6);
    expect(lade_spv_attention, lade_spv_attention_bytes, 28, 6);
    expect(lade_spv_attn_merge, lade_spv_attn_merge_bytes, 12, 3);
    expect(lade_spv_swiglu, lade_spv_swiglu_bytes, 8, 1);
    expect(lade_spv_argmax, lade_spv_argmax_bytes, 4, 2);
    expect(lade_spv_draw, lade_spv_draw_bytes, 8, 3);
    expect(lade_spv_penalty, lade_spv_penalty_bytes, 12, 2);
    expect(lade_spv_topk, lade_spv_topk_bytes, 4, 3);
    expect(lade_spv_kv_commit, lade_spv_kv_commit_bytes, 4, 3);
    expect(lade_spv_matmul, lade_spv_matmul_bytes, 56, 10);
    expect(lade_spv_matmul_cm, lade_spv_matmul_cm_bytes, 56, 10);
    expect(lade_spv_matmul_q8, lade_spv_matmul_q8_bytes, 56, 10);
    expect(lade_spv_matmul_q8_sdot, lade_spv_matmul_q8_sdot_bytes, 56, 10);
    expect(lade_spv_bias, lade_spv_bias_bytes, 8, 2);
    expect(lade_spv_qk_norm, lade_spv_qk_norm_bytes, 16, 4);
}

/* Truncated, wrong magic, an instruction claiming more words than are
 * left, a zero word count: refused, never read past the end. */
static void test_malformed(void **state)
{
    (void)state;
    uint32_t p, b;
    assert_int_equal(vkr_spirv_interface(lade_spv_add, 12, &p, &b), -EINVAL);
    uint32_t bad[64];
    memcpy(bad, lade_spv_add, sizeof(bad));
    bad[0] = 0x12345678u;
    assert_int_equal(vkr_spirv_interface(bad, sizeof(bad), &p, &b), -EINVAL);
    memcpy(bad, lade_spv_add, sizeof(bad));
    bad[5] = (1000u << 16) | 17u;
    assert_int_equal(vkr_spirv_interface(bad, sizeof(bad), &p, &b), -EINVAL);
    bad[5] = 17u;
    assert_int_equal(vkr_spirv_interface(bad, sizeof(bad), &p, &b), -EINVAL);
    memcpy(bad, lade_spv_add, sizeof(bad));
    bad[3] = 0xffffffffu; /* an id bound past any real module */
    assert_int_equal(vkr_spirv_interface(bad, sizeof(bad), &p, &b), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shaders),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
