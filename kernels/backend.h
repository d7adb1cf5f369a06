/* The backend interface: every kernel an op needs, implemented once per device
 * (kernels/cpu for the CPU, kernels/cuda for NVIDIA GPUs). Ops in autograd/ check shapes and
 * dtypes, record the tape, and call these; a kernel may assume its arguments were checked.
 * All kernels return 0, or -1 with ct_fail. "Accumulate" means += into the destination. */
#ifndef CT_BACKEND_H
#define CT_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

#include "autograd/tensor.h"

typedef enum { CT_BINARY_ADD, CT_BINARY_MUL } ct_binary_op;
typedef enum { CT_REDUCE_MEAN, CT_REDUCE_SUM } ct_reduction;

typedef struct {
    double lr, beta1, beta2, eps, weight_decay;
} ct_adamw_hparams;

typedef struct ct_backend {
    const char *name;
    /* c = alpha * op(a) @ op(b) + beta * c, with a and b viewed as [rows, cols] (leading
     * dimensions flattened). b may be f32/f64 or a frozen bf16 / i8 weight (widened on the fly). */
    int (*gemm)(const ct_tensor *a, bool transpose_a, const ct_tensor *b, bool transpose_b, ct_tensor *c,
                double alpha, double beta);
    /* out = a (op) b, where b has a's shape or is one row broadcast over a's rows. */
    int (*binary)(ct_binary_op op, const ct_tensor *a, const ct_tensor *b, ct_tensor *out);
    /* y = alpha * x + beta * y (same element count). */
    int (*axpby)(double alpha, const ct_tensor *x, double beta, ct_tensor *y);
    /* dst += x * y, where y has x's shape or is one row broadcast over x's rows. */
    int (*mul_accumulate)(const ct_tensor *x, const ct_tensor *y, ct_tensor *dst);
    /* dst[c] += sum over rows r of x[r, c] * (y ? y[r, c] : 1); dst is one row. */
    int (*sum_rows_accumulate)(const ct_tensor *x, const ct_tensor *y, ct_tensor *dst);
    /* y = tanh(x); gx += gy * (1 - y^2) */
    int (*tanh_forward)(const ct_tensor *x, ct_tensor *y);
    int (*tanh_backward)(const ct_tensor *y, const ct_tensor *grad_y, ct_tensor *grad_x);
    /* every element of dst += value */
    int (*add_scalar)(ct_tensor *dst, double value);
    /* out (one element) = sum of x, in a fixed order */
    int (*sum)(const ct_tensor *x, ct_tensor *out);
    /* sum of squares of x into a host double, in a fixed order */
    int (*sum_squares)(const ct_tensor *x, double *result);
    /* out[i, :] = weight[ids[i], :]; grad_weight[ids[i], :] += grad_out[i, :] in token order */
    int (*embedding_forward)(const ct_tensor *weight, const ct_tensor *ids, ct_tensor *out);
    int (*embedding_backward)(const ct_tensor *grad_out, const ct_tensor *ids, ct_tensor *grad_weight);
    /* y = x - logsumexp(x) per row; gx += gy - exp(y) * sum(gy) per row */
    int (*log_softmax_forward)(const ct_tensor *x, ct_tensor *y);
    int (*log_softmax_backward)(const ct_tensor *y, const ct_tensor *grad_y, ct_tensor *grad_x);
    /* Softmax cross-entropy over rows of logits, targets i32 (-100 = ignored). Forward writes each
     * row's logsumexp (for backward) and the sum or mean loss into the one-element out. Backward
     * accumulates grad_out * (softmax - onehot) (/ count for the mean) without a probability tensor. */
    int (*cross_entropy_forward)(const ct_tensor *logits, const ct_tensor *targets, ct_reduction reduction,
                                 ct_tensor *row_logsumexp, ct_tensor *out);
    int (*cross_entropy_backward)(const ct_tensor *logits, const ct_tensor *targets, ct_reduction reduction,
                                  const ct_tensor *row_logsumexp, const ct_tensor *grad_out, ct_tensor *grad_logits);
    /* One AdamW update of param given its grad and moments; step counts from 1. */
    int (*adamw_step)(ct_tensor *param, const ct_tensor *grad, ct_tensor *m, ct_tensor *v,
                      const ct_adamw_hparams *h, int64_t step);
} ct_backend;

#ifdef __cplusplus
extern "C" {
#endif
const ct_backend *ct_cpu_backend(void);
/* The CUDA backend, or NULL when ctune was built without CUDA. */
const ct_backend *ct_cuda_backend(void);
/* The backend for a device. Tensors only reach a device whose backend exists (moving one to
 * CUDA fails in a build without it), so this never returns NULL. */
const ct_backend *ct_backend_for(ct_device device);
#ifdef __cplusplus
}
#endif

#endif
