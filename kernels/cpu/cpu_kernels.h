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
/* attention (kernels/cpu/cpu_attention.c) */
int ct_cpu_attention_forward(const ct_tensor *q, const ct_tensor *k, const ct_tensor *v, const ct_tensor *q_pos,
                             const ct_tensor *k_pos, const ct_tensor *q_seg, const ct_tensor *k_seg, double scale,
                             ct_tensor *out, ct_tensor *lse);
int ct_cpu_attention_backward(const ct_tensor *q, const ct_tensor *k, const ct_tensor *v, const ct_tensor *q_pos,
                              const ct_tensor *k_pos, const ct_tensor *q_seg, const ct_tensor *k_seg, double scale,
                              const ct_tensor *out, const ct_tensor *lse, const ct_tensor *grad_out,
                              ct_tensor *grad_q, ct_tensor *grad_k, ct_tensor *grad_v);

/* transformer ops */
int ct_cpu_rms_norm_forward(const ct_tensor *x, const ct_tensor *weight, double eps, ct_tensor *rstd, ct_tensor *y);
int ct_cpu_rms_norm_backward(const ct_tensor *x, const ct_tensor *weight, const ct_tensor *rstd,
                             const ct_tensor *grad_y, ct_tensor *grad_x, ct_tensor *grad_weight);
int ct_cpu_swiglu_forward(const ct_tensor *gate, const ct_tensor *up, ct_tensor *out);
int ct_cpu_swiglu_backward(const ct_tensor *gate, const ct_tensor *up, const ct_tensor *grad_out,
                           ct_tensor *grad_gate, ct_tensor *grad_up);
int ct_cpu_rope(const ct_tensor *x, const ct_tensor *position_ids, const double *inv_freq, int direction,
                bool accumulate, ct_tensor *y);
int ct_cpu_dropout(const ct_tensor *x, double p, uint64_t seed, uint64_t stream, bool accumulate, ct_tensor *y);
int ct_cpu_kl_div_forward(const ct_tensor *student, const ct_tensor *teacher, const ct_tensor *mask,
                          double temperature, ct_tensor *row_stats, ct_tensor *out);
int ct_cpu_kl_div_backward(const ct_tensor *student, const ct_tensor *teacher, const ct_tensor *mask,
                           double temperature, const ct_tensor *row_stats, const ct_tensor *grad_out,
                           ct_tensor *grad_student, ct_tensor *grad_teacher);

/* exp(x) in f32 without a libm call, so loops using it vectorize: 2^k * p(r) with k = round(x / ln 2),
 * r = x - k ln 2 (|r| <= ln2 / 2) and p the degree-7 Taylor polynomial; relative error about
 * 1e-7 (an ulp or two). x is clamped to [-87, 88]: no overflow, and exp of very negative x is
 * ~1e-38 instead of 0, which no softmax or sigmoid can tell apart. A NaN x gives a finite value
 * (a NaN test would stop the loop vectorizing); the callers' other uses of x carry the NaN on. */
static inline __attribute__((always_inline)) float ct_cpu_expf(float x) {
    /* Clamp on the bits: a float select followed by arithmetic does not vectorize at -O2 (GCC
     * keeps it a branch under trapping math), an integer select does. NaN lands on a bound, so
     * the int conversion below is always defined. */
    union { float f; int32_t i; } bits = {x};
    int32_t magnitude = bits.i & 0x7fffffff, limit = bits.i < 0 ? 0x42ae0000 : 0x42b00000; /* 87, 88 */
    bits.i = magnitude > limit ? (int32_t)((uint32_t)bits.i & 0x80000000u) | limit : bits.i;
    float c = bits.f;
    float k = (c * 1.44269504f + 12582912.0f) - 12582912.0f; /* round to nearest via 1.5 * 2^23 */
    float r = (c - k * 0.693145752f) - k * 1.42860677e-6f;    /* ln 2 split hi + lo: exact k * hi */
    float p = 1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 +
              r * (1.0f / 720 + r * (1.0f / 5040)))))));
    union { int32_t i; float f; } scale = {.i = ((int32_t)k + 127) << 23};
    return p * scale.f;
}

/* Compiles a hot f32 function twice, for baseline x86-64 (SSE2) and for AVX2, and picks one
 * at load time (function multiversioning). The exp-heavy kernels (SwiGLU, KL) are compute-bound at
 * SSE2 width and memory-bound at AVX2 width. Only for functions without reductions, or whose
 * reduction order may depend on the machine (never on the thread count). */
#if defined(__x86_64__) && defined(__GNUC__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define CT_CPU_AVX2_CLONES __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef CT_CPU_AVX2_CLONES
#define CT_CPU_AVX2_CLONES
#endif

#endif
