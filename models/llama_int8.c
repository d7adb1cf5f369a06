/* INT8 model folders in compressed-tensors' pack-quantized layout (see llama_int8.h): writing
 * one from an f32 model, and loading one with its projections kept int8. */
#include "models/llama_int8.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/paths.h"
#include "core/atomic_file.h"
#include "checkpoints/safetensors.h"
#include "models/llama_internal.h"
#include "models/llama_lora.h"

/* compressed-tensors targets every nn.Linear except lm_head: the layers' projections. */
static bool is_projection(const char *name) {
    size_t n = strlen(name), k = strlen("_proj.weight");
    return !strncmp(name, "model.layers.", 13) && n > k && !strcmp(name + n - k, "_proj.weight");
}

/* ---- config.json's quantization_config ---- */

/* What compressed-tensors' ModelCompressor.update_config writes for this scheme, key for key. */
static cJSON *quantization_config(void) {
    cJSON *q = cJSON_CreateObject(), *groups = cJSON_AddObjectToObject(q, "config_groups");
    cJSON *g = cJSON_AddObjectToObject(groups, "group_0");
    cJSON_AddStringToObject(g, "format", "pack-quantized");
    cJSON_AddNullToObject(g, "input_activations");
    cJSON_AddNullToObject(g, "output_activations");
    cJSON *targets = cJSON_AddArrayToObject(g, "targets");
    cJSON_AddItemToArray(targets, cJSON_CreateString("Linear"));
    cJSON *w = cJSON_AddObjectToObject(g, "weights");
    cJSON_AddFalseToObject(w, "dynamic");
    cJSON_AddNullToObject(w, "group_size");
    cJSON_AddNumberToObject(w, "num_bits", 8);
    cJSON_AddStringToObject(w, "strategy", "channel");
    cJSON_AddTrueToObject(w, "symmetric");
    cJSON_AddStringToObject(w, "type", "int");
    cJSON_AddStringToObject(q, "format", "pack-quantized");
    cJSON_AddNullToObject(q, "global_compression_ratio");
    cJSON *ignore = cJSON_AddArrayToObject(q, "ignore");
    cJSON_AddItemToArray(ignore, cJSON_CreateString("lm_head"));
    cJSON_AddNullToObject(q, "kv_cache_scheme");
    cJSON_AddNullToObject(q, "moe_sparsity_config");
    cJSON_AddStringToObject(q, "quant_method", "compressed-tensors");
    cJSON_AddStringToObject(q, "quantization_status", "compressed");
    cJSON_AddObjectToObject(q, "sparsity_config");
    cJSON_AddObjectToObject(q, "transform_config");
    cJSON_AddStringToObject(q, "version", CT_INT8_COMPRESSED_TENSORS_VERSION);
    return q;
}

static const char *string_at(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* The one scheme ctune computes with: one group, weight-only, int, 8 bits, symmetric, channel. */
static bool is_ctune_scheme(const cJSON *q) {
    const cJSON *groups = cJSON_GetObjectItemCaseSensitive(q, "config_groups");
    if (!cJSON_IsObject(groups) || cJSON_GetArraySize(groups) != 1) return false;
    const cJSON *g = groups->child, *w = cJSON_GetObjectItemCaseSensitive(g, "weights");
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(g, "input_activations");
    const cJSON *bits = cJSON_GetObjectItemCaseSensitive(w, "num_bits");
    return cJSON_IsObject(w) && (!act || cJSON_IsNull(act)) && cJSON_IsNumber(bits) && bits->valuedouble == 8 &&
           !strcmp(string_at(w, "type"), "int") && !strcmp(string_at(w, "strategy"), "channel") &&
           cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(w, "symmetric"));
}

int ct_llama_int8_folder(const char *dir) {
    char *path = ct_path_join(dir, "config.json");
    char *text = path ? ct_read_file(path, (size_t)64 << 20, NULL) : NULL;
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    free(text);
    int rc = 0;
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(root, "quantization_config");
    if (!root) rc = ct_fail("%s: cannot read it as JSON", path ? path : dir);
    else if (q && !cJSON_IsNull(q)) {
        rc = !strcmp(string_at(q, "quant_method"), "compressed-tensors") &&
                     !strcmp(string_at(q, "format"), "pack-quantized") && is_ctune_scheme(q)
                 ? 1
                 : ct_fail("%s: quantization_config (quant_method '%s', format '%s') is not the INT8 layout ctune "
                           "reads (compressed-tensors pack-quantized, 8-bit symmetric per channel, weight-only); "
                           "give an unquantized model or ctune's --format int8-safetensors export",
                           path, string_at(q, "quant_method"), string_at(q, "format"));
    }
    cJSON_Delete(root);
    free(path);
    return rc;
}

