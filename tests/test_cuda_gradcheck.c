/* The gradient checks of the ops, run on the GPU.
 *
 * Every op the CPU tests check by finite differences (tests/test_ops.c,
 * tests/test_transformer_ops.c, tests/test_attention.c: matmul, elementwise, reductions, views,
 * embedding, log_softmax, cross-entropy, RMSNorm, SiLU/SwiGLU, RoPE, dropout, KL, attention with
 * GQA, segments and a KV-cache offset) plus a checkpointed LLaMA-style block (with dropout, so the
 * recomputation must redraw the same masks) runs with f64 tensors on the GPU: ct_gradcheck
 * differentiates on the device with the CUDA f64 kernels and compares with central differences
 * taken there too (tolerances of tests/ct_test_gradcheck.h: 1e-6 analytic vs numeric; the f32
 * run on the GPU within 1e-5 (output) and 1e-4 (gradients) of the f64 one). Then the same
 * inputs run on the CPU and the GPU's f64 output and analytic gradients must match the CPU's
 * within 1e-10 norm-wise (the two differ only in the order of additions). Inputs are random, of
 * odd sizes; position and segment ids are explicit device tensors.
 *
 * Needs a GPU: exits 77 (skipped) without one, and in a build without CUDA. */
#include <stdio.h>
#include <string.h>

#include "core/arena.h"
#include "core/error.h"
#include "autograd/gradcheck.h"
#include "autograd/op_attention.h"
#include "autograd/ops.h"
#include "autograd/ops_transformer.h"
#include "core/rng.h"
#include "autograd/tape.h"
#include "kernels/device.h"
#include "tests/ct_test.h"
#include "tests/ct_test_block.h"
#include "tests/ct_test_gradcheck.h"
#include "tests/ct_test_op_fns.h"

#ifndef CT_HAVE_CUDA
int main(void) {
    ct_test_note_skip("test_cuda_gradcheck", "built without CUDA (nvcc not found, or -DCT_ENABLE_CUDA=OFF)");
    return 77;
}
#else
#include "kernels/cuda/cuda_memory.h"

#define GPU_CPU_TOLERANCE 1e-10
#define MAX_INPUTS 8

static ct_rng rng;

static ct_tensor *rand_in(int ndim, const int64_t *shape) { return ct_random_input(&rng, ndim, shape); }

/* A device copy of a CPU leaf, keeping requires_grad. */
static ct_tensor *to_gpu(ct_tensor *t) {
    if (!t) return NULL;
    ct_tensor *g = ct_to_device(t, CT_CUDA);
    if (!g) {
        fprintf(stderr, "copy to the GPU failed: %s\n", ct_last_error());
        exit(1);
    }
    g->requires_grad = t->requires_grad;
    return g;
}

static ct_tensor *ids(int64_t rows, int64_t n, const int32_t *values) {
    ct_tensor *t = ct_empty(CT_I32, 2, (int64_t[]){rows, n});
    memcpy(t->data, values, sizeof(int32_t) * (size_t)(rows * n));
    return t;
}

/* i32 positions [B, T], each row from its own random start (test_transformer_ops.c's). */
static ct_tensor *positions(int64_t batch, int64_t time) {
    ct_tensor *p = ct_empty(CT_I32, 2, (int64_t[]){batch, time});
    for (int64_t b = 0; b < batch; b++) {
        int64_t start = (int64_t)ct_rng_below(&rng, 50);
        for (int64_t t = 0; t < time; t++) ct_set(p, b * time + t, (double)(start + t));
    }
    return p;
}

/* Positions offset, offset + 1, ... in every row. */
static ct_tensor *range_ids(int64_t rows, int64_t n, int64_t offset) {
    ct_tensor *t = ct_empty(CT_I32, 2, (int64_t[]){rows, n});
    for (int64_t i = 0; i < rows * n; i++) ct_set(t, i, (double)(offset + i % n));
    return t;
}

/* ---- running a case on both devices ---- */

/* fn's output and the analytic gradients of L = sum(fn(inputs) * R), R drawn on the host from
 * `seed` (the same numbers for both devices). The gradients stay in the current scope; the
 * inputs are left without .grad, as ct_gradcheck leaves them. */
