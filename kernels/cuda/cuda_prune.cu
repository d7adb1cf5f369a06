// Pruning masks on the GPU (kernels/backend.h: mask_multi; kernels/cpu/cpu_adamw.c is the
// reference): x *= mask for the gradients before clipping and for the weights and both AdamW
// moments after each update, so pruned entries are exactly zero on the device as on the CPU.
// A pruned entry becomes +0 on both, so the result is the CPU's bit for bit. One launch per tensor:
// the masked tensors of a model are a few dozen, once per step.
#include <limits.h>

#include "kernels/cuda/cuda_kernels.h"

namespace {

template <typename T>
__global__ void mask_kernel(T *x, const float *mask, int64_t n) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        x[i] = mask[i] != 0.0f ? x[i] : (T)0;
}

}  // namespace

extern "C" int ct_cuda_mask_multi(int n, ct_tensor *const *x, const ct_tensor *const *mask) {
    cudaStream_t stream;
    CT_CUDA_STREAM(stream);
    for (int i = 0; i < n; i++) {
        const int64_t count = ct_numel(x[i]);
        if (count == 0) continue;
        int64_t blocks = (count + CT_CUDA_THREADS - 1) / CT_CUDA_THREADS;
        if (blocks > 65535) blocks = 65535; /* the grid-stride loop covers the rest */
        if (x[i]->dtype == CT_F64)
            mask_kernel<double><<<(unsigned)blocks, CT_CUDA_THREADS, 0, stream>>>((double *)x[i]->data,
                                                                                  (const float *)mask[i]->data, count);
        else
            mask_kernel<float><<<(unsigned)blocks, CT_CUDA_THREADS, 0, stream>>>((float *)x[i]->data,
                                                                                (const float *)mask[i]->data, count);
        CT_CUDA_CHECK_LAUNCH("mask_multi");
    }
    return 0;
}
