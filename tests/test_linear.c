/* ct_linear (models/linear.h), the one projection of the model:
 *   - the forward against a product written out here in f64, on odd sizes (x [3, 7, 45],
 *     W [37, 45]), with and without bias, for f32, bf16, i8 per-row and i8 per-block-32 weights
 *     (45 in-features: a full block of 32 and a partial one of 13); i8 also against the forward
 *     with the dequantized f32 weight, which holds exactly the same values (bound 1e-6);
 *   - bf16 compute: a bf16 result within bf16 rounding of the f64 product, for every weight dtype;
 *   - f64 gradient checks of x, W and b through ct_linear_forward;
 *   - the gradient reaching x through a frozen i8 (both layouts) or bf16 weight equals the one
 *     through the same values as a frozen f32 weight, and the narrow weight gets none;
 *   - an i8 or bf16 weight is widened a tile at a time: the forward's peak memory stays well
 *     under one f32 copy of the weight;
 *   - a model whose every projection holds an i8 weight computes the logits of its dequantized
 *     twin;
 *   - the errors: an adapter of another shape, a mask attached before masks exist, a wrong bias, a trainable i8
 *     weight, mismatched sizes (each names the weight). */
#include <string.h>

#include "autograd/ops.h"
#include "autograd/tape.h"
#include "core/arena.h"
#include "core/error.h"
#include "core/rng.h"
#include "models/linear.h"
#include "models/lora.h"
#include "models/llama.h"
#include "tests/ct_test.h"
#include "tests/ct_test_gradcheck.h"

enum { IN = 45, OUT = 37 };

static ct_rng rng;

static ct_tensor *persistent_normal(ct_dtype dtype, int ndim, const int64_t *shape, const char *name, double std) {
    ct_tensor *t = ct_tensor_new(dtype, ndim, shape, name);
    if (t) ct_fill_normal(t, &rng, 0, std);
    return t;
}

/* An f32 tensor holding exactly the values of t (a bf16 or i8 weight: q * scale). */
static ct_tensor *dequantized(const ct_tensor *t) {
    ct_tensor *f = ct_tensor_new(CT_F32, t->ndim, t->shape, "dequantized");
    for (int64_t i = 0; f && i < ct_numel(t); i++) ct_set(f, i, ct_get(t, i));
    return f;
}

/* y = x W^T + b computed here element by element in f64: the reference. */
static ct_tensor *reference(const ct_tensor *x, const ct_tensor *w, const ct_tensor *b) {
    const int64_t rows = ct_rows(x), in = ct_cols(x), out = w->shape[0];
    ct_tensor *y = ct_empty(CT_F64, 2, (int64_t[]){rows, out});
    for (int64_t r = 0; r < rows; r++)
        for (int64_t o = 0; o < out; o++) {
            double sum = b ? ct_get(b, o) : 0;
            for (int64_t i = 0; i < in; i++) sum += ct_get(x, r * in + i) * ct_get(w, o * in + i);
            ct_set(y, r * out + o, sum);
        }
    return y;
}

static const char *weight_kind(int kind) {
    static const char *names[] = {"f32", "bf16", "i8 per row", "i8 per block of 32"};
    return names[kind];
}

/* A frozen or trainable weight [OUT, IN] of the given kind: 0 f32, 1 bf16, 2 i8 per row, 3 i8 per
 * block of 32. */
static ct_tensor *make_weight(int kind, int64_t out, int64_t in) {
    ct_tensor *w = persistent_normal(kind == 1 ? CT_BF16 : CT_F32, 2, (int64_t[]){out, in}, "w", 0.3);
    if (kind < 2) return w;
    ct_tensor *q = ct_quantize_i8(w, kind == 2 ? 0 : 32, true, "w.i8");
    ct_tensor_free(w);
    return q;
}