static int analytic(ct_gradcheck_fn fn, ct_tensor *const *inputs, int n, void *user, uint64_t seed, ct_tensor **y,
                    ct_tensor **grads) {
    *y = fn(inputs, n, user);
    if (!*y) return -1;
    ct_rng r;
    ct_rng_seed(&r, seed);
    ct_tensor *weights = ct_empty((*y)->dtype, (*y)->ndim, (*y)->shape);
    if (!weights) return -1;
    ct_fill_normal(weights, &r, 0.0, 1.0);
    if ((*y)->device != CT_CPU && !(weights = ct_to_device(weights, (*y)->device))) return -1;
    int status = ct_backward(ct_sum(ct_mul(*y, weights)));
    for (int i = 0; i < n; i++) {
        grads[i] = inputs[i]->grad;
        inputs[i]->grad = NULL;
    }
    return status;
}

static void compare_with_cpu(const char *name, ct_gradcheck_fn fn, ct_tensor *const *cpu_in, ct_tensor *const *gpu_in,
                             int n, void *cpu_user, void *gpu_user) {
    ct_scope_begin();
    ct_tensor *cpu_y, *gpu_y, *cpu_grads[MAX_INPUTS], *gpu_grads[MAX_INPUTS];
    int cpu_status = analytic(fn, cpu_in, n, cpu_user, 777, &cpu_y, cpu_grads);
    CHECK(cpu_status == 0, "%s: CPU run: %s", name, ct_last_error());
    int gpu_status = cpu_status ? -1 : analytic(fn, gpu_in, n, gpu_user, 777, &gpu_y, gpu_grads);
    CHECK(cpu_status || gpu_status == 0, "%s: GPU run: %s", name, ct_last_error());
    if (cpu_status == 0 && gpu_status == 0) {
        double out_error = ct_relative_error(gpu_y, cpu_y), grad_error = 0;
        int compared = 0;
        for (int i = 0; i < n; i++) {
            if (!cpu_in[i]->requires_grad) continue;
            CHECK(cpu_grads[i] && gpu_grads[i], "%s: input %d has a gradient on one device only", name, i);
            if (!cpu_grads[i] || !gpu_grads[i]) continue;
            double e = ct_relative_error(gpu_grads[i], cpu_grads[i]);
            if (!(e <= grad_error)) grad_error = e;
            compared++;
        }
        printf("%-36s gpu vs cpu: out %.2e  grad %.2e  (%d gradients)\n", name, out_error, grad_error, compared);
        CHECK(out_error <= GPU_CPU_TOLERANCE, "%s: GPU output differs from the CPU's by %.3g", name, out_error);
        CHECK(grad_error <= GPU_CPU_TOLERANCE, "%s: GPU gradients differ from the CPU's by %.3g", name, grad_error);
        CHECK(compared > 0, "%s: no gradient compared", name);
    }
    ct_scope_end();
}

/* The gradient check on the GPU, then GPU vs CPU. cpu_user and gpu_user are the same settings
 * with any tensors they hold on the CPU and on the GPU. */
static void expect_gpu_gradcheck(const char *name, ct_gradcheck_fn fn, ct_tensor *const *cpu_in, int n,
                                 void *cpu_user, void *gpu_user) {
    ct_tensor *gpu_in[MAX_INPUTS];
    for (int i = 0; i < n; i++) gpu_in[i] = to_gpu(cpu_in[i]);
    char label[96];
    snprintf(label, sizeof label, "cuda %s", name);
    expect_gradcheck(label, fn, gpu_in, n, gpu_user);
    compare_with_cpu(label, fn, cpu_in, gpu_in, n, cpu_user, gpu_user);
}

/* ---- tests/test_ops.c ---- */

