/* Distillation KL over rows: per unmasked row, KL(softmax(t/T) || softmax(s/T)), computed a row
 * at a time with no probability tensor. Forward keeps each row's two logsumexps and its KL
 * (row_stats, f64 [rows, 3]); backward recomputes the probabilities from them:
 *   dL/ds = c * (p_s - p_t),  dL/dt = c * p_t * (log p_t - log p_s - KL_row),  c = g * T / count
 * (the T^2 of the loss times the 1/T of the inner derivative). Rows are added in row order, so
 * the result never depends on the thread count. f32 and f64 only (convert bf16 logits first).
 *
 * f32 forward: two exps per element, as much arithmetic as memory time, so the row is read once
 * and prefetched ahead: an online pass in LANES independent lanes (lane j takes columns j,
 * j + 16, ...), each with running maxima of s/T and t/T and sums rescaled at most once per step
 * of KL_STEP columns; the lanes are combined in double at the row's end. Sums run in f32 within
 * a step and in double across steps. f32 backward and the f64 path are plain vectorized loops
 * (f32: ct_cpu_expf, AVX2 / AVX-512 clones); f64 forward is the two-pass formula with libm. */
#include <float.h>
#include <math.h>

#include "kernels/cpu/cpu_kernels.h"

#define LANES 16
#define KL_STEP 256
#define KL_AHEAD 8

static int row_included(const ct_tensor *mask, int64_t r) {
    if (!mask) return 1;
    return mask->dtype == CT_F64 ? ((const double *)mask->data)[r] != 0 : ((const float *)mask->data)[r] != 0;
}

static int64_t count_rows(const ct_tensor *mask, int64_t rows) {
    int64_t count = 0;
    for (int64_t r = 0; r < rows; r++) count += row_included(mask, r);
    return count;
}

/* ---- f32 forward: lanes ---- */

/* Per lane: maxima of s and t, and with a_s = s/T, a_t = t/T and m_s, m_t the maxima over T:
 * zs = sum exp(a_s - m_s), zt = sum exp(a_t - m_t), e = sum exp(a_t - m_t) * (t - s) (e times 1/T
 * is the KL's cross term; the factor is applied once per row). T > 0 keeps the maxima's order. */
typedef struct {
    float ms[LANES], mt[LANES];
    double zs[LANES], zt[LANES], e[LANES];
} kl_lanes;

/* One step of n columns (a multiple of LANES) into the lanes. */
CT_CPU_CLONES static void kl_lanes_step(const float *restrict s, const float *restrict t, int64_t n, float inv_temp,
                                        kl_lanes *restrict l) {
    float ms[LANES], mt[LANES], zs[LANES], zt[LANES], e[LANES], rs[LANES], rt[LANES], ss[LANES], st[LANES];
    for (int j = 0; j < LANES; j++) ms[j] = l->ms[j], mt[j] = l->mt[j], zs[j] = zt[j] = e[j] = 0;
    for (int64_t i = 0; i < n; i += LANES) {
        _Pragma("omp simd")
        for (int j = 0; j < LANES; j++) {
            ms[j] = s[i + j] > ms[j] ? s[i + j] : ms[j];
            mt[j] = t[i + j] > mt[j] ? t[i + j] : mt[j];
        }
    }
    _Pragma("omp simd")
    for (int j = 0; j < LANES; j++) { /* rescales are 1 where a lane's max did not change */
        rs[j] = ct_cpu_expf((l->ms[j] - ms[j]) * inv_temp);
        rt[j] = ct_cpu_expf((l->mt[j] - mt[j]) * inv_temp);
        ss[j] = ms[j] * inv_temp; /* shifts: the maxima over T */
        st[j] = mt[j] * inv_temp;
    }
    for (int64_t i = 0; i < n; i += LANES) {
        _Pragma("omp simd")
        for (int j = 0; j < LANES; j++) {
            float et = ct_cpu_expf(t[i + j] * inv_temp - st[j]);
            zs[j] += ct_cpu_expf(s[i + j] * inv_temp - ss[j]);
            zt[j] += et;
            e[j] += et * (t[i + j] - s[i + j]);
        }
    }
    for (int j = 0; j < LANES; j++) {
        l->zs[j] = l->zs[j] * rs[j] + zs[j];
        l->zt[j] = l->zt[j] * rt[j] + zt[j];
        l->e[j] = l->e[j] * rt[j] + e[j];
        l->ms[j] = ms[j];
        l->mt[j] = mt[j];
    }
}

