/* The one compute stream every ctune kernel, copy and memset runs on, and events for timing.
 *
 * The stream is created on first use with default flags, so it also orders against the legacy
 * default stream that libraries fall back to. Device work is asynchronous: host reads (copies to
 * the host, ct_cuda_synchronize) wait for it. */
#ifndef CT_CUDA_STREAM_H
#define CT_CUDA_STREAM_H

#ifdef __cplusplus
#include <cuda_runtime.h>
extern "C" {
/* The compute stream into *stream; -1 with a message when it cannot be created. */
int ct_cuda_stream_get(cudaStream_t *stream);
#endif

/* Waits until everything queued on the compute stream has run. */
int ct_cuda_stream_synchronize(void);

/* Elapsed time between two events on the compute stream (benchmarks). */
typedef struct ct_cuda_timer {
    void *start, *stop; /* cudaEvent_t */
} ct_cuda_timer;

int ct_cuda_timer_create(ct_cuda_timer *timer);
int ct_cuda_timer_start(ct_cuda_timer *timer);
/* Records the stop event, waits for it, and writes the milliseconds since start. */
int ct_cuda_timer_stop(ct_cuda_timer *timer, float *milliseconds);
void ct_cuda_timer_destroy(ct_cuda_timer *timer);

#ifdef __cplusplus
}
#endif

#endif
