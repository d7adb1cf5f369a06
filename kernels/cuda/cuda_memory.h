/* The CUDA side of kernels/device.h, callable from C. Every call is checked; failures become
 * one-line errors with the file and line of the failing call and the bytes asked and free. */
#ifndef CT_CUDA_MEMORY_H
#define CT_CUDA_MEMORY_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

int ct_cuda_device_count(void);
void *ct_cuda_alloc(size_t nbytes);
void ct_cuda_free(void *p);
int ct_cuda_memset_zero(void *p, size_t nbytes);
/* kind: 0 host→device, 1 device→host, 2 device→device */
int ct_cuda_copy(void *dst, const void *src, size_t nbytes, int kind);
int ct_cuda_synchronize(void);

#ifdef __cplusplus
}
#endif

#endif
