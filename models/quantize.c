/* Per-output-channel symmetric INT8, matching compressed-tensors' arithmetic (see quantize.h). */
#include "models/quantize.h"

#include <float.h>
#include <math.h>

#include "core/error.h"

/* torch.round rounds half to even; rintf does the same in the default rounding mode, which
 * ctune never changes. */
static float round_half_even(float x) { return rintf(x); }

static float row_scale(const float *row, int64_t cols) {
    float lo = 0.0f, hi = 0.0f;
    for (int64_t c = 0; c < cols; c++) {
        lo = fminf(lo, row[c]);
        hi = fmaxf(hi, row[c]);
    }
    float absmax = fmaxf(-lo, hi);
    /* 255 / 2 in f32: compressed-tensors divides by half the bit range, not by 127. */
    float scale = absmax / 127.5f;
    return scale == 0.0f ? FLT_EPSILON : scale;
}

int ct_quantize_rows_i8(const float *w, int64_t rows, int64_t cols, int8_t *q, float *scale) {
    for (int64_t r = 0; r < rows; r++) {
        const float *row = w + r * cols;
        for (int64_t c = 0; c < cols; c++)
            if (!isfinite(row[c]))
                return ct_fail("quantize: row %lld column %lld is %g; an INT8 weight needs finite values "
                               "(the model has diverged or its file is damaged)",
                               (long long)r, (long long)c, (double)row[c]);
        float s = row_scale(row, cols);
        scale[r] = s;
        for (int64_t c = 0; c < cols; c++) {
            float x = row[c] / s;
            x = fminf(fmaxf(x, -128.0f), 127.0f);
            q[r * cols + c] = (int8_t)round_half_even(x);
        }
    }
    return 0;
}

void ct_dequantize_rows_i8(const int8_t *q, const float *scale, int64_t rows, int64_t cols, float *out) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) out[r * cols + c] = (float)q[r * cols + c] * scale[r];
}

ct_quant_error ct_quant_error_rows_i8(const float *w, const int8_t *q, const float *scale, int64_t rows,
                                      int64_t cols) {
    double err2 = 0, ref2 = 0, max_abs = 0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            double x = w[r * cols + c];
            double d = x - (double)((float)q[r * cols + c] * scale[r]);
            err2 += d * d;
            ref2 += x * x;
            max_abs = fmax(max_abs, fabs(d));
        }
    ct_quant_error e = {ref2 > 0 ? sqrt(err2 / ref2) : 0.0, max_abs};
    return e;
}
