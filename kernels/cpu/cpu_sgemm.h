/* The f32 GEMM behind ctune's matmuls (and the attention kernel's tiles) on the CPU.
 *
 * oneDNN's dnnl_sgemm when ctune was built with it (libdnnl-dev: CMake finds it and defines
 * CT_HAVE_ONEDNN), OpenBLAS's cblas_sgemm otherwise. On the model's skinny training shapes oneDNN
 * took 12-19% less time than OpenBLAS for a step's GEMMs and kept its rate when another process
 * shared the cores, where OpenBLAS's two-thread weight gradients collapsed (docs/PERF.md, "BLAS
 * libraries compared"). The environment variable CT_GEMM=openblas picks OpenBLAS at run time.
 * The two round differently, so a run's bits depend on which one ran; trainer logs, checkpoints
 * and benchmarks name it. Both use the same OpenMP threads. */
#ifndef CT_CPU_SGEMM_H
#define CT_CPU_SGEMM_H

#include <stdbool.h>
#include <stdint.h>

#include "kernels/cpu/cpu_blas.h"

/* Row-major C[M, N] = alpha * op(A) * op(B) + beta * C, op(A) [M, K], op(B) [K, N]; lda, ldb, ldc
 * are the row strides of A, B and C as stored. */
void ct_sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *a, int64_t lda,
              const float *b, int64_t ldb, float beta, float *c, int64_t ldc);

/* Which library ct_sgemm calls: "oneDNN 2.6.3" or "OpenBLAS". */
const char *ct_sgemm_library(void);
/* Whether ct_sgemm calls oneDNN (built with it, and CT_GEMM is not "openblas"). */
bool ct_sgemm_uses_onednn(void);
/* Makes ct_sgemm call OpenBLAS from now on (after a failed start-up check of oneDNN). */
void ct_sgemm_use_openblas(void);
/* ct_sgemm behind cblas_sgemm's signature (row-major only), so ct_blas_gemm_check checks the
 * library that runs the matmuls, and the attention kernel's tile macro takes it as its GEMM. */
void ct_sgemm_as_cblas(const enum CBLAS_ORDER order, const enum CBLAS_TRANSPOSE ta, const enum CBLAS_TRANSPOSE tb,
                       const blasint M, const blasint N, const blasint K, const float alpha, const float *a,
                       const blasint lda, const float *b, const blasint ldb, const float beta, float *c,
                       const blasint ldc);
#endif
