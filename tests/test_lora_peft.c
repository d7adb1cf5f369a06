/* LoRA against peft: each case of tests/fixtures/lora/ (made by tests/reference/make_lora_fixtures.py
 * with peft on the tiny model fixtures, B set non-zero so A's gradient is not trivially zero) is
 * loaded from peft's own adapter folder onto its base, and ctune's logits, loss and the gradient
 * of every lora_A, lora_B and modules_to_save weight must equal peft's within 1e-5, norm-wise.
 * Cases: plain LoRA on q/v (llama), rsLoRA on chosen layers (qwen2), all-linear (qwen3),
 * modules_to_save lm_head on a tied model (qwen2), and DoRA on the first three (the magnitude's
 * gradient compared too; qwen2's q/k biases stay outside DoRA's scaling). Also: the same step with gradient
 * checkpointing gives bit-identical gradients; an adapter written by ctune reads back to the same
 * logits; with the adapters disabled the model is its base; merging gives the same logits; and
 * the bad adapters are refused naming the key and both shapes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "autograd/gradcheck.h"
#include "autograd/tape.h"
#include "checkpoints/peft.h"
#include "checkpoints/safetensors.h"
#include "core/arena.h"
#include "core/error.h"
#include "core/paths.h"
#include "models/llama.h"
#include "models/llama_lora.h"
#include "models/llama_peft.h"
#include "tests/ct_test.h"
#include "tests/ct_test_reference.h"

#define TOLERANCE 1e-5

typedef struct {
    const char *name, *base;
} lora_case;

static const lora_case CASES[] = {
    {"llama_qv", "llama"},
    {"qwen2_rslora", "qwen2"},
    {"qwen3_all_linear", "qwen3"},
    {"qwen2_modules_to_save", "qwen2"},
    {"llama_dora_qv", "llama"},
    {"qwen2_dora_rslora", "qwen2"},
    {"qwen3_dora_all_linear", "qwen3"},
};

static char tmp[256];

enum { PATH_MAX_LEN = 4400 };

/* a/b into out (PATH_MAX_LEN bytes). */
static const char *join(char *out, const char *a, const char *b) {
    snprintf(out, PATH_MAX_LEN, "%.4096s/%.250s", a, b);
    return out;
}


/* The base frozen, the adapters (and a modules_to_save copy) trainable: what a LoRA run trains. */
static void freeze_base(ct_llama *m, const ct_tensor *saved) {
    for (int i = 0; i < m->n_params; i++) {
        const char *n = m->params[i]->name;
        m->params[i]->requires_grad = strstr(n, ".lora_A.") || strstr(n, ".lora_B.") ||
                                      strstr(n, ".lora_magnitude_vector") || m->params[i] == saved;
    }
}

/* Loads base + adapter; NULL on failure (with a CHECK). */
static ct_llama *load_base(const lora_case *c) {
    char dir[PATH_MAX_LEN];
    return ct_llama_load(join(dir, ct_test_path("tests/fixtures/models"), c->base));
}

static ct_llama *load_case(const lora_case *c, const char *adapter_dir) {
    ct_llama *m = load_base(c);
    ct_peft_adapter *ad = m ? ct_peft_adapter_open(adapter_dir) : NULL;
    int rc = ad ? ct_llama_apply_peft(m, ad) : -1;
    CHECK(rc == 0, "%s: base + adapter: %s", c->name, ct_last_error());
    ct_peft_adapter_close(ad);
    if (rc < 0) {
        ct_llama_free(m);
        return NULL;
    }
    const bool saves_head = strstr(c->name, "modules_to_save") != NULL;
    freeze_base(m, saves_head ? m->lm_head.weight : NULL);
    return m;
}

/* Forward, loss, backward on the fixture's batch; the logits' and loss's errors. */
static double step(ct_llama *m, const ct_safetensors *ref, double *logit_err, ct_tensor **logits_out) {
    ct_tensor *ids = ct_test_ref_tensor(ref, "input_ids"), *labels = ct_test_ref_tensor(ref, "labels");
    ct_tensor *logits = ct_llama_forward(m, ids, NULL);
    ct_tensor *loss = ct_llama_loss(logits, labels);
    CHECK(loss != NULL, "forward: %s", ct_last_error());
    if (!loss) return NAN;
    *logit_err = ct_relative_error(logits, ct_test_ref_tensor(ref, "logits"));
    if (logits_out) *logits_out = logits;
    CHECK(ct_backward(loss) == 0, "backward: %s", ct_last_error());
    return ct_get(loss, 0);
}

/* Every gradient peft recorded, found on the matching ctune tensor; every trainable ctune tensor
 * has a reference. Returns the worst error. */
