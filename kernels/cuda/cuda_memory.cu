// CUDA device memory for ctune's arenas and persistent tensors. Every runtime call goes through
// CT_CUDA_CHECK, which turns a failure into a one-line error naming the call's file and line.
#include <cuda_runtime.h>

#include "autograd/error.h"
#include "kernels/cuda/cuda_memory.h"

#define CT_CUDA_CHECK(call)                                                                       \
    do {                                                                                          \
        cudaError_t status_ = (call);                                                             \
        if (status_ != cudaSuccess)                                                               \
            return ct_fail("cuda: %s failed at %s:%d: %s", #call, __FILE__, __LINE__,             \
                           cudaGetErrorString(status_));                                          \
    } while (0)

extern "C" int ct_cuda_device_count(void) {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
        cudaGetLastError();  // clear the sticky "no device" error so later calls report their own
        return 0;
    }
    return count;
}

extern "C" void *ct_cuda_alloc(size_t nbytes) {
    void *p = NULL;
    cudaError_t status = cudaMalloc(&p, nbytes ? nbytes : 1);
    if (status != cudaSuccess) {
        size_t free_bytes = 0, total_bytes = 0;
        cudaGetLastError();
        cudaMemGetInfo(&free_bytes, &total_bytes);
        ct_fail("out of memory on cuda: %zu bytes asked, %zu of %zu free (%s at %s:%d)", nbytes, free_bytes,
                total_bytes, cudaGetErrorString(status), __FILE__, __LINE__);
        return NULL;
    }
    return p;
}

extern "C" void ct_cuda_free(void *p) { cudaFree(p); }

extern "C" int ct_cuda_memset_zero(void *p, size_t nbytes) {
    CT_CUDA_CHECK(cudaMemset(p, 0, nbytes));
    return 0;
}

extern "C" int ct_cuda_copy(void *dst, const void *src, size_t nbytes, int kind) {
    cudaMemcpyKind kinds[3] = {cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice};
    CT_CUDA_CHECK(cudaMemcpy(dst, src, nbytes, kinds[kind]));
    return 0;
}

extern "C" int ct_cuda_synchronize(void) {
    CT_CUDA_CHECK(cudaDeviceSynchronize());
    return 0;
}
