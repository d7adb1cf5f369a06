/* The backend interface: every kernel an op needs, implemented once per device
 * (kernels/cpu for the CPU, kernels/cuda for NVIDIA GPUs). Ops in autograd/ check shapes and
 * dtypes, record the tape, and call these; a kernel may assume its arguments were checked.
 * All kernels return 0, or -1 with ct_fail. "Accumulate" means += into the destination.
 *
 * dtypes: every kernel takes f64 (gradient checks) and f32. The kernels of the bf16-capable ops
 * (autograd/ops.h) also take bf16 inputs and outputs, computing in f32; gradients, and so every
 * destination that accumulates, are f32 (f64 in gradient checks), never bf16. */
#ifndef CT_BACKEND_H
#define CT_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

#include "core/tensor.h"

typedef enum { CT_BINARY_ADD, CT_BINARY_MUL } ct_binary_op;
typedef enum { CT_REDUCE_MEAN, CT_REDUCE_SUM } ct_reduction;

typedef struct {
    double lr, beta1, beta2, eps, weight_decay;
} ct_adamw_hparams;

/* The fused distillation loss of one row (autograd/ops_transformer.h, ct_kd_loss): with s and t
 * the student's and teacher's logits, a = x / temperature, p = softmax(a),
 *   loss = ce_weight * CE(s, target) + kl_weight * temperature^2 * KL,
 * KL = KL(p_t || p_s) (forward), KL(p_s || p_t) (reverse) or their mean (symmetric). */
typedef enum { CT_KD_FORWARD_KL, CT_KD_REVERSE_KL, CT_KD_SYMMETRIC_KL } ct_kd_divergence;
typedef struct {
    double ce_weight, kl_weight, temperature;
    ct_kd_divergence divergence;
} ct_kd_params;
/* Per row, f64: logsumexp(s / T), logsumexp(t / T), logsumexp(s), KL(p_s || p_t), the row's loss. */
#define CT_KD_STATS 5

