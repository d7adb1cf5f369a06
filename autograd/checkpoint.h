/* Gradient checkpointing: trade compute for activation memory.
 *
 * ct_checkpoint(fn, ...) runs a segment (typically one transformer block) in a nested scope with
 * the tape off, copies its output out and releases everything else the segment allocated. It
 * records one node whose inputs are the segment's inputs and the parameters the segment uses.
 * When backward reaches that node, it runs fn again with the tape on, in a nested scope, and
 * back-propagates the output's gradient through the recomputed tape into the inputs and the
 * parameters; then the recomputed activations are released too.
 *
 * Requirements on fn, so that the recomputation is the same computation:
 *   - deterministic given (ctx, inputs): randomness comes from counter-based streams fixed in
 *     ctx (ct_dropout with its seed and stream), never from a stateful generator;
 *   - every tensor it reads that can require grad and is not one of `inputs` is listed in
 *     `params`. This is what makes the segment's output require grad when its input does not
 *     (a LoRA adapter behind a frozen embedding): without the list, the node would not be
 *     recorded and the adapter would silently get no gradient.
 *   - it returns one tensor (any shape); it may return NULL with ct_last_error set.
 *
 * Gradients equal the plain run's bit for bit on the CPU: the recomputed ops are the same ops
 * in the same order, and gradients accumulate into inputs and parameters in the same order. */
#ifndef CT_CHECKPOINT_H
#define CT_CHECKPOINT_H

#include "core/tensor.h"

typedef ct_tensor *(*ct_segment_fn)(void *ctx, ct_tensor *const *inputs, int n_inputs);

/* Returns the segment's output in the current scope, or NULL with a message. ctx must stay valid
 * until backward has passed the node (it is not copied); the inputs and params arrays are copied
 * into the arena, as many as there are (no fixed limit). In no-grad mode, or when nothing
 * requires grad, this is just fn(ctx, inputs, n_inputs). */
ct_tensor *ct_checkpoint(ct_segment_fn fn, void *ctx, ct_tensor *const *inputs, int n_inputs,
                         ct_tensor *const *params, int n_params);

/* The segment run as a checkpoint's forward runs it, for a forward without a tape (evaluation,
 * generation, a teacher): with the tape off, in a nested scope released before returning, only
 * its output copied into the current scope. A no-grad model forward runs each block through it,
 * so one block's temporaries exist at a time instead of every block's. NULL with a message. */
ct_tensor *ct_segment_scoped(ct_segment_fn fn, void *ctx, ct_tensor *const *inputs, int n_inputs);

#endif
