/* CUDA device memory: a caching allocator under kernels/device.h, callable from C.
 *
 * Blocks freed by ct_cuda_free stay cached and are handed out again to requests of about their
 * size (best fit: sizes rounded up to 512 bytes below 1 MiB, to whole MiB above; a cached block
 * is reused when it is at most 1/4 larger than the rounded request), so after the first steps a
 * training loop calls cudaMalloc no more. Every block is used in the order of the one compute
 * stream (kernels/cuda/cuda_stream.h), which is what makes reuse right after a free safe; work
 * on another stream must first wait on the compute stream.
 *
 * When cudaMalloc fails, the cache is returned to the driver and the call retried; if it fails
 * again the error reads "CUDA: out of memory asking N bytes (M free of T)". Every call is
 * checked; failures are one-line errors naming the call's file and line. */
#ifndef CT_CUDA_MEMORY_H
#define CT_CUDA_MEMORY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

int ct_cuda_device_count(void);
/* "NVIDIA H100 80GB HBM3, sm_90, 79.1 GiB" for the current device into buf; 0, or -1 with a message. */
int ct_cuda_device_describe(char *buf, size_t size);
void *ct_cuda_alloc(size_t nbytes);
void ct_cuda_free(void *p);
int ct_cuda_memset_zero(void *p, size_t nbytes);
/* kind: 0 host→device, 1 device→host, 2 device→device. Copies touching the host return when
 * the data has arrived; device→device copies are queued on the compute stream. */
int ct_cuda_copy(void *dst, const void *src, size_t nbytes, int kind);
int ct_cuda_synchronize(void);

typedef struct {
    size_t in_use_bytes;        /* held by callers (rounded sizes) */
    size_t peak_in_use_bytes;   /* since start or ct_cuda_memory_reset_peak */
    size_t reserved_bytes;      /* in use + cached: what the driver has given us */
    size_t peak_reserved_bytes;
    uint64_t malloc_calls;      /* cudaMalloc calls that succeeded */
    uint64_t free_calls;        /* cudaFree calls (the cache being released) */
    uint64_t reuses;            /* requests served from the cache */
} ct_cuda_memory_stats;

ct_cuda_memory_stats ct_cuda_memory_get_stats(void);
void ct_cuda_memory_reset_peak(void);
/* Returns every cached (free) block to the driver; blocks in use stay valid. */
int ct_cuda_memory_release_all(void);

#ifdef __cplusplus
}
#endif

#endif
