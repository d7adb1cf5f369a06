/* LoRA adapters (models/lora.h): the adapter's term against a direct computation, gradients of x,
 * A and B by f64 finite differences (with and without dropout), PEFT's initializations, the
 * scale of plain and rsLoRA, merging into a base weight, and the option errors. The comparison
 * with peft itself (logits, loss, every lora_A / lora_B gradient) is in the model tests that read
 * tests/fixtures/lora/. Odd sizes, random inputs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "autograd/ops_transformer.h"
#include "autograd/tape.h"
#include "core/arena.h"
#include "core/error.h"
#include "core/rng.h"
#include "models/lora.h"
#include "tests/ct_test.h"
#include "tests/ct_test_gradcheck.h"

static ct_rng rng;

/* inputs: x [..., in], A [r, in], B [out, r]; user: the ct_lora (scale, dropout) and dropout. */
typedef struct {
    double scale, p;
    ct_lora_dropout drop;
} delta_args;

static ct_tensor *fn_delta(ct_tensor *const *in, int n, void *user) {
    (void)n;
    const delta_args *a = user;
    ct_lora l = {.A = in[1], .B = in[2], .scale = a->scale, .dropout = a->p, .dropout_site = 77};
    return ct_lora_delta(&l, in[0], &a->drop);
}

/* s · dropout(x)·Aᵀ·Bᵀ written out element by element in f64, with the same dropout mask. */
static double direct_error(const ct_tensor *x, const ct_tensor *A, const ct_tensor *B, double s, double p,
                           const ct_lora_dropout *drop, uint32_t site, const ct_tensor *got) {
    const int64_t in = A->shape[1], r = A->shape[0], out = B->shape[0], rows = ct_numel(x) / in;
    const double keep = drop ? 1.0 / (1.0 - p) : 1.0;
    double diff = 0, norm = 0;
    for (int64_t row = 0; row < rows; row++)
        for (int64_t o = 0; o < out; o++) {
            double y = 0;
            for (int64_t k = 0; k < r; k++) {
                double t = 0;
                for (int64_t i = 0; i < in; i++) {
                    double xv = ct_get(x, row * in + i);
                    if (drop && p > 0) {
                        const uint64_t stream = ct_dropout_stream(drop->step, site);
                        const bool kept = ct_counter_uniform(drop->seed, stream, (uint64_t)(row * in + i)) >= p;
                        xv = kept ? xv * keep : 0;
                    }
                    t += xv * ct_get(A, k * in + i);
                }
                y += t * ct_get(B, o * r + k);
            }
            y *= s;
            const double d = ct_get(got, row * out + o) - y;
            diff += d * d;
            norm += y * y;
        }
    return sqrt(diff / norm);
}

static void check_delta(void) {
    ct_scope_begin();
    ct_tensor *x = ct_random_input(&rng, 3, (int64_t[]){2, 3, 13});
    ct_tensor *A = ct_random_input(&rng, 2, (int64_t[]){4, 13});
    ct_tensor *B = ct_random_input(&rng, 2, (int64_t[]){11, 4});
    const double s = 16.0 / 4.0;
    ct_lora l = {.A = A, .B = B, .scale = s, .dropout = 0, .dropout_site = 77};
    ct_tensor *y = ct_lora_delta(&l, x, NULL);
    CHECK(y && y->ndim == 3 && y->shape[2] == 11, "delta shape");
    double err = y ? direct_error(x, A, B, s, 0, NULL, 77, y) : 1;
    CHECK(err < 1e-14, "delta vs the direct sum: %.3g", err);
    ct_lora_dropout drop = {.seed = 99, .step = 5};
    l.dropout = 0.3;
    ct_tensor *y_eval = ct_lora_delta(&l, x, NULL);
    CHECK(y_eval && ct_relative_error(y_eval, y) == 0, "outside training (no ct_lora_dropout) there is no dropout");
    ct_tensor *yd = ct_lora_delta(&l, x, &drop);
    double err_d = yd ? direct_error(x, A, B, s, 0.3, &drop, 77, yd) : 1;
    CHECK(err_d < 1e-14, "delta with dropout vs the direct sum with the same mask: %.3g", err_d);
    ct_tensor *yd2 = ct_lora_delta(&l, x, &(ct_lora_dropout){.seed = 99, .step = 6});
    CHECK(yd2 && ct_relative_error(yd2, yd) > 1e-3, "another step draws another dropout mask");
    printf("delta    s·dropout(x)·Aᵀ·Bᵀ = the direct f64 sum: %.1e, with dropout %.1e\n", err, err_d);

    delta_args plain = {.scale = s};
    expect_gradcheck("lora delta (x, A, B)", fn_delta, (ct_tensor *[]){x, A, B}, 3, &plain);
    delta_args dropped = {.scale = 0.7, .p = 0.3, .drop = drop};
    expect_gradcheck("lora delta with dropout 0.3", fn_delta, (ct_tensor *[]){x, A, B}, 3, &dropped);
    /* A frozen input (the base's activations need no gradient in a first layer): A and B alone. */
    x->requires_grad = false;
    expect_gradcheck("lora delta, x frozen", fn_delta, (ct_tensor *[]){x, A, B}, 3, &plain);
    ct_scope_end();
}

