/* Random numbers.
 *
 * ct_rng: a small stateful generator (xoshiro256**) for initialization and shuffling; its state
 * is four words, saved in checkpoints so a resumed run draws the same numbers.
 *
 * ct_counter_*: stateless, counter-based draws keyed on (seed, stream, counter). Dropout keys
 * the stream on (step, op) and the counter on the element index, so recomputing a checkpointed
 * segment reproduces the same mask, in any order, on the CPU and the GPU alike. */
#ifndef CT_RNG_H
#define CT_RNG_H

#include <stdint.h>

#ifdef __CUDACC__
#define CT_HOST_DEVICE __host__ __device__
#else
#define CT_HOST_DEVICE
#endif

typedef struct ct_rng {
    uint64_t s[4];
} ct_rng;

void ct_rng_seed(ct_rng *rng, uint64_t seed);
uint64_t ct_rng_next(ct_rng *rng);
double ct_rng_uniform(ct_rng *rng);          /* [0, 1) with 53 random bits */
double ct_rng_normal(ct_rng *rng);           /* standard normal (Box-Muller) */
uint64_t ct_rng_below(ct_rng *rng, uint64_t n); /* uniform in [0, n), unbiased */

/* splitmix64's finalizer: a bijective mix of 64 bits. */
static inline CT_HOST_DEVICE uint64_t ct_mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static inline CT_HOST_DEVICE uint64_t ct_counter_hash(uint64_t seed, uint64_t stream, uint64_t counter) {
    return ct_mix64(ct_mix64(seed ^ ct_mix64(stream)) ^ counter);
}

/* Uniform in [0, 1) with 24 random bits: exactly representable in f32. */
static inline CT_HOST_DEVICE float ct_counter_uniform(uint64_t seed, uint64_t stream, uint64_t counter) {
    return (float)(ct_counter_hash(seed, stream, counter) >> 40) * (1.0f / 16777216.0f);
}

#endif
