/* CPU vs CUDA parity of the CUDA op table's kernels (kernels/cuda/cuda_kernels.h), plus the
 * caching allocator's contract.
 *
 * Every kernel runs on the CPU backend (the reference) and on the GPU on the same random inputs
 * of odd sizes; the GPU result is copied back and compared norm-wise, ||gpu - cpu|| / ||cpu||:
 * f32 <= 1e-5, bf16 <= 1e-2, f64 <= 1e-12. Dropout masks and bf16 rounding are compared exactly.
 * Kernels are called through ct_cuda_backend_table(), so the test runs whether or not the whole
 * table is complete; GEMM and attention have their own tests. Bad inputs (a token id or a target
 * out of range) must fail with the CPU's one-line message. The allocator must stop calling
 * cudaMalloc after a warm-up step and report an out-of-memory request with the bytes asked.
 * The multi-tensor optimizer entries (adamw_multi, sum_squares_multi, scale_multi) run over lists
 * of odd sizes, f32, f64 and mixed, one of 5001 tensors (more than one launch), for a few steps,
 * without cudaMalloc after the first; AdamW and the scale are expected to match the CPU bit for
 * bit (printed), and must within the tolerances above.
 *
 * ct_linear (models/linear.h), the model's one projection, runs forward and backward on both
 * devices for f32, bf16, i8 per-row and i8 per-block-32 weights (45 in-features: a partial last
 * block), with a bias: output, x's gradient and the f32 weight's and bias's gradients. LoRA on f32
 * and i8 bases, DoRA's weight norm (dora_row_norms) on f32, bf16, i8 and f64, and DoRA on f32,
 * bf16 and i8 bases with dropout (output and the gradients of x, A, B and the magnitude). The
 * training loss without vocabulary-sized logits (gathered target rows, ct_kd_loss with no teacher)
 * with an f32 and a frozen bf16 head.
 *
 * Needs a GPU: exits 77 (skipped) without one, and in a build without CUDA. */
#include <stdio.h>
#include <string.h>

#include "autograd/ops.h"
#include "autograd/tape.h"
#include "core/arena.h"
#include "core/error.h"
#include "core/rng.h"
#include "kernels/backend.h"
#include "autograd/ops_transformer.h"
#include "models/linear.h"
#include "models/llama.h"
#include "models/lora.h"
#include "kernels/device.h"
#include "tests/ct_test.h"

#ifndef CT_HAVE_CUDA
int main(void) {
    ct_test_note_skip("test_cuda_parity", "built without CUDA (nvcc not found, or -DCT_ENABLE_CUDA=OFF)");
    return 77;
}
#else
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/cuda_memory.h"

#define TOL_F32 1e-5
#define TOL_BF16 1e-2
#define TOL_F64 1e-12

static const ct_backend *cpu, *gpu;
static ct_rng rng;

/* ---- tensors on both devices ---- */

#define MAX_DEVICE_BLOCKS 4096
static void *device_blocks[MAX_DEVICE_BLOCKS];
static int n_device_blocks;

/* A device copy of a CPU tensor (the header in the host arena, the data from the CUDA allocator). */
static ct_tensor *on_gpu(const ct_tensor *t) {
    if (!t) return NULL;
    ct_tensor *g = ct_arena_calloc(sizeof *g);
    *g = *t;
    g->device = CT_CUDA;
    g->base = NULL;
    g->scale = t->scale ? on_gpu(t->scale) : NULL;
    size_t nbytes = ct_nbytes(t);
    g->data = ct_device_alloc(CT_CUDA, nbytes);
    if (!g->data || n_device_blocks == MAX_DEVICE_BLOCKS) {
        fprintf(stderr, "device allocation failed: %s\n", ct_last_error());
        exit(1);
    }
    device_blocks[n_device_blocks++] = g->data;
    if (ct_device_copy(CT_CUDA, g->data, CT_CPU, t->data, nbytes) < 0) {
        fprintf(stderr, "copy to device failed: %s\n", ct_last_error());
        exit(1);
    }
    return g;
}

static void free_device_blocks(void) {
    for (int i = 0; i < n_device_blocks; i++) ct_device_free(CT_CUDA, device_blocks[i]);
    n_device_blocks = 0;
}

/* A host copy of a device tensor. */
static ct_tensor *on_cpu(const ct_tensor *g) {
    ct_tensor *t = ct_empty(g->dtype, g->ndim, g->shape);
    if (ct_device_copy(CT_CPU, t->data, CT_CUDA, g->data, ct_nbytes(g)) < 0) {
        fprintf(stderr, "copy to host failed: %s\n", ct_last_error());
        exit(1);
    }
    return t;
}

static ct_tensor *randn(ct_dtype dtype, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3, double std) {
    int64_t shape[4] = {d0, d1, d2, d3};
    ct_tensor *t = ct_empty(dtype, ndim, shape);
    ct_fill_normal(t, &rng, 0.0, std);
    return t;
}

static ct_tensor *rand_ids(int ndim, int64_t d0, int64_t d1, int64_t below) {
    int64_t shape[2] = {d0, d1};
    ct_tensor *t = ct_empty(CT_I32, ndim, shape);
    for (int64_t i = 0; i < ct_numel(t); i++) ((int32_t *)t->data)[i] = (int32_t)ct_rng_below(&rng, (uint64_t)below);
    return t;
}

static double tolerance(ct_dtype dtype) { return dtype == CT_F64 ? TOL_F64 : dtype == CT_BF16 ? TOL_BF16 : TOL_F32; }

/* ||gpu - cpu|| / ||cpu|| within tol; prints the error so a GPU run shows the margins. */
static void compare(const char *what, const ct_tensor *cpu_result, const ct_tensor *gpu_result, double tol) {
    ct_tensor *back = on_cpu(gpu_result);
    double diff = 0, norm = 0;
    for (int64_t i = 0; i < ct_numel(cpu_result); i++) {
        double a = ct_get(cpu_result, i), b = ct_get(back, i);
        diff += (a - b) * (a - b);
        norm += a * a;
    }
    double err = norm > 0 ? sqrt(diff / norm) : sqrt(diff);
    printf("  %-48s %.3g\n", what, err);
    CHECK(err <= tol, "%s: relative error %.3g > %.1g", what, err, tol);
}

static void check_ok(int status, const char *what) {
    CHECK(status == 0, "%s failed: %s", what, ct_last_error());
}

/* ---- elementwise ---- */

static void test_binary(ct_dtype da, ct_dtype db, bool row) {
    ct_tensor *a = randn(da, 2, 7, 37, 0, 0, 1.0), *b = row ? randn(db, 1, 37, 0, 0, 0, 1.0) : randn(db, 2, 7, 37, 0, 0, 1.0);
    for (int op = 0; op < 2; op++) {
        ct_tensor *out = ct_empty_like(a), *gout = on_gpu(out);
        check_ok(cpu->binary((ct_binary_op)op, a, b, out), "cpu binary");
        check_ok(gpu->binary((ct_binary_op)op, on_gpu(a), on_gpu(b), gout), "gpu binary");
        char what[96];
        snprintf(what, sizeof what, "binary %s %s/%s%s", op ? "mul" : "add", ct_dtype_name(da), ct_dtype_name(db),
                 row ? " row" : "");
        compare(what, out, gout, tolerance(da == CT_BF16 ? CT_BF16 : da));
    }
}

static void test_convert(void) {
    ct_tensor *x = randn(CT_F32, 2, 5, 77, 0, 0, 3.0), *y = ct_empty(CT_BF16, 2, x->shape);
    ct_tensor *gy = on_gpu(y);
    check_ok(cpu->convert(x, y), "cpu convert");
    check_ok(gpu->convert(on_gpu(x), gy), "gpu convert");
    compare("convert f32->bf16 (exact)", y, gy, 0.0);
    ct_tensor *back = ct_empty(CT_F32, 2, x->shape), *gback = on_gpu(back);
    check_ok(cpu->convert(y, back), "cpu convert");
    check_ok(gpu->convert(on_gpu(y), gback), "gpu convert");
    compare("convert bf16->f32 (exact)", back, gback, 0.0);
}

static void test_axpby(ct_dtype dx, ct_dtype dy) {
    ct_tensor *x = randn(dx, 2, 9, 41, 0, 0, 1.0), *y = randn(dy, 2, 9, 41, 0, 0, 1.0), *gy = on_gpu(y);
    check_ok(cpu->axpby(0.7, x, -1.3, y), "cpu axpby");
    check_ok(gpu->axpby(0.7, on_gpu(x), -1.3, gy), "gpu axpby");
    char what[64];
    snprintf(what, sizeof what, "axpby %s into %s", ct_dtype_name(dx), ct_dtype_name(dy));
    compare(what, y, gy, tolerance(dy));
}