static void moments(const ct_tensor *t, double *mean, double *std, double *max_abs) {
    const int64_t n = ct_numel(t);
    double s = 0, s2 = 0, m = 0;
    for (int64_t i = 0; i < n; i++) {
        const double v = ct_get(t, i);
        s += v, s2 += v * v, m = fmax(m, fabs(v));
    }
    *mean = s / (double)n;
    *std = sqrt(s2 / (double)n - *mean * *mean);
    *max_abs = m;
}

static bool all_zero(const ct_tensor *t) {
    for (int64_t i = 0; i < ct_numel(t); i++)
        if (ct_get(t, i) != 0) return false;
    return true;
}

static void check_init(void) {
    /* kaiming_uniform(a = √5) on [r, in]: U(-1/√in, 1/√in), whose std is 1/√(3 in). */
    const int64_t in = 301, out = 97, r = 16;
    ct_lora_options o = {.r = r, .alpha = 32, .dropout = 0.05};
    ct_lora *k = ct_lora_new("model.layers.0.self_attn.q_proj", in, out, &o, 1234, 5);
    CHECK(k != NULL, "new: %s", ct_last_error());
    if (!k) return;
    double mean, std, max_abs;
    moments(k->A, &mean, &std, &max_abs);
    const double bound = 1 / sqrt((double)in), want_std = bound / sqrt(3.0);
    CHECK(max_abs <= bound && max_abs > 0.99 * bound, "kaiming A: max |a| %.5f, bound %.5f", max_abs, bound);
    CHECK(fabs(std - want_std) < 0.03 * want_std && fabs(mean) < 0.02 * bound, "kaiming A: mean %.2e std %.5f (want %.5f)",
          mean, std, want_std);
    CHECK(all_zero(k->B), "B starts at zero, so a new adapter changes nothing");
    CHECK(k->A->requires_grad && k->B->requires_grad && k->A->shape[0] == r && k->A->shape[1] == in &&
              k->B->shape[0] == out && k->B->shape[1] == r,
          "A [r, in] and B [out, r], trainable");
    CHECK(!strcmp(k->A->name, "model.layers.0.self_attn.q_proj.lora_A.weight") &&
              !strcmp(k->B->name, "model.layers.0.self_attn.q_proj.lora_B.weight"),
          "PEFT's names: %s, %s", k->A->name, k->B->name);
    CHECK(fabs(k->scale - 2.0) < 1e-15, "alpha / r = 2, got %g", k->scale);
    ct_lora *same = ct_lora_new("model.layers.0.self_attn.q_proj", in, out, &o, 1234, 5);
    ct_lora *other = ct_lora_new("model.layers.0.self_attn.v_proj", in, out, &o, 1234, 6);
    CHECK(same && !memcmp(same->A->data, k->A->data, ct_nbytes(k->A)), "the same (seed, site) draws the same A");
    CHECK(other && memcmp(other->A->data, k->A->data, ct_nbytes(k->A)), "another site draws another A");
    ct_lora_free(same);
    ct_lora_free(other);
    printf("init     kaiming A: mean %.1e, std %.5f (want %.5f), max %.5f <= %.5f; B = 0; scale %g\n", mean, std,
           want_std, max_abs, bound, k->scale);
    ct_lora_free(k);

    o.init = CT_LORA_INIT_GAUSSIAN;
    o.use_rslora = true;
    ct_lora *g = ct_lora_new("model.layers.1.mlp.up_proj", in, out, &o, 1234, 9);
    CHECK(g != NULL, "gaussian: %s", ct_last_error());
    if (!g) return;
    moments(g->A, &mean, &std, &max_abs);
    CHECK(fabs(std - 1.0 / r) < 0.03 / r && fabs(mean) < 0.02 / r, "gaussian A: mean %.2e std %.5f (want %.5f)", mean, std,
          1.0 / r);
    CHECK(fabs(g->scale - 32 / 4.0) < 1e-15, "rsLoRA: alpha / √r = 8, got %g", g->scale);
    CHECK(all_zero(g->B), "gaussian: B starts at zero");
    printf("init     gaussian A: std %.5f (want %.5f); rsLoRA scale %g\n", std, 1.0 / r, g->scale);
    ct_lora_free(g);
}

