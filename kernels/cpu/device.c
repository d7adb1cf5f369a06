/* Device memory dispatch: the C heap for the CPU, the CUDA runtime when built with it. */
#include "kernels/device.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/arena.h"
#include "autograd/error.h"
#ifdef CT_HAVE_CUDA
#include "kernels/cuda/cuda_memory.h"
#endif

const char *ct_device_name(ct_device device) { return device == CT_CUDA ? "cuda" : "cpu"; }

const char *ct_device_describe(ct_device device, char *buf, size_t size) {
    snprintf(buf, size, "%s", ct_device_name(device));
#ifdef CT_HAVE_CUDA
    char gpu[200];
    if (device == CT_CUDA && ct_cuda_device_describe(gpu, sizeof gpu) == 0) snprintf(buf, size, "cuda (%s)", gpu);
#endif
    return buf;
}

int ct_device_available(ct_device device) {
    if (device == CT_CPU) return 1;
#ifdef CT_HAVE_CUDA
    return ct_cuda_device_count() > 0;
#else
    return 0;
#endif
}

#ifndef CT_HAVE_CUDA
static int no_cuda(void) {
    return ct_fail("cuda: this ctune was built without CUDA (install the CUDA toolkit and rebuild), "
                   "or use device=cpu");
}
#endif

void *ct_device_alloc(ct_device device, size_t nbytes) {
    if (device == CT_CPU) {
        size_t rounded = (nbytes + CT_ARENA_ALIGN - 1) / CT_ARENA_ALIGN * CT_ARENA_ALIGN;
        void *p = aligned_alloc(CT_ARENA_ALIGN, rounded ? rounded : CT_ARENA_ALIGN);
        if (!p) ct_fail("out of memory on cpu: %zu bytes asked", nbytes);
        return p;
    }
#ifdef CT_HAVE_CUDA
    return ct_cuda_alloc(nbytes);
#else
    no_cuda();
    return NULL;
#endif
}

void ct_device_free(ct_device device, void *p) {
    if (!p) return;
    if (device == CT_CPU) {
        free(p);
        return;
    }
#ifdef CT_HAVE_CUDA
    ct_cuda_free(p);
#endif
}

int ct_device_memset_zero(ct_device device, void *p, size_t nbytes) {
    if (device == CT_CPU) {
        /* Large buffers (a model's parameters) are zeroed by all threads: one thread alone
         * spends a third of a 0.5B model's load time here, and the pages land on the threads
         * that later convert into them. */
        const size_t block = (size_t)1 << 20;
        const int64_t blocks = (int64_t)((nbytes + block - 1) / block);
#pragma omp parallel for schedule(static) if (blocks > 8)
        for (int64_t i = 0; i < blocks; i++) {
            size_t start = (size_t)i * block;
            memset((char *)p + start, 0, nbytes - start < block ? nbytes - start : block);
        }
        return 0;
    }
#ifdef CT_HAVE_CUDA
    return ct_cuda_memset_zero(p, nbytes);
#else
    return no_cuda();
#endif
}

int ct_device_copy(ct_device dst_device, void *dst, ct_device src_device, const void *src, size_t nbytes) {
    if (dst_device == CT_CPU && src_device == CT_CPU) {
        memmove(dst, src, nbytes);
        return 0;
    }
#ifdef CT_HAVE_CUDA
    int kind = src_device == CT_CPU ? 0 : dst_device == CT_CPU ? 1 : 2;
    return ct_cuda_copy(dst, src, nbytes, kind);
#else
    return no_cuda();
#endif
}