static void test_forward(void) {
    for (int kind = 0; kind < 4; kind++) {
        for (int with_bias = 0; with_bias < 2; with_bias++) {
            ct_scope_begin();
            ct_tensor *x = persistent_normal(CT_F32, 3, (int64_t[]){3, 7, IN}, "x", 1.0);
            ct_linear l = {.weight = make_weight(kind, OUT, IN)};
            if (with_bias) l.bias = persistent_normal(CT_F32, 1, (int64_t[]){OUT}, "b", 0.5);
            if (kind == 3)
                CHECK(l.weight->scale && l.weight->scale->shape[1] == 2 && l.weight->scale_block == 32,
                      "45 in-features make two blocks of 32 per row (the second partial)");
            ct_tensor *y = ct_linear_forward(&l, x, CT_F32);
            CHECK(y && y->dtype == CT_F32 && y->ndim == 3 && y->shape[0] == 3 && y->shape[1] == 7 &&
                      y->shape[2] == OUT,
                  "%s weight, bias %d: y [3, 7, %d] f32: %s", weight_kind(kind), with_bias, OUT, ct_last_error());
            double err = y ? ct_relative_error(y, reference(x, l.weight, l.bias)) : 1;
            CHECK(err < 1e-6, "%s weight, bias %d: forward vs the f64 product: %.3g", weight_kind(kind), with_bias, err);
            printf("forward, %-18s bias %d: %.2e vs the f64 product", weight_kind(kind), with_bias, err);
            if (kind >= 1) { /* the same values as an f32 weight: the same product to rounding */
                ct_linear wide = {.weight = dequantized(l.weight), .bias = l.bias};
                double e = y ? ct_relative_error(y, ct_linear_forward(&wide, x, CT_F32)) : 1;
                CHECK(e < 1e-6, "%s weight: forward vs the dequantized f32 weight: %.3g", weight_kind(kind), e);
                printf(", %.2e vs its f32 copy", e);
                ct_tensor_free(wide.weight);
            }
            printf("\n");
            ct_tensor_free(x);
            ct_tensor_free(l.weight);
            ct_tensor_free(l.bias);
            ct_scope_end();
        }
    }
}

/* bf16 compute: x and an f32 weight become bf16 copies; the result is bf16 and within bf16
 * rounding (2^-9 per value, a few roundings: 1e-2 norm-wise) of the f32 result. */
static void test_bf16_compute(void) {
    ct_scope_begin();
    ct_tensor *x = persistent_normal(CT_F32, 3, (int64_t[]){3, 7, IN}, "x", 1.0);
    ct_linear l = {.weight = make_weight(0, OUT, IN), .bias = persistent_normal(CT_F32, 1, (int64_t[]){OUT}, "b", 0.5)};
    ct_tensor *y = ct_linear_forward(&l, x, CT_BF16);
    CHECK(y && y->dtype == CT_BF16, "bf16 compute gives a bf16 result: %s", ct_last_error());
    double err = y ? ct_relative_error(y, reference(x, l.weight, l.bias)) : 1;
    CHECK(err < 1e-2 && err > 0, "bf16 compute vs the f64 product: %.3g", err);
    printf("bf16 compute: %.2e vs the f64 product\n", err);
    for (int kind = 1; kind < 4; kind++) { /* narrow weights are used as stored under bf16 compute too */
        ct_linear narrow = {.weight = make_weight(kind, OUT, IN), .bias = l.bias};
        ct_tensor *yn = ct_linear_forward(&narrow, x, CT_BF16);
        double e = yn && yn->dtype == CT_BF16 ? ct_relative_error(yn, reference(x, narrow.weight, l.bias)) : 1;
        CHECK(e < 1e-2 && e > 0, "bf16 compute, %s weight: %.3g vs the f64 product (%s)", weight_kind(kind), e,
              ct_last_error());
        printf("bf16 compute, %-18s weight: %.2e vs the f64 product\n", weight_kind(kind), e);
        ct_tensor_free(narrow.weight);
    }
    CHECK(ct_linear_forward(&l, x, CT_F16) == NULL && strstr(ct_last_error(), "compute dtype f16"),
          "f16 compute refused: %s", ct_last_error());
    ct_tensor_free(x);
    ct_tensor_free(l.weight);
    ct_tensor_free(l.bias);
    ct_scope_end();
}