/* ---- loading ---- */

static const ct_st_tensor *find_part(const ct_safetensors *st, const char *weight, const char *suffix, ct_dtype dtype,
                                     int ndim, const int64_t *shape) {
    char name[160];
    snprintf(name, sizeof name, "%s%s", weight, suffix);
    const ct_st_tensor *t = ct_safetensors_find(st, name);
    if (!t) return NULL;
    bool same = t->dtype == dtype && t->ndim == ndim;
    for (int d = 0; same && d < ndim; d++) same = t->shape[d] == shape[d];
    if (!same) {
        ct_fail("%s: tensor %s is %s with %d dimensions; an INT8 projection of shape [%lld, %lld] needs %s [%lld, %lld]",
                t->file, name, ct_dtype_name(t->dtype), t->ndim, (long long)shape[0], (long long)shape[1],
                ct_dtype_name(dtype), (long long)shape[0], ndim == 2 ? (long long)shape[1] : 0LL);
        return NULL;
    }
    return t;
}

/* An i8 [rows, cols] tensor with f32 scales [rows, 1] from weight_packed / _scale / _shape. */
static ct_tensor *load_projection(const ct_safetensors *st, const ct_llama_param_spec *spec) {
    const int64_t rows = spec->shape[0], cols = spec->shape[1];
    const int64_t packed_shape[2] = {rows, (cols + 3) / 4}, scale_shape[2] = {rows, 1}, dims = 2;
    const ct_st_tensor *packed = find_part(st, spec->name, "_packed", CT_I32, 2, packed_shape);
    const ct_st_tensor *scale = packed ? find_part(st, spec->name, "_scale", CT_F32, 2, scale_shape) : NULL;
    const ct_st_tensor *shape = scale ? find_part(st, spec->name, "_shape", CT_I64, 1, &dims) : NULL;
    if (!shape) return NULL;
    int64_t stored[2];
    memcpy(stored, shape->bytes, sizeof stored);
    if (stored[0] != rows || stored[1] != cols) {
        ct_fail("%s: %s_shape says [%lld, %lld] but config.json implies [%lld, %lld]; the checkpoint and its "
                "config.json disagree",
                shape->file, spec->name, (long long)stored[0], (long long)stored[1], (long long)rows, (long long)cols);
        return NULL;
    }
    ct_tensor *q = ct_tensor_new(CT_I8, 2, spec->shape, spec->name);
    ct_tensor *s = q ? ct_tensor_new(CT_F32, 2, scale_shape, NULL) : NULL;
    if (!s) {
        ct_tensor_free(q);
        return NULL;
    }
    q->scale = s;
    q->scale_block = 0;
    memcpy(s->data, scale->bytes, (size_t)rows * sizeof(float));
    /* Byte b of a row's packed words (little-endian, as the file stores them) is element b. */
    const uint8_t *bytes = packed->bytes;
    int8_t *out = q->data;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) out[r * cols + c] = (int8_t)((int)bytes[r * packed_shape[1] * 4 + c] - 128);
    return q;
}

/* Every file tensor is an unquantized parameter or a part of a quantized one. */
static int check_unexpected(const ct_safetensors *st, const ct_llama_param_spec *specs, int n) {
    for (int i = 0; i < ct_safetensors_count(st); i++) {
        const char *name = ct_safetensors_at(st, i)->name;
        bool known = false;
        for (int j = 0; j < n && !known; j++) {
            size_t k = strlen(specs[j].name);
            known = is_projection(specs[j].name)
                        ? !strncmp(name, specs[j].name, k) &&
                              (!strcmp(name + k, "_packed") || !strcmp(name + k, "_scale") || !strcmp(name + k, "_shape"))
                        : !strcmp(name, specs[j].name);
        }
        if (!known && !strcmp(name, "lm_head.weight")) known = true; /* a tied model's redundant copy */
        if (!known)
            return ct_fail("%s: tensor %s is not part of the model config.json describes; is config.json from "
                           "another model?",
                           ct_safetensors_at(st, i)->file, name);
    }
    return 0;
}

