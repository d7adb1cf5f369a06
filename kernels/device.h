/* Devices as the backends see them: whether one can be used, what it is, and which op table runs
 * on it. Raw memory is core/device.h (included here); the CUDA backend's allocator is registered
 * there by ct_device_available / ct_backend_for (kernels/device.c). */
#ifndef CT_DEVICE_H
#define CT_DEVICE_H

#include <stddef.h>

#include "core/device.h"
#include "core/tensor.h"

/* What a device is, for logs: "cpu", or the GPU's name, architecture and memory. Returns buf. */
const char *ct_device_describe(ct_device device, char *buf, size_t size);
/* The CPU's BLAS for logs: "blas: OpenBLAS 0.3.21, core Zen (avx2+fma kernels), cpu avx2+fma, ..."
 * (kernels/cpu/cpu_blas.h, which also makes the kernels match the CPU). */
const char *ct_blas_describe(void);
/* Whether a device can be used in this build and on this machine. For CUDA, the first call that
 * finds a GPU (and a complete op table) registers its memory with core/device.h. */
int ct_device_available(ct_device device);

#endif
