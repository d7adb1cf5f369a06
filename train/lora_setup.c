/* LoRA in a run (train/lora_setup.h). */
#include "train/lora_setup.h"

#include <stdlib.h>
#include <string.h>

#include "checkpoints/peft.h"
#include "core/error.h"
#include "core/text_list.h"
#include "models/llama_lora.h"
#include "models/llama_peft.h"
#include "train/trainable.h"

static int check_modules_to_save(const char *list) {
    char item[64];
    int got;
    for (const char *p = list; (got = ct_list_next(&p, item, sizeof item)) == 1;)
        if (strcmp(item, "lm_head") && strcmp(item, "embed_tokens"))
            return ct_fail("lora.modules_to_save: '%s' is not a module ctune trains fully; use lm_head or embed_tokens",
                           item);
    return got < 0 ? ct_fail_context("lora.modules_to_save: ") : 0;
}

static int apply_adapter_file(ct_llama *m, const char *dir, FILE *log) {
    ct_peft_adapter *ad = ct_peft_adapter_open(dir);
    if (!ad) return ct_fail_context("model.adapter: ");
    int rc = ct_llama_apply_peft(m, ad);
    if (rc == 0 && log)
        fprintf(log, "adapter: %s (%s r %d, alpha %g%s, %d projections)\n", dir, ad->config.use_dora ? "DoRA" : "LoRA",
                ad->config.r, ad->config.lora_alpha, ad->config.use_rslora ? ", rsLoRA" : "", ct_llama_lora_count(m));
    ct_peft_adapter_close(ad);
    return rc < 0 ? ct_fail_context("model.adapter=%s: ", dir) : 0;
}

static int attach_from_recipe(ct_llama *m, const ct_recipe *r) {
    const ct_recipe_lora *l = &r->lora;
    ct_llama_lora_spec spec = {.options = {.r = l->r, .alpha = l->alpha, .dropout = l->dropout,
                                           .use_rslora = l->use_rslora,
                                           .use_dora = l->use_dora,
                                           .init = l->init == CT_RECIPE_LORA_GAUSSIAN ? CT_LORA_INIT_GAUSSIAN
                                                                                     : CT_LORA_INIT_KAIMING},
                               .seed = (uint64_t)r->seed};
    CT_TRY(ct_llama_lora_targets(l->target_modules, "lora.target_modules", &spec.targets));
    bool *layers = ct_calloc((size_t)m->config.num_hidden_layers, sizeof *layers, "lora layers");
    if (!layers) return -1;
    int rc = ct_llama_lora_layers(l->layers, "lora.layers", (int)m->config.num_hidden_layers, layers);
    spec.layers = layers;
    if (rc == 0) rc = ct_llama_add_lora(m, &spec);
    free(layers);
    return rc;
}

int ct_lora_setup_model(ct_llama *m, const ct_recipe *r, FILE *log) {
    if (r->model.adapter[0]) CT_TRY(apply_adapter_file(m, r->model.adapter, log));
    if (!r->lora.enabled) {
        if (!r->model.adapter[0]) return 0;
        if (log) fprintf(log, "adapter: merged into the base (lora.enabled is false: the merged model trains)\n");
        return ct_llama_merge_lora(m);
    }
    CT_TRY(check_modules_to_save(r->lora.modules_to_save));
    if (!r->model.adapter[0]) CT_TRY(attach_from_recipe(m, r));
    if (ct_list_has(r->lora.modules_to_save, "lm_head")) CT_TRY(ct_llama_untie_lm_head(m));
    if (log && !r->model.adapter[0])
        fprintf(log, "lora: r %d, alpha %g%s%s, dropout %g on %d projections (%s)\n", r->lora.r, r->lora.alpha,
                r->lora.use_rslora ? " (rsLoRA)" : "", r->lora.use_dora ? " (DoRA)" : "", r->lora.dropout, ct_llama_lora_count(m), r->lora.target_modules);
    return 0;
}

