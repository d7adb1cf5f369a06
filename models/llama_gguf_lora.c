/* The LoRA adapters attached to a model as a llama.cpp LoRA GGUF (models/llama_gguf.h).
 *
 * llama.cpp scales an adapter by alpha / r with r read from the tensors, so the alpha written is
 * the adapter's own scale times r: PEFT's alpha for plain LoRA, alpha·√r for rsLoRA (whose scale
 * is alpha/√r). llama.cpp has one alpha per file, so adapters of different scales are refused. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "models/llama_gguf.h"
#include "models/lora.h"

/* Every linear of the model, in block order, for walking the adapters. */
static int linears(const ct_llama *m, const ct_linear **out) {
    int n = 0;
    for (int64_t i = 0; i < m->config.num_hidden_layers; i++) {
        const ct_llama_layer *l = &m->layers[i];
        const ct_linear *all[7] = {&l->q_proj, &l->k_proj, &l->v_proj, &l->o_proj, &l->gate_proj, &l->up_proj, &l->down_proj};
        for (int k = 0; k < 7; k++) out[n++] = all[k];
    }
    out[n++] = &m->lm_head;
    return n;
}

static int add_matrix(ct_gguf_writer *w, const char *base, const char *suffix, const ct_tensor *t, const float *rows) {
    char name[CT_GGUF_MAX_NAME + 16];
    snprintf(name, sizeof name, "%s.%s", base, suffix);
    size_t n = (size_t)ct_numel(t) * sizeof(float);
    float *copy = ct_malloc(n, name);
    if (!copy) return -1;
    memcpy(copy, rows, n);
    int64_t ne[2] = {t->shape[1], t->shape[0]};
    return ct_gguf_add_tensor(w, name, CT_GGUF_F32, 2, ne, copy, true);
}

static int add_adapter(const ct_llama *m, const ct_linear *lin, ct_gguf_writer *w) {
    const ct_lora *a = lin->adapter;
    if (a->A->dtype != CT_F32 || a->B->dtype != CT_F32 || a->A->device != CT_CPU)
        return ct_fail("LoRA adapter of %s: f32 CPU tensors expected", lin->weight->name);
    char base[CT_GGUF_MAX_NAME];
    CT_TRY(ct_llama_gguf_name(lin->weight->name, base, sizeof base));
    CT_TRY(add_matrix(w, base, "lora_a", a->A, a->A->data));
    int64_t n_head;
    if (!ct_llama_gguf_permuted(m, lin->weight->name, &n_head)) return add_matrix(w, base, "lora_b", a->B, a->B->data);
    /* B's rows are the projection's output rows: they get the base weight's RoPE permutation */
    float *rows = ct_malloc(ct_nbytes(a->B), "lora_b");
    if (!rows) return -1;
    ct_llama_rope_permute_rows(a->B->data, rows, (size_t)a->B->shape[1] * sizeof(float), n_head, m->config.head_dim, false);
    int rc = add_matrix(w, base, "lora_b", a->B, rows);
    free(rows);
    return rc;
}

int ct_llama_gguf_add_lora(const ct_llama *m, ct_gguf_writer *w, double *alpha_out) {
    const char *arch = ct_llama_gguf_arch(m->config.arch);
    if (!arch)
        return ct_fail("model_type %s: GGUF LoRA export supports llama, qwen2 and qwen3; export --format peft",
                       ct_llama_model_type(m->config.arch));
    const ct_linear **all = ct_calloc((size_t)m->config.num_hidden_layers * 7 + 1, sizeof *all, "linears");
    if (!all) return -1;
    int n = linears(m, all), found = 0, rc = 0;
    double alpha = 0;
    const char *first = NULL;
    for (int i = 0; i < n && rc == 0; i++) {
        const ct_lora *a = all[i]->adapter;
        if (!a) continue;
        double this_alpha = a->scale * (double)a->A->shape[0];
        if (found++ == 0) {
            alpha = this_alpha;
            first = all[i]->weight->name;
        } else if (fabs(this_alpha - alpha) > 1e-9 * fabs(alpha)) {
            rc = ct_fail("LoRA adapters of %s and %s have different scales (alpha %g and %g); a llama.cpp LoRA GGUF has "
                         "one adapter.lora.alpha: export --format peft or merge (--format gguf --adapter)",
                         first, all[i]->weight->name, alpha, this_alpha);
        }
    }
    if (rc == 0 && !found) rc = ct_fail("the model carries no LoRA adapter; give --adapter DIR or a LoRA run folder");
    if (rc == 0) rc = ct_gguf_set_string(w, "general.architecture", arch);
    if (rc == 0) rc = ct_gguf_set_string(w, "general.type", "adapter");
    if (rc == 0) rc = ct_gguf_set_string(w, "adapter.type", "lora");
    if (rc == 0) rc = ct_gguf_set_f32(w, "adapter.lora.alpha", (float)alpha);
    for (int i = 0; i < n && rc == 0; i++)
        if (all[i]->adapter) rc = add_adapter(m, all[i], w);
    free(all);
    if (rc == 0 && alpha_out) *alpha_out = alpha;
    return rc;
}
