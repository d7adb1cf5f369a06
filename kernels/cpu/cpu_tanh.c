/* tanh and its backward, elementwise. */
#include <math.h>

#include "kernels/cpu/cpu_kernels.h"

#define DEFINE_TANH(T, SUFFIX, TANH)                                                          \
    static void tanh_##SUFFIX(const T *x, T *y, int64_t n) {                                   \
        _Pragma("omp parallel for schedule(static) if (n > CT_CPU_PARALLEL_MIN)")              \
        for (int64_t i = 0; i < n; i++) y[i] = TANH(x[i]);                                     \
    }                                                                                          \
    static void tanh_backward_##SUFFIX(const T *y, const T *gy, T *gx, int64_t n) {           \
        _Pragma("omp parallel for schedule(static) if (n > CT_CPU_PARALLEL_MIN)")              \
        for (int64_t i = 0; i < n; i++) gx[i] += gy[i] * (1 - y[i] * y[i]);                   \
    }

DEFINE_TANH(float, f32, tanhf)
DEFINE_TANH(double, f64, tanh)

int ct_cpu_tanh_forward(const ct_tensor *x, ct_tensor *y) {
    if (x->dtype == CT_F64) tanh_f64(x->data, y->data, ct_numel(x));
    else tanh_f32(x->data, y->data, ct_numel(x));
    return 0;
}

int ct_cpu_tanh_backward(const ct_tensor *y, const ct_tensor *grad_y, ct_tensor *grad_x) {
    if (y->dtype == CT_F64) tanh_backward_f64(y->data, grad_y->data, grad_x->data, ct_numel(y));
    else tanh_backward_f32(y->data, grad_y->data, grad_x->data, ct_numel(y));
    return 0;
}
