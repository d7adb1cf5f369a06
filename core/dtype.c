#include "core/dtype.h"

#include <math.h>
#include <string.h>

static const size_t dtype_sizes[CT_DTYPE_COUNT] = {4, 8, 2, 2, 4, 1, 8};
static const char *const dtype_names[CT_DTYPE_COUNT] = {"f32", "f64", "bf16", "f16", "i32", "i8", "i64"};

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

/* Bulk bf16 conversion. Narrowing is integer arithmetic on the f32 bits (add 0x7fff plus the
 * lowest kept bit, keep the top half; NaN keeps its top half with the quiet bit set), which every
 * vector width computes identically; AVX512-BF16 has one instruction for it. Widening is a shift. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CT_BF16_X86 1
#include <immintrin.h>
#endif

static void narrow_scalar(const float *src, uint16_t *dst, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = ct_f32_to_bf16(src[i]);
}

static void widen_scalar(const uint16_t *src, float *dst, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = ct_bf16_to_f32(src[i]);
}

#ifdef CT_BF16_X86
/* Every vector function finishes its tail itself rather than calling the scalar loop: leaving an
 * AVX function by a jump into SSE code skips the vzeroupper GCC puts before returns, and SSE code
 * run with dirty upper registers is several times slower (libm's sincos among it). */
#define AVX2 __attribute__((target("avx2")))
#define AVX512 __attribute__((target("avx512f")))
#define AVX512BF16 __attribute__((target("avx512f,avx512bf16")))

/* Eight f32 bit patterns to their bf16 patterns, one per 32-bit lane. */
AVX2 static inline __m256i round8(__m256i u) {
    __m256i lowest_kept = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    __m256i rounded = _mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7fff), lowest_kept));
    __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff)),
                                     _mm256_set1_epi32(0x7f800000));
    __m256i quiet = _mm256_or_si256(u, _mm256_set1_epi32(0x00400000));
    return _mm256_srli_epi32(_mm256_blendv_epi8(rounded, quiet, nan), 16);
}

AVX2 static void narrow_avx2(const float *src, uint16_t *dst, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i lo = round8(_mm256_loadu_si256((const __m256i *)(src + i)));
        __m256i hi = round8(_mm256_loadu_si256((const __m256i *)(src + i + 8)));
        /* packus interleaves 128-bit halves (lo0 hi0 lo1 hi1); the permute restores the order. */
        __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(lo, hi), 0xd8);
        _mm256_storeu_si256((__m256i *)(dst + i), packed);
    }
    for (; i < n; i++) dst[i] = ct_f32_to_bf16(src[i]);
}

AVX2 static void widen_avx2(const uint16_t *src, float *dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(src + i)));
        _mm256_storeu_si256((__m256i *)(dst + i), _mm256_slli_epi32(wide, 16));
    }
    for (; i < n; i++) dst[i] = ct_bf16_to_f32(src[i]);
}

AVX512 static inline __m256i round16(__m512i u) {
    __m512i lowest_kept = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i rounded = _mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), lowest_kept));
    __mmask16 nan = _mm512_cmpgt_epi32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
                                            _mm512_set1_epi32(0x7f800000));
    __m512i kept = _mm512_mask_blend_epi32(nan, rounded, _mm512_or_si512(u, _mm512_set1_epi32(0x00400000)));
    return _mm512_cvtepi32_epi16(_mm512_srli_epi32(kept, 16));
}

AVX512 static void narrow_avx512(const float *src, uint16_t *dst, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(dst + i), round16(_mm512_loadu_si512(src + i)));
    for (; i < n; i++) dst[i] = ct_f32_to_bf16(src[i]);
}

AVX512 static void widen_avx512(const uint16_t *src, float *dst, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(src + i)));
        _mm512_storeu_si512(dst + i, _mm512_slli_epi32(wide, 16));
    }
    for (; i < n; i++) dst[i] = ct_bf16_to_f32(src[i]);
}