static ct_tensor *linear_fn(ct_tensor *const *in, int n, void *user) {
    (void)user;
    ct_linear l = {.weight = in[1], .bias = n > 2 ? in[2] : NULL};
    return ct_linear_forward(&l, in[0], CT_F32);
}

static void test_gradcheck(void) {
    ct_scope_begin();
    ct_tensor *in[3] = {ct_random_input(&rng, 3, (int64_t[]){2, 3, IN}), ct_random_input(&rng, 2, (int64_t[]){OUT, IN}),
                        ct_random_input(&rng, 1, (int64_t[]){OUT})};
    expect_gradcheck("linear x, W", linear_fn, in, 2, NULL);
    expect_gradcheck("linear x, W, b", linear_fn, in, 3, NULL);
    ct_scope_end();
}

/* sum(linear(x) * probe) backward; returns x's gradient (arena) or NULL. */
static ct_tensor *grad_of_x(const ct_linear *l, ct_tensor *x, ct_tensor *probe) {
    x->grad = NULL;
    ct_tensor *loss = ct_sum(ct_mul(ct_linear_forward(l, x, CT_F32), probe));
    if (!loss || ct_backward(loss) < 0) return NULL;
    return x->grad;
}

static void test_frozen_narrow_grad(void) {
    for (int kind = 1; kind < 4; kind++) {
        ct_scope_begin();
        ct_tensor *x = ct_empty(CT_F32, 3, (int64_t[]){3, 7, IN});
        ct_fill_normal(x, &rng, 0, 1);
        x->requires_grad = true;
        ct_tensor *probe = ct_empty(CT_F32, 3, (int64_t[]){3, 7, OUT});
        ct_fill_normal(probe, &rng, 0, 1);
        ct_linear narrow = {.weight = make_weight(kind, OUT, IN), .bias = NULL};
        ct_linear wide = {.weight = dequantized(narrow.weight)};
        ct_tensor *g_narrow = grad_of_x(&narrow, x, probe);
        ct_tensor *g_wide = grad_of_x(&wide, x, probe);
        double err = g_narrow && g_wide ? ct_relative_error(g_narrow, g_wide) : 1;
        CHECK(err < 1e-6, "%s frozen weight: x's gradient vs through its f32 copy: %.3g (%s)", weight_kind(kind), err,
              ct_last_error());
        CHECK(narrow.weight->grad == NULL, "%s frozen weight got a gradient", weight_kind(kind));
        printf("x's gradient through a frozen %-18s weight: %.2e vs its f32 copy\n", weight_kind(kind), err);
        ct_tensor_free(narrow.weight);
        ct_tensor_free(wide.weight);
        ct_scope_end();
    }
}

/* More output rows than the GEMM's widening tile (1024), so a tile is a fraction of the weight:
 * an f32 copy of the whole weight (655 KB) would show in the peak. */
static void test_no_f32_copy(void) {
    const int64_t out = 4096, in = 40;
    for (int kind = 1; kind < 4; kind++) {
        ct_tensor *w = make_weight(kind, out, in);
        ct_scope_begin();
        ct_tensor *x = ct_empty(CT_F32, 3, (int64_t[]){3, 7, in});
        ct_fill_normal(x, &rng, 0, 1);
        ct_linear l = {.weight = w};
        size_t before = ct_memory_get_stats(CT_CPU).in_use;
        ct_memory_reset_peak();
        ct_tensor *y = ct_linear_forward(&l, x, CT_F32);
        size_t peak = ct_memory_get_stats(CT_CPU).peak_in_use;
        size_t scratch = y ? peak - before - ct_nbytes(y) : 0, full = (size_t)(out * in) * sizeof(float);
        CHECK(y && scratch < full / 2, "%s forward used %zu bytes of scratch; an f32 copy of the weight is %zu",
              weight_kind(kind), scratch, full);
        printf("%-18s forward [%lld, %lld] weight: %zu bytes of scratch, an f32 copy would be %zu\n",
               weight_kind(kind), (long long)out, (long long)in, scratch, full);
        ct_scope_end();
        ct_tensor_free(w);
    }
}

