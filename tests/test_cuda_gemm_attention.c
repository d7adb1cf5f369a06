/* The GPU's cuBLASLt GEMM and fused attention against the CPU backend (the reference semantics),
 * on random inputs of odd sizes, compared norm-wise: f32 within 1e-5, bf16 within 1e-2, f64
 * within 1e-12. GEMM: every transpose pair, leading dimensions flattened, bf16 and mixed dtypes,
 * i8 weights with per-row and per-block scales, K == 0, the plan cache, a refused dtype mix.
 * Attention: causal MHA and GQA, a KV-cache offset, packed rows with segment ids and explicit
 * positions on the GPU or on the host, queries that see no key, head dims 40 / 64 / 128 / 160, f64,
 * bf16 through the hand-written kernel and through the dispatch, gradients that accumulate (+=)
 * into random f32 values, a backward into grad_k alone, and a kernel backward that is
 * bit-identical run to run. The dispatch cases check which path ran: cuDNN's fused attention
 * wherever ct_cudnn_sdpa_supported says the device, the cuDNN version and the shape allow it (GQA,
 * MQA, D = 40 / 64 / 128, odd T such as 77, 129 and 200), the kernel for what cuDNN does not take
 * (D = 20 or 160, a KV offset, segments); a repeated shape builds no new cuDNN plan; and a child
 * run of this test with CT_CUDA_ATTENTION=kernel must use the kernel for every call. Exit 77
 * without a GPU. */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "core/error.h"
#include "core/rng.h"
#include "kernels/backend.h"
#include "kernels/device.h"
#include "tests/ct_test.h"

#ifdef CT_HAVE_CUDA
#include "kernels/cuda/cuda_attention.h"
#include "kernels/cuda/cuda_gemm.h"

static ct_rng rng;

static ct_tensor *cpu_random(ct_dtype dtype, int ndim, const int64_t *shape) {
    ct_tensor *t = ct_tensor_new(dtype, ndim, shape, NULL);
    ct_fill_normal(t, &rng, 0.1, 1.0);
    return t;
}

/* A GPU copy of a CPU tensor, built by hand: the op table may not exist yet, and these tests
 * call the kernels directly. i8 scales go along. */
static ct_tensor *to_gpu(const ct_tensor *t) {
    ct_tensor *g = calloc(1, sizeof *g);
    *g = (ct_tensor){.dtype = t->dtype, .device = CT_CUDA, .ndim = t->ndim, .persistent = true,
                     .scale_block = t->scale_block};
    memcpy(g->shape, t->shape, sizeof g->shape);
    g->data = ct_device_alloc(CT_CUDA, ct_nbytes(t));
    if (!g->data || ct_device_copy(CT_CUDA, g->data, CT_CPU, t->data, ct_nbytes(t)) < 0) {
        fprintf(stderr, "to_gpu: %s\n", ct_last_error());
        exit(1);
    }
    if (t->scale) g->scale = to_gpu(t->scale);
    return g;
}

static void free_gpu(ct_tensor *g) {
    if (!g) return;
    if (g->scale) free_gpu(g->scale);
    ct_device_free(CT_CUDA, g->data);
    free(g);
}

static ct_tensor *to_cpu(const ct_tensor *g) {
    ct_tensor *t = ct_tensor_new(g->dtype, g->ndim, g->shape, NULL);
    if (ct_device_copy(CT_CPU, t->data, CT_CUDA, g->data, ct_nbytes(t)) < 0) {
        fprintf(stderr, "to_cpu: %s\n", ct_last_error());
        exit(1);
    }
    return t;
}

/* ||gpu - ref|| / ||ref||, the GPU tensor read back; matching infinities count as equal and a
 * lone infinity as a total mismatch. */
static double rel_err(const ct_tensor *gpu, const ct_tensor *ref) {
    ct_tensor *got = to_cpu(gpu);
    double diff = 0, norm = 0;
    for (int64_t i = 0; i < ct_numel(ref); i++) {
        double a = ct_get(got, i), b = ct_get(ref, i);
        if (isinf(a) || isinf(b)) {
            if (a != b) diff += 1e300;
            continue;
        }
        diff += (a - b) * (a - b);
        norm += b * b;
    }
    ct_tensor_free(got);
    return norm > 0 ? sqrt(diff / norm) : sqrt(diff);
}

