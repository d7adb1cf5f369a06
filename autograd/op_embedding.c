/* Embedding lookup: rows of a [vocab, dim] table picked by i32 ids. Rows keep the table's dtype
 * (f32, f64, bf16); a frozen i8 or f16 table is read into f32 rows. A trainable table gets a
 * deterministic scatter-add gradient (f32 for a bf16 table). */
#include "core/error.h"
#include "autograd/ops.h"
#include "autograd/tape.h"

static int embedding_backward(ct_node *node) {
    ct_tensor *gw;
    CT_TRY(ct_grad_target(node->inputs[0], &gw));
    if (!gw) return 0;
    return ct_backend_for(gw->device)->embedding_backward(node->output->grad, node->inputs[1], gw);
}

ct_tensor *ct_embedding(ct_tensor *weight, ct_tensor *ids) {
    if (!weight || !ids) return NULL;
    if (weight->ndim != 2) return ct_fail_shapes("embedding", weight, ids, "the table must be 2-D [vocab, dim]");
    if (ids->dtype != CT_I32) return ct_fail_shapes("embedding", weight, ids, "ids must be i32");
    if (ids->ndim >= CT_MAX_DIMS) return ct_fail_shapes("embedding", weight, ids, "ids have too many dimensions");
    if (weight->device != ids->device) return ct_fail_shapes("embedding", weight, ids, "different devices");
    bool f32_rows = !ct_dtype_is_real(weight->dtype) && weight->dtype != CT_BF16; /* i8, f16 */
    if (f32_rows && weight->requires_grad)
        return ct_fail_shapes("embedding", weight, ids, "an i8/f16 table must be frozen (train an f32 or bf16 table)");
    int64_t shape[CT_MAX_DIMS];
    for (int i = 0; i < ids->ndim; i++) shape[i] = ids->shape[i];
    shape[ids->ndim] = weight->shape[1];
    ct_dtype dtype = f32_rows ? CT_F32 : weight->dtype;
    ct_tensor *out = ct_empty_on(weight->device, dtype, ids->ndim + 1, shape);
    if (!out || ct_backend_for(weight->device)->embedding_forward(weight, ids, out) < 0) return NULL;
    ct_tensor *inputs[2] = {weight, ids};
    if (ct_needs_grad(inputs, 2) && !ct_record("embedding", embedding_backward, inputs, 2, out, NULL)) return NULL;
    return out;
}
