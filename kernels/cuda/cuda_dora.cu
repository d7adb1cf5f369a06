// DoRA's detached weight norm (kernels/backend.h: dora_row_norms): norm[o] = ||w[o, :] + s * B[o, :] A||_2
// for a frozen w [out, in] in f32, bf16 or i8 (scales per row or per block, on the device or the
// host), A [r, in] and B [out, r] f32, or all f64. One block per row: each thread widens its
// columns of the row in registers (no f32 copy of a narrow weight), adds s * B[o, :]·A[:, i], and
// the squares are summed in double by a fixed tree (deterministic run to run).
#include "kernels/cuda/cuda_kernels.h"

__device__ __forceinline__ double weight_at(const void *w, int dtype, const float *scale, int64_t block, int64_t o,
                                           int64_t i, int64_t in) {
    const int64_t at = o * in + i;
    if (dtype == CT_F64) return ((const double *)w)[at];
    if (dtype == CT_BF16) return (double)ct_cuda_from_bf16(((const uint16_t *)w)[at]);
    if (dtype == CT_I8) {
        float s = 1.0f;
        if (scale) s = block ? scale[o * ((in + block - 1) / block) + i / block] : scale[o];
        return (double)((float)((const int8_t *)w)[at] * s);  // rounded once, as the CPU widens it
    }
    return (double)((const float *)w)[at];
}

template <typename T>
__global__ void dora_norm_kernel(const void *w, int dtype, const float *scale, int64_t block, const T *A, const T *B,
                                 T s, int64_t in, int64_t r, bool reciprocal, T *norm) {
    __shared__ double shared[CT_CUDA_THREADS];
    const int64_t o = blockIdx.x;
    double sum = 0;
    for (int64_t i = threadIdx.x; i < in; i += CT_CUDA_THREADS) {
        T delta = 0;
        for (int64_t k = 0; k < r; k++) delta += B[o * r + k] * A[k * in + i];
        const T v = (T)weight_at(w, dtype, scale, block, o, i, in) + s * delta;
        sum += (double)v * (double)v;
    }
    sum = ct_cuda_block_sum(sum, shared);
    if (threadIdx.x == 0) norm[o] = (T)(reciprocal ? 1 / sqrt(sum) : sqrt(sum));
}

extern "C" int ct_cuda_dora_row_norms(const ct_tensor *w, const ct_tensor *A, const ct_tensor *B, double scale,
                                      bool reciprocal, ct_tensor *norm) {
    cudaStream_t stream;
    CT_CUDA_STREAM(stream);
    const int64_t out = ct_rows(w), in = ct_cols(w), r = ct_rows(A);
    if (out == 0) return 0;
    const float *scales = NULL;
    int64_t block = 0;
    ct_cuda_scratch scale_copy;
    if (w->dtype == CT_I8 && w->scale) {
        block = w->scale_block;
        scales = (const float *)w->scale->data;
        if (w->scale->device == CT_CPU) {
            const size_t bytes = ct_nbytes(w->scale);
            if (scale_copy.alloc(bytes + 1, "dora i8 scales") < 0 || ct_cuda_copy(scale_copy.data, scales, bytes, 0) < 0)
                return -1;
            scales = (const float *)scale_copy.data;
        }
    }
    if (A->dtype == CT_F64)
        dora_norm_kernel<double><<<(unsigned)out, CT_CUDA_THREADS, 0, stream>>>(
            w->data, (int)w->dtype, scales, block, (const double *)A->data, (const double *)B->data, scale, in, r,
            reciprocal, (double *)norm->data);
    else
        dora_norm_kernel<float><<<(unsigned)out, CT_CUDA_THREADS, 0, stream>>>(
            w->data, (int)w->dtype, scales, block, (const float *)A->data, (const float *)B->data, (float)scale, in, r,
            reciprocal, (float *)norm->data);
    return ct_cuda_check_launch("dora_row_norms", __FILE__, __LINE__);
}
