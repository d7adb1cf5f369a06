/* Mixed precision of the LLaMA model on the CPU (compute_dtype bf16: bf16 compute copies of the
 * matmul weights and bf16 activations, f32 masters, moments and loss), against the f32 run of the
 * same model on the same batches:
 *   (a) one forward and backward: logits within 2e-2 norm-wise, the loss within 1e-2 relative,
 *       every master gradient f32 and within 5e-2 norm-wise; for an untied Qwen2 model (biases)
 *       and a tied Qwen3 model (head norms, the embedding's one bf16 copy serving lm_head);
 *   (b) 20 AdamW steps: the bf16 loss falls and tracks the f32 loss (bound below);
 *   (c) masters, their gradients and both AdamW moments stay f32;
 *   (d) with gradient checkpointing the bf16 losses and gradients are bit-identical to the plain
 *       bf16 run (the conversions are recomputed inside each block, in the same order);
 * and a forward through a KV cache computes in f32 whatever compute_dtype says.
 *
 * Why these bounds: bf16 keeps 8 significant bits, a relative rounding error of at most 2^-9
 * (2e-3) per stored value. A logit passes through some twenty roundings on its way (the weight
 * copies, the activation entering each projection, q/k/v, the attention output, SwiGLU, per
 * block), errors that add roughly as a random walk: measured 1.1e-2 and 1.3e-2 norm-wise here,
 * under a bound of 2e-2 that still catches a wrong path (0 when bf16 is not used at all, errors
 * of order 1 for a lost gradient path). The loss, a mean of log-probabilities, averages the
 * rounding out (3e-4). Gradients take the chain twice (forward values, backward products):
 * measured up to 3.6e-2, bound 5e-2. In training, AdamW divides each update by the gradient's
 * own scale, so rounding-level gradient differences still move weights by about lr, and the runs
 * drift apart a little more each step: rounding the f32 run's initial weights to bf16 once, and
 * nothing else, already moves its 20 losses by up to 7.6e-4 (relative) at lr 3e-3; bf16 compute,
 * rounding at every op of every step, measures 2.2e-3, bounded here by 1e-2. (At lr 1e-2 this
 * tiny model's trajectory is chaotic enough that the one-time rounding alone moves it by 1.9e-2.) */
#include <string.h>

#include "core/arena.h"
#include "core/error.h"
#include "autograd/ops.h"
#include "core/rng.h"
#include "autograd/tape.h"
#include "models/llama.h"
#include "tests/ct_test.h"
#include "train/optim.h"

enum { B = 3, T = 17, N_BATCHES = 4, STEPS = 20 };

static ct_llama *tiny_model(ct_llama_arch arch, bool tied) {
    ct_llama_config c;
    ct_llama_config_defaults(&c, arch);
    c.hidden_size = 30;
    c.intermediate_size = 46;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 3;
    c.num_key_value_heads = 1;
    c.head_dim = 10;
    c.vocab_size = 53;
    c.max_position_embeddings = 64;
    c.initializer_range = 0.2;
    c.tie_word_embeddings = tied;
    ct_llama *m = ct_llama_new(&c);
    if (m) ct_llama_init_random(m, 31);
    return m;
}

/* Persistent random rows of token ids; each is its own target (ct_llama_loss shifts it). */
static ct_tensor *random_batch(ct_rng *rng, int64_t vocab) {
    ct_tensor *ids = ct_tensor_new(CT_I32, 2, (int64_t[]){B, T}, "ids");
    for (int64_t i = 0; ids && i < B * T; i++) ((int32_t *)ids->data)[i] = (int32_t)ct_rng_below(rng, (uint64_t)vocab);
    return ids;
}

static double rel_error(const double *a, const double *b, int64_t n) {
    double diff = 0, norm = 0;
    for (int64_t i = 0; i < n; i++) {
        diff += (a[i] - b[i]) * (a[i] - b[i]);
        norm += b[i] * b[i];
    }
    return norm > 0 ? sqrt(diff / norm) : sqrt(diff);
}

static double *values(const ct_tensor *t) {
    int64_t n = ct_numel(t);
    double *v = malloc(sizeof(double) * (size_t)n);
    for (int64_t i = 0; v && i < n; i++) v[i] = ct_get(t, i);
    return v;
}

/* One forward and backward from zeroed gradients: loss, logits and every gradient, copied out. */
typedef struct {
    double loss;
    ct_dtype logits_dtype;
    double *logits;
    double *grads[64];
    bool grads_f32;
} pass;

static int forward_backward(ct_llama *m, ct_tensor *ids, pass *p) {
    memset(p, 0, sizeof *p);
    ct_zero_grad(m->params, m->n_params);
    if (ct_scope_begin() < 0) return -1;
    ct_tensor *logits = ct_llama_forward(m, ids, NULL);
    ct_tensor *loss = ct_llama_loss(logits, ids);
    int rc = loss ? ct_backward(loss) : -1;
    if (rc == 0) {
        p->loss = ct_get(loss, 0);
        p->logits_dtype = logits->dtype;
        p->logits = values(logits);
        p->grads_f32 = true;
        for (int i = 0; i < m->n_params; i++) {
            p->grads[i] = values(m->params[i]->grad);
            p->grads_f32 = p->grads_f32 && m->params[i]->grad->dtype == CT_F32;
        }
    }
    ct_scope_end();
    return rc;
}