/* beta 0 writes alpha * x without reading y (a fresh gradient buffer): NaN in y must not leak. */
static void test_axpby_beta_zero(ct_dtype dtype) {
    ct_tensor *x = randn(dtype, 2, 9, 41, 0, 0, 1.0), *y = ct_empty(dtype, 2, x->shape);
    for (int64_t i = 0; i < ct_numel(y); i++) ct_set(y, i, NAN);
    ct_tensor *gy = on_gpu(y);
    check_ok(cpu->axpby(0.7, x, 0.0, y), "cpu axpby beta 0");
    check_ok(gpu->axpby(0.7, on_gpu(x), 0.0, gy), "gpu axpby beta 0");
    char what[64];
    snprintf(what, sizeof what, "axpby beta 0 over NaN, %s", ct_dtype_name(dtype));
    compare(what, y, gy, tolerance(dtype));
}

static void test_mul_accumulate(ct_dtype dtype, ct_dtype dy, bool row) {
    ct_tensor *x = randn(dtype, 2, 11, 29, 0, 0, 1.0);
    ct_tensor *y = row ? randn(dy, 1, 29, 0, 0, 0, 1.0) : randn(dy, 2, 11, 29, 0, 0, 1.0);
    ct_tensor *dst = randn(dtype, 2, 11, 29, 0, 0, 1.0), *gdst = on_gpu(dst);
    check_ok(cpu->mul_accumulate(x, y, dst), "cpu mul_accumulate");
    check_ok(gpu->mul_accumulate(on_gpu(x), on_gpu(y), gdst), "gpu mul_accumulate");
    char what[64];
    snprintf(what, sizeof what, "mul_accumulate %s*%s%s", ct_dtype_name(dtype), ct_dtype_name(dy), row ? " row" : "");
    compare(what, dst, gdst, tolerance(dtype));
}

static void test_sum_rows(ct_dtype dtype, int y_kind /* 0 none, 1 same dtype, 2 bf16 */) {
    ct_tensor *x = randn(dtype, 2, 53, 37, 0, 0, 1.0);
    ct_tensor *y = y_kind == 0 ? NULL : randn(y_kind == 2 ? CT_BF16 : dtype, 2, 53, 37, 0, 0, 1.0);
    ct_tensor *dst = randn(dtype, 1, 37, 0, 0, 0, 1.0), *gdst = on_gpu(dst);
    check_ok(cpu->sum_rows_accumulate(x, y, dst), "cpu sum_rows_accumulate");
    check_ok(gpu->sum_rows_accumulate(on_gpu(x), on_gpu(y), gdst), "gpu sum_rows_accumulate");
    char what[64];
    snprintf(what, sizeof what, "sum_rows_accumulate %s y=%s", ct_dtype_name(dtype),
             y ? ct_dtype_name(y->dtype) : "none");
    /* same order as the CPU, in double: f64 agrees to the last bit */
    compare(what, dst, gdst, dtype == CT_F64 ? 0.0 : tolerance(dtype));
}

static void test_tanh_and_scalar(ct_dtype dtype) {
    ct_tensor *x = randn(dtype, 2, 13, 31, 0, 0, 1.5), *y = ct_empty_like(x), *gy = on_gpu(y);
    check_ok(cpu->tanh_forward(x, y), "cpu tanh");
    check_ok(gpu->tanh_forward(on_gpu(x), gy), "gpu tanh");
    compare(dtype == CT_F64 ? "tanh_forward f64" : "tanh_forward f32", y, gy, tolerance(dtype));
    ct_tensor *g = randn(dtype, 2, 13, 31, 0, 0, 1.0), *gx = randn(dtype, 2, 13, 31, 0, 0, 1.0), *ggx = on_gpu(gx);
    check_ok(cpu->tanh_backward(y, g, gx), "cpu tanh_backward");
    check_ok(gpu->tanh_backward(on_gpu(y), on_gpu(g), ggx), "gpu tanh_backward");
    compare(dtype == CT_F64 ? "tanh_backward f64" : "tanh_backward f32", gx, ggx, tolerance(dtype));
    ct_tensor *d = randn(dtype, 1, 101, 0, 0, 0, 1.0), *gd = on_gpu(d);
    check_ok(cpu->add_scalar(d, -0.37), "cpu add_scalar");
    check_ok(gpu->add_scalar(gd, -0.37), "gpu add_scalar");
    compare(dtype == CT_F64 ? "add_scalar f64" : "add_scalar f32", d, gd, tolerance(dtype));
}

/* ---- reductions ---- */

static void test_sum(ct_dtype dtype, int64_t n) {
    ct_tensor *x = randn(dtype, 1, n, 0, 0, 0, 1.0), *out = ct_empty(dtype, 0, NULL), *gout = on_gpu(out);
    check_ok(cpu->sum(x, out), "cpu sum");
    check_ok(gpu->sum(on_gpu(x), gout), "gpu sum");
    char what[64];
    snprintf(what, sizeof what, "sum %s n=%lld", ct_dtype_name(dtype), (long long)n);
    /* a sum of random signs cancels: compare against the sum of magnitudes' scale instead */
    double cpu_value = ct_get(out, 0), gpu_value = ct_get(on_cpu(gout), 0), scale = 0;
    for (int64_t i = 0; i < n; i++) scale += fabs(ct_get(x, i));
    double err = fabs(cpu_value - gpu_value) / scale;
    printf("  %-48s %.3g\n", what, err);
    CHECK(err <= tolerance(dtype), "%s: %.17g vs %.17g", what, cpu_value, gpu_value);
    double cpu_squares = 0, gpu_squares = 0;
    const ct_tensor *gx = on_gpu(x);
    check_ok(cpu->sum_squares_multi(1, (const ct_tensor *const[]){x}, &cpu_squares), "cpu sum_squares_multi");
    check_ok(gpu->sum_squares_multi(1, &gx, &gpu_squares), "gpu sum_squares_multi");
    err = fabs(cpu_squares - gpu_squares) / cpu_squares;
    printf("  sum_squares %-36s %.3g\n", ct_dtype_name(dtype), err);
    CHECK(err <= tolerance(dtype), "sum_squares %s: %.17g vs %.17g", ct_dtype_name(dtype), cpu_squares, gpu_squares);
}

/* ---- embedding ---- */

static void test_embedding(ct_dtype dtype) {
    ct_tensor *w = randn(dtype, 2, 31, 19, 0, 0, 1.0), *ids = rand_ids(2, 3, 17, 31);
    ((int32_t *)ids->data)[5] = ((int32_t *)ids->data)[40] = 7; /* a repeated id */
    int64_t shape[3] = {3, 17, 19};
    ct_tensor *out = ct_empty(dtype, 3, shape), *gout = on_gpu(out), *gids = on_gpu(ids);
    check_ok(cpu->embedding_forward(w, ids, out), "cpu embedding");
    check_ok(gpu->embedding_forward(on_gpu(w), gids, gout), "gpu embedding");
    char what[64];
    snprintf(what, sizeof what, "embedding_forward %s (exact)", ct_dtype_name(dtype));
    compare(what, out, gout, 0.0);
    if (dtype == CT_BF16) return; /* gradients are f32 / f64 */
    ct_tensor *g = randn(dtype, 3, 3, 17, 19, 0, 1.0), *gw = randn(dtype, 2, 31, 19, 0, 0, 1.0), *ggw = on_gpu(gw);
    check_ok(cpu->embedding_backward(g, ids, gw), "cpu embedding_backward");
    check_ok(gpu->embedding_backward(on_gpu(g), gids, ggw), "gpu embedding_backward");
    snprintf(what, sizeof what, "embedding_backward %s (token order: exact)", ct_dtype_name(dtype));
    compare(what, gw, ggw, 0.0);
}

static void test_embedding_i8(void) {
    ct_tensor *w = randn(CT_F32, 2, 23, 20, 0, 0, 1.0), *ids = rand_ids(1, 29, 0, 23);
    for (int block = 0; block <= 8; block += 8) {
        ct_tensor *q = ct_quantize_i8(w, block, false, NULL);
        int64_t shape[2] = {29, 20};
        ct_tensor *out = ct_empty(CT_F32, 2, shape), *gout = on_gpu(out);
        check_ok(cpu->embedding_forward(q, ids, out), "cpu embedding i8");
        check_ok(gpu->embedding_forward(on_gpu(q), on_gpu(ids), gout), "gpu embedding i8");
        compare(block ? "embedding_forward i8 per-block scales" : "embedding_forward i8 per-row scales", out, gout,
                TOL_F32);
    }
}

