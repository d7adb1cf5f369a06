/* LoRA on the LLaMA family (models/llama_lora.h). */
#include "models/llama_lora.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/device.h"
#include "core/error.h"
#include "core/text_list.h"

const char *const ct_lora_module_names[CT_LORA_MODULES] = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                                           "gate_proj", "up_proj", "down_proj"};
static const char *const module_groups[CT_LORA_MODULES] = {"self_attn", "self_attn", "self_attn", "self_attn",
                                                           "mlp",       "mlp",       "mlp"};
static const size_t module_offsets[CT_LORA_MODULES] = {
    offsetof(ct_llama_layer, q_proj),    offsetof(ct_llama_layer, k_proj),  offsetof(ct_llama_layer, v_proj),
    offsetof(ct_llama_layer, o_proj),    offsetof(ct_llama_layer, gate_proj), offsetof(ct_llama_layer, up_proj),
    offsetof(ct_llama_layer, down_proj)};

/* Dropout streams of adapters: op ids from 2^20 up, above the residual dropout's 2 * layer + 1. */
#define LORA_SITE_BASE (1u << 20)

static ct_linear *module_of(const ct_llama *m, int layer, int module) {
    return (ct_linear *)((char *)&m->layers[layer] + module_offsets[module]);
}

ct_lora *ct_llama_lora_of(const ct_llama *m, int layer, int module) { return module_of(m, layer, module)->adapter; }

int ct_llama_lora_count(const ct_llama *m) {
    int n = 0;
    for (int l = 0; l < m->config.num_hidden_layers; l++)
        for (int i = 0; i < CT_LORA_MODULES; i++) n += module_of(m, l, i)->adapter != NULL;
    return n;
}

bool ct_llama_lora_has_dora(const ct_llama *m) {
    for (int l = 0; l < m->config.num_hidden_layers; l++)
        for (int i = 0; i < CT_LORA_MODULES; i++)
            if (module_of(m, l, i)->adapter && module_of(m, l, i)->adapter->magnitude) return true;
    return false;
}

/* The module index of one target name into *targets. */
static int add_target(const char *key, const char *item, unsigned *targets) {
    if (!strcmp(item, "all-linear")) {
        *targets |= (1u << CT_LORA_MODULES) - 1;
        return 0;
    }
    for (int i = 0; i < CT_LORA_MODULES; i++)
        if (!strcmp(item, ct_lora_module_names[i])) {
            *targets |= 1u << i;
            return 0;
        }
    return ct_fail("%s: '%s' is not a module of this model; the modules are q_proj, k_proj, v_proj, o_proj, "
                   "gate_proj, up_proj, down_proj (or all-linear)%s",
                   key, item, !strcmp(item, "lm_head") ? "; lm_head trains fully through lora.modules_to_save" : "");
}

int ct_llama_lora_targets(const char *list, const char *key, unsigned *targets) {
    *targets = 0;
    char item[128];
    int got;
    for (const char *p = list; (got = ct_list_next(&p, item, sizeof item)) == 1;) CT_TRY(add_target(key, item, targets));
    if (got < 0) return ct_fail_context("%s: ", key);
    if (!*targets) return ct_fail("%s is empty; name the modules to adapt, e.g. [q_proj, v_proj]", key);
    return 0;
}

int ct_llama_lora_layers(const char *list, const char *key, int num_layers, bool *flags) {
    for (int i = 0; i < num_layers; i++) flags[i] = false;
    char item[32];
    int got, count = 0;
    for (const char *p = list; (got = ct_list_next(&p, item, sizeof item)) == 1; count++) {
        char *end;
        long v = strtol(item, &end, 10);
        if (*end || end == item || v < 0 || v >= num_layers)
            return ct_fail("%s: '%s' is not a layer index of this model (0 to %d)", key, item, num_layers - 1);
        flags[v] = true;
    }
    if (got < 0) return ct_fail_context("%s: ", key);
    if (count == 0)
        for (int i = 0; i < num_layers; i++) flags[i] = true;
    return 0;
}

static int append_params(ct_llama *m, ct_tensor *const *tensors, int n) {
    ct_tensor **grown = realloc(m->params, (size_t)(m->n_params + n) * sizeof *grown);
    if (!grown) return ct_fail("out of memory for the parameter list");
    m->params = grown;
    for (int i = 0; i < n; i++) m->params[m->n_params++] = tensors[i];
    return 0;
}

void ct_llama_module_path(int layer, int module, char *buf, size_t size) {
    snprintf(buf, size, "model.layers.%d.%s.%s", layer, module_groups[module], ct_lora_module_names[module]);
}

