/* RMSNorm over the last dimension (HF LlamaRMSNorm): y = x * rstd * w, rstd = 1/sqrt(mean(x^2) + eps).
 *
 * A row is walked in spans of CT_CPU_SPAN columns (bf16 x, w or y converted span by span, see
 * kernels/cpu/cpu_kernels.h). Row sums are vectorized (omp simd) in double and added span by
 * span: their order depends on the machine's vector width (AVX2 / AVX-512 clones), never on the
 * thread count, so a machine gives bit-identical results with any number of threads. The weight
 * gradient is summed per block of RMS_ROW_BLOCK rows into its own partial row, and the partials
 * are added in block order. rstd and the gradients are f32 for f32 and bf16 rows. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "kernels/cpu/cpu_kernels.h"

#define RMS_ROW_BLOCK 32

#define DEFINE_RMS_SPANS(T, SUFFIX, CLONES)                                                        \
    /* sum of x[c] * y[c] * z[c] (z == NULL: of x[c] * y[c]) in double */                          \
    CLONES static double dot_##SUFFIX(const T *restrict x, const T *restrict y, const T *restrict z, \
                                      int64_t n) {                                                 \
        double total = 0;                                                                          \
        if (z) {                                                                                   \
            _Pragma("omp simd reduction(+ : total)")                                               \
            for (int64_t i = 0; i < n; i++) total += (double)(x[i] * y[i] * z[i]);                 \
        } else {                                                                                   \
            _Pragma("omp simd reduction(+ : total)")                                               \
            for (int64_t i = 0; i < n; i++) total += (double)(x[i] * y[i]);                        \
        }                                                                                          \
        return total;                                                                              \
    }                                                                                              \
    CLONES static void scale_##SUFFIX(const T *restrict x, const T *restrict w, T s, T *restrict y, \
                                      int64_t n) {                                                 \
        _Pragma("omp simd")                                                                        \
        for (int64_t c = 0; c < n; c++) y[c] = x[c] * s * w[c];                                    \
    }                                                                                              \
    /* gx += s * g * w - k * x;  part += g * x * s (either target may be NULL) */                  \
    CLONES static void grad_##SUFFIX(const T *restrict x, const T *restrict w, const T *restrict g, \
                                     T s, T k, T *restrict gx, T *restrict part, int64_t n) {      \
        if (gx) {                                                                                  \
            _Pragma("omp simd")                                                                    \
            for (int64_t c = 0; c < n; c++) gx[c] += s * g[c] * w[c] - k * x[c];                   \
        }                                                                                          \
        if (part) {                                                                                \
            _Pragma("omp simd")                                                                    \
            for (int64_t c = 0; c < n; c++) part[c] += g[c] * x[c] * s;                            \
        }                                                                                          \
    }

DEFINE_RMS_SPANS(float, f32, CT_CPU_CLONES)
DEFINE_RMS_SPANS(double, f64, )

/* The operands of one row, as typed pointers (f64) or tensors read span by span (f32 / bf16). */
typedef struct {
    const ct_tensor *x, *w, *g;
    ct_tensor *y;
    int64_t cols;
} rms_row;

static void forward_row_f64(const rms_row *a, int64_t r, double eps, double *rstd) {
    const double *x = (const double *)a->x->data + r * a->cols, *w = a->w->data;
    double s = 1.0 / sqrt(dot_f64(x, x, NULL, a->cols) / (double)a->cols + eps);
    rstd[r] = s;
    scale_f64(x, w, s, (double *)a->y->data + r * a->cols, a->cols);
}

static void forward_row_f32(const rms_row *a, int64_t r, double eps, float *rstd) {
    float xb[CT_CPU_SPAN], wb[CT_CPU_SPAN], yb[CT_CPU_SPAN];
    int64_t cols = a->cols, at = r * cols;
    double squares = 0;
    for (int64_t c0 = 0; c0 < cols; c0 += CT_CPU_SPAN) {
        int64_t n = ct_cpu_min64(CT_CPU_SPAN, cols - c0);
        const float *x = ct_cpu_span_in(a->x, at + c0, n, xb);
        squares += dot_f32(x, x, NULL, n);
    }
    float s = (float)(1.0 / sqrt(squares / (double)cols + eps));
    rstd[r] = s;
    for (int64_t c0 = 0; c0 < cols; c0 += CT_CPU_SPAN) {
        int64_t n = ct_cpu_min64(CT_CPU_SPAN, cols - c0);
        ct_cpu_prefetch_span(a->x, at + cols + c0); /* the next row, while this one is written */
        float *y = ct_cpu_span_out(a->y, at + c0, yb);
        scale_f32(ct_cpu_span_in(a->x, at + c0, n, xb), ct_cpu_span_in(a->w, c0, n, wb), s, y, n);
        ct_cpu_span_store(a->y, at + c0, n, yb);
    }
}

/* A bf16 weight is shared by every row: widen it once, into *copy (an f32 header over heap
 * memory the caller frees), rather than once per row. */
static const ct_tensor *weight_f32(const ct_tensor *weight, ct_tensor *copy) {
    if (weight->dtype != CT_BF16) return weight;
    int64_t n = ct_numel(weight);
    *copy = *weight;
    copy->dtype = CT_F32;
    copy->data = ct_malloc((size_t)n * sizeof(float) + 1, "rms_norm f32 weight");
    if (!copy->data) return NULL;
    ct_bf16_to_f32_array(weight->data, copy->data, n);
    return copy;
}