static void test_embedding_bad_id(void) {
    ct_tensor *w = randn(CT_F32, 2, 31, 19, 0, 0, 1.0), *ids = rand_ids(1, 12, 0, 31);
    ((int32_t *)ids->data)[9] = 31;
    int64_t shape[2] = {12, 19};
    ct_tensor *out = ct_empty(CT_F32, 2, shape);
    CHECK(cpu->embedding_forward(w, ids, out) < 0, "cpu accepts id 31");
    char cpu_message[256];
    snprintf(cpu_message, sizeof cpu_message, "%s", ct_last_error());
    ct_clear_error();
    CHECK(gpu->embedding_forward(on_gpu(w), on_gpu(ids), on_gpu(out)) < 0, "gpu accepts id 31");
    CHECK(strcmp(cpu_message, ct_last_error()) == 0, "messages differ: '%s' vs '%s'", cpu_message, ct_last_error());
}

/* ---- softmax and cross-entropy ---- */

static void test_log_softmax(ct_dtype dtype) {
    ct_tensor *x = randn(dtype, 2, 9, 101, 0, 0, 3.0), *y = ct_empty_like(x), *gy = on_gpu(y);
    check_ok(cpu->log_softmax_forward(x, y), "cpu log_softmax");
    check_ok(gpu->log_softmax_forward(on_gpu(x), gy), "gpu log_softmax");
    compare(dtype == CT_F64 ? "log_softmax_forward f64" : "log_softmax_forward f32", y, gy, tolerance(dtype));
    ct_tensor *g = randn(dtype, 2, 9, 101, 0, 0, 1.0), *gx = randn(dtype, 2, 9, 101, 0, 0, 1.0), *ggx = on_gpu(gx);
    check_ok(cpu->log_softmax_backward(y, g, gx), "cpu log_softmax_backward");
    check_ok(gpu->log_softmax_backward(on_gpu(y), on_gpu(g), ggx), "gpu log_softmax_backward");
    compare(dtype == CT_F64 ? "log_softmax_backward f64" : "log_softmax_backward f32", gx, ggx, tolerance(dtype));
}

static void test_cross_entropy(ct_dtype dtype, ct_reduction reduction) {
    int64_t rows = 11, vocab = 257;
    ct_tensor *logits = randn(dtype, 2, rows, vocab, 0, 0, 2.0), *targets = rand_ids(1, rows, 0, vocab);
    ((int32_t *)targets->data)[3] = ((int32_t *)targets->data)[8] = -100;
    ct_dtype real = dtype == CT_F64 ? CT_F64 : CT_F32;
    int64_t lse_shape[1] = {rows};
    ct_tensor *lse = ct_empty(real, 1, lse_shape), *glse = on_gpu(lse);
    ct_tensor *loss = ct_empty(real, 0, NULL), *gloss = on_gpu(loss);
    ct_tensor *glogits = on_gpu(logits), *gtargets = on_gpu(targets);
    check_ok(cpu->cross_entropy_forward(logits, targets, reduction, lse, loss), "cpu cross_entropy");
    check_ok(gpu->cross_entropy_forward(glogits, gtargets, reduction, glse, gloss), "gpu cross_entropy");
    char what[80];
    const char *name = ct_dtype_name(dtype), *red = reduction == CT_REDUCE_MEAN ? "mean" : "sum";
    snprintf(what, sizeof what, "cross_entropy_forward %s %s: loss", name, red);
    compare(what, loss, gloss, tolerance(real));
    snprintf(what, sizeof what, "cross_entropy_forward %s %s: row lse", name, red);
    compare(what, lse, glse, tolerance(real));
    ct_tensor *grad_out = ct_scalar(real, 0.73);
    ct_tensor *grad = randn(real, 2, rows, vocab, 0, 0, 1e-4), *ggrad = on_gpu(grad);
    check_ok(cpu->cross_entropy_backward(logits, targets, reduction, lse, grad_out, grad), "cpu ce backward");
    check_ok(gpu->cross_entropy_backward(glogits, gtargets, reduction, glse, on_gpu(grad_out), ggrad),
             "gpu ce backward");
    snprintf(what, sizeof what, "cross_entropy_backward %s %s", name, red);
    compare(what, grad, ggrad, tolerance(real));
}

static void test_cross_entropy_bad_target(void) {
    ct_tensor *logits = randn(CT_F32, 2, 6, 13, 0, 0, 1.0), *targets = rand_ids(1, 6, 0, 13);
    ((int32_t *)targets->data)[4] = 13;
    int64_t shape[1] = {6};
    ct_tensor *lse = ct_empty(CT_F32, 1, shape), *loss = ct_empty(CT_F32, 0, NULL);
    CHECK(cpu->cross_entropy_forward(logits, targets, CT_REDUCE_MEAN, lse, loss) < 0, "cpu accepts target 13");
    char cpu_message[256];
    snprintf(cpu_message, sizeof cpu_message, "%s", ct_last_error());
    ct_clear_error();
    CHECK(gpu->cross_entropy_forward(on_gpu(logits), on_gpu(targets), CT_REDUCE_MEAN, on_gpu(lse), on_gpu(loss)) < 0,
          "gpu accepts target 13");
    CHECK(strcmp(cpu_message, ct_last_error()) == 0, "messages differ: '%s' vs '%s'", cpu_message, ct_last_error());
}

/* ---- optimizer ---- */

static void test_adamw(ct_dtype dtype) {
    int64_t n = 1001;
    ct_tensor *p = randn(dtype, 1, n, 0, 0, 0, 1.0), *m = ct_zeros(dtype, 1, &n), *v = ct_zeros(dtype, 1, &n);
    ct_tensor *gp = on_gpu(p), *gm = on_gpu(m), *gv = on_gpu(v);
    ct_adamw_hparams h = {.lr = 1e-2, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.1};
    for (int64_t step = 1; step <= 3; step++) {
        ct_tensor *g = randn(dtype, 1, n, 0, 0, 0, 1.0);
        ct_tensor *gg = on_gpu(g);
        check_ok(cpu->adamw_multi(1, &p, &g, &m, &v, &h.weight_decay, &h, step), "cpu adamw");
        check_ok(gpu->adamw_multi(1, &gp, &gg, &gm, &gv, &h.weight_decay, &h, step), "gpu adamw");
    }
    compare(dtype == CT_F64 ? "adamw x3 f64: param" : "adamw x3 f32: param", p, gp, tolerance(dtype));
    compare(dtype == CT_F64 ? "adamw x3 f64: m" : "adamw x3 f32: m", m, gm, tolerance(dtype));
    compare(dtype == CT_F64 ? "adamw x3 f64: v" : "adamw x3 f32: v", v, gv, tolerance(dtype));
}

/* The masked optimizer step (pruning, models/prune.h): gradient masked, AdamW, then the weight
 * and both moments masked; pruned entries exactly +0 on both devices, the rest bit for bit. */
static void test_masked_adamw(ct_dtype dtype) {
    int64_t n = 1003;
    ct_tensor *p = randn(dtype, 1, n, 0, 0, 0, 1.0), *m = ct_zeros(dtype, 1, &n), *v = ct_zeros(dtype, 1, &n);
    ct_tensor *mask = ct_empty(CT_F32, 1, &n);
    for (int64_t i = 0; i < n; i++) ct_set(mask, i, (i * 7) % 10 < 3 ? 0.0 : 1.0); /* 30% pruned */
    ct_tensor *gp = on_gpu(p), *gm = on_gpu(m), *gv = on_gpu(v), *gmask = on_gpu(mask);
    ct_adamw_hparams h = {.lr = 1e-2, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.1};
    for (int64_t step = 1; step <= 3; step++) {
        ct_tensor *g = randn(dtype, 1, n, 0, 0, 0, 1.0);
        ct_tensor *gg = on_gpu(g);
        const ct_tensor *cm = mask, *gmk = gmask;
        const ct_tensor *cms[3] = {mask, mask, mask}, *gms[3] = {gmask, gmask, gmask};
        ct_tensor *cs[3] = {p, m, v}, *gs[3] = {gp, gm, gv};
        check_ok(cpu->mask_multi(1, &g, &cm), "cpu mask grad");
        check_ok(gpu->mask_multi(1, &gg, &gmk), "gpu mask grad");
        check_ok(cpu->adamw_multi(1, &p, &g, &m, &v, &h.weight_decay, &h, step), "cpu adamw");
        check_ok(gpu->adamw_multi(1, &gp, &gg, &gm, &gv, &h.weight_decay, &h, step), "gpu adamw");
        check_ok(cpu->mask_multi(3, cs, cms), "cpu mask state");
        check_ok(gpu->mask_multi(3, gs, gms), "gpu mask state");
    }
    ct_tensor *back = on_cpu(gp), *back_m = on_cpu(gm);
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++)
        if (ct_get(mask, i) == 0) bad += ct_get(back, i) != 0 || ct_get(back_m, i) != 0 || ct_get(p, i) != 0;
    CHECK(bad == 0, "masked adamw: %lld pruned entries are not zero", (long long)bad);
    CHECK(!memcmp(back->data, p->data, ct_nbytes(p)), "masked adamw %s: the GPU's weights differ from the CPU's",
          ct_dtype_name(dtype));
    compare("masked adamw: v", v, gv, tolerance(dtype));
}

