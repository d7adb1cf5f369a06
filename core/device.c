/* Device memory dispatch: the C heap for the CPU, a registered allocator for any other device. */
#include "core/device.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/error.h"

static const ct_device_memory *registered[2];

const char *ct_device_name(ct_device device) { return device == CT_CUDA ? "cuda" : "cpu"; }

void ct_device_memory_register(ct_device device, const ct_device_memory *memory) {
    if (device != CT_CPU) registered[device] = memory;
}

const ct_device_memory *ct_device_memory_of(ct_device device) { return device == CT_CPU ? NULL : registered[device]; }

static const ct_device_memory *memory_or_fail(ct_device device) {
    const ct_device_memory *m = ct_device_memory_of(device);
    if (!m)
        ct_fail("%s: no usable device in this process (a build without its backend, no GPU found, or the device "
                "was never asked for through ct_device_available); use device=cpu",
                ct_device_name(device));
    return m;
}

void *ct_device_alloc(ct_device device, size_t nbytes) {
    if (device == CT_CPU) {
        size_t rounded = (nbytes + CT_ARENA_ALIGN - 1) / CT_ARENA_ALIGN * CT_ARENA_ALIGN;
        void *p = aligned_alloc(CT_ARENA_ALIGN, rounded ? rounded : CT_ARENA_ALIGN);
        if (!p) ct_fail("out of memory on cpu: %zu bytes asked", nbytes);
        return p;
    }
    const ct_device_memory *m = memory_or_fail(device);
    return m ? m->alloc(nbytes) : NULL;
}

void ct_device_free(ct_device device, void *p) {
    if (!p) return;
    if (device == CT_CPU) {
        free(p);
        return;
    }
    const ct_device_memory *m = ct_device_memory_of(device);
    if (m) m->free(p);
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
    const ct_device_memory *m = memory_or_fail(device);
    return m ? m->memset_zero(p, nbytes) : -1;
}

int ct_device_copy(ct_device dst_device, void *dst, ct_device src_device, const void *src, size_t nbytes) {
    if (dst_device == CT_CPU && src_device == CT_CPU) {
        memmove(dst, src, nbytes);
        return 0;
    }
    const ct_device_memory *m = memory_or_fail(dst_device == CT_CPU ? src_device : dst_device);
    if (!m) return -1;
    const int kind = src_device == CT_CPU ? 0 : dst_device == CT_CPU ? 1 : 2;
    return m->copy(dst, src, nbytes, kind);
}
