/* Sum and mean of all elements. d(sum)/dx = 1 everywhere, so backward adds the incoming scalar
 * gradient (times 1/n for the mean) to every element. */
#include "core/arena.h"
#include "core/error.h"
#include "autograd/ops.h"
#include "autograd/tape.h"

static int reduce_backward(ct_node *node) {
    ct_tensor *ga;
    CT_TRY(ct_grad_target(node->inputs[0], &ga));
    if (!ga) return 0;
    double factor = *(const double *)node->ctx;
    return ct_backend_for(ga->device)->add_scalar(ga, factor * ct_get(node->output->grad, 0));
}

static ct_tensor *reduce(const char *op, ct_tensor *a, double factor) {
    if (!a) return NULL;
    if (!ct_dtype_is_real(a->dtype)) return ct_fail_shapes(op, a, a, "needs a real dtype (f32 or f64)");
    ct_tensor *out = ct_empty_on(a->device, a->dtype, 0, NULL);
    if (!out || ct_backend_for(a->device)->sum(a, out) < 0) return NULL;
    if (factor != 1.0) ct_set(out, 0, ct_get(out, 0) * factor);
    if (ct_needs_grad(&a, 1)) {
        double *ctx = ct_arena_alloc(sizeof *ctx);
        if (!ctx) return NULL;
        *ctx = factor;
        if (!ct_record(op, reduce_backward, &a, 1, out, ctx)) return NULL;
    }
    return out;
}

ct_tensor *ct_sum(ct_tensor *a) { return reduce("sum", a, 1.0); }

ct_tensor *ct_mean(ct_tensor *a) {
    if (a && ct_numel(a) == 0) return ct_fail_shapes("mean", a, a, "the mean of no elements is undefined");
    return reduce("mean", a, a ? 1.0 / (double)ct_numel(a) : 1.0);
}
