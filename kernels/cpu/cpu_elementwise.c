/* Elementwise kernels with row broadcasting: the second operand either has the first's shape
 * or is a single row repeated over every row (a bias, a norm weight).
 *
 * f64 runs on plain loops. f32 and bf16 operands run as rows x spans of CT_CPU_SPAN columns (a
 * same-shape operand makes the whole tensor one row), bf16 spans converted around the f32 loops
 * (kernels/cpu/cpu_kernels.h). Destinations that accumulate are gradients: f32 or f64. */
#include "kernels/cpu/cpu_kernels.h"

#define DEFINE_BINARY(T, SUFFIX, CLONES)                                                           \
    CLONES static void binary_span_##SUFFIX(ct_binary_op op, const T *restrict a, const T *restrict b, \
                                            T *restrict out, int64_t n) {                          \
        if (op == CT_BINARY_ADD) {                                                                 \
            _Pragma("omp simd")                                                                    \
            for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i];                                  \
        } else {                                                                                   \
            _Pragma("omp simd")                                                                    \
            for (int64_t i = 0; i < n; i++) out[i] = a[i] * b[i];                                  \
        }                                                                                          \
    }                                                                                              \
    CLONES static void axpby_span_##SUFFIX(T alpha, const T *restrict x, T beta, T *restrict y,     \
                                           int64_t n) {                                            \
        _Pragma("omp simd")                                                                        \
        for (int64_t i = 0; i < n; i++) y[i] = alpha * x[i] + beta * y[i];                         \
    }                                                                                              \
    CLONES static void scale_span_##SUFFIX(T alpha, const T *restrict x, T *restrict y, int64_t n) { \
        _Pragma("omp simd")                                                                        \
        for (int64_t i = 0; i < n; i++) y[i] = alpha * x[i];                                       \
    }                                                                                              \
    CLONES static void mul_accumulate_span_##SUFFIX(const T *restrict x, const T *restrict y,      \
                                                    T *restrict dst, int64_t n) {                  \
        _Pragma("omp simd")                                                                        \
        for (int64_t i = 0; i < n; i++) dst[i] += x[i] * y[i];                                     \
    }                                                                                              \
    static void add_scalar_##SUFFIX(T *dst, T value, int64_t n) {                                  \
        for (int64_t i = 0; i < n; i++) dst[i] += value;                                           \
    }

DEFINE_BINARY(float, f32, CT_CPU_CLONES)
DEFINE_BINARY(double, f64, )

/* A pass over x's elements as rows x spans, pairing each with the same span of a second operand
 * that has x's shape or is one row of x's last dimension. */
typedef struct {
    int64_t rows, cols, spans_per_row;
    bool second_is_row;
} span_grid;

static span_grid grid_for(const ct_tensor *x, const ct_tensor *second) {
    span_grid g = {.rows = 1, .cols = ct_numel(x)};
    if (second && ct_numel(second) != ct_numel(x) && ct_numel(second) == ct_cols(x)) {
        g.rows = ct_rows(x);
        g.cols = ct_cols(x);
        g.second_is_row = true;
    }
    g.spans_per_row = (g.cols + CT_CPU_SPAN - 1) / CT_CPU_SPAN;
    return g;
}

/* Span `item` of the grid: offset into x, offset into the second operand, length. */
static void grid_span(const span_grid *g, int64_t item, int64_t *at, int64_t *second_at, int64_t *n) {
    int64_t r = item / g->spans_per_row, c0 = (item % g->spans_per_row) * CT_CPU_SPAN;
    *at = r * g->cols + c0;
    *second_at = g->second_is_row ? c0 : *at;
    *n = ct_cpu_min64(CT_CPU_SPAN, g->cols - c0);
}

static int64_t grid_items(const span_grid *g) { return g->rows * g->spans_per_row; }

int ct_cpu_binary(ct_binary_op op, const ct_tensor *a, const ct_tensor *b, ct_tensor *out) {
    span_grid g = grid_for(a, b);
    int64_t items = grid_items(&g);
#pragma omp parallel for schedule(static) if (ct_numel(a) > CT_CPU_PARALLEL_MIN)
    for (int64_t item = 0; item < items; item++) {
        int64_t at, bt, n;
        grid_span(&g, item, &at, &bt, &n);
        if (a->dtype == CT_F64) {
            binary_span_f64(op, (const double *)a->data + at, (const double *)b->data + bt,
                            (double *)out->data + at, n);
            continue;
        }
        float ab[CT_CPU_SPAN], bb[CT_CPU_SPAN], ob[CT_CPU_SPAN];
        float *o = ct_cpu_span_out(out, at, ob);
        binary_span_f32(op, ct_cpu_span_in(a, at, n, ab), ct_cpu_span_in(b, bt, n, bb), o, n);
        ct_cpu_span_store(out, at, n, ob);
    }
    return 0;
}

