/* Backward without zero-filled gradient buffers: a gradient made for the first time is written,
 * not zero-filled and added to (ct_grad_target_fresh), a view or sum hands its output gradient
 * over to its input instead of copying it (ct_grad_take), and axpby with beta 0 never reads y. */
#include <math.h>
#include <string.h>

#include "autograd/ops.h"
#include "autograd/tape.h"
#include "core/arena.h"
#include "core/error.h"
#include "core/rng.h"
#include "kernels/backend.h"
#include "models/lora.h"
#include "tests/ct_test.h"

#define ROWS 64
#define COLS 64

static ct_tensor *param(double value) {
    const int64_t shape[2] = {ROWS, COLS};
    ct_tensor *p = ct_tensor_new(CT_F32, 2, shape, "p");
    ct_fill(p, value);
    p->requires_grad = true;
    return p;
}

/* BLAS's contract: beta 0 means y is output only. A NaN left in a fresh buffer must not leak. */
static void check_axpby_beta_zero_ignores_y(void) {
    const int64_t n = 3000;
    ct_scope_begin();
    ct_tensor *x = ct_empty(CT_F32, 1, &n), *y = ct_empty(CT_F32, 1, &n);
    for (int64_t i = 0; i < n; i++) {
        ct_set(x, i, (double)(i % 17) - 8.0);
        ct_set(y, i, NAN);
    }
    CHECK(ct_backend_for(CT_CPU)->axpby(0.5, x, 0.0, y) == 0, "axpby: %s", ct_last_error());
    int64_t wrong = 0;
    for (int64_t i = 0; i < n; i++) wrong += ct_get(y, i) != 0.5 * ((double)(i % 17) - 8.0);
    CHECK(wrong == 0, "axpby(0.5, x, 0, y) left %lld of %lld elements not 0.5 x (y held NaN)", (long long)wrong,
          (long long)n);
    ct_scope_end();
}

/* A chain of adds and reshapes: their gradients are all the loss's gradient, so backward should
 * allocate that one buffer and hand it down, not a zero-filled copy per op. */
static void check_views_and_sums_hand_the_gradient_down(void) {
    ct_tensor *p = param(1.0), *q = param(2.0);
    ct_scope_begin();
    const int64_t flat = ROWS * COLS, square[2] = {ROWS, COLS}, tall[2] = {ROWS * 2, COLS / 2};
    ct_tensor *h = ct_add(p, q);
    for (int i = 0; i < 8; i++) h = ct_reshape(h, 2, i % 2 ? square : tall);
    h = ct_add(ct_reshape(h, 1, &flat), ct_reshape(q, 1, &flat));
    h = ct_add(h, h); /* x + x: the gradient goes in twice */
    ct_tensor *loss = ct_sum(h);
    CHECK(loss != NULL, "forward: %s", ct_last_error());
    const size_t before = ct_memory_get_stats(CT_CPU).in_use;
    CHECK(ct_backward(loss) == 0, "backward: %s", ct_last_error());
    const size_t grown = ct_memory_get_stats(CT_CPU).in_use - before, one = (size_t)flat * sizeof(float);
    printf("backward through 2 adds, 10 reshapes, x + x: %zu bytes of arena (one gradient: %zu)\n", grown, one);
    /* three buffers: the sum's gradient, x + x's input's (g goes in twice) and q's reshaped copy
     * (the second operand of an add gets its own); a zero-filled buffer per op made it 14 */
    CHECK(grown <= 3 * one + 4096, "backward allocated %zu bytes, more than 3 gradients of %zu", grown, one);
    int64_t wrong_p = 0, wrong_q = 0;
    for (int64_t i = 0; i < flat; i++) {
        wrong_p += ct_get(p->grad, i) != 2.0;
        wrong_q += ct_get(q->grad, i) != 4.0;
    }
    CHECK(wrong_p == 0 && wrong_q == 0, "gradients: %lld of p not 2, %lld of q not 4", (long long)wrong_p,
          (long long)wrong_q);
    ct_scope_end();
    ct_tensor_free(p);
    ct_tensor_free(q);
}

