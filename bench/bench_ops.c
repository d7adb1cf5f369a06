/* Memory-bandwidth benchmark of the transformer ops' CPU kernels (RMSNorm, RoPE, SwiGLU,
 * cross-entropy, KL), forward and backward, in f32 and with bf16 storage, against copy bandwidth
 * measured in the same run.
 *
 * These kernels are memory-bound: each reads and writes every element about once, so the useful
 * figure is bytes moved per second (each tensor read counts once, each written once, each
 * accumulated into twice; bf16 tensors 2 bytes an element, f32 ones 4) as a fraction of what a
 * plain copy achieves. The bf16 rows store activations (and the norm weight) in bf16; gradients
 * stay f32, so a bf16 backward moves fewer bytes only for what it reads from activations. RoPE
 * backward and KL take f32 only and have no bf16 row; the f32 <-> bf16 conversions have rows of
 * their own. The kernels are called through the backend table on preallocated tensors, so the op
 * layer's allocation and zero-fill of gradient buffers is not timed. One JSON object per line.
 * Usage: OMP_NUM_THREADS=2 bench_ops [repeats] */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/error.h"
#include "autograd/ops.h"
#include "autograd/ops_transformer.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "bench/bench_blas.h"
#include "kernels/backend.h"

static int repeats = 5;

typedef void (*bench_fn)(void *state);

/* Best of `repeats` timed runs after one untimed warm-up (which also faults the pages in). */
static double best_seconds(bench_fn fn, void *state) {
    fn(state);
    double best = 1e30;
    for (int i = 0; i < repeats; i++) {
        double start = omp_get_wtime();
        fn(state);
        double elapsed = omp_get_wtime() - start;
        if (elapsed < best) best = elapsed;
    }
    return best;
}

typedef struct {
    float *src, *dst;
    size_t n;
} copy_state;

static void run_memcpy(void *s) {
    copy_state *c = s;
    memcpy(c->dst, c->src, c->n * sizeof(float));
}

static void run_omp_copy(void *s) {
    copy_state *c = s;
    float *restrict dst = c->dst;
    const float *restrict src = c->src;
    int64_t n = (int64_t)c->n;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) dst[i] = src[i];
}

static double memcpy_gbps, omp_copy_gbps;

/* The fraction of copy bandwidth is taken against the faster of the two copies. */
static void report(const char *op, const char *pass, const char *dtype, const char *shape, double bytes,
                   double seconds) {
    double gbps = bytes / seconds / 1e9, copy = memcpy_gbps > omp_copy_gbps ? memcpy_gbps : omp_copy_gbps;
    printf("{\"op\": \"%s\", \"pass\": \"%s\", \"dtype\": \"%s\", \"shape\": \"%s\", \"ms\": %.3f, "
           "\"gb_moved\": %.3f, \"gbps\": %.2f, \"memcpy_gbps\": %.2f, \"omp_copy_gbps\": %.2f, "
           "\"ratio_memcpy\": %.3f, \"ratio_omp_copy\": %.3f, \"ratio_copy\": %.3f, %s}\n",
           op, pass, dtype, shape, seconds * 1e3, bytes / 1e9, gbps, memcpy_gbps, omp_copy_gbps, gbps / memcpy_gbps,
           gbps / omp_copy_gbps, gbps / copy, bench_blas_json());
    fflush(stdout);
}

static ct_tensor *random_f32(ct_rng *rng, int ndim, const int64_t *shape) {
    ct_tensor *t = ct_empty(CT_F32, ndim, shape);
    if (t) ct_fill_normal(t, rng, 0.0, 1.0);
    return t;
}

/* A bf16 copy of t (rounded), the same shape. */
static ct_tensor *bf16_of(const ct_tensor *t) {
    ct_tensor *b = ct_empty(CT_BF16, t->ndim, t->shape);
    if (b && ct_cpu_backend()->convert(t, b) < 0) return NULL;
    return b;
}

/* One state for every op: the tensors a kernel call needs, and which call to make. */
typedef struct {
    const ct_backend *be;
    ct_tensor *a, *b, *out, *ga, *gb, *gout, *aux, *ids;
    double *freq;
    int which;
} op_state;

enum { RMS_FWD, RMS_BWD, ROPE_FWD, ROPE_BWD, SWIGLU_FWD, SWIGLU_BWD, CE_FWD, CE_BWD, KL_FWD, KL_BWD, CONVERT };

