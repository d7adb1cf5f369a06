/* OpenBLAS against BLIS and oneDNN on the GEMMs of a training step of the tiny model
 * (recipes/pretrain_tiny_zh.yaml: 2,048 tokens, hidden 128, key/value width 64, MLP 352,
 * vocabulary 3,008): for each projection its forward (x·Wᵀ), input gradient (dY·W) and weight
 * gradient (dYᵀ·X), row-major f32, on the threads OMP_NUM_THREADS gives.
 *
 * ctune links OpenBLAS; BLIS (libblis.so.4, Debian's libblis-dev, the OpenMP build) and oneDNN
 * (libdnnl.so.2, libdnnl-dev) are opened with dlopen, so their CBLAS symbols never meet
 * OpenBLAS's and the bench builds without them; a library that is not installed is skipped. Each
 * shape is timed REPS times per library, the libraries alternating, and the best time is kept
 * (on a shared machine the best says what the library can do; the median says what else ran).
 * Every library's product is checked against OpenBLAS's (relative error < 1e-5).
 * Prints one JSON line per shape and library, then one per library with the step's GEMM time
 * (each shape times how often a step runs it) and the time of the best library per shape.
 *   usage: bench_blas_compare [REPS=7] */
#include <dlfcn.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/bench_blas.h"
#include "kernels/cpu/cpu_blas.h"

/* BLIS's typed API (blis.h): trans_t 0 = no transpose; dim_t and inc_t are 64-bit. A transposed
 * operand is passed through its strides instead. */
typedef void (*blis_sgemm_fn)(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, const float *alpha,
                              const float *a, int64_t rsa, int64_t csa, const float *b, int64_t rsb, int64_t csb,
                              const float *beta, float *c, int64_t rsc, int64_t csc);
typedef void (*blis_threads_fn)(int64_t n);
/* oneDNN's C API (dnnl.h): row-major, 'N' or 'T'; returns dnnl_success (0). */
typedef int (*dnnl_sgemm_fn)(char ta, char tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                             int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc);

enum { OPENBLAS, BLIS, ONEDNN, N_LIBS };
static const char *const lib_names[N_LIBS] = {"openblas", "blis", "onednn"};
static blis_sgemm_fn blis_sgemm;
static dnnl_sgemm_fn dnnl_sgemm;

