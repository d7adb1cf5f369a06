/* Log-softmax and softmax cross-entropy over the last dimension, one row per thread iteration.
 * Cross-entropy never materializes probabilities: forward keeps each row's logsumexp, backward
 * recomputes exp(x - lse) on the fly. Row losses are added in row order (deterministic).
 *
 * f32 and bf16 rows are read once, a step of columns at a time (bf16 steps widened to f32): the
 * logsumexp is an online one (below), so a row of any vocabulary size streams through the cache
 * once, and the exps use ct_cpu_expf in AVX2 / AVX-512 clones. The summation order is fixed by
 * the code, never by the thread count. f64 rows use libm and the plain two-pass formula. */
#include <float.h>
#include <math.h>

#include "core/error.h"
#include "kernels/cpu/cpu_kernels.h"

#define CT_IGNORE_INDEX (-100)

/* ---- f32 and bf16 rows ---- */

/* g += scale * exp(x - shift) */
CT_CPU_CLONES static void span_add_scaled_exp(const float *restrict x, int64_t n, float shift, float scale,
                                              float *restrict g) {
    _Pragma("omp simd")
    for (int64_t c = 0; c < n; c++) g[c] += scale * ct_cpu_expf(x[c] - shift);
}

/* The f32 / bf16 logsumexp is computed in LANES independent lanes (lane j takes columns j, j + 16,
 * ... of the row), each with its own running max and sum, rescaled at most once per step of
 * LSE_STEP columns. Nothing waits on a horizontal reduction until the row's end, where the
 * lanes are combined in double. Sums run in f32 within a step and in double across steps, so
 * long vocabularies keep their precision. The row is prefetched LSE_AHEAD steps ahead, a step at
 * a time, so memory and the exps overlap. */
#define LANES 16
#define LSE_STEP 256
#define LSE_AHEAD 8

typedef struct {
    float max[LANES];
    double total[LANES]; /* of exp(x - max) */
} lanes_lse;

/* One step (n a multiple of LANES) into the lanes. */
CT_CPU_CLONES static void lanes_step(const float *restrict x, int64_t n, lanes_lse *restrict l) {
    float step_max[LANES], step_sum[LANES], rescale[LANES];
    for (int j = 0; j < LANES; j++) step_max[j] = l->max[j], step_sum[j] = 0;
    for (int64_t i = 0; i < n; i += LANES) {
        _Pragma("omp simd")
        for (int j = 0; j < LANES; j++) step_max[j] = x[i + j] > step_max[j] ? x[i + j] : step_max[j];
    }
    _Pragma("omp simd")
    for (int j = 0; j < LANES; j++) rescale[j] = ct_cpu_expf(l->max[j] - step_max[j]); /* 1 when unchanged */
    for (int64_t i = 0; i < n; i += LANES) {
        _Pragma("omp simd")
        for (int j = 0; j < LANES; j++) step_sum[j] += ct_cpu_expf(x[i + j] - step_max[j]);
    }
    for (int j = 0; j < LANES; j++) {
        l->total[j] = l->total[j] * rescale[j] + step_sum[j];
        l->max[j] = step_max[j];
    }
}

/* logsumexp of row r of an f32 or bf16 [rows, cols] tensor. Lanes start at -FLT_MAX rather than
 * -inf, so a lane that only ever sees -inf rescales by exp(0) instead of exp(NaN). NaN in the row
 * makes the result NaN. */
static double row_logsumexp_f32(const ct_tensor *x, int64_t r, int64_t cols) {
    float buf[LSE_STEP];
    lanes_lse l;
    for (int j = 0; j < LANES; j++) l.max[j] = -FLT_MAX, l.total[j] = 0;
    size_t esize = ct_dtype_size(x->dtype);
    int64_t numel = ct_numel(x), whole = cols / LANES * LANES;
    for (int64_t c0 = 0; c0 < whole; c0 += LSE_STEP) {
        int64_t n = ct_cpu_min64(LSE_STEP, whole - c0), ahead = r * cols + c0 + LSE_AHEAD * LSE_STEP;
        if (ahead < numel)
            ct_cpu_prefetch((const char *)x->data + (size_t)ahead * esize,
                            (size_t)ct_cpu_min64(LSE_STEP, numel - ahead) * esize);
        lanes_step(ct_cpu_span_in(x, r * cols + c0, n, buf), n, &l);
    }
    /* the last cols % LANES columns, then the lanes, against the row's max */
    const float *tail = ct_cpu_span_in(x, r * cols + whole, cols - whole, buf);
    double max = -FLT_MAX, total = 0;
    for (int j = 0; j < LANES; j++) max = l.max[j] > max ? l.max[j] : max;
    for (int64_t c = 0; c < cols - whole; c++) max = tail[c] > max ? tail[c] : max;
    for (int j = 0; j < LANES; j++) total += l.total[j] * exp(l.max[j] - max);
    for (int64_t c = 0; c < cols - whole; c++) total += exp(tail[c] - max);
    return max + log(total);
}

