/* PEFT adapter folders: the keys of adapter_model.safetensors, and reading and writing a
 * folder whose tensors agree with its adapter_config.json (peft_config.c). */
#include "checkpoints/peft.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/paths.h"

#define KEY_PREFIX "base_model.model."

#define MAGNITUDE_SUFFIX ".lora_magnitude_vector"

static const char *kind_suffix(ct_peft_kind kind) {
    return kind == CT_PEFT_LORA_A      ? ".lora_A.weight"
           : kind == CT_PEFT_LORA_B    ? ".lora_B.weight"
           : kind == CT_PEFT_MAGNITUDE ? MAGNITUDE_SUFFIX
                                       : NULL;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* The number after the first "layers." component; -1 when there is none. */
static int layer_number(const char *module) {
    for (const char *p = module; (p = strstr(p, "layers.")) != NULL; p++) {
        if (p != module && p[-1] != '.') continue;
        const char *d = p + strlen("layers.");
        const char *e = d;
        while (*e >= '0' && *e <= '9') e++;
        if (e > d && (*e == '.' || *e == '\0')) return atoi(d);
    }
    return -1;
}

int ct_peft_parse_key(const char *key, ct_peft_key *out) {
    memset(out, 0, sizeof *out);
    if (strncmp(key, KEY_PREFIX, strlen(KEY_PREFIX)) != 0)
        return ct_fail("tensor %s: a PEFT adapter key starts with \"" KEY_PREFIX "\"", key);
    const char *rest = key + strlen(KEY_PREFIX);
    size_t len = strlen(rest);
    if (ends_with(rest, MAGNITUDE_SUFFIX)) {
        /* DoRA's magnitude: peft 0.21.2 saves it without a ".weight" suffix */
        out->kind = CT_PEFT_MAGNITUDE;
        len -= strlen(MAGNITUDE_SUFFIX);
        strcpy(out->param, "weight");
    } else if (strstr(rest, "lora_magnitude_vector")) {
        return ct_fail("tensor %s: a DoRA magnitude vector is saved as <module>" MAGNITUDE_SUFFIX, key);
    } else if (ends_with(rest, ".lora_A.weight") || ends_with(rest, ".lora_B.weight")) {
        out->kind = ends_with(rest, ".lora_A.weight") ? CT_PEFT_LORA_A : CT_PEFT_LORA_B;
        len -= strlen(".lora_A.weight");
        strcpy(out->param, "weight");
    } else if (strstr(rest, ".lora_") || strstr(rest, ".modules_to_save.") || strstr(rest, ".original_module.")) {
        return ct_fail("tensor %s: not a LoRA A/B matrix, DoRA magnitude nor a saved module's tensor", key);
    } else {
        /* A modules_to_save copy: <module>.<param>, saved under the module's own name. */
        const char *dot = strrchr(rest, '.');
        if (!dot || dot == rest || strlen(dot + 1) >= sizeof out->param || !dot[1])
            return ct_fail("tensor %s: a saved module's key ends in .weight or .bias", key);
        out->kind = CT_PEFT_SAVED;
        strcpy(out->param, dot + 1);
        len = (size_t)(dot - rest);
    }
    if (len == 0 || len >= sizeof out->module)
        return ct_fail("tensor %s: module name empty or longer than %d characters", key, CT_PEFT_NAME_MAX - 1);
    memcpy(out->module, rest, len);
    out->module[len] = '\0';
    out->layer = layer_number(out->module);
    return 0;
}

int ct_peft_key_name(char *buf, size_t cap, const char *module, ct_peft_kind kind, const char *param) {
    const char *suffix = kind_suffix(kind);
    int n = suffix ? snprintf(buf, cap, KEY_PREFIX "%s%s", module, suffix)
                   : snprintf(buf, cap, KEY_PREFIX "%s.%s", module, param ? param : "weight");
    if (n < 0 || (size_t)n >= cap) return ct_fail("PEFT key for module %s: longer than %zu characters", module, cap - 1);
    return 0;
}

/* ---- consistency with the config ---------------------------------------------------------- */

typedef struct {
    ct_peft_key key;
    const char *name;   /* the full key, for messages */
    int ndim;
    const int64_t *shape;
} key_view;

static int find_view(const key_view *v, int n, const char *module, ct_peft_kind kind) {
    for (int i = 0; i < n; i++)
        if (v[i].key.kind == kind && strcmp(v[i].key.module, module) == 0) return i;
    return -1;
}

/* A DoRA magnitude [out]: only with use_dora, beside its B [out, r]. */
static int check_magnitude(const char *where, const ct_peft_config *cfg, const key_view *v, int n, int i) {
    if (!cfg->use_dora)
        return ct_fail("%s: tensor %s is a DoRA magnitude but adapter_config.json has use_dora false; set \"use_dora\": "
                       "true or remove the tensor", where, v[i].name);
    const int b = find_view(v, n, v[i].key.module, CT_PEFT_LORA_B);
    if (b < 0) return ct_fail("%s: tensor %s has no lora_B beside it", where, v[i].name);
    if (v[i].ndim != 1 || v[b].ndim != 2 || v[i].shape[0] != v[b].shape[0])
        return ct_fail("%s: tensor %s: a magnitude has one value per output row of %s (%lld)", where, v[i].name,
                       v[b].name, v[b].ndim == 2 ? (long long)v[b].shape[0] : -1LL);
    return 0;
}

/* Each key is one the config produces, and A and B come in pairs of rank r:
 * A [r, in], B [out, r]. `where` names the file (or folder) for messages. */
static int check_views(const char *where, const ct_peft_config *cfg, const key_view *v, int n) {
    for (int i = 0; i < n; i++) {
        const ct_peft_key *k = &v[i].key;
        if (k->kind == CT_PEFT_SAVED) {
            if (!ct_peft_saves(cfg, k->module))
                return ct_fail("%s: tensor %s: module %s is not in modules_to_save of adapter_config.json",
                               where, v[i].name, k->module);
            continue;
        }
        if (k->kind == CT_PEFT_MAGNITUDE) CT_TRY(check_magnitude(where, cfg, v, n, i));
        else if (cfg->use_dora && find_view(v, n, k->module, CT_PEFT_MAGNITUDE) < 0)
            return ct_fail("%s: tensor %s has no lora_magnitude_vector beside it, but adapter_config.json says "
                           "use_dora: true", where, v[i].name);
        if (!ct_peft_targets(cfg, k->module))
            return ct_fail("%s: tensor %s: adapter_config.json's target_modules / layers_to_transform do not "
                           "cover module %s; peft would not load it", where, v[i].name, k->module);
        if (k->kind == CT_PEFT_MAGNITUDE) continue;
        if (v[i].ndim != 2)
            return ct_fail("%s: tensor %s: a LoRA matrix has 2 dimensions, not %d", where, v[i].name, v[i].ndim);
        int64_t rank = k->kind == CT_PEFT_LORA_A ? v[i].shape[0] : v[i].shape[1];
        if (rank != cfg->r)
            return ct_fail("%s: tensor %s: shape [%lld, %lld] has rank %lld, adapter_config.json says r = %d", where,
                           v[i].name, (long long)v[i].shape[0], (long long)v[i].shape[1], (long long)rank, cfg->r);
        ct_peft_kind other = k->kind == CT_PEFT_LORA_A ? CT_PEFT_LORA_B : CT_PEFT_LORA_A;
        if (find_view(v, n, k->module, other) < 0)
            return ct_fail("%s: tensor %s has no %s beside it", where, v[i].name,
                           other == CT_PEFT_LORA_A ? "lora_A" : "lora_B");
    }
    return 0;
}

/* ---- reading ------------------------------------------------------------------------------- */

static int parse_all(ct_peft_adapter *ad, const char *file) {
    ad->n_keys = ct_safetensors_count(ad->tensors);
    if (ad->n_keys == 0) return ct_fail("%s: no tensors; an adapter holds lora_A / lora_B pairs", file);
    ad->keys = ct_calloc((size_t)ad->n_keys, sizeof *ad->keys, "PEFT adapter keys");
    key_view *views = ct_calloc((size_t)ad->n_keys, sizeof *views, "PEFT adapter keys");
    int status = ad->keys && views ? 0 : -1;
    for (int i = 0; status == 0 && i < ad->n_keys; i++) {
        const ct_st_tensor *t = ct_safetensors_at(ad->tensors, i);
        status = ct_peft_parse_key(t->name, &ad->keys[i]);
        if (status < 0) ct_fail_context("%s: ", file);
        views[i] = (key_view){ad->keys[i], t->name, t->ndim, t->shape};
    }
    if (status == 0) status = check_views(file, &ad->config, views, ad->n_keys);
    free(views);
    return status;
}

ct_peft_adapter *ct_peft_adapter_open(const char *dir) {
    ct_peft_adapter *ad = ct_calloc(1, sizeof *ad, "a PEFT adapter");
    char *file = ct_path_join(dir, "adapter_model.safetensors");
    int status = ad && file ? 0 : -1;
    if (status == 0 && !ct_is_dir(dir)) status = ct_fail("%s: not a folder; a PEFT adapter is a folder", dir);
    if (status == 0) status = ct_peft_config_read(dir, &ad->config);
    else if (ad) ct_peft_config_init(&ad->config);
    if (status == 0 && !ct_is_file(file))
        status = ct_fail("%s: missing; a PEFT adapter folder holds adapter_model.safetensors "
                         "(adapter_model.bin, a pickle, is not read)", file);
    if (status == 0) status = (ad->tensors = ct_safetensors_open(file)) ? 0 : -1;
    if (status == 0) status = parse_all(ad, file);
    free(file);
    if (status < 0) {
        ct_peft_adapter_close(ad);
        return NULL;
    }
    return ad;
}

void ct_peft_adapter_close(ct_peft_adapter *ad) {
    if (!ad) return;
    ct_peft_config_free(&ad->config);
    ct_safetensors_close(ad->tensors);
    free(ad->keys);
    free(ad);
}

const ct_st_tensor *ct_peft_find(const ct_peft_adapter *ad, const char *module, ct_peft_kind kind,
                                 const char *param) {
    char name[CT_PEFT_NAME_MAX + 64];
    if (ct_peft_key_name(name, sizeof name, module, kind, param) < 0) return NULL;
    const ct_st_tensor *t = ct_safetensors_find(ad->tensors, name);
    if (!t) ct_fail("%s: no tensor %s", ct_safetensors_path(ad->tensors), name);
    return t;
}

int ct_peft_load_into(const ct_peft_adapter *ad, const char *module, ct_peft_kind kind, const char *param,
                      ct_tensor *dst) {
    const ct_st_tensor *t = ct_peft_find(ad, module, kind, param);
    if (!t) return -1;
    return ct_safetensors_load_into(ad->tensors, t->name, dst);
}

/* ---- writing ------------------------------------------------------------------------------- */

static int write_checked(const char *dir, const ct_peft_config *cfg, const ct_peft_item *items, int n,
                         char (*names)[CT_PEFT_NAME_MAX + 64], key_view *views, ct_st_item *st) {
    for (int i = 0; i < n; i++) {
        const ct_tensor *t = items[i].tensor;
        if (!t || t->device != CT_CPU)
            return ct_fail("PEFT adapter %s: module %s: the tensor must be a CPU tensor", dir, items[i].module);
        CT_TRY(ct_peft_key_name(names[i], sizeof names[i], items[i].module, items[i].kind, items[i].param));
        CT_TRY(ct_peft_parse_key(names[i], &views[i].key));
        views[i].name = names[i];
        views[i].ndim = t->ndim;
        views[i].shape = t->shape;
        st[i] = (ct_st_item){names[i], t};
        for (int j = 0; j < i; j++)
            if (strcmp(names[j], names[i]) == 0) return ct_fail("PEFT adapter %s: tensor %s given twice", dir, names[i]);
    }
    CT_TRY(check_views(dir, cfg, views, n));
    /* Validate the config by rendering it before anything is written. */
    char *json = ct_peft_config_to_json(cfg);
    if (!json) return -1;
    free(json);
    CT_TRY(ct_make_dirs(dir));
    char *st_path = ct_path_join(dir, "adapter_model.safetensors");
    char *cfg_path = ct_path_join(dir, "adapter_config.json");
    int status = st_path && cfg_path ? 0 : -1;
    if (status == 0) status = ct_safetensors_write(st_path, st, n, CT_F32);
    if (status == 0) status = ct_peft_config_write(cfg_path, cfg);
    free(st_path);
    free(cfg_path);
    return status;
}

int ct_peft_adapter_write(const char *dir, const ct_peft_config *cfg, const ct_peft_item *items, int n) {
    if (n < 1) return ct_fail("PEFT adapter %s: no tensors to write", dir);
    char (*names)[CT_PEFT_NAME_MAX + 64] = ct_calloc((size_t)n, sizeof *names, "PEFT key names");
    key_view *views = ct_calloc((size_t)n, sizeof *views, "PEFT key names");
    ct_st_item *st = ct_calloc((size_t)n, sizeof *st, "PEFT items");
    int status = names && views && st ? write_checked(dir, cfg, items, n, names, views, st) : -1;
    free(names);
    free(views);
    free(st);
    return status;
}