/* y is f32 or f64; x has y's dtype or is bf16 beside an f32 y. */
int ct_cpu_axpby(double alpha, const ct_tensor *x, double beta, ct_tensor *y) {
    span_grid g = grid_for(y, NULL);
    int64_t items = grid_items(&g);
#pragma omp parallel for schedule(static) if (ct_numel(y) > CT_CPU_PARALLEL_MIN)
    for (int64_t item = 0; item < items; item++) {
        int64_t at, unused, n;
        grid_span(&g, item, &at, &unused, &n);
        /* beta 0 never reads y: it may be uninitialized (a fresh gradient buffer, ct_scale's output) */
        if (y->dtype == CT_F64) {
            if (beta == 0) scale_span_f64(alpha, (const double *)x->data + at, (double *)y->data + at, n);
            else axpby_span_f64(alpha, (const double *)x->data + at, beta, (double *)y->data + at, n);
            continue;
        }
        float xb[CT_CPU_SPAN];
        const float *xs = ct_cpu_span_in(x, at, n, xb);
        if (beta == 0) scale_span_f32((float)alpha, xs, (float *)y->data + at, n);
        else axpby_span_f32((float)alpha, xs, (float)beta, (float *)y->data + at, n);
    }
    return 0;
}

/* dst += x * y: dst and x are gradients (f32 or f64); y may be bf16 and may be one row. */
int ct_cpu_mul_accumulate(const ct_tensor *x, const ct_tensor *y, ct_tensor *dst) {
    span_grid g = grid_for(x, y);
    int64_t items = grid_items(&g);
#pragma omp parallel for schedule(static) if (ct_numel(x) > CT_CPU_PARALLEL_MIN)
    for (int64_t item = 0; item < items; item++) {
        int64_t at, yt, n;
        grid_span(&g, item, &at, &yt, &n);
        if (x->dtype == CT_F64) {
            mul_accumulate_span_f64((const double *)x->data + at, (const double *)y->data + yt,
                                    (double *)dst->data + at, n);
            continue;
        }
        float xb[CT_CPU_SPAN], yb[CT_CPU_SPAN];
        mul_accumulate_span_f32(ct_cpu_span_in(x, at, n, xb), ct_cpu_span_in(y, yt, n, yb), (float *)dst->data + at,
                                n);
    }
    return 0;
}

/* Columns are split across threads; each column sums its rows in order, in double: deterministic. */
#define DEFINE_SUM_ROWS(T, SUFFIX, Y, Y_AT)                                                        \
    static void sum_rows_accumulate_##SUFFIX(const T *x, const Y *y, T *dst, int64_t rows,         \
                                             int64_t cols) {                                       \
        _Pragma("omp parallel for schedule(static) if (rows * cols > CT_CPU_PARALLEL_MIN)")        \
        for (int64_t c = 0; c < cols; c++) {                                                       \
            double total = 0;                                                                      \
            for (int64_t r = 0; r < rows; r++)                                                     \
                total += (double)x[r * cols + c] * (y ? (double)Y_AT(y, r * cols + c) : 1.0);      \
            dst[c] += (T)total;                                                                    \
        }                                                                                          \
    }
#define PLAIN_AT(p, i) (p)[i]
#define BF16_AT(p, i) ct_bf16_to_f32((p)[i])
DEFINE_SUM_ROWS(double, f64, double, PLAIN_AT)
DEFINE_SUM_ROWS(float, f32, float, PLAIN_AT)
DEFINE_SUM_ROWS(float, f32_bf16, uint16_t, BF16_AT)

/* dst[c] += sum over rows r of x[r, c] * (y ? y[r, c] : 1); x and dst are gradients, y may be bf16. */
int ct_cpu_sum_rows_accumulate(const ct_tensor *x, const ct_tensor *y, ct_tensor *dst) {
    int64_t rows = ct_rows(x), cols = ct_cols(x);
    const void *yd = y ? y->data : NULL;
    if (x->dtype == CT_F64)
        sum_rows_accumulate_f64(x->data, yd, dst->data, rows, cols);
    else if (y && y->dtype == CT_BF16)
        sum_rows_accumulate_f32_bf16(x->data, yd, dst->data, rows, cols);
    else
        sum_rows_accumulate_f32(x->data, yd, dst->data, rows, cols);
    return 0;
}

int ct_cpu_add_scalar(ct_tensor *dst, double value) {
    if (dst->dtype == CT_F64)
        add_scalar_f64(dst->data, value, ct_numel(dst));
    else
        add_scalar_f32(dst->data, (float)value, ct_numel(dst));
    return 0;
}

/* y = x converted: f32 <-> bf16 span by span, anything else through ct_copy. */
int ct_cpu_convert(const ct_tensor *x, ct_tensor *y) {
    bool narrow = x->dtype == CT_F32 && y->dtype == CT_BF16, widen = x->dtype == CT_BF16 && y->dtype == CT_F32;
    if (!narrow && !widen) return ct_copy(y, x);
    int64_t n = ct_numel(x), spans = (n + CT_CPU_SPAN - 1) / CT_CPU_SPAN;
#pragma omp parallel for schedule(static) if (n > CT_CPU_PARALLEL_MIN)
    for (int64_t s = 0; s < spans; s++) {
        int64_t at = s * CT_CPU_SPAN, len = ct_cpu_min64(CT_CPU_SPAN, n - at);
        if (narrow) ct_f32_to_bf16_array((const float *)x->data + at, (uint16_t *)y->data + at, len);
        else ct_bf16_to_f32_array((const uint16_t *)x->data + at, (float *)y->data + at, len);
    }
    return 0;
}
