#include "train/optim.h"

#include <math.h>
#include <stdlib.h>

#include "core/error.h"

static void free_slots(ct_adamw *opt) {
    for (int i = 0; i < opt->n_slots; i++) {
        ct_tensor_free(opt->slots[i].m);
        ct_tensor_free(opt->slots[i].v);
    }
}

ct_adamw *ct_adamw_new(ct_tensor *const *params, int n, ct_adamw_hparams hparams) {
    return ct_adamw_new_sharded(params, n, hparams, 0, n);
}

ct_adamw *ct_adamw_new_sharded(ct_tensor *const *params, int n, ct_adamw_hparams hparams, int begin, int end) {
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
        if (i < begin || i >= end) continue;
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

void ct_adamw_set_mask(ct_adamw *opt, const ct_tensor *param, const ct_tensor *mask) {
    for (int i = 0; i < opt->n_slots; i++)
        if (opt->slots[i].param == param) opt->slots[i].mask = mask;
}

/* The optimizer's kernels take a list per device (one launch per step on a GPU, not one per
 * tensor). A model's parameters usually share one device; a list mixing devices is split into
 * one call per device, CPU first, so results are the same for any order of the parameters'
 * devices in the list. The lists are a few pointers per parameter, built per call on the heap. */
typedef struct {
    ct_tensor **params, **grads, **m, **v;
    double *weight_decay;
    int n;
} device_list;

static void device_list_free(device_list *l) {
    free(l->params);
    free(l->grads);
    free(l->m);
    free(l->v);
    free(l->weight_decay);
}

static int device_list_alloc(device_list *l, int capacity, bool with_moments) {
    size_t n = capacity > 0 ? (size_t)capacity : 1;
    *l = (device_list){0};
    l->params = ct_calloc(n, sizeof *l->params, "the optimizer's parameter list");
    l->grads = ct_calloc(n, sizeof *l->grads, "the optimizer's gradient list");
    if (with_moments) {
        l->m = ct_calloc(n, sizeof *l->m, "the optimizer's moment list");
        l->v = ct_calloc(n, sizeof *l->v, "the optimizer's moment list");
        l->weight_decay = ct_calloc(n, sizeof *l->weight_decay, "the optimizer's weight decay list");
    }
    if (!l->params || !l->grads || (with_moments && (!l->m || !l->v || !l->weight_decay))) {
        device_list_free(l);
        return -1;
    }
    return 0;
}

static const ct_device all_devices[] = {CT_CPU, CT_CUDA};
#define N_DEVICES ((int)(sizeof all_devices / sizeof *all_devices))

/* mask_multi over the masked slots, per device: what = 0 the gradients, 1 the parameters and
 * both moments. */
static int mask_slots(ct_adamw *opt, int what) {
    bool any = false;
    for (int i = 0; i < opt->n_slots && !any; i++) any = opt->slots[i].mask != NULL;
    if (!any) return 0;
    int capacity = 3 * opt->n_slots;
    ct_tensor **x = ct_calloc((size_t)(capacity ? capacity : 1), sizeof *x, "the masked tensor list");
    const ct_tensor **masks = x ? ct_calloc((size_t)(capacity ? capacity : 1), sizeof *masks, "the mask list") : NULL;
    int status = masks ? 0 : -1;
    for (int d = 0; d < N_DEVICES && status == 0; d++) {
        int n = 0;
        for (int i = 0; i < opt->n_slots; i++) {
            ct_adamw_slot *s = &opt->slots[i];
            if (!s->mask || s->param->device != all_devices[d]) continue;
            if (what == 0) {
                if (s->param->grad) x[n] = s->param->grad, masks[n++] = s->mask;
                continue;
            }
            if (!s->m) continue; /* another rank's slice: its update arrives whole */
            x[n] = s->param, masks[n++] = s->mask;
            x[n] = s->m, masks[n++] = s->mask;
            x[n] = s->v, masks[n++] = s->mask;
        }
        if (n) status = ct_backend_for(all_devices[d])->mask_multi(n, x, masks);
    }
    free(x);
    free(masks);
    return status;
}

int ct_adamw_mask_grads(ct_adamw *opt) { return mask_slots(opt, 0); }
int ct_adamw_mask_state(ct_adamw *opt) { return mask_slots(opt, 1); }

int ct_adamw_step(ct_adamw *opt) {
    CT_TRY(ct_adamw_mask_grads(opt));
    opt->step++;
    device_list l;
    CT_TRY(device_list_alloc(&l, opt->n_slots, true));
    int status = 0;
    for (int d = 0; d < N_DEVICES && status == 0; d++) {
        l.n = 0;
        for (int i = 0; i < opt->n_slots; i++) {
            ct_adamw_slot *s = &opt->slots[i];
            if (!s->param->grad || !s->m || s->param->device != all_devices[d]) continue;
            l.params[l.n] = s->param;
            l.grads[l.n] = s->param->grad;
            l.m[l.n] = s->m;
            l.v[l.n] = s->v;
            l.weight_decay[l.n] = s->weight_decay;
            l.n++;
        }
        if (l.n)
            status = ct_backend_for(all_devices[d])->adamw_multi(l.n, l.params, l.grads, l.m, l.v, l.weight_decay,
                                                                 &opt->hparams, opt->step);
    }
    device_list_free(&l);
    return status < 0 ? status : ct_adamw_mask_state(opt);
}

/* The gradients of params on one device, in list order. */
static void gather_grads(ct_tensor *const *params, int n, ct_device device, device_list *l) {
    l->n = 0;
    for (int i = 0; i < n; i++)
        if (params[i]->grad && params[i]->device == device) l->grads[l->n++] = params[i]->grad;
}

int ct_grad_global_norm(ct_tensor *const *params, int n, double *norm) {
    device_list l;
    CT_TRY(device_list_alloc(&l, n, false));
    double total = 0;
    int status = 0;
    for (int d = 0; d < N_DEVICES && status == 0; d++) {
        gather_grads(params, n, all_devices[d], &l);
        double squares = 0;
        if (l.n) status = ct_backend_for(all_devices[d])->sum_squares_multi(l.n, (const ct_tensor *const *)l.grads,
                                                                            &squares);
        total += squares;
    }
    device_list_free(&l);
    *norm = sqrt(total);
    return status;
}

int ct_clip_grad_norm(ct_tensor *const *params, int n, double max_norm, double *norm) {
    CT_TRY(ct_grad_global_norm(params, n, norm));
    if (!isfinite(*norm)) return ct_fail("gradient norm is %g: the loss or a gradient is not finite", *norm);
    if (max_norm <= 0 || *norm <= max_norm) return 0;
    double factor = max_norm / (*norm + 1e-6);
    device_list l;
    CT_TRY(device_list_alloc(&l, n, false));
    int status = 0;
    for (int d = 0; d < N_DEVICES && status == 0; d++) {
        gather_grads(params, n, all_devices[d], &l);
        if (l.n) status = ct_backend_for(all_devices[d])->scale_multi(l.n, l.grads, factor);
    }
    device_list_free(&l);
    return status;
}
