/* The first proof (an MLP memorizes a toy task with AdamW; two runs are bit-identical; memory
 * stays flat), the tape's contracts, and AdamW / clipping against independent formulas. */
#include <math.h>
#include <string.h>

#include "core/arena.h"
#include "core/error.h"
#include "autograd/ops.h"
#include "core/rng.h"
#include "autograd/tape.h"
#include "tests/ct_test.h"
#include "train/optim.h"
#include "train/toy_task.h"

static void check_toy_task(void) {
    ct_toy_config config = ct_toy_default_config();
    double first[300], second[300];
    ct_toy_report a = {.losses = first}, b = {.losses = second};
    CHECK(ct_toy_train(&config, &a) == 0, "toy run 1: %s", ct_last_error());
    CHECK(ct_toy_train(&config, &b) == 0, "toy run 2: %s", ct_last_error());
    int last = config.steps - 1;
    printf("toy task: loss %.4f -> %.6f (%a)\n", first[0], first[last], first[last]);
    CHECK(first[0] > 1.0, "initial loss %.4f should be near log(7)", first[0]);
    CHECK(first[last] < 0.01, "final loss %.6f is not near zero", first[last]);
    CHECK(memcmp(first, second, sizeof first) == 0, "two runs differ: %a vs %a", first[last], second[last]);
}

static void check_memory_is_flat(void) {
    ct_toy_config config = ct_toy_default_config();
    config.steps = 3000;
    static double losses[3000];
    ct_toy_report r = {.losses = losses};
    CHECK(ct_toy_train(&config, &r) == 0, "long toy run: %s", ct_last_error());
    printf("memory: %zu bytes reserved after step 1, %zu after step %d; %llu -> %llu system allocations\n",
           r.reserved_after_first, r.reserved_at_end, config.steps,
           (unsigned long long)r.chunk_allocations_after_first, (unsigned long long)r.chunk_allocations_at_end);
    CHECK(r.reserved_at_end == r.reserved_after_first, "arena grew from %zu to %zu bytes", r.reserved_after_first,
          r.reserved_at_end);
    CHECK(r.chunk_allocations_at_end == r.chunk_allocations_after_first, "arenas asked the system for memory "
          "after the first step (%llu -> %llu)", (unsigned long long)r.chunk_allocations_after_first,
          (unsigned long long)r.chunk_allocations_at_end);
}

/* A step that outgrows the first chunk: after one reset the arena is one coalesced chunk and
 * later steps of the same shape ask the system for nothing. */
static void check_arena_coalescing(void) {
    uint64_t after_first = 0;
    size_t reserved_first = 0;
    for (int step = 0; step < 1000; step++) {
        ct_scope_begin();
        int failures = 0;
        for (int i = 0; i < 24; i++) failures += ct_arena_alloc(300000 + 1000 * i) == NULL;
        ct_scope_begin(); /* a nested segment's temporaries */
        failures += ct_arena_alloc(2500000) == NULL;
        ct_scope_end();
        ct_scope_end();
        if (failures) CHECK(failures == 0, "step %d: %d allocations failed: %s", step, failures, ct_last_error());
        ct_memory_stats stats = ct_memory_get_stats(CT_CPU);
        if (step == 0) {
            after_first = stats.chunk_allocations;
            reserved_first = stats.reserved;
        } else if (step == 999) {
            CHECK(stats.chunk_allocations == after_first, "system allocations went %llu -> %llu",
                  (unsigned long long)after_first, (unsigned long long)stats.chunk_allocations);
            CHECK(stats.reserved == reserved_first, "reserved went %zu -> %zu", reserved_first, stats.reserved);
            CHECK(stats.in_use == 0, "%zu bytes still in use at depth 0", stats.in_use);
        }
    }
}

static ct_tensor *param(ct_rng *rng, int64_t rows, int64_t cols, bool trainable) {
    ct_tensor *p = ct_tensor_new(CT_F32, 2, (int64_t[]){rows, cols}, trainable ? "trainable" : "frozen");
    ct_fill_normal(p, rng, 0.0, 1.0);
    p->requires_grad = trainable;
    return p;
}