typedef struct ct_backend {
    const char *name;
    /* c = alpha * op(a) @ op(b) + beta * c, with a and b viewed as [rows, cols] (leading
     * dimensions flattened). All f64, or: a and c f32 or bf16, b f32, bf16 or i8 (narrow operands
     * are widened to f32 on the fly, a tile at a time). */
    int (*gemm)(const ct_tensor *a, bool transpose_a, const ct_tensor *b, bool transpose_b, ct_tensor *c,
                double alpha, double beta);
    /* Whether gemm runs bf16 x bf16 in hardware, faster than f32 (NULL: no). The matmul's backward
     * then rounds a mixed-precision forward's f32 output gradient to bf16, so that its two GEMMs
     * run bf16 x bf16 too (autograd/op_matmul.c). */
    bool (*bf16_gemm_native)(void);
    /* out = a (op) b, where b has a's shape or is one row broadcast over a's rows. */
    int (*binary)(ct_binary_op op, const ct_tensor *a, const ct_tensor *b, ct_tensor *out);
    /* y = x converted between f32 and bf16 (rounded to nearest even), or copied (same dtype). */
    int (*convert)(const ct_tensor *x, ct_tensor *y);
    /* y = alpha * x + beta * y (same element count); beta 0 writes alpha * x without reading y,
     * which may then be uninitialized (as BLAS treats beta 0). */
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
    /* Optimizer kernels over a list of n tensors on this device (what train/optim.c calls once
     * per step; on a GPU each is one launch for the whole list, not one per tensor).
     * adamw_multi: one AdamW update (PyTorch's formula; step counts from 1) of each params[i]
     * given grads[i] and its moments m[i], v[i], with weight_decay[i] in place of
     * h->weight_decay; the four tensors of an index share dtype (f32 or f64) and element count,
     * and each tensor's result does not depend on the rest of the list.
     * sum_squares_multi: the sum of squares of all n tensors into one host double, in a fixed
     * order (the same list gives the same bits on every run); n == 0 gives 0.
     * scale_multi: every element of every x[i] *= factor, computed in the tensor's dtype.
     * mask_multi: x[i] *= mask[i] element by element, mask[i] an f32 0/1 pruning mask of x[i]'s
     * element count (x f32 or f64): pruned gradients, weights and moments set to exactly zero. */
    int (*adamw_multi)(int n, ct_tensor *const *params, ct_tensor *const *grads, ct_tensor *const *m,
                       ct_tensor *const *v, const double *weight_decay, const ct_adamw_hparams *h, int64_t step);
    int (*sum_squares_multi)(int n, const ct_tensor *const *x, double *result);
    int (*scale_multi)(int n, ct_tensor *const *x, double factor);
    int (*mask_multi)(int n, ct_tensor *const *x, const ct_tensor *const *mask);
    /* attention */
    /* Fused causal attention (autograd/op_attention.h): q [B, T, Hq, D], k and v [B, S, Hkv, D],
     * i32 positions q_pos [B, T] and k_pos [B, S], optional i32 segment ids (NULL: none). Forward
     * writes out and the row logsumexp lse [B, Hq, T]; backward recomputes scores block by block
     * and accumulates into whichever of grad_q, grad_k, grad_v is not NULL. */
    int (*attention_forward)(const ct_tensor *q, const ct_tensor *k, const ct_tensor *v, const ct_tensor *q_pos,
                             const ct_tensor *k_pos, const ct_tensor *q_seg, const ct_tensor *k_seg, double scale,
                             ct_tensor *out, ct_tensor *lse);
    int (*attention_backward)(const ct_tensor *q, const ct_tensor *k, const ct_tensor *v, const ct_tensor *q_pos,
                              const ct_tensor *k_pos, const ct_tensor *q_seg, const ct_tensor *k_seg, double scale,
                              const ct_tensor *out, const ct_tensor *lse, const ct_tensor *grad_out,
                              ct_tensor *grad_q, ct_tensor *grad_k, ct_tensor *grad_v);
    /* transformer ops */
    /* RMSNorm over rows: y = x * rstd * weight, rstd[r] = 1 / sqrt(mean(x[r]^2) + eps) saved for
     * backward; backward accumulates into grad_x and grad_weight (either may be NULL). */
    int (*rms_norm_forward)(const ct_tensor *x, const ct_tensor *weight, double eps, ct_tensor *rstd,
                            ct_tensor *y);
    int (*rms_norm_backward)(const ct_tensor *x, const ct_tensor *weight, const ct_tensor *rstd,
                             const ct_tensor *grad_y, ct_tensor *grad_x, ct_tensor *grad_weight);
    /* out = silu(gate) * up (up == NULL: plain SiLU); backward accumulates (targets may be NULL). */
    int (*swiglu_forward)(const ct_tensor *gate, const ct_tensor *up, ct_tensor *out);
    int (*swiglu_backward)(const ct_tensor *gate, const ct_tensor *up, const ct_tensor *grad_out,
                           ct_tensor *grad_gate, ct_tensor *grad_up);
    /* Rotate-half RoPE of x [B, T, H, D] by angle direction * position_ids[b, t] * inv_freq[i]
     * (D/2 host doubles); y = result, or y += result when accumulate (backward: direction -1). */
    int (*rope)(const ct_tensor *x, const ct_tensor *position_ids, const double *inv_freq, int direction,
                bool accumulate, ct_tensor *y);
    /* y (= or +=) x * keep / (1 - p), keep = ct_counter_uniform(seed, stream, i) >= p. */
    int (*dropout)(const ct_tensor *x, double p, uint64_t seed, uint64_t stream, bool accumulate, ct_tensor *y);
    /* Distillation KL over rows (see autograd/ops_transformer.h). row_stats: f64 [rows, 3] holding
     * each row's student and teacher logsumexp of logits / temperature and its KL, for backward. */
    int (*kl_div_forward)(const ct_tensor *student, const ct_tensor *teacher, const ct_tensor *mask,
                          double temperature, ct_tensor *row_stats, ct_tensor *out);
    int (*kl_div_backward)(const ct_tensor *student, const ct_tensor *teacher, const ct_tensor *mask,
                           double temperature, const ct_tensor *row_stats, const ct_tensor *grad_out,
                           ct_tensor *grad_student, ct_tensor *grad_teacher);
    /* The fused distillation loss on one chunk of logits: student [rows, V], teacher [rows, V] or
     * NULL (then kl_weight is 0), targets i32 [rows] (negative = the row is skipped: stats 0).
     * Forward writes row_stats f64 [rows, CT_KD_STATS]; backward writes (does not accumulate)
     * grad_student = grad_out * d(sum of row losses) / d(student), recomputing the
     * probabilities from the stats. */
    int (*kd_rows_forward)(const ct_tensor *student, const ct_tensor *teacher, const ct_tensor *targets,
                           const ct_kd_params *params, ct_tensor *row_stats);
    int (*kd_rows_backward)(const ct_tensor *student, const ct_tensor *teacher, const ct_tensor *targets,
                            const ct_kd_params *params, const ct_tensor *row_stats, const ct_tensor *grad_out,
                            ct_tensor *grad_student);
    /* DoRA's detached weight norm (models/lora.h): norm[o] = ||w[o, :] + scale * B[o, :] A||_2 for
     * w [out, in] f32, bf16 or i8 (with its scales), A [r, in] and B [out, r] f32, norm [out] f32
     * (or 1 / norm when reciprocal: the factor the forward multiplies by); or all f64. A narrow w
     * is widened a block of rows at a time, never as a whole. */
    int (*dora_row_norms)(const ct_tensor *w, const ct_tensor *A, const ct_tensor *B, double scale, bool reciprocal,
                          ct_tensor *norm);
} ct_backend;

#ifdef __cplusplus
extern "C" {
#endif
const ct_backend *ct_cpu_backend(void);
/* The CUDA backend, or NULL when ctune was built without CUDA. */
const ct_backend *ct_cuda_backend(void);
/* The backend for a device (kernels/device.c). Tensors only reach a device whose backend exists
 * (moving one to CUDA fails in a build without it), so this never returns NULL. */
const ct_backend *ct_backend_for(ct_device device);
/* Profiling hook: from now on ct_backend_for(CT_CPU) returns `table` (NULL: the built-in table
 * again). A benchmark copies *ct_cpu_backend(), wraps the kernels it wants to time, and installs
 * the copy between steps (bench/bench_train_step.c); training code never calls it. */
void ct_cpu_backend_override(const ct_backend *table);
/* The CPU table ct_backend_for hands out: the override when one is installed, else the built-in. */
const ct_backend *ct_cpu_backend_active(void);
#ifdef __cplusplus
}
#endif

#endif
