/* llama/dequant.c against ggml's own dequantisation of the kernelc-22m
 * conformance fixtures (*.dequant.bin, format in ../shared/models/README.md),
 * against hand-encoded blocks for the types the fixtures do not contain, and
 * the half-precision conversions on every 16-bit pattern.
 *
 * Tolerance for the fixture rows: none, bit-for-bit equality. dequant.c
 * evaluates each value with ggml's operations in ggml's order (for Q4_K
 * (d * scale) * q - (dmin * min), for Q6_K (d * scale) * q), the products of
 * a small integer and an f16 value are exact in binary32, and so the only
 * legitimate difference would be a ggml build that contracts `a * q - m`
 * into one fused multiply-add (one rounding of the last operation). The
 * fixtures show no such difference, so none is allowed: a shader author can
 * rely on these rows as exact references.
 * Sum and sum of squares over every value of a tensor are compared in double
 * with a relative tolerance of 1e-9 of the sum of magnitudes: the order of
 * summation (ggml's is not recorded) moves a double sum of ~2M floats by
 * ~1e-13 relative, while one value off by one float unit moves it by ~1e-7
 * of that value, so the check also catches wrong rows that were not sampled.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "llama/dequant.h"
#include "llama/gguf.h"

static uint32_t fbits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bitsf(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ---- f16 / bf16 ---------------------------------------------------------- */

