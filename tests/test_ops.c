/* Gradient checks of the first ops (f64 central differences, odd sizes, random inputs), the f32
 * vs f64 comparison, and the errors a bad shape or dtype must produce. */
#include <string.h>

#include "core/arena.h"
#include "core/error.h"
#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "core/rng.h"
#include "autograd/tape.h"
#include "tests/ct_test.h"
#include "tests/ct_test_gradcheck.h"
#include "tests/ct_test_op_fns.h"


static ct_rng rng;


static ct_tensor *rand_in(int ndim, const int64_t *shape) { return ct_random_input(&rng, ndim, shape); }

static ct_tensor *ids_tensor(int64_t n, int64_t vocab, bool with_ignored) {
    ct_tensor *t = ct_empty(CT_I32, 1, &n);
    for (int64_t i = 0; i < n; i++)
        ct_set(t, i, with_ignored && i % 4 == 1 ? -100 : (double)ct_rng_below(&rng, (uint64_t)vocab));
    return t;
}

static void check_matmul(void) {
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            int flags[2] = {ta, tb};
            int64_t M = 7, K = 5, N = 3;
            ct_tensor *a = rand_in(2, ta ? (int64_t[]){K, M} : (int64_t[]){M, K});
            ct_tensor *b = rand_in(2, tb ? (int64_t[]){N, K} : (int64_t[]){K, N});
            char name[64];
            snprintf(name, sizeof name, "matmul ta=%d tb=%d", ta, tb);
            expect_gradcheck(name, fn_matmul, (ct_tensor *[]){a, b}, 2, flags);
        }
    int flags[2] = {0, 1}; /* a linear layer on a [batch, time, in] activation */
    ct_tensor *x = rand_in(3, (int64_t[]){2, 3, 5}), *w = rand_in(2, (int64_t[]){7, 5});
    expect_gradcheck("matmul 3-D linear", fn_matmul, (ct_tensor *[]){x, w}, 2, flags);
}

static void check_elementwise(void) {
    ct_tensor *a = rand_in(2, (int64_t[]){5, 7}), *b = rand_in(2, (int64_t[]){5, 7});
    ct_tensor *row = rand_in(1, (int64_t[]){7});
    expect_gradcheck("add", fn_add, (ct_tensor *[]){a, b}, 2, NULL);
    expect_gradcheck("add row broadcast", fn_add, (ct_tensor *[]){a, row}, 2, NULL);
    expect_gradcheck("mul", fn_mul, (ct_tensor *[]){a, b}, 2, NULL);
    expect_gradcheck("mul row broadcast", fn_mul, (ct_tensor *[]){a, row}, 2, NULL);
    expect_gradcheck("scale", fn_scale, (ct_tensor *[]){a}, 1, NULL);
    expect_gradcheck("add_scaled", fn_add_scaled, (ct_tensor *[]){a, b}, 2, NULL);
    expect_gradcheck("tanh", fn_tanh, (ct_tensor *[]){a}, 1, NULL);
    expect_gradcheck("sum", fn_sum, (ct_tensor *[]){rand_in(3, (int64_t[]){3, 5, 7})}, 1, NULL);
    expect_gradcheck("mean", fn_mean, (ct_tensor *[]){a}, 1, NULL);
    expect_gradcheck("reshape and slice views", fn_views, (ct_tensor *[]){rand_in(2, (int64_t[]){5, 6})}, 1, NULL);
}

static void check_embedding_and_losses(void) {
    ct_tensor *table = rand_in(2, (int64_t[]){11, 5});
    ct_tensor *ids = ct_empty(CT_I32, 2, (int64_t[]){3, 3});
    int32_t values[9] = {3, 0, 3, 10, 7, 3, 1, 0, 10}; /* repeats accumulate */
    memcpy(ids->data, values, sizeof values);
    expect_gradcheck("embedding", fn_embedding, (ct_tensor *[]){table, ids}, 2, NULL);

    ct_tensor *logits = rand_in(2, (int64_t[]){9, 13});
    expect_gradcheck("log_softmax", fn_log_softmax, (ct_tensor *[]){logits}, 1, NULL);
    ct_reduction mean = CT_REDUCE_MEAN, sum = CT_REDUCE_SUM;
    ct_tensor *targets = ids_tensor(9, 13, true);
    expect_gradcheck("cross_entropy mean, ignore", fn_cross_entropy, (ct_tensor *[]){logits, targets}, 2, &mean);
    expect_gradcheck("cross_entropy sum, ignore", fn_cross_entropy, (ct_tensor *[]){logits, targets}, 2, &sum);
}

/* Cross-entropy equals -mean(log_softmax[target]) computed independently. */
static void check_cross_entropy_value(void) {
    ct_tensor *logits = rand_in(2, (int64_t[]){6, 5});
    ct_tensor *targets = ids_tensor(6, 5, true);
    ct_tensor *loss = ct_cross_entropy(logits, targets, CT_REDUCE_MEAN);
    double expected = 0;
    int count = 0;
    for (int r = 0; r < 6; r++) {
        int t = (int)ct_get(targets, r);
        if (t == -100) continue;
        double max = -1e300, total = 0;
        for (int c = 0; c < 5; c++) max = fmax(max, ct_get(logits, r * 5 + c));
        for (int c = 0; c < 5; c++) total += exp(ct_get(logits, r * 5 + c) - max);
        expected += max + log(total) - ct_get(logits, r * 5 + t);
        count++;
    }
    expected /= count;
    CHECK(loss && fabs(ct_get(loss, 0) - expected) < 1e-12, "cross_entropy %.17g, expected %.17g",
          loss ? ct_get(loss, 0) : NAN, expected);
}

