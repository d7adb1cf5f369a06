/* LoRA and DoRA on a frozen INT8 or bf16 base (model.base_dtype, ct_llama_load_with).
 *
 * INT8: the fixtures of tests/reference/make_lora_int8_fixtures.py quantize the tiny models'
 * projections with the compressed-tensors package and run peft on the dequantized weights
 * (q · scale). ctune loads the same base with base_dtype int8: every projection must be i8 with
 * exactly the package's integers and scales (no f32 copy), and logits, loss and the gradients of
 * every lora_A, lora_B (and DoRA magnitude) must match peft's within 1e-5 norm-wise; gradient
 * checkpointing gives the same gradients bit for bit. A trainable INT8 projection is refused.
 * bf16: a model saved in bf16 loads with its frozen tensors bf16 (auto), and gives the logits of
 * the same file widened to f32. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/gradcheck.h"
#include "autograd/tape.h"
#include "checkpoints/peft.h"
#include "checkpoints/safetensors.h"
#include "core/arena.h"
#include "core/error.h"
#include "models/llama.h"
#include "models/llama_lora.h"
#include "models/llama_peft.h"
#include "tests/ct_test.h"
#include "tests/ct_test_reference.h"

#define TOLERANCE 1e-5

static char tmp[256];

static bool all_frozen(const char *name, void *ctx) {
    (void)name;
    (void)ctx;
    return true;
}

static bool nothing_frozen(const char *name, void *ctx) {
    (void)name;
    (void)ctx;
    return false;
}

static const char *path2(char *buf, size_t size, const char *a, const char *b) {
    snprintf(buf, size, "%.2000s/%.200s", a, b);
    return buf;
}

/* Every projection is i8 with the fixture's integers and scales; returns how many were checked. */
static int check_quantized(const ct_llama *m, const char *dir) {
    char file[4400];
    ct_safetensors *q = ct_safetensors_open(path2(file, sizeof file, dir, "quantized.safetensors"));
    CHECK(q != NULL, "%s", ct_last_error());
    int checked = 0;
    for (int i = 0; q && i < m->n_params; i++) {
        const ct_tensor *p = m->params[i];
        if (!ct_llama_is_projection_weight(p->name)) continue;
        char key[200];
        snprintf(key, sizeof key, "q.%s", p->name);
        ct_tensor *want_q = ct_test_ref_tensor(q, key);
        snprintf(key, sizeof key, "scale.%s", p->name);
        ct_tensor *want_s = ct_test_ref_tensor(q, key);
        CHECK(p->dtype == CT_I8 && p->scale && p->scale_block == 0 && want_q && want_s, "%s: %s, no f32 copy",
              p->name, ct_dtype_name(p->dtype));
        if (p->dtype != CT_I8 || !want_q || !want_s) continue;
        int64_t differ = 0;
        for (int64_t k = 0; k < ct_numel(p); k++) differ += ((const int8_t *)p->data)[k] != ((const int32_t *)want_q->data)[k];
        differ += memcmp(p->scale->data, want_s->data, (size_t)p->shape[0] * sizeof(float)) != 0;
        CHECK(differ == 0, "%s: %lld values differ from compressed-tensors'", p->name, (long long)differ);
        checked++;
    }
    ct_safetensors_close(q);
    return checked;
}

static double compare_gradients(const char *name, const ct_llama *m, const ct_safetensors *ref, int *compared) {
    double worst = 0;
    *compared = 0;
    for (int i = 0; i < m->n_params; i++) {
        const ct_tensor *p = m->params[i];
        if (!p->requires_grad) continue;
        char key[300];
        snprintf(key, sizeof key, "grad.base_model.model.%s", p->name);
        ct_tensor *want = ct_test_ref_tensor(ref, key);
        CHECK(want && p->grad, "%s: no gradient for %s", name, p->name);
        if (!want || !p->grad) continue;
        const double err = ct_relative_error(p->grad, want);
        CHECK(err < TOLERANCE, "%s: gradient of %s off by %.3g", name, p->name, err);
        worst = fmax(worst, err);
        (*compared)++;
    }
    return worst;
}

static double step(ct_llama *m, const ct_safetensors *ref, double *logit_err) {
    ct_tensor *logits = ct_llama_forward(m, ct_test_ref_tensor(ref, "input_ids"), NULL);
    ct_tensor *loss = ct_llama_loss(logits, ct_test_ref_tensor(ref, "labels"));
    CHECK(loss && ct_backward(loss) == 0, "step: %s", ct_last_error());
    *logit_err = logits ? ct_relative_error(logits, ct_test_ref_tensor(ref, "logits")) : INFINITY;
    return loss ? ct_get(loss, 0) : NAN;
}

