/* ct_sgemm, the f32 GEMM behind the matmuls (kernels/cpu/cpu_sgemm.h): with oneDNN (when ctune
 * was built with it) and then with OpenBLAS, on random odd-sized operands with every transpose,
 * padded leading dimensions and alpha/beta, against an f64 reference, norm-wise; beta = 0 must
 * not read C (fresh gradient buffers hold whatever the arena left there); K = 0 scales C by
 * beta; the same call twice gives the same bits; and the start-up check passes. */
#include <stdint.h>

#include "core/error.h"
#include "core/rng.h"
#include "kernels/cpu/cpu_blas.h"
#include "kernels/cpu/cpu_sgemm.h"
#include "tests/ct_test.h"

typedef struct {
    int64_t M, N, K;
} shape;

/* Sizes of the model's kinds (skinny rows x narrow projections, long K for weight gradients),
 * kept odd so that no kernel's edge case is a multiple of its block. */
static const shape shapes[] = {{37, 53, 29}, {1, 17, 9}, {129, 17, 301}, {11, 257, 131}, {300, 7, 513}};

static float *random_matrix(ct_rng *rng, int64_t n) {
    float *m = malloc((size_t)n * sizeof *m);
    for (int64_t i = 0; i < n; i++) m[i] = (float)(2.0 * ct_rng_uniform(rng) - 1.0);
    return m;
}

/* ||got - want|| / ||want|| over the [M, N] block of C (row stride ldc), want in f64. */
static double relative_error(const float *got, const double *want, int64_t M, int64_t N, int64_t ldc) {
    double diff = 0, norm = 0;
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double d = (double)got[i * ldc + j] - want[i * N + j];
            diff += d * d;
            norm += want[i * N + j] * want[i * N + j];
        }
    return sqrt(diff / norm);
}

static void check_shape(ct_rng *rng, shape s, bool ta, bool tb, const char *library) {
    const int64_t pad = 3; /* leading dimensions past the used columns */
    int64_t a_rows = ta ? s.K : s.M, a_cols = ta ? s.M : s.K, b_rows = tb ? s.N : s.K, b_cols = tb ? s.K : s.N;
    int64_t lda = a_cols + pad, ldb = b_cols + pad, ldc = s.N + pad;
    float *a = random_matrix(rng, a_rows * lda), *b = random_matrix(rng, b_rows * ldb);
    float *c0 = random_matrix(rng, s.M * ldc), *c = malloc((size_t)(s.M * ldc) * sizeof *c);
    float *again = malloc((size_t)(s.M * ldc) * sizeof *again);
    double *want = malloc((size_t)(s.M * s.N) * sizeof *want);
    const float alpha = 0.75f, beta = -0.5f;
    for (int64_t i = 0; i < s.M; i++)
        for (int64_t j = 0; j < s.N; j++) {
            double sum = 0;
            for (int64_t k = 0; k < s.K; k++)
                sum += (double)(ta ? a[k * lda + i] : a[i * lda + k]) * (double)(tb ? b[j * ldb + k] : b[k * ldb + j]);
            want[i * s.N + j] = alpha * sum + beta * (double)c0[i * ldc + j];
        }
    memcpy(c, c0, (size_t)(s.M * ldc) * sizeof *c);
    ct_sgemm(ta, tb, s.M, s.N, s.K, alpha, a, lda, b, ldb, beta, c, ldc);
    double err = relative_error(c, want, s.M, s.N, ldc);
    CHECK(err < 1e-5, "%s %lldx%lldx%lld %c%c: relative error %.3g", library, (long long)s.M, (long long)s.N,
          (long long)s.K, ta ? 'T' : 'N', tb ? 'T' : 'N', err);
    bool pad_kept = true;
    for (int64_t i = 0; i < s.M; i++)
        for (int64_t j = s.N; j < ldc; j++) pad_kept &= c[i * ldc + j] == c0[i * ldc + j];
    CHECK(pad_kept, "%s wrote past N into the padding of C", library);
    memcpy(again, c0, (size_t)(s.M * ldc) * sizeof *again);
    ct_sgemm(ta, tb, s.M, s.N, s.K, alpha, a, lda, b, ldb, beta, again, ldc);
    CHECK(!memcmp(again, c, (size_t)(s.M * ldc) * sizeof *c), "%s: the same GEMM twice gave different bits", library);

    /* beta = 0: C's old contents (NaN here) must not reach the result */
    for (int64_t i = 0; i < s.M * ldc; i++) again[i] = NAN;
    ct_sgemm(ta, tb, s.M, s.N, s.K, alpha, a, lda, b, ldb, 0.0f, again, ldc);
    for (int64_t i = 0; i < s.M; i++)
        for (int64_t j = 0; j < s.N; j++) want[i * s.N + j] -= beta * (double)c0[i * ldc + j];
    err = relative_error(again, want, s.M, s.N, ldc);
    CHECK(err < 1e-5, "%s beta = 0 over a C of NaN: relative error %.3g", library, err);
    free(a), free(b), free(c0), free(c), free(again), free(want);
}

static void check_k_zero(const char *library) {
    float c[6] = {1, -2, 3, -4, 5, -6}, a[1] = {0}, b[3] = {0};
    ct_sgemm(false, false, 2, 3, 0, 1.0f, a, 1, b, 3, 0.5f, c, 3);
    CHECK(c[0] == 0.5f && c[5] == -3.0f, "%s with K = 0 must scale C by beta (got %g, %g)", library, c[0], c[5]);
}

static void check_library(const char *library) {
    ct_rng rng;
    ct_rng_seed(&rng, 20261207);
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int t = 0; t < 4; t++) check_shape(&rng, shapes[i], t & 1, t & 2, library);
    check_k_zero(library);
    CHECK(ct_blas_gemm_check(ct_sgemm_as_cblas, NULL, NULL) == 0, "%s fails the start-up check: %s", library,
          ct_last_error());
}

int main(void) {
    printf("matmul sgemm: %s\n", ct_sgemm_library());
#ifdef CT_HAVE_ONEDNN
    if (!getenv("CT_GEMM")) CHECK(ct_sgemm_uses_onednn(), "built with oneDNN, but ct_sgemm does not use it");
#else
    CHECK(!ct_sgemm_uses_onednn(), "built without oneDNN, but ct_sgemm claims to use it");
#endif
    if (ct_sgemm_uses_onednn()) {
        CHECK(!strncmp(ct_sgemm_library(), "oneDNN ", 7), "library name '%s'", ct_sgemm_library());
        check_library(ct_sgemm_library());
        ct_sgemm_use_openblas();
    }
    CHECK(!strcmp(ct_sgemm_library(), "OpenBLAS"), "after ct_sgemm_use_openblas: '%s'", ct_sgemm_library());
    check_library("OpenBLAS");
    return ct_test_finish("test_sgemm");
}
