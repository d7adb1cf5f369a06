/* PEFT adapter folders on the LLaMA family (models/llama_peft.h). */
#include "models/llama_peft.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "models/llama_lora.h"

static ct_lora_options options_of(const ct_peft_config *c) {
    return (ct_lora_options){.r = c->r, .alpha = c->lora_alpha, .dropout = c->lora_dropout, .use_rslora = c->use_rslora,
                             .use_dora = c->use_dora,
                             .init = c->init_lora_weights == CT_PEFT_INIT_GAUSSIAN ? CT_LORA_INIT_GAUSSIAN
                                                                                  : CT_LORA_INIT_KAIMING};
}

/* The model's tensor for a modules_to_save module, or NULL with a message. */
static ct_tensor *saved_target(ct_llama *m, const ct_peft_key *key, const char *file_key) {
    if (strcmp(key->param, "weight"))
        return ct_fail("%s: modules_to_save %s.%s: this model's %s has no %s", file_key, key->module, key->param,
                       key->module, key->param), NULL;
    if (!strcmp(key->module, "lm_head")) {
        if (ct_llama_untie_lm_head(m) < 0) return NULL;
        return m->lm_head.weight;
    }
    if (!strcmp(key->module, "model.embed_tokens")) return m->embed_tokens;
    ct_fail("%s: modules_to_save %s: ctune trains lm_head and model.embed_tokens fully, not %s", file_key, key->module,
            key->module);
    return NULL;
}

static int attach_targets(ct_llama *m, const ct_peft_adapter *ad) {
    const ct_lora_options o = options_of(&ad->config);
    for (int l = 0; l < m->config.num_hidden_layers; l++)
        for (int i = 0; i < CT_LORA_MODULES; i++) {
            char path[160];
            ct_llama_module_path(l, i, path, sizeof path);
            if (ct_peft_targets(&ad->config, path)) CT_TRY(ct_llama_add_lora_at(m, l, i, &o, 0));
        }
    return 0;
}

/* The module's adapter (by path), or NULL. */
static ct_lora *adapter_at(const ct_llama *m, const char *module) {
    for (int l = 0; l < m->config.num_hidden_layers; l++)
        for (int i = 0; i < CT_LORA_MODULES; i++) {
            char path[160];
            ct_llama_module_path(l, i, path, sizeof path);
            if (!strcmp(path, module)) return ct_llama_lora_of(m, l, i);
        }
    return NULL;
}

int ct_llama_apply_peft(ct_llama *m, const ct_peft_adapter *ad) {
    CT_TRY(attach_targets(m, ad));
    int attached = ct_llama_lora_count(m), loaded = 0;
    for (int k = 0; k < ad->n_keys; k++) {
        const ct_peft_key *key = &ad->keys[k];
        const char *file_key = ct_safetensors_at(ad->tensors, k)->name;
        ct_tensor *dst;
        if (key->kind == CT_PEFT_SAVED) {
            dst = saved_target(m, key, file_key);
        } else {
            ct_lora *a = adapter_at(m, key->module);
            if (!a) return ct_fail("%s: this model has no projection %s for the adapter's tensor", file_key, key->module);
            dst = key->kind == CT_PEFT_LORA_A ? a->A : key->kind == CT_PEFT_LORA_B ? a->B : a->magnitude;
            loaded += key->kind != CT_PEFT_MAGNITUDE;
        }
        if (!dst || ct_peft_load_into(ad, key->module, key->kind, key->param, dst) < 0) return -1;
    }
    if (loaded != 2 * attached)
        return ct_fail("adapter: the config targets %d projections of this model but the file holds tensors for %d; "
                       "the adapter was made for another model",
                       attached, loaded / 2);
    return 0;
}

int ct_llama_apply_peft_dir(ct_llama *m, const char *dir) {
    ct_peft_adapter *ad = ct_peft_adapter_open(dir);
    const int rc = ad ? ct_llama_apply_peft(m, ad) : -1;
    ct_peft_adapter_close(ad);
    return rc < 0 ? ct_fail_context("--adapter %s: ", dir) : 0;
}

int ct_llama_peft_items(const ct_llama *m, const char *const *modules_to_save, int n_save, ct_peft_item **items,
                        int *n) {
    enum { PATH = 96 };
    const int adapters = ct_llama_lora_count(m), most = 3 * adapters + n_save;
    /* One block: the items, then the module paths they point at (freed together). */
    *items = ct_calloc(1, (size_t)(most ? most : 1) * sizeof **items + (size_t)adapters * PATH, "adapter items");
    *n = 0;
    if (!*items) return -1;
    char *paths = (char *)(*items + (most ? most : 1));
    for (int l = 0; l < m->config.num_hidden_layers; l++)
        for (int i = 0; i < CT_LORA_MODULES; i++) {
            const ct_lora *a = ct_llama_lora_of(m, l, i);
            if (!a) continue;
            ct_llama_module_path(l, i, paths, PATH);
            (*items)[(*n)++] = (ct_peft_item){paths, CT_PEFT_LORA_A, NULL, a->A};
            (*items)[(*n)++] = (ct_peft_item){paths, CT_PEFT_LORA_B, NULL, a->B};
            if (a->magnitude) (*items)[(*n)++] = (ct_peft_item){paths, CT_PEFT_MAGNITUDE, NULL, a->magnitude};
            paths += PATH;
        }
    for (int s = 0; s < n_save; s++) {
        if (!strcmp(modules_to_save[s], "lm_head"))
            (*items)[(*n)++] = (ct_peft_item){"lm_head", CT_PEFT_SAVED, "weight", m->lm_head.weight};
        else if (!strcmp(modules_to_save[s], "embed_tokens"))
            (*items)[(*n)++] = (ct_peft_item){"model.embed_tokens", CT_PEFT_SAVED, "weight", m->embed_tokens};
        else {
            free(*items);
            *items = NULL;
            return ct_fail("lora.modules_to_save: '%s' is not lm_head or embed_tokens", modules_to_save[s]);
        }
    }
    return 0;
}