/* ---- multi-tensor optimizer entries ---- */

/* n tensors of the given sizes and dtypes (f32 or f64) as views of one block per dtype, on the
 * CPU and on the GPU: a list of thousands of tensors costs two device allocations. */
typedef struct {
    int n;
    ct_tensor *host_base[2], *gpu_base[2]; /* [0] f32, [1] f64; NULL when the list has none */
    ct_tensor **host, **gpu;
} tensor_list;

static ct_tensor *view_of(ct_tensor *base, int64_t offset, int64_t n) {
    ct_tensor *t = ct_arena_calloc(sizeof *t);
    t->dtype = base->dtype;
    t->device = base->device;
    t->ndim = 1;
    t->shape[0] = n;
    t->data = (char *)base->data + (size_t)offset * ct_dtype_size(base->dtype);
    t->base = base;
    return t;
}

/* Filled from N(0, std) (zeros for std 0); the GPU copy equal to the host's. */
static void list_init(tensor_list *l, int n, const int64_t *sizes, const ct_dtype *dtypes, double std) {
    int64_t totals[2] = {0, 0};
    for (int i = 0; i < n; i++) totals[dtypes[i] == CT_F64] += sizes[i];
    l->n = n;
    l->host = ct_arena_calloc(sizeof *l->host * (size_t)n);
    l->gpu = ct_arena_calloc(sizeof *l->gpu * (size_t)n);
    for (int k = 0; k < 2; k++) {
        l->host_base[k] = l->gpu_base[k] = NULL;
        if (!totals[k]) continue;
        l->host_base[k] = std > 0 ? randn(k ? CT_F64 : CT_F32, 1, totals[k], 0, 0, 0, std)
                                  : ct_zeros(k ? CT_F64 : CT_F32, 1, &totals[k]);
        l->gpu_base[k] = on_gpu(l->host_base[k]);
    }
    int64_t at[2] = {0, 0};
    for (int i = 0; i < n; i++) {
        int k = dtypes[i] == CT_F64;
        l->host[i] = view_of(l->host_base[k], at[k], sizes[i]);
        l->gpu[i] = view_of(l->gpu_base[k], at[k], sizes[i]);
        at[k] += sizes[i];
    }
}

/* New random values in place (the device buffers stay the same: no allocation). */
static void list_refill(tensor_list *l, double std) {
    for (int k = 0; k < 2; k++) {
        if (!l->host_base[k]) continue;
        ct_fill_normal(l->host_base[k], &rng, 0.0, std);
        check_ok(ct_device_copy(CT_CUDA, l->gpu_base[k]->data, CT_CPU, l->host_base[k]->data,
                                ct_nbytes(l->host_base[k])),
                 "refill copy");
    }
}

/* Norm-wise comparison per dtype block; *identical counts blocks equal bit for bit. */
static void list_compare(const char *what, const tensor_list *l, int *identical) {
    for (int k = 0; k < 2; k++) {
        if (!l->host_base[k]) continue;
        char label[96];
        snprintf(label, sizeof label, "%s %s", what, k ? "f64" : "f32");
        compare(label, l->host_base[k], l->gpu_base[k], tolerance(k ? CT_F64 : CT_F32));
        ct_tensor *back = on_cpu(l->gpu_base[k]);
        if (identical) *identical += memcmp(back->data, l->host_base[k]->data, ct_nbytes(back)) == 0;
    }
}

/* AdamW, the global sum of squares and the clipping scale over one list, CPU vs GPU, for
 * `steps` steps with new gradients each step (copied into the same device buffers). From the
 * second step on no cudaMalloc: the descriptors and scratch are cached. */
static void check_multi_list(const char *name, int n, const int64_t *sizes, const ct_dtype *dtypes, int steps) {
    tensor_list p, g, m, v;
    list_init(&p, n, sizes, dtypes, 1.0);
    list_init(&g, n, sizes, dtypes, 1.0);
    list_init(&m, n, sizes, dtypes, 0.0);
    list_init(&v, n, sizes, dtypes, 0.0);
    double *decay = ct_arena_calloc(sizeof *decay * (size_t)n);
    for (int i = 0; i < n; i++) decay[i] = i % 3 == 0 ? 0.0 : 0.05 * (i % 7);
    ct_adamw_hparams h = {.lr = 1e-2, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 123.0};
    ct_cuda_memory_stats first = {0};
    double worst_squares = 0;
    for (int step = 1; step <= steps; step++) {
        list_refill(&g, step == 3 ? 1e-7 : 1.0); /* one step of tiny gradients: eps matters */
        h.lr = 1e-2 / step; /* a schedule: the cached descriptors hold no learning rate */
        check_ok(cpu->adamw_multi(n, p.host, g.host, m.host, v.host, decay, &h, step), "cpu adamw_multi");
        check_ok(gpu->adamw_multi(n, p.gpu, g.gpu, m.gpu, v.gpu, decay, &h, step), "gpu adamw_multi");
        double cpu_squares = -1, gpu_squares = -1;
        check_ok(cpu->sum_squares_multi(n, (const ct_tensor *const *)g.host, &cpu_squares), "cpu sum_squares_multi");
        check_ok(gpu->sum_squares_multi(n, (const ct_tensor *const *)g.gpu, &gpu_squares), "gpu sum_squares_multi");
        double err = fabs(cpu_squares - gpu_squares) / cpu_squares;
        if (!(err <= worst_squares)) worst_squares = err;
        check_ok(cpu->scale_multi(n, g.host, 0.37), "cpu scale_multi");
        check_ok(gpu->scale_multi(n, g.gpu, 0.37), "gpu scale_multi");
        if (step == 1) first = ct_cuda_memory_get_stats();
    }
    ct_cuda_memory_stats last = ct_cuda_memory_get_stats();
    char what[96];
    snprintf(what, sizeof what, "%s: sum_squares_multi x%d", name, steps);
    printf("  %-48s %.3g\n", what, worst_squares);
    /* the sums are in double on both devices: only the order of additions differs */
    CHECK(worst_squares <= TOL_F64 * 10, "%s: %.3g", what, worst_squares);
    int identical = 0, blocks = 0;
    for (int k = 0; k < 2; k++) blocks += p.host_base[k] != NULL;
    snprintf(what, sizeof what, "%s: scale_multi (exact)", name);
    int scale_identical = 0;
    list_compare(what, &g, &scale_identical);
    CHECK(scale_identical == blocks, "%s: the scaled gradients differ", what);
    snprintf(what, sizeof what, "%s: adamw_multi x%d param", name, steps);
    list_compare(what, &p, &identical);
    snprintf(what, sizeof what, "%s: adamw_multi x%d m", name, steps);
    list_compare(what, &m, &identical);
    snprintf(what, sizeof what, "%s: adamw_multi x%d v", name, steps);
    list_compare(what, &v, &identical);
    printf("  %s: adamw_multi bit-identical to the CPU in %d of %d blocks (expected: all)\n", name, identical,
           3 * blocks);
    CHECK(last.malloc_calls == first.malloc_calls, "%s: %llu cudaMalloc calls after the first step", name,
          (unsigned long long)(last.malloc_calls - first.malloc_calls));
}