/* f32 rows longer than the kernels' spans (1024 columns): cross-entropy's loss and gradient and
 * log-softmax against double formulas (softmax - onehot, divided by the target count). */
static void check_long_rows_f32(void) {
    enum { R = 7, V = 3001 };
    ct_tensor *logits = ct_empty(CT_F32, 2, (int64_t[]){R, V});
    ct_fill_normal(logits, &rng, 0.0, 3.0);
    logits->requires_grad = true;
    ct_tensor *targets = ids_tensor(R, V, true);
    ct_tensor *loss = ct_cross_entropy(logits, targets, CT_REDUCE_MEAN);
    CHECK(loss && ct_backward(loss) == 0, "cross_entropy f32 [7, 3001]: %s", ct_last_error());
    double expected = 0, worst_grad = 0, lse[R];
    int count = 0;
    for (int r = 0; r < R; r++) {
        double max = -1e300, total = 0;
        for (int c = 0; c < V; c++) max = fmax(max, ct_get(logits, r * V + c));
        for (int c = 0; c < V; c++) total += exp(ct_get(logits, r * V + c) - max);
        lse[r] = max + log(total);
        int t = (int)ct_get(targets, r);
        if (t == -100) continue;
        expected += lse[r] - ct_get(logits, r * V + t);
        count++;
    }
    for (int r = 0; r < R && logits->grad; r++) {
        int t = (int)ct_get(targets, r);
        for (int c = 0; c < V; c++) {
            double g = t == -100 ? 0 : (exp(ct_get(logits, r * V + c) - lse[r]) - (c == t)) / count;
            worst_grad = fmax(worst_grad, fabs(ct_get(logits->grad, r * V + c) - g));
        }
    }
    expected /= count;
    CHECK(loss && fabs(ct_get(loss, 0) - expected) < 1e-5 * fabs(expected), "cross_entropy f32 %.9g, expected %.9g",
          loss ? ct_get(loss, 0) : NAN, expected);
    CHECK(logits->grad && worst_grad < 1e-7, "cross_entropy f32 gradient: worst absolute error %.3g", worst_grad);
    ct_tensor *y = ct_log_softmax(logits);
    double worst = 0;
    for (int r = 0; r < R && y; r++)
        for (int c = 0; c < V; c++)
            worst = fmax(worst, fabs(ct_get(y, r * V + c) - (ct_get(logits, r * V + c) - lse[r])));
    CHECK(y && worst < 1e-5, "log_softmax f32 [7, 3001]: worst absolute error %.3g", worst);
}

static void expect_error(ct_tensor *result, const char *needle, const char *what) {
    CHECK(result == NULL, "%s: expected an error", what);
    CHECK(strstr(ct_last_error(), needle) != NULL, "%s: message '%s' lacks '%s'", what, ct_last_error(), needle);
}

static void check_bad_input(void) {
    ct_tensor *a = rand_in(2, (int64_t[]){3, 7}), *b = rand_in(2, (int64_t[]){5, 4});
    expect_error(ct_matmul(a, b, false, false), "matmul: a [3, 7] f64 and b [5, 4] f64", "matmul inner dims");
    expect_error(ct_add(a, rand_in(2, (int64_t[]){7, 3})), "add: a [3, 7] f64 and b [7, 3] f64", "add no silent broadcast");
    expect_error(ct_mul(a, rand_in(1, (int64_t[]){3})), "mul: a [3, 7] f64 and b [3] f64", "mul column is not a row");
    ct_tensor *a32 = ct_empty(CT_F32, 2, (int64_t[]){3, 7});
    ct_fill(a32, 1.5);
    expect_error(ct_add(a, a32), "share a real dtype", "no dtype promotion");
    expect_error(ct_reshape(a, 2, (int64_t[]){4, 5}), "reshape: [3, 7] f64 has 21 elements", "reshape count");
    expect_error(ct_slice_rows(a, 2, 2), "out of range", "slice range");
    ct_tensor *targets = ids_tensor(3, 7, false);
    ct_set(targets, 1, 9);
    expect_error(ct_cross_entropy(a, targets, CT_REDUCE_MEAN), "target 9 at row 1", "target out of range");
    ct_tensor *table = rand_in(2, (int64_t[]){4, 3}), *ids = ids_tensor(2, 4, false);
    ct_set(ids, 0, 4);
    expect_error(ct_embedding(table, ids), "token id 4 at position 0", "id out of range");
    /* A NULL input propagates without replacing the first message. */
    ct_fail("first failure");
    CHECK(ct_add(NULL, a) == NULL && strcmp(ct_last_error(), "first failure") == 0, "NULL propagation");
}

int main(void) {
    ct_rng_seed(&rng, 2024);
    ct_scope_begin();
    check_matmul();
    check_elementwise();
    check_embedding_and_losses();
    check_cross_entropy_value();
    check_long_rows_f32();
    check_bad_input();
    ct_scope_end();
    return ct_test_finish("test_ops");
}