/* Fresh buffers are for arena gradients only: a parameter's gradient still accumulates. */
static void check_parameters_accumulate(void) {
    ct_tensor *p = param(3.0);
    for (int pass = 1; pass <= 2; pass++) {
        ct_scope_begin();
        ct_tensor *h = ct_reshape(ct_scale(p, 2.0), 1, (int64_t[]){ROWS * COLS});
        ct_tensor *loss = ct_sum(ct_add_scaled(h, h, 0.25)); /* h + h / 4: p's gradient 2.5 a pass */
        CHECK(loss && ct_backward(loss) == 0, "pass %d: %s", pass, ct_last_error());
        CHECK(ct_get(p->grad, 5) == 2.5 * pass, "pass %d: p's gradient %g, want %g", pass, ct_get(p->grad, 5),
              2.5 * pass);
        ct_scope_end();
    }
    ct_tensor_free(p);
}

static ct_tensor *random_param(ct_rng *rng, int64_t rows, int64_t cols, const char *name) {
    ct_tensor *t = ct_tensor_new(CT_F32, 2, (int64_t[]){rows, cols}, name);
    ct_fill_normal(t, rng, 0.0, 1.0);
    t->requires_grad = true;
    return t;
}

static bool same_bits(const ct_tensor *a, const ct_tensor *b) {
    return a && b && ct_nbytes(a) == ct_nbytes(b) && memcmp(a->data, b->data, ct_nbytes(a)) == 0;
}

/* One LoRA projection's forward and backward, y + s·B·A·dropout(x) as one op and as the
 * composition it replaces: the output and every gradient must be the same bits. */
static void check_lora_add_delta_matches_the_composition(void) {
    ct_rng rng;
    ct_rng_seed(&rng, 7);
    const ct_lora_options o = {.r = 4, .alpha = 7, .dropout = 0.25, .init = CT_LORA_INIT_KAIMING};
    ct_lora *l = ct_lora_new("q_proj", 24, 40, &o, 3, 1);
    ct_fill_normal(l->B, &rng, 0.0, 0.5); /* B = 0 would make A's gradient zero */
    ct_tensor *x = random_param(&rng, 33, 24, "x"), *w = random_param(&rng, 40, 24, "w");
    const ct_lora_dropout drop = {.seed = 11, .step = 2};
    ct_tensor *out[2] = {NULL, NULL}, *grads[2][3];
    ct_tensor *const params[3] = {x, l->A, l->B};
    for (int fused = 0; fused < 2; fused++) {
        ct_zero_grad(params, 3);
        ct_scope_begin();
        ct_tensor *y = ct_matmul(x, w, false, true);
        y = fused ? ct_lora_add_delta(l, y, x, &drop) : ct_add(y, ct_lora_delta(l, x, &drop));
        ct_tensor *loss = ct_sum(ct_mul(y, y));
        CHECK(loss && ct_backward(loss) == 0, "fused %d: %s", fused, ct_last_error());
        out[fused] = ct_tensor_new(CT_F32, 2, y->shape, "y");
        ct_copy(out[fused], y);
        for (int i = 0; i < 3; i++) {
            grads[fused][i] = ct_tensor_new(CT_F32, 2, params[i]->grad->shape, "g");
            ct_copy(grads[fused][i], params[i]->grad);
        }
        ct_scope_end();
    }
    CHECK(same_bits(out[0], out[1]), "y + s·B·A·x differs between ct_lora_add_delta and the composition");
    for (int i = 0; i < 3; i++)
        CHECK(same_bits(grads[0][i], grads[1][i]), "the gradient of %s differs", params[i]->name);
    for (int f = 0; f < 2; f++) {
        ct_tensor_free(out[f]);
        for (int i = 0; i < 3; i++) ct_tensor_free(grads[f][i]);
    }
    ct_tensor_free(x);
    ct_tensor_free(w);
    ct_lora_free(l);
}

int main(void) {
    check_lora_add_delta_matches_the_composition();
    check_axpby_beta_zero_ignores_y();
    check_views_and_sums_hand_the_gradient_down();
    check_parameters_accumulate();
    return ct_test_finish("test_grad_fresh");
}