static void test_multi(void) {
    /* one element, odd sizes, a tile (2048) and a tile + 1, an empty tensor, many tiles */
    static const int64_t sizes[8] = {1, 7, 1001, 2048, 2049, 0, 70001, 5};
    ct_dtype f32[8], f64[8], mixed[8];
    for (int i = 0; i < 8; i++) {
        f32[i] = CT_F32;
        f64[i] = CT_F64;
        mixed[i] = i % 2 ? CT_F64 : CT_F32;
    }
    check_multi_list("multi f32", 8, sizes, f32, 5);
    check_multi_list("multi f64", 8, sizes, f64, 5);
    check_multi_list("multi mixed f32/f64", 8, sizes, mixed, 3);
    /* more tensors than one launch takes (4096): two chunks, the second ending in a large one */
    enum { MANY = 5001 };
    int64_t *many = ct_arena_calloc(sizeof *many * MANY);
    ct_dtype *many_dtypes = ct_arena_calloc(sizeof *many_dtypes * MANY);
    for (int i = 0; i < MANY; i++) {
        many[i] = i == MANY - 1 ? 9001 : 1 + i % 5;
        many_dtypes[i] = CT_F32;
    }
    check_multi_list("multi 5001 tensors", MANY, many, many_dtypes, 2);
    double squares = -1;
    check_ok(gpu->sum_squares_multi(0, NULL, &squares), "gpu sum_squares_multi of nothing");
    CHECK(squares == 0, "sum of squares of an empty list: %g", squares);
}

/* ---- transformer ops ---- */

static void test_rms_norm(ct_dtype dx, ct_dtype dw) {
    int64_t rows = 45, cols = 67; /* 45 rows: one full 32-row block of weight partials and a partial one */
    ct_tensor *x = randn(dx, 2, rows, cols, 0, 0, 1.0), *w = randn(dw, 1, cols, 0, 0, 0, 1.0);
    ct_dtype real = dx == CT_F64 ? CT_F64 : CT_F32;
    ct_tensor *y = ct_empty_like(x), *gy = on_gpu(y), *rstd = ct_empty(real, 1, &rows), *grstd = on_gpu(rstd);
    ct_tensor *gx_in = on_gpu(x), *gw_in = on_gpu(w);
    check_ok(cpu->rms_norm_forward(x, w, 1e-5, rstd, y), "cpu rms_norm");
    check_ok(gpu->rms_norm_forward(gx_in, gw_in, 1e-5, grstd, gy), "gpu rms_norm");
    char what[80];
    snprintf(what, sizeof what, "rms_norm_forward x %s w %s", ct_dtype_name(dx), ct_dtype_name(dw));
    compare(what, y, gy, tolerance(dx));
    snprintf(what, sizeof what, "rms_norm_forward x %s w %s: rstd", ct_dtype_name(dx), ct_dtype_name(dw));
    compare(what, rstd, grstd, tolerance(real));
    ct_tensor *g = randn(real, 2, rows, cols, 0, 0, 1.0), *gx = randn(real, 2, rows, cols, 0, 0, 1.0);
    ct_tensor *gw = randn(real, 1, cols, 0, 0, 0, 1.0), *ggx = on_gpu(gx), *ggw = on_gpu(gw);
    check_ok(cpu->rms_norm_backward(x, w, rstd, g, gx, gw), "cpu rms_norm_backward");
    check_ok(gpu->rms_norm_backward(gx_in, gw_in, grstd, on_gpu(g), ggx, ggw), "gpu rms_norm_backward");
    snprintf(what, sizeof what, "rms_norm_backward x %s w %s: grad_x", ct_dtype_name(dx), ct_dtype_name(dw));
    compare(what, gx, ggx, tolerance(real));
    snprintf(what, sizeof what, "rms_norm_backward x %s w %s: grad_w", ct_dtype_name(dx), ct_dtype_name(dw));
    compare(what, gw, ggw, tolerance(real));
}

static void test_swiglu(ct_dtype dtype, bool with_up) {
    ct_tensor *gate = randn(dtype, 2, 17, 43, 0, 0, 2.0), *up = with_up ? randn(dtype, 2, 17, 43, 0, 0, 1.0) : NULL;
    ct_tensor *out = ct_empty_like(gate), *gout = on_gpu(out), *ggate = on_gpu(gate), *gup = on_gpu(up);
    check_ok(cpu->swiglu_forward(gate, up, out), "cpu swiglu");
    check_ok(gpu->swiglu_forward(ggate, gup, gout), "gpu swiglu");
    char what[80];
    snprintf(what, sizeof what, "%s_forward %s", with_up ? "swiglu" : "silu", ct_dtype_name(dtype));
    compare(what, out, gout, tolerance(dtype));
    ct_dtype real = dtype == CT_F64 ? CT_F64 : CT_F32;
    ct_tensor *go = randn(real, 2, 17, 43, 0, 0, 1.0), *gg = randn(real, 2, 17, 43, 0, 0, 1.0);
    ct_tensor *gu = with_up ? randn(real, 2, 17, 43, 0, 0, 1.0) : NULL, *ggg = on_gpu(gg), *ggu = on_gpu(gu);
    check_ok(cpu->swiglu_backward(gate, up, go, gg, gu), "cpu swiglu_backward");
    check_ok(gpu->swiglu_backward(ggate, gup, on_gpu(go), ggg, ggu), "gpu swiglu_backward");
    snprintf(what, sizeof what, "%s_backward %s: grad_gate", with_up ? "swiglu" : "silu", ct_dtype_name(dtype));
    compare(what, gg, ggg, tolerance(real));
    if (with_up) {
        snprintf(what, sizeof what, "swiglu_backward %s: grad_up", ct_dtype_name(dtype));
        compare(what, gu, ggu, tolerance(real));
    }
}

static void test_rope(ct_dtype dtype, int direction, bool accumulate) {
    int64_t batch = 2, time = 5, heads = 3, dim = 18;
    ct_tensor *x = randn(dtype, 4, batch, time, heads, dim, 1.0), *pos = rand_ids(2, batch, time, 4000);
    ct_tensor *y = randn(dtype, 4, batch, time, heads, dim, 1.0), *gy = on_gpu(y);
    double inv_freq[9];
    for (int i = 0; i < 9; i++) inv_freq[i] = pow(10000.0, -2.0 * i / (double)dim);
    check_ok(cpu->rope(x, pos, inv_freq, direction, accumulate, y), "cpu rope");
    check_ok(gpu->rope(on_gpu(x), on_gpu(pos), inv_freq, direction, accumulate, gy), "gpu rope");
    char what[80];
    snprintf(what, sizeof what, "rope %s direction %+d%s", ct_dtype_name(dtype), direction,
             accumulate ? " accumulate" : "");
    compare(what, y, gy, tolerance(dtype));
}

static void test_dropout(ct_dtype dtype, bool accumulate) {
    ct_tensor *x = randn(dtype, 2, 19, 53, 0, 0, 1.0), *y = randn(dtype, 2, 19, 53, 0, 0, 1.0), *gy = on_gpu(y);
    check_ok(cpu->dropout(x, 0.3, 1234, 77, accumulate, y), "cpu dropout");
    check_ok(gpu->dropout(on_gpu(x), 0.3, 1234, 77, accumulate, gy), "gpu dropout");
    char what[80];
    snprintf(what, sizeof what, "dropout %s%s (same mask)", ct_dtype_name(dtype), accumulate ? " accumulate" : "");
    compare(what, y, gy, tolerance(dtype));
    /* the masks are the same bits: every dropped element is zero on both */
    ct_tensor *back = on_cpu(gy);
    int64_t mismatched = 0;
    for (int64_t i = 0; !accumulate && i < ct_numel(y); i++) mismatched += (ct_get(y, i) == 0) != (ct_get(back, i) == 0);
    CHECK(mismatched == 0, "dropout %s: %lld elements kept on one device only", ct_dtype_name(dtype),
          (long long)mismatched);
}

static void test_kl(ct_dtype dtype, bool masked) {
    int64_t rows = 9, cols = 53;
    ct_tensor *s = randn(dtype, 2, rows, cols, 0, 0, 2.0), *t = randn(dtype, 2, rows, cols, 0, 0, 2.0);
    ct_tensor *mask = NULL;
    if (masked) {
        mask = ct_empty(dtype, 1, &rows);
        for (int64_t r = 0; r < rows; r++) ct_set(mask, r, r % 3 == 1 ? 0.0 : 1.0);
    }
    int64_t stats_shape[2] = {rows, 3};
    ct_tensor *stats = ct_empty(CT_F64, 2, stats_shape), *gstats = on_gpu(stats);
    ct_tensor *loss = ct_empty(dtype, 0, NULL), *gloss = on_gpu(loss);
    ct_tensor *gs_in = on_gpu(s), *gt_in = on_gpu(t), *gmask = on_gpu(mask);
    check_ok(cpu->kl_div_forward(s, t, mask, 2.0, stats, loss), "cpu kl");
    check_ok(gpu->kl_div_forward(gs_in, gt_in, gmask, 2.0, gstats, gloss), "gpu kl");
    char what[80];
    snprintf(what, sizeof what, "kl_div_forward %s%s: loss", ct_dtype_name(dtype), masked ? " masked" : "");
    compare(what, loss, gloss, tolerance(dtype));
    snprintf(what, sizeof what, "kl_div_forward %s%s: row stats", ct_dtype_name(dtype), masked ? " masked" : "");
    compare(what, stats, gstats, tolerance(dtype));
    ct_tensor *grad_out = ct_scalar(dtype, 1.3);
    ct_tensor *gs = randn(dtype, 2, rows, cols, 0, 0, 1e-4), *gt = randn(dtype, 2, rows, cols, 0, 0, 1e-4);
    ct_tensor *ggs = on_gpu(gs), *ggt = on_gpu(gt);
    check_ok(cpu->kl_div_backward(s, t, mask, 2.0, stats, grad_out, gs, gt), "cpu kl backward");
    check_ok(gpu->kl_div_backward(gs_in, gt_in, gmask, 2.0, gstats, on_gpu(grad_out), ggs, ggt), "gpu kl backward");
    snprintf(what, sizeof what, "kl_div_backward %s%s: grad_student", ct_dtype_name(dtype), masked ? " masked" : "");
    compare(what, gs, ggs, tolerance(dtype));
    snprintf(what, sizeof what, "kl_div_backward %s%s: grad_teacher", ct_dtype_name(dtype), masked ? " masked" : "");
    compare(what, gt, ggt, tolerance(dtype));
}