/* st = {logsumexp(s / T), logsumexp(t / T), KL} of one row. Lanes start at -FLT_MAX, not -inf,
 * so a first rescale is exp(-FLT_MAX - max) = 0 rather than NaN. */
static void kl_row_f32(const float *s, const float *t, float inv_temp, double *st, int64_t cols, int64_t left) {
    kl_lanes l;
    for (int j = 0; j < LANES; j++) l.ms[j] = l.mt[j] = -FLT_MAX, l.zs[j] = l.zt[j] = l.e[j] = 0;
    int64_t whole = cols / LANES * LANES;
    for (int64_t c0 = 0; c0 < whole; c0 += KL_STEP) {
        int64_t n = ct_cpu_min64(KL_STEP, whole - c0), ahead = c0 + KL_AHEAD * KL_STEP;
        if (ahead < left) { /* left: elements from this row's start to the tensor's end */
            size_t bytes = (size_t)ct_cpu_min64(KL_STEP, left - ahead) * sizeof(float);
            ct_cpu_prefetch(s + ahead, bytes);
            ct_cpu_prefetch(t + ahead, bytes);
        }
        kl_lanes_step(s + c0, t + c0, n, inv_temp, &l);
    }
    /* combine the lanes and the last cols % LANES columns against the row's maxima, in double */
    double ms = -FLT_MAX, mt = -FLT_MAX, zs = 0, zt = 0, e = 0;
    for (int j = 0; j < LANES; j++) {
        ms = l.ms[j] > ms ? l.ms[j] : ms;
        mt = l.mt[j] > mt ? l.mt[j] : mt;
    }
    for (int64_t c = whole; c < cols; c++) {
        ms = s[c] > ms ? s[c] : ms;
        mt = t[c] > mt ? t[c] : mt;
    }
    ms *= inv_temp;
    mt *= inv_temp;
    for (int j = 0; j < LANES; j++) {
        double wt = exp((double)(l.mt[j] * inv_temp) - mt);
        zs += l.zs[j] * exp((double)(l.ms[j] * inv_temp) - ms);
        zt += l.zt[j] * wt;
        e += l.e[j] * wt;
    }
    for (int64_t c = whole; c < cols; c++) {
        double et = exp((double)(t[c] * inv_temp) - mt);
        zs += exp((double)(s[c] * inv_temp) - ms);
        zt += et;
        e += et * ((double)t[c] - (double)s[c]);
    }
    st[0] = ms + log(zs);
    st[1] = mt + log(zt);
    st[2] = e * inv_temp / zt - st[1] + st[0];
}

static void kl_rows_f32(const float *s, const float *t, const ct_tensor *mask, float inv_temp, double *stats,
                        int64_t rows, int64_t cols) {
#pragma omp parallel for schedule(static) if (rows * cols > CT_CPU_PARALLEL_MIN)
    for (int64_t r = 0; r < rows; r++) {
        double *st = stats + 3 * r;
        st[0] = st[1] = st[2] = 0;
        if (row_included(mask, r))
            kl_row_f32(s + r * cols, t + r * cols, inv_temp, st, cols, (rows - r) * cols);
    }
}

/* ---- f64 forward: the plain two-pass formula ---- */

static void kl_row_f64(const double *sr, const double *tr, double inv_temp, double *st, int64_t cols) {
    double ms = -INFINITY, mt = -INFINITY, zs = 0, zt = 0, e = 0;
    for (int64_t c = 0; c < cols; c++) {
        ms = sr[c] * inv_temp > ms ? sr[c] * inv_temp : ms;
        mt = tr[c] * inv_temp > mt ? tr[c] * inv_temp : mt;
    }
    for (int64_t c = 0; c < cols; c++) {
        double as = sr[c] * inv_temp, at = tr[c] * inv_temp, et = exp(at - mt);
        zs += exp(as - ms);
        zt += et;
        e += et * (at - as);
    }
    st[0] = ms + log(zs);
    st[1] = mt + log(zt);
    st[2] = e / zt - st[1] + st[0];
}

