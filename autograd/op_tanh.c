/* tanh: its backward needs only the output, d tanh(x)/dx = 1 - tanh(x)^2. */
#include "core/error.h"
#include "autograd/ops.h"
#include "autograd/tape.h"

static int tanh_backward(ct_node *node) {
    ct_tensor *gx;
    CT_TRY(ct_grad_target(node->inputs[0], &gx));
    return gx ? ct_backend_for(gx->device)->tanh_backward(node->output, node->output->grad, gx) : 0;
}

ct_tensor *ct_tanh(ct_tensor *x) {
    if (!x) return NULL;
    if (!ct_dtype_is_real(x->dtype)) return ct_fail_shapes("tanh", x, x, "needs a real dtype (f32 or f64)");
    ct_tensor *y = ct_empty_like(x);
    if (!y || ct_backend_for(x->device)->tanh_forward(x, y) < 0) return NULL;
    if (ct_needs_grad(&x, 1) && !ct_record("tanh", tanh_backward, &x, 1, y, NULL)) return NULL;
    return y;
}
