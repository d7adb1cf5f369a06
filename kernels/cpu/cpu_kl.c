/* Distillation KL over rows: per unmasked row, KL(softmax(t/T) || softmax(s/T)), computed a row
 * at a time with no probability tensor. Forward keeps each row's two logsumexps and its KL
 * (row_stats, f64 [rows, 3]); backward recomputes the probabilities from them:
 *   dL/ds = c * (p_s - p_t),  dL/dt = c * p_t * (log p_t - log p_s - KL_row),  c = g * T / count
 * (the T^2 of the loss times the 1/T of the inner derivative). Rows are added in row order;
 * within a row the loops are vectorized (f32: ct_cpu_expf, AVX2 clones), chunk sums added in double, so
 * the result depends on the machine's vector width but never on the thread count. */
#include <math.h>

#include "kernels/cpu/cpu_kernels.h"

#define KL_CHUNK 512

static int row_included(const ct_tensor *mask, int64_t r) {
    if (!mask) return 1;
    return mask->dtype == CT_F64 ? ((const double *)mask->data)[r] != 0 : ((const float *)mask->data)[r] != 0;
}

static int64_t count_rows(const ct_tensor *mask, int64_t rows) {
    int64_t count = 0;
    for (int64_t r = 0; r < rows; r++) count += row_included(mask, r);
    return count;
}

#define DEFINE_KL(T, SUFFIX, EXP, CLONES)                                                          \
    /* st = {logsumexp(s / T), logsumexp(t / T), KL} of one row */                                 \
    CLONES static void kl_row_##SUFFIX(const T *restrict sr, const T *restrict tr, T inv_temp,     \
                                       double *st, int64_t cols) {                                 \
        T ms = sr[0], mt = tr[0];                                                                  \
        _Pragma("omp simd reduction(max : ms, mt)")                                                \
        for (int64_t c = 1; c < cols; c++) {                                                       \
            ms = sr[c] > ms ? sr[c] : ms;                                                          \
            mt = tr[c] > mt ? tr[c] : mt;                                                          \
        }                                                                                          \
        ms *= inv_temp;                                                                            \
        mt *= inv_temp;                                                                            \
        /* z_s, z_t: softmax denominators; e: sum of exp(a_t - m_t) * (a_t - a_s) */              \
        /* Sums in T within chunks of KL_CHUNK columns (vectorizes at full width), chunks added in \
         * double, so long vocabularies keep the double's precision. */                           \
        double zs = 0, zt = 0, e = 0;                                                              \
        for (int64_t c0 = 0; c0 < cols; c0 += KL_CHUNK) {                                          \
            int64_t c1 = c0 + KL_CHUNK < cols ? c0 + KL_CHUNK : cols;                              \
            T zs_chunk = 0, zt_chunk = 0, e_chunk = 0;                                             \
            _Pragma("omp simd reduction(+ : zs_chunk, zt_chunk, e_chunk)")                         \
            for (int64_t c = c0; c < c1; c++) {                                                    \
                T as = sr[c] * inv_temp, at = tr[c] * inv_temp;                                    \
                T et = EXP(at - mt);                                                               \
                zs_chunk += EXP(as - ms);                                                          \
                zt_chunk += et;                                                                    \
                e_chunk += et * (at - as);                                                         \
            }                                                                                      \
            zs += (double)zs_chunk;                                                                \
            zt += (double)zt_chunk;                                                                \
            e += (double)e_chunk;                                                                  \
        }                                                                                          \
        st[0] = (double)ms + log(zs);                                                              \
        st[1] = (double)mt + log(zt);                                                              \
        st[2] = e / zt - st[1] + st[0];                                                            \
    }                                                                                              \
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
    static void kl_rows_##SUFFIX(const T *s, const T *t, const ct_tensor *mask, T inv_temp,       \
                                 double *stats, int64_t rows, int64_t cols) {                      \
        _Pragma("omp parallel for schedule(static) if (rows * cols > CT_CPU_PARALLEL_MIN)")        \
        for (int64_t r = 0; r < rows; r++) {                                                       \
            double *st = stats + 3 * r;                                                            \
            st[0] = st[1] = st[2] = 0;                                                             \
            if (row_included(mask, r)) kl_row_##SUFFIX(s + r * cols, t + r * cols, inv_temp, st, cols); \
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

DEFINE_KL(float, f32, ct_cpu_expf, CT_CPU_CLONES)
DEFINE_KL(double, f64, exp, )

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
