/* Gradient checkpointing: gradients bit-identical to the plain run (with dropout, with the
 * input frozen so only the parameters listed to the segment make it require grad, with nested
 * segments), the peak activation memory of 8 checkpointed blocks against the plain run, no-grad
 * mode, and the errors. */
#include <string.h>
#include <time.h>

#include "core/arena.h"
#include "core/error.h"
#include "autograd/gradcheck.h"
#include "autograd/tape.h"
#include "tests/ct_test.h"
#include "tests/ct_test_block.h"

enum { MAX_BLOCKS = 8 };

typedef struct {
    int n_blocks;
    test_block blocks[MAX_BLOCKS];
    ct_tensor *embedding; /* [vocab, dim] */
    ct_tensor *probe;     /* [B, T, dim]: the loss is sum(probe * output), so every output element matters */
    ct_tensor *ids;       /* i32 [B, T] */
    int64_t B, T;
} stack;

typedef enum { PLAIN, EVERY_BLOCK, NESTED } mode;

static ct_rng rng;

static void stack_init(stack *s, int n_blocks, int64_t B, int64_t T, int64_t dim, int64_t ffn, double dropout) {
    int64_t vocab = 23;
    *s = (stack){.n_blocks = n_blocks, .B = B, .T = T};
    for (int i = 0; i < n_blocks; i++) {
        test_block_init(&s->blocks[i], dim, ffn, 4, 2, (uint32_t)i, &rng);
        s->blocks[i].dropout = dropout;
        s->blocks[i].seed = 77;
        s->blocks[i].step = 5;
    }
    s->embedding = ct_tensor_new(CT_F32, 2, (int64_t[]){vocab, dim}, "embedding");
    ct_fill_normal(s->embedding, &rng, 0, 1);
    s->embedding->requires_grad = true;
    s->probe = ct_tensor_new(CT_F32, 3, (int64_t[]){B, T, dim}, "probe");
    ct_fill_normal(s->probe, &rng, 0, 1);
    s->ids = ct_tensor_new(CT_I32, 2, (int64_t[]){B, T}, "ids");
    for (int64_t i = 0; i < B * T; i++) ((int32_t *)s->ids->data)[i] = (int32_t)ct_rng_below(&rng, (uint64_t)vocab);
}

static void stack_free(stack *s) {
    for (int i = 0; i < s->n_blocks; i++) test_block_free(&s->blocks[i]);
    ct_release_grad(&s->embedding, 1);
    ct_tensor_free(s->embedding);
    ct_tensor_free(s->probe);
    ct_tensor_free(s->ids);
}

/* Two blocks as one segment whose blocks are checkpointed themselves. */
typedef struct {
    test_block *first, *second;
    ct_tensor *params[2 * BLOCK_N_PARAMS];
} pair;

static ct_tensor *pair_forward(void *ctx, ct_tensor *const *inputs, int n) {
    (void)n;
    pair *p = ctx;
    return test_block_apply(p->second, test_block_apply(p->first, inputs[0], true), true);
}

static ct_tensor *stack_loss(stack *s, mode m) {
    ct_tensor *positions = test_block_positions(s->B, s->T);
    ct_tensor *x = ct_embedding(s->embedding, s->ids);
    pair *pairs = ct_arena_alloc(sizeof(pair) * (MAX_BLOCKS / 2)); /* read again by backward */
    for (int i = 0; i < s->n_blocks; i++) {
        s->blocks[i].positions = positions;
        if (m == NESTED && i + 1 < s->n_blocks) {
            pair *p = &pairs[i / 2];
            *p = (pair){&s->blocks[i], &s->blocks[i + 1], {0}};
            memcpy(p->params, s->blocks[i].p, sizeof s->blocks[i].p);
            memcpy(p->params + BLOCK_N_PARAMS, s->blocks[i + 1].p, sizeof s->blocks[i + 1].p);
            x = ct_checkpoint(pair_forward, p, &x, 1, p->params, 2 * BLOCK_N_PARAMS);
            i++;
            continue;
        }
        x = test_block_apply(&s->blocks[i], x, m != PLAIN);
    }
    return ct_sum(ct_mul(x, s->probe));
}

