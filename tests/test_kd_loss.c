/* The fused distillation loss ct_kd_loss: float64 finite-difference gradient checks (every
 * divergence, several temperatures, ignored rows, padding head rows, chunks of a few rows), its
 * value and gradients against PyTorch's kl_div / cross_entropy (tests/fixtures/kd, made by
 * tests/reference/make_kd_fixtures.py), chunking that does not change the result, and the
 * one-line errors of bad operands. */
#include <math.h>
#include <string.h>

#include "checkpoints/safetensors.h"
#include "core/arena.h"
#include "core/error.h"
#include "core/rng.h"
#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "autograd/ops_transformer.h"
#include "autograd/tape.h"
#include "tests/ct_test.h"
#include "tests/ct_test_gradcheck.h"

#define FIXTURE_TOLERANCE 1e-6 /* relative, the bound; float64 gets ~1e-15 */

static ct_rng rng;

typedef struct {
    ct_kd_options o;
    int64_t vocab;
} kd_args;

/* inputs: student hidden, student head, teacher hidden, teacher head, targets */
static ct_tensor *fn_kd(ct_tensor *const *in, int n, void *user) {
    (void)n;
    const kd_args *a = user;
    return ct_kd_loss(in[0], in[1], in[2], in[3], in[4], a->vocab, &a->o);
}

static ct_tensor *targets_with_ignored(int64_t rows, int64_t vocab) {
    ct_tensor *y = ct_empty(CT_I32, 1, &rows);
    for (int64_t r = 0; r < rows; r++) ((int32_t *)y->data)[r] = r % 3 == 1 ? -100 : (int32_t)ct_rng_below(&rng, (uint64_t)vocab);
    return y;
}

static ct_tensor *frozen(ct_tensor *t) {
    t->requires_grad = false;
    return t;
}

static void check_gradients(void) {
    const int64_t rows = 8, hs = 5, ht = 7, vocab = 9;
    static const ct_kd_divergence divergences[] = {CT_KD_FORWARD_KL, CT_KD_REVERSE_KL, CT_KD_SYMMETRIC_KL};
    static const char *const names[] = {"forward", "reverse", "symmetric"};
    static const double temps[] = {1.0, 2.0, 0.5};
    for (int d = 0; d < 3; d++) {
        for (int k = 0; k < 3; k++) {
            ct_tensor *sh = ct_random_input(&rng, 2, (int64_t[]){rows, hs});
            ct_tensor *sw = ct_random_input(&rng, 2, (int64_t[]){vocab + 2, hs}); /* 2 padding rows */
            ct_tensor *th = frozen(ct_random_input(&rng, 2, (int64_t[]){rows, ht}));
            ct_tensor *tw = frozen(ct_random_input(&rng, 2, (int64_t[]){vocab + 3, ht}));
            ct_tensor *y = targets_with_ignored(rows, vocab);
            kd_args a = {.o = {.ce_weight = 0.4, .kl_weight = 0.6, .temperature = temps[k], .divergence = divergences[d],
                               .chunk_rows = 3},
                         .vocab = vocab};
            char name[64];
            snprintf(name, sizeof name, "kd_loss %s T=%g", names[d], temps[k]);
            expect_gradcheck(name, fn_kd, (ct_tensor *[]){sh, sw, th, tw, y}, 5, &a);
        }
    }
    /* CE alone (no teacher) and KL alone, one chunk */
    ct_tensor *sh = ct_random_input(&rng, 2, (int64_t[]){rows, hs});
    ct_tensor *sw = ct_random_input(&rng, 2, (int64_t[]){vocab, hs});
    ct_tensor *th = frozen(ct_random_input(&rng, 2, (int64_t[]){rows, ht}));
    ct_tensor *tw = frozen(ct_random_input(&rng, 2, (int64_t[]){vocab, ht}));
    ct_tensor *y = targets_with_ignored(rows, vocab);
    kd_args ce = {.o = {.ce_weight = 1, .kl_weight = 0, .temperature = 1}, .vocab = vocab};
    expect_gradcheck("kd_loss CE only", fn_kd, (ct_tensor *[]){sh, sw, th, tw, y}, 5, &ce);
    kd_args kl = {.o = {.ce_weight = 0, .kl_weight = 1, .temperature = 3, .divergence = CT_KD_REVERSE_KL}, .vocab = vocab};
    expect_gradcheck("kd_loss KL only (reverse, T=3)", fn_kd, (ct_tensor *[]){sh, sw, th, tw, y}, 5, &kl);
}

/* A fixture tensor as f64 (i32 for targets) in the current scope. */
static ct_tensor *ref_tensor(const ct_safetensors *ref, const char *name) {
    const ct_st_tensor *t = ct_safetensors_find(ref, name);
    if (!t) return NULL;
    ct_tensor *out = ct_empty(t->dtype == CT_I32 ? CT_I32 : CT_F64, t->ndim, t->shape);
    return out && ct_safetensors_load_into(ref, name, out) == 0 ? out : NULL;
}

