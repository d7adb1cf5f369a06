/* The loss on the rows that have a target only (ct_llama_target_rows_loss): the same loss and
 * gradients as the cross-entropy of the full logits, without the [B·T, V] logits of the rows
 * that have none. */
#include <math.h>
#include <string.h>

#include "autograd/ops.h"
#include "autograd/tape.h"
#include "core/arena.h"
#include "core/error.h"
#include "models/llama.h"
#include "tests/ct_test.h"

#define BATCH 3
#define SEQ 24
#define VOCAB 509

static ct_llama *tiny_model(void) {
    ct_llama_config c;
    ct_llama_config_defaults(&c, CT_ARCH_LLAMA);
    c.hidden_size = 32;
    c.intermediate_size = 56;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 2;
    c.head_dim = 8;
    c.vocab_size = VOCAB;
    c.tie_word_embeddings = true;
    ct_llama *m = ct_llama_new(&c);
    if (m) ct_llama_init_random(m, 77);
    return m;
}

/* Ids, and targets on the last 3 positions of each row only (an answer after a prompt). */
static void make_batch(ct_tensor *ids, ct_tensor *targets) {
    for (int64_t i = 0; i < BATCH * SEQ; i++) {
        ct_set(ids, i, (double)((i * 7919 + 13) % VOCAB));
        ct_set(targets, i, i % SEQ >= SEQ - 3 ? (double)((i * 104729 + 5) % VOCAB) : -100.0);
    }
}

typedef struct {
    double loss;
    size_t peak;
    ct_tensor **grads;
} outcome;

static outcome run(ct_llama *m, bool kept_rows) {
    outcome o = {0};
    ct_zero_grad(m->params, m->n_params);
    ct_memory_reset_peak();
    const size_t before = ct_memory_get_stats(CT_CPU).in_use;
    ct_scope_begin();
    const int64_t shape[2] = {BATCH, SEQ};
    ct_tensor *ids = ct_empty(CT_I32, 2, shape), *targets = ct_empty(CT_I32, 2, shape);
    make_batch(ids, targets);
    ct_llama_forward_args args = {.training = true};
    bool used = false;
    ct_tensor *loss = kept_rows ? ct_llama_target_rows_loss(m, ids, targets, BATCH * 3, &args, &used)
                                : ct_cross_entropy(ct_llama_forward(m, ids, &args), targets, CT_REDUCE_SUM);
    CHECK(!kept_rows || used, "a batch with 9 targets in 72 rows was not taken");
    CHECK(loss && ct_backward(loss) == 0, "%s: %s", kept_rows ? "kept rows" : "full", ct_last_error());
    o.loss = loss ? ct_get(loss, 0) : NAN;
    o.peak = ct_memory_get_stats(CT_CPU).peak_in_use - before;
    ct_scope_end();
    o.grads = calloc((size_t)m->n_params, sizeof *o.grads);
    for (int i = 0; i < m->n_params; i++) {
        o.grads[i] = ct_tensor_new(CT_F32, m->params[i]->ndim, m->params[i]->shape, "g");
        ct_copy(o.grads[i], m->params[i]->grad);
    }
    return o;
}

static double relative_error(const ct_tensor *a, const ct_tensor *b) {
    double diff = 0, norm = 0;
    for (int64_t i = 0; i < ct_numel(a); i++) {
        const double d = ct_get(a, i) - ct_get(b, i);
        diff += d * d;
        norm += ct_get(b, i) * ct_get(b, i);
    }
    return norm > 0 ? sqrt(diff / norm) : sqrt(diff);
}

int main(void) {
    ct_llama *m = tiny_model();
    CHECK(m != NULL, "model: %s", ct_last_error());
    if (!m) return ct_test_finish("test_llama_target_loss");
    for (int i = 0; i < m->n_params; i++) m->params[i]->requires_grad = true;
    outcome full = run(m, false), kept = run(m, true);
    const double loss_error = fabs(kept.loss - full.loss) / full.loss;
    printf("loss: full logits %.9g, target rows only %.9g (relative %.2e)\n", full.loss, kept.loss, loss_error);
    CHECK(loss_error < 1e-6, "losses differ: %.9g vs %.9g", kept.loss, full.loss);
    double worst = 0;
    for (int i = 0; i < m->n_params; i++) {
        const double e = relative_error(kept.grads[i], full.grads[i]);
        if (e > worst) worst = e;
        CHECK(e < 1e-5, "the gradient of %s differs by %.3g", m->params[i]->name, e);
    }
    printf("gradients: largest relative difference %.2e over %d parameters\n", worst, m->n_params);
    /* the ignored rows' logits, f32: 63 x 509 x 4 bytes that never exist (and their gradient) */
    const size_t ignored = (size_t)(BATCH * SEQ - BATCH * 3) * VOCAB * sizeof(float);
    printf("arena peak: full logits %zu bytes, target rows only %zu (ignored rows' logits: %zu)\n", full.peak,
           kept.peak, ignored);
    CHECK(kept.peak + ignored <= full.peak, "peak %zu with target rows only, %zu with all rows", kept.peak, full.peak);
    for (int i = 0; i < m->n_params; i++) {
        ct_tensor_free(full.grads[i]);
        ct_tensor_free(kept.grads[i]);
    }
    free(full.grads);
    free(kept.grads);
    ct_llama_free(m);
    return ct_test_finish("test_llama_target_loss");
}