/* Every trainable tensor of the stack, in a fixed order. */
static int stack_params(stack *s, ct_tensor **out) {
    int n = 0;
    out[n++] = s->embedding;
    for (int i = 0; i < s->n_blocks; i++)
        for (int j = 0; j < BLOCK_N_PARAMS; j++) out[n++] = s->blocks[i].p[j];
    return n;
}

typedef struct {
    double loss;
    int n;
    float *grads[1 + MAX_BLOCKS * BLOCK_N_PARAMS]; /* NULL where the tensor got no gradient */
    size_t bytes[1 + MAX_BLOCKS * BLOCK_N_PARAMS];
} step_result;

static int run_step(stack *s, mode m, step_result *r) {
    ct_tensor *params[1 + MAX_BLOCKS * BLOCK_N_PARAMS];
    int n = stack_params(s, params);
    r->n = 0;
    ct_release_grad(params, n);
    ct_scope_begin();
    ct_tensor *loss = stack_loss(s, m);
    int status = loss ? ct_backward(loss) : -1;
    if (status == 0) {
        r->loss = ct_get(loss, 0);
        r->n = n;
        for (int i = 0; i < n; i++) {
            r->grads[i] = NULL;
            if (!params[i]->grad) continue;
            r->bytes[i] = ct_nbytes(params[i]->grad);
            r->grads[i] = malloc(r->bytes[i]);
            memcpy(r->grads[i], params[i]->grad->data, r->bytes[i]);
        }
    }
    ct_scope_end();
    return status;
}

static void free_result(step_result *r) {
    for (int i = 0; i < r->n; i++) free(r->grads[i]);
}

static void expect_identical(const char *what, const step_result *plain, const step_result *ckpt) {
    CHECK(memcmp(&plain->loss, &ckpt->loss, sizeof plain->loss) == 0, "%s: loss %a vs %a", what, plain->loss, ckpt->loss);
    int identical = 0, with_grad = 0;
    for (int i = 0; i < plain->n; i++) {
        CHECK((plain->grads[i] == NULL) == (ckpt->grads[i] == NULL), "%s: tensor %d has a gradient in only one run", what, i);
        if (!plain->grads[i] || !ckpt->grads[i]) continue;
        with_grad++;
        if (memcmp(plain->grads[i], ckpt->grads[i], plain->bytes[i]) == 0) identical++;
    }
    CHECK(identical == with_grad, "%s: %d of %d gradients bit-identical", what, identical, with_grad);
    printf("%-48s loss %a, %d gradients bit-identical\n", what, ckpt->loss, identical);
}

static void test_bit_identical(mode m, const char *what, bool freeze_embedding, bool adapter_only) {
    stack s;
    stack_init(&s, 4, 2, 13, 40, 72, 0.15);
    s.embedding->requires_grad = !freeze_embedding;
    if (adapter_only)
        for (int i = 0; i < s.n_blocks; i++)
            for (int j = 0; j < BLOCK_N_PARAMS; j++) s.blocks[i].p[j]->requires_grad = j == BLOCK_Q;
    step_result plain, ckpt;
    CHECK(run_step(&s, PLAIN, &plain) == 0, "%s: plain step: %s", what, ct_last_error());
    CHECK(run_step(&s, m, &ckpt) == 0, "%s: checkpointed step: %s", what, ct_last_error());
    expect_identical(what, &plain, &ckpt);
    int expected = 0;
    for (int i = 0; i < plain.n; i++) expected += ckpt.grads[i] != NULL;
    int trainable = adapter_only ? s.n_blocks : s.n_blocks * BLOCK_N_PARAMS;
    CHECK(expected == trainable + !freeze_embedding, "%s: %d tensors got gradients, expected %d", what, expected,
          trainable + !freeze_embedding);
    free_result(&plain);
    free_result(&ckpt);
    stack_free(&s);
}

