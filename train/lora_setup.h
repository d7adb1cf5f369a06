/* LoRA in a run (recipe section lora:, key model.adapter): the adapters attached to a loaded model
 * before the trainable set is chosen, the patterns of what trains, and what a finished run writes.
 * The same set-up rebuilds a LoRA checkpoint's model when it is loaded for evaluation. */
#ifndef CT_LORA_SETUP_H
#define CT_LORA_SETUP_H

#include <stdio.h>

#include "models/llama.h"
#include "train/recipe.h"

/* model.adapter (a PEFT folder) is applied; with lora.enabled it trains on (or new adapters are
 * attached from lora.*), lora.modules_to_save lm_head is untied; without lora.enabled an adapter
 * is merged into the base, which then trains as train.trainable says. log may be NULL. 0 or -1. */
int ct_lora_setup_model(ct_llama *m, const ct_recipe *r, FILE *log);

/* With lora.enabled, the train.trainable globs of m's adapters (DoRA magnitudes included) and
 * lora.modules_to_save, into buf
 * (a recipe that also sets train.trainable is refused: LoRA decides what trains); else
 * r->train.trainable. 0 or -1. */
int ct_lora_trainable_patterns(const ct_recipe *r, const ct_llama *m, char *buf, size_t size);

/* How model.path is loaded for this recipe (model.base_dtype): which tensors stay frozen (with
 * lora.enabled every base tensor but lora.modules_to_save; else those train.trainable leaves out
 * or train.freeze names) and the dtype they are held in. o keeps a pointer to r. */
void ct_lora_base_load_options(const ct_recipe *r, ct_llama_load_options *o);

/* A finished LoRA run: the PEFT adapter folder (adapter_config.json + adapter_model.safetensors)
 * into dir. 0 or -1. */
int ct_lora_write_adapter(const ct_llama *m, const ct_recipe *r, const char *dir);

#endif
