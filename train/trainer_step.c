/* One optimizer step: draw the micro-batches, accumulate gradients normalized by the step's
 * total number of target tokens, clip, update. On a GPU the batcher still builds each batch on
 * the host; its i32 tensors are copied to the device inside the micro-batch's scope, and only the
 * loss comes back (ct_get). Clipping and AdamW run on the parameters' device. */
#include <math.h>

#include "core/arena.h"
#include "core/error.h"
#include "autograd/ops.h"
#include "autograd/tape.h"
#include "train/distill.h"
#include "train/trainer_internal.h"

/* Dropout masks are keyed on (seed, step * grad_accum + index), so every micro-batch of every
 * step draws its own, on whichever rank runs it. */
int ct_trainer_micro_batch(ct_trainer *t, const ct_batch *host, int index, int64_t total_targets, double *loss_sum) {
    if (ct_scope_begin() < 0) return -1;
    ct_batch copy = *host, *b = &copy;
    if (ct_batch_to_device(b, ct_llama_device(t->model)) < 0) {
        ct_scope_end();
        return -1;
    }
    ct_tensor *positions = ct_batch_positions_plain(host) ? NULL : b->positions;
    ct_llama_forward_args args = {.position_ids = positions, .segment_ids = b->segments,
                                  .dropout = t->recipe->model.dropout, .dropout_seed = (uint64_t)t->recipe->seed,
                                  .step = (uint64_t)(t->step * t->recipe->train.grad_accum + index), .training = true};
    ct_tensor *sum = t->distill ? ct_distill_loss(t->distill, t->model, host, b, &args)
                                : ct_llama_loss_sum(t->model, b->ids, b->targets, host->targets, &args);
    int rc = sum ? 0 : -1;
    if (rc == 0) {
        *loss_sum = ct_get(sum, 0);
        rc = ct_backward(ct_scale(sum, 1.0 / (double)total_targets));
    }
    ct_scope_end();
    return rc;
}

static int accumulate(ct_trainer *t, double *loss, int64_t *tokens) {
    int accum = t->recipe->train.grad_accum;
    ct_batch *batches = ct_arena_alloc(sizeof *batches * (size_t)accum);
    if (!batches) return -1;
    /* All micro-batches first: the normalizer is the target count of the whole step. */
    int64_t total_targets = 0;
    *tokens = 0;
    for (int i = 0; i < accum; i++) {
        CT_TRY(ct_batcher_next(t->batcher, &batches[i]));
        total_targets += batches[i].n_targets;
        *tokens += batches[i].n_real;
    }
    if (total_targets == 0)
        return ct_fail("step %lld: its %d batch(es) hold no target token; check data.loss_on and data.truncation",
                       (long long)t->step + 1, accum);
    if (t->dist) { /* under mpirun: this rank's share, added up over the ranks (train/trainer_dist.c) */
        double loss_sum = 0;
        CT_TRY(ct_trainer_dist_accumulate(t, batches, total_targets, &loss_sum));
        *loss = loss_sum / (double)total_targets;
        return 0;
    }
    CT_TRY(ct_zero_grad(t->trainable.params, t->trainable.n));
    double loss_sum = 0;
    for (int i = 0; i < accum; i++) {
        if (batches[i].n_targets == 0) continue;
        double part = 0;
        CT_TRY(ct_trainer_micro_batch(t, &batches[i], i, total_targets, &part));
        loss_sum += part;
    }
    *loss = loss_sum / (double)total_targets;
    return 0;
}

int ct_trainer_step(ct_trainer *t, double *loss, double *grad_norm, int64_t *tokens) {
    if (ct_scope_begin() < 0) return -1;
    int rc = accumulate(t, loss, tokens);
    ct_scope_end();
    CT_TRY(rc);
    long long step = (long long)t->step + 1;
    if (!isfinite(*loss))
        return ct_fail("step %lld: the loss is %g; stopped before updating, so the last checkpoint is intact "
                       "(lower optimizer.lr or set optimizer.grad_clip)", step, *loss);
    ct_tensor **params = t->trainable.params;
    int n = t->trainable.n;
    double clip = t->recipe->optimizer.grad_clip;
    CT_TRY(ct_adamw_mask_grads(t->optimizer)); /* pruned entries are not part of the gradient norm */
    rc = clip > 0 ? ct_clip_grad_norm(params, n, clip, grad_norm) : ct_grad_global_norm(params, n, grad_norm);
    if (rc < 0)
        return ct_fail_context("step %lld: stopped before updating, so the last checkpoint is intact: ", step);
    if (!isfinite(*grad_norm))
        return ct_fail("step %lld: the gradient norm is %g; stopped before updating, so the last checkpoint is "
                       "intact (lower optimizer.lr)", step, *grad_norm);
    t->optimizer->hparams.lr = ct_schedule_lr(&t->schedule, t->step);
    CT_TRY(ct_adamw_step(t->optimizer));
    CT_TRY(ct_trainer_dist_share_params(t)); /* ZeRO-1: the slices other ranks updated */
    t->step++;
    return 0;
}
