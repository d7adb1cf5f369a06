/* config.json -> ct_llama_config: parsing, defaults per architecture, validation. Writing the
 * file back is in llama_config_write.c, the RoPE table in llama_rope.c. */
#include "models/llama_config.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "datasets/tokenizer.h"

/* Larger sizes are not a model but a corrupt or hostile file: refuse before allocating. */
#define MAX_DIM ((int64_t)1 << 24)
#define MAX_LAYERS 4096

static const struct {
    ct_llama_arch arch;
    const char *name, *model_type;
} ARCHS[] = {
    {CT_ARCH_LLAMA, "LlamaForCausalLM", "llama"},
    {CT_ARCH_MISTRAL, "MistralForCausalLM", "mistral"},
    {CT_ARCH_QWEN2, "Qwen2ForCausalLM", "qwen2"},
    {CT_ARCH_QWEN3, "Qwen3ForCausalLM", "qwen3"},
};
#define N_ARCHS (int)(sizeof ARCHS / sizeof ARCHS[0])

const char *ct_llama_arch_name(ct_llama_arch arch) {
    for (int i = 0; i < N_ARCHS; i++)
        if (ARCHS[i].arch == arch) return ARCHS[i].name;
    return "unknown";
}

const char *ct_llama_model_type(ct_llama_arch arch) {
    for (int i = 0; i < N_ARCHS; i++)
        if (ARCHS[i].arch == arch) return ARCHS[i].model_type;
    return "unknown";
}

void ct_llama_config_defaults(ct_llama_config *cfg, ct_llama_arch arch) {
    memset(cfg, 0, sizeof *cfg);
    cfg->arch = arch;
    cfg->rms_norm_eps = 1e-6;
    cfg->rope_theta = 10000.0;
    cfg->initializer_range = 0.02;
    cfg->max_position_embeddings = 2048;
    cfg->rope_scaling.type = CT_ROPE_DEFAULT;
    cfg->torch_dtype = CT_F32;
    cfg->bos_token_id = cfg->pad_token_id = -1;
    cfg->qkv_bias = arch == CT_ARCH_QWEN2;
    cfg->qk_norm = arch == CT_ARCH_QWEN3;
}

/* ---- typed getters: a present key of the wrong type is an error, an absent one keeps *out ---- */

static bool is_absent(const cJSON *item) { return !item || cJSON_IsNull(item); }

static int get_int(const cJSON *obj, const char *key, bool required, int64_t *out, const char *src) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (is_absent(item)) {
        if (required) return ct_fail("%s: key \"%s\" is missing; a LLaMA-family config.json must set it", src, key);
        return 0;
    }
    double v = cJSON_IsNumber(item) ? item->valuedouble : NAN;
    if (!(fabs(v) < 9.0e15) || v != floor(v))
        return ct_fail("%s: key \"%s\" must be an integer; fix the file", src, key);
    *out = (int64_t)v;
    return 0;
}

static int get_double(const cJSON *obj, const char *key, bool required, double *out, const char *src) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (is_absent(item)) {
        if (required) return ct_fail("%s: key \"%s\" is missing; a LLaMA-family config.json must set it", src, key);
        return 0;
    }
    if (!cJSON_IsNumber(item) || !isfinite(item->valuedouble))
        return ct_fail("%s: key \"%s\" must be a finite number; fix the file", src, key);
    *out = item->valuedouble;
    return 0;
}

static int get_bool(const cJSON *obj, const char *key, bool *out, const char *src) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (is_absent(item)) return 0;
    if (!cJSON_IsBool(item)) return ct_fail("%s: key \"%s\" must be true or false; fix the file", src, key);
    *out = cJSON_IsTrue(item);
    return 0;
}

/* A token id: an integer, null, or (eos) a list of integers. */
static int get_token_ids(const cJSON *obj, const char *key, int64_t *ids, int max, int *n, const char *src) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    *n = 0;
    if (is_absent(item)) return 0;
    if (cJSON_IsNumber(item)) return get_int(obj, key, true, &ids[(*n)++], src);
    if (!cJSON_IsArray(item) || cJSON_GetArraySize(item) > max)
        return ct_fail("%s: key \"%s\" must be a token id or a list of at most %d; fix the file", src, key, max);
    const cJSON *e;
    cJSON_ArrayForEach(e, item) {
        /* bounded like get_int's integers: a larger double does not convert to int64_t */
        if (!cJSON_IsNumber(e) || e->valuedouble < 0 || !(e->valuedouble < 9.0e15) ||
            e->valuedouble != floor(e->valuedouble))
            return ct_fail("%s: key \"%s\" must list integer token ids; fix the file", src, key);
        ids[(*n)++] = (int64_t)e->valuedouble;
    }
    return 0;
}