static double compare_gradients(const lora_case *c, const ct_llama *m, const ct_safetensors *ref, int *compared) {
    double worst = 0;
    *compared = 0;
    int trainable = 0;
    for (int i = 0; i < m->n_params; i++) {
        const ct_tensor *p = m->params[i];
        if (!p->requires_grad) continue;
        trainable++;
        char key[300];
        snprintf(key, sizeof key, "grad.base_model.model.%s", p->name);
        ct_tensor *want = ct_test_ref_tensor(ref, key);
        CHECK(want != NULL && p->grad, "%s: no reference gradient (or no gradient) for %s", c->name, p->name);
        if (!want || !p->grad) continue;
        const double err = ct_relative_error(p->grad, want);
        CHECK(err < TOLERANCE, "%s: gradient of %s off by %.3g", c->name, p->name, err);
        worst = fmax(worst, err);
        (*compared)++;
    }
    int in_file = 0;
    for (int i = 0; i < ct_safetensors_count(ref); i++) in_file += !strncmp(ct_safetensors_at(ref, i)->name, "grad.", 5);
    CHECK(*compared == in_file && trainable == in_file, "%s: compared %d gradients of %d trainable; peft recorded %d",
          c->name, *compared, trainable, in_file);
    return worst;
}

static void check_case(const lora_case *c) {
    char dir[PATH_MAX_LEN], file[PATH_MAX_LEN], out[PATH_MAX_LEN];
    join(dir, ct_test_path("tests/fixtures/lora"), c->name);
    ct_safetensors *ref = ct_safetensors_open(join(file, dir, "reference.safetensors"));
    ct_llama *m = load_case(c, dir);
    CHECK(ref != NULL, "%s: %s", c->name, ct_last_error());
    if (!m || !ref) {
        ct_llama_free(m);
        ct_safetensors_close(ref);
        return;
    }
    ct_scope_begin();
    double logit_err = INFINITY;
    ct_tensor *logits = NULL;
    const double loss = step(m, ref, &logit_err, &logits);
    const double want = ct_get(ct_test_ref_tensor(ref, "loss"), 0), loss_err = fabs(loss - want) / fabs(want);
    int compared = 0;
    const double grad_err = compare_gradients(c, m, ref, &compared);
    CHECK(logit_err < TOLERANCE && loss_err < TOLERANCE, "%s: logits off by %.3g, loss %.8f vs peft %.8f", c->name,
          logit_err, loss, want);

    /* Gradient checkpointing: the same gradients, bit for bit. */
    ct_tensor **plain = calloc((size_t)m->n_params, sizeof *plain);
    for (int i = 0; i < m->n_params; i++)
        if (m->params[i]->grad) {
            plain[i] = ct_tensor_new(CT_F32, m->params[i]->ndim, m->params[i]->shape, NULL);
            ct_copy(plain[i], m->params[i]->grad);
        }
    ct_zero_grad(m->params, m->n_params);
    m->gradient_checkpointing = true;
    double ignored;
    const double ckpt_loss = step(m, ref, &ignored, NULL);
    int differ = 0;
    for (int i = 0; i < m->n_params; i++)
        if (plain[i]) differ += memcmp(plain[i]->data, m->params[i]->grad->data, ct_nbytes(plain[i])) != 0;
    CHECK(ckpt_loss == loss && differ == 0, "%s: checkpointed: loss %.9g vs %.9g, %d gradients differ", c->name,
          ckpt_loss, loss, differ);
    m->gradient_checkpointing = false;
    for (int i = 0; i < m->n_params; i++) ct_tensor_free(plain[i]);
    free(plain);

    /* Written by ctune, read back: the same logits, bit for bit. */
    join(out, tmp, c->name);
    ct_peft_config cfg;
    CHECK(ct_peft_config_read(dir, &cfg) == 0, "%s: %s", c->name, ct_last_error());
    const char *save[] = {"lm_head"};
    const int n_save = strstr(c->name, "modules_to_save") ? 1 : 0;
    ct_peft_item *items = NULL;
    int n_items = 0;
    CHECK(ct_llama_peft_items(m, save, n_save, &items, &n_items) == 0 && ct_peft_adapter_write(out, &cfg, items, n_items) == 0,
          "%s: write: %s", c->name, ct_last_error());
    free(items);
    ct_peft_config_free(&cfg);
    ct_llama *back = load_case(c, out);
    const bool was = ct_set_grad_enabled(false);
    ct_tensor *ids = ct_test_ref_tensor(ref, "input_ids");
    ct_tensor *again = back ? ct_llama_forward(back, ids, NULL) : NULL;
    CHECK(again && !memcmp(again->data, logits->data, ct_nbytes(logits)), "%s: the written adapter gives other logits",
          c->name);

    /* Disabled adapters: the base alone. */
    ct_llama *base = load_base(c);
    ct_tensor *base_logits = base ? ct_llama_forward(base, ids, NULL) : NULL;
    ct_llama_set_adapters(m, false);
    ct_tensor *off = ct_llama_forward(m, ids, NULL);
    const bool head_saved = n_save == 1; /* the trained lm_head copy stays in use */
    CHECK(base_logits && off && (head_saved || !memcmp(off->data, base_logits->data, ct_nbytes(off))),
          "%s: disabled adapters do not give the base's logits", c->name);
    ct_llama_set_adapters(m, true);

    /* Merged: the same logits within f32 rounding of W + s·B·A. */
    CHECK(ct_llama_merge_lora(m) == 0 && ct_llama_lora_count(m) == 0, "%s: merge: %s", c->name, ct_last_error());
    ct_tensor *merged = ct_llama_forward(m, ids, NULL);
    const double merge_err = merged ? ct_relative_error(merged, logits) : INFINITY;
    CHECK(merge_err < 1e-5, "%s: merged logits off by %.3g", c->name, merge_err);
    ct_set_grad_enabled(was);
    ct_scope_end();
    printf("%-22s logits %.2e  loss %.2e  %2d gradients, worst %.2e  checkpointed bit-identical  written = read  "
           "merged %.1e\n",
           c->name, logit_err, loss_err, compared, grad_err, merge_err);
    ct_llama_free(back);
    ct_llama_free(base);
    ct_llama_free(m);
    ct_safetensors_close(ref);
}

