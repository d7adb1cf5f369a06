#include "autograd/gradcheck.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/error.h"
#include "autograd/ops.h"
#include "core/rng.h"
#include "autograd/tape.h"
#include "kernels/device.h"

#define MAX_CHECK_INPUTS 8

/* A host view of t: t itself on the CPU, else a header over a heap copy of its data (*owned,
 * freed by the caller). Reading device tensors element by element would copy once per element.
 * NULL when the copy fails. */
static const ct_tensor *host_view(const ct_tensor *t, ct_tensor *view, void **owned) {
    *owned = NULL;
    if (t->device == CT_CPU) return t;
    size_t nbytes = ct_nbytes(t);
    *owned = malloc(nbytes ? nbytes : 1);
    if (!*owned || ct_device_copy(CT_CPU, *owned, t->device, t->data, nbytes) < 0) {
        free(*owned);
        *owned = NULL;
        return NULL;
    }
    *view = *t;
    view->device = CT_CPU;
    view->data = *owned;
    view->scale = NULL; /* real tensors only: an i8 tensor reads as its raw values */
    return view;
}

double ct_relative_error(const ct_tensor *a, const ct_tensor *b) {
    ct_tensor a_view, b_view;
    void *a_owned, *b_owned;
    const ct_tensor *ha = host_view(a, &a_view, &a_owned), *hb = host_view(b, &b_view, &b_owned);
    double diff = 0, norm = 0;
    int64_t n = ct_numel(b);
    for (int64_t i = 0; ha && hb && i < n; i++) {
        double d = ct_get(ha, i) - ct_get(hb, i);
        diff += d * d;
        norm += ct_get(hb, i) * ct_get(hb, i);
    }
    free(a_owned);
    free(b_owned);
    if (!ha || !hb) return NAN;
    if (norm == 0) return diff == 0 ? 0 : INFINITY;
    return sqrt(diff / norm);
}

/* An arena copy of src in another dtype on src's device. */
static ct_tensor *converted(const ct_tensor *src, ct_dtype dtype) {
    ct_tensor *dst = ct_empty_on(src->device, dtype, src->ndim, src->shape);
    return dst && ct_copy(dst, src) == 0 ? dst : NULL;
}

ct_tensor *ct_random_input(ct_rng *rng, int ndim, const int64_t *shape) {
    ct_tensor *t = ct_empty(CT_F64, ndim, shape);
    if (!t) return NULL;
    ct_fill_normal(t, rng, 0.0, 1.0);
    t->requires_grad = true;
    return t;
}

/* L = sum(y * weights), as ops so that backward flows through it. */
static ct_tensor *weighted_sum(ct_tensor *y, ct_tensor *weights) { return ct_sum(ct_mul(y, weights)); }

static double evaluate_loss(ct_gradcheck_fn fn, ct_tensor *const *inputs, int n, void *user, ct_tensor *weights) {
    if (ct_scope_begin() < 0) return NAN;
    ct_tensor *loss = weighted_sum(fn(inputs, n, user), weights);
    double value = loss ? ct_get(loss, 0) : NAN;
    ct_scope_end();
    return value;
}

/* Runs fn, back-propagates L, and returns the output; grads[i] receives each input's gradient. */
static ct_tensor *forward_backward(ct_gradcheck_fn fn, ct_tensor *const *inputs, int n, void *user,
                                   ct_tensor **weights, ct_rng *rng, ct_tensor **grads) {
    ct_tensor *y = fn(inputs, n, user);
    if (!y) return NULL;
    if (!*weights) {
        /* drawn on the host (the same numbers for every device), then moved to y's device */
        *weights = ct_empty(y->dtype, y->ndim, y->shape);
        if (!*weights) return NULL;
        ct_fill_normal(*weights, rng, 0.0, 1.0);
        if (y->device != CT_CPU && !(*weights = ct_to_device(*weights, y->device))) return NULL;
    } else if ((*weights)->dtype != y->dtype && !(*weights = converted(*weights, y->dtype))) {
        return NULL;
    }
    if (ct_backward(weighted_sum(y, *weights)) < 0) return NULL;
    for (int i = 0; i < n; i++) {
        grads[i] = inputs[i]->grad;
        if (!inputs[i]->persistent) inputs[i]->grad = NULL;
    }
    return y;
}

