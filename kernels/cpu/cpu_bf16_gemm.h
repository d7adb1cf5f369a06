/* bf16 x bf16 -> f32 (or bf16) GEMM in hardware on the CPU: oneDNN's matmul primitive, where
 * the CPU has AVX512-BF16 (its dot-product instruction: two bf16 products summed into each f32
 * lane, twice the f32 FMA rate) and ctune was built with oneDNN.
 *
 * ct_cpu_gemm takes this path when both operands are bf16; otherwise (or without the hardware)
 * it widens bf16 operands to f32 a tile at a time and runs ct_sgemm. Both compute the same
 * products (a bf16 x bf16 product is exact in f32) and sum them in f32 in another order, so they
 * agree to f32 rounding (tests/test_bf16_gemm.c). Where this path is used, the backward of a
 * mixed-precision matmul rounds its f32 output gradient to bf16 so that its GEMMs take it too
 * (autograd/op_matmul.c, the backend's bf16_gemm_native).
 *
 * Chosen at run time: oneDNN's effective ISA must include AVX512-BF16 (the avx512_core_bf16
 * level or above), CT_GEMM must not be "openblas", and CT_GEMM_BF16 must not be "widen" (the
 * switch that compares the two paths on one machine). */
#ifndef CT_CPU_BF16_GEMM_H
#define CT_CPU_BF16_GEMM_H

#include <stdbool.h>
#include <stdint.h>

/* Whether bf16 GEMMs run in hardware on this machine and build (decided once, on first call). */
bool ct_cpu_bf16_gemm_available(void);

/* Where a bf16 GEMM runs: "oneDNN avx512_core_bf16" (or the ISA level above it that oneDNN
 * reports), or why not: "widened to f32 (no AVX512-BF16)", "widened to f32 (CT_GEMM_BF16=widen)". */
const char *ct_cpu_bf16_gemm_path(void);

/* Row-major C[M, N] = op(A) op(B) (+ C when accumulate), op(A) [M, K] and op(B) [K, N] in bf16
 * with row strides lda and ldb as stored, C contiguous (row stride N), f32 or (c_bf16) bf16,
 * computed in f32 and rounded once into a bf16 C. Returns 0 when done, 1 when this path does not
 * take the call (not available, K = 0, or called inside an OpenMP parallel region: the primitive
 * cache is not thread-safe), -1 with ct_fail on an error from oneDNN. */
int ct_cpu_bf16_gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const uint16_t *a, int64_t lda,
                     const uint16_t *b, int64_t ldb, bool accumulate, void *c, bool c_bf16);

#endif
