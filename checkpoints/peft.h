/* PEFT adapter folders: adapter_config.json + adapter_model.safetensors, as Hugging Face peft's
 * save_pretrained writes them for a LoRA adapter and PeftModel.from_pretrained reads them.
 * Model-agnostic: modules are named by their HF module path ("model.layers.3.self_attn.q_proj");
 * the model decides which of its projections those are. docs/formats.md, "PEFT adapters", lists
 * every config field and what ctune does with it.
 *
 * Keys of adapter_model.safetensors (peft 0.21.2, a causal LM; the adapter name "default" is
 * dropped on save):
 *   base_model.model.<module>.lora_A.weight   [r, in]
 *   base_model.model.<module>.lora_B.weight   [out, r]
 *   base_model.model.<module>.lora_magnitude_vector   [out], DoRA (use_dora) only; no ".weight"
 *   base_model.model.<module>.<param>         a modules_to_save copy, e.g.
 *                                             base_model.model.lm_head.weight [vocab, hidden]
 *                                             (in memory peft calls it
 *                                             lm_head.modules_to_save.default.weight) */
#ifndef CT_PEFT_H
#define CT_PEFT_H

#include <stdbool.h>
#include <stddef.h>

#include "checkpoints/safetensors.h"

/* init_lora_weights: true (PEFT's default: A Kaiming-uniform with a = sqrt(5), B zeros), false
 * (both random, for tests), "gaussian" (A normal with std 1/r, B zeros). */
typedef enum { CT_PEFT_INIT_DEFAULT, CT_PEFT_INIT_RANDOM, CT_PEFT_INIT_GAUSSIAN } ct_peft_init;

typedef struct ct_peft_config {
    int r;
    double lora_alpha;
    double lora_dropout;
    bool target_all_linear;          /* target_modules: "all-linear" (every linear but lm_head) */
    char **target_modules;           /* else a list: module names or dotted path suffixes */
    int n_target_modules;
    int *layers_to_transform;        /* NULL: every layer */
    int n_layers_to_transform;
    bool layers_to_transform_scalar; /* written as a bare int, as it was read */
    char **layers_pattern;           /* NULL: peft's default ("layers", "h", "blocks", ...) */
    int n_layers_pattern;
    char **modules_to_save;          /* trained fully beside the adapters; NULL: none */
    int n_modules_to_save;
    bool use_rslora;                 /* scale alpha / sqrt(r) instead of alpha / r */
    bool use_dora;                   /* DoRA: every adapted module has a lora_magnitude_vector */
    ct_peft_init init_lora_weights;
    bool inference_mode;
    char *task_type;                 /* "CAUSAL_LM" or NULL */
    char *base_model_name_or_path;   /* NULL when unknown */
    char *revision;                  /* the hub revision of the base; kept, not used */
} ct_peft_config;

/* The defaults of peft's LoraConfig for a causal LM (r 8, alpha 8, dropout 0, no targets). */
void ct_peft_config_init(ct_peft_config *cfg);
void ct_peft_config_free(ct_peft_config *cfg);

/* Reads adapter_config.json (a path to it, or the adapter folder). Every key is either used,
 * ignored because it cannot change the result (revision, peft_version, ...), or refused with a
 * one-line error naming the file, the key and its value: an unknown key, peft_type other than
 * "LORA", bias other than "none", a regex target_modules, fan_in_fan_out, non-empty
 * rank_pattern / alpha_pattern, another method's settings. 0, or -1 (cfg left freed). */
int ct_peft_config_read(const char *path, ct_peft_config *cfg);
/* Writes adapter_config.json with every key peft 0.21.2's save_pretrained writes (so
 * PeftModel.from_pretrained loads it without a warning), atomically. 0 or -1. */
int ct_peft_config_write(const char *path, const ct_peft_config *cfg);
/* The JSON text ct_peft_config_write writes (the caller frees it); NULL with a message. */
char *ct_peft_config_to_json(const ct_peft_config *cfg);

