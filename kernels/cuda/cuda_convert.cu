// dtype conversion (kernels/backend.h: convert): f32 <-> bf16 rounded to nearest even bit for
// bit as the CPU (ct_f32_to_bf16), f64 <-> f32 / bf16, or a plain copy for the same dtype.
#include "kernels/cuda/cuda_kernels.h"

// y = x converted; f64 <-> f32 goes through double so nothing is rounded twice.
__global__ void convert_kernel(ct_cuda_ref x, ct_cuda_ref y, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        ct_cuda_store<double>(y, i, ct_cuda_load<double>(x, i));
}

static bool convertible(ct_dtype d) { return d == CT_F32 || d == CT_F64 || d == CT_BF16; }

extern "C" int ct_cuda_convert(const ct_tensor *x, ct_tensor *y) {
    int64_t n = ct_numel(x);
    if (n == 0) return 0;
    if (x->dtype == y->dtype && !(x->dtype == CT_I8 && x->scale)) return ct_cuda_copy(y->data, x->data, ct_nbytes(x), 2);
    if (!convertible(x->dtype) || !convertible(y->dtype))
        return ct_fail("convert: %s to %s is not supported on cuda (f32, f64 and bf16 only); convert on the cpu",
                       ct_dtype_name(x->dtype), ct_dtype_name(y->dtype));
    cudaStream_t stream;
    CT_CUDA_STREAM(stream);
    convert_kernel<<<ct_cuda_blocks(n), CT_CUDA_THREADS, 0, stream>>>(ct_cuda_ref_of(x), ct_cuda_ref_of(y), n);
    CT_CUDA_CHECK_LAUNCH("convert");
    return 0;
}

