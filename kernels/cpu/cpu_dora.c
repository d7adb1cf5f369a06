/* DoRA's weight norm on the CPU: norm[o] = ||W[o, :] + s · B[o, :]·A||₂ for a frozen W [out, in]
 * (f32, bf16, or i8 with its scales), A [r, in], B [out, r] (f32, or all f64 in gradient checks).
 *
 * W is widened a block of rows at a time (never a whole f32 copy of a bf16 or i8 base), the block's
 * s · B·A is added by one sgemm, and each row's sum of squares is taken in f64. This is peft's
 * W + scaling · (B @ A) in f32 followed by the row norm, without the [out, in] temporary. */
#include <cblas.h>
#include <math.h>

#include "core/arena.h"
#include "core/error.h"
#include "kernels/cpu/cpu_kernels.h"

#define DORA_ROWS 64

static int row_norms_f64(const ct_tensor *w, const ct_tensor *A, const ct_tensor *B, double scale, bool reciprocal, ct_tensor *norm) {
    const int64_t out = ct_rows(w), in = ct_cols(w), r = ct_rows(A);
    const double *W = w->data, *a = A->data, *b = B->data;
    double *n = norm->data;
#pragma omp parallel for schedule(static)
    for (int64_t o = 0; o < out; o++) {
        double sum = 0;
        for (int64_t i = 0; i < in; i++) {
            double v = 0;
            for (int64_t k = 0; k < r; k++) v += b[o * r + k] * a[k * in + i];
            v = W[o * in + i] + scale * v;
            sum += v * v;
        }
        n[o] = reciprocal ? 1 / sqrt(sum) : sqrt(sum);
    }
    return 0;
}

static int row_norms_f32(const ct_tensor *w, const ct_tensor *A, const ct_tensor *B, double scale, bool reciprocal, ct_tensor *norm) {
    const int64_t out = ct_rows(w), in = ct_cols(w), r = ct_rows(A);
    float *tile = ct_arena_alloc(sizeof(float) * (size_t)(DORA_ROWS * in));
    if (!tile) return -1;
    float *n = norm->data;
    for (int64_t o0 = 0; o0 < out; o0 += DORA_ROWS) {
        const int64_t rows = ct_cpu_min64(DORA_ROWS, out - o0);
        ct_cpu_widen_rows(w, o0, rows, tile);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)rows, (blasint)in, (blasint)r, (float)scale,
                    (const float *)B->data + o0 * r, (blasint)r, A->data, (blasint)in, 1.0f, tile, (blasint)in);
#pragma omp parallel for schedule(static) if (rows * in > CT_CPU_PARALLEL_MIN)
        for (int64_t o = 0; o < rows; o++) {
            double sum = 0;
            for (int64_t i = 0; i < in; i++) sum += (double)tile[o * in + i] * tile[o * in + i];
            n[o0 + o] = (float)(reciprocal ? 1 / sqrt(sum) : sqrt(sum));
        }
    }
    return 0;
}

int ct_cpu_dora_row_norms(const ct_tensor *w, const ct_tensor *A, const ct_tensor *B, double scale, bool reciprocal, ct_tensor *norm) {
    if (w->dtype == CT_F64) return row_norms_f64(w, A, B, scale, reciprocal, norm);
    CT_TRY(ct_scope_begin());
    const int status = row_norms_f32(w, A, B, scale, reciprocal, norm);
    ct_scope_end();
    return status;
}