static void run_op(void *s) {
    op_state *o = s;
    int status = 0;
    switch (o->which) {
    case RMS_FWD: status = o->be->rms_norm_forward(o->a, o->b, 1e-5, o->aux, o->out); break;
    case RMS_BWD: status = o->be->rms_norm_backward(o->a, o->b, o->aux, o->gout, o->ga, o->gb); break;
    case ROPE_FWD: status = o->be->rope(o->a, o->ids, o->freq, 1, false, o->out); break;
    case ROPE_BWD: status = o->be->rope(o->gout, o->ids, o->freq, -1, true, o->ga); break;
    case SWIGLU_FWD: status = o->be->swiglu_forward(o->a, o->b, o->out); break;
    case SWIGLU_BWD: status = o->be->swiglu_backward(o->a, o->b, o->gout, o->ga, o->gb); break;
    case CE_FWD: status = o->be->cross_entropy_forward(o->a, o->ids, CT_REDUCE_MEAN, o->aux, o->out); break;
    case CE_BWD: status = o->be->cross_entropy_backward(o->a, o->ids, CT_REDUCE_MEAN, o->aux, o->gout, o->ga); break;
    case KL_FWD: status = o->be->kl_div_forward(o->a, o->b, NULL, 2.0, o->aux, o->out); break;
    case KL_BWD: status = o->be->kl_div_backward(o->a, o->b, NULL, 2.0, o->aux, o->gout, o->ga, NULL); break;
    case CONVERT: status = o->be->convert(o->a, o->out); break;
    }
    if (status < 0) {
        fprintf(stderr, "bench_ops: %s\n", ct_last_error());
        exit(1);
    }
}

static void bench(op_state *o, int which, const char *op, const char *pass, const char *shape, double bytes) {
    o->which = which;
    report(op, pass, o->a->dtype == CT_BF16 ? "bf16" : "f32", shape, bytes, best_seconds(run_op, o));
}

/* The same state with a, b and out (the activations) in bf16, the gradients kept f32. */
static op_state with_bf16_activations(const op_state *o) {
    op_state b = *o;
    b.a = bf16_of(o->a);
    b.b = o->b ? bf16_of(o->b) : NULL;
    b.out = o->out && o->out->ndim ? ct_empty(CT_BF16, o->out->ndim, o->out->shape) : o->out;
    if (!b.a || (o->b && !b.b) || !b.out) {
        fprintf(stderr, "bench_ops: %s\n", ct_last_error());
        exit(1);
    }
    return b;
}