static void free_pass(pass *p, int n_params) {
    free(p->logits);
    for (int i = 0; i < n_params; i++) free(p->grads[i]);
}

/* (a) for one architecture. */
static void test_one_pass(ct_llama_arch arch, bool tied, const char *what) {
    ct_llama *m = tiny_model(arch, tied);
    CHECK(m != NULL, "%s: %s", what, ct_last_error());
    if (!m) return;
    ct_rng rng;
    ct_rng_seed(&rng, 5);
    ct_tensor *ids = random_batch(&rng, m->config.vocab_size);
    pass f32, bf16;
    CHECK(forward_backward(m, ids, &f32) == 0, "%s f32: %s", what, ct_last_error());
    m->compute_dtype = CT_BF16;
    CHECK(forward_backward(m, ids, &bf16) == 0, "%s bf16: %s", what, ct_last_error());
    if (f32.logits && bf16.logits) {
        CHECK(f32.logits_dtype == CT_F32 && bf16.logits_dtype == CT_BF16, "%s: logits %s and %s", what,
              ct_dtype_name(f32.logits_dtype), ct_dtype_name(bf16.logits_dtype));
        double logits_err = rel_error(bf16.logits, f32.logits, B * T * m->config.vocab_size);
        double loss_err = fabs(bf16.loss - f32.loss) / f32.loss;
        CHECK(logits_err > 0 && logits_err <= 2e-2, "%s: logits differ by %.3g norm-wise (0 means bf16 was not used)",
              what, logits_err);
        CHECK(loss_err <= 1e-2, "%s: loss %.9g in bf16, %.9g in f32", what, bf16.loss, f32.loss);
        CHECK(bf16.grads_f32, "%s: a master's gradient is not f32", what);
        double worst = 0;
        const char *worst_name = "";
        for (int i = 0; i < m->n_params; i++) {
            double e = rel_error(bf16.grads[i], f32.grads[i], ct_numel(m->params[i]));
            if (e > worst) worst = e, worst_name = m->params[i]->name;
        }
        CHECK(worst > 0 && worst <= 5e-2, "%s: gradient of %s differs by %.3g norm-wise", what, worst_name, worst);
        printf("%s: logits %.2e, loss %.2e, worst gradient %.2e (%s)\n", what, logits_err, loss_err, worst, worst_name);
    }
    free_pass(&f32, m->n_params);
    free_pass(&bf16, m->n_params);
    ct_tensor_free(ids);
    ct_llama_free(m);
}

/* A forward through a KV cache stays f32 (the cache holds f32 keys and values). */
static void test_cache_computes_in_f32(void) {
    ct_llama *m = tiny_model(CT_ARCH_LLAMA, false);
    if (!m) return;
    m->compute_dtype = CT_BF16;
    ct_kv_cache cache;
    CHECK(ct_kv_cache_init(&cache, &m->config, 1, 8) == 0, "cache: %s", ct_last_error());
    bool was = ct_set_grad_enabled(false);
    ct_scope_begin();
    ct_tensor *ids = ct_zeros(CT_I32, 2, (int64_t[]){1, 5});
    ct_llama_forward_args args = {.cache = &cache};
    ct_tensor *logits = ct_llama_forward(m, ids, &args);
    CHECK(logits && logits->dtype == CT_F32, "cached forward: %s",
          logits ? ct_dtype_name(logits->dtype) : ct_last_error());
    ct_scope_end();
    ct_set_grad_enabled(was);
    ct_kv_cache_free(&cache);
    ct_llama_free(m);
}

/* (b)-(d): STEPS AdamW steps over the fixed batches. */
typedef struct {
    double losses[STEPS];
    double *first_grads[64]; /* after the first backward */
    int n_params;
} run_record;

static int train(ct_llama *m, ct_tensor *const *batches, run_record *rec, ct_adamw **opt_out) {
    ct_adamw_hparams h = {.lr = 3e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.01};
    ct_adamw *opt = ct_adamw_new(m->params, m->n_params, h);
    if (!opt) return -1;
    rec->n_params = m->n_params;
    int rc = 0;
    for (int s = 0; rc == 0 && s < STEPS; s++) {
        ct_zero_grad(m->params, m->n_params);
        if (ct_scope_begin() < 0) return -1;
        ct_tensor *ids = batches[s % N_BATCHES];
        ct_tensor *loss = ct_llama_loss(ct_llama_forward(m, ids, NULL), ids);
        rc = loss ? ct_backward(loss) : -1;
        if (rc == 0) rec->losses[s] = ct_get(loss, 0);
        ct_scope_end();
        for (int i = 0; rc == 0 && s == 0 && i < m->n_params; i++) rec->first_grads[i] = values(m->params[i]->grad);
        if (rc == 0) rc = ct_adamw_step(opt);
    }
    if (opt_out && rc == 0) *opt_out = opt;
    else ct_adamw_free(opt);
    return rc;
}

