/* Raw memory on a device: what the arenas and persistent tensors are carved from. On the CPU
 * this is the C heap; on CUDA it is cudaMalloc'd memory (kernels/cuda/cuda_memory.cu). Called
 * rarely: the arenas keep what they get, so a training step allocates nothing after warm-up. */
#ifndef CT_DEVICE_H
#define CT_DEVICE_H

#include <stddef.h>

#include "autograd/tensor.h"

const char *ct_device_name(ct_device device);
/* NULL with "out of memory on <device>: N bytes asked (M free)" when it does not fit. */
void *ct_device_alloc(ct_device device, size_t nbytes);
void ct_device_free(ct_device device, void *p);
int ct_device_memset_zero(ct_device device, void *p, size_t nbytes);
/* Copies between any two devices (host ↔ device, device ↔ device). */
int ct_device_copy(ct_device dst_device, void *dst, ct_device src_device, const void *src, size_t nbytes);
/* What a device is, for logs: "cpu", or the GPU's name, architecture and memory. Returns buf. */
const char *ct_device_describe(ct_device device, char *buf, size_t size);
/* The CPU's BLAS for logs: "blas: OpenBLAS 0.3.21, core Zen (avx2+fma kernels), cpu avx2+fma, ..."
 * (kernels/cpu/cpu_blas.h, which also makes the kernels match the CPU). */
const char *ct_blas_describe(void);
/* Whether a device can be used in this build and on this machine. */
int ct_device_available(ct_device device);

#endif
