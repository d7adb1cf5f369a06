/* Gradient checks of the transformer ops (RMSNorm, SiLU, SwiGLU, RoPE, dropout, distillation KL)
 * on random inputs of odd sizes, their values against naive double-precision formulas written
 * here independently, and the errors a bad shape must produce. */
#include <omp.h>
#include <string.h>

#include "core/arena.h"
#include "core/error.h"
#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "autograd/ops_transformer.h"
#include "core/rng.h"
#include "autograd/tape.h"
#include "tests/ct_test.h"
#include "tests/ct_test_gradcheck.h"
#include "tests/ct_test_op_fns.h"

#define VALUE_TOLERANCE 1e-12

static ct_rng rng;


static ct_tensor *rand_in(int ndim, const int64_t *shape) { return ct_random_input(&rng, ndim, shape); }

/* i32 positions [B, T]: each batch row starts at its own offset (a packed sequence or a KV
 * cache continuing mid-sequence). */
static ct_tensor *positions(int64_t batch, int64_t time) {
    ct_tensor *p = ct_empty(CT_I32, 2, (int64_t[]){batch, time});
    for (int64_t b = 0; b < batch; b++) {
        int64_t start = (int64_t)ct_rng_below(&rng, 50);
        for (int64_t t = 0; t < time; t++) ct_set(p, b * time + t, (double)(start + t));
    }
    return p;
}

/* A 0/1 row mask with at least one row on and one off; never differentiated. */
static ct_tensor *row_mask(int64_t rows) {
    ct_tensor *m = ct_empty(CT_F64, 1, &rows);
    for (int64_t r = 0; r < rows; r++) ct_set(m, r, r % 3 == 1 ? 0.0 : 1.0);
    return m;
}

static void check_gradients(void) {
    op_args args = {.eps = 1e-5, .theta = 10000.0, .p = 0.3, .temperature = 2.0, .seed = 7,
                    .stream = ct_dropout_stream(3, 5)};
    ct_tensor *x = rand_in(3, (int64_t[]){3, 5, 7}), *w = rand_in(1, (int64_t[]){7});
    expect_gradcheck("rms_norm [3,5,7]", fn_rms_norm, (ct_tensor *[]){x, w}, 2, &args);
    args.eps = 0.5; /* a large eps exercises its term in the gradient */
    expect_gradcheck("rms_norm eps=0.5 [5,7]", fn_rms_norm, (ct_tensor *[]){rand_in(2, (int64_t[]){5, 7}), w}, 2,
                     &args);
    args.eps = 1e-6;
    /* more rows than one weight-gradient block (32) so partials of several blocks are added */
    expect_gradcheck("rms_norm [67,3]", fn_rms_norm,
                     (ct_tensor *[]){rand_in(2, (int64_t[]){67, 3}), rand_in(1, (int64_t[]){3})}, 2, &args);

    ct_tensor *g = rand_in(2, (int64_t[]){5, 7}), *u = rand_in(2, (int64_t[]){5, 7});
    expect_gradcheck("silu [5,7]", fn_silu, (ct_tensor *[]){g}, 1, NULL);
    expect_gradcheck("swiglu [5,7]", fn_swiglu, (ct_tensor *[]){g, u}, 2, NULL);

    ct_tensor *q = rand_in(4, (int64_t[]){2, 3, 3, 6}), *pos = positions(2, 3);
    expect_gradcheck("rope [2,3,3,6] theta=1e4", fn_rope, (ct_tensor *[]){q, pos}, 2, &args);
    float scaled[5] = {1.0f, 0.37f, 0.11f, 0.025f, 0.004f}; /* a stand-in for a scaled table */
    args.inv_freq = scaled;
    expect_gradcheck("rope [3,1,2,10] inv_freq", fn_rope,
                     (ct_tensor *[]){rand_in(4, (int64_t[]){3, 1, 2, 10}), positions(3, 1)}, 2, &args);
    args.inv_freq = NULL;

    expect_gradcheck("dropout p=0.3 [5,7]", fn_dropout, (ct_tensor *[]){g}, 1, &args);
    args.p = 0.0;
    expect_gradcheck("dropout p=0 [5,7]", fn_dropout, (ct_tensor *[]){g}, 1, &args);
    args.p = 0.3;

    ct_tensor *s = rand_in(2, (int64_t[]){5, 11}), *t = rand_in(2, (int64_t[]){5, 11});
    expect_gradcheck("kl_div T=2 both grads", fn_kl, (ct_tensor *[]){s, t}, 2, &args);
    ct_tensor *mask = row_mask(5);
    mask->requires_grad = false;
    args.temperature = 0.7;
    expect_gradcheck("kl_div T=0.7 masked", fn_kl, (ct_tensor *[]){s, t, mask}, 3, &args);
    t->requires_grad = false; /* the usual frozen teacher */
    args.temperature = 1.0;
    expect_gradcheck("kl_div T=1 frozen teacher", fn_kl, (ct_tensor *[]){s, t, mask}, 3, &args);
    t->requires_grad = true;

    ct_tensor *h = rand_in(4, (int64_t[]){2, 3, 1, 4});
    expect_gradcheck("rms_norm->rope->dropout", fn_chain,
                     (ct_tensor *[]){h, rand_in(1, (int64_t[]){4}), positions(2, 3)}, 3, &args);
}

