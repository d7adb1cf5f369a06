/* bf16 GEMMs on the CPU (kernels/cpu/cpu_bf16_gemm.h): ct_cpu_gemm with a bf16 operand beside a
 * bf16 or f32 one, into f32 or bf16, every transpose, beta 0 and 1, on random odd-sized operands,
 * against the f64 product of the operands as stored, norm-wise: 1e-5 into f32 (f32 summation),
 * 4e-3 into bf16 (one rounding), on whichever path this machine and environment choose (the
 * hardware path for bf16 x bf16 where the CPU has AVX512-BF16, f32 tiles otherwise).
 *
 *   test_bf16_gemm              the path in use (ctest runs it twice: as is, and with
 *                               CT_GEMM_BF16=widen)
 *   test_bf16_gemm --hardware   the hardware path only: ct_cpu_gemm must take it (the same bits
 *                               as calling it directly), and its primitive cache must survive more
 *                               shapes than it holds; skipped (77) where the CPU lacks AVX512-BF16
 *
 * The rounding of the output gradient in a mixed-precision backward is checked in
 * tests/test_mixed_precision.c. */
#include <stdint.h>

#include "core/arena.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "kernels/cpu/cpu_bf16_gemm.h"
#include "kernels/cpu/cpu_kernels.h"
#include "tests/ct_test.h"

typedef struct {
    int64_t M, N, K;
} shape;

static const shape shapes[] = {{37, 53, 29}, {1, 17, 9}, {129, 17, 301}, {300, 7, 133}};

/* A [rows, cols] tensor of uniform values in [-1, 1), stored in dtype (bf16: rounded). */
static ct_tensor *random_tensor(ct_rng *rng, ct_dtype dtype, int64_t rows, int64_t cols) {
    ct_tensor *t = ct_tensor_new(dtype, 2, (int64_t[]){rows, cols}, "operand");
    for (int64_t i = 0; i < rows * cols; i++) {
        float v = (float)(2.0 * ct_rng_uniform(rng) - 1.0);
        if (dtype == CT_BF16) ((uint16_t *)t->data)[i] = ct_f32_to_bf16(v);
        else ((float *)t->data)[i] = v;
    }
    return t;
}

/* Element i of t as a double. */
static double element(const ct_tensor *t, int64_t i) {
    if (t->dtype == CT_BF16) return ct_bf16_to_f32(((const uint16_t *)t->data)[i]);
    return ((const float *)t->data)[i];
}

/* want[M, N] = op(a) op(b) + beta * c0, in f64. */
static void reference(const ct_tensor *a, bool ta, const ct_tensor *b, bool tb, const ct_tensor *c0, double beta,
                      shape s, double *want) {
    for (int64_t i = 0; i < s.M; i++)
        for (int64_t j = 0; j < s.N; j++) {
            double sum = 0;
            for (int64_t k = 0; k < s.K; k++)
                sum += element(a, ta ? k * s.M + i : i * s.K + k) * element(b, tb ? j * s.K + k : k * s.N + j);
            want[i * s.N + j] = sum + beta * element(c0, i * s.N + j);
        }
}

static double relative_error(const ct_tensor *c, const double *want, int64_t n) {
    double diff = 0, norm = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = element(c, i) - want[i];
        diff += d * d;
        norm += want[i] * want[i];
    }
    return sqrt(diff / norm);
}

static void check_case(ct_rng *rng, shape s, bool ta, bool tb, ct_dtype da, ct_dtype db, ct_dtype dc, double beta) {
    ct_tensor *a = ta ? random_tensor(rng, da, s.K, s.M) : random_tensor(rng, da, s.M, s.K);
    ct_tensor *b = tb ? random_tensor(rng, db, s.N, s.K) : random_tensor(rng, db, s.K, s.N);
    ct_tensor *c0 = random_tensor(rng, dc, s.M, s.N), *c = random_tensor(rng, dc, s.M, s.N);
    if (beta != 0) memcpy(c->data, c0->data, (size_t)(s.M * s.N) * ct_dtype_size(dc));
    else if (dc == CT_F32) /* beta = 0 must not read C: NaN there must not reach the result */
        for (int64_t i = 0; i < s.M * s.N; i++) ((float *)c->data)[i] = NAN;
    double *want = malloc(sizeof(double) * (size_t)(s.M * s.N));
    reference(a, ta, b, tb, c0, beta, s, want);
    int rc = ct_cpu_gemm(a, ta, b, tb, c, 1.0, beta);
    CHECK(rc == 0, "ct_cpu_gemm failed: %s", ct_last_error());
    const double limit = dc == CT_BF16 ? 4e-3 : 1e-5; /* a bf16 C is rounded once: 2^-9 per element */
    double err = relative_error(c, want, s.M * s.N);
    CHECK(err < limit, "%s, %lldx%lldx%lld %c%c, %s x %s -> %s, beta %g: relative error %.3g (limit %g)",
          ct_cpu_bf16_gemm_path(), (long long)s.M, (long long)s.N, (long long)s.K, ta ? 'T' : 'N', tb ? 'T' : 'N',
          ct_dtype_name(da), ct_dtype_name(db), ct_dtype_name(dc), beta, err, limit);
    free(want);
    ct_tensor_free(a), ct_tensor_free(b), ct_tensor_free(c0), ct_tensor_free(c);
}