static void check_tape(void) {
    ct_rng rng;
    ct_rng_seed(&rng, 99);
    ct_tensor *w = param(&rng, 5, 3, true), *frozen = param(&rng, 5, 3, false);
    ct_scope_begin();
    ct_tensor *x = ct_empty(CT_F32, 2, (int64_t[]){4, 3});
    ct_fill_normal(x, &rng, 0.0, 1.0);

    /* Frozen weights get no gradient and no gradient memory. */
    ct_tensor *loss = ct_sum(ct_add(ct_matmul(x, w, false, true), ct_matmul(x, frozen, false, true)));
    CHECK(ct_backward(loss) == 0, "backward: %s", ct_last_error());
    CHECK(frozen->grad == NULL, "a frozen tensor got a gradient buffer");
    CHECK(w->grad != NULL, "the trainable weight got no gradient");
    float once[15];
    memcpy(once, w->grad->data, sizeof once);

    /* A second backward accumulates: the gradient doubles exactly. */
    CHECK(ct_backward(ct_sum(ct_matmul(x, w, false, true))) == 0, "second backward: %s", ct_last_error());
    int doubled = 1;
    for (int i = 0; i < 15; i++) doubled &= ((float *)w->grad->data)[i] == 2 * once[i];
    CHECK(doubled, "gradients did not accumulate across backward calls");

    ct_zero_grad(&w, 1);
    CHECK(ct_get(w->grad, 0) == 0 && ct_get(w->grad, 14) == 0, "zero_grad left values");
    ct_release_grad(&w, 1);
    CHECK(w->grad == NULL, "release_grad kept the buffer");

    /* No-grad mode records nothing and produces outputs that do not require grad. */
    ct_node *top = ct_tape_top();
    bool previous = ct_set_grad_enabled(false);
    ct_tensor *y = ct_matmul(x, w, false, true);
    ct_set_grad_enabled(previous);
    CHECK(ct_tape_top() == top && y && !y->requires_grad, "no-grad mode recorded a node");
    CHECK(ct_backward(ct_sum(y)) < 0 && strstr(ct_last_error(), "does not depend"), "backward without a tape: %s",
          ct_last_error());

    /* A scope's temporaries (and tape nodes) die with it. */
    size_t before = ct_memory_get_stats(CT_CPU).in_use;
    ct_scope_begin();
    for (int i = 0; i < 10; i++) y = ct_tanh(ct_matmul(x, w, false, true));
    CHECK(ct_memory_get_stats(CT_CPU).in_use > before, "the inner scope allocated nothing");
    ct_scope_end();
    CHECK(ct_memory_get_stats(CT_CPU).in_use == before, "inner scope leaked %zu bytes",
          ct_memory_get_stats(CT_CPU).in_use - before);
    CHECK(ct_tape_top() == top, "the inner scope's nodes stayed on the tape");
    ct_scope_end();
    ct_tensor_free(w);
    ct_tensor_free(frozen);
}

/* PyTorch's AdamW, written out independently in double precision. */
static void reference_adamw(double *p, const double *g, double *m, double *v, int n, double lr, double wd, int step) {
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    for (int i = 0; i < n; i++) {
        p[i] *= 1 - lr * wd;
        m[i] = b1 * m[i] + (1 - b1) * g[i];
        v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
        double m_hat = m[i] / (1 - pow(b1, step)), v_hat = v[i] / (1 - pow(b2, step));
        p[i] -= lr * m_hat / (sqrt(v_hat) + eps);
    }
}

static void check_adamw_and_clipping(void) {
    enum { N = 37 };
    ct_rng rng;
    ct_rng_seed(&rng, 5);
    ct_tensor *p = ct_tensor_new(CT_F64, 1, (int64_t[]){N}, "p");
    p->requires_grad = true;
    ct_fill_normal(p, &rng, 0.0, 1.0);
    p->grad = ct_tensor_new(CT_F64, 1, (int64_t[]){N}, NULL);
    double ref_p[N], ref_m[N] = {0}, ref_v[N] = {0};
    memcpy(ref_p, p->data, sizeof ref_p);
    ct_adamw *opt = ct_adamw_new(&p, 1, (ct_adamw_hparams){1e-2, 0.9, 0.999, 1e-8, 0.1});
    CHECK(opt != NULL, "adamw_new: %s", ct_last_error());
    for (int step = 1; step <= 5 && opt; step++) {
        ct_fill_normal(p->grad, &rng, 0.0, 1.0);
        reference_adamw(ref_p, p->grad->data, ref_m, ref_v, N, 1e-2, 0.1, step);
        ct_adamw_step(opt);
    }
    ct_tensor *ref = ct_tensor_new(CT_F64, 1, (int64_t[]){N}, "ref");
    memcpy(ref->data, ref_p, sizeof ref_p);
    double diff = 0, norm = 0;
    for (int i = 0; i < N; i++) {
        diff += pow(ct_get(p, i) - ref_p[i], 2);
        norm += ref_p[i] * ref_p[i];
    }
    CHECK(sqrt(diff / norm) < 1e-14, "adamw differs from the reference by %.3g", sqrt(diff / norm));

    double expected = 0, got;
    for (int i = 0; i < N; i++) expected += ct_get(p->grad, i) * ct_get(p->grad, i);
    expected = sqrt(expected);
    CHECK(ct_clip_grad_norm(&p, 1, expected / 4, &got) == 0 && fabs(got - expected) < 1e-12, "norm %.17g vs %.17g",
          got, expected);
    double after;
    ct_grad_global_norm(&p, 1, &after);
    CHECK(fabs(after - expected / 4) < 1e-6 * expected, "clipped norm %.9g, expected %.9g", after, expected / 4);
    ct_set(p->grad, 3, NAN);
    CHECK(ct_clip_grad_norm(&p, 1, 1.0, &got) < 0 && strstr(ct_last_error(), "not finite"), "NaN norm: %s",
          ct_last_error());
    ct_tensor *frozen = ct_tensor_new(CT_F32, 1, (int64_t[]){3}, "model.norm.weight");
    CHECK(ct_adamw_new(&frozen, 1, opt->hparams) == NULL && strstr(ct_last_error(), "model.norm.weight"),
          "a frozen parameter was accepted: %s", ct_last_error());
    ct_adamw_free(opt);
    ct_tensor_free(p);
    ct_tensor_free(ref);
    ct_tensor_free(frozen);
}

int main(void) {
    check_toy_task();
    check_memory_is_flat();
    check_arena_coalescing();
    check_tape();
    check_adamw_and_clipping();
    ct_memory_release_all();
    return ct_test_finish("test_training");
}
