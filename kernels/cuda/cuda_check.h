/* Checks for every CUDA runtime, cuBLAS(Lt) and cuDNN call, and for every kernel launch. A
 * failure becomes one ct_fail line naming the call, its file and line, and the library's own
 * message; the function returns -1 (the _NULL forms return NULL).
 *
 * Launch errors are asynchronous: a bad kernel reports at the next synchronizing call, far from
 * where it went wrong. Set CT_CUDA_SYNC=1 in the environment to synchronize after every launch,
 * so the failing kernel names itself (slow; for debugging on the GPU machine).
 *
 * The cuBLAS and cuDNN forms expand to calls of cublasGetStatusString / cudnnGetErrorString, so
 * only the files using them need those headers. C++ (.cu) files only. */
#ifndef CT_CUDA_CHECK_H
#define CT_CUDA_CHECK_H

#include <cuda_runtime.h>

#include "core/error.h"

#ifdef __cplusplus
extern "C" {
#endif
/* Whether CT_CUDA_SYNC=1 asks for a synchronize after each launch (read once). */
int ct_cuda_sync_after_launch(void);
/* cudaGetLastError plus, under CT_CUDA_SYNC, a stream synchronize; -1 with the kernel's name. */
int ct_cuda_check_launch(const char *kernel, const char *file, int line);
#ifdef __cplusplus
}
#endif

#define CT_CUDA_CHECK(call)                                                                           \
    do {                                                                                              \
        cudaError_t ct_status_ = (call);                                                              \
        if (ct_status_ != cudaSuccess)                                                                \
            return ct_fail("CUDA: %s failed at %s:%d: %s", #call, __FILE__, __LINE__,                 \
                           cudaGetErrorString(ct_status_));                                           \
    } while (0)

#define CT_CUDA_CHECK_NULL(call)                                                                      \
    do {                                                                                              \
        cudaError_t ct_status_ = (call);                                                              \
        if (ct_status_ != cudaSuccess) {                                                              \
            ct_fail("CUDA: %s failed at %s:%d: %s", #call, __FILE__, __LINE__,                        \
                    cudaGetErrorString(ct_status_));                                                  \
            return NULL;                                                                              \
        }                                                                                             \
    } while (0)

/* After kernel<<<...>>>(...): CT_CUDA_CHECK_LAUNCH("kernel name"); */
#define CT_CUDA_CHECK_LAUNCH(kernel)                                                                  \
    do {                                                                                              \
        if (ct_cuda_check_launch((kernel), __FILE__, __LINE__) < 0) return -1;                        \
    } while (0)

#define CT_CUBLAS_CHECK(call)                                                                         \
    do {                                                                                              \
        cublasStatus_t ct_status_ = (call);                                                           \
        if (ct_status_ != CUBLAS_STATUS_SUCCESS)                                                      \
            return ct_fail("cuBLAS: %s failed at %s:%d: %s", #call, __FILE__, __LINE__,               \
                           cublasGetStatusString(ct_status_));                                        \
    } while (0)

#define CT_CUDNN_CHECK(call)                                                                          \
    do {                                                                                              \
        cudnnStatus_t ct_status_ = (call);                                                            \
        if (ct_status_ != CUDNN_STATUS_SUCCESS)                                                       \
            return ct_fail("cuDNN: %s failed at %s:%d: %s", #call, __FILE__, __LINE__,                \
                           cudnnGetErrorString(ct_status_));                                          \
    } while (0)

#endif
