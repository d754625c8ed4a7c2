/* decoding/sample.c and rng.c: greedy, the truncations, the repetition
 * penalty, reproducibility, and that draws follow the distribution. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "decoding/dec-internal.h"

#define V 8

static const float base[V] = { 1.0f, 3.0f, 2.5f, 0.0f, -1.0f, 2.0f, 3.0f, 0.5f };

static int32_t draw(struct dec_sampler *s, const struct dec_params *p, struct dec_rng *r,
                    const int32_t *hist, uint32_t n_hist)
{
    float l[V];
    memcpy(l, base, sizeof(l));
    return dec_sample(s, p, l, hist, n_hist, r);
}

static void test_greedy_and_penalty(void **state)
{
    struct dec_sampler s;
    struct dec_rng r;
    struct dec_params p = dec_params_default();
    assert_int_equal(dec_sampler_init(&s, V), 0);
    dec_rng_seed(&r, 1);
    assert_false(dec_sampler_needs_logits(&p));
    /* Ties go to the lower id, like the model's argmax. */
    assert_int_equal(draw(&s, &p, &r, NULL, 0), 1);
    p.repeat_penalty = 2.0f;
    assert_true(dec_sampler_needs_logits(&p));
    int32_t hist[] = { 1, 1, 6, 3 };
    /* 1 and 6 halve to 1.5: 2.5 (id 2) wins; each token is penalised once. */
    assert_int_equal(draw(&s, &p, &r, hist, 4), 2);
    p.repeat_last_n = 1;
    assert_int_equal(draw(&s, &p, &r, hist, 4), 1);
    dec_sampler_done(&s);
    dec_sampler_done(NULL);
}

static void test_truncations(void **state)
{
    struct dec_sampler s;
    struct dec_rng r;
    struct dec_params p = dec_params_default();
    assert_int_equal(dec_sampler_init(&s, V), 0);
    dec_rng_seed(&r, 7);
    p.temperature = 1.0f;
    p.top_k = 1;
    for (int i = 0; i < 50; i++)
        assert_int_equal(draw(&s, &p, &r, NULL, 0), 1);
    p.top_k = 3; /* ids 1, 6 (3.0) and 2 (2.5) */
    for (int i = 0; i < 300; i++) {
        int32_t t = draw(&s, &p, &r, NULL, 0);
        assert_true(t == 1 || t == 6 || t == 2);
    }
    p.top_k = 0;
    p.min_p = 0.5f; /* exp(-0.5) = 0.61 keeps 2.5, exp(-1) = 0.37 drops 2.0 */
    for (int i = 0; i < 300; i++) {
        int32_t t = draw(&s, &p, &r, NULL, 0);
        assert_true(t == 1 || t == 6 || t == 2);
    }
    p.min_p = 0;
    p.top_p = 0.3f; /* the two 3.0 tokens each hold about 0.27 */
    for (int i = 0; i < 300; i++) {
        int32_t t = draw(&s, &p, &r, NULL, 0);
        assert_true(t == 1 || t == 6);
    }
    dec_sampler_done(&s);
}

/* Pearson chi-square of 40000 draws against softmax(base / 0.7): df 7,
 * threshold 24.3 is the 0.001 quantile; fixed seed, so deterministic. */
static void test_distribution(void **state)
{
    struct dec_sampler s;
    struct dec_rng r;
    struct dec_params p = dec_params_default();
    uint32_t count[V] = { 0 };
    double prob[V], sum = 0;
    const uint32_t draws = 40000;
    assert_int_equal(dec_sampler_init(&s, V), 0);
    dec_rng_seed(&r, 12345);
    p.temperature = 0.7f;
    for (uint32_t i = 0; i < draws; i++)
        count[draw(&s, &p, &r, NULL, 0)]++;
    for (int v = 0; v < V; v++)
        sum += prob[v] = exp(base[v] / 0.7);
    double chi = 0;
    for (int v = 0; v < V; v++) {
        double e = draws * prob[v] / sum;
        chi += (count[v] - e) * (count[v] - e) / e;
    }
    assert_true(chi < 24.3);
    dec_sampler_done(&s);
}