/* One element of an f32 or bf16 tensor. */
static float element_f32(const ct_tensor *x, int64_t i) {
    return x->dtype == CT_F32 ? ((const float *)x->data)[i] : ct_bf16_to_f32(((const uint16_t *)x->data)[i]);
}

/* ---- f64 rows: the plain formulas ---- */

static double row_logsumexp_f64(const double *x, int64_t cols) {
    double max = -INFINITY, total = 0;
    for (int64_t c = 0; c < cols; c++) max = x[c] > max ? x[c] : max;
    for (int64_t c = 0; c < cols; c++) total += exp(x[c] - max);
    return max + log(total);
}

/* ---- log-softmax (f32 and f64 tensors) ---- */

CT_CPU_CLONES static void span_shift(const float *restrict x, int64_t n, float shift, float *restrict y) {
    _Pragma("omp simd")
    for (int64_t c = 0; c < n; c++) y[c] = x[c] - shift;
}

/* gx += gy - exp(y) * total */
CT_CPU_CLONES static void span_log_softmax_grad(const float *restrict y, const float *restrict gy, int64_t n,
                                                float total, float *restrict gx) {
    _Pragma("omp simd")
    for (int64_t c = 0; c < n; c++) gx[c] += gy[c] - ct_cpu_expf(y[c]) * total;
}

int ct_cpu_log_softmax_forward(const ct_tensor *x, ct_tensor *y) {
    int64_t rows = ct_rows(x), cols = ct_cols(x);
    if (x->dtype == CT_F64) {
        const double *xd = x->data;
        double *yd = y->data;
#pragma omp parallel for schedule(static) if (rows * cols > CT_CPU_PARALLEL_MIN)
        for (int64_t r = 0; r < rows; r++) {
            double lse = row_logsumexp_f64(xd + r * cols, cols);
            for (int64_t c = 0; c < cols; c++) yd[r * cols + c] = xd[r * cols + c] - lse;
        }
        return 0;
    }
    const float *xf = x->data;
    float *yf = y->data;
#pragma omp parallel for schedule(static) if (rows * cols > CT_CPU_PARALLEL_MIN)
    for (int64_t r = 0; r < rows; r++)
        span_shift(xf + r * cols, cols, (float)row_logsumexp_f32(x, r, cols), yf + r * cols);
    return 0;
}

int ct_cpu_log_softmax_backward(const ct_tensor *y, const ct_tensor *grad_y, ct_tensor *grad_x) {
    int64_t rows = ct_rows(y), cols = ct_cols(y);
    if (y->dtype == CT_F64) {
        const double *yd = y->data, *gy = grad_y->data;
        double *gx = grad_x->data;
#pragma omp parallel for schedule(static) if (rows * cols > CT_CPU_PARALLEL_MIN)
        for (int64_t r = 0; r < rows; r++) {
            double total = 0;
            for (int64_t c = 0; c < cols; c++) total += gy[r * cols + c];
            for (int64_t c = 0; c < cols; c++) gx[r * cols + c] += gy[r * cols + c] - exp(yd[r * cols + c]) * total;
        }
        return 0;
    }
    const float *yf = y->data, *gy = grad_y->data;
    float *gx = grad_x->data;
#pragma omp parallel for schedule(static) if (rows * cols > CT_CPU_PARALLEL_MIN)
    for (int64_t r = 0; r < rows; r++) {
        double total = 0;
        for (int64_t c = 0; c < cols; c++) total += gy[r * cols + c];
        span_log_softmax_grad(yf + r * cols, gy + r * cols, cols, (float)total, gx + r * cols);
    }
    return 0;
}

/* ---- cross-entropy (f32, bf16 and f64 logits) ---- */

