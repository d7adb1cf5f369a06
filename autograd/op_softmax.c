/* Log-softmax and softmax cross-entropy over the last dimension. Cross-entropy also takes bf16
 * logits (an f32 loss, an f32 gradient). */
#include "core/arena.h"
#include "core/error.h"
#include "autograd/ops.h"
#include "autograd/tape.h"

static int log_softmax_backward(ct_node *node) {
    ct_tensor *gx;
    CT_TRY(ct_grad_target(node->inputs[0], &gx));
    if (!gx) return 0;
    return ct_backend_for(gx->device)->log_softmax_backward(node->output, node->output->grad, gx);
}

ct_tensor *ct_log_softmax(ct_tensor *x) {
    if (!x) return NULL;
    if (!ct_dtype_is_real(x->dtype) || x->ndim < 1)
        return ct_fail_shapes("log_softmax", x, x, "needs a real tensor with at least one dimension");
    ct_tensor *y = ct_empty_like(x);
    if (!y || ct_backend_for(x->device)->log_softmax_forward(x, y) < 0) return NULL;
    if (ct_needs_grad(&x, 1) && !ct_record("log_softmax", log_softmax_backward, &x, 1, y, NULL)) return NULL;
    return y;
}

typedef struct {
    ct_reduction reduction;
    ct_tensor *row_logsumexp;
} cross_entropy_ctx;

static int cross_entropy_backward(ct_node *node) {
    ct_tensor *g;
    CT_TRY(ct_grad_target(node->inputs[0], &g));
    if (!g) return 0;
    const cross_entropy_ctx *ctx = node->ctx;
    return ct_backend_for(g->device)->cross_entropy_backward(node->inputs[0], node->inputs[1], ctx->reduction,
                                                             ctx->row_logsumexp, node->output->grad, g);
}

ct_tensor *ct_cross_entropy(ct_tensor *logits, ct_tensor *targets, ct_reduction reduction) {
    if (!logits || !targets) return NULL;
    if (!ct_dtype_is_real(logits->dtype) && logits->dtype != CT_BF16)
        return ct_fail_shapes("cross_entropy", logits, targets, "logits must be f32, f64 or bf16");
    if (targets->dtype != CT_I32) return ct_fail_shapes("cross_entropy", logits, targets, "targets must be i32");
    if (ct_numel(targets) != ct_rows(logits))
        return ct_fail_shapes("cross_entropy", logits, targets, "one target per row of logits expected");
    if (logits->device != targets->device) return ct_fail_shapes("cross_entropy", logits, targets, "different devices");
    cross_entropy_ctx *ctx = ct_arena_alloc(sizeof *ctx);
    ct_dtype dtype = logits->dtype == CT_F64 ? CT_F64 : CT_F32; /* of the loss and the row statistics */
    ct_tensor *out = ct_empty_on(logits->device, dtype, 0, NULL);
    int64_t rows = ct_rows(logits);
    if (!ctx || !out || !(ctx->row_logsumexp = ct_empty_on(logits->device, dtype, 1, &rows))) return NULL;
    ctx->reduction = reduction;
    if (ct_backend_for(logits->device)->cross_entropy_forward(logits, targets, reduction, ctx->row_logsumexp, out) < 0)
        return NULL;
    ct_tensor *inputs[2] = {logits, targets};
    if (ct_needs_grad(inputs, 2) && !ct_record("cross_entropy", cross_entropy_backward, inputs, 2, out, ctx))
        return NULL;
    return out;
}
