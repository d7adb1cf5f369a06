/* AdamW with per-parameter weight decay (parameter groups: norms and biases usually get none),
 * and global-norm gradient clipping. Moments are f32 (f64 for f64 parameters), on the
 * parameter's device, allocated once at construction. */
#ifndef CT_OPTIM_H
#define CT_OPTIM_H

#include "core/tensor.h"
#include "kernels/backend.h"

typedef struct {
    ct_tensor *param;
    ct_tensor *m, *v; /* NULL in a sharded optimizer's slots of other ranks */
    double weight_decay;
    /* NULL, or the parameter's pruning mask (models/prune.h): its pruned gradients are zeroed
     * before the update, and the parameter and both moments after it. */
    const ct_tensor *mask;
} ct_adamw_slot;

typedef struct {
    ct_adamw_hparams hparams; /* lr may be changed between steps by a schedule */
    int64_t step;             /* updates taken so far */
    int n_slots;
    ct_adamw_slot *slots;
} ct_adamw;

/* Every param must be a persistent real tensor that requires grad. */
ct_adamw *ct_adamw_new(ct_tensor *const *params, int n, ct_adamw_hparams hparams);
/* ZeRO-1 (docs/distributed.md): moments only for params[begin, end), the slice this rank
 * updates; the other slots have m = v = NULL and ct_adamw_step leaves their parameters alone. */
ct_adamw *ct_adamw_new_sharded(ct_tensor *const *params, int n, ct_adamw_hparams hparams, int begin, int end);
void ct_adamw_free(ct_adamw *opt);
/* Overrides the weight decay of one parameter (a parameter group of one). */
void ct_adamw_set_weight_decay(ct_adamw *opt, int index, double weight_decay);
/* Sets (or clears, with NULL) the pruning mask of a parameter (one of the optimizer's, by pointer;
 * ignored for another). The mask lives on the parameter's device and outlives the optimizer. */
void ct_adamw_set_mask(ct_adamw *opt, const ct_tensor *param, const ct_tensor *mask);
/* Zeroes the pruned entries of the masked parameters' gradients: before clipping, so the
 * gradient norm is that of the gradients that update something. 0 or -1. */
int ct_adamw_mask_grads(ct_adamw *opt);
/* Zeroes the pruned entries of the masked parameters and of both their moments (a mask that
 * just grew: the moments of newly pruned entries are dropped). 0 or -1. */
int ct_adamw_mask_state(ct_adamw *opt);
/* One update of every parameter that has a gradient (and, sharded, moments); masked ones as ct_adamw_mask_grads, the
 * update, then ct_adamw_mask_state: pruned weights and moments stay exactly zero. */
int ct_adamw_step(ct_adamw *opt);

/* sqrt of the sum of squared gradients over all params (those without .grad count as zero). */
int ct_grad_global_norm(ct_tensor *const *params, int n, double *norm);
/* Scales all gradients by max_norm / norm when norm > max_norm; returns the norm before
 * clipping in *norm. A non-finite norm is an error naming it (the caller stops the run). */
int ct_clip_grad_norm(ct_tensor *const *params, int n, double max_norm, double *norm);

#endif