static double max_abs_diff(const ct_tensor *a, const double *expected, int64_t n) {
    double worst = 0;
    for (int64_t i = 0; i < n; i++) worst = fmax(worst, fabs(ct_get(a, i) - expected[i]));
    return worst;
}

static void check_values(void) {
    enum { R = 4, D = 9 };
    ct_tensor *x = rand_in(2, (int64_t[]){R, D}), *w = rand_in(1, (int64_t[]){D});
    double expected[R * D];
    for (int r = 0; r < R; r++) {
        double ms = 0;
        for (int c = 0; c < D; c++) ms += ct_get(x, r * D + c) * ct_get(x, r * D + c) / D;
        for (int c = 0; c < D; c++) expected[r * D + c] = ct_get(x, r * D + c) / sqrt(ms + 1e-6) * ct_get(w, c);
    }
    ct_tensor *y = ct_rms_norm(x, w, 1e-6);
    CHECK(y && max_abs_diff(y, expected, R * D) < VALUE_TOLERANCE, "rms_norm values");

    ct_tensor *u = rand_in(2, (int64_t[]){R, D});
    for (int i = 0; i < R * D; i++) {
        double gv = ct_get(x, i);
        expected[i] = gv / (1 + exp(-gv)) * ct_get(u, i);
    }
    y = ct_swiglu(x, u);
    CHECK(y && max_abs_diff(y, expected, R * D) < VALUE_TOLERANCE, "swiglu values");

    /* RoPE: the rotate-half formula with inv_freq = theta^(-2i/D) at explicit positions */
    enum { B = 2, T = 3, H = 2, HD = 8 };
    ct_tensor *q = rand_in(4, (int64_t[]){B, T, H, HD}), *pos = positions(B, T);
    double rot[B * T * H * HD];
    for (int bt = 0; bt < B * T; bt++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < HD / 2; i++) {
                double angle = ct_get(pos, bt) / pow(500000.0, 2.0 * i / HD);
                int base = (bt * H + h) * HD;
                double x1 = ct_get(q, base + i), x2 = ct_get(q, base + i + HD / 2);
                rot[base + i] = x1 * cos(angle) - x2 * sin(angle);
                rot[base + i + HD / 2] = x2 * cos(angle) + x1 * sin(angle);
            }
    y = ct_rope(q, pos, 500000.0, NULL);
    CHECK(y && max_abs_diff(y, rot, B * T * H * HD) < VALUE_TOLERANCE, "rope values");

    /* KL: full softmaxes in double, masked mean times tau^2 */
    enum { N = 6, V = 13 };
    ct_tensor *s = rand_in(2, (int64_t[]){N, V}), *t = rand_in(2, (int64_t[]){N, V}), *mask = row_mask(N);
    double tau = 1.7, total = 0;
    int count = 0;
    for (int r = 0; r < N; r++) {
        if (ct_get(mask, r) == 0) continue;
        double ps[V], pt[V], zs = 0, zt = 0, kl = 0;
        for (int c = 0; c < V; c++) zs += (ps[c] = exp(ct_get(s, r * V + c) / tau));
        for (int c = 0; c < V; c++) zt += (pt[c] = exp(ct_get(t, r * V + c) / tau));
        for (int c = 0; c < V; c++) kl += pt[c] / zt * log((pt[c] / zt) / (ps[c] / zs));
        total += kl;
        count++;
    }
    double kl_expected = tau * tau * total / count;
    y = ct_kl_div(s, t, mask, tau);
    CHECK(y && fabs(ct_get(y, 0) - kl_expected) < VALUE_TOLERANCE, "kl_div %.17g, expected %.17g",
          y ? ct_get(y, 0) : NAN, kl_expected);
    ct_tensor *s32 = ct_empty(CT_F32, 2, (int64_t[]){N, V}), *t32 = ct_empty(CT_F32, 2, (int64_t[]){N, V});
    ct_tensor *m32 = ct_empty(CT_F32, 1, (int64_t[]){N});
    ct_copy(s32, s);
    ct_copy(t32, t);
    ct_copy(m32, mask);
    y = ct_kl_div(s32, t32, m32, tau);
    CHECK(y && fabs(ct_get(y, 0) - kl_expected) < 1e-5 * fabs(kl_expected), "kl_div f32 %.9g, expected %.9g",
          y ? ct_get(y, 0) : NAN, kl_expected);
    /* large logits and a low temperature: f32 must stay finite and accurate (max subtraction) */
    ct_tensor *big_s = ct_empty(CT_F32, 2, (int64_t[]){N, V}), *big_t = ct_empty(CT_F32, 2, (int64_t[]){N, V});
    double big_total = 0;
    for (int r = 0; r < N; r++) {
        double zs = 0, zt = 0, kl = 0, ls[V], lt[V];
        for (int c = 0; c < V; c++) {
            ct_set(big_s, r * V + c, 40.0 * ct_get(s, r * V + c));
            ct_set(big_t, r * V + c, 40.0 * ct_get(t, r * V + c));
            ls[c] = ct_get(big_s, r * V + c) / 0.5;
            lt[c] = ct_get(big_t, r * V + c) / 0.5;
        }
        double ms = ls[0], mt = lt[0];
        for (int c = 1; c < V; c++) ms = fmax(ms, ls[c]), mt = fmax(mt, lt[c]);
        for (int c = 0; c < V; c++) zs += exp(ls[c] - ms), zt += exp(lt[c] - mt);
        for (int c = 0; c < V; c++) {
            double lpt = lt[c] - mt - log(zt), lps = ls[c] - ms - log(zs);
            kl += exp(lpt) * (lpt - lps);
        }
        big_total += kl;
    }
    double big_expected = 0.25 * big_total / N;
    y = ct_kl_div(big_s, big_t, NULL, 0.5);
    CHECK(y && fabs(ct_get(y, 0) - big_expected) < 1e-5 * big_expected, "kl_div f32 large logits %.9g, expected %.9g",
          y ? ct_get(y, 0) : NAN, big_expected);
    y = ct_kl_div(s, s, NULL, tau);
    CHECK(y && fabs(ct_get(y, 0)) < 1e-15, "kl_div of identical logits %.3g", y ? ct_get(y, 0) : NAN);
    y = ct_kl_div(s, t, ct_zeros(CT_F64, 1, (int64_t[]){N}), tau);
    CHECK(y && ct_get(y, 0) == 0, "kl_div with every row masked is 0");
}