static int get_single_token_id(const cJSON *obj, const char *key, int64_t *out, const char *src) {
    int n;
    int64_t ids[1] = {-1};
    CT_TRY(get_token_ids(obj, key, ids, 1, &n, src));
    *out = n ? ids[0] : -1;
    return 0;
}

/* ---- the parts of the file ---- */

static int parse_arch(const cJSON *root, ct_llama_arch *arch, const char *src) {
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    const cJSON *first = cJSON_IsArray(list) ? cJSON_GetArrayItem(list, 0) : NULL;
    const cJSON *model_type = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    const char *name = cJSON_IsString(first) ? first->valuestring : NULL;
    const char *type = cJSON_IsString(model_type) ? model_type->valuestring : NULL;
    if (!name && !type)
        return ct_fail("%s: neither \"architectures\" nor \"model_type\" is set; is this a model's config.json?", src);
    for (int i = 0; i < N_ARCHS; i++)
        if ((name && !strcmp(name, ARCHS[i].name)) || (!name && !strcmp(type, ARCHS[i].model_type))) {
            *arch = ARCHS[i].arch;
            return 0;
        }
    return ct_fail("%s: architecture \"%s\" is not supported; ctune runs LlamaForCausalLM, MistralForCausalLM, "
                   "Qwen2ForCausalLM and Qwen3ForCausalLM",
                   src, name ? name : type);
}

static int parse_dtype(const cJSON *root, ct_dtype *dtype) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, "torch_dtype");
    if (!cJSON_IsString(item)) item = cJSON_GetObjectItemCaseSensitive(root, "dtype");
    if (!cJSON_IsString(item)) return 0;
    const char *s = item->valuestring;
    if (!strcmp(s, "bfloat16")) *dtype = CT_BF16;
    else if (!strcmp(s, "float16")) *dtype = CT_F16;
    else *dtype = CT_F32; /* informative only: the loader converts whatever the file holds */
    return 0;
}

/* rope_type (or the older "type") of a rope_scaling / rope_parameters object. */
static int parse_rope_object(const cJSON *rope, ct_llama_config *cfg, const char *key, const char *src) {
    if (is_absent(rope)) return 0;
    if (!cJSON_IsObject(rope)) return ct_fail("%s: key \"%s\" must be an object or null; fix the file", src, key);
    CT_TRY(get_double(rope, "rope_theta", false, &cfg->rope_theta, src));
    double partial = 1.0;
    CT_TRY(get_double(rope, "partial_rotary_factor", false, &partial, src));
    if (partial != 1.0)
        return ct_fail("%s: %s.partial_rotary_factor %g is not supported; ctune rotates whole heads", src, key, partial);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(rope, "rope_type");
    if (is_absent(type)) type = cJSON_GetObjectItemCaseSensitive(rope, "type"); /* the older spelling */
    if (is_absent(type)) return 0;
    if (!cJSON_IsString(type)) return ct_fail("%s: %s.rope_type must be a string; fix the file", src, key);
    if (!strcmp(type->valuestring, "default")) return 0;
    if (strcmp(type->valuestring, "llama3") != 0)
        return ct_fail("%s: %s type \"%s\" is not supported; ctune implements the default and \"llama3\" RoPE",
                       src, key, type->valuestring);
    cfg->rope_scaling.type = CT_ROPE_LLAMA3;
    CT_TRY(get_double(rope, "factor", true, &cfg->rope_scaling.factor, src));
    CT_TRY(get_double(rope, "low_freq_factor", true, &cfg->rope_scaling.low_freq_factor, src));
    CT_TRY(get_double(rope, "high_freq_factor", true, &cfg->rope_scaling.high_freq_factor, src));
    cfg->rope_scaling.original_max_position_embeddings = cfg->max_position_embeddings;
    return get_int(rope, "original_max_position_embeddings", false,
                   &cfg->rope_scaling.original_max_position_embeddings, src);
}

