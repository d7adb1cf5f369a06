/* LoRA on a pruned base (models/prune.h). B·A is dense: added as it is, it would bring back every
 * weight the mask removed, in the forward and in a merge. So a masked projection computes the
 * adapter's term through the masked product, s · dropout(x) · ((B·A) ⊙ M)ᵀ, forming the
 * [out, in] product the plain adapter avoids; the cost is one extra GEMM of the weight's size,
 * and what trains is then exactly what a merge keeps. */
#include "autograd/ops.h"
#include "autograd/ops_transformer.h"
#include "core/error.h"
#include "models/lora.h"
#include "models/llama.h"
#include "models/prune.h"

ct_tensor *ct_prune_lora_delta(const ct_lora *l, const ct_tensor *mask, ct_tensor *x, const ct_lora_dropout *drop) {
    if (!x) return NULL;
    ct_tensor *in = x;
    if (drop && l->dropout > 0) in = ct_dropout(x, l->dropout, drop->seed, ct_dropout_stream(drop->step, l->dropout_site));
    ct_tensor *product = ct_matmul(l->B, l->A, false, false); /* [out, in] */
    ct_tensor *delta = product ? ct_scale(ct_mul(product, (ct_tensor *)mask), l->scale) : NULL;
    if (delta && in && delta->dtype != in->dtype) delta = ct_to_dtype(delta, in->dtype);
    return ct_matmul(in, delta, false, true);
}

int ct_prune_check_unmerged_export(const ct_llama *m) {
    for (int l = 0; l < m->config.num_hidden_layers; l++) {
        const ct_llama_layer *L = &m->layers[l];
        const ct_linear *all[] = {&L->q_proj, &L->k_proj, &L->v_proj, &L->o_proj, &L->gate_proj, &L->up_proj, &L->down_proj};
        for (size_t k = 0; k < sizeof all / sizeof *all; k++)
            if (all[k]->adapter && all[k]->mask)
                return ct_fail("%s is pruned and carries a LoRA adapter: a runtime would add the dense B·A to it and "
                               "bring the pruned weights back; export the merged model (--format hf), which keeps "
                               "the mask", all[k]->weight->name);
    }
    return 0;
}
