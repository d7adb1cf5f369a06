/* bf16 storage: the f32 <-> bf16 conversion paths, and every bf16-capable op against the same
 * op in f32 on the same (bf16-representable) values.
 *
 * Conversions: each vector path this CPU has (AVX2, AVX-512F, AVX512-BF16) must give the bits
 * of the scalar rounding on random data with NaN, infinities, zeros, subnormals and exact ties
 * mixed in, at lengths that leave every tail size; the scalar rounding itself is checked on
 * hand-derived cases (round to nearest even on the top 16 bits).
 * Ops: with bf16 inputs an op computes in f32 and rounds its output once, so its output must be
 * within 1e-2 (norm-wise) of the f32 op's, and for the elementwise ops exactly the f32 output
 * rounded to nearest even. Gradients of bf16 leaves are f32 and are compared the same way (the
 * only difference left is the rounding of saved outputs). Also: results do not depend on the
 * thread count, and mixing bf16 where it is not allowed fails with a one-line message. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "core/arena.h"
#include "core/error.h"
#include "autograd/gradcheck.h"
#include "autograd/op_attention.h"
#include "autograd/ops.h"
#include "autograd/ops_transformer.h"
#include "core/rng.h"
#include "kernels/backend.h"
#include "autograd/tape.h"
#include "tests/ct_test.h"

#define OUTPUT_TOLERANCE 1e-2
#define GRAD_TOLERANCE 1e-2

static ct_rng rng;

/* ---- conversions ---- */