/* Seed 42, the stream of step 1000, op 3. p = 0.1 is not a multiple of 2^-24: the kernel's integer
 * threshold must round up exactly where the float draw crosses p. */
static void check_dropout_mask_at(double p) {
    int64_t n = 100003;
    ct_tensor *x = ct_empty(CT_F32, 1, &n);
    ct_fill(x, 1.0);
    uint64_t seed = 42, stream = ct_dropout_stream(1000, 3);
    ct_tensor *y = ct_dropout(x, p, seed, stream), *again = ct_dropout(x, p, seed, stream);
    ct_tensor *other = ct_dropout(x, p, seed, ct_dropout_stream(1001, 3));
    int64_t kept = 0, mismatched = 0, same_as_other = 0, differ = 0;
    for (int64_t i = 0; i < n; i++) {
        double v = ct_get(y, i);
        bool keep = ct_counter_uniform(seed, stream, (uint64_t)i) >= p;
        kept += keep;
        mismatched += v != (keep ? (double)(float)(1.0 / (1.0 - p)) : 0.0);
        differ += v != ct_get(again, i);
        same_as_other += v == ct_get(other, i);
    }
    CHECK(mismatched == 0, "dropout: %lld elements disagree with ct_counter_uniform", (long long)mismatched);
    CHECK(differ == 0, "dropout: a second draw changed %lld elements", (long long)differ);
    CHECK(fabs((double)kept / (double)n - (1 - p)) < 0.01, "dropout kept %.4f, expected %.2f", (double)kept / n, 1 - p);
    /* independent masks agree on about p^2 + (1-p)^2 of elements (62.5% at p = 0.25), not all */
    CHECK(fabs((double)same_as_other / (double)n - (p * p + (1 - p) * (1 - p))) < 0.01,
          "dropout: another step's mask agrees on %.4f", (double)same_as_other / n);
    CHECK(ct_dropout(x, 0.0, seed, stream) == x, "dropout p=0 returns its input");
}

