/* adapter_config.json of a PEFT LoRA adapter: reading with every key accounted for, writing
 * with the keys peft 0.21.2 writes, and peft's rules for which modules an adapter covers. */
#include "checkpoints/peft.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/paths.h"

/* The peft version whose save_pretrained output ct_peft_config_write reproduces. */
#define CT_PEFT_FORMAT_VERSION "0.21.2"
/* An adapter_config.json is ~1-2 KB; anything past this is not one. */
#define CT_PEFT_MAX_CONFIG_BYTES (16 * 1024 * 1024)

/* What ctune does with each key of peft 0.21.2's LoraConfig (and PeftConfig) as saved:
 *   USED        parsed into ct_peft_config
 *   IGNORED     cannot change the adapter's result: auto_mapping (which Python class loads a
 *               custom base model), megatron_core (a module name, used only with megatron_config,
 *               which is refused unless null), peft_version (the writer's version),
 *               qalora_group_size (used only with use_qalora, refused unless false); revision and
 *               inference_mode are kept for the round trip but change nothing
 *   FALSE_ONLY  a feature ctune does not implement; accepted when false or null
 *   EMPTY_ONLY  another method's settings, or per-module overrides; accepted when null, {} or []
 * Any other key is refused: a newer peft's feature must not be dropped silently. */
typedef enum { USED, IGNORED, FALSE_ONLY, EMPTY_ONLY } key_rule;

static const struct {
    const char *key;
    key_rule rule;
} KEYS[] = {
    {"alora_invocation_tokens", EMPTY_ONLY}, {"alpha_pattern", EMPTY_ONLY},
    {"arrow_config", EMPTY_ONLY},           {"auto_mapping", IGNORED},
    {"base_model_name_or_path", USED},      {"bias", USED},
    {"corda_config", EMPTY_ONLY},           {"ensure_weight_tying", FALSE_ONLY},
    {"eva_config", EMPTY_ONLY},             {"exclude_modules", EMPTY_ONLY},
    {"fan_in_fan_out", FALSE_ONLY},         {"inference_mode", USED},
    {"init_lora_weights", USED},            {"kasa_config", EMPTY_ONLY},
    {"layer_replication", EMPTY_ONLY},      {"layers_pattern", USED},
    {"layers_to_transform", USED},          {"loftq_config", EMPTY_ONLY},
    {"lora_alpha", USED},                   {"lora_bias", FALSE_ONLY},
    {"lora_dropout", USED},                 {"lora_ga_config", EMPTY_ONLY},
    {"megatron_config", EMPTY_ONLY},        {"megatron_core", IGNORED},
    {"modules_to_save", USED},              {"monteclora_config", EMPTY_ONLY},
    {"peft_type", USED},                    {"peft_version", IGNORED},
    {"qalora_group_size", IGNORED},         {"r", USED},
    {"rank_pattern", EMPTY_ONLY},           {"revision", USED},
    {"target_modules", USED},               {"target_parameters", EMPTY_ONLY},
    {"task_type", USED},                    {"trainable_token_indices", EMPTY_ONLY},
    {"use_bdlora", EMPTY_ONLY},             {"use_dora", USED},
    {"use_qalora", FALSE_ONLY},             {"use_rslora", USED},
    {"velora_config", EMPTY_ONLY},
};
#define N_KEYS ((int)(sizeof KEYS / sizeof KEYS[0]))

void ct_peft_config_init(ct_peft_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->r = 8;
    cfg->lora_alpha = 8;
    cfg->inference_mode = true;
}

static void free_strings(char **list, int n) {
    for (int i = 0; i < n; i++) free(list[i]);
    free(list);
}

void ct_peft_config_free(ct_peft_config *cfg) {
    if (!cfg) return;
    free_strings(cfg->target_modules, cfg->n_target_modules);
    free_strings(cfg->layers_pattern, cfg->n_layers_pattern);
    free_strings(cfg->modules_to_save, cfg->n_modules_to_save);
    free(cfg->layers_to_transform);
    free(cfg->task_type);
    free(cfg->base_model_name_or_path);
    free(cfg->revision);
    ct_peft_config_init(cfg);
}

double ct_peft_scale(const ct_peft_config *cfg) {
    return cfg->use_rslora ? cfg->lora_alpha / sqrt((double)cfg->r) : cfg->lora_alpha / cfg->r;
}

/* ---- reading ------------------------------------------------------------------------------ */