static void check_core_ops(void) {
    ct_scope_begin();
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            int flags[2] = {ta, tb};
            int64_t M = 7, K = 5, N = 3;
            ct_tensor *a = rand_in(2, ta ? (int64_t[]){K, M} : (int64_t[]){M, K});
            ct_tensor *b = rand_in(2, tb ? (int64_t[]){N, K} : (int64_t[]){K, N});
            char name[64];
            snprintf(name, sizeof name, "matmul ta=%d tb=%d", ta, tb);
            expect_gpu_gradcheck(name, fn_matmul, (ct_tensor *[]){a, b}, 2, flags, flags);
        }
    int linear[2] = {0, 1};
    ct_tensor *x = rand_in(3, (int64_t[]){2, 3, 5}), *w = rand_in(2, (int64_t[]){7, 5});
    expect_gpu_gradcheck("matmul 3-D linear", fn_matmul, (ct_tensor *[]){x, w}, 2, linear, linear);

    ct_tensor *a = rand_in(2, (int64_t[]){5, 7}), *b = rand_in(2, (int64_t[]){5, 7});
    ct_tensor *row = rand_in(1, (int64_t[]){7});
    expect_gpu_gradcheck("add", fn_add, (ct_tensor *[]){a, b}, 2, NULL, NULL);
    expect_gpu_gradcheck("add row broadcast", fn_add, (ct_tensor *[]){a, row}, 2, NULL, NULL);
    expect_gpu_gradcheck("mul", fn_mul, (ct_tensor *[]){a, b}, 2, NULL, NULL);
    expect_gpu_gradcheck("mul row broadcast", fn_mul, (ct_tensor *[]){a, row}, 2, NULL, NULL);
    expect_gpu_gradcheck("scale", fn_scale, (ct_tensor *[]){a}, 1, NULL, NULL);
    expect_gpu_gradcheck("tanh", fn_tanh, (ct_tensor *[]){a}, 1, NULL, NULL);
    expect_gpu_gradcheck("sum", fn_sum, (ct_tensor *[]){rand_in(3, (int64_t[]){3, 5, 7})}, 1, NULL, NULL);
    expect_gpu_gradcheck("mean", fn_mean, (ct_tensor *[]){a}, 1, NULL, NULL);
    expect_gpu_gradcheck("reshape and slice views", fn_views, (ct_tensor *[]){rand_in(2, (int64_t[]){5, 6})}, 1, NULL,
                         NULL);

    ct_tensor *table = rand_in(2, (int64_t[]){11, 5});
    int32_t values[9] = {3, 0, 3, 10, 7, 3, 1, 0, 10}; /* repeats accumulate */
    expect_gpu_gradcheck("embedding", fn_embedding, (ct_tensor *[]){table, ids(3, 3, values)}, 2, NULL, NULL);

    ct_tensor *logits = rand_in(2, (int64_t[]){9, 13});
    expect_gpu_gradcheck("log_softmax", fn_log_softmax, (ct_tensor *[]){logits}, 1, NULL, NULL);
    ct_tensor *targets = ct_empty(CT_I32, 1, (int64_t[]){9});
    for (int64_t i = 0; i < 9; i++) ct_set(targets, i, i % 4 == 1 ? -100 : (double)ct_rng_below(&rng, 13));
    ct_reduction mean = CT_REDUCE_MEAN, sum = CT_REDUCE_SUM;
    expect_gpu_gradcheck("cross_entropy mean, ignore", fn_cross_entropy, (ct_tensor *[]){logits, targets}, 2, &mean,
                         &mean);
    expect_gpu_gradcheck("cross_entropy sum, ignore", fn_cross_entropy, (ct_tensor *[]){logits, targets}, 2, &sum,
                         &sum);
    ct_scope_end();
}

/* ---- tests/test_transformer_ops.c ---- */

