#include "core/arena.h"

#include <string.h>

#include "core/device.h"
#include "core/error.h"

#define MIN_CHUNK_BYTES ((size_t)1 << 20)
#define MAX_CHUNKS 48
#define N_DEVICES 2

typedef struct {
    char *data;
    size_t capacity;
    size_t used;
} chunk;

typedef struct {
    chunk chunks[MAX_CHUNKS];
    int n_chunks;
    size_t in_use;
} arena;

static arena arenas[N_DEVICES][CT_MAX_SCOPE_DEPTH + 1];
static void *tape_mark_at_begin[CT_MAX_SCOPE_DEPTH + 1];
static const ct_scope_listener *listener;
static int depth;            /* the scope allocations come from */
static int open_depth;       /* the innermost open scope (> depth while one is suspended) */
static size_t peak_in_use[N_DEVICES];
static uint64_t chunk_allocations[N_DEVICES];

static size_t total_in_use(ct_device device) {
    size_t total = 0;
    for (int d = 0; d <= open_depth; d++) total += arenas[device][d].in_use;
    return total;
}

static size_t align_up(size_t n) { return (n + CT_ARENA_ALIGN - 1) & ~(size_t)(CT_ARENA_ALIGN - 1); }

static int add_chunk(ct_device device, arena *a, size_t at_least) {
    if (a->n_chunks == MAX_CHUNKS) return ct_fail("arena: more than %d chunks in one scope", MAX_CHUNKS);
    size_t last = a->n_chunks ? a->chunks[a->n_chunks - 1].capacity : 0;
    size_t capacity = align_up(last * 2 > at_least ? last * 2 : at_least);
    if (capacity < MIN_CHUNK_BYTES) capacity = MIN_CHUNK_BYTES;
    void *data = ct_device_alloc(device, capacity);
    if (!data) return ct_fail_context("activations: ");
    a->chunks[a->n_chunks++] = (chunk){data, capacity, 0};
    chunk_allocations[device]++;
    return 0;
}

void *ct_arena_alloc_on(ct_device device, size_t nbytes) {
    arena *a = &arenas[device][depth];
    size_t need = align_up(nbytes ? nbytes : 1);
    /* Bump in the newest chunk only: a reset coalesces whatever this leaves unused. */
    chunk *c = a->n_chunks ? &a->chunks[a->n_chunks - 1] : NULL;
    if (!c || c->capacity - c->used < need) {
        if (add_chunk(device, a, need) < 0) return NULL;
        c = &a->chunks[a->n_chunks - 1];
    }
    void *p = c->data + c->used;
    c->used += need;
    a->in_use += need;
    size_t now = total_in_use(device);
    if (now > peak_in_use[device]) peak_in_use[device] = now;
    return p;
}

void *ct_arena_alloc(size_t nbytes) { return ct_arena_alloc_on(CT_CPU, nbytes); }

void *ct_arena_calloc(size_t nbytes) {
    void *p = ct_arena_alloc(nbytes);
    if (p) memset(p, 0, nbytes);
    return p;
}

static void reset_arena(ct_device device, arena *a) {
    if (a->n_chunks > 1) {
        /* Coalesce: the next use of this depth will need about as much again, in one block. */
        size_t total = 0;
        for (int i = 0; i < a->n_chunks; i++) {
            total += a->chunks[i].capacity;
            ct_device_free(device, a->chunks[i].data);
        }
        a->n_chunks = 0;
        void *data = ct_device_alloc(device, total);
        if (data) {
            a->chunks[0] = (chunk){data, total, 0};
            a->n_chunks = 1;
            chunk_allocations[device]++;
        }
    } else if (a->n_chunks == 1) {
        a->chunks[0].used = 0;
    }
    a->in_use = 0;
}

int ct_scope_begin(void) {
    if (depth != open_depth) return ct_fail("ct_scope_begin inside a suspended scope: resume it first");
    if (depth == CT_MAX_SCOPE_DEPTH)
        return ct_fail("scopes nest deeper than %d: a ct_scope_begin lacks its ct_scope_end", depth);
    depth++;
    open_depth = depth;
    tape_mark_at_begin[depth] = listener ? listener->mark() : NULL;
    return depth;
}

void ct_scope_end(void) {
    if (depth != open_depth) ct_scope_resume();
    if (depth == 0) return;
    /* A listener that registered inside this scope found nothing recorded before it: its mark
     * for this scope is NULL, the empty tape, which is what the tape was when the scope began. */
    if (listener) listener->release(tape_mark_at_begin[depth]);
    for (int device = 0; device < N_DEVICES; device++) reset_arena((ct_device)device, &arenas[device][depth]);
    depth--;
    open_depth = depth;
}

int ct_scope_depth(void) { return depth; }

void ct_scope_set_listener(const ct_scope_listener *l) { listener = l; }

int ct_scope_suspend(void) {
    if (depth == 0) return ct_fail("ct_scope_suspend: no nested scope is open");
    if (depth != open_depth) return ct_fail("ct_scope_suspend: the scope is already suspended");
    depth--;
    return 0;
}

void ct_scope_resume(void) { depth = open_depth; }

/* The device allocator's counters (CUDA's caching allocator, when registered); they only read
 * host-side bookkeeping, so they are safe to ask for without a device. */
static void add_device_allocator_stats(ct_device device, ct_memory_stats *stats) {
    const ct_device_memory *m = ct_device_memory_of(device);
    if (!m || !m->stats) return;
    const ct_device_allocator_stats d = m->stats();
    stats->device_in_use = d.in_use;
    stats->device_peak_in_use = d.peak_in_use;
    stats->device_reserved = d.reserved;
    stats->device_peak_reserved = d.peak_reserved;
    stats->device_malloc_calls = d.malloc_calls;
}

ct_memory_stats ct_memory_get_stats(ct_device device) {
    ct_memory_stats stats = {total_in_use(device), peak_in_use[device], 0, chunk_allocations[device], 0, 0, 0, 0, 0};
    for (int d = 0; d <= CT_MAX_SCOPE_DEPTH; d++)
        for (int i = 0; i < arenas[device][d].n_chunks; i++) stats.reserved += arenas[device][d].chunks[i].capacity;
    add_device_allocator_stats(device, &stats);
    return stats;
}

void ct_memory_reset_peak(void) {
    for (int device = 0; device < N_DEVICES; device++) {
        peak_in_use[device] = total_in_use((ct_device)device);
        const ct_device_memory *m = ct_device_memory_of((ct_device)device);
        if (m && m->reset_peak) m->reset_peak();
    }
}

void ct_memory_release_all(void) {
    while (depth > 0) ct_scope_end();
    if (listener) listener->release(NULL);
    for (int device = 0; device < N_DEVICES; device++)
        for (int d = 0; d <= CT_MAX_SCOPE_DEPTH; d++) {
            arena *a = &arenas[device][d];
            for (int i = 0; i < a->n_chunks; i++) ct_device_free((ct_device)device, a->chunks[i].data);
            a->n_chunks = 0;
            a->in_use = 0;
        }
}