/* A value for a message: its JSON, cut to a readable length. */
static const char *shown(const cJSON *v, char *buf, size_t cap) {
    char *text = cJSON_PrintUnformatted(v);
    snprintf(buf, cap, "%s", text ? text : "?");
    if (text && strlen(text) >= cap && cap > 4) strcpy(buf + cap - 4, "...");
    free(text);
    return buf;
}

static int refuse(const char *file, const cJSON *v, const char *why) {
    char value[96];
    return ct_fail("%s: \"%s\": %s is not supported: %s", file, v->string, shown(v, value, sizeof value), why);
}

static bool is_empty(const cJSON *v) {
    return cJSON_IsNull(v) || ((cJSON_IsObject(v) || cJSON_IsArray(v)) && cJSON_GetArraySize(v) == 0);
}

static int get_bool(const char *file, const cJSON *v, bool *out) {
    if (!cJSON_IsBool(v)) return ct_fail("%s: \"%s\" must be true or false", file, v->string);
    *out = cJSON_IsTrue(v);
    return 0;
}

/* null, or a string copied into *out. */
static int get_opt_string(const char *file, const cJSON *v, char **out) {
    if (cJSON_IsNull(v)) return 0;
    if (!cJSON_IsString(v)) return ct_fail("%s: \"%s\" must be a string or null", file, v->string);
    return (*out = ct_strdup(v->valuestring)) ? 0 : -1;
}

/* null, a string (when one_ok) or a list of strings. */
static int get_string_list(const char *file, const cJSON *v, bool one_ok, char ***out, int *n) {
    if (cJSON_IsNull(v)) return 0;
    int count = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : (one_ok && cJSON_IsString(v)) ? 1 : -1;
    if (count < 0) return ct_fail("%s: \"%s\" must be a list of strings%s", file, v->string, one_ok ? ", a string or null" : " or null");
    *out = ct_calloc((size_t)count + 1, sizeof **out, "a PEFT config list");
    if (!*out) return -1;
    const cJSON *item = cJSON_IsArray(v) ? v->child : v;
    for (int i = 0; i < count; i++, item = item->next) {
        if (!cJSON_IsString(item) || !item->valuestring[0])
            return ct_fail("%s: \"%s\" item %d must be a non-empty string", file, v->string, i);
        if (!((*out)[i] = ct_strdup(item->valuestring))) return -1;
        *n = i + 1;
    }
    return 0;
}

static bool is_int(const cJSON *v, double min) {
    return cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) && v->valuedouble >= min && v->valuedouble < 1e9;
}

static int get_layers(const char *file, const cJSON *v, ct_peft_config *cfg) {
    if (cJSON_IsNull(v)) return 0;
    cfg->layers_to_transform_scalar = cJSON_IsNumber(v);
    int count = cJSON_IsNumber(v) ? 1 : cJSON_IsArray(v) ? cJSON_GetArraySize(v) : -1;
    if (count < 0) return ct_fail("%s: \"layers_to_transform\" must be a layer number, a list of them or null", file);
    cfg->layers_to_transform = ct_calloc((size_t)count + 1, sizeof(int), "layers_to_transform");
    if (!cfg->layers_to_transform) return -1;
    const cJSON *item = cJSON_IsArray(v) ? v->child : v;
    for (int i = 0; i < count; i++, item = item->next) {
        if (!is_int(item, 0)) return ct_fail("%s: \"layers_to_transform\" item %d must be a layer number >= 0", file, i);
        cfg->layers_to_transform[i] = (int)item->valuedouble;
    }
    cfg->n_layers_to_transform = count;
    return 0;
}

static int get_targets(const char *file, const cJSON *v, ct_peft_config *cfg) {
    if (cJSON_IsString(v)) {
        if (strcmp(v->valuestring, "all-linear") == 0) return (cfg->target_all_linear = true), 0;
        return refuse(file, v, "a string other than \"all-linear\" is a regular expression; list the module names instead");
    }
    if (cJSON_IsNull(v) || (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 0))
        return refuse(file, v, "peft's per-architecture default; list the module names (e.g. [\"q_proj\", \"v_proj\"])");
    return get_string_list(file, v, false, &cfg->target_modules, &cfg->n_target_modules);
}

static int get_init(const char *file, const cJSON *v, ct_peft_config *cfg) {
    if (cJSON_IsBool(v)) {
        cfg->init_lora_weights = cJSON_IsTrue(v) ? CT_PEFT_INIT_DEFAULT : CT_PEFT_INIT_RANDOM;
        return 0;
    }
    if (cJSON_IsString(v) && strcmp(v->valuestring, "gaussian") == 0) {
        cfg->init_lora_weights = CT_PEFT_INIT_GAUSSIAN;
        return 0;
    }
    return refuse(file, v, "ctune implements true (Kaiming-uniform A, zero B), false and \"gaussian\"");
}