static void test_dropout_changes_result(void) {
    /* Guards the bit-identity test against a dropout that does nothing. */
    stack s;
    stack_init(&s, 2, 2, 13, 40, 72, 0.15);
    step_result with, without;
    run_step(&s, PLAIN, &with);
    for (int i = 0; i < s.n_blocks; i++) s.blocks[i].dropout = 0;
    run_step(&s, PLAIN, &without);
    CHECK(with.loss != without.loss, "dropout 0.15 left the loss unchanged (%g)", with.loss);
    free_result(&with);
    free_result(&without);
    stack_free(&s);
}

static double seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Peak arena bytes above what was in use before the step, and the step's time. */
static size_t peak_step_bytes(stack *s, mode m, double *time) {
    ct_tensor *params[1 + MAX_BLOCKS * BLOCK_N_PARAMS];
    int n = stack_params(s, params);
    ct_zero_grad(params, n);
    size_t before = ct_memory_get_stats(CT_CPU).in_use;
    ct_memory_reset_peak();
    double start = seconds();
    ct_scope_begin();
    ct_tensor *loss = stack_loss(s, m);
    CHECK(loss && ct_backward(loss) == 0, "memory step: %s", ct_last_error());
    ct_scope_end();
    *time = seconds() - start;
    return ct_memory_get_stats(CT_CPU).peak_in_use - before;
}

static void test_memory_ratio(void) {
    stack s;
    stack_init(&s, 8, 2, 128, 96, 256, 0.1);
    s.embedding->requires_grad = false;
    double t_plain = 1e9, t_ckpt = 1e9, t;
    size_t plain = 0, ckpt = 0;
    for (int rep = 0; rep < 3; rep++) { /* the first run of each sizes the arenas */
        plain = peak_step_bytes(&s, PLAIN, &t);
        if (t < t_plain) t_plain = t;
        ckpt = peak_step_bytes(&s, EVERY_BLOCK, &t);
        if (t < t_ckpt) t_ckpt = t;
    }
    double ratio = (double)ckpt / (double)plain;
    printf("8 blocks, B 2, T 128, dim 96, ffn 256: peak activations plain %.2f MB, checkpointed %.2f MB, "
           "ratio %.3f; step %.1f ms vs %.1f ms (%.2fx)\n",
           plain / 1e6, ckpt / 1e6, ratio, 1e3 * t_plain, 1e3 * t_ckpt, t_ckpt / t_plain);
    CHECK(ratio <= 0.25, "checkpointed peak is %.3f of the plain run's (measured 0.178; bound 0.25)", ratio);
    CHECK(ckpt > 0, "no memory was measured");
    stack_free(&s);
}

static void test_no_grad_mode(void) {
    stack s;
    stack_init(&s, 1, 1, 7, 40, 72, 0.2);
    ct_scope_begin();
    ct_tensor *positions = test_block_positions(1, 7);
    s.blocks[0].positions = positions;
    ct_tensor *x = ct_embedding(s.embedding, s.ids);
    bool was = ct_set_grad_enabled(false);
    ct_tensor *plain = test_block_apply(&s.blocks[0], x, false);
    ct_tensor *ckpt = test_block_apply(&s.blocks[0], x, true);
    ct_set_grad_enabled(was);
    CHECK(plain && ckpt && memcmp(plain->data, ckpt->data, ct_nbytes(plain)) == 0, "no-grad outputs differ");
    CHECK(ckpt && !ckpt->node && !ckpt->requires_grad, "no-grad mode recorded a node");
    ct_scope_end();
    stack_free(&s);
}

static ct_tensor *identity_segment(void *ctx, ct_tensor *const *inputs, int n) {
    (void)ctx, (void)n;
    return inputs[0];
}

static ct_tensor *outside_segment(void *ctx, ct_tensor *const *inputs, int n) {
    (void)inputs, (void)n;
    return ctx; /* a tensor computed outside the segment: not a function of its inputs */
}

