/* The tape: a Wengert list of nodes in creation order, which is a topological order.
 *
 * An op that runs while grad mode is on and has an input that requires grad appends a node
 * recording the op, its inputs, its output and whatever the op saved for backward (in ctx).
 * ct_backward walks the list from the loss's node back to the start, calling each node's
 * backward when its output received a gradient. Leaves (parameters) accumulate into their
 * persistent .grad across calls; gradients of intermediate tensors live in the arena and are
 * dropped when the walk passes their node. Nodes live in the arena of the scope that made them
 * and are truncated from the tape when that scope ends. */
#ifndef CT_TAPE_H
#define CT_TAPE_H

#include <stdbool.h>

#include "core/tensor.h"

#define CT_MAX_INPUTS 8

struct ct_node;
/* Accumulates d(loss)/d(input) into each input that requires grad, given node->output->grad. */
typedef int (*ct_backward_fn)(struct ct_node *node);

typedef struct ct_node {
    const char *op;                        /* op name, for errors and debugging */
    ct_backward_fn backward;
    ct_tensor *inputs[CT_MAX_INPUTS];
    int n_inputs;
    ct_tensor *output;
    void *ctx;                             /* op-specific saved state, in the arena */
    struct ct_node *prev;                  /* the node recorded before this one */
} ct_node;

bool ct_grad_enabled(void);
/* Sets grad mode and returns the previous one, so segments can restore it. */
bool ct_set_grad_enabled(bool enabled);

/* True when an op with these inputs must record a node (grad mode on, some input needs grad). */
bool ct_needs_grad(ct_tensor *const *inputs, int n_inputs);
/* Appends a node producing `output` and marks output->requires_grad. ctx may be NULL. */
ct_node *ct_record(const char *op, ct_backward_fn backward, ct_tensor *const *inputs, int n_inputs,
                   ct_tensor *output, void *ctx);

ct_node *ct_tape_top(void);
void ct_tape_truncate(ct_node *top);

/* The gradient buffer of t, created zero-filled on first use: persistent for persistent tensors
 * (parameters), in the arena otherwise. NULL if t does not require grad or allocation failed
 * (check ct_last_error only when t->requires_grad). */
ct_tensor *ct_grad_of(ct_tensor *t);

/* For backward functions: *grad = t's gradient buffer when t requires grad, else NULL.
 * Returns -1 only when the buffer could not be allocated. */
int ct_grad_target(ct_tensor *t, ct_tensor **grad);

/* For backward functions that can write t's whole gradient in one pass: as ct_grad_target, and
 * *fresh = true when the buffer was made just now WITHOUT zero-filling it (write every element,
 * do not add). A gradient that exists already, or a parameter's (it accumulates over
 * micro-batches), is never fresh. Saves a memset and a read per gradient in backward. */
int ct_grad_target_fresh(ct_tensor *t, ct_tensor **grad, bool *fresh);

/* Adds node's output gradient to t's gradient. When t has none yet (and is not persistent), t
 * takes the output gradient's buffer instead, as a view with t's shape: the walk drops the
 * output's gradient right after this node, so nothing else reads or writes that buffer. Bits are
 * those of 0 + g, except that a -0 stays -0. A node gives its buffer away at most once: call
 * this for one input only, and not when that tensor is also another input of the node. */
int ct_grad_take(ct_tensor *t, ct_node *node);

/* loss must be a one-element tensor: seeds d(loss)/d(loss) = 1 and back-propagates. */
int ct_backward(ct_tensor *loss);
/* Back-propagates a given gradient of `output` through the nodes recorded after `stop`
 * (exclusive), down to the tensors that existed before them. Used by gradient checkpointing. */
int ct_backward_from(ct_tensor *output, const ct_tensor *grad_output, ct_node *stop);

/* Zero or release the .grad of persistent tensors (parameters), on whatever device they live.
 * ct_zero_grad returns 0, or -1 when a device refuses the memset. */
int ct_zero_grad(ct_tensor *const *params, int n);
void ct_release_grad(ct_tensor *const *params, int n);

#endif