static void check_dropout_mask(void) {
    check_dropout_mask_at(0.25);
    check_dropout_mask_at(0.1);
    check_dropout_mask_at(0.05);
    /* p half a step of 2^-24 above element 12345's draw: that element must be dropped, the
     * boundary a threshold rounded the wrong way keeps */
    check_dropout_mask_at(ct_counter_uniform(42, ct_dropout_stream(1000, 3), 12345) + 0x1p-25);
}

/* f32 on sizes that take the parallel, multi-span, multi-block and multi-chunk paths: values
 * against double formulas, and bit-identical results with 1 and 2 threads. */
static ct_tensor *random_f32(int ndim, const int64_t *shape) {
    ct_tensor *t = ct_empty(CT_F32, ndim, shape);
    ct_fill_normal(t, &rng, 0.0, 2.0);
    return t;
}

static bool bitwise_equal(const ct_tensor *a, const ct_tensor *b) {
    return a && b && memcmp(a->data, b->data, ct_nbytes(a)) == 0;
}

/* Runs build() with 1 and then 2 threads; returns the 2-thread result, NULL if they differ. */
static ct_tensor *same_with_1_and_2_threads(ct_tensor *(*build)(ct_tensor *const *), ct_tensor *const *in) {
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    ct_tensor *one = build(in);
    omp_set_num_threads(2);
    ct_tensor *two = build(in);
    omp_set_num_threads(threads);
    return bitwise_equal(one, two) ? two : NULL;
}

static ct_tensor *build_rms(ct_tensor *const *in) { return ct_rms_norm(in[0], in[1], 1e-5); }
static ct_tensor *build_swiglu(ct_tensor *const *in) { return ct_swiglu(in[0], in[1]); }
static ct_tensor *build_kl(ct_tensor *const *in) { return ct_kl_div(in[0], in[1], NULL, 1.3); }
static ct_tensor *build_rope(ct_tensor *const *in) { return ct_rope(in[0], in[1], 10000.0, NULL); }

/* gradient of sum(op(x) * weights) w.r.t. in[0], for a thread-count comparison of backward */
static ct_tensor *(*grad_op)(ct_tensor *const *);
static ct_tensor *build_grad(ct_tensor *const *in) {
    in[0]->grad = NULL;
    ct_tensor *y = grad_op(in);
    if (!y || ct_backward(y->ndim ? ct_sum(y) : y) < 0) return NULL;
    ct_tensor *g = in[0]->grad;
    in[0]->grad = NULL;
    return g;
}

