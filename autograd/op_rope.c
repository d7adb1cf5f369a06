/* Rotary position embedding (rotate-half layout). The frequency table is copied into the arena
 * at the call, so a caller's scaled table may change or die before backward runs. A bf16 x gives
 * a bf16 y; its gradient (f32) rotates back in f32. */
#include <math.h>

#include "core/arena.h"
#include "core/error.h"
#include "autograd/ops.h"
#include "autograd/ops_transformer.h"
#include "autograd/tape.h"

void ct_rope_default_inv_freq(double theta, int64_t head_dim, double *inv_freq) {
    for (int64_t i = 0; i < head_dim / 2; i++) inv_freq[i] = pow(theta, -2.0 * (double)i / (double)head_dim);
}

static int rope_backward(ct_node *node) {
    ct_tensor *x = node->inputs[0], *gx;
    bool fresh;
    CT_TRY(ct_grad_target_fresh(x, &gx, &fresh));
    if (!gx) return 0;
    /* The rotation is orthogonal: its transpose is the rotation by the opposite angle. */
    return ct_backend_for(x->device)->rope(node->output->grad, node->inputs[1], node->ctx, -1, !fresh, gx);
}

ct_tensor *ct_rope(ct_tensor *x, ct_tensor *position_ids, double theta, const float *inv_freq) {
    if (!x || !position_ids) return NULL;
    const char *why = NULL;
    if (!ct_dtype_is_real(x->dtype) && x->dtype != CT_BF16) why = "x must be f32, f64 or bf16";
    else if (x->ndim != 4) why = "x must be [batch, time, heads, head_dim]";
    else if (x->shape[3] % 2) why = "head_dim must be even";
    else if (position_ids->dtype != CT_I32) why = "position_ids must be i32";
    else if (position_ids->ndim != 2 || position_ids->shape[0] != x->shape[0] ||
             position_ids->shape[1] != x->shape[1])
        why = "position_ids must be [batch, time] of x";
    else if (x->device != position_ids->device) why = "different devices";
    else if (!inv_freq && !(theta > 0)) why = "theta must be > 0";
    else if (!ct_backend_for(x->device)->rope) why = "this device's backend has no rope kernel";
    if (why) return ct_fail_shapes("rope", x, position_ids, why);

    int64_t half = x->shape[3] / 2;
    double *freq = ct_arena_alloc((size_t)(half > 0 ? half : 1) * sizeof *freq);
    ct_tensor *y = ct_empty_like(x);
    if (!freq || !y) return NULL;
    if (inv_freq)
        for (int64_t i = 0; i < half; i++) freq[i] = inv_freq[i];
    else
        ct_rope_default_inv_freq(theta, x->shape[3], freq);
    if (ct_backend_for(x->device)->rope(x, position_ids, freq, 1, false, y) < 0) return NULL;
    ct_tensor *inputs[2] = {x, position_ids};
    if (ct_needs_grad(inputs, 2) && !ct_record("rope", rope_backward, inputs, 2, y, freq)) return NULL;
    return y;
}
