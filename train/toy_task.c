#include "train/toy_task.h"

#include "core/arena.h"
#include "core/error.h"
#include "autograd/ops.h"
#include "core/rng.h"
#include "autograd/tape.h"
#include "models/mlp.h"
#include "train/optim.h"

ct_toy_config ct_toy_default_config(void) {
    return (ct_toy_config){.points = 61, .inputs = 13, .hidden = 47, .classes = 7, .steps = 300,
                           .lr = 1e-2, .weight_decay = 1e-4, .max_grad_norm = 5.0, .seed = 7};
}

/* Random inputs and labels: nothing to generalize, everything to memorize. */
static int make_data(const ct_toy_config *c, ct_tensor **x, ct_tensor **y) {
    ct_rng rng;
    ct_rng_seed(&rng, c->seed ^ 0x5eedu);
    *x = ct_tensor_new(CT_F32, 2, (int64_t[]){c->points, c->inputs}, "toy.x");
    *y = ct_tensor_new(CT_I32, 1, &c->points, "toy.y");
    if (!*x || !*y) return -1;
    ct_fill_normal(*x, &rng, 0.0, 1.0);
    for (int64_t i = 0; i < c->points; i++) ct_set(*y, i, (double)ct_rng_below(&rng, (uint64_t)c->classes));
    return 0;
}

static int train_step(ct_mlp *mlp, ct_adamw *opt, ct_tensor *x, ct_tensor *y, double max_norm, double *loss_out) {
    CT_TRY(ct_scope_begin());
    ct_tensor *loss = ct_cross_entropy(ct_mlp_forward(mlp, x), y, CT_REDUCE_MEAN);
    double norm;
    int status = loss && ct_backward(loss) == 0 && ct_clip_grad_norm(mlp->params, 4, max_norm, &norm) == 0 &&
                         ct_adamw_step(opt) == 0
                     ? 0
                     : -1;
    if (status == 0) *loss_out = ct_get(loss, 0);
    ct_zero_grad(mlp->params, 4);
    ct_scope_end();
    return status;
}

int ct_toy_train(const ct_toy_config *c, ct_toy_report *report) {
    ct_mlp mlp;
    ct_tensor *x = NULL, *y = NULL;
    ct_adamw *opt = NULL;
    int status = -1;
    if (ct_mlp_init(&mlp, c->inputs, c->hidden, c->classes, c->seed) < 0) return -1;
    if (make_data(c, &x, &y) < 0) goto done;
    ct_adamw_hparams h = {.lr = c->lr, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = c->weight_decay};
    if (!(opt = ct_adamw_new(mlp.params, 4, h))) goto done;
    ct_adamw_set_weight_decay(opt, 1, 0.0); /* biases: no decay */
    ct_adamw_set_weight_decay(opt, 3, 0.0);
    for (int step = 0; step < c->steps; step++) {
        if (train_step(&mlp, opt, x, y, c->max_grad_norm, &report->losses[step]) < 0) {
            ct_fail_context("toy task, step %d: ", step + 1);
            goto done;
        }
        ct_memory_stats stats = ct_memory_get_stats(CT_CPU);
        if (step == 0) {
            report->reserved_after_first = stats.reserved;
            report->chunk_allocations_after_first = stats.chunk_allocations;
        }
        report->reserved_at_end = stats.reserved;
        report->chunk_allocations_at_end = stats.chunk_allocations;
    }
    status = 0;
done:
    ct_adamw_free(opt);
    ct_tensor_free(x);
    ct_tensor_free(y);
    ct_mlp_free(&mlp);
    return status;
}
