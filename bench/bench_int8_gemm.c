/* An INT8 frozen weight's matmul on the CPU against the same matmul with the f32 weight, in one
 * run: y = x · Wᵀ with x f32 [M, K] and W [N, K] either f32 or i8 with one scale per row
 * (ct_quantize_i8, the INT8 export's and model.base_dtype=int8's weights). The i8 path widens W
 * to f32 inside the GEMM (kernels/cpu/cpu_gemm.c: q * scale a tile at a time, then sgemm; up to
 * 4 rows of x a weight row at a time, dotted in cache), so its cost over the f32 path is the
 * widening; the question is whether that runs at memory speed. Shapes: a Qwen2.5-0.5B-sized MLP
 * projection at evaluation (few rows) and the tiny model's projections at a training batch.
 * Prints one JSON line per shape: best of REPS for each path, their ratio. Each path cycles
 * through 16 different weights for the Qwen-sized shapes (266 MB of f32, more than any cache), as
 * generation reads every layer's weight once per token; the tiny model's one weight stays in
 * cache, as it does in training.
 *   usage: bench_int8_gemm [repeats=20] */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bench/bench_blas.h"
#include "core/arena.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "kernels/cpu/cpu_kernels.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Best time of one GEMM over repeats passes through the copies (each pass timed as a whole). */
static double best_gemm(const ct_tensor *x, ct_tensor *const *w, int copies, ct_tensor *y, int repeats) {
    double best = 1e30;
    for (int r = 0; r <= repeats; r++) { /* the first pass warms up and is not counted */
        double t0 = now();
        for (int i = 0; i < copies; i++)
            if (ct_cpu_gemm(x, false, w[i], true, y, 1.0, 0.0) < 0) {
                fprintf(stderr, "bench_int8_gemm: %s\n", ct_last_error());
                exit(1);
            }
        double t = (now() - t0) / copies;
        if (r && t < best) best = t;
    }
    return best;
}

int main(int argc, char **argv) {
    bench_blas_start(argv);
    int repeats = argc > 1 ? atoi(argv[1]) : 20;
    const struct {
        const char *name;
        int64_t M, N, K;
    } shapes[] = {{"qwen05 gate/up, 1 token", 1, 4864, 896},       {"qwen05 gate/up, 4 tokens", 4, 4864, 896},
                  {"qwen05 gate/up, 8 tokens", 8, 4864, 896},       {"qwen05 gate/up, 32 tokens", 32, 4864, 896},
                  {"qwen05 down, 32 tokens", 32, 896, 4864},        {"qwen05 gate/up, 512 tokens", 512, 4864, 896},
                  {"tiny gate/up, 2048 tokens", 2048, 352, 128},    {"tiny q/o, 2048 tokens", 2048, 128, 128}};
    ct_rng rng;
    ct_rng_seed(&rng, 7);
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        int64_t M = shapes[i].M, N = shapes[i].N, K = shapes[i].K;
        const int copies = N * K > 1000000 ? 16 : 1; /* 16 x 4864 x 896 x 4 bytes = 266 MB */
        ct_tensor *x = ct_tensor_new(CT_F32, 2, (int64_t[]){M, K}, "x");
        ct_tensor *y = ct_tensor_new(CT_F32, 2, (int64_t[]){M, N}, "y");
        ct_tensor *w[16], *q[16];
        if (!x || !y) return 1;
        ct_fill_normal(x, &rng, 0.0, 1.0);
        for (int c = 0; c < copies; c++) {
            w[c] = ct_tensor_new(CT_F32, 2, (int64_t[]){N, K}, "w");
            if (!w[c]) return 1;
            ct_fill_normal(w[c], &rng, 0.0, 0.02);
            q[c] = ct_quantize_i8(w[c], 0, true, "w_i8");
            if (!q[c]) {
                fprintf(stderr, "bench_int8_gemm: %s\n", ct_last_error());
                return 1;
            }
        }
        double f32 = best_gemm(x, w, copies, y, repeats), i8 = best_gemm(x, q, copies, y, repeats);
        double flop = 2.0 * (double)(M * N * K);
        printf("{\"bench\": \"int8_gemm\", \"shape\": \"%s\", \"M\": %lld, \"N\": %lld, \"K\": %lld, "
               "\"f32_us\": %.1f, \"i8_us\": %.1f, \"i8_over_f32\": %.3f, \"f32_gflops\": %.1f, \"i8_gflops\": %.1f, "
               "\"weight_mb_f32\": %.2f, \"weight_mb_i8\": %.2f, \"weight_copies\": %d, %s}\n",
               shapes[i].name, (long long)M, (long long)N, (long long)K, f32 * 1e6, i8 * 1e6, i8 / f32,
               flop / f32 * 1e-9, flop / i8 * 1e-9, 4e-6 * (double)(N * K), 1e-6 * (double)(N * K), copies,
               bench_blas_json());
        for (int c = 0; c < copies; c++) ct_tensor_free(w[c]), ct_tensor_free(q[c]);
        ct_tensor_free(x), ct_tensor_free(y);
    }
    return 0;
}