static int parse_rope(const cJSON *root, ct_llama_config *cfg, const char *src) {
    CT_TRY(get_double(root, "rope_theta", false, &cfg->rope_theta, src));
    double partial = 1.0;
    CT_TRY(get_double(root, "partial_rotary_factor", false, &partial, src));
    if (partial != 1.0)
        return ct_fail("%s: partial_rotary_factor %g is not supported; ctune rotates whole heads", src, partial);
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(root, "rope_parameters");
    if (!is_absent(params)) return parse_rope_object(params, cfg, "rope_parameters", src);
    return parse_rope_object(cJSON_GetObjectItemCaseSensitive(root, "rope_scaling"), cfg, "rope_scaling", src);
}

static bool has_sliding_layer(const cJSON *root) {
    const cJSON *types = cJSON_GetObjectItemCaseSensitive(root, "layer_types"), *e;
    cJSON_ArrayForEach(e, types)
        if (cJSON_IsString(e) && !strcmp(e->valuestring, "sliding_attention")) return true;
    return false;
}

/* Mistral applies sliding_window (HF default 4096) whenever it is not null; Qwen only with
 * use_sliding_window or a "sliding_attention" layer. */
static int parse_sliding_window(const cJSON *root, ct_llama_config *cfg, const char *src) {
    if (cfg->arch == CT_ARCH_LLAMA) return 0;
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, "sliding_window");
    bool enabled = cfg->arch == CT_ARCH_MISTRAL ? !(item && cJSON_IsNull(item)) : has_sliding_layer(root);
    if (cfg->arch != CT_ARCH_MISTRAL) CT_TRY(get_bool(root, "use_sliding_window", &enabled, src));
    if (!enabled) return 0;
    cfg->sliding_window = 4096;
    return get_int(root, "sliding_window", false, &cfg->sliding_window, src);
}

static int parse_switches(const cJSON *root, ct_llama_config *cfg, const char *src) {
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, "hidden_act");
    if (act && (!cJSON_IsString(act) || strcmp(act->valuestring, "silu") != 0))
        return ct_fail("%s: hidden_act \"%s\" is not supported; LLaMA-family MLPs use \"silu\"", src,
                       cJSON_IsString(act) ? act->valuestring : "?");
    bool mlp_bias = false, attention_bias = false;
    CT_TRY(get_bool(root, "mlp_bias", &mlp_bias, src));
    if (mlp_bias) return ct_fail("%s: mlp_bias true is not supported; ctune's MLP has no biases", src);
    CT_TRY(get_bool(root, "attention_bias", &attention_bias, src));
    if (cfg->arch == CT_ARCH_LLAMA || cfg->arch == CT_ARCH_QWEN3) cfg->qkv_bias = cfg->o_bias = attention_bias;
    cfg->tie_word_embeddings = false; /* every one of these config classes defaults to untied */
    return get_bool(root, "tie_word_embeddings", &cfg->tie_word_embeddings, src);
}

static int parse_sizes(const cJSON *root, ct_llama_config *cfg, const char *src) {
    CT_TRY(get_int(root, "hidden_size", true, &cfg->hidden_size, src));
    CT_TRY(get_int(root, "intermediate_size", true, &cfg->intermediate_size, src));
    CT_TRY(get_int(root, "num_hidden_layers", true, &cfg->num_hidden_layers, src));
    CT_TRY(get_int(root, "num_attention_heads", true, &cfg->num_attention_heads, src));
    CT_TRY(get_int(root, "vocab_size", true, &cfg->vocab_size, src));
    cfg->num_key_value_heads = cfg->num_attention_heads;
    CT_TRY(get_int(root, "num_key_value_heads", false, &cfg->num_key_value_heads, src));
    /* Qwen3's class defaults head_dim to 128; the others derive it. */
    if (cfg->arch == CT_ARCH_QWEN3) cfg->head_dim = 128;
    else if (cfg->num_attention_heads > 0) cfg->head_dim = cfg->hidden_size / cfg->num_attention_heads;
    CT_TRY(get_int(root, "head_dim", false, &cfg->head_dim, src));
    CT_TRY(get_int(root, "max_position_embeddings", false, &cfg->max_position_embeddings, src));
    CT_TRY(get_double(root, "rms_norm_eps", false, &cfg->rms_norm_eps, src));
    return get_double(root, "initializer_range", false, &cfg->initializer_range, src);
}

static int parse_token_ids(const cJSON *root, ct_llama_config *cfg, const char *src) {
    CT_TRY(get_single_token_id(root, "bos_token_id", &cfg->bos_token_id, src));
    CT_TRY(get_single_token_id(root, "pad_token_id", &cfg->pad_token_id, src));
    return get_token_ids(root, "eos_token_id", cfg->eos_token_ids, CT_LLAMA_MAX_EOS, &cfg->n_eos, src);
}

