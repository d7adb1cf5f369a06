/* Distillation KL divergence with temperature (see autograd/ops_transformer.h for the formula and
 * normalization). Forward keeps three f64 numbers per row; nothing of size [rows, V] is saved. */
#include "core/arena.h"
#include "core/error.h"
#include "autograd/ops.h"
#include "autograd/ops_transformer.h"
#include "autograd/tape.h"

typedef struct {
    double temperature;
    ct_tensor *row_stats;
} kl_ctx;

static int kl_backward(ct_node *node) {
    ct_tensor *s = node->inputs[0], *t = node->inputs[1], *mask = node->n_inputs > 2 ? node->inputs[2] : NULL;
    ct_tensor *gs, *gt;
    CT_TRY(ct_grad_target(s, &gs));
    CT_TRY(ct_grad_target(t, &gt));
    if (!gs && !gt) return 0;
    const kl_ctx *ctx = node->ctx;
    return ct_backend_for(s->device)->kl_div_backward(s, t, mask, ctx->temperature, ctx->row_stats,
                                                      node->output->grad, gs, gt);
}

ct_tensor *ct_kl_div(ct_tensor *student, ct_tensor *teacher, ct_tensor *mask, double temperature) {
    if (!student || !teacher) return NULL;
    if (!ct_check_operands("kl_div", student, teacher)) return NULL;
    if (student->ndim < 1 || !ct_same_shape(student, teacher))
        return ct_fail_shapes("kl_div", student, teacher, "student and teacher logits must have the same shape");
    if (mask) {
        const char *why = NULL;
        if (mask->dtype != CT_F32 && mask->dtype != student->dtype) why = "mask must be f32 or the logits' dtype";
        else if (ct_numel(mask) != ct_rows(student)) why = "mask needs one value per row of the logits";
        else if (mask->device != student->device) why = "mask is on another device";
        if (why) return ct_fail_shapes("kl_div", student, mask, why);
    }
    if (!(temperature > 0)) {
        ct_fail("kl_div: temperature = %g must be > 0", temperature);
        return NULL;
    }
    if (!ct_backend_for(student->device)->kl_div_forward)
        return ct_fail_shapes("kl_div", student, teacher, "this device's backend has no kl_div kernel");
    int64_t stats_shape[2] = {ct_rows(student), 3};
    kl_ctx *ctx = ct_arena_alloc(sizeof *ctx);
    ct_tensor *out = ct_empty_on(student->device, student->dtype, 0, NULL);
    if (!ctx || !out || !(ctx->row_stats = ct_empty_on(student->device, CT_F64, 2, stats_shape))) return NULL;
    ctx->temperature = temperature;
    if (ct_backend_for(student->device)->kl_div_forward(student, teacher, mask, temperature, ctx->row_stats, out) < 0)
        return NULL;
    ct_tensor *inputs[3] = {student, teacher, mask};
    int n = mask ? 3 : 2;
    if (ct_needs_grad(inputs, n) && !ct_record("kl_div", kl_backward, inputs, n, out, ctx)) return NULL;
    return out;
}
