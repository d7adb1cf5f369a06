/* RMSNorm over the last dimension (HF LlamaRMSNorm): y = x * rstd * w, rstd = 1/sqrt(mean(x^2) + eps).
 *
 * Row sums are vectorized (omp simd) in double: their order depends on the build's vector width,
 * never on the thread count, so a build gives bit-identical results with any number of threads.
 * The weight gradient is summed per block of RMS_ROW_BLOCK rows into its own partial row, and the
 * partials are added in block order. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/error.h"
#include "kernels/cpu/cpu_kernels.h"

#define RMS_ROW_BLOCK 32

#define DEFINE_RMS_NORM(T, SUFFIX)                                                                 \
    /* sum of x[c] * y[c] * z[c] (z == NULL: of x[c] * y[c]) in double */                          \
    static double dot_##SUFFIX(const T *restrict x, const T *restrict y, const T *restrict z,      \
                               int64_t n) {                                                        \
        double total = 0;                                                                          \
        if (z) {                                                                                   \
            _Pragma("omp simd reduction(+ : total)")                                               \
            for (int64_t i = 0; i < n; i++) total += (double)(x[i] * y[i] * z[i]);                 \
        } else {                                                                                   \
            _Pragma("omp simd reduction(+ : total)")                                               \
            for (int64_t i = 0; i < n; i++) total += (double)(x[i] * y[i]);                        \
        }                                                                                          \
        return total;                                                                              \
    }                                                                                              \
    static void rms_forward_##SUFFIX(const T *x, const T *restrict w, double eps, T *rstd, T *y,   \
                                     int64_t rows, int64_t cols) {                                 \
        _Pragma("omp parallel for schedule(static) if (rows * cols > CT_CPU_PARALLEL_MIN)")        \
        for (int64_t r = 0; r < rows; r++) {                                                       \
            const T *restrict xr = x + r * cols;                                                   \
            T *restrict yr = y + r * cols;                                                         \
            T s = (T)(1.0 / sqrt(dot_##SUFFIX(xr, xr, NULL, cols) / (double)cols + eps));         \
            rstd[r] = s;                                                                           \
            _Pragma("omp simd")                                                                    \
            for (int64_t c = 0; c < cols; c++) yr[c] = xr[c] * s * w[c];                           \
        }                                                                                          \
    }                                                                                              \
    /* gx += s * g * w - x * s^3 / D * sum(g * w * x);  partial[block] += g * x * s */            \
    static void rms_backward_##SUFFIX(const T *x, const T *restrict w, const T *rstd, const T *g, \
                                      T *gx, T *partials, int64_t rows, int64_t cols) {            \
        int64_t n_blocks = (rows + RMS_ROW_BLOCK - 1) / RMS_ROW_BLOCK;                             \
        _Pragma("omp parallel for schedule(static) if (rows * cols > CT_CPU_PARALLEL_MIN)")        \
        for (int64_t b = 0; b < n_blocks; b++) {                                                   \
            int64_t end = (b + 1) * RMS_ROW_BLOCK < rows ? (b + 1) * RMS_ROW_BLOCK : rows;         \
            T *restrict part = partials ? partials + b * cols : NULL;                              \
            if (part) memset(part, 0, (size_t)cols * sizeof(T));                                   \
            for (int64_t r = b * RMS_ROW_BLOCK; r < end; r++) {                                    \
                const T *restrict xr = x + r * cols, *restrict gr = g + r * cols;                  \
                T s = rstd[r];                                                                     \
                if (gx) {                                                                          \
                    T *restrict gxr = gx + r * cols;                                               \
                    double gwx = dot_##SUFFIX(gr, w, xr, cols);                                    \
                    T k = (T)(gwx * (double)s * (double)s * (double)s / (double)cols);            \
                    _Pragma("omp simd")                                                            \
                    for (int64_t c = 0; c < cols; c++) gxr[c] += s * gr[c] * w[c] - k * xr[c];    \
                }                                                                                  \
                if (part) {                                                                        \
                    _Pragma("omp simd")                                                            \
                    for (int64_t c = 0; c < cols; c++) part[c] += gr[c] * xr[c] * s;               \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
    static void add_partials_##SUFFIX(const T *partials, int64_t n_blocks, T *gw, int64_t cols) {  \
        _Pragma("omp parallel for schedule(static) if (n_blocks * cols > CT_CPU_PARALLEL_MIN)")    \
        for (int64_t c = 0; c < cols; c++) {                                                       \
            double total = 0;                                                                      \
            for (int64_t b = 0; b < n_blocks; b++) total += (double)partials[b * cols + c];       \
            gw[c] += (T)total;                                                                     \
        }                                                                                          \
    }

DEFINE_RMS_NORM(float, f32)
DEFINE_RMS_NORM(double, f64)

int ct_cpu_rms_norm_forward(const ct_tensor *x, const ct_tensor *weight, double eps, ct_tensor *rstd, ct_tensor *y) {
    if (x->dtype == CT_F64)
        rms_forward_f64(x->data, weight->data, eps, rstd->data, y->data, ct_rows(x), ct_cols(x));
    else
        rms_forward_f32(x->data, weight->data, eps, rstd->data, y->data, ct_rows(x), ct_cols(x));
    return 0;
}

int ct_cpu_rms_norm_backward(const ct_tensor *x, const ct_tensor *weight, const ct_tensor *rstd,
                             const ct_tensor *grad_y, ct_tensor *grad_x, ct_tensor *grad_weight) {
    int64_t rows = ct_rows(x), cols = ct_cols(x);
    int64_t n_blocks = (rows + RMS_ROW_BLOCK - 1) / RMS_ROW_BLOCK;
    size_t esize = ct_dtype_size(x->dtype);
    void *partials = NULL;
    if (grad_weight) {
        partials = ct_malloc((size_t)n_blocks * (size_t)cols * esize, "rms_norm weight-gradient partials");
        if (!partials) return -1;
    }
    void *gx = grad_x ? grad_x->data : NULL;
    if (x->dtype == CT_F64) {
        rms_backward_f64(x->data, weight->data, rstd->data, grad_y->data, gx, partials, rows, cols);
        if (partials) add_partials_f64(partials, n_blocks, grad_weight->data, cols);
    } else {
        rms_backward_f32(x->data, weight->data, rstd->data, grad_y->data, gx, partials, rows, cols);
        if (partials) add_partials_f32(partials, n_blocks, grad_weight->data, cols);
    }
    free(partials);
    return 0;
}
