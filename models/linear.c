/* ct_linear's forward (models/linear.h). The mixed-precision copies are made here, where the
 * weight is used: a checkpointed block that recomputes calls this again and converts again, so
 * the bf16 copies never outlive the block and the recomputation is the same ops in the same
 * order (bit-identical gradients). */
#include "models/linear.h"

#include "autograd/ops.h"
#include "core/error.h"
#include "models/lora.h"
#include "models/prune.h"

ct_tensor *ct_linear_input(ct_tensor *x, ct_dtype compute_dtype) {
    if (!x || compute_dtype == CT_F32 || x->dtype != CT_F32) return x;
    return ct_to_dtype(x, compute_dtype);
}

static int check_linear(const ct_linear *l, ct_dtype compute_dtype) {
    if (!l || !l->weight) return ct_fail("linear: no weight; build the layer (or load it) before the forward");
    const char *name = l->weight->name ? l->weight->name : "(unnamed)";
    char buf[64];
    if (compute_dtype != CT_F32 && compute_dtype != CT_BF16)
        return ct_fail("linear %s: compute dtype %s must be f32 or bf16", name, ct_dtype_name(compute_dtype));
    if (l->weight->ndim != 2)
        return ct_fail("linear %s: weight %s must be 2-D [out, in]", name, ct_shape_str(l->weight, buf, sizeof buf));
    if (l->bias && (l->bias->ndim != 1 || l->bias->shape[0] != l->weight->shape[0]))
        return ct_fail("linear %s: bias %s must be [%lld], one per output", name, ct_shape_str(l->bias, buf, sizeof buf),
                       (long long)l->weight->shape[0]);
    if (l->adapter && (l->adapter->A->shape[1] != l->weight->shape[1] || l->adapter->B->shape[0] != l->weight->shape[0]))
        return ct_fail("linear %s: the adapter makes [%lld, %lld] but the weight is [%lld, %lld]", name,
                       (long long)l->adapter->B->shape[0], (long long)l->adapter->A->shape[1],
                       (long long)l->weight->shape[0], (long long)l->weight->shape[1]);
    if (l->mask && (l->mask->dtype != CT_F32 || !ct_same_shape(l->mask, l->weight) || l->mask->device != l->weight->device))
        return ct_fail("linear %s: its pruning mask %s must be f32 of the weight's shape, on its device", name,
                       ct_shape_str(l->mask, buf, sizeof buf));
    /* DoRA normalizes the rows of W + s·B·A; over a pruned W that direction would need the mask
     * inside the norm and the merge, which neither peft nor ctune defines. */
    if (l->mask && l->adapter && l->adapter->magnitude)
        return ct_fail("linear %s: DoRA (lora.use_dora) on a pruned weight is not supported; use plain LoRA "
                       "(lora.use_dora=false) for recovery after pruning", name);
    return 0;
}

ct_tensor *ct_linear_forward_train(const ct_linear *l, ct_tensor *x, ct_dtype compute_dtype,
                                   const ct_lora_dropout *train) {
    if (!x) return NULL;
    if (check_linear(l, compute_dtype) < 0) return NULL;
    /* An f32 weight under bf16 compute: a bf16 copy, made here so that it lives in this scope.
     * A pruned trainable weight is used as W * mask, so its pruned entries get no gradient (the
     * optimizer keeps them at zero too: models/prune.h). A frozen one is already zero there. */
    ct_tensor *weight = l->mask && l->weight->requires_grad ? ct_mul(l->weight, l->mask) : l->weight;
    weight = ct_linear_input(weight, compute_dtype);
    ct_tensor *input = ct_linear_input(x, compute_dtype);
    ct_tensor *product = ct_matmul(input, weight, false, true), *y = product;
    if (y && l->bias) y = ct_add(y, l->bias);
    /* PEFT's order: the base layer (bias included), then the adapter's term added. */
    const ct_lora *a = l->adapter;
    if (y && a && !a->disabled)
        y = a->magnitude ? ct_add(y, ct_lora_dora_term(a, l->weight, weight, input, product, train))
            : l->mask    ? ct_add(y, ct_prune_lora_delta(a, l->mask, input, train))
                         : ct_lora_add_delta(a, y, input, train);
    if (!y) ct_fail_context("linear %s: ", l->weight->name ? l->weight->name : "(unnamed)");
    return y;
}

ct_tensor *ct_linear_forward(const ct_linear *l, ct_tensor *x, ct_dtype compute_dtype) {
    return ct_linear_forward_train(l, x, compute_dtype, NULL);
}

int ct_linear_params(const ct_linear *l, ct_param_list *list) {
    CT_TRY(ct_param_list_push(list, l->weight));
    CT_TRY(ct_param_list_push(list, l->bias));
    if (!l->adapter) return 0;
    CT_TRY(ct_param_list_push(list, l->adapter->A));
    CT_TRY(ct_param_list_push(list, l->adapter->B));
    return ct_param_list_push(list, l->adapter->magnitude);
}
