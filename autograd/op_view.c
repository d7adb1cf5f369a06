/* Views: reshape and leading-dimension slices share their base's memory. Their gradients are
 * separate tensors (a view's gradient flows back into the matching part of its base's). */
#include <string.h>

#include "core/arena.h"
#include "core/error.h"
#include "autograd/ops.h"
#include "autograd/tape.h"

static ct_tensor *make_view(const ct_tensor *a, int ndim, const int64_t *shape, size_t byte_offset) {
    ct_tensor *v = ct_arena_calloc(sizeof *v);
    if (!v) return NULL;
    v->dtype = a->dtype;
    v->device = a->device;
    v->ndim = ndim;
    memcpy(v->shape, shape, (size_t)ndim * sizeof *shape);
    v->data = (char *)a->data + byte_offset;
    v->base = a->base ? a->base : a;
    v->scale = a->scale;
    v->scale_block = a->scale_block;
    return v;
}

static int reshape_backward(ct_node *node) { return ct_grad_take(node->inputs[0], node); }

ct_tensor *ct_reshape(ct_tensor *a, int ndim, const int64_t *shape) {
    if (!a) return NULL;
    if (ndim < 0 || ndim > CT_MAX_DIMS) return ct_fail_shapes("reshape", a, a, "too many dimensions"), NULL;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    if (n != ct_numel(a)) {
        char sa[96];
        ct_fail("reshape: %s has %lld elements; the new shape has %lld", ct_shape_str(a, sa, sizeof sa),
                (long long)ct_numel(a), (long long)n);
        return NULL;
    }
    ct_tensor *v = make_view(a, ndim, shape, 0);
    if (v && ct_needs_grad(&a, 1) && !ct_record("reshape", reshape_backward, &a, 1, v, NULL)) return NULL;
    return v;
}

static int slice_rows_backward(ct_node *node) {
    ct_tensor *ga;
    CT_TRY(ct_grad_target(node->inputs[0], &ga));
    if (!ga) return 0;
    ct_tensor *g = node->output->grad;
    int64_t start = *(const int64_t *)node->ctx;
    ct_tensor *window = make_view(ga, g->ndim, g->shape, (size_t)(start * (ct_numel(ga) / ga->shape[0])) *
                                                             ct_dtype_size(ga->dtype));
    return window ? ct_backend_for(ga->device)->axpby(1.0, g, 1.0, window) : -1;
}

ct_tensor *ct_slice_rows(ct_tensor *a, int64_t start, int64_t count) {
    if (!a) return NULL;
    if (a->ndim < 1 || start < 0 || count < 0 || start + count > a->shape[0]) {
        char sa[96];
        ct_fail("slice_rows: rows [%lld, %lld) of %s are out of range", (long long)start,
                (long long)(start + count), ct_shape_str(a, sa, sizeof sa));
        return NULL;
    }
    int64_t shape[CT_MAX_DIMS];
    memcpy(shape, a->shape, sizeof shape);
    shape[0] = count;
    size_t row_bytes = (size_t)(a->shape[0] ? ct_numel(a) / a->shape[0] : 0) * ct_dtype_size(a->dtype);
    ct_tensor *v = make_view(a, a->ndim, shape, (size_t)start * row_bytes);
    if (!v || !ct_needs_grad(&a, 1)) return v;
    int64_t *ctx = ct_arena_alloc(sizeof *ctx);
    if (!ctx) return NULL;
    *ctx = start;
    return ct_record("slice_rows", slice_rows_backward, &a, 1, v, ctx) ? v : NULL;
}
