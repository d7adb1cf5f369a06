/* The fused distillation loss on one chunk of logits (kernels/backend.h: kd_rows_forward,
 * kd_rows_backward). Per row with a target, a = x / T, p = softmax(a):
 *   loss = ce_weight * (logsumexp(s) - s[y]) + kl_weight * T^2 * KL
 *   KL_fwd = sum p_t (a_t - a_s) - lse_t + lse_s,  KL_rev = sum p_s (a_s - a_t) - lse_s + lse_t
 * Forward reads the row twice (maxima, then one pass of sums) and keeps five f64 numbers; backward
 * recomputes p_s, p_t and softmax(s) from them:
 *   d loss / d s = ce_weight (softmax(s) - onehot(y)) + kl_weight * T * dKL/da_s,
 *   dKL_fwd/da_s = p_s - p_t,  dKL_rev/da_s = p_s (log p_s - log p_t - KL_rev).
 * f32 rows compute in f32 with sums in blocks of KD_BLOCK columns carried in double (the KL is a
 * difference of nearby numbers, so the sums must not lose bits); f64 rows compute in f64 (gradient
 * checks, the PyTorch fixtures). Rows are independent, so the result never depends on the thread
 * count. */
#include <float.h>
#include <math.h>

#include "kernels/cpu/cpu_kernels.h"

#define KD_BLOCK 512

static inline double kd_exp_f64(double x) { return exp(x); }

/* sums: zs = sum exp(a_s - ms), zt = sum exp(a_t - mt), z1 = sum exp(s - max s),
 * ef = sum exp(a_t - mt) (a_t - a_s), er = sum exp(a_s - ms) (a_s - a_t). */