static int get_number(const char *file, const cJSON *v, double min, double below, double *out) {
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= min) || !(v->valuedouble < below))
        return ct_fail("%s: \"%s\" must be a number in [%g, %g)", file, v->string, min, below);
    *out = v->valuedouble;
    return 0;
}

static int expect_string(const char *file, const cJSON *v, const char *want, const char *why) {
    if (cJSON_IsString(v) && strcmp(v->valuestring, want) == 0) return 0;
    return refuse(file, v, why);
}

/* One USED key into cfg. */
static int read_used(const char *file, const cJSON *v, ct_peft_config *cfg) {
    const char *k = v->string;
    if (!strcmp(k, "peft_type")) return expect_string(file, v, "LORA", "ctune reads LoRA adapters only (peft_type \"LORA\")");
    if (!strcmp(k, "bias")) return expect_string(file, v, "none", "ctune trains no biases beside LoRA; only \"none\"");
    if (!strcmp(k, "r")) {
        if (!is_int(v, 1)) return ct_fail("%s: \"r\" must be a whole number >= 1", file);
        cfg->r = (int)v->valuedouble;
        return 0;
    }
    if (!strcmp(k, "lora_alpha")) return get_number(file, v, 1e-30, 1e30, &cfg->lora_alpha);
    if (!strcmp(k, "lora_dropout")) return get_number(file, v, 0, 1, &cfg->lora_dropout);
    if (!strcmp(k, "target_modules")) return get_targets(file, v, cfg);
    if (!strcmp(k, "layers_to_transform")) return get_layers(file, v, cfg);
    if (!strcmp(k, "layers_pattern")) return get_string_list(file, v, true, &cfg->layers_pattern, &cfg->n_layers_pattern);
    if (!strcmp(k, "modules_to_save")) return get_string_list(file, v, false, &cfg->modules_to_save, &cfg->n_modules_to_save);
    if (!strcmp(k, "use_rslora")) return get_bool(file, v, &cfg->use_rslora);
    if (!strcmp(k, "use_dora")) return cJSON_IsNull(v) ? 0 : get_bool(file, v, &cfg->use_dora);
    if (!strcmp(k, "init_lora_weights")) return get_init(file, v, cfg);
    if (!strcmp(k, "inference_mode")) return get_bool(file, v, &cfg->inference_mode);
    if (!strcmp(k, "task_type")) {
        if (cJSON_IsNull(v)) return 0;
        CT_TRY(expect_string(file, v, "CAUSAL_LM", "ctune's models are causal LMs (task_type \"CAUSAL_LM\" or null)"));
        return (cfg->task_type = ct_strdup("CAUSAL_LM")) ? 0 : -1;
    }
    if (!strcmp(k, "base_model_name_or_path")) return get_opt_string(file, v, &cfg->base_model_name_or_path);
    return get_opt_string(file, v, &cfg->revision);
}

static int read_key(const char *file, const cJSON *v, ct_peft_config *cfg) {
    for (int i = 0; i < N_KEYS; i++) {
        if (strcmp(KEYS[i].key, v->string) != 0) continue;
        switch (KEYS[i].rule) {
        case USED: return read_used(file, v, cfg);
        case IGNORED: return 0;
        case FALSE_ONLY:
            return cJSON_IsFalse(v) || cJSON_IsNull(v) ? 0 : refuse(file, v, "ctune does not implement it; only false");
        case EMPTY_ONLY:
            return is_empty(v) ? 0 : refuse(file, v, "ctune does not implement it; only null or empty");
        }
    }
    return ct_fail("%s: unknown key \"%s\" (not a LoRA setting of peft " CT_PEFT_FORMAT_VERSION
                   "); ctune will not ignore it: remove it if it changes nothing", file, v->string);
}

static char *read_small_file(const char *path, size_t *len) {
    if (!ct_is_file(path)) {
        ct_fail("%s: not found; a PEFT adapter folder holds adapter_config.json", path);
        return NULL;
    }
    return ct_read_file(path, CT_PEFT_MAX_CONFIG_BYTES, len);
}

