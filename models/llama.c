/* Building a LLaMA-family model: one persistent f32 tensor per HF parameter, named as in the
 * checkpoint, and the flat parameter list the optimizer and the checkpoint files walk. */
#include "models/llama.h"
#include "models/llama_lora.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "datasets/tokenizer.h"
#include "models/llama_internal.h"
#include "models/prune.h"

/* The specs are listed twice, once to count them (out NULL) and once to fill an array of that
 * count, so no constant bounds how many tensors a layer may have. */
typedef struct {
    ct_llama_param_spec *out; /* NULL: count only */
    int n;
} spec_list;

static void add(spec_list *list, ct_tensor **slot, int64_t rows, int64_t cols, const char *fmt, int layer) {
    if (!list->out) {
        list->n++;
        return;
    }
    ct_llama_param_spec *s = &list->out[list->n++];
    snprintf(s->name, sizeof s->name, fmt, layer);
    s->ndim = cols ? 2 : 1;
    s->shape[0] = rows;
    s->shape[1] = cols;
    s->slot = slot;
}

/* In the order HF's state_dict lists them, which is also the checkpoint's. */
static void add_layer(spec_list *list, const ct_llama_config *c, ct_llama_layer *L, int l) {
    const int64_t H = c->hidden_size, I = c->intermediate_size, D = c->head_dim;
    const int64_t q_dim = c->num_attention_heads * D, kv_dim = c->num_key_value_heads * D;
    add(list, &L->q_proj.weight, q_dim, H, "model.layers.%d.self_attn.q_proj.weight", l);
    if (c->qkv_bias) add(list, &L->q_proj.bias, q_dim, 0, "model.layers.%d.self_attn.q_proj.bias", l);
    add(list, &L->k_proj.weight, kv_dim, H, "model.layers.%d.self_attn.k_proj.weight", l);
    if (c->qkv_bias) add(list, &L->k_proj.bias, kv_dim, 0, "model.layers.%d.self_attn.k_proj.bias", l);
    add(list, &L->v_proj.weight, kv_dim, H, "model.layers.%d.self_attn.v_proj.weight", l);
    if (c->qkv_bias) add(list, &L->v_proj.bias, kv_dim, 0, "model.layers.%d.self_attn.v_proj.bias", l);
    add(list, &L->o_proj.weight, H, q_dim, "model.layers.%d.self_attn.o_proj.weight", l);
    if (c->o_bias) add(list, &L->o_proj.bias, H, 0, "model.layers.%d.self_attn.o_proj.bias", l);
    if (c->qk_norm) {
        add(list, &L->q_norm, D, 0, "model.layers.%d.self_attn.q_norm.weight", l);
        add(list, &L->k_norm, D, 0, "model.layers.%d.self_attn.k_norm.weight", l);
    }
    add(list, &L->gate_proj.weight, I, H, "model.layers.%d.mlp.gate_proj.weight", l);
    add(list, &L->up_proj.weight, I, H, "model.layers.%d.mlp.up_proj.weight", l);
    add(list, &L->down_proj.weight, H, I, "model.layers.%d.mlp.down_proj.weight", l);
    add(list, &L->input_layernorm, H, 0, "model.layers.%d.input_layernorm.weight", l);
    add(list, &L->post_attention_layernorm, H, 0, "model.layers.%d.post_attention_layernorm.weight", l);
}

static int list_specs(ct_llama *m, ct_llama_param_spec *out) {
    const ct_llama_config *c = &m->config;
    spec_list list = {out, 0};
    add(&list, &m->embed_tokens, c->vocab_size, c->hidden_size, "model.embed_tokens.weight", 0);
    for (int l = 0; l < (int)c->num_hidden_layers; l++) add_layer(&list, c, &m->layers[l], l);
    add(&list, &m->norm, c->hidden_size, 0, "model.norm.weight", 0);
    if (!c->tie_word_embeddings) add(&list, &m->lm_head.weight, c->vocab_size, c->hidden_size, "lm_head.weight", 0);
    return list.n;
}

