/* The differentiable ops. Each returns a new tensor in the current scope, or NULL with a
 * one-line message (ct_last_error) naming the op and the offending shapes or dtypes. A NULL
 * input yields NULL without touching the message, so a chain of ops can be checked once at its
 * end. Operands must share dtype and device: nothing is promoted or broadcast silently (the
 * one broadcast is a single row over all rows, for biases and norm weights).
 *
 * bf16 storage (CPU): the transformer path's ops (matmul, add, mul, embedding, cross_entropy, and
 * in autograd/ops_transformer.h rms_norm, silu, swiglu, rope; attention in autograd/op_attention.h)
 * also take bf16 tensors, alone or mixed with f32 ones. They compute in f32, and the output takes
 * the first operand's dtype (the activation's; a loss is f32), bf16 outputs rounded to nearest
 * even. The gradient of a bf16 tensor is f32. f64 never mixes with another dtype. */
#ifndef CT_OPS_H
#define CT_OPS_H

#include <stdbool.h>

#include "core/tensor.h"
#include "kernels/backend.h"

/* op(a) @ op(b). Without transpose_a, a may have leading dimensions ([..., K]) that are kept in
 * the output ([..., N]); b is 2-D. a and b are both f64, or each f32 or bf16; b may also be a
 * frozen i8 weight. The output has a's dtype. A linear layer with an HF [out, in] weight is
 * ct_matmul(x, w, false, true). */
ct_tensor *ct_matmul(ct_tensor *a, ct_tensor *b, bool transpose_a, bool transpose_b);
/* a + b and a * b; b has a's shape or is one row (a's last dimension) broadcast over a's rows. */
ct_tensor *ct_add(ct_tensor *a, ct_tensor *b);
ct_tensor *ct_mul(ct_tensor *a, ct_tensor *b);
ct_tensor *ct_scale(ct_tensor *a, double factor);
/* a + factor * b, the same bits as ct_add(a, ct_scale(b, factor)) in fewer passes (a LoRA term). */
ct_tensor *ct_add_scaled(ct_tensor *a, ct_tensor *b, double factor);
/* tanh, elementwise (the activation of the small MLPs in tests and the demo). */
ct_tensor *ct_tanh(ct_tensor *x);
/* Sum and mean of all elements: a 0-d tensor. */
ct_tensor *ct_sum(ct_tensor *a);
ct_tensor *ct_mean(ct_tensor *a);
/* Rows of weight [vocab, dim] picked by i32 ids of any shape: [..., dim], in the table's dtype
 * (f32, f64 or bf16); a frozen i8 table gives f32 rows. */
ct_tensor *ct_embedding(ct_tensor *weight, ct_tensor *ids);
/* log(softmax(x)) over the last dimension. */
ct_tensor *ct_log_softmax(ct_tensor *x);
/* Cross-entropy of logits [..., V] against i32 targets [...] (-100 = ignored), reduced to a
 * 0-d sum or mean over the targets that are not ignored. bf16 logits give an f32 loss. */
ct_tensor *ct_cross_entropy(ct_tensor *logits, ct_tensor *targets, ct_reduction reduction);
/* x converted to dtype (f32 <-> bf16, rounding to nearest even; the same dtype gives a copy). The
 * gradient passes straight through, as f32. */
ct_tensor *ct_to_dtype(ct_tensor *x, ct_dtype dtype);
/* Views: same memory, new shape (same element count) / rows [start, start + count) of dim 0. */
ct_tensor *ct_reshape(ct_tensor *a, int ndim, const int64_t *shape);
ct_tensor *ct_slice_rows(ct_tensor *a, int64_t start, int64_t count);

/* Used by the op files: "matmul: a [3, 7] f32 and b [5, 4] f32: <why>". Returns NULL. */
ct_tensor *ct_fail_shapes(const char *op, const ct_tensor *a, const ct_tensor *b, const char *why);
/* NULL with a message unless a and b are real and share dtype and device. */
bool ct_check_operands(const char *op, const ct_tensor *a, const ct_tensor *b);
/* The same for the bf16-capable ops: both f64, or each f32 or bf16; same device. */
bool ct_check_storage_operands(const char *op, const ct_tensor *a, const ct_tensor *b);
/* f32 or bf16: the dtypes the bf16-capable ops compute in f32. */
bool ct_dtype_is_f32_storage(ct_dtype dtype);

#endif