static double numeric_gradient_error(ct_gradcheck_fn fn, ct_tensor *const *inputs, int n, void *user,
                                     ct_tensor *weights, ct_tensor *const *analytic, double step,
                                     int64_t *checked) {
    double worst = 0;
    bool previous = ct_set_grad_enabled(false);
    for (int i = 0; i < n; i++) {
        if (!inputs[i]->requires_grad || !analytic[i]) continue;
        ct_tensor *numeric = ct_empty(CT_F64, inputs[i]->ndim, inputs[i]->shape);
        if (!numeric) break;
        /* ct_get / ct_set reach the element on any device (on the GPU one small copy each, next
         * to two whole forward passes per element); an f64 element is restored bit for bit */
        ct_tensor *x = inputs[i];
        for (int64_t k = 0; k < ct_numel(x); k++) {
            double saved = ct_get(x, k);
            ct_set(x, k, saved + step);
            double plus = evaluate_loss(fn, inputs, n, user, weights);
            ct_set(x, k, saved - step);
            double minus = evaluate_loss(fn, inputs, n, user, weights);
            ct_set(x, k, saved);
            ct_set(numeric, k, (plus - minus) / (2 * step));
            (*checked)++;
        }
        double error = ct_relative_error(analytic[i], numeric);
        if (!(error <= worst)) worst = error;
    }
    ct_set_grad_enabled(previous);
    return worst;
}

static int check_inputs(ct_tensor *const *inputs, int n) {
    if (n > MAX_CHECK_INPUTS) return ct_fail("gradcheck: %d inputs (at most %d)", n, MAX_CHECK_INPUTS);
    for (int i = 0; i < n; i++) {
        if (inputs[i]->dtype != CT_F64 && inputs[i]->dtype != CT_I32)
            return ct_fail("gradcheck: input %d is %s; give f64 values or i32 indices", i,
                           ct_dtype_name(inputs[i]->dtype));
        if (inputs[i]->node) return ct_fail("gradcheck: input %d is not a leaf", i);
    }
    return 0;
}

static int f32_comparison(ct_gradcheck_fn fn, ct_tensor *const *inputs, int n, void *user, ct_tensor *weights,
                          const ct_tensor *y64, ct_tensor *const *grads64, ct_gradcheck_result *result) {
    ct_tensor *inputs32[MAX_CHECK_INPUTS], *grads32[MAX_CHECK_INPUTS];
    for (int i = 0; i < n; i++) {
        if (inputs[i]->dtype != CT_F64) {
            inputs32[i] = inputs[i];
            continue;
        }
        inputs32[i] = converted(inputs[i], CT_F32);
        if (!inputs32[i]) return ct_fail_context("gradcheck (f32 copy of input %d): ", i);
        inputs32[i]->requires_grad = inputs[i]->requires_grad;
    }
    ct_tensor *y32 = forward_backward(fn, inputs32, n, user, &weights, NULL, grads32);
    if (!y32) return ct_fail_context("gradcheck (f32 run): ");
    result->f32_output_error = ct_relative_error(y32, y64);
    result->f32_grad_error = 0;
    for (int i = 0; i < n; i++) {
        if (!grads64[i] || !grads32[i]) continue;
        double error = ct_relative_error(grads32[i], grads64[i]);
        if (!(error <= result->f32_grad_error)) result->f32_grad_error = error;
    }
    return 0;
}

int ct_gradcheck(ct_gradcheck_fn fn, ct_tensor *const *inputs, int n, void *user, double step,
                 ct_gradcheck_result *result) {
    CT_TRY(check_inputs(inputs, n));
    memset(result, 0, sizeof *result);
    CT_TRY(ct_scope_begin());
    ct_rng rng;
    ct_rng_seed(&rng, 12345);
    ct_tensor *weights = NULL, *grads64[MAX_CHECK_INPUTS];
    int status = -1;
    ct_tensor *y64 = forward_backward(fn, inputs, n, user, &weights, &rng, grads64);
    if (y64) {
        result->grad_error = numeric_gradient_error(fn, inputs, n, user, weights, grads64, step,
                                                    &result->elements_checked);
        status = f32_comparison(fn, inputs, n, user, weights, y64, grads64, result);
    }
    ct_scope_end();
    return status;
}