int ct_lora_trainable_patterns(const ct_recipe *r, const ct_llama *m, char *buf, size_t size) {
    if (!r->lora.enabled) {
        snprintf(buf, size, "%s", r->train.trainable);
        return 0;
    }
    if (r->train.trainable[0])
        return ct_fail("train.trainable=%s: with lora.enabled the adapters and lora.modules_to_save train; leave "
                       "train.trainable empty (train.freeze may still freeze some of them)",
                       r->train.trainable);
    snprintf(buf, size, "*.lora_A.weight,*.lora_B.weight%s%s%s", ct_llama_lora_has_dora(m) ? ",*.lora_magnitude_vector" : "",
             ct_list_has(r->lora.modules_to_save, "lm_head") ? ",lm_head.weight" : "",
             ct_list_has(r->lora.modules_to_save, "embed_tokens") ? ",model.embed_tokens.weight" : "");
    return 0;
}

static bool base_frozen(const char *name, void *ctx) {
    const ct_recipe *r = ctx;
    if (ct_trainable_matches(r->train.freeze, name)) return true;
    if (!r->lora.enabled) return r->train.trainable[0] && !ct_trainable_matches(r->train.trainable, name);
    /* lora.modules_to_save lm_head on a tied model trains an f32 copy (ct_llama_untie_lm_head) */
    const bool saved = (!strcmp(name, "lm_head.weight") && ct_list_has(r->lora.modules_to_save, "lm_head")) ||
                       (!strcmp(name, "model.embed_tokens.weight") && ct_list_has(r->lora.modules_to_save, "embed_tokens"));
    return !saved;
}

void ct_lora_base_load_options(const ct_recipe *r, ct_llama_load_options *o) {
    static const ct_base_dtype dtypes[] = {CT_BASE_AUTO, CT_BASE_F32, CT_BASE_BF16, CT_BASE_INT8};
    *o = (ct_llama_load_options){.base_dtype = dtypes[r->model.base_dtype], .frozen = base_frozen, .ctx = (void *)r,
                                 .why = r->lora.enabled      ? "lora.modules_to_save trains it fully"
                                        : r->train.trainable[0] ? "train.trainable names it"
                                                                : "full fine-tuning: lora.enabled is false and "
                                                                  "train.trainable is empty"};
}

int ct_lora_write_adapter(const ct_llama *m, const ct_recipe *r, const char *dir) {
    ct_peft_config cfg;
    ct_peft_config_init(&cfg);
    cfg.r = r->lora.r;
    cfg.lora_alpha = r->lora.alpha;
    cfg.lora_dropout = r->lora.dropout;
    cfg.use_rslora = r->lora.use_rslora;
    cfg.use_dora = ct_llama_lora_has_dora(m);
    cfg.init_lora_weights = r->lora.init == CT_RECIPE_LORA_GAUSSIAN ? CT_PEFT_INIT_GAUSSIAN : CT_PEFT_INIT_DEFAULT;
    /* The adapted projections as module paths: exact, whatever target_modules / layers said. */
    const char *save[2];
    int n_save = 0;
    if (ct_list_has(r->lora.modules_to_save, "lm_head")) save[n_save++] = "lm_head";
    if (ct_list_has(r->lora.modules_to_save, "embed_tokens")) save[n_save++] = "embed_tokens";
    ct_peft_item *items = NULL;
    int n = 0;
    int rc = ct_llama_peft_items(m, save, n_save, &items, &n);
    char **targets = rc == 0 ? ct_calloc((size_t)(n ? n : 1), sizeof *targets, "adapter targets") : NULL;
    char **saves = rc == 0 ? ct_calloc(2, sizeof *saves, "modules_to_save") : NULL;
    if (!targets || !saves) rc = -1;
    for (int i = 0; rc == 0 && i < n; i++)
        if (items[i].kind == CT_PEFT_LORA_A && !(targets[cfg.n_target_modules++] = ct_strdup(items[i].module))) rc = -1;
    for (int i = 0; rc == 0 && i < n_save; i++)
        if (!(saves[cfg.n_modules_to_save++] = ct_strdup(save[i]))) rc = -1;
    cfg.target_modules = targets;
    cfg.modules_to_save = n_save ? saves : NULL;
    if (!n_save) free(saves);
    cfg.task_type = ct_strdup("CAUSAL_LM");
    if (rc == 0) rc = ct_peft_adapter_write(dir, &cfg, items, n);
    free(items);
    ct_peft_config_free(&cfg);
    return rc;
}
