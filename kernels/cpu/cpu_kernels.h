/* The CPU backend's kernels (OpenMP, CBLAS). Shapes and dtypes were checked by the op layer;
 * every kernel handles f32 and f64 (f64 for gradient checks). Parallel reductions add fixed-size
 * blocks in a fixed order, so results do not depend on the thread count or scheduling. */
#ifndef CT_CPU_KERNELS_H
#define CT_CPU_KERNELS_H

#include "kernels/backend.h"

/* Elements per block of a deterministic parallel reduction. */
#define CT_CPU_REDUCE_BLOCK 4096
/* Below this many elements a loop runs on one thread: forking would cost more than it saves. */
#define CT_CPU_PARALLEL_MIN 16384

int ct_cpu_gemm(const ct_tensor *a, bool transpose_a, const ct_tensor *b, bool transpose_b, ct_tensor *c,
                double alpha, double beta);
int ct_cpu_binary(ct_binary_op op, const ct_tensor *a, const ct_tensor *b, ct_tensor *out);
int ct_cpu_axpby(double alpha, const ct_tensor *x, double beta, ct_tensor *y);
int ct_cpu_mul_accumulate(const ct_tensor *x, const ct_tensor *y, ct_tensor *dst);
int ct_cpu_sum_rows_accumulate(const ct_tensor *x, const ct_tensor *y, ct_tensor *dst);
int ct_cpu_add_scalar(ct_tensor *dst, double value);
int ct_cpu_tanh_forward(const ct_tensor *x, ct_tensor *y);
int ct_cpu_tanh_backward(const ct_tensor *y, const ct_tensor *grad_y, ct_tensor *grad_x);
int ct_cpu_sum(const ct_tensor *x, ct_tensor *out);
int ct_cpu_sum_squares(const ct_tensor *x, double *result);
int ct_cpu_embedding_forward(const ct_tensor *weight, const ct_tensor *ids, ct_tensor *out);
int ct_cpu_embedding_backward(const ct_tensor *grad_out, const ct_tensor *ids, ct_tensor *grad_weight);
int ct_cpu_log_softmax_forward(const ct_tensor *x, ct_tensor *y);
int ct_cpu_log_softmax_backward(const ct_tensor *y, const ct_tensor *grad_y, ct_tensor *grad_x);
int ct_cpu_cross_entropy_forward(const ct_tensor *logits, const ct_tensor *targets, ct_reduction reduction,
                                 ct_tensor *row_logsumexp, ct_tensor *out);
int ct_cpu_cross_entropy_backward(const ct_tensor *logits, const ct_tensor *targets, ct_reduction reduction,
                                  const ct_tensor *row_logsumexp, const ct_tensor *grad_out,
                                  ct_tensor *grad_logits);
int ct_cpu_adamw_step(ct_tensor *param, const ct_tensor *grad, ct_tensor *m, ct_tensor *v,
                      const ct_adamw_hparams *h, int64_t step);

#endif