/* dec_draw against the distribution computed in double: the token drawn
 * is the one whose cumulative range holds the target, up to f32 rounding
 * of the sums (a token only a rounding away from the target's place may
 * be taken instead); weights under min_p never; odd sizes, both ends of
 * the uniform, and rows a broken model could give. */
static uint64_t lcg(uint64_t *x)
{
    *x = *x * 6364136223846793005ull + 1442695040888963407ull;
    return *x >> 33;
}

static void test_draw_definition(void **state)
{
    static const uint32_t sizes[] = { 1, 2, 127, 128, 129, 4095, 4096, 4097, 32000, 33000 };
    static float l[33000], w[33000];
    static double cum[33001];
    uint64_t x = 5;
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        uint32_t n = sizes[k];
        for (int trial = 0; trial < 40; trial++) {
            struct dec_draw_params d = { .temperature = trial % 3 == 0 ? 0.6f : 1.0f,
                                         .min_p = trial % 4 == 1 ? 0.02f : 0.0f,
                                         .penalty = 1.0f };
            float spread = trial % 2 ? 12.0f : 3.0f;
            for (uint32_t v = 0; v < n; v++)
                l[v] = (float)lcg(&x) / (float)(1u << 31) * spread - spread / 2;
            double mx = -INFINITY;
            for (uint32_t v = 0; v < n; v++)
                mx = fmax(mx, (double)l[v] / d.temperature);
            cum[0] = 0;
            for (uint32_t v = 0; v < n; v++) {
                double e = exp((double)l[v] / d.temperature - mx);
                cum[v + 1] = cum[v] + (e >= d.min_p ? e : 0);
            }
            uint32_t u24 = trial == 0 ? 0 : trial == 1 ? 0xffffffu : (uint32_t)lcg(&x) & 0xffffffu;
            int32_t t = dec_draw(l, n, &d, u24, w, NULL);
            assert_true(t >= 0 && (uint32_t)t < n);
            assert_true(cum[t + 1] > cum[t]); /* a weight above min-p */
            double target = u24 * 0x1p-24 * cum[n], slack = 1e-5 * cum[n];
            assert_true(cum[t] <= target + slack);
            assert_true(cum[t + 1] > target - slack);
        }
    }
    /* u = 0 takes the first token with weight; the draw reads only w's scratch. */
    float two[2] = { -INFINITY, 0.0f }, scratch[3];
    struct dec_draw_params d = { .temperature = 1.0f, .penalty = 1.0f };
    assert_int_equal(dec_draw(two, 2, &d, 0, scratch, NULL), 1);
    float bad[3] = { NAN, NAN, NAN };
    assert_int_equal(dec_draw(bad, 3, &d, 123, scratch, NULL), 0);
    float inf[3] = { 1.0f, INFINITY, 2.0f };
    assert_int_equal(dec_draw(inf, 3, &d, 0xffffff, scratch, NULL), 0);
    float nan_mid[3] = { 0.0f, NAN, 0.0f };
    for (uint32_t u = 0; u < 1u << 24; u += 1u << 20)
        assert_int_not_equal(dec_draw(nan_mid, 3, &d, u, scratch, NULL), 1);
}

/* Top-p without top-k is dec_draw's nucleus, found there by bisection on
 * keys. Here the definition is read another way: sort the whole row
 * (scaled logit descending, id ascending, NaN last), bisect on the length
 * of the prefix with masses summed by levels, then draw from the row with
 * every token outside that prefix made -inf. The token must be the same,
 * on rows with ties at the cut (small integers), NaN, -inf, flat rows (the
 * nucleus is most of the row), peaked ones, and one token far above a
 * crowd that holds much of the mass, with and without min-p; and
 * the prefix must be the shortest whose mass (in double) reaches top_p. */