static void check_case(const char *name, const char *base) {
    char dir[4400], base_dir[4400], file[4400];
    path2(dir, sizeof dir, ct_test_path("tests/fixtures/lora"), name);
    path2(base_dir, sizeof base_dir, ct_test_path("tests/fixtures/models"), base);
    const ct_llama_load_options o = {.base_dtype = CT_BASE_INT8, .frozen = all_frozen};
    ct_llama *m = ct_llama_load_with(base_dir, &o);
    ct_safetensors *ref = ct_safetensors_open(path2(file, sizeof file, dir, "reference.safetensors"));
    CHECK(m && ref && ct_llama_apply_peft_dir(m, dir) == 0, "%s: %s", name, ct_last_error());
    if (!m || !ref) return;
    const int quantized = check_quantized(m, dir);
    for (int i = 0; i < m->n_params; i++) {
        const char *n = m->params[i]->name;
        m->params[i]->requires_grad = strstr(n, ".lora_") != NULL;
    }
    ct_scope_begin();
    double logit_err = INFINITY;
    const double loss = step(m, ref, &logit_err), want = ct_get(ct_test_ref_tensor(ref, "loss"), 0);
    int compared = 0;
    const double grad_err = compare_gradients(name, m, ref, &compared);
    CHECK(logit_err < TOLERANCE && fabs(loss - want) < TOLERANCE * fabs(want) && compared > 0,
          "%s: logits off by %.3g, loss %.8f vs %.8f", name, logit_err, loss, want);
    /* checkpointed: the same gradients, bit for bit */
    ct_tensor **plain = calloc((size_t)m->n_params, sizeof *plain);
    for (int i = 0; i < m->n_params; i++)
        if (m->params[i]->grad) {
            plain[i] = ct_empty(CT_F32, m->params[i]->ndim, m->params[i]->shape);
            ct_copy(plain[i], m->params[i]->grad);
        }
    ct_zero_grad(m->params, m->n_params);
    m->gradient_checkpointing = true;
    double ignored;
    step(m, ref, &ignored);
    int differ = 0;
    for (int i = 0; i < m->n_params; i++)
        if (plain[i]) differ += memcmp(plain[i]->data, m->params[i]->grad->data, ct_nbytes(plain[i])) != 0;
    CHECK(differ == 0, "%s: %d gradients differ with gradient checkpointing", name, differ);
    free(plain);
    ct_scope_end();
    printf("%-16s %d projections int8 = compressed-tensors'; logits %.2e  loss %.2e  %d gradients, worst %.2e; "
           "checkpointed bit-identical\n",
           name, quantized, logit_err, fabs(loss - want) / fabs(want), compared, grad_err);
    ct_llama_free(m);
    ct_safetensors_close(ref);
}

/* A bf16 checkpoint keeps its frozen tensors bf16 (auto) and computes what the widened f32 copy does. */
static void check_bf16(void) {
    char base_dir[4400], saved[4400];
    path2(base_dir, sizeof base_dir, ct_test_path("tests/fixtures/models"), "qwen2");
    ct_llama *src = ct_llama_load(base_dir);
    CHECK(src && ct_llama_save(src, path2(saved, sizeof saved, tmp, "qwen2_bf16"), base_dir, CT_BF16) == 0, "%s",
          ct_last_error());
    ct_llama_free(src);
    const ct_llama_load_options o = {.base_dtype = CT_BASE_AUTO, .frozen = all_frozen};
    ct_llama *narrow = ct_llama_load_with(saved, &o), *wide = ct_llama_load(saved);
    CHECK(narrow && wide, "%s", ct_last_error());
    if (!narrow || !wide) return;
    int bf16 = 0;
    for (int i = 0; i < narrow->n_params; i++) bf16 += narrow->params[i]->dtype == CT_BF16;
    CHECK(bf16 == narrow->n_params, "auto: %d of %d frozen tensors of a bf16 file stay bf16", bf16, narrow->n_params);
    ct_scope_begin();
    const bool was = ct_set_grad_enabled(false);
    ct_tensor *ids = ct_empty(CT_I32, 2, (int64_t[]){2, 9});
    for (int i = 0; i < 18; i++) ((int32_t *)ids->data)[i] = (i * 37) % 250;
    ct_tensor *a = ct_llama_forward(narrow, ids, NULL), *b = ct_llama_forward(wide, ids, NULL);
    const double err = a && b ? ct_relative_error(a, b) : INFINITY;
    CHECK(err < 1e-6, "bf16 base vs the same weights widened to f32: %.3g", err);
    ct_set_grad_enabled(was);
    ct_scope_end();
    printf("bf16 base        %d tensors kept bf16; logits vs widened f32 %.1e\n", bf16, err);
    ct_llama_free(narrow);
    ct_llama_free(wide);
}

static void check_refusal(void) {
    char base_dir[4400];
    path2(base_dir, sizeof base_dir, ct_test_path("tests/fixtures/models"), "llama");
    const ct_llama_load_options o = {.base_dtype = CT_BASE_INT8, .frozen = nothing_frozen, .why = "full fine-tuning"};
    ct_llama *m = ct_llama_load_with(base_dir, &o);
    CHECK(!m && strstr(ct_last_error(), "model.base_dtype=int8") && strstr(ct_last_error(), "q_proj.weight trains") &&
              !strchr(ct_last_error(), '\n'),
          "an INT8 projection that trains is refused: %s", m ? "loaded" : ct_last_error());
    printf("refused          %s\n", ct_last_error());
    ct_llama_free(m);
}

int main(void) {
    if (!ct_test_temp_dir(tmp, sizeof tmp, "lora_int8")) return 1;
    check_case("llama_qv_int8", "llama");
    check_case("qwen3_dora_int8", "qwen3");
    check_bf16();
    check_refusal();
    ct_test_remove_tree(tmp);
    return ct_test_finish("test_lora_int8");
}
