/* Dropout with a counter-based mask: element i is kept when ct_counter_uniform(seed, stream, i)
 * >= p, so the forward pass, its backward and any recomputation draw the same mask without
 * storing it, whatever the thread count. */
#include "core/rng.h"
#include "kernels/cpu/cpu_kernels.h"

/* ct_counter_uniform(seed, stream, i) with the (seed, stream) half of the hash hoisted out of
 * the loop; tests check that the two agree. */
static inline double keep_draw(uint64_t key, int64_t i) {
    return (double)(float)(ct_mix64(key ^ (uint64_t)i) >> 40) * (1.0 / 16777216.0);
}

#define DEFINE_DROPOUT(T, SUFFIX)                                                                  \
    static void dropout_##SUFFIX(const T *x, double p, uint64_t key, int accumulate, T *y,        \
                                 int64_t n) {                                                      \
        T scale = (T)(1.0 / (1.0 - p));                                                            \
        _Pragma("omp parallel for schedule(static) if (n > CT_CPU_PARALLEL_MIN)")                  \
        for (int64_t i = 0; i < n; i++) {                                                          \
            T v = keep_draw(key, i) >= p ? x[i] * scale : (T)0;                                    \
            if (accumulate)                                                                        \
                y[i] += v;                                                                         \
            else                                                                                   \
                y[i] = v;                                                                          \
        }                                                                                          \
    }

DEFINE_DROPOUT(float, f32)
DEFINE_DROPOUT(double, f64)

int ct_cpu_dropout(const ct_tensor *x, double p, uint64_t seed, uint64_t stream, bool accumulate, ct_tensor *y) {
    uint64_t key = ct_mix64(seed ^ ct_mix64(stream));
    if (x->dtype == CT_F64)
        dropout_f64(x->data, p, key, accumulate, y->data, ct_numel(x));
    else
        dropout_f32(x->data, p, key, accumulate, y->data, ct_numel(x));
    return 0;
}
