/* Log-softmax and softmax cross-entropy over the last dimension, one row per thread iteration.
 * Cross-entropy never materializes probabilities: forward keeps each row's logsumexp, backward
 * recomputes exp(x - lse) on the fly. Row losses are added in row order (deterministic). */
#include <math.h>

#include "autograd/error.h"
#include "kernels/cpu/cpu_kernels.h"

#define CT_IGNORE_INDEX (-100)

#define DEFINE_SOFTMAX(T, SUFFIX, EXP, LOG)                                                       \
    static double row_logsumexp_##SUFFIX(const T *x, int64_t cols) {                             \
        T max = x[0];                                                                             \
        for (int64_t c = 1; c < cols; c++) max = x[c] > max ? x[c] : max;                         \
        double total = 0;                                                                         \
        for (int64_t c = 0; c < cols; c++) total += EXP(x[c] - max);                              \
        return (double)max + log(total);                                                          \
    }                                                                                             \
    static void log_softmax_##SUFFIX(const T *x, T *y, int64_t rows, int64_t cols) {             \
        _Pragma("omp parallel for schedule(static) if (rows * cols > CT_CPU_PARALLEL_MIN)")       \
        for (int64_t r = 0; r < rows; r++) {                                                      \
            T lse = (T)row_logsumexp_##SUFFIX(x + r * cols, cols);                                \
            for (int64_t c = 0; c < cols; c++) y[r * cols + c] = x[r * cols + c] - lse;           \
        }                                                                                         \
    }                                                                                             \
    static void log_softmax_backward_##SUFFIX(const T *y, const T *gy, T *gx, int64_t rows,      \
                                              int64_t cols) {                                     \
        _Pragma("omp parallel for schedule(static) if (rows * cols > CT_CPU_PARALLEL_MIN)")       \
        for (int64_t r = 0; r < rows; r++) {                                                      \
            double total = 0;                                                                     \
            for (int64_t c = 0; c < cols; c++) total += gy[r * cols + c];                         \
            for (int64_t c = 0; c < cols; c++)                                                    \
                gx[r * cols + c] += gy[r * cols + c] - EXP(y[r * cols + c]) * (T)total;           \
        }                                                                                         \
    }                                                                                             \
    static double cross_entropy_##SUFFIX(const T *x, const int32_t *t, T *lse, int64_t rows,     \
                                         int64_t cols) {                                          \
        _Pragma("omp parallel for schedule(static) if (rows * cols > CT_CPU_PARALLEL_MIN)")       \
        for (int64_t r = 0; r < rows; r++)                                                        \
            lse[r] = t[r] == CT_IGNORE_INDEX ? 0 : (T)row_logsumexp_##SUFFIX(x + r * cols, cols); \
        double total = 0;                                                                         \
        for (int64_t r = 0; r < rows; r++)                                                        \
            if (t[r] != CT_IGNORE_INDEX) total += (double)lse[r] - (double)x[r * cols + t[r]];    \
        return total;                                                                             \
    }                                                                                             \
    static void cross_entropy_backward_##SUFFIX(const T *x, const int32_t *t, const T *lse,      \
                                                T scale, T *gx, int64_t rows, int64_t cols) {     \
        _Pragma("omp parallel for schedule(static) if (rows * cols > CT_CPU_PARALLEL_MIN)")       \
        for (int64_t r = 0; r < rows; r++) {                                                      \
            if (t[r] == CT_IGNORE_INDEX) continue;                                                \
            for (int64_t c = 0; c < cols; c++)                                                    \
                gx[r * cols + c] += scale * EXP(x[r * cols + c] - lse[r]);                        \
            gx[r * cols + t[r]] -= scale;                                                         \
        }                                                                                         \
    }

DEFINE_SOFTMAX(float, f32, expf, logf)
DEFINE_SOFTMAX(double, f64, exp, log)

int ct_cpu_log_softmax_forward(const ct_tensor *x, ct_tensor *y) {
    if (x->dtype == CT_F64)
        log_softmax_f64(x->data, y->data, ct_rows(x), ct_cols(x));
    else
        log_softmax_f32(x->data, y->data, ct_rows(x), ct_cols(x));
    return 0;
}

int ct_cpu_log_softmax_backward(const ct_tensor *y, const ct_tensor *grad_y, ct_tensor *grad_x) {
    if (y->dtype == CT_F64)
        log_softmax_backward_f64(y->data, grad_y->data, grad_x->data, ct_rows(y), ct_cols(y));
    else
        log_softmax_backward_f32(y->data, grad_y->data, grad_x->data, ct_rows(y), ct_cols(y));
    return 0;
}

static int64_t count_targets(const ct_tensor *targets, int64_t cols) {
    const int32_t *t = targets->data;
    int64_t count = 0, n = ct_numel(targets);
    for (int64_t r = 0; r < n; r++) {
        if (t[r] == CT_IGNORE_INDEX) continue;
        if (t[r] < 0 || t[r] >= cols) {
            ct_fail("cross_entropy: target %d at row %lld is outside [0, %lld) (use -100 to ignore a position)",
                    t[r], (long long)r, (long long)cols);
            return -1;
        }
        count++;
    }
    return count;
}

int ct_cpu_cross_entropy_forward(const ct_tensor *logits, const ct_tensor *targets, ct_reduction reduction,
                                 ct_tensor *row_logsumexp, ct_tensor *out) {
    int64_t rows = ct_rows(logits), cols = ct_cols(logits);
    int64_t count = count_targets(targets, cols);
    if (count < 0) return -1;
    double total = logits->dtype == CT_F64
                       ? cross_entropy_f64(logits->data, targets->data, row_logsumexp->data, rows, cols)
                       : cross_entropy_f32(logits->data, targets->data, row_logsumexp->data, rows, cols);
    /* The mean over zero targets is 0 (nothing to learn from), not NaN. */
    ct_set(out, 0, reduction == CT_REDUCE_MEAN ? (count ? total / (double)count : 0.0) : total);
    return 0;
}

int ct_cpu_cross_entropy_backward(const ct_tensor *logits, const ct_tensor *targets, ct_reduction reduction,
                                  const ct_tensor *row_logsumexp, const ct_tensor *grad_out,
                                  ct_tensor *grad_logits) {
    int64_t rows = ct_rows(logits), cols = ct_cols(logits);
    int64_t count = count_targets(targets, cols);
    if (count <= 0) return count;
    double scale = ct_get(grad_out, 0) / (reduction == CT_REDUCE_MEAN ? (double)count : 1.0);
    if (logits->dtype == CT_F64)
        cross_entropy_backward_f64(logits->data, targets->data, row_logsumexp->data, scale, grad_logits->data,
                                   rows, cols);
    else
        cross_entropy_backward_f32(logits->data, targets->data, row_logsumexp->data, (float)scale,
                                   grad_logits->data, rows, cols);
    return 0;
}
