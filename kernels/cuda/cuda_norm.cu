// RMSNorm over the last dimension (kernels/backend.h: rms_norm_forward, rms_norm_backward):
// y = x * rstd * w, rstd = 1 / sqrt(mean(x^2) + eps). One block per row; row sums in double by a
// fixed tree. f32 and bf16 rows compute in f32 (rstd and gradients f32), f64 rows in double.
//
// The weight gradient is summed as on the CPU: each block of RMS_ROW_BLOCK rows into a partial
// row (one thread per column, rows in order), then the partials in block order in double. No
// atomics, so it repeats run to run.
#include "kernels/cuda/cuda_kernels.h"

#define RMS_ROW_BLOCK 32

template <typename T>
__global__ void rms_norm_forward_kernel(ct_cuda_ref x, ct_cuda_ref w, double eps, T *rstd, ct_cuda_ref y,
                                        int64_t cols) {
    __shared__ double shared[CT_CUDA_THREADS];
    int64_t r = blockIdx.x, at = r * cols;
    double squares = 0;
    for (int64_t c = threadIdx.x; c < cols; c += CT_CUDA_THREADS) {
        T v = ct_cuda_load<T>(x, at + c);
        squares += (double)(v * v);
    }
    squares = ct_cuda_block_sum(squares, shared);
    T s = (T)(1.0 / sqrt(squares / (double)cols + eps));
    if (threadIdx.x == 0) rstd[r] = s;
    for (int64_t c = threadIdx.x; c < cols; c += CT_CUDA_THREADS)
        ct_cuda_store<T>(y, at + c, ct_cuda_load<T>(x, at + c) * s * ct_cuda_load<T>(w, c));
}

extern "C" int ct_cuda_rms_norm_forward(const ct_tensor *x, const ct_tensor *weight, double eps, ct_tensor *rstd,
                                        ct_tensor *y) {
    int64_t rows = ct_rows(x), cols = ct_cols(x);
    if (rows * cols == 0) return 0;
    cudaStream_t stream;
    CT_CUDA_STREAM(stream);
    if (x->dtype == CT_F64)
        rms_norm_forward_kernel<double><<<(unsigned)rows, CT_CUDA_THREADS, 0, stream>>>(
            ct_cuda_ref_of(x), ct_cuda_ref_of(weight), eps, (double *)rstd->data, ct_cuda_ref_of(y), cols);
    else
        rms_norm_forward_kernel<float><<<(unsigned)rows, CT_CUDA_THREADS, 0, stream>>>(
            ct_cuda_ref_of(x), ct_cuda_ref_of(weight), eps, (float *)rstd->data, ct_cuda_ref_of(y), cols);
    CT_CUDA_CHECK_LAUNCH("rms_norm_forward");
    return 0;
}

// gx += s * g * w - x * s^3 / D * sum(g * w * x), one block per row.
template <typename T>
__global__ void rms_norm_grad_x_kernel(ct_cuda_ref x, ct_cuda_ref w, const T *rstd, const T *g, T *gx, int64_t cols) {
    __shared__ double shared[CT_CUDA_THREADS];
    int64_t r = blockIdx.x, at = r * cols;
    double gwx = 0;
    for (int64_t c = threadIdx.x; c < cols; c += CT_CUDA_THREADS)
        gwx += (double)(g[at + c] * ct_cuda_load<T>(w, c) * ct_cuda_load<T>(x, at + c));
    gwx = ct_cuda_block_sum(gwx, shared);
    T s = rstd[r];
    T k = (T)(gwx * (double)s * (double)s * (double)s / (double)cols);
    for (int64_t c = threadIdx.x; c < cols; c += CT_CUDA_THREADS)
        gx[at + c] += s * g[at + c] * ct_cuda_load<T>(w, c) - k * ct_cuda_load<T>(x, at + c);
}

