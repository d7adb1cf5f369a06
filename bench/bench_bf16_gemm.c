/* The matmuls' GEMM in f32 (ct_sgemm) against the bf16 GEMM in hardware (ct_cpu_bf16_gemm:
 * oneDNN's matmul primitive on a CPU with AVX512-BF16, kernels/cpu/cpu_bf16_gemm.h) on the
 * shapes of the tiny model's and a GEMM-bound model's training step, in one run. Prints one JSON
 * line per shape with both rates (GFLOP/s, best of REPS after a warm-up); where the bf16 GEMM
 * does not run in hardware its rate is null and "bf16_gemm" says why. Threads: OMP_NUM_THREADS.
 *   usage: bench_bf16_gemm [repeats=20] */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bench/bench_blas.h"
#include "core/dtype.h"
#include "core/error.h"
#include "kernels/cpu/cpu_bf16_gemm.h"
#include "kernels/cpu/cpu_sgemm.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct {
    const char *name;
    bool ta, tb;
    int64_t M, N, K;
} shape;

int main(int argc, char **argv) {
    bench_blas_start(argv);
    int repeats = argc > 1 ? atoi(argv[1]) : 20;
    const shape shapes[] = {
        {"tiny q/o forward", false, true, 2048, 128, 128},   {"tiny q/o input grad", false, false, 2048, 128, 128},
        {"tiny q/o weight grad", true, false, 128, 128, 2048}, {"tiny lm_head forward", false, true, 2048, 3008, 128},
        {"768 projection forward", false, true, 4096, 768, 768},
        {"768 projection weight grad", true, false, 768, 768, 4096},
        {"768 MLP up forward", false, true, 4096, 2048, 768}};
    const int64_t most = 4096 * 3072;
    float *a = malloc(sizeof(float) * most), *b = malloc(sizeof(float) * most), *c = malloc(sizeof(float) * most);
    uint16_t *a16 = malloc(sizeof(uint16_t) * most), *b16 = malloc(sizeof(uint16_t) * most);
    if (!a || !b || !c || !a16 || !b16) return 1;
    srand(1);
    for (int64_t i = 0; i < most; i++) {
        a[i] = (float)rand() / RAND_MAX - 0.5f, b[i] = (float)rand() / RAND_MAX - 0.5f;
        a16[i] = ct_f32_to_bf16(a[i]), b16[i] = ct_f32_to_bf16(b[i]);
    }
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const shape *p = &shapes[s];
        int64_t lda = p->ta ? p->M : p->K, ldb = p->tb ? p->K : p->N;
        double flop = 2.0 * (double)(p->M * p->N * p->K), f32 = 1e30, bf16 = 1e30;
        for (int r = 0; r <= repeats; r++) { /* run 0 warms up (and builds the bf16 primitive) */
            double t0 = now();
            ct_sgemm(p->ta, p->tb, p->M, p->N, p->K, 1.0f, a, lda, b, ldb, 0.0f, c, p->N);
            double t = now() - t0;
            if (r && t < f32) f32 = t;
            t0 = now();
            int rc = ct_cpu_bf16_gemm(p->ta, p->tb, p->M, p->N, p->K, a16, lda, b16, ldb, false, c, false);
            t = now() - t0;
            if (rc < 0) {
                fprintf(stderr, "bench_bf16_gemm: %s\n", ct_last_error());
                return 1;
            }
            if (rc == 0 && r && t < bf16) bf16 = t;
        }
        printf("{\"bench\": \"bf16_gemm\", \"shape\": \"%s\", \"op\": \"%c%c\", \"M\": %lld, \"N\": %lld, \"K\": %lld, "
               "\"f32_gflops\": %.1f, ",
               p->name, p->ta ? 'T' : 'N', p->tb ? 'T' : 'N', (long long)p->M, (long long)p->N, (long long)p->K,
               flop / f32 * 1e-9);
        if (bf16 < 1e30) printf("\"bf16_gflops\": %.1f, ", flop / bf16 * 1e-9);
        else printf("\"bf16_gflops\": null, ");
        printf("%s}\n", bench_blas_json());
    }
    free(a), free(b), free(c), free(a16), free(b16);
    return 0;
}
