/* Pruning (models/prune.h): masks against torch.nn.utils.prune's (tests/fixtures/prune/, made by
 * tests/reference/make_prune_fixtures.py), N:M against the script's reference, the bad-input
 * errors, a failed prune leaving the model untouched, masks that last through AdamW steps, LoRA
 * on a pruned base, and compacting channel-pruned MLPs. */
#include <math.h>
#include <string.h>

#include "autograd/ops.h"
#include "autograd/tape.h"
#include "core/arena.h"
#include "core/error.h"
#include "ct_test.h"
#include "ct_test_reference.h"
#include "models/llama.h"
#include "models/llama_lora.h"
#include "models/lora.h"
#include "models/prune.h"
#include "train/optim.h"

static ct_safetensors *ref;

/* A copy of reference tensor `name` as a malloc'd f32 array (numel in *n). */
static float *ref_array(const char *name, int64_t *rows, int64_t *cols) {
    ct_tensor *t = ct_test_ref_tensor(ref, name);
    if (!t) return NULL;
    *rows = t->shape[0], *cols = t->ndim == 2 ? t->shape[1] : 1;
    float *out = malloc((size_t)ct_numel(t) * sizeof *out);
    memcpy(out, t->data, (size_t)ct_numel(t) * sizeof *out);
    return out;
}

static float *ones(int64_t n) {
    float *m = malloc((size_t)n * sizeof *m);
    for (int64_t i = 0; i < n; i++) m[i] = 1;
    return m;
}

/* mask equals reference `name` entry for entry, and the reference prunes something. */
static void same_mask(const char *name, const float *mask, int64_t n) {
    int64_t r, c, differ = 0, zeros = 0;
    float *want = ref_array(name, &r, &c);
    CHECK(want && r * c == n, "%s: missing or wrong size in the fixture", name);
    if (!want) return;
    for (int64_t i = 0; i < n; i++) differ += mask[i] != want[i], zeros += want[i] == 0;
    CHECK(differ == 0 && zeros > 0, "%s: %lld of %lld entries differ from torch (torch prunes %lld)", name,
          (long long)differ, (long long)n, (long long)zeros);
    free(want);
}

static ct_prune_amount frac(double f) { return (ct_prune_amount){.fraction = f}; }