/* s = alpha / r, or alpha / sqrt(r) with use_rslora. */
double ct_peft_scale(const ct_peft_config *cfg);

/* Whether peft puts an adapter on the linear module at this HF path, as peft matches it: a
 * target equal to the path or to its last dotted components ("q_proj", "self_attn.q_proj"); with
 * all-linear any path but lm_head (the caller passes only linear modules); and, with
 * layers_to_transform, only in those layers (the number after "<layers_pattern>."). */
bool ct_peft_targets(const ct_peft_config *cfg, const char *module_path);
/* Whether a module path is one of modules_to_save (the same suffix matching). */
bool ct_peft_saves(const ct_peft_config *cfg, const char *module_path);

/* ---- keys -------------------------------------------------------------------------------- */

typedef enum { CT_PEFT_LORA_A, CT_PEFT_LORA_B, CT_PEFT_SAVED, CT_PEFT_MAGNITUDE } ct_peft_kind;

/* Longest HF module path a key may carry. */
#define CT_PEFT_NAME_MAX 256

typedef struct ct_peft_key {
    ct_peft_kind kind;
    int layer;                       /* the number after "layers." (or another pattern); -1 if none */
    char module[CT_PEFT_NAME_MAX];   /* HF module path: "model.layers.3.self_attn.q_proj", "lm_head" */
    char param[32];                  /* CT_PEFT_SAVED: "weight" or "bias"; "weight" for A and B */
} ct_peft_key;

/* Splits a key of adapter_model.safetensors. -1 with a message naming the key when it does not
 * start with "base_model.model.", is another method's tensor, or is too long. */
int ct_peft_parse_key(const char *key, ct_peft_key *out);
/* The inverse: base_model.model.<module>.lora_A.weight (etc.) into buf. 0, or -1 when it does
 * not fit. */
int ct_peft_key_name(char *buf, size_t cap, const char *module, ct_peft_kind kind, const char *param);

/* ---- adapter folders --------------------------------------------------------------------- */

typedef struct ct_peft_adapter {
    ct_peft_config config;
    ct_safetensors *tensors;         /* adapter_model.safetensors */
    ct_peft_key *keys;               /* keys[i] is ct_safetensors_at(tensors, i) parsed */
    int n_keys;
} ct_peft_adapter;

/* Opens an adapter folder: reads the config, maps the tensors and checks them against it: every
 * key parses, every lora_A [r, in] has its lora_B [out, r] with the config's r (and, with use_dora,
 * its lora_magnitude_vector [out]; without, none), each LoRA module
 * is one the config targets and each saved module one of modules_to_save. Shapes against the
 * base model are the caller's check (ct_peft_load_into names both). NULL with a message. */
ct_peft_adapter *ct_peft_adapter_open(const char *dir);
void ct_peft_adapter_close(ct_peft_adapter *ad);
/* The tensor of a module (NULL, with a message naming the key, when absent). */
const ct_st_tensor *ct_peft_find(const ct_peft_adapter *ad, const char *module, ct_peft_kind kind,
                                 const char *param);
/* Copies it into a CPU tensor (f32, f64, bf16 or f16); a shape mismatch names the key and both
 * shapes. */
int ct_peft_load_into(const ct_peft_adapter *ad, const char *module, ct_peft_kind kind, const char *param,
                      ct_tensor *dst);

typedef struct ct_peft_item {
    const char *module;
    ct_peft_kind kind;
    const char *param;               /* NULL: "weight" */
    const ct_tensor *tensor;
} ct_peft_item;

/* Writes an adapter folder (created if missing): adapter_model.safetensors (f32) then
 * adapter_config.json, each atomically. The items are checked against the config first (as
 * ct_peft_adapter_open checks), so a refused adapter writes nothing. 0 or -1. */
int ct_peft_adapter_write(const char *dir, const ct_peft_config *cfg, const ct_peft_item *items, int n);

#endif