/* The transpose of a 2-D f64 tensor, as a new leaf. */
static ct_tensor *transposed(const ct_tensor *a) {
    ct_tensor *t = ct_empty(CT_F64, 2, (int64_t[]){a->shape[1], a->shape[0]});
    for (int64_t i = 0; i < a->shape[0]; i++)
        for (int64_t j = 0; j < a->shape[1]; j++) ct_set(t, j * a->shape[0] + i, ct_get(a, i * a->shape[1] + j));
    return t;
}

static ct_tensor *identity(int64_t n) {
    ct_tensor *t = ct_zeros(CT_F64, 2, (int64_t[]){n, n});
    for (int64_t i = 0; i < n; i++) ct_set(t, i * n + i, 1.0);
    return t;
}

static int64_t fixture_case(const ct_safetensors *ref, const char *divergence, ct_kd_divergence d, double temp) {
    char prefix[64], key[96];
    snprintf(prefix, sizeof prefix, "%s_T%g", divergence, temp);
#define REF(what) (snprintf(key, sizeof key, "%s.%s", prefix, what), ref_tensor(ref, key))
    ct_tensor *sh = REF("hs"), *sw = REF("ws"), *th = REF("ht"), *tw = REF("wt"), *y = REF("targets");
    ct_tensor *alpha = REF("alpha"), *loss = REF("loss"), *g_sh = REF("grad_hs"), *g_sw = REF("grad_ws");
    ct_tensor *logits = REF("logits"), *t_logits = REF("teacher_logits"), *g_logits = REF("grad_logits");
#undef REF
    CHECK(sh && sw && th && tw && y && alpha && loss && g_sh && g_sw && logits && t_logits && g_logits,
          "%s: fixture tensors missing", prefix);
    if (!g_logits) return 0;
    int64_t vocab = logits->shape[1];
    ct_kd_options o = {.ce_weight = 1 - ct_get(alpha, 0), .kl_weight = ct_get(alpha, 0), .temperature = temp,
                       .divergence = d, .chunk_rows = 2};
    sh->requires_grad = sw->requires_grad = true;
    ct_tensor *out = ct_kd_loss(sh, sw, th, tw, y, vocab, &o);
    CHECK(out && ct_backward(out) == 0, "%s: %s", prefix, ct_last_error());
    if (!out) return 0;
    double err = fabs(ct_get(out, 0) - ct_get(loss, 0)) / fabs(ct_get(loss, 0));
    double e_sh = ct_relative_error(sh->grad, g_sh), e_sw = ct_relative_error(sw->grad, g_sw);
    CHECK(err < FIXTURE_TOLERANCE, "%s: loss %.17g, PyTorch %.17g", prefix, ct_get(out, 0), ct_get(loss, 0));
    CHECK(e_sh < FIXTURE_TOLERANCE, "%s: hidden gradient error %.3g", prefix, e_sh);
    /* ws's padding rows (past vocab) get no gradient in either */
    CHECK(e_sw < FIXTURE_TOLERANCE, "%s: head gradient error %.3g", prefix, e_sw);
    /* The logits' gradient: with identity hidden states the head is the logits transposed, so
     * the head's gradient is the logits' gradient transposed. */
    int64_t rows = logits->shape[0];
    ct_tensor *eye = identity(rows), *s_head = transposed(logits), *t_head = transposed(t_logits);
    s_head->requires_grad = true;
    ct_tensor *out2 = ct_kd_loss(eye, s_head, identity(rows), t_head, y, vocab, &o);
    CHECK(out2 && ct_backward(out2) == 0, "%s logits: %s", prefix, ct_last_error());
    double e_logits = out2 ? ct_relative_error(transposed(s_head->grad), g_logits) : INFINITY;
    double err2 = out2 ? fabs(ct_get(out2, 0) - ct_get(loss, 0)) / fabs(ct_get(loss, 0)) : INFINITY;
    CHECK(e_logits < FIXTURE_TOLERANCE && err2 < FIXTURE_TOLERANCE, "%s: logit gradient error %.3g, loss error %.3g",
          prefix, e_logits, err2);
    printf("%-24s vs PyTorch: loss %.2e  d hidden %.2e  d head %.2e  d logits %.2e\n", prefix, err, e_sh, e_sw,
           e_logits);
    ct_tensor *params[] = {sh, sw, s_head};
    ct_release_grad(params, 3);
    return 1;
}

static void check_fixtures(void) {
    ct_safetensors *ref = ct_safetensors_open(ct_test_path("tests/fixtures/kd/reference.safetensors"));
    CHECK(ref != NULL, "fixture: %s", ct_last_error());
    if (!ref) return;
    static const char *const names[] = {"forward_kl", "reverse_kl", "symmetric_kl"};
    static const double temps[] = {1.0, 2.0, 0.5};
    int64_t cases = 0;
    for (int d = 0; d < 3; d++)
        for (int k = 0; k < 3; k++) cases += fixture_case(ref, names[d], (ct_kd_divergence)d, temps[k]);
    CHECK(cases == 9, "compared %lld of 9 fixture cases", (long long)cases);
    ct_safetensors_close(ref);
}

