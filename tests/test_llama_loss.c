/* The training loss without vocabulary-sized logits (models/llama.h, ct_llama_loss_sum):
 *   - f64 finite-difference gradient checks of what it computes (hidden rows gathered at the
 *     targets, then ct_kd_loss with no teacher), odd sizes, ignored targets, several chunks;
 *   - the same f64 inputs against the unfused ct_cross_entropy(hidden head^T): loss and
 *     gradients equal to f64 rounding;
 *   - whole models in f32 against the unfused forward + cross-entropy the trainer used before:
 *     full fine-tuning (untied and tied lm_head), gradient checkpointing, LoRA on a frozen f32,
 *     bf16 and int8 base, an lm_head trained alone (modules_to_save) — loss and every trainable
 *     gradient within f32 rounding;
 *   - memory: one step's arena peak holds no [tokens, vocab] logits;
 *   - a target outside the vocabulary is refused as the unfused loss refuses it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "autograd/ops_transformer.h"
#include "autograd/tape.h"
#include "core/arena.h"
#include "core/error.h"
#include "core/rng.h"
#include "models/llama.h"
#include "models/llama_lora.h"
#include "tests/ct_test.h"
#include "tests/ct_test_gradcheck.h"

#define F32_LOSS_TOLERANCE 1e-6 /* relative: what the unfused path's own f32 sums are off by */
#define F32_GRAD_TOLERANCE_MODEL 1e-5

static ct_rng rng;
static char tmp[256];

/* A copy in the current scope (a gradient is overwritten by the next backward). */
static ct_tensor *copy_of(const ct_tensor *t) {
    ct_tensor *c = t ? ct_empty_like(t) : NULL;
    if (c) memcpy(c->data, t->data, ct_nbytes(t));
    return c;
}

/* ---- the op the loss is built from, in f64 ---- */

typedef struct {
    ct_tensor *rows;
    int64_t vocab, chunk;
} rows_args;

/* inputs: hidden [B, T, H], head [V, H], row targets [n] */
static ct_tensor *fn_fused(ct_tensor *const *in, int n, void *user) {
    (void)n;
    const rows_args *a = user;
    const ct_kd_options ce = {.ce_weight = 1, .temperature = 1, .chunk_rows = a->chunk};
    return ct_kd_loss(ct_llama_gather_rows(in[0], a->rows), in[1], NULL, NULL, in[2], a->vocab, &ce);
}

/* Targets for B * T positions, every third one ignored; their rows and row targets. */
static ct_tensor *random_targets(int64_t count, int64_t vocab) {
    ct_tensor *y = ct_empty(CT_I32, 1, &count);
    for (int64_t i = 0; i < count; i++)
        ((int32_t *)y->data)[i] = i % 3 == 1 ? -100 : (int32_t)ct_rng_below(&rng, (uint64_t)vocab);
    return y;
}

