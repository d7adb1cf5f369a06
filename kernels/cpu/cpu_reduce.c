/* Reductions to one number. Blocks of CT_CPU_REDUCE_BLOCK elements are summed in parallel in
 * double precision, then the block sums are added in index order: the result is the same for
 * any thread count, which is what makes training runs bit-reproducible. */
#include <stdlib.h>

#include "kernels/cpu/cpu_kernels.h"

#define DEFINE_BLOCK_SUM(T, SUFFIX)                                                             \
    static double block_sum_##SUFFIX(const T *x, int64_t n, int squares) {                      \
        int64_t n_blocks = (n + CT_CPU_REDUCE_BLOCK - 1) / CT_CPU_REDUCE_BLOCK;                \
        double stack_partials[64];                                                             \
        double *partials = n_blocks <= 64 ? stack_partials : malloc((size_t)n_blocks * sizeof(double)); \
        if (!partials) return 0.0 / 0.0;                                                       \
        _Pragma("omp parallel for schedule(static) if (n > CT_CPU_PARALLEL_MIN)")              \
        for (int64_t b = 0; b < n_blocks; b++) {                                               \
            int64_t end = (b + 1) * CT_CPU_REDUCE_BLOCK < n ? (b + 1) * CT_CPU_REDUCE_BLOCK : n; \
            double total = 0;                                                                  \
            for (int64_t i = b * CT_CPU_REDUCE_BLOCK; i < end; i++)                            \
                total += squares ? (double)x[i] * (double)x[i] : (double)x[i];                 \
            partials[b] = total;                                                               \
        }                                                                                      \
        double total = 0;                                                                      \
        for (int64_t b = 0; b < n_blocks; b++) total += partials[b];                           \
        if (partials != stack_partials) free(partials);                                        \
        return total;                                                                          \
    }

DEFINE_BLOCK_SUM(float, f32)
DEFINE_BLOCK_SUM(double, f64)

static double block_sum(const ct_tensor *x, int squares) {
    return x->dtype == CT_F64 ? block_sum_f64(x->data, ct_numel(x), squares)
                              : block_sum_f32(x->data, ct_numel(x), squares);
}

int ct_cpu_sum(const ct_tensor *x, ct_tensor *out) {
    ct_set(out, 0, block_sum(x, 0));
    return 0;
}


/* Each tensor's sum of squares in fixed blocks, added in list order. NaN passes through: the
 * caller (gradient clipping) reports a non-finite norm itself. */
int ct_cpu_sum_squares_multi(int n, const ct_tensor *const *x, double *result) {
    double total = 0;
    for (int i = 0; i < n; i++) total += block_sum(x[i], 1);
    *result = total;
    return 0;
}
