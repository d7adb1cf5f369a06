#include "train/optim.h"

#include <math.h>
#include <stdlib.h>

#include "autograd/error.h"

static void free_slots(ct_adamw *opt) {
    for (int i = 0; i < opt->n_slots; i++) {
        ct_tensor_free(opt->slots[i].m);
        ct_tensor_free(opt->slots[i].v);
    }
}

ct_adamw *ct_adamw_new(ct_tensor *const *params, int n, ct_adamw_hparams hparams) {
    ct_adamw *opt = ct_calloc(1, sizeof *opt, "the optimizer");
    if (!opt) return NULL;
    opt->hparams = hparams;
    opt->slots = ct_calloc((size_t)n, sizeof *opt->slots, "optimizer slots");
    if (!opt->slots) goto fail;
    for (int i = 0; i < n; i++) {
        ct_tensor *p = params[i];
        const char *name = p->name ? p->name : "(unnamed)";
        if (!p->persistent || !ct_dtype_is_real(p->dtype) || !p->requires_grad) {
            ct_fail("adamw: parameter '%s' must be a persistent f32/f64 tensor that requires grad "
                    "(frozen or bf16/i8 weights are not optimized)", name);
            goto fail;
        }
        ct_adamw_slot *s = &opt->slots[i];
        opt->n_slots = i + 1;
        s->param = p;
        s->weight_decay = hparams.weight_decay;
        s->m = ct_tensor_new_on(p->device, p->dtype, p->ndim, p->shape, NULL);
        s->v = ct_tensor_new_on(p->device, p->dtype, p->ndim, p->shape, NULL);
        if (!s->m || !s->v) {
            ct_fail_context("adamw moments of '%s': ", name);
            goto fail;
        }
    }
    return opt;
fail:
    ct_adamw_free(opt);
    return NULL;
}

void ct_adamw_free(ct_adamw *opt) {
    if (!opt) return;
    if (opt->slots) free_slots(opt);
    free(opt->slots);
    free(opt);
}

void ct_adamw_set_weight_decay(ct_adamw *opt, int index, double weight_decay) {
    if (index >= 0 && index < opt->n_slots) opt->slots[index].weight_decay = weight_decay;
}

int ct_adamw_step(ct_adamw *opt) {
    opt->step++;
    for (int i = 0; i < opt->n_slots; i++) {
        ct_adamw_slot *s = &opt->slots[i];
        if (!s->param->grad) continue;
        ct_adamw_hparams h = opt->hparams;
        h.weight_decay = s->weight_decay;
        CT_TRY(ct_backend_for(s->param->device)->adamw_step(s->param, s->param->grad, s->m, s->v, &h, opt->step));
    }
    return 0;
}

int ct_grad_global_norm(ct_tensor *const *params, int n, double *norm) {
    double total = 0;
    for (int i = 0; i < n; i++) {
        if (!params[i]->grad) continue;
        double squares;
        CT_TRY(ct_backend_for(params[i]->device)->sum_squares(params[i]->grad, &squares));
        total += squares;
    }
    *norm = sqrt(total);
    return 0;
}

int ct_clip_grad_norm(ct_tensor *const *params, int n, double max_norm, double *norm) {
    CT_TRY(ct_grad_global_norm(params, n, norm));
    if (!isfinite(*norm)) return ct_fail("gradient norm is %g: the loss or a gradient is not finite", *norm);
    if (max_norm <= 0 || *norm <= max_norm) return 0;
    double factor = max_norm / (*norm + 1e-6);
    for (int i = 0; i < n; i++)
        if (params[i]->grad) CT_TRY(ct_backend_for(params[i]->device)->axpby(0.0, params[i]->grad, factor, params[i]->grad));
    return 0;
}