static void check_transformer_ops(void) {
    ct_scope_begin();
    op_args args = {.eps = 1e-5, .theta = 10000.0, .p = 0.3, .temperature = 2.0, .seed = 7,
                    .stream = ct_dropout_stream(3, 5)};
    ct_tensor *x = rand_in(3, (int64_t[]){3, 5, 7}), *w = rand_in(1, (int64_t[]){7});
    expect_gpu_gradcheck("rms_norm [3,5,7]", fn_rms_norm, (ct_tensor *[]){x, w}, 2, &args, &args);
    args.eps = 0.5;
    expect_gpu_gradcheck("rms_norm eps=0.5 [5,7]", fn_rms_norm, (ct_tensor *[]){rand_in(2, (int64_t[]){5, 7}), w}, 2,
                         &args, &args);
    args.eps = 1e-6; /* more rows than one weight-gradient block (32) */
    expect_gpu_gradcheck("rms_norm [67,3]", fn_rms_norm,
                         (ct_tensor *[]){rand_in(2, (int64_t[]){67, 3}), rand_in(1, (int64_t[]){3})}, 2, &args, &args);

    ct_tensor *g = rand_in(2, (int64_t[]){5, 7}), *u = rand_in(2, (int64_t[]){5, 7});
    expect_gpu_gradcheck("silu [5,7]", fn_silu, (ct_tensor *[]){g}, 1, NULL, NULL);
    expect_gpu_gradcheck("swiglu [5,7]", fn_swiglu, (ct_tensor *[]){g, u}, 2, NULL, NULL);

    ct_tensor *q = rand_in(4, (int64_t[]){2, 3, 3, 6});
    expect_gpu_gradcheck("rope [2,3,3,6] theta=1e4", fn_rope, (ct_tensor *[]){q, positions(2, 3)}, 2, &args, &args);
    float scaled[5] = {1.0f, 0.37f, 0.11f, 0.025f, 0.004f};
    args.inv_freq = scaled;
    expect_gpu_gradcheck("rope [3,1,2,10] inv_freq", fn_rope,
                         (ct_tensor *[]){rand_in(4, (int64_t[]){3, 1, 2, 10}), positions(3, 1)}, 2, &args, &args);
    args.inv_freq = NULL;

    expect_gpu_gradcheck("dropout p=0.3 [5,7]", fn_dropout, (ct_tensor *[]){g}, 1, &args, &args);
    args.p = 0.0;
    expect_gpu_gradcheck("dropout p=0 [5,7]", fn_dropout, (ct_tensor *[]){g}, 1, &args, &args);
    args.p = 0.3;

    ct_tensor *s = rand_in(2, (int64_t[]){5, 11}), *t = rand_in(2, (int64_t[]){5, 11});
    expect_gpu_gradcheck("kl_div T=2 both grads", fn_kl, (ct_tensor *[]){s, t}, 2, &args, &args);
    ct_tensor *mask = ct_empty(CT_F64, 1, (int64_t[]){5});
    for (int64_t r = 0; r < 5; r++) ct_set(mask, r, r % 3 == 1 ? 0.0 : 1.0);
    args.temperature = 0.7;
    expect_gpu_gradcheck("kl_div T=0.7 masked", fn_kl, (ct_tensor *[]){s, t, mask}, 3, &args, &args);
    t->requires_grad = false; /* the usual frozen teacher */
    args.temperature = 1.0;
    expect_gpu_gradcheck("kl_div T=1 frozen teacher", fn_kl, (ct_tensor *[]){s, t, mask}, 3, &args, &args);
    t->requires_grad = true;

    ct_tensor *h = rand_in(4, (int64_t[]){2, 3, 1, 4});
    expect_gpu_gradcheck("rms_norm->rope->dropout", fn_chain,
                         (ct_tensor *[]){h, rand_in(1, (int64_t[]){4}), positions(2, 3)}, 3, &args, &args);
    ct_scope_end();
}

/* ---- tests/test_attention.c ---- */

static ct_tensor *fn_attention(ct_tensor *const *in, int n, void *user) {
    (void)n;
    return ct_attention(in[0], in[1], in[2], user);
}

/* Explicit ids on each device: positions default to 0..T-1 (with kv_offset, the cache layout). */
static void attention_case(const char *name, ct_tensor *q, ct_tensor *k, ct_tensor *v, const ct_attention_args *cpu,
                           int64_t kv_offset) {
    int64_t B = q->shape[0], T = q->shape[1], S = k->shape[1];
    ct_attention_args c = *cpu;
    if (!c.q_pos) {
        c.q_pos = range_ids(B, T, kv_offset);
        c.k_pos = range_ids(B, S, 0);
    }
    ct_attention_args g = c;
    g.q_pos = to_gpu(c.q_pos);
    g.k_pos = to_gpu(c.k_pos);
    g.q_seg = to_gpu(c.q_seg);
    g.k_seg = to_gpu(c.k_seg);
    expect_gpu_gradcheck(name, fn_attention, (ct_tensor *[]){q, k, v}, 3, &c, &g);
}

