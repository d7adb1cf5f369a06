/* What every bench calls first, and the BLAS fields every JSON line carries: OpenBLAS's kernels
 * matched to the CPU (kernels/cpu/cpu_blas.h; this may run the bench again with
 * OPENBLAS_CORETYPE set), a warning on stderr when they cannot be, an exit when the BLAS computes
 * wrong results. A number measured on the wrong kernels shows it in its own line. */
#ifndef CT_BENCH_BLAS_H
#define CT_BENCH_BLAS_H

#include <stdio.h>
#include <stdlib.h>

#include "core/error.h"
#include "kernels/cpu/cpu_blas.h"
#include "kernels/cpu/cpu_omp_wait.h"

static inline void bench_blas_start(char **argv) {
    ct_omp_wait_select(argv);
    if (ct_blas_select(argv) < 0) {
        fprintf(stderr, "%s: %s\n", argv[0], ct_last_error());
        exit(1);
    }
    if (ct_blas_warning()) fprintf(stderr, "%s: %s\n", argv[0], ct_blas_warning());
}

/* "\"blas\": ..., \"blas_core\": ..., \"blas_kernels\": ..., \"cpu_isa\": ..., \"blas_coretype\": ..." */
static inline const char *bench_blas_json(void) { return ct_blas_json(); }

#endif
