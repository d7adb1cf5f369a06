/* GPU throughput of the cuBLASLt GEMM at LLaMA shapes and of fused causal attention, timed with
 * CUDA events on the compute stream after a warm-up. Prints one JSON line per measurement: TFLOP/s
 * counted as 2 M N K per GEMM; attention counts the causal half of the score matrix, 4 B Hq T^2 D / 2
 * for forward and 2.5 times that for backward (five products instead of two), 3.5 times for
 * forward + backward. bf16 attention is timed twice, through the dispatch (cuDNN's fused attention
 * when it takes the shape; "path_forward" / "path_backward" say which ran) and through the
 * hand-written kernel; f32 runs the kernel only. Shapes: B = 1, Hq = 32, Hkv = 8, D = 128 at
 * T = 512..4096, and two training batches (B = 4, T = 1024, Hq = 16, Hkv = 4 and B = 2, T = 2048,
 * Hq = 32, Hkv = 8, D = 128). Exits 77 with a message when there is no GPU.
 *
 * usage: bench_cuda_gemm_attention [repeats=20] */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"
#include "bench/bench_blas.h"
#include "kernels/device.h"

#ifdef CT_HAVE_CUDA
#include "kernels/cuda/cuda_attention.h"
#include "kernels/cuda/cuda_gemm.h"
#include "kernels/cuda/cuda_stream.h"

static ct_rng rng;

static void die(const char *what) {
    fprintf(stderr, "bench_cuda_gemm_attention: %s: %s\n", what, ct_last_error());
    exit(1);
}

/* A GPU tensor of random values in [-1, 1) (or the given i32 ids), built by hand. */
static ct_tensor *gpu_tensor(ct_dtype dtype, int ndim, const int64_t *shape) {
    ct_tensor *t = calloc(1, sizeof *t);
    t->dtype = dtype, t->device = CT_CUDA, t->ndim = ndim, t->persistent = true;
    memcpy(t->shape, shape, sizeof(int64_t) * (size_t)ndim);
    size_t n = (size_t)ct_numel(t), bytes = ct_nbytes(t);
    void *host = malloc(bytes + 1);
    for (size_t i = 0; i < n; i++) {
        float x = (float)(2 * ct_rng_uniform(&rng) - 1);
        if (dtype == CT_BF16) ((uint16_t *)host)[i] = ct_f32_to_bf16(x);
        else ((float *)host)[i] = x;
    }
    t->data = ct_device_alloc(CT_CUDA, bytes);
    if (!t->data || ct_device_copy(CT_CUDA, t->data, CT_CPU, host, bytes) < 0) die("allocating");
    free(host);
    return t;
}

static void gpu_free(ct_tensor *t) {
    ct_device_free(CT_CUDA, t->data);
    free(t);
}

static double seconds_of(float ms, int repeats) { return ms / 1000.0 / repeats; }

typedef int (*forward_fn)(const ct_tensor *, const ct_tensor *, const ct_tensor *, const ct_tensor *,
                          const ct_tensor *, const ct_tensor *, const ct_tensor *, double, ct_tensor *, ct_tensor *);
typedef int (*backward_fn)(const ct_tensor *, const ct_tensor *, const ct_tensor *, const ct_tensor *,
                           const ct_tensor *, const ct_tensor *, const ct_tensor *, double, const ct_tensor *,
                           const ct_tensor *, const ct_tensor *, ct_tensor *, ct_tensor *, ct_tensor *);