/* The file's pages of a loaded tensor leave resident memory (ct_safetensors_release). */
static void release_file_pages(const ct_safetensors *st, const char *weight, bool projection) {
    static const char *const parts[] = {"_packed", "_scale", "_shape"};
    for (int k = 0; k < (projection ? 3 : 1); k++) {
        char name[160];
        snprintf(name, sizeof name, "%s%s", weight, projection ? parts[k] : "");
        if (ct_safetensors_find(st, name)) ct_safetensors_release(st, name);
    }
}

int ct_llama_int8_load_weights(ct_llama *m, const ct_safetensors *st) {
    int n;
    ct_llama_param_spec *specs = ct_llama_param_specs(m, &n);
    if (!specs) return -1;
    int rc = check_unexpected(st, specs, n);
    for (int i = 0; i < n && rc == 0; i++) {
        ct_tensor *t;
        if (is_projection(specs[i].name)) {
            t = load_projection(st, &specs[i]);
        } else {
            /* W8A16: the tables left unquantized (the embedding, an untied lm_head) are held in
             * bf16, as a 16-bit runtime holds them (Qwen2.5-0.5B's tied table alone is 545 MB in
             * f32, more than all its int8 projections); norms and biases stay f32. */
            bool table = specs[i].ndim == 2;
            t = ct_tensor_new(table ? CT_BF16 : CT_F32, specs[i].ndim, specs[i].shape, specs[i].name);
            if (t && ct_safetensors_load_into(st, specs[i].name, t) < 0) {
                ct_tensor_free(t);
                t = NULL;
            }
            if (t) t->requires_grad = !table;
        }
        if (!t) {
            rc = -1;
            break;
        }
        release_file_pages(st, specs[i].name, is_projection(specs[i].name));
        *specs[i].slot = t;
        m->params[m->n_params++] = t;
    }
    if (rc == 0 && m->config.tie_word_embeddings) m->lm_head.weight = m->embed_tokens;
    free(specs);
    return rc;
}

/* ---- writing ---- */

/* The packed words of q [rows, cols]: q + 128 as bytes, four to a little-endian word, the last
 * word of a row zero-padded, as compressed-tensors' pack_to_int32 lays out 8-bit values. */
static ct_tensor *pack_rows(const int8_t *q, int64_t rows, int64_t cols, const char *name) {
    const int64_t shape[2] = {rows, (cols + 3) / 4};
    ct_tensor *packed = ct_tensor_new(CT_I32, 2, shape, name);
    if (!packed) return NULL;
    uint8_t *bytes = packed->data;
    memset(bytes, 0, (size_t)(rows * shape[1] * 4));
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) bytes[r * shape[1] * 4 + c] = (uint8_t)(q[r * cols + c] + 128);
    return packed;
}

typedef struct {
    ct_st_item *items;
    ct_tensor **owned; /* the tensors made here, freed at the end */
    char **names;
    int n_items, n_owned;
} int8_items;

static int own(int8_items *it, ct_tensor *t, const char *weight, const char *suffix) {
    if (!t) return -1;
    it->owned[it->n_owned++] = t;
    size_t len = strlen(weight) + strlen(suffix) + 1;
    char *name = ct_malloc(len, "a tensor name");
    if (!name) return -1;
    snprintf(name, len, "%s%s", weight, suffix);
    it->names[it->n_items] = name;
    it->items[it->n_items++] = (ct_st_item){name, t};
    return 0;
}