int main(int argc, char **argv) {
    bench_blas_start(argv);
    if (argc > 1) repeats = atoi(argv[1]) > 0 ? atoi(argv[1]) : repeats;
    ct_rng rng;
    ct_rng_seed(&rng, 1);
    ct_scope_begin();
    const int64_t R = 4096, C = 4096, N = R * C; /* 64 MiB per f32 tensor: far beyond any cache */
    const double f = sizeof(float), half = sizeof(uint16_t);

    copy_state copy = {ct_arena_alloc((size_t)N * sizeof(float)), ct_arena_alloc((size_t)N * sizeof(float)),
                       (size_t)N};
    if (!copy.src || !copy.dst) return fprintf(stderr, "bench_ops: %s\n", ct_last_error()), 1;
    memset(copy.src, 1, (size_t)N * sizeof(float));
    memcpy_gbps = 2.0 * N * f / best_seconds(run_memcpy, &copy) / 1e9;
    omp_copy_gbps = 2.0 * N * f / best_seconds(run_omp_copy, &copy) / 1e9;
    printf("{\"baseline\": \"copy\", \"bytes\": %lld, \"threads\": %d, \"memcpy_gbps\": %.2f, "
           "\"omp_copy_gbps\": %.2f, %s}\n",
           (long long)(N * 4), omp_get_max_threads(), memcpy_gbps, omp_copy_gbps, bench_blas_json());

    op_state o = {.be = ct_cpu_backend()};
    /* RMSNorm [4096, 4096]: fwd reads x, writes y; bwd reads x and g, accumulates gx (gw is one row) */
    o.a = random_f32(&rng, 2, (int64_t[]){R, C});
    o.b = random_f32(&rng, 1, (int64_t[]){C});
    o.out = ct_empty(CT_F32, 2, (int64_t[]){R, C});
    o.aux = ct_empty(CT_F32, 1, (int64_t[]){R});
    o.gout = random_f32(&rng, 2, (int64_t[]){R, C});
    o.ga = ct_zeros(CT_F32, 2, (int64_t[]){R, C});
    o.gb = ct_zeros(CT_F32, 1, (int64_t[]){C});
    bench(&o, RMS_FWD, "rms_norm", "forward", "[4096, 4096]", 2 * N * f);
    bench(&o, RMS_BWD, "rms_norm", "backward", "[4096, 4096]", 4 * N * f);
    op_state h = with_bf16_activations(&o);
    bench(&h, RMS_FWD, "rms_norm", "forward", "[4096, 4096]", 2 * N * half);
    bench(&h, RMS_BWD, "rms_norm", "backward", "[4096, 4096]", N * half + 3 * N * f);

    /* Conversions of the same 16M elements: read one dtype, write the other */
    op_state conv = {.be = o.be, .a = o.a, .out = h.a};
    bench(&conv, CONVERT, "convert_f32_to_bf16", "forward", "[4096, 4096]", N * (f + half));
    conv = (op_state){.be = o.be, .a = h.a, .out = o.out};
    bench(&conv, CONVERT, "convert_bf16_to_f32", "forward", "[4096, 4096]", N * (f + half));

    /* RoPE x [4, 1024, 32, 128] (the same 16M elements): fwd reads x writes y; bwd reads g, accumulates gx */
    int64_t xs[4] = {4, 1024, 32, 128};
    o.a = ct_reshape(o.a, 4, xs);
    o.out = ct_reshape(o.out, 4, xs);
    o.gout = ct_reshape(o.gout, 4, xs);
    o.ga = ct_reshape(o.ga, 4, xs);
    o.ids = ct_empty(CT_I32, 2, (int64_t[]){4, 1024});
    for (int64_t i = 0; i < 4 * 1024; i++) ct_set(o.ids, i, (double)(i % 1024));
    o.freq = ct_arena_alloc(64 * sizeof(double));
    ct_rope_default_inv_freq(500000.0, 128, o.freq);
    bench(&o, ROPE_FWD, "rope", "forward", "[4, 1024, 32, 128]", 2 * N * f);
    bench(&o, ROPE_BWD, "rope", "backward", "[4, 1024, 32, 128]", 3 * N * f);
    h.a = ct_reshape(h.a, 4, xs);
    h.out = ct_reshape(h.out, 4, xs);
    h.ids = o.ids;
    h.freq = o.freq;
    bench(&h, ROPE_FWD, "rope", "forward", "[4, 1024, 32, 128]", 2 * N * half);

    /* SwiGLU [4096, 4096]: fwd reads gate and up, writes out; bwd reads gate, up, g, accumulates both */
    int64_t ms[2] = {R, C};
    o.a = ct_reshape(o.a, 2, ms);
    o.out = ct_reshape(o.out, 2, ms);
    o.gout = ct_reshape(o.gout, 2, ms);
    o.ga = ct_reshape(o.ga, 2, ms);
    o.b = random_f32(&rng, 2, ms);
    o.gb = ct_zeros(CT_F32, 2, ms);
    bench(&o, SWIGLU_FWD, "swiglu", "forward", "[4096, 4096]", 3 * N * f);
    bench(&o, SWIGLU_BWD, "swiglu", "backward", "[4096, 4096]", 7 * N * f);
    h.a = ct_reshape(h.a, 2, ms);
    h.out = ct_reshape(h.out, 2, ms);
    h.b = bf16_of(o.b);
    h.gout = o.gout, h.ga = o.ga, h.gb = o.gb;
    if (!h.b) return fprintf(stderr, "bench_ops: %s\n", ct_last_error()), 1;
    bench(&h, SWIGLU_FWD, "swiglu", "forward", "[4096, 4096]", 3 * N * half);
    bench(&h, SWIGLU_BWD, "swiglu", "backward", "[4096, 4096]", 2 * N * half + 5 * N * f);
    ct_scope_end();

    /* Losses on logits [8192, 4096] (128 MiB each) */
    ct_scope_begin();
    const int64_t LR = 8192, LN = LR * C;
    int64_t ls[2] = {LR, C};
    o.a = random_f32(&rng, 2, ls);
    o.ga = ct_zeros(CT_F32, 2, ls);
    o.out = ct_empty(CT_F32, 0, NULL);
    o.gout = ct_scalar(CT_F32, 1.0);
    o.ids = ct_empty(CT_I32, 1, &LR);
    for (int64_t i = 0; i < LR; i++) ct_set(o.ids, i, (double)ct_rng_below(&rng, (uint64_t)C));
    o.aux = ct_empty(CT_F32, 1, &LR);
    /* cross-entropy: fwd reads logits; bwd reads logits, accumulates the gradient */
    bench(&o, CE_FWD, "cross_entropy", "forward", "[8192, 4096]", 1 * LN * f);
    bench(&o, CE_BWD, "cross_entropy", "backward", "[8192, 4096]", 3 * LN * f);
    o.b = NULL;
    h = with_bf16_activations(&o);
    bench(&h, CE_FWD, "cross_entropy", "forward", "[8192, 4096]", 1 * LN * half);
    bench(&h, CE_BWD, "cross_entropy", "backward", "[8192, 4096]", LN * half + 2 * LN * f);
    /* KL, frozen teacher: fwd reads both logits; bwd reads both, accumulates the student's gradient */
    o.b = random_f32(&rng, 2, ls);
    o.aux = ct_empty(CT_F64, 2, (int64_t[]){LR, 3});
    bench(&o, KL_FWD, "kl_div", "forward", "[8192, 4096]", 2 * LN * f);
    bench(&o, KL_BWD, "kl_div", "backward", "[8192, 4096]", 4 * LN * f);
    ct_scope_end();
    return 0;
}
