// Range checks of index tensors on the device (embedding ids, cross-entropy targets), so a bad
// index fails with the CPU's message instead of reading out of bounds.
#include "kernels/cuda/cuda_kernels.h"

__global__ void first_bad_index_kernel(const int32_t *indices, int64_t n, int64_t limit, int64_t ignored,
                                       unsigned long long *first) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        if (indices[i] != ignored && (indices[i] < 0 || indices[i] >= limit)) atomicMin(first, (unsigned long long)i);
}

int ct_cuda_first_bad_index(const int32_t *indices, int64_t n, int64_t limit, int64_t ignored,
                            int64_t *position, int32_t *value) {
    if (n == 0) return 0;
    cudaStream_t stream;
    CT_CUDA_STREAM(stream);
    ct_cuda_scratch flag;
    CT_TRY(flag.alloc(sizeof(unsigned long long), "index range check"));
    CT_CUDA_CHECK(cudaMemsetAsync(flag.data, 0xff, sizeof(unsigned long long), stream));
    first_bad_index_kernel<<<ct_cuda_blocks(n), CT_CUDA_THREADS, 0, stream>>>(indices, n, limit, ignored,
                                                                                (unsigned long long *)flag.data);
    CT_CUDA_CHECK_LAUNCH("first_bad_index");
    unsigned long long first = 0;
    CT_TRY(ct_cuda_copy(&first, flag.data, sizeof first, 1));
    if (first == ~0ull) return 0;
    *position = (int64_t)first;
    CT_TRY(ct_cuda_copy(value, indices + first, sizeof *value, 1));
    return 1;
}
