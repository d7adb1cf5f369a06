/* SiLU and SwiGLU. Backward recomputes the sigmoid from the saved inputs rather than keeping it.
 * gate and up may be f32 or bf16 in any mix; the output has gate's dtype. */
#include "core/error.h"
#include "autograd/ops.h"
#include "autograd/ops_transformer.h"
#include "autograd/tape.h"

/* inputs: gate, and up for SwiGLU (n_inputs == 2) */
static int swiglu_backward(ct_node *node) {
    ct_tensor *gate = node->inputs[0], *up = node->n_inputs > 1 ? node->inputs[1] : NULL, *gg, *gu = NULL;
    CT_TRY(ct_grad_target(gate, &gg));
    if (up) CT_TRY(ct_grad_target(up, &gu));
    if (!gg && !gu) return 0;
    return ct_backend_for(gate->device)->swiglu_backward(gate, up, node->output->grad, gg, gu);
}

static ct_tensor *gated(const char *op, ct_tensor *gate, ct_tensor *up) {
    if (!ct_backend_for(gate->device)->swiglu_forward)
        return ct_fail_shapes(op, gate, up ? up : gate, "this device's backend has no swiglu kernel");
    ct_tensor *out = ct_empty_like(gate);
    if (!out || ct_backend_for(gate->device)->swiglu_forward(gate, up, out) < 0) return NULL;
    ct_tensor *inputs[2] = {gate, up};
    int n = up ? 2 : 1;
    if (ct_needs_grad(inputs, n) && !ct_record(op, swiglu_backward, inputs, n, out, NULL)) return NULL;
    return out;
}

ct_tensor *ct_silu(ct_tensor *x) {
    if (!x) return NULL;
    if (!ct_dtype_is_real(x->dtype) && x->dtype != CT_BF16)
        return ct_fail_shapes("silu", x, x, "needs f32, f64 or bf16");
    return gated("silu", x, NULL);
}

ct_tensor *ct_swiglu(ct_tensor *gate, ct_tensor *up) {
    if (!gate || !up) return NULL;
    if (!ct_check_storage_operands("swiglu", gate, up)) return NULL;
    if (!ct_same_shape(gate, up)) return ct_fail_shapes("swiglu", gate, up, "gate and up must have the same shape");
    return gated("swiglu", gate, up);
}
