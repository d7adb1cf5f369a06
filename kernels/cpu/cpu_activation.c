/* SiLU and the fused SwiGLU, silu(gate) * up, in one pass over the operands. The backward
 * recomputes the sigmoid instead of saving it: one exp is cheaper than another tensor's traffic.
 *   silu(g) = g * s,  s = 1 / (1 + exp(-g)),  silu'(g) = s * (1 + g * (1 - s)).
 * Threads take spans of SPAN elements; each span's loops are branch-free (the optional operands
 * are chosen outside them) so they vectorize. f32 uses ct_cpu_expf and AVX2 clones: at SSE2
 * width the exp, not memory, is the bottleneck. */
#include <math.h>

#include "kernels/cpu/cpu_kernels.h"

#define SPAN 4096
#define SIGMOID(T, EXP, g) ((T)1 / ((T)1 + EXP(-(g))))
#define DSILU(T, g, s) ((s) * ((T)1 + (g) * ((T)1 - (s))))
#define AT(p, offset) ((p) ? (p) + (offset) : NULL)

#define DEFINE_SWIGLU(T, SUFFIX, EXP, CLONES)                                                      \
    CLONES static void forward_span_##SUFFIX(const T *restrict g, const T *restrict u,             \
                                             T *restrict out, int64_t n) {                         \
        if (u) {                                                                                   \
            _Pragma("omp simd")                                                                    \
            for (int64_t i = 0; i < n; i++) out[i] = g[i] * SIGMOID(T, EXP, g[i]) * u[i];          \
        } else {                                                                                   \
            _Pragma("omp simd")                                                                    \
            for (int64_t i = 0; i < n; i++) out[i] = g[i] * SIGMOID(T, EXP, g[i]);                 \
        }                                                                                          \
    }                                                                                              \
    CLONES static void backward_span_##SUFFIX(const T *restrict g, const T *restrict u,            \
                                              const T *restrict go, T *restrict gg,                \
                                              T *restrict gu, int64_t n) {                         \
        if (u && gg && gu) {                                                                       \
            _Pragma("omp simd")                                                                    \
            for (int64_t i = 0; i < n; i++) {                                                      \
                T s = SIGMOID(T, EXP, g[i]);                                                       \
                gg[i] += go[i] * u[i] * DSILU(T, g[i], s);                                         \
                gu[i] += go[i] * g[i] * s;                                                         \
            }                                                                                      \
        } else if (u && gg) {                                                                      \
            _Pragma("omp simd")                                                                    \
            for (int64_t i = 0; i < n; i++) {                                                      \
                T s = SIGMOID(T, EXP, g[i]);                                                       \
                gg[i] += go[i] * u[i] * DSILU(T, g[i], s);                                         \
            }                                                                                      \
        } else if (gg) {                                                                           \
            _Pragma("omp simd")                                                                    \
            for (int64_t i = 0; i < n; i++) {                                                      \
                T s = SIGMOID(T, EXP, g[i]);                                                       \
                gg[i] += go[i] * DSILU(T, g[i], s);                                                \
            }                                                                                      \
        } else if (u && gu) {                                                                      \
            _Pragma("omp simd")                                                                    \
            for (int64_t i = 0; i < n; i++) gu[i] += go[i] * g[i] * SIGMOID(T, EXP, g[i]);         \
        }                                                                                          \
    }                                                                                              \
    static void swiglu_forward_##SUFFIX(const T *g, const T *u, T *out, int64_t n) {               \
        int64_t spans = (n + SPAN - 1) / SPAN;                                                     \
        _Pragma("omp parallel for schedule(static) if (n > CT_CPU_PARALLEL_MIN)")                  \
        for (int64_t b = 0; b < spans; b++)                                                        \
            forward_span_##SUFFIX(g + b * SPAN, AT(u, b * SPAN), out + b * SPAN,                   \
                                  n - b * SPAN < SPAN ? n - b * SPAN : SPAN);                      \
    }                                                                                              \
    static void swiglu_backward_##SUFFIX(const T *g, const T *u, const T *go, T *gg, T *gu,        \
                                         int64_t n) {                                              \
        int64_t spans = (n + SPAN - 1) / SPAN;                                                     \
        _Pragma("omp parallel for schedule(static) if (n > CT_CPU_PARALLEL_MIN)")                  \
        for (int64_t b = 0; b < spans; b++)                                                        \
            backward_span_##SUFFIX(g + b * SPAN, AT(u, b * SPAN), go + b * SPAN, AT(gg, b * SPAN), \
                                   AT(gu, b * SPAN), n - b * SPAN < SPAN ? n - b * SPAN : SPAN);   \
    }

DEFINE_SWIGLU(float, f32, ct_cpu_expf, CT_CPU_AVX2_CLONES)
DEFINE_SWIGLU(double, f64, exp, )

int ct_cpu_swiglu_forward(const ct_tensor *gate, const ct_tensor *up, ct_tensor *out) {
    const void *u = up ? up->data : NULL;
    if (gate->dtype == CT_F64)
        swiglu_forward_f64(gate->data, u, out->data, ct_numel(gate));
    else
        swiglu_forward_f32(gate->data, u, out->data, ct_numel(gate));
    return 0;
}

int ct_cpu_swiglu_backward(const ct_tensor *gate, const ct_tensor *up, const ct_tensor *grad_out,
                           ct_tensor *grad_gate, ct_tensor *grad_up) {
    const void *u = up ? up->data : NULL;
    void *gg = grad_gate ? grad_gate->data : NULL, *gu = grad_up ? grad_up->data : NULL;
    if (gate->dtype == CT_F64)
        swiglu_backward_f64(gate->data, u, grad_out->data, gg, gu, ct_numel(gate));
    else
        swiglu_backward_f32(gate->data, u, grad_out->data, gg, gu, ct_numel(gate));
    return 0;
}
