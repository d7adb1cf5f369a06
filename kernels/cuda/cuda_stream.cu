// The compute stream, launch checking and event timers (kernels/cuda/cuda_stream.h).
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_stream.h"

static cudaStream_t compute_stream;
static bool compute_stream_ready;

extern "C" int ct_cuda_stream_get(cudaStream_t *stream) {
    if (!compute_stream_ready) {
        CT_CUDA_CHECK(cudaStreamCreate(&compute_stream));
        compute_stream_ready = true;
    }
    *stream = compute_stream;
    return 0;
}

extern "C" int ct_cuda_stream_synchronize(void) {
    cudaStream_t stream = NULL;
    CT_TRY(ct_cuda_stream_get(&stream));
    CT_CUDA_CHECK(cudaStreamSynchronize(stream));
    return 0;
}

extern "C" int ct_cuda_sync_after_launch(void) {
    static int decided = -1;
    if (decided < 0) {
        const char *value = getenv("CT_CUDA_SYNC");
        decided = value && strcmp(value, "0") != 0 && value[0] != '\0';
    }
    return decided;
}

extern "C" int ct_cuda_check_launch(const char *kernel, const char *file, int line) {
    cudaError_t status = cudaGetLastError();
    if (status == cudaSuccess && ct_cuda_sync_after_launch()) {
        cudaStream_t stream = NULL;
        CT_TRY(ct_cuda_stream_get(&stream));
        status = cudaStreamSynchronize(stream);
    }
    if (status != cudaSuccess)
        return ct_fail("CUDA: kernel %s failed at %s:%d: %s (set CT_CUDA_SYNC=1 to locate asynchronous errors)",
                       kernel, file, line, cudaGetErrorString(status));
    return 0;
}

extern "C" int ct_cuda_timer_create(ct_cuda_timer *timer) {
    cudaEvent_t start, stop;
    timer->start = timer->stop = NULL;
    CT_CUDA_CHECK(cudaEventCreate(&start));
    if (cudaEventCreate(&stop) != cudaSuccess) {
        cudaEventDestroy(start);
        return ct_fail("CUDA: cudaEventCreate failed at %s:%d", __FILE__, __LINE__);
    }
    timer->start = start;
    timer->stop = stop;
    return 0;
}

extern "C" int ct_cuda_timer_start(ct_cuda_timer *timer) {
    cudaStream_t stream = NULL;
    CT_TRY(ct_cuda_stream_get(&stream));
    CT_CUDA_CHECK(cudaEventRecord((cudaEvent_t)timer->start, stream));
    return 0;
}

extern "C" int ct_cuda_timer_stop(ct_cuda_timer *timer, float *milliseconds) {
    cudaStream_t stream = NULL;
    CT_TRY(ct_cuda_stream_get(&stream));
    CT_CUDA_CHECK(cudaEventRecord((cudaEvent_t)timer->stop, stream));
    CT_CUDA_CHECK(cudaEventSynchronize((cudaEvent_t)timer->stop));
    CT_CUDA_CHECK(cudaEventElapsedTime(milliseconds, (cudaEvent_t)timer->start, (cudaEvent_t)timer->stop));
    return 0;
}

extern "C" void ct_cuda_timer_destroy(ct_cuda_timer *timer) {
    if (timer->start) cudaEventDestroy((cudaEvent_t)timer->start);
    if (timer->stop) cudaEventDestroy((cudaEvent_t)timer->stop);
    timer->start = timer->stop = NULL;
}