int ct_llama_config_parse(const char *json_text, const char *source, ct_llama_config *cfg) {
    const char *src = source ? source : "config.json";
    cJSON *root = cJSON_Parse(json_text);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return ct_fail("%s: not a JSON object; expected a Hugging Face config.json", src);
    }
    ct_llama_arch arch = CT_ARCH_LLAMA;
    int rc = parse_arch(root, &arch, src);
    if (rc == 0) {
        ct_llama_config_defaults(cfg, arch);
        if (parse_sizes(root, cfg, src) < 0 || parse_rope(root, cfg, src) < 0 || parse_switches(root, cfg, src) < 0 ||
            parse_sliding_window(root, cfg, src) < 0 || parse_token_ids(root, cfg, src) < 0 ||
            parse_dtype(root, &cfg->torch_dtype) < 0)
            rc = -1;
    }
    cJSON_Delete(root);
    if (rc < 0) return -1;
    return ct_llama_config_validate(cfg, src);
}

int ct_llama_config_load(const char *path, ct_llama_config *cfg) {
    char file[4096];
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) snprintf(file, sizeof file, "%s/config.json", path);
    else snprintf(file, sizeof file, "%s", path);
    char *text = ct_tok_read_file(file, NULL);
    if (!text) return -1;
    int rc = ct_llama_config_parse(text, file, cfg);
    free(text);
    return rc;
}

static int check_range(int64_t v, int64_t max, const char *key, const char *src) {
    if (v <= 0 || v > max)
        return ct_fail("%s: %s = %lld is out of range (1 .. %lld); fix the file", src, key, (long long)v,
                       (long long)max);
    return 0;
}

int ct_llama_config_validate(const ct_llama_config *cfg, const char *source) {
    const char *src = source ? source : "config.json";
    CT_TRY(check_range(cfg->hidden_size, MAX_DIM, "hidden_size", src));
    CT_TRY(check_range(cfg->intermediate_size, MAX_DIM, "intermediate_size", src));
    CT_TRY(check_range(cfg->num_hidden_layers, MAX_LAYERS, "num_hidden_layers", src));
    CT_TRY(check_range(cfg->num_attention_heads, MAX_DIM, "num_attention_heads", src));
    CT_TRY(check_range(cfg->num_key_value_heads, MAX_DIM, "num_key_value_heads", src));
    CT_TRY(check_range(cfg->head_dim, CT_LLAMA_MAX_HEAD_DIM, "head_dim", src));
    CT_TRY(check_range(cfg->vocab_size, MAX_DIM, "vocab_size", src));
    if (cfg->num_attention_heads % cfg->num_key_value_heads)
        return ct_fail("%s: num_attention_heads %lld is not a multiple of num_key_value_heads %lld", src,
                       (long long)cfg->num_attention_heads, (long long)cfg->num_key_value_heads);
    if (cfg->head_dim % 2) return ct_fail("%s: head_dim %lld must be even for RoPE", src, (long long)cfg->head_dim);
    if (cfg->num_attention_heads * cfg->head_dim > MAX_DIM)
        return ct_fail("%s: num_attention_heads * head_dim is out of range; fix the file", src);
    if (!(cfg->rms_norm_eps > 0)) return ct_fail("%s: rms_norm_eps must be > 0", src);
    if (!(cfg->rope_theta > 0)) return ct_fail("%s: rope_theta must be > 0", src);
    if (cfg->sliding_window < 0) return ct_fail("%s: sliding_window must be positive or null", src);
    if (cfg->rope_scaling.type == CT_ROPE_LLAMA3) {
        const double lo = cfg->rope_scaling.low_freq_factor, hi = cfg->rope_scaling.high_freq_factor;
        if (!(cfg->rope_scaling.factor > 0) || !(lo > 0) || !(hi > lo))
            return ct_fail("%s: llama3 rope scaling needs factor > 0 and high_freq_factor > low_freq_factor > 0", src);
        if (cfg->rope_scaling.original_max_position_embeddings <= 0)
            return ct_fail("%s: llama3 rope scaling needs original_max_position_embeddings > 0", src);
    }
    for (int i = 0; i < cfg->n_eos; i++)
        if (cfg->eos_token_ids[i] < 0 || cfg->eos_token_ids[i] >= cfg->vocab_size)
            return ct_fail("%s: eos_token_id %lld is outside the vocabulary of %lld rows", src,
                           (long long)cfg->eos_token_ids[i], (long long)cfg->vocab_size);
    return 0;
}