typedef struct {
    const char *name;
    bool ta, tb;
    int64_t m, n, k, per_step; /* how many of this GEMM a step of the tiny model runs */
} shape;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void open_libraries(void) {
    void *blis = dlopen("libblis.so.4", RTLD_NOW | RTLD_LOCAL);
    if (blis) {
        blis_sgemm = (blis_sgemm_fn)dlsym(blis, "bli_sgemm");
        blis_threads_fn threads = (blis_threads_fn)dlsym(blis, "bli_thread_set_num_threads");
        if (threads) threads(omp_get_max_threads());
    }
    void *dnnl = dlopen("libdnnl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (dnnl) dnnl_sgemm = (dnnl_sgemm_fn)dlsym(dnnl, "dnnl_sgemm");
}

static bool available(int lib) { return lib == OPENBLAS || (lib == BLIS && blis_sgemm) || (lib == ONEDNN && dnnl_sgemm); }

/* C = op(A)·op(B), A stored [m, k] ([k, m] when ta), B [k, n] ([n, k] when tb), all row-major. */
static void gemm(int lib, const shape *s, const float *a, const float *b, float *c) {
    const int64_t lda = s->ta ? s->m : s->k, ldb = s->tb ? s->k : s->n;
    const float one = 1.0f, zero = 0.0f;
    if (lib == OPENBLAS)
        cblas_sgemm(CblasRowMajor, s->ta ? CblasTrans : CblasNoTrans, s->tb ? CblasTrans : CblasNoTrans, (blasint)s->m,
                    (blasint)s->n, (blasint)s->k, 1.0f, a, (blasint)lda, b, (blasint)ldb, 0.0f, c, (blasint)s->n);
    else if (lib == BLIS)
        blis_sgemm(0, 0, s->m, s->n, s->k, &one, a, s->ta ? 1 : lda, s->ta ? lda : 1, b, s->tb ? 1 : ldb,
                   s->tb ? ldb : 1, &zero, c, s->n, 1);
    else
        dnnl_sgemm(s->ta ? 'T' : 'N', s->tb ? 'T' : 'N', s->m, s->n, s->k, 1.0f, a, lda, b, ldb, 0.0f, c, s->n);
}

static double relative_error(const float *got, const float *want, int64_t n) {
    double diff = 0, norm = 0;
    for (int64_t i = 0; i < n; i++) {
        diff += ((double)got[i] - want[i]) * ((double)got[i] - want[i]);
        norm += (double)want[i] * want[i];
    }
    return sqrt(diff / (norm > 0 ? norm : 1));
}

int main(int argc, char **argv) {
    bench_blas_start(argv);
    const int reps = argc > 1 ? atoi(argv[1]) : 7;
    if (reps < 1) {
        fprintf(stderr, "usage: bench_blas_compare [REPS >= 1]\n");
        return 2;
    }
    open_libraries();
    const int64_t T = 2048, H = 128, KV = 64, MLP = 352, V = 3008, L = 4;
    /* per projection [out, in]: forward NT, input gradient NN, weight gradient TN */
    const struct { const char *name; int64_t out, in, count; } proj[] = {
        {"q/o [128x128]", H, H, 2 * L}, {"k/v [64x128]", KV, H, 2 * L}, {"gate/up [352x128]", MLP, H, 2 * L},
        {"down [128x352]", H, MLP, L}, {"lm_head [3008x128]", V, H, 1}};
    shape shapes[15];
    int n_shapes = 0;
    for (size_t p = 0; p < sizeof proj / sizeof *proj; p++) {
        shapes[n_shapes++] = (shape){proj[p].name, false, true, T, proj[p].out, proj[p].in, proj[p].count};
        shapes[n_shapes++] = (shape){proj[p].name, false, false, T, proj[p].in, proj[p].out, proj[p].count};
        shapes[n_shapes++] = (shape){proj[p].name, true, false, proj[p].out, proj[p].in, T, proj[p].count};
    }
    const size_t big = (size_t)T * (size_t)V;
    float *a = malloc(big * sizeof *a), *b = malloc(big * sizeof *b), *c = malloc(big * sizeof *c),
          *ref = malloc(big * sizeof *ref);
    if (!a || !b || !c || !ref) return 1;
    for (size_t i = 0; i < big; i++) {
        a[i] = (float)((double)((i * 2654435761u) % 1000) / 1000.0 - 0.5);
        b[i] = (float)((double)((i * 40503u + 7) % 997) / 997.0 - 0.5);
    }
    double step[N_LIBS] = {0}, best_per_shape = 0;
    for (int s = 0; s < n_shapes; s++) {
        const shape *sh = &shapes[s];
        const double flop = 2.0 * (double)sh->m * (double)sh->n * (double)sh->k;
        gemm(OPENBLAS, sh, a, b, ref);
        double best[N_LIBS], err[N_LIBS] = {0};
        for (int lib = 0; lib < N_LIBS; lib++) {
            best[lib] = INFINITY;
            if (!available(lib)) continue;
            gemm(lib, sh, a, b, c); /* warm-up (oneDNN compiles its kernel here) and the check */
            err[lib] = relative_error(c, ref, sh->m * sh->n);
        }
        for (int r = 0; r < reps; r++)
            for (int lib = 0; lib < N_LIBS; lib++) {
                if (!available(lib)) continue;
                const double t0 = now();
                gemm(lib, sh, a, b, c);
                const double t = now() - t0;
                if (t < best[lib]) best[lib] = t;
            }
        double fastest = INFINITY;
        for (int lib = 0; lib < N_LIBS; lib++) {
            if (!available(lib)) continue;
            step[lib] += (double)sh->per_step * best[lib];
            if (best[lib] < fastest) fastest = best[lib];
            printf("{\"bench\": \"blas_compare\", \"shape\": \"%s\", \"pass\": \"%s\", \"m\": %lld, \"n\": %lld, "
                   "\"k\": %lld, \"lib\": \"%s\", \"threads\": %d, \"best_ms\": %.4f, \"gflops\": %.2f, "
                   "\"rel_error_vs_openblas\": %.2e, %s}\n",
                   sh->name, sh->ta ? "weight grad (TN)" : sh->tb ? "forward (NT)" : "input grad (NN)",
                   (long long)sh->m, (long long)sh->n, (long long)sh->k, lib_names[lib], omp_get_max_threads(),
                   1e3 * best[lib], flop / best[lib] * 1e-9, err[lib], bench_blas_json());
            if (err[lib] > 1e-5) fprintf(stderr, "bench_blas_compare: %s differs from OpenBLAS by %.2e on %s\n",
                                         lib_names[lib], err[lib], sh->name);
        }
        best_per_shape += (double)sh->per_step * fastest;
    }
    for (int lib = 0; lib < N_LIBS; lib++)
        if (available(lib))
            printf("{\"bench\": \"blas_compare_step\", \"lib\": \"%s\", \"threads\": %d, \"step_gemm_ms\": %.3f}\n",
                   lib_names[lib], omp_get_max_threads(), 1e3 * step[lib]);
    printf("{\"bench\": \"blas_compare_step\", \"lib\": \"best per shape\", \"threads\": %d, \"step_gemm_ms\": %.3f}\n",
           omp_get_max_threads(), 1e3 * best_per_shape);
    free(a);
    free(b);
    free(c);
    free(ref);
    return 0;
}