/* The input gradient through a frozen narrow weight long along the GEMM's K (an lm_head's
 * vocabulary: dx = dy·W sums over the output rows): K is cut into slices, so the scratch stays a
 * fraction of an f32 copy of the weight, and the gradient is the one through that f32 copy. */
static void test_no_f32_copy_backward(void) {
    const int64_t out = 60000, in = 64;
    for (int kind = 1; kind < 4; kind++) {
        ct_tensor *w = make_weight(kind, out, in);
        ct_tensor *wide = dequantized(w);
        ct_scope_begin();
        ct_tensor *x = ct_empty(CT_F32, 2, (int64_t[]){5, in});
        ct_fill_normal(x, &rng, 0, 1);
        x->requires_grad = true;
        ct_tensor *probe = ct_empty(CT_F32, 2, (int64_t[]){5, out});
        ct_fill_normal(probe, &rng, 0, 1);
        ct_linear l = {.weight = w}, lw = {.weight = wide};
        ct_tensor *loss = ct_sum(ct_mul(ct_linear_forward(&l, x, CT_F32), probe));
        size_t before = ct_memory_get_stats(CT_CPU).in_use;
        ct_memory_reset_peak();
        const int rc = loss ? ct_backward(loss) : -1;
        size_t scratch = ct_memory_get_stats(CT_CPU).peak_in_use - before, full = (size_t)(out * in) * sizeof(float);
        ct_tensor *g = x->grad, *g_wide = rc == 0 ? grad_of_x(&lw, x, probe) : NULL;
        const double err = g && g_wide ? ct_relative_error(g, g_wide) : 1;
        CHECK(rc == 0 && scratch < full / 2 && err < 1e-6,
              "%s [%lld, %lld] backward: %zu bytes of scratch (an f32 copy is %zu), gradient vs f32 copy %.3g",
              weight_kind(kind), (long long)out, (long long)in, scratch, full, err);
        printf("%-18s backward [%lld, %lld] weight: %zu bytes of scratch, an f32 copy would be %zu; x's gradient %.1e\n",
               weight_kind(kind), (long long)out, (long long)in, scratch, full, err);
        ct_scope_end();
        ct_tensor_free(w);
        ct_tensor_free(wide);
    }
}

/* Every projection (q, k, v, o, gate, up, down, lm_head) with an i8 weight: the model runs them
 * as stored and its logits are those of the model holding the dequantized values in f32. */
static void test_model_i8(void) {
    ct_llama_config c;
    ct_llama_config_defaults(&c, CT_ARCH_QWEN2);
    c.hidden_size = 40, c.intermediate_size = 70, c.num_hidden_layers = 2, c.num_attention_heads = 4;
    c.num_key_value_heads = 2, c.head_dim = 10, c.vocab_size = 53, c.max_position_embeddings = 64;
    c.tie_word_embeddings = false, c.initializer_range = 0.2;
    ct_llama *m = ct_llama_new(&c);
    CHECK(m != NULL, "tiny model: %s", ct_last_error());
    if (!m) return;
    ct_llama_init_random(m, 11);
    ct_linear *all[2 * 7 + 1];
    int n = 0;
    for (int l = 0; l < 2; l++) {
        ct_llama_layer *L = &m->layers[l];
        ct_linear *each[] = {&L->q_proj, &L->k_proj, &L->v_proj, &L->o_proj, &L->gate_proj, &L->up_proj, &L->down_proj};
        for (int i = 0; i < 7; i++) all[n++] = each[i];
    }
    all[n++] = &m->lm_head;
    ct_tensor *f32_weights[2 * 7 + 1], *i8_weights[2 * 7 + 1];
    for (int i = 0; i < n; i++) {
        f32_weights[i] = all[i]->weight;
        i8_weights[i] = ct_quantize_i8(all[i]->weight, i % 2 ? 32 : 0, true, all[i]->weight->name);
        all[i]->weight = dequantized(i8_weights[i]);
    }
    ct_set_grad_enabled(false);
    ct_scope_begin();
    ct_tensor *ids = ct_empty(CT_I32, 2, (int64_t[]){2, 9});
    for (int i = 0; i < 18; i++) ((int32_t *)ids->data)[i] = (i * 7 + 3) % 53;
    ct_tensor *wide = ct_llama_forward(m, ids, NULL);
    for (int i = 0; i < n; i++) {
        ct_tensor_free(all[i]->weight);
        all[i]->weight = i8_weights[i];
    }
    ct_tensor *narrow = ct_llama_forward(m, ids, NULL);
    double err = wide && narrow ? ct_relative_error(narrow, wide) : 1;
    CHECK(err < 1e-6, "i8 model vs its dequantized twin: %.3g (%s)", err, ct_last_error());
    printf("model with i8 q/k/v/o/gate/up/down/lm_head: logits %.2e vs its dequantized f32 twin\n", err);
    ct_scope_end();
    ct_set_grad_enabled(true);
    for (int i = 0; i < n; i++) {
        ct_tensor_free(all[i]->weight);
        all[i]->weight = f32_weights[i];
    }
    ct_llama_free(m);
}

