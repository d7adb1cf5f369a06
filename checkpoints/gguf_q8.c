/* GGUF tensor types: sizes, and the Q8_0 quantizer.
 *
 * Q8_0 is ggml's reference quantizer, reproduced exactly so that a file ctune writes holds the
 * bytes llama.cpp's converter would write for the same f32 weights: per block of 32 values,
 * d = amax / 127 in fp32, q = roundf(x * (1 / d)) (roundf rounds half away from zero), and d is
 * stored as fp16 (nearest even). Values are q * fp16(d): the fp16 rounding of d is part of the
 * error, which the export's per-tensor report measures. */
#include <math.h>
#include <string.h>

#include "checkpoints/gguf.h"
#include "core/dtype.h"

const char *ct_gguf_type_name(ct_gguf_type type) {
    switch (type) {
    case CT_GGUF_F32: return "F32";
    case CT_GGUF_F16: return "F16";
    case CT_GGUF_Q8_0: return "Q8_0";
    case CT_GGUF_BF16: return "BF16";
    }
    return "unknown";
}

uint64_t ct_gguf_nbytes(ct_gguf_type type, int64_t row, int64_t rows) {
    if (row <= 0 || rows <= 0) return 0;
    uint64_t r = (uint64_t)row, n = (uint64_t)rows;
    uint64_t row_bytes;
    switch (type) {
    case CT_GGUF_F32: row_bytes = r * 4; break;
    case CT_GGUF_F16:
    case CT_GGUF_BF16: row_bytes = r * 2; break;
    case CT_GGUF_Q8_0:
        if (r % CT_GGUF_Q8_0_BLOCK) return 0;
        row_bytes = r / CT_GGUF_Q8_0_BLOCK * CT_GGUF_Q8_0_BYTES;
        break;
    default: return 0;
    }
    if (row_bytes / r > 4 || n > UINT64_MAX / row_bytes) return 0; /* overflow: refused like a bad size */
    return row_bytes * n;
}

void ct_gguf_q8_0_quantize_row(const float *x, int64_t n, uint8_t *out) {
    for (int64_t b = 0; b < n / CT_GGUF_Q8_0_BLOCK; b++) {
        const float *v = x + b * CT_GGUF_Q8_0_BLOCK;
        uint8_t *block = out + b * CT_GGUF_Q8_0_BYTES;
        float amax = 0.0f;
        for (int i = 0; i < CT_GGUF_Q8_0_BLOCK; i++) amax = fmaxf(amax, fabsf(v[i]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        uint16_t dh = ct_f32_to_f16(d);
        memcpy(block, &dh, 2); /* little-endian hosts only, as the rest of ctune's file code */
        for (int i = 0; i < CT_GGUF_Q8_0_BLOCK; i++) block[2 + i] = (uint8_t)(int8_t)roundf(v[i] * id);
    }
}

void ct_gguf_q8_0_dequantize_row(const uint8_t *blocks, int64_t n, float *out) {
    for (int64_t b = 0; b < n / CT_GGUF_Q8_0_BLOCK; b++) {
        const uint8_t *block = blocks + b * CT_GGUF_Q8_0_BYTES;
        uint16_t dh;
        memcpy(&dh, block, 2);
        const float d = ct_f16_to_f32(dh);
        for (int i = 0; i < CT_GGUF_Q8_0_BLOCK; i++) out[b * CT_GGUF_Q8_0_BLOCK + i] = (float)(int8_t)block[2 + i] * d;
    }
}