static void free_record(run_record *r) {
    for (int i = 0; i < r->n_params; i++) free(r->first_grads[i]);
}

/* (c): every master, gradient and moment is f32. */
static void check_f32_state(const ct_llama *m, const ct_adamw *opt) {
    int f32 = 0, total = 0;
    for (int i = 0; i < m->n_params; i++, total += 2)
        f32 += (m->params[i]->dtype == CT_F32) + (m->params[i]->grad && m->params[i]->grad->dtype == CT_F32);
    for (int i = 0; i < opt->n_slots; i++, total += 2)
        f32 += (opt->slots[i].m->dtype == CT_F32) + (opt->slots[i].v->dtype == CT_F32);
    CHECK(f32 == total, "%d of %d masters, gradients and moments are f32", f32, total);
}

static void test_training(void) {
    ct_llama *ref = tiny_model(CT_ARCH_QWEN2, false), *mixed = tiny_model(CT_ARCH_QWEN2, false);
    ct_llama *checkpointed = tiny_model(CT_ARCH_QWEN2, false);
    CHECK(ref && mixed && checkpointed, "models: %s", ct_last_error());
    if (!ref || !mixed || !checkpointed) return;
    mixed->compute_dtype = checkpointed->compute_dtype = CT_BF16;
    checkpointed->gradient_checkpointing = true;
    ct_rng rng;
    ct_rng_seed(&rng, 11);
    ct_tensor *batches[N_BATCHES];
    for (int i = 0; i < N_BATCHES; i++) batches[i] = random_batch(&rng, ref->config.vocab_size);

    run_record f32 = {0}, bf16 = {0}, ckpt = {0};
    ct_adamw *opt = NULL;
    CHECK(train(ref, batches, &f32, NULL) == 0, "f32 run: %s", ct_last_error());
    CHECK(train(mixed, batches, &bf16, &opt) == 0, "bf16 run: %s", ct_last_error());
    CHECK(train(checkpointed, batches, &ckpt, NULL) == 0, "checkpointed bf16 run: %s", ct_last_error());

    /* (b) The same batch comes back every N_BATCHES steps: compare the last pass over it with the first. */
    CHECK(bf16.losses[STEPS - N_BATCHES] < 0.9 * bf16.losses[0], "bf16 loss did not fall: %.6g -> %.6g",
          bf16.losses[0], bf16.losses[STEPS - N_BATCHES]);
    double worst = 0;
    for (int s = 0; s < STEPS; s++) worst = fmax(worst, fabs(bf16.losses[s] - f32.losses[s]) / f32.losses[s]);
    CHECK(worst <= 1e-2, "bf16 losses drift %.3g (relative) from the f32 run's", worst);
    printf("20 steps: loss %.5f -> %.5f in f32, %.5f -> %.5f in bf16, largest gap %.2e\n", f32.losses[0],
           f32.losses[STEPS - 1], bf16.losses[0], bf16.losses[STEPS - 1], worst);

    /* (c) */
    if (opt) check_f32_state(mixed, opt);
    ct_adamw_free(opt);

    /* (d) bit for bit: each step's loss, and the first step's gradients. */
    int same_losses = 0, same_grads = 0;
    for (int s = 0; s < STEPS; s++) same_losses += !memcmp(&bf16.losses[s], &ckpt.losses[s], sizeof(double));
    for (int i = 0; i < mixed->n_params; i++) {
        size_t bytes = sizeof(double) * (size_t)ct_numel(mixed->params[i]);
        same_grads += bf16.first_grads[i] && ckpt.first_grads[i] && !memcmp(bf16.first_grads[i], ckpt.first_grads[i], bytes);
    }
    CHECK(same_losses == STEPS, "checkpointing changed %d of %d bf16 losses", STEPS - same_losses, STEPS);
    CHECK(same_grads == mixed->n_params, "checkpointing changed %d of %d bf16 gradients", mixed->n_params - same_grads,
          mixed->n_params);

    free_record(&f32);
    free_record(&bf16);
    free_record(&ckpt);
    for (int i = 0; i < N_BATCHES; i++) ct_tensor_free(batches[i]);
    ct_llama_free(ref);
    ct_llama_free(mixed);
    ct_llama_free(checkpointed);
}

int main(void) {
    test_one_pass(CT_ARCH_QWEN2, false, "qwen2 untied");
    test_one_pass(CT_ARCH_QWEN3, true, "qwen3 tied");
    test_cache_computes_in_f32();
    test_training();
    ct_memory_release_all();
    return ct_test_finish("test_mixed_precision");
}
