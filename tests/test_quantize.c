/* Per-output-channel INT8 (models/quantize.h): hand-computed rows that exercise the 127.5 range,
 * the clamp, ties to even and the zero row; then every value, scale and packed word of a fixture
 * that the compressed-tensors package computed (tests/reference/make_int8_fixtures.py). */
#include <float.h>
#include <stdint.h>
#include <string.h>

#include "checkpoints/safetensors.h"
#include "core/arena.h"
#include "core/error.h"
#include "ct_test.h"
#include "ct_test_reference.h"
#include "models/quantize.h"

/* Scale 0.25 exactly (31.875 / 127.5), so every w / scale below is exact and the expected
 * integers follow by hand: 127.5 clamps to 127, -127.5 rounds (to even) to -128, 0.5 -> 0,
 * 1.5 -> 2, 2.5 -> 2, -1.5 -> -2, -2.5 -> -2. */
static void test_hand_rows(void) {
    const float w[3][6] = {{31.875f, -31.875f, 0.125f, 0.375f, 0.625f, -0.375f},
                           {0, 0, 0, 0, 0, 0},
                           {63.75f, 0.25f, 0.75f, 1.25f, -0.25f, 20.0f}};
    const int8_t want_q[3][6] = {{127, -128, 0, 2, 2, -2}, {0, 0, 0, 0, 0, 0}, {127, 0, 2, 2, 0, 40}};
    const float want_scale[3] = {0.25f, FLT_EPSILON, 0.5f};
    int8_t q[18];
    float scale[3];
    CHECK(ct_quantize_rows_i8(&w[0][0], 3, 6, q, scale) == 0, "%s", ct_last_error());
    for (int r = 0; r < 3; r++) {
        CHECK(scale[r] == want_scale[r], "row %d scale %.9g, want %.9g", r, scale[r], want_scale[r]);
        for (int c = 0; c < 6; c++)
            CHECK(q[r * 6 + c] == want_q[r][c], "row %d col %d: q %d, want %d", r, c, q[r * 6 + c], want_q[r][c]);
    }
    float back[18];
    ct_dequantize_rows_i8(q, scale, 3, 6, back);
    CHECK(back[1] == -32.0f && back[3] == 0.5f && back[17] == 20.0f, "dequantized %g %g %g", back[1], back[3], back[17]);
    /* Row 0 errs by 0.125 at 31.875 (127 * 0.25 = 31.75) and -31.875 (-32), 0.125 at 0.125, 0.625... */
    ct_quant_error e = ct_quant_error_rows_i8(&w[0][0], q, scale, 1, 6);
    double err2 = 5 * 0.125 * 0.125 + 0.125 * 0.125;
    double ref2 = 2 * 31.875 * 31.875 + 0.125 * 0.125 + 2 * 0.375 * 0.375 + 0.625 * 0.625;
    CHECK(fabs(e.max_abs - 0.125) < 1e-12, "max_abs %g, want 0.125", e.max_abs);
    CHECK(fabs(e.rel_rms - sqrt(err2 / ref2)) < 1e-12, "rel_rms %.12g, want %.12g", e.rel_rms, sqrt(err2 / ref2));
}

static void test_not_finite(void) {
    float w[4] = {1, 2, NAN, 3};
    int8_t q[4];
    float s[2];
    CHECK(ct_quantize_rows_i8(w, 2, 2, q, s) < 0, "a NaN weight was quantized");
    CHECK(strstr(ct_last_error(), "row 1 column 0") != NULL, "message: %s", ct_last_error());
}

/* q + 128 as unsigned bytes, four to a little-endian int32 word, the last word zero-padded: the
 * pack-quantized layout for 8 bits, compared with the words the package packed. */
static void check_packed(const int8_t *q, int64_t rows, int64_t cols, const ct_tensor *packed) {
    int64_t words = (cols + 3) / 4;
    CHECK(packed->shape[0] == rows && packed->shape[1] == words, "packed shape [%lld, %lld]",
          (long long)packed->shape[0], (long long)packed->shape[1]);
    int bad = 0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t k = 0; k < words; k++) {
            uint32_t word = 0;
            for (int64_t b = 0; b < 4; b++) {
                int64_t c = k * 4 + b;
                uint32_t byte = c < cols ? (uint32_t)(uint8_t)(q[r * cols + c] + 128) : 0;
                word |= byte << (8 * b);
            }
            if ((int32_t)word != ((const int32_t *)packed->data)[r * words + k]) bad++;
        }
    CHECK(bad == 0, "%d packed words differ from compressed-tensors'", bad);
}

static void test_fixture(void) {
    ct_safetensors *ref = ct_safetensors_open(ct_test_path("tests/fixtures/quantize/int8_rows.safetensors"));
    CHECK(ref != NULL, "%s", ct_last_error());
    if (!ref) return;
    ct_scope_begin();
    ct_tensor *w = ct_test_ref_tensor(ref, "weight"), *want_q = ct_test_ref_tensor(ref, "q");
    ct_tensor *want_scale = ct_test_ref_tensor(ref, "scale"), *packed = ct_test_ref_tensor(ref, "weight_packed");
    CHECK(w && want_q && want_scale && packed, "fixture tensors: %s", ct_last_error());
    if (w && want_q && want_scale && packed) {
        int64_t rows = w->shape[0], cols = w->shape[1];
        int8_t *q = ct_malloc((size_t)(rows * cols), "q");
        float *scale = ct_malloc((size_t)rows * sizeof(float), "scale");
        CHECK(ct_quantize_rows_i8(w->data, rows, cols, q, scale) == 0, "%s", ct_last_error());
        int bad_q = 0, bad_s = 0, extremes = 0;
        for (int64_t i = 0; i < rows * cols; i++) {
            bad_q += q[i] != ((const int32_t *)want_q->data)[i];
            extremes += q[i] == -128 || q[i] == 127;
        }
        for (int64_t r = 0; r < rows; r++) bad_s += memcmp(&scale[r], (const float *)want_scale->data + r, 4) != 0;
        CHECK(bad_q == 0, "%d of %lld integers differ from compressed-tensors'", bad_q, (long long)(rows * cols));
        CHECK(bad_s == 0, "%d of %lld scales differ bit for bit from compressed-tensors'", bad_s, (long long)rows);
        CHECK(extremes >= rows - 1, "only %d values at -128 or 127: the fixture misses the range's ends", extremes);
        check_packed(q, rows, cols, packed);
        free(q);
        free(scale);
    }
    ct_scope_end();
    ct_safetensors_close(ref);
}

int main(void) {
    test_hand_rows();
    test_not_finite();
    test_fixture();
    return ct_test_finish("test_quantize");
}
