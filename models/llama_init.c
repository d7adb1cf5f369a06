/* Random initialization of a LLaMA-family model, as transformers initializes one: every weight
 * matrix (embedding and lm_head included) from N(0, initializer_range^2), biases 0, RMSNorm
 * weights 1.
 *
 * The normals are counter-based: elements 2i and 2i + 1 of parameter p are a function of
 * (seed, p, i), so the fill runs on all threads and gives the same model for any thread count
 * or schedule. */
#include <math.h>
#include <string.h>

#include "core/rng.h"
#include "models/llama.h"

/* Two standard normals per counter: Box-Muller on two 24-bit uniforms of one hash (the first
 * shifted into (0, 1] so the logarithm is finite), in f32: half a billion draws take seconds,
 * not minutes. The tails stop at sqrt(-2 ln 2^-24) = 5.8 sigma. */
static void counter_normal_pair(uint64_t seed, uint64_t stream, uint64_t counter, float *a, float *b) {
    const uint64_t h = ct_counter_hash(seed, stream, counter);
    const float u1 = ((float)(h >> 40) + 1.0f) * (1.0f / 16777216.0f);
    const float u2 = (float)((h >> 16) & 0xffffffu) * (1.0f / 16777216.0f);
    const float r = sqrtf(-2.0f * logf(u1)), angle = 2.0f * (float)M_PI * u2;
    *a = r * cosf(angle);
    *b = r * sinf(angle);
}

static void fill_normal(ct_tensor *t, uint64_t seed, uint64_t stream, float std) {
    float *d = t->data;
    const int64_t n = ct_numel(t), pairs = (n + 1) / 2;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < pairs; i++) {
        float a, b;
        counter_normal_pair(seed, stream, (uint64_t)i, &a, &b);
        d[2 * i] = std * a;
        if (2 * i + 1 < n) d[2 * i + 1] = std * b;
    }
}

void ct_llama_init_random(ct_llama *m, uint64_t seed) {
    for (int p = 0; p < m->n_params; p++) {
        ct_tensor *t = m->params[p];
        if (t->ndim >= 2) fill_normal(t, seed, (uint64_t)p, (float)m->config.initializer_range);
        else if (strstr(t->name, "norm")) ct_fill(t, 1.0);
        else ct_fill(t, 0.0);
    }
}
