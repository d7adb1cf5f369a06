/* ct_linear: the one projection of the model. Every q, k, v, o, gate, up, down projection and
 * the lm_head is a ct_linear and goes through ct_linear_forward, so whatever changes how a
 * projection computes (an adapter, a pruning mask, an int8 weight) is written once, here.
 *
 *   y = x W^T (+ b)        x [..., in], W [out, in], b [out], y [..., out]
 *
 * The weight's dtype is the one it is stored in; nothing widens it as a whole:
 *   f32   a trainable master (its gradient is f32) or a frozen weight;
 *   bf16  a frozen base kept as loaded (half the memory), or trainable with an f32 gradient;
 *   i8    frozen, with f32 scales in weight->scale: one per row (scale_block 0) or one per block
 *         of 32 along a row (scale_block 32, GGUF Q8_0's layout; the last block of a row may be
 *         shorter). An exported INT8 model runs without a dequantized copy, and gradients still
 *         reach x (LoRA on an INT8 base, an INT8 teacher).
 * The GEMM kernels widen a narrow weight a tile at a time (kernels/cpu/cpu_gemm.c). */
#ifndef CT_LINEAR_H
#define CT_LINEAR_H

#include "core/tensor.h"
#include "models/param_list.h"

/* The low-rank adapter a LoRA / DoRA issue attaches; declared here, defined there. */
struct ct_lora;

typedef struct ct_linear {
    /* [out, in]: f32, bf16, or i8 with its scales in weight->scale (see above). Quantization
     * scales travel with the tensor, so an INT8 export or GGUF Q8_0 load only swaps this
     * pointer. Its HF name (weight->name) names the projection in error messages. */
    ct_tensor *weight;
    /* [out], or NULL: added after the product, in the product's dtype (Qwen2's q/k/v bias). */
    ct_tensor *bias;
    /* NULL, or a LoRA adapter (models/lora.h): A [r, in], B [out, r] and a scale, trained while
     * weight stays frozen: y += scale * (dropout(x) A^T) B^T, unless the adapter is disabled. */
    struct ct_lora *adapter;
    /* NULL, or the weight's pruning mask (models/prune.h: f32 0/1 of the weight's shape, owned by
     * the model): a trainable weight is used as W * mask, so pruned entries get no gradient, and
     * an adapter's term goes through the masked product (B·A) * mask. */
    ct_tensor *mask;
} ct_linear;

/* x in the dtype a linear computes in: under bf16 compute an f32 x becomes a bf16 copy whose
 * backward hands x its gradient; otherwise x itself. ct_linear_forward calls it; call it once
 * yourself when several linears read one input (q, k and v; gate and up), so the copy is made
 * once. */
ct_tensor *ct_linear_input(ct_tensor *x, ct_dtype compute_dtype);

/* y = x W^T (+ b) in the current scope. compute_dtype CT_F32 computes in the operands' dtypes
 * (f32 output for an f32 x whatever the weight; f64 for gradient checks). CT_BF16 is mixed
 * precision: x and an f32 weight are converted to bf16 copies here, inside the caller's
 * (possibly checkpointed) block, so recomputation converts again instead of keeping them, and
 * the f32 master gets the gradient; a bf16 or i8 weight is used as stored; y is bf16. An i8
 * weight must be frozen. NULL with a message naming the weight. */
ct_tensor *ct_linear_forward(const ct_linear *l, ct_tensor *x, ct_dtype compute_dtype);
/* The same in a training forward: an adapter's dropout draws its mask from `train` (seed, step);
 * train NULL is ct_linear_forward (no dropout). */
struct ct_lora_dropout;
ct_tensor *ct_linear_forward_train(const ct_linear *l, ct_tensor *x, ct_dtype compute_dtype,
                                   const struct ct_lora_dropout *train);

/* Appends the tensors the forward reads that can carry a gradient (weight, then bias when
 * present, then an adapter's A and B) to `list`: what a checkpointed block declares. */
int ct_linear_params(const ct_linear *l, ct_param_list *list);

#endif