static void check_op_gradients(void) {
    const int64_t B = 2, T = 5, H = 7, V = 13;
    ct_tensor *hidden = ct_random_input(&rng, 3, (int64_t[]){B, T, H});
    ct_tensor *head = ct_random_input(&rng, 2, (int64_t[]){V, H});
    ct_tensor *y = random_targets(B * T, V), *rows, *row_targets;
    CHECK(ct_llama_target_rows(y, V, CT_CPU, &rows, &row_targets) == 0, "%s", ct_last_error());
    CHECK(rows->shape[0] == 7, "%lld target rows of 10 (3 ignored)", (long long)rows->shape[0]);
    for (int64_t chunk = 1; chunk <= 8; chunk *= 2) {
        rows_args a = {.rows = rows, .vocab = V, .chunk = chunk};
        char name[64];
        snprintf(name, sizeof name, "fused CE, chunks of %lld rows", (long long)chunk);
        expect_gradcheck(name, fn_fused, (ct_tensor *[]){hidden, head, row_targets}, 3, &a);
    }
    /* The unfused loss of the same f64 inputs: [B * T, V] logits and ct_cross_entropy. */
    ct_tensor *h2 = ct_reshape(hidden, 2, (int64_t[]){B * T, H});
    ct_tensor *ref = ct_cross_entropy(ct_matmul(h2, head, false, true), y, CT_REDUCE_SUM);
    CHECK(ref && ct_backward(ref) == 0, "%s", ct_last_error());
    ct_tensor *ref_gh = copy_of(hidden->grad), *ref_gw = copy_of(head->grad);
    hidden->grad = head->grad = NULL;
    rows_args a = {.rows = rows, .vocab = V, .chunk = 3};
    ct_tensor *got = fn_fused((ct_tensor *[]){hidden, head, row_targets}, 3, &a);
    CHECK(got && ct_backward(got) == 0, "%s", ct_last_error());
    double loss_err = fabs(ct_get(got, 0) - ct_get(ref, 0)) / fabs(ct_get(ref, 0));
    double gh = ct_relative_error(hidden->grad, ref_gh), gw = ct_relative_error(head->grad, ref_gw);
    CHECK(loss_err < 1e-13 && gh < 1e-13 && gw < 1e-13, "f64 fused vs unfused: loss %.3g, d hidden %.3g, d head %.3g",
          loss_err, gh, gw);
    printf("%-36s loss %.2e  d hidden %.2e  d head %.2e\n", "f64 fused vs unfused CE", loss_err, gh, gw);
    hidden->grad = head->grad = NULL;
}

/* ---- whole models, f32 ---- */

static ct_llama_config tiny_config(bool tied) {
    ct_llama_config c;
    ct_llama_config_defaults(&c, CT_ARCH_QWEN2);
    c.hidden_size = 24, c.intermediate_size = 37, c.num_hidden_layers = 2, c.num_attention_heads = 3;
    c.num_key_value_heads = 1, c.head_dim = 8, c.vocab_size = 211, c.tie_word_embeddings = tied;
    return c;
}

static ct_llama *tiny_model(bool tied) {
    ct_llama_config c = tiny_config(tied);
    ct_llama *m = ct_llama_new(&c);
    CHECK(m != NULL, "%s", ct_last_error());
    if (m) ct_llama_init_random(m, 77);
    if (m) m->loss_chunk_rows = 5; /* several chunks in a batch of 33 rows */
    return m;
}

/* ids and shifted targets of a batch [B, T] with odd lengths; some targets ignored. */
static void make_batch(int64_t B, int64_t T, int64_t vocab, ct_tensor **ids, ct_tensor **targets) {
    *ids = ct_empty(CT_I32, 2, (int64_t[]){B, T});
    *targets = ct_empty(CT_I32, 2, (int64_t[]){B, T});
    for (int64_t i = 0; i < B * T; i++) {
        ((int32_t *)(*ids)->data)[i] = (int32_t)ct_rng_below(&rng, (uint64_t)vocab);
        bool ignored = i % T == T - 1 || i % 5 == 2;
        ((int32_t *)(*targets)->data)[i] = ignored ? -100 : (int32_t)ct_rng_below(&rng, (uint64_t)vocab);
    }
}

static int trainable(const ct_llama *m, ct_tensor **out) {
    int n = 0;
    for (int i = 0; i < m->n_params; i++)
        if (m->params[i]->requires_grad) out[n++] = m->params[i];
    return n;
}

/* Runs one loss + backward; the loss and a copy of every trainable gradient (in `grads`). */
static double loss_and_grads(ct_llama *m, ct_tensor *ids, ct_tensor *targets, bool fused, ct_tensor **grads) {
    ct_tensor *params[512];
    int n = trainable(m, params);
    CHECK(ct_zero_grad(params, n) == 0, "%s", ct_last_error());
    ct_llama_forward_args args = {.training = true};
    ct_tensor *sum = fused ? ct_llama_loss_sum(m, ids, targets, targets, &args)
                           : ct_cross_entropy(ct_llama_forward(m, ids, &args), targets, CT_REDUCE_SUM);
    CHECK(sum && ct_backward(ct_scale(sum, 1.0 / 7.0)) == 0, "%s", ct_last_error());
    for (int i = 0; i < n; i++) grads[i] = copy_of(ct_grad_of(params[i]));
    return sum ? ct_get(sum, 0) : NAN;
}

