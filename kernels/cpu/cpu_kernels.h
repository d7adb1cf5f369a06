/* The CPU backend's kernels (OpenMP, CBLAS). Shapes and dtypes were checked by the op layer;
 * every kernel handles f32 and f64 (f64 for gradient checks), the bf16-capable ones bf16 too
 * (see the span helpers below). Parallel reductions add fixed-size blocks in a fixed order, so
 * results do not depend on the thread count or scheduling. */
#ifndef CT_CPU_KERNELS_H
#define CT_CPU_KERNELS_H

#include "kernels/backend.h"

/* Elements per block of a deterministic parallel reduction. */
#define CT_CPU_REDUCE_BLOCK 4096
/* Below this many elements a loop runs on one thread: forking would cost more than it saves. */
#define CT_CPU_PARALLEL_MIN 16384

int ct_cpu_gemm(const ct_tensor *a, bool transpose_a, const ct_tensor *b, bool transpose_b, ct_tensor *c,
                double alpha, double beta);
/* Rows [r0, r0 + nr) of a 2-D f32, bf16, f16 or i8 tensor as f32 (i8 times its scales) into the
 * contiguous [nr, cols] dst: how a narrow weight is read a block at a time. */
void ct_cpu_widen_rows(const ct_tensor *t, int64_t r0, int64_t nr, float *dst);
int ct_cpu_dora_row_norms(const ct_tensor *w, const ct_tensor *A, const ct_tensor *B, double scale, bool reciprocal,
                          ct_tensor *norm);
int ct_cpu_binary(ct_binary_op op, const ct_tensor *a, const ct_tensor *b, ct_tensor *out);
int ct_cpu_convert(const ct_tensor *x, ct_tensor *y);
int ct_cpu_axpby(double alpha, const ct_tensor *x, double beta, ct_tensor *y);
int ct_cpu_mul_accumulate(const ct_tensor *x, const ct_tensor *y, ct_tensor *dst);
int ct_cpu_sum_rows_accumulate(const ct_tensor *x, const ct_tensor *y, ct_tensor *dst);
int ct_cpu_add_scalar(ct_tensor *dst, double value);
int ct_cpu_tanh_forward(const ct_tensor *x, ct_tensor *y);
int ct_cpu_tanh_backward(const ct_tensor *y, const ct_tensor *grad_y, ct_tensor *grad_x);
int ct_cpu_sum(const ct_tensor *x, ct_tensor *out);
int ct_cpu_embedding_forward(const ct_tensor *weight, const ct_tensor *ids, ct_tensor *out);
int ct_cpu_embedding_backward(const ct_tensor *grad_out, const ct_tensor *ids, ct_tensor *grad_weight);
int ct_cpu_log_softmax_forward(const ct_tensor *x, ct_tensor *y);
int ct_cpu_log_softmax_backward(const ct_tensor *y, const ct_tensor *grad_y, ct_tensor *grad_x);
int ct_cpu_cross_entropy_forward(const ct_tensor *logits, const ct_tensor *targets, ct_reduction reduction,
                                 ct_tensor *row_logsumexp, ct_tensor *out);
int ct_cpu_cross_entropy_backward(const ct_tensor *logits, const ct_tensor *targets, ct_reduction reduction,
                                  const ct_tensor *row_logsumexp, const ct_tensor *grad_out,
                                  ct_tensor *grad_logits);
int ct_cpu_adamw_multi(int n, ct_tensor *const *params, ct_tensor *const *grads, ct_tensor *const *m,
                       ct_tensor *const *v, const double *weight_decay, const ct_adamw_hparams *h, int64_t step);
int ct_cpu_sum_squares_multi(int n, const ct_tensor *const *x, double *result);
int ct_cpu_scale_multi(int n, ct_tensor *const *x, double factor);
int ct_cpu_mask_multi(int n, ct_tensor *const *x, const ct_tensor *const *mask);
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
int ct_cpu_kd_rows_forward(const ct_tensor *student, const ct_tensor *teacher, const ct_tensor *targets,
                           const ct_kd_params *params, ct_tensor *row_stats);
int ct_cpu_kd_rows_backward(const ct_tensor *student, const ct_tensor *teacher, const ct_tensor *targets,
                            const ct_kd_params *params, const ct_tensor *row_stats, const ct_tensor *grad_out,
                            ct_tensor *grad_student);

/* exp(x) in f32 without a libm call, so loops using it vectorize: 2^n * p(r) with n = round(x / ln 2),
 * r = x - n ln 2 (|r| <= ln 2 / 2, ln 2 split in two so n * hi is exact) and p the Cephes
 * polynomial; relative error under 1e-7 (about 1 ulp) wherever the result is a normal f32.
 * Edges: below -88 (masked scores are -inf) the result is exactly 0, and between -88 and
 * ln(FLT_MIN) = -87.34 it is a subnormal or 0, as expf underflows; from 88.38 up it is +inf
 * (expf: from 88.72); NaN gives NaN. x is clamped into [-88, 88.72] so that 2^n's exponent
 * bits stay defined; 2^n comes out as 0 for n <= -127, and NaN reaches the result through p.
 * Selects are on integer bits: a float select followed by arithmetic does not vectorize at -O2
 * below AVX-512 (GCC keeps it a branch under trapping math), an integer select does. */