/* A segment reading more tensors than any fixed list would hold (a block with adapters, masks
 * and scales beside its weights): x * w_0 * w_1 * ... with every w_i a parameter the segment is
 * told about. Its gradients must equal the plain run's bit for bit. */
enum { MANY_PARAMS = 100 };

static ct_tensor *product_segment(void *ctx, ct_tensor *const *inputs, int n) {
    (void)n;
    ct_tensor *const *w = ctx, *y = inputs[0];
    for (int i = 0; i < MANY_PARAMS; i++) y = ct_mul(y, w[i]);
    return y;
}

static void test_many_params(void) {
    ct_scope_begin();
    ct_tensor *x = ct_random_input(&rng, 2, (int64_t[]){3, 5});
    ct_tensor *w[MANY_PARAMS];
    for (int i = 0; i < MANY_PARAMS; i++) {
        w[i] = ct_tensor_new(CT_F64, 2, (int64_t[]){3, 5}, "w");
        ct_fill_uniform(w[i], &rng, 0.9, 1.1);
        w[i]->requires_grad = true;
    }
    double plain_x[15], plain_w[15];
    ct_tensor *loss = ct_sum(product_segment(w, &x, 1));
    int status = loss ? ct_backward(loss) : -1;
    for (int e = 0; status == 0 && e < 15; e++) plain_x[e] = ct_get(x->grad, e), plain_w[e] = ct_get(w[57]->grad, e);
    x->grad = NULL;
    ct_zero_grad(w, MANY_PARAMS);
    ct_tensor *y = status == 0 ? ct_checkpoint(product_segment, w, &x, 1, w, MANY_PARAMS) : NULL;
    loss = ct_sum(y);
    status = loss ? ct_backward(loss) : -1;
    CHECK(status == 0, "%d parameters in one segment: %s", MANY_PARAMS, ct_last_error());
    bool same = status == 0;
    for (int e = 0; same && e < 15; e++) same = ct_get(x->grad, e) == plain_x[e] && ct_get(w[57]->grad, e) == plain_w[e];
    CHECK(same, "%d parameters in one segment: gradients differ from the plain run", MANY_PARAMS);
    for (int i = 0; i < MANY_PARAMS; i++) ct_tensor_free(w[i]);
    ct_scope_end();
}

static void test_errors(void) {
    ct_scope_begin();
    ct_tensor *x = ct_random_input(&rng, 2, (int64_t[]){3, 5});
    CHECK(!ct_checkpoint(identity_segment, NULL, &x, 1, NULL, -1) && strstr(ct_last_error(), "negative"),
          "a negative parameter count must be refused: %s", ct_last_error());
    CHECK(ct_checkpoint(identity_segment, NULL, &x, 1, NULL, 0) == x, "an identity segment must return its input");

    /* A segment that hands back a tensor it did not compute is caught at backward. */
    ct_tensor *w = ct_random_input(&rng, 2, (int64_t[]){3, 5});
    ct_tensor *outside = ct_scale(w, 2.0);
    ct_tensor *y = ct_checkpoint(outside_segment, outside, &x, 1, NULL, 0);
    ct_tensor *loss = ct_sum(y);
    CHECK(loss && ct_backward(loss) < 0 && strstr(ct_last_error(), "did not compute"), "message: %s",
          ct_last_error());
    ct_scope_end();
}

int main(void) {
    ct_rng_seed(&rng, 2026);
    test_bit_identical(EVERY_BLOCK, "every block, dropout 0.15", false, false);
    test_bit_identical(EVERY_BLOCK, "frozen embedding (input needs no grad)", true, false);
    test_bit_identical(EVERY_BLOCK, "frozen embedding and weights, q trainable", true, true);
    test_bit_identical(NESTED, "nested segments", false, false);
    test_dropout_changes_result();
    test_no_grad_mode();
    test_many_params();
    test_errors();
    test_memory_ratio();
    ct_memory_release_all();
    return ct_test_finish("test_checkpoint");
}