static void fill_normal(ct_tensor *t, double std) {
    for (int64_t i = 0; i < ct_numel(t); i++) ct_set(t, i, std * ct_rng_normal(&rng));
}

/* DoRA: inputs x [..., in], m [out], W [out, in], A [r, in], B [out, r]; user: scale, dropout.
 * W, A and B are frozen here (A and B stay out of the finite differences: n = ||W + s·B·A|| is detached (no gradient through it), which finite
 * differences of A or B would not know; their gradients are checked against peft's
 * (tests/test_lora_peft.c)). */
typedef struct {
    ct_tensor *W, *A, *B;
    double scale, p;
    ct_lora_dropout drop;
} dora_args;

static ct_tensor *fn_dora(ct_tensor *const *in, int n, void *user) {
    (void)n;
    const dora_args *a = user;
    ct_lora l = {.A = in[3], .B = in[4], .magnitude = in[1], .scale = a->scale, .dropout = a->p, .dropout_site = 78};
    return ct_lora_dora_term(&l, in[2], in[2], in[0], ct_matmul(in[0], in[2], false, true), a->p > 0 ? &a->drop : NULL);
}

/* peft's DoRA term written out in f64: (m/n - 1)·x'·Wᵀ + (m/n)·s·x'·Aᵀ·Bᵀ, x' = dropout(x) with
 * ctune's mask, n the row norms of W + s·B·A (W read through ct_get: an i8 W dequantized). */
static double dora_direct_error(const ct_tensor *x, const ct_tensor *W, const dora_args *a, const ct_tensor *m,
                                const ct_tensor *got) {
    const int64_t in = a->A->shape[1], r = a->A->shape[0], out = a->B->shape[0], rows = ct_numel(x) / in;
    double *norm = calloc((size_t)out, sizeof *norm), diff = 0, total = 0;
    for (int64_t o = 0; o < out; o++) {
        for (int64_t i = 0; i < in; i++) {
            double v = 0;
            for (int64_t k = 0; k < r; k++) v += ct_get(a->B, o * r + k) * ct_get(a->A, k * in + i);
            v = ct_get(W, o * in + i) + a->scale * v;
            norm[o] += v * v;
        }
        norm[o] = sqrt(norm[o]);
    }
    for (int64_t row = 0; row < rows; row++)
        for (int64_t o = 0; o < out; o++) {
            double base = 0, lora = 0;
            for (int64_t i = 0; i < in; i++) {
                double xv = ct_get(x, row * in + i);
                if (a->p > 0) {
                    const uint64_t stream = ct_dropout_stream(a->drop.step, 78);
                    xv = ct_counter_uniform(a->drop.seed, stream, (uint64_t)(row * in + i)) >= a->p ? xv / (1 - a->p) : 0;
                }
                base += xv * ct_get(W, o * in + i);
                for (int64_t k = 0; k < r; k++) lora += xv * ct_get(a->A, k * in + i) * ct_get(a->B, o * r + k);
            }
            const double f = ct_get(m, o) / norm[o], want = (f - 1) * base + f * a->scale * lora;
            const double d = ct_get(got, row * out + o) - want;
            diff += d * d;
            total += want * want;
        }
    free(norm);
    return sqrt(diff / total);
}

