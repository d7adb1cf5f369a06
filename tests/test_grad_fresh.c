/* Backward without zero-filled gradient buffers: a gradient made for the first time is written,
 * not zero-filled and added to (ct_grad_target_fresh), a view or sum hands its output gradient
 * over to its input instead of copying it (ct_grad_take), and axpby with beta 0 never reads y. */
#include <math.h>
#include <string.h>

#include "autograd/ops.h"
#include "autograd/tape.h"
#include "core/arena.h"
#include "core/error.h"
#include "kernels/backend.h"
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
        ct_tensor *loss = ct_sum(ct_scale(ct_reshape(ct_scale(p, 2.0), 1, (int64_t[]){ROWS * COLS}), 0.5));
        CHECK(loss && ct_backward(loss) == 0, "pass %d: %s", pass, ct_last_error());
        CHECK(ct_get(p->grad, 5) == (double)pass, "pass %d: p's gradient %g, want %d", pass, ct_get(p->grad, 5), pass);
        ct_scope_end();
    }
    ct_tensor_free(p);
}

int main(void) {
    check_axpby_beta_zero_ignores_y();
    check_views_and_sums_hand_the_gradient_down();
    check_parameters_accumulate();
    return ct_test_finish("test_grad_fresh");
}