static int is_f16_nan(uint16_t h)
{
    return (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
}

static void test_f16_roundtrip_all(void **state)
{
    for (uint32_t h = 0; h < 65536; h++) {
        float f = llm_f16_to_f32((uint16_t)h);
        uint16_t back = llm_f32_to_f16(f);
        if (is_f16_nan((uint16_t)h)) {
            assert_true(isnan(f));
            assert_true(is_f16_nan(back));
        }
        /* NaN payloads survive too: f16 payload bits land in the top of the
         * f32 payload and come back unchanged. */
        if (back != h)
            fail_msg("f16 0x%04x -> %a -> 0x%04x", h, (double)f, back);
    }
}

/* Known values, including the extremes of each range. */
static void test_f16_known_values(void **state)
{
    assert_true(llm_f16_to_f32(0x3c00) == 1.0f);
    assert_true(llm_f16_to_f32(0xc000) == -2.0f);
    assert_true(llm_f16_to_f32(0x7bff) == 65504.0f);
    assert_true(llm_f16_to_f32(0x0400) == 0x1p-14f);
    assert_true(llm_f16_to_f32(0x0001) == 0x1p-24f);
    assert_true(llm_f16_to_f32(0x03ff) == 0x3ffp-24f);
    assert_true(isinf(llm_f16_to_f32(0x7c00)));
    assert_true(fbits(llm_f16_to_f32(0x8000)) == 0x80000000u);

    assert_int_equal(llm_f32_to_f16(65504.0f), 0x7bff);
    assert_int_equal(llm_f32_to_f16(65519.99f), 0x7bff); /* below the midpoint to 65536 */
    assert_int_equal(llm_f32_to_f16(65520.0f), 0x7c00); /* tie, even is "65536" = inf */
    assert_int_equal(llm_f32_to_f16(1e10f), 0x7c00);
    assert_int_equal(llm_f32_to_f16(-INFINITY), 0xfc00);
    assert_int_equal(llm_f32_to_f16(0x1p-25f), 0x0000); /* tie with 0, even is 0 */
    assert_int_equal(llm_f32_to_f16(0x1.000002p-25f), 0x0001);
    assert_int_equal(llm_f32_to_f16(0x1.8p-24f), 0x0002); /* 1.5 units, tie to even 2 */
    assert_int_equal(llm_f32_to_f16(0x1p-26f), 0x0000);
    assert_int_equal(llm_f32_to_f16(-0x1p-30f), 0x8000);
    assert_int_equal(llm_f32_to_f16(0x1.ffcp-15f), 0x0400); /* rounds up into the normals */
    assert_true(is_f16_nan(llm_f32_to_f16(bitsf(0x7f800001u)))); /* payload only in low bits */
    assert_true(is_f16_nan(llm_f32_to_f16(NAN)));
}

/* Every midpoint between adjacent finite f16 values rounds to the even one,
 * and one f32 ulp either side of it rounds to the nearer one. Midpoints are
 * exact in f32: f16 has 11 significant bits. */
static void test_f16_midpoints_all(void **state)
{
    for (uint32_t h = 0; h < 0x7bff; h++) {
        for (int neg = 0; neg < 2; neg++) {
            uint16_t lo = (uint16_t)(h | (neg ? 0x8000 : 0));
            uint16_t hi = (uint16_t)((h + 1) | (neg ? 0x8000 : 0));
            float a = llm_f16_to_f32(lo), b = llm_f16_to_f32(hi);
            float mid = (a + b) / 2; /* exact */
            uint16_t even = (lo & 1) ? hi : lo;
            assert_int_equal(llm_f32_to_f16(mid), even);
            assert_int_equal(llm_f32_to_f16(nextafterf(mid, a)), lo);
            assert_int_equal(llm_f32_to_f16(nextafterf(mid, b)), hi);
        }
    }
}

#ifdef __FLT16_MAX__
/* Where the compiler has _Float16 (GCC on x86-64 and arm64), its conversion
 * is an independent oracle for f32 -> f16; every 97th f32 pattern is tried,
 * which covers all exponents and mantissa remainders. */
static void test_f16_against_compiler(void **state)
{
    for (uint64_t u = 0; u <= 0xffffffffu; u += 97) {
        float f = bitsf((uint32_t)u);
        _Float16 c = (_Float16)f;
        uint16_t want;
        memcpy(&want, &c, 2);
        uint16_t got = llm_f32_to_f16(f);
        if (isnan(f))
            assert_true(is_f16_nan(got));
        else if (got != want)
            fail_msg("f32 0x%08x: got 0x%04x, compiler says 0x%04x", (uint32_t)u, got, want);
    }
}
#endif

static void test_bf16(void **state)
{
    for (uint32_t h = 0; h < 65536; h++) {
        float f = llm_bf16_to_f32((uint16_t)h);
        assert_int_equal(fbits(f), h << 16);
        assert_int_equal(llm_f32_to_bf16(f), h);
        /* the midpoint to the next pattern (same sign, finite) ties to even */
        if ((h & 0x7f80) != 0x7f80 && (h & 0x7fff) != 0x7f7f) {
            uint32_t mid = (h << 16) | 0x8000;
            uint16_t even = (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h;
            assert_int_equal(llm_f32_to_bf16(bitsf(mid)), even);
            assert_int_equal(llm_f32_to_bf16(bitsf(mid - 1)), h);
            assert_int_equal(llm_f32_to_bf16(bitsf(mid + 1)), h + 1);
        }
    }
    assert_int_equal(llm_f32_to_bf16(bitsf(0x7f7fffffu)), 0x7f80); /* FLT_MAX rounds to inf */
    assert_true((llm_f32_to_bf16(bitsf(0x7f800001u)) & 0x7f) != 0); /* NaN stays NaN */
    assert_int_equal(llm_f32_to_bf16(bitsf(0xffc00000u)), 0xffc0);
}

/* ---- hand-encoded blocks -------------------------------------------------
 * These write blocks from the layout descriptions (an encoder, the opposite
 * direction from dequant.c) for the types the fixtures lack, and check the
 * decoded values against d * q + m computed here. */

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void test_block_q4_1_q5_0_q5_1(void **state)
{
    uint8_t b4[20] = { 0 }, b5[24] = { 0 }, b50[22] = { 0 };
    float y[32];
    float d = 0.125f, m = -1.5f;

    put16(b4, llm_f32_to_f16(d));
    put16(b4 + 2, llm_f32_to_f16(m));
    put16(b5, llm_f32_to_f16(d));
    put16(b5 + 2, llm_f32_to_f16(m));
    put16(b50, llm_f32_to_f16(d));
    for (int i = 0; i < 32; i++) {
        int q4 = (i * 7 + 3) & 15, q5 = (i * 11 + 5) & 31;
        int j = i & 15, hi = i >= 16;
        b4[4 + j] |= (uint8_t)(q4 << (hi ? 4 : 0));
        b5[8 + j] |= (uint8_t)((q5 & 15) << (hi ? 4 : 0));
        b5[4 + i / 8] |= (uint8_t)((q5 >> 4) << (i % 8)); /* qh bit i */
        b50[6 + j] |= (uint8_t)((q5 & 15) << (hi ? 4 : 0));
        b50[2 + i / 8] |= (uint8_t)((q5 >> 4) << (i % 8));
    }
    assert_int_equal(llm_dequant_row(LLM_GGML_Q4_1, b4, y, 32), 0);
    for (int i = 0; i < 32; i++)
        assert_true(y[i] == (float)((i * 7 + 3) & 15) * d + m);
    assert_int_equal(llm_dequant_row(LLM_GGML_Q5_1, b5, y, 32), 0);
    for (int i = 0; i < 32; i++)
        assert_true(y[i] == (float)((i * 11 + 5) & 31) * d + m);
    assert_int_equal(llm_dequant_row(LLM_GGML_Q5_0, b50, y, 32), 0);
    for (int i = 0; i < 32; i++)
        assert_true(y[i] == (float)(((i * 11 + 5) & 31) - 16) * d);
}

static void test_rows_f16_bf16_f32(void **state)
{
    const uint8_t h[6] = { 0x00, 0x3c, 0x00, 0xc0, 0x01, 0x00 }; /* 1, -2, 2^-24 */
    const uint8_t bf[4] = { 0x80, 0x3f, 0x40, 0xc0 }; /* 1, -3 */
    const float f[2] = { 0.5f, -0.25f };
    float y[3];

    assert_int_equal(llm_dequant_row(LLM_GGML_F16, h, y, 3), 0);
    assert_true(y[0] == 1.0f && y[1] == -2.0f && y[2] == 0x1p-24f);
    assert_int_equal(llm_dequant_row(LLM_GGML_BF16, bf, y, 2), 0);
    assert_true(y[0] == 1.0f && y[1] == -3.0f);
    assert_int_equal(llm_dequant_row(LLM_GGML_F32, f, y, 2), 0);
    assert_true(y[0] == 0.5f && y[1] == -0.25f);
}

/* Pack 6-bit scale/min pairs for sub-block j the way Q4_K/Q5_K store them. */
static void pack_k_scale(uint8_t *s, int j, int sc, int mn)
{
    if (j < 4) {
        s[j] = (uint8_t)((s[j] & 0xc0) | sc);
        s[j + 4] = (uint8_t)((s[j + 4] & 0xc0) | mn);
    } else {
        s[j + 4] = (uint8_t)((sc & 15) | ((mn & 15) << 4));
        s[j - 4] |= (uint8_t)((sc >> 4) << 6);
        s[j] |= (uint8_t)((mn >> 4) << 6);
    }
}

static void test_block_q5_k(void **state)
{
    uint8_t b[176] = { 0 };
    float y[256];
    float d = 0.0078125f, dmin = 0.03125f;

    put16(b, llm_f32_to_f16(d));
    put16(b + 2, llm_f32_to_f16(dmin));
    for (int s = 0; s < 8; s++)
        pack_k_scale(b + 4, s, 63 - 5 * s, 7 * s + 1);
    for (int i = 0; i < 256; i++) {
        int q = (i * 13 + 7) & 31;
        int s = i / 32, l = i % 32; /* sub-block s, element l */
        int byte = 48 + 32 * (s / 2) + l; /* group s/2 of qs */
        b[byte] |= (uint8_t)((q & 15) << (s % 2 ? 4 : 0));
        b[16 + l] |= (uint8_t)((q >> 4) << s); /* fifth bit: bit s of qh[l] */
    }
    assert_int_equal(llm_dequant_row(LLM_GGML_Q5_K, b, y, 256), 0);
    for (int i = 0; i < 256; i++) {
        int s = i / 32;
        float want =
                (d * (float)(63 - 5 * s)) * (float)((i * 13 + 7) & 31) - dmin * (float)(7 * s + 1);
        if (y[i] != want)
            fail_msg("Q5_K element %d: %g, want %g", i, (double)y[i], (double)want);
    }
}

static void test_row_errors(void **state)
{
    uint8_t b[256] = { 0 };
    float y[64];

    assert_int_equal(llm_dequant_row(LLM_GGML_Q2_K, b, y, 256), -ENOTSUP);
    assert_int_equal(llm_dequant_row(LLM_GGML_Q8_1, b, y, 32), -ENOTSUP);
    assert_int_equal(llm_dequant_row(9999, b, y, 1), -ENOTSUP);
    assert_int_equal(llm_dequant_row(LLM_GGML_Q8_0, b, y, 33), -EINVAL);
    assert_false(llm_dequant_has_type(LLM_GGML_Q3_K));
    assert_true(llm_dequant_has_type(LLM_GGML_BF16));
}

/* ---- the fixtures ---------------------------------------------------------- */

struct bin {
    uint8_t *data;
    size_t size;
    size_t off;
};

static int bin_take(struct bin *b, void *dst, size_t n)
{
    if (b->size - b->off < n)
        return -1;
    memcpy(dst, b->data + b->off, n);
    b->off += n;
    return 0;
}

static uint8_t *slurp(const char *path, size_t *ret_size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc((size_t)n);
    if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    fclose(f);
    *ret_size = (size_t)n;
    return p;
}

/* One record: compare the four rows, then the sums over every row. */
static void check_record(const struct llm_gguf *g, struct bin *b, const char *model, int *types)
{
    uint32_t name_len = 0, type = 0, ncols = 0, nrows = 0;
    double sum = 0, sumsq = 0;
    char name[256];

    assert_int_equal(bin_take(b, &name_len, 4), 0);
    assert_true(name_len < sizeof(name));
    assert_int_equal(bin_take(b, name, name_len), 0);
    name[name_len] = '\0';
    assert_int_equal(bin_take(b, &type, 4), 0);
    assert_int_equal(bin_take(b, &ncols, 4), 0);
    assert_int_equal(bin_take(b, &nrows, 4), 0);
    assert_int_equal(bin_take(b, &sum, 8), 0);
    assert_int_equal(bin_take(b, &sumsq, 8), 0);

    const struct llm_gguf_tensor *t = llm_gguf_find_tensor(g, name);
    if (!t)
        fail_msg("%s: tensor '%s' of the fixture is not in the GGUF", model, name);
    assert_int_equal(t->type, type);
    assert_true(type < 64);
    types[type]++;
    assert_int_equal(t->ne[0], ncols);
    assert_int_equal(t->n_elements / t->ne[0], nrows);
    uint64_t row_bytes = llm_ggml_row_bytes(type, ncols);
    assert_true(row_bytes > 0);

    float *row = malloc(ncols * sizeof(float)), *want = malloc(ncols * sizeof(float));
    assert_non_null(row);
    assert_non_null(want);
    for (int k = 0; k < 4; k++) {
        uint32_t ri = 0;
        assert_int_equal(bin_take(b, &ri, 4), 0);
        assert_int_equal(bin_take(b, want, ncols * sizeof(float)), 0);
        assert_true(ri < nrows);
        const uint8_t *src = (const uint8_t *)t->data + ri * row_bytes;
        assert_int_equal(llm_dequant_row(type, src, row, ncols), 0);
        for (uint32_t c = 0; c < ncols; c++) {
            if (fbits(row[c]) != fbits(want[c]))
                fail_msg("%s %s (%s) row %u col %u: %.9g, ggml %.9g", model, name,
                         llm_ggml_type_name(type), ri, c, (double)row[c], (double)want[c]);
        }
    }

    double s = 0, ss = 0, sabs = 0;
    for (uint32_t r = 0; r < nrows; r++) {
        assert_int_equal(
                llm_dequant_row(type, (const uint8_t *)t->data + r * row_bytes, row, ncols), 0);
        for (uint32_t c = 0; c < ncols; c++) {
            s += row[c];
            ss += (double)row[c] * row[c];
            sabs += fabs(row[c]);
        }
    }
    if (fabs(s - sum) > 1e-9 * sabs || fabs(ss - sumsq) > 1e-9 * ss)
        fail_msg("%s %s: sum %.12g / %.12g, sum of squares %.12g / %.12g", model, name, s, sum, ss,
                 sumsq);
    free(row);
    free(want);
}

static void check_model(const char *quant)
{
    char gpath[512], bpath[512], err[LLM_GGUF_ERR_MAX];
    snprintf(gpath, sizeof(gpath), "%s/models/kernelc-22m/kernelc-22m-%s.gguf", LADE_SHARED_DIR,
             quant);
    snprintf(bpath, sizeof(bpath), "%s/models/kernelc-22m/kernelc-22m-%s.dequant.bin",
             LADE_SHARED_DIR, quant);

    struct bin b = { 0 };
    b.data = slurp(bpath, &b.size);
    if (!b.data) {
        print_message("skipping: %s not readable (../shared absent?)\n", bpath);
        skip();
    }
    struct llm_gguf *g = NULL;
    int r = llm_gguf_open(gpath, &g, err, sizeof(err));
    if (r < 0)
        fail_msg("%s: %s", gpath, err);

    int records = 0, types[64] = { 0 };
    while (b.off < b.size) {
        check_record(g, &b, quant, types);
        records++;
    }
    assert_int_equal((uint64_t)records, llm_gguf_n_tensors(g));
    print_message("%s: %d tensors bit-exact:", quant, records);
    for (int t = 0; t < 64; t++)
        if (types[t])
            print_message(" %d %s", types[t], llm_ggml_type_name((uint32_t)t));
    print_message("\n");
    llm_gguf_free(g);
    free(b.data);
}

static void test_fixture_q8_0(void **state)
{
    check_model("q8_0");
}

static void test_fixture_q4_0(void **state)
{
    check_model("q4_0");
}

static void test_fixture_q4_k_m(void **state)
{
    check_model("q4_k_m");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f16_roundtrip_all),
        cmocka_unit_test(test_f16_known_values),
        cmocka_unit_test(test_f16_midpoints_all),
#ifdef __FLT16_MAX__
        cmocka_unit_test(test_f16_against_compiler),
#endif
        cmocka_unit_test(test_bf16),
        cmocka_unit_test(test_block_q4_1_q5_0_q5_1),
        cmocka_unit_test(test_rows_f16_bf16_f32),
        cmocka_unit_test(test_block_q5_k),
        cmocka_unit_test(test_row_errors),
        cmocka_unit_test(test_fixture_q8_0),
        cmocka_unit_test(test_fixture_q4_0),
        cmocka_unit_test(test_fixture_q4_k_m),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
