/* Tensors: a dtype, a device, a row-major contiguous shape and a data pointer.
 *
 * Two lifetimes. Persistent tensors (parameters, optimizer state, gradients of parameters) are
 * created with ct_tensor_new and freed with ct_tensor_free. Everything else (activations,
 * views, gradients of activations) comes from the current scope's arena (core/arena.h) and
 * dies with the scope. A view (reshape, leading-dimension slice) shares its base's memory.
 *
 * An i8 tensor carries f32 scales: one per row (scale_block == 0), or one per scale_block
 * consecutive elements of a row. Value = q * scale. */
#ifndef CT_TENSOR_H
#define CT_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/dtype.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CT_MAX_DIMS 4

typedef enum { CT_CPU, CT_CUDA } ct_device;

struct ct_node;
struct ct_rng;

typedef struct ct_tensor {
    ct_dtype dtype;
    ct_device device;
    int ndim;
    int64_t shape[CT_MAX_DIMS];
    void *data;              /* first element; for a view, inside its base's memory */
    const struct ct_tensor *base; /* the tensor a view shares memory with; NULL if none */
    bool persistent;         /* heap-owned (ct_tensor_new); false: arena-owned */
    struct ct_tensor *scale; /* i8 only: f32 scales */
    int64_t scale_block;     /* i8 only: 0 = one scale per row */
    bool requires_grad;      /* gradients flow to it; frozen tensors get no grad memory */
    struct ct_tensor *grad;  /* accumulated gradient, same shape, f32 or f64 */
    struct ct_node *node;    /* the tape node that produced it; NULL for leaves */
    char *name;              /* persistent tensors: e.g. the HF tensor name */
} ct_tensor;

/* Persistent tensor, zero-filled. NULL with a message naming `name` and the bytes asked. */
ct_tensor *ct_tensor_new(ct_dtype dtype, int ndim, const int64_t *shape, const char *name);
ct_tensor *ct_tensor_new_on(ct_device device, ct_dtype dtype, int ndim, const int64_t *shape, const char *name);
void ct_tensor_free(ct_tensor *t);

/* Arena tensors for the current scope: uninitialized and zero-filled. The _like forms keep the
 * device, the plain forms are on the CPU. */
ct_tensor *ct_empty_on(ct_device device, ct_dtype dtype, int ndim, const int64_t *shape);
ct_tensor *ct_empty(ct_dtype dtype, int ndim, const int64_t *shape);
ct_tensor *ct_zeros_on(ct_device device, ct_dtype dtype, int ndim, const int64_t *shape);
ct_tensor *ct_zeros(ct_dtype dtype, int ndim, const int64_t *shape);
ct_tensor *ct_empty_like(const ct_tensor *t);
ct_tensor *ct_zeros_like(const ct_tensor *t);
/* An arena copy of t on another device (same dtype and shape). */
ct_tensor *ct_to_device(const ct_tensor *t, ct_device device);
/* A 0-d tensor holding one value. */
ct_tensor *ct_scalar(ct_dtype dtype, double value);

int64_t ct_numel(const ct_tensor *t);
size_t ct_nbytes(const ct_tensor *t);
int64_t ct_rows(const ct_tensor *t); /* product of all but the last dimension */
int64_t ct_cols(const ct_tensor *t); /* the last dimension (1 for a 0-d tensor) */
bool ct_same_shape(const ct_tensor *a, const ct_tensor *b);
/* "[3, 7] f32" into buf; returns buf. */
const char *ct_shape_str(const ct_tensor *t, char *buf, size_t size);
/* Element i as a double, whatever the dtype and device (slow: for tests, printing, a loss, a
 * scalar; a device element goes through a host copy). */
double ct_get(const ct_tensor *t, int64_t i);
void ct_set(ct_tensor *t, int64_t i, double value);

/* Copies src into dst converting the dtype (shapes must hold the same number of elements). */
int ct_copy(ct_tensor *dst, const ct_tensor *src);
void ct_fill(ct_tensor *t, double value);
/* Random fills for real and bf16/f16 tensors. */
void ct_fill_normal(ct_tensor *t, struct ct_rng *rng, double mean, double std);
void ct_fill_uniform(ct_tensor *t, struct ct_rng *rng, double low, double high);

/* Quantizes a real 2-D tensor to i8 with symmetric per-row (block == 0) or per-block scales. */
ct_tensor *ct_quantize_i8(const ct_tensor *src, int64_t block, bool persistent, const char *name);

#ifdef __cplusplus
}
#endif

#endif