// part[b, c] = sum over the rows of block b of g * x * s (thread per column, rows in order).
template <typename T>
__global__ void rms_norm_weight_partials_kernel(ct_cuda_ref x, const T *rstd, const T *g, T *part, int64_t rows,
                                                int64_t cols) {
    int64_t c = blockIdx.x * (int64_t)blockDim.x + threadIdx.x, b = blockIdx.y;
    if (c >= cols) return;
    T total = 0;
    int64_t end = (b + 1) * RMS_ROW_BLOCK < rows ? (b + 1) * RMS_ROW_BLOCK : rows;
    for (int64_t r = b * RMS_ROW_BLOCK; r < end; r++) total += g[r * cols + c] * ct_cuda_load<T>(x, r * cols + c) * rstd[r];
    part[b * cols + c] = total;
}

template <typename T>
__global__ void rms_norm_weight_sum_kernel(const T *part, int64_t n_blocks, T *gw, int64_t cols) {
    int64_t c = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (c >= cols) return;
    double total = 0;
    for (int64_t b = 0; b < n_blocks; b++) total += (double)part[b * cols + c];
    gw[c] += (T)total;
}

template <typename T>
static int rms_norm_backward_typed(const ct_tensor *x, const ct_tensor *weight, const ct_tensor *rstd,
                                   const ct_tensor *grad_y, ct_tensor *grad_x, ct_tensor *grad_weight,
                                   cudaStream_t stream) {
    int64_t rows = ct_rows(x), cols = ct_cols(x), n_blocks = (rows + RMS_ROW_BLOCK - 1) / RMS_ROW_BLOCK;
    const T *s = (const T *)rstd->data, *g = (const T *)grad_y->data;
    if (grad_x) {
        rms_norm_grad_x_kernel<T><<<(unsigned)rows, CT_CUDA_THREADS, 0, stream>>>(
            ct_cuda_ref_of(x), ct_cuda_ref_of(weight), s, g, (T *)grad_x->data, cols);
        CT_CUDA_CHECK_LAUNCH("rms_norm_grad_x");
    }
    if (!grad_weight) return 0;
    ct_cuda_scratch partials;
    CT_TRY(partials.alloc((size_t)(n_blocks * cols) * sizeof(T), "rms_norm weight-gradient partials"));
    dim3 grid((unsigned)((cols + CT_CUDA_THREADS - 1) / CT_CUDA_THREADS), (unsigned)n_blocks);
    rms_norm_weight_partials_kernel<T><<<grid, CT_CUDA_THREADS, 0, stream>>>(ct_cuda_ref_of(x), s, g,
                                                                             (T *)partials.data, rows, cols);
    CT_CUDA_CHECK_LAUNCH("rms_norm_weight_partials");
    rms_norm_weight_sum_kernel<T><<<grid.x, CT_CUDA_THREADS, 0, stream>>>((const T *)partials.data, n_blocks,
                                                                          (T *)grad_weight->data, cols);
    CT_CUDA_CHECK_LAUNCH("rms_norm_weight_sum");
    return 0;
}

extern "C" int ct_cuda_rms_norm_backward(const ct_tensor *x, const ct_tensor *weight, const ct_tensor *rstd,
                                         const ct_tensor *grad_y, ct_tensor *grad_x, ct_tensor *grad_weight) {
    if (ct_rows(x) * ct_cols(x) == 0) return 0;
    if (ct_rows(x) > 65535 * (int64_t)RMS_ROW_BLOCK)
        return ct_fail("rms_norm backward: %lld rows on cuda (at most %lld); split the batch",
                       (long long)ct_rows(x), 65535LL * RMS_ROW_BLOCK);
    cudaStream_t stream;
    CT_CUDA_STREAM(stream);
    if (x->dtype == CT_F64) return rms_norm_backward_typed<double>(x, weight, rstd, grad_y, grad_x, grad_weight, stream);
    return rms_norm_backward_typed<float>(x, weight, rstd, grad_y, grad_x, grad_weight, stream);
}