static int read_object(const char *file, const cJSON *root, ct_peft_config *cfg) {
    if (!cJSON_IsObject(root)) return ct_fail("%s: not a JSON object; an adapter_config.json is one", file);
    static const char *const required[] = {"peft_type", "r", "lora_alpha", "target_modules"};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
        if (!cJSON_GetObjectItemCaseSensitive(root, required[i]))
            return ct_fail("%s: missing key \"%s\"; peft's save_pretrained always writes it", file, required[i]);
    const cJSON *v;
    cJSON_ArrayForEach(v, root) {
        /* JSON allows a key twice, and readers disagree on which one counts: refuse the file. */
        for (const cJSON *earlier = root->child; earlier != v; earlier = earlier->next)
            if (!strcmp(earlier->string, v->string))
                return ct_fail("%s: key \"%s\" appears twice; keep one", file, v->string);
        CT_TRY(read_key(file, v, cfg));
    }
    return 0;
}

int ct_peft_config_read(const char *path, ct_peft_config *cfg) {
    ct_peft_config_init(cfg);
    char *file = ct_is_dir(path) ? ct_path_join(path, "adapter_config.json") : ct_strdup(path);
    if (!file) return -1;
    size_t len = 0;
    char *text = read_small_file(file, &len);
    cJSON *root = text ? cJSON_ParseWithLength(text, len) : NULL;
    int status = !text ? -1 : !root ? ct_fail("%s: not valid JSON", file) : read_object(file, root, cfg);
    cJSON_Delete(root);
    free(text);
    free(file);
    if (status < 0) ct_peft_config_free(cfg);
    return status;
}

/* ---- writing ------------------------------------------------------------------------------ */

static cJSON *string_list(char *const *list, int n) {
    if (!list) return cJSON_CreateNull();
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateString(list[i]));
    return a;
}

static cJSON *opt_string(const char *s) { return s ? cJSON_CreateString(s) : cJSON_CreateNull(); }

static cJSON *layers_json(const ct_peft_config *cfg) {
    if (!cfg->layers_to_transform) return cJSON_CreateNull();
    if (cfg->layers_to_transform_scalar && cfg->n_layers_to_transform == 1)
        return cJSON_CreateNumber(cfg->layers_to_transform[0]);
    return cJSON_CreateIntArray(cfg->layers_to_transform, cfg->n_layers_to_transform);
}

static cJSON *init_json(ct_peft_init init) {
    return init == CT_PEFT_INIT_GAUSSIAN ? cJSON_CreateString("gaussian") : cJSON_CreateBool(init == CT_PEFT_INIT_DEFAULT);
}

/* The value peft writes for a key ctune does not use: its default. */
static cJSON *default_json(const char *key) {
    if (!strcmp(key, "alpha_pattern") || !strcmp(key, "rank_pattern") || !strcmp(key, "loftq_config"))
        return cJSON_CreateObject();
    if (!strcmp(key, "megatron_core")) return cJSON_CreateString("megatron.core");
    if (!strcmp(key, "peft_version")) return cJSON_CreateString(CT_PEFT_FORMAT_VERSION);
    if (!strcmp(key, "qalora_group_size")) return cJSON_CreateNumber(16);
    if (!strcmp(key, "bias")) return cJSON_CreateString("none");
    if (!strcmp(key, "peft_type")) return cJSON_CreateString("LORA");
    for (int i = 0; i < N_KEYS; i++)
        if (!strcmp(KEYS[i].key, key) && KEYS[i].rule == FALSE_ONLY) return cJSON_CreateFalse();
    return cJSON_CreateNull();
}

static cJSON *value_json(const ct_peft_config *cfg, const char *k) {
    if (!strcmp(k, "r")) return cJSON_CreateNumber(cfg->r);
    if (!strcmp(k, "lora_alpha")) return cJSON_CreateNumber(cfg->lora_alpha);
    if (!strcmp(k, "lora_dropout")) return cJSON_CreateNumber(cfg->lora_dropout);
    if (!strcmp(k, "target_modules"))
        return cfg->target_all_linear ? cJSON_CreateString("all-linear") : string_list(cfg->target_modules, cfg->n_target_modules);
    if (!strcmp(k, "layers_to_transform")) return layers_json(cfg);
    if (!strcmp(k, "layers_pattern")) return string_list(cfg->layers_pattern, cfg->n_layers_pattern);
    if (!strcmp(k, "modules_to_save")) return string_list(cfg->modules_to_save, cfg->n_modules_to_save);
    if (!strcmp(k, "use_rslora")) return cJSON_CreateBool(cfg->use_rslora);
    if (!strcmp(k, "use_dora")) return cJSON_CreateBool(cfg->use_dora);
    if (!strcmp(k, "init_lora_weights")) return init_json(cfg->init_lora_weights);
    if (!strcmp(k, "inference_mode")) return cJSON_CreateBool(cfg->inference_mode);
    if (!strcmp(k, "task_type")) return opt_string(cfg->task_type);
    if (!strcmp(k, "base_model_name_or_path")) return opt_string(cfg->base_model_name_or_path);
    if (!strcmp(k, "revision")) return opt_string(cfg->revision);
    return default_json(k);
}