int ct_llama_add_lora_at(ct_llama *m, int layer, int module, const ct_lora_options *options, uint64_t seed) {
    if (ct_llama_device(m) != CT_CPU)
        return ct_fail("lora: attach adapters before moving the model to %s", ct_device_name(ct_llama_device(m)));
    if (layer < 0 || layer >= m->config.num_hidden_layers || module < 0 || module >= CT_LORA_MODULES)
        return ct_fail("lora: no module %d in layer %d of a %d-layer model", module, layer, (int)m->config.num_hidden_layers);
    ct_linear *lin = module_of(m, layer, module);
    char path[160];
    ct_llama_module_path(layer, module, path, sizeof path);
    if (lin->adapter) return ct_fail("lora: %s already has an adapter", path);
    ct_lora *a = ct_lora_new(path, lin->weight->shape[1], lin->weight->shape[0], options, seed,
                             LORA_SITE_BASE + 8u * (uint32_t)layer + (uint32_t)module);
    if (!a) return -1;
    ct_tensor *tensors[3] = {a->A, a->B, a->magnitude};
    if ((a->magnitude && ct_lora_dora_init(a, lin->weight) < 0) || append_params(m, tensors, a->magnitude ? 3 : 2) < 0) {
        ct_lora_free(a);
        return -1;
    }
    lin->adapter = a;
    return 0;
}

/* Detaches and frees the adapters whose tensors sit at m->params[first..): a failed attach. */
static void take_back(ct_llama *m, int first) {
    for (int l = 0; l < m->config.num_hidden_layers; l++)
        for (int i = 0; i < CT_LORA_MODULES; i++) {
            ct_linear *lin = module_of(m, l, i);
            bool newer = false;
            for (int p = first; lin->adapter && p < m->n_params; p++) newer |= m->params[p] == lin->adapter->A;
            if (!newer) continue;
            ct_lora_free(lin->adapter);
            lin->adapter = NULL;
        }
    m->n_params = first;
}

int ct_llama_add_lora(ct_llama *m, const ct_llama_lora_spec *spec) {
    CT_TRY(ct_lora_check_options(&spec->options));
    const int first = m->n_params;
    for (int l = 0; l < m->config.num_hidden_layers; l++) {
        if (spec->layers && !spec->layers[l]) continue;
        for (int i = 0; i < CT_LORA_MODULES; i++)
            if ((spec->targets & (1u << i)) && ct_llama_add_lora_at(m, l, i, &spec->options, spec->seed) < 0) {
                take_back(m, first);
                return -1;
            }
    }
    return 0;
}

void ct_llama_release_adapters(ct_llama *m) {
    for (int l = 0; m->layers && l < m->config.num_hidden_layers; l++)
        for (int i = 0; i < CT_LORA_MODULES; i++) {
            ct_linear *lin = module_of(m, l, i);
            if (!lin->adapter) continue;
            lin->adapter->A = lin->adapter->B = lin->adapter->magnitude = NULL; /* listed in m->params: freed with them */
            ct_lora_free(lin->adapter);
            lin->adapter = NULL;
        }
}

void ct_llama_set_adapters(ct_llama *m, bool enabled) {
    for (int l = 0; l < m->config.num_hidden_layers; l++)
        for (int i = 0; i < CT_LORA_MODULES; i++) {
            ct_lora *a = module_of(m, l, i)->adapter;
            if (a) a->disabled = !enabled;
        }
}

/* Removes t from m->params (keeping the order of the rest). */
static void unlist(ct_llama *m, const ct_tensor *t) {
    int k = 0;
    for (int p = 0; p < m->n_params; p++)
        if (m->params[p] != t) m->params[k++] = m->params[p];
    m->n_params = k;
}

int ct_llama_merge_lora(ct_llama *m) {
    if (ct_llama_device(m) != CT_CPU) return ct_fail("lora merge: move the model to the CPU first");
    /* An INT8 base: the adapters merge into q · scale, the weights they were trained on. */
    CT_TRY(ct_llama_dequantize(m));
    for (int l = 0; l < m->config.num_hidden_layers; l++)
        for (int i = 0; i < CT_LORA_MODULES; i++)
            if (module_of(m, l, i)->adapter) CT_TRY(ct_lora_merge_into(module_of(m, l, i)->adapter, module_of(m, l, i)->weight));
    for (int l = 0; l < m->config.num_hidden_layers; l++)
        for (int i = 0; i < CT_LORA_MODULES; i++) {
            ct_linear *lin = module_of(m, l, i);
            if (!lin->adapter) continue;
            unlist(m, lin->adapter->A);
            unlist(m, lin->adapter->B);
            if (lin->adapter->magnitude) unlist(m, lin->adapter->magnitude);
            ct_lora_free(lin->adapter);
            lin->adapter = NULL;
        }
    return 0;
}

int ct_llama_untie_lm_head(ct_llama *m) {
    if (m->lm_head.weight != m->embed_tokens) return 0;
    /* The copy trains: an f32 master whatever dtype the frozen embedding is held in. */
    ct_tensor *copy = ct_tensor_new_on(m->embed_tokens->device, CT_F32, m->embed_tokens->ndim, m->embed_tokens->shape,
                                       "lm_head.weight");
    if (!copy || ct_copy(copy, m->embed_tokens) < 0 || append_params(m, &copy, 1) < 0) {
        ct_tensor_free(copy);
        return ct_fail_context("modules_to_save lm_head on a tied model: ");
    }
    m->lm_head.weight = copy;
    m->config.tie_word_embeddings = false;
    return 0;
}
