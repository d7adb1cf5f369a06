#include "autograd/dtype.h"

#include <math.h>
#include <string.h>

static const size_t dtype_sizes[CT_DTYPE_COUNT] = {4, 8, 2, 2, 4, 1};
static const char *const dtype_names[CT_DTYPE_COUNT] = {"f32", "f64", "bf16", "f16", "i32", "i8"};

size_t ct_dtype_size(ct_dtype dtype) { return dtype < CT_DTYPE_COUNT ? dtype_sizes[dtype] : 0; }

const char *ct_dtype_name(ct_dtype dtype) { return dtype < CT_DTYPE_COUNT ? dtype_names[dtype] : "?"; }

int ct_dtype_is_real(ct_dtype dtype) { return dtype == CT_F32 || dtype == CT_F64; }

/* IEEE half precision, round to nearest even, with subnormals, infinities and NaN. */
uint16_t ct_f32_to_f16(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t abs_bits = u & 0x7fffffffu;
    if (abs_bits > 0x7f800000u) return sign | 0x7e00u;           /* NaN */
    if (abs_bits >= 0x477ff000u) return sign | 0x7c00u;          /* overflows to inf */
    if (abs_bits < 0x38800000u) {                                /* f16 subnormal or zero */
        float magnitude;
        memcpy(&magnitude, &abs_bits, sizeof magnitude);
        /* Scale so the subnormal's integer mantissa is the rounded value (rint: ties to even). */
        return sign | (uint16_t)rintf(magnitude * 16777216.0f);
    }
    uint32_t mantissa = abs_bits & 0x7fffffu;
    uint32_t exponent = (abs_bits >> 23) - 112u;
    uint32_t half = (exponent << 10) | (mantissa >> 13);
    uint32_t rest = mantissa & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (half & 1u))) half++;
    return sign | (uint16_t)half;
}

float ct_f16_to_f32(uint16_t x) {
    uint32_t sign = (uint32_t)(x & 0x8000u) << 16;
    uint32_t exponent = (x >> 10) & 0x1fu;
    uint32_t mantissa = x & 0x3ffu;
    float result;
    if (exponent == 0) {
        result = (float)mantissa / 16777216.0f;
        if (sign) result = -result;
        return result;
    }
    uint32_t bits = exponent == 31 ? sign | 0x7f800000u | (mantissa << 13)
                                   : sign | ((exponent + 112u) << 23) | (mantissa << 13);
    memcpy(&result, &bits, sizeof result);
    return result;
}