#define DEFINE_KD_ROWS(T, SUFFIX, EXP, CLONES)                                                        \
    CLONES static void kd_block_##SUFFIX(const T *restrict s, const T *restrict t, int64_t n, T inv, T ms_t,  \
                                         T mt_t, T ms, int separate_ce, double *restrict sums) {      \
        T zs = 0, zt = 0, z1 = 0, ef = 0, er = 0;                                                     \
        if (t) {                                                                                      \
            _Pragma("omp simd reduction(+ : zs, zt, ef, er)")                                         \
            for (int64_t c = 0; c < n; c++) {                                                         \
                T as = s[c] * inv, at = t[c] * inv, es = EXP(as - ms_t), et = EXP(at - mt_t);         \
                zs += es;                                                                             \
                zt += et;                                                                             \
                ef += et * (at - as);                                                                 \
                er += es * (as - at);                                                                 \
            }                                                                                         \
        } else {                                                                                      \
            _Pragma("omp simd reduction(+ : zs)")                                                     \
            for (int64_t c = 0; c < n; c++) zs += EXP(s[c] * inv - ms_t);                             \
        }                                                                                             \
        if (separate_ce) {                                                                            \
            _Pragma("omp simd reduction(+ : z1)")                                                     \
            for (int64_t c = 0; c < n; c++) z1 += EXP(s[c] - ms);                                     \
        }                                                                                             \
        sums[0] += zs, sums[1] += zt, sums[2] += z1, sums[3] += ef, sums[4] += er;                    \
    }                                                                                                 \
    static void kd_row_##SUFFIX(const T *s, const T *t, int32_t y, int64_t V, const ct_kd_params *p,  \
                                double *st) {                                                         \
        T inv = (T)(1.0 / p->temperature), ms = -(T)FLT_MAX, mt = -(T)FLT_MAX;                        \
        for (int64_t c = 0; c < V; c++) ms = s[c] > ms ? s[c] : ms;                                   \
        if (t)                                                                                        \
            for (int64_t c = 0; c < V; c++) mt = t[c] > mt ? t[c] : mt;                               \
        int separate_ce = p->temperature != 1.0 && p->ce_weight != 0;                                 \
        double sums[5] = {0, 0, 0, 0, 0};                                                             \
        for (int64_t c0 = 0; c0 < V; c0 += KD_BLOCK) {                                                \
            int64_t n = V - c0 < KD_BLOCK ? V - c0 : KD_BLOCK;                                        \
            kd_block_##SUFFIX(s + c0, t ? t + c0 : NULL, n, inv, ms * inv, mt * inv, ms, separate_ce, sums); \
        }                                                                                             \
        double lse_s = (double)(ms * inv) + log(sums[0]);                                             \
        double lse_1 = separate_ce ? (double)ms + log(sums[2]) : lse_s;                               \
        double lse_t = t ? (double)(mt * inv) + log(sums[1]) : 0;                                     \
        double kl_fwd = t ? sums[3] / sums[1] - lse_t + lse_s : 0;                                    \
        double kl_rev = t ? sums[4] / sums[0] - lse_s + lse_t : 0;                                    \
        double kl = p->divergence == CT_KD_FORWARD_KL   ? kl_fwd                                      \
                    : p->divergence == CT_KD_REVERSE_KL ? kl_rev                                      \
                                                        : 0.5 * (kl_fwd + kl_rev);                    \
        double ce = p->ce_weight != 0 ? lse_1 - (double)s[y] : 0;                                     \
        st[0] = lse_s, st[1] = lse_t, st[2] = lse_1, st[3] = kl_rev;                                  \
        st[4] = p->ce_weight * ce + (t ? p->kl_weight * p->temperature * p->temperature * kl : 0);    \
    }                                                                                                 \
    CLONES static void kd_row_backward_##SUFFIX(const T *restrict s, const T *restrict t, int32_t y,  \
                                                int64_t V, const ct_kd_params *p, const double *st,   \
                                                double scale, T *restrict g) {                        \
        T inv = (T)(1.0 / p->temperature), lse_s = (T)st[0], lse_t = (T)st[1], lse_1 = (T)st[2];      \
        T kl_rev = (T)st[3], ce_w = (T)(scale * p->ce_weight);                                        \
        T kl_w = (T)(scale * p->kl_weight * p->temperature);                                          \
        T fwd = p->divergence == CT_KD_FORWARD_KL ? 1 : p->divergence == CT_KD_SYMMETRIC_KL ? (T)0.5 : 0; \
        T rev = p->divergence == CT_KD_REVERSE_KL ? 1 : p->divergence == CT_KD_SYMMETRIC_KL ? (T)0.5 : 0; \
        if (!t) kl_w = 0;                                                                             \
        if (ce_w != 0) { /* lse_1 is only meaningful then */                                          \
            _Pragma("omp simd")                                                                       \
            for (int64_t c = 0; c < V; c++) g[c] = ce_w * EXP(s[c] - lse_1);                          \
        } else {                                                                                      \
            for (int64_t c = 0; c < V; c++) g[c] = 0;                                                 \
        }                                                                                             \
        if (kl_w != 0) {                                                                              \
            _Pragma("omp simd")                                                                       \
            for (int64_t c = 0; c < V; c++) {                                                         \
                T log_ps = s[c] * inv - lse_s, log_pt = t[c] * inv - lse_t;                           \
                T ps = EXP(log_ps), pt = EXP(log_pt);                                                 \
                g[c] += kl_w * (fwd * (ps - pt) + rev * ps * (log_ps - log_pt - kl_rev));             \
            }                                                                                         \
        }                                                                                             \
        g[y] -= ce_w;                                                                                 \
    }                                                                                                 \
    static void kd_rows_##SUFFIX(const T *s, const T *t, const int32_t *y, int64_t rows, int64_t V,  \
                                 const ct_kd_params *p, double *stats) {                              \
        _Pragma("omp parallel for schedule(dynamic, 1) if (rows * V > CT_CPU_PARALLEL_MIN)")          \
        for (int64_t r = 0; r < rows; r++) {                                                          \
            double *st = stats + CT_KD_STATS * r;                                                     \
            for (int i = 0; i < CT_KD_STATS; i++) st[i] = 0;                                          \
            if (y[r] >= 0) kd_row_##SUFFIX(s + r * V, t ? t + r * V : NULL, y[r], V, p, st);          \
        }                                                                                             \
    }                                                                                                 \
    static void kd_rows_backward_##SUFFIX(const T *s, const T *t, const int32_t *y, int64_t rows,    \
                                          int64_t V, const ct_kd_params *p, const double *stats,      \
                                          double scale, T *g) {                                       \
        _Pragma("omp parallel for schedule(dynamic, 1) if (rows * V > CT_CPU_PARALLEL_MIN)")          \
        for (int64_t r = 0; r < rows; r++) {                                                          \
            T *gr = g + r * V;                                                                        \
            if (y[r] < 0) {                                                                           \
                for (int64_t c = 0; c < V; c++) gr[c] = 0;                                            \
                continue;                                                                             \
            }                                                                                         \
            kd_row_backward_##SUFFIX(s + r * V, t ? t + r * V : NULL, y[r], V, p,                     \
                                     stats + CT_KD_STATS * r, scale, gr);                             \
        }                                                                                             \
    }

DEFINE_KD_ROWS(float, f32, ct_cpu_expf, CT_CPU_CLONES)
DEFINE_KD_ROWS(double, f64, kd_exp_f64, )

int ct_cpu_kd_rows_forward(const ct_tensor *student, const ct_tensor *teacher, const ct_tensor *targets,
                           const ct_kd_params *params, ct_tensor *row_stats) {
    int64_t rows = ct_rows(student), V = ct_cols(student);
    const void *t = teacher ? teacher->data : NULL;
    if (student->dtype == CT_F64)
        kd_rows_f64(student->data, t, targets->data, rows, V, params, row_stats->data);
    else
        kd_rows_f32(student->data, t, targets->data, rows, V, params, row_stats->data);
    return 0;
}

int ct_cpu_kd_rows_backward(const ct_tensor *student, const ct_tensor *teacher, const ct_tensor *targets,
                            const ct_kd_params *params, const ct_tensor *row_stats, const ct_tensor *grad_out,
                            ct_tensor *grad_student) {
    int64_t rows = ct_rows(student), V = ct_cols(student);
    const void *t = teacher ? teacher->data : NULL;
    double scale = ct_get(grad_out, 0);
    if (student->dtype == CT_F64)
        kd_rows_backward_f64(student->data, t, targets->data, rows, V, params, row_stats->data, scale,
                             grad_student->data);
    else
        kd_rows_backward_f32(student->data, t, targets->data, rows, V, params, row_stats->data, scale,
                             grad_student->data);
    return 0;
}
