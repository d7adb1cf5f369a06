/* Which OpenBLAS kernels run ctune's GEMMs, and making them match the CPU.
 *
 * OpenBLAS (DYNAMIC_ARCH) picks a kernel set ("core") from the CPU model when the library loads.
 * On a CPU model it does not know it falls back to Prescott (SSE3) kernels: an AVX-512 Xeon then
 * runs every GEMM about 5x too slowly. ctune reads the instruction sets from CPUID instead (and
 * from XCR0 whether the OS saves the AVX / AVX-512 registers), ranks OpenBLAS's core by the
 * instruction set its SGEMM kernel uses, and, when the core is below the CPU, runs the program
 * again with OPENBLAS_CORETYPE set (OpenBLAS reads it only when it loads, before main()). A core
 * chosen that way, or set by the user, is kept only if a small GEMM check against a plain f64
 * reference passes. kernels/cpu/cpu_blas_select.c; docs/PERF.md, "BLAS kernel selection". */
#ifndef CT_CPU_BLAS_H
#define CT_CPU_BLAS_H

#include <cblas.h>
#include <stdbool.h>

/* Instruction-set classes, ordered: a higher class runs SGEMM faster. */
typedef enum {
    CT_ISA_UNKNOWN = 0, /* not x86, or a core name ctune does not know */
    CT_ISA_SSE3 = 1,    /* Prescott, Core2, Nehalem, Barcelona, ... */
    CT_ISA_AVX = 2,     /* Sandybridge, Bulldozer family */
    CT_ISA_AVX2 = 3,    /* AVX2 + FMA: Haswell, Zen */
    CT_ISA_AVX512 = 4,  /* AVX-512 F/CD/DQ/BW/VL: SkylakeX, Cooperlake, SapphireRapids */
} ct_isa;

/* "sse3", "avx", "avx2+fma", "avx512", "unknown". */
const char *ct_isa_name(ct_isa isa);
/* The best class this CPU and OS support (CPUID + XCR0); CT_ISA_UNKNOWN off x86. */
ct_isa ct_cpu_isa(void);
/* Whether the CPU is AMD's (or Hygon's): the AVX2 core to ask for is then Zen, not Haswell. */
bool ct_cpu_is_amd(void);
/* The class of an OpenBLAS core name (case-insensitive, as OPENBLAS_CORETYPE takes it). */
ct_isa ct_blas_core_isa(const char *core);
/* The OpenBLAS core to force for a class; NULL for SSE3 and unknown (nothing better to ask for). */
const char *ct_blas_core_for_isa(ct_isa isa, bool amd);

/* cblas_sgemm's and cblas_dgemm's types, so a check can be fed a deliberately broken GEMM. */
typedef void (*ct_sgemm_fn)(const enum CBLAS_ORDER, const enum CBLAS_TRANSPOSE, const enum CBLAS_TRANSPOSE,
                            const blasint, const blasint, const blasint, const float, const float *, const blasint,
                            const float *, const blasint, const float, float *, const blasint);
typedef void (*ct_dgemm_fn)(const enum CBLAS_ORDER, const enum CBLAS_TRANSPOSE, const enum CBLAS_TRANSPOSE,
                            const blasint, const blasint, const blasint, const double, const double *,
                            const blasint, const double *, const blasint, const double, double *, const blasint);
/* Small odd-sized GEMMs (every transpose, padded leading dimensions, alpha and beta) against a
 * triple loop in f64, norm-wise. 0 when they agree; -1 with "sgemm (trans a, ...): relative error
 * E" otherwise. *seconds (if not NULL) gets the time it took. */
int ct_blas_gemm_check(ct_sgemm_fn sgemm, ct_dgemm_fn dgemm, double *seconds);

/* What main() calls first: may replace the process (execv of /proc/self/exe with
 * OPENBLAS_CORETYPE set) when OpenBLAS's core is below the CPU and the user set none. Returns 0,
 * or -1 when the BLAS computes wrong results (the message names the core and the fix). Calls
 * after the first return the first's result. */
int ct_blas_select(char **argv);
/* NULL, or one line the caller should print: a forced core failed the check, or the kernels in
 * use are below what the CPU supports. */
const char *ct_blas_warning(void);
/* Whether the kernels in use rank below the CPU's class (false when either is unknown). */
bool ct_blas_below_cpu(void);
/* Whether OPENBLAS_CORETYPE came from the user (not from ct_blas_select's re-execution). */
bool ct_blas_coretype_from_user(void);
/* "blas: OpenBLAS 0.3.21, core Zen (avx2+fma kernels), cpu avx2+fma, coretype auto, gemm check ok"
 * (no newline), for run logs. ct_blas_describe is declared in kernels/device.h too. */
const char *ct_blas_describe(void);
/* The same as JSON members, without braces, for the benches' lines:
 * "blas": "OpenBLAS 0.3.21", "blas_core": "Zen", "blas_kernels": "avx2+fma", "cpu_isa": ..., "blas_coretype": ... */
const char *ct_blas_json(void);

#endif
