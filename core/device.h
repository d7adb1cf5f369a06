/* Raw memory on a device: what the arenas and persistent tensors are carved from. Called rarely:
 * the arenas keep what they get, so a training step allocates nothing after warm-up.
 *
 * The CPU's memory is the C heap, built in here. Another device's memory is registered by the
 * backend that drives it (kernels/device.c registers CUDA's caching allocator the first time the
 * device is asked for, through ct_device_available or ct_backend_for), so this layer never
 * includes the kernels above it. Until then, allocating on that device fails with a message. */
#ifndef CT_CORE_DEVICE_H
#define CT_CORE_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/tensor.h"

const char *ct_device_name(ct_device device);
/* NULL with "out of memory on <device>: N bytes asked (M free)" when it does not fit. */
void *ct_device_alloc(ct_device device, size_t nbytes);
void ct_device_free(ct_device device, void *p);
int ct_device_memset_zero(ct_device device, void *p, size_t nbytes);
/* Copies between any two devices (host ↔ device, device ↔ device). */
int ct_device_copy(ct_device dst_device, void *dst, ct_device src_device, const void *src, size_t nbytes);

/* A device allocator's counters (the CUDA caching allocator's; core/arena.h reports them). */
typedef struct {
    size_t in_use, peak_in_use, reserved, peak_reserved;
    uint64_t malloc_calls;
} ct_device_allocator_stats;

/* What a backend registers for its device. */
typedef struct {
    void *(*alloc)(size_t nbytes);
    void (*free)(void *p);
    int (*memset_zero)(void *p, size_t nbytes);
    int (*copy)(void *dst, const void *src, size_t nbytes, int kind); /* 0 host→dev, 1 dev→host, 2 dev→dev */
    int (*convert)(const ct_tensor *src, ct_tensor *dst);               /* f32 ↔ bf16 on the device */
    ct_device_allocator_stats (*stats)(void);
    void (*reset_peak)(void);
} ct_device_memory;

/* Registers (or, with NULL, forgets) a non-CPU device's memory functions; the table must outlive
 * every use. */
void ct_device_memory_register(ct_device device, const ct_device_memory *memory);
/* The registered functions of a device, or NULL (always NULL for the CPU, whose are built in). */
const ct_device_memory *ct_device_memory_of(ct_device device);

#endif
