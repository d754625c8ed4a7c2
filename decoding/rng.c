/* Seeded PRNG: xoshiro256** (Blackman and Vigna), state filled by
 * splitmix64 so that any 64-bit seed, 0 included, gives a good state. The
 * sampler draws exactly one uniform per emitted token, which is what makes
 * lookahead sampling reproduce plain sampling for the same seed. */
#include "decoding/dec-internal.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void dec_rng_seed(struct dec_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

uint64_t dec_rng_next(struct dec_rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

double dec_rng_uniform(struct dec_rng *r)
{
    return (double)(dec_rng_next(r) >> 11) * 0x1.0p-53;
}

uint32_t dec_rng_u24(struct dec_rng *r)
{
    return (uint32_t)(dec_rng_next(r) >> 40);
}

uint32_t dec_rng_below(struct dec_rng *r, uint32_t n)
{
    /* Rejection keeps every value equally likely for any n. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do
        x = dec_rng_next(r);
    while (x >= limit);
    return (uint32_t)(x % n);
}