static uint32_t float_bits(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static float bits_float(uint32_t u) {
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* Hand-derived: keep the top 16 bits, round the low 16 to nearest, ties to an even result. */
static void check_scalar_rounding(void) {
    static const struct { uint32_t in; uint16_t out; } cases[] = {
        {0x3f800000u, 0x3f80}, /* 1.0 exactly */
        {0x3f807fffu, 0x3f80}, /* just below half an ulp: down */
        {0x3f808000u, 0x3f80}, /* tie, kept part even: stays */
        {0x3f818000u, 0x3f82}, /* tie, kept part odd: up to even */
        {0x3f808001u, 0x3f81}, /* just above half: up */
        {0xbf818000u, 0xbf82}, /* negative tie rounds the magnitude the same way */
        {0x7f7fffffu, 0x7f80}, /* FLT_MAX rounds up to +inf */
        {0x7f800000u, 0x7f80}, /* +inf */
        {0xff800000u, 0xff80}, /* -inf */
        {0x7f800001u, 0x7fc0}, /* signalling NaN: kept NaN, made quiet */
        {0xffc12345u, 0xffc1}, /* quiet NaN with payload: top half kept */
        {0x00000001u, 0x0000}, /* smallest subnormal: rounds to +0 */
        {0x00008000u, 0x0000}, /* subnormal tie, even: down */
        {0x00018000u, 0x0002}, /* subnormal tie, odd: up */
        {0x007fffffu, 0x0080}, /* largest subnormal rounds up to the smallest normal */
        {0x80000000u, 0x8000}, /* -0 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint16_t got = ct_f32_to_bf16(bits_float(cases[i].in));
        CHECK(got == cases[i].out, "f32 %08x -> bf16 %04x, expected %04x", cases[i].in, got, cases[i].out);
    }
}

/* Random f32 bit patterns of every kind: ordinary values of many magnitudes, and one in four a
 * special value (NaN with random payload and sign, +-inf, +-0, subnormal, an exact tie). */
static void special_mix(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        uint32_t r = (uint32_t)ct_rng_next(&rng), sign = r & 0x80000000u;
        uint32_t bits;
        switch (ct_rng_below(&rng, 16)) {
        case 0: bits = sign | 0x7f800000u | ((r & 0x7fffffu) | 1u); break;    /* NaN */
        case 1: bits = sign | 0x7f800000u; break;                              /* inf */
        case 2: bits = sign; break;                                            /* zero */
        case 3: bits = sign | ((r >> 1) & 0x7fffffu); break;                   /* subnormal (or 0) */
        case 4: bits = (r & 0xffff0000u) | 0x8000u; break;                     /* tie (any exponent) */
        default: bits = r; break;                                              /* anything */
        }
        x[i] = bits_float(bits);
    }
}

static void check_conversion_paths(void) {
    enum { N = 4099 };
    static float x[N];
    static uint16_t reference[N], got[N], all[65536];
    special_mix(x, N);
    for (int64_t i = 0; i < N; i++) reference[i] = ct_f32_to_bf16(x[i]);
    for (int i = 0; i < 65536; i++) all[i] = (uint16_t)i;
    static float all_reference[65536], all_got[65536];
    for (int i = 0; i < 65536; i++) all_reference[i] = ct_bf16_to_f32(all[i]);
    for (int p = 0; p < CT_BF16_PATH_COUNT; p++) {
        ct_bf16_path path = (ct_bf16_path)p;
        if (!ct_bf16_path_supported(path)) {
            printf("bf16 conversion path %-10s not on this CPU: skipped\n", ct_bf16_path_name(path));
            CHECK(ct_f32_to_bf16_via(path, x, got, 1) < 0, "an unsupported path must refuse");
            continue;
        }
        int64_t mismatches = 0;
        /* every length 0..40 (all tails of a 32-wide loop), then the whole array */
        for (int64_t n = 0; n <= 40; n++) {
            memset(got, 0xab, sizeof got);
            CHECK(ct_f32_to_bf16_via(path, x + 7, got, n) == 0, "%s refused", ct_bf16_path_name(path));
            for (int64_t i = 0; i < n; i++) mismatches += got[i] != reference[i + 7];
            CHECK(n == N || got[n] == 0xabab, "%s wrote past the end at n=%lld", ct_bf16_path_name(path), (long long)n);
        }
        CHECK(ct_f32_to_bf16_via(path, x, got, N) == 0, "%s refused", ct_bf16_path_name(path));
        for (int64_t i = 0; i < N; i++) mismatches += got[i] != reference[i];
        CHECK(mismatches == 0, "%s narrowing: %lld values differ from the scalar rounding", ct_bf16_path_name(path),
              (long long)mismatches);
        CHECK(ct_bf16_to_f32_via(path, all, all_got, 65536) == 0, "%s refused", ct_bf16_path_name(path));
        int64_t widen_mismatches = 0;
        for (int i = 0; i < 65536; i++) widen_mismatches += float_bits(all_got[i]) != float_bits(all_reference[i]);
        CHECK(widen_mismatches == 0, "%s widening: %lld of 65536 patterns differ", ct_bf16_path_name(path),
              (long long)widen_mismatches);
        printf("bf16 conversion path %-10s bit-identical to scalar on %d mixed values and all 65536 bf16\n",
               ct_bf16_path_name(path), N);
    }
    /* The array functions use the best path: same bits again. */
    ct_f32_to_bf16_array(x, got, N);
    CHECK(memcmp(got, reference, sizeof got) == 0, "ct_f32_to_bf16_array (%s) differs",
          ct_bf16_path_name(ct_bf16_best_path()));
}

/* ---- ops: bf16 against f32 on the same values ---- */

/* The same values twice: a bf16 tensor and an f32 tensor holding its values exactly. */
typedef struct {
    ct_tensor *b, *f;
} pair;

static pair random_pair(int ndim, const int64_t *shape, double std, bool requires_grad) {
    pair p = {ct_empty(CT_BF16, ndim, shape), ct_empty(CT_F32, ndim, shape)};
    ct_fill_normal(p.f, &rng, 0.0, std);
    ct_copy(p.b, p.f); /* rounds (scalar rounding, independent of the kernels) */
    ct_copy(p.f, p.b);
    p.b->requires_grad = p.f->requires_grad = requires_grad;
    return p;
}

/* A fixed random f32 gradient of an output's shape: backward of sum(out * R). */
static ct_tensor *random_f32(int ndim, const int64_t *shape) {
    ct_tensor *t = ct_empty(CT_F32, ndim, shape);
    ct_fill_normal(t, &rng, 0.0, 1.0);
    return t;
}

/* Backpropagates R through out; 0 on success. */
static int backward_with(ct_tensor *out, const ct_tensor *r) { return ct_backward_from(out, r, NULL); }

static void expect_close(const char *name, const char *what, const ct_tensor *got, const ct_tensor *expected,
                         double tolerance) {
    CHECK(got && expected, "%s: %s missing (%s)", name, what, ct_last_error());
    if (!got || !expected) return;
    double error = ct_relative_error(got, expected);
    CHECK(error < tolerance, "%s: %s error %.3g", name, what, error);
    printf("%-40s %-10s %.2e\n", name, what, error);
}

/* Every element of the bf16 output is the f32 output rounded to nearest even. */
static void expect_rounded(const char *name, const ct_tensor *b, const ct_tensor *f) {
    if (!b || !f) return;
    CHECK(b->dtype == CT_BF16, "%s: output is %s, expected bf16", name, ct_dtype_name(b->dtype));
    int64_t n = ct_numel(f), differ = 0;
    for (int64_t i = 0; i < n; i++)
        differ += ((const uint16_t *)b->data)[i] != ct_f32_to_bf16(((const float *)f->data)[i]);
    CHECK(differ == 0, "%s: %lld of %lld outputs are not the f32 result rounded", name, (long long)differ,
          (long long)n);
}

/* Runs out_b = op(bf16 inputs), out_f = op(f32 inputs), backward of both with one R, and compares
 * outputs and the gradients of every input pair that requires grad. */
typedef ct_tensor *(*op_fn)(ct_tensor *const *in, void *user);

static void compare_op(const char *name, op_fn fn, pair *in, int n, void *user, bool exact) {
    ct_tensor *bf[8], *ff[8];
    for (int i = 0; i < n; i++) bf[i] = in[i].b, ff[i] = in[i].f;
    ct_tensor *out_b = fn(bf, user), *out_f = fn(ff, user);
    expect_close(name, "output", out_b, out_f, OUTPUT_TOLERANCE);
    if (!out_b || !out_f) return;
    if (exact) expect_rounded(name, out_b, out_f);
    ct_tensor *r = random_f32(out_f->ndim, out_f->shape);
    CHECK(backward_with(out_b, r) == 0 && backward_with(out_f, r) == 0, "%s: backward: %s", name, ct_last_error());
    for (int i = 0; i < n; i++) {
        if (!in[i].b->requires_grad) continue;
        CHECK(in[i].b->grad && in[i].b->grad->dtype == CT_F32, "%s: input %d's gradient is not f32", name, i);
        char what[32];
        snprintf(what, sizeof what, "grad %d", i);
        expect_close(name, what, in[i].b->grad, in[i].f->grad, GRAD_TOLERANCE);
    }
}

/* A pair whose bf16 half is replaced by its f32 half: the "mixed" variants. */
static pair as_f32(pair p) {
    p.b = p.f;
    return p;
}

typedef struct {
    bool ta, tb;
} matmul_flags;

static ct_tensor *op_matmul(ct_tensor *const *in, void *user) {
    const matmul_flags *f = user;
    return ct_matmul(in[0], in[1], f->ta, f->tb);
}
static ct_tensor *op_add(ct_tensor *const *in, void *user) { (void)user; return ct_add(in[0], in[1]); }
static ct_tensor *op_mul(ct_tensor *const *in, void *user) { (void)user; return ct_mul(in[0], in[1]); }
static ct_tensor *op_rms_norm(ct_tensor *const *in, void *user) { (void)user; return ct_rms_norm(in[0], in[1], 1e-5); }
static ct_tensor *op_silu(ct_tensor *const *in, void *user) { (void)user; return ct_silu(in[0]); }
static ct_tensor *op_swiglu(ct_tensor *const *in, void *user) { (void)user; return ct_swiglu(in[0], in[1]); }
static ct_tensor *op_rope(ct_tensor *const *in, void *user) { return ct_rope(in[0], user, 10000.0, NULL); }
static ct_tensor *op_embedding(ct_tensor *const *in, void *user) { return ct_embedding(in[0], user); }
static ct_tensor *op_cross_entropy(ct_tensor *const *in, void *user) {
    return ct_cross_entropy(in[0], user, CT_REDUCE_MEAN);
}
static ct_tensor *op_attention(ct_tensor *const *in, void *user) { return ct_attention(in[0], in[1], in[2], user); }
static ct_tensor *op_to_f32(ct_tensor *const *in, void *user) { (void)user; return ct_to_dtype(in[0], CT_F32); }

static ct_tensor *ids_tensor(int ndim, const int64_t *shape, int64_t below, bool ignore_some) {
    ct_tensor *t = ct_empty(CT_I32, ndim, shape);
    for (int64_t i = 0; i < ct_numel(t); i++)
        ct_set(t, i, ignore_some && i % 5 == 3 ? -100.0 : (double)ct_rng_below(&rng, (uint64_t)below));
    return t;
}

static void check_matmul(void) {
    char name[64];
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            matmul_flags f = {ta, tb};
            int64_t M = 13, K = 37, N = 11;
            pair a = random_pair(2, ta ? (int64_t[]){K, M} : (int64_t[]){M, K}, 1.0, true);
            pair b = random_pair(2, tb ? (int64_t[]){N, K} : (int64_t[]){K, N}, 1.0, true);
            snprintf(name, sizeof name, "matmul bf16 x bf16 ta=%d tb=%d", ta, tb);
            compare_op(name, op_matmul, (pair[]){a, b}, 2, &f, false);
        }
    /* mixed: a bf16 activation with an f32 weight, and an f32 activation with a bf16 weight */
    matmul_flags linear = {false, true};
    pair x = random_pair(3, (int64_t[]){2, 7, 19}, 1.0, true), w = random_pair(2, (int64_t[]){23, 19}, 0.3, true);
    compare_op("matmul bf16 x f32 (linear)", op_matmul, (pair[]){x, as_f32(w)}, 2, &linear, false);
    x = random_pair(3, (int64_t[]){2, 7, 19}, 1.0, true);
    w = random_pair(2, (int64_t[]){23, 19}, 0.3, true);
    compare_op("matmul f32 x bf16 (linear)", op_matmul, (pair[]){as_f32(x), w}, 2, &linear, false);
    /* several tiles in both directions (256 rows, 1024 columns per tile) */
    pair big_a = random_pair(2, (int64_t[]){300, 29}, 1.0, true);
    pair big_b = random_pair(2, (int64_t[]){1100, 29}, 1.0, true);
    compare_op("matmul bf16 [300,29] x [1100,29]^T", op_matmul, (pair[]){big_a, big_b}, 2, &linear, false);
    ct_tensor *out = ct_matmul(big_a.b, big_b.b, false, true);
    CHECK(out && out->dtype == CT_BF16, "matmul of bf16 a: output dtype %s", out ? ct_dtype_name(out->dtype) : "-");
}

/* A frozen i8 weight against the same weight widened by ct_copy: through the tiles (9 rows) and
 * through the few-rows kernel (1, 3 and 4 rows: generation and KV-cache scoring), per-row scales
 * and blocks of 8 over K = 21 (a partial last block); beta = 1 adds to C. */
static void check_i8_weight(void) {
    ct_tensor *wf = random_f32(2, (int64_t[]){1030, 21});
    for (int block = 0; block <= 8; block += 8) {
        ct_tensor *q = ct_quantize_i8(wf, block, false, NULL);
        ct_tensor *dequantized = ct_empty(CT_F32, 2, (int64_t[]){1030, 21});
        ct_copy(dequantized, q);
        const int64_t row_counts[] = {9, 1, 3, 4};
        for (size_t i = 0; i < sizeof row_counts / sizeof row_counts[0]; i++) {
            char what[80];
            snprintf(what, sizeof what, "matmul f32 x i8 (%s), %lld rows", block ? "blocks of 8" : "per row",
                     (long long)row_counts[i]);
            pair x = random_pair(2, (int64_t[]){row_counts[i], 21}, 1.0, true);
            ct_tensor *y = ct_matmul(x.f, q, false, true), *expected = ct_matmul(x.f, dequantized, false, true);
            expect_close(what, "output", y, expected, 1e-6);
            /* beta = 1: y + x·qᵀ against 2 * expected */
            CHECK(ct_backend_for(CT_CPU)->gemm(x.f, false, q, true, y, 1.0, 1.0) == 0, "%s, beta 1: %s", what,
                  ct_last_error());
            expect_close(what, "output + x·qᵀ", y, ct_scale(expected, 2.0), 1e-6);
            if (i) continue;
            ct_tensor *yb = ct_matmul(x.b, q, false, true);
            expect_close("matmul bf16 x i8", "output", yb, expected, OUTPUT_TOLERANCE);
            /* a device copy keeps the scales (CPU to CPU here; the GPU tests move i8 weights too) */
            ct_tensor *moved = ct_to_device(q, CT_CPU);
            CHECK(moved && moved->scale && moved->scale != q->scale && moved->scale_block == q->scale_block,
                  "ct_to_device of an i8 tensor (block %d) dropped or shared its scales", block);
            if (moved && moved->scale)
                expect_close("ct_to_device i8", "output", ct_matmul(x.f, moved, false, true),
                             ct_matmul(x.f, q, false, true), 1e-12);
        }
    }
}

static void check_elementwise(void) {
    int64_t shape[3] = {3, 5, 43};
    pair a = random_pair(3, shape, 1.0, true), b = random_pair(3, shape, 1.0, true);
    compare_op("add bf16 + bf16", op_add, (pair[]){a, b}, 2, NULL, true);
    a = random_pair(3, shape, 1.0, true);
    pair row = random_pair(1, (int64_t[]){43}, 1.0, true);
    compare_op("add bf16 + f32 row (bias)", op_add, (pair[]){a, as_f32(row)}, 2, NULL, true);
    a = random_pair(3, shape, 1.0, true);
    row = random_pair(1, (int64_t[]){43}, 1.0, true);
    compare_op("mul bf16 * bf16 row", op_mul, (pair[]){a, row}, 2, NULL, true);
    a = random_pair(3, shape, 1.0, true);
    b = random_pair(3, shape, 1.0, true);
    compare_op("mul bf16 * bf16", op_mul, (pair[]){a, b}, 2, NULL, true);
    /* long rows: several spans of CT_CPU_SPAN columns, and a tail */
    pair x = random_pair(2, (int64_t[]){3, 2500}, 2.0, true);
    compare_op("to_dtype bf16 -> f32", op_to_f32, (pair[]){x}, 1, NULL, false);
    ct_tensor *back = ct_to_dtype(ct_to_dtype(x.b, CT_F32), CT_BF16);
    CHECK(back && memcmp(back->data, x.b->data, ct_nbytes(x.b)) == 0, "bf16 -> f32 -> bf16 is not exact");
}

static void check_transformer_ops(void) {
    pair x = random_pair(3, (int64_t[]){3, 4, 1100}, 1.0, true), w = random_pair(1, (int64_t[]){1100}, 1.0, true);
    compare_op("rms_norm bf16 x, bf16 w (D=1100)", op_rms_norm, (pair[]){x, w}, 2, NULL, true);
    x = random_pair(2, (int64_t[]){37, 19}, 1.0, true);
    w = random_pair(1, (int64_t[]){19}, 1.0, true);
    compare_op("rms_norm bf16 x, f32 w (37 rows)", op_rms_norm, (pair[]){x, as_f32(w)}, 2, NULL, true);

    pair g = random_pair(2, (int64_t[]){7, 1031}, 2.0, true), u = random_pair(2, (int64_t[]){7, 1031}, 1.0, true);
    compare_op("silu bf16", op_silu, (pair[]){g}, 1, NULL, true);
    compare_op("swiglu bf16, bf16", op_swiglu, (pair[]){g, u}, 2, NULL, true);
    g = random_pair(2, (int64_t[]){7, 1031}, 2.0, true);
    u = random_pair(2, (int64_t[]){7, 1031}, 1.0, true);
    compare_op("swiglu bf16 gate, f32 up", op_swiglu, (pair[]){g, as_f32(u)}, 2, NULL, true);

    ct_tensor *pos = ct_empty(CT_I32, 2, (int64_t[]){2, 5});
    for (int64_t i = 0; i < 10; i++) ct_set(pos, i, (double)(i % 5 + 3 * (i / 5)));
    pair q = random_pair(4, (int64_t[]){2, 5, 3, 18}, 1.0, true);
    compare_op("rope bf16 [2,5,3,18]", op_rope, (pair[]){q}, 1, pos, true);
    q = random_pair(4, (int64_t[]){2, 5, 7, 200}, 1.0, true); /* heads converted 5 at a time */
    compare_op("rope bf16 [2,5,7,200]", op_rope, (pair[]){q}, 1, pos, true);
    q = random_pair(4, (int64_t[]){2, 5, 1, 2100}, 1.0, true); /* half a head longer than a span */
    compare_op("rope bf16 [2,5,1,2100]", op_rope, (pair[]){q}, 1, pos, true);

    pair table = random_pair(2, (int64_t[]){17, 12}, 1.0, true);
    ct_tensor *ids = ids_tensor(2, (int64_t[]){3, 5}, 17, false);
    compare_op("embedding bf16 table", op_embedding, (pair[]){table}, 1, ids, true);

    pair logits = random_pair(2, (int64_t[]){9, 1500}, 3.0, true);
    ct_tensor *targets = ids_tensor(1, (int64_t[]){9}, 1500, true);
    compare_op("cross_entropy bf16 logits (V=1500)", op_cross_entropy, (pair[]){logits}, 1, targets, false);
    ct_tensor *loss = ct_cross_entropy(logits.b, targets, CT_REDUCE_MEAN);
    CHECK(loss && loss->dtype == CT_F32, "cross_entropy of bf16 logits: loss dtype %s",
          loss ? ct_dtype_name(loss->dtype) : "-");

    ct_attention_args causal = {0};
    pair aq = random_pair(4, (int64_t[]){2, 70, 4, 16}, 1.0, true);
    pair ak = random_pair(4, (int64_t[]){2, 70, 2, 16}, 1.0, true);
    pair av = random_pair(4, (int64_t[]){2, 70, 2, 16}, 1.0, true);
    compare_op("attention bf16 GQA 4/2 T=70", op_attention, (pair[]){aq, ak, av}, 3, &causal, false);
}

/* bf16 kernels, like the f32 ones, give the same bits with one thread as with two. */
static void check_thread_independence(void) {
    pair x = random_pair(2, (int64_t[]){64, 1100}, 1.0, true), w = random_pair(1, (int64_t[]){1100}, 1.0, true);
    pair logits = random_pair(2, (int64_t[]){40, 3000}, 3.0, true);
    ct_tensor *targets = ids_tensor(1, (int64_t[]){40}, 3000, true);
    ct_tensor *outputs[2][3], *grads[2][3];
    int saved = omp_get_max_threads();
    for (int run = 0; run < 2; run++) {
        omp_set_num_threads(run ? 2 : 1);
        x.b->grad = w.b->grad = logits.b->grad = NULL;
        ct_tensor *y = ct_rms_norm(x.b, w.b, 1e-5), *s = ct_swiglu(x.b, y);
        ct_tensor *l = ct_cross_entropy(logits.b, targets, CT_REDUCE_SUM);
        ct_tensor *r = ct_empty(CT_F32, 2, (int64_t[]){64, 1100});
        ct_fill(r, 0.5);
        backward_with(s, r);
        ct_backward(l);
        outputs[run][0] = y, outputs[run][1] = s, outputs[run][2] = l;
        grads[run][0] = x.b->grad, grads[run][1] = w.b->grad, grads[run][2] = logits.b->grad;
    }
    omp_set_num_threads(saved);
    for (int i = 0; i < 3; i++) {
        CHECK(outputs[0][i] && outputs[1][i] && memcmp(outputs[0][i]->data, outputs[1][i]->data,
                                                       ct_nbytes(outputs[0][i])) == 0,
              "output %d differs between 1 and 2 threads", i);
        CHECK(grads[0][i] && grads[1][i] && memcmp(grads[0][i]->data, grads[1][i]->data, ct_nbytes(grads[0][i])) == 0,
              "gradient %d differs between 1 and 2 threads", i);
    }
}

static void expect_error(ct_tensor *result, const char *needle, const char *what) {
    CHECK(result == NULL, "%s: expected an error", what);
    CHECK(strstr(ct_last_error(), needle) != NULL, "%s: message '%s' lacks '%s'", what, ct_last_error(), needle);
}

static void check_bad_input(void) {
    pair a = random_pair(2, (int64_t[]){3, 7}, 1.0, false);
    ct_tensor *f64 = ct_random_input(&rng, 2, (int64_t[]){3, 7});
    expect_error(ct_add(a.b, f64), "add: a [3, 7] bf16 and b [3, 7] f64: operands must share a real dtype",
                 "bf16 with f64");
    expect_error(ct_kl_div(a.b, a.b, NULL, 1.0), "kl_div: a [3, 7] bf16 and b [3, 7] bf16", "kl_div bf16");
    pair q = random_pair(4, (int64_t[]){1, 3, 2, 4}, 1.0, false);
    expect_error(ct_attention(q.b, q.f, q.f, NULL), "q, k and v must share one dtype", "attention mixed dtypes");
    expect_error(ct_to_dtype(a.b, CT_I32), "to_dtype: x [3, 7] bf16 to i32", "to_dtype i32");
    ct_tensor *q8 = ct_quantize_i8(a.f, 0, false, NULL);
    q8->requires_grad = true;
    expect_error(ct_matmul(a.b, q8, false, true), "an i8 weight must be frozen", "trainable i8 weight");
    ct_tensor *x = ct_empty(CT_BF16, 2, (int64_t[]){2, 3});
    ct_fill(x, 1.0);
    ct_tensor *ids = ct_empty(CT_I32, 1, (int64_t[]){2});
    ct_set(ids, 0, 0), ct_set(ids, 1, 5);
    expect_error(ct_cross_entropy(x, ids, CT_REDUCE_MEAN), "target 5 at row 1", "bf16 target out of range");
}

int main(void) {
    ct_rng_seed(&rng, 16);
    printf("bf16 conversions use the %s path on this CPU\n", ct_bf16_path_name(ct_bf16_best_path()));
    check_scalar_rounding();
    check_conversion_paths();
    ct_scope_begin();
    check_matmul();
    check_i8_weight();
    check_elementwise();
    check_transformer_ops();
    check_thread_independence();
    check_bad_input();
    ct_scope_end();
    return ct_test_finish("test_bf16");
}
