/* The training loss of a batch without vocabulary-sized logits (models/llama.h,
 * ct_llama_loss_sum). On a Qwen2.5-0.5B-shaped model the logits of 512 tokens and their gradient
 * are 2 x 297 MiB, more than a LoRA run's int8 base: the rows with a target are gathered from the
 * final hidden states instead, and ct_kd_loss (no teacher: plain cross-entropy) applies lm_head to
 * a chunk of them at a time, in forward and again in backward (or keeps a single chunk between
 * the two, autograd/op_kd_loss.c). */
#include <stdio.h>

#include "core/error.h"
#include "autograd/ops.h"
#include "autograd/ops_transformer.h"
#include "models/llama.h"

#define IGNORE_INDEX (-100) /* the label of a position without a loss, as ct_cross_entropy's */

int ct_llama_target_rows(const ct_tensor *host_targets, int64_t vocab, ct_device device, ct_tensor **rows,
                         ct_tensor **targets) {
    int64_t n = 0, total = ct_numel(host_targets);
    const int32_t *y = host_targets->data;
    if (host_targets->dtype != CT_I32 || host_targets->device != CT_CPU)
        return ct_fail("llama loss: the targets must be i32 on the host");
    for (int64_t i = 0; i < total; i++) {
        if (y[i] == IGNORE_INDEX) continue;
        if (y[i] < 0 || y[i] >= vocab)
            return ct_fail("cross_entropy: target %d at row %lld is outside [0, %lld) (use -100 to ignore a position)",
                           (int)y[i], (long long)i, (long long)vocab);
        n++;
    }
    ct_tensor *r = ct_empty(CT_I32, 1, &n), *t = ct_empty(CT_I32, 1, &n);
    if (!r || !t) return -1;
    for (int64_t i = 0, k = 0; i < total; i++)
        if (y[i] != IGNORE_INDEX) ((int32_t *)r->data)[k] = (int32_t)i, ((int32_t *)t->data)[k++] = y[i];
    *rows = device == CT_CPU ? r : ct_to_device(r, device);
    *targets = device == CT_CPU ? t : ct_to_device(t, device);
    return *rows && *targets ? 0 : -1;
}

ct_tensor *ct_llama_gather_rows(ct_tensor *hidden, ct_tensor *rows) {
    if (!hidden || !rows) return NULL;
    int64_t h = hidden->shape[hidden->ndim - 1];
    return ct_embedding(ct_reshape(hidden, 2, (int64_t[]){ct_numel(hidden) / h, h}), rows);
}

static bool has_target(const ct_tensor *host_targets) {
    for (int64_t i = 0; i < ct_numel(host_targets); i++)
        if (((const int32_t *)host_targets->data)[i] != IGNORE_INDEX) return true;
    return false;
}

bool ct_llama_loss_is_fused(const ct_llama *m) {
    const ct_linear *head = &m->lm_head;
    /* bf16 compute runs the unfused head in bf16; the fused op computes in the hidden's f32 */
    return !head->adapter && !head->mask && !head->bias && m->compute_dtype == CT_F32;
}

ct_tensor *ct_llama_loss_sum(ct_llama *m, ct_tensor *ids, ct_tensor *targets, const ct_tensor *host_targets,
                             const ct_llama_forward_args *args) {
    if (!m || !ids || !targets || !host_targets) return NULL;
    if (host_targets->dtype != CT_I32 || host_targets->device != CT_CPU)
        return ct_fail("llama loss: the host targets must be i32 on the host"), NULL;
    /* without a target the unfused loss is a plain 0 with its graph */
    if (!has_target(host_targets) || !ct_llama_loss_is_fused(m))
        return ct_cross_entropy(ct_llama_forward(m, ids, args), targets, CT_REDUCE_SUM);
    ct_llama_forward_args hidden_args = args ? *args : (ct_llama_forward_args){0};
    hidden_args.hidden_only = true;
    if (hidden_args.last_token_only || hidden_args.cache)
        return ct_fail("llama loss: a loss over targets needs every position (no cache, not last_token_only)"), NULL;
    const int64_t vocab = m->config.vocab_size;
    ct_tensor *rows, *row_targets;
    if (ct_llama_target_rows(host_targets, vocab, ct_llama_device(m), &rows, &row_targets) < 0) return NULL;
    ct_tensor *hidden = ct_llama_gather_rows(ct_llama_forward(m, ids, &hidden_args), rows);
    const ct_kd_options ce = {.ce_weight = 1, .kl_weight = 0, .temperature = 1, .chunk_rows = m->loss_chunk_rows};
    return hidden ? ct_kd_loss(hidden, m->lm_head.weight, NULL, NULL, row_targets, vocab, &ce) : NULL;
}
