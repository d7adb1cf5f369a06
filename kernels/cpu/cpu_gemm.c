/* GEMM on the CPU: OpenBLAS (OpenMP build) sgemm/dgemm. A frozen bf16 or i8 weight is widened
 * to f32 in a scratch scope first: Debian's OpenBLAS has no bf16 GEMM. */
#include <cblas.h>

#include "autograd/arena.h"
#include "autograd/error.h"
#include "kernels/cpu/cpu_kernels.h"

static int widen_to_f32(const ct_tensor *b, const ct_tensor **widened) {
    ct_tensor *f = ct_empty(CT_F32, b->ndim, b->shape);
    if (!f) return -1;
    CT_TRY(ct_copy(f, b));
    *widened = f;
    return 0;
}

static int gemm_real(const ct_tensor *a, bool ta, const ct_tensor *b, bool tb, ct_tensor *c, double alpha,
                     double beta) {
    /* a and b are [rows, cols] in memory (leading dimensions flattened); op(a) is [M, K]. */
    int64_t a_rows = ct_rows(a), a_cols = ct_cols(a);
    int64_t M = ta ? a_cols : a_rows, K = ta ? a_rows : a_cols;
    int64_t N = tb ? ct_rows(b) : ct_cols(b);
    if (M == 0 || N == 0) return 0;
    enum CBLAS_TRANSPOSE op_a = ta ? CblasTrans : CblasNoTrans, op_b = tb ? CblasTrans : CblasNoTrans;
    if (a->dtype == CT_F64)
        cblas_dgemm(CblasRowMajor, op_a, op_b, (blasint)M, (blasint)N, (blasint)K, alpha, a->data,
                    (blasint)a_cols, b->data, (blasint)ct_cols(b), beta, c->data, (blasint)N);
    else
        cblas_sgemm(CblasRowMajor, op_a, op_b, (blasint)M, (blasint)N, (blasint)K, (float)alpha, a->data,
                    (blasint)a_cols, b->data, (blasint)ct_cols(b), (float)beta, c->data, (blasint)N);
    return 0;
}

int ct_cpu_gemm(const ct_tensor *a, bool ta, const ct_tensor *b, bool tb, ct_tensor *c, double alpha,
                double beta) {
    if (b->dtype == a->dtype) return gemm_real(a, ta, b, tb, c, alpha, beta);
    if (a->dtype != CT_F32)
        return ct_fail("gemm: a %s activation with a %s weight (only f32 activations take bf16/i8 weights)",
                       ct_dtype_name(a->dtype), ct_dtype_name(b->dtype));
    CT_TRY(ct_scope_begin());
    const ct_tensor *widened = NULL;
    int status = widen_to_f32(b, &widened);
    if (status == 0) status = gemm_real(a, ta, widened, tb, c, alpha, beta);
    ct_scope_end();
    return status;
}