char *ct_peft_config_to_json(const ct_peft_config *cfg) {
    if (cfg->r < 1 || (!cfg->target_all_linear && cfg->n_target_modules < 1)) {
        ct_fail("PEFT config: r must be >= 1 and target_modules non-empty");
        return NULL;
    }
    cJSON *root = cJSON_CreateObject();
    bool ok = root != NULL;
    /* KEYS is sorted, as peft writes them (json.dumps(sort_keys=True)). */
    for (int i = 0; ok && i < N_KEYS; i++) {
        cJSON *v = value_json(cfg, KEYS[i].key);
        ok = v && cJSON_AddItemToObject(root, KEYS[i].key, v);
    }
    char *text = ok ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!text) ct_fail("PEFT config: out of memory building adapter_config.json");
    return text;
}

int ct_peft_config_write(const char *path, const ct_peft_config *cfg) {
    char *text = ct_peft_config_to_json(cfg);
    if (!text) return -1;
    int status = ct_atomic_write_file(path, text, strlen(text));
    free(text);
    return status;
}

/* ---- which modules ------------------------------------------------------------------------ */

static bool ends_with_component(const char *path, const char *name) {
    size_t n = strlen(path), m = strlen(name);
    if (n == m) return strcmp(path, name) == 0;
    return n > m && path[n - m - 1] == '.' && strcmp(path + n - m, name) == 0;
}

/* peft's (^|.*\.)name($|\..*): name is a run of whole components anywhere in the path. */
static bool contains_components(const char *path, const char *name) {
    size_t m = strlen(name);
    for (const char *p = path; (p = strstr(p, name)) != NULL; p++) {
        bool starts = p == path || p[-1] == '.';
        bool ends = p[m] == '\0' || p[m] == '.';
        if (starts && ends) return true;
    }
    return false;
}

bool ct_peft_saves(const ct_peft_config *cfg, const char *module_path) {
    for (int i = 0; i < cfg->n_modules_to_save; i++)
        if (contains_components(module_path, cfg->modules_to_save[i])) return true;
    return false;
}

static bool all_digits(const char *s, size_t n) {
    if (n == 0) return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return false;
    return true;
}

/* The layer number as peft finds it: the first numeric component that follows a component named
 * by one of the patterns (any component but the first, with no pattern) and is not the last.
 * -1 when there is none. */
static int layer_of(const ct_peft_config *cfg, const char *path) {
    const char *prev = NULL, *seg = path;
    int index = 0;
    while (seg) {
        const char *dot = strchr(seg, '.');
        if (!dot) break; /* the last component is never the layer number */
        size_t len = (size_t)(dot - seg);
        if (prev && all_digits(seg, len)) {
            size_t plen = (size_t)(seg - 1 - prev);
            bool ok = cfg->n_layers_pattern == 0 ? index >= 2 : false;
            for (int i = 0; i < cfg->n_layers_pattern; i++)
                ok |= strlen(cfg->layers_pattern[i]) == plen && strncmp(prev, cfg->layers_pattern[i], plen) == 0;
            if (ok) return atoi(seg);
        }
        prev = seg;
        seg = dot + 1;
        index++;
    }
    return -1;
}

bool ct_peft_targets(const ct_peft_config *cfg, const char *module_path) {
    if (ct_peft_saves(cfg, module_path)) return false; /* peft never adapts a saved module */
    /* A target equal to the whole path is taken as it is: peft checks layers_to_transform only
     * for suffix matches. ("all-linear" becomes a list of names before peft's check.) */
    for (int i = 0; i < cfg->n_target_modules; i++)
        if (strcmp(module_path, cfg->target_modules[i]) == 0) return true;
    bool found = cfg->target_all_linear && !ends_with_component(module_path, "lm_head");
    for (int i = 0; !found && i < cfg->n_target_modules; i++)
        found = ends_with_component(module_path, cfg->target_modules[i]);
    if (!found || !cfg->layers_to_transform) return found;
    int layer = layer_of(cfg, module_path);
    for (int i = 0; layer >= 0 && i < cfg->n_layers_to_transform; i++)
        if (cfg->layers_to_transform[i] == layer) return true;
    return false;
}
