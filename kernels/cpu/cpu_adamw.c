/* The optimizer's kernels. AdamW (Loshchilov & Hutter) as PyTorch computes it: decoupled weight
 * decay applied to the parameter before the Adam step, bias-corrected moments, eps added after
 * the square root. The multi-tensor form runs one loop per tensor, so a tensor's result does not
 * depend on the rest of the list. scale_multi is the gradient scaling of norm clipping. */
#include <math.h>

#include "kernels/cpu/cpu_kernels.h"

#define DEFINE_ADAMW(T, SUFFIX, SQRT)                                                              \
    static void adamw_##SUFFIX(T *p, const T *g, T *m, T *v, int64_t n, const ct_adamw_hparams *h, \
                               int64_t step) {                                                     \
        double bias1 = 1.0 - pow(h->beta1, (double)step), bias2 = 1.0 - pow(h->beta2, (double)step); \
        T decay = (T)(1.0 - h->lr * h->weight_decay), step_size = (T)(h->lr / bias1);              \
        T beta1 = (T)h->beta1, beta2 = (T)h->beta2, eps = (T)h->eps;                              \
        T inv_sqrt_bias2 = (T)(1.0 / sqrt(bias2));                                                  \
        _Pragma("omp parallel for schedule(static) if (n > CT_CPU_PARALLEL_MIN)")                  \
        for (int64_t i = 0; i < n; i++) {                                                          \
            m[i] = beta1 * m[i] + (1 - beta1) * g[i];                                              \
            v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];                                       \
            p[i] = p[i] * decay - step_size * m[i] / (SQRT(v[i]) * inv_sqrt_bias2 + eps);         \
        }                                                                                          \
    }                                                                                              \
    static void scale_##SUFFIX(T *x, int64_t n, T factor) {                                        \
        _Pragma("omp parallel for schedule(static) if (n > CT_CPU_PARALLEL_MIN)")                  \
        for (int64_t i = 0; i < n; i++) x[i] = x[i] * factor;                                      \
    }

DEFINE_ADAMW(float, f32, sqrtf)
DEFINE_ADAMW(double, f64, sqrt)

static void adamw_tensor(ct_tensor *param, const ct_tensor *grad, ct_tensor *m, ct_tensor *v,
                         const ct_adamw_hparams *h, int64_t step) {
    if (param->dtype == CT_F64)
        adamw_f64(param->data, grad->data, m->data, v->data, ct_numel(param), h, step);
    else
        adamw_f32(param->data, grad->data, m->data, v->data, ct_numel(param), h, step);
}

int ct_cpu_adamw_multi(int n, ct_tensor *const *params, ct_tensor *const *grads, ct_tensor *const *m,
                       ct_tensor *const *v, const double *weight_decay, const ct_adamw_hparams *h, int64_t step) {
    for (int i = 0; i < n; i++) {
        ct_adamw_hparams group = *h;
        group.weight_decay = weight_decay[i];
        adamw_tensor(params[i], grads[i], m[i], v[i], &group, step);
    }
    return 0;
}

int ct_cpu_scale_multi(int n, ct_tensor *const *x, double factor) {
    for (int i = 0; i < n; i++) {
        if (x[i]->dtype == CT_F64)
            scale_f64(x[i]->data, ct_numel(x[i]), factor);
        else
            scale_f32(x[i]->data, ct_numel(x[i]), (float)factor);
    }
    return 0;
}

/* Pruning masks on the optimizer's tensors: a pruned entry becomes +0 (not x * 0, which
 * keeps a sign and a NaN), as the CUDA kernel writes it. */
int ct_cpu_mask_multi(int n, ct_tensor *const *x, const ct_tensor *const *mask) {
    for (int i = 0; i < n; i++) {
        const float *mk = mask[i]->data;
        const int64_t count = ct_numel(x[i]);
        if (x[i]->dtype == CT_F64) {
            double *d = x[i]->data;
            _Pragma("omp parallel for schedule(static) if (count > CT_CPU_PARALLEL_MIN)")
            for (int64_t k = 0; k < count; k++) d[k] = mk[k] != 0 ? d[k] : 0;
        } else {
            float *d = x[i]->data;
            _Pragma("omp parallel for schedule(static) if (count > CT_CPU_PARALLEL_MIN)")
            for (int64_t k = 0; k < count; k++) d[k] = mk[k] != 0 ? d[k] : 0;
        }
    }
    return 0;
}