static void check_path(void) {
    ct_rng rng;
    ct_rng_seed(&rng, 20261208);
    const ct_dtype combos[][3] = {{CT_BF16, CT_BF16, CT_F32}, {CT_F32, CT_BF16, CT_F32}, {CT_BF16, CT_F32, CT_F32},
                                  {CT_BF16, CT_BF16, CT_BF16}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int t = 0; t < 4; t++)
            for (size_t d = 0; d < sizeof combos / sizeof combos[0]; d++)
                for (int beta = 0; beta <= 1; beta++)
                    check_case(&rng, shapes[i], t & 1, t & 2, combos[d][0], combos[d][1], combos[d][2], beta);
}

/* ct_cpu_gemm must take the hardware path: the same bits as ct_cpu_bf16_gemm called directly;
 * and more distinct shapes than the primitive cache holds, then the first again, stay right. */
static void check_hardware_dispatch(void) {
    ct_rng rng;
    ct_rng_seed(&rng, 7);
    shape s = {45, 19, 71};
    ct_tensor *a = random_tensor(&rng, CT_BF16, s.K, s.M), *b = random_tensor(&rng, CT_BF16, s.N, s.K);
    ct_tensor *c = random_tensor(&rng, CT_F32, s.M, s.N), *direct = random_tensor(&rng, CT_F32, s.M, s.N);
    CHECK(ct_cpu_gemm(a, true, b, true, c, 1.0, 0.0) == 0, "ct_cpu_gemm: %s", ct_last_error());
    CHECK(ct_cpu_bf16_gemm(true, true, s.M, s.N, s.K, a->data, s.M, b->data, s.K, false, direct->data, false) == 0,
          "ct_cpu_bf16_gemm: %s", ct_last_error());
    CHECK(!memcmp(c->data, direct->data, sizeof(float) * (size_t)(s.M * s.N)),
          "ct_cpu_gemm did not take the hardware path (its bits differ from a direct call)");
    for (int64_t m = 1; m <= 130; m++) { /* 130 shapes: more than the cache's 96 slots */
        shape t = {m, 3, 5};
        ct_tensor *x = random_tensor(&rng, CT_BF16, t.M, t.K), *y = random_tensor(&rng, CT_BF16, t.K, t.N);
        ct_tensor *z = random_tensor(&rng, CT_F32, t.M, t.N);
        double *want = malloc(sizeof(double) * (size_t)(t.M * t.N));
        reference(x, false, y, false, z, 0.0, t, want);
        CHECK(ct_cpu_gemm(x, false, y, false, z, 1.0, 0.0) == 0, "ct_cpu_gemm: %s", ct_last_error());
        double err = relative_error(z, want, t.M * t.N);
        CHECK(err < 1e-5, "shape %lld of the cache sweep: relative error %.3g", (long long)m, err);
        free(want);
        ct_tensor_free(x), ct_tensor_free(y), ct_tensor_free(z);
    }
    CHECK(ct_cpu_gemm(a, true, b, true, direct, 1.0, 0.0) == 0, "ct_cpu_gemm: %s", ct_last_error());
    CHECK(!memcmp(c->data, direct->data, sizeof(float) * (size_t)(s.M * s.N)),
          "the first shape, rebuilt after the cache turned over, gave other bits");
    ct_tensor_free(a), ct_tensor_free(b), ct_tensor_free(c), ct_tensor_free(direct);
}

int main(int argc, char **argv) {
    bool hardware_only = argc > 1 && !strcmp(argv[1], "--hardware");
    printf("bf16 gemm: %s\n", ct_cpu_bf16_gemm_path());
    if (hardware_only) {
        if (!ct_cpu_bf16_gemm_available()) {
            char reason[160];
            snprintf(reason, sizeof reason, "the hardware bf16 GEMM is not used here: %s", ct_cpu_bf16_gemm_path());
            ct_test_note_skip("test_bf16_gemm_hardware", reason);
            return 77;
        }
        check_hardware_dispatch();
    } else {
        check_path();
    }
    return ct_test_finish(hardware_only ? "test_bf16_gemm --hardware" : "test_bf16_gemm");
}
