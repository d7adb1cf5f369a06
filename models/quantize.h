/* Symmetric per-output-channel INT8 quantization of a weight matrix W [rows, cols]: one f32 scale
 * per row (output channel), q = round(clamp(w / scale, -128, 127)), w ≈ q * scale.
 *
 * The arithmetic is the one the compressed-tensors package (0.20.1) uses for a weight-only
 * `int`, 8-bit, symmetric, `channel` scheme, so an exported checkpoint holds exactly the integers
 * and scales that package would write for the same f32 weights (tests/reference/
 * make_int8_fixtures.py checks it against the package):
 *   lo = min(min(row), 0), hi = max(max(row), 0)        (0 must be representable)
 *   scale = max(|lo|, |hi|) / 127.5                      (bit range 255 over 2, in f32)
 *   scale = FLT_EPSILON when that is 0                   (an all-zero row; no division by 0)
 *   q = round_half_even(clamp(w / scale, -128, 127))     (f32 division, torch.round)
 * So the row's largest magnitude maps to ±127.5: +127.5 clamps to 127, -127.5 rounds to -128. */
#ifndef CT_QUANTIZE_H
#define CT_QUANTIZE_H

#include <stdint.h>

/* Quantizes rows × cols f32 weights (row-major) into q (rows × cols) and scale (rows). -1 with a
 * message naming the row and column of a value that is not finite. */
int ct_quantize_rows_i8(const float *w, int64_t rows, int64_t cols, int8_t *q, float *scale);

/* out = q * scale, row by row, in f32 (the product compressed-tensors dequantizes with). */
void ct_dequantize_rows_i8(const int8_t *q, const float *scale, int64_t rows, int64_t cols, float *out);

/* How far a quantized tensor is from the weights it came from. */
typedef struct ct_quant_error {
    double rel_rms; /* sqrt(Σ(w - q·s)² / Σw²); 0 for an all-zero tensor */
    double max_abs; /* max |w - q·s| */
} ct_quant_error;

ct_quant_error ct_quant_error_rows_i8(const float *w, const int8_t *q, const float *scale, int64_t rows,
                                      int64_t cols);

#endif