/* ||gpu - ref|| / ||ref - start||: the error of what was added to `start`, so a gradient that
 * is small beside the random values it accumulates into is still checked at full strictness. */
static double rel_err_increment(const ct_tensor *gpu, const ct_tensor *ref, const ct_tensor *start) {
    ct_tensor *got = to_cpu(gpu);
    double diff = 0, norm = 0;
    for (int64_t i = 0; i < ct_numel(ref); i++) {
        double a = ct_get(got, i), b = ct_get(ref, i), s = ct_get(start, i);
        diff += (a - b) * (a - b);
        norm += (b - s) * (b - s);
    }
    ct_tensor_free(got);
    return norm > 0 ? sqrt(diff / norm) : sqrt(diff);
}

static bool same_bits(const ct_tensor *g1, const ct_tensor *g2) {
    ct_tensor *a = to_cpu(g1), *b = to_cpu(g2);
    bool same = memcmp(a->data, b->data, ct_nbytes(a)) == 0;
    ct_tensor_free(a);
    ct_tensor_free(b);
    return same;
}

/* ---- GEMM ---- */

static void expect_gemm(const char *name, ct_tensor *a, bool ta, ct_tensor *b, bool tb, ct_dtype c_dtype,
                        int64_t M, int64_t N, double tol) {
    const ct_backend *cpu = ct_cpu_backend();
    ct_tensor *c = cpu_random(c_dtype, 2, (int64_t[]){M, N});
    ct_tensor *ga = to_gpu(a), *gb = to_gpu(b), *gc = to_gpu(c);
    CHECK(cpu->gemm(a, ta, b, tb, c, 0.7, -0.3) == 0, "%s: cpu gemm: %s", name, ct_last_error());
    int status = ct_cuda_gemm(ga, ta, gb, tb, gc, 0.7, -0.3);
    CHECK(status == 0, "%s: cuda gemm: %s", name, ct_last_error());
    double err = status == 0 ? rel_err(gc, c) : 1;
    CHECK(err <= tol, "%s: relative error %.3g > %.1g", name, err, tol);
    free_gpu(ga), free_gpu(gb), free_gpu(gc);
    ct_tensor_free(c);
}

static void test_gemm_f32_transposes(void) {
    const int64_t M = 37, N = 53, K = 29;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            ct_tensor *a = cpu_random(CT_F32, 2, ta ? (int64_t[]){K, M} : (int64_t[]){M, K});
            ct_tensor *b = cpu_random(CT_F32, 2, tb ? (int64_t[]){N, K} : (int64_t[]){K, N});
            char name[64];
            snprintf(name, sizeof name, "gemm f32 ta=%d tb=%d", ta, tb);
            expect_gemm(name, a, ta, b, tb, CT_F32, M, N, 1e-5);
            ct_tensor_free(a), ct_tensor_free(b);
        }
}