static void check_large_f32(void) {
    enum { R = 300, D = 97 };
    ct_tensor *x = random_f32(2, (int64_t[]){R, D}), *w = random_f32(1, (int64_t[]){D});
    x->requires_grad = true;
    ct_tensor *y = same_with_1_and_2_threads(build_rms, (ct_tensor *[]){x, w});
    double worst = 0;
    for (int r = 0; r < R && y; r++) {
        double ms = 0;
        for (int c = 0; c < D; c++) ms += ct_get(x, r * D + c) * ct_get(x, r * D + c) / D;
        for (int c = 0; c < D; c++) {
            double e = ct_get(x, r * D + c) / sqrt(ms + 1e-5) * ct_get(w, c);
            worst = fmax(worst, fabs(ct_get(y, r * D + c) - e) / (fabs(e) + 1e-3));
        }
    }
    CHECK(y && worst < 1e-5, "rms_norm f32 [300, 97]: %s, worst relative error %.3g",
          y ? "thread-count independent" : "differs between 1 and 2 threads", worst);
    grad_op = build_rms;
    CHECK(same_with_1_and_2_threads(build_grad, (ct_tensor *[]){x, w}),
          "rms_norm backward differs between 1 and 2 threads");

    int64_t n = 40009; /* several spans, above the parallel threshold */
    ct_tensor *g = random_f32(1, &n), *u = random_f32(1, &n);
    g->requires_grad = true;
    y = same_with_1_and_2_threads(build_swiglu, (ct_tensor *[]){g, u});
    worst = 0;
    for (int64_t i = 0; i < n && y; i++) {
        double gv = ct_get(g, i), e = gv / (1 + exp(-gv)) * ct_get(u, i);
        worst = fmax(worst, fabs(ct_get(y, i) - e) / (fabs(e) + 1e-3));
    }
    CHECK(y && worst < 1e-5, "swiglu f32 [40009]: worst relative error %.3g", worst);
    grad_op = build_swiglu;
    CHECK(same_with_1_and_2_threads(build_grad, (ct_tensor *[]){g, u}),
          "swiglu backward differs between 1 and 2 threads");

    enum { N = 40, V = 1031 }; /* more than one column chunk per row */
    ct_tensor *s = random_f32(2, (int64_t[]){N, V}), *t = random_f32(2, (int64_t[]){N, V});
    s->requires_grad = true;
    y = same_with_1_and_2_threads(build_kl, (ct_tensor *[]){s, t});
    double total = 0;
    for (int r = 0; r < N; r++) {
        double ms = -1e300, mt = -1e300, zs = 0, zt = 0, kl = 0;
        for (int c = 0; c < V; c++) {
            ms = fmax(ms, ct_get(s, r * V + c) / 1.3);
            mt = fmax(mt, ct_get(t, r * V + c) / 1.3);
        }
        for (int c = 0; c < V; c++) {
            zs += exp(ct_get(s, r * V + c) / 1.3 - ms);
            zt += exp(ct_get(t, r * V + c) / 1.3 - mt);
        }
        for (int c = 0; c < V; c++) {
            double lpt = ct_get(t, r * V + c) / 1.3 - mt - log(zt), lps = ct_get(s, r * V + c) / 1.3 - ms - log(zs);
            kl += exp(lpt) * (lpt - lps);
        }
        total += kl;
    }
    double expected = 1.3 * 1.3 * total / N;
    CHECK(y && fabs(ct_get(y, 0) - expected) < 1e-5 * expected, "kl_div f32 [40, 1031]: %.9g, expected %.9g",
          y ? ct_get(y, 0) : NAN, expected);
    grad_op = build_kl;
    CHECK(same_with_1_and_2_threads(build_grad, (ct_tensor *[]){s, t}),
          "kl_div backward differs between 1 and 2 threads");

    ct_tensor *q = random_f32(4, (int64_t[]){3, 17, 5, 64}), *pos = positions(3, 17);
    q->requires_grad = true;
    CHECK(same_with_1_and_2_threads(build_rope, (ct_tensor *[]){q, pos}), "rope differs between 1 and 2 threads");
    grad_op = build_rope;
    CHECK(same_with_1_and_2_threads(build_grad, (ct_tensor *[]){q, pos}),
          "rope backward differs between 1 and 2 threads");
}

/* Rows longer than the kernels' spans (1024 values): RMSNorm over 2500 columns, RoPE with a head
 * of 2200 values (a half longer than a span) and with heads converted in groups, f32 against
 * double formulas. */
static void check_long_rows_f32(void) {
    enum { R = 5, D = 2500 };
    ct_tensor *x = random_f32(2, (int64_t[]){R, D}), *w = random_f32(1, (int64_t[]){D});
    ct_tensor *y = ct_rms_norm(x, w, 1e-6);
    double worst = 0;
    for (int r = 0; r < R && y; r++) {
        double ms = 0;
        for (int c = 0; c < D; c++) ms += ct_get(x, r * D + c) * ct_get(x, r * D + c) / D;
        for (int c = 0; c < D; c++) {
            double e = ct_get(x, r * D + c) / sqrt(ms + 1e-6) * ct_get(w, c);
            worst = fmax(worst, fabs(ct_get(y, r * D + c) - e) / (fabs(e) + 1e-3));
        }
    }
    CHECK(y && worst < 1e-5, "rms_norm f32 [5, 2500]: worst relative error %.3g", worst);

    /* a head longer than a span; then 7 heads of 200, converted 5 heads at a time (5 + 2) */
    const int64_t shapes[2][4] = {{1, 3, 2, 2200}, {2, 3, 7, 200}};
    for (int k = 0; k < 2; k++) {
        const int64_t *sh = shapes[k];
        ct_tensor *q = random_f32(4, sh), *pos = positions(sh[0], sh[1]);
        y = ct_rope(q, pos, 10000.0, NULL);
        int64_t H = sh[2], HD = sh[3];
        worst = 0;
        for (int64_t bt = 0; bt < sh[0] * sh[1] && y; bt++)
            for (int64_t h = 0; h < H; h++)
                for (int64_t i = 0; i < HD / 2; i++) {
                    double angle = ct_get(pos, bt) / pow(10000.0, 2.0 * (double)i / (double)HD);
                    int64_t base = (bt * H + h) * HD;
                    double x1 = ct_get(q, base + i), x2 = ct_get(q, base + i + HD / 2);
                    double e1 = x1 * cos(angle) - x2 * sin(angle), e2 = x2 * cos(angle) + x1 * sin(angle);
                    worst = fmax(worst, fabs(ct_get(y, base + i) - e1) / (fabs(e1) + 1e-3));
                    worst = fmax(worst, fabs(ct_get(y, base + i + HD / 2) - e2) / (fabs(e2) + 1e-3));
                }
        CHECK(y && worst < 1e-4, "rope f32 [%lld, %lld, %lld, %lld]: worst relative error %.3g", (long long)sh[0],
              (long long)sh[1], (long long)H, (long long)HD, worst);
    }
}