static int add_projection(int8_items *it, const ct_tensor *w, int index, int count, ct_int8_report_fn report,
                          void *ctx) {
    if (w->dtype != CT_F32 || w->ndim != 2 || w->device != CT_CPU)
        return ct_fail("INT8 export: %s is %s; the export quantizes f32 weights on the CPU (an INT8 or GGUF model "
                       "is already quantized: export its f32 source instead)",
                       w->name, ct_dtype_name(w->dtype));
    const int64_t rows = w->shape[0], cols = w->shape[1], scale_shape[2] = {rows, 1}, two = 2;
    int8_t *q = ct_malloc((size_t)(rows * cols), "INT8 values");
    ct_tensor *scale = q ? ct_tensor_new(CT_F32, 2, scale_shape, NULL) : NULL;
    int rc = scale ? ct_quantize_rows_i8(w->data, rows, cols, q, scale->data) : -1;
    if (rc < 0) ct_fail_context("INT8 export of %s: ", w->name);
    ct_int8_tensor_report r = {w->name, rows, cols, {0, 0}, index, count};
    if (rc == 0) r.error = ct_quant_error_rows_i8(w->data, q, scale->data, rows, cols);
    if (rc == 0) rc = own(it, pack_rows(q, rows, cols, NULL), w->name, "_packed");
    if (rc == 0) rc = own(it, scale, w->name, "_scale");
    else ct_tensor_free(scale);
    ct_tensor *shape = rc == 0 ? ct_tensor_new(CT_I64, 1, &two, NULL) : NULL;
    if (shape) memcpy(shape->data, (int64_t[2]){rows, cols}, sizeof(int64_t[2]));
    if (rc == 0) rc = own(it, shape, w->name, "_shape");
    free(q);
    if (rc == 0 && report) report(&r, ctx);
    return rc;
}

static void free_items(int8_items *it, int capacity) {
    for (int i = 0; i < it->n_owned; i++) ct_tensor_free(it->owned[i]);
    for (int i = 0; it->names && i < capacity; i++) free(it->names[i]);
    free(it->items);
    free(it->owned);
    free(it->names);
}

static int write_weights(const ct_llama *m, const char *dir, ct_int8_report_fn report, void *ctx) {
    int capacity = 3 * m->n_params, count = 0;
    for (int i = 0; i < m->n_params; i++) count += is_projection(m->params[i]->name);
    int8_items it = {ct_calloc((size_t)capacity, sizeof *it.items, "safetensors items"),
                     ct_calloc((size_t)capacity, sizeof *it.owned, "INT8 tensors"),
                     ct_calloc((size_t)capacity, sizeof *it.names, "tensor names"), 0, 0};
    int rc = it.items && it.owned && it.names ? 0 : -1;
    for (int i = 0, done = 0; i < m->n_params && rc == 0; i++) {
        const ct_tensor *p = m->params[i];
        if (is_projection(p->name)) rc = add_projection(&it, p, ++done, count, report, ctx);
        else if (p->dtype != CT_F32) rc = ct_fail("INT8 export: %s is %s; it is written f32", p->name, ct_dtype_name(p->dtype));
        else it.items[it.n_items++] = (ct_st_item){p->name, p};
    }
    char *path = rc == 0 ? ct_path_join(dir, "model.safetensors") : NULL;
    if (rc == 0) rc = path ? ct_safetensors_write(path, it.items, it.n_items, CT_F32) : -1;
    free(path);
    free_items(&it, capacity);
    return rc;
}

/* config.json as a plain f32 save writes it, plus the quantization_config. */
static int write_config(const ct_llama *m, const char *dir) {
    CT_TRY(ct_llama_write_config(m, dir, CT_F32));
    char *path = ct_path_join(dir, "config.json");
    char *text = path ? ct_read_file(path, (size_t)64 << 20, NULL) : NULL;
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    free(text);
    text = NULL;
    if (root) {
        cJSON_AddItemToObject(root, "quantization_config", quantization_config());
        text = cJSON_Print(root);
    }
    int rc = text ? ct_atomic_write_file(path, text, strlen(text)) : ct_fail("%s: cannot add the quantization_config", dir);
    cJSON_Delete(root);
    free(text);
    free(path);
    return rc;
}

int ct_llama_save_int8(const ct_llama *m, const char *dir, const char *tokenizer_dir, ct_int8_report_fn report,
                       void *ctx) {
    if (ct_llama_lora_count(m)) return ct_fail("INT8 export: the model carries LoRA adapters; merge them first");
    CT_TRY(write_weights(m, dir, report, ctx));
    CT_TRY(write_config(m, dir));
    return ct_llama_copy_tokenizer_files(tokenizer_dir, dir);
}