/* The fused loss against the unfused one on model m: loss and every trainable gradient. */
static void compare_paths(const char *name, ct_llama *m) {
    if (!m) return;
    ct_scope_begin();
    CHECK(ct_llama_loss_is_fused(m), "%s: the loss should be fused for this model", name);
    ct_tensor *ids, *targets, *want[512], *got[512], *params[512];
    make_batch(3, 11, m->config.vocab_size, &ids, &targets);
    int n = trainable(m, params);
    CHECK(n > 0, "%s: nothing trains", name);
    double ref = loss_and_grads(m, ids, targets, false, want);
    double loss = loss_and_grads(m, ids, targets, true, got);
    double loss_err = fabs(loss - ref) / fabs(ref), worst = 0;
    const char *worst_name = "";
    for (int i = 0; i < n; i++) {
        double e = ct_relative_error(got[i], want[i]);
        if (!(e <= worst)) worst = e, worst_name = params[i]->name;
    }
    CHECK(loss_err < F32_LOSS_TOLERANCE, "%s: loss %.9g, unfused %.9g", name, loss, ref);
    CHECK(worst < F32_GRAD_TOLERANCE_MODEL, "%s: gradient of %s off by %.3g", name, worst_name, worst);
    printf("%-36s loss %.9g vs %.9g (%.1e); %d gradients, worst %.1e\n", name, loss, ref, loss_err, n, worst);
    ct_scope_end();
}

static void freeze_all(ct_llama *m) {
    for (int i = 0; i < m->n_params; i++) m->params[i]->requires_grad = false;
}

static void add_lora(ct_llama *m) {
    ct_llama_lora_spec spec = {.options = {.r = 4, .alpha = 8, .init = CT_LORA_INIT_GAUSSIAN}, .seed = 5};
    CHECK(ct_llama_lora_targets("all-linear", "lora.target_modules", &spec.targets) == 0, "%s", ct_last_error());
    CHECK(ct_llama_add_lora(m, &spec) == 0, "%s", ct_last_error());
    /* B starts at 0, which would make every A's gradient 0: give B values so both are compared */
    for (int i = 0; i < m->n_params; i++)
        if (strstr(m->params[i]->name, "lora_B"))
            for (int64_t k = 0; k < ct_numel(m->params[i]); k++) ct_set(m->params[i], k, 0.05 * ct_rng_normal(&rng));
}

static bool all_frozen(const char *name, void *ctx) {
    (void)name, (void)ctx;
    return true;
}

/* The tiny model saved and loaded back with its base frozen in `base` (bf16, int8). */
static ct_llama *narrow_base(bool tied, ct_base_dtype base, const char *tag) {
    ct_llama *src = tiny_model(tied);
    char dir[400];
    snprintf(dir, sizeof dir, "%s/%s", tmp, tag);
    CHECK(src && ct_llama_save(src, dir, NULL, CT_F32) == 0, "%s", ct_last_error());
    ct_llama_free(src);
    ct_llama_load_options o = {.base_dtype = base, .frozen = all_frozen};
    ct_llama *m = ct_llama_load_with(dir, &o);
    CHECK(m != NULL, "%s", ct_last_error());
    return m;
}