static void check_against_torch(void) {
    int64_t r, c, rb, cb, rc2, cc2;
    float *wa = ref_array("w_a", &r, &c), *wb = ref_array("w_b", &rb, &cb), *wc = ref_array("w_c", &rc2, &cc2);
    CHECK(wa && wb && wc, "fixture weights missing: %s", ct_last_error());
    if (!wa || !wb || !wc) return;
    const int64_t n = r * c, nb = rb * cb, nc = rc2 * cc2;
    float *m = ones(n);
    CHECK(ct_prune_l1_mask(wa, m, n, frac(0.3), "w_a") == 0, "%s", ct_last_error());
    same_mask("l1_frac", m, n);
    CHECK(ct_prune_l1_mask(wa, m, n, frac(0.2), "w_a") == 0, "%s", ct_last_error());
    same_mask("l1_twice", m, n);
    free(m);
    m = ones(n);
    CHECK(ct_prune_l1_mask(wa, m, n, (ct_prune_amount){.count = 37, .is_count = true}, "w_a") == 0, "%s", ct_last_error());
    same_mask("l1_count", m, n);
    free(m);
    m = ones(nc);
    CHECK(ct_prune_l1_mask(wc, m, nc, frac(0.25), "w_c") == 0, "%s", ct_last_error());
    same_mask("l1_half", m, nc); /* 6.5 rounds to 6, as Python's round */
    free(m);

    float *ma = ones(n), *mb = ones(nb);
    const float *w[2] = {wa, wb};
    float *masks[2] = {ma, mb};
    const int64_t sizes[2] = {n, nb};
    CHECK(ct_prune_global_mask(w, masks, sizes, 2, frac(0.4), "global") == 0, "%s", ct_last_error());
    same_mask("global_a", ma, n);
    same_mask("global_b", mb, nb);
    for (int64_t i = 0; i < n; i++) ma[i] = 1;
    for (int64_t i = 0; i < nb; i++) mb[i] = 1;
    CHECK(ct_prune_global_mask(w, masks, sizes, 2, frac(0.3), "global") == 0 &&
              ct_prune_global_mask(w, masks, sizes, 2, frac(0.2), "global") == 0, "%s", ct_last_error());
    same_mask("global_twice_a", ma, n);
    same_mask("global_twice_b", mb, nb);
    free(ma);
    free(mb);

    for (int norm = 1; norm <= 2; norm++)
        for (int dim = 0; dim <= 1; dim++) {
            char name[32];
            snprintf(name, sizeof name, "ln%d_dim%d", norm, dim);
            m = ones(n);
            CHECK(ct_prune_ln_mask(wa, m, r, c, norm, dim, frac(0.3), "w_a") == 0, "%s", ct_last_error());
            same_mask(name, m, n);
            free(m);
        }
    m = ones(n);
    CHECK(ct_prune_ln_mask(wa, m, r, c, 2, 0, frac(0.3), "w_a") == 0 && ct_prune_ln_mask(wa, m, r, c, 2, 0, frac(0.25), "w_a") == 0,
          "%s", ct_last_error());
    same_mask("ln2_dim0_twice", m, n);
    free(m);
    for (int keep = 1; keep <= 3; keep++) {
        char name[32];
        snprintf(name, sizeof name, "nm_%d_4", keep);
        m = ones(n);
        CHECK(ct_prune_nm_mask(wa, m, r, c, keep, 4, "w_a") == 0, "%s", ct_last_error());
        same_mask(name, m, n);
        free(m);
    }
    /* random_unstructured prunes exactly round(amount * n) entries, and compounds */
    m = ones(n);
    int64_t zeros = 0;
    CHECK(ct_prune_random_mask(m, n, frac(0.3), 5, "w_a") == 0 && ct_prune_random_mask(m, n, frac(0.5), 6, "w_a") == 0,
          "%s", ct_last_error());
    for (int64_t i = 0; i < n; i++) zeros += m[i] == 0;
    CHECK(zeros == 78 + 91, "random: %lld pruned, expected 78 then 91 of the 182 left", (long long)zeros);
    free(m);
    free(wa);
    free(wb);
    free(wc);
}

/* The gradual schedule's step: to_total prunes up to round(s * n), whatever is pruned already. */
static void check_to_total(void) {
    float w[10] = {5, -1, 3, 0.5f, 9, -7, 2, 8, -4, 6}, m[10];
    for (int i = 0; i < 10; i++) m[i] = 1;
    CHECK(ct_prune_l1_mask(w, m, 10, (ct_prune_amount){.fraction = 0.25, .to_total = true}, "w") == 0, "%s", ct_last_error());
    CHECK(m[1] == 0 && m[3] == 0 && m[6] == 1, "to_total 0.25 of 10 prunes round(2.5) = 2: the two smallest");
    CHECK(ct_prune_l1_mask(w, m, 10, (ct_prune_amount){.fraction = 0.55, .to_total = true}, "w") == 0, "%s", ct_last_error());
    int zeros = 0;
    for (int i = 0; i < 10; i++) zeros += m[i] == 0;
    CHECK(zeros == 6 && m[6] == 0 && m[2] == 0 && m[8] == 0 && m[0] == 0, "to_total 0.55: %d pruned, expected 6", zeros);
}

