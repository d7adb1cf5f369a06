/* ct_llama_config -> config.json. Written in the Hub's dialect (rope_theta and rope_scaling at
 * the top level, torch_dtype), which transformers 4 and 5 and the GGUF converters all read. When
 * the model came from a folder, that config.json is the base: keys ctune does not own
 * (transformers_version, use_cache, a chat model's extras) pass through unchanged. */
#include <cjson/cJSON.h>
#include <string.h>

#include "core/error.h"
#include "models/llama_config.h"

/* Keys are matched case-sensitively, as transformers reads them: cJSON_HasObjectItem ignores
 * case, so a base config holding "Hidden_Size" made the replace below fail, leaking the value
 * and leaving the key unset (found by tests/fuzz/fuzz_config_json.c). */
static void set_item(cJSON *root, const char *key, cJSON *value) {
    if (!value) return;
    if (cJSON_GetObjectItemCaseSensitive(root, key)) cJSON_ReplaceItemInObjectCaseSensitive(root, key, value);
    else cJSON_AddItemToObject(root, key, value);
}

static void set_number(cJSON *root, const char *key, double v) { set_item(root, key, cJSON_CreateNumber(v)); }
static void set_bool(cJSON *root, const char *key, bool v) { set_item(root, key, cJSON_CreateBool(v)); }
static void set_token(cJSON *root, const char *key, int64_t id) {
    set_item(root, key, id < 0 ? cJSON_CreateNull() : cJSON_CreateNumber((double)id));
}

static const char *dtype_name(ct_dtype dtype) {
    return dtype == CT_BF16 ? "bfloat16" : dtype == CT_F16 ? "float16" : "float32";
}

static void set_rope(cJSON *root, const ct_llama_config *cfg) {
    cJSON_DeleteItemFromObjectCaseSensitive(root, "rope_parameters"); /* transformers 5's spelling */
    set_number(root, "rope_theta", cfg->rope_theta);
    if (cfg->rope_scaling.type != CT_ROPE_LLAMA3) {
        set_item(root, "rope_scaling", cJSON_CreateNull());
        return;
    }
    cJSON *s = cJSON_CreateObject();
    cJSON_AddStringToObject(s, "rope_type", "llama3");
    cJSON_AddNumberToObject(s, "factor", cfg->rope_scaling.factor);
    cJSON_AddNumberToObject(s, "low_freq_factor", cfg->rope_scaling.low_freq_factor);
    cJSON_AddNumberToObject(s, "high_freq_factor", cfg->rope_scaling.high_freq_factor);
    cJSON_AddNumberToObject(s, "original_max_position_embeddings",
                            (double)cfg->rope_scaling.original_max_position_embeddings);
    set_item(root, "rope_scaling", s);
}

/* Qwen's layer_types list is derived from the sliding-window keys and would go stale when a
 * student has fewer layers; transformers recomputes it when absent. */
static void set_sliding_window(cJSON *root, const ct_llama_config *cfg) {
    cJSON_DeleteItemFromObjectCaseSensitive(root, "layer_types");
    if (cfg->arch == CT_ARCH_LLAMA) return;
    if (cfg->arch != CT_ARCH_MISTRAL) set_bool(root, "use_sliding_window", cfg->sliding_window > 0);
    if (cfg->sliding_window > 0) set_number(root, "sliding_window", (double)cfg->sliding_window);
    else set_item(root, "sliding_window", cJSON_CreateNull());
}

static void set_token_ids(cJSON *root, const ct_llama_config *cfg) {
    set_token(root, "bos_token_id", cfg->bos_token_id);
    set_token(root, "pad_token_id", cfg->pad_token_id);
    if (cfg->n_eos == 0) set_token(root, "eos_token_id", -1);
    else if (cfg->n_eos == 1) set_token(root, "eos_token_id", cfg->eos_token_ids[0]);
    else {
        cJSON *list = cJSON_CreateArray();
        for (int i = 0; i < cfg->n_eos; i++) cJSON_AddItemToArray(list, cJSON_CreateNumber((double)cfg->eos_token_ids[i]));
        set_item(root, "eos_token_id", list);
    }
}

char *ct_llama_config_to_json(const ct_llama_config *cfg, const char *base_json, ct_dtype store_dtype) {
    cJSON *root = base_json ? cJSON_Parse(base_json) : NULL;
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        root = cJSON_CreateObject();
    }
    if (!root) {
        ct_fail("config.json: out of memory building the JSON");
        return NULL;
    }
    cJSON *archs = cJSON_CreateArray();
    cJSON_AddItemToArray(archs, cJSON_CreateString(ct_llama_arch_name(cfg->arch)));
    set_item(root, "architectures", archs);
    set_item(root, "model_type", cJSON_CreateString(ct_llama_model_type(cfg->arch)));
    set_number(root, "hidden_size", (double)cfg->hidden_size);
    set_number(root, "intermediate_size", (double)cfg->intermediate_size);
    set_number(root, "num_hidden_layers", (double)cfg->num_hidden_layers);
    set_number(root, "num_attention_heads", (double)cfg->num_attention_heads);
    set_number(root, "num_key_value_heads", (double)cfg->num_key_value_heads);
    set_number(root, "head_dim", (double)cfg->head_dim);
    set_number(root, "vocab_size", (double)cfg->vocab_size);
    set_number(root, "max_position_embeddings", (double)cfg->max_position_embeddings);
    set_number(root, "rms_norm_eps", cfg->rms_norm_eps);
    set_number(root, "initializer_range", cfg->initializer_range);
    set_item(root, "hidden_act", cJSON_CreateString("silu"));
    set_bool(root, "tie_word_embeddings", cfg->tie_word_embeddings);
    if (cfg->arch == CT_ARCH_LLAMA || cfg->arch == CT_ARCH_QWEN3) set_bool(root, "attention_bias", cfg->qkv_bias);
    if (cfg->arch == CT_ARCH_LLAMA) set_bool(root, "mlp_bias", false);
    set_rope(root, cfg);
    set_sliding_window(root, cfg);
    set_token_ids(root, cfg);
    cJSON_DeleteItemFromObjectCaseSensitive(root, "dtype");
    /* The weights written beside this config are plain (an INT8 export adds its own). */
    cJSON_DeleteItemFromObjectCaseSensitive(root, "quantization_config");
    set_item(root, "torch_dtype", cJSON_CreateString(dtype_name(store_dtype)));
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) ct_fail("config.json: out of memory printing the JSON");
    return text;
}