static const float *sort_logits;
static int by_order(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    float lx = sort_logits[x], ly = sort_logits[y];
    if (lx != lx || ly != ly)
        return ly != ly && lx == lx ? -1 : lx != lx && ly == ly ? 1 : x < y ? -1 : 1;
    if (lx != ly)
        return lx > ly ? -1 : 1;
    return x < y ? -1 : 1;
}

/* Masses by levels (dec.h) of the tokens whose rank is below m. */
static float levels_mass(const float *w, const uint32_t *rank, uint32_t n, uint32_t m)
{
    float total = 0.0f;
    for (uint32_t g = 0; g < n; g += DEC_DRAW_BLOCK * DEC_DRAW_GROUP) {
        float gs = 0.0f;
        for (uint32_t b = g; b < n && b < g + DEC_DRAW_BLOCK * DEC_DRAW_GROUP;
             b += DEC_DRAW_BLOCK) {
            float bs = 0.0f;
            for (uint32_t v = b; v < n && v < b + DEC_DRAW_BLOCK; v++)
                bs += rank[v] < m ? w[v] : 0.0f;
            gs += bs;
        }
        total += gs;
    }
    return total;
}

static int32_t sorted_top_p(const float *l, uint32_t n, const struct dec_draw_params *d,
                            uint32_t u24, uint32_t *nucleus)
{
    static int32_t idx[33000];
    static uint32_t rank[33000];
    static float scaled[33000], w[33000], cut[33000];
    float inv_t = 1.0f / d->temperature, mx = -INFINITY;
    for (uint32_t v = 0; v < n; v++) {
        idx[v] = (int32_t)v;
        scaled[v] = l[v] * inv_t;
        mx = scaled[v] > mx ? scaled[v] : mx;
    }
    sort_logits = scaled;
    qsort(idx, n, sizeof(idx[0]), by_order);
    for (uint32_t i = 0; i < n; i++)
        rank[idx[i]] = i;
    for (uint32_t v = 0; v < n; v++) {
        float x = expf(scaled[v] - mx);
        w[v] = x >= 0.0f ? x : 0.0f;
    }
    float target = d->top_p * levels_mass(w, rank, n, n);
    uint32_t lo = 1, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (levels_mass(w, rank, n, mid) >= target)
            hi = mid;
        else
            lo = mid + 1;
    }
    *nucleus = lo;
    for (uint32_t v = 0; v < n; v++)
        cut[v] = rank[v] < lo ? l[v] : -INFINITY;
    struct dec_draw_params plain = *d;
    plain.top_p = 1.0f;
    return dec_draw(cut, n, &plain, u24, w, NULL);
}