static void check_errors(void) {
    float w[8] = {1, 2, 3, 4, 5, 6, 7, 8}, m[8];
    for (int i = 0; i < 8; i++) m[i] = 1;
    CHECK(ct_prune_l1_mask(w, m, 8, frac(1.5), "t") < 0 && strstr(ct_last_error(), "outside [0, 1]"), "amount 1.5: %s",
          ct_last_error());
    CHECK(ct_prune_l1_mask(w, m, 8, frac(-0.1), "t") < 0, "amount -0.1 accepted");
    CHECK(ct_prune_l1_mask(w, m, 8, (ct_prune_amount){.count = 9, .is_count = true}, "t") < 0 &&
              strstr(ct_last_error(), "at most 8"), "count 9 of 8: %s", ct_last_error());
    CHECK(ct_prune_nm_mask(w, m, 2, 4, 3, 2, "t") < 0 && strstr(ct_last_error(), "3:2"), "N > M: %s", ct_last_error());
    CHECK(ct_prune_nm_mask(w, m, 1, 8, 2, 3, "t") < 0 && strstr(ct_last_error(), "multiple of M=3"), "8 %% 3: %s",
          ct_last_error());
    int untouched = 1;
    for (int i = 0; i < 8; i++) untouched &= m[i] == 1;
    CHECK(untouched, "a refused prune changed the mask");
}

static ct_llama *tiny_model(void) {
    ct_llama_config c;
    ct_llama_config_defaults(&c, CT_ARCH_QWEN2);
    c.hidden_size = 16;
    c.intermediate_size = 24;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 2;
    c.head_dim = 4;
    c.vocab_size = 37;
    c.tie_word_embeddings = true;
    ct_llama *m = ct_llama_new(&c);
    if (m) ct_llama_init_random(m, 99);
    return m;
}

static uint64_t model_hash(const ct_llama *m) {
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < m->n_params; i++) {
        const unsigned char *p = m->params[i]->data;
        for (size_t k = 0; k < ct_nbytes(m->params[i]); k++) h = (h ^ p[k]) * 1099511628211ull;
    }
    return h;
}

static void check_model_errors(void) {
    ct_llama *m = tiny_model();
    CHECK(m != NULL, "model: %s", ct_last_error());
    if (!m) return;
    const uint64_t before = model_hash(m);
    ct_prune_options o = {.method = CT_PRUNE_L1_UNSTRUCTURED, .amount = frac(0.3), .targets = "*.nothing_proj.weight"};
    CHECK(ct_prune_model(m, &o) < 0 && strstr(ct_last_error(), "nothing_proj"), "pattern matching nothing: %s",
          ct_last_error());
    o.targets = "model.norm.weight";
    CHECK(ct_prune_model(m, &o) < 0 && strstr(ct_last_error(), "explicit opt-in"), "a norm without opt-in: %s",
          ct_last_error());
    o.targets = "model.embed_tokens.weight";
    CHECK(ct_prune_model(m, &o) < 0 && strstr(ct_last_error(), "embedding"), "the embedding without opt-in: %s",
          ct_last_error());
    o.targets = "";
    o.method = CT_PRUNE_NM;
    o.nm_n = 2, o.nm_m = 5; /* rows of 16 (and 24 for down_proj) are not multiples of 5 */
    CHECK(ct_prune_model(m, &o) < 0 && strstr(ct_last_error(), "multiple of M=5"), "N:M 2:5: %s", ct_last_error());
    o.method = CT_PRUNE_L1_UNSTRUCTURED;
    o.amount = (ct_prune_amount){.count = 200, .is_count = true}; /* q_proj holds 256, k_proj 128 */
    CHECK(ct_prune_model(m, &o) < 0 && strstr(ct_last_error(), "k_proj"), "count above a tensor's size: %s",
          ct_last_error());
    CHECK(model_hash(m) == before && m->n_masks == 0, "a failed prune changed the model");
    o.targets = "model.norm.weight";
    o.allow_norm_embedding = true;
    o.amount = frac(0.5);
    CHECK(ct_prune_model(m, &o) == 0 && m->n_masks == 1, "a norm with the opt-in: %s", ct_last_error());
    ct_llama_free(m);
}

/* Masks that last: after AdamW steps the pruned weights, their gradients and both moments are
 * exactly zero; the rest trained. The model is pruned after a first step, as a gradual schedule
 * does, so the moments of the newly pruned entries are not zero when the mask arrives. */