static inline __attribute__((always_inline)) float ct_cpu_expf(float x) {
    union { float f; int32_t i; uint32_t u; } in = {x}, clamped, t, scale;
    int32_t magnitude = in.i & 0x7fffffff;
    int32_t limit = in.i < 0 ? 0x42b00000 : 0x42b17217; /* 88.0f, 88.72283f */
    int32_t beyond = (magnitude > limit) & (magnitude <= 0x7f800000); /* not NaN */
    clamped.i = beyond ? (in.i & (int32_t)0x80000000) | limit : in.i;
    float c = clamped.f;
    t.f = c * 1.44269504088896341f + 12582912.0f; /* + 1.5 * 2^23 rounds to an integer n */
    float n = t.f - 12582912.0f;
    float r = c - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t biased = (int32_t)(t.u - 0x4b400000u) + 127; /* n sits in t's low mantissa bits */
    biased = biased > 0 ? biased : 0;
    scale.u = (uint32_t)biased << 23;
    return p * scale.f;
}

/* Compiles a hot function three times, for baseline x86-64 (SSE2), x86-64-v3 (AVX2 + FMA) and
 * x86-64-v4 (AVX-512), and picks one at load time (function multiversioning). The exp-heavy
 * kernels (softmax, SwiGLU, KL) are compute-bound at SSE2 width and memory-bound at AVX-512
 * width. The build is ISO C (-std=c11), in which GCC does not contract a * b + c into an FMA;
 * these functions opt back in (ct_cpu_expf costs about 30% less). Only for functions without
 * reductions, or whose reduction order may depend on the machine (never on the thread count).
 * GCC on x86-64 only (the compiler this was measured with); elsewhere one portable build. */
/* CT_CPU_CLONES_VECTORIZED also lifts -O2's "very cheap" vectorizer cost model for one function,
 * for a loop that mixes 64-bit and 32-bit lanes (dropout's hash), which -O2 leaves scalar. (One
 * optimize attribute with both options: a second one would replace the first.) */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CT_CPU_CLONES                                                                              \
    __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"), optimize("fp-contract=fast")))
#define CT_CPU_CLONES_VECTORIZED                                                                   \
    __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"),                  \
                   optimize("fp-contract=fast", "vect-cost-model=dynamic")))
#else
#define CT_CPU_CLONES
#define CT_CPU_CLONES_VECTORIZED
#endif

/* bf16 storage. f32 kernels run on spans of at most CT_CPU_SPAN elements: an f32 operand's span is
 * used in place, a bf16 operand's span is widened into a stack buffer, and a bf16 output's span
 * is computed into a buffer and rounded (to nearest even) on the way out. Gradients are never
 * bf16, so outputs that accumulate (+=) are always used in place. */
#define CT_CPU_SPAN 1024

/* Elements [offset, offset + n) of t as f32: t's own memory, or buf holding them widened. */
static inline const float *ct_cpu_span_in(const ct_tensor *t, int64_t offset, int64_t n, float *buf) {
    if (t->dtype == CT_F32) return (const float *)t->data + offset;
    ct_bf16_to_f32_array((const uint16_t *)t->data + offset, buf, n);
    return buf;
}

/* Where a kernel writes elements [offset, ...) of t: t's memory when f32, else buf. */
static inline float *ct_cpu_span_out(ct_tensor *t, int64_t offset, float *buf) {
    return t->dtype == CT_F32 ? (float *)t->data + offset : buf;
}

/* Finishes a span written through ct_cpu_span_out: rounds buf into a bf16 t. */
static inline void ct_cpu_span_store(ct_tensor *t, int64_t offset, int64_t n, const float *buf) {
    if (t->dtype == CT_BF16) ct_f32_to_bf16_array(buf, (uint16_t *)t->data + offset, n);
}

/* A loop that is all bf16 (SwiGLU's forward) converts inside itself instead, with these: the same
 * integer rounding as ct_f32_to_bf16 (tests check the bits), written with masks so it vectorizes
 * at every width. It measured a quarter faster than going through buffers there; the logsumexp
 * measured slower with it and keeps its buffer. */
static inline __attribute__((always_inline)) uint16_t ct_cpu_bf16_round(float x) {
    union { float f; uint32_t u; } v = {x};
    uint32_t rounded = v.u + 0x7fffu + ((v.u >> 16) & 1u), quiet = v.u | 0x00400000u;
    uint32_t nan = 0u - (uint32_t)((v.u & 0x7fffffffu) > 0x7f800000u);
    return (uint16_t)(((rounded & ~nan) | (quiet & nan)) >> 16);
}

static inline __attribute__((always_inline)) float ct_cpu_bf16_widen(uint16_t h) {
    union { uint32_t u; float f; } v = {(uint32_t)h << 16};
    return v.f;
}

static inline int64_t ct_cpu_min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* Asks for bytes [p, p + bytes) to be brought into L2 ahead of use. The hardware prefetchers
 * stop at 4 KiB page boundaries (one f32 span), so a kernel with much arithmetic per byte (the
 * logsumexp and KL passes, RMSNorm's rows, bf16 RoPE) loads the next step or row while it
 * computes on the current one: 15-25% faster on the 2-core VM of docs/PERF.md. Plain streaming
 * kernels (SwiGLU, cross-entropy backward) measured slower with it and are left to the hardware. */
static inline void ct_cpu_prefetch(const void *p, size_t bytes) {
    for (size_t byte = 0; byte < bytes; byte += 64) __builtin_prefetch((const char *)p + byte, 0, 2);
}

/* The same for elements [offset, offset + CT_CPU_SPAN) of t, clipped to t. */
static inline void ct_cpu_prefetch_span(const ct_tensor *t, int64_t offset) {
    int64_t n = ct_cpu_min64(CT_CPU_SPAN, ct_numel(t) - offset);
    size_t esize = ct_dtype_size(t->dtype);
    if (n > 0) ct_cpu_prefetch((const char *)t->data + (size_t)offset * esize, (size_t)n * esize);
}

#endif