static void test_top_p_nucleus(void **state)
{
    static const uint32_t sizes[] = { 1, 2, 129, 5000, 32000 };
    static const float tops[] = { 0.3f, 0.9f, 0.99f, 0.999f, 0.5f };
    static float l[32000], work[32000], scratch[32000], scaled[32000];
    static int32_t order[32000];
    static uint32_t ids[32000];
    struct dec_sampler s;
    uint64_t x = 11;
    uint32_t draws = 0, ties_at_cut = 0, big = 0;
    for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
        uint32_t n = sizes[si];
        assert_int_equal(dec_sampler_init(&s, n), 0);
        for (int trial = 0; trial < (n > 5000 ? 8 : 30); trial++) {
            float spread = trial % 3 == 0 ? 0.5f : trial % 3 == 1 ? 6.0f : 25.0f;
            for (uint32_t v = 0; v < n; v++) {
                l[v] = trial % 4 == 1 ? (float)(lcg(&x) % 7) :
                                        (float)lcg(&x) / (float)(1u << 31) * spread;
                if (trial % 6 ==
                    3) /* one token far above a crowd: the crowd holds much of the mass */
                    l[v] = v == n / 3 ? 12.0f : 0.0f;
                if (trial % 6 == 5 && v % 13 == 4)
                    l[v] = v % 2 ? NAN : -INFINITY;
            }
            struct dec_params p = dec_params_default();
            p.temperature = trial % 5 == 2 ? 0.7f : 1.0f;
            p.top_p = tops[trial % 5];
            p.min_p = trial % 7 == 1 ? 0.01f : 0.0f;
            struct dec_draw_params d = dec_sampler_draw_params(&p, n);
            assert_true(d.top_p == p.top_p && d.top_k == 0);
            assert_int_equal(dec_sampler_model_want(&p, n), DEC_WANT_DRAW);
            struct dec_rng r;
            dec_rng_seed(&r, (uint64_t)trial);
            for (int k = 0; k < 4; k++) {
                struct dec_rng copy = r;
                uint32_t u24 = dec_rng_u24(&copy), m = 0;
                int32_t want = sorted_top_p(l, n, &d, u24, &m);
                memcpy(work, l, sizeof(float) * n);
                assert_int_equal(dec_sample(&s, &p, work, NULL, 0, &r), want);
                memcpy(&r, &copy, sizeof(r));
                assert_int_equal(dec_draw(l, n, &d, u24, scratch, ids), want);
                draws++;
                big += m > 256;
                if (k)
                    continue;
                /* The cut, in double: the prefix reaches top_p, one token
                 * less does not (up to f32 rounding of the sums). */
                float inv_t = 1.0f / d.temperature, mx = -INFINITY;
                for (uint32_t v = 0; v < n; v++) {
                    scaled[v] = l[v] * inv_t;
                    mx = scaled[v] > mx ? scaled[v] : mx;
                    order[v] = (int32_t)v;
                }
                sort_logits = scaled;
                qsort(order, n, sizeof(order[0]), by_order);
                double all = 0, in = 0, last = 0;
                for (uint32_t v = 0; v < n; v++) {
                    double e = exp((double)scaled[v] - mx);
                    all += e == e ? e : 0;
                }
                for (uint32_t i = 0; i < m; i++) {
                    double e = exp((double)scaled[order[i]] - mx);
                    last = e == e ? e : 0;
                    in += last;
                }
                ties_at_cut += m < n && scaled[order[m]] == scaled[order[m - 1]];
                assert_true(in >= p.top_p * all * (1 - 1e-5));
                assert_true(in - last < p.top_p * all * (1 + 1e-5));
            }
        }
        dec_sampler_done(&s);
    }
    print_message("top-p: %u draws, %u cuts among ties, %u nuclei over 256 tokens\n", draws,
                  ties_at_cut, big);
    assert_true(ties_at_cut > 3);
    assert_true(big > 3);
}

/* dec_top_k against a plain reading of its definition, on logits with
 * ties, zeros of both signs and NaN; and dec_sample_top on those
 * candidates picks what dec_sample picks from the whole row, bit for bit,
 * with the penalty, top-k, top-p, min-p and greedy. */