static void expect_error(ct_tensor *result, const char *needle, const char *what) {
    CHECK(result == NULL, "%s: expected an error", what);
    CHECK(strstr(ct_last_error(), needle) != NULL, "%s: message '%s' lacks '%s'", what, ct_last_error(), needle);
}

static void check_bad_input(void) {
    ct_tensor *a = rand_in(2, (int64_t[]){3, 7});
    expect_error(ct_rms_norm(a, rand_in(1, (int64_t[]){5}), 1e-5), "rms_norm: a [3, 7] f64 and b [5] f64",
                 "rms_norm weight length");
    expect_error(ct_swiglu(a, rand_in(2, (int64_t[]){7, 3})), "swiglu: a [3, 7] f64 and b [7, 3] f64",
                 "swiglu shapes");
    ct_tensor *q = rand_in(4, (int64_t[]){2, 3, 4, 6});
    expect_error(ct_rope(q, positions(3, 2), 1e4, NULL), "rope: a [2, 3, 4, 6] f64 and b [3, 2] i32",
                 "rope positions shape");
    expect_error(ct_rope(rand_in(4, (int64_t[]){2, 3, 4, 5}), positions(2, 3), 1e4, NULL),
                 "rope: a [2, 3, 4, 5] f64 and b [2, 3] i32: head_dim must be even", "rope odd head_dim");
    expect_error(ct_rope(a, positions(3, 7), 1e4, NULL), "rope: a [3, 7] f64 and b [3, 7] i32", "rope 2-D x");
    expect_error(ct_kl_div(a, rand_in(2, (int64_t[]){3, 8}), NULL, 1.0), "kl_div: a [3, 7] f64 and b [3, 8] f64",
                 "kl_div vocab mismatch");
    expect_error(ct_kl_div(a, a, row_mask(4), 1.0), "kl_div: a [3, 7] f64 and b [4] f64", "kl_div mask length");
    expect_error(ct_kl_div(a, a, NULL, 0.0), "kl_div: temperature = 0", "kl_div temperature");
    expect_error(ct_dropout(a, 1.0, 1, 1), "dropout: x [3, 7] f64: p = 1", "dropout p");
    ct_tensor *a32 = ct_zeros(CT_F32, 2, (int64_t[]){3, 7});
    expect_error(ct_swiglu(a, a32), "swiglu: a [3, 7] f64 and b [3, 7] f32", "swiglu dtype");
    ct_fail("first failure");
    CHECK(ct_rms_norm(NULL, a, 1e-5) == NULL && ct_kl_div(a, NULL, NULL, 1.0) == NULL &&
              ct_rope(NULL, NULL, 1e4, NULL) == NULL && ct_dropout(NULL, 0.1, 1, 1) == NULL &&
              strcmp(ct_last_error(), "first failure") == 0,
          "NULL propagation");
}

int main(void) {
    ct_rng_seed(&rng, 2025);
    ct_scope_begin();
    check_gradients();
    check_values();
    check_dropout_mask();
    check_large_f32();
    check_long_rows_f32();
    check_bad_input();
    ct_scope_end();
    return ct_test_finish("test_transformer_ops");
}