/* The fused distillation loss's row kernels (kd_rows_forward / kd_rows_backward): every
 * divergence, T != 1 (so the CE's logsumexp is a separate sum), ignored rows, and no teacher. */
static void test_kd_rows(ct_dtype dtype, ct_kd_divergence divergence, bool with_teacher) {
    int64_t rows = 9, cols = 301;
    ct_tensor *s = randn(dtype, 2, rows, cols, 0, 0, 2.0), *t = with_teacher ? randn(dtype, 2, rows, cols, 0, 0, 2.0) : NULL;
    ct_tensor *y = rand_ids(1, rows, 0, cols);
    for (int64_t r = 1; r < rows; r += 3) ((int32_t *)y->data)[r] = -100;
    ct_kd_params p = {.ce_weight = 0.4, .kl_weight = with_teacher ? 0.6 : 0.0, .temperature = 2.0,
                      .divergence = divergence};
    ct_tensor *stats = ct_empty(CT_F64, 2, (int64_t[]){rows, CT_KD_STATS}), *gstats = on_gpu(stats);
    ct_tensor *gs_in = on_gpu(s), *gt_in = with_teacher ? on_gpu(t) : NULL, *gy = on_gpu(y);
    check_ok(cpu->kd_rows_forward(s, t, y, &p, stats), "cpu kd rows");
    check_ok(gpu->kd_rows_forward(gs_in, gt_in, gy, &p, gstats), "gpu kd rows");
    char what[96];
    snprintf(what, sizeof what, "kd_rows_forward %s div %d%s: row stats", ct_dtype_name(dtype), (int)divergence,
             with_teacher ? "" : " no teacher");
    compare(what, stats, gstats, tolerance(dtype));
    ct_tensor *grad_out = ct_scalar(dtype, 1.3), *g = randn(dtype, 2, rows, cols, 0, 0, 1.0), *gg = on_gpu(g);
    check_ok(cpu->kd_rows_backward(s, t, y, &p, stats, grad_out, g), "cpu kd backward");
    check_ok(gpu->kd_rows_backward(gs_in, gt_in, gy, &p, gstats, on_gpu(grad_out), gg), "gpu kd backward");
    snprintf(what, sizeof what, "kd_rows_backward %s div %d%s: grad", ct_dtype_name(dtype), (int)divergence,
             with_teacher ? "" : " no teacher");
    compare(what, g, gg, tolerance(dtype));
}

/* ---- the allocator ---- */

/* Kernels with scratch memory (reductions, loss, norm backward), as a training step calls them,
 * on device buffers that live across steps. */
static void allocator_step(ct_tensor *logits, ct_tensor *targets, ct_tensor *lse, ct_tensor *loss, ct_tensor *x,
                           ct_tensor *w, ct_tensor *rstd, ct_tensor *y, ct_tensor *gx, ct_tensor *gw) {
    double squares;
    check_ok(gpu->cross_entropy_forward(logits, targets, CT_REDUCE_MEAN, lse, loss), "step cross_entropy");
    check_ok(gpu->rms_norm_forward(x, w, 1e-6, rstd, y), "step rms_norm");
    check_ok(gpu->rms_norm_backward(x, w, rstd, y, gx, gw), "step rms_norm_backward");
    check_ok(gpu->sum_squares_multi(1, (const ct_tensor *const[]){gx}, &squares), "step sum_squares");
    /* a temporary the size of an activation, freed within the step (as an arena chunk would be) */
    void *temporary = ct_device_alloc(CT_CUDA, ct_nbytes(x) * 3);
    CHECK(temporary != NULL, "temporary: %s", ct_last_error());
    ct_device_free(CT_CUDA, temporary);
}

static void test_allocator(void) {
    ct_tensor *logits = on_gpu(randn(CT_F32, 2, 33, 301, 0, 0, 1.0)), *targets = on_gpu(rand_ids(1, 33, 0, 301));
    int64_t rows = 33;
    ct_tensor *lse = on_gpu(ct_empty(CT_F32, 1, &rows)), *loss = on_gpu(ct_empty(CT_F32, 0, NULL));
    ct_tensor *x = on_gpu(randn(CT_F32, 2, 70, 129, 0, 0, 1.0)), *w = on_gpu(randn(CT_F32, 1, 129, 0, 0, 0, 1.0));
    int64_t xrows = 70;
    ct_tensor *rstd = on_gpu(ct_empty(CT_F32, 1, &xrows)), *y = on_gpu(ct_empty(CT_F32, 2, x->shape));
    ct_tensor *gx = on_gpu(ct_zeros(CT_F32, 2, x->shape)), *gw = on_gpu(ct_zeros(CT_F32, 1, w->shape));
    allocator_step(logits, targets, lse, loss, x, w, rstd, y, gx, gw); /* warm-up */
    ct_cuda_memory_stats warm = ct_cuda_memory_get_stats();
    for (int step = 0; step < 20; step++) allocator_step(logits, targets, lse, loss, x, w, rstd, y, gx, gw);
    ct_cuda_memory_stats after = ct_cuda_memory_get_stats();
    printf("  allocator: %llu cudaMalloc calls at warm-up, %llu after 20 more steps; %llu reuses; "
           "in use %zu, peak %zu, reserved %zu bytes\n",
           (unsigned long long)warm.malloc_calls, (unsigned long long)after.malloc_calls,
           (unsigned long long)after.reuses, after.in_use_bytes, after.peak_in_use_bytes, after.reserved_bytes);
    CHECK(after.malloc_calls == warm.malloc_calls, "cudaMalloc called %llu times after warm-up",
          (unsigned long long)(after.malloc_calls - warm.malloc_calls));
    CHECK(after.reuses > warm.reuses, "the cache served no request");
    CHECK(after.in_use_bytes == warm.in_use_bytes, "in-use bytes grew from %zu to %zu", warm.in_use_bytes,
          after.in_use_bytes);
    CHECK(after.peak_in_use_bytes >= after.in_use_bytes && after.reserved_bytes >= after.in_use_bytes,
          "inconsistent stats");
    /* the same counters through ct_memory_get_stats, which training code reads */
    ct_memory_stats seen = ct_memory_get_stats(CT_CUDA);
    CHECK(seen.device_malloc_calls == after.malloc_calls && seen.device_in_use == after.in_use_bytes &&
              seen.device_reserved == after.reserved_bytes && seen.device_peak_in_use == after.peak_in_use_bytes &&
              seen.device_peak_reserved == after.peak_reserved_bytes,
          "ct_memory_get_stats(CT_CUDA) does not report the allocator's counters");
    CHECK(ct_memory_get_stats(CT_CPU).device_malloc_calls == 0, "the CPU reports cudaMalloc calls");

    /* releasing the cache leaves only what is in use */
    CHECK(ct_cuda_memory_release_all() == 0, "release_all: %s", ct_last_error());
    ct_cuda_memory_stats released = ct_cuda_memory_get_stats();
    CHECK(released.reserved_bytes == released.in_use_bytes, "reserved %zu after release, in use %zu",
          released.reserved_bytes, released.in_use_bytes);

    /* a request that cannot fit: NULL and a one-line message with the bytes asked and free */
    ct_clear_error();
    void *huge = ct_device_alloc(CT_CUDA, (size_t)1 << 52);
    CHECK(huge == NULL, "4 PiB allocation succeeded");
    CHECK(strstr(ct_last_error(), "CUDA: out of memory asking 4503599627370496 bytes (") != NULL &&
              strchr(ct_last_error(), '\n') == NULL,
          "message: %s", ct_last_error());
    ct_cuda_memory_stats after_oom = ct_cuda_memory_get_stats();
    CHECK(after_oom.in_use_bytes == released.in_use_bytes, "a failed request changed the in-use bytes");
}