static void check_dora(void) {
    ct_scope_begin();
    const int64_t in = 13, out = 11, r = 4;
    ct_tensor *x = ct_random_input(&rng, 3, (int64_t[]){2, 3, in});
    ct_tensor *m = ct_random_input(&rng, 1, (int64_t[]){out});
    dora_args a = {.W = ct_random_input(&rng, 2, (int64_t[]){out, in}), .A = ct_random_input(&rng, 2, (int64_t[]){r, in}),
                   .B = ct_random_input(&rng, 2, (int64_t[]){out, r}), .scale = 1.5};
    a.A->requires_grad = a.B->requires_grad = a.W->requires_grad = false;
    ct_tensor *y = fn_dora((ct_tensor *[]){x, m, a.W, a.A, a.B}, 5, &a);
    const double err = y ? dora_direct_error(x, a.W, &a, m, y) : 1;
    dora_args dropped = a;
    dropped.p = 0.3;
    dropped.drop = (ct_lora_dropout){.seed = 5, .step = 9};
    ct_tensor *yd = fn_dora((ct_tensor *[]){x, m, a.W, a.A, a.B}, 5, &dropped);
    const double err_d = yd ? dora_direct_error(x, a.W, &dropped, m, yd) : 1;
    CHECK(err < 1e-13 && err_d < 1e-13, "DoRA term vs peft's formula in f64: %.3g, with dropout (base from x') %.3g", err,
          err_d);
    expect_gradcheck("dora term (x, m)", fn_dora, (ct_tensor *[]){x, m, a.W, a.A, a.B}, 5, &a);
    expect_gradcheck("dora term with dropout 0.3 (x, m)", fn_dora, (ct_tensor *[]){x, m, a.W, a.A, a.B}, 5, &dropped);
    ct_scope_end();

    /* f32 adapter on an i8 base: n from the dequantized rows, as a reference that dequantizes. */
    ct_lora_options o = {.r = 3, .alpha = 6, .use_dora = true};
    ct_lora *l = ct_lora_new("model.layers.0.self_attn.q_proj", 37, 19, &o, 3, 4);
    ct_tensor *W = ct_tensor_new(CT_F32, 2, (int64_t[]){19, 37}, "w");
    fill_normal(W, 0.1);
    ct_tensor *q = ct_quantize_i8(W, 0, true, "q");
    CHECK(l && l->magnitude && !strcmp(l->magnitude->name, "model.layers.0.self_attn.q_proj.lora_magnitude_vector") &&
              ct_lora_dora_init(l, q) == 0,
          "DoRA adapter: %s", ct_last_error());
    double worst = 0;
    for (int64_t oo = 0; l && oo < 19; oo++) {
        double n2 = 0; /* B = 0 at creation: m = ||W_i8|| */
        for (int64_t i = 0; i < 37; i++) n2 += ct_get(q, oo * 37 + i) * ct_get(q, oo * 37 + i);
        worst = fmax(worst, fabs(ct_get(l->magnitude, oo) - sqrt(n2)) / sqrt(n2));
    }
    CHECK(worst < 1e-6, "magnitude at creation = the i8 base's dequantized row norms: %.3g", worst);

    /* Merge: m · (W + s·B·A) / ||W + s·B·A|| gives the DoRA forward's output. */
    fill_normal(l->B, 0.1);
    for (int64_t oo = 0; oo < 19; oo++) ct_set(l->magnitude, oo, ct_get(l->magnitude, oo) * (1 + 0.2 * ct_rng_normal(&rng)));
    ct_scope_begin();
    const bool was = ct_set_grad_enabled(false);
    ct_tensor *xs = ct_empty(CT_F32, 2, (int64_t[]){3, 37});
    fill_normal(xs, 1);
    ct_tensor *unmerged = ct_add(ct_matmul(xs, W, false, true),
                                 ct_lora_dora_term(l, W, W, xs, ct_matmul(xs, W, false, true), NULL));
    CHECK(ct_lora_merge_into(l, W) == 0, "dora merge: %s", ct_last_error());
    const double merge_err = unmerged ? ct_relative_error(ct_matmul(xs, W, false, true), unmerged) : 1;
    CHECK(merge_err < 1e-6, "DoRA merged forward vs the DoRA forward: %.3g", merge_err);
    ct_set_grad_enabled(was);
    ct_scope_end();
    printf("dora     term = peft's formula in f64: %.1e, with dropout %.1e; i8 base norms %.1e; merged %.1e\n", err,
           err_d, worst, merge_err);
    ct_tensor_free(q);
    ct_tensor_free(W);
    ct_lora_free(l);
}

