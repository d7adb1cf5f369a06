/* Elementwise kernels with row broadcasting: the second operand either has the first's shape
 * or is a single row repeated over every row (a bias, a norm weight). */
#include "kernels/cpu/cpu_kernels.h"

/* Index of y's element paired with x's element i: y broadcasts as one row of `cols`. */
#define PAIRED(i, cols, y_is_row) ((y_is_row) ? (i) % (cols) : (i))

#define DEFINE_BINARY(T, SUFFIX)                                                                   \
    static void binary_##SUFFIX(ct_binary_op op, const T *a, const T *b, T *out, int64_t n,          \
                                int64_t cols, int b_is_row) {                                        \
        if (op == CT_BINARY_ADD) {                                                                   \
            _Pragma("omp parallel for schedule(static) if (n > CT_CPU_PARALLEL_MIN)")                \
            for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[PAIRED(i, cols, b_is_row)];            \
        } else {                                                                                     \
            _Pragma("omp parallel for schedule(static) if (n > CT_CPU_PARALLEL_MIN)")                \
            for (int64_t i = 0; i < n; i++) out[i] = a[i] * b[PAIRED(i, cols, b_is_row)];            \
        }                                                                                            \
    }                                                                                                \
    static void axpby_##SUFFIX(T alpha, const T *x, T beta, T *y, int64_t n) {                      \
        _Pragma("omp parallel for schedule(static) if (n > CT_CPU_PARALLEL_MIN)")                    \
        for (int64_t i = 0; i < n; i++) y[i] = alpha * x[i] + beta * y[i];                           \
    }                                                                                                \
    static void mul_accumulate_##SUFFIX(const T *x, const T *y, T *dst, int64_t n, int64_t cols,     \
                                        int y_is_row) {                                              \
        _Pragma("omp parallel for schedule(static) if (n > CT_CPU_PARALLEL_MIN)")                    \
        for (int64_t i = 0; i < n; i++) dst[i] += x[i] * y[PAIRED(i, cols, y_is_row)];               \
    }                                                                                                \
    /* Columns are split across threads; each column sums its rows in order: deterministic. */      \
    static void sum_rows_accumulate_##SUFFIX(const T *x, const T *y, T *dst, int64_t rows,           \
                                             int64_t cols) {                                         \
        _Pragma("omp parallel for schedule(static) if (rows * cols > CT_CPU_PARALLEL_MIN)")          \
        for (int64_t c = 0; c < cols; c++) {                                                         \
            double total = 0;                                                                        \
            for (int64_t r = 0; r < rows; r++)                                                       \
                total += (double)x[r * cols + c] * (y ? (double)y[r * cols + c] : 1.0);              \
            dst[c] += (T)total;                                                                      \
        }                                                                                            \
    }                                                                                                \
    static void add_scalar_##SUFFIX(T *dst, T value, int64_t n) {                                   \
        for (int64_t i = 0; i < n; i++) dst[i] += value;                                             \
    }

DEFINE_BINARY(float, f32)
DEFINE_BINARY(double, f64)

static int is_row_of(const ct_tensor *b, const ct_tensor *a) {
    return ct_numel(b) != ct_numel(a) && ct_numel(b) == ct_cols(a);
}

int ct_cpu_binary(ct_binary_op op, const ct_tensor *a, const ct_tensor *b, ct_tensor *out) {
    int64_t n = ct_numel(a), cols = ct_cols(a);
    int b_is_row = is_row_of(b, a);
    if (a->dtype == CT_F64)
        binary_f64(op, a->data, b->data, out->data, n, cols, b_is_row);
    else
        binary_f32(op, a->data, b->data, out->data, n, cols, b_is_row);
    return 0;
}

int ct_cpu_axpby(double alpha, const ct_tensor *x, double beta, ct_tensor *y) {
    if (y->dtype == CT_F64)
        axpby_f64(alpha, x->data, beta, y->data, ct_numel(y));
    else
        axpby_f32((float)alpha, x->data, (float)beta, y->data, ct_numel(y));
    return 0;
}

int ct_cpu_mul_accumulate(const ct_tensor *x, const ct_tensor *y, ct_tensor *dst) {
    int64_t n = ct_numel(x), cols = ct_cols(x);
    int y_is_row = is_row_of(y, x);
    if (x->dtype == CT_F64)
        mul_accumulate_f64(x->data, y->data, dst->data, n, cols, y_is_row);
    else
        mul_accumulate_f32(x->data, y->data, dst->data, n, cols, y_is_row);
    return 0;
}

int ct_cpu_sum_rows_accumulate(const ct_tensor *x, const ct_tensor *y, ct_tensor *dst) {
    int64_t rows = ct_rows(x), cols = ct_cols(x);
    if (x->dtype == CT_F64)
        sum_rows_accumulate_f64(x->data, y ? y->data : NULL, dst->data, rows, cols);
    else
        sum_rows_accumulate_f32(x->data, y ? y->data : NULL, dst->data, rows, cols);
    return 0;
}

int ct_cpu_add_scalar(ct_tensor *dst, double value) {
    if (dst->dtype == CT_F64)
        add_scalar_f64(dst->data, value, ct_numel(dst));
    else
        add_scalar_f32(dst->data, (float)value, ct_numel(dst));
    return 0;
}