static void test_gemm_dtypes(void) {
    /* a [2, 19, 31] is viewed as [38, 31]: leading dimensions flattened */
    ct_tensor *a32 = cpu_random(CT_F32, 3, (int64_t[]){2, 19, 31}), *b32 = cpu_random(CT_F32, 2, (int64_t[]){31, 45});
    ct_tensor *a16 = cpu_random(CT_BF16, 3, (int64_t[]){2, 19, 31}), *b16 = cpu_random(CT_BF16, 2, (int64_t[]){31, 45});
    ct_tensor *bt16 = cpu_random(CT_BF16, 2, (int64_t[]){45, 31});
    expect_gemm("gemm f32 3-D a", a32, false, b32, false, CT_F32, 38, 45, 1e-5);
    expect_gemm("gemm bf16 a, b -> f32 c", a16, false, b16, false, CT_F32, 38, 45, 1e-2);
    expect_gemm("gemm bf16 a, b -> bf16 c", a16, false, b16, false, CT_BF16, 38, 45, 1e-2);
    expect_gemm("gemm bf16 a, b^T -> bf16 c", a16, false, bt16, true, CT_BF16, 38, 45, 1e-2);
    expect_gemm("gemm f32 a, bf16 b -> f32 c", a32, false, b16, false, CT_F32, 38, 45, 1e-5);
    expect_gemm("gemm bf16 a, f32 b -> bf16 c", a16, false, b32, false, CT_BF16, 38, 45, 1e-2);

    /* i8 weights (the linear layer's b^T), per row and per block of 8 */
    ct_tensor *w = cpu_random(CT_F32, 2, (int64_t[]){45, 31});
    ct_tensor *w8_row = ct_quantize_i8(w, 0, true, "w8"), *w8_block = ct_quantize_i8(w, 8, true, "w8b");
    CHECK(w8_row && w8_block, "quantize: %s", ct_last_error());
    if (w8_row && w8_block) {
        expect_gemm("gemm f32 a, i8 b^T (per row)", a32, false, w8_row, true, CT_F32, 38, 45, 1e-5);
        expect_gemm("gemm f32 a, i8 b^T (per block)", a32, false, w8_block, true, CT_F32, 38, 45, 1e-5);
        expect_gemm("gemm bf16 a, i8 b^T -> bf16 c", a16, false, w8_row, true, CT_BF16, 38, 45, 1e-2);
    }
    ct_tensor_free(w8_row), ct_tensor_free(w8_block), ct_tensor_free(w);

    ct_tensor *a64 = cpu_random(CT_F64, 2, (int64_t[]){23, 17}), *b64 = cpu_random(CT_F64, 2, (int64_t[]){41, 17});
    expect_gemm("gemm f64 a, b^T", a64, false, b64, true, CT_F64, 23, 41, 1e-12);
    ct_tensor_free(a64), ct_tensor_free(b64);
    ct_tensor_free(a32), ct_tensor_free(b32), ct_tensor_free(a16), ct_tensor_free(b16), ct_tensor_free(bt16);
}

static void test_gemm_edges(void) {
    /* K == 0: c = beta * c (by hand: BLAS refuses a zero leading dimension) */
    ct_tensor *a = cpu_random(CT_F32, 2, (int64_t[]){7, 0}), *b = cpu_random(CT_F32, 2, (int64_t[]){0, 9});
    ct_tensor *c0 = cpu_random(CT_BF16, 2, (int64_t[]){7, 9}), *expect = ct_tensor_new(CT_F64, 2, c0->shape, NULL);
    for (int64_t i = 0; i < ct_numel(c0); i++) ct_set(expect, i, -0.3 * ct_get(c0, i));
    ct_tensor *ga = to_gpu(a), *gb = to_gpu(b), *gc = to_gpu(c0);
    CHECK(ct_cuda_gemm(ga, false, gb, false, gc, 0.7, -0.3) == 0, "gemm K = 0: %s", ct_last_error());
    double err = rel_err(gc, expect);
    CHECK(err <= 1e-2, "gemm K = 0 (bf16 c): relative error %.3g", err);
    free_gpu(ga), free_gpu(gb), free_gpu(gc);
    ct_tensor_free(a), ct_tensor_free(b), ct_tensor_free(c0), ct_tensor_free(expect);

    /* the same shape again builds no new plan */
    a = cpu_random(CT_F32, 2, (int64_t[]){33, 21});
    b = cpu_random(CT_F32, 2, (int64_t[]){21, 19});
    expect_gemm("gemm plan first", a, false, b, false, CT_F32, 33, 19, 1e-5);
    long long built = ct_cuda_gemm_get_stats().plans_built;
    expect_gemm("gemm plan again", a, false, b, false, CT_F32, 33, 19, 1e-5);
    CHECK(ct_cuda_gemm_get_stats().plans_built == built, "a repeated shape built a new plan (%lld -> %lld)", built,
          ct_cuda_gemm_get_stats().plans_built);

    /* f64 a with f32 b is refused with a message naming the dtypes */
    ct_tensor *a64 = cpu_random(CT_F64, 2, (int64_t[]){33, 21}), *c = cpu_random(CT_F32, 2, (int64_t[]){33, 19});
    ga = to_gpu(a64), gb = to_gpu(b), gc = to_gpu(c);
    ct_clear_error();
    CHECK(ct_cuda_gemm(ga, false, gb, false, gc, 1, 0) < 0 && strstr(ct_last_error(), "f64 a"),
          "mixed f64 / f32 gemm: %s", ct_last_error());
    free_gpu(ga), free_gpu(gb), free_gpu(gc);
    ct_tensor_free(a64), ct_tensor_free(c), ct_tensor_free(a), ct_tensor_free(b);
}

