// Dropout with the CPU's counter-based mask (kernels/backend.h: dropout): element i is kept when
// ct_counter_uniform(seed, stream, i) >= p (core/rng.h, the same hash on host and device), so
// the GPU draws the CPU's mask bit for bit and any recomputation draws it again.
#include "core/rng.h"
#include "kernels/cuda/cuda_kernels.h"

template <typename T>
__global__ void dropout_kernel(const T *x, double p, uint64_t key, int accumulate, T *y, int64_t n) {
    T scale = (T)(1.0 / (1.0 - p));
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        // ct_counter_uniform with the (seed, stream) half of the hash hoisted, as the CPU does
        double draw = (double)(float)(ct_mix64(key ^ (uint64_t)i) >> 40) * (1.0 / 16777216.0);
        T v = draw >= p ? x[i] * scale : (T)0;
        y[i] = accumulate ? y[i] + v : v;
    }
}

extern "C" int ct_cuda_dropout(const ct_tensor *x, double p, uint64_t seed, uint64_t stream_id, bool accumulate,
                               ct_tensor *y) {
    int64_t n = ct_numel(x);
    if (n == 0) return 0;
    uint64_t key = ct_mix64(seed ^ ct_mix64(stream_id));
    cudaStream_t stream;
    CT_CUDA_STREAM(stream);
    if (x->dtype == CT_F64)
        dropout_kernel<double><<<ct_cuda_blocks(n), CT_CUDA_THREADS, 0, stream>>>((const double *)x->data, p, key,
                                                                                 accumulate, (double *)y->data, n);
    else
        dropout_kernel<float><<<ct_cuda_blocks(n), CT_CUDA_THREADS, 0, stream>>>((const float *)x->data, p, key,
                                                                                accumulate, (float *)y->data, n);
    CT_CUDA_CHECK_LAUNCH("dropout");
    return 0;
}