/* Merging: x·(W + s·B·A)ᵀ equals x·Wᵀ + the adapter's term; bf16 is rounded once. */
static void check_merge(void) {
    const int64_t in = 45, out = 29;
    ct_lora_options o = {.r = 5, .alpha = 7, .use_rslora = true};
    ct_lora *l = ct_lora_new("model.layers.2.mlp.down_proj", in, out, &o, 7, 3);
    CHECK(l != NULL, "new: %s", ct_last_error());
    if (!l) return;
    fill_normal(l->B, 0.1);
    ct_tensor *W = ct_tensor_new(CT_F32, 2, (int64_t[]){out, in}, "model.layers.2.mlp.down_proj.weight");
    fill_normal(W, 0.05);
    ct_tensor *W0 = ct_tensor_new(CT_F32, 2, (int64_t[]){out, in}, NULL);
    ct_copy(W0, W);
    CHECK(ct_lora_merge_into(l, W) == 0, "merge: %s", ct_last_error());
    double worst = 0;
    for (int64_t oo = 0; oo < out; oo++)
        for (int64_t i = 0; i < in; i++) {
            double sum = 0;
            for (int64_t k = 0; k < o.r; k++) sum += ct_get(l->B, oo * o.r + k) * ct_get(l->A, k * in + i);
            const double want = (double)(float)(ct_get(W0, oo * in + i) + l->scale * sum);
            worst = fmax(worst, fabs(ct_get(W, oo * in + i) - want));
        }
    CHECK(worst == 0, "merged f32 weight differs from W + s·B·A rounded once: %.3g", worst);

    ct_scope_begin();
    const bool was = ct_set_grad_enabled(false);
    ct_tensor *x = ct_empty(CT_F32, 2, (int64_t[]){3, in});
    fill_normal(x, 1);
    ct_tensor *merged = ct_matmul(x, W, false, true);
    ct_tensor *unmerged = ct_add(ct_matmul(x, W0, false, true), ct_lora_delta(l, x, NULL));
    const double err = ct_relative_error(merged, unmerged);
    CHECK(err < 1e-6, "merged forward vs base + adapter: %.3g", err);
    ct_set_grad_enabled(was);
    ct_scope_end();

    ct_tensor *bad = ct_tensor_new(CT_F32, 2, (int64_t[]){out + 1, in}, "w");
    CHECK(ct_lora_merge_into(l, bad) < 0 && strstr(ct_last_error(), "[30, 45]") && strstr(ct_last_error(), "[29, 45]"),
          "a weight of another shape is refused naming both: %s", ct_last_error());
    ct_tensor *q = ct_quantize_i8(W0, 32, true, "q");
    CHECK(q && ct_lora_merge_into(l, q) < 0 && strstr(ct_last_error(), "i8"), "an i8 weight is refused: %s",
          ct_last_error());
    printf("merge    W + s·B·A rounded once (f32 exact); merged forward vs base + adapter %.1e\n", err);
    ct_tensor_free(q);
    ct_tensor_free(bad);
    ct_tensor_free(W);
    ct_tensor_free(W0);
    ct_lora_free(l);
}

static void check_options(void) {
    struct {
        ct_lora_options o;
        const char *needle;
    } bad[] = {
        {{.r = 0, .alpha = 8}, "lora.r=0"},
        {{.r = -3, .alpha = 8}, "lora.r=-3"},
        {{.r = 4, .alpha = 0}, "lora.alpha=0"},
        {{.r = 4, .alpha = -1}, "lora.alpha=-1"},
        {{.r = 4, .alpha = 8, .dropout = 1}, "lora.dropout=1"},
        {{.r = 4, .alpha = 8, .dropout = -0.1}, "lora.dropout=-0.1"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ct_lora *l = ct_lora_new("m", 8, 8, &bad[i].o, 1, 1);
        CHECK(!l && strstr(ct_last_error(), bad[i].needle) && !strchr(ct_last_error(), '\n'), "%s: %s", bad[i].needle,
              l ? "accepted" : ct_last_error());
        ct_lora_free(l);
    }
}

int main(void) {
    ct_rng_seed(&rng, 4242);
    check_delta();
    check_init();
    check_merge();
    check_dora();
    check_options();
    return ct_test_finish("test_lora");
}
