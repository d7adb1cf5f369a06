/* Element types. f64 exists for gradient checks; bf16/f16 for storage of weights and
 * activations; i32 for token ids; i8 for quantized weights, which carry f32 scales. */
#ifndef CT_DTYPE_H
#define CT_DTYPE_H

#include <stddef.h>
#include <stdint.h>

typedef enum { CT_F32, CT_F64, CT_BF16, CT_F16, CT_I32, CT_I8, CT_DTYPE_COUNT } ct_dtype;

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

#endif
