/* SiLU and the fused SwiGLU, silu(gate) * up, in one pass over the operands. The backward
 * recomputes the sigmoid instead of saving it: one exp is cheaper than another tensor's traffic.
 *   silu(g) = g * s,  s = 1 / (1 + exp(-g)),  silu'(g) = s * (1 + g * (1 - s)).
 * Threads take spans of CT_CPU_SPAN elements; each span's loops are branch-free (the optional
 * operands are chosen outside them) so they vectorize. f32 uses ct_cpu_expf and AVX2 / AVX-512
 * clones: at SSE2 width the exp, not memory, is the bottleneck. An all-bf16 forward converts
 * inside its loop; other bf16 mixes, and bf16 inputs to backward, are widened span by span around
 * the f32 loops (kernels/cpu/cpu_kernels.h). */
#include <math.h>

#include "kernels/cpu/cpu_kernels.h"

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
    }

DEFINE_SWIGLU(float, f32, ct_cpu_expf, CT_CPU_CLONES)
DEFINE_SWIGLU(double, f64, exp, )

/* bf16 gate (and up) to a bf16 out, converting inside the loop: a quarter faster than widening
 * into buffers, and the forward of a bf16 MLP is all this. */
CT_CPU_CLONES static void forward_span_bf16(const uint16_t *restrict g, const uint16_t *restrict u,
                                            uint16_t *restrict out, int64_t n) {
    if (u) {
        _Pragma("omp simd")
        for (int64_t i = 0; i < n; i++) {
            float gv = ct_cpu_bf16_widen(g[i]);
            out[i] = ct_cpu_bf16_round(gv * SIGMOID(float, ct_cpu_expf, gv) * ct_cpu_bf16_widen(u[i]));
        }
    } else {
        _Pragma("omp simd")
        for (int64_t i = 0; i < n; i++) {
            float gv = ct_cpu_bf16_widen(g[i]);
            out[i] = ct_cpu_bf16_round(gv * SIGMOID(float, ct_cpu_expf, gv));
        }
    }
}

static void forward_span(const ct_tensor *gate, const ct_tensor *up, ct_tensor *out, int64_t at, int64_t n) {
    if (gate->dtype == CT_F64) {
        forward_span_f64((const double *)gate->data + at, AT((const double *)(up ? up->data : NULL), at),
                         (double *)out->data + at, n);
        return;
    }
    if (gate->dtype == CT_BF16 && (!up || up->dtype == CT_BF16)) {
        forward_span_bf16((const uint16_t *)gate->data + at, up ? (const uint16_t *)up->data + at : NULL,
                          (uint16_t *)out->data + at, n);
        return;
    }
    float gate_buf[CT_CPU_SPAN], up_buf[CT_CPU_SPAN], out_buf[CT_CPU_SPAN];
    float *o = ct_cpu_span_out(out, at, out_buf);
    forward_span_f32(ct_cpu_span_in(gate, at, n, gate_buf), up ? ct_cpu_span_in(up, at, n, up_buf) : NULL, o, n);
    ct_cpu_span_store(out, at, n, out_buf);
}

/* Gradients (and grad_out) are f32 or f64, never bf16: only gate and up may need widening. */
static void backward_span(const ct_tensor *gate, const ct_tensor *up, const ct_tensor *grad_out, ct_tensor *grad_gate,
                          ct_tensor *grad_up, int64_t at, int64_t n) {
    if (gate->dtype == CT_F64) {
        backward_span_f64((const double *)gate->data + at, AT((const double *)(up ? up->data : NULL), at),
                          (const double *)grad_out->data + at, AT((double *)(grad_gate ? grad_gate->data : NULL), at),
                          AT((double *)(grad_up ? grad_up->data : NULL), at), n);
        return;
    }
    float gate_buf[CT_CPU_SPAN], up_buf[CT_CPU_SPAN];
    backward_span_f32(ct_cpu_span_in(gate, at, n, gate_buf), up ? ct_cpu_span_in(up, at, n, up_buf) : NULL,
                      (const float *)grad_out->data + at, AT((float *)(grad_gate ? grad_gate->data : NULL), at),
                      AT((float *)(grad_up ? grad_up->data : NULL), at), n);
}

int ct_cpu_swiglu_forward(const ct_tensor *gate, const ct_tensor *up, ct_tensor *out) {
    int64_t n = ct_numel(gate), spans = (n + CT_CPU_SPAN - 1) / CT_CPU_SPAN;
#pragma omp parallel for schedule(static) if (n > CT_CPU_PARALLEL_MIN)
    for (int64_t s = 0; s < spans; s++)
        forward_span(gate, up, out, s * CT_CPU_SPAN, ct_cpu_min64(CT_CPU_SPAN, n - s * CT_CPU_SPAN));
    return 0;
}

int ct_cpu_swiglu_backward(const ct_tensor *gate, const ct_tensor *up, const ct_tensor *grad_out,
                           ct_tensor *grad_gate, ct_tensor *grad_up) {
    int64_t n = ct_numel(gate), spans = (n + CT_CPU_SPAN - 1) / CT_CPU_SPAN;
#pragma omp parallel for schedule(static) if (n > CT_CPU_PARALLEL_MIN)
    for (int64_t s = 0; s < spans; s++)
        backward_span(gate, up, grad_out, grad_gate, grad_up, s * CT_CPU_SPAN,
                      ct_cpu_min64(CT_CPU_SPAN, n - s * CT_CPU_SPAN));
    return 0;
}
