/* Matmul forward + backward through the op layer (tape, arena, GEMM) against the raw rate of the
 * same sgemm (ct_sgemm: oneDNN or OpenBLAS, whichever the matmuls use) in the same run. Prints
 * one JSON line per measurement and the ratio.
 *   usage: bench_matmul [n=1024] [repeats=5] */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/arena.h"
#include "autograd/ops.h"
#include "core/rng.h"
#include "kernels/cpu/cpu_sgemm.h"
#include "autograd/tape.h"
#include "bench/bench_blas.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static ct_tensor *random_param(ct_rng *rng, int64_t n, const char *name) {
    ct_tensor *t = ct_tensor_new(CT_F32, 2, (int64_t[]){n, n}, name);
    if (!t) exit(1);
    ct_fill_normal(t, rng, 0.0, 1.0);
    t->requires_grad = true;
    return t;
}

int main(int argc, char **argv) {
    bench_blas_start(argv);
    int64_t n = argc > 1 ? atoll(argv[1]) : 1024;
    int repeats = argc > 2 ? atoi(argv[2]) : 5;
    ct_rng rng;
    ct_rng_seed(&rng, 1);
    ct_tensor *a = random_param(&rng, n, "a"), *b = random_param(&rng, n, "b"), *c = random_param(&rng, n, "c");
    double flop = 2.0 * (double)n * (double)n * (double)n;

    /* The raw rate: the same three GEMMs a forward + backward needs (NN, NT, TN), straight
     * to ct_sgemm. The first run of each loop warms up the thread pool and is not counted. */
    double raw_best = 1e30;
    int N = (int)n;
    for (int r = 0; r < repeats + 1; r++) {
        double t0 = now();
        ct_sgemm(false, false, N, N, N, 1.0f, a->data, N, b->data, N, 0.0f, c->data, N);
        ct_sgemm(false, true, N, N, N, 1.0f, c->data, N, b->data, N, 1.0f, a->data, N);
        ct_sgemm(true, false, N, N, N, 1.0f, a->data, N, c->data, N, 1.0f, b->data, N);
        double t = (now() - t0) / 3;
        if (r && t < raw_best) raw_best = t;
    }
    ct_fill_normal(a, &rng, 0.0, 1.0);
    ct_fill_normal(b, &rng, 0.0, 1.0);

    double op_best = 1e30;
    for (int r = 0; r < repeats + 1; r++) {
        ct_zero_grad((ct_tensor *[]){a, b}, 2);
        ct_scope_begin();
        double t0 = now();
        ct_tensor *y = ct_matmul(a, b, false, false);
        /* Seed dy = c directly: the backward is exactly two more GEMMs of the same size. */
        if (!y || ct_backward_from(y, c, NULL) < 0) return 1;
        double t = now() - t0;
        ct_scope_end();
        if (r && t < op_best) op_best = t;
    }
    double raw_gflops = flop / raw_best * 1e-9, op_gflops = 3 * flop / op_best * 1e-9;
    printf("{\"bench\":\"sgemm_raw_nn_nt_tn\",\"n\":%lld,\"threads\":%d,\"seconds\":%.4f,\"gflops\":%.1f, %s}\n", (long long)n,
           omp_get_max_threads(), raw_best, raw_gflops, bench_blas_json());
    printf("{\"bench\":\"matmul_op_fwd_bwd\",\"n\":%lld,\"threads\":%d,\"seconds\":%.4f,\"gemms\":3,"
           "\"gflops\":%.1f,\"ratio_to_raw\":%.3f, %s}\n",
           (long long)n, omp_get_max_threads(), op_best, op_gflops, op_gflops / raw_gflops, bench_blas_json());
    ct_tensor_free(a);
    ct_tensor_free(b);
    ct_tensor_free(c);
    ct_memory_release_all();
    return 0;
}
