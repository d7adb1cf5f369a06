/* The f32 GEMM behind ctune's matmuls: oneDNN or OpenBLAS (kernels/cpu/cpu_sgemm.h). */
#include "kernels/cpu/cpu_sgemm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef CT_HAVE_ONEDNN
#include <dnnl.h>
#endif

/* -1 until first asked; then 1 for oneDNN, 0 for OpenBLAS. Every thread that reads it early
 * computes the same value, so the unsynchronized first write is harmless. */
static int use_onednn = -1;

bool ct_sgemm_uses_onednn(void) {
    if (use_onednn < 0) {
#ifdef CT_HAVE_ONEDNN
        const char *want = getenv("CT_GEMM");
        use_onednn = !(want && !strcmp(want, "openblas"));
#else
        use_onednn = 0;
#endif
    }
    return use_onednn == 1;
}

void ct_sgemm_use_openblas(void) { use_onednn = 0; }

const char *ct_sgemm_library(void) {
#ifdef CT_HAVE_ONEDNN
    if (ct_sgemm_uses_onednn()) {
        static char name[48];
        if (!name[0]) {
            const dnnl_version_t *v = dnnl_version();
            snprintf(name, sizeof name, "oneDNN %d.%d.%d", v->major, v->minor, v->patch);
        }
        return name;
    }
#endif
    return "OpenBLAS";
}

void ct_sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *a, int64_t lda,
              const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
#ifdef CT_HAVE_ONEDNN
    /* dnnl_sgemm is row-major, like ctune's tensors. It fails only on arguments cblas_sgemm
     * would reject as well (negative sizes, short leading dimensions); OpenBLAS then reports.
     * With K = 0 it leaves C as it was instead of scaling it by beta: OpenBLAS does that. */
    if (ct_sgemm_uses_onednn() && K > 0 && dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, alpha, a, lda, b,
                                              ldb, beta, c, ldc) == dnnl_success)
        return;
#endif
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, (blasint)M,
                (blasint)N, (blasint)K, alpha, a, (blasint)lda, b, (blasint)ldb, beta, c, (blasint)ldc);
}

void ct_sgemm_as_cblas(const enum CBLAS_ORDER order, const enum CBLAS_TRANSPOSE ta, const enum CBLAS_TRANSPOSE tb,
                       const blasint M, const blasint N, const blasint K, const float alpha, const float *a,
                       const blasint lda, const float *b, const blasint ldb, const float beta, float *c,
                       const blasint ldc) {
    (void)order; /* row-major: its callers (the GEMM check, the attention tiles) ask for nothing else */
    ct_sgemm(ta != CblasNoTrans, tb != CblasNoTrans, M, N, K, alpha, a, lda, b, ldb, beta, c, ldc);
}
