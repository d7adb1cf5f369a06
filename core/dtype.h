/* Element types. f64 exists for gradient checks; bf16/f16 for storage of weights and
 * activations; i32 for token ids; i8 for quantized weights, which carry f32 scales. */
#ifndef CT_DTYPE_H
#define CT_DTYPE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* CT_I64 only carries file metadata (compressed-tensors' weight_shape); no op computes in it. */
typedef enum { CT_F32, CT_F64, CT_BF16, CT_F16, CT_I32, CT_I8, CT_I64, CT_DTYPE_COUNT } ct_dtype;

size_t ct_dtype_size(ct_dtype dtype);
const char *ct_dtype_name(ct_dtype dtype);
/* f32 and f64: the types ops compute in and gradients flow through. */
int ct_dtype_is_real(ct_dtype dtype);

/* bf16 = the top 16 bits of an f32, rounded to nearest even; NaN stays NaN. */
static inline uint16_t ct_f32_to_bf16(float x) {
    union { float f; uint32_t u; } v = {x};
    if ((v.u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((v.u >> 16) | 0x40);
    v.u += 0x7fffu + ((v.u >> 16) & 1u);
    return (uint16_t)(v.u >> 16);
}

static inline float ct_bf16_to_f32(uint16_t x) {
    union { uint32_t u; float f; } v = {(uint32_t)x << 16};
    return v.f;
}

uint16_t ct_f32_to_f16(float x);
float ct_f16_to_f32(uint16_t x);

/* Bulk f32 <-> bf16 conversion of n contiguous values, bit-identical to the scalar forms above
 * (round to nearest even, NaN kept quiet, subnormals rounded like any other value). The fastest
 * path this CPU supports is picked at run time, so the build needs no -march flags. */
void ct_f32_to_bf16_array(const float *src, uint16_t *dst, int64_t n);
void ct_bf16_to_f32_array(const uint16_t *src, float *dst, int64_t n);

/* The conversion paths, slowest first. AVX512-BF16 rounds with vcvtne2ps2bf16, which flushes
 * subnormal inputs to zero, so that path redoes any vector holding one with integer rounding. */
typedef enum { CT_BF16_SCALAR, CT_BF16_AVX2, CT_BF16_AVX512F, CT_BF16_AVX512BF16, CT_BF16_PATH_COUNT } ct_bf16_path;

const char *ct_bf16_path_name(ct_bf16_path path);
int ct_bf16_path_supported(ct_bf16_path path);
/* The path the array functions use on this CPU. */
ct_bf16_path ct_bf16_best_path(void);
/* Conversions through one given path, for tests that compare the paths; -1 when this CPU (or
 * this compiler) lacks it. */
int ct_f32_to_bf16_via(ct_bf16_path path, const float *src, uint16_t *dst, int64_t n);
int ct_bf16_to_f32_via(ct_bf16_path path, const uint16_t *src, float *dst, int64_t n);

#ifdef __cplusplus
}
#endif

#endif