ct_llama_param_spec *ct_llama_param_specs(ct_llama *m, int *n) {
    *n = list_specs(m, NULL);
    ct_llama_param_spec *specs = ct_calloc((size_t)*n, sizeof *specs, "parameter specs");
    if (specs) list_specs(m, specs);
    return specs;
}

ct_llama *ct_llama_skeleton(const ct_llama_config *cfg) {
    if (ct_llama_config_validate(cfg, "model config") < 0) return NULL;
    ct_llama *m = ct_calloc(1, sizeof *m, "llama model");
    if (!m) return NULL;
    m->config = *cfg;
    m->layers = ct_calloc((size_t)cfg->num_hidden_layers, sizeof *m->layers, "llama layers");
    m->params = m->layers ? ct_calloc((size_t)list_specs(m, NULL), sizeof *m->params, "llama parameter list") : NULL;
    m->inv_freq = ct_calloc((size_t)(cfg->head_dim / 2), sizeof *m->inv_freq, "RoPE table");
    if (!m->layers || !m->params || !m->inv_freq) {
        ct_llama_free(m);
        return NULL;
    }
    ct_llama_rope_inv_freq(cfg, m->inv_freq);
    return m;
}

int ct_llama_allocate(ct_llama *m) {
    int n, rc = 0;
    ct_llama_param_spec *specs = ct_llama_param_specs(m, &n);
    if (!specs) return -1;
    for (int i = 0; i < n && rc == 0; i++) {
        ct_tensor *t = ct_tensor_new(CT_F32, specs[i].ndim, specs[i].shape, specs[i].name);
        if (!t) {
            rc = ct_fail_context("building a %s model: ", ct_llama_arch_name(m->config.arch));
            break;
        }
        t->requires_grad = true;
        /* A fresh norm is the identity, as transformers makes it; the rest starts at zero. */
        if (t->ndim == 1 && strstr(t->name, "norm")) ct_fill(t, 1.0);
        *specs[i].slot = t;
        m->params[m->n_params++] = t;
    }
    if (m->config.tie_word_embeddings) m->lm_head.weight = m->embed_tokens;
    free(specs);
    return rc;
}

int64_t ct_llama_config_num_params(const ct_llama_config *cfg) {
    ct_llama *m = ct_llama_skeleton(cfg);
    int n = 0;
    ct_llama_param_spec *specs = m ? ct_llama_param_specs(m, &n) : NULL;
    int64_t total = -1;
    if (specs) {
        total = 0;
        for (int i = 0; i < n; i++) total += specs[i].shape[0] * (specs[i].ndim == 2 ? specs[i].shape[1] : 1);
    }
    free(specs);
    ct_llama_free(m);
    return total;
}

ct_llama *ct_llama_new(const ct_llama_config *cfg) {
    ct_llama *m = ct_llama_skeleton(cfg);
    if (m && ct_llama_allocate(m) < 0) {
        ct_llama_free(m);
        return NULL;
    }
    return m;
}

void ct_llama_free(ct_llama *m) {
    if (!m) return;
    ct_llama_release_adapters(m);
    ct_prune_release_masks(m);
    for (int i = 0; i < m->n_params; i++) ct_tensor_free(m->params[i]);
    free(m->params);
    free(m->layers);
    free(m->inv_freq);
    ct_tokenizer_free(m->tokenizer);
    free(m->source_dir);
    free(m);
}

ct_tensor *ct_llama_param(const ct_llama *m, const char *name) {
    for (int i = 0; i < m->n_params; i++)
        if (!strcmp(m->params[i]->name, name)) return m->params[i];
    return NULL;
}

bool ct_llama_param_decays(const ct_tensor *param) { return param->ndim >= 2; }

int64_t ct_llama_num_params(const ct_llama *m) {
    int64_t n = 0;
    for (int i = 0; i < m->n_params; i++) n += ct_numel(m->params[i]);
    return n;
}
