/* Residual dropout of the LLaMA model in training: it changes the loss by the expected amount,
 * its masks depend on (seed, step) and nothing else, gradient checkpointing with dropout gives
 * gradients bit-identical to the plain run (the recomputation redraws the same masks), and
 * dropout is refused with a KV cache or out of range. */
#include <string.h>

#include "core/arena.h"
#include "core/error.h"
#include "autograd/ops.h"
#include "core/rng.h"
#include "autograd/tape.h"
#include "models/llama.h"
#include "tests/ct_test.h"

enum { B = 2, T = 13 };

static ct_llama *tiny_model(void) {
    ct_llama_config c;
    ct_llama_config_defaults(&c, CT_ARCH_QWEN3);
    c.hidden_size = 40;
    c.intermediate_size = 72;
    c.num_hidden_layers = 3;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 2;
    c.head_dim = 10;
    c.vocab_size = 97;
    c.initializer_range = 0.2;
    ct_llama *m = ct_llama_new(&c);
    if (m) ct_llama_init_random(m, 99);
    return m;
}

static ct_tensor *random_ids(ct_rng *rng, int64_t vocab) {
    ct_tensor *ids = ct_empty(CT_I32, 2, (int64_t[]){B, T});
    for (int64_t i = 0; i < B * T; i++) ((int32_t *)ids->data)[i] = (int32_t)ct_rng_below(rng, (uint64_t)vocab);
    return ids;
}

typedef struct {
    double loss;
    float *grads[64];
    int n;
} result;

/* Loss (and, with grads, every parameter gradient) of one training forward. */
static int run(ct_llama *m, ct_tensor *ids, ct_tensor *labels, double p, uint64_t step, bool grads, result *r) {
    ct_release_grad(m->params, m->n_params);
    ct_scope_begin();
    ct_llama_forward_args args = {.dropout = p, .dropout_seed = 5, .step = step};
    ct_tensor *loss = ct_llama_loss(ct_llama_forward(m, ids, &args), labels);
    int rc = loss ? 0 : -1;
    if (rc == 0) r->loss = ct_get(loss, 0);
    if (rc == 0 && grads) rc = ct_backward(loss);
    r->n = 0;
    for (int i = 0; rc == 0 && grads && i < m->n_params; i++) {
        size_t bytes = ct_nbytes(m->params[i]->grad);
        r->grads[r->n] = malloc(bytes);
        memcpy(r->grads[r->n++], m->params[i]->grad->data, bytes);
    }
    ct_scope_end();
    return rc;
}

static void free_result(result *r) {
    for (int i = 0; i < r->n; i++) free(r->grads[i]);
}

int main(void) {
    ct_rng rng;
    ct_rng_seed(&rng, 17);
    ct_llama *m = tiny_model();
    CHECK(m != NULL, "model: %s", ct_last_error());
    if (!m) return ct_test_finish("test_llama_dropout");
    ct_scope_begin();
    ct_tensor *ids = random_ids(&rng, m->config.vocab_size), *labels = random_ids(&rng, m->config.vocab_size);

    result none, a, again, other_step;
    CHECK(run(m, ids, labels, 0, 0, false, &none) == 0, "%s", ct_last_error());
    CHECK(run(m, ids, labels, 0.3, 7, false, &a) == 0, "%s", ct_last_error());
    CHECK(run(m, ids, labels, 0.3, 7, false, &again) == 0, "%s", ct_last_error());
    CHECK(run(m, ids, labels, 0.3, 8, false, &other_step) == 0, "%s", ct_last_error());
    CHECK(a.loss != none.loss, "dropout 0.3 left the loss unchanged (%g)", a.loss);
    CHECK(memcmp(&a.loss, &again.loss, sizeof a.loss) == 0, "same seed and step, different losses");
    CHECK(a.loss != other_step.loss, "another step drew the same masks");
    printf("loss without dropout %.6f, with 0.3 at step 7 %.6f, at step 8 %.6f\n", none.loss, a.loss, other_step.loss);

    result plain, checkpointed;
    m->gradient_checkpointing = false;
    CHECK(run(m, ids, labels, 0.3, 7, true, &plain) == 0, "%s", ct_last_error());
    m->gradient_checkpointing = true;
    CHECK(run(m, ids, labels, 0.3, 7, true, &checkpointed) == 0, "%s", ct_last_error());
    int identical = 0;
    for (int i = 0; i < plain.n && i < checkpointed.n; i++)
        identical += !memcmp(plain.grads[i], checkpointed.grads[i], ct_nbytes(m->params[i]));
    CHECK(plain.n == m->n_params && identical == plain.n, "%d of %d gradients bit-identical with checkpointing",
          identical, plain.n);
    CHECK(memcmp(&plain.loss, &a.loss, sizeof a.loss) == 0, "the loss changed when gradients were asked for");
    printf("gradient checkpointing with dropout: %d of %d gradients bit-identical\n", identical, plain.n);
    free_result(&plain);
    free_result(&checkpointed);

    ct_kv_cache cache;
    CHECK(ct_kv_cache_init(&cache, &m->config, B, T) == 0, "%s", ct_last_error());
    ct_llama_forward_args with_cache = {.cache = &cache, .dropout = 0.1};
    bool was = ct_set_grad_enabled(false);
    CHECK(!ct_llama_forward(m, ids, &with_cache) && strstr(ct_last_error(), "dropout"), "message: %s", ct_last_error());
    ct_set_grad_enabled(was);
    ct_kv_cache_free(&cache);
    ct_llama_forward_args too_much = {.dropout = 1.0};
    CHECK(!ct_llama_forward(m, ids, &too_much) && strstr(ct_last_error(), "dropout"), "message: %s", ct_last_error());

    ct_scope_end();
    ct_llama_free(m);
    ct_memory_release_all();
    return ct_test_finish("test_llama_dropout");
}