static void check_attention(void) {
    ct_scope_begin();
    ct_attention_args none = {0};
    attention_case("attention causal MHA", rand_in(4, (int64_t[]){2, 7, 3, 5}), rand_in(4, (int64_t[]){2, 7, 3, 5}),
                   rand_in(4, (int64_t[]){2, 7, 3, 5}), &none, 0);
    ct_tensor *q6 = rand_in(4, (int64_t[]){2, 7, 6, 5});
    ct_tensor *k2 = rand_in(4, (int64_t[]){2, 7, 2, 5}), *v2 = rand_in(4, (int64_t[]){2, 7, 2, 5});
    attention_case("attention GQA 6/2", q6, k2, v2, &none, 0);
    ct_attention_args scaled = {.scale = 0.3};
    attention_case("attention GQA 6/2, scale 0.3", q6, k2, v2, &scaled, 0);

    /* two packed rows: sequences restart their positions and never see each other */
    static const int32_t packed_pos[18] = {0, 1, 2, 3, 0, 1, 2, 0, 1, 0, 1, 2, 3, 4, 5, 0, 1, 2};
    static const int32_t packed_seg[18] = {0, 0, 0, 0, 1, 1, 1, 2, 2, 0, 0, 0, 0, 0, 0, 1, 1, 1};
    ct_attention_args packed = {.q_pos = ids(2, 9, packed_pos), .q_seg = ids(2, 9, packed_seg)};
    attention_case("attention packed GQA 4/2", rand_in(4, (int64_t[]){2, 9, 4, 3}),
                   rand_in(4, (int64_t[]){2, 9, 2, 3}), rand_in(4, (int64_t[]){2, 9, 2, 3}), &packed, 0);

    ct_attention_args cache = {.kv_offset = 5};
    attention_case("attention KV cache T=3 S=8", rand_in(4, (int64_t[]){2, 3, 4, 5}),
                   rand_in(4, (int64_t[]){2, 8, 2, 5}), rand_in(4, (int64_t[]){2, 8, 2, 5}), &cache, 5);

    /* more than one block each way */
    attention_case("attention T=67 MQA 2/1 (two blocks)", rand_in(4, (int64_t[]){1, 67, 2, 3}),
                   rand_in(4, (int64_t[]){1, 67, 1, 3}), rand_in(4, (int64_t[]){1, 67, 1, 3}), &none, 0);
    ct_scope_end();
}

/* ---- a checkpointed block ---- */

enum { BLOCK_DIM = 8, BLOCK_FFN = 6, BLOCK_HEADS = 2, BLOCK_KV_HEADS = 1, BLOCK_B = 2, BLOCK_T = 3 };

/* The block's matrices are the gradcheck's inputs (x first); the two norm weights, which the
 * check does not differentiate, come from here in the dtype of the run (f64, or f32 for the
 * f32 comparison). */
typedef struct {
    test_block block;
    ct_tensor *norms64[2], *norms32[2];
    bool checkpointed;
} block_case;

static const int block_matrices[7] = {BLOCK_Q, BLOCK_K, BLOCK_V, BLOCK_O, BLOCK_GATE, BLOCK_UP, BLOCK_DOWN};

static ct_tensor *fn_block(ct_tensor *const *in, int n, void *user) {
    (void)n;
    block_case *c = user;
    ct_tensor **norms = in[0]->dtype == CT_F64 ? c->norms64 : c->norms32;
    c->block.p[BLOCK_NORM1] = norms[0];
    c->block.p[BLOCK_NORM2] = norms[1];
    for (int i = 0; i < 7; i++) c->block.p[block_matrices[i]] = in[1 + i];
    return test_block_apply(&c->block, in[0], c->checkpointed);
}

static void block_case_init(block_case *c, ct_device device, ct_tensor *const *norms64, bool checkpointed) {
    memset(c, 0, sizeof *c);
    c->block = (test_block){.dim = BLOCK_DIM, .ffn = BLOCK_FFN, .n_heads = BLOCK_HEADS, .n_kv_heads = BLOCK_KV_HEADS,
                            .head_dim = BLOCK_DIM / BLOCK_HEADS, .dropout = 0.2, .seed = 31, .step = 4, .index = 1};
    c->block.positions = test_block_positions_on(device, BLOCK_B, BLOCK_T);
    c->checkpointed = checkpointed;
    for (int i = 0; i < 2; i++) {
        ct_tensor *host32 = ct_empty(CT_F32, 1, norms64[i]->shape);
        ct_copy(host32, norms64[i]);
        c->norms64[i] = device == CT_CPU ? norms64[i] : ct_to_device(norms64[i], device);
        c->norms32[i] = device == CT_CPU ? host32 : ct_to_device(host32, device);
    }
}