/* ---- attention ---- */

typedef struct {
    const char *name;
    int64_t B, T, S, Hq, Hkv, D;
    ct_dtype dtype;
    int ids;      /* 0: derived positions on the host (kv offset S - T); 1: packed rows, ids on the GPU;
                   * 2: packed rows, ids on the host */
    int path;     /* 0: dispatch (cuDNN when it qualifies); 1: hand-written kernel */
    double tol;
} attention_case;

static ct_tensor *cpu_ids(int64_t B, int64_t n) { return ct_tensor_new(CT_I32, 2, (int64_t[]){B, n}, NULL); }

/* Positions and segments for the case: derived ones, or packed rows of 2-3 sequences whose
 * positions restart at 0, with a few queries at position -1 that see no key at all. */
static void make_ids(const attention_case *c, ct_tensor **q_pos, ct_tensor **k_pos, ct_tensor **q_seg,
                     ct_tensor **k_seg) {
    *q_pos = cpu_ids(c->B, c->T), *k_pos = cpu_ids(c->B, c->S);
    *q_seg = *k_seg = NULL;
    int32_t *qp = (*q_pos)->data, *kp = (*k_pos)->data;
    if (c->ids == 0) {
        for (int64_t b = 0; b < c->B; b++) {
            for (int64_t t = 0; t < c->T; t++) qp[b * c->T + t] = (int32_t)(c->S - c->T + t);
            for (int64_t s = 0; s < c->S; s++) kp[b * c->S + s] = (int32_t)s;
        }
        return;
    }
    *q_seg = cpu_ids(c->B, c->T), *k_seg = cpu_ids(c->B, c->S);
    int32_t *qs = (*q_seg)->data, *ks = (*k_seg)->data;
    for (int64_t b = 0; b < c->B; b++) {
        int64_t cut1 = c->T / 3 + b, cut2 = 2 * c->T / 3 + 2 * b; /* S == T for packed rows */
        for (int64_t t = 0; t < c->T; t++) {
            int32_t seg = t < cut1 ? 0 : t < cut2 ? 1 : 2;
            int64_t start = seg == 0 ? 0 : seg == 1 ? cut1 : cut2;
            qs[b * c->T + t] = ks[b * c->T + t] = seg;
            qp[b * c->T + t] = kp[b * c->T + t] = (int32_t)(t - start);
        }
        qp[b * c->T + 1] = -1; /* sees nothing: zero output, no gradient */
    }
}

static bool kernel_forced(void) {
    const char *value = getenv("CT_CUDA_ATTENTION");
    return value && strcmp(value, "kernel") == 0;
}

/* Whether the dispatch must take cuDNN for this case: what cuda_attention.cu's qualification
 * (bf16, no segments, positions 0..T-1 on the host, T == S) and ct_cudnn_sdpa_supported (device,
 * cuDNN version, shape) accept, unless CT_CUDA_ATTENTION=kernel forces the kernel. */
static bool expects_cudnn(const attention_case *c, bool backward) {
    return c->path == 0 && !kernel_forced() && c->dtype == CT_BF16 && c->ids == 0 && c->S == c->T &&
           ct_cudnn_sdpa_supported(c->B, c->T, c->Hq, c->Hkv, c->D, backward);
}

/* A dispatch case ran one forward (or backward) since `before`, on the path it must take: no
 * silent fall-back from cuDNN to the kernel. */