/* Adapters that do not fit: another model's (shapes), and a config naming a projection whose
 * tensors the file lacks. */
static void check_refusals(void) {
    char llama_adapter[PATH_MAX_LEN];
    join(llama_adapter, ct_test_path("tests/fixtures/lora"), "llama_qv");
    ct_llama *qwen2 = load_base(&(lora_case){"qwen2", "qwen2"});
    ct_peft_adapter *ad = ct_peft_adapter_open(llama_adapter);
    CHECK(qwen2 && ad && ct_llama_apply_peft(qwen2, ad) < 0 && strstr(ct_last_error(), "lora_A.weight") &&
              strstr(ct_last_error(), "[4, 64]") && strstr(ct_last_error(), "[4, 48]"),
          "a llama adapter on qwen2 is refused naming the key and both shapes: %s", ct_last_error());
    printf("refused  %s\n", ct_last_error());
    ct_peft_adapter_close(ad);
    ct_llama_free(qwen2);

    /* DoRA's files agree with their config: magnitudes without use_dora, or use_dora without
     * magnitudes, are refused naming the tensor (and nothing is written). */
    char dora_dir[PATH_MAX_LEN], out[PATH_MAX_LEN];
    const lora_case dora = {"llama_dora_qv", "llama"}, plain = {"llama_qv", "llama"};
    ct_llama *m = load_case(&dora, join(dora_dir, ct_test_path("tests/fixtures/lora"), dora.name));
    ct_peft_config cfg;
    ct_peft_item *items = NULL;
    int n = 0;
    CHECK(m && ct_peft_config_read(dora_dir, &cfg) == 0 && cfg.use_dora && ct_llama_peft_items(m, NULL, 0, &items, &n) == 0,
          "DoRA case: %s", ct_last_error());
    cfg.use_dora = false;
    CHECK(ct_peft_adapter_write(join(out, tmp, "no_use_dora"), &cfg, items, n) < 0 &&
              strstr(ct_last_error(), "lora_magnitude_vector") && strstr(ct_last_error(), "\"use_dora\": true") &&
              !ct_is_dir(out),
          "magnitudes with use_dora false are refused: %s", ct_last_error());
    printf("refused  %s\n", ct_last_error());
    free(items);
    ct_llama_free(m);
    m = load_case(&plain, join(dora_dir, ct_test_path("tests/fixtures/lora"), plain.name));
    cfg.use_dora = true;
    CHECK(m && ct_llama_peft_items(m, NULL, 0, &items, &n) == 0 &&
              ct_peft_adapter_write(join(out, tmp, "no_magnitude"), &cfg, items, n) < 0 &&
              strstr(ct_last_error(), "no lora_magnitude_vector beside it") && !ct_is_dir(out),
          "use_dora without magnitudes is refused: %s", ct_last_error());
    printf("refused  %s\n", ct_last_error());
    free(items);
    ct_peft_config_free(&cfg);
    ct_llama_free(m);
}

int main(void) {
    if (!ct_test_temp_dir(tmp, sizeof tmp, "lora_peft")) return 1;
    for (size_t i = 0; i < sizeof CASES / sizeof *CASES; i++) check_case(&CASES[i]);
    check_refusals();
    ct_test_remove_tree(tmp);
    return ct_test_finish("test_lora_peft");
}