/* ---- ct_linear through the autograd ops ---- */

/* A device leaf for the autograd run: a copy of t with its own gradient slot. */
static ct_tensor *gpu_leaf(const ct_tensor *t, bool requires_grad) {
    ct_tensor *g = on_gpu(t);
    g->grad = NULL;
    g->node = NULL;
    g->requires_grad = requires_grad;
    return g;
}

/* sum(linear(x) * probe) forward and backward on x's device; the output, or NULL. */
static ct_tensor *linear_step(const ct_linear *l, ct_tensor *x, ct_tensor *probe) {
    ct_tensor *y = ct_linear_forward(l, x, CT_F32);
    ct_tensor *loss = ct_sum(ct_mul(y, probe));
    if (!loss || ct_backward(loss) < 0) return NULL;
    return y;
}

static void test_linear(void) {
    if (!ct_cuda_backend_table_complete()) {
        printf("  linear: not run, the CUDA op table is incomplete\n");
        return;
    }
    static const char *names[] = {"f32", "bf16", "i8 per row", "i8 per block of 32"};
    for (int kind = 0; kind < 4; kind++) {
        ct_tensor *x = randn(CT_F32, 3, 3, 7, 45, 0, 1.0), *probe = randn(CT_F32, 3, 3, 7, 37, 0, 1.0);
        ct_tensor *w = randn(kind == 1 ? CT_BF16 : CT_F32, 2, 37, 45, 0, 0, 0.3);
        if (kind >= 2) w = ct_quantize_i8(w, kind == 2 ? 0 : 32, false, NULL);
        ct_tensor *b = randn(CT_F32, 1, 37, 0, 0, 0, 0.5);
        bool train_w = kind == 0; /* narrow weights are frozen bases */
        ct_linear gl = {.weight = gpu_leaf(w, train_w), .bias = gpu_leaf(b, true)};
        ct_tensor *gx = gpu_leaf(x, true), *gprobe = on_gpu(probe);
        x->requires_grad = true, w->requires_grad = train_w, b->requires_grad = true;
        ct_linear cl = {.weight = w, .bias = b};
        ct_tensor *y = linear_step(&cl, x, probe), *gy = linear_step(&gl, gx, gprobe);
        char what[96];
        CHECK(y && gy, "linear %s: %s", names[kind], ct_last_error());
        if (!y || !gy) continue;
        snprintf(what, sizeof what, "linear %s: output", names[kind]);
        compare(what, y, gy, TOL_F32);
        snprintf(what, sizeof what, "linear %s: x gradient", names[kind]);
        compare(what, x->grad, gx->grad, TOL_F32);
        snprintf(what, sizeof what, "linear %s: bias gradient", names[kind]);
        compare(what, b->grad, gl.bias->grad, TOL_F32);
        if (train_w) compare("linear f32: weight gradient", w->grad, gl.weight->grad, TOL_F32);
        CHECK(train_w || gl.weight->grad == NULL, "linear %s: the frozen weight got a gradient", names[kind]);
    }
}

/* A LoRA adapter on a frozen f32 and a frozen i8 base, dropout on: output and the gradients of x,
 * A and B on the GPU against the CPU (the same counter-based mask on both). */
static void test_lora_linear(void) {
    if (!ct_cuda_backend_table_complete()) return;
    for (int kind = 0; kind < 2; kind++) {
        ct_tensor *x = randn(CT_F32, 3, 3, 7, 45, 0, 1.0), *probe = randn(CT_F32, 3, 3, 7, 37, 0, 1.0);
        ct_tensor *w = randn(CT_F32, 2, 37, 45, 0, 0, 0.3);
        if (kind == 1) w = ct_quantize_i8(w, 32, false, NULL);
        ct_tensor *A = randn(CT_F32, 2, 5, 45, 0, 0, 0.2), *B = randn(CT_F32, 2, 37, 5, 0, 0, 0.2);
        ct_lora cpu_lora = {.A = A, .B = B, .scale = 1.7, .dropout = 0.2, .dropout_site = 9};
        ct_lora gpu_lora = {.A = gpu_leaf(A, true), .B = gpu_leaf(B, true), .scale = 1.7, .dropout = 0.2, .dropout_site = 9};
        A->requires_grad = B->requires_grad = x->requires_grad = true;
        w->requires_grad = false;
        ct_linear cl = {.weight = w, .adapter = &cpu_lora}, gl = {.weight = gpu_leaf(w, false), .adapter = &gpu_lora};
        ct_tensor *gx = gpu_leaf(x, true), *gprobe = on_gpu(probe);
        const ct_lora_dropout at = {.seed = 4, .step = 11};
        ct_tensor *y = ct_linear_forward_train(&cl, x, CT_F32, &at), *gy = ct_linear_forward_train(&gl, gx, CT_F32, &at);
        const bool ok = y && gy && ct_backward(ct_sum(ct_mul(y, probe))) == 0 &&
                        ct_backward(ct_sum(ct_mul(gy, gprobe))) == 0;
        CHECK(ok, "lora %s base: %s", kind ? "i8" : "f32", ct_last_error());
        if (!ok) continue;
        compare(kind ? "lora on i8: output" : "lora on f32: output", y, gy, TOL_F32);
        compare(kind ? "lora on i8: x gradient" : "lora on f32: x gradient", x->grad, gx->grad, TOL_F32);
        compare(kind ? "lora on i8: A gradient" : "lora on f32: A gradient", A->grad, gpu_lora.A->grad, TOL_F32);
        compare(kind ? "lora on i8: B gradient" : "lora on f32: B gradient", B->grad, gpu_lora.B->grad, TOL_F32);
    }
}

/* The training loss without vocabulary-sized logits (ct_llama_loss_sum after the forward): the
 * rows with a target gathered from hidden states [3, 7, 45], then ct_kd_loss with no teacher, in
 * chunks of 4 rows, with a trainable f32 head (full fine-tuning, a tied or saved lm_head) and a
 * frozen bf16 head (LoRA on a bf16 or INT8 base): loss and the gradients of the hidden states and
 * of the f32 head on the GPU against the CPU. */
static void test_fused_ce(void) {
    if (!ct_cuda_backend_table_complete()) return;
    for (int narrow = 0; narrow < 2; narrow++) {
        const int64_t V = 301;
        ct_tensor *h = randn(CT_F32, 3, 3, 7, 45, 0, 1.0), *w = randn(narrow ? CT_BF16 : CT_F32, 2, V, 45, 0, 0, 0.3);
        ct_tensor *y = rand_ids(1, 21, 0, V), *rows, *targets, *grows, *gtargets;
        for (int64_t i = 1; i < 21; i += 4) ((int32_t *)y->data)[i] = -100;
        check_ok(ct_llama_target_rows(y, V, CT_CPU, &rows, &targets), "cpu target rows");
        check_ok(ct_llama_target_rows(y, V, CT_CUDA, &grows, &gtargets), "gpu target rows");
        h->requires_grad = true, w->requires_grad = !narrow;
        ct_tensor *gh = gpu_leaf(h, true), *gw = gpu_leaf(w, !narrow);
        const ct_kd_options ce = {.ce_weight = 1, .temperature = 1, .chunk_rows = 4};
        ct_tensor *loss = ct_kd_loss(ct_llama_gather_rows(h, rows), w, NULL, NULL, targets, V, &ce);
        ct_tensor *gloss = ct_kd_loss(ct_llama_gather_rows(gh, grows), gw, NULL, NULL, gtargets, V, &ce);
        const bool ok = loss && gloss && ct_backward(loss) == 0 && ct_backward(gloss) == 0;
        CHECK(ok, "fused CE, %s head: %s", narrow ? "bf16" : "f32", ct_last_error());
        if (!ok) continue;
        compare(narrow ? "fused CE, bf16 head: loss" : "fused CE, f32 head: loss", loss, gloss, TOL_F32);
        compare(narrow ? "fused CE, bf16 head: hidden gradient" : "fused CE, f32 head: hidden gradient", h->grad,
                gh->grad, TOL_F32);
        if (!narrow) compare("fused CE, f32 head: head gradient", w->grad, gw->grad, TOL_F32);
        CHECK(!narrow || gw->grad == NULL, "fused CE: the frozen bf16 head got a gradient");
    }
}