static void expect_path(const attention_case *c, bool backward, ct_cuda_attention_stats before) {
    if (c->path != 0) return;
    ct_cuda_attention_stats now = ct_cuda_attention_get_stats();
    long long cudnn = backward ? now.cudnn_backward - before.cudnn_backward : now.cudnn_forward - before.cudnn_forward;
    long long kernel =
        backward ? now.kernel_backward - before.kernel_backward : now.kernel_forward - before.kernel_forward;
    bool want_cudnn = expects_cudnn(c, backward);
    CHECK(want_cudnn ? cudnn == 1 && kernel == 0 : cudnn == 0 && kernel == 1,
          "%s: the %s ran cuDNN %lld and the kernel %lld times; expected the %s (a cuDNN refusal is on stderr)",
          c->name, backward ? "backward" : "forward", cudnn, kernel, want_cudnn ? "cuDNN path" : "kernel");
}

/* A gradient that accumulated into `start`: bf16 cases compare what was added (the bf16 path's
 * error stands out against the random start values); f32 / f64 ones the whole value, since there
 * the start's own rounding would dominate a small increment. */
static double grad_err(const attention_case *c, const ct_tensor *gpu, const ct_tensor *ref, const ct_tensor *start) {
    return c->dtype == CT_BF16 ? rel_err_increment(gpu, ref, start) : rel_err(gpu, ref);
}

static ct_tensor *cpu_copy(const ct_tensor *t) {
    ct_tensor *c = ct_tensor_new(t->dtype, t->ndim, t->shape, NULL);
    memcpy(c->data, t->data, ct_nbytes(t));
    return c;
}

typedef int (*attention_forward_fn)(const ct_tensor *, const ct_tensor *, const ct_tensor *, const ct_tensor *,
                                    const ct_tensor *, const ct_tensor *, const ct_tensor *, double, ct_tensor *,
                                    ct_tensor *);
typedef int (*attention_backward_fn)(const ct_tensor *, const ct_tensor *, const ct_tensor *, const ct_tensor *,
                                     const ct_tensor *, const ct_tensor *, const ct_tensor *, double,
                                     const ct_tensor *, const ct_tensor *, const ct_tensor *, ct_tensor *,
                                     ct_tensor *, ct_tensor *);