static void bench_gemm(const char *name, int64_t M, int64_t N, int64_t K, ct_dtype dtype, int repeats) {
    /* a linear layer: x [M, K] @ W^T, W [N, K] */
    ct_tensor *x = gpu_tensor(dtype, 2, (int64_t[]){M, K}), *w = gpu_tensor(dtype, 2, (int64_t[]){N, K});
    ct_tensor *y = gpu_tensor(dtype, 2, (int64_t[]){M, N});
    ct_cuda_timer timer;
    float ms = 0;
    if (ct_cuda_gemm(x, false, w, true, y, 1, 0) < 0) die(name);
    if (ct_cuda_timer_create(&timer) < 0 || ct_cuda_timer_start(&timer) < 0) die("timer");
    for (int r = 0; r < repeats; r++)
        if (ct_cuda_gemm(x, false, w, true, y, 1, 0) < 0) die(name);
    if (ct_cuda_timer_stop(&timer, &ms) < 0) die("timer");
    double s = seconds_of(ms, repeats);
    printf("{\"bench\": \"cuda_gemm\", \"shape\": \"%s\", \"M\": %lld, \"N\": %lld, \"K\": %lld, \"dtype\": \"%s\", "
           "\"ms\": %.4f, \"tflops\": %.2f, %s}\n",
           name, (long long)M, (long long)N, (long long)K, ct_dtype_name(dtype), s * 1e3,
           2.0 * (double)M * (double)N * (double)K / s / 1e12, bench_blas_json());
    ct_cuda_timer_destroy(&timer);
    gpu_free(x), gpu_free(w), gpu_free(y);
}

typedef struct {
    int64_t B, T, Hq, Hkv, D;
} attention_shape;

/* Which path ran the calls between two stats snapshots. */
static const char *path_of(long long cudnn_before, long long cudnn_after) {
    return cudnn_after > cudnn_before ? "cudnn" : "kernel";
}

/* Milliseconds per call of `repeats` forward (and, with backward, backward) passes. */
static float time_attention(forward_fn fwd, backward_fn bwd, bool forward, bool backward, int repeats,
                            ct_tensor *const *t, const ct_tensor *pos, double scale) {
    /* t: q, k, v, out, lse, grad_out, grad_q, grad_k, grad_v */
    const ct_tensor *q = t[0], *k = t[1], *v = t[2], *go = t[5];
    ct_tensor *out = t[3], *lse = t[4], *gq = t[6], *gk = t[7], *gv = t[8];
    ct_cuda_timer timer;
    float ms = 0;
    if (ct_cuda_timer_create(&timer) < 0 || ct_cuda_timer_start(&timer) < 0) die("timer");
    for (int r = 0; r < repeats; r++) {
        if (forward && fwd(q, k, v, pos, pos, NULL, NULL, scale, out, lse) < 0) die("attention forward");
        if (backward && bwd(q, k, v, pos, pos, NULL, NULL, scale, out, lse, go, gq, gk, gv) < 0)
            die("attention backward");
    }
    if (ct_cuda_timer_stop(&timer, &ms) < 0) die("timer");
    ct_cuda_timer_destroy(&timer);
    return ms / repeats;
}

