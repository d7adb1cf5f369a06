/* GEMM on the GPU through cuBLASLt, with the semantics of the backend's gemm entry
 * (kernels/backend.h): c = alpha * op(a) @ op(b) + beta * c, a and b viewed as [rows, cols] with
 * leading dimensions flattened, every tensor row-major and contiguous on the current CUDA device.
 *
 * dtypes: all f64 (gradient checks); a and b both bf16 (bf16 tensor-core GEMM, f32 accumulation,
 * c f32 or bf16; the f32 GEMM below when cuBLASLt has no bf16 algorithm for the shape); anything
 * else of a f32/bf16/i8, b f32/bf16/f16/i8, c f32/bf16 runs as an f32 GEMM (no TF32: results
 * match the CPU's sgemm to rounding), narrow operands widened to f32 scratch first and a bf16 c
 * rounded (to nearest even) from an f32 scratch afterwards. i8 operands are
 * widened with their f32 scales (per row or per block, on either device).
 *
 * Every cuBLASLt and CUDA call is checked; a failure is one line naming the call, the file and
 * line, and the shapes. Not thread-safe: the descriptor cache and workspace are process-wide. */
#ifndef CT_CUDA_GEMM_H
#define CT_CUDA_GEMM_H

#include <stdbool.h>

/* core/tensor.h has no extern "C" block of its own: C++ includes it inside this one. */
#ifdef __cplusplus
extern "C" {
#endif
#include "core/tensor.h"

int ct_cuda_gemm(const ct_tensor *a, bool transpose_a, const ct_tensor *b, bool transpose_b, ct_tensor *c,
                 double alpha, double beta);

/* Frees the cuBLASLt handle, the cached descriptors and the workspace (they are re-created on
 * the next call): for a clean shutdown under a leak checker. */
void ct_cuda_gemm_release(void);

/* How many matmul plans (descriptor + layouts + heuristic's algorithm) are cached, and how many
 * times a plan had to be built: a training loop stops building after its first step. */
typedef struct {
    int cached_plans;
    long long plans_built;
} ct_cuda_gemm_stats;
ct_cuda_gemm_stats ct_cuda_gemm_get_stats(void);

#ifdef __cplusplus
}
#endif

#endif