static int64_t count_targets(const ct_tensor *targets, int64_t cols) {
    const int32_t *t = targets->data;
    int64_t count = 0, n = ct_numel(targets);
    for (int64_t r = 0; r < n; r++) {
        if (t[r] == CT_IGNORE_INDEX) continue;
        if (t[r] < 0 || t[r] >= cols) {
            ct_fail("cross_entropy: target %d at row %lld is outside [0, %lld) (use -100 to ignore a position)",
                    t[r], (long long)r, (long long)cols);
            return -1;
        }
        count++;
    }
    return count;
}

/* Writes each row's logsumexp (0 for ignored rows) and returns the summed loss. */
static double cross_entropy_rows(const ct_tensor *logits, const int32_t *t, ct_tensor *row_lse) {
    int64_t rows = ct_rows(logits), cols = ct_cols(logits);
    bool f64 = logits->dtype == CT_F64;
#pragma omp parallel for schedule(static) if (rows * cols > CT_CPU_PARALLEL_MIN)
    for (int64_t r = 0; r < rows; r++) {
        if (f64)
            ((double *)row_lse->data)[r] =
                t[r] == CT_IGNORE_INDEX ? 0 : row_logsumexp_f64((const double *)logits->data + r * cols, cols);
        else
            ((float *)row_lse->data)[r] = t[r] == CT_IGNORE_INDEX ? 0 : (float)row_logsumexp_f32(logits, r, cols);
    }
    double total = 0;
    for (int64_t r = 0; r < rows; r++) {
        if (t[r] == CT_IGNORE_INDEX) continue;
        total += f64 ? ((const double *)row_lse->data)[r] - ((const double *)logits->data)[r * cols + t[r]]
                     : (double)((const float *)row_lse->data)[r] - (double)element_f32(logits, r * cols + t[r]);
    }
    return total;
}

int ct_cpu_cross_entropy_forward(const ct_tensor *logits, const ct_tensor *targets, ct_reduction reduction,
                                 ct_tensor *row_logsumexp, ct_tensor *out) {
    int64_t count = count_targets(targets, ct_cols(logits));
    if (count < 0) return -1;
    double total = cross_entropy_rows(logits, targets->data, row_logsumexp);
    /* The mean over zero targets is 0 (nothing to learn from), not NaN. */
    ct_set(out, 0, reduction == CT_REDUCE_MEAN ? (count ? total / (double)count : 0.0) : total);
    return 0;
}

/* grad[r] += scale * (softmax(x[r]) - onehot(t[r])) for one f32 / bf16 row, span by span. */
static void cross_entropy_row_backward_f32(const ct_tensor *logits, int64_t r, int64_t cols, float lse, float scale,
                                           float *g) {
    float buf[CT_CPU_SPAN];
    for (int64_t c0 = 0; c0 < cols; c0 += CT_CPU_SPAN) {
        int64_t n = ct_cpu_min64(CT_CPU_SPAN, cols - c0);
        span_add_scaled_exp(ct_cpu_span_in(logits, r * cols + c0, n, buf), n, lse, scale, g + c0);
    }
}

int ct_cpu_cross_entropy_backward(const ct_tensor *logits, const ct_tensor *targets, ct_reduction reduction,
                                  const ct_tensor *row_logsumexp, const ct_tensor *grad_out,
                                  ct_tensor *grad_logits) {
    int64_t rows = ct_rows(logits), cols = ct_cols(logits);
    int64_t count = count_targets(targets, cols);
    if (count <= 0) return count;
    double scale = ct_get(grad_out, 0) / (reduction == CT_REDUCE_MEAN ? (double)count : 1.0);
    const int32_t *t = targets->data;
    bool f64 = logits->dtype == CT_F64;
#pragma omp parallel for schedule(static) if (rows * cols > CT_CPU_PARALLEL_MIN)
    for (int64_t r = 0; r < rows; r++) {
        if (t[r] == CT_IGNORE_INDEX) continue;
        if (f64) {
            const double *x = (const double *)logits->data + r * cols, lse = ((const double *)row_logsumexp->data)[r];
            double *g = (double *)grad_logits->data + r * cols;
            for (int64_t c = 0; c < cols; c++) g[c] += scale * exp(x[c] - lse);
            g[t[r]] -= scale;
        } else {
            float *g = (float *)grad_logits->data + r * cols;
            cross_entropy_row_backward_f32(logits, r, cols, ((const float *)row_logsumexp->data)[r], (float)scale, g);
            g[t[r]] -= (float)scale;
        }
    }
    return 0;
}