static void check_block(void) {
    ct_scope_begin();
    int64_t kv = BLOCK_KV_HEADS * (BLOCK_DIM / BLOCK_HEADS);
    ct_tensor *norms[2];
    for (int i = 0; i < 2; i++) {
        norms[i] = ct_empty(CT_F64, 1, (int64_t[]){BLOCK_DIM});
        ct_fill_uniform(norms[i], &rng, 0.8, 1.2);
    }
    const double scale = 1 / sqrt((double)BLOCK_DIM);
    int64_t shapes[7][2] = {{BLOCK_DIM, BLOCK_DIM}, {kv, BLOCK_DIM},       {kv, BLOCK_DIM},       {BLOCK_DIM, BLOCK_DIM},
                            {BLOCK_FFN, BLOCK_DIM}, {BLOCK_FFN, BLOCK_DIM}, {BLOCK_DIM, BLOCK_FFN}};
    ct_tensor *in[8];
    in[0] = rand_in(3, (int64_t[]){BLOCK_B, BLOCK_T, BLOCK_DIM});
    for (int i = 0; i < 7; i++) {
        in[1 + i] = rand_in(2, shapes[i]);
        for (int64_t k = 0; k < ct_numel(in[1 + i]); k++) ct_set(in[1 + i], k, ct_get(in[1 + i], k) * scale);
    }
    for (int checkpointed = 0; checkpointed < 2; checkpointed++) {
        static block_case cpu_case, gpu_case; /* ctx of checkpoint nodes: must outlive each backward */
        block_case_init(&cpu_case, CT_CPU, norms, checkpointed);
        block_case_init(&gpu_case, CT_CUDA, norms, checkpointed);
        CHECK(gpu_case.block.positions && gpu_case.norms64[1] && gpu_case.norms32[1], "block on the GPU: %s",
              ct_last_error());
        expect_gpu_gradcheck(checkpointed ? "block, checkpointed, dropout 0.2" : "block, dropout 0.2", fn_block, in, 8,
                             &cpu_case, &gpu_case);
    }
    ct_scope_end();
}

/* ct_kd_loss: both lm_heads chunked inside the op (GEMMs on views), the CUDA row kernels, the
 * teacher frozen; rows with target -100 and padding head rows past `vocab`. */
typedef struct {
    ct_kd_options o;
    int64_t vocab;
} kd_args;

static ct_tensor *fn_kd(ct_tensor *const *in, int n, void *user) {
    (void)n;
    const kd_args *a = user;
    return ct_kd_loss(in[0], in[1], in[2], in[3], in[4], a->vocab, &a->o);
}

static void check_kd_loss(void) {
    const int64_t rows = 7, vocab = 9;
    ct_tensor *y = ct_empty(CT_I32, 1, &rows);
    for (int64_t r = 0; r < rows; r++) ((int32_t *)y->data)[r] = r % 3 == 1 ? -100 : (int32_t)((r * 5) % vocab);
    static const ct_kd_divergence divergences[] = {CT_KD_FORWARD_KL, CT_KD_REVERSE_KL, CT_KD_SYMMETRIC_KL};
    for (int d = 0; d < 3; d++) {
        ct_tensor *sh = rand_in(2, (int64_t[]){rows, 5}), *sw = rand_in(2, (int64_t[]){vocab + 2, 5});
        ct_tensor *th = rand_in(2, (int64_t[]){rows, 6}), *tw = rand_in(2, (int64_t[]){vocab + 1, 6});
        th->requires_grad = tw->requires_grad = false;
        kd_args a = {.o = {.ce_weight = 0.3, .kl_weight = 0.7, .temperature = d == 1 ? 0.5 : 2.0,
                           .divergence = divergences[d], .chunk_rows = 3},
                     .vocab = vocab};
        char name[64];
        snprintf(name, sizeof name, "kd_loss divergence %d", d);
        expect_gpu_gradcheck(name, fn_kd, (ct_tensor *[]){sh, sw, th, tw, y}, 5, &a, &a);
    }
}

int main(void) {
    if (!ct_device_available(CT_CUDA)) {
        ct_test_note_skip("test_cuda_gradcheck", "no usable CUDA device (docs/gpu.md runs the GPU tests on a GPU machine)");
        return 77;
    }
    if (!ct_cuda_backend()) {
        printf("test_cuda_gradcheck: the CUDA op table is incomplete, so no tensor can live on the GPU\n");
        return 1;
    }
    ct_rng_seed(&rng, 2718);
    check_core_ops();
    check_transformer_ops();
    check_attention();
    check_block();
    check_kd_loss();
    CHECK(ct_cuda_synchronize() == 0, "device error at the end: %s", ct_last_error());
    ct_memory_release_all();
    return ct_test_finish("test_cuda_gradcheck");
}
#endif
