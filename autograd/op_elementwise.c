/* Elementwise add, multiply and scale, with one-row broadcasting of the second operand, and the
 * f32 <-> bf16 conversion. The gradient of a broadcast row is the sum over the rows it was
 * repeated on. add and mul take f32 and bf16 operands in any mix (the output has a's dtype). */
#include "core/arena.h"
#include "core/error.h"
#include "autograd/ops.h"
#include "autograd/tape.h"

static bool broadcasts_as_row(const ct_tensor *b, const ct_tensor *a) {
    return ct_numel(b) == ct_cols(a) && ct_cols(b) == ct_cols(a) && ct_rows(b) == 1;
}

static ct_tensor *binary_output(const char *op, ct_tensor *a, ct_tensor *b) {
    if (!a || !b) return NULL;
    if (!ct_check_storage_operands(op, a, b)) return NULL;
    if (!ct_same_shape(a, b) && !broadcasts_as_row(b, a))
        return ct_fail_shapes(op, a, b, "b must have a's shape or be one row of a's last dimension");
    return ct_empty_like(a);
}

/* Accumulates g into b's gradient, summing over rows when b was broadcast. */
static int accumulate_into_second(const ct_backend *be, ct_tensor *g, ct_tensor *factor, ct_tensor *b,
                                  ct_tensor *gb) {
    if (ct_numel(b) == ct_numel(g)) return factor ? be->mul_accumulate(g, factor, gb) : be->axpby(1.0, g, 1.0, gb);
    return be->sum_rows_accumulate(g, factor, gb);
}

static int add_backward(ct_node *node) {
    ct_tensor *a = node->inputs[0], *b = node->inputs[1], *g = node->output->grad;
    const ct_backend *be = ct_backend_for(g->device);
    ct_tensor *gb;
    /* b's share first: a may take g's buffer over, after which g must not be read again. */
    CT_TRY(ct_grad_target(b, &gb));
    if (gb) CT_TRY(accumulate_into_second(be, g, NULL, b, gb));
    if (a == b) return gb ? be->axpby(1.0, g, 1.0, gb) : 0; /* x + x: g goes in twice */
    return ct_grad_take(a, node);
}

static int mul_backward(ct_node *node) {
    ct_tensor *a = node->inputs[0], *b = node->inputs[1], *g = node->output->grad;
    const ct_backend *be = ct_backend_for(g->device);
    ct_tensor *ga, *gb;
    CT_TRY(ct_grad_target(a, &ga));
    CT_TRY(ct_grad_target(b, &gb));
    if (ga) CT_TRY(be->mul_accumulate(g, b, ga));
    if (gb) CT_TRY(accumulate_into_second(be, g, a, b, gb));
    return 0;
}

static ct_tensor *binary(const char *op, ct_binary_op kind, ct_backward_fn backward, ct_tensor *a, ct_tensor *b) {
    ct_tensor *out = binary_output(op, a, b);
    if (!out) return NULL;
    if (ct_backend_for(a->device)->binary(kind, a, b, out) < 0) return NULL;
    ct_tensor *inputs[2] = {a, b};
    if (ct_needs_grad(inputs, 2) && !ct_record(op, backward, inputs, 2, out, NULL)) return NULL;
    return out;
}

ct_tensor *ct_add(ct_tensor *a, ct_tensor *b) { return binary("add", CT_BINARY_ADD, add_backward, a, b); }

ct_tensor *ct_mul(ct_tensor *a, ct_tensor *b) { return binary("mul", CT_BINARY_MUL, mul_backward, a, b); }

static int scale_backward(ct_node *node) {
    ct_tensor *g = node->output->grad, *ga;
    bool fresh;
    CT_TRY(ct_grad_target_fresh(node->inputs[0], &ga, &fresh));
    return ga ? ct_backend_for(g->device)->axpby(*(const double *)node->ctx, g, fresh ? 0.0 : 1.0, ga) : 0;
}

ct_tensor *ct_scale(ct_tensor *a, double factor) {
    if (!a) return NULL;
    if (!ct_dtype_is_real(a->dtype)) return ct_fail_shapes("scale", a, a, "scale needs a real dtype"), NULL;
    ct_tensor *out = ct_empty_like(a);
    if (!out) return NULL;
    if (ct_backend_for(a->device)->axpby(factor, a, 0.0, out) < 0) return NULL; /* beta 0: out is not read */
    if (ct_needs_grad(&a, 1)) {
        double *ctx = ct_arena_alloc(sizeof *ctx);
        if (!ctx) return NULL;
        *ctx = factor;
        if (!ct_record("scale", scale_backward, &a, 1, out, ctx)) return NULL;
    }
    return out;
}

static int add_scaled_backward(ct_node *node) {
    ct_tensor *a = node->inputs[0], *b = node->inputs[1], *g = node->output->grad, *gb;
    const double factor = *(const double *)node->ctx;
    bool fresh;
    CT_TRY(ct_grad_target_fresh(b, &gb, &fresh)); /* b's share first: a may take g over */
    if (gb) CT_TRY(ct_backend_for(g->device)->axpby(factor, g, fresh ? 0.0 : 1.0, gb));
    if (a == b) return gb ? ct_backend_for(g->device)->axpby(1.0, g, 1.0, gb) : 0;
    return ct_grad_take(a, node);
}

/* Two passes where ct_add(a, ct_scale(b, factor)) makes four and a tensor more, with the same
 * bits: s·b rounded, then a + that rounded. Other dtypes and shapes take that composition. */
ct_tensor *ct_add_scaled(ct_tensor *a, ct_tensor *b, double factor) {
    if (!a || !b) return NULL;
    if (a->dtype != b->dtype || !ct_dtype_is_real(a->dtype) || !ct_same_shape(a, b) || a->device != b->device)
        return ct_add(a, ct_scale(b, factor));
    ct_tensor *out = ct_empty_like(a);
    const ct_backend *be = ct_backend_for(a->device);
    if (!out || be->axpby(factor, b, 0.0, out) < 0 || be->axpby(1.0, a, 1.0, out) < 0) return NULL;
    ct_tensor *inputs[2] = {a, b};
    if (ct_needs_grad(inputs, 2)) {
        double *ctx = ct_arena_alloc(sizeof *ctx);
        if (!ctx) return NULL;
        *ctx = factor;
        if (!ct_record("add_scaled", add_scaled_backward, inputs, 2, out, ctx)) return NULL;
    }
    return out;
}

static int to_dtype_backward(ct_node *node) { return ct_grad_take(node->inputs[0], node); }

ct_tensor *ct_to_dtype(ct_tensor *x, ct_dtype dtype) {
    if (!x) return NULL;
    if (!(x->dtype == dtype && ct_dtype_is_real(dtype)) &&
        !(ct_dtype_is_f32_storage(x->dtype) && ct_dtype_is_f32_storage(dtype))) {
        char sx[96];
        ct_fail("to_dtype: x %s to %s: only f32 <-> bf16 (or a copy of a real tensor)", ct_shape_str(x, sx, sizeof sx),
                ct_dtype_name(dtype));
        return NULL;
    }
    ct_tensor *y = ct_empty_on(x->device, dtype, x->ndim, x->shape);
    if (!y || ct_backend_for(x->device)->convert(x, y) < 0) return NULL;
    if (ct_needs_grad(&x, 1) && !ct_record("to_dtype", to_dtype_backward, &x, 1, y, NULL)) return NULL;
    return y;
}