static void test_top_k_candidates(void **state)
{
    enum { N = 700 };
    static float l[N], pen[N], work[N], scaled[N];
    static int32_t idx[N];
    static struct dec_cand c[DEC_TOPK_MAX];
    struct dec_sampler s;
    assert_int_equal(dec_sampler_init(&s, N), 0);
    uint64_t x = 5;
    int32_t hist[40];
    for (int trial = 0; trial < 96; trial++) {
        for (uint32_t v = 0; v < N; v++) {
            uint32_t r = lcg(&x);
            l[v] = trial % 3 == 0 ? (float)(r % 9) - 4.0f :
                                    (float)r / (float)(1u << 31) * 12.0f - 6.0f;
            if (r % 97 == 0)
                l[v] = r % 2 ? -0.0f : 0.0f;
        }
        if (trial % 8 == 3)
            l[lcg(&x) % N] = NAN;
        for (int i = 0; i < 40; i++)
            hist[i] = (int32_t)(lcg(&x) % N);
        struct dec_params p = dec_params_default();
        p.temperature = trial % 4 == 0 ? 0.0f :
                        trial % 4 == 1 ? 0.7f :
                        trial % 4 == 2 ? 1.0f :
                                         1.9f;
        p.top_k = 1 + (uint32_t)(trial * 37) % DEC_TOPK_MAX;
        p.top_p = trial % 5 == 1 ? 0.6f : 1.0f;
        p.min_p = trial % 7 == 2 ? 0.1f : 0.0f;
        p.repeat_penalty = trial % 2 ? 1.4f : 1.0f;
        p.repeat_last_n = 1 + (uint32_t)trial % 40;
        assert_int_equal(dec_sampler_model_want(&p, N),
                         p.temperature > 0 || p.repeat_penalty != 1.0f ? DEC_WANT_TOPK :
                                                                         DEC_WANT_NONE);
        if (dec_sampler_model_want(&p, N) != DEC_WANT_TOPK)
            continue;
        struct dec_draw_params d = dec_sampler_draw_params(&p, N);
        /* The model's side: the penalty on the window's distinct tokens. */
        memcpy(pen, l, sizeof(l));
        bool seen[N] = { false };
        for (uint32_t i = 40 - p.repeat_last_n; i < 40; i++)
            if (!seen[hist[i]]) {
                seen[hist[i]] = true;
                pen[hist[i]] = dec_penalized(pen[hist[i]], p.repeat_penalty);
            }
        dec_top_k(pen, N, d.temperature, d.top_k, c, scaled, idx);
        /* The definition: v is in iff fewer than k tokens come before it. */
        float inv_t = 1.0f / d.temperature;
        uint32_t at = 0;
        for (uint32_t v = 0; v < N; v++) {
            float a = pen[v] * inv_t;
            uint32_t ahead = 0;
            for (uint32_t u = 0; u < N; u++) {
                float b = pen[u] * inv_t;
                bool nb = b != b, na = a != a;
                ahead += nb ? (na && u < v) : na ? 1 : (b > a || (b == a && u < v));
            }
            if (ahead < d.top_k) {
                assert_true(at < d.top_k);
                assert_int_equal(c[at].id, (int32_t)v);
                assert_memory_equal(&c[at].logit, &a, sizeof(a));
                at++;
            }
        }
        assert_int_equal(at, d.top_k);
        struct dec_rng r1, r2;
        dec_rng_seed(&r1, (uint64_t)trial);
        r2 = r1;
        for (int k = 0; k < 4; k++) {
            memcpy(work, l, sizeof(l));
            int32_t want = dec_sample(&s, &p, work, hist, 40, &r1);
            assert_int_equal(dec_sample_top(&s, &p, c, d.top_k, &r2), want);
        }
        assert_memory_equal(&r1, &r2, sizeof(r1)); /* the same numbers used */
    }
    dec_sampler_done(&s);
}

static void test_rng(void **state)
{
    struct dec_rng a, b;
    dec_rng_seed(&a, 99);
    dec_rng_seed(&b, 99);
    for (int i = 0; i < 100; i++)
        assert_true(dec_rng_next(&a) == dec_rng_next(&b));
    dec_rng_seed(&b, 100);
    assert_false(dec_rng_next(&a) == dec_rng_next(&b));
    uint32_t hits[5] = { 0 };
    for (int i = 0; i < 5000; i++) {
        double u = dec_rng_uniform(&a);
        assert_true(u >= 0 && u < 1);
        hits[dec_rng_below(&a, 5)]++;
    }
    for (int i = 0; i < 5; i++)
        assert_true(hits[i] > 850 && hits[i] < 1150);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy_and_penalty),
        cmocka_unit_test(test_truncations),
        cmocka_unit_test(test_distribution),
        cmocka_unit_test(test_draw_definition),
        cmocka_unit_test(test_top_p_nucleus),
        cmocka_unit_test(test_top_k_candidates),
        cmocka_unit_test(test_rng),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
