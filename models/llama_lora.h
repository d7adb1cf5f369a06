/* LoRA on the LLaMA family: which projections take adapters, attaching them, switching them off,
 * folding them into the base, and modules_to_save (models/lora.h for the adapter itself).
 *
 * Adapters attached to a model belong to it: their A and B join m->params after the base's
 * tensors (named "model.layers.L.self_attn.q_proj.lora_A.weight", ...), so the trainer's
 * trainable set, checkpoints and PEFT files see them like any parameter, and ct_llama_free frees
 * them. */
#ifndef CT_LLAMA_LORA_H
#define CT_LLAMA_LORA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "models/llama.h"
#include "models/lora.h"

/* The projections of a layer, as PEFT's target_modules names them. */
enum { CT_LORA_MODULES = 7 };
extern const char *const ct_lora_module_names[CT_LORA_MODULES]; /* q_proj, k_proj, ..., down_proj */

typedef struct {
    ct_lora_options options;
    unsigned targets;   /* bit i: ct_lora_module_names[i] */
    const bool *layers; /* num_hidden_layers flags, or NULL: every layer */
    uint64_t seed;      /* A's initialization */
} ct_llama_lora_spec;

/* Parses a target list ("q_proj,v_proj", or "all-linear": every projection but lm_head, as
 * PEFT) into *targets. `key` names the setting in errors, which list the model's module names. */
int ct_llama_lora_targets(const char *list, const char *key, unsigned *targets);
/* Parses a list of layer indices ("" = every layer) into flags[num_layers] (caller's array). */
int ct_llama_lora_layers(const char *list, const char *key, int num_layers, bool *flags);

/* Attaches one adapter to every targeted projection of every chosen layer. A projection that
 * already has one is refused. 0, or -1 with a message (the model unchanged). */
int ct_llama_add_lora(ct_llama *m, const ct_llama_lora_spec *spec);
/* One adapter on layer `layer`'s module `module` (ct_lora_module_names index). 0 or -1. */
int ct_llama_add_lora_at(ct_llama *m, int layer, int module, const ct_lora_options *options, uint64_t seed);
/* "model.layers.L.self_attn.q_proj": the HF module path of a projection, into buf. */
void ct_llama_module_path(int layer, int module, char *buf, size_t size);
/* The adapter of layer `layer`'s module `module` (ct_lora_module_names index), or NULL. */
ct_lora *ct_llama_lora_of(const ct_llama *m, int layer, int module);
/* Number of attached adapters. */
int ct_llama_lora_count(const ct_llama *m);
/* Whether any adapter is a DoRA one (has a magnitude vector). */
bool ct_llama_lora_has_dora(const ct_llama *m);
/* Turns every adapter off (the base alone: a free reference model) or on again. */
void ct_llama_set_adapters(ct_llama *m, bool enabled);
/* Folds every adapter into its weight (W + s·B·A, f64, rounded once; DoRA's m · (W + s·B·A) / n)
 * and detaches them, leaving a plain model whose parameters are the base's (adapters removed
 * from m->params). An INT8 base is first dequantized to f32 (ct_llama_dequantize): the weights
 * the adapters were trained on. 0 or -1. */
int ct_llama_merge_lora(ct_llama *m);

/* Frees the adapter structs of a model whose tensors ct_llama_free is about to free (it calls this). */
void ct_llama_release_adapters(ct_llama *m);

/* modules_to_save = lm_head on a tied model: gives lm_head a weight of its own (a copy of the
 * embedding named "lm_head.weight", appended to m->params) so it can train while the embedding
 * stays frozen, as PEFT's copy does; config.tie_word_embeddings becomes false. A no-op when
 * untied. 0 or -1. */
int ct_llama_untie_lm_head(ct_llama *m);

#endif