/* Lanes holding a subnormal: 0 < |bits| < 0x00800000, i.e. |bits| - 1 < 0x007fffff unsigned. */
AVX512 static inline __mmask16 subnormal_lanes(__m512i u) {
    __m512i magnitude = _mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff));
    return _mm512_cmplt_epu32_mask(_mm512_sub_epi32(magnitude, _mm512_set1_epi32(1)), _mm512_set1_epi32(0x007fffff));
}

AVX512BF16 static void narrow_avx512bf16(const float *src, uint16_t *dst, int64_t n) {
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512i a = _mm512_loadu_si512(src + i), b = _mm512_loadu_si512(src + i + 16);
        if (subnormal_lanes(a) | subnormal_lanes(b)) { /* rare: the instruction would flush them to 0 */
            _mm256_storeu_si256((__m256i *)(dst + i), round16(a));
            _mm256_storeu_si256((__m256i *)(dst + i + 16), round16(b));
            continue;
        }
        __m512bh packed = _mm512_cvtne2ps_pbh(_mm512_castsi512_ps(b), _mm512_castsi512_ps(a));
        _mm512_storeu_si512(dst + i, (__m512i)packed);
    }
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(dst + i), round16(_mm512_loadu_si512(src + i)));
    for (; i < n; i++) dst[i] = ct_f32_to_bf16(src[i]);
}
#endif

int ct_bf16_path_supported(ct_bf16_path path) {
    switch (path) {
    case CT_BF16_SCALAR: return 1;
#ifdef CT_BF16_X86
    case CT_BF16_AVX2: return __builtin_cpu_supports("avx2") != 0;
    case CT_BF16_AVX512F: return __builtin_cpu_supports("avx512f") != 0;
    case CT_BF16_AVX512BF16: return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16");
#endif
    default: return 0;
    }
}

const char *ct_bf16_path_name(ct_bf16_path path) {
    static const char *const names[CT_BF16_PATH_COUNT] = {"scalar", "avx2", "avx512f", "avx512bf16"};
    return path < CT_BF16_PATH_COUNT ? names[path] : "?";
}

ct_bf16_path ct_bf16_best_path(void) {
    for (int path = CT_BF16_PATH_COUNT - 1; path > CT_BF16_SCALAR; path--)
        if (ct_bf16_path_supported((ct_bf16_path)path)) return (ct_bf16_path)path;
    return CT_BF16_SCALAR;
}

int ct_f32_to_bf16_via(ct_bf16_path path, const float *src, uint16_t *dst, int64_t n) {
    if (!ct_bf16_path_supported(path)) return -1;
    switch (path) {
#ifdef CT_BF16_X86
    case CT_BF16_AVX2: narrow_avx2(src, dst, n); break;
    case CT_BF16_AVX512F: narrow_avx512(src, dst, n); break;
    case CT_BF16_AVX512BF16: narrow_avx512bf16(src, dst, n); break;
#endif
    default: narrow_scalar(src, dst, n); break;
    }
    return 0;
}

int ct_bf16_to_f32_via(ct_bf16_path path, const uint16_t *src, float *dst, int64_t n) {
    if (!ct_bf16_path_supported(path)) return -1;
    switch (path) {
#ifdef CT_BF16_X86
    case CT_BF16_AVX2: widen_avx2(src, dst, n); break;
    case CT_BF16_AVX512F:
    case CT_BF16_AVX512BF16: widen_avx512(src, dst, n); break; /* the extension adds no widening */
#endif
    default: widen_scalar(src, dst, n); break;
    }
    return 0;
}

void ct_f32_to_bf16_array(const float *src, uint16_t *dst, int64_t n) {
    ct_f32_to_bf16_via(ct_bf16_best_path(), src, dst, n);
}

void ct_bf16_to_f32_array(const uint16_t *src, float *dst, int64_t n) {
    ct_bf16_to_f32_via(ct_bf16_best_path(), src, dst, n);
}