/* DoRA's detached weight norm (dora_row_norms) on f32, bf16, i8 per-row and per-block-32 bases and
 * in f64, as norms and as reciprocals. */
static void test_dora_norms(void) {
    static const char *names[] = {"f32", "bf16", "i8 per row", "i8 per block of 32", "f64"};
    for (int kind = 0; kind < 5; kind++) {
        const ct_dtype real = kind == 4 ? CT_F64 : CT_F32;
        ct_tensor *w = randn(kind == 1 ? CT_BF16 : real, 2, 37, 45, 0, 0, 0.3);
        if (kind == 2 || kind == 3) w = ct_quantize_i8(w, kind == 2 ? 0 : 32, false, NULL);
        ct_tensor *A = randn(real, 2, 5, 45, 0, 0, 0.2), *B = randn(real, 2, 37, 5, 0, 0, 0.2);
        for (int reciprocal = 0; reciprocal < 2; reciprocal++) {
            ct_tensor *n = ct_empty(real, 1, (int64_t[]){37}), *gn = ct_empty_on(CT_CUDA, real, 1, (int64_t[]){37});
            check_ok(cpu->dora_row_norms(w, A, B, 1.7, reciprocal, n), "cpu dora_row_norms");
            check_ok(gpu->dora_row_norms(on_gpu(w), on_gpu(A), on_gpu(B), 1.7, reciprocal, gn), "gpu dora_row_norms");
            char what[96];
            snprintf(what, sizeof what, "dora_row_norms %s%s", names[kind], reciprocal ? " (reciprocal)" : "");
            compare(what, n, gn, tolerance(real));
        }
    }
}

/* A DoRA adapter on a frozen f32, bf16 and i8 base with dropout (the base product recomputed from
 * the dropped x, as peft): output and the gradients of x, A, B and the magnitude. */
static void test_dora_linear(void) {
    if (!ct_cuda_backend_table_complete()) return;
    static const char *names[] = {"f32", "bf16", "i8"};
    for (int kind = 0; kind < 3; kind++) {
        ct_tensor *x = randn(CT_F32, 3, 3, 7, 45, 0, 1.0), *probe = randn(CT_F32, 3, 3, 7, 37, 0, 1.0);
        ct_tensor *w = randn(kind == 1 ? CT_BF16 : CT_F32, 2, 37, 45, 0, 0, 0.3);
        if (kind == 2) w = ct_quantize_i8(w, 0, false, NULL);
        ct_tensor *A = randn(CT_F32, 2, 5, 45, 0, 0, 0.2), *B = randn(CT_F32, 2, 37, 5, 0, 0, 0.2);
        ct_tensor *mag = randn(CT_F32, 1, 37, 0, 0, 0, 1.0);
        ct_lora cpu_dora = {.A = A, .B = B, .magnitude = mag, .scale = 1.7, .dropout = 0.2, .dropout_site = 9};
        ct_lora gpu_dora = {.A = gpu_leaf(A, true), .B = gpu_leaf(B, true), .magnitude = gpu_leaf(mag, true),
                            .scale = 1.7, .dropout = 0.2, .dropout_site = 9};
        A->requires_grad = B->requires_grad = x->requires_grad = mag->requires_grad = true;
        w->requires_grad = false;
        ct_linear cl = {.weight = w, .adapter = &cpu_dora}, gl = {.weight = gpu_leaf(w, false), .adapter = &gpu_dora};
        ct_tensor *gx = gpu_leaf(x, true), *gprobe = on_gpu(probe);
        const ct_lora_dropout at = {.seed = 4, .step = 11};
        ct_tensor *y = ct_linear_forward_train(&cl, x, CT_F32, &at), *gy = ct_linear_forward_train(&gl, gx, CT_F32, &at);
        const bool ok = y && gy && ct_backward(ct_sum(ct_mul(y, probe))) == 0 &&
                        ct_backward(ct_sum(ct_mul(gy, gprobe))) == 0;
        CHECK(ok, "dora %s base: %s", names[kind], ct_last_error());
        if (!ok) continue;
        char what[96];
        const struct {
            const char *name;
            const ct_tensor *c, *g;
        } pairs[] = {{"output", y, gy},
                     {"x gradient", x->grad, gx->grad},
                     {"A gradient", A->grad, gpu_dora.A->grad},
                     {"B gradient", B->grad, gpu_dora.B->grad},
                     {"magnitude gradient", mag->grad, gpu_dora.magnitude->grad}};
        for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++) {
            snprintf(what, sizeof what, "dora on %s: %s", names[kind], pairs[i].name);
            compare(what, pairs[i].c, pairs[i].g, TOL_F32);
        }
    }
}

int main(void) {
    if (!ct_device_available(CT_CUDA)) {
        ct_test_note_skip("test_cuda_parity", "no usable CUDA device (docs/gpu.md runs the GPU tests on a GPU machine)");
        return 77;
    }
    cpu = ct_cpu_backend();
    gpu = ct_cuda_backend_table();
    ct_rng_seed(&rng, 20250);
    printf("cuda op table complete: %s\n", ct_cuda_backend_table_complete() ? "yes" : "no");
    printf("relative errors (gpu vs cpu):\n");

    ct_scope_begin();
    for (int row = 0; row < 2; row++) {
        test_binary(CT_F32, CT_F32, row);
        test_binary(CT_BF16, CT_BF16, row);
        test_binary(CT_BF16, CT_F32, row);
        test_binary(CT_F64, CT_F64, row);
    }
    test_convert();
    test_axpby(CT_F32, CT_F32);
    test_axpby(CT_BF16, CT_F32);
    test_axpby(CT_F64, CT_F64);
    test_axpby_beta_zero(CT_F32);
    test_axpby_beta_zero(CT_F64);
    test_mul_accumulate(CT_F32, CT_F32, false);
    test_mul_accumulate(CT_F32, CT_BF16, true);
    test_mul_accumulate(CT_F64, CT_F64, true);
    for (int y_kind = 0; y_kind < 3; y_kind++) test_sum_rows(CT_F32, y_kind);
    test_sum_rows(CT_F64, 1);
    test_tanh_and_scalar(CT_F32);
    test_tanh_and_scalar(CT_F64);
    test_sum(CT_F32, 1);
    test_sum(CT_F32, 10007);
    test_sum(CT_F64, 100003);
    test_embedding(CT_F32);
    test_embedding(CT_BF16);
    test_embedding(CT_F64);
    test_embedding_i8();
    test_embedding_bad_id();
    test_log_softmax(CT_F32);
    test_log_softmax(CT_F64);
    for (int reduction = 0; reduction < 2; reduction++) {
        test_cross_entropy(CT_F32, (ct_reduction)reduction);
        test_cross_entropy(CT_BF16, (ct_reduction)reduction);
        test_cross_entropy(CT_F64, (ct_reduction)reduction);
    }
    test_cross_entropy_bad_target();
    test_adamw(CT_F32);
    test_adamw(CT_F64);
    test_masked_adamw(CT_F32);
    test_masked_adamw(CT_F64);
    test_multi();
    test_rms_norm(CT_F32, CT_F32);
    test_rms_norm(CT_BF16, CT_BF16);
    test_rms_norm(CT_BF16, CT_F32);
    test_rms_norm(CT_F64, CT_F64);
    test_swiglu(CT_F32, true);
    test_swiglu(CT_F32, false);
    test_swiglu(CT_BF16, true);
    test_swiglu(CT_F64, true);
    test_rope(CT_F32, 1, false);
    test_rope(CT_F32, -1, true);
    test_rope(CT_BF16, 1, false);
    test_rope(CT_F64, 1, false);
    test_dropout(CT_F32, false);
    test_dropout(CT_F32, true);
    test_dropout(CT_F64, false);
    test_kl(CT_F32, false);
    test_kl(CT_F32, true);
    test_kl(CT_F64, true);
    test_kd_rows(CT_F32, CT_KD_FORWARD_KL, true);
    test_kd_rows(CT_F32, CT_KD_REVERSE_KL, true);
    test_kd_rows(CT_F32, CT_KD_SYMMETRIC_KL, true);
    test_kd_rows(CT_F32, CT_KD_FORWARD_KL, false);
    test_kd_rows(CT_F64, CT_KD_SYMMETRIC_KL, true);
    test_linear();
    test_fused_ce();
    test_lora_linear();
    test_dora_norms();
    test_dora_linear();
    free_device_blocks();
    test_allocator();
    free_device_blocks();
    ct_scope_end();
    CHECK(ct_cuda_synchronize() == 0, "device error at the end: %s", ct_last_error());
    return ct_test_finish("test_cuda_parity");
}
#endif
