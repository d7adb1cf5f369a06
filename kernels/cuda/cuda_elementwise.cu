// Elementwise kernels with row broadcasting (kernels/backend.h: binary, axpby, mul_accumulate,
// add_scalar): the second operand has the first's shape or is one row repeated
// over every row. Operands are f32 or bf16 (computed in f32), or all f64. One thread per element,
// grid-stride.
#include "kernels/cuda/cuda_kernels.h"

// Columns of the broadcast row, or 0 when the second operand has the first's shape.
static int64_t broadcast_cols(const ct_tensor *x, const ct_tensor *second) {
    if (ct_numel(second) != ct_numel(x) && ct_numel(second) == ct_cols(x)) return ct_cols(x);
    return 0;
}

template <typename T>
__global__ void binary_kernel(int op, ct_cuda_ref a, ct_cuda_ref b, ct_cuda_ref out, int64_t n, int64_t row) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        T x = ct_cuda_load<T>(a, i), y = ct_cuda_load<T>(b, row ? i % row : i);
        ct_cuda_store<T>(out, i, op == CT_BINARY_ADD ? x + y : x * y);
    }
}

extern "C" int ct_cuda_binary(ct_binary_op op, const ct_tensor *a, const ct_tensor *b, ct_tensor *out) {
    int64_t n = ct_numel(a);
    if (n == 0) return 0;
    cudaStream_t stream;
    CT_CUDA_STREAM(stream);
    if (a->dtype == CT_F64)
        binary_kernel<double><<<ct_cuda_blocks(n), CT_CUDA_THREADS, 0, stream>>>(
            (int)op, ct_cuda_ref_of(a), ct_cuda_ref_of(b), ct_cuda_ref_of(out), n, broadcast_cols(a, b));
    else
        binary_kernel<float><<<ct_cuda_blocks(n), CT_CUDA_THREADS, 0, stream>>>(
            (int)op, ct_cuda_ref_of(a), ct_cuda_ref_of(b), ct_cuda_ref_of(out), n, broadcast_cols(a, b));
    CT_CUDA_CHECK_LAUNCH("binary");
    return 0;
}

template <typename T>
__global__ void axpby_kernel(T alpha, ct_cuda_ref x, T beta, T *y, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        y[i] = beta == T(0) ? alpha * ct_cuda_load<T>(x, i) : alpha * ct_cuda_load<T>(x, i) + beta * y[i];
}

extern "C" int ct_cuda_axpby(double alpha, const ct_tensor *x, double beta, ct_tensor *y) {
    int64_t n = ct_numel(y);
    if (n == 0) return 0;
    cudaStream_t stream;
    CT_CUDA_STREAM(stream);
    if (y->dtype == CT_F64)
        axpby_kernel<double><<<ct_cuda_blocks(n), CT_CUDA_THREADS, 0, stream>>>(alpha, ct_cuda_ref_of(x), beta,
                                                                                (double *)y->data, n);
    else
        axpby_kernel<float><<<ct_cuda_blocks(n), CT_CUDA_THREADS, 0, stream>>>(
            (float)alpha, ct_cuda_ref_of(x), (float)beta, (float *)y->data, n);
    CT_CUDA_CHECK_LAUNCH("axpby");
    return 0;
}

template <typename T>
__global__ void mul_accumulate_kernel(ct_cuda_ref x, ct_cuda_ref y, T *dst, int64_t n, int64_t row) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        dst[i] += ct_cuda_load<T>(x, i) * ct_cuda_load<T>(y, row ? i % row : i);
}

extern "C" int ct_cuda_mul_accumulate(const ct_tensor *x, const ct_tensor *y, ct_tensor *dst) {
    int64_t n = ct_numel(x);
    if (n == 0) return 0;
    cudaStream_t stream;
    CT_CUDA_STREAM(stream);
    if (dst->dtype == CT_F64)
        mul_accumulate_kernel<double><<<ct_cuda_blocks(n), CT_CUDA_THREADS, 0, stream>>>(
            ct_cuda_ref_of(x), ct_cuda_ref_of(y), (double *)dst->data, n, broadcast_cols(x, y));
    else
        mul_accumulate_kernel<float><<<ct_cuda_blocks(n), CT_CUDA_THREADS, 0, stream>>>(
            ct_cuda_ref_of(x), ct_cuda_ref_of(y), (float *)dst->data, n, broadcast_cols(x, y));
    CT_CUDA_CHECK_LAUNCH("mul_accumulate");
    return 0;
}

template <typename T>
__global__ void add_scalar_kernel(T *dst, T value, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        dst[i] += value;
}

extern "C" int ct_cuda_add_scalar(ct_tensor *dst, double value) {
    int64_t n = ct_numel(dst);
    if (n == 0) return 0;
    cudaStream_t stream;
    CT_CUDA_STREAM(stream);
    if (dst->dtype == CT_F64)
        add_scalar_kernel<double><<<ct_cuda_blocks(n), CT_CUDA_THREADS, 0, stream>>>((double *)dst->data, value, n);
    else
        add_scalar_kernel<float><<<ct_cuda_blocks(n), CT_CUDA_THREADS, 0, stream>>>((float *)dst->data,
                                                                                   (float)value, n);
    CT_CUDA_CHECK_LAUNCH("add_scalar");
    return 0;
}