static void run_attention_case(const attention_case *c) {
    const ct_backend *cpu = ct_cpu_backend();
    ct_dtype real = c->dtype == CT_F64 ? CT_F64 : CT_F32;
    ct_tensor *q = cpu_random(c->dtype, 4, (int64_t[]){c->B, c->T, c->Hq, c->D});
    ct_tensor *k = cpu_random(c->dtype, 4, (int64_t[]){c->B, c->S, c->Hkv, c->D});
    ct_tensor *v = cpu_random(c->dtype, 4, (int64_t[]){c->B, c->S, c->Hkv, c->D});
    ct_tensor *q_pos, *k_pos, *q_seg, *k_seg;
    make_ids(c, &q_pos, &k_pos, &q_seg, &k_seg);
    double scale = 1.0 / sqrt((double)c->D) * 1.3;
    ct_tensor *out = ct_tensor_new(c->dtype, 4, q->shape, NULL);
    ct_tensor *lse = ct_tensor_new(real, 3, (int64_t[]){c->B, c->Hq, c->T}, NULL);
    CHECK(cpu->attention_forward(q, k, v, q_pos, k_pos, q_seg, k_seg, scale, out, lse) == 0, "%s: cpu forward: %s",
          c->name, ct_last_error());

    ct_tensor *gq_ = to_gpu(q), *gk_ = to_gpu(k), *gv_ = to_gpu(v), *g_out = to_gpu(out), *g_lse = to_gpu(lse);
    /* derived positions stay on the host, as the op layer passes them */
    bool on_gpu = c->ids == 1;
    ct_tensor *gqp = on_gpu ? to_gpu(q_pos) : q_pos, *gkp = on_gpu ? to_gpu(k_pos) : k_pos;
    ct_tensor *gqs = on_gpu ? to_gpu(q_seg) : q_seg, *gks = on_gpu ? to_gpu(k_seg) : k_seg;
    attention_forward_fn forward = c->path ? ct_cuda_attention_forward_kernel : ct_cuda_attention_forward;
    ct_cuda_attention_stats before = ct_cuda_attention_get_stats();
    int status = forward(gq_, gk_, gv_, gqp, gkp, gqs, gks, scale, g_out, g_lse);
    CHECK(status == 0, "%s: cuda forward: %s", c->name, ct_last_error());
    expect_path(c, false, before);
    if (status == 0) {
        double e_out = rel_err(g_out, out), e_lse = rel_err(g_lse, lse);
        CHECK(e_out <= c->tol, "%s: out relative error %.3g > %.1g", c->name, e_out, c->tol);
        CHECK(e_lse <= c->tol, "%s: lse relative error %.3g > %.1g", c->name, e_lse, c->tol);
    }

    /* backward: gradients start random, so accumulation (+=) is checked too; the GPU gets the
     * CPU's out and lse, so both backward passes see the same inputs */
    ct_tensor *grad_out = cpu_random(real, 4, q->shape);
    ct_tensor *dq = cpu_random(real, 4, q->shape), *dk = cpu_random(real, 4, k->shape);
    ct_tensor *dv = cpu_random(real, 4, k->shape);
    ct_tensor *dq0 = cpu_copy(dq), *dk0 = cpu_copy(dk), *dv0 = cpu_copy(dv);
    ct_tensor *g_go = to_gpu(grad_out), *g_dq = to_gpu(dq), *g_dk = to_gpu(dk), *g_dv = to_gpu(dv);
    ct_tensor *g_dq2 = to_gpu(dq), *g_dk2 = to_gpu(dk), *g_dv2 = to_gpu(dv);
    ct_tensor *c_out = to_gpu(out), *c_lse = to_gpu(lse);
    CHECK(cpu->attention_backward(q, k, v, q_pos, k_pos, q_seg, k_seg, scale, out, lse, grad_out, dq, dk, dv) == 0,
          "%s: cpu backward: %s", c->name, ct_last_error());
    attention_backward_fn backward = c->path ? ct_cuda_attention_backward_kernel : ct_cuda_attention_backward;
    before = ct_cuda_attention_get_stats();
    status = backward(gq_, gk_, gv_, gqp, gkp, gqs, gks, scale, c_out, c_lse, g_go, g_dq, g_dk, g_dv);
    CHECK(status == 0, "%s: cuda backward: %s", c->name, ct_last_error());
    expect_path(c, true, before);
    if (status == 0) {
        double eq = grad_err(c, g_dq, dq, dq0), ek = grad_err(c, g_dk, dk, dk0), ev = grad_err(c, g_dv, dv, dv0);
        CHECK(eq <= c->tol && ek <= c->tol && ev <= c->tol, "%s: grad relative errors q %.3g k %.3g v %.3g > %.1g",
              c->name, eq, ek, ev, c->tol);
        /* the same backward again: bit for bit (no atomics, fixed summation order) */
        if (c->path == 1) {
            CHECK(backward(gq_, gk_, gv_, gqp, gkp, gqs, gks, scale, c_out, c_lse, g_go, g_dq2, g_dk2, g_dv2) == 0,
                  "%s: second backward: %s", c->name, ct_last_error());
            CHECK(same_bits(g_dq, g_dq2) && same_bits(g_dk, g_dk2) && same_bits(g_dv, g_dv2),
                  "%s: backward is not bit-identical run to run", c->name);
        }
    }
    /* only grad_k wanted: it gains the same increment again, grad_q and grad_v are not touched */
    ct_tensor *g_dk3 = to_gpu(dk), *dk3 = ct_tensor_new(real, 4, k->shape, NULL);
    for (int64_t i = 0; i < ct_numel(dk); i++) ct_set(dk3, i, 2 * ct_get(dk, i) - ct_get(dk0, i));
    status = backward(gq_, gk_, gv_, gqp, gkp, gqs, gks, scale, c_out, c_lse, g_go, NULL, g_dk3, NULL);
    CHECK(status == 0, "%s: backward into grad_k only: %s", c->name, ct_last_error());
    if (status == 0) {
        double ek = grad_err(c, g_dk3, dk3, dk);
        CHECK(ek <= c->tol, "%s: grad_k alone: relative error %.3g > %.1g", c->name, ek, c->tol);
    }

    free_gpu(g_dk3);
    ct_tensor_free(dk3);
    free_gpu(gq_), free_gpu(gk_), free_gpu(gv_), free_gpu(g_out), free_gpu(g_lse), free_gpu(g_go);
    free_gpu(g_dq), free_gpu(g_dk), free_gpu(g_dv), free_gpu(g_dq2), free_gpu(g_dk2), free_gpu(g_dv2);
    free_gpu(c_out), free_gpu(c_lse);
    if (on_gpu) free_gpu(gqp), free_gpu(gkp), free_gpu(gqs), free_gpu(gks);
    ct_tensor_free(q), ct_tensor_free(k), ct_tensor_free(v), ct_tensor_free(out), ct_tensor_free(lse);
    ct_tensor_free(q_pos), ct_tensor_free(k_pos), ct_tensor_free(q_seg), ct_tensor_free(k_seg);
    ct_tensor_free(grad_out), ct_tensor_free(dq), ct_tensor_free(dk), ct_tensor_free(dv);
    ct_tensor_free(dq0), ct_tensor_free(dk0), ct_tensor_free(dv0);
}

