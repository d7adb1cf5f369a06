#include "core/rng.h"

#include <math.h>

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void ct_rng_seed(ct_rng *rng, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) {
        x += 0x9e3779b97f4a7c15ull;
        rng->s[i] = ct_mix64(x);
    }
}

uint64_t ct_rng_next(ct_rng *rng) {
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double ct_rng_uniform(ct_rng *rng) { return (double)(ct_rng_next(rng) >> 11) * 0x1.0p-53; }

double ct_rng_normal(ct_rng *rng) {
    double u1 = ct_rng_uniform(rng), u2 = ct_rng_uniform(rng);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

uint64_t ct_rng_below(ct_rng *rng, uint64_t n) {
    if (n == 0) return 0;
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = ct_rng_next(rng);
    while (x >= limit);
    return x % n;
}
