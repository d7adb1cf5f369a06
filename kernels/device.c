/* The device dispatcher: which op table runs on a device, whether a device can be used, and the
 * registration of the CUDA backend's memory with core/device.h. */
#include "kernels/device.h"

#include <stdio.h>

#include "core/error.h"
#include "kernels/backend.h"
#ifdef CT_HAVE_CUDA
#include "kernels/cuda/cuda_memory.h"
#endif

#ifdef CT_HAVE_CUDA
static ct_device_allocator_stats cuda_stats(void) {
    const ct_cuda_memory_stats s = ct_cuda_memory_get_stats();
    return (ct_device_allocator_stats){s.in_use_bytes, s.peak_in_use_bytes, s.reserved_bytes, s.peak_reserved_bytes,
                                       s.malloc_calls};
}

static int cuda_convert(const ct_tensor *src, ct_tensor *dst) { return ct_cuda_backend()->convert(src, dst); }

static const ct_device_memory cuda_memory = {
    .alloc = ct_cuda_alloc,
    .free = ct_cuda_free,
    .memset_zero = ct_cuda_memset_zero,
    .copy = ct_cuda_copy,
    .convert = cuda_convert,
    .stats = cuda_stats,
    .reset_peak = ct_cuda_memory_reset_peak,
};
#endif

/* CUDA memory is registered once the GPU can run the whole op table: tensors may then live there. */
static int cuda_usable(void) {
#ifdef CT_HAVE_CUDA
    if (ct_device_memory_of(CT_CUDA)) return 1;
    if (!ct_cuda_backend() || ct_cuda_device_count() <= 0) return 0;
    ct_device_memory_register(CT_CUDA, &cuda_memory);
    return 1;
#else
    return 0;
#endif
}

int ct_device_available(ct_device device) { return device == CT_CPU ? 1 : cuda_usable(); }

const char *ct_device_describe(ct_device device, char *buf, size_t size) {
    snprintf(buf, size, "%s", ct_device_name(device));
#ifdef CT_HAVE_CUDA
    char gpu[200];
    if (device == CT_CUDA && ct_cuda_device_describe(gpu, sizeof gpu) == 0) snprintf(buf, size, "cuda (%s)", gpu);
#endif
    return buf;
}

#ifndef CT_HAVE_CUDA
const ct_backend *ct_cuda_backend(void) { return NULL; }
#endif

const ct_backend *ct_backend_for(ct_device device) {
    if (device == CT_CUDA && cuda_usable()) return ct_cuda_backend();
    return ct_cpu_backend_active();
}