static const attention_case attention_cases[] = {
    {"attention f32 GQA causal", 2, 37, 37, 6, 2, 40, CT_F32, 0, 1, 1e-5},
    {"attention f32 MHA kv offset", 2, 13, 45, 3, 3, 24, CT_F32, 0, 1, 1e-5},
    {"attention f32 packed segments", 2, 71, 71, 4, 2, 64, CT_F32, 1, 1, 1e-5},
    {"attention f32 D=128 MQA", 1, 67, 67, 4, 1, 128, CT_F32, 0, 1, 1e-5},
    {"attention f32 D=160 host ids", 1, 33, 33, 2, 2, 160, CT_F32, 2, 1, 1e-5},
    {"attention f64 GQA segments", 2, 19, 19, 4, 2, 12, CT_F64, 1, 1, 1e-12},
    {"attention bf16 kernel", 2, 70, 70, 4, 1, 64, CT_BF16, 0, 1, 1e-2},
    {"attention bf16 kernel segments", 1, 53, 53, 6, 3, 72, CT_BF16, 1, 1, 1e-2},
    /* through the dispatch: cuDNN where it qualifies ... */
    {"attention bf16 dispatch GQA T=129 (cuDNN)", 2, 129, 129, 8, 2, 64, CT_BF16, 0, 0, 1e-2},
    {"attention bf16 dispatch D=128 T=200 (cuDNN)", 1, 200, 200, 4, 4, 128, CT_BF16, 0, 0, 1e-2},
    {"attention bf16 dispatch GQA D=128 T=129 (cuDNN)", 2, 129, 129, 8, 2, 128, CT_BF16, 0, 0, 1e-2},
    {"attention bf16 dispatch MQA T=256 (cuDNN)", 1, 256, 256, 4, 1, 64, CT_BF16, 0, 0, 1e-2},
    {"attention bf16 dispatch D=40 T=77 (cuDNN)", 3, 77, 77, 6, 3, 40, CT_BF16, 0, 0, 1e-2},
    /* ... and the kernel for what cuDNN's graph does not take */
    {"attention bf16 dispatch D=20 (kernel)", 1, 45, 45, 2, 1, 20, CT_BF16, 0, 0, 1e-2},
    {"attention bf16 dispatch D=160 (kernel)", 1, 33, 33, 2, 2, 160, CT_BF16, 0, 0, 1e-2},
    {"attention bf16 dispatch kv offset (kernel)", 2, 13, 45, 4, 2, 64, CT_BF16, 0, 0, 1e-2},
    {"attention bf16 dispatch segments (kernel)", 1, 53, 53, 4, 2, 64, CT_BF16, 2, 0, 1e-2},
};

/* The first dispatch case: what the plan-cache and forced-kernel checks repeat. */
static const attention_case *first_dispatch_case(void) {
    size_t i = 0;
    while (attention_cases[i].path != 0) i++;
    return &attention_cases[i];
}