static void bench_attention(attention_shape sh, ct_dtype dtype, int kernel_only, int repeats) {
    int64_t B = sh.B, T = sh.T, Hq = sh.Hq, Hkv = sh.Hkv, D = sh.D;
    ct_tensor *t[9];
    t[0] = gpu_tensor(dtype, 4, (int64_t[]){B, T, Hq, D}); /* q */
    t[1] = gpu_tensor(dtype, 4, (int64_t[]){B, T, Hkv, D}); /* k */
    t[2] = gpu_tensor(dtype, 4, (int64_t[]){B, T, Hkv, D}); /* v */
    t[3] = gpu_tensor(dtype, 4, t[0]->shape); /* out */
    t[4] = gpu_tensor(CT_F32, 3, (int64_t[]){B, Hq, T}); /* lse */
    t[5] = gpu_tensor(CT_F32, 4, t[0]->shape); /* grad_out */
    t[6] = gpu_tensor(CT_F32, 4, t[0]->shape); /* grad_q */
    t[7] = gpu_tensor(CT_F32, 4, t[1]->shape); /* grad_k */
    t[8] = gpu_tensor(CT_F32, 4, t[1]->shape); /* grad_v */
    /* positions on the host, as the op layer derives them */
    ct_tensor *pos = ct_tensor_new(CT_I32, 2, (int64_t[]){B, T}, NULL);
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < T; i++) ((int32_t *)pos->data)[b * T + i] = (int32_t)i;
    double scale = 1.0 / sqrt((double)D);
    forward_fn fwd = kernel_only ? ct_cuda_attention_forward_kernel : ct_cuda_attention_forward;
    backward_fn bwd = kernel_only ? ct_cuda_attention_backward_kernel : ct_cuda_attention_backward;
    /* warm-up (plans, caches), and which path each direction takes */
    ct_cuda_attention_stats before = ct_cuda_attention_get_stats();
    time_attention(fwd, bwd, true, true, 1, t, pos, scale);
    ct_cuda_attention_stats after = ct_cuda_attention_get_stats();
    float ms_f = time_attention(fwd, bwd, true, false, repeats, t, pos, scale);
    float ms_b = time_attention(fwd, bwd, false, true, repeats, t, pos, scale);
    float ms_fb = time_attention(fwd, bwd, true, true, repeats, t, pos, scale);
    double flops_f = 4.0 * (double)(B * Hq) * (double)T * (double)T * (double)D / 2;
    printf("{\"bench\": \"cuda_attention\", \"B\": %lld, \"T\": %lld, \"Hq\": %lld, \"Hkv\": %lld, \"D\": %lld, "
           "\"dtype\": \"%s\", \"impl\": \"%s\", \"path_forward\": \"%s\", \"path_backward\": \"%s\", "
           "\"forward_ms\": %.4f, \"forward_tflops\": %.2f, \"backward_ms\": %.4f, \"backward_tflops\": %.2f, "
           "\"forward_backward_ms\": %.4f, \"forward_backward_tflops\": %.2f, %s}\n",
           (long long)B, (long long)T, (long long)Hq, (long long)Hkv, (long long)D, ct_dtype_name(dtype),
           kernel_only ? "kernel" : "dispatch", path_of(before.cudnn_forward, after.cudnn_forward),
           path_of(before.cudnn_backward, after.cudnn_backward), ms_f, flops_f / ms_f / 1e9, ms_b,
           2.5 * flops_f / ms_b / 1e9, ms_fb, 3.5 * flops_f / ms_fb / 1e9, bench_blas_json());
    ct_tensor_free(pos);
    for (int i = 0; i < 9; i++) gpu_free(t[i]);
}

int main(int argc, char **argv) {
    bench_blas_start(argv);
    if (!ct_device_available(CT_CUDA)) {
        printf("bench_cuda_gemm_attention: skipped (no CUDA device)\n");
        return 77;
    }
    int repeats = argc > 1 ? atoi(argv[1]) : 20;
    if (repeats < 1) repeats = 1;
    ct_rng_seed(&rng, 7);
    /* LLaMA 3 8B linear layers at 4096 tokens, and TinyLlama-sized ones */
    const struct {
        const char *name;
        int64_t M, N, K;
    } shapes[] = {
        {"llama3_8b_qkv", 4096, 6144, 4096},  {"llama3_8b_o", 4096, 4096, 4096},
        {"llama3_8b_gate_up", 4096, 28672, 4096}, {"llama3_8b_down", 4096, 4096, 14336},
        {"tinyllama_gate", 4096, 5632, 2048}, {"tinyllama_down", 4096, 2048, 5632},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        bench_gemm(shapes[i].name, shapes[i].M, shapes[i].N, shapes[i].K, CT_BF16, repeats);
        bench_gemm(shapes[i].name, shapes[i].M, shapes[i].N, shapes[i].K, CT_F32, repeats);
    }
    const attention_shape attention_shapes[] = {
        {1, 512, 32, 8, 128}, {1, 1024, 32, 8, 128}, {1, 2048, 32, 8, 128}, {1, 4096, 32, 8, 128},
        {4, 1024, 16, 4, 128}, {2, 2048, 32, 8, 128},
    };
    for (size_t i = 0; i < sizeof attention_shapes / sizeof attention_shapes[0]; i++) {
        bench_attention(attention_shapes[i], CT_BF16, 0, repeats);
        bench_attention(attention_shapes[i], CT_BF16, 1, repeats);
        bench_attention(attention_shapes[i], CT_F32, 1, repeats);
    }
    ct_cuda_gemm_release();
    ct_cudnn_sdpa_release();
    return 0;
}

#else

int main(void) {
    printf("bench_cuda_gemm_attention: skipped (built without CUDA)\n");
    return 77;
}

#endif
