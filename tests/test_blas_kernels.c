/* OpenBLAS's kernels against the CPU (kernels/cpu/cpu_blas.h).
 *
 * The test starts the way ctune does (ct_blas_select, which may run it again with
 * OPENBLAS_CORETYPE set), then fails when the kernels in use rank below what CPUID says the CPU
 * supports. Around it: the core-name ranking, CPUID against the kernel's /proc/cpuinfo flags, and
 * the start-up GEMM check accepting correct GEMMs and rejecting broken ones.
 *
 * A core set by the user (OPENBLAS_CORETYPE in the environment) is respected, not judged: then the
 * kernel check is reported as skipped and the test exits 77 once everything else has passed.
 * tests/cli/blas.cmake runs it under a simulated OpenBLAS mis-detection (must pass, through the
 * re-execution) and with a low core that ctune believes it forced itself (must fail). */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "kernels/cpu/cpu_blas.h"
#include "ct_test.h"

#define MAX_ELEMS 16384 /* the check's matrices are far smaller */

/* ---- the ranking of OpenBLAS's core names ---- */

static void test_core_ranking(void) {
    const struct {
        const char *core;
        ct_isa isa;
    } cases[] = {
        {"Prescott", CT_ISA_SSE3},    {"Core2", CT_ISA_SSE3},        {"Nehalem", CT_ISA_SSE3},
        {"Barcelona", CT_ISA_SSE3},   {"Sandybridge", CT_ISA_AVX},   {"Bulldozer", CT_ISA_AVX},
        {"Excavator", CT_ISA_AVX},    {"Haswell", CT_ISA_AVX2},      {"Zen", CT_ISA_AVX2},
        {"ZEN", CT_ISA_AVX2},         {"haswell", CT_ISA_AVX2},      {"SkylakeX", CT_ISA_AVX512},
        {"SKYLAKEX", CT_ISA_AVX512},  {"Cooperlake", CT_ISA_AVX512}, {"SapphireRapids", CT_ISA_AVX512},
        {"Frobnicate", CT_ISA_UNKNOWN}, {"", CT_ISA_UNKNOWN},        {NULL, CT_ISA_UNKNOWN},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK(ct_blas_core_isa(cases[i].core) == cases[i].isa, "core %s ranked %s, expected %s",
              cases[i].core ? cases[i].core : "(null)", ct_isa_name(ct_blas_core_isa(cases[i].core)),
              ct_isa_name(cases[i].isa));
    CHECK(CT_ISA_SSE3 < CT_ISA_AVX && CT_ISA_AVX < CT_ISA_AVX2 && CT_ISA_AVX2 < CT_ISA_AVX512, "classes unordered");

    /* The core forced for a class: the one the issue measured, and one OpenBLAS knows. */
    CHECK(!strcmp(ct_blas_core_for_isa(CT_ISA_AVX512, false), "SkylakeX"), "avx512 -> %s",
          ct_blas_core_for_isa(CT_ISA_AVX512, false));
    CHECK(!strcmp(ct_blas_core_for_isa(CT_ISA_AVX2, true), "Zen"), "amd avx2 -> %s", ct_blas_core_for_isa(CT_ISA_AVX2, true));
    CHECK(!strcmp(ct_blas_core_for_isa(CT_ISA_AVX2, false), "Haswell"), "intel avx2 -> %s",
          ct_blas_core_for_isa(CT_ISA_AVX2, false));
    CHECK(!strcmp(ct_blas_core_for_isa(CT_ISA_AVX, false), "Sandybridge"), "avx -> %s",
          ct_blas_core_for_isa(CT_ISA_AVX, false));
    CHECK(ct_blas_core_for_isa(CT_ISA_SSE3, false) == NULL && ct_blas_core_for_isa(CT_ISA_UNKNOWN, true) == NULL,
          "a core is forced for sse3 or unknown");
}

/* ---- CPUID against the kernel's view ---- */

static bool has_flag(const char *flags, const char *flag) {
    size_t n = strlen(flag);
    for (const char *p = flags; (p = strstr(p, flag)) != NULL; p += n)
        if ((p == flags || p[-1] == ' ' || p[-1] == '\t') && (p[n] == ' ' || p[n] == '\n' || p[n] == '\0')) return true;
    return false;
}

/* Linux lists in "flags" only what the CPU has and the kernel enabled (it drops AVX-512 when it
 * does not save its registers): an independent reading of what ct_cpu_isa decides. */
static void test_cpuid_matches_proc_cpuinfo(void) {
    /* /proc files report size 0: read line by line. */
    FILE *f = fopen("/proc/cpuinfo", "r");
    static char line[8192];
    const char *flags = NULL;
    while (f && !flags && fgets(line, sizeof line, f))
        if (!strncmp(line, "flags", 5)) flags = line;
    if (f) fclose(f);
    if (!flags) {
        printf("no flags line in /proc/cpuinfo (not x86 Linux): CPUID comparison not applicable\n");
        CHECK(ct_cpu_isa() == CT_ISA_UNKNOWN || f == NULL, "an x86 CPU without /proc/cpuinfo flags");
        return;
    }
    ct_isa want = CT_ISA_UNKNOWN;
    if (has_flag(flags, "pni")) want = CT_ISA_SSE3;
    if (has_flag(flags, "avx")) want = CT_ISA_AVX;
    if (has_flag(flags, "avx2") && has_flag(flags, "fma")) want = CT_ISA_AVX2;
    if (want == CT_ISA_AVX2 && has_flag(flags, "avx512f") && has_flag(flags, "avx512cd") &&
        has_flag(flags, "avx512dq") && has_flag(flags, "avx512bw") && has_flag(flags, "avx512vl"))
        want = CT_ISA_AVX512;
    CHECK(ct_cpu_isa() == want, "CPUID says %s, /proc/cpuinfo flags say %s", ct_isa_name(ct_cpu_isa()),
          ct_isa_name(want));
}

/* ---- the GEMM check ---- */

/* Correct, in another summation order than OpenBLAS: the tolerance must let it pass. */
static void naive_sgemm(const enum CBLAS_ORDER order, const enum CBLAS_TRANSPOSE ta, const enum CBLAS_TRANSPOSE tb,
                        const blasint M, const blasint N, const blasint K, const float alpha, const float *a,
                        const blasint lda, const float *b, const blasint ldb, const float beta, float *c,
                        const blasint ldc) {
    (void)order;
    for (blasint i = 0; i < M; i++)
        for (blasint j = 0; j < N; j++) {
            float sum = 0;
            for (blasint k = K - 1; k >= 0; k--)
                sum += (ta == CblasTrans ? a[k * lda + i] : a[i * lda + k]) * (tb == CblasTrans ? b[j * ldb + k] : b[k * ldb + j]);
            c[i * ldc + j] = alpha * sum + beta * c[i * ldc + j];
        }
}

/* Broken ways, each a plausible kernel bug. */
static int broken_mode;
static float bf16_round(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    u = (u + 0x8000u) & 0xffff0000u;
    memcpy(&x, &u, 4);
    return x;
}
static void broken_sgemm(const enum CBLAS_ORDER order, const enum CBLAS_TRANSPOSE ta, const enum CBLAS_TRANSPOSE tb,
                         const blasint M, const blasint N, const blasint K, const float alpha, const float *a,
                         const blasint lda, const float *b, const blasint ldb, const float beta, float *c,
                         const blasint ldc) {
    switch (broken_mode) {
    case 0: /* one wrong element (a mis-handled edge tile) */
        cblas_sgemm(order, ta, tb, M, N, K, alpha, a, lda, b, ldb, beta, c, ldc);
        c[(M - 1) * ldc + N - 1] += 0.05f;
        break;
    case 1: /* beta ignored */
        cblas_sgemm(order, ta, tb, M, N, K, alpha, a, lda, b, ldb, 0.0f, c, ldc);
        break;
    case 2: /* transposes ignored */
        cblas_sgemm(order, CblasNoTrans, CblasNoTrans, M, N, K, alpha, a, lda, b, ldb, beta, c, ldc);
        break;
    case 3: /* a NaN */
        cblas_sgemm(order, ta, tb, M, N, K, alpha, a, lda, b, ldb, beta, c, ldc);
        c[0] = NAN;
        break;
    default: { /* bf16 inputs: too imprecise for an f32 GEMM */
        static float ar[MAX_ELEMS], br[MAX_ELEMS];
        blasint na = (ta == CblasTrans ? K : M) * lda, nb = (tb == CblasTrans ? N : K) * ldb;
        if (na > MAX_ELEMS || nb > MAX_ELEMS) abort();
        for (blasint i = 0; i < na; i++) ar[i] = bf16_round(a[i]);
        for (blasint i = 0; i < nb; i++) br[i] = bf16_round(b[i]);
        cblas_sgemm(order, ta, tb, M, N, K, alpha, ar, lda, br, ldb, beta, c, ldc);
        break;
    }
    }
}

/* dgemm through f32: right to 1e-7, wrong for an f64 GEMM. */
static void f32_dgemm(const enum CBLAS_ORDER order, const enum CBLAS_TRANSPOSE ta, const enum CBLAS_TRANSPOSE tb,
                      const blasint M, const blasint N, const blasint K, const double alpha, const double *a,
                      const blasint lda, const double *b, const blasint ldb, const double beta, double *c,
                      const blasint ldc) {
    static float af[MAX_ELEMS], bf[MAX_ELEMS], cf[MAX_ELEMS];
    blasint na = (ta == CblasTrans ? K : M) * lda, nb = (tb == CblasTrans ? N : K) * ldb, nc = M * ldc;
    if (na > MAX_ELEMS || nb > MAX_ELEMS || nc > MAX_ELEMS) abort();
    for (blasint i = 0; i < na; i++) af[i] = (float)a[i];
    for (blasint i = 0; i < nb; i++) bf[i] = (float)b[i];
    for (blasint i = 0; i < nc; i++) cf[i] = (float)c[i];
    cblas_sgemm(order, ta, tb, M, N, K, (float)alpha, af, lda, bf, ldb, (float)beta, cf, ldc);
    for (blasint i = 0; i < nc; i++) c[i] = cf[i];
}

static void test_gemm_check(void) {
    double seconds = 0;
    CHECK(ct_blas_gemm_check(cblas_sgemm, cblas_dgemm, &seconds) == 0, "OpenBLAS failed: %s", ct_last_error());
    printf("gemm check: %.3f ms\n", seconds * 1e3);
    /* Every ctune run pays this at start-up: about 1 ms measured; the bound leaves room for a
     * sanitizer build on a busy machine and still catches a check grown to real GEMM sizes. */
    CHECK(seconds < 0.1, "the gemm check took %.1f ms", seconds * 1e3);
    CHECK(ct_blas_gemm_check(naive_sgemm, NULL, NULL) == 0, "a correct naive sgemm failed: %s", ct_last_error());
    const char *what[] = {"one wrong element", "beta ignored", "transposes ignored", "a NaN", "bf16 inputs"};
    for (broken_mode = 0; broken_mode < 5; broken_mode++) {
        ct_clear_error();
        int rc = ct_blas_gemm_check(broken_sgemm, NULL, NULL);
        CHECK(rc < 0 && strstr(ct_last_error(), "sgemm (") && strstr(ct_last_error(), "relative error"),
              "an sgemm with %s passed the check (rc %d, '%s')", what[broken_mode], rc, ct_last_error());
    }
    ct_clear_error();
    CHECK(ct_blas_gemm_check(cblas_sgemm, f32_dgemm, NULL) < 0 && strstr(ct_last_error(), "dgemm ("),
          "a dgemm computed in f32 passed the check ('%s')", ct_last_error());
}

/* ---- the kernels in use ---- */

/* 0 checked, 1 not applicable (skip), after counting any failure. */
static int test_kernels_match_cpu(void) {
    printf("%s\n", ct_blas_describe());
    const char *core = openblas_get_corename();
    ct_isa cpu = ct_cpu_isa(), kernels = ct_blas_core_isa(core);
    if (cpu == CT_ISA_UNKNOWN) {
        printf("SKIP kernel check: the cpu's class is unknown (not x86)\n");
        return 1;
    }
    CHECK(kernels != CT_ISA_UNKNOWN, "OpenBLAS core '%s' is not in ctune's table (kernels/cpu/cpu_blas_select.c)", core);
    if (kernels != CT_ISA_UNKNOWN && kernels < cpu && ct_blas_coretype_from_user()) {
        printf("SKIP kernel check: OPENBLAS_CORETYPE=%s was set by the user (%s kernels, cpu with %s)\n",
               getenv("OPENBLAS_CORETYPE"), ct_isa_name(kernels), ct_isa_name(cpu));
        return 1;
    }
    CHECK(kernels >= cpu, "FAIL: OpenBLAS runs core %s (%s kernels), below what this cpu supports (%s)", core,
          ct_isa_name(kernels), ct_isa_name(cpu));
    CHECK(ct_blas_below_cpu() == (kernels < cpu), "ct_blas_below_cpu disagrees");
    return 0;
}

int main(int argc, char **argv) {
    (void)argc;
    /* First, as in ctune's main(): may re-execute. A BLAS failing its start-up check fails here,
     * before anything else runs on it. */
    if (ct_blas_select(argv) < 0) {
        fprintf(stderr, "test_blas_kernels: FAIL: %s\n", ct_last_error());
        return 1;
    }
    if (ct_blas_warning()) printf("warning: %s\n", ct_blas_warning());
    test_core_ranking();
    test_cpuid_matches_proc_cpuinfo();
    test_gemm_check();
    int skipped = test_kernels_match_cpu();
    int rc = ct_test_finish("test_blas_kernels");
    return rc == 0 && skipped ? 77 : rc;
}