static void check_training_keeps_zeros(void) {
    ct_llama *m = tiny_model();
    if (!m) return;
    ct_adamw_hparams h = {.lr = 1e-2, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.1};
    ct_adamw *opt = ct_adamw_new(m->params, m->n_params, h);
    const int64_t ids_shape[2] = {2, 5};
    int64_t bad = 0, pruned = 0, moved = 0;
    float *q_before = malloc(ct_nbytes(m->layers[0].q_proj.weight));
    for (int step = 0; opt && step < 4; step++) {
        if (step == 1) {
            ct_prune_options o = {.method = CT_PRUNE_L1_UNSTRUCTURED, .amount = frac(0.3)};
            CHECK(ct_prune_model(m, &o) == 0, "prune: %s", ct_last_error());
            CHECK(m->n_masks == 14 && m->layers[1].down_proj.mask && !m->lm_head.mask, "14 masks on the projections, %d",
                  m->n_masks);
            for (int i = 0; i < m->n_masks; i++) ct_adamw_set_mask(opt, m->masked[i], m->masks[i]);
            memcpy(q_before, m->layers[0].q_proj.weight->data, ct_nbytes(m->layers[0].q_proj.weight));
        }
        ct_scope_begin();
        ct_tensor *ids = ct_empty(CT_I32, 2, ids_shape);
        for (int i = 0; i < 10; i++) ((int32_t *)ids->data)[i] = (i * 7 + step) % 37;
        ct_zero_grad(m->params, m->n_params);
        ct_tensor *logits = ct_llama_forward(m, ids, NULL);
        ct_tensor *loss = ct_llama_loss(logits, ids);
        CHECK(loss && ct_backward(loss) == 0, "step: %s", ct_last_error());
        ct_scope_end();
        /* the forward's W * mask already gives the pruned entries no gradient */
        for (int i = 0; step > 0 && i < m->n_masks; i++) {
            const ct_tensor *g = m->masked[i]->grad;
            for (int64_t k = 0; g && k < ct_numel(g); k++) bad += ((float *)m->masks[i]->data)[k] == 0 && ct_get(g, k) != 0;
        }
        CHECK(ct_adamw_step(opt) == 0, "adamw: %s", ct_last_error());
    }
    for (int i = 0; opt && i < m->n_masks; i++) {
        const float *mk = m->masks[i]->data;
        const ct_adamw_slot *s = NULL;
        for (int j = 0; j < opt->n_slots; j++)
            if (opt->slots[j].param == m->masked[i]) s = &opt->slots[j];
        for (int64_t k = 0; s && k < ct_numel(m->masked[i]); k++) {
            if (mk[k] != 0) continue;
            pruned++;
            bad += ct_get(m->masked[i], k) != 0 || ct_get(s->m, k) != 0 || ct_get(s->v, k) != 0;
        }
    }
    for (int64_t k = 0; k < ct_numel(m->layers[0].q_proj.weight); k++)
        moved += ((float *)m->layers[0].q_proj.mask->data)[k] != 0 && ct_get(m->layers[0].q_proj.weight, k) != q_before[k];
    CHECK(pruned > 0 && bad == 0, "%lld of %lld pruned entries (weight, gradient or moment) are not zero", (long long)bad,
          (long long)pruned);
    CHECK(moved > 0, "the unpruned weights did not train");
    free(q_before);
    ct_adamw_free(opt);
    ct_llama_free(m);
}