static void kl_rows_f64(const double *s, const double *t, const ct_tensor *mask, double inv_temp, double *stats,
                        int64_t rows, int64_t cols) {
#pragma omp parallel for schedule(static) if (rows * cols > CT_CPU_PARALLEL_MIN)
    for (int64_t r = 0; r < rows; r++) {
        double *st = stats + 3 * r;
        st[0] = st[1] = st[2] = 0;
        if (row_included(mask, r)) kl_row_f64(s + r * cols, t + r * cols, inv_temp, st, cols);
    }
}

/* ---- backward ---- */

#define DEFINE_KL_BACKWARD(T, SUFFIX, EXP, CLONES)                                                 \
    CLONES static void kl_row_backward_##SUFFIX(const T *restrict sr, const T *restrict tr,        \
                                                T inv_temp, const double *st, T scale,              \
                                                T *restrict gs, T *restrict gt, int64_t cols) {     \
        T lse_s = (T)st[0], lse_t = (T)st[1], kl = (T)st[2];                                       \
        if (gs) {                                                                                  \
            _Pragma("omp simd")                                                                    \
            for (int64_t c = 0; c < cols; c++)                                                     \
                gs[c] += scale * (EXP(sr[c] * inv_temp - lse_s) - EXP(tr[c] * inv_temp - lse_t));  \
        }                                                                                          \
        if (gt) {                                                                                  \
            _Pragma("omp simd")                                                                    \
            for (int64_t c = 0; c < cols; c++) {                                                   \
                T log_pt = tr[c] * inv_temp - lse_t, log_ps = sr[c] * inv_temp - lse_s;            \
                gt[c] += scale * EXP(log_pt) * (log_pt - log_ps - kl);                             \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
    static void kl_backward_##SUFFIX(const T *s, const T *t, const ct_tensor *mask, T inv_temp,   \
                                     const double *stats, T scale, T *gs, T *gt, int64_t rows,     \
                                     int64_t cols) {                                               \
        _Pragma("omp parallel for schedule(static) if (rows * cols > CT_CPU_PARALLEL_MIN)")        \
        for (int64_t r = 0; r < rows; r++)                                                         \
            if (row_included(mask, r))                                                             \
                kl_row_backward_##SUFFIX(s + r * cols, t + r * cols, inv_temp, stats + 3 * r, scale, \
                                         gs ? gs + r * cols : NULL, gt ? gt + r * cols : NULL, cols); \
    }

DEFINE_KL_BACKWARD(float, f32, ct_cpu_expf, CT_CPU_CLONES)
DEFINE_KL_BACKWARD(double, f64, exp, )

int ct_cpu_kl_div_forward(const ct_tensor *student, const ct_tensor *teacher, const ct_tensor *mask,
                          double temperature, ct_tensor *row_stats, ct_tensor *out) {
    int64_t rows = ct_rows(student), cols = ct_cols(student);
    double *stats = row_stats->data;
    if (student->dtype == CT_F64)
        kl_rows_f64(student->data, teacher->data, mask, 1.0 / temperature, stats, rows, cols);
    else
        kl_rows_f32(student->data, teacher->data, mask, (float)(1.0 / temperature), stats, rows, cols);
    double total = 0;
    for (int64_t r = 0; r < rows; r++) total += stats[3 * r + 2];
    int64_t count = count_rows(mask, rows);
    /* No unmasked row: nothing to distill, the loss is 0 rather than NaN. */
    ct_set(out, 0, count ? temperature * temperature * total / (double)count : 0.0);
    return 0;
}

int ct_cpu_kl_div_backward(const ct_tensor *student, const ct_tensor *teacher, const ct_tensor *mask,
                           double temperature, const ct_tensor *row_stats, const ct_tensor *grad_out,
                           ct_tensor *grad_student, ct_tensor *grad_teacher) {
    int64_t rows = ct_rows(student), cols = ct_cols(student);
    int64_t count = count_rows(mask, rows);
    if (!count) return 0;
    double scale = ct_get(grad_out, 0) * temperature / (double)count;
    void *gs = grad_student ? grad_student->data : NULL, *gt = grad_teacher ? grad_teacher->data : NULL;
    if (student->dtype == CT_F64)
        kl_backward_f64(student->data, teacher->data, mask, 1.0 / temperature, row_stats->data, scale, gs, gt,
                        rows, cols);
    else
        kl_backward_f32(student->data, teacher->data, mask, (float)(1.0 / temperature), row_stats->data,
                        (float)scale, gs, gt, rows, cols);
    return 0;
}
