/* Fused causal attention, forward + backward through the op layer, against the matmul-bound
 * time measured in the same run: cblas_sgemm doing the same FLOPs in full-size GEMMs of the
 * shapes attention multiplies ([T, D] x [D, T] and [T, T] x [T, D] per head).
 *
 * FLOP count (multiply-add = 2):
 *   forward   4 * T^2 * D * H / 2   (q k^T and P v, causal: half the score matrix)
 *   backward  2.5 x forward         (q k^T recomputed, dO v^T, P^T dO, dS k, dS^T q)
 *   total     3.5 x forward
 * With dtype bf16, q, k and v (and the output) are stored in bf16; the kernels widen them to f32,
 * so the ratio shows what bf16 storage costs in time.
 * Prints one JSON object.   usage: bench_attention [T=512] [heads=8] [D=64] [repeats=5] [f32|bf16] */
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/arena.h"
#include "autograd/op_attention.h"
#include "autograd/ops.h"
#include "core/rng.h"
#include "autograd/tape.h"
#include "bench/bench_blas.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static ct_tensor *random_tensor(ct_rng *rng, ct_dtype dtype, int64_t T, int64_t H, int64_t D, const char *name) {
    ct_tensor *t = ct_tensor_new(dtype, 4, (int64_t[]){1, T, H, D}, name);
    if (!t) exit(1);
    ct_fill_normal(t, rng, 0.0, 1.0);
    t->requires_grad = true;
    return t;
}

/* Per head: [T,D]x[D,T] twice, [T,T]x[T,D] once and [T,T/2]x[T/2,D] once = 7 T^2 D FLOPs, the
 * 3.5 x 2 T^2 D of a causal forward + backward. */
static void gemms_for_head(int T, int D, const float *a, const float *b, float *scores, float *o) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, D, 1.0f, a, D, b, D, 0.0f, scores, T);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, D, 1.0f, b, D, a, D, 0.0f, scores, T);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, D, T, 1.0f, scores, T, a, D, 0.0f, o, D);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, D, T / 2, 1.0f, scores, T, b, D, 1.0f, o, D);
}

/* The faster of two layouts: heads spread over the OpenMP threads with single-threaded GEMMs
 * (how the fused kernel runs), or heads one after another with OpenBLAS using every thread. */
static double matmul_bound(int T, int H, int D, int repeats) {
    size_t per_head = (size_t)T * (size_t)D;
    float *a = malloc(sizeof(float) * per_head * (size_t)H), *b = malloc(sizeof(float) * per_head * (size_t)H);
    float *scores = malloc(sizeof(float) * (size_t)T * (size_t)T * (size_t)H);
    float *o = malloc(sizeof(float) * per_head * (size_t)H);
    if (!a || !b || !scores || !o) exit(1);
    for (size_t i = 0; i < per_head * (size_t)H; i++) a[i] = (float)(i % 7) * 0.1f, b[i] = (float)(i % 5) * 0.1f;
    double best = 1e30;
    for (int r = 0; r < repeats + 1; r++) {
        double t0 = now();
#pragma omp parallel for schedule(static)
        for (int h = 0; h < H; h++)
            gemms_for_head(T, D, a + per_head * h, b + per_head * h, scores + (size_t)T * T * h, o + per_head * h);
        double t = now() - t0;
        if (r && t < best) best = t;
        t0 = now();
        for (int h = 0; h < H; h++)
            gemms_for_head(T, D, a + per_head * h, b + per_head * h, scores + (size_t)T * T * h, o + per_head * h);
        t = now() - t0;
        if (r && t < best) best = t;
    }
    free(a), free(b), free(scores), free(o);
    return best;
}

int main(int argc, char **argv) {
    bench_blas_start(argv);
    int64_t T = argc > 1 ? atoll(argv[1]) : 512, H = argc > 2 ? atoll(argv[2]) : 8;
    int64_t D = argc > 3 ? atoll(argv[3]) : 64;
    int repeats = argc > 4 ? atoi(argv[4]) : 5;
    bool bf16 = argc > 5 && strcmp(argv[5], "bf16") == 0;
    ct_dtype dtype = bf16 ? CT_BF16 : CT_F32;
    ct_rng rng;
    ct_rng_seed(&rng, 1);
    ct_tensor *q = random_tensor(&rng, dtype, T, H, D, "q"), *k = random_tensor(&rng, dtype, T, H, D, "k");
    ct_tensor *v = random_tensor(&rng, dtype, T, H, D, "v"), *dout = random_tensor(&rng, CT_F32, T, H, D, "dout");
    double flop_fwd = 4.0 * (double)T * (double)T * (double)D * (double)H / 2, flop = 3.5 * flop_fwd;

    double fwd_best = 1e30, total_best = 1e30;
    for (int r = 0; r < repeats + 1; r++) {
        ct_zero_grad((ct_tensor *[]){q, k, v}, 3);
        ct_scope_begin();
        double t0 = now();
        ct_tensor *out = ct_attention(q, k, v, NULL);
        double t1 = now();
        if (!out || ct_backward_from(out, dout, NULL) < 0) return 1;
        double t2 = now();
        ct_scope_end();
        if (r && t1 - t0 < fwd_best) fwd_best = t1 - t0;
        if (r && t2 - t0 < total_best) total_best = t2 - t0;
    }
    double bound = matmul_bound((int)T, (int)H, (int)D, repeats);
    printf("{\"bench\": \"attention\", \"B\": 1, \"T\": %lld, \"heads\": %lld, \"D\": %lld, \"dtype\": \"%s\", "
           "\"threads\": %d, \"flop_fwd\": %.0f, \"flop_fwd_bwd\": %.0f, "
           "\"flop_count\": \"fwd 4*T^2*D*H/2, bwd 2.5x fwd, fwd+bwd 3.5x fwd\", "
           "\"fwd_s\": %.6f, \"fwd_bwd_s\": %.6f, \"gflops\": %.2f, \"matmul_bound_s\": %.6f, "
           "\"matmul_gflops\": %.2f, \"ratio_to_matmul_bound\": %.3f, %s}\n",
           (long long)T, (long long)H, (long long)D, ct_dtype_name(dtype), omp_get_max_threads(), flop_fwd, flop,
           fwd_best, total_best, flop / total_best * 1e-9, bound, flop / bound * 1e-9, total_best / bound, bench_blas_json());
    ct_tensor_free(q), ct_tensor_free(k), ct_tensor_free(v), ct_tensor_free(dout);
    return 0;
}