/* f32 with different chunk sizes gives the same loss and gradients (to f32 rounding of the
 * GEMM accumulation order, which chunking does not change: rows are independent). */
static void check_chunking_f32(void) {
    const int64_t rows = 37, h = 16, vocab = 301;
    ct_tensor *sh = ct_random_input(&rng, 2, (int64_t[]){rows, h}), *sw = ct_random_input(&rng, 2, (int64_t[]){vocab, h});
    ct_tensor *th = ct_random_input(&rng, 2, (int64_t[]){rows, h}), *tw = ct_random_input(&rng, 2, (int64_t[]){vocab, h});
    ct_tensor *y = targets_with_ignored(rows, vocab);
    ct_tensor *s32 = ct_empty(CT_F32, 2, sh->shape), *w32 = ct_empty(CT_F32, 2, sw->shape);
    ct_tensor *t32 = ct_empty(CT_F32, 2, th->shape), *tw32 = ct_empty(CT_F32, 2, tw->shape);
    for (int64_t i = 0; i < ct_numel(sh); i++) ct_set(s32, i, ct_get(sh, i));
    for (int64_t i = 0; i < ct_numel(sw); i++) ct_set(w32, i, ct_get(sw, i));
    for (int64_t i = 0; i < ct_numel(th); i++) ct_set(t32, i, ct_get(th, i));
    for (int64_t i = 0; i < ct_numel(tw); i++) ct_set(tw32, i, ct_get(tw, i));
    ct_kd_options o = {.ce_weight = 0.5, .kl_weight = 0.5, .temperature = 2, .divergence = CT_KD_SYMMETRIC_KL};
    ct_tensor *f64 = ct_kd_loss(sh, sw, th, tw, y, vocab, &o);
    double ref = f64 ? ct_get(f64, 0) : NAN;
    for (int64_t chunk = 1; chunk <= 64; chunk *= 4) {
        o.chunk_rows = chunk;
        ct_tensor *out = ct_kd_loss(s32, w32, t32, tw32, y, vocab, &o);
        double v = out ? ct_get(out, 0) : NAN;
        CHECK(fabs(v - ref) < 1e-5 * fabs(ref), "f32 chunk %lld: loss %.9g, f64 %.9g", (long long)chunk, v, ref);
    }
}

static void expect_error(ct_tensor *out, const char *fragment, const char *what) {
    CHECK(!out && strstr(ct_last_error(), fragment), "%s: got '%s'", what, out ? "a result" : ct_last_error());
}

static void check_bad_input(void) {
    ct_tensor *sh = ct_random_input(&rng, 2, (int64_t[]){4, 3}), *sw = ct_random_input(&rng, 2, (int64_t[]){6, 3});
    ct_tensor *th = ct_random_input(&rng, 2, (int64_t[]){4, 5}), *tw = ct_random_input(&rng, 2, (int64_t[]){6, 5});
    ct_tensor *y = targets_with_ignored(4, 6);
    ct_kd_options o = {.ce_weight = 0.5, .kl_weight = 0.5, .temperature = 1};
    expect_error(ct_kd_loss(sh, sw, th, tw, y, 7, &o), "student lm_head has 6 rows", "vocab past the head");
    expect_error(ct_kd_loss(sh, sw, NULL, NULL, y, 6, &o), "needs the teacher", "kl without a teacher");
    o.temperature = 0;
    expect_error(ct_kd_loss(sh, sw, th, tw, y, 6, &o), "temperature = 0 must be > 0", "T = 0");
    o.temperature = 1;
    ct_tensor *th_short = ct_random_input(&rng, 2, (int64_t[]){3, 5});
    expect_error(ct_kd_loss(sh, sw, th_short, tw, y, 6, &o), "same rows", "teacher rows");
    ct_tensor *y_short = targets_with_ignored(3, 6);
    expect_error(ct_kd_loss(sh, sw, th, tw, y_short, 6, &o), "one per row", "targets count");
    /* a narrow student head is read as loaded, but an i8 one cannot train */
    ct_tensor *h32 = ct_empty(CT_F32, 2, sh->shape), *w32 = ct_empty(CT_F32, 2, sw->shape);
    for (int64_t i = 0; i < ct_numel(sh); i++) ct_set(h32, i, ct_get(sh, i));
    for (int64_t i = 0; i < ct_numel(sw); i++) ct_set(w32, i, ct_get(sw, i));
    ct_tensor *w8 = ct_quantize_i8(w32, 0, false, NULL);
    w8->requires_grad = true;
    o.kl_weight = 0;
    expect_error(ct_kd_loss(h32, w8, NULL, NULL, y, 6, &o), "a frozen i8", "trainable i8 student head");
    w8->requires_grad = false;
    ct_tensor *frozen8 = ct_kd_loss(h32, w8, NULL, NULL, y, 6, &o);
    CHECK(frozen8 != NULL, "a frozen i8 student head: %s", ct_last_error());
}

int main(void) {
    ct_rng_seed(&rng, 16);
    ct_scope_begin();
    check_gradients();
    check_fixtures();
    check_chunking_f32();
    check_bad_input();
    ct_scope_end();
    return ct_test_finish("test_kd_loss");
}
