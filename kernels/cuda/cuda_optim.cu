// AdamW as PyTorch computes it (kernels/backend.h: adamw_step; kernels/cpu/cpu_adamw.c is the
// reference): decoupled weight decay applied to the parameter before the Adam step,
// bias-corrected moments, eps added after the square root. The step's constants are computed on
// the host exactly as the CPU computes them. One launch per tensor (a multi-tensor launch over
// all parameters is a later optimization).
#include <math.h>

#include "kernels/cuda/cuda_kernels.h"

template <typename T>
__global__ void adamw_kernel(T *p, const T *g, T *m, T *v, int64_t n, T decay, T step_size, T beta1, T beta2, T eps,
                             T inv_sqrt_bias2) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        T mi = beta1 * m[i] + (1 - beta1) * g[i];
        T vi = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] * decay - step_size * mi / (sqrt(vi) * inv_sqrt_bias2 + eps);
    }
}

template <typename T>
static int adamw_typed(ct_tensor *param, const ct_tensor *grad, ct_tensor *m, ct_tensor *v, const ct_adamw_hparams *h,
                       int64_t step, cudaStream_t stream) {
    int64_t n = ct_numel(param);
    double bias1 = 1.0 - pow(h->beta1, (double)step), bias2 = 1.0 - pow(h->beta2, (double)step);
    adamw_kernel<T><<<ct_cuda_blocks(n), CT_CUDA_THREADS, 0, stream>>>(
        (T *)param->data, (const T *)grad->data, (T *)m->data, (T *)v->data, n, (T)(1.0 - h->lr * h->weight_decay),
        (T)(h->lr / bias1), (T)h->beta1, (T)h->beta2, (T)h->eps, (T)(1.0 / sqrt(bias2)));
    CT_CUDA_CHECK_LAUNCH("adamw");
    return 0;
}

extern "C" int ct_cuda_adamw_step(ct_tensor *param, const ct_tensor *grad, ct_tensor *m, ct_tensor *v,
                                  const ct_adamw_hparams *h, int64_t step) {
    if (ct_numel(param) == 0) return 0;
    cudaStream_t stream;
    CT_CUDA_STREAM(stream);
    if (param->dtype == CT_F64) return adamw_typed<double>(param, grad, m, v, h, step, stream);
    return adamw_typed<float>(param, grad, m, v, h, step, stream);
}
