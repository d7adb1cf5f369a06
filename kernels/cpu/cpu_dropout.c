/* Dropout with a counter-based mask: element i is kept when ct_counter_uniform(seed, stream, i)
 * >= p, so the forward pass, its backward and any recomputation draw the same mask without
 * storing it, whatever the thread count. */
#include <math.h>
#include <string.h>

#include "core/rng.h"
#include "kernels/cpu/cpu_kernels.h"

/* ct_counter_uniform's draw is u / 2^24 with u the hash's top 24 bits, exactly, so
 * "u / 2^24 >= p" is "u >= ceil(p * 2^24)": the same mask compared in integers, which
 * vectorizes (p * 2^24 is exact in double). tests/test_transformer_ops.c checks the two agree. */
static uint32_t keep_threshold(double p) { return (uint32_t)ceil(p * 16777216.0); }

/* The hash of element i with the (seed, stream) half hoisted out of the loop into key. */
static inline uint32_t draw24(uint64_t key, int64_t i) { return (uint32_t)(ct_mix64(key ^ (uint64_t)i) >> 40); }

/* x[i] * scale where element i is kept, +0 where dropped: the product's bits ANDed with an
 * all-ones or all-zeros mask, so the loop has no branch and vectorizes (the 64-bit multiplies
 * of the hash are then most of the cost). A dropped NaN or inf still becomes 0. */
static inline float kept_or_zero(float x, float scale, uint64_t key, int64_t i, uint32_t threshold) {
    float kept = x * scale;
    uint32_t bits;
    memcpy(&bits, &kept, sizeof bits);
    bits &= 0u - (uint32_t)(draw24(key, i) >= threshold);
    memcpy(&kept, &bits, sizeof kept);
    return kept;
}

/* One span [start, start + n), with separate loops for = and +=. x and y never alias: the
 * forward writes a new tensor, the backward a gradient buffer of another tensor. */
CT_CPU_CLONES_VECTORIZED static void dropout_span_f32(const float *restrict x, uint32_t threshold,
                                                      float scale, uint64_t key, int accumulate,
                                                      float *restrict y, int64_t start, int64_t n) {
    if (accumulate) {
        for (int64_t i = start; i < start + n; i++) y[i] += kept_or_zero(x[i], scale, key, i, threshold);
    } else {
        for (int64_t i = start; i < start + n; i++) y[i] = kept_or_zero(x[i], scale, key, i, threshold);
    }
}

static void dropout_f32(const float *x, double p, uint64_t key, int accumulate, float *y, int64_t n) {
    const float scale = (float)(1.0 / (1.0 - p));
    const uint32_t threshold = keep_threshold(p);
    const int64_t spans = (n + CT_CPU_SPAN - 1) / CT_CPU_SPAN;
#pragma omp parallel for schedule(static) if (n > CT_CPU_PARALLEL_MIN)
    for (int64_t s = 0; s < spans; s++) {
        int64_t start = s * CT_CPU_SPAN, len = n - start < CT_CPU_SPAN ? n - start : CT_CPU_SPAN;
        dropout_span_f32(x, threshold, scale, key, accumulate, y, start, len);
    }
}

/* f64: gradient checks only; one plain loop. */
static void dropout_f64(const double *x, double p, uint64_t key, int accumulate, double *y, int64_t n) {
    const double scale = 1.0 / (1.0 - p);
    const uint32_t threshold = keep_threshold(p);
#pragma omp parallel for schedule(static) if (n > CT_CPU_PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++) {
        double v = draw24(key, i) >= threshold ? x[i] * scale : 0.0;
        y[i] = accumulate ? y[i] + v : v;
    }
}

int ct_cpu_dropout(const ct_tensor *x, double p, uint64_t seed, uint64_t stream, bool accumulate, ct_tensor *y) {
    uint64_t key = ct_mix64(seed ^ ct_mix64(stream));
    if (x->dtype == CT_F64)
        dropout_f64(x->data, p, key, accumulate, y->data, ct_numel(x));
    else
        dropout_f32(x->data, p, key, accumulate, y->data, ct_numel(x));
    return 0;
}
