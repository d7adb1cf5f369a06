/* The summed cross-entropy on the rows that have a target only (models/llama.h). */
#include "autograd/ops.h"
#include "core/error.h"
#include "models/llama.h"

#define CT_IGNORED_TARGET (-100)

/* Row indices and targets of the rows that have one, in row order; false with a message. */
static bool kept_rows(const ct_tensor *targets, int64_t n, ct_tensor **rows, ct_tensor **kept) {
    *rows = ct_empty(CT_I32, 1, &n);
    *kept = ct_empty(CT_I32, 1, &n);
    if (!*rows || !*kept) return false;
    const int32_t *all = targets->data;
    int32_t *r = (*rows)->data, *k = (*kept)->data;
    int64_t j = 0;
    for (int64_t i = 0, total = ct_numel(targets); i < total && j < n; i++)
        if (all[i] != CT_IGNORED_TARGET) {
            r[j] = (int32_t)i;
            k[j++] = all[i];
        }
    if (j == n) return true;
    ct_fail("llama loss: %lld targets expected but %lld found", (long long)n, (long long)j);
    return false;
}

ct_tensor *ct_llama_target_rows_loss(ct_llama *m, ct_tensor *ids, const ct_tensor *targets, int64_t n_targets,
                                     ct_llama_forward_args *args, bool *used) {
    *used = false;
    const int64_t total = ct_numel(targets);
    if (ct_llama_device(m) != CT_CPU || targets->device != CT_CPU || targets->dtype != CT_I32 || n_targets <= 0 ||
        2 * n_targets > total)
        return NULL;
    *used = true;
    ct_tensor *rows, *kept;
    if (!kept_rows(targets, n_targets, &rows, &kept)) return NULL;
    args->hidden_only = true;
    ct_tensor *hidden = ct_llama_forward(m, ids, args);
    if (!hidden) return NULL;
    /* An embedding lookup into the hidden rows gathers them; its backward puts each row's
     * gradient back in place (the others get zero, as their ignored logits would have given). */
    const int64_t flat[2] = {total, hidden->shape[hidden->ndim - 1]};
    ct_tensor *logits = ct_llama_logits(m, ct_embedding(ct_reshape(hidden, 2, flat), rows));
    return ct_cross_entropy(logits, kept, CT_REDUCE_SUM);
}