/* LoRA on a pruned base: the forward equals the merged model's, and the merge keeps the zeros. */
static void check_lora_on_pruned_base(void) {
    ct_llama *m = tiny_model();
    if (!m) return;
    ct_prune_options o = {.method = CT_PRUNE_L1_UNSTRUCTURED, .amount = frac(0.5)};
    CHECK(ct_prune_model(m, &o) == 0, "prune: %s", ct_last_error());
    ct_lora_options lo = {.r = 2, .alpha = 4};
    CHECK(ct_llama_add_lora_at(m, 0, 0, &lo, 3) == 0, "lora: %s", ct_last_error());
    ct_lora *a = m->layers[0].q_proj.adapter;
    for (int64_t k = 0; k < ct_numel(a->B); k++) ct_set(a->B, k, 0.5 * (double)((k % 7) - 3));
    CHECK(ct_prune_check_unmerged_export(m) < 0 && strstr(ct_last_error(), "q_proj"),
          "an unmerged adapter over a pruned base must be refused: %s", ct_last_error());
    const int64_t shape[2] = {1, 6};
    ct_scope_begin();
    ct_tensor *ids = ct_empty(CT_I32, 2, shape);
    for (int i = 0; i < 6; i++) ((int32_t *)ids->data)[i] = i * 5 % 37;
    ct_tensor *with_adapter = ct_llama_forward(m, ids, NULL);
    CHECK(ct_llama_merge_lora(m) == 0, "merge: %s", ct_last_error());
    ct_tensor *merged = ct_llama_forward(m, ids, NULL);
    double worst = 0;
    for (int64_t k = 0; with_adapter && merged && k < ct_numel(merged); k++)
        worst = fmax(worst, fabs(ct_get(merged, k) - ct_get(with_adapter, k)));
    CHECK(with_adapter && merged && worst < 1e-5, "adapter forward vs merged differ by %g", worst);
    ct_scope_end();
    int64_t bad = 0;
    const float *mk = m->layers[0].q_proj.mask->data;
    for (int64_t k = 0; k < ct_numel(m->layers[0].q_proj.weight); k++) bad += mk[k] == 0 && ct_get(m->layers[0].q_proj.weight, k) != 0;
    CHECK(bad == 0, "%lld pruned weights came back in the merge", (long long)bad);
    ct_llama_free(m);
}

/* Channel-pruned MLPs cut out: the smaller dense model computes what the masked one did. */
static void check_compact(void) {
    ct_llama *m = tiny_model();
    if (!m) return;
    ct_prune_options o = {.method = CT_PRUNE_LN_STRUCTURED, .amount = frac(0.25), .norm_order = 2, .mlp_channels = true};
    CHECK(ct_prune_model(m, &o) == 0, "prune: %s", ct_last_error());
    ct_llama *small = ct_prune_compact_mlp(m);
    CHECK(small && small->config.intermediate_size == 18, "compact: %s", small ? "wrong size" : ct_last_error());
    if (small) {
        const int64_t shape[2] = {1, 7};
        ct_scope_begin();
        ct_tensor *ids = ct_empty(CT_I32, 2, shape);
        for (int i = 0; i < 7; i++) ((int32_t *)ids->data)[i] = (i * 11 + 3) % 37;
        ct_tensor *a = ct_llama_forward(m, ids, NULL), *b = ct_llama_forward(small, ids, NULL);
        double worst = 0;
        for (int64_t k = 0; a && b && k < ct_numel(a); k++) worst = fmax(worst, fabs(ct_get(a, k) - ct_get(b, k)));
        CHECK(a && b && worst < 1e-5, "compact model's logits differ by %g", worst);
        ct_scope_end();
    }
    ct_llama_free(small);
    /* unstructured masks cannot be cut out */
    o = (ct_prune_options){.method = CT_PRUNE_L1_UNSTRUCTURED, .amount = frac(0.3)};
    CHECK(ct_prune_model(m, &o) == 0, "prune: %s", ct_last_error());
    CHECK(!ct_prune_compact_mlp(m) && strstr(ct_last_error(), "partly pruned"), "compacting partial channels: %s",
          ct_last_error());
    ct_llama_free(m);
}

int main(void) {
    ref = ct_safetensors_open(ct_test_path("tests/fixtures/prune/reference.safetensors"));
    CHECK(ref != NULL, "fixture: %s", ct_last_error());
    if (ref) check_against_torch();
    check_to_total();
    check_errors();
    check_model_errors();
    check_training_keeps_zeros();
    check_lora_on_pruned_base();
    check_compact();
    ct_safetensors_close(ref);
    return ct_test_finish("test_prune");
}
