/* RMSNorm (HF LlamaRMSNorm). Forward saves each row's 1 / rms for backward, so backward needs
 * no second reduction over x^2. x and weight may be f32 or bf16 in any mix (y has x's dtype,
 * 1 / rms is kept in f32). */
#include "core/arena.h"
#include "core/error.h"
#include "autograd/ops.h"
#include "autograd/ops_transformer.h"
#include "autograd/tape.h"

typedef struct {
    ct_tensor *rstd;
} rms_norm_ctx;

static int rms_norm_backward(ct_node *node) {
    ct_tensor *x = node->inputs[0], *w = node->inputs[1], *gx, *gw;
    CT_TRY(ct_grad_target(x, &gx));
    CT_TRY(ct_grad_target(w, &gw));
    if (!gx && !gw) return 0;
    const rms_norm_ctx *ctx = node->ctx;
    return ct_backend_for(x->device)->rms_norm_backward(x, w, ctx->rstd, node->output->grad, gx, gw);
}

ct_tensor *ct_rms_norm(ct_tensor *x, ct_tensor *weight, double eps) {
    if (!x || !weight) return NULL;
    if (!ct_check_storage_operands("rms_norm", x, weight)) return NULL;
    if (x->ndim < 1 || weight->ndim != 1 || weight->shape[0] != ct_cols(x))
        return ct_fail_shapes("rms_norm", x, weight, "weight must be 1-D with x's last dimension");
    if (!(eps >= 0)) {
        ct_fail("rms_norm: eps = %g must be >= 0", eps);
        return NULL;
    }
    if (!ct_backend_for(x->device)->rms_norm_forward)
        return ct_fail_shapes("rms_norm", x, weight, "this device's backend has no rms_norm kernel");
    int64_t rows = ct_rows(x);
    rms_norm_ctx *ctx = ct_arena_alloc(sizeof *ctx);
    ct_tensor *y = ct_empty_like(x);
    ct_dtype stat_dtype = x->dtype == CT_F64 ? CT_F64 : CT_F32;
    if (!ctx || !y || !(ctx->rstd = ct_empty_on(x->device, stat_dtype, 1, &rows))) return NULL;
    if (ct_backend_for(x->device)->rms_norm_forward(x, weight, eps, ctx->rstd, y) < 0) return NULL;
    ct_tensor *inputs[2] = {x, weight};
    if (ct_needs_grad(inputs, 2) && !ct_record("rms_norm", rms_norm_backward, inputs, 2, y, ctx)) return NULL;
    return y;
}