int ct_cpu_rms_norm_forward(const ct_tensor *x, const ct_tensor *weight, double eps, ct_tensor *rstd, ct_tensor *y) {
    int64_t rows = ct_rows(x), cols = ct_cols(x);
    ct_tensor copy = {.data = NULL};
    const ct_tensor *w = weight_f32(weight, &copy);
    if (!w) return -1;
    rms_row a = {.x = x, .w = w, .y = y, .cols = cols};
#pragma omp parallel for schedule(static) if (rows * cols > CT_CPU_PARALLEL_MIN)
    for (int64_t r = 0; r < rows; r++) {
        if (x->dtype == CT_F64) forward_row_f64(&a, r, eps, rstd->data);
        else forward_row_f32(&a, r, eps, rstd->data);
    }
    free(copy.data);
    return 0;
}

/* gx += s * g * w - x * s^3 / D * sum(g * w * x);  part += g * x * s */
static void backward_row_f64(const rms_row *a, int64_t r, double s, double *gx, double *part) {
    int64_t cols = a->cols;
    const double *x = (const double *)a->x->data + r * cols, *w = a->w->data;
    const double *g = (const double *)a->g->data + r * cols;
    double k = gx ? dot_f64(g, w, x, cols) * s * s * s / (double)cols : 0;
    grad_f64(x, w, g, s, k, gx ? gx + r * cols : NULL, part, cols);
}

static void backward_row_f32(const rms_row *a, int64_t r, float s, float *gx, float *part) {
    float xb[CT_CPU_SPAN], wb[CT_CPU_SPAN];
    int64_t cols = a->cols, at = r * cols;
    const float *g = (const float *)a->g->data + at;
    float k = 0;
    if (gx) {
        double gwx = 0;
        for (int64_t c0 = 0; c0 < cols; c0 += CT_CPU_SPAN) {
            int64_t n = ct_cpu_min64(CT_CPU_SPAN, cols - c0);
            gwx += dot_f32(g + c0, ct_cpu_span_in(a->w, c0, n, wb), ct_cpu_span_in(a->x, at + c0, n, xb), n);
        }
        k = (float)(gwx * (double)s * (double)s * (double)s / (double)cols);
    }
    for (int64_t c0 = 0; c0 < cols; c0 += CT_CPU_SPAN) {
        int64_t n = ct_cpu_min64(CT_CPU_SPAN, cols - c0);
        grad_f32(ct_cpu_span_in(a->x, at + c0, n, xb), ct_cpu_span_in(a->w, c0, n, wb), g + c0, s, k,
                 gx ? gx + at + c0 : NULL, part ? part + c0 : NULL, n);
    }
}

static void add_partials(const ct_tensor *grad_weight, const void *partials, int64_t n_blocks, int64_t cols) {
    bool f64 = grad_weight->dtype == CT_F64;
#pragma omp parallel for schedule(static) if (n_blocks * cols > CT_CPU_PARALLEL_MIN)
    for (int64_t c = 0; c < cols; c++) {
        double total = 0;
        for (int64_t b = 0; b < n_blocks; b++)
            total += f64 ? ((const double *)partials)[b * cols + c] : (double)((const float *)partials)[b * cols + c];
        if (f64) ((double *)grad_weight->data)[c] += total;
        else ((float *)grad_weight->data)[c] += (float)total;
    }
}

int ct_cpu_rms_norm_backward(const ct_tensor *x, const ct_tensor *weight, const ct_tensor *rstd,
                             const ct_tensor *grad_y, ct_tensor *grad_x, ct_tensor *grad_weight) {
    int64_t rows = ct_rows(x), cols = ct_cols(x);
    int64_t n_blocks = (rows + RMS_ROW_BLOCK - 1) / RMS_ROW_BLOCK;
    bool f64 = x->dtype == CT_F64;
    size_t esize = f64 ? sizeof(double) : sizeof(float);
    char *partials = NULL;
    if (grad_weight) {
        partials = ct_malloc((size_t)n_blocks * (size_t)cols * esize, "rms_norm weight-gradient partials");
        if (!partials) return -1;
    }
    ct_tensor copy = {.data = NULL};
    const ct_tensor *w = weight_f32(weight, &copy);
    if (!w) {
        free(partials);
        return -1;
    }
    rms_row a = {.x = x, .w = w, .g = grad_y, .cols = cols};
#pragma omp parallel for schedule(static) if (rows * cols > CT_CPU_PARALLEL_MIN)
    for (int64_t b = 0; b < n_blocks; b++) {
        void *part = partials ? partials + (size_t)(b * cols) * esize : NULL;
        if (part) memset(part, 0, (size_t)cols * esize);
        for (int64_t r = b * RMS_ROW_BLOCK; r < ct_cpu_min64((b + 1) * RMS_ROW_BLOCK, rows); r++) {
            if (f64)
                backward_row_f64(&a, r, ((const double *)rstd->data)[r], grad_x ? grad_x->data : NULL, part);
            else
                backward_row_f32(&a, r, ((const float *)rstd->data)[r], grad_x ? grad_x->data : NULL, part);
        }
    }
    if (partials) add_partials(grad_weight, partials, n_blocks, cols);
    free(partials);
    free(copy.data);
    return 0;
}
