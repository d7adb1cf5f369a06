/* The differentiable ops. Each returns a new tensor in the current scope, or NULL with a
 * one-line message (ct_last_error) naming the op and the offending shapes or dtypes. A NULL
 * input yields NULL without touching the message, so a chain of ops can be checked once at its
 * end. Operands must share dtype and device: nothing is promoted or broadcast silently (the
 * one broadcast is a single row over all rows, for biases and norm weights). */
#ifndef CT_OPS_H
#define CT_OPS_H

#include <stdbool.h>

#include "autograd/tensor.h"
#include "kernels/backend.h"

/* op(a) @ op(b). Without transpose_a, a may have leading dimensions ([..., K]) that are kept in
 * the output ([..., N]); b is 2-D and may be a frozen bf16 or i8 weight. A linear layer with an
 * HF [out, in] weight is ct_matmul(x, w, false, true). */
ct_tensor *ct_matmul(ct_tensor *a, ct_tensor *b, bool transpose_a, bool transpose_b);
/* a + b and a * b; b has a's shape or is one row (a's last dimension) broadcast over a's rows. */
ct_tensor *ct_add(ct_tensor *a, ct_tensor *b);
ct_tensor *ct_mul(ct_tensor *a, ct_tensor *b);
ct_tensor *ct_scale(ct_tensor *a, double factor);
/* tanh, elementwise (the activation of the small MLPs in tests and the demo). */
ct_tensor *ct_tanh(ct_tensor *x);
/* Sum and mean of all elements: a 0-d tensor. */
ct_tensor *ct_sum(ct_tensor *a);
ct_tensor *ct_mean(ct_tensor *a);
/* Rows of weight [vocab, dim] picked by i32 ids of any shape: [..., dim]. */
ct_tensor *ct_embedding(ct_tensor *weight, ct_tensor *ids);
/* log(softmax(x)) over the last dimension. */
ct_tensor *ct_log_softmax(ct_tensor *x);
/* Cross-entropy of logits [..., V] against i32 targets [...] (-100 = ignored), reduced to a
 * 0-d sum or mean over the targets that are not ignored. */
ct_tensor *ct_cross_entropy(ct_tensor *logits, ct_tensor *targets, ct_reduction reduction);
/* Views: same memory, new shape (same element count) / rows [start, start + count) of dim 0. */
ct_tensor *ct_reshape(ct_tensor *a, int ndim, const int64_t *shape);
ct_tensor *ct_slice_rows(ct_tensor *a, int64_t start, int64_t count);

/* Used by the op files: "matmul: a [3, 7] f32 and b [5, 4] f32: <why>". Returns NULL. */
ct_tensor *ct_fail_shapes(const char *op, const ct_tensor *a, const ct_tensor *b, const char *why);
/* NULL with a message unless a and b are real and share dtype and device. */
bool ct_check_operands(const char *op, const ct_tensor *a, const ct_tensor *b);

#endif