static void expect_error(const ct_linear *l, ct_tensor *x, const char *want, const char *what) {
    CHECK(ct_linear_forward(l, x, CT_F32) == NULL && strstr(ct_last_error(), want), "%s: got '%s', want '%s'", what,
          ct_last_error(), want);
}

static void test_errors(void) {
    ct_scope_begin();
    ct_tensor *x = persistent_normal(CT_F32, 2, (int64_t[]){4, IN}, "x", 1.0);
    ct_tensor *w = persistent_normal(CT_F32, 2, (int64_t[]){OUT, IN}, "model.layers.0.mlp.up_proj.weight", 0.3);
    ct_tensor *bad_bias = persistent_normal(CT_F32, 1, (int64_t[]){OUT + 1}, "b", 0.3);
    ct_tensor *w_in = persistent_normal(CT_F32, 2, (int64_t[]){OUT, IN + 2}, "lm_head.weight", 0.3);
    ct_linear plain = {.weight = w};
    ct_lora_options lo = {.r = 3, .alpha = 6};
    ct_lora *misfit = ct_lora_new("model.layers.0.mlp.up_proj", IN + 1, OUT, &lo, 1, 1);
    expect_error(&(ct_linear){.weight = w, .adapter = misfit}, x,
                 "linear model.layers.0.mlp.up_proj.weight: the adapter makes [37, 46] but the weight is [37, 45]",
                 "adapter of another shape");
    ct_lora_free(misfit);
    expect_error(&(ct_linear){.weight = w, .mask = w}, x, "a pruning mask is attached", "mask");
    expect_error(&(ct_linear){.weight = w, .bias = bad_bias}, x, "bias [38] f32 must be [37]", "bias");
    expect_error(&(ct_linear){.weight = w_in}, x, "linear lm_head.weight: matmul", "inner size");
    expect_error(&(ct_linear){0}, x, "linear: no weight", "no weight");
    ct_tensor *q = ct_quantize_i8(w, 32, true, "q.i8");
    q->requires_grad = true;
    expect_error(&(ct_linear){.weight = q}, x, "must be frozen", "trainable i8");
    CHECK(ct_linear_forward(&plain, NULL, CT_F32) == NULL, "a NULL input propagates");
    ct_param_list list = {0};
    ct_linear with_bias = {.weight = w, .bias = bad_bias};
    CHECK(ct_linear_params(&plain, &list) == 0 && ct_linear_params(&with_bias, &list) == 0 && list.n == 3 &&
              list.items[0] == w && list.items[1] == w && list.items[2] == bad_bias,
          "parameters listed: weight, then the bias when there is one (%d)", list.n);
    ct_param_list_free(&list);
    ct_tensor *objs[] = {x, w, bad_bias, w_in, q};
    for (size_t i = 0; i < sizeof objs / sizeof objs[0]; i++) ct_tensor_free(objs[i]);
    ct_scope_end();
}

int main(void) {
    ct_rng_seed(&rng, 4504);
    test_forward();
    test_bf16_compute();
    test_gradcheck();
    test_frozen_narrow_grad();
    test_no_f32_copy();
    test_no_f32_copy_backward();
    test_model_i8();
    test_errors();
    return ct_test_finish("test_linear");
}
