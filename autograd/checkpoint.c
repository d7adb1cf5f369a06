#include "autograd/checkpoint.h"

#include <string.h>

#include "core/arena.h"
#include "core/error.h"
#include "autograd/tape.h"
#include "kernels/device.h"

typedef struct {
    ct_segment_fn fn;
    void *fn_ctx;
    int n_inputs, n_params;
    /* The inputs, then the parameters: an arena array of their count, so a block with adapters,
     * masks or scales beside its weights never meets a fixed limit. */
    ct_tensor **tensors;
} checkpoint_ctx;

static bool is_one_of(const ct_tensor *t, ct_tensor *const *list, int n) {
    for (int i = 0; i < n; i++)
        if (list[i] == t) return true;
    return false;
}

/* Copies t into the enclosing scope while the segment's own scope is still open. */
static ct_tensor *copy_out_of_scope(const ct_tensor *t) {
    if (ct_scope_suspend() < 0) return NULL;
    ct_tensor *kept = ct_empty_on(t->device, t->dtype, t->ndim, t->shape);
    ct_scope_resume();
    if (!kept) return NULL;
    if (ct_device_copy(t->device, kept->data, t->device, t->data, ct_nbytes(t)) < 0) return NULL;
    kept->scale = NULL;
    return kept;
}

/* The forward pass: tape off, every temporary released, only the output kept. */
static ct_tensor *run_untaped(ct_segment_fn fn, void *ctx, ct_tensor *const *inputs, int n_inputs, bool *identity) {
    if (ct_scope_begin() < 0) return NULL;
    bool was_enabled = ct_set_grad_enabled(false);
    ct_tensor *out = fn(ctx, inputs, n_inputs);
    ct_set_grad_enabled(was_enabled);
    ct_tensor *kept = NULL;
    *identity = out && is_one_of(out, inputs, n_inputs);
    if (*identity) {
        kept = out; /* nothing was computed: the input itself carries its own gradient path */
    } else if (out) {
        if (out->dtype == CT_I8) ct_fail("checkpoint: the segment returned an i8 tensor; return a real tensor");
        else kept = copy_out_of_scope(out);
    }
    ct_scope_end();
    return kept;
}

/* True when `node` was recorded after `stop` (walking back from the tape's top). */
static bool recorded_after(const ct_node *node, const ct_node *stop) {
    for (const ct_node *n = ct_tape_top(); n && n != stop; n = n->prev)
        if (n == node) return true;
    return false;
}

static int recompute_and_backward(checkpoint_ctx *c, const ct_tensor *grad_output, ct_node *top) {
    bool was_enabled = ct_set_grad_enabled(true);
    ct_tensor *out = c->fn(c->fn_ctx, c->tensors, c->n_inputs);
    ct_set_grad_enabled(was_enabled);
    if (!out) return ct_fail_context("checkpoint: recomputing the segment: ");
    if (!out->requires_grad) return 0;
    if (!out->node || !recorded_after(out->node, top))
        return ct_fail("checkpoint: the recomputed segment returned a tensor it did not compute; "
                       "segments must be deterministic functions of their inputs");
    return ct_backward_from(out, grad_output, top);
}

static int checkpoint_backward(ct_node *node) {
    checkpoint_ctx *c = node->ctx;
    int n = c->n_inputs + c->n_params;
    /* Gradient buffers of the segment's inputs must outlive the recomputation's scope: create
     * them here, in the scope the backward pass runs in, before the nested one opens. */
    for (int i = 0; i < n; i++)
        if (c->tensors[i]->requires_grad && !ct_grad_of(c->tensors[i])) return -1;
    ct_node *top = ct_tape_top();
    if (ct_scope_begin() < 0) return -1;
    int status = recompute_and_backward(c, node->output->grad, top);
    ct_scope_end();
    return status;
}

ct_tensor *ct_checkpoint(ct_segment_fn fn, void *ctx, ct_tensor *const *inputs, int n_inputs,
                         ct_tensor *const *params, int n_params) {
    if (n_inputs < 0 || n_params < 0 || (n_params > 0 && !params)) {
        ct_fail("checkpoint: %d inputs and %d parameters: counts must not be negative", n_inputs, n_params);
        return NULL;
    }
    for (int i = 0; i < n_inputs; i++)
        if (!inputs[i]) return NULL;
    for (int i = 0; i < n_params; i++)
        if (!params[i]) return NULL;
    if (!ct_needs_grad(inputs, n_inputs) && !ct_needs_grad(params, n_params)) return fn(ctx, inputs, n_inputs);

    bool identity = false;
    ct_tensor *out = run_untaped(fn, ctx, inputs, n_inputs, &identity);
    if (!out || identity) return out;
    checkpoint_ctx *c = ct_arena_alloc(sizeof *c);
    ct_tensor **tensors = ct_arena_alloc(sizeof *tensors * (size_t)(n_inputs + n_params) + 1);
    if (!c || !tensors) return NULL;
    *c = (checkpoint_ctx){.fn = fn, .fn_ctx = ctx, .n_inputs = n_inputs, .n_params = n_params, .tensors = tensors};
    if (n_inputs) memcpy(c->tensors, inputs, (size_t)n_inputs * sizeof *inputs);
    if (n_params) memcpy(c->tensors + n_inputs, params, (size_t)n_params * sizeof *params);
    int shown = n_inputs + n_params < CT_MAX_INPUTS ? n_inputs + n_params : CT_MAX_INPUTS;
    if (!ct_record("checkpoint", checkpoint_backward, c->tensors, shown, out, c)) return NULL;
    return out;
}

ct_tensor *ct_segment_scoped(ct_segment_fn fn, void *ctx, ct_tensor *const *inputs, int n_inputs) {
    bool identity = false;
    return run_untaped(fn, ctx, inputs, n_inputs, &identity);
}
