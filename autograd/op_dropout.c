/* Dropout. Only (p, seed, stream) is saved: backward redraws the mask from the counter-based RNG,
 * which costs a hash per element instead of a mask tensor's memory. */
#include "core/arena.h"
#include "core/error.h"
#include "autograd/ops.h"
#include "autograd/ops_transformer.h"
#include "autograd/tape.h"

typedef struct {
    double p;
    uint64_t seed, stream;
} dropout_ctx;

static int dropout_backward(ct_node *node) {
    ct_tensor *x = node->inputs[0], *gx;
    bool fresh;
    CT_TRY(ct_grad_target_fresh(x, &gx, &fresh));
    if (!gx) return 0;
    const dropout_ctx *ctx = node->ctx;
    return ct_backend_for(x->device)->dropout(node->output->grad, ctx->p, ctx->seed, ctx->stream, !fresh, gx);
}

ct_tensor *ct_dropout(ct_tensor *x, double p, uint64_t seed, uint64_t stream) {
    if (!x) return NULL;
    if (!ct_dtype_is_real(x->dtype)) return ct_fail_shapes("dropout", x, x, "needs a real dtype (f32 or f64)");
    if (!(p >= 0 && p < 1)) {
        char buf[96];
        ct_fail("dropout: x %s: p = %g must be in [0, 1)", ct_shape_str(x, buf, sizeof buf), p);
        return NULL;
    }
    if (p == 0) return x;
    if (!ct_backend_for(x->device)->dropout)
        return ct_fail_shapes("dropout", x, x, "this device's backend has no dropout kernel");
    dropout_ctx *ctx = ct_arena_alloc(sizeof *ctx);
    ct_tensor *y = ct_empty_like(x);
    if (!ctx || !y) return NULL;
    *ctx = (dropout_ctx){p, seed, stream};
    if (ct_backend_for(x->device)->dropout(x, p, seed, stream, false, y) < 0) return NULL;
    if (ct_needs_grad(&x, 1) && !ct_record("dropout", dropout_backward, &x, 1, y, ctx)) return NULL;
    return y;
}
