#include "autograd/tape.h"

#include <string.h>

#include "core/arena.h"
#include "core/error.h"
#include "kernels/backend.h"
#include "kernels/device.h"

static bool grad_mode = true;
static ct_node *tape_top;

/* Tape nodes live in the scope's arena, so a scope's end must forget the nodes recorded in it:
 * the arena (core/, below) calls back through this listener. */
static void *tape_mark(void) { return tape_top; }
static void tape_release(void *mark) { tape_top = mark; }
static const ct_scope_listener tape_listener = {tape_mark, tape_release};

bool ct_grad_enabled(void) { return grad_mode; }

bool ct_set_grad_enabled(bool enabled) {
    bool previous = grad_mode;
    grad_mode = enabled;
    return previous;
}

bool ct_needs_grad(ct_tensor *const *inputs, int n_inputs) {
    if (!grad_mode) return false;
    for (int i = 0; i < n_inputs; i++)
        if (inputs[i] && inputs[i]->requires_grad) return true;
    return false;
}

ct_node *ct_record(const char *op, ct_backward_fn backward, ct_tensor *const *inputs, int n_inputs,
                   ct_tensor *output, void *ctx) {
    if (n_inputs > CT_MAX_INPUTS) {
        ct_fail("%s: %d inputs (the tape records at most %d)", op, n_inputs, CT_MAX_INPUTS);
        return NULL;
    }
    if (!tape_top) ct_scope_set_listener(&tape_listener); /* before the first node: the tape is empty */
    ct_node *node = ct_arena_calloc(sizeof *node);
    if (!node) return NULL;
    node->op = op;
    node->backward = backward;
    memcpy(node->inputs, inputs, (size_t)n_inputs * sizeof *inputs);
    node->n_inputs = n_inputs;
    node->output = output;
    node->ctx = ctx;
    node->prev = tape_top;
    tape_top = node;
    output->node = node;
    output->requires_grad = true;
    return node;
}

ct_node *ct_tape_top(void) { return tape_top; }

void ct_tape_truncate(ct_node *top) { tape_top = top; }

ct_tensor *ct_grad_of(ct_tensor *t) {
    if (!t || !t->requires_grad) return NULL;
    if (t->grad) return t->grad;
    ct_dtype dtype = ct_dtype_is_real(t->dtype) ? t->dtype : CT_F32;
    t->grad = t->persistent ? ct_tensor_new_on(t->device, dtype, t->ndim, t->shape, NULL)
                            : ct_zeros_on(t->device, dtype, t->ndim, t->shape);
    if (!t->grad) ct_fail_context("gradient of %s: ", t->name ? t->name : "a tensor");
    return t->grad;
}

int ct_grad_target(ct_tensor *t, ct_tensor **grad) {
    *grad = NULL;
    if (!t || !t->requires_grad) return 0;
    *grad = ct_grad_of(t);
    return *grad ? 0 : -1;
}

int ct_grad_target_fresh(ct_tensor *t, ct_tensor **grad, bool *fresh) {
    *grad = NULL;
    *fresh = false;
    if (!t || !t->requires_grad) return 0;
    if (t->grad || t->persistent) return ct_grad_target(t, grad);
    ct_dtype dtype = ct_dtype_is_real(t->dtype) ? t->dtype : CT_F32;
    t->grad = ct_empty_on(t->device, dtype, t->ndim, t->shape);
    if (!t->grad) return ct_fail_context("gradient of %s: ", t->name ? t->name : "a tensor");
    *grad = t->grad;
    *fresh = true;
    return 0;
}

static bool can_take(const ct_tensor *t, const ct_tensor *g, const ct_node *node) {
    ct_dtype dtype = ct_dtype_is_real(t->dtype) ? t->dtype : CT_F32;
    return !t->grad && !t->persistent && !node->output->persistent && g->dtype == dtype && g->device == t->device &&
           ct_numel(g) == ct_numel(t);
}

int ct_grad_take(ct_tensor *t, ct_node *node) {
    if (!t || !t->requires_grad) return 0;
    ct_tensor *g = node->output->grad;
    if (!can_take(t, g, node)) {
        ct_tensor *target = ct_grad_of(t);
        return target ? ct_backend_for(g->device)->axpby(1.0, g, 1.0, target) : -1;
    }
    ct_tensor *view = ct_arena_calloc(sizeof *view);
    if (!view) return ct_fail_context("gradient of %s: ", t->name ? t->name : "a tensor");
    *view = (ct_tensor){.dtype = g->dtype, .device = g->device, .ndim = t->ndim, .data = g->data,
                        .base = g->base ? g->base : g};
    memcpy(view->shape, t->shape, sizeof view->shape);
    t->grad = view;
    return 0;
}

/* Walks nodes from `start` back to `stop` (exclusive). A node whose output got no gradient is
 * not on the path to the loss and is skipped. Gradients of intermediate outputs are dropped
 * once consumed, so a second backward over a retained tape does not count them twice. */
static int walk_backward(ct_node *start, ct_node *stop) {
    for (ct_node *node = start; node && node != stop; node = node->prev) {
        ct_tensor *output = node->output;
        if (!output->grad) continue;
        if (node->backward(node) < 0) return ct_fail_context("backward of %s: ", node->op);
        if (!output->persistent) output->grad = NULL;
    }
    return 0;
}

int ct_backward(ct_tensor *loss) {
    if (!loss) return -1;
    if (ct_numel(loss) != 1) {
        char shape[64];
        return ct_fail("backward: the loss must have one element, got %s", ct_shape_str(loss, shape, sizeof shape));
    }
    if (!loss->requires_grad || !loss->node)
        return ct_fail("backward: the loss does not depend on any tensor that requires grad "
                       "(were its parameters frozen, or was it computed in no-grad mode?)");
    ct_tensor *seed = ct_grad_of(loss);
    if (!seed) return -1;
    CT_TRY(ct_backend_for(loss->device)->add_scalar(seed, 1.0));
    return walk_backward(loss->node, NULL);
}

int ct_backward_from(ct_tensor *output, const ct_tensor *grad_output, ct_node *stop) {
    if (!output->requires_grad || !output->node) return 0;
    ct_tensor *g = ct_grad_of(output);
    if (!g) return -1;
    CT_TRY(ct_backend_for(output->device)->axpby(1.0, grad_output, 1.0, g));
    return walk_backward(output->node, stop);
}

int ct_zero_grad(ct_tensor *const *params, int n) {
    for (int i = 0; i < n; i++) {
        const ct_tensor *g = params[i]->grad;
        if (g && ct_device_memset_zero(g->device, g->data, ct_nbytes(g)) < 0)
            return ct_fail_context("zeroing the gradient of '%s': ", params[i]->name ? params[i]->name : "(unnamed)");
    }
    return 0;
}

void ct_release_grad(ct_tensor *const *params, int n) {
    for (int i = 0; i < n; i++) {
        ct_tensor_free(params[i]->grad);
        params[i]->grad = NULL;
    }
}