static void test_attention(void) {
    for (size_t i = 0; i < sizeof attention_cases / sizeof attention_cases[0]; i++)
        run_attention_case(&attention_cases[i]);
    /* the same shape again reuses its cuDNN plans */
    const attention_case *again = first_dispatch_case();
    if (expects_cudnn(again, false)) {
        long long built = ct_cudnn_sdpa_get_stats().plans_built;
        run_attention_case(again);
        CHECK(ct_cudnn_sdpa_get_stats().plans_built == built,
              "a repeated attention shape built new cuDNN plans (%lld -> %lld)", built,
              ct_cudnn_sdpa_get_stats().plans_built);
    }
    ct_cuda_attention_stats s = ct_cuda_attention_get_stats();
    ct_cudnn_sdpa_stats p = ct_cudnn_sdpa_get_stats();
    printf("attention paths: cuDNN forward %lld, backward %lld; kernel forward %lld, backward %lld; cuDNN plans "
           "built %lld, failed %lld, cached %d\n",
           s.cudnn_forward, s.cudnn_backward, s.kernel_forward, s.kernel_backward, p.plans_built, p.plans_failed,
           p.cached_plans);
}

/* In the child run with CT_CUDA_ATTENTION=kernel: a case cuDNN would take goes to the kernel,
 * forward and backward, and cuDNN never runs. */
static void test_forced_kernel_child(void) {
    CHECK(kernel_forced(), "the child run has no CT_CUDA_ATTENTION=kernel in its environment");
    run_attention_case(first_dispatch_case());
    ct_cuda_attention_stats s = ct_cuda_attention_get_stats();
    CHECK(s.cudnn_forward == 0 && s.cudnn_backward == 0 && s.kernel_forward > 0 && s.kernel_backward > 0,
          "CT_CUDA_ATTENTION=kernel: cuDNN forward %lld, backward %lld; kernel forward %lld, backward %lld",
          s.cudnn_forward, s.cudnn_backward, s.kernel_forward, s.kernel_backward);
}

/* The dispatch reads CT_CUDA_ATTENTION once per process, so the forced run is a child process:
 * this executable again, with the variable set and --forced-kernel. */
static void test_forced_kernel(void) {
    extern char **environ;
    char *child_argv[] = {"/proc/self/exe", "--forced-kernel", NULL};
    pid_t pid;
    int status = -1;
    CHECK(setenv("CT_CUDA_ATTENTION", "kernel", 1) == 0, "setenv failed");
    int rc = posix_spawn(&pid, "/proc/self/exe", NULL, NULL, child_argv, environ);
    CHECK(rc == 0, "starting the CT_CUDA_ATTENTION=kernel run: %s", strerror(rc));
    if (rc == 0) {
        CHECK(waitpid(pid, &status, 0) == pid, "waiting for the CT_CUDA_ATTENTION=kernel run");
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the CT_CUDA_ATTENTION=kernel run failed (status %d)",
              status);
    }
    unsetenv("CT_CUDA_ATTENTION");
}

int main(int argc, char **argv) {
    if (!ct_device_available(CT_CUDA)) {
        ct_test_note_skip("test_cuda_gemm_attention", "no usable CUDA device (docs/gpu.md runs the GPU tests on a GPU machine)");
        return 77;
    }
    ct_rng_seed(&rng, 20240611);
    if (argc > 1 && strcmp(argv[1], "--forced-kernel") == 0) {
        test_forced_kernel_child();
        ct_cudnn_sdpa_release();
        return ct_test_finish("test_cuda_gemm_attention (CT_CUDA_ATTENTION=kernel)");
    }
    test_gemm_f32_transposes();
    test_gemm_dtypes();
    test_gemm_edges();
    test_attention();
    test_forced_kernel();
    ct_cuda_gemm_release();
    ct_cudnn_sdpa_release();
    return ct_test_finish("test_cuda_gemm_attention");
}

#else

int main(void) {
    ct_test_note_skip("test_cuda_gemm_attention", "built without CUDA (nvcc not found, or -DCT_ENABLE_CUDA=OFF)");
    return 77;
}

#endif
