/* Scoped memory for activations, gradients of activations and tape nodes.
 *
 * Each scope depth owns one arena per device: a bump allocator over a few large chunks.
 * Beginning a scope moves to the next depth; ending it resets that depth's arenas, so
 * everything allocated inside (tensors, tape nodes, temporaries) dies at once. A reset arena
 * that grew past one chunk is coalesced into a single chunk of the combined size, so after the
 * first step of a training loop no memory is requested from the system (no cudaMalloc on the
 * GPU): usage stays flat and unfragmented.
 *
 * A training step runs inside a scope; a checkpointed segment runs in a nested scope whose
 * output is copied out before its temporaries are released. Tensor headers and tape nodes
 * always live in the host arena; tensor data lives in the arena of the tensor's device. */
#ifndef CT_ARENA_H
#define CT_ARENA_H

#include <stddef.h>
#include <stdint.h>

#include "core/tensor.h"

#define CT_ARENA_ALIGN 64
#define CT_MAX_SCOPE_DEPTH 32

/* Aligned, uninitialized memory from the current scope's arena on a device; NULL (with the
 * bytes asked in ct_last_error) when the device refuses. */
void *ct_arena_alloc_on(ct_device device, size_t nbytes);
/* Host memory: ct_arena_alloc_on(CT_CPU, ...), and a zero-filled variant. */
void *ct_arena_alloc(size_t nbytes);
void *ct_arena_calloc(size_t nbytes);

/* Something kept in scoped memory that must forget what a scope allocated when it ends: the tape
 * (autograd/tape.c, a layer above) registers itself here, so this layer calls up through the hook
 * rather than including it. mark() is taken when a scope begins; release(mark) runs when it ends
 * (release(NULL) from ct_memory_release_all: forget everything). */
typedef struct {
    void *(*mark)(void);
    void (*release)(void *mark);
} ct_scope_listener;
/* One listener per process; the table must outlive every scope. */
void ct_scope_set_listener(const ct_scope_listener *listener);

/* Returns the new depth, or -1 when scopes nest deeper than CT_MAX_SCOPE_DEPTH. */
int ct_scope_begin(void);
/* Releases everything allocated since the matching ct_scope_begin, tape nodes included. */
void ct_scope_end(void);
int ct_scope_depth(void);
/* While a nested scope is open, make allocations come from the enclosing scope's arenas until
 * ct_scope_resume: this is how a checkpointed segment copies its result out before its own
 * scope is released. The suspended scope keeps its contents and still counts as in use. */
int ct_scope_suspend(void);
void ct_scope_resume(void);

typedef struct {
    size_t in_use;      /* bytes handed out by the active arenas right now */
    size_t peak_in_use; /* high-water mark of in_use since the last ct_memory_reset_peak */
    size_t reserved;    /* bytes held from the device by all arenas, active or idle */
    uint64_t chunk_allocations; /* times an arena asked the device for memory (flat = stops growing) */
    /* CT_CUDA only (0 for the CPU, and until the CUDA backend registers its memory with
     * core/device.h): the caching allocator every device allocation goes through, arenas and
     * persistent tensors (parameters, gradients, moments) together (kernels/cuda/cuda_memory.h). */
    size_t device_in_use;        /* bytes held by callers, rounded to the allocator's size classes */
    size_t device_peak_in_use;   /* high-water mark of device_in_use since ct_memory_reset_peak */
    size_t device_reserved;      /* in use + cached: what the driver has given */
    size_t device_peak_reserved; /* high-water mark of device_reserved since ct_memory_reset_peak */
    uint64_t device_malloc_calls; /* cudaMalloc calls so far (flat = a training loop is warm) */
} ct_memory_stats;

ct_memory_stats ct_memory_get_stats(ct_device device);
/* Restarts every peak (the arenas' and the CUDA allocator's) from what is in use now. */
void ct_memory_reset_peak(void);
/* Frees every arena's memory; only valid with nothing live in any arena. */
void ct_memory_release_all(void);

#endif