static void check_models(void) {
    ct_llama *m = tiny_model(false);
    compare_paths("full fine-tune, untied", m);
    m->gradient_checkpointing = true;
    compare_paths("full fine-tune, checkpointed", m);
    ct_llama_free(m);

    m = tiny_model(true);
    compare_paths("full fine-tune, tied embeddings", m);
    ct_llama_free(m);

    m = tiny_model(true);
    freeze_all(m);
    add_lora(m);
    compare_paths("LoRA, frozen f32 base (tied)", m);
    ct_llama_free(m);

    m = tiny_model(true); /* modules_to_save = lm_head: the head trains, the embedding does not */
    CHECK(ct_llama_untie_lm_head(m) == 0, "%s", ct_last_error());
    freeze_all(m);
    m->lm_head.weight->requires_grad = true;
    add_lora(m);
    compare_paths("LoRA + lm_head trained (untied copy)", m);
    ct_llama_free(m);

    static const struct {
        ct_base_dtype base;
        bool tied;
        const char *name, *tag;
    } narrow[] = {{CT_BASE_BF16, true, "LoRA, bf16 base (tied head bf16)", "bf16_tied"},
                  {CT_BASE_BF16, false, "LoRA, bf16 base (untied head bf16)", "bf16_untied"},
                  {CT_BASE_INT8, true, "LoRA, int8 base (tied head bf16)", "int8_tied"}};
    for (size_t i = 0; i < sizeof narrow / sizeof *narrow; i++) {
        m = narrow_base(narrow[i].tied, narrow[i].base, narrow[i].tag);
        if (!m) continue;
        freeze_all(m);
        add_lora(m);
        m->gradient_checkpointing = true;
        m->loss_chunk_rows = 5;
        compare_paths(narrow[i].name, m);
        ct_llama_free(m);
    }
}

/* One step's arena peak: the fused loss holds one chunk of logits (and of their gradient), never
 * [tokens, vocab]; the unfused step holds the logits and their gradient at once. */
static void check_memory(void) {
    ct_llama_config c = tiny_config(true);
    c.vocab_size = 8191;
    ct_llama *m = ct_llama_new(&c);
    CHECK(m != NULL, "%s", ct_last_error());
    if (!m) return;
    ct_llama_init_random(m, 3);
    m->gradient_checkpointing = true;
    m->loss_chunk_rows = 16;
    const int64_t B = 2, T = 64;
    const size_t logits = sizeof(float) * (size_t)(B * T * c.vocab_size); /* 4 MiB */
    ct_scope_begin();
    ct_tensor *ids, *targets;
    make_batch(B, T, c.vocab_size, &ids, &targets);
    ct_memory_reset_peak();
    size_t base = ct_memory_get_stats(CT_CPU).in_use;
    ct_llama_forward_args args = {.training = true};
    ct_tensor *sum = ct_llama_loss_sum(m, ids, targets, targets, &args);
    CHECK(sum && ct_backward(sum) == 0, "%s", ct_last_error());
    size_t peak = ct_memory_get_stats(CT_CPU).peak_in_use - base;
    /* two chunks of 16 rows are 1 MiB; the rest is the blocks' activations, well under 1 MiB */
    CHECK(peak < logits / 2, "one step's arena peak %zu bytes; the logits alone are %zu", peak, logits);
    printf("%-36s %zu bytes (logits [%lld, %lld]: %zu)\n", "fused step arena peak", peak, (long long)(B * T),
           (long long)c.vocab_size, logits);
    ct_scope_end();
    ct_llama_free(m);
}

static void check_bad_target(void) {
    ct_llama *m = tiny_model(true);
    if (!m) return;
    ct_scope_begin();
    ct_tensor *ids, *targets;
    make_batch(1, 6, m->config.vocab_size, &ids, &targets);
    ((int32_t *)targets->data)[3] = 211;
    ct_tensor *sum = ct_llama_loss_sum(m, ids, targets, targets, NULL);
    CHECK(!sum && strstr(ct_last_error(), "target 211 at row 3 is outside [0, 211)"), "got '%s'",
          sum ? "a loss" : ct_last_error());
    ((int32_t *)targets->data)[3] = -7;
    sum = ct_llama_loss_sum(m, ids, targets, targets, NULL);
    CHECK(!sum && strstr(ct_last_error(), "target -7 at row 3"), "got '%s'", sum ? "a loss" : ct_last_error());
    ct_scope_end();
    ct_llama_free(m);
}

int main(void) {
    ct_rng_seed(&rng, 15);
    if (!ct_test_temp_dir(tmp, sizeof tmp, "llama_loss")) return 1;
    ct_scope_begin();
    check_op_gradients();
    ct_scope_end();
    check_models();
    check_memory();
    check_bad_target();
    ct_test_remove_tree(tmp);
    return ct_test_finish("test_llama_loss");
}
